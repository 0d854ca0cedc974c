// The gang controller: keeps GangSchedulingGroups, their Tasks, CheckpointPolicies and
// Nodes in informers and applies lifecycle.ts's decisions — the gang's status, Tasks to
// stop, Events, the policy's status — one gang at a time through a work queue.
import type { Logger } from 'pino';
import type { KubeObject } from '../../api/meta.ts';
import type { KindDefinition } from '../../api/kind.ts';
import { CheckpointPolicy, GangSchedulingGroup, Node, Task } from '../../api/kinds/index.ts';
import type { CheckpointPolicySpec } from '../../api/kinds/checkpointpolicy.ts';
import type { GangSchedulingGroupSpec } from '../../api/kinds/gangschedulinggroup.ts';
import type { TaskSpec } from '../../api/kinds/task.ts';
import type { ObjectEvent, Registry } from '../../apiserver/registry.ts';
import { ApiError } from '../../apiserver/errors.ts';
import { EventRecorder } from '../events.ts';
import { watchKind, type LocalInformer } from '../informer.ts';
import { WorkQueue } from '../workqueue.ts';
import { reconcileGang, type GangDecision } from './lifecycle.ts';
import { isNodeReady } from '../../api/kinds/node.ts';

export const GANG_CONTROLLER = 'k8s4ai-gang-controller';

const keyOf = (ns: string | undefined, name: string) => `${ns ?? 'default'}/${name}`;

export class GangController {
  private readonly gangs = new Map<string, KubeObject>();
  /** Tasks by gang key, then by Task name. */
  private readonly tasks = new Map<string, Map<string, KubeObject>>();
  private readonly policies = new Map<string, KubeObject>();
  private readonly nodes = new Map<string, KubeObject>();
  private readonly informers: LocalInformer[] = [];
  private readonly queue: WorkQueue;
  private readonly events: EventRecorder;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {
    this.queue = new WorkQueue((key) => this.reconcile(key), log);
    this.events = new EventRecorder(registry, GANG_CONTROLLER);
  }

  async start(): Promise<void> {
    await this.inform(Node, (e) => this.remember(this.nodes, e.object.metadata.name, e), () => this.nodes.clear());
    await this.inform(CheckpointPolicy, (e) => {
      const key = keyOf(e.object.metadata.namespace, e.object.metadata.name);
      this.remember(this.policies, key, e);
      for (const [gk, g] of this.gangs) {
        if (g.metadata.namespace === e.object.metadata.namespace && (g.spec as GangSchedulingGroupSpec).checkpointPolicyName === e.object.metadata.name) this.queue.add(gk);
      }
    }, () => this.policies.clear());
    await this.inform(Task, (e) => this.onTask(e), () => {
      // Every gang is looked at again after a relist: Tasks deleted meanwhile are gone now.
      this.tasks.clear();
      for (const k of this.gangs.keys()) this.queue.add(k);
    });
    await this.inform(GangSchedulingGroup, (e) => {
      const key = keyOf(e.object.metadata.namespace, e.object.metadata.name);
      this.remember(this.gangs, key, e);
      this.queue.add(key);
    }, () => this.gangs.clear());
  }

  stop(): void {
    this.queue.stop();
    for (const i of this.informers) i.stop();
  }

  /** Resolves when no reconcile is due (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** `reset` empties what the informer fed before a relist hands over the whole list again. */
  private async inform(def: KindDefinition, handle: (e: ObjectEvent) => void, reset: () => void): Promise<void> {
    const informer = watchKind(this.registry, def, {
      onEvent: handle,
      onResync: (objects) => {
        reset();
        for (const object of objects) handle({ type: 'MODIFIED', object, revision: Number(object.metadata.resourceVersion) });
      },
    });
    this.informers.push(informer);
    await informer.synced;
  }

  private remember(map: Map<string, KubeObject>, key: string, e: ObjectEvent): void {
    if (e.type === 'DELETED') map.delete(key);
    else map.set(key, e.object);
  }

  private onTask(e: ObjectEvent): void {
    const spec = e.object.spec as TaskSpec | undefined;
    if (!spec?.gangName) return;
    const gk = keyOf(e.object.metadata.namespace, spec.gangName);
    let byName = this.tasks.get(gk);
    if (e.type === 'DELETED') {
      byName?.delete(e.object.metadata.name);
      if (byName && !byName.size) this.tasks.delete(gk);
    } else {
      if (!byName) this.tasks.set(gk, (byName = new Map()));
      byName.set(e.object.metadata.name, e.object);
    }
    if (this.gangs.has(gk)) this.queue.add(gk);
  }

  private async reconcile(key: string): Promise<number | undefined> {
    const gang = this.gangs.get(key);
    if (!gang) return undefined;
    const spec = gang.spec as GangSchedulingGroupSpec;
    const policyObj = spec.checkpointPolicyName ? this.policies.get(keyOf(gang.metadata.namespace, spec.checkpointPolicyName)) : undefined;
    // Only this gang's Tasks: a gang made again under the same name must not see the old one's.
    const owned = (t: KubeObject) => !t.metadata.ownerReferences?.length || t.metadata.ownerReferences.some((r) => r.uid === gang.metadata.uid);
    const decision = reconcileGang({
      gang,
      tasks: [...(this.tasks.get(key)?.values() ?? [])].filter(owned),
      policy: policyObj ? { spec: policyObj.spec as CheckpointPolicySpec, measuredSeconds: (policyObj.status as { measuredCheckpointSeconds?: number } | undefined)?.measuredCheckpointSeconds } : undefined,
      nodes: this.nodes,
      now: new Date(),
    });
    await this.apply(gang, policyObj, decision);
    return decision.wakeAt;
  }

  private async apply(gang: KubeObject, policy: KubeObject | undefined, d: GangDecision): Promise<void> {
    let written = gang;
    if (d.status) {
      // Guarded by the gang's resourceVersion: a gang changed meanwhile is reconciled again.
      written = await this.registry.update(GangSchedulingGroup, gang.metadata.namespace, gang.metadata.name, { ...gang, status: d.status }, { subresource: 'status' });
      this.gangs.set(keyOf(gang.metadata.namespace, gang.metadata.name), written);
    }
    for (const t of d.stop) await this.stopTask(t);
    for (const e of d.events) {
      await this.events.record(written, e.type, e.reason, e.message).catch((err: unknown) => this.log.warn({ err }, 'could not record an event'));
    }
    if (policy && (d.interval || d.measuredCheckpointSeconds !== undefined)) await this.updatePolicyStatus(policy, d);
  }

  /** Deletes a member Task; its agent stops the process and lets the record go. */
  private async stopTask(t: KubeObject): Promise<void> {
    const ns = t.metadata.namespace;
    try {
      const deleted = await this.registry.delete(Task, ns, t.metadata.name, { preconditions: { uid: t.metadata.uid } });
      // No agent will finalize a Task whose node is gone: the process went with it.
      const node = (t.spec as TaskSpec).nodeName;
      if (deleted.metadata.finalizers?.length && (!node || !isNodeReady(this.nodes.get(node)))) {
        await this.registry.patch(Task, ns, t.metadata.name, 'merge', { metadata: { finalizers: null } });
      }
      this.log.info({ task: `${ns}/${t.metadata.name}` }, 'stopping member');
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return;
      throw err;
    }
  }

  private async updatePolicyStatus(policy: KubeObject, d: GangDecision): Promise<void> {
    const current = (policy.status ?? {}) as Record<string, unknown>;
    const patch: Record<string, unknown> = {};
    if (d.interval) {
      if (current.intervalSeconds !== d.interval.seconds) patch.intervalSeconds = d.interval.seconds;
      if (current.intervalReason !== d.interval.reason) patch.intervalReason = d.interval.reason;
      if (d.interval.mtbfSeconds !== undefined && current.observedMTBFSeconds !== d.interval.mtbfSeconds) patch.observedMTBFSeconds = d.interval.mtbfSeconds;
    }
    if (d.measuredCheckpointSeconds !== undefined) patch.measuredCheckpointSeconds = d.measuredCheckpointSeconds;
    if (!Object.keys(patch).length) return;
    try {
      const written = await this.registry.patch(CheckpointPolicy, policy.metadata.namespace, policy.metadata.name, 'merge', { status: patch }, { subresource: 'status' });
      this.policies.set(keyOf(policy.metadata.namespace, policy.metadata.name), written.object);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }
}
