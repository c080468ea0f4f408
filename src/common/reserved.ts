/** The library's own topics: the `$p2p.` prefix (as NATS reserves `$SYS`), which no application pattern may take. */
export const RESERVED_PREFIX = '$p2p.';

/** Whether a pattern or topic is one of the library's own. */
export function isReserved(pattern: string): boolean {
  return pattern.charCodeAt(0) === 36 /* $ */ && pattern.startsWith(RESERVED_PREFIX);
}
