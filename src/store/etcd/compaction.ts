// Knowing etcd's compacted revision, which etcd reports nowhere directly.
//
// A range read at revision R fails exactly when R is below the compacted revision, so one
// cheap read tells whether a revision is still readable. The exact compacted revision
// comes from a watch started at revision 1, which etcd cancels with compact_revision set.
// The highest compaction we know of (our own, or one found this way) is remembered, so
// the probe only runs after someone else compacted.

import type { Etcd3, IWatchResponse } from 'etcd3';
import { unavailable } from '../core/errors.ts';
import { etcdCall, isCompactedError, isFutureRevisionError } from './errors.ts';
import { toRevision } from './keyspace.ts';

/** How long etcd may take to report a compacted watch start (it checks every 100 ms). */
const PROBE_TIMEOUT_MS = 10_000;

export class CompactionTracker {
  private known = 0;

  constructor(
    private readonly client: Etcd3,
    /** A key the probes read and watch; never written. */
    private readonly probeKey: Buffer,
  ) {}

  /** Records a compaction we caused or observed. */
  note(revision: number): void {
    this.known = Math.max(this.known, revision);
  }

  /** The highest known compaction; a lower bound of etcd's real one. */
  get lowerBound(): number {
    return this.known;
  }

  /** Whether reads at `revision` are refused because of compaction. */
  async isCompacted(revision: number): Promise<boolean> {
    if (revision < this.known) return true;
    try {
      // Revision 0 means "newest" to etcd; revision 1 is the oldest there is.
      await this.client.kv.range({ key: this.probeKey, revision: Math.max(revision, 1), count_only: true });
      return false;
    } catch (err) {
      if (isCompactedError(err)) return true;
      if (isFutureRevisionError(err)) return false;
      throw err;
    }
  }

  async current(): Promise<number> {
    if (!(await etcdCall('etcd compaction check', () => this.isCompacted(this.known)))) return this.known;
    this.note(await this.probe());
    return this.known;
  }

  private async probe(): Promise<number> {
    const stream = await etcdCall('etcd compaction probe', () => this.client.watchClient.watch());
    try {
      return await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(unavailable('etcd did not report its compacted revision')), PROBE_TIMEOUT_MS);
        stream.on('data', (res: IWatchResponse) => {
          const compacted = toRevision(res.compact_revision);
          if (compacted > 0 || res.canceled) {
            clearTimeout(timer);
            resolve(compacted);
          }
        });
        stream.on('error', (err: Error) => {
          clearTimeout(timer);
          reject(unavailable('etcd compaction probe failed', err));
        });
        stream.write({ create_request: { key: this.probeKey, start_revision: 1 } });
      });
    } finally {
      stream.end();
      stream.cancel();
    }
  }
}
