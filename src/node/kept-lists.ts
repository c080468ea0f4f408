/** Record changes remembered to bring a kept list up to date one node at a time; a list older than them is looked up again whole. */
const MAX_LOGGED_CHANGES = 256;

/** How KeptLists finds the nodes behind a key (a topic, a subject) and one node's entry. */
export interface KeptListsSource<T> {
  /** Every entry for `key`, sorted by id (a full directory lookup). */
  all(key: string): readonly T[];
  /** The entry of node `id` for `key` now, or undefined when it has none. */
  one(id: string, key: string): T | undefined;
  /** An entry's node id. */
  idOf(entry: T): string;
  /** Whether two entries of one node are the same (an unchanged entry keeps its list as it is). */
  same(a: T, b: T): boolean;
}

/**
 * Directory lookups kept per key (a topic's subscribers, a subject's request handlers), sorted by
 * node id, and brought up to date by the nodes whose records changed since, one check each,
 * rather than dropped at every change: records change all the time (each node re-publishes every
 * `directoryTtlMs` / 3; one link's throwaway keys may change theirs 20 times a second), and a
 * lookup of 50 000 nodes (half of `directoryMaxRecords`, what one link may fill) takes 140–200 ms.
 * A list that changes is a new array: callers (the router, the digest cache) keep the one they got.
 */
export class KeptLists<T> {
  private readonly kept = new Map<string, { entries: readonly T[]; at: number }>();
  /** Ids of the records changed since change number `base`, oldest first. */
  private log: string[] = [];
  private base = 0;

  /** Entries in the kept lists, all keys together (`maxEntries`). */
  private entries = 0;

  constructor(
    private readonly source: KeptListsSource<T>,
    private readonly maxKeys: number,
    private readonly maxEntries: number,
  ) {}

  private get version(): number {
    return this.base + this.log.length;
  }

  /** The entries for `key`, sorted by id. */
  get(key: string): readonly T[] {
    const kept = this.kept.get(key);
    if (kept && kept.at === this.version) return kept.entries;
    let entries: readonly T[];
    if (kept && kept.at >= this.base) {
      entries = kept.entries;
      const seen = new Set<string>();
      for (let i = kept.at - this.base; i < this.log.length; i++) {
        const id = this.log[i]!;
        if (seen.has(id)) continue;
        seen.add(id);
        entries = this.updated(entries, id, this.source.one(id, key));
      }
    } else {
      entries = this.source.all(key);
    }
    const size = this.entries - (kept?.entries.length ?? 0) + entries.length;
    if ((!kept && this.kept.size >= this.maxKeys) || size > this.maxEntries) {
      this.clear();
      if (entries.length > this.maxEntries) return entries;
      this.entries = entries.length;
    } else {
      this.entries = size;
    }
    this.kept.set(key, { entries, at: this.version });
    return entries;
  }

  /** The record of node `id` changed (added, replaced, removed): lists it is or was on are updated when next read. */
  changed(id: string): void {
    this.log.push(id);
    if (this.log.length > MAX_LOGGED_CHANGES) {
      const drop = this.log.length - MAX_LOGGED_CHANGES / 2;
      this.log = this.log.slice(drop);
      this.base += drop;
    }
  }

  /** Drops every kept list (what they hold changed in a way no record change tells). */
  clear(): void {
    this.kept.clear();
    this.entries = 0;
  }

  /** `entries` with node `id`'s entry put in, replaced or taken out: the same array when nothing changes, else a new one. */
  private updated(entries: readonly T[], id: string, entry: T | undefined): readonly T[] {
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.source.idOf(entries[mid]!) < id) lo = mid + 1;
      else hi = mid;
    }
    const has = lo < entries.length && this.source.idOf(entries[lo]!) === id;
    if (!has && entry === undefined) return entries;
    if (has && entry !== undefined && this.source.same(entries[lo]!, entry)) return entries;
    return [...entries.slice(0, lo), ...(entry === undefined ? [] : [entry]), ...entries.slice(has ? lo + 1 : lo)];
  }
}
