// The built-in catalog: every scenario passes under every run, as the real kernels behave, and
// the catalog covers what it promises (the cow.c anonymous cases on a base page and a swapped-out
// base page, CVE-2020-29374, seed 004's unnecessary COWs, swap, fork, mremap, mprotect).
import { describe, it, expect } from "vitest";
import { basename } from "node:path";
import { readFileSync } from "node:fs";
import { CATALOG_DIR, scenarioFiles, loadScenarios, runScenario, outcomeFor, STRATEGY_IDS } from "../../src/node.js";
import { runsOf } from "../../src/scenario/resolve.js";
import { BUILD } from "../helpers.js";
import { cellName } from "../../src/scenario/matrix.js";

const loaded = loadScenarios(scenarioFiles(CATALOG_DIR));
/** Each scenario's result, run once for all the tests that need it (the THP matrix is 700 scenarios). */
const results = new Map<number, ReturnType<typeof runScenario>>();
const resultOf = (i: number) => results.get(i) ?? (results.set(i, runScenario(loaded[i]!, { build: BUILD })), results.get(i)!);
const COW_C = "tools/testing/selftests/mm/cow.c";
/** anon_test_cases[] of cow.c (Linux 6.12) */
const COW_C_ANON_CASES = [
  "Basic COW after fork()",
  "Basic COW after fork() with mprotect() optimization",
  "vmsplice() + unmap in child",
  "vmsplice() + unmap in child with mprotect() optimization",
  "vmsplice() before fork(), unmap in parent after fork()",
  "vmsplice() + unmap in parent after fork()",
  "R/O-mapping a page registered as iouring fixed buffer",
  "fork() with an iouring fixed buffer",
  "R/O GUP pin on R/O-mapped shared page",
  "R/O GUP-fast pin on R/O-mapped shared page",
  "R/O GUP pin on R/O-mapped previously-shared page",
  "R/O GUP-fast pin on R/O-mapped previously-shared page",
  "R/O GUP pin on R/O-mapped exclusive page",
  "R/O GUP-fast pin on R/O-mapped exclusive page",
];

describe("the catalog", () => {
  it("has at least 40 scenarios, each with a reference and the kernels' findings for the three strategies", () => {
    expect(loaded.length).toBeGreaterThanOrEqual(40);
    for (const l of loaded) {
      const runs = runsOf(l.scenario).map((r) => r.name);
      expect(runs, l.file).toEqual(expect.arrayContaining([...STRATEGY_IDS]));
      for (const run of runs) expect(outcomeFor(l.scenario.expect, run).findings, `${l.file} [${run}]`).toBeDefined();
      expect(l.scenario.reference.length, l.file).toBeGreaterThan(0);
    }
  });

  it("covers every anonymous case of cow.c on a base page and on a swapped-out base page", () => {
    const cases = new Map<string, string[]>();
    for (const l of loaded) {
      for (const r of l.scenario.reference) {
        if ("selftest" in r && r.selftest === COW_C && r.case) cases.set(r.case, [...(cases.get(r.case) ?? []), basename(l.file)]);
      }
    }
    for (const c of COW_C_ANON_CASES) {
      const files = cases.get(c) ?? [];
      expect(files.filter((f) => /swap/.test(f)).length, `${c}: swapped-out`).toBeGreaterThanOrEqual(1);
      expect(files.filter((f) => !/swap/.test(f)).length, `${c}: base page`).toBeGreaterThanOrEqual(1);
    }
  });

  it("has cow.c's THP matrix: every anonymous case under each of do_run_with_thp()'s eight setups, at the PMD size and every mTHP size", () => {
    const cells = loaded.flatMap((l) => (l.cell?.matrix === "cow-thp" ? [l] : []));
    expect(cells).toHaveLength(14 * (2 + 6 * 8));
    const cases = new Set(cells.flatMap((l) => l.scenario.reference.flatMap((r) => ("selftest" in r && r.case ? [r.case] : []))));
    expect([...cases].sort()).toEqual([...COW_C_ANON_CASES].sort());
    expect(new Set(cells.map((l) => l.cell!.setup))).toEqual(new Set(["pmd", "pmd-swapout", "pte", "pte-swapout", "single-pte", "single-pte-swapout", "partial-mremap", "partial-shared"]));
    expect(new Set(cells.map((l) => l.cell!.size))).toEqual(new Set(["2M", "1M", "512K", "256K", "128K", "64K", "32K", "16K"]));
  });

  it("has CVE-2020-29374, seed 004's unnecessary COWs, swap, fork, mremap and mprotect cases", () => {
    const names = loaded.map((l) => basename(l.file));
    expect(loaded.some((l) => l.scenario.reference.some((r) => "cve" in r && r.cve === "CVE-2020-29374"))).toBe(true);
    for (const prefix of ["unnecessary-", "swap-", "fork-", "mremap-", "mprotect-"]) {
      expect(names.filter((n) => n.startsWith(prefix)).length, prefix).toBeGreaterThanOrEqual(2);
    }
  });

  describe.each(loaded.map((l, i) => [l.cell ? cellName(l.cell) : basename(l.file), i] as const))("%s", (_name, i) => {
    it("runs as the kernels behave", () => {
      const r = resultOf(i);
      expect(Object.fromEntries(r.runs.map((x) => [x.run, x.failures.map((f) => f.message)]))).toEqual(
        Object.fromEntries(r.runs.map((x) => [x.run, []])));
    });
  });

  it("gives the README's side-by-side figures", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const all = loaded.map((_, i) => resultOf(i));
    expect(readme).toContain(`${loaded.length}\nscenarios, ${all.reduce((n, r) => n + r.runs.length, 0)} runs counting the knob variants`);
    for (const s of STRATEGY_IDS) {
      const runs = all.flatMap((r) => r.runs.filter((x) => x.run === s));
      const sum = (c: string) => runs.reduce((a, x) => a + (x.counters[c] ?? 0), 0);
      const row = [sum("missedCow"), sum("unnecessaryCow"), sum("wrongCow"), sum("copies"), sum("reuses"), runs.filter((x) => x.findings.length).length];
      expect(readme, s).toContain(`| ${s} | ${runs[0]!.kernels} | ${row.join(" | ")} |`);
    }
  });
});
