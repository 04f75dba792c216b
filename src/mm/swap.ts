/**
 * Swap (mm/vmscan.c shrink_folio_list(), mm/rmap.c try_to_unmap(), mm/madvise.c MADV_PAGEOUT,
 * mm/memory.c do_swap_page(), mm/swapfile.c free_swap_and_cache()): reclaim of chosen pages
 * and under memory pressure, the swap cache, and swap-in with the exclusivity decision of the
 * strategy's generation. Nothing is ever lost: contents go to the swap slot before a frame is
 * freed, and a swap-in that finds no frame fails with ENOMEM having changed nothing.
 */
import { C } from "../core/abi.generated.js";
import { CowsimError } from "../errno.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { type Vma, VM_WRITE, VM_SOFTDIRTY, VM_UFFD_WP, hex } from "./vma.js";
import { anon_vma_prepare, rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import type { SwapinHelpers } from "../policy/strategy.js";
import { PAGE_SIZE } from "./uapi.js";

/** What reclaim did with one folio. @public */
export type ReclaimOutcome =
  | "swapped" // written to swap and freed
  | "pinned" // possibly pinned: left alone (or its unmap refused)
  | "shared" // MADV_PAGEOUT leaves pages other processes map alone
  | "swap-full" // no swap slot left
  | "kept" // unmapped into the swap cache, but something still holds the frame
  | "busy" // not an anonymous LRU page reclaim can take now
  | "not-mapped";

const SWAP_CLUSTER_MAX = 32;

/**
 * shrink_folio_list() for one anonymous folio: into the swap cache, unmapped from every PTE
 * (try_to_unmap(), through the rmap), written out, and freed when nothing else holds it.
 */
export function shrink_folio(k: Kernel, folio: number): ReclaimOutcome {
  const x = k.x;
  if (!x.folio_test_anon(folio) || x.folio_test_large(folio) || x.page_test_flag(folio, C.PG_locked) ||
      x.page_test_flag(folio, C.PG_buddy) || x.page_test_flag(folio, C.PG_reserved) || x.folio_test_ksm(folio)) {
    return "busy";
  }
  const inCache = x.page_test_flag(folio, C.PG_swapcache) === 1;
  if (!inCache) {
    // "mm: don't put pinned pages into the swap cache" (5.11)
    if (!k.strategy.reclaimsPinned && x.folio_maybe_dma_pinned(folio)) return "pinned";
    if (x.add_to_swap(folio) < 0) return "swap-full";
  }
  const slot = x.folio_swap_slot(folio) >>> 0;
  // try_to_unmap(): every mapping the rmap finds
  const id = x.folio_mapping_id(folio) >>> 0;
  const index = x.folio_index(folio) >>> 0;
  let refused = false;
  for (const hit of rmap_walk_anon(k.anonVmas, id, index)) {
    const r = x.try_to_unmap_one(hit.mm, hit.address, folio, k.strategy.unmapFlags);
    if (r === -C.EBUSY) {
      refused = true;
      break;
    }
  }
  if (refused || x.folio_is_mapped(folio)) {
    k.journal?.add("try_to_unmap", () => `reclaim cannot unmap pfn ${folio}: ${refused ? "folio_try_share_anon_rmap_pte() failed, it may be pinned" : "still mapped"}`, [folio]);
    return refused ? "pinned" : "busy";
  }
  // the folio is unmapped now; a pinned one is not written out (6.x) but stays in the cache
  if (!k.strategy.reclaimsPinned && x.folio_maybe_dma_pinned(folio)) return "pinned";
  x.swap_writepage(folio);
  if (x.remove_mapping_swapcache(folio) === 1) {
    k.stats.inc(Stat.pageouts);
    k.journal?.add("shrink_folio_list", () => `pfn ${folio} written to swap slot ${slot} and freed`, [folio]);
    return "swapped";
  }
  k.journal?.add("shrink_folio_list", () => `pfn ${folio} unmapped into swap slot ${slot}, but still referenced: kept in the swap cache`, [folio]);
  return "kept";
}

/**
 * MADV_PAGEOUT (madvise_cold_or_pageout_pte_range() + reclaim_pages()): reclaim the anonymous
 * pages of [start, end) this process alone maps. Returns each page's outcome.
 */
export function madvise_pageout(k: Kernel, p: Process, start: number, end: number): Map<number, ReclaimOutcome> {
  const out = new Map<number, ReclaimOutcome>();
  k.drainLru();
  for (const r of k.core.pagemap(p.mm, start, end)) {
    if ((r.kind & 0xff) !== C.PTE_KIND_PRESENT || r.aux & (1 << C._PAGE_BIT_SPECIAL)) continue;
    const folio = k.x.page_folio(r.pfn) >>> 0;
    if (!k.x.folio_test_anon(folio)) continue;
    // "Do not interfere with other mappings of this folio"
    if (k.x.folio_mapcount(folio) > 1) {
      out.set(r.address, "shared");
      continue;
    }
    out.set(r.address, shrink_folio(k, folio));
  }
  return out;
}

/**
 * Reclaim under memory pressure (a direct reclaim's pass over the LRU): a clock sweep over the
 * frames, taking anonymous folios on the LRU until `want` frames are free or the sweep has gone
 * round. Returns the frames it freed.
 */
export function reclaim(k: Kernel, want = SWAP_CLUSTER_MAX): number {
  const x = k.x;
  if (k.core.swapSlotsAvailable() <= 0) return 0;
  k.drainLru();
  const n = k.core.layout.nframes;
  const before = k.core.freePages();
  for (let scanned = 0; scanned < n && k.core.freePages() - before < want; scanned++) {
    const pfn = k.reclaimCursor;
    k.reclaimCursor = (pfn + 1) % n;
    if (pfn === 0 || !x.page_test_flag(pfn, C.PG_lru) || x.page_test_flag(pfn, C.PG_buddy)) continue;
    if (x.page_folio(pfn) !== pfn || !x.folio_test_anon(pfn)) continue;
    if (!x.folio_is_mapped(pfn) && !x.page_test_flag(pfn, C.PG_swapcache)) continue;
    shrink_folio(k, pfn);
  }
  const freed = k.core.freePages() - before;
  if (freed > 0) k.journal?.add("try_to_free_pages", () => `memory pressure: reclaim freed ${freed} frames`);
  return freed;
}

/** The helpers do_swap_page() offers a strategy. */
function swapinHelpers(k: Kernel, folio: number, slot: number): SwapinHelpers & { freed: boolean } {
  const x = k.x;
  const h = {
    freed: false,
    refcount: () => x.folio_ref_count(folio),
    mapcount: () => x.folio_mapcount(folio),
    swapcount: () => x.swap_count(slot),
    swapFree: () => {
      if (h.freed) return;
      h.freed = true;
      x.swap_free(slot);
    },
    freeSwap: () => x.folio_free_swap(folio) === 1,
    deleteFromSwapCache: () => { x.delete_from_swap_cache(folio); },
  };
  return h;
}

/**
 * do_swap_page(): the swap entry at `addr` is replaced by its page — from the swap cache, or
 * read back into a new frame — exclusive and writable or not as the strategy decides.
 */
export function do_swap_page(k: Kernel, p: Process, vma: Vma, addr: number, write: boolean): void {
  const x = k.x;
  const slot = x.swap_pte_slot(k.ctx, p.mm, addr);
  if (slot < 0) return; // the entry changed: the access retries
  const info = x.ctx_aux0(k.ctx);
  const swpExclusive = (info & C.SWPINFO_EXCLUSIVE) !== 0;
  const writeNotify = (!(vma.flags & VM_SOFTDIRTY) && !(info & C.SWPINFO_SOFT_DIRTY)) ||
    ((vma.flags & VM_UFFD_WP) !== 0 && (info & C.SWPINFO_UFFD_WP) !== 0);
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  let pfn = x.swap_cache_pfn(slot) >>> 0;
  const fromCache = pfn !== C.NO_PFN;
  if (!fromCache) {
    let r = x.swapin_read(k.ctx, slot);
    if (r === -C.ENOMEM && k.reclaimAfterFailure() > 0) r = x.swapin_read(k.ctx, slot);
    if (r === -C.ENOMEM) {
      throw new CowsimError("ENOMEM", `out of memory: no frame to swap ${hex(addr)} of pid ${p.pid} back in` +
        (k.allocFailure() === "injected" ? " (fault injection)" : ""));
    }
    if (r < 0) throw new Error(`cowsim: swapin_read(${slot}) failed with ${r}`);
    pfn = r;
  }
  x.folio_ref_add(pfn, 1); // the reference the mapping takes
  const h = swapinHelpers(k, pfn, slot);
  const d = k.strategy.swapin({ write, swpExclusive, ksm: x.folio_test_ksm(pfn) === 1, writeNotify }, h);
  h.swapFree();
  const writable = d.writable && d.exclusive && (vma.flags & VM_WRITE) !== 0;
  const flags = (writable ? C.SWAPIN_WRITABLE : 0) | (d.exclusive ? C.SWAPIN_EXCLUSIVE : 0) |
    (writable && write ? C.SWAPIN_DIRTY : 0);
  // __folio_set_anon(): a folio not exclusive to this VMA belongs to the oldest anon_vma
  const av = vma.anonVma!;
  const r = x.swapin_map(p.mm, addr, pfn, slot, vma.pageProt, flags, d.exclusive ? av.id : av.root.id, vma.index(addr));
  if (r < 0) throw new Error(`cowsim: swapin_map failed with ${r}`);
  k.stats.inc(Stat.swapins);
  if (k.journal) {
    if (!fromCache) k.journal.frameBorn(pfn);
    k.journal.add("do_swap_page", () => `pid ${p.pid} swaps ${hex(addr)} in from slot ${slot}${fromCache ? " (swap cache)" : ""} as pfn ${pfn}: ${d.rule}`, [pfn]);
  }
}

/** A swap slot whose last swap PTE went away while its folio sits in the swap cache. */
export function swapCacheOrphan(k: Kernel, slot: number, pfn: number): void {
  // __try_to_reclaim_swap(): an unmapped folio leaves the swap cache (and may be freed)
  if (pfn !== C.NO_PFN && k.x.folio_is_mapped(pfn) === 0 && !k.x.page_test_flag(pfn, C.PG_locked)) {
    k.x.folio_free_swap(pfn);
  }
  void slot;
}

export { PAGE_SIZE };
