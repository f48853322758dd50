// Crash states on the hardware path, replayed from a namespace's device log
// (QEMU blklogwrites, in the order the device received the commands) with the
// device's promise as the model: a write command within the atomic unit (and
// not crossing the atomic boundary) lands whole or not at all; any other may
// tear at logical-block granularity. The crash writer (crash-writer.mjs) keeps
// one write in flight, so a power cut before command k leaves every earlier
// command whole and command k absent, whole, or (outside the promise) torn in
// any of the block patterns tried here (each prefix, each suffix, alternate
// blocks). Each state is checked as the crash lab checks pages
// (test/crash/stamp.mjs): a page whose sectors are not all one version is
// torn; a whole page older than the last ack marker in that state is lost.
//
// Pages are read at their device location, found by content (version 0 of
// every page is written and synced before the start marker); the filesystem
// is not mounted: overwrites of written, synced blocks on the hardware path
// change no metadata that locates them, and a page version that turns up
// anywhere else is counted ("moved") rather than trusted.
import fs from 'node:fs';
import { hasMagic, readSector, SECTOR } from '../crash/stamp.mjs';
import {
  ACK_MAGIC,
  CRASH_PAGE,
  modeOf,
  PAGEFILE_TRAILER,
  PAGES as PLAN_PAGES,
  PLAIN_PAGE,
  ROUNDS as PLAN_ROUNDS,
  START_ID,
} from './crash-plan.mjs';
import { LOG_DISCARD, readDeviceLog } from './device-log.mjs';

const MODES = ['pagefile', 'atomic', 'plain'];

function entriesOf(logFile) {
  const entries = [];
  for (const e of readDeviceLog(logFile)) {
    if (e.flags & LOG_DISCARD || e.length === 0) continue;
    entries.push({ index: e.index, offset: e.offset, length: e.length, dataAt: e.dataAt });
  }
  return entries;
}

const stampAt = (data, base) =>
  hasMagic(data, base)
    ? { id: data.readUInt32LE(base + 8), version: data.readUInt32LE(base + 12), sector: data.readUInt32LE(base + 16) }
    : null;

const ackAt = (data, base) =>
  data.compare(ACK_MAGIC, 0, 8, base, base + 8) === 0
    ? { id: data.readUInt32LE(base + 8), version: data.readUInt32LE(base + 12) }
    : null;

/**
 * Replays the log of one namespace. `device`: { atomicBytes, boundaryBytes,
 * blockSize }; the plan (pages per way, versions) defaults to crash-plan.mjs's. Returns { states, modes: { [mode]: { checks, torn, lost,
 * moved } }, acks, finalOk, errors }.
 */
export function replayCrashStates(logFile, device, { pages: PAGES = PLAN_PAGES, rounds: ROUNDS = PLAN_ROUNDS } = {}) {
  const { atomicBytes, boundaryBytes = 0, blockSize } = device;
  const entries = entriesOf(logFile);
  const fd = fs.openSync(logFile, 'r');
  const read = (e) => {
    const data = Buffer.alloc(e.length);
    fs.readSync(fd, data, 0, e.length, e.dataAt);
    return data;
  };
  const errors = [];
  try {
    // Pass 1: where each page's sectors live (its version 0), and where the run starts.
    const where = new Map(); // device offset -> { id, sector }
    const pages = new Map(); // id -> { mode, offsets[], length }
    let start = -1;
    for (const [k, e] of entries.entries()) {
      const data = read(e);
      if (ackAt(data, 0)?.id === START_ID) {
        start = k;
        break;
      }
      for (let base = 0; base + SECTOR <= e.length; base += SECTOR) {
        const s = stampAt(data, base);
        if (!s || s.version !== 0 || !modeOf(s.id)) continue;
        const mode = modeOf(s.id);
        const size = mode === 'plain' ? PLAIN_PAGE : CRASH_PAGE;
        if (!pages.has(s.id))
          pages.set(s.id, { mode, offsets: [], length: mode === 'pagefile' ? size - PAGEFILE_TRAILER : size });
        pages.get(s.id).offsets[s.sector] = e.offset + base;
        where.set(e.offset + base, { id: s.id, sector: s.sector });
      }
    }
    if (start < 0) throw new Error('no start marker in the device log (the writer did not finish its setup)');
    for (const mode of MODES) {
      const n = [...pages.values()].filter((p) => p.mode === mode).length;
      if (n !== PAGES) errors.push(`${mode}: ${n} of ${PAGES} pages found in the log`);
    }
    for (const [id, p] of pages)
      if (p.offsets.filter((o) => o !== undefined).length !== Math.ceil(p.length / SECTOR))
        errors.push(`page ${id}: not every sector found`);

    // Pass 2: the image of the tracked sectors, command by command.
    const image = new Map([...where.keys()].map((o) => [o, Buffer.alloc(SECTOR)]));
    const acked = new Map();
    const cache = new Map(); // id -> { torn, version }
    const classify = (id, img) => {
      const p = pages.get(id);
      const buf = Buffer.alloc(p.length);
      p.offsets.forEach((o, s) => img(o).copy(buf, s * SECTOR, 0, Math.min(SECTOR, p.length - s * SECTOR)));
      const versions = new Set();
      let bad = 0;
      for (let s = 0; s * SECTOR < p.length; s++) {
        const st = readSector(buf, s * SECTOR, id, s, Math.min(SECTOR, p.length - s * SECTOR));
        if (st) versions.add(st.version);
        else bad++;
      }
      return { torn: bad > 0 || versions.size !== 1, version: versions.size === 1 ? [...versions][0] : -1 };
    };
    const modes = Object.fromEntries(MODES.map((m) => [m, { checks: 0, torn: 0, lost: 0, moved: 0 }]));
    let states = 0;
    let markers = 0;
    /** One crash state: `ids` are the pages to look at, `img` the sector lookup. */
    const judge = (ids, img, useCache) => {
      states++;
      for (const id of ids) {
        const r = useCache && cache.has(id) ? cache.get(id) : classify(id, img);
        if (useCache) cache.set(id, r);
        const m = modes[pages.get(id).mode];
        m.checks++;
        if (r.torn) m.torn++;
        else if (r.version < (acked.get(id) ?? 0)) m.lost++;
      }
    };
    const base = (o) => image.get(o);
    /** The tracked pages a command touches, with the sectors in each of its blocks. */
    const touched = (e) => {
      const ids = new Set();
      for (let o = e.offset; o < e.offset + e.length; o += SECTOR) if (where.has(o)) ids.add(where.get(o).id);
      return ids;
    };
    const apply = (e, data, mask) => {
      for (let at = 0; at < e.length; at += SECTOR) {
        const o = e.offset + at;
        if (image.has(o) && mask(Math.floor(at / blockSize))) data.copy(image.get(o), 0, at, at + SECTOR);
      }
    };
    for (const [k, e] of entries.entries()) {
      const data = read(e);
      const ids = k > start ? touched(e) : new Set();
      if (k > start) {
        // Any stamp of a later version outside the tracked sectors: a page written elsewhere.
        for (let at = 0; at + SECTOR <= e.length; at += SECTOR) {
          const s = stampAt(data, at);
          if (s && s.version > 0 && modeOf(s.id) && !where.has(e.offset + at)) modes[modeOf(s.id)].moved++;
        }
        const blocks = e.length / blockSize;
        const promised =
          e.length <= atomicBytes &&
          (!boundaryBytes ||
            Math.floor(e.offset / boundaryBytes) === Math.floor((e.offset + e.length - 1) / boundaryBytes));
        if (ids.size > 0 && !promised && blocks > 1) {
          // Torn in flight: prefixes, suffixes, alternate blocks.
          const masks = [];
          for (let i = 1; i < blocks; i++)
            masks.push(
              (b) => b < i,
              (b) => b >= i,
            );
          masks.push(
            (b) => b % 2 === 0,
            (b) => b % 2 === 1,
          );
          for (const mask of masks) {
            const partial = new Map();
            for (let at = 0; at < e.length; at += SECTOR) {
              const o = e.offset + at;
              if (image.has(o) && mask(Math.floor(at / blockSize))) partial.set(o, data.subarray(at, at + SECTOR));
            }
            judge(ids, (o) => partial.get(o) ?? image.get(o), false);
          }
        }
      }
      apply(e, data, () => true);
      for (const id of ids) cache.delete(id);
      const newAcks = [];
      for (let at = 0; at + 16 <= e.length; at += blockSize) {
        const a = ackAt(data, at);
        if (a && a.id !== START_ID && k > start) {
          acked.set(a.id, Math.max(acked.get(a.id) ?? 0, a.version));
          newAcks.push(a.id);
          markers++;
        }
      }
      // The state a power cut right after this command leaves: the pages it
      // changed, and the pages a new ack now vouches for.
      if (k >= start && (ids.size > 0 || newAcks.length > 0)) judge(new Set([...ids, ...newAcks]), base, true);
    }
    // The replay itself, checked: the last state holds every page's last version, and every ack.
    const expectedAcks = 3 * PAGES * ROUNDS;
    const final = [...pages.keys()].map((id) => classify(id, base));
    const finalOk = final.every((r) => !r.torn && r.version === ROUNDS) && markers === expectedAcks;
    if (!finalOk)
      errors.push(`the last state is not every page at version ${ROUNDS} with ${expectedAcks} acks (${markers} found)`);
    return { states, modes, acks: markers, expectedAcks, finalOk, errors };
  } finally {
    fs.closeSync(fd);
  }
}
