// Bundles tsc's output (dist/) into dist/bundle/: one ES module per package entry, worker entry
// and the CLI, sharing chunks, the npm dependencies left as imports. Node resolves, reads and
// links ~120 modules for `import "cowsim"`, ~75 for a bench run, and that — not the Wasm, which
// compiles lazily in ~1 ms — was most of a cold start: the bundle's entries load in a third of
// the time. The package's exports and bin name these files; dist/*.js stay for the deep imports
// of the benches and tests. Every output sits two levels below the root, as tsc's do, so each
// `new URL("../../…", import.meta.url)` of the sources (the core, the catalog, package.json)
// finds the same file from either tree; the source maps lead back to src/.
import { build } from "esbuild";
import { rmSync } from "node:fs";

/** Output name → tsc's output it bundles. The worker entries are found beside the code that starts them. */
export const BUNDLE_ENTRIES = {
  cowsim: "dist/index.js",
  node: "dist/node.js",
  core: "dist/core/index.js",
  cli: "dist/cli/main.js",
  "scenario-worker": "dist/scenario/worker.js",
  "bench-worker": "dist/bench/worker.js",
  "gup-worker": "dist/workers/gup-worker.js",
};

const root = new URL("../", import.meta.url);
rmSync(new URL("dist/bundle", root), { recursive: true, force: true });
await build({
  absWorkingDir: root.pathname,
  entryPoints: Object.entries(BUNDLE_ENTRIES).map(([out, input]) => ({ in: input, out })),
  outdir: "dist/bundle",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // npm dependencies stay imports: a program that also imports yaml or ajv shares one copy
  packages: "external",
  sourcemap: "linked",
  // the chunks' names are their contents' hash: an upgrade never loads a stale chunk
  chunkNames: "chunk-[hash]",
  logLevel: "warning",
});
