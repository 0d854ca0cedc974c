// Machine and GPU discovery for the agent: what it registers as its Node and the in-node
// TopologyDomains (node, NUMA, NVLink island) under it. Objects are shaped and named as
// expandFleet shapes simulated nodes (<node>, <node>-numa<k>, <node>-nvl<k>), so the
// scheduler sees real and simulated machines alike; `nodeInfo.simulated` tells them apart.
//
// nvidia-smi is run without a shell through an injectable runner. What happens when its
// output cannot be used:
//   - no nvidia-smi at all: a GPU-less Node (a CPU machine), not an error;
//   - the GPU query fails or cannot be parsed: DiscoveryError / NvidiaSmiParseError. The
//     GPU list is what the Node advertises; a machine reporting no GPUs because its driver
//     is broken would be scheduled as an empty one, so the agent must see the failure;
//   - topo -m, MIG listings or the CUDA banner fail: that part is left out and the reason
//     is in `warnings`. The GPUs are still right; the scheduler only loses placement hints.
import { execFile } from 'node:child_process';
import { API_VERSION } from '../../api/kind.ts';
import type { KubeObject } from '../../api/meta.ts';
import type { NodeGpu, NodeSpec, NodeStatus } from '../../api/kinds/node.ts';
import type { TopologyDomainSpec } from '../../api/kinds/topologydomain.ts';
import type { AcceleratorClassSpec } from '../../api/kinds/acceleratorclass.ts';
import { matchesExpressions } from '../../api/selector.ts';
import { domain } from '../../fleet/expand.ts';
import { LABEL_ACCELERATOR } from '../../fleet/format.ts';
import {
  QUERY_GPU_FIELDS, QUERY_GPU_FIELDS_LEGACY, architectureOf, isUnknownFieldError, joinMigDevices,
  nvlinkIslands, parseCudaVersion, parseGpuList, parseMigGpuInstances, parseQueryGpu, parseTopoMatrix, queryGpuArgs,
  type NvlinkIsland, type QueryGpuField, type SmiGpu, type TopoMatrix,
} from './nvidia-smi.ts';
import { pciNumaNode, probeMachine, type MachineInfo } from './machine.ts';

export * from './nvidia-smi.ts';
export * from './machine.ts';

/** Runs a program with arguments (never through a shell): its stdout, or undefined when the program is not installed. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<string | undefined>;

/** An AcceleratorClass by name, as the API serves it or a fleet file declares it. */
export interface DiscoveryAcceleratorClass {
  name: string;
  spec: AcceleratorClassSpec;
}

export interface DiscoverOptions {
  nodeName: string;
  /** The leaf (or rack) domain the node sits in: the Node's spec.topologyDomain and its node domain's parent. */
  topologyDomain?: string;
  /** The agent's data directory; its filesystem is the Node's nvme capacity. */
  dataDir: string;
  /** Default: runCommand (execFile, no shell; undefined when nvidia-smi is absent). */
  run?: CommandRunner;
  /** Classes a GPU may belong to, matched by productName (or the class's selector). */
  acceleratorClasses?: readonly DiscoveryAcceleratorClass[];
  /** Labels for the Node and its domains. */
  labels?: Record<string, string>;
  /** Where sysfs is mounted (NUMA nodes, PCI NUMA fallback). Default /sys. */
  sysfsRoot?: string;
  osReleasePath?: string;
  /** Machine facts to use instead of probing this machine (tests, a node registered on another's behalf). */
  machine?: MachineInfo;
}

export type NodeInfo = NonNullable<NodeStatus['nodeInfo']>;

export interface Discovery {
  /** The Node, valid for its kind; spec.topologyDomain only when one was given. */
  node: KubeObject;
  /** In-node TopologyDomains: the node, its NUMA nodes, its NVLink islands. */
  domains: KubeObject[];
  nodeInfo: NodeInfo;
  /** Parts left out, each with why (topology, MIG, CUDA version). */
  warnings: string[];
}

/** nvidia-smi is there but could not be run to completion (driver not loaded, timeout, …). */
export class DiscoveryError extends Error {
  readonly code = 'K8S4AI_DISCOVERY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

const NVIDIA_SMI = 'nvidia-smi';
const COMMAND_TIMEOUT_MS = 30_000;

/** The default runner: execFile (no shell), a timeout, and undefined for a missing program. */
export const runCommand: CommandRunner = (cmd, args) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      const output = `${stdout}${stderr}`.trim();
      const why = err.killed ? `killed after ${COMMAND_TIMEOUT_MS / 1000}s` : `exit ${String(err.code ?? err.signal)}`;
      reject(new Error(`${cmd} ${args.join(' ')}: ${why}${output ? `: ${output}` : ''}`));
    });
  });

export async function discover(opts: DiscoverOptions): Promise<Discovery> {
  const run = opts.run ?? runCommand;
  const warnings: string[] = [];
  const machine = opts.machine ?? (await probeMachine({ dataDir: opts.dataDir, sysfsRoot: opts.sysfsRoot, osReleasePath: opts.osReleasePath }));
  const smiGpus = await queryGpus(run);

  let topo: TopoMatrix | undefined;
  let islands: NvlinkIsland[] = [];
  let migByGpu = new Map<number, ReturnType<typeof joinMigDevices>>();
  let cudaVersion: string | undefined;
  if (smiGpus !== undefined && smiGpus.length > 0) {
    const wantMig = smiGpus.some((g) => g.migEnabled);
    const [topoText, banner, listText, lgiText] = await Promise.all([
      optional(run, ['topo', '-m'], warnings),
      optional(run, [], warnings),
      wantMig ? optional(run, ['-L'], warnings) : undefined,
      wantMig ? optional(run, ['mig', '-lgi'], warnings) : undefined,
    ]);
    if (topoText !== undefined) {
      try {
        topo = parseTopoMatrix(topoText);
        const missing = smiGpus.filter((g) => !topo!.gpus.some((t) => t.index === g.index));
        if (missing.length > 0) {
          warnings.push(`topology left out: topo -m has no row for GPU ${missing.map((g) => g.index).join(', ')}`);
          topo = undefined;
        } else {
          islands = nvlinkIslands(topo);
        }
      } catch (err) {
        warnings.push(`topology left out: ${(err as Error).message}`);
      }
    }
    if (banner !== undefined) cudaVersion = parseCudaVersion(banner);
    if (wantMig) migByGpu = migDevices(listText, lgiText, warnings);
  }

  const classes = opts.acceleratorClasses ?? [];
  const gpus: NodeGpu[] = [];
  const classOf = new Map<number, DiscoveryAcceleratorClass>();
  for (const g of smiGpus ?? []) {
    const cls = matchClass(g, classes, warnings);
    if (cls) classOf.set(g.index, cls);
    gpus.push(await nodeGpu(g, cls, topo, islands, migByGpu.get(g.index), opts.sysfsRoot));
  }

  const labels = { ...opts.labels };
  const nodeInfo: NodeInfo = { simulated: false };
  const driverVersion = smiGpus?.find((g) => g.driverVersion !== undefined)?.driverVersion;
  if (driverVersion !== undefined) nodeInfo.driverVersion = driverVersion;
  if (cudaVersion !== undefined) nodeInfo.cudaVersion = cudaVersion;
  nodeInfo.operatingSystem = machine.operatingSystem;

  const domains = nodeDomains(opts, machine, gpus, islands, classOf, labels);
  const nodeLabels = { ...labels };
  const classNames = new Set(gpus.map((g) => g.acceleratorClassName));
  if (gpus.length > 0 && classNames.size === 1 && !classNames.has(undefined)) nodeLabels[LABEL_ACCELERATOR] = gpus[0]!.acceleratorClassName!;

  // No unschedulable here: cordoning is an administrator's call, and a re-registering agent must not undo it.
  const spec: NodeSpec = opts.topologyDomain === undefined ? {} : { topologyDomain: opts.topologyDomain };
  const addresses: NonNullable<NodeStatus['addresses']> = [];
  if (machine.internalIP !== undefined) addresses.push({ type: 'InternalIP', address: machine.internalIP });
  addresses.push({ type: 'Hostname', address: machine.hostname });
  const capacity: NonNullable<NodeStatus['capacity']> = { cpu: machine.cpus, memory: kibibytes(machine.memoryBytes) };
  if (machine.diskBytes !== undefined) capacity.nvme = kibibytes(machine.diskBytes);
  const status: NodeStatus = { addresses, capacity, gpus, nodeInfo: { ...nodeInfo } };
  const node: KubeObject = { apiVersion: API_VERSION, kind: 'Node', metadata: { name: opts.nodeName, labels: nodeLabels }, spec, status };
  return { node, domains, nodeInfo, warnings };
}

/** Whole KiB, as the kubelet reports memory and storage. */
const kibibytes = (bytes: number): string => `${Math.floor(bytes / 1024)}Ki`;

/** The GPU list, or undefined without nvidia-smi. Retries without compute_cap for pre-R510 drivers. */
async function queryGpus(run: CommandRunner): Promise<SmiGpu[] | undefined> {
  const attempt = async (fields: readonly QueryGpuField[]): Promise<string | undefined | 'unknown-field'> => {
    let text: string | undefined;
    try {
      text = await run(NVIDIA_SMI, queryGpuArgs(fields));
    } catch (err) {
      if (isUnknownFieldError((err as Error).message)) return 'unknown-field';
      throw new DiscoveryError(`GPU discovery failed: ${(err as Error).message}`, { cause: err });
    }
    return text !== undefined && isUnknownFieldError(text) ? 'unknown-field' : text;
  };
  let fields: readonly QueryGpuField[] = QUERY_GPU_FIELDS;
  let text = await attempt(fields);
  if (text === 'unknown-field') {
    fields = QUERY_GPU_FIELDS_LEGACY;
    text = await attempt(fields);
    if (text === 'unknown-field') throw new DiscoveryError(`GPU discovery failed: the driver refuses even the fields ${fields.join(',')}`);
  }
  return text === undefined ? undefined : parseQueryGpu(text, fields);
}

/** A secondary nvidia-smi run: its output, or undefined with the reason in `warnings`. */
async function optional(run: CommandRunner, args: string[], warnings: string[]): Promise<string | undefined> {
  const what = ['nvidia-smi', ...args].join(' ');
  try {
    const text = await run(NVIDIA_SMI, args);
    if (text === undefined) warnings.push(`${what}: not available`);
    return text;
  } catch (err) {
    warnings.push(`${what} failed: ${(err as Error).message}`);
    return undefined;
  }
}

function migDevices(listText: string | undefined, lgiText: string | undefined, warnings: string[]): Map<number, ReturnType<typeof joinMigDevices>> {
  const out = new Map<number, ReturnType<typeof joinMigDevices>>();
  if (listText === undefined) return out;
  let listed: ReturnType<typeof parseGpuList>;
  try {
    listed = parseGpuList(listText);
  } catch (err) {
    warnings.push(`MIG devices left out: ${(err as Error).message}`);
    return out;
  }
  let instances: ReturnType<typeof parseMigGpuInstances> | undefined;
  if (lgiText !== undefined) {
    try {
      instances = parseMigGpuInstances(lgiText);
    } catch (err) {
      warnings.push(`MIG GPU instance ids unknown: ${(err as Error).message}`);
    }
  }
  for (const g of listed) {
    const joined = joinMigDevices(g, instances);
    if (joined.some((d) => !d.instanceKnown)) warnings.push(`GPU ${g.index}: MIG GPU instance ids unknown; the -L device numbers stand in for them`);
    out.set(g.index, joined);
  }
  return out;
}

/** Attributes a class selector may ask about, as the scheduler spells them. */
function selectorAttributes(g: SmiGpu): Record<string, string> {
  const attrs: Record<string, string> = { vendor: 'nvidia', productName: g.name, memory: String(g.memoryMiB * 1024 * 1024) };
  if (g.computeCapability !== undefined) attrs.computeCapability = g.computeCapability;
  const arch = architectureOf(g.computeCapability);
  if (arch !== undefined) attrs.architecture = arch;
  return attrs;
}

/**
 * The class a GPU belongs to: the first whose productName is the GPU's name, else the first
 * whose selector matches the GPU. A class with a malformed selector is skipped with a warning.
 */
export function matchClass(g: SmiGpu, classes: readonly DiscoveryAcceleratorClass[], warnings: string[] = []): DiscoveryAcceleratorClass | undefined {
  const exact = classes.find((c) => c.spec.productName === g.name);
  if (exact) return exact;
  const attrs = selectorAttributes(g);
  for (const c of classes) {
    if (!c.spec.selector) continue;
    try {
      if (matchesExpressions(c.spec.selector.matchExpressions, attrs)) return c;
    } catch (err) {
      const msg = `AcceleratorClass ${c.name}: selector ${(err as Error).message}`;
      if (!warnings.includes(msg)) warnings.push(msg);
    }
  }
  return undefined;
}

async function nodeGpu(
  g: SmiGpu, cls: DiscoveryAcceleratorClass | undefined, topo: TopoMatrix | undefined, islands: NvlinkIsland[],
  mig: ReturnType<typeof joinMigDevices> | undefined, sysfsRoot: string | undefined,
): Promise<NodeGpu> {
  // Fields in the schema's order (as expandFleet writes them), optional ones only when known.
  const gpu = { index: g.index, uuid: g.uuid, productName: g.name } as NodeGpu;
  const arch = cls?.spec.architecture ?? architectureOf(g.computeCapability);
  if (arch !== undefined) gpu.architecture = arch;
  gpu.memory = `${g.memoryMiB}Mi`;
  const cc = g.computeCapability ?? cls?.spec.computeCapability;
  if (cc !== undefined) gpu.computeCapability = cc;
  if (g.driverVersion !== undefined) gpu.driverVersion = g.driverVersion;
  if (cls) gpu.acceleratorClassName = cls.name;
  const row = topo?.gpus.find((t) => t.index === g.index);
  const numa = row?.numaNode ?? (g.pciBusId !== undefined ? await pciNumaNode(g.pciBusId, sysfsRoot) : undefined);
  if (numa !== undefined) gpu.numaNode = numa;
  if (row) {
    const island = islands.findIndex((i) => i.devices.includes(g.index));
    if (island >= 0) gpu.nvlinkIsland = island;
    gpu.nvlinkPeers = row.nvlinkPeers.slice();
  }
  if (g.pciBusId !== undefined) gpu.pcieBusId = g.pciBusId;
  gpu.migEnabled = g.migEnabled ?? false;
  if (gpu.migEnabled && mig) {
    gpu.migDevices = mig.map((d) => {
      const memory = migMemory(d.profile, cls);
      return memory === undefined ? { profile: d.profile, uuid: d.uuid, instance: d.instance } : { profile: d.profile, uuid: d.uuid, instance: d.instance, memory };
    });
  }
  gpu.attributes = attributesOf(cc, cls);
  return gpu;
}

/** The class's memory for a MIG profile, else the size its name gives ("3g.40gb" → 40Gi, as every class writes it). */
function migMemory(profile: string, cls: DiscoveryAcceleratorClass | undefined): string | number | undefined {
  const declared = cls?.spec.migProfiles?.find((p) => p.name === profile)?.memory;
  if (declared !== undefined) return declared;
  const m = /^\d+g\.(\d+)gb/.exec(profile);
  return m ? `${m[1]}Gi` : undefined;
}

/** DRA-style attributes as expandFleet sets them: the class's word first, else what the compute capability implies. */
function attributesOf(cc: string | undefined, cls: DiscoveryAcceleratorClass | undefined): Record<string, string> {
  const attrs: Record<string, string> = {};
  const version = cc === undefined ? undefined : Number(cc);
  // FP8 tensor cores arrived with Ada (8.9) and Hopper (9.0); BF16 with Ampere (8.0).
  const fp8 = cls?.spec.fp8 ?? (version === undefined ? undefined : version >= 8.9);
  const bf16 = cls?.spec.bf16 ?? (version === undefined ? undefined : version >= 8.0);
  if (fp8 !== undefined) attrs.fp8 = String(fp8);
  if (bf16 !== undefined) attrs.bf16 = String(bf16);
  attrs.brand = 'Nvidia';
  return attrs;
}

function nodeDomains(
  opts: DiscoverOptions, machine: MachineInfo, gpus: NodeGpu[], islands: NvlinkIsland[],
  classOf: Map<number, DiscoveryAcceleratorClass>, labels: Record<string, string>,
): KubeObject[] {
  const name = opts.nodeName;
  const all = gpus.map((g) => g.index);
  const nodeSpec: TopologyDomainSpec = opts.topologyDomain === undefined
    ? { level: 'node', nodeName: name, devices: all }
    : { level: 'node', parent: opts.topologyDomain, nodeName: name, devices: all };
  const out = [domain(name, labels, nodeSpec, 1, all.length)];

  // NUMA nodes sysfs lists (CPU-only ones too) and any a GPU reports.
  const numaIds = new Set(machine.numaNodes ?? []);
  for (const g of gpus) if (g.numaNode !== undefined && g.numaNode >= 0) numaIds.add(g.numaNode);
  for (const k of [...numaIds].sort((a, b) => a - b)) {
    const devices = gpus.filter((g) => g.numaNode === k).map((g) => g.index);
    out.push(domain(`${name}-numa${k}`, labels, { level: 'numa', parent: name, nodeName: name, devices, interconnect: { type: 'pcie' } }, 1, devices.length));
  }

  islands.forEach((island, k) => {
    // An island may span NUMA nodes (an 8-GPU NVSwitch board spans both sockets), so its parent is the node.
    out.push(domain(`${name}-nvl${k}`, labels, { level: 'nvlink-island', parent: name, nodeName: name, devices: island.devices.slice(), interconnect: islandInterconnect(island, classOf.get(island.devices[0]!)) }, 1, island.devices.length));
  });
  return out;
}

/**
 * The class's word when it declares NVLink or NVSwitch (it knows the board), else a guess
 * from the matrix: all-to-all over more than four GPUs needs an NVSwitch, since no
 * switchless NVIDIA board wires more than four GPUs each to each.
 */
function islandInterconnect(island: NvlinkIsland, cls: DiscoveryAcceleratorClass | undefined): NonNullable<TopologyDomainSpec['interconnect']> {
  const declared = cls?.spec.interconnect;
  if (declared && (declared.type === 'nvlink' || declared.type === 'nvswitch')) return { type: declared.type, bandwidth: declared.bandwidth };
  return { type: island.allToAll && island.devices.length > 4 ? 'nvswitch' : 'nvlink' };
}

