import { formatAddress, parseAddress } from './address.js';
import { AddressBook, type KnownPeer } from './address-book.js';
import { encodePeerExchange, isUnspecified, parsePeerExchange, type PexEntry } from './peer-exchange.js';
import type { BackoffOptions } from './reconnect.js';
import type { P2PSocket } from './socket.js';
import type { P2PLogger } from './types.js';

/** What discovery needs from the node. */
export interface DiscoveryHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  isRunning(): boolean;
  /** Live connections by peer id. */
  connections(): ReadonlyMap<string, P2PSocket>;
  /** Addresses that are this node (its listen and external address). */
  ownAddresses(): string[];
  outboundCount(): number;
  connect(address: string): Promise<unknown>;
  /** Whether an id may be learned and dialed at all (allowedPeers). */
  isAllowed(id: string): boolean;
  /** Whether an id is banned now (not dialed until the ban ends). */
  isBanned(id: string): boolean;
}

export interface DiscoveryOptions {
  enabled: boolean;
  intervalMs: number;
  maxKnownPeers: number;
  maxOutbound: number;
  backoff: BackoffOptions;
}

/**
 * Peer exchange and the address book (control type 5): tells each neighbour
 * where its other neighbours can be dialed, learns the same from them (bounded,
 * rate-limited), and dials known peers until the node has maxOutbound outbound
 * connections. The addresses feed the RainTree view too.
 */
export class Discovery {
  readonly book: AddressBook;
  private readonly dialing = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: DiscoveryHost,
    private readonly options: DiscoveryOptions,
  ) {
    this.book = new AddressBook(options.maxKnownPeers, options.backoff);
  }

  start(): void {
    if (!this.options.enabled) return;
    this.timer = setInterval(() => this.exchange(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Peers learned from peer exchange and past connections (the address book). */
  knownPeers(): KnownPeer[] {
    return this.book.entries();
  }

  /** A new connection: remember where the peer can be dialed, and tell it the peers we know. */
  onConnected(socket: P2PSocket): void {
    const address = dialableAddress(socket);
    if (address) {
      this.book.add(socket.peerId!, address);
      this.book.connected(socket.peerId!);
    }
    if (this.options.enabled) this.send(socket);
  }

  /** A peer-exchange body from a neighbour: judged, bounded, then learned from. Never a protocol error. */
  onMessage(socket: P2PSocket, body: Buffer): void {
    if (!this.options.enabled) return;
    const now = Date.now();
    const gap = this.gap();
    if (now - socket.lastPeerExchangeAt < gap) {
      this.host.logger.warn(`peer exchange from ${socket.peerId} at ${socket.remoteAddress} ignored: more than one per ${gap} ms`);
      return;
    }
    socket.lastPeerExchangeAt = now;
    const own = new Set(this.host.ownAddresses());
    const parsed = parsePeerExchange(body, (entry) => entry.id === this.host.selfId || own.has(entry.address));
    if (parsed.problems.length > 0) {
      this.host.logger.warn(
        `peer exchange from ${socket.peerId} at ${socket.remoteAddress}: ignored ${parsed.ignored} entr${parsed.ignored === 1 ? 'y' : 'ies'} (${parsed.problems.slice(0, 3).join('; ')})`,
      );
    }
    for (const { id, address } of parsed.entries) if (this.host.isAllowed(id)) this.book.add(id, address);
    this.fill();
  }

  /** Dials known peers until this node has maxOutbound outbound connections. */
  fill(): void {
    if (!this.host.isRunning() || !this.options.enabled) return;
    const need = this.options.maxOutbound - this.host.outboundCount();
    const connections = this.host.connections();
    const due = this.book.due(need, (id) => id === this.host.selfId || connections.has(id) || this.dialing.has(id) || this.host.isBanned(id));
    for (const known of due) {
      this.dialing.add(known.id);
      this.host
        .connect(`${known.id}@${known.address}`)
        .then(
          () => this.book.connected(known.id),
          (err: Error) => {
            this.book.failed(known.id);
            this.host.logger.debug?.(`could not dial known peer ${known.id} at ${known.address}: ${err.message}`);
          },
        )
        .finally(() => this.dialing.delete(known.id));
    }
  }

  /** A peer reads at most one peer exchange per this gap (ms) from each neighbour; we send no more often. */
  private gap(): number {
    return Math.min(1000, this.options.intervalMs / 2);
  }

  private send(to: P2PSocket): void {
    // The one sent on connect may be followed at once by the interval's: the receiver would drop it with a warning.
    const now = Date.now();
    if (now - to.lastPeerExchangeSentAt < this.gap()) return;
    const entries: PexEntry[] = [];
    for (const [id, socket] of this.host.connections()) {
      if (socket === to) continue;
      const address = dialableAddress(socket);
      if (address) entries.push({ id, address });
    }
    if (entries.length === 0) return;
    to.lastPeerExchangeSentAt = now;
    to.sendControl(encodePeerExchange(entries));
  }

  /** Every intervalMs: share what we know with every peer, then top up outbound connections. */
  private exchange(): void {
    if (!this.host.isRunning()) return;
    for (const socket of this.host.connections().values()) this.send(socket);
    this.fill();
  }
}

/** Where a connected peer can be dialed: the address it advertised, with an "any interface" host replaced by its IP. */
function dialableAddress(socket: P2PSocket): string | undefined {
  const advertised = socket.remote?.listenAddress;
  if (!advertised) return undefined;
  const parsed = parseAddress(advertised);
  if (typeof parsed === 'string' || parsed.port === 0) return undefined;
  if (!isUnspecified(parsed.host)) return formatAddress(parsed.host, parsed.port);
  const ip = socket.raw.remoteAddress?.replace(/^::ffff:/, '');
  return ip ? formatAddress(ip, parsed.port) : undefined;
}
