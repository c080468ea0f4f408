// `npm run emulate -- [--nodes 30]` (root only; otherwise it says why and exits 0): an emulated
// multi-host network. N node processes, each in its own network namespace with its own address on
// one bridge, each started knowing only a seed; measures how long peer exchange takes to settle,
// broadcast coverage, propagation to the last node (p50/p99) and frames per broadcast, then
// SIGKILLs 10 % of the nodes and SIGSTOPs another 10 % mid-run and measures again
// (bench/lib/emulation.ts). Exits 1 if a phase misses a live node, a node got a broadcast twice,
// or the healthy phase took more than 1.3 × N data frames per broadcast.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { EMULATION_DEFAULTS, emulationUnavailable, formatEmulation, runEmulation } from './lib/emulation.js';

const d = EMULATION_DEFAULTS;
const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: String(d.nodes) },
    broadcasts: { type: 'string', default: String(d.broadcasts) },
    'max-peers': { type: 'string', default: String(d.maxPeers) },
    seed: { type: 'string', default: String(d.seed) },
    rate: { type: 'string' },
    markdown: { type: 'boolean', default: false },
  },
});
const numbers = { nodes: Number(args.nodes), broadcasts: Number(args.broadcasts), maxPeers: Number(args['max-peers']), seed: Number(args.seed) };
if (!Object.values(numbers).every(Number.isInteger) || numbers.nodes < 10 || numbers.nodes > 250 || numbers.broadcasts < 5 || numbers.maxPeers < 2) {
  process.stderr.write('usage: npm run emulate -- [--nodes 30 (10..250)] [--broadcasts 100 (≥ 5, per phase)] [--max-peers 10] [--seed 1] [--rate 100mbit] [--markdown]\n');
  process.exit(2);
}
const why = emulationUnavailable();
if (why) {
  process.stdout.write(`npm run emulate: skipped, ${why}\n`);
  process.exit(0);
}

const result = await runEmulation({
  ...d,
  ...numbers,
  rate: args.rate,
  fixture: fileURLToPath(new URL('../../test/fixtures/core-node.mjs', import.meta.url)),
  log: (line) => process.stdout.write(`  ${line}\n`),
});
process.stdout.write(`\n${formatEmulation(result, args.markdown)}\n`);
process.exit(result.failures.length === 0 ? 0 : 1);
