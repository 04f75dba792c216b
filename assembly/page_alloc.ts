// The frame allocator (mm/page_alloc.c), for the two orders cowsim uses: 0 and 9.
//
// Frames are grouped in pageblocks of 512 (one 2 MiB THP each). A pageblock keeps
//
//   +0  free   order-0 frames that may still be reserved from it; 512 = wholly free
//   +8  bitmap 512 bits, one per frame: set = handed out as an order-0 page
//
// An order-0 allocation reserves one unit of `free` (CAS), then claims a clear bit (CAS).
// An order-9 allocation takes a wholly free block at once (CAS 512 → 0) and leaves the bitmap
// clear. Freeing returns the bit, then the unit; a block whose 512 units are all back is whole
// again. That is the buddy allocator's coalescing for these two orders, without a zone lock.
//
// Every step is a single CAS on shared memory, so any number of threads may allocate and free
// at once; a failed allocation has changed nothing (ENOMEM without side effects).
//
// The machine-wide count of free frames (nrFreePages) is a reservation counter: every
// allocation takes its frames from it first. A caller that needs several frames reserves them
// all up front (frames_reserve()), so a multi-page operation either gets every frame it needs
// or fails before changing anything. A reserved order-0 frame is always found: the pageblocks
// hold at least as many free units as there are reservations not yet claimed.

import {
  hdr, ctxOf, layoutBase, Header, Ctx, NO_PFN, HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGEBLOCK_BYTES,
  tryReserve, reserveInto, unreserveFrom, count_vm_events, should_fail, PGALLOC, PGFREE, THP_ALLOC,
  THP_FREE, PGALLOC_FAIL, FAIL_FRAME,
} from "./layout";
import {
  pageAddr, resetPage, prep_compound_page, pfn_to_page, Page, PG_buddy, PG_reserved,
} from "./page";
import { clear_page_contents } from "./content";

/** __GFP_ZERO: hand the frame out with zeroed contents. */
export const GFP_ZERO: u32 = 1;

// @ts-ignore: decorator
@inline function blockAddr(b: u32): u32 {
  return hdr().blockBase + b * PAGEBLOCK_BYTES;
}
// @ts-ignore: decorator
@inline function freeAddr(b: u32): u32 {
  return blockAddr(b);
}
// @ts-ignore: decorator
@inline function wordAddr(b: u32, w: u32): u32 {
  return blockAddr(b) + 8 + (w << 3);
}
// @ts-ignore: decorator
@inline function nrFreeAddr(): u32 {
  return layoutBase() + offsetof<Header>("nrFreePages");
}

/**
 * Sets up the pageblocks of a fresh layout: every frame free, frames past the end of the
 * last (partial) block marked taken for good, and pfn 0 reserved as the shared zero page.
 */
export function page_alloc_init(): void {
  const H = hdr();
  const nframes = H.nframes;
  for (let pfn: u32 = 0; pfn < nframes; pfn++) {
    resetPage(pfn, 1 << PG_buddy, 0);
  }
  for (let b: u32 = 0; b < H.nblocks; b++) {
    const first = b << HPAGE_PMD_ORDER;
    const n = min<u32>(HPAGE_PMD_NR, nframes - first);
    store<i32>(freeAddr(b), <i32>n);
    for (let i: u32 = n; i < HPAGE_PMD_NR; i++) {
      const w = wordAddr(b, i >> 6);
      store<u64>(w, load<u64>(w) | (<u64>1 << (i & 63)));
    }
  }
  store<i32>(nrFreeAddr(), <i32>nframes);
  // the shared zero page: pfn 0, reserved, one reference that is never dropped
  store<i32>(freeAddr(0), load<i32>(freeAddr(0)) - 1);
  store<u64>(wordAddr(0, 0), load<u64>(wordAddr(0, 0)) | 1);
  store<i32>(nrFreeAddr(), <i32>nframes - 1);
  resetPage(0, 1 << PG_reserved, 1);
}

/** Reserve one order-0 unit in block `b`. */
// @ts-ignore: decorator
@inline function reserveOne(b: u32): bool {
  const a = freeAddr(b);
  let c = atomic.load<i32>(a);
  while (c > 0) {
    const seen = atomic.cmpxchg<i32>(a, c, c - 1);
    if (seen == c) return true;
    c = seen;
  }
  return false;
}

/** Claim a clear bit in block `b`; a unit is reserved, so one exists. */
function claimBit(b: u32): u32 {
  while (true) {
    for (let w: u32 = 0; w < 8; w++) {
      const wa = wordAddr(b, w);
      let v = atomic.load<u64>(wa);
      while (v != <u64>-1) {
        const bit = <u32>ctz<u64>(~v);
        const seen = atomic.cmpxchg<u64>(wa, v, v | (<u64>1 << bit));
        if (seen == v) return (b << HPAGE_PMD_ORDER) + (w << 6) + bit;
        v = seen;
      }
    }
    // a freer cleared its bit before returning the unit we reserved: the bit is there
    // by now unless it is still between the two steps; look again
  }
}

/**
 * alloc_pages(): one folio of `order` (0 or 9). Returns its pfn, or NO_PFN (ENOMEM) having
 * changed nothing. `ctx` holds the thread's block cursor so consecutive allocations fill a block.
 * Frames from the context's reservation are certain; one from the free pool may also fail
 * on purpose (should_fail(FAIL_FRAME), as should_fail_alloc_page() in __alloc_pages()).
 */
export function alloc_pages(ctx: u32, order: u32, gfp: u32): u32 {
  if (order != 0 && order != HPAGE_PMD_ORDER) return NO_PFN;
  const nr: u32 = <u32>1 << order;
  const C = ctxOf(ctx);
  let fromReserve = false;
  if (C.frameReserved >= nr) {
    C.frameReserved = C.frameReserved - nr;
    fromReserve = true;
  } else if (should_fail(FAIL_FRAME) || !tryReserve(nrFreeAddr(), <i32>nr)) {
    count_vm_events(PGALLOC_FAIL, 1);
    return NO_PFN;
  }
  let pfn: u32;
  if (order == 0) {
    pfn = allocOrder0(ctx);
  } else {
    pfn = allocOrder9();
    if (pfn == NO_PFN) {
      // enough free frames, but no whole free pageblock: fragmentation
      if (fromReserve) C.frameReserved = C.frameReserved + nr;
      else atomic.add<i32>(nrFreeAddr(), <i32>nr);
      count_vm_events(PGALLOC_FAIL, 1);
      return NO_PFN;
    }
  }
  if (order == 0) {
    resetPage(pfn, 0, 1);
    count_vm_events(PGALLOC, 1);
  } else {
    prep_compound_page(pfn, order);
    count_vm_events(THP_ALLOC, 1);
  }
  if (gfp & GFP_ZERO) {
    for (let i: u32 = 0; i < nr; i++) clear_page_contents(pfn + i);
  }
  return pfn;
}

/** An order-0 frame for a caller that holds a reservation: one exists, so keep looking. */
function allocOrder0(ctx: u32): u32 {
  const H = hdr();
  const n = H.nblocks;
  const C = ctxOf(ctx);
  let b = C.blockHint < n ? C.blockHint : 0;
  while (true) {
    if (reserveOne(b)) {
      C.blockHint = b;
      return claimBit(b);
    }
    b = b + 1 == n ? 0 : b + 1;
  }
}

/**
 * Reserves `n` order-0 frames for the context's next allocations; false (nothing taken) when
 * fewer are free, or when fault injection fails it (one attempt per call with n > 0).
 */
export function frames_reserve(ctx: u32, n: u32): bool {
  return reserveInto(ctx + offsetof<Ctx>("frameReserved"), nrFreeAddr(), n, PGALLOC_FAIL, FAIL_FRAME);
}

/** Returns the frames the context still has reserved. */
export function frames_unreserve(ctx: u32): void {
  unreserveFrom(ctx + offsetof<Ctx>("frameReserved"), nrFreeAddr());
}

function allocOrder9(): u32 {
  const n = hdr().nblocks;
  // from the top, so order-0 allocations (which start at the bottom) fragment fewer blocks
  for (let i: i32 = <i32>n - 1; i >= 0; i--) {
    const a = freeAddr(<u32>i);
    if (atomic.load<i32>(a) == <i32>HPAGE_PMD_NR &&
        atomic.cmpxchg<i32>(a, <i32>HPAGE_PMD_NR, 0) == <i32>HPAGE_PMD_NR) {
      return <u32>i << HPAGE_PMD_ORDER;
    }
  }
  return NO_PFN;
}

/**
 * free_pages(): give a folio of `order` back. The caller has dropped the last reference.
 */
export function free_pages(pfn: u32, order: u32): void {
  const b = pfn >> HPAGE_PMD_ORDER;
  if (order == 0) {
    resetPage(pfn, 1 << PG_buddy, 0);
    const bit = pfn & (HPAGE_PMD_NR - 1);
    // bit first, then the unit: a reserver that sees the unit finds the bit
    atomic.and<u64>(wordAddr(b, bit >> 6), ~(<u64>1 << (bit & 63)));
    atomic.add<i32>(freeAddr(b), 1);
    // the global count last: a reservation it allows finds the unit above
    atomic.add<i32>(nrFreeAddr(), 1);
    count_vm_events(PGFREE, 1);
  } else {
    for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) resetPage(pfn + i, 1 << PG_buddy, 0);
    atomic.add<i32>(freeAddr(b), <i32>HPAGE_PMD_NR);
    atomic.add<i32>(nrFreeAddr(), <i32>HPAGE_PMD_NR);
    count_vm_events(THP_FREE, 1);
  }
}

/**
 * Turns an allocated order-9 block into 512 allocated order-0 frames, for split_folio():
 * afterwards each frame is freed on its own.
 */
export function split_block_to_order0(head: u32): void {
  const b = head >> HPAGE_PMD_ORDER;
  for (let w: u32 = 0; w < 8; w++) atomic.store<u64>(wordAddr(b, w), <u64>-1);
}

/** Free order-0 units left in pageblock `b` (for tests and the self-description). */
export function pageblock_free(b: u32): i32 {
  return atomic.load<i32>(freeAddr(b));
}

// Keep the plan honest: the pageblock is a u32 count, padding and 8 bitmap words.
// @ts-ignore: decorator
@inline export function pageblockOk(): bool {
  return PAGEBLOCK_BYTES == 8 + 8 * 8;
}
