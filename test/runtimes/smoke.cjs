// A smoke run of untorn's public API, for runtimes other than the Node that
// runs the test suite (Bun, Deno, other Node versions) and for arm64 Node
// under qemu. CommonJS and nothing but node: built-ins, so that every one of
// them runs it as it is:
//
//   RUNTIME smoke.cjs PACKAGE_DIR DIR
//
// PACKAGE_DIR is the untorn package to load (its dist/ and build/ or
// prebuilds/), DIR a directory on a filesystem with atomic writes (XFS).
// Prints one JSON document: what each step gave. A step that throws ends the
// run with { error } for it and exit code 1.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [packageDir, dir] = process.argv.slice(2);
const u = require(path.resolve(packageDir));
const out = {
  runtime:
    typeof Bun !== 'undefined'
      ? `bun ${Bun.version}`
      : typeof Deno !== 'undefined'
        ? `deno ${Deno.version.deno}`
        : `node ${process.versions.node}`,
  arch: process.arch,
};

async function main() {
  // Which file the addon came from, as the process has it mapped.
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  out.addon = [
    ...new Set(
      maps
        .split('\n')
        .map((l) => l.split(/\s+/)[5])
        .filter((f) => f && f.endsWith('.node')),
    ),
  ];

  const file = path.join(dir, `smoke-${process.pid}`);
  const f = await u.open(file, 'w+');
  try {
    out.info = await u.statAtomic(f.fd);
    out.ioEngine = u.ioEngine();

    const page = u.allocAligned(16384);
    page.fill(7);
    page.write('untorn smoke page');
    out.writeAtomic = await f.writeAtomic(page, 16384, { dsync: true });
    const back = u.allocAligned(16384);
    out.read = await f.read(back, 16384);
    out.roundTrip = back.equals(page);

    try {
      await f.writeAtomic(page.subarray(0, 12288), 0);
      out.refusal = null;
    } catch (err) {
      out.refusal = { name: err.name, code: err.code };
    }

    const pages = [0, 1, 2, 3].map((i) => {
      const b = u.allocAligned(16384);
      b.fill(i + 1);
      return { buffer: b, position: (4 + i) * 16384 };
    });
    out.writeAtomicBatch = await f.writeAtomicBatch(pages, { datasync: true });
    out.writeBatch = await f.writeBatch(pages.map((p) => ({ buffer: p.buffer, position: p.position + 4 * 16384 })));
    const reads = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ buffer: u.allocAligned(16384), position: (4 + i) * 16384 }));
    out.readBatch = await f.readBatch(reads);
    out.batchRoundTrip = reads.every((r, i) => r.buffer.every((byte) => byte === (i % 4) + 1));
  } finally {
    await f.close();
    fs.rmSync(file, { force: true });
  }

  const report = await u.bench({ dir, writes: 128, rounds: 1, pages: 256, batch: 16 });
  out.bench = {
    strategies: report.results.map((r) => r.strategy),
    pagesPerSec: report.results.map((r) => Math.round(r.pagesPerSec)),
    verdict: report.verdict,
  };
}

main().then(
  () => process.stdout.write(`${JSON.stringify(out)}\n`),
  (err) => {
    out.error = { message: String(err && err.message), code: err && err.code, stack: String(err && err.stack) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exitCode = 1;
  },
);
