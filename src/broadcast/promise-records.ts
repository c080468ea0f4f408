/**
 * Repair's promises (src/broadcast/repair.ts), as gossipsub's P₇ with its IWANT follow-up time: an id a
 * neighbour announced and was asked for is a promise, kept when a frame naming it arrives and broken when
 * none does within FOLLOW_UP_INTERVALS. Each neighbour has a record of kept and broken promises (decaying,
 * half-life RECORD_HALF_LIFE_INTERVALS); broken ones are reported only while more than BROKEN_SHARE_LIMIT
 * of its record is broken, so a rare miss of an honest node under load costs nothing, and keeping one
 * promise an interval buys no immunity. Each frame of the neighbour that this node's own budget dropped
 * unread excuses one broken promise (it may have been the answer).
 */

/** A neighbour's recent promises (decayed counts). */
export interface PromiseRecordStats {
  kept: number;
  broken: number;
}

/** Intervals an announcer has to send what it was asked for, as gossipsub's IWANT follow-up time (3 heartbeats). */
export const FOLLOW_UP_INTERVALS = 3;
/** Half-life of a neighbour's record of kept and broken promises, in intervals. */
const RECORD_HALF_LIFE_INTERVALS = 20;
/** Broken promises cost a neighbour score only while more than this share of its record is broken. */
export const BROKEN_SHARE_LIMIT = 0.1;
/** Records of promises kept for neighbours that are gone (so that reconnecting does not wash a record), at most. */
const MAX_RECORDS = 1024;

/** One neighbour's promises: the asks it has yet to answer, and its record. */
interface PromiseRecord extends PromiseRecordStats {
  /** Ids asked of it and not sent yet, oldest first, and when they were asked. */
  pending: Map<string, number>;
  /** When `kept` and `broken` were last decayed. */
  at: number;
  /** Its frames this node's budget dropped unread while it owed answers: each may have been one. */
  excuses: number;
  /** Pending asks past the retry time (an interval), as of the last countLate: broken unless they come late. */
  late: number;
}

/** Every neighbour's record, kept while it owes answers or its record has not decayed away. */
export class PromiseRecords {
  private readonly records = new Map<string, PromiseRecord>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
    /** `count` promises of `peer` broken while more than BROKEN_SHARE_LIMIT of its record is: the host's penalty. */
    private readonly report?: (peer: string, count: number, record: PromiseRecordStats) => void,
  ) {}

  /** `id` was asked of `peer` at `now`: a promise it owes. */
  asked(peer: string, id: string, now: number): void {
    let record = this.records.get(peer);
    if (!record) this.records.set(peer, (record = { pending: new Map(), kept: 0, broken: 0, at: now, excuses: 0, late: 0 }));
    // Re-inserted: the map stays in the order of asking.
    record.pending.delete(id);
    record.pending.set(id, now);
  }

  /**
   * A broadcast frame from `from` naming `id` arrived: a promise kept, if one was owed. `id` undefined: a
   * frame its budget dropped unread, which may have been the answer to one of the asks it owes.
   */
  arrived(from: string, id?: string): void {
    const record = this.records.get(from);
    if (!record || record.pending.size === 0) return;
    if (id === undefined) {
      record.excuses = Math.min(record.excuses + 1, record.pending.size);
      return;
    }
    if (!record.pending.delete(id)) return;
    this.decay(record, this.now());
    record.kept++;
  }

  /** A neighbour's record (decayed), for diagnostics and tests. */
  stats(peer: string): PromiseRecordStats | undefined {
    const record = this.records.get(peer);
    if (!record) return undefined;
    this.decay(record, this.now());
    return { kept: record.kept, broken: record.broken };
  }

  /** Whether any neighbour owes an answer (to be judged after the follow-up time). */
  owed(): boolean {
    for (const record of this.records.values()) if (record.pending.size > 0) return true;
    return false;
  }

  /** Counts each neighbour's asks that have had an interval without an answer, for quality(). */
  countLate(now: number): void {
    for (const record of this.records.values()) {
      record.late = 0;
      for (const at of record.pending.values()) {
        if (now - at < this.intervalMs) break;
        record.late++;
      }
    }
  }

  /** How likely `peer` is to send what it announced: its kept share, with its late asks counted as broken. */
  quality(peer: string): number {
    const r = this.records.get(peer);
    return r ? (r.kept + 1) / (r.kept + r.broken + r.late + 2) : 0.5;
  }

  /**
   * Asks past the follow-up time that were not answered are broken promises, less those a dropped frame excuses;
   * a neighbour is reported while more than BROKEN_SHARE_LIMIT of its record is broken. A neighbour not in `live`
   * is gone: what it owed can no longer come.
   */
  judge(now: number, live: ReadonlySet<string>): void {
    const followUp = this.intervalMs * FOLLOW_UP_INTERVALS;
    for (const [peer, record] of this.records) {
      this.decay(record, now);
      if (!live.has(peer)) {
        // Forgotten once its record has decayed, or when too many are kept.
        record.pending.clear();
        record.excuses = 0;
        if (record.kept + record.broken < 0.5 || this.records.size > MAX_RECORDS) this.records.delete(peer);
        continue;
      }
      let broken = 0;
      for (const [id, at] of record.pending) {
        if (now - at < followUp) break;
        record.pending.delete(id);
        broken++;
      }
      const excused = Math.min(broken, record.excuses);
      record.excuses = Math.min(record.excuses - excused, record.pending.size);
      broken -= excused;
      if (broken === 0) continue;
      record.broken += broken;
      if (record.broken > BROKEN_SHARE_LIMIT * (record.kept + record.broken)) this.report?.(peer, broken, { kept: record.kept, broken: record.broken });
    }
  }

  get size(): number {
    return this.records.size;
  }

  private decay(record: PromiseRecord, now: number): void {
    if (now <= record.at) return;
    const factor = 0.5 ** ((now - record.at) / (this.intervalMs * RECORD_HALF_LIFE_INTERVALS));
    record.kept *= factor;
    record.broken *= factor;
    record.at = now;
  }
}
