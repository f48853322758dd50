// untorn crash lab: the PGlite checker. A long-lived child process, one per
// replay worker (test/crash/lab.mjs), that opens each mounted crash state with
// openPGlite (the journal's replay, then PostgreSQL's WAL redo) and checks it.
// PGlite's WebAssembly module is compiled once and its filesystem bundle read
// once, for every state: a PGlite start then takes well under a second.
//
// stdin, one JSON line per state: { dir, acked: [ID...], started }
// stdout, one JSON line per state:
//   { openError?, missing: [ID...], unknown: [ID...], balanceSum, rows,
//     damage: [line...], openMs, amcheckMs, ms }
// openError: the start failed (with PostgreSQL's last complaints); missing:
// acknowledged transactions not in history; unknown: history ids beyond the
// last transaction started; damage: amcheck's findings (verify_heapam on every
// table, bt_index_check with heapallindexed on every B-tree index, catalogs
// included; a checksum failure is one) and errors reading the tables.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { amcheck } from '@electric-sql/pglite/contrib/amcheck';
import { openPGlite } from '../../dist/pglite/index.js';
import { amcheckAll } from '../pglite-check.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PGLITE = path.join(HERE, '..', '..', 'node_modules', '@electric-sql', 'pglite', 'dist');
const pgliteWasmModule = await WebAssembly.compile(fs.readFileSync(path.join(PGLITE, 'pglite.wasm')));
const fsBundle = new Blob([fs.readFileSync(path.join(PGLITE, 'pglite.data'))]);

async function check({ dir, acked, started, balance }) {
  const t0 = Date.now();
  const log = [];
  const onStderr = (text) => (log.push(text), false);
  let db;
  try {
    db = await openPGlite(dir, { pgliteWasmModule, fsBundle, extensions: { amcheck }, onStderr });
  } catch (err) {
    const why = log.filter((l) => /ERROR|FATAL|PANIC|WARNING/.test(l)).slice(-4);
    return { openError: [String(err?.message ?? err), ...why].join(' | '), ms: Date.now() - t0 };
  }
  const out = { missing: [], unknown: [], balanceSum: null, rows: 0, damage: [], openMs: Date.now() - t0 };
  try {
    out.damage.push(...(await amcheckAll(db)).damage);
    out.amcheckMs = Date.now() - t0 - out.openMs;
    try {
      const ids = new Set((await db.query('SELECT id FROM history')).rows.map((r) => Number(r.id)));
      out.missing = acked.filter((id) => !ids.has(id));
      out.unknown = [...ids].filter((id) => id > started);
      const sum = await db.query('SELECT sum(balance)::int8::text AS s, count(*)::int AS n FROM accounts');
      out.balanceSum = Number(sum.rows[0].s);
      out.rows = sum.rows[0].n;
      if (out.balanceSum !== balance) out.damage.push(`sum of balances ${out.balanceSum}, not ${balance}`);
    } catch (err) {
      out.damage.push(`reading the tables: ${err.message}`);
    }
  } finally {
    await db.close();
  }
  out.ms = Date.now() - t0;
  return out;
}

// One state at a time, in order.
let chain = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(async () => {
    let answer;
    try {
      answer = await check(JSON.parse(line));
    } catch (err) {
      answer = { checkerError: String(err?.stack ?? err) };
    }
    fs.writeSync(1, JSON.stringify(answer) + '\n');
  });
});
fs.writeSync(1, JSON.stringify({ ready: true }) + '\n');
