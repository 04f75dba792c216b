/**
 * The built-in catalog (scenarios/ in the package) and loading many files at once: every file is
 * loaded and checked before any runs, and the problems of all of them are reported together.
 */
import { readdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closest, loadScenarioFile, ScenarioError, type Diagnostic } from "./load.js";
import type { LoadedScenario } from "./types.js";

/** Where the built-in catalog is: scenarios/ beside src/ and dist/. @public */
export const CATALOG_DIR = fileURLToPath(new URL("../../scenarios/", import.meta.url));

/** The scenario files of a directory, sorted. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => join(dir, f));
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
export function loadScenarios(files: readonly string[]): LoadedScenario[] {
  const out: LoadedScenario[] = [];
  const diags: Diagnostic[] = [];
  for (const f of files) {
    try {
      out.push(...loadScenarioFile(f));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      diags.push(...e.diagnostics);
    }
  }
  if (diags.length) throw new ScenarioError(diags);
  return out;
}
