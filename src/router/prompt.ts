// A prompt as prefix blocks: the one definition the router, the reference engine and the
// routing benchmark share, so that "the same prefix" means the same thing to all three.
//
// The whole request is serialized in a canonical form (every chat message in order with its
// role, name, content parts and tool calls; the tools; or the completion prompt), cut into
// fixed-size blocks of characters (the router has no tokenizer: `blockTokens` tokens are
// taken as 4 characters each, as llm-d's approximate prefix index does), and the blocks'
// hashes are chained: each covers its block and everything before it. The chain is seeded
// by the model and the tenant's cache salt, so equal prompts of different tenants (or
// models) never share a hash, and a conversation's next turn shares its earlier turns'.
import { hash } from 'node:crypto';

/** Characters per token, for sizing blocks without a tokenizer. */
export const CHARS_PER_TOKEN = 4;

export interface PromptBlocks {
  /** Chained block hashes, 16 hex characters each; the last block may be partial. */
  hashes: string[];
  /** Estimated prompt tokens (characters / CHARS_PER_TOKEN, rounded up). */
  tokens: number;
  /** Characters serialized. */
  chars: number;
}

interface ChatMessage {
  role?: unknown;
  name?: unknown;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
}

/**
 * The canonical text of an OpenAI-style request body: what the prompt is, without sampling
 * parameters. Keys are written in a fixed order so equal prompts serialize equally.
 */
export function canonicalPrompt(body: Record<string, unknown>): string {
  const parts: string[] = [];
  if (Array.isArray(body.tools) && body.tools.length) parts.push(`tools:${stableJson(body.tools)}`);
  if (Array.isArray(body.messages)) {
    for (const m of body.messages as ChatMessage[]) {
      const head = [String(m?.role ?? ''), m?.name !== undefined ? String(m.name) : '', m?.tool_call_id !== undefined ? String(m.tool_call_id) : ''].join('|');
      const content = typeof m?.content === 'string' ? m.content : m?.content === undefined || m?.content === null ? '' : stableJson(m.content);
      const calls = m?.tool_calls !== undefined ? `\u0001${stableJson(m.tool_calls)}` : '';
      parts.push(`<${head}>${content}${calls}`);
    }
  } else if (body.prompt !== undefined) {
    parts.push(typeof body.prompt === 'string' ? body.prompt : stableJson(body.prompt));
  }
  return parts.join('\n');
}

/** JSON with object keys sorted: one spelling per value. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** chainSeed's results: few (model, salt) pairs recur on every request. */
const SEED_CACHE_MAX = 256;
const seedCache = new Map<string, string>();

/** The chain's seed: the model and the salt, so neither tenants nor models share blocks. */
export function chainSeed(model: string, salt: string): string {
  const input = `k8s4ai-prefix\u0000${model}\u0000${salt}`;
  let seed = seedCache.get(input);
  if (seed === undefined) {
    seed = hash('sha256', input, 'hex').slice(0, 16);
    // Bounded (many models × tenants, or junk model names): drop the oldest.
    if (seedCache.size >= SEED_CACHE_MAX) seedCache.delete(seedCache.keys().next().value!);
    seedCache.set(input, seed);
  }
  return seed;
}

/** Chained hashes of `text` cut into blocks of `blockTokens × CHARS_PER_TOKEN` characters. */
export function blockHashes(text: string, blockTokens: number, model: string, salt: string): PromptBlocks {
  if (!Number.isInteger(blockTokens) || blockTokens < 1) throw new RangeError(`blockTokens must be a positive integer, got ${blockTokens}`);
  const size = blockTokens * CHARS_PER_TOKEN;
  const hashes: string[] = [];
  let prev = chainSeed(model, salt);
  for (let i = 0; i < text.length; i += size) {
    // One-shot hashing (no Hash object per block); the same digest as hashing prev, then the block.
    prev = hash('sha256', prev + text.slice(i, i + size), 'hex').slice(0, 16);
    hashes.push(prev);
  }
  return { hashes, tokens: Math.ceil(text.length / CHARS_PER_TOKEN), chars: text.length };
}

/** A request body's prefix blocks. */
export function promptBlocks(body: Record<string, unknown>, blockTokens: number, salt: string): PromptBlocks {
  return blockHashes(canonicalPrompt(body), blockTokens, String(body.model ?? ''), salt);
}
