// untorn crash lab: the writer. A child process that drives the writes
// through untorn's public API (the built package, dist/index.js) and leaves a
// mark in the recorder's log at every step, so that the checker knows what
// was acknowledged.
//
//   node writer.mjs '{"mode":"setup", ...}'   makes the test file (version 0 of every page)
//   node writer.mjs '{"mode":"run", ...}'     rewrites pages in batches, with marks
//
// Config: dir (the XFS mount), pageSize, pages, layout ('contiguous' |
// 'fragmented'), blockSize (the filesystem's), api ('atomic' | 'plain'),
// batches, batchPages, seed, marks (path of the recorder's mark file).
//
// Marks (one line each, written with one write(2) to the mark file, which the
// recorder serves without a page cache: a mark is in the log before this
// process goes on):
//   begin API
//   batch N CALL DURABILITY     CALL sync|async, DURABILITY datasync|dsync
//   s PAGE VERSION              the write of that version is about to be issued
//   r PAGE VERSION              it returned (not yet durable)
//   rd PAGE VERSION             it returned, and was a dsync write: durable
//   d                           fdatasync returned: every write that returned before is durable
//   end
//
// Page file modes (config: strategy, rounds, batchPages):
//   pagefile-setup   makes the page file `data` (and `data.dblwr` for
//                    'doublewrite'), every page at version 0
//   pagefile-run     rounds of one to three concurrent writePages calls of
//                    one to six distinct pages each (a page may be in two
//                    concurrent calls: the later has the higher version);
//                    marks: `batch N CALLS writePages`, `s PAGE VERSION`
//                    before each call, `rd PAGE VERSION` for each of its
//                    pages once the call resolved (acknowledged durable).
// A payload is the page's stamp cut to payloadSize (the page file owns the
// last 32 bytes of each page), so the checker trusts no page file code.
// Prints one JSON line on stdout: what it did.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stamp, stampPayload } from './stamp.mjs';

const require = createRequire(import.meta.url);
const untorn = require(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'index.js'));

const config = JSON.parse(process.argv[2]);
const { dir, pageSize, pages } = config;
const dataPath = path.join(dir, 'data');
const fillerPath = path.join(dir, 'filler');

/** Batch styles, in turn: every scenario covers both calls and both durability points. */
const STYLES = [
  { call: 'sync', durability: 'datasync' },
  { call: 'async', durability: 'dsync' },
  { call: 'sync', durability: 'dsync' },
  { call: 'async', durability: 'datasync' },
];

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function setup() {
  const { layout, blockSize } = config;
  const data = untorn.openSync(dataPath, 'w+');
  const all = untorn.allocAligned(pages * pageSize);
  for (let p = 0; p < pages; p++) stamp(all.subarray(p * pageSize, (p + 1) * pageSize), p, 0);
  if (layout === 'contiguous') {
    // One write: one allocation, one extent.
    data.writeSync(all, 0);
  } else {
    // Every filesystem block of the test file alternates with a block of a
    // filler file: O_DIRECT writes that extend a file allocate at once, so
    // no two blocks of the test file end up adjacent on the device.
    const filler = untorn.openSync(fillerPath, 'w+');
    const block = untorn.allocAligned(blockSize);
    for (let off = 0; off < pages * pageSize; off += blockSize) {
      all.copy(block, 0, off, off + blockSize);
      data.writeSync(block, off);
      filler.writeSync(block, off);
    }
    filler.closeSync();
  }
  data.closeSync();
  // Durable before the base image is taken (the image is unmounted anyway).
  const fd = fs.openSync(dataPath, 'r');
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  return { pages, pageSize, layout };
}

async function run() {
  const { api, batches, batchPages, seed } = config;
  const random = rng(seed);
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  const file = untorn.openSync(dataPath, 'r+');
  if (api === 'atomic' && !(file.info.supported && file.info.unitMin <= pageSize && pageSize <= file.info.unitMax)) {
    throw new Error(`${dataPath}: no atomic writes of ${pageSize} bytes here (${JSON.stringify(file.info)})`);
  }
  const writeSync = api === 'atomic' ? file.writeAtomicSync.bind(file) : file.writeSync.bind(file);
  const writeAsync = api === 'atomic' ? file.writeAtomic.bind(file) : file.write.bind(file);
  const version = new Array(pages).fill(0);
  let writes = 0;
  mark(`begin ${api}`);
  for (let b = 0; b < batches; b++) {
    const style = STYLES[b % STYLES.length];
    mark(`batch ${b} ${style.call} ${style.durability}`);
    // batchPages distinct pages, in random order.
    const chosen = [];
    while (chosen.length < Math.min(batchPages, pages)) {
      const p = Math.floor(random() * pages);
      if (!chosen.includes(p)) chosen.push(p);
    }
    const dsync = style.durability === 'dsync';
    const jobs = chosen.map((p) => {
      const v = ++version[p];
      return { p, v, buf: stamp(untorn.allocAligned(pageSize), p, v) };
    });
    if (style.call === 'sync') {
      for (const { p, v, buf } of jobs) {
        mark(`s ${p} ${v}`);
        writeSync(buf, p * pageSize, { dsync });
        mark(`${dsync ? 'rd' : 'r'} ${p} ${v}`);
        writes++;
      }
    } else {
      // All of the batch in flight at once.
      await Promise.all(
        jobs.map(async ({ p, v, buf }) => {
          mark(`s ${p} ${v}`);
          await writeAsync(buf, p * pageSize, { dsync });
          mark(`${dsync ? 'rd' : 'r'} ${p} ${v}`);
          writes++;
        }),
      );
    }
    if (!dsync) {
      await file.datasync();
      mark('d');
    }
  }
  mark('end');
  file.closeSync();
  fs.closeSync(marks);
  return { api, writes, versions: version };
}

function pageFileOptions() {
  return { strategy: config.strategy, pageSize, batchPages: config.batchPages };
}

async function setupPageFile() {
  const pf = await untorn.openPageFile(dataPath, pageFileOptions());
  if (pf.strategy !== config.strategy)
    throw new Error(`${dataPath}: strategy ${pf.strategy}, wanted ${config.strategy}`);
  const writes = [];
  for (let p = 0; p < pages; p++) writes.push({ page: p, data: stampPayload(p, 0, pageSize, pf.payloadSize) });
  await pf.writePages(writes);
  await pf.close();
  return { pages, pageSize, strategy: pf.strategy };
}

async function runPageFile() {
  const { rounds, seed, strategy } = config;
  const random = rng(seed);
  const int = (n) => Math.floor(random() * n);
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  const pf = await untorn.openPageFile(dataPath, pageFileOptions());
  if (pf.strategy !== strategy) throw new Error(`${dataPath}: strategy ${pf.strategy}, wanted ${strategy}`);
  const version = new Array(pages).fill(0);
  let writes = 0;
  let calls = 0;
  mark(`begin pagefile-${strategy}`);
  for (let b = 0; b < rounds; b++) {
    const n = 1 + int(3);
    mark(`batch ${b} ${n} writePages`);
    const inFlight = [];
    for (let c = 0; c < n; c++) {
      const chosen = [];
      const count = 1 + int(6);
      while (chosen.length < count) {
        const p = int(pages);
        if (!chosen.includes(p)) chosen.push(p);
      }
      const jobs = chosen.map((p) => ({ p, v: ++version[p] }));
      for (const { p, v } of jobs) mark(`s ${p} ${v}`);
      const data = jobs.map(({ p, v }) => ({ page: p, data: stampPayload(p, v, pageSize, pf.payloadSize) }));
      calls++;
      inFlight.push(
        pf.writePages(data).then(() => {
          for (const { p, v } of jobs) mark(`rd ${p} ${v}`);
          writes += jobs.length;
        }),
      );
    }
    await Promise.all(inFlight);
  }
  mark('end');
  await pf.close();
  fs.closeSync(marks);
  return { api: `pagefile-${strategy}`, writes, calls, versions: version };
}

const modes = { setup, run, 'pagefile-setup': setupPageFile, 'pagefile-run': runPageFile };
const result = await modes[config.mode]();
process.stdout.write(JSON.stringify(result) + '\n');
