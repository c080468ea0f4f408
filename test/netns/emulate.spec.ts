import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EMULATION_DEFAULTS, emulationUnavailable, formatEmulation, runEmulation } from '../../bench/lib/emulation.js';

/**
 * `npm run test:netns` (root only): the emulated multi-host network of `npm run emulate`
 * (bench/lib/emulation.ts) at 30 nodes and 50 broadcasts a phase. Each node process has
 * its own network namespace and address on one bridge and starts knowing only a seed. The
 * topology must settle; every broadcast must reach every survivor exactly once, healthy, with
 * 10 % of the nodes SIGKILLed (the seed among them) and 10 % SIGSTOPped mid-run, and after the
 * survivors have dropped those; healthy, at most 1.3 × N data frames a broadcast.
 */
const NODES = 30;
const skipReason = emulationUnavailable();
if (skipReason) process.stdout.write(`netns emulation test skipped: ${skipReason}\n`);

describe.skipIf(skipReason !== undefined)('emulated network of 30 nodes in network namespaces', () => {
  it('settles, and reaches every survivor exactly once: healthy, with 10 % killed and 10 % frozen mid-run, and after', async () => {
    const result = await runEmulation({
      ...EMULATION_DEFAULTS,
      nodes: NODES,
      broadcasts: 50,
      prefix: 'p2pemt', // not the script's p2pemu: the two may run at once
      net: 214,
      fixture: fileURLToPath(new URL('../fixtures/net-node.mjs', import.meta.url)),
      log: (line) => process.stdout.write(`  ${line}\n`),
    });
    process.stdout.write(`\n${formatEmulation(result)}\n`);
    expect(result.settle.settled).toBe(true);
    expect(result.recovery?.settled).toBe(true);
    expect(result.phases.map((p) => p.name)).toEqual(['healthy', 'faults', 'after']);
    for (const phase of result.phases) {
      expect({ phase: phase.name, broadcasts: phase.broadcasts, coverage: phase.coverage, missed: phase.missed, extra: phase.extraDeliveries }).toEqual({
        phase: phase.name,
        broadcasts: 50,
        coverage: 1,
        missed: [],
        extra: 0,
      });
    }
    expect(result.phases[0]!.targets).toBe(NODES);
    expect(result.phases[1]!.targets).toBe(NODES - 6);
    expect(result.phases[0]!.perBroadcast.dataFrames).toBeLessThanOrEqual(1.3 * NODES);
    expect(result.failures).toEqual([]);
  }, 300_000);
});
