// CPU accounting per phase from /proc (Linux): how many cores the server, etcd, the load
// generator, the watch worker and everything else on the machine ("other") used on
// average while the phase ran. On a 2-core machine this tells a saturated CPU from a slow
// server, and shows when other work on the machine skewed a number.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { nowMs, round } from './stats.ts';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process, in ticks; undefined when it is gone or there is no /proc. */
function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15 (1-based).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Busy ticks of the whole machine (all cores): everything but idle and iowait. */
function machineTicks(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [, ...nums] = line.trim().split(/\s+/);
    const v = nums.map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal; guest is inside user
    return total - v[3]! - v[4]!;
  } catch {
    return undefined;
  }
}

/** The pid of a direct child of this process named `comm` (e.g. the etcd startEtcd() spawned). */
export function childPid(comm: string): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (name === comm && ppid === process.pid) return Number(entry);
      } catch {
        // the process went away meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** The command line of a process, split into its arguments. */
export function processArgs(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Average cores used during the phase, per process name, plus "other" (the rest of the machine). */
export type CpuUsage = Record<string, number>;

export interface CpuMeter {
  stop(): CpuUsage | undefined;
}

export function startCpuMeter(pids: Record<string, number | undefined>): CpuMeter {
  const named = Object.entries({ loadgen: process.pid, ...pids }).filter((e): e is [string, number] => e[1] !== undefined);
  const before = new Map(named.map(([name, pid]) => [name, processTicks(pid)]));
  const machineBefore = machineTicks();
  const t0 = nowMs();
  return {
    stop() {
      const wallS = (nowMs() - t0) / 1000;
      const machineAfter = machineTicks();
      if (machineBefore === undefined || machineAfter === undefined || wallS <= 0) return undefined;
      const hz = ticksPerSecond();
      const usage: CpuUsage = {};
      let ours = 0;
      for (const [name, pid] of named) {
        const a = before.get(name);
        const b = processTicks(pid);
        if (a === undefined || b === undefined) continue;
        ours += b - a;
        usage[name] = round((b - a) / hz / wallS, 2);
      }
      usage.other = round(Math.max(0, machineAfter - machineBefore - ours) / hz / wallS, 2);
      return usage;
    },
  };
}
