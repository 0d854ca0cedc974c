// End to end with the real kubectl (v1.32, /usr/bin/kubectl) against the real control
// plane: discovery, namespaces, apply of every example, Table output, -o yaml/json,
// watch, patch types, delete (and its wait), server-side validation, describe with
// Events, categories, tenant tokens, and the 401/413 answers.
//
// One control plane (memory store, no fleet) on 127.0.0.1:<free port> serves the whole
// file; kubectl runs without a shell, with HOME in the control plane's temporary data
// directory so its discovery cache starts empty. Tests that need objects make their own,
// each in its own namespace, so a failure in one does not cascade.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { kubectl, spawnKubectl, type KubectlResult } from './helpers/kubectl.ts';
import { K8S4AI_KINDS, GangSchedulingGroup, Node, VRAMPool } from '../src/api/kinds/index.ts';
import { EventRecorder } from '../src/controllers/events.ts';
import { MAX_BODY_BYTES } from '../src/apiserver/server.ts';
import { readKubeconfig } from '../src/lib/kubeconfig.ts';
import type { KubeObject } from '../src/api/meta.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');
const EXAMPLES = join(ROOT, 'examples');

let t: TestControlPlane;

/** kubectl with the admin kubeconfig (or another one), HOME in the data dir. */
function k(args: string[], opts: { input?: string; kubeconfig?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return kubectl(args, { kubeconfig: opts.kubeconfig ?? t.kubeconfig, home: t.dir, input: opts.input, timeoutMs: opts.timeoutMs, cwd: ROOT });
}

/** kubectl that must succeed; returns stdout. */
async function ok(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<string> {
  const r = await k(args, opts);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** kubectl that must fail; returns stdout + stderr. */
async function fails(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<string> {
  const r = await k(args, opts);
  assert.notEqual(r.code, 0, `kubectl ${args.join(' ')} should have failed\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.notEqual(r.code, null, `kubectl ${args.join(' ')} was killed (hung?)\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Splits kubectl's column output into rows of cells (header first). */
function table(out: string): string[][] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}|\s(?=\S)/).filter(Boolean));
}

/** The header line of a printed table, as its column names. */
const header = (out: string) => out.split('\n')[0]!.trim().split(/\s+/);

async function createNamespace(name: string): Promise<void> {
  await ok(['create', 'namespace', name]);
}

const gang = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'k8s4ai.io/v1alpha1',
  kind: 'GangSchedulingGroup',
  metadata: { name },
  spec: { roles: [{ name: 'worker', replicas: 2, template: { command: ['python', 'train.py'], resources: { gpus: 1 } } }], ...extra },
});

/** Every YAML file under dir, recursively, in kubectl's order (name order per folder). */
function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.(ya?ml|json)$/.test(name)) out.push(p);
  }
  return out;
}

function docsOf(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((d): d is KubeObject => d !== null && typeof d === 'object');
}

before(async () => {
  t = await startTestControlPlane();
});

after(async () => {
  await t?.stop();
});

describe('kubectl against the control plane', { timeout: 180_000 }, () => {
  it('authenticates with the kubeconfig the control plane writes', async () => {
    // client-go sends a kubeconfig's bearer token only over TLS: against an http:// server
    // every kubectl request arrives without credentials (401), and every test below fails.
    assert.match(t.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the control plane must serve TLS, or kubectl sends no token');
    assert.ok(readKubeconfig(t.kubeconfig).caPem, 'the kubeconfig must carry the CA that signed the serving certificate');
    const r = await k(['get', 'namespaces'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, `kubectl with ${t.kubeconfig} (server ${t.url}) failed\nstderr: ${r.stderr}`);
  });

  it('version shows the server version', async () => {
    const v = JSON.parse(await ok(['version', '-o', 'json'])) as { serverVersion?: { major: string; minor: string; gitVersion: string } };
    assert.ok(v.serverVersion, 'no serverVersion in kubectl version');
    assert.equal(v.serverVersion.major, '1');
    assert.match(v.serverVersion.gitVersion, /^v1\.\d+\.\d+.*k8s4ai/);
  });

  it('api-resources lists every kind with its short names and categories', async () => {
    const rows = table(await ok(['api-resources', '-o', 'wide']));
    assert.deepEqual(rows[0], ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND', 'VERBS', 'CATEGORIES']);
    const out = await ok(['api-resources', '-o', 'wide', '--no-headers']);
    for (const def of K8S4AI_KINDS) {
      const line = out.split('\n').find((l) => l.startsWith(`${def.plural} `));
      assert.ok(line, `api-resources has no ${def.plural}:\n${out}`);
      const cells = line.trim().split(/\s+/);
      assert.deepEqual(cells, [
        def.plural,
        def.shortNames.join(','),
        'k8s4ai.io/v1alpha1',
        String(def.namespaced),
        def.kind,
        'create,delete,deletecollection,get,list,patch,update,watch',
        'all,k8s4ai',
      ]);
    }
    assert.match(out, /^namespaces\s+ns\s+v1\s+false\s+Namespace\s/m);
    assert.match(out, /^events\s+ev\s+v1\s+true\s+Event\s/m);
    assert.match(out, /^gangschedulinggroups\s+gang,gangs,gsg\s+k8s4ai\.io\/v1alpha1\s+true\s+GangSchedulingGroup\s/m);

    // The category alone selects exactly our kinds.
    const byCategory = table(await ok(['api-resources', '--categories=k8s4ai', '--no-headers'])).map((r) => r[0]).sort();
    assert.deepEqual(byCategory, K8S4AI_KINDS.map((d) => d.plural).sort());
  });

  it('gets, creates and shows namespaces', async () => {
    const list = await ok(['get', 'ns']);
    assert.deepEqual(header(list), ['NAME', 'STATUS', 'AGE']);
    assert.match(list, /^default\s+Active\s+\S+/m);

    assert.match(await ok(['create', 'ns', 'team-x']), /^namespace\/team-x created$/m);
    assert.match(await fails(['create', 'ns', 'team-x']), /AlreadyExists.*namespaces "team-x" already exists/);

    const ns = parseYaml(await ok(['get', 'ns', 'team-x', '-o', 'yaml'])) as KubeObject;
    assert.equal(ns.apiVersion, 'v1');
    assert.equal(ns.kind, 'Namespace');
    assert.equal(ns.metadata.name, 'team-x');
    assert.match(String(ns.metadata.uid), /^[0-9a-f-]{36}$/);
    assert.match(String(ns.metadata.resourceVersion), /^\d+$/);
    assert.deepEqual(ns.status, { phase: 'Active' });
    assert.match(await ok(['get', 'ns']), /^team-x\s+Active\s/m);
  });

  it('applies every example manifest, then applies a change as "configured"', async () => {
    // examples/ once it has manifests (someone else writes it), else the fixtures.
    const dir = existsSync(EXAMPLES) && yamlFiles(EXAMPLES).length ? EXAMPLES : join(FIXTURES, 'good');
    const files = yamlFiles(dir);
    const docs = files.flatMap(docsOf);
    assert.ok(docs.length > 0, `no manifests in ${dir}`);
    for (const d of docs) {
      assert.ok(t.cp.registry.findByKind(d.apiVersion, d.kind), `${relative(ROOT, dir)}: ${d.apiVersion} ${d.kind} is not a kind the server serves`);
    }
    const kindOf = (d: KubeObject) => t.cp.registry.findByKind(d.apiVersion, d.kind)!;
    const ref = (d: KubeObject) => (kindOf(d).group ? `${kindOf(d).singular}.${kindOf(d).group}` : kindOf(d).singular) + `/${d.metadata.name}`;

    const first = await k(['apply', '-f', relative(ROOT, dir), '-R']);
    assert.equal(first.code, 0, `apply failed\nstdout: ${first.stdout}\nstderr: ${first.stderr}`);
    assert.doesNotMatch(first.stderr, /warning|error/i);
    for (const d of docs) assert.match(first.stdout, new RegExp(`^${ref(d).replace(/\./g, '\\.')} created$`, 'm'), first.stdout);
    assert.equal(first.stdout.trim().split('\n').length, docs.length, first.stdout);

    // Each one is stored as written (namespaced ones in default unless they say otherwise).
    for (const d of docs) {
      const stored = await t.cp.registry.get(kindOf(d), d.metadata.namespace ?? 'default', d.metadata.name);
      assert.ok(stored.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], `${ref(d)} lacks the last-applied annotation`);
    }

    // The same manifests with one label more: every object is patched.
    const changed = join(t.dir, 'applied-v2');
    for (const file of files) {
      const target = join(changed, relative(dir, file));
      mkdirSync(dirname(target), { recursive: true });
      const next = docsOf(file).map((d) => {
        d.metadata.labels = { ...(d.metadata.labels ?? {}), 'e2e.k8s4ai.io/revision': 'two' };
        return stringifyYaml(d);
      });
      writeFileSync(target.replace(/\.json$/, '.yaml'), next.join('---\n'));
    }
    const second = await k(['apply', '-f', changed, '-R']);
    assert.equal(second.code, 0, `re-apply failed\nstdout: ${second.stdout}\nstderr: ${second.stderr}`);
    assert.doesNotMatch(second.stderr, /warning|error/i);
    for (const d of docs) assert.match(second.stdout, new RegExp(`^${ref(d).replace(/\./g, '\\.')} configured$`, 'm'), second.stdout);
    for (const d of docs) {
      const stored = await t.cp.registry.get(kindOf(d), d.metadata.namespace ?? 'default', d.metadata.name);
      assert.equal(stored.metadata.labels?.['e2e.k8s4ai.io/revision'], 'two', `${ref(d)} was not changed`);
    }

    // A third apply of the same files changes nothing it does not own and still succeeds.
    const third = await k(['apply', '-f', changed, '-R']);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(third.stdout.trim().split('\n').length, docs.length, third.stdout);
  });

  it('prints gangs and nodes as tables with their own columns', async () => {
    await createNamespace('tables');
    await ok(['apply', '-n', 'tables', '-f', 'test/fixtures/good/gangs.yaml']);
    const gangs = await ok(['get', 'gangs', '-n', 'tables']);
    assert.deepEqual(header(gangs), ['NAME', 'QUEUE', 'GPUS', 'PHASE', 'RESTARTS', 'AGE']);
    assert.match(gangs, /^fixture-train\s+research\s+8\s+Pending\s+0\s+\d+s$/m);
    assert.match(gangs, /^fixture-notebook\s+default\s+0\.5\s+Pending\s+0\s+\d+s$/m);
    // Short name, singular and full plural name print the same table; -o wide adds priority>0 columns.
    for (const name of ['gang', 'gsg', 'gangschedulinggroups', 'gangschedulinggroups.k8s4ai.io']) {
      assert.deepEqual(header(await ok(['get', name, '-n', 'tables'])), ['NAME', 'QUEUE', 'GPUS', 'PHASE', 'RESTARTS', 'AGE'], name);
    }
    assert.deepEqual(header(await ok(['get', 'gangs', '-n', 'tables', '-o', 'wide'])), ['NAME', 'QUEUE', 'GPUS', 'PHASE', 'RESTARTS', 'CHECKPOINT', 'PRIORITY', 'AGE']);
    // -A: kubectl adds the NAMESPACE column itself.
    assert.match(await ok(['get', 'gangs', '-A']), /^tables\s+fixture-train\s+research\s+8\s+Pending\s/m);
    // Label selectors go to the server.
    const selected = await ok(['get', 'gangs', '-n', 'tables', '-l', 'team=research', '--no-headers']);
    assert.deepEqual(table(selected).map((r) => r[0]), ['fixture-train']);

    // A Node with status, as its agent would report it (a plain create drops status).
    await t.cp.registry.create(
      Node,
      undefined,
      {
        apiVersion: 'k8s4ai.io/v1alpha1',
        kind: 'Node',
        metadata: { name: 'e2e-node-1' },
        spec: { topologyDomain: 'leaf-e2e' },
        status: {
          gpus: [0, 1].map((index) => ({ index, uuid: `GPU-e2e-${index}`, productName: 'NVIDIA L4', memory: '24Gi', acceleratorClassName: 'fixture-l4' })),
          freeGpus: 1,
          conditions: [{ type: 'Ready', status: 'True', reason: 'AgentReady' }],
        },
      },
      { keepStatus: true },
    );
    const nodes = await ok(['get', 'nodes.k8s4ai.io']);
    assert.deepEqual(header(nodes), ['NAME', 'CLASS', 'GPUS', 'FREE', 'READY', 'AGE']);
    assert.match(nodes, /^e2e-node-1\s+fixture-l4\s+2\s+1\s+True\s+\d+s$/m);
    assert.match(await ok(['get', 'kn', 'e2e-node-1', '-o', 'wide']), /^e2e-node-1\s+fixture-l4\s+2\s+1\s+True\s+leaf-e2e\s+\d+s$/m);
  });

  it('prints objects and lists as YAML and JSON', async () => {
    await createNamespace('output');
    await ok(['apply', '-n', 'output', '-f', 'test/fixtures/good/gangs.yaml']);

    const asJson = JSON.parse(await ok(['get', 'gang', 'fixture-train', '-n', 'output', '-o', 'json'])) as KubeObject;
    const asYaml = parseYaml(await ok(['get', 'gang', 'fixture-train', '-n', 'output', '-o', 'yaml'])) as KubeObject;
    const stored = await t.cp.registry.get(GangSchedulingGroup, 'output', 'fixture-train');
    assert.deepEqual(asJson, stored);
    assert.deepEqual(asYaml, stored);
    assert.equal(asJson.apiVersion, 'k8s4ai.io/v1alpha1');
    assert.equal(asJson.kind, 'GangSchedulingGroup');
    assert.equal(asJson.metadata.namespace, 'output');
    assert.equal(asJson.metadata.generation, 1);
    assert.equal((asJson.spec as { roles: { replicas: number }[] }).roles[0]!.replicas, 4);
    assert.equal((asJson.spec as { queueName: string }).queueName, 'research');

    const list = JSON.parse(await ok(['get', 'gangs', '-n', 'output', '-o', 'json'])) as { kind: string; items: KubeObject[] };
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items.map((i) => i.metadata.name).sort(), ['fixture-notebook', 'fixture-train']);
    const yamlList = parseYaml(await ok(['get', 'gangs', '-n', 'output', '-o', 'yaml'])) as { items: KubeObject[] };
    assert.equal(yamlList.items.length, 2);

    assert.deepEqual(
      (await ok(['get', 'gangs', '-n', 'output', '-o', 'name'])).trim().split('\n').sort(),
      ['gangschedulinggroup.k8s4ai.io/fixture-notebook', 'gangschedulinggroup.k8s4ai.io/fixture-train'],
    );
    assert.equal(await ok(['get', 'gang', 'fixture-train', '-n', 'output', '-o', 'jsonpath={.spec.roles[0].template.resources.memory}']), '64Gi');
    assert.match(await fails(['get', 'gang', 'missing', '-n', 'output', '-o', 'yaml']), /Error from server \(NotFound\): gangschedulinggroups\.k8s4ai\.io "missing" not found/);
  });

  it('get -w prints a new row when an object changes', async () => {
    await createNamespace('watched');
    await t.cp.registry.create(GangSchedulingGroup, 'watched', gang('watch-me'));
    const w = spawnKubectl(['get', 'gangs', '-n', 'watched', '-w'], { kubeconfig: t.kubeconfig, home: t.dir });
    try {
      await w.waitFor(/^watch-me\s+default\s+2\s+Pending\s/m);
      assert.deepEqual(header(w.stdout()), ['NAME', 'QUEUE', 'GPUS', 'PHASE', 'RESTARTS', 'AGE']);
      // A change through the API: a MODIFIED event, printed as one more row.
      await t.cp.registry.patch(GangSchedulingGroup, 'watched', 'watch-me', 'merge', { spec: { queueName: 'urgent' } });
      await w.waitFor(/^watch-me\s+urgent\s+2\s+Pending\s/m);
      // And a new object: an ADDED event.
      await t.cp.registry.create(GangSchedulingGroup, 'watched', gang('late-arrival'));
      await w.waitFor(/^late-arrival\s+default\s+2\s+Pending\s/m);
      assert.equal(w.child.exitCode, null, `kubectl get -w exited early: ${w.stderr()}`);
      assert.equal(w.stderr(), '');
    } finally {
      await w.kill();
    }
  });

  it('patches with merge and JSON patches and refuses strategic merge with 415', async () => {
    await createNamespace('patches');
    await t.cp.registry.create(GangSchedulingGroup, 'patches', gang('p1'));

    assert.match(await ok(['patch', 'gang', 'p1', '-n', 'patches', '--type', 'merge', '-p', '{"spec":{"priority":7,"queueName":"urgent"}}']), /^gangschedulinggroup\.k8s4ai\.io\/p1 patched$/m);
    let stored = await t.cp.registry.get(GangSchedulingGroup, 'patches', 'p1');
    assert.equal((stored.spec as { priority: number }).priority, 7);
    assert.equal((stored.spec as { queueName: string }).queueName, 'urgent');
    assert.equal(stored.metadata.generation, 2);

    assert.match(
      await ok(['patch', 'gang', 'p1', '-n', 'patches', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/roles/0/replicas","value":3},{"op":"add","path":"/metadata/labels","value":{"patched":"json"}}]']),
      /patched$/m,
    );
    stored = await t.cp.registry.get(GangSchedulingGroup, 'patches', 'p1');
    assert.equal((stored.spec as { roles: { replicas: number }[] }).roles[0]!.replicas, 3);
    assert.deepEqual(stored.metadata.labels, { patched: 'json' });
    assert.equal(stored.metadata.generation, 3);

    // The default --type strategic: refused with 415 as kube-apiserver refuses it for custom
    // resources; kubectl 1.32 prefixes the server's message with its own explanation.
    const refused = await fails(['patch', 'gang', 'p1', '-n', 'patches', '-p', '{"spec":{"priority":1}}']);
    assert.match(refused, /application\/strategic-merge-patch\+json is not supported by k8s4ai\.io\/v1alpha1, Kind=GangSchedulingGroup/);
    assert.match(
      refused,
      /the body of the request was in an unknown format - accepted media types include: application\/json-patch\+json, application\/merge-patch\+json, application\/apply-patch\+yaml/,
    );
    // A patch that breaks the schema is refused and changes nothing.
    assert.match(await fails(['patch', 'gang', 'p1', '-n', 'patches', '--type', 'merge', '-p', '{"spec":{"roles":[]}}']), /spec\.roles/);
    const after = await t.cp.registry.get(GangSchedulingGroup, 'patches', 'p1');
    assert.equal(after.metadata.resourceVersion, stored.metadata.resourceVersion);
    assert.equal((after.spec as { priority: number }).priority, 7);
  });

  it('delete returns while another object of the kind exists', async () => {
    await createNamespace('deletes');
    await t.cp.registry.create(GangSchedulingGroup, 'deletes', gang('doomed'));
    await t.cp.registry.create(GangSchedulingGroup, 'deletes', gang('survivor'));
    await t.cp.registry.create(VRAMPool, 'deletes', { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'VRAMPool', metadata: { name: 'doomed' }, spec: { devices: 1, sharing: 'Exclusive' } });

    // kubectl waits for the deletion with a fieldSelector=metadata.name list + watch; a
    // server ignoring the selector would keep it waiting on "survivor". Killed = failure.
    const r = await k(['delete', 'gang', 'doomed', '-n', 'deletes'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, `delete did not return cleanly (code ${String(r.code)})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^gangschedulinggroup\.k8s4ai\.io "doomed" deleted/m);
    assert.match(await fails(['get', 'gang', 'doomed', '-n', 'deletes']), /NotFound/);
    assert.match(await ok(['get', 'gangs', '-n', 'deletes', '--no-headers']), /^survivor\s/m);
    // Same name, other kind: untouched.
    await t.cp.registry.get(VRAMPool, 'deletes', 'doomed');

    // Deleting what is not there: NotFound, and --ignore-not-found.
    assert.match(await fails(['delete', 'gang', 'doomed', '-n', 'deletes']), /Error from server \(NotFound\)/);
    await ok(['delete', 'gang', 'doomed', '-n', 'deletes', '--ignore-not-found']);
    // delete -f of a manifest.
    await ok(['apply', '-n', 'deletes', '-f', 'test/fixtures/good/pool.yaml']);
    assert.match(await ok(['delete', '-n', 'deletes', '-f', 'test/fixtures/good/pool.yaml'], {}), /vrampool\.k8s4ai\.io "fixture-pool" deleted/);
  });

  it('refuses bad manifests, names the field, and stores nothing', async () => {
    const cases = [
      { file: 'unknown-field.yaml', def: GangSchedulingGroup, name: 'bad-unknown-field', field: /spec\.roles\[0\]\.template\.resources\.gpu\b/ },
      { file: 'negative-quantity.yaml', def: VRAMPool, name: 'bad-negative-quantity', field: /spec\.sizePerDevice/ },
      { file: 'bad-enum.yaml', def: VRAMPool, name: 'bad-enum', field: /spec\.sharing.*Sometimes|Sometimes.*spec\.sharing/ },
    ];
    for (const c of cases) {
      for (const verb of [['apply'], ['create']]) {
        const out = await fails([...verb, '-f', `test/fixtures/bad/${c.file}`]);
        assert.match(out, c.field, `${verb[0]} ${c.file}: the output does not name the field:\n${out}`);
        assert.match(out, new RegExp(`${c.def.kind}(\\.k8s4ai\\.io)? "${c.name}" is invalid`), out);
      }
      assert.match(await fails(['get', c.def.singular, c.name]), new RegExp(`NotFound.*"${c.name}" not found`));
      assert.equal(await t.cp.registry.tryGet(c.def, 'default', c.name), undefined);
    }
    // Also refused: a namespaced object in a namespace that does not exist.
    assert.match(await fails(['apply', '-n', 'nowhere', '-f', 'test/fixtures/good/pool.yaml']), /namespaces "nowhere" not found/);
  });

  it('describe shows the spec and the Events about the object', async () => {
    await createNamespace('described');
    const created = await t.cp.registry.create(GangSchedulingGroup, 'described', gang('explained', { priority: 3 }));
    // One Event through the registry, as controllers record them ...
    await new EventRecorder(t.cp.registry, 'e2e-scheduler').record(created, 'Normal', 'E2EPlaced', 'placed 2 members on leaf l7');
    // ... and one through kubectl create.
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'explained.by-kubectl', namespace: 'described' },
      involvedObject: { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', name: 'explained', namespace: 'described', uid: created.metadata.uid },
      reason: 'E2EWaiting',
      message: 'waiting for 2 free GPUs in one leaf',
      type: 'Warning',
      source: { component: 'e2e-test' },
      firstTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      lastTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      count: 1,
    };
    await ok(['create', '-f', '-'], { input: JSON.stringify(event) });

    const out = await ok(['describe', 'gang', 'explained', '-n', 'described']);
    assert.match(out, /^Name:\s+explained$/m);
    assert.match(out, /^Namespace:\s+described$/m);
    assert.match(out, /^API Version:\s+k8s4ai\.io\/v1alpha1$/m);
    assert.match(out, /^Kind:\s+GangSchedulingGroup$/m);
    assert.match(out, /^Spec:$/m);
    assert.match(out, /^\s+Priority:\s+3$/m);
    assert.match(out, /^\s+Roles:$/m);
    assert.match(out, /^Events:$/m);
    assert.match(out, /Normal\s+E2EPlaced\s+.*e2e-scheduler\s+placed 2 members on leaf l7/);
    assert.match(out, /Warning\s+E2EWaiting\s+.*e2e-test\s+waiting for 2 free GPUs in one leaf/);

    // The events also list and print through kubectl.
    const events = await ok(['get', 'events', '-n', 'described', '--field-selector', 'involvedObject.name=explained']);
    assert.match(events, /E2EPlaced/);
    assert.match(events, /E2EWaiting/);
  });

  it('lists our kinds by category: get k8s4ai and get all', async () => {
    await createNamespace('categories');
    await t.cp.registry.create(GangSchedulingGroup, 'categories', gang('in-category'));
    const byCategory = await ok(['get', 'k8s4ai', '-n', 'categories']);
    assert.match(byCategory, /^gangschedulinggroup\.k8s4ai\.io\/in-category\s+default\s+2\s+Pending\s/m);
    const all = await ok(['get', 'all', '-n', 'categories']);
    assert.match(all, /^gangschedulinggroup\.k8s4ai\.io\/in-category\s/m);
    // Cluster-scoped kinds of the category are listed too.
    assert.match(await ok(['get', 'k8s4ai', '-A']), /^\s*node\.k8s4ai\.io\/e2e-node-1\s/m);
  });

  it('a tenant token works in its namespace and is forbidden elsewhere', async () => {
    await ok(['create', 'ns', 'team-y']);
    const tenant = t.tenantKubeconfig('tenant-x', ['team-x']);
    await t.cp.registry.create(GangSchedulingGroup, 'team-x', gang('tenant-job'));

    // Its own namespace (the kubeconfig's context namespace, and -n).
    assert.match(await ok(['get', 'gangs'], { kubeconfig: tenant }), /^tenant-job\s+default\s+2\s+Pending\s/m);
    assert.match(await ok(['get', 'gangs', '-n', 'team-x'], { kubeconfig: tenant }), /^tenant-job\s/m);
    assert.match(await ok(['apply', '-n', 'team-x', '-f', 'test/fixtures/good/gangs.yaml'], { kubeconfig: tenant }), /fixture-train created/);
    await ok(['delete', 'gang', 'fixture-notebook', '-n', 'team-x'], { kubeconfig: tenant });
    // Cluster-scoped kinds: read-only.
    await ok(['get', 'nodes.k8s4ai.io'], { kubeconfig: tenant });

    // Anywhere else: Forbidden.
    for (const ns of ['default', 'team-y']) {
      assert.match(await fails(['get', 'gangs', '-n', ns], { kubeconfig: tenant }), /Error from server \(Forbidden\):.*tenant-x.*cannot list resource "gangschedulinggroups" in the namespace "(default|team-y)"/);
    }
    assert.match(await fails(['get', 'gangs', '-A'], { kubeconfig: tenant }), /Forbidden/);
    assert.match(await fails(['apply', '-n', 'default', '-f', 'test/fixtures/good/pool.yaml'], { kubeconfig: tenant }), /Forbidden/);
    assert.match(await fails(['create', 'ns', 'tenant-made'], { kubeconfig: tenant }), /Forbidden/);
    assert.match(await fails(['delete', 'kn', 'e2e-node-1'], { kubeconfig: tenant }), /Forbidden/);
    assert.equal(await t.cp.registry.tryGet(VRAMPool, 'default', 'fixture-pool'), undefined);
    await t.cp.registry.get(Node, undefined, 'e2e-node-1');
  });

  it('answers 413 to a body over 3 MiB and 401 without a valid token', async () => {
    const huge = gang('too-big', { padding: 'x'.repeat(MAX_BODY_BYTES) });
    assert.ok(MAX_BODY_BYTES >= 3 * 1024 * 1024);
    const big = await t.fetch('/apis/k8s4ai.io/v1alpha1/namespaces/default/gangschedulinggroups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(huge),
    });
    assert.equal(big.status, 413);
    const status413 = (await big.json()) as { kind: string; code: number; reason: string; status: string };
    assert.equal(status413.kind, 'Status');
    assert.equal(status413.code, 413);
    assert.equal(status413.status, 'Failure');
    assert.equal(status413.reason, 'RequestEntityTooLarge');
    assert.equal(await t.cp.registry.tryGet(GangSchedulingGroup, 'default', 'too-big'), undefined);

    for (const [token, headers] of [
      [null, {}],
      ['not-a-token', {}],
      [null, { authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ] as const) {
      const res = await t.fetch('/api/v1/namespaces', { token, headers });
      assert.equal(res.status, 401, `${String(token)} ${JSON.stringify(headers)}`);
      const status = (await res.json()) as { kind: string; code: number; reason: string };
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 401);
      assert.equal(status.reason, 'Unauthorized');
    }
    // The same request with the token works.
    assert.equal((await t.fetch('/api/v1/namespaces')).status, 200);
    // kubectl with a wrong token says so.
    const bad = join(t.dir, 'kubeconfig-bad-token');
    writeFileSync(bad, readFileSync(t.kubeconfig, 'utf8').replace(/token: .*/, 'token: k8s4ai_not-a-real-token'));
    assert.match(await fails(['get', 'ns'], { kubeconfig: bad }), /You must be logged in to the server|Unauthorized/);
  });
});
