// The test pages of the journal tests: each names its file, index and
// version in its first 12 bytes, fills the rest with a pattern of the three,
// and carries a CRC32C of the rest in its last 4 bytes (the journal adds no
// checksum to pages: the tests' own content tells a whole page from a torn one).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { crc32c } = require('../../dist/index.js');

/** Page `index` of file `file` at `version`, `size` bytes. */
export function journalPage(size, file, index, version) {
  const b = Buffer.alloc(size, (file * 31 + index * 7 + version * 13 + 1) & 0xff);
  b.writeUInt32LE(file, 0);
  b.writeUInt32LE(index, 4);
  b.writeUInt32LE(version, 8);
  b.writeUInt32LE(crc32c(b.subarray(0, size - 4)), size - 4);
  return b;
}

/** Whether a page read back is whole: its CRC32C matches its content. */
export function isWholePage(b) {
  return b.readUInt32LE(b.length - 4) === crc32c(b.subarray(0, b.length - 4));
}
