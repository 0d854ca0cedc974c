// The agent's part of the checkpoint protocol for one member: where its folder is, which
// checkpoint it resumes from (copied in when it lies on another node this machine can
// read), and which old checkpoints may go.
import { cpSync, mkdirSync, rmSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KubeObject } from '../api/meta.ts';
import type { CheckpointPolicySpec } from '../api/kinds/checkpointpolicy.ts';
import type { CompleteCheckpoint } from '../api/kinds/gangschedulinggroup.ts';
import { listCheckpoints, memberCheckpointDir, memberOfTask, readCheckpoint } from '../checkpoint/protocol.ts';

export class CheckpointUnavailableError extends Error {
  readonly code = 'K8S4AI_CHECKPOINT_UNAVAILABLE';
}

interface GangStatusShape {
  lastCheckpoint?: CompleteCheckpoint;
  checkpoints?: CompleteCheckpoint[];
}

/** A member's checkpoint folder: the policy's storage, or the agent's own scratch space without one. */
export function memberDir(task: KubeObject, gangName: string, node: string, policy: CheckpointPolicySpec | undefined, scratchRoot: string): string {
  const member = memberOfTask(task.metadata.name, gangName);
  // The gang's uid from the Task's controller reference: a gang made again under the same
  // name never meets the old one's checkpoints.
  const owner = task.metadata.ownerReferences?.find((r) => r.controller) ?? task.metadata.ownerReferences?.[0];
  const gang = { namespace: task.metadata.namespace ?? 'default', name: gangName, uid: owner?.uid ?? task.metadata.uid ?? 'none' };
  return memberCheckpointDir(policy?.storage ?? { type: 'Shared', path: scratchRoot }, node, gang, member);
}

/**
 * Makes the gang's latest complete checkpoint present in the member's folder and answers
 * its id, or undefined on a fresh start. A part kept on another node is copied when this
 * machine can read it (shared storage, or simulated nodes on one machine).
 */
export function stageRestore(gang: KubeObject | undefined, member: string, dir: string): string | undefined {
  const last = ((gang?.status ?? {}) as GangStatusShape).lastCheckpoint;
  if (!last) return undefined;
  mkdirSync(dir, { recursive: true });
  if (readCheckpoint(dir, last.id)) return last.id;
  const where = last.locations?.find((l) => l.member === member);
  if (!where) throw new CheckpointUnavailableError(`checkpoint ${last.id} has no part for member ${member}`);
  if (!readCheckpoint(dirname(where.path), last.id)) {
    throw new CheckpointUnavailableError(`checkpoint ${last.id} of member ${member} is on node ${where.node} at ${where.path}, which this machine cannot read`);
  }
  const target = join(dir, last.id);
  rmSync(target, { recursive: true, force: true });
  cpSync(where.path, target, { recursive: true });
  if (!readCheckpoint(dir, last.id)) throw new CheckpointUnavailableError(`copying checkpoint ${last.id} of member ${member} from node ${where.node} left it incomplete`);
  return last.id;
}

/**
 * Deletes the member's checkpoints that the gang no longer keeps: only once a newer one is
 * complete (never the kept ones, never anything newer than the latest complete one, which
 * may be in progress). Answers the ids removed.
 */
export function pruneCheckpoints(gang: KubeObject | undefined, dir: string): string[] {
  const st = (gang?.status ?? {}) as GangStatusShape;
  if (!st.lastCheckpoint || !st.checkpoints?.length) return [];
  const keep = new Set(st.checkpoints.map((c) => c.id));
  const newest = st.lastCheckpoint.step;
  const complete = new Map(listCheckpoints(dir).map((c) => [c.id, c]));
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  for (const name of names) {
    if (name.startsWith('.') || keep.has(name)) continue;
    const c = complete.get(name);
    // An incomplete folder may be a checkpoint being written right now: left alone unless
    // its id is older than the newest kept one (ids count up).
    const older = c ? c.step < newest : name < st.lastCheckpoint.id;
    if (!older) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
