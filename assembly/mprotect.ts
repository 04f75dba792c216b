// change_protection() of mm/mprotect.c: new protection bits over a range, uffd-wp
// protect/resolve, and the 6.2 direct write-upgrade of exclusive anon pages. A walk of
// pagewalk.ts: change_huge_pmd() is its pmd_entry, change_pte_range()'s loop body its
// pte_entry; with uffd-wp markers the walk installs missing tables (WALK_ALLOC).

import { ctxOf, ctxCapacity, pushRecord, ENOMEM } from "./layout";
import {
  pte_none, pte_present, pte_protnone, pte_pfn, pte_write, pte_dirty, pte_uffd_wp,
  pte_soft_dirty, pte_special, pte_modify, pte_mkuffd_wp, pte_clear_uffd_wp, pte_mkwrite,
  pmd_leaf, is_writable_migration_entry, make_readable_exclusive_migration_entry,
  make_readable_migration_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, is_writable_device_exclusive_entry,
  make_readable_device_exclusive_entry, is_pte_marker_entry, is_poisoned_swp_entry,
  pte_swp_soft_dirty, pte_swp_mksoft_dirty, pte_swp_uffd_wp, pte_swp_mkuffd_wp,
  pte_swp_clear_uffd_wp, swp_offset, make_pte_marker, pte_wrprotect, pte_clear_soft_dirty,
  pte_swp_clear_soft_dirty, PTE_MARKER_UFFD_WP, PTE_PROT_MASK,
} from "./pte";
import { entryStore, isTableEntry, pt_reserve, pt_unreserve } from "./pgtable";
import { pfn_valid, page_folio, folio_test_anon, PageAnonExclusive } from "./page";
import { REC_PMD_PARTIAL, pmd_whole, count_none } from "./memory";
import { MmWalk, walk_of, walk_page_range, begin_range_op, ACTION_CONTINUE, WALK_ALLOC } from "./pagewalk";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";

/** MM_CP_TRY_CHANGE_WRITABLE: map writable right away where a write fault would not copy. */
export const MM_CP_TRY_CHANGE_WRITABLE: u32 = 1 << 0;
/** MM_CP_UFFD_WP: set uffd-wp (UFFDIO_WRITEPROTECT with MODE_WP). */
export const MM_CP_UFFD_WP: u32 = 1 << 2;
/** MM_CP_UFFD_WP_RESOLVE: clear uffd-wp, dropping uffd-wp markers. */
export const MM_CP_UFFD_WP_RESOLVE: u32 = 1 << 3;
/** clear_refs "4" (clear_soft_dirty()): write-protect and clear soft-dirty, to track writes. */
export const MM_CP_CLEAR_SOFT_DIRTY: u32 = 1 << 4;
// What can_change_pte_writable() and friends read off the VMA:
/** VM_WRITE on the VMA (the new protection may still lack _PAGE_RW in a private mapping). */
export const CP_VM_WRITE: u32 = 1 << 8;
/** VM_SHARED on the VMA. */
export const CP_VM_SHARED: u32 = 1 << 9;
/** vma_soft_dirty_enabled(): soft-dirty tracking wants write faults on clean PTEs. */
export const CP_SOFT_DIRTY_TRACKING: u32 = 1 << 10;
/** userfaultfd_wp(vma): the VMA is registered for uffd-wp. */
export const CP_VMA_UFFD_WP: u32 = 1 << 11;
/** userfaultfd_wp_use_markers(vma): protect none PTEs with uffd-wp markers (shmem). */
export const CP_UFFD_USE_MARKERS: u32 = 1 << 12;
/** Linux < 5.19 (before 6c287605fd56): a writable anon migration entry becomes readable, exclusivity forgotten. */
export const CP_MIGRATION_READ_ONLY: u32 = 1 << 13;
/** clear_soft_dirty(): swap-format entries only lose soft-dirty; writable migration entries stay writable. */
export const CP_KEEP_WRITABLE_ENTRIES: u32 = 1 << 14;

/** can_change_pte_writable() */
function canChangePteWritable(pte: u64, cp: u32): bool {
  if (!(cp & CP_VM_WRITE)) return false;
  if (pte_protnone(pte)) return false;
  if ((cp & CP_SOFT_DIRTY_TRACKING) && !pte_soft_dirty(pte)) return false;
  if ((cp & CP_VMA_UFFD_WP) && pte_uffd_wp(pte)) return false;
  if (!(cp & CP_VM_SHARED)) {
    const pfn = <u32>pte_pfn(pte);
    if (pte_special(pte) || !pfn_valid(pfn)) return false;
    return folio_test_anon(page_folio(pfn)) && PageAnonExclusive(pfn);
  }
  return pte_dirty(pte);
}

/** The new value of a present entry under change_pte_range()'s rules. */
// @ts-ignore: decorator
@inline function newPresent(old: u64, newprot: u64, cp: u32): u64 {
  let n = pte_modify(old, newprot);
  if (cp & MM_CP_UFFD_WP) n = pte_mkuffd_wp(n);
  else if (cp & MM_CP_UFFD_WP_RESOLVE) n = pte_clear_uffd_wp(n);
  if ((cp & MM_CP_TRY_CHANGE_WRITABLE) && !pte_write(n) && canChangePteWritable(n, cp)) {
    n = pte_mkwrite(n);
  }
  if (cp & MM_CP_CLEAR_SOFT_DIRTY) n = pte_clear_soft_dirty(pte_wrprotect(n));
  return n;
}

/** change_pmd_range() → change_pte_range() / change_huge_pmd(), as pmd_entry() and pte_entry(). */
@unmanaged class ChangeProtWalk extends MmWalk {
  prot: u64;
  cp: u32;
  markers: u32;
  cap: u32;
  pages: i32;

  /** change_huge_pmd() for a whole THP; a partial one is reported. Tables are descended. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (isTableEntry(pmd)) return 0;
    this.action = ACTION_CONTINUE;
    if (!pmd_whole(addr, next) || !pmd_leaf(pmd)) {
      if (ctxOf(this.ctx).nrRecords < this.cap) {
        pushRecord(this.ctx, REC_PMD_PARTIAL, <u32>((addr - this.base) >> 12), <u32>pte_pfn(pmd), <u32>pmd);
      }
      return 0;
    }
    while (true) {
      const n = newPresent(pmd, this.prot, this.cp);
      if (n == pmd) break;
      if (pte_write(n)) page_table_check_pmd_set(addr, n);
      const seen = atomic.cmpxchg<u64>(pmdp, pmd, n);
      if (seen == pmd) { this.pages += 512; break; }
      pmd = seen;
    }
    return 0;
  }

  /** change_pte_range() for one entry: a tally of 1 when it changed. */
  // @ts-ignore: decorator
  @inline pte_entry(slot: u32, old: u64, addr: u64): i32 {
    const cp = this.cp;
    let tally = 0;
    if (pte_present(old)) {
      while (true) {
        const n = newPresent(old, this.prot, cp);
        if (n == old) break;
        if (pte_write(n)) page_table_check_pte_set(addr, n);
        const seen = atomic.cmpxchg<u64>(slot, old, n);
        if (seen == old) { tally = 1; break; }
        old = seen;
      }
    } else if (!pte_none(old)) {
      let n = old;
      if (cp & CP_KEEP_WRITABLE_ENTRIES) {
        // clear_soft_dirty() of a swap-format entry: only the soft-dirty bit below
      } else if (is_writable_migration_entry(old)) {
        // seed I.8: exclusivity is remembered by the readable-exclusive type for anon folios
        const pfn = swp_offset(old);
        n = folio_test_anon(page_folio(<u32>pfn)) && (cp & CP_MIGRATION_READ_ONLY) == 0
          ? make_readable_exclusive_migration_entry(pfn)
          : make_readable_migration_entry(pfn);
        if (pte_swp_soft_dirty(old)) n = pte_swp_mksoft_dirty(n);
      } else if (is_writable_device_private_entry(old)) {
        n = make_readable_device_private_entry(swp_offset(old));
        if (pte_swp_uffd_wp(old)) n = pte_swp_mkuffd_wp(n);
      } else if (is_writable_device_exclusive_entry(old)) {
        n = make_readable_device_exclusive_entry(swp_offset(old));
        if (pte_swp_soft_dirty(old)) n = pte_swp_mksoft_dirty(n);
        if (pte_swp_uffd_wp(old)) n = pte_swp_mkuffd_wp(n);
      } else if (is_pte_marker_entry(old)) {
        if (is_poisoned_swp_entry(old)) return 0;
        if (cp & MM_CP_UFFD_WP_RESOLVE) { entryStore(slot, 0); return 1; }
        return 0;
      }
      if (cp & MM_CP_UFFD_WP) n = pte_swp_mkuffd_wp(n);
      else if (cp & MM_CP_UFFD_WP_RESOLVE) n = pte_swp_clear_uffd_wp(n);
      if (cp & MM_CP_CLEAR_SOFT_DIRTY) n = pte_swp_clear_soft_dirty(n);
      if (n != old) { entryStore(slot, n); tally = 1; }
    } else if (this.markers != 0) {
      entryStore(slot, make_pte_marker(PTE_MARKER_UFFD_WP));
      tally = 1;
    }
    return tally;
  }
  pte_tally(sum: u32): void {
    this.pages += <i32>sum;
  }
}

/**
 * change_protection() over [start, end) of `mm`: every present entry gets `newprot`
 * (P/W/U/PROTNONE bits; see vm_get_page_prot()), with the uffd-wp and write-upgrade rules of
 * change_pte_range(); writable migration and device entries become readable; uffd-wp markers
 * are installed or dropped. Entries are updated with a compare-exchange loop, so accessed and
 * dirty bits set concurrently by the simulated CPU survive.
 *
 * Returns the number of entries changed (the kernel's `pages`), or -EINVAL / -ENOMEM (only
 * when markers need new tables; nothing changed). A PMD leaf partly inside the range is left
 * alone and reported as a PMD_PARTIAL record: split it first.
 */
export function change_protection(ctx: u32, mm: u32, start: f64, end: f64, newprot: u32, cp: u32): i32 {
  const bad = begin_range_op(ctx, mm, start, end);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const markers = (cp & MM_CP_UFFD_WP) != 0 && (cp & CP_UFFD_USE_MARKERS) != 0;
  const from = <u64>start;
  const stop = <u64>end;
  // uffd-wp markers go into none PTEs too: change_prepare() installs the tables they need
  if (markers && !pt_reserve(ctx, count_none(ctx, mm, from, stop, false).tables)) return -ENOMEM;
  const w = walk_of<ChangeProtWalk>(ctx, mm, from, markers ? WALK_ALLOC : 0);
  w.prot = <u64>newprot & PTE_PROT_MASK;
  w.cp = cp;
  w.markers = markers ? 1 : 0;
  w.cap = ctxCapacity();
  w.pages = 0;
  walk_page_range<ChangeProtWalk>(w, from, stop);
  pt_unreserve(ctx);
  C.next = end;
  return w.pages;
}
