// The scheduler as the control plane runs it. Informers keep the ClusterCache current:
// AcceleratorClasses, TopologyDomains and Nodes shape it, and every bound Task holds its
// devices in it (so a restart rebuilds exactly what was allocated, from the Tasks alone).
// Pending GangSchedulingGroups wait in a queue; one loop takes them one at a time in the
// profile's order, asks the framework for a whole-gang placement, and binds it: every
// member Task created and the gang's status set, in ONE store transaction guarded by the
// gang's resourceVersion, so a crash leaves all of the gang bound or none of it. A gang
// that fits nowhere says why (condition Scheduled=False and a Warning Event, written when
// the reason changes) and waits for the cluster to change.
//
// VRAMPools are placed through the same loop as pseudo-gangs and hold their devices for the
// workloads that name them (vrampools.ts). An InferenceService is placed replica by
// replica, each replica a gang `<service>-r<i>` of membersPerReplica members; the Tasks of
// the replicas placed in an attempt and the service's status are written in one
// transaction. A member naming a VRAMPool waits until the pool is bound.
import type { Logger } from 'pino';
import { Registry as MetricsRegistry } from 'prom-client';
import type { KubeObject } from '../../api/meta.ts';
import type { KindDefinition } from '../../api/kind.ts';
import { AcceleratorClass, GangSchedulingGroup, InferenceService, Node, Task, TopologyDomain, VRAMPool } from '../../api/kinds/index.ts';
import type { InferenceServiceSpec } from '../../api/kinds/inferenceservice.ts';
import { setCondition, type Condition } from '../../api/meta.ts';
import type { AcceleratorClassSpec } from '../../api/kinds/acceleratorclass.ts';
import type { ObjectEvent, Registry, TransactWrite } from '../../apiserver/registry.ts';
import { ApiError, alreadyExists } from '../../apiserver/errors.ts';
import { EventRecorder } from '../../controllers/events.ts';
import { watchKind, type LocalInformer } from '../../controllers/informer.ts';
import { ClusterCache, type NodeInput } from '../cache/cluster.ts';
import type { Framework } from '../framework/framework.ts';
import { createFramework } from '../framework/profiles.ts';
import type { GangPlacement, GangRequest, MemberPlacement } from '../framework/types.ts';
import { domainInput, gangRequest, nodeInput, replicaGang, replicaGangName } from '../objects.ts';
import {
  CONDITION_SCHEDULED, LABEL_SERVICE, LABEL_REPLICA, gangKey, isPendingGang, memberTasks, placementOfTask, placementSummary, scheduledStatus, taskHolding, taskKey, unschedulableStatus,
  type TaskHolding,
} from './binding.ts';
import { CapacityStatusWriter } from './capacity-status.ts';
import { schedulerMetrics, type SchedulerMetrics } from './metrics.ts';
import { SchedulingQueue, type QueuedGang } from './queue.ts';
import { VRAMPoolBinder } from './vrampools.ts';

export const SCHEDULER_COMPONENT = 'k8s4ai-scheduler';

export { LABEL_SERVICE, LABEL_REPLICA } from './binding.ts';

/** Queue keys of InferenceServices: `isvc:<namespace>/<name>` (gangs' are `<namespace>/<name>`). */
const SERVICE_PREFIX = 'isvc:';

interface ServiceStatusShape {
  replicas?: number;
  readyReplicas?: number;
  conditions?: Condition[];
  observedGeneration?: number;
  [field: string]: unknown;
}

/** A service with replicas still to place (or a status not yet saying how many it has). */
function isPendingService(obj: KubeObject): boolean {
  if (obj.metadata.deletionTimestamp) return false;
  const spec = obj.spec as InferenceServiceSpec;
  const status = (obj.status ?? {}) as ServiceStatusShape;
  return status.replicas !== spec.replicas || (status.readyReplicas ?? 0) < spec.replicas || status.observedGeneration !== (obj.metadata.generation ?? 1);
}

export interface SchedulerOptions {
  registry: Registry;
  log: Logger;
  /** Where the metrics go (the API server's, so /metrics shows them); default a private one. */
  metrics?: MetricsRegistry;
  /** Scheduling profile; default k8s4ai. */
  profile?: string;
  /** Batching delay of Node/AcceleratorClass status writes (ms). */
  statusDelayMs?: number;
  /** Unschedulable gangs are tried again at least this often, cluster change or not (ms). */
  unschedulableFlushMs?: number;
}

/** A bound Task as the cache holds it; placement is absent while its node is unknown. */
interface HeldTask extends TaskHolding {
  placement?: MemberPlacement;
}

export class SchedulerController {
  readonly cache = new ClusterCache();
  readonly framework: Framework;
  readonly queue: SchedulingQueue;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly events: EventRecorder;
  private readonly metrics: SchedulerMetrics;
  private readonly statusWriter: CapacityStatusWriter;
  private readonly informers: LocalInformer[] = [];
  private readonly classSpecs = new Map<string, AcceleratorClassSpec>();
  private readonly classObjects = new Map<string, KubeObject>();
  private readonly nodeObjects = new Map<string, KubeObject>();
  private readonly nodeInputs = new Map<string, { input: NodeInput; signature: string }>();
  private readonly domainSignatures = new Map<string, string>();
  private readonly tasks = new Map<string, HeldTask>();
  private readonly pools: VRAMPoolBinder;
  private readonly background = new Set<Promise<unknown>>();
  private readonly unschedulableFlushMs: number;
  private flushTimer?: NodeJS.Timeout;
  private wakeLoop?: () => void;
  private loop?: Promise<void>;
  private stopped = false;

  constructor(opts: SchedulerOptions) {
    this.registry = opts.registry;
    this.log = opts.log;
    this.framework = createFramework(this.cache, opts.profile ?? 'k8s4ai');
    this.queue = new SchedulingQueue((a, b) => this.framework.profile.queueSort.less(a, b), () => this.wakeLoop?.());
    this.events = new EventRecorder(this.registry, SCHEDULER_COMPONENT);
    this.metrics = schedulerMetrics(opts.metrics ?? new MetricsRegistry(), this.framework.profile.name, this.cache, () => this.queue.size);
    this.statusWriter = new CapacityStatusWriter(this.registry, this.cache, this.nodeObjects, this.classObjects, this.log, opts.statusDelayMs);
    this.unschedulableFlushMs = opts.unschedulableFlushMs ?? 60_000;
    this.pools = new VRAMPoolBinder({
      registry: this.registry,
      cache: this.cache,
      framework: this.framework,
      queue: this.queue,
      events: this.events,
      log: this.log,
      markNode: (node) => this.statusWriter.markNode(node),
      inBackground: (p) => this.inBackground(p),
    });
  }

  /**
   * Syncs the cache (classes, then domains, then nodes, then the Tasks that hold devices),
   * then the pending gangs, then starts placing them. Resolves once synced.
   */
  async start(): Promise<void> {
    await this.inform(AcceleratorClass, (e) => this.onClass(e));
    await this.inform(TopologyDomain, (e) => this.onDomain(e));
    await this.inform(Node, (e) => this.onNode(e));
    // Pools before Tasks: a Task using a pool's device is held through the pool.
    await this.inform(VRAMPool, (e) => this.pools.onPool(e));
    await this.inform(Task, (e) => this.onTask(e));
    await this.inform(GangSchedulingGroup, (e) => this.onGang(e));
    await this.inform(InferenceService, (e) => this.onService(e));
    // Free capacity as the Tasks say it is: corrects what a crash left unpublished.
    this.statusWriter.markAll();
    this.flushTimer = setInterval(() => this.queue.moveAllToActive(), this.unschedulableFlushMs);
    this.flushTimer.unref();
    this.loop = this.run();
    this.log.info({ nodes: this.cache.nodes.size, boundTasks: this.tasks.size, pendingGangs: this.queue.size, profile: this.framework.profile.name }, 'scheduler started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.flushTimer);
    this.queue.close();
    this.wakeLoop?.();
    await this.loop;
    for (const i of this.informers) i.stop();
    await this.statusWriter.stop();
    await Promise.allSettled([...this.background]);
  }

  private async inform(def: KindDefinition, handle: (e: ObjectEvent) => void): Promise<void> {
    const safe = (e: ObjectEvent) => {
      try {
        handle(e);
      } catch (err) {
        this.log.error({ err, kind: def.kind, name: e.object.metadata.name }, 'scheduler could not take in a change');
      }
    };
    const informer = watchKind(this.registry, def, {
      onEvent: safe,
      // After a relist: what vanished meanwhile is deleted, everything else re-read.
      onResync: (objects) => this.resync(def, objects, safe),
    });
    this.informers.push(informer);
    await informer.synced;
  }

  private resync(def: KindDefinition, objects: KubeObject[], handle: (e: ObjectEvent) => void): void {
    const present = new Set(objects.map((o) => (def.namespaced ? gangKey(o) : o.metadata.name)));
    const known: Iterable<string> =
      def === Node ? this.nodeObjects.keys()
      : def === AcceleratorClass ? this.classObjects.keys()
      : def === Task ? this.tasks.keys()
      : def === GangSchedulingGroup ? this.queue.keys().filter((k) => !k.includes(':'))
      : def === VRAMPool ? this.pools.keys()
      : def === InferenceService ? this.queue.keys().filter((k) => k.startsWith(SERVICE_PREFIX)).map((k) => k.slice(SERVICE_PREFIX.length))
      : [];
    for (const key of [...known]) {
      if (present.has(key)) continue;
      const [ns, name] = def.namespaced ? key.split('/') : [undefined, key];
      handle({ type: 'DELETED', object: { apiVersion: '', kind: def.kind, metadata: { name: name!, namespace: ns } }, revision: 0 });
    }
    for (const object of objects) handle({ type: 'MODIFIED', object, revision: Number(object.metadata.resourceVersion) });
  }

  // ---- the cluster ---------------------------------------------------------------------------

  private onClass(e: ObjectEvent): void {
    const name = e.object.metadata.name;
    if (e.type === 'DELETED') {
      this.classObjects.delete(name);
      this.classSpecs.delete(name);
    } else {
      this.classObjects.set(name, e.object);
      const spec = e.object.spec as AcceleratorClassSpec;
      if (JSON.stringify(this.classSpecs.get(name)) === JSON.stringify(spec)) return;
      this.classSpecs.set(name, spec);
    }
    // Device attributes and reserved memory come from the class: re-read every node.
    let changed = false;
    for (const obj of this.nodeObjects.values()) changed = this.applyNode(obj) || changed;
    if (changed) this.queue.moveAllToActive();
  }

  private onDomain(e: ObjectEvent): void {
    if (e.type === 'DELETED') return; // the cache keeps the tree's shape; nodes move by their own updates
    const input = domainInput(e.object);
    if (!input) return;
    const signature = JSON.stringify(input);
    if (this.domainSignatures.get(input.name) === signature) return;
    this.domainSignatures.set(input.name, signature);
    this.cache.setDomain(input);
    // Nodes whose path through the tree changed are indexed again under their new path.
    for (const node of [...this.cache.nodes.values()]) {
      if (JSON.stringify(this.cache.pathOf(node.leaf)) !== JSON.stringify(node.path)) {
        const known = this.nodeInputs.get(node.name);
        if (known) this.cache.upsertNode(known.input);
      }
    }
    this.queue.moveAllToActive();
  }

  private onNode(e: ObjectEvent): void {
    const name = e.object.metadata.name;
    if (e.type === 'DELETED') {
      this.nodeObjects.delete(name);
      this.nodeInputs.delete(name);
      if (!this.cache.nodes.has(name)) return;
      this.pools.onNodeRemoved(name);
      this.cache.removeNode(name);
      // Its Tasks stay bound; they hold again if the node comes back.
      for (const t of this.tasks.values()) if (t.node === name) t.placement = undefined;
      return;
    }
    this.nodeObjects.set(name, e.object);
    if (this.applyNode(e.object)) this.queue.moveAllToActive();
  }

  /** Puts a Node into the cache if what the cache needs of it changed; true when it did. */
  private applyNode(obj: KubeObject): boolean {
    const name = obj.metadata.name;
    const input = nodeInput(obj, this.classSpecs);
    const signature = JSON.stringify(input);
    if (this.nodeInputs.get(name)?.signature === signature) return false;
    this.nodeInputs.set(name, { input, signature });
    const isNew = !this.cache.nodes.has(name);
    this.cache.upsertNode(input);
    if (isNew) {
      this.pools.onNodeAdded(name);
      for (const t of this.tasks.values()) if (t.node === name && !t.placement) this.hold(t);
    }
    this.statusWriter.markNode(name);
    return true;
  }

  private onTask(e: ObjectEvent): void {
    const key = taskKey(e.object);
    const want = e.type === 'DELETED' ? undefined : taskHolding(e.object);
    const have = this.tasks.get(key);
    if (have && want && have.signature === want.signature) return;
    if (have) this.releaseTask(key, have);
    if (want) {
      const held: HeldTask = { ...want };
      this.tasks.set(key, held);
      this.hold(held);
    }
    // Capacity came back: gangs waiting for it get another attempt.
    if (have) this.queue.moveAllToActive();
  }

  private hold(t: HeldTask): void {
    const node = this.cache.nodes.get(t.node);
    if (!node) return; // held once the node is known
    t.placement = placementOfTask(t, node);
    this.cache.reserve(t.holder, t.placement);
    this.markModels(t.placement);
    this.statusWriter.markNode(t.node);
  }

  /** A member that loads a model leaves its weights resident on its devices (warm state). */
  private markModels(p: MemberPlacement): void {
    if (!p.member.model) return;
    for (const g of p.devices) this.cache.markResident(p.node, g.index, p.member.model);
  }

  /**
   * The request as this cluster can place it: members naming a bound VRAMPool take their
   * GPUs from it (poolDevices); a member naming a pool not bound yet makes the gang wait.
   */
  private withPools(request: GangRequest): { request: GangRequest; waiting?: string } {
    if (!request.members.some((m) => m.vramPool)) return { request };
    for (const m of request.members) {
      if (m.vramPool && !this.pools.isBound(m.vramPool)) return { request, waiting: `waits for VRAMPool ${m.vramPool} to be bound` };
    }
    return { request: { ...request, members: request.members.map((m) => (m.vramPool && m.gpus > 0 ? { ...m, poolDevices: m.gpus, gpus: 0 } : m)) } };
  }

  private releaseTask(key: string, t: HeldTask): void {
    this.tasks.delete(key);
    if (!t.placement) return;
    this.cache.unreserve(t.holder, t.placement);
    this.statusWriter.markNode(t.node);
  }

  // ---- the gangs -----------------------------------------------------------------------------

  private onGang(e: ObjectEvent): void {
    const key = gangKey(e.object);
    if (e.type === 'DELETED') {
      const was = this.queue.get(key);
      this.queue.remove(key);
      // A gang gone is a cluster change: its Tasks go next (garbage collection), and
      // gangs queued behind it may now go first.
      if (!was) this.queue.moveAllToActive();
      return;
    }
    if (!isPendingGang(e.object)) {
      this.queue.remove(key);
      return;
    }
    let request;
    try {
      request = gangRequest(e.object);
    } catch (err) {
      this.log.warn({ err, gang: key }, 'cannot read the gang; not scheduling it');
      this.queue.remove(key);
      return;
    }
    this.queue.upsert(e.object, request);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const next = this.queue.pop();
      if (!next) {
        await new Promise<void>((resolve) => {
          this.wakeLoop = () => {
            this.wakeLoop = undefined;
            resolve();
          };
        });
        continue;
      }
      try {
        await this.attempt(next);
      } catch (err) {
        this.log.error({ err, gang: next.key }, 'scheduling attempt failed');
        this.queue.done(next.key, 'retry');
      }
      // Let the API server and the informers breathe between gangs.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** One attempt: place the whole gang and bind it, or say why it cannot be placed. */
  private async attempt(entry: QueuedGang): Promise<void> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    if (entry.object.kind === VRAMPool.kind) {
      const result = await this.pools.attempt(entry);
      this.metrics.attempt(result, seconds());
      return;
    }
    if (entry.object.kind === InferenceService.kind) {
      this.metrics.attempt(await this.attemptService(entry), seconds());
      return;
    }
    const { request, waiting } = this.withPools(entry.request);
    const result = waiting ? undefined : this.framework.schedule(request);
    if (!result?.placement) {
      this.queue.done(entry.key, 'unschedulable');
      this.metrics.attempt('unschedulable', seconds());
      const reason = waiting ?? result?.status.reason ?? `cannot be placed (${result?.status.plugin ?? result?.status.code})`;
      this.log.debug({ gang: entry.key, reason }, 'gang is unschedulable');
      await this.reportUnschedulable(entry, reason);
      return;
    }
    const placement = result.placement;
    try {
      await this.bind(entry, placement);
    } catch (err) {
      // Nothing was written: give the reservation back and try again later.
      for (const p of placement.members) {
        this.cache.unreserve(entry.request.id, p);
        this.statusWriter.markNode(p.node);
      }
      this.queue.done(entry.key, 'retry');
      this.metrics.attempt('error', seconds());
      const expected = err instanceof ApiError && ['Conflict', 'AlreadyExists', 'NotFound'].includes(err.reason);
      this.log[expected ? 'info' : 'warn']({ err, gang: entry.key }, 'binding the gang failed; will retry');
      return;
    }
    this.queue.done(entry.key, 'bound');
    this.metrics.attempt('scheduled', seconds());
    for (const p of placement.members) this.statusWriter.markNode(p.node);
  }

  /** Creates every member Task and sets the gang's status, in one transaction. */
  private async bind(entry: QueuedGang, placement: GangPlacement): Promise<void> {
    const gang = entry.object;
    const ns = gang.metadata.namespace;
    const tasks = memberTasks(gang, placement);
    const status = scheduledStatus(gang, placement, (node) => this.cache.nodes.get(node)?.path ?? []);
    // The gang as this attempt saw it (its resourceVersion): if it changed since, nothing is written.
    const bound = await this.commit(tasks, placement.members, { op: 'update', def: GangSchedulingGroup, namespace: ns, name: gang.metadata.name, body: { ...gang, status }, subresource: 'status' });
    this.log.info({ gang: entry.key, domain: placement.domain, level: placement.level, members: tasks.length }, 'gang bound');
    this.inBackground(this.events.record(bound, 'Normal', 'Scheduled', `Successfully placed ${placementSummary(placement)}`));
  }

  /**
   * Creates the member Tasks (each holding its placement) and writes `owner`'s status, in
   * one transaction; answers the owner as written.
   */
  private async commit(tasks: KubeObject[], members: MemberPlacement[], owner: TransactWrite): Promise<KubeObject> {
    const writes: TransactWrite[] = tasks.map((body) => ({ op: 'create', def: Task, namespace: body.metadata.namespace, body, opts: { keepStatus: true } }));
    writes.push(owner);
    // The Tasks will hold the reservation. Registered before the commit, since their watch
    // events may arrive before the commit's answer does; a name still taken by another Task
    // refuses the binding (as the create would).
    const registered: [string, HeldTask][] = [];
    for (const [i, body] of tasks.entries()) {
      const key = taskKey(body);
      if (this.tasks.has(key)) throw alreadyExists(Task, body.metadata.name);
      registered.push([key, { ...taskHolding(body)!, placement: members[i] }]);
    }
    for (const [key, held] of registered) this.tasks.set(key, held);
    let results;
    try {
      results = await this.registry.transact(writes);
    } catch (err) {
      for (const [key, held] of registered) if (this.tasks.get(key) === held) this.tasks.delete(key);
      throw err;
    }
    for (const m of members) this.markModels(m);
    return results[results.length - 1]!.object;
  }

  // ---- the inference services ------------------------------------------------------------------

  private onService(e: ObjectEvent): void {
    const key = `${SERVICE_PREFIX}${gangKey(e.object)}`;
    if (e.type === 'DELETED' || !isPendingService(e.object)) {
      this.queue.remove(key);
      return;
    }
    const spec = e.object.spec as InferenceServiceSpec;
    // What the queue orders by; each replica's own request is made per attempt.
    const ns = e.object.metadata.namespace ?? 'default';
    const request: GangRequest = {
      id: key,
      namespace: ns,
      name: e.object.metadata.name,
      queue: spec.queueName ?? 'default',
      priority: spec.priority ?? 0,
      createdAt: Date.parse(String(e.object.metadata.creationTimestamp ?? 0)) || 0,
      members: [],
      minMember: 0,
    };
    this.queue.upsert(e.object, request);
  }

  /**
   * Places every replica of a service not bound yet, each as a whole gang, in order; binds
   * those placed (Tasks owned by the service, labelled with the replica) and the service's
   * status in one transaction. A replica that fits nowhere stops the attempt and says why.
   */
  private async attemptService(entry: QueuedGang): Promise<'scheduled' | 'unschedulable' | 'error'> {
    const svc = entry.object;
    const spec = svc.spec as InferenceServiceSpec;
    const ns = svc.metadata.namespace ?? 'default';
    const holders = new Set([...this.tasks.values()].map((t) => t.holder));
    const isBound = (r: number) => holders.has(`${ns}/${replicaGangName(svc.metadata.name, r)}`);
    let ready = 0;
    const placed: { r: number; gang: KubeObject; placement: GangPlacement }[] = [];
    let reason: string | undefined;
    for (let r = 0; r < spec.replicas; r++) {
      if (isBound(r)) {
        ready++;
        continue;
      }
      const gang = replicaGang(svc, r);
      const { request, waiting } = this.withPools(gangRequest(gang));
      const result = waiting ? undefined : this.framework.schedule(request);
      if (!result?.placement) {
        reason = `replica ${r}: ${waiting ?? result?.status.reason ?? `cannot be placed (${result?.status.plugin ?? result?.status.code})`}`;
        break;
      }
      placed.push({ r, gang, placement: result.placement });
    }
    const unreserve = () => {
      for (const p of placed) for (const m of p.placement.members) {
        this.cache.unreserve(p.placement.gang.id, m);
        this.statusWriter.markNode(m.node);
      }
    };
    const tasks = placed.flatMap((p) => memberTasks(p.gang, p.placement, { owner: svc, labels: { [LABEL_SERVICE]: svc.metadata.name, [LABEL_REPLICA]: String(p.r) } }));
    const members = placed.flatMap((p) => p.placement.members);
    const status = this.serviceStatus(svc, ready + placed.length, reason, placed);
    try {
      if (placed.length || status) {
        const write: TransactWrite = { op: 'update', def: InferenceService, namespace: ns, name: svc.metadata.name, body: { ...svc, status: status ?? svc.status }, subresource: 'status' };
        const written = await this.commit(tasks, members, write);
        for (const p of placed) this.inBackground(this.events.record(written, 'Normal', 'Scheduled', `Successfully placed replica ${p.r}: ${placementSummary(p.placement)}`));
        if (reason && status) this.inBackground(this.events.record(written, 'Warning', 'FailedScheduling', reason));
      }
    } catch (err) {
      unreserve();
      this.queue.done(entry.key, 'retry');
      const expected = err instanceof ApiError && ['Conflict', 'AlreadyExists', 'NotFound'].includes(err.reason);
      this.log[expected ? 'info' : 'warn']({ err, service: entry.key }, 'binding the service replicas failed; will retry');
      return 'error';
    }
    for (const m of members) this.statusWriter.markNode(m.node);
    if (placed.length) this.log.info({ service: entry.key, replicas: placed.map((p) => p.r) }, 'service replicas bound');
    this.queue.done(entry.key, reason ? 'unschedulable' : 'bound');
    return reason ? 'unschedulable' : 'scheduled';
  }

  /** The service's status after an attempt (replicas, ready = bound, condition Scheduled), or undefined when unchanged. */
  private serviceStatus(svc: KubeObject, ready: number, reason: string | undefined, placed: { r: number; placement: GangPlacement }[]): ServiceStatusShape | undefined {
    const spec = svc.spec as InferenceServiceSpec;
    const current = (svc.status ?? {}) as ServiceStatusShape;
    const generation = svc.metadata.generation ?? 1;
    const cond = current.conditions?.find((c) => c.type === CONDITION_SCHEDULED);
    const message = reason ?? `placed ${spec.replicas} replica${spec.replicas === 1 ? '' : 's'}`;
    if (!placed.length && current.replicas === spec.replicas && current.readyReplicas === ready && current.observedGeneration === generation && cond?.message === message) return undefined;
    return {
      ...current,
      replicas: spec.replicas,
      readyReplicas: ready,
      observedGeneration: generation,
      conditions: setCondition(current.conditions, reason
        ? { type: CONDITION_SCHEDULED, status: 'False', reason: 'Unschedulable', message, observedGeneration: generation }
        : { type: CONDITION_SCHEDULED, status: 'True', reason: 'Scheduled', message, observedGeneration: generation }),
    };
  }

  /** Condition Scheduled=False with the reason, and a Warning Event, when the reason changed. */
  private async reportUnschedulable(entry: QueuedGang, reason: string): Promise<void> {
    let gang = entry.object;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (!isPendingGang(gang) || gang.metadata.uid !== entry.uid) return;
      const status = unschedulableStatus(gang, reason);
      if (!status) return;
      try {
        const written = await this.registry.update(GangSchedulingGroup, gang.metadata.namespace, gang.metadata.name, { ...gang, status }, { subresource: 'status' });
        this.inBackground(this.events.record(written, 'Warning', 'FailedScheduling', reason));
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict')) {
          if (!(err instanceof ApiError && err.reason === 'NotFound')) this.log.warn({ err, gang: entry.key }, 'could not record why the gang is unschedulable');
          return;
        }
        const fresh = await this.registry.tryGet(GangSchedulingGroup, gang.metadata.namespace, gang.metadata.name);
        if (!fresh) return;
        gang = fresh;
      }
    }
  }

  /** Best-effort writes (Events) that the loop does not wait for; stop() does. */
  private inBackground(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => {
      if (!this.stopped && !(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Forbidden'))) this.log.warn({ err }, 'could not record an event');
    });
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }
}
