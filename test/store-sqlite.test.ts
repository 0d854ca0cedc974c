// The SQLite store against the conformance suite, plus what only a file can show:
// reopening finds everything and revisions continue.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../src/store/index.ts';
import { openSqliteStore } from '../src/store/sqlite/index.ts';
import { StoreErrorCode, isStoreError, type WatchEvent } from '../src/store/store.ts';
import { storeConformance } from './store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-sqlite-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);

storeConformance('sqlite', {
  open: async () => openSqliteStore({ path: freshPath() }),
  openWithHistory: async (historyRevisions) => openSqliteStore({ path: freshPath(), historyRevisions }),
});

storeConformance('sqlite :memory: with tiny watch buffers', {
  open: async () => openSqliteStore({ path: ':memory:', replayPageSize: 2, maxBacklog: 3 }),
});

describe('sqlite: persistence', () => {
  it('a reopened file has every key, its history and its revisions; new revisions continue', async () => {
    const path = freshPath();
    const first = openSqliteStore({ path });
    const a = await first.create('/a', '1');
    await first.update('/a', '2');
    await first.create('/b', '1');
    await first.compact(a.modRevision);
    const last = await first.delete('/b'); // the newest change is a delete
    const before = await first.list('');
    await first.close();

    const second = openSqliteStore({ path });
    try {
      assert.equal(await second.currentRevision(), last.modRevision);
      assert.equal(await second.compactedRevision(), a.modRevision);
      assert.deepEqual(await second.list(''), before);
      assert.deepEqual((await second.get('/a'))?.value, '2');

      const events: WatchEvent[] = [];
      const done = new Promise<void>((resolve, reject) => {
        void second.watch(
          '',
          {
            onEvent: (e) => {
              events.push(e);
              if (events.length === 3) resolve();
            },
            onError: reject,
          },
          { afterRevision: a.modRevision },
        );
      });
      await done;
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}`),
        ['put /a=2', 'put /b=1', 'delete /b=1'],
      );

      const next = await second.create('/c', '1');
      assert.equal(next.modRevision, last.modRevision + 1);
    } finally {
      await second.close();
    }
  });

  it('refuses to write a file another store wrote behind its back', async () => {
    const path = freshPath();
    const one = openSqliteStore({ path });
    const two = openSqliteStore({ path });
    try {
      await one.create('/a', '1');
      await assert.rejects(two.create('/b', '1'), (err) => isStoreError(err, StoreErrorCode.UNAVAILABLE));
      assert.equal(await one.get('/b'), undefined);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('openStore takes sqlite:// URLs and plain paths', async () => {
    for (const url of [`sqlite://${join(dir, 'url.db')}`, join(dir, 'nested', 'plain.db'), 'sqlite://:memory:']) {
      const store = await openStore(url);
      assert.equal(store.name, 'sqlite', url);
      await store.create('/a', '1');
      await store.close();
    }
  });
});
