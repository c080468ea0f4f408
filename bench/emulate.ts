// `npm run emulate -- [--nodes 30]` (root only): an emulated multi-host network. N node processes,
// each in its own network namespace with its own address on one bridge, each started knowing only
// a seed; measures peer-exchange settling, broadcast coverage, propagation (p50/p99 to the last
// node) and frames per broadcast, then SIGKILLs 10 % of the nodes and SIGSTOPs another 10 % mid-run
// and measures again (bench/lib/emulation.ts). Exits 1 if a phase's coverage is below 100 %, a node
// got a broadcast twice, or the healthy phase took more than 1.3 × N data frames per broadcast.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { EMULATION_DEFAULTS, emulationUnavailable, formatEmulation, runEmulation } from './lib/emulation.js';

const d = EMULATION_DEFAULTS;
const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: String(d.nodes) },
    broadcasts: { type: 'string', default: String(d.broadcasts) },
    seed: { type: 'string', default: String(d.seed) },
    'spacing-ms': { type: 'string', default: String(d.spacingMs) },
    'pex-ms': { type: 'string', default: String(d.pexIntervalMs) },
    'repair-ms': { type: 'string', default: String(d.repairIntervalMs) },
    rate: { type: 'string' },
    'node-logs': { type: 'string' },
    markdown: { type: 'boolean', default: false },
  },
});
const nodes = Number(args.nodes);
const broadcasts = Number(args.broadcasts);
const numbers = [nodes, broadcasts, Number(args.seed), Number(args['spacing-ms']), Number(args['pex-ms']), Number(args['repair-ms'])];
if (!numbers.every(Number.isInteger) || nodes < 4 || nodes > 60_000 || broadcasts < 5 || Number(args['repair-ms']) < 1) {
  process.stderr.write('usage: npm run emulate -- [--nodes 30 (≥4)] [--broadcasts 100 (≥5)] [--seed 1] [--spacing-ms 100] [--pex-ms 500] [--repair-ms 500] [--rate 100mbit] [--node-logs DIR] [--markdown]\n');
  process.exit(2);
}
const why = emulationUnavailable();
if (why) {
  process.stdout.write(`emulate skipped: ${why}\n`);
  process.exit(0);
}

const say = (s: string) => process.stdout.write(s + '\n');
const result = await runEmulation({
  ...d,
  nodes,
  broadcasts,
  seed: Number(args.seed),
  spacingMs: Number(args['spacing-ms']),
  pexIntervalMs: Number(args['pex-ms']),
  repairIntervalMs: Number(args['repair-ms']),
  rate: args.rate,
  nodeLogDir: args['node-logs'],
  fixture: fileURLToPath(new URL('../../test/fixtures/net-node.mjs', import.meta.url)),
  log: (line) => say(`  ${line}`),
});
say('');
say(formatEmulation(result, args.markdown));
process.exit(result.failures.length === 0 ? 0 : 1);
