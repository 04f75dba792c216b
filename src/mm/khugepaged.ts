/**
 * Collapse into PMD-mapped THPs (mm/khugepaged.c): MADV_COLLAPSE (madvise_collapse()) and a pass
 * of khugepaged (khugepaged_scan_mm_slot()), both through the core's hpage_collapse_scan_pmd() +
 * collapse_huge_page(). MADV_COLLAPSE ignores the sysfs policy and khugepaged's limits; khugepaged
 * keeps to both: /sys/kernel/mm/transparent_hugepage/khugepaged/max_ptes_none (511),
 * max_ptes_swap (64) and max_ptes_shared (256), their defaults, and wants young pages.
 */
import { C } from "../core/index.js";
import { CowsimError, type ErrnoName } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_WRITE, hex } from "./vma.js";
import { Stat } from "./stats.js";
import { anon_vma_prepare } from "./rmap.js";
import { faultIn } from "./memory.js";
import { thp_vma_allowable_orders, PMD_ORDER, PMD_SIZE, TVA_ENFORCE_SYSFS } from "./huge_memory.js";

/** khugepaged's limits: the defaults of khugepaged_max_ptes_none/swap/shared (HPAGE_PMD_NR - 1, / 8, / 2). */
export const KHUGEPAGED_MAX_PTES_NONE = 511;
export const KHUGEPAGED_MAX_PTES_SWAP = 64;
export const KHUGEPAGED_MAX_PTES_SHARED = 256;

const SCAN_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(C).filter(([n]) => n.startsWith("SCAN_")).map(([n, v]) => [v as number, n]),
);

/**
 * hpage_collapse_scan_pmd() for the 2 MiB at `haddr`: the SCAN_* result. Swap entries within
 * the limits are swapped in first (__collapse_huge_page_swapin(), read faults), then the scan
 * runs again.
 */
function collapse(k: MmKernel, p: MmProcess, vma: Vma, haddr: number, khugepaged: boolean): number {
  const ops = k.ops;
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  const flags = (khugepaged ? C.COLLAPSE_KHUGEPAGED : 0) | (vma.flags & VM_WRITE ? C.COLLAPSE_VM_WRITE : 0);
  for (let tries = 0; tries < 2; tries++) {
    const r = ops.collapseHugePage(p.mm, haddr, vma.anonVma!.id, vma.index(haddr), vma.pageProt, flags,
      KHUGEPAGED_MAX_PTES_NONE, KHUGEPAGED_MAX_PTES_SWAP, KHUGEPAGED_MAX_PTES_SHARED);
    if (r === C.SCAN_SUCCEED) k.stats.inc(Stat.thp_collapse_alloc);
    if (r === C.SCAN_ALLOC_HUGE_PAGE_FAIL) k.stats.inc(Stat.thp_collapse_alloc_failed);
    if (r !== C.SCAN_NEEDS_SWAPIN) {
      if (k.trace.points.collapse_huge_page.listening) {
        k.trace.points.collapse_huge_page.emit({ pid: p.pid, address: haddr, result: SCAN_NAMES[r] ?? String(r), khugepaged });
      }
      return r;
    }
    for (const e of k.core.pagemap(p.mm, haddr, haddr + PMD_SIZE)) {
      if ((e.kind & 0xff) === C.PTE_KIND_SWAP) faultIn(k, p, e.address, false);
    }
  }
  return C.SCAN_FAIL;
}

/** madvise_collapse_errno() */
function collapseErrno(r: number): ErrnoName {
  switch (r) {
    case C.SCAN_ALLOC_HUGE_PAGE_FAIL: return "ENOMEM";
    case C.SCAN_EXCEED_NONE_PTE: return "EBUSY";
    case C.SCAN_PAGE_COUNT: case C.SCAN_PAGE_LOCK: case C.SCAN_PAGE_LRU: return "EAGAIN";
    default: return "EINVAL";
  }
}

/** The results madvise_collapse() goes on after (its whitelist); others end the call. */
const CONTINUES = new Set<number>([
  C.SCAN_PMD_NULL, C.SCAN_PTE_NON_PRESENT, C.SCAN_PTE_UFFD_WP, C.SCAN_PAGE_RO, C.SCAN_LACK_REFERENCED_PAGE,
  C.SCAN_PAGE_NULL, C.SCAN_PAGE_COUNT, C.SCAN_PAGE_LOCK, C.SCAN_PAGE_LRU,
]);

/**
 * madvise_collapse(): every aligned 2 MiB inside [start, end) of `vma` becomes a PMD-mapped THP
 * (one mapped already counts). The VMA must allow a PMD-sized THP ignoring sysfs
 * (thp_vma_allowable_order() without TVA_ENFORCE_SYSFS: VM_NOHUGEPAGE refuses). The per-CPU
 * LRU batches are drained first (lru_add_drain_all()). A 2 MiB that cannot collapse is skipped
 * when its reason is on the kernel's list of temporary ones, ends the call otherwise; then the
 * call fails with the errno of the last failure (madvise_collapse_errno(): ENOMEM, EBUSY,
 * EAGAIN, EINVAL), keeping what it collapsed.
 */
export function madvise_collapse(k: MmKernel, p: MmProcess, vma: Vma, start: number, end: number): void {
  if (thp_vma_allowable_orders(k.thp, vma, vma.flags, 0, 1 << PMD_ORDER) === 0) {
    throw new CowsimError("EINVAL", `madvise(MADV_COLLAPSE): ${vma.describe()} may not have PMD-sized THPs`);
  }
  k.ops.lruAddDrain();
  const hstart = Math.ceil(start / PMD_SIZE) * PMD_SIZE;
  const hend = Math.floor(end / PMD_SIZE) * PMD_SIZE;
  let thps = 0;
  let lastFail: number = C.SCAN_FAIL;
  for (let a = hstart; a < hend; a += PMD_SIZE) {
    const r = collapse(k, p, vma, a, false);
    if (r === C.SCAN_SUCCEED || r === C.SCAN_PMD_MAPPED) { thps++; continue; }
    lastFail = r;
    if (!CONTINUES.has(r)) break;
  }
  if (thps !== (hend - hstart) / PMD_SIZE) {
    throw new CowsimError(collapseErrno(lastFail), `madvise(MADV_COLLAPSE): ${hex(hstart)}-${hex(hend)} of pid ${p.pid}: ${SCAN_NAMES[lastFail] ?? lastFail}`);
  }
}

/**
 * One full pass of khugepaged over every process (khugepaged_do_scan() until every mm_slot was
 * scanned once): each aligned 2 MiB of a VMA the sysfs policy allows PMD-sized THPs
 * (thp_vma_allowable_order() with TVA_ENFORCE_SYSFS) is collapsed when khugepaged's rules
 * allow. Returns the THPs it made.
 */
export function khugepaged_scan(k: MmKernel): number {
  let made = 0;
  for (const p of k.processes.values()) {
    for (const vma of [...p.vmas]) {
      if (!vma.isPrivateAnon || thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_ENFORCE_SYSFS, 1 << PMD_ORDER) === 0) continue;
      for (let a = Math.ceil(vma.start / PMD_SIZE) * PMD_SIZE; a + PMD_SIZE <= vma.end; a += PMD_SIZE) {
        if (collapse(k, p, vma, a, true) === C.SCAN_SUCCEED) made++;
      }
    }
  }
  return made;
}
