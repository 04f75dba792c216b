// Page migration of anonymous folios, the per-mapping and per-folio steps (mm/rmap.c
// try_to_migrate_one(), mm/migrate.c __migrate_folio(), __folio_migrate_mapping(),
// folio_migrate_flags(), remove_migration_pte(); mm/huge_memory.c set_pmd_migration_entry(),
// remove_migration_pmd() for a PMD-mapped THP). Which folios to migrate, the rmap walk over
// every process and the two phases live in TypeScript (src/mm/migrate.ts); these are the
// mechanics, one call per mapping or per folio.
//
// A migration entry (see pte.ts) carries the PFN of the folio under migration in its offset and,
// as on x86-64 where migration_entry_supports_ad() holds, the young and dirty bits of the PTE it
// replaced just above the PFN field (SWP_MIG_YOUNG_BIT / SWP_MIG_DIRTY_BIT of swapops.h):
//
//   offset  49 42 41 40 39                                      0
//          ┌─────┬──┬──┬─────────────────────────────────────────┐
//          │  0  │D │Y │                  PFN                    │
//          └─────┴──┴──┴─────────────────────────────────────────┘
//
// Readers of the PFN cast the offset to u32, which drops them; swp_offset() keeps them, so
// fork's and mprotect's rewrites of an entry carry them along as Linux's do.

import { ctxOf, NO_PFN, EINVAL, ENOENT, EBUSY, EAGAIN, ENOMEM } from "./layout";
import {
  pte_present, pte_pfn, pte_write, pte_dirty, pte_young, pte_soft_dirty, pte_uffd_wp, pfn_pte,
  pte_mkwrite, pte_mkdirty, pte_mkyoung, pte_mksoft_dirty, pte_mkuffd_wp, pte_clear_soft_dirty,
  is_swap_pte, is_migration_entry, is_writable_migration_entry, is_readable_migration_entry,
  is_readable_exclusive_migration_entry, make_readable_migration_entry,
  make_readable_exclusive_migration_entry, make_writable_migration_entry, swp_offset,
  swp_entry_to_pte, pte_swp_mksoft_dirty, pte_swp_mkuffd_wp, pte_swp_soft_dirty, pte_swp_uffd_wp,
  _PAGE_PRESENT, _PAGE_USER, _PAGE_PROTNONE, PTE_PFN_BITS, SWP_OFFSET_SHIFT,
} from "./pte";
import { walk_ptep, walk_pmdp, entryLoad, entryStore, mm_valid, PMD_SIZE } from "./pgtable";
import {
  Page, pageAddr, pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_add,
  folio_ref_count, PageAnonExclusive, ClearPageAnonExclusive, setPageFlag, clearPageFlag,
  testPageFlag, PG_dirty, PG_uptodate, PG_swapbacked, PG_swapcache, PG_referenced, PG_active,
  folio_order, folio_nr_pages,
} from "./page";
import {
  folio_remove_rmap_ptes, folio_add_anon_rmap_ptes, folio_try_share_anon_rmap_pte, folio_put_refs,
  folio_mapping_raw, folio_index, folio_try_share_anon_rmap_pmd, folio_remove_rmap_pmd,
  folio_add_anon_rmap_pmd, RMAP_EXCLUSIVE,
} from "./rmap";
import { is_pmd_migration_entry, is_huge_zero_folio } from "./huge_memory";
import { pmd_leaf, pmd_mkhuge, _PAGE_ACCESSED } from "./pte";
import { page_table_check_pmd_set } from "./page_table_check";
import { HPAGE_PMD_ORDER } from "./layout";
import { slotAddr, folio_swap_slot } from "./swapfile";
import { protocol_breaks, BREAK_UNMAP_CLEAR } from "./gup";
import { alloc_pages } from "./page_alloc";
import { copy_page_contents } from "./content";
import { page_table_check_pte_set } from "./page_table_check";

/** try_to_migrate() flags */
/** The Linux ≥ 5.19 rule: an exclusive page is shared first (folio_try_share_anon_rmap_pte()); a possibly pinned one is not unmapped. */
export const MIGRATE_SHARE_ANON: u32 = 1;
/** Readable-exclusive migration entries remember PageAnonExclusive of a R/O page (6c287605fd56). */
export const MIGRATE_READ_EXCLUSIVE: u32 = 2;

/** try_to_migrate_one() result: a readable migration entry was installed */
export const MIGRATION_ENTRY_READ: i32 = 1;
/** try_to_migrate_one() result: a readable-exclusive migration entry was installed */
export const MIGRATION_ENTRY_READ_EXCLUSIVE: i32 = 2;
/** try_to_migrate_one() result: a writable migration entry was installed */
export const MIGRATION_ENTRY_WRITE: i32 = 3;

/** ctx.aux0 after migration_entry_get(): a writable entry */
export const MIGINFO_WRITE: u32 = 1;
/** ctx.aux0 after migration_entry_get(): a readable-exclusive entry */
export const MIGINFO_READ_EXCLUSIVE: u32 = 2;
/** ctx.aux0 after migration_entry_get(): the entry's soft-dirty bit */
export const MIGINFO_SOFT_DIRTY: u32 = 4;
/** ctx.aux0 after migration_entry_get(): the entry's uffd-wp bit */
export const MIGINFO_UFFD_WP: u32 = 8;
/** ctx.aux0 after migration_entry_get(): SWP_MIG_YOUNG, the replaced PTE was young */
export const MIGINFO_YOUNG: u32 = 16;
/** ctx.aux0 after migration_entry_get(): SWP_MIG_DIRTY, the replaced PTE was dirty */
export const MIGINFO_DIRTY: u32 = 32;

const SWP_MIG_YOUNG: u64 = <u64>1 << PTE_PFN_BITS;
const SWP_MIG_DIRTY: u64 = <u64>1 << (PTE_PFN_BITS + 1);

// @ts-ignore: decorator
@inline function is_migration_entry_young(entry: u64): bool { return (swp_offset(entry) & SWP_MIG_YOUNG) != 0; }
// @ts-ignore: decorator
@inline function is_migration_entry_dirty(entry: u64): bool { return (swp_offset(entry) & SWP_MIG_DIRTY) != 0; }

/**
 * try_to_migrate_one() for the PTE at `va` of `mm`, which must map page `pfn` of an anonymous
 * folio (order 0, or a PTE-mapped large folio, one PTE at a time): (A1) clear the PTE; with MIGRATE_SHARE_ANON, (A2/A3) try to mark an exclusive page
 * shared, and restore the PTE untouched if it may be pinned; otherwise install a migration
 * entry — writable for a writable PTE; for a R/O one readable-exclusive when the page was
 * exclusive and MIGRATE_READ_EXCLUSIVE is set, else readable — carrying the PTE's young, dirty,
 * soft-dirty and uffd-wp bits, and drop the map count and the PTE's reference. The mm's
 * MM_ANONPAGES stays: a migration entry is counted as the page it stands for.
 * Returns MIGRATION_ENTRY_*, -EBUSY (possibly pinned: the PTE is back as it was), -ENOENT (the
 * PTE does not map the folio) or -EINVAL.
 */
export function try_to_migrate_one(mm: u32, va: f64, pfn: u32, flags: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn)) return -EINVAL;
  const folio = page_folio(pfn);
  if (!folio_test_anon(folio) || is_huge_zero_folio(folio)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const pte = entryLoad(slot);
  if (!pte_present(pte) || <u32>pte_pfn(pte) != pfn) return -ENOENT;
  // (A1) ptep_clear_flush(): GUP-fast that read the old PTE sees it change at B4 (unless the
  // protocol is broken on purpose: then the PTE stays live while A2 checks the pins)
  const old = (protocol_breaks() & BREAK_UNMAP_CLEAR) ? entryLoad(slot) : atomic.xchg<u64>(slot, 0);
  if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
  const exclusive = PageAnonExclusive(pfn);
  if (exclusive && (flags & MIGRATE_SHARE_ANON) != 0 && folio_try_share_anon_rmap_pte(folio, pfn) != 0) {
    page_table_check_pte_set(<u64>va, old);
    entryStore(slot, old); // (A4) restore: nothing changed
    return -EBUSY;
  }
  // under migration the page is possibly shared: the entry alone remembers exclusivity (the
  // older kernels, which have no PageAnonExclusive to keep, drop it here as well)
  if (exclusive) ClearPageAnonExclusive(pfn);
  const kind = migrationEntryKind(old, exclusive, flags);
  entryStore(slot, migrationEntryFor(old, pfn, kind));
  folio_remove_rmap_ptes(folio, pfn, 1);
  folio_put_refs(folio, 1);
  return kind;
}

/**
 * The kind of migration entry try_to_migrate_one() (and set_pmd_migration_entry()) installs for
 * the present entry `old`: writable for a writable one; for a R/O one readable-exclusive when
 * the page was PageAnonExclusive and the kernel has that entry (MIGRATE_READ_EXCLUSIVE), else
 * readable.
 */
// @ts-ignore: decorator
@inline export function migrationEntryKind(old: u64, exclusive: bool, flags: u32): i32 {
  if (pte_write(old)) return MIGRATION_ENTRY_WRITE;
  return exclusive && (flags & MIGRATE_READ_EXCLUSIVE) != 0 ? MIGRATION_ENTRY_READ_EXCLUSIVE : MIGRATION_ENTRY_READ;
}

/**
 * The migration entry of `kind` for `pfn`, carrying what `old` had: young and dirty
 * (make_migration_entry_young() / _dirty()), soft-dirty and uffd-wp. The same bits serve a PTE
 * and a PMD (pmd_swp_mksoft_dirty() and pmd_swp_mkuffd_wp() are the PTE bits on x86-64).
 */
export function migrationEntryFor(old: u64, pfn: u32, kind: i32): u64 {
  let entry = kind == MIGRATION_ENTRY_WRITE ? make_writable_migration_entry(<u64>pfn)
    : kind == MIGRATION_ENTRY_READ_EXCLUSIVE ? make_readable_exclusive_migration_entry(<u64>pfn)
    : make_readable_migration_entry(<u64>pfn);
  if (pte_young(old)) entry |= SWP_MIG_YOUNG << SWP_OFFSET_SHIFT;
  if (pte_dirty(old)) entry |= SWP_MIG_DIRTY << SWP_OFFSET_SHIFT;
  let swp = swp_entry_to_pte(entry);
  if (pte_soft_dirty(old)) swp = pte_swp_mksoft_dirty(swp);
  if (pte_uffd_wp(old)) swp = pte_swp_mkuffd_wp(swp);
  return swp;
}

/**
 * alloc_migration_target(): the destination folio of order 0, with the one reference the
 * migration holds. Returns its pfn, or -ENOMEM (nothing changed).
 */
export function migrate_folio_alloc(ctx: u32): i32 {
  const dst = alloc_pages(ctx, 0, 0);
  return dst == NO_PFN ? -ENOMEM : <i32>dst;
}

/**
 * __migrate_folio() of an unmapped anonymous folio `src` into `dst`, a fresh folio of its order: the reference
 * count must be exactly what the migration expects — its own isolation reference, and the
 * swap cache's (folio_expected_refs()) — or it is -EAGAIN and nothing changed (a pin, a GUP
 * reference, another isolation or a lock holder's reference). Otherwise the contents are copied
 * (folio_mc_copy()), the anon mapping and index move (and with them the swap-cache slot and its
 * reference, __folio_migrate_mapping()), and the flags follow (folio_migrate_flags()). The caller
 * then restores the mappings onto `dst` (remove_migration_pte()) and drops its reference to
 * `src`, which frees it. Returns 0, -EAGAIN or -EINVAL.
 */
export function migrate_folio_move(src: u32, dst: u32): i32 {
  if (!pfn_valid(src) || !pfn_valid(dst) || !folio_test_anon(src) || folio_order(src) != folio_order(dst)) return -EINVAL;
  if (folio_test_large(src) != folio_test_large(dst)) return -EINVAL;
  const nr = folio_nr_pages(src);
  const cached = testPageFlag(src, PG_swapcache);
  // folio_expected_refs(): the isolation's, and one per page in the swap cache
  const expected = 1 + (cached ? <i32>nr : 0);
  if (folio_ref_count(src) != expected) return -EAGAIN;
  for (let i: u32 = 0; i < nr; i++) copy_page_contents(dst + i, src + i);
  const d = pageAddr(dst);
  store<u32>(d + offsetof<Page>("index"), folio_index(src));
  atomic.store<u32>(d + offsetof<Page>("mapping"), folio_mapping_raw(src));
  if (testPageFlag(src, PG_swapbacked)) setPageFlag(dst, PG_swapbacked);
  if (cached) {
    // the swap cache's entries now name dst, and their references move with them
    const slot = folio_swap_slot(src);
    store<u32>(d + offsetof<Page>("private_"), slot);
    setPageFlag(dst, PG_swapcache);
    for (let i: u32 = 0; i < nr; i++) atomic.store<u32>(slotAddr(slot + i) + 4, dst + i);
    folio_ref_add(dst, <i32>nr);
    clearPageFlag(src, PG_swapcache);
    store<u32>(pageAddr(src) + offsetof<Page>("private_"), 0);
    folio_put_refs(src, <i32>nr);
  }
  // folio_migrate_flags(); PG_anon_exclusive travels in the migration entries, not here
  if (testPageFlag(src, PG_referenced)) setPageFlag(dst, PG_referenced);
  if (testPageFlag(src, PG_uptodate)) setPageFlag(dst, PG_uptodate);
  if (testPageFlag(src, PG_active)) { clearPageFlag(src, PG_active); setPageFlag(dst, PG_active); }
  if (testPageFlag(src, PG_dirty)) { clearPageFlag(src, PG_dirty); setPageFlag(dst, PG_dirty); }
  return 0;
}

/**
 * alloc_migration_target() for a large folio: a fresh folio of `order` (the source's), with
 * the one reference the migration holds. Returns its pfn, or -ENOMEM (nothing changed) — the
 * caller then splits the source (try_split_folio()) or fails it.
 */
export function migrate_folio_alloc_order(ctx: u32, order: u32): i32 {
  if (order > HPAGE_PMD_ORDER) return -EINVAL;
  const dst = alloc_pages(ctx, order, 0);
  return dst == NO_PFN ? -ENOMEM : <i32>dst;
}

/**
 * set_pmd_migration_entry() (try_to_migrate_one() of a PMD-mapped THP, which x86-64 migrates
 * whole: thp_migration_supported()) for the PMD leaf at `va` of `mm`, which must map the
 * anonymous THP `folio`: (A1) pmdp_invalidate(); with MIGRATE_SHARE_ANON, (A2/A3)
 * folio_try_share_anon_rmap_pmd() of an exclusive THP, the PMD restored untouched when it may
 * be pinned; otherwise one PMD migration entry of the kind try_to_migrate_one() picks for a
 * PTE, carrying young, dirty, soft-dirty and uffd-wp, and the PMD's mapping and reference go.
 * MM_ANONPAGES stays. Returns MIGRATION_ENTRY_*, -EBUSY (possibly pinned: the PMD is back),
 * -ENOENT (no PMD leaf of the folio there) or -EINVAL.
 */
export function set_pmd_migration_entry(mm: u32, va: f64, folio: u32, flags: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(folio) || !folio_test_large(folio) || !folio_test_anon(folio)) return -EINVAL;
  if (is_huge_zero_folio(folio) || page_folio(folio) != folio) return -EINVAL;
  const haddr = <u64>va & ~(PMD_SIZE - 1);
  const pmdp = walk_pmdp(mm, haddr);
  if (pmdp == 0) return -ENOENT;
  const pmd = entryLoad(pmdp);
  if (!pmd_leaf(pmd) || <u32>pte_pfn(pmd) != folio) return -ENOENT;
  // (A1) pmdp_invalidate(): GUP-fast that read the old PMD sees it change at B4
  const old = atomic.xchg<u64>(pmdp, 0);
  const exclusive = PageAnonExclusive(folio);
  if (exclusive && (flags & MIGRATE_SHARE_ANON) != 0 && folio_try_share_anon_rmap_pmd(folio) != 0) {
    page_table_check_pmd_set(haddr, old);
    entryStore(pmdp, old); // (A4) restore: nothing changed
    return -EBUSY;
  }
  // folio_mark_dirty() only once the THP is sure to be unmapped
  if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
  if (exclusive) ClearPageAnonExclusive(folio);
  const kind = migrationEntryKind(old, exclusive, flags);
  entryStore(pmdp, migrationEntryFor(old, folio, kind));
  folio_remove_rmap_pmd(folio);
  folio_put_refs(folio, 1);
  return kind;
}

/**
 * remove_migration_pmd() for the PMD at `va` of `mm`, if it is a migration entry for the THP
 * `src`: `dst` (src itself when the migration failed) is mapped by a PMD leaf with the VMA's
 * protection `prot`, writable when the entry was, young and dirty as it remembers, soft-dirty
 * and uffd-wp kept; RMAP_EXCLUSIVE from a writable or readable-exclusive entry
 * (folio_add_anon_rmap_pmd()). The mapping takes a reference. Returns 0 (no entry of `src`
 * there), 1 (restored), 3 (restored exclusive), or -EINVAL.
 */
export function remove_migration_pmd(mm: u32, va: f64, src: u32, dst: u32, prot: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(src) || !pfn_valid(dst) || !folio_test_large(dst)) return -EINVAL;
  const haddr = <u64>va & ~(PMD_SIZE - 1);
  const pmdp = walk_pmdp(mm, haddr);
  if (pmdp == 0) return 0;
  const old = entryLoad(pmdp);
  if (!is_pmd_migration_entry(old) || <u32>swp_offset(old) != src) return 0;
  folio_ref_add(dst, 1);
  let pmd = pmd_mkhuge(pfn_pte(<u64>dst, <u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)));
  if (is_migration_entry_young(old)) pmd |= _PAGE_ACCESSED;
  if (testPageFlag(dst, PG_dirty) && is_migration_entry_dirty(old)) pmd = pte_mkdirty(pmd);
  pmd = pte_swp_soft_dirty(old) ? pte_mksoft_dirty(pmd) : pte_clear_soft_dirty(pmd);
  if (is_writable_migration_entry(old)) pmd = pte_mkwrite(pmd);
  if (pte_swp_uffd_wp(old)) pmd = pte_mkuffd_wp(pmd);
  const exclusive = !is_readable_migration_entry(old);
  folio_add_anon_rmap_pmd(dst, exclusive ? RMAP_EXCLUSIVE : 0);
  page_table_check_pmd_set(haddr, pmd);
  entryStore(pmdp, pmd);
  return exclusive ? 3 : 1;
}

/**
 * remove_migration_pte() for the entry at `va` of `mm`, if it is a migration entry for page
 * `src`: page `dst` (src itself when the migration failed; of a large folio, the page at the
 * same offset) is mapped in its place with the VMA's
 * protection `prot` (vm_page_prot), writable when the entry was, young and dirty as the entry
 * remembers, keeping soft-dirty and uffd-wp; RMAP_EXCLUSIVE restores PageAnonExclusive from a
 * writable or readable-exclusive entry. The new mapping takes a reference (folio_get()).
 * Returns 0 (no entry of `src` there), 1 (restored), 3 (restored exclusive), or -EINVAL.
 */
export function remove_migration_pte(mm: u32, va: f64, src: u32, dst: u32, prot: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(src) || !pfn_valid(dst)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return 0;
  const old = entryLoad(slot);
  if (!is_swap_pte(old) || !is_migration_entry(old) || <u32>swp_offset(old) != src) return 0;
  const folio = page_folio(dst);
  folio_ref_add(folio, 1);
  let pte = pfn_pte(<u64>dst, <u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE));
  if (is_migration_entry_young(old)) pte = pte_mkyoung(pte);
  if (testPageFlag(folio, PG_dirty) && is_migration_entry_dirty(old)) pte = pte_mkdirty(pte);
  pte = pte_swp_soft_dirty(old) ? pte_mksoft_dirty(pte) : pte_clear_soft_dirty(pte);
  if (is_writable_migration_entry(old)) pte = pte_mkwrite(pte);
  else if (pte_swp_uffd_wp(old)) pte = pte_mkuffd_wp(pte);
  const exclusive = folio_test_anon(folio) && !is_readable_migration_entry(old);
  folio_add_anon_rmap_ptes(folio, dst, 1, exclusive ? RMAP_EXCLUSIVE : 0);
  page_table_check_pte_set(<u64>va, pte);
  entryStore(slot, pte);
  return exclusive ? 3 : 1;
}

/**
 * The migration entry at `va` of `mm`, a PTE's or the PMD's (what migration_entry_wait() and
 * pmd_migration_entry_wait() read): the PFN of the folio
 * under migration, or -ENOENT when the entry is not one. Its kind and bits in ctx.aux0
 * (MIGINFO_*).
 */
export function migration_entry_get(ctx: u32, mm: u32, va: f64): i32 {
  if (!mm_valid(mm)) return -EINVAL;
  // a PMD migration entry stands for the whole THP (pmd_migration_entry_wait())
  let slot = walk_ptep(mm, <u64>va);
  if (slot == 0) slot = walk_pmdp(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const e = entryLoad(slot);
  if (!is_swap_pte(e) || !is_migration_entry(e)) return -ENOENT;
  ctxOf(ctx).aux0 = (is_writable_migration_entry(e) ? MIGINFO_WRITE : 0) |
    (is_readable_exclusive_migration_entry(e) ? MIGINFO_READ_EXCLUSIVE : 0) |
    (pte_swp_soft_dirty(e) ? MIGINFO_SOFT_DIRTY : 0) | (pte_swp_uffd_wp(e) ? MIGINFO_UFFD_WP : 0) |
    (is_migration_entry_young(e) ? MIGINFO_YOUNG : 0) | (is_migration_entry_dirty(e) ? MIGINFO_DIRTY : 0);
  return <i32><u32>swp_offset(e);
}
