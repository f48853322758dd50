// A crash-SIMULATING I/O system for page files, after SQLite's crash VFS
// (src/test6.c). Files live in memory, as 512-byte sectors. Every write
// entry and every fdatasync (and truncate) is one numbered operation; the
// simulated machine "crashes" at operation k: that operation is interrupted
// (a plain write is torn, keeping its first 512 B or 4 KiB; an RWF_ATOMIC
// write is never torn) and every later call fails with SimCrash. What
// survives is what was made durable by a sync, plus any subset of the writes
// since (afterCrash). Directory entries and truncates are taken as durable at
// once, and reads see every write. These are SIMULATED crashes: what this
// finds is what the page file's logic does under this model of a disk, not
// what a kernel or a device does.
import type { BatchEntry } from '../../dist/validate.js';
import type { PageIo, PageIoSystem, StackFacts, Create, FileIdentity } from '../../dist/page-io.js';
import type { Step } from '../../dist/steps.js';

/** An in-memory operation as a step: the same call, blocking or as a promise. */
function step<T>(sync: () => T): Step<T> {
  return { sync, async: async () => sync() };
}

let nextIno = 1n;

const SECTOR = 512;

export class SimCrash extends Error {
  override name = 'SimCrash';
}

/** How the interrupted write is torn: its first `tear` bytes land (0: none of it). */
export type Tear = 0 | 512 | 4096;

interface Pending {
  file: SimFile;
  position: number;
  /** null: zeros. */
  data: Buffer | null;
  length: number;
}

type Sectors = Map<number, Buffer>;

function allZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function apply(sectors: Sectors, position: number, data: Buffer | null, length: number): void {
  for (let at = 0; at < length; at += SECTOR) {
    const sector = (position + at) / SECTOR;
    const bytes = data?.subarray(at, at + SECTOR);
    if (!bytes || allZero(bytes)) sectors.delete(sector);
    else sectors.set(sector, Buffer.from(bytes));
  }
}

class SimFile {
  /** Kept across a crash (afterCrash): the same inode, so a journal's replay finds its file again. */
  identity: FileIdentity = { ino: nextIno++, birth: 0n };
  current: Sectors = new Map();
  currentSize = 0;
  durable: Sectors = new Map();
  durableSize = 0;

  read(buffer: Buffer, position: number): number {
    buffer.fill(0);
    const n = Math.max(0, Math.min(buffer.length, this.currentSize - position));
    for (let at = 0; at < n; at += SECTOR) this.current.get((position + at) / SECTOR)?.copy(buffer, at);
    return n;
  }
}

/** The files of one simulated machine, and where it will crash. */
export class SimDisk {
  readonly files = new Map<string, SimFile>();
  /** Operations done so far (writes, syncs, truncates). */
  ops = 0;
  crashed = false;
  /** Writes since each file's last sync, in order, across files. */
  pending: Pending[] = [];

  constructor(
    readonly stackFacts: StackFacts,
    private readonly crashAt: number | null = null,
    private readonly tear: Tear = 0,
  ) {}

  /** An operation that fails with EIO instead (torn like a crash's), and the machine goes on. */
  failAt: number | null = null;

  /** Counts an operation; at the crash point, runs `interrupted` and crashes. */
  #op(interrupted?: () => void): void {
    if (this.crashed) throw new SimCrash('the simulated machine has crashed');
    if (this.ops === this.failAt) {
      this.ops++;
      interrupted?.();
      throw Object.assign(new Error('EIO: i/o error, pwritev2'), { code: 'EIO', errno: -5, syscall: 'pwritev2' });
    }
    if (this.ops++ === this.crashAt) {
      interrupted?.();
      this.crashed = true;
      throw new SimCrash(`simulated crash at operation ${this.crashAt}`);
    }
  }

  write(file: SimFile, entries: BatchEntry[], atomic: boolean): void {
    for (const { buffer, position } of entries) {
      const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      if (position % SECTOR !== 0 || bytes.length % SECTOR !== 0) throw new Error('unaligned O_DIRECT write');
      const record = (length: number) => {
        if (length === 0) return;
        const data = allZero(bytes.subarray(0, length)) ? null : Buffer.from(bytes.subarray(0, length));
        apply(file.current, position, data, length);
        file.currentSize = Math.max(file.currentSize, position + length);
        this.pending.push({ file, position, data, length });
      };
      this.#op(() => record(atomic ? 0 : Math.min(this.tear, bytes.length)));
      record(bytes.length);
    }
  }

  sync(file: SimFile): void {
    this.#op();
    file.durable = new Map(file.current);
    file.durableSize = file.currentSize;
    this.pending = this.pending.filter((p) => p.file !== file);
  }

  truncate(file: SimFile, size: number): void {
    this.#op();
    for (const sectors of [file.current, file.durable]) {
      for (const sector of sectors.keys()) if (sector * SECTOR >= size) sectors.delete(sector);
    }
    file.currentSize = file.durableSize = size;
  }

  /** The disk as it is after the crash: what was durable, plus the pending writes `keep` says survived. */
  afterCrash(keep: (index: number) => boolean = () => false, crashAt: number | null = null, tear: Tear = 0): SimDisk {
    const next = new SimDisk(this.stackFacts, crashAt, tear);
    const copies = new Map<SimFile, SimFile>();
    for (const [path, file] of this.files) {
      const copy = new SimFile();
      copy.identity = file.identity;
      copy.current = new Map(file.durable);
      copy.currentSize = file.durableSize;
      copies.set(file, copy);
      next.files.set(path, copy);
    }
    this.pending.forEach((p, i) => {
      if (!keep(i)) return;
      const copy = copies.get(p.file);
      if (!copy) return;
      apply(copy.current, p.position, p.data, p.length);
      copy.currentSize = Math.max(copy.currentSize, p.position + p.length);
    });
    for (const copy of copies.values()) {
      copy.durable = new Map(copy.current);
      copy.durableSize = copy.currentSize;
    }
    return next;
  }

  /** A PageIoSystem over these files. */
  get system(): PageIoSystem {
    // The methods below are the PageIoSystem's, with their own `this`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const disk = this;
    return {
      open: (path: string, write: boolean, create: Create) =>
        step((): PageIo => {
          if (disk.crashed) throw new SimCrash('the simulated machine has crashed');
          let file = disk.files.get(path);
          if (file && create === 'exclusive')
            throw Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: 'EEXIST' });
          if (!file) {
            if (create === 'no')
              throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
            file = new SimFile();
            disk.files.set(path, file);
          }
          return new SimIo(disk, file, path, write);
        }),
      remove: (path: string) =>
        step(() => {
          if (disk.crashed) throw new SimCrash('the simulated machine has crashed');
          disk.files.delete(path);
        }),
      stack: () => step(() => disk.stackFacts),
    };
  }
}

class SimIo implements PageIo {
  constructor(
    private readonly disk: SimDisk,
    private readonly file: SimFile,
    readonly path: string,
    private readonly writable: boolean,
  ) {}

  get info() {
    return this.disk.stackFacts.info;
  }

  size(): Step<number> {
    return step(() => this.file.currentSize);
  }

  identity(): Step<FileIdentity> {
    return step(() => this.file.identity);
  }

  lock(): boolean {
    return true;
  }

  truncate(size: number): Step<void> {
    return step(() => this.disk.truncate(this.file, size));
  }

  read(entries: BatchEntry[]): Step<number[]> {
    return step(() => {
      if (this.disk.crashed) throw new SimCrash('the simulated machine has crashed');
      return entries.map(({ buffer, position }) =>
        this.file.read(Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength), position),
      );
    });
  }

  write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Step<void> {
    return step(() => {
      if (!this.writable) throw new Error('write to a file opened read-only');
      this.disk.write(this.file, entries, atomic);
      if (datasync) this.disk.sync(this.file);
    });
  }

  datasync(): Step<void> {
    return step(() => this.disk.sync(this.file));
  }

  close(): Step<void> {
    return step(() => undefined);
  }
}
