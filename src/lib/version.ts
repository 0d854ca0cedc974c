// Build identity reported by /version and `k8s4ai version`, in the shape kubectl expects.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const K8S4AI_VERSION: string = pkg.version;

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: `v1.32.0-k8s4ai.${K8S4AI_VERSION}`,
  gitCommit: 'k8s4ai',
  gitTreeState: 'clean',
  buildDate: '2026-11-26T00:00:00Z',
  goVersion: `node${process.versions.node}`,
  compiler: 'tsx',
  platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
} as const;
