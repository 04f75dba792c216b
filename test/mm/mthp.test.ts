// mTHP: anonymous faults that map PTE-mapped large folios (alloc_anon_folio() of Linux 6.12),
// and those folios through COW, fork, zap, partial unmap, split, reclaim and GUP — with exact
// counters, per-page map counts and the invariants checked after every step.
import { describe, it, expect } from "vitest";
import {
  MAP_FIXED, MADV_DONTNEED, MADV_PAGEOUT, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK, MREMAP_MAYMOVE, MREMAP_FIXED, PROT_READ, FOLL_PIN,
  FOLL_LONGTERM, C, type ThpOptions,
} from "../../src/index.js";
import { kernel, RW, PRIV, PAGE } from "./helpers.js";

const K = 1024;
const BASE = 0x7f0000000000; // 2 MiB aligned
const ONLY_64K: ThpOptions = { sizes: { "64K": "always", "2M": "never" } };
const NR = 16; // pages of a 64 KiB folio

function mthpKernel(thp: ThpOptions = ONLY_64K, options: Parameters<typeof kernel>[1] = {}) {
  const k = kernel("anon-exclusive", { thp, swap: "4M", ...options });
  const p = k.spawn();
  const a = p.mmap(BASE, 1024 * K, RW, PRIV | MAP_FIXED);
  return { k, p, a };
}

/** The folio mapped at `addr` and its counters. */
function folioAt(k: ReturnType<typeof kernel>, pfn: number) {
  const ops = k.ops;
  const folio = ops.pageFolio(pfn);
  return {
    folio, order: ops.folioOrder(folio), refcount: ops.folioRefCount(folio), mapcount: ops.folioMapcount(folio),
    nrPagesMapped: ops.folioNrPagesMapped(folio), partiallyMapped: ops.folioTestPartiallyMapped(folio),
  };
}

describe("mTHP anonymous faults (alloc_anon_folio())", () => {
  it("a write maps the whole naturally aligned 64 KiB folio at once: every PTE, every subpage exclusive", () => {
    const { k, p, a } = mthpKernel();
    p.write(a + 5 * PAGE, 42);
    const pfn = p.pfnAt(a)!;
    for (let i = 0; i < NR; i++) {
      expect(p.pfnAt(a + i * PAGE)).toBe(pfn + i);
      expect(k.ops.PageAnonExclusive(pfn + i)).toBe(true);
      expect(k.ops.pageMapcount(pfn + i)).toBe(1);
    }
    expect(p.pfnAt(a + NR * PAGE)).toBeNull();
    expect(folioAt(k, pfn)).toEqual({ folio: pfn, order: 4, refcount: NR, mapcount: NR, nrPagesMapped: NR, partiallyMapped: false });
    expect(p.rss().anon).toBe(NR);
    expect(k.counters().anonFaults).toBe(1);
    expect(k.mthpStats()["64K"]).toMatchObject({ anon_fault_alloc: 1, anon_fault_fallback: 0, split_deferred: 0 });
    // the other pages are there already, zeroed and writable: no fault
    expect(p.read(a + 5 * PAGE)).toBe(42);
    expect(p.read(a + 15 * PAGE)).toBe(0);
    p.write(a, 1);
    expect(k.counters().anonFaults).toBe(1);
    expect(k.counters().wpFaults).toBe(0);
  });

  it("the default policy (mTHP never) keeps order-0 faults", () => {
    const { k, p, a } = mthpKernel({});
    p.write(a, 1);
    expect(folioAt(k, p.pfnAt(a)!).order).toBe(0);
    expect(p.pfnAt(a + PAGE)).toBeNull();
    expect(Object.values(k.mthpStats()).every((s) => s.anon_fault_alloc === 0)).toBe(true);
  });

  it("highest order first, then the first whose aligned range is all none (pte_range_none())", () => {
    const { k, p, a } = mthpKernel({ sizes: { "16K": "always", "64K": "always", "2M": "never" } });
    // read faults map the zero page: the 64 KiB range is no longer none, a 16 KiB one next to it is
    p.read(a + 15 * PAGE);
    p.write(a, 1);
    expect(folioAt(k, p.pfnAt(a)!).order).toBe(2);
    expect(p.pfnAt(a + 4 * PAGE)).toBeNull();
    p.write(a + NR * PAGE, 2);
    expect(folioAt(k, p.pfnAt(a + NR * PAGE)!).order).toBe(4);
    expect(k.mthpStats()["16K"].anon_fault_alloc).toBe(1);
    expect(k.mthpStats()["64K"].anon_fault_alloc).toBe(1);
  });

  it("only orders whose aligned range fits in the VMA (thp_vma_suitable_order()); MADV_NOHUGEPAGE: order 0", () => {
    const k = kernel("anon-exclusive", { thp: ONLY_64K });
    const p = k.spawn();
    const small = p.mmap(BASE, 8 * PAGE, RW, PRIV | MAP_FIXED);
    p.write(small, 1);
    expect(folioAt(k, p.pfnAt(small)!).order).toBe(0);
    const b = p.mmap(BASE + 1024 * K, 64 * K, RW, PRIV | MAP_FIXED);
    p.madvise(b, 64 * K, MADV_NOHUGEPAGE);
    p.write(b, 1);
    expect(folioAt(k, p.pfnAt(b)!).order).toBe(0);
  });

  it("an allocation failure falls back to the next order, counting anon_fault_fallback; then order 0", () => {
    const { k, p, a } = mthpKernel({ sizes: { "16K": "always", "64K": "always", "2M": "never" } });
    k.injectFailure("frame", { nth: 1, times: 1 });
    p.write(a, 1);
    expect(folioAt(k, p.pfnAt(a)!).order).toBe(2);
    expect(k.mthpStats()["64K"]).toMatchObject({ anon_fault_alloc: 0, anon_fault_fallback: 1 });
    expect(k.mthpStats()["16K"]).toMatchObject({ anon_fault_alloc: 1, anon_fault_fallback: 0 });
    k.injectFailure("frame", { nth: 1, times: 2 });
    p.write(a + NR * PAGE, 2);
    expect(folioAt(k, p.pfnAt(a + NR * PAGE)!).order).toBe(0);
    expect(k.mthpStats()["64K"].anon_fault_fallback).toBe(2);
    expect(k.mthpStats()["16K"].anon_fault_fallback).toBe(1);
  });

  it("MAP_POPULATE faults folio by folio as GUP does", () => {
    const k = kernel("anon-exclusive", { thp: ONLY_64K });
    const p = k.spawn();
    const a = p.mmap(BASE, 256 * K, RW, PRIV | MAP_FIXED | 0x8000 /* MAP_POPULATE */);
    expect(k.mthpStats()["64K"].anon_fault_alloc).toBe(4);
    expect(p.rss().anon).toBe(64);
    expect(folioAt(k, p.pfnAt(a + 17 * PAGE)!).order).toBe(4);
  });
});

describe("PTE-mapped large folios", () => {
  it("COW after fork copies only the written subpage (wp_page_copy()); 6.12 never reuses a large folio's page", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    const c = p.fork();
    expect(folioAt(k, pfn)).toMatchObject({ refcount: 2 * NR, mapcount: 2 * NR, nrPagesMapped: NR });
    c.write(a + 3 * PAGE, 7);
    expect(c.pfnAt(a + 3 * PAGE)).not.toBe(pfn + 3);
    expect(folioAt(k, c.pfnAt(a + 3 * PAGE)!).order).toBe(0);
    expect(folioAt(k, pfn)).toMatchObject({ refcount: 2 * NR - 1, mapcount: 2 * NR - 1, nrPagesMapped: NR, partiallyMapped: false });
    expect(k.counters().copies).toBe(1);
    c.exit();
    // the parent maps the folio alone now, but wp_can_reuse_anon_folio() refuses large folios
    p.write(a, 9);
    expect(k.counters().copies).toBe(2);
    expect(k.counters().reuses).toBe(0);
    expect([p.read(a), p.read(a + 3 * PAGE), p.read(a + 4 * PAGE)]).toEqual([9, 103, 104]);
    // nobody else could see that page: an unnecessary COW, and real 6.12 behaviour
    expect(k.findings.map((f) => [f.kind, f.address])).toEqual([["unnecessary-cow", a]]);
    // the copied page left the folio partially mapped: on the deferred split queue
    expect(folioAt(k, pfn)).toMatchObject({ mapcount: NR - 1, nrPagesMapped: NR - 1, partiallyMapped: true });
    expect(k.mthpStats()["64K"].split_deferred).toBe(1);
  });

  it("fork copies a large folio's PTEs in batches (folio_pte_batch()): around a hole, counts exact per PTE", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    p.madvise(a + 5 * PAGE, PAGE, MADV_DONTNEED);
    const shared = k.counters().ptesSharedAtFork;
    const c = p.fork();
    expect(k.counters().ptesSharedAtFork! - shared!).toBe(NR - 1);
    expect(folioAt(k, pfn)).toMatchObject({ refcount: 2 * (NR - 1), mapcount: 2 * (NR - 1), nrPagesMapped: NR - 1 });
    for (let i = 0; i < NR; i++) {
      expect(c.pfnAt(a + i * PAGE)).toBe(i === 5 ? null : pfn + i);
      expect(k.ops.pageMapcount(pfn + i)).toBe(i === 5 ? 0 : 2);
      if (i !== 5) expect(k.ops.PageAnonExclusive(pfn + i)).toBe(false);
    }
    expect([c.read(a + 4 * PAGE), c.read(a + 5 * PAGE), c.read(a + 6 * PAGE)]).toEqual([104, 0, 106]);
    c.write(a + 6 * PAGE, 1);
    expect([p.read(a + 6 * PAGE), c.read(a + 6 * PAGE)]).toEqual([106, 1]);
  });

  it("fork of a pinned folio copies every exclusive subpage into the child (folio_try_dup_anon_rmap_ptes() fails)", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    const pin = p.pinUserPages(a + 2 * PAGE, 1, FOLL_PIN | FOLL_LONGTERM);
    expect(k.ops.folioPincount(pfn)).toBe(1);
    expect(folioAt(k, pfn).refcount).toBe(NR + 1);
    const c = p.fork();
    // folio_maybe_dma_pinned() is folio-wide: each of its pages is copied, none shared
    expect(k.counters().forkCopies).toBe(NR);
    for (let i = 0; i < NR; i++) {
      expect(c.pfnAt(a + i * PAGE)).not.toBe(pfn + i);
      expect(c.read(a + i * PAGE)).toBe(100 + i);
      expect(k.ops.PageAnonExclusive(pfn + i)).toBe(true);
    }
    expect(folioAt(k, pfn)).toMatchObject({ refcount: NR + 1, mapcount: NR });
    p.write(a + 2 * PAGE, 5);
    expect(pin.read(0)).toBe(5);
    expect(k.findings).toEqual([]);
    pin.release();
    expect(k.ops.folioPincount(pfn)).toBe(0);
  });

  it("fork of a pinned folio whose first pages are shared already: the exclusive ones after them are still copied", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    p.madvise(a + 4 * PAGE, 12 * PAGE, MADV_DONTFORK);
    p.fork().exit(); // pages 0-3 lose PageAnonExclusive, 4-15 keep it
    p.madvise(a + 4 * PAGE, 12 * PAGE, MADV_DOFORK);
    const pin = p.pinUserPages(a + 8 * PAGE, 1, FOLL_PIN | FOLL_LONGTERM);
    const before = k.counters().forkCopies;
    const c = p.fork();
    expect(k.counters().forkCopies - before).toBe(12);
    for (let i = 0; i < NR; i++) expect(c.pfnAt(a + i * PAGE) === pfn + i).toBe(i < 4);
    p.write(a + 8 * PAGE, 5);
    expect([pin.read(0), c.read(a + 8 * PAGE)]).toEqual([5, 108]);
    pin.release();
  });

  it("fork of a folio shared page by page: a later fork after a COW keeps per-subpage PageAnonExclusive", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const c = p.fork();
    for (let i = 0; i < NR; i++) expect(k.ops.PageAnonExclusive(pfn + i)).toBe(false);
    // an R/O pin of a shared subpage unshares just that page (gup_must_unshare() per page)
    const pin = c.pinUserPages(a + 4 * PAGE, 1, FOLL_PIN | FOLL_LONGTERM);
    expect(c.pfnAt(a + 4 * PAGE)).not.toBe(pfn + 4);
    expect(p.pfnAt(a + 4 * PAGE)).toBe(pfn + 4);
    expect(k.counters().unshareCopies).toBe(1);
    expect(k.ops.folioPincount(pfn)).toBe(0);
    pin.release();
  });

  it("MADV_DONTNEED of part of a folio: counters exact, the folio queued once; the shrinker splits it and frees the rest", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    const free = k.core.freePages();
    p.madvise(a + 4 * PAGE, 8 * PAGE, MADV_DONTNEED);
    expect(folioAt(k, pfn)).toMatchObject({ order: 4, refcount: 8, mapcount: 8, nrPagesMapped: 8, partiallyMapped: true });
    expect(k.core.freePages()).toBe(free);
    expect(k.mthpStats()["64K"].split_deferred).toBe(1);
    p.madvise(a + 12 * PAGE, PAGE, MADV_DONTNEED);
    expect(k.mthpStats()["64K"].split_deferred).toBe(1);
    expect(k.deferredSplitScan()).toBe(9);
    expect(k.core.freePages()).toBe(free + 9);
    expect(k.mthpStats()["64K"].split).toBe(1);
    for (const i of [0, 3, 13, 15]) {
      expect(folioAt(k, pfn + i)).toMatchObject({ folio: pfn + i, order: 0, refcount: 1, mapcount: 1 });
      expect(k.ops.PageAnonExclusive(pfn + i)).toBe(true);
      expect(p.read(a + i * PAGE)).toBe(100 + i);
    }
    expect(p.read(a + 4 * PAGE)).toBe(0);
    expect(k.deferredSplitScan()).toBe(0);
  });

  it("a queued folio the shrinker cannot split now stays queued: a later pass splits it", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    p.madvise(a + 4 * PAGE, 8 * PAGE, MADV_DONTNEED);
    const pipe = p.vmsplice(a, PAGE); // a reference beyond the mappings: can_split_folio() fails
    expect(k.deferredSplitScan()).toBe(0);
    expect(folioAt(k, pfn)).toMatchObject({ order: 4, partiallyMapped: true });
    expect(k.deferredSplitScan()).toBe(0);
    pipe.release();
    expect(k.deferredSplitScan()).toBe(8);
    expect(folioAt(k, pfn)).toMatchObject({ folio: pfn, order: 0 });
    expect(k.deferredSplitScan()).toBe(0);
  });

  it("a zap across folios queues each folio it leaves partly mapped, not one it unmaps whole", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < 3 * NR; i++) p.write(a + i * PAGE, i + 1);
    const [f0, f1, f2] = [0, 1, 2].map((i) => p.pfnAt(a + i * NR * PAGE)!);
    p.madvise(a + 8 * PAGE, 36 * PAGE, MADV_DONTNEED);
    expect([f0, f2].map((f) => folioAt(k, f!).partiallyMapped)).toEqual([true, true]);
    expect(k.ops.pageTestFlag(f1!, C.PG_buddy)).toBe(true); // unmapped in one batch: freed whole
    expect(k.mthpStats()["64K"].split_deferred).toBe(2);
    expect(k.deferredSplitScan()).toBe(8 + 12);
  });

  it("munmap of the whole folio in one batch frees it without queueing it", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const free = k.core.freePages();
    p.munmap(a, NR * PAGE);
    expect(k.core.freePages()).toBe(free + NR);
    expect(k.mthpStats()["64K"].split_deferred).toBe(0);
  });

  it("partial mremap and mprotect need no split: the halves stay one folio, counters exact", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    const to = BASE + 4096 * K;
    p.mremap(a + 8 * PAGE, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    p.mprotect(a, 4 * PAGE, PROT_READ);
    expect(p.pfnAt(to)).toBe(pfn + 8);
    expect(folioAt(k, pfn)).toMatchObject({ order: 4, refcount: NR, mapcount: NR, partiallyMapped: false });
    expect(p.read(to + PAGE)).toBe(109);
    p.write(to, 5);
    expect(p.read(to)).toBe(5);
    expect(k.counters().wpFaults).toBe(0);
    expect(() => p.write(a, 1)).toThrow(/EFAULT/);
  });
});

describe("split_folio() (split_huge_page_to_list_to_order())", () => {
  it("refuses a pinned or referenced folio, changing nothing (can_split_folio()); splits once released", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const pin = p.pinUserPages(a + PAGE, 1, FOLL_PIN);
    expect(k.splitHugePages(p.pid, a, a + NR * PAGE)).toEqual({ found: 1, split: 0, freed: 0 });
    expect(k.mthpStats()["64K"].split_failed).toBe(1);
    expect(folioAt(k, pfn)).toMatchObject({ order: 4, refcount: NR + 1 });
    pin.release();
    const ref = p.vmsplice(a, PAGE);
    expect(k.splitHugePages(p.pid, a, a + NR * PAGE).split).toBe(0);
    expect(ref.read()).toEqual([1]);
    expect(k.splitHugePages(p.pid, a, a + NR * PAGE)).toEqual({ found: 1, split: 1, freed: 0 });
    for (let i = 0; i < NR; i++) expect(folioAt(k, pfn + i)).toMatchObject({ folio: pfn + i, order: 0, refcount: 1, mapcount: 1 });
    expect(k.mthpStats()["64K"]).toMatchObject({ split: 1, split_failed: 2 });
  });

  it("a folio shared with a child splits into pages mapped twice, each keeping its PageAnonExclusive", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const c = p.fork();
    c.write(a + PAGE, 2); // the child's copy; page 1 now maps once (the parent)
    expect(k.splitHugePages(p.pid, a, a + NR * PAGE).split).toBe(1);
    expect(folioAt(k, pfn)).toMatchObject({ order: 0, refcount: 2, mapcount: 2 });
    expect(folioAt(k, pfn + 1)).toMatchObject({ order: 0, refcount: 1, mapcount: 1 });
    // the parent's page 1 is its own now: a write reuses it (order 0, exclusive or not)
    p.write(a + PAGE, 3);
    expect(k.counters().reuses).toBe(1);
    expect([p.read(a), c.read(a), p.read(a + PAGE), c.read(a + PAGE)]).toEqual([1, 1, 3, 2]);
  });

  it("bad input: a range that is not page-aligned is EINVAL", () => {
    const { k, p, a } = mthpKernel();
    expect(() => k.splitHugePages(p.pid, a + 1, a + PAGE)).toThrow(/EINVAL/);
  });
});

describe("reclaim of large folios", () => {
  it("MADV_PAGEOUT: no swap cluster (THP_SWAP) — split, swap out every page (swpout_fallback); swap-in as small pages", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const free = k.core.freePages();
    const out = p.madvise(a, NR * PAGE, MADV_PAGEOUT);
    void out;
    expect(k.core.freePages()).toBe(free + NR);
    expect(p.rss()).toMatchObject({ anon: 0, swap: NR });
    expect(k.mthpStats()["64K"]).toMatchObject({ swpout: 0, swpout_fallback: 1, split: 1 });
    expect(p.read(a + 7 * PAGE)).toBe(107);
    expect(folioAt(k, p.pfnAt(a + 7 * PAGE)!).order).toBe(0);
    expect(p.pfnAt(a + 8 * PAGE)).toBeNull();
  });

  it("each swap entry remembers its page's exclusivity (SWP_EXCLUSIVE): a write after swap-in reuses it", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    p.madvise(a, NR * PAGE, MADV_PAGEOUT);
    const entries = k.pagemap(p.mm, a, a + NR * PAGE);
    expect(entries.map((r) => r.kind & 0xff)).toEqual(new Array(NR).fill(C.PTE_KIND_SWAP));
    for (const r of entries) expect(r.aux & (1 << C._PAGE_BIT_SWP_EXCLUSIVE)).not.toBe(0);
    p.write(a + 3 * PAGE, 7);
    expect(k.counters()).toMatchObject({ swapins: 1, copies: 0, wpFaults: 0 });
    expect(k.ops.PageAnonExclusive(p.pfnAt(a + 3 * PAGE)!)).toBe(true);
  });

  it("MADV_PAGEOUT of part of a folio splits it and reclaims just those pages", () => {
    const { k, p, a } = mthpKernel();
    for (let i = 0; i < NR; i++) p.write(a + i * PAGE, 100 + i);
    const pfn = p.pfnAt(a)!;
    p.madvise(a + 4 * PAGE, 4 * PAGE, MADV_PAGEOUT);
    expect(p.rss()).toMatchObject({ anon: NR - 4, swap: 4 });
    expect(k.mthpStats()["64K"]).toMatchObject({ split: 1, swpout_fallback: 0 });
    expect(folioAt(k, pfn + 8)).toMatchObject({ folio: pfn + 8, order: 0, mapcount: 1 });
    expect([p.read(a + 3 * PAGE), p.read(a + 4 * PAGE), p.read(a + 8 * PAGE)]).toEqual([103, 104, 108]);
  });

  it("a folio another process maps (folio_likely_mapped_shared()) is left alone by MADV_PAGEOUT", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    p.fork();
    const free = k.core.freePages();
    p.madvise(a, NR * PAGE, MADV_PAGEOUT);
    expect(k.core.freePages()).toBe(free);
    expect(k.mthpStats()["64K"].swpout_fallback).toBe(0);
  });

  it("memory pressure: the deferred split shrinker frees unmapped parts before anything is swapped", () => {
    const k = kernel("anon-exclusive", { thp: ONLY_64K, memory: "1M", swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(BASE, 2048 * K, RW, PRIV | MAP_FIXED);
    let n = 0;
    // fill memory folio by folio, dropping 15 of every 16 pages: each drop queues a folio
    try {
      for (; n < 32; n++) {
        p.write(a + n * NR * PAGE, n + 1);
        p.madvise(a + (n * NR + 1) * PAGE, (NR - 1) * PAGE, MADV_DONTNEED);
      }
    } catch (e) {
      throw new Error(`write ${n}: ${String(e)}`);
    }
    for (let i = 0; i < 32; i++) expect(p.read(a + i * NR * PAGE)).toBe(i + 1);
    expect(k.mthpStats()["64K"].split).toBeGreaterThan(0);
    expect(p.rss().swap).toBe(0);
  });
});

describe("GUP on subpages of a large folio", () => {
  it("a R/O GUP-fast pin of a shared subpage backs off (gup_must_unshare(), B5); the slow path unshares that page alone", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const c = p.fork();
    const pin = p.pinUserPages(a + 6 * PAGE, 1, FOLL_PIN | FOLL_LONGTERM, true);
    expect(k.counters()).toMatchObject({ gupFastPages: 0, gupSlowPages: 1, unshareCopies: 1 });
    expect(p.pfnAt(a + 6 * PAGE)).not.toBe(pfn + 6);
    expect(c.pfnAt(a + 6 * PAGE)).toBe(pfn + 6);
    expect(folioAt(k, pfn)).toMatchObject({ mapcount: 2 * NR - 1, nrPagesMapped: NR });
    pin.release();
  });

  it("pins are exact in _pincount, one reference each (try_grab_folio()); GUP-fast too", () => {
    const { k, p, a } = mthpKernel();
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const slow = p.pinUserPages(a, 3, FOLL_PIN, false);
    const fast = p.pinUserPages(a + 8 * PAGE, 2, FOLL_PIN, true);
    expect(k.ops.folioPincount(pfn)).toBe(5);
    expect(folioAt(k, pfn).refcount).toBe(NR + 5);
    expect(k.core.vmstat().GUP_FAST_PINNED).toBeGreaterThanOrEqual(2);
    slow.release();
    fast.release();
    expect(k.ops.folioPincount(pfn)).toBe(0);
    expect(folioAt(k, pfn).refcount).toBe(NR);
    void C;
  });
});
