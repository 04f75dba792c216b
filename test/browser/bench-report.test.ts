// The bench report's HTML (src/bench/html.ts) opened from a file in headless Chromium, offline:
// rows of real simulated runs (three strategies of three workloads, with an estimate and a host
// measurement on some), a screenshot, and the page must draw every chart with data — non-blank
// canvases and non-empty datasets — with a clean console and no request but the file itself.
import { describe, it, expect, beforeAll } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { estimate, estimateError } from "../../src/bench/cost.js";
import { renderHtml } from "../../src/bench/html.js";
import type { BenchReport, BenchRow, CostModel } from "../../src/bench/result.js";
import { workload } from "../../src/workloads/index.js";
import { STRATEGY_IDS } from "../../src/kernel.js";
import { simulate } from "../../bench/sim-row.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
/** Without Chromium the test is skipped, except in CI (.ci/run installs it): there it must run. */
const skip = !existsSync(CHROMIUM) && process.env["CI"] !== "true";

const model: CostModel = { machine: "a test host", costs: { access: 2e-8, anonFault: 1e-6, cowCopy: 2e-6, reuse: 5e-7, fork: 1e-4, exit: 1e-4 } };
const WORKLOADS = ["fork-snapshot", "vmsplice-server", "pinned-rdma-fork"];

function report(): BenchReport {
  const rows: BenchRow[] = [];
  for (const name of WORKLOADS) {
    for (const strategy of STRATEGY_IDS) {
      const { row, program } = simulate(workload(name)!, "small", strategy, true);
      if (name === "fork-snapshot") {
        // an estimate and a host time, as --vs-kernel gives them (the host's figure made up here)
        const est = estimate(row.metrics, model, program);
        const host = 2 * est.seconds;
        rows.push({ ...row, estimate: est, kernel: { seconds: host, ratio: host / row.seconds, estimateError: estimateError(est, host) } });
      } else rows.push(row);
    }
  }
  return { version: 1, machine: "cowsim core (test)", command: "cowsim bench --size small --html report.html", rows, costModel: model };
}

describe("bench report HTML", () => {
  it("is one document with the library and the rows inlined, and nothing to fetch", () => {
    const r = report();
    const html = renderHtml(r);
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("Chart.js v4");
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)="(?!data:)/);
    // the rows come back whole from the embedded JSON, and markup in a name stays text
    const json = /<script type="application\/json" id="cowsim-report">([^<]*)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(json)).toEqual(r);
    const evil = renderHtml({ ...r, command: "</script><script>alert(1)</script>" });
    expect(evil).not.toContain("<script>alert(1)");
    expect(evil).toContain("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});

describe.skipIf(skip)(`bench report in headless Chromium (${CHROMIUM})`, () => {
  let dir = "";
  let file = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cowsim-report-"));
    file = join(dir, "report.html");
    writeFileSync(file, renderHtml(report()));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  it("draws every chart with data, offline, with a clean console", async () => {
    const profile = join(dir, "profile");
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, offline: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    const problems: string[] = [];
    const requests: string[] = [];
    try {
      const page = context.pages()[0] ?? await context.newPage();
      await page.setViewportSize({ width: 1280, height: 900 });
      page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`); });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("request", (r) => requests.push(r.url()));
      const url = pathToFileURL(file).href;
      await page.goto(url);
      await page.waitForFunction(() => (window as { cowsimCharts?: unknown }).cowsimCharts !== undefined, undefined, { timeout: 30_000 });
      const charts = await page.evaluate(() => (window as unknown as { cowsimCharts: { id: string; type: string; datasets: number; points: number }[] }).cowsimCharts);
      // per workload: strategies side by side, faults, the timeline; estimate vs kernel where present
      const expected = WORKLOADS.flatMap((_, i) => [`w${i}-cow`, `w${i}-faults`, `w${i}-timeline`, ...(i === 0 ? [`w${i}-kernel`] : [])]);
      expect(charts.map((c) => c.id)).toEqual(expected);
      for (const c of charts) {
        expect(c.datasets, c.id).toBeGreaterThan(0);
        expect(c.points, c.id).toBeGreaterThan(0);
      }
      expect(charts.find((c) => c.id === "w0-cow")).toMatchObject({ type: "bar", datasets: 3, points: 15 });
      expect(charts.find((c) => c.id === "w0-timeline")).toMatchObject({ type: "line", datasets: 6 });
      // every chart's canvas has pixels drawn, and its datasets hold a value above 0
      const painted = await page.evaluate((ids) => ids.map((id) => {
        const canvas = document.getElementById(id) as HTMLCanvasElement;
        const ctx = canvas.getContext("2d")!;
        const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) inked++;
        const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: { data: unknown[] }[] } } | undefined } }).Chart.getChart(canvas);
        const values = chart?.data.datasets.flatMap((d) => d.data.map((v) => (typeof v === "number" ? v : (v as { y?: number } | null)?.y ?? 0))) ?? [];
        return { id, width: canvas.width, height: canvas.height, inked, positive: values.some((v) => v > 0) };
      }), expected);
      for (const p of painted) {
        expect(p.width * p.height, p.id).toBeGreaterThan(0);
        expect(p.inked, p.id).toBeGreaterThan(1000);
        expect(p.positive, p.id).toBe(true);
      }
      // the table: one row per run, the made-up host time's estimate error shown
      expect(await page.locator("#w0-table tr").count()).toBe(1 + STRATEGY_IDS.length);
      expect(await page.locator("#w0-table").textContent()).toContain("-50.0%");
      expect(await page.locator("#w0-kernel-figure").isVisible()).toBe(true);
      expect(await page.locator("#w1-kernel-figure").isVisible()).toBe(false);
      const shot = join(dir, "report.png");
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe("PNG");
    } finally {
      await context.close();
    }
    expect(problems).toEqual([]);
    expect(requests).toEqual([pathToFileURL(file).href]);
  });
});
