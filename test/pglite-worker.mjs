// A PGlite writer for the crash tests (test/pglite-crash.test.ts): runs
// transfer transactions on a data directory made by test/pglite-helpers.ts
// and prints "ack <id>" (a blocking write) once each COMMIT has resolved.
//   node test/pglite-worker.mjs <dataDir> <untorn|control> <transactions> <checkpointEvery>
// untorn: openPGlite. control: the same filesystem without the journal
// (relation pages written straight to their files, buffered, fsync real),
// full_page_writes off too.
import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { openPGlite } from '../dist/pglite/index.js';
import { UntornFS } from '../dist/pglite/untorn-fs.js';

const [dir, mode, count, every] = process.argv.slice(2);
const db =
  mode === 'control'
    ? await PGlite.create({ fs: new UntornFS(dir, undefined, { unjournaled: true }) })
    : await openPGlite(dir);
const { rows } = await db.query(
  'SELECT coalesce(max(id), 0) AS last, (SELECT count(*) FROM accounts) AS n FROM history',
);
const first = Number(rows[0].last) + 1;
const accounts = Number(rows[0].n);
fs.writeSync(1, `ready ${first}\n`);
for (let id = first; id < first + Number(count); id++) {
  // Deterministic, spread over the table: the same run writes the same pages.
  const a = ((id * 7919) % accounts) + 1;
  const b = ((id * 104729 + 13) % accounts) + 1;
  const delta = (id % 97) + 1;
  await db.exec(
    `BEGIN; UPDATE accounts SET balance = balance - ${delta} WHERE id = ${a};` +
      ` UPDATE accounts SET balance = balance + ${delta} WHERE id = ${b};` +
      ` INSERT INTO history (id, aid, delta) VALUES (${id}, ${a}, ${delta}); COMMIT`,
  );
  fs.writeSync(1, `ack ${id}\n`);
  if (id % Number(every) === 0) {
    // A marker the crash tests find in strace's log (write(1, ...)): what follows is this checkpoint's I/O.
    fs.writeSync(1, `checkpoint ${id}\n`);
    await db.exec('CHECKPOINT');
  }
}
await db.close();
fs.writeSync(1, 'done\n');
