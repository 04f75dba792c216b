/**
 * Each workload of `cowsim bench` at its default size, run in one process on the simulator
 * (oracle off, then on) and on the host kernel by the native companion, with the cost model's
 * estimate beside: the simulator / kernel ratios measured side by side in one run.
 *
 *   npm run bench:workloads [-- --size small|default|large] [--strategy ID] [--workload NAME] [--json]
 *
 * The cost model is measured first (its micro-programs on the host, a few seconds). The
 * simulator's warm figures are the median of WARM_RUNS runs, oracle off and on interleaved (a
 * busy machine's scheduler, and which ran first, show in a single one; a warm run takes
 * milliseconds, so a burst of load on this shared machine moves a median of three) — warm: the
 * process has run the workload before, both ways; the host's and the cold figures are the
 * median of RUNS. Beside them, cold: the first run in a fresh Node process (oracle off),
 * loading the package's bundle, the core's compilation and every JIT tier-up included — what one
 * `cowsim bench` run costs a user; only Node's own start-up and the workload's generator (whose
 * program the host kernel, too, is given made) are left out.
 * Without a C compiler the host columns are left empty and say why.
 */
import { estimate, estimateError } from "../dist/bench/cost.js";
import { buildNative, measureCostModel, runNative } from "../dist/bench/native.js";
import type { CostModel } from "../dist/bench/result.js";
import { WORKLOADS, type WorkloadSize } from "../dist/workloads/index.js";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { argValues, json, log } from "./harness.js";
import { simulate } from "./sim-row.js";

/** The bench's worker as the package bundles it: what `cowsim bench` loads. */
const WORKER_JS = fileURLToPath(new URL("../dist/bundle/bench-worker.js", import.meta.url));
/**
 * The first run of `workload` in a fresh process: seconds to load the simulator (the bundle's
 * modules, which compile the core on the first kernel) plus the run's own, the Wasm's compilation
 * included. The program is made between the two, untimed: the host kernel's column, too, is
 * given the program made.
 */
function coldSeconds(workload: string, size: string, strategy: string): number {
  const job = JSON.stringify({ workload, size, strategy, seed: 1, oracle: false });
  const script = `const t0 = performance.now(); const { runJob, jobProgram } = await import(${JSON.stringify(WORKER_JS)}); ` +
    `const loaded = performance.now() - t0; const program = jobProgram(${job}); const t1 = performance.now(); ` +
    `runJob(${job}, program); console.log((loaded + performance.now() - t1) / 1000);`;
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }).trim());
}

const size = (argValues("--size")[0] ?? "default") as WorkloadSize;
const strategy = argValues("--strategy")[0] ?? "anon-exclusive";
const only = argValues("--workload");
const workloads = only.length ? WORKLOADS.filter((w) => only.includes(w.name)) : WORKLOADS;

const RUNS = 3;
const WARM_RUNS = 9;
const median = <T>(xs: T[], key: (x: T) => number): T => xs.sort((a, b) => key(a) - key(b))[(xs.length - 1) >> 1]!;
const native = buildNative();
let model: CostModel | undefined;
if (native.ok) {
  log("measuring the cost model on this host …");
  model = measureCostModel({ build: native });
  log(`  ns per event: ${Object.entries(model.costs).map(([e, c]) => `${e} ${(c * 1e9).toFixed(c < 1e-6 ? 1 : 0)}`).join(", ")}`);
  if (model.notes?.length) log(`  ${model.notes.join("\n  ")}`);
} else log(`host kernel: ${native.reason}`);

// the first kernel pays the core's compilation: made once before anything is timed
simulate(WORKLOADS[0]!, "small", strategy, false);

interface Line {
  workload: string;
  steps: number;
  accesses: number;
  simOff: number;
  simOn: number;
  /** The first run in a fresh process, oracle off (the median of RUNS processes). */
  simCold: number;
  kernel?: number;
  estimate?: number;
  estimateError?: number;
  hostErrors?: Record<string, number>;
  notes?: string[];
}
const lines: Line[] = [];
for (const w of workloads) {
  const offs = [];
  const ons = [];
  // warm, as the figures claim: the process has run this workload before, both ways
  simulate(w, size, strategy, false);
  simulate(w, size, strategy, true);
  for (let r = 0; r < WARM_RUNS; r++) {
    offs.push(simulate(w, size, strategy, false));
    ons.push(simulate(w, size, strategy, true));
  }
  const off = median(offs, (x) => x.row.seconds);
  const on = median(ons, (x) => x.row.seconds);
  const cold = median(Array.from({ length: RUNS }, () => coldSeconds(w.name, size, strategy)), (x) => x);
  const line: Line = {
    workload: w.name, steps: off.program.steps.length, accesses: off.row.metrics.accesses, simOff: off.row.seconds, simOn: on.row.seconds, simCold: cold,
  };
  if (native.ok) {
    const run = median(Array.from({ length: RUNS }, () => runNative(off.program, { build: native })), (x) => x.seconds);
    line.kernel = run.seconds;
    if (Object.keys(run.errors).length) line.hostErrors = { ...run.errors };
    const notes = [...run.notes, ...Object.keys(run.unsupported)];
    if (notes.length) line.notes = notes;
    if (model) {
      const est = estimate(off.row.metrics, model, off.program);
      line.estimate = est.seconds;
      if (run.seconds > 0) line.estimateError = estimateError(est, run.seconds);
    }
  }
  lines.push(line);
  if (!json) {
    const f = (x: number | undefined, d = 3) => (x === undefined ? "—" : x < 0.01 ? x.toExponential(2) : x.toFixed(d));
    const r = (a: number | undefined, b: number) => (a === undefined ? "—" : `${(a / b).toFixed(2)}×`);
    if (lines.length === 1) {
      console.log(`\n${size} size, ${strategy}; ratio = host kernel seconds / simulated seconds, the simulator's warm figures the median of ${WARM_RUNS} runs, the host's and the cold ones of ${RUNS} (above 1: the simulator is faster); cold = the first run in a fresh process, oracle off`);
      console.log(["workload", "steps", "accesses", "sim s (oracle off)", "sim s (oracle on)", "sim s (cold)", "kernel s", "kernel/sim off", "kernel/sim on", "kernel/sim cold", "estimate s", "estimate error"].join(" | "));
    }
    console.log([line.workload, line.steps, line.accesses, f(line.simOff), f(line.simOn), f(line.simCold), f(line.kernel), r(line.kernel, line.simOff), r(line.kernel, line.simOn),
      r(line.kernel, line.simCold), f(line.estimate), line.estimateError === undefined ? "—" : `${(100 * line.estimateError).toFixed(0)}%`].join(" | "));
    if (line.hostErrors) console.log(`    host step errors: ${JSON.stringify(line.hostErrors)}`);
    for (const n of line.notes ?? []) console.log(`    host: ${n}`);
  }
}
if (json) console.log(JSON.stringify({ size, strategy, costModel: model, workloads: lines }, null, 2));
