/**
 * Transparent huge pages (mm/huge_memory.c): the policy of /sys/kernel/mm/transparent_hugepage
 * — the global `enabled`, each size's `hugepages-<size>kB/enabled`, `use_zero_page` — and which
 * folio orders it allows a VMA (thp_vma_allowable_orders()). Large folios themselves (faults,
 * split, collapse) build on this.
 */
import type { Vma } from "./vma.js";
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_SHARED, VM_MAYSHARE } from "./vma.js";
import { PAGE_SIZE } from "./uapi.js";

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
  const size = PAGE_SIZE * 2 ** order;
  const haddr = Math.floor(addr / size) * size;
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
      if (thp_vma_suitable_order(vma, vma.end - PAGE_SIZE * 2 ** order, order)) break;
      orders &= ~(1 << order);
      order = orders ? 31 - Math.clz32(orders) : 0;
    }
    if (!orders) return 0;
  }
  if (!vma.anonVma) return tva & (TVA_SMAPS | TVA_IN_PF) ? orders : 0;
  return orders;
}
