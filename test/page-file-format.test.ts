// The page file format, byte for byte as docs/page-file.md gives it: header
// copies, the page trailer, the batch header, and what a reader makes of
// damaged, empty, misplaced and foreign pages.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../dist/index.js';
import {
  batchHeaderBytes,
  decodeBatchHeader,
  decodeHeader,
  encodeBatchHeader,
  encodeHeader,
  fileTag,
  inspectPage,
  sealFor,
  sealPage,
} from '../lib/page-file/format';

const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

describe('page file format, version 1', () => {
  it('the header: two copies of 64 bytes, each with its CRC32C; either one is enough', () => {
    for (const pageSize of [4096, 16384, 65536]) {
      const page = Buffer.alloc(pageSize);
      encodeHeader(page, { kind: 'data', pageSize, fileId: ID });
      expect(page.subarray(0, 8).toString()).toBe('UNTORNPF');
      expect([page.readUInt32LE(8), page.readUInt32LE(12), page.readUInt32LE(16), page.readUInt32LE(20)]).toEqual([
        1,
        1,
        pageSize,
        32,
      ]);
      expect(page.subarray(24, 40).equals(ID)).toBe(true);
      expect(page.readUInt32LE(60)).toBe(crc32c(page.subarray(0, 60)));
      expect(page.subarray(pageSize / 2, pageSize / 2 + 64).equals(page.subarray(0, 64))).toBe(true);
      const start = Buffer.concat([page, Buffer.alloc(65536 - pageSize)]);
      expect(decodeHeader(start)).toEqual({ state: 'ok', header: { kind: 'data', pageSize, fileId: ID } });
      start[30] ^= 1; // first copy damaged: the second one is read
      expect(decodeHeader(start)).toMatchObject({ state: 'ok', header: { pageSize } });
      start[pageSize / 2 + 30] ^= 1;
      expect(decodeHeader(start)).toEqual({ state: 'invalid', why: 'header checksum mismatch' });
    }
    expect(decodeHeader(Buffer.alloc(65536))).toEqual({ state: 'empty' });
    expect(decodeHeader(randomBytes(65536)).state).toBe('invalid');
  });

  it('the page trailer: page number, sequence, file tag, version, CRC32C of the rest', () => {
    const image = Buffer.alloc(16384, 7);
    sealPage(image, 2 ** 40 + 5, sealFor(0x1_0000_0002n, fileTag(ID)));
    const t = 16384 - 32;
    expect(image.readBigUInt64LE(t)).toBe(2n ** 40n + 5n);
    expect(image.readBigUInt64LE(t + 8)).toBe(0x1_0000_0002n);
    expect(image.subarray(t + 16, t + 24).equals(ID.subarray(0, 8))).toBe(true);
    expect(image.readUInt32LE(t + 24)).toBe(1);
    expect(image.readUInt32LE(16380)).toBe(crc32c(image.subarray(0, 16380)));
    expect(inspectPage(image, 2 ** 40 + 5, fileTag(ID))).toEqual({ state: 'ok', seq: 0x1_0000_0002n });
    expect(inspectPage(image, 6, fileTag(ID))).toEqual({
      state: 'corrupt',
      reason: `misdirected: holds page ${2 ** 40 + 5}`,
    });
    expect(inspectPage(image, 2 ** 40 + 5, 99n)).toEqual({
      state: 'corrupt',
      reason: 'foreign: a page of another page file',
    });
    image[100] ^= 0x80;
    expect(inspectPage(image, 2 ** 40 + 5, fileTag(ID))).toEqual({
      state: 'corrupt',
      reason: 'checksum mismatch (torn or damaged)',
    });
    expect(inspectPage(Buffer.alloc(16384), 3, fileTag(ID))).toEqual({ state: 'empty' });
  });

  it('the batch header: fixed fields, the page list, one CRC over both, padded to whole pages', () => {
    const pages = [9, 2, 700];
    const header = Buffer.alloc(batchHeaderBytes(pages.length, 4096));
    expect(header.length).toBe(4096);
    expect(batchHeaderBytes(504, 4096)).toBe(4096); // 64 + 8 * 504 bytes: exactly one page
    expect(batchHeaderBytes(505, 4096)).toBe(8192);
    encodeBatchHeader(header, pages, 77n, ID, 4096);
    expect(header.subarray(0, 8).toString()).toBe('UNTORNBT');
    expect([header.readUInt32LE(8), header.readUInt32LE(12), header.readUInt32LE(40)]).toEqual([1, 3, 4096]);
    expect(header.readBigUInt64LE(16)).toBe(77n);
    expect(header.subarray(24, 40).equals(ID)).toBe(true);
    expect([64, 72, 80].map((at) => Number(header.readBigUInt64LE(at)))).toEqual(pages);
    expect(header.readUInt32LE(60)).toBe(crc32c(header.subarray(64, 88), crc32c(header.subarray(0, 60))));
    expect(decodeBatchHeader(header, ID, 4096)).toEqual({ state: 'ok', seq: 77n, pages });
    expect(decodeBatchHeader(header, randomBytes(16), 4096)).toEqual({ state: 'invalid' });
    header[70] ^= 1;
    expect(decodeBatchHeader(header, ID, 4096)).toEqual({ state: 'invalid' });
    expect(decodeBatchHeader(Buffer.alloc(4096), ID, 4096)).toEqual({ state: 'empty' });
    const long = Buffer.alloc(8192);
    encodeBatchHeader(
      long,
      Array.from({ length: 505 }, (_, i) => i),
      1n,
      ID,
      4096,
    );
    expect(decodeBatchHeader(long.subarray(0, 4096), ID, 4096)).toEqual({ state: 'needs', bytes: 8192 });
    expect(decodeBatchHeader(long, ID, 4096)).toMatchObject({ state: 'ok', seq: 1n });
  });
});
