// `npm run simulate:directory`: one node's directory of handlers filled with the signed records of N nodes
// (docs/directory.md, Memory): heap after GC before and after, record and frame sizes, lookup time, and the
// bytes a node receives a minute when 1 % of nodes join or leave a minute. Run with --expose-gc (the script does).
import { parseArgs } from 'node:util';
import { directoryTraffic, fillDirectory } from 'nestjs-p2p/sim';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100000' },
    patterns: { type: 'string', default: '10' },
    distinct: { type: 'string', default: '1000' },
    zipf: { type: 'string', default: '0' },
    churn: { type: 'string', default: '0.01' },
    'sim-nodes': { type: 'string', default: '3000' },
  },
});
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc\n');
  process.exit(2);
}
const heap = () => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};
const arrays = () => process.memoryUsage().arrayBuffers;
const MiB = 1024 * 1024;
const nodes = Number(args.nodes);
const before = heap();
const arraysBefore = arrays();
const fill = fillDirectory({ nodes, patternsPerNode: Number(args.patterns), distinctPatterns: Number(args.distinct), zipf: Number(args.zipf) });
const after = heap();
const arraysAfter = arrays();
// Lookups: an exact subject and a wildcard one.
const subjects = [fill.sample, 'svc9.anything'];
const found = subjects.map((s) => fill.lookup(s));
const t = performance.now();
const LOOKUPS = 2000;
for (let i = 0; i < LOOKUPS; i++) fill.lookup(subjects[i % 2]!);
const lookupUs = ((performance.now() - t) * 1000) / LOOKUPS;
const say = (s: string) => process.stdout.write(s + '\n');
say(`directory of handlers: ${nodes} nodes, ${args.patterns} patterns each out of ${args.distinct} (zipf ${args.zipf})`);
say(`  records held ${fill.records}, distinct patterns ${fill.patterns}`);
say(`  heap after GC: ${(before / MiB).toFixed(1)} MiB before, ${(after / MiB).toFixed(1)} MiB after: ${((after - before) / MiB).toFixed(1)} MiB of JS heap for the directory (${((after - before) / nodes).toFixed(0)} B a record)`);
say(`  typed-array backing stores (outside the JS heap): ${((arraysAfter - arraysBefore) / MiB).toFixed(1)} MiB (${((arraysAfter - arraysBefore) / nodes).toFixed(0)} B a record)`);
say(`  directory in all: ${((after - before + arraysAfter - arraysBefore) / MiB).toFixed(1)} MiB (${((after - before + arraysAfter - arraysBefore) / nodes).toFixed(0)} B a node)`);
say(`  record ${fill.recordBytes.toFixed(0)} B on the wire, ${fill.frameBytes.toFixed(0)} B as a network-broadcast frame body; sign ${((fill.signMs * 1000) / nodes).toFixed(0)} us, judge (decode + verify + store) ${((fill.judgeMs * 1000) / nodes).toFixed(0)} us a record`);
say(`  lookup: ${lookupUs.toFixed(1)} us (handlers found: ${found.join(', ')})`);
const sweepMs = fill.sweep();
say(`  expiry sweep of all ${fill.records} records at once: ${sweepMs.toFixed(0)} ms`);
const traffic = directoryTraffic({ nodes, churn: Number(args.churn), recordBytes: fill.recordBytes, simNodes: Number(args['sim-nodes']) });
const KiB = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
say(`  bytes a node receives a minute, ${(Number(args.churn) * 100).toFixed(1)} % of ${nodes} nodes joining or leaving a minute (RainTree + repair measured on ${args['sim-nodes']} simulated nodes: ${traffic.framesPerNode.toFixed(2)} data frames and ${traffic.repairBytesPerNode.toFixed(0)} B of IHAVE/IWANT a node a broadcast, median ${traffic.latencyRounds.toFixed(1)} hops; degree ${traffic.degree.toFixed(1)}):`);
say(`    churn's records (${traffic.churnRecords.toFixed(0)} a minute, broadcast): ${KiB(traffic.bytes.churn)}`);
say(`    re-publishing (${traffic.refreshRecords.toFixed(0)} a minute): ${KiB(traffic.bytes.refresh)}`);
say(`    periodic digests: ${KiB(traffic.bytes.digests)}; digests of the connections churn opens: ${KiB(traffic.bytes.connectDigests)}`);
say(`    joiners' full pulls (averaged over all nodes): ${KiB(traffic.bytes.joins)}`);
say(`    pages of buckets differing while updates are in flight (model): ${KiB(traffic.bytes.inFlightPages)}`);
say(`    in all: ${KiB(traffic.total)} a minute (${(traffic.total / 60 / 1024).toFixed(1)} KiB/s); without the in-flight pages: ${KiB(traffic.total - traffic.bytes.inFlightPages)}`);
