// fs/proc/task_mmu.c: pagemap_read() — one record per non-none entry of a range, as a walk of
// pagewalk.ts (pagemap_pmd_range() is its pmd_entry, the PTE loop its pte_entry).

import { ctxOf, ctxCapacity, pushRecord, PAGE_SIZE } from "./layout";
import { pte_none, pte_present, pte_pfn, pmd_leaf, swp_offset, pte_kind, pte_marker_get, PTE_KIND_MARKER } from "./pte";
import { isTableEntry, pteIndex } from "./pgtable";
import { MmWalk, walk_of, walk_page_range, begin_range_op, ACTION_CONTINUE, WALK_STOP, WALK_RECORDS } from "./pagewalk";

/** pagemap record flag: the entry is (part of) a PMD leaf. */
export const PAGEMAP_HUGE: u32 = 0x100;

@unmanaged class PagemapWalk extends MmWalk {
  cap: u32;

  /** A PMD leaf or PMD swap entry: one record per 4 KiB page it maps in the range. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (isTableEntry(pmd)) return 0;
    this.action = ACTION_CONTINUE;
    const ctx = this.ctx;
    const leaf = pmd_leaf(pmd);
    const kind = pte_kind(pmd, true) | PAGEMAP_HUGE;
    for (let a = addr; a < next; a += PAGE_SIZE) {
      if (ctxOf(ctx).nrRecords >= this.cap) { this.next = a; return WALK_STOP; }
      const pfn = leaf ? <u32>pte_pfn(pmd) + pteIndex(a) : <u32>swp_offset(pmd);
      pushRecord(ctx, kind, <u32>((a - this.base) >> 12), pfn, <u32>pmd);
    }
    return 0;
  }

  // @ts-ignore: decorator
  @inline pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    if (pte_none(pte)) return 0;
    const ctx = this.ctx;
    if (ctxOf(ctx).nrRecords >= this.cap) { this.next = addr; return WALK_STOP; }
    const kind = pte_kind(pte, true);
    const pfn = pte_present(pte) ? <u32>pte_pfn(pte)
      : kind == PTE_KIND_MARKER ? pte_marker_get(pte) : <u32>swp_offset(pte);
    pushRecord(ctx, kind, <u32>((addr - this.base) >> 12), pfn, <u32>pte);
    return 0;
  }
}

/**
 * pagemap_read(): one record per non-none entry of [start, end), for invariant sweeps, the
 * oracle and tests: [PTE_KIND | PAGEMAP_* bits, page offset, pfn (swap slot for swap entries,
 * marker bits for markers), low 32 bits of the entry]. A PMD leaf yields one record per 4 KiB
 * page with PAGEMAP_HUGE. Resumable through ctx.next like the other range operations.
 */
export function pagemap_read(ctx: u32, mm: u32, start: f64, end: f64): i32 {
  const bad = begin_range_op(ctx, mm, start, end);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const w = walk_of<PagemapWalk>(ctx, mm, <u64>start, WALK_RECORDS);
  w.cap = ctxCapacity();
  const stopped = walk_page_range<PagemapWalk>(w, <u64>start, <u64>end) == WALK_STOP;
  C.next = stopped ? <f64>w.next : end;
  return <i32>C.nrRecords;
}
