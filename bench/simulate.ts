// `npm run simulate`: network-wide broadcasts in a simulated network (no sockets) that runs the node's own
// topology (planTopology), routing (routeArcs) and repair (BroadcastRepair): RainTree with repair against gossip,
// for each fault mix. See docs/broadcast.md, "Simulation". With --eclipse: ids ground into a victim's thirds dial it, drop
// and withhold; the victim's share of attackers and its delivery (docs/security.md, "Eclipse").
import { parseArgs } from 'node:util';
import { DEFAULTS } from 'nestjs-p2p/core';
import { FAULT_MIXES, SimNet, degreeBound, rng, runMix, simulateEclipse, summarise, type EclipseAttack, type FaultMix, type SimSummary } from 'nestjs-p2p/sim';

const MIX_KEYS = FAULT_MIXES.map((m) => m.key);

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string' },
    mixes: { type: 'string' },
    broadcasts: { type: 'string' },
    'repair-rounds': { type: 'string', default: '20' },
    'hop-ms': { type: 'string', default: '25' },
    'repair-fanout': { type: 'string' },
    'max-outbound': { type: 'string' },
    seed: { type: 'string', default: '1' },
    markdown: { type: 'boolean', default: false },
    eclipse: { type: 'boolean', default: false },
    attackers: { type: 'string', default: '10,50,200' },
  },
});
const sizes = (args.nodes ?? (args.eclipse ? '1000,10000' : '1000,100000')).split(',').map(Number);
const attackerCounts = args.attackers.split(',').map(Number);
const repairRounds = Number(args['repair-rounds']);
const hopMs = Number(args['hop-ms']);
const repairFanout = args['repair-fanout'] === undefined ? undefined : Number(args['repair-fanout']);
const usage = () => {
  process.stderr.write(
    'usage: npm run simulate -- [--nodes 1000,100000] [--mixes ' +
      MIX_KEYS.join(',') +
      `] [--broadcasts K] [--repair-rounds 20] [--hop-ms 25] [--repair-fanout ${DEFAULTS.broadcastRepairFanout}] [--max-outbound M (default: the node's, ${DEFAULTS.maxOutbound})] [--seed 1] [--markdown]\n` +
      '       npm run simulate -- --eclipse [--nodes 1000,10000] [--attackers 10,50,200] [--broadcasts K] [--repair-rounds 20] [--seed 1] [--markdown]\n',
  );
  process.exit(2);
};
if (!sizes.every((n) => Number.isInteger(n) && n >= 1) || !(repairRounds >= 1) || !(hopMs > 0) || !(repairFanout === undefined || (Number.isInteger(repairFanout) && repairFanout >= 1))) usage();
if (!attackerCounts.every((k) => Number.isInteger(k) && k >= 1) || (args.eclipse && sizes.some((n) => n < 2))) usage();
const chosen = args.mixes?.split(',');
if (chosen?.some((key) => !MIX_KEYS.includes(key))) usage();

const say = (s = '') => process.stdout.write(s + '\n');
const started = Date.now();
const random = rng(Number(args.seed));
const pct = (x: number) => `${(x * 100).toFixed(x < 1 && x > 0.9999 ? 3 : 2)} %`;

if (args.eclipse) eclipse();
else {
  say(
    `Repair interval ${repairRounds} rounds (${repairRounds * hopMs} ms at ${hopMs} ms a hop); seed ${args.seed}. ` +
      'Coverage: honest live nodes reached, worst broadcast; frames and bytes: mean per broadcast; hops and latency: worst broadcast (latency p50: median broadcast).',
  );
}
for (const n of args.eclipse ? [] : sizes) {
  // The four mixes at every size; frozen relays and churn cost as much again at 100 000, so by default only up to 10 000.
  const keys = chosen ?? MIX_KEYS.filter((key) => n <= 10_000 || !['frozen', 'churn'].includes(key));
  const mixes = FAULT_MIXES.filter((m) => keys.includes(m.key));
  const broadcasts = Number(args.broadcasts ?? (n <= 10_000 ? 10 : 1));
  const D = degreeBound(n);
  const maxOutbound = Number(args['max-outbound'] ?? DEFAULTS.maxOutbound);
  say();
  say(`### ${n.toLocaleString('en')} nodes, maxPeers = D = ${D}, maxOutbound ${maxOutbound}, repair fanout ${repairFanout ?? DEFAULTS.broadcastRepairFanout}, ${broadcasts} broadcast(s) per mix`);
  say();
  const rows = new Map<string, string[][]>();
  const routing: string[][] = [];
  const topologies: string[] = [];
  const run = (net: SimNet, mix: FaultMix) => {
    const results = runMix(net, mix, { broadcasts, strategies: ['raintree', 'gossip'], random, repairRounds, hopMs, repairFanout });
    const out: string[][] = [];
    for (const [strategy, rs] of results) {
      const s = summarise(rs);
      out.push(row(mix, strategy === 'raintree' ? 'RainTree + repair' : 'gossip', s, n));
      if (strategy === 'raintree') routing.push([mix.name, ...[s.proxied, s.unrouted, s.misrouted, s.tooManyArcs, s.lost].map((x) => x.toFixed(1))]);
    }
    rows.set(mix.key, out);
  };
  const settle = (net: SimNet, what: (viewFraction: string) => string) => {
    const t0 = Date.now();
    const rounds = net.settle();
    const s = net.stats();
    topologies.push(
      `${what(pct(s.viewFraction))}: degree mean ${s.meanDegree.toFixed(1)}, max ${s.maxDegree}; ` +
        `${pct(s.uncovered)} of ${s.needs.toFixed(1)} cover needs per node without a connection; ` +
        `${rounds} peer-exchange rounds to settle (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
  };
  // One network with full views serves the mixes that leave it as it is; its views then shrink to 90 %
  // (cheaper at 100 000 nodes than a second network from nothing); churn, which changes it, gets its own.
  const fixed = mixes.filter((m) => m.viewFraction === 1 && m.churn === 0);
  const views = mixes.filter((m) => m.viewFraction < 1);
  const churn = mixes.filter((m) => m.churn > 0);
  if (fixed.length + views.length > 0) {
    const net = new SimNet(n, random, { maxOutbound });
    settle(net, () => 'full views');
    for (const mix of fixed) run(net, mix);
    for (const mix of views) {
      net.narrowViews(mix.viewFraction);
      settle(net, (fraction) => `then ${fraction} views`);
      run(net, mix);
    }
  }
  for (const mix of churn) {
    const net = new SimNet(n, random, { maxOutbound });
    settle(net, () => 'full views, for churn');
    run(net, mix);
  }
  for (const line of topologies) say(`- ${line}`);
  say();
  table(
    ['faults', 'strategy', 'coverage', 'by tree alone', 'data frames', '÷ N', 'repair frames', 'IHAVE / IWANT frames', 'control bytes', 'max hops', 'latency p50 / max', 'duplicates'],
    mixes.flatMap((m) => rows.get(m.key) ?? []),
  );
  say();
  say('RainTree routing, mean per broadcast: arcs handed to a proxy, left unrouted, dropped by a proxy that could not route them, copies past 8 arcs (not forwarded), frames to crashed nodes.');
  say();
  routing.sort((a, b) => mixes.findIndex((m) => m.name === a[0]) - mixes.findIndex((m) => m.name === b[0]));
  table(['faults', 'proxied', 'unrouted', 'misrouted', 'too many arcs', 'lost'], routing);
}
say();
say(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);

/**
 * Issue 22, item 3: for each size, one settled network at the node's default limits (maxPeers 50, maxOutbound 24) and a
 * victim per attacker count and variant (src/sim/eclipse.ts), each attacked at once by its own ground ids for 10
 * peer-exchange intervals; then honest broadcasts, every victim watched in each.
 */
function eclipse(): void {
  say(
    `Eclipse at the node's default limits (maxPeers ${DEFAULTS.maxPeers}, maxOutbound ${DEFAULTS.maxOutbound}, maxInbound ${DEFAULTS.maxInbound}); ` +
      `repair interval ${repairRounds} rounds (${repairRounds * hopMs} ms at ${hopMs} ms a hop); seed ${args.seed}. ` +
      "Attackers are ids ground into the victim V's thirds (round robin) that dial V every peer-exchange interval, relay nothing, " +
      'and announce every broadcast to V first without serving it. Ids: anywhere in each third (as test/net/eclipse.spec.ts), or just after ' +
      "V's cover there. Address: whether they announce one V could dial (then one at V's facing rank is its own choice). " +
      "Share: attackers among V's connections after 10 intervals, and the most at the end of any interval. " +
      `Admission "off": maxInboundPerThird = maxInbound, the node's switch that turns the inbound share and the per-third limit off.`,
  );
  const variants: Array<Omit<EclipseAttack, 'attackers'>> = [
    {},
    { maxInboundPerThird: DEFAULTS.maxInbound },
    { placement: 'cover' },
    { announce: true },
    { placement: 'cover', announce: true },
  ];
  for (const n of sizes) {
    const broadcasts = Number(args.broadcasts ?? 20);
    const attacks = attackerCounts.flatMap((attackers) => variants.map((v) => ({ attackers, ...v })));
    const t0 = Date.now();
    const results = simulateEclipse({ nodes: n, attacks, random, broadcasts, repairRounds, hopMs });
    say();
    say(`### ${n.toLocaleString('en')} nodes, ${broadcasts} honest broadcasts (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    say();
    table(
      [
        'attackers',
        'ids',
        'address',
        'admission',
        "V's links before / after",
        'attackers among them (V dialed / its choice)',
        'share (end / most)',
        'attacker dials refused',
        'V delivered',
        'by tree',
        'within 1 / 2 intervals',
        'latest (rounds)',
      ],
      results.map((r) => [
        String(r.attackers),
        r.placement === 'cover' ? "next to V's covers" : 'in its thirds',
        r.announce ? 'yes' : 'no',
        r.maxInboundPerThird >= r.maxInbound ? 'off' : 'on',
        `${r.degreeBefore} / ${r.degree}`,
        `${r.attackerLinks} (${r.attackersDialed} / ${r.attackersChosen})`,
        `${r.share.toFixed(2)} / ${r.maxShare.toFixed(2)}`,
        String(r.refused),
        `${r.delivered} / ${r.broadcasts}`,
        String(r.byTree),
        `${r.withinOne} / ${r.withinTwo}`,
        r.latestRound < 0 ? 'missed one' : String(r.latestRound),
      ]),
    );
  }
}

function row(mix: FaultMix, strategy: string, s: SimSummary, n: number): string[] {
  return [
    mix.name,
    strategy,
    pct(s.coverage),
    pct(s.treeCoverage),
    s.dataFrames.toFixed(0),
    (s.dataFrames / n).toFixed(2),
    s.repairFrames.toFixed(0),
    `${s.ihaveFrames.toFixed(0)} / ${s.iwantFrames.toFixed(0)}`,
    bytes(s.controlBytes),
    String(s.maxHops),
    `${s.latencyP50} / ${s.latencyMax}`,
    s.duplicates.toFixed(0),
  ];
}

function bytes(b: number): string {
  if (b >= 1024 * 1024) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(0)} KiB`;
  return `${b.toFixed(0)} B`;
}

function table(header: string[], rows: string[][]): void {
  if (args.markdown) {
    say(`| ${header.join(' | ')} |`);
    say(`|${header.map(() => '---').join('|')}|`);
    for (const r of rows) say(`| ${r.join(' | ')} |`);
    return;
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || header[i] === 'strategy' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  say(line(header));
  for (const r of rows) say(line(r));
}
