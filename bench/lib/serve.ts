// The benchmark's server process: starts the real control plane (the one `k8s4ai up`
// runs) on a free loopback port over plain HTTP, prints one JSON line on stdout
// ({ url, kubeconfig, pid, store }) and serves until SIGTERM/SIGINT or until stdin
// closes (the parent died), then closes the control plane and exits. Exiting through
// process.exit() lets `node --cpu-prof` write its profile.
//
//   node --import tsx bench/lib/serve.ts <storeUrl> <dataDir>

import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/controlplane.ts';
import { createLogger } from '../../src/lib/logger.ts';

const [storeUrl, dataDir] = process.argv.slice(2);
if (!storeUrl || !dataDir) {
  process.stderr.write('usage: serve.ts <storeUrl> <dataDir>\n');
  process.exit(2);
}

const logger = createLogger({ level: process.env.K8S4AI_LOG_LEVEL ?? 'warn', file: join(dataDir, 'server.log') });
let cp: ControlPlane | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(code), 5000);
  force.unref();
  try {
    if (cp) {
      // Open watches keep sockets alive; close() would wait for them.
      cp.server.app.server.closeAllConnections();
      await cp.close();
    }
  } catch (err) {
    process.stderr.write(`serve: close failed: ${(err as Error).message}\n`);
  } finally {
    logger.flush();
    process.exit(code);
  }
}

process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
// The parent holds our stdin open; EOF means it is gone, so don't linger.
process.stdin.on('end', () => void stop(0));
process.stdin.on('error', () => void stop(0));
process.stdin.resume();

try {
  cp = await startControlPlane({
    dataDir,
    port: 0,
    address: '127.0.0.1',
    storeUrl,
    fleetFile: undefined,
    logger,
    insecureHttp: true,
  });
  process.stdout.write(`${JSON.stringify({ url: cp.url, kubeconfig: cp.kubeconfig, pid: process.pid, store: cp.store.name })}\n`);
} catch (err) {
  process.stderr.write(`serve: cannot start the control plane: ${(err as Error).stack ?? String(err)}\n`);
  await stop(1);
}
