// A writer for test/journal-strace.test.ts, run under strace, which kills it
// (SIGKILL) on entering its N-th pwritev2 or fdatasync:
//
//   node journal-strace-child.mjs '{"dir": "/mnt/d", "mode": "sync"|"async"|"none", "side": "/mnt/side"}'
//
// Every write goes through a wrapper around the real I/O system that first
// appends {path, position, head} (head: the first 4 KiB of the data, hex) to
// the side file with write(2): a process kill keeps it (page cache), and it is
// not a pwritev2, so it does not shift strace's count. strace names the file
// and offset of the killed call; the side file has its data, which the test
// lands in part (the torn write). Modes: 'sync'/'async' write through a
// journal (doublewrite, 16 KiB pages) with commitSync/commit; 'none' writes
// the same pages in place with no journal (the control). After each round is
// durable it prints "ack <round> <file>:<page>,..." on stdout (a pipe: the
// line is out before the next write starts).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { journalPage } from '../helpers/journal-pages.mjs';

const require = createRequire(import.meta.url);
const { allocAligned } = require('../../dist/index.js');
const { openJournalWith, openJournalSyncWith } = require('../../dist/journal/journal.js');
const { directIo } = require('../../dist/page-io.js');

const P = 16384;
const ROUNDS = 4;
const config = JSON.parse(process.argv[2]);
const side = fs.openSync(config.side, 'a');

/** Page `index` of file `file` (0 a, 1 b) at `version`: names itself, a pattern, its CRC32C in the last 4 bytes. */
export function page(file, index, version) {
  return journalPage(P, file, index, version);
}

/** O_DIRECT needs an aligned buffer (the journal copies to one itself). */
function aligned(b) {
  const a = allocAligned(b.length);
  b.copy(a);
  return a;
}

function logged(io) {
  return new Proxy(io, {
    get(target, prop) {
      if (prop === 'write') {
        return (entries, atomic, datasync) => {
          for (const { buffer, position } of entries) {
            const head = Buffer.from(buffer.buffer, buffer.byteOffset, Math.min(buffer.byteLength, 4096));
            fs.writeSync(side, `${JSON.stringify({ path: target.path, position, head: head.toString('hex') })}\n`);
          }
          return target.write(entries, atomic, datasync);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const system = {
  ...directIo,
  open: (p, write, create, mode) => {
    const step = directIo.open(p, write, create, mode);
    return { sync: () => logged(step.sync()), async: async () => logged(await step.async()) };
  },
};

// Round r writes three pages of a and b (rewrites of earlier rounds' pages among them).
const roundPages = (r) => [
  [0, r],
  [1, (r * 3) % 5],
  [0, (r + 2) % 5],
];
const names = ['a', 'b'].map((n) => path.join(config.dir, n));

if (config.mode === 'none') {
  const ios = [];
  for (const name of names) ios.push(system.open(name, true, 'yes').sync());
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [file, index] of roundPages(r))
      ios[file].write([{ buffer: aligned(page(file, index, r)), position: index * P }], false, false).sync();
    for (const io of ios) io.datasync().sync();
    fs.writeSync(
      1,
      `ack ${r} ${roundPages(r)
        .map(([f, i]) => `${f}:${i}`)
        .join(',')}\n`,
    );
  }
} else {
  const options = { pageSize: P, strategy: 'doublewrite' };
  const jpath = path.join(config.dir, 'journal');
  const j =
    config.mode === 'sync'
      ? openJournalSyncWith(system, jpath, options)
      : await openJournalWith(system, jpath, options);
  const files = [];
  for (const name of names)
    files.push(config.mode === 'sync' ? j.openFileSync(name, 'w+') : await j.openFile(name, 'w+'));
  for (let r = 1; r <= ROUNDS; r++) {
    if (config.mode === 'sync') {
      for (const [file, index] of roundPages(r)) files[file].writePageSync(page(file, index, r), index * P);
      j.commitSync();
    } else {
      await Promise.all(roundPages(r).map(([file, index]) => files[file].writePage(page(file, index, r), index * P)));
      await j.commit();
    }
    fs.writeSync(
      1,
      `ack ${r} ${roundPages(r)
        .map(([f, i]) => `${f}:${i}`)
        .join(',')}\n`,
    );
  }
  if (config.mode === 'sync') j.closeSync();
  else await j.close();
}
fs.writeSync(1, 'done\n');
