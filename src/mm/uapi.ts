/**
 * The user-visible constants of the syscalls cowsim models, with Linux's values
 * (include/uapi/asm-generic/mman-common.h, include/uapi/linux/mman.h).
 * @public
 */
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_FIXED_NOREPLACE = 0x100000;

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

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
  [MADV_COLD]: "MADV_COLD", [MADV_PAGEOUT]: "MADV_PAGEOUT", [MADV_POPULATE_READ]: "MADV_POPULATE_READ", [MADV_POPULATE_WRITE]: "MADV_POPULATE_WRITE",
};
