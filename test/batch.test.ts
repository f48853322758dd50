// Batches (writeAtomicBatch, writeBatch, readBatch) and async calls on the
// engine this process runs (io_uring, or the thread pool when
// UNTORN_IO_ENGINE=threadpool: CI runs this file both ways), on the real
// fixtures: results, a trailing fdatasync, every refusal before submission
// (the file is left unchanged), kernel errors as Node-shaped errors with
// per-entry results, and buffers kept alive through GC while in flight.
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, expect, it } from 'vitest';
import { allocAligned, ioEngine, open, type AtomicFile, type BatchError } from '../dist/index.js';
import { describeFs, fixture, tempPath, type FixtureName } from './helpers/filesystems';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const PAGE = 16384;
const created: string[] = [];
const opened: AtomicFile[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((f) => f.close()));
  for (const file of created.splice(0)) fs.rmSync(file, { force: true });
});

async function fresh(name: FixtureName, flags = 'w+', content?: Buffer): Promise<AtomicFile> {
  const file = tempPath(fixture(name), 'batch');
  created.push(file);
  if (content) fs.writeFileSync(file, content);
  const f = await open(file, flags);
  opened.push(f);
  return f;
}

const random = (n: number) => randomFillSync(allocAligned(n));
const pages = (count: number) => Array.from({ length: count }, () => random(PAGE));

describeFs('batches on the engine in use', () => {
  it('runs on the engine CI asked for', () => {
    const expected = process.env.UNTORN_IO_ENGINE === 'threadpool' ? 'threadpool' : 'io_uring';
    expect(ioEngine().name).toBe(expected);
  });

  for (const name of ['xfs4k', 'xfs16k'] as FixtureName[]) {
    it(`writeAtomicBatch with datasync writes every page (${name})`, async () => {
      const f = await fresh(name);
      const bufs = pages(64);
      const writes = bufs.map((buffer, i) => ({ buffer, position: ((i * 7) % 64) * PAGE }));
      expect(await f.writeAtomicBatch(writes, { datasync: true })).toEqual(bufs.map(() => PAGE));
      const back = fs.readFileSync(f.path);
      for (const { buffer, position } of writes)
        expect(back.subarray(position, position + PAGE).equals(buffer)).toBe(true);
    });
  }

  it('writeBatch with dsync, then readBatch reads every entry back', async () => {
    const f = await fresh('ext4');
    const bufs = pages(8);
    expect(
      await f.writeBatch(
        bufs.map((buffer, i) => ({ buffer, position: i * PAGE })),
        { dsync: true },
      ),
    ).toEqual(bufs.map(() => PAGE));
    const targets = pages(8);
    // A Set is an iterable too; entries come back in the order given.
    const reads = new Set(targets.map((buffer, i) => ({ buffer, position: (7 - i) * PAGE })));
    expect(await f.readBatch(reads)).toEqual(targets.map(() => PAGE));
    targets.forEach((t, i) => expect(t.equals(bufs[7 - i])).toBe(true));
  });

  it('a batch larger than the ring (1,000 writes) queues in the addon and completes', async () => {
    const f = await fresh('xfs4k');
    const bufs = Array.from({ length: 1000 }, () => random(4096));
    expect(
      await f.writeBatch(
        bufs.map((buffer, i) => ({ buffer, position: i * 4096 })),
        { datasync: true },
      ),
    ).toEqual(bufs.map(() => 4096));
    const back = fs.readFileSync(f.path);
    bufs.forEach((b, i) => expect(back.subarray(i * 4096, (i + 1) * 4096).equals(b)).toBe(true));
  });

  it('a read past the end counts 0 bytes for that entry only', async () => {
    const f = await fresh('xfs4k');
    await f.write(random(PAGE), 0);
    expect(
      await f.readBatch([
        { buffer: allocAligned(PAGE), position: 0 },
        { buffer: allocAligned(PAGE), position: 8 * PAGE },
      ]),
    ).toEqual([PAGE, 0]);
  });

  it('an empty batch resolves to [] (with datasync, after an fdatasync)', async () => {
    const f = await fresh('xfs4k');
    expect(await f.writeAtomicBatch([])).toEqual([]);
    expect(await f.writeBatch([], { datasync: true })).toEqual([]);
    expect(await f.readBatch([])).toEqual([]);
  });

  it('one bad entry refuses the whole batch before anything is written', async () => {
    const before = random(4 * PAGE);
    const f = await fresh('xfs4k', 'r+', Buffer.from(before));
    const good = pages(3);
    const first = { buffer: good[0], position: 0 };
    // Refused for atomic batches only (plain O_DIRECT allows them)...
    const atomicOnly: [unknown, string][] = [
      [[first, { buffer: good[1], position: 2 * PAGE + 4096 }], 'ERR_ATOMIC_ALIGNMENT'],
      [[first, { buffer: random(3 * 4096), position: PAGE }], 'ERR_ATOMIC_LENGTH'],
    ];
    // ...and for both kinds.
    const both: [unknown, string][] = [
      // XFS on a loop device wants 512-byte alignment of addresses and positions.
      [[first, { buffer: allocAligned(PAGE + 256).subarray(256), position: PAGE }], 'ERR_DIRECT_IO_ALIGNMENT'],
      [[first, { buffer: good[1], position: PAGE / 2 }], 'ERR_INVALID_ARG_VALUE'],
      [[first, { buffer: 'page', position: PAGE }], 'ERR_INVALID_ARG_TYPE'],
      [[first, { buffer: good[1], position: -PAGE }], 'ERR_OUT_OF_RANGE'],
      [[first, { buffer: good[1], position: 1.5 }], 'ERR_OUT_OF_RANGE'],
      [[first, null], 'ERR_INVALID_ARG_TYPE'],
      [42, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [writes, code] of [...atomicOnly, ...both]) {
      await expect(f.writeAtomicBatch(writes as never, { datasync: true })).rejects.toMatchObject({ code });
    }
    const plainOnly: [unknown, string][] = [
      [[first, { buffer: good[1], position: PAGE + 256 }], 'ERR_DIRECT_IO_ALIGNMENT'],
    ];
    for (const [writes, code] of [...plainOnly, ...both])
      await expect(f.writeBatch(writes as never)).rejects.toMatchObject({ code });
    await expect(f.writeBatch([{ buffer: good[0], position: 0 }], { datasync: 1 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(fs.readFileSync(f.path).equals(before)).toBe(true);
  });

  it('overlapping entries are refused, naming both', async () => {
    const f = await fresh('xfs4k');
    const err = await f
      .writeBatch([
        { buffer: random(2 * PAGE), position: 4 * PAGE },
        { buffer: random(PAGE), position: 0 },
        { buffer: random(PAGE), position: 5 * PAGE },
      ])
      .catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(err.message).toMatch(/writes\[2\]\.position.*overlaps writes\[0\]/);
    expect(fs.statSync(f.path).size).toBe(0);
  });

  it('atomic batches are refused where the file cannot write atomically (ext4 on loop, tmpfs)', async () => {
    for (const name of ['ext4', 'tmpfs'] as FixtureName[]) {
      const f = await fresh(name);
      await expect(f.writeAtomicBatch([{ buffer: random(PAGE), position: 0 }])).rejects.toMatchObject({
        code: 'ERR_ATOMIC_UNSUPPORTED',
      });
      expect(fs.statSync(f.path).size).toBe(0);
    }
  });

  it('a kernel error comes back Node-shaped: a write through a read-only handle', async () => {
    const f = await fresh('xfs4k', 'r', Buffer.alloc(PAGE));
    const err = await f.write(random(PAGE), 0).catch((e) => e);
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'pwritev2', path: f.path });
    expect(err.message).toBe(`EBADF: bad file descriptor, pwritev2 '${f.path}'`);
    const batch = (await f
      .writeAtomicBatch([{ buffer: random(PAGE), position: 0 }], { datasync: true })
      .catch((e) => e)) as BatchError;
    expect(batch).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'pwritev2', path: f.path });
    expect(batch.results).toHaveLength(1);
    expect(batch.results[0]).toMatchObject({ code: 'EBADF', syscall: 'pwritev2' });
    // A write-only handle cannot be read.
    const w = await open(f.path, 'w');
    opened.push(w);
    await expect(w.read(allocAligned(PAGE), 0)).rejects.toMatchObject({ code: 'EBADF', errno: -9, syscall: 'preadv2' });
  });

  it('a batch in which one write fails: the first error, per-entry results, no fdatasync', async () => {
    // ext4 with 4K blocks stops files at 16 TiB: a write at 1 PiB fails with EFBIG in the kernel.
    const f = await fresh('ext4');
    const bufs = pages(3);
    const err = (await f
      .writeBatch(
        [
          { buffer: bufs[0], position: 0 },
          { buffer: bufs[1], position: 2 ** 50 },
          { buffer: bufs[2], position: PAGE },
        ],
        { datasync: true },
      )
      .catch((e) => e)) as BatchError;
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'EFBIG', syscall: 'pwritev2', path: f.path });
    expect(err.results).toHaveLength(3);
    expect(err.results[0]).toBe(PAGE);
    expect(err.results[1]).toMatchObject({ code: 'EFBIG', errno: -27 });
    expect(err.results[2]).toBe(PAGE);
    expect(err.results[1]).not.toBe(err);
    // The writes that succeeded are there.
    expect(
      fs
        .readFileSync(f.path)
        .subarray(PAGE, 2 * PAGE)
        .equals(bufs[2]),
    ).toBe(true);
  });

  it('a closed file refuses batches with EBADF and no syscall', async () => {
    const f = await fresh('xfs4k');
    await f.close();
    const err = await f.writeBatch([{ buffer: random(PAGE), position: 0 }]).catch((e) => e);
    expect(err).toMatchObject({ code: 'EBADF' });
    expect(err.syscall).toBeUndefined();
  });

  it('close() waits for a batch in flight', async () => {
    const f = await fresh('xfs4k');
    const bufs = pages(32);
    const pending = f.writeAtomicBatch(
      bufs.map((buffer, i) => ({ buffer, position: i * PAGE })),
      { datasync: true },
    );
    const closing = f.close();
    expect(await pending).toHaveLength(32);
    await closing;
    expect(fs.statSync(f.path).size).toBe(32 * PAGE);
  });

  it('buffers dropped by the caller stay alive until their writes complete (GC forced)', async () => {
    const f = await fresh('xfs4k');
    const expected: Buffer[] = [];
    const inFlight: Promise<unknown>[] = [];
    for (let round = 0; round < 8; round++) {
      // The batch's only references to its buffers are in the call: garbage as soon as it returns.
      const copies = Array.from({ length: 16 }, (_, i) => {
        const b = random(PAGE);
        expected[round * 16 + i] = Buffer.from(b);
        return { buffer: b, position: (round * 16 + i) * PAGE };
      });
      inFlight.push(f.writeAtomicBatch(copies));
      copies.length = 0;
      gc();
      // Pressure: new allocations where freed buffers would have been.
      for (let k = 0; k < 32; k++) allocAligned(PAGE).fill(0xee);
    }
    await Promise.all(inFlight);
    gc();
    const back = fs.readFileSync(f.path);
    expected.forEach((buf, i) => expect(back.subarray(i * PAGE, (i + 1) * PAGE).equals(buf)).toBe(true));
  });
});
