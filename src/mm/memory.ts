/**
 * Memory access and page faults (mm/memory.c, arch/x86/mm/fault.c): the simulated CPU's loads
 * and stores, handle_mm_fault() and its cases — do_anonymous_page(), shmem faults,
 * do_wp_page() with the strategy's reuse-or-copy decision, FAULT_FLAG_UNSHARE.
 */
import { C } from "../core/abi.generated.js";
import { CowsimError } from "../errno.js";
import type { Kernel } from "./kernel.js";
import { Stat } from "./stats.js";
import type { Process } from "./process.js";
import { type Vma, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYSHARE, hex } from "./vma.js";
import { anon_vma_prepare } from "./rmap.js";
import { PAGE_SIZE } from "./uapi.js";
import type { WpFacts, WpHelpers } from "../policy/strategy.js";
import { do_swap_page } from "./swap.js";

const MAX_RETRIES = 8;

/**
 * The VMA for an access, or SIGSEGV (EFAULT) — arch/x86/mm/fault.c's bad_area() and
 * access_error(): no VMA, a write without VM_WRITE, a read of a VMA that allows nothing.
 */
export function accessVma(p: Process, addr: number, write: boolean): Vma {
  const vma = p.vmas.lookup(addr);
  if (vma === null) throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} accessed ${hex(addr)}, which no VMA maps`);
  if (write ? !(vma.flags & VM_WRITE) : !(vma.flags & (VM_READ | VM_WRITE | VM_EXEC))) {
    throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} ${write ? "wrote to" : "read from"} ${hex(addr)} in ${vma.describe()}`);
  }
  return vma;
}

/**
 * One user access to the page at `addr`: returns the page's value for a read; stores `value`
 * for a write. Faults as the CPU would, until the access succeeds. The oracle checks every read
 * against what the process must observe.
 */
export function access(k: Kernel, p: Process, addr: number, write: boolean, value: number): number {
  const vma = accessVma(p, addr, write);
  const x = k.x;
  const lo = write ? value >>> 0 : 0;
  const hi = write ? Math.floor(value / 2 ** 32) >>> 0 : 0;
  // the fast path's faults show in vmstat: a change tells the journal to record one
  const vm = k.core.u32;
  const faultsBefore = k.journal ? vm[k.vmstatIndex + C.FAULT_ANON]! + vm[k.vmstatIndex + C.FAULT_ZERO_PAGE]! : 0;
  k.markAllocFailures();
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    const r = x.handle_access(k.ctx, p.mm, addr, write ? 1 : 0, lo, hi, vma.fastBits(),
      vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt);
    if (r >= 0) {
      if (k.journal && vm[k.vmstatIndex + C.FAULT_ANON]! + vm[k.vmstatIndex + C.FAULT_ZERO_PAGE]! !== faultsBefore) {
        noteFastFault(k, p, addr);
      }
      if (k.oracle) observe(k, p, vma, addr, write, write ? value : r);
      return write ? value : r;
    }
    handleFault(k, p, vma, addr, write, r);
  }
  throw new Error(`cowsim: access to ${hex(addr)} by pid ${p.pid} did not settle after ${MAX_RETRIES} faults`);
}

/**
 * faultin_page(): fault the page at `addr` in as GUP does — for writing (breaking COW, without
 * storing anything) or for reading — with no observation by the process. The caller checked
 * the VMA (check_vma_flags()): unlike the CPU's, GUP's faults may reach a PROT_NONE mapping
 * (FOLL_FORCE), whose entries are present to the kernel and followed as they are.
 */
export function faultIn(k: Kernel, p: Process, addr: number, write: boolean): void {
  const vma = p.vmas.lookup(addr);
  if (vma === null) throw new CowsimError("EFAULT", `pid ${p.pid}: no VMA at ${hex(addr)}`);
  k.markAllocFailures();
  for (let tries = 0; tries < MAX_RETRIES; tries++) {
    const r = k.x.handle_access(k.ctx, p.mm, addr, write ? C.ACCESS_FAULT_WRITE : 0, 0, 0, vma.fastBits(),
      vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt);
    if (r >= 0 || r === C.ACCESS_PROTNONE) return;
    handleFault(k, p, vma, addr, write, r);
  }
  throw new Error(`cowsim: faulting ${hex(addr)} in for pid ${p.pid} did not settle`);
}

// journal texts of the hot paths (module-level, so recording an entry allocates nothing)
const ZERO_FAULT = (pid: number, addr: number) => `pid ${pid} reads ${hex(addr)}: the shared zero page is mapped`;
const ANON_FAULT = (pid: number, addr: number, pfn: number) => `pid ${pid} faults ${hex(addr)} in: fresh exclusive pfn ${pfn}`;
const WP_COPY_DONE = (pid: number, addr: number, pfn: number) => `pid ${pid} now maps a copy, pfn ${pfn}, at ${hex(addr)}`;
const WP_WRITE_FAULT = (pid: number, addr: number, pfn: number, rule: string) => `pid ${pid} write fault at ${hex(addr)} on pfn ${pfn}: ${rule}`;
const WP_UNSHARE_FAULT = (pid: number, addr: number, pfn: number, rule: string) => `pid ${pid} unshare fault at ${hex(addr)} on pfn ${pfn}: ${rule}`;

/** Journals a page the core's fast path faulted in during an access (do_anonymous_page()). */
function noteFastFault(k: Kernel, p: Process, addr: number): void {
  const after = k.x.translate_one(p.mm, addr) >>> 0;
  if (after & C.TRANSLATE_FAULT) return;
  if (after === 0) {
    k.journal!.addf("do_anonymous_page", ZERO_FAULT, p.pid, addr, 0);
  } else if (p.vmas.lookup(addr)?.isPrivateAnon) {
    k.journal!.frameBorn(after);
    k.journal!.addf("do_anonymous_page", ANON_FAULT, p.pid, addr, after, after);
  }
}

/** The oracle's view of an access that completed. */
function observe(k: Kernel, p: Process, vma: Vma, addr: number, write: boolean, v: number): void {
  const o = k.oracle!;
  const vpn = Math.floor(addr / PAGE_SIZE);
  const obj = vma.shmem ? vma.shmem.id : 0;
  const index = vma.shmem ? vma.index(addr) : 0;
  if (write) {
    o.onWrite(p.pid, vpn, obj, index, v);
    if (k.journal) k.journal.store(k.x.translate_one(p.mm, addr) >>> 0, p.pid, v);
    return;
  }
  if (o.expected(p.pid, vpn, obj, index) === v) return;
  // a wrong value: find out who put it there, for the explanation
  const pfn = k.x.translate_one(p.mm, addr) >>> 0;
  const writer = k.journal?.lastWriter(pfn);
  o.onRead(p.pid, addr, vpn, obj, index, v, pfn, writer !== undefined && writer !== p.pid ? [writer] : []);
}

/** handle_mm_fault() for what the core's fast path handed back. */
function handleFault(k: Kernel, p: Process, vma: Vma, addr: number, write: boolean, code: number): void {
  switch (code) {
    case C.ACCESS_NEED_FAULT:
      if (vma.shmem) return shmemFault(k, p, vma, addr, write);
      if (vma.isPrivateAnon) return prepareAnon(k, p, vma);
      throw new Error(`cowsim: no fault handler for ${vma.describe()}`);
    case C.ACCESS_WP_FAULT:
      return do_wp_page(k, p, vma, addr, false);
    case C.ACCESS_SWAP:
      return do_swap_page(k, p, vma, addr, write);
    case C.ACCESS_ENOMEM:
      // direct reclaim, then the access retries — when a frame was missing and reclaim frees
      // one; without swap (or anything to swap), a missing page table or an injected failure, ENOMEM
      if (k.reclaimAfterFailure() > 0) return;
      throw enomem(k, p, addr, "fault");
    case C.ACCESS_MARKER:
      throw new CowsimError("EFAULT", `SIGSEGV: pid ${p.pid} touched a guard or poison marker at ${hex(addr)}`);
    default:
      throw new CowsimError("EFAULT", `pid ${p.pid}: the entry at ${hex(addr)} needs a fault path cowsim does not model yet (code ${code})`);
  }
}

/**
 * vmf_anon_prepare(): the VMA gets its anon_vma before its first anonymous page is allocated.
 * The core has allocated the page table first (do_anonymous_page()'s pte_alloc()), so a fault
 * that finds no table changes nothing, and one that then finds no frame leaves the anon_vma
 * and the table behind, as in Linux.
 */
function prepareAnon(k: Kernel, p: Process, vma: Vma): void {
  if (vma.anonVma) throw new Error("cowsim: anon fault with an anon_vma that the fast path refused");
  anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
}

/** do_read_fault() / do_shared_fault() for a shared anonymous (shmem) mapping. */
function shmemFault(k: Kernel, p: Process, vma: Vma, addr: number, write: boolean): void {
  const file = vma.shmem!;
  const x = k.x;
  const index = vma.index(addr);
  const need = x.tables_missing_at(p.mm, addr, 3);
  if (!x.pt_reserve(k.ctx, need)) {
    throw new CowsimError("ENOMEM", `out of memory: no page table for pid ${p.pid}'s shmem fault`);
  }
  let pfn: number;
  try {
    pfn = file.getPage(k.core, index);
  } catch (e) {
    x.pt_unreserve(k.ctx);
    throw e;
  }
  const r = x.map_file_pte(k.ctx, p.mm, addr, pfn, vma.pageProt, write ? 1 : 0);
  x.pt_unreserve(k.ctx);
  if (r < 0) throw new Error(`cowsim: map_file_pte failed with ${r}`);
  k.stats.inc(Stat.shmemFaults);
  k.journal?.add("shmem_fault", () => `pid ${p.pid} maps shmem page ${index} (pfn ${pfn}) at ${hex(addr)}`, [pfn]);
}

// ---- do_wp_page() ---------------------------------------------------------------------------

// page flag masks, computed once (a variable exponent is a slow Math.pow)
const PG_ANON_EXCLUSIVE = 1 << C.PG_anon_exclusive;
const PG_HEAD = 1 << C.PG_head;
const PG_LRU = 1 << C.PG_lru;
const PG_SWAPCACHE = 1 << C.PG_swapcache;
const PG_WRITEBACK = 1 << C.PG_writeback;

/**
 * do_wp_page(): a write (or, with `unshare`, a R/O GUP pin) met a present page it may not use
 * as is. Shared mappings just become writable (wp_page_shared()); the zero page is replaced by a
 * fresh page; an anonymous page is reused or copied as the strategy decides.
 */
export function do_wp_page(k: Kernel, p: Process, vma: Vma, addr: number, unshare: boolean): void {
  const x = k.x;
  const kind = x.wp_fault_info(k.ctx, p.mm, addr);
  if (kind < 0) return; // the entry changed: the access retries
  k.stats.inc(Stat.wpFaults);
  const s = k.core.scratch >>> 2;
  const w = (i: number) => k.core.u32[s + i]!;
  const pfn = w(C.WPF_PFN);
  const folio = w(C.WPF_FOLIO);

  if (vma.flags & (VM_SHARED | VM_MAYSHARE)) {
    // wp_page_shared(): nothing to copy, the mapping is shared by definition
    x.wp_page_reuse(k.ctx, p.mm, addr, 0, 0);
    k.journal?.add("wp_page_shared", () => `pid ${p.pid} may write shared pfn ${pfn}: made writable`, [pfn]);
    return;
  }
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  const anonVma = vma.anonVma!.id;
  const index = vma.index(addr);
  const copyFlags = (unshare ? C.WPCOPY_UNSHARE : 0) | (vma.flags & VM_WRITE ? C.WPCOPY_VM_WRITE : 0);

  if (kind === C.WP_ZERO) {
    let nw = x.wp_page_copy(k.ctx, p.mm, addr, anonVma, index, copyFlags);
    if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = x.wp_page_copy(k.ctx, p.mm, addr, anonVma, index, copyFlags);
    if (nw < 0) throw enomem(k, p, addr, "write fault on the zero page");
    k.stats.inc(Stat.zeroPageCopies);
    const rule = unshare ? "FAULT_FLAG_UNSHARE of the zero page" : "do_wp_page(): write to the shared zero page";
    k.oracle?.onZeroPageCopy(p.pid, addr, rule);
    if (k.trace.has("wp_page_copy")) k.trace.emit("wp_page_copy", { pid: p.pid, address: addr, pfn: 0, newPfn: nw, zeroPage: true, unshare, rule });
    k.journal?.frameBorn(nw);
    k.journal?.add("wp_page_copy", () => `pid ${p.pid} ${unshare ? "unshares" : "writes"} the zero page at ${hex(addr)}: fresh pfn ${nw}`, [nw]);
    return;
  }
  if (kind !== C.WP_ANON) throw new Error(`cowsim: write fault on a private file page at ${hex(addr)}: not modelled`);

  const pageFlags = w(C.WPF_PAGE_FLAGS);
  const folioFlags = w(C.WPF_FOLIO_FLAGS);
  const mapping = w(C.WPF_MAPPING);
  const facts: WpFacts = {
    pfn,
    exclusive: (pageFlags & PG_ANON_EXCLUSIVE) !== 0,
    ksm: (mapping & 3) === 3,
    large: (folioFlags & PG_HEAD) !== 0,
    lru: (folioFlags & PG_LRU) !== 0,
    swapcache: (folioFlags & PG_SWAPCACHE) !== 0,
    writeback: (folioFlags & PG_WRITEBACK) !== 0,
    unshare,
  };
  const isolated = k.maybeIsolate(folio);
  const helpers = k.wpHelpers.for(folio, w(C.WPF_SWAPCOUNT));
  const d = k.strategy.wpReuse(facts, helpers);
  if (d.reuse) {
    if (isolated) k.putbackIsolated(folio);
    const flags = (d.setExclusive ? C.REUSE_SET_EXCLUSIVE : 0) | (d.moveAnon ? C.REUSE_MOVE_ANON : 0) |
      (unshare ? C.REUSE_UNSHARE : 0);
    x.wp_page_reuse(k.ctx, p.mm, addr, flags, anonVma);
    k.stats.inc(unshare ? Stat.unshareReuses : Stat.reuses);
    k.journal?.addf("do_wp_page", unshare ? WP_UNSHARE_FAULT : WP_WRITE_FAULT, p.pid, addr, pfn, pfn, -1, d.rule);
    return;
  }
  // wp_page_copy(): the facts are read before the copy changes the counts, and judged once it succeeded
  const copyFacts = k.oracle ? {
    pid: p.pid, address: addr, pfn, mapcount: x.folio_mapcount(folio), swapcount: helpers.swapcount(),
    zeroPage: false, ksm: facts.ksm, snapshotRefs: k.snapshotRefs(folio), refcount: x.folio_ref_count(folio), rule: d.rule,
  } : null;
  let nw = x.wp_page_copy(k.ctx, p.mm, addr, anonVma, index, copyFlags);
  if (nw === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) nw = x.wp_page_copy(k.ctx, p.mm, addr, anonVma, index, copyFlags);
  if (isolated) k.putbackIsolated(folio);
  if (nw === C.ACCESS_SWAP || nw === C.ACCESS_NEED_FAULT) return; // reclaim took the page: retry
  if (nw < 0) throw enomem(k, p, addr, "COW fault");
  if (copyFacts) k.oracle!.onCopy(copyFacts);
  if (k.trace.has("wp_page_copy")) k.trace.emit("wp_page_copy", { pid: p.pid, address: addr, pfn, newPfn: nw, zeroPage: false, unshare, rule: d.rule });
  if (k.strategy.freeSwapCacheAfterCow) free_swap_cache(k, folio);
  k.stats.inc(Stat.copies);
  if (unshare) k.stats.inc(Stat.unshareCopies);
  if (k.journal) {
    k.journal.frameBorn(nw);
    k.journal.addf("do_wp_page", unshare ? WP_UNSHARE_FAULT : WP_WRITE_FAULT, p.pid, addr, pfn, pfn, -1, d.rule);
    k.journal.addf("wp_page_copy", WP_COPY_DONE, p.pid, addr, nw, nw, pfn);
  }
}

/**
 * free_swap_cache() after wp_page_copy() (f4c4a3f48480, 5.14): the old folio, now mapped by
 * nobody, leaves the swap cache when no swap entry needs it — otherwise it would sit there, idle,
 * until reclaim found it.
 */
function free_swap_cache(k: Kernel, folio: number): void {
  const x = k.x;
  if (!x.page_test_flag(folio, C.PG_swapcache) || x.folio_is_mapped(folio) || x.page_test_flag(folio, C.PG_locked)) return;
  if (x.folio_free_swap(folio) === 1) {
    k.journal?.add("free_swap_cache", () => `pfn ${folio}, copied away from and mapped by nobody, leaves the swap cache`, [folio]);
  }
}

/** ENOMEM for a failed fault, saying what was missing. */
function enomem(k: Kernel, p: Process, addr: number, what: string): CowsimError {
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

  constructor(private readonly k: Kernel) {}

  for(folio: number, swapcount: number): this {
    this.folio = folio;
    this.swap = swapcount;
    return this;
  }

  refcount(): number { return this.k.x.folio_ref_count(this.folio); }
  mapcount(): number { return this.k.x.folio_mapcount(this.folio); }
  swapcount(): number { return this.swap; }
  lruAddDrain(): void { this.k.x.lru_add_drain(this.k.ctx); }
  freeSwap(): boolean { return this.k.folioFreeSwap(this.folio); }
  trylock(): boolean {
    const x = this.k.x;
    if (x.page_test_flag(this.folio, C.PG_locked)) return false;
    x.page_set_flag(this.folio, C.PG_locked);
    return true;
  }
  unlock(): void { this.k.x.page_clear_flag(this.folio, C.PG_locked); }
}
