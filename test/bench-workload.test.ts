// The bench workload (lib/bench/workload.ts): the page sequence and the page stamps.
import { describe, expect, it } from 'vitest';
import { PageSequence, readStamp, stampPage } from '../lib/bench/workload';

const KiB = 1024;

describe('PageSequence', () => {
  it('gives the same batches for the same seed, in two instances', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      const a = new PageSequence(1000, pattern, 12345);
      const b = new PageSequence(1000, pattern, 12345);
      for (let i = 0; i < 50; i++) {
        const size = 1 + (i % 64);
        expect(Array.from(a.nextBatch(size))).toEqual(Array.from(b.nextBatch(size)));
      }
    }
  });

  it('gives other batches for another seed', () => {
    const a = new PageSequence(100000, 'random', 1).nextBatch(64);
    const b = new PageSequence(100000, 'random', 2).nextBatch(64);
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('returns batches of the asked size, of distinct pages in [0, pages)', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      for (const [pages, size] of [
        [1000, 64],
        [100, 99],
        [17, 5],
        [1, 1],
        [2, 2],
      ]) {
        const seq = new PageSequence(pages, pattern, 7);
        for (let i = 0; i < 200; i++) {
          const batch = seq.nextBatch(size);
          expect(batch).toBeInstanceOf(Uint32Array);
          expect(batch.length).toBe(size);
          expect(new Set(batch).size).toBe(size);
          for (const page of batch) {
            expect(Number.isInteger(page)).toBe(true);
            expect(page).toBeGreaterThanOrEqual(0);
            expect(page).toBeLessThan(pages);
          }
        }
      }
    }
  });

  it('spreads random pages over most of the working set', () => {
    const pages = 1000;
    const seq = new PageSequence(pages, 'random', 42);
    const seen = new Set<number>();
    const counts = new Array<number>(pages).fill(0);
    for (let i = 0; i < 100; i++) {
      for (const page of seq.nextBatch(64)) {
        seen.add(page);
        counts[page]++;
      }
    }
    // 6400 draws over 1000 pages: about 99.8% expected.
    expect(seen.size).toBeGreaterThan(0.95 * pages);
    // Neither half of the space is starved.
    const low = counts.slice(0, pages / 2).reduce((s, n) => s + n, 0);
    expect(low).toBeGreaterThan(0.4 * 6400);
    expect(low).toBeLessThan(0.6 * 6400);
  });

  it('does not start every random batch at the same pages', () => {
    const seq = new PageSequence(1000, 'random', 3);
    const first = Array.from(seq.nextBatch(16));
    const second = Array.from(seq.nextBatch(16));
    expect(second).not.toEqual(first);
  });

  it('walks sequential pages in order and wraps around modulo pages', () => {
    const seq = new PageSequence(10, 'sequential', 99);
    expect(Array.from(seq.nextBatch(4))).toEqual([0, 1, 2, 3]);
    expect(Array.from(seq.nextBatch(4))).toEqual([4, 5, 6, 7]);
    expect(Array.from(seq.nextBatch(4))).toEqual([8, 9, 0, 1]);
    expect(Array.from(seq.nextBatch(4))).toEqual([2, 3, 4, 5]);
    expect(Array.from(seq.nextBatch(10))).toEqual([6, 7, 8, 9, 0, 1, 2, 3, 4, 5]);
    expect(Array.from(seq.nextBatch(3))).toEqual([6, 7, 8]);
  });

  it('ignores the seed in sequential order', () => {
    const a = new PageSequence(50, 'sequential', 1);
    const b = new PageSequence(50, 'sequential', 2);
    expect(Array.from(a.nextBatch(20))).toEqual(Array.from(b.nextBatch(20)));
  });

  it('makes a permutation when the batch is the whole working set', () => {
    for (const pattern of ['random', 'sequential'] as const) {
      const pages = 256;
      const seq = new PageSequence(pages, pattern, 5);
      for (let i = 0; i < 5; i++) {
        const batch = Array.from(seq.nextBatch(pages));
        expect([...batch].sort((x, y) => x - y)).toEqual(Array.from({ length: pages }, (_, p) => p));
      }
    }
  });

  it('shuffles a whole-set random batch (not just 0..n-1 in order)', () => {
    const batch = Array.from(new PageSequence(256, 'random', 5).nextBatch(256));
    expect(batch).not.toEqual(Array.from({ length: 256 }, (_, p) => p));
  });
});

describe('stampPage / readStamp', () => {
  const SIZE = 4096;

  function stamped(pageNumber: number, writeNumber: number, size = SIZE): Buffer {
    const page = Buffer.alloc(size, 0xa5);
    stampPage(page, pageNumber, writeNumber);
    return page;
  }

  it('reads back the write number of a stamped page', () => {
    expect(readStamp(stamped(7, 42), 7)).toBe(42);
    expect(readStamp(stamped(0, 0), 0)).toBe(0);
    expect(readStamp(stamped(123456, 1), 123456)).toBe(1);
    expect(readStamp(stamped(2 ** 31 - 1, 2 ** 32 - 1), 2 ** 31 - 1)).toBe(2 ** 32 - 1);
    expect(readStamp(stamped(3, 9, 512), 3)).toBe(9);
    expect(readStamp(stamped(3, 9, 64 * KiB), 3)).toBe(9);
  });

  it('stamps only the first and the last 8 bytes', () => {
    const page = stamped(7, 42);
    expect(page.readUInt32LE(0)).toBe(7);
    expect(page.readUInt32LE(4)).toBe(42);
    expect(page.readUInt32LE(SIZE - 8)).toBe(7);
    expect(page.readUInt32LE(SIZE - 4)).toBe(42);
    expect(page.subarray(8, SIZE - 8).every((b) => b === 0xa5)).toBe(true);
  });

  it('works on a view into a larger buffer', () => {
    const chunk = Buffer.alloc(4 * SIZE);
    for (let i = 0; i < 4; i++) stampPage(chunk.subarray(i * SIZE, (i + 1) * SIZE), 10 + i, 100 + i);
    for (let i = 0; i < 4; i++) expect(readStamp(chunk.subarray(i * SIZE, (i + 1) * SIZE), 10 + i)).toBe(100 + i);
  });

  it('returns -1 when asked for another page number (a misplaced page)', () => {
    const page = stamped(7, 42);
    expect(readStamp(page, 8)).toBe(-1);
    expect(readStamp(page, 6)).toBe(-1);
    expect(readStamp(page, 0)).toBe(-1);
  });

  it('returns -1 for a torn page: new head, old tail', () => {
    const old = stamped(7, 41);
    const torn = stamped(7, 42);
    // The last sector kept the previous write.
    old.copy(torn, SIZE - 512, SIZE - 512);
    expect(readStamp(torn, 7)).toBe(-1);
    // And the other way round: only the first sector made it.
    const tornHead = stamped(7, 41);
    stamped(7, 42).copy(tornHead, 0, 0, 512);
    expect(readStamp(tornHead, 7)).toBe(-1);
  });

  it('returns -1 when only the tail stamp differs, by one byte at the very end', () => {
    const page = stamped(7, 42);
    page[SIZE - 1] ^= 0x01;
    expect(readStamp(page, 7)).toBe(-1);
  });

  it('returns -1 when the tail page number differs', () => {
    const page = stamped(7, 42);
    page.writeUInt32LE(8, SIZE - 8);
    expect(readStamp(page, 7)).toBe(-1);
  });

  it('returns -1 when the head page number differs', () => {
    const page = stamped(7, 42);
    page.writeUInt32LE(8, 0);
    expect(readStamp(page, 7)).toBe(-1);
  });

  it('does not care about the bytes between the stamps', () => {
    const page = stamped(7, 42);
    page.fill(0, 8, SIZE - 8);
    expect(readStamp(page, 7)).toBe(42);
  });
});
