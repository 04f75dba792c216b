/**
 * The user-visible constants of userfaultfd (include/uapi/linux/userfaultfd.h, Linux 6.12, and
 * userfaultfd(2)'s flags), defined once: the kernel layer uses them, the facade and the package
 * re-export them.
 * @public
 */

// UFFDIO_API features (include/uapi/linux/userfaultfd.h, Linux 6.12)
/** The API version UFFDIO_API must name. */
export const UFFD_API = 0xaa;
/** Page-fault messages of uffd-wp faults carry UFFD_PAGEFAULT_FLAG_WP (always on in 6.12). */
export const UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0;
/** fork() keeps registrations in the child, with a new userfaultfd read as UFFD_EVENT_FORK. */
export const UFFD_FEATURE_EVENT_FORK = 1 << 1;
/** mremap() of a registered range keeps it registered and says so with UFFD_EVENT_REMAP. */
export const UFFD_FEATURE_EVENT_REMAP = 1 << 2;
/** MADV_DONTNEED / MADV_REMOVE of a registered range is told as UFFD_EVENT_REMOVE. */
export const UFFD_FEATURE_EVENT_REMOVE = 1 << 3;
/** Missing faults on hugetlbfs (hugetlbfs is not modelled; the bit is accepted). */
export const UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4;
/** Missing faults on shmem (always available in 6.12). */
export const UFFD_FEATURE_MISSING_SHMEM = 1 << 5;
/** munmap() of a registered range is told as UFFD_EVENT_UNMAP. */
export const UFFD_FEATURE_EVENT_UNMAP = 1 << 6;
/** A fault in a registered range is SIGBUS instead of a message. */
export const UFFD_FEATURE_SIGBUS = 1 << 7;
/** Page-fault messages carry the faulting thread's id (ptid). */
export const UFFD_FEATURE_THREAD_ID = 1 << 8;
/** Minor faults on hugetlbfs (accepted, not modelled). */
export const UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9;
/** Minor faults on shmem: a page already in the page cache, not yet mapped here. */
export const UFFD_FEATURE_MINOR_SHMEM = 1 << 10;
/** Page-fault messages carry the exact faulting address, not the page's. */
export const UFFD_FEATURE_EXACT_ADDRESS = 1 << 11;
/** uffd-wp on shmem (and hugetlbfs), kept across zaps by PTE markers. */
export const UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12;
/** uffd-wp of anonymous memory also protects none PTEs, with uffd-wp markers. */
export const UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
/** UFFDIO_POISON is available. */
export const UFFD_FEATURE_POISON = 1 << 14;
/** uffd-wp faults resolve themselves: the bit is cleared, no message (implies WP_UNPOPULATED). */
export const UFFD_FEATURE_WP_ASYNC = 1 << 15;
/** UFFDIO_MOVE is available (Linux 6.8). */
export const UFFD_FEATURE_MOVE = 1 << 16;

/** Every feature Linux 6.12 offers on x86-64 (UFFD_API_FEATURES). */
export const UFFD_API_FEATURES = (1 << 17) - 1;

// userfaultfd(2) flags: O_CLOEXEC and O_NONBLOCK (UFFD_SHARED_FCNTL_FLAGS) and UFFD_USER_MODE_ONLY
/** userfaultfd(2) flag: read() fails with EAGAIN when empty. */
export const O_NONBLOCK = 0o4000;
/** userfaultfd(2) flag: close on exec (accepted; exec is not modelled). */
export const O_CLOEXEC = 0o2000000;
/** userfaultfd(2) flag: only faults from user mode are handled. */
export const UFFD_USER_MODE_ONLY = 1;

// uffd_msg events and page-fault flags
/** uffd_msg.event of a page fault. */
export const UFFD_EVENT_PAGEFAULT = 0x12;
/** uffd_msg.event of a fork (EVENT_FORK). */
export const UFFD_EVENT_FORK = 0x13;
/** uffd_msg.event of an mremap() (EVENT_REMAP). */
export const UFFD_EVENT_REMAP = 0x14;
/** uffd_msg.event of MADV_DONTNEED / MADV_REMOVE (EVENT_REMOVE). */
export const UFFD_EVENT_REMOVE = 0x15;
/** uffd_msg.event of a munmap() (EVENT_UNMAP). */
export const UFFD_EVENT_UNMAP = 0x16;
/** The fault was a write. */
export const UFFD_PAGEFAULT_FLAG_WRITE = 1 << 0;
/** The fault was a write to a uffd-wp-protected page. */
export const UFFD_PAGEFAULT_FLAG_WP = 1 << 1;
/** The fault was a minor fault (the page is in the page cache). */
export const UFFD_PAGEFAULT_FLAG_MINOR = 1 << 2;

// UFFDIO_REGISTER modes
/** Register for missing faults (no page there yet). */
export const UFFDIO_REGISTER_MODE_MISSING = 1 << 0;
/** Register for uffd-wp faults (writes to protected pages). */
export const UFFDIO_REGISTER_MODE_WP = 1 << 1;
/** Register for minor faults (shmem pages in the page cache, not mapped). */
export const UFFDIO_REGISTER_MODE_MINOR = 1 << 2;

/** Every registration mode. */
export const UFFD_API_REGISTER_MODES = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MINOR;

// the ioctls' modes
/** UFFDIO_COPY: do not wake the faults of the range. */
export const UFFDIO_COPY_MODE_DONTWAKE = 1 << 0;
/** UFFDIO_COPY: map the pages uffd-wp-protected. */
export const UFFDIO_COPY_MODE_WP = 1 << 1;
/** UFFDIO_ZEROPAGE: do not wake the faults of the range. */
export const UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1 << 0;
/** UFFDIO_WRITEPROTECT: protect (without it: resolve). */
export const UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0;
/** UFFDIO_WRITEPROTECT: when resolving, do not wake the faults of the range. */
export const UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1 << 1;
/** UFFDIO_CONTINUE: do not wake the faults of the range. */
export const UFFDIO_CONTINUE_MODE_DONTWAKE = 1 << 0;
/** UFFDIO_CONTINUE: map the pages uffd-wp-protected. */
export const UFFDIO_CONTINUE_MODE_WP = 1 << 1;
/** UFFDIO_POISON: do not wake the faults of the range. */
export const UFFDIO_POISON_MODE_DONTWAKE = 1 << 0;

/** The ioctls UFFDIO_API reports (UFFD_API_IOCTLS), by name. */
export const UFFD_API_IOCTLS = ["UFFDIO_REGISTER", "UFFDIO_UNREGISTER", "UFFDIO_API"] as const;
/** The range ioctls UFFDIO_REGISTER reports (UFFD_API_RANGE_IOCTLS; without WRITEPROTECT and CONTINUE unless those modes), by name. */
export const UFFD_API_RANGE_IOCTLS = [
  "UFFDIO_WAKE", "UFFDIO_COPY", "UFFDIO_ZEROPAGE", "UFFDIO_MOVE", "UFFDIO_WRITEPROTECT", "UFFDIO_CONTINUE", "UFFDIO_POISON",
] as const;

/** UFFDIO_MOVE: do not wake the faults of the destination range. */
export const UFFDIO_MOVE_MODE_DONTWAKE = 1 << 0;
/** UFFDIO_MOVE: skip holes in the source instead of failing with ENOENT. */
export const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES = 1 << 1;
