// Resource limits through cgroup v2, where the OS allows it: one child cgroup per instance
// under <root>/k8s4ai with memory.max and cpu.max. Anything that stands in the way (cgroup
// v1 or hybrid mounts, a read-only /sys/fs/cgroup in a container, controllers not delegated
// to us) downgrades the instance to "no limits" with a note saying why; it never fails a start.
import fs from 'node:fs';
import path from 'node:path';

export interface ResourceLimits {
  memoryBytes?: number;
  /** CPU in thousandths of a core, as Kubernetes' millicores. */
  cpuMilli?: number;
}

/** Where an instance's workload is placed; handed to the shim, which joins it before spawning. */
export interface CgroupPlacement {
  /** The cgroup2 mount (default /sys/fs/cgroup). */
  mount: string;
  /** The instance's cgroup directory. */
  dir: string;
  /** What /proc/self/cgroup must say once joined; the shim checks it, so a failed move is noticed. */
  expect: string;
}

export const LimitsMode = { Cgroup: 'cgroup', None: 'none' } as const;
export type LimitsMode = (typeof LimitsMode)[keyof typeof LimitsMode];

export interface CgroupPlan {
  limits: LimitsMode;
  limitsNote?: string;
  cgroup?: CgroupPlacement;
}

const CPU_PERIOD_US = 100_000;
// The kernel rejects quotas below 1 ms per period.
const CPU_MIN_QUOTA_US = 1_000;

export function wantsLimits(limits: ResourceLimits | undefined): boolean {
  return limits?.memoryBytes != null || limits?.cpuMilli != null;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Creates and configures <mount>/k8s4ai/<uid>; synchronous, as it is a handful of small writes. */
export function prepareCgroup(mount: string, uid: string, limits: ResourceLimits | undefined): CgroupPlan {
  if (!wantsLimits(limits)) return { limits: LimitsMode.None };
  const none = (why: string): CgroupPlan => ({ limits: LimitsMode.None, limitsNote: `resource limits not applied: ${why}` });
  if (process.platform !== 'linux') return none(`cgroups need Linux (this is ${process.platform})`);

  let available: string[];
  try {
    available = fs.readFileSync(path.join(mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    const hybrid = fs.existsSync(path.join(mount, 'unified')) || fs.existsSync(path.join(mount, 'memory'));
    return none(`cgroup v2 is not mounted at ${mount}${hybrid ? ' (it holds a cgroup v1/hybrid hierarchy)' : ''}`);
  }
  const needed = [...(limits!.memoryBytes != null ? ['memory'] : []), ...(limits!.cpuMilli != null ? ['cpu'] : [])];
  const missing = needed.filter((c) => !available.includes(c));
  if (missing.length) return none(`controller(s) ${missing.join(', ')} not available in ${mount}/cgroup.controllers`);

  const parent = path.join(mount, 'k8s4ai');
  const dir = path.join(parent, uid);
  try {
    fs.mkdirSync(parent, { recursive: true });
    // Limits on a cgroup need the controller enabled in its parent's subtree_control, all
    // the way down from the mount.
    enableControllers(mount, needed);
    enableControllers(parent, needed);
    fs.mkdirSync(dir, { recursive: true });
    if (limits!.memoryBytes != null) {
      fs.writeFileSync(path.join(dir, 'memory.max'), String(Math.max(0, Math.floor(limits!.memoryBytes))));
      // Without this a limited workload swaps instead of being OOM-killed, where swap exists.
      if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    }
    if (limits!.cpuMilli != null) {
      const quota = Math.max(CPU_MIN_QUOTA_US, Math.round((limits!.cpuMilli * CPU_PERIOD_US) / 1000));
      fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
    }
  } catch (err) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // never created, or not ours to remove
    }
    return none(errMessage(err));
  }
  return { limits: LimitsMode.Cgroup, cgroup: { mount, dir, expect: '/' + path.relative(mount, dir).split(path.sep).join('/') } };
}

function enableControllers(cgroupDir: string, controllers: string[]): void {
  const file = path.join(cgroupDir, 'cgroup.subtree_control');
  const enabled = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
  for (const c of controllers) if (!enabled.includes(c)) fs.writeFileSync(file, `+${c}`);
}

/** Kills whatever is still in the cgroup (cgroup.kill, Linux 5.14+). False if unsupported. */
export function killCgroup(dir: string): boolean {
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes an instance's cgroup once it is empty. Killed processes take a moment to leave
 * it, so rmdir (EBUSY while populated) is retried for a while.
 */
export async function removeCgroup(dir: string, timeoutMs = 5_000): Promise<void> {
  killCgroup(dir);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
