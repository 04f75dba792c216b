/**
 * What the CLI prints: tables of outcomes, the catalog matrix, TAP, explanations, and the
 * strategies side by side. Plain text; colour only where the caller says the stream is a terminal.
 */
import { basename, extname } from "node:path";
import { styleText } from "node:util";
import { STRATEGY_IDS, STRATEGIES } from "../kernel.js";
import type { RunResult, ScenarioResult } from "../scenario/run.js";
import type { MatrixCell } from "../scenario/matrix.js";

export type Paint = (style: "green" | "red" | "bold" | "dim" | "yellow", text: string) => string;

/** Colours for a stream: only on a terminal, never with NO_COLOR set. */
export function painter(stream: NodeJS.WriteStream): Paint {
  const on = stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== "dumb";
  return on ? (style, text) => styleText(style, text) : (_style, text) => text;
}

/** Columns padded to their widest cell; `paint` colours a cell after padding. */
export function table(rows: readonly (readonly string[])[], paint?: (row: number, col: number, text: string) => string): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, [...c].length); });
  return rows.map((r, ri) => r.map((c, ci) => {
    const cell = ci === r.length - 1 ? c : c + " ".repeat(widths[ci]! - [...c].length);
    return paint ? paint(ri, ci, cell) : cell;
  }).join("  ").trimEnd()).join("\n");
}

const verdict = (r: RunResult) => (r.pass ? "PASS" : "FAIL");
const colourVerdict = (p: Paint) => (text: string) => (text.startsWith("PASS") ? p("green", text) : text.startsWith("FAIL") ? p("red", text) : text);

/** A scenario's label in the catalog: its file name, and its place in a stream of several. */
export function label(r: ScenarioResult, docsInFile: number, index: number): string {
  const name = basename(r.file, extname(r.file));
  return docsInFile > 1 ? `${name}#${index + 1}` : name;
}

/** `cowsim run`: one table per scenario, then the failures. */
export function runReport(results: readonly ScenarioResult[], p: Paint): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(p("bold", `${r.name}`) + p("dim", `  (${r.file}:${r.line})`));
    const rows = [["run", "kernels", "result", "missed", "unnecessary", "wrong", "copies", "reuses", "faults"]];
    for (const run of r.runs) {
      const c = run.counters;
      rows.push([run.run, run.kernels, verdict(run), String(c.missedCow ?? 0), String(c.unnecessaryCow ?? 0), String(c.wrongCow ?? 0),
        String(c.copies ?? 0), String(c.reuses ?? 0), String((c.anonFaults ?? 0) + (c.zeroPageFaults ?? 0) + (c.wpFaults ?? 0) + (c.swapins ?? 0) + (c.shmemFaults ?? 0))]);
    }
    const colour = colourVerdict(p);
    out.push(table(rows, (ri, ci, t) => (ri === 0 ? p("dim", t) : ci === 2 ? colour(t) : t)).replace(/^/gm, "  "));
    for (const run of r.runs) {
      for (const f of run.findings) out.push(`  ${run.run}: ${f.kind} at step ${(f.scenarioStep ?? -1) + 1}${f.line ? ` (line ${f.line})` : ""}: ${f.summary}`);
    }
    for (const run of r.runs) for (const f of run.failures) out.push(p("red", `  ${run.run}: ${f.message}`));
    out.push("");
  }
  const failed = results.flatMap((r) => r.runs).filter((x) => !x.pass).length;
  const total = results.flatMap((r) => r.runs).length;
  out.push(failed ? p("red", `${failed} of ${total} runs failed`) : p("green", `all ${total} runs passed`));
  return out.join("\n");
}

/** Each finding as its causal chain: the steps, and the kernel decisions within them. */
export function explainReport(results: readonly ScenarioResult[], p: Paint): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(p("bold", r.name) + p("dim", `  (${r.file}:${r.line})`));
    for (const run of r.runs) {
      const head = `${run.run} — ${run.kernels}${Object.keys(run.knobs).length ? ` (${Object.entries(run.knobs).map(([k, v]) => `${k}=${v}`).join(", ")})` : ""}`;
      if (run.findings.length === 0) {
        out.push(`\n${p("bold", head)}: no finding${run.pass ? "" : "; " + run.failures.map((f) => f.message).join("; ")}`);
        continue;
      }
      out.push(`\n${p("bold", head)}: ${run.findings.length} finding${run.findings.length > 1 ? "s" : ""}`);
      run.findings.forEach((f, i) => {
        out.push(`  ${i + 1}. ${p(f.kind === "unnecessary-cow" ? "yellow" : "red", f.kind)} at step ${(f.scenarioStep ?? -1) + 1}${f.line ? ` (line ${f.line})` : ""}: ${f.summary}`);
        let shown = -2;
        for (const link of f.chain) {
          if (link.scenarioStep !== shown) {
            shown = link.scenarioStep ?? -1;
            const s = link.scenarioStep === null ? undefined : run.steps[link.scenarioStep];
            out.push(s ? `     step ${s.index + 1} (line ${s.line}): ${s.text}` : `     ${link.call}`);
          }
          out.push(`       ${link.n}. ${p("bold", link.fn)}: ${link.what}${link.counter ? p("dim", `  [${link.counter}]`) : ""}`);
        }
      });
    }
    out.push("");
  }
  return out.join("\n");
}

/** The catalog's matrix: a row per scenario (and per extra run), a column per strategy; then each scenario matrix (cells). */
export function checkMatrix(results: readonly ScenarioResult[], labels: readonly string[], p: Paint, cells: readonly (MatrixCell | undefined)[] = []): string {
  const rows: string[][] = [["scenario", ...STRATEGY_IDS]];
  const matrices = new Map<string, { r: ScenarioResult; cell: MatrixCell }[]>();
  results.forEach((r, i) => {
    const cell = cells[i];
    if (cell) {
      matrices.set(cell.matrix, [...(matrices.get(cell.matrix) ?? []), { r, cell }]);
      return;
    }
    const main = r.runs.filter((x) => x.run === x.strategy);
    rows.push([labels[i]!, ...STRATEGY_IDS.map((s) => { const x = main.find((m) => m.strategy === s); return x ? verdict(x) : "-"; })]);
    for (const x of r.runs.filter((y) => y.run !== y.strategy)) {
      rows.push([`${labels[i]} [${x.run}]`, ...STRATEGY_IDS.map((s) => (s === x.strategy ? verdict(x) : ""))]);
    }
  });
  const colour = colourVerdict(p);
  const out = [table(rows, (ri, ci, t) => (ri === 0 ? p("bold", t) : ci > 0 ? colour(t) : t))];
  for (const [name, members] of matrices) out.push("", matrixTables(name, members, p));
  return out.join("\n");
}

const FINDING_LETTER: Readonly<Record<string, string>> = { "missed-cow": "M", "wrong-cow": "W", "unnecessary-cow": "U" };

/** A run's findings as letters (M, W, U; · for none), FAIL when they are not the kernels', ~ where the model is known to differ. */
function cellCode(run: RunResult, cell: MatrixCell): string {
  const kinds = [...new Set(run.findings.map((f) => FINDING_LETTER[f.kind] ?? "?"))].join("") || "·";
  return `${run.pass ? "" : "FAIL "}${kinds}${cell.known[run.run] !== undefined ? "~" : ""}`;
}

/**
 * A scenario matrix compactly: per strategy, a row per case and a column per setup; each cell
 * the findings of its runs — one code when every size agrees, else each code with its sizes.
 */
function matrixTables(name: string, members: readonly { r: ScenarioResult; cell: MatrixCell }[], p: Paint): string {
  const cases = [...new Set(members.map((m) => m.cell.case))];
  const setups = [...new Set(members.map((m) => m.cell.setup))];
  const sizes = [...new Set(members.map((m) => m.cell.size))];
  const runs = [...new Set(members.flatMap((m) => m.r.runs.map((x) => x.run)))];
  const all = members.flatMap((m) => m.r.runs);
  const out = [p("bold", `${name}: ${cases.length} cases × ${setups.length} setups × sizes ${sizes.join(", ")} = ${members.length} scenarios, ` +
    `${all.length} runs, ${all.filter((x) => x.pass).length} as the kernels behave`) +
    p("dim", "  (M missed COW, W wrong COW, U unnecessary COW, · none; ~ the model differs from the kernel, see the description)")];
  for (const run of runs) {
    const rows: string[][] = [[`${name} ${run}`, ...setups]];
    for (const c of cases) {
      rows.push([c, ...setups.map((s) => {
        const bySize = new Map<string, string[]>();
        for (const m of members) {
          if (m.cell.case !== c || m.cell.setup !== s) continue;
          const x = m.r.runs.find((y) => y.run === run);
          if (!x) continue;
          const code = cellCode(x, m.cell);
          bySize.set(code, [...(bySize.get(code) ?? []), m.cell.size]);
        }
        if (bySize.size === 0) return "-";
        if (bySize.size === 1) return [...bySize.keys()][0]!;
        return [...bySize].map(([code, z]) => `${code}@${z.join(",")}`).join(" ");
      })]);
    }
    out.push("", table(rows, (ri, ci, t) => (ri === 0 ? p("bold", t) : ci > 0 && t.includes("FAIL") ? p("red", t) : t)));
  }
  return out.join("\n");
}

/** The strategies side by side over the catalog: what the oracle found under each. */
export function comparison(results: readonly ScenarioResult[], p: Paint): string {
  const rows = [["strategy", "kernels", "missed COW", "unnecessary COW", "wrong COW", "copies", "reuses", "scenarios with a finding"]];
  for (const s of STRATEGY_IDS) {
    const runs = results.flatMap((r) => r.runs.filter((x) => x.run === s));
    const sum = (c: string) => String(runs.reduce((a, x) => a + (x.counters[c] ?? 0), 0));
    const kernels = runs[0]?.kernels ?? STRATEGIES.find((i) => i.id === s)!.kernels;
    rows.push([s, kernels, sum("missedCow"), sum("unnecessaryCow"), sum("wrongCow"), sum("copies"), sum("reuses"), String(runs.filter((x) => x.findings.length).length)]);
  }
  return `The strategies on the ${results.length} scenarios of the catalog (the oracle's verdicts, summed):\n` +
    table(rows, (ri, _ci, t) => (ri === 0 ? p("bold", t) : t));
}

/** TAP version 13, as the kernel selftests print it (ksft): one test point per run. */
export function tap(results: readonly ScenarioResult[], labels: readonly string[]): string {
  const points = results.flatMap((r, i) => r.runs.map((run) => ({ r, run, name: `${labels[i]} [${run.run}]` })));
  const out = ["TAP version 13", `1..${points.length}`];
  points.forEach(({ r, run, name }, i) => {
    out.push(`${run.pass ? "ok" : "not ok"} ${i + 1} ${name}`);
    if (!run.pass) {
      out.push("  ---", `  file: ${JSON.stringify(r.file)}`, "  failures:");
      for (const f of run.failures) out.push(`    - ${JSON.stringify(f.message)}`);
      out.push("  ...");
    }
  });
  const failed = points.filter((x) => !x.run.pass).length;
  out.push(`# Totals: pass:${points.length - failed} fail:${failed} xfail:0 xpass:0 skip:0 error:0`);
  return out.join("\n");
}
