// `untorn bench` on the real fixtures: short runs whose reports must hold
// together (same pages written by every strategy, doublewrite's device bytes
// about twice unprotected's, the syncs each strategy owes), refusals that
// leave nothing behind, and the CLI's exit codes, JSON, chart and Ctrl-C.
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { bench, statAtomic, type BenchOptions, type BenchReport, type StrategyResult } from '../dist/index.js';
import { describeFs, fixture, tempPath, type Fixture } from './helpers/filesystems';

const CLI = path.resolve(__dirname, '../dist/cli/main.js');
const execFileAsync = promisify(execFile);

// Small enough to be quick, big enough for the device counters to mean something.
const SHORT: BenchOptions = { pages: 256, batch: 16, writes: 320, rounds: 2 };

const byStrategy = (report: BenchReport) =>
  Object.fromEntries(report.results.map((r) => [r.strategy, r])) as Record<string, StrategyResult>;

/** What is in a directory, so a test can show a run left nothing there. */
const listing = (dir: string) => fs.readdirSync(dir).sort();

/** A fresh empty directory on the fixture, removed after the test file. */
const made: string[] = [];
function freshDir(fx: Fixture): string {
  const dir = tempPath(fx, 'bench');
  fs.mkdirSync(dir);
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...options.env },
      uid: options.uid,
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | null; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : null, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A refusal as the CLI must give it: one line on stderr (plus a usage hint for exit 2), no stack trace. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stdout).toBe('');
  expect(result.stderr).not.toMatch(/\n\s+at /);
  const lines = result.stderr.trim().split('\n');
  expect(lines.length).toBeLessThanOrEqual(code === 2 ? 2 : 1);
  expect(lines[0]).toMatch(/^untorn bench: /);
  expect(lines[0]).toMatch(pattern);
}

function mounts(): string {
  return fs.readFileSync('/proc/self/mounts', 'utf8');
}

describeFs('bench on XFS (software atomic path)', () => {
  let report: BenchReport;
  let dir: string;
  let before: string[];

  beforeAll(async () => {
    dir = freshDir(fixture('xfs4k'));
    before = listing(dir);
    report = await bench({ ...SHORT, dir });
  });

  it('describes the stack it measured', async () => {
    const fx = fixture('xfs4k');
    expect(report.stack.filesystem).toBe('xfs');
    expect(report.stack.mountPoint).toBe(fx.dir);
    expect(report.stack.kernel).toBe(os.release());
    const file = tempPath(fx, 'statx');
    fs.writeFileSync(file, '');
    expect(report.stack.statx).toEqual(await statAtomic(file));
    fs.rmSync(file);
    expect(report.stack.blockDevice?.device).toBe(path.basename(fx.device!));
    expect(report.stack.counterDevice).toBe(path.basename(fx.device!));
    expect(report.stack.atomicPath).toBe('software');
    expect(report.config).toMatchObject({
      pageSize: 16384,
      batch: 16,
      depth: 1,
      sync: 'batch',
      pattern: 'random',
      pages: 256,
    });
  });

  it('runs all three strategies over the same pages in the same order', () => {
    expect(report.results.map((r) => r.strategy)).toEqual(['atomic', 'doublewrite', 'unprotected']);
    const digests = new Set(report.results.map((r) => r.pagesDigest));
    expect(digests.size).toBe(1);
    for (const r of report.results) expect(r.pagesWritten).toBe(320);
  });

  it('reports figures that hold together', () => {
    for (const r of report.results) {
      expect(r.pagesPerSec).toBeGreaterThan(0);
      expect(r.pagesPerSecRange.min).toBeLessThanOrEqual(r.pagesPerSec);
      expect(r.pagesPerSecRange.max).toBeGreaterThanOrEqual(r.pagesPerSec);
      expect(r.mibPerSec).toBeCloseTo((r.pagesPerSec * 16384) / 2 ** 20, 6);
      expect(r.latencyUs.p50).toBeGreaterThan(0);
      expect(r.latencyUs.p50).toBeLessThanOrEqual(r.latencyUs.p99);
      expect(r.latencyUs.p99).toBeLessThanOrEqual(r.latencyUs.p999);
      // A batch is 16 page writes and a sync: longer than its median page.
      expect(r.batchLatencyUs.p50).toBeGreaterThan(r.latencyUs.p50);
      expect(r.vsUnprotected).not.toBeNull();
    }
    const u = byStrategy(report).unprotected;
    expect(u.vsUnprotected).toEqual({
      pagesPerSec: 1,
      mibPerSec: 1,
      latencyP50: 1,
      latencyP99: 1,
      latencyP999: 1,
      batchLatencyP50: 1,
      batchLatencyP99: 1,
      batchLatencyP999: 1,
      deviceBytesPerPage: 1,
      flushesPerPage: 1,
      deviceFlushesPerPage: 1,
    });
    const a = byStrategy(report).atomic;
    expect(a.vsUnprotected!.pagesPerSec).toBeCloseTo(a.pagesPerSec / u.pagesPerSec, 9);
  });

  it('counts the syncs each strategy owes: one per batch, two for doublewrite', () => {
    const r = byStrategy(report);
    expect(r.atomic.flushesPerPage).toBeCloseTo(1 / 16, 9);
    expect(r.unprotected.flushesPerPage).toBeCloseTo(1 / 16, 9);
    expect(r.doublewrite.flushesPerPage).toBeCloseTo(2 / 16, 9);
  });

  it('reads from the block device that doublewrite writes about twice what unprotected does', () => {
    const r = byStrategy(report);
    const page = 16384;
    // Unprotected: the page itself, plus little (an fdatasync of an
    // overwrite with no metadata change writes no log).
    expect(r.unprotected.deviceBytesPerPage!).toBeGreaterThanOrEqual(page);
    expect(r.unprotected.deviceBytesPerPage!).toBeLessThan(1.5 * page);
    expect(r.doublewrite.deviceBytesPerPage!).toBeGreaterThanOrEqual(2 * page);
    expect(r.doublewrite.deviceBytesPerPage! / r.unprotected.deviceBytesPerPage!).toBeGreaterThan(1.7);
    expect(r.doublewrite.deviceBytesPerPage! / r.unprotected.deviceBytesPerPage!).toBeLessThan(2.5);
    // Copy-on-write: the new blocks plus the log that remaps them.
    expect(r.atomic.deviceBytesPerPage!).toBeGreaterThan(page);
    expect(r.atomic.deviceFlushesPerPage!).toBeGreaterThan(0);
  });

  it('says in one line what it found, and leaves nothing behind', () => {
    expect(report.verdict).toMatch(/double-write/);
    expect(report.verdict).not.toMatch(/\n/);
    expect(listing(dir)).toEqual(before);
  });
});

describeFs('bench settings', () => {
  it('with writes in flight (depth 4) and RWF_DSYNC on every write', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const report = await bench({ ...SHORT, dir, depth: 4, sync: 'page' });
    const r = byStrategy(report);
    expect(new Set(report.results.map((x) => x.pagesDigest)).size).toBe(1);
    expect(r.atomic.flushesPerPage).toBe(1);
    expect(r.unprotected.flushesPerPage).toBe(1);
    // Every in-place copy and one doublewrite copy per batch.
    expect(r.doublewrite.flushesPerPage).toBeCloseTo(1 + 1 / 16, 9);
    expect(listing(dir)).toEqual([]);
  });

  it('runs on the engine in use and reports the depth it really reached', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const report = await bench({ ...SHORT, dir, depth: 4 });
    const pool = process.env.UNTORN_IO_ENGINE === 'threadpool';
    expect(report.engine.name).toBe(pool ? 'threadpool' : 'io_uring');
    expect(report.engine.threads).toBe(pool ? 4 : null);
    // Engine batches of 4: the ring counts exactly 4 in flight; 4 pool threads can run them all at once.
    for (const r of report.results) {
      if (pool) expect(r.depthReached).toBeGreaterThanOrEqual(2);
      else expect(r.depthReached).toBe(4);
      expect(r.depthReached).toBeLessThanOrEqual(4);
    }
    const sync = await bench({ ...SHORT, dir, strategies: ['unprotected'] });
    expect(sync.results[0].depthReached).toBe(1);
  });

  it('writes through a page file with --strategies pagefile, as a deployment would', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const report = await bench({ ...SHORT, dir, strategies: ['pagefile', 'doublewrite'] });
    const { pagefile, doublewrite } = byStrategy(report);
    expect(pagefile.pageFile).toEqual({
      strategy: 'doublewrite',
      reason: expect.stringMatching(/slower than double-write: pages are double-written/),
    });
    expect(pagefile.pagesWritten).toBe(320);
    // The same pages in the same order; verified through readPage afterwards (the run would fail otherwise).
    expect(pagefile.pagesDigest).toBe(doublewrite.pagesDigest);
    expect(pagefile.flushesPerPage).toBeCloseTo(2 / 16);
    expect(pagefile.deviceBytesPerPage).toBeGreaterThan(1.5 * 4096 * 4);
    expect(report.notes.join('\n')).toMatch(/^pagefile: strategy doublewrite: .*--depth and --sync do not apply/m);
    expect(listing(dir)).toEqual([]);
    const text = await cli([
      'bench',
      dir,
      '--strategies',
      'pagefile',
      '--pages',
      '256',
      '--batch',
      '16',
      '--writes',
      '64',
      '--rounds',
      '1',
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^pagefile \(doublewrite\)\s+1\s/m);
  });

  it('writes through a journal with --strategies journal, blocking at depth 1 and async above', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const report = await bench({ ...SHORT, dir, strategies: ['journal', 'doublewrite'] });
    const { journal, doublewrite } = byStrategy(report);
    expect(journal.journal).toEqual({
      strategy: 'doublewrite',
      reason: expect.stringMatching(/slower than double-write: pages are double-written/),
    });
    expect(journal.pageFile).toBeUndefined();
    expect(journal.pagesWritten).toBe(320);
    expect(journal.depthReached).toBe(1);
    // The same pages in the same order; read back through the journal afterwards (the run would fail otherwise).
    expect(journal.pagesDigest).toBe(doublewrite.pagesDigest);
    // The journal's fdatasync, then the file's: what raw doublewrite owes, and the same bytes to the device.
    expect(journal.flushesPerPage).toBeCloseTo(2 / 16);
    expect(journal.deviceBytesPerPage).toBeGreaterThan(1.5 * 4096 * 4);
    expect(report.notes.join('\n')).toMatch(/^journal: strategy doublewrite: .*--sync does not apply/m);
    expect(listing(dir)).toEqual([]);

    const async = await bench({ ...SHORT, dir, depth: 4, strategies: ['doublewrite', 'journal'] });
    const r = byStrategy(async);
    expect(r.journal.pagesWritten).toBe(320);
    expect(r.journal.pagesDigest).toBe(r.doublewrite.pagesDigest);
    expect(r.journal.flushesPerPage).toBeCloseTo(2 / 16);
    expect(r.journal.depthReached).toBeGreaterThanOrEqual(1);
    expect(listing(dir)).toEqual([]);

    const text = await cli([
      'bench',
      dir,
      '--strategies',
      'journal',
      '--pages',
      '256',
      '--batch',
      '16',
      '--writes',
      '64',
      '--rounds',
      '1',
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^journal \(doublewrite\)\s+1\s/m);
    expect(listing(dir)).toEqual([]);
  });

  it('writes sequential pages and runs for a duration', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const report = await bench({
      dir,
      pages: 256,
      batch: 16,
      pattern: 'sequential',
      duration: 0.6,
      rounds: 3,
      strategies: ['unprotected', 'atomic'],
    });
    expect(report.results.map((r) => r.strategy)).toEqual(['unprotected', 'atomic']);
    for (const r of report.results) expect(r.pagesWritten).toBeGreaterThanOrEqual(16 * 3);
    expect(report.config).toMatchObject({ duration: 0.6, writes: null, pattern: 'sequential' });
    expect(report.verdict).toMatch(/unprotected/);
  });

  it('uses the 16K-block XFS at its own minimum, and leaves atomic out for a page below it', async () => {
    const fx = fixture('xfs16k');
    const dir = freshDir(fx);
    const report = await bench({ ...SHORT, dir, strategies: ['atomic'] });
    expect(report.stack.statx.unitMin).toBe(16384);
    expect(report.results[0].pagesWritten).toBe(320);
    // Issue 15: a page size the stack cannot write atomically leaves atomic
    // out, with the reason, as where atomic writes are unsupported...
    const report4k = await bench({ ...SHORT, dir, pageSize: 4096 });
    expect(report4k.stack.atomicPath).toBe('none');
    expect(report4k.results.map((r) => r.strategy)).toEqual(['doublewrite', 'unprotected']);
    expect(report4k.notes.join(' ')).toMatch(/atomic left out: .*4096-byte pages.*16384 and/);
    // ...and is an error only where atomic was asked for by name.
    const err = await bench({ ...SHORT, dir, pageSize: 4096, strategies: ['atomic'] }).catch((e) => e);
    expect(err.code).toBe('ERR_ATOMIC_LENGTH');
    expect(err.message).toMatch(/4096-byte pages/);
    expect(err.message).toMatch(/16384 and/);
    expect(listing(dir)).toEqual([]);
  });

  it('refuses bad settings before touching the disk', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const cases: [BenchOptions, string][] = [
      [{ pageSize: 12288 }, 'ERR_OUT_OF_RANGE'],
      [{ pageSize: 256 }, 'ERR_OUT_OF_RANGE'],
      [{ batch: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ pages: 8, batch: 16 }, 'ERR_OUT_OF_RANGE'],
      [{ depth: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ sync: 'never' as never }, 'ERR_INVALID_ARG_VALUE'],
      [{ strategies: ['atomic', 'atomic'] }, 'ERR_INVALID_ARG_VALUE'],
      [{ strategies: [] }, 'ERR_INVALID_ARG_VALUE'],
      [{ writes: 10, duration: 1 }, 'ERR_INVALID_ARG_VALUE'],
      [{ pages: '4' as never }, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [options, code] of cases) {
      const err = await bench({ ...options, dir }).catch((e) => e);
      expect(err?.code, JSON.stringify(options)).toBe(code);
    }
    expect(listing(dir)).toEqual([]);
  });

  it('stops at once when aborted, removing its files', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const controller = new AbortController();
    const reason = new Error('stop');
    const err = await bench({
      ...SHORT,
      dir,
      writes: 100_000,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'warmup') controller.abort(reason);
      },
    }).catch((e) => e);
    expect(err).toBe(reason);
    expect(listing(dir)).toEqual([]);
  });
});

describeFs('bench where atomic writes are unsupported', () => {
  it('compares the other two on ext4 and says why atomic is missing', async () => {
    const fx = fixture('ext4');
    const dir = freshDir(fx);
    const report = await bench({ ...SHORT, dir });
    expect(report.stack.filesystem).toBe('ext4');
    expect(report.stack.atomicPath).toBe('none');
    expect(report.results.map((r) => r.strategy)).toEqual(['doublewrite', 'unprotected']);
    expect(report.notes.join(' ')).toMatch(/atomic left out: .*STATX_ATTR_WRITE_ATOMIC/);
    expect(report.verdict).toMatch(/unsupported/);
    const r = byStrategy(report);
    expect(r.doublewrite.deviceBytesPerPage! / r.unprotected.deviceBytesPerPage!).toBeGreaterThan(1.5);
    expect(listing(dir)).toEqual([]);
  });

  it('writes through a journal on ext4, which double-writes there', async () => {
    const dir = freshDir(fixture('ext4'));
    const report = await bench({ ...SHORT, dir, strategies: ['journal', 'unprotected'] });
    const { journal, unprotected } = byStrategy(report);
    expect(journal.journal).toEqual({
      strategy: 'doublewrite',
      reason: expect.stringMatching(/cannot write atomically here/),
    });
    expect(journal.pagesDigest).toBe(unprotected.pagesDigest);
    expect(journal.deviceBytesPerPage! / unprotected.deviceBytesPerPage!).toBeGreaterThan(1.5);
    expect(listing(dir)).toEqual([]);
  });

  it('refuses atomic on ext4 when asked for it by name', async () => {
    const dir = freshDir(fixture('ext4'));
    const err = await bench({ ...SHORT, dir, strategies: ['atomic', 'unprotected'] }).catch((e) => e);
    expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
    expect(listing(dir)).toEqual([]);
  });

  it('runs on tmpfs without device counters, and says so', async () => {
    const dir = freshDir(fixture('tmpfs'));
    const report = await bench({ ...SHORT, dir });
    expect(report.stack.blockDevice).toBeNull();
    expect(report.stack.counterDevice).toBeNull();
    for (const r of report.results) {
      expect(r.deviceBytesPerPage).toBeNull();
      expect(r.deviceFlushesPerPage).toBeNull();
    }
    expect(report.notes.join(' ')).toMatch(/no block device/);
  });

  it('says there is no space before writing anything', async () => {
    const dir = freshDir(fixture('ext4'));
    // 3 files of 20000 16K pages: about 940 MiB on a 256 MiB filesystem.
    const err = await bench({ ...SHORT, dir, pages: 20_000 }).catch((e) => e);
    expect(err.code).toBe('ENOSPC');
    expect(err.message).toMatch(/not enough space .* MiB/);
    expect(listing(dir)).toEqual([]);
  });
});

describeFs('untorn bench (CLI)', () => {
  const args = ['--pages', '256', '--batch', '16', '--writes', '160', '--rounds', '2'];

  it('prints one JSON document with --json and writes the chart with --svg', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const svg = path.join(freshDir(fixture('tmpfs')), 'chart.svg');
    const result = await cli(['bench', dir, ...args, '--json', '--svg', svg]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as BenchReport;
    expect(Object.keys(report).sort()).toEqual(['config', 'engine', 'notes', 'results', 'stack', 'verdict']);
    expect(report.results.map((r) => r.strategy)).toEqual(['atomic', 'doublewrite', 'unprotected']);
    for (const r of report.results) {
      for (const key of ['strategy', 'pagesPerSec', 'mibPerSec', 'latencyUs', 'deviceBytesPerPage', 'flushesPerPage']) {
        expect(r).toHaveProperty(key);
      }
    }
    const chart = fs.readFileSync(svg, 'utf8');
    expect(chart).toMatch(/^(<\?xml[^>]*>\s*)?<svg /);
    for (const s of ['atomic', 'doublewrite', 'unprotected']) expect(chart).toContain(s);
    expect(listing(dir)).toEqual([]);
  });

  it('sizes the thread pool for --depth before any async call, --svg or not', async () => {
    // The bug this guards against: --svg's stat started libuv's pool with 4
    // threads before UV_THREADPOOL_SIZE was set, so --depth 8 ran 4 at a time.
    const dir = freshDir(fixture('xfs4k'));
    const svg = path.join(freshDir(fixture('tmpfs')), 'chart.svg');
    const env = { UNTORN_IO_ENGINE: 'threadpool', UV_THREADPOOL_SIZE: undefined };
    const result = await cli(
      [
        'bench',
        dir,
        '--pages',
        '256',
        '--batch',
        '64',
        '--writes',
        '640',
        '--rounds',
        '2',
        '--depth',
        '8',
        '--strategies',
        'unprotected',
        '--json',
        '--svg',
        svg,
      ],
      { env },
    );
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as BenchReport;
    expect(report.engine).toMatchObject({ name: 'threadpool', threads: 8 });
    // Counted on the pool threads themselves: more than 4 at once needs more than 4 threads.
    expect(report.results[0].depthReached).toBeGreaterThan(4);
    expect(report.notes.join(' ')).not.toMatch(/only \d+ writes run at once/);
  });

  it('prints a readable report ending in the verdict', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const result = await cli(['bench', dir, ...args]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/filesystem\s+xfs on /);
    expect(result.stdout).toMatch(/atomic path\s+software for 16 KiB pages/);
    expect(result.stdout).toMatch(/^atomic\s+\d/m);
    // One fdatasync per 16-page batch; doublewrite syncs its copy too.
    expect(result.stdout).toMatch(/^unprotected\s.*\s1\/16\s/m);
    expect(result.stdout).toMatch(/^doublewrite\s.*\s1\/8\s/m);
    expect(result.stdout).toMatch(/^vs unprotected\s+pages\/s/m);
    expect(result.stdout).toMatch(/^verdict: .*double-write/m);
    // No progress line when stderr is not a terminal.
    expect(result.stderr).toBe('');
  });

  it('refuses bad usage with exit 2', async () => {
    const dir = fixture('xfs4k').dir;
    expectOneLineError(await cli(['bench', dir, '--frobnicate']), 2, /--frobnicate/);
    expectOneLineError(await cli(['bench', dir, '--page-size', '12288']), 2, /--page-size/);
    expectOneLineError(await cli(['bench', dir, '--page-size', 'big']), 2, /--page-size/);
    expectOneLineError(await cli(['bench', dir, '--sync', 'never']), 2, /--sync/);
    expectOneLineError(await cli(['bench', dir, '--strategies', 'atomic,fast']), 2, /--strategies/);
    expectOneLineError(await cli(['bench', dir, '--writes', '10', '--duration', '1']), 2, /not both/);
    expectOneLineError(await cli(['bench', dir, '--scratch']), 2, /not both/);
    expectOneLineError(await cli(['bench', dir, dir]), 2, /one DIR/);
    expectOneLineError(await cli(['bench', dir, '--svg', '/nonexistent/dir/c.svg']), 2, /does not exist/);
  });

  it('fails a run with exit 1: missing, unwritable, unsupported page size, no space', async () => {
    expectOneLineError(await cli(['bench', '/nonexistent/untorn', ...args]), 1, /\/nonexistent\/untorn does not exist/);
    const file = path.join(freshDir(fixture('tmpfs')), 'plain-file');
    fs.writeFileSync(file, 'x');
    expectOneLineError(await cli(['bench', file, ...args]), 1, /is not a directory/);
    // Root may write anywhere; as nobody the directory really is unwritable.
    const locked = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-locked-'));
    made.push(locked);
    fs.chmodSync(locked, 0o755);
    expectOneLineError(await cli(['bench', locked, ...args], { uid: 65534 }), 1, /is not writable/);
    const hidden = freshDir(fixture('xfs4k'));
    expectOneLineError(await cli(['bench', hidden, ...args], { uid: 65534 }), 1, /cannot reach .*permission denied/);
    const dir16k = freshDir(fixture('xfs16k'));
    // Atomic asked for by name where the page size cannot be atomic: a failed run (left out only when not named).
    expectOneLineError(
      await cli(['bench', dir16k, ...args, '--page-size', '8k', '--strategies', 'atomic,doublewrite']),
      1,
      /cannot write 8192-byte pages atomically/,
    );
    const ext4 = freshDir(fixture('ext4'));
    expectOneLineError(await cli(['bench', ext4, ...args, '--pages', '20000']), 1, /not enough space/);
    for (const d of [locked, dir16k, ext4]) expect(listing(d)).toEqual([]);
  });

  it('--scratch needs root, and says so in one line', async () => {
    expectOneLineError(await cli(['bench', '--scratch', ...args], { uid: 65534 }), 1, /needs root/);
  });

  it('--scratch needs mkfs.xfs, and says so in one line', async () => {
    // Hide every mkfs.xfs behind a non-executable file, in a mount namespace of the child's own.
    const hide = ['/usr/sbin/mkfs.xfs', '/sbin/mkfs.xfs', '/usr/bin/mkfs.xfs', '/bin/mkfs.xfs']
      .map((p) => `[ -e ${p} ] && mount --bind /dev/null ${p};`)
      .join(' ');
    const script = `${hide} exec "$0" "$@"`;
    try {
      const { stdout, stderr } = await execFileAsync('unshare', [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        process.execPath,
        CLI,
        'bench',
        '--scratch',
        ...args,
      ]);
      throw new Error(`expected a failure, got: ${stdout} ${stderr}`);
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      expectOneLineError({ code: e.code, stdout: e.stdout, stderr: e.stderr }, 1, /needs mkfs\.xfs: install xfsprogs/);
    }
  });

  it('keeps a progress line on stderr when it is a terminal', async () => {
    const dir = freshDir(fixture('xfs4k'));
    // script(1) gives the command a pseudo-terminal; its output is what the terminal saw.
    const command = [process.execPath, CLI, 'bench', dir, ...args].map((a) => `'${a}'`).join(' ');
    const { stdout } = await execFileAsync('script', ['-qefc', command, '/dev/null']);
    expect(stdout).toMatch(/\runtorn bench: (preparing files|warming up|measuring round \d\/2)/);
    expect(stdout).toContain('\r\x1b[K');
    expect(stdout).toMatch(/verdict: /);
    expect(listing(dir)).toEqual([]);
  });
});

describeFs('untorn bench and Ctrl-C', () => {
  it('stops a measurement of synchronous writes at once and removes its files', async () => {
    const dir = freshDir(fixture('xfs4k'));
    const child = spawn(process.execPath, [CLI, 'bench', dir, '--pages', '256', '--duration', '600'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // A child that ignores the signal must not outlive a failed test.
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    // The last file to be preallocated is unprotected's: once it is whole, the
    // writes run as synchronous calls (depth 1), warm-up or measured.
    const full = 256 * 16384;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const work = fs.readdirSync(dir).find((d) => d.startsWith('.untorn-bench-'));
      const data = work && path.join(dir, work, 'unprotected.data');
      if (data && fs.existsSync(data) && fs.statSync(data).size === full) break;
      if (Date.now() > deadline) throw new Error(`the bench never started writing; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    // Within a batch or two, not at the end of the 600 s run.
    expect(Date.now() - sent).toBeLessThan(5_000);
    expect(stderr).toMatch(/interrupted by SIGINT; temporary files removed/);
    expect(listing(dir)).toEqual([]);
  });
});

describeFs('untorn bench --scratch', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-bench-test-'));
  });
  afterAll(() => {
    // Only a failed test leaves a scratch mount behind (its child was killed): take it down.
    for (const line of mounts().split('\n')) {
      const mountPoint = line.split(' ')[1];
      if (mountPoint?.startsWith(tmp)) execFileSync('umount', ['-l', mountPoint]);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('benchmarks a temporary XFS and removes it', async () => {
    const result = await cli(
      ['bench', '--scratch', '--pages', '256', '--batch', '16', '--writes', '160', '--rounds', '2', '--json'],
      {
        env: { TMPDIR: tmp },
      },
    );
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as BenchReport;
    expect(report.stack.filesystem).toBe('xfs');
    expect(report.stack.mountPoint.startsWith(tmp)).toBe(true);
    expect(report.stack.atomicPath).toBe('software');
    expect(report.stack.statx.supported).toBe(true);
    expect(listing(tmp)).toEqual([]);
    expect(mounts()).not.toContain(tmp);
  });

  it('cleans up its mount and image on Ctrl-C', async () => {
    const child = spawn(process.execPath, [CLI, 'bench', '--scratch', '--duration', '600'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    // Interrupt once the scratch filesystem is mounted and the bench is writing to it.
    const deadline = Date.now() + 60_000;
    while (!fs.readdirSync(tmp).some((d) => hasBenchDir(path.join(tmp, d, 'mnt')))) {
      if (Date.now() > deadline) throw new Error(`the scratch filesystem never appeared; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted by SIGINT/);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(mounts()).not.toContain(tmp);
    expect(listing(tmp)).toEqual([]);
  });
});

function hasBenchDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((e) => e.startsWith('.untorn-bench-'));
  } catch {
    return false;
  }
}
