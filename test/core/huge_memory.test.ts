// The core of PMD-mapped THP (assembly/huge_memory.ts): do_huge_pmd_anonymous_page() with its
// deposited table, and __split_huge_pmd_locked() with seed 000 I.6's three rules, counter by
// counter.
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { makeCore, snapshot, stateDiff, BASE, P, U, PROT_READ } from "../helpers.js";

const HP = 2 ** 21;
const PROT = P | U;
const UW = 2 ** C._PAGE_BIT_UFFD_WP;

/** A fresh THP mapped by a write fault at BASE: its head. */
function faultThp(core: Core, mm: number, writable = true): number {
  const r = core.x.do_huge_pmd_anonymous_page(core.ctx, mm, BASE + 7 * 4096, 1, BASE / 4096, PROT, C.HUGE_ALLOC | (writable ? C.HUGE_VM_WRITE : 0), 0);
  expect(r).toBe(C.HUGE_MAPPED);
  return core.x.follow_pfn(mm, BASE) >>> 0;
}

const ptes = (core: Core, mm: number) => Array.from({ length: 512 }, (_, i) => core.x.ptep_get(mm, BASE + i * 4096));
const kinds = (core: Core, mm: number) => new Set(ptes(core, mm).map((e) => core.x.pte_kind(e, 1)));
/** The freeze of Linux ≥ 5.19 (share first, readable-exclusive entries), as try_to_migrate() asks it. */
const FREEZE = C.SPLIT_FREEZE | C.MIGRATE_SHARE_ANON | C.MIGRATE_READ_EXCLUSIVE;
const swpTypes = (core: Core, mm: number) => new Set(ptes(core, mm).map((e) => Number(BigInt.asUintN(64, e) >> 59n)));

describe("do_huge_pmd_anonymous_page()", () => {
  it("maps a zeroed exclusive order-9 folio by one writable dirty PMD and deposits a PTE table", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const head = faultThp(core, mm);
    const pmd = core.x.pmdp_get(mm, BASE);
    expect(core.x.pmd_leaf(pmd)).toBe(1);
    expect([core.x.pte_write(pmd), core.x.pte_dirty(pmd), core.x.pte_young(pmd)]).toEqual([1, 1, 1]);
    expect(core.x.folio_order(head)).toBe(9);
    expect(core.x.folio_entire_mapcount(head)).toBe(1);
    expect(core.x.folio_mapcount(head)).toBe(1);
    expect(core.x.folio_nr_pages_mapped(head)).toBe(C.ENTIRELY_MAPPED);
    expect(core.x.folio_ref_count(head)).toBe(1);
    expect(core.x.PageAnonExclusive(head)).toBe(1);
    expect(core.x.PageAnonExclusive(head + 1)).toBe(0); // the head's bit stands for the PMD
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(512);
    // PUD and PMD tables, and the deposited one
    expect(core.x.mm_nr_ptes(mm)).toBe(3);
    expect(core.x.mm_deposited_tables(mm)).toBe(1);
    expect(core.x.mm_count_tables(mm)).toBe(3);
  });

  it("a PMD that is not none is left alone; no free 2 MiB is HUGE_NO_FOLIO with nothing changed", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    faultThp(core, mm);
    expect(core.x.do_huge_pmd_anonymous_page(core.ctx, mm, BASE, 1, 0, PROT, C.HUGE_ALLOC, 0)).toBe(C.HUGE_PMD_BUSY);
    const small = makeCore({ frames: 600 });
    const mm2 = small.mmAlloc();
    small.allocPages(0); // no order-9 block stays whole
    const before = snapshot(small);
    expect(small.x.do_huge_pmd_anonymous_page(small.ctx, mm2, BASE, 1, 0, PROT, C.HUGE_ALLOC, 0)).toBe(C.HUGE_NO_FOLIO);
    // the failed allocation counts PGALLOC_FAIL; nothing else moved
    const diff = stateDiff(before, snapshot(small));
    expect(small.vmstat().PGALLOC_FAIL).toBe(1);
    expect(diff === null || /vmstat/.test(diff)).toBe(true);
  });

  it("the huge zero page: read-only, outside rmap and RSS", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const zero = core.x.huge_zero_folio_alloc(core.ctx) >>> 0;
    expect(core.x.do_huge_pmd_anonymous_page(core.ctx, mm, BASE, 1, 0, PROT, C.HUGE_VM_WRITE, zero)).toBe(C.HUGE_MAPPED);
    const pmd = core.x.pmdp_get(mm, BASE);
    expect(core.x.pte_write(pmd)).toBe(0);
    expect(core.x.folio_mapcount(zero)).toBe(0);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(0);
    expect(core.x.huge_pmd_fault_info(core.ctx, mm, BASE)).toBe(C.WP_ZERO);
  });
});

describe("__split_huge_pmd_locked() (seed 000 I.6)", () => {
  it("(b) no freeze: 512 PTEs, each subpage PageAnonExclusive as the head was; counts move from the PMD to the PTEs", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const head = faultThp(core, mm);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE + 100 * 4096, PROT, 0)).toBe(C.SPLIT_DONE);
    expect(core.x.folio_entire_mapcount(head)).toBe(0);
    expect(core.x.folio_mapcount(head)).toBe(512);
    expect(core.x.folio_nr_pages_mapped(head)).toBe(512);
    expect(core.x.folio_ref_count(head)).toBe(512);
    for (const i of [0, 1, 255, 511]) {
      expect(core.x.PageAnonExclusive(head + i)).toBe(1);
      expect(core.x.page_mapcount_raw(head + i)).toBe(0);
      const pte = core.x.ptep_get(mm, BASE + i * 4096);
      expect(Number(core.x.pte_pfn(pte))).toBe(head + i);
      expect([core.x.pte_write(pte), core.x.pte_dirty(pte), core.x.pte_young(pte)]).toEqual([1, 1, 1]);
    }
    // the deposited table became the PTE table: nothing allocated, nothing left deposited
    expect(core.x.mm_deposited_tables(mm)).toBe(0);
    expect(core.x.mm_nr_ptes(mm)).toBe(3);
    expect(core.x.mm_count_tables(mm)).toBe(3);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(512);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, 0)).toBe(-22); // nothing huge left
  });

  it("(b) a shared THP (fork) splits into read-only PTEs of pages that are not exclusive", () => {
    const core = makeCore({ frames: 2048 });
    const parent = core.mmAlloc();
    const head = faultThp(core, parent);
    const child = core.mmAlloc();
    expect(core.copyPageRange(child, parent, BASE, BASE + HP, C.COPY_COW)).toEqual([]);
    // copy_huge_pmd() deposited a table for the child's PMD too
    expect(core.x.mm_deposited_tables(child)).toBe(1);
    expect(core.x.split_huge_pmd(core.ctx, child, BASE, PROT, 0)).toBe(C.SPLIT_DONE);
    expect(core.x.PageAnonExclusive(head + 3)).toBe(0);
    expect(core.x.pte_write(core.x.ptep_get(child, BASE + 3 * 4096))).toBe(0);
    expect(core.x.folio_entire_mapcount(head)).toBe(1);
    expect(core.x.folio_mapcount(head)).toBe(1 + 512);
    expect(core.x.folio_ref_count(head)).toBe(1 + 512);
  });

  it("soft-dirty (set with dirty) and uffd-wp go to every PTE of a read-only THP", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    faultThp(core, mm, false);
    const pmdp = core.x.pmdp_get(mm, BASE);
    expect(core.x.pmdp_set(core.ctx, mm, BASE, pmdp | BigInt(UW))).toBe(0);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, 0)).toBe(C.SPLIT_DONE);
    for (const e of ptes(core, mm)) {
      expect([core.x.pte_soft_dirty(e), core.x.pte_uffd_wp(e), core.x.pte_write(e)]).toEqual([1, 1, 0]);
    }
  });

  it("(c) freeze of an exclusive THP: shared first, then 512 readable-exclusive migration entries; the PMD's reference goes", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const head = faultThp(core, mm, false);
    core.x.folio_ref_add(head, 1); // migration's own reference (isolation)
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, FREEZE)).toBe(C.SPLIT_FROZEN);
    expect(kinds(core, mm)).toEqual(new Set([C.PTE_KIND_MIGRATION]));
    expect(swpTypes(core, mm)).toEqual(new Set([C.SWP_MIGRATION_READ_EXCLUSIVE]));
    // the PFN, and above it the PMD's young and dirty bits (make_migration_entry_young() / _dirty())
    const offset = BigInt(core.x.swp_offset(core.x.ptep_get(mm, BASE + 9 * 4096)));
    expect(Number(offset & ((1n << BigInt(C.PTE_PFN_BITS)) - 1n))).toBe(head + 9);
    expect(offset >> BigInt(C.PTE_PFN_BITS)).toBe(3n);
    expect(core.x.PageAnonExclusive(head)).toBe(0);
    expect(core.x.folio_mapcount(head)).toBe(0);
    expect(core.x.folio_ref_count(head)).toBe(1);
  });

  it("(c) freeze of a writable THP gives writable migration entries; of a pinned exclusive one, a split without freezing", () => {
    const core = makeCore({ frames: 4096 });
    const mm = core.mmAlloc();
    faultThp(core, mm, true);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, FREEZE)).toBe(C.SPLIT_FROZEN);
    expect(swpTypes(core, mm)).toEqual(new Set([C.SWP_MIGRATION_WRITE]));

    const mm2 = core.mmAlloc();
    const head = faultThp(core, mm2, false);
    expect(core.gupFast(mm2, BASE, 1, C.FOLL_PIN).pfns).toEqual([head]);
    expect(core.x.split_huge_pmd(core.ctx, mm2, BASE, PROT, FREEZE)).toBe(C.SPLIT_DONE);
    expect(kinds(core, mm2)).toEqual(new Set([C.PTE_KIND_PRESENT]));
    expect(core.x.PageAnonExclusive(head + 200)).toBe(1); // folio_try_share_anon_rmap_pmd() failed: still exclusive
    expect(core.x.folio_pincount(head)).toBe(1);
  });

  it("(c) before 5.19 the freeze shares nothing and refuses nothing: a pinned THP becomes read entries too", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const head = faultThp(core, mm, false);
    expect(core.gupFast(mm, BASE, 1, C.FOLL_PIN).pfns).toEqual([head]);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, C.SPLIT_FREEZE)).toBe(C.SPLIT_FROZEN);
    expect(swpTypes(core, mm)).toEqual(new Set([C.SWP_MIGRATION_READ]));
    expect(core.x.PageAnonExclusive(head)).toBe(0);
    expect([core.x.folio_mapcount(head), core.x.folio_ref_count(head), core.x.folio_pincount(head)]).toEqual([0, 1, 1]);
  });

  it("(a) a PMD migration entry becomes 512 PTE migration entries of the same kind, nothing counted twice", () => {
    for (const type of [C.SWP_MIGRATION_READ, C.SWP_MIGRATION_READ_EXCLUSIVE, C.SWP_MIGRATION_WRITE]) {
      const core = makeCore({ frames: 2048 });
      const mm = core.mmAlloc();
      const head = core.allocPages(9);
      const entry = BigInt.asIntN(64, (BigInt(type) << 59n) | (BigInt(head) << 9n) | BigInt(2 ** C._PAGE_BIT_SWP_SOFT_DIRTY));
      expect(core.x.pmdp_set(core.ctx, mm, BASE, entry)).toBe(0);
      expect(core.x.huge_pmd_at(mm, BASE)).toBe(2);
      const refs = core.x.folio_ref_count(head);
      expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, 0)).toBe(C.SPLIT_DONE);
      expect(swpTypes(core, mm)).toEqual(new Set([type]));
      expect(new Set(ptes(core, mm).map((e) => core.x.pte_swp_soft_dirty(e)))).toEqual(new Set([1]));
      expect(Number(core.x.swp_offset(core.x.ptep_get(mm, BASE + 511 * 4096)))).toBe(head + 511);
      expect(core.x.folio_ref_count(head)).toBe(refs);
      expect(core.x.folio_mapcount(head)).toBe(0);
      // no table was deposited (installed by hand): the split took one from the pool
      expect(core.x.mm_nr_ptes(mm)).toBe(core.x.mm_count_tables(mm));
    }
  });

  it("the huge zero PMD becomes 512 PTEs of the small zero page, special and read-only", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const zero = core.x.huge_zero_folio_alloc(core.ctx) >>> 0;
    core.x.do_huge_pmd_anonymous_page(core.ctx, mm, BASE, 1, 0, PROT_READ, 0, zero);
    expect(core.x.split_huge_pmd(core.ctx, mm, BASE, PROT, 0)).toBe(C.SPLIT_DONE);
    for (const e of ptes(core, mm)) {
      expect([Number(core.x.pte_pfn(e)), core.x.pte_special(e), core.x.pte_write(e)]).toEqual([0, 1, 0]);
    }
    expect(core.x.folio_ref_count(zero)).toBe(1);
  });

  it("zap of a whole THP frees the folio and its deposited table", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const head = faultThp(core, mm);
    expect(core.zapPageRange(mm, BASE, BASE + HP, C.ZAP_RECORD).map((r) => [r.kind, r.pfn, (r.aux & C.ZAPPED_FREED) !== 0])).toEqual([[C.REC_ZAP_PMD, head, true]]);
    expect(core.x.mm_deposited_tables(mm)).toBe(0);
    expect(core.x.mm_nr_ptes(mm)).toBe(2);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(0);
  });
});
