// ContentRouters as processes: `up` runs one `k8s4ai router --content-router NS/NAME` per
// ContentRouter, the data plane being a process of its own (in production several replicas
// run behind a plain load balancer). The router reads its configuration from the
// ContentRouter and its backends from the InferenceService's Tasks and writes its status;
// this controller only starts it, starts it again when it dies (with backoff), and stops it
// (SIGTERM: it drains) when the ContentRouter goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ContentRouter } from '../api/kinds/index.ts';
import type { Registry } from '../apiserver/registry.ts';
import { watchKind, type LocalInformer } from './informer.ts';

const BIN = fileURLToPath(new URL('../../bin/k8s4ai.js', import.meta.url));
const RESTART_INITIAL_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** The router drains for up to ROUTER_DRAIN; SIGKILL only after that. */
const ROUTER_DRAIN = '20s';
const STOP_GRACE_MS = 25_000;

interface RouterProcess {
  key: string;
  uid: string;
  child?: ChildProcess;
  failures: number;
  restartTimer?: NodeJS.Timeout;
  stopping: boolean;
}

export interface ContentRouterControllerOptions {
  kubeconfig: string;
  /** Router logs go to `<logDir>/<namespace>_<name>.log`. */
  logDir: string;
}

export class ContentRouterController {
  private informer?: LocalInformer;
  private readonly routers = new Map<string, RouterProcess>();
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly opts: ContentRouterControllerOptions,
  ) {}

  async start(): Promise<void> {
    mkdirSync(this.opts.logDir, { recursive: true });
    this.informer = watchKind(this.registry, ContentRouter, {
      onEvent: (e) => {
        const key = `${e.object.metadata.namespace ?? 'default'}/${e.object.metadata.name}`;
        if (e.type === 'DELETED' || e.object.metadata.deletionTimestamp) void this.stopRouter(key);
        else this.ensure(key, e.object.metadata.uid!);
      },
      onResync: (objects) => {
        const present = new Set(objects.map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`));
        for (const key of this.routers.keys()) if (!present.has(key)) void this.stopRouter(key);
        for (const o of objects) if (!o.metadata.deletionTimestamp) this.ensure(`${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, o.metadata.uid!);
      },
    });
    await this.informer.synced;
  }

  /** Stops every router (they drain) and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.informer?.stop();
    await Promise.all([...this.routers.keys()].map((k) => this.stopRouter(k)));
  }

  /** The router processes by ContentRouter key (tests). */
  pids(): Map<string, number | undefined> {
    return new Map([...this.routers].map(([k, r]) => [k, r.child?.pid]));
  }

  private ensure(key: string, uid: string): void {
    if (this.stopped) return;
    const known = this.routers.get(key);
    if (known && known.uid === uid) return;
    // A ContentRouter made again under the same name gets a fresh process.
    if (known) void this.stopRouter(key);
    const r: RouterProcess = { key, uid, failures: 0, stopping: false };
    this.routers.set(key, r);
    this.launch(r);
  }

  private launch(r: RouterProcess): void {
    if (this.stopped || r.stopping) return;
    const logFile = join(this.opts.logDir, `${r.key.replace('/', '_')}.log`);
    const out = openSync(logFile, 'a');
    const child = spawn(process.execPath, [BIN, 'router', '--content-router', r.key, '--kubeconfig', this.opts.kubeconfig, '--log-file', logFile, '--drain-timeout', ROUTER_DRAIN], {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    r.child = child;
    const started = Date.now();
    this.log.info({ router: r.key, pid: child.pid }, 'router process started');
    child.once('exit', (code, signal) => {
      if (r.child === child) r.child = undefined;
      if (r.stopping || this.stopped) return;
      // A router that ran a while before dying starts again at once; one that keeps dying backs off.
      r.failures = Date.now() - started > 60_000 ? 1 : r.failures + 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_INITIAL_MS * 2 ** (r.failures - 1));
      this.log.warn({ router: r.key, code, signal, restartInMs: delay }, `router process exited; see ${logFile}`);
      r.restartTimer = setTimeout(() => this.launch(r), delay);
      r.restartTimer.unref();
    });
  }

  private async stopRouter(key: string): Promise<void> {
    const r = this.routers.get(key);
    if (!r) return;
    this.routers.delete(key);
    r.stopping = true;
    clearTimeout(r.restartTimer);
    const child = r.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    this.log.info({ router: key }, 'router process stopped');
  }
}
