import { P2PIdentityConflictError, P2PNotRunningError, P2PSelfConnectionError } from '../common/errors.js';
import type { P2PLogger, PeerInfo } from '../common/types.js';

/** What a dial ended with: the peer, and whether this dial opened the connection (false: one was open already, or it won a duplicate). */
export interface DialOutcome {
  info: PeerInfo;
  opened: boolean;
}

export interface BackoffOptions {
  /** First retry delay, ms; doubles per failed attempt. */
  baseMs: number;
  /** Ceiling of the delay, ms. */
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with
 * "equal jitter" (half fixed, half random) so that peers that lost each other
 * at the same moment do not redial in lockstep.
 */
export function backoffDelay(attempt: number, { baseMs, maxMs }: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

interface Entry {
  /** As configured: `host:port` or `<peerId>@host:port`. */
  address: string;
  /** The id the peer proved on the last successful dial (or the configured one). */
  peerId?: string;
  attempt: number;
  /** Times in a row a connection to the peer ended as a refusal: full (maxPeers), or within `maxMs` of opening. */
  refusals: number;
  /** When this entry's last dial opened a connection (ms since epoch). */
  openedAt?: number;
  timer?: NodeJS.Timeout;
  dialing: boolean;
}

export interface Redialer {
  /** Dials; `opened` is false when the peer was connected already (say it dialed us, and this dial was the duplicate). */
  dial(address: string): Promise<DialOutcome>;
  isConnected(peerId: string): boolean;
  /**
   * A dial of a configured address opened a connection: the node may be past maxPeers (a `host:port` in the config is
   * known by its id only from here on, so the connection's opening could not tell).
   */
  opened?(peerId: string): void;
}

/**
 * Keeps persistent peers connected: dials each one, and after a failure or a
 * disconnect dials it again with exponential backoff and jitter, until the node
 * closes. A peer that is already connected (say it dialed us) is not redialed.
 */
export class PersistentPeers {
  private readonly entries: Entry[] = [];
  private stopped = false;

  constructor(
    private readonly node: Redialer,
    private readonly backoff: BackoffOptions,
    private readonly logger: P2PLogger,
    private readonly now: () => number = Date.now,
    /** Two nodes with one key met on a dial: the node reports it, and the address waits `holdOffMs`. */
    private readonly conflict: { holdOffMs: number; report(error: P2PIdentityConflictError): void } = { holdOffMs: 300_000, report: (e) => logger.error(e.message, { event: 'id-conflict', peerId: e.sharedId, address: e.address }) },
  ) {}

  /** Configured peer `peerId` refused us for another node with our id (goodbye 13): no redial for the hold-off. */
  holdOff(peerId: string): void {
    for (const entry of this.entries) {
      if (entry.peerId === peerId && !entry.dialing) this.schedule(entry, this.conflict.holdOffMs);
    }
  }

  /** Adds a persistent peer and dials it now; resolves after this first attempt either way. */
  add(address: string, peerId?: string): Promise<void> {
    const entry: Entry = { address, peerId, attempt: 0, refusals: 0, dialing: false };
    this.entries.push(entry);
    return this.dial(entry);
  }

  /**
   * Called on every disconnect: a persistent peer that went away is redialed.
   * `full`: it closed because it holds maxPeers connections. A connection that ended
   * before it outlasted the longest redial delay (`maxMs`) is refused as well: a peer
   * that accepts and then says goodbye would otherwise be redialed at once, in a loop
   * (2.2 dials a second each). For both the delay keeps growing until a connection lasts.
   */
  onDisconnected(peerId: string, full = false): void {
    const now = this.now();
    for (const entry of this.entries) {
      if (entry.peerId === peerId && !entry.dialing && !entry.timer) {
        const brief = entry.openedAt !== undefined && now - entry.openedAt < this.backoff.maxMs;
        entry.refusals = full || brief ? entry.refusals + 1 : 0;
        entry.attempt = entry.refusals;
        this.schedule(entry);
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Whether `peerId` is configured (named in the config, or proven on a dial of a configured address). */
  has(peerId: string): boolean {
    return this.entries.some((entry) => entry.peerId === peerId);
  }

  stop(): void {
    this.stopped = true;
    for (const entry of this.entries) clearTimeout(entry.timer);
  }

  private async dial(entry: Entry): Promise<void> {
    if (this.stopped) return;
    if (entry.peerId && this.node.isConnected(entry.peerId)) {
      entry.attempt = 0;
      return;
    }
    entry.dialing = true;
    try {
      const { info, opened } = await this.node.dial(entry.address);
      // A dial that found the peer connected already (it redialed us first) reconnected nothing.
      if (entry.attempt > 0 && opened) this.logger.log(`reconnected to ${info.id} at ${entry.address}`, { event: 'reconnected', peerId: info.id, address: hostPort(entry.address) });
      entry.peerId = info.id;
      entry.attempt = 0;
      if (opened) {
        entry.openedAt = this.now();
        this.node.opened?.(info.id);
      }
    } catch (err) {
      if (this.stopped || err instanceof P2PNotRunningError) return;
      if (err instanceof P2PIdentityConflictError) {
        // Another process with this node's key, at that address or connected to that peer: a redial would meet it again.
        this.conflict.report(err);
        this.schedule(entry, this.conflict.holdOffMs);
        return;
      }
      if (err instanceof P2PSelfConnectionError) {
        this.logger.warn(`persistent peer ${entry.address} is this node itself; not redialing it`, { event: 'dial-failed', address: hostPort(entry.address) });
        this.remove(entry);
        return;
      }
      const delay = this.schedule(entry);
      // The first failure is worth a warning; the retries that follow are routine.
      const line = `could not connect to ${entry.address}: ${(err as Error).message}; retrying in ${delay} ms`;
      const fields = { event: 'dial-failed', peerId: entry.peerId, address: hostPort(entry.address) } as const;
      if (entry.attempt === 1) this.logger.warn(line, fields);
      else this.logger.debug?.(line, fields);
    } finally {
      entry.dialing = false;
    }
  }

  private schedule(entry: Entry, fixed?: number): number {
    const delay = fixed ?? backoffDelay(entry.attempt, this.backoff);
    entry.attempt++;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      void this.dial(entry);
    }, delay);
    entry.timer.unref();
    return delay;
  }

  private remove(entry: Entry): void {
    clearTimeout(entry.timer);
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
  }
}

/** The `host:port` of a configured address (`host:port` or `<peerId>@host:port`), for a log line's `address` field. */
function hostPort(configured: string): string {
  return configured.slice(configured.indexOf('@') + 1);
}
