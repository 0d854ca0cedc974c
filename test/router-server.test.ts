// The router's data plane over real HTTP on loopback: authentication, limits, streaming,
// failures before and after the first byte, client aborts, tenant isolation of the prefix
// cache, prefix affinity, metrics, drain, and a router bound to a ContentRouter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { jsonIntegerAfter, spliceSalt, startRouter, type Router, type RouterOptions } from '../src/router/server.ts';
import { hashApiKey, deriveSalt } from '../src/router/tenants.ts';
import { startEngine, type EngineServer } from '../src/engine/server.ts';
import { ApiClient } from '../src/client/client.ts';
import { ContentRouter, Task } from '../src/api/kinds/index.ts';
import { startTestControlPlane } from './helpers/controlplane.ts';
import { fakeBackend as startFakeBackend, rawBackend, type FakeBackend, type FakeHandler } from './helpers/router.ts';
import { waitFor } from './helpers/wait.ts';

const KEY_A = 'sk-tenant-a-0123456789';
const KEY_B = 'sk-tenant-b-9876543210';
const TENANTS = [
  { name: 'a', apiKeyHashes: [hashApiKey(KEY_A)] },
  { name: 'b', apiKeyHashes: [hashApiKey(KEY_B)] },
];
const QUICK_HEALTH = { healthIntervalMs: 100 } as const;

// ---- a fake OpenAI backend whose every answer the test scripts (test/helpers/router.ts) ----

type Fake = FakeBackend;
type Handler = FakeHandler;

const okJson: Handler = (_req, res, body) => {
  const text = JSON.stringify({ id: 'x', object: 'chat.completion', model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 } });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

/**
 * A backend that holds requests until release() (all of them, or those `hold` picks), for
 * tests that need a request in flight.
 */
async function gatedBackend(hold: (body: Record<string, unknown>) => boolean = () => true): Promise<{ slow: Fake; release: () => void }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = await fakeBackend(async (req, res, body) => {
    if (hold(body)) await gate;
    okJson(req, res, body);
  });
  return { slow, release };
}

/** `k8s4ai router` as a process in front of `backend`, once it says where it listens. */
async function routerProcess(backend: string, extra: string[], timeoutMs: number): Promise<{ child: ChildProcessWithoutNullStreams; url: string; out: () => string; err: () => string }> {
  const bin = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'router', '--backend', backend, '--port', '0', '--tenant', `a=${hashApiKey(KEY_A)}`, '--log-level', 'warn', ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await waitFor(`the router to listen (${err})`, () => /listening on (http:\/\/\S+)/.test(out), timeoutMs);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { child, url: /listening on (http:\/\/\S+)/.exec(out)![1]!, out: () => out, err: () => err };
}

const fakeBackend = (handler: Handler = okJson, models?: string[]) => startFakeBackend(handler, models);

/** A port with nothing listening. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

async function router(opts: RouterOptions): Promise<Router> {
  const r = await startRouter({ tenants: TENANTS, health: QUICK_HEALTH, drainTimeoutMs: 2000, ...opts });
  if (opts.backends?.length) await r.backends.checkAll();
  return r;
}

const chat = (content: string | { role: string; content: string }[], extra: Record<string, unknown> = {}) => ({
  model: 'm',
  messages: typeof content === 'string' ? [{ role: 'user', content }] : content,
  ...extra,
});

async function post(r: Router, body: unknown, key: string | null = KEY_A, opts: { signal?: AbortSignal; path?: string } = {}) {
  const res = await request(`${r.url}${opts.path ?? '/v1/chat/completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: opts.signal,
  });
  return res;
}

const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;

// ---- tests ----

test('401 without a key, with a wrong key, and a tenant header is no substitute', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  try {
    const none = await post(r, chat('hello'), null);
    assert.equal(none.statusCode, 401);
    const err = (await none.body.json()) as { error: { code: string } };
    assert.equal(err.error.code, 'invalid_api_key');
    const wrong = await post(r, chat('hello'), 'sk-not-a-key');
    assert.equal(wrong.statusCode, 401);
    await wrong.body.dump();
    const forged = await request(`${r.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-tenant-id': 'a', authorization: 'Basic a' }, body: JSON.stringify(chat('x')) });
    assert.equal(forged.statusCode, 401);
    await forged.body.dump();
    const models = await request(`${r.url}/v1/models`);
    assert.equal(models.statusCode, 401);
    await models.body.dump();
    assert.equal(fake.received.length, 0, 'nothing unauthenticated reaches a backend');
    const ok = await post(r, chat('hello'), KEY_A);
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  } finally {
    await r.close();
    await fake.close();
  }
});

test('413 for an oversized body, declared or streamed, without reading it all', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url], maxBodyBytes: 1024 });
  try {
    const big = JSON.stringify(chat('x'.repeat(4000)));
    const declared = await post(r, big);
    assert.equal(declared.statusCode, 413);
    assert.equal(((await declared.body.json()) as { error: { code: string } }).error.code, 'body_too_large');
    // No content-length: the router counts as it reads.
    async function* chunks() {
      for (let i = 0; i < 4; i++) yield Buffer.from(big.slice(i * 1000, (i + 1) * 1000));
    }
    const streamed = await request(`${r.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_A}` }, body: Readable.from(chunks()) });
    assert.equal(streamed.statusCode, 413);
    assert.equal(streamed.headers.connection, 'close', 'the rest of the body is not read');
    await streamed.body.dump();
    assert.equal(fake.received.length, 0);
    const small = await post(r, chat('small'));
    assert.equal(small.statusCode, 200);
    await small.body.dump();
  } finally {
    await r.close();
    await fake.close();
  }
});

test('503 with a JSON error when no backend is ready', async () => {
  const r = await router({ backends: [await deadUrl()] });
  const empty = await router({});
  try {
    assert.equal(r.backends.ready().length, 0);
    for (const x of [r, empty]) {
      const res = await post(x, chat('hello'));
      assert.equal(res.statusCode, 503);
      assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'no_ready_backend');
    }
    const health = await request(`${r.url}/healthz`);
    assert.equal(health.statusCode, 200);
    assert.deepEqual(await health.body.json(), { status: 'ok', readyBackends: 0, backends: 1 });
  } finally {
    await r.close();
    await empty.close();
  }
});

test('429 with Retry-After when every ready backend is at its bound; per-tenant maxInFlight too', async () => {
  const { slow, release } = await gatedBackend();
  const r = await router({ backends: [slow.url], maxInFlightPerBackend: 1, tenants: [TENANTS[0]!, { ...TENANTS[1]!, maxInFlight: 1 }] });
  try {
    const first = post(r, chat('one'));
    await waitFor('the first request at the backend', () => slow.received.length === 1);
    const second = await post(r, chat('two'));
    assert.equal(second.statusCode, 429);
    assert.equal(second.headers['retry-after'], '1');
    assert.equal(((await second.body.json()) as { error: { code: string } }).error.code, 'backends_at_capacity');
    release();
    const done = await first;
    assert.equal(done.statusCode, 200);
    await done.body.dump();

    // Tenant b may have one request in flight: its second is refused while backends have room.
    let releaseB!: () => void;
    const gateB = new Promise<void>((res) => (releaseB = res));
    const fakeB = await fakeBackend(async (req, res, body) => {
      await gateB;
      okJson(req, res, body);
    });
    r.backends.set([fakeB.url]);
    await r.backends.checkAll();
    r.reconfigure({ maxInFlightPerBackend: 10 });
    const held = post(r, chat('b1'), KEY_B);
    await waitFor('b in flight', () => r.tenants.get('b')!.inFlight === 1 && fakeB.received.length === 1);
    const refused = await post(r, chat('b2'), KEY_B);
    assert.equal(refused.statusCode, 429);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'tenant_max_in_flight');
    releaseB();
    const b1 = await held;
    assert.equal(b1.statusCode, 200);
    await b1.body.dump();
    await fakeB.close();
  } finally {
    release();
    await r.close();
    await slow.close();
  }
});

test('streaming passes through chunk by chunk, before the backend finishes', async () => {
  let finish!: () => void;
  const more = new Promise<void>((r) => (finish = r));
  const fake = await fakeBackend(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(sse({ choices: [{ delta: { content: 'first' } }] }));
    await more;
    res.write(sse({ choices: [{ delta: { content: 'second' } }] }));
    res.end('data: [DONE]\n\n');
  });
  const r = await router({ backends: [fake.url] });
  try {
    const res = await post(r, chat('stream please', { stream: true }));
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const it = res.body[Symbol.asyncIterator]();
    const one = await it.next();
    assert.match(String(one.value), /first/, 'the first chunk arrives while the backend still holds the rest');
    assert.doesNotMatch(String(one.value), /second/);
    finish();
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += String(n.value);
    assert.match(rest, /second/);
    assert.match(rest, /\[DONE\]/);
  } finally {
    finish();
    await r.close();
    await fake.close();
  }
});

test('a backend dying mid-stream ends the client stream with an error event, not a hang', async () => {
  const fake = await fakeBackend(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse({ choices: [{ delta: { content: 'partial' } }] }));
    await new Promise((r) => setTimeout(r, 50));
    req.socket.destroy();
  });
  const r = await router({ backends: [fake.url] });
  try {
    const res = await post(r, chat('die', { stream: true }));
    assert.equal(res.statusCode, 200);
    const text = await Promise.race([res.body.text(), new Promise<string>((_, rej) => setTimeout(() => rej(new Error('the stream hung')), 5000))]);
    assert.match(text, /partial/);
    const events = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)) as { error?: { code: string } });
    assert.equal(events.at(-1)?.error?.code, 'upstream_error');
  } finally {
    await r.close();
    await fake.close();
  }
});

test('an SSE answer with a Content-Length cut mid-stream resets the client connection rather than appending to a sized body', async () => {
  // Bytes past the declared length would be read as the start of the next response.
  const be = await rawBackend((s) => s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 200\r\n\r\ndata: 1\n\n'));
  const r = await router({ backends: [be.url], idleTimeoutMs: 200 });
  try {
    // A raw client, to see the bytes themselves.
    const body = JSON.stringify(chat('sized', { stream: true }));
    const socket = connect(r.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await closed;
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.ok(got.endsWith('\r\n\r\ndata: 1\n\n'), `nothing after the backend's bytes: ${JSON.stringify(got.slice(-60))}`);
    await waitFor('the request to finish', () => r.inFlight() === 0);
  } finally {
    await r.close();
    await be.close();
  }
});

test('a backend answer that cannot be passed on is a 502 on both paths, and the router lives on', async () => {
  // A control character in a header value: refused by the upstream parser (never forwarded,
  // never thrown out of a socket event).
  const be = await rawBackend((s) => s.write('HTTP/1.1 200 OK\r\nx-trace: a\u0001b\r\ncontent-length: 2\r\n\r\n{}'));
  const r = await router({ backends: [be.url], health: { healthIntervalMs: 100, ejectAfter: 100 } });
  try {
    for (const path of ['/v1/chat/completions', '/v1/chat/completions?via=node-http']) {
      const res = await post(r, chat('bad header'), KEY_A, { path });
      assert.equal(res.statusCode, 502, path);
      assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'upstream_error');
    }
    const health = await request(`${r.url}/healthz`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
  } finally {
    await r.close();
    await be.close();
  }
});

test('valid JSON nested past the stack\'s depth is a 400, not a crash', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  try {
    const body = `{"model":"m","messages":[{"role":"user","content":${'['.repeat(20_000)}${']'.repeat(20_000)}}]}`;
    const res = await post(r, body);
    assert.equal(res.statusCode, 400);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'invalid_body');
    const ok = await post(r, chat('after'));
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    assert.equal(fake.received.length, 1);
  } finally {
    await r.close();
    await fake.close();
  }
});

test('a request failing before its first byte is retried once on another backend', async () => {
  const reset = await fakeBackend((req) => void req.socket.destroy());
  const failing = await fakeBackend((_req, res) => void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}'));
  const good = await fakeBackend();
  const r = await router({ backends: [reset.url, good.url], policy: 'round-robin', health: { healthIntervalMs: 60_000, ejectAfter: 100 } });
  try {
    for (let i = 0; i < 4; i++) {
      const res = await post(r, chat(`retry ${i}`));
      assert.equal(res.statusCode, 200, `request ${i}`);
      await res.body.dump();
    }
    assert.equal(good.received.length, 4, 'every request ended at the good backend');
    assert.ok(reset.received.length >= 1, 'the resetting backend was tried');

    // A 5xx answer before any byte was sent is retried the same way.
    r.backends.set([failing.url, good.url]);
    await r.backends.checkAll();
    for (let i = 0; i < 4; i++) {
      const res = await post(r, chat(`five hundred ${i}`));
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    assert.ok(failing.received.length >= 1);

    // With no retries left, the client hears about the failure.
    r.reconfigure({ retries: 0 });
    r.backends.set([reset.url]);
    await r.backends.checkAll();
    const res = await post(r, chat('no retry'));
    assert.equal(res.statusCode, 502);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'upstream_error');
  } finally {
    await r.close();
    await Promise.all([reset.close(), failing.close(), good.close()]);
  }
});

test('passive ejection after consecutive failures, re-admission by health check', async () => {
  const flaky = await fakeBackend((req) => void req.socket.destroy());
  const r = await router({ backends: [flaky.url], retries: 0, health: { healthIntervalMs: 100, ejectAfter: 2, ejectMs: 300 } });
  try {
    for (let i = 0; i < 2; i++) {
      const res = await post(r, chat(`fail ${i}`));
      assert.equal(res.statusCode, 502);
      await res.body.dump();
    }
    assert.equal(r.backends.ready().length, 0, 'ejected after two failures in a row');
    const res = await post(r, chat('while ejected'));
    assert.equal(res.statusCode, 503);
    await res.body.dump();
    await waitFor('re-admission', () => r.backends.ready().length === 1);
  } finally {
    await r.close();
    await flaky.close();
  }
});

test('a client abort cancels the upstream request', async () => {
  const fake = await fakeBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse({ choices: [{ delta: { content: 'tick' } }] }));
    // …and never ends, as a long generation.
  });
  const r = await router({ backends: [fake.url] });
  try {
    const ac = new AbortController();
    const res = await post(r, chat('long', { stream: true }), KEY_A, { signal: ac.signal });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    assert.equal(r.backends.all()[0]!.inFlight, 1);
    ac.abort();
    await Promise.race([fake.received[0]!.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('upstream not cancelled')), 5000))]);
    assert.ok(fake.received[0]!.aborted(), 'the backend saw its request cut');
    await waitFor('in-flight counts back at 0', () => r.inFlight() === 0 && r.backends.all()[0]!.inFlight === 0);
  } finally {
    await r.close();
    await fake.close();
  }
});

test('the forwarded body carries the tenant\'s cache_salt, never the client\'s', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url], saltSecret: 'uid-123', tenants: [TENANTS[0]!, { ...TENANTS[1]!, cacheSalt: 'configured-salt-b' }] });
  try {
    for (const [key, extra] of [[KEY_A, {}], [KEY_A, { cache_salt: 'forged' }], [KEY_B, { cache_salt: 'forged' }], [KEY_B, {}]] as const) {
      const res = await post(r, chat('same prompt', extra), key);
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    const salts = fake.received.map((x) => x.body.cache_salt);
    const saltA = deriveSalt('uid-123', 'a');
    assert.deepEqual(salts, [saltA, saltA, 'configured-salt-b', 'configured-salt-b']);
    for (const x of fake.received) {
      assert.deepEqual(x.body.messages, [{ role: 'user', content: 'same prompt' }], 'the rest of the body is untouched');
      assert.equal(x.headers.authorization, undefined, 'the tenant\'s API key is not forwarded');
    }
    // A derived salt is stable: another router with the same secret derives the same one.
    const again = await router({ backends: [fake.url], saltSecret: 'uid-123' });
    try {
      assert.equal(again.tenants.get('a')!.salt, saltA);
    } finally {
      await again.close();
    }
  } finally {
    await r.close();
    await fake.close();
  }
});

test('with the engine: tenant A\'s prompt never yields cached tokens for tenant B', async () => {
  const engine: EngineServer = await startEngine({ blockTokens: 16, models: ['m'], time: { prefillSecondsPerToken: 0, decodeSecondsPerToken: 0, overheadSeconds: 0 } });
  const r = await router({ backends: [engine.url], blockTokens: 16 });
  const cached = async (key: string, prompt: string) => {
    const res = await post(r, chat(prompt, { max_tokens: 2 }), key);
    assert.equal(res.statusCode, 200);
    const j = (await res.body.json()) as { usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } } };
    return j.usage.prompt_tokens_details?.cached_tokens ?? 0;
  };
  try {
    const prompt = `A long shared system prompt. ${'lorem ipsum dolor sit amet '.repeat(40)}`;
    assert.equal(await cached(KEY_A, prompt), 0, 'cold');
    assert.ok((await cached(KEY_A, prompt)) > 0, 'A hits its own cache');
    assert.equal(await cached(KEY_B, prompt), 0, 'B does not see A\'s cache');
    assert.ok((await cached(KEY_B, prompt)) > 0, 'B hits its own cache');
    assert.ok(r.metrics.engine.cachedTokens > 0, 'engine-reported cached tokens are counted');
  } finally {
    await r.close();
    await engine.close();
  }
});

test('timeouts: no first byte in time is a 504; a silent stream ends with an error event', async () => {
  const mute = await fakeBackend(() => undefined);
  const stalls = await fakeBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse({ choices: [{ delta: { content: 'one' } }] }));
  });
  const r = await router({ backends: [mute.url], retries: 0, firstTokenTimeoutMs: 200, idleTimeoutMs: 200 });
  try {
    const res = await post(r, chat('hello?'));
    assert.equal(res.statusCode, 504);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'upstream_timeout');
    await mute.received[0]!.closed;
    assert.ok(mute.received[0]!.aborted(), 'the timed-out request is cancelled at the backend');

    r.backends.set([stalls.url]);
    await r.backends.checkAll();
    const s = await post(r, chat('stream', { stream: true }));
    assert.equal(s.statusCode, 200);
    const text = await s.body.text();
    assert.match(text, /one/);
    assert.match(text, /"code":"upstream_timeout"/);
  } finally {
    await r.close();
    await mute.close();
    await stalls.close();
  }
});

test('index.source KVEvents: the index follows the engine\'s stored/removed events', async () => {
  const engine = await startEngine({ blockTokens: 16, models: ['m'], time: { prefillSecondsPerToken: 0, decodeSecondsPerToken: 0, overheadSeconds: 0 } });
  const r = await router({ backends: [engine.url], blockTokens: 16, indexSource: 'KVEvents' });
  try {
    await waitFor('the events stream connected', () => r.backends.all()[0]!.kvEventsLive);
    const res = await post(r, chat(`events ${'x'.repeat(400)}`, { max_tokens: 1 }));
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const held = engine.engine.cache.snapshot().length;
    assert.ok(held > 0);
    await waitFor('the index to hold what the engine stored', () => r.index.sizeBlocks(engine.url) === held);
    // The engine drops its cache: the index hears of it, as it would of evictions.
    engine.engine.cache.clear();
    await waitFor('the index to forget the removed blocks', () => r.index.sizeBlocks(engine.url) === 0);
  } finally {
    await r.close();
    await engine.close();
  }
});

test('prefix affinity: a conversation\'s next turn goes to the backend that served the first', async () => {
  const fakes = await Promise.all([fakeBackend(), fakeBackend(), fakeBackend()]);
  const r = await router({ backends: fakes.map((f) => f.url) });
  const servedBy = (turn: string) => fakes.findIndex((f) => f.received.some((x) => x.body.metadata && (x.body.metadata as { turn?: string }).turn === turn));
  try {
    // Conversations interleaved, as live traffic is: their first turns spread over the
    // backends, then each follow-up (the whole conversation so far plus a new question)
    // finds its prefix where the first turn went.
    const convs = Array.from({ length: 6 }, (_, c) => [
      { role: 'system', content: `You are assistant number ${c}. ${'Be helpful and precise. '.repeat(30)}` },
      { role: 'user', content: `conversation ${c}: first question ${'and some detail '.repeat(10)}` },
    ]);
    for (let c = 0; c < convs.length; c++) {
      const res = await post(r, chat(convs[c]!, { metadata: { turn: `c${c}t1` } }));
      await res.body.dump();
    }
    assert.ok(new Set(convs.map((_, c) => servedBy(`c${c}t1`))).size > 1, 'new conversations spread over the backends');
    for (let c = 0; c < convs.length; c++) {
      const turn2 = [...convs[c]!, { role: 'assistant', content: 'an answer' }, { role: 'user', content: 'a follow-up question' }];
      const res = await post(r, chat(turn2, { metadata: { turn: `c${c}t2` } }));
      await res.body.dump();
      assert.equal(servedBy(`c${c}t2`), servedBy(`c${c}t1`), `conversation ${c}: turn 2 on the backend of turn 1`);
    }
    assert.ok(r.metrics.blockHitRate() > 0);
  } finally {
    await r.close();
    await Promise.all(fakes.map((f) => f.close()));
  }
});

test('/v1/models is the union of the ready backends\' models; /metrics and /healthz answer', async () => {
  const one = await fakeBackend(okJson, ['m', 'x']);
  const two = await fakeBackend(okJson, ['m', 'y']);
  const r = await router({ backends: [one.url, two.url] });
  try {
    const res = await request(`${r.url}/v1/models`, { headers: { authorization: `Bearer ${KEY_B}` } });
    assert.equal(res.statusCode, 200);
    const j = (await res.body.json()) as { data: { id: string }[] };
    assert.deepEqual(j.data.map((m) => m.id).sort(), ['m', 'x', 'y']);
    const done = await post(r, chat('count me'));
    await done.body.dump();
    const unauth = await post(r, chat('count me'), 'nope');
    await unauth.body.dump();
    const metrics = await (await request(`${r.url}/metrics`)).body.text();
    assert.match(metrics, /k8s4ai_router_requests_total\{code="200",tenant="a"\} 1/);
    assert.match(metrics, /k8s4ai_router_requests_total\{code="401",tenant="-"\} 1/);
    assert.match(metrics, /k8s4ai_router_backend_in_flight\{backend="http:\/\/127\.0\.0\.1:\d+"\} 0/);
    assert.match(metrics, /k8s4ai_router_block_hit_rate/);
    assert.match(metrics, /k8s4ai_router_time_to_first_byte_seconds_count 1/);
  } finally {
    await r.close();
    await one.close();
    await two.close();
  }
});

test('close() drains: no new requests, those in flight finish', async () => {
  const { slow, release } = await gatedBackend();
  const r = await router({ backends: [slow.url] });
  const held = post(r, chat('in flight'));
  await waitFor('request at the backend', () => slow.received.length === 1);
  let closed = false;
  const closing = r.close().then(() => (closed = true));
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(closed, false, 'close waits for the request in flight');
  await assert.rejects(post(r, chat('too late')), 'the listener is closed');
  release();
  const res = await held;
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  await closing;
  await slow.close();
});

test('`k8s4ai router` exits 0 after draining on SIGTERM', async () => {
  const { slow, release } = await gatedBackend();
  let spawned: ChildProcessWithoutNullStreams | undefined;
  try {
    const proc = await routerProcess(slow.url, [], 20_000);
    const child = (spawned = proc.child);
    const url = proc.url;
    // The first health check makes the backend ready.
    for (let i = 0; i < 100; i++) {
      const res = await request(`${url}/healthz`);
      const h = (await res.body.json()) as { readyBackends: number };
      if (h.readyBackends === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const held = request(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify(chat('hold')) });
    await waitFor('request at the backend', () => slow.received.length === 1);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    release();
    const answer = await held;
    assert.equal(answer.statusCode, 200);
    await answer.body.dump();
    assert.equal(await exited, 0);
  } finally {
    release();
    if (spawned && spawned.exitCode === null) spawned.kill('SIGKILL');
    await slow.close();
  }
});

test('`k8s4ai router --workers 2` serves requests and exits 0 after its workers drain on SIGTERM', async () => {
  const { slow, release } = await gatedBackend((body) => (body as { messages?: { content?: string }[] }).messages?.[0]?.content === 'hold');
  const fresh = new Agent({ pipelining: 0 });
  let spawned: ChildProcessWithoutNullStreams | undefined;
  try {
    const proc = await routerProcess(slow.url, ['--workers', '2'], 30_000);
    const child = (spawned = proc.child);
    const url = proc.url;
    const err = proc.err;
    assert.match(proc.out(), /2 workers/);
    // Every worker health-checks the backend on its own; a new connection each time (no
    // keep-alive) lets the primary hand them to both workers.
    const ask = async (content: string) =>
      request(`${url}/v1/chat/completions`, { method: 'POST', dispatcher: fresh, reset: true, headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify(chat(content)) });
    // A worker answers 503 until its first health check of the backend passed.
    const askOk = async (content: string) => {
      for (const deadline = Date.now() + 20_000; ;) {
        const res = await ask(content);
        if (res.statusCode !== 503 || Date.now() > deadline) return res;
        await res.body.dump();
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    for (let i = 0; i < 6; i++) {
      const res = await askOk(`q${i}`);
      assert.equal(res.statusCode, 200, `request ${i}`);
      await res.body.dump();
    }
    const before = slow.received.length;
    const held = ask('hold');
    await waitFor('request at the backend', () => slow.received.length === before + 1);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    release();
    const answer = await held;
    assert.equal(answer.statusCode, 200);
    await answer.body.dump();
    assert.equal(await exited, 0, err());
  } finally {
    release();
    if (spawned && spawned.exitCode === null) spawned.kill('SIGKILL');
    await fresh.close();
    await slow.close();
  }
});

test('bound to a ContentRouter: configuration from the spec, backends from Running Tasks, status written', async () => {
  const t = await startTestControlPlane();
  const client = ApiClient.fromKubeconfig(t.kubeconfig);
  const fakes = await Promise.all([fakeBackend(), fakeBackend()]);
  let r: Router | undefined;
  try {
    await client.create(ContentRouter, 'default', {
      apiVersion: 'k8s4ai.io/v1alpha1', kind: 'ContentRouter', metadata: { name: 'chat' },
      spec: { serviceName: 'llm', tenants: [TENANTS[0]], maxBodySize: '2Ki', routing: { policy: 'k8s4ai', blockSize: 16 } },
    });
    const task = async (name: string, endpoint: string, index = 0) => {
      await client.create(Task, 'default', { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name, labels: { 'k8s4ai.io/inferenceservice': 'llm' } }, spec: { command: ['true'], index } });
      await client.patch(Task, 'default', name, { status: { phase: 'Running', endpoint } }, 'application/merge-patch+json', 'status');
    };
    await task('llm-0-0', fakes[0]!.url);
    await task('llm-0-1', 'http://127.0.0.1:1', 1); // rank 1 of a gang serves nothing
    r = await startRouter({ contentRouter: { client, namespace: 'default', name: 'chat', statusIntervalMs: 200 }, health: QUICK_HEALTH });
    assert.equal(r.config.maxBodyBytes, 2048);
    assert.equal(r.config.blockTokens, 16);
    await waitFor('the first backend ready', () => r!.backends.ready().length === 1);
    assert.deepEqual(r.backends.all().map((b) => b.url), [fakes[0]!.url]);
    const res = await post(r, chat('hello'), KEY_A);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const b = await post(r, chat('hello'), KEY_B);
    assert.equal(b.statusCode, 401, 'only the spec\'s tenants');
    await b.body.dump();

    // A second replica comes up: the router picks it up without a restart.
    await task('llm-1-0', fakes[1]!.url);
    await waitFor('the second backend ready', () => r!.backends.ready().length === 2);

    // The spec changes: the router follows.
    await client.patch(ContentRouter, 'default', 'chat', { spec: { tenants: TENANTS } });
    await waitFor('tenant b configured', () => r!.tenants.get('b') !== undefined);
    const b2 = await post(r, chat('hello'), KEY_B);
    assert.equal(b2.statusCode, 200);
    await b2.body.dump();

    let lastStatus: Record<string, unknown> | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      lastStatus = (await client.get(ContentRouter, 'default', 'chat')).status as Record<string, unknown> | undefined;
      if (lastStatus?.readyBackends === 2) break;
      await new Promise((res2) => setTimeout(res2, 100));
    }
    assert.equal(lastStatus?.url, r.url);
    assert.equal(lastStatus?.readyBackends, 2);
    assert.equal((lastStatus?.backends as unknown[]).length, 2);
    assert.equal(typeof lastStatus?.blockHitRate, 'number');

    // The Task stops running: its backend goes.
    await client.patch(Task, 'default', 'llm-0-0', { status: { phase: 'Failed' } }, 'application/merge-patch+json', 'status');
    await waitFor('the failed replica removed', () => r!.backends.all().length === 1);
  } finally {
    await r?.close();
    await client.close();
    await Promise.all(fakes.map((f) => f.close()));
    await t.stop();
  }
});

test('the control plane runs `k8s4ai router` per ContentRouter: it serves and reports its URL', async () => {
  const t = await startTestControlPlane({ routers: true });
  const client = ApiClient.fromKubeconfig(t.kubeconfig);
  const fake = await fakeBackend();
  try {
    await client.create(ContentRouter, 'default', {
      apiVersion: 'k8s4ai.io/v1alpha1', kind: 'ContentRouter', metadata: { name: 'edge' },
      spec: { backends: [{ url: fake.url }], tenants: [TENANTS[0]] },
    });
    let status: { url?: string; readyBackends?: number } | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      status = (await client.get(ContentRouter, 'default', 'edge')).status as typeof status;
      if (status?.url && status.readyBackends === 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(status?.url, 'the router wrote its URL');
    assert.equal(status?.readyBackends, 1);
    const res = await request(`${status!.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify(chat('via the control plane')) });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(fake.received.length, 1);
  } finally {
    await client.close();
    await t.stop();
    await fake.close();
  }
});

test('router flags: tenants from a file and from --tenant, durations, quantities', async () => {
  const { routerOptionsFromFlags } = await import('../src/cli/router.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-router-'));
  try {
    const file = join(dir, 'tenants.yaml');
    writeFileSync(file, `- name: a\n  apiKeyHashes: ["${hashApiKey(KEY_A)}"]\n  cacheSalt: salt-of-a-123\n  maxInFlight: 4\n`);
    const o = routerOptionsFromFlags({ backend: ['http://127.0.0.1:8000'], tenantsFile: file, tenant: [`b=${hashApiKey(KEY_B)}`], maxBody: '1Mi', firstTokenTimeout: '90s', policy: 'sglang' });
    assert.deepEqual(o.tenants?.map((x) => x.name), ['a', 'b']);
    assert.equal(o.tenants?.[0]?.maxInFlight, 4);
    assert.equal(o.maxBodyBytes, 1024 * 1024);
    assert.equal(o.firstTokenTimeoutMs, 90_000);
    assert.throws(() => routerOptionsFromFlags({ backend: ['http://x'], tenant: ['b=md5:abc'] }), /sha256/);
    assert.throws(() => routerOptionsFromFlags({ backend: ['http://x'], policy: 'nope' }), /--policy/);
    assert.throws(() => routerOptionsFromFlags({ contentRouter: 'ns/name', backend: ['http://x'] }), /ContentRouter's spec/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage numbers are read from a response tail without decoding it', () => {
  const key = Buffer.from('"cached_tokens"');
  assert.equal(jsonIntegerAfter(Buffer.from('{"usage":{"prompt_tokens_details":{"cached_tokens":128}}}'), key), 128);
  assert.equal(jsonIntegerAfter(Buffer.from('{"cached_tokens" :\n\t 7,'), key), 7);
  assert.equal(jsonIntegerAfter(Buffer.from('{"cached_tokens":0}'), key), 0);
  assert.equal(jsonIntegerAfter(Buffer.from('{"cached_tokens":null}'), key), undefined);
  assert.equal(jsonIntegerAfter(Buffer.from('{"cached_tokens"}'), key), undefined);
  assert.equal(jsonIntegerAfter(Buffer.from('{"prompt_tokens":5}'), key), undefined);
});

test('the tenant salt is spliced in as the first member, the rest of the bytes untouched', () => {
  const raw = Buffer.from('\ufeff  {"model":"m", "messages":[{"role":"user","content":"hé"}]}');
  const out = JSON.parse(spliceSalt(raw, 'salt-1', true).toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(out), ['cache_salt', 'model', 'messages']);
  assert.equal(out.cache_salt, 'salt-1');
  assert.deepEqual(out.messages, [{ role: 'user', content: 'hé' }]);
  assert.deepEqual(JSON.parse(spliceSalt(Buffer.from('{}'), 's"q', false).toString()), { cache_salt: 's"q' });
});
