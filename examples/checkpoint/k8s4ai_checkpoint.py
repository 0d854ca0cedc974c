"""The workload's side of the k8s4ai checkpoint protocol, standard library only.

The same helper as src/checkpoint/client.ts, for Python training scripts (copy this file
next to yours):

    from k8s4ai_checkpoint import Checkpoint

    ckpt = Checkpoint()                          # K8S4AI_CHECKPOINT_DIR; Checkpoint(dir=...) standalone
    restored = ckpt.restore()                    # K8S4AI_RESTORE_CHECKPOINT, or None
    step = load(restored.read("weights.bin"), restored.step) if restored else 0
    ckpt.on_stop(lambda signum: sys.exit(143))   # SIGTERM: the agent is stopping us
    while step < steps:
        step += 1
        train(step)
        cid = ckpt.pending()                     # a checkpoint the agent asked for
        if cid:
            ckpt.save(cid, step, {"weights.bin": weights_bytes})

The protocol (src/checkpoint/protocol.ts is its reference): the agent writes
<dir>/.request (JSON {id, reason, time}) and sends SIGUSR1; the workload writes checkpoint
id into <dir>/<id>/, its files first and then manifest.json ({id, step, files: [{name,
size}], time}) renamed into place. A checkpoint counts for a gang only when every member
saved it at the same step: agreeing on that step is the workload's business.
"""

import json
import os
import re
import signal
import sys
import threading
from datetime import datetime, timezone

ENV_CHECKPOINT_DIR = "K8S4AI_CHECKPOINT_DIR"
ENV_RESTORE_CHECKPOINT = "K8S4AI_RESTORE_CHECKPOINT"
REQUEST_FILE = ".request"
# Written once SIGUSR1 is handled: only then does the agent signal (SIGUSR1 kills by default).
LISTENING_FILE = ".listening"
MANIFEST_FILE = "manifest.json"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _valid_id(cid):
    return isinstance(cid, str) and bool(_ID_RE.match(cid)) and cid != MANIFEST_FILE


def _check_name(name):
    # The rule the agent applies to a manifest's names (protocol.ts readCheckpoint).
    if not name or ".." in name or name.startswith("/") or "\\" in name or "\0" in name or name == MANIFEST_FILE or name.endswith("/"):
        raise ValueError('checkpoint file name "%s" must be a relative path without "..", and not "%s"' % (name, MANIFEST_FILE))


def _fsync_dir(path):
    # Makes new entries durable; platforms that refuse it are no worse off than before.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_checkpoint(member_dir, cid):
    """The checkpoint's manifest if it is complete (every file there with its size), else None."""
    folder = os.path.join(member_dir, cid)
    try:
        with open(os.path.join(folder, MANIFEST_FILE), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    step = manifest.get("step")
    if manifest.get("id") != cid or not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(manifest.get("files"), list):
        return None
    for entry in manifest["files"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or ".." in name or name.startswith("/"):
            return None
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or os.path.getsize(path) != entry.get("size"):
            return None
    return manifest


def _read_request(member_dir):
    try:
        with open(os.path.join(member_dir, REQUEST_FILE), encoding="utf-8") as f:
            request = json.load(f)
    except (OSError, ValueError):
        return None
    return request if isinstance(request, dict) and isinstance(request.get("id"), str) else None


class Restored:
    """The checkpoint a member resumes from."""

    def __init__(self, cid, step, folder, files):
        self.id = cid
        self.step = step
        self.dir = folder
        self.files = files

    def read(self, name):
        if name not in self.files:
            raise KeyError('checkpoint %s has no file "%s"' % (self.id, name))
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def read_text(self, name):
        return self.read(name).decode("utf-8")


class Checkpoint:
    """This process's checkpoint folder, its restore point, and the agent's requests and stops."""

    def __init__(self, dir=None, restore_id=None, env=None, signals=True):
        env = os.environ if env is None else env
        self.dir = dir or env.get(ENV_CHECKPOINT_DIR)
        if not self.dir:
            raise RuntimeError(
                "%s is not set: the process was not started by a k8s4ai agent with a checkpoint policy; "
                "pass dir= to Checkpoint to use a folder of your own (standalone mode)" % ENV_CHECKPOINT_DIR
            )
        self.restore_id = restore_id or env.get(ENV_RESTORE_CHECKPOINT) or None
        self.stopping = False
        self._signals = signals
        # True while the request file may have changed since it was last read; it starts
        # True because the agent may have written it (and signalled) before we listened.
        self._recheck = True
        self._pending = None
        self._stop_fns = []
        # Python's default for SIGUSR1 is to die, so listen as early as possible. Signal
        # handlers can only be set from the main thread.
        if signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._on_usr1)
            signal.signal(signal.SIGTERM, self._on_term)
            try:
                os.makedirs(self.dir, exist_ok=True)
                with open(os.path.join(self.dir, LISTENING_FILE), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass
        else:
            self._signals = False

    def _on_usr1(self, signum, frame):
        self._recheck = True

    def _on_term(self, signum, frame):
        self.stopping = True
        # With nothing registered SIGTERM ends the process as it would without the helper,
        # so that a script that never looks at `stopping` still obeys the agent.
        if not self._stop_fns:
            sys.exit(143)
        for fn in list(self._stop_fns):
            fn(signum)

    def on_stop(self, fn):
        """Runs fn(signum) on SIGTERM; while none is registered SIGTERM exits with 143."""
        self._stop_fns.append(fn)

    def restore(self):
        """The checkpoint to resume from, or None on a fresh start; raises if it is not complete."""
        if self.restore_id is None:
            return None
        manifest = read_checkpoint(self.dir, self.restore_id)
        if manifest is None:
            # Starting afresh would leave this member at another step than its gang.
            raise RuntimeError(
                "%s=%s: no complete checkpoint %s (manifest missing or files short)"
                % (ENV_RESTORE_CHECKPOINT, self.restore_id, os.path.join(self.dir, self.restore_id))
            )
        return Restored(self.restore_id, manifest["step"], os.path.join(self.dir, self.restore_id), [f["name"] for f in manifest["files"]])

    def pending(self):
        """The id of a requested checkpoint not yet saved, or None. Cheap: call it every step."""
        if self._recheck or not self._signals:
            self._recheck = False
            self._pending = None
            request = _read_request(self.dir)
            if request and _valid_id(request["id"]):
                # Already complete here: saved before a restart, or at a step another member
                # chose. Saving again would rewrite a checkpoint the gang may restore from.
                if read_checkpoint(self.dir, request["id"]) is not None:
                    self._clear_request(request["id"])
                else:
                    self._pending = request["id"]
        return self._pending

    def save(self, cid, step, files):
        """Writes checkpoint cid at step: files (synced), then the manifest atomically; clears its request."""
        if not _valid_id(cid):
            raise ValueError('checkpoint id "%s" must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit' % cid)
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError("checkpoint %s: step must be a non-negative integer, not %r" % (cid, step))
        folder = os.path.join(self.dir, cid)
        os.makedirs(folder, exist_ok=True)
        manifest_path = os.path.join(folder, MANIFEST_FILE)
        # A manifest left by an earlier try would describe other files: the folder must read
        # as incomplete until ours is in place.
        try:
            os.unlink(manifest_path)
        except FileNotFoundError:
            pass
        listed = []
        folders = {self.dir, folder}
        for name, data in files.items():
            _check_name(name)
            path = os.path.join(folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            folders.add(os.path.dirname(path))
            data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            _write_synced(path, data)
            listed.append({"name": name, "size": len(data)})
        for f in folders:
            _fsync_dir(f)
        manifest = {"id": cid, "step": step, "files": listed, "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
        tmp = "%s.tmp-%d" % (manifest_path, os.getpid())
        _write_synced(tmp, json.dumps(manifest).encode("utf-8"))
        os.replace(tmp, manifest_path)
        _fsync_dir(folder)
        if self._pending == cid:
            self._pending = None
        self._clear_request(cid)
        return manifest

    def _clear_request(self, cid):
        # Only our request: a newer one written meanwhile must survive.
        request = _read_request(self.dir)
        if request and request["id"] == cid:
            try:
                os.unlink(os.path.join(self.dir, REQUEST_FILE))
            except FileNotFoundError:
                pass

    def close(self):
        """Gives SIGUSR1 and SIGTERM back their default handling."""
        if self._signals:
            try:
                os.remove(os.path.join(self.dir, LISTENING_FILE))
            except OSError:
                pass
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._signals = False
