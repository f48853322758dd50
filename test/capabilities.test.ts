// statAtomic / statAtomicSync / blockDeviceLimits against the real XFS, ext4
// and tmpfs fixtures: what the kernel reports, in the shape docs/api.md fixes, and
// errors shaped like Node's fs errors. Values are checked against what we
// know independently (mkfs block sizes, the loop device's own sysfs files).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockDeviceLimits, statAtomic, statAtomicSync, type AtomicWriteInfo } from '../dist/index.js';
import { describeFs, fixture, tempPath, type Fixture, type FixtureName } from './helpers/filesystems';
import { rejection, thrown } from './helpers/caught';

const INFO_KEYS = [
  'blockSize',
  'dioMemAlign',
  'dioOffsetAlign',
  'segmentsMax',
  'supported',
  'unitMax',
  'unitMaxOpt',
  'unitMin',
];
const LIMIT_KEYS = ['boundaryBytes', 'device', 'maxBytes', 'unitMaxBytes', 'unitMinBytes'];
const SYSFS_LIMITS = {
  unitMinBytes: 'atomic_write_unit_min_bytes',
  unitMaxBytes: 'atomic_write_unit_max_bytes',
  maxBytes: 'atomic_write_max_bytes',
  boundaryBytes: 'atomic_write_boundary_bytes',
} as const;

const isPowerOfTwo = (n: number) => Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;

/** A fresh 8 KiB file on the fixture, removed again after fn. */
async function withFile<T>(fx: Fixture, fn: (file: string) => T | Promise<T>): Promise<T> {
  const file = tempPath(fx, 'cap');
  fs.writeFileSync(file, Buffer.alloc(8192, 0x5a));
  try {
    return await fn(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** An fs.openSync fd for fn, closed afterwards. */
async function withFd<T>(file: string, fn: (fd: number) => T | Promise<T>): Promise<T> {
  const fd = fs.openSync(file, 'r');
  try {
    return await fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The loop device's queue/ sysfs file, read independently of the library. */
function queueFile(fx: Fixture, name: string): number {
  const text = fs.readFileSync(`/sys/block/${path.basename(fx.device!)}/queue/${name}`, 'utf8');
  return Number(text.trim());
}

/** The four statx answers for a file: by path and by fd, async and sync. */
async function allFour(file: string): Promise<AtomicWriteInfo[]> {
  return withFd(file, async (fd) => [
    await statAtomic(file),
    statAtomicSync(file),
    await statAtomic(fd),
    statAtomicSync(fd),
  ]);
}

/** The error a promise rejects with; fails if it resolves. */

// What each fixture must report. unitMax is only bounded (it depends on the
// filesystem size and XFS's allocation groups): a power of two >= 64 KiB.
const expected: Record<FixtureName, Partial<AtomicWriteInfo> & { atomic: boolean; dio: boolean }> = {
  xfs4k: { atomic: true, dio: true, supported: true, unitMin: 4096, segmentsMax: 1, blockSize: 4096, unitMaxOpt: 0 },
  xfs16k: { atomic: true, dio: true, supported: true, unitMin: 16384, segmentsMax: 1, blockSize: 16384, unitMaxOpt: 0 },
  ext4: {
    atomic: false,
    dio: true,
    supported: false,
    unitMin: 0,
    unitMax: 0,
    unitMaxOpt: 0,
    segmentsMax: 0,
    blockSize: 4096,
  },
  tmpfs: {
    atomic: false,
    dio: false,
    supported: false,
    unitMin: 0,
    unitMax: 0,
    unitMaxOpt: 0,
    segmentsMax: 0,
    dioMemAlign: 0,
    dioOffsetAlign: 0,
  },
};
const FIXTURES = Object.keys(expected) as FixtureName[];
const LOOP_FIXTURES = FIXTURES.filter((name) => name !== 'tmpfs');

describeFs('statAtomic / statAtomicSync', () => {
  describe.each(FIXTURES)('%s', (name) => {
    const { atomic, dio, ...fields } = expected[name];

    it('answers the same by path and by fd, async and sync, with exactly the AtomicWriteInfo keys', async () => {
      await withFile(fixture(name), async (file) => {
        const [first, ...rest] = await allFour(file);
        for (const other of rest) expect(other).toEqual(first);
        expect(Object.keys(first).sort()).toEqual(INFO_KEYS);
        for (const key of INFO_KEYS) {
          const value = first[key as keyof AtomicWriteInfo];
          expect(typeof value, key).toBe(key === 'supported' ? 'boolean' : 'number');
          if (typeof value === 'number')
            expect(Number.isSafeInteger(value) && value >= 0, `${key} = ${value}`).toBe(true);
        }
      });
    });

    it(`reports ${atomic ? 'atomic-write limits' : 'no atomic writes (limits 0)'}`, async () => {
      await withFile(fixture(name), (file) => {
        const info = statAtomicSync(file);
        expect(info).toMatchObject(fields);
        if (atomic) {
          expect(isPowerOfTwo(info.unitMax), `unitMax ${info.unitMax}`).toBe(true);
          expect(info.unitMax).toBeGreaterThanOrEqual(65536);
          expect(info.unitMax).toBeGreaterThanOrEqual(info.unitMin);
        }
      });
    });

    it(
      dio ? 'reports the O_DIRECT alignments of its loop device' : 'reports no O_DIRECT alignment (0 = not said)',
      async () => {
        const fx = fixture(name);
        await withFile(fx, (file) => {
          const info = statAtomicSync(file);
          if (!dio) {
            expect(info.dioMemAlign).toBe(0);
            expect(info.dioOffsetAlign).toBe(0);
            return;
          }
          for (const align of [info.dioMemAlign, info.dioOffsetAlign])
            expect(isPowerOfTwo(align), `${align}`).toBe(true);
          // XFS and ext4 take both from the block device's queue limits.
          expect(info.dioOffsetAlign).toBe(queueFile(fx, 'logical_block_size'));
          expect(info.dioMemAlign).toBe(queueFile(fx, 'dma_alignment') + 1);
        });
      },
    );

    it("reports blockSize as fs.statSync's blksize", async () => {
      await withFile(fixture(name), (file) => {
        // stx_blksize is st_blksize: node's fs.statSync reads the same field.
        expect(statAtomicSync(file).blockSize).toBe(fs.statSync(file).blksize);
      });
    });
  });
});

describe('statAtomic errors', () => {
  const missing = '/nonexistent-untorn-dir/missing-file';

  it('rejects a missing path with ENOENT shaped like a Node fs error', async () => {
    const promise = statAtomic(missing);
    const errs = [await rejection(promise), thrown(() => statAtomicSync(missing))];
    for (const err of errs) {
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'statx', path: missing });
      expect(err.message).toBe(`ENOENT: no such file or directory, statx '${missing}'`);
    }
  });

  it('rejects a closed or bogus fd with EBADF, syscall statx and no path', async () => {
    const fd = fs.openSync('/proc/self/status', 'r');
    fs.closeSync(fd);
    // Synchronously right after the close, nothing else can have taken the number.
    const errs = [thrown(() => statAtomicSync(fd))];
    const bogus = 2 ** 31 - 1;
    errs.push(
      await rejection(statAtomic(bogus)),
      thrown(() => statAtomicSync(bogus)),
    );
    for (const err of errs) {
      expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'statx' });
      expect(err).not.toHaveProperty('path');
      expect(err.message).toBe('EBADF: bad file descriptor, statx');
    }
  });

  type ErrorClass = typeof TypeError | typeof RangeError;
  const badTargets: { what: string; target: unknown; code: string; cls: ErrorClass }[] = [
    { what: 'an object', target: {}, code: 'ERR_INVALID_ARG_TYPE', cls: TypeError },
    { what: 'null', target: null, code: 'ERR_INVALID_ARG_TYPE', cls: TypeError },
    { what: 'undefined', target: undefined, code: 'ERR_INVALID_ARG_TYPE', cls: TypeError },
    { what: 'a negative fd', target: -1, code: 'ERR_OUT_OF_RANGE', cls: RangeError },
    { what: 'a fractional fd', target: 1.5, code: 'ERR_OUT_OF_RANGE', cls: RangeError },
    { what: 'NaN', target: NaN, code: 'ERR_OUT_OF_RANGE', cls: RangeError },
    { what: 'an fd above 2^31-1', target: 2 ** 31, code: 'ERR_OUT_OF_RANGE', cls: RangeError },
    { what: 'a path with a NUL byte', target: '/tmp/a\u0000b', code: 'ERR_INVALID_ARG_VALUE', cls: TypeError },
  ];

  for (const { what, target, code, cls } of badTargets)
    it(`refuses ${what} with ${code}, before any syscall`, async () => {
      const asAny = target as string;
      let promise: Promise<unknown> | undefined;
      expect(() => (promise = statAtomic(asAny))).not.toThrow();
      const errs = [
        await rejection(promise!),
        thrown(() => statAtomicSync(asAny)),
        await rejection(blockDeviceLimits(asAny)),
      ];
      for (const err of errs) {
        expect(err).toBeInstanceOf(cls);
        expect(err.code).toBe(code);
        expect(err).not.toHaveProperty('syscall');
      }
    });
});

describeFs('blockDeviceLimits', () => {
  /** The limits as sysfs says them, read by the test itself. */
  function sysfsLimits(fx: Fixture) {
    const device = path.basename(fx.device!);
    const limits = Object.fromEntries(Object.entries(SYSFS_LIMITS).map(([key, file]) => [key, queueFile(fx, file)]));
    return { device, ...limits };
  }

  describe.each(LOOP_FIXTURES)('%s', (name) => {
    it('names the loop device and gives its sysfs limits, by path and by fd', async () => {
      const fx = fixture(name);
      const want = sysfsLimits(fx);
      expect(want.device).toMatch(/^loop\d+$/);
      await withFile(fx, async (file) => {
        const answers = await withFd(file, async (fd) => [await blockDeviceLimits(file), await blockDeviceLimits(fd)]);
        for (const limits of answers) {
          expect(limits).not.toBeNull();
          expect(Object.keys(limits!).sort()).toEqual(LIMIT_KEYS);
          expect(limits).toEqual(want);
          for (const key of Object.keys(SYSFS_LIMITS))
            expect(typeof limits![key as keyof typeof SYSFS_LIMITS]).toBe('number');
        }
      });
    });

    it('gives the same for the block device node itself', async () => {
      const fx = fixture(name);
      expect(fs.statSync(fx.device!).isBlockDevice()).toBe(true);
      expect(await blockDeviceLimits(fx.device!)).toEqual(sysfsLimits(fx));
    });
  });

  it('is null on tmpfs, by path and by fd', async () => {
    await withFile(fixture('tmpfs'), async (file) => {
      expect(await blockDeviceLimits(file)).toBeNull();
      await withFd(file, async (fd) => expect(await blockDeviceLimits(fd)).toBeNull());
    });
  });

  it('rejects a missing path with ENOENT from statx', async () => {
    const missing = path.join(fixture('xfs4k').dir, 'no-such-file');
    const err = await rejection(blockDeviceLimits(missing));
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'statx', path: missing });
  });
});
