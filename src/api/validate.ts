// Request validation from the one schema per kind: defaults filled in, every bad field
// reported with its path and reason, Kubernetes style (details.causes).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Type, Struct, QUANTITY_KEYWORD, DURATION_KEYWORD, type TSchema } from './schema.ts';
import { ObjectMeta } from './meta.ts';
import type { KindDefinition } from './kind.ts';
import { parseQuantity } from './quantity.ts';
import { isDuration } from './duration.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;

/** One bad field, as Kubernetes' StatusCause. */
export interface FieldCause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueTypeInvalid' | 'FieldValueForbidden' | 'FieldValueDuplicate' | 'FieldValueTooLong';
  message: string;
  field: string;
}

/** The whole-object schema of a kind: apiVersion, kind, metadata and its spec/status or top-level fields. */
export function objectSchema(def: KindDefinition): TSchema {
  const fields: Record<string, TSchema> = {
    apiVersion: Type.String(),
    kind: Type.String(),
    metadata: ObjectMeta,
  };
  if (def.spec) fields.spec = def.specRequired ? def.spec : Type.Optional(def.spec);
  if (def.status) fields.status = Type.Optional(def.status);
  for (const [name, schema] of Object.entries(def.topLevel ?? {})) fields[name] = schema;
  return Struct(fields, { description: def.description });
}

function createAjv(removeAdditional: boolean): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, removeAdditional, coerceTypes: false });
  addFormats(ajv);
  ajv.addKeyword({
    keyword: QUANTITY_KEYWORD,
    errors: true,
    validate: function quantity(this: unknown, _schema: unknown, data: unknown) {
      const self = quantity as unknown as { errors: Partial<ErrorObject>[] };
      try {
        if (typeof data !== 'string' && typeof data !== 'number') throw new Error('must be a quantity (a string such as "80Gi" or a number)');
        if (parseQuantity(data) < 0n) throw new Error('must not be negative');
        return true;
      } catch (err) {
        self.errors = [{ keyword: QUANTITY_KEYWORD, message: (err as Error).message, params: {} }];
        return false;
      }
    },
  });
  ajv.addKeyword({
    keyword: DURATION_KEYWORD,
    errors: true,
    validate: function duration(this: unknown, _schema: unknown, data: unknown) {
      if (isDuration(data)) return true;
      (duration as unknown as { errors: Partial<ErrorObject>[] }).errors = [
        { keyword: DURATION_KEYWORD, message: 'must be a duration such as 90s, 15m or 1h30m', params: {} },
      ];
      return false;
    },
  });
  ajv.addKeyword('x-kubernetes-int-or-string');
  return ajv;
}

const strictAjv = createAjv(false);
const pruningAjv = createAjv(true);

/** `/spec/roles/0/replicas` -> `spec.roles[0].replicas` */
export function fieldPath(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '<root>';
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function valueAt(data: unknown, instancePath: string): unknown {
  let cur = data;
  for (const p of instancePath.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function toCause(err: ErrorObject, data: unknown): FieldCause {
  const value = valueAt(data, err.instancePath);
  switch (err.keyword) {
    case 'required':
      return { reason: 'FieldValueRequired', field: fieldPath(err.instancePath, String(err.params.missingProperty)), message: 'Required value' };
    case 'additionalProperties':
      return {
        reason: 'FieldValueInvalid',
        field: fieldPath(err.instancePath, String(err.params.additionalProperty)),
        message: `unknown field "${String(err.params.additionalProperty)}"`,
      };
    case 'type':
      return { reason: 'FieldValueTypeInvalid', field: fieldPath(err.instancePath), message: `Invalid value: ${describeValue(value)}: must be of type ${String(err.params.type)}` };
    case 'enum':
      return {
        reason: 'FieldValueNotSupported',
        field: fieldPath(err.instancePath),
        message: `Unsupported value: ${describeValue(value)}: supported values: ${(err.params.allowedValues as unknown[]).map((v) => `"${String(v)}"`).join(', ')}`,
      };
    case 'maxLength':
      return { reason: 'FieldValueTooLong', field: fieldPath(err.instancePath), message: `Too long: may not be longer than ${String(err.params.limit)}` };
    default:
      return { reason: 'FieldValueInvalid', field: fieldPath(err.instancePath), message: `Invalid value: ${describeValue(value)}: ${err.message ?? 'is invalid'}` };
  }
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface ValidationResult {
  causes: FieldCause[];
  /** Unknown fields dropped under Warn/Ignore, for the Warning header. */
  warnings: string[];
}

/**
 * Validates an object of `def` in place: fills defaults, and under Warn/Ignore drops
 * unknown fields. Returns every cause; an empty list means valid.
 */
export interface KindValidator {
  validate(obj: unknown, mode?: FieldValidation): ValidationResult;
}

export function compileValidator(def: KindDefinition): KindValidator {
  const schema = objectSchema(def);
  const strict: ValidateFunction = strictAjv.compile(schema);
  let pruning: ValidateFunction | undefined;
  return {
    validate(obj, mode = 'Strict') {
      const warnings: string[] = [];
      if (mode !== 'Strict') {
        // Find the unknown fields first (on a copy), then let the pruning validator drop them.
        if (mode === 'Warn') {
          strict(structuredClone(obj));
          for (const e of strict.errors ?? []) {
            if (e.keyword === 'additionalProperties') warnings.push(`unknown field "${fieldPath(e.instancePath, String(e.params.additionalProperty))}"`);
          }
        }
        pruning ??= pruningAjv.compile(schema);
        pruning(obj);
      }
      if (strict(obj)) return { causes: [], warnings };
      const seen = new Set<string>();
      const causes: FieldCause[] = [];
      for (const e of strict.errors ?? []) {
        const cause = toCause(e, obj);
        const key = `${cause.field}\u0000${cause.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          causes.push(cause);
        }
      }
      return { causes, warnings };
    },
  };
}
