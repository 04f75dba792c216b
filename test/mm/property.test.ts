// Random sequences of syscalls, accesses and GUP users, checked against the oracle.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { createKernel, ReferenceJudge, type StrategyId } from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { opsArb, World, type Op } from "../../src/fuzz/ops.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 150 : 100));
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261123);

function kernelFor(strategy: StrategyId, lruBatch = false) {
  return createKernel({ strategy, memory: "2M", swap: "2M", build: BUILD, maxProcesses: 16, transient: { lruBatch } });
}

/** The first step (1-based) after which something was wrong; the steps after it never ran. */
class StepFailure extends Error {
  constructor(readonly step: number, o: Op, what: string) {
    super(`after step ${step} ${JSON.stringify(o)}: ${what}`);
  }
}

/**
 * Runs the ops; throws at the first broken invariant, latent missed COW, forbidden finding, or
 * disagreement between the oracle and the reference judge on a copy.
 */
function run(strategy: StrategyId, ops: Op[], forbidden: readonly string[], tally?: Record<string, number>, lruBatch = false): void {
  const k = kernelFor(strategy, lruBatch);
  const judge = new ReferenceJudge(k);
  const w = new World(k);
  ops.forEach((o, i) => {
    w.apply(o, i + 1);
    const v = k.checkInvariants();
    if (v.length) throw new StepFailure(i + 1, o, v.map((x) => `${x.invariant}: ${x.detail}`).join("; "));
    const c = k.counters();
    const oracle = [c.necessaryCow, c.unnecessaryCow, c.wrongCow];
    const reference = [judge.necessary, judge.unnecessary, judge.wrong];
    if (oracle.join() !== reference.join()) {
      throw new StepFailure(i + 1, o, `the judges disagree on a copy: oracle necessary/unnecessary/wrong ${oracle.join("/")}, ` +
        `reference ${reference.join("/")} (${JSON.stringify(judge.verdicts.at(-1))})`);
    }
    const latent = k.latentMissedCows();
    if (latent.length && forbidden.includes("missed-cow")) {
      throw new StepFailure(i + 1, o, `latent missed COW ${JSON.stringify(latent[0])}`);
    }
    const bad = k.findings.filter((f) => forbidden.includes(f.kind));
    if (bad.length) throw new StepFailure(i + 1, o, bad[0]!.summary);
  });
  if (tally) {
    for (const [key, n] of Object.entries(w.counts)) tally[key] = (tally[key] ?? 0) + n;
    for (const v of judge.verdicts) tally[`judged-${v.verdict}`] = (tally[`judged-${v.verdict}`] ?? 0) + 1;
  }
  w.teardown();
  const v = k.checkInvariants();
  if (v.length) throw new Error(`after teardown: ${v.map((x) => `${x.invariant}: ${x.detail}`).join("; ")}`);
  if (k.core.freePages() !== k.core.layout.nframes - 1) throw new Error("frames left after teardown");
}

describe("random sequences under anon-exclusive (Linux 6.12)", () => {
  it("syscalls and accesses: every invariant holds, no missed or unnecessary COW, every frame comes back", () => {
    const tally: Record<string, number> = {};
    fc.assert(fc.property(opsArb(false), (ops) => run("anon-exclusive", ops, ["missed-cow", "unnecessary-cow", "wrong-cow"], tally)),
      { numRuns: RUNS, seed: SEED });
    // the generator must reach the interesting paths, not only fail with errno
    expect(tally.ok).toBeGreaterThan(2 * tally.errno!);
    for (const op of ["mmap", "munmap", "mprotect", "mremap", "madvise", "fork", "exit", "read", "write"]) {
      expect(tally[op], op).toBeGreaterThan(50);
    }
  });

  it("with vmsplice, io_uring, O_DIRECT, RDMA, pins and pageout: no missed and no wrong COW", () => {
    const tally: Record<string, number> = {};
    fc.assert(fc.property(opsArb(true), (ops) => run("anon-exclusive", ops, ["missed-cow", "wrong-cow"], tally)),
      { numRuns: RUNS, seed: SEED });
    for (const op of ["vmsplice", "ioUring", "rdma", "directIo", "pin", "device", "release"]) {
      expect(tally[op], op).toBeGreaterThan(20);
    }
  });
});

describe("the older strategies keep the kernel's bookkeeping straight, whatever their COW verdicts", () => {
  for (const strategy of ["mapcount", "pagecount"] as const) {
    it(`${strategy}: every invariant holds, every frame and swap slot comes back, the judges agree on every copy`, () => {
      const tally: Record<string, number> = {};
      // with the per-CPU LRU batches' references, which page_count() COW mistakes for sharers
      fc.assert(fc.property(opsArb(true), (ops) => run(strategy, ops, [], tally, true)), { numRuns: Math.ceil(RUNS / 2), seed: SEED });
      // both judges saw each kind of verdict these kernels give, and agreed on every one
      expect(tally["judged-necessary"]).toBeGreaterThan(20);
      expect(tally["judged-wrong"]).toBeGreaterThan(0);
      if (strategy === "pagecount") expect(tally["judged-unnecessary"]).toBeGreaterThan(0);
    });
  }
});

describe("the same generator under mapcount (Linux ≤ 5.7)", () => {
  it("finds a missed COW and shrinks it to a handful of steps", () => {
    const out = fc.check(fc.property(opsArb(true), (ops) => run("mapcount", ops, ["missed-cow"])), { numRuns: 500, seed: SEED });
    expect(out.failed).toBe(true);
    const failure = out.errorInstance as StepFailure;
    expect(failure).toBeInstanceOf(StepFailure);
    // what ran: the shrinker may leave steps after the failing one, which never executed
    const counterexample = out.counterexample![0].slice(0, failure.step);
    console.log(`mapcount counterexample (${counterexample.length} steps):\n` +
      counterexample.map((o, i) => `  ${i + 1}. ${JSON.stringify(o)}`).join("\n") + `\n  → ${failure.message}`);
    expect(counterexample.length).toBeLessThanOrEqual(10);
    expect(failure.message).toMatch(/missed COW/);
    // replayed alone, the printed steps fail the same way
    expect(() => run("mapcount", counterexample, ["missed-cow"])).toThrow(/missed COW/);
  });
});
