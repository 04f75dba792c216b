/**
 * /proc/pid files of the memory map (fs/proc/task_mmu.c): clear_refs. The same kernel file as
 * assembly/task_mmu.ts, which holds pagemap_read().
 */
import { C } from "../core/index.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { VM_SOFTDIRTY } from "./vma.js";
import { PAGE_SIZE } from "./uapi.js";

/**
 * clear_refs_write() with "4" (fs/proc/task_mmu.c clear_soft_dirty()): soft-dirty tracking
 * starts over — every VMA loses VM_SOFTDIRTY, every PTE its soft-dirty bit and its write
 * permission, so the next write to each page faults. Since 5.11 (9348b73c2e1b) a writable PTE
 * of a possibly pinned page in a COW mapping is left as it is (pte_is_pinned()): write-protecting
 * it would only make the next write fault copy the page away from its pin.
 */
export function clear_soft_dirty(k: MmKernel, p: MmProcess): void {
  const skipPinned = k.strategy.clearRefsSkipsPinned && (k.ops.mmFlags(p.mm) & C.MMF_HAS_PINNED) !== 0;
  let skipped = 0;
  for (const v of p.vmas) {
    v.flags &= ~VM_SOFTDIRTY;
    if (!skipPinned || !v.isCow) {
      k.core.changeProtection(p.mm, v.start, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
      continue;
    }
    // one call per run of pages between the pinned ones
    let from = v.start;
    for (const r of k.core.pagemap(p.mm, v.start, v.end)) {
      if (!isPinnedPte(k, r.kind, r.pfn, r.aux)) continue;
      if (r.address > from) k.core.changeProtection(p.mm, from, r.address, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
      from = r.address + PAGE_SIZE;
      skipped++;
    }
    if (from < v.end) k.core.changeProtection(p.mm, from, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
  }
  if (k.trace.points.clear_refs.listening) k.trace.points.clear_refs.emit({ pid: p.pid, skipped });
}

const PTE_WRITE = 2 ** C._PAGE_BIT_RW;
const PTE_SPECIAL = 2 ** C._PAGE_BIT_SPECIAL;

/** pte_is_pinned(): a writable present PTE of a normal folio that folio_maybe_dma_pinned(). */
function isPinnedPte(k: MmKernel, kind: number, pfn: number, aux: number): boolean {
  if ((kind & 0xff) !== C.PTE_KIND_PRESENT || !(aux & PTE_WRITE) || aux & PTE_SPECIAL) return false;
  return k.ops.folioMaybeDmaPinned(k.ops.pageFolio(pfn));
}
