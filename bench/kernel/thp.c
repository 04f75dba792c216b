/*
 * The real kernel's cost of the PMD-mapped THP paths cowsim models, on the machine it runs on:
 * fork of a process with 1 GiB of PMD-mapped THPs (copy_huge_pmd()), the first write to a
 * 2 MiB THP (do_huge_pmd_anonymous_page()), the first write to a THP fork shared
 * (do_huge_pmd_wp_page(): __split_huge_pmd() and a copy of the one subpage), MADV_COLLAPSE of
 * 2 MiB of base pages (madvise_collapse()), and move_pages(2) of a 4 KiB page and of a THP.
 * Each region is 2 MiB-aligned and MADV_HUGEPAGE, so the sysfs "madvise" setting is enough.
 * Prints one JSON object; a figure this machine cannot measure is null, and why goes to stderr:
 * THP "never", a kernel that gave no THP (counted by /proc/vmstat's thp_fault_alloc,
 * thp_split_pmd and thp_collapse_alloc, and smaps' AnonHugePages), or a single NUMA node —
 * move_pages() to the node a page is on leaves it where it is (add_page_for_migration()), and
 * no other call migrates one chosen page to a new frame without poisoning the old one.
 *
 *   npm run bench:kernel -- thp
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define MPOL_MF_MOVE (1 << 1)

#define PS 4096UL
#define HPAGE (2UL << 20)
#define THPS 64 /* 128 MiB of THPs per round */
#define PAGES 8192 /* 32 MiB of base pages per migration round */
#define ROUNDS 7

/* AnonHugePages of this process, in kB (smaps_rollup) */
static long anon_huge_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
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

/* µs per THP of the first write to each of THPS fresh THPs; <0 when the kernel gave none */
static double first_touch_us(void) {
  size_t len = THPS * HPAGE;
  char *p = aligned(len, MADV_HUGEPAGE);
  if (!p) return -1;
  long before = vmstat("thp_fault_alloc");
  double t0 = now();
  touch(p, len, HPAGE, 1);
  double spent = now() - t0;
  long got = vmstat("thp_fault_alloc") - before;
  munmap(p, len);
  return got >= THPS ? spent / 1e3 / THPS : -1;
}

/* µs per THP of the parent's first write to each THP it shares with a child; <0 without splits */
static double shared_write_us(void) {
  size_t len = THPS * HPAGE;
  char *p = aligned(len, MADV_HUGEPAGE);
  int fd[2];
  if (!p || pipe(fd)) return -1;
  touch(p, len, HPAGE, 1);
  if (anon_huge_kb() < (long)(len >> 10)) { munmap(p, len); return -1; }
  pid_t c = fork();
  if (!c) { char b; if (read(fd[0], &b, 1) < 0) _exit(1); _exit(0); }
  long before = vmstat("thp_split_pmd");
  double t0 = now();
  touch(p, len, HPAGE, 2);
  double spent = now() - t0;
  long split = vmstat("thp_split_pmd") - before;
  if (write(fd[1], "x", 1) < 0) return -1;
  waitpid(c, 0, 0);
  close(fd[0]);
  close(fd[1]);
  munmap(p, len);
  return split >= THPS ? spent / 1e3 / THPS : -1;
}

/* µs per 2 MiB of MADV_COLLAPSE over THPS ranges of 512 resident base pages; <0 when it failed */
static double collapse_us(void) {
  size_t len = THPS * HPAGE;
  char *p = aligned(len, MADV_NOHUGEPAGE);
  if (!p) return -1;
  touch(p, len, PS, 1);
  madvise(p, len, MADV_HUGEPAGE);
  long before = vmstat("thp_collapse_alloc");
  double t0 = now();
  int r = madvise(p, len, MADV_COLLAPSE);
  double spent = now() - t0;
  long got = vmstat("thp_collapse_alloc") - before;
  munmap(p, len);
  return r == 0 && got >= THPS ? spent / 1e3 / THPS : -1;
}

/* a node other than the one `p` is on, or -1 on a single-node machine */
static int other_node(char *p) {
  void *page = p;
  int status = -1;
  if (syscall(SYS_move_pages, 0, 1UL, &page, 0, &status, 0) || status < 0) return -1;
  for (int n = 0; n < 64; n++) {
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/meminfo", n);
    if (n != status && !access(path, R_OK)) return n;
  }
  return -1;
}

/* ns per page (step PS) or µs per THP (step HPAGE) of move_pages() to another node; <0 without one */
static double move_pages_to_other_node(size_t step) {
  size_t len = step == PS ? PAGES * PS : THPS * HPAGE, n = len / step;
  char *p = aligned(len, step == PS ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
  void **pages = malloc(n * sizeof *pages);
  int *nodes = malloc(n * sizeof *nodes), *status = malloc(n * sizeof *status);
  double out = -1;
  if (!p || !pages || !nodes || !status) return -1;
  touch(p, len, PS, 1);
  int node = other_node(p);
  if (node >= 0 && (step == PS || anon_huge_kb() >= (long)(len >> 10))) {
    for (size_t i = 0; i < n; i++) { pages[i] = p + i * step; nodes[i] = node; }
    double t0 = now();
    long r = syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE);
    double spent = now() - t0;
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) moved += status[i] == node;
    if (r == 0 && moved == n) out = step == PS ? spent / n : spent / 1e3 / n;
  }
  free(pages); free(nodes); free(status);
  munmap(p, len);
  return out;
}

/* ms for fork() of a process with 1 GiB of PMD-mapped THPs; <0 when the kernel gave fewer */
static double fork_1g_ms(double *v) {
  size_t len = 1UL << 30;
  char *g = aligned(len, MADV_HUGEPAGE);
  if (!g) return -1;
  touch(g, len, HPAGE, 1);
  long kb = anon_huge_kb();
  if (kb < (long)(len >> 10)) { munmap(g, len); fprintf(stderr, "bench:kernel thp: fork: %ld of 1048576 kB in THPs\n", kb); return -1; }
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now();
    pid_t c = fork();
    if (!c) _exit(0);
    v[r] = (now() - t0) / 1e6;
    waitpid(c, 0, 0);
  }
  munmap(g, len);
  return median(v, ROUNDS);
}

static int thp_never(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  char s[128] = "";
  if (!f) return 1;
  if (!fgets(s, sizeof s, f)) s[0] = 0;
  fclose(f);
  return !strstr(s, "[always]") && !strstr(s, "[madvise]");
}

static void field(const char *name, double v, const char *sep) {
  if (v < 0) printf("\"%s\":null%s", name, sep); else printf("\"%s\":%.2f%s", name, v, sep);
}

/* the median of ROUNDS, or -1 when any round could not measure */
static double rounds(double (*f)(void), const char *what) {
  double v[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) if ((v[r] = f()) < 0) { fprintf(stderr, "bench:kernel thp: %s: not measured here\n", what); return -1; }
  return median(v, ROUNDS);
}
static double page_move(void) { return move_pages_to_other_node(PS); }
static double thp_move(void) { return move_pages_to_other_node(HPAGE); }

int main(void) {
  double fv[ROUNDS], fork1g = -1, first = -1, shared = -1, collapse = -1, mig4k, migthp;
  if (thp_never()) {
    fprintf(stderr, "bench:kernel thp: transparent_hugepage/enabled is never here: no THP figures\n");
  } else {
    first = rounds(first_touch_us, "first touch of a THP (no thp_fault_alloc)");
    shared = rounds(shared_write_us, "first write to a shared THP (no thp_split_pmd)");
    collapse = rounds(collapse_us, "MADV_COLLAPSE (no thp_collapse_alloc)");
    fork1g = fork_1g_ms(fv);
  }
  mig4k = rounds(page_move, "move_pages of a 4 KiB page (one NUMA node: nowhere to move to)");
  migthp = thp_never() ? -1 : rounds(thp_move, "move_pages of a THP (one NUMA node: nowhere to move to)");
  printf("{");
  field("forkThp1GiBMs", fork1g, ",");
  field("thpFirstTouchUs", first, ",");
  field("thpSharedWriteUs", shared, ",");
  field("collapseUsPer2MiB", collapse, ",");
  field("migratePageNs", mig4k, ",");
  field("migrateThpUs", migthp, "}\n");
  return 0;
}
