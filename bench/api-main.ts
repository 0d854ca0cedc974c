// The API benchmark's command line: `npm run bench -- api [flags]` (or `npx k8s4ai bench api`).
//
//   npm run bench -- api [--stores sqlite,etcd] [--duration 5] [--clients 1,16]
//                        [--objects 10000] [--watchers 100] [--watch-rate 200]
//                        [--watch-duration 5] [--warmup 1] [--json bench/results/api.json]
//                        [--profile DIR]
//
// Prints a table on stdout (progress and notes on stderr) and writes a JSON report.

import { cpus, totalmem, release, tmpdir, platform, arch, loadavg } from 'node:os';
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runApiBench, renderTable, writeJson, PHASES, type ApiBenchOptions, type Phase, type StoreKind } from './api.ts';
import { argHelpers } from './lib/args.ts';

const USAGE = `usage: npm run bench -- api [options]

  --stores LIST         stores to measure, comma-separated: sqlite,etcd (default both)
  --duration SECONDS    length of each create/update phase (default 5)
  --clients LIST        concurrent clients for creates and updates (default 1,16)
  --objects N           objects in the list phase (default 10000)
  --watchers N          concurrent watches in the watch phase (default 100)
  --watch-rate N        creates per second during the watch phase (default 200)
  --watch-duration S    length of the watch phase's paced creates (default 5)
  --warmup SECONDS      create load before the measured phases, per store (default 1)
  --phases LIST         phases to run: creates,updates,list,watch (default all)
  --json FILE           where to write the report (default bench/results/api.json)
  --profile DIR         write a V8 CPU profile of the server per store into DIR/<store>
                        and print its hot spots
  -h, --help            this text
`;

const { positiveNumber, list, parse } = argHelpers(USAGE);

const FS_TYPES: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x794c7630: 'overlayfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x6969: 'nfs' };

export function machine() {
  const cpu = cpus();
  let etcdVersion: string | undefined;
  try {
    etcdVersion = execFileSync(process.env.K8S4AI_ETCD_BIN || '/usr/bin/etcd', ['--version'], { encoding: 'utf8', timeout: 5000 }).split('\n')[0]?.trim();
  } catch {
    etcdVersion = undefined;
  }
  let tmpFs: string | undefined;
  try {
    const type = statfsSync(tmpdir()).type;
    tmpFs = FS_TYPES[type] ?? `0x${type.toString(16)}`;
  } catch {
    tmpFs = undefined;
  }
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    etcd: etcdVersion,
    tmpdir: tmpdir(),
    tmpdirFilesystem: tmpFs,
    /** 1/5/15-minute load averages when the run started: other work on the machine skews the numbers. */
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function commandLine(): string {
  const script = relative(process.cwd(), process.argv[1]!) || process.argv[1]!;
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['node', ...process.execArgv, script, ...process.argv.slice(2)].map(quote).join(' ');
}

export async function run(rest: string[]): Promise<void> {
  const parsed = parse(rest, {
    stores: { type: 'string', default: 'sqlite,etcd' },
    duration: { type: 'string', default: '5' },
    clients: { type: 'string', default: '1,16' },
    objects: { type: 'string', default: '10000' },
    watchers: { type: 'string', default: '100' },
    'watch-rate': { type: 'string', default: '200' },
    'watch-duration': { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    phases: { type: 'string', default: PHASES.join(',') },
    json: { type: 'string' },
    profile: { type: 'string' },
  });
  if (!parsed) return;
  const opts: ApiBenchOptions = {
    stores: list<StoreKind>('stores', parsed.stores!, ['sqlite', 'etcd']),
    durationS: positiveNumber('duration', parsed.duration!, false),
    clients: list('clients', parsed.clients!).map((c) => positiveNumber('clients', c)),
    objects: positiveNumber('objects', parsed.objects!),
    watchers: positiveNumber('watchers', parsed.watchers!),
    watchRate: positiveNumber('watch-rate', parsed['watch-rate']!, false),
    watchDurationS: positiveNumber('watch-duration', parsed['watch-duration']!, false),
    warmupS: parsed.warmup === '0' ? 0 : positiveNumber('warmup', parsed.warmup!, false),
    phases: list<Phase>('phases', parsed.phases!, PHASES),
    ...(parsed.profile ? { profileDir: resolve(parsed.profile) } : {}),
  };
  // Default: bench/results/api.json in this checkout, wherever the command runs from.
  const jsonFile = parsed.json ? resolve(parsed.json) : fileURLToPath(new URL('results/api.json', import.meta.url));

  const header = {
    benchmark: 'api',
    command: commandLine(),
    ...(process.env.npm_lifecycle_event === 'bench' ? { npmCommand: `npm run bench -- ${process.argv.slice(2).join(' ')}` } : {}),
    machine: machine(),
    startedAt: new Date().toISOString(),
    options: opts,
  };
  process.stderr.write(`${header.command}\n${header.machine.cores} cores (${header.machine.cpuModel}), node ${header.machine.node}, tmp on ${header.machine.tmpdirFilesystem}\n`);
  if (header.machine.loadAverageAtStart[0]! > 0.5) {
    process.stderr.write(`warning: the 1-minute load average is ${header.machine.loadAverageAtStart[0]} before the run: other work on this machine will skew the numbers\n`);
  }

  const results = await runApiBench(opts);
  const doc = { ...header, finishedAt: new Date().toISOString(), loadAverageAtFinish: loadavg().map((l) => Math.round(l * 100) / 100), ...results };
  writeJson(jsonFile, doc);

  const out = [
    `k8s4ai API benchmark: ${header.machine.cores} cores, node ${header.machine.node}`,
    `command: ${header.command}`,
    '',
    renderTable(results, opts),
    '',
  ];
  for (const [store, r] of Object.entries(results)) {
    if (r.details.profile?.length) out.push(`server CPU profile, ${store}:`, ...r.details.profile, '');
  }
  const shown = relative(process.cwd(), jsonFile);
  out.push(`written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

