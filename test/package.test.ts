// The package as users get it: `npm pack` makes a tarball (its prepack step,
// scripts/prebuilds.sh, the linux-x64 and linux-arm64 prebuilds), and that
// tarball installs into an empty app, with no compiler on PATH, where both
// require() and import work and the prebuild supplies the addon.
// It all happens in temporary copies: the checkout's own build is untouched.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-pack-'));
const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, npm_config_loglevel: 'error' },
  });

/** The real path of a program on PATH. */
const which = (program: string) => fs.realpathSync(run('sh', ['-c', `command -v ${program}`], root).trim());

// A PATH with node, npm, npx and sh only: no g++, cc, make or python3, so
// node-gyp-build could not build from source even if it tried.
const noCompilerBin = path.join(work, 'bin');
const noCompilerEnv = () => ({ ...process.env, PATH: noCompilerBin });

let app: string;
let tarball: string;
let packStdout: string;

beforeAll(() => {
  const pkg = path.join(work, 'pkg');
  fs.mkdirSync(pkg);
  for (const entry of [
    'package.json',
    'package-lock.json',
    'binding.gyp',
    'tsconfig.json',
    'native',
    'lib',
    'scripts',
  ]) {
    fs.cpSync(path.join(root, entry), path.join(pkg, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
  packStdout = run('npm', ['pack', '--silent'], pkg);
  tarball = path.join(pkg, packStdout.trim());
  fs.mkdirSync(noCompilerBin);
  fs.symlinkSync(process.execPath, path.join(noCompilerBin, 'node'));
  for (const program of ['npm', 'npx', 'sh']) fs.symlinkSync(which(program), path.join(noCompilerBin, program));
  app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app, noCompilerEnv());
}, 300_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('prints only the tarball name on stdout (the prebuild lines go to stderr)', () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(packStdout).toBe(`untorn-${version}.tgz\n`);
  });

  it('ships the compiled API with its types, the sources and stripped N-API prebuilds for x64 and arm64', () => {
    const files = run('tar', ['-tzf', tarball], work).split('\n');
    for (const f of [
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/binding.gyp',
      'package/native/atomic_io.cc',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('package/prebuilds/')).sort()).toEqual([
      'package/prebuilds/linux-arm64/untorn.glibc.node',
      'package/prebuilds/linux-x64/untorn.glibc.node',
    ]);
    expect(
      files.some(
        (f) => f.startsWith('package/lib/') || f.startsWith('package/build/') || f.startsWith('package/scripts/'),
      ),
    ).toBe(false);
  });

  it('ships prebuilds that need no shared library but libc and libstdc++', () => {
    const installed = path.join(app, 'node_modules', 'untorn', 'prebuilds');
    for (const [arch, machine] of [
      ['x64', 'Advanced Micro Devices X86-64'],
      ['arm64', 'AArch64'],
    ]) {
      const file = path.join(installed, `linux-${arch}`, 'untorn.glibc.node');
      expect(run('readelf', ['-h', file], work)).toContain(`Machine:                           ${machine}`);
      const dynamic = run('readelf', ['-d', file], work);
      expect([...dynamic.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) => m[1]).sort()).toEqual([
        'libc.so.6',
        'libstdc++.so.6',
      ]);
      expect(run('readelf', ['-S', file], work)).not.toContain('.symtab'); // stripped
    }
  });

  it('installs into an empty app from the prebuild, with no compiler on PATH and none run', () => {
    for (const program of ['g++', 'c++', 'cc', 'gcc', 'make', 'python3']) {
      expect(() => run('sh', ['-c', `command -v ${program}`], app, noCompilerEnv()), program).toThrow();
    }
    const installed = path.join(app, 'node_modules', 'untorn');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    const loaded = run(
      'node',
      [
        '-e',
        `
      const resolved = require('node-gyp-build').path(require('path').dirname(require.resolve('untorn/package.json')));
      require('untorn');
      const mapped = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n')
        .map((l) => l.split(/\\s+/)[5]).filter((f) => f && f.endsWith('.node'));
      console.log(JSON.stringify({ resolved, mapped: [...new Set(mapped)] }));
    `,
      ],
      app,
      noCompilerEnv(),
    );
    const prebuild = fs.realpathSync(path.join(installed, 'prebuilds', 'linux-x64', 'untorn.glibc.node'));
    expect(JSON.parse(loaded)).toEqual({ resolved: prebuild, mapped: [prebuild] });
  });

  it('works through require()', () => {
    const out = run(
      'node',
      [
        '-e',
        `
      const u = require('untorn');
      const b = u.allocAligned(16384);
      const info = u.statAtomicSync(process.cwd());
      console.log(JSON.stringify({ keys: Object.keys(u).sort(), len: b.length, blockSize: info.blockSize }));
    `,
      ],
      app,
    );
    const { keys, len, blockSize } = JSON.parse(out);
    expect(keys).toEqual([
      'AtomicFile',
      'AtomicWriteError',
      'BenchError',
      'Journal',
      'JournalError',
      'JournaledFile',
      'PageFile',
      'PageFileError',
      'ProbeError',
      'allocAligned',
      'bench',
      'blockDeviceLimits',
      'crc32c',
      'ioEngine',
      'open',
      'openJournal',
      'openJournalSync',
      'openPageFile',
      'openSync',
      'probe',
      'statAtomic',
      'statAtomicSync',
    ]);
    expect(len).toBe(16384);
    expect(blockSize).toBeGreaterThan(0);
  });

  it('types a TypeScript program through the shipped .d.ts', () => {
    fs.writeFileSync(
      path.join(app, 'check.ts'),
      `
      import { open, allocAligned, statAtomic, AtomicWriteError, type AtomicWriteInfo, type AtomicFile } from 'untorn';
      export async function page(file: AtomicFile, n: number): Promise<number> {
        const info: AtomicWriteInfo = await statAtomic(file.fd);
        const buf: Buffer = allocAligned(info.unitMin || 16384);
        try {
          return await file.writeAtomic(buf, n * buf.length, { dsync: true });
        } catch (err) {
          if (err instanceof AtomicWriteError) return err.unitMax;
          throw err;
        }
      }
      export const opened: Promise<AtomicFile> = open('/x', 'r+');
      // @ts-expect-error: the position is a number
      export const wrong = opened.then((f) => f.writeAtomic(allocAligned(4096), '0'));
    `,
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--target',
      'es2022',
      '--lib',
      'es2023,esnext.disposable',
      '--types',
      'node',
      '--typeRoots',
      path.join(root, 'node_modules', '@types'),
      'check.ts',
    ];
    expect(() => run(process.execPath, [tsc, ...args], app)).not.toThrow();
  });

  it('installs the untorn command', () => {
    const report = JSON.parse(run('npx', ['--no-install', 'untorn', 'probe', app, '--json'], app));
    expect(report.target).toBe(app);
    expect(report.kernel).toBe(os.release());
    expect(run('npx', ['--no-install', 'untorn', 'bench', '--help'], app)).toMatch(/^usage: untorn bench/);
  });

  it('works through import', () => {
    const out = run(
      'node',
      [
        '--input-type=module',
        '-e',
        `
      import { statAtomic, allocAligned, AtomicWriteError, open } from 'untorn';
      const info = await statAtomic(process.cwd());
      console.log(typeof open, typeof AtomicWriteError, allocAligned(4096).length, typeof info.supported);
    `,
      ],
      app,
    );
    expect(out.trim()).toBe('function function 4096 boolean');
  });
});
