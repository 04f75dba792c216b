// Shared by the explorer's tests: the shipped litmus files and their expected verdicts.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ModelName } from "../../src/explore/index.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const LITMUS = join(ROOT, "litmus");

export function litmusFiles(dir: string): string[] {
  return readdirSync(join(LITMUS, dir)).filter((f) => f.endsWith(".litmus")).sort().map((f) => join(LITMUS, dir, f));
}

/** The ` * Expected: SC Never, x86-TSO Sometimes, LKMM Sometimes.` line of a shipped test. */
export function expectedVerdicts(file: string): Record<ModelName, string> {
  const m = /Expected: SC (\w+), x86-TSO (\w+), LKMM (\w+)\./.exec(readFileSync(file, "utf8"));
  if (!m) throw new Error(`${file}: no Expected line`);
  return { sc: m[1]!, tso: m[2]!, relaxed: m[3]! };
}
