// The data plane's HTTP/1.1 client: how a proxied completion reaches its backend.
//
// Why not undici, which the router uses for everything else (health checks, /v1/models, KV
// events): at the request sizes of chat completions, the proxy's cost is per-request object
// and callback overhead, not bytes, and `bench proxy` showed undici's dispatch path (request
// object, handler adapters, its wasm parser's per-header callbacks) to be the largest part
// of the router's own CPU per request after node:http's server side. This client does the
// least an HTTP/1.1 proxy must: one write per request (head and body in one buffer), a
// response parser that slices the body out of the socket's buffers without copying, and
// keep-alive connections reused most-recent-first.
//
// What it handles (RFC 9112): status line and header fields; bodies framed by
// Content-Length, by chunked transfer coding (de-chunked here; trailers are read and
// dropped) or by the connection's close; no body for 1xx, 204 and 304; interim 1xx
// responses skipped; `Connection: close` and HTTP/1.0 responses end the connection's reuse;
// bytes after a response on a connection with nothing asked make it unusable.
// What it refuses: a response head over 64 KiB, a malformed status line, header line (field
// names that are not tokens, control characters, a bare CR or LF among them) or chunk size,
// Content-Length values that disagree, Content-Length and Transfer-Encoding together, and a
// Transfer-Encoding other than chunked last. A handler that throws fails its request
// (K8S4AI_UPSTREAM_HANDLER) instead of the process.
//
// One request at a time per connection (no pipelining); connections are opened as needed
// (the router bounds requests per backend) and closed after `keepAliveMs` idle, shorter than
// common servers' own idle timeouts (uvicorn: 5 s), so a request is rarely written to a
// socket the backend is closing. When that happens anyway the request fails before its
// first byte, which the router retries on another backend.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { BAD_FIELD_VALUE, FIELD_NAME, HEAD_END, trimOws } from './http1.ts';

/** Failures of the upstream client, with stable codes. */
export const UpstreamErrorCode = {
  CONNECT_TIMEOUT: 'K8S4AI_UPSTREAM_CONNECT_TIMEOUT',
  CLOSED: 'K8S4AI_UPSTREAM_CLOSED',
  SOCKET: 'K8S4AI_UPSTREAM_SOCKET',
  PARSE: 'K8S4AI_UPSTREAM_PARSE',
  DESTROYED: 'K8S4AI_UPSTREAM_DESTROYED',
  /** The handler threw while taking the response (it could not be passed on). */
  HANDLER: 'K8S4AI_UPSTREAM_HANDLER',
} as const;
export type UpstreamErrorCode = (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode];

export class UpstreamError extends Error {
  constructor(readonly code: UpstreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** What a request's caller hears, in this order: headers once, data zero or more times, then complete or error. */
export interface UpstreamHandler {
  /** `headers`: names and values in turn, as the backend sent them. */
  onHeaders(status: number, headers: string[]): void;
  /**
   * A slice of the (de-chunked) body; `last` when it ends a Content-Length body (onComplete
   * follows at once). Return false to pause until `resume`.
   */
  onData(chunk: Buffer, last: boolean): boolean;
  onComplete(): void;
  /** Once, instead of onComplete; never after an abort. */
  onError(err: UpstreamError): void;
}

export interface UpstreamPoolOptions {
  /** TCP (and TLS) connect timeout; default 2000. */
  connectTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this long; default 4000. */
  keepAliveMs?: number;
}

/** Largest response head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = 0x0a0d; // "\r\n" read as a little-endian uint16

/** Where a connection's parser is within a response. */
const Phase = {
  /** Nothing asked. */
  Idle: 0,
  Head: 1,
  Length: 2,
  ChunkSize: 3,
  ChunkData: 4,
  /** The CRLF after a chunk's data. */
  ChunkEnd: 5,
  Trailer: 6,
  UntilClose: 7,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** Keep-alive connections to one origin. */
export class UpstreamPool {
  readonly host: string;
  readonly port: number;
  private readonly tls: boolean;
  /** The Host header's value. */
  private readonly authority: string;
  private readonly connectTimeoutMs: number;
  private readonly keepAliveMs: number;
  /** Idle connections, most recently used last. */
  private readonly idle: UpstreamConnection[] = [];
  private readonly open = new Set<UpstreamConnection>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(origin: string, options: UpstreamPoolOptions = {}) {
    const u = new URL(origin);
    this.tls = u.protocol === 'https:';
    this.host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.port = Number(u.port) || (this.tls ? 443 : 80);
    this.authority = u.host;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.keepAliveMs = options.keepAliveMs ?? 4000;
    // One sweep for all idle connections rather than a timer re-armed on every request.
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.floor(this.keepAliveMs / 4)));
    this.sweeper.unref();
  }

  /** Connections open now (busy or idle). */
  get connections(): number {
    return this.open.size;
  }

  /**
   * Sends `POST path` with `body` and the given header lines ("name: value\r\n" each, without
   * Host and Content-Length, which are added). Returns the connection it went out on: the
   * handle for `abort` and `resume`, valid until the handler hears the end.
   */
  post(path: string, headerLines: string, body: Buffer, handler: UpstreamHandler): UpstreamConnection {
    const c = this.acquire();
    const head = `POST ${path} HTTP/1.1\r\nhost: ${this.authority}\r\n${headerLines}content-length: ${body.length}\r\n\r\n`;
    // latin1: one byte per character.
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.write(head, 0, 'latin1');
    body.copy(out, head.length);
    c.start(out, handler);
    return c;
  }

  private acquire(): UpstreamConnection {
    if (this.closed) throw new UpstreamError(UpstreamErrorCode.DESTROYED, 'the upstream pool is closed');
    const c = this.idle.pop();
    if (c) return c;
    const socket = this.tls
      ? tlsConnect({ host: this.host, port: this.port, servername: isIP(this.host) ? undefined : this.host, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: this.host, port: this.port });
    const conn = new UpstreamConnection(this, socket, this.connectTimeoutMs, this.tls);
    this.open.add(conn);
    return conn;
  }

  /** @internal A connection finished its response and may be reused. */
  release(c: UpstreamConnection): void {
    if (this.closed) {
      c.close();
      return;
    }
    c.idleSince = performance.now();
    this.idle.push(c);
  }

  /** @internal A connection is gone. */
  forget(c: UpstreamConnection): void {
    this.open.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private sweep(): void {
    const limit = performance.now() - this.keepAliveMs;
    // Oldest first: stop at the first one still fresh.
    while (this.idle.length && this.idle[0]!.idleSince <= limit) this.idle.shift()!.close();
  }

  /** Closes idle connections now and busy ones when their response ends. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of this.idle.splice(0)) c.close();
  }

  /** Drops every connection now; requests in flight fail with DESTROYED. */
  destroy(): void {
    this.close();
    for (const c of [...this.open]) c.fail(new UpstreamError(UpstreamErrorCode.DESTROYED, 'the upstream pool was destroyed'));
  }
}

/** One keep-alive connection and its response parser. */
export class UpstreamConnection {
  /** @internal */ idleSince = 0;
  private handler: UpstreamHandler | undefined;
  private phase: Phase = Phase.Idle;
  /**
   * Bytes kept from the last read: an incomplete head, chunk-size line or trailer, or what
   * was not parsed yet when the handler asked to pause.
   */
  private rest: Buffer | undefined;
  /** The handler asked to pause (onData returned false) and has not resumed. */
  private paused = false;
  private remaining = 0;
  private keepAlive = true;
  private connectTimer: NodeJS.Timeout | undefined;
  private gone = false;
  private lastError: Error | undefined;

  constructor(private readonly pool: UpstreamPool, private readonly socket: Socket, connectTimeoutMs: number, tls: boolean) {
    socket.setNoDelay(true);
    this.connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    });
    socket.on('data', (c: Buffer) => this.onSocketData(c));
    socket.on('error', (err: Error) => {
      this.lastError = err;
    });
    socket.on('close', () => this.onSocketClose());
  }

  /** @internal Writes a request and waits for its response. */
  start(bytes: Buffer, handler: UpstreamHandler): void {
    this.handler = handler;
    this.phase = Phase.Head;
    this.keepAlive = true;
    this.paused = false;
    this.socket.write(bytes);
  }

  /** Stops the response of `handler` (if this connection still serves it): the connection is closed, nothing more is heard. */
  abort(handler: UpstreamHandler): void {
    if (this.handler !== handler) return;
    this.handler = undefined;
    this.close();
  }

  /** Reads on after `onData` returned false: first what was held back, then the socket. */
  resume(handler: UpstreamHandler): void {
    if (this.handler !== handler || !this.paused) return;
    this.paused = false;
    const held = this.rest;
    this.rest = undefined;
    if (held) this.parseChecked(held);
    if (!this.paused && !this.gone) this.socket.resume();
  }

  /** @internal */
  close(): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.connectTimer);
    this.pool.forget(this);
    this.socket.destroy();
  }

  /** @internal Ends the connection and tells its handler, if any. */
  fail(err: UpstreamError): void {
    const h = this.handler;
    this.handler = undefined;
    this.phase = Phase.Idle;
    this.close();
    h?.onError(err);
  }

  /** @internal */
  connectTimedOut(): void {
    this.connectTimer = undefined;
    this.fail(new UpstreamError(UpstreamErrorCode.CONNECT_TIMEOUT, `connect to ${this.pool.host}:${this.pool.port} timed out`));
  }

  private onSocketClose(): void {
    const wasGone = this.gone;
    this.gone = true;
    clearTimeout(this.connectTimer);
    this.pool.forget(this);
    const h = this.handler;
    if (!h || wasGone) return;
    this.handler = undefined;
    const err = this.lastError;
    if (this.phase === Phase.UntilClose && !err) {
      // The body ran to the connection's end, as its framing said it would (a reset instead
      // of a clean close is a failure: the body may be cut short).
      this.phase = Phase.Idle;
      const held = this.rest;
      this.rest = undefined;
      if (held) h.onData(held, false);
      h.onComplete();
      return;
    }
    this.phase = Phase.Idle;
    h.onError(
      err
        ? new UpstreamError(UpstreamErrorCode.SOCKET, `${(err as NodeJS.ErrnoException).code ?? 'socket error'}: ${err.message}`, { cause: err })
        : new UpstreamError(UpstreamErrorCode.CLOSED, 'the backend closed the connection before the response ended'),
    );
  }

  private onSocketData(chunk: Buffer): void {
    if (!this.handler) {
      // Bytes nobody asked for (or the tail of an aborted response): this connection's
      // framing can no longer be trusted.
      this.close();
      return;
    }
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    this.parseChecked(buf);
  }

  private parseChecked(buf: Buffer): void {
    try {
      this.parse(buf);
    } catch (err) {
      // Never out of the socket's 'data' event: a throw there would end the process.
      this.fail(err instanceof UpstreamError ? err : new UpstreamError(UpstreamErrorCode.HANDLER, `the response could not be passed on: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }

  /** The handler asked to pause: keep what is left of `buf` for resume(). */
  private hold(buf: Buffer, i: number): void {
    this.paused = true;
    this.socket.pause();
    if (i < buf.length) this.rest = buf.subarray(i);
  }

  /** Runs the parser over `buf` for the current handler; stops when the response ends. */
  private parse(buf: Buffer): void {
    let i = 0;
    const len = buf.length;
    while (i < len || this.phase === Phase.Head) {
      const h = this.handler;
      if (!h) return;
      switch (this.phase) {
        case Phase.Head: {
          const end = buf.indexOf(HEAD_END, i);
          if (end < 0) {
            if (len - i > MAX_HEAD_BYTES) throw parseError('the response head exceeds 64 KiB');
            if (i < len) this.rest = buf.subarray(i);
            return;
          }
          if (end - i > MAX_HEAD_BYTES) throw parseError('the response head exceeds 64 KiB');
          i = this.head(buf, i, end);
          // A response without a body ends with its head.
          if ((this.phase as Phase) === Phase.Idle) return this.finish(buf, i);
          break;
        }
        case Phase.Length:
        case Phase.UntilClose: {
          let take = len - i;
          if (this.phase === Phase.Length && take > this.remaining) take = this.remaining;
          const slice = i === 0 && take === len ? buf : buf.subarray(i, i + take);
          i += take;
          if (this.phase === Phase.Length) this.remaining -= take;
          const done = this.phase === Phase.Length && this.remaining === 0;
          if (done) {
            this.phase = Phase.Idle;
            // The end follows at once: a pause asked now has nothing left to hold back.
            if (take > 0) h.onData(slice, true);
            return this.finish(buf, i);
          }
          if (!h.onData(slice, false)) return this.hold(buf, i);
          break;
        }
        case Phase.ChunkSize: {
          const nl = buf.indexOf(0x0a, i);
          if (nl < 0) {
            if (len - i > 1024) throw parseError('a chunk-size line exceeds 1 KiB');
            this.rest = buf.subarray(i);
            return;
          }
          const size = chunkSize(buf.toString('latin1', i, nl));
          i = nl + 1;
          if (size === 0) this.phase = Phase.Trailer;
          else {
            this.phase = Phase.ChunkData;
            this.remaining = size;
          }
          break;
        }
        case Phase.ChunkData: {
          const take = Math.min(this.remaining, len - i);
          const slice = buf.subarray(i, i + take);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.phase = Phase.ChunkEnd;
          if (!h.onData(slice, false)) return this.hold(buf, i);
          break;
        }
        case Phase.ChunkEnd: {
          if (len - i < 2) {
            this.rest = buf.subarray(i);
            return;
          }
          if (buf.readUInt16LE(i) !== CRLF) throw parseError('a chunk does not end with CRLF');
          i += 2;
          this.phase = Phase.ChunkSize;
          break;
        }
        case Phase.Trailer: {
          const nl = buf.indexOf(0x0a, i);
          if (nl < 0) {
            if (len - i > MAX_HEAD_BYTES) throw parseError('the trailer exceeds 64 KiB');
            this.rest = buf.subarray(i);
            return;
          }
          const empty = nl === i || (nl === i + 1 && buf[i] === 0x0d);
          i = nl + 1;
          if (empty) {
            this.phase = Phase.Idle;
            return this.finish(buf, i);
          }
          break;
        }
        default:
          return;
      }
    }
  }

  /**
   * Parses the head in buf[from, end) and hands it to the handler; returns the body's start.
   * Sets the phase the body's framing calls for (Idle when there is none).
   */
  private head(buf: Buffer, from: number, end: number): number {
    const text = buf.toString('latin1', from, end);
    const bodyStart = end + 4;
    // "HTTP/1.1 200 OK"
    if (!text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 0x20) throw parseError(`not an HTTP/1.x status line: ${JSON.stringify(text.slice(0, 40))}`);
    const status = Number(text.slice(9, 12));
    if (!(status >= 100 && status <= 999) || (text.length > 12 && text.charCodeAt(12) !== 0x20 && text.charCodeAt(12) !== 0x0d)) throw parseError(`bad status code in ${JSON.stringify(text.slice(0, 40))}`);
    let keepAlive = text.charCodeAt(7) === 0x31; // HTTP/1.1 keeps alive by default; 1.0 does not
    let length = -1;
    let chunked = false;
    const headers: string[] = [];
    let p = text.indexOf('\r\n');
    while (p >= 0) {
      const start = p + 2;
      const next = text.indexOf('\r\n', start);
      const line = next < 0 ? text.slice(start) : text.slice(start, next);
      p = next;
      const colon = line.indexOf(':');
      // Control characters (a bare CR or LF would let a backend split the client's response).
      if (colon <= 0 || BAD_FIELD_VALUE.test(line)) throw parseError(`malformed header line ${JSON.stringify(line.slice(0, 60))}`);
      const name = line.slice(0, colon);
      // A field name is a token: no whitespace before the colon (RFC 9112 §5.1), no separators.
      if (!FIELD_NAME.test(name)) throw parseError(`invalid header name ${JSON.stringify(name.slice(0, 60))}`);
      const value = trimOws(line.slice(colon + 1));
      headers.push(name, value);
      // Only the framing headers matter here; test their length first (most are neither).
      switch (name.length) {
        case 10:
          if (name.toLowerCase() === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) keepAlive = false;
            else if (v.includes('keep-alive')) keepAlive = true;
          }
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            if (!/^\d+$/.test(value)) throw parseError(`bad content-length ${JSON.stringify(value)}`);
            const n = Number(value);
            if (length >= 0 && n !== length) throw parseError('content-length values disagree');
            length = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            const codings = value.toLowerCase().split(',').map((s) => s.trim());
            if (codings[codings.length - 1] !== 'chunked') throw parseError(`unsupported transfer-encoding ${JSON.stringify(value)}`);
            chunked = true;
          }
          break;
      }
    }
    // Both framings at once is how responses get split (RFC 9112 §6.3): refused, not guessed.
    if (chunked && length >= 0) throw parseError('both Transfer-Encoding and Content-Length');
    if (status < 200) {
      // An interim response (100 Continue, 103 Early Hints): the real one follows.
      this.phase = Phase.Head;
      return bodyStart;
    }
    this.keepAlive = keepAlive;
    if (status === 204 || status === 304) this.phase = Phase.Idle;
    else if (chunked) this.phase = Phase.ChunkSize;
    else if (length > 0) {
      this.phase = Phase.Length;
      this.remaining = length;
    } else if (length === 0) this.phase = Phase.Idle;
    else {
      this.phase = Phase.UntilClose;
      this.keepAlive = false;
    }
    this.handler!.onHeaders(status, headers);
    return bodyStart;
  }

  /** The response is complete at buf[i]: reuse or close the connection, then tell the handler. */
  private finish(buf: Buffer, i: number): void {
    const h = this.handler;
    // Aborted from its own callback: the connection is closed already.
    if (!h) return;
    this.handler = undefined;
    this.rest = undefined;
    this.paused = false;
    if (this.keepAlive && i >= buf.length && !this.gone) {
      this.socket.resume();
      this.pool.release(this);
    } else {
      this.close();
    }
    h.onComplete();
  }
}

function onConnectTimeout(c: UpstreamConnection): void {
  c.connectTimedOut();
}

function parseError(message: string): UpstreamError {
  return new UpstreamError(UpstreamErrorCode.PARSE, `invalid response from the backend: ${message}`);
}

/** A chunk-size line's value ("1a", "1a;ext=v", "1a\r"). */
function chunkSize(line: string): number {
  let end = line.length;
  const semi = line.indexOf(';');
  if (semi >= 0) end = semi;
  const hex = line.slice(0, end).trim();
  if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw parseError(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
  return parseInt(hex, 16);
}
