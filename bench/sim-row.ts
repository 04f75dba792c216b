/**
 * One simulated run of a workload program as a BenchRow, made with execute() and the kernel's
 * tracepoints and counters — what the workload benchmark and the report's tests need of a run.
 */
import { createKernel, type Kernel, type KernelOptions } from "../src/kernel.js";
import type { BenchMetrics, BenchRow, TimelinePoint } from "../src/bench/result.js";
import { execute, programKernelSizes } from "../src/workloads/execute.js";
import { workloadParams, type Workload, type WorkloadSize } from "../src/workloads/index.js";
import type { Program } from "../src/workloads/program.js";

/** The fault tracepoints, by the kind they count as in metrics.faults. */
function countFaults(k: Kernel, faults: Record<string, number>): void {
  const inc = (kind: string) => { faults[kind] = (faults[kind] ?? 0) + 1; };
  k.on("do_anonymous_page", (e) => inc(e.zero ? "zeroPage" : "anon"));
  k.on("do_wp_page", (e) => inc(e.unshare ? "unshare" : "wp"));
  k.on("do_swap_page", () => inc("swap"));
  k.on("do_huge_pmd_anonymous_page", (e) => inc(e.zero ? "thpZeroPage" : "thp"));
  k.on("do_huge_pmd_wp_page", (e) => inc(e.unshare ? "thpUnshare" : "thpWp"));
  k.on("handle_userfault", (e) => inc(`uffd-${e.reason}`));
}

export interface SimRun {
  readonly row: BenchRow;
  readonly program: Program;
}

/** Runs `w` at `size` (seed 1 unless given) under `strategy` on a fresh kernel. */
export function simulate(w: Workload, size: WorkloadSize, strategy: string, oracle: boolean, seed = 1, points = 50): SimRun {
  const params = workloadParams(w, size);
  const program = w.generate(params, seed);
  const own = w.kernelOptions?.(params) ?? {};
  const options: KernelOptions = {
    ...programKernelSizes(program), ...own, thp: { enabled: "madvise", ...own.thp }, strategy, oracle, explain: false, seed,
  };
  const t0 = performance.now();
  const k = createKernel(options);
  const faults: Record<string, number> = {};
  countFaults(k, faults);
  let gupPages = 0;
  k.on("gup", (e) => { gupPages += e.pin.pfns.length; });
  let findings = 0;
  k.on("finding", () => { findings++; });
  const before = k.counters();
  const every = Math.max(1, Math.ceil(program.steps.length / points));
  const timeline: TimelinePoint[] = [];
  let framesPeak = k.usedFrames;
  const result = execute(k, program, {
    afterStep(i) {
      framesPeak = Math.max(framesPeak, k.usedFrames);
      if (i % every === 0 || i === program.steps.length - 1) {
        timeline.push({ step: i, t: (performance.now() - t0) / 1000, copies: k.counters().copies - before.copies, findings });
      }
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const after = k.counters();
  const d = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
  const metrics: BenchMetrics = {
    copies: d("copies"), reuses: d("reuses"),
    necessaryCow: d("necessaryCow"), unnecessaryCow: d("unnecessaryCow"), missedCow: d("missedCow"), wrongCow: d("wrongCow"),
    faults, framesPeak, swapOuts: d("pageouts"), swapIns: d("swapins"), gupPages,
    gupFailures: Object.entries(result.failures).filter(([key]) => /^(pin|vmsplice):/.test(key)).reduce((n, [, v]) => n + v, 0),
    accesses: result.accesses, failures: result.failures, incoherentPins: result.incoherentPins,
    forkCopies: d("forkCopies"), ptesSharedAtFork: d("ptesSharedAtFork"), ptesZapped: d("ptesZapped"),
  };
  const row: BenchRow = {
    workload: w.name, size, params: { ...params }, seed, strategy, knobs: {}, oracle, metrics, seconds,
    stepsPerSecond: program.steps.length / seconds, accessesPerSecond: result.accesses / seconds, timeline,
  };
  return { row, program };
}
