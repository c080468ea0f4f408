/**
 * Scores of neighbours by their behaviour, as gossipsub keeps them: every peer
 * starts at 0, misbehaviour subtracts points, and the score decays back towards
 * 0 (half-life SCORE_HALF_LIFE_MS), so rare noise is forgotten while a sustained
 * or blatant attack reaches BAN_SCORE. A score outlives the connection, so
 * reconnecting does not reset it.
 */

/** What a neighbour did wrong, and what one occurrence costs it. */
export const PENALTIES = {
  /** A network broadcast whose origin signature does not verify: no honest relay forwards one. */
  'invalid-signature': 100,
  /** A malformed or oversize frame, or any other protocol violation (the connection is closed too). */
  'protocol-error': 50,
  /** A network broadcast that this node's validator rejected. */
  rejected: 10,
  /**
   * Per broadcast id it announced (IHAVE) and did not send when asked, within what it may
   * serve and the follow-up time, while more than a tenth of its recent promises are broken
   * (src/broadcast/repair.ts); the caller caps the weight at 20 an interval.
   */
  'broken-promise': 1,
  /**
   * Over its budget, per message dropped, scaled by the caller so that a
   * neighbour is banned only after sending about twice what its budget allows.
   */
  'over-budget': 1,
} as const;

export type Misbehaviour = keyof typeof PENALTIES;

/** At or below this score a neighbour is disconnected and banned. */
export const BAN_SCORE = -100;
export const SCORE_HALF_LIFE_MS = 60_000;

interface Score {
  value: number;
  at: number;
}

export class PeerScores {
  private readonly scores = new Map<string, Score>();

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  score(peerId: string): number {
    const s = this.scores.get(peerId);
    return s ? this.decayed(s, this.now()) : 0;
  }

  /** Subtracts `weight` occurrences of `what`; returns the new score. */
  penalize(peerId: string, what: Misbehaviour, weight = 1): number {
    const now = this.now();
    const s = this.scores.get(peerId);
    const value = (s ? this.decayed(s, now) : 0) - PENALTIES[what] * weight;
    if (!s && this.scores.size >= this.max) this.forgetMildest(now);
    this.scores.set(peerId, { value, at: now });
    return value;
  }

  forget(peerId: string): void {
    this.scores.delete(peerId);
  }

  private decayed(s: Score, now: number): number {
    return s.value * 0.5 ** ((now - s.at) / SCORE_HALF_LIFE_MS);
  }

  /** Full: the score closest to 0 goes (it carries the least information). */
  private forgetMildest(now: number): void {
    let mildest: string | undefined;
    let best = -Infinity;
    for (const [id, s] of this.scores) {
      const v = this.decayed(s, now);
      if (v > best) [best, mildest] = [v, id];
    }
    if (mildest !== undefined) this.scores.delete(mildest);
  }
}
