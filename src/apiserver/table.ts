// The Table form (meta.k8s.io/v1) that `kubectl get` asks for: NAME, the kind's own
// columns, AGE. Rows carry the object's metadata so kubectl can add NAMESPACE itself.
import type { KindDefinition, PrinterColumn } from '../api/kind.ts';
import { readPath } from '../api/kind.ts';
import type { KubeObject, ListMeta } from '../api/meta.ts';

export const TABLE_ACCEPT = /as=Table/;

/** kubectl's short age: 45s, 12m, 5h, 3d, 2y. */
export function humanAge(since: string | undefined | null, now = Date.now()): string {
  if (!since) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 365 * 2) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

function cell(col: PrinterColumn, obj: KubeObject): unknown {
  const v = col.value ? col.value(obj) : readPath(obj, col.jsonPath.replace(/^\./, ''));
  if (v === undefined || v === null) return col.type === 'string' ? '' : null;
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

function columnDefinitions(def: KindDefinition) {
  return [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...def.columns.map((c) => ({ name: c.name, type: c.type === 'date' ? 'string' : c.type, format: '', description: c.description, priority: c.priority ?? 0 })),
    { name: 'Age', type: 'string', format: '', description: 'Time since creation.', priority: 0 },
  ];
}

export function toTable(def: KindDefinition, objects: KubeObject[], listMeta: ListMeta, withHeaders = true) {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: withHeaders ? columnDefinitions(def) : [],
    rows: objects.map((o) => ({
      cells: [o.metadata.name, ...def.columns.map((c) => cell(c, o)), humanAge(o.metadata.creationTimestamp as string | undefined)],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
