import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseAddress } from '../connection/address.js';
import type { P2PLogger } from '../common/types.js';

/** The file's format; a file of another version is set aside (a warning, an empty store). */
export const PEER_STORE_VERSION = 1;
/** How often the store is written while the node runs, ms (and once more at close). */
export const PEER_STORE_WRITE_MS = 30_000;
/**
 * How often the node looks whether its proven peers changed (another id, address or trust), ms: then it
 * writes at once, so a node killed (SIGKILL) a few seconds after it met its neighbours still finds them.
 */
export const PEER_STORE_CHECK_MS = 5_000;
/** Bytes a stored entry may take on average; a larger file is not read (it is not one this node wrote). */
const BYTES_PER_ENTRY = 512;

/** A proven peer as the store keeps it. */
export interface StoredPeer {
  /** Its peer id (40 lowercase hex characters). */
  id: string;
  /** Where it announced it can be dialed, as the address book had it. */
  address: string;
  /** When this node was last connected to it (ms since epoch): the freshest are kept and redialed first. */
  seenAt: number;
  /**
   * The node had learned of it from a source it does not control (src/discovery/provenance.ts): only then
   * does it count as the node's own choice again after a restart. A peer known only by its own word (it
   * dialed in) is restored as a dialable address, never as trusted.
   */
  own: boolean;
}

/** What the store needs from the node. */
export interface PeerStoreHost {
  readonly selfId: string;
  readonly logger: P2PLogger;
  /** The proven peers to write now (any order; the store keeps the freshest `maxPeers`). */
  snapshot(): StoredPeer[];
  /** Takes the peers read at start (freshest first); returns how many it kept. */
  restore(peers: StoredPeer[]): number;
}

export interface PeerStoreOptions {
  file: string;
  maxPeers: number;
  /** Default PEER_STORE_WRITE_MS. */
  intervalMs?: number;
  /** Default PEER_STORE_CHECK_MS. */
  checkMs?: number;
}

const PEER_ID = /^[0-9a-f]{40}$/;

/**
 * The node's memory of its proven peers across restarts (issue 23): a JSON file of the freshest
 * `maxPeers` peers that completed a connection with it (never peer-exchange hearsay), each with its
 * last good address and last-seen time. Written whole to a temporary file then renamed over the old
 * one (a crash leaves the old file or the new, never half of one), every PEER_STORE_WRITE_MS, within
 * PEER_STORE_CHECK_MS of a change, and at close, from a timer: off any message path. A file that is
 * not this node's (another id, another version, not JSON) is reported with a warning and read as
 * empty: a bad store never stops a node. Bans are not stored; a peer banned when the store is
 * written is left out of it (see Discovery.stored).
 */
export class PeerStore {
  private timer: NodeJS.Timeout | undefined;
  /** The write in progress, if any: writes are chained so that two never share the temporary file. */
  private writing: Promise<void> = Promise.resolve();
  /** The last error reported, so that a failing disk logs once, not every interval. */
  private lastError: string | undefined;
  /** What the last write held, without times: a change is written at the next check, not at the next interval. */
  private lastKey: string | undefined;
  private lastWriteAt = 0;

  constructor(
    private readonly host: PeerStoreHost,
    private readonly options: PeerStoreOptions,
  ) {}

  /** Reads the file: the stored peers, freshest first, at most `maxPeers`. Never throws. */
  async load(): Promise<StoredPeer[]> {
    const { file, maxPeers } = this.options;
    let text: string;
    try {
      const size = (await stat(file)).size;
      if (size > 4096 + maxPeers * BYTES_PER_ENTRY) return this.setAside(`${size} bytes, more than ${maxPeers} peers take`);
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      return this.setAside((err as Error).message);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return this.setAside(`not JSON (${(err as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return this.setAside('not a peer store');
    const { version, id, peers } = parsed as Record<string, unknown>;
    if (version !== PEER_STORE_VERSION) return this.setAside(`version ${JSON.stringify(version)}, expected ${PEER_STORE_VERSION}`);
    // Another node's memory (a copied data directory, a shared path) would make this node dial that node's peers as its own.
    if (id !== this.host.selfId) return this.setAside(`it belongs to node ${typeof id === 'string' ? id.slice(0, 40) : JSON.stringify(id)}`);
    if (!Array.isArray(peers)) return this.setAside('no peers list');
    const valid = peers.filter(isStoredPeer).filter((p) => p.id !== this.host.selfId);
    if (valid.length < peers.length) {
      const ignored = peers.length - valid.length;
      this.host.logger.warn(`peer store ${file}: ignored ${ignored} malformed entr${ignored === 1 ? 'y' : 'ies'}`, { event: 'peer-store' });
    }
    return freshest(valid, maxPeers);
  }

  /** At start: reads the file, hands its peers to the host, and writes every `intervalMs` from now until close(). */
  async open(): Promise<void> {
    const peers = await this.load();
    if (peers.length > 0) {
      this.host.logger.log(`node ${this.host.selfId} redials ${this.host.restore(peers)} of ${peers.length} peers stored in ${this.options.file}`, { event: 'peer-store' });
    }
    this.start();
  }

  /** Writes every `intervalMs` from now until close(), and within `checkMs` of a change. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), Math.min(this.options.checkMs ?? PEER_STORE_CHECK_MS, this.interval));
    this.timer.unref();
  }

  private get interval(): number {
    return this.options.intervalMs ?? PEER_STORE_WRITE_MS;
  }

  /** A write when the peers changed or the interval has passed since the last one. */
  private check(): void {
    const peers = this.peers();
    if (keyOf(peers) === this.lastKey && Date.now() - this.lastWriteAt < this.interval) return;
    void this.save(peers);
  }

  /** Stops the timer and writes once more (the snapshot is taken now, the write finishes when the promise does). */
  close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.save();
  }

  /** Writes the host's snapshot now (after any write in progress). Never rejects: a failure is a warning. */
  save(peers = this.peers()): Promise<void> {
    this.lastKey = keyOf(peers);
    this.lastWriteAt = Date.now();
    const body = { version: PEER_STORE_VERSION, id: this.host.selfId, savedAt: this.lastWriteAt, peers };
    const text = `${JSON.stringify(body, null, 1)}\n`;
    this.writing = this.writing.then(() => this.write(text));
    return this.writing;
  }

  private peers(): StoredPeer[] {
    return freshest(this.host.snapshot(), this.options.maxPeers);
  }

  private async write(text: string): Promise<void> {
    const { file } = this.options;
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, file);
      this.lastError = undefined;
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      const message = (err as Error).message;
      if (message !== this.lastError) this.host.logger.warn(`peer store ${file}: could not write it: ${message}`, { event: 'peer-store' });
      this.lastError = message;
    }
  }

  private setAside(why: string): StoredPeer[] {
    this.host.logger.warn(`peer store ${this.options.file} ignored (${why}); starting with no stored peers, and it is overwritten at the next write`, { event: 'peer-store' });
    return [];
  }
}

/** What a write holds, times left out. */
function keyOf(peers: readonly StoredPeer[]): string {
  return peers
    .map((p) => `${p.id}@${p.address}${p.own ? '+' : ''}`)
    .sort()
    .join(' ');
}

/** The `max` most recently seen, freshest first, one per id. */
function freshest(peers: StoredPeer[], max: number): StoredPeer[] {
  const seen = new Set<string>();
  const out: StoredPeer[] = [];
  for (const p of [...peers].sort((a, b) => b.seenAt - a.seenAt)) {
    if (out.length >= max) break;
    if (seen.has(p.id)) continue;
    seen.add(p.id);
    out.push({ id: p.id, address: p.address, seenAt: p.seenAt, own: p.own });
  }
  return out;
}

function isStoredPeer(value: unknown): value is StoredPeer {
  if (typeof value !== 'object' || value === null) return false;
  const { id, address, seenAt, own } = value as Record<string, unknown>;
  return (
    typeof id === 'string' &&
    PEER_ID.test(id) &&
    typeof address === 'string' &&
    address.length <= 300 &&
    typeof parseAddress(address) !== 'string' &&
    typeof seenAt === 'number' &&
    Number.isFinite(seenAt) &&
    typeof own === 'boolean'
  );
}
