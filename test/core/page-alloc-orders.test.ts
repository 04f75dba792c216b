// The frame allocator at every order 0…9 (mm/page_alloc.c): natural alignment, the compound
// folio prep_compound_page() makes, free and reuse, coalescing back into a whole pageblock,
// exhaustion and fragmentation (ENOMEM with the state unchanged), fault injection, reservations,
// and where each order looks first.
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { errnoOf, makeCore, snapshot, stateDiff } from "../helpers.js";
import { allocatorState, bitsOf, BLOCK } from "./alloc-state.js";

const ORDERS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
const TAIL = 2 ** C.PG_tail;
const HEAD = 2 ** C.PG_head;
const BUDDY = 2 ** C.PG_buddy;

/** alloc_pages() through the typed operations: the pfn, or null. */
const tryAlloc = (core: Core, order: number) => core.ops.tryAllocPages(order);

/** Frames taken by folios: PGALLOC counts orders 0…8 by the frame, THP_ALLOC order 9 by the folio. */
const framesAllocated = (core: Core) => core.vmstat().PGALLOC! + BLOCK * core.vmstat().THP_ALLOC!;
const framesFreed = (core: Core) => core.vmstat().PGFREE! + BLOCK * core.vmstat().THP_FREE!;

describe("every order is naturally aligned and prepared as a folio", () => {
  it.each(ORDERS)("order %i: 2^order frames at a multiple of 2^order, head and tails as prep_compound_page() leaves them", (order) => {
    const core = makeCore({ frames: 4096 });
    const nr = 2 ** order;
    // a few frames taken first, so the next folio cannot simply land at 0
    for (let i = 0; i < 3; i++) core.allocPages(0);
    const pfns = Array.from({ length: 3 }, () => core.allocPages(order));
    for (const pfn of pfns) {
      expect(pfn % nr).toBe(0);
      expect(pfn + nr).toBeLessThanOrEqual(4096);
      expect(core.x.folio_order(pfn)).toBe(order);
      expect(core.x.folio_nr_pages(pfn)).toBe(nr);
      expect(core.x.folio_ref_count(pfn)).toBe(1);
      expect(core.x.folio_mapcount(pfn)).toBe(0);
      expect(core.x.folio_pincount(pfn)).toBe(0);
      expect(core.x.folio_maybe_dma_pinned(pfn)).toBe(0);
      expect(core.x.folio_test_large(pfn)).toBe(order > 0 ? 1 : 0);
      expect(core.frames.flags(pfn)).toBe(order > 0 ? HEAD | (order << C.PG_ORDER_SHIFT) : 0);
      if (order > 0) {
        expect(core.x.folio_entire_mapcount(pfn)).toBe(0);
        expect(core.x.folio_nr_pages_mapped(pfn)).toBe(0);
      }
      for (let i = 1; i < nr; i++) {
        expect(core.frames.flags(pfn + i)).toBe(TAIL | (order << C.PG_ORDER_SHIFT));
        expect(core.x.page_folio(pfn + i)).toBe(pfn);
        expect(core.frames.refcount(pfn + i)).toBe(0); // tails stay 0
        expect(core.x.page_mapcount_raw(pfn + i)).toBe(-1);
      }
    }
    // three folios, three distinct ranges
    const ranges = pfns.map((p) => [p, p + nr] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
  });

  it("the folio's counters sit where page.ts draws them: an order-1 folio keeps _pincount in page[1], never touching its neighbour", () => {
    const core = makeCore({ frames: 1024 });
    const a = core.allocPages(1);
    const b = core.allocPages(1);
    expect([a, b]).toEqual([2, 4]); // pfn 0 is the zero page: [0, 2) is taken
    const S = core.layout.pageStructBytes;
    const word = (pfn: number, field: number) => core.i32[(core.layout.frameBase + pfn * S + field) >>> 2]!;
    expect(word(a + 1, C.PAGE_FIELD_MAPPING)).toBe(-1); // _large_mapcount
    expect(word(a + 1, C.PAGE_FIELD_INDEX)).toBe(0); // _pincount (order 1)
    expect(word(a + 1, C.PAGE_FIELD_PRIVATE)).toBe(0); // _nr_pages_mapped
    const before = core.u8.slice(core.layout.frameBase + b * S, core.layout.frameBase + (b + 2) * S);
    // FOLL_PIN of the order-1 folio: exact in _pincount, one reference per pin, no bias
    expect(core.x.try_grab_folio(a, 3, C.FOLL_PIN)).toBe(1);
    expect(core.x.folio_pincount(a)).toBe(3);
    expect(core.x.folio_ref_count(a)).toBe(4);
    expect(core.x.folio_maybe_dma_pinned(a)).toBe(1);
    expect(word(a + 1, C.PAGE_FIELD_INDEX)).toBe(3);
    expect(core.x.folio_entire_mapcount(a)).toBe(0);
    // the next folio's struct pages (where a page[2] would be) did not change
    expect(core.u8.slice(core.layout.frameBase + b * S, core.layout.frameBase + (b + 2) * S)).toEqual(before);
    expect(core.x.folio_pincount(b)).toBe(0);
    core.x.gup_put_folio(a, 3, C.FOLL_PIN);
    expect(core.x.folio_pincount(a)).toBe(0);
    expect(core.x.folio_ref_count(a)).toBe(1);
    expect(core.x.folio_maybe_dma_pinned(a)).toBe(0);

    // order 2 and up: _entire_mapcount in page[1].index, _pincount in page[2].mapping
    const c = core.allocPages(2);
    expect(word(c + 1, C.PAGE_FIELD_INDEX)).toBe(-1);
    expect(word(c + 2, C.PAGE_FIELD_MAPPING)).toBe(0);
    expect(core.x.try_grab_folio(core.x.page_folio(c + 3), 2, C.FOLL_PIN)).toBe(1);
    expect(word(c + 2, C.PAGE_FIELD_MAPPING)).toBe(2);
    expect(core.x.folio_pincount(c)).toBe(2);
    expect(core.x.folio_entire_mapcount(c)).toBe(0);
  });

  it("GFP_ZERO clears every frame of a recycled folio", () => {
    const core = makeCore({ frames: 1024, dataBytes: 32 });
    for (const order of [1, 4, 7, 9]) {
      const pfn = core.allocPages(order, false);
      for (let i = 0; i < 2 ** order; i++) {
        core.setTag(pfn + i, 1000 + i);
        core.data(pfn + i).fill(9);
      }
      expect(core.x.folio_put_refs(pfn, 1)).toBe(1);
      const again = core.allocPages(order, true);
      expect(again).toBe(pfn);
      for (let i = 0; i < 2 ** order; i++) {
        expect(core.tag(again + i)).toBe(0);
        expect(core.data(again + i).every((x) => x === 0)).toBe(true);
      }
      core.x.folio_put_refs(again, 1);
    }
  });

  it("orders past MAX_PAGE_ORDER are refused: EINVAL from the binding, NO_PFN from the core, nothing counted", () => {
    const core = makeCore({ frames: 1024 });
    expect(C.MAX_PAGE_ORDER).toBe(9);
    const before = snapshot(core);
    const vm = core.vmstat();
    expect(core.x.alloc_pages(core.ctx, 10, 0) >>> 0).toBe(C.NO_PFN);
    expect(core.x.alloc_pages(core.ctx, 31, 0) >>> 0).toBe(C.NO_PFN);
    for (const order of [10, -1, 1.5, NaN]) expect(errnoOf(() => core.allocPages(order))).toBe("EINVAL");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.vmstat()).toEqual(vm);
  });
});

describe("free, reuse and coalescing", () => {
  it.each(ORDERS)("order %i: freeing gives every frame back, the same folio comes again, and the block is whole", (order) => {
    const core = makeCore({ frames: 2048 });
    const nr = 2 ** order;
    const fresh = allocatorState(core);
    const pfn = core.allocPages(order);
    expect(core.freePages()).toBe(2047 - nr);
    expect(core.x.folio_put_refs(pfn, 1)).toBe(1);
    for (let i = 0; i < nr; i++) expect(core.frames.flags(pfn + i)).toBe(BUDDY);
    expect(allocatorState(core)).toEqual(fresh);
    expect(core.allocPages(order)).toBe(pfn);
    expect(framesAllocated(core)).toBe(2 * nr);
    expect(framesFreed(core)).toBe(nr);
    expect(core.vmstat().PGALLOC).toBe(order === 9 ? 0 : 2 * nr);
    expect(core.vmstat().THP_ALLOC).toBe(order === 9 ? 2 : 0);
  });

  it("a block filled with folios of every order 0…8 and emptied again is taken whole at order 9", () => {
    const core = makeCore({ frames: 1024 }); // block 0 holds the zero page; block 1 can be a THP
    for (let i = 0; i < 511; i++) core.allocPages(0); // block 0 full
    // block 1 in folios of 256 + 128 + 64 + … + 2 + 1 + 1 frames, each after the one before
    const held: [number, number][] = [];
    for (const order of [8, 7, 6, 5, 4, 3, 2, 1, 0, 0]) held.push([core.allocPages(order), order]);
    expect(held.map(([pfn]) => pfn)).toEqual([512, 768, 896, 960, 992, 1008, 1016, 1020, 1022, 1023]);
    expect(core.freePages()).toBe(0);
    expect(errnoOf(() => core.allocPages(9))).toBe("ENOMEM");
    expect(errnoOf(() => core.allocPages(0))).toBe("ENOMEM");
    // freed in another order than they came: once the last unit is back, the block is whole
    for (const i of [3, 9, 0, 6, 1, 8, 4, 2, 7]) {
      core.x.free_pages(held[i]![0], held[i]![1]);
      expect(errnoOf(() => core.allocPages(9))).toBe("ENOMEM");
    }
    core.x.free_pages(held[5]![0], held[5]![1]);
    expect(core.x.pageblock_free(1)).toBe(BLOCK);
    expect(allocatorState(core).blocks[1]!.bits).toEqual(new Uint32Array(16));
    expect(core.allocPages(9)).toBe(BLOCK);
    expect(core.x.pageblock_free(1)).toBe(0);
    expect(framesAllocated(core) - framesFreed(core)).toBe(1023);
  });

  it("an order-9 folio split into pieces frees them at their own orders, and the block is whole again", () => {
    const core = makeCore({ frames: 1024 });
    const thp = core.allocPages(9);
    const fresh = core.x.pageblock_free(1);
    expect(fresh).toBe(0);
    core.x.split_block_to_order0(thp);
    // pieces of orders 8, 7, 6 … 1, 0, 0: each freed on its own
    let at = thp;
    for (let order = 8; order >= 0; order--) {
      core.x.free_pages(at, order);
      at += 2 ** order;
    }
    core.x.free_pages(at, 0);
    expect(core.x.pageblock_free(1)).toBe(BLOCK);
    expect(allocatorState(core).blocks[1]!.bits).toEqual(new Uint32Array(16));
    expect(core.allocPages(9)).toBe(thp);
    // an order-8 folio splits with no allocator step at all: its bits are set already
    core.x.free_pages(thp, 9);
    const big = core.allocPages(8);
    core.x.free_pages(big, 4);
    for (let p = big + 16; p < big + 256; p += 2) core.x.free_pages(p, 1);
    expect(core.freePages()).toBe(1023);
    expect(core.x.pageblock_free(0)).toBe(511);
    expect(allocatorState(core).blocks[0]!.bits).toEqual(bitsOf((i) => i === 0));
    expect(core.allocPages(9)).toBe(BLOCK);
  });
});

describe("exhaustion and fragmentation: ENOMEM, nothing changed", () => {
  it.each(ORDERS)("order %i: exactly the aligned free blocks there are, then ENOMEM with the state byte for byte the same", (order) => {
    const core = makeCore({ frames: 4096 }); // 8 blocks, block 0 with the zero page at pfn 0
    const nr = 2 ** order;
    const expected = order === 9 ? 7 : 8 * (BLOCK / nr) - 1;
    const pfns = new Set<number>();
    for (let i = 0; i < expected; i++) {
      const pfn = core.allocPages(order, false);
      expect(pfns.has(pfn)).toBe(false);
      pfns.add(pfn);
    }
    const before = snapshot(core);
    const state = allocatorState(core);
    const fails = core.vmstat().PGALLOC_FAIL!;
    expect(errnoOf(() => core.allocPages(order))).toBe("ENOMEM");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(allocatorState(core)).toEqual(state);
    expect(core.vmstat().PGALLOC_FAIL).toBe(fails + 1);
    // what is left is less than one aligned block: the first 2^order frames of block 0, but pfn 0
    expect(core.freePages()).toBe(order === 9 ? 511 : nr - 1);
  });

  it("enough free frames but no aligned run: each order up to the largest run fits, the next one fails and changes nothing", () => {
    const core = makeCore({ frames: 1024 });
    const all = Array.from({ length: 1023 }, () => core.allocPages(0));
    // in block 1 keep every 32nd frame, so the largest free aligned run is 16 frames; in block
    // 0 keep everything: it has no free frame
    for (const pfn of all) if (pfn >= BLOCK && pfn % 32 !== 0) core.x.folio_put_refs(pfn, 1);
    expect(core.freePages()).toBe(BLOCK - 16);
    for (const order of [5, 6, 7, 8, 9]) {
      const before = snapshot(core);
      expect(errnoOf(() => core.allocPages(order))).toBe("ENOMEM");
      expect(stateDiff(before, snapshot(core))).toBeNull();
    }
    const got = core.allocPages(4);
    expect(got % 32).toBe(16);
    expect(core.x.pageblock_free(1)).toBe(BLOCK - 16 - 16);
  });

  it("a partial last block serves runs below its end, never across it", () => {
    const core = makeCore({ frames: 1072 }); // block 2 holds 48 frames: [1024, 1072)
    expect(core.allocPages(9)).toBe(BLOCK);
    for (let i = 0; i < 511; i++) core.allocPages(0); // block 0 full
    expect(core.allocPages(4)).toBe(1024);
    // 32 frames free in block 2, [1040, 1072), but no aligned run of 32: [1024, 1056) is partly
    // taken and [1056, 1088) crosses the end
    expect(core.x.pageblock_free(2)).toBe(32);
    const before = snapshot(core);
    expect(errnoOf(() => core.allocPages(5))).toBe("ENOMEM");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.allocPages(4)).toBe(1040);
    expect(core.allocPages(4)).toBe(1056);
    expect(core.freePages()).toBe(0);
  });
});

describe("fault injection and reservations", () => {
  it.each(ORDERS)("order %i: the nth allocation fails as exhaustion would, changing nothing; the next succeeds", (order) => {
    for (const nth of [1, 3]) {
      const core = makeCore({ frames: 4096 });
      core.injectFailure("frame", { nth });
      for (let i = 1; i < nth; i++) core.allocPages(order);
      const before = snapshot(core);
      const vm = core.vmstat();
      expect(errnoOf(() => core.allocPages(order))).toBe("ENOMEM");
      expect(stateDiff(before, snapshot(core))).toBeNull();
      expect(core.vmstat().PGALLOC_FAIL).toBe(vm.PGALLOC_FAIL! + 1);
      expect(core.vmstat().FAIL_INJECTED_FRAME).toBe(vm.FAIL_INJECTED_FRAME! + 1);
      expect(framesAllocated(core)).toBe((nth - 1) * 2 ** order);
      expect(core.injectionStatus("frame")).toEqual({ armed: false, attempts: nth });
      expect(() => core.allocPages(order)).not.toThrow();
    }
  });

  it("a folio of a reserved size comes from the reservation: certain, and no attempt for fault injection", () => {
    const core = makeCore({ frames: 1024 });
    expect(core.x.frames_reserve(core.ctx, 64 + 2)).toBe(1);
    const free = core.freePages();
    core.injectFailure("frame", { nth: 1, times: Infinity });
    const a = core.allocPages(6);
    const b = core.allocPages(1);
    expect(a % 64).toBe(0);
    expect(b % 2).toBe(0);
    expect(core.freePages()).toBe(free);
    expect(core.injectionStatus("frame")).toEqual({ armed: true, attempts: 0 });
    // the reservation is used up: the next one is an attempt, and fails
    expect(errnoOf(() => core.allocPages(1))).toBe("ENOMEM");
    core.clearInjection();
  });

  it("a reserved folio that finds no aligned run gives its frames back to the reservation", () => {
    const core = makeCore({ frames: 1024 });
    const all = Array.from({ length: 1023 }, () => core.allocPages(0));
    for (const pfn of all) if (pfn % 2 === 1) core.x.folio_put_refs(pfn, 1); // no two free frames side by side
    expect(core.x.frames_reserve(core.ctx, 4)).toBe(1);
    const free = core.freePages();
    const before = snapshot(core);
    expect(errnoOf(() => core.allocPages(1))).toBe("ENOMEM");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    // still 4 reserved: four order-0 frames come from it, then it is empty
    for (let i = 0; i < 4; i++) core.allocPages(0);
    expect(core.freePages()).toBe(free);
    core.x.frames_unreserve(core.ctx);
    expect(core.freePages()).toBe(free);
  });
});

describe("where each order looks", () => {
  it("orders 1…8 take blocks already split before whole ones; order 9 takes whole blocks from the top", () => {
    const core = makeCore({ frames: 4096 });
    // block 0 is split (the zero page at pfn 0): small orders fill it first, each at the lowest
    // aligned run that fits
    expect(core.allocPages(3)).toBe(8);
    expect(core.allocPages(1)).toBe(2);
    expect(core.allocPages(2)).toBe(4);
    expect(core.allocPages(9)).toBe(7 * BLOCK);
    expect(core.allocPages(8)).toBe(256);
    expect(core.allocPages(7)).toBe(128);
    // block 0 has 113 frames left, [16, 128) and pfn 1, no run of 128: order 7 breaks the
    // lowest whole block
    expect(core.x.pageblock_free(0)).toBe(113);
    expect(core.allocPages(7)).toBe(BLOCK);
    // which is split now: the next order-7 goes there too, not into block 2
    expect(core.allocPages(7)).toBe(BLOCK + 128);
    expect(core.allocPages(6)).toBe(64); // block 0 again: it comes first from this thread's cursor
    // order 0 goes on with its cursor (block 0)
    expect(core.allocPages(0)).toBe(1);
    const s = allocatorState(core);
    expect(s.blocks.map((b) => b.free)).toEqual([48, 256, 512, 512, 512, 512, 512, 0]);
  });

  it("the bitmap holds one bit per frame taken by orders 0…8, none for an order-9 block", () => {
    const core = makeCore({ frames: 1500 }); // a partial third block of 476 frames
    const s0 = allocatorState(core);
    expect(s0.blocks.map((b) => b.free)).toEqual([511, 512, 476]);
    expect(s0.blocks[0]!.bits).toEqual(bitsOf((i) => i === 0));
    expect(s0.blocks[2]!.bits).toEqual(bitsOf((i) => i >= 476));
    const a = core.allocPages(5); // block 0, [32, 64)
    const thp = core.allocPages(9); // the only whole block
    const b = core.allocPages(7); // block 0, [128, 256)
    expect([a, thp, b]).toEqual([32, 512, 128]);
    const s = allocatorState(core);
    expect(s.blocks.map((x) => x.free)).toEqual([511 - 32 - 128, 0, 476]);
    expect(s.blocks[0]!.bits).toEqual(bitsOf((i) => i === 0 || (i >= 32 && i < 64) || (i >= 128 && i < 256)));
    expect(s.blocks[1]!.bits).toEqual(new Uint32Array(16));
    expect(s.nrFree).toBe(1499 - 32 - 512 - 128);
    // block 0 has room for an order-8 folio, and is split: it goes there, not to block 2
    expect(core.allocPages(8)).toBe(256);
    expect(core.allocPages(8)).toBe(1024); // block 2 is partial: split, in a way
    expect(errnoOf(() => core.allocPages(8))).toBe("ENOMEM");
  });
});
