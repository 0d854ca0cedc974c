// Simulator workloads: gangs with an arrival time and a run time.
//
// A manifest workload is a YAML file (or several documents) of ordinary k8s4ai manifests,
// GangSchedulingGroups and InferenceServices, validated against their schemas exactly as
// the API server would. Two ways to say when each arrives and how long it runs:
//
// 1. Annotations on each manifest (the file stays a plain manifest file that `kubectl apply`
//    also accepts; the control plane ignores these annotations):
//
//      apiVersion: k8s4ai.io/v1alpha1
//      kind: GangSchedulingGroup
//      metadata:
//        name: pretrain
//        annotations:
//          sim.k8s4ai.io/arrival: 30m      # when it is submitted (default 0s)
//          sim.k8s4ai.io/duration: 6h      # how long it runs once placed (default: to the end)
//          sim.k8s4ai.io/repeat: "10"      # submit this many copies (default 1) …
//          sim.k8s4ai.io/every: 45m        # … this far apart (default 0s)
//      spec: { … }
//
// 2. A document that is a YAML sequence of entries, each wrapping one manifest:
//
//      - at: 0s              # arrival (default 0s)
//        duration: 2h        # run time (default: to the end)
//        repeat: 3           # copies (default 1)
//        every: 10m          # between copies (default 0s)
//        manifest:
//          apiVersion: k8s4ai.io/v1alpha1
//          kind: GangSchedulingGroup
//          metadata: { name: finetune }
//          spec: { … }
//
// Durations are Go-style ("90s", "1h30m") or numbers of seconds. Copies are named
// <name>-1, <name>-2, …. An InferenceService becomes one gang per replica
// (membersPerReplica members each). Other kinds (Queues, Namespaces, …) are skipped and
// listed, so a folder of manifests can be replayed as it is. A gang's spec.scheduleTimeout
// is how long it may wait before it gives up.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../api/meta.ts';
import { API_VERSION } from '../api/kind.ts';
import { parseDuration } from '../api/duration.ts';
import { compileValidator, type KindValidator } from '../api/validate.ts';
import { GangSchedulingGroup } from '../api/kinds/gangschedulinggroup.ts';
import { InferenceService, type InferenceServiceSpec } from '../api/kinds/inferenceservice.ts';
import type { GangSchedulingGroupSpec } from '../api/kinds/gangschedulinggroup.ts';
import { gangRequest } from '../scheduler/objects.ts';
import type { GangRequest } from '../scheduler/framework/types.ts';

export interface SimJob {
  gang: GangRequest;
  /** Seconds from the start of the simulation. */
  arrival: number;
  /** Seconds the gang runs once placed; absent: until the end of the simulation. */
  duration?: number;
  /** Seconds the gang may wait before it gives up (spec.scheduleTimeout); absent: forever. */
  timeout?: number;
}

export const ANNOTATION_ARRIVAL = 'sim.k8s4ai.io/arrival';
export const ANNOTATION_DURATION = 'sim.k8s4ai.io/duration';
export const ANNOTATION_REPEAT = 'sim.k8s4ai.io/repeat';
export const ANNOTATION_EVERY = 'sim.k8s4ai.io/every';

export class SimWorkloadError extends Error {
  readonly code = 'K8S4AI_SIM_WORKLOAD';
  constructor(
    readonly source: string,
    readonly field: string,
    reason: string,
  ) {
    super(field ? `${source}: ${field}: ${reason}` : `${source}: ${reason}`);
  }
}

export interface ManifestWorkload {
  jobs: SimJob[];
  /** "<kind>/<name>" of documents that are not workloads. */
  skipped: string[];
}

const ENTRY_FIELDS = new Set(['at', 'duration', 'repeat', 'every', 'manifest']);

let validators: Map<string, KindValidator> | undefined;
function validatorFor(kind: string): KindValidator | undefined {
  validators ??= new Map([
    [GangSchedulingGroup.kind, compileValidator(GangSchedulingGroup)],
    [InferenceService.kind, compileValidator(InferenceService)],
  ]);
  return validators.get(kind);
}

function seconds(source: string, field: string, raw: unknown): number {
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw < 0) throw new SimWorkloadError(source, field, `must be a non-negative number of seconds, not ${raw}`);
    return raw;
  }
  try {
    return parseDuration(String(raw));
  } catch (err) {
    throw new SimWorkloadError(source, field, (err as Error).message);
  }
}

function count(source: string, field: string, raw: unknown): number {
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new SimWorkloadError(source, field, `must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
}

interface Timing {
  at: number;
  duration?: number;
  repeat: number;
  every: number;
}

/** A validated GangSchedulingGroup or InferenceService as gang requests (one per replica for a service). */
export function manifestGangs(obj: KubeObject, where: string): GangRequest[] {
  const validator = validatorFor(obj.kind);
  if (!validator || obj.apiVersion !== API_VERSION) throw new SimWorkloadError(where, 'kind', `${obj.apiVersion}/${obj.kind} is not a workload`);
  const copy = structuredClone(obj);
  const { causes } = validator.validate(copy);
  if (causes.length) throw new SimWorkloadError(where, causes[0]!.field, causes[0]!.message);
  if (copy.kind === GangSchedulingGroup.kind) return [gangRequest(copy)];
  const spec = copy.spec as InferenceServiceSpec;
  const gangs: GangRequest[] = [];
  for (let r = 0; r < spec.replicas; r++) {
    const gangSpec: GangSchedulingGroupSpec = {
      roles: [{ name: 'replica', replicas: spec.membersPerReplica, template: spec.template }],
      ...(spec.queueName ? { queueName: spec.queueName } : {}),
      ...(spec.priority !== undefined ? { priority: spec.priority } : {}),
      ...(spec.topology ? { topology: spec.topology } : {}),
    };
    gangs.push(gangRequest({ ...copy, kind: GangSchedulingGroup.kind, metadata: { ...copy.metadata, name: `${copy.metadata.name}-r${r}` }, spec: gangSpec }));
  }
  return gangs;
}

function jobsOf(obj: KubeObject, timing: Timing, where: string): SimJob[] {
  const gangs = manifestGangs(obj, where);
  const spec = obj.spec as { scheduleTimeout?: string } | undefined;
  const timeout = spec?.scheduleTimeout !== undefined ? seconds(where, 'spec.scheduleTimeout', spec.scheduleTimeout) : undefined;
  const jobs: SimJob[] = [];
  for (let k = 0; k < timing.repeat; k++) {
    const arrival = timing.at + k * timing.every;
    for (const g of gangs) {
      const suffix = timing.repeat > 1 ? `-${k + 1}` : '';
      const gang: GangRequest = { ...g, id: `${g.id}${suffix}`, name: `${g.name}${suffix}`, createdAt: Math.round(arrival * 1000), members: g.members.map((m) => ({ ...m })) };
      jobs.push({ gang, arrival, ...(timing.duration !== undefined ? { duration: timing.duration } : {}), ...(timeout !== undefined ? { timeout } : {}) });
    }
  }
  return jobs;
}

function annotationTiming(obj: KubeObject, where: string): Timing {
  const a = obj.metadata?.annotations ?? {};
  const field = (k: string) => `metadata.annotations[${k}]`;
  return {
    at: a[ANNOTATION_ARRIVAL] !== undefined ? seconds(where, field(ANNOTATION_ARRIVAL), a[ANNOTATION_ARRIVAL]) : 0,
    ...(a[ANNOTATION_DURATION] !== undefined ? { duration: seconds(where, field(ANNOTATION_DURATION), a[ANNOTATION_DURATION]) } : {}),
    repeat: a[ANNOTATION_REPEAT] !== undefined ? count(where, field(ANNOTATION_REPEAT), a[ANNOTATION_REPEAT]) : 1,
    every: a[ANNOTATION_EVERY] !== undefined ? seconds(where, field(ANNOTATION_EVERY), a[ANNOTATION_EVERY]) : 0,
  };
}

const isWorkload = (o: KubeObject) => o.kind === GangSchedulingGroup.kind || o.kind === InferenceService.kind;
const describeObj = (o: KubeObject) => `${o.kind ?? '?'}/${o.metadata?.name ?? '?'}`;

/** Parses a manifest workload (either form, mixed freely across documents). */
export function parseWorkload(text: string, source = '<workload>'): ManifestWorkload {
  const jobs: SimJob[] = [];
  const skipped: string[] = [];
  let docIndex = 0;
  for (const doc of parseAllDocuments(text)) {
    docIndex++;
    const here = `${source} (document ${docIndex})`;
    if (doc.errors.length) throw new SimWorkloadError(here, '', `invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) {
      value.forEach((entry: unknown, i: number) => {
        const at = `${here}[${i}]`;
        if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw new SimWorkloadError(at, '', 'each entry must be an object with a manifest');
        const e = entry as Record<string, unknown>;
        for (const k of Object.keys(e)) if (!ENTRY_FIELDS.has(k)) throw new SimWorkloadError(at, k, `unknown field (use ${[...ENTRY_FIELDS].join(', ')})`);
        const manifest = e.manifest as KubeObject | undefined;
        if (!manifest || typeof manifest !== 'object') throw new SimWorkloadError(at, 'manifest', 'required: the GangSchedulingGroup or InferenceService to submit');
        if (!isWorkload(manifest)) throw new SimWorkloadError(at, 'manifest.kind', `must be GangSchedulingGroup or InferenceService, not ${String(manifest.kind)}`);
        const timing: Timing = {
          at: e.at !== undefined ? seconds(at, 'at', e.at) : 0,
          ...(e.duration !== undefined ? { duration: seconds(at, 'duration', e.duration) } : {}),
          repeat: e.repeat !== undefined ? count(at, 'repeat', e.repeat) : 1,
          every: e.every !== undefined ? seconds(at, 'every', e.every) : 0,
        };
        jobs.push(...jobsOf(manifest, timing, `${at} ${describeObj(manifest)}`));
      });
      continue;
    }
    if (typeof value !== 'object') throw new SimWorkloadError(here, '', 'each document must be a manifest or a list of entries');
    const obj = value as KubeObject;
    if (!isWorkload(obj)) {
      skipped.push(describeObj(obj));
      continue;
    }
    const where = `${here} ${describeObj(obj)}`;
    jobs.push(...jobsOf(obj, annotationTiming(obj, where), where));
  }
  const seen = new Map<string, number>();
  for (const j of jobs) {
    if (seen.has(j.gang.id)) throw new SimWorkloadError(source, 'metadata.name', `gang ${j.gang.id} is submitted twice: give each a unique name (repeats are named <name>-1, <name>-2, …)`);
    seen.set(j.gang.id, 1);
  }
  return { jobs: sortJobs(jobs), skipped };
}

export function loadWorkload(path: string): ManifestWorkload {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SimWorkloadError(path, '', `cannot read: ${(err as Error).message}`);
  }
  return parseWorkload(text, path);
}

/** Jobs by arrival, stable. */
export function sortJobs(jobs: SimJob[]): SimJob[] {
  return jobs.map((j, i) => [j, i] as const).sort((a, b) => a[0].arrival - b[0].arrival || a[1] - b[1]).map(([j]) => j);
}
