// The whole serving path as `up` runs it: an InferenceService of simulated engines placed by
// the scheduler and run by the agent (each replica on its own port, reported in its Task's
// status), and a ContentRouter for which the control plane runs a `k8s4ai router` process
// that takes its configuration from the object, its backends from the Tasks, and writes
// its status back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../src/api/meta.ts';
import { ContentRouter, InferenceService, Task } from '../src/api/kinds/index.ts';
import { readManifests } from '../src/cli/manifests.ts';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { waitFor } from './helpers/wait.ts';

const FLEET = new URL('../fleet/small.yaml', import.meta.url).pathname;
const EXAMPLE = new URL('../examples/inference/sim-service.yaml', import.meta.url).pathname;
const KEY_A = 'sk-k8s4ai-demo-tenant-a';

let t: TestControlPlane;

before(async () => {
  t = await startTestControlPlane({ fleet: FLEET, scheduler: true, agent: { heartbeatSeconds: 1 }, routers: true });
});

after(async () => {
  await t.cp.registry.delete(InferenceService, 'default', 'sim-8b').catch(() => undefined);
  await waitFor('the engines to stop', async () => (await t.cp.registry.list(Task, 'default')).items.length === 0, 60_000).catch(() => undefined);
  await t.stop();
});

interface RouterStatus {
  url?: string;
  readyBackends?: number;
  blockHitRate?: number;
}

test('a ContentRouter in front of an InferenceService of simulated engines, as `up` runs it', { timeout: 180_000 }, async () => {
  for (const m of readManifests([EXAMPLE])) {
    const o = structuredClone(m.object) as KubeObject & { spec: Record<string, any> };
    if (o.kind === 'InferenceService') {
      o.spec.replicas = 2;
      o.spec.template.workingDir = new URL('..', import.meta.url).pathname;
      await t.cp.registry.create(InferenceService, 'default', o);
    } else {
      o.spec.listen.port = 0; // any free port; the router says which in its status
      await t.cp.registry.create(ContentRouter, 'default', o);
    }
  }
  const status = await waitFor('the router to see both engines ready', async () => {
    const st = ((await t.cp.registry.get(ContentRouter, 'default', 'sim-8b')).status ?? {}) as RouterStatus;
    return st.url && st.readyBackends === 2 ? st : undefined;
  }, 120_000);
  const tasks = (await t.cp.registry.list(Task, 'default')).items;
  const endpoints = tasks.map((x) => (x.status as { endpoint?: string }).endpoint);
  assert.equal(new Set(endpoints).size, 2, `each replica serves on its own port: ${endpoints.join(', ')}`);

  const ask = (key: string | undefined, user: string) => fetch(`${status.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ model: 'k8s4ai/sim-8b', max_tokens: 4, messages: [{ role: 'system', content: 'You answer in one word. '.repeat(40) }, { role: 'user', content: user }] }),
  });
  assert.equal((await ask(undefined, 'hi')).status, 401, 'no key, no answer');
  const first = await ask(KEY_A, 'What is a GPU?');
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-k8s4ai-simulated'), 'true');
  const second = await ask(KEY_A, 'And a TPU?');
  const usage = ((await second.json()) as { usage: { prompt_tokens_details?: { cached_tokens?: number } } }).usage;
  assert.ok((usage.prompt_tokens_details?.cached_tokens ?? 0) > 0, 'the shared system prompt was cached on the replica the router chose');
  await first.body?.cancel();

  await waitFor('the hit rate in the ContentRouter status', async () => {
    const st = ((await t.cp.registry.get(ContentRouter, 'default', 'sim-8b')).status ?? {}) as RouterStatus;
    return (st.blockHitRate ?? 0) > 0;
  }, 30_000);

  // Deleting the ContentRouter stops its router process.
  const pid = t.cp.routers!.pids().get('default/sim-8b')!;
  assert.ok(pid > 0);
  await t.cp.registry.delete(ContentRouter, 'default', 'sim-8b');
  await waitFor('the router process to exit', () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 30_000);
});
