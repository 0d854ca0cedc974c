// Replays requests through a routing policy against N simulated replicas of the reference
// engine (src/engine/model.ts), in simulated time: the routing benchmark runs it on the
// Mooncake trace, the tests on generated traces, and the live end-to-end test compares the
// engines' reported cached tokens with its per-request prediction.
//
// Model (one event queue, times in seconds):
//   - Router: at each arrival the policy chooses among all replicas, seeing the router's
//     own load view (LoadTracker: in flight, and outstanding prefill = the index's estimate
//     of the uncached prompt tokens, added at send, removed at the first token) and its
//     PrefixIndex. The index learns from routing history (`record` at send, the default) or
//     from the replicas' KV events (`indexSource: KVEvents`: stored/removed as the replica
//     caches change, delivered instantly). Its capacity defaults to the replica cache size.
//   - Replica: a FIFO prefill server. When a request reaches its head the replica looks up
//     the longest contiguous prefix of the request's blocks in its own KV cache (an LRU of
//     `cacheBlocks` blocks, the engine's real cache, distinct from the router's index), then
//     touches all the request's blocks tail-first (the first block most recent, as in the
//     reference LRU model of routing.md §8) and is busy for
//     `overheadSeconds + uncachedTokens × prefillSecondsPerToken`.
//     cached tokens = min(matched blocks × blockTokens, prompt tokens).
//   - Decode: after its prefill a request joins the replica's decode batch if fewer than
//     `maxBatch` are decoding, else waits (FIFO) for a slot; its first token comes one decode
//     step after joining, its last after max(1, outputTokens) steps. TTFT = first token −
//     arrival = prefill queueing + overhead + own prefill (+ batch wait) + one decode step.
//   - Busy fraction of a replica = prefill-server busy seconds / (last prefill end − first
//     arrival): the prefill server is the bottleneck the calibration in bench/router.ts
//     targets.
import { IndexSource } from '../api/kinds/contentrouter.ts';
import type { EngineTimeModel } from '../engine/model.ts';
import { DEFAULT_TIME_MODEL } from '../engine/model.ts';
import { cachedTokens, LoadTracker, type LoadTicket } from './load.ts';
import { createPolicy, type PolicyName, type PolicyOptions } from './policies/registry.ts';
import { BlockLru, PrefixIndex } from './prefix-index.ts';
import type { RouteRequest, RoutingPolicy } from './types.ts';

/** One request to replay. */
export interface SimRequest {
  arrivalSeconds: number;
  /** Chained prefix-block keys, first block first. */
  blocks: readonly string[];
  promptTokens: number;
  outputTokens: number;
}


export interface SimulateOptions {
  /** A policy instance (used as is: fresh state is the caller's business) or a registered name. */
  policy: RoutingPolicy | PolicyName;
  /** Options when `policy` is a name. */
  policyOptions?: PolicyOptions;
  replicas: number;
  /** Each replica's KV cache, in blocks (LRU). */
  cacheBlocks: number;
  /** The router index's capacity per backend, in blocks. Default: cacheBlocks. */
  indexBlocks?: number;
  /** Tokens per block (the last block of a prompt may be partial). */
  blockTokens: number;
  /** The engine time model; missing fields from DEFAULT_TIME_MODEL. */
  timeModel?: Partial<EngineTimeModel>;
  /** What the router's index learns from. Default History. */
  indexSource?: IndexSource;
  /** Backend ids, one per replica. Default r0, r1, … */
  backendIds?: readonly string[];
  /** Keep one result per request (in input order) in `results`. */
  perRequest?: boolean;
}

/** What happened to one request. */
export interface SimRequestResult {
  backend: string;
  replica: number;
  /** Blocks the router's index said the chosen backend held, at send. */
  routedMatchedBlocks: number;
  /** Blocks the replica's own cache held when its prefill started (contiguous prefix). */
  cachedBlocks: number;
  /** min(cachedBlocks × blockTokens, promptTokens): what an engine reports as cached. */
  cachedTokens: number;
  /** Prompt tokens the replica prefilled. */
  prefillTokens: number;
  ttftSeconds: number;
  endSeconds: number;
  reason: string;
}

export interface ReplicaStats {
  id: string;
  requests: number;
  prefillTokens: number;
  cachedTokens: number;
  busySeconds: number;
  /** busySeconds / horizonSeconds. */
  busy: number;
}

export interface SimResult {
  policy: string;
  requests: number;
  replicas: number;
  /** Σ matched blocks / Σ blocks, on the replicas' real caches. */
  blockHitRate: number;
  /** Σ cached tokens / Σ prompt tokens. */
  tokenHitRate: number;
  /** What the router's index predicted: Σ routed matched blocks / Σ blocks. */
  routerBlockHitRate: number;
  /** Busiest replica's requests / all requests. */
  maxRequestShare: number;
  /** Busiest replica's prefilled (uncached) tokens / all prefilled tokens. */
  maxPrefillShare: number;
  /** maxPrefillShare × replicas: 1 = perfectly fair. */
  maxPrefillShareOfFair: number;
  ttftMeanMs: number;
  ttftP50Ms: number;
  ttftP90Ms: number;
  ttftP99Ms: number;
  /** Prefill-server busy fraction per replica. */
  busy: number[];
  busyMean: number;
  /** First arrival → last prefill end. */
  horizonSeconds: number;
  perReplica: ReplicaStats[];
  results?: SimRequestResult[];
}

// ---- event queue ---------------------------------------------------------------------------

const EV_PREFILL_DONE = 0;
const EV_FIRST_TOKEN = 1;
const EV_DONE = 2;

/** A binary min-heap of (time, seq) → (kind, arg); seq keeps equal times in push order. */
class EventHeap {
  private time: number[] = [];
  private seq: number[] = [];
  private kind: number[] = [];
  private arg: number[] = [];
  private n = 0;
  private counter = 0;

  get size(): number {
    return this.n;
  }

  topTime(): number {
    return this.time[0]!;
  }

  push(time: number, kind: number, arg: number): void {
    let i = this.n++;
    const s = this.counter++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p]! < time || (this.time[p] === time && this.seq[p]! < s)) break;
      this.set(i, this.time[p]!, this.seq[p]!, this.kind[p]!, this.arg[p]!);
      i = p;
    }
    this.set(i, time, s, kind, arg);
  }

  /** Pops the earliest event into `out` ([time, kind, arg]). */
  pop(out: [number, number, number]): void {
    out[0] = this.time[0]!;
    out[1] = this.kind[0]!;
    out[2] = this.arg[0]!;
    const last = --this.n;
    if (last === 0) return;
    const t = this.time[last]!;
    const s = this.seq[last]!;
    const k = this.kind[last]!;
    const a = this.arg[last]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      if (c + 1 < last && (this.time[c + 1]! < this.time[c]! || (this.time[c + 1] === this.time[c] && this.seq[c + 1]! < this.seq[c]!))) c++;
      if (t < this.time[c]! || (t === this.time[c] && s < this.seq[c]!)) break;
      this.set(i, this.time[c]!, this.seq[c]!, this.kind[c]!, this.arg[c]!);
      i = c;
    }
    this.set(i, t, s, k, a);
  }

  private set(i: number, t: number, s: number, k: number, a: number): void {
    this.time[i] = t;
    this.seq[i] = s;
    this.kind[i] = k;
    this.arg[i] = a;
  }
}

/** A FIFO of request indexes. */
class Fifo {
  private items: number[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(i: number): void {
    this.items.push(i);
  }
  shift(): number {
    const v = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

interface Replica {
  id: string;
  cache: BlockLru;
  prefillQueue: Fifo;
  /** Request in prefill, or -1. */
  prefilling: number;
  decoding: number;
  decodeQueue: Fifo;
  /** Blocks of the requests between prefill start and completion (for kvUtilization). */
  heldBlocks: number;
  requests: number;
  prefillTokens: number;
  cachedTokens: number;
  busySeconds: number;
  lastPrefillEnd: number;
}

// ---- the simulation ------------------------------------------------------------------------

export function simulate(requests: readonly SimRequest[], options: SimulateOptions): SimResult {
  const n = options.replicas;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`replicas must be a positive integer, got ${n}`);
  const model: EngineTimeModel = { ...DEFAULT_TIME_MODEL, ...options.timeModel };
  const blockTokens = options.blockTokens;
  const ids = options.backendIds ? [...options.backendIds] : Array.from({ length: n }, (_, i) => `r${i}`);
  if (ids.length !== n || new Set(ids).size !== n) throw new RangeError('backendIds must name each replica once');
  const byId = new Map(ids.map((id, i) => [id, i]));
  const policy = typeof options.policy === 'string' ? createPolicy(options.policy, options.policyOptions) : options.policy;
  const source: IndexSource = options.indexSource ?? IndexSource.History;
  const index = new PrefixIndex({ capacityBlocks: options.indexBlocks ?? options.cacheBlocks });
  const tracker = new LoadTracker();
  for (const id of ids) tracker.add(id);

  // KV events from a replica's cache, batched per prefill (see startPrefill).
  let evicted: string[] = [];
  const replicas: Replica[] = ids.map((id) => ({
    id,
    cache: new BlockLru(options.cacheBlocks, Infinity, source === IndexSource.KVEvents ? (k) => evicted.push(k) : undefined),
    prefillQueue: new Fifo(),
    prefilling: -1,
    decoding: 0,
    decodeQueue: new Fifo(),
    heldBlocks: 0,
    requests: 0,
    prefillTokens: 0,
    cachedTokens: 0,
    busySeconds: 0,
    lastPrefillEnd: -Infinity,
  }));

  // Replay in arrival order (stable for equal times).
  const order = requests.map((_, i) => i).sort((a, b) => requests[a]!.arrivalSeconds - requests[b]!.arrivalSeconds || a - b);
  const m = requests.length;
  const replicaOf = new Int32Array(m);
  const routed = new Int32Array(m);
  const cachedBlocksOf = new Int32Array(m);
  const cachedTokensOf = new Float64Array(m);
  const ttft = new Float64Array(m);
  const end = new Float64Array(m);
  const reasons: string[] = options.perRequest ? new Array<string>(m) : [];
  const tickets: (LoadTicket | undefined)[] = new Array(m);

  const heap = new EventHeap();
  const kvUtil = (r: Replica) => Math.min(1, r.heldBlocks / options.cacheBlocks);

  const startPrefill = (r: number, now: number): void => {
    const rep = replicas[r]!;
    const i = rep.prefillQueue.shift();
    const req = requests[i]!;
    const matched = rep.cache.matchPrefix(req.blocks);
    evicted = [];
    rep.cache.touchTailFirst(req.blocks);
    if (source === IndexSource.KVEvents) {
      if (evicted.length) index.removed(rep.id, evicted);
      index.stored(rep.id, req.blocks);
    }
    const cached = Math.min(req.promptTokens, matched * blockTokens);
    const uncached = req.promptTokens - cached;
    const seconds = model.overheadSeconds + uncached * model.prefillSecondsPerToken;
    cachedBlocksOf[i] = matched;
    cachedTokensOf[i] = cached;
    rep.prefilling = i;
    rep.prefillTokens += uncached;
    rep.cachedTokens += cached;
    rep.busySeconds += seconds;
    rep.heldBlocks += req.blocks.length;
    tracker.setKvUtilization(rep.id, kvUtil(rep));
    heap.push(now + seconds, EV_PREFILL_DONE, r);
  };

  const startDecode = (r: number, i: number, now: number): void => {
    replicas[r]!.decoding++;
    heap.push(now + model.decodeSecondsPerToken, EV_FIRST_TOKEN, i);
    heap.push(now + Math.max(1, requests[i]!.outputTokens) * model.decodeSecondsPerToken, EV_DONE, i);
  };

  const arrive = (i: number, now: number): void => {
    const req = requests[i]!;
    const routeReq: RouteRequest = { blocks: req.blocks, promptTokens: req.promptTokens, blockTokens };
    const decision = policy.choose(routeReq, tracker.view(ids), index);
    const r = byId.get(decision.backend);
    if (r === undefined) throw new Error(`policy ${policy.name} chose unknown backend "${decision.backend}"`);
    const predicted = index.match(decision.backend, req.blocks);
    routed[i] = predicted;
    if (source === IndexSource.History) index.record(decision.backend, req.blocks);
    tickets[i] = tracker.sent(decision.backend, req.promptTokens - cachedTokens(routeReq, predicted));
    if (options.perRequest) reasons[i] = decision.reason;
    replicaOf[i] = r;
    const rep = replicas[r]!;
    rep.requests++;
    rep.prefillQueue.push(i);
    if (rep.prefilling < 0) startPrefill(r, now);
  };

  const ev: [number, number, number] = [0, 0, 0];
  let next = 0;
  while (next < m || heap.size > 0) {
    // Events due at or before the next arrival go first: a replica finishing at the very
    // moment a request arrives is seen as finished.
    if (heap.size === 0 || (next < m && requests[order[next]!]!.arrivalSeconds < heap.topTime())) {
      const i = order[next++]!;
      arrive(i, requests[i]!.arrivalSeconds);
      continue;
    }
    heap.pop(ev);
    const [now, kind, arg] = ev;
    if (kind === EV_PREFILL_DONE) {
      const rep = replicas[arg]!;
      const i = rep.prefilling;
      rep.prefilling = -1;
      rep.lastPrefillEnd = now;
      if (rep.decoding < model.maxBatch) startDecode(arg, i, now);
      else rep.decodeQueue.push(i);
      if (rep.prefillQueue.length > 0) startPrefill(arg, now);
    } else if (kind === EV_FIRST_TOKEN) {
      ttft[arg] = now - requests[arg]!.arrivalSeconds;
      tracker.firstToken(tickets[arg]!);
    } else {
      end[arg] = now;
      tracker.finished(tickets[arg]!);
      const r = replicaOf[arg]!;
      const rep = replicas[r]!;
      rep.decoding--;
      rep.heldBlocks -= requests[arg]!.blocks.length;
      tracker.setKvUtilization(rep.id, kvUtil(rep));
      if (rep.decodeQueue.length > 0) startDecode(r, rep.decodeQueue.shift(), now);
    }
  }

  // ---- summary ----
  let blocks = 0;
  let matchedBlocks = 0;
  let routedBlocks = 0;
  let prompt = 0;
  let cached = 0;
  for (let i = 0; i < m; i++) {
    const req = requests[i]!;
    blocks += req.blocks.length;
    matchedBlocks += cachedBlocksOf[i]!;
    routedBlocks += routed[i]!;
    prompt += req.promptTokens;
    cached += cachedTokensOf[i]!;
  }
  const first = m ? requests[order[0]!]!.arrivalSeconds : 0;
  const lastEnd = Math.max(first, ...replicas.map((r) => r.lastPrefillEnd));
  const horizon = lastEnd - first;
  const busy = replicas.map((r) => (horizon > 0 ? r.busySeconds / horizon : 0));
  const totalPrefill = replicas.reduce((s, r) => s + r.prefillTokens, 0);
  const maxPrefillShare = totalPrefill > 0 ? Math.max(...replicas.map((r) => r.prefillTokens)) / totalPrefill : 0;
  const sorted = Float64Array.from(ttft).sort();
  const q = (p: number) => (m ? sorted[Math.min(m - 1, Math.max(0, Math.ceil(p * m) - 1))]! * 1000 : NaN);

  const result: SimResult = {
    policy: policy.name,
    requests: m,
    replicas: n,
    blockHitRate: blocks ? matchedBlocks / blocks : 0,
    tokenHitRate: prompt ? cached / prompt : 0,
    routerBlockHitRate: blocks ? routedBlocks / blocks : 0,
    maxRequestShare: m ? Math.max(...replicas.map((r) => r.requests)) / m : 0,
    maxPrefillShare,
    maxPrefillShareOfFair: maxPrefillShare * n,
    ttftMeanMs: m ? (sorted.reduce((s, v) => s + v, 0) / m) * 1000 : NaN,
    ttftP50Ms: q(0.5),
    ttftP90Ms: q(0.9),
    ttftP99Ms: q(0.99),
    busy,
    busyMean: busy.reduce((s, b) => s + b, 0) / n,
    horizonSeconds: horizon,
    perReplica: replicas.map((r, i) => ({ id: r.id, requests: r.requests, prefillTokens: r.prefillTokens, cachedTokens: r.cachedTokens, busySeconds: r.busySeconds, busy: busy[i]! })),
  };
  if (options.perRequest) {
    result.results = requests.map((req, i) => ({
      backend: ids[replicaOf[i]!]!,
      replica: replicaOf[i]!,
      routedMatchedBlocks: routed[i]!,
      cachedBlocks: cachedBlocksOf[i]!,
      cachedTokens: cachedTokensOf[i]!,
      prefillTokens: req.promptTokens - cachedTokensOf[i]!,
      ttftSeconds: ttft[i]!,
      endSeconds: end[i]!,
      reason: reasons[i]!,
    }));
  }
  return result;
}

/**
 * The hit rates no router can beat: one replica with an infinite cache, so a block hits if
 * any earlier request (in arrival order) had it in its prefix.
 */
export function upperBound(requests: readonly SimRequest[], blockTokens: number): { blockHitRate: number; tokenHitRate: number } {
  const order = requests.map((_, i) => i).sort((a, b) => requests[a]!.arrivalSeconds - requests[b]!.arrivalSeconds || a - b);
  const seen = new Set<string>();
  let blocks = 0;
  let matched = 0;
  let prompt = 0;
  let cached = 0;
  for (const i of order) {
    const req = requests[i]!;
    let k = 0;
    while (k < req.blocks.length && seen.has(req.blocks[k]!)) k++;
    for (const b of req.blocks) seen.add(b);
    blocks += req.blocks.length;
    matched += k;
    prompt += req.promptTokens;
    cached += Math.min(req.promptTokens, k * blockTokens);
  }
  return { blockHitRate: blocks ? matched / blocks : 0, tokenHitRate: prompt ? cached / prompt : 0 };
}

/** Tokens per block in the Mooncake traces. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/** Parses a Mooncake trace (JSONL: timestamp ms, input_length, output_length, hash_ids). */
export function parseMooncakeTrace(jsonl: string): SimRequest[] {
  const out: SimRequest[] = [];
  let line = 0;
  for (const raw of jsonl.split('\n')) {
    line++;
    if (!raw.trim()) continue;
    const row = JSON.parse(raw) as { timestamp?: unknown; input_length?: unknown; output_length?: unknown; hash_ids?: unknown };
    if (typeof row.timestamp !== 'number' || typeof row.input_length !== 'number' || typeof row.output_length !== 'number' || !Array.isArray(row.hash_ids)) {
      throw new Error(`trace line ${line}: expected timestamp, input_length, output_length, hash_ids`);
    }
    out.push({ arrivalSeconds: row.timestamp / 1000, blocks: row.hash_ids.map(String), promptTokens: row.input_length, outputTokens: row.output_length });
  }
  return out;
}

/** The same requests arriving `rateScale` times as fast (arrival times divided by it). */
export function scaleArrivals(requests: readonly SimRequest[], rateScale: number): SimRequest[] {
  if (!(rateScale > 0)) throw new RangeError(`rateScale must be positive, got ${rateScale}`);
  return requests.map((r) => ({ ...r, arrivalSeconds: r.arrivalSeconds / rateScale }));
}
