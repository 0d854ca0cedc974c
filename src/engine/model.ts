// The reference engine's time model, shared by the live engine (`k8s4ai engine`, wall
// clock) and the routing benchmark (simulated clock): prefill is compute-bound and runs one
// request at a time per replica, charged per uncached prompt token; decode runs for up to
// `maxBatch` requests at once (continuous batching), charged per output token; requests
// beyond the batch wait. TTFT = prefill queueing + own prefill (+ one decode step).

export interface EngineTimeModel {
  /** Seconds of prefill per uncached prompt token. */
  prefillSecondsPerToken: number;
  /** Fixed seconds per request before its prefill (scheduling, tokenization). */
  overheadSeconds: number;
  /** Seconds per output token while decoding. */
  decodeSecondsPerToken: number;
  /** Requests decoding at once. */
  maxBatch: number;
}

/** Defaults in the range of an 8B model on one H100: ~10,000 prefill tokens/s, 30 ms per output token. */
export const DEFAULT_TIME_MODEL: EngineTimeModel = {
  prefillSecondsPerToken: 1 / 10_000,
  overheadSeconds: 0.005,
  decodeSecondsPerToken: 0.03,
  maxBatch: 64,
};
