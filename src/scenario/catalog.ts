/**
 * Scenario files on a disk (Node only: it is reached from the Node entry, src/node.ts, never
 * from the main one): reading one file, many files at once — every file loaded and checked
 * before any runs, the problems of all of them reported together — and the built-in catalog
 * (scenarios/ in the package).
 */
import { basename, extname } from "node:path";
import { closest, parseScenarioBytes, ScenarioError, type LoadOptions } from "./load.js";
import type { LoadedScenario } from "./types.js";
import { CATALOG_DIR, cachedCatalogFile, eachFile, readScenarioBytes, scenarioFiles } from "./files.js";

export { CATALOG_DIR, scenarioFiles } from "./files.js";

/** Reads, parses and checks a scenario file; throws ScenarioError with every problem. @public */
export function loadScenarioFile(file: string, opts: LoadOptions = {}): LoadedScenario[] {
  const bytes = readScenarioBytes(file);
  return cachedCatalogFile(file, bytes, opts) ?? parseScenarioBytes(file, bytes, opts);
}

/** The names of the catalog's scenarios ("cve-2020-29374", …), sorted. @public */
export function catalogNames(): string[] {
  return scenarioFiles(CATALOG_DIR).map((f) => basename(f, extname(f))).sort();
}

/**
 * Loads a scenario of the built-in catalog by name ("cve-2020-29374"), wherever the package is
 * installed — unlike a path, which resolves against the working directory. Throws ScenarioError
 * for a name the catalog does not have, saying which it has.
 * @public
 */
export function loadCatalogScenario(name: string): LoadedScenario[] {
  const names = catalogNames();
  const file = scenarioFiles(CATALOG_DIR).find((f) => basename(f, extname(f)) === name || basename(f) === name);
  if (file === undefined) {
    const hint = closest(name, names);
    throw new ScenarioError([{
      file: name, line: 1, col: 1,
      message: `no scenario "${name}" in the catalog${hint ? ` (did you mean "${hint}"?)` : ""}; it has ${names.join(", ")}`,
    }]);
  }
  return loadScenarioFile(file);
}

/** Loads every file; throws one ScenarioError with every problem of every file. @public */
export function loadScenarios(files: readonly string[], opts: LoadOptions = {}): LoadedScenario[] {
  return eachFile(files, (f) => loadScenarioFile(f, opts));
}
