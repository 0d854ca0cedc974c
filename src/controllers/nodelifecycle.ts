// Node lifecycle: a Node whose agent stops posting heartbeats is marked NotReady (Ready
// Unknown, as Kubernetes' node lifecycle controller does) once the grace period passes; its
// failure is counted (the MTBF behind `auto` checkpoint intervals), and its unfinished Tasks
// are failed with reason NodeLost so their gangs restart elsewhere. Nodes that never posted
// a heartbeat (fleet nodes without an agent) are not judged.
import type { Logger } from 'pino';
import type { KubeObject, Condition } from '../api/meta.ts';
import { setCondition } from '../api/meta.ts';
import { Node, Task } from '../api/kinds/index.ts';
import { readyCondition, type NodeStatus } from '../api/kinds/node.ts';
import { FINISHED_TASK_PHASES } from '../api/kinds/task.ts';
import type { Registry } from '../apiserver/registry.ts';
import { timestamp } from '../apiserver/registry.ts';
import { ApiError } from '../apiserver/errors.ts';
import { EventRecorder } from './events.ts';
import { watchKind, type LocalInformer } from './informer.ts';

export const NODE_LIFECYCLE = 'k8s4ai-node-lifecycle';
/** The finalizer an agent puts on a Task while its process may be alive. */
export const AGENT_FINALIZER = 'k8s4ai.io/agent';
export const REASON_NODE_LOST = 'NodeLost';
export const REASON_HEARTBEAT_LOST = 'NodeStatusUnknown';

/** Kubernetes' node-monitor-grace-period is 40 s; agents post every 10 s. */
export const DEFAULT_NODE_GRACE_SECONDS = 40;



export interface NodeLifecycleOptions {
  /** Seconds without a heartbeat before a node is lost. */
  graceSeconds?: number;
  /** How often heartbeats are checked (ms). */
  checkMs?: number;
}

export class NodeLifecycleController {
  private informer?: LocalInformer;
  private readonly nodes = new Map<string, KubeObject>();
  /**
   * When this controller saw each node's heartbeatTime change, by its own clock: a node's
   * age is judged from that, never from the agent's clock, which may be skewed.
   */
  private readonly seen = new Map<string, { heartbeat: string; at: number }>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  /** Heartbeats older than this start are judged from the start: `up` was down meanwhile. */
  private readonly startedAt = Date.now();
  private readonly graceMs: number;
  private readonly checkMs: number;
  private readonly events: EventRecorder;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    opts: NodeLifecycleOptions = {},
  ) {
    this.graceMs = (opts.graceSeconds ?? DEFAULT_NODE_GRACE_SECONDS) * 1000;
    this.checkMs = opts.checkMs ?? Math.min(2000, this.graceMs / 4);
    this.events = new EventRecorder(registry, NODE_LIFECYCLE);
  }

  async start(): Promise<void> {
    this.informer = watchKind(this.registry, Node, {
      onEvent: (e) => {
        if (e.type === 'DELETED') this.nodes.delete(e.object.metadata.name);
        else {
          this.nodes.set(e.object.metadata.name, e.object);
          this.observe(e.object);
        }
      },
      onResync: (objects) => {
        this.nodes.clear();
        for (const o of objects) this.nodes.set(o.metadata.name, o);
      },
    });
    await this.informer.synced;
    this.timer = setInterval(() => void this.check(), this.checkMs);
    this.timer.unref();
  }

  /** Notes, by this clock, when a node's heartbeat changed. */
  private observe(node: KubeObject): void {
    const hb = (node.status as NodeStatus | undefined)?.heartbeatTime;
    if (!hb) return;
    const known = this.seen.get(node.metadata.name);
    // Heartbeats already there at start count from the start: `up` may have been down.
    if (known?.heartbeat !== hb) this.seen.set(node.metadata.name, { heartbeat: hb, at: known ? Date.now() : this.startedAt });
  }

  stop(): void {
    clearInterval(this.timer);
    this.informer?.stop();
  }

  /** One pass over the nodes (exposed for tests). */
  async check(now = Date.now()): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const node of [...this.nodes.values()]) {
        const st = (node.status ?? {}) as NodeStatus;
        if (!st.heartbeatTime) continue;
        const name = node.metadata.name;
        const known = this.seen.get(name);
        if (known?.heartbeat !== st.heartbeatTime) this.seen.set(name, { heartbeat: st.heartbeatTime, at: known ? now : this.startedAt });
        const lastSeen = this.seen.get(name)!.at;
        if (now - lastSeen <= this.graceMs) continue;
        try {
          const ready = readyCondition(node);
          if (ready?.reason !== REASON_HEARTBEAT_LOST) await this.markLost(node, new Date(now));
          // Also after a restart of the control plane in the middle of marking it.
          await this.failTasks(node.metadata.name);
        } catch (err) {
          if (!(err instanceof ApiError && err.reason === 'NotFound')) this.log.warn({ err, node: node.metadata.name }, 'could not mark the node lost; will retry');
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async markLost(node: KubeObject, now: Date): Promise<void> {
    const st = (node.status ?? {}) as NodeStatus;
    const message = `the agent stopped posting heartbeats; the last was at ${st.heartbeatTime}`;
    const conditions = setCondition(st.conditions as Condition[] | undefined, { type: 'Ready', status: 'Unknown', reason: REASON_HEARTBEAT_LOST, message }, now);
    const written = await this.registry.patch(Node, undefined, node.metadata.name, 'merge', {
      status: { conditions, failures: (st.failures ?? 0) + 1, lastFailureTime: timestamp(now) },
    }, { subresource: 'status' });
    this.nodes.set(node.metadata.name, written.object);
    this.log.warn({ node: node.metadata.name, lastHeartbeat: st.heartbeatTime }, 'node lost');
    await this.events.record(written.object, 'Warning', 'NodeNotReady', `Node ${node.metadata.name} is not ready: ${message}`).catch(() => undefined);
  }

  /** Fails the node's unfinished Tasks; nobody will finalize them now, so their finalizer goes. */
  private async failTasks(nodeName: string): Promise<void> {
    const tasks = (await this.registry.list(Task, undefined, { fieldSelector: `spec.nodeName=${nodeName}` })).items;
    for (const t of tasks) {
      const phase = (t.status as { phase?: string } | undefined)?.phase ?? '';
      const ns = t.metadata.namespace;
      try {
        if (!FINISHED_TASK_PHASES.has(phase)) {
          await this.registry.patch(Task, ns, t.metadata.name, 'merge', {
            status: { phase: 'Failed', reason: REASON_NODE_LOST, message: `node ${nodeName} stopped posting heartbeats`, finishTime: timestamp() },
          }, { subresource: 'status' });
        }
        if (t.metadata.finalizers?.includes(AGENT_FINALIZER)) {
          await this.registry.patch(Task, ns, t.metadata.name, 'merge', { metadata: { finalizers: t.metadata.finalizers.filter((f) => f !== AGENT_FINALIZER) } });
        }
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
    }
  }
}
