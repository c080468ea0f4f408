import { sortedHas } from '../ring/raintree.js';
import type { HandlerInfo } from '../directory/directory.js';

/** Topics whose subscriber lists are kept between directory changes; past it the cache starts over. */
const MAX_CACHED_TOPICS = 4096;

/**
 * Who subscribes to a topic, as events for subscribers are routed (src/broadcast/router.ts):
 * the sorted ids of the nodes whose directory record has a matching event pattern, this node
 * included when it has one. Looked up in the directory once per topic and kept until a record
 * changes, since every relay of every event asks, and a wildcard lookup walks the pattern trie.
 */
export class Subscribers {
  private readonly cache = new Map<string, readonly string[]>();

  constructor(
    private readonly selfId: string,
    private readonly lookup: (topic: string) => readonly HandlerInfo[],
  ) {}

  /** Sorted ids of the nodes with an event handler matching `topic`. */
  of(topic: string): readonly string[] {
    let ids = this.cache.get(topic);
    if (ids) return ids;
    ids = this.lookup(topic).map((h) => h.id);
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, ids);
    return ids;
  }

  /** Whether this node has an event handler matching `topic`. */
  includesSelf(topic: string): boolean {
    return sortedHas(this.of(topic), this.selfId);
  }

  /** A record was added, replaced or removed: every list may have changed. */
  changed(): void {
    this.cache.clear();
  }
}
