#!/usr/bin/env node
// untorn's hardware lab: `npm run hwlab [-- --json] [--crash | --bench | --bench-pglite]`, as root on Debian 12.
//
// Fetches QEMU and a Linux 7.3 kernel from Debian into a cache
// (UNTORN_HWLAB_CACHE, default ~/.cache/untorn-hwlab), boots a TCG guest with
// NVMe disks that advertise atomic writes (only the NVMe device is emulated:
// the kernel, its NVMe driver, block layer, md, dm, XFS and ext4 are real),
// runs test/hwlab/guest-suite.mjs there against this checkout's build, then
// reads every disk's device write log (QEMU blklogwrites) to check each atomic
// write arrived whole. Prints a table per stack, or one JSON document with --json.
//
// Exit 0 when every check holds (and the split control is caught), 1 when one
// fails, 2 when the lab cannot run here (one line on stderr says why; under
// CI=true that is a failure too, exit 1).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkWholeWrites } from './device-log.mjs';
import { fetchLab } from './fetch.mjs';
import { guestScript, runGuest } from './guest.mjs';
import { buildInitramfs } from './initramfs.mjs';
import { labStacks, planDisks } from './stacks.mjs';

const repo = path.resolve(import.meta.dirname, '../..');
const json = process.argv.includes('--json');
const log = (line) => process.stderr.write(`${line}\n`);
const cache = process.env.UNTORN_HWLAB_CACHE ?? path.join(os.homedir(), '.cache', 'untorn-hwlab');
// Tiny benches: the lab checks that `untorn bench` runs and decides right, not
// speed (`npm run hwlab -- --bench` measures speed, in one boot of its own).
const BENCH_ARGS = ['--pages', '64', '--batch', '16', '--writes', '64', '--rounds', '1'];

function cannotRun(reason) {
  log(`hwlab: cannot run: ${reason}`);
  process.exit(process.env.CI === 'true' ? 1 : 2);
}

function preconditions() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'needs Linux on x86_64';
  if (process.getuid?.() !== 0) return 'needs root (the guest exports / over 9p and runs mkfs there)';
  for (const tool of ['apt-get', 'dpkg', 'xz', 'gzip', 'perl', 'mkfs.ext4', 'dmsetup']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], {
        stdio: 'ignore',
        env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
      });
    } catch {
      return `${tool} not found`;
    }
  }
  if (!fs.existsSync(path.join(repo, 'dist/index.js'))) return 'the checkout is not built (npm ci)';
  return null;
}

function initDisk(image, bytes) {
  const fd = fs.openSync(image, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, 0);
  } finally {
    fs.closeSync(fd);
  }
}

const started = Date.now();
const why = preconditions();
if (why) cannotRun(why);
let lab;
try {
  lab = fetchLab(cache, log);
} catch (err) {
  cannotRun(
    `fetching QEMU and the guest kernel from Debian failed: ${String(err.stderr || err.message)
      .trim()
      .split('\n')
      .pop()}`,
  );
}
const fetched = Date.now();
const initramfs = buildInitramfs({ cache, modulesDir: lab.modules, busybox: path.join(lab.tools, 'bin/busybox') });
// The separate runs: power-loss states, and speed (neither is part of CI's run).
for (const [flag, run] of [
  ['--crash', () => import('./crash.mjs').then((m) => ({ report: m.runCrashLab, format: m.formatCrash }))],
  ['--bench', () => import('./bench.mjs').then((m) => ({ report: m.runBenchLab, format: m.formatBench }))],
  [
    '--bench-pglite',
    () => import('./bench-pglite.mjs').then((m) => ({ report: m.runPgliteBenchLab, format: m.formatPgliteBench })),
  ],
]) {
  if (!process.argv.includes(flag)) continue;
  const { report: runIt, format } = await run();
  log(`hwlab ${flag}: booting Linux ${lab.kernelRelease} (QEMU TCG)`);
  let report;
  try {
    report = await runIt({ lab, initramfs, cache, repo, log });
  } catch (err) {
    log(`hwlab ${flag}: ${err.message}`);
    process.exit(1);
  }
  report.seconds = { total: (Date.now() - started) / 1000, guest: report.guestSeconds };
  process.stdout.write(
    json
      ? `${JSON.stringify(report, null, 2)}\n`
      : `${format(report)}hwlab ${flag}: ${report.passed ? 'all checks hold' : 'FAILED'}; ${report.seconds.total.toFixed(0)} s (guest ${report.guestSeconds.toFixed(0)} s)\n`,
  );
  process.exit(report.passed ? 0 : 1);
}

const { controllers, stacks } = planDisks(labStacks(), initDisk);
const script = guestScript(
  lab,
  `exec node ${repo}/test/hwlab/guest-suite.mjs /run/hwlab/plan.json /run/hwlab/results.json`,
);
const plan = { repo, benchArgs: BENCH_ARGS, stacks: stacks.map(({ mkfs: _mkfs, ...s }) => s) };
log(
  `hwlab: booting Linux ${lab.kernelRelease} (QEMU TCG) with ${controllers.reduce((n, c) => n + c.namespaces.length, 0)} NVMe namespaces, ${stacks.length} stacks`,
);

let report;
try {
  await runGuest({
    lab,
    initramfs,
    cache,
    controllers,
    script,
    files: { 'plan.json': JSON.stringify(plan) },
    timeoutMs: 15 * 60_000,
    inspect: (runDir, result) => {
      const resultsFile = path.join(result.share, 'results.json');
      if (!fs.existsSync(resultsFile))
        throw new Error(
          `the guest suite wrote no results (exit ${result.status}): ${result.log.trim().split('\n').slice(-8).join(' | ')}`,
        );
      const guest = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
      if (result.status !== 0) guest.suiteError = result.log.trim().split('\n').slice(-8).join('\n');
      // Each stack's writes, found in the logs of its own disks.
      for (const [i, r] of guest.results.entries()) {
        const stack = stacks[i];
        const controller = controllers.find((c) => c.id === stack.geometry);
        const disks = stack.diskRefs.map((d) => ({
          name: `${d.serial}n${d.nsid}`,
          log: controller.namespaces[d.nsid - 1].log,
          atomicBytes: controller.atomicBytes,
          boundaryBytes: controller.boundaryBytes ?? 0,
        }));
        const copies = stack.kind === 'md' && stack.level === 1 ? 2 : 1;
        const verdicts = checkWholeWrites(
          disks,
          r.records.map((w) => ({ ...w, copies })),
          stack.blockSize,
        );
        r.deviceLog = {
          writes: verdicts.length,
          whole: verdicts.filter((v) => v.ok).length,
          merged: verdicts.filter((v) => v.ok && v.merged > 0).length,
          failures: [],
        };
        verdicts.forEach((v, k) => {
          if (!v.ok) r.deviceLog.failures.push(`${r.records[k].what}: ${v.why}`);
        });
        delete r.records;
      }
      report = { ...guest, bootSeconds: result.seconds };
    },
  });
} catch (err) {
  log(`hwlab: ${err.message}`);
  process.exit(1);
}

// A stack passes when all its checks hold and every recorded write arrived
// whole; the control passes when the checker calls its write split.
for (const r of report.results) {
  const failed = r.checks.filter((c) => !c.ok);
  r.passed = r.control
    ? failed.length === 0 && r.deviceLog.writes > 0 && r.deviceLog.failures.length === r.deviceLog.writes
    : failed.length === 0 && r.deviceLog.failures.length === 0;
}
report.passed = report.results.length === stacks.length && report.results.every((r) => r.passed) && !report.suiteError;
report.seconds = { total: (Date.now() - started) / 1000, fetch: (fetched - started) / 1000, guest: report.bootSeconds };

const fmt = (n) => (n >= 1024 * 1024 ? `${n / 1048576} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
if (json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const rows = [['geometry', 'stack', 'statx atomic', 'hw max', 'journal 16K', 'checks', 'device log', 'result']];
  for (const r of report.results) {
    const s = r.facts.statx;
    const failed = r.checks.filter((c) => !c.ok);
    rows.push([
      r.geometry,
      r.name,
      s ? (s.supported ? `${fmt(s.unitMin)}..${fmt(s.unitMax)}` : 'none') : '?',
      r.facts.hardwareMax ? fmt(r.facts.hardwareMax) : r.control ? '-' : 'none',
      r.facts.journal16k ?? '-',
      `${r.checks.length - failed.length}/${r.checks.length}`,
      r.control
        ? `${r.deviceLog.failures.length}/${r.deviceLog.writes} split (caught)`
        : `${r.deviceLog.whole}/${r.deviceLog.writes} whole${r.deviceLog.merged ? ` (${r.deviceLog.merged} merged)` : ''}`,
      r.passed ? 'ok' : 'FAIL',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows)
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
  for (const r of report.results) {
    for (const c of r.checks.filter((c) => !c.ok))
      process.stdout.write(`FAIL ${r.geometry} ${r.name}: ${c.name}: ${c.detail}\n`);
    if (!r.control)
      for (const f of r.deviceLog.failures) process.stdout.write(`FAIL ${r.geometry} ${r.name}: device log: ${f}\n`);
  }
  if (report.suiteError) process.stdout.write(`FAIL the guest suite: ${report.suiteError}\n`);
  process.stdout.write(
    `hwlab: ${report.passed ? 'all checks hold' : 'FAILED'} on Linux ${report.kernel}; ${report.seconds.total.toFixed(0)} s (fetch ${report.seconds.fetch.toFixed(0)} s, guest ${report.seconds.guest.toFixed(0)} s)\n`,
  );
}
process.exit(report.passed ? 0 : 1);
