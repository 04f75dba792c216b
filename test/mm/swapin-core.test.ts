// The swap-ins the core takes itself (FAST_SWAP, each built-in strategy's do_swap_page() rule as
// data) against the strategy's own swapin() in TypeScript: for random programs of writes, reads,
// MADV_PAGEOUT, forks, pins, mprotect and soft-dirty resets, the same outcomes, counters,
// pagemap (exclusive, writable, dirty, soft-dirty) and contents. A do_swap_page subscriber keeps
// every swap-in in TypeScript, so the same program runs both ways.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MADV_PAGEOUT, MADV_DONTNEED, PM_MMAP_EXCLUSIVE, PM_PRESENT,
  type StrategyId,
} from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { BASE, PAGE, opArbs, runProgram, type ProgramOp } from "../programs.js";

const PAGES = 48;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 90);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261203);

type Op = Extract<ProgramOp, { op: "write" | "read" | "list" | "single" | "fork" | "exit" | "pin" | "unpin" | "madvise" | "readonly" | "softdirty" }>;

const a = opArbs(PAGES, { pinKinds: ["vmsplice", "iouring"], advices: [MADV_PAGEOUT, MADV_PAGEOUT, MADV_DONTNEED] });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: a.write }, { weight: 3, arbitrary: a.read }, { weight: 2, arbitrary: a.list },
  { weight: 2, arbitrary: a.single }, { weight: 4, arbitrary: a.madvise }, { weight: 2, arbitrary: a.fork },
  { weight: 1, arbitrary: a.exit }, { weight: 1, arbitrary: a.pin }, { weight: 1, arbitrary: a.unpin },
  { weight: 1, arbitrary: a.readonly }, { weight: 1, arbitrary: a.softdirty },
);

/** Every program starts from a heap half swapped out. */
const PREFIX: Op[] = [{ op: "write", first: 0, count: PAGES, value: 1, who: 0 }, { op: "madvise", first: 0, count: PAGES / 2, advice: MADV_PAGEOUT, who: 0 }];

/** Written, swapped out, then read and written back: each rule's exclusive and read-only cases. */
const SWAP_ROUND: Op[] = [
  { op: "write", first: 0, count: 16, value: 1, who: 0 }, { op: "madvise", first: 0, count: 16, advice: MADV_PAGEOUT, who: 0 },
  { op: "read", first: 0, count: 8, who: 0 }, { op: "write", first: 4, count: 8, value: 9, who: 0 },
  { op: "softdirty", who: 0 }, { op: "madvise", first: 0, count: 16, advice: MADV_PAGEOUT, who: 0 },
  { op: "read", first: 0, count: 4, who: 0 }, { op: "write", first: 0, count: 16, value: 3, who: 0 },
];

interface Variant { readonly strategy: StrategyId; readonly knobs?: Record<string, boolean> }
const VARIANTS: readonly Variant[] = [
  { strategy: "mapcount" },
  { strategy: "pagecount" },
  { strategy: "pagecount", knobs: { swapcacheReuse: true } },
  { strategy: "anon-exclusive" },
  { strategy: "anon-exclusive", knobs: { swapExclusive: false } },
];

/** Runs the program; `inTypeScript` subscribes to do_swap_page, which keeps every swap-in in TypeScript. */
function run(v: Variant, ops: Op[], inTypeScript: boolean) {
  const k = createKernel({ strategy: v.strategy, knobs: v.knobs, memory: "1M", swap: "1M", build: BUILD, oracle: false });
  let swapins = 0;
  if (inTypeScript) k.on("do_swap_page", () => { swapins++; });
  const r = runProgram(k, ops, PAGES);
  // read after runProgram() read the contents, which swaps in as well
  return { ...r, inCore: k.core.vmstat().SWAPIN_CORE!, swapins, swapinsAtEnd: k.counters().swapins };
}

describe("the core's do_swap_page() rule", () => {
  for (const v of VARIANTS) {
    const name = `${v.strategy}${v.knobs ? " " + JSON.stringify(v.knobs) : ""}`;
    it(`decides as ${name}'s swapin() does, counter for counter`, () => {
      let tookInCore = 0;
      let tookAll = 0;
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (drawn) => {
        const ops = [...PREFIX, ...drawn];
        const { inCore: none, swapins, ...inTs } = run(v, ops, true);
        const { inCore, swapins: unseen, ...core } = run(v, ops, false);
        expect([none, unseen]).toEqual([0, 0]);
        // every swap-in counts, wherever it was taken (a child's VMA goes to TypeScript)
        expect(inTs.swapinsAtEnd).toBe(swapins);
        expect(inCore).toBeLessThanOrEqual(swapins);
        tookInCore += inCore;
        tookAll += swapins;
        expect(core).toEqual(inTs);
        expect(core.invariants).toEqual([]);
      }), { numRuns: RUNS, seed: SEED, examples: [[SWAP_ROUND]] });
      // the programs did reach the core's rule, and left it some swap-ins to hand on
      expect(tookInCore).toBeGreaterThan(8 * RUNS);
      expect(tookAll).toBeGreaterThan(tookInCore);
    });
  }

  it("takes the swap-ins it can in the core and hands the rest to the strategy", () => {
    const k = createKernel({ strategy: "anon-exclusive", memory: "1M", swap: "1M", build: BUILD, oracle: false });
    const p = k.spawn();
    p.mmap(BASE, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    p.writeRange(BASE, 8, 1);
    p.madvise(BASE, 8 * PAGE, MADV_PAGEOUT);
    p.touchRange(BASE, 4); // pte_swp_exclusive(): exclusive and writable on a read fault
    p.writeRange(BASE + 4 * PAGE, 4, 2);
    expect(k.core.vmstat().SWAPIN_CORE).toBe(8);
    expect(k.counters().swapins).toBe(8);
    expect(p.pagemap(BASE, 8).map((e) => (BigInt(e) & (PM_PRESENT | PM_MMAP_EXCLUSIVE)) === (PM_PRESENT | PM_MMAP_EXCLUSIVE))).toEqual(Array(8).fill(true));
    // a child's VMA joins its parent's anon_vma tree: its swap-ins go to TypeScript
    const child = p.fork();
    child.writeRange(BASE, 2, 5); // the child's own copies
    child.madvise(BASE, 8 * PAGE, MADV_PAGEOUT); // its copies go; the pages shared with the parent stay
    const seen: boolean[] = [];
    k.on("do_swap_page", (e) => seen.push(e.fromCache));
    child.touchRange(BASE, 2);
    expect(seen.length).toBe(2);
    expect(k.core.vmstat().SWAPIN_CORE).toBe(8);
  });
});
