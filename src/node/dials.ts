import type { Socket } from 'node:net';
import { mustParseAddress, type PeerAddress } from '../connection/address.js';
import { openChannel, type DialContext } from '../connection/dialer.js';
import type { ProvenPeer, TlsCredentials } from '../connection/secure-channel.js';
import type { P2PSocket } from '../connection/socket.js';
import { goodbyeAndClose } from '../connection/stream-goodbye.js';
import { P2PDialError, P2PNotRunningError, P2PPeerBannedError, P2PSelfConnectionError } from '../common/errors.js';
import type { P2PLogger } from '../common/types.js';
import type { DialOutcome } from '../discovery/reconnect.js';
import { GoodbyeReason } from '../wire/control.js';
import { isLoopback } from '../trust/inbound-admission.js';
import type { ResolvedPeerOptions } from './peer-options.js';

/**
 * Outbound dials: whether one may start (running, a valid address, not connected or self or
 * banned, under maxOutbound), the channel (TCP, then TLS), and each dial's promise, settled when
 * its connection opens or closes. Counts the outbound connections, dials in flight included.
 * Needs from its host: `DialHost`.
 */
export class Dials {
  /** Streams still connecting or in their TLS handshake. */
  private readonly inFlight = new Set<Socket>();
  /** Dialed connections in their hello exchange, with their dial's promise. */
  private readonly settling = new Map<P2PSocket, Settled>();

  constructor(
    private readonly host: DialHost,
    private readonly opts: DialOptions,
  ) {}

  /** Dials `host:port` or `<peerId>@host:port`; `opened` is false when the peer was connected already. */
  dial(address: string): Promise<DialOutcome> {
    if (!this.host.isRunning()) return Promise.reject(this.host.notRunning());
    let target: PeerAddress;
    try {
      target = mustParseAddress(address);
    } catch (err) {
      return Promise.reject(new P2PDialError((err as Error).message, { address }));
    }
    if (target.peerId) {
      const existing = this.host.connections().get(target.peerId);
      if (existing) return Promise.resolve({ info: existing.info(), opened: false });
      if (target.peerId === this.host.selfId) return Promise.reject(new P2PSelfConnectionError('cannot dial self', { address }));
      const banned = this.host.banRefusal(target.peerId);
      if (banned) return Promise.reject(new P2PPeerBannedError(banned, { address, peerId: target.peerId }));
    }
    if (this.outboundCount() >= this.opts.maxOutbound) {
      return Promise.reject(new P2PDialError(`maxOutbound ${this.opts.maxOutbound} reached`, { address, peerId: target.peerId }));
    }
    return openChannel(target, this.context(target)).then(
      (channel) =>
        new Promise<DialOutcome>((resolve, reject) => {
          this.settling.set(this.host.wrap(channel.socket, target.peerId, channel.proven), { resolve, reject });
        }),
    );
  }

  /** What openChannel needs from the node, read at each dial (the credentials exist once started). */
  private context(target: PeerAddress): DialContext {
    return {
      localAddress: this.localAddressFor(target),
      dialTimeoutMs: this.opts.dialTimeoutMs,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      credentials: this.host.credentials(),
      inFlight: this.inFlight,
      isRunning: () => this.host.isRunning(),
      refuseCertificate: (socket, problem, ref) => {
        this.host.logger.warn(`dial to ${ref.address} refused: ${problem.message}`, { event: 'refused', peerId: ref.peerId, address: ref.address });
        goodbyeAndClose(socket, GoodbyeReason.BadCertificate, problem.message, this.opts.closeGraceMs);
      },
    };
  }

  /**
   * With perIpLimitsOnLoopback, a node listening on one loopback address dials loopback peers from it, as a node on a
   * host of its own would: its peers then tell it apart by IP and netgroup (127.1.0.0/16 from 127.2.0.0/16), as those
   * limits mean to on loopback. Else the system's choice (127.0.0.1 for every node of this host).
   */
  private localAddressFor(target: PeerAddress): string | undefined {
    if (!this.opts.perIpLimitsOnLoopback || !this.opts.listen || !isLoopback(target.host)) return undefined;
    const { host } = mustParseAddress(this.opts.listen);
    return isLoopback(host) ? host : undefined;
  }

  /** A connection's hello exchange is done: its dial, if it was dialed, resolves with `outcome`. */
  opened(socket: P2PSocket, outcome: DialOutcome): void {
    this.settling.get(socket)?.resolve(outcome);
    this.settling.delete(socket);
  }

  /** A connection closed: its dial, if it was dialed and not yet settled, fails. */
  closed(socket: P2PSocket, reason: string, error: Error | undefined): void {
    const dial = this.settling.get(socket);
    if (!dial) return;
    this.settling.delete(socket);
    dial.reject(error ?? new P2PDialError(`connection closed: ${reason}`, socket.ref()));
  }

  /** Outbound connections, dials in progress included (maxOutbound). */
  outboundCount(): number {
    let n = this.inFlight.size;
    for (const socket of this.host.sockets()) if (socket.direction === 'outbound') n++;
    return n;
  }

  /** Outbound dials not yet open: they hold a place under maxPeers, so inbound ones cannot take it meanwhile. */
  pendingOutbound(): number {
    let open = 0;
    for (const socket of this.host.connections().values()) if (socket.direction === 'outbound') open++;
    return this.outboundCount() - open;
  }

  /** The node is closing: every dial still connecting fails. */
  stop(): void {
    for (const raw of this.inFlight) raw.destroy(new P2PNotRunningError('node closed while dialing'));
    this.inFlight.clear();
  }
}

/** What dialing needs from the node. */
export interface DialHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Why the node cannot dial now (it is not running). */
  notRunning(): Error;
  /** TLS credentials once started; undefined: plaintext. */
  credentials(): TlsCredentials | undefined;
  /** Why a peer id is banned now, or undefined. */
  banRefusal(peerId: string): string | undefined;
  /** Every connection, in its hello exchange or open. */
  sockets(): Iterable<P2PSocket>;
  /** The open connections, one per peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** Makes a dialed stream a P2PSocket, which starts the hello exchange. */
  wrap(stream: Socket, expectedPeerId?: string, proven?: ProvenPeer): P2PSocket;
}

type DialOptions = Pick<ResolvedPeerOptions, 'maxOutbound' | 'dialTimeoutMs' | 'handshakeTimeoutMs' | 'closeGraceMs' | 'listen' | 'perIpLimitsOnLoopback'>;

type Settled = { resolve: (outcome: DialOutcome) => void; reject: (err: Error) => void };
