import { MinHeap } from '../common/min-heap.js';

/**
 * The seen-cache of network broadcasts, as a replay window.
 *
 * Every broadcast carries its origin's signed timestamp. A node accepts one only
 * when that timestamp is within `windowMs` in the past and `skewMs` in the future,
 * and after its origin's floor; it remembers the id until the timestamp leaves
 * the window. So a replay is either still remembered (a duplicate) or too old: it
 * is never delivered twice.
 *
 * At most `max` ids are kept. When full, one is forgotten and a floor rises to
 * its timestamp, so that nothing forgotten can come back:
 *   1. the oldest id, if it is older than MIN_WINDOW_MS: the window's floor rises
 *      (a flood shrinks the window, never below MIN_WINDOW_MS);
 *   2. else the oldest id of the origin holding the most ids, the newcomer's own
 *      when it holds as many: that origin's floor rises (an origin that floods
 *      pushes out its own ids, and a rare origin's newcomer is let in: a flood of
 *      a few keys no longer drops the broadcasts of rare and new origins, issue 22);
 *   3. else nothing (no origin holds two ids, and the newcomer's holds none): it is refused.
 * The window's floor starts at the node's start: a restart does not reopen it.
 * See docs/broadcast.md.
 */

/** Below this age an id is forgotten only to make room for its own origin's newer ones, when that origin has any. */
export const MIN_WINDOW_MS = 10_000;
/** Forgotten entries an origin's queue may hold beyond its live ones before it is compacted. */
const QUEUE_SLACK = 64;

export interface SeenEntry {
  readonly id: string;
  readonly origin: string;
  /** The origin's timestamp, ms since the epoch (its clock). */
  readonly timestamp: number;
  /**
   * The origin's signature and the message's Merkle proof as first verified (authOf in
   * src/broadcast/codec.ts: 68 bytes for a batch of one, 32 more a sibling) as a latin1 string; a
   * copy with other bytes is checked on its own. A string, not a Buffer: a small Buffer is a view
   * into an 8 KiB pool slab, and holding it for the window held its whole slab (over 1 KiB of memory
   * outside the heap per id in the soak, issue 22). Set late by the origin, which signs its batch at
   * the end of the run (process.nextTick) after it routed the batch's messages.
   */
  signature: string;
  /** False once the message was dropped (over budget, refused by a validator): its copies are dropped too. */
  accepted: boolean;
  delivered: boolean;
  /** RainTree arcs already forwarded for this id: a node may be handed a second, different arc to cover. */
  arcs: Set<string> | undefined;
  /** Forwarded as gossip already (the origin chose gossip). */
  gossiped: boolean;
  /**
   * Taken without evidence of its origin that this node's neighbours share, and over the budget of such relays
   * (BroadcastBudget.takeUnvouchedRelay): delivered here, never relayed, announced or served by repair.
   */
  kept: boolean;
  /** Forgotten; still in the heap or its origin's queue until they reach it (lazy removal). */
  gone: boolean;
}

/** What the window keeps per origin: its ids in arrival order, and how far its floor has risen. */
interface OriginState {
  origin: string;
  /** Arrival order; slots before `head` are emptied. */
  queue: Array<SeenEntry | undefined>;
  head: number;
  live: number;
  floorMs: number;
  /** In `floors`, to be looked at once its floor leaves the window. */
  queued: boolean;
}

export type WindowVerdict = 'ok' | 'stale' | 'future';

export class ReplayWindow {
  private readonly entries = new Map<string, SeenEntry>();
  /** On timestamp: the next to expire is on top. */
  private readonly heap = new MinHeap<SeenEntry>((e) => e.timestamp);
  private readonly origins = new Map<string, OriginState>();
  /** Origins whose floor was raised, on that floor: kept until it leaves the window, even with no id left. */
  private readonly floors = new MinHeap<{ state: OriginState; floorMs: number }>((f) => f.floorMs);
  /** Nothing at or below it is accepted: the node's start, raised by floods (rule 1). */
  private floorMs: number;
  /** Origins by how many live ids they hold (1 and up), and the most any holds: rule 2's payer in O(1). */
  private readonly byLive = new Map<number, Set<OriginState>>();
  private mostLive = 0;

  constructor(
    private readonly max: number,
    readonly windowMs: number,
    readonly skewMs: number,
    private readonly now: () => number = Date.now,
  ) {
    // What was accepted before a restart is forgotten: refuse it rather than deliver it twice. (Origins stamp
    // whole milliseconds, so the floor leaves the start's own millisecond open: a broadcast made just after
    // a fast start must pass, at the price of a replay window of one millisecond before the restart.)
    this.floorMs = now() - 1;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The window's floor (its start, or what floods raised it to). */
  get floor(): number {
    return this.floorMs;
  }

  /** Whether a timestamp of `origin` is inside the window. */
  check(timestampMs: number, origin: string): WindowVerdict {
    if (timestampMs > this.now() + this.skewMs) return 'future';
    if (timestampMs < this.now() - this.windowMs || timestampMs <= this.floorMs) return 'stale';
    const own = this.origins.get(origin)?.floorMs;
    return own !== undefined && timestampMs <= own ? 'stale' : 'ok';
  }

  get(id: string): SeenEntry | undefined {
    this.expire();
    return this.entries.get(id);
  }

  /** Remembers a new id whose timestamp passed `check`, forgetting one first when full; undefined when it is refused (rule 3). */
  add(id: string, origin: string, timestamp: number, signature: string | Buffer): SeenEntry | undefined {
    this.expire();
    if (this.entries.size >= this.max && !this.makeRoom(origin)) return undefined;
    const entry: SeenEntry = { id, origin, timestamp, signature: typeof signature === 'string' ? signature : signature.toString('latin1'), accepted: true, delivered: false, arcs: undefined, gossiped: false, kept: false, gone: false };
    this.entries.set(id, entry);
    this.heap.push(entry);
    let state = this.origins.get(origin);
    if (!state) this.origins.set(origin, (state = { origin, queue: [], head: 0, live: 0, floorMs: -Infinity, queued: false }));
    state.queue.push(entry);
    this.recount(state, state.live + 1);
    // Forgotten entries stay in the heap until they expire: rebuild it before it outgrows the cache twice over.
    if (this.heap.size > 2 * this.max) this.heap.filter((e) => !e.gone);
    return entry;
  }

  /** Forgets an id that was dropped for a local reason, so that a later copy is judged afresh (not a replay). */
  remove(id: string): void {
    const entry = this.entries.get(id);
    if (entry) this.forget(entry);
  }

  private makeRoom(newcomer: string): boolean {
    const oldest = this.peekLive()!;
    if (oldest.timestamp <= this.now() - MIN_WINDOW_MS) {
      this.forget(oldest);
      this.floorMs = Math.max(this.floorMs, oldest.timestamp);
      return true;
    }
    const mine = this.origins.get(newcomer);
    const heaviest = this.byLive.get(this.mostLive)?.values().next().value;
    // The newcomer's own origin pays when it holds as many as any; else the heaviest, if it holds two or more.
    const state = mine && mine.live > 0 && mine.live >= this.mostLive ? mine : heaviest && this.mostLive >= 2 ? heaviest : mine;
    const own = state && this.oldestOf(state.origin);
    if (!state || !own) return false;
    state.floorMs = Math.max(state.floorMs, own.timestamp);
    if (!state.queued) {
      state.queued = true;
      this.floors.push({ state, floorMs: state.floorMs });
    }
    this.forget(own);
    return true;
  }

  private forget(entry: SeenEntry): void {
    entry.gone = true;
    this.entries.delete(entry.id);
    const state = this.origins.get(entry.origin)!;
    this.recount(state, state.live - 1);
    this.trim(state);
    if (state.live === 0) this.dropIfDone(state);
  }

  /**
   * Lets go of an origin's forgotten entries: those at the front at once (a forgotten entry still
   * holds its arcs and signature), the rest once they outnumber its live ones (amortised O(1) a
   * forget). Forgotten entries used to leave the queue only in oldestOf(), which runs only when the
   * cache is full of recent ids: an origin that broadcast forever kept every entry it ever had
   * (issue 22). Now a queue refers to at most about twice its origin's live entries.
   */
  private trim(state: OriginState): void {
    if (state.live === 0) {
      state.queue = [];
      state.head = 0;
      return;
    }
    const queue = state.queue;
    while (queue[state.head]!.gone) queue[state.head++] = undefined;
    const forgotten = queue.length - state.head - state.live;
    if (forgotten > QUEUE_SLACK && forgotten > state.live) {
      state.queue = queue.slice(state.head).filter((e) => !e!.gone);
      state.head = 0;
    } else if (state.head > QUEUE_SLACK && state.head * 2 > queue.length) {
      state.queue = queue.slice(state.head);
      state.head = 0;
    }
  }

  /** Sets `state.live`, keeping `byLive` and `mostLive` (a live count moves by one at a time). */
  private recount(state: OriginState, live: number): void {
    const was = state.live;
    // The set it leaves, when it was alone there and its new count has none: moved over, not made anew (the usual
    // case, one busy origin, was a Set made and dropped for every id it added and forgot).
    let spare: Set<OriginState> | undefined;
    if (was > 0) {
      const set = this.byLive.get(was)!;
      set.delete(state);
      if (set.size === 0) {
        this.byLive.delete(was);
        spare = set;
        if (this.mostLive === was) this.mostLive = live;
      }
    }
    state.live = live;
    if (live > 0) {
      let set = this.byLive.get(live);
      if (!set) this.byLive.set(live, (set = spare ?? new Set()));
      set.add(state);
      if (live > this.mostLive) this.mostLive = live;
    }
  }

  /** Entries held, the forgotten ones that lazy removal has not reached yet included (tests, diagnostics). */
  get footprint(): { live: number; queued: number; heap: number; origins: number } {
    let queued = 0;
    for (const state of this.origins.values()) queued += state.queue.length - state.head;
    return { live: this.entries.size, queued, heap: this.heap.size, origins: this.origins.size };
  }

  /** An origin with no id left is forgotten once its floor (if raised) is below the window, which then refuses all it would. */
  private dropIfDone(state: OriginState): void {
    if (state.live === 0 && !state.queued) this.origins.delete(state.origin);
  }

  private peekLive(): SeenEntry | undefined {
    let top = this.heap.peek();
    while (top?.gone) {
      this.heap.pop();
      top = this.heap.peek();
    }
    return top;
  }

  private oldestOf(origin: string): SeenEntry | undefined {
    const state = this.origins.get(origin);
    if (!state || state.live === 0) return undefined;
    // trim() keeps the front live.
    return state.queue[state.head]!;
  }

  /** Forgets ids whose timestamps have left the window: a copy would now be refused as stale. */
  private expire(): void {
    const limit = this.now() - this.windowMs;
    for (let top = this.peekLive(); top && top.timestamp < limit; top = this.peekLive()) {
      this.heap.pop();
      this.forget(top);
    }
    for (let f = this.floors.peek(); f && f.floorMs < limit; f = this.floors.peek()) {
      this.floors.pop();
      // Raised again since it was queued: look at it again when that floor leaves the window.
      if (f.state.floorMs >= limit) this.floors.push({ state: f.state, floorMs: f.state.floorMs });
      else {
        f.state.queued = false;
        this.dropIfDone(f.state);
      }
    }
  }
}
