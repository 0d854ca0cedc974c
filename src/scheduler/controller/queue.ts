// The queue of gangs waiting to be placed, in the manner of kube-scheduler's: gangs ready
// for an attempt (active), gangs waiting out a backoff, and gangs that fit nowhere
// (unschedulable). An unschedulable gang waits for the cluster to change — capacity freed,
// a node added — and is then moved back to active; a slow periodic flush is the safety
// net. So that a burst of changes (a 512-member gang's Tasks deleted one by one) does not
// become a burst of attempts, a gang moved back within its backoff since its last attempt
// (500 ms, doubling per unschedulable attempt in a row, at most 10 s) waits out the rest
// first. A gang whose binding failed (it changed meanwhile, a name was taken) backs off
// too (100 ms, doubling, at most 10 s). The active gang to try next is the first by the
// profile's queue sort (priority, then age).
import type { KubeObject } from '../../api/meta.ts';
import type { GangRequest } from '../framework/types.ts';

export type QueueState = 'active' | 'backoff' | 'unschedulable' | 'inflight';

export interface QueuedGang {
  /** `<namespace>/<name>`. */
  key: string;
  uid: string;
  generation: number;
  /** The newest version seen (its resourceVersion guards the binding). */
  object: KubeObject;
  request: GangRequest;
  state: QueueState;
  /** Failed bindings in a row, for their backoff. */
  failures: number;
  /** Unschedulable attempts in a row, for the backoff of moves back to active. */
  unschedulable: number;
  lastAttempt: number;
  backoffUntil: number;
  /** While in flight: the gang changed, or the cluster did; the attempt's verdict may be stale. */
  stale: boolean;
}

export interface QueueOptions {
  /** Backoff after a failed binding: first, and most. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Backoff of an unschedulable gang moved back to active: first, and most. */
  initialUnschedulableBackoffMs?: number;
  maxUnschedulableBackoffMs?: number;
}

export class SchedulingQueue {
  private readonly gangs = new Map<string, QueuedGang>();
  private backoffTimer?: NodeJS.Timeout;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly initialUnschedulableBackoffMs: number;
  private readonly maxUnschedulableBackoffMs: number;

  constructor(
    private readonly less: (a: GangRequest, b: GangRequest) => boolean,
    /** Called whenever a gang becomes active. */
    private readonly wake: () => void,
    opts: QueueOptions = {},
  ) {
    this.initialBackoffMs = opts.initialBackoffMs ?? 100;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
    this.initialUnschedulableBackoffMs = opts.initialUnschedulableBackoffMs ?? 500;
    this.maxUnschedulableBackoffMs = opts.maxUnschedulableBackoffMs ?? 10_000;
  }

  get size(): number {
    return this.gangs.size;
  }

  keys(): string[] {
    return [...this.gangs.keys()];
  }

  get(key: string): QueuedGang | undefined {
    return this.gangs.get(key);
  }

  count(state: QueueState): number {
    let n = 0;
    for (const g of this.gangs.values()) if (g.state === state) n++;
    return n;
  }

  /**
   * A pending gang, new or changed. A new gang, a new incarnation (uid) or a spec change
   * (generation) makes it active; anything else (a status write, a label) only refreshes
   * the object it is bound against.
   */
  upsert(object: KubeObject, request: GangRequest): void {
    const key = request.id;
    const uid = object.metadata.uid ?? '';
    const generation = object.metadata.generation ?? 0;
    const existing = this.gangs.get(key);
    if (!existing) {
      this.gangs.set(key, { key, uid, generation, object, request, state: 'active', failures: 0, unschedulable: 0, lastAttempt: 0, backoffUntil: 0, stale: false });
      this.wake();
      return;
    }
    const changed = existing.uid !== uid || existing.generation !== generation;
    existing.object = object;
    if (!changed) return;
    existing.uid = uid;
    existing.generation = generation;
    existing.request = request;
    existing.failures = 0;
    existing.unschedulable = 0;
    if (existing.state === 'inflight') existing.stale = true;
    else this.activate(existing);
  }

  remove(key: string): void {
    this.gangs.delete(key);
  }

  /** The first active gang by the queue sort, now in flight; undefined when none is active. */
  pop(): QueuedGang | undefined {
    let best: QueuedGang | undefined;
    for (const g of this.gangs.values()) {
      if (g.state !== 'active') continue;
      if (!best || this.less(g.request, best.request)) best = g;
    }
    if (best) {
      best.state = 'inflight';
      best.stale = false;
      best.lastAttempt = Date.now();
    }
    return best;
  }

  /** The verdict of an attempt on an in-flight gang. */
  done(key: string, outcome: 'bound' | 'unschedulable' | 'retry'): void {
    const g = this.gangs.get(key);
    if (!g || g.state !== 'inflight') return;
    if (outcome === 'bound') {
      this.gangs.delete(key);
      return;
    }
    if (outcome === 'unschedulable') {
      g.failures = 0;
      g.unschedulable++;
      g.state = 'unschedulable';
      if (g.stale) this.moveBack(g);
      return;
    }
    g.unschedulable = 0;
    g.failures++;
    g.state = 'backoff';
    g.backoffUntil = Date.now() + Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (g.failures - 1));
    this.armBackoff();
  }

  /** The cluster changed: every unschedulable gang gets another attempt (after its backoff). */
  moveAllToActive(): void {
    let backingOff = false;
    for (const g of this.gangs.values()) {
      if (g.state === 'unschedulable') backingOff = !this.moveBack(g, false) || backingOff;
      else if (g.state === 'inflight') g.stale = true;
    }
    if (backingOff) this.armBackoff();
  }

  /**
   * An unschedulable gang back to active (true), or to backoff until its backoff since its
   * last attempt ends (false).
   */
  private moveBack(g: QueuedGang, arm = true): boolean {
    const backoff = Math.min(this.maxUnschedulableBackoffMs, this.initialUnschedulableBackoffMs * 2 ** Math.max(0, g.unschedulable - 1));
    const readyAt = g.lastAttempt + backoff;
    if (readyAt <= Date.now()) {
      this.activate(g);
      return true;
    }
    g.state = 'backoff';
    g.backoffUntil = readyAt;
    if (arm) this.armBackoff();
    return false;
  }

  close(): void {
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
  }

  private activate(g: QueuedGang): void {
    g.state = 'active';
    g.stale = false;
    this.wake();
  }

  /** One timer for the earliest backoff to end; expired gangs go back to active. */
  private armBackoff(): void {
    clearTimeout(this.backoffTimer);
    let earliest = Infinity;
    for (const g of this.gangs.values()) if (g.state === 'backoff') earliest = Math.min(earliest, g.backoffUntil);
    if (earliest === Infinity) return;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      const now = Date.now();
      for (const g of this.gangs.values()) if (g.state === 'backoff' && g.backoffUntil <= now) this.activate(g);
      this.armBackoff();
    }, Math.max(0, earliest - Date.now()));
    this.backoffTimer.unref();
  }
}
