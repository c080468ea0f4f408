/**
 * A value computed at most once per callback of the event loop (one I/O callback or timer, with the process.nextTick
 * callbacks and microtasks queued before the expiry's microtask), then computed again. A read of many frames relays each with the same neighbour list
 * and the same known ids, which building afresh for every frame (a copy and a sort of every id this node knows, and
 * their digest) took about 7 % of a mesh's CPU relaying broadcasts at full rate (the netcast bench's profile). The value may be stale by that callback's own changes (a connection it
 * closed), which the callers tolerate as they tolerate a connection closing right after: a send to it fails.
 * Frozen, so that no caller can change what the next one reads.
 */
export function perTurn<T>(compute: () => readonly T[]): () => readonly T[] {
  let value: readonly T[] | undefined;
  const expire = (): void => {
    value = undefined;
  };
  return () => {
    if (value === undefined) {
      value = Object.freeze(compute());
      queueMicrotask(expire);
    }
    return value;
  };
}
