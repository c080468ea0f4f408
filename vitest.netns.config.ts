import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// `npm run test:netns`: the tests that build network namespaces (root only; they skip otherwise).
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['test/netns/**/*.spec.ts'],
    pool: 'forks',
    // One file at a time: the partition test times a pong timeout, the emulation loads every core.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['reflect-metadata'],
  },
});
