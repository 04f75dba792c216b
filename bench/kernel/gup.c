/*
 * The real kernel's cost of the GUP users and the swap paths cowsim models, on the machine it
 * runs on: vmsplice() of resident anonymous pages into a pipe (get_user_pages_fast(), batched
 * VMSPLICE_PAGES a call into a pipe made that large with F_SETPIPE_SZ), io_uring fixed-buffer registration
 * (io_sqe_buffers_register() → pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM)) per MiB, and,
 * when a swap device is active, MADV_PAGEOUT and swap-in faults per page. Prints one JSON
 * object; a figure this machine cannot measure is null.
 *
 *   npm run bench:kernel -- gup
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGES 8192 /* 32 MiB per round */
#define ROUNDS 7
#define PS 4096UL

static char *populated(size_t len) {
  char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  madvise(p, len, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < len; i += PS) p[i] = (char)(i / PS + 1);
  return p;
}

#define VMSPLICE_PAGES 256UL /* 1 MiB: the default /proc/sys/fs/pipe-max-size */

/* ns per page for vmsplice of VMSPLICE_PAGES at a time; the pipe is drained (untimed) between calls */
static double vmsplice_ns(void) {
  size_t len = PAGES * PS;
  char *p = populated(len);
  int fd[2], null = open("/dev/null", O_WRONLY);
  if (!p || pipe(fd) || null < 0) return -1;
  const size_t batch = fcntl(fd[1], F_SETPIPE_SZ, VMSPLICE_PAGES * PS) >= (int)(VMSPLICE_PAGES * PS) ? VMSPLICE_PAGES * PS : 16 * PS;
  double spent = 0;
  for (size_t off = 0; off < len; off += batch) {
    struct iovec iov = { p + off, batch };
    double t0 = now();
    if (vmsplice(fd[1], &iov, 1, 0) != (ssize_t)batch) return -1;
    spent += now() - t0;
    for (size_t left = batch; left;) {
      ssize_t n = splice(fd[0], 0, null, 0, left, 0);
      if (n <= 0) return -1;
      left -= (size_t)n;
    }
  }
  close(fd[0]); close(fd[1]); close(null);
  munmap(p, len);
  return spent / PAGES;
}

/* µs per MiB registered as io_uring fixed buffers (1 MiB iovecs), unregistering untimed */
static double io_uring_us_per_mib(void) {
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  int ring = (int)syscall(SYS_io_uring_setup, 8, &params);
  if (ring < 0) return -1;
  const size_t mib = 1 << 20, n = PAGES * PS / mib;
  char *p = populated(n * mib);
  struct iovec iov[PAGES * PS / (1 << 20)];
  for (size_t i = 0; i < n; i++) { iov[i].iov_base = p + i * mib; iov[i].iov_len = mib; }
  double t0 = now();
  if (syscall(SYS_io_uring_register, ring, IORING_REGISTER_BUFFERS, iov, (unsigned)n) < 0) { close(ring); return -1; }
  double spent = now() - t0;
  syscall(SYS_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, 0, 0);
  close(ring);
  munmap(p, n * mib);
  return spent / 1e3 / n;
}

/* ns per page for MADV_PAGEOUT of resident pages, then per swap-in read fault; <0 without swap */
static void swap_ns(double *pageout, double *swapin) {
  size_t len = PAGES * PS;
  char *p = populated(len);
  unsigned char *vec = malloc(PAGES);
  *pageout = *swapin = -1;
  if (!p || !vec) return;
  double t0 = now();
  madvise(p, len, MADV_PAGEOUT);
  double out = now() - t0;
  mincore(p, len, vec);
  size_t gone = 0;
  for (size_t i = 0; i < PAGES; i++) gone += !(vec[i] & 1);
  if (gone > PAGES / 2) {
    *pageout = out / gone;
    volatile char s = 0;
    t0 = now();
    for (size_t i = 0; i < len; i += PS) s += p[i];
    *swapin = (now() - t0) / gone;
  }
  free(vec);
  munmap(p, len);
}

static void field(const char *name, double v, const char *sep) {
  if (v < 0) printf("\"%s\":null%s", name, sep); else printf("\"%s\":%.1f%s", name, v, sep);
}

int main(void) {
  double vs[ROUNDS], io[ROUNDS], po[ROUNDS], si[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    vs[r] = vmsplice_ns();
    io[r] = io_uring_us_per_mib();
    swap_ns(&po[r], &si[r]);
  }
  printf("{");
  field("vmspliceNsPerPage", median(vs, ROUNDS), ",");
  field("ioUringRegisterUsPerMiB", median(io, ROUNDS), ",");
  field("pageoutNsPerPage", median(po, ROUNDS), ",");
  field("swapinNsPerPage", median(si, ROUNDS), "}\n");
  return 0;
}
