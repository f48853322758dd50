// Buffers whose first byte sits on an aligned address, as O_DIRECT wants.
import { constants } from 'node:buffer';
import { binding } from './binding';
import { validateAllocation } from './validate';

/**
 * A zero-filled Buffer of `size` bytes whose address is a multiple of `alignment`.
 * The memory is an ordinary V8 ArrayBuffer with room to spare, so it works
 * where external memory is refused (Electron, future Node) and is released
 * by the garbage collector like any Buffer.
 */
export function allocAligned(size: number, alignment = 4096): Buffer {
  validateAllocation(size, alignment, constants.MAX_LENGTH);
  const memory = new ArrayBuffer(size + alignment - 1);
  const offset = (alignment - (binding.bufferAddress(memory) % alignment)) % alignment;
  return Buffer.from(memory, offset, size);
}
