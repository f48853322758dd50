/*
 * pwrite-loop: the C reference for scripts/bench-overhead.mjs.
 *
 *   pwrite-loop FILE --mode atomic|plain --depth N --seconds S
 *               [--page-size 16384] [--pages P]
 *
 * Writes whole pages of FILE (opened O_RDWR|O_DIRECT) with one
 * pwritev2(fd, 1 iovec, page * pageSize, RWF_ATOMIC or 0) per page, no fsync,
 * for S seconds, with N writes in flight: N threads (depth 1 = the main thread
 * alone), thread t writing pages t, t+N, t+2N, ... and starting again at t
 * past the last page. scripts/overhead/untorn-loop.mjs does the same through
 * untorn, so the two differ only by what untorn adds.
 *
 * Prints one JSON line: {"writes":W,"seconds":T,"pagesPerSec":W/T}.
 * Any failed or short write ends the program with a message and exit code 1;
 * bad usage exits with 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Debian 12's glibc 2.36 headers predate RWF_ATOMIC (Linux 6.11). */
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x40
#endif

/* clock_gettime is a vDSO call (~20 ns), but a write on a RAM-backed device
 * takes only microseconds: look at the clock once every few writes. The
 * untorn worker uses the same interval. */
#define CHECK_EVERY 8

struct config {
    const char *path;
    int atomic;
    int depth;
    double seconds;
    long page_size;
    long pages;
};

struct worker {
    pthread_t thread;
    int fd;
    int index; /* t: writes pages t, t+depth, ... */
    const struct config *cfg;
    double deadline;
    long long writes;
};

static const char *argv0 = "pwrite-loop";

static void usage(const char *why)
{
    fprintf(stderr, "%s: %s\nusage: %s FILE --mode atomic|plain --depth N --seconds S "
                    "[--page-size BYTES] [--pages P]\n", argv0, why, argv0);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_long(const char *name, const char *value, long min)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno != 0 || *end != '\0' || end == value || n < min) {
        fprintf(stderr, "%s: %s must be an integer >= %ld, not '%s'\n", argv0, name, min, value);
        exit(2);
    }
    return n;
}

static double parse_seconds(const char *value)
{
    char *end;
    errno = 0;
    double s = strtod(value, &end);
    if (errno != 0 || *end != '\0' || end == value || !(s > 0)) {
        fprintf(stderr, "%s: --seconds must be a number > 0, not '%s'\n", argv0, value);
        exit(2);
    }
    return s;
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
    *cfg = (struct config){.atomic = -1, .depth = 1, .seconds = 0, .page_size = 16384, .pages = 4096};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            if (cfg->path != NULL) usage("only one FILE");
            cfg->path = arg;
            continue;
        }
        if (i + 1 >= argc) usage("an option lacks its value");
        const char *value = argv[++i];
        if (strcmp(arg, "--mode") == 0) {
            if (strcmp(value, "atomic") == 0) cfg->atomic = 1;
            else if (strcmp(value, "plain") == 0) cfg->atomic = 0;
            else usage("--mode is atomic or plain");
        } else if (strcmp(arg, "--depth") == 0) {
            cfg->depth = (int)parse_long(arg, value, 1);
        } else if (strcmp(arg, "--seconds") == 0) {
            cfg->seconds = parse_seconds(value);
        } else if (strcmp(arg, "--page-size") == 0) {
            cfg->page_size = parse_long(arg, value, 512);
        } else if (strcmp(arg, "--pages") == 0) {
            cfg->pages = parse_long(arg, value, 1);
        } else {
            usage("unknown option");
        }
    }
    if (cfg->path == NULL) usage("FILE is missing");
    if (cfg->atomic < 0) usage("--mode is missing");
    if (cfg->seconds <= 0) usage("--seconds is missing");
    if (cfg->depth > 1024) usage("--depth is at most 1024");
    if (cfg->pages < cfg->depth) usage("--pages must be at least --depth");
}

/* One writer: its own page-aligned buffer, its own stride of pages. */
static void *write_loop(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    const int rwflags = cfg->atomic ? RWF_ATOMIC : 0;
    void *buf;
    int rc = posix_memalign(&buf, 4096, (size_t)cfg->page_size);
    if (rc != 0) {
        fprintf(stderr, "%s: posix_memalign: %s\n", argv0, strerror(rc));
        exit(1);
    }
    memset(buf, 'a' + w->index % 26, (size_t)cfg->page_size);
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)cfg->page_size};

    long page = w->index;
    long long writes = 0;
    for (;;) {
        ssize_t n = pwritev2(w->fd, &iov, 1, (off_t)page * cfg->page_size, rwflags);
        if (n != cfg->page_size) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                fprintf(stderr, "%s: pwritev2(%s) of page %ld of %s: %s\n", argv0,
                        cfg->atomic ? "RWF_ATOMIC" : "0", page, cfg->path, strerror(errno));
            else
                fprintf(stderr, "%s: pwritev2 of page %ld of %s wrote %zd of %ld bytes\n", argv0,
                        page, cfg->path, n, cfg->page_size);
            exit(1);
        }
        writes++;
        page += cfg->depth;
        if (page >= cfg->pages) page = w->index;
        if (writes % CHECK_EVERY == 0 && now() >= w->deadline) break;
    }
    w->writes = writes;
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    struct config cfg;
    argv0 = argv[0];
    parse_args(argc, argv, &cfg);

    int fd = open(cfg.path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: open %s: %s\n", argv0, cfg.path, strerror(errno));
        return 1;
    }

    struct worker *workers = calloc((size_t)cfg.depth, sizeof *workers);
    if (workers == NULL) {
        fprintf(stderr, "%s: out of memory\n", argv0);
        return 1;
    }

    const double start = now();
    const double deadline = start + cfg.seconds;
    for (int t = 0; t < cfg.depth; t++)
        workers[t] = (struct worker){.fd = fd, .index = t, .cfg = &cfg, .deadline = deadline};

    if (cfg.depth == 1) {
        write_loop(&workers[0]); /* one write at a time, no thread hand-off */
    } else {
        for (int t = 0; t < cfg.depth; t++) {
            int rc = pthread_create(&workers[t].thread, NULL, write_loop, &workers[t]);
            if (rc != 0) {
                fprintf(stderr, "%s: pthread_create: %s\n", argv0, strerror(rc));
                return 1;
            }
        }
        for (int t = 0; t < cfg.depth; t++) pthread_join(workers[t].thread, NULL);
    }
    /* Until the last writer has stopped, as untorn-loop.mjs's Promise.all. */
    const double elapsed = now() - start;

    long long writes = 0;
    for (int t = 0; t < cfg.depth; t++) writes += workers[t].writes;
    printf("{\"writes\":%lld,\"seconds\":%.6f,\"pagesPerSec\":%.1f}\n", writes, elapsed, (double)writes / elapsed);

    free(workers);
    close(fd);
    return 0;
}
