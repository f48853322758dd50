// The one line a bench ends with: should this stack turn off double-write?
import { formatRatio } from '../format';
import type { BenchStack, Strategy, StrategyResult } from './types';

// Within ±10% a difference is not worth a decision on a noisy machine.
const SAME = 0.1;

export function verdict(stack: BenchStack, results: StrategyResult[], atomicLeftOut: string | null): string {
  const get = (s: Strategy) => results.find((r) => r.strategy === s);
  const atomic = get('atomic');
  const doublewrite = get('doublewrite');
  const unprotected = get('unprotected');
  if (atomic && doublewrite) {
    const r = atomic.pagesPerSec / doublewrite.pagesPerSec;
    const via =
      stack.atomicPath === 'software' ? `the ${stack.filesystem.toUpperCase()} software path is` : 'atomic writes are';
    if (r >= 1 + SAME)
      return `atomic writes are ${formatRatio(r)} faster than double-write here (${stack.atomicPath} path); double-write can go`;
    if (r > 1 - SAME)
      return `atomic writes are as fast as double-write here (${formatRatio(r)}, ${stack.atomicPath} path); they save double-write's extra copy`;
    return `${via} slower than double-write here (${formatRatio(r)}); keep double-write`;
  }
  if (doublewrite && unprotected) {
    const speed = `${formatRatio(doublewrite.pagesPerSec / unprotected.pagesPerSec)} the speed of unprotected writes`;
    return atomicLeftOut
      ? `atomic writes are unsupported here, so keep double-write; it runs at ${speed}`
      : `double-write runs at ${speed} here`;
  }
  if (atomic && unprotected) {
    return `atomic writes run at ${formatRatio(atomic.pagesPerSec / unprotected.pagesPerSec)} the speed of unprotected writes here (${stack.atomicPath} path)`;
  }
  const only = results[0];
  return only
    ? `${only.strategy}: ${Math.round(only.pagesPerSec)} pages/s (nothing to compare with)`
    : 'nothing was measured';
}
