// The io_uring engine itself, seen from outside, in child processes
// (test/workers/engine-child.mjs) on the xfs4k fixture: async calls really go
// through the ring (strace shows io_uring_enter and no pwritev2 on any
// thread), a refused io_uring_setup (strace's fault injection, standing in for
// Docker's seccomp) falls back to the thread pool or, when asked for, is an
// error; the ring leaks nothing; workers have their own rings, also when
// terminated mid-batch; an idle ring never keeps a process alive.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeFs, fixture, tempPath } from './helpers/filesystems';

const CHILD = path.join(__dirname, 'workers', 'engine-child.mjs');
const ringWanted = process.env.UNTORN_IO_ENGINE !== 'threadpool';

function hasStrace(): boolean {
  return spawnSync('strace', ['-V']).status === 0;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs a child scenario, optionally under strace (argv before node), with extra environment. */
function child(
  scenario: string,
  options: { strace?: string[]; env?: Record<string, string>; timeout?: number } = {},
): Run {
  const file = tempPath(fixture('xfs4k'), `engine-${scenario}`);
  const node = [process.execPath, '--expose-gc', CHILD, scenario, file];
  const [cmd, ...args] = options.strace ? ['strace', ...options.strace, ...node] : node;
  const env = { ...process.env, ...options.env };
  if (!options.env?.UNTORN_IO_ENGINE) delete env.UNTORN_IO_ENGINE;
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: options.timeout ?? 60_000 });
  execFileSync('sh', ['-c', `rm -f '${file}'*`]);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let json: any = null;
  try {
    json = JSON.parse(line);
  } catch {
    // left null: the assertions below say what the child printed instead
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

describe.runIf(ringWanted)('the io_uring engine (UNTORN_IO_ENGINE=threadpool runs skip this file)', () => {
  describeFs('in child processes on XFS', () => {
    it('ioEngine() says io_uring here, with the setup flags in force', () => {
      const r = child('writes');
      expect(r.status, r.stderr).toBe(0);
      expect(r.json.engine.name).toBe('io_uring');
      expect(r.json.engine.reason).toMatch(/setup flags [A-Z_|]+/);
      expect(r.json.counts).toEqual([16384, 16384, 16384, 16384]);
      expect(r.json.batch).toEqual([16384, 16384, 16384]);
      expect(r.json.seed).toBe(6);
    });

    it('async writes, reads and syncs go through io_uring_enter: no pwritev2, preadv2 or fdatasync on any thread', () => {
      if (!hasStrace()) {
        if (process.env.CI) throw new Error('strace is missing: .ci/run installs it');
        console.warn('untorn: strace not installed, the ring-usage test cannot run');
        return;
      }
      const log = tempPath(fixture('tmpfs'), 'strace');
      const r = child('writes', {
        strace: [
          '-f',
          '-qq',
          '-o',
          log,
          '-e',
          'trace=pwritev2,pwrite64,preadv2,fdatasync,fsync,io_uring_setup,io_uring_enter',
        ],
      });
      expect(r.status, r.stderr).toBe(0);
      const calls = execFileSync('sh', ['-c', `cat '${log}'; rm -f '${log}'`], { encoding: 'utf8' });
      const count = (name: string) => (calls.match(new RegExp(`\\b${name}\\(`, 'g')) ?? []).length;
      expect(count('io_uring_setup')).toBeGreaterThanOrEqual(1);
      expect(count('io_uring_enter')).toBeGreaterThan(0);
      for (const sys of ['pwritev2', 'pwrite64', 'preadv2', 'fdatasync', 'fsync'])
        expect(count(sys), `${sys} in\n${calls}`).toBe(0);
      // The child issues 4 writes in one turn of the event loop, then a batch of 3: each group
      // goes down in one io_uring_enter (to_submit 4, then 3).
      expect(calls).toMatch(/io_uring_enter\(\d+, 4, 0, [^)]*\) = 4/);
      expect(calls).toMatch(/io_uring_enter\(\d+, 3, 0, [^)]*\) = 3/);
    });

    it('io_uring_setup refused (EPERM, as under Docker): the thread pool takes over, and says why', () => {
      if (!hasStrace()) {
        if (process.env.CI) throw new Error('strace is missing: .ci/run installs it');
        console.warn('untorn: strace not installed, the fallback test cannot run');
        return;
      }
      const r = child('writes', {
        strace: ['-f', '-qq', '-o', '/dev/null', '-e', 'inject=io_uring_setup:error=EPERM'],
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.json.engine.name).toBe('threadpool');
      expect(r.json.engine.reason).toMatch(/io_uring_setup failed with EPERM/);
      expect(r.json.counts).toEqual([16384, 16384, 16384, 16384]);
      expect(r.json.batch).toEqual([16384, 16384, 16384]);
      expect(r.json.seed).toBe(6);
    });

    it('UNTORN_IO_ENGINE=io_uring makes a refused ring an error, not a fallback', () => {
      if (!hasStrace()) {
        if (process.env.CI) throw new Error('strace is missing: .ci/run installs it');
        return;
      }
      const r = child('writes', {
        strace: ['-f', '-qq', '-o', '/dev/null', '-e', 'inject=io_uring_setup:error=EPERM'],
        env: { UNTORN_IO_ENGINE: 'io_uring' },
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/EPERM: operation not permitted, io_uring_setup/);
    });

    it('UNTORN_IO_ENGINE=threadpool forces the pool; another value is refused', () => {
      const pool = child('writes', { env: { UNTORN_IO_ENGINE: 'threadpool' } });
      expect(pool.status, pool.stderr).toBe(0);
      expect(pool.json.engine).toEqual({
        name: 'threadpool',
        reason: expect.stringMatching(/^UNTORN_IO_ENGINE=threadpool/),
      });
      const bad = child('writes', { env: { UNTORN_IO_ENGINE: 'uring' } });
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/ERR_INVALID_ARG_VALUE|UNTORN_IO_ENGINE/);
    });

    it('process.exit() with a batch in flight exits cleanly', () => {
      const r = child('exit');
      expect(r.status, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ engine: { name: 'io_uring' }, exiting: true });
      expect(r.stderr).toBe('');
    });

    it('a batch nobody awaits keeps the process alive until it has completed', () => {
      const file = tempPath(fixture('xfs4k'), 'engine-linger');
      const r = spawnSync(process.execPath, [CHILD, 'linger', file], { encoding: 'utf8', timeout: 60_000 });
      const size = execFileSync('stat', ['-c', '%s', file], { encoding: 'utf8' }).trim();
      execFileSync('rm', ['-f', file]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toMatchObject({ engine: { name: 'io_uring' }, written: 256 });
      expect(Number(size)).toBe(256 * 16384);
    });

    it('a process with an idle ring exits on its own', () => {
      const r = child('idle', { timeout: 20_000 });
      expect(r.status, `timed out or failed: ${r.stderr}`).toBe(0);
      expect(r.json.engine.name).toBe('io_uring');
      expect(r.json.rings).toBe(1);
    });

    it('writes at depth 64 (50,000, then 40,000 measured) leak no descriptor, ring or memory', () => {
      const r = child('leak');
      expect(r.status, r.stderr).toBe(0);
      const { before, after } = r.json;
      expect(after.fds).toBe(before.fds);
      expect(after.rings).toBe(1);
      // Measured here: about 0.3 MB of growth. A leak of even 100 bytes a write would be 4 MB.
      expect(after.rss - before.rss).toBeLessThan(2 * 1024 * 1024);
    });

    it('worker_threads get their own rings; a worker terminated mid-batch takes its ring with it', () => {
      const r = child('workers');
      expect(r.status, r.stderr).toBe(0);
      for (const w of r.json.results) {
        expect(w.engine.name).toBe('io_uring');
        expect(w.counts).toEqual([16384, 16384, 16384]);
        // The main thread's ring and this worker's (the other may be running too).
        expect(w.rings).toBeGreaterThanOrEqual(2);
      }
      expect(r.json.doomedEngine.engine.name).toBe('io_uring');
      expect(r.json.exitCode).toBe(1);
      expect(r.json.main.batch).toEqual([16384, 16384, 16384]);
      // Every worker's ring is closed: only the main thread's is left.
      expect(r.json.after.rings).toBe(1);
    });
  });
});
