/**
 * RainTree: the network-wide broadcast Pocket designed for this module, as pure
 * functions (no sockets), so that the node and the simulator run the same code.
 *
 * Every node orders the peer ids it knows (its view) on a ring. A message carries
 * the arc of the ring its receiver is responsible for. The receiver delivers it
 * locally, splits the other members of its arc into three contiguous thirds and
 * sends each third to that third's first reachable member. The arcs partition
 * the ring, so every node receives once, N − 1 sends reach N nodes, and the arc
 * shrinks threefold per hop: about log3 N hops.
 */

/**
 * An arc of the id ring: ids from `from` (inclusive) clockwise up to `to`
 * (exclusive). `from === to` is the whole ring.
 */
export interface Arc {
  from: string;
  to: string;
}

/** One third to forward: the arc it covers and its members in ring order (the head is the first reachable). */
export interface Branch {
  arc: Arc;
  members: string[];
}

/** Ids are fixed-length lowercase hex, so string order is numeric order. */
export function inArc(id: string, { from, to }: Arc): boolean {
  if (from === to) return true;
  return from < to ? id >= from && id < to : id >= from || id < to;
}

/** The members of `view` (sorted ascending) inside `arc`, in ring order starting at `arc.from`. */
export function membersOf(sortedView: readonly string[], arc: Arc): string[] {
  const start = lowerBound(sortedView, arc.from);
  const out: string[] = [];
  for (let i = 0; i < sortedView.length; i++) {
    const id = sortedView[(start + i) % sortedView.length]!;
    if (!inArc(id, arc)) break;
    out.push(id);
  }
  return out;
}

/** The arc an originator starts with: the whole ring, starting at itself. */
export function wholeRing(origin: string): Arc {
  return { from: origin, to: origin };
}

/**
 * What `self` forwards for a message that made it responsible for `arc`: up to
 * three branches covering every other member of the arc once. `sortedView`
 * must be sorted ascending; `self` need not be in it.
 */
export function planForward(sortedView: readonly string[], self: string, arc: Arc): Branch[] {
  const rest = membersOf(sortedView, arc).filter((id) => id !== self);
  if (rest.length === 0) return [];
  // Sizes as equal as possible (n = 4 gives 2, 1, 1), which keeps the tree shallow.
  const base = Math.floor(rest.length / 3);
  const extra = rest.length % 3;
  const thirds: string[][] = [];
  let offset = 0;
  for (let i = 0; i < 3; i++) {
    const size = base + (i < extra ? 1 : 0);
    if (size > 0) thirds.push(rest.slice(offset, offset + size));
    offset += size;
  }
  return thirds.map((members, i) => ({
    members,
    arc: { from: members[0]!, to: thirds[i + 1]?.[0] ?? arc.to },
  }));
}

/**
 * Where a branch goes: its first reachable member. Members before it are
 * either known dead (`skipDead`: they are left out of the arc, so no arc ever
 * holds a node that already has the message and every live node gets exactly
 * one copy) or merely not reachable from here (the head gets the whole branch
 * arc and reaches them itself; the arc may then hold the head's sender too,
 * which costs a duplicate, never a loss).
 */
export function headOf(
  branch: Branch,
  reachable: (id: string) => boolean,
  skipDead = true,
): { head: string; arc: Arc } | undefined {
  const head = branch.members.find(reachable);
  if (head === undefined) return undefined;
  return { head, arc: skipDead ? { from: head, to: branch.arc.to } : branch.arc };
}

function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo === sorted.length ? 0 : lo;
}
