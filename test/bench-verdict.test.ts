// The bench's one-line verdict (lib/bench/verdict.ts).
import { describe, expect, it } from 'vitest';
import type { BenchStack, Strategy, StrategyResult } from '../lib/bench/types';
import { verdict } from '../lib/bench/verdict';
import type { AtomicWriteInfo } from '../lib/info';

describe('verdict', () => {
  const info: AtomicWriteInfo = {
    supported: true,
    unitMin: 4096,
    unitMax: 65536,
    unitMaxOpt: 65536,
    segmentsMax: 1,
    dioMemAlign: 512,
    dioOffsetAlign: 512,
    blockSize: 4096,
  };

  function stack(atomicPath: BenchStack['atomicPath'], filesystem = 'xfs'): BenchStack {
    return {
      kernel: '6.18.0-1-amd64',
      filesystem,
      mountPoint: '/mnt/bench',
      mountOptions: 'rw,relatime',
      statx: info,
      blockDevice: null,
      atomicPath,
      counterDevice: 'loop3',
    };
  }

  function result(strategy: Strategy, pagesPerSec: number): StrategyResult {
    const latencyUs = { p50: 100, p99: 200, p999: 300 };
    return {
      strategy,
      pagesWritten: 10000,
      pagesDigest: '0123456789abcdef',
      pagesPerSec,
      mibPerSec: pagesPerSec / 64,
      pagesPerSecRange: { min: pagesPerSec * 0.9, max: pagesPerSec * 1.1 },
      latencyUs,
      batchLatencyUs: latencyUs,
      deviceBytesPerPage: null,
      flushesPerPage: 1 / 64,
      deviceFlushesPerPage: null,
      vsUnprotected: null,
    };
  }

  const vs = (atomic: number, doublewrite = 1000, path: BenchStack['atomicPath'] = 'hardware') =>
    verdict(
      stack(path),
      [result('atomic', atomic), result('doublewrite', doublewrite), result('unprotected', 3000)],
      null,
    );

  it('says atomic is faster at 1.1x and above', () => {
    expect(vs(2000)).toBe('atomic writes are 2.0x faster than double-write here (hardware path); double-write can go');
    expect(vs(1100)).toMatch(/^atomic writes are 1\.1x faster than double-write/);
    expect(vs(1100)).toMatch(/double-write can go$/);
    expect(vs(15000)).toMatch(/^atomic writes are 15x faster/);
  });

  it('says as fast within ±10%', () => {
    for (const atomic of [1099, 1050, 1000, 950, 901]) {
      expect(vs(atomic)).toMatch(
        /^atomic writes are as fast as double-write here \(\d\.\d+x, hardware path\); they save double-write's extra copy$/,
      );
    }
    expect(vs(1000)).toContain('(1.0x, hardware path)');
    expect(vs(910)).toContain('(0.91x, hardware path)');
  });

  it('says keep double-write below 0.9', () => {
    for (const atomic of [899, 500, 10]) {
      expect(vs(atomic)).toMatch(/slower than double-write here \(0\.\d+x\); keep double-write$/);
      expect(vs(atomic)).not.toMatch(/can go|as fast/);
    }
    expect(vs(500)).toContain('(0.50x)');
  });

  it('says "atomic writes are slower" (plural verb) on the hardware path', () => {
    // "atomic writes" is plural: "atomic writes is slower" is not English.
    expect(vs(500)).toBe('atomic writes are slower than double-write here (0.50x); keep double-write');
  });

  it('names the XFS software path when atomic writes go through it', () => {
    expect(vs(500, 1000, 'software')).toBe(
      'the XFS software path is slower than double-write here (0.50x); keep double-write',
    );
    expect(vs(2000, 1000, 'software')).toContain('(software path)');
    expect(vs(1000, 1000, 'software')).toContain('software path');
    expect(vs(500, 1000, 'hardware')).not.toContain('software');
  });

  it('uses the stack filesystem name, in capitals', () => {
    const text = verdict(stack('software', 'xfs'), [result('atomic', 100), result('doublewrite', 1000)], null);
    expect(text).toContain('XFS software path');
  });

  it('says unsupported and gives double-write against unprotected when atomic was left out', () => {
    const text = verdict(
      stack('none', 'ext4'),
      [result('doublewrite', 1500), result('unprotected', 3000)],
      'atomic: the file cannot be written atomically here',
    );
    expect(text).toBe(
      'atomic writes are unsupported here, so keep double-write; it runs at 0.50x the speed of unprotected writes',
    );
  });

  it('gives double-write against unprotected alone when atomic was not asked for', () => {
    const text = verdict(stack('hardware'), [result('doublewrite', 1500), result('unprotected', 3000)], null);
    expect(text).toBe('double-write runs at 0.50x the speed of unprotected writes here');
    expect(text).not.toContain('unsupported');
  });

  it('compares atomic with unprotected when double-write was not run', () => {
    const text = verdict(stack('hardware'), [result('unprotected', 1000), result('atomic', 800)], null);
    expect(text).toBe('atomic writes run at 0.80x the speed of unprotected writes here (hardware path)');
  });

  it('does not depend on the order of the results', () => {
    const forward = [result('atomic', 2000), result('doublewrite', 1000), result('unprotected', 3000)];
    expect(verdict(stack('hardware'), [...forward].reverse(), null)).toBe(verdict(stack('hardware'), forward, null));
  });

  it('reports a lone strategy, and nothing', () => {
    expect(verdict(stack('hardware'), [result('unprotected', 1234.6)], null)).toBe(
      'unprotected: 1235 pages/s (nothing to compare with)',
    );
    expect(verdict(stack('hardware'), [], null)).toBe('nothing was measured');
  });
});
