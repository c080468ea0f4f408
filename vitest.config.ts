import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * Specs that keep a core busy (many node processes, floods, simulations) or that measure rates
 * against a node's budgets: they run after the others, one file at a time, as they were written to.
 * Every other spec mostly waits on sockets and timers, so two of them run at once (three took as
 * long: they share 2 cores). Running the first kind in one process (isolate: false) saved no CI time
 * either: the later files ran slower by what the start-ups saved.
 */
const ALONE = [
  'test/net/sparse-mesh.spec.ts',
  'test/net/faulty-relays.spec.ts',
  'test/net/default-formation.spec.ts',
  'test/net/review-topic-memory.spec.ts',
  'test/net/review-request-sybils.spec.ts',
  'test/net/review-subscriber-sybils.spec.ts',
  'test/net/review22-formation-eclipse.spec.ts',
  'test/net/throwaway-keys.spec.ts',
  'test/net/broadcast-trust.spec.ts',
  'test/net/ping-flood.spec.ts',
];
/**
 * Specs that measure against budgets or timers like the ones above but mostly wait (measured alone, 2026-12-08: 0.3-0.5
 * of a core over their run): two at a time, after the shared ones, never beside a busy one (the 'alone' group comes last).
 * The RainTree simulation is one process on one core that measures no time: it runs beside them, leaving them the other.
 */
const PAIRED = [
  'test/core/raintree-sim.spec.ts',
  'test/net/review22-netgroup-evict.spec.ts',
  'test/net/review22-first-hop.spec.ts',
  'test/net/repair-hostile.spec.ts',
  'test/net/review22-ping-stall.spec.ts',
  'test/net/cache-full.spec.ts',
];

// SWC keeps emitDecoratorMetadata, which Nest's DI needs (esbuild drops it).
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    // Network-namespace tests need root: `npm run test:netns`. The soak takes 2 minutes: `npm run test:soak`.
    exclude: ['test/netns/**', 'test/soak/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    setupFiles: ['reflect-metadata'],
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.spec.ts'], exclude: [...ALONE, ...PAIRED], maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'paired', include: PAIRED, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 2 } } },
    ],
  },
});
