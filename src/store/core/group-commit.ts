// Group commit: writes submitted during one turn of the event loop are handed to one
// synchronous `commit` call (for SQLite: one transaction, one fsync), and each caller's
// promise settles only after that call returns. The commit function decides, write by
// write and in submission order, whether each one succeeds; if it throws, every write of
// the batch fails with that error.

export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Pending<W, R> {
  write: W;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommitter<W, R> {
  private queue: Pending<W, R>[] = [];
  private timer: NodeJS.Immediate | undefined;

  constructor(
    private readonly commit: (writes: W[]) => Outcome<R>[],
    /** Most writes per commit, so one huge burst doesn't stall the event loop. */
    private readonly maxBatch = 1000,
  ) {}

  submit(write: W): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  /** Commits everything queued, now (used when closing). */
  flushAll(): void {
    this.flush(true);
  }

  private schedule(): void {
    // setImmediate rather than a microtask: it runs after the poll phase, so writes from
    // every request that arrived in this turn of the event loop join the batch.
    this.timer ??= setImmediate(() => this.flush(false));
  }

  private flush(all: boolean): void {
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
    do {
      this.commitBatch(this.queue.splice(0, this.maxBatch));
    } while (all && this.queue.length > 0);
    // Leave the rest of a huge burst for the next turn so reads and deliveries get to run.
    if (this.queue.length > 0) this.schedule();
  }

  private commitBatch(batch: Pending<W, R>[]): void {
    if (batch.length === 0) return;
    let outcomes: Outcome<R>[];
    try {
      outcomes = this.commit(batch.map((p) => p.write));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) p.resolve(outcome.value);
      else p.reject(outcome.error);
    });
  }
}
