import { createHash } from 'node:crypto';
import { RING_ROOT, arcLength, inArc, thirdsOf, type Arc } from '../ring/raintree.js';

/**
 * Watchers: which neighbours a node announces a network broadcast's id to (src/broadcast/repair.ts; events for
 * subscribers keep random and designated announcers among subscribers).
 *
 * A relay that fails loses an arc, and every arc a relay is handed lies inside one third of the
 * ring (the origin, honest, hands the thirds out itself). So a node's neighbours in the two other
 * thirds of the ring got the broadcast from the tree unless a failure of their own cut them off;
 * one in each of those thirds cannot both be cut off, or silent, with two failed relays. Each node
 * has `count` such watchers per epoch: slot j takes, in the (j mod 2)-th of the two thirds beside
 * the node's own at level ⌊j/2⌋ (0: the ring's thirds; 1: the thirds of its own third, outside every
 * lost arc below that level), the first of the node's connections clockwise from a point drawn
 * from its id, the epoch and j. A
 * watcher tells it of every id it gets; nobody else does, unless the tree failed around them
 * (then they tell all, repair.ts). So a healthy broadcast costs at most `count` IHAVE entries per
 * node, batched per run, however many neighbours each has.
 *
 * Views differ: each neighbour decides from what it knows of the node's connections, which may lack some
 * (an id it has no evidence of, a connection newer than the node's last peer exchange). Missing ones only make
 * more neighbours count themselves watchers: the node's true watcher in a slot is first from the point among
 * all its connections, so among any subset holding it too, and it always knows itself. So a view holds only
 * what the node said, never a guess: a neighbour that said nothing (peer exchange off, or not yet) is taken to
 * have no connection but this node, which then watches it (the tell-every-neighbour cost, for that node only; with
 * peer exchange off, every neighbour, as repair did before watchers). Guessing a full mesh missed a node for good
 * whenever a guessed connection it did not have came first: in 5 nodes in a line, directory.spec's records.
 */

/**
 * Watchers per node by default: one in each of the two thirds of the ring other than its own, which two failed
 * relays cannot both cut off (each failure loses an arc inside one third). Not a user option yet: fewer leave a
 * node one failed relay from missing a broadcast; each one more costs about one IHAVE entry per node per broadcast
 * and covers a failure past the two the design promises (a third watcher reached every node in the simulator with
 * 10 % of nodes crashed, where two missed 1 node in 1 000 once). Events for subscribers do not use watchers
 * (repair.ts, broadcastRepairFanout).
 */
export const REPAIR_WATCHERS = 2;

/**
 * Random announcers per id beside the watchers, for network broadcasts: neighbours not known to have it, drawn as
 * main's broadcastRepairFanout draws them. Watchers alone let hostile neighbours that are both of a node's watchers in
 * an epoch, while its relay dropped its copy, keep a broadcast from it (issue 22 item 2,
 * test/net/repair-watchers-hostile.spec.ts). With h honest holders among its d neighbours each telling R of about d,
 * P(no honest holder tells it) ~ (1 - R/d)^h, about e^(-R) when h is near d: per broadcast, while both its watchers
 * and its relay are hostile, R = 6 gives 0.8 % at d = 18, h = 12 and 2.2 % at d = 50, h = 30 (R = 4: 4.9 %, 8.2 %;
 * R = 2: 24 %, 29 %). 6, as main's default fanout: withholding gets no easier than before watchers. Each one costs
 * about one IHAVE entry per node per broadcast (2 + 6 here), in the same frames per run (one draw per run).
 */
export const REPAIR_RANDOM = 6;

/** What a node knows of a neighbour's connections. */
export interface WatchView {
  readonly self: string;
  /**
   * Whether the neighbour's peer exchange named a connection inside the arc (only ids this node has evidence of).
   * Undefined, or false for the whole ring (it said nothing): this node knows of no connection of it but itself.
   */
  reaches?: (peer: string, arc: Arc) => boolean;
}

/** The ring's three thirds: the arcs the origin hands out. */
const TOP = thirdsOf(RING_ROOT);
const RING = 1n << 160n;

/** Whether `view.self` is one of `peer`'s `count` watchers in `epoch`. */
export function isWatcherOf(view: WatchView, peer: string, epoch: number, count: number): boolean {
  const self = view.self;
  const reaches = view.reaches !== undefined && view.reaches(peer, RING_ROOT) ? view.reaches : undefined;
  // The peer's connections inside an arc, as far as this node knows (a subset of the true ones): itself, and what its peer exchange said.
  const connectedIn = (arc: Arc): boolean => inArc(self, arc) || (reaches !== undefined && reaches(peer, arc));
  for (let slot = 0; slot < count; slot++) {
    // Slots 0 and 1 in the two thirds of the ring other than the peer's, 2 and 3 in the two other thirds of the
    // peer's own third, and so on down: each pair outside every arc below its level that holds the peer.
    const { own, others } = siblingsAt(peer, slot >> 1);
    // A third where the peer has no connection gives way to the other one, then to its own (a tiny network).
    let third = others[slot % 2]!;
    if (!connectedIn(third)) third = connectedIn(others[(slot + 1) % 2]!) ? others[(slot + 1) % 2]! : own;
    if (!inArc(self, third)) continue;
    const point = pointIn(third, `${epoch}:${slot}:${peer}`);
    if (point === self) return true;
    // No connection of the peer lies between the point and this node, going clockwise within the third.
    const before = inArc(self, { from: point, to: third.to })
      ? connectedOther(connectedIn, { from: point, to: self })
      : connectedOther(connectedIn, { from: point, to: third.to }) || (self !== third.from && connectedOther(connectedIn, { from: third.from, to: self }));
    if (!before) return true;
  }
  return false;
}

/** The arc holding `id` at `level` (0: a third of the ring) and its two siblings, clockwise from it. */
function siblingsAt(id: string, level: number): { own: Arc; others: Arc[] } {
  let thirds = TOP;
  for (let l = 0; ; l++) {
    const at = thirds.findIndex((t) => inArc(id, t));
    const own = thirds[at]!;
    if (l === level || thirdsOf(own).length < 3) return { own, others: [thirds[(at + 1) % thirds.length]!, thirds[(at + 2) % thirds.length]!] };
    thirds = thirdsOf(own);
  }
}

/** `connectedIn` for an arc that does not hold self (its end is exclusive): what the peer has there. */
function connectedOther(connectedIn: (arc: Arc) => boolean, arc: Arc): boolean {
  return arc.from !== arc.to && connectedIn(arc);
}

/** A point of `third` every node derives alike from `seed`. */
function pointIn(third: Arc, seed: string): string {
  const hash = BigInt(`0x${createHash('sha1').update(`repair-watch:${seed}`).digest('hex')}`);
  const at = (BigInt(`0x${third.from}`) + (hash % arcLength(third))) % RING;
  return at.toString(16).padStart(40, '0');
}
