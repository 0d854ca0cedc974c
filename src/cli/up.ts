// `k8s4ai up`: the whole control plane on this machine, with the demo fleet.
import { relative } from 'node:path';
import { startControlPlane } from '../controlplane/controlplane.ts';
import { FLEET_DEMO_PATH } from '../fleet/index.ts';
import { createLogger } from '../lib/logger.ts';
import { dataDir, logPath } from '../lib/paths.ts';

export interface UpOptions {
  port: string;
  address: string;
  dataDir?: string;
  store?: string;
  fleet: string;
  logLevel?: string;
  logFile?: string;
  insecureHttp?: boolean;
  /** commander's --no-agent. */
  agent?: boolean;
  nodeName?: string;
  nodeGrace?: string;
}

export async function up(opts: UpOptions): Promise<void> {
  const dir = dataDir(opts.dataDir);
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, not "${opts.port}"`);
  const logFile = opts.logFile ?? logPath(dir);
  const logger = createLogger({ level: opts.logLevel, file: logFile });
  const fleetFile = opts.fleet === 'none' ? undefined : opts.fleet === 'demo' ? FLEET_DEMO_PATH : opts.fleet;
  const nodeGraceSeconds = opts.nodeGrace === undefined ? undefined : Number(opts.nodeGrace);
  if (nodeGraceSeconds !== undefined && !(nodeGraceSeconds > 0)) throw new Error(`--node-grace must be a number of seconds > 0, not "${opts.nodeGrace}"`);
  const cp = await startControlPlane({
    dataDir: dir, port, address: opts.address, storeUrl: opts.store, fleetFile, logger, insecureHttp: opts.insecureHttp, nodeGraceSeconds,
    ...(opts.agent === false ? {} : { agent: { nodeName: opts.nodeName } }),
    routers: true,
  });

  const kc = cp.kubeconfig;
  const fleetLine = fleetFile
    ? `fleet      ${relative(process.cwd(), fleetFile) || fleetFile} (${cp.fleetCreated ? `${cp.fleetCreated} objects registered` : `${cp.fleetTotal} objects, already registered`})`
    : 'fleet      none';
  process.stdout.write(
    [
      `k8s4ai control plane is up at ${cp.url}`,
      `  store      ${cp.store.name} (${opts.store ?? dir})`,
      `  ${fleetLine}`,
      `  kubeconfig ${kc}`,
      `  logs       ${logFile}`,
      `  agent      ${cp.agent ? `${cp.agent.endpoint} (this machine${cp.fleetTotal ? ' and the simulated fleet nodes' : ''})` : 'none (--no-agent)'}`,
      '',
      'Try:',
      `  kubectl --kubeconfig ${kc} get nodes.k8s4ai.io`,
      `  npx k8s4ai get nodes`,
      `  npx k8s4ai apply -f examples/training/gang-checkpoint.yaml`,
      `  kubectl --kubeconfig ${kc} get gangs,tasks`,
      `  npx k8s4ai logs train-demo-worker-0 -f`,
      '',
      'Ctrl-C stops it; everything is kept for the next `up`.',
      '',
    ].join('\n'),
  );

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`\n${signal}: stopping…\n`);
      void cp.close().then(() => {
        logger.flush();
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
