import { BanList, type BanInfo } from './ban-list.js';
import { BAN_SCORE, PeerScores, type Misbehaviour } from './peer-score.js';
import type { P2PLogger } from '../common/types.js';
import { escapeControlCharacters } from '../wire/control.js';

/** What sanctions need from the node. */
export interface SanctionsHost {
  /** Closes the live connection to `peerId`, if any, with a goodbye that says why. */
  disconnect(peerId: string, message: string): void;
  /** Where a connected peer is, for the log line, and its IP when it dialed us (an inbound ban covers the IP too). */
  whereIs(peerId: string): { address?: string; inboundIp?: string };
  readonly logger: P2PLogger;
}

/**
 * Scores neighbours and bans the ones that fall to BAN_SCORE: the ban closes
 * their connection and refuses their id (and, for inbound peers, their IP), in
 * both directions, for `banMs`. Applications can ban and unban by hand.
 */
export class Sanctions {
  readonly scores: PeerScores;
  readonly bans: BanList;
  /** Bans since start, automatic and by hand. */
  bansTotal = 0;

  constructor(
    private readonly host: SanctionsHost,
    private readonly banMs: number,
    now: () => number = Date.now,
  ) {
    this.scores = new PeerScores(10_000, now);
    this.bans = new BanList(10_000, now);
  }

  /** Records misbehaviour by a neighbour; bans it when its score reaches BAN_SCORE. */
  penalize(peerId: string, what: Misbehaviour, detail: string, weight = 1): void {
    const score = this.scores.penalize(peerId, what, weight);
    if (score <= BAN_SCORE && !this.bans.peer(peerId)) this.ban(peerId, `${what}: ${detail}`);
  }

  ban(peerId: string, reason: string, durationMs = this.banMs): BanInfo {
    // Reasons quote remote text (a broadcast's topic): a newline in one forged a line in the log (review of issue 22).
    reason = escapeControlCharacters(reason);
    const where = this.host.whereIs(peerId);
    const ban = this.bans.add({ peerId, ip: where.inboundIp, durationMs, reason });
    this.bansTotal++;
    const seconds = Math.round(durationMs / 1000);
    this.host.logger.warn(`banned peer ${peerId} at ${where.address ?? 'unknown address'}${ban.ip ? ` (and IP ${ban.ip})` : ''} for ${seconds} s: ${reason}`, {
      event: 'banned',
      peerId,
      address: where.address,
    });
    this.host.disconnect(peerId, `banned for ${seconds} s: ${reason}`);
    return ban;
  }

  /** Lifts a ban (by peer id or IP) and forgets the peer's score. */
  unban(peerIdOrIp: string): boolean {
    this.scores.forget(peerIdOrIp);
    const lifted = this.bans.remove(peerIdOrIp);
    // An IP is not a host:port: only a peer id goes into a field.
    if (lifted) this.host.logger.log(`ban on ${peerIdOrIp} lifted`, { event: 'unbanned', peerId: /^[0-9a-f]{40}$/.test(peerIdOrIp) ? peerIdOrIp : undefined });
    return lifted;
  }

  /** Why this id may not connect now, or undefined. */
  refusal(peerId: string): string | undefined {
    const ban = this.bans.peer(peerId);
    return ban && `peer ${peerId} is banned until ${ban.until.toISOString()}: ${ban.reason}`;
  }
}
