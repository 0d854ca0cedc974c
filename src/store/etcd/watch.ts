// One store watch as one etcd gRPC watch stream, delivered through the shared EventSink.
//
// We drive the raw stream rather than etcd3's Watcher because that one silently
// reconnects (we want UNAVAILABLE so callers re-watch and re-list) and hides
// compact_revision (we want GONE).

import type { Etcd3, IEvent, IWatchCreateRequest, IWatchResponse } from 'etcd3';
import type { StoreError, Watch, WatchEvent, WatchHandlers } from '../store.ts';
import { EventSink } from '../core/event-sink.ts';
import { gone, unavailable } from '../core/errors.ts';
import type { Keyspace } from './keyspace.ts';
import { toRevision } from './keyspace.ts';

function toWatchEvent(ev: IEvent, keyspace: Keyspace): WatchEvent {
  const kv = keyspace.toKeyValue(ev.kv);
  if (ev.type.toLowerCase() === 'put') {
    return { type: 'put', kv, created: kv.createRevision === kv.modRevision };
  }
  // etcd's delete event has an empty value; the last value comes from prev_kv.
  const last = ev.prev_kv ? keyspace.toKeyValue(ev.prev_kv) : { ...kv, createRevision: 0 };
  return { type: 'delete', kv: { ...last, modRevision: kv.modRevision }, created: false };
}

/** Why etcd canceled a watch: compaction (compact_revision set) or anything else. */
function cancelError(res: IWatchResponse): StoreError {
  const compacted = toRevision(res.compact_revision);
  if (compacted > 0) return gone(`etcd watch start is compacted (history starts at ${compacted})`);
  return unavailable(`etcd canceled the watch${res.cancel_reason ? `: ${res.cancel_reason}` : ''}`);
}

/**
 * Opens a watch and resolves once etcd has confirmed it; rejects with the error that
 * prevented that. `onEnd` runs once when the watch ends for any reason.
 */
export async function openWatch(
  client: Etcd3,
  request: IWatchCreateRequest,
  keyspace: Keyspace,
  handlers: WatchHandlers,
  onEnd: (watch: EtcdWatch) => void,
): Promise<EtcdWatch> {
  const stream = await client.watchClient.watch();
  return new Promise<EtcdWatch>((resolve, reject) => {
    let watch: EtcdWatch | undefined;
    let refused = false;
    const ended = (err: StoreError) => {
      if (watch) return watch.fail(err);
      if (refused) return;
      refused = true;
      stream.end();
      stream.cancel();
      reject(err);
    };
    stream.on('data', (res: IWatchResponse) => {
      if (res.canceled) return ended(cancelError(res));
      if (res.created && !watch) {
        watch = new EtcdWatch(stream, new EventSink(handlers), () => onEnd(watch!));
        resolve(watch);
      }
      for (const ev of res.events ?? []) watch?.deliver(toWatchEvent(ev, keyspace));
    });
    stream.on('error', (err: Error) => ended(unavailable('etcd watch stream failed', err)));
    stream.on('end', () => ended(unavailable('etcd watch stream ended')));
    stream.write({ create_request: { ...request, prev_kv: true } });
  });
}

export class EtcdWatch implements Watch {
  private done = false;

  constructor(
    private readonly stream: { end(): void; cancel(): void },
    private readonly sink: EventSink,
    private readonly onEnd: () => void,
  ) {}

  deliver(event: WatchEvent): void {
    this.sink.push(event);
  }

  /** Ends the watch on its own (stream lost, canceled by etcd, store closing). */
  fail(err: StoreError): void {
    if (this.done) return;
    this.sink.fail(err);
    this.finish();
  }

  close(): void {
    if (this.done) return;
    this.sink.close();
    this.finish();
  }

  private finish(): void {
    this.done = true;
    this.onEnd();
    // Half-close first: etcd3 treats an error on a still-writable watch stream as a
    // failed host and resets its connections. The CANCELLED error that cancel() then
    // emits is ignored here because `done` is set.
    this.stream.end();
    this.stream.cancel();
  }
}
