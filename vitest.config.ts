import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC keeps emitDecoratorMetadata, which Nest's DI needs (esbuild drops it).
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['test/**/*.spec.ts'],
    // Network-namespace tests need root: `npm run test:netns`. The soak takes 2 minutes: `npm run test:soak`.
    exclude: ['test/netns/**', 'test/soak/**', 'node_modules/**'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    setupFiles: ['reflect-metadata'],
  },
});
