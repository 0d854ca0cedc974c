// What the router's two HTTP/1.1 parsers (inbound.ts for clients, upstream.ts for backends) share.

/** The blank line that ends a message head. */
export const HEAD_END = Buffer.from('\r\n\r\n');

/** RFC 9110 §5.6.2 token characters: what a field name is made of (no whitespace, no separators). */
export const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Characters a field line may not hold: controls other than tab (CR and LF among them) and DEL. */
export const BAD_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** A field value without its surrounding optional whitespace (spaces and tabs only: RFC 9110 §5.5). */
export function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 0x20 || v.charCodeAt(a) === 0x09)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 0x20 || v.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}
