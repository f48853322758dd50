// What untorn holds on to: buffers must live as long as the syscalls that use
// them (whatever the caller drops and the GC collects), descriptors must not
// leak, aligned allocations must be given back, and many operations in flight
// on many files must all finish. Real syscalls on the xfs4k fixture.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { allocAligned, open, openSync, type AtomicFile } from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { describeFs, fixture, tempPath } from './helpers/filesystems';

// A gc() for this process, without starting it with --expose-gc: the flag
// set now makes V8 give new contexts a gc function.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const KiB = 1024;
const MiB = 1024 * KiB;

/** Lets the event loop turn: completions, finalizers and warnings get their turn. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Collects garbage a few times, letting the event loop run in between. */
async function collect(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc();
    await tick();
  }
}

/**
 * Fills buf with the content of the page at file position `position`: the
 * 32-bit words differ from each other and from page to page, so a page
 * written from a wrong or freed buffer, or to the wrong place, cannot match.
 */
function fillPattern(buf: Buffer, position: number): Buffer {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const seed = Math.imul(position / 4096 + 1, 0x9e3779b1);
  for (let i = 0; i < words.length; i++) words[i] = (seed ^ Math.imul(i, 0x85ebca6b)) >>> 0;
  return buf;
}

/** A run of `pages` pages of `size` bytes from file position `start`. */
interface Layout {
  size: number;
  pages: number;
  start: number;
}

const positions = ({ size, pages, start }: Layout) => Array.from({ length: pages }, (_, page) => start + page * size);

/** The positions of the pages of `layout` that do not hold their fillPattern. */
function badPages(file: AtomicFile, layout: Layout): number[] {
  const actual = allocAligned(layout.size);
  const expected = Buffer.alloc(layout.size);
  return positions(layout).filter((position) => {
    expect(file.readSync(actual, position)).toBe(layout.size);
    return !actual.equals(fillPattern(expected, position));
  });
}

const isZeroFilled = (buf: Buffer) => buf.equals(Buffer.alloc(buf.length));

/** Rejects when `promise` takes longer than `ms`: a deadlock fails clearly, not by the test timeout. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const openFds = () => fs.readdirSync('/proc/self/fd');

/** What descriptor fd points at, or null when it is not open. */
function fdTarget(fd: number): string | null {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** The error code a promise rejects with (fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<string | undefined> {
  const outcome = await promise.then(
    () => ({ ok: true as const }),
    (err: NodeJS.ErrnoException) => ({ ok: false as const, code: err.code }),
  );
  if (outcome.ok) throw new Error('expected a rejection, got a result');
  return outcome.code;
}

/** The error code a call throws with (fails when it returns). */
function thrown(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  throw new Error('expected an error, got a result');
}

describeFs('resources', () => {
  const created: string[] = [];
  const newPath = (name: string) => {
    const p = tempPath(fixture('xfs4k'), name);
    created.push(p);
    return p;
  };
  afterAll(() => {
    for (const p of created) fs.rmSync(p, { force: true });
  });

  describe('buffers dropped while their I/O is in flight, with the GC forced', () => {
    // 256 pages of 16 KiB from 0, 16 pages of 1 MiB from 16 MiB: 272 calls
    // in flight at once.
    const layouts: Layout[] = [
      { size: 16 * KiB, pages: 256, start: 0 },
      { size: 1 * MiB, pages: 16, start: 16 * MiB },
    ];
    const byteCounts = layouts.flatMap((layout) => positions(layout).map(() => layout.size));
    const SCRIBBLE = 0xee;

    /** Opens a FIFO's writing end (and closes it), which lets an open() of its reading end return. */
    async function unblockFifo(fifo: string): Promise<void> {
      for (let attempt = 0; ; attempt++) {
        try {
          fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
          return;
        } catch (err) {
          // ENXIO: no reader yet, its open() still waits for a thread.
          if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || attempt >= 1000) throw err;
          await sleep(5);
        }
      }
    }

    /**
     * Occupies every thread of libuv's pool with an open() of a FIFO that has
     * no writer yet, so that calls made meanwhile wait in the queue (left to
     * run, the 272 calls are done before the first gc() is). release() gives
     * the threads back.
     */
    async function holdThreadPool(): Promise<{ release(): Promise<void> }> {
      const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
      const fifos = Array.from({ length: threads }, () => newPath('fifo'));
      for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
      const held = fifos.map((fifo) => fs.promises.open(fifo, 'r'));
      let queuedDone = false;
      const queued = fs.promises.stat(fifos[0]).then(() => (queuedDone = true));
      const release = async () => {
        await Promise.all(fifos.map(unblockFifo));
        await Promise.all((await Promise.all(held)).map((handle) => handle.close()));
        await queued;
      };
      // Held indeed: a call queued behind the FIFOs does not finish.
      await sleep(50);
      if (queuedDone) {
        await release();
        throw new Error(`the thread pool is not held by ${threads} blocked calls`);
      }
      return { release };
    }

    /**
     * Makes the calls `issue` returns while the thread pool is held, collects
     * garbage, and has the memory that frees used again at once: new buffers
     * of the same sizes, filled with SCRIBBLE and kept. Then lets the calls
     * run. Were a call's buffer freed under it, a write would write SCRIBBLE
     * (or fail with EFAULT where the memory went back to the kernel), and a
     * read would land in a scribble buffer.
     */
    async function throughGc(issue: () => Promise<number>[]): Promise<{ results: number[]; scribbles: Buffer[] }> {
      const pool = await holdThreadPool();
      const scribbles: Buffer[] = [];
      let calls: Promise<number[]>;
      try {
        calls = Promise.all(issue());
        calls.catch(() => {}); // awaited below: not an unhandled rejection meanwhile
        for (let round = 0; round < 3; round++) {
          gc();
          await sleep(10); // V8 may free what it collected on a background thread
          for (const layout of layouts) {
            for (let page = 0; page < layout.pages; page++) scribbles.push(allocAligned(layout.size).fill(SCRIBBLE));
          }
        }
      } finally {
        await pool.release();
      }
      return { results: await calls, scribbles };
    }

    const files: AtomicFile[] = [];
    const newFile = async () => {
      const file = await open(newPath('gc'), 'w+');
      files.push(file);
      return file;
    };
    afterAll(() => Promise.all(files.map((file) => file.close())));

    it('writeAtomic writes every page from its own buffer, collected or not', async () => {
      const file = await newFile();
      // The buffers are made inline and never kept: only the calls in flight hold them.
      const { results } = await throughGc(() =>
        layouts.flatMap((layout) =>
          positions(layout).map((position) =>
            file.writeAtomic(fillPattern(allocAligned(layout.size), position), position),
          ),
        ),
      );
      expect(results).toEqual(byteCounts);
      for (const layout of layouts) expect(badPages(file, layout)).toEqual([]);
    });

    it('read into buffers nobody keeps resolves with the byte count and writes no other memory', async () => {
      const file = await newFile();
      for (const layout of layouts) {
        const buf = allocAligned(layout.size);
        for (const position of positions(layout)) file.writeAtomicSync(fillPattern(buf, position), position);
      }
      const { results, scribbles } = await throughGc(() =>
        layouts.flatMap((layout) =>
          positions(layout).map((position) => file.read(allocAligned(layout.size), position)),
        ),
      );
      expect(results).toEqual(byteCounts);
      const overwritten = scribbles.filter((buf) => !buf.equals(Buffer.alloc(buf.length, SCRIBBLE)));
      expect(overwritten.length).toBe(0);
    });
  });

  describe('file descriptors', () => {
    it('2000 open/close cycles of every kind leave none behind', async () => {
      const existing = newPath('fd');
      fs.writeFileSync(existing, Buffer.alloc(64 * KiB));
      const missing = newPath('missing');
      const page = fillPattern(allocAligned(16 * KiB), 16 * KiB);
      const cycles: (() => Promise<void> | void)[] = [
        async () => {
          const f = await open(existing, 'r+');
          await f.close();
        },
        () => openSync(existing, 'r').closeSync(),
        async () => expect(await rejection(open(missing, 'r'))).toBe('ENOENT'),
        () => expect(thrown(() => openSync(missing))).toBe('ENOENT'),
        async () => expect(await rejection(open(existing, 'wx'))).toBe('EEXIST'),
        () => expect(thrown(() => openSync(existing, 'wx+'))).toBe('EEXIST'),
        async () => {
          const f = await open(existing);
          expect(await f.writeAtomic(page, 16 * KiB)).toBe(page.length);
          await f.close();
        },
        async () => {
          // Refused before any syscall, then refused as closed: the descriptor
          // must be closed all the same.
          const f = openSync(existing, 'r+');
          expect(await rejection(f.writeAtomic(page.subarray(0, 12 * KiB), 0))).toBe('ERR_ATOMIC_LENGTH');
          expect(thrown(() => f.writeAtomicSync(page, 4 * KiB))).toBe('ERR_ATOMIC_ALIGNMENT');
          f.closeSync();
          expect(await rejection(f.writeAtomic(page, 0))).toBe('EBADF');
          expect(thrown(() => f.readSync(page, 0))).toBe('EBADF');
        },
      ];
      // A first round of each, so whatever Node or vitest opens once on first use is open before counting.
      for (const cycle of cycles) await cycle();
      const before = openFds();
      for (let i = 0; i < 2000; i++) await cycles[i % cycles.length]();
      expect(openFds()).toEqual(before);
    });

    it('an AtomicFile dropped without close() is closed after GC, with a warning', async () => {
      const target = newPath('dropped');
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(warning.message);
      process.on('warning', onWarning);
      try {
        const before = openFds();
        const fd = await openAndDrop(target);
        expect(fdTarget(fd)).toBe(target);
        // FinalizationRegistry callbacks run some time after a GC: give them up to 10 s.
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline && !(fdTarget(fd) !== target && warnings.some((w) => w.includes(target)))) {
          gc();
          await sleep(20);
        }
        // Closed (or its number reused by someone else since), and said so.
        expect(fdTarget(fd)).not.toBe(target);
        expect(warnings).toContainEqual(expect.stringContaining(`file descriptor ${fd} (${target})`));
        expect(openFds()).toEqual(before);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  describe('memory', () => {
    /**
     * Allocates and drops `count` aligned buffers, collecting after every
     * 32 MiB or so: the point is what is left once they are collected, not
     * how high the GC lets garbage pile up first.
     */
    async function churn(count: number, size: number, alignment: number): Promise<void> {
      const perRound = Math.max(1, Math.floor((32 * MiB) / (size + alignment)));
      for (let i = 0; i < count; i++) {
        allocAligned(size, alignment).fill(1); // written all over, so a leak would show in rss as well
        if (i % perRound === perRound - 1) await collect(1);
      }
      await collect(5);
    }

    const mix = async (scale: number) => {
      await churn(50_000 * scale, 16 * KiB, 4096);
      await churn(5_000 * scale, 16 * KiB, 64 * KiB);
      await churn(500 * scale, 1 * MiB, 4096);
      await churn(100 * scale, 1 * MiB, 1 * MiB);
    };

    it('tens of thousands of aligned allocations are all given back', async () => {
      await mix(0.1); // warm-up: heap pages and malloc arenas at their working size
      const before = process.memoryUsage();
      await mix(1); // ~2.2 GB in all, were none of it given back
      const after = process.memoryUsage();
      const growth = { rss: after.rss - before.rss, arrayBuffers: after.arrayBuffers - before.arrayBuffers };
      console.log(`memory growth over the churn: ${JSON.stringify(growth)}`);
      expect(growth.arrayBuffers).toBeLessThan(16 * MiB);
      expect(growth.rss).toBeLessThan(64 * MiB);
    });

    it('allocAligned gives zero-filled Buffers of the size asked, aligned as asked', async () => {
      for (let shift = 0; shift <= 20; shift++) {
        const alignment = 2 ** shift;
        for (const size of [1, 511, 4096, 16 * KiB + 3, alignment]) {
          const buf = allocAligned(size, alignment);
          expect(Buffer.isBuffer(buf)).toBe(true);
          expect(buf.byteLength).toBe(size);
          expect(binding.bufferAddress(buf) % alignment).toBe(0);
          expect(isZeroFilled(buf)).toBe(true);
          buf.fill(0xff); // dirty memory that later allocations may get again
        }
        await collect(1);
      }
      expect(binding.bufferAddress(allocAligned(4096)) % 4096).toBe(0); // the default alignment
    });
  });

  describe('concurrency', () => {
    it('8 files with 64 writes, reads and datasyncs each in flight all finish, and close after them', async () => {
      const layout: Layout = { size: 16 * KiB, pages: 64, start: 0 };
      const files = await Promise.all(Array.from({ length: 8 }, (_, i) => open(newPath(`busy${i}`), 'w+')));
      const fds = files.map((file) => file.fd);
      const operations = files.flatMap((file) =>
        positions(layout).flatMap((position, page) => [
          file.writeAtomic(fillPattern(allocAligned(layout.size), position), position),
          ...(page % 8 === 7 ? [file.datasync(), file.read(allocAligned(layout.size), position)] : []),
        ]),
      );
      // Closing now must wait for the operations above, not cut them off.
      const closes = files.map((file) => file.close());
      await within(30_000, 'operations in flight', Promise.all([...operations, ...closes]));
      for (const [i, file] of files.entries()) {
        expect(fdTarget(fds[i])).not.toBe(file.path);
        const check = openSync(file.path, 'r');
        try {
          expect(badPages(check, layout)).toEqual([]);
        } finally {
          check.closeSync();
        }
      }
    });
  });
});

/** Opens a file and lets the AtomicFile go: only the descriptor number comes back. */
async function openAndDrop(target: string): Promise<number> {
  const file = await open(target, 'w+');
  return file.fd;
}
