// Schema building blocks shared by every kind. Each kind is written once with these, and
// from that one schema come its TypeScript type (Static), request validation (ajv), the
// CRD openAPIV3Schema and the server's OpenAPI documents.
import { Type, type TSchema, type TProperties, type ObjectOptions, type SchemaOptions } from '@sinclair/typebox';

export { Type };
export type { Static, TSchema } from '@sinclair/typebox';

/** Marks a schema node as a Kubernetes quantity; the validator and the CRD writer key on it. */
export const QUANTITY_KEYWORD = 'x-k8s4ai-quantity';
/** Marks a schema node as a Go-style duration ("30s", "5m", "1h30m"). */
export const DURATION_KEYWORD = 'x-k8s4ai-duration';

/** A closed object: unknown fields are refused, as kubectl's strict field validation expects. */
export function Struct<T extends TProperties>(properties: T, options: ObjectOptions = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** An open map of string to string (labels, annotations, attributes). */
export function StringMap(description?: string) {
  return Type.Record(Type.String(), Type.String(), { description });
}

/**
 * A Kubernetes quantity such as `80Gi`, `500m` or `1.5`, written as a string or a number.
 * Negative values are refused: every quantity in this API is a size or an amount.
 */
export function Quantity(description: string, options: SchemaOptions = {}) {
  return Type.Unsafe<string | number>({
    [QUANTITY_KEYWORD]: true,
    'x-kubernetes-int-or-string': true,
    description,
    ...options,
  });
}

/** A duration in Go's notation, e.g. `90s`, `15m`, `1h30m`. */
export function Duration(description: string, options: SchemaOptions = {}) {
  return Type.Unsafe<string>({ type: 'string', [DURATION_KEYWORD]: true, description, ...options });
}

/** A string from a fixed set; one flat `enum` keeps validation messages short and exact. */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export function NonNegativeInt(description: string, options: SchemaOptions = {}) {
  return Type.Integer({ minimum: 0, description, ...options });
}

export function PositiveInt(description: string, options: SchemaOptions = {}) {
  return Type.Integer({ minimum: 1, description, ...options });
}

/** The metav1.Condition shape, used in every status. */
export const Condition = Struct({
  type: Type.String({ description: 'Condition type in CamelCase, e.g. Ready, Scheduled.' }),
  status: StringEnum(['True', 'False', 'Unknown'] as const),
  reason: Type.Optional(Type.String({ description: 'A CamelCase machine-readable reason.' })),
  message: Type.Optional(Type.String({ description: 'What a person should know, and can act on.' })),
  lastTransitionTime: Type.Optional(Type.String({ format: 'date-time' })),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const Conditions = Type.Array(Condition, { description: 'Current conditions, one per type.' });

/** A status: the kind's own observed fields plus the conditions and observedGeneration every status has. */
export function StatusStruct<T extends TProperties>(properties: T, options: ObjectOptions = {}) {
  return Struct(
    {
      ...properties,
      conditions: Type.Optional(Conditions),
      observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: 'The generation this status reflects.' })),
    },
    options,
  );
}

/** A label selector in metav1.LabelSelector form. */
export const LabelSelector = Struct({
  matchLabels: Type.Optional(StringMap()),
  matchExpressions: Type.Optional(
    Type.Array(
      Struct({
        key: Type.String(),
        operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
        values: Type.Optional(Type.Array(Type.String())),
      }),
    ),
  ),
});

/**
 * A capability selector over device attributes, node-affinity style: `memory Gt 79Gi`,
 * `fp8 In [true]`, `architecture In [hopper, blackwell]`. Quantities compare as quantities.
 */
export const CapabilityExpression = Struct({
  key: Type.String({ description: 'A device attribute: productName, architecture, memory, computeCapability, fp8, bf16, vendor, …' }),
  operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const),
  values: Type.Optional(Type.Array(Type.String())),
});

export const CapabilitySelector = Struct({
  matchExpressions: Type.Array(CapabilityExpression, { minItems: 1 }),
});

export const EnvVar = Struct({
  name: Type.String({ minLength: 1, pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$' }),
  value: Type.String({ default: '' }),
});

/** Levels of the hardware tree, outermost first. */
export const TopologyLevels = ['fabric', 'spine', 'leaf', 'node', 'numa', 'nvlink-island'] as const;
export type TopologyLevel = (typeof TopologyLevels)[number];
export const TopologyLevel = (description: string) => StringEnum(TopologyLevels, { description });

export const LocalObjectReference = (description: string) => Type.String({ minLength: 1, description });

export type { TProperties, TSchema as AnySchema };
