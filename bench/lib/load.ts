// Closed-loop load: N clients, each sending its next request as soon as the previous one
// has been answered, for a fixed time or a fixed number of requests.

import { startCpuMeter, type CpuUsage } from './cpu.ts';
import { progressBar } from './progress.ts';
import { nowMs, quantile, round, sleep } from './stats.ts';

/** One request of a client; resolves to undefined on success or to an error description. */
export type Op = (client: number, seq: number) => Promise<string | undefined>;

export interface LoadResult {
  ok: number;
  errors: number;
  /** A few error descriptions (HTTP status, reason, message) for the report. */
  errorSamples: string[];
  elapsedMs: number;
  /** Successful requests per second over the whole phase. */
  perSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Average cores each process used during the phase (see cpu.ts). */
  cpu?: CpuUsage;
}

/** Requests that failed without an HTTP answer (connection refused/reset) before a phase gives up. */
const MAX_TRANSPORT_ERRORS = 200;

interface Run {
  label: string;
  clients: number;
  op: Op;
  /** Stop after this long... */
  durationMs?: number;
  /** ...or after this many requests (shared by the clients). */
  total?: number;
  /** Processes whose CPU use to report beside the load generator's (server, etcd). */
  cpuPids?: Record<string, number | undefined>;
}

export async function runClosedLoop(run: Run): Promise<LoadResult> {
  const { clients, op, durationMs, total } = run;
  if ((durationMs === undefined) === (total === undefined)) throw new Error('runClosedLoop: give durationMs or total');
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let ok = 0;
  let errors = 0;
  let transportErrors = 0;
  let next = 0;
  let abort: Error | undefined;
  const meter = startCpuMeter(run.cpuPids ?? {});
  const start = nowMs();
  const deadline = durationMs !== undefined ? start + durationMs : Infinity;

  const bar =
    durationMs !== undefined
      ? progressBar(run.label, Math.round(durationMs / 1000), 's')
      : progressBar(run.label, total!, 'requests');
  const ticker = setInterval(() => {
    const elapsed = nowMs() - start;
    const rate = `${Math.round((ok / elapsed) * 1000)}/s, ${errors} errors`;
    bar.update(durationMs !== undefined ? Math.floor(elapsed / 1000) : ok + errors, { info: rate });
  }, 250);

  const client = async (c: number) => {
    for (;;) {
      if (abort) return;
      if (total !== undefined ? next >= total : nowMs() >= deadline) return;
      const seq = next++;
      const t0 = nowMs();
      try {
        const err = await op(c, seq);
        if (err === undefined) {
          ok++;
          latencies.push(nowMs() - t0);
        } else {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(err);
        }
      } catch (e) {
        errors++;
        transportErrors++;
        if (errorSamples.length < 5) errorSamples.push((e as Error).message);
        if (transportErrors >= MAX_TRANSPORT_ERRORS) abort = new Error(`${run.label}: ${transportErrors} requests failed without an answer (last: ${(e as Error).message})`);
        await sleep(10);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  } finally {
    clearInterval(ticker);
    bar.stop();
  }
  const elapsedMs = nowMs() - start;
  const cpu = meter.stop();
  if (abort) throw abort;
  return {
    ok,
    errors,
    errorSamples,
    elapsedMs: round(elapsedMs, 1),
    perSecond: round((ok / elapsedMs) * 1000, 1),
    latencyP50Ms: round(quantile(latencies, 0.5), 3),
    latencyP99Ms: round(quantile(latencies, 0.99), 3),
    ...(cpu ? { cpu } : {}),
  };
}
