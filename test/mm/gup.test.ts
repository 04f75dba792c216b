// GUP users under each strategy: the vmsplice cases (CVE-2020-29374), io_uring fixed buffers,
// R/O long-term pins — with the outcome each kernel generation really has.
import { describe, it, expect } from "vitest";
import {
  compareStrategies, PROT_READ, MADV_PAGEOUT, C, type Kernel, type StrategyId,
} from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";
import { BUILD } from "../helpers.js";

const opts = { build: BUILD, memory: "8M", checkInvariants: true } as const;
const kinds = (k: { findings: readonly { kind: string }[] }) => k.findings.map((f) => f.kind);

describe("CVE-2020-29374: vmsplice() in the child, unmap, the parent writes", () => {
  const steps = (k: Kernel) => {
    const parent = k.spawn();
    const a = parent.mmap(null, PAGE, RW, PRIV);
    parent.write(a, 1);
    const child = parent.fork();
    const pipe = child.vmsplice(a, PAGE);
    child.munmap(a, PAGE);
    parent.write(a, 2);
    return pipe.read(child);
  };

  it("mapcount lets the child read the parent's later write through the pipe: one missed COW", () => {
    const r = compareStrategies(steps, opts);
    expect(r.mapcount.value).toEqual([2]);
    expect(r.mapcount.counters.missedCow).toBe(1);
    expect(r.mapcount.counters.reuses).toBe(1);
    const f = r.mapcount.findings[0]!;
    expect(f.kind).toBe("missed-cow");
    expect(f.chain.map((s) => s.fn)).toEqual(["do_anonymous_page", "dup_mmap", "vmsplice", "do_vmi_munmap", "do_wp_page", "store", "pipe_read"]);
    expect(f.chain.find((s) => s.fn === "do_wp_page")!.what).toMatch(/reuse_swap_page\(\): page_mapcount\(\) 1 \+ swap count 0 = 1 ≤ 1 — reuse/);
    expect(f.chain.at(-1)!.what).toMatch(/shows 2 .* may only show 1/);
  });

  it("pagecount and anon-exclusive copy instead: the pipe keeps the old data", () => {
    const r = compareStrategies(steps, opts);
    for (const s of ["pagecount", "anon-exclusive"] as const) {
      expect(r[s].value).toEqual([1]);
      expect(r[s].counters.missedCow).toBe(0);
      expect(r[s].counters.copies).toBe(1);
      expect(r[s].counters.necessaryCow).toBe(1); // the pipe observes the old page
    }
  });
});

describe("the four vmsplice cases of the kernel's COW selftest (tools/testing/selftests/mm/cow.c)", () => {
  /** Leaks: what the pipe shows differs from the data spliced. */
  const cases: Record<string, (k: Kernel) => number[]> = {
    "vmsplice() + unmap in child": (k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const c = p.fork(); const pipe = c.vmsplice(a, PAGE); c.munmap(a, PAGE);
      p.write(a, 2); return pipe.read(c);
    },
    "vmsplice() + unmap in child with mprotect() optimization": (k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const c = p.fork(); const pipe = c.vmsplice(a, PAGE); c.munmap(a, PAGE);
      p.mprotect(a, PAGE, PROT_READ); p.mprotect(a, PAGE, RW);
      p.write(a, 2); return pipe.read(c);
    },
    "vmsplice() before fork(), unmap in parent after fork()": (k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const pipe = p.vmsplice(a, PAGE); const c = p.fork(); p.munmap(a, PAGE);
      c.write(a, 2); c.exit(); return pipe.read(p);
    },
    "vmsplice() + unmap in parent after fork()": (k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const c = p.fork(); const pipe = p.vmsplice(a, PAGE); p.munmap(a, PAGE);
      c.write(a, 2); c.exit(); return pipe.read(p);
    },
  };
  // every one leaks under mapcount (≤ 5.7) and none since 5.9
  const expected: Record<StrategyId, number[]> = { mapcount: [2], pagecount: [1], "anon-exclusive": [1] };

  it.each(Object.keys(cases))("%s", (name) => {
    const r = compareStrategies(cases[name]!, opts);
    for (const s of STRATEGIES) {
      expect(r[s].error, s).toBeUndefined();
      expect(r[s].value, s).toEqual(expected[s]);
      expect(r[s].counters.missedCow, s).toBe(s === "mapcount" ? 1 : 0);
    }
  });
});

describe("io_uring fixed buffers (FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM)", () => {
  it("fork with the buffer registered, then the parent writes: only mapcount loses coherence", () => {
    const r = compareStrategies((k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const buf = p.ioUringRegisterBuffers(a, PAGE);
      const c = p.fork();
      p.write(a, 2);
      const seen = buf.readFixed(0); // IORING_OP_WRITE_FIXED: the device reads the buffer
      buf.writeFixed(0, 3); // IORING_OP_READ_FIXED: the device writes it
      const after = [p.read(a), c.read(a)];
      return [seen, ...after];
    }, opts);
    // ≤ 5.7: fork shares the pinned page; the parent's write copies it away from the pin, and
    // the child sees the device's write
    expect(r.mapcount.value).toEqual([1, 2, 3]);
    expect(kinds(r.mapcount)).toEqual(["wrong-cow", "missed-cow"]);
    // 5.9+: fork copies the pinned page for the child; the parent keeps it
    for (const s of ["pagecount", "anon-exclusive"] as const) {
      expect(r[s].value).toEqual([2, 3, 1]);
      expect(r[s].findings).toEqual([]);
      expect(r[s].counters.forkCopies).toBe(1);
    }
  });

  it("the buffer mapped R/O (mprotect with soft-dirty tracking on), then written: pagecount loses coherence", () => {
    const r = compareStrategies((k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const buf = p.ioUringRegisterBuffers(a, PAGE);
      p.mprotect(a, PAGE, PROT_READ);
      p.clearSoftDirty(); // as the selftest does, so mprotect() cannot map it writable again
      p.mprotect(a, PAGE, RW);
      p.write(a, 2);
      return [buf.readFixed(0)];
    }, opts);
    expect(r.mapcount.value).toEqual([2]); // mapcount 1: reused
    expect(r.pagecount.value).toEqual([1]); // page_count() includes the pin: copied
    expect(kinds(r.pagecount)).toEqual(["wrong-cow"]);
    expect(r["anon-exclusive"].value).toEqual([2]); // PageAnonExclusive: reused
    expect(r["anon-exclusive"].counters.reuses).toBe(1);
  });
});

describe("R/O long-term pins (FOLL_PIN | FOLL_LONGTERM), through GUP-fast and the slow path", () => {
  type Variant = "shared" | "previously shared" | "R/O exclusive";
  const ro = C.FOLL_PIN | C.FOLL_LONGTERM;
  const run = (variant: Variant, fast: boolean) => compareStrategies((k) => {
    const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
    if (variant === "shared") p.fork();
    if (variant === "previously shared") p.fork().exit();
    if (variant === "R/O exclusive") p.mprotect(a, PAGE, PROT_READ);
    const pin = p.pinUserPages(a, 1, ro, fast);
    if (variant === "R/O exclusive") p.mprotect(a, PAGE, RW);
    p.write(a, 2);
    return [pin.read(0)];
  }, opts);

  // does the pin see the process's write? (cow.c: "Longterm R/O pin is reliable")
  const reliable: Record<Variant, Record<StrategyId, boolean>> = {
    "shared": { mapcount: false, pagecount: false, "anon-exclusive": true },
    "previously shared": { mapcount: true, pagecount: false, "anon-exclusive": true },
    "R/O exclusive": { mapcount: true, pagecount: false, "anon-exclusive": true },
  };

  for (const fast of [true, false]) {
    for (const variant of Object.keys(reliable) as Variant[]) {
      it(`${variant} page, ${fast ? "pin_user_pages_fast()" : "pin_user_pages()"}`, () => {
        const r = run(variant, fast);
        for (const s of STRATEGIES) {
          expect(r[s].error, s).toBeUndefined();
          expect(r[s].value, s).toEqual([reliable[variant][s] ? 2 : 1]);
          expect(kinds(r[s]), s).toEqual(reliable[variant][s] ? [] : ["wrong-cow"]);
          if (!fast) expect(r[s].counters.gupFastPages, s).toBe(0);
        }
        // anon-exclusive unshares a possibly shared page before pinning it R/O
        if (variant !== "R/O exclusive") expect(r["anon-exclusive"].counters.unshareCopies + r["anon-exclusive"].counters.unshareReuses).toBe(1);
      });
    }
  }

  it("GUP-fast takes an exclusive page itself, and backs off to the slow path for a shared one", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    p.pinUserPages(a, 1, ro).release();
    expect(k.counters().gupFastPages).toBe(1);
    p.fork();
    p.pinUserPages(a + PAGE, 1, ro);
    expect(k.counters().gupSlowPages).toBe(1);
  });
});

describe("pins and swap", () => {
  it("a pinned page survives an attempted swap-out under anon-exclusive and pagecount (5.11+)", () => {
    const r = compareStrategies((k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      const pfn = p.pfnAt(a);
      const buf = p.ioUringRegisterBuffers(a, PAGE);
      p.madvise(a, PAGE, MADV_PAGEOUT);
      const stillMapped = p.pfnAt(a) === pfn;
      p.write(a, 2);
      return [stillMapped ? 1 : 0, buf.readFixed(0), p.rss().swap];
    }, opts);
    expect(r["anon-exclusive"].value).toEqual([1, 2, 0]);
    expect(r.pagecount.value).toEqual([1, 2, 0]);
    // ≤ 5.7 unmaps it into the swap cache; the pin keeps the frame, swap-in maps it back
    expect(r.mapcount.value).toEqual([0, 2, 0]);
    expect(r.mapcount.counters.swapins).toBe(1);
    expect(r.mapcount.findings).toEqual([]);
  });

  it("a swapped-out page comes back exclusive, or not, as each kernel decides", () => {
    const run = (strategy: StrategyId, knobs = {}) => {
      const k = kernel(strategy, { knobs });
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      p.madvise(a, PAGE, MADV_PAGEOUT);
      expect(p.pfnAt(a)).toBeNull();
      expect(p.rss().swap).toBe(1);
      expect(p.read(a)).toBe(1); // a read fault swaps it in
      const pfn = p.pfnAt(a)!;
      const state = { exclusive: k.core.x.PageAnonExclusive(pfn) === 1, swapcache: k.core.x.page_test_flag(pfn, C.PG_swapcache) === 1 };
      const faults = k.counters().wpFaults;
      p.write(a, 2);
      return { ...state, writeFaulted: k.counters().wpFaults > faults, copies: k.counters().copies };
    };
    // 6.x: SWP_EXCLUSIVE brings it back exclusive and writable: the write needs no fault
    expect(run("anon-exclusive")).toEqual({ exclusive: true, swapcache: true, writeFaulted: false, copies: 0 });
    // without the bit, only the count can tell: R/O, and the write fault frees the swap cache and reuses
    expect(run("anon-exclusive", { swapExclusive: false })).toEqual({ exclusive: false, swapcache: true, writeFaulted: true, copies: 0 });
    // ≤ 5.7: read faults map R/O; the write reuses (mapcount 1, swap count 0)
    expect(run("mapcount")).toEqual({ exclusive: false, swapcache: true, writeFaulted: true, copies: 0 });
    // 5.9–5.17: the swap cache's reference makes page_count() 2: an unnecessary copy
    expect(run("pagecount")).toEqual({ exclusive: false, swapcache: true, writeFaulted: true, copies: 1 });
    // 5.18's swap-cache handling frees the cache first and reuses
    expect(run("pagecount", { swapcacheReuse: true })).toEqual({ exclusive: false, swapcache: true, writeFaulted: true, copies: 0 });
  });

  it("a R/O pin taken after swap-in, then a write: the historical wrong COW of pagecount", () => {
    const r = compareStrategies((k) => {
      const p = k.spawn(); const a = p.mmap(null, PAGE, RW, PRIV); p.write(a, 1);
      p.madvise(a, PAGE, MADV_PAGEOUT);
      p.read(a);
      const pin = p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_LONGTERM);
      p.write(a, 2);
      return [pin.read(0)];
    }, opts);
    expect(r.pagecount.value).toEqual([1]);
    expect(kinds(r.pagecount)).toEqual(["wrong-cow"]);
    expect(r.mapcount.value).toEqual([2]);
    expect(r["anon-exclusive"].value).toEqual([2]);
    expect(r["anon-exclusive"].findings).toEqual([]);
  });
});
