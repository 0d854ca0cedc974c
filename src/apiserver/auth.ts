// Bearer-token authentication and namespace-scoped authorization. Tokens are stored
// only as SHA-256 hashes (`<data-dir>/tokens.json`); the file is re-read when it changes,
// so `k8s4ai token create` takes effect without a restart.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, statSync, existsSync, renameSync } from 'node:fs';
import { ApiError } from './errors.ts';

export interface TokenEntry {
  /** Who the token belongs to, for logs and audit. */
  user: string;
  sha256: string;
  /** Namespaces the token may use, or ["*"] for the whole cluster (admin). */
  namespaces: string[];
  createdTime?: string;
}

export interface Principal {
  user: string;
  admin: boolean;
  namespaces: ReadonlySet<string>;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
export const generateToken = () => `k8s4ai_${randomBytes(24).toString('base64url')}`;

/** How long a look at the tokens file stays good; a new token works within this time. */
const RECHECK_MS = 1000;

export class TokenAuthenticator {
  private byHash = new Map<string, TokenEntry>();
  private loadedMtime = -1;
  private checkedAt = 0;
  constructor(private readonly file?: string, entries: TokenEntry[] = []) {
    this.index(entries);
  }

  private index(entries: TokenEntry[]): void {
    this.byHash = new Map(entries.map((e) => [e.sha256, e]));
  }

  private refresh(force: boolean): void {
    if (!this.file) return;
    const now = Date.now();
    if (!force && now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    if (!existsSync(this.file)) return;
    const mtime = statSync(this.file).mtimeMs;
    if (mtime === this.loadedMtime) return;
    this.index((JSON.parse(readFileSync(this.file, 'utf8')) as { tokens: TokenEntry[] }).tokens);
    this.loadedMtime = mtime;
  }

  authenticate(authorization: string | undefined): Principal {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new ApiError('Unauthorized', 'Unauthorized: a bearer token is required (see the kubeconfig that `k8s4ai up` wrote)');
    this.refresh(false);
    const digest = hashToken(m[1]!);
    // Looking up a SHA-256 of the token leaks nothing useful through timing: an attacker
    // cannot steer the hash. An unknown token forces one re-read, so new tokens work at once.
    let entry = this.byHash.get(digest);
    if (!entry) {
      this.refresh(true);
      entry = this.byHash.get(digest);
    }
    if (!entry) throw new ApiError('Unauthorized', 'Unauthorized: the bearer token is not valid');
    return { user: entry.user, admin: entry.namespaces.includes('*'), namespaces: new Set(entry.namespaces) };
  }
}

/** Adds a token to the file and returns it in clear text (the only time it is shown). */
export function addToken(file: string, user: string, namespaces: string[]): string {
  const token = generateToken();
  const existing: { tokens: TokenEntry[] } = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { tokens: [] };
  existing.tokens.push({ user, sha256: hashToken(token), namespaces, createdTime: new Date().toISOString() });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(existing, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return token;
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

/**
 * Admin tokens may do anything. A tenant token reads and writes only inside its
 * namespaces; cluster-scoped kinds (nodes, classes, queues) it may read, not write.
 */
export function authorize(p: Principal, req: { verb: Verb; namespace?: string; namespaced: boolean; resource: string; name?: string }): void {
  if (p.admin) return;
  const readOnly = req.verb === 'get' || req.verb === 'list' || req.verb === 'watch';
  if (req.resource === 'namespaces') {
    if (req.verb === 'get' && req.name && p.namespaces.has(req.name)) return;
  } else if (req.namespaced) {
    if (req.namespace && p.namespaces.has(req.namespace)) return;
  } else if (readOnly) {
    return;
  }
  const where = req.namespaced ? (req.namespace ? ` in the namespace "${req.namespace}"` : ' at the cluster scope') : ' at the cluster scope';
  throw new ApiError(
    'Forbidden',
    `${req.resource}${req.name ? ` "${req.name}"` : ''} is forbidden: User "${p.user}" cannot ${req.verb} resource "${req.resource}"${where}`,
    { name: req.name, kind: req.resource },
  );
}
