// The simulated engine's state: its prefix KV cache and its scheduler, on the wall clock.
// No model runs here. Each request is charged the time model.ts says a real replica would
// take (prefill of the uncached prompt, one request at a time; decode in a batch of up to
// `maxBatch`), and its output is filler words drawn from a generator seeded by the prompt's
// hash, so the same prompt always gets the same answer.
//
// Life of a request: queued (FIFO for the single prefill lane) → prefilling (the cache is
// looked up now, not on arrival, because a request ahead of it in the queue may just have
// stored the very prefix it needs; its blocks are stored when prefill ends) → waiting for a
// batch slot → decoding (one token each `decodeSecondsPerToken`) → done. Aborting the
// request's signal takes it out of whichever stage it is in and frees what it held.
import { DEFAULT_TIME_MODEL, type EngineTimeModel } from './model.ts';
import { PrefixKvCache } from './kvcache.ts';
import { seededRandom } from '../lib/random.ts';

/** Tokens per prefix block, as the router and the routing benchmark assume by default. */
export const DEFAULT_BLOCK_TOKENS = 16;
/** Cache capacity in blocks: 8192 × 16 = 131,072 tokens, a modest slice of an H100's KV space. */
export const DEFAULT_CACHE_BLOCKS = 8192;

export const FINISH_REASONS = { length: 'length', abort: 'abort' } as const;
export type FinishReason = (typeof FINISH_REASONS)[keyof typeof FINISH_REASONS];

export interface EngineOptions {
  blockTokens?: number;
  cacheBlocks?: number;
  time?: Partial<EngineTimeModel>;
}

export interface GenerateRequest {
  /** The prompt's chained prefix-block hashes (promptBlocks in src/router/prompt.ts). */
  blocks: readonly string[];
  promptTokens: number;
  /** Output tokens to produce; 0 finishes right after prefill. */
  maxTokens: number;
  /** Seeds the output words (default: from the prompt's last block hash). */
  seed?: number;
  /** Aborting it cancels the request wherever it is and frees its batch slot. */
  signal?: AbortSignal;
  /** When prefill starts: the cache has been looked up. */
  onPrefill?(info: { cachedTokens: number }): void;
  /** Each output token as it is decoded (index from 0). */
  onToken?(token: string, index: number): void;
}

export interface GenerateResult {
  promptTokens: number;
  /** Prompt tokens found in the cache (0 when cancelled before prefill started). */
  cachedTokens: number;
  /** Whether prefill completed (a request cancelled earlier computed nothing and stored nothing). */
  prefilled: boolean;
  /** Prompt tokens computed (0 unless prefill completed). */
  prefilledTokens: number;
  completionTokens: number;
  text: string;
  finishReason: FinishReason;
  /**
   * Seconds of prefill the time model charged this request: overheadSeconds + uncached
   * prompt tokens × prefillSecondsPerToken, fixed when its prefill starts (0 if it never
   * started). The model's figure, not a measurement; tests and tools read it, responses don't.
   */
  prefillSeconds: number;
  /** Milliseconds from submission; absent for stages never reached. */
  timings: { prefillStartMs?: number; firstTokenMs?: number; endMs: number };
}

export interface EngineStats {
  /** Waiting for the prefill lane. */
  queued: number;
  /** Being prefilled (0 or 1). */
  prefilling: number;
  /** Prefilled, waiting for a decode slot. */
  waitingForBatch: number;
  /** Decoding. */
  running: number;
  cacheBlocks: number;
  cacheCapacity: number;
  /** cacheBlocks / cacheCapacity. */
  kvUsage: number;
  /** Since start; the token counts cover prefills that completed (prompt = cached + prefilled). */
  totals: {
    finished: number;
    cancelled: number;
    promptTokens: number;
    cachedTokens: number;
    prefilledTokens: number;
    generatedTokens: number;
  };
}

const PHASES = { queued: 'queued', prefilling: 'prefilling', waiting: 'waiting', decoding: 'decoding', done: 'done' } as const;
type Phase = (typeof PHASES)[keyof typeof PHASES];

interface Job {
  req: GenerateRequest;
  phase: Phase;
  submitted: number;
  cachedTokens: number;
  prefilled: boolean;
  prefilledTokens: number;
  prefillSeconds: number;
  tokens: string[];
  nextWord: () => string;
  timer?: NodeJS.Timeout;
  decodeStart: number;
  timings: { prefillStartMs?: number; firstTokenMs?: number };
  resolve(result: GenerateResult): void;
  detach(): void;
}

/** Filler vocabulary: short plain words, one token each. */
const WORDS = [
  'the', 'model', 'is', 'simulated', 'and', 'this', 'text', 'means', 'nothing', 'but', 'it', 'repeats',
  'for', 'the', 'same', 'prompt', 'each', 'time', 'a', 'cache', 'block', 'of', 'tokens', 'was',
  'reused', 'here', 'so', 'prefill', 'took', 'less', 'while', 'decode', 'went', 'on', 'at', 'one',
  'word', 'per', 'step', 'in', 'batch', 'with', 'others', 'router', 'sent', 'request', 'to', 'replica',
  'that', 'held', 'its', 'prefix', 'then', 'answer', 'came', 'back', 'token', 'by', 'over', 'stream',
  'until', 'length', 'limit', 'reached',
] as const;

/** The default output seed: the last block hash covers the whole prompt, model and salt. */
export function promptSeed(blocks: readonly string[]): number {
  const last = blocks[blocks.length - 1];
  return last ? Number.parseInt(last.slice(0, 8), 16) >>> 0 : 0;
}

const now = () => performance.now();

export class Engine {
  readonly cache: PrefixKvCache;
  readonly time: EngineTimeModel;
  readonly blockTokens: number;
  private readonly prefillQueue: Job[] = [];
  private prefilling: Job | undefined;
  private readonly batchQueue: Job[] = [];
  private readonly running = new Set<Job>();
  private readonly totals = { finished: 0, cancelled: 0, promptTokens: 0, cachedTokens: 0, prefilledTokens: 0, generatedTokens: 0 };

  constructor(opts: EngineOptions = {}) {
    this.blockTokens = opts.blockTokens ?? DEFAULT_BLOCK_TOKENS;
    if (!Number.isInteger(this.blockTokens) || this.blockTokens < 1) throw new RangeError(`blockTokens must be a positive integer, got ${this.blockTokens}`);
    this.cache = new PrefixKvCache(opts.cacheBlocks ?? DEFAULT_CACHE_BLOCKS);
    this.time = { ...DEFAULT_TIME_MODEL, ...opts.time };
    const t = this.time;
    for (const k of ['prefillSecondsPerToken', 'overheadSeconds', 'decodeSecondsPerToken'] as const) {
      if (!Number.isFinite(t[k]) || t[k] < 0) throw new RangeError(`${k} must be a non-negative number, got ${t[k]}`);
    }
    if (!Number.isInteger(t.maxBatch) || t.maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${t.maxBatch}`);
  }

  /** Runs one request through prefill and decode; resolves when it ends or is aborted (never rejects). */
  generate(req: GenerateRequest): Promise<GenerateResult> {
    return new Promise((resolve) => {
      const rng = seededRandom(req.seed ?? promptSeed(req.blocks));
      const onAbort = () => this.cancel(job);
      const job: Job = {
        req,
        phase: PHASES.queued,
        submitted: now(),
        cachedTokens: 0,
        prefilled: false,
        prefilledTokens: 0,
        prefillSeconds: 0,
        tokens: [],
        nextWord: () => WORDS[Math.floor(rng() * WORDS.length)]!,
        decodeStart: 0,
        timings: {},
        resolve,
        detach: () => req.signal?.removeEventListener('abort', onAbort),
      };
      if (req.signal?.aborted) return this.finish(job, FINISH_REASONS.abort);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.prefillQueue.push(job);
      this.pumpPrefill();
    });
  }

  stats(): EngineStats {
    return {
      queued: this.prefillQueue.length,
      prefilling: this.prefilling ? 1 : 0,
      waitingForBatch: this.batchQueue.length,
      running: this.running.size,
      cacheBlocks: this.cache.size,
      cacheCapacity: this.cache.capacity,
      kvUsage: this.cache.usage,
      totals: { ...this.totals },
    };
  }

  /** Requests not yet finished, in any stage. */
  get active(): number {
    return this.prefillQueue.length + (this.prefilling ? 1 : 0) + this.batchQueue.length + this.running.size;
  }

  private pumpPrefill(): void {
    if (this.prefilling) return;
    const job = this.prefillQueue.shift();
    if (!job) return;
    this.prefilling = job;
    job.phase = PHASES.prefilling;
    job.timings.prefillStartMs = now() - job.submitted;
    const { blocks, promptTokens } = job.req;
    job.cachedTokens = Math.min(this.cache.match(blocks) * this.blockTokens, promptTokens);
    const uncached = promptTokens - job.cachedTokens;
    const seconds = this.time.overheadSeconds + uncached * this.time.prefillSecondsPerToken;
    job.prefillSeconds = seconds;
    job.timer = setTimeout(() => {
      job.timer = undefined;
      this.prefilling = undefined;
      this.cache.insert(blocks);
      job.prefilled = true;
      job.prefilledTokens = uncached;
      this.totals.promptTokens += promptTokens;
      this.totals.prefilledTokens += uncached;
      this.totals.cachedTokens += job.cachedTokens;
      if (job.req.maxTokens <= 0) {
        this.finish(job, FINISH_REASONS.length);
      } else {
        job.phase = PHASES.waiting;
        this.batchQueue.push(job);
        this.pumpBatch();
      }
      this.pumpPrefill();
    }, seconds * 1000);
    // After the timer is set: the callback may abort the request, which clears it.
    job.req.onPrefill?.({ cachedTokens: job.cachedTokens });
  }

  private pumpBatch(): void {
    while (this.running.size < this.time.maxBatch && this.batchQueue.length) {
      const job = this.batchQueue.shift()!;
      job.phase = PHASES.decoding;
      job.decodeStart = now();
      this.running.add(job);
      this.scheduleStep(job);
    }
  }

  /**
   * Token k (from 1) is due decodeStart + k × step: deadlines are absolute, so timer lateness
   * never accumulates, and a late timer emits every token that has come due.
   */
  private scheduleStep(job: Job): void {
    const step = this.time.decodeSecondsPerToken * 1000;
    const due = job.decodeStart + (job.tokens.length + 1) * step;
    job.timer = setTimeout(() => {
      job.timer = undefined;
      const t = now();
      // At least one token per firing: Node may fire a timer up to a millisecond early.
      const reached = step > 0 ? Math.floor((t - job.decodeStart) / step + 1e-9) : job.req.maxTokens;
      const target = Math.min(job.req.maxTokens, Math.max(job.tokens.length + 1, reached));
      while (job.tokens.length < target && job.phase === PHASES.decoding) {
        const index = job.tokens.length;
        const token = index === 0 ? job.nextWord() : ` ${job.nextWord()}`;
        job.tokens.push(token);
        this.totals.generatedTokens++;
        if (index === 0) job.timings.firstTokenMs = t - job.submitted;
        // A listener may abort the request (its client went away while we wrote).
        job.req.onToken?.(token, index);
      }
      if (job.phase !== PHASES.decoding) return;
      if (job.tokens.length >= job.req.maxTokens) {
        this.running.delete(job);
        this.finish(job, FINISH_REASONS.length);
        this.pumpBatch();
      } else {
        this.scheduleStep(job);
      }
    }, Math.max(0, due - now()));
  }

  private cancel(job: Job): void {
    switch (job.phase) {
      case PHASES.queued:
        this.prefillQueue.splice(this.prefillQueue.indexOf(job), 1);
        break;
      case PHASES.prefilling:
        // The lane is freed at once and nothing is stored: a real engine drops an aborted
        // request's partial prefill at its next step.
        clearTimeout(job.timer);
        this.prefilling = undefined;
        this.finish(job, FINISH_REASONS.abort);
        this.pumpPrefill();
        return;
      case PHASES.waiting:
        this.batchQueue.splice(this.batchQueue.indexOf(job), 1);
        break;
      case PHASES.decoding:
        clearTimeout(job.timer);
        this.running.delete(job);
        this.finish(job, FINISH_REASONS.abort);
        this.pumpBatch();
        return;
      case PHASES.done:
        return;
    }
    this.finish(job, FINISH_REASONS.abort);
  }

  private finish(job: Job, finishReason: FinishReason): void {
    job.phase = PHASES.done;
    job.detach();
    if (finishReason === FINISH_REASONS.abort) this.totals.cancelled++;
    else this.totals.finished++;
    job.resolve({
      promptTokens: job.req.promptTokens,
      cachedTokens: job.cachedTokens,
      prefilled: job.prefilled,
      prefilledTokens: job.prefilledTokens,
      prefillSeconds: job.prefillSeconds,
      completionTokens: job.tokens.length,
      text: job.tokens.join(''),
      finishReason,
      timings: { ...job.timings, endMs: now() - job.submitted },
    });
  }
}
