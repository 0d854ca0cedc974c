// The routing core on small hand-built situations: the prefix index (match, record,
// tail-first eviction, KV events, bounds), the load tracker, each policy's rule (round-robin,
// least-loaded, SGLang's imbalance switch and cache threshold, llm-d's weighted scores,
// k8s4ai's credited match, load bound and queue escape), k8s4ai on generated trace-shaped
// workloads (every request shares block 0, or a long hot prefix: it never collapses and keeps
// prefill balance within its bound), and simulate() on cases whose timings are known exactly.
// Nothing here reads the Mooncake trace: workloads are generated with a seeded PRNG.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingPolicies } from '../src/api/kinds/contentrouter.ts';
import { DEFAULT_TIME_MODEL } from '../src/engine/model.ts';
import { seededRandom } from '../src/lib/random.ts';
import {
  BlockLru,
  cachedTokens,
  createPolicy,
  K8S4AI_DEFAULTS,
  leastLoadedIndex,
  LoadTracker,
  parseMooncakeTrace,
  POLICY_NAMES,
  PrefixIndex,
  scaleArrivals,
  simulate,
  upperBound,
  type BackendLoad,
  type PrefixIndexView,
  type RouteRequest,
  type RoutingPolicy,
  type SimRequest,
} from '../src/router/index.ts';

const BT = 512;

/** A request of `n` blocks named by `prefix`, all full. */
function req(blocks: string[], promptTokens = blocks.length * BT): RouteRequest {
  return { blocks, promptTokens, blockTokens: BT };
}

function loads(...spec: [id: string, inFlight: number, outstanding?: number, kv?: number][]): BackendLoad[] {
  return spec.map(([id, inFlight, outstanding = 0, kv]) => (kv === undefined ? { id, inFlight, outstandingPrefillTokens: outstanding } : { id, inFlight, outstandingPrefillTokens: outstanding, kvUtilization: kv }));
}

/** An index view from a table of matches. */
function view(matches: Record<string, number>): PrefixIndexView {
  return { match: (backend, blocks) => Math.min(blocks.length, matches[backend] ?? 0) };
}

const blocks = (n: number, tag = 'x') => Array.from({ length: n }, (_, i) => `${tag}${i}`);

/**
 * A Mooncake-shaped workload: Poisson arrivals; each request either continues an open
 * conversation (its whole previous prompt plus new blocks) or starts a new one from the
 * shared prefix (`shared` blocks: 1 = the trace's common block 0); output lengths
 * exponential.
 */
function conversations(opts: { count: number; rate: number; shared: number; seed: number; followUp?: number }): SimRequest[] {
  const random = seededRandom(opts.seed);
  const exp = (mean: number) => -Math.log(1 - random()) * mean;
  const sharedPrefix = Array.from({ length: opts.shared }, (_, i) => (i === 0 ? '0' : `s${i}`));
  const open: { at: number; blocks: string[] }[] = [];
  const out: SimRequest[] = [];
  let t = 0;
  let next = 0;
  while (out.length < opts.count) {
    t += exp(1 / opts.rate);
    const due = open.findIndex((c) => c.at <= t);
    const base = due >= 0 ? open.splice(due, 1)[0]!.blocks : sharedPrefix;
    const b = [...base];
    for (let k = 1 + Math.floor(exp(6)); k > 0; k--) b.push(`b${next++}`);
    out.push({ arrivalSeconds: t, blocks: b, promptTokens: b.length * BT - Math.floor(random() * BT), outputTokens: 1 + Math.floor(exp(200)) });
    if (random() < (opts.followUp ?? 0.6)) open.push({ at: t + exp(30), blocks: b });
  }
  return out;
}

/** The literal rule of routing.md §8: longest prefix, ties → least loaded. */
function literalLongestPrefix(): RoutingPolicy {
  return {
    name: 'literal',
    choose(r, backends, index) {
      const m = backends.map((b) => index.match(b.id, r.blocks));
      const best = Math.max(...m);
      const tied = backends.filter((_, i) => m[i] === best);
      return { backend: tied[leastLoadedIndex(tied)]!.id, matchedBlocks: best, reason: 'longest prefix' };
    },
  };
}

// ---- the prefix index ----------------------------------------------------------------------

describe('PrefixIndex', () => {
  it('matches the contiguous prefix a backend holds, per backend', () => {
    const idx = new PrefixIndex({ capacityBlocks: 100 });
    idx.record('a', ['p', 'q', 'r']);
    assert.equal(idx.match('a', ['p', 'q', 'r', 's']), 3);
    assert.equal(idx.match('a', ['p', 'x', 'r']), 1, 'a gap ends the match');
    assert.equal(idx.match('a', ['x', 'q', 'r']), 0, 'a prefix starts at the first block');
    assert.equal(idx.match('b', ['p']), 0);
    assert.equal(idx.match('unknown', ['p']), 0);
    assert.equal(idx.sizeBlocks('a'), 3);
    assert.equal(idx.sizeBlocks('b'), 0);
  });

  it('touches tail-first, so a prompt\'s last block is evicted first and its first last', () => {
    const idx = new PrefixIndex({ capacityBlocks: 3 });
    idx.record('a', ['p', 'q', 'r']);
    idx.record('a', ['z']);
    assert.equal(idx.sizeBlocks('a'), 3);
    assert.equal(idx.match('a', ['p', 'q', 'r']), 2, 'r (the tail) went first');
    idx.record('a', ['y']);
    assert.equal(idx.match('a', ['p', 'q']), 1, 'then q');
    idx.record('a', ['p']);
    idx.record('a', ['w']);
    assert.equal(idx.match('a', ['p']), 1, 'touching p again made it recent: z was evicted instead');
    assert.equal(idx.match('a', ['z']), 0);
  });

  it('keeps the first capacity blocks of a prompt longer than its capacity', () => {
    const idx = new PrefixIndex({ capacityBlocks: 4 });
    idx.record('a', blocks(10));
    assert.equal(idx.sizeBlocks('a'), 4);
    assert.equal(idx.match('a', blocks(10)), 4);
  });

  it('applies KV events: stored, removed, cleared', () => {
    const idx = new PrefixIndex({ capacityBlocks: 10 });
    idx.stored('a', ['p', 'q', 'r']);
    assert.equal(idx.match('a', ['p', 'q', 'r']), 3);
    idx.removed('a', ['q']);
    assert.equal(idx.match('a', ['p', 'q', 'r']), 1);
    assert.equal(idx.sizeBlocks('a'), 2);
    idx.removed('b', ['p']); // unknown backend: nothing to do
    idx.cleared('a');
    assert.equal(idx.sizeBlocks('a'), 0);
    assert.equal(idx.match('a', ['p']), 0);
  });

  it('forgets a removed backend and accounts its memory', () => {
    const idx = new PrefixIndex({ capacityBlocks: 10 });
    assert.equal(idx.memoryBytes(), 0);
    idx.record('a', ['p', 'q']);
    idx.record('b', ['p']);
    const both = idx.memoryBytes();
    assert.ok(both > 0);
    assert.deepEqual(idx.backends().sort(), ['a', 'b']);
    idx.removeBackend('a');
    assert.ok(idx.memoryBytes() < both);
    assert.equal(idx.match('a', ['p']), 0);
    assert.deepEqual(idx.backends(), ['b']);
    assert.ok(idx.memoryBytes() <= idx.maxMemoryBytes(1));
  });

  it('respects an optional byte cap per backend', () => {
    const idx = new PrefixIndex({ capacityBlocks: 1000, maxBytesPerBackend: 1000 });
    idx.record('a', blocks(100));
    assert.ok(idx.sizeBlocks('a') < 100);
    assert.ok(idx.memoryBytes() <= idx.maxMemoryBytes(1));
    assert.equal(idx.match('a', blocks(100)), idx.sizeBlocks('a'), 'the first blocks are the ones kept');
  });

  it('rejects a capacity below one block', () => {
    assert.throws(() => new PrefixIndex({ capacityBlocks: 0 }), RangeError);
    assert.throws(() => new BlockLru(1.5), RangeError);
  });

  it('keeps exactly its capacity, the most recent keys, through many evictions', () => {
    const lru = new BlockLru(20_000);
    for (let i = 0; i < 400_000; i++) lru.touch(`k${(i * 7919) % 60_000}`);
    assert.equal(lru.size, 20_000);
    // The last 20,000 touches were of distinct keys (7919 and 60,000 are coprime): exactly those stay.
    for (let i = 400_000 - 20_000; i < 400_000; i++) assert.ok(lru.has(`k${(i * 7919) % 60_000}`));
  });
});

// ---- load tracking -------------------------------------------------------------------------

describe('LoadTracker', () => {
  it('counts in flight and outstanding prefill from send to first token to completion, once each', () => {
    const t = new LoadTracker();
    t.add('a');
    t.add('b');
    const x = t.sent('a', 1000);
    const y = t.sent('a', 500);
    assert.deepEqual(t.view(['a', 'b']), [{ id: 'a', inFlight: 2, outstandingPrefillTokens: 1500 }, { id: 'b', inFlight: 0, outstandingPrefillTokens: 0 }]);
    t.firstToken(x);
    t.firstToken(x);
    assert.equal(t.view(['a'])[0]!.outstandingPrefillTokens, 500);
    t.finished(y); // failed before its first token: both counts drop
    t.finished(y);
    assert.deepEqual(t.view(['a'])[0], { id: 'a', inFlight: 1, outstandingPrefillTokens: 0 });
    t.finished(x);
    t.setKvUtilization('a', 0.5);
    assert.deepEqual(t.view(['a'])[0], { id: 'a', inFlight: 0, outstandingPrefillTokens: 0, kvUtilization: 0.5 });
  });

  it('cachedTokens caps at the prompt (the last block may be partial)', () => {
    assert.equal(cachedTokens(req(blocks(3), 1100), 2), 1024);
    assert.equal(cachedTokens(req(blocks(3), 1100), 3), 1100);
  });
});

// ---- policies ------------------------------------------------------------------------------

describe('policy registry', () => {
  it('registers exactly the policies ContentRouter accepts', () => {
    assert.deepEqual([...POLICY_NAMES].sort(), [...RoutingPolicies].sort());
    for (const name of POLICY_NAMES) assert.equal(createPolicy(name).name, name);
    assert.throws(() => createPolicy('nope' as never), RangeError);
  });
});

describe('round-robin and least-loaded', () => {
  it('round-robin takes each backend in turn', () => {
    const p = createPolicy('round-robin');
    const b = loads(['a', 9], ['b', 0], ['c', 0]);
    assert.deepEqual([0, 1, 2, 3].map(() => p.choose(req(['x']), b, view({})).backend), ['a', 'b', 'c', 'a']);
  });

  it('least-loaded: fewest in flight, then least outstanding prefill, then the first', () => {
    const p = createPolicy('least-loaded');
    assert.equal(p.choose(req(['x']), loads(['a', 3], ['b', 1, 9000], ['c', 1, 100]), view({ a: 1 })).backend, 'c');
    assert.equal(p.choose(req(['x']), loads(['a', 1, 5], ['b', 1, 5]), view({})).backend, 'a');
  });
});

describe('sglang', () => {
  const p = createPolicy('sglang');
  const r = req(blocks(10));

  it('goes to the longest match when balanced and the match ratio is above 0.3', () => {
    const d = p.choose(r, loads(['a', 60], ['b', 0]), view({ a: 4 }));
    assert.equal(d.backend, 'a', '60 − 0 ≤ 64: not imbalanced');
    assert.equal(d.matchedBlocks, 4);
  });

  it('switches to least loaded when (max − min) > 64 AND max > 1.5 × min', () => {
    assert.equal(p.choose(r, loads(['a', 100], ['b', 10], ['c', 20]), view({ a: 10 })).backend, 'b');
    // Absolute gap 80 > 64 but 300 ≤ 1.5 × 220: still balanced, prefix wins.
    assert.equal(p.choose(r, loads(['a', 300], ['b', 220]), view({ a: 10 })).backend, 'a');
  });

  it('below the cache threshold routes to the least loaded; ties on match go to fewer in flight', () => {
    assert.equal(p.choose(r, loads(['a', 5], ['b', 2]), view({ a: 3 })).backend, 'b', '3/10 is not above 0.3');
    assert.equal(p.choose(r, loads(['a', 5], ['b', 2]), view({ a: 4 })).backend, 'a');
    assert.equal(p.choose(r, loads(['a', 5], ['b', 2]), view({ a: 4, b: 4 })).backend, 'b');
  });

  it('honours its options', () => {
    const strict = createPolicy('sglang', { cacheThreshold: 0.5, balanceAbsThreshold: 2, balanceRelThreshold: 1.1 });
    assert.equal(strict.choose(r, loads(['a', 5], ['b', 2]), view({ a: 5 })).backend, 'b', 'imbalanced at 5 vs 2');
    assert.equal(strict.choose(r, loads(['a', 3], ['b', 2]), view({ a: 5 })).backend, 'b', '5/10 is not above 0.5');
  });
});

describe('llm-d', () => {
  const p = createPolicy('llm-d');

  it('maximises 3 × prefix + 2 × queue + 2 × (1 − kv utilization)', () => {
    // a: 3·0.8 + 2·0   + 2·0.5 = 3.4
    // b: 3·0   + 2·1   + 2·1   = 4.0   (kv unknown → 1)
    // c: 3·0.5 + 2·0.5 + 2·0.8 = 4.1
    const d = p.choose(req(blocks(10)), loads(['a', 4, 0, 0.5], ['b', 0], ['c', 2, 0, 0.2]), view({ a: 8, c: 5 }));
    assert.equal(d.backend, 'c');
    assert.equal(d.matchedBlocks, 5);
    // Without c's KV pressure advantage b wins: c = 1.5 + 1 + 2·0.3 = 3.1.
    assert.equal(p.choose(req(blocks(10)), loads(['a', 4, 0, 0.5], ['b', 0], ['c', 2, 0, 0.7]), view({ a: 8, c: 5 })).backend, 'b');
  });

  it('scores the queue 1 for everyone when all are equal, and breaks ties on fewer in flight', () => {
    assert.equal(p.choose(req(blocks(4)), loads(['a', 3], ['b', 3]), view({ b: 1 })).backend, 'b');
    // Equal scores (a: prefix 1 → 3 + 0 + 2 = 5; b: 0 + 2 + 2 = 4 … make them equal with weights).
    const q = createPolicy('llm-d', { prefixWeight: 2, queueWeight: 2, kvUtilizationWeight: 0 });
    // a: 2·1 + 2·0 = 2; b: 2·0 + 2·1 = 2 → tie → b has fewer in flight.
    assert.equal(q.choose(req(blocks(4)), loads(['a', 5], ['b', 1]), view({ a: 4 })).backend, 'b');
  });
});

describe('k8s4ai', () => {
  it('credits a match only from minMatchBlocks and minMatchRatio; else the shortest prefill queue', () => {
    const p = createPolicy('k8s4ai');
    // Everyone holds block 0 but a holds nothing more; b's queue is shorter.
    assert.equal(p.choose(req(blocks(10)), loads(['a', 0, 2000], ['b', 0, 1000]), view({ a: 1, b: 1 })).backend, 'b');
    // 2 of 30 blocks < 10%: ignored too.
    assert.equal(createPolicy('k8s4ai').choose(req(blocks(30)), loads(['a', 0, 2000], ['b', 0, 1000]), view({ a: 2 })).backend, 'b');
    // 3 of 10: credited, and 3 blocks of saved prefill outweigh 1,000 queued tokens.
    const d = createPolicy('k8s4ai').choose(req(blocks(10)), loads(['a', 0, 2000], ['b', 0, 1000]), view({ a: 3 }));
    assert.equal(d.backend, 'a');
    assert.equal(d.matchedBlocks, 3);
    assert.match(d.reason, /prefix 3\/10/);
  });

  it('yields affinity only to a queue longer than missWeight × the tokens it saves', () => {
    const r = req(blocks(10));
    const saved = 4 * BT;
    const stay = createPolicy('k8s4ai').choose(r, loads(['a', 0, K8S4AI_DEFAULTS.missWeight * saved - 1], ['b', 0, 0]), view({ a: 4 }));
    assert.equal(stay.backend, 'a');
    const leave = createPolicy('k8s4ai').choose(r, loads(['a', 0, K8S4AI_DEFAULTS.missWeight * saved + 1], ['b', 0, 0]), view({ a: 4 }));
    assert.equal(leave.backend, 'b');
    assert.match(leave.reason, /yields/);
  });

  it('bounds recent prefill work: a hot prefix spreads once its holder passes loadBound × the mean plus a request', () => {
    const p = createPolicy('k8s4ai', { halfLifeDecisions: 1e9, boundFloorTokens: 0 }); // no decay, no floor: plain sums
    const idx = new PrefixIndex({ capacityBlocks: 1000 });
    const backends = loads(['a', 0], ['b', 0], ['c', 0], ['d', 0]);
    const chosen: string[] = [];
    for (let i = 0; i < 200; i++) {
      // Every request = a 16-block hot prefix + 4 own blocks: affinity alone would keep all on one.
      const r = req([...blocks(16, 'hot'), ...blocks(4, `own${i}-`)]);
      const d = p.choose(r, backends, idx);
      idx.record(d.backend, r.blocks);
      chosen.push(d.backend);
    }
    const counts = Object.fromEntries(['a', 'b', 'c', 'd'].map((id) => [id, chosen.filter((c) => c === id).length]));
    for (const n of Object.values(counts)) assert.ok(n >= 30 && n <= 70, JSON.stringify(counts));
  });

  it('rejects out-of-range options', () => {
    assert.throws(() => createPolicy('k8s4ai', { loadBound: 0.9 }), RangeError);
    assert.throws(() => createPolicy('k8s4ai', { minMatchRatio: 2 }), RangeError);
    assert.throws(() => createPolicy('k8s4ai', { missWeight: 0.5 }), RangeError);
  });

  it('never collapses when every request shares block 0 (literal longest prefix does), and keeps prefill balanced', () => {
    const requests = conversations({ count: 2000, rate: 5, shared: 1, seed: 11 });
    const ub = upperBound(requests, BT);
    const base = { replicas: 4, cacheBlocks: 4000, blockTokens: BT };
    const literal = simulate(requests, { ...base, policy: literalLongestPrefix() });
    assert.equal(literal.maxRequestShare, 1, 'the workload is the trap: literal longest prefix collapses');
    const k = simulate(requests, { ...base, policy: 'k8s4ai' });
    assert.ok(k.maxRequestShare < 0.3, `max request share ${k.maxRequestShare}`);
    assert.ok(k.maxPrefillShareOfFair <= 1.1, `prefill ${k.maxPrefillShareOfFair}× fair`);
    assert.ok(k.blockHitRate >= 0.9 * ub.blockHitRate, `${k.blockHitRate} vs upper bound ${ub.blockHitRate}`);
    const rr = simulate(requests, { ...base, policy: 'round-robin' });
    assert.ok(k.blockHitRate > 1.5 * rr.blockHitRate);
    assert.ok(k.ttftP99Ms < rr.ttftP99Ms);
  });

  it('keeps a long hot shared prefix within its load bound (affinity without the bound collapses)', () => {
    const requests = conversations({ count: 2000, rate: 3, shared: 16, seed: 11 });
    const base = { replicas: 4, cacheBlocks: 4000, blockTokens: BT };
    const unbounded = simulate(requests, { ...base, policy: 'k8s4ai', policyOptions: { loadBound: 1e9, missWeight: 1e9 } });
    assert.ok(unbounded.maxRequestShare > 0.9, `unbounded affinity: ${unbounded.maxRequestShare}`);
    const k = simulate(requests, { ...base, policy: 'k8s4ai' });
    assert.ok(k.maxRequestShare < 0.3, `max request share ${k.maxRequestShare}`);
    assert.ok(k.maxPrefillShareOfFair <= K8S4AI_DEFAULTS.loadBound, `prefill ${k.maxPrefillShareOfFair}× fair`);
    assert.ok(k.blockHitRate >= 0.97 * unbounded.blockHitRate);
  });
});

// ---- simulate ------------------------------------------------------------------------------

describe('simulate', () => {
  const m = DEFAULT_TIME_MODEL;
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

  it('charges overhead + uncached × prefill time, one decode step to the first token, and hits the replica cache', () => {
    const b = blocks(4);
    const requests: SimRequest[] = [
      { arrivalSeconds: 0, blocks: b, promptTokens: 2048, outputTokens: 10 },
      { arrivalSeconds: 100, blocks: [...b, 'y'], promptTokens: 2400, outputTokens: 10 },
      // The same 4 blocks again, the last one partial: the whole prompt is cached.
      { arrivalSeconds: 200, blocks: b, promptTokens: 2000, outputTokens: 1 },
    ];
    const r = simulate(requests, { policy: 'round-robin', replicas: 1, cacheBlocks: 100, blockTokens: BT, perRequest: true });
    const [a, c, e] = r.results!;
    close(a!.ttftSeconds, m.overheadSeconds + 2048 * m.prefillSecondsPerToken + m.decodeSecondsPerToken, 'first TTFT');
    assert.equal(a!.cachedTokens, 0);
    assert.equal(c!.cachedBlocks, 4);
    assert.equal(c!.cachedTokens, 2048);
    assert.equal(c!.prefillTokens, 352);
    assert.equal(c!.routedMatchedBlocks, 4);
    close(c!.ttftSeconds, m.overheadSeconds + 352 * m.prefillSecondsPerToken + m.decodeSecondsPerToken, 'second TTFT');
    close(a!.endSeconds, a!.ttftSeconds + 9 * m.decodeSecondsPerToken, 'completion');
    assert.equal(e!.cachedTokens, 2000, 'min(4 × 512, 2000)');
    close(e!.ttftSeconds, m.overheadSeconds + m.decodeSecondsPerToken, 'all cached: overhead and one step');
    assert.equal(r.blockHitRate, 8 / 13);
    assert.equal(r.tokenHitRate, 4048 / 6448);
    assert.equal(r.maxRequestShare, 1);
  });

  it('queues prefills FIFO per replica and measures busy time', () => {
    const requests: SimRequest[] = [
      { arrivalSeconds: 0, blocks: ['a'], promptTokens: 10_000, outputTokens: 1 },
      { arrivalSeconds: 0, blocks: ['b'], promptTokens: 5_000, outputTokens: 1 },
    ];
    const r = simulate(requests, { policy: 'round-robin', replicas: 1, cacheBlocks: 10, blockTokens: BT, perRequest: true });
    const p1 = m.overheadSeconds + 1.0;
    const p2 = m.overheadSeconds + 0.5;
    close(r.results![1]!.ttftSeconds, p1 + p2 + m.decodeSecondsPerToken, 'second waits for the first');
    close(r.horizonSeconds, p1 + p2, 'horizon');
    close(r.busy[0]!, 1, 'busy');
    close(r.ttftP99Ms, (p1 + p2 + m.decodeSecondsPerToken) * 1000, 'p99');
  });

  it('waits for a decode slot beyond maxBatch', () => {
    const requests: SimRequest[] = [
      { arrivalSeconds: 0, blocks: ['a'], promptTokens: 100, outputTokens: 100 },
      { arrivalSeconds: 0, blocks: ['b'], promptTokens: 100, outputTokens: 1 },
    ];
    const r = simulate(requests, { policy: 'round-robin', replicas: 1, cacheBlocks: 10, blockTokens: BT, perRequest: true, timeModel: { maxBatch: 1 } });
    close(r.results![1]!.ttftSeconds, r.results![0]!.endSeconds + m.decodeSecondsPerToken, 'second decodes after the first ends');
  });

  it('spreads over replicas, names backends, and reports shares', () => {
    const requests: SimRequest[] = Array.from({ length: 8 }, (_, i) => ({ arrivalSeconds: i, blocks: [`u${i}`], promptTokens: 100 * (i + 1), outputTokens: 1 }));
    const r = simulate(requests, { policy: 'round-robin', replicas: 4, cacheBlocks: 10, blockTokens: BT, backendIds: ['w', 'x', 'y', 'z'], perRequest: true });
    assert.deepEqual(r.results!.map((x) => x.backend), ['w', 'x', 'y', 'z', 'w', 'x', 'y', 'z']);
    assert.equal(r.maxRequestShare, 0.25);
    assert.equal(r.maxPrefillShare, (400 + 800) / 3600);
    assert.equal(r.maxPrefillShareOfFair, (4 * 1200) / 3600);
    assert.deepEqual(r.perReplica.map((p) => p.requests), [2, 2, 2, 2]);
    assert.throws(() => simulate(requests, { policy: 'round-robin', replicas: 2, cacheBlocks: 10, blockTokens: BT, backendIds: ['a'] }), RangeError);
  });

  it('measures hits on the replica caches, not on what the router believes', () => {
    // The router's index remembers 1 block per backend, the replica caches 100: the second
    // request is routed without knowing, yet hits 3 blocks on the replica.
    const requests: SimRequest[] = [
      { arrivalSeconds: 0, blocks: ['p', 'q', 'r'], promptTokens: 1536, outputTokens: 1 },
      { arrivalSeconds: 10, blocks: ['p', 'q', 'r', 's'], promptTokens: 2048, outputTokens: 1 },
    ];
    const r = simulate(requests, { policy: 'least-loaded', replicas: 1, cacheBlocks: 100, indexBlocks: 1, blockTokens: BT, perRequest: true });
    assert.equal(r.results![1]!.routedMatchedBlocks, 1);
    assert.equal(r.results![1]!.cachedBlocks, 3);
  });

  it('with KV events the router index tracks the replica caches exactly', () => {
    const requests = conversations({ count: 400, rate: 2, shared: 1, seed: 3 });
    const r = simulate(requests, { policy: 'k8s4ai', replicas: 3, cacheBlocks: 200, blockTokens: BT, indexSource: 'KVEvents', perRequest: true });
    // Prefills start in arrival order here (low load), so at each send the index = the cache.
    const differ = r.results!.filter((x) => x.routedMatchedBlocks !== x.cachedBlocks).length;
    assert.ok(differ <= requests.length * 0.02, `${differ} predictions off`);
    assert.ok(r.blockHitRate > 0);
  });

  it('never beats the infinite-cache upper bound, and every policy routes every request', () => {
    const requests = conversations({ count: 600, rate: 4, shared: 2, seed: 5 });
    const ub = upperBound(requests, BT);
    for (const name of POLICY_NAMES) {
      const r = simulate(requests, { policy: name, replicas: 3, cacheBlocks: 300, blockTokens: BT });
      assert.ok(r.blockHitRate <= ub.blockHitRate + 1e-12, name);
      assert.ok(r.tokenHitRate <= ub.tokenHitRate + 1e-12, name);
      assert.equal(r.perReplica.reduce((s, p) => s + p.requests, 0), requests.length);
      assert.ok(Number.isFinite(r.ttftP99Ms) && r.ttftP99Ms >= r.ttftP50Ms);
    }
  });

  it('upperBound counts the contiguous prefix seen before, in arrival order', () => {
    const requests: SimRequest[] = [
      { arrivalSeconds: 1, blocks: ['a', 'b', 'c'], promptTokens: 1500, outputTokens: 1 },
      { arrivalSeconds: 0, blocks: ['a', 'x'], promptTokens: 1024, outputTokens: 1 },
      { arrivalSeconds: 2, blocks: ['a', 'x', 'y'], promptTokens: 1536, outputTokens: 1 },
    ];
    const ub = upperBound(requests, BT);
    assert.equal(ub.blockHitRate, (0 + 1 + 2) / 8);
    assert.equal(ub.tokenHitRate, (512 + 1024) / (1500 + 1024 + 1536));
  });

  it('parses Mooncake JSONL and scales arrival rates', () => {
    const rows = parseMooncakeTrace('{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n\n{"timestamp": 1500, "input_length": 10, "output_length": 1, "hash_ids": [0]}\n');
    assert.deepEqual(rows, [
      { arrivalSeconds: 0, blocks: ['0', '1'], promptTokens: 600, outputTokens: 5 },
      { arrivalSeconds: 1.5, blocks: ['0'], promptTokens: 10, outputTokens: 1 },
    ]);
    assert.equal(scaleArrivals(rows, 2)[1]!.arrivalSeconds, 0.75);
    assert.throws(() => parseMooncakeTrace('{"timestamp": 0}'), /line 1/);
  });
});
