// A gang's placement as API objects, and back: the member Tasks and the gang status the
// scheduler commits when it binds a gang, and the cache placement a bound Task stands for
// (how the cache is rebuilt from Tasks after a restart). One spelling of a device
// assignment both ways, so a rebuilt cache holds exactly what the binding reserved.
import { API_VERSION } from '../../api/kind.ts';
import type { Condition, KubeObject } from '../../api/meta.ts';
import { setCondition } from '../../api/meta.ts';
import { formatQuantity, NANO_PER_UNIT } from '../../api/quantity.ts';
import { gangGpus, type GangSchedulingGroupSpec } from '../../api/kinds/gangschedulinggroup.ts';
import { FINISHED_TASK_PHASES, type TaskSpec } from '../../api/kinds/task.ts';
import type { DeviceAssignment } from '../../api/kinds/workload.ts';
import { timestamp } from '../../apiserver/registry.ts';
import type { NodeState } from '../cache/cluster.ts';
import type { DeviceGrant, GangPlacement, MemberPlacement, MemberRequest } from '../framework/types.ts';
import { amount } from '../objects.ts';

export const LABEL_GANG = 'k8s4ai.io/gang';
export const LABEL_ROLE = 'k8s4ai.io/role';
/** Labels of an InferenceService replica's Tasks. */
export const LABEL_SERVICE = 'k8s4ai.io/inferenceservice';
export const LABEL_REPLICA = 'k8s4ai.io/replica';
export const CONDITION_SCHEDULED = 'Scheduled';


export interface GangStatusShape {
  phase?: string;
  conditions?: Condition[];
  restarts?: number;
  [field: string]: unknown;
}

export const gangKey = (obj: KubeObject): string => `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`;
export const taskKey = gangKey;

/** Which run of the gang its next or current Tasks belong to: restarts plus clean stops. */
export function gangAttempt(gang: KubeObject): number {
  const st = (gang.status ?? {}) as GangStatusShape;
  return (st.restarts ?? 0) + ((st.preemptions as number | undefined) ?? 0);
}

/** Waiting to be placed: no phase yet or Pending, not suspended, not being deleted. */
export function isPendingGang(obj: KubeObject): boolean {
  if (obj.metadata.deletionTimestamp) return false;
  if ((obj.spec as GangSchedulingGroupSpec | undefined)?.suspend) return false;
  const phase = (obj.status as GangStatusShape | undefined)?.phase;
  return phase === undefined || phase === 'Pending';
}

/** A member's index within its role, from its id `<role>-<i>`. */
const roleIndex = (m: MemberRequest): number => Number(m.id.slice(m.role.length + 1));

export const taskName = (gangName: string, m: MemberRequest): string => `${gangName}-${m.role}-${roleIndex(m)}`;

/** A device grant as the Task and the gang status spell it (whole: index and uuid only). */
export function deviceAssignment(g: DeviceGrant): DeviceAssignment {
  if (g.migProfile !== undefined || g.migInstance !== undefined) {
    return { index: g.index, uuid: g.uuid, ...(g.migProfile ? { migProfile: g.migProfile } : {}), ...(g.migInstance !== undefined ? { migInstance: g.migInstance } : {}) };
  }
  if (g.whole) return { index: g.index, uuid: g.uuid };
  // A share: always with vram (0 when it asks for compute only), so it never reads as whole.
  const vram = formatQuantity(BigInt(Math.round(g.memoryBytes)) * NANO_PER_UNIT, 'BinarySI');
  return { index: g.index, uuid: g.uuid, vram, ...(g.milli > 0 ? { computeMilli: g.milli } : {}) };
}

/**
 * The grant a Task's device assignment stands for on `node` (inverse of deviceAssignment).
 * A device of the member's VRAMPool (namespace/name) is used through the pool.
 */
export function deviceGrant(a: DeviceAssignment, node: NodeState, pool?: string): DeviceGrant {
  const device = node.devices.find((d) => d.index === a.index);
  if (pool !== undefined && device?.pool === pool) return { ...deviceGrant(a, node), pool };
  const uuid = a.uuid ?? device?.uuid ?? '';
  if (a.migProfile !== undefined || a.migInstance !== undefined) {
    return { index: a.index, uuid, whole: false, milli: 0, memoryBytes: 0, migProfile: a.migProfile, migInstance: a.migInstance };
  }
  if (a.vram === undefined && a.computeMilli === undefined) {
    return { index: a.index, uuid, whole: true, milli: 1000, memoryBytes: device?.memoryBytes ?? 0 };
  }
  return { index: a.index, uuid, whole: false, milli: a.computeMilli ?? 0, memoryBytes: Math.round(amount(a.vram)) };
}

/** What a Task holds, or undefined when it holds nothing (unbound, or finished). */
export interface TaskHolding {
  /** The cache's holding id: `<namespace>/<gangName>`, or `task:<namespace>/<name>` for a lone Task. */
  holder: string;
  node: string;
  spec: TaskSpec;
  name: string;
  /** Identity of what is held; a Task whose signature changes is released and taken again. */
  signature: string;
}

export function taskHolding(obj: KubeObject): TaskHolding | undefined {
  const spec = obj.spec as TaskSpec | undefined;
  if (!spec?.nodeName) return undefined;
  const phase = (obj.status as { phase?: string } | undefined)?.phase;
  // A finished Task holds nothing: its process is gone.
  if (phase && FINISHED_TASK_PHASES.has(phase)) return undefined;
  const ns = obj.metadata.namespace ?? 'default';
  const holder = spec.gangName ? `${ns}/${spec.gangName}` : `task:${ns}/${obj.metadata.name}`;
  const r = spec.resources ?? {};
  const signature = JSON.stringify([holder, spec.nodeName, spec.devices ?? [], r.cpu ?? null, r.memory ?? null]);
  return { holder, node: spec.nodeName, spec, name: obj.metadata.name, signature };
}

/** The cache placement a bound Task stands for, on its node as the cache knows it. */
export function placementOfTask(h: TaskHolding, node: NodeState): MemberPlacement {
  const r = h.spec.resources ?? {};
  const role = h.spec.role ?? 'member';
  const gang = h.spec.gangName;
  const prefix = gang ? `${gang}-${role}-` : '';
  const id = prefix && h.name.startsWith(prefix) ? `${role}-${h.name.slice(prefix.length)}` : h.name;
  const ns = h.holder.startsWith('task:') ? h.holder.slice(5).split('/')[0]! : h.holder.split('/')[0]!;
  const vramPool = h.spec.vramPoolName ? `${ns}/${h.spec.vramPoolName}` : undefined;
  const member: MemberRequest = {
    id,
    role,
    index: h.spec.index ?? 0,
    gpus: r.gpus ?? 0,
    gpuMilli: r.gpus ? 0 : (r.computeMilli ?? 0),
    vramBytes: amount(r.vram),
    migProfile: r.migProfile,
    cpuMilli: Math.round(amount(r.cpu) * 1000),
    memoryBytes: amount(r.memory),
    ...(h.spec.model ? { model: h.spec.model } : {}),
    ...(vramPool ? { vramPool } : {}),
  };
  return {
    member,
    node: node.name,
    devices: (h.spec.devices ?? []).map((a) => deviceGrant(a, node, vramPool)),
    cpuMilli: member.cpuMilli,
    memoryBytes: member.memoryBytes,
  };
}

/** Who owns the member Tasks, and labels they carry beside the gang's and role's. */
export interface MemberTaskOptions {
  /** Default the gang itself (an InferenceService owns its replica gangs' Tasks). */
  owner?: KubeObject;
  labels?: Record<string, string>;
}

/** The member Tasks of a placement: bound to their node and devices, owned by the gang. */
export function memberTasks(gang: KubeObject, placement: GangPlacement, opts: MemberTaskOptions = {}): KubeObject[] {
  const owner = opts.owner ?? gang;
  const spec = gang.spec as GangSchedulingGroupSpec;
  const ns = gang.metadata.namespace ?? 'default';
  const gangName = gang.metadata.name;
  const attempt = gangAttempt(gang);
  const worldSize = placement.members.length;
  const rendezvous = { node: (placement.members.find((p) => p.member.index === 0) ?? placement.members[0]!).node, port: rendezvousPort(gang, attempt) };
  return placement.members.map((p) => {
    const m = p.member;
    const template = spec.roles.find((r) => r.name === m.role)!.template;
    const labels: Record<string, string> = { ...opts.labels };
    // Label values are at most 63 characters; longer gang names go without the label.
    if (gangName.length <= 63) labels[LABEL_GANG] = gangName;
    labels[LABEL_ROLE] = m.role;
    const taskSpec: TaskSpec = {
      gangName,
      role: m.role,
      index: m.index,
      worldSize,
      attempt,
      localRank: placement.members.filter((o) => o.node === p.node && o.member.index < m.index).length,
      rendezvous,
      nodeName: p.node,
      devices: p.devices.map(deviceAssignment),
      command: template.command,
      ...(template.args ? { args: template.args } : {}),
      ...(template.workingDir ? { workingDir: template.workingDir } : {}),
      ...(template.env ? { env: template.env } : {}),
      ...(template.resources ? { resources: template.resources } : {}),
      ...(template.vramPoolName ? { vramPoolName: template.vramPoolName } : {}),
      ...(template.model ? { model: template.model } : {}),
      ...(template.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: template.terminationGracePeriodSeconds } : {}),
    };
    return {
      apiVersion: API_VERSION,
      kind: 'Task',
      metadata: {
        name: taskName(gangName, m),
        namespace: ns,
        labels,
        ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: taskSpec,
      status: { phase: 'Bound' },
    };
  });
}

/**
 * MASTER_PORT of a gang's attempt: spread over 20000-39999 by the gang's uid and attempt,
 * so concurrent gangs rarely meet and a restart gets a fresh port (a port still held by a
 * dying member of the last attempt cannot block the next).
 */
export function rendezvousPort(gang: KubeObject, attempt: number): number {
  let h = 0x811c9dc5;
  for (const ch of `${gang.metadata.uid ?? gang.metadata.name}/${attempt}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return 20000 + (h % 20000);
}

/** Where a placement is, for people: "4 members on 4 nodes within leaf leaf-s1-l2". */
export function placementSummary(placement: GangPlacement): string {
  const n = placement.members.length;
  const nodes = new Set(placement.members.map((p) => p.node)).size;
  const gpus = placement.members.reduce((s, p) => s + p.devices.filter((d) => d.whole).length, 0);
  const shares = placement.members.reduce((s, p) => s + p.devices.filter((d) => !d.whole).length, 0);
  const held = [gpus ? `${gpus} GPU${gpus === 1 ? '' : 's'}` : '', shares ? `${shares} GPU share${shares === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
  const where = placement.level === 'node' ? `on node ${placement.domain}` : `on ${nodes} node${nodes === 1 ? '' : 's'} within ${placement.level} ${placement.domain}`;
  return `${n} member${n === 1 ? '' : 's'}${held ? ` (${held})` : ''} ${where}`;
}

/** The gang's status once bound: phase, placement per member, GPUs, time and condition. */
export function scheduledStatus(gang: KubeObject, placement: GangPlacement, nodePath: (node: string) => string[], now = new Date()): GangStatusShape {
  const current = (gang.status ?? {}) as GangStatusShape;
  const generation = gang.metadata.generation ?? 1;
  const placements = placement.members.map((p) => ({
    role: p.member.role,
    index: roleIndex(p.member),
    taskName: taskName(gang.metadata.name, p.member),
    nodeName: p.node,
    devices: p.devices.map(deviceAssignment),
    topologyPath: [...nodePath(p.node), p.node],
    ...(p.reason ? { reason: p.reason } : {}),
  }));
  return {
    ...current,
    phase: 'Scheduled',
    placements,
    gpus: gangGpus(gang),
    scheduledTime: timestamp(now),
    observedGeneration: generation,
    conditions: setCondition(
      current.conditions,
      { type: CONDITION_SCHEDULED, status: 'True', reason: 'Scheduled', message: `placed ${placementSummary(placement)}`, observedGeneration: generation },
      now,
    ),
  };
}

/** The status of a gang that cannot be placed, or undefined when it already says so. */
export function unschedulableStatus(gang: KubeObject, reason: string, now = new Date()): GangStatusShape | undefined {
  const current = (gang.status ?? {}) as GangStatusShape;
  const cond = current.conditions?.find((c) => c.type === CONDITION_SCHEDULED);
  if (current.phase === 'Pending' && cond?.status === 'False' && cond.reason === 'Unschedulable' && cond.message === reason) return undefined;
  return {
    ...current,
    phase: 'Pending',
    conditions: setCondition(current.conditions, { type: CONDITION_SCHEDULED, status: 'False', reason: 'Unschedulable', message: reason }, now),
  };
}
