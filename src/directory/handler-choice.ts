/**
 * Which node a request to a pattern goes to, among those that handle it: the cheaper of two
 * drawn at random ("power of two choices"), where a handler's cost is its measured time to
 * answer (an EWMA) times the requests this node has in flight to it, plus one. Two random
 * draws spread load almost as evenly as asking every handler, at the cost of two lookups, and
 * never send a burst to the one that looked cheapest a moment ago (as NATS queue groups spread
 * by chance, and Finagle's and Envoy's least-loaded balancers by P2C).
 *
 * A handler whose request timed out or whose connection failed is not chosen again until a
 * later request to it is answered: after `retryAfterMs` (doubling per failed retry, up to
 * `maxRetryMs`) one request at a time probes it. When every handler is failing, the one whose
 * pause ends first is still chosen rather than none (a guess is no reason to refuse a request):
 * its pause is the shortest left because it failed fewest times in a row, or longest ago, so it
 * is the one the choice trusts most and would probe next anyway. (Not the one that failed first:
 * after many failures its pause is long because it has kept failing.)
 *
 * An error reply is an answer (the handler is alive), but a handler that answers nothing but
 * errors answers fast, so would draw most requests: after CONSECUTIVE_ERRORS error replies in a
 * row it is passed over as a failing one is, until a probe gets a reply that is not an error
 * (Envoy's consecutive-errors outlier ejection).
 */

/**
 * What the choice knows of one handler. A request holds its handler's entry from `start` to its
 * end, so that its reply and end cost no lookup; an entry with requests in flight is never dropped.
 * @internal
 */
export interface HandlerStats {
  /** Smoothed time to the first reply, ms; undefined until one is measured. */
  ewmaMs: number | undefined;
  /** Requests this node has sent it that have not ended. */
  inFlight: number;
  /** Consecutive failures (timeouts, connection failures, CONSECUTIVE_ERRORS error replies or more); 0 when healthy. */
  failures: number;
  /** Consecutive error replies. */
  errors: number;
  /** While failing: not chosen before this time (Date.now()). */
  blockedUntil: number;
  /** A single request is probing it after a failure. */
  probing: boolean;
  /** When it last answered, or when a request was sent it while none was in flight: a handler with requests in flight that has said nothing since is getting slow, or silent. */
  since: number;
  lastUsed: number;
  /** Its record has gone (forget) while requests were in flight: dropped when the last ends. */
  gone: boolean;
}

export interface HandlerChoiceOptions {
  /** First pause before a failed handler is probed again, ms (default 1 000). */
  retryAfterMs?: number;
  /** Longest pause between probes of a handler that keeps failing, ms (default 30 000). */
  maxRetryMs?: number;
  /** Most handlers remembered; idle ones beyond it are forgotten (default 4 096). */
  maxTracked?: number;
  now?: () => number;
  random?: () => number;
}

/** Weight of the newest measurement in the EWMA. */
const ALPHA = 0.3;
/** Error replies in a row after which a handler is passed over until a probe gets another answer. */
export const CONSECUTIVE_ERRORS = 5;

export class HandlerChoice {
  private readonly stats = new Map<string, HandlerStats>();
  private readonly retryAfterMs: number;
  private readonly maxRetryMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(options: HandlerChoiceOptions = {}) {
    this.retryAfterMs = options.retryAfterMs ?? 1_000;
    this.maxRetryMs = options.maxRetryMs ?? 30_000;
    this.maxTracked = options.maxTracked ?? 4_096;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /**
   * One of `candidates` (undefined only when there are none). `avoid` marks handlers to pass
   * over while another will do (one that has gone silent with requests outstanding).
   */
  choose(candidates: readonly string[], avoid: (id: string) => boolean = () => false): string | undefined {
    if (candidates.length <= 1) return candidates[0];
    const now = this.now();
    const usable = candidates.filter((id) => this.usable(id, now) && !avoid(id));
    if (usable.length === 0) return this.nearestRetry(candidates, avoid);
    if (usable.length === 1) return usable[0];
    const a = Math.floor(this.random() * usable.length);
    let b = Math.floor(this.random() * (usable.length - 1));
    if (b >= a) b++;
    const fallback = this.typicalMs(usable);
    return this.cost(usable[b]!, fallback) < this.cost(usable[a]!, fallback) ? usable[b] : usable[a];
  }

  /** A request is on its way to `id` (a failing handler chosen now is being probed); returns its entry, for the request's reply and end. */
  started(id: string, now = this.now()): HandlerStats {
    const s = this.entry(id);
    if (s.inFlight === 0) s.since = now;
    s.inFlight++;
    s.lastUsed = now;
    s.gone = false;
    if (s.failures > 0) s.probing = true;
    return s;
  }

  /** `id` answered (a value, an end or, `error`, a handler error) `ms` after the request was sent: it is alive, and healthy unless its answers are only errors. */
  replied(id: string, ms: number, error = false): void {
    this.repliedOn(this.entry(id), ms, error);
  }

  /** replied(), on the entry started() returned. */
  repliedOn(s: HandlerStats, ms: number, error = false, now = this.now()): void {
    s.ewmaMs = s.ewmaMs === undefined ? ms : s.ewmaMs + ALPHA * (ms - s.ewmaMs);
    s.since = now;
    if (error) {
      s.errors++;
      if (s.errors >= CONSECUTIVE_ERRORS) return this.failedOn(s, now);
    } else s.errors = 0;
    s.failures = 0;
    s.blockedUntil = 0;
    s.probing = false;
  }

  /** A request to `id` timed out or its connection failed: not chosen again until it answers. */
  failed(id: string): void {
    this.failedOn(this.entry(id));
  }

  /**
   * failed(), on the entry started() returned. A failure while it is already paused and not
   * being probed is a request sent before the pause (a frozen handler fails every request it had
   * in flight, one after another): the same outage, so it does not double the pause again.
   */
  failedOn(s: HandlerStats, now = this.now()): void {
    if (s.failures > 0 && !s.probing && now < s.blockedUntil) return;
    s.failures++;
    s.probing = false;
    s.blockedUntil = now + Math.min(this.maxRetryMs, this.retryAfterMs * 2 ** Math.min(s.failures - 1, 20));
  }

  /** A request to `id` has ended, however. */
  ended(id: string): void {
    const s = this.stats.get(id);
    if (s) this.endedOn(id, s);
  }

  /** ended(), on the entry started() returned; `now`: when (it was last used then). */
  endedOn(id: string, s: HandlerStats, now?: number): void {
    s.inFlight = Math.max(0, s.inFlight - 1);
    if (now !== undefined) s.lastUsed = now;
    if (s.inFlight > 0) return;
    if (s.failures > 0) s.probing = false;
    if (s.gone && this.stats.get(id) === s) this.stats.delete(id);
  }

  /** Whether `id` is failing now (for diagnostics). */
  isFailing(id: string): boolean {
    return (this.stats.get(id)?.failures ?? 0) > 0;
  }

  /** Requests in flight to `id`. */
  inFlight(id: string): number {
    return this.stats.get(id)?.inFlight ?? 0;
  }

  /** With requests in flight to `id`: since when it has said nothing (no answer since, and none in flight before); else undefined. */
  quietSince(id: string): number | undefined {
    const s = this.stats.get(id);
    return s && s.inFlight > 0 ? s.since : undefined;
  }

  /** The smoothed time to answer of `id`, ms, if measured. */
  latencyMs(id: string): number | undefined {
    return this.stats.get(id)?.ewmaMs;
  }

  /** When a request last went to `id` or, if later, last ended there (Date.now()); undefined when not tracked. */
  lastUsed(id: string): number | undefined {
    return this.stats.get(id)?.lastUsed;
  }

  /** Forgets a handler (its record has gone: it left the network, or its record expired); at once, or when its last request in flight ends. */
  forget(id: string): void {
    const s = this.stats.get(id);
    if (!s) return;
    if (s.inFlight === 0) this.stats.delete(id);
    else s.gone = true;
  }

  private usable(id: string, now: number): boolean {
    const s = this.stats.get(id);
    if (!s || s.failures === 0) return true;
    return !s.probing && now >= s.blockedUntil;
  }

  /**
   * Every candidate is failing or avoided: the one whose pause ends first (see the class comment:
   * the fewest failures in a row, or the oldest), preferring one not avoided; on a tie, the fewer failures.
   */
  private nearestRetry(candidates: readonly string[], avoid: (id: string) => boolean): string | undefined {
    let best: string | undefined;
    let bestKey = Infinity;
    let bestFailures = Infinity;
    for (const id of candidates) {
      const s = this.stats.get(id);
      const key = (s?.blockedUntil ?? 0) + (avoid(id) ? 1e15 : 0);
      const failures = s?.failures ?? 0;
      if (key < bestKey || (key === bestKey && failures < bestFailures)) {
        best = id;
        bestKey = key;
        bestFailures = failures;
      }
    }
    return best;
  }

  private cost(id: string, fallbackMs: number): number {
    const s = this.stats.get(id);
    return (s?.ewmaMs ?? fallbackMs) * ((s?.inFlight ?? 0) + 1);
  }

  /** What an unmeasured handler is assumed to cost: the mean of the measured ones (1 ms when none is). */
  private typicalMs(ids: readonly string[]): number {
    let sum = 0;
    let n = 0;
    for (const id of ids) {
      const ms = this.stats.get(id)?.ewmaMs;
      if (ms !== undefined) {
        sum += ms;
        n++;
      }
    }
    return n === 0 ? 1 : Math.max(sum / n, 0.01);
  }

  private entry(id: string): HandlerStats {
    let s = this.stats.get(id);
    if (!s) {
      if (this.stats.size >= this.maxTracked) this.evictIdle();
      s = { ewmaMs: undefined, inFlight: 0, failures: 0, errors: 0, blockedUntil: 0, probing: false, lastUsed: this.now(), since: 0, gone: false };
      this.stats.set(id, s);
    }
    return s;
  }

  /** Forgets the idle half of what is tracked, oldest first, so that memory stays bounded. */
  private evictIdle(): void {
    let drop = Math.ceil(this.stats.size / 2);
    for (const [id, s] of this.stats) {
      if (drop <= 0) break;
      if (s.inFlight > 0) continue;
      this.stats.delete(id);
      drop--;
    }
  }
}
