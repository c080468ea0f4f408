import { RING_ROOT, inArc, lowerBound, occupiedBy, sortedHas, thirdsOf, type Arc } from '../ring/raintree.js';

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
export function facingMember(self: string, need: CoverNeed, sortedKnown: readonly string[], skip: (id: string) => boolean, tries = Infinity): string | undefined {
  // By index, not by copying the members out: a node with N known ids dials in O(log N), and the simulator plans 100 000 nodes.
  const n = sortedKnown.length;
  const members = span(sortedKnown, need.arc);
  if (members.count === 0) return undefined;
  const own = span(sortedKnown, need.own);
  const at = lowerBound(sortedKnown, self);
  const offset = at < n && sortedKnown[at] === self ? (at - own.start + n) % n : -1;
  const rank = offset >= 0 && offset < own.count ? offset : 0;
  const start = Math.floor((rank * members.count) / Math.max(1, own.count));
  for (let i = 0; i < members.count && i < tries; i++) {
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
  /** Ids to dial, one per third without a connection of this node's own choosing, most important (largest third) first. */
  dial: string[];
  /** Outbound connections that cover no third another connection does not already cover: close them. */
  redundant: string[];
  /** The connections that cover a third for this node (at most one per third). */
  covers: string[];
  /** Inbound neighbours that are this node's own choice for their third (the member it would dial there). */
  chosen: string[];
  /** Thirds with a known node and no connection. */
  uncovered: number;
  /** Thirds held by inbound connections alone, not of this node's choosing, while it could dial its own choice there. */
  unchosen: number;
  /** How many of `dial` are for thirds with no connection at all (the others add this node's own choice beside an inbound one). */
  dialUncovered: number;
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
  /**
   * Whether an inbound neighbour is one this node could have dialed itself (it knows an address for it): only
   * then may it be this node's own choice for its third. All of them when left out (the simulator).
   */
  dialable?: (id: string) => boolean;
  /**
   * Whether this node learned of `id` from a source `id` does not control (a configured peer, a peer it connected to
   * itself, an outbound neighbour's peer exchange), not only from `id`'s own hello or an inbound neighbour's peer
   * exchange, which ids ground into its thirds can give about each other (issue 22, eclipse). Only such an id is its
   * own choice in a third; others are dialed only in a third that holds none. All of them when left out.
   */
  trusted?: (id: string) => boolean;
  /** coverNeeds(self, known), when the caller keeps them (the simulator plans 100 000 nodes many times over the same views). */
  needs?: readonly CoverNeed[];
  /**
   * For each event pattern of this node's own (at most eventCoverPatterns, fewest subscribers first), the sorted ids of
   * the nodes with the same pattern: the member this node dials in a third is one of them when the third holds one it
   * may dial (the facing one among them), as gossipsub keeps a mesh per topic. Any member of a third covers it, so the
   * ring's guarantees are the same; events for those patterns then find a subscriber inside the thirds that hold one
   * (src/broadcast/router.ts) instead of a carrier. None, or at a tight degree bound (maxDegree under twice the
   * needs, where the two ends must need each other): the facing member of all known ids, as before.
   */
  topics?: ReadonlyArray<readonly string[]>;
  /**
   * The least number of neighbours each of `topics` keeps among its nodes (eventPatternLinks, as gossipsub's D_lo):
   * covers by pattern give one per third that holds the pattern's nodes, so in a small topic two of them can sit in one
   * third and only one is linked; a node whose only such neighbours drop relays then hears of an event from nobody.
   * More are drawn at random (`draw`) among those known from others, beside the covers. 0 or none: no floor. Also the
   * most connections the floor holds beside the covers, all patterns together (as eventFanout bounds the fanout): at 6
   * per pattern of 4, throwaway keys subscribing to a node's patterns held 22 of its 24 outbound places, and its
   * requests failed with "maxOutbound reached" (test/net/review-floor-sybils.spec.ts).
   */
  topicFloor?: number;
  /** Random numbers in [0, 1) for the floor's draws; Math.random when left out. */
  draw?: () => number;
}

/** Members of a pattern's list looked at per third before the facing member of all known ids is taken instead. */
const TOPIC_TRIES = 32;

/**
 * The member of `need` this node would dial: the facing one among the nodes sharing one of its event patterns
 * (`topics`, in order) when there is one `skip` lets through, else the facing one of `known`.
 */
export function chooseMember(self: string, need: CoverNeed, known: readonly string[], topics: ReadonlyArray<readonly string[]> | undefined, skip: (id: string) => boolean): string | undefined {
  // Only ids this node knows of otherwise (it has an address for them): a record alone is not a way to reach a node.
  const unknown = (id: string) => skip(id) || !sortedHas(known, id);
  for (const list of topics ?? []) {
    // A bounded walk: anyone may hold a pattern, and a list of 50 000 throwaway keys must not cost a walk of them each plan.
    const id = facingMember(self, need, list, unknown, TOPIC_TRIES);
    if (id !== undefined) return id;
  }
  return facingMember(self, need, known, skip);
}

/**
 * What to dial and what to let go: one connection of this node's own choosing per needed third,
 * largest thirds first, up to `maxDegree` connections in all. A third left without a connection
 * at the bound is still reached, through a neighbour that has one (src/broadcast/router.ts hands
 * it over as a proxy); outbound connections that cover nothing are redundant.
 *
 * Own choosing (against eclipse, as gossipsub v1.1 keeps outbound mesh quotas and CometBFT's PEX
 * outbound slots): a third is covered by the member this node would dial there itself (the facing
 * member among those it can dial, connected or not), else by an outbound connection in it, and by
 * an inbound one only when neither exists. So an inbound neighbour that is not its choice never
 * makes an outbound one redundant, and while a member it can dial exists, the node dials that one
 * too (when places are left): ids ground into a node's thirds that dial in cannot take its covers.
 * Only ids it learned of from others (`trusted`) are its choice: else ground ids that announce an
 * address, outnumbering the honest members of its deepest thirds, were its choice there by rank.
 * Where the facing member dialed in (the usual case: the two ends need each other), nothing changes;
 * nor does anything at a tight degree bound (maxDegree under twice the needs), where an inbound
 * neighbour covers first, as before.
 */
export function planTopology(state: TopologyState): TopologyPlan {
  const { self, known, inbound, outbound, keep, skip } = state;
  const dialable = state.dialable ?? (() => true);
  const trusted = state.trusted ?? (() => true);
  // The second look (any member, where none it learned of from others is free) only when some are not: it walks the third again.
  const anyMember = (need: CoverNeed, free: (id: string) => boolean) => (state.trusted ? facingMember(self, need, known, free) : undefined);
  const needs = state.needs ?? coverNeeds(self, known);
  const topics = state.topics;
  const sharing = (id: string) => topics !== undefined && topics.some((list) => sortedHas(list, id));
  const dial: string[] = [];
  const used = new Set<string>();
  const chosen: string[] = [];
  const connected = new Set([...inbound, ...outbound]);
  const incoming = new Set(inbound);
  let uncovered = 0;
  let unchosen = 0;
  let dialUncovered = 0;
  let degree = connected.size;
  const reinforce: string[] = [];
  // Only with room for a connection of its own choosing beside one dialed in, per need: at a tight degree bound
  // (maxPeers about the needs, as the sparse meshes and the simulator use) an inbound neighbour covers first, as
  // before; keeping outbound ones beside them there filled every place, and a 20-node mesh at maxPeers 8 no longer settled.
  if (state.maxDegree < 2 * needs.length) {
    for (const need of needs) {
      const cover = inbound.find((id) => inArc(id, need.arc)) ?? nearest(self, need, outbound.filter((id) => inArc(id, need.arc)));
      if (cover !== undefined) {
        used.add(cover);
        continue;
      }
      uncovered++;
      if (degree >= state.maxDegree) continue;
      const free = (id: string) => skip(id) || connected.has(id);
      // The facing member, whatever its patterns: at this bound the two ends must need each other, or thirds go
      // uncovered (simulator, 10 000 nodes at maxPeers 20, covers by pattern: 0.97 × the event bound, but 3 of 300
      // events to one subscriber lost for good, their only subscriber in a third no neighbour covered).
      const target = facingMember(self, need, known, (id) => free(id) || !trusted(id)) ?? anyMember(need, free);
      if (target === undefined) continue;
      dial.push(target);
      dialUncovered++;
      degree++;
    }
    const redundant = outbound.filter((id) => !used.has(id) && !keep(id));
    return { dial, redundant, covers: [...used], chosen, uncovered, unchosen, dialUncovered, needs: needs.length };
  }
  for (const need of needs) {
    // The member this node would dial here, among those it learned of from others; a neighbour already connected stays
    // in the running (inbound: if dialable). Ground ids that dialed in and announce an address outnumber the honest
    // members of its deepest thirds: by rank alone one of them was its choice, and was let in past the share.
    const choice = chooseMember(self, need, known, state.topics, (id) => !trusted(id) || (connected.has(id) ? incoming.has(id) && !dialable(id) : skip(id)));
    if (choice !== undefined && connected.has(choice)) {
      used.add(choice);
      if (incoming.has(choice)) chosen.push(choice);
      continue;
    }
    const own = nearest(self, need, outbound.filter((id) => inArc(id, need.arc)));
    if (own !== undefined) {
      used.add(own);
      // A node sharing an event pattern is the choice now (records arrive after the first connections): dialed beside
      // it while places are left, it covers the third at the next plan, and the old one is let go as redundant.
      if (choice !== undefined && sharing(choice) && !sharing(own)) reinforce.push(choice);
      continue;
    }
    const held = inbound.find((id) => inArc(id, need.arc));
    if (held !== undefined) {
      used.add(held);
      // No member it could dial: the inbound neighbour is the only cover there is.
      if (choice === undefined) continue;
      unchosen++;
      reinforce.push(choice);
      continue;
    }
    uncovered++;
    if (degree >= state.maxDegree) continue;
    // A third that holds only ids known by their own word: one of them, rather than no cover.
    const target = choice ?? anyMember(need, (id) => connected.has(id) || skip(id));
    if (target === undefined) continue;
    dial.push(target);
    dialUncovered++;
    degree++;
  }
  // Its own choice beside an inbound neighbour: after the thirds with no connection, and only while as many places as
  // it has needs stay free for the nodes that need it (at a tight maxPeers, filling them would leave their thirds uncovered).
  for (const id of reinforce) {
    if (degree >= state.maxDegree - needs.length) break;
    dial.push(id);
    degree++;
  }
  const floorKept = topicFloor(state, connected, incoming, used, dial, degree, trusted);
  const redundant = outbound.filter((id) => !used.has(id) && !floorKept.has(id) && !keep(id));
  return { dial, redundant, covers: [...used], chosen, uncovered, unchosen, dialUncovered, needs: needs.length };
}

/**
 * The floor of neighbours per pattern (TopologyState.topicFloor): outbound ones sharing a pattern kept beside the
 * covers up to it, and ids drawn at random among the pattern's nodes pushed onto `dial` below it; at most `floor` of
 * those beside the covers, all patterns together. Drawn, not by rank
 * (ground ids next to this node cannot make themselves its links); only ids it learned of from others and knows an
 * address for; and below maxDegree. Not only while as many places as it has needs stay free, as its own choices beside
 * inbound ones: a node with many inbound neighbours (29-38 of 50, against 22 needs) then had none sharing a pattern of
 * 33 or 534 subscribers, and missed an event whose paths met droppers (simulator, 100 000 nodes, seeds 6 and 9). The
 * cap of `floor` keeps what it takes from the places others need small.
 * @returns The outbound connections the floor keeps (not redundant).
 */
function topicFloor(state: TopologyState, connected: ReadonlySet<string>, incoming: ReadonlySet<string>, used: ReadonlySet<string>, dial: string[], degree: number, trusted: (id: string) => boolean): Set<string> {
  const kept = new Set<string>();
  const floor = state.topicFloor ?? 0;
  if (floor <= 0 || !state.topics) return kept;
  const draw = state.draw ?? Math.random;
  // Connections the floor holds or dials beside the covers, all patterns together: at most `floor`.
  let extra = 0;
  for (const list of state.topics) {
    const want = Math.min(floor, list.length - (sortedHas(list, state.self) ? 1 : 0));
    let have = 0;
    const spare: string[] = [];
    for (const id of connected) {
      if (!sortedHas(list, id)) continue;
      if (incoming.has(id) || used.has(id) || kept.has(id)) have++;
      else spare.push(id);
    }
    for (const id of dial) if (!connected.has(id) && sortedHas(list, id)) have++;
    for (const id of spare) {
      if (have >= want || extra >= floor) break;
      kept.add(id);
      extra++;
      have++;
    }
    // A bounded number of draws: anyone may hold a pattern, and most of a large list may be unknown to this node.
    for (let tries = 0; have < want && tries < TOPIC_TRIES && degree < state.maxDegree && extra < floor; tries++) {
      const id = list[Math.floor(draw() * list.length)]!;
      if (id === state.self || connected.has(id) || dial.includes(id) || state.skip(id) || !trusted(id) || !sortedHas(state.known, id)) continue;
      dial.push(id);
      degree++;
      extra++;
      have++;
    }
  }
  return kept;
}

function nearest(self: string, need: CoverNeed, ids: string[]): string | undefined {
  if (ids.length <= 1) return ids[0];
  return facingMember(self, need, [...ids].sort(), () => false);
}
