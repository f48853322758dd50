// The syscall core: plain C++ over Linux, no N-API. Every function returns a
// result >= 0 or -errno, exactly as the kernel reported it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace untorn {

// The fields of the kernel's struct statx that untorn needs, including the
// atomic-write tail that glibc 2.36's struct statx does not have.
struct AtomicStat {
  uint32_t mask;
  uint64_t attributes;
  uint32_t blksize;
  uint32_t mode;
  uint32_t dev_major, dev_minor;
  uint32_t rdev_major, rdev_minor;
  uint32_t dio_mem_align;
  uint32_t dio_offset_align;
  uint32_t atomic_write_unit_min;
  uint32_t atomic_write_unit_max;
  uint32_t atomic_write_segments_max;
  uint32_t atomic_write_unit_max_opt;
};

// Constants newer than the libc headers on Debian 12 (values from the uapi).
constexpr int kRwfDsync = 0x2;
constexpr int kRwfAtomic = 0x40;
constexpr uint32_t kStatxDioAlign = 0x2000;
constexpr uint32_t kStatxWriteAtomic = 0x10000;
constexpr uint64_t kStatxAttrWriteAtomic = 0x400000;

// statx(path) when path is non-null, else statx(fd) through AT_EMPTY_PATH.
int StatAtomic(const char* path, int fd, AtomicStat* out);
// open(2) with O_DIRECT and O_CLOEXEC always added; returns the fd.
int OpenDirect(const char* path, int flags, int mode);
// One iovec, so RWF_ATOMIC sees exactly the caller's range.
int64_t PWrite(int fd, const void* data, size_t length, int64_t position, int rwflags);
int64_t PRead(int fd, void* data, size_t length, int64_t position);
int DataSync(int fd);
int Sync(int fd);
int Close(int fd);
// A non-blocking open-file-description lock on the whole file (F_OFD_SETLK):
// exclusive (F_WRLCK) or shared (F_RDLCK); -EAGAIN when another holds it. It
// conflicts with every other open of the file, in this process or another,
// and ends when this description is closed, or at kNone. Release it with
// kNone before closing: io_uring requests can hold the description a moment
// past close(2), and the lock with it.
enum class LockKind { kNone = 0, kShared = 1, kExclusive = 2 };
int LockFile(int fd, LockKind kind);

}  // namespace untorn
