/**
 * The layers of DESIGN.md, as rules: imports flow one way.
 *
 *   cli → scenario, fuzz, compare → kernel facade (src/kernel.ts) → mm → policy, core
 *                                                  ↘ users → mm     ↘ trace (events) ← oracle
 *
 * Cycles are judged on the code that runs: a module may name another's types (as every C file
 * includes the header that declares struct mm_struct), but no chain of imports whose code runs
 * may lead back to where it began.
 *
 * The kernel layer (src/mm) emits tracepoints; the oracle, the journal and the statistics
 * subscribe to them and import nothing from src/mm. Only src/core touches the Wasm exports
 * (the generated ABI). Fix the design, never the rule.
 */
const layer = (name) => `^src/${name}(/|\\.ts$)`;
/** Any of these layers (a directory of src/, or a file of src/ without its .ts). */
const oneOf = (...names) => `^src/(${names.join("|")})(/|\\.ts$)`;

module.exports = {
  forbidden: [
    {
      name: "no-circular", severity: "error",
      comment: "no import cycle that runs: a module may name another's types (as C headers declare struct mm_struct for everyone), never import its code back",
      from: {}, to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "core-is-the-bottom", severity: "error",
      comment: "src/core is the Wasm boundary: it knows nothing of the kernel above it",
      from: { path: layer("core") }, to: { path: oneOf("mm", "oracle", "users", "policy", "scenario", "cli", "fuzz", "trace", "kernel", "compare", "node") },
    },
    {
      name: "only-core-touches-wasm", severity: "error",
      comment: "the generated ABI (raw exports and their constants) is src/core's; others use its typed wrappers",
      from: { pathNot: layer("core") }, to: { path: "^src/core/abi\\.generated\\.ts$" },
    },
    {
      name: "policy-is-pure", severity: "error",
      comment: "strategies answer questions in their own vocabulary: no core flags, no kernel state",
      from: { path: layer("policy") }, to: { path: oneOf("core", "mm", "oracle", "users", "scenario", "cli", "fuzz", "trace", "kernel", "compare", "node") },
    },
    {
      name: "trace-is-neutral", severity: "error",
      comment: "the tracepoints' types sit between the kernel layer and its subscribers",
      from: { path: layer("trace") }, to: { path: oneOf("mm", "oracle", "users", "policy", "scenario", "cli", "fuzz", "kernel", "compare", "node") },
    },
    {
      name: "mm-emits-never-calls-observers", severity: "error",
      comment: "src/mm emits tracepoints; it imports no observer, no GUP user, nothing above it",
      from: { path: layer("mm") }, to: { path: oneOf("oracle", "users", "scenario", "cli", "fuzz", "kernel", "compare", "node") },
    },
    {
      name: "oracle-subscribes", severity: "error",
      comment: "the oracle, journal and judges subscribe to events: they import nothing from src/mm",
      from: { path: layer("oracle") }, to: { path: oneOf("mm", "users", "scenario", "cli", "fuzz", "kernel", "compare", "node") },
    },
    {
      name: "users-sit-on-mm", severity: "error",
      comment: "GUP users use a small mm API; nothing of the kernel layer builds them",
      from: { path: layer("users") }, to: { path: oneOf("oracle", "scenario", "cli", "fuzz", "kernel", "compare", "node") },
    },
    {
      name: "above-the-facade", severity: "error",
      comment: "scenarios, the fuzzer, the workloads, the bench, the CLI and compareStrategies use the kernel facade (src/kernel.ts), never a layer below it",
      from: { path: oneOf("scenario", "fuzz", "workloads", "bench", "cli", "compare") }, to: { path: oneOf("mm", "users", "oracle", "core", "policy", "trace") },
    },
    {
      name: "entries-are-entries", severity: "error",
      comment: "the package's entry points (src/index.ts, src/node.ts) are for programs outside; nothing inside imports them",
      from: { pathNot: "^src/node\\.ts$" }, to: { path: "^src/(index|node)\\.ts$" },
    },
    {
      name: "explore-stands-alone", severity: "error",
      comment: "the weak-memory explorer models the protocols, not the kernel layer: it imports nothing of src/ outside itself",
      from: { path: layer("explore") }, to: { pathNot: layer("explore") },
    },
    {
      name: "scenario-below-cli", severity: "error",
      comment: "the CLI uses scenarios, never the other way",
      from: { path: oneOf("scenario", "fuzz", "workloads", "bench", "kernel", "compare") }, to: { path: layer("cli") },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
