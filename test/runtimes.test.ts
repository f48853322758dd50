// untorn under Bun and Deno: a smoke run (test/runtimes/smoke.cjs) of the
// public API on the XFS fixture: load, statAtomic, an AtomicFile round trip,
// a refusal, batches, the engine in use, one short bench. The binaries come
// from their npm registry packages (scripts/runtime.mjs, cached); where the
// registry cannot be reached the tests are skipped with the reason, and with
// UNTORN_REQUIRE_RUNTIMES=1 (as in CI) that is a failure.
//
// Neither runtime has a libuv loop for the io_uring engine's eventfd, so
// both must report the thread pool, with that reason.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFs, fixture } from './helpers/filesystems';
import { RUNTIMES } from '../scripts/runtime.mjs';

const root = path.resolve(__dirname, '..');
const smoke = path.join(root, 'test', 'runtimes', 'smoke.cjs');

function fetchRuntime(name: 'bun' | 'deno'): { bin: string } | { reason: string } {
  try {
    return {
      bin: execFileSync(process.execPath, [path.join(root, 'scripts', 'runtime.mjs'), name], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 240_000,
      }).trim(),
    };
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
    if (process.env.UNTORN_REQUIRE_RUNTIMES === '1')
      throw new Error(`untorn: ${name} required (UNTORN_REQUIRE_RUNTIMES=1): ${stderr}`, { cause: err });
    process.stderr.write(`untorn: skipping the ${name} tests: ${stderr}\n`);
    return { reason: stderr };
  }
}

const commands = {
  bun: (bin: string) => [bin, smoke],
  deno: (bin: string) => [bin, 'run', '--allow-all', '--quiet', smoke],
};

for (const name of ['bun', 'deno'] as const) {
  const got = fetchRuntime(name);
  ('bin' in got ? describe : describe.skip)(`${name} ${RUNTIMES[name].version}`, () => {
    describeFs('smoke run on XFS', () => {
      let result: Record<string, any>;
      it('runs the smoke script', () => {
        const [bin, ...args] = commands[name]((got as { bin: string }).bin);
        const out = execFileSync(bin, [...args, root, fixture('xfs4k').dir], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 120_000,
          env: { ...process.env, DENO_NO_UPDATE_CHECK: '1' },
        });
        result = JSON.parse(out);
        expect(result.error).toBeUndefined();
        expect(result.runtime).toBe(`${name} ${RUNTIMES[name].version}`);
      });

      it('loads the addon and reads the atomic limits', () => {
        expect(result.addon).toEqual([path.join(root, 'build', 'Release', 'untorn.node')]);
        expect(result.info).toMatchObject({ supported: true, unitMin: 4096, dioMemAlign: 512 });
      });

      it('writes a page atomically and reads it back; refuses a 12 KiB one', () => {
        expect(result.writeAtomic).toBe(16384);
        expect(result.read).toBe(16384);
        expect(result.roundTrip).toBe(true);
        expect(result.refusal).toEqual({ name: 'AtomicWriteError', code: 'ERR_ATOMIC_LENGTH' });
      });

      it('runs batches (writeAtomicBatch, writeBatch, readBatch)', () => {
        expect(result.writeAtomicBatch).toEqual([16384, 16384, 16384, 16384]);
        expect(result.writeBatch).toEqual([16384, 16384, 16384, 16384]);
        expect(result.readBatch).toEqual(Array(8).fill(16384));
        expect(result.batchRoundTrip).toBe(true);
      });

      it('uses the thread pool, saying why', () => {
        const runtime = name === 'bun' ? 'Bun' : 'Deno';
        expect(result.ioEngine).toEqual({
          name: 'threadpool',
          reason: expect.stringMatching(new RegExp(`^${runtime} has no libuv event loop`)),
        });
      });

      it('runs a short bench of all three strategies', () => {
        expect(result.bench.strategies).toEqual(['atomic', 'doublewrite', 'unprotected']);
        for (const rate of result.bench.pagesPerSec) expect(rate).toBeGreaterThan(0);
        expect(typeof result.bench.verdict).toBe('string');
      });
    });
  });
}
