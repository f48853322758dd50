// Journal: untorn page writes for files in the caller's own layout, from
// blocking and async code (docs/journal.md). Where the page size takes the
// hardware path, a page write is one RWF_ATOMIC write in place and a commit
// makes the written files durable. Elsewhere page writes are held (and served
// to reads) until a commit, which double-writes them (lib/doublewrite/, the
// page files' own): one sequential batch to the journal file, fdatasync, then
// in place, each file fdatasync'd. Open replays what a crash left between the
// two. Every operation is a procedure (lib/steps.ts) run blocking by the
// ...Sync methods and awaited by the others.
import { randomBytes } from 'node:crypto';
import nodePath from 'node:path';
import { allocAligned } from '../buffers';
import {
  allocateArea,
  BatchArea,
  findBatch,
  homesToRestore,
  openWithFlags,
  readFileHeader,
  restore,
  retire,
  writeFileHeader,
  writeThrough,
  type Batch,
} from '../doublewrite/doublewrite';
import { batchHeaderBytes, type BatchTarget, type HeaderReading } from '../doublewrite/format';
import { AtomicWriteError, closedError, JournalError } from '../errors';
import { formatBytes } from '../format';
import { directIo, type PageIo, type PageIoSystem } from '../page-io';
import { chooseStrategy } from '../page-file/strategy';
import { all, perform, runAsync, runSync, yieldToLoop, type Procedure } from '../steps';
import {
  validateJournaledOpen,
  validateJournalOptions,
  type JournalSettings,
  validateJournaledWrite,
  validateLength,
  validateRead,
} from '../validate';

export type JournalStrategy = 'atomic' | 'doublewrite';

export interface JournalOptions {
  /** Default 16384; a power of two from 4096 to 65536. */
  pageSize?: number;
  /** Default 'auto': 'atomic' where the page size takes the hardware path, else 'doublewrite'. */
  strategy?: 'auto' | JournalStrategy;
  /** Where the guarded files live (the strategy is decided for its filesystem); default: the journal's directory. */
  directory?: string;
  /** Bytes of page writes held before a commit is forced; default 64 MiB. */
  maxPendingBytes?: number;
}

/** What open did to bring the guarded files back to whole pages. */
export interface JournalRecovery {
  /** Complete batches found in the journal and written in place again (0 or 1). */
  batchesReplayed: number;
  /** Pages of that batch whose home differed from the copy, and were written from it. */
  pagesReplayed: number;
  /** Incomplete batches (a crash while the journal was written): their pages were never written in place. */
  batchesDiscarded: number;
}

export type JournaledFileFlags = 'r' | 'r+' | 'w+' | 'wx+';

/** Bytes of the journal's batch area: the largest batch, header included. */
export const JOURNAL_AREA_BYTES = 4 * 1024 * 1024;

/** A page write held in memory: pending (until a commit takes it), in a batch, or (atomic) in flight. */
interface Page {
  key: string;
  file: Guarded;
  position: number;
  image: Buffer;
  /** The write counter when the page was first held; a later write of the page keeps it. */
  stamp: number;
}

/** atomic: an async page write waiting for the end of the turn, to go down with the others. */
interface TogetherWrite {
  page: Page;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** One file under the journal, shared by every JournaledFile open on it. */
class Guarded {
  /** Descriptors replaced by a writable one, closed with the journal (a read may still use them). */
  readonly replaced: PageIo[] = [];
  handles = 0;
  /** atomic: written since its last fdatasync. */
  dirty = false;
  /** One past the highest byte of a page held in memory. */
  memEnd = 0;

  constructor(
    public io: PageIo,
    public writable: boolean,
    readonly key: string,
    readonly target: BatchTarget,
    public diskSize: number,
  ) {}

  size(): number {
    return Math.max(this.diskSize, this.memEnd);
  }
}

const CONSTRUCT = Symbol('Journal');

interface Parts {
  settings: JournalSettings;
  path: string;
  strategy: JournalStrategy;
  reason: string;
  recovery: JournalRecovery;
  system: PageIoSystem;
  io: PageIo;
  area: BatchArea;
  seq: bigint;
  base: string;
}

function asBytes(view: ArrayBufferView): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export class Journal {
  readonly path: string;
  readonly pageSize: number;
  readonly strategy: JournalStrategy;
  readonly strategyReason: string;
  readonly recovery: JournalRecovery;
  #system: PageIoSystem;
  #io: PageIo;
  #area: BatchArea;
  /** Guarded files' paths are kept relative to this (the journal's directory), so a moved tree still replays. */
  #base: string;
  #maxPendingBytes: number;
  #files = new Map<string, Guarded>();
  #pending = new Map<string, Page>();
  #committing = new Map<string, Page>();
  #inFlight = new Map<string, { page: Page; done: Promise<void> }>();
  /** atomic: async writes made in this turn of the event loop, to go down together (one engine batch per file). */
  #together: TogetherWrite[] | null = null;
  #free: Buffer[] = [];
  #stamp = 0;
  #seq: bigint;
  /** The area holds a batch that open would replay (retired at close and before a truncate). */
  #areaLive = false;
  /** Bumped whenever an in-place write may start: a disk read that began before it is done again. */
  #epoch = 0;
  #flusher: Promise<void> | null = null;
  /** Async syncs of dirty files under way: a commit waits for them too (they cleared `dirty` of what it covers). */
  #syncing = new Set<Promise<void>>();
  #waiters: { need: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** Async steps that write the journal's area (batches, retirement) run one after another, in call order. */
  #areaQueue: Promise<unknown> = Promise.resolve();
  /** Async operations under way; a blocking call that would write or sync meanwhile is ERR_JOURNAL_BUSY. */
  #asyncOps = 0;
  /**
   * Set when a batch's in-place writes failed: its copy in the journal is then
   * the only good one of its pages. No more writes; the next open restores them.
   */
  #broken: unknown = null;
  #closing: Promise<void> | null = null;

  /** @internal Use openJournal() or openJournalSync(). */
  constructor(token: symbol, parts: Parts) {
    if (token !== CONSTRUCT)
      throw new TypeError('Journal is not constructible: use openJournal() or openJournalSync()');
    this.path = parts.path;
    this.pageSize = parts.settings.pageSize;
    this.strategy = parts.strategy;
    this.strategyReason = parts.reason;
    this.recovery = Object.freeze(parts.recovery);
    this.#system = parts.system;
    this.#io = parts.io;
    this.#area = parts.area;
    this.#base = parts.base;
    this.#seq = parts.seq;
    this.#maxPendingBytes = parts.settings.maxPendingBytes;
  }

  /** Opens a file for page writes through this journal. 'w+' truncates it (after a commit), as fs does. */
  async openFile(path: string, flags?: JournaledFileFlags, mode?: number): Promise<JournaledFile> {
    const checked = validateJournaledOpen(path, flags, mode);
    this.#assertOpen();
    const file = await runAsync(this.#openFile(path, checked.flags, checked.mode));
    if (checked.flags === 'w+') await file.truncate(0);
    return file;
  }

  openFileSync(path: string, flags?: JournaledFileFlags, mode?: number): JournaledFile {
    const checked = validateJournaledOpen(path, flags, mode);
    this.#assertOpen();
    const file = runSync(this.#openFile(path, checked.flags, checked.mode));
    if (checked.flags === 'w+') file.truncateSync(0);
    return file;
  }

  /**
   * Every page written so far, in every file, untorn in place and durable.
   * Concurrent calls share batches (group commit).
   */
  async commit(): Promise<void> {
    this.#assertOpen();
    await this.#commit();
  }

  commitSync(): void {
    this.#assertOpen();
    this.#assertIdle('commitSync');
    this.#throwIfBroken();
    runSync(this.#commitAll());
  }

  /** Commits, retires the journal's batch, and closes every file. Closing twice is harmless. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#commit();
      } finally {
        while (this.#asyncOps > 0) await this.#settled();
        await this.#underArea(() => runAsync(this.#shutdown()));
      }
    })();
    return this.#closing;
  }

  closeSync(): void {
    if (this.#closing !== null) return;
    this.#assertIdle('closeSync');
    this.#closing = Promise.resolve();
    try {
      this.#throwIfBroken();
      runSync(this.#commitAll());
    } finally {
      runSync(this.#shutdown());
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- what JournaledFile calls -------------------------------------------

  /** @internal */
  _write(file: Guarded, writable: boolean, path: string, buffer: ArrayBufferView, position: number, sync: boolean) {
    this.#assertFile(file, writable, path, true);
    validateJournaledWrite(buffer, position, this.pageSize, path);
    this.#throwIfBroken();
    const key = `${file.key}@${position}`;
    if (this.strategy === 'atomic') {
      const image = this.#image(buffer);
      if (sync) {
        if (this.#inFlight.has(key)) this.#busy('writePageSync of a page whose async write is in flight');
        this.#epoch++;
        try {
          file.io.write([{ buffer: image, position }], true, false).sync();
          file.dirty = true;
          file.diskSize = Math.max(file.diskSize, position + this.pageSize);
        } finally {
          this.#release(image);
        }
        return undefined;
      }
      file.memEnd = Math.max(file.memEnd, position + this.pageSize);
      return this.#writeInFlight({ key, file, position, image, stamp: ++this.#stamp });
    }
    this.#hold(key, file, position, buffer);
    if (this.#pendingBytes() < this.#maxPendingBytes) return sync ? undefined : Promise.resolve();
    if (!sync) return this.#commit();
    // Forced commit: a blocking caller cannot wait for an async one; that one drains what is held anyway.
    if (this.#asyncOps === 0) runSync(this.#commitAll());
    return undefined;
  }

  /** @internal */
  _read(file: Guarded, path: string, buffer: ArrayBufferView, position: number, sync: boolean) {
    this.#assertFile(file, true, path, false);
    validateRead(buffer, position);
    const procedure = this.#read(file, asBytes(buffer), position);
    return sync ? runSync(procedure) : runAsync(procedure);
  }

  /** @internal */
  _size(file: Guarded, path: string): number {
    this.#assertFile(file, true, path, false);
    return file.size();
  }

  /** @internal A commit makes every written or truncated file durable, this one included. */
  async _datasync(file: Guarded, path: string): Promise<void> {
    this.#assertFile(file, true, path, false);
    await this.#commit();
  }

  /** @internal */
  _datasyncSync(file: Guarded, path: string): void {
    this.#assertFile(file, true, path, false);
    this.commitSync();
  }

  /** @internal */
  async _truncate(file: Guarded, writable: boolean, path: string, length: number): Promise<void> {
    this.#assertFile(file, writable, path, true);
    validateLength(length);
    await this.#commit();
    await this.#asyncStep(this.#underArea(() => runAsync(this.#truncate(file, length))));
  }

  /** @internal */
  _truncateSync(file: Guarded, writable: boolean, path: string, length: number): void {
    this.#assertFile(file, writable, path, true);
    validateLength(length);
    this.commitSync();
    runSync(this.#truncate(file, length));
  }

  /** @internal A handle closed: its file's descriptor goes once nothing of it is held. */
  _closeHandle(file: Guarded): void {
    file.handles--;
    this.#dropUnused();
  }

  /** @internal */
  _isOpen(): boolean {
    return this.#closing === null;
  }

  // --- internals ------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing !== null) throw closedError(this.path);
  }

  #assertFile(file: Guarded, writable: boolean, path: string, write: boolean): void {
    if (this.#closing !== null || file.handles < 0) throw closedError(path);
    if (write && !writable) throw closedError(path, "is open read-only (flags 'r')");
  }

  #assertIdle(call: string): void {
    if (this.#asyncOps > 0) this.#busy(`${call} while an async operation of the journal is in flight`);
  }

  #busy(what: string): never {
    throw new JournalError('ERR_JOURNAL_BUSY', `journal ${this.path}: ${what} (a blocking call cannot wait for it)`, {
      path: this.path,
    });
  }

  #throwIfBroken(): void {
    if (this.#broken !== null) throw this.#broken;
  }

  #pendingBytes(): number {
    return this.#pending.size * this.pageSize;
  }

  /** An aligned copy of the caller's page (O_DIRECT needs alignment; the caller may reuse its buffer). */
  #image(buffer: ArrayBufferView): Buffer {
    const image = this.#free.pop() ?? allocAligned(this.pageSize);
    asBytes(buffer).copy(image);
    return image;
  }

  #release(image: Buffer): void {
    this.#free.push(image);
  }

  /** doublewrite: holds a page write until a commit; a second write of the page replaces the first. */
  #hold(key: string, file: Guarded, position: number, buffer: ArrayBufferView): void {
    const held = this.#pending.get(key);
    if (held) {
      asBytes(buffer).copy(held.image);
      return;
    }
    const image = this.#image(buffer);
    this.#pending.set(key, { key, file, position, image, stamp: ++this.#stamp });
    file.memEnd = Math.max(file.memEnd, position + this.pageSize);
  }

  /** atomic, async: the RWF_ATOMIC write in place, after any earlier async write of the same page. */
  #writeInFlight(page: Page): Promise<void> {
    const before = this.#inFlight.get(page.key)?.done;
    this.#asyncOps++;
    const done = (async () => {
      try {
        if (before) {
          await before.catch(() => undefined);
          this.#epoch++;
          await page.file.io.write([{ buffer: page.image, position: page.position }], true, false).async();
        } else {
          await this.#writeTogether(page);
        }
        page.file.dirty = true;
        page.file.diskSize = Math.max(page.file.diskSize, page.position + this.pageSize);
      } finally {
        if (this.#inFlight.get(page.key)?.page === page) this.#inFlight.delete(page.key);
        this.#release(page.image);
        this.#asyncOps--;
        this.#dropUnused();
      }
    })();
    this.#inFlight.set(page.key, { page, done });
    return done;
  }

  /**
   * atomic: joins the async writes made in this turn (a caller writing a batch of pages
   * calls writePage for each before it awaits): at the end of the turn they go down as
   * one engine batch per file, each still its own RWF_ATOMIC write, settled on its own.
   */
  #writeTogether(page: Page): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#together === null) {
        const group: TogetherWrite[] = [];
        this.#together = group;
        queueMicrotask(() => {
          this.#together = null;
          this.#submitTogether(group);
        });
      }
      this.#together!.push({ page, resolve, reject });
    });
  }

  #submitTogether(group: TogetherWrite[]): void {
    this.#epoch++;
    const byFile = new Map<Guarded, TogetherWrite[]>();
    for (const write of group) {
      const list = byFile.get(write.page.file);
      if (list) list.push(write);
      else byFile.set(write.page.file, [write]);
    }
    for (const [file, list] of byFile) {
      const entries = list.map(({ page }) => ({ buffer: page.image, position: page.position }));
      file.io
        .write(entries, true, false)
        .async()
        .then(
          () => list.forEach((write) => write.resolve()),
          (err: unknown) => {
            if (list.length === 1) return list[0].reject(err);
            // Each write settles as it would have alone: its own error, or done.
            const results = (err as { results?: unknown[] }).results;
            list.forEach((write, i) => {
              const own = results?.[i];
              if (typeof own === 'number') write.resolve();
              else write.reject(own instanceof Error ? own : err);
            });
          },
        );
    }
  }

  /** Runs `task` once the area's earlier async users are done. */
  #underArea<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#areaQueue.then(task, task);
    this.#areaQueue = run.catch(() => undefined);
    return run;
  }

  /** Runs an async step counted as an operation under way. */
  async #asyncStep<T>(promise: Promise<T>): Promise<T> {
    this.#asyncOps++;
    try {
      return await promise;
    } finally {
      this.#asyncOps--;
    }
  }

  /** Waits a turn for async operations to move (close waits for them to end). */
  #settled(): Promise<void> {
    return Promise.allSettled([this.#flusher, ...[...this.#inFlight.values()].map((f) => f.done)]).then(() =>
      yieldToLoop.async(),
    );
  }

  /**
   * The async commit: atomic waits for the writes in flight; doublewrite joins
   * the group commit. Then every file written or truncated is synced.
   */
  async #commit(): Promise<void> {
    this.#throwIfBroken();
    if (this.strategy === 'atomic') {
      await Promise.all([...this.#inFlight.values()].map((f) => f.done));
    } else if (this.#pending.size > 0 || this.#committing.size > 0) {
      const need = this.#stamp;
      await new Promise<void>((resolve, reject) => {
        this.#waiters.push({ need, resolve, reject });
        this.#flusher ??= this.#flush();
      });
    }
    // A concurrent commit's fdatasync may still be under way for writes this
    // commit covers (it cleared their files' `dirty`): this one waits for it.
    const earlier = [...this.#syncing];
    const mine = this.#asyncStep(runAsync(this.#syncDirty()));
    this.#syncing.add(mine);
    try {
      await Promise.all([mine, ...earlier]);
    } finally {
      this.#syncing.delete(mine);
    }
  }

  /** Writes batches while commits wait, settling each once every page it covers is durable. */
  async #flush(): Promise<void> {
    this.#asyncOps++;
    try {
      while (this.#waiters.length > 0) {
        if (this.#pending.size > 0) await this.#underArea(() => runAsync(this.#writeBatch()));
        // Everything held before the oldest page still pending is durable.
        const oldest = this.#pending.values().next();
        const durable = oldest.done ? this.#stamp : oldest.value.stamp - 1;
        const ready = this.#waiters.filter((w) => w.need <= durable);
        this.#waiters = this.#waiters.filter((w) => w.need > durable);
        for (const w of ready) w.resolve();
      }
    } catch (err) {
      const waiting = this.#waiters;
      this.#waiters = [];
      for (const w of waiting) w.reject(err);
    } finally {
      this.#flusher = null;
      this.#asyncOps--;
      this.#dropUnused();
    }
  }

  /** The blocking commit: every held page, batch after batch (atomic: the written files synced). */
  *#commitAll(): Procedure<void> {
    while (this.#pending.size > 0) yield* this.#writeBatch();
    yield* this.#syncDirty();
    this.#dropUnused();
  }

  /** fdatasync of every file written (atomic) or truncated since its last one. */
  *#syncDirty(): Procedure<void> {
    const dirty = [...this.#files.values()].filter((f) => f.dirty);
    for (const f of dirty) f.dirty = false;
    try {
      yield* perform(all(dirty.map((f) => f.io.datasync())));
    } catch (err) {
      for (const f of dirty) f.dirty = true;
      throw err;
    }
    this.#dropUnused();
  }

  /** One batch: as many held pages as the journal's area takes, oldest first. */
  *#writeBatch(): Procedure<void> {
    this.#throwIfBroken();
    const area = this.#area;
    const { pageSize } = this;
    const pages: Page[] = [];
    const targets: BatchTarget[] = [];
    const files: PageIo[] = [];
    const index = new Map<Guarded, number>();
    for (const page of this.#pending.values()) {
      const fresh = !index.has(page.file);
      if (!area.fits(pages.length + 1, fresh ? [...targets, page.file.target] : targets)) break;
      if (fresh) {
        index.set(page.file, targets.length);
        targets.push(page.file.target);
        files.push(page.file.io);
      }
      pages.push(page);
    }
    for (const page of pages) {
      this.#pending.delete(page.key);
      this.#committing.set(page.key, page);
    }
    this.#epoch++;
    const headerBytes = batchHeaderBytes(pages.length, targets, pageSize);
    pages.forEach((page, i) => page.image.copy(area.slot(headerBytes, i)));
    const batch: Batch = {
      seq: this.#seq++,
      targets,
      files,
      writes: pages.map((page) => ({ target: index.get(page.file)!, position: page.position })),
      headerBytes,
    };
    const progress = { inPlace: false };
    try {
      yield* writeThrough(area, batch, progress);
    } catch (err) {
      if (progress.inPlace) {
        // The journal's copy is the only good one now: keep serving these pages from memory.
        this.#broken ??= err;
      } else {
        // Nothing was written in place: the pages are held again, ahead of any written since.
        const back = pages.filter((page) => !this.#pending.has(page.key));
        for (const page of pages) this.#committing.delete(page.key);
        for (const page of pages) if (!back.includes(page)) this.#release(page.image);
        this.#pending = new Map([...back.map((page) => [page.key, page] as const), ...this.#pending]);
      }
      throw err;
    }
    this.#areaLive = true;
    for (const page of pages) {
      this.#committing.delete(page.key);
      page.file.diskSize = Math.max(page.file.diskSize, page.position + pageSize);
      this.#release(page.image);
    }
  }

  /** The memory copy of a page, newest first: held, in a batch, in flight. */
  #inMemory(file: Guarded, position: number): Buffer | null {
    const key = `${file.key}@${position}`;
    return (
      this.#pending.get(key)?.image ?? this.#committing.get(key)?.image ?? this.#inFlight.get(key)?.page.image ?? null
    );
  }

  /** A read of any range: pages held in memory from there, the rest from the file (again if a write began meanwhile). */
  *#read(file: Guarded, out: Buffer, position: number): Procedure<number> {
    const { pageSize } = this;
    for (;;) {
      const size = file.size();
      if (position >= size || out.length === 0) {
        yield* perform(yieldToLoop);
        return 0;
      }
      const n = Math.min(out.length, size - position);
      const first = Math.floor(position / pageSize);
      const last = Math.floor((position + n - 1) / pageSize);
      const pages = Array.from({ length: last - first + 1 }, (_, i) => first + i);
      const fromDisk = pages.filter((p) => this.#inMemory(file, p * pageSize) === null && p * pageSize < file.diskSize);
      const epoch = this.#epoch;
      let span: Buffer | null = null;
      if (fromDisk.length > 0) {
        span = allocAligned((fromDisk[fromDisk.length - 1] - fromDisk[0] + 1) * pageSize);
        yield* perform(file.io.read([{ buffer: span, position: fromDisk[0] * pageSize }]));
      } else {
        yield* perform(yieldToLoop);
      }
      // A write in place began meanwhile: what was read may be half of it.
      if (this.#epoch !== epoch) continue;
      // From here on nothing waits, so the memory copies looked up now stay put while they are copied.
      const sources = pages.map((p) => {
        const held = this.#inMemory(file, p * pageSize);
        if (held) return held;
        if (fromDisk.includes(p)) return span!.subarray((p - fromDisk[0]) * pageSize);
        // Neither held nor in the file: a hole below a page held beyond the end, which reads as zeros.
        return p * pageSize < file.diskSize ? undefined : null;
      });
      // A page that left memory during the read (its batch completed) was not read from the file: again.
      if (sources.includes(undefined)) continue;
      pages.forEach((p, i) => {
        const start = Math.max(position, p * pageSize);
        const end = Math.min(position + n, (p + 1) * pageSize);
        const within = start - p * pageSize;
        const source = sources[i];
        if (source) source.copy(out, start - position, within, within + (end - start));
        else out.fill(0, start - position, end - position);
      });
      return n;
    }
  }

  *#truncate(file: Guarded, length: number): Procedure<void> {
    // A batch replayed after the truncate would bring back what it cut off.
    if (this.#areaLive) {
      yield* retire(this.#area, this.#seq - 1n);
      this.#areaLive = false;
    }
    this.#epoch++;
    yield* perform(file.io.truncate(length));
    file.dirty = true;
    file.diskSize = length;
    // Pages held beyond the new end were written before the truncate took effect: it cuts them too.
    let memEnd = 0;
    for (const page of [...this.#pending.values()]) {
      if (page.file !== file) continue;
      if (page.position >= length) {
        this.#pending.delete(page.key);
        this.#release(page.image);
      } else memEnd = Math.max(memEnd, page.position + this.pageSize);
    }
    file.memEnd = memEnd;
  }

  *#openFile(path: string, flags: JournaledFileFlags, mode: number): Procedure<JournaledFile> {
    const absolute = nodePath.resolve(path);
    const writable = flags !== 'r';
    const { io, made } = yield* openWithFlags(this.#system, absolute, flags, mode);
    let keep = false;
    try {
      const id = yield* perform(io.identity());
      const key = `${id.ino}:${id.birth}`;
      let file = this.#files.get(key);
      if (file && writable && !file.writable) {
        if (this.strategy === 'atomic') this.#checkAtomic(io, path);
        file.replaced.push(file.io);
        file.io = io;
        file.writable = true;
        keep = true;
      } else if (!file) {
        if (this.strategy === 'atomic' && writable) this.#checkAtomic(io, path);
        const target = { path: nodePath.relative(this.#base, absolute), ino: id.ino, birth: id.birth };
        file = new Guarded(io, writable, key, target, yield* perform(io.size()));
        this.#files.set(key, file);
        keep = true;
      }
      file.handles++;
      return new JournaledFile(HANDLE, this, file, path, writable);
    } catch (err) {
      if (made) yield* perform(this.#system.remove(absolute));
      throw err;
    } finally {
      if (!keep) yield* perform(io.close());
    }
  }

  /** A file that cannot take RWF_ATOMIC writes of the page size under an 'atomic' journal. */
  #checkAtomic(io: PageIo, path: string): void {
    const { info } = io;
    if (info.supported && this.pageSize >= info.unitMin && this.pageSize <= info.unitMax) return;
    throw new AtomicWriteError(
      'ERR_ATOMIC_UNSUPPORTED',
      `journal ${this.path}: ${path} cannot take ${formatBytes(this.pageSize)} atomic writes (statx: ${
        info.supported ? `${formatBytes(info.unitMin)} to ${formatBytes(info.unitMax)}` : 'no atomic write support'
      })`,
      { path, length: this.pageSize, position: 0, ...info },
    );
  }

  /** Closes the descriptors of files no handle has open and nothing of is held. */
  #dropUnused(): void {
    if (this.#asyncOps > 0) return;
    const held = new Set([...this.#pending.values(), ...this.#committing.values()].map((p) => p.file));
    for (const [key, file] of this.#files) {
      if (file.handles > 0 || held.has(file) || file.dirty) continue;
      this.#files.delete(key);
      file.handles = -1;
      for (const io of [file.io, ...file.replaced]) io.close().sync();
    }
  }

  /** Retires the area (unless it holds the only good copy of a failed batch) and closes every file. */
  *#shutdown(): Procedure<void> {
    if (this.#areaLive && this.#broken === null) {
      yield* retire(this.#area, this.#seq - 1n);
      this.#areaLive = false;
    }
    const ios = [...this.#files.values()].flatMap((f) => [f.io, ...f.replaced]);
    for (const file of this.#files.values()) file.handles = -1;
    this.#files.clear();
    yield* perform(all([...ios, this.#io].map((io) => io.close())));
  }
}

const HANDLE = Symbol('JournaledFile');

/** A file in the caller's own layout, written through a journal: no header, no trailer. */
export class JournaledFile {
  readonly path: string;
  #journal: Journal;
  #file: Guarded;
  #writable: boolean;
  #closed = false;

  /** @internal Use Journal.openFile(). */
  constructor(token: symbol, journal: Journal, file: Guarded, path: string, writable: boolean) {
    if (token !== HANDLE) throw new TypeError('JournaledFile is not constructible: use journal.openFile()');
    this.path = path;
    this.#journal = journal;
    this.#file = file;
    this.#writable = writable;
  }

  #guarded(): Guarded {
    if (this.#closed) throw closedError(this.path);
    return this.#file;
  }

  /** A page (pageSize bytes at a multiple of pageSize): held until a commit, or (atomic) written untorn in place. */
  writePage(buffer: ArrayBufferView, position: number): Promise<void> {
    try {
      return this.#journal._write(this.#guarded(), this.#writable, this.path, buffer, position, false)!;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  writePageSync(buffer: ArrayBufferView, position: number): void {
    this.#journal._write(this.#guarded(), this.#writable, this.path, buffer, position, true);
  }

  /** Reads any range (pages not yet committed included); the bytes read, 0 at the end of the file. */
  read(buffer: ArrayBufferView, position: number): Promise<number> {
    try {
      return this.#journal._read(this.#guarded(), this.path, buffer, position, false) as Promise<number>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readSync(buffer: ArrayBufferView, position: number): number {
    return this.#journal._read(this.#guarded(), this.path, buffer, position, true) as number;
  }

  /** Commits, then makes this file durable (its size included). */
  async datasync(): Promise<void> {
    await this.#journal._datasync(this.#guarded(), this.path);
  }

  datasyncSync(): void {
    this.#journal._datasyncSync(this.#guarded(), this.path);
  }

  /** Commits, then sets the file's length. */
  async truncate(length: number): Promise<void> {
    await this.#journal._truncate(this.#guarded(), this.#writable, this.path, length);
  }

  truncateSync(length: number): void {
    this.#journal._truncateSync(this.#guarded(), this.#writable, this.path, length);
  }

  /** Bytes, pages not yet committed included. */
  size(): number {
    return this.#journal._size(this.#guarded(), this.path);
  }

  /** Closes this handle; its pages stay held until the journal commits them. */
  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#journal._isOpen()) this.#journal._closeHandle(this.#file);
  }
}

function formatError(path: string, why: string): JournalError {
  return new JournalError('ERR_JOURNAL_FORMAT', `${path} is not a journal of this kind: ${why}`, { path });
}

/** Opens the target files of a batch found at open: null where a file is gone or is another file now. */
function* openTargets(
  system: PageIoSystem,
  base: string,
  targets: readonly BatchTarget[],
): Procedure<(PageIo | null)[]> {
  const files: (PageIo | null)[] = [];
  for (const target of targets) {
    let io: PageIo;
    try {
      io = yield* perform(system.open(nodePath.resolve(base, target.path), true, 'no'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      files.push(null);
      continue;
    }
    const id = yield* perform(io.identity());
    if (id.ino === target.ino && id.birth === target.birth) files.push(io);
    else {
      files.push(null);
      yield* perform(io.close());
    }
  }
  return files;
}

/** Opens (or makes) the journal at `path` and replays what a crash left. */
function* openJournalProcedure(system: PageIoSystem, path: string, options: unknown): Procedure<Journal> {
  const settings = validateJournalOptions(path, options);
  const { pageSize } = settings;
  const absolute = nodePath.resolve(path);
  const base = nodePath.dirname(absolute);
  const { io, made } = yield* openWithFlags(system, absolute, undefined);
  let targets: (PageIo | null)[] = [];
  try {
    if (!io.lock(true)) {
      throw new JournalError('ERR_JOURNAL_LOCKED', `journal ${path} is open elsewhere (this process or another)`, {
        path,
      });
    }
    const facts = yield* perform(system.stack(settings.directory ?? base));
    const chosen = chooseStrategy(settings.strategy, facts, pageSize, path, 'journal');
    // Journals offer no 'unprotected': chooseStrategy gives it only when asked for.
    const strategy = chosen.strategy as JournalStrategy;
    const reason = chosen.reason;
    const size = yield* perform(io.size());
    const header: HeaderReading = size === 0 ? { state: 'empty' } : yield* readFileHeader(io);
    let id: Buffer;
    if (header.state === 'ok') {
      if (header.header.kind !== 'journal')
        throw formatError(path, `it is a page file's ${header.header.kind} file, not a journal`);
      if (header.header.pageSize !== pageSize)
        throw formatError(path, `its page size is ${header.header.pageSize}, not ${pageSize}`);
      id = header.header.fileId;
    } else if (size <= pageSize) {
      // No batch yet and no readable header: a creation that crashed, or a new journal. Made anew.
      id = randomBytes(16);
      yield* writeFileHeader(io, { kind: 'journal', pageSize, fileId: id, trailerSize: 0 }, pageSize);
    } else {
      throw formatError(path, header.state === 'empty' ? 'its header is all zeros' : header.why);
    }
    const area = new BatchArea(io, id, pageSize, JOURNAL_AREA_BYTES);
    const recovery: JournalRecovery = { batchesReplayed: 0, pagesReplayed: 0, batchesDiscarded: 0 };
    const found = yield* findBatch(area);
    if (found.batch) {
      targets = yield* openTargets(system, base, found.batch.header.targets);
      const restores = yield* homesToRestore(found.batch, targets, (copy, home) => !copy.equals(home));
      // The batch stays until the restores are durable, so a crash here is recovered by the next open.
      yield* restore(area, targets, restores, found.seq);
      recovery.batchesReplayed = 1;
      recovery.pagesReplayed = restores.length;
    } else if (found.discarded) {
      recovery.batchesDiscarded = 1;
      yield* retire(area, found.seq);
    }
    // The batch area is written once here, so batch writes are overwrites of written blocks.
    if (strategy === 'doublewrite') yield* allocateArea(area);
    return new Journal(CONSTRUCT, {
      settings,
      path,
      strategy,
      reason,
      recovery,
      system,
      io,
      area,
      seq: found.seq + 1n,
      base,
    });
  } catch (err) {
    yield* perform(io.close());
    if (made) yield* perform(system.remove(absolute));
    throw err;
  } finally {
    for (const target of targets) if (target) yield* perform(target.close());
  }
}

/** openJournal over any I/O system: the real one, or (in tests) one that simulates crashes. */
export function openJournalWith(system: PageIoSystem, path: string, options?: JournalOptions): Promise<Journal> {
  return runAsync(openJournalProcedure(system, path, options));
}

/** Opens (or makes) a journal; replays what a crash left before it resolves. */
export function openJournal(path: string, options?: JournalOptions): Promise<Journal> {
  return openJournalWith(directIo, path, options);
}

export function openJournalSync(path: string, options?: JournalOptions): Journal {
  return runSync(openJournalProcedure(directIo, path, options));
}

export function openJournalSyncWith(system: PageIoSystem, path: string, options?: JournalOptions): Journal {
  return runSync(openJournalProcedure(system, path, options));
}
