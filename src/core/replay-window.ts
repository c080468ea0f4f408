/**
 * The seen-cache of network broadcasts, as a replay window.
 *
 * Every broadcast carries its origin's signed timestamp. A node accepts one only
 * when that timestamp is within `windowMs` in the past and `skewMs` in the future,
 * and remembers its id until the timestamp leaves the window. So a replay is
 * either still remembered (a duplicate) or too old: it is never delivered twice.
 *
 * At most `max` ids are kept. When full, the id with the oldest timestamp is
 * forgotten and the window's floor rises to that timestamp: anything at or below
 * the floor is then refused as too old. A flood of fresh ids shrinks the window
 * instead of opening a hole in it (see docs/broadcast.md).
 */

export interface SeenEntry {
  readonly id: string;
  /** The origin's timestamp, ms since the epoch (its clock). */
  readonly timestamp: number;
  /** The origin's signature, checked once: a copy with other signature bytes is not the verified message. */
  readonly signature: Buffer;
  /** False once the message was dropped (over budget, refused by a validator): its copies are dropped too. */
  accepted: boolean;
  delivered: boolean;
  /** RainTree arcs already forwarded for this id: a node may be handed a second, different arc to cover. */
  arcs: Set<string> | undefined;
  /** Forwarded as gossip already (a RainTree copy may be followed by a gossip fallback copy). */
  gossiped: boolean;
}

export type WindowVerdict = 'ok' | 'stale' | 'future';

export class ReplayWindow {
  private readonly entries = new Map<string, SeenEntry>();
  /** Min-heap on timestamp: the next to expire, or to be forgotten when full, is on top. */
  private readonly heap: SeenEntry[] = [];
  private floorMs = -Infinity;

  constructor(
    private readonly max: number,
    readonly windowMs: number,
    readonly skewMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** How far back a broadcast may be dated right now (the window, raised by floods). */
  oldestAcceptedMs(): number {
    return Math.max(this.now() - this.windowMs, this.floorMs);
  }

  /** Whether a timestamp is inside the window. */
  check(timestampMs: number): WindowVerdict {
    const now = this.now();
    if (timestampMs > now + this.skewMs) return 'future';
    if (timestampMs <= this.floorMs || timestampMs < now - this.windowMs) return 'stale';
    return 'ok';
  }

  get(id: string): SeenEntry | undefined {
    this.expire();
    return this.entries.get(id);
  }

  /** Remembers a new id whose timestamp passed `check`. */
  add(id: string, timestamp: number, signature: Buffer): SeenEntry {
    this.expire();
    if (this.entries.size >= this.max) {
      const oldest = this.pop()!;
      this.entries.delete(oldest.id);
      this.floorMs = Math.max(this.floorMs, oldest.timestamp);
    }
    const entry: SeenEntry = { id, timestamp, signature, accepted: true, delivered: false, arcs: undefined, gossiped: false };
    this.entries.set(id, entry);
    this.push(entry);
    return entry;
  }

  /** Forgets ids whose timestamps have left the window: a copy of them would now be refused as stale. */
  private expire(): void {
    const limit = this.now() - this.windowMs;
    while (this.heap.length > 0 && this.heap[0]!.timestamp < limit) this.entries.delete(this.pop()!.id);
  }

  private push(entry: SeenEntry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.timestamp <= entry.timestamp) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): SeenEntry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= h.length) break;
      const right = left + 1;
      const child = right < h.length && h[right]!.timestamp < h[left]!.timestamp ? right : left;
      if (h[child]!.timestamp >= last.timestamp) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = last;
    return top;
  }
}
