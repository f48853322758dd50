// Races O_DIRECT readers against writers of whole 1 MiB slots of one file and
// counts torn reads: reads that return words of more than one write.
//
// Run by test/tearing.test.ts in a child process, so that the libuv thread
// pool can be sized for the race (UV_THREADPOOL_SIZE is read when the pool
// starts, which in a vitest worker has long happened):
//
//   UV_THREADPOOL_SIZE=6 node tear-race.mjs '{"path": "/mnt/f", "mode": "atomic", "maxReads": 5000}'
//
// Prints one JSON document (the `stats` below) on stdout; exits 1 on an error.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const { open, allocAligned } = createRequire(import.meta.url)('../../dist/index.js');

const config = {
  path: '', // the file to create (truncated if it exists)
  mode: 'atomic', // 'atomic' (writeAtomic) or 'plain' (write: O_DIRECT, no RWF_ATOMIC)
  slotSize: 1024 * 1024,
  slots: 2, // one writer per slot, rewriting it back to back with a new generation each time
  readers: 4, // each with its own AtomicFile opened 'r' and its own buffer
  maxReads: 10_000, // stop after this many reads in all ...
  maxMs: 10_000, // ... or after this long ...
  stopOnTear: false, // ... or at the first torn read
  // Lay each slot out as one extent per 4 KiB block. A 1 MiB O_DIRECT read or
  // write of a contiguous extent reaches the loop device as two 512 KiB
  // requests, queued microseconds apart, and the loop device serves requests
  // one after the other: a plain write then tears about one read in 10^4.
  // Split into 256 extents, each such I/O becomes 256 requests of 4 KiB
  // queued over its whole length, and plain writes tear about every other
  // read (numbers in test/tearing.test.ts). An atomic write on XFS copies on
  // write, so the slot becomes one extent again after its first atomic write.
  fragment: true,
  // Before the readers start, write every slot once the way the writers will.
  // Without it the first atomic write of a slot races readers while the slot
  // is still 256 extents: XFS remaps the whole slot in one transaction at the
  // end of that write, but an O_DIRECT read maps a file extent by extent and
  // can take its first extents before the remap and the rest after it, and
  // so return a mix (0-4 such reads per 10 s run here, all during that first
  // write; none after it in 43,000 reads). RWF_ATOMIC promises only
  // that a crash leaves all or none of a write, not isolation from readers.
  prime: true,
  ...JSON.parse(process.argv[2] ?? '{}'),
};
const { path, mode, slotSize, slots, readers, maxReads, maxMs, stopOnTear, fragment, prime } = config;
const BLOCK = 4096;

// Every 32-bit word of a slot holds its stamp: the slot number in the top
// byte, the generation of the write that put it there below. A read is whole
// when all its words are equal, which Buffer#equals checks at memcmp speed:
// a buffer equals itself shifted by one word only when every word is the same.
const stamp = (slot, generation) => ((slot << 24) | generation) >>> 0;
const slotOf = (word) => word >>> 24;
const generationOf = (word) => word & 0xffffff;
const isWhole = (buf) => buf.subarray(4).equals(buf.subarray(0, buf.length - 4));

function fillStamp(buf, slot, generation) {
  new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4).fill(stamp(slot, generation));
  return buf;
}

/** What a torn read holds: its distinct stamps, and how many 4 KiB blocks start with each generation. */
function describeTear(buf, slot) {
  const stamps = [...new Set(new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4))];
  const blocksByGeneration = {};
  for (let off = 0; off < buf.length; off += BLOCK) {
    const generation = generationOf(buf.readUInt32LE(off));
    blocksByGeneration[generation] = (blocksByGeneration[generation] ?? 0) + 1;
  }
  return { slot, slots: stamps.map(slotOf), generations: stamps.map(generationOf), blocksByGeneration };
}

const stats = {
  mode,
  fragment,
  threadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  slots,
  readers,
  writes: 0,
  reads: 0,
  torn: 0,
  // Reads during which a write to their slot completed: that write's commit
  // fell inside the read (as far as JS can tell), so the two really raced.
  straddling: 0,
  // Fewest distinct generations any slot's whole reads returned: 2 or more
  // means readers saw every slot change under them.
  minGenerationsPerSlot: 0,
  // Reads whose first word is not stamped for their slot: a broken harness.
  misplaced: 0,
  firstTear: null,
  elapsedMs: 0,
};

const completed = new Array(slots).fill(0); // writes finished, per slot
const seen = Array.from({ length: slots }, () => new Set()); // generations of whole reads, per slot
let started = 0;
let failed = false;
const done = () =>
  failed || stats.reads >= maxReads || performance.now() - started >= maxMs || (stopOnTear && stats.torn > 0);

function writeSlot(file, buf, slot, generation) {
  fillStamp(buf, slot, generation);
  const position = slot * slotSize;
  return mode === 'atomic' ? file.writeAtomic(buf, position) : file.write(buf, position);
}

async function writer(file, slot) {
  const buf = allocAligned(slotSize);
  for (let generation = 3; !done(); generation++) {
    await writeSlot(file, buf, slot, generation);
    completed[slot] += 1;
    stats.writes += 1;
  }
}

async function reader(file, index) {
  const buf = allocAligned(slotSize);
  for (let n = index; !done(); n++) {
    const slot = n % slots;
    const before = completed[slot];
    const bytes = await file.read(buf, slot * slotSize);
    if (bytes !== slotSize) throw new Error(`short read: ${bytes} of ${slotSize} bytes`);
    stats.reads += 1;
    if (completed[slot] !== before) stats.straddling += 1;
    const first = buf.readUInt32LE(0);
    if (slotOf(first) !== slot || generationOf(first) === 0) stats.misplaced += 1;
    if (isWhole(buf)) {
      seen[slot].add(generationOf(first));
    } else {
      stats.torn += 1;
      stats.firstTear ??= { read: stats.reads, ...describeTear(buf, slot) };
    }
  }
}

/** Writes every slot at generation 1 (block by block, alternating with a spacer file, when fragmenting), then primes it. */
async function layOut(file) {
  const buf = allocAligned(slotSize);
  const spacerPath = `${path}.spacer`;
  const spacer = fragment ? await open(spacerPath, 'w+') : null;
  try {
    for (let slot = 0; slot < slots; slot++) {
      fillStamp(buf, slot, 1);
      if (!spacer) {
        await file.write(buf, slot * slotSize);
        continue;
      }
      for (let off = 0; off < slotSize; off += BLOCK) {
        const block = buf.subarray(off, off + BLOCK);
        await file.write(block, slot * slotSize + off);
        await spacer.write(block, slot * slotSize + off);
      }
    }
    if (prime) for (let slot = 0; slot < slots; slot++) await writeSlot(file, buf, slot, 2);
    await file.datasync();
  } finally {
    await spacer?.close();
    if (spacer) fs.rmSync(spacerPath);
  }
}

async function race() {
  const writerFile = await open(path, 'w+');
  const readerFiles = [];
  try {
    await layOut(writerFile);
    for (let i = 0; i < readers; i++) readerFiles.push(await open(path, 'r'));
    started = performance.now();
    const racers = [
      ...Array.from({ length: slots }, (_, slot) => writer(writerFile, slot)),
      ...readerFiles.map((file, i) => reader(file, i)),
    ];
    // One failure stops the others; the first error is the one reported.
    await Promise.all(racers.map((p) => p.catch((err) => ((failed = true), Promise.reject(err)))));
  } finally {
    stats.elapsedMs = Math.round(performance.now() - started);
    await Promise.allSettled([writerFile, ...readerFiles].map((file) => file.close()));
  }
  stats.minGenerationsPerSlot = Math.min(...seen.map((set) => set.size));
}

race().then(
  () => process.stdout.write(JSON.stringify(stats) + '\n'),
  (err) => {
    process.stderr.write(`tear-race: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
