// Every rule untorn enforces before a system call, in one place. These are
// pure functions of their arguments: they throw the typed error or return.
import { constants } from 'node:fs';
import { AtomicWriteError, invalidArgType, invalidArgValue, outOfRange } from './errors';
import type { AtomicWriteInfo } from './info';

const MAX_POSITION = Number.MAX_SAFE_INTEGER;
const MAX_FD = 2 ** 31 - 1;
export const MAX_ALIGNMENT = 1024 * 1024;

export function isPowerOfTwo(n: number): boolean {
  // Bitwise tricks stop at 2^31; rounding the logarithm and checking back does not.
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Whether `n` is an integer within [min, max]. */
export function isIntegerIn(n: number, min: number, max: number): boolean {
  return Number.isInteger(n) && n >= min && n <= max;
}

/** Whether `value` is one of `choices`. */
export function isOneOf<T>(value: unknown, choices: readonly T[]): value is T {
  return (choices as readonly unknown[]).includes(value);
}

/** A number that is an integer within [min, max]. */
export function validateInteger(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!isIntegerIn(value, min, max)) throw outOfRange(name, `an integer >= ${min} && <= ${max}`, value);
}

/** A number that is a power of two within [min, max]. */
export function validatePowerOfTwo(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!isPowerOfTwo(value) || value < min || value > max)
    throw outOfRange(name, `a power of two >= ${min} && <= ${max}`, value);
}

/** One of a fixed set of values (words, mostly). */
export function validateOneOf<T>(name: string, value: unknown, choices: readonly T[]): asserts value is T {
  if (!isOneOf(value, choices)) throw invalidArgValue(name, value, `must be one of ${choices.join(', ')}`);
}

/** The page size `untorn bench` and `untorn probe` assume: a database page of 16 KiB (InnoDB's). */
export const DEFAULT_PAGE_SIZE = 16384;

/** The page sizes `untorn bench` and `untorn probe` take: powers of two from 512 bytes to 64 MiB. */
export const PAGE_SIZE_RANGE = [512, 64 * 1024 * 1024] as const;

/** A page size option: a power of two within PAGE_SIZE_RANGE. */
export function validatePageSize(value: unknown, name = 'pageSize'): asserts value is number {
  validatePowerOfTwo(name, value, ...PAGE_SIZE_RANGE);
}

export function validateView(value: unknown, name = 'buffer'): asserts value is ArrayBufferView {
  if (!ArrayBuffer.isView(value)) throw invalidArgType(name, 'an instance of Buffer, TypedArray, or DataView', value);
}

export function validatePosition(value: unknown, name = 'position'): asserts value is number {
  validateInteger(name, value, 0, MAX_POSITION);
}

function validateOptionsObject(options: unknown): void {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw invalidArgType('options', 'of type object', options);
  }
}

function booleanOption(options: Record<string, unknown> | undefined, key: string): boolean {
  const value = options?.[key];
  if (value !== undefined && typeof value !== 'boolean')
    throw invalidArgType(`options.${key}`, 'of type boolean', value);
  return value === true;
}

/** `{ dsync?: boolean }` or undefined; returns whether RWF_DSYNC is asked for. */
export function validateWriteOptions(options: unknown): boolean {
  validateOptionsObject(options);
  return booleanOption(options as Record<string, unknown> | undefined, 'dsync');
}

/** `{ dsync?: boolean; datasync?: boolean }` or undefined, for a batch of writes. */
export function validateBatchOptions(options: unknown): { dsync: boolean; datasync: boolean } {
  validateOptionsObject(options);
  const o = options as Record<string, unknown> | undefined;
  return { dsync: booleanOption(o, 'dsync'), datasync: booleanOption(o, 'datasync') };
}

/** One write or read of a batch: the whole view, at `position`. */
export interface BatchEntry {
  buffer: ArrayBufferView;
  position: number;
}

/**
 * The entries of a batch (`name` is 'writes' or 'reads'), each checked as a
 * single call's arguments would be, and no two overlapping: two operations
 * in flight on one range race.
 */
export function validateBatch(entries: unknown, name: string): BatchEntry[] {
  if (
    entries === null ||
    typeof entries !== 'object' ||
    typeof (entries as Iterable<unknown>)[Symbol.iterator] !== 'function'
  ) {
    throw invalidArgType(name, 'an iterable of { buffer, position } objects', entries);
  }
  const list: BatchEntry[] = [];
  for (const entry of entries as Iterable<unknown>) {
    const at = `${name}[${list.length}]`;
    if (entry === null || typeof entry !== 'object') throw invalidArgType(at, 'of type object', entry);
    const { buffer, position } = entry as { buffer?: unknown; position?: unknown };
    validateView(buffer, `${at}.buffer`);
    validatePosition(position, `${at}.position`);
    list.push({ buffer, position });
  }
  const order = list.map((_, i) => i).sort((a, b) => list[a].position - list[b].position);
  for (let k = 1; k < order.length; k++) {
    const prev = list[order[k - 1]];
    const next = list[order[k]];
    if (prev.position + prev.buffer.byteLength > next.position) {
      throw invalidArgValue(
        `${name}[${order[k]}].position`,
        next.position,
        `overlaps ${name}[${order[k - 1]}] (bytes ${prev.position} to ${prev.position + prev.buffer.byteLength}): entries of one batch must not overlap`,
      );
    }
  }
  return list;
}

/** crc32c's arguments: any view, and a seed that is a CRC (an unsigned 32-bit integer). */
export function validateCrc32cArgs(data: unknown, seed: unknown): void {
  validateView(data, 'data');
  validateInteger('seed', seed, 0, 0xffffffff);
}

export function validatePath(value: unknown, name = 'path'): asserts value is string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  // The kernel would read only up to the NUL: another file than the one named.
  if (value.includes('\u0000')) throw invalidArgValue(name, value, 'must be a string without null bytes');
}

/** A path, or an open file descriptor. */
export function validateTarget(value: unknown): asserts value is string | number {
  if (typeof value === 'number') {
    validateInteger('fd', value, 0, MAX_FD);
    return;
  }
  if (typeof value !== 'string')
    throw invalidArgType('target', 'of type string (a path) or number (a file descriptor)', value);
  validatePath(value, 'target');
}

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC, O_EXCL, O_SYNC, O_APPEND } = constants;

const OPEN_FLAGS: Record<string, number> = {
  r: O_RDONLY,
  'r+': O_RDWR,
  'rs+': O_RDWR | O_SYNC,
  'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY,
  wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR,
  'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
};

const APPEND_REFUSAL =
  'is an append mode, which untorn refuses: an appended position cannot be checked for natural alignment';

/** Node's flag strings or a number of fs.constants; O_DIRECT is added later, by the native open. */
export function parseOpenFlags(flags: unknown): number {
  if (flags === undefined) return O_RDWR;
  if (typeof flags === 'string') {
    if (/^(a|ax|xa|as|sa)\+?$/.test(flags)) throw invalidArgValue('flags', flags, APPEND_REFUSAL);
    const value = OPEN_FLAGS[flags];
    if (value === undefined) throw invalidArgValue('flags', flags, 'is invalid');
    return value;
  }
  if (typeof flags !== 'number') throw invalidArgType('flags', 'of type string or number', flags);
  validateInteger('flags', flags, 0, MAX_FD);
  if (flags & O_APPEND) throw invalidArgValue('flags', flags, `includes O_APPEND, which ${APPEND_REFUSAL.slice(3)}`);
  return flags;
}

/** A file mode as a number or an octal string, as fs.open takes it. */
export function parseMode(mode: unknown): number {
  if (mode === undefined) return 0o666;
  if (typeof mode === 'string') {
    if (!/^[0-7]+$/.test(mode))
      throw invalidArgValue('mode', mode, 'must be a 32-bit unsigned integer or an octal string');
    mode = parseInt(mode, 8);
  }
  if (typeof mode !== 'number') throw invalidArgType('mode', 'of type number', mode);
  if (!isIntegerIn(mode, 0, 0o7777)) throw outOfRange('mode', 'an integer >= 0 && <= 4095 (0o7777)', mode);
  return mode;
}

export function validateAllocation(size: unknown, alignment: unknown, maxLength: number): void {
  if (typeof size !== 'number') throw invalidArgType('size', 'of type number', size);
  if (!Number.isSafeInteger(size) || size < 1) throw outOfRange('size', 'a positive safe integer', size);
  validatePowerOfTwo('alignment', alignment, 1, MAX_ALIGNMENT);
  if (size > maxLength - alignment + 1)
    throw outOfRange('size', `<= ${maxLength - alignment + 1} with alignment ${alignment}`, size);
}

/** What a rule names in its message: "atomic write", "write" or "read". */
export type IoKind = 'atomic write' | 'write' | 'read';

// The position is named only where the rule looks at it.
function subject(kind: IoKind, length: number, position: number | undefined, path: string): string {
  const at = position === undefined ? '' : ` at position ${position}`;
  return `${kind} of ${length} bytes${at} ${kind === 'read' ? 'from' : 'to'} ${path}`;
}

function refuse(
  code: AtomicWriteError['code'],
  rule: string,
  info: AtomicWriteInfo,
  kind: IoKind,
  length: number,
  position: number,
  path: string,
  address?: number,
  named = true,
): AtomicWriteError {
  return new AtomicWriteError(code, `${subject(kind, length, named ? position : undefined, path)}: ${rule}`, {
    path,
    length,
    position,
    address,
    unitMin: info.unitMin,
    unitMax: info.unitMax,
    dioMemAlign: info.dioMemAlign,
    dioOffsetAlign: info.dioOffsetAlign,
  });
}

/** O_DIRECT's rules, where the filesystem told them (0 = it did not). */
export function checkDirectIo(
  info: AtomicWriteInfo,
  kind: IoKind,
  length: number,
  position: number,
  address: number,
  path: string,
): void {
  const { dioMemAlign: mem, dioOffsetAlign: off } = info;
  const fail = (rule: string, addr?: number) =>
    refuse('ERR_DIRECT_IO_ALIGNMENT', rule, info, kind, length, position, path, addr);
  if (mem > 0 && address % mem !== 0) {
    throw fail(
      `buffer address 0x${address.toString(16)} must be a multiple of dioMemAlign ${mem} (allocAligned() gives such buffers)`,
      address,
    );
  }
  if (off > 0 && length % off !== 0) throw fail(`length must be a multiple of dioOffsetAlign ${off}`);
  if (off > 0 && position % off !== 0) throw fail(`position must be a multiple of dioOffsetAlign ${off}`);
}

/** The kernel's RWF_ATOMIC rules, in the order the issue fixes, then O_DIRECT's. */
export function checkAtomicWrite(
  info: AtomicWriteInfo,
  length: number,
  position: number,
  address: number,
  path: string,
): void {
  const kind = 'atomic write';
  if (!info.supported) {
    throw refuse(
      'ERR_ATOMIC_UNSUPPORTED',
      'the file cannot be written atomically here (statx reports no STATX_ATTR_WRITE_ATOMIC for it)',
      info,
      kind,
      length,
      position,
      path,
      undefined,
      false,
    );
  }
  if (!isPowerOfTwo(length) || length < info.unitMin || length > info.unitMax) {
    throw refuse(
      'ERR_ATOMIC_LENGTH',
      `length must be a power of two between ${info.unitMin} and ${info.unitMax}`,
      info,
      kind,
      length,
      position,
      path,
      undefined,
      false,
    );
  }
  if (position % length !== 0) {
    throw refuse(
      'ERR_ATOMIC_ALIGNMENT',
      `position must be a multiple of the length (${length})`,
      info,
      kind,
      length,
      position,
      path,
    );
  }
  checkDirectIo(info, kind, length, position, address, path);
}

// ---------------------------------------------------------------------------
// page files

export const PAGE_FLAGS = ['r', 'r+', 'w+', 'wx+'] as const;
export const PAGE_STRATEGIES = ['auto', 'atomic', 'doublewrite', 'unprotected'] as const;
export const MAX_BATCH_PAGES = 1024;
/** A page file's page sizes: powers of two in this range. */
export const PAGE_FILE_PAGE_SIZES = [4096, 65536] as const;

export interface PageFileSettings {
  pageSize: number;
  /** undefined: 'r+' when the file exists, else it is created. */
  flags: (typeof PAGE_FLAGS)[number] | undefined;
  strategy: (typeof PAGE_STRATEGIES)[number];
  doublewritePath: string;
  batchPages: number;
}

/** openPageFile's arguments, with the defaults filled in. */
export function validatePageFileOptions(path: unknown, options: unknown): PageFileSettings {
  validatePath(path);
  validateOptionsObject(options);
  const o = (options ?? {}) as Record<string, unknown>;
  const pageSize = o.pageSize ?? DEFAULT_PAGE_SIZE;
  validatePowerOfTwo('options.pageSize', pageSize, ...PAGE_FILE_PAGE_SIZES);
  const flags = o.flags;
  if (flags !== undefined) validateOneOf('options.flags', flags, PAGE_FLAGS);
  const strategy = o.strategy ?? 'auto';
  validateOneOf('options.strategy', strategy, PAGE_STRATEGIES);
  const doublewritePath = o.doublewritePath ?? `${path}.dblwr`;
  validatePath(doublewritePath, 'options.doublewritePath');
  if (doublewritePath === path)
    throw invalidArgValue('options.doublewritePath', doublewritePath, 'must not be the page file itself');
  const batchPages = o.batchPages ?? 64;
  validateInteger('options.batchPages', batchPages, 1, MAX_BATCH_PAGES);
  return { pageSize, flags, strategy, doublewritePath, batchPages };
}

/** The highest page number a page file of this page size can address: its byte offset stays a safe integer. */
export function maxPageNumber(pageSize: number): number {
  return Math.floor(MAX_POSITION / pageSize) - 2;
}

/** A page number: an integer from 0 to maxPageNumber(pageSize). */
export function validatePageNumber(value: unknown, pageSize: number, name = 'page'): asserts value is number {
  validateInteger(name, value, 0, maxPageNumber(pageSize));
}

/** A view of exactly one page's payload. */
export function validatePayload(value: unknown, payloadSize: number, name: string): asserts value is ArrayBufferView {
  validateView(value, name);
  if (value.byteLength !== payloadSize) {
    throw invalidArgValue(
      name,
      value,
      `must be ${payloadSize} bytes long (the page file's payloadSize), not ${value.byteLength}`,
    );
  }
}

/** One page write of a writePages call. */
export interface PageWriteEntry {
  page: number;
  data: ArrayBufferView;
}

/** writePages' argument: payload-sized views, no page twice. */
export function validatePageWrites(writes: unknown, pageSize: number, payloadSize: number): PageWriteEntry[] {
  if (
    writes === null ||
    typeof writes !== 'object' ||
    typeof (writes as Iterable<unknown>)[Symbol.iterator] !== 'function'
  ) {
    throw invalidArgType('writes', 'an iterable of { page, data } objects', writes);
  }
  const list: PageWriteEntry[] = [];
  const seen = new Map<number, number>();
  for (const entry of writes as Iterable<unknown>) {
    const at = `writes[${list.length}]`;
    if (entry === null || typeof entry !== 'object') throw invalidArgType(at, 'of type object', entry);
    const { page, data } = entry as { page?: unknown; data?: unknown };
    validatePageNumber(page, pageSize, `${at}.page`);
    validatePayload(data, payloadSize, `${at}.data`);
    const earlier = seen.get(page);
    if (earlier !== undefined)
      throw invalidArgValue(`${at}.page`, page, `repeats writes[${earlier}].page: one call writes a page once`);
    seen.set(page, list.length);
    list.push({ page, data });
  }
  return list;
}

// ---------------------------------------------------------------------------
// journals

export const JOURNAL_STRATEGIES = ['auto', 'atomic', 'doublewrite'] as const;
const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

export interface JournalSettings {
  pageSize: number;
  strategy: (typeof JOURNAL_STRATEGIES)[number];
  /** Where the guarded files live; undefined: the journal's own directory. */
  directory: string | undefined;
  maxPendingBytes: number;
}

/** openJournal's arguments, with the defaults filled in. */
export function validateJournalOptions(path: unknown, options: unknown): JournalSettings {
  validatePath(path);
  validateOptionsObject(options);
  const o = (options ?? {}) as Record<string, unknown>;
  const pageSize = o.pageSize ?? DEFAULT_PAGE_SIZE;
  validatePowerOfTwo('options.pageSize', pageSize, ...PAGE_FILE_PAGE_SIZES);
  const strategy = o.strategy ?? 'auto';
  validateOneOf('options.strategy', strategy, JOURNAL_STRATEGIES);
  const directory = o.directory;
  if (directory !== undefined) validatePath(directory, 'options.directory');
  const maxPendingBytes = o.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
  validateInteger('options.maxPendingBytes', maxPendingBytes, pageSize, MAX_POSITION);
  return { pageSize, strategy, directory, maxPendingBytes };
}

/** Journal.openFile's flags and mode. */
export function validateJournaledOpen(
  path: unknown,
  flags: unknown,
  mode: unknown,
): { flags: (typeof PAGE_FLAGS)[number]; mode: number } {
  validatePath(path);
  const f = flags ?? 'r+';
  validateOneOf('flags', f, PAGE_FLAGS);
  return { flags: f, mode: mode === undefined ? 0o666 : parseMode(mode) };
}

/** A journaled page write: pageSize bytes at a multiple of pageSize. */
export function validateJournaledWrite(
  buffer: unknown,
  position: unknown,
  pageSize: number,
  path: string,
): asserts buffer is ArrayBufferView {
  validateView(buffer);
  validatePosition(position);
  if (buffer.byteLength !== pageSize)
    throw invalidArgValue(
      'buffer',
      buffer,
      `must be ${pageSize} bytes long (the journal's page size), not ${buffer.byteLength}`,
    );
  if (position % pageSize !== 0) {
    throw new AtomicWriteError(
      'ERR_ATOMIC_ALIGNMENT',
      `page write of ${pageSize} bytes at position ${position} to ${path}: position must be a multiple of the page size (${pageSize})`,
      { path, length: pageSize, position, unitMin: pageSize, unitMax: pageSize, dioMemAlign: 0, dioOffsetAlign: 0 },
    );
  }
}

/** A read of any range: a view and a position. */
export function validateRead(buffer: unknown, position: unknown): asserts buffer is ArrayBufferView {
  validateView(buffer);
  validatePosition(position);
}

/** A file length for truncate. */
export function validateLength(value: unknown): asserts value is number {
  validateInteger('length', value, 0, MAX_POSITION);
}
