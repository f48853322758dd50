// PageFile: untorn, durable pages on any Linux stack. Each page carries a
// trailer (CRC32C, page number, write sequence) that readPage checks; writes
// are made untorn by RWF_ATOMIC where the hardware does it, else by a
// double-write through a separate file that open replays after a crash.
// Format: ./format.ts and docs/page-file.md.
import { randomBytes } from 'node:crypto';
import { allocAligned } from '../buffers';
import { closedError, PageFileError } from '../errors';
import {
  validatePageFileOptions,
  validatePageNumber,
  validatePageWrites,
  validatePayload,
  type PageFileSettings,
} from '../validate';
import {
  allocateArea,
  BatchArea,
  findBatch,
  homesToRestore,
  openWithFlags,
  readFileHeader,
  restore,
  writeFileHeader,
  writeThrough,
} from '../doublewrite/doublewrite';
import {
  batchHeaderBytes,
  isZero,
  type BatchTarget,
  type FileHeader,
  type FileKind,
  type HeaderReading,
} from '../doublewrite/format';
import { directIo, type PageIo, type PageIoSystem } from '../page-io';
import { runAsync, yieldToLoop } from '../steps';
import { fileTag, inspectPage, pageOffset, sealFor, sealPage, TRAILER_SIZE, type PageState } from './format';
import { chooseStrategy, type PageFileStrategy, type StrategyOption } from './strategy';

export type { PageFileStrategy };

export interface PageFileOptions {
  /** Default 16384; a power of two from 4096 to 65536. */
  pageSize?: number;
  /** Default: 'r+' when the file exists, else it is created. 'r' opens read-only. */
  flags?: 'r' | 'r+' | 'w+' | 'wx+';
  /** Default 'auto'. */
  strategy?: StrategyOption;
  /** Default `${path}.dblwr`. */
  doublewritePath?: string;
  /** Pages per doublewrite batch, default 64. */
  batchPages?: number;
}

/** What open did to bring the file back to a state that was written in full. */
export interface PageFileRecovery {
  /** Pages of a complete doublewrite batch whose home page was checked. */
  pagesChecked: number;
  /** Of those, pages restored from the copy (torn, empty, misplaced or older); read-only: pages readPage serves from the copy. */
  pagesRestored: number;
  /** Incomplete batches found in the doublewrite file (a crash while it was written), ignored. */
  batchesDiscarded: number;
}

export interface PageWrite {
  page: number;
  data: ArrayBufferView;
}

export interface PageFileVerifyResult {
  /** Pages looked at: pageCount. */
  pages: number;
  /** Never written (all zero). */
  empty: number;
  ok: number;
  corrupt: { page: number; reason: string }[];
}

/** Bytes the data file grows by at once, written with zeros so that page writes are overwrites. */
export const GROWTH_BYTES = 8 * 1024 * 1024;

/** Pages read at once by verify() and the scan for pageCount. */
const SCAN_PAGES = 64;

/** A page file's doublewrite batches have one target: its data file. */
const PAGE_TARGETS: readonly BatchTarget[] = [{ path: '', ino: 0n, birth: 0n }];

/** Bytes of a doublewrite file's batch area. */
export function pageFileAreaBytes(batchPages: number, pageSize: number): number {
  return batchHeaderBytes(batchPages, PAGE_TARGETS, pageSize) + batchPages * pageSize;
}

/** How often a read that met a write of its page in flight is retried. */
const READ_RETRIES = 8;

interface Request {
  remaining: number;
  failed: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Queued {
  page: number;
  data: ArrayBufferView;
  request: Request;
}

const CONSTRUCT = Symbol('PageFile');

interface Parts {
  settings: PageFileSettings;
  path: string;
  strategy: PageFileStrategy;
  reason: string;
  recovery: PageFileRecovery;
  data: PageIo;
  dblwr: PageIo | null;
  area: BatchArea | null;
  fileId: Buffer;
  writable: boolean;
  nextSeq: bigint;
  allocatedPages: number;
  pageCount: number;
  /** Read-only: pages whose home needs restoring, served from their doublewrite copy. */
  overlay: Map<number, Buffer>;
}

function asBytes(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export class PageFile {
  readonly path: string;
  readonly pageSize: number;
  /** Bytes of a page the caller owns: pageSize minus untorn's trailer. */
  readonly payloadSize: number;
  readonly strategy: PageFileStrategy;
  readonly strategyReason: string;
  readonly recovery: PageFileRecovery;
  #pageCount: number;
  #data: PageIo;
  #dblwr: PageIo | null;
  #area: BatchArea | null;
  #tag: bigint;
  #writable: boolean;
  #batchPages: number;
  #nextSeq: bigint;
  #allocatedPages: number;
  #overlay: Map<number, Buffer>;
  #queue: Queued[] = [];
  /** The payload each page is being written with (the latest call's), until its batch ends. */
  #inFlight = new Map<number, ArrayBufferView>();
  #writer: Promise<void> | null = null;
  #batchesDone = 0;
  #batchBuffer: Buffer | null = null;
  /** Views of the batch buffer's page slots (image, and image without its CRC field), by header size. */
  #slots = new Map<number, { image: Buffer; body: Buffer }[]>();
  #zeros: Buffer | null = null;
  #closing: Promise<void> | null = null;
  /**
   * Set when the in-place writes of a doublewrite batch failed: its copy is
   * then the only good one of its pages, and the next batch would overwrite
   * it. No more writes; the next open restores them from it.
   */
  #broken: unknown = null;

  /** @internal Use openPageFile(). */
  constructor(token: symbol, parts: Parts) {
    if (token !== CONSTRUCT) throw new TypeError('PageFile is not constructible: use openPageFile()');
    this.path = parts.path;
    this.pageSize = parts.settings.pageSize;
    this.payloadSize = this.pageSize - TRAILER_SIZE;
    this.strategy = parts.strategy;
    this.strategyReason = parts.reason;
    this.recovery = Object.freeze(parts.recovery);
    this.#pageCount = parts.pageCount;
    this.#data = parts.data;
    this.#dblwr = parts.dblwr;
    this.#area = parts.area;
    this.#tag = fileTag(parts.fileId);
    this.#writable = parts.writable;
    this.#batchPages = parts.settings.batchPages;
    this.#nextSeq = parts.nextSeq;
    this.#allocatedPages = parts.allocatedPages;
    this.#overlay = parts.overlay;
  }

  /** One past the highest page ever written. */
  get pageCount(): number {
    return this.#pageCount;
  }

  /**
   * Writes the pages; resolves once every one of them is untorn and durable.
   * Concurrent calls share batches; a page in two calls ends with the later
   * call's data. The views must not change until the promise settles (as
   * with fs writes). The call as a whole is not atomic: after a crash, each
   * page holds its old or its new payload.
   */
  writePages(writes: Iterable<PageWrite>): Promise<void> {
    let entries;
    try {
      this.#assertWritable();
      if (this.#broken !== null) throw this.#broken;
      entries = validatePageWrites(writes, this.pageSize, this.payloadSize);
    } catch (err) {
      return Promise.reject(err);
    }
    if (entries.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const request: Request = { remaining: entries.length, failed: false, resolve, reject };
      for (const { page, data } of entries) {
        this.#queue.push({ page, data, request });
        this.#inFlight.set(page, data);
      }
      this.#writer ??= this.#drain();
    });
  }

  writePage(page: number, data: ArrayBufferView): Promise<void> {
    return this.writePages([{ page, data }]);
  }

  /**
   * The page's payload (zeros for a page never written), after its checksum
   * and page number have been checked: a page that fails is never returned,
   * the promise rejects with ERR_PAGE_CORRUPT. A page being written reads as
   * the payload being written.
   */
  async readPage(page: number, target?: ArrayBufferView): Promise<Buffer> {
    validatePageNumber(page, this.pageSize);
    if (target !== undefined) validatePayload(target, this.payloadSize, 'target');
    this.#assertOpen();
    const image = allocAligned(this.pageSize);
    for (let attempt = 0; ; attempt++) {
      const pending = this.#inFlight.get(page) ?? this.#overlay.get(page);
      if (pending !== undefined) {
        // Served from memory, it would resolve at once: a loop of such reads would starve the writes it waits for.
        await yieldToLoop.async();
        return this.#deliver(asBytes(this.#inFlight.get(page) ?? this.#overlay.get(page) ?? pending), target, false);
      }
      const before = this.#batchesDone;
      image.fill(0);
      await this.#data.read([{ buffer: image, position: pageOffset(page, this.pageSize) }]).async();
      const state = inspectPage(image, page, this.#tag);
      if (state.state !== 'corrupt') return this.#deliver(image, target, true);
      // A write of this page ran during the read: the read may have met it half done.
      const raced = this.#inFlight.has(page) || this.#batchesDone !== before;
      if (!raced || attempt === READ_RETRIES) throw this.#corrupt(page, state.reason);
    }
  }

  /** Checks every page below pageCount, as readPage would. */
  async verify(): Promise<PageFileVerifyResult> {
    this.#assertOpen();
    const result: PageFileVerifyResult = { pages: this.#pageCount, empty: 0, ok: 0, corrupt: [] };
    const chunk = allocAligned(SCAN_PAGES * this.pageSize);
    for (let first = 0; first < result.pages; first += SCAN_PAGES) {
      const count = Math.min(SCAN_PAGES, result.pages - first);
      const states = await this.#scan(chunk, first, count);
      for (let i = 0; i < count; i++) {
        const page = first + i;
        if (this.#overlay.has(page)) result.ok++;
        else if (states[i].state === 'empty') result.empty++;
        else if (states[i].state === 'ok') result.ok++;
        else {
          // Look again the way readPage does, so that a write in flight is not taken for a tear.
          try {
            await this.readPage(page);
            result.ok++;
          } catch (err) {
            if (!(err instanceof PageFileError)) throw err;
            result.corrupt.push({ page, reason: err.reason! });
          }
        }
      }
    }
    return result;
  }

  /** Waits for the writes in flight, then closes both files. Closing twice is harmless. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#writer !== null) await this.#writer;
      await Promise.all([this.#data.close().async(), this.#dblwr?.close().async()]);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(): void {
    if (this.#closing !== null) throw closedError(this.path);
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (!this.#writable) throw closedError(this.path, "is open read-only (flags 'r')");
  }

  #corrupt(page: number, reason: string): PageFileError {
    return new PageFileError('ERR_PAGE_CORRUPT', `page ${page} of ${this.path} is corrupt: ${reason}`, {
      path: this.path,
      page,
      reason,
    });
  }

  /** The payload into `target`, or as a Buffer of its own (`owned`: `bytes` is this read's alone, so no copy). */
  #deliver(bytes: Buffer, target: ArrayBufferView | undefined, owned: boolean): Buffer {
    if (target === undefined)
      return owned ? bytes.subarray(0, this.payloadSize) : Buffer.from(bytes.subarray(0, this.payloadSize));
    const out = asBytes(target);
    bytes.copy(out, 0, 0, this.payloadSize);
    return out;
  }

  /** States of `count` slots from `first`, read in one batch. */
  async #scan(chunk: Buffer, first: number, count: number): Promise<PageState[]> {
    const { pageSize } = this;
    const views = Array.from({ length: count }, (_, i) => chunk.subarray(i * pageSize, (i + 1) * pageSize));
    chunk.fill(0);
    await this.#data.read(views.map((buffer, i) => ({ buffer, position: pageOffset(first + i, pageSize) }))).async();
    return views.map((view, i) => inspectPage(view, first + i, this.#tag));
  }

  /** Writes queued pages, one batch at a time, until the queue is empty. */
  async #drain(): Promise<void> {
    // Calls made in the same turn of the event loop join the first batch.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0) await this.#writeBatch(this.#takeBatch());
    } finally {
      this.#writer = null;
    }
  }

  /** Up to batchPages distinct pages from the front of the queue; a page queued twice takes the later data. */
  #takeBatch(): Map<number, Queued[]> {
    const batch = new Map<number, Queued[]>();
    let taken = 0;
    for (const entry of this.#queue) {
      const same = batch.get(entry.page);
      if (same) same.push(entry);
      else if (batch.size === this.#batchPages) break;
      else batch.set(entry.page, [entry]);
      taken++;
    }
    this.#queue.splice(0, taken);
    return batch;
  }

  async #writeBatch(batch: Map<number, Queued[]>): Promise<void> {
    const { pageSize } = this;
    const pages = [...batch.keys()];
    const seq = this.#nextSeq++;
    const area = this.strategy === 'doublewrite' ? this.#area : null;
    const headerBytes = area ? batchHeaderBytes(pages.length, PAGE_TARGETS, pageSize) : 0;
    const slots = this.#slotsAfter(headerBytes);
    const seal = sealFor(seq, this.#tag);
    const seals: { crc: number; tail: number }[] = [];
    const writes = pages.map((page, i) => {
      const { image, body } = slots[i];
      const entries = batch.get(page)!;
      asBytes(entries[entries.length - 1].data).copy(image);
      sealPage(image, page, seal, body);
      // The copy's seal for the batch header is its trailer's CRC32C: no second checksum.
      if (area) {
        const crc = image.readUInt32LE(pageSize - 4);
        seals.push({ crc, tail: crc });
      }
      return { buffer: image, position: pageOffset(page, pageSize) };
    });
    const highest = Math.max(...pages);
    const progress = { inPlace: false };
    try {
      if (this.#broken !== null) throw this.#broken;
      await this.#grow(highest);
      if (area) {
        const targetWrites = writes.map(({ position }) => ({ target: 0, position }));
        await runAsync(
          writeThrough(
            area,
            { seq, targets: PAGE_TARGETS, files: [this.#data], writes: targetWrites, headerBytes, seals },
            progress,
          ),
        );
      } else {
        await this.#data.write(writes, this.strategy === 'atomic', true).async();
      }
      this.#pageCount = Math.max(this.#pageCount, highest + 1);
      for (const entries of batch.values()) {
        for (const { request } of entries) if (--request.remaining === 0 && !request.failed) request.resolve();
      }
    } catch (err) {
      if (progress.inPlace) this.#broken ??= err;
      for (const request of new Set([...batch.values()].flat().map((e) => e.request))) {
        if (request.failed) continue;
        request.failed = true;
        request.reject(err);
      }
    } finally {
      this.#batchesDone++;
      for (const [page, entries] of batch) {
        if (this.#inFlight.get(page) === entries[entries.length - 1].data) this.#inFlight.delete(page);
      }
    }
  }

  /** The batch buffer: the doublewrite area's, or (atomic, unprotected) room for batchPages pages, made once. */
  #buffer(): Buffer {
    this.#batchBuffer ??= this.#area?.buffer ?? allocAligned(this.#batchPages * this.pageSize);
    return this.#batchBuffer;
  }

  /** The page slots of the batch buffer after a batch header of `headerBytes`, made once per header size. */
  #slotsAfter(headerBytes: number): { image: Buffer; body: Buffer }[] {
    let slots = this.#slots.get(headerBytes);
    if (slots === undefined) {
      const buffer = this.#buffer();
      const { pageSize } = this;
      slots = Array.from({ length: this.#batchPages }, (_, i) => {
        const image = buffer.subarray(headerBytes + i * pageSize, headerBytes + (i + 1) * pageSize);
        return { image, body: image.subarray(0, pageSize - 4) };
      });
      this.#slots.set(headerBytes, slots);
    }
    return slots;
  }

  /** Makes the data file hold page `page`: whole chunks of written zeros, made durable. */
  async #grow(page: number): Promise<void> {
    if (page < this.#allocatedPages) return;
    const { pageSize } = this;
    const chunkPages = Math.max(1, Math.floor(GROWTH_BYTES / pageSize));
    const target = Math.ceil((page + 1) / chunkPages) * chunkPages;
    this.#zeros ??= allocAligned(chunkPages * pageSize);
    const writes = [];
    for (let at = this.#allocatedPages; at < target; at += chunkPages) {
      writes.push({
        buffer: this.#zeros.subarray(0, Math.min(chunkPages, target - at) * pageSize),
        position: pageOffset(at, pageSize),
      });
    }
    await this.#data.write(writes, false, true).async();
    this.#allocatedPages = target;
  }
}

function formatError(path: string, why: string): PageFileError {
  return new PageFileError('ERR_PAGEFILE_FORMAT', `${path} is not a page file of this kind: ${why}`, { path });
}

/** What the first bytes of a file say about its header. */
export function readHeader(io: PageIo): Promise<HeaderReading> {
  return runAsync(readFileHeader(io));
}

/** The file id of a header, once it is the header `io` must have. */
function checkHeader(header: FileHeader, io: PageIo, kind: FileKind, pageSize: number, fileId: Buffer | null): Buffer {
  if (header.kind !== kind) throw formatError(io.path, `it is a ${header.kind} file, not a ${kind} file`);
  if (header.pageSize !== pageSize) throw formatError(io.path, `its page size is ${header.pageSize}, not ${pageSize}`);
  if (fileId !== null && !header.fileId.equals(fileId))
    throw formatError(io.path, 'it belongs to another page file (its file id differs)');
  return header.fileId;
}

function writeHeader(io: PageIo, kind: FileKind, pageSize: number, fileId: Buffer): Promise<void> {
  return runAsync(writeFileHeader(io, { kind, pageSize, fileId, trailerSize: TRAILER_SIZE }, pageSize));
}

/** One past the last slot that is not all zeros, scanning back from the end of the file. */
async function lastWrittenPage(data: PageIo, allocatedPages: number, pageSize: number): Promise<number> {
  const chunk = allocAligned(SCAN_PAGES * pageSize);
  for (let end = allocatedPages; end > 0; end -= SCAN_PAGES) {
    const first = Math.max(0, end - SCAN_PAGES);
    const bytes = chunk.subarray(0, (end - first) * pageSize);
    bytes.fill(0);
    await data.read([{ buffer: bytes, position: pageOffset(first, pageSize) }]).async();
    for (let i = end - first - 1; i >= 0; i--) {
      if (!isZero(bytes.subarray(i * pageSize, (i + 1) * pageSize))) return first + i + 1;
    }
  }
  return 0;
}

/** openPageFile over any I/O system: the real one, or (in tests) one that simulates crashes. */
export async function openPageFileWith(
  system: PageIoSystem,
  path: string,
  options?: PageFileOptions,
): Promise<PageFile> {
  const settings = validatePageFileOptions(path, options);
  const { pageSize, flags, doublewritePath, batchPages } = settings;
  const writable = flags !== 'r';
  const { io: data, made } = await runAsync(openWithFlags(system, path, flags));
  let dblwr: PageIo | null = null;
  try {
    if (!data.lock(writable)) {
      throw new PageFileError(
        'ERR_PAGEFILE_LOCKED',
        `page file ${path} is open for writing elsewhere (this process or another)`,
        { path },
      );
    }
    const { strategy, reason } = chooseStrategy(settings.strategy, await system.stack(path).async(), pageSize, path);
    if (flags === 'w+') await data.truncate(0).async();
    const size = await data.size().async();
    const header: HeaderReading = size === 0 ? { state: 'empty' } : await readHeader(data);
    let fileId: Buffer;
    if (header.state === 'ok') {
      fileId = checkHeader(header.header, data, 'data', pageSize, null);
    } else if (writable && size <= pageSize) {
      // No page yet and no readable header: a creation that crashed, or a new file. Made anew.
      fileId = randomBytes(16);
      await writeHeader(data, 'data', pageSize, fileId);
    } else {
      throw formatError(
        path,
        header.state === 'empty' ? (size === 0 ? 'it is empty' : 'its header is all zeros') : header.why,
      );
    }
    const fresh = header.state !== 'ok';

    const wantDblwr = writable && strategy === 'doublewrite';
    try {
      dblwr = await system.open(doublewritePath, writable, wantDblwr ? 'yes' : 'no').async();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const tag = fileTag(fileId);
    const recovery: PageFileRecovery = { pagesChecked: 0, pagesRestored: 0, batchesDiscarded: 0 };
    const overlay = new Map<number, Buffer>();
    let nextSeq = 1n;
    let restoredUpTo = 0;
    const area = dblwr && new BatchArea(dblwr, fileId, pageSize, pageFileAreaBytes(batchPages, pageSize));
    const dblwrHeader: HeaderReading = dblwr === null || fresh ? { state: 'empty' } : await readHeader(dblwr);
    if (dblwr && area && dblwrHeader.state === 'ok') {
      checkHeader(dblwrHeader.header, dblwr, 'doublewrite', pageSize, fileId);
      const found = await runAsync(findBatch(area));
      recovery.batchesDiscarded = found.discarded ? 1 : 0;
      nextSeq = found.seq + 1n;
      if (found.batch) {
        recovery.pagesChecked = found.batch.images.length;
        // A home is restored when it is torn, empty, misplaced or older than the copy.
        const restores = await runAsync(
          homesToRestore(found.batch, [data], (_copy, home, position) => {
            const state = inspectPage(home, position / pageSize - 1, tag);
            return state.state !== 'ok' || state.seq < found.seq;
          }),
        );
        recovery.pagesRestored = restores.length;
        restoredUpTo = Math.max(0, ...restores.map((r) => r.position / pageSize));
        if (!writable) {
          for (const { position, image } of restores) overlay.set(position / pageSize - 1, image);
        } else {
          // The batch stays where it is until the restores are durable, so a crash here is recovered by the next open.
          await runAsync(restore(area, [data], restores, found.seq));
        }
      }
    } else if (dblwr && wantDblwr) {
      // No header: a new doublewrite file, or one whose making crashed; it holds no batch that counts.
      await writeHeader(dblwr, 'doublewrite', pageSize, fileId);
    }
    // The batch area is written once here, so batch writes are overwrites.
    if (wantDblwr) await runAsync(allocateArea(area!));
    const allocatedPages = Math.max(0, Math.floor((await data.size().async()) / pageSize) - 1);
    const pageCount = Math.max(restoredUpTo, fresh ? 0 : await lastWrittenPage(data, allocatedPages, pageSize));
    return new PageFile(CONSTRUCT, {
      settings,
      path,
      strategy,
      reason,
      recovery,
      data,
      dblwr,
      area: wantDblwr ? area : null,
      fileId,
      writable,
      nextSeq,
      allocatedPages,
      pageCount,
      overlay,
    });
  } catch (err) {
    await Promise.allSettled([data.close().async(), dblwr?.close().async()]);
    if (made) await system.remove(path).async();
    throw err;
  }
}

/** Opens (or creates) a page file; see PageFileOptions. Runs recovery before it resolves. */
export function openPageFile(path: string, options?: PageFileOptions): Promise<PageFile> {
  return openPageFileWith(directIo, path, options);
}
