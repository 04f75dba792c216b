/**
 * Scenario files on a disk (Node only: it is reached from the Node entry, src/node.ts, never
 * from the main one): reading one file, many files at once — every file loaded and checked
 * before any runs, the problems of all of them reported together — and the built-in catalog
 * (scenarios/ in the package).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { closest, MAX_FILE_BYTES, parseScenarioBytes, ScenarioError, schemaKey, tooLarge, type Diagnostic, type LoadOptions } from "./load.js";
import type { LoadedScenario } from "./types.js";
import { PACKAGE_VERSION } from "../util/version.js";

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
  return cachedCatalogFile(file, bytes, opts) ?? parseScenarioBytes(file, bytes, opts);
}

/** Where the built-in catalog is: scenarios/ beside src/ and dist/. @public */
export const CATALOG_DIR = fileURLToPath(new URL("../../scenarios/", import.meta.url));

/**
 * The built-in catalog as the build loaded it (scripts/gen-catalog.mjs): one JSON file per
 * scenario file in dist/catalog/, with the SHA-256 of the bytes it was loaded from. Parsing the
 * YAML and checking 140 files and every matrix cell took a second of each `cowsim check`; a file
 * edited since the build no longer matches its hash and is parsed again. Only tsc's and the
 * bundle's trees (dist/) have the directory: run from src/, every file is parsed.
 */
const CATALOG_CACHE_DIR = fileURLToPath(new URL("../catalog/", import.meta.url));

/** One scenario file as the build loaded it; `check` is absent when it is the same as `all`. @internal */
export interface CachedCatalogFile {
  readonly key: string;
  readonly sha256: string;
  readonly all: readonly Omit<LoadedScenario, "file">[];
  readonly check?: readonly Omit<LoadedScenario, "file">[];
}

/** What a cached file must have been made by: today's schemas, checked by this package's version. @internal */
export function catalogCacheKey(): string {
  return `${schemaKey()}/${PACKAGE_VERSION}`;
}

/** A file's bytes' SHA-256, in hex. @internal */
export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** What the build made of a catalog file, when it is of these bytes and options; else undefined. @internal */
export function cachedCatalogFile(file: string, bytes: Uint8Array, opts: LoadOptions, cacheDir = CATALOG_CACHE_DIR): LoadedScenario[] | undefined {
  // a list of sizes is some user's choice: only the two expansions the commands ask for are kept
  if (opts.sizes !== undefined && opts.sizes !== "check") return undefined;
  if (resolve(dirname(file)) !== resolve(CATALOG_DIR)) return undefined;
  let cached: CachedCatalogFile;
  try {
    cached = JSON.parse(readFileSync(join(cacheDir, basename(file) + ".json"), "utf8")) as CachedCatalogFile;
  } catch {
    return undefined;
  }
  if (cached.key !== catalogCacheKey() || cached.sha256 !== sha256(bytes)) return undefined;
  const loaded = opts.sizes === "check" ? cached.check ?? cached.all : cached.all;
  return loaded.map((l) => ({ file, ...l }));
}

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
