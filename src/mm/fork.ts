/**
 * fork() (kernel/fork.c dup_mmap(), mm/memory.c copy_page_range()): the child gets a copy of
 * every VMA but VM_DONTCOPY ones, joins the parent's anon_vmas, and shares its anonymous pages
 * read-only — except those the strategy wants copied at once because they may be pinned.
 * VM_WIPEONFORK VMAs arrive empty. Everything fork needs (an mm, page tables, frames for early
 * copies) is counted and reserved first, so ENOMEM leaves the parent as it was.
 */
import { C } from "../core/abi.generated.js";
import { CowsimError } from "../errno.js";
import type { Kernel } from "./kernel.js";
import { Stat } from "./stats.js";
import { Process } from "./process.js";
import { Vma, VM_DONTCOPY, VM_WIPEONFORK, VM_SHARED, VM_UFFD_WP, VM_WRITE, hex } from "./vma.js";
import { anon_vma_fork } from "./rmap.js";
import { exit_mmap } from "./mmap.js";
import { PAGE_SIZE } from "./uapi.js";

/** copy_page_range() flags for one VMA under the kernel's strategy. */
function copyFlags(k: Kernel, src: Vma, dst: Vma): number {
  return (src.isCow ? C.COPY_COW : 0) | (src.flags & VM_SHARED ? C.COPY_SHARED : 0) |
    (dst.flags & VM_UFFD_WP ? C.COPY_DST_UFFD_WP : 0) | (dst.flags & VM_WRITE ? C.COPY_VM_WRITE : 0) |
    (src.isPrivateAnon ? k.strategy.forkDeferFlags() : 0);
}

/** vma_needs_copy(): only VMAs that may hold anonymous pages (or uffd-wp state) are copied. */
function needsCopy(src: Vma, dst: Vma): boolean {
  return (dst.flags & VM_UFFD_WP) !== 0 || src.anonVma !== null;
}

export function dup_mmap(k: Kernel, parent: Process): Process {
  const x = k.x;
  const ctx = k.ctx;
  k.checkProcessLimit("fork");
  // the dry run: tables and early-copy frames for every VMA, before anything changes
  let tables = 1; // the child's PGD
  let frames = 0;
  const copied = [...parent.vmas].filter((v) => !(v.flags & VM_DONTCOPY));
  for (const v of copied) {
    if (v.flags & VM_WIPEONFORK || !needsCopy(v, v)) continue;
    const n = x.copy_page_range_count(ctx, C.FRESH_MM, parent.mm, v.start, v.end, copyFlags(k, v, v));
    if (n < 0) throw new Error(`cowsim: copy_page_range_count failed with ${n}`);
    tables += x.ctx_aux0(ctx) >>> 0;
    frames += n;
  }
  // reservations only move counters, so giving them back restores every byte
  if (!x.pt_reserve(ctx, tables) || !x.frames_reserve(ctx, frames)) {
    x.pt_unreserve(ctx);
    throw new CowsimError("ENOMEM", `fork: pid ${parent.pid} needs ${tables} page tables and ${frames} frames for early copies; the machine has fewer`);
  }
  const childMm = x.mm_alloc(ctx);
  if (childMm < 0) {
    x.pt_unreserve(ctx);
    x.frames_unreserve(ctx);
    throw new CowsimError("ENOMEM", `fork: no page table left for the child's PGD`);
  }

  const child = new Process(k, k.allocPid(), childMm, parent.pid);
  const shadowRanges: { vpnStart: number; vpnEnd: number }[] = [];
  try {
    for (const v of copied) {
      const wipe = (v.flags & VM_WIPEONFORK) !== 0;
      const tmp = new Vma(v.start, v.end, v.flags, v.pgoff, v.shmem);
      if (v.shmem) k.shmem.get(v.shmem);
      if (!wipe) anon_vma_fork(k.anonVmas, tmp, v, childMm);
      child.vmas.insert(tmp);
      if (!v.shmem && !wipe) shadowRanges.push({ vpnStart: v.start / PAGE_SIZE, vpnEnd: v.end / PAGE_SIZE });
      if (wipe || !needsCopy(v, tmp)) continue;
      const flags = copyFlags(k, v, tmp);
      for (const r of k.core.copyPageRange(childMm, parent.mm, v.start, v.end, flags, true)) {
        resolveRecord(k, parent, child, tmp, flags, r.kind, r.address, r.pfn);
      }
    }
  } catch (e) {
    // dup_mmap()'s error path: the partial child goes as an exiting process would (mmput()).
    // The reservations make this unreachable unless they undercount; then, as in Linux, the
    // parent keeps the PTEs copy_page_range() write-protected so far.
    exit_mmap(k, child);
    throw e;
  } finally {
    x.pt_unreserve(ctx);
    x.frames_unreserve(ctx);
  }
  k.processes.set(child.pid, child);
  k.stats.inc(Stat.forks);
  k.oracle?.onFork(parent.pid, child.pid, shadowRanges);
  k.journal?.add("dup_mmap", () => `pid ${parent.pid} forks pid ${child.pid}: anonymous pages shared read-only (copy_page_range())`, [], [child.pid]);
  return child;
}

/** What fork does with an entry copy_page_range() handed back. */
function resolveRecord(k: Kernel, parent: Process, child: Process, dst: Vma, flags: number,
  kind: number, addr: number, pfn: number): void {
  const x = k.x;
  switch (kind) {
    case C.REC_FORK_PINNED: {
      const d = k.strategy.forkPinned(x.PageAnonExclusive(pfn) === 1);
      if (d.copy) {
        const nw = x.alloc_pages(k.ctx, 0, 0) >>> 0;
        if (nw === C.NO_PFN) throw new Error("cowsim: fork's reserved frame was not there");
        const r = x.fork_copy_deferred_pte(k.ctx, child.mm, parent.mm, addr, flags, nw, dst.anonVma!.id, dst.index(addr));
        if (r < 0) throw new Error(`cowsim: fork_copy_deferred_pte failed with ${r}`);
        k.stats.inc(Stat.forkCopies);
        k.stats.inc(Stat.copies);
        k.journal?.frameBorn(nw);
        k.journal?.add("copy_present_page", () => `fork copies possibly pinned pfn ${pfn} at ${hex(addr)} for pid ${child.pid} into pfn ${nw}: ${d.rule}`, [pfn, nw], [child.pid]);
      } else {
        const r = x.fork_copy_deferred_pte(k.ctx, child.mm, parent.mm, addr, flags, C.NO_PFN, 0, 0);
        if (r < 0) throw new Error(`cowsim: fork_copy_deferred_pte failed with ${r}`);
        k.journal?.add("copy_present_pte", () => `fork shares possibly pinned pfn ${pfn} at ${hex(addr)} with pid ${child.pid}: ${d.rule}`, [pfn], [child.pid]);
      }
      return;
    }
    case C.REC_FORK_PMD_PINNED:
      throw new Error("cowsim: fork of a pinned PMD-mapped THP needs a split (not modelled yet)");
    case C.REC_DEVICE_EXCLUSIVE:
      throw new Error("cowsim: device-exclusive entries are not modelled");
    case C.REC_SWAP:
      k.journal?.add("copy_nonpresent_pte", () => `swap slot ${pfn} at ${hex(addr)} now also referenced by pid ${child.pid}`, [], [child.pid]);
      return;
    default:
      return; // migration, device-private, markers, hwpoison: copied by the core as Linux does
  }
}
