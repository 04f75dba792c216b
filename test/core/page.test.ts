// struct page / folio accounting, the pin bias and its false positive, and the frame allocator.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import { CowsimError } from "../../src/errno.js";
import { makeCore, snapshot, stateDiff } from "../helpers.js";

describe("frame allocator", () => {
  it("hands out every frame but the zero page exactly once, then fails with ENOMEM", () => {
    const core = makeCore({ frames: 1000 }); // two pageblocks, the second partial
    expect(core.freePages()).toBe(999);
    const seen = new Set<number>();
    for (let i = 0; i < 999; i++) {
      const pfn = core.allocPages(0);
      expect(pfn).toBeGreaterThan(0);
      expect(pfn).toBeLessThan(1000);
      expect(seen.has(pfn)).toBe(false);
      seen.add(pfn);
      expect(core.x.folio_ref_count(pfn)).toBe(1);
      expect(core.x.folio_mapcount(pfn)).toBe(0);
    }
    expect(core.freePages()).toBe(0);
    const before = snapshot(core);
    expect(() => core.allocPages(0)).toThrow(CowsimError);
    expect(() => core.allocPages(0)).toThrow(/^ENOMEM: /);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.vmstat().PGALLOC_FAIL).toBe(2);
    expect(core.vmstat().PGALLOC).toBe(999);
  });

  it("freed frames coalesce back into a whole pageblock for an order-9 folio", () => {
    const core = makeCore({ frames: 1024 }); // block 0 holds the zero page; block 1 can be a THP
    const pfns = Array.from({ length: 1023 }, () => core.allocPages(0));
    expect(() => core.allocPages(9)).toThrow(/ENOMEM/);
    // free the frames of block 1 only: it becomes whole again
    for (const pfn of pfns.filter((p) => p >= 512)) expect(core.x.folio_put_refs(pfn, 1)).toBe(1);
    const thp = core.allocPages(9);
    expect(thp).toBe(512);
    expect(core.x.folio_nr_pages(thp)).toBe(512);
    expect(core.freePages()).toBe(0);
    // and back: the folio's last reference frees all 512
    expect(core.x.folio_put_refs(thp, 1)).toBe(1);
    expect(core.freePages()).toBe(512);
    expect(core.vmstat().THP_ALLOC).toBe(1);
    expect(core.vmstat().THP_FREE).toBe(1);
  });

  it("order 9 fails with ENOMEM, changing nothing, when enough frames are free but no whole block", () => {
    const core = makeCore({ frames: 2048 });
    // one frame taken in each of blocks 1..3 (block 0 has the zero page)
    const all = Array.from({ length: 2047 }, () => core.allocPages(0));
    for (const pfn of all) if (pfn % 512 !== 1) core.x.folio_put_refs(pfn, 1);
    expect(core.freePages()).toBe(2047 - 4); // pfns 1, 513, 1025 and 1537 stay taken
    const before = snapshot(core);
    expect(() => core.allocPages(9)).toThrow(/ENOMEM/);
    expect(stateDiff(before, snapshot(core))).toBeNull();
  });

  it("a reservation is all or nothing", () => {
    const core = makeCore({ frames: 100 });
    const before = snapshot(core);
    expect(core.x.frames_reserve(core.ctx, 100)).toBe(0);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.x.frames_reserve(core.ctx, 99)).toBe(1);
    expect(core.freePages()).toBe(0);
    expect(() => core.allocPages(0)).not.toThrow(); // from the reservation
    core.x.frames_unreserve(core.ctx);
    expect(core.freePages()).toBe(98);
  });

  it("alloc with GFP_ZERO clears a recycled frame's tag and data", () => {
    const core = makeCore({ frames: 16, dataBytes: 64 });
    const a = core.allocPages(0);
    core.setTag(a, 0xdead_beef_1234);
    core.data(a).fill(7);
    core.x.folio_put_refs(a, 1);
    const b = core.allocPages(0);
    expect(b).toBe(a);
    expect(core.tag(b)).toBe(0);
    expect(core.data(b).every((x) => x === 0)).toBe(true);
  });
});

describe("pins: GUP_PIN_COUNTING_BIAS and _pincount", () => {
  it("an order-0 FOLL_PIN adds the bias; unpin removes it", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(0);
    expect(core.x.try_grab_folio(pfn, 1, C.FOLL_PIN)).toBe(1);
    expect(core.x.folio_ref_count(pfn)).toBe(1 + C.GUP_PIN_COUNTING_BIAS);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(1);
    core.x.gup_put_folio(pfn, 1, C.FOLL_PIN);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(0);
  });

  it("1023 plain references are not a pin, 1024 read as one: the false positive Linux has", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    core.x.folio_ref_add(pfn, C.GUP_PIN_COUNTING_BIAS - 2);
    expect(core.x.folio_ref_count(pfn)).toBe(1023);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(0);
    core.x.folio_ref_add(pfn, 1);
    expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(1);
  });

  it("large folios count pins exactly in _pincount, with one reference per pin", () => {
    const core = makeCore();
    const thp = core.allocPages(9);
    core.x.folio_ref_add(thp, 5000); // many references, still not pinned
    expect(core.x.folio_maybe_dma_pinned(thp)).toBe(0);
    // grabbing through a tail page pins the folio
    expect(core.x.try_grab_folio(core.x.page_folio(thp + 17), 3, C.FOLL_PIN)).toBe(1);
    expect(core.x.folio_pincount(thp)).toBe(3);
    expect(core.x.folio_ref_count(thp)).toBe(5004);
    expect(core.x.folio_maybe_dma_pinned(thp)).toBe(1);
    core.x.gup_put_folio(thp, 3, C.FOLL_PIN);
    expect(core.x.folio_pincount(thp)).toBe(0);
    expect(core.x.folio_ref_count(thp)).toBe(5001);
  });

  it("FOLL_GET takes a plain reference; the zero page is never pinned", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    expect(core.x.try_grab_folio(pfn, 1, C.FOLL_GET)).toBe(1);
    expect(core.x.folio_ref_count(pfn)).toBe(2);
    const zeroRefs = core.x.folio_ref_count(0);
    expect(core.x.try_grab_folio(0, 1, C.FOLL_PIN)).toBe(1);
    expect(core.x.folio_ref_count(0)).toBe(zeroRefs);
  });

  it("try_grab_folio fails on a folio whose count is zero (being freed)", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    expect(core.x.folio_ref_freeze(pfn, 1)).toBe(1);
    expect(core.x.try_grab_folio(pfn, 1, C.FOLL_PIN)).toBe(0);
    expect(core.x.folio_ref_count(pfn)).toBe(0);
    core.x.folio_ref_unfreeze(pfn, 1);
  });
});

describe("compound folios: map counts", () => {
  it("head and tails: page_folio, order, and tails without references", () => {
    const core = makeCore();
    const thp = core.allocPages(9);
    expect(thp % 512).toBe(0);
    for (const i of [0, 1, 2, 255, 511]) {
      expect(core.x.page_folio(thp + i)).toBe(thp);
      expect(core.x.folio_ref_count(thp + i)).toBe(i === 0 ? 1 : 0);
    }
    expect(core.x.page_test_flag(thp, C.PG_head)).toBe(1);
    expect(core.x.page_test_flag(thp + 1, C.PG_tail)).toBe(1);
    expect(core.x.folio_test_large(thp)).toBe(1);
    expect(core.x.folio_order(thp)).toBe(9);
  });

  it("PMD mapping, then PTE mappings of some pages, then unmapping, keep every counter exact", () => {
    const core = makeCore();
    const thp = core.allocPages(9);
    core.x.folio_add_new_anon_rmap(thp, 7, 0x1000, C.RMAP_EXCLUSIVE);
    expect(core.x.folio_mapcount(thp)).toBe(1);
    expect(core.x.folio_entire_mapcount(thp)).toBe(1);
    expect(core.x.folio_nr_pages_mapped(thp)).toBe(C.ENTIRELY_MAPPED);
    expect(core.x.PageAnonExclusive(thp)).toBe(1);
    expect(core.x.folio_mapping_id(thp)).toBe(7);
    expect(core.x.folio_test_anon(thp)).toBe(1);

    // a second process maps the whole folio by PMD (fork)
    expect(core.x.folio_try_dup_anon_rmap_pmd(thp, 0)).toBe(0);
    expect(core.x.PageAnonExclusive(thp)).toBe(0);
    expect(core.x.folio_entire_mapcount(thp)).toBe(2);
    expect(core.x.folio_mapcount(thp)).toBe(2);

    // a third maps 3 of its pages by PTE
    core.x.folio_add_rmap_ptes(thp, thp + 10, 3);
    expect(core.x.folio_mapcount(thp)).toBe(5);
    expect(core.x.folio_nr_pages_mapped(thp)).toBe(C.ENTIRELY_MAPPED + 3);
    expect(core.x.page_mapcount_raw(thp + 11)).toBe(0);
    expect(core.x.page_mapcount_raw(thp + 13)).toBe(-1);

    // both PMD mappings go: the folio is still mapped by three PTEs
    core.x.folio_remove_rmap_pmd(thp);
    core.x.folio_remove_rmap_pmd(thp);
    expect(core.x.folio_entire_mapcount(thp)).toBe(0);
    expect(core.x.folio_nr_pages_mapped(thp)).toBe(3);
    expect(core.x.folio_is_mapped(thp)).toBe(1);
    expect(core.x.folio_remove_rmap_ptes(thp, thp + 10, 3)).toBe(3);
    expect(core.x.folio_mapcount(thp)).toBe(0);
    expect(core.x.folio_nr_pages_mapped(thp)).toBe(0);
    expect(core.x.folio_is_mapped(thp)).toBe(0);
  });

  it("folio_try_dup_anon_rmap refuses a possibly pinned exclusive page and changes nothing", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    core.x.folio_add_new_anon_rmap(pfn, 1, 0, C.RMAP_EXCLUSIVE);
    expect(core.x.folio_try_dup_anon_rmap_ptes(pfn, pfn, 1, 1)).toBe(-C.EBUSY);
    expect(core.x.folio_mapcount(pfn)).toBe(1);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    // not exclusive (already shared): duplicating is fine even if pinned
    core.x.ClearPageAnonExclusive(pfn);
    expect(core.x.folio_try_dup_anon_rmap_ptes(pfn, pfn, 1, 1)).toBe(0);
    expect(core.x.folio_mapcount(pfn)).toBe(2);
  });

  it("folio_try_share_anon_rmap fails while pinned (A2), clears exclusivity otherwise (A3)", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    core.x.folio_add_new_anon_rmap(pfn, 1, 0, C.RMAP_EXCLUSIVE);
    core.x.try_grab_folio(pfn, 1, C.FOLL_PIN);
    expect(core.x.folio_try_share_anon_rmap_pte(pfn, pfn)).toBe(-C.EBUSY);
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    core.x.gup_put_folio(pfn, 1, C.FOLL_PIN);
    expect(core.x.folio_try_share_anon_rmap_pte(pfn, pfn)).toBe(0);
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
  });
});
