// Summarizes V8 CPU profiles (node --cpu-prof) of the server process: the functions with
// the most self time, and the project functions with the most inclusive time.
//
// Line numbers: tsx runs TypeScript through esbuild, so the profile's lines are those of
// the generated JavaScript. For a named function of a project file we look its
// definition up in the TypeScript source instead and print that line; other lines are
// marked "~" (generated code, approximately the source line).

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const sourceCache = new Map<string, string[] | undefined>();

function where(frame: CallFrame): string {
  if (!frame.url) return '(native)';
  let path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
  if (path.startsWith(ROOT)) path = relative(ROOT, path);
  const generatedLine = frame.lineNumber + 1;
  if (!path.startsWith('node_modules') && !path.startsWith('node:') && /\.ts$/.test(path) && frame.functionName) {
    const line = definitionLine(path, frame.functionName);
    if (line) return `${path}:${line}`;
  }
  return `${path}:~${generatedLine}`;
}

function definitionLine(path: string, name: string): number | undefined {
  if (!sourceCache.has(path)) {
    const abs = join(ROOT, path);
    sourceCache.set(path, existsSync(abs) ? readFileSync(abs, 'utf8').split('\n') : undefined);
  }
  const lines = sourceCache.get(path);
  if (!lines) return undefined;
  const short = name.split('.').pop()!.replace(/[^\w$]/g, '');
  if (!short) return undefined;
  const patterns = [
    new RegExp(`\\bfunction\\*?\\s+${short}\\b`),
    new RegExp(`^\\s*(?:(?:private|public|protected|static|async|readonly|get|set)\\s+)*${short}\\s*(?:<[^>]*>)?\\(`),
    new RegExp(`\\b(?:const|let|var)\\s+${short}\\s*=`),
    new RegExp(`\\b${short}\\s*[:=]\\s*(?:async\\s*)?(?:\\(|function)`),
  ];
  for (const re of patterns) {
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return i + 1;
  }
  return undefined;
}

function label(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'}  ${where(frame)}`;
}

/** Reads every .cpuprofile in `dir`; returns printable lines (also written to stderr by the caller). */
export function summarizeProfiles(dir: string, top = 20): string[] {
  if (!existsSync(dir)) return [];
  // One file per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the
  // main thread, the others are tsx's module-loader thread (startup only).
  const files = readdirSync(dir).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f));
  const lines: string[] = [];
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    lines.push(...summarize(profile, top).map((l) => l));
    lines.push(`(profile: ${join(dir, file)})`);
  }
  return lines;
}

export function summarize(profile: CpuProfile, top = 20): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Self time per node from the samples and their time deltas (µs).
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = new Set(['(idle)', '(program)', '(garbage collector)']);
  let idleUs = 0;
  for (const [id, us] of selfUs) if (byId.get(id)!.callFrame.functionName === '(idle)') idleUs += us;
  const busyUs = totalUs - idleUs;

  // Self time by function.
  const self = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const key = label(byId.get(id)!.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
  }

  // Inclusive time by function, counting each function once per stack (recursion).
  const inclusive = new Map<string, number>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackKeys = new Map<number, Set<string>>();
  const keysOf = (id: number): Set<string> => {
    let keys = stackKeys.get(id);
    if (keys) return keys;
    const p = parent.get(id);
    keys = new Set(p === undefined ? [] : keysOf(p));
    const frame = byId.get(id)!.callFrame;
    if (frame.url && !idle.has(frame.functionName)) keys.add(label(frame));
    stackKeys.set(id, keys);
    return keys;
  };
  for (const [id, us] of selfUs) for (const key of keysOf(id)) inclusive.set(key, (inclusive.get(key) ?? 0) + us);

  const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const out: string[] = [];
  out.push(`CPU profile: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s busy (not idle); percentages are of busy time`);
  out.push(`top ${top} by self time:`);
  for (const [key, us] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    out.push(`  ${pct(us)} ${ms(us)}  ${key}`);
  }
  out.push(`top ${top} project functions (src/) by inclusive time:`);
  for (const [key, us] of [...inclusive].filter(([k]) => k.includes(' src/')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    out.push(`  ${pct(us)} ${ms(us)}  ${key}`);
  }
  return out;
}
