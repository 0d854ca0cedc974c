// End to end with @kubernetes/client-node 1.4.0 against the real control plane:
// CustomObjectsApi CRUD for a namespaced and a cluster-scoped kind, merge and JSON
// patches, error shapes, CoreV1Api namespaces, the generic KubernetesObjectApi (which
// uses discovery), and an informer that sees add/update/delete and survives a 410: its
// watch is cut, history is compacted past what it saw, it re-watches, gets 410 Gone,
// relists, and ends up with exactly the server's objects.
//
// The control plane (memory store, no fleet) listens on 127.0.0.1:<free port>; the
// client reads the kubeconfig the control plane itself wrote.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { GangSchedulingGroup, AcceleratorClass } from '../src/api/kinds/index.ts';
import type { KubeObject } from '../src/api/meta.ts';

const GROUP = 'k8s4ai.io';
const VERSION = 'v1alpha1';
const GANGS = { group: GROUP, version: VERSION, plural: 'gangschedulinggroups' } as const;
const CLASSES = { group: GROUP, version: VERSION, plural: 'acceleratorclasses' } as const;
const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

let t: TestControlPlane;
let kc: k8s.KubeConfig;
let custom: k8s.CustomObjectsApi;
let core: k8s.CoreV1Api;

const gang = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'GangSchedulingGroup',
  metadata: { name },
  spec: { roles: [{ name: 'worker', replicas: 2, template: { command: ['python', 'train.py'], resources: { gpus: 1 } } }], ...extra },
});

const acceleratorClass = (name: string) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'AcceleratorClass',
  metadata: { name },
  spec: { vendor: 'nvidia', productName: 'NVIDIA L4', architecture: 'ada-lovelace', memory: '24Gi' },
});

/** Runs fn, which must throw an ApiException; returns its code and JSON body. */
async function apiError(fn: () => Promise<unknown>): Promise<{ code: number; body: { kind?: string; reason?: string; message?: string; code?: number; details?: { causes?: { field: string }[] } } }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof k8s.ApiException, `expected an ApiException, got ${String(err)}`);
    const raw = (err as k8s.ApiException<unknown>).body;
    return { code: (err as k8s.ApiException<unknown>).code, body: typeof raw === 'string' && raw ? JSON.parse(raw) : ((raw as object) ?? {}) };
  }
  assert.fail('the call should have failed');
}

/** Resolves when check() is true; re-checks after every informer callback and every 20 ms until the deadline. */
async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Fails (instead of hanging) if the promise has not settled within timeoutMs. */
async function within<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const namesOf = (objs: readonly { metadata?: { name?: string } }[]) => objs.map((o) => o.metadata?.name ?? '').sort();

before(async () => {
  t = await startTestControlPlane();
  kc = new k8s.KubeConfig();
  kc.loadFromFile(t.cp.kubeconfig);
  custom = kc.makeApiClient(k8s.CustomObjectsApi);
  core = kc.makeApiClient(k8s.CoreV1Api);
});

after(async () => {
  await t?.stop();
});

describe('@kubernetes/client-node against the control plane', { timeout: 120_000 }, () => {
  it('CoreV1Api lists, creates and reads namespaces', async () => {
    const list = await core.listNamespace();
    assert.ok(namesOf(list.items).includes('default'));
    const created = await core.createNamespace({ body: { metadata: { name: 'cn-crud', labels: { owner: 'client-node' } } } });
    assert.equal(created.metadata?.name, 'cn-crud');
    assert.equal(created.status?.phase, 'Active');
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    const read = await core.readNamespace({ name: 'cn-crud' });
    assert.deepEqual(read.metadata?.labels, { owner: 'client-node' });
    assert.ok(namesOf((await core.listNamespace({ labelSelector: 'owner=client-node' })).items).includes('cn-crud'));
    const dup = await apiError(() => core.createNamespace({ body: { metadata: { name: 'cn-crud' } } }));
    assert.equal(dup.code, 409);
    assert.equal(dup.body.reason, 'AlreadyExists');
  });

  it('CustomObjectsApi: create, get, list, patch, replace, delete a namespaced kind', async () => {
    const namespace = 'cn-crud';
    const created = (await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: gang('g1', { priority: 1 }) })) as KubeObject;
    assert.equal(created.metadata.name, 'g1');
    assert.equal(created.metadata.namespace, namespace);
    assert.equal(created.metadata.generation, 1);
    assert.match(String(created.metadata.resourceVersion), /^\d+$/);
    await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: { ...gang('g2'), metadata: { name: 'g2', labels: { tier: 'batch' } } } });

    const got = (await custom.getNamespacedCustomObject({ ...GANGS, namespace, name: 'g1' })) as KubeObject;
    assert.deepEqual(got, created);

    const list = (await custom.listNamespacedCustomObject({ ...GANGS, namespace })) as { kind: string; metadata: { resourceVersion: string }; items: KubeObject[] };
    assert.equal(list.kind, 'GangSchedulingGroupList');
    assert.match(list.metadata.resourceVersion, /^\d+$/);
    assert.deepEqual(namesOf(list.items), ['g1', 'g2']);
    const selected = (await custom.listNamespacedCustomObject({ ...GANGS, namespace, labelSelector: 'tier=batch' })) as { items: KubeObject[] };
    assert.deepEqual(namesOf(selected.items), ['g2']);
    const byField = (await custom.listNamespacedCustomObject({ ...GANGS, namespace, fieldSelector: 'metadata.name=g1' })) as { items: KubeObject[] };
    assert.deepEqual(namesOf(byField.items), ['g1']);
    const paged = (await custom.listNamespacedCustomObject({ ...GANGS, namespace, limit: 1 })) as { metadata: { continue?: string }; items: KubeObject[] };
    assert.equal(paged.items.length, 1);
    assert.ok(paged.metadata.continue, 'a limited list should carry a continue token');
    const rest = (await custom.listNamespacedCustomObject({ ...GANGS, namespace, limit: 1, _continue: paged.metadata.continue })) as { items: KubeObject[] };
    assert.deepEqual(namesOf([...paged.items, ...rest.items]), ['g1', 'g2']);
    const everywhere = (await custom.listCustomObjectForAllNamespaces({ ...GANGS })) as { items: KubeObject[] };
    assert.ok(namesOf(everywhere.items).includes('g1'));

    // Merge patch (Content-Type set per call).
    const merged = (await custom.patchNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: { spec: { priority: 9 }, metadata: { labels: { patched: 'merge' } } } }, mergePatch())) as KubeObject;
    assert.equal((merged.spec as { priority: number }).priority, 9);
    assert.deepEqual(merged.metadata.labels, { patched: 'merge' });
    assert.equal(merged.metadata.generation, 2);
    // JSON patch: client-node's default patch type.
    const jsonPatched = (await custom.patchNamespacedCustomObject({
      ...GANGS,
      namespace,
      name: 'g1',
      body: [
        { op: 'test', path: '/spec/priority', value: 9 },
        { op: 'replace', path: '/spec/roles/0/replicas', value: 5 },
      ],
    })) as KubeObject;
    assert.equal((jsonPatched.spec as { roles: { replicas: number }[] }).roles[0]!.replicas, 5);
    const failedTest = await apiError(() =>
      custom.patchNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: [{ op: 'test', path: '/spec/priority', value: 1 }] }),
    );
    assert.equal(failedTest.code, 422);
    // Strategic merge: 415, as for custom resources in Kubernetes.
    const strategic = await apiError(() =>
      custom.patchNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: { spec: { priority: 1 } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch)),
    );
    assert.equal(strategic.code, 415);
    assert.equal(strategic.body.reason, 'UnsupportedMediaType');

    // Replace: with the current resourceVersion it works, with a stale one it is a 409.
    const current = (await custom.getNamespacedCustomObject({ ...GANGS, namespace, name: 'g1' })) as KubeObject;
    const replaced = (await custom.replaceNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: { ...current, spec: { ...(current.spec as object), priority: 4 } } })) as KubeObject;
    assert.equal((replaced.spec as { priority: number }).priority, 4);
    const stale = await apiError(() => custom.replaceNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: current }));
    assert.equal(stale.code, 409);
    assert.equal(stale.body.reason, 'Conflict');

    // Status is the /status subresource's: the main resource ignores it.
    const withStatus = (await custom.patchNamespacedCustomObject({ ...GANGS, namespace, name: 'g1', body: { status: { phase: 'Running' } } }, mergePatch())) as KubeObject;
    assert.equal(withStatus.status, undefined);
    const statusPatched = (await custom.patchNamespacedCustomObjectStatus({ ...GANGS, namespace, name: 'g1', body: { status: { phase: 'Running' } } }, mergePatch())) as KubeObject;
    assert.deepEqual(statusPatched.status, { phase: 'Running' });
    assert.equal(statusPatched.metadata.generation, replaced.metadata.generation);

    await custom.deleteNamespacedCustomObject({ ...GANGS, namespace, name: 'g1' });
    const gone = await apiError(() => custom.getNamespacedCustomObject({ ...GANGS, namespace, name: 'g1' }));
    assert.equal(gone.code, 404);
    assert.equal(gone.body.kind, 'Status');
    assert.equal(gone.body.reason, 'NotFound');
    assert.equal(gone.body.message, 'gangschedulinggroups.k8s4ai.io "g1" not found');
    assert.deepEqual(namesOf(((await custom.listNamespacedCustomObject({ ...GANGS, namespace })) as { items: KubeObject[] }).items), ['g2']);
  });

  it('CustomObjectsApi: create, get, list, patch, delete a cluster-scoped kind', async () => {
    const created = (await custom.createClusterCustomObject({ ...CLASSES, body: acceleratorClass('cn-l4') })) as KubeObject;
    assert.equal(created.metadata.name, 'cn-l4');
    assert.equal(created.metadata.namespace, undefined);
    const got = (await custom.getClusterCustomObject({ ...CLASSES, name: 'cn-l4' })) as KubeObject;
    assert.deepEqual(got, created);
    // Defaults from the schema are filled in.
    assert.equal((got.spec as { reservedMemory?: string }).reservedMemory, '0');

    await custom.createClusterCustomObject({ ...CLASSES, body: acceleratorClass('cn-l4-b') });
    const list = (await custom.listClusterCustomObject({ ...CLASSES })) as { items: KubeObject[] };
    assert.deepEqual(namesOf(list.items), ['cn-l4', 'cn-l4-b']);

    const patched = (await custom.patchClusterCustomObject({ ...CLASSES, name: 'cn-l4', body: { spec: { fp8: true, memory: '24576Mi' } } }, mergePatch())) as KubeObject;
    assert.equal((patched.spec as { fp8: boolean }).fp8, true);
    assert.equal((patched.spec as { memory: string }).memory, '24576Mi');
    const jsonPatched = (await custom.patchClusterCustomObject({ ...CLASSES, name: 'cn-l4', body: [{ op: 'add', path: '/metadata/labels', value: { vendor: 'nvidia' } }] })) as KubeObject;
    assert.deepEqual(jsonPatched.metadata.labels, { vendor: 'nvidia' });

    await custom.deleteClusterCustomObject({ ...CLASSES, name: 'cn-l4' });
    assert.equal((await apiError(() => custom.getClusterCustomObject({ ...CLASSES, name: 'cn-l4' }))).code, 404);
    assert.deepEqual(namesOf(((await custom.listClusterCustomObject({ ...CLASSES })) as { items: KubeObject[] }).items), ['cn-l4-b']);
  });

  it('reports invalid objects as 422 with the field paths, and stores nothing', async () => {
    const bad = gang('cn-invalid');
    (bad.spec.roles[0]!.template.resources as Record<string, unknown>).vram = '-1Gi';
    (bad.spec.roles[0]!.template as Record<string, unknown>).colour = 'blue';
    const err = await apiError(() => custom.createNamespacedCustomObject({ ...GANGS, namespace: 'default', body: bad }));
    assert.equal(err.code, 422);
    assert.equal(err.body.reason, 'Invalid');
    const fields = (err.body.details?.causes ?? []).map((c) => c.field).sort();
    assert.deepEqual(fields, ['spec.roles[0].template.colour', 'spec.roles[0].template.resources.vram']);
    assert.equal(await t.cp.registry.tryGet(GangSchedulingGroup, 'default', 'cn-invalid'), undefined);
    // A namespace that does not exist.
    const noNs = await apiError(() => custom.createNamespacedCustomObject({ ...GANGS, namespace: 'cn-nowhere', body: gang('x') }));
    assert.equal(noNs.code, 404);
    // dryRun validates without storing.
    const dry = (await custom.createNamespacedCustomObject({ ...GANGS, namespace: 'default', body: gang('cn-dry'), dryRun: 'All' })) as KubeObject;
    assert.equal(dry.metadata.name, 'cn-dry');
    assert.equal(await t.cp.registry.tryGet(GangSchedulingGroup, 'default', 'cn-dry'), undefined);
  });

  it('refuses a client without a valid token with 401', async () => {
    const anonymous = new k8s.KubeConfig();
    anonymous.loadFromOptions({
      clusters: [{ name: 'c', server: t.cp.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'k8s4ai_not-a-real-token' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const err = await apiError(() => anonymous.makeApiClient(k8s.CoreV1Api).listNamespace());
    assert.equal(err.code, 401);
  });

  it('KubernetesObjectApi resolves our kinds through discovery', async () => {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const created: k8s.KubernetesObject = await objects.create({ ...gang('cn-generic'), metadata: { name: 'cn-generic', namespace: 'cn-crud' } });
    assert.equal(created.metadata?.namespace, 'cn-crud');
    const read = await objects.read<k8s.KubernetesObject>({ apiVersion: `${GROUP}/${VERSION}`, kind: 'GangSchedulingGroup', metadata: { name: 'cn-generic', namespace: 'cn-crud' } });
    assert.equal(read.metadata?.uid, created.metadata?.uid);
    const patched = await objects.patch(
      { apiVersion: `${GROUP}/${VERSION}`, kind: 'GangSchedulingGroup', metadata: { name: 'cn-generic', namespace: 'cn-crud', labels: { via: 'object-api' } } },
      undefined,
      undefined,
      undefined,
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
    assert.deepEqual(patched.metadata?.labels, { via: 'object-api' });
    const node = await objects.create({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Node', metadata: { name: 'cn-node' }, spec: {} } as k8s.KubernetesObject);
    assert.equal(node.metadata?.namespace, undefined);
    await objects.delete({ apiVersion: `${GROUP}/${VERSION}`, kind: 'GangSchedulingGroup', metadata: { name: 'cn-generic', namespace: 'cn-crud' } });
    await objects.delete({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Node', metadata: { name: 'cn-node' } });
    assert.equal(await t.cp.registry.tryGet(GangSchedulingGroup, 'cn-crud', 'cn-generic'), undefined);
  });

  it('an informer sees add, update and delete, and survives a 410 with a relist', async () => {
    await informerSurvivesGone(t, kc, 'cn-informer');
  });

  it('an informer on a cluster-scoped kind follows changes too', async () => {
    const informer = k8s.makeInformer(kc, `/apis/${GROUP}/${VERSION}/acceleratorclasses`, async () =>
      (await custom.listClusterCustomObject({ ...CLASSES })) as k8s.KubernetesListObject<k8s.KubernetesObject>,
    );
    try {
      await within(informer.start(), 'informer.start() (it resolves once the watch has answered)');
      await custom.createClusterCustomObject({ ...CLASSES, body: acceleratorClass('cn-watched') });
      await until('cn-watched in the cache', () => informer.get('cn-watched') !== undefined);
      await custom.deleteClusterCustomObject({ ...CLASSES, name: 'cn-l4-b' });
      await until('cn-l4-b gone from the cache', () => informer.get('cn-l4-b') === undefined);
      const server = (await t.cp.registry.list(AcceleratorClass, undefined)).items;
      await until('the cache to match the server', () => namesOf(informer.list()).join() === namesOf(server).join());
    } finally {
      await informer.stop();
    }
  });
});

/**
 * Runs an informer on the gangs of `namespace` through add/update/delete, then cuts its
 * watch, writes and compacts while it is away, lets it re-watch from its now-compacted
 * resourceVersion (410), and checks it relists and keeps following changes.
 */
async function informerSurvivesGone(t: TestControlPlane, kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: gang('pre-existing') });

  let lists = 0;
  const listFn = async () => {
    lists++;
    return (await custom.listNamespacedCustomObject({ ...GANGS, namespace })) as k8s.KubernetesListObject<k8s.KubernetesObject>;
  };
  const informer = k8s.makeInformer(kc, `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/gangschedulinggroups`, listFn);
  const seen: string[] = [];
  /** The newest resourceVersion the informer has been told about. */
  let lastSeen = 0;
  for (const verb of ['add', 'update', 'delete'] as const) {
    informer.on(verb, (o) => {
      seen.push(`${verb} ${o.metadata?.name}`);
      lastSeen = Math.max(lastSeen, Number(o.metadata?.resourceVersion));
    });
  }
  // client-node's informer stops on a broken watch and reports it; restarting from the
  // error handler is its documented use. The restart waits until the test opens the gate.
  const errors: unknown[] = [];
  let openGate: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (openGate = resolve));
  let stopping = false;
  informer.on('error', (err) => {
    errors.push(err);
    if (!stopping) void gate.then(() => (stopping ? undefined : informer.start()));
  });

  const cached = () => namesOf(informer.list(namespace));
  const serverObjects = async () => (await t.cp.registry.list(GangSchedulingGroup, namespace)).items;
  /** The cache holds exactly the server's objects, each at the server's resourceVersion. */
  const inSync = async () => {
    const server = (await serverObjects()).map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`).sort();
    const cache = informer.list(namespace).map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort();
    return JSON.stringify(server) === JSON.stringify(cache);
  };

  try {
    await within(informer.start(), 'informer.start() (it resolves once the watch has answered)');
    assert.equal(lists, 1);
    assert.deepEqual(cached(), ['pre-existing']);
    assert.deepEqual(seen, ['add pre-existing']);

    // add / update / delete through the API.
    await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: gang('a') });
    await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: gang('b') });
    await until('adds of a and b', () => seen.includes('add a') && seen.includes('add b'));
    await custom.patchNamespacedCustomObject({ ...GANGS, namespace, name: 'a', body: { spec: { priority: 5 } } }, mergePatch());
    await until('the update of a', () => seen.includes('update a'));
    assert.equal(((informer.get('a', namespace) as KubeObject | undefined)?.spec as { priority?: number } | undefined)?.priority, 5);
    await custom.deleteNamespacedCustomObject({ ...GANGS, namespace, name: 'pre-existing' });
    await until('the delete of pre-existing', () => seen.includes('delete pre-existing'));
    assert.deepEqual(cached(), ['a', 'b']);
    assert.ok(await inSync(), 'the cache should match the server before the 410');
    assert.equal(errors.length, 0, `unexpected informer errors: ${errors.map(String).join('; ')}`);

    // Cut every connection on the server side: the informer's watch breaks.
    const rvBefore = lastSeen;
    t.cp.server.app.server.closeAllConnections();
    await until('the informer to notice its broken watch', () => errors.length > 0);

    // While it is away: changes it will never see as events, then compaction past them.
    seen.length = 0;
    await t.cp.registry.create(GangSchedulingGroup, namespace, gang('c'));
    await t.cp.registry.create(GangSchedulingGroup, namespace, gang('d'));
    await t.cp.registry.patch(GangSchedulingGroup, namespace, 'a', 'merge', { spec: { priority: 6 } });
    await t.cp.registry.delete(GangSchedulingGroup, namespace, 'b');
    const revision = await t.cp.store.currentRevision();
    await t.cp.store.compact(revision);
    assert.ok(Number(rvBefore) < revision, `the informer's resourceVersion ${rvBefore} should now be compacted (history from ${revision})`);
    // What its re-watch will be told: 410 Gone, as a Status (or an ERROR event carrying one).
    assert.deepEqual(await watchFrom(t, `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/gangschedulinggroups`, String(rvBefore)), { code: 410, kind: 'Status' });

    // Its re-watch from the old resourceVersion is answered 410 Gone; it relists.
    openGate();
    await until('the relist after 410', () => lists === 2);
    await until('the cache to match the server', () => cached().join() === 'a,c,d');
    assert.ok(await inSync());
    assert.deepEqual([...seen].sort(), ['add c', 'add d', 'delete b', 'update a']);

    // And it keeps watching: objects created after the relist arrive as events.
    gate = new Promise<void>((resolve) => (openGate = resolve));
    await custom.createNamespacedCustomObject({ ...GANGS, namespace, body: gang('e') });
    await until('the add of e after the relist', () => seen.includes('add e'));
    await custom.deleteNamespacedCustomObject({ ...GANGS, namespace, name: 'c' });
    await until('the delete of c after the relist', () => seen.includes('delete c'));
    await until('the final cache to match the server', () => cached().join() === 'a,d,e');
    assert.ok(await inSync(), 'the cache should hold exactly the server objects');
    assert.equal(lists, 2, 'no further relists');
    assert.equal(errors.length, 1, `one error (the cut watch), not ${errors.length}: ${errors.map(String).join('; ')}`);
  } finally {
    stopping = true;
    openGate();
    await informer.stop();
  }
}

/** Opens a watch from resourceVersion rv with the admin token and returns the error it gets (HTTP status or first ERROR event). */
async function watchFrom(t: TestControlPlane, path: string, rv: string): Promise<{ code: number; kind: string }> {
  const res = await t.fetch(`${path}?watch=true&resourceVersion=${rv}`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) {
    const status = (await res.json()) as { code: number; kind: string };
    return { code: status.code, kind: status.kind };
  }
  // 200 then an ERROR event: read the first line, then hang up.
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  const event = JSON.parse(text.split('\n')[0]!) as { type: string; object: { code: number; kind: string } };
  assert.equal(event.type, 'ERROR');
  return { code: event.object.code, kind: event.object.kind };
}

describe('@kubernetes/client-node on the SQLite store', { timeout: 60_000 }, () => {
  let sqlite: TestControlPlane;
  before(async () => {
    sqlite = await startTestControlPlane({ store: 'sqlite' });
  });
  after(async () => {
    await sqlite?.stop();
  });

  it('an informer survives a 410 with a relist', async () => {
    const config = new k8s.KubeConfig();
    config.loadFromFile(sqlite.cp.kubeconfig);
    await informerSurvivesGone(sqlite, config, 'cn-sqlite');
  });
});
