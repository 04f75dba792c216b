/**
 * The JSON Schema of scenario files (draft 2020-12), published by `cowsim schema` so editors can
 * complete and check scenarios. Validation runs it through Ajv; whatever the schema cannot say
 * (names used before they are defined, addresses that name no range) is checked by resolve.ts.
 */
import { UFFD_API_RANGE_IOCTLS } from "../kernel.js";
import { COUNTER_DESCRIPTIONS } from "../kernel.js";
import { MADV_NAMES, PAGE_SIZE } from "../kernel.js";
import { KERNEL_OPTION_LIMITS as L, formatSize, THP_SIZE_ORDERS } from "../kernel.js";
import { ERRNO } from "../errno.js";
import { GUP_FAST_REASONS } from "../kernel.js";

/**
 * Numbers stay below 2^53: beyond it a JavaScript number is no longer exact, and an address, a
 * length or a count of pages that silently rounds would run another scenario than the file's.
 */
const MAX = Number.MAX_SAFE_INTEGER;
/** Pages of 4 KiB whose bytes stay below 2^53. */
export const MAX_PAGES = Math.floor(MAX / PAGE_SIZE);

const id = { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_-]*$", description: "a name: letters, digits, _ and -" };
/** Runs may carry a version in their name ("mapcount-5.8"). */
const runName = { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_.-]*$", description: "a run's name: letters, digits, _, - and ." };

/** `buf`, `buf+4096`, `buf[3]` (its fourth page), `buf[3]+0x10`, or an absolute address. */
const address = {
  description: "a range name (`buf`), a page of it (`buf[3]`), either plus or minus an offset (`buf+4096`, `buf[1]+2K`), or an address (`0x7f0000000000`)",
  oneOf: [
    { type: "integer", minimum: 0, maximum: MAX },
    { type: "string", pattern: "^(0x[0-9a-fA-F]+|[A-Za-z_][A-Za-z0-9_-]*(\\[[0-9]+\\])?([+-](0x[0-9a-fA-F]+|[0-9]+[KMG]?))?)$" },
  ],
};
const size = {
  description: "bytes: a number, a size (`8K`, `2M`) or pages (`3 pages`)",
  oneOf: [
    { type: "integer", minimum: 0, maximum: MAX },
    { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?\\s*([KMGT](i?B)?|B)?$|^[0-9]+ pages?$" },
  ],
};
const count = { type: "integer", minimum: 1, maximum: MAX_PAGES };
const value = { type: "integer", minimum: 0, maximum: MAX, description: "a page's value (what reads return)" };
const values = { type: "array", items: value };
const errnos = Object.keys(ERRNO);
/** The statuses move_pages(2) reports a page with (see MigrateStatus). */
const migrateErrnos = ["EFAULT", "ENOENT", "EACCES", "EBUSY", "ENOMEM", "EAGAIN", "ENOSYS"];
/** The statuses the HMM test driver reports a page with (see DeviceStatus). */
const deviceErrnos = ["EBUSY", "ENOENT", "ENOMEM"];
const prot = {
  description: "`none`, letters of `rwx` (`rw`, `r`) or a list of PROT_* names",
  oneOf: [
    { type: "string", pattern: "^(none|r?w?x?)$", minLength: 1 },
    { type: "array", items: { enum: ["PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC"] } },
  ],
};

/** `T`, or `{ all: T, <run>: T }`: one value for every strategy, or per strategy (the run's name). */
const perRun = (of: object, what: string) => ({
  description: `${what}: one for every strategy, or per strategy as { all: …, mapcount: …, pagecount: …, anon-exclusive: … } (a strategy's own entry wins over all)`,
  oneOf: [of, { type: "object", propertyNames: runName, additionalProperties: of, minProperties: 1 }],
});
const expectValue = perRun({ description: "a value (an integer ≥ 0) or a list of values", oneOf: [value, values] }, "what the step must return");
const uffdResult = perRun({
  description: "an integer, or `untouched`: the ioctl failed before writing the field (its own checks: validate_range(), unknown mode bits, a cross-mm call)",
  oneOf: [{ type: "integer" }, { const: "untouched" }],
}, "what the ioctl leaves in its result field (uffdio_copy.copy …): the bytes done, -errno when none, or `untouched`");
/**
 * The UFFD_FEATURE_* names without the prefix, in bit order: name i is feature bit 1 << i
 * (include/uapi/linux/userfaultfd.h). The schema's enum and the runner's feature masks both come
 * from here.
 */
export const UFFD_FEATURE_NAMES: readonly string[] = [
  "PAGEFAULT_FLAG_WP", "EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE", "MISSING_HUGETLBFS", "MISSING_SHMEM", "EVENT_UNMAP",
  "SIGBUS", "THREAD_ID", "MINOR_HUGETLBFS", "MINOR_SHMEM", "EXACT_ADDRESS", "WP_HUGETLBFS_SHMEM", "WP_UNPOPULATED",
  "POISON", "WP_ASYNC", "MOVE",
];
const expectBlocked = perRun({ type: "boolean" }, "whether the access must stand blocked after the step (true) or be done (false)");
const expectError = perRun({ description: "an errno name (ENOMEM, EFAULT …) or null", oneOf: [{ enum: errnos }, { type: "null" }] }, "the errno the step must fail with (null: must succeed)");

const counterNames = Object.keys(COUNTER_DESCRIPTIONS);
export const counters = {
  type: "object",
  description: "exact values of counters (see `cowsim schema` or the README for every name)",
  propertyNames: { enum: counterNames },
  additionalProperties: { type: "integer", minimum: 0, maximum: MAX },
};
export const findingKinds = { enum: ["missed-cow", "unnecessary-cow", "wrong-cow"] };
const outcome = {
  type: "object",
  additionalProperties: false,
  properties: {
    counters,
    findings: { type: "array", items: findingKinds, description: "the oracle's findings, in order, by kind" },
    latentMissedCows: { type: "integer", minimum: 0, maximum: MAX, description: "pages whose contents differ from what their process must see, not yet read" },
    invariants: { const: true, description: "every invariant holds at the end (always checked after every step unless kernel.checkInvariants is false)" },
  },
};

/** One kind of step: its `op`, the fields it needs and those it may have. */
function op(name: string, description: string, required: string[], properties: Record<string, unknown>): object {
  return {
    type: "object",
    description,
    required: ["op", ...required],
    additionalProperties: false,
    properties: {
      op: { const: name },
      comment: { type: "string", description: "why this step is here (shown by explain)" },
      error: expectError,
      ...properties,
    },
  };
}
const proc = { process: { ...id, description: "the process that makes the call (default: the first process)" } };
const range = { addr: address, length: size, pages: count };
const advice = Object.values(MADV_NAMES);
const foll = ["FOLL_GET", "FOLL_PIN", "FOLL_WRITE", "FOLL_LONGTERM", "FOLL_FORCE"];
const page = { type: "integer", minimum: 0, maximum: MAX_PAGES, description: "which page of the handle (default 0)" };
/** GUP-fast's outcomes (GUP_FAST_REASONS' short names). */
const gupReason = perRun({ enum: GUP_FAST_REASONS.map((r) => r.short) }, "why GUP-fast backed off (NOT_PRESENT, PTE_CHANGED, MUST_UNSHARE …), or OK");

export const STEP_SCHEMAS: readonly object[] = [
  op("spawn", "a new process with an empty address space", ["as"], { as: id }),
  op("mmap", "mmap(): anonymous memory, or with `file` a memfd from byte `offset`, named `as`", ["as"], {
    ...proc, as: id, addr: address, length: size, pages: count, prot,
    flags: { type: "array", items: { enum: ["MAP_PRIVATE", "MAP_SHARED", "MAP_ANONYMOUS", "MAP_FIXED", "MAP_FIXED_NOREPLACE", "MAP_POPULATE", "MAP_NORESERVE"] } },
    file: { ...id, description: "a memfd (memfd_create's `as`): map the file, not anonymous memory" },
    offset: { ...size, description: "the file offset of the mapping's first page (page-aligned; default 0)" },
  }),
  op("memfd_create", "memfd_create(): a shmem file of size 0, open, named `as` (the process's descriptor: closed when it exits)", ["as"], {
    ...proc, as: id, name: { type: "string", description: "its name (default: the `as` name)" },
    flags: { type: "array", items: { enum: ["MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB", "MFD_NOEXEC_SEAL", "MFD_EXEC"] } },
  }),
  op("ftruncate", "ftruncate() of a memfd to `length` bytes (or `pages`): shrinking unmaps and frees the pages beyond, private copies too", ["file"], {
    ...proc, file: id, length: size, pages: { type: "integer", minimum: 0, maximum: MAX_PAGES },
  }),
  op("fallocate", "fallocate() of a memfd: `mode` (default FALLOC_FL_PUNCH_HOLE, FALLOC_FL_KEEP_SIZE) over [offset, offset + length)", ["file"], {
    ...proc, file: id, offset: size, length: size, pages: count,
    mode: { type: "array", items: { enum: ["FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE", "FALLOC_FL_COLLAPSE_RANGE", "FALLOC_FL_ZERO_RANGE", "FALLOC_FL_INSERT_RANGE", "FALLOC_FL_UNSHARE_RANGE"] } },
  }),
  op("close", "close() of a memfd: its mappings keep the file", ["file"], { ...proc, file: id }),
  op("munmap", "munmap()", ["addr"], { ...proc, ...range }),
  op("mprotect", "mprotect()", ["addr", "prot"], { ...proc, ...range, prot }),
  op("mremap", "mremap(); `as` names the new range (default: the range `addr` names moves)", ["addr"], {
    ...proc, ...range, newLength: size, newPages: count, newAddr: address, as: id,
    flags: { type: "array", items: { enum: ["MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP"] } },
  }),
  op("madvise", "madvise()", ["addr", "advice"], { ...proc, ...range, advice: { enum: advice } }),
  op("pageout", "madvise(MADV_PAGEOUT): reclaim the range now, swapping it out", ["addr"], { ...proc, ...range }),
  op("fork", "fork(): the child is named `as`", ["as"], { ...proc, as: id }),
  op("exit", "exit()", [], { ...proc }),
  op("read", "a load from one address; with `as`, one that may wait (a fault blocked on a locked folio), named for resume", ["addr"], {
    ...proc, addr: address, expect: expectValue, as: id, blocked: expectBlocked,
  }),
  op("write", "a store of `value` to one address; with `as`, one that may wait, named for resume", ["addr", "value"], {
    ...proc, addr: address, value, as: id, blocked: expectBlocked,
  }),
  op("resume", "resume a blocked access once woken: its fault is taken again (an access not yet woken stays blocked)", ["access"], {
    access: id, expect: expectValue, blocked: expectBlocked,
  }),
  op("lock_folio", "folio_lock() by an actor outside the processes (I/O, migration) of the folio at `addr`: mapped there, or in the swap cache", ["addr", "as"], {
    ...proc, addr: address, as: id,
  }),
  op("unlock_folio", "folio_unlock(): the faults waiting for the lock may be resumed", ["lock"], { lock: id }),
  op("hwpoison", "memory_failure() of the frame behind `addr` (mapped there, or in the swap cache), as a machine check reports it; fails with the errno memory_failure() returns", ["addr"], {
    ...proc, addr: address,
  }),
  op("migrate", "move_pages(2) of the range to new frames (migrate_pages()); `phase: start` stops with the pages under migration entries (named `as`), `phase: finish` ends the `migration` begun so; `expect`: each page's status", [], {
    ...proc, ...range,
    phase: { enum: ["all", "start", "finish"], description: "all (default): the whole migration; start: isolate and unmap, leaving migration entries; finish: the rest, for `migration`" },
    as: id, migration: id,
    all: { type: "boolean", description: "MPOL_MF_MOVE_ALL: pages other processes map too (default false: EACCES)" },
    expect: perRun({ type: "array", items: { enum: [0, 1, ...migrateErrnos] } }, "each page's status: 0 migrated, 1 queued (under migration until finish), or the errno it failed with"),
  }),
  op("dmirror_open", "open() of the HMM test driver's device (lib/test_hmm.c) by the process: a device mirroring it, with `pages` pages of device-private memory (default 16), named `as`", ["as"], {
    ...proc, pages: count, as: id,
  }),
  op("device_migrate", "HMM_DMIRROR_MIGRATE_TO_DEV (`to: device`, the default) or HMM_DMIRROR_MIGRATE_TO_SYS (`to: system`) of the range (a page `buf[3]` alone is one page) by `device`; `expect`: each page's status", ["device", "addr"], {
    device: id, ...range,
    to: { enum: ["device", "system"], description: "device (default): system pages move to device-private memory (migrate_vma_setup() with MIGRATE_VMA_SELECT_SYSTEM); system: the device's pages come back" },
    expect: perRun({ type: "array", items: { oneOf: [{ enum: [0] }, { enum: deviceErrnos }] } }, "each page's status: 0 moved (a hole or the zero page gets a zeroed device page), EBUSY left where it was (pinned, locked, referenced), ENOENT nothing the request selects (a swap entry, a page on the other side already; a hole, to system), ENOMEM no free page on the other side"),
  }),
  op("device_exclusive", "HMM_DMIRROR_EXCLUSIVE: make_device_exclusive_range() of the range by `device` (a page `buf[3]` alone is one page); `expect`: each page's status", ["device", "addr"], {
    device: id, ...range,
    expect: perRun({ type: "array", items: { oneOf: [{ enum: [0] }, { enum: ["EBUSY"] }] } }, "each page's status: 0 exclusive to the device, EBUSY left as it was"),
  }),
  op("device_read", "HMM_DMIRROR_READ of one page: the device reads the process's page at `addr` (its own device page, a page it holds exclusively, or through hmm_range_fault())", ["device", "addr"], {
    device: id, addr: address, expect: expectValue,
  }),
  op("device_write", "HMM_DMIRROR_WRITE of one page: the device writes `value` to the process's page at `addr` (COW broken first by hmm_range_fault())", ["device", "addr", "value"], {
    device: id, addr: address, value,
  }),
  op("dmirror_remove", "the device goes (memunmap_pages()): its pages back to the allocator; EBUSY while any is in use", ["device"], { device: id }),
  op("clear_soft_dirty", "echo 4 > /proc/pid/clear_refs", [], { ...proc }),
  op("vmsplice", "vmsplice() of the range into a new pipe named `as`", ["addr", "as"], { ...proc, ...range, as: id }),
  op("pipe_read", "read() of the pipe: one value per page spliced", ["pipe"], { pipe: id, reader: id, expect: expectValue }),
  op("io_uring_register", "IORING_REGISTER_BUFFERS: FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM", ["addr", "as"], { ...proc, ...range, as: id }),
  op("io_uring_device_read", "IORING_OP_WRITE_FIXED: the device reads a page of the buffer", ["buffer"], { buffer: id, page, expect: expectValue }),
  op("io_uring_device_write", "IORING_OP_READ_FIXED: the device writes a page of the buffer", ["buffer", "value"], { buffer: id, page, value }),
  op("io_uring_unregister", "IORING_UNREGISTER_BUFFERS", ["buffer"], { buffer: id }),
  op("o_direct_read", "an O_DIRECT read() from a file into the range, submitted (FOLL_PIN | FOLL_WRITE; FOLL_GET before 6.5)", ["addr", "as"], { ...proc, ...range, as: id }),
  op("o_direct_write", "an O_DIRECT write() of the range to a file, submitted (FOLL_PIN; FOLL_GET before 6.5)", ["addr", "as"], { ...proc, ...range, as: id }),
  op("o_direct_complete", "the O_DIRECT request completes: a read stores `values`, a write returns what the device read", ["request"], {
    request: id, values, expect: expectValue,
  }),
  op("rdma_register", "ibv_reg_mr(): FOLL_PIN | FOLL_LONGTERM, and FOLL_WRITE when writable (default)", ["addr", "as"], {
    ...proc, ...range, as: id, writable: { type: "boolean" },
  }),
  op("rdma_remote_read", "the remote side reads a page of the region", ["region"], { region: id, page, expect: expectValue }),
  op("rdma_remote_write", "the remote side writes a page of the region", ["region", "value"], { region: id, page, value }),
  op("rdma_deregister", "ibv_dereg_mr()", ["region"], { region: id }),
  op("pin", "pin_user_pages() / get_user_pages() with FOLL_* flags; `fast: false` skips GUP-fast", ["addr", "flags", "as"], {
    ...proc, addr: address, pages: count, length: size, as: id, fast: { type: "boolean" },
    flags: { type: "array", items: { enum: foll }, minItems: 1 },
  }),
  op("gup_fast_begin", "GUP-fast (pin_user_pages_fast() with FOLL_FAST_ONLY) of the page at `addr`, its first half: read the PTE (B1), check it (B2), grab the page (B3); named `as` for gup_fast_end. Returns 1 when it holds the page, 0 when it backed off already", ["addr", "flags", "as"], {
    ...proc, addr: address, as: id, expect: expectValue, reason: gupReason,
    flags: { type: "array", items: { enum: foll }, minItems: 1 },
  }),
  op("gup_fast_end", "the second half of the GUP-fast `gup`: re-read the PMD and PTE and back off if either changed (B4), back off from a R/O pin of a page no longer PageAnonExclusive (B5). Returns 1 when the page is pinned — `gup` is then a pin (pin_read, pin_write, unpin) — or 0 when GUP-fast backed off", ["gup"], {
    gup: id, expect: expectValue, reason: gupReason,
  }),
  op("pin_read", "a read through the pin (the device, or a ptrace access)", ["pin"], { pin: id, page, expect: expectValue }),
  op("pin_write", "a write through the pin", ["pin", "value"], { pin: id, page, value }),
  op("unpin", "unpin_user_pages() / put_page()", ["pin"], { pin: id }),
  op("isolate", "isolate_lru_page(): a migration scan holds a reference to the page at `addr`", ["addr", "as"], { ...proc, addr: address, as: id }),
  op("putback", "putback_lru_page()", ["isolated"], { isolated: id }),
  op("reclaim", "memory pressure: reclaim swaps out up to `pages` pages (default: as many as it can)", [], { pages: count }),
  op("drain_lru", "lru_add_drain(): the per-CPU LRU batch lets go of its references", [], {}),
  op("free_swap_cache", "free swap-cache folios nothing needs any more", [], {}),
  op("fail_alloc", "fault injection, as Linux's fail_page_alloc / failslab / fail-nth: the nth allocation of `kind` from now fails (and `times` - 1 more after it), taking the path a real exhaustion takes", ["kind", "nth"], {
    kind: { enum: ["frame", "pageTable", "swapSlot"], description: "frames, page tables or swap slots" },
    nth: { type: "integer", minimum: 1, maximum: 0xffffffff, description: "1: the next allocation" },
    times: { type: "integer", minimum: 1, maximum: 0x7fffffff, description: "how many allocations fail (default 1)" },
  }),
  op("split_huge_page", "split_huge_page() of the large folio mapped at `addr`, as a kernel caller holding its lock and a reference makes it; `phase: start` stops after can_split_folio(), before unmap_folio() (named `as`), `phase: finish` ends the `split` begun so; returns 0 (split), EAGAIN (refused: references beyond its mappings) or 1 (started)", [], {
    ...proc, addr: address,
    phase: { enum: ["all", "start", "finish"], description: "all (default): the whole split; start: lock, hold, can_split_folio(); finish: unmap_folio() onwards, for `split`" },
    as: id, split: id,
    expect: perRun({ enum: [0, 1, "EAGAIN"] }, "0 split, EAGAIN refused, 1 started (waiting for finish)"),
  }),
  op("split_huge_pages", "the debugfs split_huge_pages interface: split_folio() of every large folio mapped by PTEs in the range", ["addr"], { ...proc, ...range }),
  op("deferred_split_scan", "the deferred split shrinker: split the partially mapped large folios it can", [], {}),
  op("khugepaged", "one pass of khugepaged over every process: collapse what its limits allow", [], {}),
  op("pmd_mapped", "whether a PMD maps the 2 MiB around `addr` (a PMD-mapped THP or the huge zero page): returns 1 or 0", ["addr", "expect"], {
    ...proc, addr: address, expect: expectValue,
  }),
  op("userfaultfd", "userfaultfd(2) and its UFFDIO_API handshake with `features` (the feature names without UFFD_FEATURE_), named `as`", ["as"], {
    ...proc, as: id, features: { type: "array", items: { enum: UFFD_FEATURE_NAMES } },
    flags: { type: "array", items: { enum: ["O_NONBLOCK", "O_CLOEXEC", "UFFD_USER_MODE_ONLY"] } },
    handshake: { type: "boolean", description: "do UFFDIO_API (default true)" },
  }),
  op("uffdio_api", "UFFDIO_API of `uffd` with `features` (a second one fails with EINVAL)", ["uffd"], {
    uffd: id, features: { type: "array", items: { enum: UFFD_FEATURE_NAMES } },
    api: { type: "integer", minimum: 0, maximum: 0xffffffff, description: "the api field (default UFFD_API, 0xaa)" },
  }),
  op("uffdio_register", "UFFDIO_REGISTER of the range with `mode`; `ioctls`: the range ioctls it must report", ["uffd", "addr", "mode"], {
    uffd: id, ...range, mode: { type: "array", items: { enum: ["MISSING", "WP", "MINOR"] } },
    ioctls: { type: "array", items: { enum: UFFD_API_RANGE_IOCTLS } },
  }),
  op("uffdio_unregister", "UFFDIO_UNREGISTER of the range", ["uffd", "addr"], { uffd: id, ...range }),
  op("uffd_read", "read(2) of `uffd`: its oldest message must be `event` (pagefault at `address` with `flags`, or fork/remap/remove/unmap); fails with EAGAIN when there is none. A fork event's new userfaultfd is named `as`", ["uffd"], {
    uffd: id, as: id, event: { enum: ["pagefault", "fork", "remap", "remove", "unmap"] }, address,
    flags: { type: "array", items: { enum: ["WRITE", "WP", "MINOR"] } },
  }),
  op("uffdio_copy", "UFFDIO_COPY of `value` into the range; returns the bytes copied (a short copy fails with EAGAIN, `result` the bytes done)", ["uffd", "addr"], {
    uffd: id, ...range, value, mode: { type: "array", items: { enum: ["DONTWAKE", "WP"] } }, expect: expectValue, result: uffdResult,
  }),
  op("uffdio_zeropage", "UFFDIO_ZEROPAGE of the range; returns the bytes done", ["uffd", "addr"], {
    uffd: id, ...range, mode: { type: "array", items: { enum: ["DONTWAKE"] } }, expect: expectValue, result: uffdResult,
  }),
  op("uffdio_continue", "UFFDIO_CONTINUE: map the shmem pages of the range already in the page cache; returns the bytes done", ["uffd", "addr"], {
    uffd: id, ...range, mode: { type: "array", items: { enum: ["DONTWAKE", "WP"] } }, expect: expectValue, result: uffdResult,
  }),
  op("uffdio_poison", "UFFDIO_POISON: poison markers in the range (any access is then SIGBUS); returns the bytes done", ["uffd", "addr"], {
    uffd: id, ...range, mode: { type: "array", items: { enum: ["DONTWAKE"] } }, expect: expectValue, result: uffdResult,
  }),
  op("uffdio_move", "UFFDIO_MOVE of the pages at `src` to the range at `addr` (same mm; exclusive anonymous pages only); returns the bytes moved (a short move fails with EAGAIN, `result` the bytes done)", ["uffd", "addr", "src"], {
    uffd: id, ...range, src: address, mode: { type: "array", items: { enum: ["DONTWAKE", "ALLOW_SRC_HOLES"] } },
    expect: expectValue, result: uffdResult,
  }),
  op("uffdio_writeprotect", "UFFDIO_WRITEPROTECT: set (mode WP) or clear the uffd-wp protection of the range", ["uffd", "addr"], {
    uffd: id, ...range, mode: { type: "array", items: { enum: ["WP", "DONTWAKE"] } },
  }),
  op("uffdio_wake", "UFFDIO_WAKE: the faults waiting in the range may be resumed", ["uffd", "addr"], { uffd: id, ...range }),
  op("pagemap_uffd_wp", "whether /proc/pid/pagemap reports the page at `addr` uffd-wp protected (PM_UFFD_WP, bit 57): returns 1 or 0", ["addr", "expect"], {
    ...proc, addr: address, expect: expectValue,
  }),
  op("uffd_close", "close() of `uffd`: its registrations go, its waiting faults may be resumed", ["uffd"], { uffd: id }),
  op("check_invariants", "every invariant must hold now", [], {}),
  op("counters", "counters must have these values now", ["expect"], {
    expect: { type: "object", propertyNames: runName, additionalProperties: counters, minProperties: 1, description: "{ all: {…}, <strategy>: {…} }" },
  }),
];

export const reference = {
  description: "a reference: { commit: <12-40 hex digits>, subject }, { selftest, case }, { url, title }, { cve } or { seed, rule, quote }",
  oneOf: [
    { type: "object", additionalProperties: false, required: ["commit"], properties: { commit: { type: "string", pattern: "^[0-9a-f]{12,40}$", description: "a commit id: 12 to 40 lowercase hex digits" }, subject: { type: "string" } } },
    { type: "object", additionalProperties: false, required: ["selftest"], properties: { selftest: { type: "string" }, case: { type: "string" } } },
    { type: "object", additionalProperties: false, required: ["url"], properties: { url: { type: "string", pattern: "^https?://" }, title: { type: "string" } } },
    { type: "object", additionalProperties: false, required: ["cve"], properties: { cve: { type: "string", pattern: "^CVE-[0-9]{4}-[0-9]+$" } } },
    {
      type: "object", additionalProperties: false, required: ["seed", "rule", "quote"],
      description: "a numbered rule of a seed commit message, quoted: what the scenario's steps exercise",
      properties: {
        seed: { type: "string", pattern: "^[0-9]{3}$", description: "the seed's number: three digits (\"000\")" },
        rule: { type: "string", pattern: "^(I{1,3}|IV|V)(\\.[1-9][0-9]?)?[a-z]?$", description: "the rule's number as the seed writes it, its letter joined: I.3, I.6b, II" },
        quote: { type: "string", minLength: 20, description: "the rule's words, as the seed states them" },
      },
    },
  ],
};

const knobs = { type: "object", additionalProperties: { type: "boolean" } };
/** Which strategies exist is the registry's to say (registerStrategy()), so names are checked there. */
const strategyId = {
  type: "string", pattern: "^[a-z][a-z0-9-]{0,39}$",
  description: "a strategy: mapcount, pagecount, anon-exclusive, or one a program registered (cowsim --strategy-module)",
};
const run = {
  oneOf: [
    strategyId,
    {
      type: "object", additionalProperties: false, required: ["name", "strategy"],
      properties: { name: runName, strategy: strategyId, knobs },
    },
  ],
};

/** The whole schema. @public */
export const SCENARIO_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://github.com/cowsim/cowsim/scenario.schema.json",
  title: "cowsim scenario",
  description: "Steps of processes on anonymous memory, run under COW strategies and judged by the oracle.",
  type: "object",
  required: ["name", "reference", "steps"],
  additionalProperties: false,
  properties: {
    name: { type: "string", minLength: 1 },
    description: { type: "string" },
    reference: { type: "array", items: reference, minItems: 1, description: "where the behaviour comes from: commits, selftest cases, articles, CVEs" },
    strategies: { type: "array", items: run, minItems: 1, description: "runs, each a strategy with its knobs (default: the three strategies)" },
    kernel: {
      type: "object", additionalProperties: false,
      description: "the simulated machine; the ranges are createKernel()'s (src/mm/options.ts)",
      properties: {
        memory: { ...size, description: `simulated RAM: bytes, a size or pages, ${formatSize(L.memory.min)} to ${formatSize(L.memory.max)} (default 16M)` },
        swap: { ...size, description: `the swap device: bytes, a size or pages, 0 (none) to ${formatSize(L.swap.max)} (default: as much as memory)` },
        dataBytes: { type: "integer", minimum: L.dataBytes.min, maximum: L.dataBytes.max, description: "real bytes kept per page besides its value (default 0)" },
        seed: { type: "integer", minimum: L.seed.min, maximum: L.seed.max, description: "seed of the random choices (default 1)" },
        transient: {
          type: "object", additionalProperties: false,
          properties: {
            lruBatch: { oneOf: [{ type: "boolean" }, { type: "integer", minimum: L.lruBatch.min, maximum: L.lruBatch.max }], description: "the per-CPU LRU batch: true (the strategy's size), false, or a size" },
            isolation: { type: "number", minimum: L.isolation.min, maximum: L.isolation.max, description: "the probability that a write fault finds its page isolated" },
            migration: { type: "number", minimum: L.migration.min, maximum: L.migration.max, description: "the probability that compaction migrates the page of a write-protect fault first" },
          },
        },
        maxProcesses: { type: "integer", minimum: L.maxProcesses.min, maximum: L.maxProcesses.max, description: "most processes alive at once (default 256)" },
        maxMapCount: { type: "integer", minimum: L.maxMapCount.min, maximum: L.maxMapCount.max, description: "vm.max_map_count (default 65530)" },
        checkInvariants: { type: "boolean", description: "check every invariant after every step (default true)" },
        thp: {
          type: "object", additionalProperties: false,
          description: "the THP policy of /sys/kernel/mm/transparent_hugepage (default Linux 6.12's)",
          properties: {
            enabled: { enum: ["always", "madvise", "never"], description: "transparent_hugepage/enabled (default always)" },
            sizes: {
              type: "object", additionalProperties: false, description: "hugepages-<size>kB/enabled (default: 2M inherit, the rest never)",
              properties: Object.fromEntries(Object.keys(THP_SIZE_ORDERS).map((s) => [s, { enum: ["always", "inherit", "madvise", "never"] }])),
            },
            useZeroPage: { type: "boolean", description: "transparent_hugepage/use_zero_page (default true)" },
          },
        },
      },
    },
    processes: { type: "array", items: id, minItems: 1, uniqueItems: true, description: "processes that exist at the start (default: [main])" },
    steps: { type: "array", minItems: 1, items: { type: "object", required: ["op"], properties: { op: { type: "string" } }, discriminator: { propertyName: "op" }, oneOf: STEP_SCHEMAS } },
    expect: { type: "object", propertyNames: runName, additionalProperties: outcome, description: "{ all: outcome, <strategy>: outcome }: a strategy's entries win over all's" },
  },
} as const;
