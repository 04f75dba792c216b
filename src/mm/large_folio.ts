/**
 * PTE-mapped large folios (mTHP): the anonymous fault that allocates them (mm/memory.c
 * alloc_anon_folio(), do_anonymous_page()), their split (mm/huge_memory.c
 * split_huge_page_to_list_to_order(), the debugfs split_huge_pages interface, the deferred split
 * shrinker) and the per-size counters of
 * /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats.
 */
import { C, type CoreOps } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_UFFD_MISSING, VM_UFFD_WP, hex } from "./vma.js";
import {
  thp_vma_allowable_orders, thp_vma_suitable_order, split_huge_pmd, PMD_ORDER, PMD_SIZE, THP_SIZE_ORDERS, TVA_IN_PF,
  TVA_ENFORCE_SYSFS, type ThpSize,
} from "./huge_memory.js";
import { rmap_walk_anon } from "./rmap.js";
import { PAGE_SIZE } from "./uapi.js";
import { pmdOffset } from "./align.js";

/** The orders below PMD_ORDER: the PTE-mapped ones alloc_anon_folio() may choose (BIT(PMD_ORDER) - 1). */
const PTE_ORDERS = (1 << PMD_ORDER) - 1;

/** Does the policy enable any mTHP size at all? Without, no fault leaves the core's fast path. */
export function mthpPolicyEnabled(k: MmKernel): boolean {
  return ((k.thp.always | k.thp.madvise | k.thp.inherit) & PTE_ORDERS) !== 0;
}

/**
 * alloc_anon_folio()'s first step: the mTHP orders thp_vma_allowable_orders(TVA_IN_PF |
 * TVA_ENFORCE_SYSFS) allows this VMA, none while userfaultfd is armed on it (a missing or
 * write-protect fault must be per page). Independent of the address: the core's fast path
 * leaves a write fault to do_anonymous_folio() when this is not 0.
 */
export function anonFaultOrders(k: MmKernel, vma: Vma): number {
  if (!mthpPolicyEnabled(k) || vma.flags & (VM_UFFD_MISSING | VM_UFFD_WP)) return 0;
  return thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, PTE_ORDERS);
}

/** thp_vma_suitable_orders(): the orders whose naturally aligned range around `addr` lies in the VMA. */
function suitableOrders(vma: Vma, addr: number, orders: number): number {
  let out = 0;
  for (let o = 2; o < PMD_ORDER; o++) if (orders & (1 << o) && thp_vma_suitable_order(vma, addr, o)) out |= 1 << o;
  return out;
}

/**
 * do_anonymous_page() of a write fault in a VMA that allows mTHP orders (anonFaultOrders()):
 * alloc_anon_folio() picks the highest allowed order whose aligned range is all none and that
 * the allocator can serve, falling back order by order to order 0; the whole folio is mapped
 * at once. An allocation failure of every order is direct reclaim and a retry, then ENOMEM.
 */
export function do_anonymous_folio(k: MmKernel, p: MmProcess, vma: Vma, addr: number, enomem: () => CowsimError): void {
  const ops = k.ops;
  const orders = suitableOrders(vma, addr, anonFaultOrders(k, vma));
  const anonVma = vma.anonVma!.id;
  const fault = () => ops.doAnonymousFolio(p.mm, addr, orders, anonVma, vma.index(addr), vma.pageProt, vma.fastBits());
  let r = fault();
  if (r.order === C.ACCESS_ENOMEM && k.reclaimAfterFailure() > 0) r = fault();
  if (r.order === C.ACCESS_ENOMEM) throw enomem();
  if (r.order < 0) return; // something is mapped there now: the access retries
  if (k.trace.points.do_anonymous_page.listening) {
    const page = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
    k.trace.points.do_anonymous_page.emit({ pid: p.pid, address: page, pfn: ops.translateOne(p.mm, page)!, zero: false });
  }
}

/**
 * page_trans_huge_mapcount() of Linux ≤ 5.18 (reuse_swap_page()'s count of a THP): the most any
 * page of the folio is mapped by PTEs, plus its PMD mappings — the largest page_mapcount(), which
 * counts both.
 */
export function pageTransHugeMapcount(ops: CoreOps, folio: number): number {
  let most = 0;
  for (let i = 2 ** ops.folioOrder(folio) - 1; i >= 0; i--) most = Math.max(most, ops.pageMapcount(folio + i));
  return most;
}

// ---- split ------------------------------------------------------------------------------------

/** What split_folio() did with one folio. @public */
export type SplitOutcome = "split" | "busy" | "pmd-mapped" | "not-large";

const SPLIT_ERRORS: Record<number, SplitOutcome> = { [-C.EAGAIN]: "busy", [-C.EBUSY]: "pmd-mapped", [-C.EINVAL]: "not-large" };

/**
 * split_folio(): an anonymous large folio mapped by PTEs becomes order-0 folios, each keeping
 * its PageAnonExclusive and map count; pieces nothing maps are freed. Fails, changing nothing,
 * when the folio has references beyond its mappings and the swap cache (a GUP pin or
 * reference, isolation, a per-CPU LRU batch — can_split_folio()) or is locked ("busy"), when a
 * PMD still maps it ("pmd-mapped") or when it is no large anon folio ("not-large").
 */
export function split_folio(k: MmKernel, folio: number): { outcome: SplitOutcome; freed: number } {
  const order = k.ops.folioOrder(folio);
  const r = k.ops.splitFolio(folio);
  const outcome = r >= 0 ? "split" : SPLIT_ERRORS[r] ?? "not-large";
  if (k.trace.points.split_huge_page.listening) k.trace.points.split_huge_page.emit({ pfn: folio, order, outcome, freed: Math.max(r, 0) });
  return { outcome, freed: Math.max(r, 0) };
}

/**
 * split_folio() as split_huge_page_to_list_to_order() does it for a folio PMDs may still map:
 * can_split_folio() first, then unmap_folio()'s TTU_SPLIT_HUGE_PMD splits every PMD the rmap
 * finds mapping it (each subpage keeps its PageAnonExclusive in its PTE), then the folio split.
 * The PMD splits stay if the folio split then fails, as in Linux.
 */
export function split_folio_unmapping_pmds(k: MmKernel, folio: number, why: string): { outcome: SplitOutcome; freed: number } {
  const ops = k.ops;
  if (ops.folioEntireMapcount(folio) > 0 && ops.canSplitFolio(folio)) {
    for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio))) {
      if (pmdOffset(hit.address) !== 0 || ops.hugePmdAt(hit.mm, hit.address) !== 1 || ops.pmdFolio(hit.mm, hit.address) !== folio) continue;
      const p = [...k.processes.values()].find((q) => q.mm === hit.mm);
      if (p) split_huge_pmd(k, p, hit.vma, hit.address, why);
    }
  }
  return split_folio(k, folio);
}

/** What the debugfs split_huge_pages interface did over a range. @public */
export interface SplitHugePagesResult {
  /** Large folios found mapped in the range. */
  readonly found: number;
  /** Of those, split. */
  readonly split: number;
  /** Frames freed by the splits (pieces nothing mapped). */
  readonly freed: number;
}

/**
 * split_huge_pages_pid() (writing "<pid>,<start>,<end>" to /sys/kernel/debug/split_huge_pages):
 * tries split_folio() on every anonymous large folio mapped in [start, end) of the process, once
 * each. Folios a PMD maps are left to the PMD split.
 */
export function split_huge_pages_pid(k: MmKernel, p: MmProcess, start: number, end: number): SplitHugePagesResult {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start % PAGE_SIZE || end % PAGE_SIZE || start >= end) {
    throw new CowsimError("EINVAL", `split_huge_pages: [${hex(start)}, ${hex(end)}) is not a page-aligned range`);
  }
  const ops = k.ops;
  const seen = new Set<number>();
  for (const vma of p.vmas) {
    const s = Math.max(start, vma.start);
    const e = Math.min(end, vma.end);
    if (s >= e) continue;
    for (const r of k.core.pagemap(p.mm, s, e)) {
      if ((r.kind & 0xff) !== C.PTE_KIND_PRESENT || r.kind & C.PAGEMAP_HUGE || r.aux & (1 << C._PAGE_BIT_SPECIAL)) continue;
      const folio = ops.pageFolio(r.pfn);
      if (ops.folioTestLarge(folio) && ops.folioTestAnon(folio)) seen.add(folio);
    }
  }
  let split = 0, freed = 0;
  for (const folio of seen) {
    const r = split_folio(k, folio);
    if (r.outcome === "split") split++;
    freed += r.freed;
  }
  return { found: seen.size, split, freed };
}

/** deferred_split_scan(): the shrinker splits the partially mapped folios it can; the frames freed. */
export function deferred_split_scan(k: MmKernel): number {
  const freed = k.ops.deferredSplitScan();
  if (freed > 0 && k.trace.points.deferred_split_scan.listening) k.trace.points.deferred_split_scan.emit({ freed });
  return freed;
}

// ---- counters ---------------------------------------------------------------------------------

/** One size's hugepages-<size>kB/stats (anonymous memory). @public */
export interface MthpStats {
  readonly anon_fault_alloc: number;
  readonly anon_fault_fallback: number;
  /** Always 0: cowsim has no memory cgroup to refuse a charge. */
  readonly anon_fault_fallback_charge: number;
  readonly swpout: number;
  readonly swpout_fallback: number;
  readonly split: number;
  readonly split_failed: number;
  readonly split_deferred: number;
}

const ITEMS: readonly [keyof MthpStats, number][] = [
  ["anon_fault_alloc", C.MTHP_STAT_ANON_FAULT_ALLOC], ["anon_fault_fallback", C.MTHP_STAT_ANON_FAULT_FALLBACK],
  ["anon_fault_fallback_charge", C.MTHP_STAT_ANON_FAULT_FALLBACK_CHARGE], ["swpout", C.MTHP_STAT_SWPOUT],
  ["swpout_fallback", C.MTHP_STAT_SWPOUT_FALLBACK], ["split", C.MTHP_STAT_SPLIT],
  ["split_failed", C.MTHP_STAT_SPLIT_FAILED], ["split_deferred", C.MTHP_STAT_SPLIT_DEFERRED],
];

/** Every size's counters, by size ("16K" … "2M"). */
export function mthp_stats(k: MmKernel): Record<ThpSize, MthpStats> {
  const out = {} as Record<ThpSize, MthpStats>;
  for (const [size, order] of Object.entries(THP_SIZE_ORDERS) as [ThpSize, number][]) {
    const s: Record<string, number> = {};
    for (const [name, item] of ITEMS) s[name] = k.ops.mthpStat(order, item);
    out[size] = s as unknown as MthpStats;
  }
  return out;
}

// ---- reclaim ------------------------------------------------------------------------------------

/**
 * folio_likely_mapped_shared(): for a large folio, a guess — mapped more often than it has pages
 * (or by a PMD) is shared; otherwise the first page's map count decides.
 */
export function folio_likely_mapped_shared(k: MmKernel, folio: number): boolean {
  const ops = k.ops;
  const mapcount = ops.folioMapcount(folio);
  if (!ops.folioTestLarge(folio)) return mapcount > 1;
  if (mapcount <= 1) return false;
  if (ops.folioEntireMapcount(folio) > 0 || mapcount > 2 ** ops.folioOrder(folio)) return true;
  return ops.pageMapcount(folio) > 1;
}

/**
 * madvise_cold_or_pageout_pte_range()'s test before reclaiming a large folio: its whole range
 * of pages is mapped here, in order, within [start, end) (madvise_folio_pte_batch() reaches
 * folio_nr_pages()). Otherwise MADV_PAGEOUT splits it first.
 */
export function folio_mapped_within(k: MmKernel, p: MmProcess, folio: number, addr: number, pfn: number, start: number, end: number): boolean {
  const nr = 2 ** k.ops.folioOrder(folio);
  const head = addr - (pfn - folio) * PAGE_SIZE;
  if (head < start || head + nr * PAGE_SIZE > end) return false;
  for (let i = 0; i < nr; i++) if (k.ops.translateOne(p.mm, head + i * PAGE_SIZE) !== folio + i) return false;
  return true;
}

/**
 * shrink_folio_list() for an anonymous large folio not yet in the swap cache: a possibly pinned
 * one is kept; one that cannot be split is kept (activate_locked); a partially mapped one is
 * split at once ("we can free the unmapped pages without IO"); otherwise add_to_swap() of the
 * whole folio, which needs one free swap cluster of its size (THP_SWAP) — cowsim's swap has no
 * clusters, so this is always the fallback Linux takes without one: split (swpout_fallback)
 * and reclaim every piece as an order-0 folio. Returns the head's outcome as `shrink` reports
 * it for each piece: "swapped" when every mapped piece was swapped out.
 */
export function shrink_large_folio<O extends string>(k: MmKernel, folio: number, reclaimsPinned: boolean, shrink: (piece: number) => O): O | "pinned" | "busy" | "swapped" {
  const ops = k.ops;
  if (!reclaimsPinned && ops.folioMaybeDmaPinned(folio)) return "pinned";
  if (!ops.canSplitFolio(folio)) return "busy";
  const order = ops.folioOrder(folio);
  if (!ops.folioTestPartiallyMapped(folio)) ops.countMthpStat(order, C.MTHP_STAT_SWPOUT_FALLBACK);
  if (split_folio_unmapping_pmds(k, folio, "shrink_folio_list(): split_folio_to_list()").outcome !== "split") return "busy";
  let outcome: O | "swapped" = "swapped";
  for (let pfn = folio; pfn < folio + 2 ** order; pfn++) {
    if (ops.pageTestFlag(pfn, C.PG_buddy) || !ops.folioIsMapped(pfn)) continue;
    const r = shrink(pfn);
    if (r !== "swapped" && outcome === "swapped") outcome = r;
  }
  return outcome;
}
