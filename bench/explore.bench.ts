/**
 * npm run bench:concurrency [-- --json]
 *
 * The weak-memory explorer on seed 001's protocol: the six variants (writable / read-only PTE ×
 * no barriers / the smp_mb() pair / the full fix) under SC, x86-TSO and the LKMM — execution
 * graphs examined per second and the total time of the 18 explorations — and, side by side in
 * the same run, the unreduced search (every interleaving of the SC and x86-TSO machines) on the
 * same programs: machine states visited, time, and the ratio of the two.
 *
 * Each exploration checks its verdict against the description's expected one and throws when
 * it differs, so a fast wrong answer cannot pass for a speed-up.
 */
import { readFileSync } from "node:fs";
import { explore, interleavings, parseLitmus, SEED001_VARIANTS, type ModelName, type Program } from "../dist/index.js";

const json = process.argv.includes("--json");
const log = (...a: unknown[]): void => { if (!json) console.log(...a); };
const ROUNDS = 20;
const MODELS: readonly ModelName[] = ["sc", "tso", "relaxed"];

const variants = SEED001_VARIANTS.slice(0, 6).map((v) => ({
  v,
  p: parseLitmus(readFileSync(new URL(`../litmus/seed001/${v.name}.litmus`, import.meta.url), "utf8"), v.name) as Program,
}));

interface Row { variant: string; model: string; candidates: number; ms: number; perSecond: number; verdict: string }
const rows: Row[] = [];
let total = 0;
for (const { v, p } of variants) {
  for (const m of MODELS) {
    explore(p, { models: [m], witness: false }); // warm
    let ms = Infinity, candidates = 0, verdict = "";
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const r = explore(p, { models: [m] });
      const dt = performance.now() - t0;
      ms = Math.min(ms, dt);
      candidates = r.candidates;
      verdict = r.models[0]!.observation;
    }
    if (verdict !== v.expected[m]) throw new Error(`bench:concurrency: ${v.name} under ${m}: ${verdict}, expected ${v.expected[m]}`);
    total += ms;
    rows.push({ variant: v.name, model: m, candidates, ms, perSecond: candidates / (ms / 1000), verdict });
  }
}

// the same 6 programs in one exploration for all three models at once (the CLI's default)
let allModels = Infinity;
for (let i = 0; i < ROUNDS; i++) {
  const t0 = performance.now();
  for (const { p } of variants) explore(p);
  allModels = Math.min(allModels, performance.now() - t0);
}

// side by side: every interleaving of the operational machines
interface Op { model: string; states: number; ms: number; graphs: number; graphMs: number }
const ops: Op[] = [];
for (const m of ["sc", "tso"] as const) {
  let states = 0, graphs = 0, ms = Infinity, graphMs = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    states = 0; graphs = 0;
    const t0 = performance.now();
    for (const { p } of variants) states += interleavings(p, m).visited;
    ms = Math.min(ms, performance.now() - t0);
    const t1 = performance.now();
    for (const { p } of variants) graphs += explore(p, { models: [m], witness: false }).candidates;
    graphMs = Math.min(graphMs, performance.now() - t1);
  }
  ops.push({ model: m, states, ms, graphs, graphMs });
}

if (json) {
  console.log(JSON.stringify({ explorations: rows, totalMs: total, allModelsMs: allModels, unreduced: ops }, null, 2));
} else {
  log("| variant | model | verdict | candidate executions | ms | executions/s |");
  log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) log(`| ${r.variant} | ${r.model} | ${r.verdict} | ${r.candidates} | ${r.ms.toFixed(2)} | ${Math.round(r.perSecond)} |`);
  log(`\n6 variants × 3 models, one model per exploration: ${total.toFixed(1)} ms in total (best of ${ROUNDS})`);
  log(`6 variants, all three models in one exploration each: ${allModels.toFixed(1)} ms`);
  log("\n| model | interleaving search: machine states | ms | axiomatic search: candidate executions | ms | states / executions | time ratio |");
  log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const o of ops) log(`| ${o.model} | ${o.states} | ${o.ms.toFixed(1)} | ${o.graphs} | ${o.graphMs.toFixed(1)} | ${(o.states / o.graphs).toFixed(0)}× | ${(o.ms / o.graphMs).toFixed(1)}× |`);
}
