// What the router's two HTTP/1.1 parsers (inbound.ts for clients, upstream.ts for backends) share.

/** The blank line that ends a message head. */
export const HEAD_END = Buffer.from('\r\n\r\n');

/** RFC 9110 §5.6.2 token characters: what a field name is made of (no whitespace, no separators). */
export const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
