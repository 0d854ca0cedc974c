// `npm run bench -- proxy` (or `npx k8s4ai bench proxy`): what the router costs on the request
// path, live, on loopback, against nginx doing the same job.
//
//   npm run bench -- proxy [--duration 10] [--warmup 1] [--rate 1000] [--connections 64]
//                          [--backends 2] [--backend fixed|engine] [--kinds short,stream]
//                          [--paths direct,router,nginx] [--modes rate,max] [--stream-tokens 16]
//                          [--proxy-cpus LIST] [--nginx-workers N] [--router-workers N] [--profile DIR]
//                          [--json bench/results/proxy.json]
//
// The same N backends are reached three ways in one run: directly (the load generator spreads
// its connections over them round-robin), through `k8s4ai router` (its own process, policy
// k8s4ai, one tenant key) and through nginx (Debian's package, generated configuration,
// upstream keep-alive). Two request kinds: a short non-streamed chat completion (max_tokens 1)
// and a streamed one (SSE, --stream-tokens chunks). Each kind and path is measured at a fixed
// rate (latency with the proxy far from saturation) and at saturation (--connections
// connections, each sending its next request as soon as the last one is answered).
//
// The load generator is this file run as a child process (so it shares no event loop with
// anything measured): raw keep-alive sockets, one request in flight per connection, latency
// from the write of the request to the last byte of the response with sub-microsecond
// timestamps. Not autocannon: its latency histogram holds whole milliseconds (a proxy that
// adds 0.3 ms would read as 0 or 1) and its rate limit releases each second's quota in a burst
// at the start of the second rather than spacing the requests. Not wrk: it cannot pace at all.
// Pacing here: requests are due at even intervals (1/rate) and sent by a timer that wakes for
// each due time; a request due while every connection is busy waits for one (counted, and
// its latency still runs from its write: the fixed-rate cells measure service time, not
// queueing).
//
// Backends: by default a minimal fixed-response server (also this file, as a child process)
// that answers the same shapes the engine does. `k8s4ai engine` with a zero time model can be
// chosen (--backend engine), but it is the engine that gets measured then: its prefill lane
// takes one request at a time and even a zero prefill waits for a timer, which node fires no
// sooner than 1 ms, so each engine tops out near 1,000 requests/s with a p50 of about 3 ms
// however idle its CPU, and every path, direct included, saturates at the same rate.
//
// Cores: nothing is pinned by default; every process shares the machine, so the saturation
// cells compare how far each path gets on the same cores, and the proxy's CPU time per request
// (from /proc) is the machine-independent part. nginx runs one worker per CPU it may use. The
// router runs --router-workers processes (node:cluster, default 2); each is one event loop and
// cannot use more than about one core, which the summary shows next to the throughput ratio. --proxy-cpus pins the proxies with taskset and everything
// else to the remaining CPUs; on a 2-core machine that leaves one core for the load generator
// and both backends, which then limit every path and make the ratio meaningless: pin only
// where the other side has cores to spare (e.g. --proxy-cpus 0-1 on 8 cores).
//
// Progress goes to stderr; the table to stdout; the JSON report to bench/results/proxy.json.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { argHelpers } from './lib/args.ts';
import { startCpuMeter, type CpuUsage } from './lib/cpu.ts';
import { summarizeProfiles } from './lib/cpuprofile.ts';
import { findNginx, nginxVersion, startNginx, NGINX_INSTALL, type Nginx } from './lib/nginx.ts';
import { startChild } from './lib/child.ts';
import { note } from './lib/progress.ts';
import { round, sleep } from './lib/stats.ts';

const USAGE = `usage: npm run bench -- proxy [options]   (or: npx k8s4ai bench proxy [options])

  --duration SECONDS    measured length of each cell (default 10)
  --warmup SECONDS      load before each cell's measurement, not counted (default 1)
  --rate N              requests per second of the fixed-rate cells (default 1000)
  --connections N       connections of the saturation cells (default 64); the fixed-rate
                        cells use min(N, 32)
  --backends N          backend processes (default 2)
  --backend KIND        fixed (a minimal fixed-response server, default) or engine
                        (k8s4ai engine with a zero time model: it caps every path near
                        1,000 req/s per engine, so it hides the proxies' cost)
  --kinds LIST          short,stream (default both)
  --paths LIST          direct,router,nginx (default all three; nginx needs the nginx binary)
  --modes LIST          rate (fixed rate) and/or max (saturation) (default both)
  --stream-tokens N     output tokens (SSE events) of a streamed request (default 16)
  --proxy-cpus LIST     pin the router and nginx to these CPUs (taskset -c LIST) and the
                        backends and load generator to the others (default: no pinning)
  --nginx-workers N     nginx worker_processes (default: the CPUs the proxy may use)
  --router-workers N    k8s4ai router --workers N (node:cluster processes; default 2)
  --profile DIR         V8 CPU profile of the router (node --cpu-prof) into DIR; prints its hot spots
  --json FILE           report (default bench/results/proxy.json)
  -h, --help            this text
`;

const KINDS = ['short', 'stream'] as const;
type Kind = (typeof KINDS)[number];
const PATHS = ['direct', 'router', 'nginx'] as const;
type ProxyPath = (typeof PATHS)[number];
const MODES = ['rate', 'max'] as const;
type Mode = (typeof MODES)[number];
const BACKEND_KINDS = ['fixed', 'engine'] as const;
type BackendKind = (typeof BACKEND_KINDS)[number];

/** How this file is run as a child process (argv[2]). */
const ROLE = { loadgen: '__loadgen', fixedBackend: '__fixed-backend' } as const;

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SELF = fileURLToPath(import.meta.url);
const CLI = join(ROOT, 'bin', 'k8s4ai.js');
const MODEL = 'k8s4ai/sim-8b';
const TENANT = 'bench';
const CHAT_PATH = '/v1/chat/completions';
/** Distinct prompts the requests rotate through, so prefix-aware routing spreads them as it would real traffic. */
const PROMPT_VARIANTS = 64;
/** Fixed-rate cells never need many connections (rate × latency is well under one). */
const RATE_CONNECTIONS_MAX = 32;
const START_TIMEOUT_MS = 30_000;
/** After a cell, how long requests still in flight may take before they count as unfinished. */
const DRAIN_MS = 3000;

// ---------------------------------------------------------------------------------------
// Requests

function requestBody(kind: Kind, variant: number, streamTokens: number): string {
  const messages = [{ role: 'user', content: `Say hello in one word. (benchmark prompt ${variant})` }];
  return JSON.stringify(kind === 'short' ? { model: MODEL, messages, max_tokens: 1 } : { model: MODEL, messages, max_tokens: streamTokens, stream: true });
}

/** The raw HTTP/1.1 request, as the load generator writes it. */
function rawRequest(url: string, body: string, key: string, stream: boolean): string {
  const u = new URL(url);
  return (
    `POST ${CHAT_PATH} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\n` +
    `Accept: ${stream ? 'text/event-stream' : 'application/json'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

// ---------------------------------------------------------------------------------------
// The load generator (child process). Reads one job per line on stdin; writes
// {"event":"start"} and {"event":"end"} when the measured window opens and closes (the parent
// reads the other processes' CPU time then), then {"event":"result",...}.

interface LoadTarget {
  host: string;
  port: number;
  /** Raw requests, sent in rotation. */
  requests: string[];
}

interface LoadJob {
  targets: LoadTarget[];
  connections: number;
  /** Requests per second; 0: closed loop (each connection sends again as soon as it is answered). */
  rate: number;
  warmupMs: number;
  durationMs: number;
}

interface Quantiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

interface LoadResult {
  /** 2xx responses to requests sent in the window and finished in it. */
  completed: number;
  windowS: number;
  /** completed / windowS. */
  rps: number;
  /** Every response in the window, by status. */
  statuses: Record<string, number>;
  /** Requests whose connection failed or closed before the response was complete. */
  errors: number;
  /** Still in flight DRAIN_MS after the window closed. */
  unfinished: number;
  /** Milliseconds from the request's write to the response's last byte (2xx only). */
  latencyMs: Quantiles;
  /** Milliseconds from the write to the response's first byte (2xx only). */
  firstByteMs: Quantiles;
  /** Paced runs: requests sent more than 2 ms after they were due (every connection was busy, or the timer ran late). */
  lateSends: number;
  /** Paced runs: most requests waiting for a free connection at once. */
  backlogMax: number;
  /** The load generator's own CPU seconds in the window. */
  cpuS: number;
}

function quantiles(values: number[]): Quantiles {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (v: number) => round(v, 4);
  return { p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), p999: r(at(0.999)), max: r(sorted[sorted.length - 1]!), mean: r(sum / sorted.length) };
}

/** Response parser states. */
const P = { idle: 0, head: 1, length: 2, chunkSize: 3, chunkData: 4, trailer: 5 } as const;
type ParseState = (typeof P)[keyof typeof P];
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

interface Target {
  host: string;
  port: number;
  requests: Buffer[];
}

/** One keep-alive connection with at most one request in flight. */
class Conn {
  socket!: Socket;
  private state: ParseState = P.idle;
  private rest: Buffer | undefined;
  private status = 0;
  private remaining = 0;
  private closeAfter = false;
  private sentAt = 0;
  private firstAt = 0;
  private next = 0;

  constructor(private readonly gen: LoadGen, private readonly target: Target, offset: number) {
    this.next = offset;
    this.open();
  }

  private open(): void {
    const s = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    this.socket = s;
    this.rest = undefined;
    s.on('data', (c: Buffer) => {
      if (s === this.socket) this.onData(c);
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (s !== this.socket) return;
      const wasBusy = this.state !== P.idle;
      this.state = P.idle;
      if (this.gen.stopped) return;
      this.gen.reconnects++;
      this.open();
      if (wasBusy) this.gen.failed(this);
    });
  }

  get busy(): boolean {
    return this.state !== P.idle;
  }

  send(): void {
    this.state = P.head;
    this.firstAt = 0;
    this.sentAt = performance.now();
    const reqs = this.target.requests;
    this.socket.write(reqs[this.next++ % reqs.length]!);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.firstAt === 0) this.firstAt = performance.now();
    if (this.state === P.idle) return; // Nothing asked: ignore (a server would not send this).
    let buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let i = 0;
    if (this.state === P.head) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.rest = buf;
        return;
      }
      // "HTTP/1.1 200 OK"
      this.status = (buf[9]! - 48) * 100 + (buf[10]! - 48) * 10 + (buf[11]! - 48);
      const head = buf.toString('latin1', 0, end).toLowerCase();
      this.closeAfter = head.includes('\r\nconnection: close');
      i = end + 4;
      if (head.includes('\r\ntransfer-encoding: chunked')) {
        this.state = P.chunkSize;
      } else {
        const m = /\r\ncontent-length:\s*(\d+)/.exec(head);
        // No length and not chunked: only a 1xx/204/304 would do that, and none is expected.
        this.remaining = m ? Number(m[1]) : 0;
        this.state = P.length;
      }
    }
    for (;;) {
      switch (this.state) {
        case P.length:
        case P.chunkData: {
          const take = Math.min(this.remaining, buf.length - i);
          this.remaining -= take;
          i += take;
          if (this.remaining > 0) return;
          if (this.state === P.length) return this.done();
          this.state = P.chunkSize;
          break;
        }
        case P.chunkSize: {
          const nl = buf.indexOf(CRLF, i);
          if (nl < 0) {
            this.rest = buf.subarray(i);
            return;
          }
          const size = parseInt(buf.toString('latin1', i, nl), 16);
          i = nl + 2;
          if (size === 0) this.state = P.trailer;
          else {
            this.state = P.chunkData;
            this.remaining = size + 2; // the data and its CRLF
          }
          break;
        }
        case P.trailer: {
          const nl = buf.indexOf(CRLF, i);
          if (nl < 0) {
            this.rest = buf.subarray(i);
            return;
          }
          if (nl === i) return this.done();
          i = nl + 2; // a trailer field: skip it
          break;
        }
        default:
          return;
      }
    }
  }

  private done(): void {
    const doneAt = performance.now();
    this.state = P.idle;
    if (this.closeAfter) {
      // The server will close: open the next connection now so the next request can go out.
      const old = this.socket;
      this.gen.reconnects++;
      this.open();
      old.destroy();
    }
    this.gen.completed(this, this.status, this.sentAt, this.firstAt, doneAt);
  }
}

class LoadGen {
  stopped = false;
  reconnects = 0;
  private readonly conns: Conn[] = [];
  private readonly idle: Conn[] = [];
  /** Paced: due times of requests waiting for a free connection. */
  private readonly backlog: number[] = [];
  private readonly latency: number[] = [];
  private readonly firstByte: number[] = [];
  private readonly statuses: Record<string, number> = {};
  private errors = 0;
  private lateSends = 0;
  private backlogMax = 0;
  private windowStart = Infinity;
  private windowEnd = Infinity;
  private t0 = 0;
  private issued = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly job: LoadJob) {
    const targets: Target[] = job.targets.map((t) => ({ host: t.host, port: t.port, requests: t.requests.map((r) => Buffer.from(r)) }));
    // Connection i goes to target i mod n: with the idle queue in FIFO order, the requests
    // go round-robin over the targets.
    for (let i = 0; i < job.connections; i++) this.conns.push(new Conn(this, targets[i % targets.length]!, i));
  }

  async run(emit: (line: object) => void): Promise<LoadResult> {
    const { warmupMs, durationMs, rate } = this.job;
    this.t0 = performance.now();
    this.windowStart = this.t0 + warmupMs;
    this.windowEnd = this.windowStart + durationMs;
    let cpu0 = process.cpuUsage();
    if (rate > 0) {
      this.idle.push(...this.conns);
      this.tick();
    } else {
      for (const c of this.conns) c.send();
    }
    await sleep(warmupMs);
    cpu0 = process.cpuUsage();
    emit({ event: 'start' });
    await sleep(Math.max(0, this.windowEnd - performance.now()));
    const cpu = process.cpuUsage(cpu0);
    emit({ event: 'end' });
    this.stopped = true;
    clearTimeout(this.timer);
    const deadline = performance.now() + DRAIN_MS;
    while (this.conns.some((c) => c.busy) && performance.now() < deadline) await sleep(10);
    const unfinished = this.conns.filter((c) => c.busy).length;
    for (const c of this.conns) c.destroy();
    const windowS = durationMs / 1000;
    return {
      completed: this.latency.length,
      windowS,
      rps: round(this.latency.length / windowS, 1),
      statuses: this.statuses,
      errors: this.errors,
      unfinished,
      latencyMs: quantiles(this.latency),
      firstByteMs: quantiles(this.firstByte),
      lateSends: this.lateSends,
      backlogMax: this.backlogMax,
      cpuS: round((cpu.user + cpu.system) / 1e6, 3),
    };
  }

  /** Paced: sends every request due by now, then sleeps until the next one is due. */
  private tick = (): void => {
    if (this.stopped) return;
    const interval = 1000 / this.job.rate;
    const now = performance.now();
    const due = Math.floor((now - this.t0) / interval);
    while (this.issued < due) {
      const dueAt = this.t0 + (this.issued + 1) * interval;
      this.issued++;
      const c = this.idle.shift();
      if (c) {
        if (now - dueAt > 2) this.lateSends++;
        c.send();
      } else {
        this.backlog.push(dueAt);
        if (this.backlog.length > this.backlogMax) this.backlogMax = this.backlog.length;
      }
    }
    const nextDue = this.t0 + (this.issued + 1) * interval;
    this.timer = setTimeout(this.tick, Math.max(0, nextDue - performance.now()));
  };

  completed(c: Conn, status: number, sentAt: number, firstAt: number, doneAt: number): void {
    if (sentAt >= this.windowStart && doneAt < this.windowEnd) {
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        this.latency.push(doneAt - sentAt);
        this.firstByte.push(firstAt - sentAt);
      }
    }
    this.release(c);
  }

  failed(c: Conn): void {
    if (performance.now() >= this.windowStart) this.errors++;
    this.release(c);
  }

  private release(c: Conn): void {
    if (this.stopped || performance.now() >= this.windowEnd) return;
    if (this.job.rate === 0) return c.send();
    const dueAt = this.backlog.shift();
    if (dueAt === undefined) {
      this.idle.push(c);
      return;
    }
    if (performance.now() - dueAt > 2) this.lateSends++;
    c.send();
  }
}

async function loadgenMain(): Promise<void> {
  const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
  const lines = createInterface({ input: process.stdin });
  emit({ event: 'ready', pid: process.pid });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const job = JSON.parse(line) as LoadJob;
    const result = await new LoadGen(job).run(emit);
    emit({ event: 'result', result });
  }
  // stdin closed: the parent is done (or gone).
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The fixed-response backend (child process): the engine's answer shapes at the least cost
// node:http allows, so the proxies' own cost is what the saturation cells show. It still
// reads and parses the body (a real backend must), and a stream is written event by event.

function fixedBackendMain(): void {
  const created = Math.floor(Date.now() / 1000);
  const base = { id: 'chatcmpl-bench', created, model: MODEL };
  const completion = Buffer.from(
    JSON.stringify({
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13, prompt_tokens_details: { cached_tokens: 0 } },
    }),
  );
  const events = new Map<number, string[]>();
  const eventsFor = (n: number): string[] => {
    let e = events.get(n);
    if (!e) {
      const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
      e = [];
      for (let i = 0; i < n; i++) e.push(chunk(i === 0 ? { role: 'assistant', content: 'hello' } : { content: ' hello' }, null));
      e.push(chunk({}, 'length'), 'data: [DONE]\n\n');
      events.set(n, e);
    }
    return e;
  };
  const server = createHttpServer({ keepAliveTimeout: 120_000, noDelay: true }, (req, res) => {
    if (req.method === 'GET') {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
      } else if (req.url === '/v1/models') {
        const body = JSON.stringify({ object: 'list', data: [{ id: MODEL, object: 'model', created, owned_by: 'k8s4ai-bench' }] });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
      }
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { stream?: boolean; max_tokens?: number };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json', 'content-length': 2 });
        res.end('{}');
        return;
      }
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': completion.length });
        res.end(completion);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      const e = eventsFor(Math.min(Math.max(1, Number(body.max_tokens) || 16), 4096));
      for (let i = 0; i < e.length - 1; i++) res.write(e[i]);
      res.end(e[e.length - 1]);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`fixed backend listening on http://127.0.0.1:${port}\n`);
  });
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

// ---------------------------------------------------------------------------------------
// Child processes of the benchmark

interface Service {
  name: string;
  pid: number;
  url: string;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts a node process and waits for `ready` (with a URL in group 1) on its stdout. */
async function startService(name: string, args: string[], ready: RegExp, opts: { cpus?: string; execArgv?: string[] } = {}): Promise<Service> {
  const nodeArgs = [...(opts.execArgv ?? []), ...args];
  const started = opts.cpus
    ? await startChild({ name, command: 'taskset', args: ['-c', opts.cpus, process.execPath, ...nodeArgs], cwd: ROOT, ready, startTimeoutMs: START_TIMEOUT_MS })
    : await startChild({ name, command: process.execPath, args: nodeArgs, cwd: ROOT, ready, startTimeoutMs: START_TIMEOUT_MS });
  return { name, pid: started.pid, url: started.match[1]!, stderr: started.stderr, stop: started.stop };
}

/** The load generator child: one job at a time. */
class LoadClient {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  pid = 0;

  constructor(cpus: string | undefined) {
    const args = ['--import', 'tsx', SELF, ROLE.loadgen];
    this.child = cpus
      ? spawn('taskset', ['-c', cpus, process.execPath, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } })
      : spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
    process.once('exit', () => this.child.kill('SIGKILL'));
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }

  private async read(): Promise<{ event: string; pid?: number; result?: LoadResult }> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`the load generator exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`);
    return JSON.parse(r.value) as { event: string };
  }

  async ready(): Promise<void> {
    const line = await this.read();
    this.pid = line.pid!;
  }

  /** Runs a job; `onWindow` is called when the measured window opens and when it closes. */
  async run(job: LoadJob, onWindow: (event: 'start' | 'end') => void): Promise<LoadResult> {
    this.child.stdin!.write(`${JSON.stringify(job)}\n`);
    for (;;) {
      const line = await this.read();
      if (line.event === 'start' || line.event === 'end') onWindow(line.event);
      else if (line.event === 'result') return line.result!;
    }
  }

  close(): void {
    this.child.stdin!.end();
  }
}

// ---------------------------------------------------------------------------------------
// The benchmark

interface ProxyBenchOptions {
  durationS: number;
  warmupS: number;
  rate: number;
  connections: number;
  backends: number;
  backend: BackendKind;
  kinds: Kind[];
  paths: ProxyPath[];
  modes: Mode[];
  streamTokens: number;
  proxyCpus?: string;
  otherCpus?: string;
  nginxWorkers: number;
  /** `k8s4ai router --workers`. */
  routerWorkers: number;
  profileDir?: string;
  /** CPUs of the machine (availableParallelism). */
  machineCores: number;
}

interface CellResult {
  kind: Kind;
  mode: Mode;
  path: ProxyPath;
  connections: number;
  /** Fixed-rate cells: the requests per second asked for. */
  targetRate?: number;
  rps: number;
  latencyMs: Quantiles;
  firstByteMs: Quantiles;
  completed: number;
  non2xx: number;
  errors: number;
  unfinished: number;
  lateSends: number;
  backlogMax: number;
  /** Average cores used in the window, by process group ("other": the rest of the machine). */
  cores: Record<string, number>;
  /** The proxy's CPU microseconds per completed request (router or nginx master + workers). */
  proxyCpuUsPerRequest?: number;
  backendCpuUsPerRequest?: number;
  loadgenCpuUsPerRequest: number;
}

/** The direct children of a process (a cluster primary's workers), from /proc. */
function childPids(parent: number): number[] {
  const out: number[] = [];
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc: the primary alone is metered
  }
  return out;
}

/** Expands a taskset CPU list ("0-3,6") to its CPUs. */
function cpuList(raw: string): number[] {
  const out = new Set<number>();
  for (const part of raw.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) return [];
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

const { fail, positiveNumber, list, parse } = argHelpers(USAGE);

function groupCores(usage: CpuUsage | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!usage) return out;
  for (const [name, cores] of Object.entries(usage)) {
    const group = name.replace(/-\d+$/, '');
    out[group] = round((out[group] ?? 0) + cores, 2);
  }
  return out;
}

async function waitRouterReady(url: string, backends: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/healthz`);
      const body = (await res.json()) as { readyBackends?: number };
      last = JSON.stringify(body);
      if (res.status === 200 && body.readyBackends === backends) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`the router did not see its ${backends} backends ready within ${START_TIMEOUT_MS / 1000} s (last /healthz: ${last})`);
}

/** One request of each kind by each path, checked, so a misconfigured path fails before the measurements. */
async function preflight(label: string, url: string, kind: Kind, key: string, streamTokens: number): Promise<void> {
  const stream = kind === 'stream';
  const res = await fetch(`${url}${CHAT_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
    body: requestBody(kind, 0, streamTokens),
  });
  const text = await res.text();
  const bad = (why: string) => new Error(`${label}, ${kind} request: ${why}: HTTP ${res.status} ${text.slice(0, 300)}`);
  if (res.status !== 200) throw bad('not 200');
  if (stream) {
    if (!String(res.headers.get('content-type')).startsWith('text/event-stream')) throw bad('not text/event-stream');
    const events = text.split('\n\n').filter((e) => e.startsWith('data: {'));
    if (!text.includes('data: [DONE]') || events.length < streamTokens) throw bad(`expected ${streamTokens}+ events and [DONE], got ${events.length}`);
  } else {
    const body = JSON.parse(text) as { choices?: { message?: unknown }[] };
    if (!body.choices?.[0]?.message) throw bad('no choices[0].message');
  }
}

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '64' },
    backends: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'fixed' },
    kinds: { type: 'string', default: KINDS.join(',') },
    paths: { type: 'string', default: PATHS.join(',') },
    modes: { type: 'string', default: MODES.join(',') },
    'stream-tokens': { type: 'string', default: '16' },
    'proxy-cpus': { type: 'string' },
    'nginx-workers': { type: 'string' },
    'router-workers': { type: 'string', default: '2' },
    profile: { type: 'string' },
    json: { type: 'string' },
  });
  if (!v) return;
  const backend = list<BackendKind>('backend', v.backend!, BACKEND_KINDS);
  if (backend.length !== 1) fail('--backend takes one of fixed, engine');
  let proxyCpus: string | undefined;
  let otherCpus: string | undefined;
  const cores = availableParallelism();
  if (v['proxy-cpus'] !== undefined) {
    const mine = cpuList(v['proxy-cpus']);
    if (!mine.length || mine.some((c) => c >= cores)) fail(`--proxy-cpus: "${v['proxy-cpus']}" is not a CPU list within 0-${cores - 1}`);
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    } catch {
      fail('--proxy-cpus needs taskset (util-linux), which is not on PATH');
    }
    proxyCpus = mine.join(',');
    const others = [...Array(cores).keys()].filter((c) => !mine.includes(c));
    otherCpus = others.length ? others.join(',') : undefined;
  }
  const opts: ProxyBenchOptions = {
    durationS: positiveNumber('duration', v.duration!, false),
    warmupS: v.warmup === '0' ? 0 : positiveNumber('warmup', v.warmup!, false),
    rate: positiveNumber('rate', v.rate!, false),
    connections: positiveNumber('connections', v.connections!),
    backends: positiveNumber('backends', v.backends!),
    backend: backend[0]!,
    kinds: list<Kind>('kinds', v.kinds!, KINDS),
    paths: list<ProxyPath>('paths', v.paths!, PATHS),
    modes: list<Mode>('modes', v.modes!, MODES),
    streamTokens: positiveNumber('stream-tokens', v['stream-tokens']!),
    ...(proxyCpus ? { proxyCpus } : {}),
    ...(otherCpus ? { otherCpus } : {}),
    nginxWorkers: v['nginx-workers'] !== undefined ? positiveNumber('nginx-workers', v['nginx-workers']) : proxyCpus ? cpuList(proxyCpus).length : cores,
    routerWorkers: positiveNumber('router-workers', v['router-workers']!),
    ...(v.profile ? { profileDir: resolve(v.profile) } : {}),
    machineCores: cores,
  };
  const jsonFile = v.json ? resolve(v.json) : fileURLToPath(new URL('results/proxy.json', import.meta.url));
  const nginxBin = opts.paths.includes('nginx') ? findNginx() : undefined;
  if (opts.paths.includes('nginx') && !nginxBin) {
    process.stderr.write(
      `bench proxy: nginx is not installed; it is the reference the router is compared with.\n` +
        `Install Debian's package (as root):  ${NGINX_INSTALL}\n` +
        `or leave it out:  npm run bench -- proxy --paths direct,router\n`,
    );
    process.exit(1);
  }

  const { machine, commandLine } = await import('./api-main.ts');
  const header = {
    benchmark: 'proxy',
    command: commandLine(),
    ...(process.env.npm_lifecycle_event === 'bench' ? { npmCommand: `npm run bench -- ${process.argv.slice(2).join(' ')}` } : {}),
    machine: machine(),
    nginx: nginxBin ? nginxVersion(nginxBin) : undefined,
    startedAt: new Date().toISOString(),
    options: opts,
  };
  note(`${header.command}\n${header.machine.cores} cores (${header.machine.cpuModel}), node ${header.machine.node}${header.nginx ? `, ${header.nginx}` : ''}`);
  if (header.machine.loadAverageAtStart[0]! > 0.5) {
    note(`warning: the 1-minute load average is ${header.machine.loadAverageAtStart[0]} before the run: other work on this machine will skew the numbers`);
  }
  if (opts.proxyCpus) note(`pinned (taskset): router and nginx on CPU ${opts.proxyCpus}; backends and load generator on ${opts.otherCpus ?? 'the same CPUs (no others)'}`);

  const work = mkdtempSync(join(tmpdir(), 'k8s4ai-bench-proxy-'));
  const removeWork = () => rmSync(work, { recursive: true, force: true });
  process.once('exit', removeWork);
  const key = randomBytes(24).toString('hex');
  const keyHash = createHash('sha256').update(key).digest('hex');
  const services: Service[] = [];
  let nginx: Nginx | undefined;
  let loadgen: LoadClient | undefined;
  const stopAll = async () => {
    loadgen?.close();
    await Promise.all([...services.map((s) => s.stop()), nginx?.stop()]);
  };

  const cells: CellResult[] = [];
  let profile: string[] = [];
  try {
    // Backends.
    note(`starting ${opts.backends} ${opts.backend === 'engine' ? 'k8s4ai engine (zero time model)' : 'fixed-response'} backends`);
    const backends = await Promise.all(
      [...Array(opts.backends).keys()].map((i) =>
        opts.backend === 'engine'
          ? startService(`engine-${i}`, [CLI, 'engine', '--port', '0', '--prefill-us-per-token', '0', '--decode-ms-per-token', '0', '--overhead-ms', '0', '--max-batch', '4096'], / on (http:\/\/[^\s]+)/, { cpus: opts.otherCpus })
          : startService(`backend-${i}`, ['--import', 'tsx', SELF, ROLE.fixedBackend], /listening on (http:\/\/[^\s]+)/, { cpus: opts.otherCpus }),
      ),
    );
    services.push(...backends);
    const backendUrls = backends.map((b) => b.url);

    let router: Service | undefined;
    let routerWorkerPids: number[] = [];
    if (opts.paths.includes('router')) {
      note(`starting k8s4ai router (${opts.routerWorkers} worker${opts.routerWorkers === 1 ? '' : 's'})`);
      const execArgv = opts.profileDir ? (mkdirSync(opts.profileDir, { recursive: true }), ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`]) : [];
      router = await startService(
        'router',
        [
          CLI, 'router', ...backendUrls.flatMap((u) => ['--backend', u]),
          '--policy', 'k8s4ai', '--tenant', `${TENANT}=sha256:${keyHash}`, '--port', '0', '--address', '127.0.0.1',
          '--max-in-flight-per-backend', String(Math.max(256, opts.connections)), '--log-level', 'warn',
          '--workers', String(opts.routerWorkers),
        ],
        /listening on (http:\/\/[^\s]+)/,
        { cpus: opts.proxyCpus, execArgv },
      );
      services.push(router);
      await waitRouterReady(router.url, opts.backends);
      // With --workers > 1 the requests are served by the primary's children: their CPU counts.
      routerWorkerPids = opts.routerWorkers > 1 ? childPids(router.pid) : [];
    }
    if (opts.paths.includes('nginx')) {
      note(`starting nginx (${opts.nginxWorkers} worker${opts.nginxWorkers === 1 ? '' : 's'})`);
      nginx = await startNginx({ bin: nginxBin!, upstreams: backendUrls.map((u) => new URL(u).host), workers: opts.nginxWorkers, dir: join(work, 'nginx'), ...(opts.proxyCpus ? { cpus: opts.proxyCpus } : {}) });
    }
    loadgen = new LoadClient(opts.otherCpus);
    await loadgen.ready();

    /** Where each path's requests go, per kind (nginx: buffered for JSON, unbuffered for SSE). */
    const urlsFor = (path: ProxyPath, kind: Kind): string[] =>
      path === 'direct' ? backendUrls : path === 'router' ? [router!.url] : [kind === 'stream' ? nginx!.unbufferedUrl : nginx!.bufferedUrl];
    for (const kind of opts.kinds) for (const path of opts.paths) for (const url of urlsFor(path, kind)) await preflight(path, url, kind, key, opts.streamTokens);

    const proxyPids = (path: ProxyPath): Record<string, number> =>
      path === 'router' ? Object.fromEntries([router!.pid, ...routerWorkerPids].map((p, i) => [`proxy-${i}`, p])) : path === 'nginx' ? Object.fromEntries(nginx!.pids().map((p, i) => [`proxy-${i}`, p])) : {};
    const total = opts.kinds.length * opts.modes.length * opts.paths.length;
    const perCell = opts.warmupS + opts.durationS;
    note(`${total} cells of ${opts.warmupS} s warm-up + ${opts.durationS} s: about ${Math.ceil((total * (perCell + 0.5)) / 60)} min`);
    let n = 0;
    for (const kind of opts.kinds) {
      const variants = [...Array(PROMPT_VARIANTS).keys()].map((i) => requestBody(kind, i, opts.streamTokens));
      for (const mode of opts.modes) {
        // The paths of one kind and mode run back to back, so drift on the machine hits them alike.
        for (const path of opts.paths) {
          n++;
          const connections = mode === 'rate' ? Math.min(opts.connections, RATE_CONNECTIONS_MAX) : opts.connections;
          const label = `${kind} ${mode === 'rate' ? `${opts.rate}/s` : `max, ${connections} conn`} ${path}`;
          process.stderr.write(`  [${String(n).padStart(2)}/${total}] ${label.padEnd(28)} `);
          const targets: LoadTarget[] = urlsFor(path, kind).map((u) => {
            const url = new URL(u);
            return { host: url.hostname, port: Number(url.port), requests: variants.map((b) => rawRequest(u, b, key, kind === 'stream')) };
          });
          const pids = { loadgen: loadgen.pid, ...proxyPids(path), ...Object.fromEntries(backends.map((b, i) => [`backends-${i}`, b.pid])) };
          let meter: ReturnType<typeof startCpuMeter> | undefined;
          let usage: CpuUsage | undefined;
          const r = await loadgen.run(
            { targets, connections, rate: mode === 'rate' ? opts.rate : 0, warmupMs: opts.warmupS * 1000, durationMs: opts.durationS * 1000 },
            (event) => {
              if (event === 'start') meter = startCpuMeter(pids);
              else usage = meter?.stop();
            },
          );
          const coresUsed = groupCores(usage);
          const perReq = (group: string) => (coresUsed[group] !== undefined && r.completed > 0 ? round((coresUsed[group]! * r.windowS * 1e6) / r.completed, 1) : undefined);
          const non2xx = Object.entries(r.statuses).reduce((s, [code, c]) => s + (code.startsWith('2') ? 0 : c), 0);
          const cell: CellResult = {
            kind, mode, path, connections,
            ...(mode === 'rate' ? { targetRate: opts.rate } : {}),
            rps: r.rps, latencyMs: r.latencyMs, firstByteMs: r.firstByteMs, completed: r.completed, non2xx, errors: r.errors, unfinished: r.unfinished,
            lateSends: r.lateSends, backlogMax: r.backlogMax, cores: coresUsed,
            ...(path !== 'direct' ? { proxyCpuUsPerRequest: perReq('proxy') } : {}),
            backendCpuUsPerRequest: perReq('backends'),
            loadgenCpuUsPerRequest: r.completed > 0 ? round((r.cpuS * 1e6) / r.completed, 1) : NaN,
          };
          cells.push(cell);
          process.stderr.write(`${Math.round(r.rps)} req/s, p50 ${fmt(r.latencyMs.p50)} ms, p99 ${fmt(r.latencyMs.p99)} ms${non2xx || r.errors ? `, ${non2xx} non-2xx, ${r.errors} errors` : ''}\n`);
          if ((coresUsed.other ?? 0) > 0.25) {
            note(`    warning: other processes used ${coresUsed.other} cores during this cell: the numbers are skewed`);
          }
          if (mode === 'rate' && (r.rps < 0.95 * opts.rate || r.lateSends > 0.01 * r.completed)) {
            note(`    warning: the pacing did not hold (${Math.round(r.rps)} of ${opts.rate} req/s, ${r.lateSends} sends over 2 ms late, up to ${r.backlogMax} waiting for a connection)`);
          }
          if (non2xx || r.errors || r.unfinished) {
            const s = services.find((x) => x.name === path);
            note(`    warning: ${non2xx} non-2xx (${JSON.stringify(r.statuses)}), ${r.errors} failed, ${r.unfinished} unfinished${s?.stderr() ? `; ${path} stderr: ${s.stderr().slice(-400)}` : ''}`);
          }
        }
      }
    }
  } finally {
    note('stopping');
    await stopAll();
  }
  if (opts.profileDir) {
    profile = summarizeProfiles(opts.profileDir, 25);
    if (!profile.length) note(`no router CPU profile in ${opts.profileDir} (did the router exit cleanly?)`);
  }

  const summary = summarize(cells, opts);
  const doc = {
    ...header,
    finishedAt: new Date().toISOString(),
    loadAverageAtFinish: loadavg().map((l) => round(l, 2)),
    backendDescription: opts.backend === 'engine' ? 'k8s4ai engine, prefill 0, decode 0, overhead 0' : 'fixed-response node:http server (bench/proxy.ts __fixed-backend)',
    cells,
    summary,
    ...(profile.length ? { routerProfile: profile } : {}),
  };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  const shown = relative(process.cwd(), jsonFile);
  const out = [
    `k8s4ai proxy benchmark: ${header.machine.cores} cores, node ${header.machine.node}${header.nginx ? `, ${header.nginx}` : ''}; ` +
      `${opts.backends} ${opts.backend === 'engine' ? 'k8s4ai engine (zero time)' : 'fixed-response'} backends; ${opts.durationS} s per cell; ` +
      `router --workers ${opts.routerWorkers}` +
      `${opts.proxyCpus ? `; proxy pinned to CPU ${opts.proxyCpus}` : '; no CPU pinning'}`,
    `command: ${header.command}`,
    '',
    renderTable(cells, opts),
    '',
    ...summary.lines,
    '',
    'latency: write of the request to the last byte of the response (streamed: the whole SSE stream; first byte in the JSON);',
    '+p50/+p99: minus the direct path in the same kind and load; proxy CPU: the proxy\'s CPU time per request (nginx: master + workers);',
    'cores: average cores busy during the cell, load generator / backends / proxy / everything else.',
    ...(profile.length ? ['', 'router CPU profile:', ...profile] : []),
    `written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(3) : '-');
const signed = (ms: number) => (Number.isFinite(ms) ? `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}` : '');

function renderTable(cells: CellResult[], opts: ProxyBenchOptions): string {
  const head = ['kind', 'load', 'path', 'req/s', 'p50 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'proxy CPU µs/req', 'cores lg/be/px/other', 'errors'];
  const rows: string[][] = [head];
  for (const c of cells) {
    const direct = cells.find((d) => d.kind === c.kind && d.mode === c.mode && d.path === 'direct');
    const add = (q: 'p50' | 'p99') => (direct && c.path !== 'direct' ? signed(c.latencyMs[q] - direct.latencyMs[q]) : '');
    const k = c.cores;
    rows.push([
      c.kind === 'short' ? 'short' : `stream ${opts.streamTokens}`,
      c.mode === 'rate' ? `${c.targetRate}/s` : `max ${c.connections} conn`,
      c.path,
      String(Math.round(c.rps)),
      fmt(c.latencyMs.p50),
      fmt(c.latencyMs.p99),
      add('p50'),
      add('p99'),
      c.proxyCpuUsPerRequest !== undefined ? c.proxyCpuUsPerRequest.toFixed(0) : '',
      [k.loadgen, k.backends, k.proxy ?? 0, k.other].map((x) => (x === undefined ? '-' : x.toFixed(2))).join('/'),
      String(c.non2xx + c.errors + c.unfinished),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

interface Summary {
  /** By kind, at the fixed rate: router and nginx minus direct, ms. */
  addedMs: Record<string, { router?: { p50: number; p99: number }; nginx?: { p50: number; p99: number } }>;
  /** By kind, at saturation: router req/s over nginx req/s. */
  throughputRatio: Record<string, number>;
  aims: { routerAddsUnder1msP50?: boolean; routerThroughputAtLeastHalfOfNginx?: boolean };
  lines: string[];
}

function summarize(cells: CellResult[], opts: ProxyBenchOptions): Summary {
  const get = (kind: Kind, mode: Mode, path: ProxyPath) => cells.find((c) => c.kind === kind && c.mode === mode && c.path === path);
  const addedMs: Summary['addedMs'] = {};
  const throughputRatio: Summary['throughputRatio'] = {};
  const lines: string[] = [];
  const latencyAim: boolean[] = [];
  const throughputAim: boolean[] = [];
  for (const kind of opts.kinds) {
    const direct = get(kind, 'rate', 'direct');
    const a: Summary['addedMs'][string] = {};
    for (const path of ['router', 'nginx'] as const) {
      const c = get(kind, 'rate', path);
      if (direct && c) a[path] = { p50: round(c.latencyMs.p50 - direct.latencyMs.p50, 4), p99: round(c.latencyMs.p99 - direct.latencyMs.p99, 4) };
    }
    if (a.router || a.nginx) {
      addedMs[kind] = a;
      const parts = (['router', 'nginx'] as const).filter((p) => a[p]).map((p) => `${p} ${signed(a[p]!.p50)} ms p50, ${signed(a[p]!.p99)} ms p99`);
      lines.push(`added latency at ${opts.rate}/s, ${kind}: ${parts.join('; ')}`);
      if (a.router) latencyAim.push(a.router.p50 < 1);
    }
    const r = get(kind, 'max', 'router');
    const n = get(kind, 'max', 'nginx');
    if (r && n && n.rps > 0) {
      throughputRatio[kind] = round(r.rps / n.rps, 3);
      const cpu = r.proxyCpuUsPerRequest !== undefined && n.proxyCpuUsPerRequest !== undefined ? `; proxy CPU per request: router ${r.proxyCpuUsPerRequest.toFixed(0)} µs, nginx ${n.proxyCpuUsPerRequest.toFixed(0)} µs` : '';
      // Who was the bottleneck: the router is one event loop (at most about one core); when it
      // is well below that, the rest of the machine (or other work on it) set both numbers.
      const busy = (c: CellResult) => `${(c.cores.proxy ?? 0).toFixed(2)} cores, machine ${Object.values(c.cores).reduce((a, b) => a + b, 0).toFixed(2)}/${opts.machineCores}`;
      lines.push(`throughput at saturation, ${kind}: router ${Math.round(r.rps)} req/s / nginx ${Math.round(n.rps)} req/s = ${(100 * throughputRatio[kind]!).toFixed(0)}%${cpu}`);
      lines.push(`  busy: router ${busy(r)}; nginx ${busy(n)}`);
      throughputAim.push(throughputRatio[kind]! >= 0.5);
    }
  }
  const aims: Summary['aims'] = {};
  const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
  if (latencyAim.length) {
    aims.routerAddsUnder1msP50 = latencyAim.every(Boolean);
    lines.push(`aim: the router adds < 1 ms at p50 (fixed rate, every kind): ${verdict(aims.routerAddsUnder1msP50)}`);
  }
  if (throughputAim.length) {
    aims.routerThroughputAtLeastHalfOfNginx = throughputAim.every(Boolean);
    lines.push(`aim: router throughput >= 50% of nginx's on the same cores (saturation, every kind): ${verdict(aims.routerThroughputAtLeastHalfOfNginx)}`);
  }
  return { addedMs, throughputRatio, aims, lines };
}

// Run as a child process of the benchmark: the load generator or a fixed-response backend.
if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const role = process.argv[2];
  if (role === ROLE.loadgen) await loadgenMain();
  else if (role === ROLE.fixedBackend) fixedBackendMain();
  else {
    process.stderr.write(`bench/proxy.ts runs as part of the benchmark: ${USAGE}`);
    process.exit(2);
  }
}
