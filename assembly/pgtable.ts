// Page tables: the pool, mm_struct slots, walks, allocation and installation, freeing.
//
// Four levels of 512 eight-byte entries (PGD → PUD → PMD → PTE), 48-bit virtual addresses:
//
//   47        39 38        30 29        21 20        12 11          0
//  ┌────────────┬────────────┬────────────┬────────────┬─────────────┐
//  │  pgd index │  pud index │  pmd index │  pte index │ page offset │
//  └────────────┴────────────┴────────────┴────────────┴─────────────┘
//
// Tables come from a pool of 4 KiB tables (a lock-free stack plus a bump index). A table that
// is needed is installed the kernel's way (__pte_alloc()): allocate, cmpxchg into the empty
// slot, free it again if another thread won. Callers that must not half-fail first count the
// tables they need and reserve them (pt_reserve()), so ENOMEM leaves every table as it was.
//
// Entry loads are atomic 64-bit loads, so a lockless walker never sees a torn entry. Range
// walks (and translation) go through pagewalk.ts; the single-entry helpers here (pmd_off(),
// pte_offset_map() and the slow-path get/set) serve faults, swap and tests.

import {
  hdr, ctxOf, ctx_up, layoutBase, Header, Ctx, NO_PFN, PAGE_SIZE, PTRS_PER_TABLE, MM_STRUCT_BYTES,
  stackPop, stackPush, tryReserve, reserveInto, unreserveFrom, count_vm_events, PGTABLE_ALLOC, PGTABLE_FREE,
  PGTABLE_ALLOC_FAIL, ENOMEM, EINVAL, EBUSY, EEXIST, should_fail, FAIL_PGTABLE,
} from "./layout";
import {
  pte_none, pte_present, pte_pfn, pfn_pte, pmd_leaf, pte_kind, _PAGE_TABLE, _PAGE_PSE,
  _PAGE_PRESENT, PTE_KIND_NONE,
} from "./pte";
import { page_table_check_pte_set, page_table_check_pmd_set } from "./page_table_check";
import { MmWalk, walk_of, walk_page_at } from "./pagewalk";

export const PGDIR_SHIFT: u32 = 39;
export const PUD_SHIFT: u32 = 30;
export const PMD_SHIFT: u32 = 21;
export const PMD_SIZE: u64 = <u64>1 << PMD_SHIFT;
export const PUD_SIZE: u64 = <u64>1 << PUD_SHIFT;
export const PGDIR_SIZE: u64 = <u64>1 << PGDIR_SHIFT;
/** The simulated address space: 48 bits, of which user space is the lower half. */
export const TASK_SIZE: u64 = <u64>1 << 47;

// ---- mm_struct -------------------------------------------------------------------------------

/** MMF_HAS_PINNED: FOLL_PIN has run on this mm; never cleared (as in Linux). */
export const MMF_HAS_PINNED: u32 = 1 << 0;

/** @rss MM_FILEPAGES file-backed pages mapped */
export const MM_FILEPAGES: u32 = 0;
/** @rss MM_ANONPAGES anonymous pages mapped */
export const MM_ANONPAGES: u32 = 1;
/** @rss MM_SWAPENTS swap entries */
export const MM_SWAPENTS: u32 = 2;
/** @rss MM_SHMEMPAGES shmem pages mapped */
export const MM_SHMEMPAGES: u32 = 3;

@unmanaged export class MmStruct {
  pgd: u32;              // table index of the PGD; the free-stack link while the slot is free
  write_protect_seq: u32;
  flags: u32;
  nr_ptes: i32;          // page tables below the PGD (mm_pgtables_bytes / 4 KiB)
  rss0: i32;
  rss1: i32;
  rss2: i32;
  rss3: i32;
  inUse: u32;
  /** pmd_huge_pte: the tables deposited for PMD leaves, a stack (table index + 1; 0 empty). */
  pmd_huge_pte: u32;
}

// @ts-ignore: decorator
@inline export function mmAddr(mm: u32): u32 {
  return hdr().mmBase + mm * MM_STRUCT_BYTES;
}
// @ts-ignore: decorator
@inline export function mmOf(mm: u32): MmStruct {
  return changetype<MmStruct>(mmAddr(mm));
}
// @ts-ignore: decorator
@inline export function mmRssAddr(mm: u32, member: u32): u32 {
  return mmAddr(mm) + offsetof<MmStruct>("rss0") + (member << 2);
}
export function add_mm_counter(mm: u32, member: u32, value: i32): void {
  if (value == 0) return;
  // one context attached: nobody else counts (the RSS counters are per-CPU in Linux anyway)
  const c = mmRssAddr(mm, member);
  if (ctx_up()) store<i32>(c, load<i32>(c) + value); else atomic.add<i32>(c, value);
}
export function get_mm_counter(mm: u32, member: u32): i32 {
  return atomic.load<i32>(mmRssAddr(mm, member));
}
export function mm_flags(mm: u32): u32 {
  return atomic.load<u32>(mmAddr(mm) + offsetof<MmStruct>("flags"));
}
export function mm_set_flags(mm: u32, bits: u32): void {
  atomic.or<u32>(mmAddr(mm) + offsetof<MmStruct>("flags"), bits);
}
export function mm_write_protect_seq(mm: u32): u32 {
  return atomic.load<u32>(mmAddr(mm) + offsetof<MmStruct>("write_protect_seq"));
}
/** raw_write_seqcount_begin(&mm->write_protect_seq) / _end: odd while fork write-protects. */
export function mm_write_protect_seq_inc(mm: u32): void {
  atomic.add<u32>(mmAddr(mm) + offsetof<MmStruct>("write_protect_seq"), 1);
}
export function mm_nr_ptes(mm: u32): i32 {
  return atomic.load<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"));
}

/**
 * mm_alloc() + pgd_alloc(): a fresh mm with an empty PGD. Returns the mm id, or -ENOMEM when
 * the mm table or the page-table pool is exhausted (nothing changed).
 */
export function mm_alloc(ctx: u32): i32 {
  const H = hdr();
  const availAddr = layoutBase() + offsetof<Header>("mmAvailable");
  if (!tryReserve(availAddr, 1)) return -ENOMEM;
  const pgd = pt_alloc_table(ctx);
  if (pgd == NO_PFN) {
    atomic.add<i32>(availAddr, 1);
    return -ENOMEM;
  }
  let mm = stackPop(layoutBase() + offsetof<Header>("mmFreeHead"), H.mmBase, MM_STRUCT_BYTES);
  if (mm == NO_PFN) mm = atomic.add<u32>(layoutBase() + offsetof<Header>("mmBump"), 1);
  memory.fill(mmAddr(mm), 0, MM_STRUCT_BYTES);
  const M = mmOf(mm);
  M.pgd = pgd;
  atomic.store<u32>(mmAddr(mm) + offsetof<MmStruct>("inUse"), 1);
  return <i32>mm;
}

/**
 * mm_free(): the PGD and the slot. Fails with -EBUSY (changing nothing) while the mm still has
 * page tables below its PGD or anything counted in its RSS: tear those down first.
 */
export function mm_free(ctx: u32, mm: u32): i32 {
  if (mm >= hdr().maxMms || atomic.load<u32>(mmAddr(mm) + offsetof<MmStruct>("inUse")) == 0) return -EINVAL;
  const M = mmOf(mm);
  if (M.nr_ptes != 0 || M.rss0 != 0 || M.rss1 != 0 || M.rss2 != 0 || M.rss3 != 0) return -EBUSY;
  atomic.store<u32>(mmAddr(mm) + offsetof<MmStruct>("inUse"), 0);
  pt_free_table_rcu(M.pgd);
  stackPush(layoutBase() + offsetof<Header>("mmFreeHead"), hdr().mmBase, MM_STRUCT_BYTES, mm);
  atomic.add<i32>(layoutBase() + offsetof<Header>("mmAvailable"), 1);
  return 0;
}

export function mm_valid(mm: u32): bool {
  return mm < hdr().maxMms && atomic.load<u32>(mmAddr(mm) + offsetof<MmStruct>("inUse")) != 0;
}

// ---- tables deposited for PMD leaves (mm/pgtable-generic.c) -----------------------------------

/**
 * pgtable_trans_huge_deposit(): keep table `idx` for the PMD leaf being installed, so that
 * splitting it later needs no allocation (x86 without split PMD locks keeps one list per mm, as
 * here). The deposited table counts in nr_ptes (mm_inc_nr_ptes()); the caller holds the PMD.
 */
export function pgtable_trans_huge_deposit(mm: u32, idx: u32): void {
  const head = mmAddr(mm) + offsetof<MmStruct>("pmd_huge_pte");
  // the table's first word links the stack; a withdrawn table is all zero again
  store<u32>(tableAddr(idx), atomic.load<u32>(head));
  atomic.store<u32>(head, idx + 1);
  atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
}

/** pgtable_trans_huge_withdraw(): a deposited table (still counted in nr_ptes), or NO_PFN. */
export function pgtable_trans_huge_withdraw(mm: u32): u32 {
  const head = mmAddr(mm) + offsetof<MmStruct>("pmd_huge_pte");
  const top = atomic.load<u32>(head);
  if (top == 0) return NO_PFN;
  const idx = top - 1;
  atomic.store<u32>(head, load<u32>(tableAddr(idx)));
  store<u32>(tableAddr(idx), 0);
  return idx;
}

/** zap_deposited_table(): the PMD leaf is gone, and the table kept for it goes too. */
export function zap_deposited_table(mm: u32): void {
  const idx = pgtable_trans_huge_withdraw(mm);
  if (idx == NO_PFN) return;
  pt_free_table_rcu(idx);
  atomic.sub<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
}

/** How many tables `mm` holds deposited. */
export function mm_deposited_tables(mm: u32): i32 {
  let n: i32 = 0;
  for (let top = atomic.load<u32>(mmAddr(mm) + offsetof<MmStruct>("pmd_huge_pte")); top != 0; top = load<u32>(tableAddr(top - 1))) n++;
  return n;
}

// ---- the pool --------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function tableAddr(idx: u32): u32 {
  return hdr().ptBase + (idx << 12);
}
// @ts-ignore: decorator
@inline function ptAvailAddr(): u32 {
  return layoutBase() + offsetof<Header>("ptAvailable");
}

/**
 * Allocates one zeroed table, from the context's reservation if it holds one.
 * Returns the table index, or NO_PFN when the pool is exhausted (or, outside a reservation,
 * when fault injection fails it: should_fail(FAIL_PGTABLE)).
 */
export function pt_alloc_table(ctx: u32): u32 {
  const C = ctxOf(ctx);
  if (C.ptReserved > 0) {
    C.ptReserved = C.ptReserved - 1;
  } else if (should_fail(FAIL_PGTABLE) || !tryReserve(ptAvailAddr(), 1)) {
    count_vm_events(PGTABLE_ALLOC_FAIL, 1);
    return NO_PFN;
  }
  const H = hdr();
  let idx = stackPop(layoutBase() + offsetof<Header>("ptFreeHead"), H.ptBase, PAGE_SIZE);
  if (idx == NO_PFN) idx = atomic.add<u32>(layoutBase() + offsetof<Header>("ptBump"), 1);
  memory.fill(tableAddr(idx), 0, PAGE_SIZE);
  count_vm_events(PGTABLE_ALLOC, 1);
  return idx;
}

/**
 * tlb_remove_table_sync_one() / the RCU grace period of tlb_remove_table(): waits until every
 * thread that was inside GUP-fast's lockless walk (Ctx.gupFastSeq odd) when the caller
 * unlinked a table has left it. A walk that starts afterwards cannot reach the unlinked table,
 * so once this returns the table may be reused. Every access is sequentially consistent: the
 * unlink (a store) and the walker's announcement (an add) cannot both miss each other. A
 * single-threaded machine pays one load per context.
 */
export function gup_fast_sync(): void {
  const H = hdr();
  for (let i: u32 = 0; i < H.maxThreads; i++) {
    const c = H.ctxBase + i * H.ctxStride;
    if (atomic.load<u32>(c + offsetof<Ctx>("inUse")) == 0) continue;
    const seqAddr = c + offsetof<Ctx>("gupFastSeq");
    const seq = atomic.load<u32>(seqAddr);
    if ((seq & 1) == 0) continue;
    while (atomic.load<u32>(seqAddr) == seq) {
      // a walk is a bounded loop with no lock to wait for: it leaves soon
    }
  }
}

/** A table that was reachable from the mm: freed after gup_fast_sync() (tlb_remove_table()). */
function pt_free_table_rcu(idx: u32): void {
  gup_fast_sync();
  pt_free_table(idx);
}

export function pt_free_table(idx: u32): void {
  stackPush(layoutBase() + offsetof<Header>("ptFreeHead"), hdr().ptBase, PAGE_SIZE, idx);
  atomic.add<i32>(ptAvailAddr(), 1);
  count_vm_events(PGTABLE_FREE, 1);
}

/**
 * Reserves `n` tables for the context's next allocations; false (nothing taken) if short, or
 * when fault injection fails it (one attempt per call with n > 0).
 */
export function pt_reserve(ctx: u32, n: u32): bool {
  return reserveInto(ctx + offsetof<Ctx>("ptReserved"), ptAvailAddr(), n, PGTABLE_ALLOC_FAIL, FAIL_PGTABLE);
}

/** Tops the context's reservation up to at least `n` tables; false (nothing taken) if short. */
export function pt_reserve_upto(ctx: u32, n: u32): bool {
  const have = ctxOf(ctx).ptReserved;
  return n <= have || pt_reserve(ctx, n - have);
}

/** Returns whatever the context still has reserved. */
export function pt_unreserve(ctx: u32): void {
  unreserveFrom(ctx + offsetof<Ctx>("ptReserved"), ptAvailAddr());
}

// ---- entries ---------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function entryLoad(slot: u32): u64 {
  return atomic.load<u64>(slot);
}
// @ts-ignore: decorator
@inline export function entryStore(slot: u32, v: u64): void {
  atomic.store<u64>(slot, v);
}
/** The table a non-leaf entry points at. */
// @ts-ignore: decorator
@inline export function entryTable(e: u64): u32 {
  return tableAddr(<u32>pte_pfn(e));
}
// @ts-ignore: decorator
@inline export function pgdIndex(va: u64): u32 { return <u32>(va >> PGDIR_SHIFT) & 511; }
// @ts-ignore: decorator
@inline export function pudIndex(va: u64): u32 { return <u32>(va >> PUD_SHIFT) & 511; }
// @ts-ignore: decorator
@inline export function pmdIndex(va: u64): u32 { return <u32>(va >> PMD_SHIFT) & 511; }
// @ts-ignore: decorator
@inline export function pteIndex(va: u64): u32 { return <u32>(va >> 12) & 511; }

// @ts-ignore: decorator
@inline export function pgdSlot(mm: u32, va: u64): u32 {
  return tableAddr(mmOf(mm).pgd) + (pgdIndex(va) << 3);
}

/** A present entry that points at a table (not a leaf). */
// @ts-ignore: decorator
@inline export function isTableEntry(e: u64): bool {
  return pte_present(e) && (e & _PAGE_PSE) == 0;
}

/**
 * pmd_off(): the PMD slot for `va`, or 0 when the PUD or PGD level is missing.
 * Lockless: every level is read with one atomic load.
 */
export function walk_pmdp(mm: u32, va: u64): u32 {
  const pgd = entryLoad(pgdSlot(mm, va));
  if (!isTableEntry(pgd)) return 0;
  const pud = entryLoad(entryTable(pgd) + (pudIndex(va) << 3));
  if (!isTableEntry(pud)) return 0;
  return entryTable(pud) + (pmdIndex(va) << 3);
}

/**
 * pte_offset_map(): the PTE slot for `va`, or 0 when a level is missing or the PMD is a leaf
 * (or anything but a table pointer).
 */
export function walk_ptep(mm: u32, va: u64): u32 {
  const pmdp = walk_pmdp(mm, va);
  if (pmdp == 0) return 0;
  const pmd = entryLoad(pmdp);
  if (!isTableEntry(pmd)) return 0;
  return entryTable(pmd) + (pteIndex(va) << 3);
}

/** How many tables walk-with-allocation of `va` down to `level` (1 = PUD … 3 = PTE) needs. */
export function tables_missing_at(mm: u32, va: f64, level: u32): u32 {
  return tables_missing(mm, <u64>va, level);
}
export function tables_missing(mm: u32, va: u64, level: u32): u32 {
  const pgd = entryLoad(pgdSlot(mm, va));
  if (!isTableEntry(pgd)) return level;
  if (level == 1) return 0;
  const pud = entryLoad(entryTable(pgd) + (pudIndex(va) << 3));
  if (!isTableEntry(pud)) return level - 1;
  if (level == 2) return 0;
  const pmd = entryLoad(entryTable(pud) + (pmdIndex(va) << 3));
  if (pmd_leaf(pmd)) return 0;
  return isTableEntry(pmd) ? 0 : 1;
}

/**
 * __pte_alloc() and friends (__pud_alloc(), __pmd_alloc(): one installer for every level):
 * make sure the slot `slot` points at a table, allocating one if it is empty, from the
 * context's reservation first. Installs it the kernel's way: cmpxchg into the empty slot, and
 * free it again if another thread won. Returns the table address, or 0 on ENOMEM or when the
 * slot holds a leaf or a non-present entry.
 */
export function __pte_alloc(ctx: u32, mm: u32, slot: u32): u32 {
  let e = entryLoad(slot);
  if (pte_none(e)) {
    const idx = pt_alloc_table(ctx);
    if (idx == NO_PFN) return 0;
    const ne = pfn_pte(<u64>idx, _PAGE_TABLE);
    const seen = atomic.cmpxchg<u64>(slot, 0, ne);
    if (seen == 0) {
      atomic.add<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), 1);
      return tableAddr(idx);
    }
    pt_free_table(idx); // another thread installed one first
    e = seen;
  }
  return isTableEntry(e) ? entryTable(e) : 0;
}

/** pud_alloc() + pmd_alloc(): the PMD slot for `va`, allocating the tables above it. */
export function walk_alloc_pmdp(ctx: u32, mm: u32, va: u64): u32 {
  const pudTable = __pte_alloc(ctx, mm, pgdSlot(mm, va));
  if (pudTable == 0) return 0;
  const pmdTable = __pte_alloc(ctx, mm, pudTable + (pudIndex(va) << 3));
  if (pmdTable == 0) return 0;
  return pmdTable + (pmdIndex(va) << 3);
}

/**
 * pte_alloc_map(): the PTE slot for `va`, allocating missing tables. All-or-nothing: the
 * missing tables are reserved first, so ENOMEM (0) leaves the page tables untouched.
 * Returns 0 also when the PMD is a leaf.
 */
export function walk_alloc_ptep(ctx: u32, mm: u32, va: u64): u32 {
  if (!pt_reserve_upto(ctx, tables_missing(mm, va, 3))) return 0;
  const pmdp = walk_alloc_pmdp(ctx, mm, va);
  let r: u32 = 0;
  if (pmdp != 0) {
    const pteTable = __pte_alloc(ctx, mm, pmdp);
    if (pteTable != 0) r = pteTable + (pteIndex(va) << 3);
  }
  pt_unreserve(ctx);
  return r;
}

/** True when all 512 entries of the table are none. */
export function table_empty(table: u32): bool {
  for (let a = table, end = table + PAGE_SIZE; a < end; a += 64) if (!none8(a)) return false;
  return true;
}

/**
 * Whether the eight entries from `slot` are all none. free_pgd_range() and table_empty() run
 * with the mm held as mmap_write_lock() holds it, mm_count_tables() between steps: no entry
 * changes meanwhile (a lockless GUP-fast only reads), so plain loads, eight entries to a test.
 */
// @ts-ignore: decorator
@inline function none8(slot: u32): bool {
  return (load<u64>(slot) | load<u64>(slot, 8) | load<u64>(slot, 16) | load<u64>(slot, 24) |
    load<u64>(slot, 32) | load<u64>(slot, 40) | load<u64>(slot, 48) | load<u64>(slot, 56)) == 0;
}

/**
 * free_pgd_range(): free the page tables that lie wholly inside [floor, ceiling) and map
 * nothing. Its own descent, as in Linux (free_p4d_range() … free_pte_range()), not a walk of
 * pagewalk.ts: a table is freed after its entries are seen, on the way back up. The caller has
 * zapped the range; a lockless walker (GUP-fast in another thread) may still be inside a table
 * it unlinks, so each goes back to the pool only after gup_fast_sync() (the kernel's
 * RCU-delayed table freeing, tlb_remove_table()).
 * Returns the number of tables freed.
 */
export function free_pgd_range(mm: u32, floor: f64, ceiling: f64): i32 {
  const lo = <u64>floor;
  const hi = <u64>ceiling;
  const pgdTable = tableAddr(mmOf(mm).pgd);
  let freed: i32 = 0;
  // a table's empty slots are skipped eight at a time (they would only be passed over): an
  // exiting process of a few pages has a few tables, each scanned whole
  for (let g: u32 = pgdIndex(lo); g < 256; g++) {
    if ((g & 7) == 0 && none8(pgdTable + (g << 3))) { g += 7; continue; }
    const gStart = <u64>g << PGDIR_SHIFT;
    if (gStart >= hi) break;
    const gSlot = pgdTable + (g << 3);
    const ge = load<u64>(gSlot);
    if (!isTableEntry(ge)) continue;
    const pudTable = entryTable(ge);
    for (let u: u32 = 0; u < 512; u++) {
      if ((u & 7) == 0 && none8(pudTable + (u << 3))) { u += 7; continue; }
      const uStart = gStart + (<u64>u << PUD_SHIFT);
      if (uStart + PUD_SIZE <= lo) continue;
      if (uStart >= hi) break;
      const uSlot = pudTable + (u << 3);
      const ue = load<u64>(uSlot);
      if (!isTableEntry(ue)) continue;
      const pmdTable = entryTable(ue);
      for (let m: u32 = 0; m < 512; m++) {
        if ((m & 7) == 0 && none8(pmdTable + (m << 3))) { m += 7; continue; }
        const mStart = uStart + (<u64>m << PMD_SHIFT);
        if (mStart < lo) continue;
        if (mStart + PMD_SIZE > hi) break;
        const mSlot = pmdTable + (m << 3);
        const me = load<u64>(mSlot);
        if (!isTableEntry(me)) continue;
        const pteTable = entryTable(me);
        if (!table_empty(pteTable)) continue;
        entryStore(mSlot, 0);
        pt_free_table_rcu(<u32>pte_pfn(me));
        freed++;
      }
      if (uStart >= lo && uStart + PUD_SIZE <= hi && table_empty(pmdTable)) {
        entryStore(uSlot, 0);
        pt_free_table_rcu(<u32>pte_pfn(ue));
        freed++;
      }
    }
    if (gStart >= lo && gStart + PGDIR_SIZE <= hi && table_empty(pudTable)) {
      entryStore(gSlot, 0);
      pt_free_table_rcu(<u32>pte_pfn(ge));
      freed++;
    }
  }
  atomic.sub<i32>(mmAddr(mm) + offsetof<MmStruct>("nr_ptes"), freed);
  return freed;
}

/**
 * Counts the tables below the PGD of `mm` by walking them (for checks against nr_ptes): every
 * table of both halves of the address space, each slot read as is, independently of
 * pagewalk.ts, so that it checks what the walker's users installed — and the tables deposited
 * for PMD leaves, which nr_ptes counts too.
 */
export function mm_count_tables(mm: u32): i32 {
  const pgdTable = tableAddr(mmOf(mm).pgd);
  let n: i32 = 0;
  for (let g: u32 = 0; g < 512; g++) {
    if ((g & 7) == 0 && none8(pgdTable + (g << 3))) { g += 7; continue; }
    const ge = entryLoad(pgdTable + (g << 3));
    if (!isTableEntry(ge)) continue;
    n++;
    const pudTable = entryTable(ge);
    for (let u: u32 = 0; u < 512; u++) {
      if ((u & 7) == 0 && none8(pudTable + (u << 3))) { u += 7; continue; }
      const ue = entryLoad(pudTable + (u << 3));
      if (!isTableEntry(ue)) continue;
      n++;
      const pmdTable = entryTable(ue);
      for (let m: u32 = 0; m < 512; m++) {
        if ((m & 7) == 0 && none8(pmdTable + (m << 3))) { m += 7; continue; }
        if (isTableEntry(entryLoad(pmdTable + (m << 3)))) n++;
      }
    }
  }
  return n + mm_deposited_tables(mm);
}

// ---- single entries (slow path and tests; 64-bit values) ------------------------------------

/** ptep_get() for `va`; 0 when no PTE table maps it. A PMD leaf is returned as is. */
export function ptep_get(mm: u32, va: f64): u64 {
  const a = <u64>va;
  const pmdp = walk_pmdp(mm, a);
  if (pmdp == 0) return 0;
  const pmd = entryLoad(pmdp);
  if (!isTableEntry(pmd)) return pmd;
  return entryLoad(entryTable(pmd) + (pteIndex(a) << 3));
}
/** pmdp_get() for `va`; 0 when the PUD level is missing. */
export function pmdp_get(mm: u32, va: f64): u64 {
  const pmdp = walk_pmdp(mm, <u64>va);
  return pmdp == 0 ? 0 : entryLoad(pmdp);
}
/** set_pte_at(), allocating tables. Returns 0, or -ENOMEM (nothing changed) / -EEXIST (PMD leaf). */
export function ptep_set(ctx: u32, mm: u32, va: f64, pte: u64): i32 {
  const a = <u64>va;
  const slot = walk_alloc_ptep(ctx, mm, a);
  if (slot == 0) return tables_missing(mm, a, 3) == 0 ? -EEXIST : -ENOMEM;
  page_table_check_pte_set(a, pte);
  entryStore(slot, pte);
  return 0;
}
/** set_pmd_at(), allocating the upper tables. */
export function pmdp_set(ctx: u32, mm: u32, va: f64, pmd: u64): i32 {
  const a = <u64>va;
  if (!pt_reserve_upto(ctx, tables_missing(mm, a, 2))) return -ENOMEM;
  const slot = walk_alloc_pmdp(ctx, mm, a);
  pt_unreserve(ctx);
  if (slot == 0) return -ENOMEM;
  if (pmd_leaf(pmd)) page_table_check_pmd_set(a, pmd);
  entryStore(slot, pmd);
  return 0;
}
/** ptep_get_and_clear(): an exchange with none. 0 when there is no PTE table. */
export function ptep_get_and_clear(mm: u32, va: f64): u64 {
  const slot = walk_ptep(mm, <u64>va);
  return slot == 0 ? 0 : atomic.xchg<u64>(slot, 0);
}
/** ptep_cmpxchg(): returns the value seen (equal to `old` when the swap happened). */
export function ptep_cmpxchg(mm: u32, va: f64, old: u64, nv: u64): u64 {
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return 0;
  page_table_check_pte_set(<u64>va, nv);
  return atomic.cmpxchg<u64>(slot, old, nv);
}
/** ptep_set_wrprotect(): clear _PAGE_RW atomically. */
export function ptep_set_wrprotect(mm: u32, va: f64): void {
  const slot = walk_ptep(mm, <u64>va);
  if (slot != 0) atomic.and<u64>(slot, ~(<u64>1 << 1));
}
/** The address of the PTE slot for `va` (0 if none): for the TypeScript baseline and tests. */
export function ptep_addr(mm: u32, va: f64): u32 {
  return walk_ptep(mm, <u64>va);
}
export function mm_pgd_addr(mm: u32): u32 {
  return tableAddr(mmOf(mm).pgd);
}

/** The pfn mapped at `va` (PMD leaves included), or TRANSLATE_FAULT | kind: one translation. */
export function translate_one(mm: u32, va: f64): u32 {
  // TranslateWalk keeps no state: no context is needed for its walk object
  return walk_page_at<TranslateWalk>(changetype<TranslateWalk>(0), tableAddr(mmOf(mm).pgd), <u64>va);
}

/**
 * follow_pfn(): the pfn a present entry at `va` maps — PROT_NONE entries included, which the
 * CPU cannot use but the kernel still counts as mapping the page — or NO_PFN.
 */
export function follow_pfn(mm: u32, va: f64): u32 {
  return walk_page_at<FollowPfnWalk>(changetype<FollowPfnWalk>(0), tableAddr(mmOf(mm).pgd), <u64>va);
}

/** follow_pfn()'s walk: no state, the hooks return the result. */
@unmanaged class FollowPfnWalk extends MmWalk {
  pte_hole(addr: u64, next: u64, depth: i32): i32 {
    return <i32>NO_PFN;
  }
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    return pmd_leaf(pmd) ? <i32>(<u32>pte_pfn(pmd) + pteIndex(addr)) : <i32>NO_PFN;
  }
  pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    return pte_present(pte) ? <i32>pte_pfn(pte) : <i32>NO_PFN;
  }
}

/** Translation result for an address with no usable mapping: TRANSLATE_FAULT | pte kind. */
export const TRANSLATE_FAULT: u32 = 0x80000000;

/**
 * Translates `n` addresses in one call: reads them as f64 from the scratch area and writes,
 * after them, one u32 each: the pfn of the 4 KiB page (PMD leaves included), or
 * TRANSLATE_FAULT | kind (PTE_KIND_*) when the CPU could not use the entry.
 * Returns n, or -EINVAL when n does not fit.
 */
export function translate_batch(ctx: u32, mm: u32, n: u32): i32 {
  if (n * 12 > hdr().scratchBytes || !mm_valid(mm)) return -EINVAL;
  const inp = ctxOf(ctx).scratch;
  const out = inp + (n << 3);
  const w = walk_of<TranslateWalk>(ctx, mm, 0, 0);
  const pgdTable = w.pgd;
  for (let i: u32 = 0; i < n; i++) {
    store<u32>(out + (i << 2), walk_page_at<TranslateWalk>(w, pgdTable, <u64>load<f64>(inp + (i << 3))));
  }
  return <i32>n;
}

/**
 * The MMU's walk of one page (pagewalk.ts's walk_page_at()): the hooks return the pfn, or
 * TRANSLATE_FAULT | the kind of the entry the CPU cannot use. No state.
 */
@unmanaged class TranslateWalk extends MmWalk {
  pte_hole(addr: u64, next: u64, depth: i32): i32 {
    return TRANSLATE_FAULT | PTE_KIND_NONE;
  }
  /** A PMD leaf the CPU can use maps the subpage; a PROT_NONE leaf or a PMD swap entry faults. */
  pmd_entry(pmdp: u32, pmd: u64, addr: u64, next: u64): i32 {
    return (pmd & (_PAGE_PRESENT | _PAGE_PSE)) == (_PAGE_PRESENT | _PAGE_PSE)
      ? <u32>pte_pfn(pmd) + pteIndex(addr) : TRANSLATE_FAULT | pte_kind(pmd, true);
  }
  // @ts-ignore: decorator
  @inline pte_entry(ptep: u32, pte: u64, addr: u64): i32 {
    return pte & _PAGE_PRESENT ? <u32>pte_pfn(pte) : TRANSLATE_FAULT | pte_kind(pte, true);
  }
}
