// The on-disk format, byte for byte as docs/page-file.md and docs/journal.md
// give it: header copies, the page trailer, the doublewrite batch header
// shared by page files and journals, and what a reader makes of damaged,
// empty, misplaced and foreign pages.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../dist/index.js';
import {
  batchHeaderBytes,
  copyMatches,
  copySeal,
  decodeBatchHeader,
  decodeHeader,
  encodeBatchHeader,
  encodeHeader,
} from '../lib/doublewrite/format';
import { fileTag, inspectPage, sealFor, sealPage } from '../lib/page-file/format';

const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

describe('untorn file format, version 2', () => {
  it('the header: two copies of 64 bytes, each with its CRC32C; either one is enough', () => {
    for (const pageSize of [4096, 16384, 65536]) {
      const page = Buffer.alloc(pageSize);
      encodeHeader(page, { kind: 'data', pageSize, fileId: ID, trailerSize: 32 });
      expect(page.subarray(0, 8).toString()).toBe('UNTORNPF');
      expect([page.readUInt32LE(8), page.readUInt32LE(12), page.readUInt32LE(16), page.readUInt32LE(20)]).toEqual([
        2,
        1,
        pageSize,
        32,
      ]);
      expect(page.subarray(24, 40).equals(ID)).toBe(true);
      expect(page.readUInt32LE(60)).toBe(crc32c(page.subarray(0, 60)));
      expect(page.subarray(pageSize / 2, pageSize / 2 + 64).equals(page.subarray(0, 64))).toBe(true);
      const start = Buffer.concat([page, Buffer.alloc(65536 - pageSize)]);
      expect(decodeHeader(start)).toEqual({
        state: 'ok',
        header: { kind: 'data', pageSize, fileId: ID, trailerSize: 32 },
      });
      start[30] ^= 1; // first copy damaged: the second one is read
      expect(decodeHeader(start)).toMatchObject({ state: 'ok', header: { pageSize } });
      start[pageSize / 2 + 30] ^= 1;
      expect(decodeHeader(start)).toEqual({ state: 'invalid', why: 'header checksum mismatch' });
    }
    expect(decodeHeader(Buffer.alloc(65536))).toEqual({ state: 'empty' });
    // A journal's header: kind 3, no trailer.
    const journal = Buffer.alloc(65536);
    encodeHeader(journal, { kind: 'journal', pageSize: 8192, fileId: ID, trailerSize: 0 });
    expect([journal.readUInt32LE(12), journal.readUInt32LE(20)]).toEqual([3, 0]);
    expect(decodeHeader(journal)).toMatchObject({ state: 'ok', header: { kind: 'journal', pageSize: 8192 } });
    expect(decodeHeader(randomBytes(65536)).state).toBe('invalid');
  });

  it('the page trailer: page number, sequence, file tag, version, CRC32C of the rest', () => {
    const image = Buffer.alloc(16384, 7);
    sealPage(image, 2 ** 40 + 5, sealFor(0x1_0000_0002n, fileTag(ID)));
    const t = 16384 - 32;
    expect(image.readBigUInt64LE(t)).toBe(2n ** 40n + 5n);
    expect(image.readBigUInt64LE(t + 8)).toBe(0x1_0000_0002n);
    expect(image.subarray(t + 16, t + 24).equals(ID.subarray(0, 8))).toBe(true);
    expect(image.readUInt32LE(t + 24)).toBe(2);
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

  it('a file of format version 1 is refused, naming both versions', () => {
    const page = Buffer.alloc(65536);
    encodeHeader(page, { kind: 'data', pageSize: 16384, fileId: ID, trailerSize: 32 });
    for (const at of [0, 8192]) {
      page.writeUInt32LE(1, at + 8);
      page.writeUInt32LE(crc32c(page.subarray(at, at + 60)), at + 60);
    }
    expect(decodeHeader(page)).toEqual({
      state: 'invalid',
      why: 'format version 1, this untorn reads version 2',
    });
  });

  it('the batch header: fixed fields, the entries, the target table, one CRC over all, padded to whole pages', () => {
    const targets = [
      { path: '', ino: 0n, birth: 0n },
      { path: 'base/5/16384', ino: 77n, birth: 1_700_000_000_123_456_789n },
    ];
    const images = [Buffer.alloc(4096, 1), Buffer.alloc(4096, 2), Buffer.alloc(4096, 3)];
    const entries = images.map((image, i) => ({ target: i % 2, position: (i + 1) * 4096 * 1000, ...copySeal(image) }));
    const bytes = batchHeaderBytes(entries.length, targets, 4096);
    expect(bytes).toBe(4096);
    const header = Buffer.alloc(bytes);
    encodeBatchHeader(header, { seq: 77n, ownerId: ID, pageSize: 4096, targets, entries });
    expect(header.subarray(0, 8).toString()).toBe('UNTORNBT');
    expect([header.readUInt32LE(8), header.readUInt32LE(12), header.readUInt32LE(40), header.readUInt32LE(44)]).toEqual(
      [2, 3, 4096, 2],
    );
    expect(header.readBigUInt64LE(16)).toBe(77n);
    expect(header.subarray(24, 40).equals(ID)).toBe(true);
    // Entries of 24 bytes from 64: target, CRC32C of all but the last 4 bytes, those 4 bytes, position.
    expect(header.readUInt32LE(64 + 24)).toBe(1);
    expect(header.readUInt32LE(64 + 24 + 4)).toBe(crc32c(images[1].subarray(0, 4092)));
    expect(header.readUInt32LE(64 + 24 + 8)).toBe(0x02020202);
    expect(header.readBigUInt64LE(64 + 24 + 16)).toBe(2n * 4096n * 1000n);
    // Targets after the entries: inode, birth time, path length, path, padded to 8 bytes.
    const second = 64 + 3 * 24 + 24;
    expect(header.readBigUInt64LE(second)).toBe(77n);
    expect(header.toString('utf8', second + 20, second + 20 + 12)).toBe('base/5/16384');
    const end = header.readUInt32LE(48);
    expect(end).toBe(second + 32);
    expect(header.readUInt32LE(60)).toBe(crc32c(header.subarray(64, end), crc32c(header.subarray(0, 60))));
    const decoded = decodeBatchHeader(header, ID, 4096);
    expect(decoded).toEqual({
      state: 'ok',
      bytes: 4096,
      header: { seq: 77n, ownerId: ID, pageSize: 4096, targets, entries },
    });
    expect(entries.every((e, i) => copyMatches(images[i], e))).toBe(true);
    expect(copyMatches(images[0], entries[1])).toBe(false);
    expect(decodeBatchHeader(header, randomBytes(16), 4096).state).toBe('invalid');
    header[70] ^= 1;
    expect(decodeBatchHeader(header, ID, 4096)).toEqual({ state: 'invalid', why: 'batch header checksum' });
    expect(decodeBatchHeader(Buffer.alloc(4096), ID, 4096)).toEqual({ state: 'empty' });
    // A header longer than a page: the reader asks for the rest.
    const many = Array.from({ length: 200 }, (_, i) => ({ target: 0, position: i * 4096, crc: i, tail: 0 }));
    const long = Buffer.alloc(batchHeaderBytes(many.length, targets, 4096));
    expect(long.length).toBe(8192);
    encodeBatchHeader(long, { seq: 1n, ownerId: ID, pageSize: 4096, targets, entries: many });
    expect(decodeBatchHeader(long.subarray(0, 4096), ID, 4096)).toEqual({ state: 'needs', bytes: 8192 });
    expect(decodeBatchHeader(long, ID, 4096)).toMatchObject({ state: 'ok', header: { seq: 1n } });
    // A retired area: a header with no entries keeps the sequence.
    encodeBatchHeader(header, { seq: 78n, ownerId: ID, pageSize: 4096, targets: [], entries: [] });
    expect(decodeBatchHeader(header, ID, 4096)).toMatchObject({ state: 'ok', header: { seq: 78n, entries: [] } });
  });
});
