#!/usr/bin/env node
// bench-overhead: what untorn costs on top of the writes it makes, against C++
// loops doing the same writes, on one preallocated file of a fresh XFS on a
// loop device over /dev/shm (a RAM-backed device: each write is cheap, so
// whatever untorn adds shows).
//
//   node scripts/bench-overhead.mjs [--rounds N] [--seconds S] [--pages P] [--json]
//
//   --rounds N   measured rounds (default 5); each runs every cell once
//   --seconds S  length of one measurement (default 2)
//   --pages P    size of the file written, in 16 KB pages (default 4096 = 64 MiB)
//   --json       print the raw numbers as JSON instead of Markdown
//
// Rows, for atomic and for plain 16 KB writes (untorn: scripts/overhead/untorn-loop.mjs;
// references: scripts/overhead/write-loop.cc, built here):
//   depth 1        untorn's sync calls              vs C++, one thread of blocking pwritev2
//   depth 4        4 async writes in flight        vs C++ io_uring at depth 4 (and the same loop
//                                                     waiting on the eventfd as untorn must; 4 threads)
//   depth 32       32 async writes in flight       vs C++ with 8 threads (and io_uring at 32)
//   batch 64       writeBatch of 64 + fdatasync    vs C++ with 4 threads (and an io_uring batch)
// Goals, medians of the per-round ratios: depth 1 >= 0.95 of one thread;
// depth 4 >= 0.8 of io_uring at 4; depth 32 >= 0.95 of 8 threads; batch >= 1.1 of 4 threads.
// Every cell runs in its own process; within a round a row's cells run back to
// back, in an order that rotates between rounds, so each ratio compares runs
// that met the same machine.
//
// Needs root (mkfs, mount), mkfs.xfs, a C++ compiler and the built library
// (npm run build). Everything it makes is removed at the end, also on
// SIGINT, SIGTERM and SIGHUP (lib/'s --scratch filesystem and Ctrl-C handling).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const USAGE = 'usage: node scripts/bench-overhead.mjs [--rounds N] [--seconds S] [--pages P] [--json]';
const PAGE_SIZE = 16384;
const GiB = 1024 ** 3;

class Usage extends Error {}

function load() {
  const require = createRequire(import.meta.url);
  try {
    return {
      untorn: require(REPO),
      ...require(path.join(REPO, 'dist/bench/scratch.js')),
      ...require(path.join(REPO, 'dist/bench/stats.js')),
      ...require(path.join(REPO, 'dist/cli/interrupt.js')),
    };
  } catch (err) {
    throw new Error(`cannot load untorn from ${REPO} (${err.message.split('\n')[0]}): run npm run build`, {
      cause: err,
    });
  }
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rounds: { type: 'string', default: '5' },
        seconds: { type: 'string', default: '2' },
        pages: { type: 'string', default: '4096' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new Usage(err.message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, min, max) => {
    const n = Number(values[name]);
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new Usage(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const seconds = Number(values.seconds);
  if (!(seconds >= 0.1 && seconds <= 600)) throw new Usage('--seconds must be a number from 0.1 to 600');
  // The file must leave room on the 1 GiB filesystem for atomic writes' copy-on-write blocks.
  return { rounds: int('rounds', 1, 1000), seconds, pages: int('pages', 64, 32768), json: values.json };
}

// A cell: one loop, in its own process. `args` go to either program after FILE.
const untornCell = (mode, extra) => ({ impl: 'untorn', mode, args: extra });
const cxxCell = (mode, engine, extra) => ({ impl: `C++ ${engine}`, mode, args: ['--engine', engine, ...extra] });

/** Every row of one mode: untorn's cell, the reference the goal names, and the other reference. */
function rows(mode) {
  return [
    {
      name: 'depth 1 (sync calls)',
      goal: 0.95,
      untorn: untornCell(mode, ['--depth', '1']),
      reference: cxxCell(mode, 'threads', ['--depth', '1']),
      others: [],
    },
    {
      name: 'depth 4 (async)',
      goal: 0.8,
      untorn: untornCell(mode, ['--depth', '4']),
      reference: cxxCell(mode, 'uring', ['--depth', '4']),
      others: [
        cxxCell(mode, 'uring', ['--depth', '4', '--wait', 'eventfd']),
        cxxCell(mode, 'threads', ['--depth', '4']),
      ],
    },
    {
      name: 'depth 32 (async)',
      goal: 0.95,
      untorn: untornCell(mode, ['--depth', '32']),
      reference: cxxCell(mode, 'threads', ['--depth', '8']),
      others: [cxxCell(mode, 'uring', ['--depth', '32'])],
    },
    {
      name: 'batch 64 + fdatasync',
      goal: 1.1,
      untorn: untornCell(mode, ['--batch', '64']),
      reference: cxxCell(mode, 'threads', ['--depth', '4', '--batch', '64']),
      others: [cxxCell(mode, 'uring', ['--depth', '64', '--batch', '64'])],
    },
  ].map((r) => ({ ...r, mode }));
}

const describeCell = (c) =>
  `${c.impl} ${c.args.filter((a) => !['--engine', 'threads', 'uring', '--wait'].includes(a)).join(' ')}`;

/** Runs one cell for `seconds`; resolves to {writes, seconds, pagesPerSec}. */
function measure(env, cell, seconds, signal) {
  const common = [
    env.file,
    '--mode',
    cell.mode,
    ...cell.args,
    '--seconds',
    String(seconds),
    '--page-size',
    String(PAGE_SIZE),
    '--pages',
    String(env.pages),
  ];
  const [command, argv] =
    cell.impl === 'untorn'
      ? [process.execPath, [path.join(HERE, 'overhead', 'untorn-loop.mjs'), ...common]]
      : [env.binary, common];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    child.on('error', (err) => reject(signal.aborted ? signal.reason : err));
    child.on('close', (code, sig) => {
      if (signal.aborted) return reject(signal.reason);
      const what = `${describeCell(cell)} (${cell.mode})`;
      if (code !== 0)
        return reject(
          new Error(`${what} failed (${sig ?? `exit code ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`),
        );
      try {
        const result = JSON.parse(stdout.trim().split('\n').pop());
        if (!(result.writes > 0 && result.seconds > 0)) throw new Error('no writes');
        resolve(result);
      } catch (err) {
        reject(new Error(`${what} printed no result (${err.message}): ${stdout.trim()}`));
      }
    });
  });
}

async function benchmark(env, opts, signal, progress) {
  const all = ['atomic', 'plain']
    .flatMap(rows)
    .map((r) => ({ ...r, cells: [r.untorn, r.reference, ...r.others], samples: [] }));
  const warmup = Math.min(0.5, opts.seconds);
  progress('warm-up');
  for (const r of all) for (const cell of r.cells) await measure(env, cell, warmup, signal);
  for (let round = 0; round < opts.rounds; round++) {
    progress(`round ${round + 1}/${opts.rounds}`);
    for (const r of all) {
      const k = round % r.cells.length;
      const order = [...r.cells.slice(k), ...r.cells.slice(0, k)];
      const sample = new Map();
      for (const cell of order) sample.set(cell, await measure(env, cell, opts.seconds, signal));
      r.samples.push(r.cells.map((cell) => sample.get(cell).pagesPerSec));
    }
  }
  return all;
}

function summarize(rowsMeasured, median) {
  return rowsMeasured.map((r) => {
    const perCell = r.cells.map((cell, i) => {
      const rates = r.samples.map((s) => s[i]);
      return {
        cell: describeCell(cell),
        median: median(rates),
        min: Math.min(...rates),
        max: Math.max(...rates),
        rates,
      };
    });
    // Ratios within each round: the machine's drift hits both sides of one.
    const ratios = r.samples.map((s) => s[0] / s[1]);
    const ratio = median(ratios);
    return {
      mode: r.mode,
      row: r.name,
      goal: r.goal,
      ratio,
      met: ratio >= r.goal,
      ratioRange: { min: Math.min(...ratios), max: Math.max(...ratios) },
      untorn: perCell[0],
      reference: perCell[1],
      others: perCell.slice(2),
      othersRatio: r.others.map((_, j) => median(r.samples.map((s) => s[0] / s[2 + j]))),
    };
  });
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const two = (x) => x.toFixed(2);

function markdown(report) {
  const { environment: e, config: c } = report;
  const lines = [
    `Linux ${e.kernel} · node ${e.node} · ${e.cpu} · engine ${e.engine} · XFS on a loop device over /dev/shm · ` +
      `${c.pageSize}-byte writes over ${c.pages} pages · medians of ${c.rounds} interleaved rounds × ${c.seconds} s · ` +
      `load average ${e.loadAverage.before.toFixed(2)} before, ${e.loadAverage.after.toFixed(2)} after · ` +
      `command: \`${e.command}\``,
    '',
    '| write | row | untorn pages/s | reference (goal) | reference pages/s | untorn / reference | goal | also vs |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of report.rows) {
    const also = r.others.map((o, j) => `${o.cell}: ${fmt(o.median)} (${two(r.othersRatio[j])})`).join('; ');
    lines.push(
      `| ${r.mode} | ${r.row} | ${fmt(r.untorn.median)} | ${r.reference.cell} | ${fmt(r.reference.median)} | ` +
        `**${two(r.ratio)}** (rounds ${two(r.ratioRange.min)}–${two(r.ratioRange.max)}) | ≥ ${r.goal} ${r.met ? '✓' : '✗'} | ${also || '—'} |`,
    );
  }
  const missed = report.rows.filter((r) => !r.met);
  lines.push(
    '',
    missed.length === 0
      ? 'Every goal met.'
      : `Goals missed: ${missed.map((r) => `${r.mode} ${r.row} (${two(r.ratio)} < ${r.goal})`).join(', ')}.`,
  );
  return `${lines.join('\n')}\n`;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const lib = load();
  if (process.getuid() !== 0) throw new Error('must run as root: it makes, mounts and unmounts an XFS loop image');
  const cxx = (await lib.findProgram('c++')) ?? (await lib.findProgram('g++'));
  if (!cxx) throw new Error('no C++ compiler (c++ or g++) found (apt-get install g++)');
  const progress = (what) => process.stderr.isTTY && process.stderr.write(`bench-overhead: ${what}\n`);
  // RAM-backed: lib/'s scratch XFS goes under os.tmpdir().
  if (fs.existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';

  const build = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-overhead-build-'));
  try {
    const binary = path.join(build, 'write-loop');
    progress('compiling the C++ references');
    await promisify(execFile)(cxx, [
      '-O2',
      '-std=c++17',
      '-pthread',
      '-Wall',
      '-I',
      path.join(REPO, 'native'),
      '-o',
      binary,
      path.join(HERE, 'overhead', 'write-loop.cc'),
      path.join(REPO, 'native', 'ring.cc'),
    ]).catch((err) => {
      throw new Error(
        `cannot compile the C++ references: ${
          String(err.stderr || err.message)
            .trim()
            .split('\n')[0]
        }`,
      );
    });
    const report = await lib.withInterrupt((signal) =>
      lib.withScratchXfs(GiB, signal, async (dir) => {
        const file = path.join(dir, 'pages');
        // Fully written and durable: the plain writes then allocate nothing.
        const f = await lib.untorn.open(file, 'w+');
        const chunk = lib.untorn.allocAligned(64 * PAGE_SIZE).fill(112);
        for (let done = 0; done < opts.pages; done += 64)
          await f.write(chunk.subarray(0, Math.min(64, opts.pages - done) * PAGE_SIZE), done * PAGE_SIZE);
        await f.sync();
        await f.close();
        const info = lib.untorn.statAtomicSync(file);
        if (!info.supported || PAGE_SIZE < info.unitMin || PAGE_SIZE > info.unitMax) {
          throw new Error(
            `this XFS offers no ${PAGE_SIZE}-byte RWF_ATOMIC writes (kernel ${os.release()}; XFS software atomic writes need 6.16+)`,
          );
        }
        const loadBefore = os.loadavg()[0];
        const measured = await benchmark({ binary, file, pages: opts.pages }, opts, signal, progress);
        return {
          environment: {
            kernel: os.release(),
            node: process.version,
            cpu: `${os.cpus()[0]?.model.trim()} (${os.cpus().length} CPUs)`,
            engine: lib.untorn.ioEngine().name,
            statx: info,
            loadAverage: { before: loadBefore, after: os.loadavg()[0] },
            command: [
              'node',
              path.relative(process.cwd(), process.argv[1]) || process.argv[1],
              ...process.argv.slice(2),
            ].join(' '),
          },
          config: { pageSize: PAGE_SIZE, pages: opts.pages, rounds: opts.rounds, seconds: opts.seconds },
          rows: summarize(measured, lib.median),
        };
      }),
    );
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : markdown(report));
  } finally {
    fs.rmSync(build, { recursive: true, force: true });
  }
}

main().catch((err) => {
  if (err?.name === 'Interrupted') {
    process.exitCode = 128 + (os.constants.signals[err.signal] ?? 15);
    return;
  }
  process.stderr.write(`bench-overhead: ${err.message}\n`);
  if (err instanceof Usage) process.stderr.write(`${USAGE}\n`);
  process.exitCode = err instanceof Usage ? 2 : 1;
});
