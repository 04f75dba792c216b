/*
 * What the C benchmarks of the real kernel share: a monotonic clock in ns, the median of a
 * round's figures, and /proc/vmstat counters. Included by each program (bench/kernel/run.mjs
 * compiles them one by one); everything is static inline, so a program that uses only some of
 * it compiles without warnings.
 */
#ifndef COWSIM_BENCH_H
#define COWSIM_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CLOCK_MONOTONIC, in ns */
static inline double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* the median of v[0..n) (sorts v) */
static inline double median(double *v, int n) { qsort(v, n, sizeof *v, cmp_double); return v[n / 2]; }

/* a /proc/vmstat counter, or -1 */
static inline long vmstat(const char *name) {
  FILE *f = fopen("/proc/vmstat", "r");
  char key[64];
  long v, out = -1;
  if (!f) return -1;
  while (fscanf(f, "%63s %ld", key, &v) == 2) if (!strcmp(key, name)) { out = v; break; }
  fclose(f);
  return out;
}

#endif
