import { backoffDelay, type BackoffOptions } from './reconnect.js';

/** A peer this node could dial: learned from peer exchange or from a connection. */
export interface KnownPeer {
  id: string;
  address: string;
  /** Failed dials since the last success; spaces out retries. */
  failures: number;
  /** Not dialed before this time (ms since epoch). */
  nextDialAt: number;
  /** Last time this entry was confirmed (learned again or connected). */
  seenAt: number;
}

/**
 * The peers a node knows of, bounded by `maxKnownPeers`. When full, a new entry
 * replaces the one with the most failures (oldest first), so a flood of made-up
 * entries cannot push out peers that work.
 */
export class AddressBook {
  private readonly peers = new Map<string, KnownPeer>();

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
    return [...this.peers.values()];
  }

  /** Records where `id` can be dialed. Returns true when the entry is new or its address changed. */
  add(id: string, address: string): boolean {
    const existing = this.peers.get(id);
    if (existing) {
      existing.seenAt = this.now();
      if (existing.address === address) return false;
      existing.address = address;
      existing.failures = 0;
      existing.nextDialAt = 0;
      return true;
    }
    if (this.max <= 0) return false;
    if (this.peers.size >= this.max) {
      const victim = this.worst();
      if (!victim || victim.failures === 0) return false; // full of working peers: keep them
      this.peers.delete(victim.id);
    }
    this.peers.set(id, { id, address, failures: 0, nextDialAt: 0, seenAt: this.now() });
    return true;
  }

  connected(id: string): void {
    const entry = this.peers.get(id);
    if (!entry) return;
    entry.failures = 0;
    entry.nextDialAt = 0;
    entry.seenAt = this.now();
  }

  failed(id: string): void {
    const entry = this.peers.get(id);
    if (!entry) return;
    entry.nextDialAt = this.now() + backoffDelay(entry.failures, this.backoff);
    entry.failures++;
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
