// The on-disk format shared by untorn's files, version 2 (docs/page-file.md and
// docs/journal.md describe it byte by byte): the header page every file of
// untorn's starts with, and the doublewrite batch that page files' doublewrite
// files and journals write. Pure functions over buffers; integers little-endian.
import { binding } from '../binding';

/** CRC32C without argument checks, for untorn's own buffers (continues from `seed`). */
export function crcOf(view: Uint8Array, seed = 0): number {
  return binding.crc32c(view, seed);
}
const crc32c = crcOf;

export const FORMAT_VERSION = 2;

export type FileKind = 'data' | 'doublewrite' | 'journal';
const KIND_CODE: Record<FileKind, number> = { data: 1, doublewrite: 2, journal: 3 };

const HEADER_MAGIC = Buffer.from('UNTORNPF');
const BATCH_MAGIC = Buffer.from('UNTORNBT');
const HEADER_BYTES = 64;
const CRC_AT = 60;
/** A page file's trailer size; other kinds record 0. */
const TRAILER_AT = 20;

function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

let zeros = Buffer.alloc(0);

/** Whether every byte is zero (memcmp against a zero buffer kept for the purpose). */
export function isZero(b: Uint8Array): boolean {
  if (zeros.length < b.length) zeros = Buffer.alloc(b.length);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(zeros.subarray(0, b.length));
}

/** What a file's header says. */
export interface FileHeader {
  kind: FileKind;
  pageSize: number;
  /** 16 random bytes: a page file's data and doublewrite files share theirs; a journal has its own. */
  fileId: Buffer;
  /** Bytes of each page untorn owns (a page file's trailer); 0 for a journal. */
  trailerSize: number;
}

/** Where the second header copy sits: another 512-byte sector of the header page. */
function secondCopyAt(pageSize: number): number {
  return pageSize / 2;
}

/** The header page: two copies of the header, each with its own CRC32C. */
export function encodeHeader(target: Buffer, header: FileHeader): void {
  target.fill(0);
  const copy = target.subarray(0, HEADER_BYTES);
  HEADER_MAGIC.copy(copy, 0);
  const v = dataView(copy);
  v.setUint32(8, FORMAT_VERSION, true);
  v.setUint32(12, KIND_CODE[header.kind], true);
  v.setUint32(16, header.pageSize, true);
  v.setUint32(TRAILER_AT, header.trailerSize, true);
  header.fileId.copy(copy, 24);
  v.setUint32(CRC_AT, crc32c(copy.subarray(0, CRC_AT)), true);
  copy.copy(target, secondCopyAt(header.pageSize));
}

export type HeaderReading =
  { state: 'ok'; header: FileHeader } | { state: 'empty' } | { state: 'invalid'; why: string };

function decodeCopy(copy: Buffer): HeaderReading {
  if (isZero(copy)) return { state: 'empty' };
  if (!copy.subarray(0, 8).equals(HEADER_MAGIC)) return { state: 'invalid', why: 'no untorn file magic' };
  const v = dataView(copy);
  if (v.getUint32(CRC_AT, true) !== crc32c(copy.subarray(0, CRC_AT)))
    return { state: 'invalid', why: 'header checksum mismatch' };
  const version = v.getUint32(8, true);
  if (version !== FORMAT_VERSION)
    return { state: 'invalid', why: `format version ${version}, this untorn reads version ${FORMAT_VERSION}` };
  const code = v.getUint32(12, true);
  const kind = (Object.keys(KIND_CODE) as FileKind[]).find((k) => KIND_CODE[k] === code);
  if (kind === undefined) return { state: 'invalid', why: 'unknown file kind' };
  return {
    state: 'ok',
    header: {
      kind,
      pageSize: v.getUint32(16, true),
      fileId: Buffer.from(copy.subarray(24, 40)),
      trailerSize: v.getUint32(TRAILER_AT, true),
    },
  };
}

/**
 * Reads the header from the first bytes of a file (at least 4096 of them): the
 * first copy that checks out wins, so a torn or damaged copy is survived.
 */
export function decodeHeader(start: Buffer): HeaderReading {
  const first = decodeCopy(start.subarray(0, HEADER_BYTES));
  if (first.state === 'ok') return first;
  // The second copy's place depends on the page size, which only a good copy tells: try each.
  for (let pageSize = 4096; pageSize <= 65536 && pageSize / 2 + HEADER_BYTES <= start.length; pageSize *= 2) {
    const second = decodeCopy(start.subarray(secondCopyAt(pageSize), secondCopyAt(pageSize) + HEADER_BYTES));
    if (second.state === 'ok' && second.header.pageSize === pageSize) return second;
  }
  return first.state === 'empty' && isZero(start)
    ? first
    : { state: 'invalid', why: first.state === 'invalid' ? first.why : 'header damaged' };
}

// ---------------------------------------------------------------------------
// doublewrite batches

/** A file a batch writes to, as the batch names it. */
export interface BatchTarget {
  /** Relative to the journal's directory; '' for a page file's data file. */
  path: string;
  /** The file's inode number and birth time (ns) when the batch was written; 0 for a page file. */
  ino: bigint;
  birth: bigint;
}

/**
 * One copy of a batch: where it goes, and what its image must be: the CRC32C
 * of all but its last 4 bytes, and those 4 bytes (so a page file's copy, whose
 * last 4 bytes are its trailer's CRC32C, costs no second checksum).
 */
export interface BatchEntry {
  target: number;
  position: number;
  crc: number;
  tail: number;
}

/** The `crc` and `tail` of a copy. */
export function copySeal(image: Buffer): { crc: number; tail: number } {
  return { crc: crcOf(image.subarray(0, image.length - 4)), tail: image.readUInt32LE(image.length - 4) };
}

/** Whether a copy is the one its entry names. */
export function copyMatches(image: Buffer, entry: BatchEntry): boolean {
  return (
    image.readUInt32LE(image.length - 4) === entry.tail && crcOf(image.subarray(0, image.length - 4)) === entry.crc
  );
}

/** Byte offset of the batch area in a doublewrite file or journal (after its header page). */
export function batchAreaOffset(pageSize: number): number {
  return pageSize;
}

const BATCH_FIXED_BYTES = 64;
const ENTRY_BYTES = 24;
const TARGET_FIXED_BYTES = 20;

function targetBytes(target: BatchTarget): number {
  return Math.ceil((TARGET_FIXED_BYTES + Buffer.byteLength(target.path)) / 8) * 8;
}

/** The batch header's size in bytes: whole pages, so the copies after it stay page-aligned. */
export function batchHeaderBytes(count: number, targets: readonly BatchTarget[], pageSize: number): number {
  const table = targets.reduce((sum, t) => sum + targetBytes(t), 0);
  return Math.ceil((BATCH_FIXED_BYTES + ENTRY_BYTES * count + table) / pageSize) * pageSize;
}

export interface BatchHeader {
  seq: bigint;
  ownerId: Buffer;
  pageSize: number;
  targets: readonly BatchTarget[];
  entries: readonly BatchEntry[];
}

/**
 * Writes a batch header: the entries (in the order of the copies after the
 * header), then the target table. A header with no entries marks the area
 * retired: nothing in it is to be replayed, and `seq` carries on.
 */
export function encodeBatchHeader(target: Buffer, h: BatchHeader): void {
  const bytes = batchHeaderBytes(h.entries.length, h.targets, h.pageSize);
  target.fill(0, 0, bytes);
  BATCH_MAGIC.copy(target, 0);
  target.writeUInt32LE(FORMAT_VERSION, 8);
  target.writeUInt32LE(h.entries.length, 12);
  target.writeBigUInt64LE(h.seq, 16);
  h.ownerId.copy(target, 24);
  target.writeUInt32LE(h.pageSize, 40);
  target.writeUInt32LE(h.targets.length, 44);
  let at = BATCH_FIXED_BYTES;
  for (const e of h.entries) {
    target.writeUInt32LE(e.target, at);
    target.writeUInt32LE(e.crc, at + 4);
    target.writeUInt32LE(e.tail, at + 8);
    target.writeBigUInt64LE(BigInt(e.position), at + 16);
    at += ENTRY_BYTES;
  }
  for (const t of h.targets) {
    target.writeBigUInt64LE(t.ino, at);
    target.writeBigUInt64LE(t.birth, at + 8);
    const length = target.write(t.path, at + TARGET_FIXED_BYTES);
    target.writeUInt32LE(length, at + 16);
    at += targetBytes(t);
  }
  target.writeUInt32LE(at, 48);
  target.writeUInt32LE(batchCrc(target, at), CRC_AT);
}

function batchCrc(header: Buffer, end: number): number {
  return crc32c(header.subarray(BATCH_FIXED_BYTES, end), crc32c(header.subarray(0, CRC_AT)));
}

export type BatchHeaderReading =
  { state: 'ok'; header: BatchHeader; bytes: number } | { state: 'empty' } | { state: 'invalid'; why: string };

/**
 * Reads a batch header from the first bytes of the batch area; when it runs
 * past `start` (many entries), says how many bytes it needs.
 */
export function decodeBatchHeader(
  start: Buffer,
  ownerId: Buffer,
  pageSize: number,
): BatchHeaderReading | { state: 'needs'; bytes: number } {
  if (isZero(start.subarray(0, BATCH_FIXED_BYTES))) return { state: 'empty' };
  if (!start.subarray(0, 8).equals(BATCH_MAGIC)) return { state: 'invalid', why: 'no batch magic' };
  const version = start.readUInt32LE(8);
  if (version !== FORMAT_VERSION) return { state: 'invalid', why: `batch format version ${version}` };
  const end = start.readUInt32LE(48);
  if (end < BATCH_FIXED_BYTES) return { state: 'invalid', why: 'batch header length' };
  const bytes = Math.ceil(end / pageSize) * pageSize;
  if (end > start.length) return { state: 'needs', bytes };
  if (start.readUInt32LE(CRC_AT) !== batchCrc(start, end)) return { state: 'invalid', why: 'batch header checksum' };
  if (!start.subarray(24, 40).equals(ownerId) || start.readUInt32LE(40) !== pageSize)
    return { state: 'invalid', why: 'batch of another file' };
  const count = start.readUInt32LE(12);
  const targetCount = start.readUInt32LE(44);
  const entries: BatchEntry[] = [];
  let at = BATCH_FIXED_BYTES;
  for (let i = 0; i < count; i++, at += ENTRY_BYTES) {
    entries.push({
      target: start.readUInt32LE(at),
      crc: start.readUInt32LE(at + 4),
      tail: start.readUInt32LE(at + 8),
      position: Number(start.readBigUInt64LE(at + 16)),
    });
  }
  const targets: BatchTarget[] = [];
  for (let i = 0; i < targetCount; i++) {
    const length = start.readUInt32LE(at + 16);
    const t = {
      ino: start.readBigUInt64LE(at),
      birth: start.readBigUInt64LE(at + 8),
      path: start.toString('utf8', at + TARGET_FIXED_BYTES, at + TARGET_FIXED_BYTES + length),
    };
    targets.push(t);
    at += targetBytes(t);
  }
  if (at !== end || entries.some((e) => e.target >= targetCount))
    return { state: 'invalid', why: 'batch header layout' };
  return { state: 'ok', header: { seq: start.readBigUInt64LE(16), ownerId, pageSize, targets, entries }, bytes };
}
