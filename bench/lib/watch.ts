// The watch benchmark (load-generator side): opens the watchers in a child process
// (watch-worker.ts), creates objects at a steady rate, and measures for every
// (watcher, object) pair the delay from the create's acknowledgement (the 201's headers
// reaching the load generator) to that watcher receiving the ADDED event.

import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCpuMeter, type CpuUsage } from './cpu.ts';
import { Http, TASKS, describe, type HttpTarget } from './http.ts';
import { progressBar } from './progress.ts';
import { nowMs, quantile, round, sleep } from './stats.ts';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'watch-worker.ts');

export interface WatchBenchOptions {
  target: HttpTarget;
  namespace: string;
  watchers: number;
  /** Creates per second while the watchers listen. */
  rate: number;
  durationS: number;
  /** Processes whose CPU use to report beside the load generator's and the watch worker's. */
  cpuPids?: Record<string, number | undefined>;
}

export interface WatchBenchResult {
  watchers: number;
  objects: number;
  ratePerSecond: number;
  /** ack: from the 201 reaching the load generator; send: from just before the request was sent. */
  measuredFrom: 'ack';
  deliveries: number;
  missed: number;
  /**
   * Delivery delays after the acknowledgement; a delivery that beat the acknowledgement
   * counts as 0 ms (see beforeAckShare; the raw quantiles are beside).
   */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  rawP50Ms: number;
  rawP99Ms: number;
  minMs: number;
  /**
   * Share of deliveries that reached the watch worker before the 201 reached the load
   * generator (negative delays): the two processes read their sockets independently, so
   * sub-millisecond delays are within the measurement's noise.
   */
  beforeAckShare: number;
  p50FromSendMs: number;
  p99FromSendMs: number;
  /** Create round trip as the paced writer saw it. */
  createP50Ms: number;
  createP99Ms: number;
  createErrors: number;
  errorSamples: string[];
  /** Average cores each process used from the first create until the last event arrived. */
  cpu?: CpuUsage;
}

type WorkerMessage =
  | { type: 'opened' }
  | { type: 'error'; message: string }
  | { type: 'progress'; received: number }
  | { type: 'result'; times: number[][]; otherEvents: number; errors: string[] };

function startWorker(): { child: ChildProcess; next: (type: WorkerMessage['type'], timeoutMs: number) => Promise<WorkerMessage>; received: () => number } {
  const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
  let received = 0;
  const waiting = new Map<string, (m: WorkerMessage) => void>();
  let failure: Error | undefined;
  child.on('message', (m: WorkerMessage) => {
    if (m.type === 'progress') received = m.received;
    if (m.type === 'error') failure = new Error(`watch worker: ${m.message}`);
    const w = waiting.get(m.type) ?? (m.type === 'error' ? [...waiting.values()][0] : undefined);
    if (w) w(m);
  });
  child.on('exit', (code) => {
    if (!failure) failure = new Error(`the watch worker exited (code ${code})`);
    for (const w of waiting.values()) w({ type: 'error', message: failure.message });
  });
  const next = (type: WorkerMessage['type'], timeoutMs: number) =>
    new Promise<WorkerMessage>((resolve, reject) => {
      if (failure) return reject(failure);
      const timer = setTimeout(() => {
        waiting.delete(type);
        reject(new Error(`the watch worker sent no ${type} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      waiting.set(type, (m) => {
        clearTimeout(timer);
        waiting.delete(type);
        if (m.type === 'error') reject(new Error(m.message));
        else resolve(m);
      });
    });
  return { child, next, received: () => received };
}

export async function runWatchBench(opts: WatchBenchOptions): Promise<WatchBenchResult> {
  const { target, namespace, watchers, rate, durationS } = opts;
  const total = Math.max(1, Math.round(rate * durationS));
  const prefix = 'watched-';
  const http = new Http(target, 16);
  const worker = startWorker();
  try {
    // Watch from the collection's current resourceVersion: only the new objects arrive.
    const list = await http.call('GET', `${TASKS(namespace)}?limit=1`);
    if (list.status !== 200) throw new Error(`list before watch: ${describe(list)}`);
    const rv = (JSON.parse(list.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    worker.child.send({ type: 'open', url: target.url, token: target.token, path: `${TASKS(namespace)}?watch=true&resourceVersion=${rv}`, watchers, objects: total, namePrefix: prefix });
    await worker.next('opened', 60_000);

    const sentAt = new Float64Array(total).fill(-1);
    const ackAt = new Float64Array(total).fill(-1);
    const createLatency: number[] = [];
    const errorSamples: string[] = [];
    let createErrors = 0;
    const inFlight = new Set<Promise<void>>();
    const create = (i: number) => {
      const body = JSON.stringify({
        apiVersion: 'k8s4ai.io/v1alpha1',
        kind: 'Task',
        metadata: { name: `${prefix}${i}`, labels: { bench: 'watch' } },
        spec: { command: ['true'] },
      });
      sentAt[i] = nowMs();
      const p = http.pool
        .request({ method: 'POST', path: TASKS(namespace), headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' }, body })
        .then(async (res) => {
          // The acknowledgement: the response's status line and headers have arrived.
          const at = nowMs();
          if (res.statusCode === 201) {
            await res.body.dump();
            ackAt[i] = at;
            createLatency.push(at - sentAt[i]!);
          } else {
            createErrors++;
            const text = await res.body.text();
            if (errorSamples.length < 5) errorSamples.push(describe({ status: res.statusCode, body: text }));
          }
        })
        .catch((err: Error) => {
          createErrors++;
          if (errorSamples.length < 5) errorSamples.push(err.message);
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };

    const meter = startCpuMeter({ ...opts.cpuPids, watchers: worker.child.pid });
    let cpu: CpuUsage | undefined;
    const expected = total * watchers;
    const bar = progressBar(`watch ${watchers}×${total} @${rate}/s`, expected, 'events');
    const ticker = setInterval(() => bar.update(worker.received(), { info: `${createErrors} create errors` }), 200);
    try {
      // Open loop at a fixed rate: a slow server does not slow the writer down.
      const start = nowMs();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((nowMs() - start) * rate) / 1000) + 1);
        while (sent < due) create(sent++);
        await sleep(1);
      }
      await Promise.all([...inFlight]);
      // Let the last events arrive: until all are in, or 10 s without any progress.
      let last = worker.received();
      let lastChange = nowMs();
      while (worker.received() < expected - createErrors * watchers && nowMs() - lastChange < 10_000) {
        await sleep(50);
        if (worker.received() !== last) {
          last = worker.received();
          lastChange = nowMs();
        }
      }
    } finally {
      cpu = meter.stop();
      clearInterval(ticker);
      bar.stop();
    }

    worker.child.send({ type: 'finish' });
    const result = (await worker.next('result', 60_000)) as Extract<WorkerMessage, { type: 'result' }>;
    const fromAck: number[] = [];
    const fromSend: number[] = [];
    let missed = 0;
    for (const times of result.times) {
      for (let i = 0; i < total; i++) {
        if (ackAt[i]! < 0) continue; // the create failed; counted in createErrors
        const t = times[i]!;
        if (t < 0) {
          missed++;
          continue;
        }
        fromAck.push(t - ackAt[i]!);
        fromSend.push(t - sentAt[i]!);
      }
    }
    return {
      watchers,
      objects: total,
      ratePerSecond: rate,
      measuredFrom: 'ack',
      deliveries: fromAck.length,
      missed,
      p50Ms: round(Math.max(0, quantile(fromAck, 0.5)), 3),
      p90Ms: round(Math.max(0, quantile(fromAck, 0.9)), 3),
      p99Ms: round(Math.max(0, quantile(fromAck, 0.99)), 3),
      maxMs: round(Math.max(0, quantile(fromAck, 1)), 3),
      rawP50Ms: round(quantile(fromAck, 0.5), 3),
      rawP99Ms: round(quantile(fromAck, 0.99), 3),
      minMs: round(quantile(fromAck, 0), 3),
      beforeAckShare: round(fromAck.filter((d) => d < 0).length / Math.max(1, fromAck.length), 3),
      p50FromSendMs: round(quantile(fromSend, 0.5), 3),
      p99FromSendMs: round(quantile(fromSend, 0.99), 3),
      createP50Ms: round(quantile(createLatency, 0.5), 3),
      createP99Ms: round(quantile(createLatency, 0.99), 3),
      createErrors,
      errorSamples: [...errorSamples, ...result.errors].slice(0, 5),
      ...(cpu ? { cpu } : {}),
    };
  } finally {
    if (worker.child.connected) worker.child.disconnect();
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      const gone = new Promise((resolve) => worker.child.once('exit', resolve));
      const kill = setTimeout(() => worker.child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(kill);
    }
    await http.close();
  }
}
