// Durability of the embedded SQLite store: a real `k8s4ai up` process is killed with
// SIGKILL in the middle of a stream of writes; after a restart every write it
// acknowledged is there, and so is every object as it was acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Task } from '../src/api/kinds/index.ts';
import { ClientError } from '../src/client/client.ts';
import { startUp, type UpProcess } from './helpers/upprocess.ts';

const WRITERS = 8;

/** Writers create Tasks and then update each once; returns what the server acknowledged. */
function writeStream(up: UpProcess, round: number) {
  const acked = new Map<string, number>(); // name -> acknowledged spec.index (0 = created, 1 = updated)
  let stop = false;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const name = `r${round}-w${w}-${i}`;
      try {
        const created = await up.client.create(Task, 'default', { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name }, spec: { command: ['true'], index: 0 } });
        acked.set(name, 0);
        await up.client.update(Task, 'default', name, { ...created, spec: { ...(created.spec as object), index: 1 } });
        acked.set(name, 1);
      } catch (err) {
        if (err instanceof ClientError) return; // the server is gone
        throw err;
      }
    }
  });
  return {
    acked,
    stop: async () => {
      stop = true;
      await Promise.all(writers);
    },
  };
}

test('kill -9 during a stream of writes loses no acknowledged write', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-crash-'));
  const expected = new Map<string, number>();
  try {
    for (let round = 0; round < 3; round++) {
      const up = await startUp(dir);
      // Everything acknowledged in earlier rounds survived the kill.
      const list = await up.client.listAll(Task, 'default');
      const found = new Map(list.items.map((o) => [o.metadata.name, (o.spec as { index: number }).index]));
      for (const [name, index] of expected) {
        assert.ok(found.has(name), `acknowledged create of ${name} was lost`);
        assert.ok(found.get(name)! >= index, `acknowledged update of ${name} was lost`);
      }
      const stream = writeStream(up, round);
      // Kill at a different point each round, once some writes are acknowledged.
      const killAfter = 50 + round * 137;
      while (stream.acked.size < killAfter) await new Promise((r) => setTimeout(r, 5));
      await up.kill9();
      await stream.stop();
      for (const [k, v] of stream.acked) expected.set(k, v);
    }
    const up = await startUp(dir);
    try {
      const names = new Set((await up.client.listAll(Task, 'default')).items.map((o) => o.metadata.name));
      for (const name of expected.keys()) assert.ok(names.has(name), `acknowledged create of ${name} was lost`);
      assert.ok(expected.size >= 50 + 187 + 324, 'the writers were acknowledged as planned');
    } finally {
      await up.interrupt();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C stops up cleanly and a restart finds every object as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-restart-'));
  try {
    const first = await startUp(dir, ['--fleet', 'demo']);
    const nodes = await first.client.listAll((await import('../src/api/kinds/index.ts')).Node, undefined);
    const created = await first.client.create(Task, 'default', { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name: 'kept', labels: { a: 'b' } }, spec: { command: ['true'] } });
    assert.equal(await first.interrupt(), 0, 'SIGINT exits with 0');
    assert.match(first.output(), /stopping/);

    const second = await startUp(dir, ['--fleet', 'demo']);
    try {
      assert.match(second.output(), /already registered/);
      const again = await second.client.get(Task, 'default', 'kept');
      assert.deepEqual(again, created);
      const nodesAgain = await second.client.listAll((await import('../src/api/kinds/index.ts')).Node, undefined);
      assert.deepEqual(nodesAgain.items, nodes.items);
    } finally {
      await second.interrupt();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
