// A sorted set of keys (UTF-8 byte order) with prefix range scans, for the memory backend.

import { compareKeys, hasPrefix } from '../core/keys.ts';
import type { KeyRange } from '../core/backend.ts';

export class SortedKeys {
  private readonly keys: string[] = [];

  add(key: string): void {
    const i = this.lowerBound(key);
    if (this.keys[i] !== key) this.keys.splice(i, 0, key);
  }

  remove(key: string): void {
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  /** Keys in the range, in order (all of them when `limit` is 0). */
  range({ prefix, startAfter, limit }: KeyRange): string[] {
    const out: string[] = [];
    const from =
      startAfter !== undefined && compareKeys(startAfter, prefix) >= 0
        ? this.upperBound(startAfter)
        : this.lowerBound(prefix);
    for (let i = from; i < this.keys.length && (limit === 0 || out.length < limit); i++) {
      const key = this.keys[i]!;
      // Keys under a prefix are contiguous, starting at the prefix itself.
      if (!hasPrefix(key, prefix)) break;
      out.push(key);
    }
    return out;
  }

  count(prefix: string): number {
    let n = 0;
    for (let i = this.lowerBound(prefix); i < this.keys.length && hasPrefix(this.keys[i]!, prefix); i++) n++;
    return n;
  }

  /** Index of the first key >= `key`. */
  private lowerBound(key: string): number {
    return this.search((k) => compareKeys(k, key) < 0);
  }

  /** Index of the first key > `key`. */
  private upperBound(key: string): number {
    return this.search((k) => compareKeys(k, key) <= 0);
  }

  /** Index of the first key for which `before` is false (keys where it holds come first). */
  private search(before: (k: string) => boolean): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.keys[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
