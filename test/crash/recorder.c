// untorn crash lab: the recorder.
//
// A FUSE filesystem (libfuse3, high-level API) that serves two files:
//
//   /image   the disk image, backed by IMAGE (read and written in place).
//            Attach it to a loop device and every block write of the
//            filesystem above arrives here, in order, as one write; every
//            flush (REQ_PREFLUSH, FUA, fdatasync) arrives as one fsync.
//   /marks   the mark channel: each write(2) to it is recorded verbatim as
//            a mark and otherwise discarded (reads return nothing).
//
// Every write to /image, every fsync of /image and every write to /marks is
// appended to LOG, in the order this single-threaded daemon served them.
// The log format is described in docs/crash-lab.md:
//
//   file header  8 bytes "UNTCLOG1"
//   record       struct rec (32 bytes, little endian) then `len` data bytes
//                for writes and marks (none for flushes)
//
// Usage: recorder IMAGE LOG MOUNTPOINT [fuse options]
// It stays in the foreground, prints "ready" once mounted and serves every
// request on one thread (fuse_loop: the single-threaded loop, as -s gives
// fuse_main): the order of the log is the order of service only then. It
// exits when the mount goes away (fusermount3 -u MOUNTPOINT).
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>  // fuse_parse_cmdline
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { REC_WRITE = 1, REC_FLUSH = 2, REC_MARK = 3 };

struct rec {
  uint32_t type;
  uint32_t datasync;  // fsync's datasync argument (flushes only)
  uint64_t seq;       // 0, 1, 2, ... over all records
  uint64_t offset;    // byte offset in the image (writes)
  uint64_t len;       // data bytes that follow (writes, marks)
};

static int image_fd = -1;
static int log_fd = -1;
static off_t image_size;
static uint64_t seq;
static int log_failed;

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

// A log that cannot be written makes every later request fail with EIO:
// a gap in the log must never pass for a quiet disk.
static int log_record(uint32_t type, uint32_t datasync, uint64_t offset, const void *data, uint64_t len) {
  if (log_failed) return -EIO;
  struct rec r = {type, datasync, seq++, offset, len};
  int rc = write_all(log_fd, &r, sizeof r);
  if (rc == 0 && len > 0) rc = write_all(log_fd, data, len);
  if (rc != 0) {
    log_failed = 1;
    fprintf(stderr, "recorder: log write failed: %s\n", strerror(-rc));
    return -EIO;
  }
  return 0;
}

static int is_image(const char *path) { return strcmp(path, "/image") == 0; }
static int is_marks(const char *path) { return strcmp(path, "/marks") == 0; }

static void *lab_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  // No page cache between the loop device and us: every write and every
  // read is a request, in submission order.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  cfg->direct_io = 1;
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  return NULL;
}

static int lab_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else if (is_image(path)) {
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = image_size;
    st->st_blksize = 4096;
    st->st_blocks = image_size / 512;
  } else if (is_marks(path)) {
    st->st_mode = S_IFREG | 0666;
    st->st_nlink = 1;
  } else {
    return -ENOENT;
  }
  return 0;
}

static int lab_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                       enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "image", NULL, 0, 0);
  fill(buf, "marks", NULL, 0, 0);
  return 0;
}

static int lab_open(const char *path, struct fuse_file_info *fi) {
  if (!is_image(path) && !is_marks(path)) return -ENOENT;
  fi->direct_io = 1;
  fi->keep_cache = 0;
  return 0;
}

static int lab_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  if (is_marks(path)) return 0;
  if (!is_image(path)) return -ENOENT;
  if (off >= image_size) return 0;
  if ((off_t)size > image_size - off) size = (size_t)(image_size - off);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(image_fd, buf + done, size - done, off + (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) {
      memset(buf + done, 0, size - done);  // a hole at the end of a sparse image
      break;
    }
    done += (size_t)n;
  }
  return (int)size;
}

static int lab_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  if (is_marks(path)) {
    int rc = log_record(REC_MARK, 0, 0, buf, size);
    return rc < 0 ? rc : (int)size;
  }
  if (!is_image(path)) return -ENOENT;
  if (off < 0 || off + (off_t)size > image_size) return -ENOSPC;
  // Logged first: a write the log does not have must not reach the image.
  int rc = log_record(REC_WRITE, 0, (uint64_t)off, buf, size);
  if (rc < 0) return rc;
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(image_fd, buf + done, size - done, off + (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (size_t)n;
  }
  return (int)size;
}

// Without fsync the kernel marks the connection no_fsync on the first ENOSYS
// and never sends another: the flushes would vanish from the log silently.
static int lab_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)fi;
  if (is_marks(path)) return 0;
  if (!is_image(path)) return -ENOENT;
  return log_record(REC_FLUSH, (uint32_t)datasync, 0, NULL, 0);
}

static int lab_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  (void)fi;
  if (is_marks(path)) return 0;
  return is_image(path) && size == image_size ? 0 : -EPERM;
}

static const struct fuse_operations ops = {
    .init = lab_init,
    .getattr = lab_getattr,
    .readdir = lab_readdir,
    .open = lab_open,
    .read = lab_read,
    .write = lab_write,
    .fsync = lab_fsync,
    .truncate = lab_truncate,
};

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IMAGE LOG MOUNTPOINT [fuse options]\n", argv[0]);
    return 2;
  }
  // The lab decides when the recorder stops (fusermount3 -u, after the loop
  // device on /image is gone): a Ctrl-C that reached this process first would
  // turn the loop device's I/O into errors while the filesystem on it is
  // still mounted.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  image_fd = open(argv[1], O_RDWR);
  if (image_fd < 0) {
    fprintf(stderr, "recorder: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  struct stat st;
  if (fstat(image_fd, &st) != 0) return 1;
  image_size = st.st_size;
  log_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (log_fd < 0) {
    fprintf(stderr, "recorder: %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  if (write_all(log_fd, "UNTCLOG1", 8) != 0) return 1;

  // fuse gets: argv[0] MOUNTPOINT [fuse options]
  char **fargv = calloc((size_t)argc, sizeof *fargv);
  int fargc = 0;
  fargv[fargc++] = argv[0];
  for (int i = 3; i < argc; i++) fargv[fargc++] = argv[i];
  struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);
  struct fuse_cmdline_opts opts;
  if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint) {
    fprintf(stderr, "recorder: bad fuse options\n");
    return 2;
  }
  struct fuse *fuse = fuse_new(&args, &ops, sizeof ops, NULL);
  if (!fuse) return 1;
  if (fuse_mount(fuse, opts.mountpoint) != 0) return 1;
  // Served by this one thread, in arrival order (fuse_loop, never fuse_loop_mt).
  printf("ready\n");
  fflush(stdout);
  int rc = fuse_loop(fuse) == 0 ? 0 : 1;
  fuse_unmount(fuse);
  fuse_destroy(fuse);
  if (close(log_fd) != 0) rc = 1;
  return rc;
}
