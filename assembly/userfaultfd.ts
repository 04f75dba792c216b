// The PTE work of mm/userfaultfd.c's mfill_atomic(): UFFDIO_COPY, UFFDIO_ZEROPAGE,
// UFFDIO_CONTINUE and UFFDIO_POISON install entries into none PTEs of a registered range, one
// page after another, stopping at the first page that fails; and what handle_userfault()'s
// callers read of an entry (userfaultfd_pte_wp(), userfaultfd_must_wait()).
import { ctxOf, count_vm_events, EEXIST, FAULT_ANON, FAULT_ZERO_PAGE } from "./layout";
import {
  pte_none, pte_present, pte_write, pte_uffd_wp, pte_mkwrite, pte_mkdirty, pte_mkuffd_wp, pfn_pte,
  pmd_leaf, is_swap_pte, pte_swp_uffd_wp, pte_marker_uffd_wp, is_pte_marker, make_pte_marker,
  _PAGE_PRESENT, _PAGE_USER, _PAGE_TABLE, _PAGE_PROTNONE, _PAGE_ACCESSED, _PAGE_SPECIAL, PTE_MARKER_POISONED,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, entryTable, isTableEntry, pteIndex, pt_alloc_table,
  mmAddr, MmStruct, add_mm_counter, PMD_SIZE, pt_reserve_upto, pt_unreserve, tables_missing, MM_ANONPAGES, MM_SHMEMPAGES, MM_FILEPAGES,
} from "./pgtable";
import { pfn_valid, page_folio, folio_ref_add, testPageFlag, PG_swapbacked } from "./page";
import { folio_add_new_anon_rmap, folio_add_rmap_ptes, RMAP_EXCLUSIVE } from "./rmap";
import { alloc_pages, frames_reserve, GFP_ZERO } from "./page_alloc";
import { contentAddr } from "./content";
import { page_table_check_pte_set } from "./page_table_check";
import { folio_add_lru } from "./fault";

// mfill_atomic_range() kinds (uffd_flags_t's MFILL_ATOMIC_* modes)
export const MFILL_COPY: u32 = 0;
export const MFILL_ZEROPAGE: u32 = 1;
export const MFILL_POISON: u32 = 2;
/** a given page-cache page (UFFDIO_CONTINUE, and UFFDIO_COPY into shmem after shmem_mfill_atomic_pte()) */
export const MFILL_FILE: u32 = 3;

/** MFILL_ATOMIC_WP: map with uffd-wp set (UFFDIO_COPY_MODE_WP, UFFDIO_CONTINUE_MODE_WP). */
export const MFILL_WP: u32 = 1;
/** The VMA has VM_WRITE: a fresh anonymous page, or a page of a shared mapping, is mapped writable. */
export const MFILL_VM_WRITE: u32 = 2;
/** The VMA has VM_SHARED (a page-cache page of a private mapping stays read-only). */
export const MFILL_VM_SHARED: u32 = 4;
/**
 * Not an ioctl but do_anonymous_page() over a uffd-wp marker (pte_marker_handle_uffd_wp()): the
 * marker is replaced, the fault is counted as a fault. MFILL_COPY: a zeroed page (a write);
 * MFILL_ZEROPAGE: the zero page (a read).
 */
export const MFILL_FAULT: u32 = 8;

/** Where mfill_atomic_range() stopped: the errno of the page it could not fill (0: it filled every page). */
export const MFILL_ERR_ENOMEM: i32 = -12;

/**
 * mfill_atomic() over `pages` pages from `va`: each page in turn through mfill_atomic_pte() of
 * `kind`. COPY allocates a page holding the tag hi:lo, maps it exclusive into anon_vma `anonVma`
 * at page index `index` (+1 per page); ZEROPAGE maps the zero page; POISON installs a
 * PTE_MARKER_POISONED; FILE maps page-cache page `lo` (one page). A page whose PTE is not none
 * (copy, continue and file: not none_mostly — a marker counts as none) ends the range with
 * -EEXIST; a missing frame or page table with -ENOMEM. Returns the pages filled; the errno of
 * the page that stopped the range is left in the context's aux0 (0 when none did).
 */
export function mfill_atomic_range(
  ctx: u32, mm: u32, va: f64, pages: u32, kind: u32, anonVma: u32, index: u32, prot: u32,
  lo: u32, hi: u32, flags: u32,
): u32 {
  let a = <u64>va;
  let done: u32 = 0;
  let err: i32 = 0;
  const base: u64 = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  // ZEROPAGE and POISON want pte_none(); COPY and CONTINUE pte_none_mostly() (a marker is replaced)
  const mostly = kind == MFILL_COPY || kind == MFILL_FILE || (flags & MFILL_FAULT) != 0;
  let table: u32 = 0;
  for (; done < pages; done++, a += 4096) {
    // mfill_atomic()'s mm_alloc_pmd() and __pte_alloc(): once per PTE table the range enters,
    // not per page (the pages of one table share them)
    if (table == 0 || (a & (PMD_SIZE - 1)) == 0) {
      table = mfill_pte_table(ctx, mm, a);
      if (table == 0) { err = MFILL_ERR_ENOMEM; break; }
      if (table == MFILL_NO_TABLE) { err = -EEXIST; break; }
    }
    const slot = table + (pteIndex(a) << 3);
    const old = entryLoad(slot);
    if (!pte_none(old) && !(mostly && is_pte_marker(old))) { err = -EEXIST; break; }
    let pte: u64;
    if (kind == MFILL_COPY) {
      if (!frames_reserve(ctx, 1)) { err = MFILL_ERR_ENOMEM; break; }
      const pfn = alloc_pages(ctx, 0, GFP_ZERO);
      if (!(flags & MFILL_FAULT)) atomic.store<u64>(contentAddr(pfn), (<u64>hi << 32) | <u64>lo);
      folio_add_new_anon_rmap(pfn, anonVma, index + done, RMAP_EXCLUSIVE);
      folio_add_lru(ctx, pfn);
      add_mm_counter(mm, MM_ANONPAGES, 1);
      // mfill_atomic_install_pte(): dirty, writable when the VMA is
      pte = pte_mkdirty(pfn_pte(<u64>pfn, base));
      if (flags & MFILL_VM_WRITE) pte = pte_mkwrite(pte);
      if (flags & MFILL_FAULT) count_vm_events(FAULT_ANON, 1);
    } else if (kind == MFILL_ZEROPAGE) {
      pte = pfn_pte(0, base) | _PAGE_SPECIAL;
      if (flags & MFILL_FAULT) count_vm_events(FAULT_ZERO_PAGE, 1);
    } else if (kind == MFILL_POISON) {
      pte = make_pte_marker(PTE_MARKER_POISONED);
    } else {
      const pfn = lo;
      if (!pfn_valid(pfn)) { err = -22; break; }
      const folio = page_folio(pfn);
      folio_ref_add(folio, 1);
      folio_add_rmap_ptes(folio, pfn, 1);
      add_mm_counter(mm, testPageFlag(folio, PG_swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES, 1);
      pte = pte_mkdirty(pfn_pte(<u64>pfn, base));
      // a page-cache page of a private mapping stays read-only: a write will copy it
      if ((flags & MFILL_VM_WRITE) && (flags & MFILL_VM_SHARED)) pte = pte_mkwrite(pte);
    }
    if ((flags & MFILL_WP) && kind != MFILL_POISON) pte = pte_mkuffd_wp(pte);
    if (pte_present(pte)) page_table_check_pte_set(a, pte);
    entryStore(slot, pte);
    if (kind == MFILL_FILE) { done++; break; } // one given page
  }
  ctxOf(ctx).aux0 = <u32>(-err);
  return done;
}

/** mfill_pte_table(): a PMD leaf or a PMD migration entry is in the way. */
const MFILL_NO_TABLE: u32 = 1;

/**
 * The PTE table mapping `va` for mfill_atomic(), allocated with the tables above it, all or
 * nothing (reserved first). Returns its address; 0 when a table could not be had (-ENOMEM);
 * MFILL_NO_TABLE when a PMD leaf or a PMD migration entry is in the way (-EEXIST).
 */
function mfill_pte_table(ctx: u32, mm: u32, a: u64): u32 {
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, 3))) return 0;
  const pmdp = walk_alloc_pmdp(ctx, mm, a);
  let me = entryLoad(pmdp);
  if (!pte_none(me) && !isTableEntry(me)) { pt_unreserve(ctx); return MFILL_NO_TABLE; }
  if (pte_none(me)) {
    const idx = pt_alloc_table(ctx);
    me = pfn_pte(<u64>idx, _PAGE_TABLE);
    entryStore(pmdp, me);
    atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
  }
  pt_unreserve(ctx);
  return entryTable(me);
}

// uffd_wp_at() bits
export const UFFD_WP_PRESENT: u32 = 1;
export const UFFD_WP_SWAP: u32 = 2;
export const UFFD_WP_MARKER: u32 = 4;
/** The entry at the address is present and writable (userfaultfd_must_wait() of a VM_UFFD_WP fault). */
export const UFFD_ENTRY_WRITABLE: u32 = 8;
/** The PTE is none, or a marker (pte_none_mostly()): a missing fault still must wait. */
export const UFFD_ENTRY_NONE: u32 = 16;
/** A PMD leaf maps the address. */
export const UFFD_ENTRY_PMD: u32 = 32;

/**
 * What userfaultfd_pte_wp() / userfaultfd_huge_pmd_wp() and userfaultfd_must_wait() read of the
 * entry at `va`: UFFD_WP_* where it carries uffd-wp state, UFFD_ENTRY_* for the rest.
 */
export function uffd_wp_at(mm: u32, va: f64): u32 {
  const a = <u64>va;
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return UFFD_ENTRY_NONE;
  const pmd = entryLoad(pmdp);
  if (pte_none(pmd)) return UFFD_ENTRY_NONE;
  if (pmd_leaf(pmd)) {
    return UFFD_ENTRY_PMD | (pte_uffd_wp(pmd) ? UFFD_WP_PRESENT : 0) | (pte_write(pmd) ? UFFD_ENTRY_WRITABLE : 0);
  }
  if (!isTableEntry(pmd)) return 0;
  const pte = entryLoad(entryTable(pmd) + (pteIndex(a) << 3));
  if (pte_none(pte)) return UFFD_ENTRY_NONE;
  if (pte_present(pte)) return (pte_uffd_wp(pte) ? UFFD_WP_PRESENT : 0) | (pte_write(pte) ? UFFD_ENTRY_WRITABLE : 0);
  if (is_pte_marker(pte)) return UFFD_ENTRY_NONE | (pte_marker_uffd_wp(pte) ? UFFD_WP_MARKER : 0);
  return is_swap_pte(pte) && pte_swp_uffd_wp(pte) ? UFFD_WP_SWAP : 0;
}

/** pte_marker_clear(): a uffd-wp marker left in a VMA no longer registered for uffd-wp goes. Returns 1 if cleared. */
export function pte_marker_clear(mm: u32, va: f64): u32 {
  const a = <u64>va;
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return 0;
  const pmd = entryLoad(pmdp);
  if (!isTableEntry(pmd)) return 0;
  const slot = entryTable(pmd) + (pteIndex(a) << 3);
  if (!is_pte_marker(entryLoad(slot))) return 0;
  entryStore(slot, 0);
  return 1;
}

/** The 64-bit tag hi:lo into the page's contents (a page UFFDIO_COPY filled in the page cache). */
export function page_tag_set(pfn: u32, lo: u32, hi: u32): void {
  atomic.store<u64>(contentAddr(pfn), (<u64>hi << 32) | <u64>lo);
}
