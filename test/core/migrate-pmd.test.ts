// The core's migration of a PMD-mapped THP (assembly/migrate.ts): set_pmd_migration_entry() with
// its refusal of a possibly pinned THP, __migrate_folio() of an order-9 folio,
// remove_migration_pmd() with RMAP_EXCLUSIVE, what handle_access() makes of the entry
// (pmd_migration_entry_wait(), not a none PMD), and the split of an installed entry (rule (a)).
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { makeCore, snapshot, stateDiff, BASE, P, U, PROT_READ } from "../helpers.js";

const PROT = P | U;
const SHARE = C.MIGRATE_SHARE_ANON | C.MIGRATE_READ_EXCLUSIVE;
const pmdType = (core: Core, mm: number) => Number(BigInt.asUintN(64, core.x.pmdp_get(mm, BASE)) >> 59n);

/** A fresh writable (or read-only) exclusive THP at BASE, holding the isolation reference a migration takes. */
function thp(core: Core, writable = true): { mm: number; head: number } {
  const mm = core.mmAlloc();
  const r = core.x.do_huge_pmd_anonymous_page(core.ctx, mm, BASE, 1, BASE / 4096, PROT, C.HUGE_ALLOC | (writable ? C.HUGE_VM_WRITE : 0), 0);
  expect(r).toBe(C.HUGE_MAPPED);
  const head = core.x.follow_pfn(mm, BASE) >>> 0;
  core.x.folio_ref_add(head, 1); // folio_isolate_lru()
  return { mm, head };
}

describe("set_pmd_migration_entry()", () => {
  it("a writable PMD becomes one writable PMD migration entry: the PMD mapping and its reference go, MM_ANONPAGES stays", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    expect(core.x.set_pmd_migration_entry(mm, BASE + 5 * 4096, head, SHARE)).toBe(C.MIGRATION_ENTRY_WRITE);
    expect(core.x.huge_pmd_at(mm, BASE)).toBe(2);
    expect(pmdType(core, mm)).toBe(C.SWP_MIGRATION_WRITE);
    expect([core.x.folio_entire_mapcount(head), core.x.folio_mapcount(head), core.x.folio_ref_count(head)]).toEqual([0, 0, 1]);
    expect(core.x.PageAnonExclusive(head)).toBe(0);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(512);
    // the entry names the head for any address under it (pmd_migration_entry_wait())
    expect(core.x.migration_entry_get(core.ctx, mm, BASE + 300 * 4096) >>> 0).toBe(head);
  });

  it("a read-only exclusive THP gets a readable-exclusive entry, or readable without MIGRATE_READ_EXCLUSIVE", () => {
    for (const [flags, want] of [[SHARE, C.MIGRATION_ENTRY_READ_EXCLUSIVE], [C.MIGRATE_SHARE_ANON, C.MIGRATION_ENTRY_READ]] as const) {
      const core = makeCore({ frames: 4096 });
      const { mm, head } = thp(core, false);
      expect(core.x.set_pmd_migration_entry(mm, BASE, head, flags)).toBe(want);
      expect(pmdType(core, mm)).toBe(want === C.MIGRATION_ENTRY_READ ? C.SWP_MIGRATION_READ : C.SWP_MIGRATION_READ_EXCLUSIVE);
    }
  });

  it("a possibly pinned exclusive THP is refused with MIGRATE_SHARE_ANON: -EBUSY, nothing changed", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    core.x.try_grab_folio(head, 1, C.FOLL_PIN);
    expect(core.x.folio_maybe_dma_pinned(head)).toBe(1);
    const before = snapshot(core);
    expect(core.x.set_pmd_migration_entry(mm, BASE, head, SHARE)).toBe(-C.EBUSY);
    expect(stateDiff(before, snapshot(core))).toBeNull();
  });

  it("refuses what is no PMD-mapped anon THP: -ENOENT (another folio, a PTE table), -EINVAL (order 0)", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    const other = core.allocPages(9);
    expect(core.x.set_pmd_migration_entry(mm, BASE, other, SHARE)).toBe(-C.EINVAL); // not anon
    expect(core.x.set_pmd_migration_entry(mm, BASE + 2 ** 21, head, SHARE)).toBe(-C.ENOENT);
    expect(core.x.set_pmd_migration_entry(mm, BASE, head + 1, SHARE)).toBe(-C.EINVAL); // a tail
  });
});

describe("__migrate_folio() and remove_migration_pmd() of a THP", () => {
  it("copies all 512 pages, then maps the new THP by a writable exclusive PMD; the old one is freed with the last reference", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    core.x.handle_access(core.ctx, mm, BASE + 7 * 4096, 1, 77, 0, 0, 0, 0, 0);
    expect(core.x.set_pmd_migration_entry(mm, BASE, head, SHARE)).toBe(C.MIGRATION_ENTRY_WRITE);
    const dst = core.x.migrate_folio_alloc_order(core.ctx, 9);
    expect(dst).toBeGreaterThan(0);
    expect(core.x.migrate_folio_move(head, dst)).toBe(0);
    expect(core.x.remove_migration_pmd(mm, BASE, head, dst, PROT)).toBe(3);
    expect(core.x.follow_pfn(mm, BASE) >>> 0).toBe(dst);
    const pmd = core.x.pmdp_get(mm, BASE);
    expect([core.x.pmd_leaf(pmd), core.x.pte_write(pmd), core.x.pte_young(pmd), core.x.pte_dirty(pmd)]).toEqual([1, 1, 1, 1]);
    expect([core.x.folio_entire_mapcount(dst), core.x.folio_ref_count(dst), core.x.PageAnonExclusive(dst)]).toEqual([1, 2, 1]);
    expect(core.x.handle_access(core.ctx, mm, BASE + 7 * 4096, 0, 0, 0, 0, 0, 0, 0)).toBe(77);
    core.x.folio_put_refs(head, 1);
    expect(core.x.page_test_flag(head, C.PG_buddy)).toBe(1);
  });

  it("__migrate_folio() refuses a THP with a reference it does not own (-EAGAIN) and folios of different orders (-EINVAL)", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    core.x.set_pmd_migration_entry(mm, BASE, head, 0);
    const small = core.x.migrate_folio_alloc(core.ctx);
    expect(core.x.migrate_folio_move(head, small)).toBe(-C.EINVAL);
    const dst = core.x.migrate_folio_alloc_order(core.ctx, 9);
    core.x.folio_ref_add(head, 1); // a GUP reference taken before the unmap
    expect(core.x.migrate_folio_move(head, dst)).toBe(-C.EAGAIN);
    // undo: the source is mapped back, exclusive from the writable entry
    expect(core.x.remove_migration_pmd(mm, BASE, head, head, PROT)).toBe(3);
    expect(core.x.follow_pfn(mm, BASE) >>> 0).toBe(head);
    expect(core.x.remove_migration_pmd(mm, BASE, head, head, PROT)).toBe(0); // no entry any more
  });
});

describe("a PMD migration entry elsewhere in the core", () => {
  it("handle_access() reports ACCESS_MIGRATION for it, even where it would fault a THP or a page into a none PMD", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core);
    core.x.set_pmd_migration_entry(mm, BASE, head, SHARE);
    const before = snapshot(core);
    for (const fast of [0, C.FAST_ANON, C.FAST_ANON | C.FAST_THP_PMD]) {
      expect(core.x.handle_access(core.ctx, mm, BASE + 9 * 4096, 1, 1, 0, fast, 1, 9, PROT)).toBe(C.ACCESS_MIGRATION);
    }
    expect(stateDiff(before, snapshot(core))).toBeNull();
  });

  it("split_huge_pmd() of an installed entry gives 512 PTE entries of its kind (rule (a)), restored page by page", () => {
    const core = makeCore({ frames: 4096 });
    const { mm, head } = thp(core, false);
    core.x.set_pmd_migration_entry(mm, BASE, head, SHARE);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT_READ, 0)).toBe(C.SPLIT_DONE);
    expect(Number(BigInt.asUintN(64, core.x.ptep_get(mm, BASE + 511 * 4096)) >> 59n)).toBe(C.SWP_MIGRATION_READ_EXCLUSIVE);
    for (let i = 0; i < 512; i++) expect(core.x.remove_migration_pte(mm, BASE + i * 4096, head + i, head + i, PROT_READ)).toBe(3);
    expect([core.x.folio_mapcount(head), core.x.folio_entire_mapcount(head), core.x.folio_ref_count(head)]).toEqual([512, 0, 513]);
    expect(core.x.PageAnonExclusive(head + 100)).toBe(1);
  });
});
