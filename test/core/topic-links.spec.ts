import { describe, expect, it } from 'vitest';
import { simulateBroadcast } from '../../src/sim/broadcast.js';
import { rng } from '../../src/sim/ids.js';
import { linkTopics } from '../../src/sim/topic-links.js';
import { SimNet } from '../../src/sim/topology.js';

/** The topology-bias experiment of `npm run simulate:events -- --topic-links` (docs/events.md, Simulation). */
describe('simulator: links among a topic’s subscribers', () => {
  const build = () => {
    const random = rng(7);
    const net = new SimNet(600, random);
    net.settle();
    const live = net.liveNodes();
    const subscribers = live.filter((_, i) => i % 20 === 0); // 30 of 600
    return { net, random, subscribers };
  };

  /** Subscribers reachable from the first one over connections between subscribers only. */
  const reachableAmong = (net: SimNet, subscribers: number[]) => {
    const set = new Set(subscribers);
    const seen = new Set([subscribers[0]!]);
    const stack = [subscribers[0]!];
    while (stack.length > 0) for (const next of net.linkNodes[stack.pop()!]!) if (set.has(next) && !seen.has(next)) (seen.add(next), stack.push(next));
    return seen.size;
  };

  it('successor: each subscriber gains at most one connection, and they form one ring', () => {
    const { net, subscribers } = build();
    const before = subscribers.reduce((t, x) => t + net.links[x]!.length, 0);
    const added = linkTopics(net, [subscribers], 'successor');
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThanOrEqual(subscribers.length);
    expect(subscribers.reduce((t, x) => t + net.links[x]!.length, 0) - before).toBe(2 * added);
    expect(reachableAmong(net, subscribers)).toBe(subscribers.length);
    // Connections are symmetric: both ends list each other.
    for (const x of subscribers) for (const id of net.links[x]!) expect(net.links[net.index.get(id)!]).toContain(net.ids[x]);
  });

  it('covers: an event for the subscribers costs fewer carrying nodes than over the ring alone', () => {
    const plain = build();
    const linked = build();
    expect(linkTopics(linked.net, [linked.subscribers], 'covers')).toBeGreaterThan(linked.subscribers.length);
    const carriers = (x: ReturnType<typeof build>) => {
      let total = 0;
      for (let k = 0; k < 10; k++) {
        const origin = x.subscribers[k]!;
        const r = simulateBroadcast(x.net, { origin, strategy: 'subscribers', subscribers: new Set(x.subscribers), repairRounds: 0, random: x.random });
        expect(r.delivered).toBe(r.honest);
        total += r.carriers;
      }
      return total;
    };
    expect(carriers(linked)).toBeLessThan(carriers(plain));
  });
});
