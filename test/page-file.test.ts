// Page files end to end on the real XFS (4K and 16K blocks), ext4 and tmpfs
// fixtures: options and their defaults, every error the page file API names, the
// strategy auto picks (and why), read-only opens and locks (in this process
// and another), concurrent writes, surgery on the files (zeroed, torn,
// bit-flipped and misplaced pages, with and without a doublewrite copy),
// kill -9 of a writer, and ENOSPC on a tiny filesystem. crc32c too.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  crc32c,
  openPageFile,
  PageFile,
  PageFileError,
  AtomicWriteError,
  type PageFileOptions,
} from '../dist/index.js';
import { describeFs, fixture, tempPath, type FixtureName } from './helpers/filesystems';
import { rejection, thrown, type CodedError } from './helpers/caught';

const ALL: FixtureName[] = ['xfs4k', 'xfs16k', 'ext4', 'tmpfs'];
const WORKER = path.join(__dirname, 'workers', 'pagefile-writer.mjs');

/** A payload that names its page and version. */
function payload(size: number, page: number, version: number): Buffer {
  const b = Buffer.alloc(size, (page * 7 + version * 13 + 1) & 0xff);
  b.writeUInt32LE(page, 0);
  b.writeUInt32LE(version, 4);
  return b;
}

const created: string[] = [];
const opened: PageFile[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((f) => f.close()));
  for (const file of created.splice(0)) fs.rmSync(file, { force: true });
});

/** A fresh path on the fixture; the page file and its doublewrite file are removed after the test. */
function newPath(name: FixtureName): string {
  const file = tempPath(fixture(name), 'pf');
  created.push(file, `${file}.dblwr`);
  return file;
}

async function openTracked(file: string, options?: PageFileOptions): Promise<PageFile> {
  const f = await openPageFile(file, options);
  opened.push(f);
  return f;
}

/** Writes `pages` with version `version` and closes. */
async function writeAndClose(file: string, pages: number[], version: number, options?: PageFileOptions): Promise<void> {
  const f = await openPageFile(file, options);
  await f.writePages(pages.map((page) => ({ page, data: payload(f.payloadSize, page, version) })));
  await f.close();
}

/** Bytes of a file at an offset, changed with plain buffered I/O (then flushed to the device). */
function surgery(file: string, position: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readBytes(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, position);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe('crc32c', () => {
  it('gives the standard check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('continues from a seed, on any view of any length and offset', () => {
    const data = randomBytes(16384 + 7);
    const whole = crc32c(data);
    for (const cut of [0, 1, 3, 8, 4096, 16390])
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    const view = new DataView(data.buffer, data.byteOffset + 5, 100);
    expect(crc32c(view)).toBe(crc32c(data.subarray(5, 105)));
    expect(crc32c(new Uint32Array([0x34333231, 0x38373635]))).toBe(crc32c(Buffer.from('12345678')));
  });

  it('agrees with a bit-at-a-time reference at every length around the 3-way block sizes', () => {
    const reference = (data: Uint8Array, seed = 0) => {
      let crc = ~seed >>> 0;
      for (const byte of data) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
      }
      return ~crc >>> 0;
    };
    const data = randomBytes(3 * 4096 * 2 + 100);
    const lengths = [...Array(80).keys(), 767, 768, 769, 1535, 1536, 12287, 12288, 12289, 16352, 16380, 16384, 24676];
    for (const length of lengths) {
      for (const offset of [0, 3])
        expect(crc32c(data.subarray(offset, offset + length), 77)).toBe(
          reference(data.subarray(offset, offset + length), 77),
        );
    }
  });

  it('refuses what is not a view, and a seed that is no CRC', () => {
    expect(thrown(() => crc32c('123' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => crc32c(Buffer.alloc(1), '1' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
    for (const seed of [-1, 1.5, 2 ** 32, NaN])
      expect(thrown(() => crc32c(Buffer.alloc(1), seed)).code).toBe('ERR_OUT_OF_RANGE');
  });
});

describeFs('page files', () => {
  describe.each(ALL)('on %s', (name) => {
    it('defaults: 16 KiB pages, auto picks doublewrite and says why, a doublewrite file beside it', async () => {
      const file = newPath(name);
      const f = await openTracked(file);
      expect(f.path).toBe(file);
      expect(f.pageSize).toBe(16384);
      expect(f.payloadSize).toBe(16384 - 32);
      expect(f.strategy).toBe('doublewrite');
      if (name.startsWith('xfs'))
        expect(f.strategyReason).toMatch(
          /XFS software \(copy-on-write\) path.*slower than double-write: pages are double-written/,
        );
      else
        expect(f.strategyReason).toMatch(
          new RegExp(`^${fixture(name).type} .*cannot write atomically here.*: pages are double-written$`),
        );
      expect(f.recovery).toEqual({ pagesChecked: 0, pagesRestored: 0, batchesDiscarded: 0 });
      expect(f.pageCount).toBe(0);
      expect(fs.existsSync(`${file}.dblwr`)).toBe(true);
      expect(readBytes(file, 0, 8).toString()).toBe('UNTORNPF');
    });

    it('writes, reads back, keeps pages across a reopen; a page never written reads as zeros', async () => {
      const file = newPath(name);
      const f = await openTracked(file);
      await f.writePages([
        { page: 0, data: payload(f.payloadSize, 0, 1) },
        { page: 9, data: payload(f.payloadSize, 9, 1) },
      ]);
      await f.writePage(3, payload(f.payloadSize, 3, 2));
      expect(f.pageCount).toBe(10);
      expect((await f.readPage(9)).equals(payload(f.payloadSize, 9, 1))).toBe(true);
      expect((await f.readPage(5)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
      expect((await f.readPage(1_000_000)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
      const target = new Uint8Array(f.payloadSize);
      const into = await f.readPage(3, target);
      expect(into.buffer).toBe(target.buffer);
      expect(Buffer.from(target).equals(payload(f.payloadSize, 3, 2))).toBe(true);
      expect(await f.verify()).toEqual({ pages: 10, empty: 7, ok: 3, corrupt: [] });
      // Data pages sit at multiples of the page size, after the header page.
      expect(readBytes(file, 10 * 16384, 8).readUInt32LE(0)).toBe(9);
      await f.close();

      const g = await openTracked(file);
      expect(g.pageCount).toBe(10);
      expect(g.recovery.pagesChecked).toBe(1); // the last batch (page 3) is in the doublewrite file
      expect(g.recovery.pagesRestored).toBe(0);
      expect((await g.readPage(0)).equals(payload(g.payloadSize, 0, 1))).toBe(true);
      expect((await g.readPage(3)).equals(payload(g.payloadSize, 3, 2))).toBe(true);
    });

    it('grows in preallocated chunks of written zeros', async () => {
      const file = newPath(name);
      const f = await openTracked(file, { pageSize: 4096 });
      await f.writePage(0, payload(f.payloadSize, 0, 1));
      const size = fs.statSync(file).size;
      expect(size).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      await f.writePage(100, payload(f.payloadSize, 100, 1));
      expect(fs.statSync(file).size).toBe(size);
      if (name !== 'tmpfs') {
        // Written, not reserved: allocated, and no extent flagged unwritten (FIEMAP).
        expect(fs.statSync(file).blocks * 512).toBeGreaterThanOrEqual(size);
        const extents = execFileSync('filefrag', ['-v', file], { encoding: 'utf8' });
        expect(extents).toMatch(/extents? found/);
        expect(extents).not.toMatch(/unwritten/);
      }
    });

    it('every page size from 4 KiB to 64 KiB; another page size is ERR_PAGEFILE_FORMAT', async () => {
      for (const pageSize of [4096, 8192, 32768, 65536]) {
        const file = newPath(name);
        await writeAndClose(file, [0, 2], 5, { pageSize });
        const f = await openTracked(file, { pageSize });
        expect(f.payloadSize).toBe(pageSize - 32);
        expect((await f.readPage(2)).equals(payload(pageSize - 32, 2, 5))).toBe(true);
        await f.close();
        const err = await rejection(openPageFile(file, { pageSize: pageSize === 65536 ? 4096 : pageSize * 2 }));
        expect(err).toBeInstanceOf(PageFileError);
        expect(err.code).toBe('ERR_PAGEFILE_FORMAT');
        expect(err.message).toContain(`page size is ${pageSize}`);
      }
    });

    it('refuses bad options and arguments before any I/O, and writes nothing', async () => {
      const file = newPath(name);
      for (const pageSize of [2048, 12288, 131072, 4096.5]) {
        expect((await rejection(openPageFile(file, { pageSize }))).code).toBe('ERR_OUT_OF_RANGE');
      }
      expect((await rejection(openPageFile(file, { pageSize: '4096' as never }))).code).toBe('ERR_INVALID_ARG_TYPE');
      expect((await rejection(openPageFile(file, { strategy: 'fast' as never }))).code).toBe('ERR_INVALID_ARG_VALUE');
      expect((await rejection(openPageFile(file, { flags: 'a' as never }))).code).toBe('ERR_INVALID_ARG_VALUE');
      expect((await rejection(openPageFile(file, { batchPages: 0 }))).code).toBe('ERR_OUT_OF_RANGE');
      expect((await rejection(openPageFile(file, { doublewritePath: file }))).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(fs.existsSync(file)).toBe(false);

      const f = await openTracked(file);
      const good = payload(f.payloadSize, 0, 1);
      for (const page of [-1, 1.5, 2 ** 53, NaN, Infinity]) {
        expect((await rejection(f.writePage(page, good))).code).toBe('ERR_OUT_OF_RANGE');
        expect((await rejection(f.readPage(page))).code).toBe('ERR_OUT_OF_RANGE');
      }
      expect((await rejection(f.writePage('1' as never, good))).code).toBe('ERR_INVALID_ARG_TYPE');
      for (const size of [0, f.payloadSize - 1, f.payloadSize + 1, f.pageSize]) {
        expect((await rejection(f.writePage(1, Buffer.alloc(size)))).code).toBe('ERR_INVALID_ARG_VALUE');
      }
      expect((await rejection(f.readPage(1, Buffer.alloc(10)))).code).toBe('ERR_INVALID_ARG_VALUE');
      const twice = await rejection(
        f.writePages([
          { page: 4, data: good },
          { page: 5, data: good },
          { page: 4, data: good },
        ]),
      );
      expect(twice.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(twice.message).toContain('writes[2].page');
      expect(f.pageCount).toBe(0);
      expect((await f.readPage(5)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
    });

    it('a file that is no page file is ERR_PAGEFILE_FORMAT, and is left as it was', async () => {
      const file = newPath(name);
      const junk = randomBytes(3 * 16384);
      fs.writeFileSync(file, junk);
      const err = await rejection(openPageFile(file));
      expect(err).toBeInstanceOf(PageFileError);
      expect(err.code).toBe('ERR_PAGEFILE_FORMAT');
      expect(fs.readFileSync(file).equals(junk)).toBe(true);
      // A doublewrite file of another page file is refused too: it might hold this one's only good copy.
      const other = newPath(name);
      const mine = newPath(name);
      await writeAndClose(other, [1], 1);
      await writeAndClose(mine, [1], 1);
      fs.copyFileSync(`${other}.dblwr`, `${mine}.dblwr`);
      expect((await rejection(openPageFile(mine))).message).toMatch(/belongs to another page file/);
    });

    it("flags: 'r+' needs the file, 'wx+' a new one, 'w+' starts it empty", async () => {
      const file = newPath(name);
      const missing = await rejection(openPageFile(file, { flags: 'r+' }));
      expect(missing.code).toBe('ENOENT');
      await writeAndClose(file, [0, 1], 1);
      expect((await rejection(openPageFile(file, { flags: 'wx+' }))).code).toBe('EEXIST');
      const f = await openTracked(file, { flags: 'w+' });
      expect(f.pageCount).toBe(0);
      expect((await f.readPage(1)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
      await f.close();
      const fresh = newPath(name);
      const g = await openTracked(fresh, { flags: 'wx+' });
      expect(g.pageCount).toBe(0);
    });

    it("'r' opens read-only under a shared lock: reads work, writes are EBADF, a writer is locked out", async () => {
      const file = newPath(name);
      expect((await rejection(openPageFile(file, { flags: 'r' }))).code).toBe('ENOENT');
      await writeAndClose(file, [2], 1);
      const r1 = await openTracked(file, { flags: 'r' });
      const r2 = await openTracked(file, { flags: 'r' });
      expect((await r1.readPage(2)).equals(payload(r1.payloadSize, 2, 1))).toBe(true);
      expect((await r2.verify()).ok).toBe(1);
      const write = await rejection(r1.writePage(2, payload(r1.payloadSize, 2, 2)));
      expect(write.code).toBe('EBADF');
      expect((await rejection(openPageFile(file))).code).toBe('ERR_PAGEFILE_LOCKED');
      await r1.close();
      await r2.close();
      const w = await openTracked(file);
      expect((await rejection(openPageFile(file, { flags: 'r' }))).code).toBe('ERR_PAGEFILE_LOCKED');
      await w.close();
    });

    it('a second writer in this process gets ERR_PAGEFILE_LOCKED, until the first closes', async () => {
      const file = newPath(name);
      const first = await openTracked(file);
      await first.writePage(3, payload(first.payloadSize, 3, 1));
      const err = await rejection(openPageFile(file));
      expect(err).toBeInstanceOf(PageFileError);
      expect(err.code).toBe('ERR_PAGEFILE_LOCKED');
      expect(err.message).toContain(file);
      // The lock is taken before 'w+' truncates: the writer's pages are untouched.
      expect((await rejection(openPageFile(file, { flags: 'w+' }))).code).toBe('ERR_PAGEFILE_LOCKED');
      expect((await first.readPage(3)).equals(payload(first.payloadSize, 3, 1))).toBe(true);
      await first[Symbol.asyncDispose]();
      expect((await rejection(first.readPage(3))).code).toBe('EBADF');
      const again = await openTracked(file);
      expect(again.strategy).toBe('doublewrite');
    });

    it('a closed page file refuses I/O with EBADF; close twice is harmless', async () => {
      const file = newPath(name);
      const f = await openPageFile(file);
      const write = f.writePage(0, payload(f.payloadSize, 0, 1));
      const closing = f.close();
      await write; // close waits for the write in flight
      await closing;
      await f.close();
      expect((await rejection(f.readPage(0))).code).toBe('EBADF');
      expect((await rejection(f.writePage(0, payload(f.payloadSize, 0, 2)))).code).toBe('EBADF');
      const g = await openTracked(file);
      expect((await g.readPage(0)).equals(payload(g.payloadSize, 0, 1))).toBe(true);
    });

    it('unprotected: in place only, still checked', async () => {
      const file = newPath(name);
      const f = await openTracked(file, { strategy: 'unprotected' });
      expect(f.strategy).toBe('unprotected');
      expect(f.strategyReason).toMatch(/detected by its checksum, not prevented/);
      await f.writePage(1, payload(f.payloadSize, 1, 1));
      expect((await f.readPage(1)).equals(payload(f.payloadSize, 1, 1))).toBe(true);
      expect(fs.existsSync(`${file}.dblwr`)).toBe(false);
    });

    if (name.startsWith('xfs')) {
      it("strategy 'atomic' works here: each page one RWF_ATOMIC write", async () => {
        const file = newPath(name);
        const f = await openTracked(file, { strategy: 'atomic' });
        expect(f.strategy).toBe('atomic');
        expect(f.strategyReason).toMatch(/^strategy 'atomic' as asked: 16 KiB atomic writes take the XFS software/);
        const pages = Array.from({ length: 100 }, (_, i) => i * 3);
        await f.writePages(pages.map((page) => ({ page, data: payload(f.payloadSize, page, 1) })));
        for (const page of pages) expect((await f.readPage(page)).equals(payload(f.payloadSize, page, 1))).toBe(true);
        expect((await f.verify()).ok).toBe(100);
      });
    } else {
      it("strategy 'atomic' is refused with ERR_ATOMIC_UNSUPPORTED, and no file is left behind", async () => {
        const file = newPath(name);
        const err = await rejection(openPageFile(file, { strategy: 'atomic' }));
        expect(err).toBeInstanceOf(AtomicWriteError);
        expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
        expect(err.message).toMatch(/strategy 'atomic' needs 16 KiB atomic writes/);
        expect(fs.existsSync(file)).toBe(false);
      });
    }

    it('a call larger than batchPages is written in several batches, all of it', async () => {
      const file = newPath(name);
      const f = await openTracked(file, { pageSize: 4096, batchPages: 16 });
      const pages = Array.from({ length: 100 }, (_, i) => (i * 37) % 211);
      await f.writePages(pages.map((page) => ({ page, data: payload(f.payloadSize, page, 1) })));
      for (const page of pages) expect((await f.readPage(page)).equals(payload(f.payloadSize, page, 1))).toBe(true);
      await f.close();
      const g = await openTracked(file, { pageSize: 4096, batchPages: 16 });
      expect(g.recovery.pagesChecked).toBe(100 % 16); // the last batch
      expect((await g.verify()).ok).toBe(100);
    });

    it('concurrent calls share batches; a page in two calls ends with the later call’s data', async () => {
      const file = newPath(name);
      const f = await openTracked(file, { pageSize: 4096, batchPages: 8 });
      const calls = Array.from({ length: 20 }, (_, version) =>
        f.writePages([0, 1, 2, version + 10].map((page) => ({ page, data: payload(f.payloadSize, page, version) }))),
      );
      await Promise.all(calls);
      for (const page of [0, 1, 2]) expect((await f.readPage(page)).readUInt32LE(4)).toBe(19);
      for (let v = 0; v < 20; v++) expect((await f.readPage(v + 10)).readUInt32LE(4)).toBe(v);
      await f.close();
      const g = await openTracked(file, { pageSize: 4096, batchPages: 8 });
      for (const page of [0, 1, 2])
        expect((await g.readPage(page)).equals(payload(g.payloadSize, page, 19))).toBe(true);
    });

    it('a read racing writes of the same page returns the old or the new payload, never an error or a mix', async () => {
      const file = newPath(name);
      const f = await openTracked(file, { pageSize: 4096 });
      await f.writePage(7, payload(f.payloadSize, 7, 0));
      let reads = 0;
      for (let version = 1; version <= 30; version++) {
        const write = f.writePage(7, payload(f.payloadSize, 7, version));
        const seen = await Promise.all([f.readPage(7), f.readPage(7), f.verify().then(() => f.readPage(7))]);
        await write;
        for (const got of seen) {
          const v = got.readUInt32LE(4);
          expect([version - 1, version]).toContain(v);
          expect(got.equals(payload(f.payloadSize, 7, v))).toBe(true);
          reads++;
        }
      }
      expect(reads).toBe(90);
    });
  });

  describe.each(['xfs4k', 'ext4'] as FixtureName[])('surgery on %s', (name) => {
    const P = 16384;
    const slot = (page: number) => (page + 1) * P;

    /** Pages 0..5 written in one batch, then 6..8 in a second (the one the doublewrite file keeps). */
    async function prepared(): Promise<string> {
      const file = newPath(name);
      await writeAndClose(file, [0, 1, 2, 3, 4, 5], 1);
      await writeAndClose(file, [6, 7, 8], 2);
      return file;
    }

    it('without a copy: a zeroed, torn, bit-flipped or misplaced page is ERR_PAGE_CORRUPT, never returned', async () => {
      const file = await prepared();
      surgery(file, slot(1), Buffer.alloc(P)); // zeroed: reads as never written, which is all a zero page can say
      surgery(file, slot(2) + P / 2, randomBytes(P / 2)); // torn: the second half is another write's
      const flip = readBytes(file, slot(3) + 1000, 1);
      surgery(file, slot(3) + 1000, Buffer.from([flip[0] ^ 0x10]));
      surgery(file, slot(5), readBytes(file, slot(4), P)); // page 4 copied into page 5's slot
      const f = await openTracked(file);
      expect(f.recovery).toEqual({ pagesChecked: 3, pagesRestored: 0, batchesDiscarded: 0 });
      expect((await f.readPage(1)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
      for (const [page, reason] of [
        [2, /^checksum mismatch/],
        [3, /^checksum mismatch/],
        [5, /^misdirected: holds page 4$/],
      ] as const) {
        const err = await rejection(f.readPage(page));
        expect(err).toBeInstanceOf(PageFileError);
        expect(err.code).toBe('ERR_PAGE_CORRUPT');
        expect(err.page).toBe(page);
        expect(err.reason).toMatch(reason);
      }
      const v = await f.verify();
      expect(v.corrupt.map((c) => c.page)).toEqual([2, 3, 5]);
      expect(v).toMatchObject({ pages: 9, empty: 1, ok: 5 });
      // Rewriting a corrupt page repairs it.
      await f.writePage(2, payload(f.payloadSize, 2, 3));
      expect((await f.readPage(2)).readUInt32LE(4)).toBe(3);
    });

    it('with a copy: zeroed, torn, bit-flipped, misplaced and stale home pages are restored on open', async () => {
      const file = await prepared();
      const stale = readBytes(file, slot(8), P);
      await writeAndClose(file, [6, 7, 8, 9, 10], 3);
      surgery(file, slot(6), Buffer.alloc(P));
      surgery(file, slot(7) + P / 2, randomBytes(P / 2));
      surgery(file, slot(9), readBytes(file, slot(10), P));
      surgery(file, slot(8), stale); // a whole, valid, older version: only the copy can tell
      const flip = readBytes(file, slot(10) + 5, 1);
      surgery(file, slot(10) + 5, Buffer.from([flip[0] ^ 1]));
      const f = await openTracked(file);
      expect(f.recovery).toEqual({ pagesChecked: 5, pagesRestored: 5, batchesDiscarded: 0 });
      for (const page of [6, 7, 8, 9, 10])
        expect((await f.readPage(page)).equals(payload(f.payloadSize, page, 3))).toBe(true);
      expect((await f.verify()).corrupt).toEqual([]);
      await f.close();
      // Restored on disk, not just in memory.
      const g = await openTracked(file);
      expect(g.recovery.pagesRestored).toBe(0);
    });

    it('a read-only open serves the copy without writing; check-style verify counts it sound', async () => {
      const file = await prepared();
      surgery(file, slot(7), Buffer.alloc(P));
      const before = readBytes(file, slot(7), P);
      const r = await openTracked(file, { flags: 'r' });
      expect(r.recovery).toEqual({ pagesChecked: 3, pagesRestored: 1, batchesDiscarded: 0 });
      expect((await r.readPage(7)).equals(payload(r.payloadSize, 7, 2))).toBe(true);
      expect((await r.verify()).corrupt).toEqual([]);
      expect(readBytes(file, slot(7), P).equals(before)).toBe(true);
    });

    it('a damaged copy makes its batch incomplete: discarded, the home pages stay as they are', async () => {
      const file = await prepared();
      const dblwr = `${file}.dblwr`;
      // The doublewrite file: header page, batch header page, then the copies of 6, 7, 8.
      const at = 2 * P + P + 100;
      surgery(dblwr, at, Buffer.from([readBytes(dblwr, at, 1)[0] ^ 0xff]));
      surgery(file, slot(7), Buffer.alloc(P));
      const f = await openTracked(file);
      expect(f.recovery).toEqual({ pagesChecked: 0, pagesRestored: 0, batchesDiscarded: 1 });
      expect((await f.readPage(6)).equals(payload(f.payloadSize, 6, 2))).toBe(true);
      expect((await f.readPage(7)).equals(Buffer.alloc(f.payloadSize))).toBe(true);
    });

    it('one damaged header copy is survived; both damaged is ERR_PAGEFILE_FORMAT', async () => {
      const file = await prepared();
      surgery(file, 10, Buffer.from('xx'));
      const f = await openTracked(file);
      expect((await f.readPage(4)).equals(payload(f.payloadSize, 4, 1))).toBe(true);
      await f.close();
      surgery(file, P / 2 + 10, Buffer.from('xx'));
      const err = await rejection(openPageFile(file));
      expect(err.code).toBe('ERR_PAGEFILE_FORMAT');
    });
  });

  describe('other processes', () => {
    function child(config: object): { proc: ChildProcess; lines: string[]; next: (match: RegExp) => Promise<string> } {
      const proc = spawn(process.execPath, [WORKER, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines: string[] = [];
      const waiters: { match: RegExp; resolve: (l: string) => void }[] = [];
      let rest = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        rest += chunk.toString();
        const parts = rest.split('\n');
        rest = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          for (const w of waiters.splice(0)) {
            if (w.match.test(line)) w.resolve(line);
            else waiters.push(w);
          }
        }
      });
      const next = (match: RegExp) =>
        new Promise<string>((resolve, reject) => {
          const found = lines.find((l) => match.test(l));
          if (found) return resolve(found);
          waiters.push({ match, resolve });
          proc.once('exit', (code) => reject(new Error(`writer exited (${code}) before printing ${match}`)));
        });
      return { proc, lines, next };
    }

    /**
     * Opens the page file of a writer just killed. Its lock can outlive it by
     * a moment: the kernel tears down an io_uring (and drops the files it
     * holds) in a worker after the process has gone.
     */
    async function openAfterKill(file: string): Promise<PageFile> {
      for (let attempt = 0; ; attempt++) {
        try {
          return await openPageFile(file);
        } catch (err) {
          if ((err as CodedError).code !== 'ERR_PAGEFILE_LOCKED' || attempt === 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }

    it('a second writer in another process gets ERR_PAGEFILE_LOCKED, and opens once the first is gone', async () => {
      const file = newPath('xfs4k');
      const mine = await openTracked(file);
      const other = child({ path: file, mode: 'open' });
      expect(await other.next(/./)).toBe('ERR_PAGEFILE_LOCKED');
      other.proc.kill('SIGKILL');
      await new Promise((resolve) => other.proc.once('close', resolve));
      await mine.close();
      const theirs = child({ path: file, mode: 'open' });
      expect(await theirs.next(/./)).toBe('opened');
      // And while it holds the file, this process is the one locked out.
      expect((await rejection(openPageFile(file))).code).toBe('ERR_PAGEFILE_LOCKED');
      theirs.proc.kill('SIGKILL');
      await new Promise((resolve) => theirs.proc.once('close', resolve));
      await (await openAfterKill(file)).close();
    });

    it.each(['xfs4k', 'ext4'] as FixtureName[])(
      'kill -9 of a writer at random moments on %s: every acknowledged call is there',
      async (name) => {
        const file = newPath(name);
        const pages = 256;
        const latest = new Map<number, number>(); // page -> newest acknowledged call
        let acked = 0;
        for (let round = 0; round < 4; round++) {
          const w = child({ path: file, mode: 'write', pages, perCall: 24 });
          await w.next(/^ack /);
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150));
          w.proc.kill('SIGKILL');
          // 'close', not 'exit': every line the writer got out before it died is read by then.
          await new Promise((resolve) => w.proc.once('close', resolve));
          // Calls number from 1 in each run: keep the run's acks apart by an offset in the check below.
          const acks = w.lines.filter((l) => l.startsWith('ack ')).map((l) => l.split(' '));
          acked += acks.length;
          const f = await openAfterKill(file);
          try {
            for (const [, call, list] of acks)
              for (const page of list.split(',').map(Number)) latest.set(page, Number(call));
            for (const [page, call] of latest) {
              const got = await f.readPage(page);
              expect(got.readUInt32LE(0)).toBe(page);
              // The acknowledged version, or a later unacknowledged one of the same run.
              expect(got.readUInt32LE(4)).toBeGreaterThanOrEqual(call);
              expect(got.subarray(8).every((b) => b === ((page + got.readUInt32LE(4)) & 0xff))).toBe(true);
            }
            expect((await f.verify()).corrupt).toEqual([]);
            // The next run starts its calls from 1 again: wipe the slate so versions compare within one run.
            await f.writePages(
              [...latest.keys()].map((page) => {
                const data = Buffer.alloc(f.payloadSize, page & 0xff);
                data.writeUInt32LE(page, 0);
                return { page, data };
              }),
            );
            latest.clear();
          } finally {
            await f.close();
          }
        }
        expect(acked).toBeGreaterThan(4);
      },
      120_000,
    );
  });

  describe.each(['tmpfs', 'ext4'])('ENOSPC on a tiny %s', (type) => {
    it('is a Node-shaped error, and the file is consistent for the next open', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-pf-enospc-'));
      const mnt = path.join(root, 'mnt');
      fs.mkdirSync(mnt);
      const image = path.join('/dev/shm', `untorn-pf-enospc-${process.pid}.img`);
      try {
        if (type === 'tmpfs') {
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mnt]);
        } else {
          fs.writeFileSync(image, '');
          fs.truncateSync(image, 16 * 1024 * 1024);
          execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', image]);
          execFileSync('mount', ['-o', 'loop', image, mnt]);
        }
        const file = path.join(mnt, 'pages');
        const f = await openPageFile(file, { pageSize: 4096, batchPages: 16 });
        let next = 0;
        let failure: CodedError | undefined;
        const acked = new Set<number>();
        while (failure === undefined && next < 100_000) {
          const pages = Array.from({ length: 16 }, (_, i) => next + i);
          try {
            await f.writePages(pages.map((page) => ({ page, data: payload(f.payloadSize, page, 1) })));
            for (const p of pages) acked.add(p);
          } catch (err) {
            failure = err as CodedError;
          }
          next += 16;
        }
        expect(failure?.code).toBe('ENOSPC');
        expect(failure?.errno).toBe(-os.constants.errno.ENOSPC);
        expect(failure?.message).toMatch(/^ENOSPC: no space left on device, (pwritev2|fdatasync) '/);
        await f.close();
        expect(acked.size).toBeGreaterThan(100);
        const g = await openPageFile(file, { pageSize: 4096, batchPages: 16 });
        try {
          for (const page of acked) expect((await g.readPage(page)).equals(payload(g.payloadSize, page, 1))).toBe(true);
          expect((await g.verify()).corrupt).toEqual([]);
        } finally {
          await g.close();
        }
      } finally {
        try {
          execFileSync('umount', [mnt]);
        } finally {
          fs.rmSync(image, { force: true });
          fs.rmSync(root, { recursive: true, force: true });
        }
      }
    });
  });
});
