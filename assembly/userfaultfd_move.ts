// mm/userfaultfd.c and mm/huge_memory.c: UFFDIO_MOVE's page-table work — move_pages_pte() with
// move_present_pte(), move_swap_pte() and move_zeropage_pte(), and move_pages_huge_pmd().
//
// The loop of move_pages() (which VMAs, which PMD, when to split, when to retry) lives in
// src/mm/userfaultfd_move.ts; it calls here once per run of PTEs that lie under one source PMD
// and one destination PMD, and once per PMD leaf. A run moves page by page in address order,
// each entry read when its turn comes, as the kernel's loop reads it (so overlapping ranges
// behave as they do in Linux), and stops at the first entry the kernel layer must decide on.
//
// What the kernel's locks buy it, and what is not modelled: the PT locks (double_pt_lock()), the
// folio lock and the anon_vma write lock are taken around each move in Linux so that no rmap
// walk and no fault sees a half-moved page. Here a run is one call on the calling thread: no
// other simulated actor runs inside it. The pte_same() re-checks that give -EAGAIN in Linux have
// nothing to catch, and are not written out.

import { ctxOf } from "./layout";
import { EEXIST, ENOENT, EBUSY, EFAULT, EINVAL, ENOMEM, NO_PFN } from "./layout";
import {
  pte_none, pte_present, pte_pfn, pfn_pte, pte_dirty, pte_mkdirty, pte_mkwrite, pte_mksoft_dirty,
  pte_swp_mksoft_dirty, pte_swp_exclusive, pmd_leaf, pmd_mkhuge, swp_offset, non_swap_entry,
  is_migration_entry, _PAGE_PRESENT, _PAGE_USER, _PAGE_PROTNONE, _PAGE_ACCESSED, _PAGE_SPECIAL,
} from "./pte";
import {
  page_folio, folio_test_large, folio_maybe_dma_pinned, PageAnonExclusive, is_zero_pfn, testPageFlag,
  pfn_to_page, PG_locked,
} from "./page";
import {
  entryLoad, entryStore, entryTable, isTableEntry, pteIndex, walk_pmdp, walk_alloc_pmdp, __pte_alloc,
  tables_missing, pt_reserve_upto, pt_unreserve, PMD_SIZE,
} from "./pgtable";
import { MmWalk, walk_of, walk_page_range, WALK_STOP } from "./pagewalk";
import { folio_move_anon_rmap } from "./rmap";
import { swap_cache_pfn } from "./swapfile";
import { is_huge_zero_folio, is_pmd_migration_entry } from "./huge_memory";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";

/** UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES (include/uapi/linux/userfaultfd.h) */
export const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u32 = 1 << 1;

// Why a run stopped (ctx.aux0 after move_pages_ptes()): 0 it did every page; an errno; or one of
// the codes below, for what the kernel layer does before it comes back to the same page.
/** The page belongs to a large folio: split_folio() it and retry (move_pages_pte()). */
export const MOVE_STOP_LARGE: u32 = 0x1001;
/** A migration entry: the kernel waits for it (migration_entry_wait()) and retries. */
export const MOVE_STOP_MIGRATION: u32 = 0x1002;
/** The folio is locked: the kernel sleeps in folio_lock() and retries. */
export const MOVE_STOP_LOCKED: u32 = 0x1003;

/** What the destination's entries start from: mk_pte() with the VMA's vm_page_prot (x86 sets A there). */
// @ts-ignore: decorator
@inline function basePte(prot: u32): u64 {
  return (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
}

/** move_pages_pte() as pte_entry(), over source PTEs under one PMD. */
@unmanaged class MovePtesWalk extends MmWalk {
  /** dst − src, modulo 2^64. */
  delta: u64;
  /** The destination's PTE table (one PMD holds every destination page of the run). */
  dstTable: u32;
  mode: u32;
  anonVma: u32;
  /** linear_page_index(dst_vma, dst) of the run's first page. */
  dstIndex: u32;
  prot0: u64;
  done: u32;
  stop: u32;

  // @ts-ignore: decorator
  @inline stopAt(addr: u64, why: u32): i32 {
    this.stop = why;
    this.next = addr;
    return WALK_STOP;
  }

  pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    const d = addr + this.delta;
    const dstp = this.dstTable + (pteIndex(d) << 3);
    // a PTE marker, a swap or migration entry is not none either
    if (!pte_none(entryLoad(dstp))) return this.stopAt(addr, EEXIST);
    const index = this.dstIndex + this.done;
    if (pte_none(pte)) {
      if (!(this.mode & UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES)) return this.stopAt(addr, ENOENT);
      // nothing to do to move a hole
      this.done++;
      return 0;
    }
    if (pte_present(pte)) {
      const pfn = <u32>pte_pfn(pte);
      if (is_zero_pfn(pfn)) {
        // move_zeropage_pte(): the destination's own zero PTE, with its VMA's protection
        atomic.xchg<u64>(ptep, 0);
        entryStore(dstp, pfn_pte(0, this.prot0) | _PAGE_SPECIAL);
        this.done++;
        return 0;
      }
      const folio = page_folio(pfn);
      // vm_normal_folio() + PageAnonExclusive(&folio->page): the head page's bit is the one
      // asked first, as the kernel asks it (a large folio's own page is asked after the split)
      if (!PageAnonExclusive(folio)) return this.stopAt(addr, EBUSY);
      if (testPageFlag(folio, PG_locked)) return this.stopAt(addr, MOVE_STOP_LOCKED);
      if (folio_test_large(folio)) return this.stopAt(addr, MOVE_STOP_LARGE);
      // move_present_pte()
      if (folio_maybe_dma_pinned(folio)) return this.stopAt(addr, EBUSY);
      const old = atomic.xchg<u64>(ptep, 0);
      // folio_move_anon_rmap() + index only after the pin check (d7a08838ab74): a refused move
      // leaves the folio as it was
      folio_move_anon_rmap(folio, this.anonVma);
      pfn_to_page(folio).index = index;
      // a fresh entry: soft-dirty so userspace sees the move, dirty only if the source was
      // (75cb1cca2c88), writable (the VMA is); uffd-wp does not come along
      let e = pte_mksoft_dirty(pfn_pte(<u64>pfn, this.prot0));
      if (pte_dirty(old)) e = pte_mkdirty(e);
      e = pte_mkwrite(e);
      page_table_check_pte_set(d, e);
      entryStore(dstp, e);
      this.done++;
      return 0;
    }
    if (non_swap_entry(pte)) {
      // a PTE marker, device-private, device-exclusive or hwpoison entry
      return this.stopAt(addr, is_migration_entry(pte) ? MOVE_STOP_MIGRATION : EFAULT);
    }
    if (!pte_swp_exclusive(pte)) return this.stopAt(addr, EBUSY);
    // move_swap_pte(): the swap-cache folio, if any, follows the entry to its new place, for the
    // swap-in that may find it there (c50f8e6053b0 and 0ea148a79919)
    const cached = swap_cache_pfn(<u32>swp_offset(pte));
    if (cached != NO_PFN) {
      if (folio_test_large(cached)) return this.stopAt(addr, EBUSY);
      if (testPageFlag(cached, PG_locked)) return this.stopAt(addr, MOVE_STOP_LOCKED);
      folio_move_anon_rmap(cached, this.anonVma);
      pfn_to_page(cached).index = index;
    }
    // the entry moves as it is (SWP_EXCLUSIVE, uffd-wp and all), soft-dirty added
    entryStore(dstp, pte_swp_mksoft_dirty(atomic.xchg<u64>(ptep, 0)));
    this.done++;
    return 0;
  }
}

/**
 * move_pages_pte() for each of the `nr` pages from `src` to `dst`: both runs lie under one PMD
 * each, and both PMDs point at PTE tables (the caller allocated them: __pte_alloc(),
 * pte_alloc()). `anonVma` is the destination VMA's anon_vma, `dstIndex` linear_page_index() of
 * `dst`, `prot` its vm_page_prot. Present exclusive order-0 anon pages, zero-page PTEs and
 * exclusive swap entries move; holes count as moved with ALLOW_SRC_HOLES. Map counts, references
 * and RSS do not change (one mm). Returns the pages done; ctx.aux0 says why it stopped (0: it did
 * all `nr`; an errno; MOVE_STOP_*), ctx.next where. -EINVAL when a PMD is not a table.
 */
export function move_pages_ptes(
  ctx: u32, mm: u32, dst: f64, src: f64, nr: u32, mode: u32, anonVma: u32, dstIndex: u32, prot: u32,
): i32 {
  const C = ctxOf(ctx);
  C.aux0 = 0;
  C.nrRecords = 0;
  const s = <u64>src;
  const d = <u64>dst;
  const n = <u64>nr << 12;
  if (nr == 0 || (s & ~(PMD_SIZE - 1)) != ((s + n - 1) & ~(PMD_SIZE - 1)) ||
      (d & ~(PMD_SIZE - 1)) != ((d + n - 1) & ~(PMD_SIZE - 1))) return -EINVAL;
  const sp = walk_pmdp(mm, s);
  const dp = walk_pmdp(mm, d);
  if (sp == 0 || dp == 0 || !isTableEntry(entryLoad(sp)) || !isTableEntry(entryLoad(dp))) return -EINVAL;
  const w = walk_of<MovePtesWalk>(ctx, mm, s, 0);
  w.delta = d - s;
  w.dstTable = entryTable(entryLoad(dp));
  w.mode = mode;
  w.anonVma = anonVma;
  w.dstIndex = dstIndex;
  w.prot0 = basePte(prot);
  w.done = 0;
  w.stop = 0;
  const stopped = walk_page_range<MovePtesWalk>(w, s, s + n) == WALK_STOP;
  C.aux0 = stopped ? w.stop : 0;
  C.next = stopped ? <f64>w.next : src + <f64>n;
  return <i32>w.done;
}

/**
 * move_pages()'s loop over the spans it needs nothing of the kernel layer for: from `src`, for up
 * to `nr` pages, each span under one source and one destination PMD that both already point at
 * PTE tables, moved by move_pages_ptes() (with `dstIndex` advancing). Stops at the first PMD
 * that is anything else — a hole, a leaf, a table to allocate — leaving it untouched for the
 * kernel layer's own step of the loop (whose allocations, splits and errors stay there), or where
 * a span stops. Returns the pages done; ctx.aux0 is the span's stop code (0: all `nr` done, or a
 * PMD left to the kernel layer), ctx.next the source address it stopped at.
 */
export function move_pages_pte_spans(
  ctx: u32, mm: u32, dst: f64, src: f64, nr: u32, mode: u32, anonVma: u32, dstIndex: u32, prot: u32,
): u32 {
  const C = ctxOf(ctx);
  let s = <u64>src;
  let d = <u64>dst;
  const end = s + (<u64>nr << 12);
  let done: u32 = 0;
  C.aux0 = 0;
  while (s < end) {
    const sp = walk_pmdp(mm, s);
    if (sp == 0 || !isTableEntry(entryLoad(sp))) break;
    const dp = walk_pmdp(mm, d);
    if (dp == 0 || !isTableEntry(entryLoad(dp))) break;
    const sEnd = (s | (PMD_SIZE - 1)) + 1;
    const dEnd = (d | (PMD_SIZE - 1)) + 1;
    let span = end - s;
    if (sEnd - s < span) span = sEnd - s;
    if (dEnd - d < span) span = dEnd - d;
    const n = <u32>(span >> 12);
    const r = <u32>move_pages_ptes(ctx, mm, <f64>d, <f64>s, n, mode, anonVma, dstIndex + done, prot);
    done += r;
    if (r < n) return done;
    s += span;
    d += span;
  }
  C.aux0 = 0;
  C.next = <f64>s;
  return done;
}

/**
 * move_pages_huge_pmd(): the PMD leaf at `src` (PMD-aligned) moves whole to `dst` (PMD-aligned),
 * whose PMD slot exists and is none. A THP must be PageAnonExclusive and not maybe pinned; it
 * joins `anonVma` at `dstIndex` and is mapped dirty and writable (as mremap() treats a moved
 * entry); the huge zero folio is mapped with the destination's protection, nothing else. The
 * deposited page table stays with the mm (one mm: withdraw and deposit cancel). Returns 0,
 * -EBUSY, -ENOENT (no leaf there), -EEXIST (the destination PMD is not none),
 * MOVE_STOP_MIGRATION or MOVE_STOP_LOCKED (as positive codes), changing nothing unless 0.
 */
export function move_pages_huge_pmd(ctx: u32, mm: u32, dst: f64, src: f64, anonVma: u32, dstIndex: u32, prot: u32): i32 {
  const s = <u64>src;
  const d = <u64>dst;
  if ((s | d) & (PMD_SIZE - 1)) return -EINVAL;
  const sp = walk_pmdp(mm, s);
  const dp = walk_pmdp(mm, d);
  if (sp == 0) return -ENOENT;
  if (dp == 0) return -EINVAL;
  if (!pte_none(entryLoad(dp))) return -EEXIST;
  const pmd = entryLoad(sp);
  if (!pmd_leaf(pmd)) return is_pmd_migration_entry(pmd) ? <i32>MOVE_STOP_MIGRATION : -ENOENT;
  const folio = <u32>pte_pfn(pmd);
  let e = pmd_mkhuge(pfn_pte(<u64>folio, basePte(prot)));
  if (!is_huge_zero_folio(folio)) {
    if (!PageAnonExclusive(folio)) return -EBUSY;
    if (testPageFlag(folio, PG_locked)) return <i32>MOVE_STOP_LOCKED;
    if (folio_maybe_dma_pinned(folio)) return -EBUSY;
    atomic.xchg<u64>(sp, 0);
    folio_move_anon_rmap(folio, anonVma);
    pfn_to_page(folio).index = dstIndex;
    e = pte_mkwrite(pte_mkdirty(e));
  } else {
    atomic.xchg<u64>(sp, 0);
  }
  page_table_check_pmd_set(d, e);
  entryStore(dp, e);
  return 0;
}

/**
 * move_pages()'s loop over a run of whole PMD leaves: up to `nr` THPs from `src` to `dst` (both
 * PMD-aligned, the range covering all `nr`), each by move_pages_huge_pmd() onto a none PMD whose
 * slot exists, the destination index advancing by HPAGE_PMD_NR. Stops, changing nothing of it, at
 * the first PMD that is not that simple case — no source leaf, a destination slot to allocate or
 * not none, a folio move_pages_huge_pmd() refuses — which the kernel layer then takes on its own
 * (its errors, splits and allocations stay there). Returns the THPs moved.
 */
export function move_pages_huge_pmds(ctx: u32, mm: u32, dst: f64, src: f64, nr: u32, anonVma: u32, dstIndex: u32, prot: u32): u32 {
  let s = <u64>src;
  let d = <u64>dst;
  let done: u32 = 0;
  for (; done < nr; done++, s += PMD_SIZE, d += PMD_SIZE) {
    const sp = walk_pmdp(mm, s);
    if (sp == 0 || !pmd_leaf(entryLoad(sp))) break;
    const dp = walk_pmdp(mm, d);
    if (dp == 0 || !pte_none(entryLoad(dp))) break;
    if (move_pages_huge_pmd(ctx, mm, <f64>d, <f64>s, anonVma, dstIndex + done * <u32>(PMD_SIZE >> 12), prot) != 0) break;
  }
  return done;
}

/**
 * mm_alloc_pmd() (level 2: the PMD slot, allocating the tables above it) or __pte_alloc() /
 * pte_alloc() (level 3: a PTE table under a none PMD) for `va`. All or nothing. Returns 0, or
 * -ENOMEM; level 3 over a PMD that is not none is left alone (0).
 */
export function uffd_alloc_tables(ctx: u32, mm: u32, va: f64, level: u32): i32 {
  const a = <u64>va;
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, level))) return -ENOMEM;
  const pmdp = walk_alloc_pmdp(ctx, mm, a);
  let r: i32 = pmdp == 0 ? -ENOMEM : 0;
  if (r == 0 && level == 3 && pte_none(entryLoad(pmdp)) && __pte_alloc(ctx, mm, pmdp) == 0) r = -ENOMEM;
  pt_unreserve(ctx);
  return r;
}

/** What is at the PMD level over `va`, for move_pages()'s loop: UFFD_PMD_*. */
export function uffd_pmd_state(mm: u32, va: f64): u32 {
  const pmdp = walk_pmdp(mm, <u64>va);
  if (pmdp == 0) return UFFD_PMD_NO_SLOT;
  const pmd = entryLoad(pmdp);
  if (pte_none(pmd)) return UFFD_PMD_NONE;
  if (isTableEntry(pmd)) return UFFD_PMD_TABLE;
  return pmd_leaf(pmd) ? UFFD_PMD_LEAF : UFFD_PMD_SWAP;
}
/** mm_find_pmd() finds no PMD: a PGD or PUD entry above it is missing. */
export const UFFD_PMD_NO_SLOT: u32 = 0;
export const UFFD_PMD_NONE: u32 = 1;
export const UFFD_PMD_TABLE: u32 = 2;
/** pmd_trans_huge(): a THP or the huge zero folio. */
export const UFFD_PMD_LEAF: u32 = 3;
/** is_swap_pmd(): a PMD migration entry. */
export const UFFD_PMD_SWAP: u32 = 4;
