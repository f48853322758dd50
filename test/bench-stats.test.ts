// The bench statistics (lib/bench/stats.ts): percentiles, the median and latency samples.
import { describe, expect, it } from 'vitest';
import { median, percentile, Samples } from '../lib/bench/stats';

describe('percentile / median', () => {
  const oneTo1000 = Array.from({ length: 1000 }, (_, i) => i + 1);

  it('takes the nearest rank', () => {
    expect(percentile(oneTo1000, 0.5)).toBe(500);
    expect(percentile(oneTo1000, 0.99)).toBe(990);
    expect(percentile(oneTo1000, 0.999)).toBe(999);
    expect(percentile(oneTo1000, 1)).toBe(1000);
    expect(percentile(oneTo1000, 0.001)).toBe(1);
    expect(percentile(oneTo1000, 0.0001)).toBe(1);
  });

  it('handles small arrays', () => {
    expect(percentile([], 0.5)).toBe(0);
    expect(percentile([7], 0.5)).toBe(7);
    expect(percentile([7], 0.999)).toBe(7);
    expect(percentile([1, 2], 0.5)).toBe(1);
    expect(percentile([1, 2], 0.51)).toBe(2);
    expect(percentile([10, 20, 30, 40], 0.75)).toBe(30);
    expect(percentile([10, 20, 30, 40], 0.76)).toBe(40);
    // 100 samples: p99 is the 99th, p99.9 the 100th.
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 0.99)).toBe(99);
    expect(percentile(hundred, 0.999)).toBe(100);
  });

  it('takes typed arrays', () => {
    expect(percentile(Float64Array.from(oneTo1000), 0.99)).toBe(990);
  });

  it('has no floating-point off-by-one for the percentiles a bench reports', () => {
    for (let n = 1; n <= 5000; n++) {
      const a = Array.from({ length: n }, (_, i) => i + 1);
      expect(percentile(a, 0.5)).toBe(Math.ceil((n * 500) / 1000));
      expect(percentile(a, 0.99)).toBe(Math.ceil((n * 990) / 1000));
      expect(percentile(a, 0.999)).toBe(Math.ceil((n * 999) / 1000));
    }
  });

  it('takes the median of odd and even counts, unsorted input, without changing it', () => {
    expect(median([])).toBe(0);
    expect(median([5])).toBe(5);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([100, 9, 10])).toBe(10);
    const input = [3, 1, 2];
    median(input);
    expect(input).toEqual([3, 1, 2]);
  });
});

describe('Samples', () => {
  it('is empty at first', () => {
    const s = new Samples();
    expect(s.length).toBe(0);
    expect(s.percentiles()).toEqual({ p50: 0, p99: 0, p999: 0 });
  });

  it('keeps every value when it grows past its first 1024', () => {
    const s = new Samples();
    const n = 5000;
    // Pushed in a scrambled order (a permutation of 1..n).
    for (let i = 0; i < n; i++) s.push(((i * 7919) % n) + 1);
    expect(s.length).toBe(n);
    expect(s.percentiles()).toEqual({ p50: 2500, p99: 4950, p999: 4995 });
  });

  it('keeps the values from before and after each growth', () => {
    const s = new Samples();
    for (let i = 0; i < 1024; i++) s.push(1000); // fills the first array
    for (let i = 0; i < 1024; i++) s.push(1); // all go into grown arrays
    expect(s.length).toBe(2048);
    // Sorted: 1024 ones, then 1024 thousands. Lost or zeroed halves would show here.
    expect(s.percentiles()).toEqual({ p50: 1, p99: 1000, p999: 1000 });
    for (let i = 0; i < 2048; i++) s.push(0.5); // a third growth
    expect(s.length).toBe(4096);
    expect(s.percentiles()).toEqual({ p50: 0.5, p99: 1000, p999: 1000 });
  });

  it('sorts numerically, not as text', () => {
    const s = new Samples();
    for (const v of [9, 100, 10, 1000, 2, 20, 3, 30, 4, 40]) s.push(v);
    // Sorted: 2 3 4 9 10 20 30 40 100 1000.
    expect(s.percentiles()).toEqual({ p50: 10, p99: 1000, p999: 1000 });
  });

  it('keeps fractions', () => {
    const s = new Samples();
    s.push(0.25);
    s.push(0.5);
    expect(s.percentiles().p50).toBe(0.25);
    expect(s.percentiles().p99).toBe(0.5);
  });
});
