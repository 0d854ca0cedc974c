// Delivery of one watch's events to its handlers, shared by every backend.
//
// Events are queued and handed over on a later turn of the event loop (setImmediate), so
// a watch never calls its handlers before watch() has resolved, and a burst of changes is
// delivered in one go. close() stops delivery at once; fail() ends the watch with one
// onError after the events already queued.

import type { StoreError, WatchEvent, WatchHandlers } from '../store.ts';

export class EventSink {
  private queue: WatchEvent[] = [];
  private failure: StoreError | undefined;
  private scheduled = false;
  private ended = false;

  /**
   * @param onDrained called after each delivered batch while the sink is open; it may push
   *   more events (the log engine replays history one page at a time this way).
   */
  constructor(
    private readonly handlers: WatchHandlers,
    private readonly onDrained?: () => void,
  ) {}

  /** True until the watch is closed or has failed. */
  get open(): boolean {
    return !this.ended && this.failure === undefined;
  }

  /** Events queued and not yet delivered. */
  get backlog(): number {
    return this.queue.length;
  }

  push(event: WatchEvent): void {
    if (!this.open) return;
    this.queue.push(event);
    this.schedule();
  }

  /** Ends the watch with `err`, after delivering what is already queued. Later calls are ignored. */
  fail(err: StoreError): void {
    if (!this.open) return;
    this.failure = err;
    this.schedule();
  }

  /** Stops delivery now: no handler is called after this returns. */
  close(): void {
    this.ended = true;
    this.queue = [];
  }

  /** Schedules a delivery turn even with nothing queued, so onDrained runs (starts a replay). */
  kick(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.ended) return;
    this.scheduled = true;
    setImmediate(() => this.deliver());
  }

  private deliver(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const event of batch) {
      if (this.ended) return;
      try {
        this.handlers.onEvent(event);
      } catch (err) {
        // A throwing handler is a bug in the consumer: surface it like an EventEmitter
        // would, without letting it break delivery to this or other watches.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (this.ended) return;
    if (this.failure === undefined) this.onDrained?.();
    if (this.queue.length > 0) {
      this.schedule();
    } else if (this.failure !== undefined) {
      this.ended = true;
      this.handlers.onError(this.failure);
    }
  }
}
