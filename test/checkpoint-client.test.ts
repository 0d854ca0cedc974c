// The workload's side of the checkpoint protocol: src/checkpoint/client.ts and its Python
// twin examples/checkpoint/k8s4ai_checkpoint.py, checked against what the agent reads
// (protocol.readCheckpoint / listCheckpoints), including the signals, which need a process
// of their own.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkpointClient } from '../src/checkpoint/client.ts';
import { ENV, MANIFEST_FILE, REQUEST_FILE, listCheckpoints, readCheckpoint, writeRequest } from '../src/checkpoint/protocol.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT_URL = pathToFileURL(join(ROOT, 'src/checkpoint/client.ts')).href;
const PY_HELPER_DIR = join(ROOT, 'examples/checkpoint');

const scratch = mkdtempSync(join(tmpdir(), 'k8s4ai-ckpt-client-'));
const children = new Set<ChildProcess>();
after(() => {
  // A failed test may leave its child waiting for a signal that never came.
  for (const c of children) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => {
  const d = join(scratch, `m${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const request = (id: string) => ({ id, reason: 'Preemption' as const, time: new Date().toISOString() });

/** A child process with its output gathered, and a way to wait for a line of its stdout. */
function child(cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; line: (re: RegExp) => Promise<string>; exit: Promise<number | null> } {
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  let closed = false;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    wake();
  });
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) =>
    proc.on('close', (code) => {
      closed = true;
      children.delete(proc);
      wake();
      resolve(code);
    }),
  );
  const line = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        // Whole lines only: a line may arrive in pieces.
        const found = out.split('\n').slice(0, -1).find((l) => re.test(l));
        if (found !== undefined) resolve(found);
        else if (closed) reject(new Error(`${cmd} exited ${proc.exitCode} before printing ${re}; stdout:\n${out}\nstderr:\n${err}`));
        else waiters.push(check);
      };
      check();
    });
  return { proc, line, exit };
}

describe('checkpoint client', () => {
  it('says which variable is missing, and works standalone with a folder of its own', () => {
    assert.throws(() => checkpointClient({ env: {}, signals: false }), /K8S4AI_CHECKPOINT_DIR is not set.*\{ dir \}/);
    const dir = freshDir();
    const c = checkpointClient({ dir, env: {}, signals: false });
    assert.equal(c.dir, dir);
    assert.equal(c.restore(), undefined);
    assert.equal(c.pending(), undefined);
  });

  it('saves a checkpoint the agent sees complete, and restores it', () => {
    const dir = freshDir();
    const c = checkpointClient({ env: { [ENV.checkpointDir]: dir }, signals: false });
    const weights = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const found = c.save('ckpt-1', 12, { 'weights.bin': weights, 'opt/state.json': '{"lr":0.1}' });
    assert.equal(found.step, 12);
    assert.equal(found.files, 2);
    assert.equal(found.sizeBytes, 9 + 10);
    assert.deepEqual(listCheckpoints(dir).map((x) => [x.id, x.step]), [['ckpt-1', 12]]);

    const r = checkpointClient({ env: { [ENV.checkpointDir]: dir, [ENV.restoreCheckpoint]: 'ckpt-1' }, signals: false }).restore();
    assert.ok(r);
    assert.equal(r.id, 'ckpt-1');
    assert.equal(r.step, 12);
    assert.equal(r.dir, join(dir, 'ckpt-1'));
    assert.deepEqual(r.files, ['weights.bin', 'opt/state.json']);
    assert.deepEqual(new Uint8Array(r.read('weights.bin')), weights);
    assert.equal(r.readText('opt/state.json'), '{"lr":0.1}');
    assert.throws(() => r.read('nope.bin'), /no file "nope.bin"/);

    // Saving the same id again replaces it whole.
    c.save('ckpt-1', 13, { 'weights.bin': new Uint8Array(3) });
    assert.deepEqual(listCheckpoints(dir).map((x) => [x.id, x.step, x.files, x.sizeBytes]), [['ckpt-1', 13, 1, 3]]);
  });

  it('rejects ids and file names the agent would not accept', () => {
    const c = checkpointClient({ dir: freshDir(), signals: false });
    assert.throws(() => c.save('../up', 1, {}), /checkpoint id/);
    assert.throws(() => c.save('ok', 1, { '../x': 'a' }), /file name/);
    assert.throws(() => c.save('ok', 1, { [MANIFEST_FILE]: 'a' }), /file name/);
    assert.throws(() => c.save('ok', -1, {}), /step/);
  });

  it('does not count checkpoints without a manifest or with a file of the wrong size', () => {
    const dir = freshDir();
    const c = checkpointClient({ dir, signals: false });
    c.save('good', 5, { 'w.bin': 'abcdef' });
    // Files written, manifest not yet: a save cut short.
    mkdirSync(join(dir, 'no-manifest'));
    writeFileSync(join(dir, 'no-manifest', 'w.bin'), 'abcdef');
    // A manifest that lists a size the file does not have.
    c.save('short', 6, { 'w.bin': 'abcdef' });
    truncateSync(join(dir, 'short', 'w.bin'), 3);
    // A manifest naming a file that is not there.
    c.save('missing', 7, { 'w.bin': 'abcdef' });
    rmSync(join(dir, 'missing', 'w.bin'));

    assert.equal(readCheckpoint(dir, 'no-manifest'), undefined);
    assert.equal(readCheckpoint(dir, 'short'), undefined);
    assert.equal(readCheckpoint(dir, 'missing'), undefined);
    assert.deepEqual(listCheckpoints(dir).map((x) => x.id), ['good']);
    assert.throws(() => checkpointClient({ dir, restoreId: 'short', signals: false }).restore(), /K8S4AI_RESTORE_CHECKPOINT=short: no complete checkpoint/);
  });

  it('reports a request from the .request file and clears it once saved', () => {
    const dir = freshDir();
    const c = checkpointClient({ dir, signals: false });
    assert.equal(c.pending(), undefined);
    writeRequest(dir, request('r1'));
    assert.equal(c.pending(), 'r1');
    c.save('r1', 3, { 'a.txt': 'x' });
    assert.equal(existsSync(join(dir, REQUEST_FILE)), false);
    assert.equal(c.pending(), undefined);

    // A newer request written before the save finished survives it.
    writeRequest(dir, request('r3'));
    c.save('r2', 4, { 'a.txt': 'x' });
    assert.equal(c.pending(), 'r3');

    // A request for a checkpoint already complete here is stale (saved before a restart,
    // or at a step another member chose): not pending, and cleared.
    writeRequest(dir, request('r2'));
    assert.equal(c.pending(), undefined);
    assert.equal(existsSync(join(dir, REQUEST_FILE)), false);
  });

  describe('signals (in a child process)', { timeout: 60_000 }, () => {
    const script = (body: string) => {
      const path = join(scratch, `child-${n++}.mjs`);
      writeFileSync(path, `import { checkpointClient } from ${JSON.stringify(CLIENT_URL)};\n${body}\n`);
      return ['--import', 'tsx', path];
    };
    // Polls pending() until a request shows, saves it, and exits.
    const saver = script(`
      const c = checkpointClient();
      console.log('first ' + (c.pending() ?? 'none'));
      const t = setInterval(() => {
        const id = c.pending();
        if (!id) return;
        c.save(id, 7, { 'a.txt': 'from child' });
        console.log('saved ' + id);
        clearInterval(t);
      }, 10);`);

    it('SIGUSR1 makes the client read the request', async () => {
      const dir = freshDir();
      const c = child(process.execPath, saver, { [ENV.checkpointDir]: dir });
      assert.equal(await c.line(/^first /), 'first none');
      // Without the signal the client does not read the file again; with it, it does.
      writeRequest(dir, request('sig-1'));
      c.proc.kill('SIGUSR1');
      assert.equal(await c.line(/^saved /), 'saved sig-1');
      assert.equal(await c.exit, 0);
      assert.deepEqual(listCheckpoints(dir).map((x) => [x.id, x.step]), [['sig-1', 7]]);
    });

    it('a request written before the process listened is not missed', async () => {
      const dir = freshDir();
      writeRequest(dir, request('early'));
      const c = child(process.execPath, saver, { [ENV.checkpointDir]: dir });
      assert.equal(await c.line(/^first /), 'first early');
      assert.equal(await c.exit, 0);
      assert.equal(readCheckpoint(dir, 'early')?.step, 7);
    });

    it('SIGTERM runs onStop, or exits 143 when nothing is registered', async () => {
      const withStop = child(
        process.execPath,
        script(`
          const c = checkpointClient();
          c.onStop((s) => { console.log('stop ' + s + ' ' + c.stopping); process.exit(0); });
          console.log('ready');
          setInterval(() => {}, 1000);`),
        { [ENV.checkpointDir]: freshDir() },
      );
      await withStop.line(/^ready$/);
      withStop.proc.kill('SIGTERM');
      assert.equal(await withStop.line(/^stop /), 'stop SIGTERM true');
      assert.equal(await withStop.exit, 0);

      const without = child(process.execPath, script(`checkpointClient(); console.log('ready'); setInterval(() => {}, 1000);`), { [ENV.checkpointDir]: freshDir() });
      await without.line(/^ready$/);
      without.proc.kill('SIGTERM');
      assert.equal(await without.exit, 143);
    });
  });

  describe('the Python helper', { timeout: 60_000 }, () => {
    const python = spawnSync('python3', ['--version']).status === 0;
    const py = (code: string) => ['-c', `import sys\nsys.path.insert(0, ${JSON.stringify(PY_HELPER_DIR)})\nfrom k8s4ai_checkpoint import Checkpoint\n${code}`];

    it('saves what the agent reads and restores what the TypeScript client saved', { skip: python ? false : 'python3 is not on PATH' }, () => {
      const dir = freshDir();
      writeRequest(dir, request('py-1'));
      const save = spawnSync('python3', py(`c = Checkpoint()\ncid = c.pending()\nc.save(cid, 21, {"weights.bin": bytes(range(10)), "sub/meta.json": '{"a": 1}'})\nprint(cid, c.pending())`), {
        env: { ...process.env, [ENV.checkpointDir]: dir },
        encoding: 'utf8',
      });
      assert.equal(save.status, 0, save.stderr);
      assert.equal(save.stdout.trim(), 'py-1 None');
      assert.equal(existsSync(join(dir, REQUEST_FILE)), false);
      assert.deepEqual(listCheckpoints(dir).map((x) => [x.id, x.step, x.files, x.sizeBytes]), [['py-1', 21, 2, 18]]);

      checkpointClient({ dir, signals: false }).save('ts-1', 22, { 'w.bin': 'hello' });
      const restore = spawnSync('python3', py(`r = Checkpoint().restore()\nprint(r.id, r.step, r.read_text("w.bin"))`), {
        env: { ...process.env, [ENV.checkpointDir]: dir, [ENV.restoreCheckpoint]: 'ts-1' },
        encoding: 'utf8',
      });
      assert.equal(restore.status, 0, restore.stderr);
      assert.equal(restore.stdout.trim(), 'ts-1 22 hello');

      const bad = spawnSync('python3', py(`Checkpoint()`), { env: { ...process.env, [ENV.checkpointDir]: '' }, encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /K8S4AI_CHECKPOINT_DIR is not set/);
    });

    it('SIGUSR1 makes the Python helper read the request', { skip: python ? false : 'python3 is not on PATH' }, async () => {
      const dir = freshDir();
      const c = child(
        'python3',
        py(`import time\nc = Checkpoint()\nprint("first", c.pending(), flush=True)\nwhile not c.pending():\n    time.sleep(0.01)\ncid = c.pending()\nc.save(cid, 9, {"a.txt": "x"})\nprint("saved", cid, flush=True)`),
        { [ENV.checkpointDir]: dir },
      );
      assert.equal(await c.line(/^first /), 'first None');
      writeRequest(dir, request('py-sig'));
      c.proc.kill('SIGUSR1');
      assert.equal(await c.line(/^saved /), 'saved py-sig');
      assert.equal(await c.exit, 0);
      assert.equal(readCheckpoint(dir, 'py-sig')?.step, 9);
    });
  });
});
