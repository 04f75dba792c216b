// The pin registry: every pin a thread takes with gup_pin_fast() is a record in shared memory,
// so the kernel layer and the oracle of the main thread see the pins worker threads hold
// without a message, and without copying pfns into JavaScript on every GUP. Linux keeps no
// such list (a pin is only a count in the folio); cowsim needs one to judge pins, as the
// TypeScript PinRegistry does for the main thread's GUP users.
//
// Each context owns PIN_RECORDS records after its header (layout.ts); only its thread writes
// them. A record:
//
//    0 state   PIN_FREE / PIN_LIVE             16 nr      pages held
//    4 gen     odd while the owner changes it  20 tag     the caller's (a worker's id)
//    8 mm                                      24 va      f64, the first page's address
//   12 flags   FOLL_*                          32 pfns    u32 × PIN_RECORD_PAGES
//
// A reader on another thread takes a record as consistent when gen is even and the same
// before and after it read the fields (a seqcount).

import {
  hdr, ctxOf, NO_PFN, EINVAL, count_vm_events, GUP_FAST_PINNED, GUP_FAST_BACKOFF, ENOSPC, PIN_RECORDS, PIN_RECORD_BYTES, CTX_HEADER_BYTES,
} from "./layout";
import { pte_present, pte_pfn, pmd_leaf, is_swap_pte, pte_to_swp_entry, swp_offset, non_swap_entry, is_migration_entry } from "./pte";
import { walk_ptep, walk_pmdp, entryLoad } from "./pgtable";
import { swap_cache_pfn } from "./swapfile";
import { page_folio, folio_test_anon, is_zero_pfn, PageAnonExclusive } from "./page";
import { gup_fast_into, gup_put_pfns, gup_fast_enter, gup_fast_leave, FOLL_PIN, GUPF_OK } from "./gup";

export const PIN_FREE: u32 = 0;
export const PIN_LIVE: u32 = 1;
/** Field offsets of a pin record. */
export const PIN_OFF_STATE: u32 = 0;
export const PIN_OFF_GEN: u32 = 4;
export const PIN_OFF_MM: u32 = 8;
export const PIN_OFF_FLAGS: u32 = 12;
export const PIN_OFF_NR: u32 = 16;
export const PIN_OFF_TAG: u32 = 20;
export const PIN_OFF_VA: u32 = 24;
export const PIN_OFF_PFNS: u32 = 32;
/** The most pages one record holds: a longer pin is several records. */
export const PIN_RECORD_PAGES: u32 = (PIN_RECORD_BYTES - PIN_OFF_PFNS) >> 2;

/** Address of record `slot` of the context with index `i` (0 … maxThreads - 1), or 0. */
export function pin_record_addr(i: u32, slot: u32): u32 {
  const H = hdr();
  if (i >= H.maxThreads || slot >= PIN_RECORDS) return 0;
  return H.ctxBase + i * H.ctxStride + CTX_HEADER_BYTES + slot * PIN_RECORD_BYTES;
}

// @ts-ignore: decorator
@inline function recordOf(ctx: u32, slot: u32): u32 {
  return ctx + CTX_HEADER_BYTES + slot * PIN_RECORD_BYTES;
}

/**
 * pin_user_pages_fast_only() / get_user_pages_fast_only() into a record: GUP-fast over up to
 * `nr` (≤ PIN_RECORD_PAGES) pages from `va` of `mm` with `flags` (FOLL_PIN or FOLL_GET, …),
 * the pfns written straight into a free record of this context, which goes live when at least
 * one page was taken. Returns the pages taken (ctx.pinSlot names the record; 0 pages: no
 * record, ctx.gupReason says why), -ENOSPC when all this context's records are live (nothing
 * taken), -EINVAL for bad arguments.
 */
export function gup_pin_fast(ctx: u32, mm: u32, va: f64, nr: u32, flags: u32, tag: u32): i32 {
  return pinFastInto(ctx, mm, va, nr, flags, tag, true);
}

// @ts-ignore: decorator
@inline function pinFastInto(ctx: u32, mm: u32, va: f64, nr: u32, flags: u32, tag: u32, vmCount: bool): i32 {
  const C = ctxOf(ctx);
  C.pinSlot = NO_PFN;
  if (nr == 0 || nr > PIN_RECORD_PAGES) return -EINVAL;
  let slot = C.pinHint;
  let found = false;
  for (let i: u32 = 0; i < PIN_RECORDS; i++, slot = slot + 1 == PIN_RECORDS ? 0 : slot + 1) {
    if (atomic.load<u32>(recordOf(ctx, slot) + PIN_OFF_STATE) == PIN_FREE) {
      found = true;
      break;
    }
  }
  if (!found) return -ENOSPC;
  const r = recordOf(ctx, slot);
  atomic.add<u32>(r + PIN_OFF_GEN, 1); // odd: being filled
  const got = gup_fast_into(ctx, mm, va, nr, flags, r + PIN_OFF_PFNS, vmCount);
  if (got <= 0) {
    atomic.add<u32>(r + PIN_OFF_GEN, 1);
    return got;
  }
  store<u32>(r + PIN_OFF_MM, mm);
  store<u32>(r + PIN_OFF_FLAGS, flags);
  store<u32>(r + PIN_OFF_NR, <u32>got);
  store<u32>(r + PIN_OFF_TAG, tag);
  store<f64>(r + PIN_OFF_VA, va);
  atomic.store<u32>(r + PIN_OFF_STATE, PIN_LIVE);
  atomic.add<u32>(r + PIN_OFF_GEN, 1);
  C.pinSlot = slot;
  C.pinHint = slot + 1 == PIN_RECORDS ? 0 : slot + 1;
  return got;
}

export function ctx_pin_slot(ctx: u32): u32 {
  return ctxOf(ctx).pinSlot;
}

/**
 * Whether the page a live pin holds at `a` was unmapped behind it: the owner's PTE is a swap
 * entry whose swap-cache page is `pfn`, or a migration entry for it. try_to_unmap_one() and
 * try_to_migrate_one() refuse a possibly pinned exclusive page (A2), so with the protocol
 * intact a pinned page never ends so. The caller is inside GUP-fast's section.
 */
function unmappedBehindPin(mm: u32, a: u64, pfn: u32): bool {
  const ptep = walk_ptep(mm, a);
  const pte = ptep == 0 ? <u64>0 : entryLoad(ptep);
  if (pte == 0 || pte_present(pte) || !is_swap_pte(pte)) return false;
  const entry = pte_to_swp_entry(pte);
  if (is_migration_entry(entry)) return <u32>swp_offset(entry) == pfn;
  if (non_swap_entry(entry)) return false;
  return swap_cache_pfn(<u32>swp_offset(entry)) == pfn;
}

/**
 * Whether a FOLL_PIN on anonymous page `pfn` at `a` was broken while it was held: the page
 * lost PageAnonExclusive (a fork or an unmap shared it although it was pinned), or its owner's
 * swap or migration entry names it (unmapped behind the pin). With the protocol intact
 * neither can happen (Linux ≥ 5.19: a pinned anonymous page stays exclusive, and the clearing
 * side and fork back off from it). Meaningful only where PageAnonExclusive is tracked. The
 * caller is inside GUP-fast's section: the tables it walks stay.
 */
function pinBroken(mm: u32, a: u64, pfn: u32): bool {
  const folio = page_folio(pfn);
  if (is_zero_pfn(folio) || !folio_test_anon(folio)) return false;
  // a PMD-mapped THP keeps PageAnonExclusive on its head page, a PTE-mapped folio per page
  const pmdp = walk_pmdp(mm, a);
  const pmd = pmdp == 0 ? <u64>0 : entryLoad(pmdp);
  const pmdMapped = pmd_leaf(pmd) && <u32>pte_pfn(pmd) == folio;
  return !PageAnonExclusive(pmdMapped ? folio : pfn) || unmappedBehindPin(mm, a, pfn);
}

/**
 * unpin_user_pages() / put_page() of record `slot` of this context: it leaves the registry,
 * then its references go. With `audit`, first counts how many of its FOLL_PIN pages were
 * broken while it held them (see pinBroken(): a broken protocol's trace). Returns that count
 * (0 without `audit`), or -EINVAL when the record is not live.
 */
export function gup_unpin_record(ctx: u32, slot: u32, audit: bool): i32 {
  if (slot >= PIN_RECORDS) return -EINVAL;
  const r = recordOf(ctx, slot);
  if (atomic.load<u32>(r + PIN_OFF_STATE) != PIN_LIVE) return -EINVAL;
  const mm = load<u32>(r + PIN_OFF_MM);
  const flags = load<u32>(r + PIN_OFF_FLAGS);
  const nr = load<u32>(r + PIN_OFF_NR);
  const va = <u64>load<f64>(r + PIN_OFF_VA);
  let lost: i32 = 0;
  if (audit && (flags & FOLL_PIN) != 0) {
    gup_fast_enter(ctx);
    for (let i: u32 = 0; i < nr; i++) {
      if (pinBroken(mm, va + (<u64>i << 12), load<u32>(r + PIN_OFF_PFNS + (i << 2)))) lost++;
    }
    gup_fast_leave(ctx);
  }
  atomic.add<u32>(r + PIN_OFF_GEN, 1);
  atomic.store<u32>(r + PIN_OFF_STATE, PIN_FREE);
  gup_put_pfns(r + PIN_OFF_PFNS, nr, flags);
  atomic.add<u32>(r + PIN_OFF_GEN, 1);
  return lost;
}

/** Unpins every live record of this context. Returns the pages whose pin was broken. */
export function gup_unpin_all(ctx: u32): i32 {
  let lost: i32 = 0;
  for (let slot: u32 = 0; slot < PIN_RECORDS; slot++) {
    if (atomic.load<u32>(recordOf(ctx, slot) + PIN_OFF_STATE) == PIN_LIVE) lost += gup_unpin_record(ctx, slot, true);
  }
  return lost;
}

/** The number of a context from its address (its records are pin_record_addr(id, …)). */
export function ctx_id(ctx: u32): u32 {
  return ctxOf(ctx).id;
}

// ---- a pinner's loop, a batch of iterations per call ----------------------------------------
//
// A thread that pins and unpins in a loop (a stress test's pinner, an RDMA-like user) keeps its
// state in its scratch area, so one call runs many iterations with no JavaScript between them:
//
//   word 0 head, 1 count (the ring of held records), 2 random state (xorshift32),
//   3 calls, 4 pins, 5 pages, 6 unpins, 7 broken pages (audit), 8 calls with no free record,
//   16 … 16 + PIN_CYCLE_REASONS: calls that stopped short, by GUPF_* reason,
//   64 … 64 + hold: the ring of held records.

/** Words of the cycle state (see above). */
export const PIN_CYCLE_CALLS: u32 = 3;
export const PIN_CYCLE_PINS: u32 = 4;
export const PIN_CYCLE_PAGES: u32 = 5;
export const PIN_CYCLE_UNPINS: u32 = 6;
export const PIN_CYCLE_LOST: u32 = 7;
export const PIN_CYCLE_NO_RECORD: u32 = 8;
export const PIN_CYCLE_REASONS: u32 = 16;
const PIN_CYCLE_RING: u32 = 64;

/** Starts a pinner's state in this context's scratch area: nothing held, the counters 0. */
export function pin_cycle_init(ctx: u32, seed: u32): void {
  const s = ctxOf(ctx).scratch;
  memory.fill(s, 0, PIN_CYCLE_RING << 2);
  store<u32>(s + 8, seed != 0 ? seed : 1);
}

/** The cycle's counter at `word` (PIN_CYCLE_*). */
export function pin_cycle_count(ctx: u32, word: u32): u32 {
  return word < PIN_CYCLE_RING ? load<u32>(ctxOf(ctx).scratch + (word << 2)) : 0;
}

/**
 * `iters` iterations of: release the oldest held record once `hold` are held (with `audit`,
 * counting its broken pages), then GUP-fast `batch` pages at a random window of the `pages`
 * pages from `va` into a new record. Returns 0, or -EINVAL.
 */
export function gup_pin_cycle(ctx: u32, mm: u32, va: f64, pages: u32, batch: u32, flags: u32, tag: u32,
  hold: u32, iters: u32, audit: bool): i32 {
  if (batch == 0 || batch > PIN_RECORD_PAGES || pages < batch || hold == 0 || hold > PIN_RECORDS) return -EINVAL;
  const s = ctxOf(ctx).scratch;
  let head = load<u32>(s);
  let count = load<u32>(s + 4);
  let r = load<u32>(s + 8);
  const windows = pages - batch + 1;
  // the vmstat events of the whole batch go in at its end (see gup_fast_into())
  let pinned: u32 = 0;
  let backoffs: u32 = 0;
  for (let i: u32 = 0; i < iters; i++) {
    if (count >= hold) {
      const lost = gup_unpin_record(ctx, load<u32>(s + ((PIN_CYCLE_RING + head) << 2)), audit);
      if (lost > 0) store<u32>(s + (PIN_CYCLE_LOST << 2), load<u32>(s + (PIN_CYCLE_LOST << 2)) + <u32>lost);
      store<u32>(s + (PIN_CYCLE_UNPINS << 2), load<u32>(s + (PIN_CYCLE_UNPINS << 2)) + 1);
      head = head + 1 == hold ? 0 : head + 1;
      count--;
    }
    r ^= r << 13; r ^= r >> 17; r ^= r << 5;
    const off = r % windows;
    store<u32>(s + (PIN_CYCLE_CALLS << 2), load<u32>(s + (PIN_CYCLE_CALLS << 2)) + 1);
    const n = pinFastInto(ctx, mm, va + <f64>off * 4096.0, batch, flags, tag, false);
    if (n > 0) pinned += <u32>n;
    if (n >= 0 && ctxOf(ctx).gupReason != GUPF_OK) backoffs++;
    if (n > 0) {
      let tail = head + count;
      if (tail >= hold) tail -= hold;
      store<u32>(s + ((PIN_CYCLE_RING + tail) << 2), ctxOf(ctx).pinSlot);
      count++;
      store<u32>(s + (PIN_CYCLE_PINS << 2), load<u32>(s + (PIN_CYCLE_PINS << 2)) + 1);
      store<u32>(s + (PIN_CYCLE_PAGES << 2), load<u32>(s + (PIN_CYCLE_PAGES << 2)) + <u32>n);
    } else if (n == -ENOSPC) {
      store<u32>(s + (PIN_CYCLE_NO_RECORD << 2), load<u32>(s + (PIN_CYCLE_NO_RECORD << 2)) + 1);
    } else if (n < 0) {
      count_vm_events(GUP_FAST_PINNED, pinned);
      count_vm_events(GUP_FAST_BACKOFF, backoffs);
      return n;
    }
    if (n >= 0 && <u32>n < batch) {
      const w = s + ((PIN_CYCLE_REASONS + ctxOf(ctx).gupReason) << 2);
      store<u32>(w, load<u32>(w) + 1);
    }
  }
  store<u32>(s, head);
  store<u32>(s + 4, count);
  store<u32>(s + 8, r);
  if (pinned) count_vm_events(GUP_FAST_PINNED, pinned);
  if (backoffs) count_vm_events(GUP_FAST_BACKOFF, backoffs);
  return 0;
}

/** Releases every record the cycle holds (with `audit`, counting broken pages). */
export function pin_cycle_drain(ctx: u32, hold: u32, audit: bool): void {
  const s = ctxOf(ctx).scratch;
  let head = load<u32>(s);
  let count = load<u32>(s + 4);
  while (count > 0) {
    const lost = gup_unpin_record(ctx, load<u32>(s + ((PIN_CYCLE_RING + head) << 2)), audit);
    if (lost > 0) store<u32>(s + (PIN_CYCLE_LOST << 2), load<u32>(s + (PIN_CYCLE_LOST << 2)) + <u32>lost);
    store<u32>(s + (PIN_CYCLE_UNPINS << 2), load<u32>(s + (PIN_CYCLE_UNPINS << 2)) + 1);
    head = head + 1 == hold ? 0 : head + 1;
    count--;
  }
  store<u32>(s, head);
  store<u32>(s + 4, 0);
}
