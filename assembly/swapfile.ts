// The swap map of one swap device (mm/swapfile.c): slots, swap counts, the swap-cache link
// and the contents written to each slot.
//
//   swapBase + slot × stride:
//     +0  map       swap count (bits 0..29) | SWAP_HAS_CACHE (bit 30), as swap_map[] holds
//     +4  cache     pfn of the swap-cache folio while SWAP_HAS_CACHE; free-stack link when free
//     +8  contents  tag (u64) + data bytes, laid out as a frame's contents
//
// Slot 0 is never handed out (Linux keeps the swap header there), so no swap entry is all
// zero. Counts are 30 bits wide, so Linux's count continuation pages are not needed.

import {
  hdr, layoutBase, Header, NO_PFN, stackPop, stackPush, tryReserve, count_vm_events,
  SWAP_SLOT_ALLOC, SWAP_SLOT_FREE, EINVAL, should_fail, FAIL_SWAP_SLOT,
} from "./layout";
import { contentAddr, copy_contents_raw } from "./content";
import { pageAddr, Page } from "./page";

export const SWAP_HAS_CACHE: u32 = 1 << 30;
/** page->private of a swap-cache folio: the swap entry as type << 27 | slot. */
export const SWP_PRIVATE_SLOT_BITS: u32 = 27;
export const SWAP_COUNT_MASK: u32 = SWAP_HAS_CACHE - 1;

// @ts-ignore: decorator
@inline export function slotAddr(slot: u32): u32 {
  const H = hdr();
  return H.swapBase + slot * H.swapStride;
}
// @ts-ignore: decorator
@inline function availAddr(): u32 {
  return layoutBase() + offsetof<Header>("swapAvailable");
}

/** The slot of a swap-cache folio (folio->swap). */
export function folio_swap_slot(folio: u32): u32 {
  return load<u32>(pageAddr(folio) + offsetof<Page>("private_")) & ((1 << SWP_PRIVATE_SLOT_BITS) - 1);
}

/** swap_map[] value of `slot` (count | SWAP_HAS_CACHE). */
export function swap_map_get(slot: u32): u32 {
  return atomic.load<u32>(slotAddr(slot));
}
export function swap_slot_valid(slot: u32): bool {
  return slot > 0 && slot < hdr().nslots;
}
/** __swap_count() */
export function swap_count(slot: u32): u32 {
  return swap_map_get(slot) & SWAP_COUNT_MASK;
}
export function swap_cache_pfn(slot: u32): u32 {
  return (swap_map_get(slot) & SWAP_HAS_CACHE) != 0 ? atomic.load<u32>(slotAddr(slot) + 4) : NO_PFN;
}

/**
 * folio_alloc_swap(): a free slot, returned with SWAP_HAS_CACHE set and count 0 (the caller
 * adds the folio to the swap cache and duplicates the entry once per PTE it replaces).
 * Returns NO_PFN when the device is full, or when fault injection fails it
 * (should_fail(FAIL_SWAP_SLOT)).
 */
export function get_swap_slot(pfn: u32): u32 {
  if (should_fail(FAIL_SWAP_SLOT) || !tryReserve(availAddr(), 1)) return NO_PFN;
  const H = hdr();
  let slot = stackPop(layoutBase() + offsetof<Header>("swapFreeHead"), H.swapBase + 4, H.swapStride);
  if (slot == NO_PFN) slot = atomic.add<u32>(layoutBase() + offsetof<Header>("swapBump"), 1);
  atomic.store<u32>(slotAddr(slot) + 4, pfn);
  atomic.store<u32>(slotAddr(slot), SWAP_HAS_CACHE);
  count_vm_events(SWAP_SLOT_ALLOC, 1);
  return slot;
}

function freeSlot(slot: u32): void {
  atomic.store<u64>(slotAddr(slot) + 8, 0);
  stackPush(layoutBase() + offsetof<Header>("swapFreeHead"), hdr().swapBase + 4, hdr().swapStride, slot);
  atomic.add<i32>(availAddr(), 1);
  count_vm_events(SWAP_SLOT_FREE, 1);
}

/** swap_duplicate(): one more swap PTE refers to `slot`. -EINVAL for a slot not in use. */
export function swap_duplicate(slot: u32): i32 {
  if (!swap_slot_valid(slot)) return -EINVAL;
  const a = slotAddr(slot);
  let v = atomic.load<u32>(a);
  while (true) {
    if (v == 0 || (v & SWAP_COUNT_MASK) == SWAP_COUNT_MASK) return -EINVAL;
    const seen = atomic.cmpxchg<u32>(a, v, v + 1);
    if (seen == v) return 0;
    v = seen;
  }
}

/**
 * swap_free() / __swap_entry_free(): one swap PTE less. Frees the slot when nothing refers to
 * it any more. Returns the new swap_map[] value, or -EINVAL when the count was already 0.
 */
export function swap_free(slot: u32): i32 {
  if (!swap_slot_valid(slot)) return -EINVAL;
  const a = slotAddr(slot);
  let v = atomic.load<u32>(a);
  while (true) {
    if ((v & SWAP_COUNT_MASK) == 0) return -EINVAL;
    const seen = atomic.cmpxchg<u32>(a, v, v - 1);
    if (seen == v) break;
    v = seen;
  }
  const nv = v - 1;
  if (nv == 0) freeSlot(slot);
  return <i32>nv;
}

/** Drops SWAP_HAS_CACHE (the folio left the swap cache); frees the slot if the count is 0. */
export function swapcache_clear(slot: u32): i32 {
  if (!swap_slot_valid(slot)) return -EINVAL;
  const a = slotAddr(slot);
  const v = atomic.and<u32>(a, ~SWAP_HAS_CACHE);
  if ((v & SWAP_HAS_CACHE) == 0) return -EINVAL;
  const nv = v & ~SWAP_HAS_CACHE;
  if (nv == 0) freeSlot(slot);
  return <i32>nv;
}

/** Sets SWAP_HAS_CACHE for a folio added to the swap cache again (swap-in). */
export function swapcache_prepare(slot: u32, pfn: u32): i32 {
  if (!swap_slot_valid(slot)) return -EINVAL;
  const a = slotAddr(slot);
  let v = atomic.load<u32>(a);
  while (true) {
    if (v == 0 || (v & SWAP_HAS_CACHE) != 0) return -EINVAL;
    const seen = atomic.cmpxchg<u32>(a, v, v | SWAP_HAS_CACHE);
    if (seen == v) break;
    v = seen;
  }
  atomic.store<u32>(a + 4, pfn);
  return 0;
}

/** swap_writepage(): the contents of frame `pfn` go to `slot`. */
export function swap_write_contents(slot: u32, pfn: u32): void {
  copy_contents_raw(slotAddr(slot) + 8, contentAddr(pfn));
}
/** swap_read_folio(): the contents of `slot` come back into frame `pfn`. */
export function swap_read_contents(pfn: u32, slot: u32): void {
  copy_contents_raw(contentAddr(pfn), slotAddr(slot) + 8);
}
export function swap_tag_lo(slot: u32): u32 {
  return <u32>atomic.load<u64>(slotAddr(slot) + 8);
}
export function swap_tag_hi(slot: u32): u32 {
  return <u32>(atomic.load<u64>(slotAddr(slot) + 8) >> 32);
}
