/**
 * mmap(), munmap() and exit_mmap() (mm/mmap.c, mm/vma.c), with the VMA split and merge they
 * rest on. Every call validates everything first, so a failure changes nothing.
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import {
  Vma, canMerge, calc_vm_prot_bits, hex, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_SHARED, VM_MAYSHARE,
  VM_READ, VM_WRITE, VM_EXEC, VM_SOFTDIRTY, VM_UFFD_WP,
} from "./vma.js";
import type { ShmemFile } from "./shmem.js";
import { anon_vma_dup_for_split, unlink_anon_vmas } from "./rmap.js";
import { faultIn, faultFastBits } from "./memory.js";
import { Deliver, deliverTraceLog } from "./trace_log.js";
import { anonFaultOrders } from "./large_folio.js";
import { split_huge_pmd, split_huge_pmds_partly_in, thpPmdFaultAllowed, PMD_SIZE } from "./huge_memory.js";
import {
  PAGE_SIZE, TASK_SIZE, MMAP_BASE, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE,
  MAP_POPULATE, MAP_FIXED_NOREPLACE, PROT_READ, PROT_WRITE, PROT_EXEC,
} from "./uapi.js";
import { pmdOffset, pmdStart } from "./align.js";

/** The lowest address mmap() hands out or accepts (vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;
const MAP_SUPPORTED = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE |
  MAP_FIXED_NOREPLACE;

export const pageAligned = (a: number) => Number.isSafeInteger(a) && a % PAGE_SIZE === 0;
const pageAlign = (len: number) => Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;

function einval(msg: string): CowsimError {
  return new CowsimError("EINVAL", msg);
}

/** Checks a user range argument the way the syscalls do; returns the page-aligned length. */
export function checkRange(call: string, addr: number, length: number): number {
  if (!Number.isSafeInteger(addr) || addr < 0) throw einval(`${call}: address ${addr} is not an address`);
  if (!pageAligned(addr)) throw einval(`${call}: address ${hex(addr)} is not page-aligned`);
  if (!Number.isSafeInteger(length) || length < 0) throw einval(`${call}: length ${length} is not a length`);
  const len = pageAlign(length);
  if (len === 0) throw einval(`${call}: length 0`);
  if (addr + len > TASK_SIZE + PAGE_SIZE) throw einval(`${call}: ${hex(addr)}+${hex(len)} is beyond user space`);
  return len;
}

// ---- VMA split and merge --------------------------------------------------------------------

/** __split_vma(): cut `vma` at `addr`; returns the upper part (a new VMA). */
export function split_vma(k: MmKernel, p: MmProcess, vma: Vma, addr: number): Vma {
  if (addr <= vma.start || addr >= vma.end || addr % PAGE_SIZE) {
    throw new Error(`cowsim: bad split of ${vma.describe()} at ${hex(addr)}`);
  }
  // vma_adjust_trans_huge(): no PMD leaf may straddle the new boundary
  split_huge_pmds_partly_in(k, p, vma, addr, addr, "vma_adjust_trans_huge()");
  const upper = new Vma(addr, vma.end, vma.flags, vma.pgoff + (addr - vma.start) / PAGE_SIZE, vma.shmem);
  if (vma.shmem) k.shmem.get(vma.shmem);
  upper.uffdCtx = vma.uffdCtx;
  anon_vma_dup_for_split(upper, vma, p.mm);
  vma.end = addr;
  p.vmas.invalidate();
  p.vmas.insert(upper);
  return upper;
}

/** Splits VMAs so that `start` and `end` fall on VMA boundaries. */
export function splitAround(k: MmKernel, p: MmProcess, start: number, end: number): void {
  const first = p.vmas.lookup(start);
  if (first && first.start < start) split_vma(k, p, first, start);
  const last = p.vmas.lookup(end - 1);
  if (last && last.end > end) split_vma(k, p, last, end);
}

/** Removes a VMA whose pages are gone (or moved): anon_vma links, shmem reference. */
export function removeVma(k: MmKernel, p: MmProcess, vma: Vma): void {
  p.vmas.remove(vma);
  unlink_anon_vmas(k.anonVmas, vma);
  if (vma.shmem) k.shmem.put(k.ops, vma.shmem);
}

/** vma_merge(): joins `vma` with its neighbours where the merge rules allow. Returns the result. */
export function mergeNeighbours(k: MmKernel, p: MmProcess, vma: Vma): Vma {
  let cur = vma;
  const prev = p.vmas.prev(cur);
  if (prev && canMerge(prev, cur)) cur = absorb(k, p, prev, cur);
  const next = p.vmas.next(cur);
  if (next && canMerge(cur, next)) cur = absorb(k, p, cur, next);
  return cur;
}

/** `a` grows over `b` (its upper neighbour), which goes away. */
function absorb(k: MmKernel, p: MmProcess, a: Vma, b: Vma): Vma {
  if (!a.anonVma && b.anonVma) {
    // dup_anon_vma(): the survivor takes the other's anon_vma
    anon_vma_dup_for_split(a, b, p.mm);
  }
  a.end = b.end;
  removeVma(k, p, b);
  p.vmas.invalidate();
  return a;
}

// ---- mmap -------------------------------------------------------------------------------------

/**
 * get_unmapped_area(): the hint if it fits, else the highest gap below mmap_base
 * (top-down, as x86-64 does), else ENOMEM.
 */
export function get_unmapped_area(p: MmProcess, hint: number, len: number, call = "mmap"): number {
  if (hint) {
    const a = Math.floor(hint / PAGE_SIZE) * PAGE_SIZE;
    if (a >= MMAP_MIN_ADDR && a + len <= TASK_SIZE && p.vmas.overlapping(a, a + len).length === 0) return a;
  }
  // unmapped_area_topdown(): the highest gap that fits, found through the VMA tree's gap tracking
  const a = p.vmas.unmappedAreaTopdown(len, MMAP_MIN_ADDR, MMAP_BASE);
  if (a !== null) return a;
  throw new CowsimError("ENOMEM", `${call}: no free range of ${hex(len)} bytes below ${hex(MMAP_BASE)}`);
}

/**
 * do_mmap() of anonymous memory, or — with `file` and no MAP_ANONYMOUS — of a shmem file (a
 * memfd) from byte `offset` (vm_pgoff = offset / PAGE_SIZE), MAP_SHARED or MAP_PRIVATE. With
 * MAP_ANONYMOUS the file is ignored, as Linux ignores the fd. Returns the address.
 */
export function do_mmap(k: MmKernel, p: MmProcess, addr: number | null, length: number, prot: number, flags: number,
  file: ShmemFile | null = null, offset = 0): number {
  const hint = addr ?? 0;
  if (!Number.isSafeInteger(hint) || hint < 0) throw einval(`mmap: address ${String(addr)} is not an address`);
  if (!Number.isSafeInteger(length) || length <= 0) throw einval(`mmap: length ${length} must be positive`);
  if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) {
    throw einval(`mmap: prot ${prot} has bits other than PROT_READ | PROT_WRITE | PROT_EXEC`);
  }
  if (!Number.isInteger(flags) || (flags & ~MAP_SUPPORTED) !== 0) {
    throw einval(`mmap: flags 0x${(flags >>> 0).toString(16)} include bits cowsim does not model (0x${((flags & ~MAP_SUPPORTED) >>> 0).toString(16)})`);
  }
  const type = flags & (MAP_SHARED | MAP_PRIVATE);
  if (type !== MAP_SHARED && type !== MAP_PRIVATE) throw einval("mmap: exactly one of MAP_SHARED and MAP_PRIVATE");
  const mapped = flags & MAP_ANONYMOUS ? null : file;
  if (!(flags & MAP_ANONYMOUS) && (mapped === null || !mapped.open)) throw new CowsimError("EBADF", "mmap: no open file (cowsim maps anonymous memory and memfds)");
  const len = pageAlign(length);
  if (len > TASK_SIZE) throw new CowsimError("ENOMEM", `mmap: length ${hex(len)} is larger than user space`);
  if (mapped) {
    if (!Number.isSafeInteger(offset) || offset < 0 || !pageAligned(offset)) throw einval(`mmap: offset ${offset} is not a page-aligned file offset`);
    // "offset overflow?": pgoff + pages must not wrap (cowsim keeps indexes below 2^32)
    if (offset / PAGE_SIZE + len / PAGE_SIZE > 2 ** 32) throw new CowsimError("EOVERFLOW", `mmap: offset ${hex(offset)} + ${hex(len)} overflows the file's page index`);
  }
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  if (fixed) {
    if (!pageAligned(hint)) throw einval(`mmap: MAP_FIXED address ${hex(hint)} is not page-aligned`);
    if (hint < MMAP_MIN_ADDR) throw new CowsimError("EPERM", `mmap: ${hex(hint)} is below mmap_min_addr`);
    if (hint + len > TASK_SIZE) throw new CowsimError("ENOMEM", `mmap: ${hex(hint)}+${hex(len)} is beyond user space`);
    if ((flags & MAP_FIXED_NOREPLACE) && p.vmas.overlapping(hint, hint + len).length > 0) {
      throw new CowsimError("EEXIST", `mmap: MAP_FIXED_NOREPLACE range ${hex(hint)}+${hex(len)} is already mapped`);
    }
  }
  const start = fixed ? hint : get_unmapped_area(p, hint, len);
  // a MAP_FIXED over existing VMAs may split one in two: count that against the limit
  const extra = fixed ? p.vmas.overlapping(start, start + len).filter((v) => v.start < start && v.end > start + len).length : 0;
  if (p.vmas.count + 1 + extra > k.maxMapCount) {
    throw new CowsimError("ENOMEM", `mmap: pid ${p.pid} would exceed vm.max_map_count (${k.maxMapCount})`);
  }
  const shared = type === MAP_SHARED;
  // a new VMA is soft-dirty as a whole (mmap_region() sets VM_SOFTDIRTY)
  const vmFlags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_SOFTDIRTY |
    (shared ? VM_SHARED | VM_MAYSHARE : 0);
  if (fixed && !(flags & MAP_FIXED_NOREPLACE)) unmapRange(k, p, start, start + len);

  // shmem_zero_setup() for shared anonymous memory; a file mapping takes a reference to the file (get_file())
  const shmem = mapped ?? (shared ? k.shmem.create(len / PAGE_SIZE) : null);
  if (shmem) k.shmem.get(shmem);
  let vma = new Vma(start, start + len, vmFlags, mapped ? offset / PAGE_SIZE : shared ? 0 : start / PAGE_SIZE, shmem);
  p.vmas.insert(vma);
  if (!shmem) vma = mergeNeighbours(k, p, vma);
  if (k.trace.points.do_mmap.listening) k.trace.points.do_mmap.emit({ pid: p.pid, start, end: start + len, shared });
  if (flags & MAP_POPULATE) populate(k, p, start, start + len, (vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE);
  return start;
}

/**
 * populate_vma_page_range(): fault every page of [start, end) in, as GUP does for MAP_POPULATE
 * and MADV_POPULATE_*: write faults in a private writable mapping (fresh pages, and COW broken
 * where pages are shared), read faults otherwise (the zero page, or the shared object's pages).
 * Returns false when it ran out of memory part way (Linux's mmap() then still succeeds).
 */
export function populate(k: MmKernel, p: MmProcess, start: number, end: number, write: boolean): boolean {
  for (const vma of p.vmas.overlapping(start, end)) {
    // populate_vma_page_range(): "we've never faulted in PROT_NONE pages" — and mm_populate()
    // ignores that error, so MAP_POPULATE of an inaccessible mapping just maps it
    if (!(vma.flags & (VM_READ | VM_WRITE | VM_EXEC))) continue;
    const from = Math.max(start, vma.start);
    const to = Math.min(end, vma.end);
    // page by page in address order, as GUP goes, so that running out of memory leaves the
    // pages before the one that failed populated: the core passes over the pages present as
    // asked and faults in those that need no kernel decision, a PMD at a time (the fast bits
    // hold for it); the first that does goes to faultIn(), and a run of none entries is mapped
    // in one call
    let entries: Map<number, unknown> | null = null;
    for (let a = from; a < to;) {
      const stop = Math.min(to, pmdStart(a) + PMD_SIZE);
      const n = (stop - a) / PAGE_SIZE;
      // with mTHP a write fault maps a whole folio (alloc_anon_folio()): fault by fault, as GUP does
      const runs = vma.isPrivateAnon && (vma.anonVma !== null || !write) && !(write && anonFaultOrders(k, vma)) &&
        !thpPmdFaultAllowed(k, vma, a);
      k.markAllocFailures();
      const fast = faultFastBits(k, vma, a);
      const r = k.ops.populateRange(p.mm, a, n, write, runs, fast, vma.anonVma?.id ?? 0, vma.index(a), vma.pageProt);
      if (fast & C.FAST_LOG) deliverTraceLog(k, p, vma, Deliver.FaultIn);
      const done = Math.floor(r / 16);
      a += done * PAGE_SIZE;
      if (done === n || r % 16 === -C.ACCESS_LOG_FULL) continue;
      if (r % 16 === C.POPULATE_RUN) {
        // the entries as they were before this run's faults; a run stops at the first that is not none
        entries ??= new Map(k.core.pagemap(p.mm, a, to).map((e) => [e.address, e]));
        let b = a + PAGE_SIZE;
        // a run of small pages stops where a 2 MiB the fault path would map by a PMD begins
        while (b < to && !entries.has(b) && !(pmdOffset(b) === 0 && thpPmdFaultAllowed(k, vma, b))) b += PAGE_SIZE;
        const mapped = k.ops.doAnonymousPages(p.mm, a, b, vma.anonVma?.id ?? 0, vma.index(a), vma.pageProt,
          write ? C.ANON_WRITE | (vma.flags & VM_WRITE ? C.ANON_VM_WRITE : 0) : 0);
        // all or nothing: short of memory, the run goes page by page to fail where Linux would
        if (mapped >= 0) { a = b; continue; }
      }
      try {
        faultIn(k, p, a, write, r % 16 === C.POPULATE_RUN ? undefined : -(r % 16));
      } catch (e) {
        if (e instanceof CowsimError && e.errno === "ENOMEM") return false;
        throw e;
      }
      a += PAGE_SIZE;
    }
  }
  return true;
}

// ---- munmap / exit ----------------------------------------------------------------------------

/** do_vmi_munmap(): [start, end) becomes unmapped. Nothing there is fine. */
export function do_munmap(k: MmKernel, p: MmProcess, addr: number, length: number): void {
  const len = checkRange("munmap", addr, length);
  const end = addr + len;
  // unmapping the middle of a VMA leaves one more VMA
  const middle = p.vmas.overlapping(addr, end).some((v) => v.start < addr && v.end > end);
  if (middle && p.vmas.count + 1 > k.maxMapCount) {
    throw new CowsimError("ENOMEM", `munmap: splitting would exceed vm.max_map_count (${k.maxMapCount})`);
  }
  unmapRange(k, p, addr, end);
}

/** Unmaps [start, end): split, zap, free page tables, drop the VMAs. */
export function unmapRange(k: MmKernel, p: MmProcess, start: number, end: number): void {
  const victims = p.vmas.overlapping(start, end);
  if (victims.length === 0) return;
  splitAround(k, p, start, end);
  const inside = p.vmas.overlapping(start, end);
  for (const vma of inside) {
    zapVma(k, p, vma, vma.start, vma.end, C.ZAP_DROP_MARKERS);
  }
  const first = inside[0]!;
  const last = inside[inside.length - 1]!;
  const prev = p.vmas.prev(first);
  const next = p.vmas.next(last);
  for (const vma of inside) removeVma(k, p, vma);
  // free_pgtables(): between the neighbours, nothing is mapped any more
  k.core.freePgdRange(p.mm, prev ? prev.end : 0, next ? next.start : TASK_SIZE + PAGE_SIZE);
  if (k.trace.points.do_vmi_munmap.listening) k.trace.points.do_vmi_munmap.emit({ pid: p.pid, start, end });
}

/** zap_page_range_single() over part of one VMA, handling what the core hands back. */
export function zapVma(k: MmKernel, p: MmProcess, vma: Vma, start: number, end: number, flags: number): void {
  // zap_install_uffd_wp_if_needed(): a file VMA registered for uffd-wp keeps the state as markers (not for munmap)
  if (vma.shmem && vma.flags & VM_UFFD_WP && !(flags & C.ZAP_DROP_MARKERS)) flags |= C.ZAP_KEEP_UFFD_WP;
  const records = k.core.zapPageRange(p.mm, start, end, flags);
  for (const r of records) {
    if (r.kind === C.REC_SWAP_CACHE_ONLY) {
      k.swapCacheOrphan(r.pfn, r.aux);
    } else if (r.kind === C.REC_PMD_PARTIAL) {
      // zap_pmd_range(): a PMD leaf the range covers in part is split, then its PTEs are zapped
      split_huge_pmd(k, p, vma, r.address, "zap_pmd_range(): partial");
      const to = Math.min(end, pmdStart(r.address) + PMD_SIZE);
      for (const q of k.core.zapPageRange(p.mm, r.address, to, flags)) {
        if (q.kind === C.REC_SWAP_CACHE_ONLY) k.swapCacheOrphan(q.pfn, q.aux);
      }
    }
  }
  // private memory reads zero afterwards (a private file mapping, the file); shared memory refaults from its object
  if (k.trace.points.zap_page_range.listening) k.trace.points.zap_page_range.emit({ pid: p.pid, start, end, private: !(vma.flags & VM_SHARED) });
}

/** exit_mmap(): every VMA goes, then the page tables and the mm. */
export function exit_mmap(k: MmKernel, p: MmProcess): void {
  for (const vma of p.vmas) {
    zapVma(k, p, vma, vma.start, vma.end, C.ZAP_DROP_MARKERS);
    removeVma(k, p, vma);
  }
  k.core.freePgdRange(p.mm, 0, TASK_SIZE + PAGE_SIZE);
  k.core.mmFree(p.mm);
}
