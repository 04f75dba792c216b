/**
 * One simulated run of a workload as a BenchRow and its program: the bench runner's runJob(),
 * for the workload benchmark and the report's tests.
 */
import { jobProgram, runJob } from "../dist/bench/run.js";
import type { BenchRow } from "../dist/bench/result.js";
import type { Workload, WorkloadSize } from "../dist/workloads/index.js";
import type { Program } from "../dist/workloads/program.js";

export interface SimRun {
  readonly row: BenchRow;
  readonly program: Program;
}

/** Runs `w` at `size` (seed 1 unless given) under `strategy` on a fresh kernel. */
export function simulate(w: Workload, size: WorkloadSize, strategy: string, oracle: boolean, seed = 1): SimRun {
  const job = { workload: w.name, size, strategy, seed, oracle };
  return { row: runJob(job), program: jobProgram(job) };
}
