// change_protection() of mm/mprotect.c: new protection bits over a range, uffd-wp
// protect/resolve, and the 6.2 direct write-upgrade of exclusive anon pages.

import {
  ctxOf, ctxCapacity, pushRecord, PAGE_SIZE, NO_PFN, EINVAL, ENOMEM,
} from "./layout";
import {
  pte_none, pte_present, pte_protnone, pte_pfn, pte_write, pte_dirty, pte_uffd_wp,
  pte_soft_dirty, pte_special, pte_modify, pte_mkuffd_wp, pte_clear_uffd_wp, pte_mkwrite,
  pmd_leaf, is_writable_migration_entry, make_readable_exclusive_migration_entry,
  make_readable_migration_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, is_writable_device_exclusive_entry,
  make_readable_device_exclusive_entry, is_pte_marker_entry, is_poisoned_swp_entry,
  pte_swp_soft_dirty, pte_swp_mksoft_dirty, pte_swp_uffd_wp, pte_swp_mkuffd_wp,
  pte_swp_clear_uffd_wp, swp_offset, make_pte_marker, pfn_pte, pte_wrprotect, pte_clear_soft_dirty,
  pte_swp_clear_soft_dirty, PTE_MARKER_UFFD_WP, PTE_PROT_MASK,
  _PAGE_TABLE,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, entryTable, isTableEntry, pteIndex,
  mm_valid, pt_reserve, pt_unreserve, pt_alloc_table, mmAddr, MmStruct, PMD_SIZE, pgdSlot,
} from "./pgtable";
import { pfn_valid, page_folio, folio_test_anon, PageAnonExclusive } from "./page";
import { begin_range_op, REC_PMD_PARTIAL } from "./memory";
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
  const prot = <u64>newprot & PTE_PROT_MASK;
  const markers = (cp & MM_CP_UFFD_WP) != 0 && (cp & CP_UFFD_USE_MARKERS) != 0;
  let addr = <u64>start;
  const stop = <u64>end;
  const base = addr;
  if (markers) {
    const need = countMarkerTables(mm, addr, stop);
    if (!pt_reserve(ctx, need)) return -ENOMEM;
  }
  let pages: i32 = 0;
  const cap = ctxCapacity();

  while (addr < stop) {
    const next = min<u64>((addr + PMD_SIZE) & ~(PMD_SIZE - 1), stop);
    let pmdp = markers ? walk_alloc_pmdp(ctx, mm, addr) : walk_pmdp(mm, addr);
    if (pmdp == 0) { addr = next; continue; }
    let pmd = entryLoad(pmdp);
    if (pte_none(pmd)) {
      if (!markers) { addr = next; continue; }
      const idx = pt_alloc_table(ctx);
      if (idx == NO_PFN) { addr = next; continue; } // counted above, so not expected
      pmd = pfn_pte(<u64>idx, _PAGE_TABLE);
      entryStore(pmdp, pmd);
      atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
    }
    if (!isTableEntry(pmd)) {
      const whole = (addr & (PMD_SIZE - 1)) == 0 && next - addr == PMD_SIZE;
      if (!whole || !pmd_leaf(pmd)) {
        if (C.nrRecords < cap) pushRecord(ctx, REC_PMD_PARTIAL, <u32>((addr - base) >> 12), <u32>pte_pfn(pmd), <u32>pmd);
        addr = next;
        continue;
      }
      // change_huge_pmd()
      while (true) {
        const n = newPresent(pmd, prot, cp);
        if (n == pmd) break;
        if (pte_write(n)) page_table_check_pmd_set(addr, n);
        const seen = atomic.cmpxchg<u64>(pmdp, pmd, n);
        if (seen == pmd) { pages += 512; break; }
        pmd = seen;
      }
      addr = next;
      continue;
    }
    const table = entryTable(pmd);
    for (; addr < next; addr += PAGE_SIZE) {
      const slot = table + (pteIndex(addr) << 3);
      let old = entryLoad(slot);
      if (pte_present(old)) {
        while (true) {
          const n = newPresent(old, prot, cp);
          if (n == old) break;
          if (pte_write(n)) page_table_check_pte_set(addr, n);
          const seen = atomic.cmpxchg<u64>(slot, old, n);
          if (seen == old) { pages++; break; }
          old = seen;
        }
      } else if (!pte_none(old)) {
        let n = old;
        if (is_writable_migration_entry(old)) {
          const pfn = swp_offset(old);
          n = folio_test_anon(page_folio(<u32>pfn))
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
          if (is_poisoned_swp_entry(old)) continue;
          if (cp & MM_CP_UFFD_WP_RESOLVE) { entryStore(slot, 0); pages++; }
          continue;
        }
        if (cp & MM_CP_UFFD_WP) n = pte_swp_mkuffd_wp(n);
        else if (cp & MM_CP_UFFD_WP_RESOLVE) n = pte_swp_clear_uffd_wp(n);
        if (cp & MM_CP_CLEAR_SOFT_DIRTY) n = pte_swp_clear_soft_dirty(n);
        if (n != old) { entryStore(slot, n); pages++; }
      } else if (markers) {
        entryStore(slot, make_pte_marker(PTE_MARKER_UFFD_WP));
        pages++;
      }
    }
  }
  pt_unreserve(ctx);
  C.next = end;
  return pages;
}

/** Tables that installing uffd-wp markers over [addr, stop) would need. */
function countMarkerTables(mm: u32, addr: u64, stop: u64): u32 {
  // walk_alloc_pmdp() allocates at most a PUD and a PMD table per new gigabyte and a PTE
  // table per empty PMD slot; count them the simple way, one PMD at a time
  let n: u32 = 0;
  let lastU: u64 = <u64>-1;
  let lastG: u64 = <u64>-1;
  while (addr < stop) {
    const next = min<u64>((addr + PMD_SIZE) & ~(PMD_SIZE - 1), stop);
    const pmdp = walk_pmdp(mm, addr);
    if (pmdp == 0) {
      const g = addr >> 39;
      const u = addr >> 30;
      // whether the PGD-level table exists decides 1 or 2 upper tables
      if (u != lastU) {
        lastU = u;
        n++;
        if (g != lastG) {
          lastG = g;
          if (!pgdPopulated(mm, addr)) n++;
        }
      }
      n++;
    } else if (pte_none(entryLoad(pmdp))) {
      n++;
    }
    addr = next;
  }
  return n;
}

function pgdPopulated(mm: u32, addr: u64): bool {
  return isTableEntry(entryLoad(pgdSlot(mm, addr)));
}
