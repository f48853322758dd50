// The hardware lab's PGlite smoke test, run inside the lab's guest on a
// filesystem with hardware atomic writes (XFS or ext4 on the NVMe disks with
// atomic write units): openPGlite must take the atomic path (relation pages
// written with RWF_ATOMIC in place, no journal copy), run a short workload,
// close, reopen, and pass amcheck with every row there.
//
//   node test/pglite-hwlab-smoke.mjs DIR [REPO]   (REPO: the checkout with dist/ built; default: this one)
//
// Prints one JSON line { ok, strategy, strategyReason, journal, rows, amcheck, seconds, error? } and
// exits 0 when ok.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { amcheckAll } from './pglite-check.mjs';

const [dir, repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')] = process.argv.slice(2);
const require = createRequire(path.join(repo, 'package.json'));
const { openPGlite } = require(path.join(repo, 'dist', 'pglite', 'index.js'));
const { amcheck } = require('@electric-sql/pglite/contrib/amcheck');

const started = Date.now();
const result = { ok: false };
try {
  // 'atomic' asked for outright: where 8 KiB pages cannot be written atomically this is ERR_ATOMIC_UNSUPPORTED.
  const db = await openPGlite(dir, { untorn: { strategy: 'atomic' } });
  Object.assign(result, db.untorn);
  await db.exec(`CREATE TABLE smoke (id int PRIMARY KEY, v text NOT NULL);
    INSERT INTO smoke SELECT g, md5(g::text) FROM generate_series(1, 2000) g;`);
  for (let i = 1; i <= 50; i++) await db.exec(`UPDATE smoke SET v = v || 'x' WHERE id = ${i * 37}`);
  await db.exec('CHECKPOINT');
  await db.close();
  const again = await openPGlite(dir, { untorn: { strategy: 'atomic' }, extensions: { amcheck } });
  result.rows = Number((await again.query('SELECT count(*)::int AS n FROM smoke')).rows[0].n);
  result.amcheck = await amcheckAll(again);
  await again.close();
  result.ok =
    result.strategy === 'atomic' &&
    result.journal === null &&
    result.rows === 2000 &&
    result.amcheck.damage.length === 0;
} catch (err) {
  result.error = `${err.code ?? err.name}: ${err.message}`;
}
result.seconds = (Date.now() - started) / 1000;
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
