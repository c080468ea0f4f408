import { createServer, type Server, type Socket } from 'node:net';
import { formatAddress, mustParseAddress, socketAddress } from '../connection/address.js';
import { PlaintextOnTlsError, secureInbound, type ProvenPeer, type SecuredConnection, type TlsCredentials } from '../connection/secure-channel.js';
import type { P2PSocket, Refusal } from '../connection/socket.js';
import { goodbyeAndClose } from '../connection/stream-goodbye.js';
import { P2PListenError, P2PPeerBannedError, P2PPeerNotAllowedError } from '../common/errors.js';
import type { P2PLogger } from '../common/types.js';
import { InboundAdmission, ipOf } from '../trust/inbound-admission.js';
import { GoodbyeReason } from '../wire/control.js';
import type { ResolvedPeerOptions } from './peer-options.js';

/**
 * Inbound connections, from the listening server up to the hello: drops a banned address at
 * once, applies InboundAdmission's rate per IP and pending-handshake slots, runs the server side
 * of TLS (a bad certificate or a plaintext dialer gets a goodbye), and holds each connection's
 * pending slot until its hello exchange ends. Also `admit`, the admission of an authenticated id
 * on any connection (allowedPeers, bans), and `capRefusal`, maxInbound and maxInboundPerIp once an
 * inbound connection is open.
 * Needs from its host: `InboundHost`.
 */
export class Inbound {
  private readonly admission: InboundAdmission;
  /** Inbound connections in their hello exchange, with the TCP socket that holds their pending slot. */
  private readonly handshakes = new Map<P2PSocket, Socket>();
  private server: Server | undefined;

  constructor(
    private readonly host: InboundHost,
    private readonly opts: InboundOptions,
  ) {
    this.admission = new InboundAdmission(opts);
  }

  /** Listens on `listen` (`host:port`); resolves with the address bound, or rejects with P2PListenError. */
  listen(listen: string): Promise<string> {
    const { host, port } = mustParseAddress(listen);
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      // EADDRINUSE, or EADDRNOTAVAIL for an address not on this host: named, typed, and
      // rejected from start(), hence from app.startAllMicroservices().
      const failed = (err: Error) => reject(new P2PListenError(formatAddress(host, port), err));
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        server.on('error', (err) => this.host.logger.error(`listener error: ${err.message}`, { event: 'listener-error' }));
        const bound = server.address();
        resolve(bound && typeof bound === 'object' ? formatAddress(bound.address, bound.port) : listen);
      });
    });
  }

  private accept(raw: Socket): void {
    // A banned address gets nothing, not even a handshake: that is the cheapest refusal.
    if (!this.host.isRunning() || this.host.isBannedIp(ipOf(raw))) {
      raw.destroy();
      return;
    }
    const { refused, evicted } = this.admission.accept(raw);
    if (refused) {
      this.host.countRefused();
      this.host.logger.debug?.(`inbound connection from ${socketAddress(raw)} dropped: ${refused}`, { event: 'refused', address: socketAddress(raw) });
      raw.destroy();
      return;
    }
    if (evicted) {
      this.host.logger.debug?.(`inbound handshake from ${socketAddress(evicted)} dropped: ${this.opts.maxPendingInbound} handshakes pending, it was the oldest`, {
        event: 'refused',
        address: socketAddress(evicted),
      });
      evicted.destroy();
    }
    const credentials = this.host.credentials();
    if (credentials) this.secureAccepted(raw, credentials);
    else this.handshake(raw);
  }

  /** Server side of TLS, then the hello exchange; admission by id and limits comes with it (see `admit`). */
  private secureAccepted(raw: Socket, credentials: TlsCredentials): void {
    const address = socketAddress(raw);
    secureInbound(raw, credentials, this.opts.handshakeTimeoutMs, { address }).then(
      (secured: SecuredConnection) => {
        if (!this.host.isRunning()) return void secured.socket.destroy();
        if (secured.problem) {
          this.host.logger.warn(`refusing inbound connection from ${address}: ${secured.problem.message}`, { event: 'refused', address });
          return goodbyeAndClose(secured.socket, GoodbyeReason.BadCertificate, secured.problem.message, this.opts.closeGraceMs);
        }
        this.handshake(secured.socket, secured.proven, raw);
      },
      (err: Error) => {
        this.host.logger.warn(`inbound connection from ${address} closed: ${err.message}`, { event: 'connection-error', address });
        if (err instanceof PlaintextOnTlsError) {
          goodbyeAndClose(raw, GoodbyeReason.TlsMismatch, 'this node requires TLS', this.opts.closeGraceMs);
        }
      },
    );
  }

  /** `tcp`: the TCP socket under a TLS one, which holds the pending-handshake slot until the hello is done. */
  private handshake(stream: Socket, proven?: ProvenPeer, tcp: Socket = stream): void {
    this.handshakes.set(this.host.wrap(stream, proven), tcp);
  }

  /** Admission once the remote is authenticated, before our hello: `allowedPeers`, then bans (the inbound limits come once it is open: `capRefusal`). */
  readonly admit = (peerId: string, socket: P2PSocket): Refusal | undefined => {
    const ref = socket.ref();
    if (this.opts.allowedPeers && !this.opts.allowedPeers.has(peerId)) {
      return { error: new P2PPeerNotAllowedError(peerId, ref), reason: GoodbyeReason.NotAllowed };
    }
    const banned = this.host.banRefusal(peerId);
    if (banned) return { error: new P2PPeerBannedError(banned, ref), reason: GoodbyeReason.Banned };
    return undefined;
  };

  /**
   * Why an inbound connection whose hello exchange is done cannot stay: maxInbound, then maxInboundPerIp.
   * Checked once it is open, as maxPeers is (src/node/connections.ts), so that the refused dialer is
   * told this node's peers before the goodbye: refused with nothing, a node that knew only this one
   * learned of no other (issue 23: two nodes on one host stayed connected only to each other).
   */
  capRefusal(socket: P2PSocket): string | undefined {
    const open: string[] = [];
    for (const other of this.host.sockets()) if (other !== socket && other.direction === 'inbound' && other.isOpen) open.push(ipOf(other.raw));
    const over = this.admission.refusal(ipOf(socket.raw), open);
    if (over) this.host.countRefused();
    return over;
  }

  /** The connection's hello exchange is over: it no longer holds a pending slot. */
  opened(socket: P2PSocket): void {
    const tcp = this.handshakes.get(socket);
    if (tcp) this.admission.settle(tcp);
    this.handshakes.delete(socket);
  }

  closed(socket: P2PSocket): void {
    this.handshakes.delete(socket);
  }

  /** Drops the handshakes in progress and stops listening; resolves once the server is closed. */
  close(): Promise<void> {
    for (const raw of this.admission.pendingSockets()) raw.destroy();
    const server = this.server;
    this.server = undefined;
    return server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
  }
}

/** What the inbound path needs from the node. */
export interface InboundHost {
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** TLS credentials once started; undefined: plaintext. */
  credentials(): TlsCredentials | undefined;
  /** Why a peer id is banned now, or undefined. */
  banRefusal(peerId: string): string | undefined;
  isBannedIp(ip: string): boolean;
  /** Every connection, in its hello exchange or open (the inbound limits count the open inbound ones). */
  sockets(): Iterable<P2PSocket>;
  /** Makes an accepted stream a P2PSocket, which starts the hello exchange. */
  wrap(stream: Socket, proven?: ProvenPeer): P2PSocket;
  /** An inbound connection was refused by the inbound limits (the node's `refused` counter). */
  countRefused(): void;
}

type InboundOptions = Pick<
  ResolvedPeerOptions,
  'allowedPeers' | 'handshakeTimeoutMs' | 'closeGraceMs' | 'maxPendingInbound' | 'inboundRatePerIp' | 'maxInbound' | 'maxInboundPerIp' | 'perIpLimitsOnLoopback'
>;
