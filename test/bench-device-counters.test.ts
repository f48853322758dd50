// The block device's I/O counters (lib/bench/device-counters.ts).
import { describe, expect, it } from 'vitest';
import { parseDeviceStat } from '../lib/bench/device-counters';

describe('parseDeviceStat', () => {
  const line =
    '   44673     9228  2590786    38880     9408    24919  1176280    35609        0     8936    76581    17194       54   723264     2077      264       13';

  it('reads sectors written (field 7) and flush requests (field 16)', () => {
    expect(parseDeviceStat(line)).toEqual({ bytesWritten: 1176280 * 512, flushes: 264 });
    expect(parseDeviceStat(`${line}\n`)).toEqual({ bytesWritten: 602255360, flushes: 264 });
  });

  it('reads a kernel without discard and flush fields (11 fields) as 0 flushes', () => {
    const old = line.trim().split(/\s+/).slice(0, 11).join(' ');
    expect(parseDeviceStat(`  ${old}\n`)).toEqual({ bytesWritten: 602255360, flushes: 0 });
  });

  it('reads a kernel with discard but no flush fields (15 fields) as 0 flushes', () => {
    const mid = line.trim().split(/\s+/).slice(0, 15).join(' ');
    expect(parseDeviceStat(mid)).toEqual({ bytesWritten: 602255360, flushes: 0 });
  });

  it('accepts tabs and runs of spaces', () => {
    expect(parseDeviceStat('1\t2  3 4 5 6 7 8 9 10 11 12 13 14 15 16 17')).toEqual({
      bytesWritten: 7 * 512,
      flushes: 16,
    });
  });

  it('gives zeros for an idle device', () => {
    expect(parseDeviceStat(`${Array(17).fill('0').join(' ')}\n`)).toEqual({ bytesWritten: 0, flushes: 0 });
  });
});
