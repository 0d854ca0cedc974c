// What the API knows about one kind: its names, scope, schema and how it prints.
import type { TSchema } from './schema.ts';
import type { KubeObject } from './meta.ts';

export const GROUP = 'k8s4ai.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORIES = ['all', 'k8s4ai'] as const;

/** One column of `kubectl get` (Table form) and of the CRD's additionalPrinterColumns. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  description: string;
  /** JSONPath for the CRD's additionalPrinterColumns; the server uses `value` when present. */
  jsonPath: string;
  /** Shown only with `-o wide`. */
  priority?: number;
  /** Computes the cell when a plain path cannot (sums, counts, derived state). */
  value?: (obj: KubeObject) => string | number | boolean | undefined;
}

export interface KindDefinition {
  group: string; // '' for the core group
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  categories: string[];
  description: string;
  /** The spec schema; absent for kinds without spec/status split (Event). */
  spec?: TSchema;
  status?: TSchema;
  /** Extra top-level fields beside metadata (Event keeps its fields at the top level). */
  topLevel?: Record<string, TSchema>;
  /** Columns after NAME; AGE is appended for every kind. */
  columns: PrinterColumn[];
  /** Field selectors this kind supports beyond metadata.name/namespace (dotted paths). */
  selectableFields?: string[];
  /** A spec is required on create. */
  specRequired?: boolean;
}

export const apiVersionOf = (def: Pick<KindDefinition, 'group' | 'version'>): string =>
  def.group ? `${def.group}/${def.version}` : def.version;

/** Reads a dotted path (`spec.nodeName`, `status.conditions`) from an object. */
export function readPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
