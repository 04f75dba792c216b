// The possibly pinned pages fork's walk copies itself (COPY_EARLY_IN_CORE: the strategy's
// forkPinned() copies every page it defers) against the copies TypeScript makes from the walk's
// REC_FORK_PINNED records: for random programs of writes, pins, forks, exits and unpins, the
// same outcomes, counters, pagemap and contents. A copy_present_page subscriber keeps every copy
// in TypeScript, so the same program runs both ways.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MADV_PAGEOUT, type StrategyId } from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { BASE, PAGE, opArbs, runProgram, type ProgramOp } from "../programs.js";

const PAGES = 48;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 90);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261203);

type Op = Extract<ProgramOp, { op: "write" | "read" | "fork" | "exit" | "pin" | "unpin" | "device" | "madvise" | "readonly" }>;

const a = opArbs(PAGES, { maxPin: 8, pinKinds: ["iouring", "rdma", "rdma-ro", "vmsplice"], advices: [MADV_PAGEOUT] });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: a.write }, { weight: 2, arbitrary: a.read }, { weight: 3, arbitrary: a.fork },
  { weight: 2, arbitrary: a.exit }, { weight: 3, arbitrary: a.pin }, { weight: 1, arbitrary: a.device },
  { weight: 1, arbitrary: a.unpin }, { weight: 1, arbitrary: a.madvise }, { weight: 1, arbitrary: a.readonly },
);

/** Every program starts from a written heap, part of it pinned long-term. */
const PREFIX: Op[] = [{ op: "write", first: 0, count: PAGES, value: 1, who: 0 }, { op: "pin", first: 4, count: 8, kind: "rdma", who: 0 }];

interface Variant { readonly strategy: StrategyId; readonly knobs?: Record<string, boolean> }
const VARIANTS: readonly Variant[] = [
  { strategy: "pagecount", knobs: { forkCopyPinned: true } },
  { strategy: "anon-exclusive" },
];

/** Runs the program; `inTypeScript` subscribes to copy_present_page, which keeps every copy in TypeScript. */
function run(v: Variant, ops: Op[], inTypeScript: boolean) {
  const k = createKernel({ strategy: v.strategy, knobs: v.knobs, memory: "1M", swap: "1M", build: BUILD, oracle: false });
  let copies = 0;
  if (inTypeScript) k.on("copy_present_page", () => { copies++; });
  const r = runProgram(k, ops, PAGES);
  return { ...r, inCore: k.core.vmstat().FORK_CORE_COPY!, copies };
}

describe("fork's early copies in the core", () => {
  for (const v of VARIANTS) {
    const name = `${v.strategy}${v.knobs ? " " + JSON.stringify(v.knobs) : ""}`;
    it(`copies what ${name}'s forkPinned() copies, counter for counter`, () => {
      let inCoreAll = 0;
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (drawn) => {
        const ops = [...PREFIX, ...drawn];
        const { inCore: none, copies, ...inTs } = run(v, ops, true);
        const { inCore, copies: unseen, ...core } = run(v, ops, false);
        expect([none, unseen]).toEqual([0, 0]);
        expect(inCore).toBe(copies);
        expect(core).toEqual(inTs);
        expect(core.invariants).toEqual([]);
        inCoreAll += inCore;
      }), { numRuns: RUNS, seed: SEED });
      // the programs did fork pinned pages
      expect(inCoreAll).toBeGreaterThan(4 * RUNS);
    });
  }

  it("copies swap entries alike whether or not anyone is told each (COPY_NO_SWAP_RECORDS)", () => {
    const runFork = (told: boolean) => {
      const k = createKernel({ strategy: "anon-exclusive", memory: "1M", swap: "1M", build: BUILD, oracle: false });
      const slots: number[] = [];
      if (told) k.on("copy_nonpresent_pte", (e) => { slots.push(e.slot); });
      const p = k.spawn();
      p.mmap(BASE, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      p.writeRange(BASE, 16, 1, 1);
      p.madvise(BASE, 8 * PAGE, MADV_PAGEOUT);
      const c = p.fork();
      return { slots, counters: k.counters(), maps: [p.pagemap(BASE, 16).join(), c.pagemap(BASE, 16).join()], values: [c.read(BASE), c.read(BASE + 9 * PAGE)], invariants: k.checkInvariants() };
    };
    const told = runFork(true);
    const { slots, ...quiet } = runFork(false);
    expect(told.slots).toHaveLength(8);
    expect(slots).toEqual([]);
    const { slots: _s, ...rest } = told;
    expect(quiet).toEqual(rest);
    expect(quiet.invariants).toEqual([]);
  });

  it("copies in the walk and counts the copies where TypeScript's would", () => {
    const k = createKernel({ strategy: "anon-exclusive", memory: "1M", build: BUILD, oracle: false });
    const p = k.spawn();
    p.mmap(BASE, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    p.writeRange(BASE, 8, 1, 1);
    const mr = p.rdmaRegister(BASE, 4 * PAGE, true);
    const before = k.counters();
    const child = p.fork();
    const after = k.counters();
    expect(k.core.vmstat().FORK_CORE_COPY).toBe(4);
    expect([after.forkCopies - before.forkCopies, after.copies - before.copies]).toEqual([4, 4]);
    // the child has its own copies of the pinned pages, the rest shared
    for (let i = 0; i < 8; i++) expect(child.pfnAt(BASE + i * PAGE) !== p.pfnAt(BASE + i * PAGE)).toBe(i < 4);
    expect(child.read(BASE + 2 * PAGE)).toBe(3);
    mr.deregister();
  });
});
