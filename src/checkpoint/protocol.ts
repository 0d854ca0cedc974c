// The checkpoint protocol between a workload, its agent and the gang controller.
//
// Each member has its own folder, K8S4AI_CHECKPOINT_DIR. To ask for a checkpoint the agent
// writes `<dir>/.request` (JSON {id, reason, time}) and sends SIGUSR1. The workload writes
// checkpoint `id` into a new folder `<dir>/<id>/`, its files first and then
// `manifest.json` ({id, step, files: [{name, size}], time}), renamed into place so that a
// manifest is either absent or whole. The agent reports the member's complete checkpoints
// (manifest present, every file there with its size) in the Task's status; a checkpoint
// counts for the gang only when every member reported it at the same step. On restart,
// K8S4AI_RESTORE_CHECKPOINT names the checkpoint to resume from.
//
// One module for all three parties, so the file names and the completeness rule exist once.
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const ENV = {
  checkpointDir: 'K8S4AI_CHECKPOINT_DIR',
  restoreCheckpoint: 'K8S4AI_RESTORE_CHECKPOINT',
  task: 'K8S4AI_TASK',
} as const;

export const REQUEST_FILE = '.request';
/**
 * Written by a workload once it handles SIGUSR1: only then does the agent signal it (for
 * Python, SIGUSR1's default action is to exit). Before, the request file alone carries the
 * request, and the workload reads it when it starts listening.
 */
export const LISTENING_FILE = '.listening';
export const MANIFEST_FILE = 'manifest.json';

export const CheckpointReason = { Interval: 'Interval', Preemption: 'Preemption' } as const;
export type CheckpointReason = (typeof CheckpointReason)[keyof typeof CheckpointReason];

export interface CheckpointRequest {
  id: string;
  reason: CheckpointReason;
  time: string;
}

export interface ManifestFile {
  name: string;
  size: number;
}

export interface Manifest {
  id: string;
  step: number;
  files: ManifestFile[];
  time: string;
}

/** A checkpoint found complete in a member's folder. */
export interface FoundCheckpoint {
  id: string;
  step: number;
  sizeBytes: number;
  files: number;
  time: string;
  path: string;
}

/** Checkpoint ids are folder names: keep them to a safe alphabet. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertCheckpointId(id: string): void {
  if (!ID_RE.test(id) || id === MANIFEST_FILE || id === LISTENING_FILE) throw new Error(`checkpoint id "${id}" must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
}

/** The storage a CheckpointPolicy names. */
export interface CheckpointStorage {
  type: 'LocalNVMe' | 'Shared';
  path: string;
}

/** The gang a member belongs to: its name and uid (a gang made again under the same name starts afresh). */
export interface GangIdentity {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * A member's checkpoint folder. Shared storage is the same path on every node; local NVMe
 * is per node, so the node's name is part of the path (which also keeps the simulated
 * nodes that one agent serves on one machine from sharing a "disk").
 */
export function memberCheckpointDir(storage: CheckpointStorage, node: string, gang: GangIdentity, member: string): string {
  const own = join(gang.namespace, `${gang.name}-${gang.uid.slice(0, 8)}`, member);
  return storage.type === 'Shared' ? join(storage.path, own) : join(storage.path, node, own);
}

/** The member id of a gang's Task (`<role>-<index>`), stable across restarts. */
export function memberOfTask(taskName: string, gangName: string): string {
  return taskName.startsWith(`${gangName}-`) ? taskName.slice(gangName.length + 1) : taskName;
}

/** Reads a checkpoint's manifest and checks its files; undefined when not (yet) complete. */
export function readCheckpoint(memberDir: string, id: string): FoundCheckpoint | undefined {
  const folder = join(memberDir, id);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(join(folder, MANIFEST_FILE), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  if (manifest.id !== id || !Number.isInteger(manifest.step) || manifest.step < 0 || !Array.isArray(manifest.files)) return undefined;
  let size = 0;
  for (const f of manifest.files) {
    if (typeof f?.name !== 'string' || f.name.includes('..') || f.name.startsWith('/')) return undefined;
    try {
      const st = statSync(join(folder, f.name));
      if (!st.isFile() || st.size !== f.size) return undefined;
      size += st.size;
    } catch {
      return undefined;
    }
  }
  return { id, step: manifest.step, sizeBytes: size, files: manifest.files.length, time: String(manifest.time ?? ''), path: folder };
}

/** Every complete checkpoint in a member's folder, by step then time. */
export function listCheckpoints(memberDir: string): FoundCheckpoint[] {
  let names: string[];
  try {
    names = readdirSync(memberDir);
  } catch {
    return [];
  }
  const found: FoundCheckpoint[] = [];
  for (const name of names) {
    if (name.startsWith('.') || !ID_RE.test(name)) continue;
    const c = readCheckpoint(memberDir, name);
    if (c) found.push(c);
  }
  return found.sort((a, b) => a.step - b.step || a.time.localeCompare(b.time));
}

/** The pending request in a member's folder, if any. */
export function readRequest(memberDir: string): CheckpointRequest | undefined {
  try {
    const r = JSON.parse(readFileSync(join(memberDir, REQUEST_FILE), 'utf8')) as CheckpointRequest;
    return typeof r.id === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Writes a file whole or not at all: to a temporary name, synced, then renamed. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** The agent's side: ask a member for checkpoint `request.id`. */
export function writeRequest(memberDir: string, request: CheckpointRequest): void {
  mkdirSync(memberDir, { recursive: true });
  writeFileAtomic(join(memberDir, REQUEST_FILE), JSON.stringify(request));
}
