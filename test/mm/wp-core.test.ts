// The write-protect faults the core decides itself (FAST_WP, each built-in strategy's rule as
// data) against the strategy's own wpReuse() in TypeScript: for random programs of writes,
// forks, pins, swap, LRU batches and mprotect, the same counters, pagemap and contents. A
// do_wp_page subscriber keeps every fault in TypeScript, so the same program runs both ways.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MADV_PAGEOUT, MADV_DONTNEED,
  MADV_POPULATE_WRITE, type StrategyId,
} from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { BASE, PAGE, opArbs, runProgram, type ProgramOp } from "../programs.js";

const PAGES = 48;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 90);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261203);

type Op = Extract<ProgramOp, { op: "write" | "read" | "fork" | "exit" | "pin" | "unpin" | "madvise" | "readonly" }>;

const a = opArbs(PAGES, { pinKinds: ["vmsplice", "iouring", "rdma-ro"], advices: [MADV_PAGEOUT, MADV_DONTNEED, MADV_POPULATE_WRITE] });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: a.write }, { weight: 2, arbitrary: a.read }, { weight: 2, arbitrary: a.fork },
  { weight: 1, arbitrary: a.exit }, { weight: 2, arbitrary: a.pin }, { weight: 1, arbitrary: a.unpin },
  { weight: 1, arbitrary: a.madvise }, { weight: 1, arbitrary: a.readonly },
);

/** A pinned page mapped read-only by one process (its child gone), then written: mapcount 1, page_count 2. */
const PINNED_THEN_WRITTEN: Op[] = [
  { op: "write", first: 0, count: 8, value: 1, who: 0 }, { op: "pin", first: 0, count: 4, kind: "vmsplice", who: 0 },
  { op: "fork", who: 0 }, { op: "write", first: 2, count: 4, value: 5, who: 1 }, { op: "exit", who: 1 },
  { op: "write", first: 0, count: 8, value: 9, who: 0 },
];

interface Variant { readonly strategy: StrategyId; readonly knobs?: Record<string, boolean>; readonly lruBatch: boolean; readonly mthp?: boolean }
const VARIANTS: readonly Variant[] = [
  { strategy: "mapcount", lruBatch: true },
  { strategy: "pagecount", lruBatch: true },
  { strategy: "pagecount", knobs: { swapcacheReuse: true }, lruBatch: true },
  { strategy: "pagecount", knobs: { swapcacheReuse: true, lruDrainReuse: true }, lruBatch: true },
  { strategy: "anon-exclusive", lruBatch: true },
  { strategy: "anon-exclusive", lruBatch: false },
  // PTE-mapped pages of 16 KiB and 64 KiB folios: the copies of a large folio's pages (WPR_LARGE_COPIES)
  { strategy: "anon-exclusive", lruBatch: true, mthp: true },
  { strategy: "pagecount", knobs: { swapcacheReuse: true }, lruBatch: true, mthp: true },
];

/**
 * Runs the program; `inTypeScript` subscribes to do_wp_page, which keeps every decision in
 * TypeScript. With `oracle`, the oracle (and its journal) take the core's decisions from the trace log.
 */
function run(v: Variant, ops: Op[], inTypeScript: boolean, oracle = false) {
  const k = createKernel({
    strategy: v.strategy, knobs: v.knobs, transient: { lruBatch: v.lruBatch ? true : 0 }, memory: "1M", swap: "1M", build: BUILD, oracle,
    ...(v.mthp ? { thp: { sizes: { "16K": "always", "64K": "always", "2M": "never" } } } : {}),
  });
  let decisions = 0;
  if (inTypeScript) k.on("do_wp_page", () => { decisions++; });
  // with the oracle on, each copy as the oracle is told it: the rule and the facts it judges by
  const copies: string[] = [];
  if (oracle) k.on("wp_page_copy", (e) => { copies.push(`${e.pfn}→${e.newPfn} ${e.rule} ${JSON.stringify(e.facts)}`); }, { deferred: true });
  return { ...runProgram(k, ops, PAGES), decisions, copies };
}

describe("the core's do_wp_page() rule", () => {
  for (const v of VARIANTS) {
    const name = `${v.strategy}${v.knobs ? " " + JSON.stringify(v.knobs) : ""}${v.lruBatch ? "" : ", no LRU batches"}${v.mthp ? ", mTHP" : ""}`;
    it(`decides as ${name}'s wpReuse() does, counter for counter`, () => {
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const { decisions, ...inTs } = run(v, ops, true);
        const { decisions: none, ...inCore } = run(v, ops, false);
        expect(none).toBe(0);
        expect(inCore).toEqual(inTs);
      }), { numRuns: RUNS, seed: SEED, examples: [[PINNED_THEN_WRITTEN]] });
    });
  }

  for (const v of VARIANTS.filter((x) => x.mthp)) {
    it(`with the oracle on, judges the copies of ${v.strategy}'s large folios as TypeScript's (the trace log's facts)`, () => {
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const { decisions: _d, ...inTs } = run(v, ops, true, true);
        const { decisions: _n, ...inCore } = run(v, ops, false, true);
        expect(inCore).toEqual(inTs);
      }), { numRuns: RUNS, seed: SEED, examples: [[PINNED_THEN_WRITTEN]] });
    });
  }

  it("takes the faults it can in the core and hands the rest to the strategy", () => {
    const k = createKernel({ strategy: "anon-exclusive", memory: "1M", build: BUILD, oracle: false });
    const p = k.spawn();
    p.mmap(BASE, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    p.touchRange(BASE, 2); // two zero pages
    p.writeRange(BASE + 2 * PAGE, 6, 1);
    const child = p.fork();
    const before = k.counters();
    child.writeRange(BASE, 8, 100); // 2 zero-page copies, 6 copies of shared pages
    p.writeRange(BASE + 2 * PAGE, 6, 200); // 6 reuses: the child's copies left the parent alone
    const after = k.counters();
    const d = (n: string) => after[n]! - before[n]!;
    expect([d("wpFaults"), d("copies"), d("zeroPageCopies"), d("reuses")]).toEqual([14, 6, 2, 6]);
    expect(k.core.vmstat().WP_CORE_COPY! + k.core.vmstat().WP_CORE_ZERO! + k.core.vmstat().WP_CORE_REUSE!).toBe(14);
    // a subscriber sees every decision: the same writes now go to the strategy
    const seen: boolean[] = [];
    k.on("do_wp_page", (e) => seen.push(e.reuse));
    const c2 = p.fork();
    c2.write(BASE + 2 * PAGE, 7);
    p.write(BASE + 3 * PAGE, 8);
    expect(seen).toEqual([false, false]);
    expect(k.core.vmstat().WP_CORE_COPY! + k.core.vmstat().WP_CORE_ZERO! + k.core.vmstat().WP_CORE_REUSE!).toBe(14);
  });
});
