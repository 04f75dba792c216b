// Range operations: fork copy, zap, change_protection and populate, one call per range.
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { makeCore, snapshot, stateDiff, populate, pfnAt, pteAt, BASE, GB, P, U, W, A, D, PROT_READ, PROT_SHARED_RW } from "../helpers.js";

const n = (v: bigint) => v;
const isWrite = (core: Core, pte: bigint) => core.x.pte_write(pte) === 1;
const COW = C.COPY_COW;

function forkRange(core: Core, src: number, start: number, pages: number, flags: number = COW) {
  const dst = core.mmAlloc();
  const records = core.copyPageRange(dst, src, start, start + pages * 4096, flags);
  return { dst, records };
}

describe("copy_page_range (fork)", () => {
  it("shares every anon page: write-protected both sides, exclusive cleared, counts doubled", () => {
    const core = makeCore();
    const parent = core.mmAlloc();
    populate(core, parent, BASE, 600); // crosses a PTE table boundary
    const pfn = pfnAt(core, parent, BASE + 5 * 4096);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    expect(isWrite(core, pteAt(core, parent, BASE + 5 * 4096))).toBe(true);

    const { dst, records } = forkRange(core, parent, BASE, 600);
    expect(records).toEqual([]);
    expect(pfnAt(core, dst, BASE + 5 * 4096)).toBe(pfn);
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
    expect(core.x.folio_mapcount(pfn)).toBe(2);
    expect(core.x.folio_ref_count(pfn)).toBe(2);
    const pp = pteAt(core, parent, BASE + 5 * 4096);
    const cp = pteAt(core, dst, BASE + 5 * 4096);
    expect(isWrite(core, pp)).toBe(false);
    expect(isWrite(core, cp)).toBe(false);
    expect(core.x.pte_young(cp)).toBe(0); // pte_mkold in the child
    expect(core.x.pte_dirty(cp)).toBe(1); // private: dirty stays
    expect(core.x.get_mm_counter(dst, C.MM_ANONPAGES)).toBe(600);
    expect(core.x.mm_nr_ptes(dst)).toBe(4); // PUD, PMD, 2 PTE tables
    expect(core.vmstat().FORK_PTES_SHARED).toBe(600);
    // fork held the parent's write_protect_seq across the copy and released it
    expect(core.x.mm_write_protect_seq(parent)).toBe(2);
  });

  it("a shared mapping keeps write permission; the child's copy starts clean", () => {
    // MAP_SHARED memory is shmem: an anon page is never mapped by a VM_SHARED VMA (and would
    // trip page_table_check, mapped writable twice)
    const core = makeCore();
    const parent = core.mmAlloc();
    const pfns = [0, 1].map((i) => {
      const pfn = core.allocPages(0);
      core.x.folio_set_mapping(pfn, 5, i);
      core.x.page_set_flag(pfn, C.PG_swapbacked);
      expect(core.x.map_file_pte(core.ctx, parent, BASE + i * 4096, pfn, PROT_SHARED_RW, 1)).toBe(0);
      return pfn;
    });
    const { dst } = forkRange(core, parent, BASE, 2, C.COPY_SHARED);
    expect(isWrite(core, pteAt(core, parent, BASE))).toBe(true);
    const cp = pteAt(core, dst, BASE);
    expect(isWrite(core, cp)).toBe(true);
    expect(core.x.pte_dirty(cp)).toBe(0);
    expect(core.x.pte_dirty(pteAt(core, parent, BASE))).toBe(1);
    expect(pfnAt(core, dst, BASE + 4096)).toBe(pfns[1]);
    expect(core.x.folio_mapcount(pfns[0]!)).toBe(2);
    expect(core.x.folio_ref_count(pfns[0]!)).toBe(3); // the page cache's and one per mapping
    expect(core.x.get_mm_counter(dst, C.MM_SHMEMPAGES)).toBe(2);
  });

  it("the zero page is copied without references", () => {
    const core = makeCore();
    const parent = core.mmAlloc();
    expect(core.x.do_anonymous_pages(core.ctx, parent, BASE, BASE + 3 * 4096, 1, 0, PROT_READ, 0)).toBe(3);
    const zeroRefs = core.x.folio_ref_count(0);
    const { dst } = forkRange(core, parent, BASE, 3);
    expect(pfnAt(core, dst, BASE + 4096)).toBe(0);
    expect(core.x.folio_ref_count(0)).toBe(zeroRefs);
    expect(core.x.get_mm_counter(dst, C.MM_ANONPAGES)).toBe(0);
  });

  it("hands back possibly pinned pages, as each kernel generation decides", () => {
    const core = makeCore();
    const parent = core.mmAlloc();
    populate(core, parent, BASE, 3);
    const [p0, p1] = [pfnAt(core, parent, BASE), pfnAt(core, parent, BASE + 4096)];
    const got = core.gupFast(parent, BASE, 1, C.FOLL_PIN | C.FOLL_LONGTERM); // pins p0, sets MMF_HAS_PINNED
    expect(got.pfns).toEqual([p0]);
    core.x.ClearPageAnonExclusive(p1);
    core.x.try_grab_folio(p1, 1, C.FOLL_PIN); // a pinned page that is not exclusive

    // Linux <= 5.8: no early copy at all
    const old = forkRange(core, parent, BASE, 3);
    expect(old.records).toEqual([]);
    core.zapPageRange(old.dst, BASE, BASE + 3 * 4096);
    // zap of the child does not touch the parent's state; re-establish parent exclusivity for p0
    core.x.SetPageAnonExclusive(p0);

    // Linux 5.9-5.18: every possibly pinned anon page
    const any = forkRange(core, parent, BASE, 3, COW | C.COPY_DEFER_PINNED_ANY);
    expect(any.records.map((r) => [r.kind, r.address, r.pfn])).toEqual([
      [C.REC_FORK_PINNED, BASE, p0], [C.REC_FORK_PINNED, BASE + 4096, p1],
    ]);
    expect(core.x.ptep_get(any.dst, BASE)).toBe(0n); // left for the strategy
    core.zapPageRange(any.dst, BASE, BASE + 3 * 4096);

    // Linux >= 5.19: only exclusive ones (a shared page cannot be pinned reliably anyway)
    const pteBefore = pteAt(core, parent, BASE);
    const ae = forkRange(core, parent, BASE, 3, COW | C.COPY_DEFER_PINNED_EXCLUSIVE);
    expect(ae.records.map((r) => [r.kind, r.pfn])).toEqual([[C.REC_FORK_PINNED, p0]]);
    expect(core.x.PageAnonExclusive(p0)).toBe(1);
    expect(pteAt(core, parent, BASE)).toBe(pteBefore); // untouched, left to the strategy
  });

  it("the strategy's answer: copy into a new page, or share after all", () => {
    const core = makeCore({ dataBytes: 16 });
    const parent = core.mmAlloc();
    populate(core, parent, BASE, 2);
    const [p0, p1] = [pfnAt(core, parent, BASE), pfnAt(core, parent, BASE + 4096)];
    core.setTag(p0, 0xabc);
    core.data(p0)[3] = 42;
    core.gupFast(parent, BASE, 2, C.FOLL_PIN);
    const { dst, records } = forkRange(core, parent, BASE, 2, COW | C.COPY_DEFER_PINNED_EXCLUSIVE);
    expect(records).toHaveLength(2);
    const copy = core.allocPages(0);
    expect(core.x.fork_copy_deferred_pte(core.ctx, dst, parent, BASE, COW | C.COPY_VM_WRITE, copy, 9, 77)).toBe(0);
    expect(core.x.fork_copy_deferred_pte(core.ctx, dst, parent, BASE + 4096, COW, C.NO_PFN, 0, 0)).toBe(0);
    // copied: the child has its own exclusive, writable page with the same contents
    expect(pfnAt(core, dst, BASE)).toBe(copy);
    expect(core.tag(copy)).toBe(0xabc);
    expect(core.data(copy)[3]).toBe(42);
    expect(core.x.PageAnonExclusive(copy)).toBe(1);
    expect(core.x.folio_mapping_id(copy)).toBe(9);
    expect(isWrite(core, pteAt(core, dst, BASE))).toBe(true);
    // the parent keeps its pinned page, still exclusive and writable
    expect(core.x.PageAnonExclusive(p0)).toBe(1);
    expect(isWrite(core, pteAt(core, parent, BASE))).toBe(true);
    // shared after all: both map p1 read-only
    expect(pfnAt(core, dst, BASE + 4096)).toBe(p1);
    expect(core.x.folio_mapcount(p1)).toBe(2);
    expect(isWrite(core, pteAt(core, parent, BASE + 4096))).toBe(false);
    expect(core.x.get_mm_counter(dst, C.MM_ANONPAGES)).toBe(2);
  });

  it("swap entries are duplicated and lose SWP_EXCLUSIVE; markers follow the child's uffd-wp", () => {
    const core = makeCore();
    const parent = core.mmAlloc();
    const slot = core.x.get_swap_slot(C.NO_PFN) >>> 0;
    expect(core.x.swap_duplicate(slot)).toBe(0);
    const swp = BigInt.asUintN(64, core.x.pte_swp_mkexclusive(core.x.swp_entry(0, BigInt(slot))));
    core.x.ptep_set(core.ctx, parent, BASE, swp);
    core.x.add_mm_counter(parent, C.MM_SWAPENTS, 1);
    core.x.ptep_set(core.ctx, parent, BASE + 4096, BigInt.asUintN(64, core.x.make_pte_marker(C.PTE_MARKER_UFFD_WP)));
    core.x.ptep_set(core.ctx, parent, BASE + 8192, BigInt.asUintN(64, core.x.make_pte_marker(C.PTE_MARKER_GUARD)));
    const w = core.allocPages(0);
    core.x.ptep_set(core.ctx, parent, BASE + 3 * 4096, BigInt.asUintN(64, core.x.make_writable_migration_entry(BigInt(w))));

    const { dst, records } = forkRange(core, parent, BASE, 4);
    expect(records.map((r) => r.kind)).toEqual([C.REC_SWAP, C.REC_MARKER, C.REC_MARKER, C.REC_MIGRATION]);
    expect(core.x.swap_count(slot)).toBe(2);
    expect(core.x.pte_swp_exclusive(pteAt(core, parent, BASE))).toBe(0);
    expect(pteAt(core, dst, BASE)).toBe(pteAt(core, parent, BASE));
    expect(pteAt(core, dst, BASE + 4096)).toBe(0n); // uffd-wp marker dropped: child not registered
    expect(core.x.is_guard_swp_entry(pteAt(core, dst, BASE + 8192))).toBe(1);
    // a writable migration entry becomes readable on both sides
    expect(core.x.is_readable_migration_entry(pteAt(core, parent, BASE + 3 * 4096))).toBe(1);
    expect(core.x.is_readable_migration_entry(pteAt(core, dst, BASE + 3 * 4096))).toBe(1);
    expect(core.x.get_mm_counter(dst, C.MM_SWAPENTS)).toBe(1);

    const uffdChild = core.mmAlloc();
    core.copyPageRange(uffdChild, parent, BASE, BASE + 3 * 4096, COW | C.COPY_DST_UFFD_WP);
    expect(core.x.pte_marker_uffd_wp(pteAt(core, uffdChild, BASE + 4096))).toBe(1);
  });

  it("a full scratch area stops the call and the next one resumes exactly there", () => {
    const core = makeCore({ scratchBytes: 4096 }); // 256 records
    const parent = core.mmAlloc();
    const slots: number[] = [];
    for (let i = 0; i < 700; i++) {
      const slot = core.x.get_swap_slot(C.NO_PFN) >>> 0;
      core.x.swap_duplicate(slot);
      slots.push(slot);
      core.x.ptep_set(core.ctx, parent, BASE + i * 4096, BigInt.asUintN(64, core.x.swp_entry(0, BigInt(slot))));
    }
    const dst = core.mmAlloc();
    const first = core.x.copy_page_range(core.ctx, dst, parent, BASE, BASE + 700 * 4096, COW, 0, 0);
    expect(first).toBe(256);
    expect(core.x.ctx_next(core.ctx)).toBe(BASE + 256 * 4096);
    const dst2 = core.mmAlloc();
    const all = core.copyPageRange(dst2, parent, BASE, BASE + 700 * 4096, COW);
    expect(all.map((r) => r.pfn)).toEqual(slots);
    expect(all.map((r) => r.address)).toEqual(slots.map((_, i) => BASE + i * 4096));
    // the first, partial call duplicated the first 256 slots once more
    expect(core.x.swap_count(slots[0]!)).toBe(3);
    expect(core.x.swap_count(slots[699]!)).toBe(2);
  });

  it("fails with ENOMEM before changing anything when the child's tables do not fit", () => {
    const core = makeCore({ pageTables: 8 });
    const parent = core.mmAlloc(); // PGD
    populate(core, parent, BASE, 1); // PUD PMD PTE
    populate(core, parent, BASE + GB, 1); // PMD PTE -> 6 used
    const child = core.mmAlloc(); // 7 used, 1 left; the child needs 5
    const before = snapshot(core);
    expect(core.x.copy_page_range(core.ctx, child, parent, BASE, BASE + 2 * GB, COW, 0, 0)).toBe(-C.ENOMEM);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.x.copy_page_range(core.ctx, child, parent, BASE, BASE + 2 * GB + 1, COW, 0, 0)).toBe(-C.EINVAL);
    expect(core.x.copy_page_range(core.ctx, child, child, BASE, BASE + 4096, COW, 0, 0)).toBe(-C.EINVAL);
  });
});

describe("zap_page_range", () => {
  it("unmaps, drops references and frees frames whose last reference goes", () => {
    const core = makeCore();
    const free0 = core.freePages();
    const parent = core.mmAlloc();
    populate(core, parent, BASE, 10);
    const { dst } = forkRange(core, parent, BASE, 10);
    const pfn = pfnAt(core, parent, BASE);
    const records = core.zapPageRange(dst, BASE, BASE + 10 * 4096, C.ZAP_RECORD);
    expect(records).toHaveLength(10);
    expect(records[0]).toEqual({ kind: C.REC_ZAP_PAGE, address: BASE, pfn, aux: C.ZAPPED_ANON | C.ZAPPED_DIRTY });
    expect(core.x.folio_mapcount(pfn)).toBe(1);
    expect(core.freePages()).toBe(free0 - 10);
    const last = core.zapPageRange(parent, BASE, BASE + 10 * 4096, C.ZAP_RECORD);
    expect(last.every((r) => (r.aux & C.ZAPPED_FREED) !== 0)).toBe(true);
    expect(core.freePages()).toBe(free0);
    expect(core.x.get_mm_counter(parent, C.MM_ANONPAGES)).toBe(0);
    expect(core.vmstat().ZAP_PTES).toBe(20);
  });

  it("a pinned page survives the zap of its last mapping until it is unpinned", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1);
    const pfn = pfnAt(core, mm, BASE);
    core.gupFast(mm, BASE, 1, C.FOLL_PIN);
    const [r] = core.zapPageRange(mm, BASE, BASE + 4096, C.ZAP_RECORD);
    expect(r!.aux & C.ZAPPED_FREED).toBe(0);
    expect(core.x.folio_ref_count(pfn)).toBe(C.GUP_PIN_COUNTING_BIAS);
    core.gupPut([pfn], C.FOLL_PIN);
    expect(core.x.page_test_flag(pfn, C.PG_buddy)).toBe(1);
  });

  it("swap entries drop their count; the last one with a swap-cache folio is reported", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    const cached = core.allocPages(0);
    const slot = core.x.get_swap_slot(cached) >>> 0;
    core.x.swap_duplicate(slot);
    core.x.swap_duplicate(slot);
    const e = BigInt.asUintN(64, core.x.swp_entry(0, BigInt(slot)));
    core.x.ptep_set(core.ctx, mm, BASE, e);
    core.x.ptep_set(core.ctx, mm, BASE + 4096, e);
    const r1 = core.zapPageRange(mm, BASE, BASE + 4096);
    expect(r1).toEqual([]);
    const r2 = core.zapPageRange(mm, BASE + 4096, BASE + 8192);
    expect(r2).toEqual([{ kind: C.REC_SWAP_CACHE_ONLY, address: BASE + 4096, pfn: slot, aux: cached }]);
    expect(core.x.swap_map_get(slot) >>> 0).toBe(C.SWAP_HAS_CACHE);
    expect(core.x.swapcache_clear(slot)).toBe(0);
    expect(core.swapSlotsAvailable()).toBe(core.layout.nslots - 1);
  });

  it("uffd-wp entries become uffd-wp markers with ZAP_KEEP_UFFD_WP; guard markers stay unless dropped", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1);
    core.x.ptep_set(core.ctx, mm, BASE, BigInt.asUintN(64, core.x.pte_mkuffd_wp(pteAt(core, mm, BASE))));
    core.x.ptep_set(core.ctx, mm, BASE + 4096, BigInt.asUintN(64, core.x.make_pte_marker(C.PTE_MARKER_GUARD)));
    core.zapPageRange(mm, BASE, BASE + 8192, C.ZAP_KEEP_UFFD_WP);
    expect(core.x.pte_marker_uffd_wp(pteAt(core, mm, BASE))).toBe(1);
    expect(core.x.is_guard_swp_entry(pteAt(core, mm, BASE + 4096))).toBe(1);
    core.zapPageRange(mm, BASE, BASE + 8192, C.ZAP_DROP_MARKERS);
    expect(pteAt(core, mm, BASE)).toBe(0n);
    expect(pteAt(core, mm, BASE + 4096)).toBe(0n);
  });
});

describe("PMD leaves in range operations", () => {
  function mapThp(core: Core, mm: number, va: number): number {
    const thp = core.allocPages(9);
    core.x.folio_add_new_anon_rmap(thp, 1, va / 4096, C.RMAP_EXCLUSIVE);
    const pmd = BigInt.asUintN(64, core.x.pmd_mkhuge(BigInt(thp) * 4096n + BigInt(P | U | W | A | D)));
    expect(core.x.pmdp_set(core.ctx, mm, va, pmd)).toBe(0);
    core.x.add_mm_counter(mm, C.MM_ANONPAGES, 512);
    return thp;
  }

  it("fork shares a whole PMD-mapped THP; zap unmaps it whole; partial ranges are reported", () => {
    const core = makeCore({ frames: 2048 });
    const parent = core.mmAlloc();
    const thp = mapThp(core, parent, BASE);
    const child = core.mmAlloc();
    expect(core.copyPageRange(child, parent, BASE, BASE + 2 ** 21, COW)).toEqual([]);
    expect(core.x.folio_entire_mapcount(thp)).toBe(2);
    expect(core.x.folio_ref_count(thp)).toBe(2);
    expect(core.x.PageAnonExclusive(thp)).toBe(0);
    expect(core.x.pte_write(core.x.pmdp_get(parent, BASE))).toBe(0);
    expect(core.x.get_mm_counter(child, C.MM_ANONPAGES)).toBe(512);
    const partial = core.zapPageRange(child, BASE, BASE + 4096);
    expect(partial.map((r) => r.kind)).toEqual([C.REC_PMD_PARTIAL]);
    expect(core.zapPageRange(child, BASE, BASE + 2 ** 21, C.ZAP_RECORD).map((r) => [r.kind, r.pfn])).toEqual([[C.REC_ZAP_PMD, thp]]);
    expect(core.x.folio_entire_mapcount(thp)).toBe(1);
    expect(core.x.get_mm_counter(child, C.MM_ANONPAGES)).toBe(0);
  });

  it("a pinned exclusive THP is handed back to the strategy at fork", () => {
    const core = makeCore({ frames: 2048 });
    const parent = core.mmAlloc();
    const thp = mapThp(core, parent, BASE);
    expect(core.gupFast(parent, BASE + 4096, 3, C.FOLL_PIN).pfns).toEqual([thp + 1, thp + 2, thp + 3]);
    expect(core.x.folio_pincount(thp)).toBe(3);
    const child = core.mmAlloc();
    const recs = core.copyPageRange(child, parent, BASE, BASE + 2 ** 21, COW | C.COPY_DEFER_PINNED_EXCLUSIVE);
    expect(recs.map((r) => [r.kind, r.pfn])).toEqual([[C.REC_FORK_PMD_PINNED, thp]]);
  });
});

describe("change_protection", () => {
  it("PROT_NONE and back keep the page; only an exclusive anon page is upgraded to writable", () => {
    const core = makeCore();
    const parent = core.mmAlloc();
    populate(core, parent, BASE, 2);
    const { dst } = forkRange(core, parent, BASE, 1); // page 0 now shared, page 1 exclusive
    expect(core.changeProtection(parent, BASE, BASE + 8192, 1 << C._PAGE_BIT_PROTNONE, 0).pages).toBe(2);
    expect(core.x.pte_protnone(pteAt(core, parent, BASE))).toBe(1);
    expect(core.translate(parent, [BASE])[0]).toBe((C.TRANSLATE_FAULT | C.PTE_KIND_PROTNONE) >>> 0);
    const cp = C.MM_CP_TRY_CHANGE_WRITABLE | C.CP_VM_WRITE;
    expect(core.changeProtection(parent, BASE, BASE + 8192, PROT_READ, cp).pages).toBe(2);
    expect(isWrite(core, pteAt(core, parent, BASE))).toBe(false); // shared with the child
    expect(isWrite(core, pteAt(core, parent, BASE + 4096))).toBe(true); // exclusive: 6.2 upgrade
    expect(core.x.pte_dirty(pteAt(core, parent, BASE + 4096))).toBe(1); // A/D kept
    // without the knob nothing becomes writable
    core.changeProtection(parent, BASE, BASE + 8192, PROT_READ, 0);
    core.changeProtection(parent, BASE, BASE + 8192, PROT_READ, C.CP_VM_WRITE);
    expect(isWrite(core, pteAt(core, parent, BASE + 4096))).toBe(false);
    void dst;
  });

  it("uffd-wp: protect installs markers on none PTEs where asked, resolve drops them", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1);
    const wp = C.MM_CP_UFFD_WP | C.CP_UFFD_USE_MARKERS;
    expect(core.changeProtection(mm, BASE, BASE + 3 * 4096, PROT_READ, wp).pages).toBe(3);
    expect(core.x.pte_uffd_wp(pteAt(core, mm, BASE))).toBe(1);
    expect(core.x.pte_marker_uffd_wp(pteAt(core, mm, BASE + 8192))).toBe(1);
    expect(core.changeProtection(mm, BASE, BASE + 3 * 4096, PROT_READ, C.MM_CP_UFFD_WP_RESOLVE).pages).toBe(3);
    expect(pteAt(core, mm, BASE + 8192)).toBe(0n);
    expect(core.x.pte_uffd_wp(pteAt(core, mm, BASE))).toBe(0);
    // markers on a range without tables need new tables: reserved up front
    expect(core.changeProtection(mm, BASE + 5 * GB, BASE + 5 * GB + 4096, PROT_READ, wp).pages).toBe(1);
  });

  it("a writable migration entry of an anon page becomes readable-exclusive", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    const pfn = core.allocPages(0);
    core.x.folio_add_new_anon_rmap(pfn, 1, 0, C.RMAP_EXCLUSIVE);
    core.x.ptep_set(core.ctx, mm, BASE, BigInt.asUintN(64, core.x.make_writable_migration_entry(BigInt(pfn))));
    core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, 0);
    expect(core.x.is_readable_exclusive_migration_entry(pteAt(core, mm, BASE))).toBe(1);
  });
});

describe("do_anonymous_pages", () => {
  it("maps fresh pages, or the zero page for reads, only where nothing is mapped", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    expect(core.x.do_anonymous_pages(core.ctx, mm, BASE, BASE + 4 * 4096, 3, 100, PROT_READ, 0)).toBe(4);
    expect(pfnAt(core, mm, BASE)).toBe(0);
    expect(core.x.pte_special(pteAt(core, mm, BASE))).toBe(1);
    expect(core.x.zap_page_range(core.ctx, mm, BASE + 4096, BASE + 8192, 0)).toBe(0);
    expect(core.x.do_anonymous_pages(core.ctx, mm, BASE, BASE + 4 * 4096, 3, 100, PROT_READ, C.ANON_WRITE | C.ANON_VM_WRITE)).toBe(1);
    const pfn = pfnAt(core, mm, BASE + 4096);
    expect(pfn).not.toBe(0);
    expect(core.x.folio_index(pfn)).toBe(101);
    expect(core.x.folio_mapping_id(pfn)).toBe(3);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    expect(core.x.get_mm_counter(mm, C.MM_ANONPAGES)).toBe(1);
  });

  it("ENOMEM for frames or tables changes nothing", () => {
    const core = makeCore({ frames: 64 });
    const mm = core.mmAlloc();
    const before = snapshot(core);
    expect(core.x.do_anonymous_pages(core.ctx, mm, BASE, BASE + 64 * 4096, 1, 0, PROT_READ, C.ANON_WRITE)).toBe(-C.ENOMEM);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.x.do_anonymous_pages(core.ctx, mm, BASE, BASE + 63 * 4096, 1, 0, PROT_READ, C.ANON_WRITE)).toBe(63);
    expect(core.freePages()).toBe(0);
  });
});

describe("state snapshots", () => {
  it("see a one-byte change anywhere in the state (so the 'unchanged' checks can fail)", () => {
    const core = makeCore();
    const before = snapshot(core);
    const at = core.layout.frameBase + 24 * 1000 + 9;
    core.u8[at] = core.u8[at]! ^ 1;
    expect(stateDiff(before, snapshot(core))).toMatch(/differs/);
  });
});
void n;
