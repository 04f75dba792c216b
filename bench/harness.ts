/**
 * What the kernel-layer benchmarks share: cases timed inside Benchmark.js runs with their setup
 * and teardown left out, run in one suite, and the real kernel's figures beside them — the
 * development machine's reference, or with --kernel this machine's, measured by the C program
 * bench/kernel/<name>.c in the same run.
 */
import Benchmark from "benchmark";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const json = process.argv.includes("--json");

/** Every value of a repeatable flag: `--tree a --tree b` → [a, b]. */
export function argValues(flag: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => { if (a === flag && process.argv[i + 1]) out.push(process.argv[i + 1]!); });
  return out;
}
export const log = (...a: unknown[]): void => { if (!json) console.log(...a); };

/** One measured case: `per` units per run (pages, MiB …), or 0 for a figure in ms per run. */
export interface Case {
  key: string;
  name: string;
  per: number;
  /** The result's scale: ns per unit by default. */
  unit?: "ns" | "us" | "ms";
  fn: () => void;
  /** The time measured so far, and each run's (for a median). */
  acc: { ns: number; runs: number; each: number[] };
}

/** Times `measured` inside each Benchmark run; setup and teardown around it are not counted. */
export function timed<S>(key: string, name: string, per: number, setup: () => S, measured: (s: S) => void,
  teardown: (s: S) => void, unit: Case["unit"] = "ns"): Case {
  const acc = { ns: 0, runs: 0, each: [] as number[] };
  const fn = () => {
    const s = setup();
    const t0 = process.hrtime.bigint();
    measured(s);
    const ns = Number(process.hrtime.bigint() - t0);
    acc.ns += ns;
    acc.runs++;
    acc.each.push(ns);
    teardown(s);
  };
  return { key, name, per, unit, fn, acc };
}

/**
 * Runs every case in one suite; returns key → mean per unit, in each case's unit. With `warmup`,
 * each case first runs that many times untimed, so its figure is of code the engine has
 * compiled; with `median`, the figure is the median run's, not the mean — as the kernel's
 * figures are medians of rounds, and so a collection or a descheduling that lands inside a few
 * runs does not count for all of them.
 */
export function runCases(cases: readonly Case[], options: { minSamples?: number; maxTime?: number; warmup?: number; median?: boolean } = {}): Record<string, number> {
  for (const c of cases) {
    for (let i = 0; i < (options.warmup ?? 0); i++) c.fn();
    c.acc.ns = 0;
    c.acc.runs = 0;
    c.acc.each.length = 0;
  }
  const suite = new Benchmark.Suite();
  for (const c of cases) suite.add(c.name, c.fn, { minSamples: options.minSamples ?? 5, maxTime: options.maxTime ?? 2 });
  suite.on("cycle", (e: Benchmark.Event) => {
    const b = e.target as unknown as Benchmark & { error?: Error };
    if (b.error) throw b.error;
    log("  " + String(b));
  }).run();
  const scale = { ns: 1, us: 1e3, ms: 1e6 };
  const out: Record<string, number> = {};
  for (const c of cases) {
    const each = [...c.acc.each].sort((a, b) => a - b);
    const ns = options.median ? each[each.length >> 1]! : c.acc.ns / c.acc.runs;
    out[c.key] = ns / (c.per || 1) / scale[c.unit ?? "ns"];
  }
  return out;
}

/**
 * The real kernel's figures: `reference` (the development machine's), or with --kernel those
 * bench/kernel/<program>.c measures here; a figure it cannot measure (null) keeps the reference.
 */
export function kernelFigures(program: string, reference: Record<string, number>): { figures: Record<string, number>; measured: Set<string> } {
  const measured = new Set<string>();
  if (!process.argv.includes("--kernel")) return { figures: reference, measured };
  const runner = fileURLToPath(new URL("./kernel/run.mjs", import.meta.url));
  const line = execFileSync(process.execPath, [runner, program], { encoding: "utf8" }).trim().split("\n").pop()!;
  const here = JSON.parse(line) as Record<string, number | null>;
  const figures = { ...reference };
  for (const [k, v] of Object.entries(here)) if (typeof v === "number") { figures[k] = v; measured.add(k); }
  return { figures, measured };
}

/** results["linuxX"] = figures["x"], for --json. */
export function addLinux(results: Record<string, number>, figures: Record<string, number>): void {
  for (const [k, v] of Object.entries(figures)) results["linux" + k[0]!.toUpperCase() + k.slice(1)] = v;
}

/** A row of the comparison table: results[key] (oracle off) and results[key + "Oracle"]. */
export interface Row { label: string; key: string; unit: string; linux?: number; digits?: number }

/** Prints the Markdown table the README carries: each figure beside Linux's, and the ratio. */
export function printTable(results: Record<string, number>, rows: readonly Row[]): void {
  console.log("\n| measure | oracle off | oracle on | Linux | off: × faster | on: × faster |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const { label, key, unit, linux, digits = 0 } of rows) {
    const off = results[key]!, on = results[key + "Oracle"]!;
    const kv = linux ? `${linux} ${unit}` : "—";
    const r = (v: number) => linux ? `${(linux / v).toFixed(1)}×` : "—";
    console.log(`| ${label} | ${off.toFixed(digits)} ${unit} | ${on.toFixed(digits)} ${unit} | ${kv} | ${r(off)} | ${r(on)} |`);
  }
}
