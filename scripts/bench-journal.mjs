#!/usr/bin/env node
// What a journal costs over writing the same pages by hand, and what a page
// file costs, in one run on one scratch XFS (a loop device over /dev/shm where
// there is one, unless --image-dir says where the image goes). Every lane
// writes the same pages in the same order, 16 KiB pages in commits of 64 made
// durable per commit, sync (blocking calls) and async:
//
//   raw doublewrite      the bench's doublewrite: the batch as one write to a
//                        doublewrite file + fdatasync, then in place + fdatasync
//                        (depth 1: blocking calls; depth 64: one engine batch)
//   journal doublewrite  a JournaledFile's writePage(Sync) per page, then commit(Sync)
//   raw atomic           the bench's atomic: RWF_ATOMIC writes in place + fdatasync
//   journal atomic       the same journal calls, strategy 'atomic' forced (on XFS
//                        without hardware atomic writes: its software path)
//   page file            writePages of the batch, strategy doublewrite (async only)
//
// The lanes take turns commit by commit: a round is --commits turns, each turn one
// commit of every lane in a new shuffled order (so that no lane always follows the
// same one: XFS's copy-on-write clean-up after an atomic lane would otherwise
// always land on the same next lane), so that every lane of a round is timed over
// the same stretch of wall-clock time; a lane's pages/s in a round is a commit's
// pages over the median time of its commits in that round (a stall of the shared
// machine then costs one commit, not the round), and its pages/s overall is the
// median of the rounds. Each journal lane is compared with the raw lane of the same strategy
// and the same kind of call (blocking with depth 1, async with the engine
// batch), the page file with the raw doublewrite engine batch (how it submits),
// round by round: the median of the per-round ratios (a burst of other load then
// hits both sides of a ratio alike), with their interquartile range and min–max.
//
//   node scripts/bench-journal.mjs [--rounds 60] [--commits 16] [--pages 4096] [--batch 64]
//                                  [--image-dir /dev/shm] [--lanes a,b] [--json]
//
// Needs root (mkfs, mount), mkfs.xfs and the built library (npm run build).
// The scratch filesystem is removed at the end, also on Ctrl-C.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USAGE =
  'usage: node scripts/bench-journal.mjs [--rounds N] [--commits C] [--pages P] [--batch B] [--image-dir DIR] [--lanes LIST] [--json]';
const PAGE_SIZE = 16384;
const GOAL = 0.95;
const SEED = 0x6a726e6c;

const require = createRequire(import.meta.url);
const dist = (name) => require(path.join(REPO, 'dist', name));
const { open, allocAligned, openPageFile, openJournal, ioEngine } = dist('index.js');
const { withScratchXfs, scratchSize } = dist('bench/scratch.js');
const { withInterrupt } = dist('cli/interrupt.js');
const { median, percentile } = dist('bench/stats.js');
const { writeBatch } = dist('bench/strategies.js');
const { PageSequence, stampPage, readStamp } = dist('bench/workload.js');

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '60' },
      commits: { type: 'string', default: '16' },
      pages: { type: 'string', default: '4096' },
      batch: { type: 'string', default: '64' },
      'image-dir': { type: 'string', default: fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir() },
      lanes: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const number = (name) => {
    const n = Number(values[name]);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, not '${values[name]}'`);
    return n;
  };
  return {
    rounds: Math.round(number('rounds')),
    commits: Math.round(number('commits')),
    pages: Math.round(number('pages')),
    batch: Math.round(number('batch')),
    imageDir: values['image-dir'],
    lanes: values.lanes ? values.lanes.split(',') : null,
    json: values.json,
  };
}

/** Every page written once (write 0), durable: the file a database already has. */
async function preallocate(file, opts) {
  const chunk = allocAligned(opts.batch * PAGE_SIZE);
  for (let first = 0; first < opts.pages; first += opts.batch) {
    const n = Math.min(opts.batch, opts.pages - first);
    for (let i = 0; i < n; i++) stampPage(chunk.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), first + i, 0);
    await file.write(chunk.subarray(0, n * PAGE_SIZE), first * PAGE_SIZE);
  }
  await file.sync();
}

/** The bench's raw strategy: depth 1 (blocking calls) or depth = batch (one engine batch). */
async function rawLane(dir, strategy, depth, opts) {
  const data = await open(path.join(dir, `raw-${strategy}-${depth}.data`), 'w+');
  await preallocate(data, opts);
  let doublewrite = null;
  if (strategy === 'doublewrite') {
    doublewrite = await open(path.join(dir, `raw-${strategy}-${depth}.dblwr`), 'w+');
    await doublewrite.write(allocAligned(opts.batch * PAGE_SIZE), 0);
    await doublewrite.sync();
  }
  const buffer = allocAligned(opts.batch * PAGE_SIZE);
  const settings = { pageSize: PAGE_SIZE, depth, sync: 'batch' };
  const files = { data, doublewrite, pageFile: null };
  return {
    key: `raw-${strategy}-${depth === 1 ? 'sync' : 'async'}`,
    name: `raw ${strategy}, ${depth === 1 ? 'sync (blocking calls)' : `async (engine batch of ${depth})`}`,
    write: (pages, first) => writeBatch(strategy, files, settings, buffer, pages, first, null),
    check: async () => {},
    close: async () => {
      await data.close();
      await doublewrite?.close();
    },
  };
}

/** A journal over a file that exists, written as a database would: writePage per page, commit per batch. */
async function journalLane(dir, strategy, sync, opts) {
  const mode = sync ? 'sync' : 'async';
  const dataPath = path.join(dir, `journal-${strategy}-${mode}.data`);
  const data = await open(dataPath, 'w+');
  await preallocate(data, opts);
  await data.close();
  const journal = await openJournal(path.join(dir, `journal-${strategy}-${mode}.jrnl`), {
    pageSize: PAGE_SIZE,
    strategy,
  });
  const file = await journal.openFile(dataPath, 'r+');
  // The caller's own memory (not aligned, reused every batch): the journal copies what it is given.
  const memory = Buffer.alloc(opts.batch * PAGE_SIZE);
  const last = new Uint32Array(opts.pages);
  const write = sync
    ? async (pages, first) => {
        for (let i = 0; i < pages.length; i++) {
          const view = memory.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
          stampPage(view, pages[i], first + i);
          file.writePageSync(view, pages[i] * PAGE_SIZE);
        }
        journal.commitSync();
        for (let i = 0; i < pages.length; i++) last[pages[i]] = first + i;
      }
    : async (pages, first) => {
        const writes = [];
        for (let i = 0; i < pages.length; i++) {
          const view = memory.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
          stampPage(view, pages[i], first + i);
          writes.push(file.writePage(view, pages[i] * PAGE_SIZE));
        }
        await Promise.all(writes);
        await journal.commit();
        for (let i = 0; i < pages.length; i++) last[pages[i]] = first + i;
      };
  return {
    key: `journal-${strategy}-${mode}`,
    name: `journal ${strategy}, ${sync ? 'sync (writePageSync, commitSync)' : 'async (writePage, commit)'}`,
    strategyReason: journal.strategyReason,
    write,
    // Every page must read back, through the journal, as the last write it was given.
    check: async () => {
      const page = Buffer.alloc(PAGE_SIZE);
      for (let n = 0; n < opts.pages; n++) {
        file.readSync(page, n * PAGE_SIZE);
        const found = readStamp(page, n);
        if (found !== last[n])
          throw new Error(
            `page ${n} of the ${mode} ${strategy} journal's file holds write ${found}, expected ${last[n]}`,
          );
      }
    },
    close: () => journal.close(),
  };
}

async function pageFileLane(dir, opts) {
  const file = await openPageFile(path.join(dir, 'pagefile-doublewrite'), {
    strategy: 'doublewrite',
    batchPages: opts.batch,
    flags: 'w+',
  });
  const views = Array.from({ length: opts.batch }, () => Buffer.alloc(file.payloadSize));
  const last = new Uint32Array(opts.pages);
  // Write numbers from `first` (null: write 0 for all, the preallocation).
  const batchOf = (pages, first) =>
    Array.from(pages, (page, i) => {
      stampPage(views[i], page, first === null ? 0 : first + i);
      return { page, data: views[i] };
    });
  for (let first = 0; first < opts.pages; first += opts.batch) {
    const pages = Uint32Array.from({ length: Math.min(opts.batch, opts.pages - first) }, (_, i) => first + i);
    await file.writePages(batchOf(pages, null));
  }
  return {
    key: 'pagefile-doublewrite-async',
    name: 'page file doublewrite, async (writePages)',
    strategyReason: file.strategyReason,
    write: async (pages, first) => {
      await file.writePages(batchOf(pages, first));
      pages.forEach((page, i) => (last[page] = first + i));
    },
    check: async () => {
      for (let page = 0; page < opts.pages; page++) {
        const found = readStamp(await file.readPage(page), page);
        if (found !== last[page])
          throw new Error(`page ${page} of the page file holds write ${found}, expected ${last[page]}`);
      }
    },
    close: () => file.close(),
  };
}

/** What each lane is compared with. */
const COMPARISONS = [
  { lane: 'journal-doublewrite-sync', raw: 'raw-doublewrite-sync' },
  { lane: 'journal-doublewrite-async', raw: 'raw-doublewrite-async' },
  { lane: 'journal-atomic-sync', raw: 'raw-atomic-sync' },
  { lane: 'journal-atomic-async', raw: 'raw-atomic-async' },
  { lane: 'pagefile-doublewrite-async', raw: 'raw-doublewrite-async' },
];

async function run(dir, opts, signal) {
  const loadBefore = os.loadavg()[0];
  const makers = {
    'raw-doublewrite-sync': () => rawLane(dir, 'doublewrite', 1, opts),
    'raw-doublewrite-async': () => rawLane(dir, 'doublewrite', opts.batch, opts),
    'journal-doublewrite-sync': () => journalLane(dir, 'doublewrite', true, opts),
    'journal-doublewrite-async': () => journalLane(dir, 'doublewrite', false, opts),
    'raw-atomic-sync': () => rawLane(dir, 'atomic', 1, opts),
    'raw-atomic-async': () => rawLane(dir, 'atomic', opts.batch, opts),
    'journal-atomic-sync': () => journalLane(dir, 'atomic', true, opts),
    'journal-atomic-async': () => journalLane(dir, 'atomic', false, opts),
    'pagefile-doublewrite-async': () => pageFileLane(dir, opts),
  };
  const wanted = opts.lanes ?? Object.keys(makers);
  for (const key of wanted) if (!makers[key]) throw new Error(`no lane '${key}': ${Object.keys(makers).join(', ')}`);
  const lanes = [];
  for (const key of wanted) lanes.push(await makers[key]());
  for (const lane of lanes) {
    lane.sequence = new PageSequence(opts.pages, 'random', SEED);
    lane.next = 1;
    lane.rates = [];
  }
  // One turn: a commit of every lane, in a new shuffled order; each lane's commit timed.
  let seed = SEED;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const turn = async (measured) => {
    const order = lanes
      .map((lane) => ({ lane, key: random() }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.lane);
    for (const lane of order) {
      signal.throwIfAborted();
      const pages = lane.sequence.nextBatch(opts.batch);
      const start = performance.now();
      await lane.write(pages, lane.next);
      const ms = performance.now() - start;
      lane.next += pages.length;
      if (measured) lane.roundMs.push(ms / pages.length);
    }
  };
  for (let i = 0; i < Math.max(4, opts.commits); i++) await turn(false); // warm-up, not counted
  const loads = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (const lane of lanes) lane.roundMs = [];
    for (let i = 0; i < opts.commits; i++) await turn(true);
    for (const lane of lanes) lane.rates.push(1000 / median(lane.roundMs));
    loads.push(os.loadavg()[0]);
    if (process.stderr.isTTY)
      process.stderr.write(
        `round ${round + 1}/${opts.rounds}: ${lanes.map((l) => `${l.key} ${Math.round(l.rates.at(-1))}`).join(', ')}\n`,
      );
  }
  for (const lane of lanes) await lane.check();
  for (const lane of lanes) await lane.close();
  const rows = lanes.map((lane) => ({
    key: lane.key,
    lane: lane.name,
    pagesPerSec: median(lane.rates),
    min: Math.min(...lane.rates),
    max: Math.max(...lane.rates),
    ...(lane.strategyReason ? { strategyReason: lane.strategyReason } : {}),
  }));
  const byKey = new Map(lanes.map((lane) => [lane.key, lane]));
  const ratios = COMPARISONS.filter((c) => byKey.has(c.lane) && byKey.has(c.raw)).map((c) => {
    const lane = byKey.get(c.lane);
    const raw = byKey.get(c.raw);
    const perRound = lane.rates.map((rate, round) => rate / raw.rates[round]).sort((a, b) => a - b);
    return {
      lane: c.lane,
      raw: c.raw,
      ratio: median(perRound),
      q1: percentile(perRound, 0.25),
      q3: percentile(perRound, 0.75),
      min: perRound[0],
      max: perRound.at(-1),
      ratioOfMedians: median(lane.rates) / median(raw.rates),
      goal: GOAL,
      perRound,
    };
  });
  const sortedLoads = [...loads].sort((a, b) => a - b);
  // The machine's 1-minute load average before, during (each round's end) and after: how much else was running.
  const load = {
    before: loadBefore,
    during: { median: median(loads), min: sortedLoads[0], max: sortedLoads.at(-1) },
    after: os.loadavg()[0],
    cpus: os.availableParallelism(),
  };
  return {
    engine: ioEngine(),
    dir,
    imageDir: opts.imageDir,
    node: process.version,
    kernel: os.release(),
    config: { pageSize: PAGE_SIZE, rounds: opts.rounds, commits: opts.commits, pages: opts.pages, batch: opts.batch },
    load,
    rows,
    ratios,
  };
}

function format(report) {
  const n = (x) => Math.round(x).toLocaleString('en-US');
  const f = (x) => x.toFixed(2);
  const { load } = report;
  const lines = [
    `journal and page file vs raw strategies: ${report.config.pages} pages of 16 KiB, random, commits of ${report.config.batch} ` +
      `with one fdatasync per file, ${report.config.rounds} rounds of ${report.config.commits} commits per lane, taking turns; ` +
      `image in ${report.imageDir}; engine ${report.engine.name}; load average ${load.before.toFixed(1)} before, ` +
      `${load.during.median.toFixed(1)} (${load.during.min.toFixed(1)}–${load.during.max.toFixed(1)}) during, ` +
      `${load.after.toFixed(1)} after, on ${load.cpus} CPUs`,
    '',
    '| lane | pages/s (rounds) |',
    '| --- | --- |',
    ...report.rows.map((r) => `| ${r.lane} | ${n(r.pagesPerSec)} (${n(r.min)}–${n(r.max)}) |`),
    '',
    '| lane / raw lane | ratio (IQR; min–max) | of medians | goal |',
    '| --- | --- | --- | --- |',
    ...report.ratios.map(
      (r) =>
        `| ${r.lane} / ${r.raw} | ${f(r.ratio)} (${f(r.q1)}–${f(r.q3)}; ${f(r.min)}–${f(r.max)}) | ${f(r.ratioOfMedians)} | ` +
        `${r.ratio >= r.goal ? `>= ${r.goal}: met` : `>= ${r.goal}: MISSED`} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

const opts = options();
if (process.getuid() !== 0) throw new Error('must run as root: it makes, mounts and unmounts an XFS loop image');
// lib/'s scratch XFS goes under os.tmpdir(): RAM-backed in /dev/shm.
process.env.TMPDIR = opts.imageDir;
// Nine files, and room for XFS's copy-on-write reservations: the atomic lanes write by software
// copy-on-write, which reserves up to its cowextsize (8x a 16 KiB page) per page in flight.
const bytes = 48 * opts.pages * PAGE_SIZE + 128 * 1024 * 1024;
const report = await withInterrupt((signal) =>
  withScratchXfs(scratchSize(bytes), signal, (dir) => run(dir, opts, signal)),
);
process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : format(report));
