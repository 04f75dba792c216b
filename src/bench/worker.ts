/**
 * The worker of a parallel sweep (sweep.ts): runs one job per task. Loaded from the built
 * dist/ (Node 20 cannot start a worker whose entry is TypeScript).
 */
import { runJob, type BenchJob } from "./run.js";
import type { BenchRow } from "./result.js";

// for a cold run measured in a fresh process from the bundle (bench/workloads.bench.ts)
export { runJob, jobProgram } from "./run.js";

export default function benchWorker(job: BenchJob): BenchRow {
  return runJob(job);
}
