// PTE-mapped large folios (mTHP, 16 KiB … 1 MiB, and a 2 MiB THP once its PMD is split):
// the anonymous fault that allocates them (mm/memory.c alloc_anon_folio(), do_anonymous_page()),
// the deferred split queue (mm/huge_memory.c deferred_split_folio()) and the split of a folio
// into order-0 folios (split_huge_page_to_list_to_order(), can_split_folio()), with the
// per-size counters of /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats.
//
// The counters live in the header, between the Header fields and vmstat:
//
//   MTHP_STAT_OFFSET + ((order - 2) * NR_MTHP_STATS + item) * 4     orders 2…9, MTHP_STAT_* items
//
// The deferred split queue is a flag, as Linux 6.12 marks a queued partially mapped folio with
// PG_partially_mapped in its second page's flags (folio->_flags_1): the shrinker's pass
// (deferred_split_scan()) finds the flagged heads in pfn order, which is deterministic where
// Linux's list order is that of insertion.

import {
  ctxOf, layoutBase, Header, NO_PFN, PAGE_SIZE, HPAGE_PMD_ORDER, count_vm_events, FAULT_ANON,
  EINVAL, EBUSY, EAGAIN, hdr,
} from "./layout";
import { pte_none, pte_mkwrite, pte_mkdirty, pfn_pte, _PAGE_PRESENT, _PAGE_USER, _PAGE_PROTNONE, _PAGE_ACCESSED } from "./pte";
import { entryLoad, entryStore, pteIndex, add_mm_counter, pt_reserve_upto, pt_unreserve, tables_missing, MM_ANONPAGES } from "./pgtable";
import {
  Page, pageAddr, pfn_valid, pageFlags, setPageFlag, clearPageFlag, testPageFlag, folio_test_large,
  folio_test_anon, folio_order, folio_nr_pages, folio_ref_add, folio_ref_count, folio_ref_freeze, folio_mapcount,
  folio_entire_mapcount, folio_nr_pages_mapped, folio_pincount, page_mapcount_raw, PG_head, PG_tail,
  PG_locked, PG_swapcache, PG_anon_exclusive, PG_hwpoison, PG_buddy, PG_ORDER_MASK,
} from "./page";
import { folio_add_new_anon_rmap, RMAP_EXCLUSIVE } from "./rmap";
import { alloc_pages, free_pages, split_block_to_order0, GFP_ZERO } from "./page_alloc";
import { allocPteSlot, folio_add_lru, FAST_VM_WRITE, ACCESS_ENOMEM, ACCESS_NEED_FAULT } from "./fault";
import { page_table_check_pte_set } from "./page_table_check";

// ---- per-size counters (include/linux/huge_mm.h enum mthp_stat_item) ------------------------
export const MTHP_STAT_ANON_FAULT_ALLOC: u32 = 0;
export const MTHP_STAT_ANON_FAULT_FALLBACK: u32 = 1;
export const MTHP_STAT_ANON_FAULT_FALLBACK_CHARGE: u32 = 2;
export const MTHP_STAT_SWPOUT: u32 = 3;
export const MTHP_STAT_SWPOUT_FALLBACK: u32 = 4;
export const MTHP_STAT_SPLIT: u32 = 5;
export const MTHP_STAT_SPLIT_FAILED: u32 = 6;
export const MTHP_STAT_SPLIT_DEFERRED: u32 = 7;
export const NR_MTHP_STATS: u32 = 8;
/** Where the counters start in the header: after the Header fields, before vmstat. */
export const MTHP_STAT_OFFSET: u32 = 256;
export const MTHP_STAT_BYTES: u32 = (HPAGE_PMD_ORDER - 1) * NR_MTHP_STATS * 4;

/** count_mthp_stat(): orders outside 2…PMD_ORDER count nowhere, as in Linux (order 0 and 1). */
export function count_mthp_stat(order: u32, item: u32): void {
  if (order < 2 || order > HPAGE_PMD_ORDER) return;
  atomic.add<u32>(layoutBase() + MTHP_STAT_OFFSET + (((order - 2) * NR_MTHP_STATS + item) << 2), 1);
}
export function mthp_stat(order: u32, item: u32): u32 {
  if (order < 2 || order > HPAGE_PMD_ORDER || item >= NR_MTHP_STATS) return 0;
  return atomic.load<u32>(layoutBase() + MTHP_STAT_OFFSET + (((order - 2) * NR_MTHP_STATS + item) << 2));
}

/** mthp_stat() summed over every order: what counters() reports, in one call. */
export function mthp_stat_total(item: u32): u32 {
  let n: u32 = 0;
  for (let order: u32 = 2; order <= HPAGE_PMD_ORDER; order++) n += mthp_stat(order, item);
  return n;
}

// ---- the anonymous fault ----------------------------------------------------------------------

/** pte_range_none(): the `nr` PTEs from `ptep` are all none. */
function pte_range_none(ptep: u32, nr: u32): bool {
  for (let i: u32 = 0; i < nr; i++) if (!pte_none(entryLoad(ptep + (i << 3)))) return false;
  return true;
}

/**
 * do_anonymous_page() of a write fault at `va`, with alloc_anon_folio()'s choice of order.
 * `orders` is the bitmask the caller has from thp_vma_allowable_orders(TVA_IN_PF |
 * TVA_ENFORCE_SYSFS) and thp_vma_suitable_orders() (orders below PMD_ORDER whose naturally
 * aligned range lies in the VMA; 0 for a userfaultfd-armed VMA). Highest first, the first order
 * whose aligned range is all pte_none() is tried, then each lower one after an allocation
 * failure (MTHP_STAT_ANON_FAULT_FALLBACK per order), then order 0.
 *
 * The folio, zeroed, is mapped by every PTE of its range at once (set_ptes()): exclusive
 * (folio_add_new_anon_rmap(RMAP_EXCLUSIVE): every subpage PageAnonExclusive), one reference per
 * PTE, `index` being the page index of `va`. `prot` is vm_page_prot, `fast` the FAST_* bits.
 * Returns the order mapped (MTHP_STAT_ANON_FAULT_ALLOC counted for order ≥ 2);
 * ACCESS_NEED_FAULT when the entry is no longer none (the access retries); ACCESS_ENOMEM
 * when not even order 0 was there — the page table stays, as in Linux. The orders that
 * fell back are left in ctx.aux0 as a bitmask.
 */
export function do_anonymous_folio(
  ctx: u32, mm: u32, va: f64, orders: u32, anonVma: u32, index: u32, prot: u32, fast: u32,
): i32 {
  const a = <u64>va;
  const C = ctxOf(ctx);
  C.aux0 = 0;
  if (anonVma == 0) return -EINVAL;
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, 3))) return ACCESS_ENOMEM;
  const slot = allocPteSlot(ctx, mm, a);
  pt_unreserve(ctx);
  if (!pte_none(entryLoad(slot))) return ACCESS_NEED_FAULT;
  const table = slot - (pteIndex(a) << 3);
  orders &= (<u32>1 << HPAGE_PMD_ORDER) - 1;
  orders &= ~<u32>3;
  // the highest order whose aligned range is all none; every lower one is then none too
  while (orders != 0) {
    const order = 31 - clz(orders);
    const first = <u32>((a >> 12) & ~((<u64>1 << order) - 1));
    if (pte_range_none(table + ((first & 511) << 3), <u32>1 << order)) break;
    orders &= ~(<u32>1 << order);
  }
  let folio = NO_PFN;
  let order: u32 = 0;
  let fellBack: u32 = 0;
  while (orders != 0) {
    order = 31 - clz(orders);
    folio = alloc_pages(ctx, order, GFP_ZERO);
    if (folio != NO_PFN) break;
    count_mthp_stat(order, MTHP_STAT_ANON_FAULT_FALLBACK);
    fellBack |= <u32>1 << order;
    orders &= ~(<u32>1 << order);
  }
  C.aux0 = fellBack;
  if (folio == NO_PFN) {
    order = 0;
    folio = alloc_pages(ctx, 0, GFP_ZERO);
    if (folio == NO_PFN) return ACCESS_ENOMEM;
  }
  const nr: u32 = <u32>1 << order;
  const haddr = a & ~(<u64>nr * PAGE_SIZE - 1);
  const first = index - <u32>((a - haddr) >> 12);
  folio_ref_add(folio, <i32>nr - 1);
  add_mm_counter(mm, MM_ANONPAGES, <i32>nr);
  count_mthp_stat(order, MTHP_STAT_ANON_FAULT_ALLOC);
  folio_add_new_anon_rmap(folio, anonVma, first, RMAP_EXCLUSIVE);
  folio_add_lru(ctx, folio);
  let pte = pfn_pte(<u64>folio, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED);
  if (fast & FAST_VM_WRITE) pte = pte_mkwrite(pte_mkdirty(pte));
  // set_ptes(): the same bits, the pfn advancing by one per entry
  const ptep = table + (pteIndex(haddr) << 3);
  for (let i: u32 = 0; i < nr; i++) {
    const e = pte + (<u64>i << 12);
    page_table_check_pte_set(haddr + (<u64>i << 12), e);
    entryStore(ptep + (i << 3), e);
  }
  count_vm_events(FAULT_ANON, 1);
  return <i32>order;
}

// ---- the deferred split queue ---------------------------------------------------------------

/** @pageflag PG_partially_mapped (page[1] of a large folio) on the deferred split queue, partially mapped */
export const PG_partially_mapped: u32 = 23;

export function folio_test_partially_mapped(folio: u32): bool {
  return folio_test_large(folio) && folio_order(folio) >= 2 && testPageFlag(folio + 1, PG_partially_mapped);
}

/**
 * deferred_split_folio(folio, partially_mapped = true): queue an anon large folio some of whose
 * pages lost their last mapping, for the shrinker to split (and free the unmapped pieces).
 * Counts MTHP_STAT_SPLIT_DEFERRED (and, for a 2 MiB folio, THP_DEFERRED_SPLIT_PAGE in Linux)
 * once per folio. Returns true when it was queued now.
 */
export function deferred_split_folio(folio: u32): bool {
  if (!folio_test_large(folio) || folio_order(folio) < 2 || !folio_test_anon(folio)) return false;
  if (folio_test_partially_mapped(folio)) return false;
  setPageFlag(folio + 1, PG_partially_mapped);
  atomic.store<u32>(layoutBase() + offsetof<Header>("splitQueued"), 1);
  count_mthp_stat(folio_order(folio), MTHP_STAT_SPLIT_DEFERRED);
  return true;
}

/**
 * What __folio_remove_rmap() decides once a batch of PTEs of `folio` is unmapped and `unmapped`
 * of its pages lost their last mapping: a folio still mapped elsewhere is partially mapped.
 */
export function folio_remove_rmap_ptes_done(folio: u32, unmapped: i32): void {
  if (unmapped > 0 && folio_test_large(folio) && folio_nr_pages_mapped(folio) > 0) deferred_split_folio(folio);
}

// ---- split ------------------------------------------------------------------------------------

/** The folio-wide flags every piece of a split folio inherits from the head. */
const INHERITED_FLAGS: u32 = ~((1 << PG_head) | (1 << PG_tail) | (1 << PG_anon_exclusive) | (1 << PG_hwpoison) |
  (1 << PG_partially_mapped) | PG_ORDER_MASK);

/** The references a splittable folio has: one per mapping, one per page in the swap cache. */
function split_refs(folio: u32): i32 {
  return folio_mapcount(folio) + (testPageFlag(folio, PG_swapcache) ? <i32>folio_nr_pages(folio) : 0);
}

/**
 * can_split_folio(folio, caller_pins = 0): every reference is a mapping or the swap cache's
 * (one per page). Any other — a GUP pin or reference, an LRU batch, isolation — means the split
 * would leave a holder with a pointer into a folio that no longer exists.
 */
export function can_split_folio(folio: u32): bool {
  return split_refs(folio) == folio_ref_count(folio);
}

/**
 * split_huge_page_to_list_to_order(folio, NULL, 0) for an anonymous folio mapped by PTEs only:
 * each page becomes an order-0 folio with its own PageAnonExclusive, map count, index and (in
 * the swap cache) slot; its references are its mappings (+1 in the swap cache). Pieces left with
 * no reference are freed (free_page_and_swap_cache() after __split_huge_page()).
 * Returns the pieces freed (≥ 0), or, changing nothing: -EINVAL (not a large anon folio),
 * -EBUSY (PMD-mapped: split_huge_pmd() first), -EAGAIN (locked, or references beyond
 * mappings and the swap cache: pinned, isolated, in an LRU batch — can_split_folio()).
 * Counts MTHP_STAT_SPLIT or MTHP_STAT_SPLIT_FAILED.
 */
export function split_folio(folio: u32): i32 {
  if (!pfn_valid(folio) || testPageFlag(folio, PG_buddy) || !folio_test_large(folio) || !folio_test_anon(folio)) return -EINVAL;
  const order = folio_order(folio);
  if (folio_entire_mapcount(folio) > 0) return -EBUSY;
  // folio_ref_freeze(): a GUP-fast that grabs the folio now finds a count of 0 and backs off;
  // the pieces' counts written below unfreeze it
  if (testPageFlag(folio, PG_locked) || folio_pincount(folio) > 0 || !folio_ref_freeze(folio, split_refs(folio))) {
    count_mthp_stat(order, MTHP_STAT_SPLIT_FAILED);
    return -EAGAIN;
  }
  const nr = folio_nr_pages(folio);
  const head = changetype<Page>(pageAddr(folio));
  const inherited = pageFlags(folio) & INHERITED_FLAGS;
  const mapping = head.mapping;
  const index = head.index;
  const swapcache = (inherited & (1 << PG_swapcache)) != 0;
  const swap = head.private_;
  if (order == HPAGE_PMD_ORDER) split_block_to_order0(folio);
  count_mthp_stat(order, MTHP_STAT_SPLIT);
  // __split_huge_page_tail(): page[1] and page[2] held the folio's counters; every piece gets
  // its own fields back before any of it is freed; the head last, as it unfreezes the folio
  for (let i = nr; i-- > 0;) {
    const p = changetype<Page>(pageAddr(folio + i));
    const own = p.flags & ((1 << PG_anon_exclusive) | (1 << PG_hwpoison));
    const mapped = page_mapcount_raw(folio + i) + 1;
    p.flags = inherited | own;
    atomic.store<i32>(pageAddr(folio + i) + offsetof<Page>("_refcount"), mapped + (swapcache ? 1 : 0));
    p.mapping = mapping;
    p.index = index + i;
    p.private_ = swapcache ? swap + i : 0;
  }
  let freed: i32 = 0;
  for (let i: u32 = 0; i < nr; i++) {
    if (atomic.load<i32>(pageAddr(folio + i) + offsetof<Page>("_refcount")) == 0) {
      clearPageFlag(folio + i, PG_anon_exclusive);
      free_pages(folio + i, 0);
      freed++;
    }
  }
  return freed;
}

/**
 * deferred_split_scan(): one pass of the shrinker over the queue — each queued folio is split
 * (its unmapped pieces freed) or, when it cannot be split now, stays queued. A folio that is no
 * longer partially mapped leaves the queue unsplit. Returns the frames freed.
 */
export function deferred_split_scan(): i32 {
  // split_queue_len == 0: nothing queued since the last pass that left none (a queued folio
  // freed meanwhile leaves the flag set: the next pass finds nothing and clears it)
  const queued = layoutBase() + offsetof<Header>("splitQueued");
  if (atomic.load<u32>(queued) == 0) return 0;
  atomic.store<u32>(queued, 0);
  const n = hdr().nframes;
  let freed: i32 = 0;
  for (let pfn: u32 = 1; pfn + 1 < n; pfn++) {
    const f = pageFlags(pfn);
    if ((f & (1 << PG_head)) == 0) continue;
    if (!testPageFlag(pfn + 1, PG_partially_mapped)) {
      pfn += folio_nr_pages(pfn) - 1;
      continue;
    }
    const nr = folio_nr_pages(pfn);
    const mapped = folio_nr_pages_mapped(pfn);
    if (mapped == 0 || mapped >= <i32>nr) {
      clearPageFlag(pfn + 1, PG_partially_mapped);
      pfn += nr - 1;
      continue;
    }
    const r = split_folio(pfn);
    if (r >= 0) freed += r;
    // one that cannot be split now stays queued, for the next pass
    else if (testPageFlag(pfn + 1, PG_partially_mapped)) atomic.store<u32>(queued, 1);
    pfn += nr - 1;
  }
  return freed;
}
