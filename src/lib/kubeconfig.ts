// Kubeconfig files, in the shape kubectl and @kubernetes/client-node read.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { parse, stringify } from 'yaml';

export interface KubeconfigInput {
  server: string;
  token: string;
  /** PEM of the CA that signed the server's certificate (https servers). */
  caPem?: string;
  namespace?: string;
  user?: string;
  name?: string;
}

export function renderKubeconfig(k: KubeconfigInput): string {
  const name = k.name ?? 'k8s4ai';
  const user = k.user ?? 'admin';
  const cluster: Record<string, unknown> = { server: k.server };
  if (k.caPem) cluster['certificate-authority-data'] = Buffer.from(k.caPem).toString('base64');
  // client-node refuses plain http unless told to skip TLS checks; kubectl accepts it too.
  else cluster['insecure-skip-tls-verify'] = true;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name: user, user: { token: k.token } }],
    contexts: [{ name, context: { cluster: name, user, namespace: k.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, k: KubeconfigInput): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, renderKubeconfig(k), { mode: 0o600 });
  renameSync(tmp, path);
}

export interface ResolvedKubeconfig {
  server: string;
  token?: string;
  caPem?: string;
  insecureSkipTlsVerify: boolean;
  namespace: string;
  context: string;
}

interface KubeconfigFile {
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string; 'insecure-skip-tls-verify'?: boolean } }[];
  users?: { name: string; user: { token?: string } }[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  'current-context'?: string;
}

export class KubeconfigError extends Error {
  readonly code = 'K8S4AI_KUBECONFIG';
}

/** Reads the current context of a kubeconfig file. */
export function readKubeconfig(path: string, contextName?: string): ResolvedKubeconfig {
  let doc: KubeconfigFile;
  try {
    doc = parse(readFileSync(path, 'utf8')) as KubeconfigFile;
  } catch (err) {
    throw new KubeconfigError(`cannot read kubeconfig ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (is `k8s4ai up` running? pass --kubeconfig)' : (err as Error).message}`);
  }
  const ctxName = contextName ?? doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === ctxName);
  if (!ctx) throw new KubeconfigError(`kubeconfig ${path} has no context "${ctxName ?? ''}"`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.context.cluster)?.cluster;
  if (!cluster) throw new KubeconfigError(`kubeconfig ${path}: context "${ctxName}" names a cluster "${ctx.context.cluster}" that is not in the file`);
  const user = doc.users?.find((u) => u.name === ctx.context.user)?.user;
  const caPem = cluster['certificate-authority-data']
    ? Buffer.from(cluster['certificate-authority-data'], 'base64').toString()
    : cluster['certificate-authority']
      ? readFileSync(cluster['certificate-authority'], 'utf8')
      : undefined;
  return {
    server: cluster.server.replace(/\/$/, ''),
    token: user?.token,
    caPem,
    insecureSkipTlsVerify: Boolean(cluster['insecure-skip-tls-verify']),
    namespace: ctx.context.namespace ?? 'default',
    context: ctxName!,
  };
}
