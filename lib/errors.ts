// Error objects shaped like Node's own: fs errors from the kernel, argument
// errors with Node's codes, and AtomicWriteError for the atomic-write rules.
import { constants } from 'node:os';
import { getSystemErrorMap, inspect } from 'node:util';

export type AtomicWriteErrorCode =
  | 'ERR_ATOMIC_UNSUPPORTED'
  | 'ERR_ATOMIC_LENGTH'
  | 'ERR_ATOMIC_ALIGNMENT'
  | 'ERR_DIRECT_IO_ALIGNMENT';

/** The numbers that decided a refusal, carried on the error. */
export interface AtomicWriteErrorDetails {
  path: string;
  length: number;
  position: number;
  unitMin: number;
  unitMax: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
  /** The buffer's address, when the buffer's alignment was the reason. */
  address?: number;
}

/** A write refused by untorn before any system call: nothing was written. */
export class AtomicWriteError extends Error {
  readonly code: AtomicWriteErrorCode;
  readonly path: string;
  readonly length: number;
  readonly position: number;
  readonly unitMin: number;
  readonly unitMax: number;
  readonly dioMemAlign: number;
  readonly dioOffsetAlign: number;
  readonly address?: number;

  constructor(code: AtomicWriteErrorCode, message: string, details: AtomicWriteErrorDetails) {
    super(message);
    this.name = 'AtomicWriteError';
    this.code = code;
    this.path = details.path;
    this.length = details.length;
    this.position = details.position;
    this.unitMin = details.unitMin;
    this.unitMax = details.unitMax;
    this.dioMemAlign = details.dioMemAlign;
    this.dioOffsetAlign = details.dioOffsetAlign;
    if (details.address !== undefined) this.address = details.address;
  }
}

export type PageFileErrorCode = 'ERR_PAGEFILE_FORMAT' | 'ERR_PAGEFILE_LOCKED' | 'ERR_PAGE_CORRUPT';

/**
 * A page file refused: not a page file (or of another page size), held by
 * another writer, or a page that failed its check. `page` and `reason` are
 * set for ERR_PAGE_CORRUPT.
 */
export class PageFileError extends Error {
  readonly code: PageFileErrorCode;
  readonly path: string;
  readonly page?: number;
  readonly reason?: string;

  constructor(code: PageFileErrorCode, message: string, details: { path: string; page?: number; reason?: string }) {
    super(message);
    this.name = 'PageFileError';
    this.code = code;
    this.path = details.path;
    if (details.page !== undefined) this.page = details.page;
    if (details.reason !== undefined) this.reason = details.reason;
  }
}

/** What Node's fs errors carry. */
export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall?: string;
  path?: string;
}

function systemError(errno: number, detail: string): SystemError {
  const [name, description] = getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error'];
  // libuv names errno 95 ENOTSUP; Linux (and API.md) call it EOPNOTSUPP.
  const code = name === 'ENOTSUP' ? 'EOPNOTSUPP' : name;
  return Object.assign(new Error(`${code}: ${description}, ${detail}`), { errno, code });
}

/** The error for a failed system call, as Node's fs makes it: `ENOENT: no such file or directory, open '/x'`. */
export function fsError(errno: number, syscall: string, path?: string): SystemError {
  const err = systemError(errno, path === undefined ? syscall : `${syscall} '${path}'`);
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

/** I/O on a closed file (or a write to one opened read-only): refused before any system call, so no `syscall`. */
export function closedError(path: string, state = 'is closed'): SystemError {
  const err = systemError(-constants.errno.EBADF, `'${path}' ${state}`);
  err.path = path;
  return err;
}

function received(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`;
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name ? `Received an instance of ${name}` : `Received ${inspect(value, { depth: -1 })}`;
  }
  return `Received type ${typeof value} (${inspect(value).slice(0, 28)})`;
}

type CodedError<E extends Error> = E & { code: string };

function coded<E extends Error>(err: E, code: string): CodedError<E> {
  return Object.assign(err, { code });
}

export function invalidArgType(name: string, expected: string, value: unknown): CodedError<TypeError> {
  return coded(new TypeError(`The "${name}" argument must be ${expected}. ${received(value)}`), 'ERR_INVALID_ARG_TYPE');
}

export function outOfRange(name: string, range: string, value: unknown): CodedError<RangeError> {
  return coded(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`),
    'ERR_OUT_OF_RANGE',
  );
}

export function invalidArgValue(name: string, value: unknown, reason: string): CodedError<TypeError> {
  return coded(
    new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** A batch in which some operation failed: the first error, carrying each entry's byte count or error. */
export interface BatchError extends SystemError {
  results: (number | SystemError)[];
}

/**
 * The error of a failed batch: the first failed entry's (or, when `syncErrno`
 * is given, the trailing fdatasync's), with `results` per entry.
 */
export function batchError(results: number[], syscall: string, path: string, syncErrno?: number): BatchError {
  const perEntry = results.map((r) => (r < 0 ? fsError(r, syscall, path) : r));
  // A separate object from the entries' own errors, so `results` holds no cycle.
  const err = (syncErrno !== undefined
    ? fsError(syncErrno, 'fdatasync', path)
    : fsError(results.find((r) => r < 0)!, syscall, path)) as BatchError;
  err.results = perEntry;
  return err;
}

/** Turns a native result into the value or throws the fs error it stands for. */
export function check(result: number, syscall: string, path?: string): number {
  if (result < 0) throw fsError(result, syscall, path);
  return result;
}
