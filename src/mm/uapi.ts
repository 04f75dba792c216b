/**
 * The user-visible constants of the syscalls cowsim models, with Linux's values
 * (include/uapi/asm-generic/mman-common.h, include/uapi/linux/mman.h).
 * @public
 */
/** PROT_NONE: no access (mprotect, mmap). */
export const PROT_NONE = 0x0;
/** PROT_READ: pages may be read. */
export const PROT_READ = 0x1;
/** PROT_WRITE: pages may be written. */
export const PROT_WRITE = 0x2;
/** PROT_EXEC: pages may be executed (a VMA flag here: nothing runs). */
export const PROT_EXEC = 0x4;

/** MAP_SHARED: changes are shared with every mapper (and fork's children). */
export const MAP_SHARED = 0x01;
/** MAP_PRIVATE: a private copy-on-write mapping. */
export const MAP_PRIVATE = 0x02;
/** MAP_FIXED: exactly at the address, replacing what is there. */
export const MAP_FIXED = 0x10;
/** MAP_ANONYMOUS: memory with no file behind it (the only kind cowsim has). */
export const MAP_ANONYMOUS = 0x20;
/** MAP_NORESERVE: no swap reservation (accepted; cowsim does not account commit). */
export const MAP_NORESERVE = 0x4000;
/** MAP_POPULATE: fault every page in at once (mm_populate(), errors ignored). */
export const MAP_POPULATE = 0x8000;
/** MAP_FIXED_NOREPLACE: exactly at the address, EEXIST if something is there. */
export const MAP_FIXED_NOREPLACE = 0x100000;

/** MADV_NORMAL: no special treatment. */
export const MADV_NORMAL = 0;
/** MADV_RANDOM: expect random access (a VMA flag). */
export const MADV_RANDOM = 1;
/** MADV_SEQUENTIAL: expect sequential access (a VMA flag). */
export const MADV_SEQUENTIAL = 2;
/** MADV_WILLNEED: will need these pages soon (no readahead here: nothing to do). */
export const MADV_WILLNEED = 3;
/** MADV_DONTNEED: zap the range: private pages read zero again. */
export const MADV_DONTNEED = 4;
/** MADV_DONTFORK: fork leaves the range out of the child (VM_DONTCOPY). */
export const MADV_DONTFORK = 10;
/** MADV_DOFORK: undo MADV_DONTFORK. */
export const MADV_DOFORK = 11;
/** MADV_WIPEONFORK: the child gets the range zero-filled (VM_WIPEONFORK). */
export const MADV_WIPEONFORK = 18;
/** MADV_KEEPONFORK: undo MADV_WIPEONFORK. */
export const MADV_KEEPONFORK = 19;
/** MADV_HUGEPAGE: worth backing with huge pages (VM_HUGEPAGE). */
export const MADV_HUGEPAGE = 14;
/** MADV_NOHUGEPAGE: not worth backing with huge pages (VM_NOHUGEPAGE). */
export const MADV_NOHUGEPAGE = 15;
/** MADV_COLD: deactivate the pages (no active/inactive lists here: nothing to do). */
export const MADV_COLD = 20;
/** MADV_PAGEOUT: reclaim the pages now (reclaim_pages(): swapped out). */
export const MADV_PAGEOUT = 21;
/** MADV_POPULATE_READ: fault the pages in for reading (ENOMEM, EFAULT … on failure). */
export const MADV_POPULATE_READ = 22;
/** MADV_POPULATE_WRITE: fault the pages in for writing, breaking COW. */
export const MADV_POPULATE_WRITE = 23;
/** MADV_HWPOISON: poison the pages, as a memory error would (madvise_inject_error(), CAP_SYS_ADMIN in Linux). */
export const MADV_HWPOISON = 100;
/** MADV_COLLAPSE: collapse the range into PMD-mapped THPs now (madvise_collapse()). */
export const MADV_COLLAPSE = 25;

/** MADV_REMOVE: free the range's pages and backing store (madvise_remove(): a hole punched in the shared file). */
export const MADV_REMOVE = 9;

/** MFD_CLOEXEC: memfd_create()'s descriptor closes on exec (accepted; there is no exec). */
export const MFD_CLOEXEC = 0x1;
/** MFD_ALLOW_SEALING: seals may be added (accepted; no seal is modelled). */
export const MFD_ALLOW_SEALING = 0x2;
/** MFD_HUGETLB: a hugetlbfs file (refused: not modelled). */
export const MFD_HUGETLB = 0x4;
/** MFD_NOEXEC_SEAL: not executable, sealed so. */
export const MFD_NOEXEC_SEAL = 0x8;
/** MFD_EXEC: executable (excludes MFD_NOEXEC_SEAL). */
export const MFD_EXEC = 0x10;
/** memfd_create()'s longest name: NAME_MAX less the "memfd:" prefix. */
export const MFD_NAME_MAX_LEN = 255 - 6;

/** FALLOC_FL_KEEP_SIZE: fallocate() leaves i_size as it is. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
/** FALLOC_FL_PUNCH_HOLE: fallocate() frees the range (with FALLOC_FL_KEEP_SIZE). */
export const FALLOC_FL_PUNCH_HOLE = 0x02;
/** FALLOC_FL_COLLAPSE_RANGE: remove the range, shifting the rest (EOPNOTSUPP on shmem). */
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
/** FALLOC_FL_ZERO_RANGE: zero the range (EOPNOTSUPP on shmem). */
export const FALLOC_FL_ZERO_RANGE = 0x10;
/** FALLOC_FL_INSERT_RANGE: insert a hole, shifting the rest (EOPNOTSUPP on shmem). */
export const FALLOC_FL_INSERT_RANGE = 0x20;
/** FALLOC_FL_UNSHARE_RANGE: unshare shared blocks (EOPNOTSUPP on shmem). */
export const FALLOC_FL_UNSHARE_RANGE = 0x40;

/** MREMAP_MAYMOVE: the mapping may move to grow. */
export const MREMAP_MAYMOVE = 1;
/** MREMAP_FIXED: move to exactly the new address. */
export const MREMAP_FIXED = 2;
/** MREMAP_DONTUNMAP: move the pages, leave the old range mapped and empty. */
export const MREMAP_DONTUNMAP = 4;

/** PAGE_SIZE: bytes per page (4 KiB base pages). */
export const PAGE_SIZE = 4096;
/** TASK_SIZE of x86-64 with 4-level paging: the top of user space. */
export const TASK_SIZE = 2 ** 47 - PAGE_SIZE;
/** Where top-down mmap() starts looking (no ASLR): just below a 128 MiB stack gap. */
export const MMAP_BASE = 0x7ffff7fff000;
/** sysctl vm.max_map_count */
export const DEFAULT_MAX_MAP_COUNT = 65530;

/** Names for messages and traces. */
export const MADV_NAMES: Record<number, string> = {
  [MADV_NORMAL]: "MADV_NORMAL", [MADV_RANDOM]: "MADV_RANDOM", [MADV_SEQUENTIAL]: "MADV_SEQUENTIAL",
  [MADV_WILLNEED]: "MADV_WILLNEED", [MADV_DONTNEED]: "MADV_DONTNEED", [MADV_DONTFORK]: "MADV_DONTFORK",
  [MADV_DOFORK]: "MADV_DOFORK", [MADV_WIPEONFORK]: "MADV_WIPEONFORK", [MADV_KEEPONFORK]: "MADV_KEEPONFORK",
  [MADV_HUGEPAGE]: "MADV_HUGEPAGE", [MADV_NOHUGEPAGE]: "MADV_NOHUGEPAGE", [MADV_COLD]: "MADV_COLD", [MADV_PAGEOUT]: "MADV_PAGEOUT", [MADV_POPULATE_READ]: "MADV_POPULATE_READ", [MADV_POPULATE_WRITE]: "MADV_POPULATE_WRITE", [MADV_COLLAPSE]: "MADV_COLLAPSE",
  [MADV_HWPOISON]: "MADV_HWPOISON", [MADV_REMOVE]: "MADV_REMOVE",
};
