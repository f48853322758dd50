// What test/crash.test.ts and test/crash-pagefile.test.ts share: whether the
// crash lab can run here (and, under UNTORN_REQUIRE_FS=1, a failing test
// when it cannot), and one run of `npm run crash -- --json` as a child.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs without types, shared with `npm run crash`
import { missingPrerequisites } from '../crash/lab.mjs';

const RUNNER = path.join(__dirname, '..', 'crash', 'run.mjs');
// The lab's own bound for one run (about a minute here).
export const SUITE_TIMEOUT = 170_000;
/** The seed of this run: UNTORN_CRASH_SEED redraws the same states. */
export const SEED = Number(process.env.UNTORN_CRASH_SEED ?? Date.now() % 2 ** 31);

/** Whether the lab can run; says why not, loudly: a skip where allowed, a failing test under UNTORN_REQUIRE_FS=1. */
export function crashLabReady(what: string): boolean {
  const required = process.env.UNTORN_REQUIRE_FS === '1';
  const missing: string[] = missingPrerequisites();
  if (missing.length > 0 && !required) process.stderr.write(`untorn: skipping ${what}: ${missing.join('; ')}\n`);
  describe(`${what}: prerequisites`, () => {
    it.runIf(required)('has everything the lab needs (UNTORN_REQUIRE_FS=1)', () => {
      expect(missing, `the crash lab cannot run here: ${missing.join('; ')}`).toEqual([]);
    });
  });
  return missing.length === 0;
}

/** Runs the lab on `states` states of `scenarios`; resolves to its JSON report, exit code and stderr. */
export function runCrashLab<R>(
  states: number,
  scenarios: string,
  timeout = SUITE_TIMEOUT,
): Promise<{ report: R; exitCode: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [RUNNER, '--json', '--states', String(states), '--seed', String(SEED), '--scenarios', scenarios],
      { timeout, killSignal: 'SIGINT', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const exitCode = error ? Number((error as { code?: number }).code ?? 1) : 0;
        try {
          resolve({ report: JSON.parse(stdout) as R, exitCode, stderr });
        } catch {
          reject(new Error(`crash lab produced no report (seed ${SEED}, ${error?.message ?? 'exit 0'}):\n${stderr}`));
        }
      },
    );
  });
}
