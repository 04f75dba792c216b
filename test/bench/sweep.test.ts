// Sweep specs (expansion, shards, errors with their places), the worker pool (parallel rows
// equal serial ones), the merge of shards (equal to the unsharded report), and the text reports.
import { describe, expect, it } from "vitest";
import { expandSweep, parseShard, parseSweepSpec, shardJobs, SweepSpecError } from "../../src/bench/spec.js";
import { runJobs } from "../../src/bench/sweep.js";
import { markdownReport, mergeShards, terminalTable, timelessReport, type ShardReport } from "../../src/bench/report.js";
import { timeless } from "../../src/bench/run.js";
import type { BenchReport } from "../../src/bench/result.js";

const SPEC = `# a small sweep
workloads:
  - fork-snapshot
  - name: vmsplice-server
    params: { requests: [8, 16], helperEvery: 2 }
sizes: [small]
strategies: [mapcount, anon-exclusive]
seeds: [1, 2]
variants:
  - name: base
  - name: gup-cow
    strategies: [mapcount]
    knobs: { gupBreaksCow: true }
`;

const problems = (text: string) => {
  try {
    parseSweepSpec("s.yaml", text);
  } catch (e) {
    if (e instanceof SweepSpecError) return e.diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
    throw e;
  }
  return [];
};

describe("sweep specs", () => {
  it("expand in order: workload, parameter point, size, seed, variant, strategy", () => {
    const jobs = expandSweep(parseSweepSpec("s.yaml", SPEC));
    // (1 + 2 parameter points) × 2 seeds × (base: 2 strategies + gup-cow: mapcount only)
    expect(jobs).toHaveLength(3 * 2 * 3);
    expect(jobs.slice(0, 4).map((j) => j.id)).toEqual([
      "000000:fork-snapshot@small:seed=1:mapcount+base",
      "000001:fork-snapshot@small:seed=1:anon-exclusive+base",
      "000002:fork-snapshot@small:seed=1:mapcount+gup-cow",
      "000003:fork-snapshot@small:seed=2:mapcount+base",
    ]);
    expect(jobs[6]!.id).toBe("000006:vmsplice-server@small,requests=8,helperEvery=2:seed=1:mapcount+base");
    expect(jobs[2]!.job).toEqual({ workload: "fork-snapshot", size: "small", seed: 1, strategy: "mapcount", knobs: { gupBreaksCow: true }, variant: "gup-cow" });
    expect(jobs.map((j) => j.index)).toEqual(jobs.map((_, i) => i));
  });

  it("shard K/N takes every N-th job from K - 1, and the shards partition the list", () => {
    const jobs = expandSweep(parseSweepSpec("s.yaml", SPEC));
    expect(shardJobs(jobs, 2, 4).map((j) => j.index)).toEqual([1, 5, 9, 13, 17]);
    const all = [1, 2, 3, 4].flatMap((k) => shardJobs(jobs, k, 4).map((j) => j.index)).sort((a, b) => a - b);
    expect(all).toEqual(jobs.map((j) => j.index));
    expect(parseShard("3/4")).toEqual({ k: 3, n: 4 });
    for (const bad of ["0/4", "5/4", "1/0", "a/b", "1", "-1/2"]) expect(parseShard(bad), bad).toBeNull();
  });

  it("every problem at once, each at its line and column", () => {
    expect(problems(`workloads:
  - fork-snapshott
  - name: vmsplice-server
    params: { requests: [0, 8], nope: 1 }
strategies: [mapcount, pagecont]
variants:
  - name: v
    knobs: { gupBreaksCow: true }
`)).toEqual([
      `2:5: unknown workload "fork-snapshott" (did you mean "fork-snapshot"?) (known: fork-snapshot, pinned-rdma-fork, iouring-pressure, vmsplice-server, thp-heavy, uffd-gc, random-mix)`,
      "4:26: vmsplice-server: requests must be an integer from 1 to 2^53 - 1, not 0",
      `4:33: workload vmsplice-server has no parameter "nope" (it has: bufferPages, requests, maxSplice, helperEvery, pipeDepth)`,
      `5:24: unknown strategy "pagecont" (did you mean "pagecount"?) (known: mapcount, pagecount, anon-exclusive)`,
    ]);
    // a variant's knobs must be every one of its strategies' (here: all three, by default)
    expect(problems("workloads: [fork-snapshot]\nvariants:\n  - name: v\n    knobs: { gupBreaksCow: true }\n")).toEqual([
      `4:14: variant v: strategy pagecount has no knob "gupBreaksCow" (it has: forkCopyPinned, pinnedNotSwapped, clearRefsSkipsPinned, freeSwapCacheAfterCow, swapcacheReuse, thpPagecountReuse, lruDrainReuse); name the strategies it is for`,
      `4:14: variant v: strategy anon-exclusive has no knob "gupBreaksCow" (it has: swapExclusive, migrationReadExclusive, gupFastBarriers, gupFastPteRecheck, unmapClearsPte, gupFastWriteProtectSeq, roLongtermPinAnyCow, mprotectWriteUpgrade, directIoPins); name the strategies it is for`,
    ]);
    expect(problems("workloads: [fork-snapshot]\nsizes: [huge]\nseed: [1]\n")).toEqual([
      "2:9: sizes[0] must be one of small, default, large",
      `3:1: unknown key "seed" (did you mean "seeds"?)`,
    ]);
    expect(problems("workloads: [3]\n")).toEqual(["1:13: a workload is a name, or { name, params: { parameter: value or [values] } }"]);
    expect(problems("workloads: [a\n")).toEqual(["2:1: syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]"]);
    expect(problems("sizes: [small]\n")).toEqual(["1:1: the spec must have required property 'workloads'"]);
  });
});

describe("running a job list", () => {
  const jobs = expandSweep(parseSweepSpec("s.yaml", SPEC)).map((j) => j.job);

  it("over worker threads gives the rows a serial run gives, in job order", async () => {
    const serial = await runJobs(jobs, { threads: 1 });
    const seen: number[] = [];
    const parallel = await runJobs(jobs, { threads: 2, onProgress: (done) => seen.push(done) });
    expect(parallel.map(timeless)).toEqual(serial.map(timeless));
    expect(seen).toEqual(jobs.map((_, i) => i + 1));
    // the variant shows: gupBreaksCow (5.8's 17839856fd58) breaks COW at vmsplice, so no missed COW
    const at = (variant: string) => serial.find((r) => r.workload === "vmsplice-server" && r.strategy === "mapcount" && r.variant === variant && r.params.requests === 16)!;
    expect(at("base").metrics.missedCow).toBeGreaterThan(0);
    expect(at("gup-cow").metrics.missedCow).toBe(0);
  });

  it("merged shards are the unsharded report, times aside", async () => {
    const listed = expandSweep(parseSweepSpec("s.yaml", SPEC));
    const rows = await runJobs(listed.map((j) => j.job), { threads: 1 });
    const whole: BenchReport = { version: 1, machine: "m", command: "cowsim bench --sweep s.yaml", rows, jobs: listed.map((j) => j.id) };
    const n = 4;
    const shards = await Promise.all([3, 1, 4, 2].map(async (k) => {
      const mine = shardJobs(listed, k, n);
      const report: ShardReport = {
        version: 1, machine: "m", command: whole.command, rows: await runJobs(mine.map((j) => j.job), { threads: 1 }),
        jobs: mine.map((j) => j.id), shard: { k, n, total: listed.length },
      };
      return { file: `shard-${k}.json`, report };
    }));
    expect(timelessReport(mergeShards(shards))).toEqual(timelessReport(whole));
    expect(() => mergeShards(shards.slice(1))).toThrow("shard 3/4 missing (3 of 4 found)");
    expect(() => mergeShards([...shards, shards[0]!])).toThrow("shard 3/4 is there twice: shard-3.json and shard-3.json");
    const other = { ...shards[1]!, report: { ...shards[1]!.report, command: "cowsim bench --sweep t.yaml" } };
    expect(() => mergeShards([shards[0]!, other])).toThrow('is a shard of "cowsim bench --sweep t.yaml"');
  });
});

describe("text reports", () => {
  it("a table per workload run and Markdown with the faults by kind", async () => {
    const rows = await runJobs([
      { workload: "vmsplice-server", size: "small", seed: 1, strategy: "mapcount" },
      { workload: "vmsplice-server", size: "small", seed: 1, strategy: "anon-exclusive" },
    ], { threads: 1 });
    const report: BenchReport = { version: 1, machine: "m", command: "cowsim bench vmsplice-server --size small", rows };
    const table = terminalTable(report).split("\n");
    expect(table[0]).toBe("vmsplice-server (small, seed 1: bufferPages=16 requests=12 maxSplice=4 helperEvery=4 pipeDepth=3)");
    expect(table[1]!.split(/\s{2,}/)).toEqual(["strategy", "copies", "reuses", "unnec.", "missed", "wrong", "faults", "frames", "swap out/in", "GUP pages/fail", "accesses/s"]);
    expect(table[2]!.split(/\s+/).slice(0, 10)).toEqual(["mapcount", "7", "6", "0", "1", "0", "29", "20", "0/0", "28/0"]);
    expect(table[4]).toBe("  mapcount        faults: anon 16, wp 13");
    const md = markdownReport(report).split("\n");
    expect(md[0]).toBe("# cowsim bench");
    expect(md).toContain("| strategy | copies | reuses | unnec. | missed | wrong | faults | frames | swap out/in | GUP pages/fail | accesses/s | faults by kind |");
    expect(md.find((l) => l.startsWith("| anon-exclusive |"))!.split(" | ").slice(1, 10)).toEqual(["11", "2", "0", "0", "0", "29", "21", "0/0", "28/0"]);
  });
});
