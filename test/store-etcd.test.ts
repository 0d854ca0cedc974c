// The etcd store against the conformance suite, on a throwaway etcd; plus what only etcd
// shows: compactions made by another client, and losing the server.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../src/store/index.ts';
import { openEtcdStore } from '../src/store/etcd/index.ts';
import { StoreErrorCode, isStoreError, type Store, type StoreError } from '../src/store/store.ts';
import { startEtcd, type RunningEtcd } from './helpers/etcd.ts';
import { storeConformance } from './store-conformance.ts';

let etcd: RunningEtcd | undefined;
let stores = 0;
// Every store gets a prefix of its own: stores of one etcd share revisions, not keys.
// Fixed width, so that no store's prefix is the start of another's keys.
const openFresh = (): Promise<Store> =>
  openEtcdStore({ endpoints: [etcd!.endpoint], prefix: `/conformance-${String(++stores).padStart(6, '0')}` });

storeConformance('etcd', {
  setup: async () => {
    etcd = await startEtcd();
  },
  teardown: async () => {
    await etcd?.stop();
  },
  open: openFresh,
});

describe('etcd: beyond the conformance suite', { timeout: 30_000 }, () => {
  let server: RunningEtcd;
  before(async () => {
    server = await startEtcd();
  });
  after(() => server.stop());

  it('learns of compactions made by another client', async () => {
    const a = await openEtcdStore({ endpoints: [server.endpoint], prefix: '/a' });
    const b = await openStore(`etcd://${server.endpoint.replace('http://', '')}?prefix=/b`);
    try {
      await b.create('/k', '1');
      await b.update('/k', '2');
      const revision = await b.currentRevision();
      await a.compact(revision);
      assert.equal(await b.compactedRevision(), revision);
      await assert.rejects(
        b.watch('/', { onEvent() {}, onError() {} }, { afterRevision: revision - 1 }),
        (err) => isStoreError(err, StoreErrorCode.GONE),
      );
      await assert.rejects(b.list('/', { revision: revision - 1 }), (err) => isStoreError(err, StoreErrorCode.GONE));
      assert.equal((await b.list('/', { revision })).items[0]?.value, '2');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('ends watches with UNAVAILABLE when etcd goes away, and calls fail with UNAVAILABLE', async () => {
    const store = await openEtcdStore({ endpoints: [server.endpoint], prefix: '/lost', dialTimeoutMs: 1000 });
    try {
      let failed!: (err: StoreError) => void;
      const failure = new Promise<StoreError>((resolve) => (failed = resolve));
      await store.watch('/', { onEvent() {}, onError: (err) => failed(err) });
      await store.create('/k', '1');
      await server.stop();
      const err = await failure;
      assert.equal(err.code, StoreErrorCode.UNAVAILABLE);
      await assert.rejects(store.get('/k'), (e) => isStoreError(e, StoreErrorCode.UNAVAILABLE));
    } finally {
      await store.close();
    }
  });

  // Runs after the test above has stopped the server.
  it('openEtcdStore rejects with UNAVAILABLE when nothing answers', async () => {
    await assert.rejects(
      openEtcdStore({ endpoints: [server.endpoint], dialTimeoutMs: 500 }),
      (err) => isStoreError(err, StoreErrorCode.UNAVAILABLE),
    );
  });
});
