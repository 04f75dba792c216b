// The core's migration steps (assembly/migrate.ts): try_to_migrate_one()'s entries and its
// refusal of a possibly pinned page, __migrate_folio()'s reference check, remove_migration_pte()
// and RMAP_EXCLUSIVE, and what fork, mprotect, clear_refs and zap do with the entries.
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { makeCore, snapshot, stateDiff, populate, pfnAt, pteAt, BASE, PROT_READ, A, D } from "../helpers.js";

const SD = 2 ** C._PAGE_BIT_SOFT_DIRTY;
const type = (core: Core, mm: number, va = BASE) => Number(BigInt.asUintN(64, core.x.ptep_get(mm, va)) >> 59n);
const SHARE = C.MIGRATE_SHARE_ANON | C.MIGRATE_READ_EXCLUSIVE;

/** One exclusive, writable, young and dirty anon page at BASE, with the isolation reference a migration holds. */
function page(core: Core): { mm: number; pfn: number } {
  const mm = core.mmAlloc();
  populate(core, mm, BASE, 1);
  const pfn = pfnAt(core, mm, BASE);
  core.x.folio_ref_add(pfn, 1); // folio_isolate_lru()
  return { mm, pfn };
}

describe("try_to_migrate_one()", () => {
  it("a writable PTE becomes a writable entry; the map count and the PTE's reference go, MM_ANONPAGES stays", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, SHARE)).toBe(C.MIGRATION_ENTRY_WRITE);
    expect(type(core, mm)).toBe(C.SWP_MIGRATION_WRITE);
    expect(core.x.folio_mapcount(pfn)).toBe(0);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(1);
    expect(core.ops.migrationEntry(mm, BASE)).toEqual({ pfn, type: "write", softDirty: true, uffdWp: false, young: true, dirty: true });
  });

  it("a R/O exclusive PTE: readable-exclusive with MIGRATE_READ_EXCLUSIVE, readable without; a R/O shared one readable", () => {
    for (const [flags, want] of [[SHARE, C.SWP_MIGRATION_READ_EXCLUSIVE], [C.MIGRATE_SHARE_ANON, C.SWP_MIGRATION_READ], [0, C.SWP_MIGRATION_READ]] as const) {
      const core = makeCore();
      const { mm, pfn } = page(core);
      core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, 0);
      core.x.ptep_set(core.ctx, mm, BASE, pteAt(core, mm, BASE) & ~BigInt(A | D | SD));
      expect(core.x.try_to_migrate_one(mm, BASE, pfn, flags)).toBe(want === C.SWP_MIGRATION_READ_EXCLUSIVE ? C.MIGRATION_ENTRY_READ_EXCLUSIVE : C.MIGRATION_ENTRY_READ);
      expect(type(core, mm)).toBe(want);
      expect(core.ops.migrationEntry(mm, BASE)).toMatchObject({ young: false, dirty: false, softDirty: false });
    }
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.ClearPageAnonExclusive(pfn);
    core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, 0);
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, SHARE)).toBe(C.MIGRATION_ENTRY_READ);
  });

  it("keeps uffd-wp in the entry", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.ptep_set(core.ctx, mm, BASE, core.x.pte_mkuffd_wp(pteAt(core, mm, BASE)));
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    expect(core.ops.migrationEntry(mm, BASE)).toMatchObject({ type: "read-exclusive", uffdWp: true });
  });

  it("a possibly pinned exclusive page: -EBUSY and the machine exactly as it was (A1 … A4)", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.folio_ref_add(pfn, C.GUP_PIN_COUNTING_BIAS);
    core.x.ptep_set(core.ctx, mm, BASE, pteAt(core, mm, BASE) & ~BigInt(D)); // clean: folio_mark_dirty() has nothing to do
    const before = snapshot(core);
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, SHARE)).toBe(-C.EBUSY);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    // a dirty PTE marks the folio dirty before the share step, as Linux does
    core.x.ptep_set(core.ctx, mm, BASE, pteAt(core, mm, BASE) | BigInt(D));
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, SHARE)).toBe(-C.EBUSY);
    expect(core.x.page_test_flag(pfn, C.PG_dirty)).toBe(1);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    // without the share step (Linux < 5.19) the pinned page gets its entry
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, 0)).toBe(C.MIGRATION_ENTRY_WRITE);
  });

  it("-ENOENT for a PTE that maps no page; -EINVAL for a frame that is no order-0 anon folio", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    expect(core.x.try_to_migrate_one(mm, BASE + 4096, pfn, SHARE)).toBe(-C.ENOENT);
    expect(core.x.try_to_migrate_one(mm, BASE, pfn + 1, SHARE)).toBe(-C.EINVAL); // a free frame
    const thp = core.allocPages(9);
    expect(core.x.try_to_migrate_one(mm, BASE, thp, SHARE)).toBe(-C.EINVAL);
  });
});

describe("migrate_folio_move() and remove_migration_pte()", () => {
  it("moves contents, mapping, index and dirty; the writable entry maps the new page writable and exclusive", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.page_tag_set(pfn, 77, 1);
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    const dst = core.ops.migrateFolioAlloc()!;
    expect(core.x.migrate_folio_move(pfn, dst)).toBe(0);
    expect([core.x.page_tag_lo(dst), core.x.page_tag_hi(dst)]).toEqual([77, 1]);
    expect(core.x.folio_mapping_raw(dst)).toBe(core.x.folio_mapping_raw(pfn));
    expect(core.x.folio_index(dst)).toBe(core.x.folio_index(pfn));
    expect(core.x.page_test_flag(dst, C.PG_dirty)).toBe(1);
    expect(core.x.page_test_flag(pfn, C.PG_dirty)).toBe(0);
    expect(core.x.remove_migration_pte(mm, BASE, pfn, dst, PROT_READ)).toBe(3);
    const pte = pteAt(core, mm, BASE);
    expect(pfnAt(core, mm, BASE)).toBe(dst);
    expect([core.x.pte_write(pte), core.x.pte_young(pte), core.x.pte_dirty(pte), core.x.pte_soft_dirty(pte)]).toEqual([1, 1, 1, 1]);
    expect(core.x.PageAnonExclusive(dst)).toBe(1);
    expect([core.x.folio_mapcount(dst), core.x.folio_ref_count(dst)]).toEqual([1, 2]);
    // a second call finds no entry of pfn there
    expect(core.x.remove_migration_pte(mm, BASE, pfn, dst, PROT_READ)).toBe(0);
  });

  it("__migrate_folio() refuses any reference the migration does not own: -EAGAIN, nothing changed", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    const dst = core.ops.migrateFolioAlloc()!;
    core.x.folio_ref_add(pfn, 1); // a FOLL_GET reference, another isolation …
    const before = snapshot(core);
    expect(core.x.migrate_folio_move(pfn, dst)).toBe(-C.EAGAIN);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    // the entry maps the old page back, exclusive as the entry says
    expect(core.x.remove_migration_pte(mm, BASE, pfn, pfn, PROT_READ)).toBe(3);
    expect(pfnAt(core, mm, BASE)).toBe(pfn);
  });

  it("a swap-cache folio: the slot names the new frame, whose reference the cache holds", () => {
    const core = makeCore({ swapSlots: 64 });
    const { mm, pfn } = page(core);
    const slot = core.x.add_to_swap(pfn);
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    const dst = core.ops.migrateFolioAlloc()!;
    expect(core.x.migrate_folio_move(pfn, dst)).toBe(0);
    expect(core.x.swap_cache_pfn(slot) >>> 0).toBe(dst);
    expect(core.x.folio_swap_slot(dst)).toBe(slot);
    expect(core.x.page_test_flag(pfn, C.PG_swapcache)).toBe(0);
    expect([core.x.folio_ref_count(pfn), core.x.folio_ref_count(dst)]).toEqual([1, 2]);
  });

  it("a readable entry maps the page back R/O and not exclusive, keeping uffd-wp", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.ptep_set(core.ctx, mm, BASE, core.x.pte_mkuffd_wp(pteAt(core, mm, BASE)));
    core.x.try_to_migrate_one(mm, BASE, pfn, C.MIGRATE_SHARE_ANON);
    expect(core.x.remove_migration_pte(mm, BASE, pfn, pfn, PROT_READ)).toBe(1);
    const pte = pteAt(core, mm, BASE);
    expect([core.x.pte_write(pte), core.x.pte_uffd_wp(pte)]).toEqual([0, 1]);
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
  });
});

describe("migration entries in fork, mprotect, clear_refs and zap (Linux 6.12)", () => {
  it("copy_nonpresent_pte(): writable and readable-exclusive become readable in parent and child, A/D bits kept; RSS counted", () => {
    for (const ro of [false, true]) {
      const core = makeCore();
      const { mm, pfn } = page(core);
      if (ro) core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, 0);
      core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
      const child = core.mmAlloc();
      const records = core.copyPageRange(child, mm, BASE, BASE + 4096, C.COPY_COW);
      expect(records.map((r) => r.kind)).toEqual([C.REC_MIGRATION]);
      for (const m of [mm, child]) {
        expect(core.ops.migrationEntry(m, BASE)).toEqual({ pfn, type: "read", softDirty: true, uffdWp: false, young: true, dirty: true });
      }
      expect(core.x.get_mm_counter(child, C.MM_ANONPAGES)).toBe(1);
      expect(core.x.folio_ref_count(pfn)).toBe(1); // entries hold no reference
    }
  });

  it("change_pte_range(): writable → readable-exclusive; with CP_MIGRATION_READ_ONLY (before 5.19) readable; clear_refs keeps it writable", () => {
    const want = [[0, "read-exclusive"], [C.CP_MIGRATION_READ_ONLY, "read"], [C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES, "write"]] as const;
    for (const [cp, type] of want) {
      const core = makeCore();
      const { mm, pfn } = page(core);
      core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
      core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, cp);
      expect(core.ops.migrationEntry(mm, BASE)).toMatchObject({ pfn, type, young: true, dirty: true, softDirty: (cp & C.MM_CP_CLEAR_SOFT_DIRTY) === 0 });
    }
  });

  it("zap_page_range(): the entry goes, MM_ANONPAGES drops, the folio is untouched", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    core.zapPageRange(mm, BASE, BASE + 4096, 0);
    expect(core.x.ptep_get(mm, BASE)).toBe(0n);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(0);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
  });
});

describe("seed 000 II: migration against GUP-fast", () => {
  const PIN = C.FOLL_PIN;

  it("GUP-fast pins first (B1–B3): try_to_migrate_one() sees the pin at A2, restores the PTE; B4 finds it unchanged, the pin stands", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK);
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, SHARE)).toBe(-C.EBUSY);
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_OK);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    expect(pfnAt(core, mm, BASE)).toBe(pfn);
  });

  it("the migration entry first: GUP-fast finds no present PTE and falls back to the slow path", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    core.x.try_to_migrate_one(mm, BASE, pfn, SHARE);
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_NOT_PRESENT);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
  });

  it("without the clear-then-check order, the five steps of the seed lose PageAnonExclusive of a pinned page", () => {
    const core = makeCore();
    const { mm, pfn } = page(core);
    // 1. the pins are checked before the PTE is cleared: none yet
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(0);
    // 2. GUP-fast pins the page meanwhile: the PTE has not changed, B4 cannot notice
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK);
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_OK);
    //    … and the migration entry goes in with no second look (no share step)
    expect(core.x.try_to_migrate_one(mm, BASE, pfn, C.MIGRATE_READ_EXCLUSIVE)).toBe(C.MIGRATION_ENTRY_WRITE);
    // 3. fork() turns the writable entry readable in parent and child
    const child = core.mmAlloc();
    core.copyPageRange(child, mm, BASE, BASE + 4096, C.COPY_COW);
    // 4. the migration fails on the pin's references
    const dst = core.ops.migrateFolioAlloc()!;
    expect(core.x.migrate_folio_move(pfn, dst)).toBe(-C.EAGAIN);
    // 5. the entries are restored: readable, so not exclusive — a pinned page possibly shared
    for (const m of [mm, child]) expect(core.x.remove_migration_pte(m, BASE, pfn, pfn, PROT_READ)).toBe(1);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(1);
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
  });
});
