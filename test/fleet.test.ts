import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  loadFleet, parseFleet, expandFleet, summarizeFleet, gpuUuid, FleetError, FLEET_DEMO_PATH, FLEET_SMALL_PATH,
  GPU_UUID_PATTERN, type Fleet,
} from '../src/fleet/index.ts';
import { validatorFor } from './helpers/validate.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { NodeStatus, NodeSpec } from '../src/api/kinds/node.ts';
import type { TopologyDomainSpec } from '../src/api/kinds/topologydomain.ts';
import type { QueueSpec } from '../src/api/kinds/queue.ts';

const byKind = (objs: KubeObject[], kind: string) => objs.filter((o) => o.kind === kind);
const nodeStatus = (o: KubeObject) => o.status as NodeStatus;
const domainSpec = (o: KubeObject) => o.spec as TopologyDomainSpec;

describe('demo fleet', () => {
  const fleet = loadFleet(FLEET_DEMO_PATH);
  const objects = expandFleet(fleet);

  it('FLEET_DEMO_PATH points at the repository\'s fleet/demo.yaml', () => {
    assert.match(FLEET_DEMO_PATH, /[/\\]fleet[/\\]demo\.yaml$/);
    assert.ok(existsSync(FLEET_DEMO_PATH));
    assert.ok(existsSync(FLEET_SMALL_PATH));
  });

  it('expands to the documented counts: 40 nodes, 304 GPUs, 10 leaves', () => {
    const summary = summarizeFleet(objects);
    assert.deepEqual(summary, {
      nodes: 32 + 4 + 4,
      gpus: 256 + 32 + 16,
      byClass: { 'h100-sxm-80gb': 256, 'a100-sxm4-40gb': 32, l4: 16 },
      leaves: 10,
    });
    const nodes = byKind(objects, 'Node');
    assert.equal(nodes.filter((n) => n.metadata.name.startsWith('h100-')).length, 32);
    assert.equal(nodes.filter((n) => n.metadata.name.startsWith('a100-')).length, 4);
    assert.equal(nodes.filter((n) => n.metadata.name.startsWith('l4-')).length, 4);
    assert.equal(byKind(objects, 'AcceleratorClass').length, 3);
    assert.equal(byKind(objects, 'Queue').length, 1);
    const levels = (level: string) => byKind(objects, 'TopologyDomain').filter((d) => domainSpec(d).level === level).length;
    assert.equal(levels('fabric'), 1);
    assert.equal(levels('spine'), 2);
    assert.equal(levels('leaf'), 10);
    assert.equal(levels('node'), 40);
    assert.equal(levels('numa'), 80);
    assert.equal(levels('nvlink-island'), 36, 'one island per SXM node, none for the PCIe L4 nodes');
  });

  it('names nodes by position and puts the extra leaves under the spines', () => {
    const names = new Set(byKind(objects, 'Node').map((n) => n.metadata.name));
    for (const n of ['h100-s1-l1-n1', 'h100-s1-l4-n4', 'h100-s2-l4-n4', 'a100-s1-l5-n1', 'a100-s1-l5-n4', 'l4-s2-l5-n1', 'l4-s2-l5-n4']) {
      assert.ok(names.has(n), `missing node ${n}`);
    }
    const a100 = byKind(objects, 'Node').find((n) => n.metadata.name === 'a100-s1-l5-n1')!;
    assert.equal((a100.spec as NodeSpec).topologyDomain, 'leaf-s1-l5');
    assert.deepEqual(nodeStatus(a100).topologyPath, ['ib0', 'spine-s1', 'leaf-s1-l5']);
  });

  it('gives every object a valid, complete shape: validation finds nothing and changes nothing', () => {
    for (const obj of objects) {
      const before = structuredClone(obj);
      const { causes } = validatorFor(obj).validate(obj);
      assert.deepEqual(causes, [], `${obj.kind} ${obj.metadata.name}: ${JSON.stringify(causes)}`);
      assert.deepEqual(obj, before, `${obj.kind} ${obj.metadata.name} was missing defaults`);
    }
  });

  it('is deterministic: the same file gives the same objects', () => {
    const again = expandFleet(loadFleet(FLEET_DEMO_PATH));
    assert.deepEqual(again, expandFleet(fleet));
    assert.equal(JSON.stringify(again), JSON.stringify(expandFleet(fleet)));
  });

  it('orders objects by dependency: classes, domains (parents first), nodes, queues', () => {
    const rank: Record<string, number> = { AcceleratorClass: 0, TopologyDomain: 1, Node: 2, Queue: 3 };
    let last = 0;
    const seenDomains = new Set<string>();
    const nodeNames = new Set(byKind(objects, 'Node').map((n) => n.metadata.name));
    for (const obj of objects) {
      const r = rank[obj.kind];
      assert.ok(r !== undefined, `unexpected kind ${obj.kind}`);
      assert.ok(r >= last, `${obj.kind} ${obj.metadata.name} out of order`);
      last = r;
      if (obj.kind === 'TopologyDomain') {
        const spec = domainSpec(obj);
        if (spec.parent !== undefined) assert.ok(seenDomains.has(spec.parent), `${obj.metadata.name} before its parent ${spec.parent}`);
        if (spec.nodeName !== undefined) assert.ok(nodeNames.has(spec.nodeName), `${obj.metadata.name} names an unknown node`);
        seenDomains.add(obj.metadata.name);
      }
    }
  });

  it('has unique names per kind, and labels every object with the fleet', () => {
    const seen = new Set<string>();
    for (const obj of objects) {
      const key = `${obj.kind}/${obj.metadata.name}`;
      assert.ok(!seen.has(key), `duplicate ${key}`);
      seen.add(key);
      assert.equal(obj.metadata.labels?.['k8s4ai.io/fleet'], 'demo');
      assert.equal(obj.metadata.namespace, undefined, 'fleet objects are cluster-scoped');
    }
  });

  it('links every node up to the fabric, matching its topologyPath and labels', () => {
    const domains = new Map(byKind(objects, 'TopologyDomain').map((d) => [d.metadata.name, domainSpec(d)]));
    for (const node of byKind(objects, 'Node')) {
      const chain: string[] = [];
      let name: string | undefined = (node.spec as NodeSpec).topologyDomain;
      while (name !== undefined) {
        const d = domains.get(name);
        assert.ok(d, `${node.metadata.name}: unknown domain ${name}`);
        chain.unshift(name);
        assert.ok(chain.length <= 3, `${node.metadata.name}: parent chain too long`);
        name = d.parent;
      }
      assert.deepEqual(chain.map((n) => domains.get(n)!.level), ['fabric', 'spine', 'leaf']);
      assert.deepEqual(nodeStatus(node).topologyPath, chain);
      const labels = node.metadata.labels!;
      assert.equal(labels['k8s4ai.io/simulated'], 'true');
      assert.deepEqual([labels['k8s4ai.io/fabric'], labels['k8s4ai.io/spine'], labels['k8s4ai.io/leaf']], chain);
      assert.equal(labels['k8s4ai.io/accelerator'], nodeStatus(node).gpus![0]!.acceleratorClassName);
    }
  });

  it('reports each node as a simulated, ready machine with all GPUs free', () => {
    for (const node of byKind(objects, 'Node')) {
      const s = nodeStatus(node);
      assert.deepEqual(s.addresses?.[0], { type: 'InternalIP', address: '127.0.0.1' });
      assert.equal(s.nodeInfo?.simulated, true);
      assert.equal(s.freeGpus, s.gpus!.length);
      const ready = s.conditions?.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'True');
      assert.equal(ready?.reason, 'SimulatedNodeReady');
    }
  });

  it('lays out H100 GPUs: NUMA halves, one NVLink island of 8, real-looking UUIDs', () => {
    const node = byKind(objects, 'Node').find((n) => n.metadata.name === 'h100-s1-l1-n1')!;
    const gpus = nodeStatus(node).gpus!;
    assert.equal(gpus.length, 8);
    assert.deepEqual(gpus.map((g) => g.index), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(gpus.map((g) => g.numaNode), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual(gpus.map((g) => g.nvlinkIsland), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(gpus[2]!.nvlinkPeers, [0, 1, 3, 4, 5, 6, 7]);
    const g = gpus[0]!;
    assert.equal(g.productName, 'NVIDIA H100 80GB HBM3');
    assert.equal(g.architecture, 'hopper');
    assert.equal(g.memory, '80Gi');
    assert.equal(g.reservedMemory, '512Mi');
    assert.equal(g.computeCapability, '9.0');
    assert.equal(g.acceleratorClassName, 'h100-sxm-80gb');
    assert.equal(g.migEnabled, false);
    assert.deepEqual(g.attributes, { fp8: 'true', bf16: 'true', brand: 'Nvidia' });
    assert.match(g.uuid, GPU_UUID_PATTERN);
    assert.equal(g.uuid, gpuUuid('h100-s1-l1-n1', 0));

    const inNode = byKind(objects, 'TopologyDomain').filter((d) => domainSpec(d).nodeName === 'h100-s1-l1-n1');
    const byName = new Map(inNode.map((d) => [d.metadata.name, domainSpec(d)]));
    assert.deepEqual([...byName.keys()], ['h100-s1-l1-n1', 'h100-s1-l1-n1-numa0', 'h100-s1-l1-n1-numa1', 'h100-s1-l1-n1-nvl0']);
    assert.deepEqual(byName.get('h100-s1-l1-n1'), { level: 'node', parent: 'leaf-s1-l1', nodeName: 'h100-s1-l1-n1', devices: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.deepEqual(byName.get('h100-s1-l1-n1-numa1')?.devices, [4, 5, 6, 7]);
    assert.equal(byName.get('h100-s1-l1-n1-numa1')?.parent, 'h100-s1-l1-n1');
    const island = byName.get('h100-s1-l1-n1-nvl0')!;
    assert.equal(island.level, 'nvlink-island');
    assert.deepEqual(island.devices, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(island.interconnect, { type: 'nvswitch', bandwidth: '900G' });
  });

  it('lays out L4 GPUs on PCIe: no island, no peers; attributes follow the class', () => {
    const node = byKind(objects, 'Node').find((n) => n.metadata.name === 'l4-s2-l5-n1')!;
    const gpus = nodeStatus(node).gpus!;
    assert.equal(gpus.length, 4);
    assert.deepEqual(gpus.map((g) => g.numaNode), [0, 0, 1, 1]);
    for (const g of gpus) {
      assert.equal(g.nvlinkIsland, undefined);
      assert.deepEqual(g.nvlinkPeers, []);
      assert.equal(g.attributes?.fp8, 'true');
    }
    const islands = byKind(objects, 'TopologyDomain').filter((d) => domainSpec(d).nodeName === 'l4-s2-l5-n1' && domainSpec(d).level === 'nvlink-island');
    assert.equal(islands.length, 0);
    const a100 = nodeStatus(byKind(objects, 'Node').find((n) => n.metadata.name === 'a100-s1-l5-n1')!).gpus![0]!;
    assert.equal(a100.attributes?.fp8, 'false');
    assert.equal(a100.attributes?.bf16, 'true');
  });

  it('gives every GPU a distinct UUID', () => {
    const uuids = byKind(objects, 'Node').flatMap((n) => nodeStatus(n).gpus!.map((g) => g.uuid));
    assert.equal(uuids.length, 304);
    assert.equal(new Set(uuids).size, 304);
  });

  it('fills class and domain status with device counts', () => {
    const cls = byKind(objects, 'AcceleratorClass').map((c) => [c.metadata.name, (c.status as { devices: number }).devices]);
    assert.deepEqual(cls, [['h100-sxm-80gb', 256], ['a100-sxm4-40gb', 32], ['l4', 16]]);
    const spine = byKind(objects, 'TopologyDomain').find((d) => d.metadata.name === 'spine-s2')!;
    assert.deepEqual(spine.status, { nodes: 20, gpus: 144, freeGpus: 144 });
    const fabric = byKind(objects, 'TopologyDomain').find((d) => d.metadata.name === 'ib0')!;
    assert.deepEqual(fabric.status, { nodes: 40, gpus: 304, freeGpus: 304 });
  });

  it('declares the default queue with quotas for every class', () => {
    const [queue] = byKind(objects, 'Queue');
    assert.equal(queue!.metadata.name, 'default');
    assert.deepEqual((queue!.spec as QueueSpec).quotas?.map((q) => [q.acceleratorClassName, q.nominal]), [
      ['h100-sxm-80gb', 256], ['a100-sxm4-40gb', 32], ['l4', 16],
    ]);
  });

  it('can leave out the in-node domains', () => {
    const slim = expandFleet(fleet, { inNodeDomains: false });
    assert.equal(byKind(slim, 'TopologyDomain').length, 1 + 2 + 10);
    assert.equal(byKind(slim, 'Node').length, 40);
  });
});

describe('small fleet', () => {
  it('expands to 4 nodes and 32 GPUs with a generated default queue', () => {
    const objects = expandFleet(loadFleet(FLEET_SMALL_PATH));
    assert.deepEqual(summarizeFleet(objects), { nodes: 4, gpus: 32, byClass: { 'h100-sxm-80gb': 32 }, leaves: 2 });
    assert.deepEqual(byKind(objects, 'Node').map((n) => n.metadata.name), ['h100-s1-l1-n1', 'h100-s1-l1-n2', 'h100-s1-l2-n1', 'h100-s1-l2-n2']);
    const queues = byKind(objects, 'Queue');
    assert.deepEqual(queues.map((q) => [q.metadata.name, q.spec]), [['default', { weight: 1, quotas: [{ acceleratorClassName: 'h100-sxm-80gb', nominal: 32 }] }]]);
    for (const obj of objects) assert.deepEqual(validatorFor(obj).validate(obj).causes, [], `${obj.kind} ${obj.metadata.name}`);
  });
});

// ---------------------------------------------------------------------------------------
// Bad fleet files

const BASE = `apiVersion: k8s4ai.io/v1alpha1
kind: Fleet
metadata:
  name: t
acceleratorClasses:
  h100:
    productName: NVIDIA H100 80GB HBM3
    architecture: hopper
    memory: 80Gi
nodeTemplates:
  gpu8:
    acceleratorClass: h100
    gpus: 8
    nvlinkIslandSize: 8
    numaNodes: 2
    cpu: 64
    memory: 512Gi
fabric:
  name: f
  spines:
    - leaves:
        - { count: 2, nodes: 2, template: gpu8 }
queues:
  default:
    quotas:
      - { acceleratorClassName: h100, nominal: 32 }
`;

function fleetError(text: string, source = 'bad.yaml'): FleetError {
  try {
    parseFleet(text, source);
  } catch (err) {
    assert.ok(err instanceof FleetError, `expected a FleetError, got ${String(err)}`);
    return err;
  }
  assert.fail('the fleet was accepted');
}

function edit(from: string, to: string): string {
  assert.ok(BASE.includes(from), `BASE lacks ${from}`);
  return BASE.replace(from, to);
}

describe('bad fleet files', () => {
  it('the base of these cases is itself valid', () => {
    const f: Fleet = parseFleet(BASE, 'base.yaml');
    assert.equal(summarizeFleet(expandFleet(f)).gpus, 32);
  });

  const cases: { name: string; text: string; field: string; message: RegExp; line?: number }[] = [
    { name: 'a class referenced but not declared', text: edit('acceleratorClass: h100', 'acceleratorClass: h200'), field: 'nodeTemplates.gpu8.acceleratorClass', message: /"h200" is not declared in acceleratorClasses/, line: 12 },
    { name: 'a template referenced but not declared', text: edit('template: gpu8', 'template: gpu4'), field: 'fabric.spines[0].leaves[0].template', message: /"gpu4" is not declared in nodeTemplates/, line: 22 },
    { name: 'zero nodes in a leaf', text: edit('nodes: 2,', 'nodes: 0,'), field: 'fabric.spines[0].leaves[0].nodes', message: />= 1/, line: 22 },
    { name: 'a negative leaf count', text: edit('count: 2,', 'count: -1,'), field: 'fabric.spines[0].leaves[0].count', message: />= 1/ },
    { name: 'zero GPUs per node', text: edit('gpus: 8', 'gpus: 0'), field: 'nodeTemplates.gpu8.gpus', message: />= 1/, line: 13 },
    { name: 'a fractional GPU count', text: edit('gpus: 8', 'gpus: 2.5'), field: 'nodeTemplates.gpu8.gpus', message: /integer/ },
    { name: 'an island size that does not divide the GPUs', text: edit('nvlinkIslandSize: 8', 'nvlinkIslandSize: 3'), field: 'nodeTemplates.gpu8.nvlinkIslandSize', message: /divide/, line: 14 },
    { name: 'an island larger than the node', text: edit('nvlinkIslandSize: 8', 'nvlinkIslandSize: 16'), field: 'nodeTemplates.gpu8.nvlinkIslandSize', message: /exceed/ },
    { name: 'zero host memory', text: edit('memory: 512Gi', 'memory: 0'), field: 'nodeTemplates.gpu8.memory', message: /more than 0/ },
    { name: 'a malformed quantity', text: edit('memory: 80Gi', 'memory: 80 GB'), field: 'acceleratorClasses.h100.memory', message: /whitespace/, line: 9 },
    { name: 'an unknown field', text: edit('    gpus: 8\n', '    gpus: 8\n    gpuz: 8\n'), field: 'nodeTemplates.gpu8.gpuz', message: /unknown field "gpuz"/ },
    { name: 'a missing required field', text: edit('    productName: NVIDIA H100 80GB HBM3\n', ''), field: 'acceleratorClasses.h100.productName', message: /Required value/ },
    { name: 'a missing fleet name', text: edit('metadata:\n  name: t\n', 'metadata: {}\n'), field: 'metadata.name', message: /Required value/ },
    { name: 'a template name that is not a DNS label', text: edit('  gpu8:\n', '  GPU_8:\n').replace('template: gpu8', 'template: GPU_8'), field: 'nodeTemplates.GPU_8', message: /DNS label/ },
    { name: 'a quota for an undeclared class', text: edit('{ acceleratorClassName: h100, nominal: 32 }', '{ acceleratorClassName: a100, nominal: 32 }'), field: 'queues.default.quotas[0].acceleratorClassName', message: /"a100" is not declared/, line: 26 },
    { name: 'an undeclared parent queue', text: `${BASE}    parent: root\n`, field: 'queues.default.parent', message: /"root" is not declared in queues/ },
    { name: 'a wrong kind', text: edit('kind: Fleet', 'kind: GangSchedulingGroup'), field: 'kind', message: /must be "Fleet"/, line: 2 },
    { name: 'a wrong apiVersion', text: edit('apiVersion: k8s4ai.io/v1alpha1', 'apiVersion: v1'), field: 'apiVersion', message: /k8s4ai\.io\/v1alpha1/ },
    { name: 'an absurd node count', text: edit('nodes: 2,', 'nodes: 1000000,'), field: 'fabric.spines', message: /2000000 nodes; a fleet holds at most 1000000/ },
    { name: 'a fabric name that takes a generated spine name', text: edit('  name: f\n', '  name: spine-s1\n'), field: 'fabric.name', message: /generated/ },
  ];

  for (const c of cases) {
    it(`names the file and field for ${c.name}`, () => {
      const err = fleetError(c.text);
      const issue = err.issues.find((i) => i.field === c.field);
      assert.ok(issue, `no issue at ${c.field}; got ${JSON.stringify(err.issues)}`);
      assert.match(issue.message, c.message);
      if (c.line !== undefined) assert.equal(issue.line, c.line);
      assert.equal(err.source, 'bad.yaml');
      assert.ok(err.message.startsWith('bad.yaml'), err.message);
      assert.ok(err.message.includes(c.field), err.message);
    });
  }

  it('refuses duplicate names (YAML keys) with the line', () => {
    const text = edit('nodeTemplates:\n', '  h100:\n    productName: X\n    architecture: y\n    memory: 1Gi\nnodeTemplates:\n');
    const err = fleetError(text);
    assert.match(err.message, /^bad\.yaml:10: invalid YAML: .*unique/);
  });

  it('refuses a cycle of parent queues', () => {
    const text = `${BASE}    parent: other\n  other:\n    parent: default\n`;
    const err = fleetError(text);
    assert.ok(err.issues.some((i) => /cycle/.test(i.message) && i.field.startsWith('queues.')), err.message);
  });

  it('reports every problem at once, each with its line', () => {
    const text = edit('gpus: 8', 'gpus: 0').replace('template: gpu8', 'template: nope').replace('memory: 512Gi', 'memory: lots');
    const err = fleetError(text, 'fleets/two.yaml');
    // Schema problems first; the cross-reference pass runs once the shape is right.
    assert.deepEqual(err.issues.map((i) => i.field).sort(), ['nodeTemplates.gpu8.gpus', 'nodeTemplates.gpu8.memory']);
    assert.match(err.message, /^fleets\/two\.yaml: 2 problems/);
    assert.match(err.message, /line 13: nodeTemplates\.gpu8\.gpus/);
    const second = fleetError(BASE.replace('template: gpu8', 'template: nope').replace('acceleratorClass: h100', 'acceleratorClass: nope'));
    assert.equal(second.issues.length, 2);
  });

  it('refuses YAML that does not parse, an empty file and several documents', () => {
    assert.match(fleetError('a: [1, 2\n').message, /^bad\.yaml:\d+: invalid YAML/);
    assert.match(fleetError('').message, /empty/);
    assert.match(fleetError(`${BASE}---\n${BASE}`).message, /one YAML document/);
    assert.match(fleetError('- 1\n- 2\n').message, /must be a mapping/);
  });

  it('loadFleet names a file it cannot read', () => {
    const missing = join(tmpdir(), 'k8s4ai-no-such-fleet.yaml');
    assert.throws(() => loadFleet(missing), (err: unknown) => err instanceof FleetError && err.message.startsWith(missing) && /cannot read/.test(err.message));
  });
});

describe('large fleets', () => {
  it('expands a 10,240-node fleet written in the same format', () => {
    const text = BASE.replace('    - leaves:\n        - { count: 2, nodes: 2, template: gpu8 }', '    - count: 40\n      leaves:\n        - { count: 8, nodes: 32, template: gpu8 }');
    const objects = expandFleet(parseFleet(text, 'big.yaml'));
    const summary = summarizeFleet(objects);
    assert.equal(summary.nodes, 10_240);
    assert.equal(summary.gpus, 81_920);
    assert.equal(summary.leaves, 320);
    const last = objects.filter((o) => o.kind === 'Node').at(-1)!;
    assert.equal(last.metadata.name, 'gpu8-s40-l8-n32');
    const uuids = new Set<string>();
    for (const o of objects) if (o.kind === 'Node') for (const g of nodeStatus(o).gpus!) uuids.add(g.uuid);
    assert.equal(uuids.size, 81_920);
  });
});
