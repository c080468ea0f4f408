import { describe, expect, it } from 'vitest';
import { directoryTraffic } from '../../src/sim/directory.js';

/** The simulator's directory traffic figure (docs/directory.md, Traffic), on a small network. */
describe('directoryTraffic', () => {
  it('RainTree gives about one data frame a node a broadcast; the parts add up and scale with churn', () => {
    const at = (churn: number) => directoryTraffic({ nodes: 10_000, churn, recordBytes: 351, simNodes: 300, broadcasts: 4 });
    const t = at(0.01);
    expect(t.framesPerNode).toBeGreaterThan(0.9);
    expect(t.framesPerNode).toBeLessThan(1.5);
    expect(t.churnRecords).toBe(100);
    expect(t.refreshRecords).toBe(1000);
    expect(t.total).toBeCloseTo(Object.values(t.bytes).reduce((a, b) => a + b, 0), 6);
    // 100 records a minute at ≈ 531 B a frame, plus repair.
    expect(t.bytes.churn / 1024).toBeGreaterThan(50);
    expect(t.bytes.churn / 1024).toBeLessThan(100);
    expect(at(0.02).bytes.churn).toBeCloseTo(2 * t.bytes.churn, 0);
  });
});
