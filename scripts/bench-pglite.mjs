#!/usr/bin/env node
// PGlite on untorn against PGlite as shipped: a pgbench-like TPC-B workload
// (pgbench_accounts/tellers/branches/history, one transaction = pgbench's
// "simple update" script in one round trip, a CHECKPOINT every few dozen
// transactions) on three databases in one process, on one scratch device per
// filesystem, in interleaved rounds (a new order each round, so that no
// configuration always follows the same one):
//   nodefs    PGlite's NodeFS as shipped: fsync off (-F), fsync and
//             fdatasync dropped by its filesystem. NOT DURABLE: a crash or
//             power loss can lose acknowledged transactions and tear pages.
//   fpw-on    openPGlite with untorn.fullPageWrites: true.
//   fpw-off   openPGlite as it comes: full_page_writes off.
//   fpw-off-doublewrite  (only when --configs names it) openPGlite with
//             untorn.strategy 'doublewrite', full_page_writes off: where
//             fpw-off takes the atomic path, this is what atomic saves.
// Per configuration: transactions/s (median of the rounds, min-max), latency
// of a transaction p50/p99 (pooled), WAL bytes per transaction
// (pg_current_wal_lsn before and after each round), device bytes per
// transaction (the loop device's sectors written, /sys/block/loopN/stat,
// from the start of a round until its writes reached the device: syncfs).
// The devices are loop devices over sparse images in /dev/shm (RAM-backed:
// the software's own cost shows, not a disk's), or, with --on DIR:DEVICE, a
// filesystem already mounted at DIR on the block device /sys/block/DEVICE
// (the hardware lab runs it so on NVMe with atomic writes: npm run hwlab -- --bench-pglite).
//
//   node scripts/bench-pglite.mjs [--fs xfs,ext4 | --on DIR:DEVICE] [--configs nodefs,fpw-on,fpw-off]
//                                 [--rounds 6] [--tx 400] [--checkpoint-every 40] [--scale 1] [--json]
//   node scripts/bench-pglite.mjs --report FILE|-   (the tables of a saved --json run)
//
// Needs root (mkfs, losetup, mount; not with --on), mkfs.xfs, mkfs.ext4, the
// built library (npm run build) and @electric-sql/pglite. Devices are
// released at the end, also on Ctrl-C.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { openPGlite } = require(path.join(REPO, 'dist', 'pglite', 'index.js'));
const { median, percentile } = require(path.join(REPO, 'dist', 'bench', 'stats.js'));
const { parseDeviceStat } = require(path.join(REPO, 'dist', 'bench', 'device-counters.js'));
const { PGlite } = require('@electric-sql/pglite');

const { values: opts } = parseArgs({
  options: {
    fs: { type: 'string', default: 'xfs,ext4' },
    on: { type: 'string' },
    configs: { type: 'string', default: 'nodefs,fpw-on,fpw-off' },
    report: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    tx: { type: 'string', default: '400' },
    'checkpoint-every': { type: 'string', default: '40' },
    scale: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(opts.rounds);
const TX = Number(opts.tx);
const EVERY = Number(opts['checkpoint-every']);
const SCALE = Number(opts.scale);
const NAMES = {
  nodefs: 'NodeFS as shipped (not durable)',
  'fpw-on': 'openPGlite, full_page_writes on',
  'fpw-off': 'openPGlite, full_page_writes off',
  'fpw-off-doublewrite': "openPGlite, full_page_writes off, strategy 'doublewrite'",
};
const CONFIGS = opts.configs.split(',');
for (const c of CONFIGS) if (!NAMES[c]) throw new Error(`--configs: unknown configuration ${c}`);
for (const c of ['fpw-on', 'fpw-off'])
  if (!CONFIGS.includes(c)) throw new Error(`--configs must include ${c} (the ratios compare them)`);
const log = (...a) => (opts.json ? process.stderr : process.stdout).write(a.join(' ') + '\n');

// --- a scratch device per filesystem -----------------------------------------
const made = [];
function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
}
function scratch(type) {
  const root = fs.mkdtempSync('/dev/shm/untorn-bench-pglite-');
  const image = path.join(root, `${type}.img`);
  const mnt = fs.mkdtempSync(`/tmp/untorn-bench-pglite-${type}-`);
  const entry = { root, mnt, device: null, mounted: false };
  made.push(entry);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 4 * 1024 ** 3);
  if (type === 'xfs') sh('mkfs.xfs', ['-q', '-f', image]);
  else sh('mkfs.ext4', ['-q', '-F', '-b', '4096', image]);
  entry.device = sh('losetup', ['-f', '--show', image]);
  sh('mount', [entry.device, mnt]);
  entry.mounted = true;
  return { dir: mnt, device: entry.device, stat: `/sys/block/${path.basename(entry.device)}/stat` };
}
function release(entry) {
  if (entry.mounted) {
    try {
      sh('umount', [entry.mnt]);
    } catch {
      sh('umount', ['-l', entry.mnt]);
    }
    entry.mounted = false;
  }
  if (entry.device) {
    try {
      sh('losetup', ['-d', entry.device]);
    } catch {
      /* already gone */
    }
    entry.device = null;
  }
  fs.rmSync(entry.mnt, { recursive: true, force: true });
  fs.rmSync(entry.root, { recursive: true, force: true });
}
function releaseAll() {
  for (const entry of made.splice(0)) release(entry);
}
process.on('SIGINT', () => {
  releaseAll();
  process.exit(130);
});

// --- the workload ---------------------------------------------------------------
async function open(config, dir) {
  if (config === 'nodefs') return PGlite.create({ dataDir: dir });
  const untorn = { fullPageWrites: config === 'fpw-on' };
  if (config === 'fpw-off-doublewrite') untorn.strategy = 'doublewrite';
  return openPGlite(dir, { untorn });
}

async function load(db) {
  await db.exec(`
    CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88)) WITH (fillfactor = 100);
    CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
    CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
    CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
    INSERT INTO pgbench_branches SELECT b, 0, '' FROM generate_series(1, ${SCALE}) b;
    INSERT INTO pgbench_tellers SELECT t, (t - 1) / 10 + 1, 0, '' FROM generate_series(1, ${10 * SCALE}) t;
    INSERT INTO pgbench_accounts SELECT a, (a - 1) / 100000 + 1, 0, '' FROM generate_series(1, ${100000 * SCALE}) a;
`);
  // VACUUM cannot share a multi-statement query.
  await db.exec('VACUUM ANALYZE');
  await db.exec('CHECKPOINT');
}

let seed = 0x7063626e;
function random(n) {
  // xorshift32: the same transactions for every configuration of a round.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) % n) + 1;
}

function transaction() {
  const aid = random(100000 * SCALE);
  const tid = random(10 * SCALE);
  const bid = random(SCALE);
  const delta = random(10001) - 5001;
  return `BEGIN;
    UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};
    SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};
    UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};
    UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid};
    INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);
    END;`;
}

async function lsn(db) {
  return (await db.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l;
}

const deviceBytes = (stat) => parseDeviceStat(fs.readFileSync(stat, 'utf8')).bytesWritten;

/** One round of TX transactions on `db`: the numbers of it. */
async function round(db, dir, stat, txs) {
  execFileSync('sync', ['-f', dir]);
  const from = await lsn(db);
  const device0 = deviceBytes(stat);
  const latencies = [];
  const t0 = performance.now();
  for (let i = 0; i < txs.length; i++) {
    const s = performance.now();
    await db.exec(txs[i]);
    latencies.push(performance.now() - s);
    if ((i + 1) % EVERY === 0) await db.exec('CHECKPOINT');
  }
  const seconds = (performance.now() - t0) / 1000;
  const to = await lsn(db);
  const wal = Number((await db.query(`SELECT pg_wal_lsn_diff('${to}', '${from}')::bigint AS d`)).rows[0].d);
  // What the round wrote, including what NodeFS left in the page cache.
  execFileSync('sync', ['-f', dir]);
  return { tps: txs.length / seconds, latencies, wal, device: deviceBytes(stat) - device0 };
}

/** --on DIR:DEVICE: a filesystem the caller mounted. */
function mounted(spec) {
  const at = spec.lastIndexOf(':');
  const dir = spec.slice(0, at);
  const device = spec.slice(at + 1);
  const stat = `/sys/block/${device}/stat`;
  if (at < 1 || !fs.existsSync(dir) || !fs.existsSync(stat))
    throw new Error(`--on takes DIR:DEVICE, a mounted folder and a name in /sys/block (got ${spec})`);
  return { dir, device: `/dev/${device}`, stat };
}

async function benchFs(type) {
  const { dir, device, stat } = opts.on ? mounted(opts.on) : scratch(type);
  log(`${type}: ${device} mounted at ${dir}; loading scale ${SCALE} into ${CONFIGS.length} databases`);
  const dbs = {};
  const info = {};
  for (const config of CONFIGS) {
    const dataDir = path.join(dir, config);
    dbs[config] = await open(config, dataDir);
    await load(dbs[config]);
    info[config] = dbs[config].untorn ?? null;
  }
  const results = Object.fromEntries(CONFIGS.map((c) => [c, { tps: [], latencies: [], wal: 0, device: 0, tx: 0 }]));
  for (let r = 0; r < ROUNDS; r++) {
    const txs = Array.from({ length: TX }, transaction);
    const order = CONFIGS.map((c, i) => CONFIGS[(i + r) % CONFIGS.length]);
    if (r % 2) order.reverse();
    for (const config of order) {
      const res = await round(dbs[config], path.join(dir, config), stat, txs);
      const acc = results[config];
      acc.tps.push(res.tps);
      acc.latencies.push(...res.latencies);
      acc.wal += res.wal;
      acc.device += res.device;
      acc.tx += TX;
    }
    log(
      `  round ${r + 1}/${ROUNDS}: ${CONFIGS.map((c) => `${c} ${results[c].tps.at(-1).toFixed(0)} tx/s`).join(', ')}`,
    );
  }
  for (const config of CONFIGS) await dbs[config].close();
  // Round by round: a burst of other load on the machine hits both sides of a ratio alike.
  const ratio = (a, b) => median(results[a].tps.map((t, i) => t / results[b].tps[i]));
  const summary = {
    device,
    params: { rounds: ROUNDS, tx: TX, checkpointEvery: EVERY, scale: SCALE, configs: CONFIGS, on: Boolean(opts.on) },
  };
  for (const config of CONFIGS) {
    const acc = results[config];
    const sorted = [...acc.latencies].sort((a, b) => a - b);
    summary[config] = {
      tps: { median: median(acc.tps), min: Math.min(...acc.tps), max: Math.max(...acc.tps) },
      latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
      walBytesPerTx: acc.wal / acc.tx,
      deviceBytesPerTx: acc.device / acc.tx,
      untorn: info[config],
    };
  }
  summary.ratios = { offOverOnTps: ratio('fpw-off', 'fpw-on') };
  if (CONFIGS.includes('nodefs')) summary.ratios.offOverNodefsTps = ratio('fpw-off', 'nodefs');
  if (CONFIGS.includes('fpw-off-doublewrite'))
    summary.ratios.offOverDoublewriteTps = ratio('fpw-off', 'fpw-off-doublewrite');
  releaseAll();
  return summary;
}

function table(type, s) {
  const p = s.params;
  const rows = [
    `${type}${p.on ? ` on ${s.device}` : ' (RAM-backed loop)'}, ${p.rounds} rounds of ${p.tx} TPC-B transactions, CHECKPOINT every ${p.checkpointEvery}, scale ${p.scale}`,
    '| configuration | tx/s median (min-max) | latency p50 / p99 | WAL bytes/tx | device bytes/tx |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const c of p.configs) {
    const r = s[c];
    rows.push(
      `| ${NAMES[c]} | ${r.tps.median.toFixed(0)} (${r.tps.min.toFixed(0)}-${r.tps.max.toFixed(0)}) | ` +
        `${r.latencyMs.p50.toFixed(2)} / ${r.latencyMs.p99.toFixed(2)} ms | ${r.walBytesPerTx.toFixed(0)} | ${r.deviceBytesPerTx.toFixed(0)} |`,
    );
  }
  const on = s['fpw-on'];
  const off = s['fpw-off'];
  rows.push(
    '',
    `full_page_writes off / on: WAL bytes ${(off.walBytesPerTx / on.walBytesPerTx).toFixed(3)}x (goal <= 0.1), ` +
      `device bytes ${(off.deviceBytesPerTx / on.deviceBytesPerTx).toFixed(2)}x ` +
      `(goal ${off.untorn?.strategy === 'atomic' ? 'on the atomic path < 1' : 'with double-write <= 1.3'}), ` +
      `tx/s ${s.ratios.offOverOnTps.toFixed(2)}x (median of per-round ratios; goal >= 1); ` +
      (s.ratios.offOverNodefsTps === undefined
        ? ''
        : `durability (off) against NodeFS: tx/s ${s.ratios.offOverNodefsTps.toFixed(2)}x; `) +
      `strategy ${off.untorn?.strategy}`,
  );
  if (s.ratios.offOverDoublewriteTps !== undefined) {
    const dw = s['fpw-off-doublewrite'];
    rows.push(
      `full_page_writes off, ${off.untorn?.strategy} / doublewrite: tx/s ${s.ratios.offOverDoublewriteTps.toFixed(2)}x, ` +
        `device bytes ${(off.deviceBytesPerTx / dw.deviceBytesPerTx).toFixed(2)}x`,
    );
  }
  return rows.join('\n');
}

if (opts.report) {
  // Tables of a saved --json run (the hardware lab prints its guest's run so).
  const saved = JSON.parse(fs.readFileSync(opts.report === '-' ? 0 : opts.report, 'utf8'));
  for (const [type, s] of Object.entries(saved)) log(`${type === Object.keys(saved)[0] ? '' : '\n'}${table(type, s)}`);
  process.exit(0);
}

try {
  const report = {};
  const types = opts.on ? [sh('stat', ['-f', '-c', '%T', mounted(opts.on).dir])] : opts.fs.split(',');
  for (const type of types) report[type] = await benchFs(type);
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else for (const [type, s] of Object.entries(report)) log('\n' + table(type, s));
} finally {
  releaseAll();
}
