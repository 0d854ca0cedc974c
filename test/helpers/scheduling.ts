// Helpers for the scheduler tests: gang manifests, waiting for a condition with a
// deadline, reading bound Tasks and the Prometheus text format.
import type { KubeObject, Condition } from '../../src/api/meta.ts';
import type { TaskSpec } from '../../src/api/kinds/task.ts';
import type { DeviceAssignment } from '../../src/api/kinds/workload.ts';
import { parseQuantity, quantityToNumber } from '../../src/api/quantity.ts';

export interface GangShape {
  replicas?: number;
  gpus?: number;
  vram?: string;
  computeMilli?: number;
  acceleratorClassName?: string;
  required?: string;
  preferred?: string;
  priority?: number;
  cpu?: string;
  memory?: string;
}

/** A one-role GangSchedulingGroup manifest. */
export function gangManifest(name: string, shape: GangShape = {}, namespace?: string): KubeObject {
  const resources: Record<string, unknown> = {};
  if (shape.gpus !== undefined) resources.gpus = shape.gpus;
  if (shape.vram !== undefined) resources.vram = shape.vram;
  if (shape.computeMilli !== undefined) resources.computeMilli = shape.computeMilli;
  if (shape.acceleratorClassName) resources.acceleratorClassName = shape.acceleratorClassName;
  resources.cpu = shape.cpu ?? '1';
  resources.memory = shape.memory ?? '1Gi';
  const topology = shape.required || shape.preferred ? { topology: { ...(shape.required ? { required: shape.required } : {}), ...(shape.preferred ? { preferred: shape.preferred } : {}) } } : {};
  return {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'GangSchedulingGroup',
    metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: {
      ...(shape.priority !== undefined ? { priority: shape.priority } : {}),
      ...topology,
      roles: [{ name: 'worker', replicas: shape.replicas ?? 1, template: { command: ['python3', 'train.py'], env: [{ name: 'ROLE', value: 'worker' }], resources } }],
    },
  };
}

export const conditionOf = (obj: KubeObject, type: string): Condition | undefined =>
  ((obj.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

export const phaseOf = (obj: KubeObject): string | undefined => (obj.status as { phase?: string } | undefined)?.phase;

export const taskSpec = (t: KubeObject) => t.spec as TaskSpec;

/** Bytes of a quantity. */
export const bytes = (q: string | number | undefined): number => (q === undefined ? 0 : quantityToNumber(parseQuantity(q)));

/**
 * Checks that no device is given twice: per node and GPU index, whole devices are held by
 * one Task alone, and shares add up to at most the device's compute and memory. Returns
 * the problems found (empty when none).
 */
export function deviceConflicts(tasks: KubeObject[], nodes: KubeObject[]): string[] {
  const memoryOf = new Map<string, number>();
  for (const n of nodes) {
    for (const g of (n.status as { gpus?: { index: number; memory: string; reservedMemory?: string }[] }).gpus ?? []) {
      memoryOf.set(`${n.metadata.name}/${g.index}`, bytes(g.memory) - bytes(g.reservedMemory));
    }
  }
  interface Use {
    whole: string[];
    shares: { task: string; a: DeviceAssignment }[];
    mig: Map<string, string>;
  }
  const use = new Map<string, Use>();
  for (const t of tasks) {
    const spec = taskSpec(t);
    if (!spec.nodeName) continue;
    for (const a of spec.devices ?? []) {
      const key = `${spec.nodeName}/${a.index}`;
      const u: Use = use.get(key) ?? { whole: [], shares: [], mig: new Map<string, string>() };
      use.set(key, u);
      if (a.migInstance !== undefined) {
        const inst = `${a.migProfile}/${a.migInstance}`;
        if (u.mig.has(inst)) u.whole.push(`${t.metadata.name} (MIG ${inst} also held by ${u.mig.get(inst)})`);
        u.mig.set(inst, t.metadata.name);
      } else if (a.vram === undefined && a.computeMilli === undefined) u.whole.push(t.metadata.name);
      else u.shares.push({ task: t.metadata.name, a });
    }
  }
  const problems: string[] = [];
  for (const [key, u] of use) {
    if (u.whole.length > 1 || (u.whole.length === 1 && (u.shares.length || u.mig.size))) {
      problems.push(`${key} held whole by ${u.whole.join(', ')} beside ${u.shares.map((s) => s.task).join(', ')}`);
    }
    const milli = u.shares.reduce((s, x) => s + (x.a.computeMilli ?? 0), 0);
    const memory = u.shares.reduce((s, x) => s + bytes(x.a.vram), 0);
    if (milli > 1000) problems.push(`${key}: shares take ${milli} milli of compute`);
    const mem = memoryOf.get(key);
    if (mem !== undefined && memory > mem) problems.push(`${key}: shares take ${memory} bytes of ${mem}`);
  }
  return problems;
}

/** The value of one sample in Prometheus text format (labels in any order), or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}
