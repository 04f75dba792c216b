// GUP-fast (mm/gup.c: gup_fast(), gup_fast_pte_range(), gup_fast_pmd_leaf()) and the pin
// accounting shared with the slow path (try_grab_folio(), gup_put_folio()).
//
// GUP-fast walks the page tables without any lock. Against the clearing side of
// folio_try_share_anon_rmap_pte() (A1–A4, rmap.ts) it follows the protocol of
// "mm: fix PageAnonExclusive clearing racing with concurrent RCU GUP-fast" (Linux 6.0):
//
//   (B1) read the PTE
//   (B2) with FOLL_WRITE, back off unless the PTE is writable (pte_access_permitted())
//   (B3) grab the folio: a reference, and with FOLL_PIN the pin
//        — full barrier (smp_mb__after_atomic() in try_grab_folio_fast()) —
//   (B4) re-read the PMD and the PTE; back off if either changed
//   (B5) if the PTE is not writable and FOLL_PIN without FOLL_WRITE: back off unless the
//        page is PageAnonExclusive (gup_must_unshare(), after an smp_rmb())
//
// Every access of the protocol is a Wasm atomic, and Wasm atomics are sequentially consistent,
// so the fences below order nothing more (Binaryen drops them from the release build). They
// stay to show a kernel reader where Linux needs its barriers.
//
// Other threads (workers with their own instances over the same memory) run GUP-fast while the
// main thread forks, unmaps and frees page tables. A walk announces itself in its context's
// gupFastSeq for as long as it touches page tables (local_irq_save() in gup_fast(), which holds
// off the IPI or RCU grace period of table freeing): pgtable.ts's gup_fast_sync() waits for it
// before a table it unlinked is reused. A frame freed and reused meanwhile is caught by
// try_get_folio()'s count and folio re-checks (B3) and by B4.
//
// For the stress tests the protocol can be broken on purpose, machine-wide (Header.protocolBreaks,
// set_protocol_breaks()): BREAK_PTE_RECHECK leaves out B4, BREAK_WRITE_PROTECT_SEQ ignores
// fork's write_protect_seq, and BREAK_UNMAP_CLEAR makes the clearing side (try_to_unmap_one(),
// try_to_migrate_one()) check pins on a live PTE instead of clearing it first (A1).
//
// Like Linux, GUP-fast stops at the first page it cannot take and returns how many it took;
// the slow path (src/mm/gup.ts) continues from there. ctx.gupReason says why it stopped.
// The range is walked by pagewalk.ts's walk_page_range(), as every range of the core is.

import {
  hdr, ctxOf, ctx_up, Ctx, Header, NO_PFN, PAGE_SIZE, count_vm_events, GUP_FAST_PINNED, GUP_FAST_BACKOFF, EINVAL,
} from "./layout";
import {
  pte_present, pte_protnone, pte_access_permitted, pte_special, pte_write, pte_pfn, pmd_leaf,
} from "./pte";
import {
  walk_pmdp, entryLoad, entryTable, isTableEntry, pteIndex, mm_valid, mm_set_flags, mm_flags,
  mm_write_protect_seq, MMF_HAS_PINNED,
} from "./pgtable";
import {
  Page, pageAddr, page_folio, pfn_valid, folio_test_large, folio_test_anon, folio_ref_try_add,
  pincountAddr, is_zero_pfn, PageAnonExclusive, setPageFlag, testPageFlag, PG_referenced,
  GUP_PIN_COUNTING_BIAS,
} from "./page";
import { folio_put_refs } from "./rmap";
import { MmWalk, walk_of, walk_page_range, check_range, ACTION_CONTINUE, WALK_STOP } from "./pagewalk";
import { set_anon_exclusive_checks } from "./page_table_check";

/** @foll FOLL_WRITE check the PTE is writable / the caller will write */
export const FOLL_WRITE: u32 = 1 << 0;
/** @foll FOLL_GET take a plain reference (get_user_pages()) */
export const FOLL_GET: u32 = 1 << 1;
/** @foll FOLL_FORCE write through a read-only mapping (ptrace), breaking COW */
export const FOLL_FORCE: u32 = 1 << 3;
/** @foll FOLL_LONGTERM the pin may be held indefinitely (RDMA, io_uring fixed buffers) */
export const FOLL_LONGTERM: u32 = 1 << 8;
/** @foll FOLL_PIN take a pin (pin_user_pages()): the caller will access the page contents */
export const FOLL_PIN: u32 = 1 << 19;
/** @foll FOLL_FAST_ONLY do not fall back to the slow path */
export const FOLL_FAST_ONLY: u32 = 1 << 20;

/** @gupf OK the page was taken */
export const GUPF_OK: u32 = 0;
/** @gupf NO_TABLE a page-table level above the PTE is missing */
export const GUPF_NO_TABLE: u32 = 1;
/** @gupf NOT_PRESENT (B1) the entry is none, a swap-format entry, or PROT_NONE */
export const GUPF_NOT_PRESENT: u32 = 2;
/** @gupf NOT_PERMITTED (B2) pte_access_permitted() failed: not user, or FOLL_WRITE on a read-only entry */
export const GUPF_NOT_PERMITTED: u32 = 3;
/** @gupf SPECIAL a special entry (the shared zero page): only the slow path takes it */
export const GUPF_SPECIAL: u32 = 4;
/** @gupf GRAB_FAILED (B3) the folio's count was zero: it is being freed */
export const GUPF_GRAB_FAILED: u32 = 5;
/** @gupf PTE_CHANGED (B4) the PMD or PTE changed after the grab */
export const GUPF_PTE_CHANGED: u32 = 6;
/** @gupf MUST_UNSHARE (B5) R/O FOLL_PIN of a page not PageAnonExclusive: unshare first */
export const GUPF_MUST_UNSHARE: u32 = 7;
/** @gupf NOT_ALLOWED gup_fast_folio_allowed(): a FOLL_LONGTERM|FOLL_WRITE pin of a folio without a mapping */
export const GUPF_NOT_ALLOWED: u32 = 8;
/** @gupf SEQ_RETRY FOLL_PIN raced with fork's write-protect (mm->write_protect_seq): everything undone */
export const GUPF_SEQ_RETRY: u32 = 9;

/** GUP-fast leaves out B4, the re-read of the PMD and PTE after the grab (a broken protocol). */
export const BREAK_PTE_RECHECK: u32 = 1 << 0;
/** The clearing side checks pins on a live PTE: no A1 clear before A2 (a broken protocol). */
export const BREAK_UNMAP_CLEAR: u32 = 1 << 1;
/** GUP-fast ignores mm->write_protect_seq, so a fork may share a page it pins (a broken protocol). */
export const BREAK_WRITE_PROTECT_SEQ: u32 = 1 << 2;
const BREAK_ALL: u32 = BREAK_PTE_RECHECK | BREAK_UNMAP_CLEAR | BREAK_WRITE_PROTECT_SEQ;

/** Which protocol steps are left out (BREAK_* bits); 0 (the default) is Linux's protocol. */
export function set_protocol_breaks(bits: u32): i32 {
  if (bits & ~BREAK_ALL) return -EINVAL;
  atomic.store<u32>(changetype<usize>(hdr()) + offsetof<Header>("protocolBreaks"), bits);
  return 0;
}
export function protocol_breaks(): u32 {
  return atomic.load<u32>(changetype<usize>(hdr()) + offsetof<Header>("protocolBreaks"));
}

/** Enters GUP-fast's lockless section (gupFastSeq odd): page tables stay until it leaves. */
// @ts-ignore: decorator
@inline export function gup_fast_enter(ctx: u32): void {
  atomic.add<u32>(ctx + offsetof<Ctx>("gupFastSeq"), 1);
}
// @ts-ignore: decorator
@inline export function gup_fast_leave(ctx: u32): void {
  atomic.add<u32>(ctx + offsetof<Ctx>("gupFastSeq"), 1);
}

/**
 * try_grab_folio(): take `refs` references, plus the pins with FOLL_PIN (GUP_PIN_COUNTING_BIAS
 * each on an order-0 folio, _pincount on a large one). Pins on the zero page are not counted.
 * Fails (false) only when the folio is being freed (count zero).
 */
export function try_grab_folio(folio: u32, refs: i32, flags: u32): bool {
  return grabFolio(folio, refs, flags);
}

// @ts-ignore: decorator
@inline function grabFolio(folio: u32, refs: i32, flags: u32): bool {
  if ((flags & FOLL_PIN) != 0 && is_zero_pfn(folio)) return true;
  if ((flags & FOLL_PIN) != 0 && !folio_test_large(folio)) {
    // try_get_folio() then folio_ref_add(refs * (GUP_PIN_COUNTING_BIAS - 1)), as one atomic
    // step: no one can tell the two apart, and a pin costs one locked instruction, not two
    if (!folio_ref_try_add(folio, refs * GUP_PIN_COUNTING_BIAS)) return false;
  } else {
    if (!folio_ref_try_add(folio, refs)) return false;
    if (flags & FOLL_PIN) atomic.add<i32>(pincountAddr(folio), refs);
  }
  // smp_mb__after_atomic(): the pin is visible before the PTE is re-read (B3 → B4); pairs
  // with the barrier before folio_maybe_dma_pinned() in folio_try_share_anon_rmap_pte() (A2).
  // Alone in the core there is no other CPU to order against: a kernel built for one CPU has
  // only a compiler barrier there
  if (!ctx_up()) atomic.fence();
  return true;
}

/** gup_put_folio(): undo try_grab_folio(). The last reference frees the folio. */
export function gup_put_folio(folio: u32, refs: i32, flags: u32): void {
  putFolio(folio, refs, flags);
}

// @ts-ignore: decorator
@inline function putFolio(folio: u32, refs: i32, flags: u32): void {
  if (flags & FOLL_PIN) {
    if (is_zero_pfn(folio)) return;
    if (folio_test_large(folio)) atomic.sub<i32>(pincountAddr(folio), refs);
    else refs *= GUP_PIN_COUNTING_BIAS;
  }
  folio_put_refs(folio, refs);
}

/** gup_must_unshare() as GUP-fast calls it: without a VMA. */
// @ts-ignore: decorator
@inline function mustUnshare(flags: u32, page: u32, folio: u32): bool {
  if ((flags & (FOLL_WRITE | FOLL_PIN)) != FOLL_PIN) return false;
  if (hdr().gupFastNoUnshare) return false;
  if (!folio_test_anon(folio)) {
    // R/O long-term pins of file pages need the VMA to decide: GUP-fast cannot, so it backs off
    return (flags & FOLL_LONGTERM) != 0;
  }
  // smp_rmb(): pairs with the barrier after ClearPageAnonExclusive() (A3 → A4); alone in the
  // core, nothing to pair with
  if (!ctx_up()) atomic.fence();
  return !PageAnonExclusive(page);
}

/**
 * folio_set_referenced(), skipped when the bit is already set: the same result without a
 * locked instruction on every page of every pin.
 */
// @ts-ignore: decorator
@inline function folioSetReferenced(folio: u32): void {
  if (!testPageFlag(folio, PG_referenced)) setPageFlag(folio, PG_referenced);
}

/** gup_fast_folio_allowed(), for the mappings cowsim has (anon, shmem). */
// @ts-ignore: decorator
@inline function folioAllowed(folio: u32, flags: u32): bool {
  if ((flags & (FOLL_LONGTERM | FOLL_WRITE)) != (FOLL_LONGTERM | FOLL_WRITE)) return true;
  return atomic.load<u32>(pageAddr(folio) + offsetof<Page>("mapping")) != 0;
}

// ---- one PTE, in two halves, so tests can interleave the clearing side between them --------

/**
 * Steps B1–B3 for the page at `va`. Returns GUPF_OK with the folio grabbed (state in ctx), or
 * the reason it backed off (nothing held).
 */
export function gup_fast_pte_begin(ctx: u32, mm: u32, va: f64, flags: u32): u32 {
  const C = ctxOf(ctx);
  const a = <u64>va;
  C.gupFolio = NO_PFN;
  C.gupPfn = NO_PFN;
  gup_fast_enter(ctx);
  const r = ptePinBeginAt(C, mm, a, flags);
  gup_fast_leave(ctx);
  return r;
}

// @ts-ignore: decorator
@inline function ptePinBeginAt(C: Ctx, mm: u32, a: u64, flags: u32): u32 {
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return GUPF_NO_TABLE;
  const pmd = entryLoad(pmdp);
  if (!isTableEntry(pmd)) return pmd_leaf(pmd) ? GUPF_NOT_PRESENT : GUPF_NO_TABLE;
  const ptep = entryTable(pmd) + (pteIndex(a) << 3);
  return ptePinBegin(C, pmdp, pmd, ptep, entryLoad(ptep), flags);
}

/** B1–B3 on a PTE slot and the value (B1) read from it (gup_fast_pte_range()'s loop body, first half). */
// @ts-ignore: decorator
@inline function ptePinBegin(C: Ctx, pmdp: u32, pmd: u64, ptep: u32, pte: u64, flags: u32): u32 {
  // the PMD that B4 reads again
  C.gupPmdp = pmdp;
  C.gupPmd = pmd;
  return ptePinGrab(C, ptep, pte, flags);
}

/** B1–B3 under the PMD already in ctx (gupPmdp, gupPmd): the walk sets it once per PTE table. */
// @ts-ignore: decorator
@inline function ptePinGrab(C: Ctx, ptep: u32, pte: u64, flags: u32): u32 {
  // (B1)
  if (!pte_present(pte) || pte_protnone(pte)) return GUPF_NOT_PRESENT;
  // (B2)
  if (!pte_access_permitted(pte, (flags & FOLL_WRITE) != 0)) return GUPF_NOT_PERMITTED;
  if (pte_special(pte)) return GUPF_SPECIAL;
  const pfn = <u32>pte_pfn(pte);
  if (!pfn_valid(pfn)) return GUPF_SPECIAL;
  // (B3) try_grab_folio_fast(), with try_get_folio()'s re-check that the page is still in
  // the folio it grabbed (a split may have raced)
  let folio: u32;
  while (true) {
    folio = page_folio(pfn);
    if (!grabFolio(folio, 1, flags)) return GUPF_GRAB_FAILED;
    if (page_folio(pfn) == folio) break;
    gup_put_folio(folio, 1, flags);
  }
  C.gupPtep = ptep;
  C.gupPte = pte;
  C.gupPfn = pfn;
  C.gupFolio = folio;
  C.gupFlags = flags;
  return GUPF_OK;
}

/**
 * Steps B4–B5 for the page begun by gup_fast_pte_begin(). Returns GUPF_OK (the page stays
 * grabbed; ctx holds its pfn) or the reason it backed off (the grab undone).
 */
export function gup_fast_pte_finish(ctx: u32): u32 {
  gup_fast_enter(ctx);
  const r = ptePinFinish(ctxOf(ctx));
  gup_fast_leave(ctx);
  return r;
}

// @ts-ignore: decorator
@inline function ptePinFinish(C: Ctx): u32 {
  const folio = C.gupFolio;
  const flags = C.gupFlags;
  // (B4)
  if ((protocol_breaks() & BREAK_PTE_RECHECK) == 0 &&
      (entryLoad(C.gupPmdp) != C.gupPmd || entryLoad(C.gupPtep) != C.gupPte)) {
    gup_put_folio(folio, 1, flags);
    return GUPF_PTE_CHANGED;
  }
  if (!folioAllowed(folio, flags)) {
    gup_put_folio(folio, 1, flags);
    return GUPF_NOT_ALLOWED;
  }
  // (B5)
  if (!pte_write(C.gupPte) && mustUnshare(flags, C.gupPfn, folio)) {
    gup_put_folio(folio, 1, flags);
    return GUPF_MUST_UNSHARE;
  }
  folioSetReferenced(folio);
  return GUPF_OK;
}

export function gup_fast_pte_pfn(ctx: u32): u32 {
  return ctxOf(ctx).gupPfn;
}

/**
 * gup_fast_pmd_leaf(): a PMD-mapped THP; grabs the folio once for all `nr` pages wanted from
 * it (record_subpages()). Writes their pfns at `out`. Returns GUPF_OK or the reason.
 */
function gupFastPmdLeaf(pmdp: u32, pmd: u64, a: u64, nr: u32, flags: u32, out: u32): u32 {
  if (pte_protnone(pmd)) return GUPF_NOT_PRESENT;
  if (!pte_access_permitted(pmd, (flags & FOLL_WRITE) != 0)) return GUPF_NOT_PERMITTED;
  if (pte_special(pmd)) return GUPF_SPECIAL;
  const folio = <u32>pte_pfn(pmd);
  const first = folio + (<u32>(a >> 12) & 511);
  if (!try_grab_folio(folio, <i32>nr, flags)) return GUPF_GRAB_FAILED;
  if ((protocol_breaks() & BREAK_PTE_RECHECK) == 0 && entryLoad(pmdp) != pmd) {
    gup_put_folio(folio, <i32>nr, flags);
    return GUPF_PTE_CHANGED;
  }
  if (!folioAllowed(folio, flags)) {
    gup_put_folio(folio, <i32>nr, flags);
    return GUPF_NOT_ALLOWED;
  }
  if (!pte_write(pmd) && mustUnshare(flags, folio, folio)) {
    gup_put_folio(folio, <i32>nr, flags);
    return GUPF_MUST_UNSHARE;
  }
  for (let i: u32 = 0; i < nr; i++) store<u32>(out + (i << 2), first + i);
  folioSetReferenced(folio);
  return GUPF_OK;
}

/**
 * gup_fast_pgd_range() and below as a walk: stops at the first page it cannot take, with the
 * reason in ctx.gupReason (a hole at any level is GUPF_NO_TABLE).
 */
@unmanaged class GupFastWalk extends MmWalk {
  flags: u32;
  /** Where the pfns go (the scratch area) and how many are there. */
  out: u32;
  got: u32;

  pte_hole(addr: u64, next: u64, depth: i32): i32 {
    ctxOf(this.ctx).gupReason = GUPF_NO_TABLE;
    return WALK_STOP;
  }

  /**
   * A table: the PMD that B4 reads again for each of its PTEs goes into ctx once. A THP:
   * gup_fast_pmd_leaf() for the pages wanted from it. A PMD swap entry stops the walk.
   */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (isTableEntry(pmd)) {
      const C = ctxOf(this.ctx);
      C.gupPmdp = pmdp;
      C.gupPmd = pmd;
      return 0;
    }
    let reason = GUPF_NO_TABLE;
    if (pmd_leaf(pmd)) {
      const take = <u32>((next - addr) >> 12);
      reason = gupFastPmdLeaf(pmdp, pmd, addr, take, this.flags, this.out + (this.got << 2));
      if (reason == GUPF_OK) {
        this.got += take;
        this.action = ACTION_CONTINUE;
        return 0;
      }
    }
    ctxOf(this.ctx).gupReason = reason;
    return WALK_STOP;
  }

  /** gup_fast_pte_range()'s loop body: B1–B5 for one page, its pfn appended. */
  // @ts-ignore: decorator
  @inline pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    const C = ctxOf(this.ctx);
    let reason = ptePinGrab(C, ptep, pte, this.flags);
    if (reason == GUPF_OK) reason = ptePinFinish(C);
    if (reason != GUPF_OK) {
      C.gupReason = reason;
      return WALK_STOP;
    }
    store<u32>(this.out + (this.got << 2), C.gupPfn);
    this.got++;
    return 0;
  }
}

/**
 * gup_fast(): take up to `nr` pages from `va` without locks. Writes the pfn of each page taken
 * into the scratch area (u32 each) and returns how many were taken; ctx.gupReason says why it
 * stopped early (GUPF_OK if it did not). FOLL_PIN sets MMF_HAS_PINNED on the mm first, as
 * gup_fast_fallback() does, and honours the mm's write_protect_seq (a concurrent fork()).
 * Returns -EINVAL for bad arguments.
 */
export function gup_fast(ctx: u32, mm: u32, va: f64, nr: u32, flags: u32): i32 {
  if (nr > (hdr().scratchBytes >> 2)) {
    ctxOf(ctx).gupReason = GUPF_OK;
    return -EINVAL;
  }
  return gup_fast_into(ctx, mm, va, nr, flags, ctxOf(ctx).scratch);
}

/**
 * gup_fast() with the pfns written at `out` (room for `nr`). With `!vmCount` the vmstat events
 * (GUP_FAST_PINNED, GUP_FAST_BACKOFF) are left to the caller, which batches them as the
 * kernel's per-CPU counters do: one shared counter updated on every call by every thread is
 * the one cache line pinning threads would fight over.
 */
export function gup_fast_into(ctx: u32, mm: u32, va: f64, nr: u32, flags: u32, out: u32, vmCount: bool = true): i32 {
  const C = ctxOf(ctx);
  C.gupReason = GUPF_OK;
  if (nr == 0 || check_range(va, va + <f64>nr * <f64>PAGE_SIZE) != 0) return -EINVAL;
  if (((flags & FOLL_GET) != 0) == ((flags & FOLL_PIN) != 0)) return -EINVAL;
  // local_irq_save(): from here until the walk ends no table it can reach is reused
  gup_fast_enter(ctx);
  if (!mm_valid(mm)) {
    gup_fast_leave(ctx);
    return -EINVAL;
  }
  const checkSeq = (flags & FOLL_PIN) != 0 && (protocol_breaks() & BREAK_WRITE_PROTECT_SEQ) == 0;
  let seq: u32 = 0;
  if (flags & FOLL_PIN) {
    // mm_set_has_pinned_flag(): tested first, so pinning threads do not fight over the line
    if ((mm_flags(mm) & MMF_HAS_PINNED) == 0) mm_set_flags(mm, MMF_HAS_PINNED);
    seq = mm_write_protect_seq(mm);
    if (checkSeq && (seq & 1)) {
      gup_fast_leave(ctx);
      C.gupReason = GUPF_SEQ_RETRY;
      if (vmCount) count_vm_events(GUP_FAST_BACKOFF, 1);
      return 0;
    }
  }
  const a = <u64>va;
  const w = walk_of<GupFastWalk>(ctx, mm, a, 0);
  w.flags = flags;
  w.out = out;
  w.got = 0;
  walk_page_range<GupFastWalk>(w, a, a + (<u64>nr << 12));
  gup_fast_leave(ctx);
  let got = w.got;
  let reason = C.gupReason;
  if (checkSeq && mm_write_protect_seq(mm) != seq) {
    // read_seqcount_retry(): fork write-protected meanwhile; undo every pin
    gup_put_pfns(out, got, flags);
    got = 0;
    reason = GUPF_SEQ_RETRY;
  }
  C.gupReason = reason;
  if (vmCount) {
    count_vm_events(GUP_FAST_PINNED, got);
    if (reason != GUPF_OK) count_vm_events(GUP_FAST_BACKOFF, 1);
  }
  return <i32>got;
}

/** unpin_user_pages() / put_page() over a list of `n` pfns at `list`. */
export function gup_put_pfns(list: u32, n: u32, flags: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const pfn = load<u32>(list + (i << 2));
    putFolio(page_folio(pfn), 1, flags);
  }
}

/** unpin_user_pages() / put_page() over the first `n` pfns of the scratch area. */
export function gup_put_scratch(ctx: u32, n: u32, flags: u32): i32 {
  if (n > (hdr().scratchBytes >> 2)) return -EINVAL;
  gup_put_pfns(ctxOf(ctx).scratch, n, flags);
  return 0;
}

/**
 * Whether GUP-fast asks gup_must_unshare() before a R/O pin (Linux 5.19+, a7f226604170; the
 * default) or pins whatever page it finds, as older kernels do. Call it with whether the
 * strategy tracks PageAnonExclusive: it also sets the debug build's PageAnonExclusive check
 * (set_anon_exclusive_checks()).
 */
export function set_gup_fast_unshare(on: u32): void {
  hdr().gupFastNoUnshare = on ? 0 : 1;
  // the same property of the strategy: it tracks PageAnonExclusive, so the debug build's
  // page_table_check may insist on its rules (set_anon_exclusive_checks() overrides this)
  set_anon_exclusive_checks(on);
}
