// `untorn bench` as a library function: the strategies (three ways of writing pages by hand, a page file and a journal) write the same
// pages in the same order to their own preallocated files in a temporary
// directory, in interleaved rounds after an uncounted warm-up, while the
// block device's own counters say what reached it. The files are checked
// afterwards and always removed.
import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { open, type AtomicFile } from '../atomic-file';
import { openPageFile, type PageFile } from '../page-file/page-file';
import { openJournal, type Journal } from '../journal/journal';
import { ioEngine, takeInFlightPeak, threadPoolSize } from '../engine';
import { allocAligned } from '../buffers';
import { blockDeviceLimits, rawStat } from '../capabilities';
import { atomicPathFor, atomicPaths, findMount, kernelRelease, type Mount } from '../stack';
import { sysfsBlockDir } from '../sysfs';
import { readDeviceCounters } from './device-counters';
import { AtomicWriteError, BenchError } from '../errors';
import { checkDirectIo } from '../validate';
import { bytesNeeded, resolveBenchConfig, type BenchOptions, type BenchProgress } from './options';
import { median, Samples } from './stats';
import { writeBatch, type StrategyFiles } from './strategies';
import type { BenchConfig, BenchReport, BenchStack, Strategy, StrategyResult, VsUnprotected } from './types';
import { verdict } from './verdict';
import { PageSequence, readStamp, stampPage } from './workload';

export type { BenchOptions, BenchProgress };

const SEED = 0x756e746f; // "unto": every strategy, every run, the same pages
const MiB = 1024 * 1024;
const PREALLOC_CHUNK = 4 * MiB;

/** One strategy's files and what its measured writes added up to. */
interface Lane {
  strategy: Strategy;
  files: StrategyFiles;
  sequence: PageSequence;
  digest: Hash;
  /** The write number each page last received (0 = the preallocation). */
  lastWrite: Uint32Array;
  nextWrite: number;
  latencies: Samples;
  batchLatencies: Samples;
  /** The most writes that were in flight at once during measured rounds. */
  depthReached: number;
  roundRates: number[];
  pagesWritten: number;
  flushes: number;
  deviceBytes: number;
  deviceFlushes: number;
}

async function checkDirectory(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fsp.stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ENOENT';
    throw new BenchError(
      code,
      code === 'ENOENT' ? `${dir} does not exist` : `cannot reach ${dir}: ${(err as Error).message}`,
    );
  }
  if (!stat.isDirectory()) throw new BenchError('ENOTDIR', `${dir} is not a directory`);
  try {
    await fsp.access(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    const why = code === 'EROFS' ? 'is on a read-only filesystem' : 'is not writable';
    throw new BenchError(code, `${dir} ${why}`);
  }
}

async function checkSpace(dir: string, config: BenchConfig): Promise<void> {
  const { bavail, bsize } = await fsp.statfs(dir);
  const free = bavail * bsize;
  const needed = bytesNeeded(config);
  if (free < needed) {
    throw new BenchError(
      'ENOSPC',
      `not enough space in ${dir}: the bench needs ${Math.ceil(needed / MiB)} MiB, ` +
        `${Math.floor(free / MiB)} MiB are free (use fewer --pages)`,
    );
  }
}

/** Writes every page once (write number 0) and makes the file durable, as a database's file would be. */
async function preallocate(file: AtomicFile, config: BenchConfig, signal: AbortSignal | undefined): Promise<void> {
  const { pageSize, pages } = config;
  const pagesPerChunk = Math.max(1, Math.floor(PREALLOC_CHUNK / pageSize));
  const chunk = allocAligned(pagesPerChunk * pageSize);
  for (let first = 0; first < pages; first += pagesPerChunk) {
    signal?.throwIfAborted();
    const count = Math.min(pagesPerChunk, pages - first);
    for (let i = 0; i < count; i++) stampPage(chunk.subarray(i * pageSize, (i + 1) * pageSize), first + i, 0);
    await file.write(chunk.subarray(0, count * pageSize), first * pageSize);
  }
  await file.sync();
}

/** Writes every page of a page file once (write number 0), a batch at a time. */
async function preallocatePageFile(
  file: PageFile,
  config: BenchConfig,
  signal: AbortSignal | undefined,
): Promise<void> {
  const payloads = Array.from({ length: config.batch }, () => Buffer.alloc(file.payloadSize));
  for (let first = 0; first < config.pages; first += config.batch) {
    signal?.throwIfAborted();
    const count = Math.min(config.batch, config.pages - first);
    await file.writePages(
      payloads.slice(0, count).map((data, i) => {
        stampPage(data, first + i, 0);
        return { page: first + i, data };
      }),
    );
  }
}

/** Makes the journal strategy's data file (every page written once, durable, as a database's file would be) and opens it through a journal. */
async function openJournalLane(
  work: string,
  config: BenchConfig,
  signal: AbortSignal | undefined,
  opened: { close(): Promise<void> }[],
): Promise<NonNullable<StrategyFiles['journal']>> {
  const dataPath = path.join(work, 'journal.data');
  const data = await open(dataPath, 'w+', 0o600);
  try {
    await preallocate(data, config, signal);
  } finally {
    await data.close();
  }
  const journal = await openJournal(path.join(work, 'journal'), { pageSize: config.pageSize });
  opened.push(journal);
  return { journal, file: await journal.openFile(dataPath, 'r+') };
}

function verifyFailed(lane: Lane, page: number, found: number): BenchError {
  return new BenchError(
    'ERR_BENCH_VERIFY',
    `bench check failed: page ${page} of the ${lane.strategy} file holds ` +
      `${found < 0 ? 'a torn or misplaced page' : `write ${found}`}, expected write ${lane.lastWrite[page]}`,
  );
}

/** Reads a strategy's file back: every page must hold the last write it was given. */
async function verify(lane: Lane, config: BenchConfig, signal: AbortSignal | undefined): Promise<void> {
  const { pageSize, pages } = config;
  const { pageFile, journal } = lane.files;
  if (journal) {
    // Through the journal's read, in chunks.
    const pagesPerChunk = Math.max(1, Math.floor(PREALLOC_CHUNK / pageSize));
    const chunk = Buffer.alloc(pagesPerChunk * pageSize);
    for (let first = 0; first < pages; first += pagesPerChunk) {
      signal?.throwIfAborted();
      const count = Math.min(pagesPerChunk, pages - first);
      await journal.file.read(chunk.subarray(0, count * pageSize), first * pageSize);
      for (let i = 0; i < count; i++) {
        const page = first + i;
        const found = readStamp(chunk.subarray(i * pageSize, (i + 1) * pageSize), page);
        if (found !== lane.lastWrite[page]) throw verifyFailed(lane, page, found);
      }
    }
    return;
  }
  if (pageFile) {
    // Through readPage: its checksum and page number are checked too.
    for (let page = 0; page < pages; page++) {
      if (page % 256 === 0) signal?.throwIfAborted();
      const found = readStamp(await pageFile.readPage(page), page);
      if (found !== lane.lastWrite[page]) throw verifyFailed(lane, page, found);
    }
    return;
  }
  const handle = await fsp.open(lane.files.data!.path, 'r');
  try {
    const pagesPerChunk = Math.max(1, Math.floor(PREALLOC_CHUNK / pageSize));
    const chunk = Buffer.alloc(pagesPerChunk * pageSize);
    for (let first = 0; first < pages; first += pagesPerChunk) {
      signal?.throwIfAborted();
      const count = Math.min(pagesPerChunk, pages - first);
      await handle.read(chunk, 0, count * pageSize, first * pageSize);
      for (let i = 0; i < count; i++) {
        const page = first + i;
        const found = readStamp(chunk.subarray(i * pageSize, (i + 1) * pageSize), page);
        if (found !== lane.lastWrite[page]) throw verifyFailed(lane, page, found);
      }
    }
  } finally {
    await handle.close();
  }
}

function describeStack(
  mount: Mount | null,
  info: AtomicFile['info'],
  blockDevice: BenchStack['blockDevice'],
  config: BenchConfig,
  counterDevice: string | null,
): BenchStack {
  const fsType = mount?.type ?? 'unknown';
  return {
    kernel: kernelRelease(),
    filesystem: fsType,
    mountPoint: mount?.mountPoint ?? '',
    mountOptions: mount?.options ?? '',
    statx: info,
    blockDevice,
    atomicPath: atomicPathFor(atomicPaths(fsType, info, blockDevice), config.pageSize),
    counterDevice,
  };
}

/** The code of the rule `check` refuses with (the rules live in lib/validate.ts), or null. */
function refusal(check: () => void): AtomicWriteError['code'] | null {
  try {
    check();
    return null;
  } catch (err) {
    if (err instanceof AtomicWriteError) return err.code;
    throw err;
  }
}

/**
 * Decides whether atomic runs: left out with a note where the page size
 * cannot be written atomically there (stack.atomicPath, the same limits probe
 * and page files use) and the caller did not ask for it; an error where the
 * caller asked for it by name.
 */
function atomicAvailability(stack: BenchStack, config: BenchConfig, explicit: boolean, dir: string): string | null {
  const { statx } = stack;
  if (!config.strategies.includes('atomic') || stack.atomicPath !== 'none') return null;
  if (!statx.supported) {
    const why =
      `${dir} (${stack.filesystem}) cannot write atomically: statx reports no STATX_ATTR_WRITE_ATOMIC` +
      (stack.filesystem === 'ext4' ? ' (ext4 needs a device with atomic write support)' : '');
    if (explicit) throw new BenchError('ERR_ATOMIC_UNSUPPORTED', `${why}; leave atomic out of --strategies`);
    return `atomic left out: ${why}`;
  }
  const why =
    `${dir} cannot write ${config.pageSize}-byte pages atomically: ` +
    `atomic writes there must be a power of two between ${statx.unitMin} and ${statx.unitMax} bytes`;
  if (explicit) throw new BenchError('ERR_ATOMIC_LENGTH', why);
  return `atomic left out: ${why}`;
}

function ratio(value: number | null, reference: number | null): number | null {
  return value === null || reference === null || reference === 0 ? null : value / reference;
}

/** A strategy's figures; device ones only where the device's counters were read. */
function summarize(lane: Lane, config: BenchConfig, counted: boolean): Omit<StrategyResult, 'vsUnprotected'> {
  const pagesPerSec = median(lane.roundRates);
  const perPage = (n: number) => (lane.pagesWritten > 0 ? n / lane.pagesWritten : 0);
  return {
    strategy: lane.strategy,
    pagesWritten: lane.pagesWritten,
    depthReached: lane.depthReached,
    pagesDigest: lane.digest.digest('hex').slice(0, 16),
    pagesPerSec,
    mibPerSec: (pagesPerSec * config.pageSize) / MiB,
    pagesPerSecRange: { min: Math.min(...lane.roundRates), max: Math.max(...lane.roundRates) },
    latencyUs: lane.latencies.percentiles(),
    batchLatencyUs: lane.batchLatencies.percentiles(),
    deviceBytesPerPage: counted ? perPage(lane.deviceBytes) : null,
    flushesPerPage: perPage(lane.flushes),
    deviceFlushesPerPage: counted ? perPage(lane.deviceFlushes) : null,
    ...(lane.files.pageFile
      ? { pageFile: { strategy: lane.files.pageFile.strategy, reason: lane.files.pageFile.strategyReason } }
      : {}),
    ...(lane.files.journal
      ? {
          journal: {
            strategy: lane.files.journal.journal.strategy,
            reason: lane.files.journal.journal.strategyReason,
          },
        }
      : {}),
  };
}

function compare(
  result: Omit<StrategyResult, 'vsUnprotected'>,
  base: Omit<StrategyResult, 'vsUnprotected'> | undefined,
): VsUnprotected | null {
  if (!base) return null;
  return {
    pagesPerSec: ratio(result.pagesPerSec, base.pagesPerSec),
    mibPerSec: ratio(result.mibPerSec, base.mibPerSec),
    latencyP50: ratio(result.latencyUs.p50, base.latencyUs.p50),
    latencyP99: ratio(result.latencyUs.p99, base.latencyUs.p99),
    latencyP999: ratio(result.latencyUs.p999, base.latencyUs.p999),
    batchLatencyP50: ratio(result.batchLatencyUs.p50, base.batchLatencyUs.p50),
    batchLatencyP99: ratio(result.batchLatencyUs.p99, base.batchLatencyUs.p99),
    batchLatencyP999: ratio(result.batchLatencyUs.p999, base.batchLatencyUs.p999),
    deviceBytesPerPage: ratio(result.deviceBytesPerPage, base.deviceBytesPerPage),
    flushesPerPage: ratio(result.flushesPerPage, base.flushesPerPage),
    deviceFlushesPerPage: ratio(result.deviceFlushesPerPage, base.deviceFlushesPerPage),
  };
}

/** Runs the bench described by `options` and reports what it measured (see BenchReport). */
export async function bench(options: BenchOptions = {}): Promise<BenchReport> {
  const { explicitStrategies, ...config } = resolveBenchConfig(options);
  const { signal, onProgress } = options;
  const dir = path.resolve(options.dir ?? '.');
  const progress = (p: Omit<BenchProgress, 'rounds'>) => onProgress?.({ ...p, rounds: config.rounds });
  signal?.throwIfAborted();
  await checkDirectory(dir);
  const dirStat = await rawStat(dir);
  const mount = await findMount(dir, dirStat.devMajor, dirStat.devMinor);
  await checkSpace(dir, config);

  const work = await fsp.mkdtemp(path.join(dir, '.untorn-bench-'));
  const opened: (AtomicFile | PageFile | Journal)[] = [];
  const openFile = async (name: string) => {
    const file = await open(path.join(work, name), 'w+', 0o600);
    opened.push(file);
    return file;
  };
  try {
    const notes: string[] = [];
    const probeFile = await openFile('statx-probe');
    const blockDevice = await blockDeviceLimits(probeFile.path);
    const counterDir = mount ? await sysfsBlockDir(mount.devMajor, mount.devMinor) : null;
    const stack = describeStack(mount, probeFile.info, blockDevice, config, counterDir && path.basename(counterDir));
    const leftOut = atomicAvailability(stack, config, explicitStrategies, dir);
    if (leftOut) {
      notes.push(leftOut);
      config.strategies = config.strategies.filter((s) => s !== 'atomic');
    }
    const { dioOffsetAlign } = probeFile.info;
    if (
      refusal(() => checkDirectIo(probeFile.info, 'write', config.pageSize, 0, 0, dir)) === 'ERR_DIRECT_IO_ALIGNMENT'
    ) {
      throw new BenchError(
        'ERR_DIRECT_IO_ALIGNMENT',
        `${config.pageSize}-byte pages cannot be written with O_DIRECT in ${dir}: ` +
          `the filesystem needs multiples of ${dioOffsetAlign} bytes`,
      );
    }

    const lanes: Lane[] = [];
    for (const [index, strategy] of config.strategies.entries()) {
      progress({ phase: 'prepare', round: 0, strategy, fraction: index / config.strategies.length });
      let data: AtomicFile | null = null;
      let pageFile: PageFile | null = null;
      let journal: StrategyFiles['journal'] = null;
      if (strategy === 'journal') {
        journal = await openJournalLane(work, config, signal, opened);
        notes.push(
          `journal: strategy ${journal.journal.strategy}: ${journal.journal.strategyReason}; each page a writePage, ` +
            'one commit per batch (depth 1: writePageSync and commitSync; above: the async calls, a batch at once); ' +
            'made durable by the journal itself (--sync does not apply)',
        );
      } else if (strategy === 'pagefile') {
        pageFile = await openPageFile(path.join(work, 'pagefile.data'), {
          pageSize: config.pageSize,
          batchPages: config.batch,
          flags: 'w+',
        });
        opened.push(pageFile);
        await preallocatePageFile(pageFile, config, signal);
        notes.push(
          `pagefile: strategy ${pageFile.strategy}: ${pageFile.strategyReason}; one writePages call per batch, ` +
            'made durable by the page file itself (--depth and --sync do not apply)',
        );
      } else {
        data = await openFile(`${strategy}.data`);
        await preallocate(data, config, signal);
      }
      let doublewrite: AtomicFile | null = null;
      if (strategy === 'doublewrite') {
        doublewrite = await openFile('doublewrite.buffer');
        await doublewrite.write(allocAligned(config.batch * config.pageSize), 0);
        await doublewrite.sync();
      }
      lanes.push({
        strategy,
        files: { data, doublewrite, pageFile, journal },
        sequence: new PageSequence(config.pages, config.pattern, SEED),
        digest: createHash('sha256'),
        lastWrite: new Uint32Array(config.pages),
        nextWrite: 1,
        latencies: new Samples(),
        batchLatencies: new Samples(),
        depthReached: 0,
        roundRates: [],
        pagesWritten: 0,
        flushes: 0,
        deviceBytes: 0,
        deviceFlushes: 0,
      });
    }
    if (!counterDir) notes.push(`no block device under ${dir}: device bytes per page are not measured`);
    const engine = { ...ioEngine(), threads: null as number | null };
    if (engine.name === 'threadpool') {
      engine.threads = threadPoolSize();
      if (config.depth > engine.threads) {
        notes.push(
          `only ${engine.threads} writes run at once: libuv's thread pool has ${engine.threads} threads (set UV_THREADPOOL_SIZE)`,
        );
      }
    }

    const buffer = allocAligned(config.batch * config.pageSize);
    const settings = { pageSize: config.pageSize, depth: config.depth, sync: config.sync };

    /** Writes whole batches until `writes` pages are written or `seconds` have passed; returns pages and seconds. */
    const slot = async (
      lane: Lane,
      measured: boolean,
      writes: number | null,
      seconds: number | null,
      report: (fraction: number) => void,
    ) => {
      const start = performance.now();
      let written = 0;
      for (;;) {
        const elapsed = (performance.now() - start) / 1000;
        if (writes !== null ? written >= writes : elapsed >= seconds!) break;
        signal?.throwIfAborted();
        const size = writes !== null ? Math.min(config.batch, writes - written) : config.batch;
        const pages = lane.sequence.nextBatch(size);
        lane.digest.update(pages);
        const batchStart = performance.now();
        const flushes = await writeBatch(
          lane.strategy,
          lane.files,
          settings,
          buffer,
          pages,
          lane.nextWrite,
          measured ? lane.latencies : null,
        );
        if (measured) {
          lane.batchLatencies.push((performance.now() - batchStart) * 1000);
          lane.flushes += flushes;
        }
        for (let i = 0; i < size; i++) lane.lastWrite[pages[i]] = lane.nextWrite + i;
        lane.nextWrite += size;
        written += size;
        report(writes !== null ? written / writes : elapsed / seconds!);
        // With depth 1 every call is synchronous: let the event loop run (Ctrl-C, timers) between batches.
        await yieldToEventLoop();
      }
      return { written, seconds: (performance.now() - start) / 1000 };
    };

    // Warm-up: half a round's share per strategy, not counted.
    const share = (total: number, round: number) =>
      Math.floor((total * (round + 1)) / config.rounds) - Math.floor((total * round) / config.rounds);
    for (const lane of lanes) {
      const writes = config.writes === null ? null : Math.max(1, Math.ceil(config.writes / config.rounds / 2));
      const seconds = config.duration === null ? null : config.duration / config.rounds / 2;
      await slot(lane, false, writes, seconds, (fraction) =>
        progress({ phase: 'warmup', round: 0, strategy: lane.strategy, fraction }),
      );
    }

    // Measured rounds; each round starts with a different strategy so drift hits all alike.
    for (let round = 0; round < config.rounds; round++) {
      for (let k = 0; k < lanes.length; k++) {
        const lane = lanes[(round + k) % lanes.length];
        const writes = config.writes === null ? null : share(config.writes, round);
        if (writes === 0) continue;
        const seconds = config.duration === null ? null : config.duration / config.rounds;
        const before = counterDir ? await readDeviceCounters(counterDir) : null;
        if (config.depth > 1) takeInFlightPeak();
        const done = await slot(lane, true, writes, seconds, (fraction) =>
          progress({ phase: 'measure', round: round + 1, strategy: lane.strategy, fraction }),
        );
        if (counterDir && before) {
          const after = await readDeviceCounters(counterDir);
          lane.deviceBytes += after.bytesWritten - before.bytesWritten;
          lane.deviceFlushes += after.flushes - before.flushes;
        }
        const reached = config.depth === 1 ? 1 : takeInFlightPeak();
        lane.depthReached = Math.max(lane.depthReached, reached);
        lane.pagesWritten += done.written;
        lane.roundRates.push(done.written / done.seconds);
      }
    }

    for (const [index, lane] of lanes.entries()) {
      progress({ phase: 'verify', round: 0, strategy: lane.strategy, fraction: index / lanes.length });
      await verify(lane, config, signal);
    }

    const summaries = lanes.map((lane) => summarize(lane, config, counterDir !== null));
    const base = summaries.find((r) => r.strategy === 'unprotected');
    const results: StrategyResult[] = summaries.map((r) => ({ ...r, vsUnprotected: compare(r, base) }));
    return { stack, engine, config, results, verdict: verdict(stack, results, leftOut), notes };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC' && !(err instanceof BenchError)) {
      throw new BenchError(
        'ENOSPC',
        `no space left in ${dir} (the bench needs about ${Math.ceil(bytesNeeded(config) / MiB)} MiB): ${(err as Error).message}`,
      );
    }
    throw err;
  } finally {
    await Promise.allSettled(opened.map((file) => file.close()));
    await fsp.rm(work, { recursive: true, force: true });
  }
}
