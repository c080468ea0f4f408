/**
 * RainTree over the id space: the network-wide broadcast Pocket designed for
 * this module, as pure functions (no sockets), so that the node and the
 * simulator run the same code.
 *
 * Peer ids are 160-bit numbers on a ring. A message carries the arc of the ring
 * its receiver is responsible for. The receiver delivers it locally, splits the
 * arc into three equal thirds of id space, hands each third that holds another
 * node to one neighbour inside it, and keeps splitting its own third the same
 * way until no other node is left in it. Thirds are fixed by the arc, not by who
 * holds it, so any member of a third can cover it: the node needs one neighbour
 * in each of its sibling thirds at each level (about 2·log3 N, src/discovery/ring-topology.ts
 * dials them), not a view of the whole network. The arcs partition the ring, so
 * every node receives once and N − 1 sends reach N nodes, in about log3 N hops.
 * (Pocket's RainTree split the members of the arc by count; then the heads had to
 * be particular nodes, and a mesh that was not complete fell back to flooding.)
 */

/**
 * An arc of the id ring: ids from `from` (inclusive) clockwise up to `to`
 * (exclusive). `from === to` is the whole ring.
 */
export interface Arc {
  from: string;
  to: string;
}

/** Ids are 20-byte hex: 160-bit numbers. */
const BITS = 160n;
const RING = 1n << BITS;
const HEX = 40;

/** The whole ring, split from zero: the arc every network broadcast starts with, whoever originates it. */
export const RING_ROOT: Arc = { from: '0'.repeat(HEX), to: '0'.repeat(HEX) };

/** Ids are fixed-length lowercase hex, so string order is numeric order. */
export function inArc(id: string, { from, to }: Arc): boolean {
  if (from === to) return true;
  return from < to ? id >= from && id < to : id >= from || id < to;
}

function toBig(id: string): bigint {
  return BigInt(`0x${id}`);
}

function toHex(n: bigint): string {
  return (n % RING).toString(16).padStart(HEX, '0');
}

/** How many ids the arc spans (the whole ring for from === to). */
export function arcLength({ from, to }: Arc): bigint {
  if (from === to) return RING;
  return (toBig(to) - toBig(from) + RING) % RING;
}

/** The three thirds of an arc, by id space; thirds that span no id at all (arcs shorter than 3) are left out. */
export function thirdsOf(arc: Arc): Arc[] {
  const start = toBig(arc.from);
  const length = arcLength(arc);
  const cuts = [0n, length / 3n, (2n * length) / 3n, length];
  const out: Arc[] = [];
  for (let i = 0; i < 3; i++) {
    if (cuts[i + 1]! === cuts[i]!) continue;
    out.push({ from: toHex(start + cuts[i]!), to: i === 2 ? arc.to : toHex(start + cuts[i + 1]!) });
  }
  return out;
}

/**
 * The arcs `self` hands on for a message that made it responsible for `arc`:
 * at each level the thirds not holding `self` in which `occupied` says there is
 * another node, then the same for `self`'s own third, until `self`'s third holds
 * nobody else. Largest arcs first, so the far side of the tree starts first.
 */
export function planForward(self: string, arc: Arc, occupied: (arc: Arc) => boolean): Arc[] {
  const out: Arc[] = [];
  let current = arc;
  // 160-bit ids: at most about 101 splits before an arc spans a single id.
  for (let level = 0; level < 128; level++) {
    let mine: Arc | undefined;
    for (const third of thirdsOf(current)) {
      if (inArc(self, third)) mine = third;
      else if (occupied(third)) out.push(third);
    }
    if (!mine || !occupied(mine)) break;
    current = mine;
  }
  return out;
}

/**
 * The smallest arc, reached by taking thirds from `arc` down, that still holds every member
 * `occupied` says `arc` holds: splitting goes on while exactly one third is occupied. A relay with
 * no member of `arc` among its neighbours hands the arc to one in this narrower arc first, whose
 * own splits then start where the members are (events for subscribers, src/broadcast/router.ts).
 */
export function narrowest(arc: Arc, occupied: (arc: Arc) => boolean): Arc {
  let current = arc;
  // 160-bit ids: at most about 101 splits before an arc spans a single id.
  for (let level = 0; level < 128; level++) {
    const held = thirdsOf(current).filter(occupied);
    if (held.length !== 1) break;
    current = held[0]!;
  }
  return current;
}

/** The first index of a sorted array at or after `id` (its length when none). */
export function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether a sorted id list holds `id`. */
export function sortedHas(sorted: readonly string[], id: string): boolean {
  const i = lowerBound(sorted, id);
  return i < sorted.length && sorted[i] === id;
}

/** The members of a sorted id list inside `arc`, in ring order from `arc.from`. */
export function membersOf(sortedIds: readonly string[], arc: Arc): string[] {
  if (sortedIds.length === 0) return [];
  const start = lowerBound(sortedIds, arc.from) % sortedIds.length;
  const out: string[] = [];
  for (let i = 0; i < sortedIds.length; i++) {
    const id = sortedIds[(start + i) % sortedIds.length]!;
    if (!inArc(id, arc)) break;
    out.push(id);
  }
  return out;
}

/** The first member of a sorted id list inside `arc` other than `self`, clockwise from `arc.from` (a binary search, not a walk of the arc). */
export function firstMember(sortedIds: readonly string[], arc: Arc, self: string): string | undefined {
  if (sortedIds.length === 0) return undefined;
  const start = lowerBound(sortedIds, arc.from) % sortedIds.length;
  for (let i = 0; i < 2 && i < sortedIds.length; i++) {
    const id = sortedIds[(start + i) % sortedIds.length]!;
    if (!inArc(id, arc)) return undefined;
    if (id !== self) return id;
  }
  return undefined;
}

/** `occupied` for planForward: whether a sorted id list has a member in the arc other than `self`. */
export function occupiedBy(sortedIds: readonly string[], self: string): (arc: Arc) => boolean {
  return (arc) => {
    if (sortedIds.length === 0) return false;
    const start = lowerBound(sortedIds, arc.from) % sortedIds.length;
    for (let i = 0; i < 2 && i < sortedIds.length; i++) {
      const id = sortedIds[(start + i) % sortedIds.length]!;
      if (!inArc(id, arc)) return false;
      if (id !== self) return true;
    }
    return false;
  };
}

/** The arc holding exactly one id: what a repair copy carries, so that its receiver delivers it and hands nothing on. */
export function pointArc(id: string): Arc {
  return { from: id, to: toHex(toBig(id) + 1n) };
}

/** Clockwise distance from a to b on the ring. */
export function ringDistance(a: string, b: string): bigint {
  return (toBig(b) - toBig(a) + RING) % RING;
}

/**
 * The third of the ring that holds `id` among the sibling thirds along `self`'s path: the third
 * of the split where `id` leaves `self`'s own third (its ring-distance bucket, as a Kademlia
 * bucket), `self`'s own third at that split, and the split's level (0: the whole ring). Undefined for `self` itself.
 */
export function branchOf(self: string, id: string): { arc: Arc; own: Arc; level: number } | undefined {
  if (id === self) return undefined;
  let current = RING_ROOT;
  for (let level = 0; level < 128; level++) {
    const thirds = thirdsOf(current);
    const own = thirds.find((t) => inArc(self, t));
    if (!own) return undefined;
    if (!inArc(id, own)) return { arc: thirds.find((t) => inArc(id, t))!, own, level };
    current = own;
  }
  return undefined;
}
