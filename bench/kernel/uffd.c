/*
 * The real kernel's cost of the userfaultfd paths cowsim models, on the machine it runs on:
 * UFFDIO_MOVE of exclusive anonymous 4 KiB pages (move_pages() -> move_pages_pte(), ns per
 * page, all pages in one ioctl) and of PMD-mapped THPs (move_pages_huge_pmd(), ns per THP,
 * 2 MiB-aligned MADV_HUGEPAGE source and destination), UFFDIO_WRITEPROTECT on and off over
 * populated PTEs (mwriteprotect_range() -> change_protection(), ns per page), UFFDIO_COPY and
 * UFFDIO_ZEROPAGE (mfill_atomic_copy(), mfill_atomic_zeropage(), ns per page, in one ioctl and
 * for COPY also one page per ioctl), and a MISSING fault round trip: a thread writes to a
 * registered page, handle_userfault() queues a uffd_msg, a handler thread read()s it and
 * resolves it with a one-page UFFDIO_COPY, which wakes the faulting thread (ns per fault).
 * Each figure is the median of ROUNDS rounds, each on fresh mappings.
 *
 * Prints one JSON object. A figure this machine cannot measure is null with the reason in a
 * "...Reason" field: UFFDIO_MOVE needs UFFD_FEATURE_MOVE (Linux 6.8, commit adef440691ba),
 * a THP move is only counted when smaps showed the source PMD-mapped before and the
 * destination PMD-mapped after (AnonHugePages) with no thp_split_pmd in between. Without
 * userfaultfd (neither the syscall nor /dev/userfaultfd) it prints {"error": ...}.
 *
 *   npm run bench:kernel -- uffd
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#include "uffd_uapi.h"

#define PS 4096UL
#define HPAGE (2UL << 20)
#define PAGES 8192 /* 32 MiB of base pages per round */
#define FAULTS 4096 /* MISSING faults per round */
#define THPS 64 /* 128 MiB of THPs per round */
#define ROUNDS 7

static const char *how = "syscall"; /* how userfaultfd was opened */

/* A userfaultfd with `features` enabled by UFFDIO_API, or -1 with errno set. *offered gets
 * every feature the kernel reports (userfaultfd_api() reports them all, whatever was asked). */
static int uffd_open(uint64_t features, uint64_t *offered) {
  int fd = syscall(__NR_userfaultfd, O_CLOEXEC);
  if (fd < 0) {
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -1;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
    close(dev);
    if (fd < 0) return -1;
    how = "/dev/userfaultfd";
  }
  struct uffdio_api api = { .api = UFFD_API, .features = features };
  if (ioctl(fd, UFFDIO_API, &api)) { int e = errno; close(fd); errno = e; return -1; }
  if (offered) *offered = api.features;
  return fd;
}

static int uffd_register(int uffd, void *p, size_t len, uint64_t mode) {
  struct uffdio_register r = { .range = { (unsigned long)p, len }, .mode = mode };
  return ioctl(uffd, UFFDIO_REGISTER, &r);
}

/* len bytes, 2 MiB-aligned, with `advice` (MADV_HUGEPAGE or MADV_NOHUGEPAGE) */
static char *aligned(size_t len, int advice) {
  char *raw = mmap(0, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return 0;
  char *p = (char *)(((unsigned long)raw + HPAGE - 1) & ~(HPAGE - 1));
  if (p > raw) munmap(raw, p - raw);
  munmap(p + len, raw + HPAGE - p);
  madvise(p, len, advice);
  return p;
}

static void touch(char *p, size_t len, size_t step, char v) { for (size_t i = 0; i < len; i += step) p[i] = v; }

/* AnonHugePages, in kB, of the VMA holding `addr` (/proc/self/smaps), or -1 */
static long vma_anon_huge_kb(void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  unsigned long a = (unsigned long)addr, s, e;
  int in = 0;
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) in = s <= a && a < e;
    else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb;
}

/* The reason the current measurement failed; the first one wins. */
static char why[256];
static double fail(const char *what, const char *text, long err) {
  if (!why[0]) {
    if (err) snprintf(why, sizeof why, "%s: %s: %s", what, text, strerror(err));
    else snprintf(why, sizeof why, "%s: %s", what, text);
  }
  return -1;
}

/* ns per 4 KiB page of one UFFDIO_MOVE of PAGES exclusive anonymous pages */
static double move_pages_ns(void) {
  size_t len = PAGES * PS;
  char *src = aligned(len, MADV_NOHUGEPAGE), *dst = aligned(len, MADV_NOHUGEPAGE);
  int uffd = uffd_open(UFFD_FEATURE_MOVE, 0);
  double out = -1;
  if (!src || !dst || uffd < 0) return fail("move", "setup failed", errno);
  touch(src, len, PS, 1);
  if (uffd_register(uffd, dst, len, UFFDIO_REGISTER_MODE_MISSING)) out = fail("move", "UFFDIO_REGISTER", errno);
  else {
    struct uffdio_move m = { .dst = (unsigned long)dst, .src = (unsigned long)src, .len = len };
    double t0 = now();
    int r = ioctl(uffd, UFFDIO_MOVE, &m);
    double spent = now() - t0;
    if (r || m.move != (long)len) out = fail("move", "UFFDIO_MOVE failed", r ? errno : 0);
    else if (dst[0] != 1 || dst[len - PS] != 1) out = fail("move", "moved pages lost their contents", 0);
    else out = spent / PAGES;
  }
  close(uffd);
  munmap(src, len);
  munmap(dst, len);
  return out;
}

static int thp_moved = -1; /* 1 when every THP round moved whole PMDs */

/* ns per THP of one UFFDIO_MOVE of THPS PMD-mapped THPs */
static double move_thp_ns(void) {
  size_t len = THPS * HPAGE;
  char *src = aligned(len, MADV_HUGEPAGE), *dst = aligned(len, MADV_HUGEPAGE);
  int uffd = uffd_open(UFFD_FEATURE_MOVE, 0);
  double out = -1;
  if (!src || !dst || uffd < 0) return fail("moveThp", "setup failed", errno);
  touch(src, len, PS, 1);
  long before = vma_anon_huge_kb(src);
  if (before < (long)(len >> 10)) { fprintf(stderr, "bench:kernel uffd: moveThp: the source got %ld kB of THPs\n", before); out = fail("moveThp", "the kernel gave the source no PMD-mapped THPs (smaps AnonHugePages)", 0); }
  else if (uffd_register(uffd, dst, len, UFFDIO_REGISTER_MODE_MISSING)) out = fail("moveThp", "UFFDIO_REGISTER", errno);
  else {
    struct uffdio_move m = { .dst = (unsigned long)dst, .src = (unsigned long)src, .len = len };
    long splits = vmstat("thp_split_pmd");
    double t0 = now();
    int r = ioctl(uffd, UFFDIO_MOVE, &m);
    double spent = now() - t0;
    splits = vmstat("thp_split_pmd") - splits;
    long after = vma_anon_huge_kb(dst);
    if (r || m.move != (long)len) out = fail("moveThp", "UFFDIO_MOVE failed", r ? errno : 0);
    else {
      int whole = after >= (long)(len >> 10) && splits == 0;
      thp_moved = thp_moved == 0 ? 0 : whole;
      if (!whole) fprintf(stderr, "bench:kernel uffd: moveThp: destination has %ld kB of THPs, %ld PMD splits\n", after, splits);
      out = spent / THPS;
    }
  }
  close(uffd);
  munmap(src, len);
  munmap(dst, len);
  return out;
}

/* ns per page of UFFDIO_WRITEPROTECT over PAGES populated pages: [0] setting, [1] clearing */
static double wp_ns[2];
static double wp_round(void) {
  size_t len = PAGES * PS;
  char *p = aligned(len, MADV_NOHUGEPAGE);
  int uffd = uffd_open(UFFD_FEATURE_PAGEFAULT_FLAG_WP, 0);
  double out = -1;
  if (!p || uffd < 0) return fail("writeprotect", "setup failed", errno);
  touch(p, len, PS, 1);
  if (uffd_register(uffd, p, len, UFFDIO_REGISTER_MODE_WP)) out = fail("writeprotect", "UFFDIO_REGISTER", errno);
  else {
    struct uffdio_writeprotect on = { .range = { (unsigned long)p, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    struct uffdio_writeprotect off = { .range = { (unsigned long)p, len }, .mode = 0 };
    double t0 = now();
    int r = ioctl(uffd, UFFDIO_WRITEPROTECT, &on);
    double t1 = now();
    if (!r) r = ioctl(uffd, UFFDIO_WRITEPROTECT, &off);
    double t2 = now();
    if (r) out = fail("writeprotect", "UFFDIO_WRITEPROTECT", errno);
    else { wp_ns[0] = (t1 - t0) / PAGES; wp_ns[1] = (t2 - t1) / PAGES; out = 0; }
  }
  close(uffd);
  munmap(p, len);
  return out;
}

/* ns per page of UFFDIO_COPY (or UFFDIO_ZEROPAGE) into PAGES missing pages, in one ioctl,
 * or one ioctl per page when `each` */
static double fill_ns(int zero, int each) {
  size_t len = PAGES * PS;
  char *src = aligned(len, MADV_NOHUGEPAGE), *dst = aligned(len, MADV_NOHUGEPAGE);
  int uffd = uffd_open(0, 0);
  const char *what = zero ? "zeropage" : "copy";
  double out = -1;
  if (!src || !dst || uffd < 0) return fail(what, "setup failed", errno);
  touch(src, len, PS, 7);
  if (uffd_register(uffd, dst, len, UFFDIO_REGISTER_MODE_MISSING)) out = fail(what, "UFFDIO_REGISTER", errno);
  else {
    size_t step = each ? PS : len;
    int r = 0;
    long done = 0;
    double t0 = now();
    for (size_t off = 0; off < len && !r; off += step) {
      if (zero) {
        struct uffdio_zeropage z = { .range = { (unsigned long)dst + off, step } };
        r = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
        done += z.zeropage;
      } else {
        struct uffdio_copy c = { .dst = (unsigned long)dst + off, .src = (unsigned long)src + off, .len = step };
        r = ioctl(uffd, UFFDIO_COPY, &c);
        done += c.copy;
      }
    }
    double spent = now() - t0;
    if (r || done != (long)len) out = fail(what, zero ? "UFFDIO_ZEROPAGE failed" : "UFFDIO_COPY failed", r ? errno : 0);
    else if (dst[len - PS] != (zero ? 0 : 7)) out = fail(what, "wrong contents after the fill", 0);
    else out = spent / PAGES;
  }
  close(uffd);
  munmap(src, len);
  munmap(dst, len);
  return out;
}
static double copy_ns(void) { return fill_ns(0, 0); }
static double copy_each_ns(void) { return fill_ns(0, 1); }
static double zeropage_ns(void) { return fill_ns(1, 0); }

/* The MISSING fault handler: reads FAULTS uffd_msgs, resolves each with a one-page UFFDIO_COPY. */
struct handler { int uffd; char *page; long bad; };
static void *handle_faults(void *arg) {
  struct handler *h = arg;
  for (int n = 0; n < FAULTS; n++) {
    struct uffd_msg msg;
    if (read(h->uffd, &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) { h->bad++; return 0; }
    struct uffdio_copy c = { .dst = msg.arg.pagefault.address & ~(PS - 1), .src = (unsigned long)h->page, .len = PS };
    if (ioctl(h->uffd, UFFDIO_COPY, &c) && errno != EEXIST) { h->bad++; return 0; }
  }
  return 0;
}

/* ns per MISSING fault: write fault -> uffd_msg -> read() -> UFFDIO_COPY -> wake -> retry */
static double round_trip_ns(void) {
  size_t len = FAULTS * PS;
  char *p = aligned(len, MADV_NOHUGEPAGE), *page = aligned(PS, MADV_NOHUGEPAGE);
  int uffd = uffd_open(0, 0);
  double out = -1;
  if (!p || !page || uffd < 0) return fail("fault", "setup failed", errno);
  touch(page, PS, PS, 5);
  if (uffd_register(uffd, p, len, UFFDIO_REGISTER_MODE_MISSING)) out = fail("fault", "UFFDIO_REGISTER", errno);
  else {
    struct handler h = { uffd, page, 0 };
    pthread_t t;
    if (pthread_create(&t, 0, handle_faults, &h)) out = fail("fault", "pthread_create", errno);
    else {
      double t0 = now();
      touch(p, len, PS, 9);
      double spent = now() - t0;
      pthread_join(t, 0);
      if (h.bad) out = fail("fault", "the handler failed", 0);
      else out = spent / FAULTS;
    }
  }
  close(uffd);
  munmap(p, len);
  munmap(page, PS);
  return out;
}

/* the median of ROUNDS, or -1 (and `why`) when any round could not measure */
static double rounds(double (*f)(void)) {
  double v[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) if ((v[r] = f()) < 0) return -1;
  return median(v, ROUNDS);
}

static void field(const char *name, double v) {
  if (v < 0) printf(",\"%s\":null", name); else printf(",\"%s\":%.1f", name, v);
}
static void reason(const char *name, const char *text) {
  if (!text || !text[0]) return;
  printf(",\"%s\":\"", name);
  for (const char *c = text; *c; c++) printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
  printf("\"");
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "{\"error\":\"timed out: a userfaultfd fault was never resolved\"}\n";
  if (write(1, msg, sizeof msg - 1) < 0) _exit(1);
  _exit(0);
}

int main(void) {
  struct utsname u;
  uint64_t offered = 0;
  if (uname(&u)) strcpy(u.release, "unknown");
  int probe = uffd_open(0, &offered);
  if (probe < 0) {
    printf("{\"kernel\":\"%s\",\"error\":\"no userfaultfd: the syscall and /dev/userfaultfd both failed (%s); "
           "root, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd is needed, and CONFIG_USERFAULTFD\"}\n",
           u.release, strerror(errno));
    return 0;
  }
  close(probe);
  signal(SIGALRM, watchdog);
  alarm(300);

  char move_why[256] = "", thp_why[256] = "", wp_why[256] = "", copy_why[256] = "", zero_why[256] = "", fault_why[256] = "";
  double move4k = -1, movethp = -1, wpon = -1, wpoff = -1, copy, copy1, zero, fault;
  if (!(offered & UFFD_FEATURE_MOVE)) {
    snprintf(move_why, sizeof move_why, "UFFDIO_API does not offer UFFD_FEATURE_MOVE on kernel %s (UFFDIO_MOVE is Linux 6.8+)", u.release);
    strcpy(thp_why, move_why);
  } else {
    why[0] = 0; move4k = rounds(move_pages_ns); strcpy(move_why, why);
    why[0] = 0; movethp = rounds(move_thp_ns); strcpy(thp_why, why);
  }
  if (!(offered & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
    snprintf(wp_why, sizeof wp_why, "UFFDIO_API does not offer UFFD_FEATURE_PAGEFAULT_FLAG_WP on kernel %s", u.release);
  } else {
    double on[ROUNDS], off[ROUNDS];
    why[0] = 0;
    int r = 0;
    for (; r < ROUNDS && wp_round() == 0; r++) { on[r] = wp_ns[0]; off[r] = wp_ns[1]; }
    if (r == ROUNDS) { wpon = median(on, ROUNDS); wpoff = median(off, ROUNDS); }
    strcpy(wp_why, why);
  }
  why[0] = 0; copy = rounds(copy_ns); copy1 = copy < 0 ? -1 : rounds(copy_each_ns); strcpy(copy_why, why);
  why[0] = 0; zero = rounds(zeropage_ns); strcpy(zero_why, why);
  why[0] = 0; fault = rounds(round_trip_ns); strcpy(fault_why, why);
  alarm(0);

  printf("{\"kernel\":\"%s\",\"opened\":\"%s\",\"features\":\"0x%llx\",\"moveOffered\":%s",
         u.release, how, (unsigned long long)offered, offered & UFFD_FEATURE_MOVE ? "true" : "false");
  field("movePageNs", move4k);
  reason("movePageReason", move4k < 0 ? move_why : 0);
  field("moveThpNs", movethp);
  printf(",\"moveThpWholePmd\":%s", thp_moved < 0 ? "null" : thp_moved ? "true" : "false");
  reason("moveThpReason", movethp < 0 ? thp_why : 0);
  field("wpOnPageNs", wpon);
  field("wpOffPageNs", wpoff);
  reason("wpReason", wpon < 0 ? wp_why : 0);
  field("copyPageNs", copy);
  field("copyOnePageIoctlNs", copy1);
  reason("copyReason", copy < 0 || copy1 < 0 ? copy_why : 0);
  field("zeropagePageNs", zero);
  reason("zeropageReason", zero < 0 ? zero_why : 0);
  field("missingFaultRoundTripNs", fault);
  reason("missingFaultReason", fault < 0 ? fault_why : 0);
  printf("}\n");
  return 0;
}
