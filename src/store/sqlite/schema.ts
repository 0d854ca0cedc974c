// The SQLite schema, in the spirit of kine: the current state of every key, plus a change
// log that serves watch history and reads at a past revision.
//
// Log compaction (sqlite-backend.ts) keeps, for every key, its latest change at or below
// the compacted revision when that change is a put: the log alone then answers "what was
// under this prefix at revision R" for any R from the compacted revision on.

import type Database from 'better-sqlite3';

export const SCHEMA_VERSION = 1;

const DDL = `
CREATE TABLE IF NOT EXISTS kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
  rev        INTEGER PRIMARY KEY,
  key        TEXT NOT NULL,
  type       TEXT NOT NULL CHECK (type IN ('put', 'delete')),
  -- put: the new value; delete: the last value (what delete events carry).
  value      TEXT NOT NULL,
  create_rev INTEGER NOT NULL,
  -- The key's previous mod revision (0 when this change created it): compaction deletes
  -- the rows that later rows supersede by following it.
  prev_rev   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
-- current_revision never goes backwards, even when the newest change is compacted away.
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES
  ('schema_version', ${SCHEMA_VERSION}),
  ('current_revision', 0),
  ('compacted_revision', 0);
`;

/**
 * WAL lets readers run beside the writer; synchronous=FULL fsyncs the WAL on every commit
 * so an acknowledged write survives power loss (group commit pays for it once per batch).
 */
export function configure(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
}

export function migrate(db: Database.Database): void {
  db.exec(DDL);
  const row = db.prepare(`SELECT value FROM meta WHERE name = 'schema_version'`).get() as { value: number };
  if (row.value !== SCHEMA_VERSION) {
    throw new Error(`database schema version ${row.value} is not supported (expected ${SCHEMA_VERSION})`);
  }
}
