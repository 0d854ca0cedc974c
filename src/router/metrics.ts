// The router's Prometheus metrics, in a registry of its own (served at the router's
// /metrics). Hot-path updates touch plain numbers or pre-resolved label children; everything
// derived (hit rates, per-backend load) is computed when Prometheus scrapes.
//
// Two hit rates: the index's (what the router believed the chosen backend held when it
// routed: cheap, always there) and the engines' (usage.prompt_tokens_details.cached_tokens,
// when an engine reports it). The gap between them says how well the index tracks reality.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Backend } from './backends.ts';

export interface HitStats {
  requests: number;
  blocks: number;
  matchedBlocks: number;
  promptTokens: number;
  matchedTokens: number;
}

export class RouterMetrics {
  readonly registry = new Registry();
  /** What the index said at routing time, summed over routed requests. */
  readonly index: HitStats = { requests: 0, blocks: 0, matchedBlocks: 0, promptTokens: 0, matchedTokens: 0 };
  /** What the engines reported (responses carrying cached_tokens only). */
  readonly engine = { responses: 0, promptTokens: 0, cachedTokens: 0 };
  private readonly requests: Counter<'code' | 'tenant'>;
  private readonly requestChildren = new Map<string, ReturnType<Counter<'code' | 'tenant'>['labels']>>();
  private readonly ttfbHistogram: Histogram;
  private readonly retriesCounter: Counter;
  private readonly failures: Counter<'stage'>;

  constructor(backends: () => readonly Backend[]) {
    const registers = [this.registry];
    const index = this.index;
    const engine = this.engine;
    this.requests = new Counter({
      name: 'k8s4ai_router_requests_total',
      help: 'Requests answered, by HTTP status code and tenant (the authenticated one; "-" before authentication).',
      labelNames: ['code', 'tenant'] as const,
      registers,
    });
    this.retriesCounter = new Counter({ name: 'k8s4ai_router_retries_total', help: 'Requests sent again to another backend after failing before their first byte.', registers });
    this.failures = new Counter({
      name: 'k8s4ai_router_backend_failures_total',
      help: 'Backend failures (connection errors, timeouts, 5xx, dropped streams), by stage: before_first_byte (retried or answered 502/504) or mid_response (the client\'s stream ended with an error).',
      labelNames: ['stage'] as const,
      registers,
    });
    this.ttfbHistogram = new Histogram({
      name: 'k8s4ai_router_time_to_first_byte_seconds',
      help: 'From the request arriving to the first response body byte from the backend (for streams, about the time to first token).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const hitMiss = (name: string, what: string, hit: () => number, all: () => number) =>
      new Counter({
        name,
        help: `${what} of routed requests, by whether the index placed them on the chosen backend (hit) or not (miss).`,
        labelNames: ['result'] as const,
        registers,
        collect() {
          this.reset();
          this.inc({ result: 'hit' }, hit());
          this.inc({ result: 'miss' }, all() - hit());
        },
      });
    hitMiss('k8s4ai_router_index_blocks_total', 'Prefix blocks', () => index.matchedBlocks, () => index.blocks);
    hitMiss('k8s4ai_router_index_prompt_tokens_total', 'Estimated prompt tokens', () => index.matchedTokens, () => index.promptTokens);
    new Gauge({
      name: 'k8s4ai_router_block_hit_rate',
      help: 'Prefix blocks found on the chosen backend by the index / all blocks routed, since the router started.',
      registers,
      collect() {
        this.set(index.blocks ? index.matchedBlocks / index.blocks : 0);
      },
    });
    new Gauge({
      name: 'k8s4ai_router_token_hit_rate',
      help: 'Prompt tokens found on the chosen backend by the index / all prompt tokens routed, since the router started.',
      registers,
      collect() {
        this.set(index.promptTokens ? index.matchedTokens / index.promptTokens : 0);
      },
    });
    new Counter({
      name: 'k8s4ai_router_engine_prompt_tokens_total',
      help: 'Prompt tokens engines reported (usage.prompt_tokens) in responses that also reported cached tokens.',
      registers,
      collect() {
        this.reset();
        this.inc(engine.promptTokens);
      },
    });
    new Counter({
      name: 'k8s4ai_router_engine_cached_tokens_total',
      help: 'Prompt tokens engines reported served from their prefix cache (usage.prompt_tokens_details.cached_tokens).',
      registers,
      collect() {
        this.reset();
        this.inc(engine.cachedTokens);
      },
    });
    new Gauge({
      name: 'k8s4ai_router_engine_token_hit_rate',
      help: 'cached_tokens / prompt_tokens over the responses that reported both, since the router started.',
      registers,
      collect() {
        this.set(engine.promptTokens ? engine.cachedTokens / engine.promptTokens : 0);
      },
    });
    const perBackend = (name: string, help: string, value: (b: Backend) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['backend'] as const,
        registers,
        collect() {
          this.reset();
          for (const b of backends()) this.set({ backend: b.id }, value(b));
        },
      });
    perBackend('k8s4ai_router_backend_ready', '1 when the backend passes health checks and is not ejected.', (b) => (b.ready ? 1 : 0));
    perBackend('k8s4ai_router_backend_in_flight', 'Requests sent to the backend and not finished.', (b) => b.inFlight);
    perBackend('k8s4ai_router_backend_outstanding_prefill_tokens', 'Estimated uncached prompt tokens sent to the backend whose first byte has not come back.', (b) => b.outstandingPrefillTokens);
  }

  request(code: number, tenant: string): void {
    const key = `${code}\u0000${tenant}`;
    let child = this.requestChildren.get(key);
    if (!child) {
      child = this.requests.labels(String(code), tenant);
      this.requestChildren.set(key, child);
    }
    child.inc();
  }

  ttfb(seconds: number): void {
    this.ttfbHistogram.observe(seconds);
  }

  backendFailure(stage: 'before_first_byte' | 'mid_response'): void {
    this.failures.inc({ stage });
  }

  retry(): void {
    this.retriesCounter.inc();
  }

  routed(blocks: number, matchedBlocks: number, promptTokens: number, matchedTokens: number): void {
    const s = this.index;
    s.requests++;
    s.blocks += blocks;
    s.matchedBlocks += matchedBlocks;
    s.promptTokens += promptTokens;
    s.matchedTokens += matchedTokens;
  }

  engineUsage(promptTokens: number, cachedTokens: number): void {
    this.engine.responses++;
    this.engine.promptTokens += promptTokens;
    this.engine.cachedTokens += Math.min(cachedTokens, promptTokens);
  }

  blockHitRate(): number {
    return this.index.blocks ? this.index.matchedBlocks / this.index.blocks : 0;
  }

  tokenHitRate(): number {
    return this.index.promptTokens ? this.index.matchedTokens / this.index.promptTokens : 0;
  }
}
