/**
 * npm run bench:mm [-- --json] [-- --kernel] [-- --tree DIR …] [-- --case KEY …]
 *
 * The kernel layer through the public API, in one run: first-touch, COW, reuse and zero-page
 * faults (ns per fault) by single accesses and by the batched API (writeRange(), touchRange()),
 * MADV_POPULATE_* and MAP_POPULATE (ns per page), fork + exit of a 16-page process (ns per
 * pair) and fork of a process with 1 GiB populated (ms) — each with the oracle
 * off and on (on = shadow memory, copy verdicts and the explaining journal; the batched cases also
 * on without the journal, as the bench runs workloads), beside the real
 * kernel's figures (the development machine's; with --kernel, this machine's, measured by
 * bench/kernel/faults.c in the same run).
 *
 * With --tree DIR the same cases run, in this process, against the cowsim checkout in DIR (its
 * dist/ and build/: build it first) too, interleaved run by run (the order alternating each round, so drift of
 * the host falls on both alike) for --rounds N rounds (default 31): a table of both medians,
 * the median of the rounds' ratios and their middle half — the noise a ratio is judged against.
 * Before and after a change, side by side. With --case (beside --tree), only the cases whose key
 * contains one of the KEYs given (e.g. `--case forkExitSmall`).
 */
import { resolve, basename } from "node:path";
import * as here from "../dist/index.js";
import { argValues, json, runCases, kernelFigures, addLinux, printTable, spec, timedSpecs, compareTrees, treeApi, type Spec } from "./harness.js";

type Api = typeof here;
type Kernel = ReturnType<Api["createKernel"]>;

const PAGE = 4096;
const N = 8192; // pages per fault round (32 MiB)
const FORK_EXITS = 500; // fork + exit pairs per round of the small process
const GiB = 2 ** 30;

function casesOf(api: Api, prefix: string): Spec[] {
  const RW = api.PROT_READ | api.PROT_WRITE;
  const PRIV = api.MAP_PRIVATE | api.MAP_ANONYMOUS;
  const cases: Spec[] = [];
  // oracle off, on (with the explaining journal), and on without the journal (as the bench runs
  // workloads) for the batched cases only
  for (const [oracle, explain] of [[false, false], [true, true], [true, false]] as const) {
    const noJournal = oracle && !explain;
    // THP "madvise", as on the host, and no MADV_HUGEPAGE: 4 KiB pages, as bench/kernel/faults.c
    // maps them (MADV_NOHUGEPAGE) — under "always" the 1 GiB would fork as 512 PMDs
    const k: Kernel = api.createKernel({ strategy: "anon-exclusive", memory: "1280M", oracle, explain, build: "release", thp: { enabled: "madvise" } });
    const p = k.spawn();
    const suffix = noJournal ? "OracleNoJournal" : oracle ? "Oracle" : "";
    const on = noJournal ? ", oracle on, no journal" : oracle ? ", oracle on" : "";
    const label = prefix ? `${prefix}: ` : "";
    const key = (k: string) => (prefix ? `${prefix}:${k}${suffix}` : `${k}${suffix}`);

    const single = (c: Spec) => { if (!noJournal) cases.push(c); };
    single(spec(key("firstTouchNs"), `${label}first-touch write fault${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    single(spec(key("cowFaultNs"), `${label}COW fault${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
        return { a, child: p.fork() };
      },
      ({ a }: { a: number }) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
      ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
    ));
    single(spec(key("reuseFaultNs"), `${label}reuse fault${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
        p.fork().exit();
        return a;
      },
      (a: number) => { for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    single(spec(key("zeroPageFaultNs"), `${label}zero-page read fault${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    // the batched API (Process.writeRange() / touchRange()) beside the loops above, and populate;
    // an older checkout (--tree) without them measures the loop of single accesses there
    const batched = typeof (p as { writeRange?: unknown }).writeRange === "function";
    const writeRange = (a: number, value: number) => {
      if (batched) p.writeRange(a, N, value, 1);
      else for (let i = 0; i < N; i++) p.write(a + i * PAGE, value + i);
    };
    cases.push(spec(key("firstTouchBatchNs"), `${label}first-touch write fault, writeRange()${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => writeRange(a, 1),
      (a: number) => p.munmap(a, N * PAGE),
    ));
    cases.push(spec(key("cowFaultBatchNs"), `${label}COW fault, writeRange()${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        writeRange(a, 1);
        return { a, child: p.fork() };
      },
      ({ a }: { a: number }) => writeRange(a, 2),
      ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
    ));
    cases.push(spec(key("zeroPageBatchNs"), `${label}zero-page read fault, touchRange()${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => {
        if (batched) p.touchRange(a, N);
        else for (let i = 0; i < N; i++) p.read(a + i * PAGE);
      },
      (a: number) => p.munmap(a, N * PAGE),
    ));
    single(spec(key("populateWriteNs"), `${label}MADV_POPULATE_WRITE, per page${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => p.madvise(a, N * PAGE, api.MADV_POPULATE_WRITE),
      (a: number) => p.munmap(a, N * PAGE),
    ));
    single(spec(key("populateWriteCowNs"), `${label}MADV_POPULATE_WRITE after fork (COW), per page${on}`, N,
      () => {
        const a = p.mmap(null, N * PAGE, RW, PRIV);
        writeRange(a, 1);
        return { a, child: p.fork() };
      },
      ({ a }: { a: number }) => p.madvise(a, N * PAGE, api.MADV_POPULATE_WRITE),
      ({ a, child }: { a: number; child: ReturnType<typeof p.fork> }) => { child.exit(); p.munmap(a, N * PAGE); },
    ));
    single(spec(key("populateReadNs"), `${label}MADV_POPULATE_READ, per page${on}`, N,
      () => p.mmap(null, N * PAGE, RW, PRIV),
      (a: number) => p.madvise(a, N * PAGE, api.MADV_POPULATE_READ),
      (a: number) => p.munmap(a, N * PAGE),
    ));
    single(spec(key("mapPopulateNs"), `${label}MAP_POPULATE, per page${on}`, N,
      () => ({ a: 0 }),
      (s: { a: number }) => { s.a = p.mmap(null, N * PAGE, RW, PRIV | api.MAP_POPULATE); },
      (s: { a: number }) => p.munmap(s.a, N * PAGE),
    ));
    // a small process's fork and exit: per-call costs and the page-table scans of exit
    // (a process of its own: the 1 GiB one below would be the case's)
    single(spec(key("forkExitSmallNs"), `${label}fork + exit of a 16-page process${on}`, FORK_EXITS,
      () => { const q = k.spawn(); const a = q.mmap(null, 16 * PAGE, RW, PRIV); for (let i = 0; i < 16; i++) q.write(a + i * PAGE, i + 1); return q; },
      (q: ReturnType<Kernel["spawn"]>) => { for (let i = 0; i < FORK_EXITS; i++) q.fork().exit(); },
      (q: ReturnType<Kernel["spawn"]>) => q.exit(),
    ));
    if (noJournal) continue;
    p.mmap(null, GiB, RW, PRIV | api.MAP_POPULATE);
    let forked: ReturnType<Kernel["spawn"]> | null = null;
    cases.push(spec(key("fork1GiBMs"), `${label}fork of 1 GiB populated${on}`, 0,
      () => null,
      () => { forked = p.fork(); },
      () => { forked!.exit(); },
      "ms",
    ));
  }
  return cases;
}

const trees = argValues("--tree");
if (trees.length > 1) throw new Error("bench:mm compares with one other tree at a time");
const only = argValues("--case");
const picked = (cases: Spec[]) => (only.length ? cases.filter((c) => only.some((o) => c.key.includes(o))) : cases);
const mine = casesOf(here, "");

if (only.length && trees.length === 0) throw new Error("bench:mm --case picks cases of a --tree comparison");
if (trees.length === 1) {
  const mine = picked(casesOf(here, ""));
  const dir = resolve(trees[0]!);
  const label = basename(dir);
  const theirs = picked(casesOf(await treeApi<Api>(dir), label));
  compareTrees(mine, theirs, label, Number(argValues("--rounds")[0] ?? 31));
  process.exit(0);
}

const results = runCases(timedSpecs(mine));

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
  { label: "first-touch write fault, writeRange()", key: "firstTouchBatchNs", unit: "ns" },
  { label: "COW fault, writeRange()", key: "cowFaultBatchNs", unit: "ns" },
  { label: "zero-page read fault, touchRange()", key: "zeroPageBatchNs", unit: "ns" },
  { label: "MADV_POPULATE_WRITE, per page", key: "populateWriteNs", unit: "ns" },
  { label: "MADV_POPULATE_WRITE after fork (COW), per page", key: "populateWriteCowNs", unit: "ns" },
  { label: "MADV_POPULATE_READ, per page", key: "populateReadNs", unit: "ns" },
  { label: "MAP_POPULATE, per page", key: "mapPopulateNs", unit: "ns" },
  { label: "fork + exit of a 16-page process", key: "forkExitSmallNs", unit: "ns" },
] as const;
if (json) {
  console.log(JSON.stringify(results));
} else {
  printTable(results, ROWS);
  console.log("\n| batched, oracle on without the journal (explain: false) | oracle off | no journal | with the journal | no journal ÷ off |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const { label, key } of ROWS.filter((r) => r.key.endsWith("BatchNs"))) {
    const [off, bare, full] = [results[key]!, results[key + "OracleNoJournal"]!, results[key + "Oracle"]!];
    console.log(`| ${label} | ${off.toFixed(0)} ns | ${bare.toFixed(0)} ns | ${full.toFixed(0)} ns | ${(bare / off).toFixed(2)}× |`);
  }
}
