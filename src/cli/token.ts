// `k8s4ai token create`: a bearer token bound to namespaces (or the whole cluster),
// stored hashed in the data dir; `k8s4ai kubeconfig`: a kubeconfig for a token.
import { readFileSync } from 'node:fs';
import { addToken } from '../apiserver/auth.ts';
import { renderKubeconfig, readKubeconfig } from '../lib/kubeconfig.ts';
import { dataDir, kubeconfigPath, tokensPath } from '../lib/paths.ts';
import { CliError } from './errors.ts';

export function tokenCreate(user: string, opts: { namespace?: string[]; admin?: boolean; dataDir?: string }): void {
  const namespaces = opts.admin ? ['*'] : (opts.namespace ?? []);
  if (!namespaces.length) throw new CliError('give --namespace NS (repeatable) for a tenant token, or --admin for a cluster-wide one');
  const token = addToken(tokensPath(dataDir(opts.dataDir)), user, namespaces);
  console.log(token);
}

export function kubeconfig(opts: { token?: string; namespace?: string; dataDir?: string }): void {
  const own = kubeconfigPath(dataDir(opts.dataDir));
  if (!opts.token && !opts.namespace) {
    try {
      process.stdout.write(readFileSync(own, 'utf8'));
    } catch {
      throw new CliError(`no kubeconfig at ${own}: run \`k8s4ai up\` first`);
    }
    return;
  }
  const base = readKubeconfig(own);
  process.stdout.write(
    renderKubeconfig({ server: base.server, token: opts.token ?? base.token ?? '', caPem: base.caPem, namespace: opts.namespace ?? base.namespace, user: opts.token ? 'tenant' : 'admin' }),
  );
}
