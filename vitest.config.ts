// Three test tiers (see README): unit (plain TS, no GPU), gpu (kernels on Dawn in Node), e2e (built app in Chromium).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          // Dawn is a native addon: run in a child process, one file at a time (SwiftShader uses every core), all in
          // the same process so that the files share one device and its compiled pipelines (gpu-context.ts).
          pool: 'forks',
          fileParallelism: false,
          isolate: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
