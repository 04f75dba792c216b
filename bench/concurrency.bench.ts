/**
 * npm run bench:concurrency [-- --json] [-- --runs N] [-- --no-rates]
 *
 * Real threads over one machine, in one run:
 * - pins per second: GUP-fast worker threads pinning and unpinning (FOLL_PIN | FOLL_LONGTERM,
 *   16 pages a call, 8 pins held each) disjoint slices of one process while the main thread
 *   waits — with 1 and with 2 workers, and as a control 2 machines with a worker each (which
 *   share nothing of cowsim's), alternated, median of 3 windows each — and the ratios to 1;
 * - how often the stress loops find a protocol broken on purpose: N runs (default 20) per
 *   broken step, each bounded by 20 000 rounds and 20 s, with the rounds and time to the find;
 * - then bench/explore.bench.ts, where it exists (the same script measures both).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "../dist/index.js";
import { createGupWorkers, runGupFastStress } from "../dist/node.js";
import { json, log, argValues } from "./harness.js";

const PAGE = 4096;
const PAGES = 4096; // 16 MiB, split between the workers
const WINDOW_MS = 1500;

function machine(workers: number) {
  const k = createKernel({ strategy: "anon-exclusive", memory: "64M", build: "release" });
  const p = k.spawn();
  const a = p.mmap(null, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let i = 0; i < PAGES; i++) p.write(a + i * PAGE, i + 1);
  const pool = createGupWorkers(k, { n: workers, seed: 1, audit: false, log: json ? null : (l) => log(`  ${l}`) });
  pool.startPinners({ pid: p.pid, addr: a, pages: PAGES, batch: 16, hold: 8, split: true });
  return pool;
}

/** Pages pinned (and unpinned) per second by `workers` workers on each of `machines` machines. */
async function pinsPerSecond(workers: number, machines = 1): Promise<number> {
  const pools = Array.from({ length: machines }, () => machine(workers));
  pools.forEach((pool) => pool.resume());
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  pools.forEach((pool) => pool.pause());
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const pages = pools.reduce((n, pool) => n + pool.summary().pages, 0);
  for (const pool of pools) await pool.close();
  return pages / s;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

const one: number[] = [];
const two: number[] = [];
const apart: number[] = [];
for (let i = 0; i < 3; i++) {
  one.push(await pinsPerSecond(1));
  two.push(await pinsPerSecond(2));
  apart.push(await pinsPerSecond(1, 2));
}
const results: Record<string, number> = {
  pinsPerSecond1: median(one),
  pinsPerSecond2: median(two),
  pinsPerSecondApart: median(apart),
  scaling2: median(two) / median(one),
  scalingApart: median(apart) / median(one),
};
// the control: two machines with a worker each share nothing of cowsim's; what they do not
// gain over one worker is the machine's (cores busy with other jobs), not cowsim's sharing
const M = (v: number) => `${(v / 1e6).toFixed(2)} M`;
log("\n| measure | 1 worker | 2 workers | 2 / 1 | control: 2 machines × 1 worker | control / 1 |");
log("| --- | --- | --- | --- | --- | --- |");
log(`| GUP-fast pins + unpins per second | ${M(results.pinsPerSecond1!)} | ${M(results.pinsPerSecond2!)} | ${results.scaling2!.toFixed(2)}× | ${M(results.pinsPerSecondApart!)} | ${results.scalingApart!.toFixed(2)}× |`);

if (!process.argv.includes("--no-rates")) {
  const runs = Number(argValues("--runs")[0] ?? 20);
  const cases = [
    { knob: "unmapClearsPte", op: "swap" },
    { knob: "gupFastPteRecheck", op: "swap" },
    { knob: "gupFastWriteProtectSeq", op: "fork" },
  ] as const;
  log(`\n| protocol broken | main thread | found | median rounds (ms) to the find | most rounds (ms) |`);
  log("| --- | --- | --- | --- | --- |");
  for (const { knob, op } of cases) {
    const found: { rounds: number; ms: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runGupFastStress({ knobs: { [knob]: false }, op, seed: i + 1, maxRounds: 20_000, maxMs: 20_000, log: null });
      if (r.found !== null) found.push({ rounds: r.found + 1, ms: r.ms });
    }
    const rs = found.map((f) => f.rounds), ms = found.map((f) => f.ms);
    results[`${knob}Found`] = found.length / runs;
    results[`${knob}MedianRounds`] = found.length ? median(rs) : NaN;
    log(`| \`${knob}: false\` | ${op} loop | ${found.length} / ${runs} | ${found.length ? `${median(rs)} (${median(ms)})` : "—"} | ${found.length ? `${Math.max(...rs)} (${Math.max(...ms)})` : "—"} |`);
  }
}
if (json) console.log(JSON.stringify(results));

// npm run bench:concurrency also runs the weak-memory explorer's bench, where it exists
const explore = new URL("./explore.bench.ts", import.meta.url);
if (existsSync(fileURLToPath(explore))) await import(explore.href);
