// The device's side of a write: QEMU's blklogwrites driver logs every write
// command the NVMe namespace receives, in order, in dm-log-writes' format (a
// super block, then per command one log sector of header followed by its data):
//
//   super  { u64 magic 0x6a736677736872; u64 version; u64 nr_entries; u32 sectorsize }
//   entry  { u64 sector; u64 nr_sectors; u64 flags; u64 data_len }   (sectors of the log's sector size)
//
// Flags: 1 flush, 2 FUA, 4 discard (no data follows), 8 mark. This module
// reads such logs and decides, for each write untorn made, whether it reached
// the device as ONE write command of its whole size, naturally aligned, within
// the device's atomic unit and boundary: the precondition of the device's
// promise. Anything else (two commands, a partial one) is a split.
import crypto from 'node:crypto';
import fs from 'node:fs';

const MAGIC = 0x6a736677736872n;
export const LOG_FLUSH = 1;
export const LOG_FUA = 2;
export const LOG_DISCARD = 4;

/** Every entry of a log: { index, offset (bytes on the device), length, flags, dataAt (bytes in the log) }. */
export function* readDeviceLog(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return;
    const header = Buffer.alloc(32);
    fs.readSync(fd, header, 0, 32, 0);
    if (header.readBigUInt64LE(0) !== MAGIC) throw new Error(`${file}: not a dm-log-writes log (bad magic)`);
    const sectorSize = header.readUInt32LE(24);
    let at = sectorSize;
    for (let index = 0; at + sectorSize <= size; index++) {
      fs.readSync(fd, header, 0, 32, at);
      const sector = Number(header.readBigUInt64LE(0));
      const sectors = Number(header.readBigUInt64LE(8));
      const flags = Number(header.readBigUInt64LE(16));
      if (sector === 0 && sectors === 0 && flags === 0) break; // past the last entry
      const hasData = (flags & LOG_DISCARD) === 0 && sectors > 0;
      yield {
        index,
        offset: sector * sectorSize,
        length: sectors * sectorSize,
        flags,
        dataAt: at + sectorSize,
        fd,
        sectorSize,
      };
      at += sectorSize + (hasData ? sectors * sectorSize : 0);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Finds each recorded write in the logs. `disks`: [{ name, log, atomicBytes,
 * boundaryBytes }]; `writes`: [{ what, length, keys (hex of the first 16 bytes
 * of each logical block), sha256, copies (disks that must hold it: 2 on raid1) }].
 * Returns per write { ok, why, arrivals: [{ disk, offset, length }], merged (copies that came
 * merged with a neighbouring atomic write in one command) }.
 */
export function checkWholeWrites(disks, writes, blockSize) {
  const wanted = new Map();
  writes.forEach((w, wi) => w.keys.forEach((key, bi) => wanted.set(key, { wi, bi })));
  // hits[wi]: the log entries holding any block of write wi.
  const hits = writes.map(() => new Map());
  for (const disk of disks) {
    for (const entry of readDeviceLog(disk.log)) {
      if (entry.flags & LOG_DISCARD || entry.length === 0) continue;
      const data = Buffer.alloc(entry.length);
      fs.readSync(entry.fd, data, 0, entry.length, entry.dataAt);
      for (let at = 0; at < entry.length; at += blockSize) {
        const hit = wanted.get(data.toString('hex', at, at + 16));
        if (!hit) continue;
        const key = `${disk.name}#${entry.index}`;
        const seen = hits[hit.wi].get(key) ?? {
          disk,
          offset: entry.offset,
          length: entry.length,
          sha256: crypto.createHash('sha256').update(data).digest('hex'),
          blocks: [],
        };
        seen.blocks.push({ inEntry: at / blockSize, inWrite: hit.bi });
        hits[hit.wi].set(key, seen);
      }
    }
  }
  return writes.map((w, wi) => {
    const arrivals = [...hits[wi].values()];
    const summary = arrivals.map((a) => ({ disk: a.disk.name, offset: a.offset, length: a.length }));
    const fail = (why) => ({ ok: false, why, arrivals: summary, merged: 0 });
    if (arrivals.length === 0) return fail('not found in any device log');
    // Whole: every block of the write, in order, inside ONE command. The block
    // layer may merge neighbouring atomic writes into one command no larger
    // than the device's atomic unit; the page is then whole inside it.
    const whole = arrivals.filter((a) => {
      if (a.blocks.length !== w.keys.length) return false;
      const start = a.blocks[0].inEntry - a.blocks[0].inWrite;
      return a.blocks.every((b) => b.inEntry - b.inWrite === start);
    });
    const pieces = arrivals.filter((a) => !whole.includes(a));
    if (pieces.length > 0) {
      const parts = pieces.slice(0, 3).map((p) => `${p.length} B at ${p.offset} on ${p.disk.name}`);
      const more = pieces.length > 3 ? `, ${pieces.length - 3} more` : '';
      return fail(`split: reached the device as ${arrivals.length} write commands (${parts.join(', ')}${more})`);
    }
    if (whole.length !== (w.copies ?? 1)) return fail(`${whole.length} whole copies, ${w.copies ?? 1} expected`);
    let merged = 0;
    for (const a of whole) {
      const at = a.offset + (a.blocks[0].inEntry - a.blocks[0].inWrite) * blockSize;
      if (a.length !== w.length || a.sha256 !== w.sha256) merged++;
      if (at % w.length !== 0) return fail(`at ${at} on ${a.disk.name}: not aligned to its length`);
      if (a.length > a.disk.atomicBytes)
        return fail(`in a ${a.length} B command on ${a.disk.name}: above its atomic unit`);
      const b = a.disk.boundaryBytes;
      if (b && Math.floor(a.offset / b) !== Math.floor((a.offset + a.length - 1) / b)) {
        return fail(`in a command at ${a.offset} on ${a.disk.name}: crosses the ${b} B atomic boundary`);
      }
    }
    return { ok: true, why: '', arrivals: summary, merged };
  });
}
