// struct page and struct folio: flags, reference counts, map counts, pins.
//
// One 24-byte Page per 4 KiB frame:
//
//   +0  flags      PG_* bits (0..23), folio order (24..28) in every page of a large folio
//   +4  _refcount  references; the head's counts for the whole folio, tails stay 0.
//                  An order-0 FOLL_PIN adds GUP_PIN_COUNTING_BIAS here.
//   +8  _mapcount  PTE mappings of this page, minus one (-1 = unmapped), as in Linux
//   +12 mapping    anon_vma id << 2 | PAGE_MAPPING_ANON, KSM stable node | PAGE_MAPPING_KSM,
//                  or a shmem/file mapping id << 2
//   +16 index      page offset (linear_page_index), kept modulo 2^32: rmap arithmetic is
//                  done modulo 2^32 too, which is exact because no VMA spans 16 TiB
//   +20 private    swap entry (type << 27 | slot) while PG_swapcache is set
//
// A large folio (orders 1…9, naturally aligned: the order-1 folios of the page cache, mTHP
// 16 KiB … 1 MiB and the 2 MiB PMD THP) keeps its folio-wide counters in fields its tail pages
// do not otherwise use:
//
//   page[1].mapping  _large_mapcount    all mappings of the folio, minus one
//   page[1].index    _entire_mapcount   PMD mappings, minus one            (orders 2…9)
//                    _pincount          FOLL_PIN pins, exact, no bias      (order 1)
//   page[1].private  _nr_pages_mapped   pages mapped by PTE, + ENTIRELY_MAPPED when PMD-mapped
//   page[2].mapping  _pincount          FOLL_PIN pins, exact, no bias      (orders 2…9)
//
// Linux 6.12 has room for all four counters in its second struct page and keeps only
// _deferred_list in the third, so its order-1 folios have every counter (and no deferred
// split). A 24-byte Page has three spare words per tail; the fourth counter lives in page[2],
// which an order-1 folio does not have. Of the four, an order-1 folio never needs
// _entire_mapcount — only a PMD mapping counts there, and only an order-9 folio is PMD-mappable,
// so in Linux it stays -1 for the folio's whole life — and keeps its _pincount in that word
// instead: folio_entire_mapcount() of an order-1 folio is 0, and its pins are counted exactly
// in _pincount as 6.12 counts every large folio's (older kernels had 2-page compound pages count
// pins in _refcount, hpage_pincount_available(); cowsim does not). Tail pages keep _refcount 0,
// which is what makes a speculative folio_try_get() through a stale pointer to a page that has
// become a tail fail.
//
// A tail page finds its head by alignment: head = pfn & ~(nr_pages - 1), the order being in
// its own flags (Linux keeps a compound_head pointer in each tail instead).

import {
  Header, hdr, layoutBase, ctx_up, add_return, NO_PFN, PAGE_STRUCT_BYTES, HPAGE_PMD_ORDER,
} from "./layout";

@unmanaged export class Page {
  flags: u32;
  _refcount: i32;
  _mapcount: i32;
  mapping: u32;
  index: u32;
  private_: u32;
}

// where each field sits in a Page, for readers of the frame table (src/core/frames.ts)
export const PAGE_FIELD_FLAGS: u32 = offsetof<Page>("flags");
export const PAGE_FIELD_REFCOUNT: u32 = offsetof<Page>("_refcount");
export const PAGE_FIELD_MAPCOUNT: u32 = offsetof<Page>("_mapcount");
export const PAGE_FIELD_MAPPING: u32 = offsetof<Page>("mapping");
export const PAGE_FIELD_INDEX: u32 = offsetof<Page>("index");
export const PAGE_FIELD_PRIVATE: u32 = offsetof<Page>("private_");

/** @pageflag PG_locked the folio lock (folio_lock()) */
export const PG_locked: u32 = 0;
/** @pageflag PG_referenced recently referenced */
export const PG_referenced: u32 = 1;
/** @pageflag PG_uptodate contents valid */
export const PG_uptodate: u32 = 2;
/** @pageflag PG_dirty contents differ from backing store / swap */
export const PG_dirty: u32 = 3;
/** @pageflag PG_lru on an LRU list */
export const PG_lru: u32 = 4;
/** @pageflag PG_head first page of a large folio */
export const PG_head: u32 = 5;
/** @pageflag PG_tail other page of a large folio (Linux: compound_head bit 0) */
export const PG_tail: u32 = 6;
/** @pageflag PG_active on the active LRU */
export const PG_active: u32 = 7;
/** @pageflag PG_reserved never freed: the shared zero page */
export const PG_reserved: u32 = 8;
/** @pageflag PG_writeback under writeback to swap */
export const PG_writeback: u32 = 9;
/** @pageflag PG_swapbacked anon or shmem: backed by swap */
export const PG_swapbacked: u32 = 10;
/** @pageflag PG_swapcache in the swap cache; private holds the swap entry */
export const PG_swapcache: u32 = 11;
/** @pageflag PG_anon_exclusive this (sub)page is mapped by exactly one process (per page) */
export const PG_anon_exclusive: u32 = 12;
/** @pageflag PG_hwpoison hardware-poisoned (per page) */
export const PG_hwpoison: u32 = 13;
/** @pageflag PG_buddy free, owned by the page allocator (Linux: page type PGTY_buddy) */
export const PG_buddy: u32 = 14;
/** @pageflag PG_isolated isolated from the LRU for migration or compaction */
export const PG_isolated: u32 = 15;
/** @pageflag PG_zone_device a ZONE_DEVICE page of a device's pgmap, never the buddy allocator's (Linux: the page's zone, folio_is_zone_device()) */
export const PG_zone_device: u32 = 16;
export const PG_ORDER_SHIFT: u32 = 24;
export const PG_ORDER_MASK: u32 = 0x1f << PG_ORDER_SHIFT;

/** mapping low bits, as in include/linux/page-flags.h */
export const PAGE_MAPPING_ANON: u32 = 0x1;
export const PAGE_MAPPING_MOVABLE: u32 = 0x2;
export const PAGE_MAPPING_KSM: u32 = PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE;
export const PAGE_MAPPING_FLAGS: u32 = PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE;

/** GUP_PIN_COUNTING_BIAS: what one FOLL_PIN adds to an order-0 folio's _refcount. */
export const GUP_PIN_COUNTING_BIAS: i32 = 1 << 10;
/** ENTIRELY_MAPPED: added to _nr_pages_mapped while the folio is PMD-mapped. */
export const ENTIRELY_MAPPED: i32 = 0x800000;
export const FOLIO_PAGES_MAPPED: i32 = ENTIRELY_MAPPED - 1;

// @ts-ignore: decorator
@inline export function pageAddr(pfn: u32): u32 {
  return hdr().frameBase + pfn * PAGE_STRUCT_BYTES;
}
// @ts-ignore: decorator
@inline export function pfn_to_page(pfn: u32): Page {
  return changetype<Page>(pageAddr(pfn));
}
// @ts-ignore: decorator
@inline export function pfn_valid(pfn: u32): bool {
  return pfn < hdr().nframes;
}

// ---- flags -----------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function pageFlags(pfn: u32): u32 {
  return atomic.load<u32>(pageAddr(pfn) + offsetof<Page>("flags"));
}
// @ts-ignore: decorator
@inline export function testPageFlag(pfn: u32, bit: u32): bool {
  return (pageFlags(pfn) & (1 << bit)) != 0;
}
/** SetPageFoo(): atomic set_bit(). */
// @ts-ignore: decorator
@inline export function setPageFlag(pfn: u32, bit: u32): void {
  atomic.or<u32>(pageAddr(pfn) + offsetof<Page>("flags"), 1 << bit);
}
/** ClearPageFoo(): atomic clear_bit(). */
// @ts-ignore: decorator
@inline export function clearPageFlag(pfn: u32, bit: u32): void {
  atomic.and<u32>(pageAddr(pfn) + offsetof<Page>("flags"), ~(1 << bit));
}
/** TestSetPageFoo(): atomic test_and_set_bit(); returns the old value. */
// @ts-ignore: decorator
@inline export function testSetPageFlag(pfn: u32, bit: u32): bool {
  return (atomic.or<u32>(pageAddr(pfn) + offsetof<Page>("flags"), 1 << bit) & (1 << bit)) != 0;
}

// ---- folios ----------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function flagsOrder(flags: u32): u32 {
  return (flags & PG_ORDER_MASK) >> PG_ORDER_SHIFT;
}
/** page_folio(): the head page of the folio containing `pfn`. */
// @ts-ignore: decorator
@inline export function page_folio(pfn: u32): u32 {
  const f = pageFlags(pfn);
  if ((f & (1 << PG_tail)) == 0) return pfn;
  return pfn & ~((<u32>1 << flagsOrder(f)) - 1);
}
// @ts-ignore: decorator
@inline export function folio_test_large(folio: u32): bool {
  return testPageFlag(folio, PG_head);
}
// @ts-ignore: decorator
@inline export function folio_order(folio: u32): u32 {
  return flagsOrder(pageFlags(folio));
}
// @ts-ignore: decorator
@inline export function folio_nr_pages(folio: u32): u32 {
  return <u32>1 << folio_order(folio);
}
// @ts-ignore: decorator
@inline function folioField(folio: u32, page: u32, field: usize): u32 {
  return pageAddr(folio + page) + <u32>field;
}
// @ts-ignore: decorator
@inline export function largeMapcountAddr(folio: u32): u32 { return folioField(folio, 1, offsetof<Page>("mapping")); }
/** _entire_mapcount of a folio of order 2…9 (an order-1 folio's word there is its _pincount). */
// @ts-ignore: decorator
@inline export function entireMapcountAddr(folio: u32): u32 { return folioField(folio, 1, offsetof<Page>("index")); }
// @ts-ignore: decorator
@inline export function nrPagesMappedAddr(folio: u32): u32 { return folioField(folio, 1, offsetof<Page>("private_")); }
/** Where a large folio's _pincount lives: page[2], or page[1] for an order-1 folio (see above). */
// @ts-ignore: decorator
@inline export function pincountAddr(folio: u32): u32 {
  return folio_order(folio) == 1 ? folioField(folio, 1, offsetof<Page>("index")) : folioField(folio, 2, offsetof<Page>("mapping"));
}
// @ts-ignore: decorator
@inline export function refcountAddr(folio: u32): u32 { return pageAddr(folio) + offsetof<Page>("_refcount"); }
// @ts-ignore: decorator
@inline export function mapcountAddr(pfn: u32): u32 { return pageAddr(pfn) + offsetof<Page>("_mapcount"); }

/** folio_test_anon(): mapping has PAGE_MAPPING_ANON (anon and KSM folios). */
// @ts-ignore: decorator
@inline export function folio_test_anon(folio: u32): bool {
  return (atomic.load<u32>(pageAddr(folio) + offsetof<Page>("mapping")) & PAGE_MAPPING_ANON) != 0;
}
// @ts-ignore: decorator
@inline export function folio_test_ksm(folio: u32): bool {
  return (atomic.load<u32>(pageAddr(folio) + offsetof<Page>("mapping")) & PAGE_MAPPING_FLAGS) == PAGE_MAPPING_KSM;
}
// @ts-ignore: decorator
@inline export function is_zero_pfn(pfn: u32): bool {
  return pfn == 0;
}

// ---- reference counts (include/linux/page_ref.h) ---------------------------------------------

// @ts-ignore: decorator
@inline export function folio_ref_count(folio: u32): i32 {
  return atomic.load<i32>(refcountAddr(folio));
}
/** folio_ref_add(); returns the new count. */
// @ts-ignore: decorator
@inline export function folio_ref_add(folio: u32, nr: i32): i32 {
  return atomic.add<i32>(refcountAddr(folio), nr) + nr;
}
/** folio_ref_sub_return() */
// @ts-ignore: decorator
@inline export function folio_ref_sub_return(folio: u32, nr: i32): i32 {
  // alone in the core nobody takes a reference meanwhile (GUP-fast runs on another context)
  return add_return(refcountAddr(folio), -nr);
}
/** folio_ref_try_add(): add unless the count is zero (the folio is being freed). */
export function folio_ref_try_add(folio: u32, nr: i32): bool {
  const a = refcountAddr(folio);
  if (ctx_up()) {
    // nobody else in the core frees it meanwhile: a load and a store
    const now = load<i32>(a);
    if (now <= 0) return false;
    store<i32>(a, now + nr);
    return true;
  }
  let c = atomic.load<i32>(a);
  while (true) {
    if (c <= 0) return false;
    const seen = atomic.cmpxchg<i32>(a, c, c + nr);
    if (seen == c) return true;
    c = seen;
  }
}
/** page_ref_freeze(): take the count from `expected` to 0, or fail. */
export function folio_ref_freeze(folio: u32, expected: i32): bool {
  return atomic.cmpxchg<i32>(refcountAddr(folio), expected, 0) == expected;
}
/** page_ref_unfreeze() */
export function folio_ref_unfreeze(folio: u32, count: i32): void {
  atomic.store<i32>(refcountAddr(folio), count);
}

/** folio_maybe_dma_pinned(): exact for large folios, may be a false positive for small ones. */
export function folio_maybe_dma_pinned(folio: u32): bool {
  if (folio_test_large(folio)) return atomic.load<i32>(pincountAddr(folio)) > 0;
  // the count is signed; compare unsigned so an overflow still reads as pinned, as Linux does
  return <u32>folio_ref_count(folio) >= <u32>GUP_PIN_COUNTING_BIAS;
}

// ---- map counts (include/linux/mm.h, mm/rmap.c) ---------------------------------------------

// @ts-ignore: decorator
@inline export function page_mapcount_raw(pfn: u32): i32 {
  return atomic.load<i32>(mapcountAddr(pfn));
}
/** folio_mapcount(): all present mappings of the folio. */
export function folio_mapcount(folio: u32): i32 {
  if (!folio_test_large(folio)) return page_mapcount_raw(folio) + 1;
  return atomic.load<i32>(largeMapcountAddr(folio)) + 1;
}
/**
 * folio_entire_mapcount(): PMD mappings of a large folio. An order-1 folio can never be
 * PMD-mapped and keeps its _pincount in that word: 0.
 */
export function folio_entire_mapcount(folio: u32): i32 {
  if (folio_order(folio) < 2) return 0;
  return atomic.load<i32>(entireMapcountAddr(folio)) + 1;
}
export function folio_nr_pages_mapped(folio: u32): i32 {
  return atomic.load<i32>(nrPagesMappedAddr(folio));
}
export function folio_pincount(folio: u32): i32 {
  return folio_test_large(folio) ? atomic.load<i32>(pincountAddr(folio)) : 0;
}

// ---- PageAnonExclusive ---------------------------------------------------------------------

/** PageAnonExclusive(): per (sub)page; for a PMD-mapped THP the head page's bit counts. */
// @ts-ignore: decorator
@inline export function PageAnonExclusive(pfn: u32): bool {
  return testPageFlag(pfn, PG_anon_exclusive);
}
// @ts-ignore: decorator
@inline export function SetPageAnonExclusive(pfn: u32): void {
  setPageFlag(pfn, PG_anon_exclusive);
}
// @ts-ignore: decorator
@inline export function ClearPageAnonExclusive(pfn: u32): void {
  clearPageFlag(pfn, PG_anon_exclusive);
}

// ---- compound folios -----------------------------------------------------------------------

/** Resets a frame to the state the allocator hands out: one reference, unmapped. */
// @ts-ignore: decorator
@inline export function resetPage(pfn: u32, flags: u32, refcount: i32): void {
  const p = pfn_to_page(pfn);
  p.flags = flags;
  p._refcount = refcount;
  p._mapcount = -1;
  p.mapping = 0;
  p.index = 0;
  p.private_ = 0;
}

/**
 * prep_compound_page() + folio_set_large_rmappable(): make [head, head + 2^order) one folio of
 * `order` (1…9). The head holds one reference; every page is unmapped and its flags carry the
 * order; then prep_compound_head()'s counters: _large_mapcount -1, _nr_pages_mapped 0,
 * _pincount 0 and, from order 2 (where an order-1 folio keeps its _pincount instead, as Linux
 * sets _deferred_list only from order 2), _entire_mapcount -1.
 */
export function prep_compound_page(head: u32, order: u32): void {
  const nr: u32 = <u32>1 << order;
  const o = order << PG_ORDER_SHIFT;
  resetPage(head, (1 << PG_head) | o, 1);
  for (let i: u32 = 1; i < nr; i++) resetPage(head + i, (1 << PG_tail) | o, 0);
  store<i32>(largeMapcountAddr(head), -1);
  store<i32>(nrPagesMappedAddr(head), 0);
  if (order > 1) store<i32>(entireMapcountAddr(head), -1);
  store<i32>(pincountAddr(head), 0);
}

// Compile-time check of the layout the plan assumed.
// @ts-ignore: decorator
@inline export function pageStructOk(): bool {
  return offsetof<Page>() == PAGE_STRUCT_BYTES && HPAGE_PMD_ORDER == 9;
}
