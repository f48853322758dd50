// The guest's initramfs: busybox, the kernel modules the lab needs (with their
// dependencies, in load order) and an init that mounts the host's / over 9p,
// chroots into it and runs the lab's script. Built once per module list and
// init text, kept in the cache by a hash of both.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// What the guest loads: 9p for the host's userland, nvme for the disks, the
// filesystems, md and device-mapper (dm-log-writes is not used in the guest
// but costs nothing and keeps dm's targets at hand).
export const GUEST_MODULES = ['9pnet_virtio', '9p', 'nvme', 'xfs', 'ext4', 'raid0', 'raid1', 'dm-mod', 'dm-log-writes'];

const canonical = (name) => name.replace(/-/g, '_');

/** Every module file under `dir`, by canonical name. */
function moduleIndex(dir) {
  const index = new Map();
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ko(\.xz)?$/.test(entry.name)) index.set(canonical(entry.name.replace(/\.ko(\.xz)?$/, '')), full);
    }
  };
  walk(path.join(dir, 'kernel'));
  return index;
}

function readModule(file) {
  return file.endsWith('.xz')
    ? execFileSync('xz', ['-dc', file], { maxBuffer: 256 * 1024 * 1024 })
    : fs.readFileSync(file);
}

/** A module's modinfo field (`depends`, `softdep`): the NUL-terminated value after `\0name=`. */
function modinfo(bytes, field) {
  const values = [];
  const key = Buffer.from(`\0${field}=`);
  for (let at = bytes.indexOf(key); at >= 0; at = bytes.indexOf(key, at + 1)) {
    const start = at + key.length;
    values.push(bytes.subarray(start, bytes.indexOf(0, start)).toString());
  }
  return values;
}

/**
 * The modules `wanted` needs, dependencies first (what `modprobe
 * --show-depends` gives), with their decompressed contents. Modules built
 * into the kernel are not in the index and need nothing.
 */
export function resolveModules(modulesDir, wanted) {
  const index = moduleIndex(modulesDir);
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    const key = canonical(name);
    if (seen.has(key)) return;
    seen.add(key);
    const file = index.get(key);
    if (!file) return;
    const bytes = readModule(file);
    const deps = modinfo(bytes, 'depends')
      .flatMap((d) => d.split(','))
      .filter(Boolean);
    // "pre: crc32c" soft dependencies load first too (ext4, xfs ask for them).
    const pre = modinfo(bytes, 'softdep').flatMap((s) => /pre:\s*([^:]*?)(\s+post:|$)/.exec(s)?.[1].split(/\s+/) ?? []);
    for (const dep of [...deps, ...pre].filter(Boolean)) visit(dep);
    order.push({ name: key, bytes });
  };
  for (const name of wanted) {
    if (!index.has(canonical(name))) throw new Error(`the guest kernel has no module ${name}`);
    visit(name);
  }
  return order;
}

// The guest's init (busybox sh). The host's / comes read-only over 9p ("host"),
// the lab's run folder writable ("share"); tmpfs goes where programs write.
// The script's exit status and everything it prints land in the share.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /modules/$m.ko || echo "hwlab-init: insmod $m failed"; done
H=/mnt/host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro host $H || poweroff -f
# hwlab_keep (from the kernel command line): the checkout, which may sit under
# /tmp, /run or /dev/shm (a CI clone in /tmp): kept visible under the tmpfs.
if [ -n "$hwlab_keep" ]; then mkdir -p /keep && mount -o bind "$H$hwlab_keep" /keep; fi
for d in tmp run; do mount -t tmpfs -o mode=1777 tmpfs $H/$d; done
mount -t proc proc $H/proc
mount -t sysfs sys $H/sys
mount -t devtmpfs dev $H/dev
mkdir -p $H/dev/shm && mount -t tmpfs -o mode=1777 tmpfs $H/dev/shm
if [ -n "$hwlab_keep" ] && [ ! -e "$H$hwlab_keep/package.json" ]; then
  mkdir -p "$H$hwlab_keep" && mount -o move /keep "$H$hwlab_keep"
fi
mount -t configfs configfs $H/sys/kernel/config 2>/dev/null
mkdir -p $H/run/hwlab
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share $H/run/hwlab || poweroff -f
echo "hwlab-init: running the lab script"
chroot $H /bin/sh -c 'cd /run/hwlab && exec /bin/sh ./guest.sh' > $H/run/hwlab/guest.log 2>&1
echo $? > $H/run/hwlab/guest.status
sync
umount $H/run/hwlab
poweroff -f
`;

/** Builds (or finds in the cache) the initramfs; returns its path. */
export function buildInitramfs({ cache, modulesDir, busybox, modules = GUEST_MODULES }) {
  const hash = crypto
    .createHash('sha256')
    .update(JSON.stringify({ modulesDir, modules, INIT }))
    .digest('hex')
    .slice(0, 16);
  const out = path.join(cache, `initramfs-${hash}.cpio.gz`);
  if (fs.existsSync(out)) return out;
  const tree = fs.mkdtempSync(path.join(cache, 'initramfs-tree-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'mnt/host', 'modules'])
      fs.mkdirSync(path.join(tree, d), { recursive: true });
    fs.copyFileSync(busybox, path.join(tree, 'bin/busybox'));
    fs.chmodSync(path.join(tree, 'bin/busybox'), 0o755);
    const order = resolveModules(modulesDir, modules);
    for (const { name, bytes } of order) fs.writeFileSync(path.join(tree, 'modules', `${name}.ko`), bytes);
    fs.writeFileSync(path.join(tree, 'modules.order'), order.map((m) => m.name).join('\n') + '\n');
    fs.writeFileSync(path.join(tree, 'init'), INIT, { mode: 0o755 });
    const files = execFileSync('find', ['.', '-mindepth', '1'], { cwd: tree, encoding: 'utf8' });
    const cpio = execFileSync(path.join(path.dirname(busybox), 'busybox'), ['cpio', '-o', '-H', 'newc'], {
      cwd: tree,
      input: files,
      maxBuffer: 512 * 1024 * 1024,
    });
    const partial = `${out}.partial-${process.pid}`;
    fs.writeFileSync(partial, execFileSync('gzip', ['-1'], { input: cpio, maxBuffer: 512 * 1024 * 1024 }));
    fs.renameSync(partial, out);
    return out;
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}
