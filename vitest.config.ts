// Tests live in test/. Files named *.slow.test.ts are the slow scenarios (multi-process, Redis restarts);
// `npm test` runs everything, `npm run test:fast` leaves the slow ones out.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    exclude: process.env.HEARTH_FAST_TESTS ? ['test/**/*.slow.test.ts', 'node_modules/**'] : ['node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
