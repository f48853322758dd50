// CRC32C (Castagnoli, the checksum of iSCSI, ext4 and btrfs metadata): the
// page checksum of untorn's page files. Plain C++, no N-API.
#pragma once

#include <cstddef>
#include <cstdint>

namespace untorn {

// The CRC32C of `length` bytes continuing from `seed` (the CRC of what came
// before, 0 to start): Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t seed, const void* data, size_t length);

// Which implementation Crc32c uses on this CPU: "sse4.2", "armv8-crc" or "table".
const char* Crc32cImplementation();

}  // namespace untorn
