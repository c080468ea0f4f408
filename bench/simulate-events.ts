// `npm run simulate:events`: events for subscribers only (issue 24) in a simulated network (no sockets) that runs
// the node's own topology, routing (routeArcs over the topic's subscribers) and repair (BroadcastRepair, announcing to
// subscribers only). Patterns with Zipf-distributed subscriber counts; each event is judged against
// 1.3 × S + 2·⌈log3 N⌉ data frames. See docs/events.md.
// `--topic-links successor|covers` adds connections among each pattern's subscribers before the events, an experiment
// on topology bias (src/sim/topic-links.ts). By default the network is what the node's defaults make: maxPeers 50, covers
// that prefer nodes sharing a node's patterns (eventCoverPatterns, `--topic-covers 0` turns it off), origins that hand an
// event on in the thirds where its subscribers part (eventOriginPaths, `--origin-paths 1`); `--max-peers 0` bounds
// the degree at max(8, 2·⌈log3 N⌉ + 2), as `npm run simulate` does.
import { parseArgs } from 'node:util';
import { DEFAULTS } from 'nestjs-p2p/core';
import { SimNet, linkTopics, preferTopics, rng, simulateBroadcast, type SimBroadcastResult, type TopicLinks } from 'nestjs-p2p/sim';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100000' },
    patterns: { type: 'string', default: '1000' },
    'max-subscribers': { type: 'string', default: '10000' },
    droppers: { type: 'string', default: '0,0.1' },
    'repair-rounds': { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    'topic-links': { type: 'string', default: 'none' },
    'topic-covers': { type: 'string', default: String(DEFAULTS.eventCoverPatterns) },
    'pattern-links': { type: 'string', default: String(DEFAULTS.eventPatternLinks) },
    'max-peers': { type: 'string', default: String(DEFAULTS.maxPeers) },
    'origin-paths': { type: 'string', default: String(DEFAULTS.eventOriginPaths) },
    fanout: { type: 'string', default: String(DEFAULTS.eventFanout) },
  },
});
const topicCovers = Number(args['topic-covers']);
const patternLinks = Number(args['pattern-links']);
// 0: the degree bound of issue 15, max(8, 2·⌈log3 N⌉ + 2), as the other simulations.
const maxPeers = Number(args['max-peers']);
const originPaths = Number(args['origin-paths']);
const fanout = Number(args.fanout);
const topicLinks = args['topic-links'];
const N = Number(args.nodes);
const P = Number(args.patterns);
const MAX_S = Math.min(Number(args['max-subscribers']), N);
const dropperMixes = args.droppers.split(',').map(Number);
const repairRounds = Number(args['repair-rounds']);
if (!(N >= 2 && P >= 1 && MAX_S >= 1 && repairRounds >= 1 && dropperMixes.every((d) => d >= 0 && d < 1) && ['none', 'successor', 'covers'].includes(topicLinks) && Number.isInteger(topicCovers) && topicCovers >= 0 && Number.isInteger(patternLinks) && patternLinks >= 0 && maxPeers >= 0 && originPaths >= 1 && Number.isInteger(fanout) && fanout >= 0)) {
  process.stderr.write('usage: npm run simulate:events -- [--nodes 100000] [--patterns 1000] [--max-subscribers 10000] [--droppers 0,0.1] [--repair-rounds 20] [--seed 1] [--topic-links none|successor|covers] [--topic-covers 4] [--pattern-links 6] [--max-peers 50 (0: the degree bound)] [--origin-paths 3] [--fanout 6]\n');
  process.exit(2);
}

const say = (s = '') => process.stdout.write(s + '\n');
const random = rng(Number(args.seed));
const started = Date.now();
const log3N = Math.ceil(Math.log(N) / Math.log(3) - 1e-9);
const bound = (s: number) => 1.3 * s + 2 * log3N;
// Zipf: the pattern of rank k has MAX_S · k^(−a) subscribers, a chosen so that the last rank has 1.
const a = P > 1 ? Math.log(MAX_S) / Math.log(P) : 0;
const counts = Array.from({ length: P }, (_, k) => Math.max(1, Math.round(MAX_S * (k + 1) ** -a)));

const net = new SimNet(N, random, { maxOutbound: DEFAULTS.maxOutbound, ...(maxPeers > 0 ? { maxDegree: maxPeers } : {}) });
const live = net.liveNodes();
// Each pattern's subscribers, drawn once, before the topology forms (a node's covers prefer nodes sharing its patterns):
// every dropper mix runs the same events over the same topology.
const subscriberSets = counts.map((c) => sample(live, c));
// As the node's discovery: covers prefer nodes sharing one of a node's patterns (eventCoverPatterns).
preferTopics(net, subscriberSets, topicCovers, patternLinks);
const rounds = net.settle();
const degreeBefore = meanDegree();
const added = topicLinks === 'none' ? 0 : linkTopics(net, subscriberSets, topicLinks as TopicLinks);
say(
  `${N.toLocaleString('en')} nodes (settled in ${rounds} peer-exchange rounds), ${P} patterns, subscribers per pattern Zipf from ${MAX_S} to ${counts[P - 1]} ` +
    `(mean ${(counts.reduce((x, y) => x + y, 0) / P).toFixed(1)}); one event per pattern from a random node; bound 1.3 × S + 2·⌈log3 N⌉ = 1.3 × S + ${2 * log3N}; ` +
    `repair interval ${repairRounds} rounds; seed ${args.seed}; covers prefer up to ${topicCovers} of a node's patterns, at least ${patternLinks} neighbours each; origins use ${originPaths} paths and dial ${fanout} subscribers; maxPeers ${maxPeers || 'the degree bound'}; mean degree ${degreeBefore.toFixed(1)}` +
    (topicLinks === 'none' ? '.' : `, ${meanDegree().toFixed(1)} with ${added.toLocaleString('en')} topic links (${topicLinks}).`),
);
say();
say('| relays dropping | events | subscribers reached, worst event | events that missed a live subscriber | by the tree alone, worst | data frames, mean | bound, mean | frames ÷ bound (means) | events over their bound | frames ÷ S by S: 1–9 / 10–99 / 100–999 / 1000+ | carried by non-subscribers, mean | unrouted, mean |');
say('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const droppers of dropperMixes) {
  const results: Array<{ s: number; r: SimBroadcastResult }> = [];
  for (let k = 0; k < P; k++) {
    const subscribers = new Set(subscriberSets[k]!);
    const origin = live[Math.floor(random() * live.length)]!;
    const others = sample(live.filter((x) => x !== origin), Math.floor(droppers * live.length));
    const r = simulateBroadcast(net, { origin, strategy: 'subscribers', subscribers, faults: { droppers: new Set(others) }, repairRounds, random, originPaths, fanout });
    results.push({ s: counts[k]!, r });
  }
  const mean = (f: (x: { s: number; r: SimBroadcastResult }) => number) => results.reduce((t, x) => t + f(x), 0) / results.length;
  const worst = (f: (r: SimBroadcastResult) => number) => Math.min(...results.map((x) => f(x.r)));
  const byS = [
    [1, 9],
    [10, 99],
    [100, 999],
    [1000, Infinity],
  ].map(([lo, hi]) => {
    const xs = results.filter((x) => x.s >= lo! && x.s <= hi!);
    return xs.length === 0 ? '–' : (xs.reduce((t, x) => t + x.r.dataFrames, 0) / xs.reduce((t, x) => t + x.s, 0)).toFixed(2);
  });
  say(
    `| ${(droppers * 100).toFixed(0)} % | ${results.length} | ${pct(worst((r) => (r.honest === 0 ? 1 : r.delivered / r.honest)))} | ${results.filter((x) => x.r.delivered < x.r.honest).length} | ${pct(worst((r) => (r.honest === 0 ? 1 : r.deliveredByTree / r.honest)))} | ` +
      `${mean((x) => x.r.dataFrames).toFixed(1)} | ${mean((x) => bound(x.s)).toFixed(1)} | ${(mean((x) => x.r.dataFrames) / mean((x) => bound(x.s))).toFixed(2)} | ` +
      `${results.filter((x) => x.r.dataFrames > bound(x.s)).length} | ${byS.join(' / ')} | ${mean((x) => x.r.carriers).toFixed(1)} | ${mean((x) => x.r.unrouted).toFixed(2)} |`,
  );
}
say();
say(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);

function pct(x: number): string {
  return `${(x * 100).toFixed(x < 1 && x > 0.9999 ? 3 : 2)} %`;
}

function meanDegree(): number {
  return live.reduce((t, x) => t + net.links[x]!.length, 0) / live.length;
}

/** `k` distinct items of `items`, at random. */
function sample<T>(items: readonly T[], k: number): T[] {
  if (k >= items.length) return [...items];
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(Math.floor(random() * items.length));
  return [...chosen].map((i) => items[i]!);
}
