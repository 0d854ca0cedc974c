// The simulator's outputs: a summary table for people, a JSON document for plots.
import { formatDuration } from '../api/duration.ts';
import type { SimResult } from './engine.ts';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const dur = (s: number) => (s > 0 && s < 1 ? `${s.toFixed(3)}s` : formatDuration(s));
const compact = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(1)}G` : x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Rows of (metric, value), in print order. */
export function summaryRows(result: SimResult): [string, string][] {
  const s = result.summary;
  const t = s.topology;
  const speed = result.wallMs > 0 ? s.simulatedS / (result.wallMs / 1000) : Infinity;
  return [
    ['gangs arrived', String(s.arrived)],
    ['gangs placed', String(s.placed)],
    ['gangs failed', String(s.failed)],
    ['gangs never placed (still waiting)', String(s.pending)],
    ['members placed', String(s.membersPlaced)],
    ['waiting time, mean', dur(s.waitMeanS)],
    ['waiting time, p99', dur(s.waitP99S)],
    ['GPU allocation, mean', pct(s.allocationMean)],
    ['GPU allocation, peak', pct(s.allocationPeak)],
    ['fragmentation (FGD), mean', pct(s.fragmentationMean)],
    ['multi-member gangs judged for topology', String(t.judged)],
    ['  placed within the lowest domain that could hold them', t.judged ? `${t.withinLowest} (${pct(t.withinLowestShare)})` : '-'],
    ['  mean span: leaves', t.judged ? t.meanLeaves.toFixed(2) : '-'],
    ['  mean span: nodes', t.judged ? t.meanNodes.toFixed(2) : '-'],
    ['  mean span: levels above node', t.judged ? t.meanLevelsAboveNode.toFixed(2) : '-'],
    ['simulated time', dur(s.simulatedS)],
    ['wall time', `${(result.wallMs / 1000).toFixed(2)}s`],
    ['speed-up over real time', Number.isFinite(speed) ? `${compact(speed)}×` : '-'],
    ['scheduling attempts', String(result.attempts)],
    ['time in the scheduler', `${(result.scheduleMs / 1000).toFixed(2)}s`],
  ];
}

export function renderSummary(result: SimResult, title?: string): string {
  const rows = summaryRows(result);
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = title ?? `k8s4ai sim: ${result.cluster.name} (${result.cluster.nodes} nodes, ${result.cluster.gpus} GPUs), policy ${result.policy}`;
  return [head, '', ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`)].join('\n');
}

/** The JSON document: summary, timeline (allocation, fragmentation), and every gang's wait and span. */
export function simReport(result: SimResult, meta: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...meta,
    cluster: result.cluster,
    policy: result.policy,
    summary: result.summary,
    wallMs: r3(result.wallMs),
    scheduleMs: r3(result.scheduleMs),
    attempts: result.attempts,
    timeline: result.timeline.map((p) => ({
      t: r3(p.t),
      allocation: r3(p.allocation),
      ...(p.fragmentation !== undefined ? { fragmentation: r3(p.fragmentation) } : {}),
      running: p.running,
      pending: p.pending,
    })),
    gangs: result.gangs.map((g) => ({
      ...g,
      ...(g.wait !== undefined ? { wait: r3(g.wait) } : {}),
      ...(g.latencyMs !== undefined ? { latencyMs: r3(g.latencyMs) } : {}),
    })),
  };
}
