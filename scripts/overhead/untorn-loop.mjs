// untorn-loop: pwrite-loop.c's loop, written through untorn.
//
//   node scripts/overhead/untorn-loop.mjs FILE --mode atomic|plain --depth N --seconds S
//        [--page-size 16384] [--pages P] [--via untorn|binding|node-fs]
//
// depth 1: one loop of file.writeAtomicSync(buf, pos) / file.writeSync(buf, pos).
// depth N: N concurrent async loops, each awaiting file.writeAtomic(buf, pos) /
// file.write(buf, pos) with its own allocAligned() buffer, loop t writing pages
// t, t+N, t+2N, ... as pwrite-loop.c's thread t does. The async writes run on
// libuv's thread pool: the caller (scripts/bench-overhead.mjs) sets
// UV_THREADPOOL_SIZE to N, or fewer than N writes could really be in flight.
//
// --via tells where the overhead is, by doing the same loop through less:
//   untorn   the public API (the default; what the benchmark is about)
//   binding  untorn's native addon called directly, no lib/ validation: the N-API cost
//   node-fs  Node's own fs.writeSync / FileHandle.write on an O_DIRECT fd, plain
//            writes only (Node has no RWF_ATOMIC): the cost of Node's thread pool itself
//
// Prints one JSON line: {"writes":W,"seconds":T,"pagesPerSec":W/T}.
// Exits 1 with a message when a write fails, 2 on bad usage.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const untorn = require(repoRoot);

// As pwrite-loop.c: read the clock once every few writes.
const CHECK_EVERY = 8;
const RWF_ATOMIC = 0x40;

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
        via: { type: 'string', default: 'untorn' },
      },
    });
  } catch (err) {
    fail(err.message, 2);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) fail('exactly one FILE is needed', 2);
  if (values.mode !== 'atomic' && values.mode !== 'plain') fail('--mode is atomic or plain', 2);
  if (!['untorn', 'binding', 'node-fs'].includes(values.via)) fail('--via is untorn, binding or node-fs', 2);
  if (values.via === 'node-fs' && values.mode === 'atomic') fail('--via node-fs writes plain only: Node has no RWF_ATOMIC', 2);
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) fail(`--seconds must be a number > 0, not '${values.seconds}'`, 2);
  const config = {
    path: positionals[0],
    atomic: values.mode === 'atomic',
    depth: integer('depth', values.depth, 1),
    seconds,
    pageSize: integer('page-size', values['page-size'], 512),
    pages: integer('pages', values.pages, 1),
    via: values.via,
  };
  if (config.pages < config.depth) fail('--pages must be at least --depth', 2);
  return config;
}

/** The binding's -errno results as errors, for --via binding. */
function checked(result, position) {
  if (result < 0) throw new Error(`pwritev2 at ${position} failed with errno ${-result}`);
  return result;
}

/**
 * The write calls of one --via: writeSync(buf, pos) and writeAsync(buf, pos)
 * both return (or resolve to) the bytes written; close() ends.
 */
async function openWriter({ path: file, atomic, via }) {
  if (via === 'node-fs') {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    const handle = await fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    return {
      writeSync: (buf, pos) => fs.writeSync(fd, buf, 0, buf.length, pos),
      writeAsync: async (buf, pos) => (await handle.write(buf, 0, buf.length, pos)).bytesWritten,
      close: async () => { fs.closeSync(fd); await handle.close(); },
    };
  }
  const f = untorn.openSync(file, 'r+');
  if (via === 'binding') {
    // The same addon lib/ loads, called as lib/ calls it, minus lib/'s checks.
    const binding = createRequire(path.join(repoRoot, 'package.json'))('node-gyp-build')(repoRoot);
    const flags = atomic ? RWF_ATOMIC : 0;
    return {
      writeSync: (buf, pos) => checked(binding.pwritev2Sync(f.fd, buf, pos, flags), pos),
      writeAsync: async (buf, pos) => checked(await binding.pwritev2(f.fd, buf, pos, flags), pos),
      close: () => f.close(),
    };
  }
  return atomic
    ? { writeSync: (buf, pos) => f.writeAtomicSync(buf, pos), writeAsync: (buf, pos) => f.writeAtomic(buf, pos), close: () => f.close() }
    : { writeSync: (buf, pos) => f.writeSync(buf, pos), writeAsync: (buf, pos) => f.write(buf, pos), close: () => f.close() };
}

function syncLoop({ writeSync }, { pageSize, pages }, deadline) {
  const buf = untorn.allocAligned(pageSize).fill(97);
  let page = 0;
  let writes = 0;
  for (;;) {
    const pos = page * pageSize;
    if (writeSync(buf, pos) !== pageSize) throw new Error(`short write at ${pos}`);
    writes++;
    if (++page >= pages) page = 0;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function asyncLoop({ writeAsync }, { depth, pageSize, pages }, index, deadline) {
  const buf = untorn.allocAligned(pageSize).fill(97 + (index % 26));
  let page = index;
  let writes = 0;
  for (;;) {
    const pos = page * pageSize;
    if ((await writeAsync(buf, pos)) !== pageSize) throw new Error(`short write at ${pos}`);
    writes++;
    page += depth;
    if (page >= pages) page = index;
    if (writes % CHECK_EVERY === 0 && process.hrtime.bigint() >= deadline) return writes;
  }
}

async function main() {
  const config = parseConfig(process.argv.slice(2));
  const writer = await openWriter(config);
  try {
    // Timed from here, as the C program is timed from after its open().
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(config.seconds * 1e9));
    let writes;
    if (config.depth === 1) {
      writes = syncLoop(writer, config, deadline);
    } else {
      const loops = Array.from({ length: config.depth }, (_, t) => asyncLoop(writer, config, t, deadline));
      writes = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // The same precision as pwrite-loop.c's printf.
    const round = (x, digits) => Number(x.toFixed(digits));
    process.stdout.write(`${JSON.stringify({ writes, seconds: round(seconds, 6), pagesPerSec: round(writes / seconds, 1) })}\n`);
  } finally {
    await writer.close();
  }
}

main().catch((err) => fail(`${err.code ? `${err.code}: ` : ''}${err.message}`));
