import { defineConfig } from 'vitest/config';

// Two groups: fast unit tests (fakes, byte vectors) and system tests that start
// real components (the kernel in a namespace, conntrackd, keepalived). System
// tests run one file at a time: they share the host's CPU and time-sensitive
// protocol timers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          pool: 'forks',
        },
      },
    ],
  },
});
