/**
 * madvise() (mm/madvise.c) for the advice anonymous memory needs so far: MADV_DONTNEED,
 * MADV_DONTFORK / MADV_DOFORK, MADV_WIPEONFORK / MADV_KEEPONFORK, MADV_POPULATE_(READ|WRITE),
 * MADV_HUGEPAGE / MADV_NOHUGEPAGE, the read-ahead hints, which only set their flags, and
 * MADV_HWPOISON (memory_failure.ts).
 */
import { userfaultfd_remove } from "./userfaultfd.js";
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import {
  hex, VM_DONTCOPY, VM_WIPEONFORK, VM_SEQ_READ, VM_RAND_READ, VM_SHARED, VM_WRITE, VM_READ, VM_EXEC,
  VM_HUGEPAGE, VM_NOHUGEPAGE,
} from "./vma.js";
import { splitAround, mergeNeighbours, zapVma, populate, pageAligned } from "./mmap.js";
import {
  PAGE_SIZE, TASK_SIZE, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED,
  MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_POPULATE_READ,
  MADV_POPULATE_WRITE, MADV_PAGEOUT, MADV_NAMES, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_HWPOISON, MADV_COLLAPSE,
  MADV_REMOVE,
} from "./uapi.js";
import { madvise_remove, madvise_remove_check } from "./shmem.js";
import { madvise_pageout } from "./swap.js";
import { memory_failure, MF_ACTION_REQUIRED, MF_COUNT_INCREASED, type MemoryFailureOutcome } from "./memory_failure.js";
import { get_user_pages } from "./gup.js";
import { madvise_collapse } from "./khugepaged.js";

/** The vm_flags an advice sets and clears, for the advice that only change flags. */
const FLAG_ADVICE: Record<number, [set: number, clear: number]> = {
  [MADV_NORMAL]: [0, VM_SEQ_READ | VM_RAND_READ],
  [MADV_RANDOM]: [VM_RAND_READ, VM_SEQ_READ],
  [MADV_SEQUENTIAL]: [VM_SEQ_READ, VM_RAND_READ],
  [MADV_DONTFORK]: [VM_DONTCOPY, 0],
  [MADV_DOFORK]: [0, VM_DONTCOPY],
  [MADV_WIPEONFORK]: [VM_WIPEONFORK, 0],
  [MADV_KEEPONFORK]: [0, VM_WIPEONFORK],
  // hugepage_madvise()
  [MADV_HUGEPAGE]: [VM_HUGEPAGE, VM_NOHUGEPAGE],
  [MADV_NOHUGEPAGE]: [VM_NOHUGEPAGE, VM_HUGEPAGE],
};

const SUPPORTED = new Set([
  MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK,
  MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
  MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_HWPOISON, MADV_COLLAPSE, MADV_REMOVE,
]);

/**
 * Applies `advice` to [addr, addr + length). A hole in the range fails with ENOMEM before
 * anything changes (Linux applies the advice to the mapped parts, then fails).
 */
export function do_madvise(k: MmKernel, p: MmProcess, addr: number, length: number, advice: number): void {
  if (!Number.isSafeInteger(addr) || !pageAligned(addr)) throw new CowsimError("EINVAL", `madvise: address ${addr} is not page-aligned`);
  if (!Number.isSafeInteger(length) || length < 0) throw new CowsimError("EINVAL", `madvise: length ${length}`);
  if (!SUPPORTED.has(advice)) throw new CowsimError("EINVAL", `madvise: advice ${advice} is not one cowsim models`);
  const len = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
  if (len === 0) return;
  const end = addr + len;
  if (end > TASK_SIZE + PAGE_SIZE) throw new CowsimError("EINVAL", `madvise: range beyond user space`);
  const name = MADV_NAMES[advice]!;
  if (advice === MADV_HWPOISON) {
    // before any VMA is looked at: GUP finds each page, or fails with EFAULT at a hole
    madvise_inject_error(k, p, addr, end);
    if (k.trace.points.madvise.listening) k.trace.points.madvise.emit({ pid: p.pid, start: addr, end, advice: name });
    return;
  }
  if (!p.vmas.covers(addr, end)) {
    throw new CowsimError("ENOMEM", `madvise(${name}): ${hex(addr)}-${hex(end)} is not entirely mapped in pid ${p.pid}`);
  }
  const vmas = p.vmas.overlapping(addr, end);

  if (advice === MADV_WIPEONFORK && vmas.some((v) => v.shmem || v.flags & VM_SHARED)) {
    throw new CowsimError("EINVAL", "madvise(MADV_WIPEONFORK): only private anonymous memory can be wiped on fork");
  }
  if (advice === MADV_POPULATE_WRITE && vmas.some((v) => !(v.flags & VM_WRITE))) {
    throw new CowsimError("EINVAL", "madvise(MADV_POPULATE_WRITE): the range is not writable");
  }
  if (advice === MADV_POPULATE_READ && vmas.some((v) => !(v.flags & (VM_READ | VM_WRITE | VM_EXEC)))) {
    throw new CowsimError("EINVAL", "madvise(MADV_POPULATE_READ): the range is not readable");
  }

  const flagChange = FLAG_ADVICE[advice];
  if (flagChange) {
    const splits = (vmas[0]!.start < addr ? 1 : 0) + (vmas[vmas.length - 1]!.end > end ? 1 : 0);
    if (p.vmas.count + splits > k.maxMapCount) {
      throw new CowsimError("ENOMEM", `madvise(${name}): splitting would exceed vm.max_map_count`);
    }
    splitAround(k, p, addr, end);
    for (const v of p.vmas.overlapping(addr, end)) v.flags = (v.flags | flagChange[0]) & ~flagChange[1];
    for (const v of p.vmas.overlapping(addr, end)) mergeNeighbours(k, p, v);
  } else if (advice === MADV_DONTNEED) {
    for (const v of vmas) {
      const from = Math.max(addr, v.start);
      const to = Math.min(end, v.end);
      // madvise_dontneed_free(): userfaultfd_remove() tells a non-cooperative handler first
      userfaultfd_remove(v, from, to);
      zapVma(k, p, v, from, to, 0);
    }
  } else if (advice === MADV_PAGEOUT) {
    // shmem pages too: a memfd's owner may page out its file pages (can_do_file_pageout())
    for (const v of vmas) madvise_pageout(k, p, Math.max(addr, v.start), Math.min(end, v.end));
  } else if (advice === MADV_REMOVE) {
    // madvise_remove(), VMA by VMA; every VMA is checked first so that a failure changes nothing
    for (const v of vmas) madvise_remove_check(v);
    for (const v of vmas) {
      // madvise_remove(): userfaultfd_remove() tells a non-cooperative handler first
      userfaultfd_remove(v, Math.max(addr, v.start), Math.min(end, v.end));
      madvise_remove(k, v, Math.max(addr, v.start), Math.min(end, v.end));
    }
  } else if (advice === MADV_COLLAPSE) {
    for (const v of vmas) madvise_collapse(k, p, v, Math.max(addr, v.start), Math.min(end, v.end));
  } else if (advice === MADV_POPULATE_READ || advice === MADV_POPULATE_WRITE) {
    if (!populate(k, p, addr, end, advice === MADV_POPULATE_WRITE)) {
      throw new CowsimError("ENOMEM", `madvise(${name}): out of memory while populating (the pages faulted in so far stay, as in Linux)`);
    }
  }
  if (k.trace.points.madvise.listening) k.trace.points.madvise.emit({ pid: p.pid, start: addr, end, advice: name });
}

/**
 * madvise_inject_error() for MADV_HWPOISON over [start, end) of `p`: each page is taken by
 * get_user_pages_fast() (a read: an untouched page faults in the zero page, a hwpoison entry
 * fails with EHWPOISON, a hole with EFAULT) and handed to memory_failure() with
 * MF_ACTION_REQUIRED | MF_COUNT_INCREASED; the first error ends the call, with what was done
 * before it — and the failing page's PG_hwpoison — left, as in Linux. Linux requires
 * CAP_SYS_ADMIN (EPERM otherwise); the simulated caller has it. Returns each page's outcome.
 */
export function madvise_inject_error(k: MmKernel, p: MmProcess, start: number, end: number): MemoryFailureOutcome[] {
  if (p.vmas.overlapping(start, end).some((v) => v.shmem)) {
    throw new CowsimError("EINVAL", `madvise(MADV_HWPOISON): ${hex(start)}-${hex(end)} has shmem pages; truncate_error_folio() is not modelled yet`);
  }
  const out: MemoryFailureOutcome[] = [];
  for (let a = start; a < end;) {
    const pfn = get_user_pages(k, p, a, 1, C.FOLL_GET, true).pfns[0]!;
    const folio = k.ops.pageFolio(pfn);
    // page_size(compound_head(page)): the walk goes on after the whole folio
    const size = PAGE_SIZE * 2 ** ((k.core.frames.flags(folio) >>> C.PG_ORDER_SHIFT) & 0x1f);
    let r: MemoryFailureOutcome;
    try {
      r = memory_failure(k, pfn, MF_ACTION_REQUIRED | MF_COUNT_INCREASED, p);
    } catch (e) {
      // a page memory_failure() refuses before changing anything (shmem): GUP's reference goes back
      k.core.gupPut([pfn], C.FOLL_GET);
      throw e;
    }
    out.push(r);
    if (r.errno) {
      throw new CowsimError(r.errno, `madvise(MADV_HWPOISON): pid ${p.pid}'s page at ${hex(a)} (pfn ${pfn}): ${r.type}, ${r.result}`);
    }
    a += size;
  }
  return out;
}
