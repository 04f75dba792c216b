// The strategies' do_huge_pmd_wp_page() rules (thpWpReuse) one by one, with counts the test
// sets, and a custom strategy without one (the kernel splits and lets wpReuse() decide).
import { describe, it, expect } from "vitest";
import {
  createKernel, makeStrategy, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MADV_HUGEPAGE,
  type StrategyMembers, type WpHelpers,
} from "../src/index.js";
import { BUILD } from "./helpers.js";

/** Helpers over counts the test sets; records what the rule called. */
function helpers(refs: number, maps: number, swap = 0) {
  const calls: string[] = [];
  let r = refs;
  const h: WpHelpers = {
    refcount: () => r, mapcount: () => maps, swapcount: () => swap,
    lruAddDrain: () => { calls.push("drain"); },
    freeSwap: () => { calls.push("freeSwap"); r -= 512; return true; },
    trylock: () => { calls.push("lock"); return true; },
    unlock: () => { calls.push("unlock"); },
  };
  return { h, calls };
}
const facts = (exclusive: boolean, swapcache = false) => ({ pfn: 512, exclusive, swapcache, unshare: false });

describe("thpWpReuse", () => {
  it("anon-exclusive (6.12): PageAnonExclusive reuses at once; else only folio_ref_count() == 1 under the lock, after the swap cache goes", () => {
    const s = makeStrategy("anon-exclusive");
    expect(s.thpWpReuse!(facts(true), helpers(3, 2).h)).toMatchObject({ reuse: true, setExclusive: true });
    const shared = helpers(2, 2);
    expect(s.thpWpReuse!(facts(false), shared.h).reuse).toBe(false);
    expect(shared.calls).toEqual(["lock", "unlock"]);
    const cached = helpers(1 + 512, 1);
    expect(s.thpWpReuse!(facts(false, true), cached.h)).toMatchObject({ reuse: true, moveAnon: true, setExclusive: true });
    expect(cached.calls).toEqual(["lock", "freeSwap", "unlock"]);
  });

  it("mapcount and pagecount before 5.18: reuse_swap_page() — the mapcount, not the references", () => {
    for (const id of ["mapcount", "pagecount"] as const) {
      const s = makeStrategy(id);
      // a pipe's references do not count: the vmsplice leak of THPs
      expect(s.thpWpReuse!(facts(false), helpers(5, 1).h).reuse, id).toBe(true);
      expect(s.thpWpReuse!(facts(false), helpers(1, 2).h).reuse, id).toBe(false);
      expect(s.thpWpReuse!(facts(false, true), helpers(1, 1, 1).h).reuse, id).toBe(false);
    }
  });

  it("pagecount with 3bff7e3f1f16 (5.18): page_count() == 1", () => {
    const s = makeStrategy("pagecount", { thpPagecountReuse: true });
    expect(s.thpWpReuse!(facts(false), helpers(5, 1).h).reuse).toBe(false);
    expect(s.thpWpReuse!(facts(true), helpers(2, 1).h).reuse).toBe(false); // no PageAnonExclusive before 5.19
    expect(s.thpWpReuse!(facts(false), helpers(1, 1).h).reuse).toBe(true);
  });

  it("a custom strategy without thpWpReuse: every write to a read-only THP splits it; an ill-shaped answer is named", () => {
    const { thpWpReuse: _t, ...rest } = makeStrategy("anon-exclusive");
    const none: StrategyMembers = { ...rest, id: "no-thp-rule", title: "no THP rule", kernels: "none", commits: [] };
    const run = (strategy: StrategyMembers) => {
      const k = createKernel({ strategy: strategy as never, memory: "16M", build: BUILD, checkInvariants: true });
      const p = k.spawn();
      const a = p.mmap(0x7f0000000000, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      p.madvise(a, 2 << 20, MADV_HUGEPAGE);
      p.write(a, 1);
      p.fork().exit();
      p.write(a, 2);
      return k;
    };
    const k = run(none);
    expect([k.counters().thp_split_pmd, k.counters().thpWpReuses]).toEqual([1, 0]);
    expect(() => run({ ...none, thpWpReuse: () => ({ reuse: 1 }) } as never)).toThrow('thpWpReuse() answered {"reuse":1}');
  });
});
