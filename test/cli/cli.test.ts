// The cowsim command end to end, as a spawned process: exit status, stdout, stderr, files.
import { cowsim, CVE } from "./helpers.js";
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";



let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cowsim-cli-"));
});

const scenario = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const head = "name: t\nreference: [{ commit: 17839856fd58 }]\n";

describe("cowsim", () => {
  it("--help for the program and for every command", () => {
    const top = cowsim("--help");
    expect(top.status).toBe(0);
    for (const c of ["run", "explain", "check", "schema"]) expect(top.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    for (const c of ["run", "explain", "check", "schema"]) {
      const h = cowsim(c, "--help");
      expect(h.status, c).toBe(0);
      expect(h.stdout, c).toMatch(new RegExp(`^Usage: cowsim ${c}`));
    }
    expect(cowsim("check", "--help").stdout).toMatch(/--tap .*\n.*--json[\s\S]*--trace <file>/);
  });

  it("an unknown command or a missing argument: stderr, exit 2", () => {
    const u = cowsim("frobnicate");
    expect([u.status, u.stdout]).toEqual([2, ""]);
    expect(u.stderr).toBe("cowsim: error: unknown command 'frobnicate'\n(cowsim --help lists the commands)\n");
    const m = cowsim("run");
    expect([m.status, m.stdout]).toEqual([2, ""]);
    expect(m.stderr).toMatch(/missing required argument 'file'/);
  });

  it("run: a table per strategy, the findings, exit 0 when every expectation holds; no colour off a terminal", () => {
    const r = cowsim("run", CVE);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    const rows = r.stdout.split("\n").filter((l) => /^  (mapcount|pagecount|anon-exclusive) /.test(l)).map((l) => l.trim().split(/\s{2,}/));
    expect(rows.map((x) => [x[0], x[2], x[3], x[4], x[5], x[6], x[7]])).toEqual([
      ["mapcount", "PASS", "1", "0", "0", "0", "1"],
      ["pagecount", "PASS", "0", "0", "0", "1", "0"],
      ["anon-exclusive", "PASS", "0", "0", "0", "1", "0"],
    ]);
    expect(r.stdout).toMatch(/mapcount: missed-cow at step 7 \(line 23\): missed COW: the pipe of pid 2 shows 2/);
    expect(r.stdout).toMatch(/all 3 runs passed\n$/);
    expect(r.stdout).not.toMatch(/\x1b\[/);
  });

  it("run: a failed expectation is shown and gives exit 1", () => {
    const f = scenario("fails.yaml", `${head}steps:\n  - { op: mmap, as: a, pages: 1 }\n  - { op: read, addr: a, expect: { all: 0, pagecount: 9 } }\n`);
    const r = cowsim("run", f);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("  pagecount: step 2 (line 5) read: expected 9, got 0");
    expect(r.stdout).toMatch(/1 of 3 runs failed\n$/);
  });

  it("run: malformed files are reported all at once, on stderr, and nothing runs (exit 2)", () => {
    const good = scenario("good.yaml", `${head}steps: [{ op: mmap, as: a, pages: 1 }]\n`);
    const bad = scenario("bad.yaml", `${head}steps:\n  - { op: mmap, as: a, pagse: 1 }\n  - { op: read, addr: b }\n`);
    const worse = scenario("worse.json", `{"name": "w", "steps": []`);
    const r = cowsim("run", good, bad, worse, join(dir, "missing.yaml"));
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr.split("\n")).toEqual([
      `${bad}:4:5: error: mmap needs length or pages`,
      `${bad}:4:24: error: unknown key "pagse" in steps[0] (did you mean "pages"?); expected one of op, comment, error, process, as, addr, length, pages, prot, flags, file, offset`,
      `${bad}:5:23: error: "b" names no range; ranges so far: a`,
      `${worse}:1:26: error: syntax error: Flow map must end with a }`,
      `${join(dir, "missing.yaml")}:1:1: error: cannot read the file: no such file (ENOENT)`,
      "5 problems; nothing was run",
      "",
    ]);
  });

  it("run --json: the results for machines", () => {
    const r = cowsim("run", "--json", CVE);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { scenarios: { name: string; runs: { run: string; pass: boolean; counters: Record<string, number>; findings: { kind: string; line: number; chain: { fn: string }[] }[] }[] }[] };
    expect(j.scenarios[0]!.runs.map((x) => [x.run, x.pass, x.counters.missedCow, x.findings.map((f) => [f.kind, f.line])])).toEqual([
      ["mapcount", true, 1, [["missed-cow", 23]]], ["pagecount", true, 0, []], ["anon-exclusive", true, 0, []],
    ]);
    expect(j.scenarios[0]!.runs[0]!.findings[0]!.chain.map((c) => c.fn)).toEqual(["do_anonymous_page", "dup_mmap", "vmsplice", "do_vmi_munmap", "do_wp_page", "store", "pipe_read"]);
  });

  it("explain: each finding as the steps and the kernel decisions that led to it", () => {
    const r = cowsim("explain", CVE);
    expect(r.status).toBe(0);
    const text = r.stdout;
    expect(text).toContain("mapcount — Linux ≤ 5.7: 1 finding\n  1. missed-cow at step 7 (line 23): missed COW");
    expect(text).toContain("     step 6 (line 22): parent: write(buf, value: 2)\n       5. do_wp_page: pid 1 write fault at 0x7ffff7ffe000 on pfn 1: reuse_swap_page(): page_mapcount() 1 + swap count 0 = 1 ≤ 1 — reuse  [reuses]");
    expect(text).toMatch(/7\. pipe_read: .* may only show 1: a later write by another process leaked through  \[missedCow\]/);
    expect(text).toMatch(/pagecount — Linux [0-9.]+ .*: no finding/);
  });

  it("check --tap --trace: TAP for the whole catalog, and a trace Perfetto opens", () => {
    const trace = join(dir, "trace.json");
    const r = cowsim("check", "--tap", "--trace", trace);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe("TAP version 13");
    const n = Number(/^1\.\.(\d+)$/.exec(lines[1]!)![1]);
    expect(n).toBeGreaterThanOrEqual(120);
    const points = lines.filter((l) => /^(not )?ok \d+ /.test(l));
    expect(points.length).toBe(n);
    expect(points.filter((l) => l.startsWith("not ok"))).toEqual([]);
    expect(lines).toContain(`# Totals: pass:${n} fail:0 xfail:0 xpass:0 skip:0 error:0`);
    expect(r.stdout).toMatch(/^# mapcount +Linux ≤ 5\.7 +[1-9]/m);

    const t = JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; ph: string; pid: number; tid: number; ts?: number; dur?: number; cat?: string; args?: Record<string, unknown> }[] };
    const ev = t.traceEvents;
    const names = ev.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => e.args!.name as string);
    expect(names).toContain("CVE-2020-29374: vmsplice() in the child, unmap, the parent writes [mapcount]");
    const cvePid = ev.find((e) => e.ph === "M" && e.args?.name === "CVE-2020-29374: vmsplice() in the child, unmap, the parent writes [mapcount]")!.pid;
    const mine = ev.filter((e) => e.pid === cvePid);
    expect(mine.filter((e) => e.cat === "step").map((e) => e.name)).toEqual([
      "parent: mmap(pages: 1) → buf", "parent: write(buf, value: 1)", "parent: fork() → child", "child: vmsplice(buf) → pipe",
      "child: munmap(buf)", "parent: write(buf, value: 2)", "pipe_read(pipe, reader: child)",
    ]);
    expect(mine.filter((e) => e.cat === "kernel").map((e) => e.name)).toEqual(expect.arrayContaining(["do_anonymous_page", "dup_mmap", "do_wp_page", "unpin_user_pages"]));
    expect(mine.filter((e) => e.ph === "i").map((e) => [e.name, e.cat])).toEqual([["missed-cow", "finding"]]);
    const counters = mine.filter((e) => e.ph === "C");
    expect(counters.at(-1)!.args).toEqual({ copies: 0, reuses: 1, missedCow: 1, unnecessaryCow: 0, wrongCow: 0 });
    // slices of a thread nest: each kernel slice lies inside its step's slice
    for (const k of mine.filter((e) => e.cat === "kernel")) {
      const s = mine.find((e) => e.cat === "step" && e.tid === k.tid && e.ts! <= k.ts! && k.ts! + k.dur! <= e.ts! + e.dur!);
      expect(s, k.name).toBeDefined();
    }
  });

  it("check: a failing scenario of another catalog gives FAIL in the matrix and exit 1", () => {
    const cat = join(dir, "catalog");
    mkdirSync(cat);
    writeFileSync(join(cat, "a.yaml"), `${head}steps:\n  - { op: mmap, as: a, pages: 1 }\n  - { op: read, addr: a, expect: { mapcount: 1, all: 0 } }\n`);
    const r = cowsim("check", "--catalog", cat);
    expect(r.status).toBe(1);
    expect(r.stdout.split("\n").slice(0, 2).map((l) => l.split(/\s+/))).toEqual([["scenario", "mapcount", "pagecount", "anon-exclusive"], ["a", "FAIL", "PASS", "PASS"]]);
    expect(r.stdout).toContain(`FAIL ${join(cat, "a.yaml")} [mapcount]: step 2 (line 5) read: expected 1, got 0`);
    const nowhere = cowsim("check", "--catalog", join(dir, "nowhere"));
    expect([nowhere.status, nowhere.stdout, nowhere.stderr]).toEqual([2, "", `cowsim: error: cannot read the catalog ${join(dir, "nowhere")} (ENOENT)\n`]);
  });

  it("schema: the JSON Schema, which validates the catalog's files", () => {
    const r = cowsim("schema");
    expect(r.status).toBe(0);
    const schema = JSON.parse(r.stdout) as object;
    const validate = new Ajv2020({ discriminator: true, allowUnionTypes: true }).compile(schema);
    expect(validate(parse(readFileSync(CVE, "utf8")))).toBe(true);
    expect(validate({ name: "x", reference: [{ cve: "CVE-2020-29374" }], steps: [{ op: "mmap", as: "a", pages: 1, colour: "red" }] })).toBe(false);
  });
});
