/**
 * mremap() (mm/mremap.c): shrink, grow in place, or move — with MREMAP_MAYMOVE, MREMAP_FIXED and
 * MREMAP_DONTUNMAP. A moved range keeps its pages exactly as they were: move_page_tables()
 * moves the entries, so map counts, references and PageAnonExclusive do not change, and the
 * new VMA keeps the old vm_pgoff and anon_vma, which is how the rmap still finds the pages.
 *
 * The order of the checks is the kernel's (SYSCALL_DEFINE5(mremap), mremap_to(),
 * vma_to_resize()), so each bad call fails with the errno Linux gives it; unlike Linux, every
 * check runs before anything is unmapped, so a failed call changes nothing.
 */
import { mremap_userfaultfd } from "./userfaultfd.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { Vma, VM_SHARED, hex } from "./vma.js";
import { anon_vma_dup_for_split, unlink_anon_vmas } from "./rmap.js";
import { do_munmap, unmapRange, mergeNeighbours, pageAligned, get_unmapped_area, MMAP_MIN_ADDR } from "./mmap.js";
import { PAGE_SIZE, TASK_SIZE, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP } from "./uapi.js";
import { split_huge_pmd, PMD_SIZE } from "./huge_memory.js";

const einval = (msg: string) => new CowsimError("EINVAL", `mremap: ${msg}`);
const pageAlign = (n: number) => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/** SYSCALL_DEFINE5(mremap): returns the (possibly new) address. */
export function do_mremap(k: MmKernel, p: MmProcess, oldAddr: number, oldLength: number, newLength: number,
  flags: number, newAddr?: number): number {
  if (!Number.isInteger(flags) || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0) {
    throw einval(`unknown flags 0x${(flags >>> 0).toString(16)}`);
  }
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) throw einval("MREMAP_FIXED needs MREMAP_MAYMOVE");
  // MREMAP_DONTUNMAP is always a move, and never a resize
  if ((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) || oldLength !== newLength)) {
    throw einval("MREMAP_DONTUNMAP needs MREMAP_MAYMOVE and keeps the size (old length == new length)");
  }
  if (!Number.isSafeInteger(oldAddr) || oldAddr < 0 || !pageAligned(oldAddr)) {
    throw einval(`address ${hex(oldAddr)} is not page-aligned`);
  }
  if (!Number.isSafeInteger(oldLength) || oldLength <= 0) throw einval(`old length ${oldLength}`);
  if (!Number.isSafeInteger(newLength) || newLength <= 0) throw einval(`new length ${newLength}`);
  const oldLen = pageAlign(oldLength);
  const newLen = pageAlign(newLength);
  const vma = p.vmas.lookup(oldAddr);
  if (!vma) throw new CowsimError("EFAULT", `mremap: no VMA at ${hex(oldAddr)} in pid ${p.pid}`);
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) return mremap_to(k, p, vma, oldAddr, oldLen, newLen, flags, newAddr ?? 0);

  // always allow a shrinking remap: that just unmaps the tail (do_vmi_munmap(), holes and
  // other VMAs included)
  if (oldLen >= newLen) {
    if (oldLen > newLen) {
      do_munmap(k, p, oldAddr + newLen, oldLen - newLen);
      if (k.trace.points.mremap.listening) k.trace.points.mremap.emit({ pid: p.pid, addr: oldAddr, oldLen, newLen });
    }
    return oldAddr;
  }
  vmaToResize(vma, oldAddr, oldLen);
  // grow in place when the VMA ends here and the space above is free (vma_expandable())
  const end = oldAddr + oldLen;
  if (end === vma.end && end + (newLen - oldLen) <= TASK_SIZE &&
      p.vmas.overlapping(end, oldAddr + newLen).length === 0) {
    vma.end = oldAddr + newLen;
    p.vmas.invalidate();
    mergeNeighbours(k, p, vma);
    if (k.trace.points.mremap.listening) k.trace.points.mremap.emit({ pid: p.pid, addr: oldAddr, oldLen, newLen });
    return oldAddr;
  }
  if (!(flags & MREMAP_MAYMOVE)) {
    throw new CowsimError("ENOMEM", `mremap: cannot grow ${hex(oldAddr)} in place and MREMAP_MAYMOVE is not set`);
  }
  checkMapCount(k, p);
  return moveVma(k, p, vma, oldAddr, oldLen, newLen, get_unmapped_area(p, 0, newLen, "mremap"), flags);
}

/** vma_to_resize(): the range must lie within one VMA. */
function vmaToResize(vma: Vma, addr: number, oldLen: number): void {
  if (oldLen > vma.end - addr) {
    throw new CowsimError("EFAULT", `mremap: ${hex(addr)}-${hex(addr + oldLen)} crosses the end of ${vma.describe()}`);
  }
}

/**
 * move_vma() needs to stay 4 maps below vm.max_map_count; the worst case splits both the
 * source and the destination (mremap_to()'s "map_count + 2 >= max_map_count - 3").
 */
function checkMapCount(k: MmKernel, p: MmProcess): void {
  if (p.vmas.count + 2 >= k.maxMapCount - 3) {
    throw new CowsimError("ENOMEM", `mremap: pid ${p.pid} is too close to vm.max_map_count (${k.maxMapCount})`);
  }
}

/**
 * mremap_to(): a move to `newAddr` (MREMAP_FIXED) or, with MREMAP_DONTUNMAP alone, to where
 * get_unmapped_area() finds room, `newAddr` being its hint. The old and new ranges may not
 * overlap even when `newAddr` is only a hint.
 */
function mremap_to(k: MmKernel, p: MmProcess, vma: Vma, addr: number, oldLen: number, newLen: number, flags: number,
  newAddr: number): number {
  if (!Number.isSafeInteger(newAddr) || newAddr < 0 || !pageAligned(newAddr)) {
    throw einval(`new address ${hex(newAddr)} is not page-aligned`);
  }
  if (newLen > TASK_SIZE || newAddr > TASK_SIZE - newLen) throw einval(`new range ${hex(newAddr)}+${hex(newLen)} is outside user space`);
  if (addr + oldLen > newAddr && newAddr + newLen > addr) throw einval("the old and new ranges overlap");
  checkMapCount(k, p);
  const fixed = (flags & MREMAP_FIXED) !== 0;
  if (fixed && newAddr < MMAP_MIN_ADDR) {
    // get_unmapped_area() → security_mmap_addr()
    throw new CowsimError("EPERM", `mremap: ${hex(newAddr)} is below mmap_min_addr`);
  }
  // a shrinking MREMAP_FIXED move drops the tail first; the rest must lie within one VMA
  const moved = Math.min(oldLen, newLen);
  vmaToResize(vma, addr, moved);
  const to = fixed ? newAddr : get_unmapped_area(p, newAddr, newLen, "mremap");
  if (fixed) unmapRange(k, p, to, to + newLen);
  if (oldLen > newLen) unmapRange(k, p, addr + newLen, addr + oldLen);
  // the unmaps may have split the source VMA: take the part that holds the range now
  return moveVma(k, p, p.vmas.lookup(addr)!, addr, moved, newLen, to, flags);
}

/**
 * move_vma(): a new VMA at `to`, the page-table entries of [from, from + oldLen) moved there,
 * the old range unmapped — or, with MREMAP_DONTUNMAP, left mapped and empty: when the move took
 * the whole old VMA, its anon_vma links go (unlink_anon_vmas()) and it is unfaulted again
 * (vm_pgoff = vm_start >> PAGE_SHIFT), so its next fault starts a new anon_vma.
 */
function moveVma(k: MmKernel, p: MmProcess, vma: Vma, from: number, oldLen: number, newLen: number, to: number,
  flags: number): number {
  // move_huge_pmd() moves only a whole PMD leaf to an aligned destination; split the others
  for (let a = from - (from % PMD_SIZE); a < from + oldLen; a += PMD_SIZE) {
    const whole = a >= from && a + PMD_SIZE <= from + oldLen && (to - from) % PMD_SIZE === 0;
    if (!whole && k.ops.hugePmdAt(p.mm, a) !== 0) split_huge_pmd(k, p, vma, a, "move_page_tables(): partial");
  }
  const recs = k.ops.movePageTables(p.mm, from, to, oldLen);
  if (recs === -12) throw new CowsimError("ENOMEM", `mremap: no page tables left to move ${hex(from)}`);
  if (recs < 0) throw new Error(`cowsim: move_page_tables failed with ${recs}`);
  if (recs > 0) throw new Error("cowsim: move_page_tables met a PMD leaf the split above left behind");

  const nv = new Vma(to, to + newLen, vma.flags, vma.pgoff + (from - vma.start) / PAGE_SIZE, vma.shmem);
  if (vma.shmem) k.shmem.get(vma.shmem);
  anon_vma_dup_for_split(nv, vma, p.mm);
  nv.uffdCtx = vma.uffdCtx;
  p.vmas.insert(nv);
  mremap_userfaultfd(nv, from, to, oldLen);
  if (k.trace.points.move_vma.listening) {
    k.trace.points.move_vma.emit({ pid: p.pid, from, to, len: oldLen, dontunmap: (flags & MREMAP_DONTUNMAP) !== 0, private: !(vma.flags & VM_SHARED) });
  }
  if (flags & MREMAP_DONTUNMAP) {
    if (vma.start === from && vma.end === from + oldLen) {
      unlink_anon_vmas(k.anonVmas, vma);
      if (!vma.shmem) vma.pgoff = vma.start / PAGE_SIZE;
    }
  } else {
    unmapRange(k, p, from, from + oldLen);
  }
  mergeNeighbours(k, p, nv);
  return to;
}
