// The gang framework on small hand-made clusters: topology levels, NVLink islands, MIG,
// shared GPUs and reserved memory, warm weights, explanations, all-or-nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterCache, type NodeInput } from '../src/scheduler/cache/cluster.ts';
import { createFramework } from '../src/scheduler/framework/profiles.ts';
import type { GangRequest, MemberRequest } from '../src/scheduler/framework/types.ts';

const GiB = 2 ** 30;

function node(name: string, leaf: string, gpus = 8, opts: { cls?: string; memoryGiB?: number; reservedGiB?: number; islandSize?: number; mig?: boolean } = {}): NodeInput {
  return {
    name,
    leaf,
    cpuMilli: 64_000,
    memoryBytes: 512 * GiB,
    devices: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      uuid: `GPU-${name}-${i}`,
      className: opts.cls ?? 'h100',
      attrs: { architecture: 'hopper', fp8: 'true', memory: String((opts.memoryGiB ?? 80) * GiB) },
      memoryBytes: (opts.memoryGiB ?? 80) * GiB,
      reservedBytes: (opts.reservedGiB ?? 0) * GiB,
      numa: i < gpus / 2 ? 0 : 1,
      island: Math.floor(i / (opts.islandSize ?? gpus)),
      mig: opts.mig && i === 0 ? [0, 1, 2, 3, 4, 5, 6].map((k) => ({ profile: '1g.10gb', instance: k, memoryBytes: 10 * GiB })) : undefined,
    })),
  };
}

/** fabric f → spines s1, s2 → leaves (2 per spine) → `perLeaf` nodes of 8 GPUs. */
function cluster(perLeaf = 2, extra: NodeInput[] = []): ClusterCache {
  const cache = new ClusterCache();
  cache.setDomain({ name: 'f', level: 'fabric' });
  for (const s of ['s1', 's2']) {
    cache.setDomain({ name: s, level: 'spine', parent: 'f' });
    for (const l of ['a', 'b']) cache.setDomain({ name: `${s}-${l}`, level: 'leaf', parent: s });
  }
  for (const leaf of ['s1-a', 's1-b', 's2-a', 's2-b']) for (let i = 0; i < perLeaf; i++) cache.upsertNode(node(`${leaf}-n${i}`, leaf));
  for (const n of extra) cache.upsertNode(n);
  return cache;
}

function member(id: string, r: Partial<MemberRequest>): MemberRequest {
  return { id, role: 'w', index: Number(id.split('-').pop()) || 0, gpus: 0, gpuMilli: 0, vramBytes: 0, cpuMilli: 1000, memoryBytes: GiB, ...r };
}

function gang(name: string, count: number, r: Partial<MemberRequest>, g: Partial<GangRequest> = {}): GangRequest {
  const members = Array.from({ length: count }, (_, i) => member(`w-${i}`, r));
  return { id: `default/${name}`, namespace: 'default', name, queue: 'default', priority: 0, createdAt: 0, members, minMember: count, ...g };
}

const snapshot = (cache: ClusterCache) =>
  JSON.stringify([...cache.nodes.values()].map((n) => [n.name, n.cpuFree, n.memoryFree, n.freeWhole, n.devices.map((d) => [d.milliFree, d.memoryFree, d.mig?.map((m) => m.usedBy ?? '')])]));

test('a gang goes to the lowest domain that holds it all: one node, then one leaf', () => {
  const cache = cluster();
  const fw = createFramework(cache);
  const small = fw.schedule(gang('two', 2, { gpus: 4 }));
  assert.equal(small.placement?.level, 'node', 'two 4-GPU members share one node');
  const leaf = fw.schedule(gang('leafy', 2, { gpus: 8 }));
  assert.equal(leaf.placement?.level, 'leaf');
  const nodes = new Set(leaf.placement!.members.map((m) => m.node));
  assert.equal(nodes.size, 2);
  assert.equal(new Set([...nodes].map((n) => cache.nodes.get(n)!.leaf)).size, 1);
});

test('the fullest domain that fits is chosen, keeping whole domains free', () => {
  const cache = cluster();
  const fw = createFramework(cache);
  // Take one node of leaf s2-b, so s2-b is the fullest leaf with room for 8 GPUs.
  assert.ok(fw.schedule(gang('filler', 1, { gpus: 8, nodeSelector: {} }, { requiredLevel: 'node' })).placement);
  const filled = cache.holding('default/filler')[0]!.node;
  const leafOfFiller = cache.nodes.get(filled)!.leaf;
  const next = fw.schedule(gang('next', 1, { gpus: 8 }));
  assert.equal(cache.nodes.get(next.placement!.members[0]!.node)!.leaf, leafOfFiller, 'packs into the leaf already in use');
});

test('required leaf is never violated, and the reason names the emptiest leaf', () => {
  const cache = cluster();
  const fw = createFramework(cache);
  // 3 members × 8 GPUs need 24 in one leaf; each leaf has 16.
  const res = fw.schedule(gang('big', 3, { gpus: 8, acceleratorClass: 'h100' }, { requiredLevel: 'leaf' }));
  assert.equal(res.placement, undefined);
  assert.equal(res.status.code, 'Unschedulable');
  assert.match(res.status.reason!, /needs 24×h100 within one leaf; the emptiest leaf, s1-a, has 16 free/);
  assert.equal(cache.gangIds().length, 0, 'nothing is held after a failed attempt');
  const spine = fw.schedule(gang('big', 3, { gpus: 8 }, { requiredLevel: 'spine' }));
  assert.equal(spine.placement?.level, 'spine');
});

test('members pack into one NVLink island; nvlink-island required keeps the gang in one', () => {
  const cache = new ClusterCache();
  cache.upsertNode(node('n', 'l', 8, { islandSize: 4 }));
  const fw = createFramework(cache);
  const one = fw.schedule(gang('isl', 1, { gpus: 2 }));
  const islands = new Set(one.placement!.members[0]!.devices.map((d) => Math.floor(d.index / 4)));
  assert.equal(islands.size, 1);
  const pair = fw.schedule(gang('pair', 2, { gpus: 1 }, { requiredLevel: 'nvlink-island' }));
  const used = pair.placement!.members.flatMap((m) => m.devices.map((d) => Math.floor(d.index / 4)));
  assert.equal(new Set(used).size, 1);
  const tooBig = fw.schedule(gang('wide', 2, { gpus: 3 }, { requiredLevel: 'nvlink-island' }));
  assert.equal(tooBig.placement, undefined, '6 GPUs never fit one island of 4');
});

test('shares of one GPU: vram and compute add up, reserved memory is never handed out', () => {
  const cache = new ClusterCache();
  cache.upsertNode(node('n', 'l', 1, { memoryGiB: 80, reservedGiB: 1 }));
  const fw = createFramework(cache);
  const a = fw.schedule(gang('a', 1, { vramBytes: 40 * GiB, gpuMilli: 500 }));
  const b = fw.schedule(gang('b', 1, { vramBytes: 39 * GiB, gpuMilli: 500 }));
  assert.ok(a.placement && b.placement, 'two shares fit on one GPU');
  assert.equal(a.placement.members[0]!.devices[0]!.index, b.placement.members[0]!.devices[0]!.index);
  const c = fw.schedule(gang('c', 1, { vramBytes: 1 * GiB, gpuMilli: 1 }));
  assert.equal(c.placement, undefined, 'the reserved 1 GiB and the used compute are not handed out');
  const whole = fw.schedule(gang('w', 1, { gpus: 1 }));
  assert.equal(whole.placement, undefined, 'a shared GPU is not given whole');
});

test('MIG: exactly the requested profile, each instance once', () => {
  const cache = new ClusterCache();
  cache.upsertNode(node('n', 'l', 2, { mig: true }));
  const fw = createFramework(cache);
  const got = [];
  for (let i = 0; i < 7; i++) {
    const r = fw.schedule(gang(`m${i}`, 1, { migProfile: '1g.10gb' }));
    assert.ok(r.placement, `instance ${i}`);
    got.push(r.placement.members[0]!.devices[0]!.migInstance);
  }
  assert.deepEqual(got.sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(fw.schedule(gang('m7', 1, { migProfile: '1g.10gb' })).placement, undefined);
  assert.equal(fw.schedule(gang('other', 1, { migProfile: '3g.40gb' })).placement, undefined);
  const whole = fw.schedule(gang('whole', 2, { gpus: 1 }));
  assert.equal(whole.placement, undefined, 'the MIG-partitioned device is not handed out whole');
});

test('warm weights win, and the placement says so', () => {
  const cache = cluster(1);
  const fw = createFramework(cache);
  cache.markResident('s2-b-n0', 3, 'llama-70b');
  const r = fw.schedule(gang('serve', 1, { gpus: 1, model: 'llama-70b' }));
  const m = r.placement!.members[0]!;
  assert.equal(m.node, 's2-b-n0');
  assert.equal(m.devices[0]!.index, 3);
  assert.match(m.reason ?? '', /weights of llama-70b already resident/);
});

test('accelerator class, capabilities and CPU are filtered; all-or-nothing on failure', () => {
  const cache = cluster(1, [node('l4-0', 's1-a', 4, { cls: 'l4', memoryGiB: 24 })]);
  const fw = createFramework(cache);
  const l4 = fw.schedule(gang('l4', 1, { gpus: 4, acceleratorClass: 'l4' }));
  assert.equal(l4.placement!.members[0]!.node, 'l4-0');
  const hopper = fw.schedule(gang('cap', 1, { gpus: 1, capabilities: [{ key: 'memory', operator: 'Gt', values: ['79Gi'] }] }));
  assert.notEqual(hopper.placement!.members[0]!.node, 'l4-0');
  const before = snapshot(cache);
  const hungry = fw.schedule(gang('hungry', 3, { gpus: 1, cpuMilli: 40_000 }, { requiredLevel: 'leaf' }));
  assert.equal(hungry.placement, undefined);
  assert.match(hungry.status.reason ?? '', /Insufficient cpu/);
  assert.equal(snapshot(cache), before, 'a failed gang leaves the cache exactly as it was');
});

test('release returns the cache to its exact starting state', () => {
  const cache = cluster();
  const start = snapshot(cache);
  const fw = createFramework(cache);
  const ids: string[] = [];
  const shapes: Partial<MemberRequest>[] = [{ gpus: 8 }, { gpus: 2 }, { gpuMilli: 300, vramBytes: 5 * GiB }, { gpus: 1 }];
  shapes.forEach((s, i) => {
    const g = gang(`g${i}`, 2, s);
    assert.ok(fw.schedule(g).placement);
    ids.push(g.id);
  });
  assert.notEqual(snapshot(cache), start);
  for (const id of ids) fw.release(id);
  assert.equal(snapshot(cache), start);
  for (const d of cache.domains.values()) assert.equal(d.freeWhole, d.gpus, `${d.name} is whole again`);
});

test('queue sort: priority first, then age', () => {
  const fw = createFramework(new ClusterCache());
  const sorted = fw.sort([gang('old-low', 1, {}, { createdAt: 1 }), gang('new-high', 1, {}, { priority: 10, createdAt: 5 }), gang('new-low', 1, {}, { createdAt: 3 })]);
  assert.deepEqual(sorted.map((g) => g.name), ['new-high', 'old-low', 'new-low']);
});
