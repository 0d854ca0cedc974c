// A work queue of keys for level-triggered controllers (client-go's workqueue, in small):
// a key added many times is reconciled once; a key is never reconciled twice at the same
// time; a failed reconcile is retried with backoff; a reconcile may ask to run again at a
// later time. Keys are reconciled one at a time, in the order they became due.
import type { Logger } from 'pino';

export type Reconcile = (key: string) => Promise<number | undefined>;

const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 10_000;

export class WorkQueue {
  private readonly due = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly reconcile: Reconcile,
    private readonly log: Logger,
  ) {}

  /** Reconcile `key` now, or at `at` (ms since epoch) if that is sooner than already planned. */
  add(key: string, at = 0): void {
    if (this.stopped) return;
    const planned = this.due.get(key);
    if (planned !== undefined && planned <= at) return;
    this.due.set(key, at);
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Resolves when nothing is due now and nothing runs (tests). */
  idle(): Promise<void> {
    if (!this.running && ![...this.due.values()].some((t) => t <= Date.now())) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private arm(): void {
    if (this.running || this.stopped) return;
    clearTimeout(this.timer);
    let next = Infinity;
    for (const t of this.due.values()) next = Math.min(next, t);
    if (next === Infinity) return;
    // setTimeout's limit is 2^31-1 ms; a far wake-up is re-armed when it fires.
    this.timer = setTimeout(() => void this.drain(), Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1));
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        if (this.stopped) return;
        const now = Date.now();
        const key = [...this.due.entries()].filter(([, t]) => t <= now).sort((a, b) => a[1] - b[1])[0]?.[0];
        if (key === undefined) break;
        this.due.delete(key);
        try {
          const again = await this.reconcile(key);
          this.failures.delete(key);
          if (again !== undefined && Number.isFinite(again)) this.add(key, again);
        } catch (err) {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          const delay = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** (n - 1));
          this.log.warn({ err, key, retryInMs: delay }, 'reconcile failed; will retry');
          // The backoff wins over an immediate re-add made while this reconcile ran.
          this.due.set(key, Math.max(this.due.get(key) ?? 0, Date.now() + delay));
        }
      }
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
      this.arm();
    }
  }
}
