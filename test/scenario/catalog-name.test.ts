// The catalog by name: what a program that installed cowsim can load, from any directory (a path
// such as "scenarios/…" resolves against the working directory, which is the program's, not
// cowsim's).
import { describe, it, expect } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenarioFile, runScenario, ScenarioError } from "../../src/node.js";
import { CATALOG_DIR, catalogNames, loadCatalogScenario } from "../../src/scenario/catalog.js";

function inOtherDirectory<T>(fn: () => T): T {
  const cwd = process.cwd();
  process.chdir(mkdtempSync(join(tmpdir(), "cowsim-elsewhere-")));
  try {
    return fn();
  } finally {
    process.chdir(cwd);
  }
}

describe("loadCatalogScenario", () => {
  it("loads a scenario of the catalog by name, from any working directory", () => {
    const [ls] = inOtherDirectory(() => {
      expect(() => loadScenarioFile("scenarios/cve-2020-29374.yaml")).toThrow(/cannot read the file: no such file \(ENOENT\)/);
      return loadCatalogScenario("cve-2020-29374");
    });
    expect(ls!.file).toBe(join(CATALOG_DIR, "cve-2020-29374.yaml"));
    expect(ls!.scenario.name).toBe("CVE-2020-29374: vmsplice() in the child, unmap, the parent writes");
    expect(runScenario(ls!).pass).toBe(true);
    expect(loadCatalogScenario("cve-2020-29374.yaml")[0]!.file).toBe(ls!.file);
  });

  it("names what it has", () => {
    const names = catalogNames();
    expect(names).toContain("cve-2020-29374");
    expect(names).toEqual([...names].sort());
    expect(names.every((n) => !/[/.]/.test(n))).toBe(true);
  });

  it("a name it does not have: a ScenarioError that says which it has", () => {
    let err: unknown;
    try {
      loadCatalogScenario("cve-2020-2937");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    const [d] = (err as ScenarioError).diagnostics;
    expect([d!.file, d!.line, d!.col]).toEqual(["cve-2020-2937", 1, 1]);
    expect(d!.message).toMatch(/^no scenario "cve-2020-2937" in the catalog \(did you mean "cve-2020-29374"\?\); it has [a-z0-9-]+(, [a-z0-9-]+)+$/);
    expect(d!.message).toContain(catalogNames().join(", "));
    // a path is not a name: nothing outside the catalog is read
    expect(() => loadCatalogScenario("../package")).toThrow(/^\.\.\/package:1:1: error: no scenario "\.\.\/package" in the catalog/);
  });
});
