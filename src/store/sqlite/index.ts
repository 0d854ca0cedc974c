// The SQLite store: the log engine over SqliteBackend, the embedded default.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Store } from '../store.ts';
import { asStoreError } from '../core/errors.ts';
import { LogStore, type LogStoreOptions } from '../core/log-store.ts';
import { configure, migrate } from './schema.ts';
import { SqliteBackend } from './sqlite-backend.ts';

export interface SqliteStoreOptions extends LogStoreOptions {
  /** Database file; ':memory:' for a private in-memory database. Its folder is created if missing. */
  path: string;
}

export function openSqliteStore(opts: SqliteStoreOptions): Store {
  const { path, ...engineOpts } = opts;
  let db: Database.Database | undefined;
  try {
    if (path !== ':memory:' && path !== '') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    configure(db);
    migrate(db);
    return new LogStore(new SqliteBackend(db), engineOpts);
  } catch (err) {
    db?.close();
    throw asStoreError(err, `cannot open SQLite store at ${path}`);
  }
}
