/**
 * fork() (kernel/fork.c dup_mmap(), mm/memory.c copy_page_range()): the child gets a copy of
 * every VMA but VM_DONTCOPY ones, joins the parent's anon_vmas, and shares its anonymous pages
 * read-only — except those the strategy wants copied at once because they may be pinned.
 * VM_WIPEONFORK VMAs arrive empty. Everything fork needs (an mm, page tables, frames for early
 * copies) is counted and reserved first, so ENOMEM leaves the parent as it was.
 */
import { dup_userfaultfd, dup_userfaultfd_complete, type UserfaultfdCtx } from "./userfaultfd.js";
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import { Stat } from "./stats.js";
import type { MmProcess } from "./process.js";
import { Vma, VM_DONTCOPY, VM_WIPEONFORK, VM_SHARED, VM_UFFD_WP, VM_WRITE } from "./vma.js";
import { anon_vma_fork } from "./rmap.js";
import { exit_mmap } from "./mmap.js";
import { split_huge_pmd, PMD_SIZE } from "./huge_memory.js";
import { PAGE_SIZE } from "./uapi.js";
import { try_restore_exclusive_pte } from "./migrate_device.js";

/**
 * copy_present_ptes()' test for a page fork must not simply share: a possibly pinned exclusive
 * page of a parent with MMF_HAS_PINNED, when the strategy defers such pages.
 */
function forkMayDefer(k: MmKernel, parent: MmProcess, flags: number, pfn: number): boolean {
  const ops = k.ops;
  if (!(flags & (C.COPY_DEFER_PINNED_ANY | C.COPY_DEFER_PINNED_EXCLUSIVE))) return false;
  if (!(ops.mmFlags(parent.mm) & C.MMF_HAS_PINNED)) return false;
  if (!ops.folioMaybeDmaPinned(ops.pageFolio(pfn))) return false;
  return (flags & C.COPY_DEFER_PINNED_ANY) !== 0 || ops.PageAnonExclusive(pfn);
}

/** The core's copy_page_range() flags for the strategy's choice of pages fork hands back. */
const FORK_DEFER_FLAGS = { none: 0, pinned: C.COPY_DEFER_PINNED_ANY, "pinned-exclusive": C.COPY_DEFER_PINNED_EXCLUSIVE } as const;

/** copy_page_range() flags for one VMA under the kernel's strategy. */
function copyFlags(k: MmKernel, src: Vma, dst: Vma): number {
  return (src.isCow ? C.COPY_COW : 0) | (src.flags & VM_SHARED ? C.COPY_SHARED : 0) |
    (dst.flags & VM_UFFD_WP ? C.COPY_DST_UFFD_WP : 0) | (dst.flags & VM_WRITE ? C.COPY_VM_WRITE : 0) |
    (src.flags & VM_SHARED ? 0 : FORK_DEFER_FLAGS[k.strategy.forkDefers]);
}

/** vma_needs_copy(): only VMAs that may hold anonymous pages (or uffd-wp state) are copied. */
function needsCopy(src: Vma, dst: Vma): boolean {
  return (dst.flags & VM_UFFD_WP) !== 0 || src.anonVma !== null;
}

export function dup_mmap(k: MmKernel, parent: MmProcess): MmProcess {
  const ops = k.ops;
  k.checkProcessLimit("fork");
  // the dry run: tables and early-copy frames for every VMA, before anything changes
  let tables = 1; // the child's PGD
  let frames = 0;
  const copied = [...parent.vmas].filter((v) => !(v.flags & VM_DONTCOPY));
  for (const v of copied) {
    if (v.flags & VM_WIPEONFORK || !needsCopy(v, v)) continue;
    const need = ops.copyPageRangeCount(C.FRESH_MM, parent.mm, v.start, v.end, copyFlags(k, v, v));
    tables += need.tables;
    frames += need.frames;
  }
  // reservations only move counters, so giving them back restores every byte
  if (!ops.ptReserve(tables) || !ops.framesReserve(frames)) {
    ops.ptUnreserve();
    throw new CowsimError("ENOMEM", `fork: pid ${parent.pid} needs ${tables} page tables and ${frames} frames for early copies; the machine has fewer`);
  }
  const childMm = ops.tryMmAlloc();
  if (childMm === null) {
    ops.ptUnreserve();
    ops.framesUnreserve();
    throw new CowsimError("ENOMEM", `fork: no page table left for the child's PGD`);
  }

  const child = k.newChild(childMm, parent.pid);
  const ranges: { vpnStart: number; vpnEnd: number }[] = [];
  const forkUffds: UserfaultfdCtx[] = [];
  try {
    for (const v of copied) {
      const wipe = (v.flags & VM_WIPEONFORK) !== 0;
      const tmp = new Vma(v.start, v.end, v.flags, v.pgoff, v.shmem);
      if (v.shmem) k.shmem.get(v.shmem);
      tmp.uffdCtx = v.uffdCtx;
      dup_userfaultfd(k, child, tmp, forkUffds);
      if (!wipe) anon_vma_fork(k.anonVmas, tmp, v, childMm);
      child.vmas.insert(tmp);
      // private memory, a private file mapping's copies included, is the child's to inherit
      if (!(v.flags & VM_SHARED) && !wipe) ranges.push({ vpnStart: v.start / PAGE_SIZE, vpnEnd: v.end / PAGE_SIZE });
      if (wipe || !needsCopy(v, tmp)) continue;
      // the swap entries copied are told only to a copy_nonpresent_pte subscriber
      const flags = copyFlags(k, v, tmp) | (k.trace.points.copy_nonpresent_pte.listening ? 0 : C.COPY_NO_SWAP_RECORDS);
      // the pages the strategy would copy anyway are copied in the walk, unless someone watches each
      const early = tmp.anonVma !== null && k.forkCopyInCore() ? C.COPY_EARLY_IN_CORE : 0;
      const records = k.core.copyPageRange(childMm, parent.mm, v.start, v.end, flags | early, true, tmp.anonVma?.id ?? 0, tmp.index(v.start));
      for (const r of records) {
        resolveRecord(k, parent, child, tmp, flags, r.kind, r.address, r.pfn);
      }
    }
  } catch (e) {
    // dup_mmap()'s error path: the partial child goes as an exiting process would (mmput()).
    // The reservations make this unreachable unless they undercount; then, as in Linux, the
    // parent keeps the PTEs copy_page_range() write-protected so far.
    exit_mmap(k, child);
    dup_userfaultfd_complete(forkUffds, true);
    throw e;
  } finally {
    ops.ptUnreserve();
    ops.framesUnreserve();
  }
  k.processes.set(child.pid, child);
  k.stats.inc(Stat.forks);
  if (k.trace.points.dup_mmap.listening) k.trace.points.dup_mmap.emit({ pid: parent.pid, child: child.pid, ranges });
  dup_userfaultfd_complete(forkUffds, false);
  return child;
}

/** What fork does with an entry copy_page_range() handed back. */
function resolveRecord(k: MmKernel, parent: MmProcess, child: MmProcess, dst: Vma, flags: number,
  kind: number, addr: number, pfn: number): void {
  const ops = k.ops;
  switch (kind) {
    case C.REC_FORK_PINNED: {
      const d = k.strategy.forkPinned(ops.PageAnonExclusive(pfn));
      if (d.copy) {
        const nw = ops.tryAllocPage();
        if (nw === null) throw new Error("cowsim: fork's reserved frame was not there");
        const r = ops.forkCopyDeferredPte(child.mm, parent.mm, addr, flags, nw, dst.anonVma!.id, dst.index(addr));
        if (r < 0) throw new Error(`cowsim: fork_copy_deferred_pte failed with ${r}`);
        k.stats.inc(Stat.forkCopies);
        k.stats.inc(Stat.copies);
        if (k.trace.points.copy_present_page.listening) k.trace.points.copy_present_page.emit({ pid: parent.pid, child: child.pid, address: addr, pfn, newPfn: nw, rule: d.rule });
      } else {
        const r = ops.forkCopyDeferredPte(child.mm, parent.mm, addr, flags, C.NO_PFN, 0, 0);
        if (r < 0) throw new Error(`cowsim: fork_copy_deferred_pte failed with ${r}`);
        if (k.trace.points.copy_present_pte.listening) k.trace.points.copy_present_pte.emit({ pid: parent.pid, child: child.pid, address: addr, pfn, rule: d.rule });
      }
      return;
    }
    case C.REC_FORK_PMD_PINNED: {
      // copy_huge_pmd(): folio_try_dup_anon_rmap_pmd() failed on a possibly pinned THP — split
      // the parent's PMD and copy its PTEs, where the pinned subpages are handed back one by one
      const vma = parent.vmas.lookup(addr)!;
      split_huge_pmd(k, parent, vma, addr, "copy_huge_pmd(): possibly pinned");
      for (const r of k.core.copyPageRange(child.mm, parent.mm, addr, addr + PMD_SIZE, flags, true)) {
        resolveRecord(k, parent, child, dst, flags, r.kind, r.address, r.pfn);
      }
      return;
    }
    case C.REC_DEVICE_EXCLUSIVE:
      // copy_nonpresent_pte(): the entry is restored, then copied as the present PTE it was
      try_restore_exclusive_pte(k, parent, parent.vmas.lookup(addr)!, addr, pfn);
      if (forkMayDefer(k, parent, flags, pfn)) return resolveRecord(k, parent, child, dst, flags, C.REC_FORK_PINNED, addr, pfn);
      if (ops.forkCopyDeferredPte(child.mm, parent.mm, addr, flags, C.NO_PFN, 0, 0) < 0) throw new Error(`cowsim: fork could not share pid ${parent.pid}'s restored page at ${addr}`);
      return;
    case C.REC_SWAP:
      if (k.trace.points.copy_nonpresent_pte.listening) k.trace.points.copy_nonpresent_pte.emit({ pid: parent.pid, child: child.pid, address: addr, slot: pfn });
      return;
    default:
      return; // migration, device-private, markers, hwpoison: copied by the core as Linux does
  }
}
