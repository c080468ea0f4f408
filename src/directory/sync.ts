import { P2PProtocolError } from '../common/errors.js';
import type { P2PLogger } from '../common/types.js';
import type { Misbehaviour } from '../trust/peer-score.js';
import { encodeRecord } from './record.js';
import { DIGEST_BUCKETS } from './record-table.js';
import type { Directory, SyncStats } from './directory.js';

/**
 * Anti-entropy of the directory (docs/directory.md, Anti-entropy), as Serf's push-pull and
 * Cassandra's repair do it: two neighbours compare a digest (per bucket of ids: record count and
 * XOR of (id, seq) hashes) on every new connection, and one random neighbour every
 * `directorySyncIntervalMs`; each then sends the records of the buckets that differ, in pages of
 * bounded bytes paced by the connection's writability. The receiver verifies every record, and
 * accepts pages only after a digest of the sender's, up to the records that digest counted (so a
 * neighbour cannot make it judge more than it announced, at most `directoryMaxRecords` a digest).
 *
 * A node pulls records from one neighbour at a time (the PULL flag of the digest it sends): a node
 * joining with 20 connections receives the directory once, not 20 times.
 *
 * Digest body: flags u8 (bit 0: answer with yours; bit 1: send me your records of the buckets
 * that differ) | 256 × (count u32 | hash 8 bytes).
 * Records body: count u16 | per record: length u16 | record bytes.
 */

const DIGEST_BYTES = 1 + DIGEST_BUCKETS * 12;
/** Flag: answer with your digest (the periodic exchange). */
const ASK = 1;
/** Flag: send me your records of the buckets that differ. Set toward one neighbour at a time. */
const PULL = 2;
/** A pull that has brought nothing for this long is over: another neighbour may be pulled from. */
const PULL_IDLE_MS = 5_000;
/** Records a neighbour may send past its digest's count (records that arrived in between), plus a tenth. */
const SLACK = 16;

export interface SyncHost {
  readonly logger: P2PLogger;
  /** Open neighbours. */
  neighbours(): string[];
  /** Sends a digest (optional traffic: dropped when the connection is backlogged). */
  sendDigest(peerId: string, body: Buffer): void;
  /** Queues a page of records, bounded like any frame; throws a typed error when it cannot. */
  sendRecords(peerId: string, body: Buffer): void;
  /** Resolves when the neighbour's write queue has room; rejects when it closed. */
  whenWritable(peerId: string): Promise<void>;
  /** The largest frame body the neighbour accepts. */
  maxFrameBytes(peerId: string): number;
  penalize(peerId: string, what: Misbehaviour, detail: string, weight?: number): void;
}

export interface SyncOptions {
  intervalMs: number;
  /** Bytes of records in one page (at most the neighbour's frame size). */
  pageBytes: number;
}

/** What a neighbour's last digest entitles it to send. */
interface Session {
  /** Records it may still send. */
  remaining: number;
  /** When its digest was answered, to rate digests. */
  at: number;
}

export class DirectorySync {
  readonly stats: SyncStats = { digestsSent: 0, digestsReceived: 0, digestsIgnored: 0, pagesSent: 0, pagesReceived: 0, recordsSent: 0, recordsReceived: 0 };
  private readonly sessions = new Map<string, Session>();
  /** When a digest was last sent to each neighbour: never more than one a quarter interval. */
  private readonly sentAt = new Map<string, number>();
  /** Buckets still to page to a neighbour, and whether a paging job runs for it. */
  private readonly outgoing = new Map<string, { buckets: Set<number>; running: boolean }>();
  private timer: NodeJS.Timeout | undefined;
  /** The neighbour this node pulls records from now: the records its digest announced in differing buckets, and those received. */
  private pull: { from: string; expected: number; received: number; lastAt: number } | undefined;

  constructor(
    private readonly host: SyncHost,
    private readonly directory: Directory,
    private readonly options: SyncOptions,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sessions.clear();
    this.outgoing.clear();
  }

  /** One random neighbour, asked to answer with its digest. */
  private tick(): void {
    const now = this.now();
    const neighbours = this.host.neighbours().filter((id) => !this.sentRecently(id, now));
    if (neighbours.length === 0) return;
    this.sendDigest(neighbours[Math.floor(Math.random() * neighbours.length)]!, true);
  }

  /** A new connection: both ends send their digest at once. */
  onConnected(peerId: string): void {
    this.sendDigest(peerId, false);
  }

  onDisconnected(peerId: string): void {
    if (this.pull?.from === peerId) this.pull = undefined;
    this.sessions.delete(peerId);
    this.sentAt.delete(peerId);
    this.outgoing.delete(peerId);
  }

  private sentRecently(peerId: string, now: number): boolean {
    return now - (this.sentAt.get(peerId) ?? -Infinity) < this.options.intervalMs / 4;
  }

  private sendDigest(peerId: string, ask: boolean): void {
    const now = this.now();
    // The receiver answers one digest an eighth of an interval; this side sends at most one a quarter.
    if (this.sentRecently(peerId, now)) return;
    this.sentAt.set(peerId, now);
    const pull = this.canPull(now);
    const body = Buffer.allocUnsafe(DIGEST_BYTES);
    body[0] = (ask ? ASK : 0) | (pull ? PULL : 0);
    const table = this.directory.table;
    for (let b = 0; b < DIGEST_BUCKETS; b++) {
      body.writeUInt32BE(table.bucketCounts[b]!, 1 + b * 12);
      body.writeUInt32BE(table.bucketHashes[b * 2]!, 5 + b * 12);
      body.writeUInt32BE(table.bucketHashes[b * 2 + 1]!, 9 + b * 12);
    }
    try {
      this.host.sendDigest(peerId, body);
      this.stats.digestsSent++;
      if (pull) this.pull = { from: peerId, expected: Infinity, received: 0, lastAt: now };
    } catch (err) {
      this.host.logger.debug?.(`directory digest to ${peerId} not sent: ${(err as Error).message}`, { event: 'directory', peerId });
    }
  }

  /** Whether no pull is under way: none, or the last one got what it was announced, or went idle. */
  private canPull(now: number): boolean {
    const p = this.pull;
    return !p || p.received >= p.expected || now - p.lastAt > PULL_IDLE_MS;
  }

  /** A neighbour's digest. Throws P2PProtocolError when malformed. */
  onDigest(from: string, body: Buffer): void {
    if (body.length !== DIGEST_BYTES) throw new P2PProtocolError(`malformed directory digest: ${body.length} bytes`);
    this.stats.digestsReceived++;
    const now = this.now();
    const last = this.sessions.get(from);
    // Each answer may cost this node a page of every record: a neighbour gets one an eighth of an interval (it sends one a quarter at most).
    if (last && now - last.at < this.options.intervalMs / 8) {
      this.stats.digestsIgnored++;
      this.host.penalize(from, 'over-budget', 'directory digests more often than an eighth of directorySyncIntervalMs');
      return;
    }
    const table = this.directory.table;
    const differing: number[] = [];
    let theirs = 0;
    let theirsDiffering = 0;
    for (let b = 0; b < DIGEST_BUCKETS; b++) {
      const count = body.readUInt32BE(1 + b * 12);
      theirs += count;
      const same = count === table.bucketCounts[b] && body.readUInt32BE(5 + b * 12) === table.bucketHashes[b * 2] && body.readUInt32BE(9 + b * 12) === table.bucketHashes[b * 2 + 1];
      if (same) continue;
      differing.push(b);
      theirsDiffering += count;
    }
    // What the pull from this neighbour will bring (the pages it sends in answer to our PULL).
    if (this.pull?.from === from && this.pull.expected === Infinity) {
      this.pull.expected = theirsDiffering;
      this.pull.lastAt = now;
    }
    // Its pages may hold any of its records, in any bucket: which buckets differ can change on either side between
    // the two digests (a broadcast arriving at one end first), and an honest sender must never be penalised for that.
    // What bounds them is the count its digest announced, plus what a session still open allowed.
    const allowed = Math.min(theirs, this.directory.options.maxRecords);
    const open = last && now - last.at < this.options.intervalMs * 2 ? last.remaining : 0;
    this.sessions.set(from, { remaining: Math.min(open + allowed + SLACK + Math.ceil(allowed / 10), 2 * this.directory.options.maxRecords + SLACK), at: now });
    if (body[0]! & ASK) this.sendDigest(from, false);
    if (body[0]! & PULL && differing.length > 0) this.page(from, differing);
  }

  /** A page of records from a neighbour. Throws P2PProtocolError when malformed. */
  onRecords(from: string, body: Buffer): void {
    if (body.length < 2) throw new P2PProtocolError('malformed directory records: too short');
    const count = body.readUInt16BE(0);
    const records: Buffer[] = [];
    let o = 2;
    for (let i = 0; i < count; i++) {
      if (o + 2 > body.length) throw new P2PProtocolError('malformed directory records: past the end');
      const length = body.readUInt16BE(o);
      o += 2;
      if (o + length > body.length) throw new P2PProtocolError('malformed directory records: past the end');
      records.push(body.subarray(o, (o += length)));
    }
    if (o !== body.length) throw new P2PProtocolError('malformed directory records: trailing bytes');
    this.stats.pagesReceived++;
    const session = this.sessions.get(from);
    for (const bytes of records) {
      if (!session || session.remaining <= 0) {
        this.directory.countRefusal('unsolicited');
        this.host.penalize(from, 'over-budget', 'directory records its digest did not announce', 5);
        return; // the rest of the page is not even looked at
      }
      session.remaining--;
      this.stats.recordsReceived++;
      if (this.pull?.from === from) {
        this.pull.received++;
        this.pull.lastAt = this.now();
      }
      // A rejected record is one no honest node sends (its sender is penalised): the rest of its page is not judged,
      // so that a page of forgeries costs one signature check, not one a record. Anti-entropy brings any honest rest later.
      if (this.directory.receive(Buffer.from(bytes), { via: 'sync', from }) === 'reject') return;
    }
  }

  /** Sends the records of `buckets` to a neighbour, page by page, each when its queue has room. */
  private page(peerId: string, buckets: number[]): void {
    let job = this.outgoing.get(peerId);
    if (!job) this.outgoing.set(peerId, (job = { buckets: new Set(), running: false }));
    for (const b of buckets) job.buckets.add(b);
    if (job.running) return;
    job.running = true;
    void this.run(peerId, job).catch((err: Error) => this.host.logger.debug?.(`directory pages to ${peerId} stopped: ${err.message}`, { event: 'directory', peerId }));
  }

  private async run(peerId: string, job: { buckets: Set<number>; running: boolean }): Promise<void> {
    try {
      while (job.buckets.size > 0 && this.outgoing.get(peerId) === job) {
        const wanted = new Uint8Array(DIGEST_BUCKETS);
        for (const b of job.buckets) wanted[b] = 1;
        job.buckets.clear();
        const table = this.directory.table;
        // Ids, not slots: a slot may be reused for another node while the pages go out.
        const ids: string[] = [];
        for (const slot of table.slots()) if (wanted[table.bucketOf(slot)]) ids.push(table.id(slot));
        const limit = Math.min(this.options.pageBytes, this.host.maxFrameBytes(peerId) - 64);
        let page: Buffer[] = [];
        let bytes = 2;
        const flush = async () => {
          if (page.length === 0) return;
          await this.host.whenWritable(peerId);
          const head = Buffer.allocUnsafe(2);
          head.writeUInt16BE(page.length / 2); // a length and a record per entry
          this.host.sendRecords(peerId, Buffer.concat([head, ...page]));
          this.stats.pagesSent++;
          this.stats.recordsSent += page.length / 2;
          page = [];
          bytes = 2;
        };
        for (const id of ids) {
          const slot = table.find(id);
          if (slot < 0) continue;
          const record = encodeRecord(table.record(slot));
          if (2 + record.length > limit) continue;
          if (bytes + 2 + record.length > limit || page.length / 2 >= 0xffff) await flush();
          const length = Buffer.allocUnsafe(2);
          length.writeUInt16BE(record.length);
          page.push(length, record);
          bytes += 2 + record.length;
        }
        await flush();
      }
    } finally {
      job.running = false;
    }
  }
}
