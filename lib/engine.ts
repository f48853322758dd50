// The engine under every async call: this thread's io_uring where the kernel
// lets one be made, else libuv's thread pool. Chosen once per JS thread (each
// worker_threads thread loads this module anew), on the first async call.
// Every function resolves to the syscall's result: >= 0, or -errno.
import { constants } from 'node:os';
import { binding } from './binding';
import { fsError, invalidArgValue } from './errors';

/** What async calls use on this thread, and why (API: `ioEngine()`). */
export interface IoEngine {
  name: 'io_uring' | 'threadpool';
  reason: string;
}

interface Engine extends IoEngine {
  write(fd: number, view: ArrayBufferView, position: number, rwflags: number): Promise<number>;
  read(fd: number, view: ArrayBufferView, position: number): Promise<number>;
  fsync(fd: number, datasync: boolean): Promise<number>;
  /** Per-entry results, then the fdatasync's where one was issued (only after every write succeeded). */
  writeBatch(
    fd: number,
    views: ArrayBufferView[],
    positions: number[],
    rwflags: number,
    datasync: boolean,
  ): Promise<number[]>;
  readBatch(fd: number, views: ArrayBufferView[], positions: number[]): Promise<number[]>;
}

const ringEngine = (reason: string): Engine => ({
  name: 'io_uring',
  reason,
  write: binding.ringWrite,
  read: binding.ringRead,
  fsync: binding.ringFsync,
  writeBatch: binding.ringWriteBatch,
  readBatch: binding.ringReadBatch,
});

const poolEngine = (reason: string): Engine => ({
  name: 'threadpool',
  reason,
  write: binding.pwritev2,
  read: binding.preadv2,
  fsync: (fd, datasync) => (datasync ? binding.fdatasync(fd) : binding.fsync(fd)),
  async writeBatch(fd, views, positions, rwflags, datasync) {
    const results = await Promise.all(views.map((view, i) => binding.pwritev2(fd, view, positions[i], rwflags)));
    if (datasync && results.every((r) => r >= 0)) results.push(await binding.fdatasync(fd));
    return results;
  },
  readBatch: (fd, views, positions) => Promise.all(views.map((view, i) => binding.preadv2(fd, view, positions[i]))),
});

// io_uring_setup flags, for the reason text (include/uapi/linux/io_uring.h).
const SETUP_FLAGS: [number, string][] = [
  [1 << 7, 'SUBMIT_ALL'],
  [1 << 12, 'SINGLE_ISSUER'],
  [1 << 13, 'DEFER_TASKRUN'],
];

/** The thread pool size libuv takes from the environment when the pool first starts (1..1024, default 4). */
export function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Why no ring, for each errno io_uring_setup gives where it refuses one. */
function refusal(errno: number): string {
  const e = constants.errno;
  if (errno === -e.EPERM)
    return "io_uring is not permitted here (a seccomp filter such as Docker's default, or kernel.io_uring_disabled)";
  if (errno === -e.ENOSYS) return 'this kernel has no io_uring';
  if (errno === -e.ENOMEM) return 'the kernel had no memory for a ring (RLIMIT_MEMLOCK?)';
  if (errno === -e.EINVAL) return "this kernel's io_uring lacks what untorn needs (IORING_OP_WRITE, Linux 5.6)";
  return 'the ring could not be set up';
}

function choose(): Engine {
  const forced = process.env.UNTORN_IO_ENGINE;
  if (forced !== undefined && forced !== '' && forced !== 'io_uring' && forced !== 'threadpool') {
    throw invalidArgValue('UNTORN_IO_ENGINE', forced, "must be 'io_uring' or 'threadpool'");
  }
  const pool = (why: string) => poolEngine(`${why}: async calls use libuv's thread pool (${threadPoolSize()} threads)`);
  if (forced === 'threadpool') return pool('UNTORN_IO_ENGINE=threadpool');
  // Bun and Deno run Node-API addons without a libuv loop to watch the ring's eventfd.
  const runtime = 'Bun' in globalThis ? 'Bun' : 'Deno' in globalThis ? 'Deno' : null;
  if (runtime !== null) {
    if (forced === 'io_uring')
      throw invalidArgValue(
        'UNTORN_IO_ENGINE',
        forced,
        `cannot be used under ${runtime}, which has no libuv event loop`,
      );
    return poolEngine(
      `${runtime} has no libuv event loop to reap io_uring completions on: async calls use ${runtime}'s worker threads for Node-API async work`,
    );
  }
  const errno = binding.ringOpen();
  if (errno < 0) {
    const err = fsError(errno, 'io_uring_setup');
    if (forced === 'io_uring') {
      err.message += ' (UNTORN_IO_ENGINE=io_uring asks for a ring and does not fall back)';
      throw err;
    }
    return pool(`io_uring_setup failed with ${err.code}: ${refusal(errno)}`);
  }
  const flags = binding.ringFlags();
  const names = SETUP_FLAGS.filter(([bit]) => flags & bit).map(([, name]) => name);
  return ringEngine(`io_uring ring of this thread, setup flags ${names.length > 0 ? names.join('|') : 'none'}`);
}

let chosen: Engine | undefined;

/** This thread's engine, chosen on first use; throws where UNTORN_IO_ENGINE cannot be honoured. */
export function engine(): Engine {
  chosen ??= choose();
  return chosen;
}

/** What async calls use on this thread, and why. */
export function ioEngine(): IoEngine {
  const { name, reason } = engine();
  return { name, reason };
}

/**
 * The most operations that were in flight at once since the last call: on
 * this thread's ring, or running on the thread pool's threads (the process's).
 */
export function takeInFlightPeak(): number {
  return engine().name === 'io_uring' ? binding.ringPeak() : binding.poolPeak();
}
