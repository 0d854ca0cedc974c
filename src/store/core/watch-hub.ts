// In-process watch broadcaster for the log engine (memory and SQLite backends).
//
// Each watcher keeps a cursor: the highest revision it has queued. A watcher is either
// live (the engine publishes every commit to it) or replaying (it reads the change log
// one page per delivery turn). Because backends are synchronous and commits are
// published in the same synchronous section that writes them, a replaying watcher that
// reads a short page has seen everything committed and can turn live on the spot: no gap
// and no duplicate. A live watcher whose consumer falls behind (backlog over the limit)
// goes back to replaying from the log instead of growing its queue; only when the log it
// needs has been compacted does it fail with GONE.

import type { Watch, WatchHandlers } from '../store.ts';
import type { StoreError } from '../store.ts';
import type { Change } from './change.ts';
import { toWatchEvent } from './change.ts';
import { gone } from './errors.ts';
import { EventSink } from './event-sink.ts';
import { hasPrefix } from './keys.ts';

/** The part of a backend a replaying watcher reads. */
export interface ChangeLog {
  compactedRevision(): number;
  changesAfter(prefix: string, afterRevision: number, limit: number): Change[];
}

export interface WatchHubOptions {
  /** Changes read from the log per delivery turn while replaying. */
  replayPageSize?: number;
  /** Queued events above which a live watcher falls back to replaying from the log. */
  maxBacklog?: number;
}

class HubWatcher implements Watch {
  replaying: boolean;
  readonly sink: EventSink;

  constructor(
    private readonly hub: WatchHub,
    readonly prefix: string,
    handlers: WatchHandlers,
    /** Highest revision queued for delivery (or the watch's start). */
    public cursor: number,
    replaying: boolean,
  ) {
    this.replaying = replaying;
    this.sink = new EventSink(handlers, () => this.hub.replay(this));
  }

  close(): void {
    this.hub.remove(this);
  }
}

export class WatchHub {
  private readonly watchers = new Set<HubWatcher>();
  private readonly pageSize: number;
  private readonly maxBacklog: number;

  constructor(
    private readonly log: ChangeLog,
    opts: WatchHubOptions = {},
  ) {
    this.pageSize = Math.max(1, opts.replayPageSize ?? 1000);
    this.maxBacklog = Math.max(1, opts.maxBacklog ?? 10_000);
  }

  /**
   * Registers a watcher for changes under `prefix` above `afterRevision`. Throws GONE when
   * that history is compacted. The first page of history is read now, in the same
   * synchronous section as the registration.
   */
  watch(prefix: string, handlers: WatchHandlers, afterRevision: number, currentRevision: number): Watch {
    const compacted = this.log.compactedRevision();
    if (afterRevision < compacted) {
      throw gone(`revision ${afterRevision} is compacted (history starts after ${compacted})`);
    }
    const watcher = new HubWatcher(this, prefix, handlers, afterRevision, afterRevision < currentRevision);
    this.watchers.add(watcher);
    if (watcher.replaying) this.replay(watcher);
    return watcher;
  }

  /** Hands freshly committed changes (in revision order) to every live watcher. */
  publish(changes: readonly Change[]): void {
    for (const watcher of this.watchers) {
      if (watcher.replaying) continue;
      for (const change of changes) {
        if (change.kv.modRevision <= watcher.cursor || !hasPrefix(change.kv.key, watcher.prefix)) continue;
        if (watcher.sink.backlog >= this.maxBacklog) {
          // The consumer is slow: stop queueing; it catches up from the log once drained.
          watcher.replaying = true;
          break;
        }
        watcher.sink.push(toWatchEvent(change));
        watcher.cursor = change.kv.modRevision;
      }
    }
  }

  /** Queues the next page of history for a replaying watcher; turns it live once caught up. */
  replay(watcher: HubWatcher): void {
    if (!watcher.replaying || watcher.sink.backlog > 0) return;
    const compacted = this.log.compactedRevision();
    if (watcher.cursor < compacted) {
      this.fail(watcher, gone(`watcher fell behind: revision ${watcher.cursor} is compacted (history starts after ${compacted})`));
      return;
    }
    const page = this.log.changesAfter(watcher.prefix, watcher.cursor, this.pageSize);
    for (const change of page) watcher.sink.push(toWatchEvent(change));
    if (page.length > 0) watcher.cursor = page[page.length - 1]!.kv.modRevision;
    if (page.length < this.pageSize) watcher.replaying = false;
  }

  remove(watcher: HubWatcher): void {
    this.watchers.delete(watcher);
    watcher.sink.close();
  }

  /** Ends every watch with `err` (the store is closing). */
  failAll(err: StoreError): void {
    for (const watcher of [...this.watchers]) this.fail(watcher, err);
  }

  private fail(watcher: HubWatcher, err: StoreError): void {
    this.watchers.delete(watcher);
    watcher.sink.fail(err);
  }
}
