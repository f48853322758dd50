// Every error untorn makes, in one module: fs errors from the kernel and
// argument errors shaped like Node's own, and the coded errors of untorn's
// features (AtomicWriteError for the atomic-write rules, BenchError,
// ProbeError). The CLI's UsageError and Interrupted stay in lib/cli/.
//
// Like Node's own errors, none of them starts its stack trace inside untorn's
// error or validation code: the first frame is the line that called untorn.
import { constants } from 'node:os';
import path from 'node:path';
import { getSystemErrorMap, inspect } from 'node:util';

// This module and lib/validate.ts, compiled (dist/) or as source (lib/, as
// tests and source-mapped traces show them).
const INTERNAL_FILES = new Set(
  [__dirname, path.resolve(__dirname, '..', 'lib')].flatMap((dir) =>
    ['errors', 'validate'].flatMap((name) => ['.js', '.ts'].map((ext) => path.join(dir, name + ext))),
  ),
);

/** The file a stack frame line names, e.g. "    at check (/x/dist/errors.js:1:2)". */
function frameFile(line: string): string | null {
  const m = /\((.*):\d+:\d+\)$/.exec(line) ?? /^\s*at (?:async )?(.*):\d+:\d+$/.exec(line);
  return m ? m[1].replace(/^file:\/\//, '') : null;
}

// At most this many frames of lib/errors.ts and lib/validate.ts stand above the caller's.
const INTERNAL_DEPTH = 16;

/**
 * Takes `err`'s stack again from here, without the frames of this module and
 * lib/validate.ts that come first, keeping Error.stackTraceLimit frames of the
 * caller's: what Node does for its own errors (hideStackFrames).
 */
function hideInternalFrames<E extends Error>(err: E): E {
  const limit = Error.stackTraceLimit;
  if (typeof limit !== 'number' || !(limit > 0) || !Number.isFinite(limit)) return err;
  Error.stackTraceLimit = limit + INTERNAL_DEPTH;
  try {
    Error.captureStackTrace(err, hideInternalFrames);
  } finally {
    Error.stackTraceLimit = limit;
  }
  const lines = (err.stack ?? '').split('\n');
  const first = lines.findIndex((line) => /^\s+at /.test(line));
  if (first < 0) return err;
  let caller = first;
  while (caller < lines.length && INTERNAL_FILES.has(frameFile(lines[caller]) ?? '')) caller++;
  err.stack = [...lines.slice(0, first), ...lines.slice(caller, caller + limit)].join('\n');
  return err;
}

/** An error of untorn's with a code to tell it apart; the message is one line, fit for the CLI. */
export class UntornError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** An error a bench run ends with. */
export class BenchError extends UntornError {
  override name = 'BenchError';
}

export type ProbeErrorCode = 'ERR_PROBE_FILE_TYPE' | 'ERR_PROBE_TRY_DEVICE' | 'ERR_PROBE_TRY_FAILED';

/** A refusal of `probe` itself (not of the kernel). */
export class ProbeError extends UntornError<ProbeErrorCode> {
  override name = 'ProbeError';
}

export type AtomicWriteErrorCode =
  'ERR_ATOMIC_UNSUPPORTED' | 'ERR_ATOMIC_LENGTH' | 'ERR_ATOMIC_ALIGNMENT' | 'ERR_DIRECT_IO_ALIGNMENT';

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
export class AtomicWriteError extends UntornError<AtomicWriteErrorCode> {
  override name = 'AtomicWriteError';
  readonly path: string;
  readonly length: number;
  readonly position: number;
  readonly unitMin: number;
  readonly unitMax: number;
  readonly dioMemAlign: number;
  readonly dioOffsetAlign: number;
  readonly address?: number;

  constructor(code: AtomicWriteErrorCode, message: string, details: AtomicWriteErrorDetails) {
    super(code, message);
    this.path = details.path;
    this.length = details.length;
    this.position = details.position;
    this.unitMin = details.unitMin;
    this.unitMax = details.unitMax;
    this.dioMemAlign = details.dioMemAlign;
    this.dioOffsetAlign = details.dioOffsetAlign;
    if (details.address !== undefined) this.address = details.address;
    hideInternalFrames(this);
  }
}

export type PageFileErrorCode = 'ERR_PAGEFILE_FORMAT' | 'ERR_PAGEFILE_LOCKED' | 'ERR_PAGE_CORRUPT';

/**
 * A page file refused: not a page file (or of another page size), held by
 * another writer, or a page that failed its check. `page` and `reason` are
 * set for ERR_PAGE_CORRUPT.
 */
export class PageFileError extends UntornError<PageFileErrorCode> {
  override name = 'PageFileError';
  readonly path: string;
  readonly page?: number;
  readonly reason?: string;

  constructor(code: PageFileErrorCode, message: string, details: { path: string; page?: number; reason?: string }) {
    super(code, message);
    this.path = details.path;
    if (details.page !== undefined) this.page = details.page;
    if (details.reason !== undefined) this.reason = details.reason;
    hideInternalFrames(this);
  }
}

export type JournalErrorCode = 'ERR_JOURNAL_FORMAT' | 'ERR_JOURNAL_LOCKED' | 'ERR_JOURNAL_BUSY';

/**
 * A journal refused: not a journal (or of another page size), held by
 * another opener, or a blocking call made while an async commit of the same
 * journal is in flight (a blocking call cannot wait for it).
 */
export class JournalError extends UntornError<JournalErrorCode> {
  override name = 'JournalError';
  readonly path: string;

  constructor(code: JournalErrorCode, message: string, details: { path: string }) {
    super(code, message);
    this.path = details.path;
    hideInternalFrames(this);
  }
}

export type PGliteErrorCode = 'ERR_PGLITE_LOCKED';

/** A PGlite data directory refused by untorn/pglite: open already, in this process or another. */
export class PGliteError extends UntornError<PGliteErrorCode> {
  override name = 'PGliteError';
  readonly path: string;

  constructor(code: PGliteErrorCode, message: string, details: { path: string }) {
    super(code, message);
    this.path = details.path;
    hideInternalFrames(this);
  }
}

/** What Node's fs errors carry. */
export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall?: string;
  path?: string;
}

const EOPNOTSUPP = constants.errno.EOPNOTSUPP;

function systemError(errno: number, detail: string): SystemError {
  // libuv calls errno 95 ENOTSUP, "operation not supported on socket"; Linux
  // calls it EOPNOTSUPP, and strerror(95) says "Operation not supported".
  const [code, description] =
    errno === -EOPNOTSUPP
      ? ['EOPNOTSUPP', 'Operation not supported']
      : (getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error']);
  return hideInternalFrames(Object.assign(new Error(`${code}: ${description}, ${detail}`), { errno, code }));
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
  return hideInternalFrames(Object.assign(err, { code }));
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
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`), 'ERR_INVALID_ARG_VALUE');
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
  const err = (
    syncErrno !== undefined
      ? fsError(syncErrno, 'fdatasync', path)
      : fsError(
          results.find((r) => r < 0)!,
          syscall,
          path,
        )
  ) as BatchError;
  err.results = perEntry;
  return err;
}

/** Turns a native result into the value or throws the fs error it stands for. */
export function check(result: number, syscall: string, path?: string): number {
  if (result < 0) throw fsError(result, syscall, path);
  return result;
}
