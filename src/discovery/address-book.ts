import { backoffDelay, type BackoffOptions } from './reconnect.js';

/** A peer this node could dial: proven by a handshake, or a peer-exchange candidate. */
export interface KnownPeer {
  /** The peer's id. */
  id: string;
  /** The `host:port` to dial it at: the one it announced itself, or for a candidate the one a peer passed on. */
  address: string;
  /** Failed dials since the last success; spaces out retries. */
  failures: number;
  /** Not dialed before this time (ms since epoch). */
  nextDialAt: number;
  /** Last time this entry was confirmed (connected, or for a candidate, learned). */
  seenAt: number;
  /**
   * true: the id completed a handshake with this node, and the address is the one it
   * announced itself. false: a candidate from peer exchange, a hint until a dial proves it.
   */
  verified: boolean;
}

/**
 * The peers that proved their id to this node, bounded by `maxKnownPeers`, with
 * the address each announced itself. Peer exchange never writes here (see
 * src/discovery/pex-candidates.ts): only a handshake does. When full, a new entry replaces the
 * one with the most failures (oldest first), never one that works.
 */
export class AddressBook {
  /** `reached`: a dial of this node's met the id at `address` (else the address is only what the id announced). */
  private readonly peers = new Map<string, KnownPeer & { connectedAt: number; refusals: number; reached: boolean }>();

  constructor(
    private readonly max: number,
    private readonly backoff: BackoffOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.peers.size;
  }

  get(id: string): KnownPeer | undefined {
    return this.peers.get(id);
  }

  ids(): string[] {
    return [...this.peers.keys()];
  }

  entries(): KnownPeer[] {
    return [...this.peers.values()].map(({ connectedAt: _, refusals: __, reached: ___, ...entry }) => entry);
  }

  /** Addresses of proven peers: no candidate may claim one for another id. */
  addresses(): Set<string> {
    return new Set([...this.peers.values()].map((p) => p.address));
  }

  /**
   * `id` proved itself on a connection and announced `address`: the only way an address gets here.
   * `atAddress`: this node dialed `address` itself and `id` answered there. One node listens at an
   * address, so another id this book had there (a node restarted there with a new key) is forgotten,
   * else it would be dialed there, and fail, every backoff period for good. An address announced on
   * an inbound connection is only a claim, and replaces nothing (else any peer could make this node
   * forget another by announcing its address). Returns the ids forgotten.
   */
  proven(id: string, address: string, atAddress = false): string[] {
    const now = this.now();
    const forgotten: string[] = [];
    for (const other of this.peers.values()) {
      if (atAddress && other.id !== id && other.address === address) forgotten.push(other.id);
    }
    for (const other of forgotten) this.peers.delete(other);
    const existing = this.peers.get(id);
    if (existing) {
      const reached = atAddress || (existing.reached && existing.address === address);
      Object.assign(existing, { address, failures: 0, nextDialAt: 0, seenAt: now, connectedAt: now, reached });
      return forgotten;
    }
    if (this.max <= 0) return forgotten;
    if (this.peers.size >= this.max) {
      const victim = this.worst();
      if (!victim || victim.failures === 0) return forgotten; // full of working peers: keep them
      this.peers.delete(victim.id);
    }
    this.peers.set(id, { id, address, failures: 0, nextDialAt: 0, seenAt: now, verified: true, connectedAt: now, refusals: 0, reached: atAddress });
    return forgotten;
  }

  /**
   * A proven peer from the peer store (src/discovery/peer-store.ts): proven by a connection before a
   * restart, at the address it announced then. Dialable at once, but not "recently connected" (it is in
   * no routing view until it connects again), and it takes no place a peer proven in this run holds. Not
   * reached: the store does not say whether a dial of ours met it there (it may be an address only it announced).
   */
  restore(id: string, address: string, seenAt: number): void {
    if (this.peers.has(id) || this.peers.size >= this.max) return;
    this.peers.set(id, { id, address, failures: 0, nextDialAt: 0, seenAt, verified: true, connectedAt: -Infinity, refusals: 0, reached: false });
  }

  /**
   * Whether a dial of this node's met `id` at the address the book holds. Not yet: the address is the id's own word
   * (announced on a connection it dialed in on), so dialing it is dialing wherever the id chose.
   */
  reached(id: string): boolean {
    return this.peers.get(id)?.reached === true;
  }

  /** `id` is not dialed for `ms` (it refused us: another node with our id is connected to it). */
  holdOff(id: string, ms: number): void {
    const entry = this.peers.get(id);
    if (entry) entry.nextDialAt = Math.max(entry.nextDialAt, this.now() + ms);
  }

  /** Drops `id`: its address proved to be another node's (a dial there met a different id). */
  forget(id: string): void {
    this.peers.delete(id);
  }

  /**
   * The connection to `id` ended: it counts as recently connected from now on.
   * `refusedFull`: `id` completed the handshake (which cleared its failures) and then
   * closed it for being full (at maxPeers). A connection that ended before it outlasted
   * the longest redial delay counts as refused too: a peer that accepts and then says
   * goodbye is otherwise redialed at once. Each refusal in a row doubles the wait before
   * `id` is dialed again; without it, the topology would redial it at once, and a node
   * that needs it dials it in a loop.
   */
  disconnected(id: string, refusedFull = false): void {
    const entry = this.peers.get(id);
    if (!entry) return;
    const now = this.now();
    const brief = now - entry.connectedAt < this.backoff.maxMs;
    entry.connectedAt = now;
    if (!refusedFull && !brief) {
      entry.refusals = 0;
      return;
    }
    entry.nextDialAt = now + backoffDelay(entry.refusals, this.backoff);
    entry.refusals++;
  }

  /** Whether `id` refused our last connection (full, or closed it soon after it opened), and none has lasted since. */
  refusedFull(id: string): boolean {
    return (this.peers.get(id)?.refusals ?? 0) > 0;
  }

  /** Ids connected at some time in the last `ms`. */
  recent(ms: number): string[] {
    const since = this.now() - ms;
    return [...this.peers.values()].filter((p) => p.connectedAt >= since).map((p) => p.id);
  }

  failed(id: string): void {
    const entry = this.peers.get(id);
    if (!entry) return;
    entry.nextDialAt = this.now() + backoffDelay(entry.failures, this.backoff);
    entry.failures++;
  }

  /** The proven peer `id` if it is due for a dial. */
  dueId(id: string): KnownPeer | undefined {
    const entry = this.peers.get(id);
    return entry && entry.nextDialAt <= this.now() ? entry : undefined;
  }

  /** Up to `limit` peers due for a dial, fewest failures first, skipping those `skip` names. */
  due(limit: number, skip: (id: string) => boolean): KnownPeer[] {
    if (limit <= 0) return [];
    const now = this.now();
    return [...this.peers.values()]
      .filter((p) => p.nextDialAt <= now && !skip(p.id))
      .sort((a, b) => a.failures - b.failures || b.seenAt - a.seenAt)
      .slice(0, limit);
  }

  private worst(): KnownPeer | undefined {
    let worst: KnownPeer | undefined;
    for (const p of this.peers.values()) {
      if (!worst || p.failures > worst.failures || (p.failures === worst.failures && p.seenAt < worst.seenAt)) worst = p;
    }
    return worst;
  }
}
