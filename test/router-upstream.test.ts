// The data plane's HTTP/1.1 client (src/router/upstream.ts) against servers on loopback that
// send exactly the bytes a test scripts (raw node:net servers) or real ones (node:http):
// the request's bytes; Content-Length, chunked (extensions, trailers) and close-delimited
// bodies, also split at arbitrary byte positions (property tests); interim 1xx responses;
// bodiless 204/304; keep-alive reuse and what ends it; malformed responses; connections
// that fail mid-response; abort; backpressure; close/destroy; idle expiry; and a backend
// closing an idle connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawServer, type RawRequest, type RawServer } from './helpers/router.ts';
import { sleep, waitFor } from './helpers/wait.ts';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import fc from 'fast-check';
import { UpstreamPool, UpstreamError, UpstreamErrorCode, type UpstreamConnection, type UpstreamHandler } from '../src/router/upstream.ts';

// ---- helpers -------------------------------------------------------------------------------

/** A handler that records everything it hears, and whether it heard it in the promised order. */
interface Collector extends UpstreamHandler {
  status: number | undefined;
  headers: string[] | undefined;
  chunks: Buffer[];
  lasts: boolean[];
  events: string[];
  completed: boolean;
  error: UpstreamError | undefined;
  /** Calls out of the documented order (headers once, data, then complete or error once). */
  violations: string[];
  /** Resolves on onComplete or onError. */
  done: Promise<void>;
  bytes(): Buffer;
  body(): string;
}

function collect(onData?: (chunk: Buffer, last: boolean, c: Collector) => boolean, onHeaders?: (c: Collector) => void): Collector {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const ended = () => c.completed || c.error !== undefined;
  const c: Collector = {
    status: undefined,
    headers: undefined,
    chunks: [],
    lasts: [],
    events: [],
    completed: false,
    error: undefined,
    violations: [],
    done,
    bytes: () => Buffer.concat(c.chunks),
    body: () => Buffer.concat(c.chunks).toString('latin1'),
    onHeaders(status, headers) {
      c.events.push(`headers ${status}`);
      if (c.status !== undefined) c.violations.push('onHeaders twice');
      if (ended()) c.violations.push('onHeaders after the end');
      c.status = status;
      c.headers = headers;
      onHeaders?.(c);
    },
    onData(chunk, last) {
      c.events.push(`data ${chunk.length}${last ? ' last' : ''}`);
      if (c.status === undefined) c.violations.push('onData before onHeaders');
      if (ended()) c.violations.push('onData after the end');
      c.chunks.push(chunk);
      c.lasts.push(last);
      return onData ? onData(chunk, last, c) : true;
    },
    onComplete() {
      c.events.push('complete');
      if (c.status === undefined) c.violations.push('onComplete before onHeaders');
      if (ended()) c.violations.push('onComplete after the end');
      c.completed = true;
      resolve();
    },
    onError(err) {
      c.events.push(`error ${err.code}`);
      if (ended()) c.violations.push('onError after the end');
      c.error = err;
      resolve();
    },
  };
  return c;
}

/** The handler heard a whole response in order; returns its body. */
function assertComplete(c: Collector, status = 200): string {
  assert.deepEqual(c.violations, []);
  assert.equal(c.error, undefined, `unexpected error: ${c.error?.code} ${c.error?.message}`);
  assert.equal(c.completed, true);
  assert.equal(c.status, status);
  return c.body();
}

function assertFailed(c: Collector, codes: readonly string[]): UpstreamError {
  assert.deepEqual(c.violations, []);
  assert.equal(c.completed, false, 'completed instead of failing');
  assert.ok(c.error instanceof UpstreamError, 'onError with an UpstreamError');
  assert.ok(codes.includes(c.error.code), `code ${c.error.code}, expected one of ${codes.join(', ')}`);
  return c.error;
}

/** Sends a request and waits for its end. */
async function roundTrip(pool: UpstreamPool, path = '/', body = '{}', headerLines = '', c = collect()): Promise<Collector> {
  pool.post(path, headerLines, Buffer.from(body), c);
  await c.done;
  return c;
}

/** Runs `fn` with a raw server and a pool on it; both are closed afterwards. */
async function withRaw(respond: (s: Socket, req: RawRequest) => unknown, fn: (srv: RawServer, pool: UpstreamPool) => Promise<void>, keepAliveMs?: number): Promise<void> {
  const srv = await rawServer(respond);
  const pool = new UpstreamPool(srv.url, keepAliveMs === undefined ? {} : { keepAliveMs });
  try {
    await fn(srv, pool);
  } finally {
    pool.destroy();
    await srv.close();
  }
}

/** Writes each piece in its own write, waiting a little in between so each arrives as its own read. */
async function writePieces(s: Socket, pieces: readonly (Buffer | string)[]): Promise<void> {
  for (let i = 0; i < pieces.length; i++) {
    if (s.destroyed) return;
    s.write(pieces[i]!);
    if (i < pieces.length - 1) await sleep(1);
  }
}

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;

function chunked(chunks: readonly string[], trailer = ''): string {
  return `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')}0\r\n${trailer}\r\n`;
}

/** Splits `buf` at the given positions (any integers; taken modulo its length, deduplicated). */
function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((p) => (buf.length > 1 ? 1 + (p % (buf.length - 1)) : 0)).filter((p) => p > 0 && p < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(buf.subarray(from, p));
    from = p;
  }
  out.push(buf.subarray(from));
  return out;
}

// ---- 1. the request, Content-Length responses ----------------------------------------------

test('a Content-Length response, and the exact bytes of the request', async () => {
  await withRaw(
    (s) => s.write('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Multi: a\r\nX-Multi:  b \r\nContent-Length: 11\r\n\r\nhello world'),
    async (srv, pool) => {
      const body = '{"model":"m","prompt":"héllo"}';
      const c = await roundTrip(pool, '/v1/completions?x=1', body, 'content-type: application/json\r\nx-request-id: abc\r\n');
      assert.equal(assertComplete(c, 201), 'hello world');
      assert.deepEqual(c.headers, ['Content-Type', 'text/plain', 'X-Multi', 'a', 'X-Multi', 'b', 'Content-Length', '11']);
      // One body slice here (it came in one read), flagged as the last.
      assert.equal(c.lasts.at(-1), true);
      assert.ok(c.lasts.slice(0, -1).every((l) => !l));
      assert.equal(srv.requests.length, 1);
      const bodyBytes = Buffer.from(body);
      const expected = Buffer.concat([
        Buffer.from(`POST /v1/completions?x=1 HTTP/1.1\r\nhost: 127.0.0.1:${srv.port}\r\ncontent-type: application/json\r\nx-request-id: abc\r\ncontent-length: ${bodyBytes.length}\r\n\r\n`, 'latin1'),
        bodyBytes,
      ]);
      assert.equal(srv.requests[0]!.raw.toString('latin1'), expected.toString('latin1'));
      assert.ok(srv.requests[0]!.raw.equals(expected));
      assert.ok(srv.requests[0]!.body.equals(bodyBytes));
    },
  );
});

test('an empty request body is sent with content-length: 0, and a Content-Length: 0 response completes without data', async () => {
  await withRaw(
    (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'),
    async (srv, pool) => {
      const c = await roundTrip(pool, '/empty', '');
      assert.equal(assertComplete(c), '');
      assert.deepEqual(c.lasts, []);
      assert.equal(srv.requests[0]!.raw.toString('latin1'), `POST /empty HTTP/1.1\r\nhost: 127.0.0.1:${srv.port}\r\ncontent-length: 0\r\n\r\n`);
      assert.equal(pool.connections, 1);
    },
  );
});

test('a status line without a reason phrase and repeated equal Content-Length values are accepted', async () => {
  await withRaw(
    (s) => s.write('HTTP/1.1 200\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\nok'),
    async (_srv, pool) => {
      const c = await roundTrip(pool);
      assert.equal(assertComplete(c), 'ok');
    },
  );
});

test('a Content-Length body in several reads: `last` only on the final slice, head split too', async () => {
  await withRaw(
    (s) => writePieces(s, ['HTTP/1.1 200 OK\r\ncont', 'ent-length: 12\r\n\r', '\nabc', 'defgh', 'ijkl']),
    async (_srv, pool) => {
      const c = await roundTrip(pool);
      assert.equal(assertComplete(c), 'abcdefghijkl');
      assert.equal(c.lasts.at(-1), true);
      assert.ok(c.lasts.slice(0, -1).every((l) => !l));
      assert.equal(pool.connections, 1);
    },
  );
});

// ---- 2. chunked responses ----------------------------------------------------------------

test('a chunked response with chunk extensions and trailers is de-chunked', async () => {
  const response =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5;ext=1\r\nhello\r\n' +
    '1;a="b";c\r\n \r\n' +
    'A\r\nworld12345\r\n' +
    '00\r\n' +
    'X-Trailer: 1\r\nX-Other: two\r\n\r\n';
  await withRaw(
    (s) => s.write(response),
    async (_srv, pool) => {
      const c = await roundTrip(pool);
      assert.equal(assertComplete(c), 'hello world12345');
      // `last` is for Content-Length bodies only.
      assert.ok(c.lasts.every((l) => !l));
      // The trailer is read and dropped: the connection is clean and reused.
      assert.equal(pool.connections, 1);
      const c2 = await roundTrip(pool);
      assert.equal(assertComplete(c2), 'hello world12345');
    },
  );
});

test('a chunked response written one byte at a time is de-chunked', async () => {
  const response = Buffer.from(chunked(['abc', 'de', 'fghijklmnopqrstuvwxyz'], 'x-t: 1\r\n'));
  await withRaw(
    (s) => writePieces(s, [...response].map((b) => Buffer.from([b]))),
    async (srv, pool) => {
      const c = await roundTrip(pool);
      assert.equal(assertComplete(c), 'abcdefghijklmnopqrstuvwxyz');
      const c2 = await roundTrip(pool);
      assert.equal(assertComplete(c2), 'abcdefghijklmnopqrstuvwxyz');
      assert.equal(srv.accepted(), 1);
    },
  );
});

test('property: chunked and Content-Length bodies split at arbitrary bytes are reassembled exactly', async () => {
  let next: Buffer[] = [];
  await withRaw(
    (s) => writePieces(s, next),
    async (srv, pool) => {
      const chunkArb = fc.record({
        data: fc.uint8Array({ minLength: 1, maxLength: 80 }),
        upper: fc.boolean(),
        zeros: fc.integer({ min: 0, max: 2 }),
        ext: fc.constantFrom('', ';ext=1', ';a="x y"', ';k'),
      });
      const cutsArb = fc.array(fc.nat(), { maxLength: 8 });

      // Chunked.
      await fc.assert(
        fc.asyncProperty(fc.array(chunkArb, { maxLength: 6 }), fc.constantFrom('', 'x-t: 1\r\n', 'a: b\r\nc: d\r\n'), cutsArb, async (chunks, trailer, cuts) => {
          const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n')];
          for (const ch of chunks) {
            let size = ch.data.length.toString(16);
            if (ch.upper) size = size.toUpperCase();
            parts.push(Buffer.from(`${'0'.repeat(ch.zeros)}${size}${ch.ext}\r\n`), Buffer.from(ch.data), Buffer.from('\r\n'));
          }
          parts.push(Buffer.from(`0\r\n${trailer}\r\n`));
          next = splitAt(Buffer.concat(parts), cuts);
          const c = await roundTrip(pool);
          assertComplete(c);
          assert.ok(c.bytes().equals(Buffer.concat(chunks.map((ch) => Buffer.from(ch.data)))));
          assert.ok(c.lasts.every((l) => !l));
          assert.equal(pool.connections, 1);
        }),
        { numRuns: 30 },
      );

      // Content-Length.
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), cutsArb, async (data, cuts) => {
          const body = Buffer.from(data);
          next = splitAt(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body]), cuts);
          const c = await roundTrip(pool);
          assertComplete(c);
          assert.ok(c.bytes().equals(body));
          if (body.length > 0) {
            assert.equal(c.lasts.at(-1), true);
            assert.ok(c.lasts.slice(0, -1).every((l) => !l));
          } else assert.deepEqual(c.lasts, []);
          assert.equal(pool.connections, 1);
        }),
        { numRuns: 30 },
      );
      // Every response was reused on the one connection.
      assert.equal(srv.accepted(), 1);
    },
  );
});

// ---- 3. close-delimited bodies -----------------------------------------------------------

test('a close-delimited body completes with the whole body and the connection is not reused', async () => {
  await withRaw(
    async (s, req) => {
      if (req.conn === 0) {
        await writePieces(s, ['HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst ', 'second ', 'third']);
        s.end();
      } else s.write(ok('again'));
    },
    async (srv, pool) => {
      const c = await roundTrip(pool);
      assert.equal(assertComplete(c), 'first second third');
      assert.ok(c.lasts.every((l) => !l));
      assert.equal(pool.connections, 0);
      const c2 = await roundTrip(pool);
      assert.equal(assertComplete(c2), 'again');
      assert.equal(srv.accepted(), 2);
    },
  );
});

// ---- 4. interim responses ----------------------------------------------------------------

test('interim 100 Continue and 103 Early Hints responses are skipped', async () => {
  await withRaw(
    async (s, req) => {
      if (req.seq === 0) s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + ok('done', 'X-Final: yes\r\n'));
      else await writePieces(s, ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 2', '00 OK\r\ncontent-length: 4\r\n\r\ndo', 'ne']);
    },
    async (srv, pool) => {
      for (let i = 0; i < 2; i++) {
        const c = await roundTrip(pool);
        assert.equal(assertComplete(c), 'done');
        assert.equal(c.events.filter((e) => e.startsWith('headers')).length, 1);
        if (i === 0) assert.deepEqual(c.headers, ['content-length', '4', 'X-Final', 'yes']);
        else assert.deepEqual(c.headers, ['content-length', '4']);
      }
      assert.equal(srv.accepted(), 1);
    },
  );
});

// ---- 5. 204 and 304 ----------------------------------------------------------------------

test('204 and 304 have no body (even with a Content-Length) and the connection is reused', async () => {
  await withRaw(
    (s, req) => {
      if (req.seq === 0) s.write('HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n');
      else if (req.seq === 1) s.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\netag: "x"\r\n\r\n');
      else if (req.seq === 2) s.write('HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n');
      else s.write(ok('after'));
    },
    async (srv, pool) => {
      const c1 = await roundTrip(pool);
      assert.equal(assertComplete(c1, 204), '');
      assert.deepEqual(c1.events, ['headers 204', 'complete']);
      assert.equal(pool.connections, 1);
      const c2 = await roundTrip(pool);
      assert.equal(assertComplete(c2, 304), '');
      assert.deepEqual(c2.events, ['headers 304', 'complete']);
      const c3 = await roundTrip(pool);
      assert.deepEqual(c3.events, ['headers 204', 'complete']);
      const c4 = await roundTrip(pool);
      assert.equal(assertComplete(c4), 'after');
      assert.equal(srv.accepted(), 1);
      assert.equal(pool.connections, 1);
    },
  );
});

// ---- 6. keep-alive -----------------------------------------------------------------------

test('keep-alive: sequential requests share one socket; concurrent ones open more', async () => {
  await withRaw(
    (s, req) => s.write(ok(`r${req.conn}.${req.seq}`)),
    async (srv, pool) => {
      assert.equal(pool.connections, 0);
      assert.equal(assertComplete(await roundTrip(pool)), 'r0.0');
      assert.equal(pool.connections, 1);
      assert.equal(assertComplete(await roundTrip(pool)), 'r0.1');
      assert.equal(pool.connections, 1);
      assert.equal(srv.accepted(), 1);
      assert.equal(srv.requests.length, 2);
      // Two at once: the idle one is taken, a second is opened.
      const a = collect();
      const b = collect();
      pool.post('/', '', Buffer.from('a'), a);
      pool.post('/', '', Buffer.from('b'), b);
      assert.equal(pool.connections, 2);
      await Promise.all([a.done, b.done]);
      assertComplete(a);
      assertComplete(b);
      assert.equal(srv.accepted(), 2);
      assert.equal(pool.connections, 2);
    },
  );
});

test('keep-alive ends with Connection: close, and with an HTTP/1.0 response unless it says keep-alive', async () => {
  const responses = [
    'HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nc1', // not reused
    'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nc2', // not reused
    'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 2\r\n\r\nc3', // reused
    'HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\nc4', // not reused
    ok('c5'),
  ];
  let n = 0;
  await withRaw(
    (s) => s.write(responses[n++]!),
    async (srv, pool) => {
      assert.equal(assertComplete(await roundTrip(pool)), 'c1');
      assert.equal(pool.connections, 0);
      await srv.closed(0);
      assert.equal(assertComplete(await roundTrip(pool)), 'c2');
      assert.equal(pool.connections, 0);
      assert.equal(srv.accepted(), 2);
      assert.equal(assertComplete(await roundTrip(pool)), 'c3');
      assert.equal(pool.connections, 1);
      assert.equal(srv.accepted(), 3);
      assert.equal(assertComplete(await roundTrip(pool)), 'c4');
      assert.equal(srv.accepted(), 3, 'the HTTP/1.0 keep-alive connection was reused');
      assert.equal(pool.connections, 0);
      assert.equal(assertComplete(await roundTrip(pool)), 'c5');
      assert.equal(srv.accepted(), 4);
    },
  );
});

test('bytes after a response in the same read, or on an idle connection, end its reuse', async () => {
  await withRaw(
    (s, req) => {
      if (req.conn === 0) s.write(ok('one') + 'HTTP/1.1 200 OK\r\n');
      else s.write(ok('two'));
    },
    async (srv, pool) => {
      assert.equal(assertComplete(await roundTrip(pool)), 'one');
      await waitFor('the pool to drop the connection', () => pool.connections === 0);
      await srv.closed(0);
      assert.equal(assertComplete(await roundTrip(pool)), 'two');
      assert.equal(pool.connections, 1);
      // Unasked-for bytes on the idle connection: the pool drops it.
      srv.sockets[1]!.write('garbage');
      await waitFor('the pool to drop the connection', () => pool.connections === 0);
      await srv.closed(1);
      assert.equal(assertComplete(await roundTrip(pool)), 'two');
      assert.equal(srv.accepted(), 3);
    },
  );
});

test('against node:http: streamed chunked bodies, request bodies echoed, one keep-alive connection', async () => {
  let connections = 0;
  const server = createHttpServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-path': req.url, 'x-host': req.headers.host ?? '', 'x-auth': req.headers.authorization ?? '' });
      // No Content-Length: chunked, each write its own chunk.
      res.write('echo:');
      setImmediate(() => {
        res.write(body);
        setImmediate(() => res.end(':end'));
      });
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const pool = new UpstreamPool(`http://127.0.0.1:${port}`);
  try {
    for (let i = 0; i < 3; i++) {
      const payload = JSON.stringify({ i, text: 'x'.repeat(1000 * i) });
      const c = await roundTrip(pool, `/v1/chat/completions?i=${i}`, payload, 'authorization: Bearer k\r\ncontent-type: application/json\r\n');
      assert.equal(assertComplete(c), `echo:${payload}:end`);
      const h = c.headers!;
      const get = (name: string) => h[h.findIndex((v, j) => j % 2 === 0 && v.toLowerCase() === name) + 1];
      assert.equal(get('x-path'), `/v1/chat/completions?i=${i}`);
      assert.equal(get('x-host'), `127.0.0.1:${port}`);
      assert.equal(get('x-auth'), 'Bearer k');
      assert.equal(get('transfer-encoding'), 'chunked');
    }
    assert.equal(connections, 1);
    assert.equal(pool.connections, 1);
  } finally {
    pool.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

// ---- 7. errors ---------------------------------------------------------------------------

test('malformed responses fail with K8S4AI_UPSTREAM_PARSE and close the connection', async () => {
  const cases: { name: string; response: string; headersHeard: boolean }[] = [
    { name: 'not HTTP', response: 'HTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', headersHeard: false },
    { name: 'HTTP/2 status line', response: 'HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n', headersHeard: false },
    { name: 'two-digit status', response: 'HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n', headersHeard: false },
    { name: 'four-digit status', response: 'HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n', headersHeard: false },
    { name: 'non-numeric status', response: 'HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n', headersHeard: false },
    { name: 'bad chunk size', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', headersHeard: true },
    { name: 'empty chunk size', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n', headersHeard: true },
    { name: 'negative chunk size', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n', headersHeard: true },
    { name: 'chunk data not followed by CRLF', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n', headersHeard: true },
    { name: 'disagreeing content-length', response: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\nContent-Length: 6\r\n\r\nhello!', headersHeard: false },
    { name: 'content-length list', response: 'HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello!', headersHeard: false },
    { name: 'non-numeric content-length', response: 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nhello', headersHeard: false },
    { name: 'bare LF in a header value', response: 'HTTP/1.1 200 OK\r\nx-a: one\ntwo\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'bare LF ending a header line', response: 'HTTP/1.1 200 OK\r\nx-a: one\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'bare CR in a header value', response: 'HTTP/1.1 200 OK\r\nx-a: one\rtwo\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'header line without a colon', response: 'HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'header line with an empty name', response: 'HTTP/1.1 200 OK\r\n: value\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'transfer-encoding not ending in chunked', response: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nhello', headersHeard: false },
    { name: 'a control character in a header value', response: 'HTTP/1.1 200 OK\r\nx-trace: a\u0001b\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    { name: 'DEL in a header value', response: 'HTTP/1.1 200 OK\r\nx-trace: a\u007fb\r\ncontent-length: 2\r\n\r\nok', headersHeard: false },
    {
      name: 'content-length and transfer-encoding together (a split response)',
      response: 'HTTP/1.1 200 OK\r\ncontent-length: 8\r\ntransfer-encoding: chunked\r\n\r\n2d\r\n{"ok":1}HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nEVIL\r\n0\r\n\r\n',
      headersHeard: false,
    },
  ];
  await withRaw(
    (s, req) => s.write(cases[Number(req.head.split(' ')[1]!.slice(1))]!.response),
    async (srv, pool) => {
      for (const [i, k] of cases.entries()) {
        const c = await roundTrip(pool, `/${i}`);
        assert.doesNotThrow(() => assertFailed(c, [UpstreamErrorCode.PARSE]), k.name);
        assert.equal(c.status !== undefined, k.headersHeard, `${k.name}: onHeaders heard`);
        assert.equal(pool.connections, 0, k.name);
        await srv.closed(i);
      }
      assert.equal(srv.accepted(), cases.length);
    },
  );
});

test(
  'header field names handed to onHeaders are tokens, or the response is refused with K8S4AI_UPSTREAM_PARSE',
  async () => {
    const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
    const responses = [
      'HTTP/1.1 200 OK\r\nX-Foo : bar\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nX-Foo\t: bar\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nX Foo: bar\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok',
    ];
    await withRaw(
      (s, req) => s.write(responses[Number(req.head.split(' ')[1]!.slice(1))]!),
      async (_srv, pool) => {
        for (let i = 0; i < responses.length; i++) {
          const c = await roundTrip(pool, `/${i}`);
          if (c.error) assert.equal(c.error.code, UpstreamErrorCode.PARSE);
          else for (let j = 0; j < c.headers!.length; j += 2) assert.match(c.headers![j]!, TOKEN, `response ${i}`);
        }
      },
    );
  },
);

test('a response head far over 64 KiB fails with K8S4AI_UPSTREAM_PARSE', async () => {
  await withRaw(
    (s) => s.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(200 * 1024)}\r\ncontent-length: 0\r\n\r\n`),
    async (_srv, pool) => {
      const c = await roundTrip(pool);
      assertFailed(c, [UpstreamErrorCode.PARSE]);
      assert.equal(c.status, undefined);
      assert.equal(pool.connections, 0);
    },
  );
});

test(
  'a response head just over 64 KiB whose end arrives in the read that crosses the limit fails with K8S4AI_UPSTREAM_PARSE',
  async () => {
    // 65,000 bytes without the head's end, then 2,000 more that end it: 67,000 in all.
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(67_000)}`);
    const first = head.subarray(0, 65_000);
    const second = Buffer.concat([head.subarray(65_000, 67_000 - 'content-length: 0\r\n\r\n'.length - 2), Buffer.from('\r\ncontent-length: 0\r\n\r\n')]);
    assert.equal(first.length + second.length, 67_000);
    await withRaw(
      (s) => writePieces(s, [first, second]),
      async (_srv, pool) => {
        const c = await roundTrip(pool);
        assertFailed(c, [UpstreamErrorCode.PARSE]);
        assert.equal(c.status, undefined);
      },
    );
  },
);

test('the backend closing or resetting mid-response fails with K8S4AI_UPSTREAM_CLOSED or SOCKET', async () => {
  const actions: ((s: Socket) => Promise<void>)[] = [
    // FIN before any response byte.
    async (s) => void s.end(),
    // FIN in the head.
    async (s) => void s.end('HTTP/1.1 200 OK\r\ncontent-le'),
    // FIN mid Content-Length body.
    async (s) => {
      await writePieces(s, ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n', 'partial']);
      s.end();
    },
    // FIN mid chunked body (between chunks, and inside a chunk).
    async (s) => void s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'),
    async (s) => void s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel'),
    // RST mid Content-Length body.
    async (s) => {
      await writePieces(s, ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n', 'partial']);
      await sleep(5);
      s.resetAndDestroy();
    },
  ];
  await withRaw(
    (s, req) => actions[Number(req.head.split(' ')[1]!.slice(1))]!(s),
    async (srv, pool) => {
      for (let i = 0; i < actions.length; i++) {
        const c = await roundTrip(pool, `/${i}`);
        const err = assertFailed(c, i === actions.length - 1 ? [UpstreamErrorCode.CLOSED, UpstreamErrorCode.SOCKET] : [UpstreamErrorCode.CLOSED]);
        assert.ok(err.message.length > 0);
        // What was delivered is a prefix of what was sent.
        if (c.chunks.length) assert.ok('partialhello'.includes(c.body()) && c.body().length > 0, c.body());
        assert.ok(c.lasts.every((l) => !l));
        assert.equal(pool.connections, 0);
      }
      assert.equal(srv.accepted(), actions.length);
    },
  );
});

test(
  'a close-delimited body cut by a connection reset fails instead of completing',
  async () => {
    let sent!: () => void;
    const reset = new Promise<void>((r) => (sent = r));
    await withRaw(
      async (s) => {
        s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n');
        await reset;
        s.resetAndDestroy();
      },
      async (_srv, pool) => {
        const c = collect(() => {
          sent();
          return true;
        });
        pool.post('/', '', Buffer.from('{}'), c);
        await c.done;
        assert.equal(c.body(), 'data: 1\n\n');
        assertFailed(c, [UpstreamErrorCode.SOCKET]);
      },
    );
  },
);

test('connection refused fails with K8S4AI_UPSTREAM_SOCKET', async () => {
  const dead = createNetServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const pool = new UpstreamPool(`http://127.0.0.1:${port}`);
  try {
    const c = await roundTrip(pool);
    const err = assertFailed(c, [UpstreamErrorCode.SOCKET]);
    assert.equal(c.status, undefined);
    assert.match(err.message, /ECONNREFUSED/);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.equal(pool.connections, 0);
  } finally {
    pool.destroy();
  }
});

// ---- 8. abort ----------------------------------------------------------------------------

test('abort mid-response: the handler hears nothing more, the backend sees the socket close', async () => {
  let more!: () => void;
  const gate = new Promise<void>((r) => (more = r));
  await withRaw(
    async (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nfirst');
      await gate;
      if (!s.destroyed) s.write('x'.repeat(995));
    },
    async (srv, pool) => {
      let firstData!: () => void;
      const gotFirst = new Promise<void>((r) => (firstData = r));
      const c = collect(() => {
        firstData();
        return true;
      });
      const conn = pool.post('/', '', Buffer.from('{}'), c);
      await gotFirst;
      assert.equal(pool.connections, 1);
      conn.abort(c);
      assert.equal(pool.connections, 0);
      more();
      await srv.closed(0);
      await sleep(20);
      assert.deepEqual(c.events, ['headers 200', 'data 5']);
      assert.equal(c.completed, false);
      assert.equal(c.error, undefined);
      // A second abort is harmless.
      conn.abort(c);
    },
  );
});

test('abort with a handler the connection no longer serves is a no-op', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await withRaw(
    async (s, req) => {
      if (req.seq === 1) await gate;
      s.write(ok(`r${req.seq}`));
    },
    async (srv, pool) => {
      const a = collect();
      const connA = pool.post('/', '', Buffer.from('a'), a);
      await a.done;
      assertComplete(a);
      const b = collect();
      const connB = pool.post('/', '', Buffer.from('b'), b);
      assert.equal(connB, connA, 'the idle connection is reused');
      connA.abort(a); // a's response is over: must not touch b's
      connA.resume(a);
      release();
      await b.done;
      assert.equal(assertComplete(b), 'r1');
      assert.equal(srv.accepted(), 1);
      assert.equal(pool.connections, 1);
    },
  );
});

// The router aborts from inside the handler's own callbacks (a 5xx it retries, a client gone
// mid-write): whatever the response's state then, nothing more is heard and the connection goes.
for (const { what, response, abortIn, events } of [
  { what: 'onData (not the last slice), the rest of the same read unread', response: chunked(['aaa', 'bbb', 'ccc']), abortIn: 'data', events: ['headers 200', 'data 3'] },
  { what: 'onHeaders of a bodiless response (the router retrying a 5xx)', response: 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n', abortIn: 'headers', events: ['headers 503'] },
  { what: 'onData of the last slice of a Content-Length body', response: ok('whole'), abortIn: 'data', events: ['headers 200', 'data 5 last'] },
] as const) {
  test(`abort from inside ${what}`, async () => {
    await withRaw(
      (s) => s.write(response),
      async (srv, pool) => {
        let conn!: UpstreamConnection;
        const c =
          abortIn === 'data'
            ? collect((_chunk, _last, self) => {
                conn.abort(self);
                return true;
              })
            : collect(undefined, (self) => conn.abort(self));
        conn = pool.post('/', '', Buffer.from('{}'), c);
        await srv.closed(0);
        await sleep(20);
        assert.deepEqual(c.events, events);
        assert.equal(pool.connections, 0);
      },
    );
  });
}

// ---- 9. backpressure ---------------------------------------------------------------------

test('backpressure: onData returning false pauses reading until resume', async () => {
  let firstData!: () => void;
  const gotFirst = new Promise<void>((r) => (firstData = r));
  let wrote = false;
  await withRaw(
    async (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\naaaaa');
      // The rest only once the client has paused on the first slice.
      await gotFirst;
      await writePieces(s, ['bbbbb', 'ccccc']);
      wrote = true;
    },
    async (_srv, pool) => {
      let pauseOnce = true;
      const c = collect(() => {
        firstData();
        if (pauseOnce) {
          pauseOnce = false;
          return false;
        }
        return true;
      });
      const conn = pool.post('/', '', Buffer.from('{}'), c);
      await gotFirst;
      await waitFor('the server to write everything', () => wrote);
      await sleep(30);
      assert.deepEqual(c.events, ['headers 200', 'data 5'], 'nothing more while paused');
      conn.resume(c);
      await c.done;
      assert.equal(assertComplete(c), 'aaaaabbbbbccccc');
      assert.equal(c.lasts.at(-1), true);
      assert.equal(pool.connections, 1);
    },
  );
});

test('backpressure: a pause that ends a Content-Length body still completes and the connection is reused', async () => {
  await withRaw(
    (s) => s.write(ok('only')),
    async (srv, pool) => {
      const c = await roundTrip(pool, '/', '{}', '', collect(() => false));
      assert.equal(assertComplete(c), 'only');
      // The socket reads on for the next response without a resume.
      const c2 = await roundTrip(pool, '/', '{}', '', collect(() => false));
      assert.equal(assertComplete(c2), 'only');
      assert.equal(srv.accepted(), 1);
    },
  );
});

test('backpressure: a close-delimited body paused then resumed completes', async () => {
  let firstData!: () => void;
  const gotFirst = new Promise<void>((r) => (firstData = r));
  let ended = false;
  await withRaw(
    async (s) => {
      s.write('HTTP/1.1 200 OK\r\n\r\nfirst');
      await gotFirst;
      s.end('-second');
      ended = true;
    },
    async (_srv, pool) => {
      let paused = false;
      const c = collect(() => {
        firstData();
        if (paused) return true;
        paused = true;
        return false;
      });
      const conn = pool.post('/', '', Buffer.from('{}'), c);
      await gotFirst;
      await waitFor('the server to end the response', () => ended);
      await sleep(30);
      // The rest of the body (and so the connection's end) waits for resume.
      assert.equal(c.completed, false, 'no completion while paused');
      assert.deepEqual(c.events, ['headers 200', 'data 5']);
      conn.resume(c);
      await c.done;
      assert.equal(assertComplete(c), 'first-second');
      assert.equal(pool.connections, 0);
    },
  );
});

test(
  'backpressure: no onData after a false return, even for chunks already in the same read',
  async () => {
    await withRaw(
      (s) => s.write(chunked(['aaa', 'bbb', 'ccc'])),
      async (_srv, pool) => {
        let firstData!: () => void;
        const gotFirst = new Promise<void>((r) => (firstData = r));
        let paused = false;
        const c = collect(() => {
          firstData();
          if (paused) return true;
          paused = true;
          return false;
        });
        const conn = pool.post('/', '', Buffer.from('{}'), c);
        await gotFirst;
        await sleep(30);
        const heard = [...c.events];
        conn.resume(c);
        await c.done;
        assert.equal(assertComplete(c), 'aaabbbccc');
        assert.deepEqual(heard, ['headers 200', 'data 3'], 'nothing more while paused');
      },
    );
  },
);

// ---- 10. close and destroy ---------------------------------------------------------------

test('destroy() fails a request in flight with K8S4AI_UPSTREAM_DESTROYED; post() after close() throws', async () => {
  await withRaw(
    (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart'),
    async (srv, pool) => {
      let firstData!: () => void;
      const gotFirst = new Promise<void>((r) => (firstData = r));
      const c = collect(() => {
        firstData();
        return true;
      });
      pool.post('/', '', Buffer.from('{}'), c);
      await gotFirst;
      pool.destroy();
      await c.done;
      assertFailed(c, [UpstreamErrorCode.DESTROYED]);
      assert.equal(c.body(), 'part');
      assert.equal(pool.connections, 0);
      await srv.closed(0);
      await sleep(10);
      assert.equal(c.events.length, 3, 'nothing after the error');
      assert.throws(
        () => pool.post('/', '', Buffer.from('{}'), collect()),
        (e: unknown) => e instanceof UpstreamError && e.code === UpstreamErrorCode.DESTROYED,
      );
    },
  );
  const closed = new UpstreamPool('http://127.0.0.1:1');
  closed.close();
  assert.throws(
    () => closed.post('/', '', Buffer.from('{}'), collect()),
    (e: unknown) => e instanceof UpstreamError && e.code === UpstreamErrorCode.DESTROYED && e.name === 'UpstreamError',
  );
  assert.equal(closed.connections, 0);
});

test('close() closes idle connections now and a busy one when its response ends', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await withRaw(
    async (s, req) => {
      if (req.conn === 1) await gate;
      s.write(ok(`c${req.conn}`));
    },
    async (srv, pool) => {
      assertComplete(await roundTrip(pool)); // conn 0, idle afterwards
      const busy = collect();
      const slow = collect();
      pool.post('/', '', Buffer.from('{}'), busy); // reuses conn 0
      pool.post('/', '', Buffer.from('{}'), slow); // conn 1, held
      await busy.done;
      assert.equal(pool.connections, 2);
      await waitFor('the held request', () => srv.requests.length === 3);
      pool.close();
      assert.equal(pool.connections, 1, 'the idle one is closed at once');
      await srv.closed(0);
      release();
      await slow.done;
      assert.equal(assertComplete(slow), 'c1');
      assert.equal(pool.connections, 0);
      await srv.closed(1);
    },
  );
});

// ---- 11, 12. idle connections ------------------------------------------------------------

test('idle connections are closed after keepAliveMs', async () => {
  await withRaw(
    (s) => s.write(ok('hi')),
    async (srv, pool) => {
      assert.equal(assertComplete(await roundTrip(pool)), 'hi');
      assert.equal(pool.connections, 1);
      await waitFor('the idle connection to expire', () => pool.connections === 0);
      await srv.closed(0);
      assert.equal(assertComplete(await roundTrip(pool)), 'hi');
      assert.equal(srv.accepted(), 2);
    },
    100,
  );
});

// Like a server's own idle timeout, once the response is out: a clean close, or a reset.
for (const how of ['closing', 'resetting'] as const) {
  test(`a backend ${how} an idle keep-alive connection: the pool forgets it and the next request opens a new one`, async () => {
    await withRaw(
      (s, req) => {
        s.write(ok(`c${req.conn}`));
        if (req.conn === 0) setTimeout(() => (how === 'closing' ? s.end() : s.resetAndDestroy()), 20);
      },
      async (srv, pool) => {
        assert.equal(assertComplete(await roundTrip(pool)), 'c0');
        await srv.closed(0);
        await waitFor('the pool to forget the connection', () => pool.connections === 0);
        assert.equal(assertComplete(await roundTrip(pool)), 'c1');
        assert.equal(srv.accepted(), 2);
        assert.equal(pool.connections, 1);
      },
    );
  });
}
