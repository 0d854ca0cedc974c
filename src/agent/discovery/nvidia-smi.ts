// Parsers for what nvidia-smi prints, as pure functions on its text, so every format can
// be tested on recorded output without a GPU:
//   parseQueryGpu        `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`
//   parseTopoMatrix      `nvidia-smi topo -m` (GPU/NIC matrix, affinity columns, legends)
//   nvlinkIslands        connected components of the matrix's NV# links
//   parseGpuList         `nvidia-smi -L` (GPUs and their MIG devices)
//   parseMigGpuInstances `nvidia-smi mig -lgi`
//   joinMigDevices       -L devices paired with their GPU instance ids
//   parseCudaVersion     the banner of plain `nvidia-smi` (or `-q`)
//
// Every parser throws NvidiaSmiParseError naming the command, the line and what is wrong
// rather than guessing: a misread matrix would publish wrong islands to the scheduler.

/** What nvidia-smi printed could not be read; `command` names which output. */
export class NvidiaSmiParseError extends Error {
  readonly code = 'K8S4AI_NVIDIA_SMI_PARSE';
  readonly command: string;
  constructor(command: string, message: string) {
    super(`nvidia-smi ${command}: ${message}`);
    this.name = 'NvidiaSmiParseError';
    this.command = command;
  }
}

// ---------------------------------------------------------------------------------------
// --query-gpu

/**
 * The fields discovery asks for, in order. compute_cap only exists from the R510 drivers
 * on; older ones refuse the whole query ("is not a valid field to query"), so discovery
 * retries with QUERY_GPU_FIELDS_LEGACY.
 */
export const QUERY_GPU_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'compute_cap', 'mig.mode.current', 'pci.bus_id', 'driver_version'] as const;
export const QUERY_GPU_FIELDS_LEGACY = ['index', 'uuid', 'name', 'memory.total', 'mig.mode.current', 'pci.bus_id', 'driver_version'] as const;
export type QueryGpuField = (typeof QUERY_GPU_FIELDS)[number];

/** Without these a GPU cannot be described (NodeGpu requires them). */
const REQUIRED_FIELDS = ['index', 'uuid', 'name', 'memory.total'] as const;

/** The arguments for one --query-gpu run over `fields`. */
export function queryGpuArgs(fields: readonly QueryGpuField[] = QUERY_GPU_FIELDS): string[] {
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
}

/** One GPU row of --query-gpu; optional members are absent when the driver has no value. */
export interface SmiGpu {
  index: number;
  uuid: string;
  name: string;
  /** memory.total in MiB (nounits). */
  memoryMiB: number;
  computeCapability?: string;
  /** mig.mode.current; absent on GPUs without MIG ("[N/A]"). */
  migEnabled?: boolean;
  pciBusId?: string;
  driverVersion?: string;
}

/** nvidia-smi writes unavailable values in brackets: [N/A], [Not Supported], [Unknown Error], … */
const UNAVAILABLE = /^\[.*\]$|^N\/A$/;

/** True when a --query-gpu run failed only because the driver does not know a field. */
export function isUnknownFieldError(text: string): boolean {
  return /is not a valid field to query/i.test(text);
}

/**
 * Rows of `--query-gpu=<fields> --format=csv,noheader,nounits`. Unavailable values leave
 * the optional members out; an unavailable or malformed required value (index, uuid,
 * name, memory.total) is an error. A header line, if present, is skipped.
 */
export function parseQueryGpu(text: string, fields: readonly QueryGpuField[] = QUERY_GPU_FIELDS): SmiGpu[] {
  const cmd = '--query-gpu';
  for (const f of REQUIRED_FIELDS) {
    if (!fields.includes(f)) throw new NvidiaSmiParseError(cmd, `the field list must include "${f}"`);
  }
  if (isUnknownFieldError(text)) throw new NvidiaSmiParseError(cmd, `the driver refused a field: ${text.trim()}`);
  const gpus: SmiGpu[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const where = `line ${i + 1}`;
    if (line === '' || /^No devices were found/i.test(line)) return;
    if (i === 0 && line.toLowerCase().startsWith('index')) return; // a csv header
    let cells = line.split(',').map((c) => c.trim());
    if (cells.length < fields.length) {
      throw new NvidiaSmiParseError(cmd, `${where} has ${cells.length} values, expected ${fields.length} (${fields.join(', ')}): "${line}"`);
    }
    if (cells.length > fields.length) {
      // Only the product name is free text; a comma in it splits it over several cells.
      const at = fields.indexOf('name');
      const extra = cells.length - fields.length;
      cells = [...cells.slice(0, at), cells.slice(at, at + extra + 1).join(', '), ...cells.slice(at + extra + 1)];
    }
    const value = (f: QueryGpuField): string | undefined => {
      const at = fields.indexOf(f);
      if (at < 0) return undefined;
      const v = cells[at]!;
      return v === '' || UNAVAILABLE.test(v) ? undefined : v;
    };
    const required = (f: QueryGpuField): string => {
      const v = value(f);
      if (v === undefined) throw new NvidiaSmiParseError(cmd, `${where}: ${f} is unavailable ("${cells[fields.indexOf(f)]}")`);
      return v;
    };
    const indexText = required('index');
    if (!/^\d+$/.test(indexText)) throw new NvidiaSmiParseError(cmd, `${where}: index "${indexText}" is not a whole number`);
    const uuid = required('uuid');
    if (!/^GPU-[0-9a-fA-F-]+$/.test(uuid)) throw new NvidiaSmiParseError(cmd, `${where}: uuid "${uuid}" is not a GPU UUID (GPU-…)`);
    const memoryText = required('memory.total');
    if (!/^\d+$/.test(memoryText)) {
      throw new NvidiaSmiParseError(cmd, `${where}: memory.total "${memoryText}" is not a whole number of MiB (was the query run without nounits?)`);
    }
    const gpu: SmiGpu = { index: Number(indexText), uuid, name: required('name'), memoryMiB: Number(memoryText) };
    const cc = value('compute_cap');
    if (cc !== undefined) {
      if (!/^\d+\.\d+$/.test(cc)) throw new NvidiaSmiParseError(cmd, `${where}: compute_cap "${cc}" is not of the form 9.0`);
      gpu.computeCapability = cc;
    }
    const mig = value('mig.mode.current');
    if (mig !== undefined) gpu.migEnabled = mig.toLowerCase() === 'enabled';
    const bus = value('pci.bus_id');
    if (bus !== undefined) gpu.pciBusId = bus;
    const driver = value('driver_version');
    if (driver !== undefined) gpu.driverVersion = driver;
    gpus.push(gpu);
  });
  const seen = new Set<number>();
  for (const g of gpus) {
    if (seen.has(g.index)) throw new NvidiaSmiParseError(cmd, `GPU index ${g.index} appears twice`);
    seen.add(g.index);
  }
  return gpus.sort((a, b) => a.index - b.index);
}

// ---------------------------------------------------------------------------------------
// topo -m

/** How two devices connect, as the matrix legend spells it (SOC and PSB are pre-R384 names). */
const LINK_CODE = /^(X|SYS|SOC|NODE|PHB|PXB|PIX|PSB|NV\d+)$/;

/** The columns after the device columns; several words each, so the header cannot be split on spaces alone. */
const AFFINITY_COLUMNS = ['CPU Affinity', 'NUMA Affinity', 'GPU NUMA ID'] as const;
type AffinityColumn = (typeof AFFINITY_COLUMNS)[number];

export interface TopoGpu {
  index: number;
  /** Link code to every other device column (GPU0, NIC3, mlx5_0, …); the diagonal is X. */
  links: Record<string, string>;
  cpuAffinity?: string;
  /** NUMA Affinity: the NUMA node of the CPUs nearest the GPU; absent when N/A or not printed. */
  numaNode?: number;
  /** GPU NUMA ID: the NUMA node of the GPU's own memory (Grace Hopper and the like). */
  gpuNumaId?: number;
  /** GPUs this one has NVLinks to, ascending, with the number of links to each. */
  nvlinkPeers: number[];
  nvlinks: Record<number, number>;
}

export interface TopoMatrix {
  /** Device columns in header order: GPU0…GPUn, then NICs (NIC0… or device names on older drivers). */
  columns: string[];
  gpus: TopoGpu[];
  /** Non-GPU columns with the device the NIC legend names (absent on drivers without a legend). */
  nics: { name: string; device?: string }[];
}

const optionalInt = (v: string | undefined): number | undefined => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);

/** `nvidia-smi topo -m`: the matrix's GPU rows, their affinity columns and the NIC legend. */
export function parseTopoMatrix(text: string): TopoMatrix {
  const cmd = 'topo -m';
  // Some drivers underline the header with ANSI escapes even into a pipe.
  const lines = text.replace(/\x1b\[[0-9;]*m/g, '').split(/\r?\n/);
  const headerAt = lines.findIndex((l) => /^\s+GPU0(\s|$)/.test(l));
  if (headerAt < 0) throw new NvidiaSmiParseError(cmd, 'no header row naming the GPU columns (GPU0 …)');
  let header = lines[headerAt]!.trim();
  // Join each several-word column title into one token so the rest splits on whitespace.
  for (const col of AFFINITY_COLUMNS) header = header.replace(col, col.replace(/ /g, '\u0000'));
  const titles = header.split(/\s+/).map((t) => t.replace(/\u0000/g, ' '));
  const firstAffinity = titles.findIndex((t) => (AFFINITY_COLUMNS as readonly string[]).includes(t));
  const columns = firstAffinity < 0 ? titles : titles.slice(0, firstAffinity);
  const extras = (firstAffinity < 0 ? [] : titles.slice(firstAffinity)) as AffinityColumn[];
  for (const t of extras) {
    if (!(AFFINITY_COLUMNS as readonly string[]).includes(t)) throw new NvidiaSmiParseError(cmd, `header line ${headerAt + 1}: unexpected column "${t}" after the affinity columns`);
  }
  const gpuColumns = columns.filter((c) => /^GPU\d+$/.test(c));
  columns.forEach((c, i) => {
    if (i < gpuColumns.length && c !== `GPU${i}`) throw new NvidiaSmiParseError(cmd, `header line ${headerAt + 1}: column ${i + 1} is "${c}", expected GPU${i}`);
  });

  const gpus: TopoGpu[] = [];
  const rowsSeen = new Set<string>();
  let end = headerAt + 1;
  for (; end < lines.length; end++) {
    const line = lines[end]!;
    if (line.trim() === '' || /^\s*Legend:/.test(line)) break;
    const where = `line ${end + 1}`;
    const tokens = line.trim().split(/\s+/);
    const label = tokens[0]!;
    if (!columns.includes(label)) throw new NvidiaSmiParseError(cmd, `${where}: row "${label}" is not one of the header's columns (${columns.join(', ')})`);
    rowsSeen.add(label);
    const cells = tokens.slice(1);
    if (cells.length < columns.length) {
      throw new NvidiaSmiParseError(cmd, `${where}: row ${label} has ${cells.length} link values for ${columns.length} columns`);
    }
    const links: Record<string, string> = {};
    columns.forEach((c, i) => {
      const code = cells[i]!;
      if (!LINK_CODE.test(code)) throw new NvidiaSmiParseError(cmd, `${where}: row ${label}, column ${c}: "${code}" is not a link type (X, SYS, NODE, PHB, PXB, PIX, NV#)`);
      if ((c === label) !== (code === 'X')) {
        throw new NvidiaSmiParseError(cmd, `${where}: row ${label}, column ${c}: ${code === 'X' ? 'X off the diagonal' : `"${code}" on the diagonal, expected X`} (columns misaligned?)`);
      }
      links[c] = code;
    });
    if (!/^GPU\d+$/.test(label)) continue; // NIC rows add nothing the GPU rows lack
    const extra: Partial<Record<AffinityColumn, string>> = {};
    extras.forEach((col, i) => {
      const v = cells[columns.length + i];
      if (v !== undefined) extra[col] = v;
    });
    const nvlinks: Record<number, number> = {};
    for (const c of gpuColumns) {
      const m = /^NV(\d+)$/.exec(links[c]!);
      if (m) nvlinks[Number(c.slice(3))] = Number(m[1]);
    }
    const gpu: TopoGpu = { index: Number(label.slice(3)), links, nvlinkPeers: Object.keys(nvlinks).map(Number).sort((a, b) => a - b), nvlinks };
    const cpu = extra['CPU Affinity'];
    if (cpu !== undefined && cpu !== 'N/A') gpu.cpuAffinity = cpu;
    const numa = optionalInt(extra['NUMA Affinity']);
    if (numa !== undefined) gpu.numaNode = numa;
    const gpuNuma = optionalInt(extra['GPU NUMA ID']);
    if (gpuNuma !== undefined) gpu.gpuNumaId = gpuNuma;
    gpus.push(gpu);
  }
  for (const c of gpuColumns) {
    if (!rowsSeen.has(c)) throw new NvidiaSmiParseError(cmd, `no row for ${c} (output cut short?)`);
  }
  // An NVLink is one link seen from both ends; a one-sided entry would be a misread.
  const byIndex = new Map(gpus.map((g) => [g.index, g]));
  for (const g of gpus) {
    for (const p of g.nvlinkPeers) {
      if (byIndex.get(p)?.nvlinks[g.index] !== g.nvlinks[p]) throw new NvidiaSmiParseError(cmd, `GPU${g.index}–GPU${p} NVLink is not symmetric`);
    }
  }

  const legend = new Map<string, string>();
  for (let i = end; i < lines.length; i++) {
    const m = /^\s*(NIC\d+):\s*(\S+)\s*$/.exec(lines[i]!);
    if (m) legend.set(m[1]!, m[2]!);
  }
  const nics = columns.filter((c) => !gpuColumns.includes(c)).map((name) => {
    const device = legend.get(name);
    return device === undefined ? { name } : { name, device };
  });
  return { columns, gpus, nics };
}

export interface NvlinkIsland {
  /** GPU indices, ascending. */
  devices: number[];
  /** Every pair of the island has a direct NVLink (as through an NVSwitch). */
  allToAll: boolean;
  /** The fewest links between any linked pair (NV18 on H100 boards, NV12 on A100). */
  links: number;
}

/**
 * Connected components of the NVLink graph with at least two GPUs, numbered by their
 * lowest GPU index. GPUs without NVLinks belong to no island.
 */
export function nvlinkIslands(matrix: TopoMatrix): NvlinkIsland[] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  for (const g of matrix.gpus) parent.set(g.index, g.index);
  for (const g of matrix.gpus) {
    for (const p of g.nvlinkPeers) {
      const a = find(g.index);
      const b = find(p);
      if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
    }
  }
  const groups = new Map<number, number[]>();
  for (const g of [...matrix.gpus].sort((a, b) => a.index - b.index)) {
    if (g.nvlinkPeers.length === 0) continue;
    const root = find(g.index);
    const list = groups.get(root) ?? [];
    list.push(g.index);
    groups.set(root, list);
  }
  const byIndex = new Map(matrix.gpus.map((g) => [g.index, g]));
  return [...groups.values()].sort((a, b) => a[0]! - b[0]!).map((devices) => {
    let allToAll = true;
    let links = Infinity;
    for (const i of devices) {
      const g = byIndex.get(i)!;
      if (g.nvlinkPeers.length !== devices.length - 1) allToAll = false;
      for (const p of g.nvlinkPeers) links = Math.min(links, g.nvlinks[p]!);
    }
    return { devices, allToAll, links };
  });
}

// ---------------------------------------------------------------------------------------
// MIG: -L and mig -lgi

export interface SmiMigListing {
  profile: string;
  /** The MIG device's number under its GPU in -L ("Device  2:"). */
  device: number;
  uuid: string;
  /** GPU and compute instance ids, when the UUID carries them (R450/R460 form MIG-GPU-<uuid>/<gi>/<ci>). */
  gpuInstance?: number;
  computeInstance?: number;
}

export interface SmiListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig: SmiMigListing[];
}

/** `nvidia-smi -L`: every GPU with the MIG devices listed under it. */
export function parseGpuList(text: string): SmiListedGpu[] {
  const cmd = '-L';
  const gpus: SmiListedGpu[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || /^No devices were found/i.test(line.trim())) return;
    const where = `line ${i + 1}`;
    const gpu = /^GPU (\d+): (.+?) \(UUID: (GPU-[0-9a-fA-F-]+)\)\s*$/.exec(line);
    if (gpu) {
      gpus.push({ index: Number(gpu[1]), name: gpu[2]!, uuid: gpu[3]!, mig: [] });
      return;
    }
    const mig = /^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)\s*$/.exec(line);
    if (mig) {
      const owner = gpus[gpus.length - 1];
      if (!owner) throw new NvidiaSmiParseError(cmd, `${where}: a MIG device before any GPU line`);
      const listing: SmiMigListing = { profile: mig[1]!, device: Number(mig[2]), uuid: mig[3]! };
      const legacy = /^MIG-GPU-[0-9a-fA-F-]+\/(\d+)\/(\d+)$/.exec(listing.uuid);
      if (legacy) {
        listing.gpuInstance = Number(legacy[1]);
        listing.computeInstance = Number(legacy[2]);
      }
      owner.mig.push(listing);
      return;
    }
    throw new NvidiaSmiParseError(cmd, `${where}: neither a GPU nor a MIG device line: "${line.trim()}"`);
  });
  return gpus;
}

export interface SmiGpuInstance {
  gpu: number;
  profile: string;
  profileId: number;
  instance: number;
  placementStart: number;
  placementSize: number;
}

/** `nvidia-smi mig -lgi`: the GPU instances of every MIG-enabled GPU. */
export function parseMigGpuInstances(text: string): SmiGpuInstance[] {
  const cmd = 'mig -lgi';
  if (/No MIG-enabled devices found/i.test(text)) return [];
  if (!/GPU instances:/.test(text)) throw new NvidiaSmiParseError(cmd, 'no "GPU instances:" table');
  const out: SmiGpuInstance[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!/^\|\s+\d+\s/.test(line)) return; // borders, titles and column headers
    const m = /^\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+):(\d+)\s+\|\s*$/.exec(line);
    if (!m) throw new NvidiaSmiParseError(cmd, `line ${i + 1}: not a GPU instance row (GPU, MIG profile, profile id, instance id, start:size): "${line.trim()}"`);
    out.push({ gpu: Number(m[1]), profile: m[2]!, profileId: Number(m[3]), instance: Number(m[4]), placementStart: Number(m[5]), placementSize: Number(m[6]) });
  });
  return out;
}

export interface JoinedMigDevice {
  profile: string;
  uuid: string;
  /** GPU instance id; the -L device number when no -lgi listing was available. */
  instance: number;
  /** True when `instance` is a real GPU instance id. */
  instanceKnown: boolean;
}

/**
 * Pairs each GPU's -L MIG devices with their GPU instance ids. Current drivers print
 * opaque MIG UUIDs, so the pairing goes by profile: -L lists a GPU's MIG devices in
 * instance-id order, so the k-th device of a profile is the k-th instance of that profile
 * by ascending id. Instances of one profile are interchangeable to a scheduler, so even a
 * driver that listed them in another order would only swap equal slices.
 */
export function joinMigDevices(listed: SmiListedGpu, instances: readonly SmiGpuInstance[] | undefined): JoinedMigDevice[] {
  const pools = new Map<string, SmiGpuInstance[]>();
  for (const gi of instances ?? []) {
    if (gi.gpu !== listed.index) continue;
    const pool = pools.get(gi.profile) ?? [];
    pool.push(gi);
    pools.set(gi.profile, pool);
  }
  for (const pool of pools.values()) pool.sort((a, b) => a.instance - b.instance);
  return listed.mig.map((m) => {
    if (m.gpuInstance !== undefined) return { profile: m.profile, uuid: m.uuid, instance: m.gpuInstance, instanceKnown: true };
    const gi = pools.get(m.profile)?.shift();
    return gi ? { profile: m.profile, uuid: m.uuid, instance: gi.instance, instanceKnown: true } : { profile: m.profile, uuid: m.uuid, instance: m.device, instanceKnown: false };
  });
}

// ---------------------------------------------------------------------------------------
// Banner

/** "CUDA Version: 12.2" from plain `nvidia-smi` or `nvidia-smi -q`; undefined when absent ("Not Found"). */
export function parseCudaVersion(text: string): string | undefined {
  return /CUDA Version\s*:\s*(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

// ---------------------------------------------------------------------------------------
// Derived facts

/** Architecture names as AcceleratorClasses spell them, from the CUDA compute capability. */
export function architectureOf(computeCapability: string | undefined): string | undefined {
  const m = computeCapability === undefined ? null : /^(\d+)\.(\d+)$/.exec(computeCapability);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 6) return 'pascal';
  if (major === 7) return minor >= 5 ? 'turing' : 'volta';
  if (major === 8) return minor >= 9 ? 'ada-lovelace' : 'ampere';
  if (major === 9) return 'hopper';
  if (major >= 10 && major <= 12) return 'blackwell';
  return undefined;
}
