// Task logs end to end: `k8s4ai logs` → API server (tasks/<name>/log) → the node agent's
// /logs endpoint → the log file, as `kubectl logs` goes through the kubelet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { fetch, type Response } from 'undici';
import { createMemoryStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';
import { Registry } from '../src/apiserver/registry.ts';
import { ALL_KINDS } from '../src/api/kinds/index.ts';
import { Node } from '../src/api/kinds/node.ts';
import { Task } from '../src/api/kinds/task.ts';
import { createApiServer, type ApiServer } from '../src/apiserver/server.ts';
import { TokenAuthenticator, addToken } from '../src/apiserver/auth.ts';
import { createLogger } from '../src/lib/logger.ts';
import { writeKubeconfig } from '../src/lib/kubeconfig.ts';
import { agentProxyTokenPath, tokensPath } from '../src/lib/paths.ts';
import { readOrCreateSecret } from '../src/lib/secret.ts';
import { startAgentServer, tailOffset, type AgentServer, type LogSource } from '../src/agent/server.ts';
import { logs } from '../src/cli/logs.ts';
import { CliError } from '../src/cli/errors.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const G = '/apis/k8s4ai.io/v1alpha1';
const LINES = ['epoch 1 loss 2.31', 'epoch 2 loss 1.87', 'epoch 3 loss 1.52', 'epoch 4 loss 1.20'];
const FULL = `${LINES.join('\n')}\n`;

let dir: string;
let store: Store;
let registry: Registry;
let server: ApiServer;
let agent: AgentServer;
let url: string;
let adminToken: string;
let tenantToken: string;
let proxyToken: string;
let kubeconfig: string;
/** What the fake agent knows: `<ns>/<name>` → current and previous attempt. */
const known = new Map<string, { current?: LogSource; previous?: LogSource }>();
let runningCalls = 0;

const api = (path: string, token: string | null = adminToken, signal?: AbortSignal): Promise<Response> =>
  fetch(`${url}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, signal });

/** A log file, and whether its process still runs, under the test's control. */
function logFile(file: string, text: string, running = false): LogSource & { stop(): void } {
  const path = join(dir, file);
  writeFileSync(path, text);
  let live = running;
  return {
    path,
    running: () => {
      runningCalls++;
      return live;
    },
    stop: () => {
      live = false;
    },
  };
}

async function createTask(name: string, nodeName?: string): Promise<void> {
  await registry.create(Task, 'default', {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'Task',
    metadata: { name },
    spec: { command: ['python3', 'train.py'], ...(nodeName ? { nodeName } : {}) },
    status: { phase: nodeName ? 'Running' : 'Pending' },
  }, { keepStatus: true });
}

/** A Writable that keeps what the CLI prints. */
function sink(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  }) as Writable & { text(): string };
  w.text = () => Buffer.concat(chunks).toString();
  return w;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, '--kubeconfig', kubeconfig, ...args], { timeout: 60_000, env: { ...process.env, HOME: dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k8s4ai-logs-'));
  store = await createMemoryStore();
  registry = new Registry(store, ALL_KINDS);
  await registry.bootstrap();
  adminToken = addToken(tokensPath(dir), 'admin', ['*']);
  tenantToken = addToken(tokensPath(dir), 'tenant', ['team-a']);
  proxyToken = readOrCreateSecret(agentProxyTokenPath(dir));
  server = createApiServer({
    registry,
    authenticator: new TokenAuthenticator(tokensPath(dir)),
    logger: createLogger({ level: 'silent' }),
    agentProxyToken: proxyToken,
  });
  url = await server.listen(0, '127.0.0.1');
  kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, { server: url, token: adminToken });

  agent = await startAgentServer({
    address: '127.0.0.1',
    port: 0,
    token: proxyToken,
    pollIntervalMs: 50,
    resolveLog: (ns, name, { previous }) => {
      const entry = known.get(`${ns}/${name}`);
      return previous ? entry?.previous : entry?.current;
    },
  });

  for (const [name, agentEndpoint] of [['n1', agent.url], ['n2', undefined]] as const) {
    await registry.create(Node, undefined, {
      apiVersion: 'k8s4ai.io/v1alpha1',
      kind: 'Node',
      metadata: { name },
      spec: {},
      status: agentEndpoint ? { agentEndpoint } : {},
    }, { keepStatus: true });
  }
  await createTask('trainer-0', 'n1');
  await createTask('nolog', 'n1');
  await createTask('waiting');
  await createTask('orphan', 'n2');
  await createTask('lost', 'gone-node');
  known.set('default/trainer-0', { current: logFile('trainer-0.log', FULL), previous: logFile('trainer-0.prev.log', 'attempt 0: CUDA out of memory\n') });
});

after(async () => {
  await agent?.close();
  server?.app.server.closeAllConnections();
  await server?.close();
  registry?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the proxy token is made once, kept private, and reused', () => {
  const path = agentProxyTokenPath(dir);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(readOrCreateSecret(path), proxyToken);
  assert.ok(proxyToken.length >= 32);
});

test('discovery lists tasks/log beside tasks/status', async () => {
  const list = (await (await api(G)).json()) as { resources: { name: string; verbs: string[]; kind: string }[] };
  const names = list.resources.map((r) => r.name);
  assert.equal(names.indexOf('tasks/log'), names.indexOf('tasks/status') + 1);
  assert.deepEqual(list.resources.find((r) => r.name === 'tasks/log'), { name: 'tasks/log', singularName: '', namespaced: true, kind: 'Task', verbs: ['get'] });
});

test('the log subresource returns the file, its last lines, and the previous attempt', async () => {
  const whole = await api(`${G}/namespaces/default/tasks/trainer-0/log`);
  assert.equal(whole.status, 200);
  assert.match(String(whole.headers.get('content-type')), /^text\/plain/);
  assert.equal(await whole.text(), FULL);

  assert.equal(await (await api(`${G}/namespaces/default/tasks/trainer-0/log?tailLines=2`)).text(), `${LINES[2]}\n${LINES[3]}\n`);
  assert.equal(await (await api(`${G}/namespaces/default/tasks/trainer-0/log?tailLines=0`)).text(), '');
  assert.equal(await (await api(`${G}/namespaces/default/tasks/trainer-0/log?tailLines=99`)).text(), FULL);
  assert.equal(await (await api(`${G}/namespaces/default/tasks/trainer-0/log?previous=true`)).text(), 'attempt 0: CUDA out of memory\n');

  const bad = await api(`${G}/namespaces/default/tasks/trainer-0/log?tailLines=-3`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { message: string }).message, /tailLines must be a non-negative integer/);
});

test('tailOffset counts lines from the end, with or without a final newline', async () => {
  const cases: [string, number, string][] = [
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc', 2, 'b\nc'],
    ['a\nb\nc', 5, 'a\nb\nc'],
    ['a\n\n\nb\n', 2, '\nb\n'],
    ['', 3, ''],
    ['x'.repeat(200_000) + '\nlast\n', 1, 'last\n'],
  ];
  for (const [text, n, want] of cases) {
    const path = join(dir, 'tail.txt');
    writeFileSync(path, text);
    const fh = await open(path, 'r');
    try {
      assert.equal(text.slice(await tailOffset(fh, n)), want, JSON.stringify({ text: text.slice(0, 20), n }));
    } finally {
      await fh.close();
    }
  }
});

test('follow streams lines appended later and ends when the process stops', async () => {
  const src = logFile('follow.log', 'starting\n', true);
  known.set('default/follower', { current: src });
  await createTask('follower', 'n1');
  const res = await api(`${G}/namespaces/default/tasks/follower/log?follow=true`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let got = '';
  const readUntil = async (want: string) => {
    while (!got.includes(want)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before "${want}"; got ${JSON.stringify(got)}`);
      got += decoder.decode(value, { stream: true });
    }
  };
  await readUntil('starting\n');
  appendFileSync(src.path, 'step 1\n');
  await readUntil('step 1\n');
  appendFileSync(src.path, 'step 2\n');
  await readUntil('step 2\n');
  // The last words land just before the process ends: the follow still delivers them.
  appendFileSync(src.path, 'done\n');
  src.stop();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    got += decoder.decode(value, { stream: true });
  }
  assert.equal(got, 'starting\nstep 1\nstep 2\ndone\n');
});

test('a client that leaves ends the follow at the agent', async () => {
  const src = logFile('leaver.log', 'hello\n', true);
  known.set('default/leaver', { current: src });
  await createTask('leaver', 'n1');
  const ac = new AbortController();
  const res = await api(`${G}/namespaces/default/tasks/leaver/log?follow=true`, adminToken, ac.signal);
  const reader = res.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), 'hello\n');
  ac.abort();
  await sleep(300);
  const settled = runningCalls;
  await sleep(300);
  assert.equal(runningCalls, settled, 'the agent stopped polling the abandoned follow');
});

test('the agent answers the control plane only', async () => {
  assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
  const path = `${agent.url}/logs/default/trainer-0`;
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${proxyToken}x` }, { authorization: `Basic ${proxyToken}` }]) {
    const res = await fetch(path, { headers });
    assert.equal(res.status, 401);
    assert.deepEqual(Object.keys((await res.json()) as object).sort(), ['code', 'message']);
  }
  const ok = await fetch(path, { headers: { authorization: `Bearer ${proxyToken}` } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), FULL);
});

test('clear errors: unbound, unknown node, no agent, no log, not allowed, no credentials', async () => {
  const status = async (path: string, token: string | null = adminToken) => {
    const res = await api(`${G}/namespaces/default/tasks/${path}`, token);
    const body = (await res.json()) as { kind: string; reason: string; message: string; code: number };
    assert.equal(body.kind, 'Status');
    assert.equal(body.code, res.status);
    return body;
  };
  const unbound = await status('waiting/log');
  assert.equal(unbound.code, 400);
  assert.match(unbound.message, /task "waiting" is not bound to a node yet \(phase Pending\)/);

  const lost = await status('lost/log');
  assert.equal(lost.code, 404);
  assert.match(lost.message, /node "gone-node", which does not exist/);

  const orphan = await status('orphan/log');
  assert.equal(orphan.code, 503);
  assert.match(orphan.message, /no agent serves node "n2"/);

  const missing = await status('ghost/log');
  assert.equal(missing.code, 404);
  assert.equal(missing.message, 'tasks.k8s4ai.io "ghost" not found');

  const nolog = await status('nolog/log');
  assert.equal(nolog.code, 404);
  assert.match(nolog.message, /no log of task "nolog" in namespace "default"/);
  const noPrevious = await status('nolog/log?previous=true');
  assert.match(noPrevious.message, /no previous log of task "nolog"/);

  const forbidden = await status('trainer-0/log', tenantToken);
  assert.equal(forbidden.code, 403);
  assert.match(forbidden.message, /User "tenant" cannot get resource "tasks" in the namespace "default"/);
  assert.equal((await status('trainer-0/log', null)).code, 401);

  // Other verbs on the subresource are not served.
  const post = await fetch(`${url}${G}/namespaces/default/tasks/trainer-0/log`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(post.status, 404);

  // An API server without the agent proxy token cannot read logs.
  const bare = createApiServer({ registry, authenticator: new TokenAuthenticator(tokensPath(dir)), logger: createLogger({ level: 'silent' }) });
  try {
    const res = await bare.app.inject({ method: 'GET', url: `${G}/namespaces/default/tasks/trainer-0/log`, headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(res.statusCode, 503);
    assert.match(res.json<{ message: string }>().message, /no agent credentials/);
  } finally {
    await bare.close();
  }

  // A control plane whose token the agent does not know: the agent's refusal, not the user's.
  const wrong = createApiServer({ registry, authenticator: new TokenAuthenticator(tokensPath(dir)), logger: createLogger({ level: 'silent' }), agentProxyToken: 'stale' });
  try {
    const res = await wrong.app.inject({ method: 'GET', url: `${G}/namespaces/default/tasks/trainer-0/log`, headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(res.statusCode, 500);
    assert.match(res.json<{ message: string }>().message, /the agent of node "n1" refused the control plane's credentials/);
  } finally {
    await wrong.close();
  }
});

test('an agent that is down: 503 naming the node and its endpoint', async () => {
  const dead = await startAgentServer({ address: '127.0.0.1', port: 0, token: proxyToken, resolveLog: () => undefined });
  await dead.close();
  await registry.create(Node, undefined, { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Node', metadata: { name: 'n3' }, spec: {}, status: { agentEndpoint: dead.url } }, { keepStatus: true });
  await createTask('stranded', 'n3');
  const res = await api(`${G}/namespaces/default/tasks/stranded/log`);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { message: string }).message, new RegExp(`cannot reach the agent of node "n3" at ${dead.url}`));
});

test('k8s4ai logs: whole, --tail, --previous, task/NAME, -f, and errors as other commands print them', async () => {
  const run = async (target: string, o: Parameters<typeof logs>[1] = {}) => {
    const out = sink();
    await logs(target, { kubeconfig, ...o }, out);
    return out.text();
  };
  assert.equal(await run('trainer-0'), FULL);
  assert.equal(await run('trainer-0', { tail: '2' }), `${LINES[2]}\n${LINES[3]}\n`);
  assert.equal(await run('task/trainer-0', { tail: '-1' }), FULL);
  assert.equal(await run('tasks.k8s4ai.io/trainer-0', { previous: true }), 'attempt 0: CUDA out of memory\n');

  const src = logFile('cli-follow.log', 'one\n', true);
  known.set('default/cli-follower', { current: src });
  await createTask('cli-follower', 'n1');
  const out = sink();
  const following = logs('cli-follower', { kubeconfig, follow: true }, out);
  while (!out.text().includes('one\n')) await sleep(20);
  appendFileSync(src.path, 'two\n');
  while (!out.text().includes('two\n')) await sleep(20);
  src.stop();
  await following;
  assert.equal(out.text(), 'one\ntwo\n');

  await assert.rejects(run('ghost'), (err: unknown) => err instanceof CliError && err.message === 'Error from server (NotFound): tasks.k8s4ai.io "ghost" not found');
  await assert.rejects(run('waiting'), /Error from server \(BadRequest\): task "waiting" is not bound to a node yet/);
  await assert.rejects(run('gang/x'), /logs are kept for tasks only/);
  await assert.rejects(run('trainer-0', { tail: 'ten' }), /--tail must be a number of lines/);
  await assert.rejects(run('trainer-0', { namespace: 'default', kubeconfig: tenantKubeconfig() }), /Error from server \(Forbidden\)/);
});

function tenantKubeconfig(): string {
  const path = join(dir, 'kubeconfig-tenant');
  writeKubeconfig(path, { server: url, token: tenantToken, user: 'tenant', namespace: 'team-a' });
  return path;
}

test('the k8s4ai binary: logs --tail, a clear error, and Ctrl-C ends -f cleanly', async () => {
  const tail = await cli(['logs', 'trainer-0', '--tail', '1']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, `${LINES[3]}\n`);

  const missing = await cli(['logs', 'ghost', '-n', 'default']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'Error from server (NotFound): tasks.k8s4ai.io "ghost" not found\n');

  const src = logFile('sigint.log', 'running forever\n', true);
  known.set('default/forever', { current: src });
  await createTask('forever', 'n1');
  const child = spawn(process.execPath, [BIN, '--kubeconfig', kubeconfig, 'logs', '-f', 'forever'], { env: { ...process.env, HOME: dir } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (stdout.includes('running forever\n')) resolve();
    });
  });
  child.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.equal(stderr, '');
  assert.equal(stdout, 'running forever\n');
});
