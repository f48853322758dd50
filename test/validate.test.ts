// The rules untorn enforces before any system call, as pure functions: every
// row of the error table in docs/api.md, with the boundary on both sides.
import { describe, expect, it } from 'vitest';
import { AtomicWriteError } from '../lib/errors';
import type { AtomicWriteInfo } from '../lib/info';
import {
  checkAtomicWrite,
  checkDirectIo,
  isPowerOfTwo,
  parseMode,
  parseOpenFlags,
  validateAllocation,
  validatePath,
  validatePosition,
  validateTarget,
  validateView,
  validateWriteOptions,
} from '../lib/validate';
import { constants } from 'node:fs';

const xfs: AtomicWriteInfo = {
  supported: true,
  unitMin: 4096,
  unitMax: 2097152,
  unitMaxOpt: 0,
  segmentsMax: 1,
  dioMemAlign: 512,
  dioOffsetAlign: 512,
  blockSize: 4096,
};
const unsupported: AtomicWriteInfo = { ...xfs, supported: false, unitMin: 0, unitMax: 0, segmentsMax: 0 };
const noDioInfo: AtomicWriteInfo = { ...xfs, dioMemAlign: 0, dioOffsetAlign: 0 };
const PATH = '/data/pages';
const ALIGNED = 0x7f0000000000; // a page-aligned address

function refusal(fn: () => void): AtomicWriteError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AtomicWriteError);
    expect(err).not.toHaveProperty('syscall');
    return err as AtomicWriteError;
  }
  throw new Error('expected a refusal, got none');
}

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('argument types and ranges', () => {
  it('takes every ArrayBufferView as the buffer and nothing else', () => {
    for (const ok of [Buffer.alloc(1), new Uint8Array(1), new Float64Array(1), new DataView(new ArrayBuffer(8))]) {
      expect(() => validateView(ok)).not.toThrow();
    }
    for (const bad of [new ArrayBuffer(8), 'page', [1, 2], null, undefined, 42, { byteLength: 4096 }]) {
      const err = (() => {
        try {
          validateView(bad);
        } catch (e) {
          return e as TypeError & { code: string };
        }
      })();
      expect(err).toBeInstanceOf(TypeError);
      expect(err?.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(err?.message).toMatch(/"buffer" argument must be an instance of Buffer, TypedArray, or DataView/);
    }
  });

  it('refuses a position that is not a number with a TypeError', () => {
    for (const bad of ['0', 0n, undefined, null, {}, [0]]) {
      expect(() => validatePosition(bad)).toThrow(TypeError);
      expect(codeOf(() => validatePosition(bad))).toBe('ERR_INVALID_ARG_TYPE');
    }
  });

  it('takes positions 0 .. 2^53-1 and refuses negative, fractional, NaN, infinite and 2^53', () => {
    for (const ok of [0, 1, 2 ** 32, 5 * 2 ** 30, Number.MAX_SAFE_INTEGER])
      expect(() => validatePosition(ok)).not.toThrow();
    for (const bad of [-1, -0.5, 0.5, 4096.1, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 60]) {
      expect(() => validatePosition(bad)).toThrow(RangeError);
      expect(codeOf(() => validatePosition(bad))).toBe('ERR_OUT_OF_RANGE');
    }
  });

  it('reads { dsync } options and refuses anything else', () => {
    expect(validateWriteOptions(undefined)).toBe(false);
    expect(validateWriteOptions({})).toBe(false);
    expect(validateWriteOptions({ dsync: false })).toBe(false);
    expect(validateWriteOptions({ dsync: true })).toBe(true);
    for (const bad of [null, 'dsync', 1, true])
      expect(codeOf(() => validateWriteOptions(bad))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => validateWriteOptions({ dsync: 1 }))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes a path or a file descriptor as a statx target', () => {
    for (const ok of ['/data', 'relative', 0, 3, 2 ** 31 - 1]) expect(() => validateTarget(ok)).not.toThrow();
    for (const bad of [-1, 1.5, 2 ** 31, NaN]) expect(codeOf(() => validateTarget(bad))).toBe('ERR_OUT_OF_RANGE');
    for (const bad of [null, undefined, Buffer.from('/x'), {}])
      expect(codeOf(() => validateTarget(bad))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('refuses a path with a NUL byte, which the kernel would cut short', () => {
    expect(codeOf(() => validatePath('/data/pages\u0000.bak'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => validateTarget('/data\u0000'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => validatePath(42))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('open flags and mode', () => {
  it("maps Node's flag strings, defaulting to 'r+'", () => {
    expect(parseOpenFlags(undefined)).toBe(constants.O_RDWR);
    expect(parseOpenFlags('r')).toBe(constants.O_RDONLY);
    expect(parseOpenFlags('r+')).toBe(constants.O_RDWR);
    expect(parseOpenFlags('w')).toBe(constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
    expect(parseOpenFlags('w+')).toBe(constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
    expect(parseOpenFlags('wx')).toBe(constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_EXCL);
    expect(parseOpenFlags('wx+')).toBe(constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_EXCL);
    expect(parseOpenFlags(constants.O_RDWR | constants.O_CREAT)).toBe(constants.O_RDWR | constants.O_CREAT);
  });

  it('refuses every append mode, as a string or as O_APPEND', () => {
    for (const a of ['a', 'a+', 'ax', 'ax+', 'xa', 'xa+', 'as', 'as+', 'sa', 'sa+']) {
      expect(codeOf(() => parseOpenFlags(a))).toBe('ERR_INVALID_ARG_VALUE');
    }
    expect(codeOf(() => parseOpenFlags(constants.O_WRONLY | constants.O_APPEND))).toBe('ERR_INVALID_ARG_VALUE');
    expect(() => parseOpenFlags(constants.O_APPEND)).toThrow(/O_APPEND.*natural alignment/);
  });

  it('refuses unknown flags', () => {
    expect(codeOf(() => parseOpenFlags('rw'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => parseOpenFlags(''))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => parseOpenFlags(null))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => parseOpenFlags(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => parseOpenFlags(1.5))).toBe('ERR_OUT_OF_RANGE');
  });

  it('takes a mode as a number or an octal string, 0 .. 0o7777', () => {
    expect(parseMode(undefined)).toBe(0o666);
    expect(parseMode(0o600)).toBe(0o600);
    expect(parseMode('644')).toBe(0o644);
    expect(parseMode(0o7777)).toBe(0o7777);
    expect(codeOf(() => parseMode(0o10000))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => parseMode(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => parseMode('rw-'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => parseMode(true))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('allocAligned arguments', () => {
  const MAX = 2 ** 32;
  it('takes a positive safe size and a power-of-two alignment from 1 to 1 MiB', () => {
    for (const [size, alignment] of [
      [1, 1],
      [16384, 4096],
      [1, 1048576],
      [MAX - 4095, 4096],
    ]) {
      expect(() => validateAllocation(size, alignment, MAX)).not.toThrow();
    }
  });
  it('refuses sizes and alignments out of range with ERR_OUT_OF_RANGE', () => {
    for (const [size, alignment] of [
      [0, 4096],
      [-1, 4096],
      [1.5, 4096],
      [NaN, 4096],
      [2 ** 53, 4096],
      [16, 0],
      [16, 3],
      [16, 4097],
      [16, 2097152],
      [16, -4096],
      [16, 0.5],
      [MAX - 4094, 4096],
    ]) {
      const code = codeOf(() => validateAllocation(size, alignment, MAX));
      expect(code, `size ${size}, alignment ${alignment}`).toBe('ERR_OUT_OF_RANGE');
    }
  });
  it('refuses non-numbers with ERR_INVALID_ARG_TYPE', () => {
    expect(codeOf(() => validateAllocation('16', 4096, MAX))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => validateAllocation(16, '4096', MAX))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => validateAllocation(16, null, MAX))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('isPowerOfTwo', () => {
  it('is exact up to 2^53', () => {
    for (let k = 0; k <= 52; k++) expect(isPowerOfTwo(2 ** k), `2^${k}`).toBe(true);
    for (const n of [
      0,
      -4096,
      3,
      12288,
      4097,
      2 ** 31 - 1,
      2 ** 31 + 1,
      2 ** 52 + 1,
      Number.MAX_SAFE_INTEGER,
      0.5,
      NaN,
      Infinity,
    ]) {
      expect(isPowerOfTwo(n), String(n)).toBe(false);
    }
  });
});

describe('atomic write rules', () => {
  it('accepts what the kernel accepts', () => {
    for (const [length, position] of [
      [4096, 0],
      [4096, 4096],
      [16384, 16384],
      [2097152, 0],
      [2097152, 2 ** 32],
      [16384, 5 * 2 ** 30],
      [16384, Number.MAX_SAFE_INTEGER + 1 - 16384],
    ]) {
      expect(() => checkAtomicWrite(xfs, length, position, ALIGNED, PATH), `${length}@${position}`).not.toThrow();
    }
  });

  it('ERR_ATOMIC_UNSUPPORTED when statx reports no atomic support, before any other rule', () => {
    const err = refusal(() => checkAtomicWrite(unsupported, 12288, 1, ALIGNED + 1, PATH));
    expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
    expect(err.message).toMatch(/^atomic write of 12288 bytes to \/data\/pages: .*STATX_ATTR_WRITE_ATOMIC/);
  });

  it('ERR_ATOMIC_LENGTH outside [unitMin, unitMax] or not a power of two, on both sides of each bound', () => {
    for (const length of [0, 512, 2048, 4095, 4096 + 512, 12288, 2097152 - 512, 2097152 + 4096, 4194304]) {
      const err = refusal(() => checkAtomicWrite(xfs, length, 0, ALIGNED, PATH));
      expect(err.code, `length ${length}`).toBe('ERR_ATOMIC_LENGTH');
      expect(err).toMatchObject({ length, position: 0, unitMin: 4096, unitMax: 2097152, path: PATH });
    }
    expect(() => checkAtomicWrite(xfs, 4096, 0, ALIGNED, PATH)).not.toThrow();
    expect(() => checkAtomicWrite(xfs, 2097152, 0, ALIGNED, PATH)).not.toThrow();
  });

  it('words the length rule as the example in docs/api.md does', () => {
    const err = refusal(() => checkAtomicWrite(xfs, 12288, 0, ALIGNED, PATH));
    expect(err.message).toBe(
      'atomic write of 12288 bytes to /data/pages: length must be a power of two between 4096 and 2097152',
    );
    expect(err.name).toBe('AtomicWriteError');
    expect(err).toBeInstanceOf(Error);
  });

  it('checks the length before the alignment', () => {
    expect(refusal(() => checkAtomicWrite(xfs, 12288, 4096, ALIGNED, PATH)).code).toBe('ERR_ATOMIC_LENGTH');
  });

  it('ERR_ATOMIC_ALIGNMENT when the position is not a multiple of the length', () => {
    for (const position of [4096, 8192, 16384 + 4096, 16384 - 512, 2 ** 32 + 8192]) {
      const err = refusal(() => checkAtomicWrite(xfs, 16384, position, ALIGNED, PATH));
      expect(err.code, `position ${position}`).toBe('ERR_ATOMIC_ALIGNMENT');
      expect(err).toMatchObject({ length: 16384, position });
      expect(err.message).toBe(
        `atomic write of 16384 bytes at position ${position} to /data/pages: position must be a multiple of the length (16384)`,
      );
    }
  });

  it('checks natural alignment before O_DIRECT alignment', () => {
    expect(refusal(() => checkAtomicWrite(xfs, 16384, 8192, ALIGNED + 1, PATH)).code).toBe('ERR_ATOMIC_ALIGNMENT');
  });

  it('ERR_DIRECT_IO_ALIGNMENT for a buffer address off dioMemAlign, one byte either side', () => {
    for (const address of [ALIGNED + 1, ALIGNED - 1, ALIGNED + 256, ALIGNED + 511]) {
      const err = refusal(() => checkAtomicWrite(xfs, 16384, 0, address, PATH));
      expect(err.code).toBe('ERR_DIRECT_IO_ALIGNMENT');
      expect(err.address).toBe(address);
      expect(err.message).toContain(`0x${address.toString(16)}`);
      expect(err.message).toContain('dioMemAlign 512');
    }
    expect(() => checkAtomicWrite(xfs, 16384, 0, ALIGNED + 512, PATH)).not.toThrow();
  });

  it('lets the kernel judge O_DIRECT alignment where the filesystem did not say (0)', () => {
    expect(() => checkAtomicWrite(noDioInfo, 16384, 0, ALIGNED + 1, PATH)).not.toThrow();
  });
});

describe('O_DIRECT rules of plain writes and reads', () => {
  it('refuses length and position off dioOffsetAlign, and accepts both bounds', () => {
    expect(() => checkDirectIo(xfs, 'write', 512, 512, ALIGNED, PATH)).not.toThrow();
    expect(() => checkDirectIo(xfs, 'read', 12288, 4096 * 3, ALIGNED, PATH)).not.toThrow();
    for (const [length, position] of [
      [511, 0],
      [513, 0],
      [1000, 0],
      [4096, 1],
      [4096, 511],
      [4096, 2 ** 32 + 100],
    ]) {
      const err = refusal(() => checkDirectIo(xfs, 'write', length, position, ALIGNED, PATH));
      expect(err.code, `${length}@${position}`).toBe('ERR_DIRECT_IO_ALIGNMENT');
      expect(err.message).toContain('dioOffsetAlign 512');
    }
    expect(refusal(() => checkDirectIo(xfs, 'read', 4096, 100, ALIGNED, PATH)).message).toBe(
      'read of 4096 bytes at position 100 from /data/pages: position must be a multiple of dioOffsetAlign 512',
    );
  });

  it('checks nothing the filesystem did not report', () => {
    expect(() => checkDirectIo(noDioInfo, 'write', 1000, 3, ALIGNED + 7, PATH)).not.toThrow();
  });
});
