#include "atomic_io.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace untorn {

namespace {

// The kernel's struct statx is 256 bytes; the offsets below are the uapi's
// (include/uapi/linux/stat.h). Reading raw bytes keeps us independent of libc.
constexpr size_t kStatxSize = 256;
constexpr uint32_t kStatxBasicStats = 0x7ff;
constexpr int kAtEmptyPath = 0x1000;

template <typename T>
T Field(const unsigned char* raw, size_t offset) {
  T value;
  std::memcpy(&value, raw + offset, sizeof value);
  return value;
}

int64_t Result(int64_t r) { return r < 0 ? -errno : r; }

}  // namespace

int StatAtomic(const char* path, int fd, AtomicStat* out) {
  alignas(8) unsigned char raw[kStatxSize] = {};
  const uint32_t want = kStatxBasicStats | kStatxDioAlign | kStatxWriteAtomic;
  long r = path != nullptr ? syscall(SYS_statx, AT_FDCWD, path, 0, want, raw)
                           : syscall(SYS_statx, fd, "", kAtEmptyPath, want, raw);
  if (r < 0) return -errno;
  out->mask = Field<uint32_t>(raw, 0x00);
  out->blksize = Field<uint32_t>(raw, 0x04);
  out->attributes = Field<uint64_t>(raw, 0x08);
  out->mode = Field<uint16_t>(raw, 0x1C);
  out->rdev_major = Field<uint32_t>(raw, 0x80);
  out->rdev_minor = Field<uint32_t>(raw, 0x84);
  out->dev_major = Field<uint32_t>(raw, 0x88);
  out->dev_minor = Field<uint32_t>(raw, 0x8C);
  out->dio_mem_align = Field<uint32_t>(raw, 0x98);
  out->dio_offset_align = Field<uint32_t>(raw, 0x9C);
  out->atomic_write_unit_min = Field<uint32_t>(raw, 0xA8);
  out->atomic_write_unit_max = Field<uint32_t>(raw, 0xAC);
  out->atomic_write_segments_max = Field<uint32_t>(raw, 0xB0);
  out->atomic_write_unit_max_opt = Field<uint32_t>(raw, 0xB8);
  return 0;
}

int OpenDirect(const char* path, int flags, int mode) {
  int fd;
  do fd = open(path, flags | O_DIRECT | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

int64_t PWrite(int fd, const void* data, size_t length, int64_t position, int rwflags) {
  struct iovec iov = {const_cast<void*>(data), length};
  ssize_t r;
  do r = pwritev2(fd, &iov, 1, position, rwflags);
  while (r < 0 && errno == EINTR);
  return Result(r);
}

int64_t PRead(int fd, void* data, size_t length, int64_t position) {
  struct iovec iov = {data, length};
  ssize_t r;
  do r = preadv2(fd, &iov, 1, position, 0);
  while (r < 0 && errno == EINTR);
  return Result(r);
}

int DataSync(int fd) { return static_cast<int>(Result(fdatasync(fd))); }

int Sync(int fd) { return static_cast<int>(Result(fsync(fd))); }

int LockFile(int fd, LockKind kind) {
  struct flock lock = {};
  lock.l_type = kind == LockKind::kExclusive ? F_WRLCK : kind == LockKind::kShared ? F_RDLCK : F_UNLCK;
  lock.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file, however it grows
  int r = fcntl(fd, F_OFD_SETLK, &lock);
  // POSIX lets a refused lock be EACCES or EAGAIN; say one thing.
  return r < 0 ? (errno == EACCES ? -EAGAIN : -errno) : 0;
}

// close(2) is not retried on EINTR: on Linux the fd is gone either way.
int Close(int fd) { return static_cast<int>(Result(close(fd))); }

}  // namespace untorn
