// AtomicFile: an O_DIRECT file handle in the shape of fs/promises' FileHandle,
// whose writeAtomic() is one pwritev2(RWF_ATOMIC) that untorn has checked first.
import { binding, type RawStat } from './binding';
import { toAtomicWriteInfo } from './capabilities';
import { engine } from './engine';
import { batchError, check, closedError, fsError } from './errors';
import type { AtomicWriteInfo } from './info';
import {
  checkAtomicWrite,
  checkDirectIo,
  parseMode,
  parseOpenFlags,
  validateBatch,
  validateBatchOptions,
  validatePath,
  validatePosition,
  validateView,
  validateWriteOptions,
  type BatchEntry,
  type IoKind,
} from './validate';

export type { BatchEntry };

export interface WriteOptions {
  /** RWF_DSYNC: the write is durable when it returns, as if followed by fdatasync. */
  dsync?: boolean;
}

export interface BatchWriteOptions extends WriteOptions {
  /** One fdatasync once every write of the batch has completed; the promise resolves after it. */
  datasync?: boolean;
}

const CONSTRUCT = Symbol('AtomicFile');

// A handle dropped without close() would leak its descriptor; close it for
// the user, as Node does for a FileHandle, and say so.
const unclosed = new FinalizationRegistry<{ fd: number; path: string }>(({ fd, path }) => {
  binding.closeSync(fd);
  process.emitWarning(`untorn: closed file descriptor ${fd} (${path}) of an AtomicFile that was not closed`);
});

export class AtomicFile {
  readonly path: string;
  /** statx of the open file, taken at open. */
  readonly info: AtomicWriteInfo;
  #fd: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  /** @internal Use open() or openSync(). */
  constructor(token: symbol, fd: number, path: string, info: AtomicWriteInfo) {
    if (token !== CONSTRUCT) throw new TypeError('AtomicFile is not constructible: use open() or openSync()');
    this.#fd = fd;
    this.path = path;
    this.info = info;
    unclosed.register(this, { fd, path }, this);
  }

  /** The descriptor, or -1 once the file is closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  // The async forms check synchronously and hand a refusal back as a
  // rejected promise, as fs/promises does, without an extra async frame.
  writeAtomic(buffer: ArrayBufferView, position: number, options?: WriteOptions): Promise<number> {
    return this.#start('pwritev2', () => {
      const rwflags = this.#checkAtomic(buffer, position, options);
      return engine().write(this.#fd, buffer, position, rwflags);
    });
  }

  writeAtomicSync(buffer: ArrayBufferView, position: number, options?: WriteOptions): number {
    const rwflags = this.#checkAtomic(buffer, position, options);
    return check(binding.pwritev2Sync(this.#fd, buffer, position, rwflags), 'pwritev2', this.path);
  }

  /** A plain O_DIRECT write: no RWF_ATOMIC, so it may tear. */
  write(buffer: ArrayBufferView, position: number, options?: WriteOptions): Promise<number> {
    return this.#start('pwritev2', () => {
      const rwflags = this.#checkDirect('write', buffer, position, options);
      return engine().write(this.#fd, buffer, position, rwflags);
    });
  }

  writeSync(buffer: ArrayBufferView, position: number, options?: WriteOptions): number {
    const rwflags = this.#checkDirect('write', buffer, position, options);
    return check(binding.pwritev2Sync(this.#fd, buffer, position, rwflags), 'pwritev2', this.path);
  }

  /** Reads into the whole view; resolves to the bytes read (0 at end of file). */
  read(buffer: ArrayBufferView, position: number): Promise<number> {
    return this.#start('preadv2', () => {
      this.#checkDirect('read', buffer, position, undefined);
      return engine().read(this.#fd, buffer, position);
    });
  }

  readSync(buffer: ArrayBufferView, position: number): number {
    this.#checkDirect('read', buffer, position, undefined);
    return check(binding.preadv2Sync(this.#fd, buffer, position), 'preadv2', this.path);
  }

  async datasync(): Promise<void> {
    await this.#start('fdatasync', () => {
      this.#assertOpen();
      return engine().fsync(this.#fd, true);
    });
  }

  datasyncSync(): void {
    this.#assertOpen();
    check(binding.fdatasyncSync(this.#fd), 'fdatasync', this.path);
  }

  async sync(): Promise<void> {
    await this.#start('fsync', () => {
      this.#assertOpen();
      return engine().fsync(this.#fd, false);
    });
  }

  syncSync(): void {
    this.#assertOpen();
    check(binding.fsyncSync(this.#fd), 'fsync', this.path);
  }

  /**
   * Writes every entry with RWF_ATOMIC, all submitted together; each write is
   * untorn, the batch as a whole is not atomic. Every entry is checked before
   * any is submitted: one bad entry refuses the batch and nothing is written.
   * Resolves to the byte counts, after the fdatasync where `datasync` is set.
   */
  writeAtomicBatch(writes: Iterable<BatchEntry>, options?: BatchWriteOptions): Promise<number[]> {
    return this.#startBatch('pwritev2', () => {
      const { entries, dsync, datasync } = this.#checkBatchWrites(writes, options);
      for (const { buffer, position } of entries) {
        checkAtomicWrite(this.info, buffer.byteLength, position, binding.bufferAddress(buffer), this.path);
      }
      return [entries, binding.RWF_ATOMIC | (dsync ? binding.RWF_DSYNC : 0), datasync];
    });
  }

  /** As writeAtomicBatch, with plain O_DIRECT writes (no RWF_ATOMIC): each may tear. */
  writeBatch(writes: Iterable<BatchEntry>, options?: BatchWriteOptions): Promise<number[]> {
    return this.#startBatch('pwritev2', () => {
      const { entries, dsync, datasync } = this.#checkBatchWrites(writes, options);
      for (const { buffer, position } of entries) {
        checkDirectIo(this.info, 'write', buffer.byteLength, position, binding.bufferAddress(buffer), this.path);
      }
      return [entries, dsync ? binding.RWF_DSYNC : 0, datasync];
    });
  }

  /** Reads every entry's whole view, all submitted together; resolves to the bytes read per entry. */
  readBatch(reads: Iterable<BatchEntry>): Promise<number[]> {
    return this.#startBatch('preadv2', () => {
      this.#assertOpen();
      const entries = validateBatch(reads, 'reads');
      for (const { buffer, position } of entries) {
        checkDirectIo(this.info, 'read', buffer.byteLength, position, binding.bufferAddress(buffer), this.path);
      }
      return [entries, null, false];
    });
  }

  /**
   * Closes the file once the operations in flight have ended (a descriptor
   * closed under them could be reused by another open and written by mistake).
   * New operations fail with EBADF at once. Closing twice is harmless.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#markClosed();
      this.#closing = this.#drained().then(async () => {
        check(await binding.close(this.#fd), 'close', this.path);
      });
    }
    return this.#closing;
  }

  /** As close(); with operations in flight, the descriptor is closed when the last one ends. */
  closeSync(): void {
    if (this.#closing !== undefined) return;
    this.#markClosed();
    if (this.#inFlight === 0) {
      this.#closing = Promise.resolve();
      check(binding.closeSync(this.#fd), 'close', this.path);
    } else {
      // Nobody is left to hear of a failure of this deferred close.
      this.#closing = this.#drained().then(() => void binding.closeSync(this.#fd));
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #markClosed(): void {
    this.#closed = true;
    unclosed.unregister(this);
  }

  #drained(): Promise<void> {
    return this.#inFlight === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve));
  }

  /**
   * Checks and queues an async operation (`begin` throws a refusal, which
   * becomes the rejection) and counts it in flight until it settles.
   */
  #start(syscall: string, begin: () => Promise<number>): Promise<number> {
    let operation: Promise<number>;
    try {
      operation = begin();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inFlight++;
    // The native promise always resolves, with the result or -errno.
    return operation.then((result) => {
      if (--this.#inFlight === 0) this.#idle?.();
      return check(result, syscall, this.path);
    });
  }

  /**
   * As #start, for a batch: `begin` checks every entry and returns them with
   * the write flags (null for reads) and whether an fdatasync ends the batch.
   */
  #startBatch(syscall: string, begin: () => [BatchEntry[], number | null, boolean]): Promise<number[]> {
    let operation: Promise<number[]>;
    let count: number;
    try {
      const [entries, rwflags, datasync] = begin();
      count = entries.length;
      const views = entries.map((e) => e.buffer);
      const positions = entries.map((e) => e.position);
      const io = engine();
      if (count === 0) operation = datasync ? io.fsync(this.#fd, true).then((r) => [r]) : Promise.resolve([]);
      else if (rwflags === null) operation = io.readBatch(this.#fd, views, positions);
      else operation = io.writeBatch(this.#fd, views, positions, rwflags, datasync);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inFlight++;
    return operation.then((results) => {
      if (--this.#inFlight === 0) this.#idle?.();
      const perEntry = results.slice(0, count);
      if (perEntry.some((r) => r < 0)) throw batchError(perEntry, syscall, this.path);
      if (results.length > count && results[count] < 0)
        throw batchError(perEntry, 'fdatasync', this.path, results[count]);
      return perEntry;
    });
  }

  #checkBatchWrites(writes: unknown, options: unknown): { entries: BatchEntry[]; dsync: boolean; datasync: boolean } {
    this.#assertOpen();
    const { dsync, datasync } = validateBatchOptions(options);
    return { entries: validateBatch(writes, 'writes'), dsync, datasync };
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError(this.path);
  }

  /** Every rule of a writeAtomic, before any syscall; returns the pwritev2 flags. */
  #checkAtomic(buffer: unknown, position: unknown, options: unknown): number {
    this.#assertOpen();
    validateView(buffer);
    validatePosition(position);
    const dsync = validateWriteOptions(options);
    checkAtomicWrite(this.info, buffer.byteLength, position, binding.bufferAddress(buffer), this.path);
    return binding.RWF_ATOMIC | (dsync ? binding.RWF_DSYNC : 0);
  }

  /** The rules of a plain O_DIRECT write or read; returns the pwritev2 flags. */
  #checkDirect(kind: IoKind, buffer: unknown, position: unknown, options: unknown): number {
    this.#assertOpen();
    validateView(buffer);
    validatePosition(position);
    const dsync = validateWriteOptions(options);
    checkDirectIo(this.info, kind, buffer.byteLength, position, binding.bufferAddress(buffer), this.path);
    return dsync ? binding.RWF_DSYNC : 0;
  }
}

function checkOpenArgs(path: unknown, flags: unknown, mode: unknown): [number, number] {
  validatePath(path);
  return [parseOpenFlags(flags), parseMode(mode)];
}

/** The handle for a freshly opened fd, given its statx; a failed statx closes the fd. */
function handleFor(fd: number, path: string, st: RawStat | number): AtomicFile {
  if (typeof st === 'number') {
    binding.closeSync(fd);
    throw fsError(st, 'statx', path);
  }
  return new AtomicFile(CONSTRUCT, fd, path, toAtomicWriteInfo(st));
}

/** Opens `path` with O_DIRECT added to `flags` (default 'r+'). */
export async function open(path: string, flags?: string | number, mode?: number | string): Promise<AtomicFile> {
  const [oflags, omode] = checkOpenArgs(path, flags, mode);
  const fd = check(await binding.open(path, oflags, omode), 'open', path);
  return handleFor(fd, path, await binding.statx(fd));
}

export function openSync(path: string, flags?: string | number, mode?: number | string): AtomicFile {
  const [oflags, omode] = checkOpenArgs(path, flags, mode);
  const fd = check(binding.openSync(path, oflags, omode), 'open', path);
  return handleFor(fd, path, binding.statxSync(fd));
}
