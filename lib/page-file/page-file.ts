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
  batchAreaBytes,
  batchAreaOffset,
  batchHeaderBytes,
  decodeHeader,
  encodeBatchHeader,
  encodeHeader,
  fileTag,
  inspectPage,
  isZero,
  pageOffset,
  sealFor,
  sealPage,
  TRAILER_SIZE,
  type FileHeader,
  type FileKind,
  type HeaderReading,
  type PageState,
} from './format';
import { directIo, type Create, type PageIo, type PageIoSystem } from './io';
import { findBatch, pagesToRestore } from './recovery';
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
  #fileId: Buffer;
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
    this.#fileId = parts.fileId;
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
      if (pending !== undefined) return this.#deliver(asBytes(pending), target, false);
      const before = this.#batchesDone;
      image.fill(0);
      await this.#data.read([{ buffer: image, position: pageOffset(page, this.pageSize) }]);
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
      await Promise.all([this.#data.close(), this.#dblwr?.close()]);
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
    await this.#data.read(views.map((buffer, i) => ({ buffer, position: pageOffset(first + i, pageSize) })));
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
    const doublewrite = this.strategy === 'doublewrite';
    const headerBytes = doublewrite ? batchHeaderBytes(pages.length, pageSize) : 0;
    const buffer = this.#buffer(headerBytes).subarray(0, headerBytes + pages.length * pageSize);
    const slots = this.#slotsAfter(headerBytes);
    const seal = sealFor(seq, this.#tag);
    const writes = pages.map((page, i) => {
      const { image, body } = slots[i];
      const entries = batch.get(page)!;
      asBytes(entries[entries.length - 1].data).copy(image);
      sealPage(image, page, seal, body);
      return { buffer: image, position: pageOffset(page, pageSize) };
    });
    const highest = Math.max(...pages);
    let inPlace = false;
    try {
      if (this.#broken !== null) throw this.#broken;
      await this.#grow(highest);
      if (doublewrite) {
        encodeBatchHeader(buffer.subarray(0, headerBytes), pages, seq, this.#fileId, pageSize);
        await this.#dblwr!.write([{ buffer, position: batchAreaOffset(pageSize) }], false, true);
      }
      inPlace = true;
      await this.#data.write(writes, this.strategy === 'atomic', true);
      this.#pageCount = Math.max(this.#pageCount, highest + 1);
      for (const entries of batch.values()) {
        for (const { request } of entries) if (--request.remaining === 0 && !request.failed) request.resolve();
      }
    } catch (err) {
      if (inPlace && doublewrite) this.#broken ??= err;
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

  /** The batch buffer: room for the largest batch header and batchPages pages, made once. */
  #buffer(headerBytes: number): Buffer {
    this.#batchBuffer ??= allocAligned(
      batchHeaderBytes(this.#batchPages, this.pageSize) + this.#batchPages * this.pageSize,
    );
    return this.#batchBuffer.subarray(0, headerBytes + this.#batchPages * this.pageSize);
  }

  /** The page slots of the batch buffer after a batch header of `headerBytes`, made once per header size. */
  #slotsAfter(headerBytes: number): { image: Buffer; body: Buffer }[] {
    let slots = this.#slots.get(headerBytes);
    if (slots === undefined) {
      const buffer = this.#buffer(headerBytes);
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
    await this.#data.write(writes, false, true);
    this.#allocatedPages = target;
  }
}

async function openOrCreate(
  system: PageIoSystem,
  path: string,
  flags: PageFileSettings['flags'],
): Promise<{ io: PageIo; made: boolean }> {
  if (flags === 'r') return { io: await system.open(path, false, 'no'), made: false };
  if (flags === 'r+') return { io: await system.open(path, true, 'no'), made: false };
  if (flags === 'w+' || flags === 'wx+') {
    const create: Create = flags === 'w+' ? 'yes' : 'exclusive';
    return { io: await system.open(path, true, create), made: flags === 'wx+' };
  }
  try {
    return { io: await system.open(path, true, 'no'), made: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { io: await system.open(path, true, 'exclusive'), made: true };
  }
}

function formatError(path: string, why: string): PageFileError {
  return new PageFileError('ERR_PAGEFILE_FORMAT', `${path} is not a page file of this kind: ${why}`, { path });
}

/** What the first bytes of a file say about its header. */
export async function readHeader(io: PageIo): Promise<HeaderReading> {
  const start = allocAligned(65536);
  await io.read([{ buffer: start, position: 0 }]);
  return decodeHeader(start);
}

/** The file id of a header, once it is the header `io` must have. */
function checkHeader(header: FileHeader, io: PageIo, kind: FileKind, pageSize: number, fileId: Buffer | null): Buffer {
  if (header.kind !== kind) throw formatError(io.path, `it is a ${header.kind} file, not a ${kind} file`);
  if (header.pageSize !== pageSize) throw formatError(io.path, `its page size is ${header.pageSize}, not ${pageSize}`);
  if (fileId !== null && !header.fileId.equals(fileId))
    throw formatError(io.path, 'it belongs to another page file (its file id differs)');
  return header.fileId;
}

async function writeHeader(io: PageIo, kind: FileKind, pageSize: number, fileId: Buffer): Promise<void> {
  const page = allocAligned(pageSize);
  encodeHeader(page, { kind, pageSize, fileId });
  await io.truncate(0);
  await io.write([{ buffer: page, position: 0 }], false, true);
}

/** One past the last slot that is not all zeros, scanning back from the end of the file. */
async function lastWrittenPage(data: PageIo, allocatedPages: number, pageSize: number): Promise<number> {
  const chunk = allocAligned(SCAN_PAGES * pageSize);
  for (let end = allocatedPages; end > 0; end -= SCAN_PAGES) {
    const first = Math.max(0, end - SCAN_PAGES);
    const bytes = chunk.subarray(0, (end - first) * pageSize);
    bytes.fill(0);
    await data.read([{ buffer: bytes, position: pageOffset(first, pageSize) }]);
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
  const { io: data, made } = await openOrCreate(system, path, flags);
  let dblwr: PageIo | null = null;
  try {
    if (!data.lock(writable)) {
      throw new PageFileError(
        'ERR_PAGEFILE_LOCKED',
        `page file ${path} is open for writing elsewhere (this process or another)`,
        { path },
      );
    }
    const { strategy, reason } = chooseStrategy(settings.strategy, await system.stack(data), pageSize, path);
    if (flags === 'w+') await data.truncate(0);
    const size = await data.size();
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
      dblwr = await system.open(doublewritePath, writable, wantDblwr ? 'yes' : 'no');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const tag = fileTag(fileId);
    const recovery: PageFileRecovery = { pagesChecked: 0, pagesRestored: 0, batchesDiscarded: 0 };
    const overlay = new Map<number, Buffer>();
    let nextSeq = 1n;
    let restoredUpTo = 0;
    const dblwrHeader: HeaderReading = dblwr === null || fresh ? { state: 'empty' } : await readHeader(dblwr);
    if (dblwr && dblwrHeader.state === 'ok') {
      checkHeader(dblwrHeader.header, dblwr, 'doublewrite', pageSize, fileId);
      const found = await findBatch(dblwr, fileId, tag, pageSize);
      recovery.batchesDiscarded = found.discarded ? 1 : 0;
      nextSeq = found.seq + 1n;
      if (found.copies) {
        recovery.pagesChecked = found.copies.pages.length;
        const restore = await pagesToRestore(data, found.copies, tag, pageSize);
        recovery.pagesRestored = restore.length;
        restoredUpTo = Math.max(0, ...restore.map((r) => r.page + 1));
        if (!writable) {
          for (const { page, image } of restore) overlay.set(page, image);
        } else if (restore.length > 0) {
          // The copies stay where they are until this is durable, so a crash here is recovered by the next open.
          await data.write(
            restore.map(({ page, image }) => ({ buffer: image, position: pageOffset(page, pageSize) })),
            false,
            true,
          );
        }
      }
    } else if (dblwr && wantDblwr) {
      // No header: a new doublewrite file, or one whose making crashed; it holds no batch that counts.
      await writeHeader(dblwr, 'doublewrite', pageSize, fileId);
    }
    if (wantDblwr) {
      // The batch area is written once here, so batch writes are overwrites.
      const need = batchAreaOffset(pageSize) + batchAreaBytes(batchPages, pageSize);
      const have = Math.ceil((await dblwr!.size()) / pageSize) * pageSize;
      if (have < need) await dblwr!.write([{ buffer: allocAligned(need - have), position: have }], false, true);
    }
    const allocatedPages = Math.max(0, Math.floor((await data.size()) / pageSize) - 1);
    const pageCount = Math.max(restoredUpTo, fresh ? 0 : await lastWrittenPage(data, allocatedPages, pageSize));
    return new PageFile(CONSTRUCT, {
      settings,
      path,
      strategy,
      reason,
      recovery,
      data,
      dblwr,
      fileId,
      writable,
      nextSeq,
      allocatedPages,
      pageCount,
      overlay,
    });
  } catch (err) {
    await Promise.allSettled([data.close(), dblwr?.close()]);
    if (made) await system.remove(path);
    throw err;
  }
}

/** Opens (or creates) a page file; see PageFileOptions. Runs recovery before it resolves. */
export function openPageFile(path: string, options?: PageFileOptions): Promise<PageFile> {
  return openPageFileWith(directIo, path, options);
}
