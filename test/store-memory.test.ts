// The memory store against the conformance suite: once as configured by default, once
// with tiny watch buffers so replay paging and slow-consumer fallback are exercised.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../src/store/index.ts';
import { createMemoryStore } from '../src/store/memory/index.ts';
import { StoreErrorCode, isStoreError } from '../src/store/store.ts';
import { storeConformance } from './store-conformance.ts';

storeConformance('memory', {
  open: async () => createMemoryStore(),
  openWithHistory: async (historyRevisions) => createMemoryStore({ historyRevisions }),
});

storeConformance('memory with tiny watch buffers', {
  open: async () => createMemoryStore({ replayPageSize: 2, maxBacklog: 3 }),
});

describe('openStore', () => {
  it('opens a memory store from memory://', async () => {
    const store = await openStore('memory://?historyRevisions=5');
    assert.equal(store.name, 'memory');
    await store.create('/a', '1');
    await store.close();
  });

  it('refuses unknown schemes and bad parameters with INVALID', async () => {
    for (const url of ['redis://localhost', 'memory://?historyRevisions=-1', '']) {
      await assert.rejects(openStore(url), (err) => isStoreError(err, StoreErrorCode.INVALID), url);
    }
  });

  it('refuses calls on a closed store with UNAVAILABLE', async () => {
    const store = createMemoryStore();
    await store.close();
    await assert.rejects(store.get('/a'), (err) => isStoreError(err, StoreErrorCode.UNAVAILABLE));
  });
});
