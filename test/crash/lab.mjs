// untorn crash lab: power loss simulated at the block layer.
//
//   record   a scenario's writer runs on XFS on a loop device whose backing
//            file is served by the recorder (FUSE): every block write, flush
//            and mark lands in a log, in order.
//   states   crash states are built from the log (see docs/crash-lab.md).
//   replay   each state is restored onto a copy of the base image, mounted
//            (XFS log recovery runs) and every page of the test file is
//            classified from its stamps: ok, torn, lost or corrupt.
//
// Everything this module mounts or attaches is released by release(), which
// also runs on process exit and on SIGINT/SIGTERM/SIGHUP.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { SECTOR, readPayload, readSector, stampsIn } from './stamp.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
export const BUILD_DIR = path.join(HERE, 'build');
const MiB = 1024 * 1024;

/** Size of every filesystem image (base images and replay partitions). */
export const IMAGE_SIZE = 64 * MiB;
/** Pages are 16 KiB on both filesystems. */
export const PAGE_SIZE = 16384;
export const PAGES = 32;

// mkfs.xfs refuses filesystems under 300 MB unless these are set (fstests'
// escape hatch); a 64 MiB image keeps every copy and restore cheap.
const MKFS_ENV = { ...process.env, TEST_DIR: '/tmp', TEST_DEV: '/dev/null', QA_CHECK_FS: '1' };

/**
 * The PGlite scenarios (group 'pglite'): the workload the writer runs
 * (writer.mjs, pglite-run) and the size of their images (a PGlite data
 * directory is about 45 MB, a 16 MiB WAL segment of it).
 */
export const PGLITE = {
  accounts: 2000,
  balance: 1000,
  transactions: 60,
  checkpointEvery: 10,
  imageSize: 192 * MiB,
};
/** A relation file of the data directory (every fork, every segment), as lib/pglite/names.ts has it. */
const PG_RELATION = /^pg\/(?:base\/\d+|global)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;
const PG_WAL = /^pg\/pg_wal\/[0-9A-F]{24}$/;
const PG_JOURNAL = 'pg/untorn.journal';

/** Pages per doublewrite batch of the page file scenarios (a call of six pages may span two). */
const PAGEFILE_BATCH_PAGES = 4;

/**
 * The journal scenarios' files, all written through one journal (`journal`
 * in the same directory): file ids 1 to 3 in their stamps, two of fixed size
 * and one that grows from 2 to at most 14 pages during the run. The writer
 * and the checker name a page by its index over all files, in this order.
 */
export const JOURNAL_FILES = [
  { name: 'a.db', id: 1, pages: 24 },
  { name: 'b.db', id: 2, pages: 8 },
  { name: 'c.db', id: 3, pages: 2, grows: 14 },
];

/**
 * Every page a scenario's checker reads, by index: its file (name and stamp
 * id), its page in that file, and whether it is fresh (not in the base: it
 * may be absent, or zeros, until a write of it was acknowledged durable).
 */
export function pageLayout(scenario) {
  if (scenario.group !== 'journal')
    return Array.from({ length: PAGES }, (_, page) => ({ name: 'data', file: 0, page, fresh: false }));
  return JOURNAL_FILES.flatMap((f) =>
    Array.from({ length: f.grows ?? f.pages }, (_, page) => ({
      name: f.name,
      file: f.id,
      page,
      fresh: page >= f.pages,
    })),
  );
}

/**
 * The scenarios that are recorded: atomic ones (the proof) and plain ones
 * (the control), group 'classic'; page files by strategy, group 'pagefile'
 * (atomic on XFS only: ext4 on a loop device has no atomic writes).
 */
export const RECORDED = [];
for (const api of ['atomic', 'plain']) {
  for (const fsName of ['xfs4k', 'xfs16k']) {
    for (const layout of ['contiguous', 'fragmented']) {
      RECORDED.push({
        name: `${api} ${fsName} ${layout}`,
        group: 'classic',
        api,
        fs: fsName,
        fsType: 'xfs',
        layout,
        blockSize: fsName === 'xfs4k' ? 4096 : 16384,
      });
    }
  }
}
for (const [strategy, fsName] of [
  ['doublewrite', 'xfs4k'],
  ['atomic', 'xfs4k'],
  ['unprotected', 'xfs4k'],
  ['doublewrite', 'ext4'],
  ['unprotected', 'ext4'],
]) {
  RECORDED.push({
    name: `pagefile ${strategy} ${fsName}`,
    group: 'pagefile',
    api: 'pagefile',
    strategy,
    fs: fsName,
    fsType: fsName === 'ext4' ? 'ext4' : 'xfs',
    layout: 'pagefile',
    blockSize: 4096,
  });
}

// Journals: doublewrite (XFS, ext4) and atomic (XFS's software path) must
// keep every page whole; the same writes without a journal (plain O_DIRECT
// in place, the control) must tear.
for (const [strategy, fsName] of [
  ['doublewrite', 'xfs4k'],
  ['atomic', 'xfs4k'],
  ['doublewrite', 'ext4'],
  ['plain', 'xfs4k'],
]) {
  RECORDED.push({
    name: strategy === 'plain' ? `unjournaled plain ${fsName}` : `journal ${strategy} ${fsName}`,
    group: 'journal',
    api: 'journal',
    strategy,
    fs: fsName,
    fsType: fsName === 'ext4' ? 'ext4' : 'xfs',
    layout: 'journal',
    blockSize: 4096,
  });
}

// PGlite: openPGlite (relation pages through the journal, full_page_writes
// off) must lose nothing and tear nothing, and so must openPGlite with
// strategy 'atomic' (relation pages RWF_ATOMIC in place: XFS's software path
// here, no journal); PGlite's NodeFS as shipped (fsync off) must lose
// acknowledged transactions; UntornFS without its journal (full_page_writes
// off, fsync real) must show torn pages.
const PGLITE_MODES = {
  untorn: 'pglite openPGlite xfs4k',
  atomic: 'pglite openPGlite atomic xfs4k',
  nodefs: 'pglite NodeFS xfs4k',
  unjournaled: 'pglite unjournaled xfs4k',
};
for (const [pglite, name] of Object.entries(PGLITE_MODES)) {
  RECORDED.push({
    name,
    group: 'pglite',
    api: 'pglite',
    pglite,
    fs: 'xfs4k',
    fsType: 'xfs',
    layout: 'pglite',
    blockSize: 4096,
    imageSize: PGLITE.imageSize,
  });
}

/**
 * What is replayed: every recorded scenario with its flushes honoured, and
 * the atomic logs once more as a lying disk (flushes ignored).
 */
export const SCENARIOS = [
  ...RECORDED.filter((r) => r.group === 'classic').map((r) => ({
    name: r.name,
    group: r.group,
    kind: r.api === 'atomic' ? 'atomic' : 'plain',
    recording: r.name,
  })),
  ...RECORDED.filter((r) => r.api === 'atomic').map((r) => ({
    name: `lying-disk ${r.name}`,
    group: r.group,
    kind: 'lying',
    recording: r.name,
  })),
  // Page files: doublewrite and atomic must recover everything ('pagefile');
  // unprotected (the control) must detect every torn page ('pagefile-control').
  ...RECORDED.filter((r) => r.group === 'pagefile').map((r) => ({
    name: r.name,
    group: r.group,
    kind: r.strategy === 'unprotected' ? 'pagefile-control' : 'pagefile',
    recording: r.name,
  })),
  // The checker's control: a doublewrite page file on a lying disk must show lost pages.
  ...RECORDED.filter((r) => r.name === 'pagefile doublewrite xfs4k').map((r) => ({
    name: `lying-disk ${r.name}`,
    group: r.group,
    kind: 'pagefile-lying',
    recording: r.name,
  })),
  // Journals: every page whole ('journal'); without a journal the pages tear ('journal-control').
  ...RECORDED.filter((r) => r.group === 'journal').map((r) => ({
    name: r.name,
    group: r.group,
    kind: r.strategy === 'plain' ? 'journal-control' : 'journal',
    recording: r.name,
  })),
  // The journal checker's control: on a lying disk it must see acknowledged pages lost.
  ...RECORDED.filter((r) => r.name === 'journal doublewrite xfs4k').map((r) => ({
    name: `lying-disk ${r.name}`,
    group: r.group,
    kind: 'journal-lying',
    recording: r.name,
  })),
];

// PGlite: the proof ('pglite') and its two controls.
SCENARIOS.push(
  ...RECORDED.filter((r) => r.group === 'pglite').map((r) => ({
    name: r.name,
    group: r.group,
    kind: r.pglite === 'untorn' || r.pglite === 'atomic' ? 'pglite' : `pglite-${r.pglite}`,
    recording: r.name,
  })),
);

/**
 * With --tear-metadata: the atomic logs once more, with XFS's metadata
 * writeback (writes outside the log that carry no stamps) torn as well.
 * Reported, not judged: see "Limits" in docs/crash-lab.md.
 */
export const METADATA_TEAR_SCENARIOS = RECORDED.filter((r) => r.api === 'atomic').map((r) => ({
  name: `torn-metadata ${r.name}`,
  group: r.group,
  kind: 'metatear',
  recording: r.name,
}));

/** Share of the states each kind gets. */
const WEIGHTS = {
  atomic: 0.6,
  plain: 0.25,
  lying: 0.15,
  metatear: 0.15,
  pagefile: 0.45,
  'pagefile-control': 0.15,
  'pagefile-lying': 0.05,
  journal: 0.45,
  'journal-control': 0.15,
  'journal-lying': 0.05,
  pglite: 0.8,
  'pglite-nodefs': 0.08,
  'pglite-unjournaled': 0.12,
};

// ---------------------------------------------------------------------------
// small utilities

function oneLine(s) {
  return String(s)
    .replace(/\s*\n\s*/g, '; ')
    .trim();
}

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
function which(program) {
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH]) {
    const p = path.join(dir, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function run(program, args, options = {}) {
  const exe = which(program) ?? program;
  try {
    return execFileSync(exe, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      ...options,
    });
  } catch (e) {
    const stderr = oneLine(e.stderr ?? '').slice(0, 400);
    throw new Error(
      `${program} ${args.join(' ')} failed (${e.status != null ? `exit ${e.status}` : (e.signal ?? e.message)})${stderr ? `: ${stderr}` : ''}`,
      { cause: e },
    );
  }
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** xorshift32: every random choice of the lab comes from a seed. */
export function rng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  return next;
}

function hashString(s) {
  let h = 2166136261;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h;
}

// ---------------------------------------------------------------------------
// prerequisites and the C tools

/** What this machine lacks for the lab, one line each (empty: ready). */
export function missingPrerequisites() {
  const missing = [];
  if (process.getuid?.() !== 0) missing.push('not root (the lab mounts filesystems and attaches loop devices)');
  if (!fs.existsSync('/dev/fuse')) missing.push('/dev/fuse does not exist (FUSE)');
  if (!fs.existsSync('/dev/loop-control')) missing.push('/dev/loop-control does not exist (loop devices)');
  for (const [program, pkg] of [
    ['cc', 'gcc'],
    ['pkg-config', 'pkg-config'],
    ['fusermount3', 'fuse3'],
    ['mkfs.xfs', 'xfsprogs'],
    ['mkfs.ext4', 'e2fsprogs'],
    ['debugfs', 'e2fsprogs'],
    ['filefrag', 'e2fsprogs'],
    ['xfs_db', 'xfsprogs'],
    ['xfs_io', 'xfsprogs'],
    ['losetup', 'mount'],
    ['mount', 'mount'],
    ['umount', 'mount'],
    ['fallocate', 'util-linux'],
    ['partx', 'util-linux'],
  ]) {
    if (!which(program)) missing.push(`${program} not found (apt-get install ${pkg})`);
  }
  if (which('pkg-config') && spawnSync(which('pkg-config'), ['--exists', 'fuse3']).status !== 0) {
    missing.push('pkg-config knows no fuse3 (apt-get install libfuse3-dev)');
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) missing.push('dist/index.js is not built (npm run compile)');
  return missing;
}

/** Compiles the recorder and statectl into test/crash/build/ (not committed) when their sources changed. */
export function buildTools() {
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  const fuseFlags = run('pkg-config', ['--cflags', '--libs', 'fuse3']).trim().split(/\s+/);
  const tools = {
    recorder: ['recorder.c', fuseFlags],
    statectl: ['statectl.c', []],
  };
  const out = {};
  for (const [name, [source, flags]] of Object.entries(tools)) {
    const src = path.join(HERE, source);
    const bin = path.join(BUILD_DIR, name);
    const stale = !fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs;
    if (stale) {
      run('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin + '.tmp', src, ...flags]);
      fs.renameSync(bin + '.tmp', bin);
    }
    out[name] = bin;
  }
  return out;
}

// ---------------------------------------------------------------------------
// resources: everything taken is released, in order, also on failure/Ctrl-C

const held = {
  /** child processes to kill (writers) */
  children: new Set(),
  /** mount points (XFS), released first */
  mounts: [],
  /** loop devices, released second */
  loops: [],
  /** FUSE mount points, released last; with their recorder process */
  fuse: [],
  /** statectl processes (each unmounts its own mount on end of input) */
  workers: new Set(),
  /** PGlite checkers (pglite-checker.mjs), killed before anything is unmounted */
  checkers: new Set(),
  /** directories to remove */
  dirs: [],
};

function mountedAt(dir) {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.some((l) => l.split(' ')[4] === dir);
}

function unmount(dir) {
  for (let attempt = 0; attempt < 6 && mountedAt(dir); attempt++) {
    if (spawnSync(which('umount'), [dir], { stdio: 'ignore' }).status !== 0) sleepSync(50 * (attempt + 1));
  }
  if (mountedAt(dir)) spawnSync(which('umount'), ['-l', dir], { stdio: 'ignore' });
  return !mountedAt(dir);
}

/**
 * True while `loop.dev` is still backed by our file. Loop devices are shared
 * with other users of the machine: a device we detached may be somebody
 * else's a moment later, so it is always compared by backing file.
 */
function loopOurs(loop) {
  try {
    const backing = fs.readFileSync(`/sys/block/${path.basename(loop.dev)}/loop/backing_file`, 'utf8').trim();
    return backing.replace(/ \(deleted\)$/, '') === loop.file;
  } catch {
    return false; // not attached
  }
}

function detachLoop(loop) {
  for (let attempt = 0; attempt < 10 && loopOurs(loop); attempt++) {
    spawnSync(which('losetup'), ['-d', loop.dev], { stdio: 'ignore' });
    if (loopOurs(loop)) sleepSync(50);
  }
  return !loopOurs(loop);
}

/** True while `pid` runs (a zombie, not yet reaped by this blocked event loop, does not). */
function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function unmountFuse(entry) {
  if (mountedAt(entry.dir)) {
    spawnSync(which('fusermount3'), ['-u', entry.dir], { stdio: 'ignore' });
    if (mountedAt(entry.dir)) spawnSync(which('umount'), ['-l', entry.dir], { stdio: 'ignore' });
  }
  if (entry.proc && entry.proc.exitCode === null && entry.proc.signalCode === null) {
    // Gone from the mount table, so the daemon's loop ends; a daemon that
    // hangs anyway is killed.
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && running(entry.proc.pid)) sleepSync(20);
    try {
      entry.proc.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  return !mountedAt(entry.dir);
}

/** Releases everything held, in order: processes, umount, losetup -d, fusermount3 -u. Returns problems. */
export function release() {
  const problems = [];
  for (const child of held.children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  held.children.clear();
  for (const c of held.checkers) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // gone
    }
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && running(c.proc.pid)) sleepSync(10);
  }
  held.checkers.clear();
  for (const w of held.workers) {
    try {
      // destroy() closes the pipe at once (end() would wait for the event
      // loop, which this synchronous cleanup blocks): statectl sees end of
      // input, unmounts its mount and exits.
      w.proc.stdin.destroy();
    } catch {
      // gone
    }
  }
  for (const w of held.workers) {
    // statectl unmounts on end of input; wait for it briefly, then do it here.
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && w.proc.exitCode === null && running(w.proc.pid)) sleepSync(10);
    try {
      w.proc.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  held.workers.clear();
  for (const dir of [...held.mounts].reverse()) if (!unmount(dir)) problems.push(`could not unmount ${dir}`);
  held.mounts = held.mounts.filter((d) => mountedAt(d));
  for (const loop of [...held.loops].reverse())
    if (!detachLoop(loop)) problems.push(`could not detach ${loop.dev} (${loop.file})`);
  held.loops = held.loops.filter((l) => loopOurs(l));
  for (const entry of [...held.fuse].reverse())
    if (!unmountFuse(entry)) problems.push(`could not unmount FUSE ${entry.dir}`);
  held.fuse = held.fuse.filter((e) => mountedAt(e.dir));
  if (problems.length === 0) {
    for (const dir of [...held.dirs].reverse()) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        problems.push(`could not remove ${dir}: ${e.message}`);
      }
    }
    held.dirs = [];
  }
  return problems;
}

let handlersInstalled = false;
function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    release();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      const problems = release();
      process.stderr.write(
        `crash lab: ${signal}: released every mount and loop device${problems.length ? ` except: ${problems.join('; ')}` : ''}\n`,
      );
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

function attachLoop(file, args = []) {
  file = fs.realpathSync(file);
  const dev = run('losetup', ['-f', '--show', ...args, file]).trim();
  held.loops.push({ dev, file });
  return dev;
}

/** The files under `dir` this process still has open: why an umount was busy, if it is us. */
function openUnder(dir) {
  const open = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + '/')) open.push(`fd ${fd} ${path.relative(dir, target)}`);
    } catch {
      // closed meanwhile
    }
  }
  return open.length ? `open here: ${open.join(', ')}` : 'nothing under it open in this process';
}

function releaseLoop(dev) {
  const loop = held.loops.find((l) => l.dev === dev);
  if (!detachLoop(loop)) throw new Error(`could not detach ${dev} (${loop.file})`);
  held.loops = held.loops.filter((l) => l !== loop);
}

function mountXfs(dev, dir, type = 'xfs') {
  held.mounts.push(dir);
  run('mount', ['-t', type, dev, dir]);
}

function releaseMount(dir) {
  if (!unmount(dir)) throw new Error(`could not unmount ${dir}`);
  held.mounts = held.mounts.filter((d) => d !== dir);
}

const OWNER_FILE = '.untorn-crash-owner';

function processStart(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** True while the run that made `dir` lives (or `dir` is too new to judge). */
function ownerAlive(dir) {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
    return owner.pid !== process.pid && processStart(owner.pid) === owner.start;
  } catch {
    try {
      return Date.now() - fs.statSync(dir).mtimeMs < 30_000;
    } catch {
      return false;
    }
  }
}

/**
 * Releases what a killed run (SIGKILL: no handler ran) left under its
 * /dev/shm/untorn-crash-* directory: its XFS mounts, its loop devices, its
 * FUSE mounts (which ends its recorder), in that order; then the directory.
 * Only directories whose owning process is gone. Returns what it did.
 */
export function cleanupStale() {
  const done = [];
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  for (const name of fs.readdirSync(base)) {
    if (!name.startsWith('untorn-crash-')) continue;
    const dir = path.join(base, name);
    if (!fs.statSync(dir).isDirectory() || ownerAlive(dir)) continue;
    const inside = (p) => p.startsWith(dir + '/');
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ point: l.split(' ')[4], type: l.split(' - ')[1]?.split(' ')[0] ?? '' }))
      .filter((m) => inside(m.point));
    for (const m of mounts.filter((m) => !m.type.startsWith('fuse')))
      if (unmount(m.point)) done.push(`umount ${m.point}`);
    for (const dev of fs.readdirSync('/sys/block').filter((d) => d.startsWith('loop'))) {
      let file;
      try {
        file = fs
          .readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8')
          .trim()
          .replace(/ \(deleted\)$/, '');
      } catch {
        continue;
      }
      if (inside(file) && detachLoop({ dev: `/dev/${dev}`, file })) done.push(`losetup -d /dev/${dev}`);
    }
    for (const m of mounts.filter((m) => m.type.startsWith('fuse')))
      if (unmountFuse({ dir: m.point })) done.push(`fusermount3 -u ${m.point}`);
    if (mountsUnder(dir).length === 0) {
      fs.rmSync(dir, { recursive: true, force: true });
      done.push(`rm -r ${dir}`);
    }
  }
  return done;
}

function mountsUnder(dir) {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir + '/'));
}

/** A fresh working directory in /dev/shm (RAM), removed by release(). */
export function workDir() {
  installHandlers();
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'untorn-crash-'));
  held.dirs.push(dir);
  fs.writeFileSync(
    path.join(dir, OWNER_FILE),
    JSON.stringify({ pid: process.pid, start: processStart(process.pid) }) + '\n',
  );
  return dir;
}

// ---------------------------------------------------------------------------
// recording

function runWriter(config) {
  const child = spawnSync(process.execPath, [path.join(HERE, 'writer.mjs'), JSON.stringify(config)], {
    encoding: 'utf8',
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  if (child.status !== 0) {
    throw new Error(
      `writer (${config.mode}) failed (${child.status ?? child.signal}): ${oneLine(child.stderr).slice(0, 600)}`,
    );
  }
  return JSON.parse(child.stdout.trim().split('\n').pop());
}

function startRecorder(bin, image, log, dir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, [image, log, dir, '-o', 'fsname=untorn-crash'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { dir, proc };
    held.fuse.push(entry);
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(
      () => reject(new Error(`recorder did not mount ${dir} within 10 s: ${oneLine(stderr)}`)),
      10_000,
    );
    proc.stdout.on('data', (d) => {
      if (String(d).includes('ready')) {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    proc.on('exit', (code, signal) => {
      entry.exit = { code, signal, stderr };
      clearTimeout(timer);
      reject(new Error(`recorder exited (${code ?? signal}): ${oneLine(stderr)}`));
    });
  });
}

async function stopRecorder(entry) {
  const exited = entry.exit ? Promise.resolve() : new Promise((resolve) => entry.proc.once('exit', resolve));
  run('fusermount3', ['-u', entry.dir]);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (!entry.exit) throw new Error('recorder did not exit after fusermount3 -u');
  held.fuse = held.fuse.filter((e) => e !== entry);
  if (entry.exit.code !== 0)
    throw new Error(`recorder exited with ${entry.exit.code ?? entry.exit.signal}: ${oneLine(entry.exit.stderr)}`);
}

/** The internal log's byte range on the device, from the superblock. */
function logRegion(image) {
  const out = run('xfs_db', ['-r', '-c', 'sb 0', '-c', 'print logstart logblocks agblocks agblklog blocksize', image]);
  const v = Object.fromEntries([...out.matchAll(/^(\w+) = (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  const agno = Math.floor(v.logstart / 2 ** v.agblklog);
  const agbno = v.logstart % 2 ** v.agblklog;
  const start = (agno * v.agblocks + agbno) * v.blocksize;
  return { start, end: start + v.logblocks * v.blocksize };
}

/** ext4's journal (inode 8): its byte ranges on the device, from debugfs. */
function ext4JournalRegion(image) {
  const out = run('debugfs', ['-R', 'stat <8>', image]);
  const ranges = [...out.matchAll(/\(\d+(?:-\d+)?\):(\d+)(?:-(\d+))?/g)].map((m) => [
    Number(m[1]) * 4096,
    (Number(m[2] ?? m[1]) + 1) * 4096,
  ]);
  if (ranges.length === 0) throw new Error(`${image}: debugfs shows no journal extents`);
  return { ranges };
}

/**
 * Extents on the device of a PGlite data directory's relation files, WAL
 * segments and untorn's journal: one filefrag (FIEMAP, no sync: the
 * filesystem is read-only) for all of them, in `blockSize` units.
 */
function pgliteRegions(mnt, blockSize) {
  const files = [];
  const walk = (rel) => {
    for (const d of fs.readdirSync(path.join(mnt, rel), { withFileTypes: true })) {
      const name = path.posix.join(rel, d.name);
      if (d.isDirectory()) walk(name);
      else if (PG_RELATION.test(name) || PG_WAL.test(name) || name === PG_JOURNAL) files.push(name);
    }
  };
  walk('pg');
  const out = { rel: [], wal: [], dblwr: [] };
  const text = run('filefrag', ['-e', '-b' + blockSize, ...files.map((f) => path.join(mnt, f))]);
  let into = null;
  for (const line of text.split('\n')) {
    const file = /^File size of (.*) is \d+/.exec(line);
    if (file) {
      const name = path.relative(mnt, file[1]);
      into = PG_RELATION.test(name) ? out.rel : PG_WAL.test(name) ? out.wal : out.dblwr;
      continue;
    }
    const ext = /^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/.exec(line);
    if (ext && into) into.push([Number(ext[1]) * blockSize, (Number(ext[2]) + 1) * blockSize]);
  }
  return out;
}

/** Extents of a file, from FIEMAP (xfs_io -c 'fiemap -v'). */
function fileExtents(file) {
  return physicalExtents(file).length;
}

/** A file's extents as byte ranges on the device (FIEMAP, in 512-byte units; holes left out). */
function physicalExtents(file) {
  const out = run('xfs_io', ['-r', '-c', 'fiemap -v', file]);
  return [...out.matchAll(/^\s*\d+: \[\d+\.\.\d+\]:\s+(\d+)\.\.(\d+)/gm)].map((m) => [
    Number(m[1]) * 512,
    (Number(m[2]) + 1) * 512,
  ]);
}

/**
 * Records one scenario: makes its base image (test file at version 0), then
 * runs the writer on it under the recorder. Returns what replay needs.
 */
export async function record(scenario, options) {
  const { tools, dir, seed } = options;
  const slug = scenario.name.replace(/\W+/g, '-');
  const base = path.join(dir, `${slug}.base.img`);
  const work = path.join(dir, `${slug}.final.img`);
  const logFile = path.join(dir, `${slug}.log`);
  const mnt = path.join(dir, `${slug}.mnt`);
  const fuseDir = path.join(dir, `${slug}.fuse`);
  fs.mkdirSync(mnt);
  fs.mkdirSync(fuseDir);
  const started = Date.now();

  // 1. The base image: mkfs, the test file at version 0, unmounted clean.
  const imageSize = scenario.imageSize ?? IMAGE_SIZE;
  const pglite = scenario.group === 'pglite';
  // The PGlite scenarios share one base (a PGlite first open takes seconds): made once, then copied.
  const sharedBase = pglite ? options.bases?.get('pglite') : undefined;
  if (sharedBase) fs.copyFileSync(sharedBase.base, base);
  else {
    fs.closeSync(fs.openSync(base, 'wx'));
    fs.truncateSync(base, imageSize);
  }
  if (sharedBase) {
    // Made by the first PGlite scenario.
  } else if (scenario.fsType === 'ext4') {
    // No lazy init: no background inode-table writes during the run or after a state's mount.
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', 'lazy_itable_init=0,lazy_journal_init=0', base]);
  } else {
    run('mkfs.xfs', ['-q', '-f', ...(scenario.blockSize === 16384 ? ['-b', 'size=16384'] : []), base], {
      env: MKFS_ENV,
    });
  }
  let dev = sharedBase ? null : attachLoop(base);
  if (dev) mountXfs(dev, mnt, scenario.fsType);
  const pagefile = scenario.group === 'pagefile';
  const journal = scenario.group === 'journal';
  const config = pagefile
    ? { dir: mnt, pageSize: PAGE_SIZE, pages: PAGES, strategy: scenario.strategy, batchPages: PAGEFILE_BATCH_PAGES }
    : journal
      ? { dir: mnt, pageSize: PAGE_SIZE, files: JOURNAL_FILES, strategy: scenario.strategy }
      : pglite
        ? { dir: mnt, ...PGLITE, pglite: scenario.pglite }
        : { dir: mnt, pageSize: PAGE_SIZE, pages: PAGES, layout: scenario.layout, blockSize: scenario.blockSize };
  const setup = sharedBase
    ? sharedBase.setup
    : runWriter({
        ...config,
        mode: pagefile ? 'pagefile-setup' : journal ? 'journal-setup' : pglite ? 'pglite-setup' : 'setup',
      });
  const extents = pglite ? 0 : fileExtents(path.join(mnt, journal ? JOURNAL_FILES[0].name : 'data'));
  // Where the doublewrite file (a page file's, or the journal) lies: its
  // writes (batch header and copies, in place) are data too, tearable like
  // the pages' own.
  const dblwrFile =
    pagefile && scenario.strategy === 'doublewrite'
      ? 'data.dblwr'
      : journal && scenario.strategy !== 'plain'
        ? 'journal'
        : null;
  const dblwr = dblwrFile ? physicalExtents(path.join(mnt, dblwrFile)) : [];
  if (dblwrFile && dblwr.length === 0) throw new Error(`${scenario.name}: ${dblwrFile} has no extents`);
  if (dev) {
    releaseMount(mnt);
    releaseLoop(dev);
  }
  // Fragmented: most filesystem blocks of the test file an extent of their
  // own (XFS may still join a few neighbours); contiguous: one extent.
  const minExtents = (PAGES * PAGE_SIZE) / scenario.blockSize / 2;
  if (pagefile || journal || pglite) {
    // The page file's layout is its own (grown in 8 MiB chunks); the journal's files are whatever they are.
  } else if (scenario.layout === 'fragmented' ? extents < minExtents : extents !== 1) {
    throw new Error(
      `${scenario.name}: the test file has ${extents} extents (wanted ${scenario.layout === 'fragmented' ? `≥ ${minExtents}` : 1})`,
    );
  }
  run('fallocate', ['--dig-holes', base]); // restore copies only what holds data
  if (pglite && !sharedBase) options.bases?.set('pglite', { base, setup });
  const region = scenario.fsType === 'ext4' ? ext4JournalRegion(base) : logRegion(base);
  region.dblwr = dblwr;
  fs.copyFileSync(base, work);

  // 2. The recorded run: XFS on a loop device on the recorder's /image.
  const recorder = await startRecorder(tools.recorder, work, logFile, fuseDir);
  dev = attachLoop(path.join(fuseDir, 'image'), ['--direct-io=on']);
  const queue = `/sys/block/${path.basename(dev)}/queue`;
  const writeCache = fs.readFileSync(`${queue}/write_cache`, 'utf8').trim();
  if (writeCache !== 'write back')
    throw new Error(`${dev} reports write_cache "${writeCache}": flushes would not reach the recorder`);
  mountXfs(dev, mnt, scenario.fsType);
  const seedOfRun = (seed ^ hashString(scenario.name)) >>> 0;
  const marks = path.join(fuseDir, 'marks');
  const writer = pagefile
    ? runWriter({ ...config, mode: 'pagefile-run', rounds: 12, seed: seedOfRun, marks })
    : journal
      ? runWriter({ ...config, mode: 'journal-run', rounds: 16, seed: seedOfRun, marks })
      : pglite
        ? runWriter({ ...config, mode: 'pglite-run', seed: seedOfRun, marks })
        : runWriter({ ...config, mode: 'run', api: scenario.api, batches: 16, batchPages: 4, seed: seedOfRun, marks });
  releaseMount(mnt);
  releaseLoop(dev);
  await stopRecorder(recorder);
  if (pglite) {
    // Where PostgreSQL's files lie on the device once the run is over:
    // relation files ('rel': their page writes are what a power loss may
    // tear), the WAL ('wal') and untorn's journal ('dblwr'); read from the
    // final image, mounted read-only (nothing of the run is deleted).
    dev = attachLoop(work, ['-r']);
    held.mounts.push(mnt);
    run('mount', ['-t', scenario.fsType, '-o', 'ro', dev, mnt]);
    Object.assign(region, pgliteRegions(mnt, scenario.blockSize));
    releaseMount(mnt);
    releaseLoop(dev);
    if (region.rel.length === 0) throw new Error(`${scenario.name}: no relation file extents`);
  }
  fs.rmdirSync(mnt);
  fs.rmdirSync(fuseDir);

  const log = parseLog(fs.readFileSync(logFile), region);
  checkReplayReproduces(base, work, log);
  checkFlushesReachedUs(scenario, log);
  return {
    scenario,
    base,
    work,
    logFile,
    log,
    region,
    extents,
    setup,
    writer,
    layout: pglite ? [] : pageLayout(scenario),
    imageSize,
    recordMs: Date.now() - started,
  };
}

// ---------------------------------------------------------------------------
// the log

const REC_WRITE = 1;
const REC_FLUSH = 2;
const REC_MARK = 3;

/**
 * Parses a recorder log into events, in order:
 *   { type: 'write', off, len, data, kind: 'data' | 'dblwr' | 'log' | 'meta', stamps? }
 * ('dblwr': a write to the page file's doublewrite file, from region.dblwr;
 * 'log': XFS's internal log, or ext4's journal, region.ranges)
 *   { type: 'flush' }
 *   { type: 'mark', text }
 */
export function parseLog(buf, region) {
  if (buf.subarray(0, 8).toString('latin1') !== 'UNTCLOG1') throw new Error('not a crash lab log (bad magic)');
  const events = [];
  let pos = 8;
  let expectSeq = 0n;
  while (pos < buf.length) {
    if (pos + 32 > buf.length) throw new Error(`log truncated at byte ${pos}`);
    const type = buf.readUInt32LE(pos);
    const seq = buf.readBigUInt64LE(pos + 8);
    const off = Number(buf.readBigUInt64LE(pos + 16));
    const len = Number(buf.readBigUInt64LE(pos + 24));
    if (seq !== expectSeq) throw new Error(`log record ${expectSeq} missing (found ${seq})`);
    expectSeq++;
    pos += 32;
    const data = buf.subarray(pos, pos + len);
    if (data.length !== len) throw new Error(`log truncated in record ${seq}`);
    pos += len;
    if (type === REC_WRITE) {
      const inside = (ranges) => ranges.some(([a, b]) => off < b && a < off + len);
      const within = (ranges) => ranges.some(([a, b]) => off >= a && off + len <= b);
      const dblwr = inside(region.dblwr ?? []);
      const stamps = dblwr ? null : stampsIn(data);
      const kind = dblwr
        ? 'dblwr'
        : inside(region.rel ?? [])
          ? 'rel'
          : inside(region.wal ?? [])
            ? 'wal'
            : stamps
              ? 'data'
              : within(region.ranges ?? [[region.start, region.end]])
                ? 'log'
                : 'meta';
      events.push({ type: 'write', off, len, data, kind, stamps: stamps ?? undefined });
    } else if (type === REC_FLUSH) {
      events.push({ type: 'flush' });
    } else if (type === REC_MARK) {
      for (const text of data.toString('utf8').split('\n').filter(Boolean)) events.push({ type: 'mark', text });
    } else {
      throw new Error(`unknown log record type ${type}`);
    }
  }
  return events;
}

/** The log applied in full to the base image must give the image the recorder served, byte for byte. */
function checkReplayReproduces(base, work, events) {
  const image = fs.readFileSync(base);
  for (const e of events) if (e.type === 'write') e.data.copy(image, e.off);
  const served = fs.readFileSync(work);
  if (!image.equals(served))
    throw new Error(`replaying the whole log onto ${base} does not give ${work}: the log misses writes`);
}

/**
 * Every durability point the writer was given must have a flush in the log
 * between the write's start and its acknowledgement (for a whole batch: since
 * the batch began); otherwise the loop device or FUSE swallowed flushes and
 * the honoured-flush model would be built on nothing.
 */
function checkFlushesReachedUs(scenario, events) {
  let flushSinceBatch = false;
  const flushSinceStart = new Map();
  // Journals: writes returned with no flush since they started; per commit
  // (`c ID`), whether it covers one of those and so still needs a flush.
  const unflushed = new Set();
  const commitNeedsFlush = new Map();
  // PGlite with fsync real (not NodeFS as shipped): every COMMIT (`c ID` .. `cd ID`) and CHECKPOINT (`k`, `kd`) flushed.
  const pgFsync = scenario.group === 'pglite' && scenario.pglite !== 'nodefs';
  const pgFlushed = new Map();
  for (const e of events) {
    if (e.type === 'flush') {
      for (const k of pgFlushed.keys()) pgFlushed.set(k, true);
      flushSinceBatch = true;
      for (const k of flushSinceStart.keys()) flushSinceStart.set(k, true);
      unflushed.clear();
      for (const k of commitNeedsFlush.keys()) commitNeedsFlush.set(k, false);
    } else if (e.type === 'mark') {
      const [what, p, v] = e.text.split(' ');
      if (pgFsync) {
        if (what === 'c' || what === 'k') pgFlushed.set(`${what} ${p}`, false);
        else if ((what === 'cd' || what === 'kd') && !pgFlushed.get(`${what[0]} ${p}`))
          throw new Error(
            `${scenario.name}: ${what === 'cd' ? 'COMMIT' : 'CHECKPOINT'} ${p} resolved before a flush reached the recorder`,
          );
        continue;
      }
      if (what === 'batch') flushSinceBatch = false;
      else if (what === 's') flushSinceStart.set(`${p} ${v}`, false);
      else if (what === 'r' && !flushSinceStart.get(`${p} ${v}`)) unflushed.add(`${p} ${v}`);
      else if (what === 'c') commitNeedsFlush.set(p, unflushed.size > 0);
      else if (what === 'cd' && commitNeedsFlush.get(p))
        throw new Error(
          `${scenario.name}: commit ${p} returned before a flush reached the recorder for what it covers`,
        );
      else if (what === 'rd' && !flushSinceStart.get(`${p} ${v}`))
        throw new Error(
          `${scenario.name}: no flush reached the recorder for the dsync write of page ${p} version ${v}`,
        );
      else if (what === 'd' && !flushSinceBatch)
        throw new Error(`${scenario.name}: no flush reached the recorder for an fdatasync`);
    }
  }
}

/** Counts for reports. */
export function logSummary(events) {
  const s = {
    writes: 0,
    data: 0,
    dataBytes: 0,
    dblwr: 0,
    log: 0,
    meta: 0,
    rel: 0,
    wal: 0,
    flushes: 0,
    marks: 0,
    bytes: 0,
    api: null,
    batches: {},
  };
  for (const e of events) {
    if (e.type === 'write') {
      s.writes++;
      s[e.kind]++;
      s.bytes += e.len;
      if (e.kind === 'data') s.dataBytes += e.len;
    } else if (e.type === 'flush') s.flushes++;
    else {
      s.marks++;
      // What the writer says it did: its API, and batches per call style.
      const [what, , call, durability] = e.text.split(' ');
      if (what === 'begin') s.api = e.text.split(' ')[1];
      if (what === 'batch') s.batches[`${call} ${durability}`] = (s.batches[`${call} ${durability}`] ?? 0) + 1;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------
// crash states

/**
 * What had been acknowledged by the time the log reached `horizon` (an
 * event index): per page, the highest version started and the highest
 * version acknowledged durable.
 */
export function acknowledged(events, horizon, pages) {
  const started = new Array(pages).fill(0);
  const returned = new Array(pages).fill(0);
  const durable = new Array(pages).fill(0);
  // Journals: what each commit covers (the writes returned before `c ID`), durable at `cd ID`.
  const covers = new Map();
  for (let i = 0; i < horizon && i < events.length; i++) {
    const e = events[i];
    if (e.type !== 'mark') continue;
    const [what, a, b] = e.text.split(' ');
    const p = Number(a);
    const v = Number(b);
    if (what === 's') started[p] = Math.max(started[p], v);
    else if (what === 'r') returned[p] = Math.max(returned[p], v);
    else if (what === 'rd') [returned[p], durable[p]] = [Math.max(returned[p], v), Math.max(durable[p], v)];
    else if (what === 'd') for (let q = 0; q < pages; q++) durable[q] = Math.max(durable[q], returned[q]);
    else if (what === 'c') covers.set(a, returned.slice());
    else if (what === 'cd') for (let q = 0; q < pages; q++) durable[q] = Math.max(durable[q], covers.get(a)[q]);
  }
  return { started, durable };
}

/**
 * PGlite: the transactions acknowledged (`cd ID`) by the time the log reached
 * `horizon`, and the highest one whose COMMIT had been sent (`c ID`).
 */
export function acknowledgedTransactions(events, horizon) {
  const acked = [];
  let started = 0;
  for (let i = 0; i < horizon && i < events.length; i++) {
    const e = events[i];
    if (e.type !== 'mark') continue;
    const [what, id] = e.text.split(' ');
    if (what === 'c') started = Math.max(started, Number(id));
    else if (what === 'cd') acked.push(Number(id));
  }
  return { acked, started };
}

/** Chooses a tear of write `e` at `g` bytes: which g-chunks reach the disk. */
function tearOf(e, random) {
  let g = random() < 0.5 ? 512 : 4096;
  if (e.kind === 'data') {
    // The chunks of one page in this write must mix: runs of sectors of
    // the same page of one file (a write may carry several pages, or part of one).
    const runs = [];
    for (let i = 0; i < e.stamps.length; i++) {
      const s = e.stamps[i];
      const last = runs[runs.length - 1];
      if (last && last.page === s.page && last.file === s.file && last.end === i) last.end = i + 1;
      else runs.push({ file: s.file, page: s.page, version: s.version, start: i, end: i + 1 });
    }
    const run = runs[random.int(runs.length)];
    const sectors = run.end - run.start;
    if (sectors * SECTOR < 2 * g || (run.start * SECTOR) % g !== 0 || (sectors * SECTOR) % g !== 0) g = 512;
    const chunks = (sectors * SECTOR) / g;
    // At least one chunk new and one old.
    const keep = new Array(chunks).fill(false).map(() => random() < 0.5);
    keep[random.int(chunks)] = true;
    let off = random.int(chunks);
    while (chunks > 1 && keep[off] && keep.every(Boolean)) {
      keep[off] = false;
      off = random.int(chunks);
    }
    // Byte ranges (relative to the write) that persist.
    const ranges = [];
    if (run.start > 0) ranges.push([0, run.start * SECTOR]);
    keep.forEach((k, i) => k && ranges.push([run.start * SECTOR + i * g, run.start * SECTOR + (i + 1) * g]));
    if (run.end < e.stamps.length) ranges.push([run.end * SECTOR, e.len]);
    return { g, file: run.file, page: run.page, version: run.version, ranges };
  }
  if (e.len < 2 * g) g = 512;
  const chunks = Math.floor(e.len / g);
  const keep = new Array(chunks).fill(false).map(() => random() < 0.5);
  if (e.kind === 'rel' || e.kind === 'wal') {
    // PostgreSQL's writes: some chunks reach the disk, at least one does not
    // (one write may carry several 8 KiB pages, merged by the block layer).
    const on = random.int(chunks);
    keep[on] = true;
    keep[(on + 1 + random.int(chunks - 1)) % chunks] = false;
    const ranges = [];
    keep.forEach((k, i) => k && ranges.push([i * g, (i + 1) * g]));
    if (chunks * g < e.len) ranges.push([chunks * g, e.len]);
    return { g, file: null, page: null, ranges };
  }
  keep[random.int(chunks)] = false;
  const ranges = [];
  keep.forEach((k, i) => k && ranges.push([i * g, (i + 1) * g]));
  return { g, file: null, page: null, ranges };
}

/**
 * One crash state of a log, drawn with `random`:
 *   honoured flushes: every write before the epoch's opening flush, and a
 *   prefix or a subset of the epoch's writes, one of them (data or log
 *   record) optionally torn at 512 B or 4 KiB;
 *   lying disk (flushes ignored): a random subset of the writes before a
 *   random crash point.
 * Returns { writes: [{ i, ranges? }], horizon, tear? } (i: event index).
 */
export function drawState(events, kind, random) {
  const writeIdx = [];
  for (let i = 0; i < events.length; i++) if (events[i].type === 'write') writeIdx.push(i);
  if (kind === 'lying') {
    const cut = 1 + random.int(writeIdx.length);
    const keepP = 0.3 + 0.6 * random();
    const writes = writeIdx
      .slice(0, cut)
      .filter(() => random() < keepP)
      .map((i) => ({ i }));
    const horizon = cut < writeIdx.length ? writeIdx[cut] : events.length;
    return {
      writes,
      horizon,
      how: `lying disk: ${writes.length} of the first ${cut} writes (keep ${keepP.toFixed(2)})`,
    };
  }
  // Epochs: [start, end) event ranges between flushes.
  const flushes = [];
  for (let i = 0; i < events.length; i++) if (events[i].type === 'flush') flushes.push(i);
  const bounds = [0, ...flushes.map((f) => f + 1)];
  const epochs = bounds
    .map((start, k) => ({ start, end: k < flushes.length ? flushes[k] : events.length }))
    .filter((ep) =>
      writeIdx.some((i) => i >= ep.start && i < ep.end && (kind !== 'metatear' || events[i].kind === 'meta')),
    );
  // PGlite: most epochs hold a COMMIT's WAL write; relation pages and the
  // journal's copies are written only by CHECKPOINTs. Half the draws take an
  // epoch that has some of those, so that they are torn often enough.
  // (Not for NodeFS as shipped: its writes all wait for the unmount, the epochs of interest are the others.)
  const pglite = kind === 'pglite' || kind === 'pglite-unjournaled';
  const inPlace = (i) => events[i].kind === 'rel' || events[i].kind === 'dblwr';
  const rich = pglite ? epochs.filter((ep) => writeIdx.some((i) => i >= ep.start && i < ep.end && inPlace(i))) : [];
  const from = rich.length > 0 && random() < 0.5 ? rich : epochs;
  const ep = from[random.int(from.length)];
  const before = writeIdx.filter((i) => i < ep.start);
  const inEpoch = writeIdx.filter((i) => i >= ep.start && i < ep.end);
  let chosen;
  let how;
  if (random() < 0.3) {
    const n = random.int(inEpoch.length + 1);
    chosen = inEpoch.slice(0, n);
    how = `prefix ${n}/${inEpoch.length}`;
  } else {
    chosen = inEpoch.filter(() => random() < 0.5);
    how = `subset ${chosen.length}/${inEpoch.length}`;
  }
  let tearable = chosen.filter((i) => events[i].kind !== 'meta');
  // PGlite: the tear falls on a relation page or journal write when there is one, 4 times in 5.
  if (pglite && tearable.some(inPlace) && random() < 0.8) {
    tearable = tearable.filter(inPlace);
    // The journal's writes are few (one batch per CHECKPOINT): half the time they are the ones torn.
    if (tearable.some((i) => events[i].kind === 'dblwr') && random() < 0.5)
      tearable = tearable.filter((i) => events[i].kind === 'dblwr');
  }
  if (kind === 'metatear') {
    // Always a metadata write of this epoch, torn.
    const meta = inEpoch.filter((i) => events[i].kind === 'meta');
    const pick = meta[random.int(meta.length)];
    if (!chosen.includes(pick)) chosen = [...chosen, pick].sort((a, b) => a - b);
    tearable = [pick];
  }
  const writes = [...before.map((i) => ({ i })), ...chosen.map((i) => ({ i }))];
  let tear;
  if (tearable.length > 0 && (kind === 'metatear' || random() < 0.6)) {
    const i = tearable[random.int(tearable.length)];
    const e = events[i];
    const t = tearOf(e, random);
    tear = { i, kind: e.kind, g: t.g, file: t.file, page: t.page, version: t.version };
    const w = writes.find((x) => x.i === i);
    w.ranges = t.ranges;
    if (e.kind === 'data' || e.kind === 'rel') {
      // A later write over the same blocks would hide the tear: leave those
      // out, so that every data tear must show if the page is written in place.
      for (let k = writes.length - 1; k >= 0; k--) {
        const o = events[writes[k].i];
        if (writes[k].i > i && o.off < e.off + e.len && e.off < o.off + o.len) writes.splice(k, 1);
      }
    }
    how += `, ${e.kind} write torn at ${t.g} B`;
  }
  // Acknowledgements up to the next flush: a durability mark in this epoch
  // was given for a flush at or before its start, whose writes all persist.
  return { writes, horizon: ep.end, tear, how: `epoch after flush ${bounds.indexOf(ep.start)}: ${how}` };
}

// ---------------------------------------------------------------------------
// classification

/**
 * Classifies every page of `layout` (pageLayout()) as read back from the
 * mounted state: ok, torn, lost or corrupt (see docs/crash-lab.md). A fresh
 * page's sectors that are zeros or past the end of its file are version 0
 * (absent: what it held before its first write).
 */
export function classify(readPage, ack, layout) {
  const result = { ok: 0, torn: 0, lost: 0, corrupt: 0, pages: [] };
  for (let p = 0; p < layout.length; p++) {
    const { file, page, fresh } = layout[p];
    let cls;
    let detail;
    let version; // the one version read back, if it was one
    const buf = readPage(p);
    if (buf instanceof Error) {
      cls = 'corrupt';
      detail = buf.code ?? buf.message;
    } else if (buf.length !== PAGE_SIZE && !fresh) {
      cls = 'corrupt';
      detail = `short page (${buf.length} bytes)`;
    } else {
      const versions = new Set();
      let bad = 0;
      for (let s = 0; s < PAGE_SIZE / SECTOR; s++) {
        const at = s * SECTOR;
        const st = readSector(buf, at, page, s, SECTOR, file);
        if (st) versions.add(st.version);
        else if (fresh && (at >= buf.length || buf.subarray(at, at + SECTOR).every((b) => b === 0))) versions.add(0);
        else bad++;
      }
      const where = file === 0 ? `page ${page}` : `page ${page} of file ${file}`;
      if (bad > 0) [cls, detail] = ['corrupt', `${bad} sectors are no stamp of ${where}`];
      else if (versions.size > 1) [cls, detail] = ['torn', `${where}: versions ${[...versions].join('+')}`];
      else {
        const v = [...versions][0];
        if (v > ack.started[p]) [cls, detail] = ['corrupt', `${where}: version ${v} was never written`];
        else if (v < ack.durable[p])
          [cls, detail] = ['lost', `${where}: version ${v}, acknowledged durable ${ack.durable[p]}`];
        else [cls, detail] = ['ok', `version ${v}`];
      }
      if (versions.size === 1) version = [...versions][0];
    }
    result[cls]++;
    result.pages.push({ cls, detail, version });
  }
  return result;
}

/**
 * Checks the journal scenarios' files in the mounted state at `dir`: opens
 * the journal with openJournal (it replays what the crash left, writing to
 * this copy), then reads every page of every file with plain reads, as a
 * database reading its own files would, and classifies it (classify()). An
 * open that fails is an open failure. 'plain' (the control) has no journal.
 */
export async function checkJournal(dir, ack, layout, strategy) {
  if (strategy === 'plain') return classify(readPages(dir, layout), ack, layout);
  let journal;
  try {
    journal = await untorn().openJournal(path.join(dir, 'journal'), { strategy, pageSize: PAGE_SIZE });
  } catch (e) {
    return {
      ok: 0,
      torn: 0,
      lost: 0,
      corrupt: 0,
      pages: [],
      openFailure: `${e.code ?? ''} ${oneLine(e.message)}`.trim(),
    };
  }
  try {
    const result = classify(readPages(dir, layout), ack, layout);
    const { pagesReplayed, batchesDiscarded } = journal.recovery;
    result.recovery = { pagesRestored: pagesReplayed, batchesDiscarded };
    return result;
  } finally {
    await journal.close();
  }
}

// ---------------------------------------------------------------------------
// page files: the checker opens the page file with untorn itself

let untornApi = null;
function untorn() {
  untornApi ??= createRequire(import.meta.url)(path.join(ROOT, 'dist', 'index.js'));
  return untornApi;
}

/**
 * Checks the page file `data` in the mounted state at `dir`: opens it with
 * openPageFile, writable (recovery runs and writes its restores to this
 * copy), and reads every page. Classes: ok, torn (a mix of versions
 * returned), lost (older than acknowledged durable, or zeros: every page was
 * durable at version 0 in the base), detected (readPage rejected with
 * ERR_PAGE_CORRUPT), corrupt (anything else). An open that fails is an
 * open failure (result.openFailure).
 */
export async function checkPageFile(dir, ack, pages, strategy) {
  const result = { ok: 0, torn: 0, lost: 0, corrupt: 0, detected: 0, pages: [] };
  let pf;
  try {
    pf = await untorn().openPageFile(path.join(dir, 'data'), {
      strategy,
      pageSize: PAGE_SIZE,
      batchPages: PAGEFILE_BATCH_PAGES,
      flags: 'r+',
    });
  } catch (e) {
    return { ...result, openFailure: `${e.code ?? ''} ${oneLine(e.message)}`.trim() };
  }
  try {
    result.recovery = { ...pf.recovery };
    for (let p = 0; p < pages; p++) {
      let cls;
      let detail;
      let buf;
      try {
        buf = await pf.readPage(p);
      } catch (e) {
        buf = e;
      }
      if (buf instanceof Error) {
        if (buf.code === 'ERR_PAGE_CORRUPT') [cls, detail] = ['detected', buf.reason ?? buf.message];
        else [cls, detail] = ['corrupt', buf.code ?? buf.message];
      } else if (buf.length !== pf.payloadSize) {
        cls = 'corrupt';
        detail = `payload of ${buf.length} bytes`;
      } else if (buf.every((b) => b === 0)) {
        cls = 'lost';
        detail = `zeros, acknowledged durable ${ack.durable[p]}`;
      } else {
        const { versions, bad } = readPayload(buf, p);
        if (bad > 0) [cls, detail] = ['corrupt', `${bad} sectors are no stamp of page ${p}`];
        else if (versions.size > 1) [cls, detail] = ['torn', `versions ${[...versions].join('+')}`];
        else {
          const v = [...versions][0];
          if (v > ack.started[p]) [cls, detail] = ['corrupt', `version ${v} was never written`];
          else if (v < ack.durable[p]) [cls, detail] = ['lost', `version ${v}, acknowledged durable ${ack.durable[p]}`];
          else [cls, detail] = ['ok', `version ${v}`];
        }
      }
      result[cls]++;
      result.pages.push({ cls, detail });
    }
  } finally {
    await pf.close();
  }
  return result;
}

// ---------------------------------------------------------------------------
// replay workers: one loop device, one partition per worker

/** A replay image of `workers` MBR partitions of `size` bytes, each worker's own block device. */
function makeReplayImage(file, workers, size) {
  const start = MiB;
  fs.closeSync(fs.openSync(file, 'wx'));
  fs.truncateSync(file, start + workers * size);
  const mbr = Buffer.alloc(512);
  for (let k = 0; k < workers; k++) {
    const e = 446 + 16 * k;
    mbr[e + 4] = 0x83;
    mbr.writeUInt32LE((start + k * size) / 512, e + 8);
    mbr.writeUInt32LE(size / 512, e + 12);
  }
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, mbr, 0, 512, 0);
  fs.closeSync(fd);
  return Array.from({ length: workers }, (_, k) => start + k * size);
}

class Worker {
  constructor(tools, image, offset, size, device, dir) {
    this.image = image;
    this.offset = offset;
    this.size = size;
    this.dir = dir;
    this.checker = null;
    this.proc = spawn(tools.statectl, [image, String(offset), String(size), device, dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    held.workers.add(this);
    this.waiting = [];
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.resolve(line));
    this.proc.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`statectl exited (${code}): ${oneLine(this.stderr)}`));
    });
    this.fd = fs.openSync(image, 'r+');
  }

  cmd(line) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(line + '\n');
    });
  }

  async must(line) {
    const answer = await this.cmd(line);
    if (!answer.startsWith('ok')) throw new Error(`statectl ${line}: ${answer}`);
  }

  /** Writes the state onto the (restored) partition. */
  apply(events, state) {
    for (const w of state.writes) {
      const e = events[w.i];
      for (const [a, b] of w.ranges ?? [[0, e.len]]) fs.writeSync(this.fd, e.data, a, b - a, this.offset + e.off + a);
    }
  }

  /** Checks the PGlite data directory of the mounted state in its own long-lived checker (pglite-checker.mjs). */
  async checkPGlite(request) {
    // A fresh checker every CHECKER_STATES states (PGlite instances come and go in it).
    if (this.checker && this.checker.states >= CHECKER_STATES) await this.dropChecker();
    this.checker ??= new PGliteChecker();
    this.checker.states++;
    let answer;
    try {
      answer = await this.checker.check(request);
    } catch (e) {
      // A checker that died is replaced for the next state; this one failed to be checked.
      answer = { checkerError: e.message };
    }
    // A PGlite that failed to start may keep files of the mount open: its checker goes before the umount.
    if (answer.openError || answer.checkerError) await this.dropChecker();
    return answer;
  }

  async dropChecker() {
    await this.checker?.close();
    this.checker = null;
  }

  async close() {
    await this.dropChecker();
    this.proc.stdin.end();
    await new Promise((r) => (this.proc.exitCode !== null ? r() : this.proc.once('exit', r)));
    fs.closeSync(this.fd);
    held.workers.delete(this);
  }
}

/** States one PGlite checker serves before it is replaced. */
const CHECKER_STATES = 25;

/** One pglite-checker.mjs child: PGlite's WebAssembly compiled once, for every state it checks. */
class PGliteChecker {
  constructor() {
    this.states = 0;
    this.proc = spawn(process.execPath, [path.join(HERE, 'pglite-checker.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
    held.checkers.add(this);
    this.waiting = [];
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.ready = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let answer;
      try {
        answer = JSON.parse(line);
      } catch {
        return; // not ours (PGlite printing on stdout)
      }
      this.waiting.shift()?.resolve(answer);
    });
    this.proc.on('exit', (code, signal) => {
      held.checkers.delete(this);
      for (const w of this.waiting.splice(0))
        w.reject(new Error(`pglite checker exited (${code ?? signal}): ${oneLine(this.stderr).slice(-600)}`));
    });
  }

  async check(request) {
    await this.ready;
    const answer = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.proc.stdin.write(JSON.stringify(request) + '\n');
    return await answer;
  }

  /** Kills it and waits for its exit (its files in the mount closed). */
  async close() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.kill('SIGKILL');
      await exited;
    }
    held.checkers.delete(this);
  }
}

/**
 * Checks the PGlite state mounted at `w.dir`: the checker opens it with
 * openPGlite (journal replay, then WAL redo). A state is 'lost' when an
 * acknowledged transaction is missing, 'corrupt' when amcheck found damage
 * (a checksum failure among it), the sum of balances changed, or a history
 * row was never written; an open failure when PostgreSQL would not start.
 */
async function checkPGlite(w, ack) {
  const answer = await w.checkPGlite({
    dir: path.join(w.dir, 'pg'),
    acked: ack.acked,
    started: ack.started,
    balance: PGLITE.accounts * PGLITE.balance,
  });
  const result = { ok: 0, torn: 0, lost: 0, corrupt: 0, detected: 0, pages: [], pglite: answer };
  if (answer.checkerError) return { ...result, openFailure: `checker: ${oneLine(answer.checkerError).slice(0, 600)}` };
  if (answer.openError) return { ...result, openFailure: oneLine(answer.openError).slice(0, 600) };
  if (answer.missing.length > 0) {
    result.lost = 1;
    result.pages.push({
      cls: 'lost',
      detail: `${answer.missing.length} of ${ack.acked.length} acknowledged transactions missing (${answer.missing.slice(0, 5).join(', ')}${answer.missing.length > 5 ? ', …' : ''})`,
    });
  }
  const damage = [...answer.damage, ...answer.unknown.map((id) => `history ${id}: a transaction never started`)];
  if (damage.length > 0) {
    result.corrupt = 1;
    for (const d of damage.slice(0, 3)) result.pages.push({ cls: 'corrupt', detail: oneLine(d).slice(0, 300) });
  }
  if (result.lost + result.corrupt === 0) {
    result.ok = 1;
    result.pages.push({ cls: 'ok', detail: `${ack.acked.length} acknowledged, all there` });
  }
  return result;
}

/** Reads every page of `layout` (pageLayout()) from the files in `dir`: a Buffer (short at the end of a file) or an Error each. */
function readPages(dir, layout) {
  const fds = new Map();
  const out = layout.map(({ name, page }) => {
    if (!fds.has(name)) {
      try {
        fds.set(name, fs.openSync(path.join(dir, name), 'r'));
      } catch (e) {
        fds.set(name, e);
      }
    }
    const fd = fds.get(name);
    if (fd instanceof Error) return fd;
    const buf = Buffer.alloc(PAGE_SIZE);
    try {
      return buf.subarray(0, fs.readSync(fd, buf, 0, PAGE_SIZE, page * PAGE_SIZE));
    } catch (e) {
      return e;
    }
  });
  for (const fd of fds.values()) if (!(fd instanceof Error)) fs.closeSync(fd);
  return (p) => out[p];
}

/**
 * Replays `jobs` ([{ scenario, recording, state, ack }]) on `workers`
 * partitions of one loop device; calls onResult(job, result) for each.
 * result: { mountFailure?: string, ok, torn, lost, corrupt, pages }.
 */
export async function replay(jobs, options) {
  const { tools, dir, workers: nWorkers, onResult } = options;
  const image = path.join(dir, 'replay.img');
  // Partitions as large as the largest image to replay.
  const size = Math.max(...jobs.map((j) => j.recording.imageSize ?? IMAGE_SIZE), IMAGE_SIZE);
  const offsets = makeReplayImage(image, nWorkers, size);
  const dev = attachLoop(image, ['-P']);
  // partx adds the partitions with BLKPG: kernels without the MBR parser
  // (CONFIG_MSDOS_PARTITION unset, as here) do not find them on their own.
  const parts = offsets.map((_, k) => `${dev}p${k + 1}`);
  if (!parts.every((p) => fs.existsSync(p))) run('partx', ['-a', dev]);
  for (let t = 0; t < 100 && !parts.every((p) => fs.existsSync(p)); t++) sleepSync(20);
  if (!parts.every((p) => fs.existsSync(p))) throw new Error(`${dev}: partitions ${parts.join(', ')} did not appear`);
  const workers = offsets.map((off, k) => {
    const mnt = path.join(dir, `replay${k}.mnt`);
    fs.mkdirSync(mnt);
    held.mounts.push(mnt);
    return new Worker(tools, image, off, size, parts[k], mnt);
  });
  let next = 0;
  const loop = async (w) => {
    let base = null;
    while (next < jobs.length) {
      const job = jobs[next++];
      const { events } = job.recording;
      if (base !== job.recording.base) await w.must(`base ${(base = job.recording.base)}`);
      const replayOnce = async () => {
        await w.must('restore');
        w.apply(events, job.state);
        const sc = job.recording.scenario;
        const answer = await w.cmd(sc.fsType === 'ext4' ? 'mount ext4' : 'mount');
        if (!answer.startsWith('ok'))
          return {
            mountFailure: answer.replace(/^err \d+ /, ''),
            ok: 0,
            torn: 0,
            lost: 0,
            corrupt: 0,
            detected: 0,
            pages: [],
          };
        const { layout } = job.recording;
        const result =
          sc.group === 'pagefile'
            ? await checkPageFile(w.dir, job.ack, PAGES, sc.strategy)
            : sc.group === 'journal'
              ? await checkJournal(w.dir, job.ack, layout, sc.strategy)
              : sc.group === 'pglite'
                ? await checkPGlite(w, job.ack)
                : classify(readPages(w.dir, layout), job.ack, layout);
        let umount = await w.cmd('umount');
        if (!umount.startsWith('ok') && w.checker) {
          // A PGlite checker still holding a file of the mount: it goes, the umount is tried again.
          await w.dropChecker();
          umount = await w.cmd('umount');
        }
        if (!umount.startsWith('ok'))
          throw new Error(`statectl umount: ${umount}; ${job.scenario.name} state ${job.n}; ${openUnder(w.dir)}`);
        if (Number(umount.split(' ')[1]) > 0) options.onUmountWait?.(Number(umount.split(' ')[1]));
        return result;
      };
      const outcome = (r) => r.mountFailure ?? r.openFailure ?? r.pages.map((p) => `${p.cls} ${p.detail}`).join('|');
      let result = await replayOnce();
      if (options.recheck?.(job, result)) {
        // The same state once more: replay is deterministic (same bytes, same
        // log recovery), so a second result that differs is the replayer's
        // fault, never the code under test's.
        const again = await replayOnce();
        if (outcome(again) !== outcome(result)) {
          options.onMismatch?.(job, result, again);
          result = { ...again, mismatch: { first: result, second: again } };
        }
      }
      const keepAs = onResult(job, result);
      if (keepAs) {
        // The state as it was before its mount, for whoever investigates.
        await w.must('restore');
        w.apply(events, job.state);
        const copy = fs.openSync(keepAs, 'w');
        const buf = Buffer.alloc(MiB);
        for (let pos = 0; pos < w.size; pos += MiB) {
          fs.readSync(w.fd, buf, 0, MiB, w.offset + pos);
          if (buf.some((b) => b !== 0)) fs.writeSync(copy, buf, 0, MiB, pos);
        }
        fs.ftruncateSync(copy, w.size);
        fs.closeSync(copy);
      }
    }
  };
  const cleanUp = async () => {
    for (const w of workers) await w.close().catch(() => {});
    for (const w of workers) {
      if (mountedAt(w.dir)) unmount(w.dir);
      held.mounts = held.mounts.filter((d) => d !== w.dir);
    }
    releaseLoop(dev);
  };
  try {
    await Promise.all(workers.map(loop));
  } catch (err) {
    // A device still held after a worker failed: the worker's error is the one to see.
    await cleanUp().catch((again) => (err.message += `; then ${again.message}`));
    throw err;
  }
  await cleanUp();
}

// ---------------------------------------------------------------------------
// a suite

/** The class a state counts as: its worst page, or a mount failure. */
function worstOf(result) {
  if (result.mountFailure) return 'mountFailures';
  if (result.openFailure) return 'openFailures';
  return ['corrupt', 'lost', 'torn', 'detected'].find((k) => result[k] > 0) ?? 'ok';
}

/**
 * The page write the model tore in this state, if it tore one: the class its
 * page read back as, and whether it is a fresh page that read back absent.
 * A fresh page's blocks are allocated by its first write and mapped
 * (unwritten to written) by a log transaction once that write completed;
 * where that transaction is not in the state, any write of the page in it,
 * torn or not, reads back as absent.
 */
function tornWrite(job, result) {
  const t = job.state.tear;
  if (t?.kind !== 'data') return null;
  const index = job.recording.layout.findIndex((l) => l.file === t.file && l.page === t.page);
  const page = result.pages[index];
  return { cls: page?.cls, fresh: !!job.recording.layout[index]?.fresh && page?.version === 0 };
}

/** Adds one state's result to its scenario's report. */
function tally(r, job, result) {
  for (const k of ['ok', 'torn', 'lost', 'corrupt', 'detected']) r.pages[k] += result[k] ?? 0;
  r[worstOf(result)]++;
  if (result.recovery) {
    r.recovery.pagesRestored += result.recovery.pagesRestored;
    r.recovery.batchesDiscarded += result.recovery.batchesDiscarded;
  }
  const t = job.state.tear;
  // The torn page shows: read back torn (plain files), or refused as corrupt (page files).
  const shows = job.scenario.group === 'pagefile' ? ['torn', 'detected'] : ['torn'];
  const torn = tornWrite(job, result);
  if (torn?.fresh) r.tears.dataFresh++;
  else if (torn) {
    r.tears.data++;
    if (shows.includes(torn.cls)) r.tears.dataShown++;
  } else if (t?.kind === 'rel') {
    // PGlite: a relation page write torn; shown when the state was found damaged (or would not start).
    r.tears.data++;
    if (result.corrupt > 0 || result.openFailure) r.tears.dataShown++;
  } else if (t?.kind === 'wal') r.tears.wal++;
  else if (t?.kind === 'dblwr') r.tears.dblwr++;
  else if (t?.kind === 'log') r.tears.log++;
  else if (t?.kind === 'meta') r.tears.meta++;
}

/** True when this state alone would make its scenario's verdict fail. */
function failsVerdict(job, result) {
  const t = job.state.tear;
  if (job.scenario.kind === 'atomic') return worstOf(result) !== 'ok';
  if (job.scenario.kind === 'plain' || job.scenario.kind === 'journal-control') {
    const torn = tornWrite(job, result);
    return (torn && !torn.fresh && torn.cls !== 'torn') || result.lost + result.corrupt > 0 || !!result.mountFailure;
  }
  if (job.scenario.kind === 'pagefile' || job.scenario.kind === 'journal' || job.scenario.kind === 'pglite')
    return worstOf(result) !== 'ok';
  if (job.scenario.kind === 'pagefile-control') {
    return (
      (t?.kind === 'data' && tornWrite(job, result).cls !== 'detected') ||
      result.torn + result.lost + result.corrupt > 0 ||
      !!result.mountFailure ||
      !!result.openFailure
    );
  }
  return false;
}

/** Splits `total` states over the scenarios by kind weight (exactly `total` in all). */
export function plan(total, scenarios = SCENARIOS) {
  const weights = scenarios.reduce(
    (n, s) => n + WEIGHTS[s.kind] / scenarios.filter((t) => t.kind === s.kind).length,
    0,
  );
  const exact = scenarios.map(
    (s) => (total * WEIGHTS[s.kind]) / scenarios.filter((t) => t.kind === s.kind).length / weights,
  );
  const counts = exact.map(Math.floor);
  // Largest remainders get the states rounding left over.
  const order = exact.map((x, i) => [x - Math.floor(x), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const rest = total - counts.reduce((a, b) => a + b, 0);
  for (let k = 0; k < rest; k++) counts[order[k][1]]++;
  return new Map(scenarios.map((s, i) => [s.name, counts[i]]));
}

/**
 * Runs a whole suite: records every scenario, replays `states` crash states
 * over them, judges each scenario. Returns the report; images of failing
 * states are kept under `keepDir` (made on demand).
 */
export async function suite({
  states = 2000,
  seed = 1,
  workers = 2,
  log = () => {},
  keepDir,
  tearMetadata = false,
  groups = ['classic', 'pagefile', 'journal'],
} = {}) {
  const scenarios = (tearMetadata ? [...SCENARIOS, ...METADATA_TEAR_SCENARIOS] : SCENARIOS).filter((s) =>
    groups.includes(s.group),
  );
  installHandlers();
  const missing = missingPrerequisites();
  if (missing.length > 0) throw new Error(`crash lab cannot run here: ${missing.join('; ')}`);
  const started = Date.now();
  const stale = cleanupStale();
  if (stale.length > 0) log(`cleaned up after a killed run: ${stale.join(', ')}`);
  const tools = buildTools();
  const dir = workDir();
  const recordings = new Map();
  const bases = new Map();
  for (const r of RECORDED.filter((r) => scenarios.some((s) => s.recording === r.name))) {
    const rec = await record(r, { tools, dir, seed, bases });
    rec.events = rec.log;
    recordings.set(r.name, rec);
    // A scenario named atomic that double-wrote would prove nothing about the atomic path.
    if (r.pglite === 'atomic' && (rec.writer.strategy !== 'atomic' || rec.writer.journal !== null))
      throw new Error(`${r.name}: openPGlite took strategy ${rec.writer.strategy}, journal ${rec.writer.journal}`);
    const s = logSummary(rec.log);
    log(
      r.group === 'pglite'
        ? `recorded ${r.name}: ${rec.writer.transactions} transactions, ${rec.writer.checkpoints} checkpoints (fsync ${rec.writer.fsync}, full_page_writes ${rec.writer.fullPageWrites}${rec.writer.strategy ? `, strategy ${rec.writer.strategy}` : ''}); log: ${s.writes} block writes (${s.rel ?? 0} relation, ${s.dblwr} journal, ${s.wal ?? 0} WAL, ${s.log} XFS log, ${s.meta} metadata), ${s.flushes} flushes, ${s.marks} marks; ${rec.recordMs} ms`
        : `recorded ${r.name}: ${rec.writer.writes} page writes; log: ${s.writes} block writes (${s.data} data, ${s.dblwr ? `${s.dblwr} doublewrite, ` : ''}${s.log} log, ${s.meta} metadata), ${s.flushes} flushes, ${s.marks} marks; file in ${rec.extents} extents; ${rec.recordMs} ms`,
    );
  }
  const recordMs = Date.now() - started;

  const counts = plan(states, scenarios);
  const jobs = [];
  const report = new Map();
  for (const sc of scenarios) {
    const rec = recordings.get(sc.recording);
    const random = rng((seed ^ hashString('states ' + sc.name)) >>> 0);
    report.set(sc.name, {
      name: sc.name,
      kind: sc.kind,
      states: 0,
      ok: 0,
      torn: 0,
      lost: 0,
      corrupt: 0,
      mountFailures: 0,
      replayMismatches: 0,
      // Page files only: pages readPage refused (ERR_PAGE_CORRUPT), states whose open failed.
      detected: 0,
      openFailures: 0,
      recovery: { pagesRestored: 0, batchesDiscarded: 0 },
      pages: { ok: 0, torn: 0, lost: 0, corrupt: 0, detected: 0 },
      // data: page writes torn, but for dataFresh: those of a grown page that read back absent (tornWrite()).
      tears: { data: 0, dataShown: 0, dataFresh: 0, dblwr: 0, wal: 0, log: 0, meta: 0 },
      // PGlite: acknowledged transactions checked, and missing, over all states.
      transactions: { acknowledged: 0, missing: 0, checkMs: 0 },
      examples: [],
      kept: [],
    });
    for (let n = 0; n < counts.get(sc.name); n++) {
      const kind = sc.kind === 'pagefile-lying' || sc.kind === 'journal-lying' ? 'lying' : sc.kind;
      const state = drawState(rec.events, kind, random);
      const ack =
        sc.group === 'pglite'
          ? acknowledgedTransactions(rec.events, state.horizon)
          : acknowledged(rec.events, state.horizon, rec.layout.length);
      jobs.push({ scenario: sc, recording: rec, state, n, ack });
    }
  }

  let done = 0;
  let lastLog = Date.now();
  let keptDir = keepDir;
  const replayStarted = Date.now();
  // How often a device was still held after its umount (see statectl.c).
  const umountWaits = { count: 0, maxMs: 0 };
  await replay(jobs, {
    tools,
    dir,
    workers,
    onUmountWait(ms) {
      umountWaits.count++;
      umountWaits.maxMs = Math.max(umountWaits.maxMs, ms);
    },
    recheck: failsVerdict,
    onResult(job, result) {
      const r = report.get(job.scenario.name);
      r.states++;
      done++;
      if (result.mismatch) {
        // Not counted as ok, torn, lost or corrupt: the replayer could not
        // say twice the same thing about these bytes.
        r.replayMismatches++;
        log(`${job.scenario.name}, state ${job.n}: two replays of the same state disagree (kept)`);
      } else {
        tally(r, job, result);
        if (result.pglite && !result.openFailure) {
          r.transactions.acknowledged += job.ack.acked.length;
          r.transactions.missing += result.pglite.missing.length;
          r.transactions.checkMs += result.pglite.ms;
        }
      }
      // What would make this scenario fail: keep that state's image.
      const failing = !!result.mismatch || failsVerdict(job, result);
      if ((result.mismatch || worstOf(result) !== 'ok') && r.examples.length < 3) {
        const bad = result.pages
          .map((p, i) => ({ page: i, ...p }))
          .filter((p) => p.cls !== 'ok')
          .slice(0, 3);
        r.examples.push({
          state: job.n,
          how: job.state.how,
          mountFailure: result.mountFailure,
          openFailure: result.openFailure,
          pages: bad,
          ...(result.mismatch ? { replayMismatch: true } : {}),
        });
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(
          `replayed ${done}/${jobs.length} states (${Math.round((done / (Date.now() - replayStarted)) * 60_000)}/min)`,
        );
      }
      if (failing && r.kept.length < 3) {
        keptDir ??= fs.mkdtempSync(path.join(os.tmpdir(), `untorn-crash-kept-seed${seed}-`));
        const file = path.join(keptDir, `${job.scenario.name.replace(/\W+/g, '-')}.state${job.n}.img`);
        fs.writeFileSync(
          file.replace(/\.img$/, '.json'),
          JSON.stringify(
            {
              scenario: job.scenario.name,
              seed,
              state: job.n,
              how: job.state.how,
              tear: job.state.tear,
              result: { ...result },
            },
            null,
            1,
          ) + '\n',
        );
        r.kept.push(file);
        // The recording too: base image and log (a rerun records anew, and
        // timing decides where XFS's writes fall, so the seed alone
        // reproduces the draw, not the log).
        for (const f of [job.recording.base, job.recording.logFile]) {
          const to = path.join(keptDir, path.basename(f));
          if (!fs.existsSync(to)) fs.copyFileSync(f, to);
        }
        return file;
      }
      return null;
    },
  });
  const replayMs = Date.now() - replayStarted;

  // Verdicts.
  const failures = [];
  for (const r of report.values()) {
    // A state whose two replays disagree is the replayer's fault (the same
    // bytes must mount the same way); a few are reported, more fail the run.
    if (r.replayMismatches > r.states / 100)
      failures.push(
        `${r.name}: ${r.replayMismatches} states replayed differently twice (the replayer is unreliable here)`,
      );
    if (r.kind === 'atomic') {
      if (r.torn + r.lost + r.corrupt + r.mountFailures > 0)
        failures.push(
          `${r.name}: ${r.torn} torn, ${r.lost} lost, ${r.corrupt} corrupt, ${r.mountFailures} mount failures`,
        );
    } else if (r.kind === 'plain' || r.kind === 'journal-control') {
      if (r.tears.data === 0) failures.push(`${r.name}: the model tore no data write (no control)`);
      else if (r.tears.dataShown !== r.tears.data)
        failures.push(
          `${r.name}: ${r.tears.data - r.tears.dataShown} of ${r.tears.data} torn page writes did not show a torn page`,
        );
      if (r.lost + r.corrupt + r.mountFailures > 0)
        failures.push(
          `${r.name}: ${r.lost} lost, ${r.corrupt} corrupt, ${r.mountFailures} mount failures with flushes honoured`,
        );
    } else if (r.kind === 'lying' && r.lost + r.corrupt === 0) {
      failures.push(`${r.name}: a disk that drops flushes lost nothing (the checker would miss lost writes)`);
    } else if (r.kind === 'pagefile' || r.kind === 'journal') {
      if (r.torn + r.lost + r.corrupt + r.detected + r.mountFailures + r.openFailures > 0) {
        failures.push(
          `${r.name}: ${r.torn} torn, ${r.lost} lost, ${r.corrupt} corrupt, ${r.detected} detected, ${r.mountFailures} mount failures, ${r.openFailures} open failures`,
        );
      }
      if (r.tears.data === 0) failures.push(`${r.name}: the model tore no page write`);
      if (r.name.includes('doublewrite') && r.tears.dblwr === 0)
        failures.push(`${r.name}: the model tore no doublewrite-file write`);
    } else if ((r.kind === 'pagefile-lying' || r.kind === 'journal-lying') && r.lost + r.corrupt === 0) {
      failures.push(
        `${r.name}: a disk that drops flushes lost nothing (the ${r.kind === 'journal-lying' ? 'journal' : 'page file'} checker would miss lost writes)`,
      );
    } else if (r.kind === 'pglite') {
      if (r.torn + r.lost + r.corrupt + r.detected + r.mountFailures + r.openFailures > 0)
        failures.push(
          `${r.name}: ${r.lost} states lost acknowledged transactions, ${r.corrupt} damaged, ${r.mountFailures} mount failures, ${r.openFailures} open failures`,
        );
      if (r.tears.data === 0) failures.push(`${r.name}: the model tore no relation page write`);
      // The atomic strategy has no journal: its pages are whole because each write is.
      if (r.tears.dblwr === 0 && !r.name.includes('atomic'))
        failures.push(`${r.name}: the model tore no journal write`);
      if (r.ok > 0 && r.transactions.acknowledged === 0)
        failures.push(`${r.name}: no state had an acknowledged transaction to check`);
    } else if (r.kind === 'pglite-nodefs') {
      if (r.transactions.missing === 0)
        failures.push(
          `${r.name}: NodeFS as shipped (fsync off) lost nothing (the checker would miss lost transactions)`,
        );
      if (r.mountFailures > 0) failures.push(`${r.name}: ${r.mountFailures} mount failures`);
    } else if (r.kind === 'pglite-unjournaled') {
      if (r.tears.data === 0) failures.push(`${r.name}: the model tore no relation page write (no control)`);
      else if (r.tears.dataShown === 0)
        failures.push(
          `${r.name}: none of ${r.tears.data} torn relation page writes showed damage (the checker would miss torn pages)`,
        );
      if (r.mountFailures > 0) failures.push(`${r.name}: ${r.mountFailures} mount failures`);
    } else if (r.kind === 'pagefile-control') {
      if (r.tears.data === 0) failures.push(`${r.name}: the model tore no page write (no control)`);
      else if (r.tears.dataShown !== r.tears.data)
        failures.push(
          `${r.name}: ${r.tears.data - r.tears.dataShown} of ${r.tears.data} torn page writes were not detected`,
        );
      if (r.torn + r.lost + r.corrupt + r.mountFailures + r.openFailures > 0) {
        failures.push(
          `${r.name}: ${r.torn} torn returned, ${r.lost} lost, ${r.corrupt} corrupt, ${r.mountFailures} mount failures, ${r.openFailures} open failures`,
        );
      }
    }
  }
  return {
    seed,
    workers,
    states: jobs.length,
    recordMs,
    replayMs,
    statesPerMinute: Math.round((jobs.length / replayMs) * 60_000),
    umountWaits,
    recordings: [...recordings.values()].map((r) => ({
      name: r.scenario.name,
      extents: r.extents,
      pageWrites: r.writer.writes,
      // The strategy the writer's file, page file or database reported, where it has one.
      strategy: r.writer.strategy ?? null,
      journal: r.writer.journal ?? null,
      log: logSummary(r.log),
    })),
    scenarios: [...report.values()],
    failures,
    keptDir: keptDir ?? null,
  };
}
