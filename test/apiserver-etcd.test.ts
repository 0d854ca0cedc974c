// The API server on a real etcd: resourceVersion is etcd's mod_revision, conflicts and
// creates are etcd transactions, watches resume from a revision, compaction answers 410.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEtcd, type RunningEtcd } from './helpers/etcd.ts';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { ApiClient, ClientError } from '../src/client/client.ts';
import { GangSchedulingGroup } from '../src/api/kinds/index.ts';

let etcd: RunningEtcd;
let t: TestControlPlane;
let client: ApiClient;

const gang = (name: string) => ({
  apiVersion: 'k8s4ai.io/v1alpha1',
  kind: 'GangSchedulingGroup',
  metadata: { name },
  spec: { roles: [{ name: 'w', replicas: 2, template: { command: ['true'], resources: { gpus: 1 } } }] },
});

before(async () => {
  etcd = await startEtcd();
  t = await startTestControlPlane({ store: `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}?prefix=/apitest` });
  client = ApiClient.fromKubeconfig(t.kubeconfig);
});
after(async () => {
  await client?.close();
  await t?.stop();
  await etcd?.stop();
});

test('objects round-trip with etcd revisions as resourceVersions', async () => {
  const created = await client.create(GangSchedulingGroup, 'default', gang('on-etcd'));
  const rv = Number(created.metadata.resourceVersion);
  assert.ok(rv > 0);
  assert.equal(rv, await t.cp.store.currentRevision());
  const patched = await client.patch(GangSchedulingGroup, 'default', 'on-etcd', { spec: { priority: 3 } });
  assert.equal(patched.metadata.generation, 2);
  assert.ok(Number(patched.metadata.resourceVersion) > rv);
  await assert.rejects(
    client.update(GangSchedulingGroup, 'default', 'on-etcd', { ...created, spec: { ...(created.spec as object), priority: 9 } }),
    (err: unknown) => err instanceof ClientError && err.statusCode === 409,
  );
  await assert.rejects(client.create(GangSchedulingGroup, 'default', gang('on-etcd')), (err: unknown) => err instanceof ClientError && err.statusCode === 409);
});

test('a watch resumes from a revision, and a compacted one is 410', async () => {
  const from = (await client.list(GangSchedulingGroup, 'default')).metadata.resourceVersion!;
  await client.create(GangSchedulingGroup, 'default', gang('w-1'));
  await client.delete(GangSchedulingGroup, 'default', 'w-1');
  const events: string[] = [];
  const w = await client.watch(GangSchedulingGroup, 'default', { resourceVersion: from }, (e) => events.push(`${e.type} ${(e.object as { metadata: { name: string } }).metadata.name}`));
  const deadline = Date.now() + 10_000;
  while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  w.close();
  assert.deepEqual(events, ['ADDED w-1', 'DELETED w-1']);

  await t.cp.store.compact(await t.cp.store.currentRevision());
  await assert.rejects(
    client.watch(GangSchedulingGroup, 'default', { resourceVersion: from }, () => undefined),
    (err: unknown) => err instanceof ClientError && err.statusCode === 410,
  );
});
