// One batch of page writes, the way each strategy makes it durable:
//   atomic       each page in place with RWF_ATOMIC
//   doublewrite  the batch first to the doublewrite file in one sequential
//                write, made durable there, then each page in place (InnoDB)
//   unprotected  each page in place, plain O_DIRECT: the speed limit, and what tears
//   pagefile     the batch as one writePages call to a PageFile, which picks its own
//                strategy and makes the batch durable itself (whatever depth and sync say)
//   journal      each page a writePage of a file under a Journal (the strategy it picks),
//                then one commit: with depth 1 the blocking calls (writePageSync, commitSync),
//                above it the async ones (every writePage of the batch at once, then commit);
//                sync does not apply (the journal makes the batch durable itself)
// With sync 'batch' one fdatasync per file ends the batch; with 'page' every
// write carries RWF_DSYNC instead. With depth 1 the writes are synchronous
// calls (no engine round trip). With depth N the in-place writes go down as
// engine batches of N (writeAtomicBatch / writeBatch), one after another, the
// last one carrying the batch's fdatasync, as a database flushes its pages;
// a page's latency is then its engine batch's, as the caller sees it.
import { performance } from 'node:perf_hooks';
import type { AtomicFile } from '../atomic-file';
import type { Journal, JournaledFile } from '../journal/journal';
import type { PageFile } from '../page-file/page-file';
import type { Samples } from './stats';
import type { Strategy, SyncMode } from './types';
import { stampPage } from './workload';

export interface StrategyFiles {
  /** The data file of the raw strategies (null for pagefile). */
  data: AtomicFile | null;
  /** The doublewrite area: one batch of pages, rewritten each batch. */
  doublewrite: AtomicFile | null;
  pageFile: PageFile | null;
  /** The journal of the journal strategy and its one file (absent or null for the others). */
  journal?: { journal: Journal; file: JournaledFile } | null;
}

export interface BatchSettings {
  pageSize: number;
  depth: number;
  sync: SyncMode;
}

/**
 * Writes one batch (pages[i] gets write number firstWrite + i) from `buffer`,
 * records each in-place write's latency in µs, and returns the durability
 * calls it made (fdatasync calls plus RWF_DSYNC writes).
 */
export async function writeBatch(
  strategy: Strategy,
  files: StrategyFiles,
  settings: BatchSettings,
  buffer: Buffer,
  pages: Uint32Array,
  firstWrite: number,
  latencies: Samples | null,
): Promise<number> {
  const { pageSize, depth } = settings;
  if (strategy === 'pagefile')
    return writePageFileBatch(files.pageFile!, pageSize, buffer, pages, firstWrite, latencies);
  if (strategy === 'journal') return writeJournalBatch(files.journal!, settings, buffer, pages, firstWrite, latencies);
  const dsync = settings.sync === 'page';
  const options = { dsync };
  const sync = depth === 1;
  const views = Array.from(pages, (page, i) => {
    const view = buffer.subarray(i * pageSize, (i + 1) * pageSize);
    stampPage(view, page, firstWrite + i);
    return view;
  });
  // Durability calls: the doublewrite copy's one, then one per page with RWF_DSYNC or one fdatasync.
  const flushes = (strategy === 'doublewrite' ? 1 : 0) + (dsync ? views.length : 1);
  const data = files.data!;

  if (sync) {
    if (strategy === 'doublewrite') {
      files.doublewrite!.writeSync(buffer.subarray(0, pages.length * pageSize), 0, options);
      if (!dsync) files.doublewrite!.datasyncSync();
    }
    const writePage =
      strategy === 'atomic'
        ? (v: Buffer, p: number) => data.writeAtomicSync(v, p, options)
        : (v: Buffer, p: number) => data.writeSync(v, p, options);
    for (let i = 0; i < views.length; i++) {
      const start = performance.now();
      writePage(views[i], pages[i] * pageSize);
      latencies?.push((performance.now() - start) * 1000);
    }
    if (!dsync) data.datasyncSync();
    return flushes;
  }

  if (strategy === 'doublewrite') {
    await files.doublewrite!.writeBatch([{ buffer: buffer.subarray(0, pages.length * pageSize), position: 0 }], {
      dsync,
      datasync: !dsync,
    });
  }
  const writeEngineBatch = strategy === 'atomic' ? data.writeAtomicBatch.bind(data) : data.writeBatch.bind(data);
  for (let first = 0; first < views.length; first += depth) {
    const last = first + depth >= views.length;
    const entries = views
      .slice(first, first + depth)
      .map((buffer, k) => ({ buffer, position: pages[first + k] * pageSize }));
    const start = performance.now();
    await writeEngineBatch(entries, { dsync, datasync: last && !dsync });
    const micros = (performance.now() - start) * 1000;
    for (let k = 0; k < entries.length; k++) latencies?.push(micros);
  }
  return flushes;
}

/** A batch as one writePages call: the payloads stamped in place in `buffer`, one page a page-size stride. */
async function writePageFileBatch(
  file: PageFile,
  pageSize: number,
  buffer: Buffer,
  pages: Uint32Array,
  firstWrite: number,
  latencies: Samples | null,
): Promise<number> {
  const writes = Array.from(pages, (page, i) => {
    const data = buffer.subarray(i * pageSize, i * pageSize + file.payloadSize);
    stampPage(data, page, firstWrite + i);
    return { page, data };
  });
  const start = performance.now();
  await file.writePages(writes);
  const micros = (performance.now() - start) * 1000;
  for (let i = 0; i < writes.length; i++) latencies?.push(micros);
  // The doublewrite copy's fdatasync, then the data file's.
  return file.strategy === 'doublewrite' ? 2 : 1;
}

/**
 * A batch through a journal: each page stamped in `buffer` (the caller's own page buffers) and
 * given to writePage(Sync) at its place in the file, then one commit. Blocking calls at depth 1
 * (each page's latency its writePageSync), else async ones (each page's latency the batch's).
 */
async function writeJournalBatch(
  { journal, file }: { journal: Journal; file: JournaledFile },
  settings: BatchSettings,
  buffer: Buffer,
  pages: Uint32Array,
  firstWrite: number,
  latencies: Samples | null,
): Promise<number> {
  const { pageSize } = settings;
  const views = Array.from(pages, (page, i) => {
    const view = buffer.subarray(i * pageSize, (i + 1) * pageSize);
    stampPage(view, page, firstWrite + i);
    return view;
  });
  if (settings.depth === 1) {
    for (let i = 0; i < views.length; i++) {
      const start = performance.now();
      file.writePageSync(views[i], pages[i] * pageSize);
      latencies?.push((performance.now() - start) * 1000);
    }
    journal.commitSync();
  } else {
    const start = performance.now();
    await Promise.all(views.map((view, i) => file.writePage(view, pages[i] * pageSize)));
    await journal.commit();
    const micros = (performance.now() - start) * 1000;
    for (let i = 0; i < views.length; i++) latencies?.push(micros);
  }
  // doublewrite: the journal's fdatasync, then the file's; atomic: the file's.
  return journal.strategy === 'doublewrite' ? 2 : 1;
}
