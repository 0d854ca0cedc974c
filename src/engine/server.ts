// The simulated engine's HTTP face: enough of the OpenAI API (as vLLM serves it) for a
// router, a benchmark or a demo client to talk to it unchanged. Every response carries
// `x-k8s4ai-simulated: true` and every model is owned by "k8s4ai-simulated", so nobody
// mistakes its filler text for a model's.
//
//   POST /v1/chat/completions, POST /v1/completions   generate (stream: SSE, token by token)
//   GET  /v1/models                                    the served model names
//   GET  /v1/kv/events                                 the cache's stored/removed blocks (NDJSON or SSE)
//   GET  /health                                       200 serving, 503 draining
//   GET  /metrics                                      Prometheus
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry as MetricsRegistry, exponentialBuckets } from 'prom-client';
import { promptBlocks } from '../router/prompt.ts';
import { Engine, FINISH_REASONS, type EngineOptions, type GenerateResult } from './engine.ts';
import type { KvEvent } from './kvcache.ts';

export const DEFAULT_MODEL = 'k8s4ai/sim-8b';
export const DEFAULT_PORT = 8000;
export const DEFAULT_MAX_TOKENS = 16;
/** The most output tokens one request may ask for: bounds a request's time and memory. */
export const MAX_TOKENS_LIMIT = 131_072;
export const SIMULATED_HEADER = 'x-k8s4ai-simulated';
export const OWNED_BY = 'k8s4ai-simulated';
/** Prompts can be long conversations; 32 MiB is far above any real context window. */
const BODY_LIMIT_BYTES = 32 * 1024 * 1024;
/** How long close() lets connections end on their own before cutting them. */
const CLOSE_GRACE_MS = 250;
/** An event subscriber this far behind is cut off; it reconnects and starts from a fresh snapshot. */
const MAX_EVENT_BUFFER_BYTES = 8 * 1024 * 1024;

export const ENDPOINTS = { chat: 'chat', completion: 'completion' } as const;
export type Endpoint = (typeof ENDPOINTS)[keyof typeof ENDPOINTS];

export interface EngineServerOptions extends EngineOptions {
  /** 0: any free port (default). */
  port?: number;
  address?: string;
  /** Model names served (default [DEFAULT_MODEL]). */
  models?: string[];
  /** Output tokens when a request names none (default 16, as OpenAI's completions). */
  defaultMaxTokens?: number;
  logger?: Logger;
}

export interface EngineServer {
  /** http://address:port */
  url: string;
  engine: Engine;
  metrics: MetricsRegistry;
  app: FastifyInstance;
  readonly draining: boolean;
  /** Health turns 503 and new requests are refused; resolves once in-flight requests have finished and the server is closed. */
  drain(): Promise<void>;
  /** Stops at once: in-flight requests are cancelled, event streams ended. */
  close(): Promise<void>;
}

/** An error in OpenAI's shape: `{ error: { message, type, code } }`. */
export class OpenAiError extends Error {
  constructor(readonly statusCode: number, message: string, readonly type: string, readonly code: string) {
    super(message);
  }
  toJSON(): { error: { message: string; type: string; code: string } } {
    return { error: { message: this.message, type: this.type, code: this.code } };
  }
}

const invalid = (message: string, code = 'invalid_value') => new OpenAiError(400, message, 'invalid_request_error', code);

/** A generation request, checked. */
export interface ParsedRequest {
  endpoint: Endpoint;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  salt: string;
  blocks: string[];
  promptTokens: number;
}

export function parseGenerateBody(endpoint: Endpoint, body: unknown, models: readonly string[], blockTokens: number, defaultMaxTokens = DEFAULT_MAX_TOKENS): ParsedRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('the request body must be a JSON object', 'invalid_body');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') throw invalid('`model` is required', 'missing_model');
  if (!models.includes(b.model)) {
    throw new OpenAiError(404, `The model \`${b.model}\` does not exist. This simulated engine serves: ${models.join(', ')}.`, 'invalid_request_error', 'model_not_found');
  }
  if (endpoint === ENDPOINTS.chat) {
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw invalid('`messages` must be a non-empty array');
    if (b.messages.some((m) => !m || typeof m !== 'object' || Array.isArray(m))) throw invalid('each of `messages` must be an object');
  } else if (typeof b.prompt !== 'string' && !Array.isArray(b.prompt)) {
    throw invalid('`prompt` must be a string or an array');
  }
  const rawMax = endpoint === ENDPOINTS.chat ? (b.max_completion_tokens ?? b.max_tokens) : b.max_tokens;
  const maxTokens = rawMax === undefined || rawMax === null ? defaultMaxTokens : rawMax;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_LIMIT) {
    throw invalid(`\`max_tokens\` must be an integer from 1 to ${MAX_TOKENS_LIMIT}`);
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw invalid('`stream` must be a boolean');
  const opts = b.stream_options;
  if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) throw invalid('`stream_options` must be an object');
  const includeUsage = (opts as { include_usage?: unknown } | null | undefined)?.include_usage;
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') throw invalid('`stream_options.include_usage` must be a boolean');
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw invalid('only `n` = 1 is supported');
  if (b.cache_salt !== undefined && b.cache_salt !== null && typeof b.cache_salt !== 'string') throw invalid('`cache_salt` must be a string');
  const salt = typeof b.cache_salt === 'string' ? b.cache_salt : '';
  // The same function, on the same body, as the router's: equal inputs give equal hashes.
  const { hashes, tokens } = promptBlocks(b, blockTokens, salt);
  return { endpoint, model: b.model, stream: b.stream === true, includeUsage: includeUsage === true, maxTokens, salt, blocks: hashes, promptTokens: tokens };
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

function usageOf(r: GenerateResult): Usage {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    prompt_tokens_details: { cached_tokens: r.cachedTokens },
  };
}

function engineMetrics(registry: MetricsRegistry, engine: Engine) {
  const requests = new Counter({
    name: 'k8s4ai_engine_requests_total',
    help: 'Generation requests ended, by model, endpoint and outcome (finished, or cancelled when the client went away).',
    labelNames: ['model', 'endpoint', 'outcome'] as const,
    registers: [registry],
  });
  const promptTokens = new Counter({ name: 'k8s4ai_engine_prompt_tokens_total', help: 'Prompt tokens prefilled or found in the cache (cached + prefill).', labelNames: ['model'] as const, registers: [registry] });
  const cachedTokens = new Counter({ name: 'k8s4ai_engine_cached_tokens_total', help: 'Prompt tokens found in the prefix cache.', labelNames: ['model'] as const, registers: [registry] });
  const prefillTokens = new Counter({ name: 'k8s4ai_engine_prefill_tokens_total', help: 'Prompt tokens computed (not found in the prefix cache).', labelNames: ['model'] as const, registers: [registry] });
  const generationTokens = new Counter({ name: 'k8s4ai_engine_generation_tokens_total', help: 'Output tokens decoded.', labelNames: ['model'] as const, registers: [registry] });
  const ttft = new Histogram({
    name: 'k8s4ai_engine_time_to_first_token_seconds',
    help: 'Seconds from arrival to the first output token.',
    labelNames: ['model'] as const,
    buckets: exponentialBuckets(0.001, 2, 16),
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('k8s4ai_engine_queue_depth', 'Requests waiting: for the prefill lane, or prefilled and waiting for a decode slot.', () => {
    const s = engine.stats();
    return s.queued + s.waitingForBatch;
  });
  gauge('k8s4ai_engine_prefilling', 'Requests being prefilled (0 or 1).', () => engine.stats().prefilling);
  gauge('k8s4ai_engine_running_batch', 'Requests decoding (at most --max-batch).', () => engine.stats().running);
  gauge('k8s4ai_engine_kv_cache_usage_ratio', 'Fraction of the prefix cache\'s blocks in use (0..1).', () => engine.cache.usage);
  gauge('k8s4ai_engine_kv_cache_blocks', 'Blocks in the prefix cache.', () => engine.cache.size);
  gauge('k8s4ai_engine_kv_cache_capacity_blocks', 'Capacity of the prefix cache in blocks (--cache-blocks).', () => engine.cache.capacity);
  return {
    ended(p: ParsedRequest, r: GenerateResult): void {
      requests.inc({ model: p.model, endpoint: p.endpoint, outcome: r.finishReason === FINISH_REASONS.abort ? 'cancelled' : 'finished' });
      if (r.prefilled) {
        promptTokens.inc({ model: p.model }, r.cachedTokens + r.prefilledTokens);
        cachedTokens.inc({ model: p.model }, r.cachedTokens);
        prefillTokens.inc({ model: p.model }, r.prefilledTokens);
      }
      generationTokens.inc({ model: p.model }, r.completionTokens);
      if (r.timings.firstTokenMs !== undefined) ttft.observe({ model: p.model }, r.timings.firstTokenMs / 1000);
    },
  };
}

/** Starts an engine and its server; resolves once it listens. */
export async function startEngine(opts: EngineServerOptions = {}): Promise<EngineServer> {
  const models = opts.models?.length ? [...new Set(opts.models)] : [DEFAULT_MODEL];
  const defaultMaxTokens = opts.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
  const engine = new Engine(opts);
  const metrics = new MetricsRegistry();
  const record = engineMetrics(metrics, engine);
  const created = Math.floor(Date.now() / 1000);

  let draining = false;
  /** Abort controllers of the generation requests in flight. */
  const inFlight = new Set<AbortController>();
  let idle: (() => void) | undefined;
  const subscribers = new Set<ServerResponse>();

  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  // Any content type is read as JSON: `curl -d` sends form-encoded, and OpenAI clients JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(invalid(`the request body is not valid JSON: ${(err as Error).message}`, 'invalid_json'), undefined);
    }
  });
  app.setErrorHandler((err: unknown, req, reply) => {
    let e: OpenAiError;
    if (err instanceof OpenAiError) e = err;
    else {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      const code = (err as { code?: string }).code ?? 'internal_error';
      e = new OpenAiError(status, (err as Error).message, status >= 500 ? 'server_error' : 'invalid_request_error', code);
      if (status >= 500) req.log.error({ err }, 'request failed');
    }
    void reply.code(e.statusCode).type('application/json').send(e.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new OpenAiError(404, `no route ${req.method} ${req.url.split('?')[0]}`, 'invalid_request_error', 'not_found');
    void reply.code(404).send(e.toJSON());
  });
  app.addHook('onRequest', async (_req, reply) => {
    reply.header(SIMULATED_HEADER, 'true');
  });

  app.get('/health', async (_req, reply) => reply.code(draining ? 503 : 200).type('text/plain').send(draining ? 'draining' : 'ok'));
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  app.get('/v1/models', async () => ({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created, owned_by: OWNED_BY, root: id, parent: null })),
  }));

  // The cache's changes, for a router's prefix index. The stream opens with one `stored`
  // event listing every block held now (possibly none): a subscriber forgets what it knew of
  // this engine and applies the stream from there, so a reconnect never leaves it stale.
  app.get('/v1/kv/events', (req, reply) => {
    const format = (req.query as { format?: string }).format;
    const sse = format === 'sse' || (format === undefined && /text\/event-stream/.test(String(req.headers.accept ?? '')));
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson',
      'cache-control': 'no-cache',
      [SIMULATED_HEADER]: 'true',
    });
    const write = (ev: KvEvent) => {
      if (raw.destroyed || raw.writableEnded) return;
      const line = JSON.stringify(ev);
      raw.write(sse ? `data: ${line}\n\n` : `${line}\n`);
      if (raw.writableLength > MAX_EVENT_BUFFER_BYTES) raw.destroy();
    };
    write({ type: 'stored', hashes: engine.cache.snapshot() });
    const unsubscribe = engine.cache.subscribe(write);
    subscribers.add(raw);
    raw.on('close', () => {
      unsubscribe();
      subscribers.delete(raw);
    });
  });

  const generate = (endpoint: Endpoint) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (draining) throw new OpenAiError(503, 'the engine is draining and takes no new requests', 'server_error', 'draining');
    const p = parseGenerateBody(endpoint, req.body, models, engine.blockTokens, defaultMaxTokens);
    const ac = new AbortController();
    inFlight.add(ac);
    // The client went away before the response was complete: stop working for it.
    const onClose = () => {
      if (!reply.raw.writableFinished) ac.abort();
    };
    reply.raw.on('close', onClose);
    try {
      return p.stream ? await streamResponse(p, reply, ac.signal) : await jsonResponse(p, reply, ac.signal);
    } finally {
      reply.raw.off('close', onClose);
      inFlight.delete(ac);
      if (inFlight.size === 0) idle?.();
    }
  };

  async function jsonResponse(p: ParsedRequest, reply: FastifyReply, signal: AbortSignal) {
    const r = await engine.generate({ blocks: p.blocks, promptTokens: p.promptTokens, maxTokens: p.maxTokens, signal });
    record.ended(p, r);
    if (r.finishReason === FINISH_REASONS.abort) {
      // Nobody to answer (the client left) or the server is closing.
      reply.hijack();
      if (!reply.raw.destroyed) reply.raw.destroy();
      return;
    }
    const base = { id: responseId(p.endpoint), created: Math.floor(Date.now() / 1000), model: p.model };
    const usage = usageOf(r);
    if (p.endpoint === ENDPOINTS.chat) {
      return reply.send({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }],
        usage,
      });
    }
    return reply.send({ ...base, object: 'text_completion', choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason }], usage });
  }

  async function streamResponse(p: ParsedRequest, reply: FastifyReply, signal: AbortSignal) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      [SIMULATED_HEADER]: 'true',
    });
    // Headers now, so the client sees the request accepted while it queues.
    raw.flushHeaders();
    const base = { id: responseId(p.endpoint), created: Math.floor(Date.now() / 1000), model: p.model };
    const chat = p.endpoint === ENDPOINTS.chat;
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    const send = (payload: unknown) => {
      if (!raw.destroyed && !raw.writableEnded) raw.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    const choice = (text: string, first: boolean, finish: string | null) =>
      chat
        ? { index: 0, delta: first ? { role: 'assistant', content: text } : text === '' ? {} : { content: text }, logprobs: null, finish_reason: finish }
        : { index: 0, text, logprobs: null, finish_reason: finish };
    // One write per token, as it is decoded: the role rides on the first token so the first
    // chunk a client sees marks the real time to first token.
    const r = await engine.generate({
      blocks: p.blocks,
      promptTokens: p.promptTokens,
      maxTokens: p.maxTokens,
      signal,
      onToken: (token, i) => send({ ...base, object, choices: [choice(token, i === 0, null)] }),
    });
    record.ended(p, r);
    if (r.finishReason === FINISH_REASONS.abort) {
      // Ending without [DONE] tells a client still listening (the server is closing) that the stream broke.
      if (!raw.destroyed) raw.destroy();
      return;
    }
    send({ ...base, object, choices: [choice('', r.completionTokens === 0, r.finishReason)] });
    if (p.includeUsage) send({ ...base, object, choices: [], usage: usageOf(r) });
    if (!raw.destroyed && !raw.writableEnded) raw.end('data: [DONE]\n\n');
  }

  app.post('/v1/chat/completions', generate(ENDPOINTS.chat));
  app.post('/v1/completions', generate(ENDPOINTS.completion));

  const address = opts.address ?? '127.0.0.1';
  await app.listen({ port: opts.port ?? 0, host: address });
  const port = (app.server.address() as { port: number }).port;
  const host = address.includes(':') ? `[${address}]` : address;

  let closing: Promise<void> | undefined;
  let draining$: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      for (const ac of inFlight) ac.abort();
      for (const raw of subscribers) raw.end();
      // A connection a client opened but never sent a request on (undici opens spares) is
      // not idle to Node, and would hold close() until its 60 s headers timeout. Everything
      // of ours has finished by now; the grace lets the last responses' bytes leave.
      const force = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    })();
    return closing;
  };

  return {
    url: `http://${host}:${port}`,
    engine,
    metrics,
    app,
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
      draining$ ??= (async () => {
        if (inFlight.size > 0) await new Promise<void>((resolve) => (idle = resolve));
        await close();
      })();
      return draining$;
    },
    close,
  };
}

function responseId(endpoint: Endpoint): string {
  return `${endpoint === ENDPOINTS.chat ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
}
