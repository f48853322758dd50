// The on-disk format of a page file's data pages (docs/page-file.md
// describes it byte by byte; the header page and the doublewrite batches are
// lib/doublewrite/format.ts's). Pure functions over buffers.
//
//   data file         [header][page 0][page 1]...      page N at (N + 1) * pageSize
//   doublewrite file  [header][batch header][copy]...  one batch area, rewritten per batch
//
// Every data page ends in a trailer untorn owns: page number, write sequence,
// file tag, CRC32C. All integers are little-endian.
import { crcOf, FORMAT_VERSION, isZero } from '../doublewrite/format';

export const TRAILER_SIZE = 32;

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
