// The node agent's HTTP endpoint: the API server proxies `tasks/<name>/log` here, as the
// Kubernetes API server proxies `pods/<name>/log` to the kubelet. The agent keeps each
// Task's stdout+stderr in a file per attempt; this serves those files, whole, the last N
// lines, or followed while the process runs. Only the control plane may call it: it
// presents a shared bearer token (`<data-dir>/agent-proxy-token`).
import { createHash, timingSafeEqual } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/** A Task's log as the agent knows it. */
export interface LogSource {
  /** The log file (combined stdout and stderr of one attempt). */
  path: string;
  /** Whether the process still writes to it; a follow ends once this is false and the file is read to its end. */
  running: () => boolean;
}

/** Finds the log of a Task: the current attempt's, or with `previous` the one before; undefined when there is none. */
export type ResolveLog = (namespace: string, name: string, opts: { previous: boolean }) => LogSource | undefined | Promise<LogSource | undefined>;

export interface AgentServerOptions {
  /** Address to bind; agents serve loopback unless told otherwise. */
  address: string;
  /** Port; 0 picks a free one (see the returned url). */
  port: number;
  /** The bearer token the control plane presents (its agent proxy token). */
  token: string;
  resolveLog: ResolveLog;
  logger?: Logger;
  /**
   * While following, how often the file and running() are looked at again when fs.watch
   * says nothing (default 500 ms). fs.watch is not reliable on every filesystem, and the
   * end of a process changes no file.
   */
  pollIntervalMs?: number;
}

export interface AgentServer {
  /** Base URL, e.g. http://127.0.0.1:41234; what the Node's status.agentEndpoint carries. */
  url: string;
  /** Ends open follows and stops the server. */
  close(): Promise<void>;
}

export const AgentErrorCode = {
  BadRequest: 'K8S4AI_AGENT_BAD_REQUEST',
  Unauthorized: 'K8S4AI_AGENT_UNAUTHORIZED',
  NotFound: 'K8S4AI_AGENT_NOT_FOUND',
  Internal: 'K8S4AI_AGENT_INTERNAL',
} as const;
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

const STATUS_OF: Record<AgentErrorCode, number> = {
  [AgentErrorCode.BadRequest]: 400,
  [AgentErrorCode.Unauthorized]: 401,
  [AgentErrorCode.NotFound]: 404,
  [AgentErrorCode.Internal]: 500,
};

/** Agent failures; they reach the caller as `{ code, message }` JSON with the matching HTTP status. */
export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly statusCode: number;
  constructor(code: AgentErrorCode, message: string) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
    this.statusCode = STATUS_OF[code];
  }
}

const CHUNK_BYTES = 64 * 1024;
const DEFAULT_POLL_MS = 500;
const sha256 = (s: string) => createHash('sha256').update(s).digest();

export async function startAgentServer(opts: AgentServerOptions): Promise<AgentServer> {
  if (!opts.token) throw new Error('the agent server needs a token: without one anybody could read every log');
  // Comparing digests keeps the comparison constant-time whatever the presented length.
  const expected = sha256(opts.token);
  const pollMs = opts.pollIntervalMs ?? DEFAULT_POLL_MS;
  /** Ends every open follow; run on close so close() does not wait for running processes. */
  const follows = new Set<() => void>();

  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 1024 },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = toAgentError(err);
    if (e.statusCode >= 500) req.log.error({ err }, 'agent request failed');
    void reply.code(e.statusCode).type('application/json').send({ code: e.code, message: e.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: AgentErrorCode.NotFound, message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` });
  });
  app.addHook('onRequest', async (req) => {
    if (req.url.split('?')[0] === '/healthz') return;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(sha256(m[1]!), expected)) {
      throw new AgentError(AgentErrorCode.Unauthorized, 'Unauthorized: this agent answers the control plane only (bearer token required)');
    }
  });
  app.addHook('preClose', async () => {
    for (const end of follows) end();
  });

  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok'));
  app.get('/logs/:namespace/:name', async (req, reply) => {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const q = req.query as Record<string, string | undefined>;
    const follow = parseBool('follow', q.follow);
    const previous = parseBool('previous', q.previous);
    const tailLines = q.tailLines === undefined || q.tailLines === '' ? undefined : parseNonNegative('tailLines', q.tailLines);
    const source = await opts.resolveLog(namespace, name, { previous });
    if (!source) {
      throw new AgentError(AgentErrorCode.NotFound, previous ? `no previous log of task "${name}" in namespace "${namespace}" on this node` : `no log of task "${name}" in namespace "${namespace}" on this node`);
    }
    await serveLog(req, reply, source, { follow, tailLines, pollMs, follows });
  });

  await app.listen({ port: opts.port, host: opts.address });
  const port = (app.server.address() as { port: number }).port;
  const host = opts.address === '0.0.0.0' || opts.address === '::' ? '127.0.0.1' : opts.address;
  return {
    url: `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`,
    async close() {
      await app.close();
    },
  };
}

async function serveLog(
  req: FastifyRequest,
  reply: FastifyReply,
  source: LogSource,
  o: { follow: boolean; tailLines?: number; pollMs: number; follows: Set<() => void> },
): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(source.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AgentError(AgentErrorCode.NotFound, `the log file ${source.path} does not exist (yet)`);
    throw err;
  }
  const raw = reply.raw;
  let gone = false;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const end = () => {
    gone = true;
    poke();
  };
  try {
    let pos = o.tailLines === undefined ? 0 : await tailOffset(fh, o.tailLines);
    reply.hijack();
    raw.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache, private', 'X-Content-Type-Options': 'nosniff' });
    // Headers now, not with the first byte: a follow of a quiet process must still answer.
    raw.flushHeaders();
    raw.on('close', end);
    if (raw.destroyed) end();
    o.follows.add(end);
    if (o.follow) {
      try {
        watcher = watch(source.path, { persistent: false }, poke);
        watcher.on('error', () => watcher?.close());
      } catch {
        // polling alone
      }
    }
    while (!gone) {
      // Sampled before reading: whatever the process wrote before it stopped is read below.
      const live = o.follow && source.running();
      if ((await fh.stat()).size < pos) pos = 0; // truncated: start over
      pos = await copyToEnd(fh, pos, raw, () => gone);
      if (!live) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(poke, o.pollMs);
        if (gone) poke();
      });
      clearTimeout(timer);
    }
    if (!raw.destroyed) raw.end();
  } catch (err) {
    if (!reply.sent) throw err;
    // Headers are out; all that is left is to cut the stream, which the reader sees as an error.
    req.log.warn({ err, path: source.path }, 'log stream failed');
    raw.destroy(err as Error);
  } finally {
    o.follows.delete(end);
    clearTimeout(timer);
    watcher?.close();
    raw.off('close', end);
    await fh.close();
  }
}

/** Writes the file from `pos` to its current end, minding backpressure; returns the new position. */
async function copyToEnd(fh: FileHandle, pos: number, out: ServerResponse, gone: () => boolean): Promise<number> {
  while (!gone()) {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    const { bytesRead } = await fh.read(chunk, 0, CHUNK_BYTES, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    if (!out.write(chunk.subarray(0, bytesRead))) await drained(out);
  }
  return pos;
}

function drained(out: ServerResponse): Promise<void> {
  if (out.destroyed || out.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

/** Where the last `lines` lines start; a final newline ends the last line rather than starting an empty one. */
export async function tailOffset(fh: FileHandle, lines: number): Promise<number> {
  const size = (await fh.stat()).size;
  if (lines === 0) return size;
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let seen = 0;
  let end = size;
  while (end > 0) {
    const len = Math.min(CHUNK_BYTES, end);
    const start = end - len;
    await fh.read(buf, 0, len, start);
    for (let i = len - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a || start + i === size - 1) continue;
      if (++seen === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

function parseBool(name: string, v: string | undefined): boolean {
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new AgentError(AgentErrorCode.BadRequest, `${name} must be true or false, not "${v}"`);
}

function parseNonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new AgentError(AgentErrorCode.BadRequest, `${name} must be a non-negative integer, not "${v}"`);
  return n;
}

function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const e = err as { statusCode?: number; message?: string };
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new AgentError(AgentErrorCode.BadRequest, e.message ?? 'bad request');
  return new AgentError(AgentErrorCode.Internal, (err as Error)?.message ?? String(err));
}
