// `npm run simulate -- --nodes 1000 --dead 0.1`: a network-wide broadcast in a simulated
// network (no sockets), RainTree (the planner the node runs) against plain gossip.
import { parseArgs } from 'node:util';
import { makeNetwork, rng, simulateGossip, simulateRainTree, type SimResult } from 'nestjs-p2p';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    dead: { type: 'string', default: '0' },
    degree: { type: 'string', default: '8' },
    trials: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    markdown: { type: 'boolean', default: false },
  },
});
const nodes = Number(args.nodes);
const dead = Number(args.dead);
const degree = Number(args.degree);
const trials = Number(args.trials);
if (!(nodes >= 1 && dead >= 0 && dead < 1 && degree >= 1 && trials >= 1)) {
  process.stderr.write('usage: npm run simulate -- --nodes N (≥1) --dead F (0 ≤ F < 1) [--degree 8] [--trials 5] [--seed 1] [--markdown]\n');
  process.exit(2);
}

const random = rng(Number(args.seed));
const totals = { raintree: [] as SimResult[], gossip: [] as SimResult[] };
for (let t = 0; t < trials; t++) {
  const net = makeNetwork(nodes, dead, degree, random);
  const live = [...net.alive];
  const origin = live[Math.floor(random() * live.length)]!;
  totals.raintree.push(simulateRainTree(net, origin));
  totals.gossip.push(simulateGossip(net, origin));
}

const say = (s: string) => process.stdout.write(s + '\n');
say(`${nodes} nodes, ${(dead * 100).toFixed(0)} % dead, gossip degree ${degree}, ${trials} trial(s), seed ${args.seed}; worst trial for coverage, hops and max sends, mean for the rest`);
say('');
const header = ['strategy', 'coverage of live nodes', 'duplicates', 'messages', 'sent per node: max', 'mean', 'max hops'];
const rows = (['raintree', 'gossip'] as const).map((strategy) => {
  const rs = totals[strategy];
  const coverage = Math.min(...rs.map((r) => r.delivered / r.live));
  const mean = (f: (r: SimResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  return [
    strategy === 'raintree' ? 'RainTree' : 'gossip',
    `${(coverage * 100).toFixed(2)} %`,
    mean((r) => r.duplicates).toFixed(0),
    mean((r) => r.messages).toFixed(0),
    String(Math.max(...rs.map((r) => r.maxSentByOne))),
    mean((r) => r.meanSent).toFixed(2),
    String(Math.max(...rs.map((r) => r.maxHops))),
  ];
});
if (args.markdown) {
  say(`| ${header.join(' | ')} |`);
  say(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) say(`| ${row.join(' | ')} |`);
} else {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  say(line(header));
  for (const row of rows) say(line(row));
}
