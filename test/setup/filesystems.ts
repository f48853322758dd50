// vitest globalSetup: makes the real filesystems the tests run on, once per
// test run, and removes them again afterwards.
//
//   xfs4k   XFS, mkfs defaults (4K blocks, reflink), 1 GiB sparse image, loop mount
//   xfs16k  XFS, -b size=16384, 2 GiB sparse image, loop mount
//   ext4    ext4, 4K blocks (mke2fs would pick 1K for so small a disk), 256 MiB sparse image, loop mount
//   tmpfs   tmpfs, size=256m
//
// All four are mounted under one fresh os.tmpdir()/untorn-fs-XXXXXX root; the
// images live in a fresh /dev/shm/untorn-img-XXXXXX (RAM-backed, so fast), or
// under os.tmpdir() where there is no /dev/shm. The result is provided to the
// tests as `filesystems` (see test/helpers/filesystems.ts):
//   { ok: true, xfs4k: Fixture, xfs16k: Fixture, ext4: Fixture, tmpfs: Fixture }
//   { ok: false, reason: 'one line' }      (with UNTORN_REQUIRE_FS=1: setup throws instead)
//
// Cleanup is synchronous (execFileSync) so that it can also run from a
// process 'exit' handler: vitest exits on SIGINT/SIGTERM without running
// globalSetup teardowns. Leftovers of a run that was SIGKILLed are removed at
// the start of the next run (only paths containing /untorn-fs- or
// /untorn-img- whose owning vitest process is gone).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { parseMountInfo, type MountLine } from '../../lib/stack';
import type { Filesystems, Fixture, FixtureName, FsType } from '../helpers/filesystems';

export type { Filesystems, Fixture, FixtureName, FsType };

declare module 'vitest' {
  export interface ProvidedContext {
    filesystems: Filesystems;
  }
}

const FS_PREFIX = 'untorn-fs-';
const IMG_PREFIX = 'untorn-img-';
const OWNER_FILE = '.untorn-owner';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface Spec {
  name: FixtureName;
  type: FsType;
  /** Image size in bytes (loop-backed filesystems only). */
  size?: number;
  /** mkfs program and its arguments before the image path. */
  mkfs?: [program: string, args: string[]];
  /** Mount options for tmpfs. */
  tmpfsOptions?: string;
}

const SPECS: Spec[] = [
  { name: 'xfs4k', type: 'xfs', size: 1 * GiB, mkfs: ['mkfs.xfs', ['-q', '-f']] },
  { name: 'xfs16k', type: 'xfs', size: 2 * GiB, mkfs: ['mkfs.xfs', ['-q', '-f', '-b', 'size=16384']] },
  { name: 'ext4', type: 'ext4', size: 256 * MiB, mkfs: ['mkfs.ext4', ['-q', '-F', '-b', '4096']] },
  { name: 'tmpfs', type: 'tmpfs', tmpfsOptions: 'size=256m' },
];

/** What one run made, in the order it was made; cleanup undoes it. */
interface State {
  /** Mount points. */
  mounts: string[];
  /** Image files, with the mount point each is mounted on. */
  images: { image: string; dir: string }[];
  /** Directories to remove (mount root, image dir). */
  dirs: string[];
  /** Mount points that had to be unmounted lazily. */
  lazy: Set<string>;
}

// ---------------------------------------------------------------------------
// small utilities

function oneLine(s: string): string {
  return s
    .replace(/\s*\n\s*/g, '; ')
    .replace(/\s+/g, ' ')
    .replace(/^[; ]+|[; ]+$/g, '');
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable on PATH or in the sbin/bin dirs, or null. */
function which(program: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const tools = new Map<string, string>();

function tool(program: string): string {
  const found = tools.get(program) ?? which(program);
  if (!found) throw new Error(`${program} not found`);
  tools.set(program, found);
  return found;
}

/** Runs a program (no shell); throws with its stderr on failure. */
function run(program: string, args: string[], timeoutMs = 120_000): string {
  try {
    return execFileSync(tool(program), args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
  } catch (e) {
    const err = e as { stderr?: string; status?: number | null; signal?: string | null; message?: string };
    // First line of stderr is the message; the rest is often a usage text.
    const lines = String(err.stderr ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    let stderr = oneLine(lines[0] ?? '') + (lines.length > 1 ? ' …' : '');
    if (stderr.length > 300) stderr = stderr.slice(0, 300) + ' …';
    const how =
      err.status != null ? `exit ${err.status}` : err.signal ? `killed by ${err.signal}` : oneLine(err.message ?? '');
    throw new Error(`${program} ${args.join(' ')} failed (${how})${stderr ? `: ${stderr}` : ''}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------
// mounts and loop devices

/** This process's mounts, read as lib/stack.ts reads them. */
function readMounts(): MountLine[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The topmost mount at exactly this path, if any. */
function mountAt(dir: string): MountLine | undefined {
  return readMounts()
    .filter((m) => m.mountPoint === dir)
    .pop();
}

function mountsUnder(dir: string): MountLine[] {
  return readMounts().filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(dir + '/'));
}

/**
 * Unmounts dir (all mounts stacked on it); retries while busy (about 0.75 s),
 * then detaches it lazily. Returns false if it had to be lazy: the filesystem
 * (and its loop device) then lives on until its last user goes.
 */
function unmount(dir: string): boolean {
  let lastError = '';
  for (let attempt = 0; attempt < 6 && mountAt(dir); attempt++) {
    try {
      run('umount', [dir]);
    } catch (e) {
      lastError = errorText(e);
      if (attempt < 5) sleepSync(50 * (attempt + 1));
    }
  }
  if (!mountAt(dir)) return true;
  process.stderr.write(`untorn: ${dir} still busy (${lastError}); unmounting lazily (umount -l)\n`);
  for (let attempt = 0; attempt < 4 && mountAt(dir); attempt++) run('umount', ['-l', dir]);
  if (mountAt(dir)) throw new Error(`could not unmount ${dir}: ${lastError}`);
  return false;
}

interface LoopEntry {
  name: string;
  backFile: string;
}

function listLoops(): LoopEntry[] {
  const out = run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']).trim();
  if (!out) return [];
  const parsed = JSON.parse(out) as { loopdevices?: { name: string; 'back-file': string | null }[] };
  return (parsed.loopdevices ?? []).map((d) => ({ name: d.name, backFile: d['back-file'] ?? '' }));
}

/** Loop devices backed by this image (`losetup -j`). */
function loopsOf(image: string): string[] {
  const out = run('losetup', ['-j', image]);
  return out
    .split('\n')
    .map((line) => /^(\/dev\/loop\d+):/.exec(line)?.[1])
    .filter((d): d is string => !!d);
}

function detachLoop(device: string): void {
  try {
    run('losetup', ['-d', device]);
  } catch (e) {
    // Gone already (autoclear raced us) is fine.
    if (!/No such device|No such file|not a block device/i.test(errorText(e))) throw e;
  }
}

/**
 * umount frees a `mount -o loop` device (autoclear), but the release can lag
 * a little; give it a moment, then detach whatever is still attached.
 */
function freeLoopsOf(image: string, lazy: boolean): void {
  if (!fs.existsSync(image)) return;
  let devices = loopsOf(image);
  for (let attempt = 0; attempt < 10 && devices.length > 0; attempt++) {
    sleepSync(50);
    devices = loopsOf(image);
  }
  for (const device of devices) detachLoop(device);
  const left = loopsOf(image);
  if (left.length === 0) return;
  if (lazy) {
    // losetup -d on a busy device only marks it autoclear.
    process.stderr.write(
      `untorn: ${left.join(', ')} (${image}) still in use by a lazily unmounted filesystem; ` +
        'it is freed when the last process using it exits\n',
    );
    return;
  }
  throw new Error(`loop device(s) ${left.join(', ')} still attached to ${image}`);
}

function removeDir(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const mounted = mountsUnder(dir);
  if (mounted.length > 0) {
    throw new Error(`not removing ${dir}: still mounted: ${mounted.map((m) => m.mountPoint).join(', ')}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// ownership, so a run only cleans up after dead runs, never a live one

function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the parenthesised command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function writeOwner(dir: string): void {
  const owner = { pid: process.pid, start: processStartTime(process.pid) };
  fs.writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify(owner) + '\n');
}

/** True when the run that made dir is still alive (or dir is brand new). */
function ownerAlive(dir: string): boolean {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as {
      pid: number;
      start: string | null;
    };
    if (owner.pid === process.pid) return false;
    const start = processStartTime(owner.pid);
    return start !== null && start === owner.start;
  } catch {
    // No owner file: a run between mkdtemp and writeOwner, or one that died
    // right there. Leave it alone for a while.
    try {
      return Date.now() - fs.statSync(dir).mtimeMs < 30_000;
    } catch {
      return false;
    }
  }
}

/** The `.../untorn-fs-XXXXXX` (or img) directory a path lies in, or null. */
function prefixedAncestor(p: string, prefix: string): string | null {
  const parts = p.split('/');
  const i = parts.findIndex((part) => part.startsWith(prefix));
  return i > 0 ? parts.slice(0, i + 1).join('/') : null;
}

/** Removes what earlier, killed runs left: mounts, loop devices, dirs. */
function cleanupStale(): void {
  const done: string[] = [];
  const problems: string[] = [];
  const attempt = (what: string, fn: () => void) => {
    try {
      fn();
      done.push(what);
    } catch (e) {
      problems.push(oneLine(errorText(e)));
    }
  };

  // 1. Mounts, deepest first.
  const staleMounts = readMounts()
    .map((m) => m.mountPoint)
    .filter((mp) => mp.includes('/' + FS_PREFIX))
    .filter((mp) => {
      const root = prefixedAncestor(mp, FS_PREFIX);
      return root !== null && !ownerAlive(root);
    })
    .sort((a, b) => b.length - a.length);
  for (const mp of new Set(staleMounts)) attempt(`umount ${mp}`, () => unmount(mp));

  // 2. Loop devices on untorn images (normally freed by the umounts above).
  for (const loop of listLoops()) {
    if (!loop.backFile.includes('/' + IMG_PREFIX)) continue;
    const imgDir = prefixedAncestor(loop.backFile.replace(/ \(deleted\)$/, ''), IMG_PREFIX);
    if (imgDir && fs.existsSync(imgDir) && ownerAlive(imgDir)) continue;
    attempt(`losetup -d ${loop.name}`, () => detachLoop(loop.name));
  }

  // 3. Directories.
  const parents = new Set<string>();
  for (const p of [os.tmpdir(), '/tmp', '/dev/shm']) {
    try {
      parents.add(fs.realpathSync(p));
    } catch {
      // no such parent
    }
  }
  for (const parent of parents) {
    let names: string[];
    try {
      names = fs.readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.startsWith(FS_PREFIX) && !name.startsWith(IMG_PREFIX)) continue;
      const dir = path.join(parent, name);
      try {
        if (!fs.lstatSync(dir).isDirectory()) continue;
      } catch {
        continue;
      }
      if (ownerAlive(dir)) continue;
      attempt(`rm -r ${dir}`, () => removeDir(dir));
    }
  }

  if (done.length > 0) {
    process.stderr.write(`untorn: cleaned up leftovers of an earlier run: ${done.join(', ')}\n`);
  }
  for (const problem of problems) {
    process.stderr.write(`untorn: could not clean up a leftover of an earlier run: ${problem}\n`);
  }
}

// ---------------------------------------------------------------------------
// setup and teardown

/** Throws with a one-line reason when the filesystems cannot be made here. */
function checkPreconditions(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(`not root (uid ${process.getuid?.() ?? 'unknown'}); mounting needs root`);
  }
  if (!which('mkfs.xfs')) throw new Error('mkfs.xfs not found (apt-get install xfsprogs)');
  if (!which('mkfs.ext4')) throw new Error('mkfs.ext4 not found (apt-get install e2fsprogs)');
  for (const program of ['mount', 'umount', 'losetup']) {
    if (!which(program)) throw new Error(`${program} not found (apt-get install mount util-linux)`);
  }
  if (!fs.existsSync('/dev/loop-control')) {
    throw new Error('no loop device: /dev/loop-control does not exist (modprobe loop)');
  }
}

function makeFixture(spec: Spec, root: string, imgDir: string, state: State): Fixture {
  const dir = path.join(root, spec.name);
  fs.mkdirSync(dir);
  let image: string | null = null;
  if (spec.type === 'tmpfs') {
    state.mounts.push(dir);
    run('mount', ['-t', 'tmpfs', '-o', spec.tmpfsOptions ?? 'size=256m', 'tmpfs', dir]);
  } else {
    image = path.join(imgDir, `${spec.name}.img`);
    fs.closeSync(fs.openSync(image, 'wx'));
    state.images.push({ image, dir });
    fs.truncateSync(image, spec.size!); // sparse
    const [mkfs, args] = spec.mkfs!;
    run(mkfs, [...args, image]);
    state.mounts.push(dir);
    try {
      run('mount', ['-o', 'loop', image, dir]);
    } catch (e) {
      const msg = errorText(e);
      throw new Error(/failed to set ?up loop|free loop|loop device/i.test(msg) ? `no loop device: ${msg}` : msg, {
        cause: e,
      });
    }
  }

  const mounted = mountAt(dir);
  if (!mounted) throw new Error(`${dir} is not a mount point after mounting`);
  if (mounted.type !== spec.type) throw new Error(`${dir} is ${mounted.type}, expected ${spec.type}`);
  let device: string | null = null;
  if (image !== null) {
    if (!/^\/dev\/loop\d+$/.test(mounted.source)) {
      throw new Error(`${dir} is mounted from ${mounted.source}, expected a /dev/loopN device`);
    }
    device = mounted.source;
  }
  return { name: spec.name, type: spec.type, dir, image, device };
}

function build(state: State): Filesystems {
  checkPreconditions();
  cleanupStale();

  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), FS_PREFIX)));
  state.dirs.push(root);
  writeOwner(root);

  let imgBase = os.tmpdir();
  try {
    if (fs.statSync('/dev/shm').isDirectory()) imgBase = '/dev/shm';
  } catch {
    // no /dev/shm: images go to os.tmpdir()
  }
  const imgDir = fs.realpathSync(fs.mkdtempSync(path.join(imgBase, IMG_PREFIX)));
  state.dirs.push(imgDir);
  writeOwner(imgDir);

  const made: Partial<Record<FixtureName, Fixture>> = {};
  for (const spec of SPECS) {
    try {
      made[spec.name] = makeFixture(spec, root, imgDir, state);
    } catch (e) {
      throw new Error(`${spec.name}: ${errorText(e)}`, { cause: e });
    }
  }
  return { ok: true, ...made } as Filesystems;
}

/** Undoes everything in state; idempotent. Returns one line per problem. */
function cleanup(state: State): string[] {
  const problems: string[] = [];
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      problems.push(oneLine(errorText(e)));
    }
  };
  for (const dir of [...state.mounts].reverse()) {
    attempt(() => {
      if (!unmount(dir)) state.lazy.add(dir);
    });
  }
  for (const { image, dir } of state.images) attempt(() => freeLoopsOf(image, state.lazy.has(dir)));
  for (const dir of [...state.dirs].reverse()) attempt(() => removeDir(dir));
  // Forget what is gone; keep what failed so a later call can retry it.
  state.mounts = state.mounts.filter((dir) => !!mountAt(dir));
  state.images = state.images.filter(({ image }) => fs.existsSync(image));
  state.dirs = state.dirs.filter((dir) => fs.existsSync(dir));
  return problems;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const required = process.env.UNTORN_REQUIRE_FS === '1';
  const state: State = { mounts: [], images: [], dirs: [], lazy: new Set() };

  // vitest answers SIGINT/SIGTERM with process.exit() and never runs
  // globalSetup teardowns then; this keeps mounts from outliving the run.
  const onExit = () => {
    cleanup(state);
  };
  // Runs before any other handler of the signal (prepended): if there is
  // none, die of the signal as the process would have without us.
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup(state);
    if (process.listenerCount(signal) === 0) {
      removeHandlers();
      process.kill(process.pid, signal);
    }
  };
  const removeHandlers = () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  };
  process.on('exit', onExit);
  process.prependOnceListener('SIGINT', onSignal);
  process.prependOnceListener('SIGTERM', onSignal);
  process.prependOnceListener('SIGHUP', onSignal);

  let result: Filesystems | undefined;
  let failure: string | undefined;
  try {
    result = build(state);
  } catch (e) {
    failure = oneLine(errorText(e));
  } finally {
    if (result === undefined) {
      const problems = cleanup(state);
      if (problems.length > 0) failure = `${failure ?? 'setup failed'}; cleanup: ${problems.join('; ')}`;
      removeHandlers();
    }
  }

  if (result === undefined) {
    const reason = failure ?? 'unknown error';
    if (required)
      throw new Error(`untorn: UNTORN_REQUIRE_FS=1 but the real filesystems could not be set up: ${reason}`);
    result = { ok: false, reason };
  }
  project.provide('filesystems', result);

  return async function teardown() {
    const problems = cleanup(state);
    removeHandlers();
    if (problems.length > 0) {
      throw new Error(`untorn: cleaning up the real filesystems failed: ${problems.join('; ')}`);
    }
  };
}
