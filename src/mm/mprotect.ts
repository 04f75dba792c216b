/**
 * mprotect() (mm/mprotect.c do_mprotect_pkey(), mprotect_fixup(), change_protection()).
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { calc_vm_prot_bits, hex, VM_READ, VM_WRITE, VM_EXEC, VM_MAYWRITE, VM_SHARED, VM_SOFTDIRTY, VM_UFFD_WP } from "./vma.js";
import { checkRange, splitAround, mergeNeighbours } from "./mmap.js";
import { split_huge_pmd, PMD_SIZE } from "./huge_memory.js";
import { PROT_READ, PROT_WRITE, PROT_EXEC, PAGE_SIZE } from "./uapi.js";
import { pmdStart } from "./align.js";

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
      (v.flags & VM_SHARED ? C.CP_VM_SHARED : 0) | (v.flags & VM_SOFTDIRTY ? 0 : C.CP_SOFT_DIRTY_TRACKING) |
      (v.flags & VM_UFFD_WP ? C.CP_VMA_UFFD_WP : 0) |
      ((k.strategy.migrationReadExclusive ?? k.strategy.tracksAnonExclusive) ? 0 : C.CP_MIGRATION_READ_ONLY);
    const { records } = k.core.changeProtection(p.mm, v.start, v.end, v.pageProt, cp);
    for (const r of records) {
      // change_pmd_range(): a PMD leaf the range covers in part is split, then its PTEs change
      split_huge_pmd(k, p, v, r.address, "change_pmd_range(): partial");
      const to = Math.min(v.end, pmdStart(r.address) + PMD_SIZE);
      k.core.changeProtection(p.mm, r.address, to, v.pageProt, cp);
    }
    if (tryWritable) upgraded++;
  }
  for (const v of p.vmas.overlapping(addr, end)) mergeNeighbours(k, p, v);
  p.vmas.invalidate();
  if (k.trace.points.mprotect_fixup.listening) k.trace.points.mprotect_fixup.emit({ pid: p.pid, start: addr, end, prot, upgraded });
}
