// The behaviour every Store backend must share. `storeConformance` registers node:test
// tests for one backend; test/store-<backend>.test.ts call it with a factory.
//
// Tests never assume absolute revision numbers (etcd's revision counter is shared by all
// the stores of one etcd), only their order, and every store gets a keyspace of its own.
// Nothing here measures time: watch tests wait for the events they expect, and prove no
// extra event came by writing a sentinel key and waiting for it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  StoreErrorCode,
  isStoreError,
  type KeyValue,
  type Store,
  type StoreError,
  type TxnOp,
  type WatchEvent,
} from '../src/store/store.ts';

export interface StoreUnderTest {
  /** A fresh, empty store with a keyspace of its own. */
  open(): Promise<Store>;
  /**
   * A fresh store that compacts history older than `historyRevisions` by itself (backends
   * with automatic compaction only). Compaction must be done by the time a write that
   * triggers it resolves and one more event-loop turn (setImmediate) has passed.
   */
  openWithHistory?(historyRevisions: number): Promise<Store>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
}

/** Guards against hangs only: a broken watch would otherwise wait forever. */
const TEST_TIMEOUT_MS = 20_000;

async function expectCode(promise: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(isStoreError(caught), `expected a StoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Records a watch's events and lets a test wait for a condition on them. */
class Recorder {
  readonly events: WatchEvent[] = [];
  error: StoreError | undefined;
  /** Contract breaches seen by the handlers; asserted empty by `settle`. */
  readonly breaches: string[] = [];
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];

  readonly handlers = {
    onEvent: (event: WatchEvent) => {
      if (this.error) this.breaches.push(`event after onError: ${event.kv.key}`);
      this.events.push(event);
      this.wake();
    },
    onError: (err: StoreError) => {
      if (this.error) this.breaches.push('onError called twice');
      this.error = err;
      this.wake();
    },
  };

  until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }

  /** Waits for the event at `revision` (or later) under this watch, or for an error. */
  untilRevision(revision: number): Promise<void> {
    return this.until(() => this.error !== undefined || this.events.some((e) => e.kv.modRevision >= revision));
  }

  summary(): string[] {
    return this.events.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}${e.created ? ' (created)' : ''}`);
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.ready()) return true;
      w.resolve();
      return false;
    });
  }
}

async function record(store: Store, prefix: string, afterRevision?: number): Promise<Recorder & { close(): void }> {
  const recorder = new Recorder();
  const watch = await store.watch(prefix, recorder.handlers, afterRevision === undefined ? {} : { afterRevision });
  return Object.assign(recorder, { close: () => watch.close() });
}

/** Writes a sentinel under `prefix` and waits for `recorder` to see it: everything before it has arrived. */
async function settle(store: Store, recorder: Recorder, prefix: string): Promise<void> {
  const sentinel = await store.create(`${prefix}~sentinel-${Math.random().toString(36).slice(2)}`, 'sentinel');
  await recorder.untilRevision(sentinel.modRevision);
  assert.equal(recorder.error, undefined);
  assert.deepEqual(recorder.breaches, []);
  const last = recorder.events.pop()!;
  assert.equal(last.kv.key, sentinel.key, 'the sentinel is the last event');
}

const keysOf = (items: KeyValue[]) => items.map((kv) => kv.key);

export function storeConformance(name: string, sut: StoreUnderTest): void {
  describe(`${name}: store conformance`, { timeout: TEST_TIMEOUT_MS }, () => {
    if (sut.setup) before(() => sut.setup!());
    if (sut.teardown) after(() => sut.teardown!());

    /** A test with a fresh store, closed afterwards. */
    const test = (title: string, body: (store: Store) => Promise<void>) =>
      it(title, async () => {
        const store = await sut.open();
        try {
          await body(store);
        } finally {
          await store.close();
        }
      });

    describe('single-key operations', () => {
      test('create then get; a second create is ALREADY_EXISTS and changes nothing', async (store) => {
        assert.equal(await store.get('/k/a'), undefined);
        const created = await store.create('/k/a', 'v1');
        assert.equal(created.key, '/k/a');
        assert.equal(created.value, 'v1');
        assert.ok(created.modRevision > 0);
        assert.equal(created.createRevision, created.modRevision);
        assert.deepEqual(await store.get('/k/a'), created);
        const revision = await store.currentRevision();
        assert.equal(revision, created.modRevision);

        const err = await expectCode(store.create('/k/a', 'v2'), StoreErrorCode.ALREADY_EXISTS);
        assert.equal(err.key, '/k/a');
        assert.deepEqual(await store.get('/k/a'), created);
        assert.equal(await store.currentRevision(), revision);
      });

      test('update: compare-and-swap on modRevision, CONFLICT on a stale one', async (store) => {
        const v1 = await store.create('/k/a', 'v1');
        const v2 = await store.update('/k/a', 'v2', v1.modRevision);
        assert.equal(v2.value, 'v2');
        assert.equal(v2.createRevision, v1.createRevision);
        assert.ok(v2.modRevision > v1.modRevision);
        assert.deepEqual(await store.get('/k/a'), v2);

        const revision = await store.currentRevision();
        const err = await expectCode(store.update('/k/a', 'stale', v1.modRevision), StoreErrorCode.CONFLICT);
        assert.equal(err.key, '/k/a');
        assert.deepEqual(await store.get('/k/a'), v2, 'a refused update writes nothing');
        assert.equal(await store.currentRevision(), revision, 'a refused update uses no revision');

        const v3 = await store.update('/k/a', 'v3');
        assert.ok(v3.modRevision > v2.modRevision, 'an update without expectedRevision always applies');
        assert.equal(v3.createRevision, v1.createRevision);
      });

      test('update and delete of an absent key are NOT_FOUND, with or without expectedRevision', async (store) => {
        await expectCode(store.update('/k/none', 'v'), StoreErrorCode.NOT_FOUND);
        await expectCode(store.update('/k/none', 'v', 5), StoreErrorCode.NOT_FOUND);
        await expectCode(store.delete('/k/none'), StoreErrorCode.NOT_FOUND);
        const err = await expectCode(store.delete('/k/none', 5), StoreErrorCode.NOT_FOUND);
        assert.equal(err.key, '/k/none');
        assert.equal(await store.get('/k/none'), undefined);
      });

      test('delete returns the last value with modRevision = the deletion revision', async (store) => {
        const v1 = await store.create('/k/a', 'v1');
        const v2 = await store.update('/k/a', 'v2');
        await expectCode(store.delete('/k/a', v1.modRevision), StoreErrorCode.CONFLICT);
        assert.deepEqual(await store.get('/k/a'), v2);

        const deleted = await store.delete('/k/a', v2.modRevision);
        assert.equal(deleted.key, '/k/a');
        assert.equal(deleted.value, 'v2');
        assert.equal(deleted.createRevision, v1.createRevision);
        assert.ok(deleted.modRevision > v2.modRevision);
        assert.equal(deleted.modRevision, await store.currentRevision());
        assert.equal(await store.get('/k/a'), undefined);

        const again = await store.create('/k/a', 'v3');
        assert.ok(again.createRevision > deleted.modRevision, 'a re-created key starts a new life');
        assert.equal(again.createRevision, again.modRevision);
      });

      test('revisions strictly increase across writes', async (store) => {
        let last = await store.currentRevision();
        const writes: (() => Promise<KeyValue>)[] = [
          () => store.create('/r/a', '1'),
          () => store.create('/r/b', '1'),
          () => store.update('/r/a', '2'),
          () => store.delete('/r/b'),
          () => store.create('/r/b', '2'),
          () => store.delete('/r/a'),
        ];
        for (const write of writes) {
          const kv = await write();
          assert.ok(kv.modRevision > last, `revision ${kv.modRevision} follows ${last}`);
          last = kv.modRevision;
          assert.equal(await store.currentRevision(), last);
        }
      });

      test('writes issued together all apply, one at a time', async (store) => {
        const created = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(`/c/${i}`, `${i}`)));
        assert.equal(new Set(created.map((kv) => kv.modRevision)).size, 20, 'each write has its own revision');
        assert.equal(await store.count('/c/'), 20);

        // Exactly one of two racing creates, and of two racing compare-and-swaps, wins.
        const racingCreates = await Promise.allSettled([store.create('/c/x', 'a'), store.create('/c/x', 'b')]);
        assert.equal(racingCreates.filter((r) => r.status === 'fulfilled').length, 1);
        const loser = racingCreates.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isStoreError(loser.reason, StoreErrorCode.ALREADY_EXISTS));

        const base = (await store.get('/c/x'))!;
        const racingSwaps = await Promise.allSettled([
          store.update('/c/x', 'p', base.modRevision),
          store.update('/c/x', 'q', base.modRevision),
        ]);
        assert.equal(racingSwaps.filter((r) => r.status === 'fulfilled').length, 1);
        const swapLoser = racingSwaps.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(isStoreError(swapLoser.reason, StoreErrorCode.CONFLICT));
      });

      test('bad arguments are INVALID', async (store) => {
        await expectCode(store.create('', 'v'), StoreErrorCode.INVALID);
        await expectCode(store.create('/k/a', 42 as unknown as string), StoreErrorCode.INVALID);
        await expectCode(store.list('/k/', { limit: -1 }), StoreErrorCode.INVALID);
        await expectCode(
          store.txn([
            { op: 'create', key: '/k/a', value: '1' },
            { op: 'delete', key: '/k/a' },
          ]),
          StoreErrorCode.INVALID,
        );
        await expectCode(store.list('/k/', { revision: (await store.currentRevision()) + 1000 }), StoreErrorCode.INVALID);
      });
    });

    describe('list and count', () => {
      test('lists keys under a prefix in byte order; /a/ does not include /ab/', async (store) => {
        const keys = ['/a/b', '/a/a', '/a/\u{1F600}', '/a/\uff5e', '/a/\u00e9', '/a/B', '/ab/x', '/a', '/b/a'];
        for (const key of keys) await store.create(key, `value of ${key}`);
        const { items, more, revision } = await store.list('/a/');
        // UTF-8 byte order, which is not JavaScript's default string order for U+1F600.
        assert.deepEqual(keysOf(items), ['/a/B', '/a/a', '/a/b', '/a/\u00e9', '/a/\uff5e', '/a/\u{1F600}']);
        assert.ok(items.every((kv) => kv.value === `value of ${kv.key}`));
        assert.equal(more, false);
        assert.equal(revision, await store.currentRevision());
        assert.deepEqual(keysOf((await store.list('/ab/')).items), ['/ab/x']);
        assert.equal((await store.list('/a')).items.length, 8);
        assert.equal((await store.list('')).items.length, keys.length);
        assert.deepEqual((await store.list('/none/')).items, []);
      });

      test('count counts the keys under a prefix now', async (store) => {
        for (const key of ['/a/1', '/a/2', '/a/3', '/ab/1', '/b/1']) await store.create(key, 'v');
        assert.equal(await store.count('/a/'), 3);
        assert.equal(await store.count('/a'), 4);
        assert.equal(await store.count(''), 5);
        assert.equal(await store.count('/z/'), 0);
        await store.delete('/a/2');
        assert.equal(await store.count('/a/'), 2);
      });

      test('limit and startAfter page through a prefix, with `more` exact', async (store) => {
        for (const i of [3, 1, 5, 2, 4]) await store.create(`/p/${i}`, `v${i}`);
        await store.create('/q/0', 'outside');
        const first = await store.list('/p/', { limit: 2 });
        assert.deepEqual(keysOf(first.items), ['/p/1', '/p/2']);
        assert.equal(first.more, true);
        const second = await store.list('/p/', { limit: 2, startAfter: '/p/2' });
        assert.deepEqual(keysOf(second.items), ['/p/3', '/p/4']);
        assert.equal(second.more, true);
        const third = await store.list('/p/', { limit: 2, startAfter: '/p/4' });
        assert.deepEqual(keysOf(third.items), ['/p/5']);
        assert.equal(third.more, false);

        const exact = await store.list('/p/', { limit: 5 });
        assert.equal(exact.items.length, 5);
        assert.equal(exact.more, false, 'a page that ends exactly at the last key has no more');
        assert.equal((await store.list('/p/', { limit: 0 })).items.length, 5);
        assert.equal((await store.list('/p/', { startAfter: '/' })).items.length, 5, 'startAfter before the prefix');
        assert.deepEqual(keysOf((await store.list('/p/', { startAfter: '/p/5' })).items), []);
        assert.deepEqual(keysOf((await store.list('/p/', { startAfter: '/p/25' })).items), ['/p/3', '/p/4', '/p/5']);
      });

      test('paging at a fixed revision sees the state of that revision', async (store) => {
        for (const i of [1, 2, 3, 4, 5]) await store.create(`/p/${i}`, `v${i}`);
        await store.create('/p/0', 'deleted before the revision');
        await store.delete('/p/0');
        const initial = await store.list('/p/');
        const revision = initial.revision;
        const first = await store.list('/p/', { limit: 2, revision });
        assert.deepEqual(first.items, initial.items.slice(0, 2));

        await store.delete('/p/3');
        await store.update('/p/4', 'changed');
        await store.create('/p/2a', 'new');
        await store.update('/p/1', 'changed');
        await store.create('/p/6', 'new');

        const rest = await store.list('/p/', { limit: 2, startAfter: '/p/2', revision });
        assert.deepEqual(rest.items, initial.items.slice(2, 4));
        assert.equal(rest.revision, revision);
        assert.equal(rest.more, true);
        const last = await store.list('/p/', { limit: 2, startAfter: '/p/4', revision });
        assert.deepEqual(last.items, initial.items.slice(4));
        assert.equal(last.more, false, 'keys created after the revision do not count as more');

        assert.deepEqual((await store.list('/p/', { revision })).items, initial.items);
        assert.equal((await store.list('/p/', { revision, limit: 5 })).more, false);
        assert.deepEqual(keysOf((await store.list('/p/')).items), ['/p/1', '/p/2', '/p/2a', '/p/4', '/p/5', '/p/6']);
      });
    });

    describe('transactions', () => {
      test('a transaction applies all its ops', async (store) => {
        const k1 = await store.create('/t/k1', 'v1');
        await store.create('/t/k3', 'v3');
        const before = await store.currentRevision();
        const { revision, results } = await store.txn([
          { op: 'create', key: '/t/k2', value: 'v2' },
          { op: 'update', key: '/t/k1', value: 'v1b', expectedRevision: k1.modRevision },
          { op: 'delete', key: '/t/k3' },
        ]);
        assert.equal(results.length, 3);
        assert.ok(results.every((kv) => kv.modRevision > before && kv.modRevision <= revision));
        assert.equal(revision, Math.max(...results.map((kv) => kv.modRevision)));
        assert.equal(revision, await store.currentRevision());
        assert.deepEqual([results[0]!.key, results[0]!.value], ['/t/k2', 'v2']);
        assert.equal(results[0]!.createRevision, results[0]!.modRevision);
        assert.deepEqual([results[1]!.value, results[1]!.createRevision], ['v1b', k1.createRevision]);
        assert.deepEqual([results[2]!.key, results[2]!.value], ['/t/k3', 'v3']);
        assert.deepEqual(await store.get('/t/k2'), results[0]);
        assert.deepEqual(await store.get('/t/k1'), results[1]);
        assert.equal(await store.get('/t/k3'), undefined);
        const empty = await store.txn([]);
        assert.deepEqual(empty, { revision, results: [] });
      });

      test('a failing op refuses the whole transaction with its error, writing nothing', async (store) => {
        const k1 = await store.create('/t/k1', 'v1');
        await store.update('/t/k1', 'v1b');
        await store.create('/t/k2', 'v2');
        const watch = await record(store, '/t/');
        const before = await store.currentRevision();
        const snapshot = (await store.list('/t/')).items;

        const cases: [TxnOp[], StoreErrorCode, string][] = [
          [[{ op: 'create', key: '/t/new', value: 'x' }, { op: 'update', key: '/t/k1', value: 'x', expectedRevision: k1.modRevision }], StoreErrorCode.CONFLICT, '/t/k1'],
          [[{ op: 'create', key: '/t/new', value: 'x' }, { op: 'delete', key: '/t/missing' }], StoreErrorCode.NOT_FOUND, '/t/missing'],
          [[{ op: 'delete', key: '/t/k1' }, { op: 'create', key: '/t/k2', value: 'x' }], StoreErrorCode.ALREADY_EXISTS, '/t/k2'],
          [[{ op: 'update', key: '/t/missing', value: 'x' }, { op: 'delete', key: '/t/k2', expectedRevision: 1 }], StoreErrorCode.NOT_FOUND, '/t/missing'],
        ];
        for (const [ops, code, key] of cases) {
          const err = await expectCode(store.txn(ops), code);
          assert.equal(err.key, key, 'the error names the first failing op');
        }
        assert.deepEqual((await store.list('/t/')).items, snapshot);
        assert.equal(await store.currentRevision(), before);
        await settle(store, watch, '/t/');
        assert.deepEqual(watch.summary(), [], 'watchers see nothing of a refused transaction');
        watch.close();
      });
    });

    describe('watch', () => {
      test('from a revision: replays history in order exactly once, then goes live', async (store) => {
        const start = await store.currentRevision();
        const a1 = await store.create('/w/a', '1');
        await store.update('/w/a', '2');
        await store.create('/w/b', '1');
        await store.create('/other/x', 'not watched');
        const deleted = await store.delete('/w/a');

        // Events must not arrive before watch() has resolved.
        const watch = new Recorder();
        let resolved = false;
        const handle = await store.watch(
          '/w/',
          {
            onEvent: (event) => {
              if (!resolved) watch.breaches.push('event before watch() resolved');
              watch.handlers.onEvent(event);
            },
            onError: watch.handlers.onError,
          },
          { afterRevision: start },
        );
        resolved = true;
        await watch.until(() => watch.events.length >= 4);
        await store.create('/w/c', 'live');
        await store.update('/w/b', '2');
        await settle(store, watch, '/w/');

        assert.deepEqual(watch.summary(), [
          'put /w/a=1 (created)',
          'put /w/a=2',
          'put /w/b=1 (created)',
          'delete /w/a=2',
          'put /w/c=live (created)',
          'put /w/b=2',
        ]);
        const revisions = watch.events.map((e) => e.kv.modRevision);
        assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y));
        assert.equal(new Set(revisions).size, revisions.length);
        const del = watch.events[3]!;
        assert.deepEqual(del.kv, { key: '/w/a', value: '2', createRevision: a1.createRevision, modRevision: deleted.modRevision });
        assert.equal(del.created, false);
        handle.close();
      });

      test('without a revision: only changes from now on', async (store) => {
        await store.create('/w/old', 'before');
        const watch = await record(store, '/w/');
        await store.update('/w/old', 'after');
        await settle(store, watch, '/w/');
        assert.deepEqual(watch.summary(), ['put /w/old=after']);
        watch.close();
      });

      test('from the current revision or later: nothing replayed, later changes delivered', async (store) => {
        await store.create('/w/a', '1');
        const now = await store.currentRevision();
        const fromNow = await record(store, '/w/', now);
        await store.create('/w/b', '1');
        await settle(store, fromNow, '/w/');
        assert.deepEqual(fromNow.summary(), ['put /w/b=1 (created)']);
        fromNow.close();
      });

      test('from a future revision: only changes above it', async (store) => {
        const now = await store.currentRevision();
        const watch = await record(store, '/w/', now + 2);
        await store.create('/w/a', '1');
        await store.create('/w/b', '1');
        await store.create('/w/c', '1');
        await settle(store, watch, '/w/');
        assert.deepEqual(watch.summary(), ['put /w/c=1 (created)']);
        watch.close();
      });

      test('sees every change of a transaction', async (store) => {
        await store.create('/w/gone', 'x');
        const watch = await record(store, '/w/');
        const { results } = await store.txn([
          { op: 'create', key: '/w/a', value: '1' },
          { op: 'delete', key: '/w/gone' },
          { op: 'create', key: '/w/b', value: '1' },
        ]);
        await settle(store, watch, '/w/');
        assert.deepEqual(watch.summary(), ['put /w/a=1 (created)', 'delete /w/gone=x', 'put /w/b=1 (created)']);
        assert.deepEqual(
          watch.events.map((e) => e.kv.modRevision),
          results.map((kv) => kv.modRevision),
        );
        watch.close();
      });

      test('two watchers on different prefixes each see their own keys', async (store) => {
        const one = await record(store, '/w1/');
        const two = await record(store, '/w2/');
        await store.create('/w1/a', '1');
        await store.create('/w2/a', '2');
        await store.create('/w10/a', 'neither');
        await store.txn([
          { op: 'update', key: '/w1/a', value: '1b' },
          { op: 'update', key: '/w2/a', value: '2b' },
        ]);
        await settle(store, one, '/w1/');
        await settle(store, two, '/w2/');
        assert.deepEqual(one.summary(), ['put /w1/a=1 (created)', 'put /w1/a=1b']);
        assert.deepEqual(two.summary(), ['put /w2/a=2 (created)', 'put /w2/a=2b']);
        one.close();
        two.close();
      });

      test('replays a long history in order', async (store) => {
        const start = await store.currentRevision();
        const total = 1200;
        for (let batch = 0; batch < total / 100; batch++) {
          await store.txn(
            Array.from({ length: 100 }, (_, i) => ({ op: 'create' as const, key: `/h/${batch * 100 + i}`, value: 'v' })),
          );
        }
        const watch = await record(store, '/h/', start);
        await watch.until(() => watch.events.length >= total);
        await settle(store, watch, '/h/');
        assert.equal(watch.events.length, total);
        assert.deepEqual(
          watch.events.map((e) => e.kv.key),
          Array.from({ length: total }, (_, i) => `/h/${i}`),
        );
        watch.close();
      });

      test('no event after close', async (store) => {
        const watch = await record(store, '/w/');
        await store.create('/w/a', '1');
        watch.close();
        const other = await record(store, '/w/');
        await store.create('/w/b', '1');
        await settle(store, other, '/w/');
        assert.ok(watch.events.every((e) => e.kv.key === '/w/a'));
        assert.equal(watch.error, undefined);
        other.close();
      });
    });

    describe('compaction', () => {
      test('watch and list from before the compacted revision are GONE; from it on they work', async (store) => {
        const start = await store.currentRevision();
        await store.create('/x/a', '1');
        await store.update('/x/a', '2');
        await store.create('/x/b', '1');
        await store.delete('/x/b');
        await store.create('/x/c', '1');
        const compactAt = await store.currentRevision();
        await store.update('/x/a', '3');
        await store.delete('/x/c');

        await store.compact(compactAt);
        assert.equal(await store.compactedRevision(), compactAt);
        await store.compact(compactAt - 1); // already compacted: nothing to do
        await expectCode(store.compact((await store.currentRevision()) + 1000), StoreErrorCode.INVALID);

        await expectCode(store.watch('/x/', new Recorder().handlers, { afterRevision: start }), StoreErrorCode.GONE);
        await expectCode(store.watch('/x/', new Recorder().handlers, { afterRevision: compactAt - 1 }), StoreErrorCode.GONE);
        await expectCode(store.list('/x/', { revision: compactAt - 1 }), StoreErrorCode.GONE);

        // The compacted revision itself is still readable, as it was.
        const at = await store.list('/x/', { revision: compactAt });
        assert.deepEqual(at.items.map((kv) => `${kv.key}=${kv.value}`), ['/x/a=2', '/x/c=1']);
        const paged = await store.list('/x/', { revision: compactAt, limit: 1 });
        assert.deepEqual([keysOf(paged.items), paged.more], [['/x/a'], true]);

        const watch = await record(store, '/x/', compactAt);
        await settle(store, watch, '/x/');
        assert.deepEqual(watch.summary(), ['put /x/a=3', 'delete /x/c=1']);
        watch.close();
      });

      if (sut.openWithHistory) {
        it('compacts history beyond the retained window by itself', async () => {
          const store = await sut.openWithHistory!(10);
          try {
            for (let i = 0; i < 40; i++) await store.create(`/auto/${i}`, 'v');
            await nextTurn();
            const current = await store.currentRevision();
            const compacted = await store.compactedRevision();
            assert.ok(compacted > 0, 'history was compacted');
            assert.ok(compacted >= current - 10 - 2 && compacted <= current - 10, `compacted ${compacted} keeps about 10 of ${current}`);
            await expectCode(store.watch('/auto/', new Recorder().handlers, { afterRevision: 0 }), StoreErrorCode.GONE);
            const watch = await record(store, '/auto/', current - 10);
            await settle(store, watch, '/auto/');
            assert.equal(watch.events.length, 10);
            assert.equal((await store.list('/auto/')).items.length, 41);
            watch.close();
          } finally {
            await store.close();
          }
        });
      }
    });

    describe('model', () => {
      const keys = ['/m/a', '/m/b', '/m/c', '/m/d'];
      type Expect = 'none' | 'current' | 'stale';
      const key = fc.constantFrom(...keys);
      const value = fc.string({ maxLength: 6 });
      const expect = fc.constantFrom<Expect>('none', 'current', 'stale');
      const op = fc.oneof(
        fc.record({ op: fc.constant('create' as const), key, value }),
        fc.record({ op: fc.constant('update' as const), key, value, expect }),
        fc.record({ op: fc.constant('delete' as const), key, expect }),
      );
      type ModelOp = typeof op extends fc.Arbitrary<infer T> ? T : never;
      const command = fc.oneof(
        { weight: 3, arbitrary: op.map((o) => [o]) },
        { weight: 1, arbitrary: fc.uniqueArray(op, { selector: (o) => o.key, minLength: 1, maxLength: 3 }) },
      );

      /** The expected outcome of `ops` on `model`, by the Store contract, written independently of the engine. */
      function predict(model: Map<string, KeyValue>, ops: ModelOp[]): StoreErrorCode | undefined {
        for (const o of ops) {
          const current = model.get(o.key);
          if (o.op === 'create') {
            if (current) return StoreErrorCode.ALREADY_EXISTS;
          } else if (!current) {
            return StoreErrorCode.NOT_FOUND;
          } else if (o.expect === 'stale') {
            return StoreErrorCode.CONFLICT;
          }
        }
        return undefined;
      }

      function toTxnOp(model: Map<string, KeyValue>, o: ModelOp): TxnOp {
        if (o.op === 'create') return o;
        const current = model.get(o.key)?.modRevision ?? 1;
        const expectedRevision = o.expect === 'none' ? undefined : o.expect === 'current' ? current : current - 1;
        return o.op === 'update'
          ? { op: 'update', key: o.key, value: o.value, expectedRevision }
          : { op: 'delete', key: o.key, expectedRevision };
      }

      it('random operations match a model map, and a watcher from the start rebuilds the final state', async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
            const store = await sut.open();
            try {
              const start = await store.currentRevision();
              const watch = await record(store, '/m/', start);
              const model = new Map<string, KeyValue>();
              let revision = start;
              for (const ops of commands) {
                const txnOps = ops.map((o) => toTxnOp(model, o));
                const expected = predict(model, ops);
                const attempt =
                  txnOps.length === 1
                    ? (() => {
                        const [o] = txnOps as [TxnOp];
                        const single =
                          o.op === 'create'
                            ? store.create(o.key, o.value)
                            : o.op === 'update'
                              ? store.update(o.key, o.value, o.expectedRevision)
                              : store.delete(o.key, o.expectedRevision);
                        return single.then((kv) => ({ revision: kv.modRevision, results: [kv] }));
                      })()
                    : store.txn(txnOps);
                if (expected) {
                  await expectCode(attempt, expected);
                  assert.equal(await store.currentRevision(), revision);
                  continue;
                }
                const result = await attempt;
                assert.ok(result.revision > revision);
                txnOps.forEach((o, i) => {
                  const kv = result.results[i]!;
                  const before = model.get(o.key);
                  assert.equal(kv.key, o.key);
                  assert.ok(kv.modRevision > revision && kv.modRevision <= result.revision);
                  if (o.op === 'delete') {
                    assert.deepEqual(kv, { ...before!, modRevision: kv.modRevision });
                    model.delete(o.key);
                  } else {
                    assert.equal(kv.value, o.value);
                    assert.equal(kv.createRevision, o.op === 'create' ? kv.modRevision : before!.createRevision);
                    model.set(o.key, kv);
                  }
                });
                revision = result.revision;
              }

              const expectedState = [...model.values()].sort((x, y) => (x.key < y.key ? -1 : 1));
              assert.deepEqual((await store.list('/m/')).items, expectedState);
              assert.equal(await store.count('/m/'), model.size);

              const rebuilt = new Map<string, KeyValue>();
              if (revision > start) await watch.untilRevision(revision);
              for (const event of watch.events) {
                if (event.type === 'put') rebuilt.set(event.kv.key, event.kv);
                else rebuilt.delete(event.kv.key);
              }
              assert.equal(watch.error, undefined);
              assert.deepEqual([...rebuilt.values()].sort((x, y) => (x.key < y.key ? -1 : 1)), expectedState);
              watch.close();
            } finally {
              await store.close();
            }
          }),
          { numRuns: 30 },
        );
      });
    });
  });
}
