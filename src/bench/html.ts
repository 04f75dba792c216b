/**
 * The bench report as one self-contained HTML file (Node only: it reads the charting library
 * from the installed package): it opens offline, from a file, with nothing fetched — a
 * Content-Security-Policy of `default-src 'none'` says so to the browser. Chart.js's minified
 * UMD build is inlined at render time from node_modules (the `chart.js` dependency), the
 * report's rows as JSON beside it, and a small script draws, per workload:
 *
 *   - the strategies side by side: copies, reuses and the oracle's verdicts (unnecessary,
 *     missed, wrong COWs), and the faults by kind;
 *   - a timeline of copies and findings from each row's timeline;
 *   - the cost model's estimate beside the measured host kernel, when the rows have them.
 *
 * The page sets `window.cowsimCharts` (each chart's id, type and the number of points it drew)
 * once drawn, for a test or a script to check.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { BenchReport } from "./result.js";

let chartJs: string | undefined;

/** Chart.js's minified UMD build, from the installed package (read once). */
export function chartLibrary(): string {
  if (chartJs === undefined) {
    // the package's exports map names no dist file: resolve its main entry and look beside it
    let main: string;
    try {
      main = createRequire(import.meta.url).resolve("chart.js");
    } catch {
      throw new Error("the HTML report inlines Chart.js, a dependency of cowsim that is not installed here: run npm install");
    }
    chartJs = readFileSync(join(dirname(main), "chart.umd.min.js"), "utf8");
  }
  return chartJs;
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** JSON that is safe inside a <script> element (no "</script>", no "<!--"). */
const scriptJson = (v: unknown): string =>
  JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

/** Renders the report as one HTML document. */
export function renderHtml(report: BenchReport, options: { title?: string } = {}): string {
  const title = options.title ?? "cowsim bench";
  const workloads = [...new Set(report.rows.map((r) => r.workload))];
  const library = chartLibrary().replace(/<\/(script)/gi, "<\\/$1");
  const sections = workloads.map((w, i) => `
<section class="workload" id="w${i}">
  <h2>${escapeHtml(w)}</h2>
  <div class="table" id="w${i}-table"></div>
  <div class="charts">
    <figure><figcaption>COW decisions and the oracle's verdicts, by strategy</figcaption><div class="box"><canvas id="w${i}-cow"></canvas></div></figure>
    <figure><figcaption>faults by kind, by strategy</figcaption><div class="box"><canvas id="w${i}-faults"></canvas></div></figure>
    <figure class="wide"><figcaption>timeline: copies and findings, cumulative, by step</figcaption><div class="box"><canvas id="w${i}-timeline"></canvas></div></figure>
    <figure class="kernel" id="w${i}-kernel-figure"><figcaption>seconds: simulated, the cost model's estimate, the host kernel measured</figcaption><div class="box"><canvas id="w${i}-kernel"></canvas></div></figure>
  </div>
</section>`).join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
  h1 { font-size: 1.5em; margin: 0 0 .2em; }
  h2 { font-size: 1.2em; margin: 1.5em 0 .4em; border-bottom: 1px solid #ddd; }
  .meta { color: #555; font-size: .9em; white-space: pre-wrap; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .85em; }
  th, td { padding: .15em .6em; border-bottom: 1px solid #eee; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; margin-top: .8em; }
  figure { margin: 0; }
  figure.wide { grid-column: 1 / -1; }
  figcaption { font-size: .85em; color: #555; }
  .box { position: relative; height: 260px; }
  .bad { color: #b00020; font-weight: 600; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<div class="meta">${escapeHtml(report.command)}
${escapeHtml(report.machine)}${report.costModel ? `\ncost model: ${escapeHtml(report.costModel.machine)}` : ""}</div>
${sections}
<script type="application/json" id="cowsim-report">${scriptJson(report)}</script>
<script>${library}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

/** What the page runs: tables and charts from the embedded report. Plain ES2020, no imports. */
const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("cowsim-report").textContent);
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  var drawn = [];
  var workloads = [];
  report.rows.forEach(function (r) { if (workloads.indexOf(r.workload) < 0) workloads.push(r.workload); });

  function distinct(rows, key) {
    var seen = {};
    rows.forEach(function (r) { seen[JSON.stringify(key(r))] = true; });
    return Object.keys(seen).length > 1;
  }
  /** a row's label: its strategy, and what tells it from the workload's other rows */
  function labeller(rows) {
    var size = distinct(rows, function (r) { return r.size; });
    var seed = distinct(rows, function (r) { return r.seed; });
    var oracle = distinct(rows, function (r) { return r.oracle; });
    var knobs = distinct(rows, function (r) { return r.variant || r.knobs; });
    var params = distinct(rows, function (r) { return r.params; });
    return function (r) {
      var l = r.strategy;
      if (knobs) l += r.variant ? " [" + r.variant + "]" : Object.keys(r.knobs).length ? " [" + Object.keys(r.knobs).map(function (k) { return (r.knobs[k] ? "+" : "-") + k; }).join(" ") + "]" : "";
      if (size) l += " " + r.size;
      if (params) l += " " + Object.keys(r.params).map(function (k) { return k + "=" + r.params[k]; }).join(",");
      if (seed) l += " seed " + r.seed;
      if (oracle && !r.oracle) l += " (no oracle)";
      return l;
    };
  }
  function fmt(v, digits) {
    if (v === undefined || v === null) return "";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    return v.toPrecision(digits || 3);
  }
  function total(o) { var n = 0; for (var k in o) n += o[k]; return n; }
  function cell(tr, text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); }

  function table(el, rows, label) {
    var t = document.createElement("table");
    var head = ["run", "copies", "reuses", "unnecessary", "missed", "wrong", "faults", "incoherent pins", "sim s", "estimate s", "kernel s", "kernel/sim", "estimate error"];
    var tr = document.createElement("tr");
    head.forEach(function (h) { var th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var m = r.metrics;
      tr = document.createElement("tr");
      cell(tr, label(r));
      cell(tr, fmt(m.copies)); cell(tr, fmt(m.reuses));
      cell(tr, fmt(m.unnecessaryCow), m.unnecessaryCow ? "bad" : "");
      cell(tr, fmt(m.missedCow), m.missedCow ? "bad" : "");
      cell(tr, fmt(m.wrongCow), m.wrongCow ? "bad" : "");
      cell(tr, fmt(total(m.faults)));
      cell(tr, fmt(m.incoherentPins), m.incoherentPins ? "bad" : "");
      cell(tr, fmt(r.seconds));
      cell(tr, r.estimate ? fmt(r.estimate.seconds) : "");
      cell(tr, r.kernel ? fmt(r.kernel.seconds) : "");
      cell(tr, r.kernel ? fmt(r.kernel.ratio) : "");
      cell(tr, r.kernel && r.kernel.estimateError !== undefined ? (100 * r.kernel.estimateError).toFixed(1) + "%" : "");
      t.appendChild(tr);
    });
    el.appendChild(t);
  }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    var c = new Chart(canvas, config);
    var points = 0;
    c.data.datasets.forEach(function (d) { points += d.data.length; });
    drawn.push({ id: id, type: config.type, datasets: c.data.datasets.length, points: points });
    return c;
  }

  workloads.forEach(function (w, i) {
    var rows = report.rows.filter(function (r) { return r.workload === w; });
    var label = labeller(rows);
    var labels = rows.map(label);
    table(document.getElementById("w" + i + "-table"), rows, label);

    var verdicts = [["copies", "copies"], ["reuses", "reuses"], ["unnecessaryCow", "unnecessary COW"], ["missedCow", "missed COW"], ["wrongCow", "wrong COW"]];
    chart("w" + i + "-cow", {
      type: "bar",
      data: {
        labels: verdicts.map(function (v) { return v[1]; }),
        datasets: rows.map(function (r, j) {
          return { label: labels[j], backgroundColor: PALETTE[j % PALETTE.length], data: verdicts.map(function (v) { return r.metrics[v[0]]; }) };
        }),
      },
      options: { scales: { y: { beginAtZero: true } } },
    });

    var kinds = [];
    rows.forEach(function (r) { Object.keys(r.metrics.faults).forEach(function (k) { if (kinds.indexOf(k) < 0) kinds.push(k); }); });
    kinds.sort();
    chart("w" + i + "-faults", {
      type: "bar",
      data: {
        labels: labels,
        datasets: kinds.map(function (k, j) {
          return { label: k, backgroundColor: PALETTE[j % PALETTE.length], data: rows.map(function (r) { return r.metrics.faults[k] || 0; }) };
        }),
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });

    var lines = [];
    rows.forEach(function (r, j) {
      var colour = PALETTE[j % PALETTE.length];
      lines.push({ label: labels[j] + " copies", borderColor: colour, backgroundColor: colour, pointRadius: 0, borderWidth: 2, yAxisID: "y",
        data: r.timeline.map(function (p) { return { x: p.step, y: p.copies }; }) });
      lines.push({ label: labels[j] + " findings", borderColor: colour, backgroundColor: colour, borderDash: [5, 4], pointRadius: 0, borderWidth: 2, yAxisID: "y2",
        data: r.timeline.map(function (p) { return { x: p.step, y: p.findings }; }) });
    });
    chart("w" + i + "-timeline", {
      type: "line",
      data: { datasets: lines },
      options: {
        parsing: false,
        scales: {
          x: { type: "linear", title: { display: true, text: "step" } },
          y: { beginAtZero: true, title: { display: true, text: "copies" } },
          y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "findings" } },
        },
      },
    });

    var withKernel = rows.some(function (r) { return r.estimate || r.kernel; });
    if (!withKernel) {
      document.getElementById("w" + i + "-kernel-figure").style.display = "none";
      return;
    }
    chart("w" + i + "-kernel", {
      type: "bar",
      data: {
        labels: labels,
        datasets: [
          { label: "simulated", backgroundColor: PALETTE[0], data: rows.map(function (r) { return r.seconds; }) },
          { label: "estimate (cost model)", backgroundColor: PALETTE[1], data: rows.map(function (r) { return r.estimate ? r.estimate.seconds : null; }) },
          { label: "host kernel (measured)", backgroundColor: PALETTE[2], data: rows.map(function (r) { return r.kernel ? r.kernel.seconds : null; }) },
        ],
      },
      // simulated and host seconds can be orders of magnitude apart
      options: { scales: { y: { type: "logarithmic", title: { display: true, text: "seconds (log)" } } } },
    });
  });
  window.cowsimCharts = drawn;
})();
`;
