// The Alibaba GPU cluster trace of 2023 ("openb", alibaba/clusterdata cluster-trace-gpu-v2023),
// as used by the FGD paper (Weng et al., USENIX ATC'23): node lists and pod lists in CSV, read
// into the scheduler's own model. One reader for every host: `k8s4ai sim`, `bench placement`.
//
// Nodes: `sn, cpu_milli, memory_mib, gpu, model`. Each GPU becomes a device of class `model`
// with that model's memory; the topology is flat (no leaf: the cache puts every node under one
// synthetic fabric). Pods: `name, cpu_milli, memory_mib, num_gpu, gpu_milli[, gpu_spec, qos,
// pod_phase, creation_time, deletion_time, scheduled_time]` — the optional columns may be absent
// (openb_pod_list_multigpu*.csv has only the first five).
//
// Errors name the file, the line and the column, e.g.
//   openb_pod_list_default.csv:12:4 (num_gpu): "x" is not a whole number ≥ 0
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { NodeInput } from '../scheduler/cache/cluster.ts';
import type { GangRequest, MemberRequest } from '../scheduler/framework/types.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/**
 * GPU memory per openb model, bytes. P100, T4, V100M16, V100M32 and A10 are the cards' own
 * sizes; G1, G2 and G3 are Alibaba-internal models whose specifications are not published:
 * 24, 32 and 80 GiB are guesses (openb pods ask for compute shares, never for GPU memory, so
 * these numbers constrain nothing in the traces). Unknown models get 16 GiB.
 */
export const OPENB_GPU_MEMORY: Readonly<Record<string, number>> = {
  P100: 16 * GiB,
  T4: 16 * GiB,
  V100M16: 16 * GiB,
  V100M32: 32 * GiB,
  A10: 24 * GiB,
  G1: 24 * GiB,
  G2: 32 * GiB,
  G3: 80 * GiB,
};
export const OPENB_DEFAULT_GPU_MEMORY = 16 * GiB;

/** One row of an openb pod list. */
export interface OpenbPod {
  name: string;
  cpuMilli: number;
  memoryMib: number;
  /** GPUs asked for (0–8). */
  numGpu: number;
  /** Share of each GPU in thousandths, clamped to 0–1000 (meaningful for sharing pods, numGpu 1). */
  gpuMilli: number;
  /** Allowed GPU models (empty: any). */
  gpuSpec: string[];
  qos?: string;
  phase?: string;
  /** Trace timestamps in seconds; undefined where the column is absent or empty. */
  creationTime?: number;
  deletionTime?: number;
  scheduledTime?: number;
  /** 1-based line in the CSV file, for messages. */
  line: number;
}

export class OpenbFormatError extends Error {
  readonly code = 'K8S4AI_OPENB_FORMAT';
}

// ---- CSV ------------------------------------------------------------------------------------

interface Row {
  line: number;
  fields: string[];
}

/** Splits CSV text into rows (RFC 4180 quoting; blank lines skipped). */
function parseCsv(text: string, file: string): Row[] {
  const rows: Row[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let blank = true;
    for (;;) {
      if (i >= n) {
        if (quoted) throw new OpenbFormatError(`${file}:${start}: unterminated quoted field`);
        fields.push(field);
        break;
      }
      const c = text[i]!;
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          quoted = false;
          i++;
          continue;
        }
        if (c === '\n') line++;
        field += c;
        i++;
        continue;
      }
      if (c === '"' && field === '') {
        quoted = true;
        blank = false;
        i++;
        continue;
      }
      if (c === ',') {
        fields.push(field);
        field = '';
        blank = false;
        i++;
        continue;
      }
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
        continue;
      }
      if (c === '\n') {
        fields.push(field);
        i++;
        line++;
        break;
      }
      if (c !== ' ' && c !== '\t') blank = false;
      field += c;
      i++;
    }
    if (!(blank && fields.length === 1 && fields[0]!.trim() === '')) rows.push({ line: start, fields });
  }
  return rows;
}

class Table {
  readonly columns: Map<string, number>;
  constructor(
    readonly file: string,
    header: Row,
    readonly rows: Row[],
    required: string[],
  ) {
    this.columns = new Map(header.fields.map((h, i) => [h.trim(), i]));
    const missing = required.filter((c) => !this.columns.has(c));
    if (missing.length) throw new OpenbFormatError(`${file}:${header.line}: missing column(s) ${missing.join(', ')} (header: ${header.fields.join(',')})`);
  }

  has(column: string): boolean {
    return this.columns.has(column);
  }

  private where(row: Row, column: string): string {
    return `${this.file}:${row.line}:${(this.columns.get(column) ?? 0) + 1} (${column})`;
  }

  str(row: Row, column: string): string {
    const i = this.columns.get(column);
    return i === undefined ? '' : (row.fields[i] ?? '').trim();
  }

  /** A whole number ≥ 0; `optional` columns may be empty (undefined). */
  int(row: Row, column: string, optional = false): number | undefined {
    const raw = this.str(row, column);
    if (raw === '') {
      if (optional || !this.has(column)) return undefined;
      throw new OpenbFormatError(`${this.where(row, column)}: empty; expected a whole number ≥ 0`);
    }
    // Timestamps and counts sometimes come as "12.0" from pandas.
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0 || !Number.isInteger(v)) throw new OpenbFormatError(`${this.where(row, column)}: "${raw}" is not a whole number ≥ 0`);
    return v;
  }

  required(row: Row, column: string): number {
    return this.int(row, column)!;
  }

  check(row: Row): void {
    if (row.fields.length > this.columns.size) {
      throw new OpenbFormatError(`${this.file}:${row.line}:${this.columns.size + 1}: ${row.fields.length} fields, the header has ${this.columns.size}`);
    }
  }
}

function table(text: string, file: string, required: string[]): Table {
  const rows = parseCsv(text, file);
  const header = rows.shift();
  if (!header) throw new OpenbFormatError(`${file}:1: empty file (expected a header: ${required.join(',')})`);
  return new Table(file, header, rows, required);
}

// ---- nodes ----------------------------------------------------------------------------------

const NODE_COLUMNS = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'];

/** Parses an openb node list (the text of the CSV); `file` names it in errors. */
export function parseOpenbNodes(text: string, file = 'nodes.csv'): NodeInput[] {
  const t = table(text, file, NODE_COLUMNS);
  const seen = new Set<string>();
  const out: NodeInput[] = [];
  for (const row of t.rows) {
    t.check(row);
    const name = t.str(row, 'sn');
    if (!name) throw new OpenbFormatError(`${file}:${row.line}:${t.columns.get('sn')! + 1} (sn): empty node name`);
    if (seen.has(name)) throw new OpenbFormatError(`${file}:${row.line}:${t.columns.get('sn')! + 1} (sn): node "${name}" listed twice`);
    seen.add(name);
    const cpuMilli = t.required(row, 'cpu_milli');
    const memoryMib = t.required(row, 'memory_mib');
    const gpus = t.required(row, 'gpu');
    const model = t.str(row, 'model');
    if (gpus > 0 && !model) throw new OpenbFormatError(`${file}:${row.line}:${t.columns.get('model')! + 1} (model): node "${name}" has ${gpus} GPU(s) but no model`);
    const memory = OPENB_GPU_MEMORY[model] ?? OPENB_DEFAULT_GPU_MEMORY;
    out.push({
      name,
      labels: model ? { 'k8s4ai.io/gpu-model': model } : {},
      cpuMilli,
      memoryBytes: memoryMib * MiB,
      devices: Array.from({ length: gpus }, (_, index) => ({
        index,
        uuid: `${name}-gpu${index}`,
        className: model,
        attrs: { productName: model, memory: String(memory) },
        memoryBytes: memory,
      })),
    });
  }
  return out;
}

/** Reads an openb node list (`openb_node_list_*.csv`). */
export function loadOpenbNodes(csvPath: string): NodeInput[] {
  return parseOpenbNodes(readFileSync(csvPath, 'utf8'), basename(csvPath));
}

// ---- pods -----------------------------------------------------------------------------------

const POD_COLUMNS = ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli'];

/** Parses an openb pod list (the text of the CSV); `file` names it in errors. */
export function parseOpenbPods(text: string, file = 'pods.csv'): OpenbPod[] {
  const t = table(text, file, POD_COLUMNS);
  const out: OpenbPod[] = [];
  for (const row of t.rows) {
    t.check(row);
    const name = t.str(row, 'name');
    if (!name) throw new OpenbFormatError(`${file}:${row.line}:${t.columns.get('name')! + 1} (name): empty pod name`);
    const numGpu = t.required(row, 'num_gpu');
    const rawMilli = t.required(row, 'gpu_milli');
    const spec = t.str(row, 'gpu_spec');
    const pod: OpenbPod = {
      name,
      cpuMilli: t.required(row, 'cpu_milli'),
      memoryMib: t.required(row, 'memory_mib'),
      numGpu,
      // As the FGD simulator's converter does: shares above a whole GPU are one whole GPU.
      gpuMilli: numGpu === 0 ? 0 : Math.min(1000, rawMilli),
      gpuSpec: spec ? spec.split('|').map((s) => s.trim()).filter(Boolean) : [],
      line: row.line,
    };
    const qos = t.str(row, 'qos');
    if (qos) pod.qos = qos;
    const phase = t.str(row, 'pod_phase');
    if (phase) pod.phase = phase;
    const created = t.int(row, 'creation_time', true);
    if (created !== undefined) pod.creationTime = created;
    const deleted = t.int(row, 'deletion_time', true);
    if (deleted !== undefined) pod.deletionTime = deleted;
    const scheduled = t.int(row, 'scheduled_time', true);
    if (scheduled !== undefined) pod.scheduledTime = scheduled;
    out.push(pod);
  }
  return out;
}

/** Reads an openb pod list (`openb_pod_list_*.csv`). */
export function loadOpenbPods(csvPath: string): OpenbPod[] {
  return parseOpenbPods(readFileSync(csvPath, 'utf8'), basename(csvPath));
}

// ---- into the scheduler's model ---------------------------------------------------------------

/** Whether the pod takes a share of one GPU (rather than whole GPUs or none). */
export function isSharingPod(pod: Pick<OpenbPod, 'numGpu' | 'gpuMilli'>): boolean {
  return pod.numGpu === 1 && pod.gpuMilli > 0 && pod.gpuMilli < 1000;
}

/** GPU thousandths the pod asks for in all (a share, or 1000 per whole GPU). */
export function openbPodGpuMilli(pod: Pick<OpenbPod, 'numGpu' | 'gpuMilli'>): number {
  if (pod.numGpu === 0) return 0;
  return isSharingPod(pod) ? pod.gpuMilli : pod.numGpu * 1000;
}

/** The member request of an openb pod. */
export function openbPodToMember(pod: OpenbPod): MemberRequest {
  const share = isSharingPod(pod);
  const member: MemberRequest = {
    id: 'pod-0',
    role: 'pod',
    index: 0,
    gpus: share ? 0 : pod.numGpu,
    gpuMilli: share ? pod.gpuMilli : 0,
    vramBytes: 0,
    cpuMilli: pod.cpuMilli,
    memoryBytes: pod.memoryMib * MiB,
  };
  if (pod.numGpu > 0 && pod.gpuSpec.length) member.allowedClasses = [...new Set(pod.gpuSpec)];
  return member;
}

/**
 * A one-member gang for an openb pod. `seq` is the arrival number: it orders the gangs and
 * makes ids unique (resampled traces repeat pod names).
 */
export function openbPodToGang(pod: OpenbPod, seq: number): GangRequest {
  return {
    id: `openb/${seq}-${pod.name}`,
    namespace: 'openb',
    name: `${pod.name}-${seq}`,
    queue: 'default',
    priority: 0,
    createdAt: seq,
    members: [openbPodToMember(pod)],
    minMember: 1,
  };
}
