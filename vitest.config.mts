import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Makes the real XFS/ext4/tmpfs filesystems (loop devices, root only)
    // once per run; see test/setup/filesystems.ts.
    globalSetup: ['test/setup/filesystems.ts'],
    // The default report, then one plain summary line for CI logs.
    reporters: ['default', './test/setup/summary-reporter.ts'],
    pool: 'forks',
    // Test files share those mounts and the machine's few loop devices.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Unmounting may have to wait for busy mounts.
    teardownTimeout: 120_000,
  },
});
