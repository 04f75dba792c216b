/**
 * Where a worker's built entry is: the first of `candidates` that exists — the bundle's, beside
 * the module that starts it when that module is bundled (scripts/bundle.mjs), then tsc's in
 * dist/ (from the sources, as the tests run them) — else the last, for the caller's message.
 * Node-only: the worker pools that use it are.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function builtEntry(...candidates: readonly URL[]): URL {
  return candidates.find((u) => existsSync(fileURLToPath(u))) ?? candidates[candidates.length - 1]!;
}
