// mm/mremap.c: move_page_tables() — mremap()'s move of a range's entries to a new address,
// as a walk of pagewalk.ts over the old range.

import { ctxOf, pushRecord, EINVAL, ENOMEM } from "./layout";
import { pte_none, pte_pfn } from "./pte";
import {
  walk_alloc_pmdp, entryLoad, entryStore, isTableEntry, pteIndex, pt_reserve, pt_unreserve,
  PUD_SHIFT, PGDIR_SHIFT, PMD_SIZE,
} from "./pgtable";
import {
  MmWalk, walk_of, walk_page_range, pmd_addr_end, check_range, begin_range_op, ACTION_CONTINUE,
  WALK_STOP,
} from "./pagewalk";
import { REC_PMD_PARTIAL, dstPteTable, pmd_whole, tablesMissingFor } from "./memory";

/**
 * The tables the destination needs, an upper bound, as mremap has always counted them: a PTE
 * table for each destination PMD a populated source table lands in (one, or two when the
 * ranges are not PMD-aligned alike); and at the first such PMD of each destination PUD the
 * tables missing there (tablesMissingFor()) less the PTE table already counted for it.
 */
@unmanaged class MoveCountWalk extends MmWalk {
  /** new address − old address, modulo 2^64. */
  delta: u64;
  lastU: u64;
  lastG: u64;
  need: u32;

  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    this.action = ACTION_CONTINUE;
    const dEnd = next + this.delta;
    for (let d = addr + this.delta; d < dEnd; d = pmd_addr_end(d, dEnd)) {
      const table = isTableEntry(pmd);
      if ((d >> PUD_SHIFT) != this.lastU || (d >> PGDIR_SHIFT) != this.lastG) {
        const missing = tablesMissingFor(this.mm, d);
        // a leaf landing where a PMD is already (it will not move) needs nothing
        if (missing > 0) this.need += missing - 1;
        else if (table) this.need--;
        this.lastU = d >> PUD_SHIFT;
        this.lastG = d >> PGDIR_SHIFT;
      }
      if (table) this.need++;
    }
    return 0;
  }
}

/** move_ptes() and move_huge_pmd() as pmd_entry() and pte_entry(). */
@unmanaged class MoveWalk extends MmWalk {
  delta: u64;
  /** The source address where the destination's PMD changes (the end when it does not). */
  split: u64;
  /** The destination PTE tables before and after `split`. */
  dstTable: u32;
  dstTable2: u32;

  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    const d = addr + this.delta;
    if (isTableEntry(pmd)) {
      // alloc_new_pmd() + pte_alloc() for each destination PMD this source PMD lands in
      const dEnd = next + this.delta;
      const b = pmd_addr_end(d, dEnd);
      this.split = b - this.delta;
      this.dstTable = dstPteTable(this.ctx, this.mm, d);
      if (b < dEnd) this.dstTable2 = dstPteTable(this.ctx, this.mm, b);
      // the count reserved every table
      assert(this.dstTable != 0 && (b >= dEnd || this.dstTable2 != 0));
      return 0;
    }
    // move_huge_pmd(): only a whole, aligned leaf moves as one, and only into a none PMD
    // (Linux splits the leaf otherwise; here the caller must split it first)
    if (pmd_whole(addr, next) && (d & (PMD_SIZE - 1)) == 0) {
      const dp = walk_alloc_pmdp(this.ctx, this.mm, d);
      if (dp != 0 && pte_none(entryLoad(dp))) {
        entryStore(dp, atomic.xchg<u64>(pmdp, 0));
        this.action = ACTION_CONTINUE;
        return 0;
      }
    }
    pushRecord(this.ctx, REC_PMD_PARTIAL, <u32>((addr - this.base) >> 12), <u32>pte_pfn(pmd), <u32>pmd);
    this.next = addr;
    return WALK_STOP;
  }

  // @ts-ignore: decorator
  @inline pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    if (pte_none(pte)) return 0;
    const e = atomic.xchg<u64>(ptep, 0);
    const d = addr + this.delta;
    const table = addr < this.split ? this.dstTable : this.dstTable2;
    if (e != 0) entryStore(table + (pteIndex(d) << 3), e);
    return 0;
  }
}

/**
 * move_page_tables() / move_ptes(): move every entry of [oldStart, oldStart + len) to newStart,
 * as mremap() does. Entries move as they are — present pages keep their map counts, references
 * and PageAnonExclusive; the rmap finds them through the new VMA (same anon_vma, same pgoff).
 * The destination must be empty. Reserves its tables first: -ENOMEM changes nothing.
 * A PMD leaf moves whole when both ranges are PMD-aligned around it and the destination PMD is
 * none; otherwise the call stops with a PMD_PARTIAL record (split first). Returns the number of
 * records or -errno.
 */
export function move_page_tables(ctx: u32, mm: u32, oldStart: f64, newStart: f64, len: f64): i32 {
  let bad = begin_range_op(ctx, mm, oldStart, oldStart + len);
  if (bad == 0) bad = check_range(newStart, newStart + len);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const from = <u64>oldStart;
  const to = <u64>newStart;
  const n = <u64>len;
  if (from < to + n && to < from + n) return -EINVAL;
  const count = walk_of<MoveCountWalk>(ctx, mm, from, 0);
  count.delta = to - from;
  count.lastU = <u64>-1;
  count.lastG = <u64>-1;
  count.need = 0;
  walk_page_range<MoveCountWalk>(count, from, from + n);
  if (!pt_reserve(ctx, count.need)) return -ENOMEM;
  const w = walk_of<MoveWalk>(ctx, mm, from, 0);
  w.delta = to - from;
  const stopped = walk_page_range<MoveWalk>(w, from, from + n) == WALK_STOP;
  pt_unreserve(ctx);
  C.next = stopped ? <f64>w.next : oldStart + len;
  return <i32>C.nrRecords;
}
