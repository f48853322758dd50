// What the crash lab's test files (test/crash*.test.ts) share: whether the
// lab can run here (and, under UNTORN_REQUIRE_FS=1, a failing test when it
// cannot), one run of `npm run crash -- --json` as a child, and the suite
// around their tests (describeCrashLab).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
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

/** The fields of the lab's JSON report that every crash-lab test file reads. */
export interface LabReport<S> {
  states: number;
  seed: number;
  statesPerMinute: number;
  recordMs: number;
  replayMs: number;
  scenarios: S[];
  failures: string[];
  keptDir: string | null;
}

/** One run of the lab, filled in before the suite's tests run. */
export interface LabRun<S extends { kind: string }, R extends LabReport<S>> {
  report: R;
  exitCode: number;
  /** The report's scenarios of one kind. */
  of(kind: S['kind']): S[];
}

/**
 * A crash-lab test file's suite: skipped loudly where the lab cannot run
 * (crashLabReady), else one run of the lab before the tests `body` declares
 * (they read `lab.report`), a line per scenario in the log, and last, the
 * runner's own verdict.
 */
export function describeCrashLab<S extends { name: string; kind: string }, R extends LabReport<S>>(
  options: {
    what: string;
    title: string;
    states: number;
    scenarios: string;
    timeout?: number;
    line: (s: S) => string;
  },
  body: (lab: LabRun<S, R>) => void,
): void {
  const ready = crashLabReady(options.what);
  const timeout = options.timeout ?? SUITE_TIMEOUT;
  describe.skipIf(!ready)(options.title, () => {
    const lab = { of: (kind) => lab.report.scenarios.filter((s) => s.kind === kind) } as LabRun<S, R>;
    beforeAll(async () => {
      Object.assign(lab, await runCrashLab<R>(options.states, options.scenarios, timeout));
      const r = lab.report;
      console.log(
        `${options.what}, seed ${r.seed} (UNTORN_CRASH_SEED=${r.seed} redraws these states), ${r.states} states at ${r.statesPerMinute}/min (recording ${Math.round(r.recordMs / 1000)} s, replay ${Math.round(r.replayMs / 1000)} s):\n${r.scenarios.map(options.line).join('\n')}`,
      );
    }, timeout + 10_000);

    body(lab);

    it("the runner's own verdict agrees: exit 0, no failures, nothing kept", () => {
      expect({ exitCode: lab.exitCode, failures: lab.report.failures, keptDir: lab.report.keptDir }).toEqual({
        exitCode: 0,
        failures: [],
        keptDir: null,
      });
    });
  });
}
