// The client helper's informer: list, watch, and a relist when its revision is too old.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient } from '../src/client/client.ts';
import { Informer } from '../src/client/informer.ts';
import { Task } from '../src/api/kinds/index.ts';
import { startTestControlPlane } from './helpers/controlplane.ts';

const task = (name: string) => ({ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name }, spec: { command: ['true'] } });

for (const store of ['memory', 'sqlite'] as const) {
  test(`informer follows changes and relists after 410 Gone (${store})`, async () => {
    const t = await startTestControlPlane({ store });
    const client = ApiClient.fromKubeconfig(t.kubeconfig);
    const seen: string[] = [];
    const informer = new Informer(client, Task, 'default', {
      add: (o) => seen.push(`add ${o.metadata.name}`),
      update: (o) => seen.push(`update ${o.metadata.name}`),
      delete: (o) => seen.push(`delete ${o.metadata.name}`),
    }, {}, 1500);
    try {
      await client.create(Task, 'default', task('before'));
      informer.start();
      await informer.synced;
      await client.create(Task, 'default', task('live'));
      await until(() => seen.includes('add live'));

      // Drop the watch; while the informer waits to re-watch, change things and forget history.
      t.cp.server.app.server.closeAllConnections();
      await client.delete(Task, 'default', 'before');
      await client.create(Task, 'default', task('during'));
      await t.cp.store.compact(await t.cp.store.currentRevision());

      await until(() => informer.lists === 2);
      assert.ok(seen.includes('delete before'), 'the relist reports what vanished');
      assert.ok(seen.includes('add during'), 'the relist reports what appeared');
      await client.create(Task, 'default', task('after'));
      await until(() => seen.includes('add after'));
      const server = await client.listAll(Task, 'default');
      assert.deepEqual(
        [...informer.cache.values()].map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort(),
        server.items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort(),
      );
    } finally {
      informer.stop();
      await client.close();
      await t.stop();
    }
  });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
