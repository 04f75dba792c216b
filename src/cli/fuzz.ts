/**
 * `cowsim fuzz`: the fuzzer on the command line — a progress bar on a terminal, one line per
 * distinct failure, a summary line at the end, and each failure written as a scenario file
 * that `cowsim run` replays.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import cliProgress from "cli-progress";
import { fuzz, type FuzzReport, type FuzzFailure } from "../fuzz/fuzz.js";
import { failureScenario } from "../fuzz/scenario.js";
import type { OpSet } from "../fuzz/ops.js";
import { strategies, strategyInfo, type StrategyId } from "../kernel.js";

export interface FuzzCommandOptions {
  readonly strategy: string;
  readonly knob: readonly string[];
  readonly seconds: string;
  readonly sequences?: string;
  readonly seed: string;
  readonly ops: string;
  readonly out?: string;
  readonly stopOn?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** What the command does, given where to write and how to fail on bad options. */
export function fuzzCommand(o: FuzzCommandOptions, io: {
  out: (text: string) => void;
  fail: (message: string) => never;
  tty: boolean;
}): number {
  if (!strategyInfo(o.strategy)) io.fail(`unknown strategy "${o.strategy}" (known: ${strategies().map((s) => s.id).join(", ")})`);
  const seconds = Number(o.seconds);
  if (!(seconds > 0 && seconds <= 7 * 24 * 3600)) io.fail(`--seconds must be a positive number of seconds, not ${o.seconds}`);
  const seed = Number(o.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) io.fail(`--seed must be an integer from 0 to 2^53 - 1, not ${o.seed}`);
  const sequences = o.sequences === undefined ? undefined : Number(o.sequences);
  if (sequences !== undefined && !(Number.isSafeInteger(sequences) && sequences > 0)) io.fail(`--sequences must be a positive integer, not ${o.sequences}`);
  if (!["syscalls", "users", "everything"].includes(o.ops)) io.fail(`--ops must be syscalls, users or everything, not ${o.ops}`);
  const knobs: Record<string, boolean> = {};
  for (const k of o.knob) {
    const m = /^(\w+)=(true|false)$/.exec(k);
    if (!m) io.fail(`--knob takes name=true or name=false, not ${k}`);
    knobs[m[1]!] = m[2] === "true";
  }

  const bar = io.tty && !o.quiet && !o.json
    ? new cliProgress.SingleBar({
      format: "fuzzing {strategy} |{bar}| {elapsed}/{seconds} s  {steps} steps  {failures} failures",
      hideCursor: true, clearOnComplete: true, stream: process.stderr,
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(seconds, 0, { strategy: o.strategy, elapsed: 0, seconds, steps: 0, failures: 0 });
  let report: FuzzReport;
  try {
    report = fuzz({
      strategy: o.strategy as StrategyId, knobs, seconds, seed, ops: o.ops as OpSet,
      ...(sequences !== undefined ? { sequences } : {}),
      ...(o.stopOn !== undefined ? { stopOn: o.stopOn } : {}),
      onProgress: (p) => bar?.update(Math.min(p.elapsed, seconds), { elapsed: p.elapsed.toFixed(0), steps: p.steps, failures: p.failures }),
    });
  } catch (e) {
    bar?.stop();
    // a bad knob is the user's: makeStrategy() says which
    io.fail((e as Error).message);
  }
  bar?.stop();

  const files = o.out ? writeFailures(o.out, report.failures, { strategy: o.strategy, knobs }, io.fail) : [];
  if (o.json) {
    io.out(JSON.stringify({ ...report, failures: report.failures.map((f, i) => ({ ...f, file: files[i] ?? null })) }, null, 2));
  } else {
    report.failures.forEach((f, i) => {
      io.out(`${f.signature}: ${f.message.split("\n")[0]} — ${f.ops.length} steps (shrunk from ${f.foundSteps}, at ${f.foundAfter.toFixed(1)} s)${files[i] ? ` → ${files[i]}` : ""}`);
    });
    io.out(summary(report));
  }
  return report.failures.length ? 1 : 0;
}

/** The closing line: steps, steps per second, failures by signature. */
export function summary(r: FuzzReport): string {
  const bySig = r.failures.map((f) => f.signature).join(", ");
  return `fuzz ${r.strategy} (seed ${r.seed}): ${r.steps} steps in ${r.elapsed.toFixed(1)} s (${Math.round(r.stepsPerSecond)} steps/s), ` +
    `${r.sequences} sequences; ${r.failures.length} failure${r.failures.length === 1 ? "" : "s"}${bySig ? `: ${bySig}` : ""}`;
}

function writeFailures(dir: string, failures: readonly FuzzFailure[], run: { strategy: string; knobs: Record<string, boolean> },
  fail: (message: string) => never): string[] {
  try {
    mkdirSync(dir, { recursive: true });
    return failures.map((f) => {
      const file = join(dir, `${run.strategy}-${f.signature.replace(/[^\w.-]+/g, "-")}.yaml`);
      writeFileSync(file, failureScenario(f, { strategy: run.strategy, knobs: run.knobs }));
      return file;
    });
  } catch (e) {
    fail(`cannot write the failures to ${dir} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
  }
}
