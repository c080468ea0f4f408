import { RING_ROOT, inArc, lowerBound, occupiedBy, thirdsOf, type Arc } from '../ring/raintree.js';

/**
 * Which peers a node connects to, so that RainTree (src/ring/raintree.ts) keeps its N − 1
 * sends on a mesh of bounded degree: one neighbour in each sibling third of the
 * id space at each level down to the node itself (as Chord or Kademlia keep one
 * finger per distance), about 2·log3 N. Pure functions, shared by the node
 * (src/discovery/discovery.ts) and the simulator.
 *
 * A connection serves both of its ends whichever dialed it (sibling thirds are
 * siblings from either side), so a node dials only thirds no connection covers
 * yet, and dials the member facing it (facingMember): the two ends then usually need
 * each other, and degrees stay near the number of needs instead of piling up on
 * whoever was the first seed.
 */

/** A third of the id space this node needs a neighbour in, and its own third at that level. */
export interface CoverNeed {
  arc: Arc;
  own: Arc;
}

/** The sibling thirds, at every level of the split that leads to `self`, where `known` (sorted ids) has a node. */
export function coverNeeds(self: string, sortedKnown: readonly string[]): CoverNeed[] {
  const occupied = occupiedBy(sortedKnown, self);
  const needs: CoverNeed[] = [];
  let current = RING_ROOT;
  for (let level = 0; level < 128; level++) {
    const thirds = thirdsOf(current);
    const own = thirds.find((t) => inArc(self, t));
    if (!own) break;
    for (const third of thirds) if (third !== own && occupied(third)) needs.push({ arc: third, own });
    if (!occupied(own)) break;
    current = own;
  }
  return needs;
}

/**
 * The known member of `need` that faces `self`: the one at the same rank in its
 * third as `self` in its own (ranks, not id offsets, because ids are not evenly
 * spread: by offset, the member after a wide gap would be chosen by many).
 * Skipped members give way to the next one along.
 */
export function facingMember(self: string, need: CoverNeed, sortedKnown: readonly string[], skip: (id: string) => boolean): string | undefined {
  // By index, not by copying the members out: a node with N known ids dials in O(log N), and the simulator plans 100 000 nodes.
  const n = sortedKnown.length;
  const members = span(sortedKnown, need.arc);
  if (members.count === 0) return undefined;
  const own = span(sortedKnown, need.own);
  const at = lowerBound(sortedKnown, self);
  const offset = at < n && sortedKnown[at] === self ? (at - own.start + n) % n : -1;
  const rank = offset >= 0 && offset < own.count ? offset : 0;
  const start = Math.floor((rank * members.count) / Math.max(1, own.count));
  for (let i = 0; i < members.count; i++) {
    const id = sortedKnown[(members.start + ((start + i) % members.count)) % n]!;
    if (id !== self && !skip(id)) return id;
  }
  return undefined;
}

/** Where membersOf(sorted, arc) starts in `sorted` and how many it holds, without copying them. */
function span(sorted: readonly string[], arc: Arc): { start: number; count: number } {
  const n = sorted.length;
  if (n === 0) return { start: 0, count: 0 };
  const from = lowerBound(sorted, arc.from);
  if (arc.from === arc.to) return { start: from % n, count: n };
  const to = lowerBound(sorted, arc.to);
  return { start: from % n, count: arc.from < arc.to ? to - from : n - from + to };
}

export interface TopologyPlan {
  /** Ids to dial, one per uncovered third, most important (largest third) first. */
  dial: string[];
  /** Outbound connections that cover no third another connection does not already cover: close them. */
  redundant: string[];
  /** The connections that cover a third for this node (at most one per third). */
  covers: string[];
  /** Thirds with a known node and no connection. */
  uncovered: number;
  needs: number;
}

export interface TopologyState {
  self: string;
  /** Ids this node knows of (connected, proven, candidates), sorted. */
  known: readonly string[];
  inbound: readonly string[];
  outbound: readonly string[];
  /** Most connections (inbound and outbound) this node holds. */
  maxDegree: number;
  /** Never redundant (configured peers). */
  keep: (id: string) => boolean;
  /** Not dialed now (banned, failing, being dialed). */
  skip: (id: string) => boolean;
  /** coverNeeds(self, known), when the caller keeps them (the simulator plans 100 000 nodes many times over the same views). */
  needs?: readonly CoverNeed[];
}

/**
 * What to dial and what to let go: one connection per needed third, largest
 * thirds first, up to `maxDegree` connections in all. A third left without a
 * connection at the bound is still reached, through a neighbour that has one
 * (src/broadcast/router.ts hands it over as a proxy); outbound connections that cover
 * nothing are redundant.
 */
export function planTopology(state: TopologyState): TopologyPlan {
  const { self, known, inbound, outbound, keep, skip } = state;
  const needs = state.needs ?? coverNeeds(self, known);
  const dial: string[] = [];
  const used = new Set<string>();
  const connected = new Set([...inbound, ...outbound]);
  let uncovered = 0;
  let degree = connected.size;
  for (const need of needs) {
    // An inbound connection covers a third at no cost of ours; else the outbound one facing us.
    const cover = inbound.find((id) => inArc(id, need.arc)) ?? nearest(self, need, outbound.filter((id) => inArc(id, need.arc)));
    if (cover !== undefined) {
      used.add(cover);
      continue;
    }
    uncovered++;
    if (degree >= state.maxDegree) continue;
    const target = facingMember(self, need, known, (id) => skip(id) || connected.has(id));
    if (target === undefined) continue;
    dial.push(target);
    degree++;
  }
  const redundant = outbound.filter((id) => !used.has(id) && !keep(id));
  return { dial, redundant, covers: [...used], uncovered, needs: needs.length };
}

function nearest(self: string, need: CoverNeed, ids: string[]): string | undefined {
  if (ids.length <= 1) return ids[0];
  return facingMember(self, need, [...ids].sort(), () => false);
}
