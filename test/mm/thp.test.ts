// PMD-mapped THP in the kernel layer: the fault (do_huge_pmd_anonymous_page(), the huge zero
// page), the write fault (do_huge_pmd_wp_page(): reuse or split + PTE copy), fork
// (copy_huge_pmd(), split of a pinned THP), partial munmap / MADV_DONTNEED / mprotect / mremap
// and GUP on PMD leaves, with exact counters.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import {
  MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE, MADV_DONTNEED, MADV_DONTFORK, MADV_PAGEOUT, MAP_FIXED, MAP_POPULATE, PROT_READ, FOLL_PIN, FOLL_LONGTERM, FOLL_WRITE, MREMAP_MAYMOVE,
  MREMAP_FIXED, type Kernel, type Process, type StrategyId,
} from "../../src/index.js";
import { kernel, failsCleanly, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

const M = 1 << 20;
const HP = 2 * M;
const BASE = 0x7f0000000000; // 2 MiB aligned

function thpKernel(strategy: StrategyId = "anon-exclusive", extra: Parameters<typeof kernel>[1] = {}): Kernel {
  return kernel(strategy, { memory: "32M", ...extra });
}

/** A process with `len` bytes of anonymous memory at BASE, MADV_HUGEPAGE'd. */
function thpProcess(k: Kernel, len = 2 * HP): Process {
  const p = k.spawn();
  p.mmap(BASE, len, RW, PRIV | MAP_FIXED);
  p.madvise(BASE, len, MADV_HUGEPAGE);
  return p;
}

const pmdAt = (k: Kernel, p: Process, a: number) => k.ops.hugePmdAt(p.mm, a);
const counters = (k: Kernel) => k.counters();

describe("do_huge_pmd_anonymous_page()", () => {
  it("a write fault maps a fresh exclusive THP by one PMD; every subpage reads zero, then what was written", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE + 5 * PAGE, 42);
    expect(pmdAt(k, p, BASE)).toBe(1);
    const head = p.folioAt(BASE)!;
    expect(p.pfnAt(BASE + 5 * PAGE)).toBe(head + 5);
    expect(k.core.x.folio_order(head)).toBe(9);
    expect(k.ops.folioRefCount(head)).toBe(1);
    expect(k.ops.folioMapcount(head)).toBe(1);
    expect(k.core.x.folio_entire_mapcount(head)).toBe(1);
    expect(k.ops.PageAnonExclusive(head)).toBe(true);
    expect(p.read(BASE + 5 * PAGE)).toBe(42);
    expect(p.read(BASE + 6 * PAGE)).toBe(0);
    expect(counters(k).thp_fault_alloc).toBe(1);
    expect(counters(k).anonFaults).toBe(0);
    expect(p.smaps()[0]!.anonHugePages).toBe(HP);
    expect(p.rss().anon).toBe(512);
  });

  it("a read fault maps the huge zero page once per machine; a write splits it into small zero PTEs and allocates one page", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    expect(p.read(BASE)).toBe(0);
    expect(p.read(BASE + HP + PAGE)).toBe(0);
    const c = counters(k);
    expect([c.thp_zero_page_alloc, c.thp_fault_alloc]).toEqual([1, 0]);
    expect(pmdAt(k, p, BASE)).toBe(1);
    expect(p.smaps()[0]!.anonHugePages).toBe(0);
    p.write(BASE + 3 * PAGE, 7);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(counters(k).thp_split_pmd).toBe(1);
    expect(counters(k).zeroPageCopies).toBe(1);
    expect(p.pfnAt(BASE + 4 * PAGE)).toBe(0); // the small zero page
    expect(p.read(BASE + 3 * PAGE)).toBe(7);
    expect(p.rss().anon).toBe(1);
  });

  it("fork shares the huge zero PMD (copy_huge_pmd()); the child's write splits only its own", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    expect(p.read(BASE)).toBe(0);
    const c = p.fork();
    expect([pmdAt(k, c, BASE), c.read(BASE + 9 * PAGE)]).toEqual([1, 0]);
    expect(c.rss().anon).toBe(0);
    c.write(BASE + 9 * PAGE, 4);
    expect([pmdAt(k, c, BASE), pmdAt(k, p, BASE)]).toEqual([0, 1]);
    expect([c.read(BASE + 9 * PAGE), p.read(BASE + 9 * PAGE)]).toEqual([4, 0]);
    expect(counters(k).thp_zero_page_alloc).toBe(1);
  });

  it("without an aligned 2 MiB inside the VMA, or with THP off, faults stay on small pages", () => {
    const k = thpKernel("anon-exclusive", { thp: { enabled: "madvise" } });
    const p = k.spawn();
    p.mmap(BASE, 2 * HP, RW, PRIV | MAP_FIXED);
    p.write(BASE, 1);
    expect(pmdAt(k, p, BASE)).toBe(0);
    p.madvise(BASE + PAGE, HP, MADV_HUGEPAGE); // [BASE+4K, BASE+2M+4K) holds no aligned 2 MiB
    p.write(BASE + HP, 1);
    expect(pmdAt(k, p, BASE + HP)).toBe(0);
    expect(counters(k).thp_fault_alloc).toBe(0);
  });

  it("no free aligned 2 MiB: THP_FAULT_FALLBACK, and the fault maps a small page", () => {
    // one pageblock, whose first frame is the zero page: no order-9 block is ever free
    const k = thpKernel("anon-exclusive", { memory: "2M" });
    const p = thpProcess(k, HP);
    p.write(BASE, 9);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(counters(k).thp_fault_fallback).toBe(1);
    expect(counters(k).thp_fault_alloc).toBe(0);
    expect(counters(k).anonFaults).toBe(1);
    expect(p.read(BASE)).toBe(9);
    p.write(BASE + PAGE, 1); // the PMD has a PTE table now: no THP fault is tried again
    expect(counters(k).thp_fault_fallback).toBe(1);
  });
});

describe("MAP_POPULATE of THP-eligible memory", () => {
  it("maps every aligned 2 MiB by a PMD and the rest by small pages", () => {
    const k = thpKernel();
    const p = k.spawn();
    // 4 KiB below an aligned 4 MiB, and 4 KiB above it
    p.mmap(BASE - PAGE, 2 * HP + 2 * PAGE, RW, PRIV | MAP_FIXED | MAP_POPULATE);
    expect([pmdAt(k, p, BASE), pmdAt(k, p, BASE + HP)]).toEqual([1, 1]);
    expect(counters(k).thp_fault_alloc).toBe(2);
    // the first small page faults (giving the VMA its anon_vma); the last comes in a batch
    expect(counters(k).anonFaults).toBe(1);
    expect(p.rss().anon).toBe(1024 + 2);
  });
});

describe("do_huge_pmd_wp_page() after fork", () => {
  for (const s of STRATEGIES) {
    it(`${s}: fork shares the PMD; the child's write splits its PMD and copies one subpage; the parent's THP stays whole`, () => {
      const k = thpKernel(s);
      const p = thpProcess(k);
      p.write(BASE, 1);
      const head = p.folioAt(BASE)!;
      const c = p.fork();
      expect(k.core.x.folio_entire_mapcount(head)).toBe(2);
      expect(k.ops.PageAnonExclusive(head)).toBe(false);
      c.write(BASE + PAGE, 2);
      expect(pmdAt(k, c, BASE)).toBe(0);
      expect(pmdAt(k, p, BASE)).toBe(1);
      expect(counters(k).thp_split_pmd).toBe(1);
      expect(counters(k).copies).toBe(1);
      expect(c.read(BASE + PAGE)).toBe(2);
      expect(p.read(BASE + PAGE)).toBe(0);
      expect(c.read(BASE)).toBe(1);
      // the child maps 511 subpages by PTE and one copy; the parent's PMD maps all 512
      expect(k.ops.folioMapcount(head)).toBe(1 + 511);
      expect(k.ops.folioRefCount(head)).toBe(1 + 511);
      expect(k.core.x.folio_entire_mapcount(head)).toBe(1);
      // the parent's write: only its PMD maps what is left… plus the child's PTEs: not reusable
      p.write(BASE + 2 * PAGE, 3);
      expect(pmdAt(k, p, BASE)).toBe(0);
      expect(counters(k).thp_split_pmd).toBe(2);
      expect(c.read(BASE + 2 * PAGE)).toBe(0);
      expect(k.checkInvariants()).toEqual([]);
    });
  }

  it("anon-exclusive: once the child is gone, the parent's write reuses the THP (folio_ref_count() == 1)", () => {
    const k = thpKernel("anon-exclusive");
    const p = thpProcess(k);
    p.write(BASE, 1);
    const c = p.fork();
    c.exit();
    p.write(BASE + PAGE, 2);
    expect(pmdAt(k, p, BASE)).toBe(1);
    expect(counters(k).thpWpReuses).toBe(1);
    expect(k.ops.PageAnonExclusive(p.folioAt(BASE)!)).toBe(true);
    expect(counters(k).thp_split_pmd).toBe(0);
  });
});

describe("partial operations split the PMD first", () => {
  it("munmap of one page: the rest stays mapped by PTEs, subpages keep PageAnonExclusive", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE, 1);
    const head = p.folioAt(BASE)!;
    p.munmap(BASE + 10 * PAGE, PAGE);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(counters(k).thp_split_pmd).toBe(1);
    expect(k.ops.folioMapcount(head)).toBe(511);
    expect(k.ops.folioRefCount(head)).toBe(511);
    expect(k.core.x.folio_entire_mapcount(head)).toBe(0);
    expect(k.ops.PageAnonExclusive(head + 11)).toBe(true);
    expect(p.read(BASE)).toBe(1);
    expect(p.rss().anon).toBe(511);
    p.munmap(BASE, HP);
    expect(k.ops.folioRefCount(head)).toBe(0); // freed whole
  });

  it("MADV_DONTNEED of part zaps only that part; of all of it, the THP goes whole", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE, 1);
    p.write(BASE + HP, 1);
    p.madvise(BASE + PAGE, PAGE, MADV_DONTNEED);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(p.rss().anon).toBe(511 + 512);
    p.madvise(BASE + HP, HP, MADV_DONTNEED);
    expect(pmdAt(k, p, BASE + HP)).toBe(0);
    expect(counters(k).thp_split_pmd).toBe(1);
    expect(p.rss().anon).toBe(511);
  });

  it("mprotect of part makes only those PTEs read-only", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE, 1);
    p.mprotect(BASE, PAGE, PROT_READ);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(() => p.write(BASE, 2)).toThrow(/SIGSEGV/);
    p.write(BASE + PAGE, 2);
    expect(p.read(BASE + PAGE)).toBe(2);
  });

  it("mremap of a whole aligned THP moves its PMD; of part of one, splits it", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE, 1);
    const to = BASE + 8 * HP;
    p.mremap(BASE, HP, HP, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    expect(pmdAt(k, p, to)).toBe(1);
    expect(p.read(to)).toBe(1);
    p.mremap(to + PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 20 * HP);
    expect(pmdAt(k, p, to)).toBe(0);
    expect(p.read(to)).toBe(1);
    expect(counters(k).thp_split_pmd).toBe(1);
  });

  it("MADV_DONTFORK of part splits the VMA and the PMD (vma_adjust_trans_huge())", () => {
    const k = thpKernel();
    const p = thpProcess(k);
    p.write(BASE, 1);
    p.madvise(BASE, PAGE, MADV_DONTFORK);
    expect(pmdAt(k, p, BASE)).toBe(0);
    const c = p.fork();
    expect(c.read(BASE + PAGE)).toBe(0);
    expect(() => c.read(BASE)).toThrow(/SIGSEGV/);
  });
});

describe("GUP and fork of pinned THPs", () => {
  it("a FOLL_PIN of 3 subpages counts 3 in _pincount; fork splits the PMD and copies every subpage for the child (6.12)", () => {
    const k = thpKernel("anon-exclusive");
    const p = thpProcess(k);
    p.write(BASE + PAGE, 5);
    const head = p.folioAt(BASE)!;
    const pin = p.pinUserPages(BASE + PAGE, 3, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    expect(k.ops.folioPincount(head)).toBe(3);
    expect(k.ops.folioRefCount(head)).toBe(1 + 3);
    const c = p.fork();
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(counters(k).thp_split_pmd).toBe(1);
    expect(counters(k).forkCopies).toBe(512);
    expect(c.pfnAt(BASE + PAGE)).not.toBe(head + 1);
    expect(c.read(BASE + PAGE)).toBe(5);
    expect(k.ops.PageAnonExclusive(head + 1)).toBe(true);
    p.write(BASE + PAGE, 6); // still the pinned page
    expect(p.pfnAt(BASE + PAGE)).toBe(head + 1);
    pin.release();
    expect(k.ops.folioPincount(head)).toBe(0);
  });

  it("a R/O pin of a shared THP unshares (anon-exclusive): the PMD is split and the subpage copied", () => {
    const k = thpKernel("anon-exclusive");
    const p = thpProcess(k);
    p.write(BASE, 1);
    const head = p.folioAt(BASE)!;
    const c = p.fork();
    const pin = c.pinUserPages(BASE + PAGE, 1, FOLL_PIN | FOLL_LONGTERM);
    expect(pmdAt(k, c, BASE)).toBe(0);
    expect(c.pfnAt(BASE + PAGE)).not.toBe(head + 1);
    expect(counters(k).unshareCopies).toBe(1);
    pin.release();
  });
});

describe("MADV_COLLAPSE and khugepaged (collapse_huge_page())", () => {
  /** THP off: 512 small pages written 1…512 at BASE. */
  function smallPages(strategy: StrategyId = "anon-exclusive", n = 512): { k: Kernel; p: Process } {
    const k = thpKernel(strategy, { thp: { enabled: "never" } });
    const p = k.spawn();
    p.mmap(BASE, HP, RW, PRIV | MAP_FIXED);
    for (let i = 0; i < n; i++) p.write(BASE + i * PAGE, i + 1);
    return { k, p };
  }

  it("MADV_COLLAPSE copies 512 small pages into a fresh exclusive THP, ignoring sysfs; the old frames go", () => {
    const { k, p } = smallPages();
    const used = k.usedFrames;
    p.madvise(BASE, HP, MADV_COLLAPSE);
    expect(pmdAt(k, p, BASE)).toBe(1);
    const head = p.folioAt(BASE)!;
    expect(k.ops.PageAnonExclusive(head)).toBe(true);
    expect([k.ops.folioRefCount(head), k.ops.folioMapcount(head)]).toEqual([1, 1]);
    expect(p.read(BASE + 77 * PAGE)).toBe(78);
    expect(counters(k).thp_collapse_alloc).toBe(1);
    expect(k.usedFrames).toBe(used); // 512 small frames for one THP; the PTE table is its deposit
    p.write(BASE, 5); // writable at once
    expect(counters(k).wpFaults).toBe(0);
  });

  it("holes read zero after the collapse; an empty PMD is EINVAL (SCAN_PMD_NONE, as 6.12)", () => {
    const { k, p } = smallPages("anon-exclusive", 3);
    p.madvise(BASE, HP, MADV_COLLAPSE);
    expect(p.read(BASE + 2 * PAGE)).toBe(3);
    expect(p.read(BASE + 100 * PAGE)).toBe(0);
    expect(p.rss().anon).toBe(512);
    const q = k.spawn();
    q.mmap(BASE, HP, RW, PRIV | MAP_FIXED);
    failsCleanly(k, "EINVAL", () => q.madvise(BASE, HP, MADV_COLLAPSE));
  });

  it("a pinned page refuses the collapse with EAGAIN (is_refcount_suitable()), changing nothing", () => {
    const { k, p } = smallPages();
    const pin = p.pinUserPages(BASE + 9 * PAGE, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    failsCleanly(k, "EAGAIN", () => p.madvise(BASE, HP, MADV_COLLAPSE));
    pin.release();
    p.madvise(BASE, HP, MADV_COLLAPSE);
    expect(pmdAt(k, p, BASE)).toBe(1);
  });

  it("after fork every PTE is read-only: SCAN_PAGE_RO, EINVAL; MADV_NOHUGEPAGE is EINVAL too", () => {
    const { k, p } = smallPages();
    const c = p.fork();
    failsCleanly(k, "EINVAL", () => p.madvise(BASE, HP, MADV_COLLAPSE));
    c.exit();
    p.madvise(BASE, HP, MADV_NOHUGEPAGE);
    failsCleanly(k, "EINVAL", () => p.madvise(BASE, HP, MADV_COLLAPSE));
  });

  it("a collapse in the parent after fork copies the shared pages too: the child keeps its own", () => {
    const { k, p } = smallPages();
    const c = p.fork();
    p.write(BASE, 100); // one writable, exclusive page makes the range collapsible
    p.madvise(BASE, HP, MADV_COLLAPSE);
    expect(pmdAt(k, p, BASE)).toBe(1);
    p.write(BASE + 5 * PAGE, 999);
    expect(c.read(BASE + 5 * PAGE)).toBe(6);
    expect(p.read(BASE + 5 * PAGE)).toBe(999);
    expect(k.findings).toEqual([]);
  });

  it("khugepaged keeps to the sysfs policy and its limits: max_ptes_none 511, max_ptes_shared 256", () => {
    const k = thpKernel("anon-exclusive", { thp: { enabled: "madvise" } });
    const p = k.spawn();
    p.mmap(BASE, 3 * HP, RW, PRIV | MAP_FIXED);
    p.write(BASE, 1); // not VM_HUGEPAGE: small page, and khugepaged leaves it
    expect(k.khugepaged()).toBe(0);
    p.madvise(BASE, 3 * HP, MADV_HUGEPAGE);
    // a 2 MiB with one page (511 none) collapses, one with none of its pages does not
    expect(k.khugepaged()).toBe(1);
    expect(pmdAt(k, p, BASE)).toBe(1);
    expect(pmdAt(k, p, BASE + HP)).toBe(0);
    // 300 shared pages and one exclusive writable page: too many shared for khugepaged
    const q = k.spawn();
    q.mmap(BASE, HP, RW, PRIV | MAP_FIXED);
    q.madvise(BASE, HP, MADV_NOHUGEPAGE);
    for (let i = 0; i < 301; i++) q.write(BASE + i * PAGE, i);
    q.madvise(BASE, HP, MADV_HUGEPAGE);
    const child = q.fork();
    q.write(BASE + 300 * PAGE, 7);
    expect(k.khugepaged()).toBe(0);
    expect(pmdAt(k, q, BASE)).toBe(0);
    q.madvise(BASE, HP, MADV_COLLAPSE); // MADV_COLLAPSE has no such limit
    expect(pmdAt(k, q, BASE)).toBe(1);
    expect(child.read(BASE + 3 * PAGE)).toBe(3);
  });
});

describe("swap-out of a PMD-mapped THP (no swap cluster: the THP_SWAP fallback)", () => {
  /** A PMD-mapped THP at BASE, every subpage written with 100 + its index. */
  function filledThp(strategy: StrategyId = "anon-exclusive"): { k: Kernel; p: Process; head: number } {
    const k = thpKernel(strategy);
    const p = thpProcess(k, HP);
    for (let i = 0; i < 512; i++) p.write(BASE + i * PAGE, 100 + i);
    return { k, p, head: p.folioAt(BASE)! };
  }

  it("MADV_PAGEOUT of the whole PMD: split_folio_to_list() splits the PMD, then the folio; all 512 pages go to swap", () => {
    const { k, p } = filledThp();
    const free = k.core.freePages();
    p.madvise(BASE, HP, MADV_PAGEOUT);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(k.core.freePages()).toBe(free + 512);
    expect(p.rss()).toMatchObject({ anon: 0, swap: 512 });
    expect(counters(k)).toMatchObject({ thp_split_pmd: 1, pageouts: 512 });
    expect(k.mthpStats()["2M"]).toMatchObject({ swpout: 0, swpout_fallback: 1, split: 1 });
    const entries = k.pagemap(p.mm, BASE, BASE + HP);
    expect(entries.filter((r) => (r.kind & 0xff) === C.PTE_KIND_SWAP && r.aux & (1 << C._PAGE_BIT_SWP_EXCLUSIVE))).toHaveLength(512);
  });

  it("swap-in maps base pages, each exclusive: the write after it reuses the page", () => {
    const { k, p } = filledThp();
    p.madvise(BASE, HP, MADV_PAGEOUT);
    expect(p.read(BASE + 300 * PAGE)).toBe(400);
    const pfn = p.pfnAt(BASE + 300 * PAGE)!;
    expect(k.core.x.folio_order(k.ops.pageFolio(pfn))).toBe(0);
    p.write(BASE + 300 * PAGE, 7);
    expect(p.pfnAt(BASE + 300 * PAGE)).toBe(pfn);
    expect(counters(k)).toMatchObject({ swapins: 1, copies: 0, thp_split_pmd: 1 });
    expect(p.rss()).toMatchObject({ anon: 1, swap: 511 });
  });

  it("MADV_PAGEOUT of part of the PMD splits it and the folio, and reclaims just the pages asked for", () => {
    const { k, p, head } = filledThp();
    p.madvise(BASE + 8 * PAGE, 8 * PAGE, MADV_PAGEOUT);
    expect(pmdAt(k, p, BASE)).toBe(0);
    expect(p.rss()).toMatchObject({ anon: 504, swap: 8 });
    expect(k.mthpStats()["2M"]).toMatchObject({ split: 1, swpout_fallback: 0 });
    expect(p.pfnAt(BASE)).toBe(head);
    expect(k.core.x.folio_order(head)).toBe(0);
    expect([p.read(BASE + 7 * PAGE), p.read(BASE + 8 * PAGE), p.read(BASE + 16 * PAGE)]).toEqual([107, 108, 116]);
  });

  it("a THP shared with a child by fork stays PMD-mapped (folio_likely_mapped_shared()); reclaim splits both PMDs", () => {
    const { k, p } = filledThp();
    const c = p.fork();
    p.madvise(BASE, HP, MADV_PAGEOUT);
    expect([pmdAt(k, p, BASE), pmdAt(k, c, BASE)]).toEqual([1, 1]);
    expect(counters(k).pageouts).toBe(0);
    k.reclaim(512);
    expect([pmdAt(k, p, BASE), pmdAt(k, c, BASE)]).toEqual([0, 0]);
    expect(counters(k)).toMatchObject({ thp_split_pmd: 2, pageouts: 512 });
    expect([p.rss().swap, c.rss().swap]).toEqual([512, 512]);
    c.write(BASE, 1);
    expect([p.read(BASE), c.read(BASE), c.read(BASE + PAGE)]).toEqual([100, 1, 101]);
  });

  it("a pinned THP stays mapped by its PMD under every strategy: the pin is an extra reference (can_split_folio())", () => {
    for (const s of STRATEGIES) {
      const { k, p } = filledThp(s);
      const pin = p.pinUserPages(BASE, 1, FOLL_PIN | FOLL_LONGTERM);
      p.madvise(BASE, HP, MADV_PAGEOUT);
      expect(pmdAt(k, p, BASE), s).toBe(1);
      expect(counters(k), s).toMatchObject({ pageouts: 0, thp_split_pmd: 0 });
      expect(p.rss().swap, s).toBe(0);
      pin.release();
    }
  });
});
