// The agent's side of checkpoints for one member: its folder, staging the checkpoint it
// resumes from (copied from the node that holds it when this machine can read it), and
// deleting old checkpoints only once a newer one is complete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../src/api/meta.ts';
import { memberDir, pruneCheckpoints, stageRestore, CheckpointUnavailableError } from '../src/agent/checkpoints.ts';
import { MANIFEST_FILE, readCheckpoint } from '../src/checkpoint/protocol.ts';

const root = mkdtempSync(join(tmpdir(), 'k8s4ai-agent-ckpt-'));

/** A complete checkpoint `id` at `step` in a member folder. */
function write(dir: string, id: string, step: number, complete = true): string {
  const folder = join(dir, id);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'weights.bin'), 'x'.repeat(10));
  if (complete) writeFileSync(join(folder, MANIFEST_FILE), JSON.stringify({ id, step, files: [{ name: 'weights.bin', size: 10 }], time: new Date().toISOString() }));
  return folder;
}

const entry = (id: string, step: number, locations: { member: string; node: string; path: string }[] = []) =>
  ({ id, step, time: new Date().toISOString(), durationSeconds: 1, sizeBytes: 10, nodes: [...new Set(locations.map((l) => l.node))], locations });

const gang = (status: Record<string, unknown>): KubeObject => ({ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', metadata: { name: 'g', namespace: 'ns', uid: 'abcdef12-0000' }, status });

const task = (name: string): KubeObject => ({
  apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task',
  metadata: { name, namespace: 'ns', uid: 't1', ownerReferences: [{ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', name: 'g', uid: 'abcdef12-0000', controller: true }] },
});

test('a member\'s folder: per node on local NVMe, one path on shared storage, the gang\'s uid in it', () => {
  const local = memberDir(task('g-worker-1'), 'g', 'node-a', { interval: '1m', storage: { type: 'LocalNVMe', path: '/ckpt' } }, '/scratch');
  assert.equal(local, '/ckpt/node-a/ns/g-abcdef12/worker-1');
  const shared = memberDir(task('g-worker-1'), 'g', 'node-a', { interval: '1m', storage: { type: 'Shared', path: '/mnt' } }, '/scratch');
  assert.equal(shared, '/mnt/ns/g-abcdef12/worker-1');
  assert.equal(memberDir(task('g-worker-1'), 'g', 'node-a', undefined, '/scratch'), '/scratch/ns/g-abcdef12/worker-1');
});

test('a fresh start has nothing to restore', () => {
  assert.equal(stageRestore(gang({}), 'worker-0', join(root, 'fresh')), undefined);
});

test('the checkpoint already in the member\'s folder is used as it is', () => {
  const dir = join(root, 'here', 'worker-0');
  write(dir, 'ckpt-000002', 20);
  assert.equal(stageRestore(gang({ lastCheckpoint: entry('ckpt-000002', 20) }), 'worker-0', dir), 'ckpt-000002');
});

test('a part on another node this machine can read is copied in first', () => {
  const there = join(root, 'node-a', 'worker-1');
  const path = write(there, 'ckpt-000003', 30);
  const dir = join(root, 'node-b', 'worker-1');
  const id = stageRestore(gang({ lastCheckpoint: entry('ckpt-000003', 30, [{ member: 'worker-1', node: 'node-a', path }]) }), 'worker-1', dir);
  assert.equal(id, 'ckpt-000003');
  assert.equal(readCheckpoint(dir, 'ckpt-000003')?.step, 30, 'complete on the new node');
});

test('a part nobody can read fails with a clear error, and an incomplete source is refused', () => {
  const dir = join(root, 'node-c', 'worker-2');
  assert.throws(
    () => stageRestore(gang({ lastCheckpoint: entry('ckpt-000004', 40, [{ member: 'worker-2', node: 'far-away', path: '/nonexistent/ckpt-000004' }]) }), 'worker-2', dir),
    (err: unknown) => err instanceof CheckpointUnavailableError && /on node far-away at \/nonexistent\/ckpt-000004/.test(err.message),
  );
  const partial = write(join(root, 'node-d', 'worker-2'), 'ckpt-000004', 40, false);
  assert.throws(() => stageRestore(gang({ lastCheckpoint: entry('ckpt-000004', 40, [{ member: 'worker-2', node: 'node-d', path: partial }]) }), 'worker-2', dir), CheckpointUnavailableError);
  assert.throws(() => stageRestore(gang({ lastCheckpoint: entry('ckpt-000004', 40, []) }), 'worker-9', dir), /no part for member worker-9/);
});

test('old checkpoints go only once a newer one is complete; kept and in-progress ones stay', () => {
  const dir = join(root, 'prune', 'worker-0');
  for (const [id, step] of [['ckpt-000001', 10], ['ckpt-000002', 20], ['ckpt-000003', 30], ['ckpt-000004', 40]] as const) write(dir, id, step);
  write(dir, 'ckpt-000005', 50, false); // being written now
  // Nothing complete for the gang yet: nothing goes.
  assert.deepEqual(pruneCheckpoints(gang({}), dir), []);
  const kept = [entry('ckpt-000004', 40), entry('ckpt-000003', 30)];
  const removed = pruneCheckpoints(gang({ lastCheckpoint: kept[0], checkpoints: kept }), dir);
  assert.deepEqual(removed.sort(), ['ckpt-000001', 'ckpt-000002']);
  for (const id of ['ckpt-000003', 'ckpt-000004', 'ckpt-000005']) assert.ok(existsSync(join(dir, id)), `${id} stays`);
});
