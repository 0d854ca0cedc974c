// Where k8s4ai keeps its state: --data-dir, else $K8S4AI_HOME, else ~/.k8s4ai.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function dataDir(flag?: string): string {
  return resolve(flag ?? process.env.K8S4AI_HOME ?? join(homedir(), '.k8s4ai'));
}

export const kubeconfigPath = (dir: string) => join(dir, 'kubeconfig');
export const tokensPath = (dir: string) => join(dir, 'tokens.json');
export const databasePath = (dir: string) => join(dir, 'k8s4ai.db');
export const pkiDir = (dir: string) => join(dir, 'pki');
export const logPath = (dir: string) => join(dir, 'k8s4ai.log');
/** The secret the API server presents to node agents when it proxies Task logs. */
export const agentProxyTokenPath = (dir: string) => join(dir, 'agent-proxy-token');
