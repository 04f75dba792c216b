/**
 * What the kernel-layer benchmarks share: cases timed inside Benchmark.js runs with their setup
 * and teardown left out, run in one suite, and the real kernel's figures beside them — the
 * development machine's reference, or with --kernel this machine's, measured by the C program
 * bench/kernel/<name>.c in the same run.
 */
import Benchmark from "benchmark";
import { execFileSync } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolve } from "node:path";

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

/** A case before Benchmark.js wraps it: what is measured, with its setup and teardown apart. */
export interface Spec<S = unknown> {
  key: string; name: string; per: number; unit: Case["unit"];
  setup: () => S; measured: (s: S) => void; teardown: (s: S) => void;
}
export const spec = <S>(key: string, name: string, per: number, setup: () => S, measured: (s: S) => void, teardown: (s: S) => void,
  unit: Case["unit"] = "ns"): Spec => ({ key, name, per, unit, setup, measured, teardown } as Spec);

/** The specs as Benchmark.js cases, for runCases(). */
export const timedSpecs = (specs: readonly Spec[]): Case[] =>
  specs.map((c) => timed(c.key, c.name, c.per, c.setup, c.measured, c.teardown, c.unit));

/** The checkout in `dir` as its users run it: its compiled dist/ (npm run build there first). */
export async function treeApi<Api>(dir: string): Promise<Api> {
  return await import(pathToFileURL(resolve(dir, "dist/index.js")).href) as Api;
}

/**
 * `--tree DIR`: this checkout's cases (`mine`) and the other's (`theirs`, the same cases in the
 * same order) run in this process, interleaved run by run — the order alternating each round,
 * so drift of the host falls on both alike — for `rounds` rounds after three untimed ones.
 * Prints a table of both medians, the median of the rounds' ratios and their middle half (the
 * noise a ratio is judged against); with --json, the figures as JSON.
 */
export function compareTrees(mine: readonly Spec[], theirs: readonly Spec[], label: string, rounds: number): void {
  const once = (c: Spec): number => {
    const st = c.setup();
    const t0 = process.hrtime.bigint();
    c.measured(st);
    const ns = Number(process.hrtime.bigint() - t0);
    c.teardown(st);
    // per unit in the case's unit (ns by default), or ms per run
    return c.per ? ns / c.per / (c.unit === "us" ? 1e3 : c.unit === "ms" ? 1e6 : 1) : ns / 1e6;
  };
  const samples = mine.map(() => ({ mine: [] as number[], theirs: [] as number[] }));
  for (let r = -3; r < rounds; r++) { // three rounds to warm up, not counted
    mine.forEach((c, i) => {
      const t = theirs[i]!;
      const [a, b] = r % 2 ? [once(t), once(c)].reverse() : [once(c), once(t)];
      if (r >= 0) { samples[i]!.mine.push(a!); samples[i]!.theirs.push(b!); }
    });
    if (!json) process.stderr.write(`\r  round ${Math.max(0, r + 1)}/${rounds}`);
  }
  const median = (xs: readonly number[]) => { const s = [...xs].sort((x, y) => x - y); return s[s.length >> 1]!; };
  const out: Record<string, number> = {};
  if (!json) {
    console.log(`\n\nthis checkout beside ${label}, ${rounds} rounds, interleaved\n`);
    console.log(`| measure | this checkout (median) | ${label} (median) | ${label} ÷ this (median of the rounds' ratios) | middle half |`);
    console.log("| --- | --- | --- | --- | --- |");
  }
  mine.forEach((c, i) => {
    const s = samples[i]!;
    const ratios = s.theirs.map((x, j) => x / s.mine[j]!).sort((x, y) => x - y);
    const q = (f: number) => ratios[Math.floor(f * (ratios.length - 1))]!;
    out[c.key] = median(s.mine);
    out[`${label}:${c.key}`] = median(s.theirs);
    out[`${label}:${c.key}:ratio`] = median(ratios);
    const unit = c.per ? c.unit ?? "ns" : "ms";
    const d = unit === "ns" ? 0 : 2;
    if (!json) console.log(`| ${c.name} | ${median(s.mine).toFixed(d)} ${unit} | ${median(s.theirs).toFixed(d)} ${unit} | ${median(ratios).toFixed(2)}× | ${q(0.25).toFixed(2)}–${q(0.75).toFixed(2)} |`);
  });
  if (json) console.log(JSON.stringify(out));
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
