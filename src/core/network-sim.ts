import { RING_ROOT, inArc, membersOf, occupiedBy, planForward, type Arc } from './raintree.js';

/**
 * A message-level simulation of a network-wide broadcast, with no sockets: the
 * RainTree planner the node runs, or plain gossip. Used by `npm run simulate`
 * and by the property tests.
 */

export interface SimNetwork {
  /** Peer ids, sorted ascending (everyone's view, in the RainTree case). */
  ids: string[];
  alive: ReadonlySet<string>;
  /** Gossip neighbours of each id. */
  neighbours: ReadonlyMap<string, readonly string[]>;
}

export interface SimResult {
  strategy: 'raintree' | 'gossip';
  live: number;
  /** Live nodes that delivered the message (once each). */
  delivered: number;
  /** Deliveries beyond the first at a node (the seen-cache drops them). */
  duplicates: number;
  /** Messages sent in total. */
  messages: number;
  maxSentByOne: number;
  meanSent: number;
  maxHops: number;
}

/** Deterministic PRNG (mulberry32), so that a seed reproduces a network. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N random 40-hex ids, a dead fraction, and a random gossip graph where each node links to `degree` others. */
export function makeNetwork(n: number, deadFraction: number, degree: number, random: () => number): SimNetwork {
  const ids = new Set<string>();
  while (ids.size < n) {
    let id = '';
    for (let i = 0; i < 5; i++) id += Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0');
    ids.add(id);
  }
  const sorted = [...ids].sort();
  const shuffled = [...sorted];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const dead = new Set(shuffled.slice(0, Math.floor(n * deadFraction)));
  const alive = new Set(sorted.filter((id) => !dead.has(id)));
  const links = new Map<string, Set<string>>(sorted.map((id) => [id, new Set<string>()]));
  for (const id of sorted) {
    for (let k = 0; k < Math.min(degree, n - 1) && links.get(id)!.size < degree; k++) {
      const other = sorted[Math.floor(random() * n)]!;
      if (other === id) continue;
      links.get(id)!.add(other);
      links.get(other)!.add(id);
    }
  }
  return { ids: sorted, alive, neighbours: new Map([...links].map(([id, set]) => [id, [...set]])) };
}

function summarise(strategy: SimResult['strategy'], net: SimNetwork, seen: Map<string, number>, sent: Map<string, number>, maxHops: number): SimResult {
  let delivered = 0;
  let duplicates = 0;
  for (const [id, times] of seen) {
    if (!net.alive.has(id)) continue;
    delivered++;
    duplicates += times - 1;
  }
  const counts = [...net.alive].map((id) => sent.get(id) ?? 0);
  const messages = [...sent.values()].reduce((a, b) => a + b, 0);
  return {
    strategy,
    live: net.alive.size,
    delivered,
    duplicates,
    messages,
    maxSentByOne: Math.max(0, ...counts),
    meanSent: counts.length ? messages / counts.length : 0,
    maxHops,
  };
}

/** RainTree from `origin`, each node handing each arc to its first live neighbour inside it (every node knows every id). */
export function simulateRainTree(net: SimNetwork, origin: string): SimResult {
  const seen = new Map<string, number>();
  const sent = new Map<string, number>();
  let maxHops = 0;
  const queue: Array<{ node: string; arc: Arc; hops: number }> = [{ node: origin, arc: RING_ROOT, hops: 0 }];
  for (let i = 0; i < queue.length; i++) {
    const { node, arc, hops } = queue[i]!;
    const times = (seen.get(node) ?? 0) + 1;
    seen.set(node, times);
    if (times > 1) continue; // the seen-cache: delivered and forwarded once only
    maxHops = Math.max(maxHops, hops);
    const neighbours = net.neighbours.get(node);
    for (const third of planForward(node, arc, occupiedBy(net.ids, node))) {
      // No neighbour list: a complete graph, where any live member of the third can take it.
      const head = (neighbours ?? membersOf(net.ids, third)).find((id) => id !== node && net.alive.has(id) && inArc(id, third));
      if (!head) continue;
      sent.set(node, (sent.get(node) ?? 0) + 1);
      queue.push({ node: head, arc: third, hops: hops + 1 });
    }
  }
  return summarise('raintree', net, seen, sent, maxHops);
}

/** Gossip from `origin`: every node forwards to all its live neighbours but the sender, on first receipt. */
export function simulateGossip(net: SimNetwork, origin: string): SimResult {
  const seen = new Map<string, number>();
  const sent = new Map<string, number>();
  let maxHops = 0;
  const queue: Array<{ node: string; from?: string; hops: number }> = [{ node: origin, hops: 0 }];
  for (let i = 0; i < queue.length; i++) {
    const { node, from, hops } = queue[i]!;
    const times = (seen.get(node) ?? 0) + 1;
    seen.set(node, times);
    if (times > 1) continue;
    maxHops = Math.max(maxHops, hops);
    for (const next of net.neighbours.get(node) ?? []) {
      if (next === from || !net.alive.has(next)) continue;
      sent.set(node, (sent.get(node) ?? 0) + 1);
      queue.push({ node: next, from: node, hops: hops + 1 });
    }
  }
  return summarise('gossip', net, seen, sent, maxHops);
}
