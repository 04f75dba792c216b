/**
 * `mapcount`: Linux up to 5.7. A write fault reuses an anonymous page when it is mapped once and
 * no swap entry refers to it (reuse_swap_page(): mapcount + swapcount ≤ 1). Pins do not count:
 * GUP takes a reference and nothing else, fork shares pinned pages. This is the rule behind
 * CVE-2020-29374: a child that vmsplice()d a shared page and unmapped it leaves the parent
 * with mapcount 1, so the parent reuses a page the pipe still reads.
 */
import type {
  CowStrategy, KnobSpec, HugeWpFacts, WpFacts, WpHelpers, WpDecision, GupFacts, SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./strategy.js";
import { resolveKnobs, kernelRange } from "./strategy.js";

/**
 * do_swap_page() of Linux ≤ 5.17: a write fault maps the page exclusive and writable when
 * reuse_swap_page() says mapcount + swap count ≤ 1 (deleting it from the swap cache when it is
 * the last user); otherwise it is mapped read-only and the write goes to do_wp_page().
 */
export function swapinReuseSwapPage(f: SwapinFacts, h: SwapinHelpers): SwapinDecision {
  if (f.write && !f.ksm) {
    const map = h.mapcount();
    const swap = h.swapcount();
    if (map + swap <= 1) {
      if (map + swap === 1) h.deleteFromSwapCache();
      h.swapFree();
      return { exclusive: true, writable: true, rule: `do_swap_page(): reuse_swap_page(): mapcount ${map} + swap count ${swap} ≤ 1 — exclusive, writable` };
    }
  }
  h.swapFree();
  return { exclusive: false, writable: false, rule: "do_swap_page(): mapped read-only (not a write fault, or reuse_swap_page() said shared)" };
}

/**
 * do_huge_pmd_wp_page() of Linux 5.8–5.17: reuse_swap_page() on the THP —
 * page_trans_huge_map_swapcount(), the largest mapcount of any subpage (the PMD mapping counts
 * for each) plus the swap count, must be 1: only this PMD maps any of it. Otherwise the PMD is
 * split and the PTE fault decides for the subpage (3917c80280c9, 5.8). Before 5.8 the whole THP
 * was copied on such a fault; that is not modelled.
 */
export function thpReuseMapcount(f: HugeWpFacts, h: WpHelpers): WpDecision {
  if (!h.trylock()) return { reuse: false, rule: "do_huge_pmd_wp_page(): trylock_page() failed — split the PMD, fall back" };
  const map = h.mapcount();
  const swap = f.swapcache ? h.swapcount() : 0;
  if (map + swap === 1 && f.swapcache) h.freeSwap();
  h.unlock();
  if (map + swap === 1) return { reuse: true, rule: `reuse_swap_page(): THP mapcount ${map} + swap count ${swap} == 1 — reuse` };
  return { reuse: false, rule: `reuse_swap_page(): THP mapcount ${map} + swap count ${swap} > 1 — split the PMD, fall back` };
}

export const MAPCOUNT_KNOBS: readonly KnobSpec[] = [
  {
    name: "gupBreaksCow",
    commit: "17839856fd58",
    kernel: "5.8",
    description: "gup: document and work around \"COW can break either way\" issue — every GUP of a COW page breaks COW as a write fault would",
    default: false,
  },
];

export function mapcountStrategy(knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  const k = resolveKnobs("mapcount", MAPCOUNT_KNOBS, knobs);
  return {
    id: "mapcount",
    title: "page_mapcount() COW",
    kernels: kernelRange(null, "5.8", MAPCOUNT_KNOBS, k),
    commits: k.gupBreaksCow ? ["17839856fd58"] : [],
    knobs: k,
    lruBatchSize: 15,
    tracksAnonExclusive: false,
    gupBreaksCow: k.gupBreaksCow!,
    mprotectWriteUpgrade: false,
    directIoPins: false,
    clearRefsSkipsPinned: false,
    freeSwapCacheAfterCow: false,

    thpWpReuse: thpReuseMapcount,
    wpReuse(f: WpFacts, h: WpHelpers): WpDecision {
      if (f.ksm) {
        // reuse_ksm_page() is not modelled: a KSM page is always copied
        return { reuse: false, rule: "do_wp_page(): PageKsm() — copy" };
      }
      // reuse_swap_page()
      const map = h.mapcount();
      const swap = f.swapcache ? h.swapcount() : 0;
      const count = map + swap;
      if (count === 1 && f.swapcache && !f.writeback) h.freeSwap(); // delete_from_swap_cache()
      if (count <= 1) {
        return {
          reuse: true,
          rule: `reuse_swap_page(): page_mapcount() ${map} + swap count ${swap} = ${count} ≤ 1 — reuse`,
          moveAnon: count === 1,
        };
      }
      return { reuse: false, rule: `reuse_swap_page(): page_mapcount() ${map} + swap count ${swap} = ${count} > 1 — copy` };
    },
    forkDefers: "none",
    forkPinned: () => ({ copy: false, rule: "copy_present_pte(): Linux ≤ 5.8 shares every anonymous page at fork" }),
    gupMustUnshare: (_f: GupFacts) => false,
    swapin: swapinReuseSwapPage,
    reclaimsPinned: true,
    unmap: { shareAnon: false, swpExclusive: false },
  };
}
