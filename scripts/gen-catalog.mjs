// Loads the built-in catalog at build time into dist/catalog/: one JSON file per scenario file,
// its scenarios as `loadScenarioFile()` returns them (every matrix expanded at every size, and at
// its check sizes) and the SHA-256 of the bytes they come from. Loading takes the file from there
// while the bytes are the same (src/scenario/catalog.ts); a file that does not load is left out,
// for the command to report when it reads it.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { CATALOG_DIR, catalogCacheKey, scenarioFiles, sha256 } from "../dist/scenario/files.js";
import { parseScenarioBytes, useCompiledValidators } from "../dist/scenario/load.js";
import * as compiled from "../dist/scenario/validators.gen.js";

useCompiledValidators(compiled);

const out = new URL("../dist/catalog/", import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const key = catalogCacheKey();
const strip = (loaded) => loaded.map(({ file: _file, ...rest }) => rest);
for (const file of scenarioFiles(CATALOG_DIR)) {
  const bytes = readFileSync(file);
  let all, check;
  try {
    all = strip(parseScenarioBytes(file, bytes));
    check = strip(parseScenarioBytes(file, bytes, { sizes: "check" }));
  } catch {
    continue;
  }
  const same = JSON.stringify(all) === JSON.stringify(check);
  writeFileSync(new URL(basename(file) + ".json", out), JSON.stringify({ key, sha256: sha256(bytes), all, ...(same ? {} : { check }) }));
}
