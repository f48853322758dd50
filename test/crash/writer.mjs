// untorn crash lab: the writer. A child process that drives the writes
// through untorn's public API (the built package, dist/index.js) and leaves a
// mark in the recorder's log at every step, so that the checker knows what
// was acknowledged.
//
//   node writer.mjs '{"mode":"setup", ...}'   makes the test file (version 0 of every page)
//   node writer.mjs '{"mode":"run", ...}'     rewrites pages in batches, with marks
//
// Config: dir (the XFS mount), pageSize, pages, layout ('contiguous' |
// 'fragmented'), blockSize (the filesystem's), api ('atomic' | 'plain'),
// batches, batchPages, seed, marks (path of the recorder's mark file).
//
// Marks (one line each, written with one write(2) to the mark file, which the
// recorder serves without a page cache: a mark is in the log before this
// process goes on):
//   begin API
//   batch N CALL DURABILITY     CALL sync|async, DURABILITY datasync|dsync
//   s PAGE VERSION              the write of that version is about to be issued
//   r PAGE VERSION              it returned (not yet durable)
//   rd PAGE VERSION             it returned, and was a dsync write: durable
//   d                           fdatasync returned: every write that returned before is durable
//   end
//
// Page file modes (config: strategy, rounds, batchPages):
//   pagefile-setup   makes the page file `data` (and `data.dblwr` for
//                    'doublewrite'), every page at version 0
//   pagefile-run     rounds of one to three concurrent writePages calls of
//                    one to six distinct pages each (a page may be in two
//                    concurrent calls: the later has the higher version);
//                    marks: `batch N CALLS writePages`, `s PAGE VERSION`
//                    before each call, `rd PAGE VERSION` for each of its
//                    pages once the call resolved (acknowledged durable).
// A payload is the page's stamp cut to payloadSize (the page file owns the
// last 32 bytes of each page), so the checker trusts no page file code.
//
// Journal modes (config: files [{ name, id, pages, grows? }], strategy
// 'doublewrite' | 'atomic' | 'plain' (plain: no journal, the control),
// rounds; docs/crash-lab.md, "Journals"):
//   journal-setup   writes every file's first `pages` pages at version 0
//                   (plain O_DIRECT writes, fdatasync), then opens and
//                   closes the journal `journal` (its batch area allocated)
//   journal-run     rounds of page writes over all files through ONE
//                   journal, styles in turn (JOURNAL_STYLES); a page is
//                   named by its index over all files (files in order);
//                   marks: `batch N STYLE`, `s PAGE VERSION` before a write,
//                   `r PAGE VERSION` once it returned, `c ID` just before
//                   commit ID is called (every write that returned before is
//                   covered by it), `cd ID` once it returned (what it covered
//                   is durable). The grown file's new pages start at version 1.
// PGlite modes (config: pglite 'untorn' | 'atomic' | 'nodefs' | 'unjournaled',
// accounts, transactions, checkpointEvery; docs/crash-lab.md, "PGlite"):
//   pglite-setup    openPGlite on `dir/pg` (its first open), the tables
//                   (accounts with balances, history), CHECKPOINT, close
//   pglite-run      transfers (two balance updates and a history row, in
//                   one transaction; the sum of balances never changes) and
//                   a CHECKPOINT every `checkpointEvery`, through openPGlite
//                   ('untorn'; 'atomic': with strategy 'atomic'), PGlite's own NodeFS as shipped ('nodefs',
//                   fsync off: the first control) or UntornFS without its
//                   journal, full_page_writes off ('unjournaled': the
//                   second control); marks: `c ID` just before the COMMIT of
//                   transaction ID is sent (history id ID), `cd ID` once it
//                   resolved (acknowledged), `k ID` before the CHECKPOINT
//                   after ID and `kd ID` once it resolved.
// Prints one JSON line on stdout: what it did.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stamp, stampPayload } from './stamp.mjs';

const require = createRequire(import.meta.url);
const untorn = require(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'index.js'));

const config = JSON.parse(process.argv[2]);
const { dir, pageSize, pages } = config;
const dataPath = path.join(dir, 'data');
const fillerPath = path.join(dir, 'filler');

/** Batch styles, in turn: every scenario covers both calls and both durability points. */
const STYLES = [
  { call: 'sync', durability: 'datasync' },
  { call: 'async', durability: 'dsync' },
  { call: 'sync', durability: 'dsync' },
  { call: 'async', durability: 'datasync' },
];

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function setup() {
  const { layout, blockSize } = config;
  const data = untorn.openSync(dataPath, 'w+');
  const all = untorn.allocAligned(pages * pageSize);
  for (let p = 0; p < pages; p++) stamp(all.subarray(p * pageSize, (p + 1) * pageSize), p, 0);
  if (layout === 'contiguous') {
    // One write: one allocation, one extent.
    data.writeSync(all, 0);
  } else {
    // Every filesystem block of the test file alternates with a block of a
    // filler file: O_DIRECT writes that extend a file allocate at once, so
    // no two blocks of the test file end up adjacent on the device.
    const filler = untorn.openSync(fillerPath, 'w+');
    const block = untorn.allocAligned(blockSize);
    for (let off = 0; off < pages * pageSize; off += blockSize) {
      all.copy(block, 0, off, off + blockSize);
      data.writeSync(block, off);
      filler.writeSync(block, off);
    }
    filler.closeSync();
  }
  data.closeSync();
  // Durable before the base image is taken (the image is unmounted anyway).
  const fd = fs.openSync(dataPath, 'r');
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  return { pages, pageSize, layout };
}

async function run() {
  const { api, batches, batchPages, seed } = config;
  const random = rng(seed);
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  const file = untorn.openSync(dataPath, 'r+');
  if (api === 'atomic' && !(file.info.supported && file.info.unitMin <= pageSize && pageSize <= file.info.unitMax)) {
    throw new Error(`${dataPath}: no atomic writes of ${pageSize} bytes here (${JSON.stringify(file.info)})`);
  }
  const writeSync = api === 'atomic' ? file.writeAtomicSync.bind(file) : file.writeSync.bind(file);
  const writeAsync = api === 'atomic' ? file.writeAtomic.bind(file) : file.write.bind(file);
  const version = new Array(pages).fill(0);
  let writes = 0;
  mark(`begin ${api}`);
  for (let b = 0; b < batches; b++) {
    const style = STYLES[b % STYLES.length];
    mark(`batch ${b} ${style.call} ${style.durability}`);
    // batchPages distinct pages, in random order.
    const chosen = [];
    while (chosen.length < Math.min(batchPages, pages)) {
      const p = Math.floor(random() * pages);
      if (!chosen.includes(p)) chosen.push(p);
    }
    const dsync = style.durability === 'dsync';
    const jobs = chosen.map((p) => {
      const v = ++version[p];
      return { p, v, buf: stamp(untorn.allocAligned(pageSize), p, v) };
    });
    if (style.call === 'sync') {
      for (const { p, v, buf } of jobs) {
        mark(`s ${p} ${v}`);
        writeSync(buf, p * pageSize, { dsync });
        mark(`${dsync ? 'rd' : 'r'} ${p} ${v}`);
        writes++;
      }
    } else {
      // All of the batch in flight at once.
      await Promise.all(
        jobs.map(async ({ p, v, buf }) => {
          mark(`s ${p} ${v}`);
          await writeAsync(buf, p * pageSize, { dsync });
          mark(`${dsync ? 'rd' : 'r'} ${p} ${v}`);
          writes++;
        }),
      );
    }
    if (!dsync) {
      await file.datasync();
      mark('d');
    }
  }
  mark('end');
  file.closeSync();
  fs.closeSync(marks);
  return { api, writes, versions: version };
}

function pageFileOptions() {
  return { strategy: config.strategy, pageSize, batchPages: config.batchPages };
}

async function setupPageFile() {
  const pf = await untorn.openPageFile(dataPath, pageFileOptions());
  if (pf.strategy !== config.strategy)
    throw new Error(`${dataPath}: strategy ${pf.strategy}, wanted ${config.strategy}`);
  const writes = [];
  for (let p = 0; p < pages; p++) writes.push({ page: p, data: stampPayload(p, 0, pageSize, pf.payloadSize) });
  await pf.writePages(writes);
  await pf.close();
  return { pages, pageSize, strategy: pf.strategy };
}

async function runPageFile() {
  const { rounds, seed, strategy } = config;
  const random = rng(seed);
  const int = (n) => Math.floor(random() * n);
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  const pf = await untorn.openPageFile(dataPath, pageFileOptions());
  if (pf.strategy !== strategy) throw new Error(`${dataPath}: strategy ${pf.strategy}, wanted ${strategy}`);
  const version = new Array(pages).fill(0);
  let writes = 0;
  let calls = 0;
  mark(`begin pagefile-${strategy}`);
  for (let b = 0; b < rounds; b++) {
    const n = 1 + int(3);
    mark(`batch ${b} ${n} writePages`);
    const inFlight = [];
    for (let c = 0; c < n; c++) {
      const chosen = [];
      const count = 1 + int(6);
      while (chosen.length < count) {
        const p = int(pages);
        if (!chosen.includes(p)) chosen.push(p);
      }
      const jobs = chosen.map((p) => ({ p, v: ++version[p] }));
      for (const { p, v } of jobs) mark(`s ${p} ${v}`);
      const data = jobs.map(({ p, v }) => ({ page: p, data: stampPayload(p, v, pageSize, pf.payloadSize) }));
      calls++;
      inFlight.push(
        pf.writePages(data).then(() => {
          for (const { p, v } of jobs) mark(`rd ${p} ${v}`);
          writes += jobs.length;
        }),
      );
    }
    await Promise.all(inFlight);
  }
  mark('end');
  await pf.close();
  fs.closeSync(marks);
  return { api: `pagefile-${strategy}`, writes, calls, versions: version };
}

/** Journal batch styles, in turn: both call forms, concurrent commits, and a file's datasync. */
const JOURNAL_STYLES = ['sync commitSync', 'async commit', 'concurrent commit', 'sync datasyncSync', 'async datasync'];

function journalPath() {
  return path.join(dir, 'journal');
}

async function setupJournal() {
  const block = untorn.allocAligned(pageSize);
  for (const f of config.files) {
    const file = untorn.openSync(path.join(dir, f.name), 'w+');
    for (let p = 0; p < f.pages; p++) file.writeSync(stamp(block, p, 0, f.id), p * pageSize);
    file.datasyncSync();
    file.closeSync();
  }
  if (config.strategy !== 'plain') {
    const journal = await untorn.openJournal(journalPath(), { strategy: config.strategy, pageSize });
    if (journal.strategy !== config.strategy)
      throw new Error(`${journalPath()}: strategy ${journal.strategy}, wanted ${config.strategy}`);
    await journal.close();
  }
  return { files: config.files.length, pageSize, strategy: config.strategy };
}

/**
 * The files as the run writes them: through the journal, or (plain, the
 * control) O_DIRECT writes in place where a commit is an fdatasync of every file.
 */
async function journalTarget() {
  const { strategy } = config;
  if (strategy === 'plain') {
    const files = config.files.map((f) => untorn.openSync(path.join(dir, f.name), 'r+'));
    const commitAll = () => Promise.all(files.map((f) => f.datasync()));
    return {
      files: files.map((f) => ({
        writePageSync: (buf, pos) => f.writeSync(buf, pos),
        writePage: (buf, pos) => f.write(buf, pos),
        datasync: commitAll,
        datasyncSync: () => files.forEach((g) => g.datasyncSync()),
      })),
      commit: commitAll,
      commitSync: () => files.forEach((g) => g.datasyncSync()),
      close: async () => files.forEach((f) => f.closeSync()),
      // Plain O_DIRECT writes of one page in flight together may land in either order.
      ordersSamePage: false,
    };
  }
  const journal = await untorn.openJournal(journalPath(), { strategy, pageSize });
  if (journal.strategy !== strategy)
    throw new Error(`${journalPath()}: strategy ${journal.strategy}, wanted ${strategy}`);
  const files = [];
  for (const f of config.files) files.push(await journal.openFile(path.join(dir, f.name), 'r+'));
  return {
    files,
    commit: () => journal.commit(),
    commitSync: () => journal.commitSync(),
    close: () => journal.close(),
    ordersSamePage: true,
  };
}

async function runJournal() {
  const { rounds, seed, strategy } = config;
  const random = rng(seed);
  const int = (n) => Math.floor(random() * n);
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  const target = await journalTarget();
  // Pages by index over all files; a file's size in pages grows as its new pages are written.
  const first = [];
  let total = 0;
  for (const f of config.files) {
    first.push(total);
    total += f.grows ?? f.pages;
  }
  const size = config.files.map((f) => f.pages);
  const version = new Array(total).fill(0);
  let writes = 0;
  let commitId = 0;
  // One write: the next version of page `p` of file `fi` (numbered when issued, so that a later call has a higher version).
  const job = (fi, p) => {
    const f = config.files[fi];
    const v = ++version[first[fi] + p];
    return { fi, p, g: first[fi] + p, v, buf: stamp(untorn.allocAligned(pageSize), p, v, f.id) };
  };
  const pick = () => {
    const jobs = [];
    for (let n = 3 + int(4); jobs.length < n;) {
      if (jobs.length > 0 && random() < 0.2) {
        // The same page again, later in the batch: rewritten before its commit.
        jobs.push(jobs[int(jobs.length)]);
        continue;
      }
      const fi = int(config.files.length);
      const f = config.files[fi];
      // A growing file gets its next page (appended) half the time.
      const append = f.grows && size[fi] < f.grows && random() < 0.5;
      const p = append ? size[fi]++ : int(size[fi]);
      jobs.push({ fi, p });
    }
    return jobs;
  };
  const writeSync = (which) => {
    const { fi, p, g, v, buf } = job(which.fi, which.p);
    mark(`s ${g} ${v}`);
    target.files[fi].writePageSync(buf, p * pageSize);
    mark(`r ${g} ${v}`);
    writes++;
  };
  // All in flight at once; where plain writes cannot order two writes of one
  // page, those go one after the other (also across a batch's groups).
  const chains = new Map();
  const writeAll = (jobs) =>
    Promise.all(
      jobs.map((which) => {
        const { fi, p, g, v, buf } = job(which.fi, which.p);
        mark(`s ${g} ${v}`);
        const go = () =>
          target.files[fi].writePage(buf, p * pageSize).then(() => {
            mark(`r ${g} ${v}`);
            writes++;
          });
        const before = target.ordersSamePage ? null : chains.get(g);
        const done = before ? before.then(go) : go();
        chains.set(g, done);
        return done;
      }),
    );
  const commit = async (call) => {
    const id = commitId++;
    mark(`c ${id}`);
    await call();
    mark(`cd ${id}`);
  };
  mark(`begin journal-${strategy}`);
  for (let b = 0; b < rounds; b++) {
    const style = JOURNAL_STYLES[b % JOURNAL_STYLES.length];
    mark(`batch ${b} ${style}`);
    const jobs = pick();
    const someFile = target.files[jobs[0].fi];
    if (style === 'sync commitSync') {
      jobs.forEach(writeSync);
      await commit(() => target.commitSync());
    } else if (style === 'async commit') {
      await writeAll(jobs);
      await commit(() => target.commit());
    } else if (style === 'concurrent commit') {
      // Two or three groups of writes, each followed by a commit that is not
      // awaited before the next group starts; then one more commit at once.
      const groups = 2 + int(2);
      const inFlight = [];
      for (let k = 0; k < groups; k++) {
        const part = jobs.filter((_, i) => i % groups === k);
        inFlight.push(writeAll(part));
        if (random() < 0.5) await inFlight[inFlight.length - 1];
        inFlight.push(commit(() => target.commit()));
      }
      inFlight.push(commit(() => target.commit()));
      await Promise.all(inFlight);
    } else if (style === 'sync datasyncSync') {
      jobs.forEach(writeSync);
      await commit(() => someFile.datasyncSync());
    } else {
      await writeAll(jobs);
      await commit(() => someFile.datasync());
    }
  }
  mark('end');
  await target.close();
  fs.closeSync(marks);
  return { api: `journal-${strategy}`, writes, commits: commitId, sizes: size, versions: version };
}

/** The PGlite data directory inside the lab's mount. */
function pgliteDir() {
  return path.join(dir, 'pg');
}

async function pglite() {
  // Plain import(): the rest of the writer never loads PGlite.
  return {
    ...(await import('@electric-sql/pglite')),
    ...(await import(
      path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'pglite', 'index.js')
    )),
  };
}

async function setupPGlite() {
  const { openPGlite } = await pglite();
  const db = await openPGlite(pgliteDir());
  await db.exec(`
    CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, filler text NOT NULL);
    CREATE TABLE history (id int PRIMARY KEY, aid int NOT NULL, bid int NOT NULL, delta int NOT NULL);
    CREATE INDEX history_aid ON history (aid);
    INSERT INTO accounts SELECT g, ${config.balance}, repeat('x', 84) FROM generate_series(1, ${config.accounts}) g;
    CHECKPOINT;`);
  const { strategy, fullPageWrites } = db.untorn;
  await db.close();
  return { accounts: config.accounts, strategy, fullPageWrites };
}

async function runPGlite() {
  const { transactions, checkpointEvery, accounts, seed } = config;
  const { PGlite, openPGlite, UntornFS } = await pglite();
  const marks = fs.openSync(config.marks, 'w');
  const mark = (line) => fs.writeSync(marks, line + '\n');
  let db;
  if (config.pglite === 'untorn') db = await openPGlite(pgliteDir());
  else if (config.pglite === 'atomic') db = await openPGlite(pgliteDir(), { untorn: { strategy: 'atomic' } });
  else if (config.pglite === 'nodefs') db = await PGlite.create(pgliteDir());
  else if (config.pglite === 'unjournaled') {
    // UntornFS's internal test control: relation files written straight (buffered), fsync real.
    db = await PGlite.create({ fs: new UntornFS(pgliteDir(), undefined, { unjournaled: true }) });
  } else throw new Error(`unknown pglite mode ${config.pglite}`);
  const settings = (await db.query("SELECT current_setting('fsync') AS f, current_setting('full_page_writes') AS p"))
    .rows[0];
  const random = rng(seed);
  const int = (n) => Math.floor(random() * n);
  let checkpoints = 0;
  mark(`begin pglite-${config.pglite}`);
  for (let id = 1; id <= transactions; id++) {
    const a = 1 + int(accounts);
    const b = 1 + ((a + int(accounts - 1)) % accounts);
    const delta = 1 + int(100);
    await db.exec(
      `BEGIN; UPDATE accounts SET balance = balance - ${delta} WHERE id = ${a};` +
        ` UPDATE accounts SET balance = balance + ${delta} WHERE id = ${b};` +
        ` INSERT INTO history (id, aid, bid, delta) VALUES (${id}, ${a}, ${b}, ${delta});`,
    );
    mark(`c ${id}`);
    await db.exec('COMMIT');
    mark(`cd ${id}`);
    if (id % checkpointEvery === 0) {
      mark(`k ${id}`);
      await db.exec('CHECKPOINT');
      mark(`kd ${id}`);
      checkpoints++;
    }
  }
  mark('end');
  await db.close();
  fs.closeSync(marks);
  return {
    api: `pglite-${config.pglite}`,
    writes: transactions,
    transactions,
    checkpoints,
    fsync: settings.f,
    fullPageWrites: settings.p,
    // openPGlite's strategy and journal (null with 'atomic'): what the scenario's name claims.
    strategy: db.untorn?.strategy ?? null,
    journal: db.untorn?.journal ?? null,
  };
}

const modes = {
  setup,
  run,
  'pagefile-setup': setupPageFile,
  'pagefile-run': runPageFile,
  'journal-setup': setupJournal,
  'journal-run': runJournal,
  'pglite-setup': setupPGlite,
  'pglite-run': runPGlite,
};
const result = await modes[config.mode]();
process.stdout.write(JSON.stringify(result) + '\n');
