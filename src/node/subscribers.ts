import { sortedHas } from '../ring/raintree.js';
import { KeptLists } from './kept-lists.js';

/** Topics whose subscriber lists are kept between directory changes; past it the cache starts over. */
const MAX_CACHED_TOPICS = 4096;
/**
 * Ids in the kept lists, all topics together; past it the cache starts over. Without it, 4 096 topics of
 * 20 000 subscribers each (throwaway keys of `>`; one member's events may name a new topic each) held
 * 1.2 MiB a topic, 5 GiB in all. A list that one pattern makes is the directory's own (shared), so the
 * bound matters for topics several patterns match (a merge each).
 */
const MAX_CACHED_IDS = 1_000_000;

/** What Subscribers needs of the directory. */
export interface SubscriberLookup {
  /** The ids of the nodes with an event pattern matching `topic`, sorted (an array the directory may share: never changed in place). */
  ids(topic: string): readonly string[];
  /** Whether node `id` is one of them now. */
  handles(id: string, topic: string): boolean;
}

/**
 * Who subscribes to a topic, as events for subscribers are routed (src/broadcast/router.ts):
 * the sorted ids of the nodes whose directory record has a matching event pattern, this node
 * included when it has one. Looked up in the directory once per topic, since every relay of
 * every event asks, and a subject several patterns match merges their sorted ids; a
 * record change updates the kept lists by that one node (src/node/kept-lists.ts). Before, any
 * change dropped every list: with 20 000 throwaway subscribers of `>` behind one link, one of
 * them changing its record before each event, an event cost its sender 47 ms (now 3 ms).
 */
export class Subscribers {
  private readonly lists: KeptLists<string>;

  constructor(
    private readonly selfId: string,
    lookup: SubscriberLookup,
  ) {
    this.lists = new KeptLists<string>(
      {
        all: (topic) => lookup.ids(topic),
        one: (id, topic) => (lookup.handles(id, topic) ? id : undefined),
        idOf: (id) => id,
        same: () => true,
      },
      MAX_CACHED_TOPICS,
      MAX_CACHED_IDS,
    );
  }

  /** Sorted ids of the nodes with an event handler matching `topic`. */
  of(topic: string): readonly string[] {
    return this.lists.get(topic);
  }

  /** Whether this node has an event handler matching `topic`. */
  includesSelf(topic: string): boolean {
    return sortedHas(this.of(topic), this.selfId);
  }

  /** The record of node `id` was added, replaced or removed: the lists it is or was on may have changed. */
  changed(id: string): void {
    this.lists.changed(id);
  }
}
