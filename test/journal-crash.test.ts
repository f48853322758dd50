// Journals under SIMULATED crashes (test/helpers/crash-io.ts, after SQLite's
// crash VFS; not kernel results): a workload over three files (blocking and
// async calls, two concurrent commits sharing a batch, rewrites of a page, an
// async commit larger than the 4 MiB batch area, a truncate, a close) runs
// until the machine "crashes" at its k-th write, sync or truncate; the
// interrupted write is torn (0, 512 or 4096 bytes of it land), any subset of
// the writes since each file's last sync is lost; then the journal is opened
// again (replay) and every page of every file must be a version written in
// full (each page carries its own CRC32C; the journal adds none) and every
// acknowledged call's pages at least as new as that call. Crashes during that
// recovery are tried too. The control writes the same pages straight to the
// files under the same faults and must show torn pages.
import { describe, expect, it } from 'vitest';
import { isWholePage, journalPage } from './helpers/journal-pages.mjs';
import { openJournalWith, openJournalSyncWith, type JournalStrategy } from '../dist/journal/journal.js';
import type { PageIo, StackFacts } from '../dist/page-io.js';
import { SimCrash, SimDisk, type Tear } from './helpers/crash-io';

// 64 KiB pages: a 512 B or 4 KiB tear is a torn page, and the 4 MiB area takes 63 copies a batch
// (a header page and 63 copies), so a commit larger than a batch stays small enough to crash everywhere.
const P = 65536;
const JOURNAL = '/sim/journal';
const FILES = ['/sim/a', '/sim/b', '/sim/c'];
const A = 0;
const B = 1;
const C = 2;
/** Pages of the big commit (call 4): 70 take two batches; the full exploration uses a few. */
const BIG = 70;
const FEW = 6;

// A device with 4..64 KiB hardware atomic writes: 'atomic' is allowed; 'doublewrite' is asked for by name.
const STACK: StackFacts = {
  fsType: 'ext4',
  info: {
    supported: true,
    unitMin: 4096,
    unitMax: 65536,
    unitMaxOpt: 0,
    segmentsMax: 1,
    dioMemAlign: 512,
    dioOffsetAlign: 512,
    blockSize: 4096,
  },
  device: null,
};

/** A page that names its file, index and version, filled with a pattern, its CRC32C in the last 4 bytes. */
const pages = new Map<string, Buffer>();
function page(file: number, index: number, version: number): Buffer {
  const key = `${file}/${index}/${version}`;
  let b = pages.get(key);
  if (!b) pages.set(key, (b = makePage(file, index, version)));
  return b;
}

function makePage(file: number, index: number, version: number): Buffer {
  return journalPage(P, file, index, version);
}

type Write = [file: number, index: number];
/**
 * The workload's calls, version = index + 1, in the order they are made: what each writes (a
 * truncate's cut pages count as written with zeros) and how it is made durable. 2 and 3 run
 * concurrently (both rewrite a/1: 3 must win); 4 is larger than a batch.
 */
const calls = (big: number): { writes: Write[]; cut?: Write[] }[] => [
  {
    writes: [
      [A, 0],
      [A, 1],
      [A, 2],
      [B, 0],
    ],
  }, // 1: blocking, commitSync
  {
    writes: [
      [A, 1],
      [C, 0],
    ],
  }, // 2: async, commit, concurrently with 3
  {
    writes: [
      [A, 1],
      [B, 3],
    ],
  }, // 3
  { writes: [...Array.from({ length: big }, (_, i): Write => [B, i]), [A, 0]] }, // 4: async, > one batch if big
  {
    writes: [
      [C, 1],
      [A, 2],
    ],
  }, // 5: blocking, then truncate (6) commits them
  { writes: [], cut: [[C, 1]] }, // 6: c truncated to one page
  {
    writes: [
      [A, 1],
      [C, 2],
    ],
  }, // 7: async, acknowledged by close()
];

/** The I/O a journal-less writer does: in place, plain writes, a datasync per file at each commit. */
class Direct {
  ios = new Map<number, PageIo>();
  dirty = new Set<number>();
  constructor(private disk: SimDisk) {}
  async write(file: number, index: number, version: number) {
    let io = this.ios.get(file);
    if (!io) {
      io = await this.disk.system.open(FILES[file], true, 'yes').async();
      this.ios.set(file, io);
    }
    await io.write([{ buffer: page(file, index, version), position: index * P }], false, false).async();
    this.dirty.add(file);
  }
  async commit() {
    for (const file of this.dirty) await this.ios.get(file)!.datasync().async();
    this.dirty.clear();
  }
}

type Mode = JournalStrategy | 'none';

/** Runs the workload on `disk` until it ends or crashes; returns the versions (call index + 1) acknowledged. */
async function workload(
  disk: SimDisk,
  mode: Mode,
  big: number,
  marks?: { big: [number, number] },
): Promise<Set<number>> {
  const CALLS = calls(big);
  // A call that resolves after the crash (it had no I/O left to fail) was never acknowledged: nothing runs after a power loss.
  const acks = new Set<number>();
  const acked = { add: (v: number) => (disk.crashed ? acks : acks.add(v)) };
  try {
    if (mode === 'none') {
      const d = new Direct(disk);
      for (const [c, call] of CALLS.entries()) {
        const start = disk.ops;
        for (const [file, index] of call.writes) await d.write(file, index, c + 1);
        if (call.cut) await d.ios.get(C)!.truncate(P).async();
        if (c === 1) continue; // 2 and 3 are made durable together
        await d.commit();
        acked.add(c + 1);
        if (c === 2) acked.add(2);
        if (c === 3 && marks) marks.big = [start, disk.ops];
      }
      return acks;
    }
    const options = { pageSize: P, strategy: mode };
    const j = openJournalSyncWith(disk.system, JOURNAL, options);
    const f = FILES.map((p) => j.openFileSync(p, 'w+'));
    const write = (c: number) =>
      Promise.all(CALLS[c].writes.map(([file, index]) => f[file].writePage(page(file, index, c + 1), index * P)));
    // 1: blocking.
    for (const [file, index] of CALLS[0].writes) f[file].writePageSync(page(file, index, 1), index * P);
    j.commitSync();
    acked.add(1);
    // 2 and 3: concurrent async commits (group commit).
    const together = [1, 2].map(async (c) => {
      await write(c);
      await j.commit();
      acked.add(c + 1);
    });
    for (const outcome of await Promise.allSettled(together)) if (outcome.status === 'rejected') throw outcome.reason;
    // 4: larger than a batch.
    const start = disk.ops;
    await write(3);
    await j.commit();
    acked.add(4);
    if (marks) marks.big = [start, disk.ops];
    // 5 blocking, 6: the truncate commits them first.
    for (const [file, index] of CALLS[4].writes) f[file].writePageSync(page(file, index, 5), index * P);
    await f[C].truncate(P);
    acked.add(5);
    acked.add(6);
    // 7: async, made durable by close.
    await write(6);
    await j.close();
    acked.add(7);
  } catch (err) {
    if (!(err instanceof SimCrash)) throw err;
  }
  return acks;
}

interface Outcome {
  states: number;
  torn: number;
  replayed: number;
  discarded: number;
}

/** The versions a page may hold: from the newest acknowledged call that wrote it on, or any (or 0) if none. */
function allowed(file: number, index: number, acked: Set<number>, big: number): number[] {
  const versions = calls(big).flatMap((call, i) =>
    [...call.writes, ...(call.cut ?? [])].some(([f, x]) => f === file && x === index) ? [i + 1] : [],
  );
  const ackedVersions = versions.filter((v) => acked.has(v));
  return ackedVersions.length > 0
    ? versions.filter((v) => v >= ackedVersions[ackedVersions.length - 1])
    : [0, ...versions];
}

const CUT = new Set(calls(0).flatMap((call, i) => (call.cut ? [i + 1] : [])));

/** Opens the crashed disk (replay), then checks every page of every file on the disk itself. */
async function check(disk: SimDisk, mode: Mode, big: number, acked: Set<number>, outcome: Outcome): Promise<void> {
  if (mode !== 'none') {
    const j = await openJournalWith(disk.system, JOURNAL, { pageSize: P, strategy: mode });
    outcome.replayed += j.recovery.pagesReplayed;
    outcome.discarded += j.recovery.batchesDiscarded;
    await j.close();
  }
  for (const [file, name] of FILES.entries()) {
    const sim = disk.files.get(name);
    const count = file === B ? big : 3;
    const got = Buffer.alloc(P);
    for (let index = 0; index < count; index++) {
      if (sim) sim.read(got, index * P);
      else got.fill(0);
      const ok = allowed(file, index, acked, big);
      let version: number;
      if (got.equals(Buffer.alloc(P))) version = ok.find((v) => v === 0 || CUT.has(v)) ?? 0;
      else {
        version = got.readUInt32LE(8);
        const whole = isWholePage(got) && got.equals(page(file, index, version));
        if (!whole) {
          outcome.torn++;
          if (mode === 'none') continue;
        }
        expect(whole, `${name} page ${index} is a whole version`).toBe(true);
      }
      if (mode !== 'none')
        expect(ok, `${name} page ${index}: version ${version}, acked ${[...acked]}`).toContain(version);
    }
  }
}

/** Subsets of n pending writes to keep: all of them up to 2^4, else a fixed sample (smaller when `few`). */
function subsets(n: number, few = false): ((i: number) => boolean)[] {
  if (n <= 4) return Array.from({ length: 2 ** n }, (_, mask) => (i: number) => ((mask >> i) & 1) === 1);
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const masks = Array.from({ length: few ? 0 : 4 }, () => Array.from({ length: n }, () => random() < 0.5));
  return [() => true, () => false, (i) => i % 2 === 0, (i) => i % 2 === 1, ...masks.map((m) => (i: number) => m[i])];
}

/**
 * Crash points: every one, or (`sampled`, for the big commit) every one outside the big commit's
 * run of in-place writes and, inside it, its ends, the second batch's start and every 8th.
 */
function crashPoints(total: number, big: [number, number], sampled: boolean): number[] {
  const second = big[0] + 66; // journal write + sync, 63 in-place writes, a sync: the second batch
  return Array.from({ length: total }, (_, k) => k).filter(
    (k) => !sampled || k < big[0] + 6 || k >= big[1] - 12 || Math.abs(k - second) <= 4 || (k - big[0]) % 8 === 0,
  );
}

async function explore(
  mode: Mode,
  { big = FEW, crashDuringRecovery = false, tears = [0, 512, 4096] as Tear[] } = {},
): Promise<Outcome> {
  const counting = new SimDisk(STACK);
  const marks = { big: [0, 0] as [number, number] };
  expect((await workload(counting, mode, big, marks)).size).toBe(calls(big).length);
  const outcome: Outcome = { states: 0, torn: 0, replayed: 0, discarded: 0 };
  const sampled = big > FEW;
  for (const k of crashPoints(counting.ops, marks.big, sampled)) {
    for (const tear of tears) {
      const disk = new SimDisk(STACK, k, tear);
      const acked = await workload(disk, mode, big);
      for (const keep of subsets(disk.pending.length, sampled || crashDuringRecovery)) {
        outcome.states++;
        if (!crashDuringRecovery) {
          await check(disk.afterCrash(keep), mode, big, acked, outcome);
          continue;
        }
        // Count the recovery's own operations, then crash it at each of them (torn at 512 B).
        const before = disk.afterCrash(keep);
        const j = await openJournalWith(before.system, JOURNAL, { pageSize: P, strategy: mode as JournalStrategy });
        const replays = j.recovery.batchesReplayed;
        await j.close();
        if (replays === 0) continue;
        for (let r = 0; r < before.ops; r++) {
          const again = disk.afterCrash(keep, r, 512);
          await openJournalWith(again.system, JOURNAL, { pageSize: P, strategy: mode as JournalStrategy }).then(
            (jj) => jj.close(),
            (err) => {
              if (!(err instanceof SimCrash)) throw err;
            },
          );
          for (const keep2 of [() => true, () => false])
            await check(again.afterCrash(keep2), mode, big, acked, outcome);
        }
      }
    }
  }
  return outcome;
}

describe('journals under simulated crashes (SimDisk: not kernel results)', () => {
  it('the workload is what it says: a commit split in two batches, the truncate and close acknowledged', async () => {
    const disk = new SimDisk(STACK);
    const marks = { big: [0, 0] as [number, number] };
    expect([...(await workload(disk, 'doublewrite', BIG, marks))].sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // The big commit: two journal writes and syncs, its in-place writes, a sync per file and batch.
    expect(marks.big[1] - marks.big[0]).toBeGreaterThan(BIG + 4);
    const j = await openJournalWith(disk.system, JOURNAL, { pageSize: P, strategy: 'doublewrite' });
    expect(j.recovery).toEqual({ batchesReplayed: 0, pagesReplayed: 0, batchesDiscarded: 0 });
    const c = await j.openFile(FILES[C], 'r');
    expect(c.size()).toBe(3 * P); // cut to one page, then page 2 written again
    await j.close();
  });

  it('doublewrite: every crash point, torn 0/512/4096, lost writes: every page whole, every ack kept', async () => {
    const outcome = await explore('doublewrite');
    expect(outcome.torn).toBe(0);
    // The harness has teeth: recovery had torn or lost home pages to write again, and torn batches to discard.
    expect(outcome.replayed).toBeGreaterThan(0);
    expect(outcome.discarded).toBeGreaterThan(0);
    expect(outcome.states).toBeGreaterThan(300);
  }, 120_000);

  it('doublewrite, a commit larger than a batch: crashes across both batches (sampled)', async () => {
    const outcome = await explore('doublewrite', { big: BIG, tears: [512] });
    expect(outcome.torn).toBe(0);
    expect(outcome.replayed).toBeGreaterThan(0);
    expect(outcome.discarded).toBeGreaterThan(0);
  }, 120_000);

  it('doublewrite: a crash during recovery is recovered by the next open', async () => {
    const outcome = await explore('doublewrite', { crashDuringRecovery: true, tears: [512] });
    expect(outcome.torn).toBe(0);
    expect(outcome.replayed).toBeGreaterThan(0);
  }, 120_000);

  it('atomic: untorn writes in place need no copy: every page whole, every ack kept', async () => {
    const outcome = await explore('atomic');
    expect(outcome.torn).toBe(0);
  }, 120_000);

  it('control: the same writes straight to the files, under the same faults, leave torn pages', async () => {
    const outcome = await explore('none');
    expect(outcome.torn).toBeGreaterThan(0);
  }, 120_000);
});
