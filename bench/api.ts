// `npm run bench -- api`: the API server's throughput and watch latency over HTTP, for
// each store (SQLite, etcd). See runApiBench() for what is measured and how.

import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { startEtcd, type RunningEtcd } from '../test/helpers/etcd.ts';
import { startServerProcess, type ServerProcess } from './lib/server-process.ts';
import { Http, TASKS, describe, ensureNamespace, type HttpTarget } from './lib/http.ts';
import { runClosedLoop, type LoadResult } from './lib/load.ts';
import { runWatchBench, type WatchBenchResult } from './lib/watch.ts';
import { note } from './lib/progress.ts';
import { median, nowMs, round } from './lib/stats.ts';
import { summarizeProfiles } from './lib/cpuprofile.ts';
import { childPid, processArgs } from './lib/cpu.ts';

export type StoreKind = 'sqlite' | 'etcd';
export const PHASES = ['creates', 'updates', 'list', 'watch'] as const;
export type Phase = (typeof PHASES)[number];

export interface ApiBenchOptions {
  stores: StoreKind[];
  /** Seconds per throughput phase. */
  durationS: number;
  /** Concurrent clients for the create and update phases. */
  clients: number[];
  watchers: number;
  /** Objects in the list phase. */
  objects: number;
  /** Creates per second during the watch phase, for watchDurationS seconds. */
  watchRate: number;
  watchDurationS: number;
  warmupS: number;
  /** Which phases to run (all by default); a skipped phase's numbers are null. */
  phases: Phase[];
  /** Write V8 CPU profiles of the server process here (one per store); none when absent. */
  profileDir?: string;
}

export interface StoreResult {
  createsPerSecond: Record<string, number>;
  updatesPerSecond: Record<string, number>;
  list10kMs: number | null;
  watchP50Ms: number | null;
  watchP99Ms: number | null;
  /** Everything behind the headline numbers. */
  details: {
    storeUrl: string;
    creates: Record<string, LoadResult>;
    updates: Record<string, LoadResult>;
    updateMethod: string;
    list: ListResult | null;
    watch: WatchBenchResult | null;
    profile?: string[];
  };
}

interface ListResult {
  objects: number;
  /** Unpaged GET, request sent to last byte received; every run, then the median is list10kMs. */
  unpagedRunsMs: number[];
  responseBytes: number;
  /** GET with limit=500, following continue tokens (each page parsed for its token); median of the runs. */
  pagedLimit: number;
  pagedMedianMs: number;
  pagedRunsMs: number[];
  populate: LoadResult;
}

const task = (name: string, labels: Record<string, string> = { bench: 'api' }) =>
  JSON.stringify({ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name, labels }, spec: { command: ['true'] } });

/** A create op over `http`: POSTs a fresh Task named `${prefix}${seq}`. */
function createOp(http: Http, namespace: string, prefix: string) {
  const path = TASKS(namespace);
  return async (_client: number, seq: number): Promise<string | undefined> => {
    const res = await http.expect('POST', path, task(`${prefix}${seq}`), 201);
    return res.status === 201 ? undefined : describe(res);
  };
}

type Pids = Record<string, number | undefined>;

async function createPhase(target: HttpTarget, clients: number, durationS: number, namespace: string, label: string, cpuPids: Pids): Promise<LoadResult> {
  const http = new Http(target, clients);
  try {
    await ensureNamespace(http, namespace);
    return await runClosedLoop({ label, clients, durationMs: durationS * 1000, op: createOp(http, namespace, 'task-'), cpuPids });
  } finally {
    await http.close();
  }
}

/**
 * Updates: every client owns OBJECTS_PER_UPDATER Tasks and PUTs them in turn, each PUT
 * carrying the object exactly as the previous answer returned it (so with its
 * resourceVersion: an optimistic-concurrency update, like a controller's) with one
 * annotation changed. No two clients touch the same object, so there are no conflicts.
 */
const OBJECTS_PER_UPDATER = 8;
const UPDATE_METHOD = `PUT of the whole object with the resourceVersion from the previous response (metadata.annotations change; each client cycles over its own ${OBJECTS_PER_UPDATER} Tasks)`;

async function updatePhase(target: HttpTarget, clients: number, durationS: number, namespace: string, label: string, cpuPids: Pids): Promise<LoadResult> {
  const http = new Http(target, clients);
  try {
    await ensureNamespace(http, namespace);
    const owned: Record<string, unknown>[][] = [];
    for (let c = 0; c < clients; c++) {
      owned.push(
        await Promise.all(
          Array.from({ length: OBJECTS_PER_UPDATER }, async (_, k) => {
            const res = await http.call('POST', TASKS(namespace), task(`upd-${c}-${k}`));
            if (res.status !== 201) throw new Error(`creating the objects to update: ${describe(res)}`);
            return JSON.parse(res.body) as Record<string, unknown>;
          }),
        ),
      );
    }
    const turn = new Array<number>(clients).fill(0);
    return await runClosedLoop({
      label,
      clients,
      durationMs: durationS * 1000,
      cpuPids,
      op: async (c, seq) => {
        const k = turn[c]!++ % OBJECTS_PER_UPDATER;
        const obj = owned[c]![k]! as { metadata: { name: string; annotations?: Record<string, string> } };
        obj.metadata.annotations = { ...obj.metadata.annotations, 'bench.k8s4ai.io/seq': String(seq) };
        const res = await http.call('PUT', `${TASKS(namespace)}/${obj.metadata.name}`, JSON.stringify(obj));
        if (res.status !== 200) return describe(res);
        owned[c]![k] = JSON.parse(res.body) as Record<string, unknown>;
        return undefined;
      },
    });
  } finally {
    await http.close();
  }
}

async function listPhase(target: HttpTarget, objects: number, namespace: string, cpuPids: Pids): Promise<ListResult> {
  const POPULATE_CLIENTS = 16;
  const PAGE = 500;
  const RUNS = 3;
  const http = new Http(target, POPULATE_CLIENTS);
  try {
    await ensureNamespace(http, namespace);
    const populate = await runClosedLoop({
      label: `populate ${objects} objects`,
      clients: POPULATE_CLIENTS,
      total: objects,
      op: createOp(http, namespace, 'listed-'),
      cpuPids,
    });
    if (populate.errors > 0) throw new Error(`populating the list namespace: ${populate.errors} creates failed: ${populate.errorSamples.join('; ')}`);

    const unpagedRunsMs: number[] = [];
    let responseBytes = 0;
    for (let run = 0; run < RUNS; run++) {
      const t0 = nowMs();
      const res = await http.call('GET', TASKS(namespace));
      const ms = nowMs() - t0;
      if (res.status !== 200) throw new Error(`list: ${describe(res)}`);
      const count = (JSON.parse(res.body) as { items: unknown[] }).items.length;
      if (count !== objects) throw new Error(`list returned ${count} objects, expected ${objects}`);
      responseBytes = Buffer.byteLength(res.body);
      unpagedRunsMs.push(round(ms, 2));
    }

    const pagedRunsMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const t0 = nowMs();
      let count = 0;
      let token: string | undefined;
      do {
        const res = await http.call('GET', `${TASKS(namespace)}?limit=${PAGE}${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
        if (res.status !== 200) throw new Error(`paged list: ${describe(res)}`);
        const page = JSON.parse(res.body) as { items: unknown[]; metadata: { continue?: string } };
        count += page.items.length;
        token = page.metadata.continue;
      } while (token);
      const ms = nowMs() - t0;
      if (count !== objects) throw new Error(`paged list returned ${count} objects, expected ${objects}`);
      pagedRunsMs.push(round(ms, 2));
    }
    return {
      objects,
      unpagedRunsMs,
      responseBytes,
      pagedLimit: PAGE,
      pagedMedianMs: round(median(pagedRunsMs), 2),
      pagedRunsMs,
      populate,
    };
  } finally {
    await http.close();
  }
}

/** ", cores used: server 0.9, loadgen 0.4, other 0.1". */
function cpuNote(cpu: Record<string, number> | undefined): string {
  if (!cpu) return '';
  return `; cores used: ${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ')}`;
}

async function benchStore(kind: StoreKind, opts: ApiBenchOptions, cleanups: (() => Promise<void>)[]): Promise<StoreResult> {
  const dir = mkdtempSync(join(tmpdir(), `k8s4ai-bench-${kind}-`));
  // On Ctrl-C run.ts exits through process.exit(): the server and etcd are killed by their
  // own 'exit' handlers, and this one removes the directory.
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  cleanups.push(async () => {
    process.removeListener('exit', removeDir);
    removeDir();
  });
  let etcd: RunningEtcd | undefined;
  let server: ServerProcess | undefined;
  try {
    let storeUrl: string;
    if (kind === 'etcd') {
      note('starting etcd');
      etcd = await startEtcd();
      cleanups.push(() => etcd!.stop());
      // startEtcd() kills etcd when this process exits, but only stop() removes its data
      // directory: on Ctrl-C, remove it here (this handler runs after the kill).
      const etcdDir = processArgs(childPid('etcd') ?? -1).find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
      if (etcdDir) {
        const removeEtcdDir = () => {
          try {
            rmSync(etcdDir, { recursive: true, force: true });
          } catch {
            // etcd was still writing as it died; nothing more to do
          }
        };
        process.once('exit', removeEtcdDir);
        cleanups.push(async () => {
          process.removeListener('exit', removeEtcdDir);
        });
      }
      storeUrl = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}?prefix=/bench`;
    } else {
      storeUrl = `sqlite://${join(dir, 'state.db')}`;
    }
    note(`starting the control plane on ${storeUrl}`);
    const profileDir = opts.profileDir ? join(opts.profileDir, kind) : undefined;
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    server = await startServerProcess({ storeUrl, dataDir: join(dir, 'data'), cpuProfileDir: profileDir });
    cleanups.push(() => server!.stop());
    const target: HttpTarget = { url: server.url, token: server.token };
    const pids: Pids = { server: server.pid, ...(etcd ? { etcd: childPid('etcd') } : {}) };

    if (opts.warmupS > 0) {
      const warm = await createPhase(target, Math.max(...opts.clients), opts.warmupS, 'bench-warmup', `${kind} warm-up`, pids);
      if (warm.errors > 0) throw new Error(`warm-up: ${warm.errors} errors: ${warm.errorSamples.join('; ')}`);
    }

    const run = (phase: Phase) => opts.phases.includes(phase);
    const creates: Record<string, LoadResult> = {};
    for (const c of run('creates') ? opts.clients : []) {
      creates[c] = await createPhase(target, c, opts.durationS, `bench-create-${c}`, `${kind} creates, ${c} client${c > 1 ? 's' : ''}`, pids);
      note(`  ${kind} creates, ${c} client(s): ${creates[c]!.perSecond}/s (p50 ${creates[c]!.latencyP50Ms} ms, p99 ${creates[c]!.latencyP99Ms} ms, ${creates[c]!.errors} errors${cpuNote(creates[c]!.cpu)})`);
    }
    const updates: Record<string, LoadResult> = {};
    for (const c of run('updates') ? opts.clients : []) {
      updates[c] = await updatePhase(target, c, opts.durationS, `bench-update-${c}`, `${kind} updates, ${c} client${c > 1 ? 's' : ''}`, pids);
      note(`  ${kind} updates, ${c} client(s): ${updates[c]!.perSecond}/s (p50 ${updates[c]!.latencyP50Ms} ms, p99 ${updates[c]!.latencyP99Ms} ms, ${updates[c]!.errors} errors${cpuNote(updates[c]!.cpu)})`);
    }
    let list: ListResult | null = null;
    if (run('list')) {
      list = await listPhase(target, opts.objects, 'bench-list', pids);
      note(`  ${kind} list of ${opts.objects}: ${list.unpagedRunsMs.join(', ')} ms unpaged; ${list.pagedRunsMs.join(', ')} ms in pages of ${list.pagedLimit}`);
    }

    let watch: WatchBenchResult | null = null;
    if (run('watch')) {
      const http = new Http(target, 1);
      await ensureNamespace(http, 'bench-watch');
      await http.close();
      watch = await runWatchBench({ target, namespace: 'bench-watch', watchers: opts.watchers, rate: opts.watchRate, durationS: opts.watchDurationS, cpuPids: pids });
      note(`  ${kind} watch: p50 ${watch.p50Ms} ms, p99 ${watch.p99Ms} ms over ${watch.deliveries} deliveries (${watch.missed} missed${cpuNote(watch.cpu)})`);
    }

    await server.stop();
    const profile = profileDir ? summarizeProfiles(profileDir, 20) : undefined;
    return {
      createsPerSecond: Object.fromEntries(Object.entries(creates).map(([c, r]) => [c, r.perSecond])),
      updatesPerSecond: Object.fromEntries(Object.entries(updates).map(([c, r]) => [c, r.perSecond])),
      list10kMs: list ? round(median(list.unpagedRunsMs), 2) : null,
      watchP50Ms: watch ? watch.p50Ms : null,
      watchP99Ms: watch ? watch.p99Ms : null,
      details: { storeUrl, creates, updates, updateMethod: UPDATE_METHOD, list, watch, ...(profile ? { profile } : {}) },
    };
  } catch (err) {
    const serverErr = server?.stderr();
    throw new Error(`${kind}: ${(err as Error).message}${serverErr ? `\n--- server stderr ---\n${serverErr}` : ''}`);
  }
}

export async function runApiBench(opts: ApiBenchOptions): Promise<Record<string, StoreResult>> {
  const results: Record<string, StoreResult> = {};
  for (const kind of opts.stores) {
    const cleanups: (() => Promise<void>)[] = [];
    try {
      note(`== ${kind} ==`);
      results[kind] = await benchStore(kind, opts, cleanups);
    } finally {
      // Server first, then etcd, then the directories.
      for (const cleanup of cleanups.reverse()) await cleanup().catch((err: Error) => note(`cleanup: ${err.message}`));
    }
  }
  return results;
}

/** The store × metric table. */
export function renderTable(results: Record<string, StoreResult>, opts: ApiBenchOptions): string {
  const stores = Object.keys(results);
  const rows: [string, (r: StoreResult) => string][] = [];
  for (const c of opts.clients) rows.push([`creates/s, ${c} client${c > 1 ? 's' : ''}`, (r) => fmt(r.createsPerSecond[c])]);
  for (const c of opts.clients) rows.push([`updates/s (PUT), ${c} client${c > 1 ? 's' : ''}`, (r) => fmt(r.updatesPerSecond[c])]);
  rows.push([`list ${opts.objects} objects, ms (median of 3)`, (r) => fmt(r.list10kMs)]);
  rows.push([`  paged by 500, ms`, (r) => fmt(r.details.list?.pagedMedianMs)]);
  rows.push([`watch p50, ms (${opts.watchers} watchers)`, (r) => fmt(r.watchP50Ms)]);
  rows.push([`watch p99, ms (${opts.watchers} watchers)`, (r) => fmt(r.watchP99Ms)]);
  rows.push([`watch events missed`, (r) => (r.details.watch ? String(r.details.watch.missed) : '-')]);
  rows.push([
    `request errors (all phases)`,
    (r) =>
      String(
        [...Object.values(r.details.creates), ...Object.values(r.details.updates), ...(r.details.list ? [r.details.list.populate] : [])].reduce((n, l) => n + l.errors, 0) +
          (r.details.watch?.createErrors ?? 0),
      ),
  ]);
  rows.push([
    `cores used by other work, worst phase`,
    (r) => {
      const phases = [...Object.values(r.details.creates), ...Object.values(r.details.updates), r.details.list?.populate, r.details.watch];
      const other = phases.map((p) => p?.cpu?.other).filter((n): n is number => n !== undefined);
      return other.length ? Math.max(...other).toFixed(2) : '-';
    },
  ]);
  const w0 = Math.max(...rows.map(([l]) => l.length), 6);
  const cols = stores.map((s) => Math.max(s.length, ...rows.map(([, f]) => f(results[s]!).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w0) : c.padStart(cols[i - 1]!))).join('   ');
  const out = [line(['metric', ...stores]), line(['-'.repeat(w0), ...cols.map((n) => '-'.repeat(n))])];
  for (const [label, f] of rows) out.push(line([label, ...stores.map((s) => f(results[s]!))]));
  return out.join('\n');
}

function fmt(n: number | null | undefined): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '-';
  return n >= 100 ? String(Math.round(n)) : n.toFixed(n >= 10 ? 1 : 2);
}

export function writeJson(file: string, doc: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

