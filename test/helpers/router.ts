// What the router's tests share: a scripted fake OpenAI backend that records what reaches it
// (path, raw bytes, parsed body, headers, whether the router cut the request), a raw one
// that sends any bytes at all, and polling.
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every 10 ms; throws after `ms` (a safety net, never a timing assertion). */
export async function until(check: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

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

/**
 * A backend that writes whatever bytes a test scripts (node:http would refuse to send a bad
 * answer): GET /health is 200, other GETs 404, and each POST is answered by `respond`.
 */
export async function rawBackend(respond: (socket: Socket, n: number, head: string) => void): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.subarray(end + 4 + length);
        if (head.startsWith('GET /health ')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        else if (head.startsWith('GET ')) s.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
        else respond(s, n++, head);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
