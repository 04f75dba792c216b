/**
 * Swap (mm/vmscan.c shrink_folio_list(), mm/rmap.c try_to_unmap(), mm/madvise.c MADV_PAGEOUT,
 * mm/memory.c do_swap_page(), mm/swapfile.c free_swap_and_cache()): reclaim of chosen pages
 * and under memory pressure, the swap cache, and swap-in with the exclusivity decision of the
 * strategy's generation. Nothing is ever lost: contents go to the swap slot before a frame is
 * freed, and a swap-in that finds no frame fails with ENOMEM having changed nothing.
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_WRITE, VM_SOFTDIRTY, VM_UFFD_WP, hex } from "./vma.js";
import { anon_vma_prepare, rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import type { SwapinHelpers } from "../policy/strategy.js";
import { FaultBlocked } from "./wait.js";
import { hwpoisonSigbus } from "./memory_failure.js";
import { shmemFolioOwner, shmem_writeout } from "./shmem.js";
import { deferred_split_scan, folio_likely_mapped_shared, folio_mapped_within, shrink_large_folio, split_folio_unmapping_pmds } from "./large_folio.js";

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
const PG_HEAD = 1 << C.PG_head;
const PG_SWAPCACHE = 1 << C.PG_swapcache;
const PG_LRU = 1 << C.PG_lru;
const PG_BUDDY = 1 << C.PG_buddy;

/**
 * shrink_folio_list() for one anonymous folio: into the swap cache, unmapped from every PTE
 * (try_to_unmap(), through the rmap), written out, and freed when nothing else holds it.
 */
export function shrink_folio(k: MmKernel, folio: number): ReclaimOutcome {
  const ops = k.ops;
  const pinnedToo = k.strategy.reclaimsPinned;
  // the tests and add_to_swap() in one call (a call per test cost more than the tests)
  const slot = ops.shrinkFolioBegin(folio, pinnedToo);
  if (slot < 0) {
    switch (slot) {
      // a shmem folio goes by try_to_unmap() and shmem_writepage() (shmem.ts)
      case C.SHRINK_NOT_ANON: return shmemFolioOwner(k, folio) ? shmem_writeout(k, folio) : "busy";
      case C.SHRINK_LARGE:
        if (k.core.frames.test(folio, C.PG_swapcache)) return "busy";
        return shrink_large_folio(k, folio, pinnedToo, (piece) => shrink_folio(k, piece));
      case C.SHRINK_PINNED: return "pinned";
      case C.SHRINK_SWAP_FULL: return "swap-full";
      default: return "busy";
    }
  }
  // try_to_unmap(): every mapping the rmap finds
  const u = k.strategy.unmap;
  const unmapFlags = (u.shareAnon ? C.TTU_SHARE_ANON : 0) | (u.swpExclusive ? C.TTU_SWP_EXCLUSIVE : 0);
  let refused = false;
  const t = k.core.frames;
  for (const hit of rmap_walk_anon(k.anonVmas, t.mappingId(folio), t.index(folio))) {
    if (ops.tryToUnmapOne(hit.mm, hit.address, folio, unmapFlags) === -C.EBUSY) {
      refused = true;
      break;
    }
  }
  // written out and freed unless still mapped or possibly pinned (6.x keeps a pinned one in the cache)
  const end = refused ? C.SHRINK_MAPPED : ops.shrinkFolioEnd(folio, pinnedToo);
  if (end === C.SHRINK_MAPPED) {
    if (k.trace.points.try_to_unmap.listening) k.trace.points.try_to_unmap.emit({ pfn: folio, refused });
    return refused ? "pinned" : "busy";
  }
  if (end === C.SHRINK_PINNED) return "pinned";
  const freed = end === 1;
  if (freed) k.stats.inc(Stat.pageouts);
  if (k.trace.points.shrink_folio_list.listening) k.trace.points.shrink_folio_list.emit({ pfn: folio, slot, freed });
  return freed ? "swapped" : "kept";
}

/**
 * MADV_PAGEOUT (madvise_cold_or_pageout_pte_range() + reclaim_pages()): reclaim the anonymous
 * pages of [start, end) this process alone maps. Returns each page's outcome.
 */
export function madvise_pageout(k: MmKernel, p: MmProcess, start: number, end: number): Map<number, ReclaimOutcome> {
  const out = new Map<number, ReclaimOutcome>();
  const ops = k.ops;
  k.drainLru();
  for (const r of k.core.pagemap(p.mm, start, end)) {
    if ((r.kind & 0xff) !== C.PTE_KIND_PRESENT || r.aux & (1 << C._PAGE_BIT_SPECIAL)) continue;
    let folio = ops.pageFolio(r.pfn);
    if (!ops.folioTestAnon(folio) && !shmemFolioOwner(k, folio)) continue;
    // "Do not interfere with other mappings of this folio"
    if (folio_likely_mapped_shared(k, folio)) {
      out.set(r.address, "shared");
      continue;
    }
    if (ops.folioTestLarge(folio) && !folio_mapped_within(k, p, folio, r.address, r.pfn, start, end)) {
      // only part of it in the range: split it (a PMD that maps it first), and reclaim just the pages asked for
      if (split_folio_unmapping_pmds(k, folio, "madvise_cold_or_pageout_pte_range(): partial").outcome !== "split") {
        out.set(r.address, "busy");
        continue;
      }
      folio = r.pfn;
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
export function reclaim(k: MmKernel, want = SWAP_CLUSTER_MAX): number {
  const ops = k.ops;
  const before = k.core.freePages();
  // shrink_slab(): the deferred split shrinker frees the unmapped parts of large folios, no swap needed
  if (deferred_split_scan(k) >= want || k.core.swapSlotsAvailable() <= 0) return k.core.freePages() - before;
  k.drainLru();
  const n = k.core.layout.nframes;
  const t = k.core.frames;
  // the free count changes only where a folio was shrunk: read there, not per frame scanned
  let freed = 0;
  for (let scanned = 0; scanned < n && freed < want; scanned++) {
    const pfn = k.reclaimCursor;
    k.reclaimCursor = (pfn + 1) % n;
    const flags = t.flags(pfn);
    if (pfn === 0 || !(flags & PG_LRU) || (flags & PG_BUDDY)) continue;
    if (t.folio(pfn) !== pfn) continue;
    // shmem pages are swap-backed, on the anonymous LRU too, mapped or only in the page cache
    if (!t.anon(pfn)) {
      if (shmemFolioOwner(k, pfn)) {
        shrink_folio(k, pfn);
        freed = k.core.freePages() - before;
      }
      continue;
    }
    if (!(flags & PG_SWAPCACHE) && !((flags & PG_HEAD) ? ops.folioIsMapped(pfn) : t.mapcount(pfn) > 0)) continue;
    shrink_folio(k, pfn);
    freed = k.core.freePages() - before;
  }
  if (freed > 0 && k.trace.points.try_to_free_pages.listening) k.trace.points.try_to_free_pages.emit({ freed });
  return freed;
}

/** The helpers do_swap_page() offers a strategy. */
function swapinHelpers(k: MmKernel, folio: number, slot: number): SwapinHelpers & { freed: boolean } {
  const ops = k.ops;
  const h = {
    freed: false,
    refcount: () => ops.folioRefCount(folio),
    mapcount: () => ops.folioMapcount(folio),
    swapcount: () => ops.swapCount(slot),
    swapFree: () => {
      if (h.freed) return;
      h.freed = true;
      ops.swapFree(slot);
    },
    freeSwap: () => ops.folioFreeSwap(folio),
    deleteFromSwapCache: () => { ops.deleteFromSwapCache(folio); },
  };
  return h;
}

/**
 * do_swap_page(): the swap entry at `addr` is replaced by its page — from the swap cache, or
 * read back into a new frame — exclusive and writable or not as the strategy decides. A
 * swap-cache folio someone holds locked (I/O, migration) makes the fault wait for its lock
 * (folio_lock_or_retry()).
 */
export function do_swap_page(k: MmKernel, p: MmProcess, vma: Vma, addr: number, write: boolean): void {
  const ops = k.ops;
  const entry = ops.swapPteSlot(p.mm, addr);
  if (entry === null) return; // the entry changed: the access retries
  const slot = entry.slot;
  const writeNotify = (!(vma.flags & VM_SOFTDIRTY) && !entry.softDirty) || ((vma.flags & VM_UFFD_WP) !== 0 && entry.uffdWp);
  const cached = ops.swapCachePfn(slot);
  if (cached !== null && ops.pageTestFlag(cached, C.PG_hwpoison)) throw hwpoisonSigbus(p, addr, write);
  if (cached !== null && ops.pageTestFlag(cached, C.PG_locked)) throw new FaultBlocked(k.waits.folio(cached));
  if (!vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
  let pfn: number;
  if (cached === null) {
    let r = ops.swapinRead(slot);
    if (r === -C.ENOMEM && k.reclaimAfterFailure() > 0) r = ops.swapinRead(slot);
    if (r === -C.ENOMEM) {
      throw new CowsimError("ENOMEM", `out of memory: no frame to swap ${hex(addr)} of pid ${p.pid} back in` +
        (k.allocFailure() === "injected" ? " (fault injection)" : ""));
    }
    if (r < 0) throw new Error(`cowsim: swapin_read(${slot}) failed with ${r}`);
    pfn = r;
  } else {
    pfn = cached;
  }
  ops.folioRefAdd(pfn, 1); // the reference the mapping takes
  const h = swapinHelpers(k, pfn, slot);
  const d = k.strategy.swapin({ write, swpExclusive: entry.exclusive, ksm: ops.folioTestKsm(pfn), writeNotify }, h);
  h.swapFree();
  const writable = d.writable && d.exclusive && (vma.flags & VM_WRITE) !== 0;
  const flags = (writable ? C.SWAPIN_WRITABLE : 0) | (d.exclusive ? C.SWAPIN_EXCLUSIVE : 0) |
    (writable && write ? C.SWAPIN_DIRTY : 0);
  // __folio_set_anon(): a folio not exclusive to this VMA belongs to the oldest anon_vma
  const av = vma.anonVma!;
  const r = ops.swapinMap(p.mm, addr, pfn, slot, vma.pageProt, flags, d.exclusive ? av.id : av.root.id, vma.index(addr));
  if (r < 0) throw new Error(`cowsim: swapin_map failed with ${r}`);
  k.stats.inc(Stat.swapins);
  if (k.trace.points.do_swap_page.listening) k.trace.points.do_swap_page.emit({ pid: p.pid, address: addr, slot, pfn, fromCache: cached !== null, rule: d.rule });
}

/** A swap slot whose last swap PTE went away while its folio sits in the swap cache. */
export function swapCacheOrphan(k: MmKernel, slot: number, pfn: number): void {
  // __try_to_reclaim_swap(): an unmapped folio leaves the swap cache (and may be freed)
  if (pfn !== C.NO_PFN && !k.ops.folioIsMapped(pfn) && !k.ops.pageTestFlag(pfn, C.PG_locked)) {
    k.ops.folioFreeSwap(pfn);
  }
  void slot;
}
