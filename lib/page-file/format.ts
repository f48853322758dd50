// The on-disk format of a page file and its doublewrite file, version 1
// (docs/page-file.md describes it byte by byte). Pure functions over buffers.
//
//   data file         [header][page 0][page 1]...      page N at (N + 1) * pageSize
//   doublewrite file  [header][batch header][copy]...  one batch area, rewritten per batch
//
// Every data page ends in a trailer untorn owns: page number, write sequence,
// file tag, CRC32C. All integers are little-endian.
import { binding } from '../binding';

export const FORMAT_VERSION = 1;
export const TRAILER_SIZE = 32;

export type FileKind = 'data' | 'doublewrite';
const KIND_CODE: Record<FileKind, number> = { data: 1, doublewrite: 2 };

const HEADER_MAGIC = Buffer.from('UNTORNPF');
const BATCH_MAGIC = Buffer.from('UNTORNBT');
const HEADER_BYTES = 64;
const BATCH_FIXED_BYTES = 64;
const CRC_AT = 60;

function crcOf(view: Uint8Array, seed = 0): number {
  return binding.crc32c(view, seed);
}

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
  /** 16 random bytes, the same in a page file and its doublewrite file. */
  fileId: Buffer;
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
  v.setUint32(20, TRAILER_SIZE, true);
  header.fileId.copy(copy, 24);
  v.setUint32(CRC_AT, crcOf(copy.subarray(0, CRC_AT)), true);
  copy.copy(target, secondCopyAt(header.pageSize));
}

export type HeaderReading =
  { state: 'ok'; header: FileHeader } | { state: 'empty' } | { state: 'invalid'; why: string };

function decodeCopy(copy: Buffer): HeaderReading {
  if (isZero(copy)) return { state: 'empty' };
  if (!copy.subarray(0, 8).equals(HEADER_MAGIC)) return { state: 'invalid', why: 'no page file magic' };
  const v = dataView(copy);
  if (v.getUint32(CRC_AT, true) !== crcOf(copy.subarray(0, CRC_AT)))
    return { state: 'invalid', why: 'header checksum mismatch' };
  const version = v.getUint32(8, true);
  if (version !== FORMAT_VERSION)
    return { state: 'invalid', why: `format version ${version}, this untorn reads version ${FORMAT_VERSION}` };
  const code = v.getUint32(12, true);
  const kind = (Object.keys(KIND_CODE) as FileKind[]).find((k) => KIND_CODE[k] === code);
  if (kind === undefined || v.getUint32(20, true) !== TRAILER_SIZE)
    return { state: 'invalid', why: 'unknown file kind' };
  return { state: 'ok', header: { kind, pageSize: v.getUint32(16, true), fileId: Buffer.from(copy.subarray(24, 40)) } };
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

/** The first 8 bytes of the file id, stamped into every page so a page of another page file is told apart. */
export function fileTag(fileId: Buffer): bigint {
  return fileId.readBigUInt64LE(0);
}

/** Byte offset of data page `page`. */
export function pageOffset(page: number, pageSize: number): number {
  return (page + 1) * pageSize;
}

/** The trailer fields a batch shares (sequence, file tag), as 32-bit halves: no BigInt per page. */
export interface Seal {
  seqLow: number;
  seqHigh: number;
  tagLow: number;
  tagHigh: number;
}

export function sealFor(seq: bigint, tag: bigint): Seal {
  const low = (n: bigint) => Number(n & 0xffffffffn);
  return { seqLow: low(seq), seqHigh: low(seq >> 32n), tagLow: low(tag), tagHigh: low(tag >> 32n) };
}

/**
 * Fills in the trailer of a page image whose payload is in place, CRC last;
 * `body` (all but the CRC field) may be passed by a caller that keeps it.
 */
export function sealPage(image: Buffer, page: number, seal: Seal, body = image.subarray(0, image.length - 4)): void {
  const t = image.length - TRAILER_SIZE;
  image.writeUInt32LE(page % 2 ** 32, t);
  image.writeUInt32LE(Math.floor(page / 2 ** 32), t + 4);
  image.writeUInt32LE(seal.seqLow, t + 8);
  image.writeUInt32LE(seal.seqHigh, t + 12);
  image.writeUInt32LE(seal.tagLow, t + 16);
  image.writeUInt32LE(seal.tagHigh, t + 20);
  image.writeUInt32LE(FORMAT_VERSION, t + 24);
  image.writeUInt32LE(crcOf(body), image.length - 4);
}

/** What a page slot holds. */
export type PageState = { state: 'ok'; seq: bigint } | { state: 'empty' } | { state: 'corrupt'; reason: string };

/** Checks a page image read from slot `page`: checksum, then whose page it is. */
export function inspectPage(image: Buffer, page: number, tag: bigint): PageState {
  const t = image.length - TRAILER_SIZE;
  if (image.readUInt32LE(image.length - 4) !== crcOf(image.subarray(0, image.length - 4))) {
    return isZero(image) ? { state: 'empty' } : { state: 'corrupt', reason: 'checksum mismatch (torn or damaged)' };
  }
  if (image.readBigUInt64LE(t + 16) !== tag)
    return { state: 'corrupt', reason: 'foreign: a page of another page file' };
  const holds = image.readBigUInt64LE(t);
  if (holds !== BigInt(page)) return { state: 'corrupt', reason: `misdirected: holds page ${holds}` };
  return { state: 'ok', seq: image.readBigUInt64LE(t + 8) };
}

/** The batch header's size in bytes: whole pages, so the copies after it stay page-aligned. */
export function batchHeaderBytes(count: number, pageSize: number): number {
  return Math.ceil((BATCH_FIXED_BYTES + 8 * count) / pageSize) * pageSize;
}

/** Byte offset of the batch area in the doublewrite file (after its header page). */
export function batchAreaOffset(pageSize: number): number {
  return pageSize;
}

/** Bytes the batch area needs for `batchPages` pages. */
export function batchAreaBytes(batchPages: number, pageSize: number): number {
  return batchHeaderBytes(batchPages, pageSize) + batchPages * pageSize;
}

/** Writes a batch header listing `pages` (in the order of the copies after it). */
export function encodeBatchHeader(
  target: Buffer,
  pages: readonly number[],
  seq: bigint,
  fileId: Buffer,
  pageSize: number,
): void {
  target.fill(0);
  BATCH_MAGIC.copy(target, 0);
  target.writeUInt32LE(FORMAT_VERSION, 8);
  target.writeUInt32LE(pages.length, 12);
  target.writeBigUInt64LE(seq, 16);
  fileId.copy(target, 24);
  target.writeUInt32LE(pageSize, 40);
  pages.forEach((page, i) => {
    target.writeUInt32LE(page % 2 ** 32, BATCH_FIXED_BYTES + 8 * i);
    target.writeUInt32LE(Math.floor(page / 2 ** 32), BATCH_FIXED_BYTES + 8 * i + 4);
  });
  target.writeUInt32LE(batchCrc(target, pages.length), CRC_AT);
}

function batchCrc(header: Buffer, count: number): number {
  return crcOf(header.subarray(BATCH_FIXED_BYTES, BATCH_FIXED_BYTES + 8 * count), crcOf(header.subarray(0, CRC_AT)));
}

export type BatchHeaderReading =
  { state: 'ok'; seq: bigint; pages: number[] } | { state: 'empty' } | { state: 'invalid' };

/**
 * Reads a batch header from the first bytes of the batch area; when its page
 * list runs past `start` (many small pages), says how many bytes it needs.
 */
export function decodeBatchHeader(
  start: Buffer,
  fileId: Buffer,
  pageSize: number,
): BatchHeaderReading | { state: 'needs'; bytes: number } {
  if (isZero(start.subarray(0, BATCH_FIXED_BYTES))) return { state: 'empty' };
  if (!start.subarray(0, 8).equals(BATCH_MAGIC) || start.readUInt32LE(8) !== FORMAT_VERSION)
    return { state: 'invalid' };
  const count = start.readUInt32LE(12);
  const bytes = batchHeaderBytes(count, pageSize);
  if (bytes > start.length) return { state: 'needs', bytes };
  if (start.readUInt32LE(CRC_AT) !== batchCrc(start, count)) return { state: 'invalid' };
  if (!start.subarray(24, 40).equals(fileId) || start.readUInt32LE(40) !== pageSize) return { state: 'invalid' };
  const pages = Array.from({ length: count }, (_, i) => Number(start.readBigUInt64LE(BATCH_FIXED_BYTES + 8 * i)));
  return { state: 'ok', seq: start.readBigUInt64LE(16), pages };
}
