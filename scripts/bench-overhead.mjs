#!/usr/bin/env node
// bench-overhead: what untorn costs on top of the system call it wraps.
//
//   node scripts/bench-overhead.mjs [--rounds N] [--seconds S] [--depth N] [--pages P] [--layers] [--json]
//
//   --rounds N   measured rounds (default 5); each runs every cell once
//   --seconds S  length of one measurement (default 2)
//   --depth N    writes in flight of the async rows (default 4)
//   --pages P    size of the file written, in 16 KB pages (default 4096 = 64 MiB)
//   --layers     also measure untorn's addon called directly and Node's own fs
//   --json       print the raw numbers as JSON instead of Markdown
//
// Runs the same 16 KB pwritev2 loop through a small C program
// (scripts/overhead/pwrite-loop.c) and through untorn
// (scripts/overhead/untorn-loop.mjs), on one preallocated file of a fresh XFS
// on a loop device over an image in /dev/shm. A RAM-backed device makes each
// write cheap (tens of microseconds), so whatever untorn adds per write shows.
// Rows: {atomic, plain} x {one write at a time (sync calls), N in flight}.
// Goal: untorn reaches >= 0.9 of the C program's pages/s in every row.
//
// The machine's own noise is large on small VMs (the same C loop can vary 3x
// between runs): the spread and the per-round ratios are printed so that it
// shows; run on an otherwise idle machine, or with more --rounds.
//
// Needs root (mkfs, mount), mkfs.xfs, a C compiler, and the built library
// (npm run build). Everything it makes is removed at the end, also on error,
// SIGINT, SIGTERM and SIGHUP.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const C_SOURCE = path.join(HERE, 'overhead', 'pwrite-loop.c');
const UNTORN_LOOP = path.join(HERE, 'overhead', 'untorn-loop.mjs');

const PAGE_SIZE = 16384;
const IMAGE_SIZE = '1G';
const GOAL = 0.9;
const MODES = ['atomic', 'plain'];
// What each row measures: the C program and untorn; with --layers also
// untorn's addon called directly and Node's own fs (plain writes only), to
// tell whether a gap is lib/'s, the binding's or Node's thread pool's.
const IMPLS = ['c', 'untorn'];
const LAYERS = ['binding', 'node-fs'];
const NAMES = { c: 'C', untorn: 'untorn', binding: 'binding', 'node-fs': 'node fs' };
const USAGE = 'usage: node scripts/bench-overhead.mjs [--rounds N] [--seconds S] [--depth N] [--pages P] [--layers] [--json]';

class Usage extends Error {}
class Interrupted extends Error {}

// ---------------------------------------------------------------------------
// options and preconditions

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rounds: { type: 'string', default: '5' },
        seconds: { type: 'string', default: '2' },
        depth: { type: 'string', default: '4' },
        pages: { type: 'string', default: '4096' },
        json: { type: 'boolean', default: false },
        layers: { type: 'boolean', default: false },
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
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Usage(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const seconds = Number(values.seconds);
  if (!(seconds >= 0.1 && seconds <= 600)) throw new Usage('--seconds must be a number from 0.1 to 600');
  const opts = { rounds: int('rounds', 1, 1000), seconds, depth: int('depth', 2, 256), pages: int('pages', 1, 65536),
    json: values.json, layers: values.layers };
  // The file must fit the 1 GiB filesystem with room for atomic writes' copy-on-write blocks.
  if (opts.pages * PAGE_SIZE > 512 * 1024 * 1024) throw new Usage('--pages must keep the file within 512 MiB (32768 pages)');
  if (opts.pages < opts.depth) throw new Usage('--pages must be at least --depth');
  return opts;
}

function findProgram(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** Fails with one line when the machine cannot run the benchmark. */
function checkPreconditions() {
  if (process.platform !== 'linux') throw new Error('needs Linux (pwritev2, RWF_ATOMIC, XFS)');
  if (process.getuid() !== 0) throw new Error('must run as root: it makes, mounts and unmounts an XFS loop image');
  const mkfs = findProgram('mkfs.xfs');
  if (!mkfs) throw new Error('mkfs.xfs not found (apt-get install xfsprogs)');
  const cc = findProgram('cc');
  if (!cc) throw new Error('no C compiler "cc" found (apt-get install gcc)');
  let untorn;
  try {
    untorn = createRequire(import.meta.url)(REPO);
  } catch (err) {
    throw new Error(`cannot load untorn from ${REPO} (${err.message.split('\n')[0]}): run npm run build`);
  }
  return { mkfs, cc, untorn };
}

// ---------------------------------------------------------------------------
// what the run makes, and its removal

const made = { buildDir: null, imageDir: null, image: null, mountDir: null, mounted: false };

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function stderrOf(err) {
  return String(err.stderr ?? err.message).trim().split('\n').pop();
}

/** Undoes whatever `made` records; synchronous, never throws, says what it could not undo. */
function cleanup() {
  const warn = (what) => process.stderr.write(`bench-overhead: cleanup: ${what}\n`);
  if (made.mounted) {
    // A child killed a moment ago may still hold the file: retry a little before a lazy unmount.
    for (let attempt = 1; made.mounted; attempt++) {
      try {
        run('umount', [made.mountDir]);
        made.mounted = false;
      } catch (err) {
        if (attempt < 20) { sleepSync(250); continue; }
        try {
          run('umount', ['-l', made.mountDir]);
          made.mounted = false;
          warn(`${made.mountDir} was busy (${stderrOf(err)}): lazily unmounted`);
        } catch (lazyErr) {
          warn(`cannot unmount ${made.mountDir}: ${stderrOf(lazyErr)}`);
          break;
        }
      }
    }
  }
  // mount -o loop sets autoclear, so unmounting freed the loop device; this
  // catches one left by a mount that failed half-way.
  if (made.image) {
    try {
      for (const line of run('losetup', ['-j', made.image]).split('\n')) {
        const dev = line.split(':')[0];
        if (dev.startsWith('/dev/loop')) run('losetup', ['-d', dev]);
      }
    } catch (err) {
      warn(`cannot detach the loop device of ${made.image}: ${stderrOf(err)}`);
    }
  }
  for (const key of ['imageDir', 'buildDir', 'mountDir']) {
    const dir = made[key];
    if (!dir || (key === 'mountDir' && made.mounted)) continue; // never rm -r into a mounted filesystem
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      made[key] = null;
    } catch (err) {
      warn(`cannot remove ${dir}: ${err.message}`);
    }
  }
}

// A signal only marks the run as interrupted and stops the running child; the
// main flow then throws Interrupted and its finally block does the cleanup.
let interrupted = null;
let runningChild = null;

function onSignal(signal) {
  if (interrupted) return;
  interrupted = signal;
  process.stderr.write(`bench-overhead: ${signal}: stopping and cleaning up\n`);
  runningChild?.kill('SIGTERM');
}

function checkInterrupted() {
  if (interrupted) throw new Interrupted(interrupted);
}

// ---------------------------------------------------------------------------
// setup

function compile(cc) {
  made.buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-overhead-build-'));
  const binary = path.join(made.buildDir, 'pwrite-loop');
  try {
    run(cc, ['-O2', '-pthread', '-Wall', '-Wextra', '-o', binary, C_SOURCE]);
  } catch (err) {
    throw new Error(`cannot compile ${C_SOURCE}: ${stderrOf(err)}`);
  }
  return binary;
}

/** A fresh XFS (mkfs defaults: 4K blocks, reflink) on a loop device over a RAM-backed image. */
function makeFilesystem(mkfs) {
  const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  made.imageDir = fs.mkdtempSync(path.join(shm, 'untorn-overhead-img-'));
  made.image = path.join(made.imageDir, 'xfs.img');
  made.mountDir = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-overhead-mnt-'));
  try {
    run('truncate', ['-s', IMAGE_SIZE, made.image]);
    run(mkfs, ['-q', '-f', made.image]);
    run('mount', ['-o', 'loop', made.image, made.mountDir]);
    made.mounted = true;
  } catch (err) {
    throw new Error(`cannot make the XFS image: ${err.cmd ?? ''}: ${stderrOf(err)}`);
  }
}

/** The file every measurement writes: fully written and flushed, so the plain loops allocate nothing. */
function preallocate(file, pages) {
  const chunk = Buffer.alloc(64 * PAGE_SIZE, 'p');
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < pages; done += 64) {
      const n = Math.min(64, pages - done);
      fs.writeSync(fd, chunk, 0, n * PAGE_SIZE, done * PAGE_SIZE);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function checkAtomicSupport(untorn, file) {
  const info = untorn.statAtomicSync(file);
  if (!info.supported || PAGE_SIZE < info.unitMin || PAGE_SIZE > info.unitMax) {
    throw new Error(`the XFS made here offers no ${PAGE_SIZE}-byte RWF_ATOMIC writes (statx: supported=${info.supported}, ` +
      `unit ${info.unitMin}..${info.unitMax}; kernel ${os.release()}): XFS software atomic writes need Linux 6.16+`);
  }
  return info;
}

// ---------------------------------------------------------------------------
// measuring

/** One measurement in its own process; resolves to {writes, seconds, pagesPerSec}. */
function measure(env, impl, mode, depth, seconds) {
  checkInterrupted();
  const args = [env.file, '--mode', mode, '--depth', String(depth), '--seconds', String(seconds),
    '--page-size', String(PAGE_SIZE), '--pages', String(env.pages)];
  // Node's async writes run on libuv's pool (4 threads by default). Give it
  // exactly one thread per write in flight, as the C program has: fewer would
  // cap the writes in flight, and idle extra threads are not free either (on
  // 2 CPUs, 8 pool threads for 4 writes in flight measured 20-45% slower than 4).
  const [command, argv, childEnv] = impl === 'c'
    ? [env.cBinary, args, process.env]
    : [process.execPath, [UNTORN_LOOP, ...args, '--via', impl], { ...process.env, UV_THREADPOOL_SIZE: String(depth) }];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    runningChild = child;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    child.on('error', (err) => { runningChild = null; reject(err); });
    child.on('close', (code, signal) => {
      runningChild = null;
      if (interrupted) return reject(new Interrupted(interrupted));
      const what = `${NAMES[impl]} ${mode} depth ${depth}`;
      if (code !== 0) return reject(new Error(`${what} failed (${signal ?? `exit code ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`));
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

function rows(depth, layers) {
  return MODES.flatMap((mode) => [1, depth].map((d) => ({
    mode, depth: d,
    impls: layers ? [...IMPLS, ...LAYERS.filter((l) => l !== 'node-fs' || mode === 'plain')] : IMPLS,
  })));
}

/**
 * A warm-up of every cell, then `rounds` rounds of every cell. Within a round
 * C and untorn of one row run back to back, so they meet the same machine and
 * the same state of the file; which goes first alternates between rounds.
 */
async function benchmark(env, opts, progress) {
  const results = rows(opts.depth, opts.layers).map((r) => ({ ...r, samples: Object.fromEntries(r.impls.map((i) => [i, []])) }));
  const warmupSeconds = Math.min(0.5, opts.seconds);
  progress('warm-up');
  for (const r of results) for (const impl of r.impls) await measure(env, impl, r.mode, r.depth, warmupSeconds);
  for (let round = 0; round < opts.rounds; round++) {
    progress(`round ${round + 1}/${opts.rounds}`);
    for (const r of results) {
      const order = round % 2 === 0 ? r.impls : [...r.impls].reverse();
      for (const impl of order) r.samples[impl].push(await measure(env, impl, r.mode, r.depth, opts.seconds));
    }
  }
  return { warmupSeconds, rows: results };
}

function median(sorted) {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summarize(samples) {
  const rates = samples.map((s) => s.pagesPerSec).sort((a, b) => a - b);
  return { median: median(rates), min: rates[0], max: rates[rates.length - 1], samples };
}

// ---------------------------------------------------------------------------
// reporting

function cpuModel() {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} (${cpus.length} CPUs)`;
}

function commandLine() {
  const script = path.relative(process.cwd(), process.argv[1]) || process.argv[1];
  return ['node', script, ...process.argv.slice(2)].join(' ');
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const cell = ({ median, min, max }) => `${fmt(median)} (${fmt(min)}–${fmt(max)})`;

/**
 * Where the gap is: untorn against its own addon called directly (lib/'s
 * share), and the addon against Node's own fs through the same thread pool
 * (the binding's share; what is left is Node's, against C).
 */
function layersTable(rows) {
  const ratio = (a, b) => (a && b ? (a.median / b.median).toFixed(2) : '—');
  const median = (x) => (x ? fmt(x.median) : '— (no RWF_ATOMIC)');
  const lines = [
    'Layers, median pages/s:',
    '',
    '| write | in flight | C | untorn | binding | node fs | untorn / binding | binding / node fs | node fs / C |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const fsCell = r['node-fs'];
    lines.push(`| ${r.write} | ${r.depth} | ${fmt(r.c.median)} | ${fmt(r.untorn.median)} | ${fmt(r.binding.median)} | ` +
      `${median(fsCell)} | ${ratio(r.untorn, r.binding)} | ${ratio(r.binding, fsCell)} | ${ratio(fsCell, r.c)} |`);
  }
  return lines;
}

function markdown(report) {
  const { environment: e, config: c } = report;
  const lines = [
    `Linux ${e.kernel} · node ${e.node} · ${e.cpu} · XFS (mkfs defaults) on a loop device over ${e.image} (${IMAGE_SIZE}, RAM) · ` +
      `${c.pageSize}-byte pwritev2 over ${c.pages} pages, no fsync · median (min–max) of ${c.rounds} rounds × ${c.seconds} s, ` +
      `UV_THREADPOOL_SIZE = writes in flight · load average ${e.loadAverage.before.toFixed(2)} before, ` +
      `${e.loadAverage.after.toFixed(2)} after · command: \`${e.command}\``,
    '',
    '| write | in flight | C pages/s | untorn pages/s | untorn / C |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of report.rows) {
    const flight = r.depth === 1 ? '1 (sync calls)' : `${r.depth} (async)`;
    const [lo, hi] = [Math.min(...r.roundRatios), Math.max(...r.roundRatios)].map((x) => x.toFixed(2));
    const ratio = `${r.ratio.toFixed(2)}${r.ratio < GOAL ? ' ✗' : ''}`;
    lines.push(`| ${r.write} | ${flight} | ${cell(r.c)} | ${cell(r.untorn)} | ${ratio} (rounds ${lo}–${hi}) |`);
  }
  const missed = report.rows.filter((r) => r.ratio < GOAL);
  lines.push('', missed.length === 0
    ? `Goal untorn >= ${GOAL} × C: met in every row.`
    : `Goal untorn >= ${GOAL} × C: NOT met in ${missed.map((r) => `${r.write}/${r.depth}`).join(', ')}.`);
  if (report.config.layers) lines.push('', ...layersTable(report.rows));
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const { mkfs, cc, untorn } = checkPreconditions();
  const progress = (what) => {
    if (process.stderr.isTTY) process.stderr.write(`bench-overhead: ${what}\n`);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal);
  try {
    progress('compiling the C loop, making the XFS image');
    const cBinary = compile(cc);
    checkInterrupted();
    makeFilesystem(mkfs);
    checkInterrupted();
    const file = path.join(made.mountDir, 'pages');
    preallocate(file, opts.pages);
    const info = checkAtomicSupport(untorn, file);
    checkInterrupted();

    const env = { cBinary, file, pages: opts.pages };
    // Other work on the machine shows in the numbers: say how busy it was.
    const loadBefore = os.loadavg()[0];
    const { warmupSeconds, rows: measured } = await benchmark(env, opts, progress);
    const report = {
      environment: {
        kernel: os.release(), node: process.version, cpu: cpuModel(), image: made.image, command: commandLine(),
        statx: info, loadAverage: { before: loadBefore, after: os.loadavg()[0] },
      },
      config: {
        pageSize: PAGE_SIZE, pages: opts.pages, rounds: opts.rounds, seconds: opts.seconds, warmupSeconds,
        depth: opts.depth, layers: opts.layers, goal: GOAL,
      },
      rows: measured.map((r) => {
        const summaries = Object.fromEntries(r.impls.map((impl) => [impl, summarize(r.samples[impl])]));
        // C and untorn of one round ran back to back: their ratio shows how much of the spread is the machine's.
        const roundRatios = r.samples.untorn.map((s, i) => s.pagesPerSec / r.samples.c[i].pagesPerSec);
        return {
          write: r.mode, depth: r.depth, uvThreadpoolSize: r.depth, ...summaries,
          ratio: summaries.untorn.median / summaries.c.median, roundRatios,
        };
      }),
    };
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : markdown(report));
  } finally {
    cleanup();
  }
}

main().catch((err) => {
  if (err instanceof Interrupted) {
    process.exitCode = 128 + (os.constants.signals[err.message] ?? 15);
    return;
  }
  process.stderr.write(`bench-overhead: ${err.message}\n`);
  if (err instanceof Usage) process.stderr.write(`${USAGE}\n`);
  process.exitCode = err instanceof Usage ? 2 : 1;
});
