// untorn-loop: pwrite-loop.c's loop, written through untorn.
//
//   node scripts/overhead/untorn-loop.mjs FILE --mode atomic|plain --depth N --seconds S
//                                         [--page-size 16384] [--pages P]
//
// depth 1: one loop of file.writeAtomicSync(buf, pos) / file.writeSync(buf, pos).
// depth N: N concurrent async loops, each awaiting file.writeAtomic(buf, pos) /
// file.write(buf, pos) with its own allocAligned() buffer, loop t writing pages
// t, t+N, t+2N, ... as pwrite-loop.c's thread t does. The async writes run on
// libuv's thread pool: the caller (scripts/bench-overhead.mjs) sets
// UV_THREADPOOL_SIZE >= N, or fewer than N writes would really be in flight.
//
// Prints one JSON line: {"writes":W,"seconds":T,"pagesPerSec":W/T}.
// Exits 1 with a message when a write fails, 2 on bad usage.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const untorn = createRequire(import.meta.url)(repoRoot);

// As pwrite-loop.c: read the clock once every few writes.
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
    seconds,
    pageSize: integer('page-size', values['page-size'], 512),
    pages: integer('pages', values.pages, 1),
  };
  if (config.pages < config.depth) fail('--pages must be at least --depth', 2);
  return config;
}

function syncLoop(file, { atomic, pageSize, pages }, deadline) {
  const buf = untorn.allocAligned(pageSize).fill('a');
  let page = 0;
  let writes = 0;
  for (;;) {
    if (atomic) file.writeAtomicSync(buf, page * pageSize);
    else file.writeSync(buf, page * pageSize);
    writes++;
    if (++page >= pages) page = 0;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function asyncLoop(file, { atomic, depth, pageSize, pages }, index, deadline) {
  const buf = untorn.allocAligned(pageSize).fill(97 + (index % 26));
  let page = index;
  let writes = 0;
  for (;;) {
    if (atomic) await file.writeAtomic(buf, page * pageSize);
    else await file.write(buf, page * pageSize);
    writes++;
    page += depth;
    if (page >= pages) page = index;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function main() {
  const config = parseConfig(process.argv.slice(2));
  const file = untorn.openSync(config.path, 'r+');
  try {
    // Timed from here, as the C program is timed from after its open().
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(config.seconds * 1e9));
    let writes;
    if (config.depth === 1) {
      writes = syncLoop(file, config, deadline);
    } else {
      const loops = Array.from({ length: config.depth }, (_, t) => asyncLoop(file, config, t, deadline));
      writes = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    process.stdout.write(`${JSON.stringify({ writes, seconds, pagesPerSec: writes / seconds })}\n`);
  } finally {
    await file.close();
  }
}

main().catch((err) => fail(`${err.code ? `${err.code}: ` : ''}${err.message}`));
