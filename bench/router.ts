// `npx k8s4ai bench router`: the routing policies of src/router/policies on a Mooncake trace
// (default: the conversation trace, 12,031 requests over 59 minutes, 512-token blocks),
// replayed by src/router/simulate.ts against N simulated replicas of the reference engine
// (FIFO prefill at 10,000 tokens/s + 5 ms, decode 30 ms/token in batches of 64, each with
// its own LRU KV cache of --cache-blocks blocks; the router's index learns from routing
// history and has the same capacity).
//
// For each cache size (1,000, 5,000 and 20,000 blocks per replica unless --cache-blocks
// picks) the arrival rate is calibrated first: --rate-scale (arrival rate ×, timestamps ÷)
// is set so that round-robin keeps the replicas' prefill servers 80% busy (round-robin's
// hits do not depend on timing, so its work is fixed and a few fixed-point steps find it).
// Then every policy replays the same requests. Reported per policy: block and token hit
// rates (on the replicas' real caches), the busiest replica's share of requests and of
// prefilled tokens (also × the fair share 1/N), TTFT mean / p50 / p99, prefill busy
// fraction. Also: the upper bound (one replica, infinite cache) and two references: the
// literal longest-prefix rule (ties → least loaded) that collapses onto one replica, and
// longest prefix when ≥ 2 blocks else least loaded (no load bound: the hit rate the LRU
// caches allow, which at 1,000 and 5,000 blocks is far below the infinite-cache bound).
//
// Anchors (routing.md §8, 4 × 20,000 blocks, same LRU model): upper bound 36.64%,
// round-robin 18.32%, literal longest prefix 28.78% with 100% of requests on one replica,
// longest prefix ≥ 2 blocks 36.13%, SGLang-like 35.71%, llm-d-like 34.33%.
//
// JSON (default bench/results/router.json): `upperBound` and `policies` are those of the
// largest cache size run (20,000 by default), `byCacheBlocks["<blocks>"]` has every size
// with its rate scale, busy fractions and the reference row.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leastLoadedIndex } from '../src/router/load.ts';
import { createPolicy, POLICY_NAMES, type PolicyName } from '../src/router/policies/registry.ts';
import { INDEX_SOURCES, IndexSource } from '../src/api/kinds/contentrouter.ts';
import { MOONCAKE_BLOCK_TOKENS, parseMooncakeTrace, scaleArrivals, simulate, upperBound, type SimRequest, type SimResult } from '../src/router/simulate.ts';
import type { RoutingPolicy } from '../src/router/types.ts';
import { commandLine, machine } from './api-main.ts';
import { argHelpers } from './lib/args.ts';
import { note } from './lib/progress.ts';
import { round } from './lib/stats.ts';

const DEFAULT_TRACE = fileURLToPath(new URL('../../shared/data/mooncake/conversation_trace.jsonl', import.meta.url));
const CACHE_SIZES = [1000, 5000, 20000] as const;
/** Round-robin's prefill busy fraction the default rate scale is calibrated to. */
const TARGET_BUSY = 0.8;
/** The k8s4ai policy's aims, checked at every cache size and printed. */
const AIMS = { ofUpperBound: 0.98, prefillOfFair: 1.1, p99Better: 0.15 } as const;

const USAGE = `usage: npx k8s4ai bench router [options]

  --trace FILE          Mooncake JSONL trace (default ../shared/data/mooncake/conversation_trace.jsonl)
  --replicas N          simulated replicas (default 4)
  --cache-blocks LIST   KV cache per replica in ${MOONCAKE_BLOCK_TOKENS}-token blocks (default ${CACHE_SIZES.join(',')})
  --rate-scale X        arrival rate multiplier (default: calibrated so round-robin is ${TARGET_BUSY * 100}% busy)
  --policy LIST         policies (default ${POLICY_NAMES.join(',')})
  --index SOURCE        what the router's index learns from: ${INDEX_SOURCES.join(' or ')} (default ${IndexSource.History})
  --json FILE           report (default bench/results/router.json)
  -h, --help            this text
`;

const { fail, positiveNumber: num, list, parse } = argHelpers(USAGE);

/** The literal longest-prefix rule (ties → least loaded): the collapse routing.md §8 shows. */
function literalLongestPrefix(): RoutingPolicy {
  return {
    name: 'longest-prefix (literal)',
    choose(req, backends, index) {
      const matches = backends.map((b) => index.match(b.id, req.blocks));
      const best = Math.max(...matches);
      const tied = backends.filter((_, i) => matches[i] === best);
      const b = tied[leastLoadedIndex(tied)]!;
      return { backend: b.id, matchedBlocks: best, reason: 'longest prefix' };
    },
  };
}

/** Longest prefix if it is ≥ 2 blocks, else least loaded: §8's best static rule, the ceiling an LRU cache allows. */
function longestPrefixMin2(): RoutingPolicy {
  return {
    name: 'longest-prefix ≥ 2 blocks',
    choose(req, backends, index) {
      const matches = backends.map((b) => index.match(b.id, req.blocks));
      const best = Math.max(...matches);
      const tied = best >= 2 ? backends.filter((_, i) => matches[i] === best) : backends;
      const b = tied[leastLoadedIndex(tied)]!;
      return { backend: b.id, matchedBlocks: index.match(b.id, req.blocks), reason: best >= 2 ? 'longest prefix' : 'least loaded' };
    },
  };
}

/** A policy's line of the table and the JSON: the simulator's numbers, rounded, and a few derived. */
type Row = Pick<SimResult, 'blockHitRate' | 'tokenHitRate' | 'maxRequestShare' | 'maxPrefillShare' | 'maxPrefillShareOfFair' | 'ttftMeanMs' | 'ttftP50Ms' | 'ttftP90Ms' | 'ttftP99Ms' | 'busyMean'> & {
  ofUpperBound: number;
  busyMax: number;
  wallMs: number;
};

function row(r: SimResult, ub: number, wallMs: number): Row {
  return {
    blockHitRate: round(r.blockHitRate, 5),
    tokenHitRate: round(r.tokenHitRate, 5),
    ofUpperBound: round(r.blockHitRate / ub, 4),
    maxRequestShare: round(r.maxRequestShare, 4),
    maxPrefillShare: round(r.maxPrefillShare, 4),
    maxPrefillShareOfFair: round(r.maxPrefillShareOfFair, 3),
    ttftMeanMs: round(r.ttftMeanMs, 0),
    ttftP50Ms: round(r.ttftP50Ms, 0),
    ttftP90Ms: round(r.ttftP90Ms, 0),
    ttftP99Ms: round(r.ttftP99Ms, 0),
    busyMean: round(r.busyMean, 3),
    busyMax: round(Math.max(...r.busy), 3),
    wallMs: round(wallMs, 0),
  };
}

interface SizeResult {
  cacheBlocks: number;
  rateScale: number;
  calibrated: boolean;
  roundRobinBusy: number;
  upperBound: { blockHitRate: number; tokenHitRate: number };
  policies: Record<string, Row>;
  references: Record<string, Row>;
  aims?: { ofUpperBound: boolean; prefillBalance: boolean; p99: boolean; bestBaseline: string; p99Improvement: number };
}

/** Rate scale at which round-robin keeps the prefill servers TARGET_BUSY busy, and that busy fraction. */
function calibrate(requests: readonly SimRequest[], base: { replicas: number; cacheBlocks: number; indexSource: IndexSource }): { rateScale: number; busy: number } {
  const busyAt = (s: number) => simulate(scaleArrivals(requests, s), { ...base, policy: 'round-robin', blockTokens: MOONCAKE_BLOCK_TOKENS }).busyMean;
  // Busy ≈ work / (replicas × span / s): proportional to s until the tail after the last
  // arrival matters, so a few fixed-point steps converge.
  let s = 1;
  let busy = busyAt(s);
  for (let i = 0; i < 6 && Math.abs(busy - TARGET_BUSY) > 0.002; i++) {
    s *= TARGET_BUSY / busy;
    busy = busyAt(s);
  }
  return { rateScale: round(s, 4), busy };
}

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    trace: { type: 'string', default: DEFAULT_TRACE },
    replicas: { type: 'string', default: '4' },
    'cache-blocks': { type: 'string', default: CACHE_SIZES.join(',') },
    'rate-scale': { type: 'string' },
    policy: { type: 'string', default: POLICY_NAMES.join(',') },
    index: { type: 'string', default: IndexSource.History },
    json: { type: 'string' },
  });
  if (!v) return;
  const tracePath = resolve(v.trace!);
  if (!existsSync(tracePath)) fail(`--trace: no such file ${tracePath}`);
  const replicas = num('replicas', v.replicas!);
  const sizes = list('cache-blocks', v['cache-blocks']!).map((s) => num('cache-blocks', s));
  const fixedScale = v['rate-scale'] !== undefined ? num('rate-scale', v['rate-scale'], false) : undefined;
  const policies = list<PolicyName>('policy', v.policy!, POLICY_NAMES);
  const indexSource = list<IndexSource>('index', v.index!, INDEX_SOURCES)[0]!;
  const jsonFile = v.json ? resolve(v.json) : fileURLToPath(new URL('results/router.json', import.meta.url));
  const header = { benchmark: 'router', command: commandLine(), machine: machine(), startedAt: new Date().toISOString() };
  note(header.command);

  const started = performance.now();
  const trace = parseMooncakeTrace(readFileSync(tracePath, 'utf8'));
  if (trace.length === 0) fail(`--trace: no requests in ${tracePath}`);
  const ub = upperBound(trace, MOONCAKE_BLOCK_TOKENS);
  note(`trace: ${trace.length} requests, upper bound ${(100 * ub.blockHitRate).toFixed(2)}% of blocks`);

  const bySize: SizeResult[] = [];
  for (const cacheBlocks of [...sizes].sort((a, b) => a - b)) {
    const base = { replicas, cacheBlocks, indexSource };
    let rateScale = fixedScale;
    let rrBusy = NaN;
    if (rateScale === undefined) {
      const c = calibrate(trace, base);
      rateScale = c.rateScale;
      rrBusy = c.busy;
    }
    note(`${cacheBlocks} blocks: rate scale ${rateScale}${fixedScale === undefined ? ` (round-robin ${(100 * rrBusy).toFixed(1)}% busy)` : ''}`);
    const requests = scaleArrivals(trace, rateScale);
    const runOne = (policy: RoutingPolicy): Row => {
      const t = performance.now();
      const r = simulate(requests, { ...base, policy, blockTokens: MOONCAKE_BLOCK_TOKENS });
      return row(r, ub.blockHitRate, performance.now() - t);
    };
    const out: SizeResult = {
      cacheBlocks,
      rateScale,
      calibrated: fixedScale === undefined,
      roundRobinBusy: NaN,
      upperBound: { blockHitRate: round(ub.blockHitRate, 5), tokenHitRate: round(ub.tokenHitRate, 5) },
      policies: {},
      references: {},
    };
    for (const name of policies) {
      out.policies[name] = runOne(createPolicy(name));
      note(`  ${name}: ${(100 * out.policies[name]!.blockHitRate).toFixed(2)}% blocks, p99 TTFT ${out.policies[name]!.ttftP99Ms} ms`);
    }
    out.roundRobinBusy = out.policies['round-robin']?.busyMean ?? round(rrBusy, 3);
    out.references['longest-prefix (literal)'] = runOne(literalLongestPrefix());
    out.references['longest-prefix ≥ 2 blocks'] = runOne(longestPrefixMin2());

    const k = out.policies.k8s4ai;
    const baselines = Object.entries(out.policies).filter(([name]) => name !== 'k8s4ai');
    if (k && baselines.length) {
      const [bestName, best] = baselines.reduce((a, b) => (b[1].ttftP99Ms < a[1].ttftP99Ms ? b : a));
      const improvement = 1 - k.ttftP99Ms / best.ttftP99Ms;
      out.aims = {
        ofUpperBound: k.ofUpperBound >= AIMS.ofUpperBound,
        prefillBalance: k.maxPrefillShareOfFair <= AIMS.prefillOfFair,
        p99: improvement >= AIMS.p99Better,
        bestBaseline: bestName,
        p99Improvement: round(improvement, 4),
      };
    }
    bySize.push(out);
  }
  const wallMs = performance.now() - started;

  const main = bySize[bySize.length - 1]!;
  const doc = {
    ...header,
    finishedAt: new Date().toISOString(),
    options: { trace: tracePath, replicas, cacheBlocks: sizes, rateScale: fixedScale ?? 'calibrated', targetBusy: TARGET_BUSY, indexSource, policies, blockTokens: MOONCAKE_BLOCK_TOKENS, aims: AIMS, wallMs: round(wallMs, 0) },
    cacheBlocks: main.cacheBlocks,
    rateScale: main.rateScale,
    upperBound: main.upperBound,
    policies: main.policies,
    references: main.references,
    byCacheBlocks: Object.fromEntries(bySize.map((s) => [String(s.cacheBlocks), s])),
  };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const ms = (x: number) => `${Math.round(x).toLocaleString('en-US')} ms`;
  const lines: string[] = [`k8s4ai router benchmark: ${relative(process.cwd(), tracePath) || tracePath}, ${trace.length} requests, ${replicas} replicas, index from ${indexSource}`, `command: ${header.command}`];
  for (const s of bySize) {
    const head = ['policy', 'block hit', 'token hit', 'of UB', 'max req share', 'max prefill share', '× fair', 'TTFT mean', 'TTFT p50', 'TTFT p99', 'busy'];
    const rows: string[][] = [head, ['upper bound (1 replica, ∞ cache)', pct(s.upperBound.blockHitRate), pct(s.upperBound.tokenHitRate), '100%', '–', '–', '–', '–', '–', '–', '–']];
    const add = (name: string, r: Row) => rows.push([name, pct(r.blockHitRate), pct(r.tokenHitRate), `${(100 * r.ofUpperBound).toFixed(1)}%`, pct(r.maxRequestShare), pct(r.maxPrefillShare), r.maxPrefillShareOfFair.toFixed(2), ms(r.ttftMeanMs), ms(r.ttftP50Ms), ms(r.ttftP99Ms), `${(100 * r.busyMean).toFixed(0)}%`]);
    for (const [name, r] of Object.entries(s.policies)) add(name, r);
    for (const [name, r] of Object.entries(s.references)) add(`${name} [ref]`, r);
    const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    lines.push('', `${s.cacheBlocks.toLocaleString('en-US')} blocks per replica, rate scale ${s.rateScale}${s.calibrated ? ` (calibrated: round-robin ${(100 * s.roundRobinBusy).toFixed(1)}% busy)` : ''}`);
    lines.push(...rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')));
    if (s.aims) {
      const a = s.aims;
      const k = s.policies.k8s4ai!;
      const yes = (b: boolean) => (b ? 'met' : 'NOT met');
      lines.push(`k8s4ai aims: ≥ ${AIMS.ofUpperBound * 100}% of upper bound ${yes(a.ofUpperBound)} (${(100 * k.ofUpperBound).toFixed(1)}%); ` +
        `prefill ≤ ${AIMS.prefillOfFair}× fair ${yes(a.prefillBalance)} (${k.maxPrefillShareOfFair.toFixed(2)}×); ` +
        `p99 TTFT ≥ ${AIMS.p99Better * 100}% below best baseline ${yes(a.p99)} (${(100 * a.p99Improvement).toFixed(1)}% below ${a.bestBaseline})`);
    }
  }
  const shown = relative(process.cwd(), jsonFile);
  lines.push('', 'hits on the replicas\' real caches (contiguous prefix); × fair = busiest replica\'s prefilled tokens × replicas / all;',
    'busy = prefill-server busy fraction (mean over replicas); [ref] = references from routing.md §8 (least loaded = fewest in flight).',
    `wall ${(wallMs / 1000).toFixed(1)} s; written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
