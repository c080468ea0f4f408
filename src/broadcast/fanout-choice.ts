import { sortedHas } from '../ring/raintree.js';

/**
 * Which subscribers of a topic a node that sends events to it without subscribing connects to (gossipsub's fanout
 * peers): enough that `want` of its neighbours subscribe, drawn at random among the others. An event from such a node
 * otherwise reaches its first subscriber only through carriers, and when every path meets a dropping carrier first no
 * subscriber gets it, and repair, which runs among subscribers, has nothing to start from (docs/events.md,
 * "Dropping relays"). A neighbour that subscribes is handed the event first (router.ts) and is told of
 * it by repair when the tree missed it. Drawn at random, not by id: ground ids near the publisher or the topic cannot
 * make themselves its only links. Shared by the node (src/node/event-fanout.ts) and the simulator (src/sim/broadcast.ts).
 *
 * @param subscribers The topic's subscribers, sorted (this node is not one).
 * @param neighbours This node's connections, and the dials under way.
 * @returns The ids to dial: `want` less the subscribing neighbours, fewer when there are not that many others.
 */
export function fanoutTargets(subscribers: readonly string[], neighbours: readonly string[], want: number, random: () => number): string[] {
  if (subscribers.length === 0) return [];
  let need = want;
  for (const id of neighbours) if (need > 0 && sortedHas(subscribers, id)) need--;
  if (need <= 0) return [];
  const taken = new Set(neighbours);
  const out: string[] = [];
  // Distinct ids drawn at random, a bounded number of draws (subscribers may be 100 000; most are not neighbours).
  for (let tries = 0; out.length < need && tries < 4 * need + 8; tries++) {
    const id = subscribers[Math.floor(random() * subscribers.length)]!;
    if (taken.has(id)) continue;
    taken.add(id);
    out.push(id);
  }
  return out;
}
