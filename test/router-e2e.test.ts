// End to end over real HTTP: four reference engines behind `k8s4ai router`, a replay of
// 2,000 requests built in the Mooncake trace's shape (conversations growing turn by turn,
// every one starting with the same block, groups sharing a system prompt). The cached
// tokens the engines report must match what the routing benchmark's simulation predicts
// for the same requests; and one tenant's prefix never yields cached tokens for another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine } from '../src/engine/server.ts';
import { startRouter, type Router } from '../src/router/server.ts';
import { promptBlocks } from '../src/router/prompt.ts';
import { simulate, type SimRequest } from '../src/router/simulate.ts';
import { hashApiKey } from '../src/router/tenants.ts';
import { seededRandom } from '../src/lib/random.ts';

const BLOCK_TOKENS = 64;
const CACHE_BLOCKS = 400;
const REQUESTS = 2000;
const MODEL = 'k8s4ai/sim-8b';
const TIME = { prefillSecondsPerToken: 0, overheadSeconds: 0, decodeSecondsPerToken: 0, maxBatch: 64 };
const TENANTS = [
  { name: 'tenant-a', key: 'sk-test-tenant-a', salt: 'salt-of-tenant-a' },
  { name: 'tenant-b', key: 'sk-test-tenant-b', salt: 'salt-of-tenant-b' },
];

type Engine = Awaited<ReturnType<typeof startEngine>>;
let engines: Engine[] = [];
let router: Router;

before(async () => {
  engines = await Promise.all([0, 1, 2, 3].map(() => startEngine({ port: 0, models: [MODEL], blockTokens: BLOCK_TOKENS, cacheBlocks: CACHE_BLOCKS, time: TIME })));
  router = await startRouter({
    port: 0,
    backends: engines.map((e) => e.url),
    policy: 'k8s4ai',
    blockTokens: BLOCK_TOKENS,
    indexCapacityBlocks: CACHE_BLOCKS,
    tenants: TENANTS.map((t) => ({ name: t.name, apiKeyHashes: [hashApiKey(t.key)], cacheSalt: t.salt })),
  });
  // Every backend ready before the replay: the simulation has all four from the start.
  for (let i = 0; i < 200 && router.backends.ready().length < engines.length; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(router.backends.ready().length, engines.length, 'all engines ready behind the router');
});

after(async () => {
  await router?.close();
  await Promise.all(engines.map((e) => e.close()));
});

/** The trace's shape, generated: hash_ids chained per conversation, block 0 shared by all. */
function traceShaped(n: number, seed: number): { hashIds: number[]; inputLength: number; outputLength: number }[] {
  const rnd = seededRandom(seed);
  const systemPrompts = Array.from({ length: 6 }, (_, i) => [0, 1 + i * 3, 2 + i * 3, 3 + i * 3]);
  let next = 100;
  const sessions: number[][] = [];
  const out: { hashIds: number[]; inputLength: number; outputLength: number }[] = [];
  for (let i = 0; i < n; i++) {
    // A new conversation a third of the time, else the next turn of a recent one.
    let s: number[];
    if (!sessions.length || rnd() < 0.33) {
      s = [...systemPrompts[Math.floor(rnd() * systemPrompts.length)]!];
      sessions.push(s);
      if (sessions.length > 60) sessions.shift();
    } else {
      s = sessions[Math.floor(rnd() * sessions.length)]!;
    }
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) s.push(next++);
    const blocks = s.length;
    out.push({ hashIds: [...s], inputLength: blocks * BLOCK_TOKENS - Math.floor(rnd() * BLOCK_TOKENS), outputLength: 2 });
  }
  return out;
}

/** A block id's text: BLOCK_TOKENS tokens of 4 characters, the same for every prompt that has it. */
function blockText(id: number): string {
  const rnd = seededRandom(id + 1);
  let s = '';
  while (s.length < BLOCK_TOKENS * 4) s += String.fromCharCode(97 + Math.floor(rnd() * 26));
  return s;
}

function body(hashIds: number[], inputLength: number, outputLength: number): Record<string, unknown> {
  return { model: MODEL, prompt: hashIds.map(blockText).join('').slice(0, inputLength * 4), max_tokens: outputLength };
}

async function complete(tenantKey: string, b: Record<string, unknown>): Promise<{ prompt: number; cached: number }> {
  const res = await fetch(`${router.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${tenantKey}`, 'content-type': 'application/json' }, body: JSON.stringify(b) });
  const json = (await res.json()) as { usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } };
  assert.equal(res.status, 200, JSON.stringify(json));
  return { prompt: json.usage!.prompt_tokens, cached: json.usage!.prompt_tokens_details?.cached_tokens ?? 0 };
}

test('the engines\' cached tokens match the routing simulation\'s prediction within 2 points', { timeout: 240_000 }, async (t) => {
  const trace = traceShaped(REQUESTS, 7);
  const tenant = TENANTS[0]!;
  const bodies = trace.map((r) => body(r.hashIds, r.inputLength, r.outputLength));
  // One at a time, as the simulation's requests a second apart: no request waits on another,
  // so routing is decided by the prefixes alone on both sides.
  let prompt = 0;
  let cached = 0;
  for (const b of bodies) {
    const u = await complete(tenant.key, b);
    prompt += u.prompt;
    cached += u.cached;
  }
  const live = cached / prompt;

  const requests: SimRequest[] = bodies.map((b, i) => {
    const blocks = promptBlocks(b, BLOCK_TOKENS, tenant.salt);
    return { arrivalSeconds: i, blocks: blocks.hashes, promptTokens: blocks.tokens, outputTokens: Number(b.max_tokens) };
  });
  const predicted = simulate(requests, { policy: 'k8s4ai', replicas: engines.length, cacheBlocks: CACHE_BLOCKS, blockTokens: BLOCK_TOKENS, timeModel: TIME, backendIds: engines.map((e) => e.url) });
  assert.ok(predicted.tokenHitRate > 0.3, `the workload reuses prefixes (predicted ${predicted.tokenHitRate})`);
  t.diagnostic(`live token hit rate ${(live * 100).toFixed(2)}%, predicted ${(predicted.tokenHitRate * 100).toFixed(2)}%`);
  assert.ok(Math.abs(live - predicted.tokenHitRate) <= 0.02, `live token hit rate ${(live * 100).toFixed(2)}% vs predicted ${(predicted.tokenHitRate * 100).toFixed(2)}%`);
});

test('replayed at its arrival times, concurrently, the prediction still holds within 2 points', { timeout: 240_000 }, async (t) => {
  // Another slice of conversations, under another tenant (a cache of its own), arriving 200/s.
  const trace = traceShaped(REQUESTS, 11);
  const tenant = TENANTS[1]!;
  const bodies = trace.map((r) => body(r.hashIds, r.inputLength, r.outputLength));
  const spacingMs = 5;
  const start = performance.now();
  const results = await Promise.all(bodies.map(async (b, i) => {
    const wait = start + i * spacingMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    return complete(tenant.key, b);
  }));
  const live = results.reduce((s, u) => s + u.cached, 0) / results.reduce((s, u) => s + u.prompt, 0);
  const requests: SimRequest[] = bodies.map((b, i) => {
    const blocks = promptBlocks(b, BLOCK_TOKENS, tenant.salt);
    return { arrivalSeconds: (i * spacingMs) / 1000, blocks: blocks.hashes, promptTokens: blocks.tokens, outputTokens: Number(b.max_tokens) };
  });
  const predicted = simulate(requests, { policy: 'k8s4ai', replicas: engines.length, cacheBlocks: CACHE_BLOCKS, blockTokens: BLOCK_TOKENS, timeModel: TIME, backendIds: engines.map((e) => e.url) });
  t.diagnostic(`live token hit rate ${(live * 100).toFixed(2)}%, predicted ${(predicted.tokenHitRate * 100).toFixed(2)}%`);
  assert.ok(Math.abs(live - predicted.tokenHitRate) <= 0.02, `live token hit rate ${(live * 100).toFixed(2)}% vs predicted ${(predicted.tokenHitRate * 100).toFixed(2)}%`);
});

test('one tenant\'s prefix never yields cached tokens for another', async () => {
  const [a, b] = TENANTS;
  const prompt = body([900_001, 900_002, 900_003, 900_004], 4 * BLOCK_TOKENS, 2);
  await complete(a!.key, prompt);
  const again = await complete(a!.key, prompt);
  assert.ok(again.cached >= 3 * BLOCK_TOKENS, `tenant A's repeat is cached (${again.cached})`);
  for (let i = 0; i < 4; i++) {
    const other = await complete(b!.key, prompt);
    if (i === 0) assert.equal(other.cached, 0, 'tenant B gets nothing from tenant A\'s prefix');
  }
  // Even a client-supplied cache_salt naming tenant A's salt is replaced by tenant B's own.
  const forged = await complete(b!.key, { ...prompt, prompt: `${String(prompt.prompt)}x`, cache_salt: a!.salt });
  assert.ok(forged.cached <= 4 * BLOCK_TOKENS);
  const fresh = body([900_101, 900_102], 2 * BLOCK_TOKENS, 2);
  await complete(a!.key, fresh);
  const probe = await complete(b!.key, { ...fresh, cache_salt: a!.salt });
  assert.equal(probe.cached, 0, 'a forged cache_salt does not reach tenant A\'s cache');
});
