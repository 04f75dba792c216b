// The counter side of reverse mapping (mm/rmap.c, include/linux/rmap.h): map counts,
// PageAnonExclusive and the anon mapping word. The anon_vma trees themselves live in
// TypeScript (src/mm/rmap.ts); they find a page's mappings from `mapping` and `index`.

import {
  Page, pageAddr, pfn_to_page, page_folio, folio_test_large, folio_nr_pages, folio_test_anon,
  folio_maybe_dma_pinned, folio_ref_add, folio_ref_sub_return, folio_order, mapcountAddr,
  largeMapcountAddr, entireMapcountAddr, nrPagesMappedAddr, PageAnonExclusive,
  SetPageAnonExclusive, ClearPageAnonExclusive, setPageFlag, testPageFlag, PG_swapbacked,
  PG_reserved, PG_zone_device, PG_anon_exclusive, PAGE_MAPPING_ANON, PAGE_MAPPING_FLAGS, ENTIRELY_MAPPED, FOLIO_PAGES_MAPPED,
} from "./page";
import { free_pages } from "./page_alloc";
import { folio_remove_rmap_ptes_done } from "./large_folio";
import { free_zone_device_folio } from "./migrate_device";
import { EBUSY, HPAGE_PMD_ORDER, PAGE_STRUCT_BYTES, add_return } from "./layout";
import { MM_ANONPAGES, MM_SHMEMPAGES, MM_FILEPAGES } from "./pgtable";

/** RMAP_EXCLUSIVE: the (sub)pages being mapped are exclusive to this process. */
export const RMAP_EXCLUSIVE: u32 = 1;

/** __folio_set_anon(): make the folio anonymous, belonging to anon_vma `anonVma`. */
export function folio_set_anon(folio: u32, anonVma: u32, index: u32): void {
  const p = pfn_to_page(folio);
  p.index = index;
  atomic.store<u32>(pageAddr(folio) + offsetof<Page>("mapping"), (anonVma << 2) | PAGE_MAPPING_ANON);
}
/** folio_move_anon_rmap(): after a COW reuse the folio belongs to this VMA's anon_vma alone. */
export function folio_move_anon_rmap(folio: u32, anonVma: u32): void {
  atomic.store<u32>(pageAddr(folio) + offsetof<Page>("mapping"), (anonVma << 2) | PAGE_MAPPING_ANON);
}
/** Sets a non-anon (shmem) mapping id. */
export function folio_set_mapping(folio: u32, mappingId: u32, index: u32): void {
  const p = pfn_to_page(folio);
  p.index = index;
  atomic.store<u32>(pageAddr(folio) + offsetof<Page>("mapping"), mappingId << 2);
}
/** The anon_vma id (or shmem mapping id) of a folio, without the flag bits. */
export function folio_mapping_id(folio: u32): u32 {
  return atomic.load<u32>(pageAddr(folio) + offsetof<Page>("mapping")) >> 2;
}
export function folio_mapping_raw(folio: u32): u32 {
  return atomic.load<u32>(pageAddr(folio) + offsetof<Page>("mapping"));
}
export function folio_index(folio: u32): u32 {
  return pfn_to_page(folio).index;
}

/**
 * folio_add_new_anon_rmap(): map a freshly allocated folio for the first time.
 * Order 0: _mapcount 0. Below PMD_ORDER (mTHP), by every PTE of its range: each page's
 * _mapcount 0 and, if asked, PageAnonExclusive; _large_mapcount nr - 1, _nr_pages_mapped nr.
 * PMD-mappable: one PMD mapping (_entire_mapcount 0, _nr_pages_mapped ENTIRELY_MAPPED).
 * Marks the (head) page exclusive if asked.
 */
export function folio_add_new_anon_rmap(folio: u32, anonVma: u32, index: u32, flags: u32): void {
  if (!folio_test_large(folio)) {
    // a new folio nobody else can reach yet: __folio_set_swapbacked(), __folio_set_anon() and
    // atomic_set(_mapcount) are plain stores in Linux, and so are they here (the flags in one)
    const p = pfn_to_page(folio);
    p.flags = p.flags | (1 << PG_swapbacked) | (flags & RMAP_EXCLUSIVE ? 1 << PG_anon_exclusive : 0);
    p.index = index;
    p.mapping = (anonVma << 2) | PAGE_MAPPING_ANON;
    p._mapcount = 0;
    return;
  }
  setPageFlag(folio, PG_swapbacked);
  folio_set_anon(folio, anonVma, index);
  if (folio_order(folio) < HPAGE_PMD_ORDER) {
    const nr = folio_nr_pages(folio);
    for (let i: u32 = 0; i < nr; i++) {
      atomic.store<i32>(mapcountAddr(folio + i), 0);
      if (flags & RMAP_EXCLUSIVE) SetPageAnonExclusive(folio + i);
    }
    atomic.store<i32>(largeMapcountAddr(folio), <i32>nr - 1);
    atomic.store<i32>(nrPagesMappedAddr(folio), <i32>nr);
    return;
  } else {
    atomic.store<i32>(entireMapcountAddr(folio), 0);
    atomic.store<i32>(largeMapcountAddr(folio), 0);
    atomic.store<i32>(nrPagesMappedAddr(folio), ENTIRELY_MAPPED);
  }
  if (flags & RMAP_EXCLUSIVE) SetPageAnonExclusive(folio);
}

/** __folio_add_rmap() at PTE level for pages [page, page + nr) of `folio`. */
export function folio_add_rmap_ptes(folio: u32, page: u32, nr: u32): void {
  if (!folio_test_large(folio)) {
    atomic.add<i32>(mapcountAddr(folio), 1);
    return;
  }
  let first: i32 = 0;
  folio_mapcount_lock(folio);
  let a = mapcountAddr(page);
  for (let i: u32 = 0; i < nr; i++, a += PAGE_STRUCT_BYTES) {
    const old = load<i32>(a);
    store<i32>(a, old + 1);
    if (old == -1) first++;
  }
  folio_mapcount_unlock(folio);
  if (first) atomic.add<i32>(nrPagesMappedAddr(folio), first);
  atomic.add<i32>(largeMapcountAddr(folio), <i32>nr);
}

// The per-page map counts of a large folio. Linux changes each page's _mapcount with its own
// atomic_inc_and_test() / atomic_add_negative(); a locked read-modify-write costs about 5 ns
// here, so a PMD split that paid 512 of them spent most of its time on them. Every change to a
// large folio's per-page _mapcount is made in folio_add_rmap_ptes() or
// __folio_remove_rmap_ptes() (folio_add_new_anon_rmap() initialises a folio nobody else can
// reach yet), under a bit lock in the second page's flags, with plain loads and stores: two
// locked operations a batch, whatever its size, and no update lost to another thread's batch.
// Readers keep their atomic loads: an aligned i32 store never tears, and a reader sees a batch
// page by page, as it does in Linux. The bit is never set between calls.

/** The map-count bit lock's bit in the second page's flags (above every PG_* bit, below the order). */
const FOLIO_MAPCOUNT_LOCK: u32 = 1 << 29;

// @ts-ignore: decorator
@inline function folio_mapcount_lock(folio: u32): void {
  const flags = pageAddr(folio + 1) + offsetof<Page>("flags");
  // held for one batch of plain stores, never across a call: spinning is enough
  while ((atomic.or<u32>(flags, FOLIO_MAPCOUNT_LOCK) & FOLIO_MAPCOUNT_LOCK) != 0) { /* another thread's batch */ }
}
// @ts-ignore: decorator
@inline function folio_mapcount_unlock(folio: u32): void {
  atomic.and<u32>(pageAddr(folio + 1) + offsetof<Page>("flags"), ~FOLIO_MAPCOUNT_LOCK);
}

/** __folio_add_rmap() at PMD level. */
export function folio_add_rmap_pmd(folio: u32): void {
  if (atomic.add<i32>(entireMapcountAddr(folio), 1) == -1) {
    atomic.add<i32>(nrPagesMappedAddr(folio), ENTIRELY_MAPPED);
  }
  atomic.add<i32>(largeMapcountAddr(folio), 1);
}

/** folio_add_anon_rmap_ptes(): map existing anon pages (swap-in, migration, …). */
export function folio_add_anon_rmap_ptes(folio: u32, page: u32, nr: u32, flags: u32): void {
  folio_add_rmap_ptes(folio, page, nr);
  if (flags & RMAP_EXCLUSIVE) {
    for (let i: u32 = 0; i < nr; i++) SetPageAnonExclusive(page + i);
  }
}
/** folio_add_anon_rmap_pmd() */
export function folio_add_anon_rmap_pmd(folio: u32, flags: u32): void {
  folio_add_rmap_pmd(folio);
  if (flags & RMAP_EXCLUSIVE) SetPageAnonExclusive(folio);
}

/**
 * folio_remove_rmap_ptes(): unmap pages [page, page + nr) of `folio`, one PTE each; a large
 * anon folio left partially mapped goes on the deferred split queue. Returns how many of the
 * pages became unmapped (for the NR_ANON_MAPPED-style statistics of the caller).
 */
export function folio_remove_rmap_ptes(folio: u32, page: u32, nr: u32): i32 {
  const last = __folio_remove_rmap_ptes(folio, page, nr);
  folio_remove_rmap_ptes_done(folio, last);
  return last;
}

/**
 * __folio_remove_rmap() at PTE level, the counters only: a caller that unmaps a batch PTE by
 * PTE (zap_present_ptes()) calls folio_remove_rmap_ptes_done() once at the batch's end.
 */
export function __folio_remove_rmap_ptes(folio: u32, page: u32, nr: u32): i32 {
  if (!folio_test_large(folio)) {
    return add_return(mapcountAddr(folio), -1) == -1 ? 1 : 0;
  }
  atomic.sub<i32>(largeMapcountAddr(folio), <i32>nr);
  let last: i32 = 0;
  folio_mapcount_lock(folio);
  let a = mapcountAddr(page);
  for (let i: u32 = 0; i < nr; i++, a += PAGE_STRUCT_BYTES) {
    const now = load<i32>(a) - 1;
    store<i32>(a, now);
    if (now == -1) last++;
  }
  folio_mapcount_unlock(folio);
  if (last) atomic.sub<i32>(nrPagesMappedAddr(folio), last);
  return last;
}

/** __folio_remove_rmap() at PMD level. */
export function folio_remove_rmap_pmd(folio: u32): void {
  atomic.sub<i32>(largeMapcountAddr(folio), 1);
  if (atomic.sub<i32>(entireMapcountAddr(folio), 1) == 0) {
    atomic.sub<i32>(nrPagesMappedAddr(folio), ENTIRELY_MAPPED);
  }
}

/**
 * __folio_try_dup_anon_rmap() at PTE level, for fork. `maybePinned` is
 * folio_needs_cow_for_dma() (MMF_HAS_PINNED && folio_maybe_dma_pinned()), evaluated by the
 * caller under the src mm's write_protect_seq. Fails with -EBUSY (changing nothing) when a
 * possibly pinned page is exclusive: the caller must copy it instead of sharing.
 */
export function folio_try_dup_anon_rmap_ptes(folio: u32, page: u32, nr: u32, maybePinned: bool): i32 {
  if (maybePinned) {
    for (let i: u32 = 0; i < nr; i++) if (PageAnonExclusive(page + i)) return -EBUSY;
  }
  for (let i: u32 = 0; i < nr; i++) {
    if (PageAnonExclusive(page + i)) ClearPageAnonExclusive(page + i);
  }
  folio_add_rmap_ptes(folio, page, nr);
  return 0;
}

/** __folio_try_dup_anon_rmap() at PMD level. */
export function folio_try_dup_anon_rmap_pmd(folio: u32, maybePinned: bool): i32 {
  if (PageAnonExclusive(folio)) {
    if (maybePinned) return -EBUSY;
    ClearPageAnonExclusive(folio);
  }
  atomic.add<i32>(entireMapcountAddr(folio), 1);
  atomic.add<i32>(largeMapcountAddr(folio), 1);
  return 0;
}

/**
 * __folio_try_share_anon_rmap(): mark an exclusive page possibly shared before KSM or a
 * temporary unmap (swap, migration). The caller has already cleared or invalidated the PTE
 * (step A1). Fails with -EBUSY when the folio may be pinned.
 *
 *   (A1) clear/invalidate the PTE                 — caller
 *   (A2) check whether the folio may be pinned    — here, after a full barrier
 *   (A3) clear PageAnonExclusive                  — here
 *   (A4) restore the PTE, never writable          — caller, after the barrier below
 */
export function folio_try_share_anon_rmap_pte(folio: u32, page: u32): i32 {
  // Paired with the barrier after the pin in try_grab_folio_fast() (B3 → B4).
  atomic.fence();
  if (folio_maybe_dma_pinned(folio)) return -EBUSY;
  ClearPageAnonExclusive(page);
  // Conceptually smp_wmb(), paired with the smp_rmb() in gup_must_unshare() (B5): a GUP-fast
  // that does not see the PTE change must see PageAnonExclusive clear.
  atomic.fence();
  return 0;
}

/**
 * __folio_try_share_anon_rmap() at PMD level: the caller has invalidated the PMD (A1). Fails
 * with -EBUSY when the folio may be pinned; otherwise the whole folio is possibly shared.
 */
export function folio_try_share_anon_rmap_pmd(folio: u32): i32 {
  // Paired with the barrier after the pin in gup_fast_pmd_leaf() (B3 → B4).
  atomic.fence();
  if (folio_maybe_dma_pinned(folio)) return -EBUSY;
  const nr = folio_nr_pages(folio);
  for (let i: u32 = 0; i < nr; i++) ClearPageAnonExclusive(folio + i);
  // Conceptually smp_wmb(), paired with the smp_rmb() in gup_must_unshare() (B5).
  atomic.fence();
  return 0;
}

/**
 * folio_put_refs(): drop `nr` references; the last one frees the folio (__folio_put()).
 * Returns true when the folio was freed. The zero page is never freed.
 */
export function folio_put_refs(folio: u32, nr: i32): bool {
  if (folio_ref_sub_return(folio, nr) != 0) return false;
  return folio_last_ref_put(folio);
}

/**
 * __folio_remove_rmap_ptes() and folio_put_refs() for one PTE of the small folio `folio`, whose
 * struct page is at `page`, with one context attached: a load and a store each, and the folio
 * freed with its last reference (zap's and wp_page_copy()'s common case).
 */
// @ts-ignore: decorator
@inline export function small_folio_unmap_alone(page: u32, folio: u32): void {
  store<i32>(page, load<i32>(page, offsetof<Page>("_mapcount")) - 1, offsetof<Page>("_mapcount"));
  const rc = load<i32>(page, offsetof<Page>("_refcount")) - 1;
  store<i32>(page, rc, offsetof<Page>("_refcount"));
  if (rc == 0) folio_last_ref_put(folio);
}

/** What the last reference's put does (__folio_put()): frees the folio, unless it is reserved. */
export function folio_last_ref_put(folio: u32): bool {
  if (testPageFlag(folio, PG_reserved)) return false;
  if (testPageFlag(folio, PG_zone_device)) {
    free_zone_device_folio(folio);
    return true;
  }
  free_pages(folio, folio_order(folio));
  return true;
}

/** Is the folio mapped anywhere? (folio_mapped()) */
export function folio_is_mapped(folio: u32): bool {
  if (!folio_test_large(folio)) return atomic.load<i32>(mapcountAddr(folio)) >= 0;
  return atomic.load<i32>(largeMapcountAddr(folio)) >= 0;
}

/** The mm counter a folio is accounted in (mm_counter()): anon, shmem or file. */
export function mm_counter_of(folio: u32): u32 {
  if (folio_test_anon(folio)) return MM_ANONPAGES;
  return testPageFlag(folio, PG_swapbacked) ? MM_SHMEMPAGES : MM_FILEPAGES;
}
