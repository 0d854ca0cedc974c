// How a command finds the server: --kubeconfig, else $KUBECONFIG, else the data dir's kubeconfig.
import { existsSync } from 'node:fs';
import { ApiClient } from '../client/client.ts';
import { dataDir, kubeconfigPath } from '../lib/paths.ts';

export interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  dataDir?: string;
}

export function kubeconfigFor(opts: GlobalOptions): string {
  if (opts.kubeconfig) return opts.kubeconfig;
  const env = process.env.KUBECONFIG?.split(':')[0];
  const own = kubeconfigPath(dataDir(opts.dataDir));
  if (env && !existsSync(own)) return env;
  return own;
}

export function clientFor(opts: GlobalOptions): ApiClient {
  return ApiClient.fromKubeconfig(kubeconfigFor(opts), opts.context);
}
