// What a machine has apart from its GPUs: CPUs, memory, the disk under the agent's data
// directory, its name and address, its OS, and (on Linux) its NUMA nodes. Everything comes
// from the os module, statfs and sysfs reads: no commands, no shell.
import { hostname, cpus, totalmem, networkInterfaces, release, type, type NetworkInterfaceInfo } from 'node:os';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export interface MachineInfo {
  hostname: string;
  /** Online hardware threads, as Kubernetes counts cpu capacity. */
  cpus: number;
  memoryBytes: number;
  /** Size of the filesystem holding the data directory; absent when it cannot be read. */
  diskBytes?: number;
  /** First non-internal IPv4 address; absent on a machine with none. */
  internalIP?: string;
  /** PRETTY_NAME from os-release, e.g. "Ubuntu 22.04.4 LTS"; else the kernel's name and release. */
  operatingSystem: string;
  /** NUMA node ids from sysfs, ascending; absent where sysfs has none (not Linux). */
  numaNodes?: number[];
}

export interface ProbeOptions {
  dataDir: string;
  /** Where sysfs is mounted; tests point it at a fixture tree. Default /sys. */
  sysfsRoot?: string;
  /** Default /etc/os-release. */
  osReleasePath?: string;
}

export async function probeMachine(opts: ProbeOptions): Promise<MachineInfo> {
  const [diskBytes, operatingSystem, numa] = await Promise.all([
    diskCapacity(opts.dataDir),
    readOperatingSystem(opts.osReleasePath),
    numaNodes(opts.sysfsRoot),
  ]);
  const info: MachineInfo = { hostname: hostname(), cpus: cpus().length, memoryBytes: totalmem(), operatingSystem };
  if (diskBytes !== undefined) info.diskBytes = diskBytes;
  const ip = firstInternalIPv4();
  if (ip !== undefined) info.internalIP = ip;
  if (numa !== undefined) info.numaNodes = numa;
  return info;
}

/** The first IPv4 address that is not loopback, in the order the kernel lists interfaces. */
export function firstInternalIPv4(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string | undefined {
  for (const addrs of Object.values(interfaces)) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return undefined;
}

/** PRETTY_NAME of an os-release file, unquoted. */
export function parseOsRelease(text: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const m = /^PRETTY_NAME=(.*)$/.exec(line.trim());
    if (!m) continue;
    const v = m[1]!.trim().replace(/^(["'])(.*)\1$/, '$2').replace(/\\(["$`\\])/g, '$1');
    return v === '' ? undefined : v;
  }
  return undefined;
}

async function readOperatingSystem(path = '/etc/os-release'): Promise<string> {
  try {
    const name = parseOsRelease(await readFile(path, 'utf8'));
    if (name !== undefined) return name;
  } catch {
    // No os-release (macOS, minimal containers): the kernel's own name is the best there is.
  }
  return `${type()} ${release()}`;
}

/**
 * Bytes of the filesystem holding `dir`. The data directory may not exist yet on a first
 * start, so the nearest existing ancestor is measured: it is where the directory will be.
 */
export async function diskCapacity(dir: string): Promise<number | undefined> {
  let at = resolve(dir);
  for (;;) {
    try {
      const s = await statfs(at);
      return s.blocks * s.bsize;
    } catch (err) {
      const parent = dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) return undefined;
      at = parent;
    }
  }
}

/** NUMA node ids under <sysfs>/devices/system/node, ascending; undefined when unreadable. */
export async function numaNodes(sysfsRoot = '/sys'): Promise<number[] | undefined> {
  try {
    const ids = (await readdir(join(sysfsRoot, 'devices/system/node'))).flatMap((n) => {
      const m = /^node(\d+)$/.exec(n);
      return m ? [Number(m[1])] : [];
    });
    return ids.length > 0 ? ids.sort((a, b) => a - b) : undefined;
  } catch {
    return undefined;
  }
}

/** nvidia-smi's 8-digit PCI domain (00000000:18:00.0) in sysfs's 4-digit, lower-case form (0000:18:00.0). */
export function sysfsPciAddress(busId: string): string {
  const m = /^([0-9a-fA-F]+):([0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])$/.exec(busId.trim());
  if (!m) return busId.toLowerCase();
  return `${m[1]!.slice(-4).padStart(4, '0')}:${m[2]}`.toLowerCase();
}

/**
 * The NUMA node sysfs gives a PCI device, for drivers whose topo -m lacks the NUMA
 * Affinity column; undefined when unknown (the kernel writes -1 without NUMA).
 */
export async function pciNumaNode(busId: string, sysfsRoot = '/sys'): Promise<number | undefined> {
  try {
    const v = Number((await readFile(join(sysfsRoot, 'bus/pci/devices', sysfsPciAddress(busId), 'numa_node'), 'utf8')).trim());
    return Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined;
  }
}
