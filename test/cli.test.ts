// The k8s4ai CLI against a running control plane, run as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));

let t: TestControlPlane;

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, '--kubeconfig', t.kubeconfig, ...args], { timeout: 60_000, env: { ...process.env, HOME: t.dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

before(async () => {
  t = await startTestControlPlane({ store: 'sqlite' });
});
after(async () => {
  await t.stop();
});

test('apply creates, then updates; get prints the table and yaml', async () => {
  const first = await cli(['apply', '-f', join(EXAMPLES, 'training/gang-small.yaml')]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /gangschedulinggroup.k8s4ai.io\/hello-gang created/);
  const again = await cli(['apply', '-f', join(EXAMPLES, 'training/gang-small.yaml')]);
  assert.match(again.stdout, /hello-gang unchanged/);
  const changed = (await import('node:fs')).readFileSync(join(EXAMPLES, 'training/gang-small.yaml'), 'utf8').replace('replicas: 2', 'replicas: 3');
  const updated = await cli(['apply', '-f', '-'], changed);
  assert.equal(updated.code, 0, updated.stderr);
  assert.match(updated.stdout, /hello-gang configured/);

  const table = await cli(['get', 'gangs']);
  assert.equal(table.code, 0, table.stderr);
  const [header, row] = table.stdout.trim().split('\n');
  assert.match(header!, /^NAME\s+QUEUE\s+GPUS\s+PHASE\s+RESTARTS\s+AGE$/);
  assert.match(row!, /^hello-gang\s+default\s+3\s+Pending\s+0\s+\d+s$/);

  const yaml = await cli(['get', 'gang', 'hello-gang', '-o', 'yaml']);
  assert.match(yaml.stdout, /replicas: 3/);
  assert.match(yaml.stdout, /generation: 2/);
  const json = JSON.parse((await cli(['get', 'gangschedulinggroup/hello-gang', '-o', 'json'])).stdout);
  assert.equal(json.metadata.name, 'hello-gang');
});

test('apply of every example, a folder at once', async () => {
  const res = await cli(['apply', '-f', EXAMPLES]);
  assert.equal(res.code, 0, res.stderr);
  const kinds = new Set(res.stdout.trim().split('\n').map((l) => l.split('/')[0]));
  assert.equal(kinds.size, 11, `every kind applied: ${[...kinds].join(', ')}`);
});

test('describe shows spec, status, conditions and events', async () => {
  await t.fetch('/api/v1/namespaces/default/events', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'hello-gang.test' },
      involvedObject: { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'GangSchedulingGroup', name: 'hello-gang', namespace: 'default', uid: JSON.parse((await cli(['get', 'gang', 'hello-gang', '-o', 'json'])).stdout).metadata.uid },
      reason: 'Unschedulable',
      message: 'needs 32×H100 within one leaf; the emptiest leaf has 24 free',
      type: 'Warning',
      count: 1,
      lastTimestamp: new Date().toISOString(),
      source: { component: 'k8s4ai-scheduler' },
    }),
  });
  const res = await cli(['describe', 'gang', 'hello-gang']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^Name:\s+hello-gang$/m);
  assert.match(res.stdout, /^Spec:$/m);
  assert.match(res.stdout, /Warning\s+Unschedulable\s+.*needs 32×H100 within one leaf/);
});

test('get -w prints a row when an object changes', async () => {
  const child = spawn(process.execPath, [BIN, '--kubeconfig', t.kubeconfig, 'get', 'gangs', '-w'], { env: { ...process.env, HOME: t.dir } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  try {
    await until(() => /hello-gang/.test(out));
    await t.fetch('/apis/k8s4ai.io/v1alpha1/namespaces/default/gangschedulinggroups/hello-gang/status', {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ status: { phase: 'Scheduled' } }),
    });
    await until(() => /hello-gang\s+default\s+\d+\s+Scheduled/.test(out));
  } finally {
    child.kill();
  }
});

test('delete removes objects', async () => {
  const res = await cli(['delete', 'gang', 'hello-gang']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /"hello-gang" deleted/);
  const gone = await cli(['get', 'gang', 'hello-gang']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /Error from server \(NotFound\)/);
});

test('a bad manifest is refused in one line naming the field, and nothing is written', async () => {
  const bad = join(t.dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: k8s4ai.io/v1alpha1\nkind: GangSchedulingGroup\nmetadata: {name: broken}\nspec:\n  roles: [{name: w, replicas: -2, template: {command: [x], resources: {vram: 20GB}}}]\n  colour: blue\n');
  const res = await cli(['apply', '-f', bad]);
  assert.equal(res.code, 1);
  assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
  assert.match(res.stderr, /spec\.roles\[0\]\.replicas/);
  assert.match(res.stderr, /spec\.roles\[0\]\.template\.resources\.vram/);
  assert.match(res.stderr, /spec\.colour/);
  const gone = await cli(['get', 'gang', 'broken']);
  assert.match(gone.stderr, /NotFound/);
});

test('failures print one clear line and exit non-zero', async () => {
  const unknown = await cli(['get', 'widgets']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /doesn't have a resource type "widgets"/);
  const missing = await cli(['apply', '-f', join(t.dir, 'nope.yaml')]);
  assert.match(missing.stderr, /does not exist/);
  const badYaml = await cli(['apply', '-f', '-'], 'kind: [');
  assert.equal(badYaml.code, 1);
  assert.match(badYaml.stderr, /invalid YAML/);
  const down = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, '--kubeconfig', join(t.dir, 'absent'), 'get', 'nodes'], (err, _o, stderr) => resolve({ code: (err as { code?: number })?.code ?? 0, stderr })),
  );
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot read kubeconfig/);
});

test('version, crds and kubeconfig', async () => {
  const v = await cli(['version']);
  assert.match(v.stdout, /Client Version: v1\.32\.0-k8s4ai/);
  assert.match(v.stdout, /Server Version: v1\.32\.0-k8s4ai/);
  const kc = await new Promise<string>((resolve) => execFile(process.execPath, [BIN, '--data-dir', t.dir, 'kubeconfig'], (_e, out) => resolve(out)));
  assert.match(kc, /certificate-authority-data/);
});

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
