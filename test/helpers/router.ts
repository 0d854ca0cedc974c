// What the router's tests share: a scripted fake OpenAI backend that records what reaches it
// (path, raw bytes, parsed body, headers, whether the router cut the request), and a raw
// one that sends any bytes at all.
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { waitFor } from './wait.ts';

export interface FakeRequest {
  path: string;
  /** The body's bytes as they arrived. */
  raw: Buffer;
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
  /** Resolves when the router's request to this backend closes (ended or aborted). */
  closed: Promise<void>;
  aborted: () => boolean;
}

export interface FakeBackend {
  url: string;
  received: FakeRequest[];
  /** What GET /health answers: 200 or 503. */
  healthy: boolean;
  server: Server;
  close(): Promise<void>;
}

export type FakeHandler = (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) => void | Promise<void>;

/** A backend on 127.0.0.1 that answers completions with `handler` (GET /v1/models lists `models`; no KV events). */
export async function fakeBackend(handler: FakeHandler, models: string[] = ['m']): Promise<FakeBackend> {
  const sockets = new Set<Socket>();
  const fake: FakeBackend = {
    url: '',
    received: [],
    healthy: true,
    server: undefined as unknown as Server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => fake.server.close(() => r()));
    },
  };
  fake.server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(fake.healthy ? 200 : 503).end(fake.healthy ? 'ok' : 'no');
      return;
    }
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model' })) }));
      return;
    }
    if (req.url === '/v1/kv/events') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString()) as Record<string, unknown>;
      let aborted = false;
      const closed = new Promise<void>((r) => res.on('close', () => {
        aborted = !res.writableFinished;
        r();
      }));
      fake.received.push({ path: req.url!, raw, body, headers: req.headers, closed, aborted: () => aborted });
      void handler(req, res, body);
    });
  });
  fake.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', () => r()));
  fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  return fake;
}

export interface RawRequest {
  /** The request's bytes, head and body. */
  raw: Buffer;
  head: string;
  body: Buffer;
  /** Which accepted connection (0, 1, ...) and which request on it. */
  conn: number;
  seq: number;
}

export interface RawServer {
  url: string;
  port: number;
  /** Connections accepted so far. */
  accepted: () => number;
  /** Connections open now. */
  open: () => number;
  requests: RawRequest[];
  sockets: Socket[];
  /** Resolves when the n-th accepted connection (from 0) has closed. */
  closed: (conn: number) => Promise<void>;
  close(): Promise<void>;
}

/**
 * A node:net server that reads requests (head and Content-Length body, several per
 * connection) and lets `respond` write whatever bytes it likes on the socket.
 */
export async function rawServer(respond: (s: Socket, req: RawRequest) => unknown): Promise<RawServer> {
  const sockets: Socket[] = [];
  const closedPromises: Promise<void>[] = [];
  const live = new Set<Socket>();
  const requests: RawRequest[] = [];
  const server: NetServer = createNetServer((s) => {
    const conn = sockets.length;
    sockets.push(s);
    live.add(s);
    closedPromises.push(new Promise<void>((r) => s.once('close', () => r())));
    s.setNoDelay(true);
    s.on('error', () => {});
    s.on('close', () => live.delete(s));
    let buf = Buffer.alloc(0);
    let seq = 0;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        const total = end + 4 + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        const raw = buf.subarray(0, total);
        buf = buf.subarray(total);
        const req: RawRequest = { raw, head, body: raw.subarray(end + 4), conn, seq: seq++ };
        requests.push(req);
        Promise.resolve()
          .then(() => respond(s, req))
          .catch(() => s.destroy());
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accepted: () => sockets.length,
    open: () => live.size,
    requests,
    sockets,
    closed: async (n) => {
      await waitFor(`connection ${n}`, () => closedPromises.length > n);
      await closedPromises[n];
    },
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A backend that writes whatever bytes a test scripts (node:http would refuse to send a bad
 * answer): GET /health is 200, other GETs 404, and each POST is answered by `respond`.
 */
export function rawBackend(respond: (socket: Socket, req: RawRequest) => unknown): Promise<RawServer> {
  return rawServer((s, req) => {
    if (req.head.startsWith('GET /health ')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    else if (req.head.startsWith('GET ')) s.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    else return respond(s, req);
    return undefined;
  });
}
