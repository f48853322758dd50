// The core checks for an arm64 Node under qemu-aarch64 (test/arm64.test.ts):
//
//   qemu-aarch64-static -L /usr/aarch64-linux-gnu NODE arm64-check.cjs PACKAGE_DIR XFS_DIR TMPFS_DIR
//
// Prints one JSON document of what each call gave; the test decides. Raw
// results come from the addon itself (>= 0 or -errno), so that what the
// kernel (through qemu) said is seen apart from untorn's own checks.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [packageDir, xfsDir, tmpfsDir] = process.argv.slice(2);
const u = require(path.resolve(packageDir));
const binding = require('node-gyp-build')(path.resolve(packageDir));
const out = { arch: process.arch, node: process.versions.node, O_DIRECT: fs.constants.O_DIRECT };

function code(fn) {
  try {
    fn();
    return null;
  } catch (err) {
    return err.code;
  }
}

async function main() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  out.addon = [
    ...new Set(
      maps
        .split('\n')
        .map((l) => l.split(/\s+/)[5])
        .filter((f) => f && f.endsWith('.node')),
    ),
  ];

  const file = path.join(xfsDir, `arm64-${process.pid}`);
  const f = u.openSync(file, 'w+');
  try {
    out.fdinfoFlags = /^flags:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${f.fd}`, 'utf8'))[1];
    out.statAtomic = u.statAtomicSync(f.fd);
    const raw = binding.statxSync(f.fd);
    out.statx = {
      mask: raw.mask,
      attributes: raw.attributes,
      blksize: raw.blksize,
      unitMin: raw.unitMin,
      unitMax: raw.unitMax,
    };
    out.constants = {
      RWF_ATOMIC: binding.RWF_ATOMIC,
      RWF_DSYNC: binding.RWF_DSYNC,
      STATX_WRITE_ATOMIC: binding.STATX_WRITE_ATOMIC,
      STATX_ATTR_WRITE_ATOMIC: binding.STATX_ATTR_WRITE_ATOMIC,
    };

    const page = u.allocAligned(16384);
    page.fill(0x5a);
    out.plainWrite = f.writeSync(page, 0);
    // O_DIRECT refuses a buffer at an odd address; a buffered file would not.
    out.unalignedRead = binding.preadv2Sync(f.fd, u.allocAligned(8192).subarray(1, 4097), 0);
    const back = u.allocAligned(16384);
    out.plainRead = f.readSync(back, 0);
    out.plainRoundTrip = back.equals(page);

    out.atomicRaw = binding.pwritev2Sync(f.fd, page, 16384, binding.RWF_ATOMIC);
    out.dsyncRaw = binding.pwritev2Sync(f.fd, page, 16384, binding.RWF_DSYNC);
    out.atomicRefusal = code(() => f.writeAtomicSync(page, 16384));

    out.ioEngine = u.ioEngine();
    const entries = [0, 1, 2, 3].map((i) => ({ buffer: u.allocAligned(16384).fill(i + 1), position: (2 + i) * 16384 }));
    out.writeBatch = await f.writeBatch(entries, { datasync: true });
    const reads = entries.map((e) => ({ buffer: u.allocAligned(16384), position: e.position }));
    out.readBatch = await f.readBatch(reads);
    out.batchRoundTrip = reads.every((r, i) => r.buffer.every((b) => b === i + 1));
  } finally {
    f.closeSync();
    fs.rmSync(file, { force: true });
  }

  const tfile = path.join(tmpfsDir, `arm64-${process.pid}`);
  const t = u.openSync(tfile, 'w+');
  try {
    out.tmpfs = {
      statAtomic: u.statAtomicSync(t.fd),
      atomicRaw: binding.pwritev2Sync(t.fd, u.allocAligned(4096), 0, binding.RWF_ATOMIC),
      atomicRefusal: code(() => t.writeAtomicSync(u.allocAligned(4096), 0)),
    };
  } finally {
    t.closeSync();
    fs.rmSync(tfile, { force: true });
  }
}

main().then(
  () => process.stdout.write(`${JSON.stringify(out)}\n`),
  (err) => {
    out.error = { message: String(err && err.message), code: err && err.code, stack: String(err && err.stack) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exitCode = 1;
  },
);
