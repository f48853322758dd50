// The errors themselves, beyond their codes: the kernel's wording for
// EOPNOTSUPP, and stack traces that start where untorn was called, never in
// untorn's error or validation code (lib/errors.ts, lib/validate.ts), for
// refused writes and failed system calls alike, on the real fixtures.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocAligned, AtomicWriteError, open, openSync, statAtomic, statAtomicSync } from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { BenchError, check, closedError, fsError, ProbeError, UntornError } from '../dist/errors.js';
import { probe } from '../dist/probe/probe.js';
import { describeFs, fixture, tempPath } from './helpers/filesystems';
import { rejection, thrown } from './helpers/caught';

const EOPNOTSUPP = 95;
const INTERNAL_FRAME = /[\\/](?:dist|lib)[\\/](?:errors|validate)\.[jt]s:\d+/;

/** The first "    at ..." line of an error's stack. */
function firstFrame(err: unknown): string {
  const frame = ((err as Error).stack ?? '').split('\n').find((line) => /^\s+at /.test(line));
  if (frame === undefined) throw new Error(`no stack frame in ${(err as Error).stack}`);
  return frame;
}

describe('EOPNOTSUPP', () => {
  it("has Linux's name and the kernel's wording (strerror(95)), not libuv's ENOTSUP socket wording", () => {
    const err = fsError(-EOPNOTSUPP, 'pwritev2', '/data/pages');
    expect(err.message).toBe("EOPNOTSUPP: Operation not supported, pwritev2 '/data/pages'");
    expect(err).toMatchObject({ code: 'EOPNOTSUPP', errno: -EOPNOTSUPP, syscall: 'pwritev2', path: '/data/pages' });
    expect(err.message).not.toMatch(/socket|ENOTSUP\b/);
    expect(thrown(() => check(-EOPNOTSUPP, 'pwritev2')).message).toBe('EOPNOTSUPP: Operation not supported, pwritev2');
  });

  it('leaves the other errnos as Node words them', () => {
    expect(fsError(-2, 'open', '/x').message).toBe("ENOENT: no such file or directory, open '/x'");
    expect(closedError('/x').message).toBe("EBADF: bad file descriptor, '/x' is closed");
  });
});

describe('error classes', () => {
  it('share one base with a code; each names itself', () => {
    const bench = new BenchError('ENOSPC', 'no space');
    const probeError = new ProbeError('ERR_PROBE_FILE_TYPE', 'a FIFO', { cause: 'why' });
    for (const [err, name] of [
      [bench, 'BenchError'],
      [probeError, 'ProbeError'],
    ] as const) {
      expect(err).toBeInstanceOf(UntornError);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe(name);
      expect(err.stack!.split('\n')[0]).toBe(`${name}: ${err.message}`);
    }
    expect(bench.code).toBe('ENOSPC');
    expect(probeError.cause).toBe('why');
  });
});

describe('stack traces start outside lib/errors.ts and lib/validate.ts', () => {
  it('for argument errors', async () => {
    for (const err of [
      thrown(() => allocAligned(-1)),
      thrown(() => allocAligned(4096, 3)),
      thrown(() => statAtomicSync(-1)),
      thrown(() => statAtomicSync({} as unknown as string)),
      await rejection(statAtomic('a\u0000b')),
      await rejection(probe('/', { pageSize: 3000 })),
    ]) {
      expect(err.code).toMatch(/^ERR_/);
      expect(firstFrame(err), err.stack).not.toMatch(INTERNAL_FRAME);
    }
  });

  it('for a failed system call', async () => {
    const missing = '/nonexistent-untorn/pages';
    const sync = thrown(() => statAtomicSync(missing));
    const async = await rejection(statAtomic(missing));
    const opened = await rejection(open(missing));
    for (const err of [sync, async, opened, thrown(() => openSync(missing))]) {
      expect(err.code).toBe('ENOENT');
      expect(firstFrame(err), err.stack).not.toMatch(INTERNAL_FRAME);
    }
    expect(firstFrame(sync)).toMatch(/capabilities\.js/);
    expect(firstFrame(opened)).toMatch(/atomic-file\.js/);
  });

  it('keeps as many frames as Error.stackTraceLimit says, the header included', () => {
    const err = thrown(() => allocAligned(-1));
    const frames = err.stack!.split('\n').filter((line) => /^\s+at /.test(line));
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.length).toBeLessThanOrEqual(Error.stackTraceLimit);
    expect(err.stack!.split('\n')[0]).toBe(`RangeError: ${err.message}`);
  });
});

describeFs('stack traces of refused writes and failed writes, on the fixtures', () => {
  it('a write refused before any system call (tmpfs: unsupported; XFS: misaligned) starts in AtomicFile', async () => {
    const tmpfsFile = await open(tempPath(fixture('tmpfs')), 'wx+');
    const xfsFile = openSync(tempPath(fixture('xfs16k')), 'wx+');
    try {
      const page = allocAligned(16384);
      const refusals = [
        await rejection(tmpfsFile.writeAtomic(page, 0)),
        thrown(() => tmpfsFile.writeAtomicSync(page, 0)),
        thrown(() => xfsFile.writeAtomicSync(page, 4096)),
        thrown(() => xfsFile.writeAtomicSync(allocAligned(12288), 0)),
        thrown(() => xfsFile.writeAtomicSync(allocAligned(2 * 16384).subarray(1, 16385), 0)),
        await rejection(xfsFile.writeAtomic(page, -1)),
        thrown(() => xfsFile.writeSync('not a buffer' as unknown as Buffer, 0)),
      ];
      expect(refusals.map((err) => err.code)).toEqual([
        'ERR_ATOMIC_UNSUPPORTED',
        'ERR_ATOMIC_UNSUPPORTED',
        'ERR_ATOMIC_ALIGNMENT',
        'ERR_ATOMIC_LENGTH',
        'ERR_DIRECT_IO_ALIGNMENT',
        'ERR_OUT_OF_RANGE',
        'ERR_INVALID_ARG_TYPE',
      ]);
      expect(refusals[0]).toBeInstanceOf(AtomicWriteError);
      for (const err of refusals) {
        expect(firstFrame(err), err.stack).not.toMatch(INTERNAL_FRAME);
        expect(firstFrame(err), err.stack).toMatch(/atomic-file\.js/);
      }
    } finally {
      await tmpfsFile.close();
      xfsFile.closeSync();
    }
  });

  it('I/O on a closed file (EBADF) starts in AtomicFile', async () => {
    const file = await open(tempPath(fixture('xfs4k')), 'wx+');
    await file.close();
    const err = await rejection(file.write(allocAligned(4096), 0));
    expect(err.code).toBe('EBADF');
    expect(firstFrame(err), err.stack).not.toMatch(INTERNAL_FRAME);
  });

  it("the kernel's EOPNOTSUPP for RWF_ATOMIC on ext4, in the kernel's words, starting at the caller", () => {
    const file = tempPath(fixture('ext4'));
    fs.writeFileSync(file, Buffer.alloc(16384));
    const fd = binding.openSync(file, fs.constants.O_RDWR, 0);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      const result = binding.pwritev2Sync(fd, allocAligned(4096), 0, binding.RWF_ATOMIC);
      expect(result).toBe(-EOPNOTSUPP);
      const err = thrown(() => check(result, 'pwritev2', file));
      expect(err.message).toBe(`EOPNOTSUPP: Operation not supported, pwritev2 '${file}'`);
      expect(firstFrame(err), err.stack).not.toMatch(INTERNAL_FRAME);
      expect(firstFrame(err)).toContain(path.basename(__filename));
    } finally {
      binding.closeSync(fd);
      fs.rmSync(file);
    }
  });
});
