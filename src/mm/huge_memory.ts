/**
 * Transparent huge pages (mm/huge_memory.c): the policy of /sys/kernel/mm/transparent_hugepage
 * — the global `enabled`, each size's `hugepages-<size>kB/enabled`, `use_zero_page` — and which
 * folio orders it allows a VMA (thp_vma_allowable_orders()); then the PMD-mapped THP: its
 * fault (do_huge_pmd_anonymous_page(), the huge zero page), its write fault
 * (do_huge_pmd_wp_page()) and the split of its PMD (__split_huge_pmd()). The core does the
 * page-table work (assembly/huge_memory.ts).
 */
import { C } from "../core/index.js";
import type { Vma } from "./vma.js";
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED, VM_MAYSHARE, VM_WRITE } from "./vma.js";
import { PAGE_SIZE } from "./uapi.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import type { HugeWpFacts } from "../policy/strategy.js";
import { Stat } from "./stats.js";
import { anon_vma_prepare } from "./rmap.js";
import { CowsimError } from "../errno.js";
import { hex } from "./vma.js";
import { pmdOffset, pmdStart } from "./align.js";

/** transparent_hugepage/enabled. @public */
export type ThpEnabled = "always" | "madvise" | "never";
/** hugepages-<size>kB/enabled: "inherit" follows the global setting. @public */
export type ThpSizeEnabled = "always" | "inherit" | "madvise" | "never";
/** The anonymous THP sizes x86-64 has: mTHP 16K … 1M (orders 2 … 8) and the PMD size 2M (order 9). @public */
export type ThpSize = "16K" | "32K" | "64K" | "128K" | "256K" | "512K" | "1M" | "2M";

/** The THP policy, as the sysfs files under /sys/kernel/mm/transparent_hugepage set it. @public */
export interface ThpOptions {
  /** transparent_hugepage/enabled (default "always", the upstream Kconfig default). */
  readonly enabled?: ThpEnabled;
  /**
   * hugepages-<size>kB/enabled per size (default: "inherit" for 2M, "never" for every mTHP
   * size, as hugepage_init_sysfs() sets them).
   */
  readonly sizes?: Readonly<Partial<Record<ThpSize, ThpSizeEnabled>>>;
  /** transparent_hugepage/use_zero_page: a read fault maps the huge zero page (default true). */
  readonly useZeroPage?: boolean;
}

/** PMD_ORDER on x86-64: a 2 MiB folio. */
export const PMD_ORDER = 9;
/** THP_ORDERS_ALL_ANON: orders 2 … PMD_ORDER (order 1 has no room for a large folio's anon fields). */
export const THP_ORDERS_ALL_ANON = ((1 << (PMD_ORDER + 1)) - 1) & ~0b11;

/** Each size's order. */
export const THP_SIZE_ORDERS: Readonly<Record<ThpSize, number>> = {
  "16K": 2, "32K": 3, "64K": 4, "128K": 5, "256K": 6, "512K": 7, "1M": 8, "2M": 9,
};
const ENABLED: readonly string[] = ["always", "madvise", "never"];
const SIZE_ENABLED: readonly string[] = ["always", "inherit", "madvise", "never"];

/** The policy resolved into the kernel's masks (huge_anon_orders_always/madvise/inherit). */
export interface ThpPolicy {
  readonly enabled: ThpEnabled;
  readonly always: number;
  readonly madvise: number;
  readonly inherit: number;
  readonly useZeroPage: boolean;
}

/** The policy Linux 6.12 boots with. */
export const THP_DEFAULTS: ThpPolicy = {
  enabled: "always", always: 0, madvise: 0, inherit: 1 << PMD_ORDER, useZeroPage: true,
};

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : String(v));

/**
 * Resolves the options into masks, or says what is wrong with them (each problem as
 * [option, message], for the kernel options' report).
 */
export function thpPolicyOf(o: unknown): { policy?: ThpPolicy; problems: [string, string][] } {
  if (o === undefined) return { policy: THP_DEFAULTS, problems: [] };
  const problems: [string, string][] = [];
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    return { problems: [["thp", `must be { enabled, sizes, useZeroPage } (each may be left out), not ${show(o)}`]] };
  }
  const t = o as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!["enabled", "sizes", "useZeroPage"].includes(key) && t[key] !== undefined) problems.push([`thp.${key}`, "is no option of thp (enabled, sizes, useZeroPage)"]);
  }
  let enabled: ThpEnabled = THP_DEFAULTS.enabled;
  if (t.enabled !== undefined) {
    if (typeof t.enabled === "string" && ENABLED.includes(t.enabled)) enabled = t.enabled as ThpEnabled;
    else problems.push(["thp.enabled", `must be "always", "madvise" or "never", not ${show(t.enabled)}`]);
  }
  let { always, madvise, inherit } = THP_DEFAULTS;
  if (t.sizes !== undefined) {
    if (t.sizes === null || typeof t.sizes !== "object" || Array.isArray(t.sizes)) {
      problems.push(["thp.sizes", `must map sizes (${Object.keys(THP_SIZE_ORDERS).join(", ")}) to "always", "inherit", "madvise" or "never", not ${show(t.sizes)}`]);
    } else {
      for (const [size, v] of Object.entries(t.sizes as Record<string, unknown>)) {
        const order = THP_SIZE_ORDERS[size as ThpSize];
        if (order === undefined) {
          problems.push([`thp.sizes.${size}`, `is no THP size of x86-64 (${Object.keys(THP_SIZE_ORDERS).join(", ")})`]);
          continue;
        }
        if (typeof v !== "string" || !SIZE_ENABLED.includes(v)) {
          problems.push([`thp.sizes.${size}`, `must be "always", "inherit", "madvise" or "never", not ${show(v)}`]);
          continue;
        }
        // each size is in exactly one of the three masks, or none (thpsize_enabled_store())
        const bit = 1 << order;
        always &= ~bit; madvise &= ~bit; inherit &= ~bit;
        if (v === "always") always |= bit;
        else if (v === "madvise") madvise |= bit;
        else if (v === "inherit") inherit |= bit;
      }
    }
  }
  let useZeroPage = THP_DEFAULTS.useZeroPage;
  if (t.useZeroPage !== undefined) {
    if (typeof t.useZeroPage === "boolean") useZeroPage = t.useZeroPage;
    else problems.push(["thp.useZeroPage", `must be true or false, not ${show(t.useZeroPage)}`]);
  }
  return problems.length ? { problems } : { policy: { enabled, always, madvise, inherit, useZeroPage }, problems };
}

/** What asks: a page fault, /proc/pid/smaps, khugepaged (the TVA_* flags). */
export const TVA_SMAPS = 1;
export const TVA_IN_PF = 2;
export const TVA_ENFORCE_SYSFS = 4;

/**
 * thp_vma_suitable_order(): the naturally aligned 2^order pages around `addr` lie inside the
 * VMA (an anonymous VMA needs no pgoff alignment).
 */
export function thp_vma_suitable_order(vma: Vma, addr: number, order: number): boolean {
  // a shift, not 2 ** order: a variable exponent is a slow Math.pow, and this runs on every fault
  const size = PAGE_SIZE * (1 << order);
  const haddr = addr - (addr % size);
  return haddr >= vma.start && haddr + size <= vma.end;
}

/**
 * thp_vma_allowable_orders(): the orders of `orders` (a bitmask) a large folio of this VMA may
 * have. With TVA_ENFORCE_SYSFS the sysfs policy decides first: a size set to "always", or to
 * "madvise" in a VM_HUGEPAGE VMA, or to "inherit" when the global setting is "always" (or
 * "madvise" in a VM_HUGEPAGE VMA). Then __thp_vma_allowable_orders(): VM_NOHUGEPAGE disables
 * THP; outside a fault the VMA must hold at least one folio of the order, aligned; and an
 * anonymous VMA without an anon_vma yet is eligible only for a fault or smaps.
 */
export function thp_vma_allowable_orders(policy: ThpPolicy, vma: Vma, vmFlags: number, tva: number, orders: number): number {
  // shared anonymous memory is shmem: its THP follows shmem's own policy, not modelled yet
  if (vma.shmem || vmFlags & (VM_SHARED | VM_MAYSHARE)) return 0;
  if (tva & TVA_ENFORCE_SYSFS) {
    let mask = policy.always;
    if (vmFlags & VM_HUGEPAGE) mask |= policy.madvise;
    if (policy.enabled === "always" || (vmFlags & VM_HUGEPAGE && policy.enabled !== "never")) mask |= policy.inherit;
    orders &= mask;
    if (!orders) return 0;
  }
  orders &= THP_ORDERS_ALL_ANON;
  if (!orders) return 0;
  if (vmFlags & VM_NOHUGEPAGE) return 0;
  if (!(tva & TVA_IN_PF)) {
    // the highest order with a whole aligned folio before the VMA's end, and all below it
    let order = 31 - Math.clz32(orders);
    while (orders) {
      if (thp_vma_suitable_order(vma, vma.end - PAGE_SIZE * (1 << order), order)) break;
      orders &= ~(1 << order);
      order = orders ? 31 - Math.clz32(orders) : 0;
    }
    if (!orders) return 0;
  }
  if (!vma.anonVma) return tva & (TVA_SMAPS | TVA_IN_PF) ? orders : 0;
  return orders;
}

// ---- PMD-mapped THP: faults, write faults, splits ----------------------------------------------

/**
 * create_huge_pmd()'s test in __handle_mm_fault(): a none PMD at `addr` takes a THP fault when
 * the policy allows a PMD-sized folio in this VMA (thp_vma_allowable_orders() for a fault) and
 * the aligned 2 MiB around `addr` lies inside it (thp_vma_suitable_order()).
 */
export function thpPmdFaultAllowed(k: MmKernel, vma: Vma, addr: number): boolean {
  return thp_vma_suitable_order(vma, addr, PMD_ORDER) && thpPmdFaultsPossible(k, vma);
}

/** thp_vma_allowable_orders() for a PMD fault anywhere in `vma`: false, and no address of it takes one. */
export function thpPmdFaultsPossible(k: MmKernel, vma: Vma): boolean {
  return thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, 1 << PMD_ORDER) !== 0;
}

/** What do_huge_pmd_anonymous_page() ended in. */
export type HugeFaultResult = "mapped" | "fallback" | "retry";

/**
 * do_huge_pmd_anonymous_page(): the VMA gets its anon_vma (vmf_anon_prepare()); a read fault
 * maps the huge zero page when use_zero_page allows (mm_get_huge_zero_folio(), allocated on
 * first use: THP_ZERO_PAGE_ALLOC); otherwise a fresh zeroed THP (THP_FAULT_ALLOC). No free
 * aligned 2 MiB: THP_FAULT_FALLBACK, and the caller takes the PTE path. No page table: ENOMEM.
 */
export function do_huge_pmd_anonymous_page(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean, noZeroPage: boolean): HugeFaultResult {
  const ops = k.ops;
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  const haddr = pmdStart(addr);
  const useZero = !write && !noZeroPage && k.thp.useZeroPage;
  if (useZero && k.hugeZeroFolio === 0) {
    const folio = ops.hugeZeroFolioAlloc();
    if (folio === null) {
      k.stats.inc(Stat.thp_fault_fallback);
      return "fallback";
    }
    k.hugeZeroFolio = folio;
    k.stats.inc(Stat.thp_zero_page_alloc);
  }
  const flags = (useZero ? 0 : C.HUGE_ALLOC) | (vma.flags & VM_WRITE ? C.HUGE_VM_WRITE : 0);
  const r = ops.doHugePmdAnonymousPage(p.mm, haddr, vma.anonVma!.id, vma.index(haddr), vma.pageProt, flags, k.hugeZeroFolio);
  if (r === C.ACCESS_ENOMEM) throw enomem(k, p, addr, "THP fault");
  if (r === C.HUGE_PMD_BUSY) return "retry";
  if (r === C.HUGE_NO_FOLIO) {
    k.stats.inc(Stat.thp_fault_fallback);
    return "fallback";
  }
  if (!useZero) k.stats.inc(Stat.thp_fault_alloc);
  if (k.trace.points.do_huge_pmd_anonymous_page.listening) {
    k.trace.points.do_huge_pmd_anonymous_page.emit({ pid: p.pid, address: haddr, pfn: useZero ? k.hugeZeroFolio : ops.pmdFolio(p.mm, haddr), zero: useZero });
  }
  return "mapped";
}

const PG_SWAPCACHE = 2 ** C.PG_swapcache;
const PG_ANON_EXCLUSIVE = 2 ** C.PG_anon_exclusive;

/**
 * do_huge_pmd_wp_page() (through wp_huge_pmd()): a write — or, `unshare`, a R/O pin's
 * FAULT_FLAG_UNSHARE — met a read-only PMD-mapped THP. The huge zero page is split into PTEs of
 * the small zero page; an anonymous THP is reused when the strategy says so (thpWpReuse());
 * otherwise the PMD is split (VM_FAULT_FALLBACK) and the access retries on the PTE, whose
 * do_wp_page() copies only that subpage. Returns once the fault is handled or needs a retry.
 */
export function do_huge_pmd_wp_page(k: MmKernel, p: MmProcess, vma: Vma, addr: number, unshare: boolean): void {
  const ops = k.ops;
  const info = ops.hugePmdFaultInfo(p.mm, addr);
  if (typeof info === "number") return; // no PMD leaf any more: the access retries
  const { folio } = info;
  if (info.kind === "zero") {
    split_huge_pmd(k, p, vma, addr, "do_huge_pmd_wp_page(): the huge zero page");
    return;
  }
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  const facts: HugeWpFacts = {
    pfn: folio, exclusive: (info.pageFlags & PG_ANON_EXCLUSIVE) !== 0, swapcache: (info.folioFlags & PG_SWAPCACHE) !== 0, unshare,
  };
  const d = k.strategy.thpWpReuse?.(facts, k.wpHelpers.for(folio, info.swapcount)) ??
    { reuse: false, rule: "the strategy has no thpWpReuse(): split the PMD, fall back" };
  if (k.trace.points.do_huge_pmd_wp_page.listening) {
    k.trace.points.do_huge_pmd_wp_page.emit({ pid: p.pid, address: addr, pfn: folio, unshare, reuse: d.reuse, rule: d.rule });
  }
  if (d.reuse) {
    const flags = (d.setExclusive ? C.REUSE_SET_EXCLUSIVE : 0) | (d.moveAnon ? C.REUSE_MOVE_ANON : 0) | (unshare ? C.REUSE_UNSHARE : 0);
    ops.hugePmdReuse(p.mm, addr, flags, vma.anonVma!.id);
    k.stats.inc(Stat.thpWpReuses);
    return;
  }
  split_huge_pmd(k, p, vma, addr, d.rule);
}

/**
 * try_to_migrate()'s flags for this kernel: MIGRATE_SHARE_ANON from 5.19 (an exclusive page is
 * shared first, a possibly pinned one stays mapped), MIGRATE_READ_EXCLUSIVE where readable
 * migration entries remember PageAnonExclusive (6c287605fd56).
 */
export function try_to_migrate_flags(k: MmKernel): number {
  return (k.strategy.unmap.shareAnon ? C.MIGRATE_SHARE_ANON : 0) |
    ((k.strategy.migrationReadExclusive ?? k.strategy.tracksAnonExclusive) ? C.MIGRATE_READ_EXCLUSIVE : 0);
}

/**
 * __split_huge_pmd() of the PMD over `addr`, if a PMD leaf or PMD migration entry is there
 * (THP_SPLIT_PMD). `freeze` asks for migration entries, as try_to_migrate() of
 * split_huge_page() does (split_huge_pmd_address(freeze = true)): from 5.19 only once the THP
 * could be shared (rule (c)), before unconditionally. Returns whether it froze. A split never
 * runs out of memory: the PMD's deposited table becomes its PTE table.
 */
export function split_huge_pmd(k: MmKernel, p: MmProcess, vma: Vma, addr: number, why: string, freeze = false): boolean {
  const ops = k.ops;
  const watched = k.trace.points.split_huge_pmd.listening;
  const pfn = watched ? ops.pmdFolio(p.mm, addr) : 0;
  const r = ops.splitHugePmd(p.mm, addr, vma.pageProt, freeze ? C.SPLIT_FREEZE | try_to_migrate_flags(k) : 0);
  if (r === -22) return false; // nothing huge there
  if (r === C.ACCESS_ENOMEM) throw enomem(k, p, addr, "THP split");
  if (r < 0) throw new Error(`cowsim: split_huge_pmd failed with ${r}`);
  k.stats.inc(Stat.thp_split_pmd);
  const haddr = pmdStart(addr);
  if (watched) k.trace.points.split_huge_pmd.emit({ pid: p.pid, address: haddr, pfn, frozen: r === C.SPLIT_FROZEN, why });
  return r === C.SPLIT_FROZEN;
}

/**
 * split_huge_pmd_address() for every PMD leaf in [start, end) that the range covers only in
 * part: what zap, mprotect, mremap and madvise need before they work on PTEs
 * (vma_adjust_trans_huge() at VMA boundaries, zap_pmd_range()'s partial case).
 */
export function split_huge_pmds_partly_in(k: MmKernel, p: MmProcess, vma: Vma, start: number, end: number, why: string): void {
  for (const a of [start, end]) {
    if (pmdOffset(a) === 0) continue;
    const haddr = pmdStart(a);
    if (k.ops.hugePmdAt(p.mm, haddr) !== 0) split_huge_pmd(k, p, vma, haddr, why);
  }
}

/** ENOMEM for a THP fault or split that found no page table (a THP itself falls back instead). */
function enomem(k: MmKernel, p: MmProcess, addr: number, what: string): CowsimError {
  const why = k.allocFailure() === "injected" ? "failed an allocation on purpose (fault injection)" : "found no page table (the page-table pool is exhausted)";
  return new CowsimError("ENOMEM", `out of memory: pid ${p.pid}'s ${what} at ${hex(addr)} ${why}`);
}

/** PMD_SIZE on x86-64: 2 MiB. */
export const PMD_SIZE = PAGE_SIZE * 512;
