// Range operations of mm/memory.c: copy_page_range() for fork (and its dry runs),
// zap_page_range() for munmap / MADV_DONTNEED / exit, and do_anonymous_page() over a range.
// Each is a walk of pagewalk.ts: the descent is walk_page_range()'s, the hooks are here.
// One call handles a whole range; entries that need a decision from a COW strategy, or that
// the TypeScript side must know about, come back as records.
//
// A record is four u32 words in the context's scratch area:
//
//   [0] kind   REC_*
//   [1] page   page offset of the entry from the start of the range
//   [2] pfn    frame (or swap slot, for swap records)
//   [3] aux    low 32 bits of the entry as it was (present bits / swap software bits), or
//              per-kind details documented at the REC_* constant
//
// When the scratch area fills up, the call stops before the next entry and leaves the address
// to resume at in ctx.next; the caller calls again from there. Entries already handled are
// complete, so stopping anywhere is safe.

import {
  ctxOf, ctxCapacity, ctx_smp, pushRecord, NO_PFN, PAGE_SIZE, HPAGE_PMD_NR, count_vm_events,
  FORK_PTES_SHARED, FORK_PTES_DEFERRED, FORK_CORE_COPY, ZAP_PTES, EINVAL, ENOMEM, EEXIST,
  hdr, PAGE_STRUCT_BYTES,
} from "./layout";
import {
  pte_none, pte_present, pte_pfn, pte_write, pte_special, pte_uffd_wp, pte_dirty, pte_young,
  pte_wrprotect, pte_mkclean, pte_mkold, pte_clear_uffd_wp, pte_mkdirty, pte_mkwrite, pfn_pte,
  pmd_leaf, swp_type, swp_offset, pte_swp_exclusive, pte_swp_clear_exclusive,
  pte_swp_uffd_wp, pte_swp_clear_uffd_wp, pte_swp_soft_dirty, pte_swp_mksoft_dirty,
  pte_swp_mkuffd_wp, is_migration_entry, is_readable_migration_entry,
  is_writable_device_private_entry, make_readable_migration_entry,
  make_readable_device_private_entry, is_device_private_entry, is_device_exclusive_entry,
  is_hwpoison_entry, is_pte_marker_entry, pte_marker_get, make_pte_marker,
  pte_mkuffd_wp, SWP_MIGRATION_READ, MAX_SWAPFILES, _PAGE_RW, _PAGE_PRESENT, _PAGE_USER, _PAGE_ACCESSED,
  _PAGE_PROTNONE, _PAGE_SPECIAL, _PAGE_SWP_EXCLUSIVE,
  PTE_MARKER_UFFD_WP, PTE_MARKER_POISONED, PTE_MARKER_GUARD,
  PTE_PFN_SHIFT,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, entryTable, isTableEntry, pgdSlot,
  pudIndex, pmdIndex, pteIndex, mmAddr, MmStruct, mm_valid, mm_flags, add_mm_counter,
  mm_write_protect_seq_inc, pt_reserve, pt_reserve_upto, pt_unreserve, pt_alloc_table,
  pgtable_trans_huge_deposit, zap_deposited_table, PMD_SIZE, PUD_SHIFT, PGDIR_SHIFT, PMD_SHIFT,
  MMF_HAS_PINNED, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, MM_FILEPAGES,
} from "./pgtable";
import {
  pfn_valid, page_folio, folio_test_anon, folio_ref_add, folio_test_large, folio_nr_pages,
  folio_maybe_dma_pinned, PageAnonExclusive, setPageFlag, testPageFlag, PG_dirty,
  PG_referenced, PG_swapcache, PG_swapbacked, PG_locked, refcountAddr, mapcountAddr, pageAddr, Page,
  PG_anon_exclusive, PG_head, PG_tail, PAGE_MAPPING_ANON,
} from "./page";
import {
  folio_try_dup_anon_rmap_ptes, folio_try_dup_anon_rmap_pmd, folio_add_rmap_ptes,
  folio_add_rmap_pmd, folio_remove_rmap_ptes, folio_remove_rmap_pmd, folio_put_refs, folio_last_ref_put, small_folio_unmap_alone,
  folio_add_new_anon_rmap, folio_is_mapped, mm_counter_of, RMAP_EXCLUSIVE, __folio_remove_rmap_ptes,
} from "./rmap";
import { folio_remove_rmap_ptes_done } from "./large_folio";
import { swap_duplicate, swap_free, swap_cache_pfn, SWAP_HAS_CACHE } from "./swapfile";
import { copy_page_contents, clear_page_contents } from "./content";
import { alloc_pages, frames_reserve, frames_unreserve, GFP_ZERO } from "./page_alloc";
import { folio_add_lru, newAnonFolioAlone, newAnonFolioAloneOk } from "./fault";
import { is_huge_zero_folio, is_pmd_migration_entry } from "./huge_memory";
import { folio_free_swap } from "./swap_state";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";
import {
  MmWalk, walk_of, walk_page_range, check_range, begin_range_op, ACTION_CONTINUE, WALK_STOP,
  WALK_ALLOC, WALK_RECORDS, DEPTH_PGD, DEPTH_PUD,
} from "./pagewalk";

// ---- record kinds ------------------------------------------------------------------------------
/** @rec FORK_PINNED fork left a possibly pinned anon page alone: the strategy copies or shares it (aux: PTE bits) */
export const REC_FORK_PINNED: u32 = 1;
/** @rec FORK_PMD_PINNED fork left a possibly pinned PMD-mapped THP alone: split it, then copy the PTEs again */
export const REC_FORK_PMD_PINNED: u32 = 2;
/** @rec SWAP a swap entry was duplicated into the child (pfn: slot; aux: the parent's swap bits before) */
export const REC_SWAP: u32 = 3;
/** @rec MIGRATION a migration entry was copied (made readable in a COW mapping) */
export const REC_MIGRATION: u32 = 4;
/** @rec DEVICE_PRIVATE a device-private entry was copied and its page shared */
export const REC_DEVICE_PRIVATE: u32 = 5;
/** @rec DEVICE_EXCLUSIVE a device-exclusive entry was left alone: restore the PTE, then copy again */
export const REC_DEVICE_EXCLUSIVE: u32 = 6;
/** @rec HWPOISON a hwpoison entry was copied as is */
export const REC_HWPOISON: u32 = 7;
/** @rec MARKER a PTE marker was copied, or dropped when the child has no use for it (aux: marker bits kept) */
export const REC_MARKER: u32 = 8;
/** @rec PMD_PARTIAL a PMD leaf or PMD swap entry lies only partly in the range: left alone, split it first */
export const REC_PMD_PARTIAL: u32 = 9;
/** @rec ZAP_PAGE a present page was unmapped (aux: ZAPPED_* bits) */
export const REC_ZAP_PAGE: u32 = 10;
/** @rec SWAP_CACHE_ONLY the last swap PTE of a slot went away; its folio is still in the swap cache (aux: pfn) */
export const REC_SWAP_CACHE_ONLY: u32 = 11;
/** @rec ZAP_PMD a PMD-mapped THP was unmapped (aux: ZAPPED_* bits) */
export const REC_ZAP_PMD: u32 = 12;

// ZAP_PAGE aux bits
export const ZAPPED_ANON: u32 = 1;
export const ZAPPED_DIRTY: u32 = 2;
export const ZAPPED_YOUNG: u32 = 4;
export const ZAPPED_FREED: u32 = 8;
export const ZAPPED_SWAPCACHE: u32 = 16;
export const ZAPPED_EXCLUSIVE: u32 = 32;

// ---- copy_page_range() flags (what the kernel reads off the VMAs and the strategy) ----------
/** is_cow_mapping(src_vma): private and may be written: write-protect both sides. */
export const COPY_COW: u32 = 1;
/** VM_SHARED: the child's PTEs start clean. */
export const COPY_SHARED: u32 = 2;
/** userfaultfd_wp(dst_vma): keep uffd-wp bits and markers in the child. */
export const COPY_DST_UFFD_WP: u32 = 4;
/** Linux 5.9–5.18 (70e806e4e645): a possibly pinned anon page is copied, exclusive or not. */
export const COPY_DEFER_PINNED_ANY: u32 = 8;
/** Linux ≥ 5.19: only a possibly pinned PageAnonExclusive page is copied. */
export const COPY_DEFER_PINNED_EXCLUSIVE: u32 = 16;
/** VM_WRITE on the destination: a copied page is mapped writable (maybe_mkwrite()). */
export const COPY_VM_WRITE: u32 = 32;
/**
 * The strategy copies every page it defers (copy_present_page(), 70e806e4e645): the walk copies
 * it at once, from the context's frame reservation, into anon_vma `anonVma` at the page's index,
 * instead of handing it back (REC_FORK_PINNED still does when no reserved frame is left).
 */
export const COPY_EARLY_IN_CORE: u32 = 64;
/** Nobody needs the swap entries copied (no copy_nonpresent_pte subscriber): no REC_SWAP for each. */
export const COPY_NO_SWAP_RECORDS: u32 = 128;

// ---- zap flags ---------------------------------------------------------------------------------
/** Hand back one ZAP_PAGE record per present page unmapped. */
export const ZAP_RECORD: u32 = 1;
/** zap_install_uffd_wp_if_needed(): leave a uffd-wp marker where a uffd-wp entry was (shmem). */
export const ZAP_KEEP_UFFD_WP: u32 = 2;
/** ZAP_FLAG_DROP_MARKER: drop markers too (munmap / exit); otherwise guard markers stay. */
export const ZAP_DROP_MARKERS: u32 = 4;
/**
 * !details->even_cows (unmap_mapping_range() for a hole punch): only page-cache folios go;
 * COWed anonymous pages, swap entries and poison stay (should_zap_cows(), should_zap_folio()).
 */
export const ZAP_FILE_ONLY: u32 = 8;

/** A PMD entry over [addr, next) covers the whole 2 MiB it maps. */
// @ts-ignore: decorator
@inline export function pmd_whole(addr: u64, next: u64): bool {
  return (addr & (PMD_SIZE - 1)) == 0 && next - addr == PMD_SIZE;
}

/** The PTE table of `dst` for `addr`, installing tables from the context's reservation. */
export function dstPteTable(ctx: u32, dst: u32, addr: u64): u32 {
  const pmdp = walk_alloc_pmdp(ctx, dst, addr);
  if (pmdp == 0) return 0;
  let me = entryLoad(pmdp);
  if (pte_none(me)) {
    const idx = pt_alloc_table(ctx);
    if (idx == NO_PFN) return 0;
    me = pfn_pte(<u64>idx, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED);
    entryStore(pmdp, me);
    atomic.add<i32>(mmAddr(dst) + offsetof<MmStruct>("nr_ptes"), 1);
  }
  return isTableEntry(me) ? entryTable(me) : 0;
}

/**
 * How many tables the walk of `mm` with allocation would install for a hole of `depth` over
 * [addr, next): at PGD level a PUD table, a PMD table per PUD entry and a PTE table per PMD
 * entry it spans; at PUD level a PMD table and the PTE tables; at PMD level one PTE table.
 */
// @ts-ignore: decorator
@inline export function hole_tables(addr: u64, next: u64, depth: i32): u32 {
  const pmds = <u32>(((next - 1) >> PMD_SHIFT) - (addr >> PMD_SHIFT)) + 1;
  if (depth == DEPTH_PGD) return 1 + <u32>(((next - 1) >> PUD_SHIFT) - (addr >> PUD_SHIFT)) + 1 + pmds;
  if (depth == DEPTH_PUD) return 1 + pmds;
  return 1;
}

// ---- fork: the dry run ---------------------------------------------------------------------------

/** copy_page_range_count()'s destination for a child that does not exist yet (all tables missing). */
export const FRESH_MM: u32 = 0xffffffff;

/**
 * The dry run of copy_page_range() over the parent: the child's tables it would need (checking
 * the child's slots are free) and, when `deferAny | deferExclusive`, the pages it would hand
 * back as FORK_PINNED / FORK_PMD_PINNED. pmd_entry() sees every populated PMD of the parent.
 */
@unmanaged class CopyCountWalk extends MmWalk {
  dst: u32;
  deferAny: u32;
  deferExclusive: u32;
  pinned: u32;
  tables: u32;
  /** walk_page_range()'s result: 0 or -EEXIST. */
  result: i32;
  lastG: u64;
  lastU: u64;

  /** The child's tables for the parent's PMD at `addr`; -EEXIST if the child maps something there. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    // a PTE table, or the table copy_huge_pmd() deposits with the child's PMD leaf
    const needPte: u32 = 1;
    const g = addr >> PGDIR_SHIFT;
    const u = addr >> PUD_SHIFT;
    const ge: u64 = this.dst == FRESH_MM ? 0 : entryLoad(pgdSlot(this.dst, addr));
    if (!isTableEntry(ge)) {
      if (!pte_none(ge)) return -EEXIST;
      if (g != this.lastG) { this.tables++; this.lastG = g; }
      if (u != this.lastU) { this.tables++; this.lastU = u; }
      this.tables += needPte;
    } else {
      const ue = entryLoad(entryTable(ge) + (pudIndex(addr) << 3));
      if (!isTableEntry(ue)) {
        if (!pte_none(ue)) return -EEXIST;
        if (u != this.lastU) { this.tables++; this.lastU = u; }
        this.tables += needPte;
      } else {
        const me = entryLoad(entryTable(ue) + (pmdIndex(addr) << 3));
        if (pte_none(me)) this.tables += needPte;
        else if (!isTableEntry(me) || !isTableEntry(pmd)) return -EEXIST;
      }
    }
    if ((this.deferAny | this.deferExclusive) == 0) {
      this.action = ACTION_CONTINUE;
    } else if (pmd_leaf(pmd)) {
      const folio = <u32>pte_pfn(pmd);
      if (folio_test_anon(folio) && folio_maybe_dma_pinned(folio) && (this.deferAny != 0 || PageAnonExclusive(folio))) {
        this.pinned += HPAGE_PMD_NR;
      }
    }
    return 0;
  }

  /** A possibly pinned anon page the copy would hand back: a tally of 1. */
  pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    // a device-exclusive entry is copied as the present PTE it is restored to
    const deviceExclusive = !pte_present(pte) && !pte_none(pte) && is_device_exclusive_entry(pte);
    if (!deviceExclusive && (!pte_present(pte) || pte_special(pte))) return 0;
    const pfn = deviceExclusive ? <u32>swp_offset(pte) : <u32>pte_pfn(pte);
    if (!pfn_valid(pfn)) return 0;
    const folio = page_folio(pfn);
    return folio_test_anon(folio) && folio_maybe_dma_pinned(folio) && (this.deferAny != 0 || PageAnonExclusive(pfn)) ? 1 : 0;
  }
  pte_tally(sum: u32): void {
    this.pinned += sum;
  }
}

/**
 * Runs the dry run over [start, end) of `src`: the walk, with w.result 0 (the tables in
 * w.tables, the pinned pages in w.pinned) or -EEXIST.
 */
function copyCount(ctx: u32, dst: u32, src: u32, start: u64, end: u64, deferAny: bool, deferExclusive: bool): CopyCountWalk {
  const w = walk_of<CopyCountWalk>(ctx, src, start, 0);
  w.dst = dst;
  w.deferAny = deferAny ? 1 : 0;
  w.deferExclusive = deferExclusive ? 1 : 0;
  w.pinned = 0;
  w.tables = 0;
  w.lastG = <u64>-1;
  w.lastU = <u64>-1;
  w.result = walk_page_range<CopyCountWalk>(w, start, end);
  return w;
}

/**
 * What copy_page_range() of [start, end) would need, without changing anything: returns how
 * many entries it would hand back as FORK_PINNED / FORK_PMD_PINNED (pages a strategy may copy,
 * so frames to reserve; a THP counts 512) and leaves in ctx.aux0 the page tables the child would
 * need. Lets fork() reserve everything for all its VMAs before it write-protects anything, or
 * even allocates the child's mm: `dst` may be FRESH_MM. Returns -EINVAL / -EEXIST as
 * copy_page_range() would.
 */
export function copy_page_range_count(ctx: u32, dst: u32, src: u32, start: f64, end: f64, flags: u32): i32 {
  const bad = begin_range_op(ctx, src, start, end);
  if (bad != 0) return bad;
  if (dst != FRESH_MM && (!mm_valid(dst) || dst == src)) return -EINVAL;
  const hasPinned = (mm_flags(src) & MMF_HAS_PINNED) != 0;
  const w = copyCount(ctx, dst, src, <u64>start, <u64>end,
    hasPinned && (flags & COPY_DEFER_PINNED_ANY) != 0, hasPinned && (flags & COPY_DEFER_PINNED_EXCLUSIVE) != 0);
  if (w.result != 0) return w.result;
  ctxOf(ctx).aux0 = w.tables;
  return <i32>w.pinned;
}

// ---- fork: copy_page_range() ---------------------------------------------------------------------

// What a copied PTE adds up, in pte_entry()'s tally (copy_pte_range()'s rss[] and its count):
// one shared entry, and an anon page among them; the rarer counts go straight to the walk.
const TALLY_SHARED: i32 = 1;
const TALLY_ANON: i32 = 1 << 10;

// CopyWalk's own flag bits beside COPY_*: what the parent's MMF_HAS_PINNED makes of the
// COPY_DEFER_PINNED_* the caller asked for.
const COPY_WALK_DEFER_ANY: u32 = 1 << 30;
const COPY_WALK_DEFER_EXCLUSIVE: u32 = 1 << 31;
const COPY_WALK_DEFER: u32 = COPY_WALK_DEFER_ANY | COPY_WALK_DEFER_EXCLUSIVE;

/** copy_pmd_range() → copy_pte_range() / copy_huge_pmd(), as pmd_entry() and pte_entry(). */
@unmanaged class CopyWalk extends MmWalk {
  dst: u32;
  /** The COPY_* flags, and COPY_WALK_DEFER_* for a parent with MMF_HAS_PINNED. */
  flags: u32;
  cap: u32;
  /** The child's PTE table minus the parent's, for the PMD being copied: child slot = ptep + it. */
  dstDelta: u32;
  shared: u32;
  deferred: u32;
  rssAnon: i32;
  rssSwap: i32;
  rssShmem: i32;
  rssFile: i32;
  /** The end of the range copied. */
  end: u64;
  /** The end of the large-folio batch copied with its first entry: entries before it are done. */
  batchEnd: u64;
  /** One context attached (ctx_smp() false): counts and PTEs change with plain loads and stores. */
  up: bool;
  /** COPY_EARLY_IN_CORE: the child's anon_vma, and the page index of the walk's first address. */
  anonVma: u32;
  index: u32;

  /**
   * copy_present_page() for a page fork must not share: a fresh frame from the context's
   * reservation receives the contents and is mapped into the child exclusive and dirty (writable
   * with COPY_VM_WRITE), as fork_copy_deferred_pte() maps it. False, nothing changed, when the
   * reservation is spent.
   */
  copy_present_page(dstSlot: u32, pte: u64, addr: u64, pfn: u32): bool {
    const ctx = this.ctx;
    if (ctxOf(ctx).frameReserved == 0) return false;
    const nw = alloc_pages(ctx, 0, 0);
    if (nw == NO_PFN) return false;
    mapPresentPageCopy(ctx, dstSlot, addr, pte, pfn, nw, this.flags, this.anonVma, this.index + <u32>((addr - this.base) >> 12));
    count_vm_events(FORK_CORE_COPY, 1);
    return true;
  }

  /**
   * folio_pte_batch(): how many PTEs from `srcSlot` map consecutive pages of `folio` from `pfn`
   * with the same bits but for accessed and writable (dirty counts in a private mapping), within
   * the table, the range and the folio.
   */
  folio_pte_batch(srcSlot: u32, pte: u64, addr: u64, folio: u32, pfn: u32): u32 {
    const inFolio = folio + folio_nr_pages(folio) - pfn;
    const inTable = <u32>((PMD_SIZE - (addr & (PMD_SIZE - 1))) >> 12);
    const inRange = <u32>((this.end - addr) >> 12);
    const max = min(inFolio, min(inTable, inRange));
    let n: u32 = 1;
    while (n < max) {
      const e = entryLoad(srcSlot + (n << 3));
      if (!pte_present(e) || ((e ^ (pte + (<u64>n << <u64>PTE_PFN_SHIFT))) & ~(_PAGE_ACCESSED | _PAGE_RW)) != 0) break;
      n++;
    }
    return n;
  }

  /**
   * copy_pte_range() over the PTEs from `srcSlot` (at `addr`) to `end`, under one PMD, on one
   * CPU and with no pinned page to hand back: the common entry — a small anonymous folio mapped
   * by this PTE — copied here, with what every entry reads (the frame table, the flags, the
   * child's table) read once; any other entry goes to pte_entry(), as the walk would send it.
   * Returns 0, or pte_entry()'s WALK_STOP; the tally goes to pte_tally() either way.
   */
  copy_pte_table(srcSlot: u32, addr: u64, end: u64): i32 {
    const frames = hdr().frameBase;
    const nframes = hdr().nframes;
    const delta = this.dstDelta;
    const flags = this.flags;
    const cow = (flags & COPY_COW) != 0;
    const clean = (flags & COPY_SHARED) != 0;
    const keepWp = (flags & COPY_DST_UFFD_WP) != 0;
    const cap = this.cap;
    let full = ctxOf(this.ctx).nrRecords >= cap;
    let tally: u32 = 0;
    for (; addr < end; addr += PAGE_SIZE, srcSlot += 8) {
      const pte = load<u64>(srcSlot);
      if (pte == 0) continue;
      if (!full && addr >= this.batchEnd && (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 && (pte & _PAGE_SPECIAL) == 0) {
        const pfn = <u32>pte_pfn(pte);
        if (pfn < nframes) {
          const page = frames + pfn * PAGE_STRUCT_BYTES;
          const f = load<u32>(page, offsetof<Page>("flags"));
          if ((f & ((1 << PG_head) | (1 << PG_tail))) == 0 && (load<u32>(page, offsetof<Page>("mapping")) & PAGE_MAPPING_ANON) != 0) {
            // folio_ref_inc(), folio_try_dup_anon_rmap_pte() of a small folio nobody pins
            store<i32>(page, load<i32>(page, offsetof<Page>("_refcount")) + 1, offsetof<Page>("_refcount"));
            store<i32>(page, load<i32>(page, offsetof<Page>("_mapcount")) + 1, offsetof<Page>("_mapcount"));
            if (f & (1 << PG_anon_exclusive)) store<u32>(page, f & ~(1 << PG_anon_exclusive), offsetof<Page>("flags"));
            // __copy_present_ptes()
            let child = pte;
            if (cow && (pte & _PAGE_RW) != 0) {
              store<u64>(srcSlot, pte & ~_PAGE_RW);
              child = pte_wrprotect(child);
            }
            if (clean) child = pte_mkclean(child);
            child = pte_mkold(child);
            if (!keepWp) child = pte_clear_uffd_wp(child);
            page_table_check_pte_set(addr, child);
            store<u64>(srcSlot + delta, child);
            tally += <u32>(TALLY_SHARED | TALLY_ANON);
            continue;
          }
        }
      }
      const r = this.pte_entry(srcSlot, pte, addr);
      if (r < 0) {
        this.pte_tally(tally);
        return r;
      }
      tally += <u32>r;
      full = ctxOf(this.ctx).nrRecords >= cap;
    }
    this.pte_tally(tally);
    return 0;
  }

  /** __copy_present_ptes() for one entry: write-protect both sides of a COW mapping, the child's old. */
  // @ts-ignore: decorator
  @inline copy_present_pte(srcSlot: u32, dstSlot: u32, pte: u64, addr: u64): void {
    const flags = this.flags;
    let child = pte;
    if ((flags & COPY_COW) != 0 && pte_write(pte)) {
      // ptep_set_wrprotect(): an atomic AND, like x86's clear_bit(), so an A/D bit the
      // simulated CPU sets meanwhile is not lost — a CPU of another thread: with none, `pte`
      // is the entry
      if (this.up) store<u64>(srcSlot, pte & ~_PAGE_RW);
      else atomic.and<u64>(srcSlot, ~_PAGE_RW);
      child = pte_wrprotect(child);
    }
    if (flags & COPY_SHARED) child = pte_mkclean(child);
    child = pte_mkold(child);
    if (!(flags & COPY_DST_UFFD_WP)) child = pte_clear_uffd_wp(child);
    page_table_check_pte_set(addr, child);
    // a Wasm atomic store is an XCHG on x86: a locked operation nobody else needs on one CPU
    if (this.up) store<u64>(dstSlot, child);
    else entryStore(dstSlot, child);
  }

  /** copy_pmd_range(): the child's PTE table for a table; copy_huge_pmd() for a THP. */
  pmd_entry(srcPmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (isTableEntry(pmd)) {
      const dstTable = dstPteTable(this.ctx, this.dst, addr);
      // the dry run reserved every table and checked the child's slots
      assert(dstTable != 0);
      this.dstDelta = dstTable - entryTable(pmd);
      if (!this.up || (this.flags & COPY_WALK_DEFER) != 0) return 0;
      this.action = ACTION_CONTINUE;
      return this.copy_pte_table(entryTable(pmd) + (pteIndex(addr) << 3), addr, next);
    }
    // a PMD leaf (THP) or a PMD migration entry
    const ctx = this.ctx;
    if (ctxOf(ctx).nrRecords >= this.cap) { this.next = addr; return WALK_STOP; }
    this.action = ACTION_CONTINUE;
    const off = <u32>((addr - this.base) >> 12);
    if (!pmd_whole(addr, next) || !(pmd_leaf(pmd) || is_pmd_migration_entry(pmd))) {
      pushRecord(ctx, REC_PMD_PARTIAL, off, <u32>pte_pfn(pmd), <u32>pmd);
      return 0;
    }
    if (!pmd_leaf(pmd)) return this.copy_pmd_migration_entry(srcPmdp, pmd, addr);
    const folio = <u32>pte_pfn(pmd);
    if (is_huge_zero_folio(folio)) {
      // copy_huge_pmd(): the huge zero page is shared, outside the rmap and the RSS
    } else if (folio_test_anon(folio)) {
      const flags = this.flags;
      const maybe = (flags & COPY_WALK_DEFER) != 0 && folio_maybe_dma_pinned(folio);
      if (maybe && ((flags & COPY_WALK_DEFER_ANY) != 0 || PageAnonExclusive(folio))) {
        pushRecord(ctx, REC_FORK_PMD_PINNED, off, folio, <u32>pmd);
        this.deferred++;
        return 0;
      }
      folio_ref_add(folio, 1);
      folio_try_dup_anon_rmap_pmd(folio, false);
      this.rssAnon += <i32>HPAGE_PMD_NR;
    } else {
      folio_ref_add(folio, 1);
      folio_add_rmap_pmd(folio);
      if (testPageFlag(folio, PG_swapbacked)) this.rssShmem += <i32>HPAGE_PMD_NR; else this.rssFile += <i32>HPAGE_PMD_NR;
    }
    let child = pmd;
    if ((this.flags & COPY_COW) != 0 && pte_write(pmd)) {
      atomic.and<u64>(srcPmdp, ~_PAGE_RW);
      child = pte_wrprotect(child);
    }
    child = pte_mkold(child);
    if (!(this.flags & COPY_DST_UFFD_WP)) child = pte_clear_uffd_wp(child);
    const dstPmdp = walk_alloc_pmdp(ctx, this.dst, addr);
    pgtable_trans_huge_deposit(this.dst, pt_alloc_table(ctx));
    page_table_check_pmd_set(addr, child);
    entryStore(dstPmdp, child);
    this.shared += HPAGE_PMD_NR;
    return 0;
  }

  /**
   * copy_huge_pmd() of a PMD migration entry: a writable one becomes readable on both sides
   * (soft-dirty and uffd-wp kept), as copy_nonpresent_pte() does for PTEs.
   */
  copy_pmd_migration_entry(srcPmdp: u32, pmd: u64, addr: u64): i32 {
    let e = pmd;
    if (swp_type(pmd) != SWP_MIGRATION_READ) {
      e = make_readable_migration_entry(swp_offset(pmd));
      if (pte_swp_soft_dirty(pmd)) e = pte_swp_mksoft_dirty(e);
      if (pte_swp_uffd_wp(pmd)) e = pte_swp_mkuffd_wp(e);
      entryStore(srcPmdp, e);
    }
    if (!(this.flags & COPY_DST_UFFD_WP)) e = pte_swp_clear_uffd_wp(e);
    const ctx = this.ctx;
    const dstPmdp = walk_alloc_pmdp(ctx, this.dst, addr);
    pgtable_trans_huge_deposit(this.dst, pt_alloc_table(ctx));
    entryStore(dstPmdp, e);
    this.rssAnon += <i32>HPAGE_PMD_NR;
    return 0;
  }

  /** copy_present_ptes() / copy_nonpresent_pte() for one entry. */
  // @ts-ignore: decorator
  @inline pte_entry(srcSlot: u32, pte: u64, addr: u64): i32 {
    if (pte_none(pte)) return 0;
    // copied with the first entry of its batch (and never a place to stop: it is done)
    if (addr < this.batchEnd) return TALLY_SHARED | TALLY_ANON;
    const ctx = this.ctx;
    if (ctxOf(ctx).nrRecords >= this.cap) { this.next = addr; return WALK_STOP; }
    const dstSlot = srcSlot + this.dstDelta;
    const flags = this.flags;

    if (pte_present(pte)) {
      let tally = TALLY_SHARED;
      const pfn = <u32>pte_pfn(pte);
      if (!pte_special(pte) && pfn_valid(pfn)) {
        const folio = page_folio(pfn);
        if (folio_test_anon(folio)) {
          if ((flags & COPY_WALK_DEFER) != 0 && folio_maybe_dma_pinned(folio) &&
              ((flags & COPY_WALK_DEFER_ANY) != 0 || PageAnonExclusive(pfn))) {
            this.deferred++;
            if ((flags & COPY_EARLY_IN_CORE) != 0 && this.copy_present_page(dstSlot, pte, addr, pfn)) return TALLY_ANON;
            pushRecord(ctx, REC_FORK_PINNED, <u32>((addr - this.base) >> 12), pfn, <u32>pte);
            return 0;
          }
          if (folio_test_large(folio) && !((flags & COPY_WALK_DEFER) != 0 && folio_maybe_dma_pinned(folio))) {
            // copy_present_ptes(): a batch of the folio's pages at once, one folio_ref_add() and
            // one folio_try_dup_anon_rmap_ptes(); a possibly pinned folio goes page by page, each
            // exclusive page copied (Linux's batch fails with -EAGAIN and does the same)
            const nr = this.folio_pte_batch(srcSlot, pte, addr, folio, pfn);
            folio_ref_add(folio, <i32>nr);
            folio_try_dup_anon_rmap_ptes(folio, pfn, nr, false);
            for (let i: u32 = 0; i < nr; i++) {
              this.copy_present_pte(srcSlot + (i << 3), dstSlot + (i << 3), entryLoad(srcSlot + (i << 3)), addr + (<u64>i << 12));
            }
            this.batchEnd = addr + (<u64>nr << 12);
            return TALLY_SHARED | TALLY_ANON;
          }
          if (this.up && !folio_test_large(folio)) {
            // folio_ref_inc(), folio_try_dup_anon_rmap_pte() of a small folio, on one CPU
            const rc = refcountAddr(folio);
            store<i32>(rc, load<i32>(rc) + 1);
            const mc = mapcountAddr(pfn);
            store<i32>(mc, load<i32>(mc) + 1);
            const fl = pageAddr(pfn) + offsetof<Page>("flags");
            const f = load<u32>(fl);
            if (f & (1 << PG_anon_exclusive)) store<u32>(fl, f & ~(1 << PG_anon_exclusive));
          } else {
            folio_ref_add(folio, 1);
            folio_try_dup_anon_rmap_ptes(folio, pfn, 1, false);
          }
          tally = TALLY_SHARED | TALLY_ANON;
        } else {
          folio_ref_add(folio, 1);
          folio_add_rmap_ptes(folio, pfn, 1);
          if (testPageFlag(folio, PG_swapbacked)) this.rssShmem++; else this.rssFile++;
        }
      }
      this.copy_present_pte(srcSlot, dstSlot, pte, addr);
      return tally;
    }
    return this.copy_nonpresent_pte(srcSlot, dstSlot, pte, <u32>((addr - this.base) >> 12));
  }
  pte_tally(sum: u32): void {
    this.shared += sum & (TALLY_ANON - 1);
    this.rssAnon += <i32>(sum >> 10);
  }

  /** copy_nonpresent_pte(): swap, migration, device, hwpoison entries and PTE markers. */
  copy_nonpresent_pte(srcSlot: u32, dstSlot: u32, pte: u64, off: u32): i32 {
    const ctx = this.ctx;
    const flags = this.flags;
    const cow = (flags & COPY_COW) != 0;
    const type = swp_type(pte);
    let child = pte;
    if (type < MAX_SWAPFILES) {
      const slot = <u32>swp_offset(pte);
      if (swap_duplicate(slot) != 0) {
        // a swap PTE naming a slot not in use is a bug elsewhere; leave it visible
        pushRecord(ctx, REC_SWAP, off, slot, 0xffffffff);
        return 0;
      }
      if (pte_swp_exclusive(pte)) {
        atomic.and<u64>(srcSlot, ~_PAGE_SWP_EXCLUSIVE);
        child = pte_swp_clear_exclusive(child);
      }
      this.rssSwap++;
      if (!(flags & COPY_NO_SWAP_RECORDS)) pushRecord(ctx, REC_SWAP, off, slot, <u32>pte);
    } else if (is_migration_entry(pte)) {
      const pfn = <u32>swp_offset(pte);
      const m = mm_counter_of(page_folio(pfn));
      if (m == MM_ANONPAGES) this.rssAnon++; else if (m == MM_SHMEMPAGES) this.rssShmem++; else this.rssFile++;
      if (!is_readable_migration_entry(pte) && cow) {
        // writable and readable-exclusive both become readable, in parent and child (seed I.7d);
        // swp_offset() keeps the young/dirty bits above the PFN
        let np = make_readable_migration_entry(swp_offset(pte));
        if (pte_swp_soft_dirty(pte)) np = pte_swp_mksoft_dirty(np);
        if (pte_swp_uffd_wp(pte)) np = pte_swp_mkuffd_wp(np);
        entryStore(srcSlot, np);
        child = np;
      }
      pushRecord(ctx, REC_MIGRATION, off, pfn, <u32>pte);
    } else if (is_device_private_entry(pte)) {
      const pfn = <u32>swp_offset(pte);
      const folio = page_folio(pfn);
      folio_ref_add(folio, 1);
      this.rssAnon++;
      // device-private pages cannot be pinned: this cannot fail
      folio_try_dup_anon_rmap_ptes(folio, pfn, 1, false);
      if (is_writable_device_private_entry(pte) && cow) {
        let np = make_readable_device_private_entry(<u64>pfn);
        if (pte_swp_uffd_wp(pte)) np = pte_swp_mkuffd_wp(np);
        entryStore(srcSlot, np);
        child = np;
      }
      pushRecord(ctx, REC_DEVICE_PRIVATE, off, pfn, <u32>pte);
    } else if (is_device_exclusive_entry(pte)) {
      pushRecord(ctx, REC_DEVICE_EXCLUSIVE, off, <u32>swp_offset(pte), <u32>pte);
      this.deferred++;
      return 0;
    } else if (is_pte_marker_entry(pte)) {
      // copy_pte_marker(): uffd-wp only into a uffd-wp child; poison and guard always
      let m = pte_marker_get(pte) & (PTE_MARKER_POISONED | PTE_MARKER_GUARD);
      if (flags & COPY_DST_UFFD_WP) m |= pte_marker_get(pte) & PTE_MARKER_UFFD_WP;
      if (m != 0) entryStore(dstSlot, make_pte_marker(m));
      pushRecord(ctx, REC_MARKER, off, 0, m);
      return 0;
    } else if (is_hwpoison_entry(pte)) {
      pushRecord(ctx, REC_HWPOISON, off, <u32>swp_offset(pte), <u32>pte);
    }
    if (!(flags & COPY_DST_UFFD_WP)) child = pte_swp_clear_uffd_wp(child);
    entryStore(dstSlot, child);
    return 0;
  }
}

/**
 * copy_page_range(): give the child `dst` the parent's `src` mappings of [start, end), as fork
 * does for one VMA (copy_pte_range(), copy_present_ptes(), copy_nonpresent_pte(),
 * copy_huge_pmd()).
 *
 * Present anon pages are shared (folio_try_dup_anon_rmap_pte(): PageAnonExclusive cleared,
 * one more map count and reference) and, in a COW mapping, write-protected on both sides.
 * With COPY_DEFER_PINNED_* and MMF_HAS_PINNED on the parent, a possibly pinned page is left
 * alone and handed back (REC_FORK_PINNED): the caller copies it (copy_present_page()) or shares
 * it through fork_copy_deferred_pte(). Swap, migration, device and marker entries are copied as
 * Linux 6.12 copies them and reported.
 *
 * The child's range must be empty. Holds the parent's write_protect_seq odd while it runs, so
 * GUP-fast with FOLL_PIN backs off. The child's tables come from the context's reservation,
 * topped up when short; what is left stays reserved, so a fork can reserve for all its VMAs at
 * once (copy_page_range_count()), and the caller returns the rest with pt_unreserve(). Returns
 * the number of records, -EINVAL (bad range or mm), -EEXIST (the child maps something there) or
 * -ENOMEM (page tables): on an error nothing has changed.
 */
export function copy_page_range(ctx: u32, dst: u32, src: u32, start: f64, end: f64, flags: u32, anonVma: u32, index: u32): i32 {
  const bad = begin_range_op(ctx, src, start, end);
  if (bad != 0) return bad;
  if (!mm_valid(dst) || dst == src) return -EINVAL;
  const C = ctxOf(ctx);
  const from = <u64>start;
  const stop = <u64>end;
  const count = copyCount(ctx, dst, src, from, stop, false, false);
  if (count.result != 0) return count.result;
  const need = count.tables;
  if (need > C.ptReserved && !pt_reserve(ctx, need - C.ptReserved)) return -ENOMEM;

  const cow = (flags & COPY_COW) != 0;
  if (cow) mm_write_protect_seq_inc(src);
  const hasPinned = (mm_flags(src) & MMF_HAS_PINNED) != 0;
  const w = walk_of<CopyWalk>(ctx, src, from, WALK_RECORDS);
  w.dst = dst;
  w.flags = (flags & ~COPY_WALK_DEFER) |
    (hasPinned && (flags & COPY_DEFER_PINNED_ANY) != 0 ? COPY_WALK_DEFER_ANY : 0) |
    (hasPinned && (flags & COPY_DEFER_PINNED_EXCLUSIVE) != 0 ? COPY_WALK_DEFER_EXCLUSIVE : 0);
  w.cap = ctxCapacity();
  w.shared = 0;
  w.deferred = 0;
  w.rssAnon = 0;
  w.rssSwap = 0;
  w.rssShmem = 0;
  w.rssFile = 0;
  w.end = stop;
  w.batchEnd = 0;
  w.up = !ctx_smp();
  w.anonVma = anonVma;
  w.index = index;
  const stopped = walk_page_range<CopyWalk>(w, from, stop) == WALK_STOP;

  if (cow) mm_write_protect_seq_inc(src);
  add_mm_counter(dst, MM_ANONPAGES, w.rssAnon);
  add_mm_counter(dst, MM_SWAPENTS, w.rssSwap);
  add_mm_counter(dst, MM_SHMEMPAGES, w.rssShmem);
  add_mm_counter(dst, MM_FILEPAGES, w.rssFile);
  count_vm_events(FORK_PTES_SHARED, w.shared);
  count_vm_events(FORK_PTES_DEFERRED, w.deferred);
  C.next = stopped ? <f64>w.next : end;
  return <i32>C.nrRecords;
}

/**
 * The strategy's answer for one REC_FORK_PINNED entry at `va`:
 *  - newPfn == NO_PFN: share it after all (the ≤ 5.7 rule): folio_try_dup_anon_rmap_pte()
 *    ignoring pins, write-protect both sides in a COW mapping;
 *  - otherwise copy_present_page(): `newPfn` (freshly allocated, one reference) receives the
 *    contents and is mapped into the child, exclusive, dirty and — with COPY_VM_WRITE —
 *    writable; it joins anon_vma `anonVma` at `index`.
 * Returns 0, or -EINVAL when the parent no longer maps a present page there or the child has
 * something mapped. Tables come from the context's reservation (fork's); the caller returns
 * what is left with pt_unreserve().
 */
export function fork_copy_deferred_pte(
  ctx: u32, dst: u32, src: u32, va: f64, flags: u32, newPfn: u32, anonVma: u32, index: u32,
): i32 {
  if (check_range(va, va + <f64>PAGE_SIZE) != 0 || !mm_valid(dst) || !mm_valid(src)) return -EINVAL;
  const a = <u64>va;
  const srcPmdp = walk_pmdp(src, a);
  if (srcPmdp == 0) return -EINVAL;
  const pmd = entryLoad(srcPmdp);
  if (!isTableEntry(pmd)) return -EINVAL;
  const srcSlot = entryTable(pmd) + (pteIndex(a) << 3);
  const pte = entryLoad(srcSlot);
  if (!pte_present(pte) || pte_special(pte)) return -EINVAL;
  // fork's reservation covers the tables; keep what is left of it for the VMAs still to copy
  // (the caller returns the rest with pt_unreserve())
  if (!pt_reserve_upto(ctx, tablesMissingFor(dst, a))) return -ENOMEM;
  const dstTable = dstPteTable(ctx, dst, a);
  if (dstTable == 0) return -EEXIST;
  const dstSlot = dstTable + (pteIndex(a) << 3);
  if (!pte_none(entryLoad(dstSlot))) return -EEXIST;
  const pfn = <u32>pte_pfn(pte);
  if (newPfn == NO_PFN) {
    const folio = page_folio(pfn);
    folio_ref_add(folio, 1);
    folio_try_dup_anon_rmap_ptes(folio, pfn, 1, false);
    let child = pte;
    if ((flags & COPY_COW) && pte_write(pte)) {
      atomic.and<u64>(srcSlot, ~_PAGE_RW);
      child = pte_wrprotect(child);
    }
    child = pte_mkold(child);
    if (!(flags & COPY_DST_UFFD_WP)) child = pte_clear_uffd_wp(child);
    page_table_check_pte_set(a, child);
    entryStore(dstSlot, child);
    add_mm_counter(dst, MM_ANONPAGES, 1);
    return 0;
  }
  mapPresentPageCopy(ctx, dstSlot, a, pte, pfn, newPfn, flags, anonVma, index);
  add_mm_counter(dst, MM_ANONPAGES, 1);
  return 0;
}

/**
 * copy_present_page()'s copy: `newPfn` (one reference) receives `pfn`'s contents and is mapped
 * at the child's PTE slot `dstSlot` for `a`, exclusive in anon_vma `anonVma` at `index`, dirty,
 * writable with COPY_VM_WRITE, uffd-wp kept with COPY_DST_UFFD_WP. The caller counts the RSS.
 */
function mapPresentPageCopy(ctx: u32, dstSlot: u32, a: u64, pte: u64, pfn: u32, newPfn: u32, flags: u32, anonVma: u32, index: u32): void {
  copy_page_contents(newPfn, pfn);
  folio_add_new_anon_rmap(newPfn, anonVma, index, RMAP_EXCLUSIVE);
  folio_add_lru(ctx, newPfn);
  let child = pfn_pte(<u64>newPfn, pte & (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_PROTNONE));
  child = pte_mkdirty(child);
  if (flags & COPY_VM_WRITE) child = pte_mkwrite(child);
  if ((flags & COPY_DST_UFFD_WP) && pte_uffd_wp(pte)) child = pte_mkuffd_wp(child);
  page_table_check_pte_set(a, child);
  entryStore(dstSlot, child);
}

/** The tables installing a PTE at `a` needs: 3 … 0 (a PMD that is not none needs none). */
export function tablesMissingFor(mm: u32, a: u64): u32 {
  const ge = entryLoad(pgdSlot(mm, a));
  if (!isTableEntry(ge)) return 3;
  const ue = entryLoad(entryTable(ge) + (pudIndex(a) << 3));
  if (!isTableEntry(ue)) return 2;
  const me = entryLoad(entryTable(ue) + (pmdIndex(a) << 3));
  return pte_none(me) ? 1 : 0;
}

// ---- zap_page_range() ------------------------------------------------------------------------------

// What a zapped PTE adds up, in pte_entry()'s tally (zap_pte_range()'s rss[]): one present
// entry zapped, and an anon page among them; the rarer counts go straight to the walk.
const TALLY_ZAPPED: i32 = 1;

/** zap_pmd_range() → zap_pte_range() / zap_huge_pmd(), as pmd_entry() and pte_entry(). */
@unmanaged class ZapWalk extends MmWalk {
  flags: u32;
  cap: u32;
  zapped: u32;
  rssAnon: i32;
  rssSwap: i32;
  rssShmem: i32;
  rssFile: i32;
  /** The end of the range zapped. */
  end: u64;
  /** zap_present_ptes()'s batch of one large folio's consecutive pages: its folio, or NO_PFN. */
  batchFolio: u32;
  /** The batch's pages that lost their last mapping (__folio_remove_rmap()'s nr). */
  batchUnmapped: i32;
  /** One context attached (ctx_smp() false): small folios' counts and the PTEs change with plain loads and stores. */
  up: bool;

  /**
   * folio_pte_batch(): the PTE after `slot` maps the next page of the same large folio and lies
   * in the range and the table, so zap_present_ptes() takes it in the same batch.
   */
  batch_continues(slot: u32, addr: u64, folio: u32, pfn: u32): bool {
    const next = addr + PAGE_SIZE;
    if (next >= this.end || (next & (PMD_SIZE - 1)) == 0) return false;
    const pte = entryLoad(slot + 8);
    return pte_present(pte) && !pte_special(pte) && <u32>pte_pfn(pte) == pfn + 1 && pfn + 1 < folio + folio_nr_pages(folio);
  }
  /** The batch ends: folio_remove_rmap_ptes()'s deferred split decision, once for all its pages. */
  end_batch(): void {
    if (this.batchFolio == NO_PFN) return;
    folio_remove_rmap_ptes_done(this.batchFolio, this.batchUnmapped);
    this.batchFolio = NO_PFN;
    this.batchUnmapped = 0;
  }

  /**
   * zap_pte_range() over the PTEs from `slot` (at `addr`) to `end`, under one PMD, on one CPU,
   * for a zap that records nothing and spares nothing: the common entry — a small anonymous
   * folio outside the swap cache — zapped here, with what every entry reads read once; any other
   * entry goes to pte_entry(), as the walk would send it. Returns 0, or pte_entry()'s WALK_STOP;
   * the tally goes to pte_tally() either way.
   */
  zap_pte_table(slot: u32, addr: u64, end: u64): i32 {
    const frames = hdr().frameBase;
    const nframes = hdr().nframes;
    const keepWp = (this.flags & ZAP_KEEP_UFFD_WP) != 0;
    const cap = this.cap;
    let full = ctxOf(this.ctx).nrRecords >= cap;
    let tally: u32 = 0;
    for (; addr < end; addr += PAGE_SIZE, slot += 8) {
      const pte = load<u64>(slot);
      if (pte == 0) continue;
      if (!full && (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 && (pte & _PAGE_SPECIAL) == 0 && !(keepWp && pte_uffd_wp(pte))) {
        const pfn = <u32>pte_pfn(pte);
        if (pfn < nframes) {
          const page = frames + pfn * PAGE_STRUCT_BYTES;
          const f = load<u32>(page, offsetof<Page>("flags"));
          if ((f & ((1 << PG_head) | (1 << PG_tail) | (1 << PG_swapcache))) == 0 &&
              (load<u32>(page, offsetof<Page>("mapping")) & PAGE_MAPPING_ANON) != 0) {
            // ptep_get_and_clear(), folio_mark_accessed(), __folio_remove_rmap() and the
            // reference of a small anonymous folio
            store<u64>(slot, 0);
            if (pte_young(pte) && !(f & (1 << PG_referenced))) store<u32>(page, f | (1 << PG_referenced), offsetof<Page>("flags"));
            small_folio_unmap_alone(page, pfn);
            tally += <u32>(TALLY_ZAPPED | TALLY_ANON);
            continue;
          }
        }
      }
      const r = this.pte_entry(slot, pte, addr);
      if (r < 0) {
        this.pte_tally(tally);
        return r;
      }
      tally += <u32>r;
      full = ctxOf(this.ctx).nrRecords >= cap;
    }
    this.pte_tally(tally);
    return 0;
  }

  /** zap_huge_pmd() for a whole THP; a partial one is reported. Tables are descended. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (isTableEntry(pmd)) {
      if (!this.up || (this.flags & (ZAP_RECORD | ZAP_FILE_ONLY)) != 0) return 0;
      this.action = ACTION_CONTINUE;
      return this.zap_pte_table(entryTable(pmd) + (pteIndex(addr) << 3), addr, next);
    }
    const ctx = this.ctx;
    if (ctxOf(ctx).nrRecords >= this.cap) { this.next = addr; return WALK_STOP; }
    this.action = ACTION_CONTINUE;
    // PMD leaves are anonymous THPs (shmem THP is not modelled): a file-only zap leaves them
    if (this.flags & ZAP_FILE_ONLY) return 0;
    const off = <u32>((addr - this.base) >> 12);
    if (!pmd_whole(addr, next) || !(pmd_leaf(pmd) || is_pmd_migration_entry(pmd))) {
      pushRecord(ctx, REC_PMD_PARTIAL, off, <u32>pte_pfn(pmd), <u32>pmd);
      return 0;
    }
    const old = atomic.xchg<u64>(pmdp, 0);
    // zap_huge_pmd(): the table deposited with the leaf goes with it
    zap_deposited_table(this.mm);
    if (!pmd_leaf(old)) {
      // a PMD migration entry: the pages stay with the migration, the RSS goes
      this.rssAnon -= <i32>HPAGE_PMD_NR;
      return 0;
    }
    const folio = <u32>pte_pfn(old);
    if (is_huge_zero_folio(folio)) return 0;
    let aux: u32 = 0;
    const anon = folio_test_anon(folio);
    if (anon) { aux |= ZAPPED_ANON; this.rssAnon -= <i32>HPAGE_PMD_NR; }
    else if (testPageFlag(folio, PG_swapbacked)) this.rssShmem -= <i32>HPAGE_PMD_NR;
    else this.rssFile -= <i32>HPAGE_PMD_NR;
    if (PageAnonExclusive(folio)) aux |= ZAPPED_EXCLUSIVE;
    if (pte_dirty(old)) { aux |= ZAPPED_DIRTY; if (!anon) setPageFlag(folio, PG_dirty); }
    if (pte_young(old)) { aux |= ZAPPED_YOUNG; setPageFlag(folio, PG_referenced); }
    folio_remove_rmap_pmd(folio);
    if (testPageFlag(folio, PG_swapcache)) aux |= ZAPPED_SWAPCACHE;
    if (folio_put_refs(folio, 1)) aux |= ZAPPED_FREED;
    if (this.flags & ZAP_RECORD) pushRecord(ctx, REC_ZAP_PMD, off, folio, aux);
    this.zapped += HPAGE_PMD_NR;
    return 0;
  }

  /** zap_present_ptes() / zap_nonpresent_ptes() for one entry. */
  // @ts-ignore: decorator
  @inline pte_entry(slot: u32, pte: u64, addr: u64): i32 {
    if (pte_none(pte)) return 0;
    const ctx = this.ctx;
    if (ctxOf(ctx).nrRecords >= this.cap) { this.end_batch(); this.next = addr; return WALK_STOP; }
    const flags = this.flags;
    if (pte_present(pte)) {
      // should_zap_folio(): a file-only zap leaves COWed anonymous pages mapped
      if ((flags & ZAP_FILE_ONLY) && !pte_special(pte) && pfn_valid(<u32>pte_pfn(pte)) &&
          folio_test_anon(page_folio(<u32>pte_pfn(pte)))) return 0;
      // ptep_get_and_clear(): an exchange, so the A/D bits are the final ones — on one CPU,
      // with nobody else to set them meanwhile, a load and a store
      const up = this.up;
      const old = up ? load<u64>(slot) : atomic.xchg<u64>(slot, 0);
      if (up) store<u64>(slot, 0);
      if ((flags & ZAP_KEEP_UFFD_WP) && pte_uffd_wp(old)) {
        entryStore(slot, make_pte_marker(PTE_MARKER_UFFD_WP));
      }
      const pfn = <u32>pte_pfn(old);
      if (pte_special(old) || !pfn_valid(pfn)) return 0;
      const folio = page_folio(pfn);
      let aux: u32 = 0;
      let tally = TALLY_ZAPPED;
      const anon = folio_test_anon(folio);
      if (anon) { aux |= ZAPPED_ANON; tally |= TALLY_ANON; }
      else if (testPageFlag(folio, PG_swapbacked)) this.rssShmem--;
      else this.rssFile--;
      if (PageAnonExclusive(pfn)) aux |= ZAPPED_EXCLUSIVE;
      if (pte_dirty(old)) { aux |= ZAPPED_DIRTY; if (!anon) setPageFlag(folio, PG_dirty); }
      if (pte_young(old)) {
        aux |= ZAPPED_YOUNG;
        // folio_mark_accessed() tests PG_referenced before it sets it (and one CPU needs no lock)
        const fl = pageAddr(folio) + offsetof<Page>("flags");
        const f = load<u32>(fl);
        if (!(f & (1 << PG_referenced))) {
          if (up) store<u32>(fl, f | (1 << PG_referenced)); else setPageFlag(folio, PG_referenced);
        }
      }
      const small = !folio_test_large(folio);
      let unmapped: i32;
      if (up && small) {
        // __folio_remove_rmap() of a small folio, on one CPU
        const mc = mapcountAddr(folio);
        const now = load<i32>(mc) - 1;
        store<i32>(mc, now);
        unmapped = now == -1 ? 1 : 0;
      } else {
        unmapped = __folio_remove_rmap_ptes(folio, pfn, 1);
      }
      if (!small) {
        this.batchFolio = folio;
        this.batchUnmapped += unmapped;
        if (!this.batch_continues(slot, addr, folio, pfn)) this.end_batch();
      }
      if (testPageFlag(folio, PG_swapcache)) {
        aux |= ZAPPED_SWAPCACHE;
        // free_swap_cache(): an unmapped swap-cache folio no swap entry needs leaves the cache
        if (!folio_is_mapped(folio) && !testPageFlag(folio, PG_locked)) folio_free_swap(folio);
      }
      let freed: bool;
      if (up && small) {
        const rc = refcountAddr(folio);
        const now = load<i32>(rc) - 1;
        store<i32>(rc, now);
        freed = now == 0 && folio_last_ref_put(folio);
      } else {
        freed = folio_put_refs(folio, 1);
      }
      if (freed) aux |= ZAPPED_FREED;
      if (flags & ZAP_RECORD) pushRecord(ctx, REC_ZAP_PAGE, <u32>((addr - this.base) >> 12), pfn, aux);
      return tally;
    }
    this.zap_nonpresent_pte(slot, pte, <u32>((addr - this.base) >> 12));
    return 0;
  }
  pte_tally(sum: u32): void {
    this.zapped += sum & (TALLY_ANON - 1);
    this.rssAnon -= <i32>(sum >> 10);
  }

  /** zap_nonpresent_ptes(): swap entries, migration and device entries, markers. */
  zap_nonpresent_pte(slot: u32, pte: u64, off: u32): void {
    const flags = this.flags;
    const type = swp_type(pte);
    if ((flags & ZAP_FILE_ONLY) && zap_keeps_cow_entry(pte, type)) return;
    if (type < MAX_SWAPFILES) {
      const slotNo = <u32>swp_offset(pte);
      const cachePfn = swap_cache_pfn(slotNo);
      const left = swap_free(slotNo);
      this.rssSwap--;
      if (left == <i32>SWAP_HAS_CACHE) pushRecord(this.ctx, REC_SWAP_CACHE_ONLY, off, slotNo, cachePfn);
    } else if (is_migration_entry(pte)) {
      const m = mm_counter_of(page_folio(<u32>swp_offset(pte)));
      if (m == MM_ANONPAGES) this.rssAnon--; else if (m == MM_SHMEMPAGES) this.rssShmem--; else this.rssFile--;
    } else if (is_device_private_entry(pte) || is_device_exclusive_entry(pte)) {
      // a device-exclusive entry holds the reference but not the map count of its page
      const pfn = <u32>swp_offset(pte);
      const folio = page_folio(pfn);
      this.rssAnon--;
      if (is_device_private_entry(pte)) folio_remove_rmap_ptes(folio, pfn, 1);
      folio_put_refs(folio, 1);
    } else if (is_pte_marker_entry(pte)) {
      const m = pte_marker_get(pte);
      const keep = (flags & ZAP_DROP_MARKERS) == 0 &&
        ((m & PTE_MARKER_GUARD) != 0 || ((m & PTE_MARKER_UFFD_WP) != 0 && (flags & ZAP_KEEP_UFFD_WP) != 0));
      if (keep) return;
    }
    const keepWp = (flags & ZAP_KEEP_UFFD_WP) != 0 && pte_swp_uffd_wp(pte) && !is_pte_marker_entry(pte);
    entryStore(slot, keepWp ? make_pte_marker(PTE_MARKER_UFFD_WP) : 0);
  }
}

/**
 * A non-present entry a file-only zap (!should_zap_cows()) leaves: genuine swap entries (only
 * anonymous pages are swapped to PTEs), hwpoison and poisoned markers, and migration and device
 * entries of anonymous folios (should_zap_folio()).
 */
function zap_keeps_cow_entry(pte: u64, type: u32): bool {
  if (type < MAX_SWAPFILES || is_hwpoison_entry(pte)) return true;
  if (is_pte_marker_entry(pte)) return (pte_marker_get(pte) & PTE_MARKER_POISONED) != 0;
  if (is_migration_entry(pte) || is_device_private_entry(pte) || is_device_exclusive_entry(pte)) {
    return folio_test_anon(page_folio(<u32>swp_offset(pte)));
  }
  return false;
}

/**
 * zap_page_range_single() / unmap_page_range(): clear every entry of [start, end) in `mm`
 * (zap_pte_range(), zap_present_ptes(), zap_nonpresent_ptes(), zap_huge_pmd()).
 *
 * A present page loses its map count and the PTE's reference; the last reference frees it
 * (there is no TLB to flush first, so the mmu_gather batching of Linux is not needed).
 * A swap entry drops its swap count (free_swap_and_cache()); when only the swap cache still
 * holds the slot, a SWAP_CACHE_ONLY record tells the caller. With ZAP_RECORD every page
 * unmapped is handed back. Page tables stay; free_pgd_range() frees the empty ones.
 * Returns the number of records, or -EINVAL.
 */
export function zap_page_range(ctx: u32, mm: u32, start: f64, end: f64, flags: u32): i32 {
  const bad = begin_range_op(ctx, mm, start, end);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const w = walk_of<ZapWalk>(ctx, mm, <u64>start, WALK_RECORDS);
  w.flags = flags;
  w.cap = ctxCapacity();
  w.zapped = 0;
  w.rssAnon = 0;
  w.rssSwap = 0;
  w.rssShmem = 0;
  w.rssFile = 0;
  w.end = <u64>end;
  w.batchFolio = NO_PFN;
  w.batchUnmapped = 0;
  w.up = !ctx_smp();
  const stopped = walk_page_range<ZapWalk>(w, <u64>start, <u64>end) == WALK_STOP;

  add_mm_counter(mm, MM_ANONPAGES, w.rssAnon);
  add_mm_counter(mm, MM_SWAPENTS, w.rssSwap);
  add_mm_counter(mm, MM_SHMEMPAGES, w.rssShmem);
  add_mm_counter(mm, MM_FILEPAGES, w.rssFile);
  count_vm_events(ZAP_PTES, w.zapped);
  C.next = stopped ? <f64>w.next : end;
  return <i32>C.nrRecords;
}

// ---- do_anonymous_page() over a range ---------------------------------------------------------
/** Map fresh zeroed pages (a write fault); without it, the shared zero page (a read fault). */
export const ANON_WRITE: u32 = 1;
/** VM_WRITE: a fresh page is mapped writable and dirty (pte_mkwrite(pte_mkdirty())). */
export const ANON_VM_WRITE: u32 = 2;
/** The VMA is registered for uffd-wp in mode WP_UNPOPULATED: map with uffd-wp set. */
export const ANON_UFFD_WP: u32 = 4;

/**
 * The none PTEs of a range and the tables a walk with WALK_ALLOC over it would install:
 * do_anonymous_pages() and change_protection()'s uffd-wp markers reserve them first. Without
 * `pages`, PTE tables are not entered (only tables are counted).
 */
@unmanaged export class CountNoneWalk extends MmWalk {
  countPages: u32;
  tables: u32;
  pages: u32;

  pte_hole(addr: u64, next: u64, depth: i32): i32 {
    this.tables += hole_tables(addr, next, depth);
    this.pages += <u32>((next - addr) >> 12);
    return 0;
  }
  /** PMD leaves and PMD swap entries are left alone: nothing to count. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    if (!isTableEntry(pmd) || this.countPages == 0) this.action = ACTION_CONTINUE;
    return 0;
  }
  // @ts-ignore: decorator
  @inline pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    return pte_none(pte) ? 1 : 0;
  }
  pte_tally(sum: u32): void {
    this.pages += sum;
  }
}

/** Counts the none PTEs of [start, end) of `mm` and the tables populating them needs. */
export function count_none(ctx: u32, mm: u32, start: u64, end: u64, countPages: bool): CountNoneWalk {
  const w = walk_of<CountNoneWalk>(ctx, mm, start, 0);
  w.countPages = countPages ? 1 : 0;
  w.tables = 0;
  w.pages = 0;
  walk_page_range<CountNoneWalk>(w, start, end);
  return w;
}

/** do_anonymous_page() for each none PTE, over tables the walk installs (WALK_ALLOC). */
@unmanaged class AnonWalk extends MmWalk {
  anonVma: u32;
  index: u32;
  flags: u32;
  done: i32;
  baseProt: u64;
  /** newAnonFolioAloneOk() when the walk began: each new folio made by newAnonFolioAlone() */
  alone: bool;

  // @ts-ignore: decorator
  @inline pte_entry(slot: u32, old: u64, addr: u64): i32 {
    if (!pte_none(old)) return 0;
    let pte: u64;
    if (this.flags & ANON_WRITE) {
      const index = this.index + <u32>((addr - this.base) >> 12);
      let pfn: u32;
      if (this.alone) {
        pfn = newAnonFolioAlone(this.ctx, (this.anonVma << 2) | PAGE_MAPPING_ANON, index);
        clear_page_contents(pfn);
      } else {
        pfn = alloc_pages(this.ctx, 0, GFP_ZERO);
        folio_add_new_anon_rmap(pfn, this.anonVma, index, RMAP_EXCLUSIVE);
        folio_add_lru(this.ctx, pfn);
      }
      pte = pfn_pte(<u64>pfn, this.baseProt);
      if (this.flags & ANON_VM_WRITE) pte = pte_mkwrite(pte_mkdirty(pte));
    } else {
      pte = pfn_pte(0, this.baseProt) | _PAGE_SPECIAL;
    }
    if (this.flags & ANON_UFFD_WP) pte = pte_mkuffd_wp(pte);
    page_table_check_pte_set(addr, pte);
    entryStore(slot, pte);
    return 1;
  }
  pte_tally(sum: u32): void {
    this.done += <i32>sum;
  }
}

/**
 * do_anonymous_page() for every none PTE of [start, end) in `mm`, as MAP_POPULATE or a run of
 * first-touch faults would: with ANON_WRITE a fresh zeroed page, exclusive
 * (folio_add_new_anon_rmap(RMAP_EXCLUSIVE)), joining anon_vma `anonVma` at page index
 * `index` + offset; otherwise the shared zero page, special and read-only. `prot` is the VMA's
 * vm_page_prot (P/U/PROTNONE bits). Entries that are not none are left alone, as are PMD
 * leaves. Frames and tables are reserved first: -ENOMEM means nothing changed.
 * Returns the number of pages mapped.
 */
export function do_anonymous_pages(
  ctx: u32, mm: u32, start: f64, end: f64, anonVma: u32, index: u32, prot: u32, flags: u32,
): i32 {
  const bad = begin_range_op(ctx, mm, start, end);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const from = <u64>start;
  const stop = <u64>end;
  const counted = count_none(ctx, mm, from, stop, true);
  const pages = counted.pages;
  const write = (flags & ANON_WRITE) != 0;
  if (!pt_reserve(ctx, counted.tables)) return -ENOMEM;
  if (write && !frames_reserve(ctx, pages)) {
    pt_unreserve(ctx);
    return -ENOMEM;
  }
  const w = walk_of<AnonWalk>(ctx, mm, from, WALK_ALLOC);
  w.anonVma = anonVma;
  w.index = index;
  w.flags = flags;
  w.done = 0;
  w.baseProt = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  w.alone = newAnonFolioAloneOk();
  walk_page_range<AnonWalk>(w, from, stop);
  if (write) add_mm_counter(mm, MM_ANONPAGES, w.done);
  frames_unreserve(ctx);
  pt_unreserve(ctx);
  C.next = end;
  return w.done;
}
