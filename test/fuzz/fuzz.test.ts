// The fuzzer: a failure is found, told apart by its signature, shrunk, and written as a scenario
// file that replays with the same finding; the search is deterministic for a seed and a budget.
import { describe, it, expect } from "vitest";
import { fuzz, runSequence, failureScenario, parseScenarios, runScenario, type Op } from "../../src/index.js";

/** CVE-2020-29374 in the generator's terms: a pipe holds a page the other process reuses. */
const CVE: Op[] = [
  { op: "write", who: 0, slot: 0 },
  { op: "vmsplice", who: 0, slot: 0, pages: 1 },
  { op: "fork", who: 0 },
  { op: "munmap", who: 0, slot: 0, pages: 1 },
  { op: "write", who: 1, slot: 0 },
  { op: "release", user: 0, reader: 0 },
];
/** The same, buried among steps that change nothing it depends on. */
const NOISY: Op[] = [
  { op: "read", who: 0, slot: 5 }, { op: "write", who: 0, slot: 9 }, CVE[0]!, { op: "read", who: 0, slot: 9 },
  CVE[1]!, { op: "write", who: 0, slot: 12 }, CVE[2]!, { op: "read", who: 1, slot: 12 }, { op: "write", who: 1, slot: 20 },
  CVE[3]!, { op: "read", who: 0, slot: 30 }, CVE[4]!, { op: "write", who: 0, slot: 31 }, CVE[5]!, { op: "read", who: 1, slot: 9 },
];

describe("runSequence", () => {
  it("reports CVE-2020-29374 under mapcount as a missed COW at the pipe read, with its transcript", () => {
    const out = runSequence(CVE, "mapcount", undefined);
    expect(out.failure).toMatchObject({ signature: "missed-cow@pipe_read", kind: "finding", step: 6, findings: ["missed-cow"] });
    expect(out.failure!.steps.map((s) => s.op)).toEqual(["mmap", "write", "vmsplice", "fork", "munmap", "write", "pipe_read"]);
  });

  it.each(["pagecount", "anon-exclusive"] as const)("finds nothing under %s: the write copies", (strategy) => {
    expect(runSequence(CVE, strategy, undefined)).toEqual({ steps: 6, failure: null });
  });

  it("passes a known signature over and goes on", () => {
    const twice: Op[] = [...CVE, { op: "mprotect", who: 0, slot: 40, pages: 1, prot: 0 }, { op: "write", who: 0, slot: 40 }];
    expect(runSequence(twice, "mapcount", undefined, undefined, new Set(["missed-cow@pipe_read"])).failure).toBeNull();
  });
});

describe("fuzz", () => {
  it("shrinks a failing sequence to the steps it needs, and writes it as a scenario that replays it", () => {
    const r = fuzz({ strategy: "mapcount", sequences: 1, examples: [NOISY], seed: 5, stopOn: "missed-cow@pipe_read" });
    expect(r.failures).toHaveLength(1);
    const [f] = r.failures;
    expect(f).toMatchObject({ signature: "missed-cow@pipe_read", foundSteps: NOISY.length });
    expect(f!.ops).toEqual(CVE);
    const yaml = failureScenario(f!, { strategy: "mapcount" });
    expect(yaml).toMatch(/^name: "fuzz: missed-cow@pipe_read under mapcount"$/m);
    const [scenario] = parseScenarios("fuzz.yaml", yaml);
    const result = runScenario(scenario!);
    expect(result.pass).toBe(true);
    expect(result.runs[0]!.findings.map((x) => x.kind)).toEqual(["missed-cow"]);
  });

  it("is deterministic for a seed and a budget of sequences", () => {
    const sigs = () => fuzz({ strategy: "mapcount", ops: "users", sequences: 15, seed: 11 }).failures.map((f) => [f.signature, f.ops.length]);
    const a = sigs();
    expect(a.length).toBeGreaterThan(0);
    expect(sigs()).toEqual(a);
  });

  it("reports steps, sequences and a rate", () => {
    const r = fuzz({ strategy: "anon-exclusive", ops: "syscalls", sequences: 5, seed: 3 });
    expect(r).toMatchObject({ strategy: "anon-exclusive", seed: 3, sequences: 5, failures: [] });
    expect(r.steps).toBeGreaterThanOrEqual(25);
    expect(r.stepsPerSecond).toBeGreaterThan(0);
  });
});
