// `k8s4ai engine`: a simulated LLM server with the OpenAI API, a real prefix KV cache and
// vLLM-like timing, for testing routers and running demos without a GPU. It runs no model.
//
//   k8s4ai engine                                   # k8s4ai/sim-8b on http://127.0.0.1:8000
//   k8s4ai engine --port 8001 --cache-blocks 256 --decode-ms-per-token 10
//   curl -s localhost:8000/v1/completions -d '{"model":"k8s4ai/sim-8b","prompt":"hi","max_tokens":4}'
//
// SIGTERM (or Ctrl-C) drains: /health answers 503, new requests are refused, the requests in
// flight finish, then the process exits 0. A second signal exits at once.
import { DEFAULT_TIME_MODEL } from '../engine/model.ts';
import { DEFAULT_BLOCK_TOKENS, DEFAULT_CACHE_BLOCKS } from '../engine/engine.ts';
import { DEFAULT_MODEL, DEFAULT_PORT, startEngine, type EngineServer } from '../engine/server.ts';
import { CliError } from './errors.ts';

export interface EngineCommandOptions {
  port?: string;
  address?: string;
  model?: string[];
  blockTokens?: string;
  cacheBlocks?: string;
  prefillUsPerToken?: string;
  decodeMsPerToken?: string;
  overheadMs?: string;
  maxBatch?: string;
}

/** Flag defaults, as help shows them: the time model's in the flags' units. */
export const ENGINE_FLAG_DEFAULTS = {
  blockTokens: String(DEFAULT_BLOCK_TOKENS),
  cacheBlocks: String(DEFAULT_CACHE_BLOCKS),
  prefillUsPerToken: String(DEFAULT_TIME_MODEL.prefillSecondsPerToken * 1e6),
  decodeMsPerToken: String(DEFAULT_TIME_MODEL.decodeSecondsPerToken * 1e3),
  overheadMs: String(DEFAULT_TIME_MODEL.overheadSeconds * 1e3),
  maxBatch: String(DEFAULT_TIME_MODEL.maxBatch),
} as const;

function integer(flag: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new CliError(`--${flag} must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not "${raw}"`);
  return n;
}

function nonNegative(flag: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new CliError(`--${flag} must be a non-negative number, not "${raw}"`);
  return n;
}

export async function engineCommand(o: EngineCommandOptions): Promise<void> {
  const port = integer('port', o.port ?? process.env.PORT ?? String(DEFAULT_PORT), 0, 65535);
  const models = o.model?.length ? o.model : [DEFAULT_MODEL];
  const blockTokens = integer('block-tokens', o.blockTokens ?? ENGINE_FLAG_DEFAULTS.blockTokens, 1);
  const cacheBlocks = integer('cache-blocks', o.cacheBlocks ?? ENGINE_FLAG_DEFAULTS.cacheBlocks, 1);
  const time = {
    prefillSecondsPerToken: nonNegative('prefill-us-per-token', o.prefillUsPerToken ?? ENGINE_FLAG_DEFAULTS.prefillUsPerToken) / 1e6,
    decodeSecondsPerToken: nonNegative('decode-ms-per-token', o.decodeMsPerToken ?? ENGINE_FLAG_DEFAULTS.decodeMsPerToken) / 1e3,
    overheadSeconds: nonNegative('overhead-ms', o.overheadMs ?? ENGINE_FLAG_DEFAULTS.overheadMs) / 1e3,
    maxBatch: integer('max-batch', o.maxBatch ?? ENGINE_FLAG_DEFAULTS.maxBatch, 1),
  };

  let server: EngineServer;
  try {
    server = await startEngine({ port, address: o.address ?? '127.0.0.1', models, blockTokens, cacheBlocks, time });
  } catch (err) {
    throw new CliError(`cannot serve on ${o.address ?? '127.0.0.1'}:${port}: ${(err as Error).message}`);
  }
  const t = server.engine.time;
  console.log(
    `k8s4ai engine: SIMULATED LLM server (no model runs; outputs are deterministic filler) serving ${models.join(', ')} on ${server.url}\n` +
      `  prefix cache ${cacheBlocks} blocks × ${blockTokens} tokens; prefill ${t.prefillSecondsPerToken * 1e6} µs/token + ${t.overheadSeconds * 1e3} ms; ` +
      `decode ${t.decodeSecondsPerToken * 1e3} ms/token, batch ${t.maxBatch}`,
  );

  const s = server;
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        process.stderr.write(`k8s4ai engine: ${sig} again, exiting now\n`);
        process.exit(1);
      }
      signalled = true;
      const n = s.engine.active;
      process.stderr.write(`k8s4ai engine: ${sig}, draining (${n} request${n === 1 ? '' : 's'} in flight)\n`);
      void s.drain().then(resolve, (err: Error) => {
        process.stderr.write(`k8s4ai engine: drain failed: ${err.message}\n`);
        process.exit(1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  process.stderr.write('k8s4ai engine: drained, exiting\n');
  process.exitCode = 0;
}
