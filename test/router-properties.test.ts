// Property tests of the routing core:
//   - the prefix index under random record / stored / removed / cleared / removeBackend
//     sequences never holds more than its capacity in blocks per backend nor more than its
//     byte cap, its memory estimate stays within the configured bound, and it answers
//     exactly as a plain array-based LRU model would (so the live-iterator eviction is an
//     LRU);
//   - equal prompts under different salts (tenants) never share a block hash, while equal
//     salts do, and a longer prompt shares the hashes of the full blocks it extends;
//   - simulate() on random small workloads conserves requests and tokens and never beats the
//     infinite-cache upper bound.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blockHashes, CHARS_PER_TOKEN, promptBlocks } from '../src/router/prompt.ts';
import { BlockLru, entryBytes, PrefixIndex } from '../src/router/prefix-index.ts';
import { POLICY_NAMES } from '../src/router/policies/registry.ts';
import { simulate, upperBound, type SimRequest } from '../src/router/simulate.ts';
import { INDEX_SOURCES } from '../src/api/kinds/contentrouter.ts';

// ---- a reference LRU -----------------------------------------------------------------------

/** Keys from least to most recent, with the same two bounds: obviously right, O(n) per step. */
class ModelLru {
  keys: string[] = [];
  constructor(private readonly capacity: number, private readonly maxBytes: number) {}
  bytes(): number {
    return this.keys.reduce((s, k) => s + entryBytes(k), 0);
  }
  touch(k: string): void {
    const i = this.keys.indexOf(k);
    if (i >= 0) this.keys.splice(i, 1);
    this.keys.push(k);
    while (this.keys.length > 0 && (this.keys.length > this.capacity || this.bytes() > this.maxBytes)) this.keys.shift();
  }
  touchTailFirst(blocks: readonly string[]): void {
    for (let i = Math.min(blocks.length, this.capacity) - 1; i >= 0; i--) this.touch(blocks[i]!);
  }
  delete(k: string): void {
    const i = this.keys.indexOf(k);
    if (i >= 0) this.keys.splice(i, 1);
  }
  match(blocks: readonly string[]): number {
    let n = 0;
    while (n < blocks.length && this.keys.includes(blocks[n]!)) n++;
    return n;
  }
}

const BACKENDS = ['a', 'b', 'c'] as const;
// Keys of a few lengths, so the byte cap bites at different counts.
const keyArb = fc.oneof(fc.integer({ min: 0, max: 30 }).map(String), fc.integer({ min: 0, max: 30 }).map((i) => `k${i}`.padEnd(20 + (i % 3) * 8, 'x')));
const blocksArb = fc.array(keyArb, { minLength: 0, maxLength: 12 });
const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('record' as const), backend: fc.constantFrom(...BACKENDS), keys: blocksArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('stored' as const), backend: fc.constantFrom(...BACKENDS), keys: blocksArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('removed' as const), backend: fc.constantFrom(...BACKENDS), keys: blocksArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cleared' as const), backend: fc.constantFrom(...BACKENDS), keys: fc.constant([]) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeBackend' as const), backend: fc.constantFrom(...BACKENDS), keys: fc.constant([]) }) },
);

describe('PrefixIndex properties', () => {
  it('never exceeds its block or byte bounds and behaves as an LRU model', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.option(fc.integer({ min: 150, max: 1500 }), { nil: undefined }),
        fc.array(opArb, { maxLength: 80 }),
        fc.array(blocksArb, { minLength: 1, maxLength: 5 }),
        (capacity, maxBytes, ops, queries) => {
          const idx = new PrefixIndex({ capacityBlocks: capacity, maxBytesPerBackend: maxBytes });
          const model = new Map<string, ModelLru>();
          const lru = (b: string) => {
            let m = model.get(b);
            if (!m) model.set(b, (m = new ModelLru(capacity, maxBytes ?? Infinity)));
            return m;
          };
          for (const { op, backend, keys } of ops) {
            switch (op) {
              case 'record':
                idx.record(backend, keys);
                lru(backend).touchTailFirst(keys);
                break;
              case 'stored':
                idx.stored(backend, keys);
                lru(backend).touchTailFirst(keys);
                break;
              case 'removed':
                idx.removed(backend, keys);
                model.get(backend)?.keys && keys.forEach((k) => model.get(backend)!.delete(k));
                break;
              case 'cleared':
                idx.cleared(backend);
                if (model.has(backend)) model.get(backend)!.keys = [];
                break;
              case 'removeBackend':
                idx.removeBackend(backend);
                model.delete(backend);
                break;
            }
            let total = 0;
            for (const b of BACKENDS) {
              const size = idx.sizeBlocks(b);
              assert.ok(size <= capacity, `${b}: ${size} blocks > ${capacity}`);
              assert.equal(size, model.get(b)?.keys.length ?? 0);
              const bytes = model.get(b)?.bytes() ?? 0;
              if (maxBytes !== undefined) assert.ok(bytes <= maxBytes);
              total += bytes;
            }
            assert.ok(idx.memoryBytes() <= idx.maxMemoryBytes(idx.backends().length, 40));
            assert.ok(idx.memoryBytes() >= total);
          }
          for (const b of BACKENDS) for (const q of queries) assert.equal(idx.match(b, q), model.get(b)?.match(q) ?? 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('BlockLru evicts exactly the least recent key over long random runs (across table rehashes)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: -100, max: -1 })), { maxLength: 2000 }), (capacity, steps) => {
        const evicted: string[] = [];
        const lru = new BlockLru(capacity, Infinity, (k) => evicted.push(k));
        const model = new ModelLru(capacity, Infinity);
        const modelEvicted: string[] = [];
        for (const s of steps) {
          if (s >= 0) {
            const before = [...model.keys];
            lru.touch(String(s));
            model.touch(String(s));
            for (const k of before) if (!model.keys.includes(k)) modelEvicted.push(k);
          } else {
            lru.delete(String(-s));
            model.delete(String(-s));
          }
        }
        assert.deepEqual(lru.keys(), model.keys);
        assert.deepEqual(evicted, modelEvicted);
      }),
      { numRuns: 200 },
    );
  });
});

// ---- salts ---------------------------------------------------------------------------------

describe('prompt block hashes', () => {
  it('equal prompts under different salts never share a hash; under equal salts all of them', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 400 }),
        fc.integer({ min: 1, max: 16 }),
        fc.string({ maxLength: 12 }),
        fc.string({ maxLength: 12 }),
        fc.string({ maxLength: 8 }),
        (text, blockTokens, salt1, salt2, model) => {
          fc.pre(salt1 !== salt2);
          const a = blockHashes(text, blockTokens, model, salt1);
          const b = blockHashes(text, blockTokens, model, salt2);
          assert.equal(a.hashes.length, Math.ceil(text.length / (blockTokens * CHARS_PER_TOKEN)));
          const other = new Set(b.hashes);
          for (const h of a.hashes) assert.ok(!other.has(h), 'a block hash shared across salts');
          assert.deepEqual(blockHashes(text, blockTokens, model, salt1).hashes, a.hashes);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('request bodies: different salts share nothing; a longer conversation shares its full blocks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string({ maxLength: 200 }) }), { minLength: 1, maxLength: 5 }),
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.tuple(fc.string({ minLength: 8, maxLength: 16 }), fc.string({ minLength: 8, maxLength: 16 })).filter(([x, y]) => x !== y),
        (messages, next, [salt1, salt2]) => {
          const body = { model: 'm', messages };
          const a = promptBlocks(body, 4, salt1);
          const b = promptBlocks(body, 4, salt2);
          const other = new Set(b.hashes);
          for (const h of a.hashes) assert.ok(!other.has(h));
          // Next turn, same tenant: every full block of the earlier prompt is shared.
          const longer = promptBlocks({ model: 'm', messages: [...messages, { role: 'user', content: next }] }, 4, salt1);
          const full = Math.floor(a.chars / (4 * CHARS_PER_TOKEN));
          assert.deepEqual(longer.hashes.slice(0, full), a.hashes.slice(0, full));
          // … and nothing with the other tenant's.
          for (const h of longer.hashes) assert.ok(!other.has(h));
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---- the simulator -------------------------------------------------------------------------

const workloadArb = fc.array(
  fc.record({
    gap: fc.double({ min: 0, max: 2, noNaN: true }),
    parent: fc.nat(),
    extend: fc.integer({ min: 1, max: 6 }),
    partial: fc.integer({ min: 0, max: 511 }),
    outputTokens: fc.integer({ min: 0, max: 400 }),
  }),
  { minLength: 1, maxLength: 60 },
).map((rows) => {
  // Each request extends an earlier one's blocks (or starts fresh from block 0).
  const out: SimRequest[] = [];
  let t = 0;
  let next = 0;
  for (const r of rows) {
    t += r.gap;
    const base = out.length && r.parent % 3 !== 0 ? out[r.parent % out.length]!.blocks : ['0'];
    const blocks = [...base];
    for (let i = 0; i < r.extend; i++) blocks.push(`b${next++}`);
    out.push({ arrivalSeconds: t, blocks, promptTokens: blocks.length * 512 - r.partial, outputTokens: r.outputTokens });
  }
  return out;
});

describe('simulate properties', () => {
  it('conserves requests and tokens, and no policy beats the upper bound', () => {
    fc.assert(
      fc.property(workloadArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(...POLICY_NAMES), fc.constantFrom(...INDEX_SOURCES), (requests, replicas, cacheBlocks, policy, indexSource) => {
        const r = simulate(requests, { policy, replicas, cacheBlocks, blockTokens: 512, indexSource, perRequest: true });
        const ub = upperBound(requests, 512);
        assert.ok(r.blockHitRate <= ub.blockHitRate + 1e-12);
        assert.ok(r.tokenHitRate <= ub.tokenHitRate + 1e-12);
        assert.equal(r.perReplica.reduce((s, p) => s + p.requests, 0), requests.length);
        const prompt = requests.reduce((s, q) => s + q.promptTokens, 0);
        assert.equal(r.perReplica.reduce((s, p) => s + p.prefillTokens + p.cachedTokens, 0), prompt);
        for (const [i, x] of r.results!.entries()) {
          assert.ok(x.cachedTokens <= requests[i]!.promptTokens);
          assert.ok(x.ttftSeconds > 0 && x.endSeconds >= x.ttftSeconds - 1e-9);
        }
        assert.ok(r.maxRequestShare >= 1 / replicas - 1e-12 && r.maxRequestShare <= 1);
        for (const b of r.busy) assert.ok(b >= 0 && b <= 1 + 1e-9);
      }),
      { numRuns: 200 },
    );
  });
});
