// PMD-mapped transparent huge pages (mm/huge_memory.c): the anonymous THP fault and the huge
// zero page, the write-protect fault on a PMD leaf once the strategy has decided, and the split
// of a PMD into a PTE table (__split_huge_pmd_locked()) with seed 000's three rules (I.6):
//
//   (a) a PMD migration entry becomes 512 PTE migration entries of the same kind — writable,
//       readable-exclusive or readable;
//   (b) a present PMD split without freezing: every subpage inherits the head's
//       PageAnonExclusive, and the PMD's one mapping becomes 512 PTE mappings;
//   (c) a present PMD split with freezing (split_huge_page()'s unmap_folio(), through
//       try_to_migrate() with TTU_SPLIT_HUGE_PMD): the folio is shared first
//       (folio_try_share_anon_rmap_pmd()); when a pin makes that fail, it is split without
//       freezing — rule (b) — and try_to_migrate() fails on the PTEs. Before 5.19 there was
//       nothing to share: the PMD always became migration entries.
//
// Each PMD leaf keeps a PTE table deposited beside it (pgtable_trans_huge_deposit()), so a
// split never allocates. A PMD leaf installed without one (the core tests do) takes a table
// from the pool when split.

import { ctxOf, NO_PFN, HPAGE_PMD_NR, HPAGE_PMD_ORDER, EINVAL } from "./layout";
import {
  pte_none, pte_pfn, pte_write, pte_young, pte_dirty, pte_soft_dirty, pte_uffd_wp, pte_mkwrite,
  pte_mkdirty, pte_mksoft_dirty, pte_mkuffd_wp, pfn_pte, pmd_leaf, pmd_mkhuge, is_swap_pte,
  is_migration_entry, swp_type, swp_offset, swp_entry, pte_swp_soft_dirty, pte_swp_uffd_wp,
  pte_swp_mksoft_dirty, pte_swp_mkuffd_wp,
  _PAGE_PRESENT, _PAGE_USER, _PAGE_PROTNONE, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW,
  _PAGE_SOFT_DIRTY, _PAGE_SPECIAL, _PAGE_TABLE,
} from "./pte";
import {
  walk_pmdp, walk_alloc_pmdp, entryLoad, entryStore, tableAddr, tables_missing, add_mm_counter,
  mmAddr, MmStruct, pt_reserve_upto, pt_unreserve, pt_alloc_table, pgtable_trans_huge_deposit,
  pgtable_trans_huge_withdraw, PMD_SIZE, MM_ANONPAGES,
} from "./pgtable";
import {
  folio_test_large, folio_test_anon, folio_ref_add, folio_ref_count, folio_mapcount, pageFlags,
  pfn_to_page, setPageFlag, testPageFlag, SetPageAnonExclusive, PageAnonExclusive, ClearPageAnonExclusive, PG_reserved,
  PG_dirty, PG_lru, PG_swapcache,
} from "./page";
import {
  folio_add_new_anon_rmap, folio_add_anon_rmap_ptes, folio_remove_rmap_pmd, folio_move_anon_rmap,
  folio_try_share_anon_rmap_pmd, folio_put_refs, RMAP_EXCLUSIVE,
} from "./rmap";
import { alloc_pages, GFP_ZERO } from "./page_alloc";
import {
  ACCESS_NEED_FAULT, ACCESS_ENOMEM, WPF_PFN, WPF_FOLIO, WPF_PAGE_FLAGS, WPF_FOLIO_FLAGS,
  WPF_REFCOUNT, WPF_MAPCOUNT, WPF_SWAPCOUNT, WPF_PTE, WPF_MAPPING, WPF_KIND, WPF_WORDS, WP_ANON,
  WP_ZERO, REUSE_SET_EXCLUSIVE, REUSE_MOVE_ANON, REUSE_UNSHARE,
} from "./fault";
import { swap_count, folio_swap_slot } from "./swapfile";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";
import { migrationEntryKind, migrationEntryFor, MIGRATE_SHARE_ANON } from "./migrate";

/** is_huge_zero_folio(): the huge zero folio is the one large folio that is never freed. */
// @ts-ignore: decorator
@inline export function is_huge_zero_folio(folio: u32): bool {
  return folio_test_large(folio) && testPageFlag(folio, PG_reserved);
}
/** is_huge_zero_pmd() */
// @ts-ignore: decorator
@inline export function is_huge_zero_pmd(pmd: u64): bool {
  return pmd_leaf(pmd) && is_huge_zero_folio(<u32>pte_pfn(pmd));
}
/** is_pmd_migration_entry() */
// @ts-ignore: decorator
@inline export function is_pmd_migration_entry(pmd: u64): bool {
  return is_swap_pte(pmd) && is_migration_entry(pmd);
}

/**
 * mm_get_huge_zero_folio()'s allocation (get_huge_zero_page()): a zeroed order-9 folio that is
 * never freed (PG_reserved, as the small zero page). The caller keeps its pfn for the machine's
 * life (the huge zero page shrinker is not modelled). Returns the pfn or NO_PFN.
 */
export function huge_zero_folio_alloc(ctx: u32): u32 {
  const folio = alloc_pages(ctx, HPAGE_PMD_ORDER, GFP_ZERO);
  if (folio == NO_PFN) return NO_PFN;
  setPageFlag(folio, PG_reserved);
  return folio;
}

/** do_huge_pmd_anonymous_page() flags */
/** A fresh THP (a write fault, or no huge zero page); otherwise the huge zero page. */
export const HUGE_ALLOC: u32 = 1;
/** VM_WRITE: the fresh THP is mapped writable (maybe_pmd_mkwrite()). */
export const HUGE_VM_WRITE: u32 = 2;

/** @huge MAPPED the PMD maps the THP or the huge zero page */
export const HUGE_MAPPED: i32 = 0;
/** @huge NO_FOLIO no free aligned 2 MiB: VM_FAULT_FALLBACK to the PTE path (THP_FAULT_FALLBACK) */
export const HUGE_NO_FOLIO: i32 = 1;
/** @huge PMD_BUSY the PMD is not none any more: the access retries */
export const HUGE_PMD_BUSY: i32 = 2;

/**
 * do_huge_pmd_anonymous_page() (and __do_huge_pmd_anonymous_page(), set_huge_zero_folio()) for
 * the 2 MiB around `va`, whose PMD is none: with HUGE_ALLOC a fresh zeroed THP, exclusive
 * (folio_add_new_anon_rmap(RMAP_EXCLUSIVE)), dirty, joining anon_vma `anonVma` at page index
 * `index` (of the aligned start); otherwise the huge zero folio `zeroFolio`, read-only and
 * outside the rmap. A PTE table is deposited with it. The caller has checked the VMA allows a
 * PMD-sized folio here. Returns a HUGE_* code, or ACCESS_ENOMEM (no page table; nothing
 * changed).
 */
export function do_huge_pmd_anonymous_page(
  ctx: u32, mm: u32, va: f64, anonVma: u32, index: u32, prot: u32, flags: u32, zeroFolio: u32,
): i32 {
  const haddr = <u64>va & ~(PMD_SIZE - 1);
  const pmdp0 = walk_pmdp(mm, haddr);
  if (pmdp0 != 0 && !pte_none(entryLoad(pmdp0))) return HUGE_PMD_BUSY;
  // the upper tables and the one to deposit (pte_alloc_one()) first
  if (!pt_reserve_upto(ctx, tables_missing(mm, haddr, 2) + 1)) return ACCESS_ENOMEM;
  const alloc = (flags & HUGE_ALLOC) != 0;
  let folio = zeroFolio;
  if (alloc) {
    folio = alloc_pages(ctx, HPAGE_PMD_ORDER, GFP_ZERO);
    if (folio == NO_PFN) {
      pt_unreserve(ctx);
      return HUGE_NO_FOLIO;
    }
  }
  const pmdp = walk_alloc_pmdp(ctx, mm, haddr);
  pgtable_trans_huge_deposit(mm, pt_alloc_table(ctx));
  pt_unreserve(ctx);
  let pmd = pmd_mkhuge(pfn_pte(<u64>folio, (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)) | _PAGE_ACCESSED));
  if (alloc) {
    folio_add_new_anon_rmap(folio, anonVma, index, RMAP_EXCLUSIVE);
    // lru_add(): a large folio never waits in a per-CPU batch (folio_batch_add_and_move()
    // drains at once), so a fresh THP holds no transient reference
    setPageFlag(folio, PG_lru);
    pmd = pte_mkdirty(pmd);
    if (flags & HUGE_VM_WRITE) pmd = pte_mkwrite(pmd);
    add_mm_counter(mm, MM_ANONPAGES, <i32>HPAGE_PMD_NR);
  }
  page_table_check_pmd_set(haddr, pmd);
  entryStore(pmdp, pmd);
  return HUGE_MAPPED;
}

/**
 * What do_huge_pmd_wp_page() decides on, for the PMD leaf mapping `va`: the WPF_* words of
 * wp_fault_info(), for the folio (PFN and FOLIO are the head: PageAnonExclusive of a PMD-mapped
 * THP is the head's). Returns WP_ANON, WP_ZERO (the huge zero page), or ACCESS_NEED_FAULT when
 * no PMD leaf maps `va` any more (the caller re-runs the access).
 */
export function huge_pmd_fault_info(ctx: u32, mm: u32, va: f64): i32 {
  const pmdp = walk_pmdp(mm, <u64>va);
  if (pmdp == 0) return ACCESS_NEED_FAULT;
  const pmd = entryLoad(pmdp);
  if (!pmd_leaf(pmd)) return ACCESS_NEED_FAULT;
  const folio = <u32>pte_pfn(pmd);
  const out = ctxOf(ctx).scratch;
  memory.fill(out, 0, WPF_WORDS << 2);
  const kind = is_huge_zero_folio(folio) ? WP_ZERO : WP_ANON;
  store<u32>(out + (WPF_PTE << 2), <u32>pmd);
  store<u32>(out + (WPF_PFN << 2), folio);
  store<u32>(out + (WPF_FOLIO << 2), folio);
  const ff = pageFlags(folio);
  store<u32>(out + (WPF_PAGE_FLAGS << 2), ff);
  store<u32>(out + (WPF_FOLIO_FLAGS << 2), ff);
  store<i32>(out + (WPF_REFCOUNT << 2), folio_ref_count(folio));
  store<i32>(out + (WPF_MAPCOUNT << 2), folio_mapcount(folio));
  if (ff & (1 << PG_swapcache)) store<u32>(out + (WPF_SWAPCOUNT << 2), swap_count(folio_swap_slot(folio)));
  store<u32>(out + (WPF_MAPPING << 2), pfn_to_page(folio).mapping);
  store<u32>(out + (WPF_KIND << 2), kind);
  return <i32>kind;
}

/**
 * do_huge_pmd_wp_page()'s reuse: with REUSE_MOVE_ANON folio_move_anon_rmap() into `anonVma`,
 * with REUSE_SET_EXCLUSIVE SetPageAnonExclusive() of the head; with REUSE_UNSHARE nothing more
 * (the PMD stays read-only); otherwise the PMD becomes young, dirty and writable
 * (pmdp_set_access_flags()). Returns 0, or ACCESS_NEED_FAULT when no anon PMD leaf maps `va`.
 */
export function huge_pmd_reuse(ctx: u32, mm: u32, va: f64, flags: u32, anonVma: u32): i32 {
  const a = <u64>va;
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return ACCESS_NEED_FAULT;
  const pmd = entryLoad(pmdp);
  if (!pmd_leaf(pmd) || is_huge_zero_pmd(pmd)) return ACCESS_NEED_FAULT;
  const folio = <u32>pte_pfn(pmd);
  if (!folio_test_anon(folio)) return ACCESS_NEED_FAULT;
  if (flags & REUSE_MOVE_ANON) folio_move_anon_rmap(folio, anonVma);
  if (flags & REUSE_SET_EXCLUSIVE) SetPageAnonExclusive(folio);
  if (flags & REUSE_UNSHARE) return 0;
  const bits: u64 = _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY;
  page_table_check_pmd_set(a & ~(PMD_SIZE - 1), pmd | bits);
  atomic.or<u64>(pmdp, bits);
  return 0;
}

/** @split SPLIT the PMD became a PTE table mapping the same pages */
export const SPLIT_DONE: i32 = 0;
/** @split FROZEN the PMD became a PTE table of migration entries (freeze succeeded) */
export const SPLIT_FROZEN: i32 = 1;

/**
 * split_huge_pmd() flag: freeze — migration entries instead of PTEs. The other bits are
 * try_to_migrate()'s (MIGRATE_SHARE_ANON: share first, rule (c) of 5.19+; MIGRATE_READ_EXCLUSIVE:
 * readable-exclusive entries), as the freezing split is part of it.
 */
export const SPLIT_FREEZE: u32 = 4;

/**
 * __split_huge_pmd() / __split_huge_pmd_locked() for the PMD covering `va`: a present PMD leaf
 * (rules (b) and (c) above, SPLIT_FREEZE in `flags` asking for (c), with try_to_migrate()'s
 * MIGRATE_* flags), the huge zero PMD
 * (__split_huge_zero_page_pmd(): 512 PTEs of the small zero page) or a PMD migration entry
 * (rule (a)) becomes a PTE table, the deposited one. A present THP gets 511 more references and
 * its PTE mappings before it loses the PMD one, so no count ever drops below what maps it.
 * Soft-dirty and uffd-wp carry over to every entry; a NUMA-hinting PROT_NONE does not
 * (the PTEs take the VMA's protection `prot`). Returns SPLIT_DONE, SPLIT_FROZEN, -EINVAL when
 * nothing huge maps `va`, or ACCESS_ENOMEM when a leaf without a deposited table finds none.
 */
export function split_huge_pmd(ctx: u32, mm: u32, va: f64, prot: u32, flags: u32): i32 {
  const haddr = <u64>va & ~(PMD_SIZE - 1);
  const pmdp = walk_pmdp(mm, haddr);
  if (pmdp == 0) return -EINVAL;
  const pmd = entryLoad(pmdp);
  const migration = is_pmd_migration_entry(pmd);
  if (!pmd_leaf(pmd) && !migration) return -EINVAL;
  let idx = pgtable_trans_huge_withdraw(mm);
  if (idx == NO_PFN) {
    idx = pt_alloc_table(ctx);
    if (idx == NO_PFN) return ACCESS_ENOMEM;
    atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
  }
  const table = tableAddr(idx);
  const base: u64 = (<u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE));
  let frozen = false;

  if (migration) {
    // rule (a): the entry's kind, and its soft-dirty and uffd-wp bits, go to every subpage
    const type = swp_type(pmd);
    const head = swp_offset(pmd);
    let keep: u64 = 0;
    if (pte_swp_soft_dirty(pmd)) keep = pte_swp_mksoft_dirty(keep);
    if (pte_swp_uffd_wp(pmd)) keep = pte_swp_mkuffd_wp(keep);
    for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
      unpublishedStore(table + (i << 3), swp_entry(type, head + <u64>i) | keep);
    }
  } else if (is_huge_zero_folio(<u32>pte_pfn(pmd))) {
    const old = atomic.xchg<u64>(pmdp, 0);
    let e = pfn_pte(0, base | _PAGE_ACCESSED) | _PAGE_SPECIAL;
    if (pte_uffd_wp(old)) e = pte_mkuffd_wp(e);
    for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) unpublishedStore(table + (i << 3), e);
  } else {
    // pmdp_invalidate(): GUP-fast sees the PMD change (B4) and backs off
    const old = atomic.xchg<u64>(pmdp, 0);
    const folio = <u32>pte_pfn(old);
    if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
    const write = pte_write(old);
    const exclusive = PageAnonExclusive(folio);
    frozen = (flags & SPLIT_FREEZE) != 0;
    // rule (c): share first; a pin keeps it exclusive, and the split goes on without freezing
    // (before 5.19 nothing was shared, nothing refused)
    if (frozen && exclusive && (flags & MIGRATE_SHARE_ANON) != 0 && folio_try_share_anon_rmap_pmd(folio) != 0) frozen = false;
    if (frozen) {
      // under migration the pages are possibly shared: the entries alone remember exclusivity
      if (exclusive) ClearPageAnonExclusive(folio);
      const kind = migrationEntryKind(old, exclusive, flags);
      for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
        unpublishedStore(table + (i << 3), migrationEntryFor(old, folio + i, kind));
      }
      folio_remove_rmap_pmd(folio);
      // the PMD's reference goes (put_page()); migration holds its own
      folio_put_refs(folio, 1);
    } else {
      // rule (b): each subpage inherits PageAnonExclusive with its PTE mapping
      folio_ref_add(folio, <i32>HPAGE_PMD_NR - 1);
      folio_add_anon_rmap_ptes(folio, folio, HPAGE_PMD_NR, exclusive ? RMAP_EXCLUSIVE : 0);
      folio_remove_rmap_pmd(folio);
      let e = pfn_pte(<u64>folio, base);
      if (write) e = pte_mkwrite(e);
      if (pte_young(old)) e = e | _PAGE_ACCESSED;
      if (pte_dirty(old)) e = pte_mkdirty(e);
      if (pte_soft_dirty(old)) e = pte_mksoft_dirty(e);
      if (pte_uffd_wp(old)) e = pte_mkuffd_wp(e);
      for (let i: u32 = 0; i < HPAGE_PMD_NR; i++) {
        const pte = e + (<u64>i << 12);
        page_table_check_pte_set(haddr + (<u64>i << 12), pte);
        unpublishedStore(table + (i << 3), pte);
      }
    }
  }
  // smp_wmb(): the PTEs are visible before the PMD points at them (pmd_populate())
  atomic.fence();
  entryStore(pmdp, pfn_pte(<u64>idx, _PAGE_TABLE));
  return frozen ? SPLIT_FROZEN : SPLIT_DONE;
}

/**
 * A store into the PTE table a split fills before pmd_populate() links it in: no walker, GUP-fast
 * included, can reach the table yet, so a plain store suffices — the fence and the atomic PMD
 * store that publish it order every one of them first (set_pte_at() into a table not yet
 * populated, as __split_huge_pmd_locked() fills it). An atomic store costs 512 locked writes a split.
 */
// @ts-ignore: decorator
@inline function unpublishedStore(slot: u32, v: u64): void {
  store<u64>(slot, v);
}

/**
 * What covers `va` at PMD level, for a caller that must know whether a split is needed: 1 a
 * present PMD leaf, 2 a PMD migration entry, 0 nothing huge (none, or a PTE table).
 */
export function huge_pmd_at(mm: u32, va: f64): u32 {
  const pmdp = walk_pmdp(mm, <u64>va);
  if (pmdp == 0) return 0;
  const pmd = entryLoad(pmdp);
  if (pmd_leaf(pmd)) return 1;
  return is_pmd_migration_entry(pmd) ? 2 : 0;
}
