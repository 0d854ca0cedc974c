// The router's inbound listener (src/router/inbound.ts) over raw sockets: the fast path's
// keep-alive, pipelining, reads split anywhere, bodies in several reads, refusals, Connection:
// close, chunked streaming, client aborts and drain; and the hand-off to node:http for every
// other shape of request (other paths, query strings, chunked and Expect bodies, HTTP/1.0,
// malformed lines), with the fast-path-shaped requests after it on the same connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { startRouter, type Router, type RouterOptions } from '../src/router/server.ts';
import { hashApiKey } from '../src/router/tenants.ts';
import { fakeBackend as startFakeBackend, rawBackend, type FakeHandler } from './helpers/router.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const KEY_A = 'sk-tenant-a-0123456789';
const SALT_A = 'salt-of-a';
const TENANTS = [{ name: 'a', apiKeyHashes: [hashApiKey(KEY_A)], cacheSalt: SALT_A }];

// ---- a fake backend that records the raw bodies it gets ----

type Handler = FakeHandler;

/** The prompt of a chat or completion body. */
function promptOf(body: Record<string, unknown>): string {
  if (typeof body.prompt === 'string') return body.prompt;
  const messages = body.messages as { content: string }[] | undefined;
  return messages?.at(-1)?.content ?? '';
}

/** Answers with a JSON body (content-length) that names the path and echoes the prompt. */
const echo: Handler = (req, res, body) => {
  const text = JSON.stringify({ object: 'chat.completion', path: req.url, prompt: promptOf(body) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

const fakeBackend = (handler: Handler = echo) => startFakeBackend(handler);

async function router(opts: RouterOptions): Promise<Router> {
  const r = await startRouter({ tenants: TENANTS, health: { healthIntervalMs: 100 }, drainTimeoutMs: 5000, ...opts });
  if (opts.backends?.length) await r.backends.checkAll();
  return r;
}

// ---- requests as bytes ----

const chatBody = (prompt: string) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: prompt }] });
const completionBody = (prompt: string) => JSON.stringify({ model: 'm', prompt });

/** A fast-path-shaped POST: HTTP/1.1, Content-Length, the given extra header lines. */
function postBytes(body: string, opts: { path?: string; key?: string | null; extra?: string[]; version?: string } = {}): Buffer {
  const key = opts.key === undefined ? KEY_A : opts.key;
  const lines = [
    `POST ${opts.path ?? '/v1/chat/completions'} HTTP/${opts.version ?? '1.1'}`,
    'Host: router',
    'Content-Type: application/json',
    ...(key ? [`Authorization: Bearer ${key}`] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(opts.extra ?? []),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

const chatReq = (prompt: string, opts: Parameters<typeof postBytes>[1] = {}) => postBytes(chatBody(prompt), opts);
const getBytes = (path: string) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: router\r\n\r\n`);

// ---- a raw client and a small response parser ----

interface Resp {
  version: string;
  status: number;
  /** Names lowercased, in order, repeats kept. */
  headers: [string, string][];
  body: Buffer;
  /** The response's bytes as they came, head and framing included. */
  raw: Buffer;
}

function header(r: Resp, name: string): string | undefined {
  return r.headers.find(([k]) => k === name)?.[1];
}

function headerCount(r: Resp, name: string): number {
  return r.headers.filter(([k]) => k === name).length;
}

function json(r: Resp): Record<string, unknown> {
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

/**
 * One response from the front of `buf`, or undefined when not all of it is here yet (`eof`:
 * no more bytes will come, which ends a body without framing). Throws on bytes that are no
 * HTTP response.
 */
function parseResponse(buf: Buffer, eof: boolean): { resp: Resp; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (!'HTTP/1.'.startsWith(buf.toString('latin1', 0, Math.min(buf.length, 7)))) throw new Error(`not an HTTP response: ${JSON.stringify(buf.toString('latin1', 0, 80))}`);
    return undefined;
  }
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/(1\.[01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers: [string, string][] = [];
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(l)}`);
    headers.push([l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()]);
  }
  const status = Number(m[2]);
  let pos = end + 4;
  const make = (body: Buffer, used: number) => ({ resp: { version: m[1]!, status, headers, body, raw: buf.subarray(0, used) }, used });
  if (status < 200 || status === 204 || status === 304) return make(Buffer.alloc(0), pos);
  const te = headers.find(([k]) => k === 'transfer-encoding')?.[1];
  if (te !== undefined) {
    assert.equal(te.toLowerCase(), 'chunked', 'the only transfer coding expected');
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', pos);
      if (eol < 0) return undefined;
      const sizeText = buf.toString('latin1', pos, eol).split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size ${JSON.stringify(sizeText)}`);
      const size = parseInt(sizeText, 16);
      pos = eol + 2;
      if (size === 0) {
        // Trailers (none expected), then the empty line.
        for (;;) {
          const t = buf.indexOf('\r\n', pos);
          if (t < 0) return undefined;
          const empty = t === pos;
          pos = t + 2;
          if (empty) return make(Buffer.concat(parts), pos);
        }
      }
      if (buf.length < pos + size + 2) return undefined;
      parts.push(buf.subarray(pos, pos + size));
      if (buf.toString('latin1', pos + size, pos + size + 2) !== '\r\n') throw new Error('a chunk not followed by CRLF');
      pos += size + 2;
    }
  }
  const cl = headers.find(([k]) => k === 'content-length')?.[1];
  if (cl !== undefined) {
    const n = Number(cl);
    if (buf.length < pos + n) return undefined;
    return make(buf.subarray(pos, pos + n), pos + n);
  }
  // No framing: the body runs to the connection's end.
  if (!eof) return undefined;
  return make(buf.subarray(pos), buf.length);
}

/** A client connection driven byte by byte. */
class RawClient {
  private buf = Buffer.alloc(0);
  /** The router sent FIN (or the connection is gone). */
  ended = false;
  closed = false;
  error: Error | undefined;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.poke();
    });
    socket.on('end', () => {
      this.ended = true;
      this.poke();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.poke();
    });
    socket.on('close', () => {
      this.closed = true;
      this.ended = true;
      this.poke();
    });
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', noDelay: true }, () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Waits for anything to happen on the socket (bytes, end, close), at most `ms`. */
  private changed(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }

  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes `bytes` in pieces cut at `cuts`, pausing between them so they arrive as separate reads. */
  async writeSplit(bytes: Buffer, cuts: readonly number[], pauseMs = 5): Promise<void> {
    let from = 0;
    for (const c of [...cuts, bytes.length]) {
      if (c <= from) continue;
      await this.write(bytes.subarray(from, c));
      from = c;
      if (from < bytes.length) await sleep(pauseMs);
    }
  }

  /** The next response, whole; fails after `ms` without one (a hang, not a timing assertion). */
  async read(ms = 5000): Promise<Resp> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = parseResponse(this.buf, this.ended);
      if (p) {
        this.buf = this.buf.subarray(p.used);
        return p.resp;
      }
      if (this.ended) throw new Error(`the connection ended before a whole response (${this.error?.message ?? 'FIN'}); have ${JSON.stringify(this.buf.toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.changed(left))) throw new Error(`no whole response in ${ms} ms; have ${JSON.stringify(this.buf.toString('latin1'))}`);
    }
  }

  /** Bytes received and not parsed into a response. */
  leftover(): string {
    return this.buf.toString('latin1');
  }

  /** Waits until the router has ended the connection (FIN or reset). */
  async waitEnded(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.changed(left))) throw new Error(`the router did not close the connection in ${ms} ms`);
    }
  }

  /** Whether the connection is still open after `ms` of nothing (the router did not close it). */
  async stillOpenAfter(ms: number): Promise<boolean> {
    await sleep(ms);
    return !this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A fast-path 200 from the echo backend for `prompt`, kept alive. */
function assertEcho(r: Resp, prompt: string, path = '/v1/chat/completions'): void {
  assert.equal(r.status, 200, `status for ${prompt}: ${r.body.toString()}`);
  const j = json(r);
  assert.equal(j.prompt, prompt);
  assert.equal(j.path, path);
  assert.notEqual(header(r, 'connection')?.toLowerCase(), 'close');
}

/** Answered by node:http (which says `Connection: keep-alive`; the fast path never does). */
function assertNode(r: Resp): void {
  assert.equal(header(r, 'connection')?.toLowerCase(), 'keep-alive', `node:http's answer: ${JSON.stringify(r.headers)}`);
}

/** Answered by the fast path (no Connection header unless it closes). */
function assertFast(r: Resp): void {
  assert.equal(header(r, 'connection'), undefined, `the fast path's answer: ${JSON.stringify(r.headers)}`);
}

// ---- tests ----

test('fast path keep-alive: three requests on one connection, three answers in order', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    for (const [i, path] of ['/v1/chat/completions', '/v1/completions', '/v1/chat/completions'].entries()) {
      const prompt = `keep-alive ${i}`;
      await c.write(path === '/v1/completions' ? postBytes(completionBody(prompt), { path }) : chatReq(prompt));
      const res = await c.read();
      assertEcho(res, prompt, path);
      assertFast(res);
      assert.equal(res.version, '1.1');
      assert.equal(headerCount(res, 'date'), 1, 'one date header');
      assert.match(header(res, 'date')!, /GMT$/);
      assert.equal(header(res, 'content-type'), 'application/json');
    }
    assert.equal(fake.received.length, 3);
    assert.equal(c.ended, false);
    assert.equal(c.leftover(), '');
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

test('pipelining: three requests in one write are answered in order', async () => {
  // The first answer is the slowest, so an out-of-order answer would show.
  const fake = await fakeBackend(async (req, res, body) => {
    if (promptOf(body) === 'pipe 0') await sleep(30);
    echo(req, res, body);
  });
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    await c.write(Buffer.concat([chatReq('pipe 0'), postBytes(completionBody('pipe 1'), { path: '/v1/completions' }), chatReq('pipe 2')]));
    assertEcho(await c.read(), 'pipe 0');
    assertEcho(await c.read(), 'pipe 1', '/v1/completions');
    const third = await c.read();
    assertEcho(third, 'pipe 2');
    assertFast(third);
    // One at a time: a pipelined request waits for the response before it.
    assert.deepEqual(fake.received.map((x) => promptOf(x.body)), ['pipe 0', 'pipe 1', 'pipe 2']);
    assert.equal(await c.stillOpenAfter(20), true);
    assert.equal(c.leftover(), '');
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

test('property: requests split at any byte, fast path and node:http mixed, each answered once, in order', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  try {
    const kind = fc.constantFrom('chat', 'completion', 'healthz');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(kind, fc.string({ maxLength: 30 })), { minLength: 1, maxLength: 4 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 6 }),
        async (reqs, cutSeeds) => {
          const parts = reqs.map(([k, text], i) => {
            const prompt = `#${i} ${text}`;
            if (k === 'healthz') return { k, prompt, bytes: getBytes('/healthz') };
            if (k === 'completion') return { k, prompt, bytes: postBytes(completionBody(prompt), { path: '/v1/completions' }) };
            return { k, prompt, bytes: chatReq(prompt) };
          });
          const all = Buffer.concat(parts.map((p) => p.bytes));
          const cuts = [...new Set(cutSeeds.map((s) => 1 + (s % (all.length - 1))))].sort((a, b) => a - b);
          const c = await RawClient.open(r.port);
          try {
            await c.writeSplit(all, cuts);
            for (const p of parts) {
              const res = await c.read();
              if (p.k === 'healthz') {
                assert.equal(res.status, 200);
                assert.equal(json(res).status, 'ok');
                assertNode(res);
              } else {
                assertEcho(res, p.prompt, p.k === 'completion' ? '/v1/completions' : '/v1/chat/completions');
              }
            }
            // Exactly one answer each: nothing more comes, the connection stays open.
            assert.equal(await c.stillOpenAfter(10), true);
            assert.equal(c.leftover(), '');
          } finally {
            c.destroy();
          }
        },
      ),
      { numRuns: 20 },
    );
    await waitFor('no request in flight', () => r.inFlight() === 0);
  } finally {
    await r.close();
    await fake.close();
  }
});

test('a body arriving in several reads after the head is forwarded whole, salted', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    // Spacing of its own, so a re-serialized body would show.
    const body = `{ "model" : "m",  "messages": [ {"role": "user", "content": "${'split body '.repeat(40)}"} ] }`;
    const bytes = postBytes(body);
    const bodyStart = bytes.indexOf('\r\n\r\n') + 4;
    // The head in one read, then the body in four.
    const q = Math.floor(body.length / 4);
    await c.writeSplit(bytes, [bodyStart, bodyStart + 1, bodyStart + q, bodyStart + 3 * q]);
    const res = await c.read();
    assertEcho(res, 'split body '.repeat(40));
    assertFast(res);
    assert.equal(fake.received.length, 1);
    assert.equal(fake.received[0]!.raw.toString(), `{"cache_salt":${JSON.stringify(SALT_A)},${body.slice(1)}`);
    // And the connection goes on.
    await c.write(chatReq('after'));
    assertEcho(await c.read(), 'after');
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

test('node:http answers what the fast path does not take, and goes on serving the connection', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  const opened: RawClient[] = [];
  const open = async () => {
    const c = await RawClient.open(r.port);
    opened.push(c);
    return c;
  };
  /** A fast-path-shaped request after the hand-off: node:http serves it. */
  const thenFastShaped = async (c: RawClient, prompt: string) => {
    await c.write(chatReq(prompt));
    const res = await c.read();
    assertEcho(res, prompt);
    assertNode(res);
  };
  try {
    await t('GET /healthz', async () => {
      const c = await open();
      await c.write(getBytes('/healthz'));
      const res = await c.read();
      assert.equal(res.status, 200);
      assert.deepEqual(json(res), { status: 'ok', readyBackends: 1, backends: 1 });
      assertNode(res);
      await thenFastShaped(c, 'after healthz');
    });

    await t('GET /metrics', async () => {
      const c = await open();
      await c.write(getBytes('/metrics'));
      const res = await c.read();
      assert.equal(res.status, 200);
      assert.match(header(res, 'content-type')!, /text\/plain/);
      assert.match(res.body.toString(), /# (HELP|TYPE) /);
      assertNode(res);
      await thenFastShaped(c, 'after metrics');
    });

    await t('chunked request body', async () => {
      const c = await open();
      const body = chatBody('chunked body');
      const mid = Math.floor(body.length / 2);
      const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
      await c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nAuthorization: Bearer ${KEY_A}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, mid))}${chunk(body.slice(mid))}0\r\n\r\n`);
      const res = await c.read();
      assertEcho(res, 'chunked body');
      assertNode(res);
      assert.equal(fake.received.at(-1)!.raw.toString(), `{"cache_salt":${JSON.stringify(SALT_A)},${body.slice(1)}`);
      await thenFastShaped(c, 'after chunked');
    });

    await t('Expect: 100-continue', async () => {
      const c = await open();
      const bytes = chatReq('expect continue', { extra: ['Expect: 100-continue'] });
      const bodyStart = bytes.indexOf('\r\n\r\n') + 4;
      await c.write(bytes.subarray(0, bodyStart));
      const cont = await c.read();
      assert.equal(cont.status, 100);
      assert.match(cont.raw.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n/);
      await c.write(bytes.subarray(bodyStart));
      const res = await c.read();
      assertEcho(res, 'expect continue');
      assertNode(res);
      await thenFastShaped(c, 'after expect');
    });

    await t('HTTP/1.0', async () => {
      // Without keep-alive: answered, then closed.
      const once = await open();
      await once.write(chatReq('http 1.0', { version: '1.0' }));
      const res = await once.read();
      assert.equal(res.status, 200);
      assert.equal(json(res).prompt, 'http 1.0');
      await once.waitEnded();
      // With keep-alive: the connection goes on.
      const c = await open();
      await c.write(chatReq('http 1.0 keep-alive', { version: '1.0', extra: ['Connection: keep-alive'] }));
      const kept = await c.read();
      assert.equal(kept.status, 200);
      assert.equal(json(kept).prompt, 'http 1.0 keep-alive');
      assertNode(kept);
      await thenFastShaped(c, 'after http 1.0');
    });

    await t('a query string', async () => {
      const c = await open();
      await c.write(chatReq('with query', { path: '/v1/chat/completions?x=1' }));
      const res = await c.read();
      assertEcho(res, 'with query');
      assertNode(res);
      assert.equal(fake.received.at(-1)!.path, '/v1/chat/completions', 'the query is not forwarded');
      await thenFastShaped(c, 'after query');
    });
  } finally {
    for (const c of opened) c.destroy();
    await r.close();
    await fake.close();
  }

  /** A labelled step, so a failure says which case. */
  async function t(name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      (err as Error).message = `${name}: ${(err as Error).message}`;
      throw err;
    }
  }
});

test('refusals on the fast path: 401 keeps the connection; a declared body over the limit is a 413 and a close', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url], maxBodyBytes: 1000 });
  const c = await RawClient.open(r.port);
  const big = await RawClient.open(r.port);
  try {
    await c.write(chatReq('no key', { key: null }));
    const denied = await c.read();
    assert.equal(denied.status, 401);
    assert.equal(header(denied, 'www-authenticate'), 'Bearer');
    assert.equal(header(denied, 'content-type'), 'application/json');
    assert.equal((json(denied).error as { code: string }).code, 'invalid_api_key');
    assertFast(denied);
    assert.equal(headerCount(denied, 'date'), 1);
    // The small body was read and dropped: the connection goes on.
    await c.write(chatReq('with key'));
    assertEcho(await c.read(), 'with key');
    assert.equal(fake.received.length, 1, 'nothing unauthenticated reaches the backend');

    // Content-Length 5000 declared, the body not sent.
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Length: 5000\r\n\r\n`;
    await big.write(head);
    const tooBig = await big.read();
    assert.equal(tooBig.status, 413);
    assert.equal((json(tooBig).error as { code: string }).code, 'body_too_large');
    assert.equal(header(tooBig, 'connection'), 'close');
    await big.waitEnded();
    assert.equal(big.leftover(), '');
    assert.equal(fake.received.length, 1);
  } finally {
    c.destroy();
    big.destroy();
    await r.close();
    await fake.close();
  }
});

test('Connection: close: the answer says so and the router closes the connection after it', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    await c.write(chatReq('warm-up'));
    assertEcho(await c.read(), 'warm-up');
    await c.write(chatReq('last one', { extra: ['Connection: close'] }));
    const res = await c.read();
    assert.equal(res.status, 200);
    assert.equal(json(res).prompt, 'last one');
    assert.equal(header(res, 'connection'), 'close');
    assert.equal(headerCount(res, 'connection'), 1);
    await c.waitEnded();
    assert.equal(c.leftover(), '');
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

test('streaming: an SSE answer without content-length goes out chunked, in order, properly ended', async () => {
  const events = ['one', 'two', 'three'].map((w) => `data: ${JSON.stringify({ choices: [{ delta: { content: w } }] })}\n\n`);
  const fake = await fakeBackend(async (req, res, body) => {
    if (promptOf(body) !== 'stream please') return echo(req, res, body);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const e of events) {
      res.write(e);
      await sleep(10);
    }
    res.end('data: [DONE]\n\n');
  });
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    await c.write(chatReq('stream please', { extra: ['Accept: text/event-stream'] }));
    const res = await c.read();
    assert.equal(res.status, 200);
    assert.equal(header(res, 'transfer-encoding'), 'chunked');
    assert.equal(header(res, 'content-length'), undefined);
    assert.match(header(res, 'content-type')!, /^text\/event-stream/);
    assert.equal(headerCount(res, 'transfer-encoding'), 1);
    assert.equal(res.body.toString(), `${events.join('')}data: [DONE]\n\n`);
    assert.ok(res.raw.toString('latin1').endsWith('\r\n0\r\n\r\n'), 'the last chunk ends the body');
    assertFast(res);
    // Kept alive after a chunked answer.
    await c.write(chatReq('after stream'));
    assertEcho(await c.read(), 'after stream');
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

for (const how of ['FIN', 'destroy'] as const) {
  test(`a client ${how} mid-stream aborts the backend's request`, async () => {
    const timers = new Set<NodeJS.Timeout>();
    const fake = await fakeBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"tick":0}\n\n');
      // …and never ends, as a long generation.
      const t = setInterval(() => res.write('data: {"tick":1}\n\n'), 20);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    const r = await router({ backends: [fake.url] });
    const c = await RawClient.open(r.port);
    try {
      await c.write(chatReq(`abort by ${how}`));
      // The head and the first event are here: the stream is under way.
      await waitFor('the first event', () => c.leftover().includes('tick'));
      assert.equal(r.inFlight(), 1);
      assert.equal(fake.received.length, 1);
      if (how === 'FIN') c.socket.end();
      else c.destroy();
      await Promise.race([fake.received[0]!.closed, sleep(5000).then(() => Promise.reject(new Error('the upstream request was not cancelled')))]);
      assert.ok(fake.received[0]!.aborted(), 'the backend saw its request cut');
      await waitFor('in-flight counts back at 0', () => r.inFlight() === 0 && r.backends.all()[0]!.inFlight === 0);
      if (how === 'FIN') await c.waitEnded();
    } finally {
      c.destroy();
      for (const t of timers) clearInterval(t);
      await r.close();
      await fake.close();
    }
  });
}

test('a connection closing after its response, to a client that stopped reading, is still cut by close()', async () => {
  // The backend streams more than the sockets buffer, then goes silent: the router ends the
  // response (idle timeout), and the connection is left flushing to a client that never reads.
  const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`;
  const be = await rawBackend((s) => {
    s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n');
    for (let i = 0; i < 256; i++) s.write(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
  });
  const r = await router({ backends: [be.url], idleTimeoutMs: 300, drainTimeoutMs: 300 });
  const c = connect(r.port, '127.0.0.1');
  c.on('error', () => undefined);
  try {
    c.write(chatReq('never read', { extra: ['Connection: close'] }));
    c.pause();
    await waitFor('the request to start', () => r.inFlight() === 1);
    await waitFor('the response to end at the router', () => r.inFlight() === 0);
    let closed = false;
    const closing = r.close().then(() => (closed = true));
    await waitFor('close() to resolve', () => closed);
    await closing;
  } finally {
    c.destroy();
    await be.close();
  }
});

test('repeated Accept fields reach the backend joined, on the fast path and through node:http alike', async () => {
  const fake = await fakeBackend();
  const r = await router({ backends: [fake.url] });
  const c = await RawClient.open(r.port);
  try {
    for (const path of ['/v1/chat/completions', '/v1/chat/completions?via=node-http']) {
      await c.write(chatReq('accept', { path, extra: ['Accept: application/json', 'Accept: text/plain'] }));
      assertEcho(await c.read(), 'accept', path.replace(/\?.*/, ''));
      assert.equal(fake.received.at(-1)!.headers.accept, 'application/json, text/plain', path);
    }
  } finally {
    c.destroy();
    await r.close();
    await fake.close();
  }
});

test('drain: close() lets the request in flight finish with connection: close and closes idle connections', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const fake = await fakeBackend(async (req, res, body) => {
    if (promptOf(body) === 'held') await gate;
    echo(req, res, body);
  });
  const r = await router({ backends: [fake.url] });
  const busy = await RawClient.open(r.port);
  const idleFast = await RawClient.open(r.port);
  const idleNode = await RawClient.open(r.port);
  try {
    // An idle fast-path connection (one request served) and an idle node:http one.
    await idleFast.write(chatReq('before'));
    const before = await idleFast.read();
    assertEcho(before, 'before');
    assertFast(before);
    await idleNode.write(getBytes('/healthz'));
    assertNode(await idleNode.read());
    // A request in flight on the fast path.
    await busy.write(chatReq('held'));
    await waitFor('the request at the backend', () => fake.received.some((x) => promptOf(x.body) === 'held'));
    assert.equal(r.inFlight(), 1);

    let closed = false;
    const closing = r.close().then(() => (closed = true));
    await idleFast.waitEnded();
    await idleNode.waitEnded();
    assert.equal(idleFast.leftover(), '');
    assert.equal(closed, false, 'close waits for the request in flight');
    assert.equal(busy.ended, false);

    release();
    const res = await busy.read();
    assert.equal(res.status, 200);
    assert.equal(json(res).prompt, 'held');
    assert.equal(header(res, 'connection'), 'close');
    assert.equal(headerCount(res, 'connection'), 1);
    await busy.waitEnded();
    await closing;
    assert.equal(closed, true);
    assert.equal(r.inFlight(), 0);
  } finally {
    release();
    for (const c of [busy, idleFast, idleNode]) c.destroy();
    await r.close();
    await fake.close();
  }
});

// Heads node:http refuses: the fast path hands them over rather than deciding otherwise.
for (const [what, head] of [
  ['a header line without a colon', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer ${KEY_A}\r\nBad Header\r\nContent-Length: ${len}\r\n\r\n`],
  ['whitespace before a colon', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Length : ${len}\r\n\r\n`],
  ['a field name that is not a token', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer ${KEY_A}\r\nX(y): 1\r\nContent-Length: ${len}\r\n\r\n`],
  ['no Host header', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Length: ${len}\r\n\r\n`],
  ['a Content-Length padded with a vertical tab', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Length: ${len}\u000b\r\n\r\n`],
  ['a NUL in a header value', (len: number) => `POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\nAuthorization: Bearer ${KEY_A}\r\nX-A: a\u0000b\r\nContent-Length: ${len}\r\n\r\n`],
] as const) {
  test(`${what} on the fast path is node:http's: 400`, async () => {
    const fake = await fakeBackend();
    const r = await router({ backends: [fake.url] });
    const c = await RawClient.open(r.port);
    const after = await RawClient.open(r.port);
    try {
      const body = chatBody('malformed');
      await c.write(`${head(body.length)}${body}`);
      const res = await c.read();
      assert.equal(res.status, 400);
      await c.waitEnded();
      assert.equal(fake.received.length, 0);
      // The router serves on.
      await after.write(chatReq('fine'));
      assertEcho(await after.read(), 'fine');
    } finally {
      c.destroy();
      after.destroy();
      await r.close();
      await fake.close();
    }
  });
}
