// The simulated engine (`k8s4ai engine`): its prefix KV cache (LRU, tail-first touches,
// salts, events), its time model on the wall clock (prefill lane, decode batch), the
// OpenAI-shaped responses (JSON and token-by-token SSE), cancellation on disconnect,
// errors, drain, and the command itself.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PrefixKvCache, type KvEvent } from '../src/engine/kvcache.ts';
import { Engine, type EngineStats, type GenerateResult } from '../src/engine/engine.ts';
import { startEngine, OWNED_BY, SIMULATED_HEADER, type EngineServer, type EngineServerOptions } from '../src/engine/server.ts';
import { ENGINE_FLAG_DEFAULTS } from '../src/cli/engine.ts';
import { buildProgram } from '../src/cli/main.ts';
import { promptBlocks } from '../src/router/prompt.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const MODEL = 'k8s4ai/sim-8b';
/** No waiting anywhere: for tests about the cache and the API, not time. */
const INSTANT = { prefillSecondsPerToken: 0, overheadSeconds: 0, decodeSecondsPerToken: 0, maxBatch: 64 };

const servers: EngineServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function engine(opts: EngineServerOptions = {}): Promise<EngineServer> {
  const s = await startEngine({ time: INSTANT, ...opts });
  servers.push(s);
  return s;
}

interface Completion {
  choices: { text?: string; message?: { content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function post(s: EngineServer, path: string, body: unknown, init: RequestInit = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

async function complete(s: EngineServer, body: Record<string, unknown>): Promise<Completion> {
  const r = await post(s, '/v1/completions', { model: MODEL, max_tokens: 4, ...body });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as Completion;
}

/** Reads an SSE response, noting when each read arrived. */
async function readStream(res: Response, onRead?: (text: string) => void): Promise<{ reads: { at: number; text: string }[]; events: string[] }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const reads: { at: number; text: string }[] = [];
  let all = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    reads.push({ at: performance.now(), text });
    all += text;
    onRead?.(text);
  }
  const events = all.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice('data: '.length));
  return { reads, events };
}

const metric = async (s: EngineServer, name: string): Promise<number> => {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ').pop());
};

/** `n` characters of text unique to `tag`: n / 4 tokens. */
const text = (tag: string, n: number) => `${tag}:`.padEnd(n, `${tag} lorem ipsum `).slice(0, n);

interface Seen {
  /** The request, numbered by its arrival at the engine (from 0). */
  req: number;
  what: 'arrived' | 'prefill' | 'token' | 'end';
  /** The token's index, for 'token'. */
  index?: number;
  /** The engine's stats at that moment. */
  stats: EngineStats;
}

/**
 * Watches a server's engine from inside: every request generate() receives, numbered by
 * arrival, and what happened to it in order (arrived, prefill started, each token, ended),
 * each with the engine's stats at that moment, plus what generate() returned. Order and the
 * engine's own accounting only: nothing here reads the clock.
 */
function watch(s: EngineServer): { seen: Seen[]; results: GenerateResult[]; arrived(): number; order(what: Seen['what'], index?: number): number[] } {
  const seen: Seen[] = [];
  const results: GenerateResult[] = [];
  const generate = s.engine.generate.bind(s.engine);
  const note = (req: number, what: Seen['what'], index?: number) => seen.push({ req, what, ...(index === undefined ? {} : { index }), stats: s.engine.stats() });
  s.engine.generate = (r) => {
    const req = results.length;
    results.length++;
    note(req, 'arrived');
    return generate({
      ...r,
      onPrefill: (info) => {
        note(req, 'prefill');
        r.onPrefill?.(info);
      },
      onToken: (token, index) => {
        note(req, 'token', index);
        r.onToken?.(token, index);
      },
    }).then((result) => {
      results[req] = result;
      note(req, 'end');
      return result;
    });
  };
  return {
    seen,
    results,
    arrived: () => results.length,
    /** Requests in the order they reached `what` (for 'token', the token at `index`). */
    order: (what, index) => seen.filter((e) => e.what === what && (index === undefined || e.index === index)).map((e) => e.req),
  };
}

/** Waits, a turn of the event loop at a time, until `cond` holds (a bounded number of turns). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(cond(), `never saw: ${what}`);
}

const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);

describe('PrefixKvCache', () => {
  it('matches the contiguous prefix held, and evicts least recently used', () => {
    const c = new PrefixKvCache(4);
    c.insert(['a1', 'a2']);
    c.insert(['b1', 'b2']);
    assert.equal(c.match(['a1', 'a2', 'a3']), 2);
    assert.equal(c.match(['a1', 'x', 'a2']), 1, 'a gap ends the match');
    assert.equal(c.match(['a2']), 1);
    c.insert(['a1']); // touched: a2 is now the least recently used
    c.insert(['c1']);
    assert.equal(c.has('a2'), false, 'the LRU block went');
    assert.deepEqual(c.snapshot(), ['b2', 'b1', 'a1', 'c1'], 'b touched tail-first: b1 more recent than b2');
    assert.equal(c.match(['a1', 'a2']), 1);
    assert.equal(c.size, 4);
    assert.equal(c.usage, 1);
  });

  it('touches tail-first, so a request longer than the cache keeps its head', () => {
    const c = new PrefixKvCache(3);
    const events: KvEvent[] = [];
    c.subscribe((e) => events.push(e));
    const r = c.insert(['h1', 'h2', 'h3', 'h4', 'h5']);
    assert.deepEqual(c.snapshot(), ['h3', 'h2', 'h1'], 'first block most recent');
    assert.equal(c.match(['h1', 'h2', 'h3', 'h4', 'h5']), 3);
    // Net change only: h4 and h5 were stored and evicted within the insert.
    assert.deepEqual(r.stored.sort(), ['h1', 'h2', 'h3']);
    assert.deepEqual(r.removed, []);
    assert.deepEqual(events, [{ type: 'stored', hashes: r.stored }]);
    events.length = 0;
    c.insert(['x1', 'x2']);
    assert.deepEqual(events.map((e) => e.type), ['stored', 'removed']);
    assert.deepEqual(events[1]!.hashes.sort(), ['h2', 'h3']);
    assert.deepEqual(c.snapshot(), ['h1', 'x2', 'x1']);
  });
});

describe('Engine scheduler', () => {
  it('is deterministic per prompt and reports cached tokens from matched blocks', async () => {
    const e = new Engine({ blockTokens: 4, cacheBlocks: 100, time: INSTANT });
    const a = await e.generate({ blocks: ['p1', 'p2', 'p3'], promptTokens: 10, maxTokens: 5 });
    const b = await e.generate({ blocks: ['p1', 'p2', 'q3'], promptTokens: 11, maxTokens: 5 });
    const c = await e.generate({ blocks: ['p1', 'p2', 'p3'], promptTokens: 10, maxTokens: 5 });
    assert.equal(a.cachedTokens, 0);
    assert.equal(b.cachedTokens, 8);
    assert.equal(c.cachedTokens, 10, 'capped at the prompt: the last block was partial');
    assert.equal(a.text, c.text);
    assert.equal(a.completionTokens, 5);
    assert.equal(a.text.split(' ').length, 5);
    assert.deepEqual(e.stats().totals, { finished: 3, cancelled: 0, promptTokens: 31, cachedTokens: 18, prefilledTokens: 13, generatedTokens: 15 });
  });

  it('cancels a queued request without it ever prefilling', async () => {
    const e = new Engine({ time: { ...INSTANT, prefillSecondsPerToken: 0.001 } });
    const first = e.generate({ blocks: ['a'], promptTokens: 50, maxTokens: 1 });
    const ac = new AbortController();
    const second = e.generate({ blocks: ['b'], promptTokens: 50, maxTokens: 1, signal: ac.signal });
    assert.equal(e.stats().queued, 1);
    ac.abort();
    const r = await second;
    assert.equal(r.finishReason, 'abort');
    assert.equal(r.prefilled, false);
    assert.equal(e.cache.has('b'), false);
    assert.equal((await first).finishReason, 'length');
    assert.equal(e.active, 0);
  });
});

describe('k8s4ai engine: prefix cache over HTTP', () => {
  it('a second request with the same prefix reports the matched full blocks as cached', async () => {
    const s = await engine();
    const base = text('shared', 200); // 50 tokens: 3 full blocks of 16 tokens and a partial one
    const first = await complete(s, { prompt: base });
    assert.equal(first.usage.prompt_tokens, 50);
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
    const longer = `${base} and then something else entirely`;
    const second = await complete(s, { prompt: longer });
    // As predicted from the shared hashing: the blocks the two prompts have in common.
    const h1 = promptBlocks({ model: MODEL, prompt: base }, 16, '').hashes;
    const h2 = promptBlocks({ model: MODEL, prompt: longer }, 16, '').hashes;
    let common = 0;
    while (h1[common] === h2[common]) common++;
    assert.equal(common, 3);
    assert.equal(second.usage.prompt_tokens_details.cached_tokens, 48);
    // The very same prompt again: every token, partial block included.
    assert.equal((await complete(s, { prompt: base })).usage.prompt_tokens_details.cached_tokens, 50);

    // Chat: the next turn of a conversation reuses the earlier turns.
    const turn1 = [{ role: 'system', content: text('system prompt', 300) }, { role: 'user', content: 'first question' }];
    const c1 = await post(s, '/v1/chat/completions', { model: MODEL, messages: turn1, max_tokens: 2 });
    assert.equal(c1.json.usage.prompt_tokens_details.cached_tokens, 0);
    const turn2 = [...turn1, { role: 'assistant', content: c1.json.choices[0].message.content }, { role: 'user', content: 'second question' }];
    const c2 = await post(s, '/v1/chat/completions', { model: MODEL, messages: turn2, max_tokens: 2 });
    const full = Math.floor(promptBlocks({ model: MODEL, messages: turn1 }, 16, '').chars / 64);
    assert.ok(full >= 4);
    assert.ok(c2.json.usage.prompt_tokens_details.cached_tokens >= full * 16, JSON.stringify(c2.json.usage));
  });

  it('a different cache_salt shares nothing', async () => {
    const s = await engine();
    const prompt = text('salted', 256);
    assert.equal((await complete(s, { prompt, cache_salt: 'tenant-a' })).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s, { prompt, cache_salt: 'tenant-b' })).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal((await complete(s, { prompt })).usage.prompt_tokens_details.cached_tokens, 0, 'no salt is a salt of its own');
    assert.equal((await complete(s, { prompt, cache_salt: 'tenant-a' })).usage.prompt_tokens_details.cached_tokens, 64);
  });

  it('evicts least recently used blocks from a tiny cache', async () => {
    const s = await engine({ cacheBlocks: 4 });
    const a = text('aaaa', 256); // 4 blocks: the whole cache
    const b = text('bbbb', 128); // 2 blocks
    await complete(s, { prompt: a });
    assert.equal((await complete(s, { prompt: a })).usage.prompt_tokens_details.cached_tokens, 64);
    await complete(s, { prompt: b }); // evicts a's last two blocks (touched first, so least recent)
    assert.equal((await complete(s, { prompt: b })).usage.prompt_tokens_details.cached_tokens, 32);
    assert.equal((await complete(s, { prompt: a })).usage.prompt_tokens_details.cached_tokens, 32, 'a kept its head');
    // a was just stored again whole, so b is gone.
    assert.equal((await complete(s, { prompt: b })).usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(await metric(s, 'k8s4ai_engine_kv_cache_usage_ratio'), 1);
  });

  it('publishes stored and removed blocks on /v1/kv/events (NDJSON and SSE)', async () => {
    const s = await engine({ cacheBlocks: 2 });
    await complete(s, { prompt: text('before', 64) });
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/kv/events`, { signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines: KvEvent[] = [];
    let buf = '';
    const reading = readStream(res, (t) => {
      buf += t;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts.map((l) => JSON.parse(l) as KvEvent));
    }).catch(() => undefined);
    const before = promptBlocks({ model: MODEL, prompt: text('before', 64) }, 16, '').hashes;
    const next = promptBlocks({ model: MODEL, prompt: text('next', 128) }, 16, '').hashes;
    await complete(s, { prompt: text('next', 128) });
    for (let i = 0; i < 100 && lines.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await reading;
    assert.deepEqual(lines[0], { type: 'stored', hashes: before }, 'opens with a snapshot');
    assert.deepEqual(lines[1]!.type, 'stored');
    assert.deepEqual([...lines[1]!.hashes].sort(), [...next].sort());
    assert.deepEqual(lines[2], { type: 'removed', hashes: before });

    const sse = await fetch(`${s.url}/v1/kv/events`, { headers: { accept: 'text/event-stream' } });
    assert.match(sse.headers.get('content-type')!, /text\/event-stream/);
    const reader = sse.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^data: \{"type":"stored","hashes":\[/);
    await reader.cancel();
  });
});

describe('k8s4ai engine: responses and streaming', () => {
  it('streams token by token over time, then usage and [DONE]; the text equals the non-streamed one', async () => {
    const s = await engine({ time: { ...INSTANT, decodeSecondsPerToken: 0.025 } });
    const body = { model: MODEL, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 6 };
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get(SIMULATED_HEADER), 'true');
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    const { reads, events } = await readStream(res);
    const tokenReads = reads.filter((r) => r.text.includes('"content"'));
    assert.ok(tokenReads.length >= 3, `tokens arrived in ${tokenReads.length} reads`);
    assert.equal(events[events.length - 1], '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const usage = chunks[chunks.length - 1];
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, 6);
    assert.equal(usage.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(chunks[chunks.length - 2].choices[0].finish_reason, 'length');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    const streamed = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

    const plain = await post(s, '/v1/chat/completions', body);
    assert.equal(plain.json.object, 'chat.completion');
    assert.equal(plain.json.choices[0].message.content, streamed, 'deterministic per prompt');
    assert.equal(plain.json.usage.prompt_tokens_details.cached_tokens, plain.json.usage.prompt_tokens);
    assert.equal(plain.json.usage.total_tokens, plain.json.usage.prompt_tokens + 6);

    // Completions stream `choices[0].text`.
    const c = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'x', max_tokens: 3, stream: true }) });
    const cs = (await readStream(c)).events;
    assert.equal(cs.at(-1), '[DONE]');
    const parsed = cs.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(parsed.filter((p) => p.choices[0]?.text).length, 3);
    assert.ok(parsed.every((p) => !p.usage), 'no usage chunk unless asked');
  });

  it('a client abort mid-stream cancels the request and frees its batch slot', async () => {
    const s = await engine({ time: { ...INSTANT, decodeSecondsPerToken: 0.02, maxBatch: 1 } });
    const w = watch(s);
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, prompt: 'long answer', max_tokens: 10_000, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    assert.equal(s.engine.stats().running, 1);
    ac.abort();
    const next = await complete(s, { prompt: 'short', max_tokens: 3 });
    assert.equal(next.usage.completion_tokens, 3);
    // The slot went to the short request when the aborted one ended, not after its 10,000 tokens.
    const [aborted, short] = w.results;
    assert.equal(aborted!.finishReason, 'abort');
    assert.ok(aborted!.completionTokens < 10_000, `the aborted request stopped after ${aborted!.completionTokens} tokens`);
    assert.equal(short!.finishReason, 'length');
    const abortedEnd = w.seen.findIndex((e) => e.req === 0 && e.what === 'end');
    const shortFirst = w.seen.findIndex((e) => e.req === 1 && e.what === 'token' && e.index === 0);
    assert.ok(abortedEnd >= 0 && abortedEnd < shortFirst, 'the short request decoded only once the aborted one had ended');
    assert.ok(w.seen.every((e) => e.stats.running <= 1));
    assert.equal(await metric(s, 'k8s4ai_engine_running_batch'), 0);
    assert.equal(await metric(s, 'k8s4ai_engine_queue_depth'), 0);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(text, /k8s4ai_engine_requests_total\{model="k8s4ai\/sim-8b",endpoint="completion",outcome="cancelled"\} 1/);
    assert.ok(s.engine.stats().totals.generatedTokens < 1000);
  });

  it('a client that leaves a non-streamed request cancels it too', async () => {
    const s = await engine({ time: { ...INSTANT, decodeSecondsPerToken: 0.02, maxBatch: 1 } });
    const ac = new AbortController();
    const pending = fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'p', max_tokens: 10_000 }), signal: ac.signal }).catch(() => undefined);
    for (let i = 0; i < 100 && s.engine.stats().running === 0; i++) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await pending;
    for (let i = 0; i < 100 && s.engine.active > 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.engine.active, 0);
    assert.equal(s.engine.stats().totals.cancelled, 1);
  });
});

describe('k8s4ai engine: time model', () => {
  /** Streams a two-token completion; returns the cached tokens its usage reports. */
  const streamed = async (s: EngineServer, prompt: string): Promise<{ cached: number }> => {
    const res = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: MODEL, prompt, max_tokens: 2, stream: true, stream_options: { include_usage: true } }) });
    const { events } = await readStream(res);
    assert.equal(events.at(-1), '[DONE]');
    return { cached: JSON.parse(events.at(-2)!).usage.prompt_tokens_details.cached_tokens };
  };
  const slow = { prefillSecondsPerToken: 0.001, overheadSeconds: 0.002, decodeSecondsPerToken: 0.001, maxBatch: 8 };

  it('charges prefill per uncached token: a cached prompt is charged only the overhead before its first token', async () => {
    const s = await engine({ time: slow });
    const w = watch(s);
    const prompt = text('timed', 400); // 100 tokens
    const cold = await streamed(s, prompt);
    const warm = await streamed(s, prompt);
    assert.equal(cold.cached, 0);
    assert.equal(warm.cached, 100);
    const [c, h] = w.results;
    assert.equal(c!.prefilledTokens, 100);
    assert.equal(h!.prefilledTokens, 0);
    close(c!.prefillSeconds, 0.002 + 100 * 0.001, 'cold prefill charge');
    close(h!.prefillSeconds, 0.002, 'warm prefill charge');
    assert.equal(await metric(s, 'k8s4ai_engine_prefill_tokens_total'), 100);
    assert.equal(await metric(s, 'k8s4ai_engine_cached_tokens_total'), 100);
    for (const req of [0, 1]) {
      assert.deepEqual(
        w.seen.filter((e) => e.req === req).map((e) => e.what),
        ['arrived', 'prefill', 'token', 'token', 'end'],
        'prefill, then the first token',
      );
    }
  });

  it('prefills one request at a time, in arrival order', async () => {
    const s = await engine({ time: slow });
    const w = watch(s);
    const one = streamed(s, text('one', 400));
    await until(() => w.arrived() === 1, 'the first request at the engine');
    const two = streamed(s, text('two', 400));
    const [a, b] = await Promise.all([one, two]);
    assert.equal(a.cached, 0);
    assert.equal(b.cached, 0);
    assert.deepEqual(w.order('prefill'), [0, 1]);
    assert.deepEqual(w.order('token', 0), [0, 1], 'first tokens in arrival order');
    // The second's prefill began only once the first's had completed and been counted.
    const second = w.seen.find((e) => e.req === 1 && e.what === 'prefill')!;
    assert.equal(second.stats.prefilling, 1);
    assert.equal(second.stats.totals.prefilledTokens, 100);
    assert.ok(w.seen.every((e) => e.stats.prefilling <= 1), 'never two in the prefill lane');
    for (const r of w.results) close(r.prefillSeconds, 0.002 + 100 * 0.001, 'each charged its own full prefill');
    assert.equal(await metric(s, 'k8s4ai_engine_prefill_tokens_total'), 200);
  });

  it('decodes at most max-batch requests at once; the rest wait for a slot', async () => {
    const s = await engine({ time: { ...INSTANT, decodeSecondsPerToken: 0.01, maxBatch: 1 } });
    const w = watch(s);
    const completed: string[] = [];
    const run = (prompt: string, max_tokens: number) =>
      complete(s, { prompt, max_tokens }).then((c) => {
        completed.push(prompt);
        return c;
      });
    const p = run('p', 50);
    await until(() => w.order('token', 0).includes(0), 'p decoding');
    const q = run('q', 5);
    await until(() => s.engine.stats().waitingForBatch === 1, 'q waiting for the slot');
    const both = s.engine.stats();
    assert.equal(both.running, 1);
    assert.equal(both.waitingForBatch, 1);
    const [pc, qc] = await Promise.all([p, q]);
    assert.equal(pc.usage.completion_tokens, 50);
    assert.equal(qc.usage.completion_tokens, 5);
    assert.deepEqual(completed, ['p', 'q'], 'completion order');
    assert.deepEqual(w.order('end'), [0, 1]);
    const pEnd = w.seen.findIndex((e) => e.req === 0 && e.what === 'end');
    const qFirst = w.seen.findIndex((e) => e.req === 1 && e.what === 'token' && e.index === 0);
    assert.ok(pEnd < qFirst, 'q decoded its first token only after p had ended');
    assert.ok(w.seen.every((e) => e.stats.running <= 1), 'the batch never held two');
    assert.ok(w.seen.some((e) => e.req === 0 && e.what === 'token' && e.stats.waitingForBatch === 1), 'p decoded while q waited');
    assert.equal(await metric(s, 'k8s4ai_engine_running_batch'), 0);
    assert.equal(await metric(s, 'k8s4ai_engine_queue_depth'), 0);
  });
});

describe('k8s4ai engine: API surface', () => {
  it('lists models, labels itself simulated, and answers errors in OpenAI shape', async () => {
    const s = await engine({ models: ['sim-a', 'sim-b'] });
    const models = await fetch(`${s.url}/v1/models`);
    assert.equal(models.headers.get(SIMULATED_HEADER), 'true');
    const list = (await models.json()) as { object: string; data: { id: string; owned_by: string; object: string }[] };
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => m.id), ['sim-a', 'sim-b']);
    assert.ok(list.data.every((m) => m.owned_by === OWNED_BY && m.object === 'model'));

    const bad = await post(s, '/v1/chat/completions', '{"model": "sim-a", "messages": [');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.type, 'invalid_request_error');
    assert.equal(bad.json.error.code, 'invalid_json');
    assert.equal(typeof bad.json.error.message, 'string');

    const unknown = await post(s, '/v1/chat/completions', { model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'model_not_found');
    assert.match(unknown.json.error.message, /gpt-9/);
    assert.equal(unknown.headers.get(SIMULATED_HEADER), 'true');

    for (const body of [{ model: 'sim-a' }, { model: 'sim-a', messages: 'hi' }, { model: 'sim-a', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, [], { messages: [] }]) {
      const r = await post(s, '/v1/chat/completions', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(r.json.error.message);
    }
    assert.equal((await post(s, '/v1/completions', { model: 'sim-b', prompt: 'x', cache_salt: 7 })).status, 400);
    assert.equal((await post(s, '/v1/completions', '')).status, 400);
    const ok = await post(s, '/v1/completions', { model: 'sim-b', prompt: 'x' });
    assert.equal(ok.json.usage.completion_tokens, 16, 'max_tokens defaults to 16');
    assert.equal(ok.json.object, 'text_completion');
    const missing = await fetch(`${s.url}/v2/nothing`);
    assert.equal(missing.status, 404);
    assert.ok(((await missing.json()) as { error: { code: string } }).error.code);
  });

  it('drains: health turns 503, new requests are refused, in-flight ones finish', async () => {
    const s = await startEngine({ time: { ...INSTANT, decodeSecondsPerToken: 0.02 } });
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    const inflight = complete(s, { prompt: 'still going', max_tokens: 10 });
    for (let i = 0; i < 100 && s.engine.stats().running === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const drained = s.drain();
    assert.equal(s.draining, true);
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 503);
    const refused = await post(s, '/v1/completions', { model: MODEL, prompt: 'late' });
    assert.equal(refused.status, 503);
    assert.equal(refused.json.error.code, 'draining');
    assert.equal((await inflight).usage.completion_tokens, 10);
    await drained;
    await assert.rejects(fetch(`${s.url}/health`));
  });
});

describe('k8s4ai engine command', () => {
  it('help defaults agree with the engine\'s', () => {
    const cmd = buildProgram().commands.find((c) => c.name() === 'engine')!;
    for (const [key, value] of Object.entries(ENGINE_FLAG_DEFAULTS)) {
      const opt = cmd.options.find((o) => o.attributeName() === key);
      assert.equal(opt?.defaultValue, value, key);
    }
  });

  it('serves, announces itself as simulated, and exits 0 after draining on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'engine', '--port', '0', '--model', 'demo-a', '--model', 'demo-b', '--decode-ms-per-token', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`exited early: ${out}${err}`)));
    });
    assert.match(out, /SIMULATED/);
    const ids = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    assert.deepEqual(ids, ['demo-a', 'demo-b']);
    const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.kill('SIGTERM');
    assert.equal(await code, 0, err);
    assert.match(err, /drain/);
  });
});
