// The agent: one per machine. It registers the machine's Node (and the in-node topology it
// discovers), keeps a heartbeat for every node it serves (its own, and in a demo the
// simulated fleet nodes), and runs the Tasks bound to those nodes as real processes through
// the runtime: environment, checkpoint folder and restore, phase and exit code, graceful
// stop when a Task is deleted. It speaks the checkpoint protocol for the gang controller:
// delivers requests (file + SIGUSR1), reports the members' complete manifests, prunes old
// checkpoints. After a restart it finds its processes again from the runtime's records, or
// reports them lost; a Task whose record says it ran is never started a second time.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { KubeObject, Condition } from '../api/meta.ts';
import type { KindDefinition } from '../api/kind.ts';
import { setCondition } from '../api/meta.ts';
import { AcceleratorClass, CheckpointPolicy, GangSchedulingGroup, InferenceService, Node, Task, TopologyDomain } from '../api/kinds/index.ts';
import { LABEL_SERVICE, taskKey } from '../scheduler/controller/binding.ts';
import type { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import { FINISHED_TASK_PHASES, type TaskSpec } from '../api/kinds/task.ts';
import { isNodeReady, type NodeStatus } from '../api/kinds/node.ts';
import type { CheckpointPolicySpec } from '../api/kinds/checkpointpolicy.ts';
import type { GangSchedulingGroupSpec } from '../api/kinds/gangschedulinggroup.ts';
import type { MemberCheckpoint } from '../api/kinds/workload.ts';
import { ApiClient, ClientError } from '../client/client.ts';
import { Informer } from '../client/informer.ts';
import { amount } from '../scheduler/objects.ts';
import { ENV, LISTENING_FILE, listCheckpoints, memberOfTask, writeRequest, type CheckpointRequest } from '../checkpoint/protocol.ts';
import { AGENT_FINALIZER } from '../controllers/nodelifecycle.ts';
import { WorkQueue } from '../controllers/workqueue.ts';
import { LABEL_SIMULATED } from '../fleet/format.ts';
import { K8S4AI_VERSION } from '../lib/version.ts';
import { freePort } from '../lib/net.ts';
import { ProcessRuntime, type ExitInfo, type ProcessRecord } from './runtime/index.ts';
import { memberDir, pruneCheckpoints, stageRestore, CheckpointUnavailableError } from './checkpoints.ts';
import { startAgentServer } from './server.ts';
import { discover } from './discovery/index.ts';
import { ANNOTATION_CHAOS, CHAOS_NODE_KILLED } from './annotations.ts';


/** Complete checkpoints a Task's status lists (the schema's bound). */
const REPORTED_CHECKPOINTS = 16;

export interface AgentOptions {
  client: ApiClient;
  logger: Logger;
  /** Runtime records, logs and scratch space. */
  stateDir: string;
  /** Register this machine as a Node of this name (discovering its GPUs); none when undefined. */
  nodeName?: string;
  /** The leaf (or rack) TopologyDomain this machine sits in. */
  topologyDomain?: string;
  /** Serve the simulated fleet nodes too (what `up` does). */
  serveSimulated?: boolean;
  heartbeatSeconds?: number;
  /** Address and port of the log endpoint (default 127.0.0.1, any free port). */
  address?: string;
  port?: number;
  /** The secret the API server presents when it proxies `k8s4ai logs`. */
  proxyToken: string;
  /** How often members' folders are scanned for new manifests (ms). */
  scanMs?: number;
  /** Nvidia-smi runner, for tests; default runs the binary when present. */
  discoverRun?: Parameters<typeof discover>[0]['run'];
}

const taskSpec = (t: KubeObject) => t.spec as TaskSpec;
const phaseOf = (t: KubeObject) => ((t.status ?? {}) as { phase?: string }).phase ?? 'Pending';

/** What the agent knows of a process it runs for a Task. */
interface Running {
  uid: string;
  key: string;
  node: string;
  gang?: string;
  /** The member's checkpoint folder. */
  dir: string;
  /** Checkpoint requests already delivered. */
  delivered: Set<string>;
  /** Checkpoint ids already reported in the Task's status. */
  reported: string;
  /** A report is being written (the periodic scan and a sync must not interleave theirs). */
  reporting?: boolean;
}

export class Agent {
  readonly runtime: ProcessRuntime;
  private readonly client: ApiClient;
  private readonly log: Logger;
  private readonly opts: AgentOptions;
  private readonly informers: Informer[] = [];
  private nodes!: Informer;
  private tasks!: Informer;
  private gangs!: Informer;
  private policies!: Informer;
  private readonly queue: WorkQueue;
  private readonly running = new Map<string, Running>();
  /** Exits seen for Tasks by uid, until reported. */
  private readonly exits = new Map<string, ExitInfo>();
  /** Runtime records by uid, found on recovery or started here. */
  private readonly records = new Map<string, ProcessRecord>();
  private heartbeatTimer?: NodeJS.Timeout;
  private scanTimer?: NodeJS.Timeout;
  private server?: { url: string; close(): Promise<void> };
  private stopped = false;
  /** Tasks are acted on only once Tasks, gangs and policies are all synced. */
  private ready = false;
  /** Uids whose end has been reported: a stale cached copy must not report them again. */
  private readonly done = new Set<string>();
  /** Uids being stopped (SIGTERM sent, grace running). */
  private readonly stopping = new Set<string>();
  endpoint = '';

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.log = opts.logger;
    this.runtime = new ProcessRuntime({ stateDir: join(opts.stateDir, 'tasks'), logger: opts.logger });
    this.queue = new WorkQueue((key) => this.syncTask(key), opts.logger);
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.stateDir, { recursive: true, mode: 0o700 });
    this.server = await startAgentServer({
      address: this.opts.address ?? '127.0.0.1',
      port: this.opts.port ?? 0,
      token: this.opts.proxyToken,
      logger: this.log,
      resolveLog: (ns, name, { previous }) => {
        const path = this.runtime.logPath(ns, name, { previous });
        if (!path) return undefined;
        return { path, running: () => !previous && this.running.has(`${ns}/${name}`) };
      },
    });
    this.endpoint = this.server.url;
    if (this.opts.nodeName) await this.register(this.opts.nodeName);

    this.runtime.onExit((e) => this.onExit(e));
    for (const r of await this.runtime.recover()) this.records.set(r.uid, r);

    // A node appearing, or coming back from chaos, gets its heartbeat now; the agent's own
    // heartbeat patches come back here as updates and must not start another round.
    this.nodes = this.inform(Node, (node, old) => {
      if (!old || (this.isKilled(old) && !this.isKilled(node))) this.heartbeatSoon();
      if (old && this.isKilled(node) !== this.isKilled(old)) this.requeueNode(node.metadata.name);
    });
    this.policies = this.inform(CheckpointPolicy, () => undefined);
    this.gangs = this.inform(GangSchedulingGroup, (g) => this.onGang(g));
    this.tasks = this.inform(Task, (t) => this.queue.add(taskKey(t)));
    await Promise.all(this.informers.map((i) => i.synced));
    await this.heartbeat();
    // Records of Tasks that no longer exist: their processes must not run on.
    const live = new Set([...this.tasks.cache.values()].map((t) => t.metadata.uid));
    for (const r of this.records.values()) {
      if (!live.has(r.uid)) await this.discard(r.uid, 'its Task no longer exists');
    }
    this.ready = true;
    for (const t of this.tasks.cache.values()) this.queue.add(taskKey(t));
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), (this.opts.heartbeatSeconds ?? 10) * 1000);
    this.scanTimer = setInterval(() => void this.scan(), this.opts.scanMs ?? 1000);
    this.log.info({ endpoint: this.endpoint, nodes: this.served().map((n) => n.metadata.name).length, adopted: this.running.size }, 'agent started');
  }

  /**
   * Stops serving. Processes keep running (they are detached) and are found again by the
   * next agent on this machine, as a kubelet restart leaves containers running.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.scanTimer);
    this.queue.stop();
    for (const i of this.informers) i.stop();
    this.runtime.close?.();
    await this.server?.close();
  }

  private inform(def: KindDefinition, onChange: (o: KubeObject, old?: KubeObject) => void): Informer {
    const informer = new Informer(this.client, def, undefined, {
      add: (o) => onChange(o),
      update: (o, old) => onChange(o, old),
      delete: (o) => onChange(o),
      relist: (objects) => objects.forEach((o) => onChange(o)),
      error: (err) => this.log.debug({ err, kind: def.kind }, 'agent watch error; retrying'),
    });
    this.informers.push(informer.start());
    return informer;
  }

  // ---- nodes -----------------------------------------------------------------------------------

  /** Discovers this machine and creates or refreshes its Node and in-node domains. */
  private async register(nodeName: string): Promise<void> {
    // The cluster's classes, so that discovered GPUs join the class their product name matches.
    const classes = (await this.client.listAll(AcceleratorClass, undefined)).items.map((c) => ({ name: c.metadata.name, spec: c.spec as AcceleratorClassSpec }));
    const found = await discover({ nodeName, topologyDomain: this.opts.topologyDomain, dataDir: this.opts.stateDir, acceleratorClasses: classes, ...(this.opts.discoverRun ? { run: this.opts.discoverRun } : {}) });
    for (const warning of found.warnings) this.log.warn({ node: nodeName }, `discovery: ${warning}`);
    for (const d of found.domains) {
      await this.client.create(TopologyDomain, undefined, d).catch((err: unknown) => {
        if (!(err instanceof ClientError && err.statusCode === 409)) throw err;
      });
    }
    const status = { ...(found.node.status as NodeStatus), nodeInfo: { ...(found.node.status as NodeStatus).nodeInfo, agentVersion: K8S4AI_VERSION } };
    try {
      await this.client.create(Node, undefined, { ...found.node, status: undefined });
    } catch (err) {
      if (!(err instanceof ClientError && err.statusCode === 409)) throw err;
    }
    // Capacity and devices are the agent's to say, on every start.
    await this.client.patch(Node, undefined, nodeName, { status: { ...status, heartbeatTime: new Date().toISOString(), agentEndpoint: this.endpoint } }, 'application/merge-patch+json', 'status');
    this.log.info({ node: nodeName, gpus: status.gpus?.length ?? 0 }, 'node registered');
  }

  private serves(node: KubeObject | undefined): boolean {
    if (!node) return false;
    if (node.metadata.name === this.opts.nodeName) return true;
    return Boolean(this.opts.serveSimulated && node.metadata.labels?.[LABEL_SIMULATED] === 'true');
  }

  /** The informer keys cluster-scoped objects as `/<name>`. */
  private node(name: string): KubeObject | undefined {
    return this.nodes.cache.get(`/${name}`);
  }

  private served(): KubeObject[] {
    return [...this.nodes.cache.values()].filter((n) => this.serves(n));
  }

  private isKilled(node: KubeObject | undefined): boolean {
    return node?.metadata.annotations?.[ANNOTATION_CHAOS] === CHAOS_NODE_KILLED;
  }

  /** Every Task bound to `node` is looked at again (it was killed or revived). */
  private requeueNode(node: string): void {
    for (const t of this.tasks?.cache.values() ?? []) if (taskSpec(t).nodeName === node) this.queue.add(taskKey(t));
  }

  private heartbeatPending?: NodeJS.Timeout;
  /** A node appeared, or came back from chaos: beat soon rather than at the next tick. */
  private heartbeatSoon(): void {
    if (this.heartbeatPending || this.stopped) return;
    this.heartbeatPending = setTimeout(() => {
      this.heartbeatPending = undefined;
      void this.heartbeat();
    }, 50);
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    const now = new Date();
    await Promise.all(this.served().map(async (node) => {
      const name = node.metadata.name;
      if (this.isKilled(node)) return;
      const st = (node.status ?? {}) as NodeStatus;
      const conditions = st.conditions as Condition[] | undefined;
      const status: Record<string, unknown> = { heartbeatTime: now.toISOString() };
      if (st.agentEndpoint !== this.endpoint) status.agentEndpoint = this.endpoint;
      if (!isNodeReady(node)) {
        status.conditions = setCondition(conditions, { type: 'Ready', status: 'True', reason: 'AgentReady', message: 'the agent is posting heartbeats' }, now);
      }
      try {
        await this.client.patch(Node, undefined, name, { status }, 'application/merge-patch+json', 'status');
      } catch (err) {
        this.log.warn({ err, node: name }, 'heartbeat failed');
      }
    }));
  }

  // ---- tasks -----------------------------------------------------------------------------------

  private onGang(gang: KubeObject): void {
    // Checkpoint requests and retention travel on the gang's status.
    for (const r of this.running.values()) {
      if (r.gang === gang.metadata.name && r.key.startsWith(`${gang.metadata.namespace ?? 'default'}/`)) this.queue.add(r.key);
    }
  }

  private gangOf(t: KubeObject): KubeObject | undefined {
    const g = taskSpec(t).gangName;
    return g ? this.gangs.cache.get(`${t.metadata.namespace ?? 'default'}/${g}`) : undefined;
  }

  private policyOf(gang: KubeObject | undefined): CheckpointPolicySpec | undefined {
    const name = (gang?.spec as GangSchedulingGroupSpec | undefined)?.checkpointPolicyName;
    return name ? (this.policies.cache.get(`${gang!.metadata.namespace ?? 'default'}/${name}`)?.spec as CheckpointPolicySpec | undefined) : undefined;
  }

  /** Brings one Task's process in line with its object. */
  private async syncTask(key: string): Promise<undefined> {
    if (!this.ready) return undefined;
    const task = this.tasks.cache.get(key);
    const mine = this.running.get(key);
    if (!task) {
      // Deleted outright (no finalizer of ours): nothing may keep running for it.
      if (mine) await this.discard(mine.uid, 'its Task was deleted');
      return undefined;
    }
    const spec = taskSpec(task);
    const node = spec.nodeName ? this.node(spec.nodeName) : undefined;
    if (!this.serves(node)) {
      // Its node is gone or no longer ours: nothing of it may run on unmanaged.
      if (mine) await this.discard(mine.uid, `node ${spec.nodeName} is no longer served here`);
      return undefined;
    }
    const uid = task.metadata.uid!;
    if (mine && mine.uid !== uid) await this.discard(mine.uid, 'a newer Task took its name');
    const phase = phaseOf(task);

    if (this.isKilled(node)) {
      // A dead machine runs nothing and reports nothing.
      if (this.running.has(key) || this.records.get(uid)?.state === 'running') {
        this.running.delete(key);
        await this.runtime.kill(uid).catch(() => undefined);
      }
      this.exits.delete(uid);
      this.records.delete(uid);
      this.forget(uid);
      this.done.add(uid);
      return undefined;
    }
    if (task.metadata.deletionTimestamp) {
      await this.terminate(task);
      return undefined;
    }
    if (this.done.has(uid)) return undefined;
    const exit = this.exits.get(uid);
    if (exit) {
      await this.reportExit(task, exit);
      return undefined;
    }
    if (FINISHED_TASK_PHASES.has(phase)) {
      // Failed by the control plane (its node was judged lost while we were away): stop it.
      if (this.running.has(key) || this.records.get(uid)?.state === 'running') await this.discard(uid, `its Task is ${phase}`);
      return undefined;
    }
    const record = this.records.get(uid);
    if (record) {
      if (record.state === 'running') await this.adopt(task, record);
      // Finished while the agent was away: its exit is reported now.
      else if (record.exit && record.exit.reason !== 'Lost') await this.reportExit(task, record.exit);
      else await this.reportLost(task, record.exit?.message ?? 'the agent restarted and its process was gone, leaving no exit status');
      return undefined;
    }
    if (phase === 'Running') {
      // Running by its status, yet no record on this machine: it cannot be found again.
      await this.reportLost(task, 'no record of its process on this machine (the agent\'s state was lost)');
      return undefined;
    }
    if (phase === 'Bound') await this.startTask(task);
    const r = this.running.get(key);
    if (r) await this.speakProtocol(task, r);
    return undefined;
  }

  private env(task: KubeObject, dir: string, restore: string | undefined): Record<string, string> {
    const spec = taskSpec(task);
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('K8S4AI_')) base[k] = v;
    const devices = spec.devices ?? [];
    const rdzvNode = spec.rendezvous ? this.node(spec.rendezvous.node) : undefined;
    const env: Record<string, string> = {
      ...base,
      RANK: String(spec.index ?? 0),
      WORLD_SIZE: String(spec.worldSize ?? 1),
      LOCAL_RANK: String(spec.localRank ?? 0),
      MASTER_ADDR: this.addressOf(rdzvNode),
      MASTER_PORT: String(spec.rendezvous?.port ?? 29500),
      // CUDA numbers devices fastest-first unless told to follow the bus order nvidia-smi uses.
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      CUDA_VISIBLE_DEVICES: devices.map((d) => (d.migProfile && d.uuid ? d.uuid : String(d.index))).join(','),
      [ENV.checkpointDir]: dir,
      [ENV.task]: taskKey(task),
    };
    if (restore) env[ENV.restoreCheckpoint] = restore;
    for (const e of spec.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    return env;
  }

  /**
   * Where a serving member (an InferenceService replica's rank 0) listens: the service's
   * port on a real node; on a simulated node, where many replicas share this machine, a
   * free port of its own. The process learns it from PORT; routers from status.endpoint.
   */
  private async servingEndpoint(task: KubeObject): Promise<{ port: number; endpoint: string } | undefined> {
    const service = task.metadata.labels?.[LABEL_SERVICE];
    if (!service || (taskSpec(task).index ?? 0) !== 0) return undefined;
    const node = this.node(taskSpec(task).nodeName!);
    if (node?.metadata.labels?.[LABEL_SIMULATED] === 'true') {
      const port = await freePort();
      return { port, endpoint: `http://127.0.0.1:${port}` };
    }
    const svc = await this.client.get(InferenceService, task.metadata.namespace, service).catch(() => undefined);
    const port = (svc?.spec as { port?: number } | undefined)?.port ?? 8000;
    return { port, endpoint: `http://${this.addressOf(node)}:${port}` };
  }

  /** Where a node's processes can be reached; simulated nodes all live on this machine. */
  private addressOf(node: KubeObject | undefined): string {
    if (!node || node.metadata.labels?.[LABEL_SIMULATED] === 'true') return '127.0.0.1';
    const addresses = ((node.status ?? {}) as NodeStatus).addresses ?? [];
    return addresses.find((a) => a.type === 'InternalIP')?.address ?? addresses[0]?.address ?? '127.0.0.1';
  }

  private async startTask(task: KubeObject): Promise<void> {
    const spec = taskSpec(task);
    const key = taskKey(task);
    const uid = task.metadata.uid!;
    const gang = this.gangOf(task);
    const gangName = spec.gangName ?? task.metadata.name;
    const policy = this.policyOf(gang);
    const dir = memberDir(task, gangName, spec.nodeName!, policy, join(this.opts.stateDir, 'scratch'));
    let restore: string | undefined;
    try {
      mkdirSync(dir, { recursive: true });
      // The last attempt's process listened; this one has not yet.
      rmSync(join(dir, LISTENING_FILE), { force: true });
      restore = stageRestore(gang, memberOfTask(task.metadata.name, gangName), dir);
    } catch (err) {
      const reason = err instanceof CheckpointUnavailableError ? 'CheckpointUnavailable' : 'CheckpointDirUnavailable';
      await this.patchStatus(task, { phase: 'Failed', reason, message: (err as Error).message, finishTime: new Date().toISOString() });
      return;
    }
    // The finalizer first: from here on, deleting the Task waits for its process to stop.
    await this.client.patch(Task, task.metadata.namespace, task.metadata.name, { metadata: { finalizers: [...(task.metadata.finalizers ?? []).filter((f) => f !== AGENT_FINALIZER), AGENT_FINALIZER], resourceVersion: task.metadata.resourceVersion } });
    const r = spec.resources ?? {};
    const serving = await this.servingEndpoint(task);
    const env = this.env(task, dir, restore);
    if (serving) env.PORT = String(serving.port);
    let record: ProcessRecord;
    try {
      record = await this.runtime.start({
        namespace: task.metadata.namespace ?? 'default',
        name: task.metadata.name,
        uid,
        attempt: spec.attempt ?? 0,
        argv: [...spec.command, ...(spec.args ?? [])],
        // Relative paths in a command mean the agent's folder (the repository, under `npm start`).
        cwd: spec.workingDir ?? process.cwd(),
        env,
        limits: {
          ...(r.memory ? { memoryBytes: amount(r.memory) } : {}),
          ...(r.cpu ? { cpuMilli: Math.round(amount(r.cpu) * 1000) } : {}),
        },
      });
    } catch (err) {
      // Not a workload's failure to run (that comes back as an exit) but ours to start it:
      // the Task fails once, rather than staying Bound while the start is retried forever.
      this.done.add(uid);
      await this.patchStatus(task, { phase: 'Failed', reason: 'CannotRun', message: `the agent could not start the process: ${(err as Error).message}`, finishTime: new Date().toISOString() });
      await this.release({ ...task, metadata: { ...task.metadata, finalizers: [...(task.metadata.finalizers ?? []), AGENT_FINALIZER] } });
      return;
    }
    this.records.set(uid, record);
    if (record.state !== 'running') return; // the exit (cannot run) is reported by onExit
    this.running.set(key, { uid, key, node: spec.nodeName!, gang: spec.gangName, dir, delivered: new Set(), reported: '' });
    await this.patchStatus(task, {
      phase: 'Running',
      pid: record.pid,
      startTime: record.startedAt,
      logPath: record.logPath,
      ...(serving ? { endpoint: serving.endpoint } : {}),
      ...(restore ? { message: `resumed from checkpoint ${restore}` } : {}),
      ...(record.limitsNote ? { message: `${restore ? `resumed from checkpoint ${restore}; ` : ''}${record.limitsNote}` } : {}),
    });
    this.log.info({ task: key, pid: record.pid, node: spec.nodeName, restore }, 'task started');
  }

  /** A process found alive after a restart: watched again, never started twice. */
  private async adopt(task: KubeObject, record: ProcessRecord): Promise<void> {
    const key = taskKey(task);
    if (!this.running.has(key)) {
      const spec = taskSpec(task);
      const gangName = spec.gangName ?? task.metadata.name;
      const dir = memberDir(task, gangName, spec.nodeName!, this.policyOf(this.gangOf(task)), join(this.opts.stateDir, 'scratch'));
      this.running.set(key, { uid: record.uid, key, node: spec.nodeName!, gang: spec.gangName, dir, delivered: new Set(), reported: '' });
      this.log.info({ task: key, pid: record.pid }, 'task found again after an agent restart');
    }
    if (phaseOf(task) !== 'Running') await this.patchStatus(task, { phase: 'Running', pid: record.pid, startTime: record.startedAt, logPath: record.logPath });
    await this.speakProtocol(task, this.running.get(key)!);
  }

  private onExit(e: ExitInfo): void {
    this.exits.set(e.uid, e);
    const rec = this.records.get(e.uid);
    if (rec) {
      rec.state = e.reason === 'Lost' ? 'lost' : 'exited';
      rec.exit = e;
    }
    this.queue.add(`${e.namespace}/${e.name}`);
  }

  private async reportExit(task: KubeObject, e: ExitInfo): Promise<void> {
    const key = taskKey(task);
    const r = this.running.get(key);
    if (r) {
      // A last look for manifests written just before the exit.
      await this.reportCheckpoints(task, r).catch(() => undefined);
      this.running.delete(key);
    }
    if (!FINISHED_TASK_PHASES.has(phaseOf(task))) {
      const ok = e.reason === 'Completed';
      await this.patchStatus(task, {
        phase: ok ? 'Succeeded' : e.reason === 'Lost' ? 'Lost' : 'Failed',
        reason: e.reason,
        ...(e.exitCode !== undefined && e.exitCode !== null ? { exitCode: e.exitCode } : {}),
        ...(e.signal ? { signal: e.signal, exitCode: e.exitCode ?? 128 + signalNumber(e.signal) } : {}),
        ...(e.message ? { message: e.message } : {}),
        finishTime: e.finishedAt,
      });
      this.log.info({ task: key, exitCode: e.exitCode, signal: e.signal, reason: e.reason }, 'task exited');
    }
    this.done.add(e.uid);
    await this.release(task);
    this.exits.delete(e.uid);
    this.forget(e.uid);
    this.records.delete(e.uid);
  }

  /** Drops the runtime's record of a finished instance (its logs stay for `logs --previous`). */
  private forget(uid: string): void {
    try {
      this.runtime.remove(uid);
    } catch (err) {
      this.log.debug({ err, uid }, 'runtime record kept: the instance still runs');
    }
  }

  private async reportLost(task: KubeObject, message: string): Promise<void> {
    this.done.add(task.metadata.uid!);
    this.running.delete(taskKey(task));
    this.records.delete(task.metadata.uid!);
    this.forget(task.metadata.uid!);
    await this.patchStatus(task, { phase: 'Lost', reason: 'Lost', message, finishTime: new Date().toISOString() });
    await this.release(task);
  }

  /**
   * A Task being deleted: its process gets SIGTERM and its grace period, then SIGKILL; the
   * record goes once nothing runs. The stop runs beside the queue, so one member's grace
   * period never holds up the other Tasks of this machine; its end queues the Task again.
   */
  private async terminate(task: KubeObject): Promise<void> {
    const key = taskKey(task);
    const uid = task.metadata.uid!;
    if (this.records.get(uid)?.state === 'running') {
      if (!this.stopping.has(uid)) {
        this.stopping.add(uid);
        const grace = taskSpec(task).terminationGracePeriodSeconds ?? 30;
        void this.runtime.stop(uid, grace)
          .catch(() => this.runtime.kill(uid).catch(() => undefined))
          .finally(() => {
            this.stopping.delete(uid);
            const rec = this.records.get(uid);
            if (rec?.state === 'running') rec.state = 'exited';
            this.queue.add(key);
          });
      }
      return;
    }
    this.running.delete(key);
    const exit = this.exits.get(uid) ?? this.records.get(uid)?.exit;
    if (exit && !this.done.has(uid) && !FINISHED_TASK_PHASES.has(phaseOf(task))) {
      await this.patchStatus(task, {
        phase: exit.reason === 'Completed' ? 'Succeeded' : 'Failed',
        reason: 'Stopped',
        message: `stopped by the agent (${exit.signal ?? `exit ${exit.exitCode}`})`,
        ...(exit.exitCode !== undefined && exit.exitCode !== null ? { exitCode: exit.exitCode } : {}),
        ...(exit.signal ? { signal: exit.signal } : {}),
        finishTime: exit.finishedAt,
      }).catch(() => undefined);
    }
    this.done.add(uid);
    this.exits.delete(uid);
    this.forget(uid);
    this.records.delete(uid);
    await this.release(task);
  }


  /** Kills and forgets a process no Task wants any more. */
  private async discard(uid: string, why: string): Promise<void> {
    for (const [key, r] of this.running) if (r.uid === uid) this.running.delete(key);
    const rec = this.records.get(uid);
    if (rec?.state === 'running') {
      this.log.warn({ uid, why }, 'stopping a process that must not run');
      await this.runtime.stop(uid, 5).catch(() => this.runtime.kill(uid).catch(() => undefined));
    }
    this.records.delete(uid);
    this.exits.delete(uid);
    this.forget(uid);
  }

  /** Drops the agent's finalizer: nothing of the Task runs any more. */
  private async release(task: KubeObject): Promise<void> {
    const fin = task.metadata.finalizers ?? [];
    if (!fin.includes(AGENT_FINALIZER)) return;
    await this.client.patch(Task, task.metadata.namespace, task.metadata.name, { metadata: { finalizers: fin.filter((f) => f !== AGENT_FINALIZER) } }).catch((err: unknown) => {
      if (!(err instanceof ClientError && err.statusCode === 404)) throw err;
    });
  }

  private async patchStatus(task: KubeObject, status: Record<string, unknown>): Promise<void> {
    try {
      await this.client.patch(Task, task.metadata.namespace, task.metadata.name, { status }, 'application/merge-patch+json', 'status');
    } catch (err) {
      if (!(err instanceof ClientError && err.statusCode === 404)) throw err;
    }
  }

  // ---- the checkpoint protocol -------------------------------------------------------------------

  private async speakProtocol(task: KubeObject, r: Running): Promise<void> {
    const gang = this.gangOf(task);
    const req = ((gang?.status ?? {}) as { checkpointRequest?: CheckpointRequest }).checkpointRequest;
    if (req && !r.delivered.has(req.id)) {
      writeRequest(r.dir, req);
      r.delivered.add(req.id);
      if (existsSync(join(r.dir, LISTENING_FILE))) void this.runtime.signal(r.uid, 'SIGUSR1');
      this.log.info({ task: r.key, checkpoint: req.id, reason: req.reason }, 'checkpoint requested');
    }
    const removed = pruneCheckpoints(gang, r.dir);
    if (removed.length) this.log.info({ task: r.key, removed }, 'old checkpoints deleted');
    await this.reportCheckpoints(task, r);
  }

  /** Reports the member's complete checkpoints when they changed. */
  private async reportCheckpoints(task: KubeObject, r: Running): Promise<void> {
    if (r.reporting) return; // the next scan looks again
    r.reporting = true;
    try {
      const found = listCheckpoints(r.dir).slice(-REPORTED_CHECKPOINTS);
      const signature = found.map((c) => c.id).join(',');
      if (signature === r.reported) return;
      const checkpoints: MemberCheckpoint[] = found.map((c) => ({ id: c.id, step: c.step, sizeBytes: c.sizeBytes, files: c.files, time: c.time || new Date().toISOString(), node: r.node, path: c.path }));
      await this.patchStatus(task, { checkpoints });
      r.reported = signature;
    } finally {
      r.reporting = false;
    }
  }

  /** Periodic look into running members' folders for new manifests. */
  private async scan(): Promise<void> {
    for (const r of [...this.running.values()]) {
      const task = this.tasks.cache.get(r.key);
      if (!task || task.metadata.uid !== r.uid) continue;
      await this.reportCheckpoints(task, r).catch((err: unknown) => this.log.warn({ err, task: r.key }, 'could not report checkpoints'));
    }
  }
}


/** The shell's exit code for a process ended by `signal`: 128 + its number (SIGKILL → 137). */
const signalNumber = (signal: string) => (osConstants.signals as Record<string, number>)[signal] ?? 0;
