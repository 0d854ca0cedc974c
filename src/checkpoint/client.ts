// The workload's side of the checkpoint protocol (./protocol.ts), so that a training script
// speaks it in a few lines:
//
//   const ckpt = checkpointClient();                 // K8S4AI_CHECKPOINT_DIR; { dir } standalone
//   const from = ckpt.restore();                     // K8S4AI_RESTORE_CHECKPOINT, or undefined
//   let step = from ? load(from.read('weights.bin'), from.step) : 0;
//   ckpt.onStop(() => process.exit(143));            // SIGTERM: the agent is stopping us
//   while (step < steps) {
//     train(++step);
//     const id = ckpt.pending();                     // a checkpoint the agent asked for
//     if (id) ckpt.save(id, step, { 'weights.bin': weights });
//   }
//
// A checkpoint counts for a gang only when every member saved it at the same step, and the
// members see a request at different steps. Agreeing on that step is the workload's business
// (examples/training/train.ts piggybacks it on the gradient all-reduce); this client only
// reports requests and writes checkpoints.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ENV,
  LISTENING_FILE,
  MANIFEST_FILE,
  REQUEST_FILE,
  assertCheckpointId,
  readCheckpoint,
  readRequest,
  writeFileAtomic,
  type FoundCheckpoint,
  type Manifest,
  type ManifestFile,
} from './protocol.ts';

export interface CheckpointClientOptions {
  /** The member's checkpoint folder. Default K8S4AI_CHECKPOINT_DIR; giving it is the standalone mode. */
  dir?: string;
  /** The checkpoint to resume from. Default K8S4AI_RESTORE_CHECKPOINT. */
  restoreId?: string;
  /** Where to read the variables from (tests); default process.env. */
  env?: Record<string, string | undefined>;
  /**
   * Listen for SIGUSR1 (a request) and SIGTERM (stop). Default true. Without signals,
   * pending() reads the request file on every call instead of after a signal.
   */
  signals?: boolean;
}

/** The checkpoint a member resumes from. */
export interface RestoredCheckpoint {
  id: string;
  step: number;
  /** The checkpoint's folder, `<checkpoint dir>/<id>`. */
  dir: string;
  /** The file names its manifest lists. */
  files: string[];
  read(name: string): Buffer;
  readText(name: string): string;
}

export type CheckpointFiles = Record<string, string | Uint8Array>;

export interface CheckpointClient {
  /** The member's checkpoint folder. */
  readonly dir: string;
  /** The checkpoint to resume from, as given; undefined on a fresh start. */
  readonly restoreId: string | undefined;
  /** True once SIGTERM arrived. */
  readonly stopping: boolean;
  /** The checkpoint to resume from, or undefined on a fresh start; throws if it is not complete. */
  restore(): RestoredCheckpoint | undefined;
  /** The id of a requested checkpoint not yet saved, or undefined. Cheap: call it every step. */
  pending(): string | undefined;
  /**
   * Writes checkpoint `id` taken at `step`: every file (synced), then the manifest
   * atomically; clears the request if it asked for this id. Returns it as the agent sees it.
   */
  save(id: string, step: number, files: CheckpointFiles): FoundCheckpoint;
  /**
   * Runs `fn` on SIGTERM. While no callback is registered SIGTERM ends the process with
   * 143 (128 + 15), as it would without the client: listening must not make a workload
   * that never looks at `stopping` ignore the agent.
   */
  onStop(fn: (signal: 'SIGTERM') => void): void;
  /** Stops listening for signals. */
  close(): void;
}

/**
 * The client for this process: its folder and restore id from the environment the agent
 * sets (or from `options`), listening for the agent's signals.
 */
export function checkpointClient(options: CheckpointClientOptions = {}): CheckpointClient {
  const env = options.env ?? process.env;
  const dir = options.dir ?? env[ENV.checkpointDir];
  if (!dir) {
    throw new Error(
      `${ENV.checkpointDir} is not set: the process was not started by a k8s4ai agent with a checkpoint policy; ` +
        `pass { dir } to checkpointClient to use a folder of your own (standalone mode)`,
    );
  }
  const restoreId = options.restoreId ?? (env[ENV.restoreCheckpoint] || undefined);
  const signals = options.signals ?? true;

  // True when the request file may have changed since it was last read. It starts true
  // because the agent may have written the file (and signalled) before we listened.
  let recheck = true;
  let pendingId: string | undefined;
  let stopping = false;
  const stopFns: Array<(signal: 'SIGTERM') => void> = [];

  const onUsr1 = () => {
    recheck = true;
  };
  const onTerm = () => {
    stopping = true;
    if (stopFns.length === 0) process.exit(143);
    for (const fn of stopFns) fn('SIGTERM');
  };
  if (signals) {
    process.on('SIGUSR1', onUsr1);
    process.on('SIGTERM', onTerm);
    // Now the agent may signal us.
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, LISTENING_FILE), String(process.pid));
    } catch {
      // a read-only folder: the agent then never signals, and requests are seen at the next start
    }
  }

  return {
    dir,
    restoreId,
    get stopping() {
      return stopping;
    },

    restore() {
      if (restoreId === undefined) return undefined;
      const found = readCheckpoint(dir, restoreId);
      // Starting afresh instead would leave this member at another step than the rest of
      // its gang, so a checkpoint that is not there is an error, not a fresh start.
      if (!found) throw new Error(`${ENV.restoreCheckpoint}=${restoreId}: no complete checkpoint ${join(dir, restoreId)} (manifest missing or files short)`);
      const manifest = JSON.parse(readFileSync(join(found.path, MANIFEST_FILE), 'utf8')) as Manifest;
      const files = manifest.files.map((f) => f.name);
      const read = (name: string): Buffer => {
        if (!files.includes(name)) throw new Error(`checkpoint ${restoreId} has no file "${name}" (it has ${files.join(', ') || 'none'})`);
        return readFileSync(join(found.path, name));
      };
      return { id: found.id, step: found.step, dir: found.path, files, read, readText: (name) => read(name).toString('utf8') };
    },

    pending() {
      if (recheck || !signals) {
        recheck = false;
        const request = readRequest(dir);
        pendingId = undefined;
        if (request && validId(request.id)) {
          // A request for a checkpoint already complete here is stale: saved before a
          // restart that came before the file was cleared, or saved at a step another
          // member chose before our own request arrived. Saving it again would rewrite a
          // checkpoint the gang may be restoring from, at another step.
          if (readCheckpoint(dir, request.id)) clearRequest(dir, request.id);
          else pendingId = request.id;
        }
      }
      return pendingId;
    },

    save(id, step, files) {
      assertCheckpointId(id);
      if (!Number.isInteger(step) || step < 0) throw new Error(`checkpoint ${id}: step must be a non-negative integer, not ${step}`);
      const folder = join(dir, id);
      mkdirSync(folder, { recursive: true });
      // An earlier try at this id (a crash mid-save) may have left a manifest: drop it first
      // so that the folder reads as incomplete until ours is in place, never as an old
      // manifest over new files.
      rmSync(join(folder, MANIFEST_FILE), { force: true });
      const listed: ManifestFile[] = [];
      const folders = new Set([dir, folder]);
      for (const [name, data] of Object.entries(files)) {
        assertFileName(name);
        const path = join(folder, name);
        mkdirSync(dirname(path), { recursive: true });
        folders.add(dirname(path));
        const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        writeSynced(path, bytes);
        listed.push({ name, size: bytes.byteLength });
      }
      // The files' names must be on disk before a manifest that lists them.
      for (const f of folders) syncFolder(f);
      const manifest: Manifest = { id, step, files: listed, time: new Date().toISOString() };
      writeFileAtomic(join(folder, MANIFEST_FILE), JSON.stringify(manifest));
      syncFolder(folder);
      if (pendingId === id) pendingId = undefined;
      clearRequest(dir, id);
      const found = readCheckpoint(dir, id);
      if (!found) throw new Error(`checkpoint ${id}: written but not complete in ${folder} (is something else writing there?)`);
      return found;
    },

    onStop(fn) {
      stopFns.push(fn);
    },

    close() {
      if (signals) rmSync(join(dir, LISTENING_FILE), { force: true });
      process.off('SIGUSR1', onUsr1);
      process.off('SIGTERM', onTerm);
    },
  };
}

function validId(id: string): boolean {
  try {
    assertCheckpointId(id);
    return true;
  } catch {
    return false;
  }
}

/** The same rule protocol.readCheckpoint applies to a manifest's names, checked before writing. */
function assertFileName(name: string): void {
  if (!name || name.includes('..') || name.startsWith('/') || name.includes('\\') || name.includes('\0') || name === MANIFEST_FILE || name === '.' || name.endsWith('/')) {
    throw new Error(`checkpoint file name "${name}" must be a relative path without "..", and not "${MANIFEST_FILE}"`);
  }
}

/** Removes the request file if it still asks for `id`: a newer request must survive. */
function clearRequest(dir: string, id: string): void {
  if (readRequest(dir)?.id === id) rmSync(join(dir, REQUEST_FILE), { force: true });
}

function writeSynced(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync on a folder makes its new entries durable; some platforms refuse it, which is no worse than not trying. */
function syncFolder(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // EISDIR/EPERM/EINVAL on platforms without directory fsync.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
