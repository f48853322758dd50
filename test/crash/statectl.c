// untorn crash lab: one replay worker's hands.
//
// Driven by the replayer (test/crash/lab.mjs) over stdin/stdout, one command
// a line, one answer a line ("ok ..." or "err ERRNO message"):
//
//   base PATH       the base image of the scenario to replay from now on
//   restore         make the region [OFFSET, OFFSET+SIZE) of IMAGE equal to
//                   the base image again: copies the base's data extents and
//                   punches holes wherever else the region holds data
//                   (SEEK_DATA/SEEK_HOLE, so only what a state and its mount
//                   touched costs time)
//   mount [ext4]    mount(2) DEVICE on DIR as xfs (nouuid: the workers mount
//                   copies of one filesystem at the same time), or as ext4
//                   (which has no such check; its journal is replayed)
//   umount          umount2(2) DIR (EBUSY retried for 2 s), then wait until nothing holds DEVICE
//                   any more (answers "ok MS", the milliseconds waited)
//   sparsify PATH   punch every all-zero 4 KiB block of PATH (done once per
//                   base image, so restore copies only what holds data)
//
// Usage: statectl IMAGE OFFSET SIZE DEVICE DIR
// SIGINT/SIGTERM are ignored: the replayer decides when to stop. On end of
// input it unmounts DIR if it mounted it and exits.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static int image_fd = -1, base_fd = -1;
static off_t region_off, region_size;
static const char *device, *dir;
static int mounted;
static char *buf;

static void answer_err(int err, const char *what) {
  printf("err %d %s: %s\n", err, what, strerror(err));
  fflush(stdout);
}

static void answer_ok(const char *extra) {
  printf("ok%s%s\n", extra ? " " : "", extra ? extra : "");
  fflush(stdout);
}

static int copy_range(int from, off_t from_off, int to, off_t to_off, off_t len) {
  while (len > 0) {
    size_t n = len > CHUNK ? CHUNK : (size_t)len;
    ssize_t r = pread(from, buf, n, from_off);
    if (r < 0) return -errno;
    if (r == 0) {
      memset(buf, 0, n);
      r = (ssize_t)n;
    }
    ssize_t w = pwrite(to, buf, (size_t)r, to_off);
    if (w < 0) return -errno;
    if (w != r) return -EIO;
    from_off += r, to_off += r, len -= r;
  }
  return 0;
}

// Data extents of fd within [start, end), as pairs in out (returns count).
static int data_extents(int fd, off_t start, off_t end, off_t (*out)[2], int max) {
  int n = 0;
  off_t pos = start;
  while (pos < end && n < max) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0 || d >= end) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0 || h > end) h = end;
    out[n][0] = d, out[n][1] = h, n++;
    pos = h;
  }
  return n;
}

#define MAX_EXT 65536
static off_t (*ext)[2];

static int do_restore(void) {
  if (base_fd < 0) return -EBADF;
  // 1. Wherever the region holds data now, punch it (the base's data is
  //    written back in step 2).
  int n = data_extents(image_fd, region_off, region_off + region_size, ext, MAX_EXT);
  for (int i = 0; i < n; i++) {
    if (fallocate(image_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ext[i][0], ext[i][1] - ext[i][0]) != 0)
      return -errno;
  }
  // 2. The base's data extents.
  n = data_extents(base_fd, 0, region_size, ext, MAX_EXT);
  for (int i = 0; i < n; i++) {
    int rc = copy_range(base_fd, ext[i][0], image_fd, region_off + ext[i][0], ext[i][1] - ext[i][0]);
    if (rc != 0) return rc;
  }
  return 0;
}

static int do_sparsify(const char *path) {
  int fd = open(path, O_RDWR);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return -errno;
  }
  static char zero[4096];
  char block[4096];
  for (off_t pos = 0; pos < st.st_size; pos += 4096) {
    ssize_t r = pread(fd, block, sizeof block, pos);
    if (r <= 0) break;
    if (r == (ssize_t)sizeof block && memcmp(block, zero, sizeof block) == 0) {
      if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos, 4096) != 0) {
        close(fd);
        return -errno;
      }
    }
  }
  close(fd);
  return 0;
}

// umount2 can return while the filesystem still holds the device (another
// reference to the mount, e.g. a copy propagated into another mount
// namespace): a mount then would get the old superblock back, with the
// previous state's contents. The device is free once an O_EXCL open
// succeeds. Returns the milliseconds waited, or -1 after 10 s.
static int wait_released(void) {
  for (int ms = 0; ms < 10000; ms++) {
    int fd = open(device, O_RDONLY | O_EXCL);
    if (fd >= 0) {
      close(fd);
      return ms;
    }
    if (errno != EBUSY) return ms;
    usleep(1000);
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s IMAGE OFFSET SIZE DEVICE DIR\n", argv[0]);
    return 2;
  }
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  image_fd = open(argv[1], O_RDWR);
  if (image_fd < 0) {
    perror(argv[1]);
    return 1;
  }
  region_off = strtoll(argv[2], NULL, 10);
  region_size = strtoll(argv[3], NULL, 10);
  device = argv[4];
  dir = argv[5];
  buf = malloc(CHUNK);
  ext = malloc(sizeof *ext * MAX_EXT);
  if (!buf || !ext) return 1;

  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "base ", 5) == 0) {
      if (base_fd >= 0) close(base_fd);
      base_fd = open(line + 5, O_RDONLY);
      if (base_fd < 0)
        answer_err(errno, "open base");
      else
        answer_ok(NULL);
    } else if (strcmp(line, "restore") == 0) {
      int rc = do_restore();
      if (rc != 0)
        answer_err(-rc, "restore");
      else
        answer_ok(NULL);
    } else if (strcmp(line, "mount") == 0 || strcmp(line, "mount ext4") == 0) {
      int ext4 = strcmp(line, "mount ext4") == 0;
      if (wait_released() < 0)
        answer_err(EBUSY, "device held before mount");
      else if (mount(device, dir, ext4 ? "ext4" : "xfs", 0, ext4 ? NULL : "nouuid") != 0)
        answer_err(errno, "mount");
      else {
        mounted = 1;
        answer_ok(NULL);
      }
    } else if (strcmp(line, "umount") == 0) {
      int busy_ms = 0;
      int rc;
      // EBUSY with no file of the mount open: the last reference of a file
      // closed after io_uring I/O can be dropped by the kernel a moment after
      // close(2) returned (a deferred fput). Waited out for up to 2 s, counted.
      while ((rc = umount2(dir, 0)) != 0 && errno == EBUSY && busy_ms < 2000) {
        usleep(1000);
        busy_ms++;
      }
      if (rc != 0)
        answer_err(errno, "umount");
      else {
        mounted = 0;
        int waited = wait_released();
        if (waited < 0)
          answer_err(EBUSY, "device still held after umount");
        else {
          char extra[32];
          snprintf(extra, sizeof extra, "%d", waited + busy_ms);
          answer_ok(extra);
        }
      }
    } else if (strncmp(line, "sparsify ", 9) == 0) {
      int rc = do_sparsify(line + 9);
      if (rc != 0)
        answer_err(-rc, "sparsify");
      else
        answer_ok(NULL);
    } else {
      answer_err(EINVAL, "unknown command");
    }
  }
  if (mounted && umount2(dir, 0) != 0) umount2(dir, MNT_DETACH);
  return 0;
}
