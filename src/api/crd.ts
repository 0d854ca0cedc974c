// CRDs (apiextensions.k8s.io/v1) for the k8s4ai kinds, written from the same schemas the
// server validates with. Kubernetes wants structural OpenAPI v3.0 schemas, so the JSON
// Schema (draft-07) from TypeBox is rewritten: quantities become int-or-string, maps use
// additionalProperties, closed objects rely on pruning, exclusive bounds become booleans.
import { stringify } from 'yaml';
import { QUANTITY_KEYWORD, DURATION_KEYWORD, type TSchema } from './schema.ts';
import { objectSchema } from './validate.ts';
import type { KindDefinition } from './kind.ts';
import { K8S4AI_KINDS } from './kinds/index.ts';

/** The pattern apimachinery puts on Quantity fields in CRDs. */
const QUANTITY_CRD_PATTERN = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

type Json = Record<string, unknown>;

/** Rewrites one JSON Schema node (recursively) into a structural OpenAPI v3.0 node. */
export function toStructural(node: unknown): Json {
  const src = node as Json;
  if (src[QUANTITY_KEYWORD]) {
    return {
      ...(src.description ? { description: src.description } : {}),
      ...(src.default !== undefined ? { default: src.default } : {}),
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      pattern: QUANTITY_CRD_PATTERN,
      'x-kubernetes-int-or-string': true,
    };
  }
  const out: Json = {};
  for (const [key, value] of Object.entries(src)) {
    switch (key) {
      case QUANTITY_KEYWORD:
      case DURATION_KEYWORD:
      case '$id':
      case 'additionalProperties':
        if (key === 'additionalProperties' && typeof value === 'object') out.additionalProperties = toStructural(value);
        break;
      case 'properties':
        out.properties = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, toStructural(v)]));
        break;
      case 'patternProperties': {
        // TypeBox writes Record<string, T> as patternProperties; Kubernetes spells it additionalProperties.
        const inner = Object.values(value as Json)[0];
        out.additionalProperties = toStructural(inner);
        break;
      }
      case 'items':
        out.items = toStructural(value);
        break;
      case 'exclusiveMinimum':
        out.minimum = value;
        out.exclusiveMinimum = true;
        break;
      case 'exclusiveMaximum':
        out.maximum = value;
        out.exclusiveMaximum = true;
        break;
      case 'anyOf': {
        // Only `string | null` unions exist outside quantities: write them as nullable.
        const types = (value as Json[]).map((v) => v.type);
        out.type = types.find((t) => t !== 'null');
        if (types.includes('null')) out.nullable = true;
        break;
      }
      default:
        out[key] = value;
    }
  }
  if (out.type === 'object' && !out.properties && !out.additionalProperties) out['x-kubernetes-preserve-unknown-fields'] = true;
  return out;
}

/** The openAPIV3Schema of a kind (metadata left to the API server, as CRDs require). */
export function crdSchema(def: KindDefinition): Json {
  const schema = toStructural(objectSchema(def) as TSchema) as { properties: Json };
  schema.properties.metadata = { type: 'object' };
  return schema;
}

export function crdFor(def: KindDefinition): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${def.group}` },
    spec: {
      group: def.group,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories,
      },
      scope: def.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: def.version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: crdSchema(def) },
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...def.columns.map((c) => ({
              name: c.name,
              type: c.type,
              description: c.description,
              jsonPath: c.jsonPath,
              ...(c.priority ? { priority: c.priority } : {}),
            })),
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
        },
      ],
    },
  };
}

/** Every CRD as one multi-document YAML stream (what `k8s4ai crds` prints). */
export function crdsYaml(kinds: readonly KindDefinition[] = K8S4AI_KINDS): string {
  return kinds.map((k) => `---\n${stringify(crdFor(k), { lineWidth: 0 })}`).join('');
}
