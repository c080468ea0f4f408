import { canonicalAddress, formatAddress, parseAddress } from '../connection/address.js';
import { AddressBook, type KnownPeer } from './address-book.js';
import { AddressPolicy } from './address-policy.js';
import { encodePeerExchange, isUnspecified, parsePeerExchange, type PexEntry } from './peer-exchange.js';
import { PexCandidates } from './pex-candidates.js';
import { PexPace } from './pex-pace.js';
import { Provenance } from './provenance.js';
import type { StoredPeer } from './peer-store.js';
import { branchOf, inArc, lowerBound, type Arc } from '../ring/raintree.js';
import { facingMember, planTopology } from './ring-topology.js';
import type { BackoffOptions } from './reconnect.js';
import type { P2PSocket } from '../connection/socket.js';
import type { P2PLogger } from '../common/types.js';
import { P2PIdentityMismatchError } from '../common/errors.js';
import type { NetgroupOptions } from '../trust/netgroup.js';
import { NetgroupShare } from './netgroup-share.js';

/** What discovery needs from the node. */
export interface DiscoveryHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Live connections by peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** Addresses that are this node (its listen and external address). */
  ownAddresses(): string[];
  /** The address this node announces (externalAddress, else its listen address). */
  advertisedAddress(): string | null;
  outboundCount(): number;
  connect(address: string): Promise<unknown>;
  /** Whether an id may be learned and dialed at all (allowedPeers). */
  isAllowed(id: string): boolean;
  /** Whether an id is banned now (not dialed until the ban ends). */
  isBanned(id: string): boolean;
  /** Whether an id is a configured (persistent) peer: dialed only where the config says. */
  isConfigured(id: string): boolean;
  /** Closes a connection the topology no longer needs. */
  release(id: string, why: string): void;
  /** Whether requests use the connection to `id` now (requests to a pattern): it is never let go then. */
  inUse?(id: string): boolean;
  /**
   * For each of this node's own event patterns (at most eventCoverPatterns, fewest nodes first), the sorted ids of the
   * nodes with the same pattern: its covers prefer them (TopologyState.topics). None: the facing member, as before.
   */
  topicPeers?(): ReadonlyArray<readonly string[]>;
}

export interface DiscoveryOptions {
  enabled: boolean;
  intervalMs: number;
  maxKnownPeers: number;
  maxOutbound: number;
  /** Connections (inbound and outbound) past which the node dials no more for the topology. */
  maxPeers: number;
  backoff: BackoffOptions;
  /** Dial loopback and private addresses learned from peers even when this node listens on none. */
  allowPrivate: boolean;
  /** Dial host names learned from peers. */
  allowHostnames: boolean;
  /** The least neighbours kept among the nodes sharing each of `topicPeers` (eventPatternLinks); 0 or none: no floor. */
  topicFloor?: number;
  /** How addresses group into netgroups, of which one holds at most a share of the connections (src/trust/netgroup.ts); the defaults when omitted. */
  netgroups?: NetgroupOptions;
}

/** How long an id stays in the RainTree view after its connection ends. */
export const VIEW_RECENT_MS = 5 * 60_000;
/** Connections a node makes even when its topology needs fewer (a full mesh up to 9 nodes): the 8 of the degree bound max(8, 2·⌈log3 N⌉ + 2). */
export const MIN_DEGREE = 8;

/**
 * Connections not of a node's choosing it takes below its least degree `floor`: a third of it (2 of 8), at least one (a
 * tiny maxPeers). Taken all, ground ids that dialed in while a restarted node's dials were in flight held 3 of its first 8.
 */
export function belowFloorShare(floor: number): number {
  return Math.max(1, Math.floor(floor / 3));
}
/**
 * How an inbound neighbour counts toward the share of inbound connections not of a node's choosing (issue 22, eclipse):
 * 'own' (configured, or the member its topology would choose in its third), 'vouched' (one of its outbound neighbours
 * names it: counted on neither side), 'unchosen'.
 */
export type InboundStanding = 'own' | 'vouched' | 'unchosen';

/**
 * Peer-exchange entries a dialer refused for a cap (maxPeers, maxInbound, maxInboundPerIp, the ring share) is
 * told: its least degree's worth, so that it can join through them, and a bound on what a refusal hands out.
 */
const REFUSED_PEX_ENTRIES = MIN_DEGREE;

/** Failed redials after which a proven peer's address may be challenged by a candidate (it may have moved). */
const MOVED_AFTER_FAILURES = 2;

/**
 * Peer exchange and the address book (control type 5): tells each neighbour
 * where its other neighbours can be dialed, learns the same from them as
 * candidates (bounded, rate-limited, judged by the address policy), and dials
 * proven peers and candidates until the node has maxOutbound outbound
 * connections. Only ids that proved themselves feed the RainTree view.
 */
export class Discovery {
  readonly book: AddressBook;
  private readonly candidates: PexCandidates;
  private readonly policy: AddressPolicy;
  private readonly dialing = new Set<string>();
  /** Connections discovery dialed for the topology: the only ones it closes again when redundant. */
  private readonly dialed = new Set<string>();
  /** What each neighbour's last peer exchange said it is connected to (sorted ids), for choosing proxies. */
  private readonly theirs = new Map<string, string[]>();
  /**
   * Inbound neighbours that stood better than 'unchosen' while connected: they keep it until they disconnect. Else a
   * neighbour's next peer exchange (vouched no more) or a new id (the facing member moves) turned one unchosen again,
   * and the node kept dialing for the share and letting go as it changed back (test/netns/emulate.spec.ts).
   */
  private readonly standing = new Map<string, InboundStanding>();
  /** Ids learned of from a source they do not control: only they may be this node's own choice (src/discovery/provenance.ts). */
  private readonly provenance: Provenance;
  /** What this node's last peer exchange to each neighbour named (sorted ids): whether it has news for it. */
  private readonly told = new Map<string, string[]>();
  private readonly pace: PexPace;
  /** The netgroup share (src/discovery/netgroup-share.ts). */
  private readonly netgroups: NetgroupShare;

  constructor(
    private readonly host: DiscoveryHost,
    private readonly options: DiscoveryOptions,
  ) {
    this.book = new AddressBook(options.maxKnownPeers, options.backoff);
    this.candidates = new PexCandidates({ intervalMs: options.intervalMs, backoff: options.backoff });
    this.policy = new AddressPolicy(options, () => host.advertisedAddress());
    this.provenance = new Provenance(2 * Math.max(1, options.maxKnownPeers));
    this.pace = new PexPace({ round: (full) => this.exchange(full), forming: () => this.forming() }, options.intervalMs);
    this.netgroups = new NetgroupShare(
      {
        connections: () => host.connections(),
        dialing: () => this.dialing,
        addressOf: (id) => this.book.get(id)?.address ?? this.candidates.addressOf(id),
        known: () => [...this.book.entries(), ...this.candidates.entries()],
        // Due ones only: a peer in its backoff (refused us, failed) is no place to go now.
        freeToDial: () => {
          const free = this.freeToDial();
          return (id) => free(id) && (this.book.dueId(id) !== undefined || this.candidates.isDue(id));
        },
        isConfigured: (id) => host.isConfigured(id),
        release: (id, why) => host.release(id, why),
      },
      options.netgroups,
      Math.min(MIN_DEGREE, options.maxPeers),
      options.enabled,
    );
  }

  /**
   * Whether this node learned of `id` from a source `id` does not control (src/discovery/provenance.ts): configured,
   * connected to by this node itself, or named by such an outbound neighbour. Only then may `id` be its own choice.
   * A node that learned of no one that way (a seed that configures no peer: everyone dials it) cannot tell ids apart
   * and takes every id as before; else its share and covers would go to whoever dialed it (or be off).
   */
  isTrusted(id: string): boolean {
    return this.provenance.size === 0 || this.host.isConfigured(id) || this.provenance.has(id);
  }

  start(): void {
    if (!this.options.enabled) return;
    this.pace.start();
    // Peers restored from the peer store: dialed now, not at the first round (a restarted node waited 12 s to be found).
    if (this.book.size > 0) this.fill();
  }

  /**
   * Proven peers from the peer store, before start(): into the address book as proven peers, so that fill()
   * dials them as it dials any (maxOutbound, bans, allowedPeers, the address policy as configured now). Only
   * those the node had learned of from a source they do not control count as its own choice again.
   */
  restore(peers: readonly StoredPeer[]): number {
    let restored = 0;
    // Oldest first: provenance keeps the most recently vouched.
    for (const p of [...peers].reverse()) {
      if (p.id === this.host.selfId || !this.host.isAllowed(p.id) || this.policy.refusal(p.address)) continue;
      this.book.restore(p.id, p.address, p.seenAt);
      if (p.own) this.provenance.vouch(p.id);
      restored++;
    }
    return restored;
  }

  /** What the peer store keeps: proven peers (a connected one seen now), whether they are trusted, banned ones left out. */
  stored(): StoredPeer[] {
    const now = Date.now();
    const connections = this.host.connections();
    return this.book
      .entries()
      .filter((p) => !this.host.isBanned(p.id))
      .map((p) => ({ id: p.id, address: p.address, seenAt: connections.get(p.id)?.isOpen ? now : p.seenAt, own: this.provenance.has(p.id) }));
  }

  stop(): void {
    this.pace.stop();
  }

  /** Proven peers, then peer-exchange candidates (`verified: false`). */
  knownPeers(): KnownPeer[] {
    return [...this.book.entries(), ...this.candidates.entries()];
  }

  /** The RainTree view: this node, its connections, and ids connected in the last VIEW_RECENT_MS. Sorted. */
  routingView(): string[] {
    return [...new Set([this.host.selfId, ...this.host.connections().keys(), ...this.book.recent(VIEW_RECENT_MS)])].sort();
  }

  /**
   * Every id this node knows of: the view and peer-exchange candidates, sorted.
   * It decides which thirds of the ring hold a node (src/ring/raintree.ts, src/discovery/ring-topology.ts):
   * a missing id costs a third, so hearsay counts here (a made-up one no frame: see reaches()).
   */
  knownIds(): string[] {
    const ids = new Set(this.routingView());
    for (const c of this.candidates.entries()) ids.add(c.id);
    return [...ids].sort();
  }

  /**
   * Whether this node has evidence that `id` is a network member, as far as neighbour `via` can tell
   * it: `id` is connected, proven in the address book (a past neighbour), or a peer-exchange candidate
   * named by another neighbour than `via` (a neighbour cannot vouch for ids it named itself).
   */
  isMember(id: string, via: string): boolean {
    if (this.host.connections().has(id) || this.book.get(id)) return true;
    return this.candidates.namedByOtherThan(id, via);
  }

  /**
   * Whether this node has evidence of neighbour `id` other than its own connection: another neighbour's last peer
   * exchange names it (that neighbour is connected to it), or it is a candidate another neighbour named. What this
   * node's other neighbours may know of it too; its own word (its hello, its address) tells them nothing.
   * True with peer exchange off.
   */
  namedByOthers(id: string): boolean {
    // Without peer exchange there is no word of others to go by, nor do the neighbours have any: they know the origins
    // they are connected to, as this node does (a full mesh of configured peers relays at its origins' rate, as before).
    if (!this.options.enabled) return true;
    for (const [neighbour, named] of this.theirs) if (neighbour !== id && named[lowerBound(named, id)] === id) return true;
    return this.candidates.namedByOtherThan(id, id);
  }

  /**
   * Whether a neighbour's last peer exchange named a peer inside `arc` that this node has other evidence
   * of (isMember: connected, a past neighbour, or named by another neighbour too). Ids only that neighbour
   * names do not count: else a neighbour naming made-up ids along this node's path was handed a frame for
   * each of them, every broadcast (15.6 frames a broadcast in a 6-node mesh, issue 22), and dropped them.
   * With `only`, a peer it accepts (repair's designated announcer of an event for subscribers).
   */
  reaches(neighbour: string, arc: Arc, only?: (id: string) => boolean): boolean {
    return this.theirs.get(neighbour)?.some((id) => inArc(id, arc) && (only?.(id) ?? true) && this.isMember(id, neighbour)) ?? false;
  }

  /**
   * Whether `id` is the member this node's topology would choose in its third of the ring (the
   * facing member, src/discovery/ring-topology.ts, among the known ids and `id`): then it may dial
   * in past maxInboundPerThird. An honest newcomer dials its own facing members, and the two ends
   * of a third usually face each other, so it is let in where a full third would refuse it.
   */
  isOwnChoice(id: string, knownIds?: readonly string[]): boolean {
    const self = this.host.selfId;
    const branch = branchOf(self, id);
    if (!branch) return false;
    const connections = this.host.connections();
    // Only a member it could dial: one that announces where (a connected one) or that it knows an address for.
    const dialable = (other: string) => this.book.get(other) !== undefined || connections.get(other)?.remote?.listenAddress != null || this.candidates.has(other);
    if (!dialable(id) || !this.isTrusted(id)) return false;
    let known = knownIds ?? this.knownIds();
    const at = lowerBound(known, id);
    if (known[at] !== id) known = [...known.slice(0, at), id, ...known.slice(at)];
    // Members it could not dial now (banned, backing off) give way, as in fill(); connected ones stay in the running if dialable.
    const skip = (other: string) =>
      other !== id &&
      (!this.isTrusted(other) ||
        (connections.has(other) ? !dialable(other) : this.host.isBanned(other) || (this.book.dueId(other) === undefined && !this.candidates.isDue(other))));
    return facingMember(self, { arc: branch.arc, own: branch.own }, known, skip) === id;
  }

  /**
   * Whether a neighbour of this node's own choosing (an outbound connection) named `id` as one of its
   * neighbours in its last peer exchange: `id` is in the network by the word of a peer this node chose,
   * not by its own. Such a peer is not held to the share of inbound connections not of this node's
   * choosing (a full mesh of configured peers, where every node dials the earlier ones); ids that only
   * dial in are.
   */
  isVouched(id: string): boolean {
    for (const [neighbour, socket] of this.host.connections()) {
      // Only a neighbour it learned of from others: one it dialed on an id's own word would vouch for that id's fellows.
      if (neighbour === id || socket.direction !== 'outbound' || !socket.isOpen || !this.isTrusted(neighbour)) continue;
      const named = this.theirs.get(neighbour);
      if (named && named[lowerBound(named, id)] === id) return true;
    }
    return false;
  }

  /**
   * How inbound peer `id` counts toward the share (InboundStanding); a connected one keeps the best standing it had.
   * `knownIds`: this.knownIds(), when the caller judges several peers at once (it sorts every id the node knows).
   */
  inboundStanding(id: string, knownIds?: readonly string[]): InboundStanding {
    const was = this.standing.get(id);
    if (was === 'own') return was;
    const now: InboundStanding = this.host.isConfigured(id) || this.isOwnChoice(id, knownIds) ? 'own' : this.isVouched(id) ? 'vouched' : (was ?? 'unchosen');
    if (now !== 'unchosen' && this.host.connections().get(id)?.isOpen) this.standing.set(id, now);
    return now;
  }

  /**
   * How an outbound neighbour counts toward the share of connections not of this node's choosing: 'own' when this node
   * learned of it from others (isTrusted), else 'unchosen'. Below its least degree, or for a third where only such ids are
   * free, a node dials ids it knows only by their own word (ground ids from its peer store after a restart); counted as its
   * own, each let one more ground id dial in past the share: 4 of 9 and 6 of 12 connections after a restart (review of issue 22).
   */
  outboundStanding(id: string): InboundStanding {
    return this.isTrusted(id) ? 'own' : 'unchosen';
  }

  /**
   * Whether this node could dial a peer of its own choosing now instead of taking one more inbound
   * connection: peer exchange is on, and it knows a peer (proven or candidate) it is not connected to,
   * not dialing and that is not banned. Without one (a hub its clients dial, a node that knows nobody
   * else), refusing inbound peers would protect nothing: the inbound share is not held then.
   */
  hasOwnChoice(): boolean {
    if (!this.options.enabled || this.host.outboundCount() >= this.options.maxOutbound) return false;
    const free = this.freeToDial();
    return this.book.ids().some(free) || this.candidates.entries().some((c) => free(c.id));
  }

  /** Whether `id` is a peer this node could dial now: one it learned of from others (fill() dials only those for the shares), not connected, dialing or banned. */
  private freeToDial(): (id: string) => boolean {
    const connections = this.host.connections();
    return (id) => id !== this.host.selfId && !connections.has(id) && !this.dialing.has(id) && !this.host.isBanned(id) && this.isTrusted(id);
  }

  /** Whether discovery dialed the connection to `id` for the topology (the only outbound ones it lets go again). */
  dialedForTopology(id: string): boolean {
    return this.dialed.has(id);
  }

  /** Why one more connection from `host` would pass its netgroup's share (src/discovery/netgroup-share.ts). */
  netgroupRefusal(host: string): string | undefined {
    return this.netgroups.refusal(host);
  }

  /**
   * Whether this node is dialing a peer it learned of from others (provenance, not the "trusts everyone" of a node that
   * learned of no one that way): below its least degree, that dial is its choice. Peers it only knows (perhaps gone: a
   * restarted node's stored peers at closed ports) are not; else it refused honest nodes while it redialed dead ones.
   */
  dialingOwnChoice(): boolean {
    // With no provenance at all isTrusted holds for every id, and no dial says anything of choice.
    if (!this.options.enabled || this.provenance.size === 0) return false;
    for (const id of this.dialing) if (this.isTrusted(id)) return true;
    return false;
  }

  /** A new connection proved its id: remember where it says it can be dialed, and tell it the peers we know. */
  onConnected(socket: P2PSocket): void {
    const id = socket.peerId!;
    // A connection this node made itself (configured, or the application's connect()), not discovery's dial of an id it
    // knew only by its own word (that one stays as it was).
    if (socket.direction === 'outbound' && !this.dialing.has(id)) this.provenance.vouch(id);
    this.candidates.remove(id);
    const address = dialableAddress(socket);
    const refusal = address && this.policy.refusal(address);
    if (address && !refusal) {
      const atAddress = socket.direction === 'outbound' && socket.remoteAddress === address;
      for (const stale of this.book.proven(id, address, atAddress)) {
        this.host.logger.debug?.(`forgot ${stale} at ${address}: ${id} answers there now`, { event: 'peer-forgotten', peerId: stale, address });
      }
    } else if (refusal) {
      this.host.logger.debug?.(`${id} at ${socket.remoteAddress} announces ${address}; not redialing it there: ${refusal}`, {
        event: 'refused',
        peerId: id,
        address: socket.remoteAddress,
      });
    }
    if (!this.options.enabled) return;
    this.send(socket);
    this.pace.hurry();
  }

  /** `id` refused us because another node with our id is connected to it: not dialed for `ms`. */
  holdOff(id: string, ms: number): void {
    this.book.holdOff(id, ms);
  }

  /** What each neighbour's last peer exchange named (its neighbours' ids, sorted), by neighbour id: at most maxPeers × 64 ids. */
  neighbourViews(): Map<string, readonly string[]> {
    return new Map(this.theirs);
  }

  /** `refusedFull`: the peer closed a connection we dialed because it was at maxPeers (it is dialed again after a wait). */
  onDisconnected(id: string, refusedFull = false): void {
    this.book.disconnected(id, refusedFull);
    this.dialed.delete(id);
    this.theirs.delete(id);
    this.told.delete(id);
    this.standing.delete(id);
    this.fill();
    this.pace.hurry();
  }

  /** A peer-exchange body from a neighbour: judged, bounded, then taken as candidates. Never a protocol error. */
  onMessage(socket: P2PSocket, body: Buffer): void {
    if (!this.options.enabled) return;
    // We send at most one per gap, and read two per gap with a burst (takePexToken): frames sent a gap apart arrive
    // together when they queued behind others, or when this node's own loop was held up.
    if (!takePexToken(socket, performance.now(), this.gap())) {
      // Once per run of ignored ones, not per frame: a flood of tiny frames would otherwise be a flood of log lines.
      if (!socket.peerExchangeOverflow) {
        this.host.logger.warn(`peer exchange from ${socket.peerId} at ${socket.remoteAddress} ignored: over its rate (2 per ${this.gap()} ms, ${PEX_READ_BURST} at once)`, {
          event: 'peer-exchange',
          peerId: socket.peerId,
          address: socket.remoteAddress,
        });
      }
      socket.peerExchangeOverflow = true;
      return;
    }
    socket.peerExchangeOverflow = false;
    const own = new Set(this.host.ownAddresses());
    const parsed = parsePeerExchange(body, (entry) => entry.id === this.host.selfId || own.has(entry.address));
    this.theirs.set(socket.peerId!, parsed.entries.map((e) => e.id).sort());
    // An outbound neighbour it learned of from others vouches for the ids it names; an inbound one, or one known only by
    // its own word, does not (ground ids that dial in name each other).
    if (socket.direction === 'outbound' && this.isTrusted(socket.peerId!)) for (const entry of parsed.entries) this.provenance.vouch(entry.id);
    if (parsed.problems.length > 0) {
      this.host.logger.warn(
        `peer exchange from ${socket.peerId} at ${socket.remoteAddress}: ignored ${parsed.ignored} entr${parsed.ignored === 1 ? 'y' : 'ies'} (${parsed.problems.slice(0, 3).join('; ')})`,
        { event: 'peer-exchange', peerId: socket.peerId, address: socket.remoteAddress },
      );
    }
    // What an honest neighbour may also send (peers we know, addresses our policy refuses) is not a warning.
    const skipped = new Map<string, number>();
    const taken = this.book.addresses();
    for (const address of own) taken.add(address);
    let added = 0;
    for (const entry of parsed.entries) {
      const why = this.judge(socket.peerId!, entry, taken);
      if (why) skipped.set(why, (skipped.get(why) ?? 0) + 1);
      else added++;
    }
    if (skipped.size > 0) {
      const reasons = [...skipped].map(([why, n]) => `${n} ${why}`).join('; ');
      this.host.logger.debug?.(`peer exchange from ${socket.peerId} at ${socket.remoteAddress}: ${added} new candidates, skipped ${reasons}`, {
        event: 'peer-exchange',
        peerId: socket.peerId,
        address: socket.remoteAddress,
      });
    }
    this.fill();
    this.pace.hurry();
  }

  /** Takes one entry as a candidate, or says why not. */
  private judge(source: string, entry: PexEntry, taken: Set<string>): string | undefined {
    const parsed = parseAddress(entry.address);
    if (typeof parsed === 'string') return 'undialable';
    const address = canonicalAddress(parsed.host, parsed.port);
    const refusal = this.policy.refusal(address);
    if (refusal) return `refused (${refusal})`;
    const { id } = entry;
    if (!this.host.isAllowed(id)) return 'not in allowedPeers';
    if (this.host.connections().has(id)) return 'connected';
    if (this.host.isConfigured(id)) return 'configured';
    const known = this.book.get(id);
    if (known && (known.address === address || known.failures < MOVED_AFTER_FAILURES)) return 'proven elsewhere';
    if (taken.has(address)) return 'the address of a proven peer or ours';
    return this.candidates.offer(source, id, address, this.book.size + this.candidates.size < this.options.maxKnownPeers);
  }

  /**
   * Dials what the RainTree topology needs (src/discovery/ring-topology.ts): a neighbour in each
   * third of the id ring that holds a known node, up to maxPeers connections and
   * maxOutbound dials; with no connection at all, any known peer. Connections it
   * dialed that another connection now makes redundant are closed once they are
   * two intervals old, so that the first seed everyone dialed does not stay
   * connected to everyone.
   */
  fill(): void {
    if (!this.host.isRunning() || !this.options.enabled) return;
    const connections = this.host.connections();
    let room = this.options.maxOutbound - this.host.outboundCount();
    const skip = (id: string) => id === this.host.selfId || connections.has(id) || this.dialing.has(id) || this.host.isBanned(id);
    const inbound: string[] = [];
    const outbound: string[] = [];
    // A closing connection (let go, or refused by a full peer) neither covers a third nor counts toward a degree:
    // counted, it let the next fill() take a second redundant connection for the one already going, below the floor.
    for (const [id, socket] of connections) if (socket.isOpen) (socket.direction === 'inbound' ? inbound : outbound).push(id);
    this.netgroups.evict(inbound, outbound);
    // …but it holds its place under maxPeers until it is gone, as it does for admission (src/node/peer.ts).
    const closing = connections.size - inbound.length - outbound.length;
    const floor = Math.min(MIN_DEGREE, this.options.maxPeers);
    // A dial to a peer whose netgroup holds its share already: the next member of that third is chosen instead.
    const netgroups = this.netgroups.step();
    const crowded = (id: string, claim = false) => netgroups.crowded(id, claim);
    const state = {
      self: this.host.selfId,
      known: this.knownIds(),
      maxDegree: this.options.maxPeers - closing,
      keep: (id: string) => this.host.isConfigured(id) || !this.dialed.has(id) || this.host.inUse?.(id) === true,
      // Not dialable now: the next member of that third is chosen instead.
      skip: (id: string) => skip(id) || (this.book.dueId(id) === undefined && !this.candidates.isDue(id)) || crowded(id),
      // An inbound neighbour is this node's own choice for its third only if it could have dialed it (src/discovery/ring-topology.ts).
      dialable: (id: string) => this.book.get(id) !== undefined,
      trusted: (id: string) => this.isTrusted(id),
      topics: this.host.topicPeers?.(),
      topicFloor: this.options.topicFloor,
    };
    const plan = planTopology({ ...state, inbound, outbound: [...outbound, ...this.dialing] });
    const forming = inbound.length + outbound.length < floor;
    // A dial of an id known only by its own word adds a connection not of its choosing (outboundStanding): only within the
    // share admission holds (a third of the least degree below it), while it knows a peer of its own to dial instead (below
    // its least degree: while it is dialing one, as admission holds it).
    // Judged only when such a dial comes up; each one taken uses a place (a dial that then does not happen too: it errs on the side of fewer).
    let unchosenRoom: number | undefined;
    const takeUnchosen = (id: string): boolean => {
      if (this.isTrusted(id)) return true;
      unchosenRoom ??= this.unchosenRoom(inbound, outbound, state.known);
      if (unchosenRoom <= 0 && (forming ? this.dialingOwnChoice() : this.hasOwnChoice())) return false;
      unchosenRoom--;
      return true;
    };
    for (const id of plan.dial) {
      if (room <= 0) break;
      if (crowded(id, true) || !takeUnchosen(id)) continue;
      const proven = this.book.dueId(id);
      if (proven) {
        if (!this.mayDialProven(id, forming)) continue;
        this.dial(proven, () => this.book.failed(id));
      } else {
        const candidate = this.candidates.takeId(id, forming && this.vouched(id) ? this.pace.formingMs : undefined);
        if (!candidate) continue;
        this.dial(candidate, () => this.candidates.failed(id));
      }
      room--;
    }
    // Below the least degree (small networks, or a node that knows too little yet): any known peer will do.
    // So too while the connections of its own choosing (outbound, and inbound neighbours it would have
    // dialed) are fewer than twice the inbound ones it did not choose: those then hold at most a third
    // of its connections, however many ids are ground into its thirds (issue 22, eclipse).
    // As admission counts them (src/node/connections.ts): inbound ones vouched for by an outbound neighbour on neither side.
    const chosen = new Set(plan.chosen);
    for (const id of chosen) this.standing.set(id, 'own');
    // Each inbound neighbour judged once per step, against the ids sorted once: judged one by one, every peer exchange a
    // node with 15 neighbours read cost it about 2 ms here (a sort of every known id per neighbour, several times over).
    // Dials change which members are due, so the standings are judged again after the dials below.
    let judged = new Map<string, InboundStanding>();
    const standing = (id: string): InboundStanding => {
      if (chosen.has(id)) return 'own';
      let s = judged.get(id);
      if (s === undefined) judged.set(id, (s = this.inboundStanding(id, state.known)));
      return s;
    };
    const ownIn = (ids: string[]) => ids.filter((id) => standing(id) === 'own').length;
    const unchosen = (ids: string[]) => ids.filter((id) => standing(id) === 'unchosen').length;
    // Outbound ones to ids known only by their own word count as not of its choosing (outboundStanding), on both sides below.
    const ownOut = (ids: string[]) => ids.filter((id) => this.isTrusted(id)).length;
    const unchosenOut = outbound.length - ownOut(outbound);
    // Only while as many places as it has needs stay free (as planTopology's own choices beside inbound ones): dials for
    // the share filled every place, the nodes that needed this one were refused at maxPeers, and a 30-node network at
    // maxPeers 10 never settled (test/netns/emulate.spec.ts). Admission holds the share meanwhile.
    const degree = inbound.length + outbound.length + this.dialing.size;
    const reserve = Math.min(2 * (unchosen(inbound) + unchosenOut) - (ownOut([...outbound, ...this.dialing]) + ownIn(inbound)), state.maxDegree - plan.needs - degree);
    // A netgroup past its share (a neighbour closed): dial the difference from others, within the same bound.
    const netShort = Math.min(netgroups.shortfall(), state.maxDegree - plan.needs - degree);
    const short = Math.min(room, Math.max(floor - degree, reserve, netShort), this.options.maxPeers - connections.size - this.dialing.size);
    if (short > 0) {
      // Peers it learned of from others first; below the least degree, any (a seed that everyone dials knows them only by their word).
      const mine = (id: string) => skip(id) || !this.isTrusted(id) || crowded(id, true);
      const proven = this.dueProven(short, mine, forming);
      for (const known of proven) this.dial(known, () => this.book.failed(known.id));
      const heard = this.takeCandidates(short - proven.length, mine, forming);
      for (const candidate of heard) this.dial(candidate, () => this.candidates.failed(candidate.id));
      const below = Math.min(short, floor - degree) - proven.length - heard.length;
      if (below > 0) {
        const fits = (id: string) => skip(id) || crowded(id, true) || !takeUnchosen(id);
        const any = this.dueProven(below, fits, forming);
        for (const known of any) this.dial(known, () => this.book.failed(known.id));
        for (const candidate of this.takeCandidates(below - any.length, fits, forming)) this.dial(candidate, () => this.candidates.failed(candidate.id));
      }
    }
    judged = new Map();
    // Only connections that have lasted two intervals count here, as covers and toward the least
    // degree, and no more are let go than keep that degree. A new one may be gone in a moment (a
    // full peer sends its peers, then goodbye): counted, it let an old one go, which was then
    // dialed again, every time the full peer was dialed.
    const settled = Date.now() - 2 * this.options.intervalMs;
    const lasting = (id: string) => (connections.get(id)?.connectedAt.getTime() ?? Infinity) <= settled;
    const lastingIn = inbound.filter(lasting);
    const lastingOut = outbound.filter(lasting);
    const ownLasting = ownOut(lastingOut) + ownIn(lastingIn);
    let spare = Math.min(lastingIn.length + lastingOut.length - floor, ownLasting - 2 * (unchosen(inbound) + unchosenOut));
    if (inbound.length + outbound.length + this.dialing.size >= this.options.maxPeers) {
      spare = Math.max(spare, this.swaps(state, inbound, outbound));
    }
    // Past maxPeers (a dial of its own that opened after a configured peer took the last place): redundant ones go.
    // Lasting ones only, as above: a connection just opened may be gone in a moment, and one let go for it dialed again.
    spare = Math.max(spare, lastingIn.length + lastingOut.length - this.options.maxPeers);
    if (spare <= 0) return;
    const { redundant } = planTopology({ ...state, inbound: lastingIn, outbound: lastingOut });
    // Not one whose going would leave a netgroup further past its share: else it let go of honest dials it had made
    // while ids of one netgroup that dialed in stayed (3 of 8, review of issue 22).
    for (const id of redundant) {
      if (spare <= 0) break;
      if (!netgroups.mayRelease(connections.get(id))) continue;
      this.host.release(id, 'another connection covers its part of the ring');
      spare--;
    }
  }

  /**
   * At maxPeers, how many redundant connections to let go even at the least degree: one per
   * uncovered third whose facing member has not refused us for being full. Where the least
   * degree is maxPeers (up to 27 nodes with maxPeers 8), the first connections made fill every
   * slot, and without this a third stayed uncovered for good; nine nodes that had filled up
   * with each other refused everyone else, and the network stayed in two parts.
   */
  private swaps(
    state: {
      self: string;
      known: string[];
      keep: (id: string) => boolean;
      skip: (id: string) => boolean;
      dialable: (id: string) => boolean;
      trusted: (id: string) => boolean;
    },
    inbound: string[],
    outbound: string[],
  ): number {
    const wanted = planTopology({
      ...state,
      inbound,
      outbound: [...outbound, ...this.dialing],
      maxDegree: Infinity,
      skip: (id) => state.skip(id) || this.book.refusedFull(id),
    });
    // Only thirds with no connection at all: for a third an inbound neighbour holds, no connection is let go.
    return wanted.dialUncovered;
  }

  /**
   * How many more connections not of this node's choosing (inbound 'unchosen', outbound to ids it knows only by their
   * word, dials of them in flight) fit the share admission holds: a third of its connections past its least degree (half
   * those of its own choosing: outbound to ids it learned of from others, dials of them, inbound 'own'), a third of that
   * degree below it. As admission counts them (src/node/connections.ts); vouched-for inbound ones on neither side.
   */
  private unchosenRoom(inbound: readonly string[], outbound: readonly string[], known: readonly string[]): number {
    let own = 0;
    let unchosen = 0;
    for (const id of [...outbound, ...this.dialing]) if (this.isTrusted(id)) own++;
    else unchosen++;
    for (const id of inbound) {
      const s = this.inboundStanding(id, known);
      if (s === 'own') own++;
      else if (s === 'unchosen') unchosen++;
    }
    const floor = Math.min(MIN_DEGREE, this.options.maxPeers);
    const open = inbound.length + outbound.length;
    return (open < floor ? belowFloorShare(floor) : Math.floor(own / 2)) - unchosen;
  }

  /**
   * Up to `limit` candidates to dial now, within the budget of PEX_DIALS_PER_INTERVAL a pexIntervalMs. `forming` (below
   * its least degree): candidates a neighbour of this node's own choosing named (`vouched`) have that budget a forming
   * round instead (src/discovery/pex-pace.ts): 4 in 30 s paced a new network's formation (issue 23). Names only peers that
   * dialed in gave keep the slow budget, so a hostile one still makes a new node dial at most 4 addresses of its choosing a
   * pexIntervalMs; each address is dialed at most once a pexIntervalMs whoever named it.
   */
  private takeCandidates(limit: number, skip: (id: string) => boolean, forming: boolean): KnownPeer[] {
    if (!forming || limit <= 0) return this.candidates.take(limit, skip);
    const quick = this.candidates.take(limit, (id) => skip(id) || !this.vouched(id), this.pace.formingMs);
    return [...quick, ...this.candidates.take(limit - quick.length, skip)];
  }

  /**
   * Up to `limit` proven peers due for a dial. Those at an address no dial of this node's reached yet (one they announced
   * when they dialed in) draw on the candidates' budget: else peers that dial in once each, announcing a third party's
   * address, and leave had a node below 8 redial those addresses in every forming round (55 dials of 16 ports in 8 s).
   */
  private dueProven(limit: number, skip: (id: string) => boolean, forming: boolean): KnownPeer[] {
    const picked: KnownPeer[] = [];
    if (limit <= 0) return picked;
    for (const known of this.book.due(Infinity, skip)) {
      if (picked.length >= limit) break;
      if (this.mayDialProven(known.id, forming)) picked.push(known);
    }
    return picked;
  }

  /** Whether proven peer `id` may be dialed now: at once where this node reached it before, else within the candidates' budget. */
  private mayDialProven(id: string, forming: boolean): boolean {
    return this.book.reached(id) || this.candidates.spend(id, forming && this.vouched(id) ? this.pace.formingMs : undefined);
  }

  /** Configured, or named by a neighbour this node chose (src/discovery/provenance.ts), strictly: no evidence at all vouches for nobody. */
  private vouched(id: string): boolean {
    return this.host.isConfigured(id) || this.provenance.has(id);
  }

  /** A dial names the id, so only that id can answer; on success onConnected records it as proven. */
  private dial(known: KnownPeer, onFailure: () => void): void {
    this.dialing.add(known.id);
    this.host
      .connect(`${known.id}@${known.address}`)
      .then(() => {
        this.netgroups.dialed(known.address, true);
        this.dialed.add(known.id);
        // The id answered (not merely dialed in: anyone with its key can do that), so the address was no third party's.
        this.candidates.reached(known.id);
      })
      .catch((err: Error) => {
        // Another id answers at that address (a node restarted there with a new key): forget the old id
        // there rather than redial it every backoff period, each time with a warning.
        if (err instanceof P2PIdentityMismatchError && err.expected === known.id) {
          this.book.forget(known.id);
          this.candidates.remove(known.id);
          this.host.logger.debug?.(`forgot ${known.id} at ${known.address}: ${err.actual} answers there now`, {
            event: 'peer-forgotten',
            peerId: known.id,
            address: known.address,
          });
          return;
        }
        onFailure();
        this.netgroups.dialed(known.address, false);
        this.host.logger.debug?.(`could not dial ${known.verified ? 'known peer' : 'candidate'} ${known.id} at ${known.address}: ${err.message}`, {
          event: 'dial-failed',
          peerId: known.id,
          address: known.address,
        });
      })
      .finally(() => this.dialing.delete(known.id));
  }

  /** We send each neighbour at most one peer exchange per this gap (ms), and read two per gap (takePexToken). */
  private gap(): number {
    return Math.min(1000, this.options.intervalMs / 2);
  }

  /**
   * A dialer this node refuses (it is full, for any cap): tells it which peers it can dial instead, and keeps
   * it as a candidate. Else a group of full nodes never learns of the nodes they refuse, plans no
   * cover toward them, and never makes room for one (see swaps()).
   */
  onRefused(dialer: P2PSocket): void {
    if (!this.options.enabled) return;
    // Bounded: a refused dialer gets no more than what it needs to reach its least degree, never the whole list.
    this.send(dialer, REFUSED_PEX_ENTRIES);
    const address = dialableAddress(dialer);
    if (!address || !dialer.peerId) return;
    const taken = this.book.addresses();
    for (const own of this.host.ownAddresses()) taken.add(own);
    const why = this.judge(dialer.peerId, { id: dialer.peerId, address }, taken);
    if (why) {
      this.host.logger.debug?.(`refused ${dialer.peerId} at ${dialer.remoteAddress} (full), not kept as a candidate: ${why}`, {
        event: 'refused',
        peerId: dialer.peerId,
        address: dialer.remoteAddress,
      });
    }
  }

  /** `most`: at most this many entries, drawn at random (a refused dialer's). */
  private send(to: P2PSocket, most = Infinity): void {
    // The one sent on connect may be followed at once by the interval's: the receiver would drop it with a warning.
    const now = Date.now();
    if (now - to.lastPeerExchangeSentAt < this.gap()) return;
    const entries = this.entriesFor(to);
    // An empty one too while this node is below its least degree: it tells the neighbour that it has news for it.
    if (entries.length === 0 && (most !== Infinity || !this.short(entries))) return;
    if (most === Infinity && to.peerId && this.host.connections().get(to.peerId) === to) this.told.set(to.peerId, entries.map((e) => e.id).sort());
    if (entries.length > most) {
      // A partial Fisher-Yates shuffle: the first `most` are a uniform sample.
      for (let i = 0; i < most; i++) {
        const j = i + Math.floor(Math.random() * (entries.length - i));
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      entries.length = most;
    }
    to.lastPeerExchangeSentAt = now;
    to.sendControl(encodePeerExchange(entries));
  }

  /**
   * The connected peers a peer exchange can name (those with a dialable address), sorted by id: entriesFor's ids for
   * every neighbour at once, that neighbour left out. Asking each neighbour's entries anew made every peer exchange read
   * cost a parse of every neighbour's address per neighbour.
   */
  private nameable(): Array<{ id: string; socket: P2PSocket }> {
    const all: Array<{ id: string; socket: P2PSocket }> = [];
    for (const [id, socket] of this.host.connections()) if (dialableAddress(socket)) all.push({ id, socket });
    return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Where this node's other connected peers can be dialed, for neighbour `to`. */
  private entriesFor(to: P2PSocket): PexEntry[] {
    const entries: PexEntry[] = [];
    for (const [id, socket] of this.host.connections()) {
      if (socket === to) continue;
      const address = dialableAddress(socket);
      if (address) entries.push({ id, address });
    }
    return entries;
  }

  /** Whether a peer exchange naming `named` comes from, or goes to, a node below its least degree (the receiver is the one more). */
  private short(named: readonly unknown[]): boolean {
    return named.length + 1 < Math.min(MIN_DEGREE, this.options.maxPeers);
  }

  /**
   * Whether neighbour `id` is owed a peer exchange before the next full round: what this node would name
   * differs from what it last named, and either side is below its least degree (as the lists tell: this
   * node's, what it last told, or what the neighbour last told of itself, with a name new to it).
   * In a steady network nothing differs: it waits for the full round.
   */
  private owed(id: string, socket: P2PSocket, nameable: ReadonlyArray<{ id: string; socket: P2PSocket }>): boolean {
    if (!socket.isOpen) return false;
    const now = nameable.filter((e) => e.socket !== socket).map((e) => e.id);
    const told = this.told.get(id) ?? [];
    if (now.length === told.length && now.every((x, i) => x === told[i])) return false;
    if (this.short(now) || this.short(told)) return true;
    const theirs = this.theirs.get(id);
    return theirs !== undefined && this.short(theirs) && now.some((x) => theirs[lowerBound(theirs, x)] !== x && told[lowerBound(told, x)] !== x);
  }

  /** Whether this node is below its least degree and knows a peer it could dial now (within maxOutbound). */
  private canGrow(): boolean {
    const connections = this.host.connections();
    let open = 0;
    for (const socket of connections.values()) if (socket.isOpen) open++;
    if (open >= Math.min(MIN_DEGREE, this.options.maxPeers) || this.host.outboundCount() >= this.options.maxOutbound) return false;
    const skip = (id: string) => id === this.host.selfId || connections.has(id) || this.dialing.has(id) || this.host.isBanned(id);
    return this.book.due(1, skip).length > 0 || this.candidates.entries().some((c) => !skip(c.id) && this.candidates.isDue(c.id));
  }

  /** Whether a round before the next full one would tell or dial anything (src/discovery/pex-pace.ts). */
  private forming(): boolean {
    if (!this.host.isRunning() || !this.options.enabled) return false;
    const nameable = this.nameable();
    for (const [id, socket] of this.host.connections()) if (this.owed(id, socket, nameable)) return true;
    return this.canGrow();
  }

  /** A round of peer exchange: `full`, to every peer, else to those owed news; then top up outbound connections. */
  private exchange(full: boolean): void {
    if (!this.host.isRunning()) return;
    const nameable = full ? [] : this.nameable();
    for (const [id, socket] of this.host.connections()) if (full || this.owed(id, socket, nameable)) this.send(socket);
    this.fill();
  }
}

/** Where a connected peer can be dialed: the address it advertised, with an "any interface" host replaced by its IP. */
function dialableAddress(socket: P2PSocket): string | undefined {
  const advertised = socket.remote?.listenAddress;
  if (!advertised) return undefined;
  const parsed = parseAddress(advertised);
  if (typeof parsed === 'string' || parsed.port === 0) return undefined;
  if (!isUnspecified(parsed.host)) return canonicalAddress(parsed.host, parsed.port);
  const ip = socket.raw.remoteAddress?.replace(/^::ffff:/, '');
  return ip ? formatAddress(ip, parsed.port) : undefined;
}

/** Peer exchanges read from one neighbour at once at most: an honest one's, sent a gap apart, may come together. */
export const PEX_READ_BURST = 8;
/** Tokens a connection starts with: the one sent on connect, and the first round's, may come together. */
const PEX_READ_FIRST = 2;

/**
 * A token bucket on the socket: two peer exchanges read per `gap` ms (twice what a node sends), at most PEX_READ_BURST at
 * once, PEX_READ_FIRST on a new connection (a full bucket would give a dialer that reconnects a burst each time). `now`
 * is monotonic. False: over it.
 */
export function takePexToken(socket: Pick<P2PSocket, 'peerExchangeTokens' | 'peerExchangeCountedAt'>, now: number, gap: number): boolean {
  const last = socket.peerExchangeCountedAt;
  socket.peerExchangeTokens =
    last === undefined ? PEX_READ_FIRST : Math.min(PEX_READ_BURST, socket.peerExchangeTokens + (2 * Math.max(0, now - last)) / Math.max(1, gap));
  socket.peerExchangeCountedAt = now;
  if (socket.peerExchangeTokens < 1) return false;
  socket.peerExchangeTokens -= 1;
  return true;
}
