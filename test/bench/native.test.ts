// The native companion (bench/kernel/workload.c) on the host kernel: every workload's small
// program runs to its end with the simulator's counts (steps, accesses, failures by op:ERRNO,
// no incoherent pin), failing steps fail with the simulator's errno, and bad input is refused
// with file:line and the parse exit code. Skipped only on a machine without a C compiler.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNative, kernelMeasurement, NativeError, runNative, type NativeBuild } from "../../src/bench/native.js";
import { WORKLOADS, ProgramBuilder, programToText } from "../../src/workloads/index.js";
import { simulate } from "../../bench/sim-row.js";
import { createKernel } from "../../src/kernel.js";
import { execute, programKernelSizes } from "../../src/workloads/execute.js";

let b: NativeBuild = buildNative();
const skip = !b.ok;
if (skip) console.warn(`native companion tests skipped: ${(b as { reason: string }).reason}`);

describe("native companion's build", () => {
  it("without a C compiler, says --vs-kernel is skipped", () => {
    expect(buildNative({ compilers: ["cowsim-no-such-cc"] })).toEqual({ ok: false, reason: "no C compiler (cc, gcc or clang; or $CC): --vs-kernel skipped" });
  });
});

describe.skipIf(skip)("native companion", () => {
  beforeAll(() => { b = buildNative(); });

  it("builds once per process, into the cache directory", () => {
    expect(b.ok).toBe(true);
    expect(buildNative()).toBe(b);
    const dir = mkdtempSync(join(tmpdir(), "cowsim-native-test-"));
    try {
      const own = buildNative({ cacheDir: dir });
      expect(own.ok && own.binary.startsWith(dir)).toBe(true);
      expect(readdirSync(dir).filter((f) => f.startsWith("workload-") && !f.endsWith(".tmp"))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const w of WORKLOADS) {
    it(`runs ${w.name} (small) on the host with the simulator's counts`, () => {
      const { row, program } = simulate(w, "small", "anon-exclusive", false);
      const run = runNative(program, { steps: true });
      expect(run.steps).toBe(program.steps.length);
      expect(run.stepSeconds).toHaveLength(program.steps.length);
      expect(Object.values(run.ops).reduce((n, o) => n + o.count, 0)).toBe(program.steps.length);
      expect(run.accesses).toBe(row.metrics.accesses);
      expect(run.errors).toEqual(row.metrics.failures);
      expect(run.incoherentPins).toBe(0);
      expect(run.processes).toBe(program.processes);
      const forks = program.steps.filter((s) => s.op === "fork").length;
      expect(run.ops["fork"]?.count ?? 0).toBe(forks);
      const m = kernelMeasurement(run, row.seconds);
      expect(m.seconds).toBe(run.seconds);
      expect(m.ratio).toBe(run.seconds / row.seconds);
    });
  }

  it("fails a step with the simulator's errno and goes on", () => {
    const p = new ProgramBuilder("errors", 0, {});
    const r = p.mmap(0, 4);
    p.add({ op: "write", proc: 0, region: r, pages: { first: 0, count: 4 }, value: 1 });
    const child = p.fork(0);
    p.add({ op: "exit", proc: child });
    // a step of a process gone
    p.add({ op: "write", proc: child, region: r, pages: { first: 0, count: 1 }, value: 2 });
    // a store to a read-only page
    p.add({ op: "mprotect", proc: 0, region: r, first: 0, count: 2, write: false });
    p.add({ op: "write", proc: 0, region: r, pages: { first: 1, count: 3 }, value: 3 });
    p.add({ op: "mprotect", proc: 0, region: r, first: 0, count: 2, write: true });
    // a pin released twice
    const pin = p.pin(0, r, 0, 2, "io_uring", true);
    p.add({ op: "unpin", pin });
    p.add({ op: "unpin", pin });
    // a store after the region is gone
    p.add({ op: "munmap", proc: 0, region: r });
    p.add({ op: "write", proc: 0, region: r, pages: { first: 0, count: 1 }, value: 4 });
    p.add({ op: "read", proc: 0, region: r, pages: { first: 0, count: 1 } });
    const program = p.build();
    const k = createKernel({ ...programKernelSizes(program), oracle: false });
    const sim = execute(k, program);
    const run = runNative(program);
    const expected = { "write:ESRCH": 1, "write:EFAULT": 2, "unpin:EINVAL": 1, "read:EFAULT": 1 };
    expect(sim.failures).toEqual(expected);
    expect(run.errors).toEqual(expected);
    expect(run.steps).toBe(program.steps.length);
    // 4 first stores, the store to page 1 faulted before it was made, nothing after munmap
    expect(run.accesses).toBe(sim.accesses);
  });

  it("refuses a bad program with file:line and the parse exit code", () => {
    const bad = (text: string) => {
      try {
        runNative(text);
      } catch (e) {
        expect(e).toBeInstanceOf(NativeError);
        expect((e as NativeError).kind).toBe("parse");
        return (e as Error).message;
      }
      throw new Error("accepted");
    };
    expect(bad("processes 1\nmmap proc=0 region=0 pages=4\n\nwrite proc=0 region=0 first=2 count=3 stride=1 value=1\n"))
      .toMatch(/<stdin>:4: pages first=2 count=3 stride=1 run outside region 0 \(4 pages\)/);
    expect(bad("processes 1\nwrite proc=0 region=0 first=0 count=1 value=1\n")).toMatch(/<stdin>:2: region=0 names a region not mapped before/);
    expect(bad("processes 1\nmmap proc=0 region=0 pages=4 colour=red\n")).toMatch(/<stdin>:2: mmap takes no colour=/);
    expect(bad("processes 1\nmmap proc=1 region=0 pages=4\n")).toMatch(/<stdin>:2: proc=1 is not below processes 1/);
    expect(bad("processes 1\nmmap proc=0 region=0 pages=-4\n")).toMatch(/pages=-4 is not an unsigned decimal/);
    expect(bad("processes 1\nmmap proc=0 region=0 pages=4\nwrite proc=0 region=0 list=1,9 value=1\n")).toMatch(/<stdin>:3: page 9 is outside region 0/);
    expect(bad("processes 1\nmmap proc=0 region=0 pages=4\nwrite proc=0 region=0 first=0 count=1 value=99999999999999999999\n")).toMatch(/value=.* is above/);
    expect(bad("mmap proc=0 region=0 pages=4\n")).toMatch(/<stdin>:1: the program must begin with "processes N"/);
    expect(bad("processes 1\nfrobnicate proc=0\n")).toMatch(/unknown step "frobnicate"/);
    expect(bad("processes 1\nmmap proc=0 region=0 pages=1099511627776\n")).toMatch(/pages=.* is above/);
  });

  it("reads the text programToText() writes, a comment and empty lines aside", () => {
    const p = new ProgramBuilder("text", 0, {});
    const r = p.mmap(0, 2, { huge: false, shared: true });
    p.add({ op: "write", proc: 0, region: r, pages: { list: [1, 0] }, value: 5 });
    const text = programToText(p.build()).replace("\n", "\n\n# a comment\n");
    const run = runNative(text);
    expect(run.steps).toBe(2);
    expect(run.accesses).toBe(2);
    expect(run.errors).toEqual({});
  });
});
