// What the crash writer (guest) and the crash-state checker (host) agree on:
// page sizes, how many pages and versions, the stamp ids of each file and the
// ack marker's layout (4 KiB: magic, u32 id, u32 version, u32 sequence).
export const CRASH_PAGE = 16 * 1024;
// Larger than the device's 16 KiB atomic unit: the control may tear.
export const PLAIN_PAGE = 64 * 1024;
export const PAGES = 8;
export const ROUNDS = 3;
export const PAGEFILE_ID = 1000;
export const ATOMIC_ID = 2000;
export const PLAIN_ID = 3000;
export const START_ID = 0xffffffff;
export const ACK_MAGIC = Buffer.from('UNTACK01', 'latin1');

/** The mode a stamp id belongs to. */
export function modeOf(id) {
  if (id >= PLAIN_ID && id < PLAIN_ID + PAGES) return 'plain';
  if (id >= ATOMIC_ID && id < ATOMIC_ID + PAGES) return 'atomic';
  if (id >= PAGEFILE_ID && id < PAGEFILE_ID + PAGES) return 'pagefile';
  return null;
}
// A page file page ends in its 32-byte trailer (docs/page-file.md): the stamp covers the payload.
export const PAGEFILE_TRAILER = 32;
