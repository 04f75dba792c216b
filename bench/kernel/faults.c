/*
 * The real kernel's cost of the faults cowsim models, on the machine it runs on:
 * first-touch write faults, COW faults, reuse faults, zero-page read faults, and fork of a
 * process with 1 GiB populated (THP off, 4 KiB pages). Prints one JSON object.
 *
 *   npm run bench:kernel
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "bench.h"

#define PAGES (32 * 1024) /* 128 MiB per round */
#define ROUNDS 7

int main(void) {
  const size_t ps = 4096, len = (size_t)PAGES * ps;
  double first[ROUNDS], cow[ROUNDS], reuse[ROUNDS], zero[ROUNDS], fork1g[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(p, len, MADV_NOHUGEPAGE);
    double t0 = now();
    for (size_t i = 0; i < len; i += ps) p[i] = 1;
    first[r] = (now() - t0) / PAGES;

    char *z = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(z, len, MADV_NOHUGEPAGE);
    volatile char s = 0;
    t0 = now();
    for (size_t i = 0; i < len; i += ps) s += z[i];
    zero[r] = (now() - t0) / PAGES;
    munmap(z, len);

    int fd[2];
    if (pipe(fd)) return 1;
    pid_t c = fork();
    if (!c) { char b; if (read(fd[0], &b, 1) < 0) _exit(1); _exit(0); }
    t0 = now();
    for (size_t i = 0; i < len; i += ps) p[i] = 2;
    cow[r] = (now() - t0) / PAGES;
    if (write(fd[1], "x", 1) < 0) return 1;
    waitpid(c, 0, 0);
    close(fd[0]);
    close(fd[1]);

    c = fork();
    if (!c) _exit(0);
    waitpid(c, 0, 0);
    t0 = now();
    for (size_t i = 0; i < len; i += ps) p[i] = 3;
    reuse[r] = (now() - t0) / PAGES;
    munmap(p, len);
  }
  size_t gl = 1UL << 30;
  char *g = mmap(0, gl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(g, gl, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < gl; i += ps) g[i] = 1;
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now();
    pid_t c = fork();
    if (!c) _exit(0);
    fork1g[r] = (now() - t0) / 1e6;
    waitpid(c, 0, 0);
  }
  printf("{\"firstTouchNs\":%.0f,\"cowFaultNs\":%.0f,\"reuseFaultNs\":%.0f,\"zeroPageFaultNs\":%.0f,\"fork1GiBMs\":%.1f}\n",
         median(first, ROUNDS), median(cow, ROUNDS), median(reuse, ROUNDS), median(zero, ROUNDS), median(fork1g, ROUNDS));
  return 0;
}
