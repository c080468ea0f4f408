import { digestOf, type NetworkMessage } from './broadcast-codec.js';
import { MAX_HOPS, encodeNetworkMessage } from './broadcast-codec.js';
import { P2PFrameTooLargeError } from './errors.js';
import { headOf, planForward } from './raintree.js';
import type { SeenEntry } from './replay-window.js';

/**
 * Relaying of network-wide broadcasts that passed the pipeline
 * (broadcast-pipeline.ts): RainTree routing (raintree.ts) with a fallback to
 * gossip. Each node delivers a broadcast to its handler once, and forwards each
 * arc it is handed (or the gossip copy) once.
 */

/** What the router needs from the node. */
export interface RouterHost {
  readonly selfId: string;
  /** Every peer id this node knows, sorted ascending (its RainTree view), including itself. */
  view(): string[];
  /** Connected peer ids. */
  neighbours(): string[];
  isConnected(id: string): boolean;
  /** Queues the encoded message to a peer; throws a typed error when it cannot. */
  send(id: string, body: Buffer): void;
  /** Hands a broadcast to this node's handler; `from` is the relaying neighbour, or this node for its own. */
  deliver(from: string, message: NetworkMessage, data: unknown): void;
}

export interface RelayStats {
  originated: number;
  delivered: number;
  duplicates: number;
  sent: number;
  gossipFallbacks: number;
  /** RainTree messages whose arc this node saw differently from its sender (views still converging). */
  viewMismatches: number;
  /** Copies not sent to a neighbour because they exceed the maxFrameBytes it announced. */
  tooLargeForNeighbour: number;
}

export interface OriginateResult {
  id: string;
  /** Peers this node handed the message to. */
  sent: string[];
  failed: Array<{ peerId: string; error: Error }>;
}

/** Distinct arcs one node forwards for one broadcast; more would mean a bug or a hostile sender. */
const MAX_ARCS_PER_ID = 8;

export class BroadcastRouter {
  constructor(
    private readonly host: RouterHost,
    readonly stats: RelayStats,
  ) {}

  /** This node's own broadcast: its handler gets it too, once, after this returns. */
  originate(message: NetworkMessage, entry: SeenEntry, data: unknown): OriginateResult {
    entry.delivered = true;
    this.stats.originated++;
    this.stats.delivered++;
    setImmediate(() => this.host.deliver(this.host.selfId, message, data));
    const result: OriginateResult = { id: message.id, sent: [], failed: [] };
    this.forward(message, undefined, entry, result);
    return result;
  }

  /** A broadcast accepted for the first time: deliver it, then forward it. */
  accept(from: string, message: NetworkMessage, entry: SeenEntry, data: unknown): void {
    entry.delivered = true;
    this.stats.delivered++;
    this.host.deliver(from, message, data);
    this.relay(from, message, entry);
  }

  /** Another copy of an accepted broadcast: forward it if it hands this node an arc (or gossip) it has not covered yet. */
  again(from: string, message: NetworkMessage, entry: SeenEntry): void {
    const forwarded = message.strategy === 'raintree' ? (entry.arcs?.has(arcKey(message)) ?? false) : entry.gossiped;
    this.stats.duplicates++;
    if (!forwarded) this.relay(from, message, entry);
  }

  private relay(from: string, message: NetworkMessage, entry: SeenEntry): void {
    // A copy with no hops left is delivered but cannot go on; recording it would stop the copies that can.
    if (message.hops >= MAX_HOPS) return;
    const result = { id: message.id, sent: [], failed: [] };
    if (message.strategy === 'raintree') {
      const arcs = (entry.arcs ??= new Set());
      // More distinct arcs than an honest network hands one node: flood instead, so no arc is left uncovered.
      if (arcs.size >= MAX_ARCS_PER_ID) return this.gossip(message, from, entry, result);
      arcs.add(arcKey(message));
    }
    this.forward(message, from, entry, result);
  }

  private forward(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    if (message.strategy === 'gossip') return this.gossip(message, from, entry, result);
    const self = this.host.selfId;
    const view = this.host.view();
    // A digest of the whole view, not just of the arc: a node that no RainTree node on the way has in
    // its view (it is connected to none of them) lies in some arc nobody can see it in; but its own
    // neighbours, which do get the message, have it in their views, so their digest differs and they
    // flood. Views known to connected and proven ids only (issue 13) made such nodes common.
    const digest = digestOf(view);
    let fallback = false;
    if (from !== undefined) {
      // The sender's view differs from ours (one of us knows a peer the other does not):
      // cover what we know by RainTree, and flood as well so that nobody is missed.
      if (digest.count !== message.digest.count || digest.xor !== message.digest.xor) {
        this.stats.viewMismatches++;
        fallback = true;
      }
    }
    for (const branch of planForward(view, self, message.arc)) {
      // The first connected member that accepts the message heads the branch; the rest of the arc is its job.
      let handed = false;
      const candidates = branch.members.filter((id) => this.host.isConnected(id));
      for (const candidate of candidates) {
        // Members before the candidate are not connected here, not known dead: the head keeps them in its arc.
        const next = headOf(branch, (id) => id === candidate, false)!;
        if (this.trySend(next.head, { ...message, hops: message.hops + 1, arc: next.arc, digest }, result)) {
          handed = true;
          break;
        }
      }
      if (!handed) fallback = true;
    }
    if (fallback) {
      // Part of the arc has no connected member here: flood it instead, so coverage stays whole.
      this.stats.gossipFallbacks++;
      this.gossip({ ...message, strategy: 'gossip' }, from, entry, result);
    }
  }

  private gossip(message: NetworkMessage, from: string | undefined, entry: SeenEntry, result: OriginateResult): void {
    // A copy that has used up its hops cannot be sent on: it must not mark the gossip done for the copies that can.
    if (entry.gossiped || message.hops >= MAX_HOPS) return;
    entry.gossiped = true;
    const copy = { ...message, strategy: 'gossip' as const, hops: message.hops + 1 };
    for (const id of this.host.neighbours()) {
      // The origin is skipped: it has its own message (the origin is proven by its signature, so naming another node cannot censor it).
      if (id !== from && id !== message.origin) this.trySend(id, copy, result);
    }
  }

  private trySend(id: string, message: NetworkMessage, result: OriginateResult): boolean {
    if (message.hops > MAX_HOPS) return false;
    try {
      this.host.send(id, encodeNetworkMessage(message));
      this.stats.sent++;
      result.sent.push(id);
      return true;
    } catch (err) {
      if (err instanceof P2PFrameTooLargeError) this.stats.tooLargeForNeighbour++;
      result.failed.push({ peerId: id, error: err as Error });
      return false;
    }
  }
}

function arcKey(message: NetworkMessage): string {
  return `${message.arc.from}${message.arc.to}`;
}
