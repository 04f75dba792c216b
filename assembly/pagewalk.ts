// The one page-table range walker (mm/pagewalk.c: walk_page_range(), struct mm_walk_ops).
//
// Every range operation of the core — fork's copy and its dry runs (memory.ts), zap
// (memory.ts), change_protection (mprotect.ts), populate (memory.ts), mremap's move and its
// count (mremap.ts), pagemap (task_mmu.ts) and GUP-fast (gup.ts) — descends the page tables
// through walk_page_range() below and differs only in its hooks; translation and follow_pfn()
// (pgtable.ts) use the same hooks through walk_page_at(), its form for one address:
//
//   walk_page_range(w, start, end)
//     walk_pgd_range   for each PGD entry of [start, end):  none/bad → pte_hole(depth 0)
//       walk_pud_range   for each PUD entry:                 none/bad → pte_hole(depth 2)
//         walk_pmd_range   for each PMD entry:               none     → pte_hole(depth 3)
//                                                             else     → pmd_entry(), then
//                                                                        a table → walk_pte_range
//           walk_pte_range   for each PTE (none ones too):   pte_entry()
//
// A walk is an @unmanaged class that extends MmWalk with its own fields (the kernel's
// walk->private) and defines the hooks it needs, with the kernel's names and meanings:
//
//   pte_hole(addr, next, depth): i32       a none (or bad) upper entry over [addr, next)
//   pmd_entry(pmdp, pmd, addr, next): i32  a non-none PMD over [addr, next): a table, a PMD
//                                          leaf (THP) or a PMD swap/migration entry. Sets
//                                          w.action: ACTION_SUBTREE (the default: descend if it
//                                          is a table), ACTION_CONTINUE (skip its PTEs) or
//                                          ACTION_AGAIN (read the PMD again and call again —
//                                          what a pmd_entry that splits a THP returns)
//   pte_entry(ptep, pte, addr): i32        one PTE slot and the value read from it; returns a
//                                          tally ≥ 0 for pte_tally()
//   pte_tally(sum: u32): void              the sum of pte_entry()'s tallies over one PTE table,
//                                          once per table walked (also when the walk ends in it)
//
// A hook returns 0 (pte_entry(): a tally ≥ 0) to go on; a negative result ends the walk and
// is walk_page_range()'s result: -errno, or WALK_STOP when the walk is to be resumed from
// w.next (set first by the hook that stops). A walk without pmd_entry descends into every PTE
// table and steps over PMD leaves; a walk without pte_entry never enters a PTE table.
//
// The tally is the kernel's rss[] vector on zap_pte_range()'s and copy_pte_range()'s stack
// (and change_pte_range()'s `pages`): what each PTE adds to counters stays in a local of the
// loop and reaches the walk once per table, not once per PTE. Each walk packs its counts into
// the tally as it likes (a PTE table has 512 entries: ten bits hold any count of them).
//
// Why this form: AssemblyScript has no closures. A hook called through a function index
// (call_indirect) costs a call per PTE and keeps the hook's body out of the loop; hooks picked
// by an op code in one shared walker cost a dispatch per PTE and one loop body holding every
// operation. Measured on zap of 1 GiB (release build, interleaved with the hand-written loop
// it replaced): call_indirect +27 %, an op-code switch +20 %, the generic walker within noise.
// walk_page_range() is generic: each walk class gets its own compiled copy of the one descent,
// with its hooks inlined — the code of a hand-written loop, from one source. `isDefined(w.hook)`
// is resolved at compile time, as the kernel's `if (ops->pte_hole)` is at run time.
//
// Upper levels are skipped a whole entry at a time, as pgd_none_or_clear_bad() lets the kernel
// skip them: an empty PGD entry passes over 512 GiB in one step, a PUD entry over 1 GiB. An
// entry that is neither none nor a table (no PUD leaves exist here) is bad and treated as a
// hole; the kernel clears it with a warning, the simulator leaves it for its checks to find.
//
// With WALK_ALLOC in w.walkFlags a none entry at any level gets a table instead of a hole
// (__pud_alloc(), __pmd_alloc(), __pte_alloc(); the tables come from the context's
// reservation, so reserve first) and the walk goes on into it: populate and uffd-wp markers.
// With WALK_RECORDS the walk stops before a PMD whose pages' record offsets would not fit.
//
// What stays outside: the single-entry helpers of pgtable.ts (pmd_off(), pte_offset_map()),
// free_pgd_range(), which frees tables on its way back up, and mm_count_tables(), the check
// that counts what every walk installed.
//
// The walk itself lives in the calling thread's context (walk_of()): one walk at a time per
// thread; hooks must not start another.

import { ctxOf, PAGE_SIZE, CTX_WALK_OFFSET, CTX_WALK_BYTES, EINVAL } from "./layout";
import { pte_none } from "./pte";
import {
  entryLoad, entryTable, isTableEntry, pgdIndex, pudIndex, pmdIndex, pteIndex, mmOf, mm_valid,
  tableAddr, __pte_alloc, PMD_SIZE, PUD_SIZE, PGDIR_SIZE, TASK_SIZE,
} from "./pgtable";

/** pte_hole() depths, numbered as Linux numbers them (0 PGD, 1 P4D — folded here — 2 PUD, 3 PMD). */
export const DEPTH_PGD: i32 = 0;
export const DEPTH_PUD: i32 = 2;
export const DEPTH_PMD: i32 = 3;

/** enum page_walk_action: what pmd_entry() asks of the walker next. */
export const ACTION_SUBTREE: i32 = 0;
export const ACTION_CONTINUE: i32 = 1;
export const ACTION_AGAIN: i32 = 2;

/**
 * A hook's result that ends the walk to be resumed from w.next (records full): negative, and
 * beyond every errno (Linux's MAX_ERRNO is 4095).
 */
export const WALK_STOP: i32 = -4096;

/** walkFlags: install missing tables rather than report holes. */
export const WALK_ALLOC: u32 = 1;
/**
 * walkFlags: the walk hands back records, which give page offsets from w.base in 32 bits: it
 * stops (WALK_STOP, w.next set) at the first populated PMD whose pages would lie beyond them,
 * 2^32 pages = 16 TiB on, for the caller to resume there.
 */
export const WALK_RECORDS: u32 = 2;
/** The farthest a PMD may start from w.base for all its pages' offsets to fit in 32 bits. */
const RECORD_REACH: u64 = (<u64>1 << (32 + 12)) - (<u64>1 << 21);

/**
 * struct mm_walk: what every walk has. Walks extend it; their fields follow these. The
 * walker keeps pmdp/pmd of the PMD whose PTEs it is walking, for pte_entry().
 */
@unmanaged export class MmWalk {
  /** The mm walked. */
  mm: u32;
  /** Its PGD table (walk->pgd). */
  pgd: u32;
  walkFlags: u32;
  /** Set by pmd_entry(): ACTION_*. */
  action: i32;
  /** The PMD slot and value above the PTE table being walked. */
  pmdp: u32;
  pmd: u64;
  /** Where a walk ended early should resume (set by the hook that ends it). */
  next: u64;
  /** The start of the operation's range: records give page offsets from it. */
  base: u64;

  /** The calling thread's context (reservations, records): the walk lives inside it. */
  // @ts-ignore: decorator
  @inline get ctx(): u32 {
    return changetype<u32>(this) - CTX_WALK_OFFSET;
  }
}

/**
 * The walk of type W in the context `ctx`, with the MmWalk fields set for a walk of `mm`
 * starting at `start`. The walk's own fields are whatever the last walk left: set them.
 */
// @ts-ignore: decorator
@inline export function walk_of<W extends MmWalk>(ctx: u32, mm: u32, start: u64, walkFlags: u32): W {
  assert(offsetof<W>() <= CTX_WALK_BYTES);
  const w = changetype<W>(ctx + CTX_WALK_OFFSET);
  w.mm = mm;
  w.pgd = tableAddr(mmOf(mm).pgd);
  w.walkFlags = walkFlags;
  w.action = ACTION_SUBTREE;
  w.next = start;
  w.base = start;
  return w;
}

// @ts-ignore: decorator
@inline function pgd_addr_end(addr: u64, end: u64): u64 {
  const b = (addr + PGDIR_SIZE) & ~(PGDIR_SIZE - 1);
  return b < end ? b : end;
}
// @ts-ignore: decorator
@inline function pud_addr_end(addr: u64, end: u64): u64 {
  const b = (addr + PUD_SIZE) & ~(PUD_SIZE - 1);
  return b < end ? b : end;
}
// @ts-ignore: decorator
@inline export function pmd_addr_end(addr: u64, end: u64): u64 {
  const b = (addr + PMD_SIZE) & ~(PMD_SIZE - 1);
  return b < end ? b : end;
}

/**
 * walk_page_range(): walk [start, end) of w.mm (page-aligned, start < end) with W's hooks.
 * Returns 0, or the first negative result of a hook (the walk stops there).
 */
// @ts-ignore: decorator
@inline export function walk_page_range<W extends MmWalk>(w: W, start: u64, end: u64): i32 {
  const pgdTable = w.pgd;
  let addr = start;
  while (true) {
    const next = pgd_addr_end(addr, end);
    const pgdp = pgdTable + (pgdIndex(addr) << 3);
    let pgd = entryLoad(pgdp);
    // pgd_none_or_clear_bad()
    if (!isTableEntry(pgd) && pte_none(pgd) && (w.walkFlags & WALK_ALLOC)) {
      __pte_alloc(w.ctx, w.mm, pgdp);
      pgd = entryLoad(pgdp);
    }
    if (!isTableEntry(pgd)) {
      if (isDefined(w.pte_hole)) {
        const err = w.pte_hole(addr, next, DEPTH_PGD);
        if (err < 0) return err;
      }
    } else {
      const err = walk_pud_range<W>(w, entryTable(pgd), addr, next);
      if (err < 0) return err;
    }
    addr = next;
    if (addr >= end) return 0;
  }
}

// @ts-ignore: decorator
@inline function walk_pud_range<W extends MmWalk>(w: W, pudTable: u32, addr: u64, end: u64): i32 {
  while (true) {
    const next = pud_addr_end(addr, end);
    const pudp = pudTable + (pudIndex(addr) << 3);
    let pud = entryLoad(pudp);
    if (!isTableEntry(pud) && pte_none(pud) && (w.walkFlags & WALK_ALLOC)) {
      __pte_alloc(w.ctx, w.mm, pudp);
      pud = entryLoad(pudp);
    }
    if (!isTableEntry(pud)) {
      // pud_none_or_clear_bad(); the place of pud_entry() for PUD leaves, which cowsim lacks
      if (isDefined(w.pte_hole)) {
        const err = w.pte_hole(addr, next, DEPTH_PUD);
        if (err < 0) return err;
      }
    } else if (isDefined(w.pmd_entry) || isDefined(w.pte_entry)) {
      const err = walk_pmd_range<W>(w, entryTable(pud), addr, next);
      if (err < 0) return err;
    }
    addr = next;
    if (addr >= end) return 0;
  }
}

// @ts-ignore: decorator
@inline function walk_pmd_range<W extends MmWalk>(w: W, pmdTable: u32, addr: u64, end: u64): i32 {
  while (true) {
    const next = pmd_addr_end(addr, end);
    const pmdp = pmdTable + (pmdIndex(addr) << 3);
    let pmd = entryLoad(pmdp);
    if (pte_none(pmd) && (w.walkFlags & WALK_ALLOC)) {
      __pte_alloc(w.ctx, w.mm, pmdp);
      pmd = entryLoad(pmdp);
    }
    if (pte_none(pmd)) {
      if (isDefined(w.pte_hole)) {
        const err = w.pte_hole(addr, next, DEPTH_PMD);
        if (err < 0) return err;
      }
    } else {
      if ((w.walkFlags & WALK_RECORDS) && addr - w.base > RECORD_REACH) {
        w.next = addr;
        return WALK_STOP;
      }
      if (isDefined(w.pmd_entry)) {
        // Every pmd_entry() must handle PMD leaves (THP) and PMD swap / migration entries
        // itself, as the kernel's must handle pmd_trans_huge(): a THP split (split_huge_pmd())
        // goes there, followed by ACTION_AGAIN.
        w.action = ACTION_SUBTREE;
        const err = w.pmd_entry(pmdp, pmd, addr, next);
        if (err < 0) return err;
        if (w.action == ACTION_AGAIN) continue;
        if (w.action == ACTION_CONTINUE) {
          addr = next;
          if (addr >= end) return 0;
          continue;
        }
      }
      if (isDefined(w.pte_entry)) {
        if (isTableEntry(pmd)) {
          w.pmdp = pmdp;
          w.pmd = pmd;
          const err = walk_pte_range<W>(w, entryTable(pmd), addr, next);
          if (err < 0) return err;
        }
      }
    }
    addr = next;
    if (addr >= end) return 0;
  }
}

// @ts-ignore: decorator
@inline function walk_pte_range<W extends MmWalk>(w: W, pteTable: u32, addr: u64, end: u64): i32 {
  let ptep = pteTable + (pteIndex(addr) << 3);
  let tally: u32 = 0;
  let err: i32 = 0;
  while (true) {
    const r = w.pte_entry(ptep, entryLoad(ptep), addr);
    if (r < 0) {
      err = r;
      break;
    }
    tally += <u32>r;
    addr += PAGE_SIZE;
    if (addr >= end) break;
    ptep += 8;
  }
  if (isDefined(w.pte_tally)) w.pte_tally(tally);
  return err;
}

/**
 * The walk of the one page at `addr` of the PGD `pgdTable` (w.pgd, or an mm's own for a walk
 * whose hooks keep no state), for lookups made one address at a time: translation and
 * follow_pfn(). The levels and hooks of walk_page_range() over [page, page + PAGE_SIZE) without
 * its loops, and what ends the walk is its result: the result of pte_entry() for the PTE,
 * pte_hole() for a hole, or pmd_entry() — called here only for what has no PTE table below it,
 * a PMD leaf or a PMD swap entry. A missing hook gives 0. No WALK_ALLOC, no actions.
 */
// @ts-ignore: decorator
@inline export function walk_page_at<W extends MmWalk>(w: W, pgdTable: u32, addr: u64): i32 {
  const start = addr & ~<u64>(PAGE_SIZE - 1);
  const next = start + PAGE_SIZE;
  const pgd = entryLoad(pgdTable + (pgdIndex(start) << 3));
  if (!isTableEntry(pgd)) return isDefined(w.pte_hole) ? w.pte_hole(start, next, DEPTH_PGD) : 0;
  const pud = entryLoad(entryTable(pgd) + (pudIndex(start) << 3));
  if (!isTableEntry(pud)) return isDefined(w.pte_hole) ? w.pte_hole(start, next, DEPTH_PUD) : 0;
  const pmdp = entryTable(pud) + (pmdIndex(start) << 3);
  const pmd = entryLoad(pmdp);
  if (isTableEntry(pmd)) {
    if (!isDefined(w.pte_entry)) return 0;
    const ptep = entryTable(pmd) + (pteIndex(start) << 3);
    return w.pte_entry(ptep, entryLoad(ptep), start);
  }
  if (pte_none(pmd)) return isDefined(w.pte_hole) ? w.pte_hole(start, next, DEPTH_PMD) : 0;
  return isDefined(w.pmd_entry) ? w.pmd_entry(pmdp, pmd, start, next) : 0;
}

// ---- what every range operation starts with -----------------------------------------------

/** Validates a page-aligned user range; returns 0 or -EINVAL. */
export function check_range(start: f64, end: f64): i32 {
  if (!(start >= 0) || !(end <= <f64>TASK_SIZE) || !(start < end)) return -EINVAL;
  const s = <u64>start;
  const e = <u64>end;
  if (<f64>s != start || <f64>e != end) return -EINVAL;
  if ((s | e) & <u64>(PAGE_SIZE - 1)) return -EINVAL;
  return 0;
}

/**
 * The common start of a range operation on `mm`: clear the context's records, point `next`
 * at `start`, and validate. Returns 0 or -EINVAL.
 */
export function begin_range_op(ctx: u32, mm: u32, start: f64, end: f64): i32 {
  const C = ctxOf(ctx);
  C.nrRecords = 0;
  C.next = start;
  const bad = check_range(start, end);
  if (bad != 0) return bad;
  return mm_valid(mm) ? 0 : -EINVAL;
}
