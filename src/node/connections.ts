import type { P2PSocket } from '../connection/socket.js';
import { P2PIdentityConflictError } from '../common/errors.js';
import type { P2PLogger, PeerEvent } from '../common/types.js';
import type { DialOutcome } from '../discovery/reconnect.js';
import { belowFloorShare, MIN_DEGREE, type InboundStanding } from '../discovery/discovery.js';
import { ipOf, thirdRefusal } from '../trust/inbound-admission.js';
import { GoodbyeReason } from '../wire/control.js';
import type { ResolvedPeerOptions } from './peer-options.js';

/**
 * The connection index: every connection from its wrapping to its close (`all`), and the open
 * ones, one per peer id (`byId`). Decides what a connection whose hello exchange is done becomes:
 * the peer's connection, a duplicate, or refused (maxInbound, maxInboundPerIp, maxPeers, maxInboundPerThird); forgets a closed one and says so
 * (the `peer` event); after a plaintext simultaneous dial that both ends refused, has the lower
 * id redial. Needs from its host: `ConnectionsHost`.
 */
export class Connections {
  private readonly every = new Set<P2PSocket>();
  private readonly open = new Map<string, P2PSocket>();
  /** Plaintext: when a newcomer claiming a connected peer's id was last refused, by id. */
  private readonly refusedNewcomers = new Map<string, number>();
  /** When a peer id met here from two addresses was last warned of, by id (bounded). */
  private readonly conflictsNoted = new Map<string, number>();
  /** When each configured peer last took the place of another connection (makeRoom), by id (bounded). */
  private readonly evictedFor = new Map<string, number>();

  constructor(
    private readonly host: ConnectionsHost,
    private readonly opts: ConnectionsOptions,
  ) {}

  /** Every connection, in its hello exchange or open. */
  get all(): ReadonlySet<P2PSocket> {
    return this.every;
  }

  /** A new connection, in its hello exchange. */
  add(socket: P2PSocket): void {
    this.every.add(socket);
  }

  /** The open connections, one per peer id. */
  get byId(): ReadonlyMap<string, P2PSocket> {
    return this.open;
  }

  /** Where a connected peer is, and its IP when it dialed us (a ban on an inbound peer covers its IP too). */
  whereIs(peerId: string): { address?: string; inboundIp?: string } {
    const socket = this.open.get(peerId);
    const inboundIp = socket?.direction === 'inbound' ? ipOf(socket.raw) : undefined;
    return { address: socket?.remoteAddress, inboundIp };
  }

  /** Closes the connection to a peer the topology no longer needs, if there is one. `more`: said in the log line only, not to the peer. */
  release(peerId: string, why: string, more?: string): void {
    const socket = this.open.get(peerId);
    if (!socket) return;
    this.host.logger.debug?.(`closing the connection to ${peerId} at ${socket.remoteAddress}: ${why}${more ? ` (${more})` : ''}`, { event: 'closing', peerId, address: socket.remoteAddress });
    // Drained: a network broadcast the peer sent before it reads the goodbye is delivered, not lost (it counts us as having it, so it would not announce it to us either).
    void socket.close(GoodbyeReason.Normal, why, undefined, true);
  }

  /**
   * A connection's hello exchange is done. Returns what its dial, if it was dialed, resolves
   * with; undefined when it is refused for a cap (only inbound ones are).
   */
  opened(socket: P2PSocket): DialOutcome | undefined {
    const remoteId = socket.peerId!;
    const existing = this.open.get(remoteId);
    let refused: string | undefined;
    if (existing && existing !== socket && existing.isOpen && isIdConflict(existing, socket)) {
      // Two nodes with one key: keep the first, refuse the newcomer with a goodbye that names where the first is
      // (its dialer reports it once and holds off, instead of redialing into the duplicate check in a loop).
      const kept = whereIs(existing);
      this.noteConflict(remoteId, kept, whereIs(socket));
      void socket.close(GoodbyeReason.IdConflict, `another node with this peer id is connected already from ${kept}`);
      return undefined;
    }
    if (existing && existing !== socket && existing.isOpen) {
      // Two connections to one peer. Same direction: the newer is a duplicate.
      // Opposite directions (a simultaneous dial): both ends keep the one dialed by the lower id.
      // Without TLS an id is only claimed, never proven: a newcomer claiming a live peer's id is refused, never let in.
      const selfId = this.host.selfId;
      const dialerOfNew = socket.direction === 'outbound' ? selfId : remoteId;
      const keepNew = this.opts.tls && existing.direction !== socket.direction && dialerOfNew === (selfId < remoteId ? selfId : remoteId);
      if (!keepNew) {
        this.host.logger.debug?.(`duplicate connection to ${remoteId} from ${socket.remoteAddress} closed`, { event: 'refused', peerId: remoteId, address: socket.remoteAddress });
        if (!this.opts.tls) this.refusedNewcomers.set(remoteId, Date.now());
        void socket.close(GoodbyeReason.Duplicate, 'already connected');
        return { info: existing.info(), opened: false };
      }
      void existing.close(GoodbyeReason.Duplicate, 'replaced by the connection dialed by the lower peer id');
      this.open.set(remoteId, socket);
    } else if (existing && existing !== socket) {
      // The old connection is closing already: the new one simply takes its place.
      this.open.set(remoteId, socket);
    } else if (socket.direction === 'inbound' && (refused = this.host.capRefusal(socket) ?? (this.host.isConfigured(remoteId) ? undefined : this.refusal(remoteId, socket)))) {
      // Full (for any cap): tell the dialer who else it can dial (it may know nobody else), keep it as a candidate, then close.
      this.host.logger.debug?.(`refusing ${remoteId} at ${socket.remoteAddress}: ${refused}`, { event: 'refused', peerId: remoteId, address: socket.remoteAddress });
      this.host.onRefused(socket);
      void socket.close(GoodbyeReason.InboundLimit, `${refused}; dial the peers just sent`);
      return undefined;
    } else {
      this.open.set(remoteId, socket);
      this.host.logger.log(`connected to ${remoteId} at ${socket.remoteAddress} (${socket.direction})`, {
        event: 'connected',
        peerId: remoteId,
        address: socket.remoteAddress,
      });
      this.host.emit({ type: 'connected', peer: socket.info() });
      this.host.onConnected(socket);
      if (this.host.isConfigured(remoteId)) this.makeRoom(remoteId);
      return { info: socket.info(), opened: true };
    }
    return { info: socket.info(), opened: false };
  }

  /**
   * A configured peer is never refused at maxPeers (it is the node's anchor against an eclipse), and its redial does not
   * wait for a free place: one connected past the bound takes the place of connections not configured, so that the node
   * comes back to maxPeers. First inbound ones, the least of this node's choosing and the newest, else ones peer exchange
   * dialed for the topology, the newest; never one with work under way (a request awaiting its reply, a handler running
   * for the peer), nor one the application's requests keep. They are closed with goodbye 1 (normal), not 5: goodbye 5
   * tells a dialer its requests never ran there, and these connections may have run some. At most one such eviction
   * per configured peer each reconnectMaxMs: a configured peer that leaves and comes back in a loop (or dials in
   * again and again) takes one place each time, not one per cycle; past that the node stays over the bound until
   * peer exchange lets a redundant connection go. With nothing to close, the node stays past the bound.
   * `configured`: its id (a `host:port` in the config is known by id only once its dial resolves: the node calls this then).
   */
  makeRoom(configured: string): void {
    const over = () => {
      let live = 0;
      for (const socket of this.open.values()) if (socket.isOpen) live++;
      return live - this.opts.maxPeers;
    };
    if (over() <= 0) return;
    const now = Date.now();
    if (now - (this.evictedFor.get(configured) ?? -Infinity) < this.opts.reconnectMaxMs) return;
    if (this.evictedFor.size >= MAX_EVICTIONS_NOTED) this.evictedFor.delete(this.evictedFor.keys().next().value!);
    this.evictedFor.set(configured, now);
    const rank: Record<InboundStanding, number> = { unchosen: 0, vouched: 1, own: 2 };
    for (let excess = over(); excess > 0; excess--) {
      let inbound: P2PSocket | undefined;
      let inboundRank = Infinity;
      let outbound: P2PSocket | undefined;
      for (const [id, socket] of this.open) {
        if (id === configured || !socket.isOpen || socket.busy || this.host.isConfigured(id) || this.host.inUse(id)) continue;
        if (socket.direction === 'inbound') {
          const r = rank[this.host.inboundStanding(id)];
          if (r < inboundRank || (r === inboundRank && socket.connectedAt >= inbound!.connectedAt)) [inbound, inboundRank] = [socket, r];
        } else if (this.host.dialedForTopology(id) && (!outbound || socket.connectedAt >= outbound.connectedAt)) {
          outbound = socket;
        }
      }
      const chosen = inbound ?? outbound;
      if (!chosen) return;
      this.release(chosen.peerId!, `at maxPeers ${this.opts.maxPeers}: a configured peer takes this place`, `for configured peer ${configured}`);
    }
  }

  /**
   * Why an authenticated inbound peer cannot take a place now: maxPeers, counting the places held by
   * this node's outbound dials in flight (maxInbound, checked before, keeps maxPeers − maxInbound
   * places for outbound ones: 10 by default). Past its least degree, also when it is not the member
   * this node's topology would choose in its third of the ring among the ids it learned of from others
   * (`inboundStanding`; src/discovery/provenance.ts) and either the
   * connections not of this node's choosing
   * would pass a third of its connections (twice as many of its own choosing: outbound ones to ids it
   * learned of from others, and inbound ones it would have dialed), or maxInboundPerThird of them already come from the peer's third
   * (src/trust/inbound-admission.ts); both only while it knows a peer it could dial instead
   * (`hasOwnChoice`: a hub its clients dial is not held to them) or, with an outbound connection of its own, holds its
   * least degree without them. Below its
   * least degree, at most a third of it (belowFloorShare), while it is dialing a peer of its own. Ids ground into a node's thirds that dial in (issue 22, eclipse)
   * get at most that; the node dials more of its own choosing (src/discovery/discovery.ts), which
   * makes room again. Configured peers are never refused and count as its choice; a peer that one of
   * its outbound neighbours names in its peer exchange ('vouched') is neither refused nor counted.
   * Whatever its standing, a peer whose netgroup holds its share already (src/trust/netgroup.ts) is refused too.
   * Only admission holds the share: no established connection is closed for it.
   */
  private refusal(remoteId: string, socket: P2PSocket): string | undefined {
    if (this.open.size + this.host.pendingOutbound() >= this.opts.maxPeers) return `at maxPeers ${this.opts.maxPeers}`;
    // maxInboundPerThird at maxInbound or above turns both limits off (a hub its clients dial).
    if (this.opts.maxInboundPerThird >= this.opts.maxInbound) return undefined;
    // Whatever its standing: ids ground into its thirds that join through its seed are vouched for and members like any
    // other (16 of 28, review of issue 22); what they share is where they run.
    const crowded = this.host.netgroupRefusal(ipOf(socket.raw));
    if (crowded) return crowded;
    const floor = Math.min(MIN_DEGREE, this.opts.maxPeers);
    const below = this.open.size < floor;
    if (this.host.inboundStanding(remoteId) !== 'unchosen') return undefined;
    const unchosen: string[] = [];
    // Open ones only: a dial in flight may fail, and the bound must hold when it does. Vouched-for inbound ones count on neither side.
    let own = 0;
    let ownOutbound = 0;
    for (const [id, socket] of this.open) {
      const standing = socket.direction === 'outbound' ? this.host.outboundStanding(id) : this.host.inboundStanding(id);
      if (standing === 'own') own++;
      else if (standing === 'unchosen') unchosen.push(id);
      if (standing === 'own' && socket.direction === 'outbound') ownOutbound++;
    }
    // Without a peer of its own to dial (a hub its clients dial: no outbound connection), refusing protects nothing; but a
    // node with dials of its own that holds its least degree without any connection not of its choosing keeps the share:
    // connected to all 12 honest nodes it knew, V took all 16 ground ids, 16 of 28 (review of issue 22). Below its least
    // degree, only while it is dialing a peer of its own (after a restart it dials all it stored at once, and while those
    // dials were in flight every ground id was taken); not for peers it merely knows, which may be gone.
    if (below ? !this.host.dialingOwnChoice() : !this.host.hasOwnChoice() && (ownOutbound === 0 || this.open.size - unchosen.length < floor)) return undefined;
    // Below its least degree, at most a third of it: taken all, 3 ground ids that dialed in first stayed beside 5 peers of
    // its own, and one more let in past it for each id it dialed on its own word (0.44 and 0.5 after a restart).
    if (below) return unchosen.length + 1 > belowFloorShare(floor) ? `below its least degree ${floor}, connections not of this node's choosing at a third of it (${unchosen.length})` : undefined;
    if (2 * (unchosen.length + 1) > own) return `inbound connections not of this node's choosing at a third of its connections (${unchosen.length} of ${unchosen.length + own})`;
    return thirdRefusal(this.host.selfId, remoteId, unchosen, this.opts.maxInboundPerThird);
  }

  /** One warning per shared id and `idConflictRetryMs`: the newcomer holds off that long, then may try again. */
  private noteConflict(id: string, kept: string, refused: string): void {
    const now = Date.now();
    if (now - (this.conflictsNoted.get(id) ?? -Infinity) < this.opts.idConflictRetryMs) return;
    if (this.conflictsNoted.size >= MAX_CONFLICTS_NOTED) this.conflictsNoted.delete(this.conflictsNoted.keys().next().value!);
    this.conflictsNoted.set(id, now);
    this.host.logger.warn(`peer id ${id} is used by two nodes: one at ${kept} is connected, another at ${refused} was refused (goodbye 13); two nodes share one key`, {
      event: 'id-conflict',
      peerId: id,
      address: refused,
    });
  }

  /** A connection closed: forgets it and, when it was a peer's connection, says so. */
  closed(socket: P2PSocket, reason: string, error: Error | undefined, undeliveredBytes: number): void {
    this.every.delete(socket);
    const id = socket.peerId;
    if (!id || this.open.get(id) !== socket) return;
    this.open.delete(id);
    if (undeliveredBytes > 0) {
      this.host.logger.warn(`${undeliveredBytes} queued bytes to ${id} at ${socket.remoteAddress} were not delivered: ${reason}`, {
        event: 'undelivered',
        peerId: id,
        address: socket.remoteAddress,
      });
    }
    this.host.logger.log(`disconnected from ${id} at ${socket.remoteAddress}: ${reason}`, { event: 'disconnected', peerId: id, address: socket.remoteAddress });
    this.host.emit({ type: 'disconnected', peer: socket.info(), reason, error, undeliveredBytes });
    if (!this.host.isRunning()) return;
    this.redialAfterMutualRefusal(socket, id);
    const refusedFull = socket.direction === 'outbound' && socket.goodbyeReceived === GoodbyeReason.InboundLimit;
    this.host.onDisconnected(id, refusedFull);
    // After the redials onDisconnected planned: the conflict's hold-off replaces them.
    if (error instanceof P2PIdentityConflictError) this.host.onIdentityConflict(id, error);
  }

  /**
   * Plaintext, simultaneous dial: each end kept the connection whose hello it read first
   * and refused the other, so both closed. The lower id redials at once (the higher waits),
   * so that exactly one connection results without ever trusting an unproven newcomer.
   */
  private redialAfterMutualRefusal(socket: P2PSocket, id: string): void {
    const refusedAt = this.refusedNewcomers.get(id);
    this.refusedNewcomers.delete(id);
    const address = socket.remote?.listenAddress;
    if (this.opts.tls || refusedAt === undefined || Date.now() - refusedAt > this.opts.handshakeTimeoutMs) return;
    if (socket.goodbyeReceived !== GoodbyeReason.Duplicate || this.host.selfId > id || !address) return;
    this.host.connect(`${id}@${address}`).catch((err: Error) => this.host.logger.debug?.(`redial of ${id} after a simultaneous dial failed: ${err.message}`, { event: 'dial-failed', peerId: id, address }),
    );
  }
}

/** What the connection index needs from the node. */
export interface ConnectionsHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Outbound dials not yet open: they hold a place under maxPeers. */
  pendingOutbound(): number;
  /**
   * How an inbound peer counts toward the share of inbound connections not of this node's choosing: 'own' (configured, or
   * the member its topology would choose in its third), 'vouched' (an outbound neighbour names it: counted on neither side)
   * or 'unchosen'. A connected peer keeps the best standing it had while connected.
   */
  inboundStanding(id: string): InboundStanding;
  /** How an outbound peer counts toward that share: 'own', or 'unchosen' when this node knows it only by its own word. */
  outboundStanding(id: string): InboundStanding;
  /** Whether this node knows a peer it could dial instead of taking one more inbound connection. */
  hasOwnChoice(): boolean;
  /** Whether it is dialing a peer it learned of from others (below its least degree, its choice). */
  dialingOwnChoice(): boolean;
  /** Why one more connection from `ip` would pass its netgroup's share of this node's connections (src/trust/netgroup.ts). */
  netgroupRefusal(ip: string): string | undefined;
  /** Whether a peer id is a configured (persistent) peer: never refused at maxPeers (it takes the place of another). */
  isConfigured(peerId: string): boolean;
  /** Whether peer exchange dialed the connection to `peerId` for the topology (it may let it go again). */
  dialedForTopology(peerId: string): boolean;
  /** Whether the application's requests or a publisher's fanout keep the connection to `peerId`. */
  inUse(peerId: string): boolean;
  /** Why an open inbound connection cannot stay for maxInbound or maxInboundPerIp (src/node/inbound.ts), which hold for every peer. */
  capRefusal(socket: P2PSocket): string | undefined;
  connect(address: string): Promise<unknown>;
  /** Every connect and disconnect (the node's `peer` event). */
  emit(event: PeerEvent): void;
  /** A connection became the peer's. */
  onConnected(socket: P2PSocket): void;
  /** An inbound connection is refused for a cap (it is told who else to dial before it closes). */
  onRefused(socket: P2PSocket): void;
  /** The peer's connection closed while running; `refusedFull`: the peer closed our dial because it was full. */
  onDisconnected(peerId: string, refusedFull: boolean): void;
  /** `peerId` refused our connection: another node with our id is connected to it (goodbye 13). */
  onIdentityConflict(peerId: string, error: P2PIdentityConflictError): void;
}

const MAX_CONFLICTS_NOTED = 256;
/** Configured peers whose last eviction is remembered (one entry each; configured peers are few). */
const MAX_EVICTIONS_NOTED = 256;

/**
 * Two inbound connections that prove one id, from different IPs or announcing different listen
 * addresses: two processes with one key, not one node's duplicate (which comes from its one
 * address). Only inbound pairs: this node's own dials may reach one node by two addresses.
 */
function isIdConflict(existing: P2PSocket, socket: P2PSocket): boolean {
  if (existing.direction !== 'inbound' || socket.direction !== 'inbound') return false;
  if (existing.remote?.listenAddress && socket.remote?.listenAddress) return whereIs(existing) !== whereIs(socket);
  return ipOf(existing.raw) !== ipOf(socket.raw);
}

/** Where a peer's node is: the address it announces (an "any interface" host as the IP it came from), else the socket's. */
function whereIs(socket: P2PSocket): string {
  const listen = socket.remote?.listenAddress;
  if (!listen) return socket.remoteAddress;
  const port = /:(\d+)$/.exec(listen)?.[1];
  return /^(0\.0\.0\.0|\[::\]):/.test(listen) && port ? `${ipOf(socket.raw)}:${port}` : listen;
}

type ConnectionsOptions = Pick<ResolvedPeerOptions, 'tls' | 'maxPeers' | 'maxInbound' | 'maxInboundPerThird' | 'handshakeTimeoutMs' | 'idConflictRetryMs' | 'reconnectMaxMs'>;
