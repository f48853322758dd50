// Crash points on the real kernel (XFS 4K fixture), under strace: a writer
// (test/workers/journal-strace-child.mjs; the blocking API, and the async one
// with UNTORN_IO_ENGINE=threadpool so that its writes are syscalls strace can
// count) is killed with SIGKILL on entering its N-th pwritev2 or fdatasync
// (strace -e inject=...:signal=KILL:when=N; strace counts per thread, so for
// the async writer N is per thread pool thread), for every N over its writes (the
// journal's header, area, batches and the in-place writes) and a sample of
// its syncs. The killed pwritev2 never ran; the test then lands its first
// 4 KiB (or 512 B) at its offset, as a torn write would (strace names the file
// and offset, the child's side log has the data). Then openJournal replays,
// and every page of both files must be whole (its own CRC32C) and every round
// the child acknowledged there. The control, the same pages written in place
// with no journal and torn the same way, must show torn pages.
//
// Honestly: this is a process crash with a torn write, not a power loss. The
// page cache survives a kill, so what fdatasync adds is not tested here (the
// simulated crashes of test/journal-crash.test.ts lose unsynced writes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { openJournal } from '../dist/index.js';
import { isWholePage, journalPage } from './helpers/journal-pages.mjs';
import { describeFs, fixture, tempPath } from './helpers/filesystems';

const CHILD = path.join(__dirname, 'workers', 'journal-strace-child.mjs');
const P = 16384;

function page(file: number, index: number, version: number): Buffer {
  return journalPage(P, file, index, version);
}

type Mode = 'sync' | 'async' | 'none';

interface Run {
  acks: { round: number; pages: [number, number][] }[];
  done: boolean;
  killed: { path: string; offset: number } | null;
  calls: number;
}

/** Runs the writer under strace, killed at the `when`-th `syscall` (or never: when 0); tears the killed write. */
function run(dir: string, mode: Mode, syscall: 'pwritev2' | 'fdatasync', when: number, tear: number): Run {
  const log = path.join(dir, 'strace.log');
  const side = path.join(dir, 'side.log');
  fs.rmSync(side, { force: true });
  const inject = when > 0 ? ['-e', `inject=${syscall}:signal=KILL:when=${when}`] : [];
  const r = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-y',
      '-s',
      '0',
      '-o',
      log,
      '-e',
      'trace=pwritev2,fdatasync',
      ...inject,
      process.execPath,
      CHILD,
      JSON.stringify({ dir, mode, side }),
    ],
    {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, UNTORN_IO_ENGINE: 'threadpool' },
    },
  );
  const trace = fs.readFileSync(log, 'utf8');
  const calls = trace.split('\n').filter((l) => l.includes(`${syscall}(`));
  const acks = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('ack '))
    .map((l) => {
      const [, round, list] = l.split(' ');
      return { round: Number(round), pages: list.split(',').map((p) => p.split(':').map(Number) as [number, number]) };
    });
  let killed: Run['killed'] = null;
  const done = r.stdout.includes('done\n');
  if (when > 0 && syscall === 'pwritev2' && !done) {
    // The call strace killed never completed: "PID pwritev2(5</dir/a>, [...], 1, 32768, 0) = ?", or
    // (other threads in between) "PID pwritev2(5</dir/a>, [...], 1, 32768, 0 <unfinished ...>" and later
    // "PID <... pwritev2 resumed>) = ?".
    const lines = trace.split('\n');
    const end = lines.findIndex((l) => /pwritev2.*= \?\s*$/.test(l));
    expect(end, `no killed pwritev2 (#${when}, exit ${r.status}: ${r.stderr}) in\n${trace}`).toBeGreaterThanOrEqual(0);
    // strace pads the pid column ("%-5d"), so split on any run of spaces.
    const pid = lines[end].split(/\s+/)[0];
    const line = lines
      .slice(0, end + 1)
      .reverse()
      .find((l) => new RegExp(`^${pid}\\s+pwritev2\\(`).test(l));
    const m = /pwritev2\(\d+<([^>]+)>, \[.*\], \d+, (\d+)/.exec(line!);
    expect(m, line).not.toBeNull();
    killed = { path: m![1], offset: Number(m![2]) };
    // Its data, from the side log: the last entry for that file and offset.
    const entries = fs
      .readFileSync(side, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { path: string; position: number; head: string });
    const entry = entries.reverse().find((e) => e.path === killed!.path && e.position === killed!.offset);
    expect(entry, `no side-log entry for ${line}`).toBeDefined();
    const fd = fs.openSync(killed.path, 'r+');
    try {
      fs.writeSync(fd, Buffer.from(entry!.head, 'hex').subarray(0, tear), 0, tear, killed.offset);
    } finally {
      fs.closeSync(fd);
    }
  }
  if (when === 0) expect(r.status, r.stderr).toBe(0);
  return { acks, done, killed, calls: calls.length };
}

/** Opens the journal (replay), then checks every page of both files; returns how many were torn. */
async function verify(dir: string, mode: Mode, acks: Run['acks']): Promise<{ torn: number; replayed: number }> {
  let replayed = 0;
  if (mode !== 'none') {
    // A killed holder's lock can outlive it by a moment (its files are dropped after it is gone).
    for (let attempt = 0; ; attempt++) {
      try {
        const j = await openJournal(path.join(dir, 'journal'), { pageSize: P });
        replayed += j.recovery.pagesReplayed;
        await j.close();
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_JOURNAL_LOCKED' || attempt === 100) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }
  const newest = new Map<string, number>();
  for (const { round, pages } of acks) for (const [f, i] of pages) newest.set(`${f}:${i}`, round);
  let torn = 0;
  for (const [f, name] of ['a', 'b'].entries()) {
    const file = path.join(dir, name);
    const bytes = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
    for (let i = 0; i < 5; i++) {
      const got = Buffer.alloc(P);
      bytes.subarray(i * P, (i + 1) * P).copy(got);
      const zeros = got.equals(Buffer.alloc(P));
      const version = got.readUInt32LE(8);
      const whole = zeros || (isWholePage(got) && got.equals(page(f, i, version)));
      if (!whole) {
        torn++;
        continue;
      }
      const acked = newest.get(`${f}:${i}`);
      if (acked !== undefined)
        expect(zeros ? 0 : version, `${name} page ${i}: acknowledged round ${acked}`).toBeGreaterThanOrEqual(acked);
    }
  }
  return { torn, replayed };
}

function hasStrace(): boolean {
  return spawnSync('strace', ['-V']).status === 0;
}

describeFs('journals killed at their N-th pwritev2/fdatasync under strace (a process crash with a torn write)', () => {
  const explore = async (mode: Mode, tear: number) => {
    if (!hasStrace()) throw new Error('strace is missing');
    const base = tempPath(fixture('xfs4k'), `jstrace-${mode}`);
    fs.mkdirSync(base);
    try {
      const clean = path.join(base, 'clean');
      fs.mkdirSync(clean);
      const full = run(clean, mode, 'pwritev2', 0, 0);
      expect(full.done).toBe(true);
      expect(full.acks.length).toBe(4);
      const syncs = run(clean, mode, 'fdatasync', 0, 0).calls;
      const points: ['pwritev2' | 'fdatasync', number][] = [
        ...Array.from({ length: full.calls }, (_, n): ['pwritev2', number] => ['pwritev2', n + 1]),
        ...Array.from({ length: syncs }, (_, n): ['fdatasync', number] => ['fdatasync', n + 1]).filter(
          ([, n]) => n % 3 === 1,
        ),
      ];
      let torn = 0;
      let kills = 0;
      let replayed = 0;
      let killedInPlace = 0;
      for (const [syscall, when] of points) {
        const dir = path.join(base, `${syscall}-${when}`);
        fs.mkdirSync(dir);
        const r = run(dir, mode, syscall, when, tear);
        fs.rmSync(path.join(dir, 'strace.log'));
        if (r.done) {
          // strace counts calls per thread: the async writer's N-th may never come on any one thread.
          expect(mode, `${syscall} #${when}: the child was not killed`).toBe('async');
          fs.rmSync(dir, { recursive: true, force: true });
          continue;
        }
        kills++;
        if (r.killed && !r.killed.path.endsWith('journal')) killedInPlace++;
        const checked = await verify(dir, mode, r.acks);
        torn += checked.torn;
        replayed += checked.replayed;
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return { torn, kills, killedInPlace, replayed };
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  };

  it('sync API, torn at 4 KiB: every page whole after replay, every acknowledged round there', async () => {
    const outcome = await explore('sync', 4096);
    expect(outcome.killedInPlace).toBeGreaterThan(4);
    // Replay had torn home pages to write again from the journal.
    expect(outcome.replayed).toBeGreaterThan(0);
    expect(outcome.torn).toBe(0);
  }, 120_000);

  it('async API (threadpool engine), torn at 512 B: every page whole after replay, every acknowledged round there', async () => {
    const outcome = await explore('async', 512);
    // strace counts per thread: fewer distinct kills than the blocking writer's, in place among them.
    expect(outcome.kills).toBeGreaterThan(4);
    expect(outcome.killedInPlace).toBeGreaterThan(0);
    expect(outcome.torn).toBe(0);
  }, 120_000);

  it('control: the same pages written in place with no journal, torn the same way, are torn', async () => {
    const outcome = await explore('none', 4096);
    expect(outcome.torn).toBeGreaterThan(0);
  }, 120_000);
});
