// Range operations of mm/memory.c: copy_page_range() for fork and zap_page_range() for
// munmap / MADV_DONTNEED / exit. One call handles a whole range; entries that need a decision
// from a COW strategy, or that the TypeScript side must know about, come back as records.
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
  ctxOf, ctxCapacity, pushRecord, hdr, NO_PFN, PAGE_SIZE, HPAGE_PMD_NR, count_vm_events,
  FORK_PTES_SHARED, FORK_PTES_DEFERRED, ZAP_PTES, EINVAL, ENOMEM, EEXIST,
} from "./layout";
import {
  pte_none, pte_present, pte_pfn, pte_write, pte_special, pte_uffd_wp, pte_dirty, pte_young,
  pte_wrprotect, pte_mkclean, pte_mkold, pte_clear_uffd_wp, pte_mkdirty, pte_mkwrite, pfn_pte,
  pmd_leaf, swp_type, swp_offset, pte_swp_exclusive, pte_swp_clear_exclusive,
  pte_swp_uffd_wp, pte_swp_clear_uffd_wp, pte_swp_soft_dirty, pte_swp_mksoft_dirty,
  pte_swp_mkuffd_wp, is_migration_entry, is_readable_migration_entry,
  is_writable_device_private_entry, make_readable_migration_entry,
  make_readable_device_private_entry, is_device_private_entry, is_device_exclusive_entry,
  is_hwpoison_entry, is_pte_marker_entry, pte_marker_get, make_pte_marker, pte_marker_uffd_wp,
  pte_mkuffd_wp, pte_kind, MAX_SWAPFILES, _PAGE_RW, _PAGE_PRESENT, _PAGE_USER, _PAGE_ACCESSED,
  _PAGE_PROTNONE, _PAGE_SPECIAL, PTE_KIND_MARKER,
  PTE_MARKER_UFFD_WP, PTE_MARKER_POISONED, PTE_MARKER_GUARD,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, entryTable, isTableEntry, pgdSlot,
  pudIndex, pmdIndex, pteIndex, mmAddr, MmStruct, mm_valid, mm_flags, add_mm_counter,
  mm_write_protect_seq_inc, pt_reserve, pt_reserve_upto, pt_unreserve, pt_alloc_table, pt_free_table,
  tableAddr, PMD_SIZE, PUD_SIZE, PGDIR_SIZE, PUD_SHIFT, PGDIR_SHIFT, TASK_SIZE,
  MMF_HAS_PINNED, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, MM_FILEPAGES,
} from "./pgtable";
import {
  pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_add,
  folio_maybe_dma_pinned, PageAnonExclusive, setPageFlag, testPageFlag, PG_dirty,
  PG_referenced, PG_swapcache, PG_swapbacked, PG_locked,
} from "./page";
import {
  folio_try_dup_anon_rmap_ptes, folio_try_dup_anon_rmap_pmd, folio_add_rmap_ptes,
  folio_add_rmap_pmd, folio_remove_rmap_ptes, folio_remove_rmap_pmd, folio_put_refs,
  folio_add_new_anon_rmap, folio_is_mapped, mm_counter_of, RMAP_EXCLUSIVE,
} from "./rmap";
import { swap_duplicate, swap_free, swap_cache_pfn, SWAP_HAS_CACHE } from "./swapfile";
import { copy_page_contents } from "./content";
import { alloc_pages, frames_reserve, frames_unreserve, GFP_ZERO } from "./page_alloc";
import { folio_add_lru } from "./fault";
import { folio_free_swap } from "./swap_state";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";

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

// ---- zap flags ---------------------------------------------------------------------------------
/** Hand back one ZAP_PAGE record per present page unmapped. */
export const ZAP_RECORD: u32 = 1;
/** zap_install_uffd_wp_if_needed(): leave a uffd-wp marker where a uffd-wp entry was (shmem). */
export const ZAP_KEEP_UFFD_WP: u32 = 2;
/** ZAP_FLAG_DROP_MARKER: drop markers too (munmap / exit); otherwise guard markers stay. */
export const ZAP_DROP_MARKERS: u32 = 4;

// @ts-ignore: decorator
@inline function pmdAlignUp(a: u64): u64 {
  return (a + PMD_SIZE) & ~(PMD_SIZE - 1);
}
// @ts-ignore: decorator
@inline function alignUp(a: u64, size: u64): u64 {
  return (a + size) & ~(size - 1);
}

/** Validates a page-aligned user range; returns 0 or -EINVAL. */
export function check_range(start: f64, end: f64): i32 {
  if (!(start >= 0) || !(end <= <f64>TASK_SIZE) || !(start < end)) return -EINVAL;
  const s = <u64>start;
  const e = <u64>end;
  if (<f64>s != start || <f64>e != end) return -EINVAL;
  if ((s | e) & <u64>(PAGE_SIZE - 1)) return -EINVAL;
  return 0;
}

/**
 * The common start of a range operation on `mm`: clear the context's records, point `next`
 * at `start`, and validate. Returns 0 or -EINVAL.
 */
export function begin_range_op(ctx: u32, mm: u32, start: f64, end: f64): i32 {
  const C = ctxOf(ctx);
  C.nrRecords = 0;
  C.next = start;
  const bad = check_range(start, end);
  if (bad != 0) return bad;
  return mm_valid(mm) ? 0 : -EINVAL;
}

/**
 * The address of the next PMD-sized region at or after `addr` whose upper levels exist in `mm`,
 * so walks skip unpopulated gigabytes in one step. Returns `addr` itself when it is populated.
 */
function nextPopulated(mm: u32, addr: u64, stop: u64): u64 {
  while (addr < stop) {
    const ge = entryLoad(pgdSlot(mm, addr));
    if (!isTableEntry(ge)) { addr = alignUp(addr, PGDIR_SIZE); continue; }
    const ue = entryLoad(entryTable(ge) + (pudIndex(addr) << 3));
    if (!isTableEntry(ue)) { addr = alignUp(addr, PUD_SIZE); continue; }
    return addr;
  }
  return stop;
}

/**
 * The tables the child needs to receive [addr, stop) of the parent, counted before anything
 * changes. Returns -EEXIST if the child already maps something where the parent has a table.
 */
function countCopyTables(dst: u32, src: u32, addr: u64, stop: u64): i64 {
  let n: i64 = 0;
  let lastG: u64 = <u64>-1;
  let lastU: u64 = <u64>-1;
  while (true) {
    addr = nextPopulated(src, addr, stop);
    if (addr >= stop) break;
    const pmdp = walk_pmdp(src, addr);
    const pmd = entryLoad(pmdp);
    const next = pmdAlignUp(addr);
    if (!pte_none(pmd)) {
      const needPte: i64 = isTableEntry(pmd) ? 1 : 0;
      const g = addr >> PGDIR_SHIFT;
      const u = addr >> PUD_SHIFT;
      const ge: u64 = dst == FRESH_MM ? 0 : entryLoad(pgdSlot(dst, addr));
      if (!isTableEntry(ge)) {
        if (!pte_none(ge)) return -EEXIST;
        if (g != lastG) { n++; lastG = g; }
        if (u != lastU) { n++; lastU = u; }
        n += needPte;
      } else {
        const ue = entryLoad(entryTable(ge) + (pudIndex(addr) << 3));
        if (!isTableEntry(ue)) {
          if (!pte_none(ue)) return -EEXIST;
          if (u != lastU) { n++; lastU = u; }
          n += needPte;
        } else {
          const me = entryLoad(entryTable(ue) + (pmdIndex(addr) << 3));
          if (pte_none(me)) n += needPte;
          else if (!isTableEntry(me) || !isTableEntry(pmd)) return -EEXIST;
        }
      }
    }
    addr = next;
  }
  return n;
}

/** The PTE table of `dst` for `addr`, installing tables from the context's reservation. */
function dstPteTable(ctx: u32, dst: u32, addr: u64): u32 {
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
 * once (copy_page_range_count()), and the caller returns the rest with pt_unreserve(). Returns the number of records, -EINVAL (bad range or mm),
 * -EEXIST (the child maps something there) or -ENOMEM (page tables): on an error nothing has
 * changed.
 */
export function copy_page_range(ctx: u32, dst: u32, src: u32, start: f64, end: f64, flags: u32): i32 {
  const bad = begin_range_op(ctx, src, start, end);
  if (bad != 0) return bad;
  if (!mm_valid(dst) || dst == src) return -EINVAL;
  const C = ctxOf(ctx);
  let addr = <u64>start;
  const stop = <u64>end;
  const need = countCopyTables(dst, src, addr, stop);
  if (need < 0) return <i32>need;
  if (<u32>need > C.ptReserved && !pt_reserve(ctx, <u32>need - C.ptReserved)) return -ENOMEM;

  const cow = (flags & COPY_COW) != 0;
  if (cow) mm_write_protect_seq_inc(src);
  const hasPinned = (mm_flags(src) & MMF_HAS_PINNED) != 0;
  const deferAny = hasPinned && (flags & COPY_DEFER_PINNED_ANY) != 0;
  const deferExclusive = hasPinned && (flags & COPY_DEFER_PINNED_EXCLUSIVE) != 0;
  const cap = ctxCapacity();
  let rssAnon: i32 = 0, rssSwap: i32 = 0, rssShmem: i32 = 0, rssFile: i32 = 0;
  let shared: u32 = 0, deferred: u32 = 0;
  const base = addr;
  let stopped = false;

  while (addr < stop && !stopped) {
    addr = nextPopulated(src, addr, stop);
    if (addr >= stop) break;
    const next = min<u64>(pmdAlignUp(addr), stop);
    const srcPmdp = walk_pmdp(src, addr);
    const pmd = entryLoad(srcPmdp);
    if (pte_none(pmd)) { addr = next; continue; }
    if (!isTableEntry(pmd)) {
      // a PMD leaf (THP) or a PMD migration entry
      if (C.nrRecords >= cap) { stopped = true; break; }
      const whole = (addr & (PMD_SIZE - 1)) == 0 && next - addr == PMD_SIZE;
      if (!whole || !pmd_leaf(pmd)) {
        pushRecord(ctx, REC_PMD_PARTIAL, <u32>((addr - base) >> 12), <u32>pte_pfn(pmd), <u32>pmd);
        addr = next;
        continue;
      }
      const folio = <u32>pte_pfn(pmd);
      if (folio_test_anon(folio)) {
        const maybe = (deferAny || deferExclusive) && folio_maybe_dma_pinned(folio);
        if (maybe && (deferAny || PageAnonExclusive(folio))) {
          pushRecord(ctx, REC_FORK_PMD_PINNED, <u32>((addr - base) >> 12), folio, <u32>pmd);
          deferred++;
          addr = next;
          continue;
        }
        folio_ref_add(folio, 1);
        folio_try_dup_anon_rmap_pmd(folio, false);
        rssAnon += <i32>HPAGE_PMD_NR;
      } else {
        folio_ref_add(folio, 1);
        folio_add_rmap_pmd(folio);
        if (testPageFlag(folio, PG_swapbacked)) rssShmem += <i32>HPAGE_PMD_NR; else rssFile += <i32>HPAGE_PMD_NR;
      }
      let child = pmd;
      if (cow && pte_write(pmd)) {
        atomic.and<u64>(srcPmdp, ~_PAGE_RW);
        child = pte_wrprotect(child);
      }
      child = pte_mkold(child);
      if (!(flags & COPY_DST_UFFD_WP)) child = pte_clear_uffd_wp(child);
      const dstPmdp = walk_alloc_pmdp(ctx, dst, addr);
      page_table_check_pmd_set(addr, child);
      entryStore(dstPmdp, child);
      shared += HPAGE_PMD_NR;
      addr = next;
      continue;
    }

    const srcTable = entryTable(pmd);
    const dstTable = dstPteTable(ctx, dst, addr);
    // countCopyTables() reserved every table and checked the child's slots
    assert(dstTable != 0);
    for (; addr < next; addr += PAGE_SIZE) {
      const i = pteIndex(addr) << 3;
      const srcSlot = srcTable + i;
      const pte = entryLoad(srcSlot);
      if (pte_none(pte)) continue;
      if (C.nrRecords >= cap) { stopped = true; break; }
      const dstSlot = dstTable + i;
      const off = <u32>((addr - base) >> 12);

      if (pte_present(pte)) {
        const pfn = <u32>pte_pfn(pte);
        if (!pte_special(pte) && pfn_valid(pfn)) {
          const folio = page_folio(pfn);
          if (folio_test_anon(folio)) {
            if ((deferAny || deferExclusive) && folio_maybe_dma_pinned(folio) &&
                (deferAny || PageAnonExclusive(pfn))) {
              pushRecord(ctx, REC_FORK_PINNED, off, pfn, <u32>pte);
              deferred++;
              continue;
            }
            folio_ref_add(folio, 1);
            folio_try_dup_anon_rmap_ptes(folio, pfn, 1, false);
            rssAnon++;
          } else {
            folio_ref_add(folio, 1);
            folio_add_rmap_ptes(folio, pfn, 1);
            if (testPageFlag(folio, PG_swapbacked)) rssShmem++; else rssFile++;
          }
        }
        let child = pte;
        if (cow && pte_write(pte)) {
          // ptep_set_wrprotect(): an atomic AND, like x86's clear_bit(), so an A/D bit the
          // simulated CPU sets meanwhile is not lost
          atomic.and<u64>(srcSlot, ~_PAGE_RW);
          child = pte_wrprotect(child);
        }
        if (flags & COPY_SHARED) child = pte_mkclean(child);
        child = pte_mkold(child);
        if (!(flags & COPY_DST_UFFD_WP)) child = pte_clear_uffd_wp(child);
        page_table_check_pte_set(addr, child);
        entryStore(dstSlot, child);
        shared++;
        continue;
      }

      // copy_nonpresent_pte()
      const type = swp_type(pte);
      let child = pte;
      if (type < MAX_SWAPFILES) {
        const slot = <u32>swp_offset(pte);
        if (swap_duplicate(slot) != 0) {
          // a swap PTE naming a slot not in use is a bug elsewhere; leave it visible
          pushRecord(ctx, REC_SWAP, off, slot, 0xffffffff);
          continue;
        }
        if (pte_swp_exclusive(pte)) {
          atomic.and<u64>(srcSlot, ~(<u64>1 << 3));
          child = pte_swp_clear_exclusive(child);
        }
        rssSwap++;
        pushRecord(ctx, REC_SWAP, off, slot, <u32>pte);
      } else if (is_migration_entry(pte)) {
        const pfn = <u32>swp_offset(pte);
        const m = mm_counter_of(page_folio(pfn));
        if (m == MM_ANONPAGES) rssAnon++; else if (m == MM_SHMEMPAGES) rssShmem++; else rssFile++;
        if (!is_readable_migration_entry(pte) && cow) {
          let np = make_readable_migration_entry(<u64>pfn);
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
        rssAnon++;
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
        deferred++;
        continue;
      } else if (is_pte_marker_entry(pte)) {
        // copy_pte_marker(): uffd-wp only into a uffd-wp child; poison and guard always
        let m = pte_marker_get(pte) & (PTE_MARKER_POISONED | PTE_MARKER_GUARD);
        if (flags & COPY_DST_UFFD_WP) m |= pte_marker_get(pte) & PTE_MARKER_UFFD_WP;
        if (m != 0) entryStore(dstSlot, make_pte_marker(m));
        pushRecord(ctx, REC_MARKER, off, 0, m);
        continue;
      } else if (is_hwpoison_entry(pte)) {
        pushRecord(ctx, REC_HWPOISON, off, <u32>swp_offset(pte), <u32>pte);
      }
      if (!(flags & COPY_DST_UFFD_WP)) child = pte_swp_clear_uffd_wp(child);
      entryStore(dstSlot, child);
    }
  }

  if (cow) mm_write_protect_seq_inc(src);
  add_mm_counter(dst, MM_ANONPAGES, rssAnon);
  add_mm_counter(dst, MM_SWAPENTS, rssSwap);
  add_mm_counter(dst, MM_SHMEMPAGES, rssShmem);
  add_mm_counter(dst, MM_FILEPAGES, rssFile);
  count_vm_events(FORK_PTES_SHARED, shared);
  count_vm_events(FORK_PTES_DEFERRED, deferred);
  C.next = stopped ? <f64>addr : end;
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
  copy_page_contents(newPfn, pfn);
  folio_add_new_anon_rmap(newPfn, anonVma, index, RMAP_EXCLUSIVE);
  folio_add_lru(ctx, newPfn);
  let child = pfn_pte(<u64>newPfn, pte & (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_PROTNONE));
  child = pte_mkdirty(child);
  if (flags & COPY_VM_WRITE) child = pte_mkwrite(child);
  if ((flags & COPY_DST_UFFD_WP) && pte_uffd_wp(pte)) child = pte_mkuffd_wp(child);
  page_table_check_pte_set(a, child);
  entryStore(dstSlot, child);
  add_mm_counter(dst, MM_ANONPAGES, 1);
  return 0;
}

function tablesMissingFor(mm: u32, a: u64): u32 {
  const ge = entryLoad(pgdSlot(mm, a));
  if (!isTableEntry(ge)) return 3;
  const ue = entryLoad(entryTable(ge) + (pudIndex(a) << 3));
  if (!isTableEntry(ue)) return 2;
  const me = entryLoad(entryTable(ue) + (pmdIndex(a) << 3));
  return pte_none(me) ? 1 : 0;
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
  let addr = <u64>start;
  const stop = <u64>end;
  const base = addr;
  const cap = ctxCapacity();
  const record = (flags & ZAP_RECORD) != 0;
  let rssAnon: i32 = 0, rssSwap: i32 = 0, rssShmem: i32 = 0, rssFile: i32 = 0;
  let zapped: u32 = 0;
  let stopped = false;

  while (addr < stop && !stopped) {
    addr = nextPopulated(mm, addr, stop);
    if (addr >= stop) break;
    const next = min<u64>(pmdAlignUp(addr), stop);
    const pmdp = walk_pmdp(mm, addr);
    const pmd = entryLoad(pmdp);
    if (pte_none(pmd)) { addr = next; continue; }
    if (!isTableEntry(pmd)) {
      if (C.nrRecords >= cap) { stopped = true; break; }
      const whole = (addr & (PMD_SIZE - 1)) == 0 && next - addr == PMD_SIZE;
      if (!whole || !pmd_leaf(pmd)) {
        pushRecord(ctx, REC_PMD_PARTIAL, <u32>((addr - base) >> 12), <u32>pte_pfn(pmd), <u32>pmd);
        addr = next;
        continue;
      }
      // zap_huge_pmd()
      const old = atomic.xchg<u64>(pmdp, 0);
      const folio = <u32>pte_pfn(old);
      let aux: u32 = 0;
      const anon = folio_test_anon(folio);
      if (anon) { aux |= ZAPPED_ANON; rssAnon -= <i32>HPAGE_PMD_NR; }
      else if (testPageFlag(folio, PG_swapbacked)) rssShmem -= <i32>HPAGE_PMD_NR;
      else rssFile -= <i32>HPAGE_PMD_NR;
      if (PageAnonExclusive(folio)) aux |= ZAPPED_EXCLUSIVE;
      if (pte_dirty(old)) { aux |= ZAPPED_DIRTY; if (!anon) setPageFlag(folio, PG_dirty); }
      if (pte_young(old)) { aux |= ZAPPED_YOUNG; setPageFlag(folio, PG_referenced); }
      folio_remove_rmap_pmd(folio);
      if (testPageFlag(folio, PG_swapcache)) aux |= ZAPPED_SWAPCACHE;
      if (folio_put_refs(folio, 1)) aux |= ZAPPED_FREED;
      if (record) pushRecord(ctx, REC_ZAP_PMD, <u32>((addr - base) >> 12), folio, aux);
      zapped += HPAGE_PMD_NR;
      addr = next;
      continue;
    }

    const table = entryTable(pmd);
    for (; addr < next; addr += PAGE_SIZE) {
      const slot = table + (pteIndex(addr) << 3);
      const pte = entryLoad(slot);
      if (pte_none(pte)) continue;
      if (C.nrRecords >= cap) { stopped = true; break; }
      const off = <u32>((addr - base) >> 12);

      if (pte_present(pte)) {
        // ptep_get_and_clear(): an exchange, so the A/D bits are the final ones
        const old = atomic.xchg<u64>(slot, 0);
        if ((flags & ZAP_KEEP_UFFD_WP) && pte_uffd_wp(old)) {
          entryStore(slot, make_pte_marker(PTE_MARKER_UFFD_WP));
        }
        const pfn = <u32>pte_pfn(old);
        if (pte_special(old) || !pfn_valid(pfn)) continue;
        const folio = page_folio(pfn);
        let aux: u32 = 0;
        const anon = folio_test_anon(folio);
        if (anon) { aux |= ZAPPED_ANON; rssAnon--; }
        else if (testPageFlag(folio, PG_swapbacked)) rssShmem--;
        else rssFile--;
        if (PageAnonExclusive(pfn)) aux |= ZAPPED_EXCLUSIVE;
        if (pte_dirty(old)) { aux |= ZAPPED_DIRTY; if (!anon) setPageFlag(folio, PG_dirty); }
        if (pte_young(old)) { aux |= ZAPPED_YOUNG; setPageFlag(folio, PG_referenced); }
        folio_remove_rmap_ptes(folio, pfn, 1);
        if (testPageFlag(folio, PG_swapcache)) {
          aux |= ZAPPED_SWAPCACHE;
          // free_swap_cache(): an unmapped swap-cache folio no swap entry needs leaves the cache
          if (!folio_is_mapped(folio) && !testPageFlag(folio, PG_locked)) folio_free_swap(folio);
        }
        if (folio_put_refs(folio, 1)) aux |= ZAPPED_FREED;
        if (record) pushRecord(ctx, REC_ZAP_PAGE, off, pfn, aux);
        zapped++;
        continue;
      }

      const type = swp_type(pte);
      if (type < MAX_SWAPFILES) {
        const slotNo = <u32>swp_offset(pte);
        const cachePfn = swap_cache_pfn(slotNo);
        const left = swap_free(slotNo);
        rssSwap--;
        if (left == <i32>SWAP_HAS_CACHE) pushRecord(ctx, REC_SWAP_CACHE_ONLY, off, slotNo, cachePfn);
      } else if (is_migration_entry(pte)) {
        const m = mm_counter_of(page_folio(<u32>swp_offset(pte)));
        if (m == MM_ANONPAGES) rssAnon--; else if (m == MM_SHMEMPAGES) rssShmem--; else rssFile--;
      } else if (is_device_private_entry(pte)) {
        const pfn = <u32>swp_offset(pte);
        const folio = page_folio(pfn);
        rssAnon--;
        folio_remove_rmap_ptes(folio, pfn, 1);
        folio_put_refs(folio, 1);
      } else if (is_pte_marker_entry(pte)) {
        const m = pte_marker_get(pte);
        const keep = (flags & ZAP_DROP_MARKERS) == 0 &&
          ((m & PTE_MARKER_GUARD) != 0 || ((m & PTE_MARKER_UFFD_WP) != 0 && (flags & ZAP_KEEP_UFFD_WP) != 0));
        if (keep) continue;
      }
      const keepWp = (flags & ZAP_KEEP_UFFD_WP) != 0 && pte_swp_uffd_wp(pte) && !is_pte_marker_entry(pte);
      entryStore(slot, keepWp ? make_pte_marker(PTE_MARKER_UFFD_WP) : 0);
    }
  }

  add_mm_counter(mm, MM_ANONPAGES, rssAnon);
  add_mm_counter(mm, MM_SWAPENTS, rssSwap);
  add_mm_counter(mm, MM_SHMEMPAGES, rssShmem);
  add_mm_counter(mm, MM_FILEPAGES, rssFile);
  count_vm_events(ZAP_PTES, zapped);
  C.next = stopped ? <f64>addr : end;
  return <i32>C.nrRecords;
}

// ---- do_anonymous_page() over a range ---------------------------------------------------------
/** Map fresh zeroed pages (a write fault); without it, the shared zero page (a read fault). */
export const ANON_WRITE: u32 = 1;
/** VM_WRITE: a fresh page is mapped writable and dirty (pte_mkwrite(pte_mkdirty())). */
export const ANON_VM_WRITE: u32 = 2;
/** The VMA is registered for uffd-wp in mode WP_UNPOPULATED: map with uffd-wp set. */
export const ANON_UFFD_WP: u32 = 4;

/** Counts the none PTEs of [addr, stop) and the tables walking there would allocate. */
function countNone(mm: u32, addr: u64, stop: u64): u64 {
  let pages: u64 = 0;
  let tables: u64 = 0;
  let lastG: u64 = <u64>-1;
  let lastU: u64 = <u64>-1;
  while (addr < stop) {
    const next = min<u64>(pmdAlignUp(addr), stop);
    const ge = entryLoad(pgdSlot(mm, addr));
    let pmdSlot: u32 = 0;
    if (!isTableEntry(ge)) {
      if ((addr >> PGDIR_SHIFT) != lastG) { tables++; lastG = addr >> PGDIR_SHIFT; }
      if ((addr >> PUD_SHIFT) != lastU) { tables++; lastU = addr >> PUD_SHIFT; }
    } else {
      const ue = entryLoad(entryTable(ge) + (pudIndex(addr) << 3));
      if (!isTableEntry(ue)) {
        if ((addr >> PUD_SHIFT) != lastU) { tables++; lastU = addr >> PUD_SHIFT; }
      } else {
        pmdSlot = entryTable(ue) + (pmdIndex(addr) << 3);
      }
    }
    const me = pmdSlot != 0 ? entryLoad(pmdSlot) : 0;
    if (pte_none(me)) {
      tables++;
      pages += (next - addr) >> 12;
    } else if (isTableEntry(me)) {
      const t = entryTable(me);
      for (let a = addr; a < next; a += PAGE_SIZE) {
        if (pte_none(entryLoad(t + (pteIndex(a) << 3)))) pages++;
      }
    }
    addr = next;
  }
  return (tables << 32) | pages;
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
  let addr = <u64>start;
  const stop = <u64>end;
  const counted = countNone(mm, addr, stop);
  const pages = <u32>counted;
  const tables = <u32>(counted >> 32);
  const write = (flags & ANON_WRITE) != 0;
  if (!pt_reserve(ctx, tables)) return -ENOMEM;
  if (write && !frames_reserve(ctx, pages)) {
    pt_unreserve(ctx);
    return -ENOMEM;
  }
  const base = addr;
  const baseProt: u64 = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED;
  let done: i32 = 0;
  while (addr < stop) {
    const next = min<u64>(pmdAlignUp(addr), stop);
    const pmdp = walk_alloc_pmdp(ctx, mm, addr);
    let me = entryLoad(pmdp);
    if (pte_none(me)) {
      const idx = pt_alloc_table(ctx);
      me = pfn_pte(<u64>idx, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED);
      entryStore(pmdp, me);
      atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
    }
    if (!isTableEntry(me)) { addr = next; continue; }
    const t = entryTable(me);
    for (; addr < next; addr += PAGE_SIZE) {
      const slot = t + (pteIndex(addr) << 3);
      if (!pte_none(entryLoad(slot))) continue;
      let pte: u64;
      if (write) {
        const pfn = alloc_pages(ctx, 0, GFP_ZERO);
        folio_add_new_anon_rmap(pfn, anonVma, index + <u32>((addr - base) >> 12), RMAP_EXCLUSIVE);
        folio_add_lru(ctx, pfn);
        pte = pfn_pte(<u64>pfn, baseProt);
        if (flags & ANON_VM_WRITE) pte = pte_mkwrite(pte_mkdirty(pte));
      } else {
        pte = pfn_pte(0, baseProt) | _PAGE_SPECIAL;
      }
      if (flags & ANON_UFFD_WP) pte = pte_mkuffd_wp(pte);
      page_table_check_pte_set(addr, pte);
      entryStore(slot, pte);
      done++;
    }
  }
  if (write) add_mm_counter(mm, MM_ANONPAGES, done);
  frames_unreserve(ctx);
  pt_unreserve(ctx);
  C.next = end;
  return done;
}

// ---- fork's dry run ----------------------------------------------------------------------------

/** copy_page_range_count()'s destination for a child that does not exist yet (all tables missing). */
export const FRESH_MM: u32 = 0xffffffff;

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
  const C = ctxOf(ctx);
  let addr = <u64>start;
  const stop = <u64>end;
  const tables = countCopyTables(dst, src, addr, stop);
  if (tables < 0) return <i32>tables;
  C.aux0 = <u32>tables;
  const hasPinned = (mm_flags(src) & MMF_HAS_PINNED) != 0;
  const deferAny = hasPinned && (flags & COPY_DEFER_PINNED_ANY) != 0;
  const deferExclusive = hasPinned && (flags & COPY_DEFER_PINNED_EXCLUSIVE) != 0;
  if (!deferAny && !deferExclusive) return 0;
  let n: u32 = 0;
  while (addr < stop) {
    addr = nextPopulated(src, addr, stop);
    if (addr >= stop) break;
    const next = min<u64>(pmdAlignUp(addr), stop);
    const pmd = entryLoad(walk_pmdp(src, addr));
    if (pmd_leaf(pmd)) {
      const folio = <u32>pte_pfn(pmd);
      if (folio_test_anon(folio) && folio_maybe_dma_pinned(folio) && (deferAny || PageAnonExclusive(folio))) {
        n += HPAGE_PMD_NR;
      }
    } else if (isTableEntry(pmd)) {
      const t = entryTable(pmd);
      for (let a = addr; a < next; a += PAGE_SIZE) {
        const pte = entryLoad(t + (pteIndex(a) << 3));
        if (!pte_present(pte) || pte_special(pte)) continue;
        const pfn = <u32>pte_pfn(pte);
        if (!pfn_valid(pfn)) continue;
        const folio = page_folio(pfn);
        if (folio_test_anon(folio) && folio_maybe_dma_pinned(folio) && (deferAny || PageAnonExclusive(pfn))) n++;
      }
    }
    addr = next;
  }
  return <i32>n;
}

// ---- mremap's move_page_tables() --------------------------------------------------------------

/**
 * move_page_tables() / move_ptes(): move every entry of [oldStart, oldStart + len) to newStart,
 * as mremap() does. Entries move as they are — present pages keep their map counts, references
 * and PageAnonExclusive; the rmap finds them through the new VMA (same anon_vma, same pgoff).
 * The destination must be empty. Reserves its tables first: -ENOMEM changes nothing.
 * A PMD leaf moves whole when both ranges are PMD-aligned around it; otherwise the call stops
 * with a PMD_PARTIAL record (split first). Returns the number of records or -errno.
 */
export function move_page_tables(ctx: u32, mm: u32, oldStart: f64, newStart: f64, len: f64): i32 {
  let bad = begin_range_op(ctx, mm, oldStart, oldStart + len);
  if (bad == 0) bad = check_range(newStart, newStart + len);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const from = <u64>oldStart;
  const to = <u64>newStart;
  const n = <u64>len;
  if (from < to + n && to < from + n) return -EINVAL;
  // count the destination's tables: every populated source PMD needs one at its destination
  let need: u32 = 0;
  let lastU: u64 = <u64>-1;
  let lastG: u64 = <u64>-1;
  for (let off: u64 = 0; off < n;) {
    const a = from + off;
    const step = min<u64>(pmdAlignUp(a) - a, min<u64>(pmdAlignUp(to + off) - (to + off), n - off));
    const pmdp = walk_pmdp(mm, a);
    if (pmdp != 0 && !pte_none(entryLoad(pmdp))) {
      const d = to + off;
      if ((d >> PUD_SHIFT) != lastU || (d >> PGDIR_SHIFT) != lastG) {
        need += tablesMissingFor(mm, d) - 1;
        lastU = d >> PUD_SHIFT;
        lastG = d >> PGDIR_SHIFT;
      }
      if (isTableEntry(entryLoad(pmdp))) need++;
    }
    off += step;
  }
  if (!pt_reserve(ctx, need)) return -ENOMEM;
  for (let off: u64 = 0; off < n;) {
    const a = from + off;
    const d = to + off;
    const step = min<u64>(pmdAlignUp(a) - a, min<u64>(pmdAlignUp(d) - d, n - off));
    const pmdp = walk_pmdp(mm, a);
    const pmd = pmdp != 0 ? entryLoad(pmdp) : 0;
    if (pte_none(pmd)) { off += step; continue; }
    if (!isTableEntry(pmd)) {
      // move_huge_pmd(): only a whole, aligned leaf moves as one
      if ((a & (PMD_SIZE - 1)) == 0 && (d & (PMD_SIZE - 1)) == 0 && step == PMD_SIZE) {
        const dp = walk_alloc_pmdp(ctx, mm, d);
        entryStore(dp, atomic.xchg<u64>(pmdp, 0));
      } else {
        pushRecord(ctx, REC_PMD_PARTIAL, <u32>(off >> 12), <u32>pte_pfn(pmd), <u32>pmd);
        pt_unreserve(ctx);
        C.next = <f64>a;
        return <i32>C.nrRecords;
      }
      off += step;
      continue;
    }
    const st = entryTable(pmd);
    const dt = dstPteTable(ctx, mm, d);
    for (let i: u64 = 0; i < step; i += PAGE_SIZE) {
      const e = atomic.xchg<u64>(st + (pteIndex(a + i) << 3), 0);
      if (e != 0) entryStore(dt + (pteIndex(d + i) << 3), e);
    }
    off += step;
  }
  pt_unreserve(ctx);
  C.next = oldStart + len;
  return <i32>C.nrRecords;
}

// ---- /proc/pid/pagemap ------------------------------------------------------------------------

/**
 * pagemap_read(): one record per non-none entry of [start, end), for invariant sweeps, the
 * oracle and tests: [PTE_KIND | PAGEMAP_* bits, page offset, pfn (swap slot for swap entries,
 * marker bits for markers), low 32 bits of the entry]. A PMD leaf yields one record per 4 KiB
 * page with PAGEMAP_HUGE. Resumable through ctx.next like the other range operations.
 */
export function pagemap_read(ctx: u32, mm: u32, start: f64, end: f64): i32 {
  const bad = begin_range_op(ctx, mm, start, end);
  if (bad != 0) return bad;
  const C = ctxOf(ctx);
  const cap = ctxCapacity();
  let addr = <u64>start;
  const stop = <u64>end;
  const base = addr;
  while (addr < stop) {
    addr = nextPopulated(mm, addr, stop);
    if (addr >= stop) break;
    const next = min<u64>(pmdAlignUp(addr), stop);
    const pmd = entryLoad(walk_pmdp(mm, addr));
    if (pte_none(pmd)) { addr = next; continue; }
    if (!isTableEntry(pmd)) {
      const leaf = pmd_leaf(pmd);
      for (; addr < next; addr += PAGE_SIZE) {
        if (C.nrRecords >= cap) { C.next = <f64>addr; return <i32>C.nrRecords; }
        const pfn = leaf ? <u32>pte_pfn(pmd) + pteIndex(addr) : <u32>swp_offset(pmd);
        pushRecord(ctx, pte_kind(pmd, true) | PAGEMAP_HUGE, <u32>((addr - base) >> 12), pfn, <u32>pmd);
      }
      continue;
    }
    const t = entryTable(pmd);
    for (; addr < next; addr += PAGE_SIZE) {
      const pte = entryLoad(t + (pteIndex(addr) << 3));
      if (pte_none(pte)) continue;
      if (C.nrRecords >= cap) { C.next = <f64>addr; return <i32>C.nrRecords; }
      const kind = pte_kind(pte, true);
      const pfn = pte_present(pte) ? <u32>pte_pfn(pte)
        : kind == PTE_KIND_MARKER ? pte_marker_get(pte) : <u32>swp_offset(pte);
      pushRecord(ctx, kind, <u32>((addr - base) >> 12), pfn, <u32>pte);
    }
  }
  C.next = end;
  return <i32>C.nrRecords;
}
/** pagemap record flag: the entry is (part of) a PMD leaf. */
export const PAGEMAP_HUGE: u32 = 0x100;
