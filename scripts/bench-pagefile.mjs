#!/usr/bin/env node
// What a page file costs over writing the same pages by hand: page file
// doublewrite against the bench's raw doublewrite strategy, page file atomic
// against raw atomic, on one scratch XFS (a loop device over /dev/shm where
// there is one), in one run. Every lane writes the same pages in the same
// order, 16 KiB pages in batches of 64 made durable per batch; the lanes take
// turns in many short rounds (in a new shuffled order each round, so that no
// lane always follows the same one: XFS's copy-on-write clean-up after an
// atomic lane would otherwise always land on the same next lane), pages/s
// is the median of the rounds. The raw strategies run both ways the bench can
// run them: depth 1 (synchronous calls) and depth = batch (one engine batch,
// as a page file submits it); the page file is compared with the faster of
// the two, round by round (the median of the per-round ratios: a burst of
// other load on the machine then hits both sides of a ratio alike).
//
//   node scripts/bench-pagefile.mjs [--rounds 40] [--seconds 0.4] [--pages 4096] [--batch 64] [--json]
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
const USAGE = 'usage: node scripts/bench-pagefile.mjs [--rounds N] [--seconds S] [--pages P] [--batch B] [--json]';
const PAGE_SIZE = 16384;
const GOAL = 0.9;
const SEED = 0x70616765;

const require = createRequire(import.meta.url);
const dist = (name) => require(path.join(REPO, 'dist', name));
const { open, allocAligned, openPageFile, ioEngine } = dist('index.js');
const { withScratchXfs, scratchSize } = dist('bench/scratch.js');
const { withInterrupt } = dist('cli/interrupt.js');
const { median } = dist('bench/stats.js');
const { writeBatch } = dist('bench/strategies.js');
const { PageSequence, stampPage, readStamp } = dist('bench/workload.js');

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '40' },
      seconds: { type: 'string', default: '0.4' },
      pages: { type: 'string', default: '4096' },
      batch: { type: 'string', default: '64' },
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
    seconds: number('seconds'),
    pages: Math.round(number('pages')),
    batch: Math.round(number('batch')),
    json: values.json,
  };
}

/** A lane: writes one batch of pages (write numbers from `first`) and says how. */
async function rawLane(dir, strategy, depth, opts) {
  const data = await open(path.join(dir, `${strategy}-${depth}.data`), 'w+');
  const chunk = allocAligned(opts.batch * PAGE_SIZE);
  for (let first = 0; first < opts.pages; first += opts.batch) {
    const n = Math.min(opts.batch, opts.pages - first);
    for (let i = 0; i < n; i++) stampPage(chunk.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), first + i, 0);
    await data.write(chunk.subarray(0, n * PAGE_SIZE), first * PAGE_SIZE);
  }
  await data.sync();
  let doublewrite = null;
  if (strategy === 'doublewrite') {
    doublewrite = await open(path.join(dir, `${strategy}-${depth}.dblwr`), 'w+');
    await doublewrite.write(allocAligned(opts.batch * PAGE_SIZE), 0);
    await doublewrite.sync();
  }
  const buffer = allocAligned(opts.batch * PAGE_SIZE);
  const settings = { pageSize: PAGE_SIZE, depth, sync: 'batch' };
  return {
    name: `raw ${strategy}, depth ${depth === 1 ? '1 (sync calls)' : `${depth} (engine batch)`}`,
    kind: strategy,
    write: (pages, first) => writeBatch(strategy, { data, doublewrite }, settings, buffer, pages, first, null),
    check: async () => {},
    close: async () => {
      await data.close();
      await doublewrite?.close();
    },
  };
}

async function pageFileLane(dir, strategy, opts) {
  const file = await openPageFile(path.join(dir, `pagefile-${strategy}`), {
    strategy,
    batchPages: opts.batch,
    flags: 'w+',
  });
  const views = Array.from({ length: opts.batch }, () => Buffer.alloc(file.payloadSize));
  const last = new Uint32Array(opts.pages);
  const write = async (pages, first) => {
    await file.writePages(
      Array.from(pages, (page, i) => {
        stampPage(views[i], page, first + i);
        return { page, data: views[i] };
      }),
    );
    pages.forEach((page, i) => (last[page] = first + i));
  };
  for (let first = 0; first < opts.pages; first += opts.batch) {
    const pages = Uint32Array.from({ length: Math.min(opts.batch, opts.pages - first) }, (_, i) => first + i);
    await file.writePages(
      Array.from(pages, (page, i) => {
        stampPage(views[i], page, 0);
        return { page, data: views[i] };
      }),
    );
  }
  return {
    name: `page file, strategy ${strategy}`,
    kind: strategy,
    strategyReason: file.strategyReason,
    write,
    // Every page must read back (checksum, page number) as the last write it was given.
    check: async () => {
      for (let page = 0; page < opts.pages; page++) {
        const found = readStamp(await file.readPage(page), page);
        if (found !== last[page])
          throw new Error(`page ${page} of the ${strategy} page file holds write ${found}, expected ${last[page]}`);
      }
    },
    close: () => file.close(),
  };
}

async function run(dir, opts, signal) {
  const loadBefore = os.loadavg()[0];
  const lanes = [
    await rawLane(dir, 'doublewrite', 1, opts),
    await rawLane(dir, 'doublewrite', opts.batch, opts),
    await pageFileLane(dir, 'doublewrite', opts),
    await rawLane(dir, 'atomic', 1, opts),
    await rawLane(dir, 'atomic', opts.batch, opts),
    await pageFileLane(dir, 'atomic', opts),
  ];
  for (const lane of lanes) {
    lane.sequence = new PageSequence(opts.pages, 'random', SEED);
    lane.next = 1;
    lane.rates = [];
  }
  const slot = async (lane, seconds) => {
    const start = performance.now();
    let written = 0;
    while (performance.now() - start < seconds * 1000) {
      signal.throwIfAborted();
      const pages = lane.sequence.nextBatch(opts.batch);
      await lane.write(pages, lane.next);
      lane.next += pages.length;
      written += pages.length;
    }
    return written / ((performance.now() - start) / 1000);
  };
  for (const lane of lanes) await slot(lane, opts.seconds / 2); // warm-up, not counted
  let seed = SEED;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let round = 0; round < opts.rounds; round++) {
    const order = lanes
      .map((lane) => ({ lane, key: random() }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.lane);
    for (const lane of order) {
      lane.rates.push(await slot(lane, opts.seconds));
      if (process.stderr.isTTY)
        process.stderr.write(
          `round ${round + 1}/${opts.rounds}: ${lane.name}: ${Math.round(lane.rates.at(-1))} pages/s\n`,
        );
    }
  }
  for (const lane of lanes) await lane.check();
  await Promise.all(lanes.map((lane) => lane.close()));
  const rows = lanes.map((lane) => ({
    lane: lane.name,
    kind: lane.kind,
    pagesPerSec: median(lane.rates),
    min: Math.min(...lane.rates),
    max: Math.max(...lane.rates),
    ...(lane.strategyReason ? { strategyReason: lane.strategyReason } : {}),
  }));
  const compare = (kind) => {
    const raw = lanes.filter((l) => l.kind === kind && l.name.startsWith('raw'));
    const best = raw.reduce((a, b) => (median(b.rates) > median(a.rates) ? b : a));
    const pf = lanes.find((l) => l.kind === kind && l.name.startsWith('page file'));
    return {
      kind,
      pageFile: median(pf.rates),
      raw: median(best.rates),
      rawLane: best.name,
      ratio: median(pf.rates.map((rate, round) => rate / best.rates[round])),
      ratioOfMedians: median(pf.rates) / median(best.rates),
      goal: GOAL,
    };
  };
  // The machine's 1-minute load average before and after: how much else was running.
  const load = { before: loadBefore, after: os.loadavg()[0], cpus: os.availableParallelism() };
  return {
    engine: ioEngine(),
    dir,
    config: { pageSize: PAGE_SIZE, ...opts },
    load,
    rows,
    ratios: [compare('doublewrite'), compare('atomic')],
  };
}

function format(report) {
  const n = (x) => Math.round(x).toLocaleString('en-US');
  const lines = [
    `page file vs raw strategies: ${report.config.pages} pages of 16 KiB, random, batches of ${report.config.batch} with one fdatasync per file, ` +
      `${report.config.rounds} rounds of ${report.config.seconds} s per lane; engine ${report.engine.name}; ` +
      `load average ${report.load.before.toFixed(1)} before, ${report.load.after.toFixed(1)} after, on ${report.load.cpus} CPUs`,
    '',
    '| lane | pages/s (rounds) |',
    '| --- | --- |',
    ...report.rows.map((r) => `| ${r.lane} | ${n(r.pagesPerSec)} (${n(r.min)}–${n(r.max)}) |`),
    '',
    ...report.ratios.map(
      (r) =>
        `page file ${r.kind} / ${r.rawLane}: ${r.ratio.toFixed(2)} round by round, ` +
        `${r.ratioOfMedians.toFixed(2)} of the medians (goal >= ${r.goal})${r.ratio >= r.goal ? '' : ': MISSED'}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

const opts = options();
if (process.getuid() !== 0) throw new Error('must run as root: it makes, mounts and unmounts an XFS loop image');
// RAM-backed: lib/'s scratch XFS goes under os.tmpdir().
if (fs.existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';
// Six files, and room for XFS's copy-on-write reservations: three lanes write atomically by software
// copy-on-write, which reserves up to its cowextsize (8x a 16 KiB page) per page in flight.
const bytes = 32 * opts.pages * PAGE_SIZE + 64 * 1024 * 1024;
const report = await withInterrupt((signal) =>
  withScratchXfs(scratchSize(bytes), signal, (dir) => run(dir, opts, signal)),
);
process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : format(report));
