import { coverNeeds, facingMember } from '../discovery/ring-topology.js';
import type { SimNet } from './topology.js';

/**
 * How an experiment links each pattern's subscribers to each other (topology bias, as gossipsub keeps a
 * mesh per topic): `successor`, each subscriber to the next one on the ring; `covers`, to the facing
 * subscriber in every sibling third of the ring that the pattern's subscribers occupy (the topology's own
 * rule, src/discovery/ring-topology.ts, over the subscribers alone).
 */
export type TopicLinks = 'successor' | 'covers';

/**
 * Adds connections among the subscribers of each set (node numbers), outside the topology's plan and its
 * degree bound (SimNet.link), for bench/simulate-events.ts `--topic-links`.
 * @returns How many connections were added.
 */
export function linkTopics(net: SimNet, subscriberSets: ReadonlyArray<readonly number[]>, how: TopicLinks): number {
  let added = 0;
  for (const picked of subscriberSets) {
    if (picked.length < 2) continue;
    const sorted = picked.map((x) => net.ids[x]!).sort();
    for (const node of picked) {
      const self = net.ids[node]!;
      const targets =
        how === 'successor'
          ? [sorted[(sorted.indexOf(self) + 1) % sorted.length]!]
          : coverNeeds(self, sorted).flatMap((need) => facingMember(self, need, sorted, () => false) ?? []);
      for (const id of targets) if (net.link(node, net.index.get(id)!)) added++;
    }
  }
  return added;
}

/**
 * Gives each node's planning the nodes that share its patterns (SimNet.topics), as the node's discovery does with
 * eventCoverPatterns (src/node/peer.ts, Directory.sharingIds): for each node, the sorted subscribers of each of its
 * patterns, fewest first, at most `limit` patterns, and keeps at least `floor` neighbours among each list's nodes
 * (eventPatternLinks). Call before settle(), so that the topology forms with them.
 */
export function preferTopics(net: SimNet, subscriberSets: ReadonlyArray<readonly number[]>, limit: number, floor = 0): void {
  net.topicFloor = floor;
  if (limit <= 0) {
    net.topics = undefined;
    return;
  }
  const lists = subscriberSets.map((set) => set.map((x) => net.ids[x]!).sort());
  const patternsOf: number[][] = Array.from({ length: net.size }, () => []);
  subscriberSets.forEach((set, k) => {
    // A pattern only one node holds shares nothing (Directory.sharingIds leaves it out).
    if (set.length > 1) for (const x of set) patternsOf[x]!.push(k);
  });
  for (const ks of patternsOf) ks.sort((x, y) => lists[x]!.length - lists[y]!.length).splice(limit);
  net.topics = (node) => (patternsOf[node]?.length ? patternsOf[node]!.map((k) => lists[k]!) : undefined);
}
