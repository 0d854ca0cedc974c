// Property tests of the scheduler core (cluster cache + gang framework): random small fleets
// (a few leaves and nodes, 1–8 GPUs a node, NVLink islands, NUMA nodes, MIG-partitioned
// devices, reserved memory) and random streams of gangs (whole GPUs, shares of compute and
// VRAM, MIG profiles, accelerator classes, required topology levels) with random deletions.
// After every step:
//   - no device is over-allocated: compute shares sum to ≤ 1000, memory to ≤ the allocatable
//     memory, a whole device is held by one member alone, a MIG instance by at most one;
//   - the cache's counters (device, node, domain, per-leaf buckets) agree with what is held;
//   - a gang is placed whole or not at all, each member gets what it asked for, and a
//     required topology level is never violated;
// and deleting every gang returns the cache to its exact starting state.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { TopologyLevel } from '../src/api/schema.ts';
import { ClusterCache, deviceIsWholeFree, type DomainInput, type NodeInput } from '../src/scheduler/cache/cluster.ts';
import { createFramework } from '../src/scheduler/framework/profiles.ts';
import type { GangRequest, MemberRequest } from '../src/scheduler/framework/types.ts';

const GiB = 2 ** 30;
const CLASSES = ['h100', 'a100'] as const;
const MIG_LAYOUTS: Record<string, { profile: string; memoryGiB: number }[]> = {
  sevenSmall: Array.from({ length: 7 }, () => ({ profile: '1g.10gb', memoryGiB: 10 })),
  mixed: [
    { profile: '3g.40gb', memoryGiB: 40 },
    { profile: '2g.20gb', memoryGiB: 20 },
    { profile: '1g.10gb', memoryGiB: 10 },
    { profile: '1g.10gb', memoryGiB: 10 },
  ],
  halves: [
    { profile: '3g.40gb', memoryGiB: 40 },
    { profile: '3g.40gb', memoryGiB: 40 },
  ],
};

// ---- random fleets -------------------------------------------------------------------------

interface FleetSpec {
  spines: { leaves: { nodes: { gpus: number; cls: (typeof CLASSES)[number]; island: number; numa: number; mig: (string | null)[]; reservedMiB: number; cpu: number; memGiB: number }[] }[] }[];
}

const nodeArb = fc.integer({ min: 1, max: 8 }).chain((gpus) =>
  fc.record({
    gpus: fc.constant(gpus),
    cls: fc.constantFrom(...CLASSES),
    island: fc.constantFrom(1, 2, 4, 8),
    numa: fc.constantFrom(1, 2),
    mig: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...Object.keys(MIG_LAYOUTS)) }), { minLength: gpus, maxLength: gpus }),
    reservedMiB: fc.constantFrom(0, 512, 1024),
    cpu: fc.constantFrom(16, 64, 128),
    memGiB: fc.constantFrom(64, 256, 1024),
  }),
);

const fleetArb: fc.Arbitrary<FleetSpec> = fc.record({
  spines: fc.array(fc.record({ leaves: fc.array(fc.record({ nodes: fc.array(nodeArb, { minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 2 }),
});

function buildFleet(spec: FleetSpec): ClusterCache {
  const cache = new ClusterCache();
  const domains: DomainInput[] = [{ name: 'fabric', level: 'fabric' }];
  const nodes: NodeInput[] = [];
  spec.spines.forEach((spine, s) => {
    domains.push({ name: `spine-${s}`, level: 'spine', parent: 'fabric' });
    spine.leaves.forEach((leaf, l) => {
      const leafName = `leaf-${s}-${l}`;
      domains.push({ name: leafName, level: 'leaf', parent: `spine-${s}` });
      leaf.nodes.forEach((n, k) => {
        const name = `node-${s}-${l}-${k}`;
        nodes.push({
          name,
          leaf: leafName,
          cpuMilli: n.cpu * 1000,
          memoryBytes: n.memGiB * GiB,
          devices: Array.from({ length: n.gpus }, (_, i) => {
            const layout = n.mig[i] ? MIG_LAYOUTS[n.mig[i]!]! : undefined;
            return {
              index: i,
              uuid: `${name}-gpu${i}`,
              className: n.cls,
              attrs: { productName: n.cls, memory: String(80 * GiB) },
              memoryBytes: 80 * GiB,
              reservedBytes: n.reservedMiB * 2 ** 20,
              numa: Math.floor((i * n.numa) / n.gpus),
              island: Math.floor(i / n.island),
              ...(layout ? { mig: layout.map((m, j) => ({ profile: m.profile, instance: j, uuid: `MIG-${name}-${i}-${j}`, memoryBytes: m.memoryGiB * GiB })) } : {}),
            };
          }),
        });
      });
    });
  });
  for (const d of domains) cache.setDomain(d);
  for (const n of nodes) cache.upsertNode(n);
  return cache;
}

// ---- random gangs --------------------------------------------------------------------------

type MemberKind =
  | { kind: 'whole'; gpus: number; vramGiB: number }
  | { kind: 'share'; milli: number; vramGiB: number }
  | { kind: 'mig'; profile: string }
  | { kind: 'cpu' };

const memberArb: fc.Arbitrary<{ what: MemberKind; cls: string | null; cpu: number; memGiB: number; replicas: number }> = fc.record({
  what: fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('whole' as const), gpus: fc.constantFrom(1, 1, 2, 2, 4, 8), vramGiB: fc.constantFrom(0, 0, 40, 80) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('share' as const), milli: fc.constantFrom(0, 100, 250, 500, 700, 999), vramGiB: fc.constantFrom(0, 5, 20, 40, 79) }).filter((m) => m.milli > 0 || m.vramGiB > 0) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('mig' as const), profile: fc.constantFrom('1g.10gb', '2g.20gb', '3g.40gb') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('cpu' as const) }) },
  ),
  cls: fc.option(fc.constantFrom(...CLASSES), { freq: 2 }),
  cpu: fc.constantFrom(0, 1, 8, 32),
  memGiB: fc.constantFrom(0, 1, 16, 128),
  replicas: fc.constantFrom(1, 1, 2, 3),
});

const gangArb = fc.record({
  roles: fc.array(memberArb, { minLength: 1, maxLength: 2 }),
  required: fc.option(fc.constantFrom<TopologyLevel>('nvlink-island', 'numa', 'node', 'leaf', 'spine'), { freq: 2 }),
  priority: fc.integer({ min: 0, max: 2 }),
});

type GangSpec = typeof gangArb extends fc.Arbitrary<infer T> ? T : never;

function gangOf(spec: GangSpec, seq: number): GangRequest {
  const members: MemberRequest[] = [];
  spec.roles.forEach((role, r) => {
    for (let i = 0; i < role.replicas; i++) {
      const w = role.what;
      members.push({
        id: `role${r}-${i}`,
        role: `role${r}`,
        index: members.length,
        gpus: w.kind === 'whole' ? w.gpus : 0,
        gpuMilli: w.kind === 'share' ? w.milli : 0,
        vramBytes: w.kind === 'whole' || w.kind === 'share' ? w.vramGiB * GiB : 0,
        ...(w.kind === 'mig' ? { migProfile: w.profile } : {}),
        ...(role.cls && w.kind !== 'cpu' ? { acceleratorClass: role.cls } : {}),
        cpuMilli: role.cpu * 1000,
        memoryBytes: role.memGiB * GiB,
      });
    }
  });
  return {
    id: `test/g${seq}`,
    namespace: 'test',
    name: `g${seq}`,
    queue: 'default',
    priority: spec.priority,
    createdAt: seq,
    members,
    minMember: members.length,
    ...(spec.required ? { requiredLevel: spec.required } : {}),
  };
}

type Op = { op: 'add'; gang: GangSpec } | { op: 'delete'; pick: number };
const opsArb: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: gangArb.map((gang) => ({ op: 'add' as const, gang })) },
    { weight: 2, arbitrary: fc.nat({ max: 1000 }).map((pick) => ({ op: 'delete' as const, pick })) },
  ),
  { minLength: 1, maxLength: 30 },
);

// ---- invariants ----------------------------------------------------------------------------

/** Every free counter of the cache, for exact comparison. */
function snapshot(cache: ClusterCache): unknown {
  const nodes = [...cache.nodes.values()].map((n) => ({
    name: n.name,
    cpuFree: n.cpuFree,
    memoryFree: n.memoryFree,
    freeWhole: n.freeWhole,
    devices: n.devices.map((d) => ({ index: d.index, milliFree: d.milliFree, memoryFree: d.memoryFree, mig: d.mig?.map((m) => [m.instance, m.usedBy ?? null]) ?? null })),
  }));
  const domains = [...cache.domains.values()].map((d) => ({ name: d.name, freeWhole: d.freeWhole, gpus: d.gpus, nodes: d.nodes, byClass: [...d.freeWholeByClass.entries()].sort() }));
  const buckets = cache.domainsAt('leaf').map((leaf) => Array.from({ length: 9 }, (_, k) => [...cache.nodesByFreeWhole(leaf.name, k)].map((n) => n.name).sort()));
  return { nodes, domains, buckets, gangs: cache.gangIds().sort() };
}

function checkCache(cache: ClusterCache, gangs: Map<string, GangRequest>): void {
  // What every device holds, from the gangs' holdings.
  const held = new Map<string, { milli: number; memory: number; whole: number; grants: number; mig: Map<number, number> }>();
  const nodeUse = new Map<string, { cpu: number; memory: number }>();
  for (const id of cache.gangIds()) {
    assert.ok(gangs.has(id), `the cache holds ${id}, which is not placed`);
    for (const p of cache.holding(id)) {
      const nu = nodeUse.get(p.node) ?? { cpu: 0, memory: 0 };
      nu.cpu += p.cpuMilli;
      nu.memory += p.memoryBytes;
      nodeUse.set(p.node, nu);
      const node = cache.nodes.get(p.node)!;
      for (const g of p.devices) {
        const key = `${p.node}/${g.index}`;
        const h = held.get(key) ?? { milli: 0, memory: 0, whole: 0, grants: 0, mig: new Map() };
        const dev = node.devices.find((d) => d.index === g.index)!;
        assert.ok(dev, `${key}: no such device`);
        h.grants++;
        if (g.migInstance !== undefined) {
          assert.ok(dev.mig, `${key}: a MIG grant on a device without MIG`);
          const inst = dev.mig.find((m) => m.instance === g.migInstance)!;
          assert.equal(inst.profile, g.migProfile, `${key}: MIG profile`);
          h.mig.set(g.migInstance, (h.mig.get(g.migInstance) ?? 0) + 1);
        } else {
          assert.ok(!dev.mig, `${key}: a share or whole grant on a MIG-partitioned device`);
          h.milli += g.milli;
          h.memory += g.memoryBytes;
          if (g.whole) h.whole++;
        }
        held.set(key, h);
      }
    }
  }
  for (const node of cache.nodes.values()) {
    const nu = nodeUse.get(node.name) ?? { cpu: 0, memory: 0 };
    assert.equal(node.cpuFree, node.cpuMilli - nu.cpu, `${node.name}: cpuFree`);
    assert.equal(node.memoryFree, node.memoryBytes - nu.memory, `${node.name}: memoryFree`);
    assert.ok(node.cpuFree >= 0 && node.memoryFree >= 0, `${node.name}: CPU or memory over-allocated`);
    for (const d of node.devices) {
      const key = `${node.name}/${d.index}`;
      const h = held.get(key) ?? { milli: 0, memory: 0, whole: 0, grants: 0, mig: new Map<number, number>() };
      assert.ok(h.milli <= 1000, `${key}: ${h.milli} milli of compute given`);
      assert.ok(h.memory <= d.memoryBytes, `${key}: ${h.memory} bytes given of ${d.memoryBytes} allocatable`);
      assert.ok(h.whole === 0 || h.grants === 1, `${key}: a whole device shared with ${h.grants - 1} other grant(s)`);
      for (const [inst, n] of h.mig) assert.equal(n, 1, `${key}: MIG instance ${inst} given ${n} times`);
      assert.equal(d.milliFree, 1000 - h.milli, `${key}: milliFree`);
      assert.equal(d.memoryFree, d.memoryBytes - h.memory, `${key}: memoryFree`);
      for (const m of d.mig ?? []) assert.equal(Boolean(m.usedBy), h.mig.has(m.instance), `${key}: MIG instance ${m.instance} usedBy`);
    }
    assert.equal(node.freeWhole, node.devices.filter(deviceIsWholeFree).length, `${node.name}: freeWhole`);
  }
  // Domain aggregates and buckets.
  for (const d of cache.domains.values()) {
    const under = [...cache.nodes.values()].filter((n) => n.path.includes(d.name));
    assert.equal(d.freeWhole, under.reduce((s, n) => s + n.freeWhole, 0), `${d.name}: freeWhole`);
    for (const cls of CLASSES) {
      const free = under.reduce((s, n) => s + n.devices.filter((x) => x.className === cls && deviceIsWholeFree(x)).length, 0);
      assert.equal(d.freeWholeByClass.get(cls) ?? 0, free, `${d.name}: free ${cls}`);
    }
  }
  for (const leaf of cache.domainsAt('leaf')) {
    for (let k = 0; k <= 8; k++) {
      const got = [...cache.nodesByFreeWhole(leaf.name, k)].map((n) => n.name).sort();
      const want = [...cache.nodes.values()].filter((n) => n.leaf === leaf.name && n.freeWhole >= k).map((n) => n.name).sort();
      assert.deepEqual(got, want, `${leaf.name}: nodes with ≥ ${k} free GPUs`);
    }
  }
}

function checkPlacement(cache: ClusterCache, gang: GangRequest): void {
  const holding = cache.holding(gang.id);
  assert.equal(holding.length, gang.members.length, `${gang.id}: all members placed`);
  assert.deepEqual(holding.map((p) => p.member.id).sort(), gang.members.map((m) => m.id).sort());
  for (const p of holding) {
    const m = p.member;
    const node = cache.nodes.get(p.node)!;
    const devs = p.devices.map((g) => node.devices.find((d) => d.index === g.index)!);
    if (m.acceleratorClass) for (const d of devs) assert.equal(d.className, m.acceleratorClass, `${gang.id}/${m.id}: class`);
    if (m.migProfile) {
      assert.equal(p.devices.length, 1);
      assert.equal(p.devices[0]!.migProfile, m.migProfile);
    } else if (m.gpus > 0) {
      assert.equal(p.devices.length, m.gpus, `${gang.id}/${m.id}: whole GPUs`);
      assert.equal(new Set(p.devices.map((g) => g.index)).size, m.gpus);
      for (const [i, g] of p.devices.entries()) {
        assert.ok(g.whole && g.milli === 1000 && g.memoryBytes === devs[i]!.memoryBytes);
        assert.ok(devs[i]!.memoryBytes >= m.vramBytes, `${gang.id}/${m.id}: device memory below the asked vram`);
      }
    } else if (m.gpuMilli > 0 || m.vramBytes > 0) {
      assert.equal(p.devices.length, 1);
      assert.equal(p.devices[0]!.milli, m.gpuMilli);
      assert.equal(p.devices[0]!.memoryBytes, m.vramBytes);
    } else {
      assert.equal(p.devices.length, 0);
    }
  }
  const required = gang.requiredLevel;
  if (!required) return;
  const nodes = new Set(holding.map((p) => p.node));
  const [first] = [...nodes];
  const firstNode = cache.nodes.get(first!)!;
  switch (required) {
    case 'nvlink-island':
    case 'numa': {
      assert.equal(nodes.size, 1, `${gang.id}: required ${required} but spans ${nodes.size} nodes`);
      const groups = new Set(holding.flatMap((p) => p.devices.map((g) => {
        const d = firstNode.devices.find((x) => x.index === g.index)!;
        return required === 'numa' ? d.numa : d.island;
      })));
      assert.ok(groups.size <= 1, `${gang.id}: required ${required} but spans ${groups.size}`);
      break;
    }
    case 'node':
      assert.equal(nodes.size, 1, `${gang.id}: required node but spans ${nodes.size} nodes`);
      break;
    case 'leaf':
      assert.equal(new Set([...nodes].map((n) => cache.nodes.get(n)!.leaf)).size, 1, `${gang.id}: required leaf`);
      break;
    case 'spine':
      assert.equal(new Set([...nodes].map((n) => cache.nodes.get(n)!.path[1])).size, 1, `${gang.id}: required spine`);
      break;
    default:
      break;
  }
}

function runStream(profile: string, fleet: FleetSpec, ops: Op[]): void {
  const cache = buildFleet(fleet);
  const framework = createFramework(cache, profile);
  const start = snapshot(cache);
  checkCache(cache, new Map());
  const placed = new Map<string, GangRequest>();
  let seq = 0;
  for (const op of ops) {
    if (op.op === 'add') {
      const gang = gangOf(op.gang, seq++);
      const before = snapshot(cache);
      const result = framework.schedule(gang);
      if (result.placement) {
        assert.equal(result.placement.members.length, gang.members.length, `${gang.id}: a partial placement`);
        placed.set(gang.id, gang);
        checkPlacement(cache, gang);
      } else {
        assert.ok(result.status.reason, `${gang.id}: a failure without a reason`);
        assert.equal(cache.holding(gang.id).length, 0, `${gang.id}: failed but holds capacity`);
        assert.deepEqual(snapshot(cache), before, `${gang.id}: a failed attempt changed the cache`);
      }
    } else if (placed.size) {
      const ids = [...placed.keys()];
      const id = ids[op.pick % ids.length]!;
      framework.release(id);
      placed.delete(id);
      assert.equal(cache.holding(id).length, 0);
    }
    checkCache(cache, placed);
  }
  for (const id of placed.keys()) framework.release(id);
  assert.deepEqual(snapshot(cache), start, 'deleting every gang returns the cache to its starting state');
}

describe('scheduler properties', () => {
  for (const profile of ['k8s4ai', 'spread']) {
    it(`${profile}: never over-allocates, places gangs whole, honours required levels, and frees exactly`, () => {
      fc.assert(
        fc.property(fleetArb, opsArb, (fleet, ops) => runStream(profile, fleet, ops)),
        { numRuns: 80 },
      );
    });
  }

  it('a gang that fits only as a whole is placed whole; one member too many fails and holds nothing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 8 }), (nodes, gpus) => {
        const fleet: FleetSpec = {
          spines: [{ leaves: [{ nodes: Array.from({ length: nodes }, () => ({ gpus, cls: 'h100' as const, island: 8, numa: 1, mig: Array(gpus).fill(null), reservedMiB: 0, cpu: 128, memGiB: 1024 })) }] }],
        };
        const cache = buildFleet(fleet);
        const framework = createFramework(cache);
        const member = { what: { kind: 'whole' as const, gpus, vramGiB: 0 }, cls: null, cpu: 1, memGiB: 1, replicas: nodes };
        const fits = framework.schedule(gangOf({ roles: [member], required: null, priority: 0 }, 0));
        assert.ok(fits.placement, 'a gang of one member per node fits');
        framework.release('test/g0');
        const start = snapshot(cache);
        const tooBig = framework.schedule(gangOf({ roles: [{ ...member, replicas: nodes + 1 }], required: null, priority: 0 }, 1));
        assert.equal(tooBig.placement, undefined);
        assert.deepEqual(snapshot(cache), start);
      }),
      { numRuns: 30 },
    );
  });
});
