/**
 * The worker of a parallel check (parallel.ts): runs one scenario per task. Loaded from the
 * built dist/ (Node 20 cannot start a worker whose entry is TypeScript).
 */
import { runScenario, type ScenarioResult } from "./run.js";
import type { ScenarioTask } from "./parallel.js";

export default function scenarioWorker(task: ScenarioTask): ScenarioResult {
  return runScenario(task.ls, task.opts);
}
