// One batch of page writes, the way each strategy makes it durable:
//   atomic       each page in place with RWF_ATOMIC
//   doublewrite  the batch first to the doublewrite file in one sequential
//                write, made durable there, then each page in place (InnoDB)
//   unprotected  each page in place, plain O_DIRECT: the speed limit, and what tears
// With sync 'batch' one fdatasync per file ends the batch; with 'page' every
// write carries RWF_DSYNC instead. With depth 1 the writes are synchronous
// calls (no thread-pool round trip); with more, `depth` async writes are in flight.
import { performance } from 'node:perf_hooks';
import type { AtomicFile } from '../atomic-file';
import type { Samples } from './stats';
import type { Strategy, SyncMode } from './types';
import { stampPage } from './workload';

export interface StrategyFiles {
  data: AtomicFile;
  /** The doublewrite area: one batch of pages, rewritten each batch. */
  doublewrite: AtomicFile | null;
}

export interface BatchSettings {
  pageSize: number;
  depth: number;
  sync: SyncMode;
}

type PageWriter = (view: Buffer, position: number) => Promise<number> | number;

/** Runs `count` writes with up to `depth` in flight. */
async function inFlight(count: number, depth: number, write: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await write(next++);
  };
  await Promise.all(Array.from({ length: Math.min(depth, count) }, lane));
}

/**
 * Writes one batch (pages[i] gets write number firstWrite + i) from `buffer`,
 * records each in-place write's latency in µs, and returns the durability
 * calls it made (fdatasync calls plus RWF_DSYNC writes).
 */
export async function writeBatch(strategy: Strategy, files: StrategyFiles, settings: BatchSettings,
  buffer: Buffer, pages: Uint32Array, firstWrite: number, latencies: Samples | null): Promise<number> {
  const { pageSize, depth } = settings;
  const dsync = settings.sync === 'page';
  const options = { dsync };
  const sync = depth === 1;
  const views = Array.from(pages, (page, i) => {
    const view = buffer.subarray(i * pageSize, (i + 1) * pageSize);
    stampPage(view, page, firstWrite + i);
    return view;
  });
  let flushes = 0;
  const durable = async (file: AtomicFile) => {
    if (dsync) return;
    if (sync) file.datasyncSync();
    else await file.datasync();
    flushes += 1;
  };

  if (strategy === 'doublewrite') {
    const dw = files.doublewrite!;
    const copy = buffer.subarray(0, pages.length * pageSize);
    if (sync) dw.writeSync(copy, 0, options);
    else await dw.write(copy, 0, options);
    if (dsync) flushes += 1;
    await durable(dw);
  }

  const { data } = files;
  const writePage: PageWriter = strategy === 'atomic'
    ? (sync ? (v, p) => data.writeAtomicSync(v, p, options) : (v, p) => data.writeAtomic(v, p, options))
    : (sync ? (v, p) => data.writeSync(v, p, options) : (v, p) => data.write(v, p, options));
  const timed = async (i: number) => {
    const start = performance.now();
    await writePage(views[i], pages[i] * pageSize);
    latencies?.push((performance.now() - start) * 1000);
  };
  await inFlight(views.length, depth, timed);
  if (dsync) flushes += views.length;
  await durable(data);
  return flushes;
}
