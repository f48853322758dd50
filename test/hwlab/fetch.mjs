// What the hardware lab runs on, fetched from Debian's registry into the lab's
// cache (nothing is installed on the host): trixie's QEMU (the first with the
// per-namespace NVMe atomic-write properties Linux 7.x honours) with its whole
// library closure, trixie-backports' Linux 7.3 kernel and modules, and a few
// bookworm tools the guest uses (busybox for its init, mdadm, mkfs.xfs).
// An apt client with its own sources list, lists and archives does the work;
// /etc/apt is never read or touched. A stamp file marks a finished unpack, so
// a second run downloads nothing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const MIRROR = 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

// The guest kernel: 7.x splits the old linux-image package in three. The
// generic flavour, since cloud-amd64 has no 9p (HWLAB notes).
const KERNEL_ABI = '7.3.4+deb13-amd64';
const KERNEL_PACKAGES = [`linux-binary-${KERNEL_ABI}`, `linux-modules-${KERNEL_ABI}`, `linux-base-${KERNEL_ABI}`];
// Packages of QEMU's closure it never loads (installation machinery).
const NOT_LOADED =
  /^(base-passwd|base-files|adduser|debconf|debianutils|init-system-helpers|libpam|libaudit|passwd|login|dpkg|perl|sensible-utils|lsb-base|ucf|ca-certificates)/;
// bookworm tools for the guest (the host's libraries serve them: same release).
const TOOLS = ['busybox-static', 'mdadm', 'xfsprogs', 'libinih1', 'liburcu8'];

function apt(dir, suites, args) {
  const options = [
    `Dir::Etc::sourcelist=${path.join(dir, 'sources.list')}`,
    'Dir::Etc::sourceparts=/dev/null',
    'Dir::Etc::preferencesparts=/dev/null',
    'Dir::Etc::preferences=/dev/null',
    `Dir::State::Lists=${path.join(dir, 'lists')}`,
    `Dir::Cache::Archives=${path.join(dir, 'archives')}`,
    `Dir::Cache=${path.join(dir, 'cache')}`,
    // An empty dpkg status: the simulated install lists the whole closure.
    `Dir::State::status=${path.join(dir, 'status')}`,
    'APT::Architecture=amd64',
    'APT::Get::Assume-Yes=true',
    'Debug::NoLocking=true',
  ];
  fs.mkdirSync(path.join(dir, 'lists', 'partial'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'archives', 'partial'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cache'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'sources.list'),
    suites.map((s) => `deb [signed-by=${KEYRING}] ${MIRROR} ${s} main\n`).join(''),
  );
  if (!fs.existsSync(path.join(dir, 'status'))) fs.writeFileSync(path.join(dir, 'status'), '');
  return execFileSync('apt-get', [...options.flatMap((o) => ['-o', o]), ...args], {
    cwd: path.join(dir, 'archives'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The packages (name=version) a simulated install of `packages` would unpack. */
function closure(dir, suites, packages) {
  // The last suite is the target release (trixie-backports' QEMU needs its own qemu-system-common).
  const out = apt(dir, suites, ['install', '-s', '--no-install-recommends', '-t', suites.at(-1), ...packages]);
  return [...out.matchAll(/^Inst (\S+) \((\S+) /gm)].map((m) => [m[1], m[2]]);
}

function download(dir, suites, pinned) {
  apt(dir, suites, ['download', ...pinned.map(([name, version]) => `${name}=${version}`)]);
  const debs = fs.readdirSync(path.join(dir, 'archives')).filter((f) => f.endsWith('.deb'));
  return debs.map((f) => path.join(dir, 'archives', f));
}

function unpack(debs, root) {
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const deb of debs) execFileSync('dpkg', ['-x', deb, root], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Runs `make` unless `stamp` exists; writes the stamp after it succeeds. */
function once(stamp, make) {
  if (fs.existsSync(stamp)) return;
  make();
  fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

/**
 * Makes sure the cache holds everything; returns where the pieces are.
 * Throws with a one-line reason when it cannot (no network, no apt-get).
 */
export function fetchLab(cache, log = () => {}) {
  const trixie = path.join(cache, 'apt-trixie');
  const bookworm = path.join(cache, 'apt-bookworm');
  const trixieRoot = path.join(cache, 'root-trixie');
  const toolsRoot = path.join(cache, 'root-bookworm');
  fs.mkdirSync(cache, { recursive: true });
  once(path.join(cache, 'trixie.done'), () => {
    const suites = ['trixie', 'trixie-backports'];
    log('hwlab: fetching QEMU and the Linux 7.3 guest kernel from Debian (trixie, trixie-backports)');
    apt(trixie, suites, ['update', '-qq']);
    fs.rmSync(path.join(trixie, 'archives'), { recursive: true, force: true });
    const qemu = closure(trixie, suites, ['qemu-system-x86']).filter(([name]) => !NOT_LOADED.test(name));
    const kernel = closure(trixie, suites, KERNEL_PACKAGES).filter(([name]) => KERNEL_PACKAGES.includes(name));
    if (kernel.length !== KERNEL_PACKAGES.length) throw new Error(`Debian has no ${KERNEL_PACKAGES.join(', ')}`);
    unpack(download(trixie, suites, [...qemu, ...kernel]), trixieRoot);
  });
  once(path.join(cache, 'bookworm.done'), () => {
    log('hwlab: fetching the guest tools (busybox, mdadm, xfsprogs) from Debian bookworm');
    apt(bookworm, ['bookworm'], ['update', '-qq']);
    fs.rmSync(path.join(bookworm, 'archives'), { recursive: true, force: true });
    const pinned = closure(bookworm, ['bookworm'], TOOLS).filter(([name]) => TOOLS.includes(name));
    unpack(download(bookworm, ['bookworm'], pinned), toolsRoot);
  });
  const lib = path.join(trixieRoot, 'usr/lib/x86_64-linux-gnu');
  return {
    qemu: {
      loader: path.join(lib, 'ld-linux-x86-64.so.2'),
      libraryPath: lib,
      binary: path.join(trixieRoot, 'usr/bin/qemu-system-x86_64'),
      moduleDir: path.join(lib, 'qemu'),
      firmware: path.join(trixieRoot, 'usr/share'),
    },
    kernel: path.join(trixieRoot, `usr/lib/modules/${KERNEL_ABI}/vmlinuz`),
    modules: path.join(trixieRoot, `usr/lib/modules/${KERNEL_ABI}`),
    kernelRelease: KERNEL_ABI,
    tools: toolsRoot,
  };
}
