// The swap cache and the PTE side of swap (mm/swap_state.c, mm/rmap.c try_to_unmap_one(),
// mm/vmscan.c __remove_mapping(), the PTE half of mm/memory.c do_swap_page()). The choices —
// which pages to reclaim, whether a swapped-in page is exclusive and writable — are made in
// TypeScript (src/mm/swap.ts) by the strategy; these are the mechanics.

import { ctxOf, NO_PFN, ENOSPC, EBUSY, ENOENT, EINVAL, ENOMEM } from "./layout";
import {
  pte_none, pte_present, pte_pfn, pte_write, pte_dirty, pte_soft_dirty, pte_uffd_wp, pfn_pte,
  pte_mkwrite, pte_mkdirty, pte_mkuffd_wp, pte_mksoft_dirty, swp_entry, swp_type, swp_offset,
  swp_entry_to_pte, pte_swp_mkexclusive, pte_swp_exclusive, pte_swp_mksoft_dirty, pte_swp_mkuffd_wp,
  pte_swp_soft_dirty, pte_swp_uffd_wp, MAX_SWAPFILES, _PAGE_PRESENT, _PAGE_USER, _PAGE_ACCESSED,
  _PAGE_PROTNONE, _PAGE_RW,
} from "./pte";
import {
  walk_ptep, entryLoad, entryStore, mm_valid, add_mm_counter, MM_ANONPAGES, MM_SWAPENTS,
} from "./pgtable";
import {
  Page, pageAddr, pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_add,
  folio_ref_count, folio_ref_freeze, PageAnonExclusive, SetPageAnonExclusive, setPageFlag,
  clearPageFlag, testPageFlag, PG_swapcache, PG_dirty, PG_uptodate, PG_swapbacked, PG_writeback,
  PG_anon_exclusive, pageFlags, folio_test_ksm, folio_maybe_dma_pinned, PG_head, PG_locked, PG_buddy, PG_reserved,
  PG_hwpoison,
} from "./page";
import {
  folio_remove_rmap_ptes, folio_add_anon_rmap_ptes, folio_set_anon, folio_is_mapped,
  folio_try_share_anon_rmap_pte, folio_put_refs, RMAP_EXCLUSIVE,
} from "./rmap";
import {
  get_swap_slot, swap_duplicate, swap_free, swap_count, swapcache_clear, swapcache_prepare,
  swap_write_contents, swap_read_contents, folio_swap_slot, swap_cache_pfn, swap_slot_valid,
} from "./swapfile";
import { alloc_pages, free_pages } from "./page_alloc";
import { folio_add_lru } from "./fault";
import { page_table_check_pte_set } from "./page_table_check";
import { protocol_breaks, BREAK_UNMAP_CLEAR } from "./gup";

/**
 * add_to_swap() / folio_alloc_swap() + add_to_swap_cache(): a swap slot for `folio`, which
 * joins the swap cache holding one reference, dirty (it has to be written). Returns the slot,
 * or -ENOSPC (nothing changed) when the swap device is full.
 */
export function add_to_swap(folio: u32): i32 {
  if (folio_test_large(folio) || testPageFlag(folio, PG_swapcache)) return -EINVAL;
  const slot = get_swap_slot(folio);
  if (slot == NO_PFN) return -ENOSPC;
  store<u32>(pageAddr(folio) + offsetof<Page>("private_"), slot);
  folio_ref_add(folio, 1);
  setPageFlag(folio, PG_swapcache);
  setPageFlag(folio, PG_dirty);
  return <i32>slot;
}

// ---- shrink_folio_list() for an order-0 anonymous folio, in two calls around the rmap walk -----

/** shrink_folio_begin(): not anonymous (a shmem or page-cache folio: the caller's to judge) */
export const SHRINK_NOT_ANON: i32 = -1;
/** locked, free, reserved, poisoned or KSM: reclaim leaves it */
export const SHRINK_BUSY: i32 = -2;
/** possibly pinned (folio_maybe_dma_pinned()): left alone */
export const SHRINK_PINNED: i32 = -3;
/** no swap slot left */
export const SHRINK_SWAP_FULL: i32 = -4;
/** a large folio: the caller splits or swaps it whole */
export const SHRINK_LARGE: i32 = -5;
/** shrink_folio_end(): still mapped after the walk */
export const SHRINK_MAPPED: i32 = -6;

/**
 * shrink_folio_list()'s first half for `folio`: the tests that keep it from reclaim, then
 * add_to_swap() unless it is in the swap cache already. Returns its swap slot, to be unmapped
 * from every PTE the rmap finds (try_to_unmap_one()), or a SHRINK_* code with nothing changed.
 * `reclaimsPinned`: the kernel swaps possibly pinned pages out (Linux < 5.11).
 */
export function shrink_folio_begin(folio: u32, reclaimsPinned: u32): i32 {
  if (!folio_test_anon(folio)) return SHRINK_NOT_ANON;
  const flags = pageFlags(folio);
  const stop: u32 = (1 << PG_locked) | (1 << PG_buddy) | (1 << PG_reserved) | (1 << PG_hwpoison);
  if ((flags & stop) || folio_test_ksm(folio)) return SHRINK_BUSY;
  if (flags & (1 << PG_head)) return SHRINK_LARGE;
  if (!(flags & (1 << PG_swapcache))) {
    // "mm: don't put pinned pages into the swap cache" (5.11)
    if (!reclaimsPinned && folio_maybe_dma_pinned(folio)) return SHRINK_PINNED;
    const slot = add_to_swap(folio);
    return slot < 0 ? SHRINK_SWAP_FULL : slot;
  }
  return <i32>folio_swap_slot(folio);
}

/**
 * shrink_folio_list()'s second half, once the rmap walk unmapped what it found: a folio still
 * mapped (SHRINK_MAPPED) or possibly pinned (SHRINK_PINNED) stays; otherwise it is written out
 * (swap_writepage()) and freed when nothing else holds it (__remove_mapping()): 1 freed, 0 kept
 * in the swap cache.
 */
export function shrink_folio_end(folio: u32, reclaimsPinned: u32): i32 {
  if (folio_is_mapped(folio)) return SHRINK_MAPPED;
  // the folio is unmapped now; a pinned one is not written out (6.x) but stays in the cache
  if (!reclaimsPinned && folio_maybe_dma_pinned(folio)) return SHRINK_PINNED;
  swap_writepage(folio);
  return remove_mapping_swapcache(folio);
}

/** try_to_unmap() flags */
/** The Linux ≥ 5.19 rule: an exclusive page is shared first (folio_try_share_anon_rmap_pte()); a pinned one is not unmapped. */
export const TTU_SHARE_ANON: u32 = 1;
/** Remember PageAnonExclusive in the swap PTE (SWP_EXCLUSIVE, 1493a1913e34). */
export const TTU_SWP_EXCLUSIVE: u32 = 2;

/**
 * try_to_unmap_one() for the PTE at `va` of `mm`, which must map the swap-cache folio `pfn`:
 * (A1) clear the PTE; with TTU_SHARE_ANON, (A2/A3) try to mark an exclusive page shared and
 * restore the PTE if it may be pinned; replace the PTE with a swap entry for the folio's slot
 * (remembering exclusivity, uffd-wp and soft-dirty), duplicate the swap count, drop the map
 * count and the PTE's reference. Returns 0, -EBUSY (pinned: the PTE is back as it was),
 * -ENOENT (the PTE does not map the folio), -EINVAL.
 */
export function try_to_unmap_one(mm: u32, va: f64, pfn: u32, flags: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn)) return -EINVAL;
  const folio = page_folio(pfn);
  if (!testPageFlag(folio, PG_swapcache)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const pte = entryLoad(slot);
  if (!pte_present(pte) || <u32>pte_pfn(pte) != pfn) return -ENOENT;
  // (A1) ptep_clear_flush(); with the protocol broken on purpose the PTE stays live while A2
  // checks the pins, and a GUP-fast that read it passes B4
  const old = (protocol_breaks() & BREAK_UNMAP_CLEAR) ? entryLoad(slot) : atomic.xchg<u64>(slot, 0);
  const exclusive = folio_test_anon(folio) && PageAnonExclusive(pfn);
  if (exclusive && (flags & TTU_SHARE_ANON) && folio_try_share_anon_rmap_pte(folio, pfn) != 0) {
    page_table_check_pte_set(<u64>va, old);
    entryStore(slot, old); // (A4) restore: the page stays mapped
    return -EBUSY;
  }
  const swapSlot = folio_swap_slot(folio);
  if (swap_duplicate(swapSlot) != 0) {
    page_table_check_pte_set(<u64>va, old);
    entryStore(slot, old);
    return -ENOMEM;
  }
  if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
  let swp = swp_entry_to_pte(swp_entry(0, <u64>swapSlot));
  if (exclusive && (flags & TTU_SWP_EXCLUSIVE)) swp = pte_swp_mkexclusive(swp);
  if (pte_soft_dirty(old)) swp = pte_swp_mksoft_dirty(swp);
  if (pte_uffd_wp(old)) swp = pte_swp_mkuffd_wp(swp);
  // an exclusive page being swapped is no longer exclusive in memory: the swap entry says so
  if (exclusive && !(flags & TTU_SHARE_ANON)) clearPageFlag(pfn, PG_anon_exclusive);
  entryStore(slot, swp);
  folio_remove_rmap_ptes(folio, pfn, 1);
  folio_put_refs(folio, 1);
  add_mm_counter(mm, MM_ANONPAGES, -1);
  add_mm_counter(mm, MM_SWAPENTS, 1);
  return 0;
}

/** swap_writepage(): the folio's contents go to its slot; it is clean afterwards. */
export function swap_writepage(folio: u32): i32 {
  if (!testPageFlag(folio, PG_swapcache)) return -EINVAL;
  swap_write_contents(folio_swap_slot(folio), folio);
  clearPageFlag(folio, PG_dirty);
  return 0;
}

/**
 * __delete_from_swap_cache() + put: the folio leaves the swap cache; the slot keeps its swap
 * count (and is freed when that is 0). Drops the swap cache's reference, which may free it.
 */
export function delete_from_swap_cache(folio: u32): i32 {
  if (!testPageFlag(folio, PG_swapcache)) return -EINVAL;
  const slot = folio_swap_slot(folio);
  clearPageFlag(folio, PG_swapcache);
  store<u32>(pageAddr(folio) + offsetof<Page>("private_"), 0);
  swapcache_clear(slot);
  folio_put_refs(folio, 1);
  return 0;
}

/**
 * __remove_mapping() for a swap-cache folio at the end of reclaim: when the swap cache holds
 * the only reference (no mapping, no pin, no batch), freeze the count, leave the swap cache and
 * free the frame. Returns 1 when freed, 0 when something still holds it (nothing changed).
 */
export function remove_mapping_swapcache(folio: u32): i32 {
  if (!testPageFlag(folio, PG_swapcache) || folio_is_mapped(folio) || testPageFlag(folio, PG_dirty)) return 0;
  if (!folio_ref_freeze(folio, 1)) return 0;
  const slot = folio_swap_slot(folio);
  clearPageFlag(folio, PG_swapcache);
  store<u32>(pageAddr(folio) + offsetof<Page>("private_"), 0);
  swapcache_clear(slot);
  free_pages(folio, 0);
  return 1;
}

/**
 * folio_free_swap(): a swap-cache folio no swap entry refers to any more leaves the swap cache
 * (and its slot is freed). Returns 1 if it did.
 */
export function folio_free_swap(folio: u32): i32 {
  if (!testPageFlag(folio, PG_swapcache) || testPageFlag(folio, PG_writeback)) return 0;
  if (swap_count(folio_swap_slot(folio)) != 0) return 0;
  delete_from_swap_cache(folio);
  return 1;
}

/**
 * swap_read_folio() + add_to_swap_cache() for swap-in: a new frame (from the context's
 * reservation) receives the slot's contents and joins the swap cache (its one reference is the
 * cache's). Returns the pfn, -ENOMEM (nothing changed), or -EINVAL for a slot not in use or
 * already cached.
 */
export function swapin_read(ctx: u32, slot: u32): i32 {
  if (!swap_slot_valid(slot) || swap_cache_pfn(slot) != NO_PFN || swap_count(slot) == 0) return -EINVAL;
  const pfn = alloc_pages(ctx, 0, 0);
  if (pfn == NO_PFN) return -ENOMEM;
  swap_read_contents(pfn, slot);
  swapcache_prepare(slot, pfn);
  store<u32>(pageAddr(pfn) + offsetof<Page>("private_"), slot);
  setPageFlag(pfn, PG_swapcache);
  setPageFlag(pfn, PG_uptodate);
  setPageFlag(pfn, PG_swapbacked);
  folio_add_lru(ctx, pfn);
  return <i32>pfn;
}

/** do_swap_page() install flags */
/** Map writable (and, with SWAPIN_DIRTY, dirty): the page is exclusive and the VMA writable. */
export const SWAPIN_WRITABLE: u32 = 1;
/** RMAP_EXCLUSIVE: the page is mapped exclusive. */
export const SWAPIN_EXCLUSIVE: u32 = 2;
/** A write fault: map it dirty. */
export const SWAPIN_DIRTY: u32 = 4;

/**
 * The PTE half of do_swap_page(): the swap entry for `swapSlot` at `va` is replaced by the
 * folio `pfn` (the caller holds the reference this mapping takes, and has already dropped the
 * entry's swap count, swap_free()), which joins anon_vma `anonVma` at `index` if it is not
 * anonymous yet. Keeps the entry's soft-dirty and uffd-wp bits. Returns 0, or -ENOENT when the
 * PTE is no longer that swap entry.
 */
export function swapin_map(mm: u32, va: f64, pfn: u32, swapSlot: u32, prot: u32, flags: u32, anonVma: u32, index: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const orig = entryLoad(slot);
  if (pte_none(orig) || pte_present(orig) || swp_type(orig) >= MAX_SWAPFILES) return -ENOENT;
  if (<u32>swp_offset(orig) != swapSlot) return -ENOENT;
  swapinMapAt(mm, slot, <u64>va, orig, pfn, prot, flags, anonVma, index);
  return 0;
}

/** swapin_map() at the PTE slot `slot`, which holds the swap entry `orig`. */
export function swapinMapAt(mm: u32, slot: u32, a: u64, orig: u64, pfn: u32, prot: u32, flags: u32, anonVma: u32, index: u32): void {
  const folio = page_folio(pfn);
  let pte = pfn_pte(<u64>pfn, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED);
  if (flags & SWAPIN_WRITABLE) pte = pte_mkwrite(pte);
  if (flags & SWAPIN_DIRTY) pte = pte_mkdirty(pte);
  if (pte_swp_soft_dirty(orig)) pte = pte_mksoft_dirty(pte);
  if (pte_swp_uffd_wp(orig)) pte = pte_mkuffd_wp(pte);
  const rmapFlags = (flags & SWAPIN_EXCLUSIVE) ? RMAP_EXCLUSIVE : 0;
  if (!folio_test_anon(folio)) {
    // the first mapping of a freshly read folio: it becomes anonymous here (__folio_set_anon())
    folio_set_anon(folio, anonVma, index);
  }
  folio_add_anon_rmap_ptes(folio, pfn, 1, rmapFlags);
  page_table_check_pte_set(a, pte);
  entryStore(slot, pte);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  add_mm_counter(mm, MM_SWAPENTS, -1);
}

/** ctx.aux0 after swap_pte_slot(): the entry's SWP_EXCLUSIVE bit */
export const SWPINFO_EXCLUSIVE: u32 = 1;
/** ctx.aux0 after swap_pte_slot(): the entry's soft-dirty bit */
export const SWPINFO_SOFT_DIRTY: u32 = 2;
/** ctx.aux0 after swap_pte_slot(): the entry's uffd-wp bit */
export const SWPINFO_UFFD_WP: u32 = 4;

/** The swap entry at `va`: its slot (offset), or -ENOENT. Its software bits in ctx.aux0 (SWPINFO_*). */
export function swap_pte_slot(ctx: u32, mm: u32, va: f64): i32 {
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const e = entryLoad(slot);
  if (pte_none(e) || pte_present(e) || swp_type(e) >= MAX_SWAPFILES) return -ENOENT;
  ctxOf(ctx).aux0 = (pte_swp_exclusive(e) ? SWPINFO_EXCLUSIVE : 0) | (pte_swp_soft_dirty(e) ? SWPINFO_SOFT_DIRTY : 0) |
    (pte_swp_uffd_wp(e) ? SWPINFO_UFFD_WP : 0);
  return <i32>swp_offset(e);
}
