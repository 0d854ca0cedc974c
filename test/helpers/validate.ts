// The schema validator of an object's kind, compiled once per kind, for tests that check
// generated objects (fleet expansion, discovery) against the API's own schemas.
import assert from 'node:assert/strict';
import type { KubeObject } from '../../src/api/meta.ts';
import { ALL_KINDS } from '../../src/api/kinds/index.ts';
import { compileValidator, type KindValidator } from '../../src/api/validate.ts';

const validators = new Map<string, KindValidator>();

export function validatorFor(obj: KubeObject): KindValidator {
  const key = `${obj.apiVersion}/${obj.kind}`;
  let v = validators.get(key);
  if (!v) {
    const def = ALL_KINDS.find((k) => (k.group ? `${k.group}/${k.version}` : k.version) === obj.apiVersion && k.kind === obj.kind);
    assert.ok(def, `no kind ${key}`);
    v = compileValidator(def);
    validators.set(key, v);
  }
  return v;
}

/** Asserts the object validates with no causes (defaults may be added to a copy). */
export function assertValid(obj: KubeObject): void {
  const { causes } = validatorFor(obj).validate(structuredClone(obj));
  assert.deepEqual(causes, [], `${obj.kind} ${obj.metadata.name}: ${JSON.stringify(causes)}`);
}
