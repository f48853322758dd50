// The hardware lab's crash writer, run inside the guest on a filesystem over
// an NVMe namespace whose every write command QEMU's blklogwrites logs. It
// writes stamped page versions (test/crash/stamp.mjs) three ways and, after
// each write is acknowledged, leaves an ack marker: one 4 KiB O_DIRECT write
// to a file on the same filesystem, so the marker lands in the same device
// log, after the write it acknowledges (a namespace's log is in the order
// the device received the commands). The host replays crash states from that
// log (crash-states.mjs) and holds each page against the acks it finds.
//
//   pagefile  openPageFile with strategy 'atomic'; ack = writePage resolved
//   atomic    writeAtomic of a 16 KiB page, then fdatasync; ack = fdatasync returned
//   plain     (the control) a plain O_DIRECT write of a 64 KiB page, larger
//             than the device's atomic unit, then fdatasync
//
// Stamp page ids: pagefile PAGEFILE_ID + page, atomic ATOMIC_ID + page, plain
// PLAIN_ID + page, so the host tells the files apart by content alone.
// Version 0 of every page is written and synced first; then a start marker.
//
// usage (in the guest): node crash-writer.mjs REPO DIR
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stamp, stampPayload } from '../crash/stamp.mjs';
import {
  ACK_MAGIC,
  ATOMIC_ID,
  CRASH_PAGE,
  PAGEFILE_ID,
  PAGES,
  PLAIN_ID,
  PLAIN_PAGE,
  ROUNDS,
  START_ID,
} from './crash-plan.mjs';

const [repo, dir] = process.argv.slice(2);
const untorn = await import(path.join(repo, 'dist/index.js'));

const acks = await untorn.open(path.join(dir, 'acks'), 'w+');
const ACK_SLOTS = 1 + 3 * PAGES * ROUNDS;
// Written (and synced) in full first, so each marker overwrites a block in place.
await acks.write(untorn.allocAligned(ACK_SLOTS * 4096).fill(0xee), 0);
await acks.sync();
let seq = 0;
/** Leaves the marker "page `id` acknowledged at `version`" (its own 4 KiB block). */
async function ack(id, version) {
  const marker = untorn.allocAligned(4096);
  crypto.randomFillSync(marker);
  ACK_MAGIC.copy(marker, 0);
  marker.writeUInt32LE(id, 8);
  marker.writeUInt32LE(version, 12);
  marker.writeUInt32LE(seq, 16);
  await acks.write(marker, seq * 4096);
  await acks.datasync();
  seq++;
}

const pageFile = await untorn.openPageFile(path.join(dir, 'pages'), { pageSize: CRASH_PAGE, strategy: 'atomic' });
const atomic = await untorn.open(path.join(dir, 'atomic'), 'w+');
const plain = await untorn.open(path.join(dir, 'plain'), 'w+');
const page = (size, id, version) => stamp(untorn.allocAligned(size), id, version);

const writers = {
  pagefile: (i, v) => pageFile.writePage(i, stampPayload(PAGEFILE_ID + i, v, CRASH_PAGE, pageFile.payloadSize)),
  atomic: async (i, v) => {
    await atomic.writeAtomic(page(CRASH_PAGE, ATOMIC_ID + i, v), i * CRASH_PAGE);
    await atomic.datasync();
  },
  plain: async (i, v) => {
    await plain.write(page(PLAIN_PAGE, PLAIN_ID + i, v), i * PLAIN_PAGE);
    await plain.datasync();
  },
};
const ids = { pagefile: PAGEFILE_ID, atomic: ATOMIC_ID, plain: PLAIN_ID };

// Version 0 everywhere, made durable with its metadata: the base every crash state starts from.
for (let i = 0; i < PAGES; i++) for (const write of Object.values(writers)) await write(i, 0);
await atomic.sync();
await plain.sync();
await ack(START_ID, 0);

// One write in flight at a time (each awaited, then its marker): the host's
// model lets only the command the device received last be in flight.
for (let v = 1; v <= ROUNDS; v++) {
  const order = [...Array(PAGES).keys()].sort(() => Math.random() - 0.5);
  for (const i of order) {
    for (const [mode, write] of Object.entries(writers)) {
      await write(i, v);
      await ack(ids[mode] + i, v);
    }
  }
}
await pageFile.close();
await atomic.close();
await plain.close();
await acks.close();
fs.writeFileSync(path.join(dir, 'done'), `${seq}\n`);
