// CRC32C (Castagnoli), computed natively: SSE4.2 or ARMv8 CRC instructions
// where the CPU has them, a table elsewhere. Page files checksum every page with it.
import { binding } from './binding';
import { validateCrc32cArgs } from './validate';

/**
 * The CRC32C of the view's bytes, continuing from `seed` (the CRC of the
 * bytes before; default 0): crc32c(b, crc32c(a)) equals crc32c(a + b).
 */
export function crc32c(data: ArrayBufferView, seed = 0): number {
  validateCrc32cArgs(data, seed);
  return binding.crc32c(data, seed);
}
