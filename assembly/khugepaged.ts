// Collapse of 512 PTEs into a PMD-mapped THP (mm/khugepaged.c): hpage_collapse_scan_pmd()
// and collapse_huge_page() for one aligned 2 MiB, as MADV_COLLAPSE (madvise_collapse()) and a
// khugepaged pass use them. The content of every page is copied into a fresh order-9 folio
// (none and zero-page entries read zero), which the PMD maps exclusive (RMAP_EXCLUSIVE); the
// old pages lose this mapping and its reference, and the PTE table becomes the table deposited
// with the new PMD. Pages the kernel must not copy away from refuse the collapse: a pinned page
// or one with any reference a mapping does not explain (is_refcount_suitable()), a locked one,
// one not on the LRU.

import { NO_PFN, HPAGE_PMD_NR, HPAGE_PMD_ORDER } from "./layout";
import {
  pte_none, pte_present, pte_pfn, pte_write, pte_young, pte_special, pte_uffd_wp, pte_swp_uffd_wp,
  pte_mkdirty, pte_mkwrite, pfn_pte, pmd_leaf, pmd_mkhuge, is_swap_pte, swp_type, MAX_SWAPFILES,
  _PAGE_PRESENT, _PAGE_USER, _PAGE_PROTNONE, _PAGE_ACCESSED,
} from "./pte";
import {
  walk_pmdp, entryLoad, entryStore, entryTable, isTableEntry, add_mm_counter, mmAddr, MmStruct,
  pgtable_trans_huge_deposit, tableAddr, PMD_SIZE, MM_ANONPAGES,
} from "./pgtable";
import {
  pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_count, folio_mapcount,
  folio_nr_pages, testPageFlag, setPageFlag, PG_lru, PG_locked, PG_swapcache, PG_referenced,
} from "./page";
import { folio_add_new_anon_rmap, folio_remove_rmap_ptes, folio_put_refs, RMAP_EXCLUSIVE } from "./rmap";
import { alloc_pages, GFP_ZERO } from "./page_alloc";
import { copy_page_contents } from "./content";
import { page_table_check_pmd_set } from "./page_table_check";

// enum scan_result, in include/trace/events/huge_memory.h's order
/** @scan FAIL */
export const SCAN_FAIL: i32 = 0;
/** @scan SUCCEED the PMD maps a fresh THP */
export const SCAN_SUCCEED: i32 = 1;
/** @scan PMD_NULL no PMD table there, or a non-present PMD */
export const SCAN_PMD_NULL: i32 = 2;
/** @scan PMD_NONE the PMD is none */
export const SCAN_PMD_NONE: i32 = 3;
/** @scan PMD_MAPPED a PMD maps a THP already */
export const SCAN_PMD_MAPPED: i32 = 4;
/** @scan EXCEED_NONE_PTE more none or zero-page PTEs than max_ptes_none */
export const SCAN_EXCEED_NONE_PTE: i32 = 5;
/** @scan EXCEED_SWAP_PTE more swap PTEs than max_ptes_swap */
export const SCAN_EXCEED_SWAP_PTE: i32 = 6;
/** @scan EXCEED_SHARED_PTE more pages mapped shared than max_ptes_shared */
export const SCAN_EXCEED_SHARED_PTE: i32 = 7;
/** @scan PTE_NON_PRESENT a non-present PTE other than swap (migration, marker …) */
export const SCAN_PTE_NON_PRESENT: i32 = 8;
/** @scan PTE_UFFD_WP a uffd-wp PTE */
export const SCAN_PTE_UFFD_WP: i32 = 9;
/** @scan PAGE_RO no PTE of the range is writable */
export const SCAN_PAGE_RO: i32 = 11;
/** @scan LACK_REFERENCED_PAGE khugepaged: too few young pages */
export const SCAN_LACK_REFERENCED_PAGE: i32 = 12;
/** @scan PAGE_NULL a PTE without a normal page */
export const SCAN_PAGE_NULL: i32 = 13;
/** @scan PAGE_COUNT a page has references its mappings do not explain (a pin, a pipe …) */
export const SCAN_PAGE_COUNT: i32 = 15;
/** @scan PAGE_LRU a page is not on the LRU (a per-CPU batch, isolated) */
export const SCAN_PAGE_LRU: i32 = 16;
/** @scan PAGE_LOCK a page is locked */
export const SCAN_PAGE_LOCK: i32 = 17;
/** @scan PAGE_ANON a page is not anonymous */
export const SCAN_PAGE_ANON: i32 = 18;
/** @scan ALLOC_HUGE_PAGE_FAIL no free aligned 2 MiB */
export const SCAN_ALLOC_HUGE_PAGE_FAIL: i32 = 21;
/** @scan NEEDS_SWAPIN swap PTEs within max_ptes_swap: swap them in, then collapse (__collapse_huge_page_swapin()) */
export const SCAN_NEEDS_SWAPIN: i32 = 64;

/** collapse flag: the khugepaged rules (max_ptes_* limits, referenced pages); without it MADV_COLLAPSE's. */
export const COLLAPSE_KHUGEPAGED: u32 = 1;
/** VM_WRITE: the new PMD is writable (maybe_pmd_mkwrite()). */
export const COLLAPSE_VM_WRITE: u32 = 2;

/**
 * is_refcount_suitable(): every reference is a mapping's (and the swap cache's, per page).
 * A pin, a pipe's reference or an isolation shows as a surplus.
 */
function is_refcount_suitable(folio: u32): bool {
  let expected = folio_mapcount(folio);
  if (testPageFlag(folio, PG_swapcache)) expected += <i32>folio_nr_pages(folio);
  return folio_ref_count(folio) == expected;
}

/**
 * hpage_collapse_scan_pmd() + collapse_huge_page() for the 2 MiB at `va` (aligned) of `mm`.
 * With COLLAPSE_KHUGEPAGED the limits `maxNone`, `maxSwap`, `maxShared` apply and at least one
 * page must be young (and half of them with swap PTEs); MADV_COLLAPSE has none of them. Returns
 * a SCAN_* code; only SCAN_SUCCEED changed anything. The new THP joins anon_vma `anonVma` at
 * page index `index`; `prot` is the VMA's vm_page_prot.
 */
export function collapse_huge_page(
  ctx: u32, mm: u32, va: f64, anonVma: u32, index: u32, prot: u32, flags: u32,
  maxNone: u32, maxSwap: u32, maxShared: u32,
): i32 {
  const haddr = <u64>va & ~(PMD_SIZE - 1);
  const pmdp = walk_pmdp(mm, haddr);
  if (pmdp == 0) return SCAN_PMD_NULL;
  const pmd = entryLoad(pmdp);
  if (pte_none(pmd)) return SCAN_PMD_NONE;
  if (pmd_leaf(pmd)) return SCAN_PMD_MAPPED;
  if (!isTableEntry(pmd)) return SCAN_PMD_NULL;
  const table = entryTable(pmd);
  const khugepaged = (flags & COLLAPSE_KHUGEPAGED) != 0;

  // the scan (hpage_collapse_scan_pmd()) and the isolation checks of
  // __collapse_huge_page_isolate(), which need no lock dropped in between here
  let noneOrZero: u32 = 0;
  let swap: u32 = 0;
  let shared: u32 = 0;
  let referenced: u32 = 0;
  let writable = false;
  let mapped: i32 = 0;
  for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
    const pte = entryLoad(table + (i << 3));
    if (is_swap_pte(pte)) {
      if (swp_type(pte) >= MAX_SWAPFILES) return SCAN_PTE_NON_PRESENT;
      if (pte_swp_uffd_wp(pte)) return SCAN_PTE_UFFD_WP;
      swap++;
      if (khugepaged && swap > maxSwap) return SCAN_EXCEED_SWAP_PTE;
      continue;
    }
    if (pte_none(pte) || (pte_present(pte) && pte_special(pte) && pte_pfn(pte) == 0)) {
      if (khugepaged && ++noneOrZero > maxNone) return SCAN_EXCEED_NONE_PTE;
      continue;
    }
    if (pte_uffd_wp(pte)) return SCAN_PTE_UFFD_WP;
    if (pte_write(pte)) writable = true;
    const pfn = <u32>pte_pfn(pte);
    if (pte_special(pte) || !pfn_valid(pfn)) return SCAN_PAGE_NULL;
    const folio = page_folio(pfn);
    if (!folio_test_anon(folio)) return SCAN_PAGE_ANON;
    // folio_likely_mapped_shared()
    if (folio_mapcount(folio) > (folio_test_large(folio) ? <i32>folio_nr_pages(folio) : 1) && khugepaged && ++shared > maxShared) {
      return SCAN_EXCEED_SHARED_PTE;
    }
    if (!testPageFlag(folio, PG_lru)) return SCAN_PAGE_LRU;
    if (testPageFlag(folio, PG_locked)) return SCAN_PAGE_LOCK;
    if (!is_refcount_suitable(folio)) return SCAN_PAGE_COUNT;
    if (khugepaged && (pte_young(pte) || testPageFlag(folio, PG_referenced))) referenced++;
    mapped++;
  }
  if (swap > 0) {
    // khugepaged swaps in only when half the range is young (__collapse_huge_page_swapin())
    if (khugepaged && referenced < HPAGE_PMD_NR / 2) return SCAN_LACK_REFERENCED_PAGE;
    return SCAN_NEEDS_SWAPIN;
  }
  if (!writable) return SCAN_PAGE_RO;
  if (khugepaged && referenced == 0) return SCAN_LACK_REFERENCED_PAGE;

  const folio = alloc_pages(ctx, HPAGE_PMD_ORDER, GFP_ZERO);
  if (folio == NO_PFN) return SCAN_ALLOC_HUGE_PAGE_FAIL;
  // pmdp_collapse_flush(): GUP-fast sees the PMD gone (B4) and backs off
  atomic.store<u64>(pmdp, 0);
  // __collapse_huge_page_copy(): none and zero-page entries leave their subpage zeroed
  for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
    const slot = table + (i << 3);
    const pte = atomic.xchg<u64>(slot, 0);
    if (pte_none(pte) || pte_special(pte)) continue;
    const pfn = <u32>pte_pfn(pte);
    copy_page_contents(folio + i, pfn);
    const old = page_folio(pfn);
    if (pte_young(pte)) setPageFlag(old, PG_referenced);
    folio_remove_rmap_ptes(old, pfn, 1);
    folio_put_refs(old, 1);
  }
  folio_add_new_anon_rmap(folio, anonVma, index, RMAP_EXCLUSIVE);
  setPageFlag(folio, PG_lru);
  // the emptied PTE table is deposited with the new PMD (it is counted in nr_ptes already)
  pgtable_trans_huge_deposit(mm, <u32>((table - tableAddr(0)) >> 12));
  atomic.sub<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
  let npmd = pmd_mkhuge(pfn_pte(<u64>folio, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED));
  npmd = pte_mkdirty(npmd);
  if (flags & COLLAPSE_VM_WRITE) npmd = pte_mkwrite(npmd);
  add_mm_counter(mm, MM_ANONPAGES, <i32>HPAGE_PMD_NR - mapped);
  page_table_check_pmd_set(haddr, npmd);
  entryStore(pmdp, npmd);
  return SCAN_SUCCEED;
}
