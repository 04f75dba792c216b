// The bench's workloads at their small size under each strategy: exact counts, each explained.
// A row is a function of its job, so these are what `cowsim bench --size small` prints.
import { describe, expect, it } from "vitest";
import { runJob, timeless, type BenchJob } from "../../src/bench/run.js";
import type { BenchMetrics } from "../../src/bench/result.js";
import { WORKLOADS, programToText } from "../../src/workloads/index.js";
import { jobProgram } from "../../src/bench/run.js";

const STRATEGIES = ["mapcount", "pagecount", "anon-exclusive"] as const;
type Expected = Pick<BenchMetrics, "copies" | "reuses" | "necessaryCow" | "unnecessaryCow" | "missedCow" | "wrongCow" | "faults" | "framesPeak"
  | "swapOuts" | "swapIns" | "gupPages" | "gupFailures" | "incoherentPins">;

const run = (workload: string, strategy: string, extra: Partial<BenchJob> = {}) => runJob({ workload, size: "small", seed: 1, strategy, ...extra });
const pick = (m: BenchMetrics): Expected => ({
  copies: m.copies, reuses: m.reuses, necessaryCow: m.necessaryCow, unnecessaryCow: m.unnecessaryCow, missedCow: m.missedCow, wrongCow: m.wrongCow,
  faults: m.faults, framesPeak: m.framesPeak, swapOuts: m.swapOuts, swapIns: m.swapIns, gupPages: m.gupPages, gupFailures: m.gupFailures,
  incoherentPins: m.incoherentPins,
});
const none = { unnecessaryCow: 0, missedCow: 0, wrongCow: 0, swapOuts: 0, swapIns: 0, gupPages: 0, gupFailures: 0, incoherentPins: 0 };

describe("fork-snapshot (small: 64 pages, 4 chunks, 16 writes during the scan and 16 after)", () => {
  // No pins, no swap: the three rules agree. The heap is populated by 64 write faults (anon). During
  // the scan the parent's 16 Zipf draws hit 11 distinct pages the child still shares: 11 copies
  // (wp_page_copy(), necessary: the child reads them). After the child exits, the 16 draws find 7
  // pages still mapped R/O since the fork and mapped by nobody else: 7 reuses. wp = 11 + 7.
  // Frames at most: 64 + 11 copies.
  for (const strategy of STRATEGIES) {
    it(strategy, () => {
      expect(pick(run("fork-snapshot", strategy).metrics)).toEqual({
        ...none, copies: 11, reuses: 7, necessaryCow: 11, faults: { anon: 64, wp: 18 }, framesPeak: 75,
      });
    });
  }
});

describe("fork-snapshot of a 4 MiB heap: THP enabled madvise (the bench's default) against always (a variant)", () => {
  const four = (strategy: string, thp?: "always") => {
    const m = run("fork-snapshot", strategy, { params: { heapPages: 1024 }, ...(thp ? { thp } : {}) }).metrics;
    return { copies: m.copies, reuses: m.reuses, unnecessaryCow: m.unnecessaryCow, faults: m.faults };
  };
  it("madvise: small pages, the three rules agree (139 copies during the scan, 81 reuses after)", () => {
    for (const s of STRATEGIES) expect(four(s), s).toEqual({ copies: 139, reuses: 81, unnecessaryCow: 0, faults: { anon: 1024, wp: 220 } });
  });
  it("always: two PMD THPs, split at the first shared write; pagecount and 6.12 then copy what they could reuse", () => {
    // After the child exits, each of the parent's pages is an exclusive page of a PTE-mapped THP.
    // mapcount reuses it (page_mapcount() 1); 5.9+'s rules never reuse a page of a large folio
    // (wp_can_reuse_anon_folio(): folio_test_large() — 6.12 gives the folio back sooner instead):
    // the 81 reuses become unnecessary copies.
    expect(four("mapcount", "always")).toEqual({ copies: 139, reuses: 81, unnecessaryCow: 0, faults: { thp: 2, thpWp: 2, wp: 220 } });
    for (const s of ["pagecount", "anon-exclusive"]) {
      expect(four(s, "always"), s).toEqual({ copies: 220, reuses: 0, unnecessaryCow: 81, faults: { thp: 2, thpWp: 2, wp: 220 } });
    }
  });
});

describe("pinned-rdma-fork (small: 32 heap pages, 2 memory regions of 8 pinned pages, 3 workers writing 16 heap pages each)", () => {
  // Every strategy: the workers' 3 × 16 heap draws hit 37 distinct (worker, page) pairs, each an
  // ordinary COW in the child (necessary). The 16 pinned pages are pinned once (gupPages 16).
  it("mapcount: the parent's write after the first fork copies away from the pins (16 wrong COWs, 48 incoherent DMA reads)", () => {
    // ≤ 5.7 shares pinned pages with the child; the parent's next write to its memory regions
    // finds mapcount 2 and copies: 16 pages × 3 rounds = 48 copies. The first round's 16 leave the
    // pins on pages the parent no longer maps — wrong COWs; later rounds copy pages no pin holds
    // (necessary: 37 + 32 = 69). The device then reads 16 stale pages a round: 48 incoherent.
    // Frames: the pinned originals stay besides the parent's copies (92 against 78).
    expect(pick(run("pinned-rdma-fork", "mapcount").metrics)).toEqual({
      ...none, copies: 85, reuses: 0, necessaryCow: 69, wrongCow: 16, faults: { anon: 48, wp: 85 }, framesPeak: 92, gupPages: 16, incoherentPins: 48,
    });
  });
  for (const strategy of ["pagecount", "anon-exclusive"]) {
    it(`${strategy}: fork copies the pinned pages for the child, the parent keeps them writable`, () => {
      // 5.9's early COW (70e806e4e645) and 5.19's failing page_try_dup_anon_rmap(): each fork copies
      // the 16 maybe-pinned pages into the child (3 × 16 = 48 fork copies, in `copies`, not judged
      // by the oracle as they are no fault); the parent's writes to its regions never fault.
      expect(pick(run("pinned-rdma-fork", strategy).metrics)).toEqual({
        ...none, copies: 85, reuses: 0, necessaryCow: 37, faults: { anon: 48, wp: 37 }, framesPeak: 78, gupPages: 16,
      });
    });
  }
});

describe("iouring-pressure (small: 8 pinned buffer pages, 48 bulk pages, 3 rounds reclaiming 32 pages and reading 12 back)", () => {
  // 3 rounds × 32 pages reclaimed = 96 pages swapped out and freed under every strategy; the 12
  // bulk pages read back each round come in read-only, and the next round's bulk write faults on them.
  it("mapcount: the pinned buffers are unmapped too, but stay in the swap cache, so no COW goes wrong", () => {
    // ≤ 5.8 lets reclaim unmap a pinned page (no page_maybe_dma_pinned() test): 16 times over the
    // rounds a buffer page is written to swap but kept, as the pin's reference stops its freeing,
    // and the buffer write maps the same page back from the swap cache (reuse_swap_page():
    // mapcount 0 + swap count 1) — coherent, at the price of 16 swap faults. Swap-ins 88 = 16 of
    // those + 72 bulk pages; the 16 wp faults are bulk pages read back R/O, then reused.
    expect(pick(run("iouring-pressure", "mapcount").metrics)).toEqual({
      ...none, copies: 0, reuses: 16, necessaryCow: 0, faults: { anon: 56, swap: 88, wp: 16 }, framesPeak: 56, swapOuts: 96, swapIns: 88, gupPages: 8,
    });
  });
  it("pagecount: 13 unnecessary COWs — the swap cache's reference makes page_count() 2", () => {
    // 09854ba94c6a reuses only at page_count() == 1: a bulk page read back from swap is mapped
    // R/O and stays in the swap cache, whose reference makes the next round's write copy although
    // no one else maps it (53a05ad9f21d, 5.18, fixed it: the swapcacheReuse knob, below). The
    // buffers stay mapped (feb889fb40fa: reclaim leaves maybe-pinned pages alone).
    expect(pick(run("iouring-pressure", "pagecount").metrics)).toEqual({
      ...none, copies: 13, reuses: 0, necessaryCow: 0, unnecessaryCow: 13, faults: { anon: 56, swap: 71, wp: 13 }, framesPeak: 56, swapOuts: 96, swapIns: 71, gupPages: 8,
    });
  });
  it("pagecount with swapcacheReuse (5.18): the copies become reuses", () => {
    // and the pages reclaim finds on the LRU are those mapcount finds: 16 read-backs reused, as there
    const m = run("iouring-pressure", "pagecount", { knobs: { swapcacheReuse: true } }).metrics;
    expect([m.copies, m.unnecessaryCow, m.reuses]).toEqual([0, 0, 16]);
  });
  it("anon-exclusive: swap entries remember exclusivity, so nothing faults twice", () => {
    // 1493a1913e34: do_swap_page() maps a page writable when pte_swp_exclusive() — the read-backs
    // included — so the next round's writes take no wp fault at all.
    expect(pick(run("iouring-pressure", "anon-exclusive").metrics)).toEqual({
      ...none, copies: 0, reuses: 0, necessaryCow: 0, faults: { anon: 56, swap: 72 }, framesPeak: 56, swapOuts: 96, swapIns: 72, gupPages: 8,
    });
  });
});

describe("vmsplice-server (small: 16 buffer pages, 12 requests, every 4th answered by a forked helper)", () => {
  // 28 pages spliced in all (gupPages); every fork write-protects the buffer, so the parent's next
  // writes fault (13 wp faults under every strategy).
  it("mapcount: a missed COW — the helper's pipe shows the parent's later write (CVE-2020-29374)", () => {
    // The helper spliced a run, dropped its mapping (MADV_DONTNEED) and read its pipe after the
    // parent's write: the parent, now the only mapper (mapcount 1), reused the page, and the pipe
    // read the parent's new data on 1 page. 6 of the 13 wp faults reuse.
    expect(pick(run("vmsplice-server", "mapcount").metrics)).toEqual({
      ...none, copies: 7, reuses: 6, necessaryCow: 7, missedCow: 1, faults: { anon: 16, wp: 13 }, framesPeak: 20, gupPages: 28,
    });
  });
  for (const strategy of ["pagecount", "anon-exclusive"]) {
    it(`${strategy}: the pipes' references make those writes copy (11 copies, 2 reuses)`, () => {
      // page_count() counts the pipe buffers' references (09854ba94c6a), and a page vmsplice took is
      // no longer PageAnonExclusive after the fork: 4 of mapcount's reuses become copies, the missed one among them.
      expect(pick(run("vmsplice-server", strategy).metrics)).toEqual({
        ...none, copies: 11, reuses: 2, necessaryCow: 11, faults: { anon: 16, wp: 13 }, framesPeak: 21, gupPages: 28,
      });
    });
  }
});

describe("thp-heavy (small: 2 THPs, 3 writes per THP per side after fork, a 32-page heap of 64K mTHPs)", () => {
  // The same under every strategy: 2 PMD THP faults and 2 64K folio faults populate. After the
  // fork the first write by each side to each shared THP goes to do_huge_pmd_wp_page(), which
  // splits the PMD (4 thpWp faults) and the write is retried on the PTE: 3 × 2 × 2 = 12 copies of
  // 4 KiB pages, never of 2 MiB. The child's 32 writes to the mTHP heap copy 4 KiB each (6.12's
  // wp_page_copy() copies one page of a large folio): 12 + 32 = 44. Frames: 1024 + 32 + 44.
  for (const strategy of STRATEGIES) {
    it(strategy, () => {
      expect(pick(run("thp-heavy", strategy).metrics)).toEqual({
        ...none, copies: 44, reuses: 0, necessaryCow: 44, faults: { anon: 2, thp: 2, thpWp: 4, wp: 44 }, framesPeak: 1100,
      });
    });
  }
});

describe("uffd-gc (small: 32 pages, 2 collections moving the live half, the mutator writing half of it under uffd-wp)", () => {
  // UFFDIO_MOVE takes exclusive pages without copying (0 copies anywhere). The mutator's first
  // write to each write-protected page raises a uffd-wp fault (10 over both cycles), and the
  // snapshotter lifts the protection.
  for (const strategy of ["mapcount", "pagecount"]) {
    it(`${strategy}: the lifted protection leaves the PTE read-only, so each write faults again and reuses`, () => {
      expect(pick(run("uffd-gc", strategy).metrics)).toEqual({
        ...none, copies: 0, reuses: 10, necessaryCow: 0, faults: { anon: 32, "uffd-wp": 10, wp: 10 }, framesPeak: 32,
      });
    });
  }
  it("anon-exclusive: lifting it maps an exclusive page writable at once (no second fault)", () => {
    // uffd_wp_range() resolving with MM_CP_TRY_CHANGE_WRITABLE: can_change_pte_writable() allows an
    // exclusive anonymous page.
    expect(pick(run("uffd-gc", "anon-exclusive").metrics)).toEqual({
      ...none, copies: 0, reuses: 0, necessaryCow: 0, faults: { anon: 32, "uffd-wp": 10 }, framesPeak: 32,
    });
  });
});

describe("random-mix (small: 60 random steps over 4 regions of 8 pages)", () => {
  it("counts per strategy", () => {
    // No finding but pagecount's: its 2 unnecessary copies are of pages the swap cache (the mix
    // pages out and reclaims) still references — the iouring-pressure effect at random. 31
    // pages swapped out, 29 faulted back under every strategy; 19 pages pinned or spliced.
    const rows = STRATEGIES.map((s) => pick(run("random-mix", s).metrics));
    const common = { ...none, swapOuts: 31, swapIns: 29, gupPages: 19 };
    expect(rows).toEqual([
      { ...common, copies: 10, reuses: 4, necessaryCow: 10, faults: { anon: 34, swap: 29, wp: 14 }, framesPeak: 40 },
      { ...common, copies: 14, reuses: 1, necessaryCow: 11, unnecessaryCow: 2, faults: { anon: 34, swap: 29, wp: 14 }, framesPeak: 41 },
      { ...common, copies: 11, reuses: 1, necessaryCow: 10, faults: { anon: 34, swap: 29, wp: 11 }, framesPeak: 41 },
    ]);
  });
});

describe("bench rows", () => {
  it("two runs of a job give the same row, times aside", () => {
    const job: BenchJob = { workload: "vmsplice-server", size: "small", seed: 3, strategy: "mapcount" };
    const a = runJob(job);
    const b = runJob(job);
    expect(timeless(a)).toEqual(timeless(b));
    expect(a.timeline.length).toBeGreaterThan(1);
    expect(a.timeline.at(-1)!.step).toBe(jobProgram(job).steps.length - 1);
  });

  it("a timeline has at most 200 points, the last step's among them", () => {
    const row = run("vmsplice-server", "anon-exclusive", { params: { requests: 400 } });
    expect(row.timeline.length).toBeLessThanOrEqual(200);
    expect(row.timeline.at(-1)!.copies).toBe(row.metrics.copies);
  });

  it("every workload's program is deterministic, and its text too", () => {
    for (const w of WORKLOADS) {
      const job: BenchJob = { workload: w.name, size: "small", seed: 7, strategy: "mapcount" };
      expect(programToText(jobProgram(job))).toBe(programToText(jobProgram(job)));
    }
  });

  it("bad jobs are EINVAL naming what is known", () => {
    expect(() => run("no-such", "mapcount")).toThrow(/unknown workload "no-such" \(known: fork-snapshot/);
    expect(() => run("fork-snapshot", "mapcount", { params: { heapPages: 0 } })).toThrow(/heapPages=0 is outside 1…∞/);
    expect(() => run("fork-snapshot", "nope")).toThrow(/unknown strategy "nope"/);
  });
});
