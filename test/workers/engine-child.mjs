// A child process for test/engine.test.ts: runs one scenario against the
// built package and prints one JSON line with what it saw.
//
//   node engine-child.mjs SCENARIO FILE
//
//   writes     ioEngine(), then async writes, a batch, a read and a datasync on FILE
//   idle       makes the ring with one write, then does nothing: the process must exit by itself
//   leak       50,000 writes at depth 64 on FILE to warm up, then 40,000 more; fds, io_uring
//              fds and RSS before and after those
//   exit       a batch of 64 writes in flight, then process.exit(0) at once
//   linger     a batch started and not awaited: the process must stay alive until it is done
//   workers    two worker_threads write FILE.0 / FILE.1 on their own rings; one more is
//              terminated in the middle of a batch; then the main thread writes again
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const untorn = require('../../dist/index.js');
const { allocAligned, ioEngine, open } = untorn;

const PAGE = 16384;

/** The process's open descriptors, and how many of them are io_uring instances. */
function countDescriptors() {
  const fds = fs.readdirSync('/proc/self/fd');
  let rings = 0;
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[io_uring]') rings++;
    } catch {
      // the directory's own descriptor is gone by now
    }
  }
  return { fds: fds.length, rings };
}

// The io_uring instances the runtime holds before untorn makes any: libuv
// 1.49 and later (Node 22, 24) opens 3 for the main loop at startup, and one
// per worker's loop while it runs; Node 20's libuv none. Counted once in the
// main thread, before untorn's first async call; workers get the number.
const runtimeRings = isMainThread ? countDescriptors().rings : workerData.runtimeRings;

/** As countDescriptors, without the runtime's own rings: untorn's rings (and running workers' loops). */
function descriptors() {
  const { fds, rings } = countDescriptors();
  return { fds, rings: rings - runtimeRings };
}

function page(seed) {
  const buf = allocAligned(PAGE);
  buf.fill(seed & 0xff);
  buf.writeUInt32LE(seed, 0);
  return buf;
}

async function writes(file) {
  const engine = ioEngine();
  const f = await open(file, 'w+');
  const counts = await Promise.all([0, 1, 2, 3].map((i) => f.write(page(i + 1), i * PAGE)));
  const batch = await f.writeBatch(
    [4, 5, 6].map((i) => ({ buffer: page(i + 1), position: i * PAGE })),
    { datasync: true },
  );
  const back = allocAligned(PAGE);
  const read = await f.read(back, 5 * PAGE);
  await f.datasync();
  await f.sync();
  await f.close();
  return { engine, counts, batch, read, seed: back.readUInt32LE(0) };
}

async function idle(file) {
  const f = await open(file, 'w+');
  await f.write(page(1), 0);
  await f.close();
  return { engine: ioEngine(), ...descriptors() };
}

async function leak(file) {
  const f = await open(file, 'w+');
  const buffers = Array.from({ length: 64 }, (_, i) => page(i));
  const run = async (total) => {
    let next = 0;
    const lane = async () => {
      while (next < total) {
        const i = next++;
        await f.write(buffers[i % 64], (i % 256) * PAGE);
      }
    };
    await Promise.all(Array.from({ length: 64 }, lane));
  };
  // Warm: the ring, its slots, V8's code and heap. Node 24's RSS still grows about
  // 6 MB in the 40,000 writes after a 10,000-write warm-up, then stays flat
  // (heap and external memory do not move, and the thread pool does the same).
  await run(50000);
  globalThis.gc?.();
  const before = { ...descriptors(), rss: process.memoryUsage().rss };
  await run(40000);
  globalThis.gc?.();
  const after = { ...descriptors(), rss: process.memoryUsage().rss };
  await f.close();
  return { engine: ioEngine(), before, after };
}

async function exit(file) {
  const f = await open(file, 'w+');
  const bufs = Array.from({ length: 64 }, (_, i) => page(i));
  f.writeBatch(
    bufs.map((buffer, i) => ({ buffer, position: i * PAGE })),
    { datasync: true },
  );
  process.stdout.write(`${JSON.stringify({ engine: ioEngine(), exiting: true })}\n`);
  process.exit(0);
}

async function linger(file) {
  const f = await open(file, 'w+');
  const bufs = Array.from({ length: 256 }, (_, i) => page(i + 1));
  // Nothing awaits this: only the ring's outstanding requests keep the loop alive.
  f.writeBatch(
    bufs.map((buffer, i) => ({ buffer, position: i * PAGE })),
    { datasync: true },
  ).then((counts) => {
    process.stdout.write(
      `${JSON.stringify({ engine: ioEngine(), written: counts.filter((n) => n === PAGE).length })}\n`,
    );
  });
  return undefined;
}

function startWorker(file, mode) {
  return new Worker(new URL(import.meta.url), { workerData: { file, mode, runtimeRings } });
}

async function workerMain({ file, mode }) {
  const f = await open(file, 'w+');
  if (mode === 'batch-forever') {
    // Big batches, one after another: terminate() lands in the middle of one.
    const bufs = Array.from({ length: 64 }, (_, i) => page(i));
    parentPort.postMessage({ engine: ioEngine(), started: true });
    for (;;)
      await f.writeBatch(
        bufs.map((buffer, i) => ({ buffer, position: i * PAGE })),
        { datasync: true },
      );
  }
  const counts = await f.writeBatch([0, 1, 2].map((i) => ({ buffer: page(i + 10), position: i * PAGE })));
  await f.close();
  parentPort.postMessage({ engine: ioEngine(), counts, ...descriptors() });
}

async function workers(file) {
  ioEngine();
  const results = await Promise.all(
    [0, 1].map(
      (i) =>
        new Promise((resolve, reject) => {
          const w = startWorker(`${file}.${i}`, 'once');
          let last;
          w.on('message', (m) => (last = m));
          w.on('error', reject);
          w.on('exit', () => resolve(last));
        }),
    ),
  );
  const doomed = startWorker(`${file}.2`, 'batch-forever');
  const doomedEngine = await new Promise((resolve) => doomed.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const exitCode = await doomed.terminate();
  // The main thread's ring still works after the workers' are gone.
  const main = await writes(`${file}.main`);
  return { results, doomedEngine, exitCode, main, after: descriptors() };
}

if (isMainThread) {
  const [scenario, file] = process.argv.slice(2);
  const run = { writes, idle, leak, workers, exit, linger }[scenario];
  const out = await run(file);
  if (out !== undefined) process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  await workerMain(workerData);
}
