/**
 * Counters: one named list, one place that increments them. Events the core counts itself
 * (vmstat in Wasm: faults it took on its fast path, reuses, copies) are read from there;
 * the rest are counted here. `Kernel.counters()` merges both into one flat record.
 */
import type { Core } from "../core/core.js";
import { C } from "../core/index.js";

/** Counters kept in TypeScript, in the order of their slots. */
const TS_COUNTERS = [
  ["wpFaults", "write-protect faults handled by do_wp_page() (writes and unshares)"],
  ["reuses", "do_wp_page() kept the page: wp_page_reuse() (anonymous pages)"],
  ["copies", "pages copied by COW: wp_page_copy() of a real page, and fork's early copies"],
  ["zeroPageCopies", "wp_page_copy() of the shared zero page (a fresh page, nothing copied)"],
  ["unshareReuses", "FAULT_FLAG_UNSHARE faults that only marked the page exclusive"],
  ["unshareCopies", "FAULT_FLAG_UNSHARE faults that copied (part of copies)"],
  ["forkCopies", "possibly pinned pages fork copied instead of sharing (part of copies)"],
  ["shmemFaults", "faults that mapped a shared (shmem) page"],
  ["fileCopies", "private copies of page-cache pages: do_cow_fault() and wp_page_copy() of a file page (not in copies)"],
  ["shmemSwapouts", "shmem pages written to swap by shmem_writepage()"],
  ["shmemSwapins", "shmem pages read back from swap by shmem_swapin_folio()"],
  ["shmemTruncated", "page-cache pages and swap entries shmem_undo_range() removed (hole punch, truncate)"],
  ["forks", "fork() calls"],
  ["exits", "exit() calls"],
  ["isolations", "transient isolation references taken at a fault (transient.isolation)"],
  ["pageouts", "anonymous pages written to swap and freed by reclaim"],
  ["swapins", "swap entries faulted back in by do_swap_page()"],
  ["gupFastPages", "pages GUP-fast took"],
  ["gupSlowPages", "pages the GUP slow path took"],
  ["faultWaits", "faults that had to wait (a locked folio, a page under migration): the access stood blocked until resumed"],
  ["pgmigrateSuccess", "PGMIGRATE_SUCCESS: pages migrate_pages() moved to a new frame"],
  ["pgmigrateFail", "PGMIGRATE_FAIL: pages migrate_pages() tried and left where they were"],
  ["poisonedPages", "num_poisoned_pages: pages memory_failure() took as poisoned (HardwareCorrupted, in pages)"],
  ["thp_fault_alloc", "PMD-sized THPs a fault mapped (/proc/vmstat thp_fault_alloc)"],
  ["thp_fault_fallback", "THP faults that found no free 2 MiB and fell back to small pages (thp_fault_fallback)"],
  ["thp_split_pmd", "PMD mappings split into PTE tables (thp_split_pmd)"],
  ["thp_zero_page_alloc", "huge zero pages allocated (thp_zero_page_alloc)"],
  ["thp_collapse_alloc", "THPs MADV_COLLAPSE or khugepaged made (thp_collapse_alloc)"],
  ["thp_collapse_alloc_failed", "collapses that found no free 2 MiB (thp_collapse_alloc_failed)"],
  ["thpWpReuses", "do_huge_pmd_wp_page() kept the THP mapped by its PMD"],
  ["deviceMigrated", "pages migrate_vma moved into device-private memory"],
  ["deviceFaults", "CPU faults on device-private entries (migrate_to_ram())"],
  ["deviceMigratedToRam", "pages migrate_vma moved from device-private memory back to system memory"],
  ["deviceExclusive", "pages make_device_exclusive_range() made exclusive to a device"],
  ["deviceExclusiveRestored", "device-exclusive entries mapped again (restore_exclusive_pte(): a CPU fault or fork)"],
  ["thp_migration_success", "PMD-sized THPs migrate_pages() moved whole (thp_migration_success)"],
  ["thp_migration_fail", "PMD-sized THPs migrate_pages() left where they were (thp_migration_fail)"],
  ["userfaults", "faults handle_userfault() told a userfaultfd of (missing, wp and minor)"],
  ["uffdFilled", "pages UFFDIO_COPY, ZEROPAGE, CONTINUE and POISON filled"],
  ["uffdWpProtects", "UFFDIO_WRITEPROTECT ranges write-protected (uffd_wp_range() with MM_CP_UFFD_WP), per VMA"],
  ["uffdWpResolves", "uffd-wp ranges resolved (MM_CP_UFFD_WP_RESOLVE: UFFDIO_WRITEPROTECT without MODE_WP, unregister, close), per VMA"],
  ["thp_migration_split", "PMD-sized THPs migrate_pages() split to migrate the pieces (thp_migration_split)"],
] as const;

/** The oracle's verdicts, reported with the counters (0 when the oracle is off). */
const ORACLE_COUNTERS = [
  ["necessaryCow", "copies the oracle judged necessary (someone else could observe the old page)"],
  ["unnecessaryCow", "copies the oracle judged unnecessary (nobody else could observe the page)"],
  ["wrongCow", "copies that left a pin pointing at a page the process no longer maps"],
  ["missedCow", "reads that observed a value the process must not see"],
] as const;

export type TsCounter = (typeof TS_COUNTERS)[number][0];
type OracleCounter = (typeof ORACLE_COUNTERS)[number][0];

/** Counters the core keeps (vmstat), under the names the kernel layer reports them. */
const CORE_COUNTERS: readonly [string, string, string][] = [
  ["anonFaults", "FAULT_ANON", "do_anonymous_page() mapped a fresh page"],
  ["zeroPageFaults", "FAULT_ZERO_PAGE", "do_anonymous_page() mapped the shared zero page"],
  ["pagesAllocated", "PGALLOC", "order-0 frames allocated"],
  ["pagesFreed", "PGFREE", "order-0 frames freed"],
  ["pageTablesAllocated", "PGTABLE_ALLOC", "page tables allocated"],
  ["ptesSharedAtFork", "FORK_PTES_SHARED", "PTEs copy_page_range() shared with a child"],
  ["ptesZapped", "ZAP_PTES", "present PTEs zapped"],
  ["lruBatchDrained", "LRU_BATCH_DRAINED", "folios moved from per-CPU LRU batches to the LRU"],
];

/** The per-size mTHP counters (hugepages-<size>kB/stats), summed over every size. */
const MTHP_COUNTERS: readonly [string, number, string][] = [
  ["mthpFaultAlloc", C.MTHP_STAT_ANON_FAULT_ALLOC, "large folios do_anonymous_page() mapped (anon_fault_alloc, every size)"],
  ["mthpFaultFallback", C.MTHP_STAT_ANON_FAULT_FALLBACK, "large-folio allocations of a fault that fell back to a lower order (anon_fault_fallback)"],
  ["mthpSplit", C.MTHP_STAT_SPLIT, "large folios split into order-0 folios (split)"],
  ["mthpSplitFailed", C.MTHP_STAT_SPLIT_FAILED, "splits refused: references beyond mappings and the swap cache (split_failed)"],
  ["mthpSplitDeferred", C.MTHP_STAT_SPLIT_DEFERRED, "large folios queued for deferred split, partially mapped (split_deferred)"],
  ["mthpSwpoutFallback", C.MTHP_STAT_SWPOUT_FALLBACK, "large folios reclaim split to swap out page by page (swpout_fallback)"],
];

/**
 * The decisions the core takes itself (FAST_WP, FAST_SWAP, COPY_EARLY_IN_CORE), counted where
 * TypeScript's would: each counter and the vmstat items added to it.
 */
const CORE_DECIDED: readonly (readonly [TsCounter, readonly string[]])[] = [
  ["wpFaults", ["WP_CORE_REUSE", "WP_CORE_COPY", "WP_CORE_ZERO"]],
  ["reuses", ["WP_CORE_REUSE"]],
  ["copies", ["WP_CORE_COPY", "FORK_CORE_COPY"]],
  ["zeroPageCopies", ["WP_CORE_ZERO"]],
  ["swapins", ["SWAPIN_CORE"]],
  ["forkCopies", ["FORK_CORE_COPY"]],
];
const CORE_DECIDED_OF = new Map<string, readonly string[]>(CORE_DECIDED);
const ORACLE_NAMES = new Set<string>(ORACLE_COUNTERS.map(([n]) => n));
const CORE_ITEM_OF = new Map(CORE_COUNTERS.map(([n, item]) => [n, item]));
const MTHP_ITEM_OF = new Map(MTHP_COUNTERS.map(([n, item]) => [n, item]));

/** Slots of the TypeScript counters: `stats.inc(Stat.copies)`. */
export const Stat = Object.fromEntries(TS_COUNTERS.map(([n], i) => [n, i])) as { readonly [K in TsCounter]: number };

/** Descriptions of every counter `counters()` returns. @public */
export const COUNTER_DESCRIPTIONS: Readonly<Record<string, string>> = Object.fromEntries([
  ...TS_COUNTERS.map(([n, d]) => [n, d]),
  ...ORACLE_COUNTERS.map(([n, d]) => [n, d]),
  ...CORE_COUNTERS.map(([n, , d]) => [n, d]),
  ...MTHP_COUNTERS.map(([n, , d]) => [n, d]),
]);

/** Every counter, flat. @public */
export type Counters = Record<TsCounter | OracleCounter, number> & Record<string, number>;

export class Stats {
  private readonly v = new Float64Array(TS_COUNTERS.length);

  inc(slot: number, by = 1): void {
    this.v[slot]! += by;
  }

  get(slot: number): number {
    return this.v[slot]!;
  }

  snapshot(core: Core, oracle: Readonly<Record<OracleCounter, number>> | null): Counters {
    const out: Record<string, number> = {};
    TS_COUNTERS.forEach(([n], i) => { out[n] = this.v[i]!; });
    for (const [n] of ORACLE_COUNTERS) out[n] = oracle ? oracle[n] : 0;
    const vm = core.vmstat();
    for (const [name, item] of CORE_COUNTERS) out[name] = vm[item] ?? 0;
    for (const [name, item] of MTHP_COUNTERS) out[name] = core.mthpStatTotal(item);
    for (const [name, items] of CORE_DECIDED) for (const item of items) out[name]! += vm[item] ?? 0;
    return out as Counters;
  }

  /**
   * One counter of snapshot(), without making the record (a timeline samples one as it runs).
   * Undefined for a name snapshot() does not have.
   */
  value(core: Core, oracle: Readonly<Record<OracleCounter, number>> | null, name: string): number | undefined {
    const slot = Object.hasOwn(Stat, name) ? (Stat as Record<string, number>)[name] : undefined;
    if (slot !== undefined) {
      let n = this.v[slot]!;
      for (const item of CORE_DECIDED_OF.get(name) ?? []) n += core.vmstatItem(item);
      return n;
    }
    if (ORACLE_NAMES.has(name)) return oracle ? oracle[name as OracleCounter] : 0;
    const item = CORE_ITEM_OF.get(name);
    if (item !== undefined) return core.vmstatItem(item);
    const mthp = MTHP_ITEM_OF.get(name);
    return mthp === undefined ? undefined : core.mthpStatTotal(mthp);
  }
}
