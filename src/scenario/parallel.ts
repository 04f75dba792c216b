/**
 * Running loaded scenarios over a pool of worker threads (tinypool), one scenario per task.
 * Results come back in scenario order whatever order the workers finish in, and each result is
 * a function of its scenario alone (every run makes its own kernel), so a parallel check prints
 * what a serial one prints, byte for byte.
 */
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { builtEntry } from "../util/built.js";
import { runScenario, type RunOptions, type ScenarioResult } from "./run.js";
import type { LoadedScenario } from "./types.js";

/**
 * The built worker: the package's bundled one beside this module when this module is bundled
 * (scripts/bundle.mjs), else tsc's, found the same way from src/ (tests) and dist/.
 */
export function scenarioWorkerUrl(): URL {
  return builtEntry(new URL("./scenario-worker.js", import.meta.url), new URL("../../dist/scenario/worker.js", import.meta.url));
}

/**
 * Below this many runs a pool costs more than it saves: each worker loads the modules and
 * compiles the core before its first run, every scenario is copied to it, and the loading stays
 * on this thread. On two cores the catalog's 1283 runs took as long on two threads as on one;
 * its 2543 runs with every THP size a little less.
 */
export const MIN_PARALLEL_RUNS = 2000;

/** One task: a scenario and how to run it. */
export interface ScenarioTask {
  readonly ls: LoadedScenario;
  readonly opts: RunOptions;
}

/**
 * The default number of threads for `runs` runs: the machine's parallelism for a catalog, 1
 * (this thread) for a few scenarios.
 */
export function defaultScenarioThreads(runs: number): number {
  return runs >= MIN_PARALLEL_RUNS ? availableParallelism() : 1;
}

/** Runs `loaded` on `threads` threads (1: this one), returning results in the same order. */
export async function runScenarios(loaded: readonly LoadedScenario[], opts: RunOptions, threads: number): Promise<ScenarioResult[]> {
  const n = Math.max(1, Math.min(threads, loaded.length));
  if (n === 1) return loaded.map((ls) => runScenario(ls, opts));
  const worker = scenarioWorkerUrl();
  if (!existsSync(fileURLToPath(worker))) {
    throw new Error(`the check's worker ${fileURLToPath(worker)} is not built (npm run build), or run with --threads 1`);
  }
  // loaded only for a pool: a check on one thread (the default) starts without it
  const { default: Tinypool } = await import("tinypool");
  const pool = new Tinypool({ filename: worker.href, minThreads: n, maxThreads: n });
  try {
    return await Promise.all(loaded.map((ls) => pool.run({ ls, opts } satisfies ScenarioTask) as Promise<ScenarioResult>));
  } finally {
    await pool.destroy();
  }
}
