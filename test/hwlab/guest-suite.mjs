// The lab's checks, run inside the guest (Linux 7.3, NVMe disks with atomic
// writes) against the built checkout: on each stack, untorn's answers are
// held against the kernel's own word (sysfs, statx read by a separate
// program, and what the kernel accepts). Every atomic write made on the
// hardware path is recorded (content keys, length) so the host can find it in
// the device's write log. Results go to results.json in the run folder, one
// stack at a time, so a stack that crashes the suite still leaves the others.
//
// usage (in the guest): node guest-suite.mjs PLAN.json OUT.json
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [planFile, outFile] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
const dist = path.join(plan.repo, 'dist');
const untorn = await import(path.join(dist, 'index.js'));
const { probe } = await import(path.join(dist, 'probe/probe.js'));
const { formatBytes, formatRange } = await import(path.join(dist, 'format.js'));
const { main: cliMain } = await import(path.join(dist, 'cli/main.js'));
const KiB = 1024;
const PAGE_SIZES = [4 * KiB, 16 * KiB, 64 * KiB];
const DEFAULT_PAGE = 16 * KiB;
// Sizes above this are not tried on XFS's software path (time in TCG).
const SOFTWARE_CAP = 1024 * KiB;

const sh = (cmd, args, input) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], input });

/** statx of a path by a separate program (perl's syscall), not by untorn: the kernel's word. */
function kernelStatx(file) {
  // statx(AT_FDCWD, path, 0, STATX_BASIC_STATS|STATX_DIOALIGN|STATX_WRITE_ATOMIC, buf); x86_64 syscall 332.
  const script = `
    my $buf = "\\0" x 256;
    syscall(332, -100, $ARGV[0], 0, 0x7ff | 0x2000 | 0x10000, $buf) == 0 or die "statx: $!";
    my ($mask, $blksize, $attrs) = unpack("L L Q", $buf);
    my ($memAlign, $offAlign) = unpack("L L", substr($buf, 0x98, 8));
    my ($min, $max, $segs) = unpack("L L L", substr($buf, 0xA8, 12));
    my ($maxOpt) = unpack("L", substr($buf, 0xB8, 4));
    print join(" ", $mask, $blksize, $attrs, $memAlign, $offAlign, $min, $max, $segs, $maxOpt);`;
  const [mask, blksize, attrs, memAlign, offAlign, min, max, segs, maxOpt] = sh('perl', ['-e', script, file])
    .trim()
    .split(' ')
    .map(Number);
  const supported = (mask & 0x10000) !== 0 && (attrs & 0x400000) !== 0 && min > 0;
  return {
    supported,
    unitMin: supported ? min : 0,
    unitMax: supported ? max : 0,
    unitMaxOpt: supported ? maxOpt : 0,
    segmentsMax: supported ? segs : 0,
    dioMemAlign: memAlign,
    dioOffsetAlign: offAlign,
    blockSize: blksize,
  };
}

const readSysfs = (file) => fs.readFileSync(file, 'utf8').trim();

/** The kernel name of namespace `nsid` on the controller with serial `serial`. */
function namespaceName({ serial, nsid }) {
  for (const name of fs.readdirSync('/sys/block')) {
    if (!/^nvme\d+n\d+$/.test(name)) continue;
    const dir = `/sys/block/${name}`;
    if (readSysfs(`${dir}/device/serial`) === serial && Number(readSysfs(`${dir}/nsid`)) === nsid) return name;
  }
  throw new Error(`no namespace ${nsid} on the controller with serial ${serial}`);
}

/** sysfs atomic limits of a whole block device (the kernel's word for blockDeviceLimits). */
function sysfsLimits(name) {
  const q = (f) => Number(readSysfs(`/sys/block/${name}/queue/atomic_write_${f}_bytes`));
  return {
    device: name,
    unitMinBytes: q('unit_min'),
    unitMaxBytes: q('unit_max'),
    maxBytes: q('max'),
    boundaryBytes: q('boundary'),
  };
}

/** Builds a stack; returns { device (top block device name), target (mount dir or /dev node), teardown }. */
function build(stack, index) {
  const disks = stack.diskRefs.map(namespaceName);
  const undo = [];
  let device = disks[0];
  if (stack.kind === 'partition') device = `${disks[0]}p1`;
  if (stack.kind === 'md') {
    device = `md${index}`;
    const args = ['--create', `/dev/${device}`, '--run', '--force', '--metadata=1.2', `--level=${stack.level}`];
    if (stack.level === 0) args.push(`--chunk=${stack.chunkKiB}`);
    else args.push('--assume-clean'); // no resync: it would copy the whole disk through the log
    sh('mdadm', [...args, `--raid-devices=${disks.length}`, ...disks.map((d) => `/dev/${d}`)]);
    undo.push(() => sh('mdadm', ['--stop', `/dev/${device}`]));
  }
  if (stack.kind === 'dm') {
    const sectors = Number(readSysfs(`/sys/block/${disks[0]}/size`));
    const name = `hwlab${index}`;
    sh('dmsetup', ['create', name, '--table', `0 ${sectors} linear /dev/${disks[0]} 0`]);
    undo.push(() => sh('dmsetup', ['remove', name]));
    device = fs
      .readdirSync('/sys/block')
      .find((d) => d.startsWith('dm-') && readSysfs(`/sys/block/${d}/dm/name`) === name);
  }
  let target = `/dev/${device}`;
  if (stack.mkfs) {
    sh(stack.mkfs(target)[0], stack.mkfs(target).slice(1));
    const dir = `/tmp/hwlab/${index}`;
    fs.mkdirSync(dir, { recursive: true });
    sh('mount', [target, dir]);
    // Nothing of ours holds the mount by now (checked before teardown). A
    // busy umount here was once untorn's engine leaving the free of an
    // io_uring request (and its file) to task work it never ran (fixed in
    // native/engine.cc): retry for a while without blocking the event loop,
    // and if it stays busy, say who holds what.
    undo.push(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return sh('umount', [dir]);
        } catch (err) {
          if (attempt === UMOUNT_TRIES)
            throw new Error(`${err.message.trim()}; ${holders(dir).join('; ')}`, { cause: err });
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    });
    target = dir;
  }
  return {
    disks,
    device,
    target,
    teardown: async () => {
      for (const step of undo.reverse()) await step();
    },
  };
}

// 30 s of retries: TCG on a shared host can stall the guest for seconds.
const UMOUNT_TRIES = 120;

const readlink = (link) => {
  try {
    return fs.readlinkSync(link);
  } catch {
    return null;
  }
};
const readText = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** The descriptors of process `pid` (default: this one) whose file is `target` or under it. */
function openUnder(target, pid = 'self') {
  const under = (t) => t !== null && (t === target || t.startsWith(`${target}/`));
  let fds;
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  return fds.map((fd) => [fd, readlink(`/proc/${pid}/fd/${fd}`)]).filter(([, t]) => under(t));
}

/**
 * Who holds `dir` (for a busy umount): every process with a descriptor, cwd,
 * root or mapping under it; every task in D state and every io_uring worker
 * (iou-wrk), with its kernel stack; and this process's io_uring fdinfo
 * (requests still in flight hold their files without a descriptor).
 */
function holders(dir) {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const comm = readText(`/proc/${pid}/comm`).trim();
    const hits = openUnder(dir, pid).map(([fd, t]) => `fd ${fd} ${t}`);
    for (const link of ['cwd', 'root']) {
      const t = readlink(`/proc/${pid}/${link}`);
      if (t && (t === dir || t.startsWith(`${dir}/`))) hits.push(`${link} ${t}`);
    }
    if (readText(`/proc/${pid}/maps`).includes(dir)) hits.push('maps');
    if (hits.length) found.push(`pid ${pid} (${comm}): ${hits.join(', ')}`);
    let tasks;
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      const stat = readText(`/proc/${pid}/task/${tid}/stat`);
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      const name = readText(`/proc/${pid}/task/${tid}/comm`).trim();
      if (state === 'D' || name.startsWith('iou-')) {
        const stack = readText(`/proc/${pid}/task/${tid}/stack`).trim().split('\n').slice(0, 6).join(' < ');
        found.push(`task ${tid} (${name}, ${state}): ${stack}`);
      }
    }
  }
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    if (readlink(`/proc/self/fd/${fd}`) === 'anon_inode:[io_uring]') {
      const info = readText(`/proc/self/fdinfo/${fd}`).split('\n').slice(0, 12).join(' ');
      found.push(`io_uring fd ${fd}: ${info}`);
    }
  }
  return found.length ? found : ['no process, task or io_uring request found holding it'];
}

const powersOfTwo = (from, to) => {
  const sizes = [];
  for (let n = from; n > 0 && n <= to; n *= 2) sizes.push(n);
  return sizes;
};

function randomBuffer(size) {
  const buffer = untorn.allocAligned(size);
  crypto.randomFillSync(buffer);
  return buffer;
}

/** What the host needs to find a write in the device log: a key per logical block, and a digest. */
function record(records, what, buffer, blockSize) {
  const keys = [];
  for (let at = 0; at < buffer.length; at += blockSize) keys.push(buffer.toString('hex', at, at + 16));
  // Random data, so a key is unique to its block; zeros would match every zeroed block on the disk.
  if (keys.some((key) => /^0+$/.test(key))) throw new Error(`${what}: a block of the write starts with zeros`);
  records.push({ what, length: buffer.length, keys, sha256: crypto.createHash('sha256').update(buffer).digest('hex') });
}

/**
 * Runs the CLI's own entry point (`main(argv)`, the function `untorn` runs) in
 * this process, with its stdout and stderr captured; returns { code, stdout,
 * stderr }. Not a child process: a node start over 9p costs seconds in TCG.
 */
async function cli(args) {
  const captured = { stdout: '', stderr: '' };
  const saved = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const name of ['stdout', 'stderr']) {
    process[name].write = (chunk, encoding, done) => {
      captured[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      (typeof encoding === 'function' ? encoding : done)?.();
      return true;
    };
  }
  try {
    return { code: await cliMain(args), ...captured };
  } finally {
    process.stdout.write = saved.stdout;
    process.stderr.write = saved.stderr;
  }
}

/** The PGlite smoke test runs once a run, on the first stack that can take it. */
let pgliteDone = false;

async function checkStack(stack, index) {
  const checks = [];
  const records = [];
  const check = (name, ok, detail = '') => checks.push({ name, ok: Boolean(ok), detail });
  const started = Date.now();
  const built = build(stack, index);
  const facts = { device: built.device, disks: built.disks };
  try {
    const isDevice = !stack.mkfs;
    // The file the atomic writes go to: the device itself, or a file on the filesystem.
    const file = isDevice ? built.target : path.join(built.target, 'writes');
    const handle = await untorn.open(file, isDevice ? 'r+' : 'w+');
    try {
      // 1. blockDeviceLimits and statAtomic against sysfs and statx.
      const limits = await untorn.blockDeviceLimits(file);
      const sysfsDevice = stack.kind === 'partition' ? built.disks[0] : built.device;
      const sysfs = sysfsLimits(sysfsDevice);
      facts.sysfs = sysfs;
      check('blockDeviceLimits = sysfs', JSON.stringify(limits) === JSON.stringify(sysfs), JSON.stringify(limits));
      const kernel = kernelStatx(file);
      facts.statx = kernel;
      const info = untorn.statAtomicSync(file);
      check('statAtomic = statx', JSON.stringify(info) === JSON.stringify(kernel), JSON.stringify(info));
      if (stack.control) {
        // A plain 16 KiB write through a 4 KiB-chunk raid0 must reach the disks in pieces:
        // the host's checker has to call it split.
        const buffer = randomBuffer(16 * KiB);
        await handle.write(buffer, 0);
        record(records, 'plain 16 KiB write over 4 KiB chunks', buffer, stack.blockSize);
        return { checks, records, facts, seconds: (Date.now() - started) / 1000 };
      }

      // The kernel's word on the hardware limit: XFS says it in unitMaxOpt; ext4
      // and a raw device have only the hardware path, so statx's range is it.
      const hardwareMax = !kernel.supported ? 0 : stack.fs === 'xfs' ? kernel.unitMaxOpt : kernel.unitMax;
      facts.hardwareMax = hardwareMax;

      // 2. writeAtomic of every size: accepted up to unitMax, refused above before any syscall.
      const accepted = new Map();
      let region = 0;
      for (const size of powersOfTwo(512, Math.max(4 * kernel.unitMax, 256 * KiB))) {
        if (size > SOFTWARE_CAP && size <= kernel.unitMax) continue;
        const position = (region += 2 * Math.max(size, 1024 * KiB)) - Math.max(size, 1024 * KiB);
        const buffer = randomBuffer(size);
        let outcome;
        try {
          await handle.writeAtomic(buffer, position, { dsync: true });
          outcome = 'ok';
        } catch (err) {
          outcome = `${err.code}${err.syscall ? ` (${err.syscall})` : ''}`;
        }
        accepted.set(size, outcome === 'ok');
        const within = kernel.supported && size >= kernel.unitMin && size <= kernel.unitMax;
        const expected = within ? 'ok' : kernel.supported ? 'ERR_ATOMIC_LENGTH' : 'ERR_ATOMIC_UNSUPPORTED';
        if (size >= kernel.unitMin || !kernel.supported) {
          check(`writeAtomic ${formatBytes(size)}`, outcome === expected, outcome);
        }
        if (outcome === 'ok' && size <= hardwareMax)
          record(records, `writeAtomic async ${formatBytes(size)}`, buffer, stack.blockSize);
        if (within && size <= hardwareMax) {
          const again = randomBuffer(size);
          handle.writeAtomicSync(again, position + size, { dsync: true });
          record(records, `writeAtomicSync ${formatBytes(size)}`, again, stack.blockSize);
        }
      }
      // A batch of hardware-path writes (io_uring where the guest allows it).
      const batchSize = Math.min(hardwareMax, DEFAULT_PAGE);
      if (batchSize >= kernel.unitMin && batchSize > 0) {
        const base = (region += 1024 * KiB);
        const writes = [0, 1, 2, 3].map((i) => ({
          buffer: randomBuffer(batchSize),
          position: base + 2 * i * batchSize,
        }));
        await handle.writeAtomicBatch(writes, { datasync: true });
        for (const w of writes)
          record(records, `writeAtomicBatch ${formatBytes(batchSize)}`, w.buffer, stack.blockSize);
      }

      // The path each page size takes, by the kernel's word: accepted, and within the hardware limit.
      const expectedPath = (size) =>
        !accepted.get(size) ? 'none' : size >= kernel.unitMin && size <= hardwareMax ? 'hardware' : 'software';

      // 3. probe: library for each page size, the CLI (JSON and text) for the default one.
      for (const pageSize of PAGE_SIZES) {
        const report = await probe(isDevice ? built.target : built.target, {
          pageSize,
          try: !isDevice && pageSize === DEFAULT_PAGE,
        });
        const want = expectedPath(pageSize);
        const pages = `${pageSize / KiB} KB pages`;
        const verdictOk =
          want === 'hardware'
            ? report.verdict.startsWith(`${pages}: atomic in hardware`)
            : want === 'software'
              ? report.verdict.startsWith(`${pages}: atomic via XFS software`)
              : /^\S+ KB pages: (not atomic|no atomic writes)/.test(report.verdict);
        const payoff = report.advice.some((a) => a.includes('can drop its torn-page protection'));
        check(`probe ${formatBytes(pageSize)}: atomicPath ${want}`, report.atomicPath === want, report.atomicPath);
        check(`probe ${formatBytes(pageSize)}: verdict`, verdictOk, report.verdict);
        check(`probe ${formatBytes(pageSize)}: advice`, payoff === (want === 'hardware'), report.advice.join(' | '));
        if (report.trial) {
          const wrong = report.trial.filter((t) => t.ok !== t.expected);
          check(`probe --try: ${report.trial.length} rows match the kernel`, wrong.length === 0, JSON.stringify(wrong));
          // Each row is what the kernel did: replay the O_DIRECT ones through untorn's own checks.
          const directOk = report.trial
            .filter((t) => !t.buffered && t.ok)
            .every((t) => accepted.get(t.length) !== false);
          check('probe --try: accepted rows accepted here too', directOk);
        }
      }
      const json = await cli(['probe', built.target, '--json', ...(isDevice ? [] : ['--try'])]);
      const doc = json.code === 0 ? JSON.parse(json.stdout) : null;
      check('untorn probe --json', doc?.atomicPath === expectedPath(DEFAULT_PAGE), doc ? doc.atomicPath : json.stderr);
      const text = await cli(['probe', built.target]);
      check(
        'untorn probe (text)',
        text.code === 0 &&
          new RegExp(`^atomic path +${expectedPath(DEFAULT_PAGE)} for 16 KiB pages`, 'm').test(text.stdout),
        text.stdout.split('\n').find((l) => l.startsWith('atomic path')) ?? text.stderr,
      );

      if (!isDevice) {
        // 4. page files: auto takes atomic exactly on the hardware path, with true limits.
        for (const pageSize of PAGE_SIZES) {
          const want = expectedPath(pageSize);
          const pf = await untorn.openPageFile(path.join(built.target, `pages-${pageSize}`), { pageSize });
          try {
            const ok =
              (pf.strategy === 'atomic') === (want === 'hardware') &&
              (want !== 'hardware' || pf.strategyReason.includes(`up to ${formatBytes(hardwareMax)})`)) &&
              (want !== 'software' ||
                hardwareMax === 0 ||
                pf.strategyReason.includes(`cover ${formatRange(kernel.unitMin, hardwareMax)}`)) &&
              (hardwareMax === 0 || !pf.strategyReason.includes('no hardware'));
            check(`openPageFile ${formatBytes(pageSize)} auto: ${pf.strategy}`, ok, pf.strategyReason);
            if (pf.strategy === 'atomic') {
              const writes = [0, 1, 2, 5].map((page) => ({ page, data: crypto.randomBytes(pf.payloadSize) }));
              await pf.writePages(writes);
              await pf.writePage(7, crypto.randomBytes(pf.payloadSize));
              // The whole pages as written (payload and trailer), read back from the file.
              const raw = fs.readFileSync(pf.path);
              for (const page of [0, 1, 2, 5, 7]) {
                // Page N sits at (N + 1) * pageSize, after the header page (docs/page-file.md).
                const at = (page + 1) * pageSize;
                record(
                  records,
                  `page file ${formatBytes(pageSize)} page`,
                  raw.subarray(at, at + pageSize),
                  stack.blockSize,
                );
              }
            }
          } finally {
            await pf.close();
          }
        }

        // 5. journals: auto takes atomic exactly where pages take the hardware
        // path; there each page write (sync and async) is one RWF_ATOMIC write
        // in place (found in the device log), and after a commit the file holds
        // every page. Elsewhere auto double-writes, and a commit lands the pages too.
        for (const pageSize of PAGE_SIZES) {
          const want = expectedPath(pageSize) === 'hardware' ? 'atomic' : 'doublewrite';
          const journal = await untorn.openJournal(path.join(built.target, `journal-${pageSize}`), { pageSize });
          if (pageSize === DEFAULT_PAGE) facts.journal16k = journal.strategy;
          try {
            check(
              `openJournal ${formatBytes(pageSize)} auto: ${journal.strategy}`,
              journal.strategy === want &&
                (want !== 'atomic' || journal.strategyReason.includes(`up to ${formatBytes(hardwareMax)})`)) &&
                (hardwareMax === 0 || !journal.strategyReason.includes('no hardware')),
              journal.strategyReason,
            );
            const file = await journal.openFile(path.join(built.target, `journaled-${pageSize}`), 'w+');
            const pages = new Map([0, 1, 3, 6].map((page) => [page, randomBuffer(pageSize)]));
            try {
              for (const [page, buffer] of pages) {
                if (page % 2 === 0) file.writePageSync(buffer, page * pageSize);
                else await file.writePage(buffer, page * pageSize);
              }
              await journal.commit();
            } finally {
              await file.close();
            }
            const raw = fs.readFileSync(path.join(built.target, `journaled-${pageSize}`));
            const landed = [...pages].every(([page, b]) =>
              raw.subarray(page * pageSize, (page + 1) * pageSize).equals(b),
            );
            check(`journal ${formatBytes(pageSize)} ${journal.strategy}: committed pages in the file`, landed);
            if (journal.strategy === 'atomic') {
              for (const [page, buffer] of pages)
                record(
                  records,
                  `journal ${formatBytes(pageSize)} writePage${page % 2 === 0 ? 'Sync' : ''}`,
                  buffer,
                  stack.blockSize,
                );
            }
          } finally {
            await journal.close();
          }
        }

        // 7 (once a run). PGlite on the hardware path: on the first filesystem where 8 KiB pages take it,
        // openPGlite must write relation pages with RWF_ATOMIC in place (no journal copy), and a short
        // workload, close and reopen must pass amcheck with every row there (test/pglite-hwlab-smoke.mjs).
        if (!pgliteDone && expectedPath(8 * KiB) === 'hardware') {
          pgliteDone = true;
          const smoke = path.join(plan.repo, 'test', 'pglite-hwlab-smoke.mjs');
          let out;
          try {
            out = sh(process.execPath, [smoke, path.join(built.target, 'pglite'), plan.repo]);
          } catch (err) {
            out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
          }
          const line = out.trim().split('\n').pop() ?? '';
          let smokeReport = null;
          try {
            smokeReport = JSON.parse(line);
          } catch {
            // not JSON: the check below fails with the output
          }
          facts.pglite = smokeReport;
          check(
            `PGlite smoke: strategy ${smokeReport?.strategy ?? '?'}, ${smokeReport?.rows ?? 0} rows, amcheck clean`,
            smokeReport?.ok === true,
            smokeReport ? JSON.stringify(smokeReport) : out.slice(-400),
          );
        }

        // 6. untorn bench: runs everywhere; atomic left out, with the reason, where 16 KiB pages cannot be atomic.
        const dir = path.join(built.target, 'bench');
        fs.mkdirSync(dir);
        const b = await cli(['bench', dir, '--json', ...plan.benchArgs]);
        const report = b.code === 0 ? JSON.parse(b.stdout) : null;
        const want = expectedPath(DEFAULT_PAGE);
        const strategies = report?.results.map((r) => r.strategy) ?? [];
        const benchOk =
          report !== null &&
          report.stack.atomicPath === want &&
          strategies.includes('atomic') === (want !== 'none') &&
          (want !== 'none' || report.notes.some((n) => n.startsWith('atomic left out')));
        check(
          `untorn bench (${strategies.join(', ') || 'failed'})`,
          benchOk,
          report ? report.verdict : `exit ${b.code}: ${b.stderr.trim()}`,
        );
        if (report) {
          const rate = (s) => report.results.find((r) => r.strategy === s)?.pagesPerSec;
          facts.bench = {
            atomicPath: report.stack.atomicPath,
            atomicVsUnprotected: rate('atomic') && rate('unprotected') ? rate('atomic') / rate('unprotected') : null,
            atomicVsDoublewrite: rate('atomic') && rate('doublewrite') ? rate('atomic') / rate('doublewrite') : null,
            verdict: report.verdict,
          };
        }
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    check('stack ran', false, err.stack ?? String(err));
  } finally {
    // Every file untorn opened here is closed by now: a descriptor left open
    // would be a leak (and would hold the mount).
    const left = openUnder(built.target);
    check('no descriptor left open', left.length === 0, left.map(([fd, t]) => `${fd} ${t}`).join(', '));
    try {
      await built.teardown();
    } catch (err) {
      check('teardown', false, String(err));
    }
  }
  return { checks, records, facts, seconds: (Date.now() - started) / 1000 };
}

const results = [];
for (const [index, stack] of plan.stacks.entries()) {
  // The plan is JSON: mkfs commands come back from the stack kinds.
  const { labStacks } = await import('./stacks.mjs');
  const kind = labStacks().find((s) => s.name === stack.name && s.geometry === stack.geometry);
  const full = { ...stack, mkfs: kind.mkfs };
  let outcome;
  try {
    outcome = await checkStack(full, index);
  } catch (err) {
    outcome = {
      checks: [{ name: 'stack built', ok: false, detail: err.stack ?? String(err) }],
      records: [],
      facts: {},
    };
  }
  results.push({ name: stack.name, geometry: stack.geometry, control: Boolean(stack.control), ...outcome });
  fs.writeFileSync(
    outFile,
    JSON.stringify({ kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(), results }),
  );
  process.stderr.write(
    `hwlab guest: ${stack.geometry} ${stack.name}: ${outcome.checks.filter((c) => !c.ok).length} failed of ${outcome.checks.length}\n`,
  );
}
