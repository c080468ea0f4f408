import type { P2PSocket } from '../connection/socket.js';
import { DEFAULTS } from '../common/defaults.js';
import { hostOf, netgroupExcess, netgroupOf, netgroupRefusal, type NetgroupOptions } from '../trust/netgroup.js';
import type { KnownPeer } from './address-book.js';

/** What the netgroup share needs from discovery. */
export interface NetgroupShareHost {
  /** Live connections by peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** Ids being dialed now. */
  dialing(): ReadonlySet<string>;
  /** Where an id would be dialed (its proven address, else where a neighbour said it listens). */
  addressOf(id: string): string | undefined;
  /** Every peer known with an address (proven and candidates). */
  known(): KnownPeer[];
  /** Whether a known peer could be dialed now (learned of from others, not connected, dialing or banned, and due): one test for a whole pass. */
  freeToDial(): (id: string) => boolean;
  isConfigured(id: string): boolean;
  release(id: string, why: string): void;
}

/** How long a netgroup a dial failed into is not counted as free to dial. */
const FAILED_MS = 30_000;
/** Hosts whose netgroup is remembered, and netgroups whose last failed dial is: each cleared past this many. */
const REMEMBERED = 4096;
const DEFAULT_NETGROUPS: NetgroupOptions = { netgroupPrefixV4: DEFAULTS.netgroupPrefixV4, netgroupPrefixV6: DEFAULTS.netgroupPrefixV6, perIpLimitsOnLoopback: false };

/**
 * The netgroup share of one node (src/trust/netgroup.ts says the rule): the netgroups of its connections, dials and the
 * peers it could dial, admission's refusal, what a fill() step may dial and let go, and eviction past the share.
 */
export class NetgroupShare {
  private readonly byHost = new Map<string, string>();
  /**
   * When a dial into each netgroup last failed (cleared when one there succeeds). A netgroup whose dials fail is no place
   * to go: naming addresses costs nothing, and ids a neighbour names at black holes in other netgroups made a node hold
   * its own site's peers to a share and let them go for dials that never connected (review of issue 22: 12 honest peers to 4).
   */
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly host: NetgroupShareHost,
    private readonly options: NetgroupOptions | undefined,
    /** The least degree: below it, a third of it; never evicted below it. */
    private readonly floor: number,
    /** Peer exchange is on: without it the node dials nobody of its own, and no peer is free to dial. */
    private readonly enabled: boolean,
  ) {}

  /**
   * Why one more connection to a peer at `host` (an IP, or the host of an address) would pass its netgroup's share:
   * counted against this node's connections and dials in flight, while holding it costs no degree.
   */
  refusal(host: string): string | undefined {
    return netgroupRefusal(this.of(host), this.held(), this.free(), this.floor, this.own());
  }

  /** A dial to `address` failed or succeeded: a netgroup whose dials fail is not counted as free to dial for a while. */
  dialed(address: string, ok: boolean): void {
    const group = this.of(hostOf(address));
    if (ok) return void this.failedAt.delete(group);
    if (this.failedAt.size >= REMEMBERED) this.failedAt.clear();
    this.failedAt.set(group, Date.now());
  }

  /**
   * Past its least degree, while a netgroup holds more than its share of the open connections (its peers came within
   * it, then others closed: 3 of 9, then 3 of 8), the newest inbound connections from that netgroup go, down to the
   * share and never below the least degree, as Bitcoin's eviction keeps netgroups apart. Not configured peers, not this
   * node's own dials. `inbound` and `outbound` (the open connections) lose the ids let go.
   */
  evict(inbound: string[], outbound: string[]): void {
    if (inbound.length + outbound.length < this.floor) return;
    const connections = this.host.connections();
    const groupOf = (id: string) => this.ofSocket(connections.get(id)!);
    const held = [...inbound, ...outbound].map(groupOf);
    // One netgroup among its connections (a LAN, one host): none is past a share, and the peers it knows are not read.
    if (new Set(held).size < 2) return;
    // Not counting its dials in flight: one that never answers (an address a neighbour named at a black hole) would let
    // a connection go for nothing (review of issue 22: V at 6 with dials of 7 black holes in flight).
    const free = this.free(false);
    const own = this.own();
    for (let past = netgroupExcess(held, free, this.floor, own); past.group !== undefined; past = netgroupExcess(held, free, this.floor, own)) {
      const crowded = past.group;
      // Never below its least degree: a peer of another netgroup free to dial is only a name (ids a neighbour named at black
      // holes made it let its own site's peers go, 12 to 4). fill() dials others for the share past it; their connections
      // then let the crowded ones go here.
      if (held.length <= this.floor) return;
      let newest: string | undefined;
      for (const id of inbound) {
        if (this.host.isConfigured(id) || groupOf(id) !== crowded) continue;
        if (newest === undefined || connections.get(id)!.connectedAt > connections.get(newest)!.connectedAt) newest = id;
      }
      if (newest === undefined) return;
      this.host.release(newest, `peers from netgroup ${crowded} past their share of this node's connections`);
      inbound.splice(inbound.indexOf(newest), 1);
      held.splice(held.indexOf(crowded), 1);
    }
  }

  /** What one fill() step judges against: the netgroups held and free, read once (and only when it matters). */
  step(): NetgroupStep {
    return new NetgroupStep(this);
  }

  /** The netgroup of each connection (the IP it came from or reached) and of each dial in flight (the address dialed). */
  held(): string[] {
    const groups: string[] = [];
    for (const socket of this.host.connections().values()) groups.push(this.ofSocket(socket));
    for (const id of this.host.dialing()) {
      const address = this.host.addressOf(id);
      if (address) groups.push(this.of(hostOf(address)));
    }
    return groups;
  }

  /** Per netgroup, the peers this node could dial now, and (`withDials`) its dials in flight (they may come to be connections). */
  free(withDials = true): Map<string, number> {
    const groups = new Map<string, number>();
    if (!this.enabled) return groups;
    const dialing = this.host.dialing();
    const freeToDial = this.host.freeToDial();
    const now = Date.now();
    for (const known of this.host.known()) {
      if (!(freeToDial(known.id) || (withDials && dialing.has(known.id)))) continue;
      const group = this.of(hostOf(known.address));
      const failedAt = this.failedAt.get(group);
      if (failedAt === undefined || now - failedAt >= FAILED_MS) groups.set(group, (groups.get(group) ?? 0) + 1);
    }
    return groups;
  }

  /**
   * This node's own netgroups: those of the local addresses its connections run from (its site, as its peers see it).
   * Peers there are never held to a share: a node's own site is no eclipse, and holding it let attackers in a third
   * netgroup make every node of a large site shed its own site's peers.
   */
  own(): Set<string> {
    const groups = new Set<string>();
    for (const socket of this.host.connections().values()) {
      const local = socket.raw?.localAddress;
      if (local) groups.add(this.of(local));
    }
    return groups;
  }

  /** The netgroup of a connection: of the IP it came from or reached. */
  ofSocket(socket: P2PSocket): string {
    return this.of(socket.raw?.remoteAddress ?? hostOf(socket.remoteAddress ?? ''));
  }

  /** The netgroup of a host, remembered (a fill() step judges every known peer's). */
  of(host: string): string {
    let group = this.byHost.get(host);
    if (group === undefined) {
      if (this.byHost.size >= REMEMBERED) this.byHost.clear();
      this.byHost.set(host, (group = netgroupOf(host, this.options ?? DEFAULT_NETGROUPS)));
    }
    return group;
  }

  /** The least degree the share is judged at. */
  get least(): number {
    return this.floor;
  }

  /** Where an id would be dialed. */
  addressOf(id: string): string | undefined {
    return this.host.addressOf(id);
  }

  isConfigured(id: string): boolean {
    return this.host.isConfigured(id);
  }
}

/**
 * One fill() step's view of the share: the netgroups held (each dial it decides on claims a place) and free, read once,
 * the free ones only when a netgroup other than the one judged is among the connections.
 */
export class NetgroupStep {
  private heldNow?: string[];
  private freeNow?: Map<string, number>;
  private ownNow?: Set<string>;
  /** The netgroups held as redundant connections are let go in this step, and how far past its share the most crowded is then. */
  private releasing?: string[];
  private releasingExcess?: number;

  constructor(private readonly share: NetgroupShare) {}

  /**
   * Whether a dial to `id` would pass its netgroup's share (the next member of its third is chosen instead, as admission
   * would refuse it inbound). `claim`: it is about to be dialed, and holds a place of its netgroup for the rest of this
   * step (one a dial loop then skips errs on the side of fewer).
   */
  crowded(id: string, claim = false): boolean {
    const address = this.share.addressOf(id);
    if (address === undefined || this.share.isConfigured(id)) return false;
    const group = this.share.of(hostOf(address));
    const held = this.held();
    if (!held.every((g) => g === group) && netgroupRefusal(group, held, this.free(), this.share.least, this.own()) !== undefined) return true;
    if (claim) held.push(group);
    return false;
  }

  /** How many connections from other netgroups would bring one past its share (a neighbour closed) back within it: 0 when none could be dialed. */
  shortfall(): number {
    const held = this.held();
    if (new Set(held).size < 2) return 0;
    const past = netgroupExcess(held, this.free(), this.share.least, this.own());
    return past.group !== undefined && [...this.free().keys()].some((g) => g !== past.group) ? past.excess : 0;
  }

  /**
   * Whether letting the redundant connection `socket` go leaves no netgroup further past its share (else a node let go of
   * honest dials it had made while ids of one netgroup that dialed in stayed: 3 of 8); if so, it is counted as gone.
   */
  mayRelease(socket: P2PSocket | undefined): boolean {
    const held = (this.releasing ??= this.share.held());
    const at = socket ? held.indexOf(this.share.ofSocket(socket)) : -1;
    const after = at >= 0 ? held.filter((_g, i) => i !== at) : held;
    let excess: number | undefined;
    if (new Set(held).size > 1) {
      // The excess before is the one found for the last connection let go (or found now, the first time).
      const now = (this.releasingExcess ??= netgroupExcess(held, this.free(), this.share.least, this.own()).excess);
      excess = netgroupExcess(after, this.free(), this.share.least, this.own()).excess;
      if (excess > now) return false;
    }
    this.releasing = after;
    this.releasingExcess = excess;
    return true;
  }

  private own(): Set<string> {
    return (this.ownNow ??= this.share.own());
  }

  private held(): string[] {
    return (this.heldNow ??= this.share.held());
  }

  private free(): Map<string, number> {
    return (this.freeNow ??= this.share.free());
  }
}
