// The cost model: the estimate is Σ count × cost, exactly, over the events of the metrics and
// of the program's steps; events without a cost are listed, never priced at 0 silently; the
// error is (estimate − measured) / measured. The calibration programs are valid programs (the
// simulator runs them without a failure), and on a host with a C compiler they measure a cost
// for every event (swap's only with swap), cached per machine in the caller's file.
import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { calibrationPrograms, COST_EVENTS, estimate, estimateError, eventCounts, medianCosts, programEvents, stepProcesses } from "../../src/bench/cost.js";
import { buildNative, cachedCostModel, hostMachine, measureCostModel } from "../../src/bench/native.js";
import type { BenchMetrics, CostModel } from "../../src/bench/result.js";
import { ProgramBuilder } from "../../src/workloads/index.js";
import { createKernel } from "../../src/kernel.js";
import { execute, programKernelSizes } from "../../src/workloads/execute.js";

const metrics: BenchMetrics = {
  copies: 10, reuses: 4, necessaryCow: 0, unnecessaryCow: 0, missedCow: 0, wrongCow: 0,
  faults: { anon: 100, zeroPage: 3, wp: 14, swap: 2, thp: 1, thpWp: 5, "uffd-wp": 7 },
  framesPeak: 0, swapOuts: 6, swapIns: 2, gupPages: 8, gupFailures: 0, accesses: 1000,
  failures: {}, incoherentPins: 0, forkCopies: 2, ptesSharedAtFork: 64, ptesZapped: 128,
};

function program() {
  const b = new ProgramBuilder("t", 0, {});
  const r = b.mmap(0, 16);
  const c = b.fork(0);
  const pin = b.pin(0, r, 0, 8, "io_uring", true);
  b.add({ op: "dma_read", pin });
  b.add({ op: "dma_read", pin });
  b.add({ op: "unpin", pin });
  b.vmsplice(0, r, 2, 3);
  b.add({ op: "exit", proc: c });
  b.add({ op: "munmap", proc: 0, region: r });
  return b.build();
}

// powers of two: every product and sum below is exact in binary floating point
const model: CostModel = {
  machine: "test", costs: {
    access: 2 ** -30, anonFault: 2 ** -18, zeroPageFault: 2 ** -19, cowCopy: 2 ** -17, reuse: 2 ** -20, fork: 2 ** -13,
    forkPte: 2 ** -22, exit: 2 ** -14, zapPte: 2 ** -23, mmap: 2 ** -16, munmap: 2 ** -16, pin: 2 ** -13, pinPage: 2 ** -21,
    unpin: 2 ** -14, dmaPage: 2 ** -19, vmsplicePage: 2 ** -20, pipeReadPage: 2 ** -20, uffdFault: 2 ** -16, forkCopy: 2 ** -18,
  },
};

describe("cost model", () => {
  it("counts the program's step-level events", () => {
    // every step is process 0's but the child's exit: two switches, to the child and back
    expect(stepProcesses(program())).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect(programEvents(program())).toEqual({
      mmap: 1, fork: 1, pin: 1, pinPage: 8, dmaPage: 16, unpin: 1, vmsplicePage: 3, pipeReadPage: 3, exit: 1, munmap: 1, switch: 2,
    });
  });

  it("runs a step that names no process in the process of its pin, pipe or userfaultfd, reclaim in the lowest alive", () => {
    const b = new ProgramBuilder("owners", 0, {});
    const r = b.mmap(0, 4);
    const c = b.fork(0);
    const pin = b.pin(c, r, 0, 1, "rdma", true);
    const pipe = b.vmsplice(c, r, 0, 1);
    const u = b.uffdOpen(c, []);
    b.add({ op: "uffd_wp", uffd: u, region: r, first: 0, count: 1, on: true });
    b.add({ op: "dma_read", pin });
    b.add({ op: "pipe_read", pipe });
    b.add({ op: "unpin", pin });
    b.add({ op: "exit", proc: 0 });
    b.add({ op: "reclaim", pages: 1 });
    expect(stepProcesses(b.build())).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1]);
  });

  it("counts the metrics' events, wp and swap faults as copies, reuses and swap-ins", () => {
    expect(eventCounts(metrics)).toEqual({
      access: 1000, cowCopy: 8, forkCopy: 2, reuse: 4, swapOut: 6, swapIn: 2, forkPte: 64, zapPte: 128,
      anonFault: 100, zeroPageFault: 3, thpFault: 1, "fault:thpWp": 5, uffdFault: 7,
    });
  });

  it("estimates Σ count × cost exactly, and lists the events it has no cost for", () => {
    const e = estimate(metrics, model, program());
    const c = model.costs;
    const expected: Record<string, number> = {
      mmap: c["mmap"]!, fork: c["fork"]!, pin: c["pin"]!, pinPage: 8 * c["pinPage"]!, dmaPage: 16 * c["dmaPage"]!,
      unpin: c["unpin"]!, vmsplicePage: 3 * c["vmsplicePage"]!, pipeReadPage: 3 * c["pipeReadPage"]!, exit: c["exit"]!,
      munmap: c["munmap"]!, access: 1000 * c["access"]!, cowCopy: 8 * c["cowCopy"]!, forkCopy: 2 * c["forkCopy"]!, reuse: 4 * c["reuse"]!,
      forkPte: 64 * c["forkPte"]!, zapPte: 128 * c["zapPte"]!, anonFault: 100 * c["anonFault"]!,
      zeroPageFault: 3 * c["zeroPageFault"]!, uffdFault: 7 * c["uffdFault"]!,
    };
    expect(e.byEvent).toEqual(expected);
    expect(e.seconds).toBe(Object.values(expected).reduce((a, b) => a + b, 0));
    expect(e.unmodelled).toEqual({ switch: 2, swapOut: 6, swapIn: 2, thpFault: 1, "fault:thpWp": 5 });
    // without the program: the metrics' events only
    expect(Object.keys(estimate(metrics, model).byEvent).sort()).toEqual(
      ["access", "anonFault", "cowCopy", "forkCopy", "forkPte", "reuse", "uffdFault", "zapPte", "zeroPageFault"]);
  });

  it("gives the error against the measured time", () => {
    expect(estimateError({ seconds: 3, byEvent: {} }, 2)).toBe(0.5);
    expect(estimateError({ seconds: 1, byEvent: {} }, 4)).toBe(-0.75);
    expect(() => estimateError({ seconds: 1, byEvent: {} }, 0)).toThrow(RangeError);
  });

  it("keeps the median of each cost over rounds", () => {
    expect(medianCosts([{ a: 3, b: 1 }, { a: 1, b: 2 }, { a: 2 }])).toEqual({ a: 2, b: 1.5 });
  });

  it("calibrates with valid programs: the simulator runs each without a failure", () => {
    const cals = calibrationPrograms(64);
    expect(cals.map((c) => c.name)).toEqual(["touch", "fork", "pin", "vmsplice", "uffd", "switch", "thp", "swap"]);
    for (const c of cals) {
      const k = createKernel({ ...programKernelSizes(c.program), oracle: false });
      expect(execute(k, c.program).failures, c.name).toEqual({});
    }
  });
});

const native = buildNative();

describe.skipIf(!native.ok)("cost model on the host", () => {
  it("measures a cost for every event (swap's only with swap), cached per machine", () => {
    const dir = mkdtempSync(join(tmpdir(), "cowsim-cost-"));
    try {
      const file = join(dir, "sub", "cost-model.json");
      const m = cachedCostModel(file, { pages: 64, rounds: 1 }) as CostModel;
      expect(m.machine).toBe(hostMachine());
      const swap = !m.notes?.some((n) => n.startsWith("swap:"));
      const expected = Object.keys(COST_EVENTS).filter((e) => swap || (e !== "swapOut" && e !== "swapIn")).sort();
      expect(Object.keys(m.costs).sort()).toEqual(expected);
      for (const [e, v] of Object.entries(m.costs)) expect(Number.isFinite(v) && v >= 0, e).toBe(true);
      // the second bench run reads it back instead of measuring
      const before = statSync(file).mtimeMs;
      expect(cachedCostModel(file, { pages: 64, rounds: 1 })).toEqual(m);
      expect(statSync(file).mtimeMs).toBe(before);
      // another machine's model is measured again and replaced
      writeFileSync(file, JSON.stringify({ ...m, machine: "elsewhere" }));
      expect((cachedCostModel(file, { pages: 64, rounds: 1 }) as CostModel).machine).toBe(hostMachine());
      expect((JSON.parse(readFileSync(file, "utf8")) as CostModel).machine).toBe(hostMachine());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("measures with the given rounds and pages", () => {
    const m = measureCostModel({ pages: 32, rounds: 2 });
    expect(m.pages).toBe(32);
    expect(m.rounds).toBe(2);
    expect(m.costs["cowCopy"]).toBeGreaterThanOrEqual(0);
  });
});
