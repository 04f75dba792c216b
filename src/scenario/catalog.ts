/**
 * Scenario files on a disk (Node only: it is reached from the Node entry, src/node.ts, never
 * from the main one): reading one file, many files at once — every file loaded and checked
 * before any runs, the problems of all of them reported together — and the built-in catalog
 * (scenarios/ in the package).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closest, MAX_FILE_BYTES, parseScenarioBytes, ScenarioError, tooLarge, type Diagnostic, type LoadOptions } from "./load.js";
import type { LoadedScenario } from "./types.js";

/** What a failed read means, in words (the errno name stays, for searching). */
const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file", EACCES: "permission denied", EPERM: "permission denied", EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory", ELOOP: "too many symbolic links", ENAMETOOLONG: "the name is too long",
  EMFILE: "too many open files", EIO: "an input/output error",
};
const cannotRead = (file: string, e: unknown): ScenarioError => {
  const code = (e as NodeJS.ErrnoException).code ?? "EIO";
  return new ScenarioError([{ file, line: 1, col: 1, message: `cannot read the file: ${READ_ERRORS[code] ?? "it cannot be read"} (${code})` }]);
};

/** Reads, parses and checks a scenario file; throws ScenarioError with every problem. @public */
export function loadScenarioFile(file: string, opts: LoadOptions = {}): LoadedScenario[] {
  let bytes: Uint8Array;
  try {
    const st = statSync(file);
    if (st.isDirectory()) {
      throw new ScenarioError([{ file, line: 1, col: 1, message: "cannot read the file: it is a directory; name the scenario files in it" }]);
    }
    if (st.size > MAX_FILE_BYTES) throw tooLarge(file, st.size);
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    throw cannotRead(file, e);
  }
  return parseScenarioBytes(file, bytes, opts);
}

/** Where the built-in catalog is: scenarios/ beside src/ and dist/. @public */
export const CATALOG_DIR = fileURLToPath(new URL("../../scenarios/", import.meta.url));

/** The scenario files (.yaml, .yml, .json) of a directory, sorted. @public */
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
export function loadScenarios(files: readonly string[], opts: LoadOptions = {}): LoadedScenario[] {
  const out: LoadedScenario[] = [];
  const diags: Diagnostic[] = [];
  for (const f of files) {
    try {
      out.push(...loadScenarioFile(f, opts));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      diags.push(...e.diagnostics);
    }
  }
  if (diags.length) throw new ScenarioError(diags);
  return out;
}
