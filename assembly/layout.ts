// The memory map of one simulated machine, and the per-thread contexts.
//
// Everything lives in the one shared WebAssembly.Memory; nothing mutable lives in module
// globals or static data, because every instance (one per thread) has its own globals and
// rewrites the data segments when it starts.
//
//   0 ─────────────┬──────────────────────────────────────────────────────────────
//                  │ static data of the module (constants only)
//   BASE ──────────┼── align(__heap_base, 64 KiB) ────────────────────────────────
//                  │ Header            sizes, offsets, allocator heads, vmstat, fault injection
//                  │ Contexts          maxThreads × (Ctx + scratch)
//                  │ mm table          maxMms × MmStruct
//                  │ pageblocks        one PageBlock per 512 frames (free count + bitmap)
//                  │ frame table       nframes × Page (struct page)
//                  │ page-table pool   ntables × 4 KiB (4 KiB aligned)
//                  │ swap map          nslots × (SwapSlot + data bytes)
//                  │ page contents     nframes × (tag + data bytes)
//   total ─────────┴──────────────────────────────────────────────────────────────

export const PAGE_SHIFT: u32 = 12;
export const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
export const PTRS_PER_TABLE: u32 = 512;
export const HPAGE_PMD_ORDER: u32 = 9;
export const HPAGE_PMD_NR: u32 = 1 << HPAGE_PMD_ORDER;
/** A frame number that names no frame: allocation failure, "not present". */
export const NO_PFN: u32 = 0xffffffff;
export const LAYOUT_MAGIC: u32 = 0x636f7773; // "cows"
export const LAYOUT_VERSION: u32 = 2;

// Errors the core returns, negated, as the kernel does. Linux errno numbers.
/** @errno EPERM operation not permitted */
export const EPERM: i32 = 1;
/** @errno ENOENT no such entry */
export const ENOENT: i32 = 2;
/** @errno ESRCH no such process */
export const ESRCH: i32 = 3;
/** @errno EIO input/output error */
export const EIO: i32 = 5;
/** @errno EBADF bad file descriptor */
export const EBADF: i32 = 9;
/** @errno EAGAIN try again */
export const EAGAIN: i32 = 11;
/** @errno ENOMEM out of memory */
export const ENOMEM: i32 = 12;
/** @errno EACCES permission denied */
export const EACCES: i32 = 13;
/** @errno EFAULT bad address */
export const EFAULT: i32 = 14;
/** @errno EBUSY device or resource busy */
export const EBUSY: i32 = 16;
/** @errno EEXIST already exists */
export const EEXIST: i32 = 17;
/** @errno EINVAL invalid argument */
export const EINVAL: i32 = 22;
/** @errno ENOSPC no space left (swap full) */
export const ENOSPC: i32 = 28;

// vmstat: machine-wide event counters, one place increments them (count_vm_event()).
/** @vmstat PGALLOC frames allocated in folios of order 0…8, 2^order each (rmqueue()); order 9 counts in THP_ALLOC */
export const PGALLOC: u32 = 0;
/** @vmstat PGFREE frames freed in folios of order 0…8, 2^order each (free_one_page()); order 9 counts in THP_FREE */
export const PGFREE: u32 = 1;
/** @vmstat THP_ALLOC order-9 folios allocated */
export const THP_ALLOC: u32 = 2;
/** @vmstat THP_FREE order-9 folios freed whole (the frames of a split one count in PGFREE) */
export const THP_FREE: u32 = 3;
/** @vmstat PGALLOC_FAIL frame allocations that failed with ENOMEM */
export const PGALLOC_FAIL: u32 = 4;
/** @vmstat PGTABLE_ALLOC page tables allocated */
export const PGTABLE_ALLOC: u32 = 5;
/** @vmstat PGTABLE_FREE page tables freed */
export const PGTABLE_FREE: u32 = 6;
/** @vmstat PGTABLE_ALLOC_FAIL page-table allocations that failed with ENOMEM */
export const PGTABLE_ALLOC_FAIL: u32 = 7;
/** @vmstat SWAP_SLOT_ALLOC swap slots allocated */
export const SWAP_SLOT_ALLOC: u32 = 8;
/** @vmstat SWAP_SLOT_FREE swap slots freed */
export const SWAP_SLOT_FREE: u32 = 9;
/** @vmstat GUP_FAST_PINNED pages grabbed by GUP-fast */
export const GUP_FAST_PINNED: u32 = 10;
/** @vmstat GUP_FAST_BACKOFF GUP-fast calls that backed off before the end of the range */
export const GUP_FAST_BACKOFF: u32 = 11;
/** @vmstat FORK_PTES_SHARED PTEs shared by copy_pte_range */
export const FORK_PTES_SHARED: u32 = 12;
/** @vmstat FORK_PTES_DEFERRED PTEs handed back to the policy by copy_pte_range */
export const FORK_PTES_DEFERRED: u32 = 13;
/** @vmstat ZAP_PTES present PTEs zapped */
export const ZAP_PTES: u32 = 14;
/** @vmstat FAULT_ANON do_anonymous_page() mapped a fresh page */
export const FAULT_ANON: u32 = 15;
/** @vmstat FAULT_ZERO_PAGE do_anonymous_page() mapped the shared zero page */
export const FAULT_ZERO_PAGE: u32 = 16;
/** @vmstat FAULT_WP_REUSE do_wp_page() reused the page (wp_page_reuse()) */
export const FAULT_WP_REUSE: u32 = 17;
/** @vmstat FAULT_WP_COPY do_wp_page() copied the page (wp_page_copy()) */
export const FAULT_WP_COPY: u32 = 18;
/** @vmstat FAULT_UNSHARE FAULT_FLAG_UNSHARE faults (R/O pins of possibly shared pages) */
export const FAULT_UNSHARE: u32 = 19;
/** @vmstat FAULT_FILE shmem pages mapped by a fault */
export const FAULT_FILE: u32 = 20;
/** @vmstat LRU_BATCH_DRAINED folios moved from a per-CPU LRU batch to the LRU */
export const LRU_BATCH_DRAINED: u32 = 21;
/** @vmstat FAIL_INJECTED_FRAME frame allocations failed on purpose (fail_page_alloc) */
export const FAIL_INJECTED_FRAME: u32 = 22;
/** @vmstat FAIL_INJECTED_PGTABLE page-table allocations failed on purpose */
export const FAIL_INJECTED_PGTABLE: u32 = 23;
/** @vmstat FAIL_INJECTED_SWAP_SLOT swap-slot allocations failed on purpose */
export const FAIL_INJECTED_SWAP_SLOT: u32 = 24;
/** @vmstat WP_CORE_REUSE write-protect faults the core's do_wp_page() rule reused (part of FAULT_WP_REUSE) */
export const WP_CORE_REUSE: u32 = 25;
/** @vmstat WP_CORE_COPY write-protect faults the core's do_wp_page() rule copied (part of FAULT_WP_COPY) */
export const WP_CORE_COPY: u32 = 26;
/** @vmstat WP_CORE_ZERO writes to the zero page the core replaced by a fresh page (part of FAULT_WP_COPY) */
export const WP_CORE_ZERO: u32 = 27;
/** @vmstat SWAPIN_CORE swap entries the core's do_swap_page() rule faulted back in (part of the swap-ins) */
export const SWAPIN_CORE: u32 = 28;
/** @vmstat FORK_CORE_COPY possibly pinned pages fork's walk copied itself (COPY_EARLY_IN_CORE; part of the fork copies) */
export const FORK_CORE_COPY: u32 = 29;
export const NR_VMSTAT: u32 = 32;

/** The header at BASE. Sizes are in units; offsets are absolute byte addresses. */
@unmanaged export class Header {
  magic: u32;
  version: u32;
  nframes: u32;
  nblocks: u32;
  ntables: u32;
  nslots: u32;
  maxMms: u32;
  maxThreads: u32;
  dataBytes: u32;
  contentStride: u32;
  swapStride: u32;
  scratchBytes: u32;
  ctxStride: u32;
  ctxBase: u32;
  mmBase: u32;
  blockBase: u32;
  frameBase: u32;
  ptBase: u32;
  swapBase: u32;
  contentBase: u32;
  totalBytes: u64;
  // page-table pool: Treiber stack (tag << 32 | index + 1), bump index, tables not yet promised
  ptFreeHead: u64;
  ptBump: u32;
  ptAvailable: i32;
  // swap slots: same scheme; slot 0 is never handed out (it is the swap header in Linux)
  swapFreeHead: u64;
  swapBump: u32;
  swapAvailable: i32;
  // mm_struct slots: same scheme
  mmFreeHead: u64;
  mmBump: u32;
  mmAvailable: i32;
  nrFreePages: i32;
  lruBatchSize: u32;
  /** Set for kernels before 5.19, whose GUP-fast has no gup_must_unshare() (a7f226604170). */
  gupFastNoUnshare: u32;
  /** Debug build: the checks of page_table_check.ts switched off, one bit (1 << CHECK_*) each. */
  debugChecksOff: u32;
  /**
   * Steps of the GUP-fast / PageAnonExclusive protocol left out on purpose (BREAK_* bits, see
   * gup.ts): every thread reads them from here, so a worker's GUP-fast breaks as the main
   * thread's does. 0: the protocol as Linux has it.
   */
  protocolBreaks: u32;
  /**
   * The strategy's do_wp_page() rule as WPR_* bits (fault.ts), for the write-protect faults the
   * core decides itself; 0: every one goes to TypeScript.
   */
  wpRule: u32;
  /**
   * The strategy's do_swap_page() rule as SWR_* bits (fault.ts), for the swap-ins the core takes
   * itself; 0: every one goes to TypeScript.
   */
  swapRule: u32;
  /** Contexts attached (ctx_attach() less ctx_detach()): with one, nobody else is inside the core. */
  attached: u32;
  /**
   * Some folio may be on the deferred split queue (deferred_split_folio() set it; the
   * shrinker's pass clears it when it leaves none queued): 0 lets the pass skip its scan.
   */
  splitQueued: u32;
}
export const HEADER_BYTES: u32 = 1024;
export const VMSTAT_OFFSET: u32 = 512;
/**
 * Fault injection state, one FaultAttr per FAIL_* kind, after vmstat. Like vmstat it is not
 * part of the simulated state: what a test snapshots is the same after an injected failure as
 * after a real one.
 */
export const FAULT_ATTR_OFFSET: u32 = 768;
export const FAULT_ATTR_BYTES: u32 = 32;

/**
 * Per-thread context: one per attached instance. Range operations write their results into
 * its scratch area as u32 records, and leave the address to resume at in `next`. After these
 * fields come the LRU batch and the range walk in progress (pagewalk.ts's MmWalk):
 *
 *   0 ── Ctx ── 128 ── LRU batch ── 256 ── walk ── 512 ── scratch …
 */
@unmanaged export class Ctx {
  inUse: u32;
  id: u32;
  blockHint: u32;
  ptReserved: u32;
  frameReserved: u32;
  _pad0: u32;
  next: f64;
  nrRecords: u32;
  scratch: u32;
  // GUP-fast step state (gup_fast_pte_begin/finish)
  gupPte: u64;
  gupPtep: u32;
  gupPmdp: u32;
  gupPmd: u64;
  gupPfn: u32;
  gupFolio: u32;
  gupFlags: u32;
  gupReason: u32;
  // rss deltas accumulated by a range operation, applied to the mm at its end
  rss0: i32;
  rss1: i32;
  rss2: i32;
  rss3: i32;
  lruCount: u32;
  aux0: u32;
  /**
   * GUP-fast's read-side section (local_irq_save() in gup_fast()): odd while this thread walks
   * page tables without locks. A table is freed only once every thread that was inside when it
   * was unlinked has left (gup_fast_sync(), pgtable.ts).
   */
  gupFastSeq: u32;
  /** The pin record the last gup_pin_fast() filled (pin_registry.ts), or NO_PFN. */
  pinSlot: u32;
  /** Where gup_pin_fast() looks for a free record first. */
  pinHint: u32;
  /** Entries in the trace log (trace_log.ts), the upper half of the scratch area. */
  logCount: u32;
}
/**
 * Where a context's aux0 word sits from the context's address: a call's second result (a range
 * operation's errno or stop reason, a fault's extra facts), read by the binding without a call.
 */
export const CTX_AUX0_OFFSET: u32 = offsetof<Ctx>("aux0");
/** Where a context's trace log count sits from the context's address (read and reset by the binding). */
export const CTX_LOG_COUNT_OFFSET: u32 = offsetof<Ctx>("logCount");
/** The per-CPU LRU batch (folio_batch) lives after the Ctx fields: up to 32 folios. */
export const CTX_LRU_OFFSET: u32 = 128;
export const CTX_LRU_SLOTS: u32 = 32;
/** The range walk in progress (pagewalk.ts: an MmWalk and its own fields) after the batch. */
export const CTX_WALK_OFFSET: u32 = 256;
export const CTX_WALK_BYTES: u32 = 256;
export const CTX_HEADER_BYTES: u32 = 512;
/**
 * After the header, each context owns a table of pin records (pin_registry.ts): the pins its
 * thread holds, readable by every other thread. Then the scratch area.
 *
 *   0 ── Ctx … walk ── 512 ── pin records (PIN_RECORDS × PIN_RECORD_BYTES) ── scratch …
 */
export const PIN_RECORDS: u32 = 64;
export const PIN_RECORD_BYTES: u32 = 256;
export const CTX_PINS_BYTES: u32 = PIN_RECORDS * PIN_RECORD_BYTES;

// @ts-ignore: decorator
@inline export function layoutBase(): u32 {
  return (<u32>__heap_base + 0xffff) & ~0xffff;
}
// @ts-ignore: decorator
@inline export function hdr(): Header {
  return changetype<Header>(layoutBase());
}
// @ts-ignore: decorator
@inline export function vmstatAddr(item: u32): u32 {
  return layoutBase() + VMSTAT_OFFSET + (item << 2);
}
/** count_vm_events() */
// @ts-ignore: decorator
@inline export function count_vm_events(item: u32, delta: u32): void {
  // Linux's vm events are per-CPU counters, added to without a lock (__count_vm_events());
  // these are machine-wide, so only one attached context may add without one
  const a = vmstatAddr(item);
  if (ctx_up()) store<u32>(a, load<u32>(a) + delta);
  else atomic.add<u32>(a, delta);
}

/**
 * One context attached: nobody else is inside the core, so an update needs no locked
 * operation — as a kernel built for one CPU has no LOCK prefix (x86's alternatives_smp_unlock()).
 * A pool of threads is counted before its threads start (ctx_expect()).
 */
// @ts-ignore: decorator
@inline export function ctx_up(): bool {
  return atomic.load<u32>(layoutBase() + offsetof<Header>("attached")) <= 1;
}
// @ts-ignore: decorator
@inline export function ctxOf(ctx: u32): Ctx {
  return changetype<Ctx>(ctx);
}
// @ts-ignore: decorator
@inline function align(x: u64, a: u64): u64 {
  return (x + a - 1) & ~(a - 1);
}

/** The bytes of memory a layout with these sizes needs (layout_init() will lay it out so). */
export function layout_plan(
  nframes: u32, ntables: u32, nslots: u32, maxMms: u32, maxThreads: u32,
  dataBytes: u32, scratchBytes: u32,
): f64 {
  return <f64>planInto(0, nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes);
}

/** Computes the layout; when `h` is non-zero also records it in the header. */
function planInto(
  h: u32, nframes: u32, ntables: u32, nslots: u32, maxMms: u32, maxThreads: u32,
  dataBytes: u32, scratchBytes: u32,
): u64 {
  const nblocks = (nframes + HPAGE_PMD_NR - 1) >> HPAGE_PMD_ORDER;
  const dataStride = <u32>align(dataBytes, 8);
  const scratch = <u32>align(scratchBytes, 64);
  const ctxStride = CTX_HEADER_BYTES + CTX_PINS_BYTES + scratch;
  let at: u64 = <u64>layoutBase() + HEADER_BYTES;
  const ctxBase = at; at += <u64>maxThreads * ctxStride;
  const mmBase = align(at, 64); at = mmBase + <u64>maxMms * MM_STRUCT_BYTES;
  const blockBase = align(at, 64); at = blockBase + <u64>nblocks * PAGEBLOCK_BYTES;
  const frameBase = align(at, 64); at = frameBase + <u64>nframes * PAGE_STRUCT_BYTES;
  const ptBase = align(at, PAGE_SIZE); at = ptBase + <u64>ntables * PAGE_SIZE;
  const swapBase = align(at, 64); at = swapBase + <u64>nslots * (SWAP_SLOT_BYTES + dataStride);
  const contentBase = align(at, 64); at = contentBase + <u64>nframes * (8 + dataStride);
  const total = align(at, 65536);
  if (h != 0) {
    const H = changetype<Header>(h);
    H.nframes = nframes;
    H.nblocks = nblocks;
    H.ntables = ntables;
    H.nslots = nslots;
    H.maxMms = maxMms;
    H.maxThreads = maxThreads;
    H.dataBytes = dataBytes;
    H.contentStride = 8 + dataStride;
    H.swapStride = SWAP_SLOT_BYTES + dataStride;
    H.scratchBytes = scratch;
    H.ctxStride = ctxStride;
    H.ctxBase = <u32>ctxBase;
    H.mmBase = <u32>mmBase;
    H.blockBase = <u32>blockBase;
    H.frameBase = <u32>frameBase;
    H.ptBase = <u32>ptBase;
    H.swapBase = <u32>swapBase;
    H.contentBase = <u32>contentBase;
    H.totalBytes = total;
  }
  return total;
}

// Sizes of the structures other files define, kept here so the plan needs no imports
// that would form a cycle; each file asserts its own size against these at start-up.
export const MM_STRUCT_BYTES: u32 = 64;
export const PAGEBLOCK_BYTES: u32 = 72;
export const PAGE_STRUCT_BYTES: u32 = 24;
export const SWAP_SLOT_BYTES: u32 = 16;

/**
 * Records the layout in the header of a fresh (all-zero) memory. Returns 0, or -EINVAL when
 * the memory is too small or already initialised. Callers then run the per-structure inits.
 */
export function layout_record(
  nframes: u32, ntables: u32, nslots: u32, maxMms: u32, maxThreads: u32,
  dataBytes: u32, scratchBytes: u32,
): i32 {
  const H = hdr();
  if (H.magic != 0) return -EINVAL;
  const total = planInto(0, nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes);
  if (total > (<u64>memory.size() << 16)) return -EINVAL;
  planInto(layoutBase(), nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes);
  H.version = LAYOUT_VERSION;
  H.ptAvailable = <i32>ntables;
  H.swapAvailable = nslots > 0 ? <i32>(nslots - 1) : 0;
  H.swapBump = 1;
  H.mmAvailable = <i32>maxMms;
  // magic last: an instance that sees it sees a complete header
  atomic.store<u32>(changetype<usize>(H) + offsetof<Header>("magic"), LAYOUT_MAGIC);
  return 0;
}

export function layout_ready(): bool {
  return atomic.load<u32>(layoutBase() + offsetof<Header>("magic")) == LAYOUT_MAGIC;
}

// ---- per-thread contexts ---------------------------------------------------------------------

/** Claims a free context for the calling thread. Returns its address, or 0 when all are taken. */
export function ctx_attach(): u32 {
  const H = hdr();
  for (let i: u32 = 0; i < H.maxThreads; i++) {
    const c = H.ctxBase + i * H.ctxStride;
    if (atomic.cmpxchg<u32>(c + offsetof<Ctx>("inUse"), 0, 1) == 0) {
      const C = ctxOf(c);
      C.id = i;
      C.blockHint = 0;
      C.ptReserved = 0;
      C.frameReserved = 0;
      C.next = 0;
      C.nrRecords = 0;
      C.scratch = c + CTX_HEADER_BYTES + CTX_PINS_BYTES;
      C.gupFastSeq = 0;
      C.pinSlot = NO_PFN;
      C.pinHint = 0;
      C.gupReason = 0;
      C.lruCount = 0;
      C.logCount = 0;
      atomic.add<u32>(layoutBase() + offsetof<Header>("attached"), 1);
      return c;
    }
  }
  return 0;
}

/**
 * Whether more than one context is attached: another thread may touch frames and page tables
 * meanwhile. With one, a walk may update them with plain loads and stores, as a kernel built
 * for one CPU has no LOCK prefix (x86's alternatives_smp_unlock()).
 */
export function ctx_smp(): bool {
  return !ctx_up();
}

/**
 * Counts `delta` contexts as attached before their threads attach (or stops counting them):
 * a pool of worker threads is counted when it is made, so that no operation of the creating
 * thread still in progress takes the one-context paths while a worker attaches.
 */
export function ctx_expect(delta: i32): void {
  atomic.add<u32>(layoutBase() + offsetof<Header>("attached"), <u32>delta);
}

/** Releases a context; page tables and frames it still had reserved go back. */
export function ctx_detach(ctx: u32): void {
  unreserveFrom(ctx + offsetof<Ctx>("ptReserved"), layoutBase() + offsetof<Header>("ptAvailable"));
  unreserveFrom(ctx + offsetof<Ctx>("frameReserved"), layoutBase() + offsetof<Header>("nrFreePages"));
  atomic.sub<u32>(layoutBase() + offsetof<Header>("attached"), 1);
  atomic.store<u32>(ctx + offsetof<Ctx>("inUse"), 0);
}

// @ts-ignore: decorator
@inline export function ctxRecord(ctx: u32, i: u32): u32 {
  return ctxOf(ctx).scratch + (i << 4);
}
/** Records are four u32 words; the scratch area holds scratchBytes / 16 of them. */
// @ts-ignore: decorator
@inline export function ctxCapacity(): u32 {
  return hdr().scratchBytes >> 4;
}
/** Appends a record; the caller has checked capacity. */
// @ts-ignore: decorator
@inline export function pushRecord(ctx: u32, a: u32, b: u32, c: u32, d: u32): void {
  const C = ctxOf(ctx);
  const r = ctxRecord(ctx, C.nrRecords);
  store<u32>(r, a);
  store<u32>(r, b, 4);
  store<u32>(r, c, 8);
  store<u32>(r, d, 12);
  C.nrRecords = C.nrRecords + 1;
}

// ---- lock-free index stacks (page-table pool, swap slots, mm slots) --------------------------
//
// A Treiber stack of indices whose 64-bit head carries an ABA tag in its upper half:
// head = tag << 32 | (index + 1), 0 meaning empty. The link of a free element lives in
// the element itself (its first u32), written before the push publishes it.

export function stackPop(headAddr: u32, linkBase: u32, linkStride: u32): u32 {
  while (true) {
    const head = atomic.load<u64>(headAddr);
    const top = <u32>head;
    if (top == 0) return NO_PFN;
    const idx = top - 1;
    const next = atomic.load<u32>(linkBase + idx * linkStride);
    const tag = (head >> 32) + 1;
    if (atomic.cmpxchg<u64>(headAddr, head, (tag << 32) | <u64>next) == head) return idx;
  }
}

export function stackPush(headAddr: u32, linkBase: u32, linkStride: u32, idx: u32): void {
  while (true) {
    const head = atomic.load<u64>(headAddr);
    atomic.store<u32>(linkBase + idx * linkStride, <u32>head);
    const tag = (head >> 32) + 1;
    if (atomic.cmpxchg<u64>(headAddr, head, (tag << 32) | <u64>(idx + 1)) == head) return;
  }
}

/**
 * Takes `n` units from an availability counter if it holds that many. Reserving first and
 * then popping is what lets a multi-table operation fail with ENOMEM before changing anything.
 */
export function tryReserve(availAddr: u32, n: i32): bool {
  while (true) {
    const a = atomic.load<i32>(availAddr);
    if (a < n) return false;
    if (atomic.cmpxchg<i32>(availAddr, a, a - n) == a) return true;
  }
}

/**
 * Moves `n` units from a machine-wide availability counter into a context's private reserve
 * (the u32 at `reserveAddr`), all or nothing. Counts a failure in vmstat item `failItem`.
 * A failure injected for `failKind` (FAIL_*) takes the same path.
 */
export function reserveInto(reserveAddr: u32, availAddr: u32, n: u32, failItem: u32, failKind: u32): bool {
  if (n == 0) return true;
  if (should_fail(failKind) || !(ctx_up() ? takeAlone(availAddr, <i32>n) : tryReserve(availAddr, <i32>n))) {
    count_vm_events(failItem, 1);
    return false;
  }
  store<u32>(reserveAddr, load<u32>(reserveAddr) + n);
  return true;
}

/** atomic.add() of `delta` at `a` that returns the new value; alone in the core, a load and a store. */
// @ts-ignore: decorator
@inline export function add_return(a: u32, delta: i32): i32 {
  if (ctx_up()) {
    const now = load<i32>(a) + delta;
    store<i32>(a, now);
    return now;
  }
  return atomic.add<i32>(a, delta) + delta;
}

/** tryReserve() with nobody else in the core: a load and a store, no compare-exchange loop. */
// @ts-ignore: decorator
@inline export function takeAlone(availAddr: u32, n: i32): bool {
  const a = load<i32>(availAddr);
  if (a < n) return false;
  store<i32>(availAddr, a - n);
  return true;
}

// ---- fault injection (lib/fault-inject.c, mm/fail_page_alloc.c) ------------------------------
//
// should_fail(kind) is asked at every point where a frame, a page table or a swap slot is taken
// from the machine-wide pool, just before the reservation that fails on real exhaustion, and a
// "yes" takes that very path (same error, same vmstat failure counter), so no caller can tell
// an injected failure from a real one. Allocations served from a context's own reservation
// never fail: the reservation is what made them certain.
//
// Off (the default) it costs one load and one compare. Armed, each attempt
//   - nth mode: counts down; the attempt that takes the count from 1 to 0 fails
//     (the kernel's per-task fail-nth);
//   - random mode: fails with the configured probability, drawn from a splitmix64 generator
//     whose state lives here, so a seed gives the same failures every run (single-threaded);
// and every failure takes one from `times` (-1: no limit); at 0 the kind disarms itself.
// With threads the attempts interleave in whatever order they run; nothing is lost or doubled.

/** @failkind frame frame allocation: alloc_pages() from the free pool, frames_reserve() (fail_page_alloc) */
export const FAIL_FRAME: u32 = 0;
/** @failkind pageTable page-table allocation: pt_alloc_table() from the pool, pt_reserve(), the PGD of mm_alloc() */
export const FAIL_PGTABLE: u32 = 1;
/** @failkind swapSlot swap-slot allocation: get_swap_slot() (add_to_swap()) */
export const FAIL_SWAP_SLOT: u32 = 2;
export const NR_FAIL_KINDS: u32 = 3;
/** FaultAttr.armed: fail the nth attempt. */
export const FAIL_ARM_NTH: u32 = 1;
/** FaultAttr.armed: fail with a probability. */
export const FAIL_ARM_RANDOM: u32 = 2;

/** struct fault_attr, reduced to what cowsim needs. */
@unmanaged export class FaultAttr {
  /** 0 (off), FAIL_ARM_NTH or FAIL_ARM_RANDOM: the one word the allocation paths read. */
  armed: u32;
  /** nth mode: attempts still to come up to and including the one that fails; 0 once reached. */
  nth: u32;
  /** Failures still to inject; -1: no limit. */
  times: i32;
  /** Attempts seen while armed. */
  attempts: u32;
  /** random mode: an attempt fails when the next 32 random bits are below this (p × 2^32). */
  threshold: u64;
  /** splitmix64 state. */
  rng: u64;
}

// @ts-ignore: decorator
@inline export function faultAttrAddr(kind: u32): u32 {
  return layoutBase() + FAULT_ATTR_OFFSET + kind * FAULT_ATTR_BYTES;
}

/** should_fail(): whether to fail this attempt of `kind` on purpose. One load while off. */
// @ts-ignore: decorator
@inline export function should_fail(kind: u32): bool {
  return atomic.load<u32>(faultAttrAddr(kind) + offsetof<FaultAttr>("armed")) != 0 && shouldFailArmed(kind);
}

/** splitmix64: advance the state at `a` and return 32 random bits. */
function nextRandom32(a: u32): u32 {
  let s = atomic.load<u64>(a);
  let n: u64;
  while (true) {
    n = s + 0x9e3779b97f4a7c15;
    const seen = atomic.cmpxchg<u64>(a, s, n);
    if (seen == s) break;
    s = seen;
  }
  let z = n;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  z = z ^ (z >> 31);
  return <u32>(z >> 32);
}

function shouldFailArmed(kind: u32): bool {
  const a = faultAttrAddr(kind);
  atomic.add<u32>(a + offsetof<FaultAttr>("attempts"), 1);
  const armed = atomic.load<u32>(a + offsetof<FaultAttr>("armed"));
  if (armed == FAIL_ARM_NTH) {
    const at = a + offsetof<FaultAttr>("nth");
    let left = atomic.load<u32>(at);
    while (left > 0) {
      const seen = atomic.cmpxchg<u32>(at, left, left - 1);
      if (seen == left) break;
      left = seen;
    }
    if (left > 1) return false; // not the nth attempt yet
  } else if (armed == FAIL_ARM_RANDOM) {
    const r = nextRandom32(a + offsetof<FaultAttr>("rng"));
    if (<u64>r >= atomic.load<u64>(a + offsetof<FaultAttr>("threshold"))) return false;
  } else {
    return false;
  }
  // atomic_dec_not_zero(&attr->times), unless unlimited
  const tp = a + offsetof<FaultAttr>("times");
  let t = atomic.load<i32>(tp);
  while (true) {
    if (t == 0) return false;
    if (t < 0) break;
    const seen = atomic.cmpxchg<i32>(tp, t, t - 1);
    if (seen == t) {
      if (t == 1) atomic.store<u32>(a + offsetof<FaultAttr>("armed"), 0);
      break;
    }
    t = seen;
  }
  count_vm_events(FAIL_INJECTED_FRAME + kind, 1);
  return true;
}

/**
 * Arms fault injection for `kind` (FAIL_*): with `nth` > 0, the nth attempt from now fails
 * (1: the next one); otherwise each attempt fails with `probability` (0…1), drawn from a
 * generator seeded with seedHi:seedLo. `times` failures are injected (-1: every attempt that
 * qualifies, from then on), then the kind disarms itself. Returns 0 or -EINVAL.
 */
export function fail_inject(kind: u32, nth: u32, probability: f64, times: i32, seedLo: u32, seedHi: u32): i32 {
  if (kind >= NR_FAIL_KINDS || times == 0 || times < -1) return -EINVAL;
  if (nth == 0 && !(probability >= 0 && probability <= 1)) return -EINVAL;
  const a = faultAttrAddr(kind);
  const F = changetype<FaultAttr>(a);
  atomic.store<u32>(a + offsetof<FaultAttr>("armed"), 0);
  F.nth = nth;
  F.times = times;
  F.attempts = 0;
  F.threshold = nth != 0 ? 0 : <u64>(probability * 4294967296.0);
  F.rng = (<u64>seedHi << 32) | <u64>seedLo;
  // armed last: an allocation that sees it armed sees the rest
  atomic.store<u32>(a + offsetof<FaultAttr>("armed"), nth != 0 ? FAIL_ARM_NTH : FAIL_ARM_RANDOM);
  return 0;
}

/** Disarms fault injection for `kind`; NR_FAIL_KINDS disarms every kind. */
export function fail_clear(kind: u32): void {
  for (let k: u32 = 0; k < NR_FAIL_KINDS; k++) {
    if (kind == k || kind >= NR_FAIL_KINDS) atomic.store<u32>(faultAttrAddr(k) + offsetof<FaultAttr>("armed"), 0);
  }
}

/** Whether `kind` is armed (it disarms itself once its `times` failures are injected). */
export function fail_armed(kind: u32): bool {
  return kind < NR_FAIL_KINDS && atomic.load<u32>(faultAttrAddr(kind) + offsetof<FaultAttr>("armed")) != 0;
}

/** Attempts of `kind` seen since it was last armed. */
export function fail_attempts(kind: u32): u32 {
  return kind < NR_FAIL_KINDS ? atomic.load<u32>(faultAttrAddr(kind) + offsetof<FaultAttr>("attempts")) : 0;
}

/** Gives a context's unused reserve back to the machine-wide counter. */
export function unreserveFrom(reserveAddr: u32, availAddr: u32): void {
  const r = load<u32>(reserveAddr);
  if (r != 0) {
    add_return(availAddr, <i32>r);
    store<u32>(reserveAddr, 0);
  }
}

// ---- layout getters for the TypeScript side (read once at attach) ---------------------------

export function layout_base(): u32 { return layoutBase(); }
export function layout_nframes(): u32 { return hdr().nframes; }
export function layout_ntables(): u32 { return hdr().ntables; }
export function layout_nslots(): u32 { return hdr().nslots; }
export function layout_max_mms(): u32 { return hdr().maxMms; }
export function layout_max_threads(): u32 { return hdr().maxThreads; }
export function layout_data_bytes(): u32 { return hdr().dataBytes; }
export function layout_content_stride(): u32 { return hdr().contentStride; }
export function layout_swap_stride(): u32 { return hdr().swapStride; }
export function layout_scratch_bytes(): u32 { return hdr().scratchBytes; }
export function layout_frame_base(): u32 { return hdr().frameBase; }
export function layout_pt_base(): u32 { return hdr().ptBase; }
export function layout_mm_base(): u32 { return hdr().mmBase; }
export function layout_block_base(): u32 { return hdr().blockBase; }
export function layout_swap_base(): u32 { return hdr().swapBase; }
export function layout_content_base(): u32 { return hdr().contentBase; }
export function layout_ctx_base(): u32 { return hdr().ctxBase; }
export function layout_total_bytes(): f64 { return <f64>hdr().totalBytes; }
export function layout_vmstat_base(): u32 { return layoutBase() + VMSTAT_OFFSET; }
export function layout_pt_available(): i32 { return atomic.load<i32>(layoutBase() + offsetof<Header>("ptAvailable")); }
export function layout_swap_available(): i32 { return atomic.load<i32>(layoutBase() + offsetof<Header>("swapAvailable")); }
export function layout_free_pages(): i32 { return atomic.load<i32>(layoutBase() + offsetof<Header>("nrFreePages")); }
export function ctx_next(ctx: u32): f64 { return ctxOf(ctx).next; }
export function ctx_nr_records(ctx: u32): u32 { return ctxOf(ctx).nrRecords; }
export function ctx_scratch(ctx: u32): u32 { return ctxOf(ctx).scratch; }
export function ctx_gup_reason(ctx: u32): u32 { return ctxOf(ctx).gupReason; }
export function ctx_aux0(ctx: u32): u32 { return ctxOf(ctx).aux0; }
