import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import {
  discover, parseQueryGpu, parseTopoMatrix, nvlinkIslands, parseGpuList, parseMigGpuInstances, joinMigDevices,
  parseCudaVersion, architectureOf, queryGpuArgs, runCommand, probeMachine, parseOsRelease, firstInternalIPv4,
  diskCapacity, numaNodes, sysfsPciAddress, pciNumaNode, matchClass, NvidiaSmiParseError, DiscoveryError,
  QUERY_GPU_FIELDS, QUERY_GPU_FIELDS_LEGACY, type CommandRunner, type MachineInfo, type Discovery,
} from '../src/agent/discovery/index.ts';
import { loadFleet, FLEET_DEMO_PATH, GPU_UUID_PATTERN, LABEL_ACCELERATOR } from '../src/fleet/index.ts';
import { assertValid } from './helpers/validate.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { NodeStatus, NodeSpec } from '../src/api/kinds/node.ts';
import type { TopologyDomainSpec } from '../src/api/kinds/topologydomain.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'nvidia-smi');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

const nodeStatus = (d: Discovery) => d.node.status as NodeStatus;
const domainSpec = (o: KubeObject) => o.spec as TopologyDomainSpec;
const domainNames = (d: Discovery) => d.domains.map((o) => o.metadata.name);

/** A fixed machine, so discovery's output does not depend on the one running the tests. */
const MACHINE: MachineInfo = {
  hostname: 'gpu-host-01', cpus: 224, memoryBytes: 2 * 1024 ** 4, diskBytes: 30e12, internalIP: '10.1.2.3',
  operatingSystem: 'Ubuntu 22.04.4 LTS', numaNodes: [0, 1],
};

/** nvidia-smi as recorded on one machine: arguments → output; anything else is "not available". */
function recorded(outputs: { query?: string; legacyQuery?: string; topo?: string; list?: string; lgi?: string; banner?: string }): CommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  const run = async (cmd: string, args: string[]): Promise<string | undefined> => {
    assert.equal(cmd, 'nvidia-smi');
    calls.push(args);
    const key = args.join(' ');
    if (key === queryGpuArgs(QUERY_GPU_FIELDS).join(' ')) {
      if (outputs.query === undefined) throw new Error('nvidia-smi: exit 2: Field "compute_cap" is not a valid field to query.');
      return outputs.query;
    }
    if (key === queryGpuArgs(QUERY_GPU_FIELDS_LEGACY).join(' ')) return outputs.legacyQuery;
    if (key === 'topo -m') return outputs.topo;
    if (key === '-L') return outputs.list;
    if (key === 'mig -lgi') return outputs.lgi;
    if (key === '') return outputs.banner;
    throw new Error(`unexpected nvidia-smi ${key}`);
  };
  return Object.assign(run, { calls });
}

const demoClasses = loadFleet(FLEET_DEMO_PATH).acceleratorClasses;

// ---------------------------------------------------------------------------------------

describe('nvidia-smi --query-gpu', () => {
  it('reads the DGX H100 rows: indices, UUIDs, memory, compute capability, MIG mode, bus ids, driver', () => {
    const gpus = parseQueryGpu(fixture('dgx-h100-query-gpu.csv'));
    assert.deepEqual(gpus.map((g) => g.index), [0, 1, 2, 3, 4, 5, 6, 7]);
    for (const g of gpus) assert.match(g.uuid, GPU_UUID_PATTERN);
    assert.equal(new Set(gpus.map((g) => g.uuid)).size, 8);
    assert.deepEqual(gpus[0], {
      index: 0, uuid: 'GPU-89b71fa7-5b75-532d-a6b2-aae53f0a0fff', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559,
      computeCapability: '9.0', migEnabled: false, pciBusId: '00000000:18:00.0', driverVersion: '535.129.03',
    });
    assert.equal(gpus[7]!.pciBusId, '00000000:DB:00.0');
  });

  it('reads the DGX A100 and L40S rows; [N/A] MIG mode leaves migEnabled out', () => {
    const a100 = parseQueryGpu(fixture('dgx-a100-query-gpu.csv'));
    assert.equal(a100.length, 8);
    assert.ok(a100.every((g) => g.name === 'NVIDIA A100-SXM4-80GB' && g.memoryMiB === 81920 && g.computeCapability === '8.0' && g.migEnabled === false));
    const l40s = parseQueryGpu(fixture('pcie-l40s-query-gpu.csv'));
    assert.ok(l40s.every((g) => g.name === 'NVIDIA L40S' && g.memoryMiB === 46068 && g.computeCapability === '8.9' && g.migEnabled === undefined));
  });

  it('reads a pre-R510 query without compute_cap by its own field list', () => {
    const a40 = parseQueryGpu(fixture('pcie-a40-nvbridge-query-gpu.csv'), QUERY_GPU_FIELDS_LEGACY);
    assert.equal(a40.length, 8);
    assert.equal(a40[3]!.computeCapability, undefined);
    assert.equal(a40[3]!.driverVersion, '470.182.03');
    // Read with the wrong field list, the row is one value short, and the error says so.
    assert.throws(() => parseQueryGpu(fixture('pcie-a40-nvbridge-query-gpu.csv')), (err: Error) =>
      err instanceof NvidiaSmiParseError && /line 1 has 7 values, expected 8/.test(err.message));
  });

  it('leaves out unavailable optional values, keeps a comma in the product name, skips a header', () => {
    const text = [
      'index, uuid, name, memory.total [MiB], compute_cap, mig.mode.current, pci.bus_id, driver_version',
      '1, GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, Tesla K80, Rev 2, 11441, [Not Supported], [N/A], [Unknown Error], 470.57.02',
      '0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, 23028, 8.6, [N/A], 00000000:17:00.0, [N/A]',
    ].join('\n');
    const gpus = parseQueryGpu(text);
    assert.deepEqual(gpus, [
      { index: 0, uuid: 'GPU-11111111-2222-3333-4444-555555555555', name: 'NVIDIA A10', memoryMiB: 23028, computeCapability: '8.6', pciBusId: '00000000:17:00.0' },
      { index: 1, uuid: 'GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', name: 'Tesla K80, Rev 2', memoryMiB: 11441, driverVersion: '470.57.02' },
    ]);
    assert.deepEqual(parseQueryGpu('No devices were found\n'), []);
  });

  it('refuses rows it cannot describe a GPU from, naming the line and the field', () => {
    const bad = (text: string, pattern: RegExp) =>
      assert.throws(() => parseQueryGpu(text), (err: Error) => err instanceof NvidiaSmiParseError && pattern.test(err.message), pattern.source);
    bad('0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, [N/A], 8.6, [N/A], 00000000:17:00.0, 550.54.15', /line 1: memory\.total is unavailable/);
    bad('0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, 23028 MiB, 8.6, [N/A], 00000000:17:00.0, 550.54.15', /without nounits/);
    bad('x, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, 23028, 8.6, [N/A], 00000000:17:00.0, 550.54.15', /index "x" is not a whole number/);
    bad('0, 1111, NVIDIA A10, 23028, 8.6, [N/A], 00000000:17:00.0, 550.54.15', /uuid "1111" is not a GPU UUID/);
    bad('Field "compute_cap" is not a valid field to query.', /the driver refused a field/);
    const row = '0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, 23028, 8.6, [N/A], 00000000:17:00.0, 550.54.15';
    bad(`${row}\n${row}`, /GPU index 0 appears twice/);
  });
});

describe('nvidia-smi topo -m', () => {
  it('DGX H100: NUMA 0/1 by socket, NV18 all-to-all, one island of 8, NIC legend', () => {
    const m = parseTopoMatrix(fixture('dgx-h100-topo.txt'));
    assert.equal(m.columns.length, 20);
    assert.deepEqual(m.gpus.map((g) => g.numaNode), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual(m.gpus[5]!.nvlinkPeers, [0, 1, 2, 3, 4, 6, 7]);
    assert.equal(m.gpus[5]!.nvlinks[0], 18);
    assert.equal(m.gpus[0]!.cpuAffinity, '0-55,112-167');
    assert.equal(m.gpus[0]!.gpuNumaId, undefined, 'N/A');
    assert.equal(m.gpus[0]!.links.NIC0, 'PIX');
    assert.equal(m.gpus[4]!.links.NIC0, 'SYS');
    assert.equal(m.nics.length, 12);
    assert.deepEqual(m.nics[11], { name: 'NIC11', device: 'mlx5_11' });
    assert.deepEqual(nvlinkIslands(m), [{ devices: [0, 1, 2, 3, 4, 5, 6, 7], allToAll: true, links: 18 }]);
  });

  it('DGX A100: NUMA per GPU pair (NPS4, nodes 3, 1, 7, 5), NV12 all-to-all, one island', () => {
    const m = parseTopoMatrix(fixture('dgx-a100-topo.txt'));
    assert.deepEqual(m.gpus.map((g) => g.numaNode), [3, 3, 1, 1, 7, 7, 5, 5]);
    assert.deepEqual(m.gpus[0]!.nvlinkPeers, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(nvlinkIslands(m), [{ devices: [0, 1, 2, 3, 4, 5, 6, 7], allToAll: true, links: 12 }]);
    assert.equal(m.gpus[6]!.links.NIC8, 'PXB');
  });

  it('PCIe L40S: no NVLink, so no peers and no islands; PXB/NODE/SYS kept as links', () => {
    const m = parseTopoMatrix(fixture('pcie-l40s-topo.txt'));
    assert.deepEqual(m.gpus.map((g) => g.numaNode), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.ok(m.gpus.every((g) => g.nvlinkPeers.length === 0));
    assert.deepEqual(nvlinkIslands(m), []);
    assert.deepEqual([m.gpus[0]!.links.GPU1, m.gpus[0]!.links.GPU2, m.gpus[0]!.links.GPU4], ['PXB', 'NODE', 'SYS']);
  });

  it('PCIe A40 with NVLink bridges (older layout: device-named NICs, no GPU NUMA ID, no NIC legend): four islands of two', () => {
    const m = parseTopoMatrix(fixture('pcie-a40-nvbridge-topo.txt'));
    assert.deepEqual(m.columns.slice(8), ['mlx5_0', 'mlx5_1']);
    assert.deepEqual(m.nics, [{ name: 'mlx5_0' }, { name: 'mlx5_1' }]);
    assert.deepEqual(m.gpus.map((g) => g.numaNode), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert.deepEqual(m.gpus.map((g) => g.nvlinkPeers), [[1], [0], [3], [2], [5], [4], [7], [6]]);
    assert.deepEqual(nvlinkIslands(m).map((i) => i.devices), [[0, 1], [2, 3], [4, 5], [6, 7]]);
    assert.ok(nvlinkIslands(m).every((i) => i.allToAll && i.links === 4));
  });

  it('reads the matrix pasted with spaces for tabs (as in issues and docs) and with an ANSI-underlined header', () => {
    const tabs = fixture('dgx-h100-topo.txt');
    const spaces = tabs.replace(/\t/g, '    ');
    assert.deepEqual(parseTopoMatrix(spaces), parseTopoMatrix(tabs));
    const underlined = tabs.replace(/^(\t.*)$/m, '\x1b[4m$1\x1b[0m');
    assert.notEqual(underlined, tabs);
    assert.deepEqual(parseTopoMatrix(underlined), parseTopoMatrix(tabs), 'ANSI underline on the header');
  });

  it('an island that is not all-to-all is still one island (a ring of four)', () => {
    const text = [
      '\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\tNUMA Affinity',
      'GPU0\t X \tNV2\tSYS\tNV2\t0-7\t0',
      'GPU1\tNV2\t X \tNV2\tSYS\t0-7\t0',
      'GPU2\tSYS\tNV2\t X \tNV2\t0-7\t0',
      'GPU3\tNV2\tSYS\tNV2\t X \t0-7\tN/A',
      '',
    ].join('\n');
    const m = parseTopoMatrix(text);
    assert.deepEqual(nvlinkIslands(m), [{ devices: [0, 1, 2, 3], allToAll: false, links: 2 }]);
    assert.equal(m.gpus[3]!.numaNode, undefined, 'N/A NUMA affinity');
  });

  it('refuses a malformed matrix with an error naming what is wrong', () => {
    const text = fixture('dgx-h100-topo.txt');
    const lines = text.split('\n');
    const bad = (t: string, pattern: RegExp) =>
      assert.throws(() => parseTopoMatrix(t), (err: Error) => err instanceof NvidiaSmiParseError && pattern.test(err.message), pattern.source);
    bad('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.', /no header row naming the GPU columns/);
    bad(lines.filter((l) => !l.startsWith('GPU7\t')).join('\n'), /no row for GPU7/);
    bad(lines.map((l) => (l.startsWith('GPU3\t') ? l.replace('\tNV18', '') : l)).join('\n'), /line 5: row GPU3, column GPU2: X off the diagonal \(columns misaligned\?\)/);
    bad(lines.map((l) => (l.startsWith('GPU2\t') ? l.replace('PIX', 'FOO') : l)).join('\n'), /line 4: row GPU2, column NIC4: "FOO" is not a link type/);
    bad(lines.map((l) => (l.startsWith('GPU1\t') ? l.replace(/^GPU1\tNV18/, 'GPU1\tSYS') : l)).join('\n'), /GPU0–GPU1 NVLink is not symmetric/);
    bad(lines.map((l) => (l.startsWith('GPU9') ? l : l.replace(/^GPU5\t/, 'GPU9\t'))).join('\n'), /row "GPU9" is not one of the header's columns/);
    bad(lines.map((l) => (l.startsWith('NIC2\t') ? 'NIC2\tNODE\tNODE' : l)).join('\n'), /row NIC2 has 2 link values for 20 columns/);
  });
});

describe('MIG listings', () => {
  it('nvidia-smi -L: GPUs with their MIG devices and UUIDs', () => {
    const gpus = parseGpuList(fixture('mig-h100-list.txt'));
    assert.equal(gpus.length, 8);
    assert.deepEqual(gpus.map((g) => g.mig.length), [4, 7, 0, 0, 0, 0, 0, 0]);
    assert.equal(gpus[0]!.uuid, 'GPU-02e5f2d5-66cc-5260-ab59-3bb068b495b8');
    assert.deepEqual(gpus[0]!.mig[0], { profile: '3g.40gb', device: 0, uuid: 'MIG-0914c1c4-3ba2-5ef7-adbc-f8ea419a47c1' });
    assert.ok(gpus[1]!.mig.every((m) => m.profile === '1g.10gb' && /^MIG-[0-9a-f-]{36}$/.test(m.uuid)));
  });

  it('nvidia-smi mig -lgi: GPU instances with profile, ids and placement', () => {
    const gis = parseMigGpuInstances(fixture('mig-h100-lgi.txt'));
    assert.equal(gis.length, 11);
    assert.deepEqual(gis[0], { gpu: 0, profile: '3g.40gb', profileId: 9, instance: 2, placementStart: 4, placementSize: 4 });
    assert.deepEqual(parseMigGpuInstances('No MIG-enabled devices found.\n'), []);
    assert.throws(() => parseMigGpuInstances('| GPU instances: |\n|   0  MIG 1g.10gb  19  nine  2:1 |\n'), /line 2: not a GPU instance row/);
  });

  it('pairs each MIG device with its GPU instance id by profile; the legacy UUID form carries the id itself', () => {
    const gpus = parseGpuList(fixture('mig-h100-list.txt'));
    const gis = parseMigGpuInstances(fixture('mig-h100-lgi.txt'));
    assert.deepEqual(joinMigDevices(gpus[0]!, gis).map((d) => [d.profile, d.instance]), [['3g.40gb', 2], ['2g.20gb', 3], ['1g.10gb', 9], ['1g.10gb', 10]]);
    assert.deepEqual(joinMigDevices(gpus[1]!, gis).map((d) => d.instance), [7, 8, 9, 10, 11, 12, 13]);
    const unknown = joinMigDevices(gpus[0]!, undefined);
    assert.ok(unknown.every((d) => !d.instanceKnown));
    const legacy = parseGpuList([
      'GPU 0: A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)',
      '  MIG 3g.20gb Device 0: (UUID: MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/1/0)',
      '  MIG 3g.20gb Device 1: (UUID: MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/2/0)',
    ].join('\n'));
    assert.deepEqual(joinMigDevices(legacy[0]!, undefined).map((d) => [d.instance, d.instanceKnown]), [[1, true], [2, true]]);
    assert.throws(() => parseGpuList('GPU 0: NVIDIA A10 (UUID: GPU-1)\nsomething else\n'), /line 2: neither a GPU nor a MIG device line/);
  });
});

describe('banner and derived facts', () => {
  it('reads the CUDA version from the nvidia-smi banner', () => {
    assert.equal(parseCudaVersion(fixture('dgx-h100-smi.txt')), '12.2');
    assert.equal(parseCudaVersion('CUDA Version                              : Not Found'), undefined);
  });

  it('names architectures as AcceleratorClasses do', () => {
    assert.deepEqual(['7.0', '7.5', '8.0', '8.6', '8.9', '9.0', '10.0', '12.0', 'x'].map(architectureOf),
      ['volta', 'turing', 'ampere', 'ampere', 'ada-lovelace', 'hopper', 'blackwell', 'blackwell', undefined]);
  });
});

// ---------------------------------------------------------------------------------------

describe('discover', () => {
  it('DGX H100 with the demo classes: a valid Node and node/NUMA/island domains named as simulated ones are', async () => {
    const run = recorded({ query: fixture('dgx-h100-query-gpu.csv'), topo: fixture('dgx-h100-topo.txt'), banner: fixture('dgx-h100-smi.txt') });
    const d = await discover({ nodeName: 'dgx-01', topologyDomain: 'leaf-s1-l1', dataDir: '/var/lib/k8s4ai', run, machine: MACHINE, acceleratorClasses: demoClasses, labels: { pool: 'training' } });
    assert.deepEqual(d.warnings, []);
    assert.ok(!run.calls.some((a) => a[0] === '-L'), 'no MIG listing without MIG-enabled GPUs');
    assertValid(d.node);
    for (const o of d.domains) assertValid(o);

    assert.deepEqual(d.node.spec as NodeSpec, { topologyDomain: 'leaf-s1-l1' });
    assert.deepEqual(d.node.metadata.labels, { pool: 'training', [LABEL_ACCELERATOR]: 'h100-sxm-80gb' });
    const s = nodeStatus(d);
    assert.deepEqual(s.addresses, [{ type: 'InternalIP', address: '10.1.2.3' }, { type: 'Hostname', address: 'gpu-host-01' }]);
    assert.deepEqual(s.capacity, { cpu: 224, memory: '2147483648Ki', nvme: '29296875000Ki' });
    assert.deepEqual(d.nodeInfo, { simulated: false, driverVersion: '535.129.03', cudaVersion: '12.2', operatingSystem: 'Ubuntu 22.04.4 LTS' });
    assert.deepEqual(s.nodeInfo, d.nodeInfo);
    assert.equal(s.gpus!.length, 8);
    assert.deepEqual(s.gpus![4], {
      index: 4, uuid: 'GPU-d7e12a23-0515-53c1-92e8-6a7e0fec18b9', productName: 'NVIDIA H100 80GB HBM3', architecture: 'hopper',
      memory: '81559Mi', computeCapability: '9.0', driverVersion: '535.129.03', acceleratorClassName: 'h100-sxm-80gb',
      numaNode: 1, nvlinkIsland: 0, nvlinkPeers: [0, 1, 2, 3, 5, 6, 7], pcieBusId: '00000000:9A:00.0', migEnabled: false,
      attributes: { fp8: 'true', bf16: 'true', brand: 'Nvidia' },
    });

    assert.deepEqual(domainNames(d), ['dgx-01', 'dgx-01-numa0', 'dgx-01-numa1', 'dgx-01-nvl0']);
    assert.deepEqual(d.domains[0]!.spec, { level: 'node', parent: 'leaf-s1-l1', nodeName: 'dgx-01', devices: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.deepEqual(domainSpec(d.domains[2]!), { level: 'numa', parent: 'dgx-01', nodeName: 'dgx-01', devices: [4, 5, 6, 7], interconnect: { type: 'pcie' } });
    // The class declares the board's NVSwitch and its bandwidth.
    assert.deepEqual(domainSpec(d.domains[3]!).interconnect, { type: 'nvswitch', bandwidth: '900G' });
    assert.deepEqual(d.domains[3]!.status, { nodes: 1, gpus: 8, freeGpus: 8 });
    assert.ok(d.domains.every((o) => o.metadata.labels?.pool === 'training'));
  });

  it('DGX A100 80GB, not in the demo classes: no class, island type inferred from the all-to-all matrix, NUMA domains 1/3/5/7', async () => {
    const run = recorded({ query: fixture('dgx-a100-query-gpu.csv'), topo: fixture('dgx-a100-topo.txt') });
    const machine: MachineInfo = { ...MACHINE, numaNodes: [0, 1, 2, 3, 4, 5, 6, 7] };
    const d = await discover({ nodeName: 'a100-01', dataDir: '/data', run, machine, acceleratorClasses: demoClasses });
    assertValid(d.node);
    for (const o of d.domains) assertValid(o);
    assert.deepEqual(d.warnings, ['nvidia-smi: not available'], 'the banner runner returns nothing here');
    assert.ok(nodeStatus(d).gpus!.every((g) => g.acceleratorClassName === undefined && g.architecture === 'ampere'));
    assert.equal(d.node.metadata.labels?.[LABEL_ACCELERATOR], undefined);
    assert.deepEqual(d.node.spec, {});
    assert.equal(domainSpec(d.domains[0]!).parent, undefined);
    assert.deepEqual(domainNames(d), ['a100-01', ...[0, 1, 2, 3, 4, 5, 6, 7].map((k) => `a100-01-numa${k}`), 'a100-01-nvl0']);
    assert.deepEqual(domainSpec(d.domains[4]!).devices, [0, 1], 'numa3');
    assert.deepEqual(domainSpec(d.domains[3]!).devices, [], 'numa2 has CPUs and NICs, no GPUs');
    assert.deepEqual(domainSpec(d.domains[9]!).interconnect, { type: 'nvswitch' });
    assert.equal(d.nodeInfo.cudaVersion, undefined);
  });

  it('PCIe L40S: GPUs on NUMA domains, no island domains, no peers', async () => {
    const run = recorded({ query: fixture('pcie-l40s-query-gpu.csv'), topo: fixture('pcie-l40s-topo.txt'), banner: fixture('dgx-h100-smi.txt') });
    const d = await discover({ nodeName: 'l40s-01', topologyDomain: 'rack-3', dataDir: '/data', run, machine: MACHINE });
    assertValid(d.node);
    for (const o of d.domains) assertValid(o);
    assert.deepEqual(domainNames(d), ['l40s-01', 'l40s-01-numa0', 'l40s-01-numa1']);
    const g = nodeStatus(d).gpus![6]!;
    assert.equal(g.nvlinkIsland, undefined);
    assert.deepEqual(g.nvlinkPeers, []);
    assert.equal(g.migEnabled, false);
    assert.equal(g.architecture, 'ada-lovelace');
    assert.deepEqual(g.attributes, { fp8: 'true', bf16: 'true', brand: 'Nvidia' });
  });

  it('an old driver without compute_cap: retries the query without it; NV-bridge pairs become four nvlink islands', async () => {
    const run = recorded({ legacyQuery: fixture('pcie-a40-nvbridge-query-gpu.csv'), topo: fixture('pcie-a40-nvbridge-topo.txt'), banner: 'CUDA Version: 11.4' });
    const d = await discover({ nodeName: 'a40-01', dataDir: '/data', run, machine: MACHINE });
    assert.deepEqual(run.calls.slice(0, 2), [queryGpuArgs(QUERY_GPU_FIELDS), queryGpuArgs(QUERY_GPU_FIELDS_LEGACY)]);
    assertValid(d.node);
    for (const o of d.domains) assertValid(o);
    const gpus = nodeStatus(d).gpus!;
    assert.ok(gpus.every((g) => g.computeCapability === undefined && g.architecture === undefined));
    assert.deepEqual(gpus[0]!.attributes, { brand: 'Nvidia' });
    assert.deepEqual(gpus.map((g) => g.nvlinkIsland), [0, 0, 1, 1, 2, 2, 3, 3]);
    assert.deepEqual(domainNames(d).filter((n) => n.includes('-nvl')), ['a40-01-nvl0', 'a40-01-nvl1', 'a40-01-nvl2', 'a40-01-nvl3']);
    assert.ok(d.domains.filter((o) => domainSpec(o).level === 'nvlink-island').every((o) => domainSpec(o).interconnect?.type === 'nvlink'));
    assert.equal(d.nodeInfo.cudaVersion, '11.4');
  });

  it('MIG-enabled H100s: MIG devices with UUIDs, GPU instance ids and the class\'s profile memory', async () => {
    const run = recorded({ query: fixture('mig-h100-query-gpu.csv'), topo: fixture('dgx-h100-topo.txt'), list: fixture('mig-h100-list.txt'), lgi: fixture('mig-h100-lgi.txt'), banner: fixture('dgx-h100-smi.txt') });
    const d = await discover({ nodeName: 'mig-01', dataDir: '/data', run, machine: MACHINE, acceleratorClasses: demoClasses });
    assert.deepEqual(d.warnings, []);
    assertValid(d.node);
    const gpus = nodeStatus(d).gpus!;
    assert.deepEqual(gpus.map((g) => g.migEnabled), [true, true, false, false, false, false, false, false]);
    assert.deepEqual(gpus[0]!.migDevices, [
      { profile: '3g.40gb', uuid: 'MIG-0914c1c4-3ba2-5ef7-adbc-f8ea419a47c1', instance: 2, memory: '40Gi' },
      { profile: '2g.20gb', uuid: 'MIG-fb33bcf2-281a-5579-9ce5-0fd28604890c', instance: 3, memory: '20Gi' },
      { profile: '1g.10gb', uuid: 'MIG-de29bdc4-38d0-5f09-bb9f-0d317f018da6', instance: 9, memory: '10Gi' },
      { profile: '1g.10gb', uuid: 'MIG-74e30570-0579-5252-b679-825793f90026', instance: 10, memory: '10Gi' },
    ]);
    assert.equal(gpus[1]!.migDevices!.length, 7);
    assert.equal(gpus[2]!.migDevices, undefined);
  });

  it('MIG without mig -lgi: device numbers stand in for instance ids, with a warning', async () => {
    const run = recorded({ query: fixture('mig-h100-query-gpu.csv'), topo: fixture('dgx-h100-topo.txt'), list: fixture('mig-h100-list.txt') });
    const d = await discover({ nodeName: 'mig-02', dataDir: '/data', run, machine: MACHINE });
    assertValid(d.node);
    assert.deepEqual(nodeStatus(d).gpus![0]!.migDevices!.map((m) => m.instance), [0, 1, 2, 3]);
    assert.ok(d.warnings.includes('nvidia-smi mig -lgi: not available'));
    assert.ok(d.warnings.some((w) => /GPU 0: MIG GPU instance ids unknown/.test(w)));
  });

  it('without nvidia-smi: no GPUs, the node domain and the NUMA nodes sysfs lists', async () => {
    const run = recorded({});
    const absent: CommandRunner = async (cmd, args) => (run.calls.push(args), undefined);
    const d = await discover({ nodeName: 'cpu-01', topologyDomain: 'leaf-x', dataDir: '/data', run: absent, machine: MACHINE });
    assertValid(d.node);
    for (const o of d.domains) assertValid(o);
    assert.equal(run.calls.length, 1, 'only the GPU query is tried');
    assert.deepEqual(nodeStatus(d).gpus, []);
    assert.deepEqual(d.nodeInfo, { simulated: false, operatingSystem: 'Ubuntu 22.04.4 LTS' });
    assert.deepEqual(domainNames(d), ['cpu-01', 'cpu-01-numa0', 'cpu-01-numa1']);
    assert.deepEqual(d.domains[0]!.status, { nodes: 1, gpus: 0, freeGpus: 0 });
    const bare = await discover({ nodeName: 'cpu-02', dataDir: '/data', run: absent, machine: { ...MACHINE, numaNodes: undefined, internalIP: undefined, diskBytes: undefined } });
    assert.deepEqual(domainNames(bare), ['cpu-02']);
    assert.deepEqual(nodeStatus(bare).addresses, [{ type: 'Hostname', address: 'gpu-host-01' }]);
    assert.deepEqual(nodeStatus(bare).capacity, { cpu: 224, memory: '2147483648Ki' });
    assertValid(bare.node);
  });

  it('a malformed GPU query fails discovery with the parse error; a failing nvidia-smi with DiscoveryError', async () => {
    const garbled = recorded({ query: '0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10\n' });
    await assert.rejects(discover({ nodeName: 'n', dataDir: '/data', run: garbled, machine: MACHINE }),
      (err: Error) => err instanceof NvidiaSmiParseError && /--query-gpu: line 1 has 3 values, expected 8/.test(err.message));
    const broken: CommandRunner = async () => {
      throw new Error('nvidia-smi --query-gpu=…: exit 9: NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.');
    };
    await assert.rejects(discover({ nodeName: 'n', dataDir: '/data', run: broken, machine: MACHINE }),
      (err: Error) => err instanceof DiscoveryError && /couldn't communicate with the NVIDIA driver/.test(err.message));
  });

  it('a malformed topo -m is skipped with the reason: GPUs kept, NUMA from sysfs, no islands', async () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'k8s4ai-sysfs-'));
    try {
      for (const [bus, numa] of [['0000:18:00.0', '0'], ['0000:db:00.0', '1']] as const) {
        mkdirSync(join(sysfs, 'bus/pci/devices', bus), { recursive: true });
        writeFileSync(join(sysfs, 'bus/pci/devices', bus, 'numa_node'), `${numa}\n`);
      }
      const topo = fixture('dgx-h100-topo.txt').split('\n').filter((l) => !l.startsWith('GPU7\t')).join('\n');
      const run = recorded({ query: fixture('dgx-h100-query-gpu.csv'), topo, banner: fixture('dgx-h100-smi.txt') });
      const d = await discover({ nodeName: 'n', dataDir: '/data', run, machine: { ...MACHINE, numaNodes: undefined }, sysfsRoot: sysfs });
      assert.deepEqual(d.warnings, ['topology left out: nvidia-smi topo -m: no row for GPU7 (output cut short?)']);
      assertValid(d.node);
      for (const o of d.domains) assertValid(o);
      const gpus = nodeStatus(d).gpus!;
      assert.equal(gpus.length, 8);
      assert.ok(gpus.every((g) => g.nvlinkPeers === undefined && g.nvlinkIsland === undefined));
      assert.deepEqual(gpus.map((g) => g.numaNode), [0, undefined, undefined, undefined, undefined, undefined, undefined, 1]);
      assert.deepEqual(domainNames(d), ['n', 'n-numa0', 'n-numa1']);
    } finally {
      rmSync(sysfs, { recursive: true, force: true });
    }
  });

  it('matches classes by productName first, then by selector', () => {
    const gpu = { index: 0, uuid: 'GPU-1', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, computeCapability: '9.0' };
    assert.equal(matchClass(gpu, demoClasses)?.name, 'h100-sxm-80gb');
    const bySelector = [{ name: 'big-hopper', spec: { ...demoClasses[0]!.spec, productName: 'something else', selector: { matchExpressions: [{ key: 'architecture', operator: 'In' as const, values: ['hopper'] }, { key: 'memory', operator: 'Gt' as const, values: ['79Gi'] }] } } }];
    assert.equal(matchClass(gpu, bySelector)?.name, 'big-hopper');
    assert.equal(matchClass({ ...gpu, name: 'NVIDIA L4', memoryMiB: 23034, computeCapability: '8.9' }, bySelector), undefined);
  });
});

describe('machine', () => {
  it('probes this machine: CPUs, memory, disk of a not-yet-created data dir, OS', async () => {
    const m = await probeMachine({ dataDir: join(tmpdir(), 'k8s4ai-missing', 'data') });
    assert.ok(m.cpus > 0 && m.memoryBytes > 0 && m.hostname.length > 0 && m.operatingSystem.length > 0);
    assert.ok((m.diskBytes ?? 0) > 0, 'statfs of the nearest existing ancestor');
    assert.ok(((await diskCapacity('/')) ?? 0) > 0);
  });

  it('picks the first non-loopback IPv4 address', () => {
    const lo = { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' };
    const v6 = { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' as const, mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: 'fe80::1/64', scopeid: 2 };
    const eth = { address: '10.0.0.7', netmask: '255.255.255.0', family: 'IPv4' as const, mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: '10.0.0.7/24' };
    assert.equal(firstInternalIPv4({ lo: [lo], eth0: [v6, eth] }), '10.0.0.7');
    assert.equal(firstInternalIPv4({ lo: [lo] }), undefined);
  });

  it('reads PRETTY_NAME, sysfs NUMA nodes and PCI addresses', async () => {
    assert.equal(parseOsRelease('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n'), 'Ubuntu 22.04.4 LTS');
    assert.equal(parseOsRelease('ID=alpine\n'), undefined);
    assert.equal(sysfsPciAddress('00000000:DB:00.0'), '0000:db:00.0');
    assert.equal(sysfsPciAddress('0001:18:00.0'), '0001:18:00.0');
    const sysfs = mkdtempSync(join(tmpdir(), 'k8s4ai-sysfs-'));
    try {
      for (const n of ['node1', 'node0', 'possible', 'has_cpu']) mkdirSync(join(sysfs, 'devices/system/node', n), { recursive: true });
      assert.deepEqual(await numaNodes(sysfs), [0, 1]);
      assert.equal(await numaNodes(join(sysfs, 'nowhere')), undefined);
      mkdirSync(join(sysfs, 'bus/pci/devices/0000:18:00.0'), { recursive: true });
      writeFileSync(join(sysfs, 'bus/pci/devices/0000:18:00.0/numa_node'), '-1\n');
      assert.equal(await pciNumaNode('00000000:18:00.0', sysfs), undefined, '-1: no NUMA');
    } finally {
      rmSync(sysfs, { recursive: true, force: true });
    }
  });

  it('runCommand: undefined for a missing program, the exit status and output for a failing one, stdout otherwise', async () => {
    assert.equal(await runCommand('k8s4ai-no-such-program', []), undefined);
    assert.equal(await runCommand(process.execPath, ['-e', 'process.stdout.write("ok")']), 'ok');
    await assert.rejects(runCommand(process.execPath, ['-e', 'console.log("Field is not a valid field to query."); process.exit(2)']),
      (err: Error) => /exit 2: Field is not a valid field to query\./.test(err.message));
  });
});
