// Who is asking: the tenant comes from the authenticated API key only, never from a header
// a client could forge. Keys are configured as `sha256:<hex>` hashes (the key itself is never
// stored); a presented key is hashed and compared against every configured hash in constant
// time, so neither which tenant matched nor how much of a hash matched shows in the timing.
//
// Each tenant has a cache salt: it seeds the tenant's prefix-block hashes (so two tenants'
// equal prompts never share an index entry) and is forwarded to the engine as vLLM's
// `cache_salt` (so they never share KV blocks either, closing the prompt-cache timing side
// channel, reference/routing.md §6). A configured `cacheSalt` wins; otherwise the salt is
// HMAC-SHA256(secret, tenant name), with the ContentRouter's uid as the secret: stable over
// router restarts and equal on every replica, unknowable to tenants.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export const TenantErrorCode = {
  INVALID_TENANT: 'K8S4AI_ROUTER_INVALID_TENANT',
  TENANTS_FILE: 'K8S4AI_ROUTER_TENANTS_FILE',
} as const;
export type TenantErrorCode = (typeof TenantErrorCode)[keyof typeof TenantErrorCode];

export class TenantConfigError extends Error {
  constructor(readonly code: TenantErrorCode, message: string) {
    super(message);
    this.name = 'TenantConfigError';
  }
}

/** A tenant as the ContentRouter spec (or a tenants file) writes it. */
export interface TenantSpec {
  name: string;
  apiKeyHashes: string[];
  cacheSalt?: string;
  maxInFlight?: number;
}

/** A tenant at run time. The object lives as long as the router, across reconfigurations. */
export interface Tenant {
  readonly name: string;
  salt: string;
  maxInFlight: number | undefined;
  /** Requests of the tenant now in flight (the router counts them). */
  inFlight: number;
}

/** The tenant of every request when no tenants are configured (an open router). */
export const ANONYMOUS_TENANT = 'anonymous';

const HASH_RE = /^sha256:([a-f0-9]{64})$/;

/**
 * Authorization header values recently authenticated, with their tenant. A client sends the
 * same header on every request; hashing it and comparing it with every configured hash each
 * time is most of authentication's cost. Only successes are kept (a miss is always checked in
 * full, in constant time over the configured hashes), only the tenant reference is stored,
 * and any change of configuration empties it.
 */
const AUTH_CACHE_MAX = 1024;

/** `sha256:<hex>` of an API key: what a ContentRouter's `apiKeyHashes` hold. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** The salt of a tenant that configures none: stable per (secret, name). */
export function deriveSalt(secret: string, tenant: string): string {
  return createHmac('sha256', secret).update(`k8s4ai-tenant-salt\u0000${tenant}`).digest('hex');
}

export class TenantTable {
  /** Every configured key hash, as raw digests, with its tenant. */
  private keys: { digest: Buffer; tenant: Tenant }[] = [];
  private readonly byName = new Map<string, Tenant>();
  private anonymous: Tenant | undefined;
  /** Oldest first (Map order); see AUTH_CACHE_MAX. */
  private readonly authCache = new Map<string, Tenant>();

  constructor(specs: readonly TenantSpec[] = [], private secret = 'k8s4ai-router') {
    this.update(specs, secret);
  }

  /** No tenants configured: every request is the anonymous tenant's, no key needed. */
  get open(): boolean {
    return this.anonymous !== undefined;
  }

  /**
   * Replaces the configuration. Tenants that stay keep their object (and so their in-flight
   * count, which requests started before the change decrement).
   */
  update(specs: readonly TenantSpec[], secret = this.secret): void {
    // Check everything before changing anything: a bad configuration leaves the old one whole.
    const seen = new Set<string>();
    const hashes = new Map<string, string>();
    for (const s of specs) {
      if (!s?.name || typeof s.name !== 'string') throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, 'a tenant needs a name');
      if (seen.has(s.name)) throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenant "${s.name}" is configured twice`);
      seen.add(s.name);
      if (!Array.isArray(s.apiKeyHashes) || !s.apiKeyHashes.length) throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenant "${s.name}" needs at least one apiKeyHashes entry`);
      if (s.maxInFlight !== undefined && !(Number.isInteger(s.maxInFlight) && s.maxInFlight > 0)) {
        throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenant "${s.name}": maxInFlight must be a positive integer`);
      }
      if (s.cacheSalt !== undefined && (typeof s.cacheSalt !== 'string' || !s.cacheSalt)) throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenant "${s.name}": cacheSalt must be a non-empty string`);
      for (const h of s.apiKeyHashes) {
        const m = HASH_RE.exec(h);
        if (!m) throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenant "${s.name}": "${h}" is not sha256:<64 lowercase hex>`);
        // One key naming two tenants would make the tenant depend on configuration order.
        const other = hashes.get(m[1]!);
        if (other && other !== s.name) throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `tenants "${other}" and "${s.name}" share an API key hash`);
        hashes.set(m[1]!, s.name);
      }
    }
    this.secret = secret;
    this.authCache.clear();
    const keys: { digest: Buffer; tenant: Tenant }[] = [];
    for (const s of specs) {
      const salt = s.cacheSalt ?? deriveSalt(secret, s.name);
      let t = this.byName.get(s.name);
      if (t) {
        t.salt = salt;
        t.maxInFlight = s.maxInFlight;
      } else {
        t = { name: s.name, salt, maxInFlight: s.maxInFlight, inFlight: 0 };
        this.byName.set(s.name, t);
      }
      for (const h of s.apiKeyHashes) keys.push({ digest: Buffer.from(h.slice(7), 'hex'), tenant: t });
    }
    for (const name of [...this.byName.keys()]) if (!seen.has(name)) this.byName.delete(name);
    this.keys = keys;
    if (specs.length) {
      this.anonymous = undefined;
    } else {
      this.anonymous ??= { name: ANONYMOUS_TENANT, salt: '', maxInFlight: undefined, inFlight: 0 };
      this.anonymous.salt = deriveSalt(secret, ANONYMOUS_TENANT);
    }
  }

  /** The tenant of an `Authorization` header, or undefined (401). */
  authenticate(authorization: string | undefined): Tenant | undefined {
    if (this.anonymous) return this.anonymous;
    if (authorization === undefined) return undefined;
    // First in, first out: a key that falls out is hashed once more, cheaper than keeping
    // the cache in recency order on every request.
    const cached = this.authCache.get(authorization);
    if (cached) return cached;
    if (authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
    const key = authorization.slice(7).trim();
    if (!key) return undefined;
    const digest = createHash('sha256').update(key).digest();
    // Every hash is compared, whatever matched earlier: the time taken says nothing.
    let found: Tenant | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, digest)) found = k.tenant;
    if (found) {
      if (this.authCache.size >= AUTH_CACHE_MAX) this.authCache.delete(this.authCache.keys().next().value!);
      this.authCache.set(authorization, found);
    }
    return found;
  }

  get(name: string): Tenant | undefined {
    return this.byName.get(name) ?? (this.anonymous?.name === name ? this.anonymous : undefined);
  }

  list(): Tenant[] {
    return this.anonymous ? [this.anonymous] : [...this.byName.values()];
  }
}

/** `--tenant NAME=sha256:HEX` (repeatable; the same name again adds a key). */
export function parseTenantFlags(flags: readonly string[]): TenantSpec[] {
  const byName = new Map<string, TenantSpec>();
  for (const f of flags) {
    const eq = f.indexOf('=');
    const name = eq > 0 ? f.slice(0, eq) : '';
    const hash = eq > 0 ? f.slice(eq + 1) : '';
    if (!name || !HASH_RE.test(hash)) {
      throw new TenantConfigError(TenantErrorCode.INVALID_TENANT, `--tenant wants NAME=sha256:<64 hex> (hash a key with: printf %s KEY | sha256sum), not "${f}"`);
    }
    const t = byName.get(name) ?? { name, apiKeyHashes: [] };
    t.apiKeyHashes.push(hash);
    byName.set(name, t);
  }
  return [...byName.values()];
}

/** A YAML (or JSON) list of tenants shaped like a ContentRouter's `spec.tenants`, or `{tenants: [...]}`. */
export function loadTenantsFile(path: string): TenantSpec[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TenantConfigError(TenantErrorCode.TENANTS_FILE, `cannot read tenants file ${path}: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { tenants?: unknown } | null)?.tenants;
  if (!Array.isArray(list)) throw new TenantConfigError(TenantErrorCode.TENANTS_FILE, `${path}: expected a list of tenants (name, apiKeyHashes, cacheSalt, maxInFlight)`);
  return list as TenantSpec[];
}
