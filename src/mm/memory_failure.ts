/**
 * Memory failure (mm/memory-failure.c): a page whose
 * memory went bad — reported by the hardware (`memoryFailure(pfn)`) or injected by
 * madvise(MADV_HWPOISON) (madvise.ts) — is marked PG_hwpoison and unmapped from every process through the
 * rmap, each mapping replaced by a hwpoison entry, and memory_failure() keeps the reference it
 * took: the frame never goes back to the allocator. An access to a hwpoison entry is SIGBUS
 * (BUS_MCEERR_AR); the page's contents are gone, which no strategy can help.
 *
 * Modelled: order-0 anonymous pages, on the LRU or in the swap cache, mapped or not, pinned or
 * not, and the pages memory_failure() cannot handle (the zero page, a page off the LRU). A
 * large folio is split first (try_to_split_thp_page()); a pinned one cannot be and fails as an
 * unsplittable THP does (-EHWPOISON, the folio stays mapped). Free frames
 * (take_page_off_buddy()) and shmem pages (truncate_error_folio()) are refused with nothing
 * changed.
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import { hex } from "./vma.js";
import { try_split_folio } from "./migrate.js";

/** memory_failure() flags (include/linux/mm.h MF_*). */
export const MF_ACTION_REQUIRED = 1 << 1;
export const MF_COUNT_INCREASED = 1 << 0;

/** What memory_failure() made of the page (action_name[]). @public */
export type MfResult = "Ignored" | "Failed" | "Delayed" | "Recovered";

/** The outcome of one memory_failure(). @public */
export interface MemoryFailureOutcome {
  readonly pfn: number;
  /** The kind of page, as action_page_types[] names it ("dirty LRU page", "unsplit thp" …). */
  readonly type: string;
  readonly result: MfResult;
  /** What memory_failure() returns: null (0), EBUSY (not recovered) or EHWPOISON. */
  readonly errno: "EBUSY" | "EHWPOISON" | null;
  /** Processes sent SIGBUS (BUS_MCEERR_AR) at once: the injecting one, when its page was dirty. */
  readonly killed: readonly number[];
}

const PG = (bit: number) => 2 ** bit;
const F_LRU = PG(C.PG_lru);
const F_DIRTY = PG(C.PG_dirty);
const F_SWAPCACHE = PG(C.PG_swapcache);
const F_RESERVED = PG(C.PG_reserved);
const F_HEAD = PG(C.PG_head);

type PageAction = (k: MmKernel, folio: number) => MfResult;

/**
 * error_states[] of Linux 6.12, for the page kinds cowsim has (mlocked and unevictable pages are
 * not modelled): the first entry whose mask of the page's flags gives its value decides.
 */
const ERROR_STATES: readonly [mask: number, value: number, type: string, action: PageAction][] = [
  [F_RESERVED, F_RESERVED, "reserved kernel page", me_kernel],
  [F_HEAD, F_HEAD, "huge page", me_kernel],
  [F_SWAPCACHE | F_DIRTY, F_SWAPCACHE | F_DIRTY, "dirty swapcache page", me_swapcache_dirty],
  [F_SWAPCACHE | F_DIRTY, F_SWAPCACHE, "clean swapcache page", me_swapcache_clean],
  [F_LRU | F_DIRTY, F_LRU | F_DIRTY, "dirty LRU page", me_pagecache_clean],
  [F_LRU | F_DIRTY, F_LRU, "clean LRU page", me_pagecache_clean],
  [0, 0, "unknown page", me_kernel],
];

/** me_kernel() / me_unknown(): nothing can be done; the page stays as it is. */
function me_kernel(): MfResult {
  return "Ignored";
}

/** delete_from_lru_cache(): off the LRU for good (the isolation's reference dropped at once). */
function delete_from_lru_cache(k: MmKernel, folio: number): boolean {
  if (!k.ops.pageTestFlag(folio, C.PG_lru)) return false;
  k.ops.pageClearFlag(folio, C.PG_lru);
  k.ops.pageClearFlag(folio, C.PG_active);
  return true;
}

/**
 * has_extra_refcount(): references beyond memory_failure()'s own (and, with `extraPins`, the
 * swap cache's): a pin, a pipe buffer, an isolation.
 */
function has_extra_refcount(k: MmKernel, folio: number, extraPins: boolean): boolean {
  return k.ops.folioRefCount(folio) - 1 - (extraPins ? 1 : 0) > 0;
}

/**
 * me_pagecache_clean() (me_pagecache_dirty() ends there too) for an anonymous folio: off the
 * LRU, and recovered — "the only reference left should be the one m_f() holds"; no check of
 * the others, so a pinned page is recovered as well, its pin holding a page nobody maps.
 */
function me_pagecache_clean(k: MmKernel, folio: number): MfResult {
  delete_from_lru_cache(k, folio);
  return "Recovered";
}

/**
 * me_swapcache_dirty(): the folio stays in the swap cache, clean (no I/O) and not uptodate, so
 * the next do_swap_page() of its entries finds it and answers VM_FAULT_HWPOISON.
 */
function me_swapcache_dirty(k: MmKernel, folio: number): MfResult {
  k.ops.pageClearFlag(folio, C.PG_dirty);
  k.ops.pageClearFlag(folio, C.PG_uptodate);
  let r: MfResult = delete_from_lru_cache(k, folio) ? "Delayed" : "Failed";
  if (has_extra_refcount(k, folio, r === "Delayed")) r = "Failed";
  return r;
}

/** me_swapcache_clean(): out of the swap cache; the swap slot still holds the good data. */
function me_swapcache_clean(k: MmKernel, folio: number): MfResult {
  k.ops.deleteFromSwapCache(folio);
  let r: MfResult = delete_from_lru_cache(k, folio) ? "Recovered" : "Failed";
  if (has_extra_refcount(k, folio, false)) r = "Failed";
  return r;
}

/** The processes of the mms in `mms` (collect_procs()'s tasks). */
function pidsOf(k: MmKernel, mms: Iterable<number>): number[] {
  const want = new Set(mms);
  const out: number[] = [];
  for (const p of k.processes.values()) if (want.has(p.mm)) out.push(p.pid);
  return out;
}

/**
 * collect_procs() with force_early (MF_ACTION_REQUIRED): the current process, when it maps the
 * folio. Other processes would be collected only with early kill (vm.memory_failure_early_kill,
 * PR_MCE_KILL_EARLY), off by default: they get their SIGBUS when they touch the page.
 */
function collect_procs(k: MmKernel, folio: number, current: MmProcess | null): number[] {
  if (!current) return [];
  const hits = rmap_walk_anon(k.anonVmas, k.ops.folioMappingId(folio), k.ops.folioIndex(folio));
  return hits.some((h) => h.mm === current.mm && k.ops.translateOne(h.mm, h.address) === folio) ? [current.pid] : [];
}

/**
 * hwpoison_user_mappings() → unmap_poisoned_folio() → try_to_unmap(): every mapping the rmap
 * finds is replaced by a hwpoison entry (TTU_HWPOISON) — or, for a folio in the swap cache, by
 * its swap entry ("keeping poisoned page in swap cache"), as reclaim's unmap does, which a pin
 * can refuse. Returns whether the folio is unmapped, and who is killed now (forcekill: the page
 * was dirty or could not be unmapped).
 */
function hwpoison_user_mappings(k: MmKernel, folio: number, current: MmProcess | null): { unmapped: boolean; killed: number[] } {
  const ops = k.ops;
  if (!ops.folioIsMapped(folio)) return { unmapped: true, killed: [] };
  const tokill = collect_procs(k, folio, current);
  const swapcache = ops.pageTestFlag(folio, C.PG_swapcache);
  const u = k.strategy.unmap;
  const ttu = (u.shareAnon ? C.TTU_SHARE_ANON : 0) | (u.swpExclusive ? C.TTU_SWP_EXCLUSIVE : 0);
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio))) {
    if (swapcache) {
      if (ops.tryToUnmapOne(hit.mm, hit.address, folio, ttu) === -C.EBUSY) break;
    } else {
      ops.tryToUnmapOneHwpoison(hit.mm, hit.address, folio);
    }
  }
  const unmapped = !ops.folioIsMapped(folio);
  const forcekill = ops.pageTestFlag(folio, C.PG_dirty) || !unmapped;
  return { unmapped, killed: forcekill ? tokill : [] };
}

/**
 * memory_failure(): the page at `pfn` is poisoned. `flags`: MF_ACTION_REQUIRED (the current
 * process consumed or injected the error: it is the one killed at once), MF_COUNT_INCREASED
 * (the caller took the reference memory_failure() keeps, as madvise_inject_error()'s GUP does).
 * Every outcome but "already poisoned" counts in num_poisoned_pages, recovered or not, and
 * leaves PG_hwpoison set.
 */
export function memory_failure(k: MmKernel, pfn: number, flags: number, current: MmProcess | null): MemoryFailureOutcome {
  const ops = k.ops;
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= k.core.layout.nframes) {
    throw new CowsimError("EINVAL", `memory_failure: pfn ${pfn} is outside the machine's ${k.core.layout.nframes} frames`);
  }
  const countIncreased = (flags & MF_COUNT_INCREASED) !== 0;
  let folio = ops.pageFolio(pfn);
  if (!ops.pageTestFlag(pfn, C.PG_hwpoison)) {
    if (ops.pageTestFlag(pfn, C.PG_buddy)) {
      throw new CowsimError("EINVAL", `memory_failure: pfn ${pfn} is free; take_page_off_buddy() is not modelled yet`);
    }
    if (!ops.pageTestFlag(folio, C.PG_reserved) && !ops.folioTestAnon(folio)) {
      throw new CowsimError("EINVAL", `memory_failure: pfn ${pfn} is a shmem page; truncate_error_folio() is not modelled yet`);
    }
  }
  const done = (type: string, result: MfResult, killed: readonly number[] = [], errno?: "EHWPOISON"): MemoryFailureOutcome => {
    // action_result(): every kind but an already poisoned page counts
    if (type !== "already poisoned page") k.stats.inc(Stat.poisonedPages);
    if (k.trace.points.memory_failure_event.listening) k.trace.points.memory_failure_event.emit({ pfn, type, result, killed });
    const ok = result === "Recovered" || result === "Delayed";
    return { pfn, type, result, errno: errno ?? (ok ? null : "EBUSY"), killed };
  };

  // TestSetPageHWPoison()
  if (ops.pageTestFlag(pfn, C.PG_hwpoison)) {
    // kill_accessing_process(): SIGBUS if the current process still maps the page (or its entry)
    const maps = (flags & MF_ACTION_REQUIRED) !== 0 && current !== null && mapsPoisoned(k, current, pfn);
    if (countIncreased) ops.folioPutRefs(folio, 1);
    const out = done("already poisoned page", "Failed", maps ? [current!.pid] : [], "EHWPOISON");
    return (flags & MF_ACTION_REQUIRED) !== 0 && !maps ? { ...out, errno: null } : out;
  }
  ops.pageSetFlag(pfn, C.PG_hwpoison);

  // shake_folio(): LRU batches drained, so a page waiting in one is on the LRU
  k.drainLru();
  if (!countIncreased) {
    // get_hwpoison_page(): only an LRU page (or a large folio, by its head) is handlable
    if (!ops.pageTestFlag(folio, C.PG_lru)) return done("get hwpoison page", "Ignored");
    ops.folioRefAdd(folio, 1);
  }
  if (ops.folioTestLarge(folio)) {
    if (!try_to_split_thp_page(k, folio, pfn)) {
      const killed = (flags & MF_ACTION_REQUIRED) !== 0 ? collect_procs(k, folio, current) : [];
      ops.folioPutRefs(folio, 1);
      return done("unsplit thp", "Failed", killed, "EHWPOISON");
    }
    folio = ops.pageFolio(pfn);
  }
  if (folio !== 0) k.hwpoisoned.set(folio, (k.hwpoisoned.get(folio) ?? 0) + 1);
  else ops.folioPutRefs(folio, 1); // the zero page's references are not counted
  const savedFlags = k.core.frames.flags(folio);
  let killed: number[] = [];
  if (ops.pageTestFlag(folio, C.PG_lru)) {
    const r = hwpoison_user_mappings(k, folio, current);
    killed = r.killed;
    if (!r.unmapped) return done("unmapping failed page", "Failed", killed);
  }
  return identify_page_state(k, folio, savedFlags, killed, done);
}

/**
 * try_to_split_thp_page(): split_huge_page() of the large folio memory_failure() holds one
 * reference to, so that only the poisoned page is lost. can_split_folio(folio, 1) comes first:
 * a pin, another reference or the folio lock refuses the split with nothing changed (the
 * caller reports "unsplit thp"). Otherwise unmap_folio()'s TTU_SPLIT_HUGE_PMD splits every PMD
 * mapping it, and the folio becomes order-0 pages, the reference staying with the poisoned
 * one. Returns whether it split.
 */
function try_to_split_thp_page(k: MmKernel, folio: number, pfn: number): boolean {
  const split = try_split_folio(k, folio, 1);
  if (split) k.ops.folioRefAdd(k.ops.pageFolio(pfn), 1);
  return split;
}

/** identify_page_state(): the page's flags now, else those saved before the unmap, choose the action. */
function identify_page_state(
  k: MmKernel, folio: number, savedFlags: number, killed: number[],
  done: (type: string, result: MfResult, killed: readonly number[]) => MemoryFailureOutcome,
): MemoryFailureOutcome {
  const now = k.core.frames.flags(folio);
  let state = ERROR_STATES.find(([mask, value]) => (now & mask) === value)!;
  if (state[0] === 0) {
    const then = savedFlags | (now & F_DIRTY);
    state = ERROR_STATES.find(([mask, value]) => (then & mask) === value)!;
  }
  return done(state[2], state[3](k, folio), killed);
}

/** Whether `p` maps `pfn`, or holds a hwpoison entry for it (hwpoison_walk_ops). */
function mapsPoisoned(k: MmKernel, p: MmProcess, pfn: number): boolean {
  for (const vma of p.vmas) {
    for (const r of k.core.pagemap(p.mm, vma.start, vma.end)) {
      const kind = r.kind & 0xff;
      if (r.pfn === pfn && (kind === C.PTE_KIND_PRESENT || kind === C.PTE_KIND_HWPOISON)) return true;
    }
  }
  return false;
}

/** SIGBUS for an access to a hwpoison entry (do_swap_page()'s VM_FAULT_HWPOISON), as an error. */
export function hwpoisonSigbus(p: MmProcess, addr: number, write: boolean): CowsimError {
  return new CowsimError("EHWPOISON", `SIGBUS (BUS_MCEERR_AR): pid ${p.pid} ${write ? "wrote to" : "read from"} ${hex(addr)}, whose page is hardware-poisoned`);
}
