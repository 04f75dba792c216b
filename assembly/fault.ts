// The simulated CPU's memory access and the fault paths of mm/memory.c that need no COW
// decision: do_anonymous_page(), the zero page, and the two outcomes of do_wp_page()
// (wp_page_reuse(), wp_page_copy()) once a strategy has chosen between them.
//
// handle_access() is one call per user access: it walks the page tables like the MMU, sets the
// accessed/dirty bits like the MMU, reads or writes the page's content tag, and takes the
// anonymous-memory faults that need no policy on the spot. Everything else comes back to
// TypeScript as a negative ACCESS_* code: a write-protect fault for the strategy, a swap entry,
// a marker, or a VMA the fast path does not serve.

import {
  ctxOf, ctx_up, layoutBase, hdr, Header, NO_PFN, faultAttrAddr, FaultAttr, FAIL_FRAME, count_vm_events, EINVAL, EEXIST, CTX_LRU_SLOTS,
  CTX_LRU_OFFSET, FAULT_ANON, FAULT_ZERO_PAGE, FAULT_WP_REUSE, FAULT_WP_COPY, FAULT_UNSHARE,
  FAULT_FILE, LRU_BATCH_DRAINED, WP_CORE_REUSE, WP_CORE_COPY, WP_CORE_ZERO, SWAPIN_CORE,
} from "./layout";
import {
  pte_none, pte_present, pte_protnone, pte_pfn, pte_write, pte_special, pte_uffd_wp,
  pte_soft_dirty, pte_mkwrite, pte_mkdirty, pte_mkuffd_wp, pte_mksoft_dirty, pfn_pte,
  pmd_leaf, is_swap_pte, is_pte_marker_entry, is_migration_entry, is_hwpoison_entry, swp_type, MAX_SWAPFILES, _PAGE_PRESENT,
  _PAGE_USER, _PAGE_RW, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PROTNONE, _PAGE_SPECIAL,
  _PAGE_SOFT_DIRTY, _PAGE_TABLE, _PAGE_UFFD_WP, swp_offset, pte_swp_exclusive, pte_swp_soft_dirty,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, entryTable, isTableEntry, pteIndex,
  mmAddr, MmStruct, add_mm_counter, pt_reserve_upto, pt_unreserve, pt_alloc_table, tables_missing,
  MM_ANONPAGES, MM_SHMEMPAGES, MM_FILEPAGES,
} from "./pgtable";
import {
  pfn_valid, page_folio, folio_test_anon, folio_ref_add, folio_ref_count, folio_mapcount,
  SetPageAnonExclusive, setPageFlag, testPageFlag, pageFlags, PG_lru, PG_swapcache,
  PG_swapbacked, PG_dirty, pfn_to_page, PageAnonExclusive, folio_test_ksm, PG_head, PG_locked, pageAddr, Page,
  PG_hwpoison, page_mapcount_raw, folio_entire_mapcount, PG_anon_exclusive, PAGE_MAPPING_ANON,
} from "./page";
import {
  folio_add_new_anon_rmap, folio_move_anon_rmap, folio_remove_rmap_ptes, folio_add_rmap_ptes,
  folio_put_refs, small_folio_unmap_alone, mm_counter_of, RMAP_EXCLUSIVE,
} from "./rmap";
import { alloc_pages, free_pages, frames_reserve, frames_free, alloc_frame_alone, frames_unreserve, frame_available, GFP_ZERO } from "./page_alloc";
import { contentAddr, copy_page_contents, clear_page_contents, tagStore } from "./content";
import { swap_count, folio_swap_slot, swap_free, swap_cache_pfn } from "./swapfile";
import {
  swapin_read, swapinMapAt, folio_free_swap, delete_from_swap_cache, SWAPIN_WRITABLE, SWAPIN_EXCLUSIVE, SWAPIN_DIRTY,
} from "./swap_state";
import { page_table_check_pte_set } from "./page_table_check";
import {
  trace_log, log_has_room, LOG_ACCESS, LOG_ANON, LOG_ZERO_PAGE, LOG_WP_REUSE, LOG_WP_COPY, LOG_WP_ZERO,
} from "./trace_log";

// ---- vm_flags the fast path reads (Linux values) -------------------------------------------
export const VM_READ: u32 = 0x1;
export const VM_WRITE: u32 = 0x2;
export const VM_SHARED: u32 = 0x8;
export const VM_UFFD_MISSING: u32 = 0x200;
export const VM_UFFD_WP: u32 = 0x1000;

// ---- results of handle_access() --------------------------------------------------------------
/** @access OK the access completed */
export const ACCESS_OK: i32 = 0;
/** @access NEED_FAULT no entry and the fast path may not fault it in (shared, no anon_vma, userfaultfd …) */
export const ACCESS_NEED_FAULT: i32 = -1;
/** @access WP_FAULT write to a present entry without write permission: do_wp_page() */
export const ACCESS_WP_FAULT: i32 = -2;
/** @access PROTNONE a PROT_NONE / NUMA-hinting entry */
export const ACCESS_PROTNONE: i32 = -3;
/** @access SWAP a swap entry: do_swap_page() */
export const ACCESS_SWAP: i32 = -4;
/** @access MARKER a PTE marker: handle_pte_marker() */
export const ACCESS_MARKER: i32 = -5;
/** @access MIGRATION a migration entry: wait for the migration to finish */
export const ACCESS_MIGRATION: i32 = -6;
/** @access OTHER another non-present entry (device-private, device-exclusive) */
export const ACCESS_OTHER: i32 = -7;
/** @access HUGE a PMD leaf that the access cannot use as is (a write to a read-only THP) */
export const ACCESS_HUGE: i32 = -8;
/** @access HWPOISON a hwpoison entry: do_swap_page() answers VM_FAULT_HWPOISON (SIGBUS, BUS_MCEERR_AR) */
export const ACCESS_HWPOISON: i32 = -9;
/** @access HUGE_PMD_FAULT the PMD is none and the VMA allows a PMD-sized THP here: do_huge_pmd_anonymous_page() */
export const ACCESS_HUGE_PMD_FAULT: i32 = -10;
/** @access LOG_FULL the trace log (FAST_LOG) has no room for this access: deliver it and call again; nothing changed */
export const ACCESS_LOG_FULL: i32 = -11;
/** @access ENOMEM a fault needed a frame or a page table and none was left; nothing changed */
export const ACCESS_ENOMEM: i32 = -12;

// fast-path permission bits of handle_access() (what the TypeScript side read off the VMA)
/** The VMA is private anonymous memory the fast path may fault in. */
export const FAST_ANON: u32 = 1;
/** VM_WRITE: fresh pages are mapped writable. */
export const FAST_VM_WRITE: u32 = 2;
/** mm_forbids_zeropage() or the caller wants no zero page: reads allocate too. */
export const FAST_NO_ZEROPAGE: u32 = 4;
/**
 * thp_vma_allowable_orders() allows the VMA mTHP orders: a write to a none PTE is
 * alloc_anon_folio()'s to take (do_anonymous_folio()), not the fast path's.
 */
export const FAST_MTHP: u32 = 8;
/** thp_vma_allowable_order(PMD_ORDER) and the aligned 2 MiB fits the VMA: a none PMD takes a THP fault. */
export const FAST_THP_PMD: u32 = 64;
/**
 * The core may take a write-protect fault here itself, by the strategy's rule (Header.wpRule):
 * a private VMA with its anon_vma and no uffd-wp, and nobody in TypeScript who must see the
 * decision (a tracepoint, a transient isolation or migration).
 */
export const FAST_WP: u32 = 128;
/**
 * The core may take a swap-in here itself, by the strategy's rule (Header.swapRule): a private
 * VMA with its own anon_vma (the root of its chain) and no uffd-wp, and nobody who must see the
 * do_swap_page() decision.
 */
export const FAST_SWAP: u32 = 512;
/** VM_SOFTDIRTY: soft-dirty tracking of the VMA need not see the next write (pte_needs_soft_dirty_wp() is false). */
export const FAST_VM_SOFTDIRTY: u32 = 1024;
/**
 * Someone subscribes to the tracepoints of accesses and faults, but only to see each event in
 * order: the core records them in the trace log (trace_log.ts) for delivery after the call.
 */
export const FAST_LOG: u32 = 256;
/**
 * Under FAST_LOG, only the write-protect faults are logged: the caller tells the run's stores
 * to its reader itself, in one call, and nobody listens to first-touch faults.
 */
export const FAST_LOG_WP_ONLY: u32 = 2048;

// @ts-ignore: decorator
@inline function pteSlotOrLeaf(mm: u32, a: u64): u32 {
  // 0: no table; otherwise the PTE slot, or the PMD slot when the PMD is a leaf (tagged by bit 0)
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return 0;
  return slotUnder(pmdp, a);
}

/** pteSlotOrLeaf() below the PMD slot `pmdp` (non-zero) that covers `a`. */
// @ts-ignore: decorator
@inline function slotUnder(pmdp: u32, a: u64): u32 {
  const pmd = entryLoad(pmdp);
  if (isTableEntry(pmd)) return entryTable(pmd) + (pteIndex(a) << 3);
  if (pmd_leaf(pmd)) return pmdp | 1;
  return 0;
}

/** pmd_none() for `a`, the upper levels missing included. */
function pmd_none_at(mm: u32, a: u64): bool {
  const pmdp = walk_pmdp(mm, a);
  return pmdp == 0 || pte_none(entryLoad(pmdp));
}

/** is_pmd_migration_entry() of the PMD covering `a`. */
function pmd_migration_at(mm: u32, a: u64): bool {
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return false;
  const pmd = entryLoad(pmdp);
  return is_swap_pte(pmd) && is_migration_entry(pmd);
}

/** ACCESS_* for a non-present, non-none entry. */
// @ts-ignore: decorator
@inline function nonPresentCode(pte: u64): i32 {
  if (pte_protnone(pte)) return ACCESS_PROTNONE;
  const t = swp_type(pte);
  if (t < MAX_SWAPFILES) return ACCESS_SWAP;
  if (is_pte_marker_entry(pte)) return ACCESS_MARKER;
  if (is_migration_entry(pte)) return ACCESS_MIGRATION;
  if (is_hwpoison_entry(pte)) return ACCESS_HWPOISON;
  return ACCESS_OTHER;
}

/**
 * One access by the simulated CPU to `va` in `mm`: a read returns the page's tag (≥ 0), a write
 * stores the tag `hi:lo` and returns 0; `write` = ACCESS_FAULT_WRITE only faults the page in
 * for writing, as GUP's faultin_page() does, without storing. The caller has checked the VMA
 * allows the access.
 *
 * With FAST_ANON, a none entry is faulted in on the spot (do_anonymous_page()): a read maps the
 * shared zero page (unless FAST_NO_ZEROPAGE), a write a fresh zeroed exclusive page joining
 * anon_vma `anonVma` (non-zero) at page index `index`. `prot` is the VMA's vm_page_prot.
 * Otherwise returns a negative ACCESS_* code and changes nothing. Under FAST_LOG a completed
 * access, and the faults it took, are recorded in the trace log (the frame reached included).
 */
export function handle_access(
  ctx: u32, mm: u32, va: f64, write: u32, lo: u32, hi: u32,
  fast: u32, anonVma: u32, index: u32, prot: u32,
): f64 {
  const a = <u64>va;
  return accessAt(ctx, mm, a, pteSlotOrLeaf(mm, a), write, lo, hi, fast, anonVma, index, prot);
}

/** handle_access() with the walk done: `slot` is what pteSlotOrLeaf() says of `a`. */
function accessAt(
  ctx: u32, mm: u32, a: u64, slot: u32, write: u32, lo: u32, hi: u32,
  fast: u32, anonVma: u32, index: u32, prot: u32,
): f64 {
  if ((fast & FAST_LOG) && !log_has_room(ctx)) return <f64>ACCESS_LOG_FULL;
  if (slot & 1) return accessLeaf(ctx, slot & ~1, a, write, lo, hi, fast);
  let pte: u64 = slot != 0 ? entryLoad(slot) : 0;
  if (pte_none(pte)) {
    // a PMD migration entry is no none PMD: the fault waits (pmd_migration_entry_wait())
    if (slot == 0 && pmd_migration_at(mm, a)) return <f64>ACCESS_MIGRATION;
    if (!(fast & FAST_ANON)) return <f64>ACCESS_NEED_FAULT;
    // __handle_mm_fault(): a none PMD in a THP-eligible VMA goes to create_huge_pmd()
    if (slot == 0 && (fast & FAST_THP_PMD) && pmd_none_at(mm, a)) return <f64>ACCESS_HUGE_PMD_FAULT;
    if (write && anonVma == 0) {
      // do_anonymous_page() allocates the page table (pte_alloc()) before vmf_anon_prepare():
      // a fault that finds no table fails before the VMA gets its anon_vma
      if (!pt_reserve_upto(ctx, tables_missing(mm, a, 3))) return <f64>ACCESS_ENOMEM;
      allocPteSlot(ctx, mm, a);
      pt_unreserve(ctx);
      return <f64>ACCESS_NEED_FAULT;
    }
    const alloc = write != 0 || (fast & FAST_NO_ZEROPAGE) != 0;
    if (alloc && (fast & FAST_MTHP)) return <f64>ACCESS_NEED_FAULT;
    const r = do_anonymous_page(ctx, mm, a, slot, alloc, fast, anonVma, index, prot);
    if (r < 0) return <f64>r;
    if (slot == 0) slot = pteSlotOrLeaf(mm, a);
    pte = entryLoad(slot);
    // logged here, not in do_anonymous_page(): kept small, it stays inlined
    if ((fast & (FAST_LOG | FAST_LOG_WP_ONLY)) == FAST_LOG) trace_log(ctx, alloc ? LOG_ANON : LOG_ZERO_PAGE, alloc ? <u32>pte_pfn(pte) : 0, 0, 0, 0, 0, 0, a, 0);
  }
  if (!pte_present(pte)) {
    const code = nonPresentCode(pte);
    if (code != ACCESS_SWAP || !(fast & FAST_SWAP)) return <f64>code;
    const r = do_swap_page_core(ctx, mm, slot, a, pte, write, fast, anonVma, index, prot);
    if (r < 0) return <f64>r;
    // the access goes on as its retry would: a write to a page mapped read-only faults again
    pte = entryLoad(slot);
  }
  if (pte_protnone(pte)) return <f64>ACCESS_PROTNONE;
  if (write && !pte_write(pte)) {
    if (!(fast & FAST_WP)) return <f64>ACCESS_WP_FAULT;
    const r = do_wp_page_core(ctx, mm, slot, a, pte, fast, anonVma, index);
    if (r < 0) return <f64>r;
    pte = entryLoad(slot);
  }
  // the MMU sets accessed, and dirty on a write
  const ad: u64 = write ? (_PAGE_ACCESSED | _PAGE_DIRTY) : _PAGE_ACCESSED;
  if ((pte & ad) != ad) atomic.or<u64>(slot, ad);
  return accessDone(ctx, <u32>pte_pfn(pte), a, write, lo, hi, fast);
}

/** The load or store itself, into frame `pfn`, recorded in the trace log under FAST_LOG. */
// @ts-ignore: decorator
@inline function accessDone(ctx: u32, pfn: u32, a: u64, write: u32, lo: u32, hi: u32, fast: u32): f64 {
  const c = contentAddr(pfn);
  let value: u64;
  if (write) {
    // a fault-in for writing (GUP, populate) stores nothing and is no access of the process
    if (write == ACCESS_FAULT_WRITE) return 0;
    value = (<u64>hi << 32) | <u64>lo;
    tagStore(c, value);
  } else {
    value = atomic.load<u64>(c);
  }
  if ((fast & FAST_LOG) && !(write && (fast & FAST_LOG_WP_ONLY))) trace_log(ctx, LOG_ACCESS, pfn, 0, 0, 0, 0, write, a, value);
  return write ? 0 : <f64>value;
}

/**
 * handle_access() for `n` pages from `va`, `stride` pages apart, in one call: a write stores
 * `hi:lo` plus `step` per page (page i gets value + i·step); the page index advances with the
 * address (one VMA, linear). Stops at the first page whose access needs the kernel, having
 * changed nothing there: returns done·16 + (−code) — all done is n·16; a read's values are not
 * returned (a touch). The caller keeps the run inside one VMA and one PMD (the fast bits hold
 * for all of it).
 */
export function handle_access_range(
  ctx: u32, mm: u32, va: f64, n: u32, stride: u32, write: u32, lo: u32, hi: u32, step: u32,
  fast: u32, anonVma: u32, index: u32, prot: u32,
): f64 {
  if (write == 1 && stride == 1 && anonRunsAllowed(fast, anonVma)) {
    return accessRangeWithRuns(ctx, mm, va, n, lo, hi, step, fast, anonVma, index, prot);
  }
  return accessRange(ctx, mm, va, n, stride, write, lo, hi, step, fast, anonVma, index, prot, false);
}

/** handle_access_range() of a write run whose none PTEs anonWriteRun() may take: its own loop, so the other runs' loop stays small. */
function accessRangeWithRuns(
  ctx: u32, mm: u32, va: f64, n: u32, lo: u32, hi: u32, step: u32, fast: u32, anonVma: u32, index: u32, prot: u32,
): f64 {
  return accessRange(ctx, mm, va, n, 1, 1, lo, hi, step, fast, anonVma, index, prot, true);
}

/** The loop of handle_access_range(); with `runs` (a constant where it is inlined), none PTEs go to anonWriteRun(). */
// @ts-ignore: decorator
@inline function accessRange(
  ctx: u32, mm: u32, va: f64, n: u32, stride: u32, write: u32, lo: u32, hi: u32, step: u32,
  fast: u32, anonVma: u32, index: u32, prot: u32, runs: bool,
): f64 {
  let value: u64 = (<u64>hi << 32) | <u64>lo;
  const dv: u64 = <u64>step;
  const da: u64 = <u64>stride << 12;
  let a = <u64>va;
  let idx = index;
  // one PMD for the whole run: its slot is walked to once (once its tables exist), and no
  // table is freed inside the call
  let pmdp = walk_pmdp(mm, a);
  for (let i: u32 = 0; i < n; i++) {
    if (pmdp == 0) pmdp = walk_pmdp(mm, a);
    const slot = pmdp != 0 ? slotUnder(pmdp, a) : 0;
    if (runs && slot != 0 && !(slot & 1) && pte_none(load<u64>(slot))) {
      const done = anonWriteRun(ctx, mm, slot, a, n - i, value, dv, anonVma, idx, prot);
      if (done > 0) {
        i += done - 1;
        a += <u64>done << 12;
        idx += done;
        value += dv * <u64>done;
        continue;
      }
    }
    const r = accessAt(ctx, mm, a, slot, write, <u32>value, <u32>(value >> 32), fast, anonVma, idx, prot);
    if (r < 0) return <f64>i * 16.0 - r;
    a += da;
    idx += stride;
    value += dv;
  }
  return <f64>n * 16.0;
}

/**
 * Whether a write run may map its none PTEs by anonWriteRun(): a private anonymous VMA with
 * its anon_vma, writable, no mTHP orders (alloc_anon_folio() chooses there), and nobody to
 * tell of each first-touch fault or store (no trace log, or one for write-protect faults only).
 */
// @ts-ignore: decorator
@inline function anonRunsAllowed(fast: u32, anonVma: u32): bool {
  const need = FAST_ANON | FAST_VM_WRITE;
  return (fast & need) == need && !(fast & FAST_MTHP) && anonVma != 0 &&
    (!(fast & FAST_LOG) || (fast & FAST_LOG_WP_ONLY) != 0);
}

/**
 * Whether newAnonFolioAlone() may make a new folio: one context attached (nobody else in the
 * core) and no frame failure injected (no attempt to draw).
 */
// @ts-ignore: decorator
@inline export function newAnonFolioAloneOk(): bool {
  return ctx_up() && atomic.load<u32>(faultAttrAddr(FAIL_FRAME) + offsetof<FaultAttr>("armed")) == 0;
}

/**
 * alloc_pages(ctx, 0, 0), folio_add_new_anon_rmap(RMAP_EXCLUSIVE) at `mapping` (an anon_vma's
 * word) and `index`, and folio_add_lru() of a new small anonymous folio, under
 * newAnonFolioAloneOk(): its struct page written whole, each field once, as the three leave it
 * (straight onto the LRU when there is no per-CPU batch). Its contents are the caller's.
 * NO_PFN when no frame is free.
 */
// @ts-ignore: decorator
@inline export function newAnonFolioAlone(ctx: u32, mapping: u32, index: u32): u32 {
  const pfn = alloc_frame_alone(ctx);
  if (pfn == NO_PFN) return NO_PFN;
  const batched = atomic.load<u32>(layoutBase() + offsetof<Header>("lruBatchSize")) != 0;
  const p = pfn_to_page(pfn);
  p.flags = (1 << PG_swapbacked) | (1 << PG_anon_exclusive) | (batched ? 0 : 1 << PG_lru);
  p._refcount = 1;
  p._mapcount = 0;
  p.mapping = mapping;
  p.index = index;
  p.private_ = 0;
  if (batched) folio_add_lru(ctx, pfn);
  return pfn;
}

/**
 * do_anonymous_page() for the run of none PTEs from `slot` (at most `max`, within its PTE table),
 * each followed by its store (`value` + i·`dv` into page i): what the accesses one by one would
 * do, in the same order — the same frames, the same counts — with the frames reserved at once
 * and the counters added to once. Returns the pages done; 0 (nothing changed) when no frame
 * is free, while frame failures are injected, or with other contexts attached: the accesses
 * one by one then fail, or draw their failures, at the page they would. With fewer frames free
 * than none PTEs, the run maps as many pages as there are frames.
 */
function anonWriteRun(
  ctx: u32, mm: u32, slot: u32, a: u64, max: u32, value: u64, dv: u64, anonVma: u32, index: u32, prot: u32,
): u32 {
  if (!newAnonFolioAloneOk()) return 0;
  const room: u32 = 512 - pteIndex(a);
  const limit = max < room ? max : room;
  let nr: u32 = 1;
  while (nr < limit && pte_none(load<u64>(slot + (nr << 3)))) nr++;
  // as many as are free: the access after them finds none and fails there, as it would have
  const free = frames_free();
  if (free < nr) nr = free;
  if (nr == 0 || !frames_reserve(ctx, nr)) return 0;
  const base: u64 = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  const tagged = hdr().contentStride == 8;
  const mapping = (anonVma << 2) | PAGE_MAPPING_ANON;
  let v = value;
  for (let i: u32 = 0; i < nr; i++) {
    const pfn = newAnonFolioAlone(ctx, mapping, index + i);
    // the tag is stored below: with no data bytes, GFP_ZERO's clearing is not needed
    if (!tagged) clear_page_contents(pfn);
    const pte = pte_mkwrite(pte_mkdirty(pfn_pte(<u64>pfn, base)));
    page_table_check_pte_set(a + (<u64>i << 12), pte);
    store<u64>(slot + (i << 3), pte);
    store<u64>(contentAddr(pfn), v);
    v += dv;
  }
  add_mm_counter(mm, MM_ANONPAGES, <i32>nr);
  count_vm_events(FAULT_ANON, nr);
  return nr;
}

/** handle_access_list()'s code for an address outside the VMA the call was given. */
export const LIST_OTHER_VMA: i32 = 14;

/**
 * handle_access() for a list of `n` addresses in one call: entry i of the context's scratch area
 * (its lower half: the upper is the trace log) is two f64 words, the address and (for a write)
 * the value stored there. The caller names the VMA (its bounds, the page index at its start,
 * the fast bits and vm_page_prot holding for all of it: no PMD-sized THP faults there); the call stops at the first address outside it
 * (LIST_OTHER_VMA) or needing the kernel, as handle_access_range() does: returns done·16 +
 * the code, having changed nothing at that address.
 */
export function handle_access_list(
  ctx: u32, mm: u32, n: u32, write: u32, fast: u32, anonVma: u32, start: f64, end: f64, index0: u32, prot: u32,
): f64 {
  const list = ctxOf(ctx).scratch;
  for (let i: u32 = 0; i < n; i++) {
    const a = load<f64>(list + (i << 4));
    if (a < start || a >= end) return <f64>i * 16.0 + <f64>LIST_OTHER_VMA;
    const value = write ? <u64>load<f64>(list + (i << 4) + 8) : 0;
    const idx = index0 + <u32>((<u64>a - <u64>start) >> 12);
    const r = handle_access(ctx, mm, a, write, <u32>value, <u32>(value >> 32), fast, anonVma, idx, prot);
    if (r < 0) return <f64>i * 16.0 - r;
  }
  return <f64>n * 16.0;
}

/** populate_range()'s code for a none entry that begins a run (with `runs`). */
export const POPULATE_RUN: i32 = 15;

/**
 * populate_vma_page_range() for `n` pages from `va` of one VMA and one PMD: a page already
 * present as asked (writable, for `write`; a PROT_NONE entry, which GUP's faults leave as it is)
 * is passed over untouched; any other is faulted in as faultin_page() does (handle_access() with
 * ACCESS_FAULT_WRITE, or a read). Stops at the first page that needs the kernel, as
 * handle_access_range() does: returns done·16 + (−code), or + POPULATE_RUN.
 */
export function populate_range(
  ctx: u32, mm: u32, va: f64, n: u32, write: u32, runs: u32, fast: u32, anonVma: u32, index: u32, prot: u32,
): f64 {
  let a = va;
  let idx = index;
  for (let i: u32 = 0; i < n; i++) {
    const slot = pteSlotOrLeaf(mm, <u64>a);
    const e: u64 = slot != 0 ? entryLoad(slot & ~1) : 0;
    // with `runs`, a none entry begins a run the caller maps at once (do_anonymous_pages())
    if (runs && !(slot & 1) && pte_none(e)) return <f64>i * 16.0 + <f64>POPULATE_RUN;
    if (!(pte_present(e) && (pte_protnone(e) || !write || pte_write(e)))) {
      const r = handle_access(ctx, mm, a, write ? ACCESS_FAULT_WRITE : 0, 0, 0, fast, anonVma, idx, prot);
      if (r < 0) return <f64>i * 16.0 - r;
    }
    a += 4096.0;
    idx++;
  }
  return <f64>n * 16.0;
}

/** handle_access()'s `write` value for a write fault without a store (GUP, MADV_POPULATE_WRITE). */
export const ACCESS_FAULT_WRITE: u32 = 2;

function accessLeaf(ctx: u32, pmdp: u32, a: u64, write: u32, lo: u32, hi: u32, fast: u32): f64 {
  const pmd = entryLoad(pmdp);
  if (pte_protnone(pmd)) return <f64>ACCESS_PROTNONE;
  if (write && !pte_write(pmd)) return <f64>ACCESS_HUGE;
  const ad: u64 = write ? (_PAGE_ACCESSED | _PAGE_DIRTY) : _PAGE_ACCESSED;
  if ((pmd & ad) != ad) atomic.or<u64>(pmdp, ad);
  return accessDone(ctx, <u32>pte_pfn(pmd) + pteIndex(a), a, write, lo, hi, fast);
}

/**
 * do_anonymous_page() for one none PTE, at `ptep` when its table exists (else 0: the tables are
 * allocated). `alloc`: a fresh page (a write fault, or no zero page); otherwise the zero page.
 * Reserves what it needs first: ACCESS_ENOMEM changes nothing.
 */
// @ts-ignore: decorator
@inline function do_anonymous_page(
  ctx: u32, mm: u32, a: u64, ptep: u32, alloc: bool, fast: u32, anonVma: u32, index: u32, prot: u32,
): i32 {
  if (alloc && anonVma == 0) return ACCESS_NEED_FAULT;
  // with the PTE table there (the access found its none entry) only the frame is needed
  if (ptep == 0 && !pt_reserve_upto(ctx, tables_missing(mm, a, 3))) return ACCESS_ENOMEM;
  if (alloc && !frames_reserve(ctx, 1)) {
    if (ptep == 0) pt_unreserve(ctx);
    return ACCESS_ENOMEM;
  }
  let slot = ptep;
  if (slot == 0) {
    slot = allocPteSlot(ctx, mm, a);
    pt_unreserve(ctx);
  }
  const base: u64 = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  let pte: u64;
  if (alloc) {
    const pfn = alloc_pages(ctx, 0, GFP_ZERO);
    folio_add_new_anon_rmap(pfn, anonVma, index, RMAP_EXCLUSIVE);
    folio_add_lru(ctx, pfn);
    add_mm_counter(mm, MM_ANONPAGES, 1);
    pte = pfn_pte(<u64>pfn, base);
    if (fast & FAST_VM_WRITE) pte = pte_mkwrite(pte_mkdirty(pte));
    count_vm_events(FAULT_ANON, 1);
  } else {
    pte = pfn_pte(0, base) | _PAGE_SPECIAL;
    count_vm_events(FAULT_ZERO_PAGE, 1);
  }
  page_table_check_pte_set(a, pte);
  // set_ptes(): a plain store in Linux (WRITE_ONCE); a Wasm atomic store is an XCHG, which
  // only another thread walking the tables (GUP-fast) needs ordered
  if (ctx_up()) store<u64>(slot, pte); else entryStore(slot, pte);
  return 0;
}

/** The PTE slot for `a`, installing missing tables from the context's reservation. */
export function allocPteSlot(ctx: u32, mm: u32, a: u64): u32 {
  const pmdp = walk_alloc_pmdp(ctx, mm, a);
  let me = entryLoad(pmdp);
  if (pte_none(me)) {
    const idx = pt_alloc_table(ctx);
    me = pfn_pte(<u64>idx, _PAGE_TABLE);
    entryStore(pmdp, me);
    atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
  }
  return entryTable(me) + (pteIndex(a) << 3);
}

// ---- per-CPU LRU batches (mm/swap.c) ----------------------------------------------------------

/**
 * folio_add_lru(): with LRU batching on (lru_batch_size > 0), the folio waits in this CPU's
 * (this context's) batch holding a reference until the batch is full or drained — the
 * transient reference behind Linux 5.9–5.18's unnecessary COWs. Off: straight onto the LRU.
 */
export function folio_add_lru(ctx: u32, folio: u32): void {
  const size = atomic.load<u32>(layoutBase() + offsetof<Header>("lruBatchSize"));
  if (size == 0) {
    const fl = pageAddr(folio) + offsetof<Page>("flags");
    if (ctx_up()) store<u32>(fl, load<u32>(fl) | (1 << PG_lru)); else setPageFlag(folio, PG_lru);
    return;
  }
  folio_ref_add(folio, 1);
  const C = ctxOf(ctx);
  store<u32>(ctx + CTX_LRU_OFFSET + (C.lruCount << 2), folio);
  C.lruCount = C.lruCount + 1;
  if (C.lruCount >= size) lru_add_drain(ctx);
}

/** lru_add_drain(): move this CPU's batch onto the LRU, dropping the batch's references. */
export function lru_add_drain(ctx: u32): u32 {
  const C = ctxOf(ctx);
  const n = C.lruCount;
  for (let i: u32 = 0; i < n; i++) {
    const folio = load<u32>(ctx + CTX_LRU_OFFSET + (i << 2));
    setPageFlag(folio, PG_lru);
    folio_put_refs(folio, 1);
  }
  C.lruCount = 0;
  if (n) count_vm_events(LRU_BATCH_DRAINED, n);
  return n;
}

export function lru_batch_count(ctx: u32): u32 {
  return ctxOf(ctx).lruCount;
}

/** The i-th folio waiting in this CPU's LRU batch. */
export function lru_batch_folio(ctx: u32, i: u32): u32 {
  return i < ctxOf(ctx).lruCount ? load<u32>(ctx + CTX_LRU_OFFSET + (i << 2)) : NO_PFN;
}

/** Sets the per-CPU LRU batch size: 0 (off), up to CTX_LRU_SLOTS (Linux: 15 before 6.x, 31 now). */
export function set_lru_batch_size(n: u32): i32 {
  if (n > CTX_LRU_SLOTS) return -EINVAL;
  atomic.store<u32>(layoutBase() + offsetof<Header>("lruBatchSize"), n);
  return 0;
}

// ---- do_wp_page() ------------------------------------------------------------------------------

/** @wpfact PFN the page mapped at the address */
export const WPF_PFN: u32 = 0;
/** @wpfact FOLIO its folio */
export const WPF_FOLIO: u32 = 1;
/** @wpfact PAGE_FLAGS the page's flags (PageAnonExclusive is per page) */
export const WPF_PAGE_FLAGS: u32 = 2;
/** @wpfact FOLIO_FLAGS the folio's flags (PG_lru, PG_swapcache, PG_locked …) */
export const WPF_FOLIO_FLAGS: u32 = 3;
/** @wpfact REFCOUNT folio_ref_count() */
export const WPF_REFCOUNT: u32 = 4;
/** @wpfact MAPCOUNT folio_mapcount() */
export const WPF_MAPCOUNT: u32 = 5;
/** @wpfact SWAPCOUNT swap count of the folio's slot when it is in the swap cache */
export const WPF_SWAPCOUNT: u32 = 6;
/** @wpfact PTE low 32 bits of the entry */
export const WPF_PTE: u32 = 7;
/** @wpfact MAPPING the folio's mapping word (anon_vma id << 2 | PAGE_MAPPING_ANON …) */
export const WPF_MAPPING: u32 = 8;
/** @wpfact KIND what is mapped: WP_ANON, WP_ZERO, WP_FILE */
export const WPF_KIND: u32 = 9;
export const WPF_WORDS: u32 = 10;

/** @wpkind ANON an anonymous (or KSM) page */
export const WP_ANON: u32 = 1;
/** @wpkind ZERO the shared zero page, or another special mapping */
export const WP_ZERO: u32 = 2;
/** @wpkind FILE a shmem/file page */
export const WP_FILE: u32 = 3;

/**
 * The facts a COW strategy decides on, for the present entry at `va`: written as WPF_WORDS u32
 * words at the start of the scratch area. Returns the WP_* kind, or a negative ACCESS_* code
 * when the entry is not a present 4 KiB mapping (the caller re-runs the access).
 */
export function wp_fault_info(ctx: u32, mm: u32, va: f64): i32 {
  const a = <u64>va;
  const slot = pteSlotOrLeaf(mm, a);
  if (slot == 0) return ACCESS_NEED_FAULT;
  if (slot & 1) return ACCESS_HUGE;
  const pte = entryLoad(slot);
  if (!pte_present(pte)) return pte_none(pte) ? ACCESS_NEED_FAULT : nonPresentCode(pte);
  const out = ctxOf(ctx).scratch;
  const pfn = <u32>pte_pfn(pte);
  let kind = WP_ZERO;
  memory.fill(out, 0, WPF_WORDS << 2);
  store<u32>(out + (WPF_PTE << 2), <u32>pte);
  if (!pte_special(pte) && pfn_valid(pfn)) {
    const folio = page_folio(pfn);
    kind = folio_test_anon(folio) ? WP_ANON : WP_FILE;
    store<u32>(out + (WPF_PFN << 2), pfn);
    store<u32>(out + (WPF_FOLIO << 2), folio);
    store<u32>(out + (WPF_PAGE_FLAGS << 2), pageFlags(pfn));
    const ff = pageFlags(folio);
    store<u32>(out + (WPF_FOLIO_FLAGS << 2), ff);
    store<i32>(out + (WPF_REFCOUNT << 2), folio_ref_count(folio));
    store<i32>(out + (WPF_MAPCOUNT << 2), folio_mapcount(folio));
    if (ff & (1 << PG_swapcache)) {
      store<u32>(out + (WPF_SWAPCOUNT << 2), swap_count(folio_swap_slot(folio)));
    }
    store<u32>(out + (WPF_MAPPING << 2), pfn_to_page(folio).mapping);
  } else {
    store<u32>(out + (WPF_PFN << 2), pfn);
    store<u32>(out + (WPF_FOLIO << 2), pfn);
  }
  store<u32>(out + (WPF_KIND << 2), kind);
  return <i32>kind;
}

/** wp_page_reuse() flags */
/** Mark the page PageAnonExclusive (SetPageAnonExclusive() in do_wp_page()). */
export const REUSE_SET_EXCLUSIVE: u32 = 1;
/** folio_move_anon_rmap() into `anonVma`: the page now belongs to this VMA's anon_vma alone. */
export const REUSE_MOVE_ANON: u32 = 2;
/** FAULT_FLAG_UNSHARE: only mark it exclusive; the PTE stays read-only. */
export const REUSE_UNSHARE: u32 = 4;

/**
 * wp_page_reuse(): keep the page, now writable, young and dirty. Returns 0, or a negative
 * ACCESS_* code (nothing changed) when the entry is not a present 4 KiB page.
 */
export function wp_page_reuse(ctx: u32, mm: u32, va: f64, flags: u32, anonVma: u32): i32 {
  const a = <u64>va;
  const slot = pteSlotOrLeaf(mm, a);
  if (slot == 0 || (slot & 1)) return ACCESS_NEED_FAULT;
  const pte = entryLoad(slot);
  if (!pte_present(pte) || pte_special(pte)) return ACCESS_NEED_FAULT;
  wpPageReuseAt(slot, a, pte, flags, anonVma);
  return 0;
}

function wpPageReuseAt(slot: u32, a: u64, pte: u64, flags: u32, anonVma: u32): void {
  const pfn = <u32>pte_pfn(pte);
  const folio = page_folio(pfn);
  if (flags & REUSE_MOVE_ANON) folio_move_anon_rmap(folio, anonVma);
  if (flags & REUSE_SET_EXCLUSIVE) SetPageAnonExclusive(pfn);
  if (flags & REUSE_UNSHARE) {
    count_vm_events(FAULT_UNSHARE, 1);
    return;
  }
  // ptep_set_access_flags(): only ever adds permissions and A/D
  const bits: u64 = _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY;
  // page_table_check_pte_flags() sees set_ptes() only, not ptep_set_access_flags(): a uffd-wp
  // bit left behind when the VMA was registered again without WP (userfaultfd_register_range()
  // replaces the modes, the bits stay; do_wp_page() then asks no handler) stays on the PTE made
  // writable here, as in Linux
  page_table_check_pte_set(a, (pte | bits) & ~_PAGE_UFFD_WP);
  atomic.or<u64>(slot, bits);
  count_vm_events(FAULT_WP_REUSE, 1);
}

/** wp_page_copy() flags */
/** FAULT_FLAG_UNSHARE: map the copy read-only, keeping soft-dirty and uffd-wp. */
export const WPCOPY_UNSHARE: u32 = 1;
/** VM_WRITE: map the copy writable (maybe_mkwrite()). */
export const WPCOPY_VM_WRITE: u32 = 2;

/**
 * wp_page_copy(): a new exclusive page (a copy of the old one, or zeroed when the old one is the
 * zero page) replaces the entry at `va`; the old page loses this mapping and its reference.
 * The new folio joins anon_vma `anonVma` at page index `index`. Returns the new pfn, or
 * ACCESS_ENOMEM (nothing changed) / another negative ACCESS_* code.
 */
export function wp_page_copy(ctx: u32, mm: u32, va: f64, anonVma: u32, index: u32, flags: u32): i32 {
  const a = <u64>va;
  const slot = pteSlotOrLeaf(mm, a);
  if (slot == 0) return ACCESS_NEED_FAULT;
  if (slot & 1) return ACCESS_HUGE;
  const old = entryLoad(slot);
  if (!pte_present(old)) return pte_none(old) ? ACCESS_NEED_FAULT : nonPresentCode(old);
  return wpPageCopyAt(ctx, mm, slot, a, old, anonVma, index, flags);
}

// @ts-ignore: decorator
@inline function wpPageCopyAt(ctx: u32, mm: u32, slot: u32, a: u64, old: u64, anonVma: u32, index: u32, flags: u32): i32 {
  const oldPfn = <u32>pte_pfn(old);
  const zero = pte_special(old) || !pfn_valid(oldPfn);
  const alone = newAnonFolioAloneOk();
  const nw = alone ? newAnonFolioAlone(ctx, (anonVma << 2) | PAGE_MAPPING_ANON, index) : alloc_pages(ctx, 0, zero ? GFP_ZERO : 0);
  if (nw == NO_PFN) return ACCESS_ENOMEM;
  if (!zero) copy_page_contents(nw, oldPfn);
  else if (alone) clear_page_contents(nw);
  if (!alone) {
    folio_add_new_anon_rmap(nw, anonVma, index, RMAP_EXCLUSIVE);
    folio_add_lru(ctx, nw);
  }
  let pte = pfn_pte(<u64>nw, old & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  if (flags & WPCOPY_UNSHARE) {
    if (pte_soft_dirty(old)) pte = pte_mksoft_dirty(pte);
    if (pte_uffd_wp(old)) pte = pte_mkuffd_wp(pte);
    count_vm_events(FAULT_UNSHARE, 1);
  } else {
    pte = pte_mkdirty(pte);
    if (flags & WPCOPY_VM_WRITE) pte = pte_mkwrite(pte);
    count_vm_events(FAULT_WP_COPY, 1);
  }
  // ptep_clear_flush() + set_pte_at(): with other CPUs an exchange, so that no A/D bit an MMU
  // sets meanwhile is lost; alone in the core, a store
  page_table_check_pte_set(a, pte);
  if (ctx_up()) store<u64>(slot, pte); else atomic.xchg<u64>(slot, pte);
  if (zero) {
    add_mm_counter(mm, MM_ANONPAGES, 1);
  } else {
    const folio = page_folio(oldPfn);
    const page = pageAddr(folio);
    if (alone && folio == oldPfn && (load<u32>(page, offsetof<Page>("flags")) & (1 << PG_head)) == 0 &&
        (load<u32>(page, offsetof<Page>("mapping")) & PAGE_MAPPING_ANON) != 0) {
      // a small anonymous folio (no counter moves: the new page is anonymous too)
      small_folio_unmap_alone(page, folio);
    } else {
      const m = mm_counter_of(folio);
      if (m != MM_ANONPAGES) {
        add_mm_counter(mm, m, -1);
        add_mm_counter(mm, MM_ANONPAGES, 1);
      }
      folio_remove_rmap_ptes(folio, oldPfn, 1);
      folio_put_refs(folio, 1);
    }
  }
  return <i32>nw;
}

// ---- do_wp_page() decided in the core ----------------------------------------------------------
//
// A built-in strategy's wpReuse() for the common case, restated as WPR_* bits: a small anonymous
// folio, not KSM, not in the swap cache, not locked by anyone. The core decides such a fault
// in the access call and does wp_page_reuse() or wp_page_copy() at once; any other fault, and
// any fault the rule's copy would need to wait or fail for (no free frame, injected failures
// armed), goes to TypeScript unchanged, where the strategy itself decides.

/** the core decides write-protect faults by the bits below */
export const WPR_ON: u32 = 1;
/** PageAnonExclusive() → reuse (Linux ≥ 5.19, 6c287605fd56) */
export const WPR_EXCLUSIVE: u32 = 2;
/** folio_ref_count() == 1 → reuse (Linux ≥ 5.9, 09854ba94c6a); without: folio_mapcount() ≤ 1 (reuse_swap_page()) */
export const WPR_REFCOUNT: u32 = 4;
/** folio_ref_count() > 3 → copy; a folio off the LRU has the local batch drained before it is judged (d4c470970d45) */
export const WPR_DRAIN: u32 = 8;
/** folio_mapcount() == 1 too, under the page lock (Linux 5.9 – 5.17) */
export const WPR_MAPCOUNT_TOO: u32 = 16;
/** reuse moves the page to the faulting VMA's anon_vma (folio_move_anon_rmap()) */
export const WPR_MOVE_ANON: u32 = 32;
/** reuse marks the page PageAnonExclusive */
export const WPR_SET_EXCLUSIVE: u32 = 64;
/** a page of a large folio that is not PageAnonExclusive is copied (6.12's wp_can_reuse_anon_folio(): folio_test_large()) */
export const WPR_LARGE_COPIES: u32 = 128;

/** Sets the rule the core decides write-protect faults by (WPR_* bits; 0: TypeScript decides all). */
export function set_wp_rule(bits: u32): void {
  atomic.store<u32>(layoutBase() + offsetof<Header>("wpRule"), bits);
}

/**
 * do_wp_page() for a write to the present read-only entry `pte` at `slot`, under FAST_WP:
 * returns 0 when the fault was taken (the entry is now writable), or ACCESS_WP_FAULT with
 * nothing changed for TypeScript's do_wp_page().
 */
function do_wp_page_core(ctx: u32, mm: u32, slot: u32, a: u64, pte: u64, fast: u32, anonVma: u32, index: u32): i32 {
  const rule = atomic.load<u32>(layoutBase() + offsetof<Header>("wpRule"));
  if (!(rule & WPR_ON) || !(fast & FAST_VM_WRITE) || anonVma == 0 || pte_uffd_wp(pte)) return ACCESS_WP_FAULT;
  const pfn = <u32>pte_pfn(pte);
  if (pte_special(pte) || !pfn_valid(pfn)) {
    // the shared zero page: a fresh zeroed page, whatever the strategy
    return wpCopyInCore(ctx, mm, slot, a, pte, anonVma, index, WP_CORE_ZERO, fast, 0, 0, 0, 0);
  }
  const folio = page_folio(pfn);
  if (!folio_test_anon(folio)) return ACCESS_WP_FAULT; // a page-cache page: wp_page_copy_file()
  // the facts as the fault found them, for the log (a strategy's rule text and a copy's verdict)
  const flags0 = pageFlags(folio);
  const rc0 = folio_ref_count(folio);
  if ((rule & WPR_EXCLUSIVE) && PageAnonExclusive(pfn)) {
    if (fast & FAST_LOG) trace_log(ctx, LOG_WP_REUSE, pfn, 0, folio_mapcount(folio), rc0, rc0, flags0, a, 0);
    wpPageReuseAt(slot, a, pte, REUSE_SET_EXCLUSIVE, anonVma);
    count_vm_events(WP_CORE_REUSE, 1);
    return 0;
  }
  const odd: u32 = (1 << PG_head) | (1 << PG_swapcache) | (1 << PG_locked);
  if ((flags0 & odd) || folio_test_ksm(folio)) {
    // a PTE-mapped page of a large folio the rule copies, logged with page_mapcount() — this
    // page's mappings, its PTEs and the folio's PMDs: what can observe the copy
    if ((flags0 & odd) == (1 << PG_head) && (rule & WPR_LARGE_COPIES) && !folio_test_ksm(folio)) {
      const map = (fast & FAST_LOG) ? page_mapcount_raw(pfn) + 1 + folio_entire_mapcount(folio) : -1;
      // the folio's flags as the decision read them, but for PageAnonExclusive: this page's (clear)
      return wpCopyInCore(ctx, mm, slot, a, pte, anonVma, index, WP_CORE_COPY, fast, map, rc0, rc0, flags0 & ~(1 << PG_anon_exclusive));
    }
    return ACCESS_WP_FAULT;
  }
  // the counts are read once each, and logged as the decision read them (other threads may
  // change them meanwhile: GUP-fast takes references without any lock)
  let reuse: bool;
  let rc1 = rc0;
  let map: i32 = -1;
  if (rule & WPR_REFCOUNT) {
    if (rule & WPR_DRAIN) {
      if (rc0 > 3) {
        reuse = false;
      } else {
        if (!(flags0 & (1 << PG_lru))) {
          lru_add_drain(ctx);
          rc1 = folio_ref_count(folio);
        }
        reuse = rc1 == 1;
      }
    } else {
      reuse = rc0 == 1;
    }
    if (reuse && (rule & WPR_MAPCOUNT_TOO)) {
      map = folio_mapcount(folio);
      reuse = map == 1;
    }
  } else {
    map = folio_mapcount(folio);
    reuse = map <= 1;
  }
  if ((fast & FAST_LOG) && map < 0) map = folio_mapcount(folio);
  if (reuse) {
    if (fast & FAST_LOG) trace_log(ctx, LOG_WP_REUSE, pfn, 0, map, rc0, rc1, flags0, a, 0);
    const flags = (rule & WPR_MOVE_ANON ? REUSE_MOVE_ANON : 0) | (rule & WPR_SET_EXCLUSIVE ? REUSE_SET_EXCLUSIVE : 0);
    wpPageReuseAt(slot, a, pte, flags, anonVma);
    count_vm_events(WP_CORE_REUSE, 1);
    return 0;
  }
  return wpCopyInCore(ctx, mm, slot, a, pte, anonVma, index, WP_CORE_COPY, fast, map, rc0, rc1, flags0);
}

/**
 * do_wp_page_core()'s wp_page_copy(), counted under `item`; ACCESS_WP_FAULT (nothing changed)
 * when no frame is free to take without failing. Under FAST_LOG the copy is logged with the
 * old folio's counts as the decision read them.
 */
function wpCopyInCore(ctx: u32, mm: u32, slot: u32, a: u64, pte: u64, anonVma: u32, index: u32, item: u32,
  fast: u32, map: i32, rc0: i32, rc1: i32, flags0: u32): i32 {
  if (!frame_available(ctx)) return ACCESS_WP_FAULT;
  const nw = wpPageCopyAt(ctx, mm, slot, a, pte, anonVma, index, WPCOPY_VM_WRITE);
  if (nw < 0) return ACCESS_WP_FAULT;
  count_vm_events(item, 1);
  if (fast & FAST_LOG) {
    const zero = item == WP_CORE_ZERO;
    trace_log(ctx, zero ? LOG_WP_ZERO : LOG_WP_COPY, zero ? 0 : <u32>pte_pfn(pte), <u32>nw, map, rc0, rc1, flags0, a, 0);
  }
  return 0;
}

// ---- do_swap_page() decided in the core ----------------------------------------------------------
//
// A built-in strategy's swapin() for the common case, restated as SWR_* bits: an order-0 swap
// entry whose folio is in no swap cache or in it unlocked, not KSM, not poisoned. The core reads
// the page back (swap_read_folio()), decides exclusivity as the strategy would, and maps it
// (swapin_map()) in the access call; anything else — a fault that would wait, fail or need a
// frame it cannot take without failing — goes to TypeScript unchanged.

/** the core takes swap-ins by the bits below */
export const SWR_ON: u32 = 1;
/**
 * folio_ref_count() decides, after swap_free() and should_try_to_free_swap() (Linux ≥ 5.18,
 * c145e0b47c77); without: a write fault's reuse_swap_page(), folio_mapcount() + swap count ≤ 1 (≤ 5.17)
 */
export const SWR_REFCOUNT: u32 = 2;
/** pte_swp_exclusive() maps the page exclusive at once (Linux ≥ 5.19, 1493a1913e34) */
export const SWR_ENTRY_EXCLUSIVE: u32 = 4;
/** a read fault maps an exclusive page too, writable unless a write must be noticed (Linux ≥ 6.2) */
export const SWR_READ_EXCLUSIVE: u32 = 8;

/** Sets the rule the core takes swap-ins by (SWR_* bits; 0: TypeScript takes all). */
export function set_swap_rule(bits: u32): void {
  atomic.store<u32>(layoutBase() + offsetof<Header>("swapRule"), bits);
}

/**
 * do_swap_page() for the swap entry `pte` at PTE slot `slot`, under FAST_SWAP: 0 when the page
 * is mapped (perhaps read-only: a write then takes its write-protect fault), or ACCESS_SWAP
 * with nothing changed for TypeScript's do_swap_page().
 */
function do_swap_page_core(ctx: u32, mm: u32, slot: u32, a: u64, pte: u64, write: u32, fast: u32, anonVma: u32, index: u32, prot: u32): i32 {
  const rule = atomic.load<u32>(layoutBase() + offsetof<Header>("swapRule"));
  if (!(rule & SWR_ON) || anonVma == 0) return ACCESS_SWAP;
  const swapSlot = <u32>swp_offset(pte);
  let pfn = swap_cache_pfn(swapSlot);
  if (pfn != NO_PFN) {
    // a poisoned page's SIGBUS, a locked folio's wait, a KSM or large folio: TypeScript's
    if (pageFlags(pfn) & ((1 << PG_hwpoison) | (1 << PG_locked) | (1 << PG_head)) || folio_test_ksm(pfn)) return ACCESS_SWAP;
  } else {
    if (!frame_available(ctx)) return ACCESS_SWAP;
    const r = swapin_read(ctx, swapSlot);
    if (r < 0) return ACCESS_SWAP;
    pfn = <u32>r;
  }
  folio_ref_add(pfn, 1); // the reference the mapping takes
  let exclusive = false;
  let writable = false;
  if (rule & SWR_REFCOUNT) {
    const fromEntry = (rule & SWR_ENTRY_EXCLUSIVE) != 0 && pte_swp_exclusive(pte);
    swap_free(swapSlot);
    if (write && folio_ref_count(pfn) == 2) folio_free_swap(pfn); // should_try_to_free_swap()
    const rc = folio_ref_count(pfn);
    if (rule & SWR_READ_EXCLUSIVE) {
      exclusive = fromEntry || rc == 1;
      // pte_needs_soft_dirty_wp(): soft-dirty tracking must see the next write, so it waits for a write-protect fault
      writable = exclusive && ((fast & FAST_VM_SOFTDIRTY) != 0 || pte_swp_soft_dirty(pte));
    } else {
      exclusive = write != 0 && rc == 1;
      writable = exclusive;
    }
  } else {
    // reuse_swap_page()
    if (write) {
      const n = folio_mapcount(pfn) + <i32>swap_count(swapSlot);
      if (n <= 1) {
        if (n == 1) delete_from_swap_cache(pfn);
        exclusive = true;
        writable = true;
      }
    }
    swap_free(swapSlot);
  }
  const w = writable && exclusive && (fast & FAST_VM_WRITE) != 0;
  const flags = (w ? SWAPIN_WRITABLE : 0) | (exclusive ? SWAPIN_EXCLUSIVE : 0) | (w && write ? SWAPIN_DIRTY : 0);
  swapinMapAt(mm, slot, a, pte, pfn, prot, flags, anonVma, index);
  count_vm_events(SWAPIN_CORE, 1);
  return 0;
}

/**
 * finish_fault() for a shmem page: map `pfn` (already in the page cache, which holds its own
 * reference) at `va` with one more reference and map count. `write`: writable and dirty.
 * Returns 0, -EEXIST when something is mapped there, or ACCESS_ENOMEM (nothing changed).
 */
export function map_file_pte(ctx: u32, mm: u32, va: f64, pfn: u32, prot: u32, write: u32): i32 {
  const a = <u64>va;
  if (!pfn_valid(pfn)) return -EINVAL;
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, 3))) return ACCESS_ENOMEM;
  const slot = allocPteSlot(ctx, mm, a);
  pt_unreserve(ctx);
  if (!pte_none(entryLoad(slot))) return -EEXIST;
  const folio = page_folio(pfn);
  folio_ref_add(folio, 1);
  folio_add_rmap_ptes(folio, pfn, 1);
  add_mm_counter(mm, testPageFlag(folio, PG_swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES, 1);
  // set_pte_range(): vm_page_prot of a shared writable mapping already allows writes
  let pte = pfn_pte(<u64>pfn, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_RW | _PAGE_PROTNONE)) | _PAGE_ACCESSED);
  if (write) pte = pte_mkdirty(pte);
  else if (pte_write(pte) && testPageFlag(folio, PG_dirty)) pte = pte_mkdirty(pte);
  page_table_check_pte_set(a, pte);
  entryStore(slot, pte);
  count_vm_events(FAULT_FILE, 1);
  return 0;
}

/**
 * do_cow_fault() + finish_fault(): a write fault on a none PTE of a private file mapping. The
 * page-cache page `pfn` (the caller holds it; the page cache keeps it) is copied into a new
 * exclusive anonymous page of anon_vma `anonVma` at `index`, mapped young and dirty, writable
 * with WPCOPY_VM_WRITE. The frame is allocated before the page table (vmf->cow_page, then
 * finish_fault()'s pte_alloc()), as in Linux. Returns the new pfn, -EEXIST when something is
 * mapped there, or ACCESS_ENOMEM (nothing changed but tables installed).
 */
export function do_cow_fault(ctx: u32, mm: u32, va: f64, pfn: u32, anonVma: u32, index: u32, prot: u32, flags: u32): i32 {
  const a = <u64>va;
  if (!pfn_valid(pfn)) return -EINVAL;
  const nw = alloc_pages(ctx, 0, 0);
  if (nw == NO_PFN) return ACCESS_ENOMEM;
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, 3))) {
    free_pages(nw, 0);
    return ACCESS_ENOMEM;
  }
  const slot = allocPteSlot(ctx, mm, a);
  pt_unreserve(ctx);
  if (!pte_none(entryLoad(slot))) {
    free_pages(nw, 0);
    return -EEXIST;
  }
  copy_page_contents(nw, pfn);
  folio_add_new_anon_rmap(nw, anonVma, index, RMAP_EXCLUSIVE);
  folio_add_lru(ctx, nw);
  let pte = pfn_pte(<u64>nw, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED);
  pte = pte_mkdirty(pte);
  if (flags & WPCOPY_VM_WRITE) pte = pte_mkwrite(pte);
  page_table_check_pte_set(a, pte);
  entryStore(slot, pte);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  return <i32>nw;
}
