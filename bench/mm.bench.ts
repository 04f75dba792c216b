/**
 * npm run bench:mm [-- --json]
 *
 * The kernel layer through the public API, in one run: first-touch, COW, reuse and zero-page
 * faults (ns per fault), and fork of a process with 1 GiB populated (ms) — each with the oracle
 * off and on (on = shadow memory, copy verdicts and the explaining journal), beside the real
 * kernel's figures (the development machine's; with --kernel, this machine's, measured by
 * bench/kernel/faults.c in the same run).
 */
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_POPULATE, type Kernel } from "../dist/index.js";
import { json, timed, runCases, kernelFigures, addLinux, printTable, type Case } from "./harness.js";

const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
const N = 8192; // pages per fault round (32 MiB)
const GiB = 2 ** 30;

function kernel(oracle: boolean): Kernel {
  return createKernel({ strategy: "anon-exclusive", memory: "1280M", oracle, build: "release" });
}

const cases: Case[] = [];

for (const oracle of [false, true]) {
  const k = kernel(oracle);
  const p = k.spawn();
  const suffix = oracle ? "Oracle" : "";

  cases.push(timed(`firstTouchNs${suffix}`, `first-touch write fault${oracle ? ", oracle on" : ""}`, N,
    () => p.mmap(null, N * PAGE, RW, PRIV),
    (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1); },
    (a: number) => p.munmap(a, N * PAGE),
  ));
  cases.push(timed(`cowFaultNs${suffix}`, `COW fault${oracle ? ", oracle on" : ""}`, N,
    () => {
      const a = p.mmap(null, N * PAGE, RW, PRIV);
      for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
      return { a, child: p.fork() };
    },
    ({ a }: { a: number }) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
    ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
  ));
  cases.push(timed(`reuseFaultNs${suffix}`, `reuse fault${oracle ? ", oracle on" : ""}`, N,
    () => {
      const a = p.mmap(null, N * PAGE, RW, PRIV);
      for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
      p.fork().exit();
      return a;
    },
    (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
    (a: number) => p.munmap(a, N * PAGE),
  ));
  cases.push(timed(`zeroPageFaultNs${suffix}`, `zero-page read fault${oracle ? ", oracle on" : ""}`, N,
    () => p.mmap(null, N * PAGE, RW, PRIV),
    (a: number) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
    (a: number) => p.munmap(a, N * PAGE),
  ));
  const big = p.mmap(null, GiB, RW, PRIV | MAP_POPULATE);
  void big;
  cases.push(timed(`fork1GiBMs${suffix}`, `fork of 1 GiB populated${oracle ? ", oracle on" : ""}`, 0,
    () => null,
    () => { forked = p.fork(); },
    () => { forked!.exit(); },
    "ms",
  ));
}
let forked: ReturnType<Kernel["spawn"]> | null = null;

const results = runCases(cases);

// the real kernel on the development machine: the figures the targets were set against, and
// reuse as measured there by npm run bench:kernel; --kernel measures this machine's instead
const REFERENCE: Record<string, number> = { firstTouchNs: 2100, cowFaultNs: 2700, reuseFaultNs: 750, zeroPageFaultNs: 900, fork1GiBMs: 25 };
const KERNEL = kernelFigures("faults", REFERENCE).figures;
addLinux(results, KERNEL);
if (json) {
  console.log(JSON.stringify(results));
} else {
  printTable(results, [
    { label: "first-touch write fault", key: "firstTouchNs", unit: "ns", linux: KERNEL.firstTouchNs },
    { label: "COW fault", key: "cowFaultNs", unit: "ns", linux: KERNEL.cowFaultNs },
    { label: "reuse fault", key: "reuseFaultNs", unit: "ns", linux: KERNEL.reuseFaultNs },
    { label: "zero-page read fault", key: "zeroPageFaultNs", unit: "ns", linux: KERNEL.zeroPageFaultNs },
    { label: "fork of 1 GiB populated", key: "fork1GiBMs", unit: "ms", linux: KERNEL.fork1GiBMs, digits: 1 },
  ]);
}
