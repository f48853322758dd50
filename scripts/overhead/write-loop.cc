/*
 * write-loop: the C++ references for scripts/bench-overhead.mjs.
 *
 *   write-loop FILE --mode atomic|plain --engine threads|uring --depth N --seconds S
 *              [--batch B] [--wait enter|eventfd] [--page-size 16384] [--pages P]
 *
 * Writes whole pages of FILE (opened O_RDWR|O_DIRECT), each one pwritev2-
 * equivalent write with RWF_ATOMIC or none, no fsync unless --batch, for S
 * seconds, with N writes in flight:
 *   threads  N threads of blocking pwritev2 (depth 1: the main thread alone),
 *            thread t writing pages t, t+N, t+2N, ...
 *   uring    one thread keeping N writes in flight on an io_uring, made by the
 *            same ring layer untorn uses (native/ring.cc), so that against it
 *            untorn's figure shows what the binding and JS add. It waits in
 *            io_uring_enter; with --wait eventfd it waits as untorn must, in
 *            epoll on the ring's eventfd, then reaps, then submits, which
 *            shows what that design costs by itself
 * With --batch B the pages go in batches of B consecutive pages, each batch
 * ended by one fdatasync once its writes have completed: threads split the
 * batch (thread t takes every N-th page of it), uring submits all B at once.
 * scripts/overhead/untorn-loop.mjs does the same through untorn.
 *
 * Prints one JSON line: {"writes":W,"seconds":T,"pagesPerSec":W/T}.
 * A failed or short write ends it with a message and exit code 1; bad usage exits 2.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "ring.h"

namespace {

constexpr int kRwfAtomic = 0x40;  // Debian 12's glibc headers predate RWF_ATOMIC (Linux 6.11)
// The clock is read once every few writes, as untorn-loop.mjs does.
constexpr long kCheckEvery = 8;

struct Config {
  const char* path = nullptr;
  int atomic = -1;
  bool uring = false;
  bool eventfd_wait = false;
  int depth = 1;
  double seconds = 0;
  long batch = 0;
  long page_size = 16384;
  long pages = 4096;
};

const char* argv0 = "write-loop";

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr,
          "%s: %s\nusage: %s FILE --mode atomic|plain --engine threads|uring --depth N --seconds S "
          "[--batch B] [--wait enter|eventfd] [--page-size BYTES] [--pages P]\n",
          argv0, why, argv0);
  exit(2);
}

[[noreturn]] void Fail(const char* what, long page, long long r, const Config& cfg) {
  if (r < 0)
    fprintf(stderr, "%s: %s of page %ld of %s: %s\n", argv0, what, page, cfg.path, strerror(static_cast<int>(-r)));
  else
    fprintf(stderr, "%s: %s of page %ld of %s: %lld of %ld bytes\n", argv0, what, page, cfg.path, r, cfg.page_size);
  exit(1);
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

long ParseLong(const char* name, const char* value, long min) {
  char* end;
  errno = 0;
  long n = strtol(value, &end, 10);
  if (errno != 0 || *end != '\0' || end == value || n < min) {
    fprintf(stderr, "%s: %s must be an integer >= %ld, not '%s'\n", argv0, name, min, value);
    exit(2);
  }
  return n;
}

Config ParseArgs(int argc, char** argv) {
  Config cfg;
  int engine = -1;
  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (arg[0] != '-') {
      if (cfg.path != nullptr) Usage("only one FILE");
      cfg.path = arg;
      continue;
    }
    if (i + 1 >= argc) Usage("an option lacks its value");
    const char* value = argv[++i];
    if (strcmp(arg, "--mode") == 0) {
      if (strcmp(value, "atomic") == 0)
        cfg.atomic = 1;
      else if (strcmp(value, "plain") == 0)
        cfg.atomic = 0;
      else
        Usage("--mode is atomic or plain");
    } else if (strcmp(arg, "--engine") == 0) {
      if (strcmp(value, "threads") == 0)
        engine = 0;
      else if (strcmp(value, "uring") == 0)
        engine = 1;
      else
        Usage("--engine is threads or uring");
    } else if (strcmp(arg, "--wait") == 0) {
      if (strcmp(value, "enter") == 0)
        cfg.eventfd_wait = false;
      else if (strcmp(value, "eventfd") == 0)
        cfg.eventfd_wait = true;
      else
        Usage("--wait is enter or eventfd");
    } else if (strcmp(arg, "--depth") == 0) {
      cfg.depth = static_cast<int>(ParseLong(arg, value, 1));
    } else if (strcmp(arg, "--seconds") == 0) {
      char* end;
      cfg.seconds = strtod(value, &end);
      if (*end != '\0' || !(cfg.seconds > 0)) Usage("--seconds must be a number > 0");
    } else if (strcmp(arg, "--batch") == 0) {
      cfg.batch = ParseLong(arg, value, 1);
    } else if (strcmp(arg, "--page-size") == 0) {
      cfg.page_size = ParseLong(arg, value, 512);
    } else if (strcmp(arg, "--pages") == 0) {
      cfg.pages = ParseLong(arg, value, 1);
    } else {
      Usage("unknown option");
    }
  }
  if (cfg.path == nullptr) Usage("FILE is missing");
  if (cfg.atomic < 0) Usage("--mode is missing");
  if (engine < 0) Usage("--engine is missing");
  if (cfg.seconds <= 0) Usage("--seconds is missing");
  if (cfg.depth > 1024) Usage("--depth is at most 1024");
  if (cfg.pages < cfg.depth || cfg.pages < cfg.batch) Usage("--pages must be at least --depth and --batch");
  cfg.uring = engine == 1;
  return cfg;
}

void* PageBuffer(const Config& cfg, int seed) {
  void* buf;
  if (posix_memalign(&buf, 4096, static_cast<size_t>(cfg.page_size)) != 0) {
    fprintf(stderr, "%s: out of memory\n", argv0);
    exit(1);
  }
  memset(buf, 'a' + seed % 26, static_cast<size_t>(cfg.page_size));
  return buf;
}

void WritePage(int fd, const Config& cfg, void* buf, long page) {
  iovec iov = {buf, static_cast<size_t>(cfg.page_size)};
  ssize_t n;
  do n = pwritev2(fd, &iov, 1, static_cast<off_t>(page) * cfg.page_size, cfg.atomic ? kRwfAtomic : 0);
  while (n < 0 && errno == EINTR);
  if (n != cfg.page_size) Fail("pwritev2", page, n < 0 ? -errno : n, cfg);
}

// ---------------------------------------------------------------------------
// threads

struct Shared {
  int fd;
  const Config* cfg;
  double deadline;
  pthread_barrier_t barrier;
  long first = 0;     // the current batch's first page
  bool stop = false;  // set by thread 0 between batches
};

struct Worker {
  pthread_t thread;
  int index;
  Shared* shared;
  long long writes = 0;
};

void* ThreadLoop(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  Shared& s = *w->shared;
  const Config& cfg = *s.cfg;
  void* buf = PageBuffer(cfg, w->index);
  if (cfg.batch == 0) {
    long page = w->index;
    for (;;) {
      WritePage(s.fd, cfg, buf, page);
      w->writes++;
      page += cfg.depth;
      if (page >= cfg.pages) page = w->index;
      if (w->writes % kCheckEvery == 0 && Now() >= s.deadline) break;
    }
  } else {
    for (;;) {
      for (long i = w->index; i < cfg.batch; i += cfg.depth) {
        WritePage(s.fd, cfg, buf, (s.first + i) % cfg.pages);
        w->writes++;
      }
      pthread_barrier_wait(&s.barrier);
      if (w->index == 0) {
        if (fdatasync(s.fd) != 0) Fail("fdatasync", s.first, -errno, cfg);
        s.first = (s.first + cfg.batch) % cfg.pages;
        s.stop = Now() >= s.deadline;
      }
      pthread_barrier_wait(&s.barrier);
      if (s.stop) break;
    }
  }
  free(buf);
  return nullptr;
}

long long RunThreads(int fd, const Config& cfg, double deadline) {
  Shared shared;
  shared.fd = fd;
  shared.cfg = &cfg;
  shared.deadline = deadline;
  pthread_barrier_init(&shared.barrier, nullptr, static_cast<unsigned>(cfg.depth));
  std::vector<Worker> workers(static_cast<size_t>(cfg.depth));
  for (int t = 0; t < cfg.depth; t++) workers[t].index = t, workers[t].shared = &shared;
  if (cfg.depth == 1) {
    ThreadLoop(&workers[0]);  // one write at a time, no thread hand-off
  } else {
    for (auto& w : workers) pthread_create(&w.thread, nullptr, ThreadLoop, &w);
    for (auto& w : workers) pthread_join(w.thread, nullptr);
  }
  long long writes = 0;
  for (auto& w : workers) writes += w.writes;
  return writes;
}

// ---------------------------------------------------------------------------
// uring

long long RunUring(int fd, const Config& cfg, double deadline) {
  untorn::Ring ring;
  int r = ring.Open(256);
  if (r < 0) Fail("io_uring_setup", 0, r, cfg);
  const int rwflags = cfg.atomic ? kRwfAtomic : 0;
  const long slots = cfg.batch > 0 ? cfg.batch : cfg.depth;
  std::vector<void*> bufs;
  for (long i = 0; i < slots; i++) bufs.push_back(PageBuffer(cfg, static_cast<int>(i)));
  std::vector<long> page_of(static_cast<size_t>(slots));
  constexpr uint64_t kSync = ~0ull;
  auto submit = [&](long slot, long page) {
    page_of[slot] = page;
    untorn::PrepWrite(ring.NextSqe(static_cast<uint64_t>(slot)), fd, bufs[slot], static_cast<size_t>(cfg.page_size),
                      static_cast<int64_t>(page) * cfg.page_size, rwflags);
  };
  auto check = [&](uint64_t slot, int32_t res) {
    if (slot == kSync) {
      if (res < 0) Fail("fdatasync", 0, res, cfg);
    } else if (res != cfg.page_size) {
      Fail("write", page_of[slot], res, cfg);
    }
  };
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event watch = {};
  watch.events = EPOLLIN;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, ring.event_fd(), &watch);
  // Waits for at least one completion: in the kernel, or as untorn does.
  auto wait = [&]() {
    if (!cfg.eventfd_wait) {
      ring.Enter(1);
      return;
    }
    ring.Enter(0);  // submit what was prepared
    epoll_event ev;
    while (epoll_wait(epoll_fd, &ev, 1, -1) < 0 && errno == EINTR) {
    }
    ring.DrainEventFd();
    ring.Enter(0);  // run the deferred completion work
  };
  long long writes = 0;
  if (cfg.batch == 0) {
    long next = 0;
    for (long s = 0; s < slots; s++) submit(s, next++ % cfg.pages);
    bool stopping = false;
    unsigned in_flight = static_cast<unsigned>(slots);
    while (in_flight > 0) {
      wait();
      ring.Reap([&](uint64_t slot, int32_t res) {
        check(slot, res);
        writes++;
        in_flight--;
        if (writes % kCheckEvery == 0 && !stopping) stopping = Now() >= deadline;
        if (!stopping) submit(static_cast<long>(slot), next++ % cfg.pages), in_flight++;
      });
    }
  } else {
    long first = 0;
    do {
      for (long i = 0; i < cfg.batch; i++) submit(i, (first + i) % cfg.pages);
      for (long done = 0; done < cfg.batch;) {
        wait();
        done += ring.Reap(check);
      }
      untorn::PrepFsync(ring.NextSqe(kSync), fd, true);
      for (unsigned done = 0; done == 0;) {
        wait();
        done = ring.Reap(check);
      }
      writes += cfg.batch;
      first = (first + cfg.batch) % cfg.pages;
    } while (Now() < deadline);
  }
  close(epoll_fd);
  for (void* b : bufs) free(b);
  return writes;
}

}  // namespace

int main(int argc, char** argv) {
  argv0 = argv[0];
  Config cfg = ParseArgs(argc, argv);
  int fd = open(cfg.path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "%s: open %s: %s\n", argv0, cfg.path, strerror(errno));
    return 1;
  }
  const double start = Now();
  long long writes = cfg.uring ? RunUring(fd, cfg, start + cfg.seconds) : RunThreads(fd, cfg, start + cfg.seconds);
  // Until the last write has ended, as untorn-loop.mjs's Promise.all.
  const double elapsed = Now() - start;
  printf("{\"writes\":%lld,\"seconds\":%.6f,\"pagesPerSec\":%.1f}\n", writes, elapsed,
         static_cast<double>(writes) / elapsed);
  close(fd);
  return 0;
}
