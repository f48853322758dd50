// The package as users get it: prebuildify makes a prebuild, `npm pack` a
// tarball, and that tarball installs into an empty app where both require()
// and import work and the prebuild (not a compiler) supplies the addon.
// It all happens in temporary copies: the checkout's own build is untouched.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-pack-'));
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_loglevel: 'error' } });

let app: string;
let tarball: string;

beforeAll(() => {
  const pkg = path.join(work, 'pkg');
  fs.mkdirSync(pkg);
  for (const entry of ['package.json', 'package-lock.json', 'binding.gyp', 'tsconfig.json', 'native', 'lib']) {
    fs.cpSync(path.join(root, entry), path.join(pkg, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
  run('npm', ['run', 'prebuild'], pkg);
  tarball = path.join(pkg, run('npm', ['pack', '--silent'], pkg).trim().split('\n').pop()!);
  app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
}, 300_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships the compiled API with its types, the sources and a stripped N-API prebuild', () => {
    const files = run('tar', ['-tzf', tarball], work).split('\n');
    for (const f of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/binding.gyp', 'package/native/atomic_io.cc']) {
      expect(files).toContain(f);
    }
    const prebuild = files.find((f) => /^package\/prebuilds\/linux-x64\/.*\.node$/.test(f));
    expect(prebuild, files.join('\n')).toBeDefined();
    expect(files.some((f) => f.startsWith('package/lib/') || f.startsWith('package/build/'))).toBe(false);
  });

  it('installs into an empty app from the prebuild, with no compiler run', () => {
    const installed = path.join(app, 'node_modules', 'untorn');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    const loaded = run('node', ['-p', "require.resolve('node-gyp-build') && require('node-gyp-build').path(require('path').dirname(require.resolve('untorn/package.json')))"], app);
    expect(loaded.trim()).toMatch(/prebuilds\/linux-x64\/.*\.node$/);
  });

  it('works through require()', () => {
    const out = run('node', ['-e', `
      const u = require('untorn');
      const b = u.allocAligned(16384);
      const info = u.statAtomicSync(process.cwd());
      console.log(JSON.stringify({ keys: Object.keys(u).sort(), len: b.length, blockSize: info.blockSize }));
    `], app);
    const { keys, len, blockSize } = JSON.parse(out);
    expect(keys).toEqual([
      'AtomicFile', 'AtomicWriteError', 'BenchError', 'PageFile', 'PageFileError', 'ProbeError', 'allocAligned', 'bench',
      'blockDeviceLimits', 'crc32c', 'ioEngine', 'open', 'openPageFile', 'openSync', 'probe', 'statAtomic', 'statAtomicSync',
    ]);
    expect(len).toBe(16384);
    expect(blockSize).toBeGreaterThan(0);
  });

  it('types a TypeScript program through the shipped .d.ts', () => {
    fs.writeFileSync(path.join(app, 'check.ts'), `
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
    `);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable',
      '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'check.ts'];
    expect(() => run(process.execPath, [tsc, ...args], app)).not.toThrow();
  });

  it('installs the untorn command', () => {
    const report = JSON.parse(run('npx', ['--no-install', 'untorn', 'probe', app, '--json'], app));
    expect(report.target).toBe(app);
    expect(report.kernel).toBe(os.release());
    expect(run('npx', ['--no-install', 'untorn', 'bench', '--help'], app)).toMatch(/^usage: untorn bench/);
  });

  it('works through import', () => {
    const out = run('node', ['--input-type=module', '-e', `
      import { statAtomic, allocAligned, AtomicWriteError, open } from 'untorn';
      const info = await statAtomic(process.cwd());
      console.log(typeof open, typeof AtomicWriteError, allocAligned(4096).length, typeof info.supported);
    `], app);
    expect(out.trim()).toBe('function function 4096 boolean');
  });
});
