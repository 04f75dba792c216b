/**
 * Memory access and page faults (mm/memory.c, arch/x86/mm/fault.c): the simulated CPU's loads
 * and stores, handle_mm_fault() and its cases — do_anonymous_page(), shmem faults,
 * do_wp_page() with the strategy's reuse-or-copy decision, FAULT_FLAG_UNSHARE. A fault ends
 * handled (the access retries) or blocked on a wait queue (see wait.ts).
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import { Stat } from "./stats.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYSHARE, VM_UFFD_MISSING, VM_UFFD_MINOR, VM_UFFD_WP, VM_SOFTDIRTY, hex } from "./vma.js";
import { userfaultfdFor, userfaultfd_wp_async } from "./userfaultfd.js";
import { anon_vma_prepare } from "./rmap.js";
import type { SwapinCoreRule, WpCoreRule, WpFacts, WpHelpers } from "../policy/strategy.js";
import { do_swap_page } from "./swap.js";
import { migration_entry_wait, compact_transiently } from "./migrate.js";
import { FaultBlocked, type WaitQueue } from "./wait.js";
import type { TraceLogReader } from "../trace/events.js";
import { hwpoisonSigbus } from "./memory_failure.js";
import { anonFaultOrders, do_anonymous_folio, mthpPolicyEnabled, pageTransHugeMapcount } from "./large_folio.js";
import { thpPmdFaultAllowed, thpPmdFaultsPossible, do_huge_pmd_anonymous_page, do_huge_pmd_wp_page, split_huge_pmd } from "./huge_memory.js";
import { do_device_entry_fault } from "./migrate_device.js";
import { shmem_get_folio, shmem_get_entry } from "./shmem.js";
import { Deliver, deliverTraceLog, emitDoWpPage, runMayBatch, storeRunReader, traceLogBits } from "./trace_log.js";
import { pageOffset, pmdStart } from "./align.js";

const MAX_RETRIES = 8;

/**
 * The VMA for an access, or SIGSEGV (EFAULT) — arch/x86/mm/fault.c's bad_area() and
 * access_error(): no VMA, a write without VM_WRITE, a read of a VMA that allows nothing.
 */
export function accessVma(p: MmProcess, addr: number, write: boolean): Vma {
  const vma = allowedVma(p, addr, write);
  if (vma !== null) return vma;
  const found = p.vmas.lookup(addr);
  if (found === null) throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} accessed ${hex(addr)}, which no VMA maps`);
  throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} ${write ? "wrote to" : "read from"} ${hex(addr)} in ${found.describe()}`);
}

/** The VMA an access at `addr` may use, or null where accessVma() would fail (a run leaves that page to the single access). */
function allowedVma(p: MmProcess, addr: number, write: boolean): Vma | null {
  const vma = p.vmas.lookup(addr);
  if (vma === null || (write ? !(vma.flags & VM_WRITE) : !(vma.flags & (VM_READ | VM_WRITE | VM_EXEC)))) return null;
  return vma;
}

/** access()'s result when the fault waits on a queue (takeBlockedQueue() says which). */
export const ACCESS_BLOCKED = -1;
let blockedOn: WaitQueue | null = null;

/**
 * The queue the last access that returned ACCESS_BLOCKED waits on. (A userfault blocks by
 * returning, not by throwing: it is the common case of a userfaultfd's life, and a throw
 * through the fault path costs more than the whole fault.)
 */
export function takeBlockedQueue(): WaitQueue {
  const q = blockedOn!;
  blockedOn = null;
  return q;
}

/**
 * One user access to the page at `addr`: returns the page's value for a read; stores `value`
 * for a write. Faults as the CPU would, until the access succeeds — or, when a fault must wait,
 * returns ACCESS_BLOCKED (a userfault) or throws FaultBlocked (a locked folio, a migration); the
 * caller resumes it by calling again once woken.
 */
export function access(k: MmKernel, p: MmProcess, addr: number, write: boolean, value: number, first?: number, fastIn?: number): number {
  const vma = accessVma(p, addr, write);
  const ops = k.ops;
  const lo = write ? value >>> 0 : 0;
  const hi = write ? Math.floor(value / 2 ** 32) >>> 0 : 0;
  // resuming a run's page (accessRange()): the run marked before its call, the failure it met counts
  if (first === undefined) k.markAllocFailures();
  let fast = fastIn ?? (fastBits(k, vma) | thpFastBit(k, vma, addr));
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    let r = first;
    if (tries > 0 || first === undefined) {
      r = ops.handleAccess(p.mm, addr, write ? 1 : 0, lo, hi, fast, vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt);
      // the access's tracepoints (the core's faults, the access itself) come from the trace log
      if (fast & C.FAST_LOG) deliverTraceLog(k, p, vma, Deliver.Access);
    }
    if (r! >= 0) return write ? value : r!;
    if (r === C.ACCESS_LOG_FULL) continue;
    if (r === C.ACCESS_HUGE_PMD_FAULT) {
      if (do_huge_pmd_anonymous_page(k, p, vma, addr, write, (fast & C.FAST_NO_ZEROPAGE) !== 0) === "fallback") fast &= ~C.FAST_THP_PMD;
      continue;
    }
    const q = handleFault(k, p, vma, addr, write, r!);
    if (q !== undefined) {
      blockedOn = q;
      return ACCESS_BLOCKED;
    }
  }
  throw new Error(`cowsim: access to ${hex(addr)} by pid ${p.pid} did not settle after ${MAX_RETRIES} faults`);
}

/**
 * A run of user accesses: page i (i < n) at `addr` + i·stride pages, a write storing `value` +
 * i·step. The pages the core's fast path can take without the kernel (plain present accesses,
 * first-touch anonymous pages, the zero page) go in one call per VMA and PMD; the first page
 * that needs the kernel (a write-protect fault for the strategy, swap, a userfault, a wait …)
 * goes to `slow` with the code the core met there, which resumes it as access() does, and the
 * run goes on after it. The same as n single accesses, counter for counter: while a tracepoint
 * listens to single accesses (the oracle, a trace), every page goes to `slow` on its own.
 */
export function accessRange(k: MmKernel, p: MmProcess, addr: number, n: number, stride: number, write: boolean,
  value: number, step: number, slow: (addr: number, value: number, first: number | undefined, fast: number | undefined) => void,
  stepCode = 0): void {
  const ops = k.ops;
  const batch = runMayBatch(k);
  const span = stride * PAGE;
  // the VMA and PMD the last call ran in, with its fast bits: after a write-protect fault (the
  // strategy's decision, which changes no VMA and no policy) the run goes on with them
  let vma: Vma | null = null;
  let limit = 0;
  let fast = 0;
  // a reader that takes the run's stores in one call per core call, when one may
  let stores: TraceLogReader | null = null;
  for (let i = 0; i < n;) {
    const a = addr + i * span;
    const v = write ? value + i * step : 0;
    if (!batch) {
      slow(a, v, undefined, undefined);
      i++;
      continue;
    }
    if (vma === null || a >= limit) {
      vma = allowedVma(p, a, write);
      if (vma === null) {
        slow(a, v, undefined, undefined); // SIGSEGV, as the single access meets it
        i++;
        continue;
      }
      // one VMA and one PMD: the fast bits (THP, mTHP, uffd) hold for the whole call
      limit = Math.min(vma.end, pmdStart(a) + PMD);
      fast = fastBits(k, vma) | thpFastBit(k, vma, a);
      stores = write && (fast & C.FAST_LOG) ? storeRunReader(k, vma) : null;
      if (stores !== null) fast |= C.FAST_LOG_WP_ONLY;
    }
    const m = Math.min(n - i, Math.floor((limit - 1 - a) / span) + 1);
    k.markAllocFailures();
    const r = ops.handleAccessRange(p.mm, a, m, stride, write ? 1 : 0, v >>> 0, Math.floor(v / 2 ** 32) >>> 0,
      write ? step : 0, fast, vma.anonVma?.id ?? 0, vma.index(a), vma.pageProt);
    if (fast & C.FAST_LOG) deliverTraceLog(k, p, vma, stepCode ? Deliver.Steps : Deliver.Access, stepCode);
    // done·16 + (−code), below 2^16 (a run stays in one PMD): its bits, not a float remainder
    const done = r >>> 4;
    if (stores !== null && done > 0) stores.storeRun!(p.pid, a, done, stride, v, step);
    i += done;
    if (done < m) {
      const code = -(r & 15);
      if (code === C.ACCESS_LOG_FULL) continue;
      const b = addr + i * span;
      const keep = code === C.ACCESS_WP_FAULT && !(vma.flags & VM_UFFD_WP) && b < limit;
      // the single access logs its own store
      slow(b, write ? value + i * step : 0, code, keep ? fast & ~C.FAST_LOG_WP_ONLY : undefined);
      if (!keep) vma = null;
      i++;
    }
  }
}

/**
 * A list of user accesses: addrs[i] for i in [from, to), a write storing values[i] (or 0). The
 * addresses of one VMA go to the core a list at a time (handle_access_list()); the first that
 * needs the kernel goes to `slow` with the code the core met there, and the list goes on after
 * it. The same as the loop of single accesses, counter for counter: a VMA where a PMD-sized THP
 * fault may happen, or a tracepoint listening to single accesses, sends its addresses to `slow`
 * one by one.
 */
export function accessList(k: MmKernel, p: MmProcess, addrs: readonly number[], values: readonly number[] | undefined,
  from: number, to: number, write: boolean, slow: (addr: number, value: number, first: number | undefined) => void,
  stepCode = 0): void {
  const ops = k.ops;
  const batch = runMayBatch(k);
  const cap = ops.listCapacity();
  // each call copies its entries into the scratch area: a list that keeps stopping (swap-ins,
  // wp faults for the strategy) is handed over a few entries at a time, one that runs through
  // in ever larger calls
  let chunk = LIST_FIRST;
  for (let i = from; i < to;) {
    const a = addrs[i]!;
    const vma = batch ? allowedVma(p, a, write) : null;
    if (vma === null || (vma.isPrivateAnon && thpPmdFaultsPossible(k, vma))) {
      slow(a, write ? values?.[i] ?? 0 : 0, undefined);
      i++;
      continue;
    }
    const m = Math.min(to - i, chunk, cap);
    k.markAllocFailures();
    const fast = fastBits(k, vma);
    const r = ops.handleAccessList(p.mm, addrs, values, i, m, write, fast, vma.anonVma?.id ?? 0,
      vma.start, vma.end, vma.pgoff, vma.pageProt);
    if (fast & C.FAST_LOG) deliverTraceLog(k, p, vma, stepCode ? Deliver.Steps : Deliver.Access, stepCode);
    // done·16 + code, below 2^17 (a list call takes at most the scratch area's entries)
    const done = r >>> 4;
    i += done;
    const code = r & 15;
    chunk = done === m ? Math.min(2 * chunk, cap) : LIST_FIRST;
    if (done < m && code !== C.LIST_OTHER_VMA && code !== -C.ACCESS_LOG_FULL) {
      slow(addrs[i]!, write ? values?.[i] ?? 0 : 0, -code);
      i++;
    }
  }
}

const PAGE = 4096;
const PMD = 512 * PAGE;
/** The entries of accessList()'s first call, and of the first after a stop. */
const LIST_FIRST = 32;

/**
 * faultin_page(): fault the page at `addr` in as GUP does — for writing (breaking COW, without
 * storing anything) or for reading — with no observation by the process. The caller checked
 * the VMA (check_vma_flags()): unlike the CPU's, GUP's faults may reach a PROT_NONE mapping
 * (FOLL_FORCE), whose entries are present to the kernel and followed as they are.
 */
export function faultIn(k: MmKernel, p: MmProcess, addr: number, write: boolean, first?: number): void {
  const vma = p.vmas.lookup(addr);
  if (vma === null) throw new CowsimError("EFAULT", `pid ${p.pid}: no VMA at ${hex(addr)}`);
  // resuming a populate run's page: the run marked before its call, the failure it met counts
  if (first === undefined) k.markAllocFailures();
  let fast = fastBits(k, vma) | thpFastBit(k, vma, addr);
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    let r = first;
    if (tries > 0 || first === undefined) {
      r = k.ops.handleAccess(p.mm, addr, write ? C.ACCESS_FAULT_WRITE : 0, 0, 0, fast, vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt);
      if (fast & C.FAST_LOG) deliverTraceLog(k, p, vma, Deliver.FaultIn);
    }
    if (r! >= 0 || r === C.ACCESS_PROTNONE) return;
    if (r === C.ACCESS_LOG_FULL) continue;
    if (r === C.ACCESS_HUGE_PMD_FAULT) {
      if (do_huge_pmd_anonymous_page(k, p, vma, addr, write, (fast & C.FAST_NO_ZEROPAGE) !== 0) === "fallback") fast &= ~C.FAST_THP_PMD;
      continue;
    }
    try {
      const q = handleFault(k, p, vma, addr, write, r!);
      if (q !== undefined) throw new FaultBlocked(q);
    } catch (e) {
      // GUP and populate wait in the kernel (__folio_lock(), or VM_FAULT_RETRY and again); here
      // nothing else runs that could give the lock up
      if (e instanceof FaultBlocked) {
        throw new CowsimError("EDEADLK", `pid ${p.pid}: faulting ${hex(addr)} in waits for ${e.queue.what}, which only another actor can give up`);
      }
      throw e;
    }
  }
  throw new Error(`cowsim: faulting ${hex(addr)} in for pid ${p.pid} did not settle`);
}

/** The fast bits of a fault at `addr` in `vma` (the same for its whole PMD). */
export function faultFastBits(k: MmKernel, vma: Vma, addr: number): number {
  return fastBits(k, vma) | thpFastBit(k, vma, addr);
}

/**
 * What the core's fast path may do in this VMA: with mTHP orders allowed, a write fault is
 * alloc_anon_folio()'s; in a private VMA with its anon_vma and no uffd-wp, the core decides
 * write-protect faults by the strategy's rule when nobody needs to see each one (FAST_WP), and
 * takes swap-ins by it where the anon_vma is its own root (what a page mapped shared joins,
 * __folio_set_anon()'s oldest anon_vma, is then the same) and nobody watches do_swap_page.
 */
function fastBits(k: MmKernel, vma: Vma): number {
  let bits = vma.fastBits();
  if (bits && mthpPolicyEnabled(k) && anonFaultOrders(k, vma)) bits |= C.FAST_MTHP;
  const av = vma.anonVma;
  if (av !== null && !(vma.flags & (VM_SHARED | VM_MAYSHARE | VM_UFFD_WP))) {
    const write = vma.flags & VM_WRITE ? C.FAST_VM_WRITE : 0;
    if (k.wpInCore()) bits |= C.FAST_WP | write;
    if (av.root === av && k.swapinInCore()) bits |= C.FAST_SWAP | write | (vma.flags & VM_SOFTDIRTY ? C.FAST_VM_SOFTDIRTY : 0);
  }
  // every call made with these bits delivers its trace log after it (deliverTraceLog())
  return bits | traceLogBits(k);
}

/** A built-in strategy's do_wp_page() rule as the core's WPR_* bits. */
export function wpRuleBits(r: WpCoreRule): number {
  return C.WPR_ON | (r.exclusiveReuses ? C.WPR_EXCLUSIVE : 0) | (r.count === "refcount" ? C.WPR_REFCOUNT : 0) |
    (r.drainFirst ? C.WPR_DRAIN : 0) | (r.mapcountToo ? C.WPR_MAPCOUNT_TOO : 0) | (r.moveAnon ? C.WPR_MOVE_ANON : 0) |
    (r.setExclusive ? C.WPR_SET_EXCLUSIVE : 0) | (r.largeCopies ? C.WPR_LARGE_COPIES : 0);
}

/** A built-in strategy's do_swap_page() rule as the core's SWR_* bits. */
export function swapRuleBits(r: SwapinCoreRule): number {
  return C.SWR_ON | (r.count === "refcount" ? C.SWR_REFCOUNT : 0) | (r.entryExclusive ? C.SWR_ENTRY_EXCLUSIVE : 0) |
    (r.readExclusive ? C.SWR_READ_EXCLUSIVE : 0);
}

/** FAST_THP_PMD when a none PMD at `addr` would take a THP fault (create_huge_pmd()). */
function thpFastBit(k: MmKernel, vma: Vma, addr: number): number {
  return vma.isPrivateAnon && thpPmdFaultAllowed(k, vma, addr) ? C.FAST_THP_PMD : 0;
}

/** The do_anonymous_page() the core's fast path took during an access (it reached `pfn`), as a tracepoint. */

/** handle_mm_fault() for what the core's fast path handed back. */
/** Returns the queue a userfault waits on, or undefined when the access may retry. */
function handleFault(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean, code: number): WaitQueue | undefined {
  switch (code) {
    case C.ACCESS_NEED_FAULT:
      if (vma.flags & (VM_UFFD_MISSING | VM_UFFD_MINOR)) {
        const q = userfaultNeeded(k, p, vma, addr, write);
        if (q !== false) return q;
      }
      if (vma.shmem) return void shmemFault(k, p, vma, addr, write);
      if (vma.isPrivateAnon) {
        return void (vma.anonVma ? do_anonymous_folio(k, p, vma, addr, () => enomem(k, p, addr, "fault")) : prepareAnon(k, p, vma));
      }
      throw new Error(`cowsim: no fault handler for ${vma.describe()}`);
    case C.ACCESS_WP_FAULT:
      compact_transiently(k, p, vma, addr);
      return do_wp_page(k, p, vma, addr, false);
    case C.ACCESS_HUGE:
      // wp_huge_pmd(): a uffd-wp PMD goes to the handler first (WP_ASYNC: split, then the PTE fault)
      if (vma.flags & VM_UFFD_WP && k.ops.uffdWpAt(p.mm, addr) & C.UFFD_WP_PRESENT) {
        if (userfaultfd_wp_async(vma)) {
          split_huge_pmd(k, p, vma, addr, "wp_huge_pmd(): uffd-wp async");
          return undefined;
        }
        return vma.uffdCtx!.handleFault(p, addr, write, VM_UFFD_WP);
      }
      compact_transiently(k, p, vma, addr);
      // wp_huge_pmd(): a write to a read-only PMD leaf
      return void do_huge_pmd_wp_page(k, p, vma, addr, false);
    case C.ACCESS_SWAP:
      return void do_swap_page(k, p, vma, addr, write);
    case C.ACCESS_ENOMEM:
      // direct reclaim, then the access retries — when a frame was missing and reclaim frees
      // one; without swap (or anything to swap), a missing page table or an injected failure, ENOMEM
      if (k.reclaimAfterFailure() > 0) return undefined;
      throw enomem(k, p, addr, "fault");
    case C.ACCESS_HWPOISON:
      throw hwpoisonSigbus(p, addr, write);
    case C.ACCESS_MIGRATION:
      return void migration_entry_wait(k, p, addr);
    case C.ACCESS_OTHER:
      return void do_device_entry_fault(k, p, vma, addr);
    case C.ACCESS_MARKER:
      // handle_pte_marker(): a poisoned entry (a swap-in error) is VM_FAULT_HWPOISON, before uffd-wp
      const marker = markerBits(k, p, addr);
      if (marker & C.PTE_MARKER_POISONED) throw hwpoisonSigbus(p, addr, write);
      if (marker & C.PTE_MARKER_UFFD_WP) return pte_marker_handle_uffd_wp(k, p, vma, addr, write);
      throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} touched a guard marker at ${hex(addr)}`);
    default:
      throw new CowsimError("EFAULT", `pid ${p.pid}: the entry at ${hex(addr)} needs a fault path cowsim does not model yet (code ${code})`);
  }
}

/**
 * handle_userfault() for a none PTE (do_anonymous_page()'s and shmem_get_folio_gfp()'s
 * userfaultfd_missing() / userfaultfd_minor() checks): a shmem page already in the page cache
 * is a minor fault, any other a missing one. Returns true when the fault went to the
 * userfaultfd (and its handler resolved it: the access retries); false when no userfaultfd
 * takes this fault.
 */
function userfaultNeeded(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean): WaitQueue | undefined | false {
  let reason = VM_UFFD_MISSING;
  if (vma.shmem) {
    // shmem_get_folio_gfp(): a page — or a swap entry — in the page cache is a minor fault
    if (shmem_get_entry(vma.shmem, vma.index(addr)) !== null) reason = VM_UFFD_MINOR;
  } else if (!vma.isPrivateAnon) {
    return false;
  }
  const uffd = userfaultfdFor(vma, reason);
  if (uffd === null) return false;
  if (!vma.shmem && !missingFaultPteTable(k, p, vma, addr)) {
    if (k.reclaimAfterFailure() > 0) return undefined;
    throw enomem(k, p, addr, "fault");
  }
  // do_anonymous_page(): a write fault prepares the anon_vma before it asks (vmf_anon_prepare())
  if (write && !vma.shmem && !vma.anonVma) prepareAnon(k, p, vma);
  return uffd.handleFault(p, addr, write, reason);
}

/**
 * Where an anonymous missing fault asks the userfaultfd: __handle_mm_fault() sends a none PMD of
 * a THP-eligible VMA to do_huge_pmd_anonymous_page(), which asks userfaultfd_missing() with the
 * PMD still none (the deposit table is freed again); any other goes to do_anonymous_page(),
 * which allocates the PTE table (pte_alloc()) before it asks. UFFDIO_MOVE sees the difference:
 * a PMD-mapped source THP moves whole only onto a none PMD (move_pages()). False: no memory
 * for the table (VM_FAULT_OOM).
 */
function missingFaultPteTable(k: MmKernel, p: MmProcess, vma: Vma, addr: number): boolean {
  const ops = k.ops;
  const pmd = ops.uffdPmdState(p.mm, addr);
  if (pmd === C.UFFD_PMD_TABLE) return true;
  // __handle_mm_fault() has allocated the levels down to the PMD (pud_alloc(), pmd_alloc())
  const huge = pmd !== C.UFFD_PMD_LEAF && pmd !== C.UFFD_PMD_SWAP && thpPmdFaultAllowed(k, vma, addr);
  return ops.uffdAllocTables(p.mm, addr, huge ? 2 : 3) >= 0;
}

/**
 * pte_marker_handle_uffd_wp(): a uffd-wp marker where a page of a write-protected range was
 * zapped, punched or never populated (WP_UNPOPULATED). Outside a uffd-wp VMA it is just
 * cleared; otherwise the fault is do_pte_missing()'s — with the userfaultfd's missing and minor
 * checks — and the page is installed with uffd-wp set (vmf_orig_pte_uffd_wp()): read-only, so a
 * write retries into a uffd-wp fault (seed 002).
 */
function pte_marker_handle_uffd_wp(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean): WaitQueue | undefined {
  const ops = k.ops;
  if (!(vma.flags & VM_UFFD_WP)) {
    ops.pteMarkerClear(p.mm, addr);
    return undefined;
  }
  if (vma.flags & (VM_UFFD_MISSING | VM_UFFD_MINOR)) {
    const q = userfaultNeeded(k, p, vma, addr, write);
    if (q !== false) return q;
  }
  const flags = C.MFILL_WP | C.MFILL_FAULT | (vma.flags & VM_WRITE ? C.MFILL_VM_WRITE : 0) | (vma.flags & VM_SHARED ? C.MFILL_VM_SHARED : 0);
  if (vma.shmem) {
    const index = vma.index(addr);
    const pfn = shmem_get_folio(k, vma.shmem, index, write ? "write" : "read", vma)!;
    const r = ops.mfillAtomicRange(p.mm, addr, 1, C.MFILL_FILE, 0, 0, vma.pageProt, pfn, 0, flags);
    if (r.done === 0) throw enomem(k, p, addr, "shmem fault on a uffd-wp marker");
    k.stats.inc(Stat.shmemFaults);
    if (k.trace.points.shmem_fault.listening) k.trace.points.shmem_fault.emit({ pid: p.pid, address: addr, index, pfn });
    return undefined;
  }
  if (!vma.isPrivateAnon) throw new Error(`cowsim: a uffd-wp marker in ${vma.describe()}`);
  // do_anonymous_page(): the zero page for a read (unless forbidden), a zeroed page for a write
  const zero = !write;
  if (!zero && !vma.anonVma) prepareAnon(k, p, vma);
  let r = ops.mfillAtomicRange(p.mm, addr, 1, zero ? C.MFILL_ZEROPAGE : C.MFILL_COPY, vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt, 0, 0, flags);
  if (r.done === 0 && r.errno === 12 && k.reclaimAfterFailure() > 0) {
    r = ops.mfillAtomicRange(p.mm, addr, 1, zero ? C.MFILL_ZEROPAGE : C.MFILL_COPY, vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt, 0, 0, flags);
  }
  if (r.done === 0 && r.errno === 12) throw enomem(k, p, addr, "fault on a uffd-wp marker");
  if (r.done === 1 && k.trace.points.do_anonymous_page.listening) {
    k.trace.points.do_anonymous_page.emit({ pid: p.pid, address: addr - pageOffset(addr), pfn: zero ? 0 : ops.translateOne(p.mm, addr - pageOffset(addr))!, zero });
  }
  return undefined;
}

/** The marker bits of the PTE marker at `addr` (a cold path: the whole entry is read). */
function markerBits(k: MmKernel, p: MmProcess, addr: number): number {
  return Number((k.ops.ptepGet(p.mm, addr) >> BigInt(C.SWP_OFFSET_SHIFT)) & BigInt(C.PTE_MARKER_UFFD_WP | C.PTE_MARKER_POISONED | C.PTE_MARKER_GUARD));
}

/**
 * vmf_anon_prepare(): the VMA gets its anon_vma before its first anonymous page is allocated.
 * The core has allocated the page table first (do_anonymous_page()'s pte_alloc()), so a fault
 * that finds no table changes nothing, and one that then finds no frame leaves the anon_vma
 * and the table behind, as in Linux.
 */
function prepareAnon(k: MmKernel, p: MmProcess, vma: Vma): void {
  anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
}

/**
 * do_fault() for a shmem mapping: do_shared_fault() in a shared one (the page-cache page,
 * writable when the VMA is); in a private one do_read_fault() for a read (the page-cache page,
 * read-only: it stays the file's) and do_cow_fault() for a write (a copy of it in a new
 * anonymous page). The page comes from shmem_get_folio(), which swaps in and allocates.
 */
function shmemFault(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean): void {
  const file = vma.shmem!;
  const ops = k.ops;
  const index = vma.index(addr);
  const cow = write && !(vma.flags & VM_SHARED);
  if (cow && !vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm); // vmf_anon_prepare()
  if (!ops.ptReserve(ops.tablesMissingAt(p.mm, addr))) throw enomem(k, p, addr, "shmem fault");
  let pfn: number;
  try {
    pfn = shmem_get_folio(k, file, index, write ? "write" : "read", vma)!;
  } catch (e) {
    ops.ptUnreserve();
    throw e;
  }
  if (cow) {
    // __do_fault()'s reference: reclaim for the copy's frame may not take the page from under it
    ops.folioRefAdd(pfn, 1);
    const flags = vma.flags & VM_WRITE ? C.WPCOPY_VM_WRITE : 0;
    let nw = ops.doCowFault(p.mm, addr, pfn, vma.anonVma!.id, index, vma.pageProt, flags);
    if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = ops.doCowFault(p.mm, addr, pfn, vma.anonVma!.id, index, vma.pageProt, flags);
    ops.folioPutRefs(pfn, 1);
    ops.ptUnreserve();
    if (nw === -C.EEXIST) return; // the entry changed: the access retries
    if (nw < 0) throw enomem(k, p, addr, "COW fault on a private file page");
    k.stats.inc(Stat.fileCopies);
    if (k.trace.points.do_cow_fault.listening) k.trace.points.do_cow_fault.emit({ pid: p.pid, address: addr, objId: file.id, index, pfn, newPfn: nw, mapped: false });
    return;
  }
  const r = ops.mapFilePte(p.mm, addr, pfn, vma.pageProt, write);
  ops.ptUnreserve();
  if (r < 0) throw new Error(`cowsim: map_file_pte failed with ${r}`);
  k.stats.inc(Stat.shmemFaults);
  if (k.trace.points.shmem_fault.listening) k.trace.points.shmem_fault.emit({ pid: p.pid, address: addr, index, pfn });
}

// ---- do_wp_page() ---------------------------------------------------------------------------

// page flag masks, computed once (a variable exponent is a slow Math.pow)
const PG_ANON_EXCLUSIVE = 1 << C.PG_anon_exclusive;
const PTE_UFFD_WP = 1 << C._PAGE_BIT_UFFD_WP;
const PG_HEAD = 1 << C.PG_head;
const PG_LRU = 1 << C.PG_lru;
const PG_SWAPCACHE = 1 << C.PG_swapcache;
const PG_WRITEBACK = 1 << C.PG_writeback;


/**
 * do_wp_page(): a write (or, with `unshare`, a R/O GUP pin) met a present page it may not use
 * as is. Shared mappings just become writable (wp_page_shared()); the zero page is replaced by a
 * fresh page; an anonymous page is reused or copied as the strategy decides.
 */
export function do_wp_page(k: MmKernel, p: MmProcess, vma: Vma, addr: number, unshare: boolean): WaitQueue | undefined {
  const ops = k.ops;
  const info = ops.wpFaultInfo(p.mm, addr);
  if (typeof info === "number") return; // the entry changed: the access retries
  // do_wp_page(): a write to a uffd-wp page goes to the handler (WP_ASYNC: the bit is just cleared)
  if (!unshare && vma.flags & VM_UFFD_WP && info.pte & PTE_UFFD_WP) {
    if (!userfaultfd_wp_async(vma)) return vma.uffdCtx!.handleFault(p, addr, true, VM_UFFD_WP);
    k.core.changeProtection(p.mm, addr - pageOffset(addr), addr - pageOffset(addr) + 4096, vma.pageProt, C.MM_CP_UFFD_WP_RESOLVE);
    return undefined;
  }
  k.stats.inc(Stat.wpFaults);
  const { pfn, folio } = info;

  if (vma.flags & (VM_SHARED | VM_MAYSHARE)) {
    // wp_page_shared(): nothing to copy, the mapping is shared by definition
    ops.wpPageReuse(p.mm, addr, 0, 0);
    if (k.trace.points.wp_page_shared.listening) k.trace.points.wp_page_shared.emit({ pid: p.pid, address: addr, pfn });
    return;
  }
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  const anonVma = vma.anonVma!.id;
  const index = vma.index(addr);
  const copyFlags = (unshare ? C.WPCOPY_UNSHARE : 0) | (vma.flags & VM_WRITE ? C.WPCOPY_VM_WRITE : 0);

  if (info.kind === "zero") {
    let nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
    if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
    if (nw < 0) throw enomem(k, p, addr, "write fault on the zero page");
    k.stats.inc(Stat.zeroPageCopies);
    if (k.trace.points.wp_page_copy.listening) {
      const rule = unshare ? "FAULT_FLAG_UNSHARE of the zero page" : "do_wp_page(): write to the shared zero page";
      k.trace.points.wp_page_copy.emit({ pid: p.pid, address: addr, pfn: 0, newPfn: nw, zeroPage: true, unshare, rule, facts: null });
    }
    return;
  }
  if (info.kind === "file") {
    wp_page_copy_file(k, p, vma, addr, pfn, index, copyFlags);
    return undefined;
  }
  if (info.kind !== "anon") throw new Error(`cowsim: write fault on ${info.kind} page at ${hex(addr)}: not modelled`);

  const facts: WpFacts = {
    pfn,
    exclusive: (info.pageFlags & PG_ANON_EXCLUSIVE) !== 0,
    ksm: (info.mapping & 3) === 3,
    large: (info.folioFlags & PG_HEAD) !== 0,
    lru: (info.folioFlags & PG_LRU) !== 0,
    swapcache: (info.folioFlags & PG_SWAPCACHE) !== 0,
    writeback: (info.folioFlags & PG_WRITEBACK) !== 0,
    unshare,
  };
  const isolated = k.maybeIsolate(folio);
  const helpers = k.wpHelpers.for(folio, info.swapcount);
  const d = k.strategy.wpReuse(facts, helpers);
  if (k.trace.points.do_wp_page.listening) emitDoWpPage(k, p.pid, addr, pfn, unshare, d);
  if (d.reuse) {
    if (isolated) k.putbackIsolated(folio);
    const flags = (d.setExclusive ? C.REUSE_SET_EXCLUSIVE : 0) | (d.moveAnon ? C.REUSE_MOVE_ANON : 0) |
      (unshare ? C.REUSE_UNSHARE : 0);
    ops.wpPageReuse(p.mm, addr, flags, anonVma);
    k.stats.inc(unshare ? Stat.unshareReuses : Stat.reuses);
    return;
  }
  // wp_page_copy(): the facts are read before the copy changes the counts, and told once it succeeded
  const watched = k.trace.points.wp_page_copy.listening;
  const copyFacts = watched ? {
    // of a large folio, only this page's mappings and references can observe what is copied
    mapcount: facts.large ? ops.pageMapcount(pfn) : ops.folioMapcount(folio), swapcount: helpers.swapcount(),
    snapshotRefs: k.snapshotRefs(folio, facts.large ? pfn : undefined),
    refcount: ops.folioRefCount(folio), ksm: facts.ksm,
  } : null;
  let nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
  if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
  if (isolated) k.putbackIsolated(folio);
  if (nw === C.ACCESS_SWAP || nw === C.ACCESS_NEED_FAULT) return; // reclaim took the page: retry
  if (nw < 0) throw enomem(k, p, addr, "COW fault");
  if (watched) k.trace.points.wp_page_copy.emit({ pid: p.pid, address: addr, pfn, newPfn: nw, zeroPage: false, unshare, rule: d.rule, facts: copyFacts });
  if (k.strategy.freeSwapCacheAfterCow) free_swap_cache(k, folio);
  k.stats.inc(Stat.copies);
  if (unshare) k.stats.inc(Stat.unshareCopies);
}

/**
 * wp_page_copy() of a page-cache page a private mapping maps read-only: it is never reused
 * (do_wp_page() reuses anonymous pages only) — the process gets its own anonymous copy, and
 * the page stays the file's. No strategy decides anything here.
 */
function wp_page_copy_file(k: MmKernel, p: MmProcess, vma: Vma, addr: number, pfn: number, index: number, copyFlags: number): void {
  const ops = k.ops;
  const anonVma = vma.anonVma!.id;
  let nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
  if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = ops.wpPageCopy(p.mm, addr, anonVma, index, copyFlags);
  if (nw === C.ACCESS_SWAP || nw === C.ACCESS_NEED_FAULT) return; // reclaim took the page: retry
  if (nw < 0) throw enomem(k, p, addr, "COW fault on a private file page");
  k.stats.inc(Stat.fileCopies);
  if (copyFlags & C.WPCOPY_UNSHARE) k.stats.inc(Stat.unshareCopies);
  if (k.trace.points.do_cow_fault.listening) {
    k.trace.points.do_cow_fault.emit({ pid: p.pid, address: addr, objId: vma.shmem?.id ?? 0, index, pfn, newPfn: nw, mapped: true });
  }
}

/**
 * free_swap_cache() after wp_page_copy() (f4c4a3f48480, 5.14): the old folio, now mapped by
 * nobody, leaves the swap cache when no swap entry needs it — otherwise it would sit there, idle,
 * until reclaim found it.
 */
function free_swap_cache(k: MmKernel, folio: number): void {
  const ops = k.ops;
  if (!ops.pageTestFlag(folio, C.PG_swapcache) || ops.folioIsMapped(folio) || ops.pageTestFlag(folio, C.PG_locked)) return;
  if (ops.folioFreeSwap(folio) && k.trace.points.free_swap_cache.listening) k.trace.points.free_swap_cache.emit({ pfn: folio });
}

/** ENOMEM for a failed fault, saying what was missing. */
export function enomem(k: MmKernel, p: MmProcess, addr: number, what: string): CowsimError {
  const why = k.allocFailure();
  return new CowsimError("ENOMEM", `out of memory: pid ${p.pid}'s ${what} at ${hex(addr)} ` + (
    why === "injected" ? "failed an allocation on purpose (fault injection)"
      : why === "page-table" ? "found no page table (the page-table pool is exhausted)"
        : "found no free frame, and reclaim freed none"));
}

/** The kernel helpers a strategy may call from do_wp_page(); one per kernel, re-aimed per fault. */
export class WpHelperSet implements WpHelpers {
  private folio = 0;
  private swap = 0;

  constructor(private readonly k: MmKernel) {}

  for(folio: number, swapcount: number): this {
    this.folio = folio;
    this.swap = swapcount;
    return this;
  }

  refcount(): number { return this.k.ops.folioRefCount(this.folio); }
  mapcount(): number {
    const ops = this.k.ops;
    if (!ops.folioTestLarge(this.folio)) return ops.folioMapcount(this.folio);
    return pageTransHugeMapcount(ops, this.folio);
  }
  swapcount(): number { return this.swap; }
  lruAddDrain(): void { this.k.ops.lruAddDrain(); }
  freeSwap(): boolean { return this.k.ops.folioFreeSwap(this.folio); }
  trylock(): boolean {
    const ops = this.k.ops;
    if (ops.pageTestFlag(this.folio, C.PG_locked)) return false;
    ops.pageSetFlag(this.folio, C.PG_locked);
    return true;
  }
  unlock(): void { this.k.ops.pageClearFlag(this.folio, C.PG_locked); }
}
