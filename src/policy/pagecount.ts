/**
 * `pagecount`: Linux 5.9 to 5.18. "mm: do_wp_page() simplification" (09854ba94c6a) reuses an
 * anonymous page only when page_count() == 1: any other reference — a GUP pin, a pipe, but also
 * a per-CPU LRU batch, the swap cache or a page isolated for migration — forces a copy. No
 * missed COW, but unnecessary COWs, and wrong COWs when a pinned page is mapped R/O again
 * (after swap-in, or fork before 5.9's early copy).
 */
import type {
  CowStrategy, KnobSpec, WpFacts, WpHelpers, WpDecision, GupFacts, SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./strategy.js";
import { resolveKnobs, kernelRange } from "./strategy.js";
import { swapinReuseSwapPage, thpReuseMapcount } from "./mapcount.js";
import { thpReusePageCount } from "./anon-exclusive.js";

export const PAGECOUNT_KNOBS: readonly KnobSpec[] = [
  {
    name: "forkCopyPinned",
    commit: "70e806e4e645",
    kernel: "5.9",
    description: "mm: Do early cow for pinned pages during fork() for ptes — fork copies a possibly pinned page instead of sharing it",
    default: true,
  },
  {
    name: "pinnedNotSwapped",
    commit: "feb889fb40fa",
    kernel: "5.11",
    description: "mm: don't put pinned pages into the swap cache — reclaim leaves possibly pinned pages alone",
    default: true,
  },
  {
    name: "clearRefsSkipsPinned",
    commit: "9348b73c2e1b",
    kernel: "5.11",
    description: "mm: don't play games with pinned pages in clear_page_refs — the soft-dirty reset leaves writable PTEs of possibly pinned pages writable",
    default: true,
  },
  {
    name: "freeSwapCacheAfterCow",
    commit: "f4c4a3f48480",
    kernel: "5.14",
    description: "mm: free idle swap cache page after COW — wp_page_copy() drops the old page from the swap cache once nothing maps it",
    default: true,
  },
  {
    name: "swapcacheReuse",
    commit: "53a05ad9f21d",
    kernel: "5.18",
    description: "mm: optimize do_wp_page() for exclusive pages in the swapcache — the swap cache's reference no longer forces a copy",
    default: false,
  },
  {
    name: "thpPagecountReuse",
    commit: "3bff7e3f1f16",
    kernel: "5.18",
    description: "mm/huge_memory: streamline COW logic in do_huge_pmd_wp_page() — a PMD-mapped THP is reused only when its reference count is 1, no longer by its mapcount",
    default: false,
  },
  {
    name: "lruDrainReuse",
    commit: "d4c470970d45",
    kernel: "5.18",
    description: "mm: optimize do_wp_page() for fresh pages in local LRU pagevecs — a page not yet on the LRU has the local batch drained (lru_add_drain()) before its count is judged (with swapcacheReuse)",
    default: false,
  },
];

export function pagecountStrategy(knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  const k = resolveKnobs("pagecount", PAGECOUNT_KNOBS, knobs);
  return {
    id: "pagecount",
    title: "page_count() COW",
    kernels: kernelRange("5.9", "5.18", PAGECOUNT_KNOBS, k),
    commits: ["09854ba94c6a", ...PAGECOUNT_KNOBS.filter((s) => k[s.name]).map((s) => s.commit)],
    knobs: k,
    lruBatchSize: 15,
    tracksAnonExclusive: false,
    gupBreaksCow: false,
    mprotectWriteUpgrade: false,
    directIoPins: false,
    clearRefsSkipsPinned: k.clearRefsSkipsPinned!,
    freeSwapCacheAfterCow: k.freeSwapCacheAfterCow!,

    thpWpReuse: k.thpPagecountReuse ? (f, h) => thpReusePageCount({ ...f, exclusive: false }, h) : thpReuseMapcount,
    wpReuse(f: WpFacts, h: WpHelpers): WpDecision {
      if (k.swapcacheReuse) {
        if (k.lruDrainReuse) {
          if (f.ksm || h.refcount() > 3) return { reuse: false, rule: `do_wp_page(): page_count() ${h.refcount()} > 3 — copy` };
          if (!f.lru) h.lruAddDrain();
        }
        const limit = 1 + (f.swapcache ? 1 : 0);
        if (f.ksm || h.refcount() > limit) {
          return { reuse: false, rule: `do_wp_page(): page_count() ${h.refcount()} > 1 + PageSwapCache() — copy` };
        }
        if (!h.trylock()) return { reuse: false, rule: "do_wp_page(): trylock_page() failed — copy" };
        if (f.swapcache) h.freeSwap();
        const rc = h.refcount();
        h.unlock();
        if (f.ksm || rc !== 1) return { reuse: false, rule: `do_wp_page(): page_count() ${rc} != 1 after try_to_free_swap() — copy` };
        return { reuse: true, rule: "do_wp_page(): page_count() == 1 — reuse", moveAnon: true };
      }
      const rc = h.refcount();
      if (f.ksm || rc !== 1) return { reuse: false, rule: `do_wp_page(): page_count() ${rc} != 1 — copy` };
      if (!h.trylock()) return { reuse: false, rule: "do_wp_page(): trylock_page() failed — copy" };
      const map = h.mapcount();
      const rc2 = h.refcount();
      h.unlock();
      if (map !== 1 || rc2 !== 1) {
        return { reuse: false, rule: `do_wp_page(): page_mapcount() ${map}, page_count() ${rc2} — copy` };
      }
      return { reuse: true, rule: "do_wp_page(): page_count() == 1 and page_mapcount() == 1 — reuse" };
    },
    forkDefers: k.forkCopyPinned ? "pinned" : "none",
    forkPinned: () => ({ copy: true, rule: "copy_present_page(): page_maybe_dma_pinned() — copy early at fork (70e806e4e645)" }),
    gupMustUnshare: (_f: GupFacts) => false,
    swapin(f: SwapinFacts, h: SwapinHelpers): SwapinDecision {
      if (!k.swapcacheReuse) return swapinReuseSwapPage(f, h);
      // 5.18: the swap cache's reference is dropped first when that can make the page exclusive
      h.swapFree();
      if (f.write && !f.ksm && h.refcount() === 2) h.freeSwap();
      const rc = h.refcount();
      if (f.write && !f.ksm && rc === 1) return { exclusive: true, writable: true, rule: "do_swap_page(): page_count() == 1 — exclusive, writable" };
      return { exclusive: false, writable: false, rule: `do_swap_page(): page_count() ${rc} — mapped read-only` };
    },
    reclaimsPinned: !k.pinnedNotSwapped,
    unmap: { shareAnon: false, swpExclusive: false },
  };
}
