// Kubernetes object semantics through the REST API: validation, concurrency, spec/status,
// generation, finalizers, namespaces, selectors, paging, patch types, errors, auth, Table.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, gang, G, TENANT_TOKEN, type TestApi } from './helpers/apiserver.ts';
import { Node } from '../src/api/kinds/index.ts';

const GANGS = `${G}/namespaces/default/gangschedulinggroups`;

describe('API server', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  test('create fills metadata and defaults, and get returns it', async () => {
    const res = await api.call('POST', GANGS, gang('meta'));
    assert.equal(res.status, 201);
    const m = res.body.metadata;
    assert.match(m.uid, /^[0-9a-f-]{36}$/);
    assert.equal(m.generation, 1);
    assert.equal(m.namespace, 'default');
    assert.match(m.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Number(m.resourceVersion) > 0);
    assert.equal(res.body.spec.queueName, 'default', 'defaults are applied');
    assert.equal(res.body.spec.roles[0].template.terminationGracePeriodSeconds, 30);
    const got = await api.call('GET', `${GANGS}/meta`);
    assert.deepEqual(got.body, res.body);
  });

  test('invalid objects get 422 naming every bad field, and nothing is written', async () => {
    const bad = gang('bad', { priority: 'high', bogus: true });
    (bad.spec.roles[0]!.template as any).resources = { gpus: -1, vram: '12XB' };
    (bad.spec.roles[0] as any).replicas = 0;
    (bad.spec as any).topology = { required: 'rack' };
    const res = await api.call('POST', GANGS, bad);
    assert.equal(res.status, 422);
    assert.equal(res.body.kind, 'Status');
    assert.equal(res.body.reason, 'Invalid');
    const fields = res.body.details.causes.map((c: { field: string }) => c.field).sort();
    assert.deepEqual(fields, [
      'spec.bogus',
      'spec.priority',
      'spec.roles[0].replicas',
      'spec.roles[0].template.resources.gpus',
      'spec.roles[0].template.resources.vram',
      'spec.topology.required',
    ]);
    for (const c of res.body.details.causes) assert.ok(c.message.length > 5, `cause for ${c.field} explains why`);
    assert.match(res.body.message, /spec\.topology\.required: Unsupported value: "rack"/);
    assert.equal((await api.call('GET', `${GANGS}/bad`)).status, 404);
  });

  test('a missing required field and a bad name are named', async () => {
    const res = await api.call('POST', GANGS, { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', metadata: { name: 'Bad_Name' }, spec: {} });
    assert.equal(res.status, 422);
    const fields = res.body.details.causes.map((c: { field: string }) => c.field);
    assert.ok(fields.includes('metadata.name'));
    assert.ok(fields.includes('spec.roles'));
  });

  test('fieldValidation=Warn drops unknown fields with a warning; Ignore drops them silently', async () => {
    const warn = await api.call('POST', `${GANGS}?fieldValidation=Warn`, gang('warned', { extra: 1 }));
    assert.equal(warn.status, 201);
    assert.match(String(warn.headers.warning), /^299 - "unknown field \\"spec.extra\\""$/);
    assert.equal(warn.body.spec.extra, undefined);
    const ignore = await api.call('POST', `${GANGS}?fieldValidation=Ignore`, gang('ignored', { extra: 1 }));
    assert.equal(ignore.status, 201);
    assert.equal(ignore.headers.warning, undefined);
  });

  test('dryRun validates without writing', async () => {
    const res = await api.call('POST', `${GANGS}?dryRun=All`, gang('dry'));
    assert.equal(res.status, 201);
    assert.equal((await api.call('GET', `${GANGS}/dry`)).status, 404);
  });

  test('duplicate create is 409 AlreadyExists', async () => {
    await api.call('POST', GANGS, gang('dup'));
    const res = await api.call('POST', GANGS, gang('dup'));
    assert.equal(res.status, 409);
    assert.equal(res.body.reason, 'AlreadyExists');
  });

  test('PUT with a stale resourceVersion is 409 Conflict and changes nothing', async () => {
    const created = (await api.call('POST', GANGS, gang('cas'))).body;
    const first = await api.call('PUT', `${GANGS}/cas`, { ...created, spec: { ...created.spec, priority: 1 } });
    assert.equal(first.status, 200);
    const stale = await api.call('PUT', `${GANGS}/cas`, { ...created, spec: { ...created.spec, priority: 2 } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.equal((await api.call('GET', `${GANGS}/cas`)).body.spec.priority, 1);
  });

  test('generation moves with spec changes only; status and spec are written apart', async () => {
    const created = (await api.call('POST', GANGS, { ...gang('gen'), status: { phase: 'Running' } })).body;
    assert.equal(created.status, undefined, 'status is ignored on create');
    const statusWrite = await api.call('PUT', `${GANGS}/gen/status`, { ...created, spec: { ...created.spec, priority: 9 }, status: { phase: 'Scheduled' } });
    assert.equal(statusWrite.status, 200);
    assert.equal(statusWrite.body.status.phase, 'Scheduled');
    assert.equal(statusWrite.body.spec.priority, 0, '/status ignores spec');
    assert.equal(statusWrite.body.metadata.generation, 1, 'status writes keep generation');
    const labelOnly = await api.call('PATCH', `${GANGS}/gen`, { metadata: { labels: { team: 'a' } } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(labelOnly.body.metadata.generation, 1, 'metadata changes keep generation');
    const specWrite = await api.call('PATCH', `${GANGS}/gen`, { spec: { priority: 3 }, status: { phase: 'Failed' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(specWrite.body.metadata.generation, 2);
    assert.equal(specWrite.body.status.phase, 'Scheduled', 'the main resource ignores status');
    const noop = await api.call('PATCH', `${GANGS}/gen`, { spec: { priority: 3 } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(noop.body.metadata.resourceVersion, specWrite.body.metadata.resourceVersion, 'a no-op write is not stored');
    const badStatus = await api.call('PATCH', `${GANGS}/gen/status`, { status: { phase: 'Sleeping' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(badStatus.status, 422);
  });

  test('patch types: merge and JSON patch work, strategic merge is 415 for k8s4ai kinds', async () => {
    await api.call('POST', GANGS, gang('patchy'));
    const merge = await api.call('PATCH', `${GANGS}/patchy`, { spec: { priority: 4 } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(merge.body.spec.priority, 4);
    const json = await api.call('PATCH', `${GANGS}/patchy`, [{ op: 'replace', path: '/spec/priority', value: 7 }], { 'content-type': 'application/json-patch+json' });
    assert.equal(json.status, 200);
    assert.equal(json.body.spec.priority, 7);
    const failedTest = await api.call('PATCH', `${GANGS}/patchy`, [{ op: 'test', path: '/spec/priority', value: 1 }], { 'content-type': 'application/json-patch+json' });
    assert.equal(failedTest.status, 422);
    const strategic = await api.call('PATCH', `${GANGS}/patchy`, { spec: { priority: 5 } }, { 'content-type': 'application/strategic-merge-patch+json' });
    assert.equal(strategic.status, 415);
    assert.equal(strategic.body.reason, 'UnsupportedMediaType');
    const pinned = await api.call('PATCH', `${GANGS}/patchy`, { metadata: { resourceVersion: '1' }, spec: { priority: 5 } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(pinned.status, 409);
  });

  test('objects in a missing namespace are refused; default always exists and cannot be deleted', async () => {
    const res = await api.call('POST', `${G}/namespaces/nowhere/gangschedulinggroups`, gang('lost'));
    assert.equal(res.status, 404);
    assert.match(res.body.message, /namespaces "nowhere" not found/);
    assert.equal((await api.call('GET', '/api/v1/namespaces/default')).status, 200);
    const del = await api.call('DELETE', '/api/v1/namespaces/default');
    assert.equal(del.status, 403);
  });

  test('deleting a namespace deletes what it holds, then the namespace', async () => {
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } });
    for (const n of ['a', 'b']) assert.equal((await api.call('POST', `${G}/namespaces/doomed/gangschedulinggroups`, gang(n))).status, 201);
    const { NamespaceController } = await import('../src/controllers/namespace.ts');
    const { createLogger } = await import('../src/lib/logger.ts');
    const controller = new NamespaceController(api.registry, createLogger({ level: 'silent' }));
    await controller.start();
    try {
      const del = await api.call('DELETE', '/api/v1/namespaces/doomed');
      assert.equal(del.body.status.phase, 'Terminating');
      const refused = await api.call('POST', `${G}/namespaces/doomed/gangschedulinggroups`, gang('late'));
      assert.equal(refused.status, 403);
      await waitFor(async () => (await api.call('GET', '/api/v1/namespaces/doomed')).status === 404);
      assert.equal((await api.call('GET', `${G}/namespaces/doomed/gangschedulinggroups`)).body.items.length, 0);
    } finally {
      controller.stop();
    }
  });

  test('finalizers hold a deletion until they are removed', async () => {
    await api.call('POST', GANGS, { ...gang('held'), metadata: { name: 'held', finalizers: ['k8s4ai.io/test'] } });
    const del = await api.call('DELETE', `${GANGS}/held`);
    assert.equal(del.status, 202);
    assert.ok(del.body.metadata.deletionTimestamp);
    const still = await api.call('GET', `${GANGS}/held`);
    assert.equal(still.status, 200);
    const release = await api.call('PATCH', `${GANGS}/held`, { metadata: { finalizers: null } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(release.status, 200);
    assert.equal((await api.call('GET', `${GANGS}/held`)).status, 404);
  });

  test('owner deletion cascades to dependents in the background; orphan keeps them', async () => {
    const { GarbageCollector } = await import('../src/controllers/garbagecollector.ts');
    const { createLogger } = await import('../src/lib/logger.ts');
    const gc = new GarbageCollector(api.registry, createLogger({ level: 'silent' }));
    await gc.start();
    try {
      const task = (name: string, owner: { metadata: { name: string; uid: string } }) => ({
        apiVersion: 'k8s4ai.io/v1alpha1',
        kind: 'Task',
        metadata: { name, ownerReferences: [{ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', name: owner.metadata.name, uid: owner.metadata.uid, controller: true }] },
        spec: { command: ['true'] },
      });
      const owner = (await api.call('POST', GANGS, gang('owner'))).body;
      for (const n of ['owned-0', 'owned-1']) assert.equal((await api.call('POST', `${G}/namespaces/default/tasks`, task(n, owner))).status, 201);
      await api.call('DELETE', `${GANGS}/owner`, { propagationPolicy: 'Background' });
      await waitFor(async () => (await api.call('GET', `${G}/namespaces/default/tasks/owned-0`)).status === 404 && (await api.call('GET', `${G}/namespaces/default/tasks/owned-1`)).status === 404);

      const keeper = (await api.call('POST', GANGS, gang('keeper'))).body;
      await api.call('POST', `${G}/namespaces/default/tasks`, task('kept', keeper));
      await api.call('DELETE', `${GANGS}/keeper`, { propagationPolicy: 'Orphan' });
      const kept = await api.call('GET', `${G}/namespaces/default/tasks/kept`);
      assert.equal(kept.status, 200);
      assert.deepEqual(kept.body.metadata.ownerReferences ?? [], []);

      const fg = (await api.call('POST', GANGS, gang('fg'))).body;
      await api.call('POST', `${G}/namespaces/default/tasks`, task('fg-task', fg));
      const pending = await api.call('DELETE', `${GANGS}/fg`, { propagationPolicy: 'Foreground' });
      assert.ok(pending.body.metadata.finalizers.includes('foregroundDeletion'));
      await waitFor(async () => (await api.call('GET', `${GANGS}/fg`)).status === 404);
      assert.equal((await api.call('GET', `${G}/namespaces/default/tasks/fg-task`)).status, 404);
    } finally {
      gc.stop();
    }
  });

  test('label and field selectors filter lists; unknown field selectors are refused', async () => {
    const mk = (name: string, labels: Record<string, string>) => api.call('POST', `${G}/namespaces/default/tasks`, { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name, labels }, spec: { command: ['true'], nodeName: name.endsWith('1') ? 'node-1' : 'node-2' } });
    await mk('sel-1', { tier: 'gold', team: 'a' });
    await mk('sel-2', { tier: 'silver', team: 'a' });
    await mk('sel-3', { tier: 'bronze' });
    const names = async (q: string) => (await api.call('GET', `${G}/namespaces/default/tasks?${q}`)).body.items.map((o: any) => o.metadata.name).filter((n: string) => n.startsWith('sel-')).sort();
    assert.deepEqual(await names('labelSelector=tier%3Dgold'), ['sel-1']);
    assert.deepEqual(await names('labelSelector=tier!%3Dgold'), ['sel-2', 'sel-3']);
    assert.deepEqual(await names('labelSelector=tier%20in%20(gold,bronze)'), ['sel-1', 'sel-3']);
    assert.deepEqual(await names('labelSelector=tier%20notin%20(gold)'), ['sel-2', 'sel-3']);
    assert.deepEqual(await names('labelSelector=team'), ['sel-1', 'sel-2']);
    assert.deepEqual(await names('labelSelector=!team'), ['sel-3']);
    assert.deepEqual(await names('fieldSelector=spec.nodeName%3Dnode-1'), ['sel-1']);
    assert.deepEqual(await names('fieldSelector=metadata.name%3Dsel-2'), ['sel-2']);
    const unknown = await api.call('GET', `${G}/namespaces/default/tasks?fieldSelector=spec.command%3Dx`);
    assert.equal(unknown.status, 400);
    const malformed = await api.call('GET', `${G}/namespaces/default/tasks?labelSelector=a%20in%20(b`);
    assert.equal(malformed.status, 400);
  });

  test('deletecollection deletes what the selector matches and nothing else', async () => {
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sweep' } });
    for (const [name, tier] of [['dc-1', 'a'], ['dc-2', 'a'], ['dc-3', 'b']]) {
      await api.call('POST', `${G}/namespaces/sweep/gangschedulinggroups`, { ...gang(name!), metadata: { name, labels: { tier } } });
    }
    const res = await api.call('DELETE', `${G}/namespaces/sweep/gangschedulinggroups?labelSelector=tier%3Da`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.items.map((o: any) => o.metadata.name).sort(), ['dc-1', 'dc-2']);
    const left = (await api.call('GET', `${G}/namespaces/sweep/gangschedulinggroups`)).body.items.map((o: any) => o.metadata.name);
    assert.deepEqual(left, ['dc-3']);
  });

  test('lists page with limit and continue at one revision', async () => {
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paging' } });
    for (let i = 0; i < 7; i++) await api.call('POST', `${G}/namespaces/paging/gangschedulinggroups`, gang(`p-${i}`));
    const seen: string[] = [];
    let cont = '';
    let pages = 0;
    let rv = '';
    do {
      const page = await api.call('GET', `${G}/namespaces/paging/gangschedulinggroups?limit=3${cont ? `&continue=${cont}` : ''}`);
      assert.equal(page.status, 200);
      if (!rv) rv = page.body.metadata.resourceVersion;
      assert.equal(page.body.metadata.resourceVersion, rv, 'every page is read at the first page\'s revision');
      seen.push(...page.body.items.map((o: any) => o.metadata.name));
      cont = page.body.metadata.continue ?? '';
      pages++;
      if (pages === 1) await api.call('POST', `${G}/namespaces/paging/gangschedulinggroups`, gang('p-late'));
    } while (cont);
    assert.equal(pages, 3);
    assert.deepEqual(seen, ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6']);
    const bad = await api.call('GET', `${G}/namespaces/paging/gangschedulinggroups?limit=3&continue=garbage`);
    assert.equal(bad.status, 400);
  });

  test('a continue token older than the retained history is 410 Gone', async () => {
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'expiring' } });
    for (let i = 0; i < 4; i++) await api.call('POST', `${G}/namespaces/expiring/gangschedulinggroups`, gang(`e-${i}`));
    const first = await api.call('GET', `${G}/namespaces/expiring/gangschedulinggroups?limit=2`);
    await api.call('POST', `${G}/namespaces/expiring/gangschedulinggroups`, gang('e-later'));
    await api.store.compact(await api.store.currentRevision());
    const next = await api.call('GET', `${G}/namespaces/expiring/gangschedulinggroups?limit=2&continue=${first.body.metadata.continue}`);
    assert.equal(next.status, 410);
    assert.equal(next.body.reason, 'Expired');
  });

  test('errors are Status objects: 404, 405, 413, 415 and a JSON body that does not parse', async () => {
    const nf = await api.call('GET', `${G}/namespaces/default/widgets`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.kind, 'Status');
    const missing = await api.call('GET', `${GANGS}/nope`);
    assert.equal(missing.body.reason, 'NotFound');
    assert.match(missing.body.message, /gangschedulinggroups.k8s4ai.io "nope" not found/);
    const big = await api.call('POST', GANGS, JSON.stringify({ ...gang('huge'), metadata: { name: 'huge', annotations: { x: 'a'.repeat(3 * 1024 * 1024) } } }));
    assert.equal(big.status, 413);
    assert.equal(big.body.reason, 'RequestEntityTooLarge');
    const xml = await api.call('POST', GANGS, '<gang/>', { 'content-type': 'application/xml' });
    assert.equal(xml.status, 415);
    const broken = await api.call('POST', GANGS, '{"apiVersion":', { 'content-type': 'application/json' });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.kind, 'Status');
    const wrongKind = await api.call('POST', GANGS, { ...gang('wk'), kind: 'Task' });
    assert.equal(wrongKind.status, 400);
  });

  test('authentication and namespace-bound tokens', async () => {
    assert.equal((await api.call('GET', '/healthz', undefined, { authorization: '' })).status, 200);
    assert.equal((await api.call('GET', '/version', undefined, { authorization: '' })).status, 200);
    const anon = await api.call('GET', GANGS, undefined, { authorization: '' });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.reason, 'Unauthorized');
    assert.equal((await api.call('GET', GANGS, undefined, { authorization: 'Bearer wrong' })).status, 401);
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });
    const tenant = { authorization: `Bearer ${TENANT_TOKEN}` };
    assert.equal((await api.call('POST', `${G}/namespaces/team-a/gangschedulinggroups`, gang('mine'), tenant)).status, 201);
    assert.equal((await api.call('GET', `${G}/namespaces/team-a/gangschedulinggroups`, undefined, tenant)).status, 200);
    const forbidden = await api.call('GET', GANGS, undefined, tenant);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.reason, 'Forbidden');
    assert.equal((await api.call('GET', `${G}/gangschedulinggroups`, undefined, tenant)).status, 403, 'no cluster-wide list');
    assert.equal((await api.call('GET', `${G}/nodes`, undefined, tenant)).status, 200, 'cluster kinds are readable');
    assert.equal((await api.call('POST', `${G}/acceleratorclasses`, {}, tenant)).status, 403, 'cluster kinds are not writable');
  });

  test('discovery, OpenAPI and version answer as kubectl expects', async () => {
    const list = (await api.call('GET', G)).body;
    const gangs = list.resources.find((r: any) => r.name === 'gangschedulinggroups');
    assert.ok(gangs.shortNames.includes('gang'));
    assert.deepEqual(gangs.categories, ['all', 'k8s4ai']);
    assert.ok(list.resources.some((r: any) => r.name === 'gangschedulinggroups/status'));
    assert.equal(list.resources.filter((r: any) => !r.name.includes('/')).length, 10);
    const core = (await api.call('GET', '/api/v1')).body;
    assert.deepEqual(core.resources.filter((r: any) => !r.name.includes('/')).map((r: any) => r.name).sort(), ['events', 'namespaces']);
    const v2 = await api.call('GET', '/openapi/v2', undefined, { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' });
    assert.equal(v2.headers['content-type'], 'application/octet-stream');
    const v3 = (await api.call('GET', '/openapi/v3')).body;
    const doc = (await api.call('GET', `/${v3.paths['apis/k8s4ai.io/v1alpha1'].serverRelativeURL.replace(/^\//, '')}`)).body;
    const post = doc.paths['/apis/k8s4ai.io/v1alpha1/namespaces/{namespace}/gangschedulinggroups'].post;
    assert.ok(post.parameters.some((p: any) => p.name === 'fieldValidation'));
    assert.equal(post['x-kubernetes-group-version-kind'].kind, 'GangSchedulingGroup');
  });

  test('Table output has the per-kind columns', async () => {
    const accept = { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' };
    await api.call('POST', GANGS, gang('tabled'));
    const t = (await api.call('GET', GANGS, undefined, accept)).body;
    assert.equal(t.kind, 'Table');
    assert.deepEqual(t.columnDefinitions.filter((c: any) => c.priority === 0).map((c: any) => c.name), ['Name', 'Queue', 'GPUs', 'Phase', 'Restarts', 'Age']);
    const row = t.rows.find((r: any) => r.cells[0] === 'tabled');
    assert.deepEqual(row.cells.slice(0, 4), ['tabled', 'default', 16, 'Pending']);
    await api.registry.create(Node, undefined, {
      apiVersion: 'k8s4ai.io/v1alpha1',
      kind: 'Node',
      metadata: { name: 'n1' },
      spec: {},
      status: {
        gpus: [0, 1].map((i) => ({ index: i, uuid: `GPU-${i}`, productName: 'NVIDIA H100 80GB HBM3', memory: '80Gi', acceleratorClassName: 'h100-sxm-80gb' })),
        freeGpus: 1,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Test' }],
      },
    }, { keepStatus: true });
    const nodes = (await api.call('GET', `${G}/nodes`, undefined, accept)).body;
    assert.deepEqual(nodes.columnDefinitions.filter((c: any) => c.priority === 0).map((c: any) => c.name), ['Name', 'Class', 'GPUs', 'Free', 'Ready', 'Age']);
    assert.deepEqual(nodes.rows[0].cells.slice(0, 5), ['n1', 'h100-sxm-80gb', 2, 1, 'True']);
  });

  test('events older than the TTL are deleted; recent ones stay', async () => {
    const { EventTTLController } = await import('../src/controllers/eventttl.ts');
    const { createLogger } = await import('../src/lib/logger.ts');
    const event = (name: string, lastTimestamp: string) => ({
      apiVersion: 'v1', kind: 'Event', metadata: { name }, involvedObject: { kind: 'GangSchedulingGroup', name: 'x', namespace: 'default' },
      reason: 'Test', message: name, type: 'Normal', lastTimestamp,
    });
    const now = Date.parse('2026-01-01T12:00:00Z');
    await api.call('POST', '/api/v1/namespaces/default/events', event('old', '2026-01-01T10:00:00Z'));
    await api.call('POST', '/api/v1/namespaces/default/events', event('recent', '2026-01-01T11:30:00Z'));
    const ttl = new EventTTLController(api.registry, createLogger({ level: 'silent' }), 60 * 60 * 1000);
    assert.equal(await ttl.sweep(now), 1);
    assert.equal((await api.call('GET', '/api/v1/namespaces/default/events/old')).status, 404);
    assert.equal((await api.call('GET', '/api/v1/namespaces/default/events/recent')).status, 200);
  });

  test('metrics are served in Prometheus format', async () => {
    const res = await api.call('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.body), /k8s4ai_apiserver_request_total\{verb="create",resource="gangschedulinggroups",code="201"\}/);
  });
});

describe('watch over HTTP', () => {
  let api: TestApi;
  let base: string;
  before(async () => {
    api = await startTestApi({ bookmarkIntervalMs: 50 });
    base = await api.server.listen(0, '127.0.0.1');
  });
  after(async () => {
    await api.close();
  });

  async function openWatch(path: string) {
    const res = await fetch(`${base}${path}`, { headers: { authorization: 'Bearer admin-token' } });
    const events: any[] = [];
    const reader = res.body!.getReader();
    let buf = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += Buffer.from(value).toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
      }
    })().catch(() => undefined);
    return { status: res.status, events, close: () => reader.cancel().catch(() => undefined), pump, body: res.status >= 400 ? await res.text().catch(() => '') : '' };
  }

  test('a watch from a resourceVersion delivers every later change once, in order, filtered', async () => {
    const listed = (await api.call('GET', GANGS)).body.metadata.resourceVersion;
    const w = await openWatch(`${GANGS}?watch=true&resourceVersion=${listed}&labelSelector=w%3D1`);
    assert.equal(w.status, 200);
    await api.call('POST', GANGS, { ...gang('w1'), metadata: { name: 'w1', labels: { w: '1' } } });
    await api.call('POST', GANGS, gang('unlabelled'));
    await api.call('PATCH', `${GANGS}/w1`, { spec: { priority: 2 } }, { 'content-type': 'application/merge-patch+json' });
    await api.call('PATCH', `${GANGS}/w1`, { metadata: { labels: { w: '0' } } }, { 'content-type': 'application/merge-patch+json' });
    await api.call('PATCH', `${GANGS}/w1`, { metadata: { labels: { w: '1' } } }, { 'content-type': 'application/merge-patch+json' });
    await api.call('DELETE', `${GANGS}/w1`);
    await waitFor(async () => w.events.length >= 5);
    w.close();
    assert.deepEqual(w.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED', 'ADDED', 'DELETED']);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b));
    assert.equal(new Set(rvs).size, rvs.length);
  });

  test('a watch without resourceVersion starts with the current objects', async () => {
    await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wns' } });
    await api.call('POST', `${G}/namespaces/wns/gangschedulinggroups`, gang('pre'));
    const w = await openWatch(`${G}/namespaces/wns/gangschedulinggroups?watch=true`);
    await waitFor(async () => w.events.length >= 1);
    w.close();
    assert.equal(w.events[0].type, 'ADDED');
    assert.equal(w.events[0].object.metadata.name, 'pre');
  });

  test('a watch from a compacted revision is 410 Gone', async () => {
    const old = (await api.call('GET', GANGS)).body.metadata.resourceVersion;
    await api.call('POST', GANGS, gang('newer'));
    await api.call('POST', GANGS, gang('newest'));
    await api.store.compact(await api.store.currentRevision());
    const res = await fetch(`${base}${GANGS}?watch=true&resourceVersion=${old}`, { headers: { authorization: 'Bearer admin-token' } });
    assert.equal(res.status, 410);
    const status = (await res.json()) as { code: number; reason: string };
    assert.equal(status.code, 410);
    assert.equal(status.reason, 'Expired');
  });

  test('bookmarks carry the latest revision when the client allows them', async () => {
    const listed = (await api.call('GET', GANGS)).body.metadata.resourceVersion;
    const w = await openWatch(`${GANGS}?watch=true&resourceVersion=${listed}&allowWatchBookmarks=true`);
    const created = (await api.call('POST', GANGS, gang('marked'))).body;
    await waitFor(async () => w.events.some((e) => e.type === 'BOOKMARK' && e.object.metadata.resourceVersion === created.metadata.resourceVersion));
    w.close();
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK');
    assert.deepEqual(Object.keys(bookmark.object.metadata), ['resourceVersion']);
    const plain = await openWatch(`${GANGS}?watch=true&resourceVersion=${listed}`);
    await api.call('POST', GANGS, gang('unmarked'));
    await waitFor(async () => plain.events.length >= 2);
    await new Promise((r) => setTimeout(r, 120));
    plain.close();
    assert.ok(plain.events.every((e) => e.type !== 'BOOKMARK'), 'no bookmarks unless asked');
  });

  test('a Table watch sends one-row tables', async () => {
    const listed = (await api.call('GET', GANGS)).body.metadata.resourceVersion;
    const res = await fetch(`${base}${GANGS}?watch=true&resourceVersion=${listed}`, { headers: { authorization: 'Bearer admin-token', accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } });
    const reader = res.body!.getReader();
    await api.call('POST', GANGS, gang('in-table'));
    const { value } = await reader.read();
    await reader.cancel();
    const event = JSON.parse(Buffer.from(value!).toString().split('\n')[0]!);
    assert.equal(event.type, 'ADDED');
    assert.equal(event.object.kind, 'Table');
    assert.equal(event.object.rows[0].cells[0], 'in-table');
  });
});

async function waitFor(check: () => Promise<boolean>, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
