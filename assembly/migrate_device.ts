// Device memory and its entries (mm/memremap.c, mm/migrate_device.c, the device branches of
// mm/rmap.c and mm/memory.c): ZONE_DEVICE private pages, migrate_vma's collect step and its
// migration entries, device-private entries installed and removed by remove_migration_pte(),
// device-exclusive entries (page_make_device_exclusive_one(), restore_exclusive_pte()). Which
// pages to migrate, the rmap walk, the reference checks between the steps and the driver live
// in TypeScript (src/mm/migrate_device.ts, src/users/dmirror.ts); these are the per-entry
// mechanics, one call per range where there is a range.
//
// A ZONE_DEVICE page here is a frame the buddy allocator handed to a device when it was
// created (memremap_pages()) and never gets back while the device lives: folio_put() of its
// last reference calls free_zone_device_folio(), which leaves it, with refcount 0, on its
// device's free list (the driver finds it there by refcount). The page's `private` word names
// its pgmap (page->pgmap): device pages are never in the swap cache, whose slot it holds
// otherwise.
//
// The migration entries this file installs are migrate.ts's, with the young and dirty bits
// above the PFN that migration_entry_supports_ad() keeps (SWP_MIG_YOUNG_BIT, SWP_MIG_DIRTY_BIT).

import { ctxOf, ctxCapacity, pushRecord, NO_PFN, PAGE_SIZE, EINVAL, ENOENT, EBUSY, EAGAIN, ENOMEM } from "./layout";
import {
  pte_none, pte_present, pte_pfn, pte_write, pte_dirty, pte_young, pte_soft_dirty, pte_uffd_wp,
  pte_special, pfn_pte, pte_mkwrite, pte_mkdirty, pte_mkold, pte_mksoft_dirty, pte_mkuffd_wp,
  pmd_leaf, is_swap_pte, swp_offset, swp_entry_to_pte, is_migration_entry,
  is_writable_migration_entry, is_readable_migration_entry, make_readable_migration_entry,
  make_readable_exclusive_migration_entry, make_writable_migration_entry,
  is_device_private_entry, is_writable_device_private_entry, make_readable_device_private_entry,
  make_writable_device_private_entry, is_device_exclusive_entry,
  is_writable_device_exclusive_entry, make_readable_device_exclusive_entry,
  make_writable_device_exclusive_entry, pte_swp_mksoft_dirty, pte_swp_mkuffd_wp,
  pte_swp_soft_dirty, pte_swp_uffd_wp, PTE_PFN_BITS, SWP_OFFSET_SHIFT, _PAGE_PRESENT,
  _PAGE_USER, _PAGE_PROTNONE,
} from "./pte";
import { walk_ptep, walk_pmdp, walk_alloc_ptep, entryLoad, entryStore, mm_valid, add_mm_counter, MM_ANONPAGES } from "./pgtable";
import {
  Page, pageAddr, pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_add,
  folio_ref_count, PageAnonExclusive, ClearPageAnonExclusive, setPageFlag, clearPageFlag,
  testPageFlag, resetPage, PG_dirty, PG_uptodate, PG_swapbacked, PG_swapcache, PG_referenced,
  PG_locked, PG_zone_device, PG_active,
} from "./page";
import {
  folio_remove_rmap_ptes, folio_add_anon_rmap_ptes, folio_try_share_anon_rmap_pte,
  folio_put_refs, folio_mapping_raw, folio_index, folio_add_new_anon_rmap, RMAP_EXCLUSIVE,
} from "./rmap";
import { alloc_pages } from "./page_alloc";
import { page_table_check_pte_set } from "./page_table_check";

/** migrate_vma_setup() flags */
/** MIGRATE_VMA_SELECT_SYSTEM: collect system pages (and the zero page) */
export const MIGRATE_VMA_SELECT_SYSTEM: u32 = 1 << 0;
/** MIGRATE_VMA_SELECT_DEVICE_PRIVATE: collect the device-private pages of the caller's pgmap */
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE: u32 = 1 << 1;
/** The VMA is anonymous (vma_is_anonymous()): its holes may be populated. */
export const MIGRATE_VMA_ANON: u32 = 1 << 8;
/** The Linux ≥ 5.19 rule: an exclusive page is shared first (folio_try_share_anon_rmap_pte()), a possibly pinned one skipped. */
export const MIGRATE_VMA_SHARE_ANON: u32 = 1 << 9;

/** migrate_pfn() bits of a collected page (include/linux/migrate.h) */
/** MIGRATE_PFN_VALID: the record names a page */
export const MIGRATE_PFN_VALID: u32 = 1 << 0;
/** MIGRATE_PFN_MIGRATE: the page (or hole) is to be migrated */
export const MIGRATE_PFN_MIGRATE: u32 = 1 << 1;
/** MIGRATE_PFN_WRITE: it was mapped writable */
export const MIGRATE_PFN_WRITE: u32 = 1 << 3;
/** The collected page was PageAnonExclusive (its entry is writable or readable-exclusive). */
export const MIGRATE_PFN_EXCLUSIVE: u32 = 1 << 8;
/** The page was mapped by a device-private entry rather than a present PTE. */
export const MIGRATE_PFN_DEVICE: u32 = 1 << 9;

const SWP_MIG_YOUNG: u64 = <u64>1 << PTE_PFN_BITS;
const SWP_MIG_DIRTY: u64 = <u64>1 << (PTE_PFN_BITS + 1);

// ---- ZONE_DEVICE pages (mm/memremap.c) ---------------------------------------------------------

/**
 * memremap_pages() for one page of a MEMORY_DEVICE_PRIVATE pgmap `pgmap`: a frame leaves the
 * buddy allocator for good and becomes a free ZONE_DEVICE page (refcount 0) of that pgmap.
 * Returns its pfn, or -ENOMEM (nothing changed).
 */
export function memremap_page(ctx: u32, pgmap: u32): i32 {
  const pfn = alloc_pages(ctx, 0, 0);
  if (pfn == NO_PFN) return -ENOMEM;
  resetPage(pfn, 1 << PG_zone_device, 0);
  store<u32>(pageAddr(pfn) + offsetof<Page>("private_"), pgmap);
  return <i32>pfn;
}

/**
 * memunmap_pages() of one free ZONE_DEVICE page: the frame goes back to the buddy allocator.
 * Returns 0, or -EBUSY while it is in use (a reference held), -EINVAL when it is no device page.
 */
export function memunmap_page(pfn: u32): i32 {
  if (!pfn_valid(pfn) || !testPageFlag(pfn, PG_zone_device)) return -EINVAL;
  if (folio_ref_count(pfn) != 0) return -EBUSY;
  resetPage(pfn, 0, 1);
  folio_put_refs(pfn, 1);
  return 0;
}

/**
 * free_zone_device_folio() for a MEMORY_DEVICE_PRIVATE page whose last reference went: the
 * anon mapping, PageAnonExclusive and the other flags go (the kernel clears them the same way
 * before pgmap->ops->page_free()), and the page is free on its device's list again.
 */
export function free_zone_device_folio(folio: u32): void {
  const pgmap = load<u32>(pageAddr(folio) + offsetof<Page>("private_"));
  resetPage(folio, 1 << PG_zone_device, 0);
  store<u32>(pageAddr(folio) + offsetof<Page>("private_"), pgmap);
}

/**
 * zone_device_page_init(): a free device page of the driver's list becomes allocated — one
 * reference — and locked, as dmirror_devmem_alloc_page() and the driver's lock_page() leave it.
 * Returns 0, or -EBUSY when it is not free.
 */
export function zone_device_page_init(pfn: u32): i32 {
  if (!pfn_valid(pfn) || !testPageFlag(pfn, PG_zone_device)) return -EINVAL;
  if (folio_ref_count(pfn) != 0) return -EBUSY;
  folio_ref_add(pfn, 1);
  setPageFlag(pfn, PG_locked);
  return 0;
}

/** page->pgmap of a ZONE_DEVICE page, or 0 for any other frame. */
export function page_pgmap(pfn: u32): u32 {
  if (!pfn_valid(pfn) || !testPageFlag(pfn, PG_zone_device)) return 0;
  return load<u32>(pageAddr(pfn) + offsetof<Page>("private_"));
}

// ---- migrate_vma ------------------------------------------------------------------------------

/** The migration entry replacing `old` (present or device-private) for `pfn`, with its bits. */
function migration_entry_for(old: u64, pfn: u32, writable: bool, exclusive: bool): u64 {
  let entry: u64 = writable ? make_writable_migration_entry(<u64>pfn)
    : exclusive ? make_readable_exclusive_migration_entry(<u64>pfn)
      : make_readable_migration_entry(<u64>pfn);
  if (pte_present(old)) {
    if (pte_young(old)) entry |= SWP_MIG_YOUNG << SWP_OFFSET_SHIFT; // make_migration_entry_young()
    if (pte_dirty(old)) entry |= SWP_MIG_DIRTY << SWP_OFFSET_SHIFT; // make_migration_entry_dirty()
  }
  let swp = swp_entry_to_pte(entry);
  const softDirty = pte_present(old) ? pte_soft_dirty(old) : pte_swp_soft_dirty(old);
  const uffdWp = pte_present(old) ? pte_uffd_wp(old) : pte_swp_uffd_wp(old);
  if (softDirty) swp = pte_swp_mksoft_dirty(swp);
  if (uffdWp) swp = pte_swp_mkuffd_wp(swp);
  return swp;
}

/**
 * One PTE of migrate_vma_collect_pmd(): the page at `slot` (`old`, present or device-private)
 * is referenced (folio_get()), locked (folio_trylock()) and — an exclusive one shared first
 * (folio_try_share_anon_rmap_pte(), under MIGRATE_VMA_SHARE_ANON), a possibly pinned one left
 * mapped — replaced by a migration entry: writable for a writable mapping, readable-exclusive
 * for an exclusive read-only one (6c287605fd56), readable otherwise; the map count and the
 * mapping's reference go, the collect's reference stays. Returns the MIGRATE_PFN_* bits, or 0
 * when the page was left as it was.
 */
function collect_one(slot: u32, old: u64, pfn: u32, flags: u32, va: u64): u32 {
  const folio = page_folio(pfn);
  // FIXME of the kernel too: large folios are not collected (PageTransCompound())
  if (folio_test_large(folio) || folio_mapping_raw(folio) == 0) return 0;
  folio_ref_add(folio, 1);
  if (testPageFlag(folio, PG_locked)) {
    folio_put_refs(folio, 1);
    return 0;
  }
  setPageFlag(folio, PG_locked);
  const present = pte_present(old);
  const writable = present ? pte_write(old) : is_writable_device_private_entry(old);
  const exclusive = folio_test_anon(folio) && PageAnonExclusive(pfn);
  // (A1) ptep_clear_flush() / ptep_get_and_clear()
  const pte = atomic.xchg<u64>(slot, 0);
  if (exclusive && (flags & MIGRATE_VMA_SHARE_ANON) != 0 && folio_try_share_anon_rmap_pte(folio, pfn) != 0) {
    // (A4) set_pte_at() of the old entry: nothing changed
    if (present) page_table_check_pte_set(va, pte);
    entryStore(slot, pte);
    clearPageFlag(folio, PG_locked);
    folio_put_refs(folio, 1);
    return 0;
  }
  // kernels without PG_anon_exclusive have nothing to keep: the entry alone says writable
  if (exclusive) ClearPageAnonExclusive(pfn);
  if (present && pte_dirty(pte)) setPageFlag(folio, PG_dirty);
  const keepExclusive = exclusive && (flags & MIGRATE_VMA_SHARE_ANON) != 0;
  entryStore(slot, migration_entry_for(pte, pfn, writable, keepExclusive));
  folio_remove_rmap_ptes(folio, pfn, 1);
  folio_put_refs(folio, 1);
  return MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | (writable ? MIGRATE_PFN_WRITE : 0) |
    (keepExclusive || writable ? MIGRATE_PFN_EXCLUSIVE : 0) | (present ? 0 : MIGRATE_PFN_DEVICE);
}

/**
 * migrate_vma_collect() over [start, end) of `mm` (migrate_vma_collect_pmd(),
 * migrate_vma_collect_hole(), migrate_vma_collect_skip()): one record per page — aux the
 * MIGRATE_PFN_* bits (0: not migrated), pfn the page (0 for a hole or the zero page), kind 1
 * when a page the request selects was there (refused when aux has no MIGRATE_PFN_VALID). System
 * pages are collected with MIGRATE_VMA_SELECT_SYSTEM; device-private entries of pgmap `pgmap`
 * with MIGRATE_VMA_SELECT_DEVICE_PRIVATE; holes of an anonymous VMA (MIGRATE_VMA_ANON) and the
 * zero page are marked MIGRATE without a page. A PMD leaf is skipped: the kernel layer has split
 * every one it could first (split_huge_pmd(), split_folio()). Each collected page holds the collect's reference
 * and its lock, its mappings in `mm` replaced by migration entries. Returns the number of
 * records (stopping early when the scratch area is full; ctx.next says where), or -EINVAL.
 */
export function migrate_vma_collect(ctx: u32, mm: u32, start: f64, end: f64, flags: u32, pgmap: u32): i32 {
  if (!mm_valid(mm) || start >= end) return -EINVAL;
  const C = ctxOf(ctx);
  C.nrRecords = 0;
  const cap = ctxCapacity();
  const from = <u64>start;
  const stop = <u64>end;
  let a = from;
  for (; a < stop && C.nrRecords < cap; a += PAGE_SIZE) {
    const off = <u32>((a - from) >> 12);
    const pmdp = walk_pmdp(mm, a);
    if (pmdp != 0 && pmd_leaf(entryLoad(pmdp))) { pushRecord(ctx, 0, off, 0, 0); continue; }
    const slot = walk_ptep(mm, a);
    const pte: u64 = slot != 0 ? entryLoad(slot) : 0;
    let mpfn: u32 = 0;
    let pfn: u32 = 0;
    let candidate: u32 = 0;
    if (pte_none(pte)) {
      if (flags & MIGRATE_VMA_ANON) mpfn = MIGRATE_PFN_MIGRATE;
    } else if (!pte_present(pte)) {
      // only device-private entries are migratable; swap, migration, markers … are ignored
      if (is_device_private_entry(pte) && (flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) != 0) {
        pfn = <u32>swp_offset(pte);
        if (page_pgmap(pfn) == pgmap) { candidate = 1; mpfn = collect_one(slot, pte, pfn, flags, a); }
      }
    } else {
      pfn = <u32>pte_pfn(pte);
      if (pte_special(pte)) {
        // is_zero_pfn(): a hole to populate
        if (flags & MIGRATE_VMA_SELECT_SYSTEM) mpfn = MIGRATE_PFN_MIGRATE;
        pfn = 0;
      } else if (flags & MIGRATE_VMA_SELECT_SYSTEM) {
        candidate = 1;
        mpfn = collect_one(slot, pte, pfn, flags, a);
      }
    }
    pushRecord(ctx, candidate, off, mpfn & MIGRATE_PFN_VALID ? pfn : 0, mpfn);
  }
  C.next = <f64>a;
  return <i32>C.nrRecords;
}

/** migrate_vma_insert_page() flags */
/** The VMA has VM_WRITE: the new device-private entry is writable. */
export const INSERT_VM_WRITE: u32 = 1;

/**
 * migrate_vma_insert_page(): a hole (or the zero page) at `va` of `mm` that collect marked for
 * migration gets the driver's fresh device page `page` — a new exclusive anonymous page of
 * anon_vma `anonVma` at `index`, mapped by a device-private entry, writable in a VM_WRITE VMA —
 * one more reference and MM_ANONPAGES. Returns 0, -ENOMEM (no page table; nothing changed) or
 * -EBUSY when something else is mapped there now (nothing changed).
 */
export function migrate_vma_insert_page(ctx: u32, mm: u32, va: f64, page: u32, anonVma: u32, index: u32, flags: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(page) || !testPageFlag(page, PG_zone_device)) return -EINVAL;
  const a = <u64>va;
  const slot = walk_alloc_ptep(ctx, mm, a);
  if (slot == 0) return -ENOMEM;
  const old = entryLoad(slot);
  // the zero page may be replaced; anything else was mapped meanwhile
  if (pte_present(old) ? !pte_special(old) : !pte_none(old)) return -EBUSY;
  folio_add_new_anon_rmap(page, anonVma, index, RMAP_EXCLUSIVE);
  folio_ref_add(page, 1);
  add_mm_counter(mm, MM_ANONPAGES, 1);
  entryStore(slot, swp_entry_to_pte((flags & INSERT_VM_WRITE) != 0
    ? make_writable_device_private_entry(<u64>page) : make_readable_device_private_entry(<u64>page)));
  return 0;
}

/**
 * try_to_migrate_one() of a page mapped at `va` of `mm` by a device-private entry (its
 * folio_is_device_private() branch): the entry becomes a migration entry — writable from a
 * writable one, readable-exclusive from an exclusive page (shared first; a device page cannot be
 * pinned, so that cannot fail) — and the map count and the entry's reference go. Present
 * mappings of system pages go through migrate.ts's try_to_migrate_one(). Returns 1, or -ENOENT
 * when the entry there is no device-private entry for `pfn`.
 */
export function try_to_migrate_one_device(mm: u32, va: f64, pfn: u32, flags: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const old = entryLoad(slot);
  if (!is_swap_pte(old) || !is_device_private_entry(old) || <u32>swp_offset(old) != pfn) return -ENOENT;
  const folio = page_folio(pfn);
  const exclusive = PageAnonExclusive(pfn) && (flags & MIGRATE_VMA_SHARE_ANON) != 0;
  if (PageAnonExclusive(pfn)) ClearPageAnonExclusive(pfn);
  entryStore(slot, migration_entry_for(old, pfn, is_writable_device_private_entry(old), exclusive));
  folio_remove_rmap_ptes(folio, pfn, 1);
  folio_put_refs(folio, 1);
  return 1;
}

/**
 * remove_migration_pte() onto a device-private page `dst` (its is_device_private_page()
 * branch), or back onto a device-private source after a failed migration (`dst` == `src`): the
 * migration entry for `src` at `va` becomes a device-private entry for `dst` — writable when
 * the migration entry was — keeping soft-dirty and uffd-wp; RMAP_EXCLUSIVE restores
 * PageAnonExclusive from a writable or readable-exclusive entry; the new entry takes a
 * reference. Returns 0 (no entry of `src` there), 1 (restored), 3 (restored exclusive).
 */
export function remove_migration_pte_device(mm: u32, va: f64, src: u32, dst: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(src) || !pfn_valid(dst) || !testPageFlag(dst, PG_zone_device)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return 0;
  const old = entryLoad(slot);
  if (!is_swap_pte(old) || !is_migration_entry(old) || <u32>swp_offset(old) != src) return 0;
  folio_ref_add(dst, 1);
  let pte = swp_entry_to_pte(is_writable_migration_entry(old)
    ? make_writable_device_private_entry(<u64>dst) : make_readable_device_private_entry(<u64>dst));
  if (pte_swp_soft_dirty(old)) pte = pte_swp_mksoft_dirty(pte);
  if (pte_swp_uffd_wp(old)) pte = pte_swp_mkuffd_wp(pte);
  const exclusive = folio_test_anon(dst) && !is_readable_migration_entry(old);
  folio_add_anon_rmap_ptes(dst, dst, 1, exclusive ? RMAP_EXCLUSIVE : 0);
  entryStore(slot, pte);
  return exclusive ? 3 : 1;
}

/**
 * folio_migrate_mapping() and folio_migrate_flags() of migrate_vma_pages() for an unmapped
 * order-0 anonymous `src` (not in the swap cache: the caller freed it from there first, as
 * __migrate_device_pages() does for a device destination) into `dst`: `src` must hold exactly
 * the collect's or the isolation's reference plus `extra` (1 for the page the fault came from)
 * or it is -EAGAIN and nothing changed; otherwise the anon mapping, the index and the flags move.
 * The contents are the driver's to copy. Returns 0, -EAGAIN or -EINVAL.
 */
export function migrate_device_move(src: u32, dst: u32, extra: u32): i32 {
  if (!pfn_valid(src) || !pfn_valid(dst) || folio_test_large(src) || !folio_test_anon(src)) return -EINVAL;
  if (testPageFlag(src, PG_swapcache)) return -EINVAL;
  if (folio_ref_count(src) != 1 + <i32>extra) return -EAGAIN;
  const d = pageAddr(dst);
  store<u32>(d + offsetof<Page>("index"), folio_index(src));
  atomic.store<u32>(d + offsetof<Page>("mapping"), folio_mapping_raw(src));
  if (testPageFlag(src, PG_swapbacked)) setPageFlag(dst, PG_swapbacked);
  // folio_migrate_flags(); PG_anon_exclusive travels in the migration entries, not here
  if (testPageFlag(src, PG_referenced)) setPageFlag(dst, PG_referenced);
  if (testPageFlag(src, PG_uptodate)) setPageFlag(dst, PG_uptodate);
  if (testPageFlag(src, PG_active) && !testPageFlag(dst, PG_zone_device)) setPageFlag(dst, PG_active);
  clearPageFlag(src, PG_active);
  if (testPageFlag(src, PG_dirty)) { clearPageFlag(src, PG_dirty); setPageFlag(dst, PG_dirty); }
  return 0;
}

// ---- device-exclusive entries (mm/rmap.c, mm/memory.c) --------------------------------------

/**
 * page_make_device_exclusive_one() for the PTE at `va` of `mm`, which must map `pfn`: the PTE
 * is cleared (its dirty bit going to the folio) and a device-exclusive entry — writable from a
 * writable PTE — takes its place, keeping soft-dirty and uffd-wp; the map count goes, the
 * reference stays with the entry (the kernel takes none for the entry it removes later), and
 * PageAnonExclusive stays as it was. Returns 1 (was writable), 0 (read-only), or -ENOENT
 * when the entry there is not present or maps another page (the rmap walk stops).
 */
export function make_device_exclusive_one(mm: u32, va: f64, pfn: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const pte = entryLoad(slot);
  if (!pte_present(pte) || pte_special(pte) || <u32>pte_pfn(pte) != pfn) return -ENOENT;
  const folio = page_folio(pfn);
  const old = atomic.xchg<u64>(slot, 0);
  if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
  let swp = swp_entry_to_pte(pte_write(old)
    ? make_writable_device_exclusive_entry(<u64>pfn) : make_readable_device_exclusive_entry(<u64>pfn));
  if (pte_soft_dirty(old)) swp = pte_swp_mksoft_dirty(swp);
  if (pte_uffd_wp(old)) swp = pte_swp_mkuffd_wp(swp);
  entryStore(slot, swp);
  folio_remove_rmap_ptes(folio, pfn, 1);
  return pte_write(old) ? 1 : 0;
}

/** restore_exclusive_pte() flags */
/** The VMA has VM_WRITE: maybe_mkwrite() makes a writable entry's PTE writable again. */
export const RESTORE_VM_WRITE: u32 = 1;

/**
 * restore_exclusive_pte() of the device-exclusive entry at `va` of `mm` (for
 * remove_device_exclusive_entry() on a CPU fault, try_restore_exclusive_pte() at fork): the page
 * is mapped again with the VMA's protection `prot`, old, soft-dirty as the entry was; uffd-wp
 * from the entry, else dirty and — with RESTORE_VM_WRITE — writable from a writable entry. The
 * map count comes back without RMAP_EXCLUSIVE (PageAnonExclusive never left) and without a new
 * reference (the entry kept one). Returns the pfn, or -ENOENT when the entry is not one.
 */
export function restore_exclusive_pte(mm: u32, va: f64, prot: u32, flags: u32): i32 {
  if (!mm_valid(mm)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const old = entryLoad(slot);
  if (!is_swap_pte(old) || !is_device_exclusive_entry(old)) return -ENOENT;
  const pfn = <u32>swp_offset(old);
  let pte = pte_mkold(pfn_pte(<u64>pfn, <u64>prot & (_PAGE_PRESENT | _PAGE_USER | _PAGE_PROTNONE)));
  if (pte_swp_soft_dirty(old)) pte = pte_mksoft_dirty(pte);
  if (pte_swp_uffd_wp(old)) pte = pte_mkuffd_wp(pte);
  else if (is_writable_device_exclusive_entry(old)) {
    pte = pte_mkdirty(pte);
    if (flags & RESTORE_VM_WRITE) pte = pte_mkwrite(pte);
  }
  folio_add_anon_rmap_ptes(page_folio(pfn), pfn, 1, 0);
  page_table_check_pte_set(<u64>va, pte);
  entryStore(slot, pte);
  return <i32>pfn;
}

/**
 * The device entry at `va` of `mm`: its pfn, with ctx.aux0 = 1 for a device-private entry, 2
 * for a device-exclusive one, | 4 when writable; -ENOENT when the entry is neither.
 */
export function device_entry_get(ctx: u32, mm: u32, va: f64): i32 {
  if (!mm_valid(mm)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const e = entryLoad(slot);
  if (!is_swap_pte(e)) return -ENOENT;
  if (is_device_private_entry(e)) ctxOf(ctx).aux0 = 1 | (is_writable_device_private_entry(e) ? 4 : 0);
  else if (is_device_exclusive_entry(e)) ctxOf(ctx).aux0 = 2 | (is_writable_device_exclusive_entry(e) ? 4 : 0);
  else return -ENOENT;
  return <i32><u32>swp_offset(e);
}
