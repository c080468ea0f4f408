/**
 * When peer exchange runs. A full round (every neighbour told, then a fill) every `intervalMs`, as
 * ever; between them, rounds every FORMING_INTERVAL_MS while the network around the node is still
 * forming (`PaceHost.forming`: the node is below its least degree and could dial someone, or a
 * neighbour is owed news). A steady network is told nothing new, so it sends what it sent before:
 * one peer exchange per neighbour and `intervalMs`. Issue 23: 20 nodes started with default
 * settings took 45-58 s to reach their least degree, one peer exchange every 30 s apart.
 */

/** The shortest gap between two rounds: the gap a node keeps between two peer exchanges to one neighbour. */
export const FORMING_INTERVAL_MS = 1000;

/** What the pace needs from discovery. */
export interface PaceHost {
  /** One round: `full`, every neighbour is told; else only those owed news. Then the node dials what it needs. */
  round(full: boolean): void;
  /** Whether a round sooner than the next full one would tell or dial anything. */
  forming(): boolean;
}

export class PexPace {
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private lastFullAt = 0;

  constructor(
    private readonly host: PaceHost,
    private readonly intervalMs: number,
  ) {}

  /** The gap between rounds while forming (no more than the configured interval). */
  get formingMs(): number {
    return Math.min(this.intervalMs, FORMING_INTERVAL_MS);
  }

  start(): void {
    this.lastFullAt = Date.now();
    this.schedule(this.intervalMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Something changed (a connection, a neighbour's peer exchange): the next round comes sooner if it would do anything. */
  hurry(): void {
    if (!this.timer || this.dueAt - Date.now() <= this.formingMs || !this.host.forming()) return;
    this.schedule(this.formingMs);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.dueAt = Date.now() + ms;
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    const now = Date.now();
    // Half a forming gap early is on time: else a round that falls just short of it puts the full one off by a whole gap.
    const full = now - this.lastFullAt >= this.intervalMs - this.formingMs / 2;
    if (full) this.lastFullAt = now;
    this.host.round(full);
    if (!this.timer) return; // stopped meanwhile
    const untilFull = this.lastFullAt + this.intervalMs - now;
    this.schedule(this.host.forming() ? Math.min(this.formingMs, untilFull) : Math.max(this.formingMs, untilFull));
  }
}
