/**
 * mprotect() (mm/mprotect.c do_mprotect_pkey(), mprotect_fixup(), change_protection()).
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { calc_vm_prot_bits, hex, VM_READ, VM_WRITE, VM_EXEC, VM_MAYWRITE, VM_SHARED, VM_SOFTDIRTY } from "./vma.js";
import { checkRange, splitAround, mergeNeighbours } from "./mmap.js";
import { PROT_READ, PROT_WRITE, PROT_EXEC, PAGE_SIZE } from "./uapi.js";

/**
 * Changes the protection of [addr, addr + length). The range must be mapped without holes
 * (ENOMEM otherwise — Linux changes the VMAs before the hole and then fails; cowsim fails
 * first, changing nothing). With the 6.2 rule (mprotectWriteUpgrade) exclusive anonymous pages
 * become writable at once; otherwise the next write faults and do_wp_page() decides.
 */
export function do_mprotect(k: MmKernel, p: MmProcess, addr: number, length: number, prot: number): void {
  const len = checkRange("mprotect", addr, length);
  if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) {
    throw new CowsimError("EINVAL", `mprotect: prot ${prot} has bits other than PROT_READ | PROT_WRITE | PROT_EXEC`);
  }
  const end = addr + len;
  if (!p.vmas.covers(addr, end)) {
    throw new CowsimError("ENOMEM", `mprotect: ${hex(addr)}-${hex(end)} is not entirely mapped in pid ${p.pid}`);
  }
  const newBits = calc_vm_prot_bits(prot);
  for (const v of p.vmas.overlapping(addr, end)) {
    if ((newBits & VM_WRITE) && !(v.flags & VM_MAYWRITE)) {
      throw new CowsimError("EACCES", `mprotect: ${v.describe()} may not be made writable`);
    }
  }
  const splits = (p.vmas.lookup(addr)!.start < addr ? 1 : 0) + (p.vmas.lookup(end - 1)!.end > end ? 1 : 0);
  if (p.vmas.count + splits > k.maxMapCount) {
    throw new CowsimError("ENOMEM", `mprotect: splitting would exceed vm.max_map_count (${k.maxMapCount})`);
  }
  splitAround(k, p, addr, end);
  let upgraded = 0;
  for (const v of p.vmas.overlapping(addr, end)) {
    v.flags = (v.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | newBits;
    // vma_wants_manual_pte_write_upgrade(): private writable mappings, under the 6.2 rule
    const tryWritable = k.strategy.mprotectWriteUpgrade && !(v.flags & VM_SHARED) && (v.flags & VM_WRITE) !== 0;
    const cp = (tryWritable ? C.MM_CP_TRY_CHANGE_WRITABLE : 0) | (v.flags & VM_WRITE ? C.CP_VM_WRITE : 0) |
      (v.flags & VM_SHARED ? C.CP_VM_SHARED : 0) | (v.flags & VM_SOFTDIRTY ? 0 : C.CP_SOFT_DIRTY_TRACKING);
    const { records } = k.core.changeProtection(p.mm, v.start, v.end, v.pageProt, cp);
    if (records.length) throw new Error("cowsim: mprotect of part of a PMD-mapped THP needs a split (not modelled yet)");
    if (tryWritable) upgraded++;
  }
  for (const v of p.vmas.overlapping(addr, end)) mergeNeighbours(k, p, v);
  p.vmas.invalidate();
  if (k.trace.points.mprotect_fixup.listening) k.trace.points.mprotect_fixup.emit({ pid: p.pid, start: addr, end, prot, upgraded });
}

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
      k.core.changeProtection(p.mm, v.start, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY);
      continue;
    }
    // one call per run of pages between the pinned ones
    let from = v.start;
    for (const r of k.core.pagemap(p.mm, v.start, v.end)) {
      if (!isPinnedPte(k, r.kind, r.pfn, r.aux)) continue;
      if (r.address > from) k.core.changeProtection(p.mm, from, r.address, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY);
      from = r.address + PAGE_SIZE;
      skipped++;
    }
    if (from < v.end) k.core.changeProtection(p.mm, from, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY);
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
