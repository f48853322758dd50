// untorn crash lab: the page stamps.
//
// Every 512-byte sector of a page version carries its own stamp, so that a
// page read back after a crash can be classified without trusting the code
// under test:
//
//   bytes 0-7     magic "UNTCLPG1"
//   bytes 8-11    page number (u32 LE)
//   bytes 12-15   version (u32 LE; 0 is the version the base image holds)
//   bytes 16-19   sector index within the page (u32 LE)
//   bytes 20-23   file id (u32 LE; 0 where a scenario has one file; the
//                 journal scenarios write several files)
//   bytes 24-511  122 words of a xorshift32 stream seeded by (file, page, version, sector)
//
// A sector is valid only when all 512 bytes are exactly what stamp() makes;
// anything else (zeros, a partial sector, another page's or file's sector) is
// not. The page carries its own check, stronger than a checksum: every byte
// follows from its header, so no code under test (the journal adds no
// checksum to a page) is trusted to say a page is whole.

export const SECTOR = 512;
export const MAGIC = Buffer.from('UNTCLPG1', 'latin1');

function seedOf(page, version, sector, file) {
  let x =
    (Math.imul(page + 1, 0x9e3779b1) ^
      Math.imul(version + 1, 0x85ebca6b) ^
      Math.imul(sector + 1, 0xc2b2ae35) ^
      Math.imul(file, 0x27d4eb2f)) >>>
    0;
  return x === 0 ? 0x6d2b79f5 : x;
}

/** Fills `target` (a whole page, pageSize bytes) with version `version` of page `page` of file `file`. */
export function stamp(target, page, version, file = 0) {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  for (let sector = 0, base = 0; base < target.byteLength; sector++, base += SECTOR) {
    MAGIC.copy(target, base);
    view.setUint32(base + 8, page, true);
    view.setUint32(base + 12, version, true);
    view.setUint32(base + 16, sector, true);
    view.setUint32(base + 20, file, true);
    let x = seedOf(page, version, sector, file);
    for (let off = base + 24; off < base + SECTOR; off += 4) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      view.setUint32(off, x, true);
    }
  }
  return target;
}

/** True when the 512 bytes at `base` start with the stamp magic. */
export function hasMagic(buf, base) {
  return buf.compare(MAGIC, 0, 8, base, base + 8) === 0;
}

/**
 * The stamp of a page file payload (`payloadSize` bytes: a page minus the
 * page file's 32-byte trailer, so the last sector is stamped in part).
 */
export function stampPayload(page, version, pageSize, payloadSize) {
  return stamp(Buffer.alloc(pageSize), page, version).subarray(0, payloadSize);
}

/**
 * What a page file payload read back is: the versions of its valid sectors
 * and how many sectors are no stamp of `page` (the last one checked only as
 * far as the payload goes).
 */
export function readPayload(buf, page) {
  const versions = new Set();
  let bad = 0;
  for (let s = 0, base = 0; base < buf.length; s++, base += SECTOR) {
    const st = readSector(buf, base, page, s, Math.min(SECTOR, buf.length - base));
    if (st) versions.add(st.version);
    else bad++;
  }
  return { versions, bad };
}

/**
 * What the sector at `base` of `buf` is: { page, version } when it is exactly
 * the stamp of that page of file `expectedFile`, a version and sector index
 * `sector` (its first `len` bytes: a page file payload's last sector is
 * partial); null otherwise.
 */
export function readSector(buf, base, expectedPage, sector, len = SECTOR, expectedFile = 0) {
  if (base + len > buf.length || !hasMagic(buf, base)) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const page = view.getUint32(base + 8, true);
  const version = view.getUint32(base + 12, true);
  if (page !== expectedPage || view.getUint32(base + 16, true) !== sector) return null;
  if (view.getUint32(base + 20, true) !== expectedFile) return null;
  let x = seedOf(page, version, sector, expectedFile);
  for (let off = base + 24; off < base + len; off += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (view.getUint32(off, true) !== x) return null;
  }
  return { page, version };
}

/**
 * The stamped sectors in a block write: for each 512-byte sector that carries
 * the magic, its file, page, version and sector index (the checker uses this
 * to tell the test files' data writes from metadata, wherever XFS put them).
 */
export function stampsIn(buf) {
  const out = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let base = 0; base + SECTOR <= buf.length; base += SECTOR) {
    if (!hasMagic(buf, base)) return null;
    out.push({
      page: view.getUint32(base + 8, true),
      version: view.getUint32(base + 12, true),
      sector: view.getUint32(base + 16, true),
      file: view.getUint32(base + 20, true),
    });
  }
  return out;
}
