import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// `npm run test:soak`: the soak's short mode (bench/soak.ts --ci, about 2 minutes), on its own: it
// loads both cores, so nothing runs beside it.
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['test/soak/**/*.spec.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 60_000,
  },
});
