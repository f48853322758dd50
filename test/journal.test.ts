// Journals end to end on the real XFS (4K blocks, RAM-backed on /dev/shm; and
// 16K blocks), ext4 and tmpfs fixtures: the API in its blocking and async
// forms under both strategies, every error the journal names (each refused
// call leaving every file as it was), read-your-writes before a commit against
// a model, truncate/close/reopen, shared held pages, maxPendingBytes, group
// commit and batches split to the area (journal writes counted by a wrapper
// around the real I/O system), other processes and worker threads, ENOSPC on a
// tiny filesystem, and reads that must not starve the event loop (in child
// processes with a kill timer, for journals and page files).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AtomicWriteError,
  openJournal,
  openJournalSync,
  openPageFile,
  JournalError,
  type Journal,
  type JournalOptions,
  type JournaledFile,
} from '../dist/index.js';
import { openJournalWith } from '../dist/journal/journal.js';
import { directIo } from '../dist/page-io.js';
import type { PageIo, PageIoSystem } from '../dist/page-io.js';
import { describeFs, fixture, tempPath, type FixtureName } from './helpers/filesystems';
import { journalPage } from './helpers/journal-pages.mjs';
import { rejection, thrown, type CodedError } from './helpers/caught';

const ALL: FixtureName[] = ['xfs4k', 'xfs16k', 'ext4', 'tmpfs'];
const CHILD = path.join(__dirname, 'workers', 'journal-child.mjs');

const page = journalPage;

/** The real I/O system, with the file at `path` wrapped by `wrap` when opened (sync or async). */
function wrapOpen(path: string, wrap: (io: PageIo) => PageIo): PageIoSystem {
  return {
    ...directIo,
    open: (p, write, create, mode) => {
      const step = directIo.open(p, write, create, mode);
      if (p !== path) return step;
      return { sync: () => wrap(step.sync()), async: async () => wrap(await step.async()) };
    },
  };
}

const dirs: string[] = [];
const journals: Journal[] = [];
afterEach(async () => {
  await Promise.allSettled(journals.splice(0).map((j) => j.close()));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory on the fixture, removed after the test. */
function newDir(name: FixtureName): string {
  const dir = tempPath(fixture(name), 'jdir');
  fs.mkdirSync(dir);
  dirs.push(dir);
  return dir;
}

async function track(promise: Promise<Journal>): Promise<Journal> {
  const j = await promise;
  journals.push(j);
  return j;
}

function trackSync(j: Journal): Journal {
  journals.push(j);
  return j;
}

/** Every file's SHA-256 in a directory (to show a refused call changed nothing; toEqual on MiBs is slow). */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    fs.readdirSync(dir).map((name) => [
      name,
      createHash('sha256')
        .update(fs.readFileSync(path.join(dir, name)))
        .digest('hex'),
    ]),
  );
}

/** The journal's own I/O, counted: the batches it writes to its area (by their header) and the retirements. */
function countingSystem(journalPath: string): { system: PageIoSystem; batches: number[]; retires: number } {
  const seen = { batches: [] as number[], retires: 0 };
  const wrap = (io: PageIo): PageIo =>
    new Proxy(io, {
      get(target, prop) {
        if (prop === 'write') {
          return (entries: { buffer: ArrayBufferView; position: number }[], atomic: boolean, datasync: boolean) => {
            for (const { buffer } of entries) {
              const b = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
              if (b.subarray(0, 8).toString() !== 'UNTORNBT') continue;
              const count = b.readUInt32LE(12);
              if (count > 0) seen.batches.push(count);
              else seen.retires++;
            }
            return target.write(entries, atomic, datasync);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const system = wrapOpen(journalPath, wrap);
  return {
    system,
    batches: seen.batches,
    get retires() {
      return seen.retires;
    },
  };
}

/**
 * The real I/O system, with gates on one file's async reads or writes: `hold(kind)` closes the
 * gate; `reached` resolves once a call is waiting at it, `release()` lets it (and later ones) through.
 */
function gatedSystem(gatedPath: string) {
  type Kind = 'read' | 'write' | 'datasync';
  const gates: Record<Kind, { open: Promise<void>; arrived: () => void } | null> = {
    read: null,
    write: null,
    datasync: null,
  };
  const waiting: Record<Kind, number> = { read: 0, write: 0, datasync: 0 };
  const gate = <T>(kind: Kind, step: { sync(): T; async(): Promise<T> }) => ({
    sync: () => step.sync(),
    async: async () => {
      const g = gates[kind];
      if (g) {
        waiting[kind]++;
        g.arrived();
        await g.open;
        waiting[kind]--;
      }
      return step.async();
    },
  });
  const wrap = (io: PageIo): PageIo =>
    new Proxy(io, {
      get(target, prop) {
        if (prop === 'read') return (entries: never) => gate('read', target.read(entries));
        if (prop === 'write')
          return (entries: never, atomic: boolean, datasync: boolean) =>
            gate('write', target.write(entries, atomic, datasync));
        if (prop === 'datasync') return () => gate('datasync', target.datasync());
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const system = wrapOpen(gatedPath, wrap);
  const hold = (kind: Kind) => {
    let release!: () => void;
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const open = new Promise<void>((resolve) => (release = resolve));
    gates[kind] = { open, arrived };
    return {
      reached,
      release: () => {
        gates[kind] = null;
        release();
      },
    };
  };
  return { system, hold, waiting };
}

/** Runs the child scenario with a kill timer: a hang fails the test instead of hanging it. */
function runChild(scenario: string, config: object, timeout = 30_000) {
  const r = spawnSync(process.execPath, [CHILD, scenario, JSON.stringify(config)], {
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
  });
  return { ...r, timedOut: r.signal === 'SIGKILL' };
}

describeFs('journals', () => {
  describe.each(ALL)('on %s', (name) => {
    it('defaults: 16 KiB pages, auto double-writes here and says why; a journal file with its header', async () => {
      const dir = newDir(name);
      const jpath = path.join(dir, 'journal');
      const j = await track(openJournal(jpath));
      expect(j.path).toBe(jpath);
      expect(j.pageSize).toBe(16384);
      expect(j.strategy).toBe('doublewrite');
      expect(j.strategyReason).toMatch(/double-written/);
      expect(j.recovery).toEqual({ batchesReplayed: 0, pagesReplayed: 0, batchesDiscarded: 0 });
      expect(fs.readFileSync(jpath).subarray(0, 8).toString()).toBe('UNTORNPF');
      await j.close();
      // Closing twice is harmless; the journal file stays.
      await j.close();
      j.closeSync();
      expect(fs.existsSync(jpath)).toBe(true);
    });

    const strategies: ('doublewrite' | 'atomic')[] = name.startsWith('xfs')
      ? ['doublewrite', 'atomic']
      : ['doublewrite'];
    describe.each(strategies)('strategy %s', (strategy) => {
      for (const mode of ['sync', 'async'] as const) {
        it(`${mode}: read-your-writes across files before a commit (any range, holes, beyond EOF), then on disk and after a reopen`, async () => {
          const dir = newDir(name);
          const P = 4096;
          const options: JournalOptions = { pageSize: P, strategy };
          if (name === 'xfs16k' && strategy === 'atomic') options.pageSize = 16384;
          const ps = options.pageSize!;
          const jpath = path.join(dir, 'journal');
          const j =
            mode === 'sync' ? trackSync(openJournalSync(jpath, options)) : await track(openJournal(jpath, options));
          expect(j.strategy).toBe(strategy);
          // File 0 exists with an odd size (not a page multiple); 1 and 2 are made by the journal.
          const existing = randomBytes(ps * 2 + 1000);
          fs.writeFileSync(path.join(dir, 'f0'), existing);
          const model = [Buffer.from(existing), Buffer.alloc(0), Buffer.alloc(0)];
          const names = ['f0', 'f1', 'f2'].map((n) => path.join(dir, n));
          const files: JournaledFile[] = [];
          for (const [i, flags] of [
            [0, 'r+'],
            [1, 'w+'],
            [2, 'wx+'],
          ] as const)
            files.push(mode === 'sync' ? j.openFileSync(names[i], flags) : await j.openFile(names[i], flags));

          let seed = 7;
          const random = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
          let version = 0;
          const write = async (f: number, index: number) => {
            const data = page(ps, f, index, ++version);
            if (mode === 'sync') files[f].writePageSync(data, index * ps);
            else await files[f].writePage(data, index * ps);
            const end = (index + 1) * ps;
            if (model[f].length < end) model[f] = Buffer.concat([model[f], Buffer.alloc(end - model[f].length)]);
            data.copy(model[f], index * ps);
          };
          const check = async (f: number, position: number, length: number) => {
            // A view at an odd offset into a larger buffer: any ArrayBufferView, any address.
            const backing = new Uint8Array(length + 3);
            const view = new Uint8Array(backing.buffer, 3, length);
            const n = mode === 'sync' ? files[f].readSync(view, position) : await files[f].read(view, position);
            const want = model[f].subarray(Math.min(position, model[f].length), position + length);
            expect(n, `read of file ${f} at ${position}+${length}`).toBe(want.length);
            expect(Buffer.from(view.subarray(0, n)).equals(want), `bytes of file ${f} at ${position}+${length}`).toBe(
              true,
            );
            expect(files[f].size()).toBe(model[f].length);
          };
          const round = async () => {
            for (let k = 0; k < 40; k++) {
              const f = random(3);
              // Pages 0..9: rewrites, holes left below a page written beyond the end.
              await write(f, random(10));
              await check(random(3), random(12 * ps), 1 + random(3 * ps));
            }
            for (let f = 0; f < 3; f++) {
              await check(f, 0, model[f].length + ps); // everything, and past the end
              await check(f, model[f].length, 10); // at the end: nothing
              await check(f, model[f].length + 5 * ps, 10); // far beyond
            }
          };
          await round();
          if (mode === 'sync') j.commitSync();
          else await j.commit();
          // Committed: on disk, byte for byte (holes read as zeros).
          for (let f = 0; f < 3; f++)
            expect(fs.readFileSync(names[f]).equals(model[f]), `file ${f} on disk`).toBe(true);
          await round();
          if (mode === 'sync') j.closeSync();
          else await j.close();
          for (let f = 0; f < 3; f++) expect(fs.readFileSync(names[f]).equals(model[f]), `file ${f} closed`).toBe(true);

          const again = await track(openJournal(jpath, options));
          expect(again.recovery).toEqual({ batchesReplayed: 0, pagesReplayed: 0, batchesDiscarded: 0 });
          for (let f = 0; f < 3; f++) {
            const h = await again.openFile(names[f], 'r');
            const back = Buffer.alloc(model[f].length + 100);
            expect(await h.read(back, 0)).toBe(model[f].length);
            expect(back.subarray(0, model[f].length).equals(model[f])).toBe(true);
          }
        });
      }

      it('size, truncate (commits first), the same file opened twice shares held pages, later write wins', async () => {
        const dir = newDir(name);
        const ps = name === 'xfs16k' && strategy === 'atomic' ? 16384 : 4096;
        const j = await track(openJournal(path.join(dir, 'journal'), { pageSize: ps, strategy }));
        const file = path.join(dir, 'data');
        const a = await j.openFile(file, 'w+');
        const b = await j.openFile(file); // 'r+'
        const r = await j.openFile(file, 'r');
        expect(a.size()).toBe(0);
        await a.writePage(page(ps, 1, 3, 1), 3 * ps);
        expect(b.size()).toBe(4 * ps);
        const got = Buffer.alloc(ps);
        expect(await b.read(got, 3 * ps)).toBe(ps);
        expect(got.equals(page(ps, 1, 3, 1))).toBe(true);
        // Two writes of one page through two handles, concurrently: the later call wins.
        await Promise.all([a.writePage(page(ps, 1, 3, 2), 3 * ps), b.writePage(page(ps, 1, 3, 3), 3 * ps)]);
        b.writePageSync(page(ps, 1, 4, 4), 4 * ps);
        a.writePageSync(page(ps, 1, 4, 5), 4 * ps);
        expect(r.readSync(got, 3 * ps)).toBe(ps);
        expect(got.equals(page(ps, 1, 3, 3))).toBe(true);
        expect(r.readSync(got, 4 * ps)).toBe(ps);
        expect(got.equals(page(ps, 1, 4, 5))).toBe(true);
        // The hole below reads as zeros.
        expect(r.readSync(got, 0)).toBe(ps);
        expect(got.equals(Buffer.alloc(ps))).toBe(true);
        // truncate commits first (the pages are on disk), then cuts.
        await a.truncate(4 * ps + 100);
        expect(a.size()).toBe(4 * ps + 100);
        expect(fs.statSync(file).size).toBe(4 * ps + 100);
        expect(
          fs
            .readFileSync(file)
            .subarray(3 * ps, 4 * ps)
            .equals(page(ps, 1, 3, 3)),
        ).toBe(true);
        b.truncateSync(ps);
        expect(r.size()).toBe(ps);
        expect(fs.statSync(file).size).toBe(ps);
        expect(await r.read(got, 0)).toBe(ps);
        expect(got.equals(Buffer.alloc(ps))).toBe(true);
        await a.writePage(page(ps, 1, 1, 6), ps);
        await a.datasync();
        expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.alloc(ps), page(ps, 1, 1, 6)]))).toBe(true);
        b.datasyncSync();
        await j.close();
        const again = await track(openJournal(path.join(dir, 'journal'), { pageSize: ps, strategy }));
        expect(again.recovery).toEqual({ batchesReplayed: 0, pagesReplayed: 0, batchesDiscarded: 0 });
      });
    });

    it("'w+' truncates an existing file (after a commit), 'wx+' refuses one (EEXIST) and changes nothing", async () => {
      const dir = newDir(name);
      const file = path.join(dir, 'data');
      fs.writeFileSync(file, randomBytes(10000));
      const j = await track(openJournal(path.join(dir, 'journal'), { pageSize: 4096 }));
      const before = snapshot(dir);
      const err = await rejection(j.openFile(file, 'wx+'));
      expect(err.code).toBe('EEXIST');
      expect(thrown(() => j.openFileSync(file, 'wx+')).code).toBe('EEXIST');
      expect(snapshot(dir)).toEqual(before);
      const f = await j.openFile(file, 'w+');
      expect(f.size()).toBe(0);
      expect(fs.statSync(file).size).toBe(0);
      const made = j.openFileSync(path.join(dir, 'new'), 'wx+', 0o640);
      expect(made.size()).toBe(0);
      expect(fs.statSync(path.join(dir, 'new')).mode & 0o777).toBe(0o640 & ~process.umask());
      // 'r' and 'r+' need the file.
      expect((await rejection(j.openFile(path.join(dir, 'missing'), 'r+'))).code).toBe('ENOENT');
      expect(thrown(() => j.openFileSync(path.join(dir, 'missing'), 'r')).code).toBe('ENOENT');
      expect(fs.existsSync(path.join(dir, 'missing'))).toBe(false);
    });

    it('refuses bad arguments, lengths and positions with Node-style errors, and changes no file', async () => {
      const dir = newDir(name);
      const jpath = path.join(dir, 'journal');
      // Options refused before any I/O: no journal file made.
      const bad: [unknown, string][] = [
        [{ pageSize: 2048 }, 'ERR_OUT_OF_RANGE'],
        [{ pageSize: 12288 }, 'ERR_OUT_OF_RANGE'],
        [{ pageSize: 131072 }, 'ERR_OUT_OF_RANGE'],
        [{ pageSize: '4096' }, 'ERR_INVALID_ARG_TYPE'],
        [{ strategy: 'unprotected' }, 'ERR_INVALID_ARG_VALUE'],
        [{ strategy: 1 }, 'ERR_INVALID_ARG_VALUE'],
        [{ maxPendingBytes: 100 }, 'ERR_OUT_OF_RANGE'],
        [{ maxPendingBytes: 1.5e6 + 0.5 }, 'ERR_OUT_OF_RANGE'],
        [{ maxPendingBytes: '1' }, 'ERR_INVALID_ARG_TYPE'],
        [{ directory: 7 }, 'ERR_INVALID_ARG_TYPE'],
        ['options', 'ERR_INVALID_ARG_TYPE'],
      ];
      for (const [options, code] of bad) {
        expect((await rejection(openJournal(jpath, options as never))).code, JSON.stringify(options)).toBe(code);
        expect(thrown(() => openJournalSync(jpath, options as never)).code, JSON.stringify(options)).toBe(code);
      }
      expect((await rejection(openJournal(42 as never))).code).toBe('ERR_INVALID_ARG_TYPE');
      expect(fs.readdirSync(dir)).toEqual([]);
      // The directory must exist (its filesystem decides the strategy).
      expect((await rejection(openJournal(jpath, { directory: path.join(dir, 'nowhere') }))).code).toBe('ENOENT');
      expect(fs.readdirSync(dir)).toEqual([]);

      const j = await track(openJournal(jpath, { pageSize: 4096 }));
      const f = await j.openFile(path.join(dir, 'data'), 'w+');
      await f.writePage(page(4096, 0, 0, 1), 0);
      await j.commit();
      await f.writePage(page(4096, 0, 1, 2), 4096); // held, not on disk
      const before = snapshot(dir);
      const good = page(4096, 0, 2, 3);
      for (const call of [
        (b: ArrayBufferView, p: number) => f.writePage(b, p),
        async (b: ArrayBufferView, p: number) => f.writePageSync(b, p),
      ]) {
        for (const length of [0, 4095, 4097, 8192]) {
          const err = await rejection(call(Buffer.alloc(length), 0));
          expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
        }
        for (const position of [1, 512, 4095, 4096 * 3 + 2048]) {
          const err = await rejection(call(good, position));
          expect(err).toBeInstanceOf(AtomicWriteError);
          expect(err.code).toBe('ERR_ATOMIC_ALIGNMENT');
        }
        for (const position of [-4096, 1.5, NaN, Infinity, 2 ** 53])
          expect((await rejection(call(good, position))).code).toBe('ERR_OUT_OF_RANGE');
        expect((await rejection(call(good, '0' as never))).code).toBe('ERR_INVALID_ARG_TYPE');
        expect((await rejection(call('page' as never, 0))).code).toBe('ERR_INVALID_ARG_TYPE');
        expect((await rejection(call(new ArrayBuffer(4096) as never, 0))).code).toBe('ERR_INVALID_ARG_TYPE');
      }
      for (const read of [
        (b: ArrayBufferView, p: number) => f.read(b, p),
        async (b: ArrayBufferView, p: number) => f.readSync(b, p),
      ]) {
        expect((await rejection(read(Buffer.alloc(1), -1))).code).toBe('ERR_OUT_OF_RANGE');
        expect((await rejection(read(Buffer.alloc(1), '0' as never))).code).toBe('ERR_INVALID_ARG_TYPE');
        expect((await rejection(read([1, 2] as never, 0))).code).toBe('ERR_INVALID_ARG_TYPE');
      }
      for (const length of [-1, 1.5, NaN]) expect((await rejection(f.truncate(length))).code).toBe('ERR_OUT_OF_RANGE');
      expect(thrown(() => f.truncateSync('0' as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      expect((await rejection(j.openFile(path.join(dir, 'x'), 'a' as never))).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(thrown(() => j.openFileSync(path.join(dir, 'x'), 'w' as never)).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(thrown(() => j.openFileSync(path.join(dir, 'x'), 'w+', 'rw' as never)).code).toBe('ERR_INVALID_ARG_VALUE');
      expect(thrown(() => j.openFileSync(7 as never)).code).toBe('ERR_INVALID_ARG_TYPE');
      // Nothing was written, held or committed by any of them: the files as before, the held page still held.
      expect(snapshot(dir)).toEqual(before);
      const back = Buffer.alloc(3 * 4096);
      expect(await f.read(back, 0)).toBe(2 * 4096);
      expect(back.subarray(0, 4096).equals(page(4096, 0, 0, 1))).toBe(true);
      expect(back.subarray(4096, 8192).equals(page(4096, 0, 1, 2))).toBe(true);
      await j.close();
      expect(fs.readFileSync(path.join(dir, 'data')).equals(back.subarray(0, 8192))).toBe(true);
    });

    it('EBADF: I/O on a closed journal or file, and writes through an r handle', async () => {
      const dir = newDir(name);
      const file = path.join(dir, 'data');
      const j = await track(openJournal(path.join(dir, 'journal'), { pageSize: 4096 }));
      const w = await j.openFile(file, 'w+');
      await w.writePage(page(4096, 0, 0, 1), 0);
      const r = await j.openFile(file, 'r');
      const before = snapshot(dir);
      const data = page(4096, 0, 0, 2);
      for (const err of [
        await rejection(r.writePage(data, 0)),
        thrown(() => r.writePageSync(data, 0)),
        await rejection(r.truncate(0)),
        thrown(() => r.truncateSync(0)),
      ]) {
        expect(err.code).toBe('EBADF');
        expect(err.errno).toBe(-os.constants.errno.EBADF);
      }
      expect(snapshot(dir)).toEqual(before);
      // An 'r' handle still reads, held pages included.
      const got = Buffer.alloc(4096);
      expect(r.readSync(got, 0)).toBe(4096);
      expect(got.equals(page(4096, 0, 0, 1))).toBe(true);

      // A closed handle: EBADF for all; the journal and other handles go on, and its pages stay held.
      await w.close();
      w.closeSync();
      for (const err of [
        await rejection(w.writePage(data, 0)),
        thrown(() => w.writePageSync(data, 0)),
        await rejection(w.read(got, 0)),
        thrown(() => w.readSync(got, 0)),
        await rejection(w.datasync()),
        thrown(() => w.datasyncSync()),
        await rejection(w.truncate(0)),
        thrown(() => w.size()),
      ])
        expect(err.code).toBe('EBADF');
      expect(await r.read(got, 0)).toBe(4096);
      expect(got.equals(page(4096, 0, 0, 1))).toBe(true);

      await j.close();
      expect(fs.readFileSync(file).equals(page(4096, 0, 0, 1))).toBe(true);
      for (const err of [
        await rejection(r.read(got, 0)),
        thrown(() => r.readSync(got, 0)),
        thrown(() => r.size()),
        await rejection(j.openFile(file)),
        thrown(() => j.openFileSync(file)),
        await rejection(j.commit()),
        thrown(() => j.commitSync()),
      ])
        expect(err.code).toBe('EBADF');
    });

    it('ERR_JOURNAL_FORMAT for a file that is no journal or of another page size; the file is left as it was', async () => {
      const dir = newDir(name);
      const cases: [string, Buffer][] = [
        ['text', Buffer.from('not a journal, just a small text file\n')],
        ['big', randomBytes(100_000)],
        ['zeros-big', Buffer.alloc(100_000)],
      ];
      for (const [n, bytes] of cases) {
        const file = path.join(dir, n);
        fs.writeFileSync(file, bytes);
        const err = await rejection(openJournal(file, { pageSize: 4096 }));
        expect(err, n).toBeInstanceOf(JournalError);
        expect(err.code, n).toBe('ERR_JOURNAL_FORMAT');
        expect(thrown(() => openJournalSync(file, { pageSize: 4096 })).code, n).toBe('ERR_JOURNAL_FORMAT');
        expect(fs.readFileSync(file).equals(bytes), `${n} unchanged`).toBe(true);
      }
      // A page file's data file is no journal either.
      const pfPath = path.join(dir, 'pagefile');
      await (await openPageFile(pfPath, { pageSize: 4096 })).close();
      const pf = snapshot(dir);
      expect((await rejection(openJournal(pfPath, { pageSize: 4096 }))).code).toBe('ERR_JOURNAL_FORMAT');
      // Another page size.
      const jpath = path.join(dir, 'journal');
      await (await openJournal(jpath, { pageSize: 8192 })).close();
      const before = snapshot(dir);
      for (const pageSize of [4096, 16384, 65536]) {
        const err = await rejection(openJournal(jpath, { pageSize }));
        expect(err.code).toBe('ERR_JOURNAL_FORMAT');
        expect(err.message).toContain('page size is 8192');
      }
      expect(snapshot(dir)).toEqual(before);
      expect(snapshot(dir).get('pagefile')).toEqual(pf.get('pagefile'));
      await (await openJournal(jpath, { pageSize: 8192 })).close();
    });

    it(
      name.startsWith('xfs')
        ? "strategy 'atomic' is allowed (XFS's software path): writePage is RWF_ATOMIC in place"
        : "strategy 'atomic' is ERR_ATOMIC_UNSUPPORTED here, and makes no journal file",
      async () => {
        const dir = newDir(name);
        const jpath = path.join(dir, 'journal');
        if (!name.startsWith('xfs')) {
          const err = await rejection(openJournal(jpath, { strategy: 'atomic' }));
          expect(err).toBeInstanceOf(AtomicWriteError);
          expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
          expect(thrown(() => openJournalSync(jpath, { strategy: 'atomic', pageSize: 4096 })).code).toBe(
            'ERR_ATOMIC_UNSUPPORTED',
          );
          expect(fs.readdirSync(dir)).toEqual([]);
          // An existing journal is left as it was.
          await (await openJournal(jpath)).close();
          const before = snapshot(dir);
          expect((await rejection(openJournal(jpath, { strategy: 'atomic' }))).code).toBe('ERR_ATOMIC_UNSUPPORTED');
          expect(snapshot(dir)).toEqual(before);
          return;
        }
        const pageSize = name === 'xfs16k' ? 16384 : 4096;
        const j = await track(openJournal(jpath, { strategy: 'atomic', pageSize }));
        expect(j.strategy).toBe('atomic');
        const f = await j.openFile(path.join(dir, 'data'), 'w+');
        await f.writePage(page(pageSize, 0, 1, 1), pageSize);
        // In place at once (no commit): visible to a plain read of the file.
        expect(
          fs
            .readFileSync(path.join(dir, 'data'))
            .subarray(pageSize)
            .equals(page(pageSize, 0, 1, 1)),
        ).toBe(true);
        if (name === 'xfs16k') {
          // 4 KiB pages are below the 16 KiB block: no atomic write of them here.
          const err = await rejection(openJournal(path.join(dir, 'j4k'), { strategy: 'atomic', pageSize: 4096 }));
          expect(err.code).toBe('ERR_ATOMIC_UNSUPPORTED');
        }
      },
    );

    it('a second opener of a journal, in this process, is ERR_JOURNAL_LOCKED; after close it opens', async () => {
      const dir = newDir(name);
      const jpath = path.join(dir, 'journal');
      const j = await track(openJournal(jpath, { pageSize: 4096 }));
      const err = await rejection(openJournal(jpath, { pageSize: 4096 }));
      expect(err).toBeInstanceOf(JournalError);
      expect(err.code).toBe('ERR_JOURNAL_LOCKED');
      expect(thrown(() => openJournalSync(jpath, { pageSize: 4096 })).code).toBe('ERR_JOURNAL_LOCKED');
      // The refused opens did not take the first one's lock with them.
      expect((await rejection(openJournal(jpath, { pageSize: 4096 }))).code).toBe('ERR_JOURNAL_LOCKED');
      await j.close();
      trackSync(openJournalSync(jpath, { pageSize: 4096 })).closeSync();
    });

    it('ERR_JOURNAL_BUSY: a blocking call that writes or syncs while an async commit is in flight; held writes and reads go on', async () => {
      const dir = newDir(name);
      const j = await track(openJournal(path.join(dir, 'journal'), { pageSize: 4096 }));
      const file = path.join(dir, 'data');
      const f = await j.openFile(file, 'w+');
      for (let i = 0; i < 8; i++) await f.writePage(page(4096, 0, i, 1), i * 4096);
      const commit = j.commit(); // in flight: the blocking calls cannot wait for it
      for (const call of [() => j.commitSync(), () => f.datasyncSync(), () => f.truncateSync(0), () => j.closeSync()]) {
        const err = thrown(call);
        expect(err).toBeInstanceOf(JournalError);
        expect(err.code).toBe('ERR_JOURNAL_BUSY');
      }
      // A held write and a read are no writes or syncs to the disk: they go on.
      f.writePageSync(page(4096, 0, 8, 1), 8 * 4096);
      const back = Buffer.alloc(4096);
      expect(f.readSync(back, 8 * 4096)).toBe(4096);
      expect(back.equals(page(4096, 0, 8, 1))).toBe(true);
      await commit;
      // Once it is done, the blocking calls work again, and nothing was lost.
      j.commitSync();
      const onDisk = fs.readFileSync(file);
      expect(onDisk.length).toBe(9 * 4096);
      for (let i = 0; i < 9; i++)
        expect(onDisk.subarray(i * 4096, (i + 1) * 4096).equals(page(4096, 0, i, 1))).toBe(true);
    });

    it('maxPendingBytes forces a commit: the pages are on disk without one', async () => {
      const dir = newDir(name);
      const j = await track(openJournal(path.join(dir, 'journal'), { pageSize: 4096, maxPendingBytes: 4 * 4096 }));
      const file = path.join(dir, 'data');
      const f = await j.openFile(file, 'w+');
      for (let i = 0; i < 3; i++) await f.writePage(page(4096, 0, i, 1), i * 4096);
      expect(fs.statSync(file).size).toBe(0); // held
      await f.writePage(page(4096, 0, 3, 1), 3 * 4096); // the 4th page: 16 KiB held
      const onDisk = fs.readFileSync(file);
      expect(onDisk.length).toBe(4 * 4096);
      for (let i = 0; i < 4; i++)
        expect(onDisk.subarray(i * 4096, (i + 1) * 4096).equals(page(4096, 0, i, 1))).toBe(true);
      // The blocking form too.
      for (let i = 4; i < 8; i++) f.writePageSync(page(4096, 0, i, 1), i * 4096);
      expect(fs.statSync(file).size).toBe(8 * 4096);
    });
  });

  describe('on xfs4k', () => {
    it('group commit: many concurrent commits share one batch', async () => {
      const dir = newDir('xfs4k');
      const jpath = path.join(dir, 'journal');
      const counting = countingSystem(jpath);
      const j = await track(openJournalWith(counting.system, jpath, { pageSize: 4096 }));
      const files = await Promise.all([0, 1, 2, 3].map((i) => j.openFile(path.join(dir, `f${i}`), 'w+')));
      const commits = 32;
      await Promise.all(
        Array.from({ length: commits }, async (_, c) => {
          await files[c % 4].writePage(page(4096, c % 4, c, 1), Math.floor(c / 4) * 4096);
          await files[(c + 1) % 4].writePage(page(4096, (c + 1) % 4, c, 2), (8 + Math.floor(c / 4)) * 4096);
          await j.commit();
        }),
      );
      expect(counting.batches).toEqual([64]);
      // And a second wave arriving while a batch is being written joins the next one.
      const first = Promise.all(
        Array.from({ length: 8 }, async (_, c) => {
          await files[0].writePage(page(4096, 0, 100 + c, 3), (20 + c) * 4096);
          await j.commit();
        }),
      );
      await new Promise((resolve) => setImmediate(resolve));
      const second = Promise.all(
        Array.from({ length: 8 }, async (_, c) => {
          await files[1].writePage(page(4096, 1, 200 + c, 4), (20 + c) * 4096);
          await j.commit();
        }),
      );
      await Promise.all([first, second]);
      expect(counting.batches.length).toBeLessThanOrEqual(3);
      expect(counting.batches.reduce((a, b) => a + b, 0)).toBe(64 + 16);
      for (let c = 0; c < commits; c++) {
        const got = fs.readFileSync(path.join(dir, `f${c % 4}`)).subarray(Math.floor(c / 4) * 4096);
        expect(got.subarray(0, 4096).equals(page(4096, c % 4, c, 1))).toBe(true);
      }
    });

    it('a read racing a commit of its page gets that page whole, not another page that took its memory', async () => {
      // The data file's reads and writes are held at gates, so the interleaving is exact: the read
      // starts while page 1's commit is under way, and ends after that commit and one more write.
      const dir = newDir('xfs4k');
      const file = path.join(dir, 'data');
      const gates = gatedSystem(file);
      const j = await track(openJournalWith(gates.system, path.join(dir, 'journal'), { pageSize: 4096 }));
      const f = await j.openFile(file, 'w+');
      await f.writePage(page(4096, 0, 0, 1), 0);
      await j.commit();
      await f.writePage(page(4096, 0, 1, 1), 4096);
      const writes = gates.hold('write');
      const commit = j.commit();
      await writes.reached; // page 1 is in a batch, its in-place write waiting
      const reads = gates.hold('read');
      const out = Buffer.alloc(2 * 4096);
      const read = f.read(out, 0); // page 1 from memory, page 0 from the file (waiting)
      await reads.reached;
      writes.release();
      await commit;
      await f.writePage(page(4096, 0, 5, 9), 5 * 4096);
      reads.release();
      expect(await read).toBe(2 * 4096);
      expect(out.subarray(0, 4096).equals(page(4096, 0, 0, 1)), 'page 0').toBe(true);
      expect(out.readUInt32LE(4096 + 4), 'page 1 read back as page').toBe(1);
      expect(out.subarray(4096).equals(page(4096, 0, 1, 1)), 'page 1').toBe(true);
    });

    it("atomic: a commit waits for a datasync another commit has under way (it covers this one's write)", async () => {
      const dir = newDir('xfs4k');
      const file = path.join(dir, 'data');
      const gates = gatedSystem(file);
      const j = await track(
        openJournalWith(gates.system, path.join(dir, 'journal'), { pageSize: 4096, strategy: 'atomic' }),
      );
      const f = await j.openFile(file, 'w+');
      await f.writePage(page(4096, 0, 0, 1), 0);
      const syncs = gates.hold('datasync');
      const first = j.commit();
      await syncs.reached; // the first commit's fdatasync of the file is under way
      let secondDone = false;
      const second = j.commit().then(() => (secondDone = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const early = secondDone;
      syncs.release();
      await Promise.all([first, second]);
      expect(early, 'a commit returned before the page written before it was durable').toBe(false);
      expect(secondDone).toBe(true);
    });

    it('a truncate retiring the area and a concurrent commit never write the area at once', async () => {
      // Were the retirement to land after the batch, a crash during the batch's in-place writes
      // would leave torn pages and no batch to replay them from.
      const dir = newDir('xfs4k');
      const jpath = path.join(dir, 'journal');
      const gates = gatedSystem(jpath);
      const j = await track(openJournalWith(gates.system, jpath, { pageSize: 4096 }));
      const f = await j.openFile(path.join(dir, 'f'), 'w+');
      const g = await j.openFile(path.join(dir, 'g'), 'w+');
      await f.writePage(page(4096, 0, 0, 1), 0);
      await j.commit(); // a batch in the area: the truncate retires it first
      const writes = gates.hold('write');
      const truncate = f.truncate(0);
      await writes.reached;
      await g.writePage(page(4096, 1, 0, 1), 0);
      const commit = j.commit();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const concurrent = gates.waiting.write;
      writes.release();
      await Promise.all([truncate, commit]);
      expect(concurrent, 'writes to the journal in flight at once').toBe(1);
      expect(fs.readFileSync(path.join(dir, 'g')).equals(page(4096, 1, 0, 1))).toBe(true);
      expect(fs.statSync(path.join(dir, 'f')).size).toBe(0);
    });

    it('a commit larger than the 4 MiB area is split into batches, and every page lands', async () => {
      const dir = newDir('xfs4k');
      const jpath = path.join(dir, 'journal');
      const counting = countingSystem(jpath);
      const j = await track(openJournalWith(counting.system, jpath));
      const P = 16384;
      const f = await j.openFile(path.join(dir, 'a'), 'w+');
      const g = await j.openFile(path.join(dir, 'b'), 'w+');
      for (let i = 0; i < 300; i++) {
        f.writePageSync(page(P, 0, i, 1), i * P);
        g.writePageSync(page(P, 1, 299 - i, 1), (299 - i) * P);
      }
      j.commitSync();
      // 600 pages of 16 KiB: at most 255 copies fit beside a header page in 4 MiB.
      expect(counting.batches.length).toBe(3);
      expect(Math.max(...counting.batches)).toBeLessThanOrEqual(255);
      expect(counting.batches.reduce((a, b) => a + b, 0)).toBe(600);
      const a = fs.readFileSync(path.join(dir, 'a'));
      const b = fs.readFileSync(path.join(dir, 'b'));
      for (let i = 0; i < 300; i++) {
        expect(a.subarray(i * P, (i + 1) * P).equals(page(P, 0, i, 1))).toBe(true);
        expect(b.subarray(i * P, (i + 1) * P).equals(page(P, 1, i, 1))).toBe(true);
      }
      // The async form splits the same way.
      for (let i = 0; i < 300; i++) await f.writePage(page(P, 0, i, 2), i * P);
      await j.commit();
      expect(counting.batches.length).toBe(5);
      const a2 = fs.readFileSync(path.join(dir, 'a'));
      for (let i = 0; i < 300; i++) expect(a2.subarray(i * P, (i + 1) * P).equals(page(P, 0, i, 2))).toBe(true);
      await j.close();
      expect(counting.retires).toBeGreaterThanOrEqual(1);
    });

    it('a second opener in another process is ERR_JOURNAL_LOCKED, and this one is locked out while it holds it', async () => {
      const dir = newDir('xfs4k');
      const jpath = path.join(dir, 'journal');
      const mine = await openJournal(jpath);
      const child = (): { proc: ChildProcess; first: Promise<string> } => {
        const proc = spawn(process.execPath, [CHILD, 'lock', JSON.stringify({ path: jpath })], {
          stdio: ['pipe', 'pipe', 'inherit'],
        });
        const first = new Promise<string>((resolve, reject) => {
          let out = '';
          proc.stdout!.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.includes('\n')) resolve(out.trim());
          });
          proc.once('exit', (code) => reject(new Error(`child exited (${code}) before printing`)));
        });
        return { proc, first };
      };
      const stop = async (proc: ChildProcess) => {
        proc.kill('SIGKILL');
        await new Promise((resolve) => proc.once('close', resolve));
      };
      const other = child();
      try {
        expect(await other.first).toBe('ERR_JOURNAL_LOCKED');
      } finally {
        await stop(other.proc);
      }
      await mine.close();
      const theirs = child();
      try {
        expect(await theirs.first).toBe('opened');
        expect((await rejection(openJournal(jpath))).code).toBe('ERR_JOURNAL_LOCKED');
      } finally {
        await stop(theirs.proc);
      }
      // A killed holder's lock goes with it (io_uring may drop its files a moment later).
      for (let attempt = 0; ; attempt++) {
        try {
          await (await openJournal(jpath)).close();
          break;
        } catch (err) {
          if ((err as CodedError).code !== 'ERR_JOURNAL_LOCKED' || attempt === 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    });

    it('a worker thread and the main thread, each with its own journal', () => {
      const dir = newDir('xfs4k');
      const r = runChild('threads', { dir });
      expect(r.timedOut, 'the child hung').toBe(false);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      for (const who of ['main', 'worker']) {
        expect(out[who === 'main' ? 'main' : 'worker']).toEqual({
          who,
          strategy: 'doublewrite',
          read: 64 * 4096,
          good: 64,
        });
      }
    });

    // A loop of reads served from memory must let the event loop turn, or the write it waits for never ends.
    for (const strategy of ['doublewrite', 'atomic'])
      it(`journal reads do not starve the event loop (${strategy}): a read loop over a page being written ends`, () => {
        const dir = newDir('xfs4k');
        const r = runChild('starve', { path: path.join(dir, 'journal'), strategy }, 20_000);
        expect(r.timedOut, 'the read loop starved the write it waited for (killed after 20 s)').toBe(false);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^done \d+/);
      });

    it('page files: `while (!done) await pf.readPage(n)` over a page being written ends (hung before 7a94e18)', () => {
      const dir = newDir('xfs4k');
      const r = runChild('starve-pf', { path: path.join(dir, 'pages') }, 20_000);
      expect(r.timedOut, 'the readPage loop starved the write it waited for (killed after 20 s)').toBe(false);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^done \d+/);
    });
  });

  describe('ENOSPC on a tiny ext4', () => {
    it('is Node-shaped; nothing acknowledged is lost and the next open is consistent', async () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-j-enospc-'));
      const mnt = path.join(root, 'mnt');
      fs.mkdirSync(mnt);
      const image = path.join('/dev/shm', `untorn-j-enospc-${process.pid}.img`);
      let mounted = false;
      try {
        fs.writeFileSync(image, '');
        fs.truncateSync(image, 16 * 1024 * 1024);
        execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', image]);
        execFileSync('mount', ['-o', 'loop', image, mnt]);
        mounted = true;
        // Room the test gives back afterwards, as an operator would.
        fs.writeFileSync(path.join(mnt, 'ballast'), Buffer.alloc(1024 * 1024, 1));
        const jpath = path.join(mnt, 'journal');
        const P = 4096;
        const j = await openJournal(jpath, { pageSize: P });
        const files = [await j.openFile(path.join(mnt, 'a'), 'w+'), await j.openFile(path.join(mnt, 'b'), 'w+')];
        const acked = new Map<string, number>(); // file/page -> version
        let failure: CodedError | undefined;
        let next = 0;
        for (let version = 1; failure === undefined && next < 100_000; version++) {
          const written: [number, number][] = [];
          for (let i = 0; i < 32; i++) {
            const f = i % 2;
            // Mostly new pages (the files grow), some rewrites of acknowledged ones.
            const index = i % 8 === 0 && next > 64 ? (next * 7) % (next - 32) : next++;
            files[f].writePageSync(page(P, f, index, version), index * P);
            written.push([f, index]);
          }
          try {
            if (version % 2 === 0) j.commitSync();
            else await j.commit();
            for (const [f, index] of written) acked.set(`${f}/${index}`, version);
          } catch (err) {
            failure = err as CodedError;
          }
        }
        expect(failure?.code).toBe('ENOSPC');
        expect(failure?.errno).toBe(-os.constants.errno.ENOSPC);
        expect(failure?.message).toMatch(/^ENOSPC: no space left on device, (pwritev2|fdatasync|write)/);
        expect(acked.size).toBeGreaterThan(100);
        await j.close().catch((err) => expect(err.code).toBe('ENOSPC'));

        const verify = async (jj: Journal) => {
          const handles = [await jj.openFile(path.join(mnt, 'a'), 'r'), await jj.openFile(path.join(mnt, 'b'), 'r')];
          const got = Buffer.alloc(P);
          for (const [key, version] of acked) {
            const [f, index] = key.split('/').map(Number);
            expect(await handles[f].read(got, index * P)).toBe(P);
            // The acknowledged version, or a later one written in full (the failed commit's).
            expect(got.readUInt32LE(8), key).toBeGreaterThanOrEqual(version);
            expect(got.equals(page(P, f, index, got.readUInt32LE(8))), key).toBe(true);
          }
          // Every page of both files is whole: some version in full, or zeros.
          for (const [f, h] of handles.entries()) {
            for (let at = 0; at < h.size(); at += P) {
              expect(await h.read(got, at)).toBeGreaterThan(0);
              const whole = got.equals(Buffer.alloc(P)) || got.equals(page(P, f, at / P, got.readUInt32LE(8)));
              expect(whole, `file ${f} page ${at / P}`).toBe(true);
            }
          }
        };
        // The next open may need room to replay the failed commit's batch: ENOSPC again is allowed, nothing else.
        let again: Journal | undefined;
        try {
          again = await openJournal(jpath, { pageSize: P });
        } catch (err) {
          expect((err as CodedError).code).toBe('ENOSPC');
        }
        if (again) {
          await verify(again);
          await again.close();
        }
        fs.rmSync(path.join(mnt, 'ballast'));
        const freed = await openJournal(jpath, { pageSize: P });
        try {
          await verify(freed);
        } finally {
          await freed.close();
        }
      } finally {
        try {
          if (mounted) execFileSync('umount', [mnt]);
        } finally {
          fs.rmSync(image, { force: true });
          fs.rmSync(root, { recursive: true, force: true });
        }
      }
    });
  });
});
