/**
 * npm run bench:mm [-- --json]
 *
 * The kernel layer through the public API, in one run: first-touch, COW, reuse and zero-page
 * faults (ns per fault), and fork of a process with 1 GiB populated (ms) — each with the oracle
 * off and on (on = shadow memory, copy verdicts and the explaining journal), beside the real
 * kernel's figures (the development machine's; with --kernel, this machine's, measured by
 * bench/kernel/faults.c in the same run).
 */
import Benchmark from "benchmark";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE, type Kernel } from "../dist/index.js";

const json = process.argv.includes("--json");
const log = (...a: unknown[]) => { if (!json) console.log(...a); };
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
const N = 8192; // pages per fault round (32 MiB)
const GiB = 2 ** 30;

function kernel(oracle: boolean): Kernel {
  return createKernel({ strategy: "anon-exclusive", memory: "1280M", oracle, build: "release" });
}

/** Times `measured` inside each Benchmark run; setup and teardown around it are not counted. */
function timed(setup: () => unknown, measured: (s: any) => void, teardown: (s: any) => void) {
  const acc = { ns: 0, runs: 0 };
  const fn = () => {
    const s = setup();
    const t0 = process.hrtime.bigint();
    measured(s);
    acc.ns += Number(process.hrtime.bigint() - t0);
    acc.runs++;
    teardown(s);
  };
  return { acc, fn };
}

const results: Record<string, number> = {};
const suite = new Benchmark.Suite();
const cases: [string, string, number, ReturnType<typeof timed>][] = [];

for (const oracle of [false, true]) {
  const k = kernel(oracle);
  const p = k.spawn();
  const suffix = oracle ? "Oracle" : "";

  cases.push([`firstTouchNs${suffix}`, `first-touch write fault${oracle ? ", oracle on" : ""}`, N, timed(
    () => p.mmap(null, N * PAGE, RW, PRIV),
    (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1); },
    (a: number) => p.munmap(a, N * PAGE),
  )]);
  cases.push([`cowFaultNs${suffix}`, `COW fault${oracle ? ", oracle on" : ""}`, N, timed(
    () => {
      const a = p.mmap(null, N * PAGE, RW, PRIV);
      for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
      return { a, child: p.fork() };
    },
    ({ a }: { a: number }) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
    ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
  )]);
  cases.push([`reuseFaultNs${suffix}`, `reuse fault${oracle ? ", oracle on" : ""}`, N, timed(
    () => {
      const a = p.mmap(null, N * PAGE, RW, PRIV);
      for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
      p.fork().exit();
      return a;
    },
    (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
    (a: number) => p.munmap(a, N * PAGE),
  )]);
  cases.push([`zeroPageFaultNs${suffix}`, `zero-page read fault${oracle ? ", oracle on" : ""}`, N, timed(
    () => p.mmap(null, N * PAGE, RW, PRIV),
    (a: number) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
    (a: number) => p.munmap(a, N * PAGE),
  )]);
  const big = p.mmap(null, GiB, RW, PRIV | MAP_POPULATE);
  void big;
  cases.push([`fork1GiBMs${suffix}`, `fork of 1 GiB populated${oracle ? ", oracle on" : ""}`, 0, timed(
    () => null,
    () => { forked = p.fork(); },
    () => { forked!.exit(); },
  )]);
}
let forked: ReturnType<Kernel["spawn"]> | null = null;

for (const [, name, , t] of cases) {
  suite.add(name, t.fn, { minSamples: 5, maxTime: 2 });
}
suite.on("cycle", (e: Benchmark.Event) => {
  const b = e.target as unknown as Benchmark & { error?: Error };
  if (b.error) throw b.error;
  log("  " + String(b));
}).run();

for (const [key, , per, t] of cases) {
  const ns = t.acc.ns / t.acc.runs;
  results[key] = per ? ns / per : ns / 1e6;
}

// the real kernel on the development machine: the figures the targets were set against, and
// reuse as measured there by npm run bench:kernel; --kernel measures this machine's instead
const REFERENCE: Record<string, number> = { firstTouchNs: 2100, cowFaultNs: 2700, reuseFaultNs: 750, zeroPageFaultNs: 900, fork1GiBMs: 25 };
const KERNEL: Record<string, number> = process.argv.includes("--kernel")
  ? JSON.parse(execFileSync(process.execPath, [fileURLToPath(new URL("./kernel/run.mjs", import.meta.url)), "faults"], { encoding: "utf8" }).trim().split("\n").pop()!)
  : REFERENCE;
for (const [k, v] of Object.entries(KERNEL)) results["linux" + k[0]!.toUpperCase() + k.slice(1)] = v;
if (json) {
  console.log(JSON.stringify(results));
} else {
  const f = (x: number, d = 0) => x.toFixed(d);
  console.log("\n| measure | oracle off | oracle on | Linux | off: × faster | on: × faster |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  const row = (label: string, key: string, unit: string, kernelValue?: number, d = 0) => {
    const off = results[key]!, on = results[key + "Oracle"]!;
    const kv = kernelValue ? `${kernelValue} ${unit}` : "—";
    const r = (v: number) => kernelValue ? `${(kernelValue / v).toFixed(1)}×` : "—";
    console.log(`| ${label} | ${f(off, d)} ${unit} | ${f(on, d)} ${unit} | ${kv} | ${r(off)} | ${r(on)} |`);
  };
  row("first-touch write fault", "firstTouchNs", "ns", KERNEL.firstTouchNs);
  row("COW fault", "cowFaultNs", "ns", KERNEL.cowFaultNs);
  row("reuse fault", "reuseFaultNs", "ns", KERNEL.reuseFaultNs);
  row("zero-page read fault", "zeroPageFaultNs", "ns", KERNEL.zeroPageFaultNs);
  row("fork of 1 GiB populated", "fork1GiBMs", "ms", KERNEL.fork1GiBMs, 1);
}
