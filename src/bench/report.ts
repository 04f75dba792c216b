/**
 * A bench report as text — the terminal table and Markdown — and the merge of shard files into
 * the report one run of the whole job list gives. The HTML report is html.ts's.
 */
import type { BenchReport, BenchRow } from "./result.js";
import { timeless } from "./run.js";

/** How a shard file says where it belongs: shard K of N of a job list of `total` jobs. */
export interface ShardInfo {
  readonly k: number;
  readonly n: number;
  readonly total: number;
}

/** A shard file: the report of its jobs (rows[i] ran jobs[i]) and its place. */
export interface ShardReport extends BenchReport {
  readonly jobs: readonly string[];
  readonly shard: ShardInfo;
}

/** A row's strategy with its variant, as the tables name it. */
export function runLabel(row: BenchRow): string {
  return row.variant ? `${row.strategy}+${row.variant}` : row.strategy;
}

const total = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);

/** Faults as "anon 64, wp 18": the kinds in the row's (sorted) order. */
function faultText(row: BenchRow): string {
  const f = row.metrics.faults;
  return Object.keys(f).map((k) => `${k} ${f[k]}`).join(", ") || "0";
}

/** Operations per second, short: 1.2M, 340k. */
export function rate(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(0);
}

/** What differs between rows of one workload: its size and parameters, once per group. */
function groupTitle(row: BenchRow): string {
  const params = Object.entries(row.params).map(([k, v]) => `${k}=${v}`).join(" ");
  return `${row.workload} (${row.size}, seed ${row.seed}: ${params})`;
}

const COLUMNS = ["strategy", "copies", "reuses", "unnec.", "missed", "wrong", "faults", "frames", "swap out/in", "GUP pages/fail", "accesses/s"] as const;

/** With --vs-kernel: the cost model's estimate, the host's measured time and host ÷ simulated. */
const KERNEL_COLUMNS = ["kernel est.", "kernel", "kernel/sim"] as const;

const ms = (s: number) => `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`;

function cells(row: BenchRow, kernel: boolean): string[] {
  const m = row.metrics;
  const out = [
    runLabel(row), String(m.copies), String(m.reuses), String(m.unnecessaryCow), String(m.missedCow), String(m.wrongCow),
    `${total(m.faults)}`, String(m.framesPeak), `${m.swapOuts}/${m.swapIns}`, `${m.gupPages}/${m.gupFailures}`, rate(row.accessesPerSecond),
  ];
  if (kernel) {
    out.push(row.estimate ? ms(row.estimate.seconds) : "-", row.kernel ? ms(row.kernel.seconds) : "-", row.kernel ? `${row.kernel.ratio.toFixed(2)}×` : "-");
  }
  return out;
}

const columns = (rows: readonly BenchRow[]): string[] =>
  rows.some((r) => r.estimate || r.kernel) ? [...COLUMNS, ...KERNEL_COLUMNS] : [...COLUMNS];

/** Rows grouped by what they ran (workload, size, parameters, seed), in report order. */
function groups(rows: readonly BenchRow[]): { title: string; rows: BenchRow[] }[] {
  const out: { title: string; rows: BenchRow[] }[] = [];
  for (const row of rows) {
    const title = groupTitle(row);
    const last = out[out.length - 1];
    if (last?.title === title) last.rows.push(row);
    else out.push({ title, rows: [row] });
  }
  return out;
}

/** A column-aligned table for a terminal: one block per workload run, one line per strategy. */
export function terminalTable(report: BenchReport, paint: (style: "bold" | "dim" | "red", text: string) => string = (_s, t) => t): string {
  const blocks: string[] = [];
  for (const g of groups(report.rows)) {
    const cols = columns(report.rows);
    const kernel = cols.length > COLUMNS.length;
    const table = [cols, ...g.rows.map((r) => cells(r, kernel))];
    const widths = cols.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
    const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
    const body = g.rows.map((row, i) => {
      const text = line(table[i + 1]!);
      return row.metrics.missedCow || row.metrics.wrongCow ? paint("red", text) : text;
    });
    const faults = g.rows.map((row) => `  ${runLabel(row).padEnd(widths[0]!)}  faults: ${faultText(row)}`);
    blocks.push([paint("bold", g.title), line(table[0]!), ...body, paint("dim", faults.join("\n"))].join("\n"));
  }
  return blocks.join("\n\n");
}

/** The report as Markdown: a heading and a table per workload run, the faults by kind in a last column. */
export function markdownReport(report: BenchReport): string {
  const out = [`# cowsim bench`, "", `\`${report.command}\` on ${report.machine}`, ""];
  for (const g of groups(report.rows)) {
    const cols = columns(report.rows);
    const kernel = cols.length > COLUMNS.length;
    out.push(`## ${g.title}`, "", `| ${[...cols, "faults by kind"].join(" | ")} |`, `|${[...cols, ""].map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const row of g.rows) out.push(`| ${[...cells(row, kernel), faultText(row)].join(" | ")} |`);
    out.push("");
  }
  return out.join("\n");
}

/** The report with its time fields zeroed: what a merge must give equal to a single run. */
export function timelessReport(report: BenchReport): unknown {
  const { shard: _s, ...rest } = report as ShardReport;
  return { ...rest, rows: report.rows.map(timeless) };
}

/**
 * Merges shard reports into the report of the whole job list: rows in job order. Throws an
 * Error naming what is wrong when the shards are not one complete, consistent set.
 */
export function mergeShards(shards: readonly { file: string; report: ShardReport }[]): BenchReport {
  if (shards.length === 0) throw new Error("no shard files to merge");
  const first = shards[0]!;
  const { n, total: all } = first.report.shard;
  const byJob = new Map<string, { row: BenchRow; file: string }>();
  const seen = new Map<number, string>();
  for (const { file, report } of shards) {
    const s = report.shard;
    if (report.command !== first.report.command) throw new Error(`${file} is a shard of "${report.command}", ${first.file} of "${first.report.command}"`);
    if (s.n !== n || s.total !== all) throw new Error(`${file} is shard ${s.k}/${s.n} of ${s.total} jobs, ${first.file} shard ${first.report.shard.k}/${n} of ${all}`);
    if (seen.has(s.k)) throw new Error(`shard ${s.k}/${n} is there twice: ${seen.get(s.k)} and ${file}`);
    seen.set(s.k, file);
    if (report.jobs.length !== report.rows.length) throw new Error(`${file}: ${report.jobs.length} jobs but ${report.rows.length} rows`);
    report.jobs.forEach((id, i) => byJob.set(id, { row: report.rows[i]!, file }));
  }
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((k) => !seen.has(k));
  if (missing.length) throw new Error(`shard${missing.length > 1 ? "s" : ""} ${missing.map((k) => `${k}/${n}`).join(", ")} missing (${seen.size} of ${n} found)`);
  if (byJob.size !== all) throw new Error(`the shards hold ${byJob.size} jobs, the job list has ${all}`);
  // ids begin with the job's index, zero-padded: sorting them restores the job list's order
  const jobs = [...byJob.keys()].sort();
  const { shard: _s, jobs: _j, rows: _r, ...rest } = first.report;
  return { ...rest, rows: jobs.map((id) => byJob.get(id)!.row), jobs };
}
