// A real data-parallel training workload for k8s4ai gangs, small enough to run on a laptop:
//
//   node --import tsx examples/training/train.ts [--steps N] [--step-ms M] [--hidden H]
//
// A multilayer perceptron (4 inputs → H tanh → H tanh → 1) learns a fixed nonlinear
// function by SGD with plain arithmetic on Float64Array. Every step takes a batch of the
// (seeded, generated) data set; each rank computes the gradient of its shard of the batch,
// and the gradients are all-reduced over TCP: rank 0 listens on MASTER_PORT, the other ranks
// connect to MASTER_ADDR:MASTER_PORT, send their gradient every step, and rank 0 sums them in
// rank order (so the floating point is the same on every run) and sends back the average.
//
// Checkpoints follow the k8s4ai protocol through src/checkpoint/client.ts. A checkpoint
// counts only if every rank took it at the same step, but the agent's request reaches the
// ranks at different steps, so each rank puts the id it has pending into its step message,
// rank 0 picks one and sends it back with the average, and every rank saves that id after
// applying that step. A checkpoint holds the weights and the step; the batch of a step is a
// function of the step alone, so the step is also the data position. With
// K8S4AI_RESTORE_CHECKPOINT the run resumes after the checkpoint's step and ends with the
// same result line, bit for bit, as a run that was never interrupted.
//
// Output on stdout: `start rank R/W restore <id|none> step <S>` (S: steps already done),
// `step <n> loss <x>` for every step, `checkpoint <id> step <n>` when one is saved, and
// `result <loss> <hash>` at the end: the full data set's mean squared error to 12
// significant digits and a hash of the weights.
//
// Failing fast: a gang is only useful whole, so when a peer's connection drops (a member
// died) every rank exits 1 at once instead of waiting on it. On SIGTERM a rank exits 143
// (128 + SIGTERM) at once: a stopped run has not finished, and exiting 0 would report it as
// done. Without WORLD_SIZE it runs alone; without K8S4AI_CHECKPOINT_DIR it takes no checkpoints.
// LOCAL_RANK and CUDA_VISIBLE_DEVICES are not used: the model is small enough for the CPU.
// Ranks sum gradients in rank order, so the result depends on WORLD_SIZE (in the last bits
// of the weights), never on timing or on restarts.
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { checkpointClient, type CheckpointClient } from '../../src/checkpoint/client.ts';
import { ENV } from '../../src/checkpoint/protocol.ts';
import { seededRandom } from '../../src/lib/random.ts';

const INPUTS = 4;
const SAMPLES = 4096;
const BATCH = 64;
const SEED = 20240611;
const LEARNING_RATE = 0.1;
/** How long ranks wait for each other at start: members of a gang start within seconds, but a slow node pull may take longer. */
const CONNECT_DEADLINE_MS = 120_000;
const CONNECT_RETRY_MS = 200;

const EXIT = { ok: 0, failed: 1, usage: 2, terminated: 143 } as const;

interface Options {
  steps: number;
  stepMs: number;
  hidden: number;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { steps: 600, stepMs: 150, hidden: 32 };
  const names = { '--steps': 'steps', '--step-ms': 'stepMs', '--hidden': 'hidden' } as const;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2) as [string, string | undefined];
    if (!(flag in names)) usage(`unknown argument ${argv[i]}`);
    const raw = inline ?? argv[++i];
    const value = Number(raw);
    if (raw === undefined || !Number.isInteger(value) || value < 0) usage(`${flag} needs a non-negative integer, not ${raw}`);
    opts[names[flag as keyof typeof names]] = value;
  }
  if (opts.hidden < 1) usage('--hidden must be at least 1');
  return opts;
}

function usage(message: string): never {
  process.stderr.write(`train: ${message}\nusage: node --import tsx examples/training/train.ts [--steps N] [--step-ms M] [--hidden H]\n`);
  process.exit(EXIT.usage);
}

function fail(message: string): never {
  process.stderr.write(`train: ${message}\n`);
  process.exit(EXIT.failed);
}

function intEnv(name: string, fallback: number | undefined): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) fail(`${name} is not set`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) fail(`${name}=${raw} is not a non-negative integer`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Data and model


interface DataSet {
  x: Float64Array; // SAMPLES × INPUTS
  y: Float64Array;
}

function makeData(): DataSet {
  const next = seededRandom(SEED);
  const x = new Float64Array(SAMPLES * INPUTS);
  const y = new Float64Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const v = x.subarray(i * INPUTS, (i + 1) * INPUTS);
    for (let k = 0; k < INPUTS; k++) v[k] = next() * 4 - 2;
    y[i] = Math.sin(v[0]) * Math.cos(v[1]) + 0.3 * v[2] * v[3] + 0.2 * Math.tanh(v[0] + v[3]);
  }
  return { x, y };
}

/** The data set indices of step `step`'s batch: a function of the step alone, so a resumed run sees the same batches. */
function batchOf(step: number): Int32Array {
  const next = seededRandom(SEED ^ Math.imul(step, 0x9e3779b1));
  const idx = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) idx[i] = Math.floor(next() * SAMPLES);
  return idx;
}

/** Offsets of each tensor in the one flat parameter vector. */
function layout(h: number) {
  const w1 = 0;
  const b1 = w1 + h * INPUTS;
  const w2 = b1 + h;
  const b2 = w2 + h * h;
  const w3 = b2 + h;
  const b3 = w3 + h;
  return { h, w1, b1, w2, b2, w3, b3, size: b3 + 1 } as const;
}
type Layout = ReturnType<typeof layout>;

function initParams(l: Layout): Float64Array {
  const next = seededRandom(SEED + 1);
  const p = new Float64Array(l.size);
  const fill = (at: number, n: number, fanIn: number) => {
    const scale = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < n; i++) p[at + i] = (next() * 2 - 1) * scale;
  };
  fill(l.w1, l.h * INPUTS, INPUTS);
  fill(l.w2, l.h * l.h, l.h);
  fill(l.w3, l.h, l.h);
  return p; // biases start at 0
}

/**
 * Adds the gradient of Σ (f(x_i) − y_i)² over the samples `idx` to `grad` and returns that
 * sum. Sums, not means: rank 0 divides the whole batch's sum once.
 */
function lossAndGrad(l: Layout, p: Float64Array, data: DataSet, idx: ArrayLike<number>, grad: Float64Array | undefined): number {
  const { h } = l;
  const h1 = new Float64Array(h);
  const h2 = new Float64Array(h);
  const d2 = new Float64Array(h);
  const d1 = new Float64Array(h);
  let loss = 0;
  for (let s = 0; s < idx.length; s++) {
    const xo = idx[s] * INPUTS;
    for (let j = 0; j < h; j++) {
      let a = p[l.b1 + j];
      for (let k = 0; k < INPUTS; k++) a += p[l.w1 + j * INPUTS + k] * data.x[xo + k];
      h1[j] = Math.tanh(a);
    }
    for (let j = 0; j < h; j++) {
      let a = p[l.b2 + j];
      for (let k = 0; k < h; k++) a += p[l.w2 + j * h + k] * h1[k];
      h2[j] = Math.tanh(a);
    }
    let out = p[l.b3];
    for (let j = 0; j < h; j++) out += p[l.w3 + j] * h2[j];
    const err = out - data.y[idx[s]];
    loss += err * err;
    if (!grad) continue;
    const dOut = 2 * err;
    grad[l.b3] += dOut;
    for (let j = 0; j < h; j++) {
      grad[l.w3 + j] += dOut * h2[j];
      d2[j] = dOut * p[l.w3 + j] * (1 - h2[j] * h2[j]);
    }
    d1.fill(0);
    for (let j = 0; j < h; j++) {
      grad[l.b2 + j] += d2[j];
      for (let k = 0; k < h; k++) {
        grad[l.w2 + j * h + k] += d2[j] * h1[k];
        d1[k] += d2[j] * p[l.w2 + j * h + k];
      }
    }
    for (let k = 0; k < h; k++) {
      const dk = d1[k] * (1 - h1[k] * h1[k]);
      grad[l.b1 + k] += dk;
      for (let m = 0; m < INPUTS; m++) grad[l.w1 + k * INPUTS + m] += dk * data.x[xo + m];
    }
  }
  return loss;
}

function weightsHash(p: Float64Array): string {
  return createHash('sha256').update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength)).digest('hex').slice(0, 12);
}

// ---------------------------------------------------------------------------------------
// Wire format: [u32 length of the rest][u32 JSON length][JSON header][float64 LE values]

interface Frame {
  head: Record<string, unknown>;
  data: Float64Array;
}

function encode(head: Record<string, unknown>, data?: Float64Array): Buffer {
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const n = data?.length ?? 0;
  const out = Buffer.allocUnsafe(8 + json.length + n * 8);
  out.writeUInt32LE(4 + json.length + n * 8, 0);
  out.writeUInt32LE(json.length, 4);
  json.copy(out, 8);
  for (let i = 0; i < n; i++) out.writeDoubleLE(data![i], 8 + json.length + i * 8);
  return out;
}

/**
 * One peer connection as a queue of frames. A dropped connection is fatal unless the run
 * is over: the peer died, and without it no step can complete.
 */
class Peer {
  private buf: Buffer = Buffer.alloc(0);
  private frames: Frame[] = [];
  private waiting: ((f: Frame) => void) | undefined;
  done = false;

  constructor(
    readonly socket: Socket,
    private readonly what: () => string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => {}); // 'close' follows and decides
    socket.on('close', () => {
      if (!this.done) fail(`lost the connection to ${this.what()}: a member of the gang is gone`);
    });
  }

  send(head: Record<string, unknown>, data?: Float64Array): void {
    this.socket.write(encode(head, data));
  }

  next(): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 4 + len) break;
      const jsonLen = this.buf.readUInt32LE(4);
      const head = JSON.parse(this.buf.toString('utf8', 8, 8 + jsonLen)) as Record<string, unknown>;
      const n = (len - 4 - jsonLen) / 8;
      const data = new Float64Array(n);
      for (let i = 0; i < n; i++) data[i] = this.buf.readDoubleLE(8 + jsonLen + i * 8);
      this.buf = this.buf.subarray(4 + len);
      if (head.t === 'abort') fail(`${this.what()} aborted the run: ${String(head.reason)}`);
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting({ head, data });
      else this.frames.push({ head, data });
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What every rank must agree on before the first step. */
interface Hello {
  rank: number;
  world: number;
  start: number;
  steps: number;
  hidden: number;
}

function mismatch(mine: Hello, theirs: Hello): string | undefined {
  for (const key of ['world', 'start', 'steps', 'hidden'] as const) {
    if (mine[key] !== theirs[key]) return `rank ${theirs.rank} has ${key} ${theirs[key]}, rank 0 has ${mine[key]}`;
  }
  return undefined;
}

/** Rank 0: accepts the other ranks, checks they agree with it, and returns them in rank order. */
async function acceptPeers(host: string, port: number, me: Hello): Promise<Peer[]> {
  const peers: (Peer | undefined)[] = new Array(me.world).fill(undefined);
  let server: Server | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let joined = 0;
      const timer = setTimeout(() => reject(new Error(`only ${joined + 1} of ${me.world} ranks connected within ${CONNECT_DEADLINE_MS / 1000} s`)), CONNECT_DEADLINE_MS);
      server = createServer((socket) => {
        let rank = -1;
        const peer = new Peer(socket, () => `rank ${rank < 0 ? '?' : rank}`);
        // Until a connection says which rank it is, losing it costs nothing.
        peer.done = true;
        peer.next().then(({ head }) => {
          const hello = head as unknown as Hello;
          const problem =
            head.t !== 'hello' || !Number.isInteger(hello.rank) || hello.rank < 1 || hello.rank >= me.world
              ? `bad hello ${JSON.stringify(head)}`
              : peers[hello.rank]
                ? `rank ${hello.rank} connected twice`
                : mismatch(me, hello);
          if (problem) {
            peer.send({ t: 'abort', reason: problem });
            clearTimeout(timer);
            reject(new Error(problem));
            return;
          }
          rank = hello.rank;
          peer.done = false;
          peers[rank] = peer;
          if (++joined === me.world - 1) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      server.on('error', reject);
      server.listen(port, host);
    });
  } catch (err) {
    fail(`rank 0: ${(err as Error).message}`);
  } finally {
    server?.close(); // the gang is complete: no one else may join
  }
  return peers.slice(1) as Peer[];
}

/** Ranks 1..W-1: connect to rank 0, retrying while it starts, until the deadline. */
async function connectToRoot(host: string, port: number, me: Hello): Promise<Peer> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (;;) {
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect(port, host);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
      const peer = new Peer(socket, () => 'rank 0');
      peer.send({ t: 'hello', ...me });
      return peer;
    } catch (err) {
      if (Date.now() > deadline) fail(`rank ${me.rank}: could not reach rank 0 at ${host}:${port} within ${CONNECT_DEADLINE_MS / 1000} s: ${(err as Error).message}`);
      await sleep(CONNECT_RETRY_MS);
    }
  }
}

/** Loopback masters are bound as given; any other address may not be one of this host's (a service name), so listen everywhere. */
function bindHost(masterAddr: string): string {
  return masterAddr === 'localhost' || masterAddr.startsWith('127.') || masterAddr === '::1' ? masterAddr : '0.0.0.0';
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const world = intEnv('WORLD_SIZE', 1);
  const rank = intEnv('RANK', 0);
  if (world < 1 || rank >= world) fail(`RANK=${rank} must be below WORLD_SIZE=${world}`);

  // Listen for the agent's signals before anything slow, so that a request is not missed.
  const ckpt: CheckpointClient | undefined = process.env[ENV.checkpointDir] ? checkpointClient() : undefined;
  const stop = () => process.exit(EXIT.terminated);
  if (ckpt) ckpt.onStop(stop);
  else process.on('SIGTERM', stop);

  const l = layout(opts.hidden);
  const data = makeData();
  let params = initParams(l);
  let start = 0;
  let restored: string | undefined;
  try {
    const from = ckpt?.restore();
    if (from) {
      const state = JSON.parse(from.readText('state.json')) as { step: number; hidden: number; params: number };
      if (state.hidden !== opts.hidden || state.params !== l.size) fail(`checkpoint ${from.id} is for --hidden ${state.hidden}, not ${opts.hidden}`);
      const bytes = from.read('weights.f64');
      if (bytes.length !== l.size * 8 || state.step !== from.step) fail(`checkpoint ${from.id} is inconsistent (weights ${bytes.length} bytes, state step ${state.step}, manifest step ${from.step})`);
      params = new Float64Array(l.size);
      for (let i = 0; i < l.size; i++) params[i] = bytes.readDoubleLE(i * 8);
      start = from.step;
      restored = from.id;
    }
  } catch (err) {
    fail((err as Error).message);
  }
  if (start > opts.steps) fail(`the checkpoint is at step ${start}, past --steps ${opts.steps}`);
  process.stdout.write(`start rank ${rank}/${world} restore ${restored ?? 'none'} step ${start}\n`);

  const me: Hello = { rank, world, start, steps: opts.steps, hidden: opts.hidden };
  let peers: Peer[] = []; // rank 0: ranks 1..W-1 in order; others: [rank 0]
  if (world > 1) {
    const addr = process.env.MASTER_ADDR || fail('MASTER_ADDR is not set (needed when WORLD_SIZE > 1)');
    const port = intEnv('MASTER_PORT', undefined);
    if (port < 1 || port > 65535) fail(`MASTER_PORT=${port} is not a port`);
    peers = rank === 0 ? await acceptPeers(bindHost(addr), port, me) : [await connectToRoot(addr, port, me)];
  }

  // This rank's share of each batch: every world-th sample, so shards differ by at most one.
  const shard = new Int32Array(Math.ceil(Math.max(0, BATCH - rank) / world));
  for (let step = start + 1; step <= opts.steps; step++) {
    if (opts.stepMs > 0) await sleep(opts.stepMs);
    const batch = batchOf(step);
    for (let i = 0; i < shard.length; i++) shard[i] = batch[rank + i * world];
    const grad = new Float64Array(l.size);
    const loss = lossAndGrad(l, params, data, shard, grad);
    const request = ckpt?.pending() ?? null;

    let avg: Float64Array;
    let batchLoss: number;
    let chosen: string | null;
    if (rank === 0) {
      const frames = await Promise.all(peers.map((p) => p.next()));
      // Summed in rank order whatever order the messages came in: the same bits every run.
      let total = loss;
      chosen = request;
      for (const [i, f] of frames.entries()) {
        if (f.head.step !== step || f.data.length !== l.size) fail(`rank ${i + 1} sent step ${String(f.head.step)} with ${f.data.length} values, expected step ${step} with ${l.size}`);
        for (let k = 0; k < l.size; k++) grad[k] += f.data[k];
        total += f.head.loss as number;
        chosen ??= (f.head.request as string | null) ?? null;
      }
      avg = grad;
      for (let k = 0; k < l.size; k++) avg[k] /= BATCH;
      batchLoss = total / BATCH;
      for (const p of peers) p.send({ t: 'avg', step, loss: batchLoss, checkpoint: chosen }, avg);
    } else {
      peers[0].send({ t: 'step', step, loss, request }, grad);
      const f = await peers[0].next();
      if (f.head.step !== step || f.data.length !== l.size) fail(`rank 0 answered step ${String(f.head.step)}, expected ${step}`);
      avg = f.data;
      batchLoss = f.head.loss as number;
      chosen = (f.head.checkpoint as string | null) ?? null;
    }
    if (step === opts.steps) for (const p of peers) p.done = true; // from here a closing peer has simply finished

    for (let k = 0; k < l.size; k++) params[k] -= LEARNING_RATE * avg[k];
    process.stdout.write(`step ${step} loss ${batchLoss.toPrecision(8)}\n`);

    if (chosen) {
      if (!ckpt) {
        process.stderr.write(`train: rank ${rank}: the gang checkpoints ${chosen} at step ${step} but ${ENV.checkpointDir} is not set here\n`);
        continue;
      }
      const weights = Buffer.allocUnsafe(l.size * 8);
      for (let k = 0; k < l.size; k++) weights.writeDoubleLE(params[k], k * 8);
      ckpt.save(chosen, step, {
        'weights.f64': weights,
        'state.json': JSON.stringify({ step, hidden: opts.hidden, params: l.size, world }),
      });
      process.stdout.write(`checkpoint ${chosen} step ${step}\n`);
    }
  }

  const all = new Int32Array(SAMPLES).map((_, i) => i);
  const final = lossAndGrad(l, params, data, all, undefined) / SAMPLES;
  process.stdout.write(`result ${final.toPrecision(12)} ${weightsHash(params)}\n`);
  for (const p of peers) p.socket.end();
  ckpt?.close();
}

main().catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
