// The I/O a page file does, as a small interface: the page file is written
// against it, the real implementation is an AtomicFile (O_DIRECT, io_uring
// batches), and tests put a crash-simulating one in its place.
import fs, { promises as fsp } from 'node:fs';
import { constants } from 'node:os';
import nodePath from 'node:path';
import { promisify } from 'node:util';
import { open, type AtomicFile } from '../atomic-file';
import { binding } from '../binding';
import { blockDeviceLimits, rawStat, type BlockDeviceLimits } from '../capabilities';
import { check } from '../errors';
import type { AtomicWriteInfo } from '../info';
import { findMount } from '../stack';
import type { BatchEntry } from '../validate';

/** One open file under a page file. */
export interface PageIo {
  readonly path: string;
  /** statx of the open file. */
  readonly info: AtomicWriteInfo;
  size(): Promise<number>;
  /** A whole-file lock that never waits; false when another open holds a conflicting one. */
  lock(exclusive: boolean): boolean;
  truncate(size: number): Promise<void>;
  /** Reads every entry's whole view (zeros stay where the file ends); the bytes read per entry. */
  read(entries: BatchEntry[]): Promise<number[]>;
  /** Writes all entries together, each with RWF_ATOMIC where `atomic`, then one fdatasync where `datasync`. */
  write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Promise<void>;
  close(): Promise<void>;
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
  /** Rejects with a Node-shaped error (ENOENT, EEXIST, ...). */
  open(path: string, write: boolean, create: Create): Promise<PageIo>;
  remove(path: string): Promise<void>;
  stack(io: PageIo): Promise<StackFacts>;
}

const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL } = fs.constants;
const CREATE_FLAGS: Record<Create, number> = { no: 0, yes: O_CREAT, exclusive: O_CREAT | O_EXCL };

class DirectIo implements PageIo {
  constructor(private readonly file: AtomicFile) {}

  get path(): string {
    return this.file.path;
  }

  get info(): AtomicWriteInfo {
    return this.file.info;
  }

  async size(): Promise<number> {
    return (await fstat(this.file.fd)).size;
  }

  lock(exclusive: boolean): boolean {
    const r = binding.lockFile(this.file.fd, exclusive ? 2 : 1);
    if (r === -constants.errno.EAGAIN) return false;
    check(r, 'fcntl', this.path);
    return true;
  }

  truncate(size: number): Promise<void> {
    return ftruncate(this.file.fd, size);
  }

  read(entries: BatchEntry[]): Promise<number[]> {
    return this.file.readBatch(entries);
  }

  async write(entries: BatchEntry[], atomic: boolean, datasync: boolean): Promise<void> {
    const counts = await (atomic
      ? this.file.writeAtomicBatch(entries, { datasync })
      : this.file.writeBatch(entries, { datasync }));
    // A write that runs out of space mid-way comes back short, not failed: write the rest, which
    // either succeeds or fails with the errno itself (ENOSPC). An atomic write is never short.
    const rest = entries.flatMap(({ buffer, position }, i) =>
      counts[i] < buffer.byteLength
        ? [
            {
              buffer: new Uint8Array(buffer.buffer, buffer.byteOffset + counts[i], buffer.byteLength - counts[i]),
              position: position + counts[i],
            },
          ]
        : [],
    );
    if (rest.length > 0) await this.write(rest, false, datasync);
  }

  close(): Promise<void> {
    // Released first: io_uring requests can hold the open file a moment past
    // close(2), and a lock still held then would refuse the next open.
    if (this.file.fd >= 0) binding.lockFile(this.file.fd, 0);
    return this.file.close();
  }
}

/** The real files: O_DIRECT through AtomicFile. */
export const directIo: PageIoSystem = {
  async open(path, write, create) {
    const file = await open(path, (write ? O_RDWR : O_RDONLY) | CREATE_FLAGS[create], 0o666);
    if (create !== 'no') {
      // A new file's name is durable only once its directory is synced.
      try {
        const dir = await fsp.open(nodePath.dirname(path), 'r');
        await dir.sync().finally(() => dir.close());
      } catch (err) {
        await file.close();
        throw err;
      }
    }
    return new DirectIo(file);
  },
  async remove(path) {
    await fsp.rm(path, { force: true });
  },
  async stack(io) {
    const st = await rawStat(io.path);
    const mount = await findMount(io.path, st.devMajor, st.devMinor);
    return { fsType: mount?.type ?? null, info: io.info, device: await blockDeviceLimits(io.path) };
  },
};
