// LogBackend on one SQLite database through better-sqlite3 (synchronous, so the engine's
// check-then-commit and read-then-register sections stay atomic).

import type Database from 'better-sqlite3';
import type { KeyValue, WatchEventType } from '../store.ts';
import type { KeyRange, LogBackend } from '../core/backend.ts';
import type { Change, PlannedChange } from '../core/change.ts';
import { compareKeys } from '../core/keys.ts';

/**
 * Text just above every key that starts with :prefix. Byte 0xFF never occurs in UTF-8,
 * and SQLite compares TEXT bytewise, so this bounds the prefix exactly (unlike
 * prefix + '\uffff', which sorts below characters outside the BMP).
 */
const PREFIX_END = `(:prefix || CAST(x'FF' AS TEXT))`;

/** Revisions compacted per transaction, so one compaction never holds the writer for long. */
const COMPACTION_CHUNK = 10_000;

/** Which lower bound a range read uses: the prefix itself, or strictly after a key. */
type LowerBound = 'atPrefix' | 'afterKey';

const boundSql: Record<LowerBound, string> = { atPrefix: 'key >= :from', afterKey: 'key > :from' };

function lowerBound({ prefix, startAfter }: KeyRange): { bound: LowerBound; from: string } {
  return startAfter !== undefined && compareKeys(startAfter, prefix) >= 0
    ? { bound: 'afterKey', from: startAfter }
    : { bound: 'atPrefix', from: prefix };
}

interface LogRow {
  rev: number;
  key: string;
  type: WatchEventType;
  value: string;
  create_rev: number;
}

type Statement = Database.Statement<unknown[], unknown>;

export class SqliteBackend implements LogBackend {
  readonly name = 'sqlite';
  private revision: number;
  private compacted: number;
  private readonly stmt;
  private readonly commitTxn: (changes: readonly PlannedChange[], revision: number, expected: number) => void;

  constructor(private readonly db: Database.Database) {
    const prepare = (sql: string): Statement => db.prepare(sql);
    const byBound = (sql: (bound: string) => string): Record<LowerBound, Statement> => ({
      atPrefix: prepare(sql(boundSql.atPrefix)),
      afterKey: prepare(sql(boundSql.afterKey)),
    });
    this.stmt = {
      readMeta: prepare(`SELECT value FROM meta WHERE name = ?`).pluck(),
      writeMeta: prepare(`UPDATE meta SET value = ? WHERE name = ?`),
      get: prepare(`SELECT key, value, create_rev AS createRevision, mod_rev AS modRevision FROM kv WHERE key = ?`),
      range: byBound(
        (bound) => `SELECT key, value, create_rev AS createRevision, mod_rev AS modRevision FROM kv
          WHERE ${bound} AND key < ${PREFIX_END} ORDER BY key LIMIT :limit`,
      ),
      // Per key, the latest change at or below :revision (SQLite takes the bare columns
      // from the row that holds max(rev)); keys whose latest change is a delete are skipped
      // by the caller, which stops reading once it has enough.
      rangeAt: byBound(
        (bound) => `SELECT key, value, create_rev AS createRevision, max(rev) AS modRevision, type FROM log
          WHERE ${bound} AND key < ${PREFIX_END} AND rev <= :revision GROUP BY key ORDER BY key`,
      ),
      count: prepare(`SELECT count(*) FROM kv WHERE key >= :prefix AND key < ${PREFIX_END}`).pluck(),
      // "+key" keeps the planner on the rev primary key: replays read recent revisions.
      changesAfter: prepare(`SELECT rev, key, type, value, create_rev FROM log
        WHERE rev > :after AND +key >= :prefix AND +key < ${PREFIX_END} ORDER BY rev LIMIT :limit`),
      upsert: prepare(`INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, create_rev = excluded.create_rev, mod_rev = excluded.mod_rev`),
      remove: prepare(`DELETE FROM kv WHERE key = ?`),
      append: prepare(`INSERT INTO log (rev, key, type, value, create_rev, prev_rev) VALUES (?, ?, ?, ?, ?, ?)`),
      // A row is no longer needed once a later row of the same key at or below the
      // compaction point replaces it, and a delete row once it is at or below that point.
      dropSuperseded: prepare(`DELETE FROM log WHERE rev IN
        (SELECT prev_rev FROM log WHERE rev > :lo AND rev <= :hi AND prev_rev > 0)`),
      dropTombstones: prepare(`DELETE FROM log WHERE rev > :lo AND rev <= :hi AND type = 'delete'`),
    };
    this.revision = this.readMeta('current_revision');
    this.compacted = this.readMeta('compacted_revision');
    this.commitTxn = db.transaction((changes, revision, expected) => {
      // The engine numbers revisions from memory; a second process writing this file
      // would make them collide, so refuse rather than corrupt the log.
      const stored = this.readMeta('current_revision');
      if (stored !== expected) {
        throw new Error(`the database is at revision ${stored}, expected ${expected}: is another process writing it?`);
      }
      for (const { type, kv, prev } of changes) {
        if (type === 'put') this.stmt.upsert.run(kv.key, kv.value, kv.createRevision, kv.modRevision);
        else this.stmt.remove.run(kv.key);
        this.stmt.append.run(kv.modRevision, kv.key, type, kv.value, kv.createRevision, prev?.modRevision ?? 0);
      }
      this.stmt.writeMeta.run(revision, 'current_revision');
    });
  }

  currentRevision(): number {
    return this.revision;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  get(key: string): KeyValue | undefined {
    return this.stmt.get.get(key) as KeyValue | undefined;
  }

  range(range: KeyRange): KeyValue[] {
    const { bound, from } = lowerBound(range);
    return this.stmt.range[bound].all({ from, prefix: range.prefix, limit: range.limit > 0 ? range.limit : -1 }) as KeyValue[];
  }

  rangeAt(range: KeyRange, revision: number): KeyValue[] {
    const { bound, from } = lowerBound(range);
    const rows = this.stmt.rangeAt[bound].iterate({ from, prefix: range.prefix, revision }) as IterableIterator<
      KeyValue & { type: WatchEventType }
    >;
    const out: KeyValue[] = [];
    for (const { type, ...kv } of rows) {
      if (type === 'delete') continue;
      out.push(kv);
      if (out.length === range.limit) break; // leaving the loop resets the statement
    }
    return out;
  }

  count(prefix: string): number {
    return this.stmt.count.get({ prefix }) as number;
  }

  changesAfter(prefix: string, afterRevision: number, limit: number): Change[] {
    const rows = this.stmt.changesAfter.all({ after: afterRevision, prefix, limit }) as LogRow[];
    return rows.map((row) => ({
      type: row.type,
      kv: { key: row.key, value: row.value, createRevision: row.create_rev, modRevision: row.rev },
    }));
  }

  commit(changes: readonly PlannedChange[], revision: number, expectedRevision: number): void {
    this.commitTxn(changes, revision, expectedRevision);
    this.revision = revision;
  }

  compact(revision: number): void {
    const compactChunk = this.db.transaction((lo: number, hi: number) => {
      this.stmt.dropSuperseded.run({ lo, hi });
      this.stmt.dropTombstones.run({ lo, hi });
      this.stmt.writeMeta.run(hi, 'compacted_revision');
    });
    while (this.compacted < revision) {
      const hi = Math.min(revision, this.compacted + COMPACTION_CHUNK);
      compactChunk(this.compacted, hi);
      this.compacted = hi;
    }
  }

  close(): void {
    this.db.close();
  }

  private readMeta(name: string): number {
    return this.stmt.readMeta.get(name) as number;
  }
}
