/**
 * npm run bench:mm [-- --json] [-- --kernel] [-- --tree DIR …]
 *
 * The kernel layer through the public API, in one run: first-touch, COW, reuse and zero-page
 * faults (ns per fault), and fork of a process with 1 GiB populated (ms) — each with the oracle
 * off and on (on = shadow memory, copy verdicts and the explaining journal), beside the real
 * kernel's figures (the development machine's; with --kernel, this machine's, measured by
 * bench/kernel/faults.c in the same run).
 *
 * With --tree DIR (repeatable) the same cases also run, in this process, against the cowsim
 * checkout in DIR (its src/ and build/), and a second table shows each beside this checkout:
 * before and after a change, measured side by side.
 */
import { pathToFileURL } from "node:url";
import { resolve, basename } from "node:path";
import * as here from "../src/index.js";
import { argValues, json, timed, runCases, kernelFigures, addLinux, printTable, type Case } from "./harness.js";

type Api = typeof here;
type Kernel = ReturnType<Api["createKernel"]>;

const PAGE = 4096;
const N = 8192; // pages per fault round (32 MiB)
const GiB = 2 ** 30;

function casesOf(api: Api, prefix: string): Case[] {
  const RW = api.PROT_READ | api.PROT_WRITE;
  const PRIV = api.MAP_PRIVATE | api.MAP_ANONYMOUS;
  const cases: Case[] = [];
  for (const oracle of [false, true]) {
    const k: Kernel = api.createKernel({ strategy: "anon-exclusive", memory: "1280M", oracle, build: "release" });
    const p = k.spawn();
    const suffix = oracle ? "Oracle" : "";
    const on = oracle ? ", oracle on" : "";
    const label = prefix ? `${prefix}: ` : "";
    const key = (k: string) => (prefix ? `${prefix}:${k}${suffix}` : `${k}${suffix}`);

    cases.push(timed(key("firstTouchNs"), `${label}first-touch write fault${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    cases.push(timed(key("cowFaultNs"), `${label}COW fault${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
        return { a, child: p.fork() };
      },
      ({ a }: { a: number }) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
      ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
    ));
    cases.push(timed(key("reuseFaultNs"), `${label}reuse fault${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
        p.fork().exit();
        return a;
      },
      (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    cases.push(timed(key("zeroPageFaultNs"), `${label}zero-page read fault${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    p.mmap(null, GiB, RW, PRIV | api.MAP_POPULATE);
    let forked: ReturnType<Kernel["spawn"]> | null = null;
    cases.push(timed(key("fork1GiBMs"), `${label}fork of 1 GiB populated${on}`, 0,
      () => null,
      () => { forked = p.fork(); },
      () => { forked!.exit(); },
      "ms",
    ));
  }
  return cases;
}

const others: { label: string; api: Api }[] = [];
for (const dir of argValues("--tree")) {
  others.push({ label: basename(resolve(dir)), api: await import(pathToFileURL(resolve(dir, "src/index.ts")).href) as Api });
}
// interleaved, case by case: this checkout's, then each other tree's, so drift hits all alike
const mine = casesOf(here, "");
const theirs = others.map((t) => casesOf(t.api, t.label));
const cases = mine.flatMap((c, i) => [c, ...theirs.map((t) => t[i]!)]);
const results = runCases(cases);

// the real kernel on the development machine: the figures the targets were set against, and
// reuse as measured there by npm run bench:kernel; --kernel measures this machine's instead
const REFERENCE: Record<string, number> = { firstTouchNs: 2100, cowFaultNs: 2700, reuseFaultNs: 750, zeroPageFaultNs: 900, fork1GiBMs: 25 };
const KERNEL = kernelFigures("faults", REFERENCE).figures;
addLinux(results, KERNEL);
const ROWS = [
  { label: "first-touch write fault", key: "firstTouchNs", unit: "ns", linux: KERNEL.firstTouchNs },
  { label: "COW fault", key: "cowFaultNs", unit: "ns", linux: KERNEL.cowFaultNs },
  { label: "reuse fault", key: "reuseFaultNs", unit: "ns", linux: KERNEL.reuseFaultNs },
  { label: "zero-page read fault", key: "zeroPageFaultNs", unit: "ns", linux: KERNEL.zeroPageFaultNs },
  { label: "fork of 1 GiB populated", key: "fork1GiBMs", unit: "ms", linux: KERNEL.fork1GiBMs, digits: 1 },
] as const;
if (json) {
  console.log(JSON.stringify(results));
} else {
  printTable(results, ROWS);
  for (const { label } of others) {
    console.log(`\n| measure | this checkout | ${label} | ${label} ÷ this |`);
    console.log("| --- | --- | --- | --- |");
    for (const row of ROWS) {
      for (const suffix of ["", "Oracle"]) {
        const a = results[row.key + suffix]!, b = results[`${label}:${row.key}${suffix}`]!;
        const d = "digits" in row ? row.digits : 0;
        console.log(`| ${row.label}${suffix ? ", oracle on" : ""} | ${a.toFixed(d)} ${row.unit} | ${b.toFixed(d)} ${row.unit} | ${(b / a).toFixed(2)}× |`);
      }
    }
  }
}
