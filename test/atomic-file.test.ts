// AtomicFile end to end on the real XFS (4K and 16K blocks), ext4 and tmpfs
// fixtures: open flags as fs has them (plus O_DIRECT), atomic and plain
// writes read back both through the handle (O_DIRECT) and through plain
// buffered fs reads, every refusal of docs/api.md's error table (the file is left
// exactly as it was), kernel errors, closing, and concurrency.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AtomicFile,
  AtomicWriteError,
  allocAligned,
  open,
  openSync,
  statAtomic,
  statAtomicSync,
} from '../dist/index.js';
import { describeFs, fixture, tempPath, type Fixture, type FixtureName } from './helpers/filesystems';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const ALL: FixtureName[] = ['xfs4k', 'xfs16k', 'ext4', 'tmpfs'];
const XFS: FixtureName[] = ['xfs4k', 'xfs16k'];
const { O_DIRECT, O_APPEND, O_CREAT, O_EXCL, O_WRONLY, O_RDWR } = fs.constants;

type ErrorClass = typeof TypeError | typeof RangeError | typeof AtomicWriteError | typeof Error;
type SysError = NodeJS.ErrnoException & AtomicWriteError;

// ---------------------------------------------------------------------------
// small helpers

/** An aligned buffer full of random bytes: a pattern no other write has. */
function pattern(length: number): Buffer {
  return randomFillSync(allocAligned(length));
}

const created: string[] = [];
afterEach(() => {
  for (const file of created.splice(0)) fs.rmSync(file, { force: true });
});

/** A fresh file on the fixture with `content` (or none: not created); removed after the test. */
function newFile(fx: Fixture, content?: Buffer): string {
  const file = tempPath(fx, 'af');
  created.push(file);
  if (content) fs.writeFileSync(file, content);
  return file;
}

/** Runs fn on an AtomicFile opened with openSync, closing it afterwards. */
async function withOpen<T>(file: string, flags: string, fn: (f: AtomicFile) => T | Promise<T>): Promise<T> {
  const f = openSync(file, flags);
  try {
    return await fn(f);
  } finally {
    f.closeSync();
  }
}

/** `length` bytes at `position` read with plain buffered fs (no O_DIRECT). */
function fsRead(file: string, length: number, position: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    return buf.subarray(0, fs.readSync(fd, buf, 0, length, position));
  } finally {
    fs.closeSync(fd);
  }
}

/** The 'flags:' field of /proc/self/fdinfo/<fd> (octal there). */
function fdFlags(fd: number): number {
  const line = fs
    .readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags:'));
  return parseInt(line!.split(/\s+/)[1], 8);
}

/** What /proc/self/fd/<fd> points at, or null if the fd is not open. */
function fdTarget(fd: number): string | null {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** Flush requests the fixture's loop device has completed (field 16 of its sysfs stat). */
function flushCount(fx: Fixture): number {
  const fields = fs
    .readFileSync(`/sys/block/${path.basename(fx.device!)}/stat`, 'utf8')
    .trim()
    .split(/\s+/);
  expect(fields.length).toBeGreaterThanOrEqual(17);
  return Number(fields[15]);
}

interface Snapshot {
  sha256: string;
  size: bigint;
  mtimeNs: bigint;
}

function snapshot(file: string): Snapshot {
  const st = fs.statSync(file, { bigint: true });
  return {
    sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex'),
    size: st.size,
    mtimeNs: st.mtimeNs,
  };
}

/** The error a promise rejects with; fails if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<SysError> {
  try {
    await promise;
  } catch (err) {
    return err as SysError;
  }
  throw new Error('expected a rejection, got a value');
}

function thrown(fn: () => unknown): SysError {
  try {
    fn();
  } catch (err) {
    return err as SysError;
  }
  throw new Error('expected a throw, got a value');
}

/**
 * The error of an async call, which must come as a rejected promise (never a
 * synchronous throw), and of its sync twin.
 */
async function bothErrors(asyncCall: () => Promise<unknown>, syncCall: () => unknown): Promise<SysError[]> {
  let promise: Promise<unknown> | undefined;
  expect(() => (promise = asyncCall())).not.toThrow();
  expect(promise).toBeInstanceOf(Promise);
  return [await rejection(promise!), thrown(syncCall)];
}

/** Calls an AtomicFile method by name with loose arguments. */
function call(f: AtomicFile, method: string, args: unknown[]): unknown {
  return Reflect.apply((f as unknown as Record<string, (...a: unknown[]) => unknown>)[method], f, args);
}

/** The powers of two from..to, inclusive. */
function powersOfTwo(from: number, to: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n *= 2) out.push(n);
  return out;
}

// ---------------------------------------------------------------------------

describeFs('open / openSync', () => {
  const FLAGS: [label: string, flags: string | number][] = [
    ...['r', 'r+', 'w', 'w+', 'wx', 'wx+'].map((f): [string, string] => [`'${f}'`, f]),
    ['O_RDWR', O_RDWR],
    ['O_WRONLY|O_CREAT|O_EXCL', O_WRONLY | O_CREAT | O_EXCL],
  ];
  const opens = {
    open: (file: string, flags?: string | number, mode?: number) => open(file, flags, mode),
    openSync: async (file: string, flags?: string | number, mode?: number) => openSync(file, flags, mode),
  };

  /** What opening did: the error code, or the fd's flags and the file's size then. */
  interface Outcome {
    code?: string;
    flags?: number;
    size?: number;
  }

  describe.each(ALL)('%s', (name) => {
    for (const [label, flags] of FLAGS)
      it(`${label} behaves as fs.openSync does, plus O_DIRECT`, async () => {
        const fx = fixture(name);
        const content = randomBytes(8192);
        for (const existing of [false, true]) {
          const start = () => newFile(fx, existing ? content : undefined);
          const refFile = start();
          let ref: Outcome;
          try {
            const fd = fs.openSync(refFile, flags);
            ref = { flags: fdFlags(fd), size: fs.fstatSync(fd).size };
            fs.closeSync(fd);
          } catch (err) {
            ref = { code: (err as NodeJS.ErrnoException).code };
          }

          for (const [how, openIt] of Object.entries(opens)) {
            const file = start();
            const where = `${how}(${label}) on a ${existing ? 'existing' : 'missing'} file`;
            let f: AtomicFile;
            try {
              f = await openIt(file, flags);
            } catch (e) {
              const err = e as SysError;
              expect(err.code, where).toBe(ref.code);
              expect(err, where).toMatchObject({ syscall: 'open', path: file });
              expect(err.errno, where).toBeLessThan(0);
              expect(err.message.startsWith(`${ref.code}: `), where).toBe(true);
              expect(err.message.endsWith(`, open '${file}'`), where).toBe(true);
              continue;
            }
            try {
              expect(ref.code, `${where}: fs refused with ${ref.code}`).toBeUndefined();
              expect(f.path).toBe(file);
              expect(fdTarget(f.fd)).toBe(file);
              expect(fdFlags(f.fd), where).toBe(ref.flags! | O_DIRECT);
              expect(fs.statSync(file).size, where).toBe(ref.size);
              expect(f.info).toEqual(await statAtomic(file));
              if (existing && ref.size === content.length && (ref.flags! & 3) !== O_WRONLY) {
                const back = allocAligned(8192);
                expect(f.readSync(back, 0)).toBe(8192);
                expect(back.equals(content)).toBe(true);
              }
            } finally {
              f.closeSync();
            }
          }
        }
      });
  });

  it('sets the O_DIRECT bit the kernel shows in fdinfo (0o40000 on x86_64)', async () => {
    if (process.arch === 'x64') expect(O_DIRECT).toBe(0o40000);
    const file = newFile(fixture('xfs4k'), Buffer.alloc(4096));
    await withOpen(file, 'r', (f) => expect(fdFlags(f.fd) & O_DIRECT).toBe(O_DIRECT));
  });

  it('opens r+ by default', async () => {
    const file = newFile(fixture('xfs4k'), Buffer.alloc(4096));
    for (const f of [openSync(file), await open(file)]) {
      expect(fdFlags(f.fd) & 3).toBe(O_RDWR);
      f.closeSync();
    }
  });

  it('applies the mode through the umask, as fs does', async () => {
    const fx = fixture('xfs4k');
    const old = process.umask(0o027);
    try {
      for (const mode of [0o666, 0o600, 0o755, undefined]) {
        for (const openIt of Object.values(opens)) {
          const ref = newFile(fx);
          fs.closeSync(fs.openSync(ref, 'wx', mode));
          const file = newFile(fx);
          (await openIt(file, 'wx', mode)).closeSync();
          const got = fs.statSync(file).mode & 0o777;
          expect(got, `mode ${mode?.toString(8)}`).toBe(fs.statSync(ref).mode & 0o777);
          expect(got).toBe((mode ?? 0o666) & ~0o027);
        }
      }
    } finally {
      process.umask(old);
    }
  });

  const APPEND_FLAGS: [label: string, flags: string | number][] = [
    ...['a', 'a+', 'ax', 'ax+', 'as', 'as+'].map((f): [string, string] => [`'${f}'`, f]),
    ['O_APPEND|O_CREAT|O_WRONLY', O_APPEND | O_CREAT | O_WRONLY],
    ['O_APPEND|O_RDWR', O_APPEND | O_RDWR],
  ];
  for (const [label, flags] of APPEND_FLAGS)
    it(`refuses ${label} with ERR_INVALID_ARG_VALUE and creates nothing`, async () => {
      const file = newFile(fixture('xfs4k'));
      const errs = await bothErrors(
        () => open(file, flags),
        () => openSync(file, flags),
      );
      for (const err of errs) {
        expect(err).toBeInstanceOf(TypeError);
        expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
        expect(err).not.toHaveProperty('syscall');
      }
      expect(fs.existsSync(file)).toBe(false);
    });

  it('refuses to open a directory for writing with EISDIR from open', async () => {
    const dir = fixture('xfs4k').dir;
    const errs = await bothErrors(
      () => open(dir, 'r+'),
      () => openSync(dir, 'r+'),
    );
    for (const err of errs) {
      expect(err).toMatchObject({ code: 'EISDIR', errno: -21, syscall: 'open', path: dir });
      expect(err.message).toBe(`EISDIR: illegal operation on a directory, open '${dir}'`);
    }
  });
});

describeFs('writeAtomic: every power-of-two length, read back', () => {
  // Length L goes to position L: the regions [L, 2L) never overlap and every
  // one is naturally aligned. [0, unitMin) is left as it was.
  const ways = [
    { api: 'async', dsync: false, prefilled: false },
    { api: 'sync', dsync: false, prefilled: true },
    { api: 'async', dsync: true, prefilled: true },
    { api: 'sync', dsync: true, prefilled: false },
  ] as const;

  for (const name of XFS) {
    for (const { api, dsync, prefilled } of ways) {
      const how = `${api}${dsync ? ' with dsync' : ''}, into ${prefilled ? 'a file full of data' : 'an empty file'}`;
      it(`${name}: ${how}`, async () => {
        const file = newFile(fixture(name), Buffer.alloc(0));
        const { unitMin, unitMax } = statAtomicSync(file);
        const top = Math.min(unitMax, 16 * MiB);
        const lengths = powersOfTwo(unitMin, top);
        expect(lengths.length).toBeGreaterThanOrEqual(5);
        const expected = prefilled ? randomBytes(2 * top) : Buffer.alloc(2 * top);
        fs.writeFileSync(file, prefilled ? expected : Buffer.alloc(0));
        const options = dsync ? { dsync: true } : undefined;

        await withOpen(file, 'r+', async (f) => {
          for (const length of lengths) {
            const data = pattern(length);
            const written =
              api === 'async' ? await f.writeAtomic(data, length, options) : f.writeAtomicSync(data, length, options);
            expect(written, `${length} bytes`).toBe(length);
            data.copy(expected, length);
          }
          for (const length of lengths) {
            const back = allocAligned(length);
            const read = api === 'async' ? await f.read(back, length) : f.readSync(back, length);
            expect(read, `${length} bytes`).toBe(length);
            expect(back.equals(expected.subarray(length, 2 * length)), `O_DIRECT read of ${length} bytes`).toBe(true);
            expect(fsRead(file, length, length).equals(back), `fs read of ${length} bytes`).toBe(true);
          }
        });
        const whole = fs.readFileSync(file);
        expect(whole.length).toBe(2 * top);
        expect(whole.equals(expected)).toBe(true);
      });
    }
  }
});

describeFs('writeAtomic beyond 4 GiB (sparse files)', () => {
  describe.each(XFS)('%s', (name) => {
    const positions: [label: string, position: number][] = [
      ['5 GiB', 5 * GiB],
      ['2^40', 2 ** 40],
      ['2^53 - 1 MiB', 2 ** 53 - MiB],
    ];
    for (const [label, position] of positions)
      it(`writes and reads back at ${label}`, async () => {
        const file = newFile(fixture(name), Buffer.alloc(0));
        const length = 4 * statAtomicSync(file).unitMin;
        const [first, second] = [pattern(length), pattern(length)];
        await withOpen(file, 'r+', async (f) => {
          expect(await f.writeAtomic(first, position)).toBe(length);
          expect(f.writeAtomicSync(second, position + length, { dsync: true })).toBe(length);
          const back = [allocAligned(length), allocAligned(length)];
          expect(await f.read(back[0], position)).toBe(length);
          expect(f.readSync(back[1], position + length)).toBe(length);
          expect(back[0].equals(first)).toBe(true);
          expect(back[1].equals(second)).toBe(true);
          // Far before the data is a hole: zeros.
          const hole = allocAligned(length);
          hole.fill(0xff);
          expect(f.readSync(hole, position - length)).toBe(length);
          expect(hole.equals(Buffer.alloc(length))).toBe(true);
        });
        expect(fsRead(file, length, position).equals(first)).toBe(true);
        expect(fsRead(file, length, position + length).equals(second)).toBe(true);
        const st = fs.statSync(file);
        expect(st.size).toBe(position + 2 * length);
        expect(st.blocks * 512).toBeLessThan(16 * MiB);
      });
  });
});

describeFs('write / read (O_DIRECT, no RWF_ATOMIC)', () => {
  describe.each(ALL)('%s', (name) => {
    it('round-trips, with short reads at the end of the file and 0 at EOF', async () => {
      const size = 5 * 4096 + 100;
      const expected = randomBytes(size);
      const file = newFile(fixture(name), expected);
      await withOpen(file, 'r+', async (f) => {
        const a = pattern(8192);
        const b = pattern(4096);
        expect(await f.write(a, 4096)).toBe(8192);
        expect(f.writeSync(b, 12288, { dsync: true })).toBe(4096);
        a.copy(expected, 4096);
        b.copy(expected, 12288);

        const back = allocAligned(12288);
        expect(await f.read(back, 4096)).toBe(12288);
        expect(back.equals(expected.subarray(4096, 16384))).toBe(true);
        back.fill(0);
        expect(f.readSync(back, 4096)).toBe(12288);
        expect(back.equals(expected.subarray(4096, 16384))).toBe(true);

        const reads = [
          (buf: Buffer, pos: number) => f.read(buf, pos),
          async (buf: Buffer, pos: number) => f.readSync(buf, pos),
        ];
        for (const read of reads) {
          const tail = allocAligned(8192);
          expect(await read(tail, 16384)).toBe(size - 16384);
          expect(tail.subarray(0, size - 16384).equals(expected.subarray(16384))).toBe(true);
          expect(await read(allocAligned(4096), 6 * 4096)).toBe(0);
        }
      });
      expect(fs.readFileSync(file).equals(expected)).toBe(true);
      expect(fsRead(file, 8192, 4096).equals(expected.subarray(4096, 12288))).toBe(true);
    });
  });
});

describeFs('no O_DIRECT rule where the filesystem states none', () => {
  it('tmpfs (alignments 0): any address, length and position go through', async () => {
    const expected = randomBytes(8192);
    const file = newFile(fixture('tmpfs'), expected);
    await withOpen(file, 'r+', async (f) => {
      expect([f.info.dioMemAlign, f.info.dioOffsetAlign]).toEqual([0, 0]);
      const data = randomFillSync(allocAligned(101).subarray(1));
      expect(await f.write(data, 333)).toBe(100);
      expect(f.writeSync(data, 1001)).toBe(100);
      data.copy(expected, 333);
      data.copy(expected, 1001);
      const back = allocAligned(1001).subarray(1);
      expect(await f.read(back, 333)).toBe(1000);
      expect(back.equals(expected.subarray(333, 1333))).toBe(true);
    });
    expect(fs.readFileSync(file).equals(expected)).toBe(true);
  });
});

describeFs('any ArrayBufferView, exactly its byteOffset and byteLength', () => {
  it.each(XFS)('%s: a DataView and a Float64Array into the middle of a larger buffer', async (name) => {
    const file = newFile(fixture(name), Buffer.alloc(0));
    await withOpen(file, 'r+', async (f) => {
      const unit = f.info.unitMin;
      const backing = pattern(3 * unit);
      const view = new DataView(backing.buffer, backing.byteOffset + unit, unit);
      expect(await f.writeAtomic(view, unit)).toBe(unit);
      expect(f.writeSync(new Float64Array(backing.buffer, backing.byteOffset + 2 * unit, unit / 8), 2 * unit)).toBe(
        unit,
      );
      const expected = Buffer.concat([Buffer.alloc(unit), backing.subarray(unit)]);
      expect(fs.readFileSync(file).equals(expected)).toBe(true);

      const into = allocAligned(4 * unit).fill(0xee);
      expect(f.readSync(new Uint32Array(into.buffer, into.byteOffset + unit, (2 * unit) / 4), unit)).toBe(2 * unit);
      expect(into.subarray(unit, 3 * unit).equals(backing.subarray(unit))).toBe(true);
      // Around the view, nothing was touched.
      expect(into.subarray(0, unit).every((b) => b === 0xee)).toBe(true);
      expect(into.subarray(3 * unit).every((b) => b === 0xee)).toBe(true);
    });
  });
});

describeFs("refusals of docs/api.md's error table, through a real AtomicFile", () => {
  type Info = ReturnType<typeof statAtomicSync>;
  interface Refusal {
    what: string;
    fixtures: FixtureName[];
    methods: ('writeAtomic' | 'write' | 'read')[];
    args: (info: Info) => unknown[];
    cls: ErrorClass;
    code: string;
    /** The length and position an AtomicWriteError must carry. */
    numbers?: (info: Info) => { length: number; position: number };
  }
  const page = () => allocAligned(4096);
  const misaligned = (n: number) => allocAligned(n + 1).subarray(1);
  const anyIo = ['writeAtomic', 'write', 'read'] as Refusal['methods'];
  const writes = ['writeAtomic', 'write'] as Refusal['methods'];
  const typeError = { cls: TypeError, code: 'ERR_INVALID_ARG_TYPE' };
  const rangeError = { cls: RangeError, code: 'ERR_OUT_OF_RANGE' };
  const refusal = (code: string) => ({ cls: AtomicWriteError, code });

  const refusals: Refusal[] = [
    {
      what: 'an ArrayBuffer as buffer',
      fixtures: ['xfs4k'],
      methods: anyIo,
      args: () => [new ArrayBuffer(4096), 0],
      ...typeError,
    },
    {
      what: 'a string as buffer',
      fixtures: ['xfs4k'],
      methods: anyIo,
      args: () => ['x'.repeat(4096), 0],
      ...typeError,
    },
    {
      what: 'an array as buffer',
      fixtures: ['xfs4k'],
      methods: anyIo,
      args: () => [[...Buffer.alloc(4096)], 0],
      ...typeError,
    },
    { what: 'a string position', fixtures: ['xfs4k'], methods: anyIo, args: () => [page(), '0'], ...typeError },
    { what: 'a bigint position', fixtures: ['xfs4k'], methods: anyIo, args: () => [page(), 0n], ...typeError },
    { what: 'no position', fixtures: ['xfs4k'], methods: anyIo, args: () => [page()], ...typeError },
    {
      what: 'a string as options',
      fixtures: ['xfs4k'],
      methods: writes,
      args: () => [page(), 0, 'dsync'],
      ...typeError,
    },
    { what: 'a number as options', fixtures: ['xfs4k'], methods: writes, args: () => [page(), 0, 1], ...typeError },
    {
      what: 'a non-boolean dsync',
      fixtures: ['xfs4k'],
      methods: writes,
      args: () => [page(), 0, { dsync: 1 }],
      ...typeError,
    },
    ...[-4096, 4096.5, NaN, Infinity, 2 ** 53].map((position) => ({
      what: `position ${position}`,
      fixtures: ['xfs4k'] as FixtureName[],
      methods: anyIo,
      args: () => [page(), position],
      ...rangeError,
    })),
    {
      what: 'an atomic write where there are none',
      fixtures: ['ext4', 'tmpfs'],
      methods: ['writeAtomic'],
      args: () => [allocAligned(16384), 16384],
      ...refusal('ERR_ATOMIC_UNSUPPORTED'),
      numbers: () => ({ length: 16384, position: 16384 }),
    },
    ...[
      { what: '12288 bytes', length: () => 12288 },
      { what: 'unitMin/2 bytes', length: (i: Info) => i.unitMin / 2 },
      { what: 'unitMax*2 bytes', length: (i: Info) => i.unitMax * 2 },
    ].map(({ what, length }) => ({
      what,
      fixtures: XFS,
      methods: ['writeAtomic'] as Refusal['methods'],
      args: (i: Info) => [allocAligned(length(i)), 0],
      ...refusal('ERR_ATOMIC_LENGTH'),
      numbers: (i: Info) => ({ length: length(i), position: 0 }),
    })),
    {
      what: 'zero bytes',
      fixtures: XFS,
      methods: ['writeAtomic'],
      args: () => [allocAligned(4096).subarray(0, 0), 0],
      ...refusal('ERR_ATOMIC_LENGTH'),
      numbers: () => ({ length: 0, position: 0 }),
    },
    {
      what: '16K at 4K',
      fixtures: ['xfs4k'],
      methods: ['writeAtomic'],
      args: () => [allocAligned(16384), 4096],
      ...refusal('ERR_ATOMIC_ALIGNMENT'),
      numbers: () => ({ length: 16384, position: 4096 }),
    },
    {
      what: '32K at 16K',
      fixtures: ['xfs16k'],
      methods: ['writeAtomic'],
      args: () => [allocAligned(32768), 16384],
      ...refusal('ERR_ATOMIC_ALIGNMENT'),
      numbers: () => ({ length: 32768, position: 16384 }),
    },
    {
      what: 'a buffer 1 byte past an aligned address',
      fixtures: XFS,
      methods: ['writeAtomic'],
      args: (i: Info) => [misaligned(i.unitMin), 0],
      ...refusal('ERR_DIRECT_IO_ALIGNMENT'),
      numbers: (i: Info) => ({ length: i.unitMin, position: 0 }),
    },
    {
      what: 'a buffer 1 byte past an aligned address',
      fixtures: ['xfs4k', 'xfs16k', 'ext4'],
      methods: ['write', 'read'],
      args: () => [misaligned(4096), 0],
      ...refusal('ERR_DIRECT_IO_ALIGNMENT'),
      numbers: () => ({ length: 4096, position: 0 }),
    },
    {
      what: 'a length off dioOffsetAlign',
      fixtures: ['xfs4k', 'xfs16k', 'ext4'],
      methods: ['write', 'read'],
      args: () => [allocAligned(4096 + 100), 0],
      ...refusal('ERR_DIRECT_IO_ALIGNMENT'),
      numbers: () => ({ length: 4196, position: 0 }),
    },
    {
      what: 'a position off dioOffsetAlign',
      fixtures: ['xfs4k', 'xfs16k', 'ext4'],
      methods: ['write', 'read'],
      args: () => [allocAligned(4096), 100],
      ...refusal('ERR_DIRECT_IO_ALIGNMENT'),
      numbers: () => ({ length: 4096, position: 100 }),
    },
  ];
  const cases = refusals.flatMap((r) =>
    r.fixtures.flatMap((name) =>
      r.methods.map((method) => ({ ...r, name, method, title: `${name} ${method}: ${r.what} → ${r.code}` })),
    ),
  );

  for (const { title, name, method, args, cls, code, numbers } of cases)
    it(title, async () => {
      const file = newFile(fixture(name), randomBytes(64 * KiB));
      const before = snapshot(file);
      await withOpen(file, 'r+', async (f) => {
        const callArgs = args(f.info); // one buffer for both forms: the messages name its address
        const errs = await bothErrors(
          () => call(f, method, callArgs) as Promise<unknown>,
          () => call(f, `${method}Sync`, callArgs),
        );
        for (const err of errs) {
          expect(err).toBeInstanceOf(cls);
          expect(err.code).toBe(code);
          expect(err).not.toHaveProperty('syscall');
          if (cls !== AtomicWriteError) continue;
          expect(err.name).toBe('AtomicWriteError');
          expect(err.message).toContain(file);
          expect(err).toMatchObject({ ...numbers!(f.info), unitMin: f.info.unitMin, unitMax: f.info.unitMax });
        }
        expect(errs[1].message).toBe(errs[0].message);
      });
      expect(snapshot(file)).toEqual(before);
    });

  it('names the rule and the limits in an ERR_ATOMIC_LENGTH message, as docs/api.md shows', async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(64 * KiB));
    await withOpen(file, 'r+', (f) => {
      const err = thrown(() => f.writeAtomicSync(allocAligned(12288), 0));
      expect(err.message).toBe(
        `atomic write of 12288 bytes to ${file}: length must be a power of two between ${f.info.unitMin} and ${f.info.unitMax}`,
      );
    });
  });
});

describeFs('kernel errors come through as Node fs errors', () => {
  it("EBADF from pwritev2 when writing through a handle opened 'r'", async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(16384));
    const before = snapshot(file);
    await withOpen(file, 'r', async (f) => {
      for (const method of ['writeAtomic', 'write']) {
        const errs = await bothErrors(
          () => call(f, method, [pattern(4096), 4096]) as Promise<unknown>,
          () => call(f, `${method}Sync`, [pattern(4096), 4096]),
        );
        for (const err of errs) {
          expect(err, method).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'pwritev2', path: file });
          expect(err.message).toBe(`EBADF: bad file descriptor, pwritev2 '${file}'`);
        }
      }
    });
    expect(snapshot(file)).toEqual(before);
  });

  it("EBADF from preadv2 when reading through a handle opened 'w'", async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(16384));
    await withOpen(file, 'w', async (f) => {
      const errs = await bothErrors(
        () => f.read(allocAligned(4096), 0),
        () => f.readSync(allocAligned(4096), 0),
      );
      for (const err of errs) {
        expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'preadv2', path: file });
        expect(err.message).toBe(`EBADF: bad file descriptor, preadv2 '${file}'`);
      }
    });
  });

  it('EFBIG from pwritev2 past the largest file ext4 allows', async () => {
    const file = newFile(fixture('ext4'), randomBytes(16384));
    const before = snapshot(file);
    await withOpen(file, 'r+', async (f) => {
      const errs = await bothErrors(
        () => f.write(pattern(4096), 2 ** 50),
        () => f.writeSync(pattern(4096), 2 ** 50),
      );
      for (const err of errs) {
        expect(err).toMatchObject({ code: 'EFBIG', errno: -27, syscall: 'pwritev2', path: file });
        expect(err.message).toBe(`EFBIG: file too large, pwritev2 '${file}'`);
      }
    });
    expect(snapshot(file)).toEqual(before);
  });
});

describeFs('closing', () => {
  const IO_CALLS: [method: string, args: () => unknown[]][] = [
    ['writeAtomic', () => [pattern(4096), 0]],
    ['write', () => [pattern(4096), 0]],
    ['read', () => [allocAligned(4096), 0]],
    ['datasync', () => []],
    ['sync', () => []],
  ];

  it('refuses every I/O method on a closed file with EBADF and no syscall; fd is -1', async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(16384));
    const before = snapshot(file);
    const f = await open(file, 'r+');
    const fd = f.fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    await f.close();
    expect(f.fd).toBe(-1);
    expect(fdTarget(fd)).not.toBe(file);
    for (const [method, args] of IO_CALLS) {
      const errs = await bothErrors(
        () => call(f, method, args()) as Promise<unknown>,
        () => call(f, `${method}Sync`, args()),
      );
      for (const err of errs) {
        expect(err, method).toBeInstanceOf(Error);
        expect(err.code, method).toBe('EBADF');
        expect(err, method).not.toHaveProperty('syscall');
      }
    }
    expect(snapshot(file)).toEqual(before);
  });

  it('closes harmlessly twice, in either form', async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(4096));
    const a = openSync(file);
    await a.close();
    await expect(a.close()).resolves.toBeUndefined();
    expect(() => a.closeSync()).not.toThrow();
    const b = openSync(file);
    b.closeSync();
    expect(() => b.closeSync()).not.toThrow();
    await expect(b.close()).resolves.toBeUndefined();
    expect([a.fd, b.fd]).toEqual([-1, -1]);
  });

  it('is closed by await using and by [Symbol.asyncDispose]', async () => {
    const file = newFile(fixture('xfs4k'), randomBytes(4096));
    let f: AtomicFile;
    let fd: number;
    {
      await using g = await open(file, 'r+');
      f = g;
      fd = g.fd;
      expect(fdTarget(fd)).toBe(file);
    }
    expect(f.fd).toBe(-1);
    expect(fdTarget(fd)).not.toBe(file);

    const h = openSync(file);
    const hfd = h.fd;
    expect(fdTarget(hfd)).toBe(file);
    await h[Symbol.asyncDispose]();
    expect(h.fd).toBe(-1);
    expect(fdTarget(hfd)).not.toBe(file);
  });

  describe.each(['close', 'closeSync'] as const)('%s() with 16 writeAtomic calls in flight', (closer) => {
    it('lets them all finish, then closes; later writes get EBADF', async () => {
      const file = newFile(fixture('xfs4k'), Buffer.alloc(0));
      const slot = 16384;
      const data = Array.from({ length: 16 }, () => pattern(slot));
      const f = openSync(file, 'r+');
      const fd = f.fd;
      const events: string[] = [];
      const writes = data.map((d, i) => f.writeAtomic(d, i * slot).then((n) => (events.push('write'), n)));
      const closed = closer === 'close' ? f.close().then(() => void events.push('close')) : (f.closeSync(), undefined);
      expect(f.fd).toBe(-1);
      const late = await rejection(f.writeAtomic(pattern(slot), 16 * slot));
      expect(late.code).toBe('EBADF');
      expect(late).not.toHaveProperty('syscall');

      expect(await Promise.all(writes)).toEqual(data.map(() => slot));
      await closed;
      await nextTurn();
      if (closer === 'close') expect(events).toEqual([...data.map(() => 'write'), 'close']);
      expect(fdTarget(fd)).not.toBe(file);
      expect(fs.readFileSync(file).equals(Buffer.concat(data))).toBe(true);
    });
  });
});

describeFs('256 concurrent writeAtomic calls to distinct pages', () => {
  it.each(XFS)('%s: every page lands whole', async (name) => {
    const file = newFile(fixture(name), Buffer.alloc(0));
    const size = 16 * KiB;
    const pages = Array.from({ length: 256 }, () => pattern(size));
    await withOpen(file, 'r+', async (f) => {
      const results = await Promise.all(pages.map((p, i) => f.writeAtomic(p, i * size)));
      expect(results).toEqual(pages.map(() => size));
      const back = allocAligned(256 * size);
      expect(await f.read(back, 0)).toBe(256 * size);
      pages.forEach((p, i) => expect(back.subarray(i * size, (i + 1) * size).equals(p), `page ${i}`).toBe(true));
    });
    const onDisk = fs.readFileSync(file);
    pages.forEach((p, i) => expect(onDisk.subarray(i * size, (i + 1) * size).equals(p), `page ${i}`).toBe(true));
  });
});

describeFs('durability reaches the device', () => {
  // The loop devices have a write-back cache: RWF_DSYNC and fdatasync/fsync
  // must send it flushes, which /sys/block/loopN/stat counts. Plain writes
  // send none (a stray background flush is tolerated).
  const N = 8;
  const writers = [
    { fixtures: XFS, method: 'writeAtomic' },
    { fixtures: XFS, method: 'writeAtomicSync' },
    { fixtures: ['xfs4k', 'ext4'] as FixtureName[], method: 'write' },
    { fixtures: ['xfs4k', 'ext4'] as FixtureName[], method: 'writeSync' },
  ];
  for (const { fixtures, method } of writers) {
    for (const name of fixtures) {
      it(`${name}: ${method} with { dsync: true } flushes, without it does not`, async () => {
        const fx = fixture(name);
        const file = newFile(fx, randomBytes(N * 16 * KiB));
        await withOpen(file, 'r+', async (f) => {
          const flushesOf = async (options?: { dsync: boolean }) => {
            const before = flushCount(fx);
            for (let i = 0; i < N; i++)
              expect(await call(f, method, [pattern(16 * KiB), i * 16 * KiB, options])).toBe(16 * KiB);
            return flushCount(fx) - before;
          };
          expect(await flushesOf({ dsync: true })).toBeGreaterThanOrEqual(N);
          expect(await flushesOf()).toBeLessThan(N);
          expect(await flushesOf({ dsync: false })).toBeLessThan(N);
        });
      });
    }
  }

  it.each(['xfs4k', 'xfs16k', 'ext4'] as FixtureName[])('%s: datasync() and sync() resolve and flush', async (name) => {
    const fx = fixture(name);
    const file = newFile(fx, Buffer.alloc(0));
    await withOpen(file, 'r+', async (f) => {
      for (const method of ['datasync', 'sync'] as const) {
        expect(await f.write(pattern(4096), 0)).toBe(4096);
        const before = flushCount(fx);
        await expect(f[method]()).resolves.toBeUndefined();
        expect(flushCount(fx), method).toBeGreaterThan(before);
      }
    });
    expect(fs.statSync(file).size).toBe(4096);
  });

  it('tmpfs: datasync() and sync() resolve', async () => {
    const file = newFile(fixture('tmpfs'), Buffer.alloc(0));
    await withOpen(file, 'r+', async (f) => {
      expect(await f.write(pattern(4096), 0)).toBe(4096);
      await expect(f.datasync()).resolves.toBeUndefined();
      await expect(f.sync()).resolves.toBeUndefined();
    });
    expect(fs.readFileSync(file).length).toBe(4096);
  });
});
