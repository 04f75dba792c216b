/**
 * cowsim/node: everything of the main entry, plus what needs a disk — scenario files by path,
 * many files at once, and the built-in catalog wherever the package is installed. The main entry
 * (`cowsim`) reaches no `node:*` module, so it bundles for a browser; this one is for Node.
 *
 * ```ts
 * import { loadCatalogScenario, runScenario } from "cowsim/node";
 * const [scenario] = loadCatalogScenario("cve-2020-29374");
 * runScenario(scenario).pass;
 * ```
 * @packageDocumentation
 * @module cowsim/node
 */
export * from "./index.js";
export {
  loadScenarioFile, loadScenarios, scenarioFiles, CATALOG_DIR, loadCatalogScenario, catalogNames,
} from "./scenario/catalog.js";
export { createGupWorkers, GupWorkerPool } from "./workers/pool.js";
export type { GupWorkersOptions, PinnerOptions, WorkerPinHandle, PoolSummary } from "./workers/pool.js";
export { runGupFastStress } from "./workers/stress.js";
export type { StressOp, StressOptions, StressResult } from "./workers/stress.js";
