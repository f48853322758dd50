// untorn-loop: write-loop.cc's loops, written through untorn's public API.
//
//   node scripts/overhead/untorn-loop.mjs FILE --mode atomic|plain --depth N --seconds S
//        [--batch B] [--page-size 16384] [--pages P]
//
// depth 1:   one loop of file.writeAtomicSync(buf, pos) / file.writeSync(buf, pos).
// depth N:   N concurrent async loops, each awaiting file.writeAtomic(buf, pos) /
//            file.write(buf, pos) with its own buffer, loop t writing pages t, t+N, ...
//            as write-loop.cc's thread t does; they run on untorn's engine (ioEngine()).
// --batch B: one loop of file.writeAtomicBatch(B consecutive pages, { datasync: true })
//            / file.writeBatch(...): B writes in flight, then one fdatasync.
//
// Prints one JSON line: {"writes":W,"seconds":T,"pagesPerSec":W/T,"engine":"io_uring"}.
// Exits 1 with a message when a write fails, 2 on bad usage.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const untorn = createRequire(import.meta.url)(repoRoot);

// As write-loop.cc: read the clock once every few writes.
const CHECK_EVERY = 8;

function fail(message, code = 1) {
  process.stderr.write(`untorn-loop: ${message}\n`);
  process.exit(code);
}

function integer(name, value, min) {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, not '${value}'`, 2);
  return n;
}

function parseConfig(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        mode: { type: 'string' },
        depth: { type: 'string', default: '1' },
        seconds: { type: 'string' },
        batch: { type: 'string', default: '0' },
        'page-size': { type: 'string', default: '16384' },
        pages: { type: 'string', default: '4096' },
      },
    });
  } catch (err) {
    fail(err.message, 2);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) fail('exactly one FILE is needed', 2);
  if (values.mode !== 'atomic' && values.mode !== 'plain') fail('--mode is atomic or plain', 2);
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) fail(`--seconds must be a number > 0, not '${values.seconds}'`, 2);
  const config = {
    path: positionals[0],
    atomic: values.mode === 'atomic',
    depth: integer('depth', values.depth, 1),
    batch: integer('batch', values.batch, 0),
    seconds,
    pageSize: integer('page-size', values['page-size'], 512),
    pages: integer('pages', values.pages, 1),
  };
  if (config.pages < Math.max(config.depth, config.batch)) fail('--pages must be at least --depth and --batch', 2);
  return config;
}

function syncLoop(f, { atomic, pageSize, pages }, deadline) {
  const buf = untorn.allocAligned(pageSize).fill(97);
  const write = atomic ? (pos) => f.writeAtomicSync(buf, pos) : (pos) => f.writeSync(buf, pos);
  let page = 0;
  let writes = 0;
  for (;;) {
    const pos = page * pageSize;
    if (write(pos) !== pageSize) throw new Error(`short write at ${pos}`);
    writes++;
    if (++page >= pages) page = 0;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function asyncLoop(f, { atomic, depth, pageSize, pages }, index, deadline) {
  const buf = untorn.allocAligned(pageSize).fill(97 + (index % 26));
  const write = atomic ? (pos) => f.writeAtomic(buf, pos) : (pos) => f.write(buf, pos);
  let page = index;
  let writes = 0;
  for (;;) {
    const pos = page * pageSize;
    if ((await write(pos)) !== pageSize) throw new Error(`short write at ${pos}`);
    writes++;
    page += depth;
    if (page >= pages) page = index;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function batchLoop(f, { atomic, batch, pageSize, pages }, deadline) {
  const bufs = Array.from({ length: batch }, (_, i) => untorn.allocAligned(pageSize).fill(97 + (i % 26)));
  const write = atomic
    ? (entries) => f.writeAtomicBatch(entries, { datasync: true })
    : (entries) => f.writeBatch(entries, { datasync: true });
  let first = 0;
  let writes = 0;
  do {
    const entries = bufs.map((buffer, i) => ({ buffer, position: ((first + i) % pages) * pageSize }));
    const counts = await write(entries);
    if (counts.some((n) => n !== pageSize)) throw new Error(`short write in the batch at page ${first}`);
    writes += batch;
    first = (first + batch) % pages;
  } while (process.hrtime.bigint() < deadline);
  return writes;
}

async function main() {
  const config = parseConfig(process.argv.slice(2));
  const f = untorn.openSync(config.path, 'r+');
  const engine = untorn.ioEngine().name;
  try {
    // Timed from here, as the C++ program is timed from after its open().
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(config.seconds * 1e9));
    let writes;
    if (config.batch > 0) {
      writes = await batchLoop(f, config, deadline);
    } else if (config.depth === 1) {
      writes = syncLoop(f, config, deadline);
    } else {
      const loops = Array.from({ length: config.depth }, (_, t) => asyncLoop(f, config, t, deadline));
      writes = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // The same precision as write-loop.cc's printf.
    const round = (x, digits) => Number(x.toFixed(digits));
    process.stdout.write(
      `${JSON.stringify({ writes, seconds: round(seconds, 6), pagesPerSec: round(writes / seconds, 1), engine })}\n`,
    );
  } finally {
    await f.close();
  }
}

main().catch((err) => fail(`${err.code ? `${err.code}: ` : ''}${err.message}`));
