// Process identity from /proc. A pid alone is not an identity: after a restart the agent may
// find its recorded pid reused by an unrelated process, so every check pairs the pid with
// its start time (field 22 of /proc/<pid>/stat, clock ticks since boot), which the kernel
// never changes for a process and which a later process with the same pid cannot share.
import fs from 'node:fs';

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, X, ... */
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and ')'; the fields after the last ')' are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime: Number(rest[19]) };
}

/** True when pid still names the process that started at startTime and has not exited (a zombie has). */
export function isAlive(pid: number | null | undefined, startTime: number | null | undefined): boolean {
  if (!pid || startTime == null) return false;
  const s = readStat(pid);
  return !!s && s.startTime === startTime && s.state !== 'Z' && s.state !== 'X';
}

/** Live members of process group pgrp (a /proc scan: only on kill paths, never per poll). */
export function groupMembers(pgrp: number): ProcStat[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcStat[] = [];
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const s = readStat(pid);
    if (s && s.pgrp === pgrp && s.state !== 'Z' && s.state !== 'X') out.push(s);
  }
  return out;
}

/**
 * SIGKILLs the process group led by the shim (shim, workload and whatever the workload
 * forked without leaving the group), provided that group is still ours: either the leader
 * is our shim, or the leader is gone and no other process holds its pid (the kernel does
 * not hand out a pid that is still in use as a group id, so surviving members are ours).
 * Returns how many processes were in the group.
 */
export function killGroup(shimPid: number, shimStartTime: number | null | undefined): number {
  const leader = readStat(shimPid);
  if (leader && leader.startTime !== shimStartTime && leader.state !== 'Z') return 0; // pid reused
  // Members of our group were all born after the shim; anything older is not ours.
  const members = groupMembers(shimPid).filter((m) => shimStartTime == null || m.startTime >= shimStartTime);
  if (!members.length) return 0;
  try {
    process.kill(-shimPid, 'SIGKILL');
  } catch {
    // ESRCH: the group emptied meanwhile
  }
  return members.length;
}
