// A child process for test/journal.test.ts: runs one scenario against the
// built package and prints one line (a code or JSON) with what it saw.
//
//   node journal-child.mjs SCENARIO JSON
//
//   lock           opens the journal at `path`; prints "opened" or the error's code, then waits
//                  for stdin to close (so the parent can try while it holds the journal)
//   starve         `while (!done) await file.read(...)` over a page being written async (the
//                  doublewrite commit, or the atomic in-place write): prints "done" once the loop
//                  ends; a read that resolves without letting the loop turn starves it forever
//   starve-pf      the same over a page file's readPage
//   threads        the main thread and a worker_thread each write, commit and read back through
//                  their own journal in `dir`; prints JSON with what each saw
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const { openJournal, openPageFile } = createRequire(import.meta.url)('../../dist/index.js');

function page(size, seed) {
  const b = Buffer.alloc(size, seed & 0xff);
  b.writeUInt32LE(seed, 0);
  return b;
}

async function lock({ path: file }) {
  try {
    await openJournal(file);
    process.stdout.write('opened\n');
  } catch (err) {
    process.stdout.write(`${err.code}\n`);
  }
  process.stdin.resume();
}

async function starve({ path: file, strategy }) {
  const j = await openJournal(file, { strategy, pageSize: 4096 });
  const f = await j.openFile(`${file}.data`, 'w+');
  const buf = Buffer.alloc(4096);
  let reads = 0;
  for (let round = 0; round < 20; round++) {
    let done = false;
    const write = f.writePage(page(4096, round + 1), 0);
    // doublewrite: the write is held at once; the commit is the async work the reads wait on.
    const work = strategy === 'atomic' ? write : write.then(() => j.commit());
    work.then(() => (done = true));
    while (!done) {
      await f.read(buf, 0);
      reads++;
    }
  }
  await j.close();
  process.stdout.write(`done ${reads}\n`);
}

async function starvePageFile({ path: file }) {
  const pf = await openPageFile(file, { pageSize: 4096 });
  let reads = 0;
  for (let round = 0; round < 20; round++) {
    let done = false;
    pf.writePage(3, page(pf.payloadSize, round + 1)).then(() => (done = true));
    while (!done) {
      await pf.readPage(3);
      reads++;
    }
  }
  await pf.close();
  process.stdout.write(`done ${reads}\n`);
}

/** One thread's share of 'threads': its own journal and file, 64 pages in 4 commits, read back. */
async function threadWork(dir, who) {
  const j = await openJournal(path.join(dir, `journal-${who}`), { pageSize: 4096 });
  const f = await j.openFile(path.join(dir, `data-${who}`), 'w+');
  const seed = who === 'main' ? 1000 : 2000;
  for (let c = 0; c < 4; c++) {
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => f.writePage(page(4096, seed + c * 16 + i), (c * 16 + i) * 4096)),
    );
    await j.commit();
  }
  const back = Buffer.alloc(64 * 4096);
  const n = await f.read(back, 0);
  await j.close();
  const onDisk = fs.readFileSync(path.join(dir, `data-${who}`));
  let good = 0;
  for (let i = 0; i < 64; i++) {
    const want = page(4096, seed + i);
    if (back.subarray(i * 4096, (i + 1) * 4096).equals(want) && onDisk.subarray(i * 4096, (i + 1) * 4096).equals(want))
      good++;
  }
  return { who, strategy: j.strategy, read: n, good };
}

async function threads({ dir }) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { dir } });
  const fromWorker = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const [main, other] = await Promise.all([threadWork(dir, 'main'), fromWorker]);
  process.stdout.write(`${JSON.stringify({ main, worker: other })}\n`);
}

if (isMainThread) {
  const [scenario, json] = process.argv.slice(2);
  const run = { lock, starve, 'starve-pf': starvePageFile, threads }[scenario];
  await run(JSON.parse(json));
} else {
  parentPort.postMessage(await threadWork(workerData.dir, 'worker'));
}
