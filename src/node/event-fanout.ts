import { fanoutTargets } from '../broadcast/fanout-choice.js';
import { sortedHas } from '../ring/raintree.js';
import type { P2PLogger } from '../common/types.js';

/** What the fanout needs from the node. */
export interface EventFanoutHost {
  readonly logger: P2PLogger;
  /** The topic's subscribers, sorted (src/node/subscribers.ts). */
  subscribersOf(topic: string): readonly string[];
  /** This node's open connections and the handler dials under way. */
  neighbours(): string[];
  /** Whether this node has an open connection to `id`. */
  isConnected(id: string): boolean;
  /** Where subscriber `id` of `topic` listens, as its directory record says; undefined: nowhere to dial. */
  addressOf(id: string, topic: string): string | undefined;
  /** Dials subscriber `id` at `address` within the limits of the dials to handlers (handler-dials.ts); why not, or undefined. */
  dial(id: string, address: string, topic: string): string | undefined;
}

export interface EventFanoutOptions {
  /** Subscribers of a topic this node sends events to without subscribing that it keeps as neighbours (eventFanout). */
  want: number;
  /** A dialed subscriber no event has used for this long may be closed, ms (handlerIdleMs). */
  idleMs: number;
}

/** How often one topic's fanout is looked at again while events to it flow: a lookup per event would cost a walk per event. */
const CHECK_MS = 1_000;
/** Topics whose last look is remembered; past it the memory starts over (a look again costs a lookup, no dial). */
const MAX_TOPICS = 1_024;

/**
 * The connections a node keeps to subscribers of the topics it sends events to without subscribing (gossipsub's fanout,
 * with its TTL as handlerIdleMs): an event then reaches a subscriber in one hop, and when its carriers drop it, repair
 * from this node tells the subscribers it is connected to, who tell the rest (docs/events.md, "Dropping relays").
 * Dialed as a request dials a handler that is not a neighbour (handlerDialRate, the address policy, failed addresses
 * held off), but counted apart: at most eventFanout connections open or dialing for the fanout, all topics together,
 * so requests keep their quarter of maxOutbound (handler-dials.ts, DialPool); closed again once unused for handlerIdleMs.
 */
export class EventFanout {
  /** When each topic's fanout was last looked at. */
  private readonly checked = new Map<string, number>();
  /** When an event last went to a topic each dialed subscriber handles: the connection is kept while it is recent. */
  private readonly usedAt = new Map<string, number>();

  constructor(
    private readonly host: EventFanoutHost,
    private readonly opts: EventFanoutOptions,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** This node sent an event to `topic`'s subscribers without being one. */
  sent(topic: string): void {
    if (this.opts.want <= 0) return;
    const now = this.now();
    const last = this.checked.get(topic);
    if (last !== undefined && now - last < CHECK_MS) return;
    if (this.checked.size >= MAX_TOPICS) this.checked.clear();
    this.checked.set(topic, now);
    const subscribers = this.host.subscribersOf(topic);
    if (subscribers.length === 0) return;
    const neighbours = this.host.neighbours();
    // The subscribers it dialed stay while it sends to their topic.
    for (const id of neighbours) if (this.usedAt.has(id) && sortedHas(subscribers, id)) this.usedAt.set(id, now);
    if (this.usedAt.size >= MAX_TOPICS) for (const [id, at] of this.usedAt) if (now - at >= this.opts.idleMs) this.usedAt.delete(id);
    for (const id of fanoutTargets(subscribers, neighbours, this.opts.want, this.random)) {
      const address = this.host.addressOf(id, topic);
      const why = address === undefined ? 'its record states no address' : this.host.dial(id, address, topic);
      if (why) {
        this.host.logger.debug?.(`subscriber ${id} of "${topic}" not dialed: ${why}`, { event: 'refused', peerId: id });
        continue;
      }
      this.usedAt.set(id, now);
    }
  }

  /**
   * The subscribers of `topic` this node dialed for its events and is connected to. The router sends each a copy of
   * its own, whose arc holds it alone, and routes the event's paths around them (src/broadcast/router.ts): drawn from
   * records anyone may sign, they must add a way in, never take the paths' place (a hostile one would drop them).
   */
  linksFor(topic: string): string[] {
    if (this.usedAt.size === 0) return [];
    const subscribers = this.host.subscribersOf(topic);
    const out: string[] = [];
    for (const id of this.usedAt.keys()) if (this.host.isConnected(id) && sortedHas(subscribers, id)) out.push(id);
    return out;
  }

  /** Whether events use the connection to `peerId`: the topology and the idle close must leave it. */
  inUse(peerId: string): boolean {
    const at = this.usedAt.get(peerId);
    if (at === undefined) return false;
    if (this.now() - at < this.opts.idleMs) return true;
    this.usedAt.delete(peerId);
    return false;
  }
}
