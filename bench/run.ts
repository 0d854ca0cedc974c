// Benchmarks: `npm run bench -- <name> [flags]` or `npx k8s4ai bench <name> [flags]`.
// Each prints a table on stdout (progress on stderr) and writes a JSON report under
// bench/results/. They are measurements, never tests.
import { fileURLToPath } from 'node:url';

export interface Benchmark {
  description: string;
  run(args: string[]): Promise<void>;
}

/** The one table of benchmarks. */
export const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  api: async () => ({ description: 'API server throughput, list and watch latency on SQLite and etcd', run: (await import('./api-main.ts')).run }),
  checkpoint: async () => ({ description: 'goodput of a 16,384-GPU job under Llama 3 failure rates: auto checkpoint interval vs fixed ones', run: (await import('./checkpoint.ts')).run }),
  proxy: async () => ({ description: 'the router\'s added latency and throughput on loopback, against direct access and nginx', run: (await import('./proxy.ts')).run }),
  router: async () => ({ description: 'prefix-cache-aware routing policies on the Mooncake trace: hit rates, balance and TTFT against simulated replicas', run: (await import('./router.ts')).run }),
  placement: async () => ({ description: 'placement quality against FGD (USENIX ATC 2023) on the Alibaba openb traces', run: (await import('./placement.ts')).run }),
  scale: async () => ({ description: 'gang placement throughput and latency on a 10,000-node, 80,000-GPU fleet', run: (await import('./scale.ts')).run }),
  topology: async () => ({ description: 'topology quality of gang placement (k8s4ai vs a topology-blind spread) in the simulator', run: (await import('./topology.ts')).run }),
};

export function usage(): string {
  return `usage: npm run bench -- <name> [options]   (or: npx k8s4ai bench <name> [options])\n\nbenchmarks: ${Object.keys(BENCHMARKS).join(', ')}\n(each takes --help)\n`;
}

export async function runBenchmark(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help') {
    process.stdout.write(usage());
    return;
  }
  const load = BENCHMARKS[name];
  if (!load) {
    process.stderr.write(`unknown benchmark "${name}"\n\n${usage()}`);
    process.exit(2);
  }
  await (await load()).run(rest);
}

// Ctrl-C: exit through process.exit so the 'exit' handlers kill servers and etcd.
function exitOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping\n`);
      process.exit(130);
    });
  }
}

export async function main(argv: string[]): Promise<void> {
  exitOnSignals();
  try {
    await runBenchmark(argv);
  } catch (err) {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? (err as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
