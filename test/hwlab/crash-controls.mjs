// Controls for the crash-state checker (crash-states.mjs): small device logs
// made here, in blklogwrites' format, of one page per way and one version,
// that the checker must judge right. Without them, "0 torn, 0 lost" on the
// guest's log could come from a checker that cannot see either.
//
//   whole        every page write one command, each ack after its write: nothing torn or lost
//   split        the writeAtomic page reaches the device as four 4 KiB commands: torn
//   early ack    the writeAtomic page's ack reaches the device before the page: lost
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stamp, stampPayload } from '../crash/stamp.mjs';
import {
  ACK_MAGIC,
  ATOMIC_ID,
  CRASH_PAGE,
  PAGEFILE_ID,
  PAGEFILE_TRAILER,
  PLAIN_ID,
  PLAIN_PAGE,
  START_ID,
} from './crash-plan.mjs';
import { replayCrashStates } from './crash-states.mjs';

const BLOCK = 4096;
const MiB = 1024 * 1024;
const DEVICE = { atomicBytes: 16 * 1024, boundaryBytes: 0, blockSize: BLOCK };

/** A dm-log-writes log of `commands` ([{ offset, data }]), written to `file`. */
function writeLog(file, commands) {
  const parts = [];
  const sector = () => Buffer.alloc(BLOCK);
  const superBlock = sector();
  superBlock.writeBigUInt64LE(0x6a736677736872n, 0);
  superBlock.writeBigUInt64LE(1n, 8);
  superBlock.writeBigUInt64LE(BigInt(commands.length), 16);
  superBlock.writeUInt32LE(BLOCK, 24);
  parts.push(superBlock);
  for (const { offset, data } of commands) {
    const header = sector();
    header.writeBigUInt64LE(BigInt(offset / BLOCK), 0);
    header.writeBigUInt64LE(BigInt(data.length / BLOCK), 8);
    header.writeBigUInt64LE(BigInt(data.length), 24);
    parts.push(header, data);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

const ack = (seq, id, version) => {
  const data = Buffer.alloc(BLOCK, 0xee);
  ACK_MAGIC.copy(data, 0);
  data.writeUInt32LE(id, 8);
  data.writeUInt32LE(version, 12);
  data.writeUInt32LE(seq, 16);
  return { offset: 8 * MiB + seq * BLOCK, data };
};
const pageFilePage = (v) => {
  const data = Buffer.alloc(CRASH_PAGE, 0x11);
  stampPayload(PAGEFILE_ID, v, CRASH_PAGE, CRASH_PAGE - PAGEFILE_TRAILER).copy(data);
  return { offset: 1 * MiB, data };
};
const atomicPage = (v) => ({ offset: 2 * MiB, data: stamp(Buffer.alloc(CRASH_PAGE), ATOMIC_ID, v) });
const plainPage = (v) => ({ offset: 4 * MiB, data: stamp(Buffer.alloc(PLAIN_PAGE), PLAIN_ID, v) });
const split = ({ offset, data }) =>
  Array.from({ length: data.length / BLOCK }, (_, i) => ({
    offset: offset + i * BLOCK,
    data: data.subarray(i * BLOCK, (i + 1) * BLOCK),
  }));

function scenario(atomicWrite) {
  return [
    pageFilePage(0),
    atomicPage(0),
    plainPage(0),
    ack(0, START_ID, 0),
    pageFilePage(1),
    ack(1, PAGEFILE_ID, 1),
    ...atomicWrite,
    plainPage(1),
    ack(3, PLAIN_ID, 1),
  ];
}

/** Runs the controls; returns [{ name, ok, got }]. */
export function crashCheckerControls() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untorn-hwlab-controls-'));
  try {
    const run = (name, commands, judge) => {
      const file = path.join(dir, `${name}.log`);
      writeLog(file, commands);
      const r = replayCrashStates(file, DEVICE, { pages: 1, rounds: 1 });
      return { name, ok: judge(r), got: { modes: r.modes, errors: r.errors, finalOk: r.finalOk } };
    };
    const clean = (m) => m.torn === 0 && m.lost === 0 && m.moved === 0 && m.checks > 0;
    return [
      run(
        'whole',
        scenario([atomicPage(1), ack(2, ATOMIC_ID, 1)]),
        (r) =>
          r.errors.length === 0 &&
          r.finalOk &&
          clean(r.modes.pagefile) &&
          clean(r.modes.atomic) &&
          r.modes.plain.torn > 0,
      ),
      run('split', scenario([...split(atomicPage(1)), ack(2, ATOMIC_ID, 1)]), (r) => r.modes.atomic.torn > 0),
      run('early ack', scenario([ack(2, ATOMIC_ID, 1), atomicPage(1)]), (r) => r.modes.atomic.lost > 0),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
