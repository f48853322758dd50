// The native addon, typed. Every syscall returns (or resolves to) its result:
// >= 0 on success, -errno on failure; lib/errors.ts turns the latter into errors.
import path from 'node:path';
import load from 'node-gyp-build';

/** The raw statx fields untorn reads, as the kernel reported them. */
export interface RawStat {
  mask: number;
  attributes: number;
  blksize: number;
  mode: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
  unitMin: number;
  unitMax: number;
  segmentsMax: number;
  unitMaxOpt: number;
}

interface Binding {
  statx(target: string | number): Promise<RawStat | number>;
  statxSync(target: string | number): RawStat | number;
  open(path: string, flags: number, mode: number): Promise<number>;
  openSync(path: string, flags: number, mode: number): number;
  pwritev2(fd: number, view: ArrayBufferView, position: number, rwflags: number): Promise<number>;
  pwritev2Sync(fd: number, view: ArrayBufferView, position: number, rwflags: number): number;
  preadv2(fd: number, view: ArrayBufferView, position: number): Promise<number>;
  preadv2Sync(fd: number, view: ArrayBufferView, position: number): number;
  fdatasync(fd: number): Promise<number>;
  fdatasyncSync(fd: number): number;
  fsync(fd: number): Promise<number>;
  fsyncSync(fd: number): number;
  close(fd: number): Promise<number>;
  closeSync(fd: number): number;
  bufferAddress(memory: ArrayBuffer | ArrayBufferView): number;
  crc32c(view: ArrayBufferView, seed: number): number;
  /** "sse4.2", "armv8-crc" or "table". */
  crc32cImplementation: string;
  /** F_OFD_SETLK on the whole file: 0, or -EAGAIN when another open holds a conflicting lock. */
  /** kind 0 releases the lock, 1 takes it shared, 2 exclusive. */
  lockFile(fd: number, kind: 0 | 1 | 2): number;
  // The io_uring engine of the calling thread (lib/engine.ts).
  ringOpen(): number;
  ringFlags(): number;
  ringPeak(): number;
  poolPeak(): number;
  ringWrite(fd: number, view: ArrayBufferView, position: number, rwflags: number): Promise<number>;
  ringRead(fd: number, view: ArrayBufferView, position: number): Promise<number>;
  ringFsync(fd: number, datasync: boolean): Promise<number>;
  ringWriteBatch(
    fd: number,
    views: ArrayBufferView[],
    positions: number[],
    rwflags: number,
    datasync: boolean,
  ): Promise<number[]>;
  ringReadBatch(fd: number, views: ArrayBufferView[], positions: number[]): Promise<number[]>;
  RWF_ATOMIC: number;
  RWF_DSYNC: number;
  STATX_WRITE_ATOMIC: number;
  STATX_ATTR_WRITE_ATOMIC: number;
}

export const binding = load(path.join(__dirname, '..')) as Binding;
