// The router's listener: a fast path for the requests it exists for, node:http for the rest.
//
// Why: at chat-completion sizes the router's cost per request is object and callback
// overhead, and node:http's server side (IncomingMessage and ServerResponse streams, header
// objects, per-request events) was the largest share of it in `bench proxy`. The fast path
// reads the common request shape straight off the socket: `POST /v1/chat/completions` or
// `POST /v1/completions`, HTTP/1.1, a Content-Length body, the whole head in one read.
//
// Everything else is node:http's: the first time a connection sends anything else (another
// method or path, a query string, chunked or `Expect: 100-continue` bodies, HTTP/1.0, an
// upgrade, a head split over reads or over 16 KiB, a malformed line), the connection is
// handed to the node:http server with the bytes not yet parsed (`server.emit('connection')`,
// the documented way to give it a socket), and node answers it from then on, 400s and 431s
// included. So node:http stays the reference for what HTTP/1.1 the router accepts; the fast
// path only takes a subset it understands completely.
//
// The fast path's response (FastResponse) has the few members of ServerResponse the router
// uses, so the proxy code serves both paths. Bodies without a Content-Length go out chunked;
// `Connection: close` from the request or the router closes the connection after the
// response. Pipelined requests wait until the response before them is done.
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { STATUS_CODES, type Server as HttpServer, type OutgoingHttpHeaders } from 'node:http';
import { BAD_FIELD_VALUE, FIELD_NAME, HEAD_END, trimOws } from './http1.ts';

/** The request headers the proxy reads. */
export interface ProxyHeaders {
  authorization: string | undefined;
  contentLength: string | undefined;
  accept: string | undefined;
}

/** What the fast path hands its requests to; `T` is the handler's own per-request state. */
export interface FastPathHandler<T> {
  /**
   * A request's head is read. Returns the request's state, or undefined when it was answered
   * already (refused); `bodyUnread` says body bytes are still to come (a refusal then closes
   * the connection rather than read them).
   */
  request(res: FastResponse, path: string, headers: ProxyHeaders, bodyUnread: boolean): T | undefined;
  /** The body is complete. */
  body(state: T, body: Buffer): void;
  /** The connection closed before the response ended. */
  clientGone(state: T): void;
}

export interface InboundOptions {
  /** Idle keep-alive connections are closed after this long. */
  keepAliveMs: number;
  /** A request's handling threw (its connection was closed). */
  onError?(err: Error): void;
}

/** node:http's default limit on a request head. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A request body that stalls this long (no bytes) closes its connection. */
const BODY_STALL_MS = 60_000;
/** A request whose body is not all in this long after its head closes its connection (node:http's requestTimeout). */
const REQUEST_TIMEOUT_MS = 300_000;
/** A connection closing after its last response may take this long to flush it to a slow reader. */
const CLOSING_GRACE_MS = 30_000;

/** Bytes of pipelined requests held while a response is in progress before reading pauses. */
const MAX_PENDING_BYTES = 1024 * 1024;
const FAST_PATHS = new Set(['/v1/chat/completions', '/v1/completions']);

/** The listener: accepts connections, serves fast-path requests, hands the rest to `http`. */
export class Inbound<T> {
  readonly listener: NetServer;
  private readonly connections = new Set<FastConnection<T>>();
  private readonly sweeper: NodeJS.Timeout;
  /** @internal */ readonly onError: ((err: Error) => void) | undefined;

  constructor(readonly http: HttpServer, readonly handler: FastPathHandler<T>, private readonly options: InboundOptions) {
    // allowHalfOpen as node:http's own listener has it, so handed-off sockets behave as it
    // expects; the fast path treats a client's FIN as the client gone (see ended()).
    this.listener = createNetServer({ noDelay: true, allowHalfOpen: true }, (s) => this.connections.add(new FastConnection(this, s)));
    this.onError = options.onError;
    this.sweeper = setInterval(() => this.sweep(), Math.min(5000, Math.max(250, options.keepAliveMs / 4)));
    this.sweeper.unref();
  }

  /** @internal */
  forget(c: FastConnection<T>): void {
    this.connections.delete(c);
  }

  private sweep(): void {
    const now = performance.now();
    for (const c of this.connections) if (c.expired(now, this.options.keepAliveMs)) c.close();
  }

  /** Closes the fast path's connections that have no request in progress (node:http's are closed by its server). */
  closeIdle(): void {
    for (const c of this.connections) if (c.idle) c.close();
  }

  /** Closes every fast-path connection now. */
  closeAll(): void {
    clearInterval(this.sweeper);
    for (const c of this.connections) c.close();
  }
}

/** One client connection while the fast path serves it. */
class FastConnection<T> {
  /** @internal */ lastActive = performance.now();
  /** Bytes received and not yet parsed. */
  private pending: Buffer | undefined;
  /** The response in progress, from the request's head to the response's end. */
  private res: FastResponse | undefined;
  private state: T | undefined;
  private body: Buffer[] = [];
  /** Body bytes still to come for the request in progress. */
  private bodyNeed = 0;
  /** The request in progress was refused: its body is read and dropped. */
  private discard = false;
  /** @internal Close after the response in progress. */ closeAfter = false;
  /** Destroyed or handed to node:http: no longer this listener's. */
  private closed = false;
  /** Ending after its last response, until the socket closes (since `closingSince`). */
  private closing = false;
  private closingSince = 0;
  /** When the request in progress had its head read. */
  private requestSince = 0;
  /** In parse(): a response ending now does not start parsing again (the loop goes on). */
  private parsing = false;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onClose = (): void => this.gone();
  private readonly onEnd = (): void => this.ended();

  constructor(private readonly inbound: Inbound<T>, readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', noop);
  }

  /** No request in progress (and not closing). */
  get idle(): boolean {
    return this.res === undefined && !this.closing;
  }

  /** Whether the sweep at `now` should close this connection. */
  expired(now: number, keepAliveMs: number): boolean {
    if (this.closing) return now - this.closingSince > CLOSING_GRACE_MS;
    if (this.res === undefined) return now - this.lastActive > keepAliveMs;
    // A body still coming: stalled, or the whole request too slow.
    return this.bodyNeed > 0 && (now - this.lastActive > BODY_STALL_MS || now - this.requestSince > REQUEST_TIMEOUT_MS);
  }

  /** Whether the request in progress still has body bytes to come. */
  get bodyPending(): boolean {
    return this.bodyNeed > 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbound.forget(this);
    this.socket.destroy();
  }

  private data(chunk: Buffer): void {
    if (this.closed || this.closing) return;
    try {
      this.read(chunk);
    } catch (err) {
      // A fault of the router's own in serving this request: it must not take the process
      // (and every other request) down. The client sees its connection cut.
      this.close();
      this.inbound.onError?.(err as Error);
    }
  }

  private read(chunk: Buffer): void {
    this.lastActive = performance.now();
    if (this.bodyNeed > 0) {
      const take = Math.min(this.bodyNeed, chunk.length);
      this.bodyNeed -= take;
      if (!this.discard) this.body.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      if (take < chunk.length) this.hold(chunk.subarray(take));
      if (this.bodyNeed === 0) this.bodyDone();
      return;
    }
    this.hold(chunk);
    if (!this.res) this.parse();
  }

  /** Keeps bytes for after the request in progress (pipelining). */
  private hold(bytes: Buffer): void {
    this.pending = this.pending ? Buffer.concat([this.pending, bytes]) : bytes;
    if (this.res && this.pending.length > MAX_PENDING_BYTES) this.socket.pause();
  }

  /** Parses the next request from `pending`, or hands the connection to node:http. */
  private parse(): void {
    this.parsing = true;
    try {
      this.parseRequests();
    } finally {
      this.parsing = false;
    }
  }

  private parseRequests(): void {
    while (this.pending && !this.res && !this.closed) {
      const buf = this.pending;
      const end = buf.indexOf(HEAD_END);
      if (end < 0 || end > MAX_HEAD_BYTES) return this.handOff();
      const head = readHead(buf.toString('latin1', 0, end));
      if (!head) return this.handOff();
      const bodyStart = end + 4;
      const len = head.contentLength;
      const here = Math.min(len, buf.length - bodyStart);
      const rest = buf.length > bodyStart + here ? buf.subarray(bodyStart + here) : undefined;
      this.pending = rest;
      this.closeAfter = head.close;
      this.bodyNeed = len - here;
      this.body = here > 0 ? [buf.subarray(bodyStart, bodyStart + here)] : [];
      this.discard = false;
      this.requestSince = this.lastActive;
      const res = new FastResponse(this);
      this.res = res;
      const state = this.inbound.handler.request(res, head.path, head.headers, this.bodyNeed > 0);
      if (state === undefined) {
        // Refused (and answered, with `connection: close` if body bytes are still to come:
        // see responseDone); what arrives of the body is dropped.
        this.discard = true;
        this.body = [];
        continue;
      }
      this.state = state;
      if (this.bodyNeed === 0) this.bodyDone();
    }
  }

  private bodyDone(): void {
    if (this.discard) return;
    const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body);
    this.body = [];
    if (this.state !== undefined) this.inbound.handler.body(this.state, body);
  }

  /** @internal The response in progress ended. */
  responseDone(res: FastResponse): void {
    if (res !== this.res) return;
    // Body bytes still to come (a refusal): writeHead said `connection: close`.
    if (this.bodyNeed > 0) this.closeAfter = true;
    this.next();
  }

  /** On to the next request (or close, if this one said so). */
  private next(): void {
    this.res = undefined;
    this.state = undefined;
    this.discard = false;
    this.lastActive = performance.now();
    if (this.closeAfter || this.socket.readableEnded) {
      // Closed once what was written is flushed; tracked until then (a client that stops
      // reading is cut after CLOSING_GRACE_MS, and by closeAll).
      this.closing = true;
      this.closingSince = this.lastActive;
      const s = this.socket;
      s.end(() => s.destroy());
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    if (this.pending && !this.parsing) this.parse();
  }

  /**
   * The client shut its side (FIN): as node:http does by default (httpAllowHalfOpen false),
   * that is the client gone, also mid-response: a stream it stopped reading is cancelled.
   */
  private ended(): void {
    // Already ending after its last response: let that finish flushing.
    if (!this.closing) this.close();
  }

  private gone(): void {
    this.closed = true;
    this.inbound.forget(this);
    const res = this.res;
    if (res && !res.writableFinished && this.state !== undefined) {
      this.res = undefined;
      this.inbound.handler.clientGone(this.state);
    }
  }

  /** Gives the connection, with its unparsed bytes, to node:http for the rest of its life. */
  private handOff(): void {
    const s = this.socket;
    const bytes = this.pending;
    this.pending = undefined;
    this.closed = true;
    this.inbound.forget(this);
    s.pause();
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    s.removeListener('error', noop);
    if (bytes) s.unshift(bytes);
    this.inbound.http.emit('connection', s);
    // node:http reads what was put back first, then the socket itself.
    s.resume();
  }
}

interface FastHead {
  path: string;
  headers: ProxyHeaders;
  contentLength: number;
  close: boolean;
}

/**
 * A request head the fast path takes, or undefined for node:http to handle. Conservative:
 * anything unusual goes to node.
 */
function readHead(text: string): FastHead | undefined {
  let eol = text.indexOf('\r\n');
  const line = eol < 0 ? text : text.slice(0, eol);
  // "POST /v1/chat/completions HTTP/1.1"
  if (!line.startsWith('POST ') || !line.endsWith(' HTTP/1.1')) return undefined;
  const path = line.slice(5, line.length - 9);
  if (!FAST_PATHS.has(path)) return undefined;
  let authorization: string | undefined;
  let contentLength: string | undefined;
  let accept: string | undefined;
  let close = false;
  let host = false;
  while (eol >= 0) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const h = eol < 0 ? text.slice(start) : text.slice(start, eol);
    const colon = h.indexOf(':');
    // No colon, a name that is not a token (empty, whitespace before the colon, a folded
    // line), control characters (stray CR/LF included): node's call.
    if (colon <= 0) return undefined;
    const rawName = h.slice(0, colon);
    if (!FIELD_NAME.test(rawName) || BAD_FIELD_VALUE.test(h)) return undefined;
    const name = rawName.toLowerCase();
    const value = trimOws(h.slice(colon + 1));
    switch (name) {
      case 'authorization':
        if (authorization !== undefined) return undefined;
        authorization = value;
        break;
      case 'content-length':
        if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
        contentLength = value;
        break;
      case 'accept':
        accept = accept === undefined ? value : `${accept}, ${value}`;
        break;
      case 'host':
        host = true;
        break;
      case 'connection': {
        const v = value.toLowerCase();
        if (v.includes('upgrade')) return undefined;
        if (v.includes('close')) close = true;
        break;
      }
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return undefined;
    }
  }
  // node:http answers a request without Host (required in HTTP/1.1) with 400.
  if (contentLength === undefined || !host) return undefined;
  return { path, headers: { authorization, contentLength, accept }, contentLength: Number(contentLength), close };
}

/** A Date header's value, made at most once a second. */
let dateText = '';
let dateAt = 0;
function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000) {
    dateAt = now;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * A fast-path response: the members of node's ServerResponse the router uses, writing
 * straight to the socket. The head goes out with the first body bytes (or the end).
 */
export class FastResponse {
  headersSent = false;
  writableFinished = false;
  private head: string | undefined;
  private chunked = false;
  // writeHead's state while it builds the head.
  private text = '';
  private hasLength = false;
  private hasDate = false;
  private close = false;

  constructor(private readonly conn: FastConnection<unknown>) {}

  writeHead(status: number, headers?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('FastResponse: headers already sent');
    this.text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    this.hasLength = false;
    this.hasDate = false;
    this.close = this.conn.closeAfter || this.conn.bodyPending;
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) this.header(headers[i]!, headers[i + 1]);
    } else if (headers) {
      const o = headers as OutgoingHttpHeaders;
      for (const k in o) if (o[k] !== undefined) this.header(k, o[k]);
    }
    let h = this.text;
    this.text = '';
    const bodiless = status === 204 || status === 304 || status < 200;
    if (!this.hasLength && !bodiless) {
      h += 'transfer-encoding: chunked\r\n';
      this.chunked = true;
    }
    if (!this.hasDate) h += `date: ${httpDate()}\r\n`;
    if (this.close) {
      h += 'connection: close\r\n';
      this.conn.closeAfter = true;
    }
    this.head = `${h}\r\n`;
    this.headersSent = true;
    return this;
  }

  /** Appends one header field to the head being built, noting the ones that decide framing. */
  private header(name: string, value: unknown): void {
    const v = Array.isArray(value) ? value.join(', ') : String(value);
    if (!FIELD_NAME.test(name) || BAD_FIELD_VALUE.test(v)) throw new Error(`FastResponse: invalid header ${JSON.stringify(name)}`);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'date') this.hasDate = true;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          if (v.toLowerCase().includes('close')) this.close = true;
          return; // written once, by writeHead
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') this.hasLength = true;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return; // the framing is decided here
        break;
    }
    this.text += `${name}: ${v}\r\n`;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableFinished) return false;
    if (!this.headersSent) this.writeHead(200);
    const s = this.conn.socket;
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (len === 0) return this.writeHeadOut();
    if (this.head === undefined && !this.chunked) return s.write(chunk);
    s.cork();
    this.writeHeadOut();
    let ok: boolean;
    if (this.chunked) {
      s.write(`${len.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
    } else {
      ok = s.write(chunk);
    }
    s.uncork();
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableFinished) return this;
    if (!this.headersSent) this.writeHead(200, chunk === undefined ? ['content-length', '0'] : ['content-length', String(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length)]);
    const s = this.conn.socket;
    s.cork();
    if (chunk !== undefined) this.write(chunk);
    this.writeHeadOut();
    if (this.chunked) s.write('0\r\n\r\n', 'latin1');
    s.uncork();
    this.writableFinished = true;
    this.conn.responseDone(this);
    return this;
  }

  /** Writes the head if it has not gone out yet; the socket's write result (true if nothing was left to write). */
  private writeHeadOut(): boolean {
    const head = this.head;
    if (head === undefined) return true;
    this.head = undefined;
    return this.conn.socket.write(head, 'latin1');
  }

  cork(): void {
    this.conn.socket.cork();
  }

  uncork(): void {
    this.conn.socket.uncork();
  }

  /** Cuts the connection: the client sees the response fail. */
  destroy(): void {
    this.conn.socket.destroy();
  }

  once(event: 'drain', listener: (this: FastResponse) => void): this {
    this.conn.socket.once(event, () => listener.call(this));
    return this;
  }
}

function noop(): void {}

