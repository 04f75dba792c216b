/**
 * Scenario files on a disk, before any parsing (Node only): reading a file's bytes, with what
 * a failed read means; the built-in catalog as the build loaded it; and loading many files with
 * the problems of all of them reported together. The parser (src/scenario/load.ts) brings YAML
 * and the schema validator with it, ~0.1 s of a command's start: the CLI asks for it only when a
 * file is not in the build's catalog (loadScenarioFilesLazily()).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MAX_FILE_BYTES, ScenarioError, tooLarge, type Diagnostic } from "./diagnostic.js";
import { schemaKey } from "./schema-key.js";
import type { LoadOptions } from "./load.js";
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

/** A scenario file's bytes; throws ScenarioError when it cannot be read or is too large. */
export function readScenarioBytes(file: string): Uint8Array {
  try {
    const st = statSync(file);
    if (st.isDirectory()) {
      throw new ScenarioError([{ file, line: 1, col: 1, message: "cannot read the file: it is a directory; name the scenario files in it" }]);
    }
    if (st.size > MAX_FILE_BYTES) throw tooLarge(file, st.size);
    return readFileSync(file);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    throw cannotRead(file, e);
  }
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


/** Each file's scenarios by `each`, in the files' order; one ScenarioError with every problem of every file. */
export function eachFile(files: readonly string[], each: (file: string, i: number) => LoadedScenario[]): LoadedScenario[] {
  const out: LoadedScenario[] = [];
  const diags: Diagnostic[] = [];
  files.forEach((f, i) => {
    try {
      out.push(...each(f, i));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      diags.push(...e.diagnostics);
    }
  });
  if (diags.length) throw new ScenarioError(diags);
  return out;
}

/** What parses and checks a file's bytes (load.ts's parseScenarioBytes()). */
export type ParseBytes = (file: string, bytes: Uint8Array, opts: LoadOptions) => LoadedScenario[];

/**
 * Loads every file as loadScenarios() does — from the build's catalog where it can, the rest
 * parsed by what `parser()` gives, asked for once and only when a file needs it.
 */
export async function loadScenarioFilesLazily(files: readonly string[], opts: LoadOptions, parser: () => Promise<ParseBytes>): Promise<LoadedScenario[]> {
  const read = files.map((file) => {
    try {
      const bytes = readScenarioBytes(file);
      return { bytes, cached: cachedCatalogFile(file, bytes, opts) };
    } catch (e) {
      if (e instanceof ScenarioError) return e;
      throw e;
    }
  });
  const parse = read.some((r) => !(r instanceof ScenarioError) && r.cached === undefined) ? await parser() : undefined;
  return eachFile(files, (file, i) => {
    const r = read[i]!;
    if (r instanceof ScenarioError) throw r;
    return r.cached ?? parse!(file, r.bytes, opts);
  });
}
