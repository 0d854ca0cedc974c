// Maps store keys to etcd keys under one prefix, and etcd records back to store records.

import type { IKeyValue } from 'etcd3';
import type { KeyValue } from '../store.ts';
import { compareKeys } from '../core/keys.ts';

/** etcd sends int64 revisions as decimal strings; ours stay far below 2^53. */
export const toRevision = (s: string | undefined): number => (s ? Number(s) : 0);

/** The smallest etcd key above every key that starts with `prefix` (etcd's own rule). */
function rangeEndOf(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // "every key from the start on", in etcd's convention
}

export interface EtcdRange {
  key: Buffer;
  range_end: Buffer;
}

export class Keyspace {
  constructor(readonly prefix: string) {}

  encode(key: string): Buffer {
    return Buffer.from(this.prefix + key);
  }

  decode(key: Buffer): string {
    return key.toString('utf8').slice(this.prefix.length);
  }

  /** Every key under `prefix`. */
  under(prefix: string): EtcdRange {
    const key = this.encode(prefix);
    return { key, range_end: rangeEndOf(key) };
  }

  /** The keys under `prefix` strictly after `startAfter` (when given). */
  page(prefix: string, startAfter: string | undefined): EtcdRange {
    const all = this.under(prefix);
    if (startAfter === undefined || compareKeys(startAfter, prefix) < 0) return all;
    // startAfter + NUL is the smallest key greater than startAfter.
    return { key: this.encode(startAfter + '\0'), range_end: all.range_end };
  }

  toKeyValue(kv: IKeyValue): KeyValue {
    return {
      key: this.decode(kv.key),
      value: kv.value.toString('utf8'),
      createRevision: toRevision(kv.create_revision),
      modRevision: toRevision(kv.mod_revision),
    };
  }
}
