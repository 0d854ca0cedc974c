// Key ordering and prefix matching shared by every backend.
//
// SQLite (BINARY collation) and etcd compare keys as UTF-8 bytes, which is the same as
// comparing Unicode code points. JavaScript's `<` compares UTF-16 code units instead,
// which disagrees for characters above U+FFFF against U+E000..U+FFFF; the memory
// backend uses `compareKeys` so all three backends list keys in the same order.

/** Maps a UTF-16 code unit so that code-unit order becomes code-point order. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates (astral characters) sort after every BMP character.
  if (unit < 0xe000) return unit + 0x2000;
  return unit - 0x800;
}

/** Negative, zero or positive as `a` sorts before, with or after `b` in UTF-8 byte order. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

export const hasPrefix = (key: string, prefix: string): boolean => key.startsWith(prefix);
