// The frame allocator (mm/page_alloc.c): folios of every order from 0 to 9, naturally aligned.
//
// Frames are grouped in pageblocks of 512 (pageblock_order = HPAGE_PMD_ORDER: one 2 MiB THP
// each). A pageblock keeps
//
//   +0  free   frames that may still be reserved from it; 512 = wholly free
//   +8  bitmap 512 bits, one per frame: set = handed out (orders 0…8), or never to be (the
//              zero page, frames past the end of a partial last block)
//
//   order   takes                                                            claim
//   0       one unit of `free` (CAS), then any clear bit (CAS)                 1 bit
//   1…6     2^order units (CAS), then an aligned run of 2^order clear bits      one CAS on one
//           inside one 64-bit word                                             bitmap word
//   7, 8    2^order units (CAS), then 2 or 4 aligned whole words, each          2 or 4 CAS,
//           CAS 0 → all ones (a lost race rolls the words taken back)           0 → ~0
//   9       the whole block: CAS free 512 → 0; the bitmap stays clear           —
//
// Freeing clears the folio's bits (orders 0…8), then returns its units, then the machine-wide count; a block
// whose 512 units are all back is whole again and can be taken at order 9. That is the buddy
// allocator's coalescing (__free_one_page() merging buddies up to pageblock_order), without a
// zone lock. A run is naturally aligned within its block, and a block is aligned to 512
// frames, so every folio of order k starts at a pfn that is a multiple of 2^k, as the buddy
// allocator's do.
//
// Where to look: order 0 goes on filling the block its thread's cursor is in; orders 1…8 look
// first in blocks already split (partly taken), then in wholly free blocks from the bottom, as
// __rmqueue_smallest() takes the smallest free block that fits before it splits a bigger one;
// order 9 takes wholly free blocks from the top, where the small orders reach last.
//
// Every step is a single CAS on shared memory, so any number of threads may allocate and free
// at once; a failed allocation has changed nothing (ENOMEM without side effects).
//
// The machine-wide count of free frames (nrFreePages) is a reservation counter: every
// allocation takes its frames from it first. A caller that needs several frames reserves them
// all up front (frames_reserve()), so a multi-page operation either gets every frame it needs
// or fails before changing anything. A reserved order-0 frame is always found: the pageblocks
// hold at least as many free units as there are reservations not yet claimed, and a block
// holds at least as many clear bits as units it still has to give plus units taken from it
// whose bits are not yet set. An order 1…8 allocation holds its units while it tries to claim
// bits, so bits it sets for a moment (and rolls back) were never counted on by anyone else.

import {
  hdr, ctxOf, ctx_up, layoutBase, Header, Ctx, NO_PFN, HPAGE_PMD_NR, HPAGE_PMD_ORDER, PAGEBLOCK_BYTES,
  tryReserve, takeAlone, reserveInto, unreserveFrom, count_vm_events, should_fail, PGALLOC, PGFREE, THP_ALLOC,
  THP_FREE, PGALLOC_FAIL, FAIL_FRAME, faultAttrAddr, FaultAttr, PAGE_STRUCT_BYTES,
} from "./layout";
import {
  pageAddr, resetPage, prep_compound_page, pfn_to_page, Page, PG_buddy, PG_reserved,
} from "./page";
import { clear_page_contents } from "./content";

/** __GFP_ZERO: hand the frame out with zeroed contents. */
export const GFP_ZERO: u32 = 1;
/**
 * The largest order alloc_pages() serves: a whole pageblock (pageblock_order, HPAGE_PMD_ORDER,
 * 2 MiB). Linux's buddy allocator goes one order further on x86-64 (MAX_PAGE_ORDER 10); no
 * folio cowsim models needs it.
 */
export const MAX_PAGE_ORDER: u32 = HPAGE_PMD_ORDER;

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
  // every struct page free and alike: the first written, then copied over the rest in doubling
  // runs (a memcpy of the table, not six stores per frame)
  resetPage(0, 1 << PG_buddy, 0);
  const base = pageAddr(0);
  for (let done: u32 = 1; done < nframes; done <<= 1) {
    memory.copy(base + done * PAGE_STRUCT_BYTES, base, min(done, nframes - done) * PAGE_STRUCT_BYTES);
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
 * alloc_pages(): one folio of `order` (0…MAX_PAGE_ORDER), naturally aligned. Returns its pfn,
 * or NO_PFN (ENOMEM) having changed nothing. An order above MAX_PAGE_ORDER is NO_PFN too, and
 * counted nowhere (Linux warns and returns NULL before it tries). Order 0 is a frame with one
 * reference; order 1…9 a compound folio (prep_compound_page()). `ctx` holds the thread's block
 * cursor so consecutive order-0 allocations fill a block.
 *
 * The frames come from the context's reservation when it holds 2^order of them (certain, but
 * a large folio may still find no aligned free run: the frames go back to the reservation), or
 * else from the free pool, where the attempt may also fail on purpose (should_fail(FAIL_FRAME),
 * as should_fail_alloc_page() in __alloc_pages()). A failure counts PGALLOC_FAIL once. A
 * success of order 0…8 counts its 2^order frames in PGALLOC, as rmqueue() does
 * (__count_zid_vm_events(PGALLOC, …, 1 << order)); an order-9 folio counts once in THP_ALLOC
 * instead, as the core always has (so Linux's PGALLOC is PGALLOC + 512 × THP_ALLOC).
 */
export function alloc_pages(ctx: u32, order: u32, gfp: u32): u32 {
  if (order > MAX_PAGE_ORDER) return NO_PFN;
  const nr: u32 = <u32>1 << order;
  const C = ctxOf(ctx);
  const up = ctx_up();
  let fromReserve = false;
  if (C.frameReserved >= nr) {
    C.frameReserved = C.frameReserved - nr;
    fromReserve = true;
  } else if (should_fail(FAIL_FRAME) || !(up ? takeAlone(nrFreeAddr(), <i32>nr) : tryReserve(nrFreeAddr(), <i32>nr))) {
    count_vm_events(PGALLOC_FAIL, 1);
    return NO_PFN;
  }
  let pfn: u32;
  if (order == 0) {
    pfn = up ? allocOrder0Up(ctx) : allocOrder0(ctx);
  } else {
    pfn = order == HPAGE_PMD_ORDER ? allocOrder9() : allocRun(ctx, order);
    if (pfn == NO_PFN) {
      // enough free frames, but no free aligned block of this order: fragmentation
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
    if (order == HPAGE_PMD_ORDER) count_vm_events(THP_ALLOC, 1);
    else count_vm_events(PGALLOC, nr);
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

/** allocOrder0() on one attached context: the same block and bit, without CAS loops. */
function allocOrder0Up(ctx: u32): u32 {
  const n = hdr().nblocks;
  const C = ctxOf(ctx);
  let b = C.blockHint < n ? C.blockHint : 0;
  while (!takeAlone(freeAddr(b), 1)) b = b + 1 == n ? 0 : b + 1;
  C.blockHint = b;
  // a unit taken means a clear bit: alone in the core, no freer is between its two steps
  for (let w: u32 = 0; w < 8; w++) {
    const wa = wordAddr(b, w);
    const v = load<u64>(wa);
    if (v != <u64>-1) {
      const bit = <u32>ctz<u64>(~v);
      store<u64>(wa, v | (<u64>1 << bit));
      return (b << HPAGE_PMD_ORDER) + (w << 6) + bit;
    }
  }
  unreachable();
  return NO_PFN;
}

/**
 * Whether an order-0 allocation now would find a frame, without trying: nothing is counted, no
 * injected failure is drawn. False while fault injection of frames is armed (only the
 * allocation itself may draw it). For a fast path that must hand the fault on unchanged
 * rather than fail it.
 */
export function frame_available(ctx: u32): bool {
  if (ctxOf(ctx).frameReserved > 0) return true;
  if (atomic.load<u32>(faultAttrAddr(FAIL_FRAME) + offsetof<FaultAttr>("armed")) != 0) return false;
  return atomic.load<i32>(nrFreeAddr()) > 0;
}

/**
 * Reserves `n` order-0 frames for the context's next allocations; false (nothing taken) when
 * fewer are free, or when fault injection fails it (one attempt per call with n > 0).
 */
export function frames_reserve(ctx: u32, n: u32): bool {
  return reserveInto(ctx + offsetof<Ctx>("frameReserved"), nrFreeAddr(), n, PGALLOC_FAIL, FAIL_FRAME);
}

/**
 * alloc_pages(ctx, 0, 0) with one context attached and no frame failure injected (the caller
 * checked both), for a caller that writes the new folio's struct page whole itself: the
 * context's reservation first, then the free pool; NO_PFN, counted as alloc_pages() counts
 * it, when no frame is free.
 */
// @ts-ignore: decorator
@inline export function alloc_frame_alone(ctx: u32): u32 {
  const C = ctxOf(ctx);
  if (C.frameReserved > 0) {
    C.frameReserved = C.frameReserved - 1;
  } else if (!takeAlone(nrFreeAddr(), 1)) {
    count_vm_events(PGALLOC_FAIL, 1);
    return NO_PFN;
  }
  count_vm_events(PGALLOC, 1);
  return allocOrder0Up(ctx);
}

/** The frames free for a reservation now (nr_free_pages()). */
export function frames_free(): u32 {
  const n = atomic.load<i32>(nrFreeAddr());
  return n > 0 ? <u32>n : 0;
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

// ---- orders 1…8: aligned runs of bits --------------------------------------------------------

/** What takeRun() returns when it lost a race (a unit or a bit taken under it), not a pfn. */
const RUN_RACED: u32 = 0xfffffffe;
/** What findRun() returns when the block holds no free aligned run of the order. */
const NO_RUN: u32 = 0xffffffff;

/** The bits of a run of 2^order frames (order ≤ 6), from bit 0 of a word. */
// @ts-ignore: decorator
@inline function runBits(order: u32): u64 {
  return order >= 6 ? <u64>-1 : (<u64>1 << (<u64>1 << order)) - 1;
}

/**
 * The bits of word `v` at which an aligned run of 2^order (≤ 64) clear bits starts: the clear
 * bits folded onto each run's first bit (bit p stays set only if p … p + 2^order - 1 are all
 * clear), kept at multiples of 2^order.
 */
// @ts-ignore: decorator
@inline function runStarts(v: u64, order: u32): u64 {
  let f = ~v;
  let align: u64 = <u64>-1;
  if (order >= 1) { f &= f >> 1; align = 0x5555555555555555; }
  if (order >= 2) { f &= f >> 2; align = 0x1111111111111111; }
  if (order >= 3) { f &= f >> 4; align = 0x0101010101010101; }
  if (order >= 4) { f &= f >> 8; align = 0x0001000100010001; }
  if (order >= 5) { f &= f >> 16; align = 0x0000000100000001; }
  if (order >= 6) { f &= f >> 32; align = 1; }
  return f & align;
}

/**
 * Where block `b` has a free aligned run of 2^order frames (1 ≤ order ≤ 8), as a bit offset in
 * the block, or NO_RUN. Only reads: a quick look before any unit is taken.
 */
function findRun(b: u32, order: u32): u32 {
  if (order <= 6) {
    for (let w: u32 = 0; w < 8; w++) {
      const m = runStarts(atomic.load<u64>(wordAddr(b, w)), order);
      if (m != 0) return (w << 6) + <u32>ctz<u64>(m);
    }
    return NO_RUN;
  }
  const nw: u32 = <u32>1 << (order - 6);
  for (let w: u32 = 0; w < 8; w += nw) {
    let clear = true;
    for (let j: u32 = 0; j < nw && clear; j++) clear = atomic.load<u64>(wordAddr(b, w + j)) == 0;
    if (clear) return w << 6;
  }
  return NO_RUN;
}

/**
 * Claims a free aligned run of 2^order frames in block `b`, whose units the caller holds:
 * sets its bits and returns its bit offset in the block, or NO_RUN (nothing left set) when
 * there is none, or no longer one.
 */
function claimRun(b: u32, order: u32): u32 {
  if (order <= 6) {
    const bits = runBits(order);
    for (let w: u32 = 0; w < 8; w++) {
      const wa = wordAddr(b, w);
      let v = atomic.load<u64>(wa);
      while (true) {
        const m = runStarts(v, order);
        if (m == 0) break;
        const at = <u32>ctz<u64>(m);
        const seen = atomic.cmpxchg<u64>(wa, v, v | (bits << at));
        if (seen == v) return (w << 6) + at;
        v = seen;
      }
    }
    return NO_RUN;
  }
  // 2 or 4 whole words, aligned: each taken 0 → all ones; a word found taken rolls back the
  // ones before it (they were all ours, so nobody else can have changed them)
  const nw: u32 = <u32>1 << (order - 6);
  for (let w: u32 = 0; w < 8; w += nw) {
    let j: u32 = 0;
    while (j < nw && atomic.cmpxchg<u64>(wordAddr(b, w + j), 0, <u64>-1) == 0) j++;
    if (j == nw) return w << 6;
    while (j > 0) {
      j--;
      atomic.store<u64>(wordAddr(b, w + j), 0);
    }
  }
  return NO_RUN;
}

/** Takes `nr` units of block `b` if it has that many. */
// @ts-ignore: decorator
@inline function reserveUnits(b: u32, nr: i32): bool {
  const a = freeAddr(b);
  let c = atomic.load<i32>(a);
  while (c >= nr) {
    const seen = atomic.cmpxchg<i32>(a, c, c - nr);
    if (seen == c) return true;
    c = seen;
  }
  return false;
}

/**
 * One try at block `b` for a run of 2^order: look (reads only), take the units, claim the bits;
 * on a claim that fails, give the units back. Returns the run's first pfn, NO_PFN when the
 * block has no such run, or RUN_RACED when it had one but another thread got there first.
 */
function takeRun(b: u32, order: u32): u32 {
  if (findRun(b, order) == NO_RUN) return NO_PFN;
  const nr = <i32>1 << order;
  if (!reserveUnits(b, nr)) return RUN_RACED;
  const at = claimRun(b, order);
  if (at != NO_RUN) return (b << HPAGE_PMD_ORDER) + at;
  atomic.add<i32>(freeAddr(b), nr);
  return RUN_RACED;
}

/**
 * __rmqueue_smallest() for orders 1…8, for a caller holding 2^order frames of nrFreePages:
 * a naturally aligned run of free frames, found first in the blocks already split (from the
 * thread's cursor on, partly taken blocks holding at least 2^order free units), then in the
 * wholly free blocks from the bottom — the smallest free block that fits before a bigger one
 * is broken, roughly: Linux's free lists by order are here the bitmaps, read. NO_PFN when no
 * block has such a run. A pass that lost a race (a run another thread took first, or a block
 * whose units went meanwhile) looks again: someone else made progress, and what they freed or
 * left may fit.
 */
function allocRun(ctx: u32, order: u32): u32 {
  const n = hdr().nblocks;
  const nr = <i32>1 << order;
  const hint = ctxOf(ctx).blockHint;
  const start = hint < n ? hint : 0;
  while (true) {
    let raced = false;
    for (let i: u32 = 0; i < n; i++) {
      const b = start + i < n ? start + i : start + i - n;
      const f = atomic.load<i32>(freeAddr(b));
      if (f < nr || f == <i32>HPAGE_PMD_NR) continue;
      const pfn = takeRun(b, order);
      if (pfn == RUN_RACED) raced = true;
      else if (pfn != NO_PFN) return pfn;
    }
    for (let b: u32 = 0; b < n; b++) {
      if (atomic.load<i32>(freeAddr(b)) != <i32>HPAGE_PMD_NR) continue;
      const pfn = takeRun(b, order);
      if (pfn == RUN_RACED) raced = true;
      else if (pfn != NO_PFN) return pfn;
    }
    if (!raced) return NO_PFN;
  }
}

/**
 * free_pages(): give a folio of `order` back. PGFREE counts the 2^order frames of an order 0…8
 * folio (as free_one_page() does), THP_FREE an order-9 folio. The caller has dropped the last
 * reference.
 */
export function free_pages(pfn: u32, order: u32): void {
  const b = pfn >> HPAGE_PMD_ORDER;
  if (order == 0) {
    resetPage(pfn, 1 << PG_buddy, 0);
    const bit = pfn & (HPAGE_PMD_NR - 1);
    const wa = wordAddr(b, bit >> 6);
    if (ctx_up()) {
      store<u64>(wa, load<u64>(wa) & ~(<u64>1 << (bit & 63)));
      store<i32>(freeAddr(b), load<i32>(freeAddr(b)) + 1);
      store<i32>(nrFreeAddr(), load<i32>(nrFreeAddr()) + 1);
    } else {
      // bit first, then the unit: a reserver that sees the unit finds the bit
      atomic.and<u64>(wa, ~(<u64>1 << (bit & 63)));
      atomic.add<i32>(freeAddr(b), 1);
      // the global count last: a reservation it allows finds the unit above
      atomic.add<i32>(nrFreeAddr(), 1);
    }
    count_vm_events(PGFREE, 1);
  } else if (order == HPAGE_PMD_ORDER) {
    for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) resetPage(pfn + i, 1 << PG_buddy, 0);
    atomic.add<i32>(freeAddr(b), <i32>HPAGE_PMD_NR);
    atomic.add<i32>(nrFreeAddr(), <i32>HPAGE_PMD_NR);
    count_vm_events(THP_FREE, 1);
  } else {
    freeRun(pfn, order);
  }
}

/** free_pages() of order 1…8: the run's bits, then its units, then the global count. */
function freeRun(pfn: u32, order: u32): void {
  const nr: u32 = <u32>1 << order;
  const b = pfn >> HPAGE_PMD_ORDER;
  const bit = pfn & (HPAGE_PMD_NR - 1);
  for (let i: u32 = 0; i < nr; i++) resetPage(pfn + i, 1 << PG_buddy, 0);
  if (order <= 6) {
    const bits = runBits(order) << (bit & 63);
    const old = atomic.and<u64>(wordAddr(b, bit >> 6), ~bits);
    assert((old & bits) == bits, "free_pages: a frame of the run was free already");
  } else {
    // the words are all ours: no other owner shares them
    for (let j: u32 = 0; j < (nr >> 6); j++) {
      assert(atomic.load<u64>(wordAddr(b, (bit >> 6) + j)) == <u64>-1, "free_pages: a frame of the run was free already");
      atomic.store<u64>(wordAddr(b, (bit >> 6) + j), 0);
    }
  }
  atomic.add<i32>(freeAddr(b), <i32>nr);
  atomic.add<i32>(nrFreeAddr(), <i32>nr);
  count_vm_events(PGFREE, nr);
}

/**
 * Turns an allocated order-9 block into 512 allocated order-0 frames, for split_folio():
 * afterwards each frame (or each aligned piece of a lower order) is freed on its own. A folio
 * of order 1…8 needs no such step: its frames' bits are set already, so its pieces are freed
 * at whatever order they have after the split.
 */
export function split_block_to_order0(head: u32): void {
  const b = head >> HPAGE_PMD_ORDER;
  for (let w: u32 = 0; w < 8; w++) atomic.store<u64>(wordAddr(b, w), <u64>-1);
}

/** Free order-0 units left in pageblock `b` (for tests and the self-description). */
export function pageblock_free(b: u32): i32 {
  return atomic.load<i32>(freeAddr(b));
}

/**
 * The byte address of pageblock `b`'s bitmap: 8 u64 words, bit i of word w for frame
 * b * 512 + w * 64 + i (for tests, which read it as u32 halves while nothing runs).
 */
export function pageblock_bitmap_addr(b: u32): u32 {
  return wordAddr(b, 0);
}

// Keep the plan honest: the pageblock is a u32 count, padding and 8 bitmap words.
// @ts-ignore: decorator
@inline export function pageblockOk(): bool {
  return PAGEBLOCK_BYTES == 8 + 8 * 8;
}
