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
