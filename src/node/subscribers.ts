import { lowerBound, sortedHas } from '../ring/raintree.js';
import type { HandlerInfo } from '../directory/directory.js';

/** Topics whose subscriber lists are kept between directory changes; past it the cache starts over. */
const MAX_CACHED_TOPICS = 4096;
/**
 * Record changes remembered to bring a kept list up to date one node at a time; a list older than
 * them is looked up again whole. Each change costs a cached list one check of that node's patterns.
 */
const MAX_LOGGED_CHANGES = 256;

/** What Subscribers needs of the directory. */
export interface SubscriberLookup {
  /** Every node with an event pattern matching `topic`, sorted by id. */
  handlers(topic: string): readonly HandlerInfo[];
  /** Whether node `id` is one of them now. */
  handles(id: string, topic: string): boolean;
}

/**
 * Who subscribes to a topic, as events for subscribers are routed (src/broadcast/router.ts):
 * the sorted ids of the nodes whose directory record has a matching event pattern, this node
 * included when it has one. Looked up in the directory once per topic, since every relay of
 * every event asks, and a wildcard lookup walks the pattern trie and sorts what it finds. A
 * record change then updates a kept list by that one node (a check of its patterns) rather than
 * dropping every list: records change all the time (each node re-publishes every `directoryTtlMs`
 * / 3, and one link's throwaway keys may change theirs 20 times a second), and a lookup of 50 000
 * subscribers (half of `directoryMaxRecords`, what one link may fill) took 140–200 ms. A list is
 * a new array when it changes (the router and the digest cache hold the one they were given).
 */
export class Subscribers {
  private readonly cache = new Map<string, { ids: readonly string[]; at: number }>();
  /** Ids of the records changed since change number `base`, oldest first. */
  private log: string[] = [];
  private base = 0;

  constructor(
    private readonly selfId: string,
    private readonly lookup: SubscriberLookup,
  ) {}

  private get version(): number {
    return this.base + this.log.length;
  }

  /** Sorted ids of the nodes with an event handler matching `topic`. */
  of(topic: string): readonly string[] {
    const kept = this.cache.get(topic);
    if (kept && kept.at === this.version) return kept.ids;
    let ids: readonly string[];
    if (kept && kept.at >= this.base) {
      ids = kept.ids;
      const seen = new Set<string>();
      for (let i = kept.at - this.base; i < this.log.length; i++) {
        const id = this.log[i]!;
        if (seen.has(id)) continue;
        seen.add(id);
        ids = this.updated(ids, id, this.lookup.handles(id, topic));
      }
    } else {
      ids = this.lookup.handlers(topic).map((h) => h.id);
      if (!kept && this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    }
    this.cache.set(topic, { ids, at: this.version });
    return ids;
  }

  /** Whether this node has an event handler matching `topic`. */
  includesSelf(topic: string): boolean {
    return sortedHas(this.of(topic), this.selfId);
  }

  /** The record of node `id` was added, replaced or removed: the lists it is or was on may have changed. */
  changed(id: string): void {
    this.log.push(id);
    if (this.log.length > MAX_LOGGED_CHANGES) {
      const drop = this.log.length - MAX_LOGGED_CHANGES / 2;
      this.log = this.log.slice(drop);
      this.base += drop;
    }
  }

  /** `ids` with `id` in or out, as `member` says: the same array when nothing changes, else a new one. */
  private updated(ids: readonly string[], id: string, member: boolean): readonly string[] {
    const at = lowerBound(ids, id);
    const has = ids[at] === id;
    if (has === member) return ids;
    return member ? [...ids.slice(0, at), id, ...ids.slice(at)] : [...ids.slice(0, at), ...ids.slice(at + 1)];
  }
}
