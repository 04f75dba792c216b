/*
 * The native companion of `cowsim bench`: runs a workload program (the text of
 * programToText(), src/workloads/program.ts) on the host kernel, step by step, so that the
 * simulator and the kernel do the same work and their times compare.
 *
 *   cc -O2 -pthread -o workload bench/kernel/workload.c
 *   ./workload [--steps] [--timeout SECONDS] [FILE]      (the program on FILE or stdin)
 *
 * Processes are real: `fork` forks, and every process walks the one step list and runs only
 * its own steps, in order. A turn counter in a MAP_SHARED page created before any fork
 * serialises them (spin a little, then futex wait/wake). A supervisor (the process started)
 * forks process 0, runs nothing itself but the steps of processes already gone (ESRCH), and
 * waits for an exiting process to be dead (pidfd) before the next step begins, so exit's
 * teardown (exit_mmap()) is timed in its step and never overlaps the next.
 *
 * Regions are mapped at the simulator's addresses (regionAddresses(), execute.ts) with
 * MAP_FIXED_NOREPLACE; a store or load touches only a region this process mapped there, and a
 * fault on one (mprotect, MADV_DONTFORK, a region gone) ends the step with EFAULT as in the
 * simulator. Steps that fail with an errno are counted by "op:ERRNO" and the program goes on.
 *
 * Pins use io_uring fixed buffers (io_uring_register(IORING_REGISTER_BUFFERS): FOLL_WRITE |
 * FOLL_LONGTERM, as ibv_reg_mr() pins), by raw syscalls; dma_read is an IORING_OP_WRITE_FIXED
 * of the pinned pages into a memfd, compared with what the owner maps. userfaultfd WP faults
 * are resolved by a handler thread per uffd (save the page, UFFDIO_WRITEPROTECT off).
 *
 * Output: one JSON line on stdout: the seconds of the steps (CLOCK_MONOTONIC from the first
 * step to the last, parse excluded), per op its count, pages and seconds, errors by op:ERRNO,
 * notes on what the host does not support, and with --steps every step's seconds.
 * Exit codes: 0 ran (step errors are counted, not fatal), 2 usage or parse error
 * ("<file>:<line>: message" on stderr), 3 runtime error (a JSON {"error"} line on stdout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What an older libc or uapi header lacks (values from Linux 6.12). */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#include "uffd_uapi.h"
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef SYS_memfd_create
#define SYS_memfd_create 319
#endif

#define PS 4096UL
#define HPAGE (2UL << 20)
/* the simulator's REGION_BASE (execute.ts); regions stay below REGION_BASE + REGION_SPAN */
#define REGION_BASE 0x7e0000000000UL
#define REGION_SPAN (1UL << 40)
#define MAX_PROCS 4096
#define MAX_VALUE (1ULL << 53)
#define MAX_PROGRAM (256UL << 20)
#define EXIT_PARSE 2
#define EXIT_RUNTIME 3

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* ---- the program ---- */

enum op {
  OP_MMAP, OP_MUNMAP, OP_WRITE, OP_READ, OP_FORK, OP_EXIT, OP_MADVISE, OP_MPROTECT, OP_PIN, OP_UNPIN,
  OP_DMA_READ, OP_VMSPLICE, OP_PIPE_READ, OP_RECLAIM, OP_UFFD_OPEN, OP_UFFD_REGISTER, OP_UFFD_WP,
  OP_UFFD_MOVE, OP_WRITE_WP, NOPS
};
static const char *const OP_NAMES[NOPS] = {
  "mmap", "munmap", "write", "read", "fork", "exit", "madvise", "mprotect", "pin", "unpin",
  "dma_read", "vmsplice", "pipe_read", "reclaim", "uffd_open", "uffd_register", "uffd_wp",
  "uffd_move", "write_wp",
};

enum advice { ADV_DONTNEED, ADV_PAGEOUT, ADV_COLLAPSE, ADV_POPULATE_WRITE, ADV_DONTFORK, NADVICE };
static const char *const ADVICE_NAMES[NADVICE] = { "dontneed", "pageout", "collapse", "populate_write", "dontfork" };
static const int ADVICE_VALUES[NADVICE] = { MADV_DONTNEED, MADV_PAGEOUT, MADV_COLLAPSE, MADV_POPULATE_WRITE, MADV_DONTFORK };

/* The owner of a step whose process is gone: the supervisor, which fails it with ESRCH. */
#define SUPERVISOR (-1)

struct step {
  uint8_t op;
  int32_t owner;   /* the process that runs it, or SUPERVISOR */
  int32_t proc;    /* proc= (or the proc of the pin, pipe, uffd it names) */
  int32_t region;  /* region=, src= */
  int32_t region2; /* dst= */
  uint64_t first, count, stride; /* a page set or a run; count also pages= of mmap / reclaim */
  uint64_t first2;               /* dstFirst= */
  uint32_t *list;                /* a page list (count entries), or NULL */
  uint64_t value;
  int32_t child, pin, pipe, uffd;
  uint8_t advice, write, writable, on, shared, kind_rdma, missing, wp, move;
  int8_t huge; /* -1 unset, 0 MADV_NOHUGEPAGE, 1 MADV_HUGEPAGE */
};

static struct step *steps;
static uint32_t nsteps;
static int32_t nprocs;
static uint64_t *region_pages, *region_addr;
static int32_t nregions;
static int32_t npins, npipes, nuffds;
static const char *input_name = "<stdin>";

static _Noreturn void parse_error(unsigned line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static _Noreturn void parse_error(unsigned line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%u: ", input_name, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(EXIT_PARSE);
}

/* An unsigned decimal in [0, max], or a parse error. */
static uint64_t number(unsigned line, const char *key, const char *s, uint64_t max) {
  if (!*s) parse_error(line, "%s= is empty", key);
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') parse_error(line, "%s=%s is not an unsigned decimal", key, s);
    if (v > (max - (uint64_t)(*p - '0')) / 10) parse_error(line, "%s=%s is above %llu", key, s, (unsigned long long)max);
    v = v * 10 + (uint64_t)(*p - '0');
  }
  return v;
}

struct field { const char *key; const char *value; };
#define MAX_FIELDS 16

/* The value of `key` among the fields (marked used), or NULL. */
static const char *get(struct field *f, int n, const char *key, unsigned *used) {
  for (int i = 0; i < n; i++) if (!strcmp(f[i].key, key)) { *used |= 1u << i; return f[i].value; }
  return NULL;
}
static const char *need(struct field *f, int n, const char *key, unsigned *used, unsigned line, const char *op) {
  const char *v = get(f, n, key, used);
  if (!v) parse_error(line, "%s needs %s=", op, key);
  return v;
}

/* Whether a comma list holds `word` (and only known words). */
static unsigned words(unsigned line, const char *key, const char *s, const char *const *known, int nknown) {
  unsigned mask = 0;
  char buf[128];
  if (strlen(s) >= sizeof buf) parse_error(line, "%s= is too long", key);
  strcpy(buf, s);
  for (char *save = 0, *w = strtok_r(buf, ",", &save); w; w = strtok_r(0, ",", &save)) {
    int i = 0;
    while (i < nknown && strcmp(known[i], w)) i++;
    if (i == nknown) parse_error(line, "%s=%s: unknown \"%s\"", key, s, w);
    mask |= 1u << i;
  }
  return mask;
}

static int32_t region_ref(unsigned line, const char *key, const char *s) {
  uint64_t r = number(line, key, s, INT32_MAX);
  if (r >= (uint64_t)nregions) parse_error(line, "%s=%llu names a region not mapped before", key, (unsigned long long)r);
  return (int32_t)r;
}

/* A run [first, first+count) of pages inside region r. */
static void run_in(unsigned line, struct step *s, int32_t r, uint64_t first, uint64_t count) {
  if (first > region_pages[r] || count > region_pages[r] - first)
    parse_error(line, "pages %llu..%llu are outside region %d (%llu pages)", (unsigned long long)first,
                (unsigned long long)(first + count), r, (unsigned long long)region_pages[r]);
  (void)s;
}

/* A page set (first/count/stride or list) inside the step's region. */
static void page_set(unsigned line, struct step *s, struct field *f, int n, unsigned *used) {
  const char *list = get(f, n, "list", used);
  uint64_t pages = region_pages[s->region];
  if (list) {
    uint64_t count = 1;
    for (const char *p = list; *p; p++) count += *p == ',';
    if (!*list) count = 0;
    s->list = malloc((count ? count : 1) * sizeof *s->list);
    if (!s->list) parse_error(line, "out of memory");
    char *end = (char *)list;
    for (uint64_t i = 0; i < count; i++) {
      const char *start = end;
      char *comma = strchr(start, ',');
      if (comma) *comma = 0;
      uint64_t p = number(line, "list", start, UINT32_MAX);
      if (p >= pages) parse_error(line, "page %llu is outside region %d (%llu pages)", (unsigned long long)p, s->region, (unsigned long long)pages);
      s->list[i] = (uint32_t)p;
      end = comma ? comma + 1 : (char *)start + strlen(start);
    }
    s->count = count;
    if (get(f, n, "first", used) || get(f, n, "count", used) || get(f, n, "stride", used))
      parse_error(line, "a page set is list= or first=/count=/stride=, not both");
    return;
  }
  s->first = number(line, "first", need(f, n, "first", used, line, OP_NAMES[s->op]), UINT32_MAX);
  s->count = number(line, "count", need(f, n, "count", used, line, OP_NAMES[s->op]), UINT32_MAX);
  const char *stride = get(f, n, "stride", used);
  s->stride = stride ? number(line, "stride", stride, UINT32_MAX) : 1;
  if (s->count && (s->first >= pages || s->stride * (s->count - 1) > pages - 1 - s->first))
    parse_error(line, "pages first=%llu count=%llu stride=%llu run outside region %d (%llu pages)", (unsigned long long)s->first,
                (unsigned long long)s->count, (unsigned long long)s->stride, s->region, (unsigned long long)pages);
}

/* The process that runs a step of `proc`: itself while alive, else the supervisor (ESRCH). */
static int32_t alive_or_supervisor(const uint8_t *alive, int32_t proc) { return proc >= 0 && alive[proc] ? proc : SUPERVISOR; }

static void parse(char *text) {
  size_t cap = 1024;
  steps = calloc(cap, sizeof *steps);
  region_pages = calloc(1, sizeof *region_pages);
  region_addr = calloc(1, sizeof *region_addr);
  int32_t *pin_proc = NULL, *pipe_proc = NULL, *uffd_proc = NULL;
  uint8_t *alive = NULL, *forked = NULL;
  uint64_t next_addr = REGION_BASE;
  unsigned line = 0;
  nprocs = -1;
  for (char *l = text, *nl; l && *l; l = nl) {
    nl = strchr(l, '\n');
    if (nl) *nl++ = 0;
    line++;
    size_t len = strlen(l);
    if (len && l[len - 1] == '\r') l[--len] = 0;
    if (!len || l[0] == '#') continue;
    char *tok[MAX_FIELDS + 1];
    int ntok = 0;
    for (char *s2 = 0, *t = strtok_r(l, " \t", &s2); t; t = strtok_r(0, " \t", &s2)) {
      if (ntok == MAX_FIELDS + 1) parse_error(line, "too many fields");
      tok[ntok++] = t;
    }
    if (!ntok) continue;
    if (!strcmp(tok[0], "processes")) {
      if (ntok != 2) parse_error(line, "processes takes one number");
      if (nprocs >= 0) parse_error(line, "processes is given twice");
      nprocs = (int32_t)number(line, "processes", tok[1], MAX_PROCS);
      if (nprocs < 1) parse_error(line, "processes must be at least 1");
      alive = calloc(nprocs, 1);
      forked = calloc(nprocs, 1);
      if (!alive || !forked) parse_error(line, "out of memory");
      alive[0] = 1;
      continue;
    }
    if (nprocs < 0) parse_error(line, "the program must begin with \"processes N\"");
    int op = 0;
    while (op < NOPS && strcmp(OP_NAMES[op], tok[0])) op++;
    if (op == NOPS) parse_error(line, "unknown step \"%s\"", tok[0]);
    struct field f[MAX_FIELDS];
    int n = 0;
    for (int i = 1; i < ntok; i++) {
      char *eq = strchr(tok[i], '=');
      if (!eq || eq == tok[i]) parse_error(line, "\"%s\" is not key=value", tok[i]);
      *eq = 0;
      for (int j = 0; j < n; j++) if (!strcmp(f[j].key, tok[i])) parse_error(line, "%s= is given twice", tok[i]);
      f[n].key = tok[i];
      f[n].value = eq + 1;
      n++;
    }
    if (nsteps == UINT32_MAX - 1) parse_error(line, "too many steps");
    if (nsteps == cap) {
      cap *= 2;
      steps = realloc(steps, cap * sizeof *steps);
      if (!steps) parse_error(line, "out of memory");
    }
    struct step *s = &steps[nsteps];
    memset(s, 0, sizeof *s);
    s->op = (uint8_t)op;
    s->huge = -1;
    s->proc = -1;
    unsigned used = 0;
    const char *name = OP_NAMES[op];
#define NEED(key) need(f, n, key, &used, line, name)
#define PROC() do { \
      s->proc = (int32_t)number(line, "proc", NEED("proc"), INT32_MAX); \
      if (s->proc >= nprocs) parse_error(line, "proc=%d is not below processes %d", s->proc, nprocs); \
    } while (0)
#define FLAG(key) ((uint8_t)number(line, key, NEED(key), 1))
    switch (op) {
    case OP_MMAP: {
      PROC();
      int32_t r = (int32_t)number(line, "region", NEED("region"), INT32_MAX);
      if (r != nregions) parse_error(line, "region=%d: regions are numbered in mmap order (expected %d)", r, nregions);
      uint64_t pages = number(line, "pages", NEED("pages"), REGION_SPAN / PS);
      if (!pages) parse_error(line, "pages=0: a region has at least one page");
      uint64_t span = (pages * PS + HPAGE - 1) / HPAGE * HPAGE + HPAGE;
      if (next_addr - REGION_BASE + span > REGION_SPAN) parse_error(line, "the regions need more than %lu GiB of address space", REGION_SPAN >> 30);
      region_pages = realloc(region_pages, (nregions + 1) * sizeof *region_pages);
      region_addr = realloc(region_addr, (nregions + 1) * sizeof *region_addr);
      region_pages[nregions] = pages;
      region_addr[nregions] = next_addr;
      next_addr += span;
      s->region = r;
      s->count = pages;
      nregions++;
      const char *v;
      if ((v = get(f, n, "shared", &used))) s->shared = (uint8_t)number(line, "shared", v, 1);
      if ((v = get(f, n, "huge", &used))) s->huge = (int8_t)number(line, "huge", v, 1);
      break;
    }
    case OP_MUNMAP:
      PROC();
      s->region = region_ref(line, "region", NEED("region"));
      break;
    case OP_WRITE: case OP_READ: case OP_WRITE_WP:
      PROC();
      s->region = region_ref(line, "region", NEED("region"));
      page_set(line, s, f, n, &used);
      if (op != OP_READ) s->value = number(line, "value", NEED("value"), MAX_VALUE);
      if (op == OP_WRITE_WP) {
        s->uffd = (int32_t)number(line, "uffd", NEED("uffd"), INT32_MAX);
        if (s->uffd >= nuffds) parse_error(line, "uffd=%d is not opened before", s->uffd);
      }
      break;
    case OP_FORK:
      PROC();
      s->child = (int32_t)number(line, "child", NEED("child"), INT32_MAX);
      if (s->child >= nprocs) parse_error(line, "child=%d is not below processes %d", s->child, nprocs);
      if (s->child == 0) parse_error(line, "child=0 is the first process");
      if (forked[s->child]) parse_error(line, "child=%d is forked twice", s->child);
      forked[s->child] = 1;
      break;
    case OP_EXIT:
      PROC();
      break;
    case OP_MADVISE: case OP_MPROTECT:
      PROC();
      s->region = region_ref(line, "region", NEED("region"));
      s->first = number(line, "first", NEED("first"), UINT32_MAX);
      s->count = number(line, "count", NEED("count"), UINT32_MAX);
      run_in(line, s, s->region, s->first, s->count);
      if (op == OP_MADVISE) {
        const char *a = NEED("advice");
        int i = 0;
        while (i < NADVICE && strcmp(ADVICE_NAMES[i], a)) i++;
        if (i == NADVICE) parse_error(line, "advice=%s is none of dontneed, pageout, collapse, populate_write, dontfork", a);
        s->advice = (uint8_t)i;
      } else s->write = FLAG("write");
      break;
    case OP_PIN: {
      PROC();
      s->region = region_ref(line, "region", NEED("region"));
      s->first = number(line, "first", NEED("first"), UINT32_MAX);
      s->count = number(line, "count", NEED("count"), UINT32_MAX);
      run_in(line, s, s->region, s->first, s->count);
      s->pin = (int32_t)number(line, "pin", NEED("pin"), INT32_MAX);
      if (s->pin != npins) parse_error(line, "pin=%d: pins are numbered in order (expected %d)", s->pin, npins);
      const char *kind = NEED("kind");
      if (strcmp(kind, "rdma") && strcmp(kind, "io_uring")) parse_error(line, "kind=%s is neither rdma nor io_uring", kind);
      s->kind_rdma = !strcmp(kind, "rdma");
      s->writable = FLAG("writable");
      pin_proc = realloc(pin_proc, (npins + 1) * sizeof *pin_proc);
      pin_proc[npins++] = s->proc;
      break;
    }
    case OP_UNPIN: case OP_DMA_READ:
      s->pin = (int32_t)number(line, "pin", NEED("pin"), INT32_MAX);
      if (s->pin >= npins) parse_error(line, "pin=%d is not taken before", s->pin);
      s->proc = pin_proc[s->pin];
      break;
    case OP_VMSPLICE:
      PROC();
      s->region = region_ref(line, "region", NEED("region"));
      s->first = number(line, "first", NEED("first"), UINT32_MAX);
      s->count = number(line, "count", NEED("count"), UINT32_MAX);
      run_in(line, s, s->region, s->first, s->count);
      s->pipe = (int32_t)number(line, "pipe", NEED("pipe"), INT32_MAX);
      if (s->pipe != npipes) parse_error(line, "pipe=%d: pipes are numbered in order (expected %d)", s->pipe, npipes);
      pipe_proc = realloc(pipe_proc, (npipes + 1) * sizeof *pipe_proc);
      pipe_proc[npipes++] = s->proc;
      break;
    case OP_PIPE_READ:
      s->pipe = (int32_t)number(line, "pipe", NEED("pipe"), INT32_MAX);
      if (s->pipe >= npipes) parse_error(line, "pipe=%d is not spliced into before", s->pipe);
      s->proc = pipe_proc[s->pipe];
      break;
    case OP_RECLAIM:
      s->count = number(line, "pages", NEED("pages"), UINT32_MAX);
      /* reclaim is global in the simulator: the lowest process alive pages out its regions */
      for (int32_t p = 0; p < nprocs; p++) if (alive[p]) { s->proc = p; break; }
      break;
    case OP_UFFD_OPEN: {
      PROC();
      s->uffd = (int32_t)number(line, "uffd", NEED("uffd"), INT32_MAX);
      if (s->uffd != nuffds) parse_error(line, "uffd=%d: userfaultfds are numbered in order (expected %d)", s->uffd, nuffds);
      static const char *const FEATURES[] = { "MOVE", "WP" };
      const char *v = get(f, n, "features", &used);
      unsigned m = v && *v ? words(line, "features", v, FEATURES, 2) : 0;
      s->move = !!(m & 1);
      s->wp = !!(m & 2);
      uffd_proc = realloc(uffd_proc, (nuffds + 1) * sizeof *uffd_proc);
      uffd_proc[nuffds++] = s->proc;
      break;
    }
    case OP_UFFD_REGISTER: case OP_UFFD_WP: case OP_UFFD_MOVE:
      s->uffd = (int32_t)number(line, "uffd", NEED("uffd"), INT32_MAX);
      if (s->uffd >= nuffds) parse_error(line, "uffd=%d is not opened before", s->uffd);
      s->proc = uffd_proc[s->uffd];
      if (op == OP_UFFD_MOVE) {
        s->region = region_ref(line, "src", NEED("src"));
        s->first = number(line, "srcFirst", NEED("srcFirst"), UINT32_MAX);
        s->region2 = region_ref(line, "dst", NEED("dst"));
        s->first2 = number(line, "dstFirst", NEED("dstFirst"), UINT32_MAX);
        s->count = number(line, "count", NEED("count"), UINT32_MAX);
        run_in(line, s, s->region, s->first, s->count);
        run_in(line, s, s->region2, s->first2, s->count);
        break;
      }
      s->region = region_ref(line, "region", NEED("region"));
      s->first = number(line, "first", NEED("first"), UINT32_MAX);
      s->count = number(line, "count", NEED("count"), UINT32_MAX);
      run_in(line, s, s->region, s->first, s->count);
      if (op == OP_UFFD_WP) s->on = FLAG("on");
      else {
        static const char *const MODES[] = { "MISSING", "WP" };
        unsigned m = words(line, "modes", NEED("modes"), MODES, 2);
        s->missing = !!(m & 1);
        s->wp = !!(m & 2);
      }
      break;
    }
    for (int i = 0; i < n; i++)
      if (!(used & 1u << i)) parse_error(line, "%s takes no %s=", name, f[i].key);
    /* who runs it, with the processes alive at this point of the program */
    if (op == OP_WRITE_WP && uffd_proc[s->uffd] != s->proc) parse_error(line, "uffd=%d belongs to process %d, not %d", s->uffd, uffd_proc[s->uffd], s->proc);
    s->owner = alive_or_supervisor(alive, s->proc);
    if (op == OP_FORK && s->owner != SUPERVISOR) alive[s->child] = 1;
    if (op == OP_EXIT && s->owner != SUPERVISOR) alive[s->proc] = 0;
    nsteps++;
  }
  if (nprocs < 0) parse_error(line, "the program must begin with \"processes N\"");
  free(pin_proc);
  free(pipe_proc);
  free(uffd_proc);
  free(alive);
  free(forked);
}

/* ---- what all processes share (MAP_SHARED, made before any fork) ---- */

#define MAX_ERRNO 160
#define NNOTES 8
enum note { NOTE_NO_SWAP, NOTE_COLLAPSE, NOTE_POPULATE_WRITE, NOTE_PAGEOUT, NOTE_UFFD_MOVE, NOTE_UFFD_WP, NOTE_VMSPLICE_SHORT, NOTE_DMA_SHORT };
static const char *const NOTE_TEXT[NNOTES] = {
  "reclaim: the host has no swap, MADV_PAGEOUT cannot swap anonymous pages out",
  "madvise: MADV_COLLAPSE is not supported here (EINVAL)",
  "madvise: MADV_POPULATE_WRITE is not supported here (EINVAL)",
  "madvise: MADV_PAGEOUT is not supported here (EINVAL)",
  "uffd_open: UFFDIO_API does not offer UFFD_FEATURE_MOVE (Linux 6.8+): uffd_move fails",
  "uffd_open: UFFDIO_API does not offer UFFD_FEATURE_PAGEFAULT_FLAG_WP: uffd-wp steps fail",
  "vmsplice: the pipe took fewer pages than asked (its capacity)",
  "dma_read: the write into the memfd was short",
};

struct shared {
  _Atomic uint32_t turn;    /* the step that may run next; EXIT_BIT | i: step i's process is exiting */
  _Atomic uint32_t waiters; /* processes in futex_wait on turn */
  _Atomic uint32_t sup;     /* bumped (and woken) when the supervisor has something to do */
  _Atomic int32_t fatal;    /* a process hit a runtime error: everyone stops */
  int32_t exit_pid;         /* the exiting process, with EXIT_BIT in turn */
  double exit_t0;
  double t_start, t_end;
  uint64_t accesses, incoherent_pins;
  uint64_t op_count[NOPS], op_pages[NOPS];
  double op_seconds[NOPS];
  uint32_t errors[NOPS][MAX_ERRNO + 1]; /* the last slot: any errno above MAX_ERRNO */
  uint32_t notes[NNOTES];
  char fatal_msg[256];
  uint8_t gone[MAX_PROCS]; /* a process whose fork failed: the supervisor fails its steps (ESRCH) */
};
#define EXIT_BIT 0x80000000u

static struct shared *sh;
static double *step_seconds; /* --steps: shared, one per step */
static int32_t me = SUPERVISOR;

static long futex(_Atomic uint32_t *addr, int cmd, uint32_t val) { return syscall(SYS_futex, addr, cmd, val, NULL, NULL, 0); }

static _Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (sh) {
    vsnprintf(sh->fatal_msg, sizeof sh->fatal_msg, fmt, ap);
    atomic_store(&sh->fatal, 1);
    atomic_store(&sh->turn, UINT32_MAX - 1);
    futex(&sh->turn, FUTEX_WAKE, INT_MAX);
    atomic_fetch_add(&sh->sup, 1);
    futex(&sh->sup, FUTEX_WAKE, 1);
  } else vfprintf(stderr, fmt, ap);
  va_end(ap);
  _exit(EXIT_RUNTIME);
}

/*
 * Waits until turn == want (or, `any`, until it is no longer `want`); returns turn. A handoff
 * between processes should cost what the program's own steps do, not a CPU's wake from idle
 * (a futex wake of a sleeper costs 100 µs and more in a VM): spin, then spin yielding the CPU
 * (to a process that has the turn when there are more processes than CPUs), and sleep on the
 * futex only after SPIN_SECONDS without a change.
 */
#define SPIN_SECONDS 2e-3
static uint32_t wait_turn(uint32_t want, int any) {
  double until = 0;
  for (unsigned spin = 0;; spin++) {
    uint32_t t = atomic_load(&sh->turn);
    if ((any ? t != want : t == want) || atomic_load(&sh->fatal)) return t;
    if (spin < 256) { __builtin_ia32_pause(); continue; }
    if (spin == 256) until = now() + SPIN_SECONDS;
    else if ((spin & 15) == 0 && now() > until) break;
    sched_yield();
  }
  atomic_fetch_add(&sh->waiters, 1);
  uint32_t t;
  for (;;) {
    t = atomic_load(&sh->turn);
    if ((any ? t != want : t == want) || atomic_load(&sh->fatal)) break;
    futex(&sh->turn, FUTEX_WAIT, t);
  }
  atomic_fetch_sub(&sh->waiters, 1);
  return t;
}

/* Whether the supervisor runs a step: its process is gone (exited before it, or never forked). */
static int supervised(const struct step *s) { return s->owner == SUPERVISOR || sh->gone[s->owner]; }

/* The supervisor sleeps on its own word: it has work only at an exit, a step of a process
 * gone, and the end, and must not spin beside the workers. */
static void wake_supervisor(void) {
  atomic_fetch_add(&sh->sup, 1);
  futex(&sh->sup, FUTEX_WAKE, 1);
}

static void set_turn(uint32_t t) {
  if (t == nsteps) sh->t_end = now();
  atomic_store(&sh->turn, t);
  if (atomic_load(&sh->waiters)) futex(&sh->turn, FUTEX_WAKE, INT_MAX);
  if (me != SUPERVISOR && (t == nsteps || (t < nsteps && supervised(&steps[t])))) wake_supervisor();
}

static void count_error(int op, int e) { sh->errors[op][e > 0 && e < MAX_ERRNO ? e : MAX_ERRNO]++; }

/* ---- per-process state (private, inherited by fork as a real process's would be) ---- */

struct pin { int ring, memfd; uint64_t *view; int32_t region; uint64_t first, count; };
struct pipe_state { int rd, wr; uint64_t bytes; };
struct uffd_state { int fd; int handler; };
static uint8_t *mapped;           /* [region]: this process mapped it at its address */
static struct pin *pins;          /* ring -1: not held */
static struct pipe_state *pipes;  /* rd -1: none */
static struct uffd_state *uffds;  /* fd -1: not open */
static uint64_t offered_features; /* what UFFDIO_API offers here */
static int have_swap;

static inline char *page_addr(int32_t r, uint64_t page) { return (char *)(region_addr[r] + page * PS); }
static inline int in_regions(uintptr_t a) {
  return nregions && a >= REGION_BASE && a < region_addr[nregions - 1] + region_pages[nregions - 1] * PS;
}

/* A fault on a region (mprotect, MADV_DONTFORK, gone) ends the step with EFAULT. */
static sigjmp_buf access_jmp;
static volatile sig_atomic_t in_access;
static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (in_access && in_regions((uintptr_t)si->si_addr)) { in_access = 0; siglongjmp(access_jmp, 1); }
  signal(sig, SIG_DFL); /* anything else is a bug: die of it */
  raise(sig);
}

static volatile uint64_t sink;

/* Stores or loads one word per page of the set; 0, or EFAULT. */
static int access_pages(const struct step *s, int write) {
  if (!mapped[s->region]) return EFAULT;
  volatile uint64_t done = 0;
  if (sigsetjmp(access_jmp, 1)) { sh->accesses += done; return EFAULT; }
  in_access = 1;
  uint64_t acc = 0;
  for (uint64_t i = 0; i < s->count; i++) {
    uint64_t page = s->list ? s->list[i] : s->first + i * s->stride;
    volatile uint64_t *w = (volatile uint64_t *)page_addr(s->region, page);
    if (write) *w = s->value + page;
    else acc += *w;
    done++;
  }
  in_access = 0;
  sink += acc;
  sh->accesses += done;
  return 0;
}

/* ---- io_uring, by raw syscalls ---- */

struct ring { int fd; void *sq, *cq; size_t sq_len, cq_len; struct io_uring_sqe *sqes; size_t sqes_len; struct io_uring_params p; };

static int ring_setup(struct ring *r) {
  memset(r, 0, sizeof *r);
  r->fd = (int)syscall(__NR_io_uring_setup, 2, &r->p);
  if (r->fd < 0) return -1;
  r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(uint32_t);
  r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
  r->sq = mmap(0, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  r->cq = mmap(0, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
  r->sqes_len = r->p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(0, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED) { int e = errno; close(r->fd); errno = e; return -1; }
  return 0;
}

static void ring_unmap(struct ring *r) {
  munmap(r->sq, r->sq_len);
  munmap(r->cq, r->cq_len);
  munmap(r->sqes, r->sqes_len);
}

/* ---- the steps ---- */

static struct ring *rings; /* [pin]: the ring of a held pin */

static int do_pin(const struct step *s) {
  if (!mapped[s->region]) return EFAULT;
  struct ring *r = &rings[s->pin];
  if (ring_setup(r)) return errno;
  struct iovec iov = { page_addr(s->region, s->first), s->count * PS };
  if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
    int e = errno;
    ring_unmap(r);
    close(r->fd);
    return e;
  }
  pins[s->pin] = (struct pin){ .ring = r->fd, .memfd = -1, .view = NULL, .region = s->region, .first = s->first, .count = s->count };
  return 0;
}

static int do_unpin(const struct step *s) {
  struct pin *p = &pins[s->pin];
  if (p->ring < 0) return EINVAL;
  /* closing the ring drops its buffers (io_sqe_buffers_unregister() at io_ring_ctx_free()) */
  ring_unmap(&rings[s->pin]);
  close(p->ring);
  if (p->view) munmap(p->view, p->count * PS);
  if (p->memfd >= 0) close(p->memfd);
  p->ring = -1;
  return 0;
}

/* What the device read against what the owner maps now: a page it cannot read (gone, a hole)
 * ends the comparison, as the simulator's pfnAt() sees no page there. */
static __attribute__((noinline)) void compare_pin(const struct pin *p, uint64_t pages) {
  if (!mapped[p->region]) return;
  if (sigsetjmp(access_jmp, 1)) return;
  in_access = 1;
  for (uint64_t i = 0; i < pages; i++) {
    uint64_t mine = *(volatile uint64_t *)page_addr(p->region, p->first + i);
    if (mine != p->view[i * (PS / 8)]) sh->incoherent_pins++;
  }
  in_access = 0;
}

/* The device reads every pinned page: WRITE_FIXED into a memfd, then what it saw is compared
 * with what the owner maps (a pin off the owner's page is a wrong COW made visible). */
static int do_dma_read(const struct step *s) {
  struct pin *p = &pins[s->pin];
  if (p->ring < 0) return EINVAL;
  struct ring *r = &rings[s->pin];
  size_t len = p->count * PS;
  if (p->memfd < 0) {
    p->memfd = (int)syscall(SYS_memfd_create, "cowsim-dma", 0);
    if (p->memfd < 0) return errno;
    if (ftruncate(p->memfd, (off_t)len)) return errno;
    p->view = mmap(0, len, PROT_READ, MAP_SHARED, p->memfd, 0);
    if (p->view == MAP_FAILED) { p->view = NULL; return errno; }
  }
  uint32_t *sq_tail = (uint32_t *)((char *)r->sq + r->p.sq_off.tail);
  uint32_t *sq_mask = (uint32_t *)((char *)r->sq + r->p.sq_off.ring_mask);
  uint32_t *sq_array = (uint32_t *)((char *)r->sq + r->p.sq_off.array);
  uint32_t *cq_head = (uint32_t *)((char *)r->cq + r->p.cq_off.head);
  uint32_t *cq_tail = (uint32_t *)((char *)r->cq + r->p.cq_off.tail);
  uint32_t *cq_mask = (uint32_t *)((char *)r->cq + r->p.cq_off.ring_mask);
  struct io_uring_cqe *cqes = (struct io_uring_cqe *)((char *)r->cq + r->p.cq_off.cqes);
  size_t done = 0;
  while (done < len) {
    uint32_t tail = *sq_tail, idx = tail & *sq_mask;
    struct io_uring_sqe *sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_WRITE_FIXED;
    sqe->fd = p->memfd;
    sqe->addr = (uint64_t)(uintptr_t)page_addr(p->region, p->first) + done;
    sqe->len = (uint32_t)(len - done > (1U << 30) ? 1U << 30 : len - done);
    sqe->off = done;
    sqe->buf_index = 0;
    sq_array[idx] = idx;
    __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return errno;
    uint32_t head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
    if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) return EIO;
    int res = cqes[head & *cq_mask].res;
    __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
    if (res < 0) return -res;
    if (res == 0) { sh->notes[NOTE_DMA_SHORT]++; break; }
    done += (size_t)res;
  }
  sh->op_pages[OP_DMA_READ] += done / PS;
  compare_pin(p, done / PS);
  return 0;
}

static int do_vmsplice(const struct step *s) {
  if (!mapped[s->region]) return EFAULT;
  int fd[2];
  if (pipe2(fd, O_CLOEXEC | O_NONBLOCK)) return errno;
  size_t len = s->count * PS;
  if (len > 16 * PS) fcntl(fd[1], F_SETPIPE_SZ, (int)(len > (1UL << 30) ? 1UL << 30 : len));
  struct iovec iov = { page_addr(s->region, s->first), len };
  size_t done = 0;
  while (done < len) {
    iov.iov_base = page_addr(s->region, s->first) + done;
    iov.iov_len = len - done;
    ssize_t n = vmsplice(fd[1], &iov, 1, SPLICE_F_NONBLOCK);
    if (n < 0) {
      if (errno == EAGAIN) { sh->notes[NOTE_VMSPLICE_SHORT]++; break; }
      int e = errno;
      close(fd[0]);
      close(fd[1]);
      return e;
    }
    done += (size_t)n;
  }
  pipes[s->pipe] = (struct pipe_state){ fd[0], fd[1], done };
  sh->op_pages[OP_VMSPLICE] += s->count;
  return 0;
}

static int do_pipe_read(const struct step *s) {
  struct pipe_state *p = &pipes[s->pipe];
  if (p->rd < 0) return EINVAL;
  static char buf[64 * 1024];
  uint64_t left = p->bytes;
  while (left) {
    ssize_t n = read(p->rd, buf, left < sizeof buf ? left : sizeof buf);
    if (n <= 0) break;
    sink += (unsigned char)buf[0];
    left -= (uint64_t)n;
  }
  sh->op_pages[OP_PIPE_READ] += p->bytes / PS;
  close(p->rd);
  close(p->wr);
  p->rd = p->wr = -1;
  return 0;
}

/* The uffd handler: resolves each fault as a snapshotter does (save the page, lift the WP). */
static void *uffd_handler(void *arg) {
  int fd = (int)(intptr_t)arg;
  static char saved[PS];
  for (;;) {
    struct uffd_msg msg;
    ssize_t n = read(fd, &msg, sizeof msg);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof msg) return NULL;
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    uintptr_t a = (uintptr_t)msg.arg.pagefault.address & ~(PS - 1);
    if (!in_regions(a)) continue;
    if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
      memcpy(saved, (void *)a, PS);
      struct uffdio_writeprotect wp = { .range = { a, PS }, .mode = 0 };
      if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) && errno != ENOENT) fatal("uffd handler: UFFDIO_WRITEPROTECT: %s", strerror(errno));
    } else {
      struct uffdio_zeropage z = { .range = { a, PS }, .mode = 0 };
      if (ioctl(fd, UFFDIO_ZEROPAGE, &z) && errno != EEXIST) fatal("uffd handler: UFFDIO_ZEROPAGE: %s", strerror(errno));
    }
  }
}

static int do_uffd_open(const struct step *s) {
  int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  if (fd < 0) {
    int e = errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return e;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    close(dev);
    if (fd < 0) return e;
  }
  /* ask for what is offered of what the steps need: a probe first (UFFDIO_API reports all) */
  uint64_t want = (s->move ? UFFD_FEATURE_MOVE : 0) | (s->wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0);
  if (!offered_features) {
    int probe = (int)syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    struct uffdio_api api = { .api = UFFD_API, .features = 0 };
    if (probe >= 0 && !ioctl(probe, UFFDIO_API, &api)) offered_features = api.features | 1ULL << 63;
    if (probe >= 0) close(probe);
  }
  if (s->move && offered_features && !(offered_features & UFFD_FEATURE_MOVE)) { sh->notes[NOTE_UFFD_MOVE]++; want &= ~(uint64_t)UFFD_FEATURE_MOVE; }
  if (s->wp && offered_features && !(offered_features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) { sh->notes[NOTE_UFFD_WP]++; want &= ~(uint64_t)UFFD_FEATURE_PAGEFAULT_FLAG_WP; }
  struct uffdio_api api = { .api = UFFD_API, .features = want };
  if (ioctl(fd, UFFDIO_API, &api)) { int e = errno; close(fd); return e; }
  pthread_t t;
  if (pthread_create(&t, NULL, uffd_handler, (void *)(intptr_t)fd)) { close(fd); return EAGAIN; }
  pthread_detach(t);
  uffds[s->uffd] = (struct uffd_state){ fd, 1 };
  return 0;
}

static int uffd_fd(const struct step *s) { return uffds[s->uffd].fd; }

static int do_step(const struct step *s) {
  switch (s->op) {
  case OP_MMAP: {
    char *want = (char *)region_addr[s->region];
    int flags = (s->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    char *p = mmap(want, s->count * PS, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return errno;
    if (p != want) { munmap(p, s->count * PS); return EEXIST; } /* a kernel before 4.17 took it as a hint */
    mapped[s->region] = 1;
    if (s->huge >= 0 && madvise(p, s->count * PS, s->huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) return errno;
    sh->op_pages[OP_MMAP] += s->count;
    return 0;
  }
  case OP_MUNMAP:
    /* only what this process mapped at the address: never someone else's mapping */
    if (!mapped[s->region]) return 0;
    mapped[s->region] = 0;
    sh->op_pages[OP_MUNMAP] += region_pages[s->region];
    return munmap(page_addr(s->region, 0), region_pages[s->region] * PS) ? errno : 0;
  case OP_WRITE: case OP_READ:
    sh->op_pages[s->op] += s->count;
    return access_pages(s, s->op == OP_WRITE);
  case OP_WRITE_WP:
    if (uffds[s->uffd].fd < 0) return EBADF;
    sh->op_pages[s->op] += s->count;
    return access_pages(s, 1);
  case OP_FORK: {
    pid_t c = fork();
    if (c < 0) { sh->gone[s->child] = 1; return errno; }
    if (c == 0) me = s->child;
    return 0;
  }
  case OP_MADVISE: {
    if (!mapped[s->region]) return ENOMEM;
    sh->op_pages[OP_MADVISE] += s->count;
    if (!madvise(page_addr(s->region, s->first), s->count * PS, ADVICE_VALUES[s->advice])) return 0;
    int e = errno;
    if (e == EINVAL && s->advice == ADV_COLLAPSE) sh->notes[NOTE_COLLAPSE]++;
    if (e == EINVAL && s->advice == ADV_POPULATE_WRITE) sh->notes[NOTE_POPULATE_WRITE]++;
    if (e == EINVAL && s->advice == ADV_PAGEOUT) sh->notes[NOTE_PAGEOUT]++;
    return e;
  }
  case OP_MPROTECT:
    if (!mapped[s->region]) return ENOMEM;
    sh->op_pages[OP_MPROTECT] += s->count;
    return mprotect(page_addr(s->region, s->first), s->count * PS, PROT_READ | (s->write ? PROT_WRITE : 0)) ? errno : 0;
  case OP_PIN:
    sh->op_pages[OP_PIN] += s->count;
    return do_pin(s);
  case OP_UNPIN: return do_unpin(s);
  case OP_DMA_READ: return do_dma_read(s);
  case OP_VMSPLICE: return do_vmsplice(s);
  case OP_PIPE_READ: return do_pipe_read(s);
  case OP_RECLAIM: {
    /* MADV_PAGEOUT over this process's regions, in order, up to `pages` pages */
    if (!have_swap) sh->notes[NOTE_NO_SWAP]++;
    uint64_t left = s->count;
    for (int32_t r = 0; r < nregions && left; r++) {
      if (!mapped[r]) continue;
      uint64_t n = region_pages[r] < left ? region_pages[r] : left;
      if (madvise(page_addr(r, 0), n * PS, MADV_PAGEOUT)) {
        if (errno == EINVAL) { sh->notes[NOTE_PAGEOUT]++; return EINVAL; }
        if (errno != ENOMEM) return errno; /* ENOMEM: a hole (MADV_DONTFORK in a child) */
      }
      left -= n;
      sh->op_pages[OP_RECLAIM] += n;
    }
    return 0;
  }
  case OP_UFFD_OPEN: return do_uffd_open(s);
  case OP_UFFD_REGISTER: {
    if (uffd_fd(s) < 0) return EBADF;
    if (!mapped[s->region]) return EINVAL;
    struct uffdio_register r = { .range = { (uintptr_t)page_addr(s->region, s->first), s->count * PS },
                                 .mode = (s->missing ? UFFDIO_REGISTER_MODE_MISSING : 0) | (s->wp ? UFFDIO_REGISTER_MODE_WP : 0) };
    sh->op_pages[s->op] += s->count;
    return ioctl(uffd_fd(s), UFFDIO_REGISTER, &r) ? errno : 0;
  }
  case OP_UFFD_WP: {
    if (uffd_fd(s) < 0) return EBADF;
    if (!mapped[s->region]) return ENOENT;
    struct uffdio_writeprotect wp = { .range = { (uintptr_t)page_addr(s->region, s->first), s->count * PS },
                                      .mode = s->on ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
    sh->op_pages[s->op] += s->count;
    return ioctl(uffd_fd(s), UFFDIO_WRITEPROTECT, &wp) ? errno : 0;
  }
  case OP_UFFD_MOVE: {
    if (uffd_fd(s) < 0) return EBADF;
    if (!mapped[s->region] || !mapped[s->region2]) return ENOENT;
    struct uffdio_move mv = { .dst = (uintptr_t)page_addr(s->region2, s->first2), .src = (uintptr_t)page_addr(s->region, s->first),
                              .len = s->count * PS, .mode = 0 };
    sh->op_pages[s->op] += s->count;
    if (ioctl(uffd_fd(s), UFFDIO_MOVE, &mv)) return errno;
    return mv.move == (int64_t)(s->count * PS) ? 0 : EAGAIN;
  }
  }
  return EINVAL;
}

/* ---- running ---- */

static void record(uint32_t i, int op, double t0, int e) {
  double dt = now() - t0;
  sh->op_count[op]++;
  sh->op_seconds[op] += dt;
  if (step_seconds) step_seconds[i] = dt;
  if (e) count_error(op, e);
}

/* Every process: walk the steps, run its own in turn. Returns when the program ended. */
static void worker(uint32_t from) {
  for (uint32_t i = from; i < nsteps; i++) {
    const struct step *s = &steps[i];
    if (s->owner != me) continue;
    if (wait_turn(i, 0) != i) return; /* fatal elsewhere */
    double t0 = now();
    if (s->op == OP_EXIT) {
      /* the supervisor times it until this process is dead, then passes the turn on */
      sh->exit_pid = getpid();
      sh->exit_t0 = t0;
      atomic_store(&sh->turn, EXIT_BIT | i);
      wake_supervisor();
      _exit(0);
    }
    int32_t was = me;
    int e = do_step(s);
    if (s->op == OP_FORK && me != was) {
      /* the child: the parent records the step and passes the turn on */
      worker(i + 1);
      return;
    }
    record(i, s->op, t0, e);
    set_turn(i + 1);
  }
  wait_turn(nsteps, 0);
}

/* Waits for process `pid` (a zombie or gone once it has exited) to be dead. */
static void wait_dead(pid_t pid) {
  int fd = (int)syscall(__NR_pidfd_open, pid, 0);
  if (fd >= 0) {
    struct pollfd p = { fd, POLLIN, 0 };
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
    close(fd);
    return;
  }
  /* before 5.3: poll its state until it is a zombie or reaped */
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  for (;;) {
    int f = open(path, O_RDONLY);
    if (f < 0) return;
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0) return;
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    if (rp && (rp[2] == 'Z' || rp[2] == 'X')) return;
    sched_yield();
  }
}

static void supervise(void) {
  for (;;) {
    uint32_t seen = atomic_load(&sh->sup);
    uint32_t t = atomic_load(&sh->turn);
    if (atomic_load(&sh->fatal) || t == nsteps) return;
    if (t & EXIT_BIT) {
      uint32_t i = t & ~EXIT_BIT;
      wait_dead(sh->exit_pid);
      record(i, OP_EXIT, sh->exit_t0, 0);
      set_turn(i + 1);
      continue;
    }
    if (t < nsteps && supervised(&steps[t])) {
      /* a step of a process gone (or never forked): ESRCH, as the simulator says */
      double t0 = now();
      record(t, steps[t].op, t0, ESRCH);
      set_turn(t + 1);
      continue;
    }
    futex(&sh->sup, FUTEX_WAIT, seen);
  }
}

static double timeout_s = 600;
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "{\"error\":\"timed out\"}\n";
  if (write(1, msg, sizeof msg - 1) < 0) {}
  kill(0, SIGTERM); /* the workers; the supervisor ignores it */
  _exit(EXIT_RUNTIME);
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

static const char *errno_name(int e) {
  if (e == MAX_ERRNO) return "EOTHER";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n) return n;
#endif
  static char buf[16];
  snprintf(buf, sizeof buf, "E%d", e);
  return buf;
}

static void report(void) {
  struct utsname u;
  uname(&u);
  printf("{\"kernel\":");
  json_string(u.release);
  printf(",\"steps\":%u,\"processes\":%d,\"seconds\":%.9f,\"accesses\":%llu,\"incoherentPins\":%llu,\"swap\":%s,\"ops\":{",
         nsteps, nprocs, sh->t_end - sh->t_start, (unsigned long long)sh->accesses, (unsigned long long)sh->incoherent_pins,
         have_swap ? "true" : "false");
  int comma = 0;
  for (int op = 0; op < NOPS; op++) {
    if (!sh->op_count[op]) continue;
    printf("%s\"%s\":{\"count\":%llu,\"pages\":%llu,\"seconds\":%.9f}", comma++ ? "," : "", OP_NAMES[op],
           (unsigned long long)sh->op_count[op], (unsigned long long)sh->op_pages[op], sh->op_seconds[op]);
  }
  printf("},\"errors\":{");
  comma = 0;
  for (int op = 0; op < NOPS; op++)
    for (int e = 0; e <= MAX_ERRNO; e++)
      if (sh->errors[op][e]) printf("%s\"%s:%s\":%u", comma++ ? "," : "", OP_NAMES[op], errno_name(e), sh->errors[op][e]);
  printf("},\"unsupported\":{");
  comma = 0;
  for (int n = 0; n < NNOTES; n++)
    if (sh->notes[n]) { printf("%s", comma++ ? "," : ""); json_string(NOTE_TEXT[n]); printf(":%u", sh->notes[n]); }
  printf("}");
  if (step_seconds) {
    printf(",\"stepSeconds\":[");
    for (uint32_t i = 0; i < nsteps; i++) printf("%s%.9f", i ? "," : "", step_seconds[i]);
    printf("]");
  }
  printf("}\n");
}

static char *read_all(FILE *f) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) { fprintf(stderr, "%s: out of memory\n", input_name); exit(EXIT_PARSE); }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
    if (len + 1 == cap) {
      if (cap >= MAX_PROGRAM) { fprintf(stderr, "%s: the program is larger than %lu MiB\n", input_name, MAX_PROGRAM >> 20); exit(EXIT_PARSE); }
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  if (ferror(f)) { fprintf(stderr, "%s: %s\n", input_name, strerror(errno)); exit(EXIT_PARSE); }
  if (memchr(buf, 0, len)) { fprintf(stderr, "%s: the program holds a NUL byte\n", input_name); exit(EXIT_PARSE); }
  buf[len] = 0;
  return buf;
}

int main(int argc, char **argv) {
  int want_steps = 0;
  const char *file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps")) want_steps = 1;
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
      char *end;
      timeout_s = strtod(argv[++i], &end);
      if (*end || !(timeout_s > 0) || timeout_s > 86400) { fprintf(stderr, "--timeout takes seconds in (0, 86400]\n"); return EXIT_PARSE; }
    } else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "usage: workload [--steps] [--timeout SECONDS] [FILE]\n"); return EXIT_PARSE; }
    else if (file) { fprintf(stderr, "usage: workload [--steps] [--timeout SECONDS] [FILE]\n"); return EXIT_PARSE; }
    else file = argv[i];
  }
  FILE *in = stdin;
  if (file && strcmp(file, "-")) {
    input_name = file;
    in = fopen(file, "r");
    if (!in) { fprintf(stderr, "%s: %s\n", file, strerror(errno)); return EXIT_PARSE; }
  }
  parse(read_all(in));

  struct sysinfo si;
  have_swap = !sysinfo(&si) && si.totalswap > 0;
  mapped = calloc(nregions + 1, 1);
  pins = calloc(npins + 1, sizeof *pins);
  rings = calloc(npins + 1, sizeof *rings);
  pipes = calloc(npipes + 1, sizeof *pipes);
  uffds = calloc(nuffds + 1, sizeof *uffds);
  if (!mapped || !pins || !rings || !pipes || !uffds) fatal("out of memory");
  for (int32_t i = 0; i < npins; i++) pins[i].ring = -1;
  for (int32_t i = 0; i < npipes; i++) pipes[i].rd = pipes[i].wr = -1;
  for (int32_t i = 0; i < nuffds; i++) uffds[i].fd = -1;

  sh = mmap(0, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) { sh = NULL; printf("{\"error\":\"mmap of the shared page: %s\"}\n", strerror(errno)); return EXIT_RUNTIME; }
  if (want_steps) {
    step_seconds = mmap(0, (nsteps + 1) * sizeof *step_seconds, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (step_seconds == MAP_FAILED) { printf("{\"error\":\"mmap of the step times: %s\"}\n", strerror(errno)); return EXIT_RUNTIME; }
  }
  struct sigaction sa = { 0 };
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  setpgid(0, 0);
  fflush(stdout);
  if (!nsteps) { report(); return 0; }

  pid_t first = fork();
  if (first < 0) { printf("{\"error\":\"fork: %s\"}\n", strerror(errno)); return EXIT_RUNTIME; }
  if (first == 0) {
    /* the workers print nothing: stdout ends with the supervisor */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) { dup2(null, 1); close(null); }
    me = 0;
    sh->t_start = now();
    worker(0);
    _exit(0);
  }
  signal(SIGTERM, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm((unsigned)(timeout_s + 0.999));
  supervise();
  alarm(0);
  if (atomic_load(&sh->fatal)) {
    printf("{\"error\":");
    json_string(sh->fatal_msg);
    printf("}\n");
    fflush(stdout);
    kill(0, SIGTERM);
    return EXIT_RUNTIME;
  }
  report();
  fflush(stdout);
  int status;
  waitpid(first, &status, 0);
  return 0;
}
