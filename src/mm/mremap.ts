/**
 * mremap() (mm/mremap.c): shrink, grow in place, or move — with MREMAP_MAYMOVE, MREMAP_FIXED and
 * MREMAP_DONTUNMAP. A moved range keeps its pages exactly as they were: move_page_tables()
 * moves the entries, so map counts, references and PageAnonExclusive do not change, and the
 * new VMA keeps the old vm_pgoff and anon_vma, which is how the rmap still finds the pages.
 */
import { CowsimError } from "../errno.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { Vma, hex, VM_SHARED } from "./vma.js";
import { anon_vma_dup_for_split } from "./rmap.js";
import { checkRange, unmapRange, mergeNeighbours, pageAligned, get_unmapped_area, MMAP_MIN_ADDR } from "./mmap.js";
import { PAGE_SIZE, TASK_SIZE, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP } from "./uapi.js";

export function do_mremap(k: Kernel, p: Process, oldAddr: number, oldLength: number, newLength: number,
  flags: number, newAddr?: number): number {
  if (!Number.isInteger(flags) || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0) {
    throw new CowsimError("EINVAL", `mremap: unknown flags 0x${(flags >>> 0).toString(16)}`);
  }
  if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && !(flags & MREMAP_MAYMOVE)) {
    throw new CowsimError("EINVAL", "mremap: MREMAP_FIXED and MREMAP_DONTUNMAP need MREMAP_MAYMOVE");
  }
  const oldLen = checkRange("mremap", oldAddr, oldLength);
  if (!Number.isSafeInteger(newLength) || newLength <= 0) throw new CowsimError("EINVAL", `mremap: new length ${newLength}`);
  const newLen = Math.ceil(newLength / PAGE_SIZE) * PAGE_SIZE;
  if ((flags & MREMAP_DONTUNMAP) && oldLen !== newLen) {
    throw new CowsimError("EINVAL", "mremap: MREMAP_DONTUNMAP keeps the size");
  }
  const vma = p.vmas.lookup(oldAddr);
  if (!vma || oldAddr + oldLen > vma.end) {
    throw new CowsimError("EFAULT", `mremap: ${hex(oldAddr)}-${hex(oldAddr + oldLen)} is not one mapped VMA in pid ${p.pid}`);
  }
  if ((flags & MREMAP_DONTUNMAP) && (vma.flags & VM_SHARED)) {
    throw new CowsimError("EINVAL", "mremap: MREMAP_DONTUNMAP works on private anonymous mappings");
  }
  if (flags & MREMAP_FIXED) {
    const to = newAddr ?? NaN;
    if (!pageAligned(to)) throw new CowsimError("EINVAL", `mremap: new address ${String(newAddr)} is not page-aligned`);
    if (to < MMAP_MIN_ADDR || to + newLen > TASK_SIZE) throw new CowsimError("EINVAL", "mremap: new range is outside user space");
    if (to < oldAddr + oldLen && oldAddr < to + newLen) throw new CowsimError("EINVAL", "mremap: old and new ranges overlap");
    return moveVma(k, p, vma, oldAddr, oldLen, newLen, to, flags);
  }
  if (newLen <= oldLen) {
    if (newLen < oldLen) unmapRange(k, p, oldAddr + newLen, oldAddr + oldLen);
    k.journal?.add("mremap", () => `pid ${p.pid} shrinks ${hex(oldAddr)} from ${hex(oldLen)} to ${hex(newLen)} bytes`);
    return oldAddr;
  }
  // grow in place when the VMA ends here and the space above is free
  const end = oldAddr + oldLen;
  if (end === vma.end && end + (newLen - oldLen) <= TASK_SIZE &&
      p.vmas.overlapping(end, oldAddr + newLen).length === 0) {
    vma.end = oldAddr + newLen;
    p.vmas.invalidate();
    mergeNeighbours(k, p, vma);
    k.journal?.add("vma_expand", () => `pid ${p.pid} grows ${hex(oldAddr)} in place to ${hex(newLen)} bytes`);
    return oldAddr;
  }
  if (!(flags & MREMAP_MAYMOVE)) {
    throw new CowsimError("ENOMEM", `mremap: cannot grow ${hex(oldAddr)} in place and MREMAP_MAYMOVE is not set`);
  }
  return moveVma(k, p, vma, oldAddr, oldLen, newLen, get_unmapped_area(p, 0, newLen, "mremap"), flags);
}


/**
 * move_vma(): a new VMA at `to`, the page-table entries moved there, the old range unmapped
 * (or, with MREMAP_DONTUNMAP, left mapped and empty).
 */
function moveVma(k: Kernel, p: Process, source: Vma, from: number, oldLen: number, newLen: number, to: number,
  flags: number): number {
  let vma = source;
  const moved = Math.min(oldLen, newLen);
  if (p.vmas.count + 3 > k.maxMapCount) throw new CowsimError("ENOMEM", "mremap: would exceed vm.max_map_count");
  if (flags & MREMAP_FIXED) {
    unmapRange(k, p, to, to + newLen);
    // the unmap may have split the source VMA: take the part that holds the range now
    vma = p.vmas.lookup(from)!;
  }
  const recs = k.x.move_page_tables(k.ctx, p.mm, from, to, moved);
  if (recs === -12) throw new CowsimError("ENOMEM", `mremap: no page tables left to move ${hex(from)}`);
  if (recs < 0) throw new Error(`cowsim: move_page_tables failed with ${recs}`);
  if (recs > 0) throw new Error("cowsim: mremap of part of a PMD-mapped THP needs a split (not modelled yet)");

  const nv = new Vma(to, to + newLen, vma.flags, vma.pgoff + (from - vma.start) / PAGE_SIZE, vma.shmem);
  if (vma.shmem) k.shmem.get(vma.shmem);
  anon_vma_dup_for_split(nv, vma, p.mm);
  p.vmas.insert(nv);
  k.oracle?.onMove(p.pid, from / PAGE_SIZE, to / PAGE_SIZE, moved / PAGE_SIZE);
  // the old range goes — what was not moved (a shrinking move) is zapped with it; with
  // MREMAP_DONTUNMAP it stays mapped, empty, and faults in zero pages
  if (!(flags & MREMAP_DONTUNMAP)) unmapRange(k, p, from, from + oldLen);
  mergeNeighbours(k, p, nv);
  k.journal?.add("move_vma", () => `pid ${p.pid} moves ${hex(from)}+${hex(moved)} to ${hex(to)}: pages keep their state`);
  return to;
}
