// Page files under SIMULATED crashes (test/helpers/crash-io.ts, after
// SQLite's crash VFS): a small workload is run until the machine "crashes"
// at its k-th write or sync, for every k; the interrupted write is torn (or
// not), any subset of the writes since the last sync is lost; then the file
// is opened again (recovery) and every page must read back as a version
// that was written in full, every acknowledged call's pages at least as new
// as that call. Crashes during that recovery are tried too. The control,
// 'unprotected', must show torn pages under the same faults, refused by
// readPage, never returned.
import { describe, expect, it } from 'vitest';
import { openPageFileWith, type PageFile } from '../dist/page-file/page-file.js';
import type { StackFacts } from '../dist/page-io.js';
import { SimCrash, SimDisk, type Tear } from './helpers/crash-io';

const PAGE = 4096;
const PATH = '/sim/pages';
const OPTIONS = { pageSize: PAGE, batchPages: 4 };

// XFS on a device with 4..64 KiB hardware atomic writes: 'atomic' is allowed, 'auto' would take it.
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

type Strategy = 'doublewrite' | 'atomic' | 'unprotected';

/**
 * The calls of the workload, in the order they are made: the pages each
 * writes. The second and third run concurrently (both write page 1: the
 * third must win); the last is larger than a batch.
 */
const CALLS = [
  [0, 1, 2],
  [1, 3],
  [1, 4],
  [0, 2, 4, 5, 6, 7],
];
const STEPS = [[0], [1, 2], [3]];
const PAGES = 8;

/** A payload that names its page and version and fills the page, so a mix of two is no version at all. */
function payload(page: number, version: number, size: number): Buffer {
  const b = Buffer.alloc(size, (page * 37 + version * 11 + 1) & 0xff);
  b.writeUInt32LE(page, 0);
  b.writeUInt32LE(version, 4);
  return b;
}

/** Runs the workload on `disk` until it ends or crashes; returns the versions (call index + 1) that resolved. */
async function workload(disk: SimDisk, strategy: Strategy): Promise<Set<number>> {
  const acked = new Set<number>();
  try {
    const file = await openPageFileWith(disk.system, PATH, { ...OPTIONS, strategy });
    for (const step of STEPS) {
      const calls = step.map((call) =>
        file
          .writePages(CALLS[call].map((page) => ({ page, data: payload(page, call + 1, file.payloadSize) })))
          .then(() => acked.add(call + 1)),
      );
      for (const outcome of await Promise.allSettled(calls)) if (outcome.status === 'rejected') throw outcome.reason;
    }
    await file.close();
  } catch (err) {
    if (!(err instanceof SimCrash)) throw err;
  }
  return acked;
}

interface Outcome {
  corrupt: number;
  restored: number;
  discarded: number;
}

/** Opens the crashed disk and checks every page against what the workload wrote and acknowledged. */
async function check(disk: SimDisk, strategy: Strategy, acked: Set<number>, outcome: Outcome): Promise<void> {
  const file: PageFile = await openPageFileWith(disk.system, PATH, { ...OPTIONS, strategy });
  outcome.restored += file.recovery.pagesRestored;
  outcome.discarded += file.recovery.batchesDiscarded;
  for (let page = 0; page < PAGES; page++) {
    // Versions of this page in call order; the newest acknowledged one is the oldest allowed.
    const versions = CALLS.flatMap((pages, i) => (pages.includes(page) ? [i + 1] : []));
    const ackedVersions = versions.filter((v) => acked.has(v));
    const allowed =
      ackedVersions.length > 0
        ? versions.filter((v) => v >= ackedVersions[ackedVersions.length - 1])
        : [0, ...versions];
    let got: Buffer;
    try {
      got = await file.readPage(page);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('ERR_PAGE_CORRUPT');
      outcome.corrupt++;
      continue;
    }
    const version = got.readUInt32LE(4);
    const expected =
      version === 0 && got.readUInt32LE(0) === 0
        ? Buffer.alloc(file.payloadSize)
        : payload(page, version, file.payloadSize);
    expect(got.equals(expected), `page ${page} is a whole version`).toBe(true);
    expect(allowed, `page ${page}: version ${version}, acked calls ${[...acked]}`).toContain(version);
  }
  const verified = await file.verify();
  if (strategy !== 'unprotected') expect(verified.corrupt).toEqual([]);
  await file.close();
}

/** Subsets of n pending writes to keep: all of them up to 2^5, else a fixed sample. */
function subsets(n: number): ((i: number) => boolean)[] {
  if (n <= 5) return Array.from({ length: 2 ** n }, (_, mask) => (i: number) => ((mask >> i) & 1) === 1);
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const masks = Array.from({ length: 24 }, () => Array.from({ length: n }, () => random() < 0.5));
  return [() => true, () => false, (i) => i % 2 === 0, (i) => i % 2 === 1, ...masks.map((m) => (i: number) => m[i])];
}

async function explore(strategy: Strategy, crashDuringRecovery: boolean): Promise<Outcome & { states: number }> {
  const total = new SimDisk(STACK);
  await workload(total, strategy);
  const outcome = { corrupt: 0, restored: 0, discarded: 0, states: 0 };
  for (let k = 0; k < total.ops; k++) {
    for (const tear of [0, 512, 4096] as Tear[]) {
      const disk = new SimDisk(STACK, k, tear);
      const acked = await workload(disk, strategy);
      for (const keep of subsets(disk.pending.length)) {
        outcome.states++;
        if (!crashDuringRecovery) {
          await check(disk.afterCrash(keep), strategy, acked, outcome);
          continue;
        }
        // Count the recovery's own operations, then crash it at each of them.
        const counting = disk.afterCrash(keep);
        await (await openPageFileWith(counting.system, PATH, { ...OPTIONS, strategy })).close();
        for (let j = 0; j < counting.ops; j++) {
          const again = disk.afterCrash(keep, j, 512);
          await openPageFileWith(again.system, PATH, { ...OPTIONS, strategy }).then(
            (f) => f.close(),
            (err) => {
              if (!(err instanceof SimCrash)) throw err;
            },
          );
          for (const keep2 of [() => true, () => false]) await check(again.afterCrash(keep2), strategy, acked, outcome);
        }
      }
    }
  }
  return outcome;
}

describe('page files under simulated crashes (not kernel results)', () => {
  it('the workload does enough operations to be worth crashing', async () => {
    const disk = new SimDisk(STACK);
    expect((await workload(disk, 'doublewrite')).size).toBe(CALLS.length);
    expect(disk.ops).toBeGreaterThan(15);
  });

  it('doublewrite: every crash point, torn or not, any lost subset: every page whole, every ack kept', async () => {
    const outcome = await explore('doublewrite', false);
    expect(outcome.corrupt).toBe(0);
    // The harness has teeth: recovery had torn or lost home pages to restore, and torn batches to discard.
    expect(outcome.restored).toBeGreaterThan(0);
    expect(outcome.discarded).toBeGreaterThan(0);
    expect(outcome.states).toBeGreaterThan(200);
  }, 300_000);

  it('doublewrite: a crash during recovery is recovered by the next open', async () => {
    const outcome = await explore('doublewrite', true);
    expect(outcome.corrupt).toBe(0);
    expect(outcome.restored).toBeGreaterThan(0);
  }, 600_000);

  it('atomic: untorn writes need no copy: every page whole, every ack kept', async () => {
    const outcome = await explore('atomic', false);
    expect(outcome.corrupt).toBe(0);
  }, 300_000);

  it('an in-place write that fails (EIO) stops all writing; the next open restores the torn page from its copy', async () => {
    const disk = new SimDisk(STACK, null, 512);
    const file = await openPageFileWith(disk.system, PATH, { ...OPTIONS, strategy: 'doublewrite' });
    const write = (pages: number[], version: number) =>
      file.writePages(pages.map((page) => ({ page, data: payload(page, version, file.payloadSize) })));
    await write([0, 1], 1);
    disk.failAt = disk.ops + 2; // copy, its sync, then the first in-place write
    const failed = await write([0, 1], 2).catch((err) => err);
    expect(failed.code).toBe('EIO');
    // The copy is the only good one of page 0 now: no later batch may overwrite it.
    expect((await write([2], 3).catch((err) => err)).code).toBe('EIO');
    await file.close();
    const again = await openPageFileWith(disk.afterCrash(() => true).system, PATH, {
      ...OPTIONS,
      strategy: 'doublewrite',
    });
    expect(again.recovery).toEqual({ pagesChecked: 2, pagesRestored: 2, batchesDiscarded: 0 });
    for (const page of [0, 1])
      expect((await again.readPage(page)).equals(payload(page, 2, again.payloadSize))).toBe(true);
    expect((await again.readPage(2)).equals(Buffer.alloc(again.payloadSize))).toBe(true);
  });

  it('control: unprotected under the same faults has torn pages, and readPage refuses every one', async () => {
    const outcome = await explore('unprotected', false);
    expect(outcome.corrupt).toBeGreaterThan(0);
  }, 300_000);
});
