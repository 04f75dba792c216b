// `cowsim bench` end to end: list, the outputs' shapes, --quiet and progress, errors, plan files
// (GNU parallel's job list, the Kubernetes Indexed Job), shards merged into the unsharded report,
// and a plan run by GNU parallel on this machine.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { cowsim, MAIN } from "./helpers.js";
import { progressBar } from "../../src/cli/bench.js";
import { timelessReport } from "../../src/bench/report.js";
import type { BenchReport } from "../../src/bench/result.js";

const dir = mkdtempSync(join(tmpdir(), "cowsim-bench-"));
const spec = join(dir, "sweep.yaml");
writeFileSync(spec, `workloads:
  - fork-snapshot
  - name: vmsplice-server
    params: { requests: [6, 12] }
sizes: [small]
strategies: [mapcount, anon-exclusive]
seeds: [1, 2]
`);
const json = (stdout: string) => JSON.parse(stdout) as BenchReport;
const hasParallel = spawnSync("parallel", ["--version"], { encoding: "utf8" }).status === 0;

describe("cowsim bench", () => {
  it("list names every workload with what it stands for and its parameters", () => {
    const r = cowsim("bench", "list");
    expect(r.status).toBe(0);
    for (const w of ["fork-snapshot", "pinned-rdma-fork", "iouring-pressure", "vmsplice-server", "thp-heavy", "uffd-gc", "random-mix"]) {
      expect(r.stdout).toMatch(new RegExp(`^${w} — `, "m"));
    }
    expect(r.stdout).toContain("stands for: Redis BGSAVE");
    expect(r.stdout).toMatch(/^ {2}heapPages +small +64 +default +65536 +large +262144 /m);
    const listed = JSON.parse(cowsim("bench", "list", "--json").stdout) as { name: string; params: Record<string, { small: number }> }[];
    expect(listed.map((w) => w.name)).toHaveLength(7);
    expect(listed[0]!.params.heapPages!.small).toBe(64);
  });

  it("--json: a report of one row per workload × strategy, the counts of the small size", () => {
    const r = cowsim("bench", "vmsplice-server", "fork-snapshot", "--size", "small", "--strategies", "mapcount,pagecount", "--json");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    const report = json(r.stdout);
    expect(report.version).toBe(1);
    expect(report.command).toBe("cowsim bench vmsplice-server fork-snapshot --size small --strategies mapcount,pagecount --seed 1");
    expect(report.rows.map((x) => `${x.workload}/${x.strategy}`)).toEqual([
      "vmsplice-server/mapcount", "vmsplice-server/pagecount", "fork-snapshot/mapcount", "fork-snapshot/pagecount",
    ]);
    const row = report.rows[0]!;
    expect(row.metrics).toMatchObject({ copies: 7, reuses: 6, missedCow: 1, faults: { anon: 16, wp: 13 }, gupPages: 28 });
    expect(Object.keys(row).sort()).toEqual(["accessesPerSecond", "knobs", "metrics", "oracle", "params", "seconds", "seed", "size", "stepsPerSecond", "strategy", "timeline", "workload"]);
    expect(row.seconds).toBeGreaterThan(0);
  });

  it("--md prints Markdown; the table is the default; --quiet prints nothing; no progress bar off a terminal", () => {
    const md = cowsim("bench", "fork-snapshot", "--size", "small", "--md");
    expect(md.stdout.split("\n").slice(0, 5)).toEqual([
      "# cowsim bench", "", expect.stringMatching(/^`cowsim bench fork-snapshot --size small --seed 1` on /), "",
      "## fork-snapshot (small, seed 1: heapPages=64 writePercent=25 zipf=99 chunks=4 afterPercent=25)",
    ]);
    expect(md.stdout).toMatch(/^\| mapcount \| 11 \| 7 \| 0 \| 0 \| 0 \| 82 \| 75 \| 0\/0 \| 0\/0 \| \S+ \| anon 64, wp 18 \|$/m);
    const table = cowsim("bench", "fork-snapshot", "--size", "small");
    expect(table.stdout).toMatch(/^strategy +copies +reuses +unnec\. +missed +wrong +faults +frames +swap out\/in +GUP pages\/fail +accesses\/s$/m);
    expect(table.stdout).toMatch(/^anon-exclusive +11 +7 +0 +0 +0 +82 +75 +0\/0 +0\/0 +\S+$/m);
    // stderr is a pipe here, not a terminal: no bar
    expect(table.stderr).toBe("");
    const quiet = cowsim("bench", "fork-snapshot", "--size", "small", "--quiet");
    expect([quiet.status, quiet.stdout, quiet.stderr]).toEqual([0, "", ""]);
  });

  it("a progress bar only on a terminal, and never with --quiet", () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 80, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    let written = "";
    tty.on("data", (b: Buffer) => { written += b.toString(); });
    const bar = progressBar(tty as unknown as NodeJS.WriteStream, false, 4);
    expect(bar).not.toBeNull();
    bar!.update(2, { job: "fork-snapshot mapcount" });
    bar!.stop();
    expect(written).toContain("2/4 runs");
    expect(progressBar(tty as unknown as NodeJS.WriteStream, true, 4)).toBeNull();
    expect(progressBar(Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream, false, 4)).toBeNull();
  });

  it("bad input: a message, exit 2, nothing run", () => {
    const cases: [string[], string][] = [
      [["bench", "fork-snapsot"], 'cowsim: error: unknown workload "fork-snapsot" (did you mean "fork-snapshot"?); `cowsim bench list` lists them\n'],
      [["bench", "--strategies", "mapcount,nope"], 'cowsim: error: unknown strategy "nope" (known: mapcount, pagecount, anon-exclusive)\n'],
      [["bench", "--seed", "x"], "cowsim: error: --seed must be an integer from 0 to 4294967295, not x\n"],
      [["bench", "--shard", "3/2", "--out", dir], "cowsim: error: --shard takes K/N with 1 ≤ K ≤ N, not 3/2\n"],
      [["bench", "--shard", "1/2"], "cowsim: error: --shard needs --out DIR: where the shard file goes\n"],
      [["bench", "--sweep", join(dir, "none.yaml")], `cowsim: error: cannot read the sweep spec ${join(dir, "none.yaml")} (ENOENT)\n`],
      [["bench", "merge", join(dir, "none")], `cowsim: error: cannot read ${join(dir, "none")} (ENOENT)\n`],
    ];
    for (const [args, err] of cases) {
      const r = cowsim(...args);
      expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: 2, stdout: "", stderr: err });
    }
    const size = cowsim("bench", "--size", "huge");
    expect([size.status, size.stderr]).toEqual([2, expect.stringContaining("error: option '--size <size>' argument 'huge' is invalid. Allowed choices are small, default, large.")]);
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "workloads: [fork-snapshot]\nsizes: [tiny]\n");
    const r = cowsim("bench", "--sweep", bad);
    expect([r.status, r.stdout, r.stderr]).toEqual([2, "", `${bad}:2:9: error: sizes[0] must be one of small, default, large\ncowsim: error: 1 problem in ${bad}; nothing was run\n`]);
  });

  it("--vs-kernel runs each program on the host beside its estimate; --html writes the report", () => {
    const html = join(dir, "report.html");
    // a cost-model cache of this test's own, so the run measures it and leaves no file behind elsewhere
    const r = spawnSync(process.execPath, [MAIN, "bench", "fork-snapshot", "--size", "small", "--strategies", "anon-exclusive", "--vs-kernel", "--html", html, "--json"],
      { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "", XDG_CACHE_HOME: join(dir, "cache") } });
    expect(r.status).toBe(0);
    const report = json(r.stdout);
    const row = report.rows[0]!;
    const hasCc = spawnSync("cc", ["--version"]).status === 0;
    if (hasCc) {
      expect(report.costModel!.costs.anonFault).toBeGreaterThan(0);
      expect(row.estimate!.seconds).toBeGreaterThan(0);
      expect(row.kernel!.seconds).toBeGreaterThan(0);
      expect(row.kernel!.ratio).toBeCloseTo(row.kernel!.seconds / row.seconds, 6);
      expect(readdirSync(join(dir, "cache", "cowsim"))).toEqual(["cost-model.json"]);
    } else expect(r.stderr).toContain("--vs-kernel skipped: ");
    const page = readFileSync(html, "utf8");
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain("fork-snapshot");
    const table = cowsim("bench", "fork-snapshot", "--size", "small", "--strategies", "anon-exclusive");
    expect(table.stdout).not.toContain("kernel/sim");
  });

  it("plan --format parallel: one shard command a line", () => {
    const r = cowsim("bench", "plan", spec, "--shards", "3", "--out", join(dir, "out"), "--command", "npx cowsim");
    expect(r.status).toBe(0);
    expect(r.stdout.trimEnd().split("\n")).toEqual([1, 2, 3].map((k) => `npx cowsim bench --sweep ${spec} --shard ${k}/3 --out ${join(dir, "out")} --threads 1 --quiet`));
  });

  it("plan --format k8s: a ConfigMap with the spec and an Indexed Job of N completions", () => {
    const r = cowsim("bench", "plan", spec, "--shards", "4", "--format", "k8s", "--image", "registry.example/cowsim:1");
    expect(r.status).toBe(0);
    const docs = parseAllDocuments(r.stdout);
    expect(Array.isArray(docs) && docs.every((d) => d.errors.length === 0)).toBe(true);
    const [cm, job] = (docs as ReturnType<typeof parseAllDocuments> & unknown[]).map((d) => (d as { toJS(): unknown }).toJS()) as [
      { kind: string; data: Record<string, string> },
      { apiVersion: string; kind: string; spec: { completionMode: string; completions: number; parallelism: number; template: { spec: { restartPolicy: string; containers: { image: string; command: string[] }[] } } } },
    ];
    expect(cm.kind).toBe("ConfigMap");
    expect(cm.data["sweep.yaml"]).toContain("vmsplice-server");
    expect([job.apiVersion, job.kind, job.spec.completionMode, job.spec.completions, job.spec.parallelism]).toEqual(["batch/v1", "Job", "Indexed", 4, 4]);
    const c = job.spec.template.spec.containers[0]!;
    expect(job.spec.template.spec.restartPolicy).toBe("Never");
    expect(c.image).toBe("registry.example/cowsim:1");
    expect(c.command).toEqual(["sh", "-c", "cowsim bench --sweep /spec/sweep.yaml --shard $((JOB_COMPLETION_INDEX + 1))/4 --out /results/bench-shards --quiet"]);
  });

  it("shards merged are the unsharded report, times aside", () => {
    const whole = cowsim("bench", "--sweep", spec, "--json", "--threads", "2");
    expect(whole.status).toBe(0);
    const out = join(dir, "shards");
    for (const k of [2, 1, 3]) {
      const r = cowsim("bench", "--sweep", spec, "--shard", `${k}/3`, "--out", out, "--quiet", "--threads", "1");
      expect([r.status, r.stdout, r.stderr]).toEqual([0, "", ""]);
    }
    expect(readdirSync(out).sort()).toEqual(["shard-1-of-3.json", "shard-2-of-3.json", "shard-3-of-3.json"]);
    const merged = cowsim("bench", "merge", out, "--json");
    expect(merged.status).toBe(0);
    const a = json(merged.stdout);
    const b = json(whole.stdout);
    expect(a.rows).toHaveLength(3 * 2 * 2);
    expect(timelessReport(a)).toEqual(timelessReport(b));
    // the merged table is the one a single run prints
    const t = cowsim("bench", "merge", out);
    expect(t.stdout).toMatch(/^vmsplice-server \(small, seed 2: bufferPages=16 requests=12 /m);
  });

  it.skipIf(!hasParallel && process.env.CI !== "true")("a plan run by GNU parallel merges into the unsharded report", () => {
    // in CI, .ci/run installs Debian's parallel: there this test must run, and fails if it cannot
    if (!hasParallel) console.warn("GNU parallel is not installed (apt-get install parallel): skipping outside CI");
    const out = join(dir, "gnu");
    const plan = cowsim("bench", "plan", spec, "--shards", "4", "--out", out, "--command", `${process.execPath} ${MAIN}`);
    expect(plan.status).toBe(0);
    const jobs = join(dir, "jobs.txt");
    writeFileSync(jobs, plan.stdout);
    const p = spawnSync("parallel", ["--will-cite", "--halt", "now,fail=1", "--jobs", "2", "::::", jobs], { encoding: "utf8" });
    expect({ status: p.status, stderr: p.stderr }).toEqual({ status: 0, stderr: "" });
    expect(readdirSync(out).sort()).toEqual([1, 2, 3, 4].map((k) => `shard-${k}-of-4.json`));
    const merged = json(cowsim("bench", "merge", out, "--json").stdout);
    const whole = json(cowsim("bench", "--sweep", spec, "--json").stdout);
    expect(timelessReport(merged)).toEqual(timelessReport(whole));
  });

  if (!hasParallel && process.env.CI !== "true") {
    it.skip("GNU parallel end to end: `parallel` is not installed (Debian: apt-get install parallel); .ci/run installs it", () => {});
  }
});
