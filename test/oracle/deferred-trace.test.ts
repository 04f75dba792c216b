// The oracle and the journal take the events of accesses and faults from the core's trace log,
// after each core call (deferred subscribers), so that batched accesses and the core's own
// write-protect faults stay in the core while they watch. Against the same program run with an
// immediate subscriber on those tracepoints (which sends every access page by page through
// TypeScript, every wp fault to the strategy, every access of a run its own step as it happens):
// the same events in the same order, the same findings with the same explanations, the same
// journal, counters, pagemaps and contents.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_PAGEOUT, MADV_DONTNEED,
  MADV_POPULATE_WRITE, type StrategyId, type Kernel, type TraceName,
} from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { PAGE, opArbs, runProgram, type ProgramOp } from "../programs.js";

const PAGES = 40;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 60);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261204);

type Op = Exclude<ProgramOp, { kind: "rdma-ro" }>;

const a = opArbs(PAGES, { maxCount: 16, pinKinds: ["vmsplice", "iouring", "rdma"], advices: [MADV_PAGEOUT, MADV_DONTNEED, MADV_POPULATE_WRITE] });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: a.write }, { weight: 2, arbitrary: a.read }, { weight: 2, arbitrary: a.list },
  { weight: 2, arbitrary: a.single }, { weight: 2, arbitrary: a.fork }, { weight: 1, arbitrary: a.exit },
  { weight: 2, arbitrary: a.pin }, { weight: 2, arbitrary: a.device }, { weight: 1, arbitrary: a.unpin },
  { weight: 1, arbitrary: a.madvise }, { weight: 1, arbitrary: a.readonly },
);

/**
 * A missed COW (mapcount: the child's pipe shows the parent's later write, CVE-2020-29374), a
 * wrong COW (a copy away from the parent's io_uring pin while the child shares the page) and,
 * for the refcount rules with LRU batches, unnecessary COWs.
 */
const FINDINGS: Op[] = [
  { op: "write", first: 0, count: 8, value: 1, who: 0 }, { op: "pin", first: 4, count: 2, kind: "iouring", who: 0 },
  { op: "fork", who: 0 }, { op: "pin", first: 0, count: 4, kind: "vmsplice", who: 1 },
  { op: "write", first: 4, count: 4, value: 5, who: 0 }, { op: "madvise", first: 0, count: 4, advice: MADV_DONTNEED, who: 1 },
  { op: "list", pages: [3, 2, 1, 0, 20, 21], write: true, who: 0 }, { op: "device", value: 3 },
  { op: "fork", who: 0 }, { op: "read", first: 0, count: 30, who: 1 }, { op: "single", first: 9, write: true, value: 4, who: 1 },
  // fresh pages, shared by a fork that exits at once, written again: only an LRU batch holds them
  { op: "exit", who: 1 }, { op: "write", first: 30, count: 3, value: 8, who: 0 }, { op: "fork", who: 0 }, { op: "exit", who: 1 },
  { op: "write", first: 30, count: 3, value: 9, who: 0 },
];

/** LRU batches hold a reference to each fresh page until drained: the refcount rules copy (or drain) for it. */
interface Variant { readonly strategy: StrategyId; readonly knobs?: Record<string, boolean>; readonly lruBatch?: boolean }
const VARIANTS: readonly Variant[] = [
  { strategy: "mapcount" },
  { strategy: "pagecount", lruBatch: true },
  { strategy: "pagecount", knobs: { swapcacheReuse: true, lruDrainReuse: true }, lruBatch: true },
  { strategy: "anon-exclusive" },
  { strategy: "anon-exclusive", lruBatch: true },
];

const WATCHED: readonly TraceName[] = ["step", "access", "do_anonymous_page", "do_wp_page", "wp_page_copy", "finding"];

/** The events, written out (an event is reused by its emitter: what is kept is a copy). */
function record(k: Kernel, into: string[], deferred: boolean): void {
  for (const name of WATCHED) {
    k.on(name, (e: Record<string, unknown>) => {
      const call = e.call;
      into.push(`${name} ${JSON.stringify({ ...e, call: typeof call === "function" ? call() : call })}`);
    }, { deferred });
  }
}

/**
 * Runs the program; `immediate` adds a subscriber that must see each event as it happens, and
 * `alone` records no event: the oracle (with its journal) is then the only reader of the trace
 * log, and takes it through its own methods rather than as events.
 */
function run(v: Variant, ops: Op[], immediate: boolean, alone = false, explain = true) {
  const k = createKernel({ strategy: v.strategy, knobs: v.knobs, transient: { lruBatch: v.lruBatch ? true : 0 }, memory: "1M", swap: "1M", build: BUILD, oracle: true, explain });
  const events: string[] = [];
  if (!alone) record(k, events, !immediate);
  expect(k.trace.logReader).toBe(alone ? k.oracle : null);
  // without its journal the oracle takes a run's stores in one call (TraceLogReader.storeRun)
  expect(k.oracle!.storeRuns).toBe(!explain);
  let storeRuns = 0;
  const storeRun = k.oracle!.storeRun.bind(k.oracle);
  k.oracle!.storeRun = (...args) => { storeRuns++; storeRun(...args); };
  const { outcomes, ...state } = runProgram(k, ops, PAGES);
  const vm = k.core.vmstat();
  return {
    inCore: vm.WP_CORE_COPY! + vm.WP_CORE_REUSE! + vm.WP_CORE_ZERO!,
    storeRuns,
    seen: { outcomes, events, findings: k.findings, journal: explain ? k.journal!.entriesSince(0) : null, ...state },
  };
}

describe("deferred tracepoints from the core's trace log", () => {
  for (const v of VARIANTS) {
    const name = `${v.strategy}${v.knobs ? " " + JSON.stringify(v.knobs) : ""}${v.lruBatch ? ", LRU batches" : ""}`;
    it(`${name}: the oracle and the journal see what immediate subscribers see`, () => {
      fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 24 }), (ops) => {
        const later = run(v, ops, false);
        const now = run(v, ops, true);
        expect(now.inCore).toBe(0);
        expect(later.seen).toEqual(now.seen);
        const alone = run(v, ops, false, true);
        expect(alone.inCore).toBe(later.inCore);
        expect(alone.seen).toEqual({ ...now.seen, events: [] });
        expect(later.storeRuns + now.storeRuns + alone.storeRuns).toBe(0);
        // the oracle without its journal, alone: store runs, the same findings and state
        const bare = run(v, ops, false, true, false);
        const bareNow = run(v, ops, true, false, false);
        expect(bare.inCore).toBe(later.inCore);
        expect(bareNow.storeRuns).toBe(0);
        expect(bare.seen).toEqual({ ...bareNow.seen, events: [] });
        expect(bare.seen.findings.map((f) => [f.kind, f.pid, f.address, f.pfn])).toEqual(now.seen.findings.map((f) => [f.kind, f.pid, f.address, f.pfn]));
      }), { numRuns: RUNS, seed: SEED, examples: [[FINDINGS]] });
    });
  }

  it("the oracle without its journal takes a run's stores in one call and finds what it found one by one", () => {
    for (const v of [{ strategy: "mapcount" }, { strategy: "pagecount", lruBatch: true }] as const) {
      const bare = run(v, FINDINGS, false, true, false);
      const now = run(v, FINDINGS, true, false, false);
      expect(bare.storeRuns).toBeGreaterThan(0);
      expect(bare.inCore).toBeGreaterThan(0);
      expect(bare.seen.findings.length).toBeGreaterThan(0);
      expect(bare.seen).toEqual({ ...now.seen, events: [] });
    }
  });

  it("keeps the faults in the core with the oracle on, and finds what it found one by one", () => {
    const ops = FINDINGS;
    const later = run({ strategy: "mapcount" }, ops, false);
    const now = run({ strategy: "mapcount" }, ops, true);
    expect(later.inCore).toBeGreaterThan(0);
    expect(later.seen.findings.map((f) => f.kind)).toEqual(now.seen.findings.map((f) => f.kind));
    expect(new Set(later.seen.findings.map((f) => f.kind))).toEqual(new Set(["missed-cow", "wrong-cow"]));
    // pagecount copies a page its LRU batch holds: nobody else could see it
    const pc = run({ strategy: "pagecount", lruBatch: true }, ops, false);
    expect(pc.inCore).toBeGreaterThan(0);
    expect(pc.seen.findings.filter((f) => f.kind === "unnecessary-cow").length).toBeGreaterThan(0);
    expect(pc.seen).toEqual(run({ strategy: "pagecount", lruBatch: true }, ops, true).seen);
  });

  it("a released kernel's journal serves the next kernel as a new one would", () => {
    const fresh = run({ strategy: "mapcount" }, FINDINGS, false).seen;
    // another program leaves its history in a journal (and its machine), then gives both back
    const used = createKernel({ strategy: "mapcount", memory: "1M", swap: "1M", build: BUILD, oracle: true, explain: true });
    runProgram(used, [...FINDINGS].reverse(), PAGES);
    const journal = used.journal!;
    expect(journal.entryCount).toBeGreaterThan(0);
    used.release();
    const k = createKernel({ strategy: "mapcount", memory: "1M", swap: "1M", build: BUILD, oracle: true, explain: true });
    expect(k.journal).toBe(journal);
    expect(k.journal!.entryCount).toBe(0);
    const events: string[] = [];
    record(k, events, true);
    const { outcomes, ...state } = runProgram(k, FINDINGS, PAGES);
    expect({ outcomes, events, findings: k.findings, journal: k.journal!.entriesSince(0), ...state }).toEqual(fresh);
    // and a built-in strategy is made once per set of knobs, frozen
    expect(k.strategy).toBe(used.strategy);
    expect(Object.isFrozen(k.strategy)).toBe(true);
  });

  it("delivers a run longer than the log holds, in order", () => {
    // small pages only (no THP): every copy is the core's
    const k = createKernel({ strategy: "anon-exclusive", memory: "16M", build: BUILD, oracle: true, explain: true, thp: { enabled: "madvise" } });
    const steps: number[] = [];
    const stores: number[] = [];
    k.on("step", (e) => { if (e.call === null) steps.push(e.addr); }, { deferred: true });
    k.on("access", (e) => stores.push(e.value), { deferred: true });
    const p = k.spawn();
    const a = p.mmap(null, 1500 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeRange(a, 1500, 10, 1); // 1500 first touches, two log entries each: five calls
    const c = p.fork();
    c.writeRange(a, 1500, 5000, 1); // 1500 copies in the core
    expect(steps).toEqual([...Array(3000).keys()].map((i) => a + (i % 1500) * PAGE));
    expect(stores).toEqual([...[...Array(1500).keys()].map((i) => 10 + i), ...[...Array(1500).keys()].map((i) => 5000 + i)]);
    expect(k.core.vmstat().WP_CORE_COPY).toBe(1500);
    expect(k.findings).toEqual([]);
  });
});
