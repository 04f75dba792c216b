/**
 * One bench run: a workload's program (at a size, with parameter overrides and a seed) executed
 * on a fresh kernel under one strategy and knob set, measured from the kernel's tracepoints and
 * the deltas of its counters. Everything in the row but its time fields (`seconds`,
 * `stepsPerSecond`, `accessesPerSecond`, the timeline's `t`) is a function of the job alone, so
 * two runs of a job — serial or in a worker, on one machine or on a shard elsewhere — give the
 * same row minus those.
 */
import { createKernel, type Kernel, type KernelOptions, type ThpEnabled } from "../kernel.js";
import { execute, programKernelSizes } from "../workloads/execute.js";
import { workload as findWorkload, WORKLOADS, type Workload, type WorkloadSize, workloadParams } from "../workloads/index.js";
import type { Program } from "../workloads/program.js";
import type { BenchMetrics, BenchRow, TimelinePoint } from "./result.js";
import { CowsimError } from "../errno.js";

/** What one run is: everything a row is a function of. */
export interface BenchJob {
  readonly workload: string;
  readonly size: WorkloadSize;
  /** parameter overrides on top of the size's values */
  readonly params?: Readonly<Record<string, number>>;
  readonly seed: number;
  readonly strategy: string;
  readonly knobs?: Readonly<Record<string, boolean>>;
  /** the name of the knob variant this job belongs to (a sweep's `variants`), "" for none */
  readonly variant?: string;
  /** /sys/kernel/mm/transparent_hugepage/enabled, when not the bench's "madvise" */
  readonly thp?: ThpEnabled;
  /** run the oracle (default true): without it the verdict counts are 0 and the run is faster */
  readonly oracle?: boolean;
}

/** The bench's THP default: Debian's (and most distributions') "madvise", not the kernel's "always". */
export const BENCH_THP: ThpEnabled = "madvise";

/** At most this many timeline points per row: the first and last step and an even spread between. */
export const TIMELINE_POINTS = 200;

/** The workload a job names, or EINVAL naming the known ones. */
export function benchWorkload(name: string): Workload {
  const w = findWorkload(name);
  if (!w) throw new CowsimError("EINVAL", `unknown workload "${name}" (known: ${WORKLOADS.map((x) => x.name).join(", ")})`);
  return w;
}

/** The program of a job (deterministic: the workload's generator at its parameters and seed). */
export function jobProgram(job: BenchJob): Program {
  const w = benchWorkload(job.workload);
  return w.generate(jobParams(job, w), job.seed);
}

function jobParams(job: BenchJob, w: Workload): Readonly<Record<string, number>> {
  try {
    return workloadParams(w, job.size, job.params);
  } catch (e) {
    throw new CowsimError("EINVAL", (e as Error).message);
  }
}

/**
 * The kernel options of a job: sizes that fit its program, the bench's THP default (or the
 * job's), the workload's own options on top (its THP policy keeps the job's `enabled` when the
 * job names one), then strategy and knobs.
 */
export function jobKernelOptions(job: BenchJob, w: Workload, params: Readonly<Record<string, number>>, program: Program): KernelOptions {
  const own = w.kernelOptions?.(params) ?? {};
  const thp = { enabled: BENCH_THP, ...own.thp, ...(job.thp !== undefined ? { enabled: job.thp } : {}) };
  return {
    ...programKernelSizes(program),
    ...own,
    thp,
    strategy: job.strategy,
    knobs: job.knobs ?? {},
    oracle: job.oracle ?? true,
    // the bench wants counts, not explanations: the journal costs memory and time on long runs
    explain: false,
    seed: job.seed,
  };
}

/**
 * Fault tracepoints and the kind each counts as in `metrics.faults`. The anonymous faults and
 * the swap-ins come from the counters (`anonFaults`, `zeroPageFaults`, `swapins`: every
 * do_anonymous_page() and do_swap_page() counts there, in the core or not) at the end of the
 * run: a listener on do_anonymous_page or do_swap_page would send every access of a batched
 * range down the single-access path, the bench measuring a slower kernel than a user runs.
 */
function countFaults(k: Kernel, faults: Record<string, number>): void {
  const inc = (kind: string) => { faults[kind] = (faults[kind] ?? 0) + 1; };
  // one key string per reason, made once: a uffd-wp snapshot takes thousands of these per run
  const uffdKeys = new Map<string, string>();
  const uffdKey = (reason: string) => {
    let key = uffdKeys.get(reason);
    if (key === undefined) uffdKeys.set(reason, (key = `uffd-${reason}`));
    return key;
  };
  k.on("do_huge_pmd_anonymous_page", (e) => inc(e.zero ? "thpZeroPage" : "thp"));
  k.on("do_huge_pmd_wp_page", (e) => inc(e.unshare ? "thpUnshare" : "thpWp"));
  k.on("handle_userfault", (e) => inc(uffdKey(e.reason)));
  k.on("shmem_fault", () => inc("shmem"));
  k.on("do_cow_fault", () => inc("file"));
}

/** Sorted keys: a row's records print and compare the same whatever order events came in. */
function sorted<T>(r: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(r).sort()) out[key] = r[key]!;
  return out;
}

let coreLoaded = false;
/**
 * The first kernel of a thread compiles the Wasm core (~30 ms here): done once before any run
 * is timed, so that the first row of a table does not pay for the rest.
 */
function loadCoreOnce(): void {
  if (coreLoaded) return;
  createKernel({ memory: "4M", oracle: false });
  coreLoaded = true;
}

/**
 * Runs one job to its row: its program, or `program` when the caller made it already (the job's
 * own, from {@link jobProgram}). Throws CowsimError EINVAL for a bad job (workload, parameter,
 * strategy, knob).
 */
export function runJob(job: BenchJob, program?: Program): BenchRow {
  loadCoreOnce();
  const w = benchWorkload(job.workload);
  const params = jobParams(job, w);
  program ??= w.generate(params, job.seed);
  const options = jobKernelOptions(job, w, params, program);

  const t0 = performance.now();
  const k = createKernel(options);
  // the row is plain data: the machine goes to the next run (a fresh one costs ms at these sizes)
  try {
    const faults: Record<string, number> = {};
    countFaults(k, faults);
    let gupPages = 0;
    k.on("gup", (e) => { gupPages += e.pin.pfns.length; });
    let findings = 0;
    k.on("finding", () => { findings++; });

    const before = k.counters();
    const steps = program.steps.length;
    // sample steps evenly: step i is a point when it crosses the next 1/TIMELINE_POINTS of the run
    const every = Math.max(1, Math.ceil(steps / TIMELINE_POINTS));
    const timeline: TimelinePoint[] = [];
    let framesPeak = k.usedFrames;
    const result = execute(k, program, {
      afterStep(i) {
        // frames in use after each step: the peak at step boundaries (one Atomics load each)
        const used = k.usedFrames;
        if (used > framesPeak) framesPeak = used;
        if (i % every === 0 || i === steps - 1) {
          timeline.push({ step: i, t: (performance.now() - t0) / 1000, copies: k.counter("copies")! - before.copies, findings });
        }
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const after = k.counters();
    const d = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    if (d("anonFaults")) faults.anon = d("anonFaults");
    if (d("zeroPageFaults")) faults.zeroPage = d("zeroPageFaults");
    // every do_swap_page() counts in swapins, in the core (FAST_SWAP) or not: a listener would
    // send each swap-in to TypeScript
    if (d("swapins")) faults.swap = d("swapins");
    // the strategy's do_wp_page() decisions, from the counters: a listener would take them out of
    // the core (FAST_WP); the zero page's and file pages' write faults decide nothing
    const wp = d("reuses") + d("copies") - d("forkCopies") - d("unshareCopies");
    const unshare = d("unshareReuses") + d("unshareCopies");
    if (wp) faults.wp = wp;
    if (unshare) faults.unshare = unshare;

    const gupFailures = Object.entries(result.failures)
      .filter(([key]) => /^(pin|vmsplice):/.test(key))
      .reduce((n, [, v]) => n + v, 0);
    const metrics: BenchMetrics = {
      copies: d("copies"),
      reuses: d("reuses"),
      necessaryCow: d("necessaryCow"),
      unnecessaryCow: d("unnecessaryCow"),
      missedCow: d("missedCow"),
      wrongCow: d("wrongCow"),
      faults: sorted(faults),
      framesPeak,
      swapOuts: d("pageouts"),
      swapIns: d("swapins"),
      gupPages,
      gupFailures,
      accesses: result.accesses,
      failures: sorted(result.failures),
      incoherentPins: result.incoherentPins,
      // what the cost model prices beyond faults: fork's work per PTE and per early copy, zap
      forkCopies: d("forkCopies"),
      ptesSharedAtFork: d("ptesSharedAtFork"),
      ptesZapped: d("ptesZapped"),
    };
    return {
      workload: job.workload,
      size: job.size,
      params: { ...params },
      seed: job.seed,
      strategy: job.strategy,
      knobs: sorted(job.knobs ?? {}),
      ...(job.variant ? { variant: job.variant } : {}),
      ...(job.thp !== undefined ? { thp: job.thp } : {}),
      oracle: job.oracle ?? true,
      metrics,
      seconds,
      stepsPerSecond: steps / seconds,
      accessesPerSecond: result.accesses / seconds,
      timeline,
    };
  } finally {
    k.release();
  }
}

/** A row without its time fields: what must be equal between two runs of one job. */
export function timeless(row: BenchRow): Omit<BenchRow, "seconds" | "stepsPerSecond" | "accessesPerSecond"> {
  const { seconds: _s, stepsPerSecond: _p, accessesPerSecond: _a, timeline, kernel: _k, estimate: _e, ...rest } = row;
  return { ...rest, timeline: timeline.map(({ t: _t, ...p }) => ({ ...p, t: 0 })) };
}
