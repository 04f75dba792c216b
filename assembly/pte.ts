// Page-table entry encodings: PTE, PMD and the non-present "swap-format" entries.
//
// One 64-bit format serves every level (x86-64 does the same). This file is the single
// source of the layout: scripts/gen-abi.mjs reads the `@bit` / `@field` / `@swptype`
// / `@marker` tags below into src/core/abi.generated.ts and the README table (npm run gen).
//
// Present entry (pte_present(): P or PROTNONE set)
//
//   63            52 51                                  12 11 10  9  8  7  6  5  4  3  2  1  0
//  ┌────────────────┬──────────────────────────────────────┬──┬──┬──┬──┬──┬──┬──┬──┬──┬──┬──┬──┐
//  │    (unused)    │                 PFN                  │SD│UW│SP│PN│PS│D │A │  │  │U │W │P │
//  └────────────────┴──────────────────────────────────────┴──┴──┴──┴──┴──┴──┴──┴──┴──┴──┴──┴──┘
//  A non-leaf entry (PGD/PUD/PMD pointing at a table) has P|W|U|A set and holds the index of
//  the table in the page-table pool where a leaf holds a PFN.
//
// Non-present entry (P = 0, PROTNONE = 0, not all zero): a swp_entry_t
//
//   63      59 58                                                     9  8  7  6  5  4  3  2  1  0
//  ┌──────────┬────────────────────────────────────────────────────────┬──┬──┬──┬──┬──┬──┬──┬──┬──┐
//  │   type   │                     offset (50 bits)                   │0 │  │  │  │  │EX│UW│SD│0 │
//  └──────────┴────────────────────────────────────────────────────────┴──┴──┴──┴──┴──┴──┴──┴──┴──┘
//  type < MAX_SWAPFILES: a swap slot (offset = slot); above: migration, device-private,
//  device-exclusive and hwpoison entries (offset = PFN) and PTE markers (offset = marker bits),
//  numbered as include/linux/swap.h numbers them. x86-64 stores the offset inverted against
//  L1TF; nothing speculates here, so it is stored as is. EX/UW/SD sit where x86 puts
//  _PAGE_SWP_EXCLUSIVE (_PAGE_PWT), _PAGE_SWP_UFFD_WP (_PAGE_USER) and _PAGE_SWP_SOFT_DIRTY
//  (_PAGE_RW).
//
// swp_entry_t here is the entry with its three software bits clear, so swp_entry_to_pte() and
// pte_to_swp_entry() only mask.

// ---- present bits ----------------------------------------------------------------------------
/** @bit P present: the CPU may use the entry (x86 _PAGE_PRESENT) */
export const _PAGE_BIT_PRESENT: u32 = 0;
/** @bit W writable (x86 _PAGE_RW) */
export const _PAGE_BIT_RW: u32 = 1;
/** @bit U user-accessible (x86 _PAGE_USER) */
export const _PAGE_BIT_USER: u32 = 2;
/** @bit A accessed, set by the simulated CPU on access (x86 _PAGE_ACCESSED) */
export const _PAGE_BIT_ACCESSED: u32 = 5;
/** @bit D dirty, set by the simulated CPU on write (x86 _PAGE_DIRTY) */
export const _PAGE_BIT_DIRTY: u32 = 6;
/** @bit PS huge: a PMD leaf mapping 2 MiB (x86 _PAGE_PSE) */
export const _PAGE_BIT_PSE: u32 = 7;
/** @bit PN PROT_NONE / NUMA hint: present to the kernel, absent to the CPU (x86 _PAGE_PROTNONE) */
export const _PAGE_BIT_PROTNONE: u32 = 8;
/** @bit SP special: no struct page behind it, e.g. the shared zero page (x86 _PAGE_SPECIAL) */
export const _PAGE_BIT_SPECIAL: u32 = 9;
/** @bit UW userfaultfd write-protected (x86 _PAGE_UFFD_WP) */
export const _PAGE_BIT_UFFD_WP: u32 = 10;
/** @bit SD soft-dirty (x86 _PAGE_SOFT_DIRTY) */
export const _PAGE_BIT_SOFT_DIRTY: u32 = 11;
/** @field PFN 12 40 page frame number (a leaf) or page-table pool index (a table pointer) */
export const PTE_PFN_SHIFT: u32 = 12;
export const PTE_PFN_BITS: u32 = 40;

export const _PAGE_PRESENT: u64 = 1 << _PAGE_BIT_PRESENT;
export const _PAGE_RW: u64 = 1 << _PAGE_BIT_RW;
export const _PAGE_USER: u64 = 1 << _PAGE_BIT_USER;
export const _PAGE_ACCESSED: u64 = 1 << _PAGE_BIT_ACCESSED;
export const _PAGE_DIRTY: u64 = 1 << _PAGE_BIT_DIRTY;
export const _PAGE_PSE: u64 = 1 << _PAGE_BIT_PSE;
export const _PAGE_PROTNONE: u64 = 1 << _PAGE_BIT_PROTNONE;
export const _PAGE_SPECIAL: u64 = 1 << _PAGE_BIT_SPECIAL;
export const _PAGE_UFFD_WP: u64 = 1 << _PAGE_BIT_UFFD_WP;
export const _PAGE_SOFT_DIRTY: u64 = 1 << _PAGE_BIT_SOFT_DIRTY;
export const PTE_PFN_MASK: u64 = ((<u64>1 << PTE_PFN_BITS) - 1) << PTE_PFN_SHIFT;

/** _PAGE_CHG_MASK: what pte_modify() keeps from the old entry (x86 keeps the same set). */
export const _PAGE_CHG_MASK: u64 =
  PTE_PFN_MASK | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY | _PAGE_UFFD_WP;
/** _HPAGE_CHG_MASK: the same for PMD leaves, which keep PS. */
export const _HPAGE_CHG_MASK: u64 = _PAGE_CHG_MASK | _PAGE_PSE;
/** The protection bits a caller may pass to pte_modify(): everything outside _PAGE_CHG_MASK. */
export const PTE_PROT_MASK: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_PROTNONE;

/** _PAGE_TABLE: the flags of an entry that points at a lower-level table. */
export const _PAGE_TABLE: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;

// ---- non-present (swap-format) fields ------------------------------------------------------------
/** @swpbit SD soft-dirty kept across swap-out (x86 _PAGE_SWP_SOFT_DIRTY = _PAGE_RW) */
export const _PAGE_BIT_SWP_SOFT_DIRTY: u32 = 1;
/** @swpbit UW uffd-wp kept across swap-out (x86 _PAGE_SWP_UFFD_WP = _PAGE_USER) */
export const _PAGE_BIT_SWP_UFFD_WP: u32 = 2;
/** @swpbit EX SWP_EXCLUSIVE: the swapped page was PageAnonExclusive (x86 _PAGE_SWP_EXCLUSIVE = _PAGE_PWT) */
export const _PAGE_BIT_SWP_EXCLUSIVE: u32 = 3;
/** @field offset 9 50 swap slot, PFN (migration, device, hwpoison) or marker bits */
export const SWP_OFFSET_SHIFT: u32 = 9;
export const SWP_OFFSET_BITS: u32 = 50;
/** @field type 59 5 swap type: a swap device, or one of the special types below */
export const SWP_TYPE_SHIFT: u32 = 59;
export const MAX_SWAPFILES_SHIFT: u32 = 5;

export const _PAGE_SWP_SOFT_DIRTY: u64 = 1 << _PAGE_BIT_SWP_SOFT_DIRTY;
export const _PAGE_SWP_UFFD_WP: u64 = 1 << _PAGE_BIT_SWP_UFFD_WP;
export const _PAGE_SWP_EXCLUSIVE: u64 = 1 << _PAGE_BIT_SWP_EXCLUSIVE;
export const SWP_SOFTWARE_BITS: u64 = _PAGE_SWP_SOFT_DIRTY | _PAGE_SWP_UFFD_WP | _PAGE_SWP_EXCLUSIVE;
export const SWP_OFFSET_MASK: u64 = (<u64>1 << SWP_OFFSET_BITS) - 1;

// Special swap types, in include/linux/swap.h's order (Linux 6.12 with every option on).
export const SWP_HWPOISON_NUM: u32 = 1;
export const SWP_MIGRATION_NUM: u32 = 3;
export const SWP_DEVICE_NUM: u32 = 4;
export const SWP_PTE_MARKER_NUM: u32 = 1;
/** @swptype MAX_SWAPFILES real swap devices: types 0 … MAX_SWAPFILES-1 */
export const MAX_SWAPFILES: u32 =
  (1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM - SWP_MIGRATION_NUM - SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM;
/** @swptype SWP_HWPOISON a poisoned page (offset = PFN) */
export const SWP_HWPOISON: u32 = MAX_SWAPFILES;
/** @swptype SWP_MIGRATION_READ under migration, was mapped R/O and possibly shared */
export const SWP_MIGRATION_READ: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM;
/** @swptype SWP_MIGRATION_READ_EXCLUSIVE under migration, was mapped R/O and PageAnonExclusive */
export const SWP_MIGRATION_READ_EXCLUSIVE: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + 1;
/** @swptype SWP_MIGRATION_WRITE under migration, was mapped writable (so exclusive) */
export const SWP_MIGRATION_WRITE: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + 2;
/** @swptype SWP_DEVICE_WRITE device-private page, writable */
export const SWP_DEVICE_WRITE: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM;
/** @swptype SWP_DEVICE_READ device-private page, read-only */
export const SWP_DEVICE_READ: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 1;
/** @swptype SWP_DEVICE_EXCLUSIVE_WRITE page held exclusively by a device, writable */
export const SWP_DEVICE_EXCLUSIVE_WRITE: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 2;
/** @swptype SWP_DEVICE_EXCLUSIVE_READ page held exclusively by a device, read-only */
export const SWP_DEVICE_EXCLUSIVE_READ: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 3;
/** @swptype SWP_PTE_MARKER a PTE marker (offset = marker bits) */
export const SWP_PTE_MARKER: u32 = MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + SWP_DEVICE_NUM;

/** @marker PTE_MARKER_UFFD_WP keeps uffd-wp state across a zap of shmem/file PTEs (Linux 5.19) */
export const PTE_MARKER_UFFD_WP: u32 = 1 << 0;
/** @marker PTE_MARKER_POISONED "swapin error": any access raises SIGBUS (Linux 6.5) */
export const PTE_MARKER_POISONED: u32 = 1 << 1;
/** @marker PTE_MARKER_GUARD guard region, MADV_GUARD_INSTALL (Linux 6.13) */
export const PTE_MARKER_GUARD: u32 = 1 << 2;
export const PTE_MARKER_MASK: u32 = (1 << 3) - 1;

// ---- present entries ---------------------------------------------------------------------------

/** pfn_pte(): a present entry for `pfn` with protection bits `prot`. */
// @ts-ignore: decorator
@inline export function pfn_pte(pfn: u64, prot: u64): u64 {
  return ((pfn << PTE_PFN_SHIFT) & PTE_PFN_MASK) | (prot & ~PTE_PFN_MASK);
}
// @ts-ignore: decorator
@inline export function pte_pfn(pte: u64): u64 {
  return (pte & PTE_PFN_MASK) >> PTE_PFN_SHIFT;
}
// @ts-ignore: decorator
@inline export function pte_none(pte: u64): bool {
  return pte == 0;
}
/** pte_present(): present to the kernel — P, or PROT_NONE (which the CPU sees as absent). */
// @ts-ignore: decorator
@inline export function pte_present(pte: u64): bool {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0;
}
/** pte_protnone(): PROT_NONE (or NUMA hinting) entry: present to the kernel only. */
// @ts-ignore: decorator
@inline export function pte_protnone(pte: u64): bool {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE;
}
// @ts-ignore: decorator
@inline export function pte_write(pte: u64): bool { return (pte & _PAGE_RW) != 0; }
// @ts-ignore: decorator
@inline export function pte_dirty(pte: u64): bool { return (pte & _PAGE_DIRTY) != 0; }
// @ts-ignore: decorator
@inline export function pte_young(pte: u64): bool { return (pte & _PAGE_ACCESSED) != 0; }
// @ts-ignore: decorator
@inline export function pte_special(pte: u64): bool { return (pte & _PAGE_SPECIAL) != 0; }
// @ts-ignore: decorator
@inline export function pte_uffd_wp(pte: u64): bool { return (pte & _PAGE_UFFD_WP) != 0; }
// @ts-ignore: decorator
@inline export function pte_soft_dirty(pte: u64): bool { return (pte & _PAGE_SOFT_DIRTY) != 0; }
/** pmd_leaf(): a present PMD that maps 2 MiB itself rather than pointing at a PTE table. */
// @ts-ignore: decorator
@inline export function pmd_leaf(pmd: u64): bool {
  return pte_present(pmd) && (pmd & _PAGE_PSE) != 0;
}
/** pte_access_permitted(): may the CPU (or GUP-fast) use the entry for this access? */
// @ts-ignore: decorator
@inline export function pte_access_permitted(pte: u64, write: bool): bool {
  const need: u64 = _PAGE_PRESENT | _PAGE_USER | (write ? _PAGE_RW : 0);
  return (pte & need) == need;
}

// @ts-ignore: decorator
@inline export function pte_mkwrite(pte: u64): u64 { return pte | _PAGE_RW; }
// @ts-ignore: decorator
@inline export function pte_wrprotect(pte: u64): u64 { return pte & ~_PAGE_RW; }
// @ts-ignore: decorator
@inline export function pte_mkdirty(pte: u64): u64 { return pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY; }
// @ts-ignore: decorator
@inline export function pte_mkclean(pte: u64): u64 { return pte & ~_PAGE_DIRTY; }
// @ts-ignore: decorator
@inline export function pte_mkyoung(pte: u64): u64 { return pte | _PAGE_ACCESSED; }
// @ts-ignore: decorator
@inline export function pte_mkold(pte: u64): u64 { return pte & ~_PAGE_ACCESSED; }
// @ts-ignore: decorator
@inline export function pte_mkspecial(pte: u64): u64 { return pte | _PAGE_SPECIAL; }
// @ts-ignore: decorator
@inline export function pte_mkuffd_wp(pte: u64): u64 { return pte_wrprotect(pte | _PAGE_UFFD_WP); }
// @ts-ignore: decorator
@inline export function pte_clear_uffd_wp(pte: u64): u64 { return pte & ~_PAGE_UFFD_WP; }
// @ts-ignore: decorator
@inline export function pte_mksoft_dirty(pte: u64): u64 { return pte | _PAGE_SOFT_DIRTY; }
// @ts-ignore: decorator
@inline export function pte_clear_soft_dirty(pte: u64): u64 { return pte & ~_PAGE_SOFT_DIRTY; }
/** pmd_mkhuge(): turn an entry into a PMD leaf. */
// @ts-ignore: decorator
@inline export function pmd_mkhuge(pmd: u64): u64 { return pmd | _PAGE_PSE; }
/**
 * pte_modify(): replace the protection bits, keeping PFN, A/D, special, soft-dirty and uffd-wp
 * (_PAGE_CHG_MASK). x86 also moves Dirty into SavedDirty on write-protect for shadow stacks;
 * that is not modelled: a read-only entry may stay dirty here, as on every other architecture.
 */
// @ts-ignore: decorator
@inline export function pte_modify(pte: u64, newprot: u64): u64 {
  const keep = pmd_leaf(pte) ? _HPAGE_CHG_MASK : _PAGE_CHG_MASK;
  return (pte & keep) | (newprot & PTE_PROT_MASK);
}

// ---- non-present entries -------------------------------------------------------------------------

/** is_swap_pte(): neither none nor present — one of the swap-format entries. */
// @ts-ignore: decorator
@inline export function is_swap_pte(pte: u64): bool {
  return !pte_none(pte) && !pte_present(pte);
}
/** swp_entry(): build a swp_entry_t. */
// @ts-ignore: decorator
@inline export function swp_entry(type: u32, offset: u64): u64 {
  return (<u64>type << SWP_TYPE_SHIFT) | ((offset & SWP_OFFSET_MASK) << SWP_OFFSET_SHIFT);
}
// @ts-ignore: decorator
@inline export function swp_type(entry: u64): u32 {
  return <u32>(entry >> SWP_TYPE_SHIFT);
}
// @ts-ignore: decorator
@inline export function swp_offset(entry: u64): u64 {
  return (entry >> SWP_OFFSET_SHIFT) & SWP_OFFSET_MASK;
}
/** pte_to_swp_entry(): the entry without its software bits. */
// @ts-ignore: decorator
@inline export function pte_to_swp_entry(pte: u64): u64 { return pte & ~SWP_SOFTWARE_BITS; }
// @ts-ignore: decorator
@inline export function swp_entry_to_pte(entry: u64): u64 { return entry & ~SWP_SOFTWARE_BITS; }
/** non_swap_entry(): migration, device, hwpoison or marker rather than a swap slot. */
// @ts-ignore: decorator
@inline export function non_swap_entry(entry: u64): bool {
  return swp_type(entry) >= MAX_SWAPFILES;
}

// @ts-ignore: decorator
@inline export function pte_swp_exclusive(pte: u64): bool { return (pte & _PAGE_SWP_EXCLUSIVE) != 0; }
// @ts-ignore: decorator
@inline export function pte_swp_mkexclusive(pte: u64): u64 { return pte | _PAGE_SWP_EXCLUSIVE; }
// @ts-ignore: decorator
@inline export function pte_swp_clear_exclusive(pte: u64): u64 { return pte & ~_PAGE_SWP_EXCLUSIVE; }
// @ts-ignore: decorator
@inline export function pte_swp_uffd_wp(pte: u64): bool { return (pte & _PAGE_SWP_UFFD_WP) != 0; }
// @ts-ignore: decorator
@inline export function pte_swp_mkuffd_wp(pte: u64): u64 { return pte | _PAGE_SWP_UFFD_WP; }
// @ts-ignore: decorator
@inline export function pte_swp_clear_uffd_wp(pte: u64): u64 { return pte & ~_PAGE_SWP_UFFD_WP; }
// @ts-ignore: decorator
@inline export function pte_swp_soft_dirty(pte: u64): bool { return (pte & _PAGE_SWP_SOFT_DIRTY) != 0; }
// @ts-ignore: decorator
@inline export function pte_swp_mksoft_dirty(pte: u64): u64 { return pte | _PAGE_SWP_SOFT_DIRTY; }
// @ts-ignore: decorator
@inline export function pte_swp_clear_soft_dirty(pte: u64): u64 { return pte & ~_PAGE_SWP_SOFT_DIRTY; }

// @ts-ignore: decorator
@inline export function is_migration_entry(entry: u64): bool {
  const t = swp_type(entry);
  return t >= SWP_MIGRATION_READ && t <= SWP_MIGRATION_WRITE;
}
// @ts-ignore: decorator
@inline export function is_writable_migration_entry(entry: u64): bool {
  return swp_type(entry) == SWP_MIGRATION_WRITE;
}
// @ts-ignore: decorator
@inline export function is_readable_migration_entry(entry: u64): bool {
  return swp_type(entry) == SWP_MIGRATION_READ;
}
// @ts-ignore: decorator
@inline export function is_readable_exclusive_migration_entry(entry: u64): bool {
  return swp_type(entry) == SWP_MIGRATION_READ_EXCLUSIVE;
}
// @ts-ignore: decorator
@inline export function make_readable_migration_entry(pfn: u64): u64 { return swp_entry(SWP_MIGRATION_READ, pfn); }
// @ts-ignore: decorator
@inline export function make_readable_exclusive_migration_entry(pfn: u64): u64 {
  return swp_entry(SWP_MIGRATION_READ_EXCLUSIVE, pfn);
}
// @ts-ignore: decorator
@inline export function make_writable_migration_entry(pfn: u64): u64 { return swp_entry(SWP_MIGRATION_WRITE, pfn); }

// @ts-ignore: decorator
@inline export function is_device_private_entry(entry: u64): bool {
  const t = swp_type(entry);
  return t == SWP_DEVICE_WRITE || t == SWP_DEVICE_READ;
}
// @ts-ignore: decorator
@inline export function is_writable_device_private_entry(entry: u64): bool {
  return swp_type(entry) == SWP_DEVICE_WRITE;
}
// @ts-ignore: decorator
@inline export function make_readable_device_private_entry(pfn: u64): u64 { return swp_entry(SWP_DEVICE_READ, pfn); }
// @ts-ignore: decorator
@inline export function make_writable_device_private_entry(pfn: u64): u64 { return swp_entry(SWP_DEVICE_WRITE, pfn); }
// @ts-ignore: decorator
@inline export function is_device_exclusive_entry(entry: u64): bool {
  const t = swp_type(entry);
  return t == SWP_DEVICE_EXCLUSIVE_WRITE || t == SWP_DEVICE_EXCLUSIVE_READ;
}
// @ts-ignore: decorator
@inline export function is_writable_device_exclusive_entry(entry: u64): bool {
  return swp_type(entry) == SWP_DEVICE_EXCLUSIVE_WRITE;
}
// @ts-ignore: decorator
@inline export function make_readable_device_exclusive_entry(pfn: u64): u64 {
  return swp_entry(SWP_DEVICE_EXCLUSIVE_READ, pfn);
}
// @ts-ignore: decorator
@inline export function make_writable_device_exclusive_entry(pfn: u64): u64 {
  return swp_entry(SWP_DEVICE_EXCLUSIVE_WRITE, pfn);
}
// @ts-ignore: decorator
@inline export function is_hwpoison_entry(entry: u64): bool { return swp_type(entry) == SWP_HWPOISON; }
// @ts-ignore: decorator
@inline export function make_hwpoison_entry(pfn: u64): u64 { return swp_entry(SWP_HWPOISON, pfn); }
/** is_pfn_swap_entry(): the offset is a PFN (migration, device, hwpoison). */
// @ts-ignore: decorator
@inline export function is_pfn_swap_entry(entry: u64): bool {
  const t = swp_type(entry);
  return t >= SWP_HWPOISON && t < SWP_PTE_MARKER;
}

// @ts-ignore: decorator
@inline export function is_pte_marker_entry(entry: u64): bool { return swp_type(entry) == SWP_PTE_MARKER; }
// @ts-ignore: decorator
@inline export function is_pte_marker(pte: u64): bool { return is_swap_pte(pte) && is_pte_marker_entry(pte); }
// @ts-ignore: decorator
@inline export function make_pte_marker(marker: u32): u64 {
  return swp_entry(SWP_PTE_MARKER, <u64>(marker & PTE_MARKER_MASK));
}
// @ts-ignore: decorator
@inline export function pte_marker_get(entry: u64): u32 { return <u32>swp_offset(entry) & PTE_MARKER_MASK; }
// @ts-ignore: decorator
@inline export function pte_marker_uffd_wp(pte: u64): bool {
  return is_pte_marker(pte) && (pte_marker_get(pte) & PTE_MARKER_UFFD_WP) != 0;
}
// @ts-ignore: decorator
@inline export function is_poisoned_swp_entry(entry: u64): bool {
  return is_pte_marker_entry(entry) && (pte_marker_get(entry) & PTE_MARKER_POISONED) != 0;
}
// @ts-ignore: decorator
@inline export function is_guard_swp_entry(entry: u64): bool {
  return is_pte_marker_entry(entry) && (pte_marker_get(entry) & PTE_MARKER_GUARD) != 0;
}

/**
 * pte_kind(): a small classification of any entry, used in records handed to TypeScript.
 * Values are the PTE_KIND_* constants; the generator mirrors them into TypeScript.
 */
/** @kind NONE empty entry */
export const PTE_KIND_NONE: u32 = 0;
/** @kind PRESENT present entry mapping a page (or the zero page) */
export const PTE_KIND_PRESENT: u32 = 1;
/** @kind PROTNONE PROT_NONE / NUMA-hinting entry */
export const PTE_KIND_PROTNONE: u32 = 2;
/** @kind SWAP swap entry (a slot on a swap device) */
export const PTE_KIND_SWAP: u32 = 3;
/** @kind MIGRATION migration entry (read, readable-exclusive or write) */
export const PTE_KIND_MIGRATION: u32 = 4;
/** @kind DEVICE_PRIVATE device-private entry */
export const PTE_KIND_DEVICE_PRIVATE: u32 = 5;
/** @kind DEVICE_EXCLUSIVE device-exclusive entry */
export const PTE_KIND_DEVICE_EXCLUSIVE: u32 = 6;
/** @kind HWPOISON hardware-poisoned page */
export const PTE_KIND_HWPOISON: u32 = 7;
/** @kind MARKER PTE marker (uffd-wp, poisoned, guard) */
export const PTE_KIND_MARKER: u32 = 8;
/** @kind TABLE non-leaf entry pointing at a page table */
export const PTE_KIND_TABLE: u32 = 9;

export function pte_kind(pte: u64, leaf: bool): u32 {
  if (pte_none(pte)) return PTE_KIND_NONE;
  if (pte_present(pte)) {
    if (!leaf && (pte & _PAGE_PSE) == 0) return PTE_KIND_TABLE;
    return pte_protnone(pte) ? PTE_KIND_PROTNONE : PTE_KIND_PRESENT;
  }
  const t = swp_type(pte);
  if (t < MAX_SWAPFILES) return PTE_KIND_SWAP;
  if (t == SWP_HWPOISON) return PTE_KIND_HWPOISON;
  if (t <= SWP_MIGRATION_WRITE) return PTE_KIND_MIGRATION;
  if (t <= SWP_DEVICE_READ) return PTE_KIND_DEVICE_PRIVATE;
  if (t <= SWP_DEVICE_EXCLUSIVE_READ) return PTE_KIND_DEVICE_EXCLUSIVE;
  return PTE_KIND_MARKER;
}
