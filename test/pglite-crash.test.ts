// PGlite on untorn under crashes, with PostgreSQL's own recovery and checks
// as the judge (test/pglite-helpers.ts: every acknowledged transaction
// present, the sum of balances unchanged, verify_heapam and bt_index_check
// with heapallindexed clean on every table and index, data checksums on).
//
//   kill -9     a writer killed mid-workload (no fault injected).
//   torn pages  strace kills the writer at a chosen write
//               (inject=SYSCALL:signal=KILL:when=N, counted in its main
//               thread, where PGlite runs) and logs that write in full
//               (status=unfinished); the test then applies the first half
//               of it: a torn write. full_page_writes is off.
//               untorn: journaled relation pages are written in place by
//               pwritev2 (the journal's batch too); crash points are taken
//               in a checkpoint's in-place writes and at a journal batch.
//               control: the same filesystem without the journal (relation
//               pages straight to their files, pwrite64, fsync real) torn
//               the same way must show the damage, or the harness proves
//               nothing.
// The crash points are found by a first run of the same deterministic
// workload under strace without a fault.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { describeFs, fixture } from './helpers/filesystems';
import { ACCOUNTS, BALANCE, copyOfTemplate, runWorker, verify } from './pglite-helpers';

const COUNT = 60;
const EVERY = 20;
/** The checkpoint whose writes are interrupted: redo then starts at the one before it. */
const MARK = `checkpoint ${2 * EVERY}`;

interface Call {
  syscall: string;
  path: string;
  /** Inside the data directory. */
  /** Its ordinal among the main thread's calls of this syscall, from 1 (strace's when=). */
  ordinal: number;
  /** Whether it comes after MARK and before the next acknowledgement. */
  inCheckpoint: boolean;
}

const RELATION = /^(?:base\/\d+|global)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

function unescape(s: string): Buffer {
  return Buffer.from(
    s.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  );
}

/** The main thread's pwrite64 and pwritev2 calls of a fault-free run, in order. */
function calls(trace: string, dir: string): Call[] {
  const lines = trace.split('\n').filter(Boolean);
  const main = lines[0].split(' ')[0];
  const counts = new Map<string, number>();
  const out: Call[] = [];
  let inCheckpoint = false;
  for (const line of lines) {
    const m = /^(\d+) +(\w+)\((\d+)<([^>]*)>/.exec(line);
    if (!m || m[1] !== main) continue;
    const [, , syscall, , rawPath] = m;
    if (syscall === 'write') {
      const text = /, "([^"]*)"/.exec(line)?.[1] ?? '';
      const said = unescape(text).toString();
      if (said.startsWith(MARK)) inCheckpoint = true;
      else if (said.startsWith('ack')) inCheckpoint = false;
      continue;
    }
    const ordinal = (counts.get(syscall) ?? 0) + 1;
    counts.set(syscall, ordinal);
    out.push({ syscall, path: path.relative(dir, unescape(rawPath).toString()), ordinal, inCheckpoint });
  }
  return out;
}

/** The killed write from strace's status=unfinished log: path, position and data. */
function killedWrite(trace: string): { path: string; position: number; data: Buffer } {
  // status=unfinished: the only call logged is the killed one.
  const line = trace.split('\n').find((l) => /^\d+ +pwrite(?:64|v2)\(/.test(l));
  if (!line) throw new Error(`no interrupted call in the strace log: ${trace.slice(0, 200)} ... ${trace.slice(-300)}`);
  const path = unescape(/<([^>]*)>/.exec(line)![1]).toString();
  const data = unescape(/"((?:\\x[0-9a-f]{2})*)"/.exec(line)![1]);
  const position = line.includes('pwritev2(')
    ? Number(/\], \d+, (\d+), /.exec(line)![1])
    : // Ends "<unfinished ...>" or ") = ?", as strace happens to print it.
      Number(/", \d+, (\d+)(?: <unfinished|\) = \?)/.exec(line)![1]);
  return { path, position, data };
}

/** Applies the first half (whole 4 KiB sectors) of the killed write: a torn write. */
function tear(write: { path: string; position: number; data: Buffer }): void {
  const half = Math.max(4096, Math.floor(write.data.length / 2 / 4096) * 4096);
  const fd = fs.openSync(write.path, 'r+');
  try {
    fs.writeSync(fd, write.data.subarray(0, half), 0, half, write.position);
  } finally {
    fs.closeSync(fd);
  }
}

/** strace arguments for a run killed at `call` that logs just that call, with its data. */
function injection(call: Call): string[] {
  // No --seccomp-bpf: strace 6.1 then never fired the injection.
  return [
    '-y',
    '-xx',
    '-s',
    String(8 * 1024 * 1024),
    '-e',
    `trace=${call.syscall}`,
    '-e',
    'status=unfinished',
    '-e',
    `inject=${call.syscall}:signal=KILL:when=${call.ordinal}`,
  ];
}

const RECORD = ['-y', '-s', '32', '-e', 'trace=pwritev2,pwrite64,write'];

describeFs('PGlite on untorn: kill -9 mid-workload (XFS)', () => {
  it('keeps every acknowledged transaction and passes amcheck', async () => {
    const dir = await copyOfTemplate(fixture('xfs4k'), 'kill9');
    const run = await runWorker(dir, { count: 400, every: 25, killAfter: 150 });
    expect(run.signal, run.stderr).toBe('SIGKILL');
    expect(run.acked.length).toBeGreaterThanOrEqual(150);
    const v = await verify(dir, run.acked);
    expect(v).toEqual({ missing: [], balanceSum: ACCOUNTS * BALANCE, damage: [], openError: null });
  });
});

describeFs('PGlite on untorn: torn writes at injected crash points, full_page_writes off (XFS)', () => {
  let untornCalls: Call[] = [];
  let controlCalls: Call[] = [];

  beforeAll(async () => {
    for (const mode of ['untorn', 'control'] as const) {
      const dir = await copyOfTemplate(fixture('xfs4k'), `record-${mode}`);
      const run = await runWorker(dir, { mode, count: COUNT, every: EVERY, strace: RECORD });
      expect(run.code, run.stderr).toBe(0);
      if (mode === 'untorn') untornCalls = calls(run.trace, dir);
      else controlCalls = calls(run.trace, dir);
    }
  });

  /** Crashes at `call` with the write torn, then checks the directory. */
  async function crashAt(mode: 'untorn' | 'control', call: Call) {
    const dir = await copyOfTemplate(fixture('xfs4k'), `crash-${mode}`);
    const run = await runWorker(dir, { mode, count: COUNT, every: EVERY, strace: injection(call) });
    expect(run.signal ?? run.code, run.stderr).not.toBe(0);
    const killed = killedWrite(run.trace);
    // The same deterministic workload reached the same write.
    expect(path.relative(dir, killed.path)).toBe(call.path);
    tear(killed);
    return { killed, verdict: await verify(dir, run.acked), acked: run.acked.length };
  }

  it('untorn: a relation page torn in place, at two points of a checkpoint, and a torn journal batch', async () => {
    const inPlace = untornCalls.filter((c) => c.syscall === 'pwritev2' && c.inCheckpoint && RELATION.test(c.path));
    const batch = untornCalls.find((c) => c.syscall === 'pwritev2' && c.inCheckpoint && c.path === 'untorn.journal');
    expect(inPlace.length).toBeGreaterThan(10);
    expect(batch).toBeDefined();
    for (const call of [inPlace[Math.floor(inPlace.length / 3)], inPlace[inPlace.length - 2], batch!]) {
      const { verdict, acked } = await crashAt('untorn', call);
      expect(acked).toBeGreaterThanOrEqual(2 * EVERY);
      expect(verdict, `crash at ${call.syscall} #${call.ordinal} ${call.path}`).toEqual({
        missing: [],
        balanceSum: ACCOUNTS * BALANCE,
        damage: [],
        openError: null,
      });
    }
  });

  it('control (no journal): the same torn relation write is damage PostgreSQL finds', async () => {
    const inPlace = controlCalls.filter((c) => c.syscall === 'pwrite64' && c.inCheckpoint && RELATION.test(c.path));
    expect(inPlace.length).toBeGreaterThan(10);
    const call = inPlace[Math.floor(inPlace.length / 3)];
    const { verdict } = await crashAt('control', call);
    // Redo reads the torn page (checksum failure: "invalid page in block N"), or amcheck finds it.
    const found = /invalid page|checksum/.test(verdict.openError ?? '') || verdict.damage.length > 0;
    // The evidence, in the test log.
    console.info(`control: torn ${call.path} (${call.syscall} #${call.ordinal}): ${JSON.stringify(verdict)}`);
    expect(found, `control crash at ${call.path}: ${JSON.stringify(verdict)}`).toBe(true);
  });
});
