/**
 * The built-in catalog (scenarios/ in the package) and loading many files at once: every file is
 * loaded and checked before any runs, and the problems of all of them are reported together.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadScenarioFile, ScenarioError, type Diagnostic } from "./load.js";
import type { LoadedScenario } from "./types.js";

/** Where the built-in catalog is: scenarios/ beside src/ and dist/. @public */
export const CATALOG_DIR = fileURLToPath(new URL("../../scenarios/", import.meta.url));

/** The scenario files of a directory, sorted. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => join(dir, f));
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
