// Fault injection (lib/fault-inject.c, mm/fail_page_alloc.c): each kind fails exactly at the
// attempt it was told to, takes the path of a real exhaustion, is deterministic per seed, lives
// in the shared memory, and is off — one load and one compare — unless armed.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { C, Core, FAIL_KINDS, type FailKind } from "../../src/core/index.js";
import { CowsimError } from "../../src/errno.js";
import { errnoOf, makeCore, snapshot, stateDiff, populate, BASE, GB, PROT_READ } from "../helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const MB2 = 2 ** 21;

describe("off by default", () => {
  it("a fresh machine has no kind armed and injects nothing however much it allocates", () => {
    const core = makeCore({ frames: 1024, swapSlots: 64 });
    for (const k of ["frame", "pageTable", "swapSlot"] as const) {
      expect(core.injectionStatus(k)).toEqual({ armed: false, attempts: 0 });
    }
    const mm = core.mmAlloc();
    for (let i = 0; i < 8; i++) populate(core, mm, BASE + i * GB, 4); // tables and frames
    const pfns = Array.from({ length: 100 }, () => core.allocPages(0));
    const slots = pfns.slice(0, 63).map((pfn) => core.x.add_to_swap(pfn));
    expect(slots.every((s) => s > 0)).toBe(true);
    expect(core.x.add_to_swap(pfns[63]!)).toBe(-C.ENOSPC); // the device is full: a real failure
    expect(core.injectedFailures()).toEqual({ frame: 0, pageTable: 0, swapSlot: 0 });
    expect(core.vmstat().PGALLOC_FAIL).toBe(0);
    for (const k of ["frame", "pageTable", "swapSlot"] as const) expect(core.injectionStatus(k).attempts).toBe(0);
  });

  it("costs one load and one compare: in the release build every check is behind one atomic load", () => {
    const wat = readFileSync(`${root}build/cowsim.release.wat`, "utf8").split("\n");
    const calls = wat.flatMap((l, i) => (l.includes("call $assembly/layout/shouldFailArmed") ? [i] : []));
    // alloc_pages, frames_reserve/pt_reserve (reserveInto), pt_alloc_table, get_swap_slot
    expect(calls).toHaveLength(4);
    for (const i of calls) {
      expect(wat[i - 3]!.trim()).toBe("i32.atomic.load");
      expect(wat[i - 2]!.trim()).toBe("if (result i32)");
    }
  });

  it("the kinds are the ones the ABI names", () => {
    expect(FAIL_KINDS.map((k) => [k.short, k.value])).toEqual([["frame", C.FAIL_FRAME], ["pageTable", C.FAIL_PGTABLE], ["swapSlot", C.FAIL_SWAP_SLOT]]);
  });
});

describe("nth: the nth attempt from now fails, as a real exhaustion would", () => {
  it("frames: for each N, attempts 1 … N-1 succeed, the Nth fails with ENOMEM changing nothing, then it disarms", () => {
    for (let nth = 1; nth <= 5; nth++) {
      const core = makeCore({ frames: 64 });
      core.injectFailure("frame", { nth });
      for (let i = 1; i < nth; i++) core.allocPages(0);
      const before = snapshot(core);
      const fails = core.vmstat().PGALLOC_FAIL!;
      expect(errnoOf(() => core.allocPages(0))).toBe("ENOMEM");
      expect(stateDiff(before, snapshot(core))).toBeNull();
      expect(core.vmstat().PGALLOC_FAIL).toBe(fails + 1); // counted like a real failure
      expect(core.injectedFailures()).toEqual({ frame: 1, pageTable: 0, swapSlot: 0 });
      expect(core.injectionStatus("frame")).toEqual({ armed: false, attempts: nth });
      expect(() => core.allocPages(0)).not.toThrow();
      expect(core.injectedFailures().frame).toBe(1);
    }
  });

  it("an order-9 allocation fails the same way (alloc_pages is one attempt whatever the order)", () => {
    const core = makeCore({ frames: 2048 });
    core.injectFailure("frame", { nth: 2 });
    const thp = core.allocPages(9);
    const before = snapshot(core);
    expect(errnoOf(() => core.allocPages(9))).toBe("ENOMEM");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.allocPages(9)).not.toBe(thp);
  });

  it("frames_reserve is one attempt; frames from a reservation are certain and are no attempt", () => {
    const core = makeCore({ frames: 64 });
    core.injectFailure("frame", { nth: 2 });
    expect(core.x.frames_reserve(core.ctx, 0)).toBe(1); // nothing asked, nothing tried
    expect(core.x.frames_reserve(core.ctx, 3)).toBe(1); // attempt 1
    for (let i = 0; i < 3; i++) core.allocPages(0); // from the reservation
    expect(core.injectionStatus("frame")).toEqual({ armed: true, attempts: 1 });
    const free = core.freePages();
    expect(core.x.frames_reserve(core.ctx, 2)).toBe(0); // attempt 2: fails, nothing taken
    expect(core.freePages()).toBe(free);
    expect(core.injectedFailures().frame).toBe(1);
  });

  it("times: that many failures from the nth attempt on, or every one (Infinity) until cleared", () => {
    const core = makeCore({ frames: 64 });
    core.injectFailure("frame", { nth: 2, times: 3 });
    const outcome = () => (errnoOf(() => core.allocPages(0)) === null ? "ok" : "ENOMEM");
    expect(Array.from({ length: 6 }, outcome)).toEqual(["ok", "ENOMEM", "ENOMEM", "ENOMEM", "ok", "ok"]);
    expect(core.injectedFailures().frame).toBe(3);
    core.injectFailure("frame", { nth: 3, times: Infinity });
    expect(Array.from({ length: 6 }, outcome)).toEqual(["ok", "ok", "ENOMEM", "ENOMEM", "ENOMEM", "ENOMEM"]);
    expect(core.injectionStatus("frame").armed).toBe(true);
    core.clearInjection();
    expect(Array.from({ length: 2 }, outcome)).toEqual(["ok", "ok"]);
    expect(core.injectedFailures().frame).toBe(7); // the counts stay
  });

  it("page tables: pt_reserve, pt_alloc_table and a new mm's PGD each fail at their attempt", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    const pte = BigInt(5 * 4096 + PROT_READ);
    // attempt 1 is ptep_set's reservation of the three tables a first entry needs
    core.injectFailure("pageTable", { nth: 1 });
    let before = snapshot(core);
    expect(core.x.ptep_set(core.ctx, mm, BASE, pte)).toBe(-C.ENOMEM);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.vmstat().PGTABLE_ALLOC_FAIL).toBe(1);
    expect(core.x.ptep_set(core.ctx, mm, BASE, pte)).toBe(0);
    // no table needed, no attempt
    core.injectFailure("pageTable", { nth: 1 });
    expect(core.x.ptep_set(core.ctx, mm, BASE + 4096, pte)).toBe(0);
    expect(core.injectionStatus("pageTable")).toEqual({ armed: true, attempts: 0 });
    // pt_alloc_table() outside a reservation
    expect(core.x.pt_alloc_table(core.ctx) >>> 0).toBe(C.NO_PFN);
    // mm_alloc(): its PGD
    core.injectFailure("pageTable", { nth: 1 });
    before = snapshot(core);
    expect(errnoOf(() => core.mmAlloc())).toBe("ENOMEM");
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.injectedFailures()).toEqual({ frame: 0, pageTable: 3, swapSlot: 0 });
    expect(core.mmAlloc()).toBe(1);
  });

  it("swap slots: add_to_swap fails with ENOSPC, as on a full device, changing nothing", () => {
    const core = makeCore({ swapSlots: 16 });
    const pfns = [core.allocPages(0), core.allocPages(0)];
    core.injectFailure("swapSlot", { nth: 2 });
    expect(core.x.add_to_swap(pfns[0]!)).toBeGreaterThan(0);
    const before = snapshot(core);
    expect(core.x.add_to_swap(pfns[1]!)).toBe(-C.ENOSPC);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.x.page_test_flag(pfns[1]!, C.PG_swapcache)).toBe(0);
    expect(core.x.add_to_swap(pfns[1]!)).toBeGreaterThan(0);
    expect(core.injectedFailures()).toEqual({ frame: 0, pageTable: 0, swapSlot: 1 });
  });

  it("proves every error path of a sequence: N = 1, 2, 3 … until it succeeds, each failure clean", () => {
    // the sequence: four populates of separate 2 MiB regions, each one frames_reserve() and
    // one pt_reserve(); a failing step must leave the state as it was before that step
    for (const kind of ["frame", "pageTable"] as const) {
      const failedAt: number[] = [];
      for (let nth = 1; ; nth++) {
        const core = makeCore();
        const mm = core.mmAlloc();
        core.injectFailure(kind, { nth });
        let failed = -1;
        for (let step = 0; step < 4 && failed < 0; step++) {
          const before = snapshot(core);
          const r = core.x.do_anonymous_pages(core.ctx, mm, BASE + step * MB2, BASE + step * MB2 + 3 * 4096,
            1, 0, PROT_READ, C.ANON_WRITE | C.ANON_VM_WRITE);
          if (r === -C.ENOMEM) {
            expect(stateDiff(before, snapshot(core))).toBeNull();
            failed = step;
          } else {
            expect(r).toBe(3);
          }
        }
        if (failed < 0) {
          expect(core.injectedFailures()[kind]).toBe(0);
          expect(core.injectionStatus(kind)).toEqual({ armed: true, attempts: 4 });
          break;
        }
        expect(core.injectedFailures()[kind]).toBe(1);
        failedAt.push(failed);
      }
      expect(failedAt).toEqual([0, 1, 2, 3]);
    }
  });
});

describe("probability: a seeded generator in the shared memory", () => {
  const pattern = (kind: FailKind, probability: number, seed: number, n = 200) => {
    const core = makeCore({ frames: 1024, swapSlots: 1024, pageTables: 1024 });
    core.injectFailure(kind, { probability, seed });
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (kind === "frame") out.push(errnoOf(() => core.allocPages(0)) === null ? 0 : 1);
      else if (kind === "swapSlot") out.push(core.x.get_swap_slot(C.NO_PFN) >>> 0 === C.NO_PFN ? 1 : 0);
      else out.push(core.x.pt_alloc_table(core.ctx) >>> 0 === C.NO_PFN ? 1 : 0);
    }
    expect(core.injectedFailures()[kind]).toBe(out.filter((x) => x === 1).length);
    return out;
  };

  it("the same seed fails the same attempts, run after run; another seed others", () => {
    for (const kind of ["frame", "pageTable", "swapSlot"] as const) {
      const a = pattern(kind, 0.25, 42);
      expect(pattern(kind, 0.25, 42)).toEqual(a);
      expect(pattern(kind, 0.25, 43)).not.toEqual(a);
      const failures = a.filter((x) => x === 1).length;
      expect(failures).toBeGreaterThan(20); // 50 expected of 200
      expect(failures).toBeLessThan(80);
    }
    // the seed's high half counts too
    expect(pattern("frame", 0.5, 2 ** 40 + 7)).not.toEqual(pattern("frame", 0.5, 7));
  });

  it("probability 0 never fails, 1 always; times caps the failures", () => {
    expect(pattern("frame", 0, 1, 50)).toEqual(Array(50).fill(0));
    expect(pattern("frame", 1, 1, 50)).toEqual(Array(50).fill(1));
    const core = makeCore();
    core.injectFailure("frame", { probability: 1, times: 2 });
    expect([0, 1, 2, 3].map(() => errnoOf(() => core.allocPages(0)))).toEqual(["ENOMEM", "ENOMEM", null, null]);
    expect(core.injectionStatus("frame").armed).toBe(false);
  });
});

describe("the state lives in the shared memory", () => {
  it("another thread's instance over the same memory sees what one armed, and shares the count", () => {
    const core = makeCore();
    const other = Core.attach(core.shared());
    core.injectFailure("frame", { nth: 2 });
    other.allocPages(0);
    expect(errnoOf(() => core.allocPages(0))).toBe("ENOMEM");
    expect(other.injectedFailures().frame).toBe(1);
    other.injectFailure("pageTable", { nth: 1 });
    expect(core.injectionStatus("pageTable").armed).toBe(true);
    core.clearInjection("pageTable");
    expect(other.injectionStatus("pageTable").armed).toBe(false);
    other.detach();
  });
});

describe("bad requests", () => {
  it("are EINVAL, naming what is wrong, and arm nothing", () => {
    const core = makeCore();
    for (const [kind, how, re] of [
      ["frame", {}, /either nth or probability/],
      ["frame", { nth: 1, probability: 0.5 }, /either nth or probability/],
      ["frame", { nth: 0 }, /nth must be/],
      ["frame", { nth: 1.5 }, /nth must be/],
      ["frame", { probability: 1.5 }, /probability must be/],
      ["frame", { probability: Number.NaN }, /probability must be/],
      ["frame", { nth: 1, times: 0 }, /times must be/],
      ["frame", { nth: 1, times: -1 }, /times must be/],
      ["frame", { probability: 0.5, seed: -1 }, /seed must be/],
      ["slab", { nth: 1 }, /kind must be one of frame, pageTable, swapSlot/],
    ] as const) {
      try {
        core.injectFailure(kind as FailKind, how);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(CowsimError);
        expect((e as CowsimError).errno).toBe("EINVAL");
        expect((e as Error).message).toMatch(re);
      }
    }
    expect(core.x.fail_inject(C.NR_FAIL_KINDS, 1, 0, 1, 0, 0)).toBe(-C.EINVAL);
    expect(core.x.fail_inject(C.FAIL_FRAME, 0, 2, 1, 0, 0)).toBe(-C.EINVAL);
    for (const k of ["frame", "pageTable", "swapSlot"] as const) expect(core.injectionStatus(k).armed).toBe(false);
  });
});
