// The bench's settings (lib/bench/options.ts): defaults, checks and the disk space a run needs.
import { describe, expect, it } from 'vitest';
import { bytesNeeded, DEFAULTS, resolveBenchConfig, type BenchOptions } from '../lib/bench/options';
import type { Strategy } from '../lib/bench/types';
import { thrown } from './helpers/caught';

const MiB = 1024 * 1024;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('resolveBenchConfig', () => {
  const resolve = (options: BenchOptions) => resolveBenchConfig(options);
  const code = (options: unknown) => codeOf(() => resolveBenchConfig(options as BenchOptions));

  it('fills in the defaults', () => {
    expect(resolve({})).toEqual({
      pageSize: 16384,
      batch: 64,
      depth: 1,
      sync: 'batch',
      pattern: 'random',
      pages: 4096,
      strategies: ['atomic', 'doublewrite', 'unprotected'],
      rounds: 5,
      writes: null,
      duration: 3,
      explicitStrategies: false,
    });
    expect(resolve({}).duration).toBe(DEFAULTS.duration);
  });

  it('takes every setting given', () => {
    expect(
      resolve({
        pageSize: 4096,
        batch: 8,
        depth: 4,
        sync: 'page',
        pattern: 'sequential',
        pages: 100,
        strategies: ['unprotected', 'atomic'],
        rounds: 2,
        writes: 1000,
      }),
    ).toEqual({
      pageSize: 4096,
      batch: 8,
      depth: 4,
      sync: 'page',
      pattern: 'sequential',
      pages: 100,
      strategies: ['unprotected', 'atomic'],
      rounds: 2,
      writes: 1000,
      duration: null,
      explicitStrategies: true,
    });
  });

  it('refuses options that are not an object', () => {
    for (const bad of [null, undefined, 'fast', 42, true]) {
      const err = thrown(() => resolveBenchConfig(bad as unknown as BenchOptions));
      expect(err).toBeInstanceOf(TypeError);
      expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_TYPE');
    }
  });

  it('takes page sizes that are powers of two in [512, 64 MiB]', () => {
    for (const pageSize of [512, 1024, 4096, 16384, 65536, 64 * MiB])
      expect(resolve({ pageSize }).pageSize).toBe(pageSize);
    for (const pageSize of [256, 511, 513, 1000, 12288, 64 * MiB + 1, 128 * MiB, 0, -4096, 4096.5, NaN, Infinity]) {
      expect(code({ pageSize })).toBe('ERR_OUT_OF_RANGE');
    }
    const err = thrown(() => resolve({ pageSize: 12288 }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain('"pageSize"');
    expect(err.message).toContain('power of two');
    for (const pageSize of ['16384', 16384n, null, {}]) expect(code({ pageSize })).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes batch in [1, 4096]', () => {
    expect(resolve({ batch: 1 }).batch).toBe(1);
    expect(resolve({ batch: 4096 }).batch).toBe(4096);
    for (const batch of [0, -1, 4097, 1.5, NaN]) expect(code({ batch })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ batch: '64' })).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => resolve({ batch: 0 })).message).toContain('"batch"');
  });

  it('takes depth in [1, 1024]', () => {
    expect(resolve({ depth: 1 }).depth).toBe(1);
    expect(resolve({ depth: 1024 }).depth).toBe(1024);
    for (const depth of [0, 1025, 2.5]) expect(code({ depth })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ depth: '4' })).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes rounds in [1, 100]', () => {
    expect(resolve({ rounds: 1 }).rounds).toBe(1);
    expect(resolve({ rounds: 100 }).rounds).toBe(100);
    for (const rounds of [0, 101, 1.5]) expect(code({ rounds })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ rounds: '5' })).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes pages from batch up to 2^31 - 1, and refuses a batch larger than the working set', () => {
    expect(resolve({ batch: 64, pages: 64 }).pages).toBe(64);
    expect(resolve({ batch: 1, pages: 1 }).pages).toBe(1);
    expect(resolve({ pages: 2 ** 31 - 1 }).pages).toBe(2 ** 31 - 1);
    expect(code({ batch: 64, pages: 63 })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ batch: 65, pages: 64 })).toBe('ERR_OUT_OF_RANGE');
    // The default batch (64) against a small working set.
    expect(code({ pages: 10 })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ pages: 2 ** 31 })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ pages: 0 })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ pages: 100.5 })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ pages: '4096' })).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => resolve({ batch: 64, pages: 63 })).message).toContain('"pages"');
  });

  it('takes writes in [1, 2^31], and then no duration', () => {
    expect(resolve({ writes: 1 })).toMatchObject({ writes: 1, duration: null });
    expect(resolve({ writes: 2 ** 31 })).toMatchObject({ writes: 2 ** 31, duration: null });
    for (const writes of [0, -1, 2 ** 31 + 1, 1.5, NaN]) expect(code({ writes })).toBe('ERR_OUT_OF_RANGE');
    expect(code({ writes: '1000' })).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('takes duration in [0.01, 86400] seconds, and then no writes', () => {
    expect(resolve({ duration: 0.01 })).toMatchObject({ duration: 0.01, writes: null });
    expect(resolve({ duration: 24 * 3600 })).toMatchObject({ duration: 86400, writes: null });
    expect(resolve({ duration: 1.5 }).duration).toBe(1.5);
    for (const duration of [0.0099, 0, -1, 86400.001, NaN, Infinity, -Infinity]) {
      expect(code({ duration })).toBe('ERR_OUT_OF_RANGE');
    }
    const err = thrown(() => resolve({ duration: 0 }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain('"duration"');
    expect(code({ duration: '3' })).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('refuses writes and duration together', () => {
    const err = thrown(() => resolve({ writes: 1000, duration: 3 }));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err.message).toContain('not both');
  });

  it('takes strategies in the order given, and says they were chosen', () => {
    expect(resolve({ strategies: ['doublewrite'] })).toMatchObject({
      strategies: ['doublewrite'],
      explicitStrategies: true,
    });
    expect(resolve({ strategies: ['unprotected', 'doublewrite', 'atomic'] }).strategies).toEqual([
      'unprotected',
      'doublewrite',
      'atomic',
    ]);
  });

  it('does not share the strategies array with the caller or between calls', () => {
    const mine: Strategy[] = ['atomic'];
    const config = resolve({ strategies: mine });
    config.strategies.push('unprotected');
    expect(mine).toEqual(['atomic']);
    resolve({}).strategies.pop();
    expect(resolve({}).strategies).toEqual(['atomic', 'doublewrite', 'unprotected']);
  });

  it("takes pagefile when named, within a page file's page sizes and batch", () => {
    expect(resolve({ strategies: ['pagefile', 'doublewrite'] }).strategies).toEqual(['pagefile', 'doublewrite']);
    expect(codeOf(() => resolve({ strategies: ['pagefile'], pageSize: 2048 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => resolve({ strategies: ['pagefile'], pageSize: 131072 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => resolve({ strategies: ['pagefile'], batch: 2048 }))).toBe('ERR_OUT_OF_RANGE');
    expect(resolve({ pageSize: 2048 }).pageSize).toBe(2048);
    const base = resolve({ strategies: ['doublewrite'] });
    expect(bytesNeeded({ ...base, strategies: ['doublewrite', 'pagefile'] })).toBeGreaterThan(
      bytesNeeded(base) + base.pages * base.pageSize,
    );
  });

  it("takes journal when named, within a journal's page sizes", () => {
    expect(resolve({ strategies: ['journal', 'doublewrite'] }).strategies).toEqual(['journal', 'doublewrite']);
    expect(codeOf(() => resolve({ strategies: ['journal'], pageSize: 2048 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => resolve({ strategies: ['journal'], pageSize: 131072 }))).toBe('ERR_OUT_OF_RANGE');
    expect(resolve({ strategies: ['journal'], batch: 4096 }).batch).toBe(4096);
    const base = resolve({ strategies: ['doublewrite'] });
    expect(bytesNeeded({ ...base, strategies: ['doublewrite', 'journal'] })).toBeGreaterThan(
      bytesNeeded(base) + base.pages * base.pageSize + 4 * 1024 * 1024,
    );
  });

  it('refuses an empty, non-array, unknown or repeated strategy list', () => {
    for (const strategies of [[], 'atomic', null, {}, ['fast'], ['atomic', 'Atomic'], ['atomic', 3]]) {
      expect(code({ strategies })).toBe('ERR_INVALID_ARG_VALUE');
    }
    const err = thrown(() => resolve({ strategies: ['atomic', 'doublewrite', 'atomic'] }));
    expect((err as TypeError & { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err.message).toContain('twice');
  });

  it('takes sync and pattern from their sets only', () => {
    expect(resolve({ sync: 'page' }).sync).toBe('page');
    expect(resolve({ sync: 'batch' }).sync).toBe('batch');
    expect(resolve({ pattern: 'sequential' }).pattern).toBe('sequential');
    expect(resolve({ pattern: 'random' }).pattern).toBe('random');
    for (const sync of ['never', 'Page', '', 1, null]) expect(code({ sync })).toBe('ERR_INVALID_ARG_VALUE');
    for (const pattern of ['zigzag', 'RANDOM', 0]) expect(code({ pattern })).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => resolve({ sync: 'never' as 'page' })).message).toContain('batch, page');
  });
});

describe('bytesNeeded', () => {
  it('counts a file per strategy, the double-write area, a batch of slack and 16 MiB', () => {
    const all = resolveBenchConfig({});
    expect(bytesNeeded(all)).toBe(3 * 4096 * 16384 + 64 * 16384 + 64 * 16384 + 16 * MiB);
  });

  it('leaves the double-write area out without double-write', () => {
    const config = resolveBenchConfig({
      strategies: ['atomic', 'unprotected'],
      pageSize: 4096,
      pages: 1000,
      batch: 10,
    });
    expect(bytesNeeded(config)).toBe(2 * 1000 * 4096 + 10 * 4096 + 16 * MiB);
  });

  it('grows with every setting that matters', () => {
    const base = resolveBenchConfig({});
    const baseBytes = bytesNeeded(base);
    expect(bytesNeeded({ ...base, pages: base.pages * 2 })).toBeGreaterThan(baseBytes);
    expect(bytesNeeded({ ...base, pageSize: base.pageSize * 2 })).toBeGreaterThan(baseBytes);
    expect(bytesNeeded({ ...base, batch: base.batch * 2 })).toBeGreaterThan(baseBytes);
    expect(bytesNeeded({ ...base, strategies: ['atomic'] })).toBeLessThan(baseBytes);
  });
});
