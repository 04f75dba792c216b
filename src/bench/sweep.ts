/**
 * Running a job list: serially, or over a pool of worker threads (tinypool), one job per task.
 * Rows come back in job order whatever order the workers finish in, and each row is a function
 * of its job alone (run.ts), so a parallel sweep gives the rows a serial one gives, times aside.
 */
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Tinypool from "tinypool";
import { builtEntry } from "../util/built.js";
import { runJob, type BenchJob } from "./run.js";
import type { BenchRow } from "./result.js";

/**
 * The built worker: the package's bundled one beside this module when this module is bundled
 * (scripts/bundle.mjs), else tsc's dist/bench/worker.js, found the same way from src/ (tests)
 * and dist/.
 */
export function benchWorkerUrl(): URL {
  return builtEntry(new URL("./bench-worker.js", import.meta.url), new URL("../../dist/bench/worker.js", import.meta.url));
}

export interface RunJobsOptions {
  /** worker threads (default: the machine's parallelism); 1 runs in this thread */
  readonly threads?: number;
  /** after each job, with how many are done */
  readonly onProgress?: (done: number, total: number, job: BenchJob) => void;
}

/** The machine's parallelism: the default number of worker threads of a sweep. */
export const defaultThreads = (): number => availableParallelism();

/** Runs `jobs`, returning their rows in the same order. */
export async function runJobs(jobs: readonly BenchJob[], options: RunJobsOptions = {}): Promise<BenchRow[]> {
  const threads = Math.max(1, Math.min(options.threads ?? defaultThreads(), jobs.length));
  let done = 0;
  const progress = (job: BenchJob) => options.onProgress?.(++done, jobs.length, job);
  if (threads === 1) {
    return jobs.map((job) => {
      const row = runJob(job);
      progress(job);
      return row;
    });
  }
  const worker = benchWorkerUrl();
  if (!existsSync(fileURLToPath(worker))) {
    throw new Error(`the sweep's worker ${fileURLToPath(worker)} is not built (npm run build), or run with one thread`);
  }
  const pool = new Tinypool({ filename: worker.href, minThreads: threads, maxThreads: threads });
  try {
    return await Promise.all(jobs.map(async (job) => {
      const row = (await pool.run(job)) as BenchRow;
      progress(job);
      return row;
    }));
  } finally {
    await pool.destroy();
  }
}
