// One boot of the lab's guest: QEMU (TCG) with Linux 7.3, NVMe disks that
// advertise atomic writes (each namespace over QEMU's blklogwrites, so every
// write command the device receives is logged), the host's / read-only over
// 9p, and a script run as the guest's init. Returns the script's exit status
// and output; the caller inspects the run folder (device logs, results)
// before it is removed. QEMU never outlives this: it is killed on timeout,
// on any error, and when this process is interrupted or exits.
//
// Reuse (a smoke test of your own in the guest):
//
//   const lab = fetchLab(cache, log);                       // fetch.mjs
//   const initramfs = buildInitramfs({ cache, modulesDir: lab.modules,
//     busybox: path.join(lab.tools, 'bin/busybox') });      // initramfs.mjs
//   const result = await runGuest({ lab, initramfs, cache,
//     controllers: [{ id: 'g16k', blockSize: 4096, atomicBytes: 16384,
//       namespaces: [{ sizeBytes: 512 * 1024 * 1024 }] }],
//     script: guestScript(lab, `mkfs.xfs -q /dev/nvme0n1 && mount /dev/nvme0n1 /mnt
//       node ${repo}/test/my-smoke.mjs /mnt > /run/hwlab/out.json`),
//     inspect: (runDir, r) => { ... r.share/out.json, r.log, device logs ... } });
//
// The script runs as root in the host's userland (read-only; /tmp, /run and
// /dev/shm are tmpfs), with the run folder at /run/hwlab (writable, read back
// by `inspect`); its stdout and stderr are `result.log`, its exit status
// `result.status`. Disks appear as /dev/nvmeXnY in controller, then namespace
// order (match them by serial = controller id and nsid, as guest-suite.mjs does).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DISK_BYTES, GEOMETRIES } from './stacks.mjs';

const live = new Set();
// A boot reaches the init in 10-20 s here, a minute under heavy load.
const BOOT_TIMEOUT_MS = 180_000;
const BOOT_ATTEMPTS = 2;
let handlersInstalled = false;

function killAll() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      killAll();
      for (const cleanup of cleanups) cleanup();
      process.kill(process.pid, signal);
    });
  }
}

// Run folders to remove if a signal ends this process mid-boot.
const cleanups = new Set();

/** QEMU's firmware in one folder (Debian ships absolute symlinks into /usr/share). */
function firmwareDir(lab, cache) {
  const dir = path.join(cache, 'firmware');
  if (fs.existsSync(path.join(dir, 'bios-256k.bin'))) return dir;
  fs.mkdirSync(dir, { recursive: true });
  const share = lab.qemu.firmware;
  const root = path.resolve(share, '../..');
  for (const name of fs.readdirSync(path.join(share, 'qemu'))) {
    let file = path.join(share, 'qemu', name);
    for (let i = 0; i < 8 && fs.lstatSync(file).isSymbolicLink(); i++) {
      const target = fs.readlinkSync(file);
      file = target.startsWith('/') ? path.join(root, target) : path.resolve(path.dirname(file), target);
      if (!fs.existsSync(file) && !isLink(file)) break;
    }
    if (fs.existsSync(file) && fs.statSync(file).isFile()) fs.copyFileSync(file, path.join(dir, name));
  }
  for (const name of fs.readdirSync(path.join(share, 'seabios'))) {
    fs.copyFileSync(path.join(share, 'seabios', name), path.join(dir, name));
  }
  return dir;
}

function isLink(file) {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The QEMU arguments of one NVMe controller and its namespaces. Atomic sizes
 * are in bytes; NVMe counts them as 0's-based logical blocks (with 4 KiB
 * blocks, 3 means 16 KiB). Linux reads the namespace's NAWUPF (the
 * controller's AWUPF alone is ignored), and the boundary from NABSPF.
 */
function controllerArgs(controller, runDir) {
  const { id, blockSize, atomicBytes, boundaryBytes = 0 } = controller;
  const blocks = (bytes) => bytes / blockSize - 1;
  const args = [
    '-device',
    `nvme,serial=${id},id=${id},atomic.dn=on,atomic.awun=${blocks(atomicBytes)},atomic.awupf=${blocks(atomicBytes)}`,
  ];
  controller.namespaces.forEach((ns, i) => {
    const node = `${id}n${i + 1}`;
    ns.image = path.join(runDir, `${node}.img`);
    ns.log = path.join(runDir, `${node}.log`);
    fs.closeSync(fs.openSync(ns.image, 'wx'));
    fs.truncateSync(ns.image, ns.sizeBytes);
    fs.closeSync(fs.openSync(ns.log, 'wx'));
    if (ns.init) ns.init(ns.image);
    const boundary = boundaryBytes ? `,atomic.nabspf=${blocks(boundaryBytes)}` : '';
    args.push(
      '-blockdev',
      `driver=file,filename=${ns.image},node-name=${node}f,`,
      '-blockdev',
      `driver=file,filename=${ns.log},node-name=${node}l`,
      '-blockdev',
      // The log's sector is the namespace's logical block: a smaller write is
      // never made (and a larger log sector would make QEMU read-modify-write).
      `driver=blklogwrites,node-name=${node},file=${node}f,log=${node}l,log-sector-size=${blockSize}`,
      '-device',
      `nvme-ns,drive=${node},bus=${id},nsid=${i + 1},logical_block_size=${blockSize},physical_block_size=${blockSize},` +
        `atomic.nawun=${blocks(atomicBytes)},atomic.nawupf=${blocks(atomicBytes)}${boundary}`,
    );
  });
  return args;
}

/**
 * Boots the guest and runs `script` (sh, in the host's userland chrooted, in
 * the run folder) as its init. `controllers`: [{ id, blockSize, atomicBytes,
 * boundaryBytes?, namespaces: [{ sizeBytes, init?(image) }] }]. `files`:
 * extra files for the run folder (the guest sees it as /run/hwlab).
 * `inspect(runDir, result)` runs before the folder is removed.
 */
export async function runGuest({
  lab,
  initramfs,
  cache,
  controllers,
  script,
  files = {},
  timeoutMs = 600_000,
  inspect,
}) {
  installHandlers();
  const runs = path.join(cache, 'runs');
  fs.mkdirSync(runs, { recursive: true });
  const runDir = fs.mkdtempSync(path.join(runs, 'run-'));
  const removeRun = () => fs.rmSync(runDir, { recursive: true, force: true });
  cleanups.add(removeRun);
  async function boot(runDir) {
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.mkdirSync(runDir);
    const share = path.join(runDir, 'share');
    fs.mkdirSync(share);
    fs.writeFileSync(path.join(share, 'guest.sh'), script, { mode: 0o755 });
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(share, name), text);
    const args = [
      '--library-path',
      lab.qemu.libraryPath,
      lab.qemu.binary,
      '-L',
      firmwareDir(lab, cache),
      '-machine',
      'q35',
      '-accel',
      'tcg,thread=multi',
      '-cpu',
      'max',
      '-smp',
      '2',
      '-m',
      '2G',
      '-nographic',
      '-vga',
      'none',
      '-no-reboot',
      '-nic',
      'none',
      '-kernel',
      lab.kernel,
      '-initrd',
      initramfs,
      '-append',
      // The checkout stays visible in the guest wherever it is (init: hwlab_keep).
      `console=ttyS0 rdinit=/init panic=-1 quiet hwlab_keep=${path.resolve(import.meta.dirname, '../..')}`,
      '-virtfs',
      'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
      '-virtfs',
      `local,path=${share},mount_tag=share,security_model=none,multidevs=remap`,
      ...controllers.flatMap((c) => controllerArgs(c, runDir)),
    ];
    const consolePath = path.join(runDir, 'console.log');
    const consoleFd = fs.openSync(consolePath, 'w');
    const started = Date.now();
    const child = spawn(lab.qemu.loader, args, {
      stdio: ['ignore', consoleFd, consoleFd],
      env: { ...process.env, QEMU_MODULE_DIR: lab.qemu.moduleDir },
    });
    fs.closeSync(consoleFd);
    live.add(child);
    let bootSeconds = null;
    const exit = await new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve({ timedOut: true });
      }, timeoutMs);
      // The init says this line (initramfs.mjs) once the host's / is mounted.
      const watch = setInterval(() => {
        if (fs.readFileSync(consolePath, 'utf8').includes('hwlab-init: running the lab script')) {
          bootSeconds = (Date.now() - started) / 1000;
          clearInterval(watch);
        } else if (Date.now() - started > BOOT_TIMEOUT_MS) {
          clearInterval(watch);
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve({ bootHung: true });
        }
      }, 500);
      child.on('exit', () => clearInterval(watch));
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve({ error });
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
    live.delete(child);
    return { exit, share, consolePath, started, bootSeconds };
  }
  try {
    let booted;
    for (let attempt = 1; ; attempt++) {
      booted = await boot(runDir);
      if (!booted.exit.bootHung) break;
      // Seen once here: the guest stuck after SeaBIOS with nothing on the
      // console. The lab's own boot, not untorn, so one fresh boot may retry it.
      if (attempt === BOOT_ATTEMPTS)
        throw new Error(`the guest did not reach its init in ${BOOT_TIMEOUT_MS / 1000} s, ${attempt} boots`);
      process.stderr.write(`hwlab: the guest did not reach its init in ${BOOT_TIMEOUT_MS / 1000} s; booting again\n`);
    }
    const { exit, share, consolePath, started, bootSeconds } = booted;
    const read = (name) =>
      fs.existsSync(path.join(share, name)) ? fs.readFileSync(path.join(share, name), 'utf8') : '';
    const consoleText = fs.readFileSync(consolePath, 'utf8');
    const statusText = read('guest.status').trim();
    const result = {
      seconds: (Date.now() - started) / 1000,
      bootSeconds,
      status: statusText === '' ? null : Number(statusText),
      log: read('guest.log'),
      console: consoleText,
      qemu: exit,
      runDir,
      share,
    };
    if (exit.error) throw new Error(`QEMU did not start: ${exit.error.message}`);
    if (exit.timedOut)
      throw new Error(`the guest did not finish within ${timeoutMs / 1000} s (killed); console: ${tail(consoleText)}`);
    if (result.status === null) {
      throw new Error(
        `the guest's script never finished (QEMU exit ${exit.code ?? exit.signal}); console: ${tail(consoleText)}`,
      );
    }
    if (inspect) await inspect(runDir, result);
    return result;
  } finally {
    killAll();
    removeRun();
    cleanups.delete(removeRun);
  }
}

function tail(text, lines = 6) {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

/**
 * A guest script: `body` (sh) with the lab's guest tools (mdadm, sfdisk, from
 * the cache) on PATH and udev-free device-mapper; it runs in the run folder.
 */
export function guestScript(lab, body) {
  const tools = lab.tools;
  return `#!/bin/sh
export PATH=${tools}/sbin:${tools}/usr/sbin:${tools}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=${tools}/usr/lib/x86_64-linux-gnu:${tools}/lib/x86_64-linux-gnu
export HOME=/tmp DM_DISABLE_UDEV=1
${body}
`;
}

/**
 * The separate runs' boot (--crash, --bench, --bench-pglite): one NVMe
 * namespace with 4 KiB blocks and 16 KiB atomic writes, XFS on it mounted at
 * /tmp/lab, then `command` (sh), which must exit 0 and leave `output` in
 * /run/hwlab. Returns { output: its text, seconds }; `inspect(result,
 * namespace)` sees the boot before its folder (device log included) is removed.
 */
export async function runOnXfs({
  lab,
  initramfs,
  cache,
  what,
  command,
  output,
  sizeBytes = DISK_BYTES,
  timeoutMs,
  inspect,
}) {
  const namespace = { sizeBytes };
  const controllers = [{ id: 'g16k', ...GEOMETRIES.g16k, namespaces: [namespace] }];
  const script = guestScript(
    lab,
    `set -e
mkfs.xfs -q -f /dev/nvme0n1
mkdir -p /tmp/lab && mount /dev/nvme0n1 /tmp/lab
${command}`,
  );
  let done;
  await runGuest({
    lab,
    initramfs,
    cache,
    controllers,
    script,
    timeoutMs,
    inspect: (runDir, result) => {
      const file = path.join(result.share, output);
      if (result.status !== 0 || !fs.existsSync(file))
        throw new Error(`${what} failed (exit ${result.status}): ${tail(result.log, 8)}`);
      done = { output: fs.readFileSync(file, 'utf8'), seconds: result.seconds };
      if (inspect) inspect(result, namespace);
    },
  });
  return done;
}

/** True when a process of ours still runs QEMU (for the final check). */
export function qemuRunning() {
  return live.size > 0 || spawnSync('pgrep', ['-P', String(process.pid), 'qemu']).status === 0;
}
