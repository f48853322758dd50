#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)  // asm/hwcap.h
#endif
#endif

namespace untorn {

namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, reflected

// Slicing-by-8 tables, for CPUs without a CRC32C instruction.
struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (kPolynomial & (0u - (c & 1)));
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

uint32_t TableCrc(uint32_t crc, const unsigned char* p, size_t n) {
  static const Tables tables;
  const auto& t = tables.t;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= crc;  // little-endian: the low four bytes take the running CRC
    crc = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^ t[4][(word >> 24) & 0xFF] ^
          t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^ t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
  }
  for (; n > 0; p++, n--) crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xFF];
  return crc;
}

// Three CRCs at once over adjacent blocks, combined by shifting: the CRC
// instruction takes three cycles but can start one every cycle (Mark Adler's
// crc32c.c). Shifting a CRC over n zero bytes is a linear map; these tables
// apply it a byte of the CRC at a time.
constexpr size_t kLong = 4096;
constexpr size_t kShort = 256;

uint32_t Gf2Times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, mat++)
    if (vec & 1) sum ^= *mat;
  return sum;
}

void Gf2Square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; n++) square[n] = Gf2Times(mat, mat[n]);
}

struct ShiftTable {
  uint32_t t[4][256];
  // `bytes` is a power of two.
  explicit ShiftTable(size_t bytes) {
    uint32_t odd[32], even[32];
    odd[0] = kPolynomial;  // the operator for one zero bit
    for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
    Gf2Square(even, odd);  // two zero bits
    Gf2Square(odd, even);  // four
    const uint32_t* op = odd;
    for (;;) {
      Gf2Square(even, odd);  // one zero byte first, then doubling
      op = even;
      if ((bytes >>= 1) == 0) break;
      Gf2Square(odd, even);
      op = odd;
      if ((bytes >>= 1) == 0) break;
    }
    for (uint32_t n = 0; n < 256; n++)
      for (int k = 0; k < 4; k++) t[k][n] = Gf2Times(op, n << (8 * k));
  }
  uint32_t Shift(uint32_t crc) const {
    return t[0][crc & 0xFF] ^ t[1][(crc >> 8) & 0xFF] ^ t[2][(crc >> 16) & 0xFF] ^ t[3][crc >> 24];
  }
};

const ShiftTable kShiftLong(kLong);
const ShiftTable kShiftShort(kShort);

uint64_t Load(const unsigned char* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

#if defined(__x86_64__)
#define UNTORN_CRC_TARGET __attribute__((target("sse4.2")))
#define UNTORN_CRC_WORD(crc, word) _mm_crc32_u64(crc, word)
#define UNTORN_CRC_BYTE(crc, byte) _mm_crc32_u8(static_cast<uint32_t>(crc), byte)
bool HasHardware() { return __builtin_cpu_supports("sse4.2"); }
constexpr const char* kHardwareName = "sse4.2";
#elif defined(__aarch64__)
#define UNTORN_CRC_TARGET __attribute__((target("+crc")))
#define UNTORN_CRC_WORD(crc, word) __crc32cd(static_cast<uint32_t>(crc), word)
#define UNTORN_CRC_BYTE(crc, byte) __crc32cb(static_cast<uint32_t>(crc), byte)
bool HasHardware() { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
constexpr const char* kHardwareName = "armv8-crc";
#endif

#ifdef UNTORN_CRC_TARGET
// Three blocks of `block` bytes from p, in three lanes, combined into crc0.
UNTORN_CRC_TARGET uint64_t ThreeBlocks(uint64_t crc0, const unsigned char* p, size_t block, const ShiftTable& shift) {
  uint64_t crc1 = 0, crc2 = 0;
  for (const unsigned char* end = p + block; p < end; p += 8) {
    crc0 = UNTORN_CRC_WORD(crc0, Load(p));
    crc1 = UNTORN_CRC_WORD(crc1, Load(p + block));
    crc2 = UNTORN_CRC_WORD(crc2, Load(p + 2 * block));
  }
  crc0 = shift.Shift(static_cast<uint32_t>(crc0)) ^ crc1;
  return shift.Shift(static_cast<uint32_t>(crc0)) ^ crc2;
}

UNTORN_CRC_TARGET uint32_t HardwareCrc(uint32_t crc, const unsigned char* p, size_t n) {
  uint64_t c = crc;
  for (; n >= 3 * kLong; p += 3 * kLong, n -= 3 * kLong) c = ThreeBlocks(c, p, kLong, kShiftLong);
  for (; n >= 3 * kShort; p += 3 * kShort, n -= 3 * kShort) c = ThreeBlocks(c, p, kShort, kShiftShort);
  for (; n >= 8; p += 8, n -= 8) c = UNTORN_CRC_WORD(c, Load(p));
  for (; n > 0; p++, n--) c = UNTORN_CRC_BYTE(c, *p);
  return static_cast<uint32_t>(c);
}
#else
uint32_t HardwareCrc(uint32_t crc, const unsigned char* p, size_t n) { return TableCrc(crc, p, n); }
bool HasHardware() { return false; }
constexpr const char* kHardwareName = "table";
#endif

// Decided once: the CPU does not change under a running process.
const bool kHardware = HasHardware();

}  // namespace

uint32_t Crc32c(uint32_t seed, const void* data, size_t length) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t crc = ~seed;
  crc = kHardware ? HardwareCrc(crc, p, length) : TableCrc(crc, p, length);
  return ~crc;
}

const char* Crc32cImplementation() { return kHardware ? kHardwareName : "table"; }

}  // namespace untorn
