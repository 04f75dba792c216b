// The catalog as the build loaded it (scripts/gen-catalog.mjs, dist/catalog/): taken only for
// the bytes it was made from, under today's schemas, and the same as parsing the file.
import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CATALOG_DIR, scenarioFiles, cachedCatalogFile, catalogCacheKey, sha256 } from "../../src/scenario/files.js";
import { parseScenarioBytes } from "../../src/scenario/load.js";

const BUILT = fileURLToPath(new URL("../../dist/catalog/", import.meta.url));
const files = scenarioFiles(CATALOG_DIR);

describe("the built catalog", () => {
  it("has every catalog file, each the same as parsing it, at every size and at the check sizes", () => {
    let matrices = 0;
    for (const file of files) {
      const bytes = readFileSync(file);
      const all = cachedCatalogFile(file, bytes, {}, BUILT);
      const check = cachedCatalogFile(file, bytes, { sizes: "check" }, BUILT);
      expect(all, file).toEqual(parseScenarioBytes(file, bytes));
      expect(check, file).toEqual(parseScenarioBytes(file, bytes, { sizes: "check" }));
      if (all!.length !== check!.length) matrices++;
    }
    // the THP matrices expand to fewer cells at their check sizes
    expect(matrices).toBeGreaterThan(0);
  });

  it("is taken for the bytes it was made from only: an edited file is parsed again", () => {
    const file = files.find((f) => basename(f) === "cve-2020-29374.yaml")!;
    const bytes = readFileSync(file);
    expect(cachedCatalogFile(file, bytes, {}, BUILT)).toHaveLength(1);
    const edited = Buffer.concat([bytes, Buffer.from("\n# edited\n")]);
    expect(cachedCatalogFile(file, edited, {}, BUILT)).toBeUndefined();
  });

  it("is what the loader returns, named by the path it was asked for, and only under today's key", () => {
    const dir = mkdtempSync(join(tmpdir(), "cowsim-cache-"));
    try {
      const file = files.find((f) => basename(f) === "cve-2020-29374.yaml")!;
      const bytes = readFileSync(file);
      const at = { line: 7, col: 1 };
      const entry = (key: string) => JSON.stringify({ key, sha256: sha256(bytes), all: [{ index: 0, scenario: { name: "from the cache", steps: [] }, at, stepAt: [] }] });
      writeFileSync(join(dir, "cve-2020-29374.yaml.json"), entry(catalogCacheKey()));
      const relative = join(CATALOG_DIR, "..", "scenarios", "cve-2020-29374.yaml");
      expect(cachedCatalogFile(relative, bytes, {}, dir)).toEqual([{ file: relative, index: 0, scenario: { name: "from the cache", steps: [] }, at, stepAt: [] }]);
      // a list of sizes is not kept; a file elsewhere is not the catalog's
      expect(cachedCatalogFile(file, bytes, { sizes: ["2M"] }, dir)).toBeUndefined();
      expect(cachedCatalogFile(join(dir, "cve-2020-29374.yaml"), bytes, {}, dir)).toBeUndefined();
      writeFileSync(join(dir, "cve-2020-29374.yaml.json"), entry("another-schema/0.0.0"));
      expect(cachedCatalogFile(file, bytes, {}, dir)).toBeUndefined();
      writeFileSync(join(dir, "cve-2020-29374.yaml.json"), "{ not json");
      expect(cachedCatalogFile(file, bytes, {}, dir)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
