/**
 * userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c, include/uapi/linux/userfaultfd.h): a file
 * per mm through which a handler is told of faults in registered ranges — missing pages,
 * writes to uffd-wp-protected pages, minor faults of shmem pages already in the page cache —
 * and resolves them with ioctls (UFFDIO_COPY, ZEROPAGE, CONTINUE, WRITEPROTECT, POISON, MOVE,
 * WAKE). A fault in a registered range blocks on the context's wait queue (handle_userfault())
 * until the handler resolves it and wakes it.
 */
import type { MmProcess } from "./process.js";

// UFFDIO_API features (include/uapi/linux/userfaultfd.h, Linux 6.12)
export const UFFD_API = 0xaa;
export const UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0;
export const UFFD_FEATURE_EVENT_FORK = 1 << 1;
export const UFFD_FEATURE_EVENT_REMAP = 1 << 2;
export const UFFD_FEATURE_EVENT_REMOVE = 1 << 3;
export const UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4;
export const UFFD_FEATURE_MISSING_SHMEM = 1 << 5;
export const UFFD_FEATURE_EVENT_UNMAP = 1 << 6;
export const UFFD_FEATURE_SIGBUS = 1 << 7;
export const UFFD_FEATURE_THREAD_ID = 1 << 8;
export const UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9;
export const UFFD_FEATURE_MINOR_SHMEM = 1 << 10;
export const UFFD_FEATURE_EXACT_ADDRESS = 1 << 11;
export const UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12;
export const UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
export const UFFD_FEATURE_POISON = 1 << 14;
export const UFFD_FEATURE_WP_ASYNC = 1 << 15;
export const UFFD_FEATURE_MOVE = 1 << 16;

// UFFDIO_REGISTER modes
export const UFFDIO_REGISTER_MODE_MISSING = 1 << 0;
export const UFFDIO_REGISTER_MODE_WP = 1 << 1;
export const UFFDIO_REGISTER_MODE_MINOR = 1 << 2;

// UFFDIO_MOVE modes
export const UFFDIO_MOVE_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES = 1 << 1;

/**
 * struct userfaultfd_ctx: one userfaultfd of one mm. (Its API, its fault queue and its ioctls
 * are being built; UFFDIO_MOVE lives in userfaultfd_move.ts.)
 */
export class UserfaultfdCtx {
  /** UFFDIO_API has been done (UFFD_FEATURE_INITIALIZED). */
  initialized = false;
  /** The features UFFDIO_API enabled. */
  features = 0;
  /**
   * ctx->mmap_changing: a non-cooperative event (fork, mremap, MADV_DONTNEED/REMOVE, munmap)
   * has been queued and not yet read: mfill and move ioctls fail with EAGAIN meanwhile.
   */
  mmapChanging = false;
  /** Released (close()): the registrations are gone, faults no longer wait. */
  released = false;

  constructor(
    /** ctx->mm: the address space it serves. */
    readonly process: MmProcess,
    readonly id: number,
  ) {}
}
