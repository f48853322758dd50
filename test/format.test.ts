// Text formatting (lib/format.ts): ratios, byte sizes, counts and tables.
import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatRatio, table } from '../lib/format';

const MiB = 1024 * 1024;

describe('formatRatio', () => {
  it('says ratios as people say them', () => {
    expect(formatRatio(1.94)).toBe('1.9x');
    expect(formatRatio(1)).toBe('1.0x');
    expect(formatRatio(0.531)).toBe('0.53x');
    expect(formatRatio(0.05)).toBe('0.05x');
    expect(formatRatio(12.3)).toBe('12x');
    expect(formatRatio(10)).toBe('10x');
    expect(formatRatio(9.9)).toBe('9.9x');
    expect(formatRatio(150)).toBe('150x');
  });
});

describe('formatBytes', () => {
  it('says sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 bytes');
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1023)).toBe('1023 bytes');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(16384)).toBe('16 KiB');
    expect(formatBytes(65536)).toBe('64 KiB');
    expect(formatBytes(MiB)).toBe('1 MiB');
    expect(formatBytes(2.5 * MiB)).toBe('2.5 MiB');
    expect(formatBytes(64 * MiB)).toBe('64 MiB');
    expect(formatBytes(1024 * MiB)).toBe('1 GiB');
    expect(formatBytes(1024 ** 4)).toBe('1 TiB');
    expect(formatBytes(2048 * 1024 ** 4)).toBe('2048 TiB');
    expect(formatBytes(1025)).toBe('1 KiB');
    expect(formatBytes(-2048)).toBe('-2 KiB');
  });
});

describe('formatCount', () => {
  it('says counts in three figures or fewer', () => {
    expect(formatCount(14812)).toBe('14.8k');
    expect(formatCount(1234567)).toBe('1.23M');
    expect(formatCount(87.3)).toBe('87.3');
    expect(formatCount(100)).toBe('100');
    expect(formatCount(9999)).toBe('10k');
    expect(formatCount(10000)).toBe('10k');
    expect(formatCount(999.6)).toBe('1k');
    expect(formatCount(7800)).toBe('7.8k');
    expect(formatCount(10)).toBe('10');
    expect(formatCount(20)).toBe('20');
    expect(formatCount(1)).toBe('1');
    expect(formatCount(1.5)).toBe('1.5');
    expect(formatCount(0.25)).toBe('0.25');
    expect(formatCount(0)).toBe('0');
    expect(formatCount(-14812)).toBe('-14.8k');
  });

  it('does not lose two orders of magnitude just below 100', () => {
    // (99.99).toPrecision(3) is '100'; stripping trailing zeros then leaves '1'.
    expect(formatCount(99.99)).toBe('100');
    expect(formatCount(99.96)).toBe('100');
  });
});

describe('table', () => {
  it('left-aligns text columns and right-aligns number columns', () => {
    const rows = [
      ['strategy', 'pages/s', 'MiB/s', 'path'],
      ['atomic', '14.8k', '231', 'hardware'],
      ['doublewrite', '7.41k', '116', 'none'],
      ['unprotected', '23.1k', '1.05', 'none'],
    ];
    expect(table(rows).split('\n')).toEqual([
      'strategy     pages/s  MiB/s  path',
      'atomic         14.8k    231  hardware',
      'doublewrite    7.41k    116  none',
      'unprotected    23.1k   1.05  none',
    ]);
  });

  it('indents every line and trims trailing space', () => {
    const text = table(
      [
        ['a', 'bb'],
        ['ccc', 'd'],
      ],
      '  ',
    );
    expect(text).toBe('  a    bb\n  ccc  d');
    for (const line of text.split('\n')) expect(line).toBe(line.trimEnd());
  });

  it('right-aligns the last column when it holds numbers', () => {
    const lines = table([
      ['name', 'n'],
      ['x', '1'],
      ['y', '1000'],
      ['z', '-5'],
    ]).split('\n');
    expect(lines).toEqual(['name     n', 'x        1', 'y     1000', 'z       -5']);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });

  it('keeps the first column left-aligned even when it holds numbers', () => {
    expect(
      table([
        ['n', 'v'],
        ['1', '10'],
        ['100', '2'],
      ]).split('\n'),
    ).toEqual(['n     v', '1    10', '100   2']);
  });

  it('takes rows of different lengths', () => {
    expect(table([['a', 'b', 'c'], ['d']]).split('\n')).toEqual(['a  b  c', 'd']);
  });
});
