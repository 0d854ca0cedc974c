// `k8s4ai crds` prints apiextensions.k8s.io/v1 CRDs whose schemas are structural, as
// kube-apiserver requires, and which come from the same schemas the server validates with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { K8S4AI_KINDS } from '../src/api/kinds/index.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const ALLOWED_KEYS = new Set([
  'type', 'description', 'properties', 'items', 'additionalProperties', 'required', 'enum', 'default', 'format', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'uniqueItems',
  'nullable', 'anyOf', 'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields',
]);

/** The rules of a structural schema (apiextensions v1) that a generator can get wrong. */
function structuralProblems(node: any, path: string, out: string[]): void {
  for (const key of Object.keys(node)) if (!ALLOWED_KEYS.has(key)) out.push(`${path}: keyword "${key}" is not allowed in a CRD schema`);
  if (node['x-kubernetes-int-or-string']) {
    if (node.type) out.push(`${path}: int-or-string must not set type`);
    return;
  }
  if (!node.type) out.push(`${path}: every node needs a type`);
  if (node.anyOf) out.push(`${path}: anyOf is only allowed for int-or-string`);
  if (node.properties && node.additionalProperties) out.push(`${path}: properties and additionalProperties are exclusive`);
  if (typeof node.exclusiveMinimum === 'number' || typeof node.exclusiveMaximum === 'number') out.push(`${path}: exclusive bounds are booleans in OpenAPI v3.0`);
  for (const [k, v] of Object.entries(node.properties ?? {})) structuralProblems(v, `${path}.${k}`, out);
  if (node.items) structuralProblems(node.items, `${path}[]`, out);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') structuralProblems(node.additionalProperties, `${path}{}`, out);
}

test('k8s4ai crds prints one valid, structural CRD per kind', () => {
  const text = execFileSync(process.execPath, [BIN, 'crds'], { encoding: 'utf8' });
  const docs = parseAllDocuments(text).map((d) => d.toJS());
  assert.equal(docs.length, K8S4AI_KINDS.length);
  for (const def of K8S4AI_KINDS) {
    const crd = docs.find((d) => d.spec.names.kind === def.kind);
    assert.ok(crd, `a CRD for ${def.kind}`);
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(crd.kind, 'CustomResourceDefinition');
    assert.equal(crd.metadata.name, `${def.plural}.k8s4ai.io`);
    assert.equal(crd.spec.scope, def.namespaced ? 'Namespaced' : 'Cluster');
    assert.deepEqual(crd.spec.names.shortNames, def.shortNames);
    const version = crd.spec.versions[0];
    assert.equal(version.name, 'v1alpha1');
    assert.deepEqual(version.subresources, { status: {} });
    const schema = version.schema.openAPIV3Schema;
    assert.deepEqual(schema.properties.metadata, { type: 'object' });
    const problems: string[] = [];
    structuralProblems(schema, def.kind, problems);
    assert.deepEqual(problems, []);
    assert.ok(version.additionalPrinterColumns.some((c: any) => c.name === 'Age'));
  }
});

test('quantities become int-or-string with the Kubernetes pattern', () => {
  const text = execFileSync(process.execPath, [BIN, 'crds'], { encoding: 'utf8' });
  const gang = parseAllDocuments(text).map((d) => d.toJS()).find((d) => d.spec.names.kind === 'GangSchedulingGroup');
  const vram = gang.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.roles.items.properties.template.properties.resources.properties.vram;
  assert.equal(vram['x-kubernetes-int-or-string'], true);
  assert.deepEqual(vram.anyOf, [{ type: 'integer' }, { type: 'string' }]);
  assert.ok(new RegExp(vram.pattern).test('80Gi'));
  assert.ok(!new RegExp(vram.pattern).test('80 GB'));
});
