// The I/O that page files and journals do, as a small interface of steps
// (lib/steps.ts: each operation in a blocking and an async form). They are
// written against it; the real implementation is an AtomicFile (O_DIRECT,
// io_uring batches for the async form), and tests put a crash-simulating one
// in its place (test/helpers/crash-io.ts).
import fs from 'node:fs';
import { constants } from 'node:os';
import nodePath from 'node:path';
import { promisify } from 'node:util';
import { open, openSync, type AtomicFile } from './atomic-file';
import { binding, type RawStat } from './binding';
import {
  blockDeviceLimits,
  blockDeviceLimitsSync,
  rawStat,
  rawStatSync,
  toAtomicWriteInfo,
  type BlockDeviceLimits,
} from './capabilities';
import { check } from './errors';
import type { AtomicWriteInfo } from './info';
import { mountOf } from './stack';
import { perform, runAsync, runSync, type Procedure, type Step } from './steps';
import type { BatchEntry } from './validate';

/** Which file an open file is, beyond its name: a file made anew under the same name is another. */
export interface FileIdentity {
  ino: bigint;
  /** Birth time in nanoseconds (statx btime). */
  birth: bigint;
}

/** One open file under a page file or a journal. */
export interface PageIo {
  readonly path: string;
  /** statx of the open file. */
  readonly info: AtomicWriteInfo;
  size(): Step<number>;
  identity(): Step<FileIdentity>;
  /** A whole-file lock that never waits; false when another open holds a conflicting one. */
  lock(exclusive: boolean): boolean;
  truncate(size: number): Step<void>;
  /** Reads every entry's whole view (zeros stay where the file ends); the bytes read per entry. */
  read(entries: BatchEntry[]): Step<number[]>;
  /** Writes all entries together, each with RWF_ATOMIC where `atomic`, then one fdatasync where `datasync`. */
  write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Step<void>;
  datasync(): Step<void>;
  close(): Step<void>;
}

/** 'no': the file must exist; 'yes': made if missing; 'exclusive': made, and must not exist. */
export type Create = 'no' | 'yes' | 'exclusive';

/** What 'auto' is decided from. */
export interface StackFacts {
  fsType: string | null;
  info: AtomicWriteInfo;
  device: BlockDeviceLimits | null;
}

/** Where files come from. */
export interface PageIoSystem {
  /** Fails with a Node-shaped error (ENOENT, EEXIST, ...). A file made here has a durable name. */
  open(path: string, write: boolean, create: Create, mode?: number): Step<PageIo>;
  remove(path: string): Step<void>;
  /** The stack under an existing file or directory, with `info` the statx of that path. */
  stack(path: string): Step<StackFacts>;
}

const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const fsync = promisify(fs.fsync);
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_DIRECTORY } = fs.constants;
const CREATE_FLAGS: Record<Create, number> = { no: 0, yes: O_CREAT, exclusive: O_CREAT | O_EXCL };

/** The same operation as a blocking call and a promise. */
function step<T>(sync: () => T, async: () => Promise<T>): Step<T> {
  return { sync, async };
}

/** A short write (the file system ran out of space mid-way) left this much of each entry unwritten. */
function remainder(entries: BatchEntry[], counts: number[]): BatchEntry[] {
  return entries.flatMap(({ buffer, position }, i) =>
    counts[i] < buffer.byteLength
      ? [
          {
            buffer: new Uint8Array(buffer.buffer, buffer.byteOffset + counts[i], buffer.byteLength - counts[i]),
            position: position + counts[i],
          },
        ]
      : [],
  );
}

class DirectIo implements PageIo {
  constructor(private readonly file: AtomicFile) {}

  get path(): string {
    return this.file.path;
  }

  get info(): AtomicWriteInfo {
    return this.file.info;
  }

  size(): Step<number> {
    return step(
      () => fs.fstatSync(this.file.fd).size,
      async () => (await fstat(this.file.fd)).size,
    );
  }

  identity(): Step<FileIdentity> {
    const of = (st: fs.BigIntStats) => ({ ino: st.ino, birth: st.birthtimeNs });
    return step(
      () => of(fs.fstatSync(this.file.fd, { bigint: true })),
      async () => of((await fstat(this.file.fd, { bigint: true })) as fs.BigIntStats),
    );
  }

  lock(exclusive: boolean): boolean {
    const r = binding.lockFile(this.file.fd, exclusive ? 2 : 1);
    if (r === -constants.errno.EAGAIN) return false;
    check(r, 'fcntl', this.path);
    return true;
  }

  truncate(size: number): Step<void> {
    return step(
      () => fs.ftruncateSync(this.file.fd, size),
      () => ftruncate(this.file.fd, size),
    );
  }

  read(entries: BatchEntry[]): Step<number[]> {
    return step(
      () => entries.map(({ buffer, position }) => this.file.readSync(buffer, position)),
      () => this.file.readBatch(entries),
    );
  }

  write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Step<void> {
    return step(
      () => runSync(this.#write(entries, atomic, datasync)),
      () => runAsync(this.#write(entries, atomic, datasync)),
    );
  }

  // A write that runs out of space mid-way comes back short, not failed: write the rest, which
  // either succeeds or fails with the errno itself (ENOSPC). An atomic write is never short.
  *#write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Procedure<void> {
    const file = this.file;
    let rest = entries;
    let rwAtomic = atomic;
    while (rest.length > 0) {
      const batch = rest;
      const asAtomic = rwAtomic;
      const counts = yield* perform(
        step(
          () =>
            batch.map(({ buffer, position }) =>
              (asAtomic ? file.writeAtomicSync : file.writeSync).call(file, buffer, position),
            ),
          () => (asAtomic ? file.writeAtomicBatch(batch) : file.writeBatch(batch)),
        ),
      );
      rest = remainder(batch, counts);
      rwAtomic = false;
    }
    if (datasync) yield* perform(this.datasync());
  }

  datasync(): Step<void> {
    return step(
      () => this.file.datasyncSync(),
      () => this.file.datasync(),
    );
  }

  close(): Step<void> {
    // Released first: io_uring requests can hold the open file a moment past
    // close(2), and a lock still held then would refuse the next open.
    const unlock = () => {
      if (this.file.fd >= 0) binding.lockFile(this.file.fd, 0);
    };
    return step(
      () => {
        unlock();
        this.file.closeSync();
      },
      () => {
        unlock();
        return this.file.close();
      },
    );
  }
}

/** A new file's name is durable only once its directory is synced. */
function syncDirectory(dir: string): Step<void> {
  return step(
    () => {
      const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    },
    async () => {
      const fd = await promisify(fs.open)(dir, O_RDONLY | O_DIRECTORY);
      await fsync(fd).finally(() => promisify(fs.close)(fd));
    },
  );
}

function* openDirect(path: string, write: boolean, create: Create, mode: number): Procedure<PageIo> {
  const flags = (write ? O_RDWR : O_RDONLY) | CREATE_FLAGS[create];
  const file = yield* perform(
    step(
      () => openSync(path, flags, mode),
      () => open(path, flags, mode),
    ),
  );
  if (create !== 'no') {
    try {
      yield* perform(syncDirectory(nodePath.dirname(path)));
    } catch (err) {
      yield* perform(
        step(
          () => file.closeSync(),
          () => file.close(),
        ),
      );
      throw err;
    }
  }
  return new DirectIo(file);
}

// O_TMPFILE (Linux's __O_TMPFILE | O_DIRECTORY, the same on x86-64 and arm64): an unnamed file, gone on close.
const O_TMPFILE = 0o20000000 | O_DIRECTORY;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/**
 * statx of what a file made in `dir` would be: XFS and ext4 report atomic
 * write limits for regular files only, so a directory's own statx says
 * nothing. An unnamed O_TMPFILE file leaves no trace; where the filesystem
 * has no O_TMPFILE, the directory's own statx it is.
 */
function statFileIn(dir: string): Step<RawStat> {
  const ofFd = (fd: number) => {
    try {
      return rawStatSync(fd);
    } finally {
      binding.closeSync(fd);
    }
  };
  return step(
    () => {
      const fd = binding.openSync(dir, O_TMPFILE | O_RDWR, 0o600);
      return fd < 0 ? rawStatSync(dir) : ofFd(fd);
    },
    async () => {
      const fd = await binding.open(dir, O_TMPFILE | O_RDWR, 0o600);
      return fd < 0 ? rawStat(dir) : ofFd(fd);
    },
  );
}

function* stackOf(path: string): Procedure<StackFacts> {
  let st = yield* perform(
    step(
      () => rawStatSync(path),
      () => rawStat(path),
    ),
  );
  if ((st.mode & S_IFMT) === S_IFDIR) st = yield* perform(statFileIn(path));
  const mount = yield* mountOf(path, st.devMajor, st.devMinor);
  const device = yield* perform(
    step(
      () => blockDeviceLimitsSync(path),
      () => blockDeviceLimits(path),
    ),
  );
  return { fsType: mount?.type ?? null, info: toAtomicWriteInfo(st), device };
}

/** The real files: O_DIRECT through AtomicFile. */
export const directIo: PageIoSystem = {
  open: (path, write, create, mode = 0o666) =>
    step(
      () => runSync(openDirect(path, write, create, mode)),
      () => runAsync(openDirect(path, write, create, mode)),
    ),
  remove: (path) =>
    step(
      () => fs.rmSync(path, { force: true }),
      () => fs.promises.rm(path, { force: true }),
    ),
  stack: (path) =>
    step(
      () => runSync(stackOf(path)),
      () => runAsync(stackOf(path)),
    ),
};
