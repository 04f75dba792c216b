/**
 * npm run bench:thp [-- --json] [-- --kernel]
 *
 * PMD-mapped THPs through the public API, in one run: fork of a process with 1 GiB of THPs
 * (copy_huge_pmd(), ms), the first write to a 2 MiB THP (do_huge_pmd_anonymous_page(), µs per
 * THP), the first write to a THP fork shared (do_huge_pmd_wp_page(): split + copy of the
 * subpage, µs per THP), MADV_COLLAPSE of 2 MiB (madvise_collapse(), µs), and migratePages() of a
 * 4 KiB page (ns) and of a THP (µs per THP; "not modelled yet" while migration refuses large
 * folios) — each with the oracle off and on, beside the real kernel's figures (the development
 * machine's; with --kernel, this machine's, measured by bench/kernel/thp.c in the same run).
 *
 * Every case checks the counter that proves it took the THP path (thp_fault_alloc,
 * thp_split_pmd, thp_collapse_alloc, a PMD mapping after fork and after migration) outside the
 * timed part, and throws when it did not: a figure of the base-page fallback would be no figure.
 */
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE,
  type Kernel, type Process,
} from "../dist/index.js";
import { json, timed, runCases, kernelFigures, addLinux, printTable, type Case, type Row } from "./harness.js";

const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
const HPAGE = 2 * 2 ** 20;
const THPS = 64; // THPs per round (128 MiB), as bench/kernel/thp.c
const PAGES = 8192; // base pages per migration round (32 MiB)
const GiB = 2 ** 30;

type Counter = keyof ReturnType<Kernel["counters"]>;

/** A 2 MiB-aligned range of `len` bytes with `advice`: mmap() does not align anonymous mappings. */
function aligned(p: Process, len: number, advice: number): { raw: number; a: number } {
  const raw = p.mmap(null, len + HPAGE, RW, PRIV);
  const a = Math.ceil(raw / HPAGE) * HPAGE;
  p.madvise(a, len, advice);
  return { raw, a };
}
const release = (p: Process, r: { raw: number }, len: number) => p.munmap(r.raw, len + HPAGE);

/** Throws unless counter `c` grew by at least `n` since `before`: the case measured what it says. */
function expectGrown(k: Kernel, c: Counter, before: number, n: number, what: string): void {
  const got = (k.counters()[c] ?? 0) - before;
  if (got < n) throw new Error(`bench:thp: ${what}: ${c} grew by ${got}, not ${n}`);
}

function touchThps(p: Process, a: number, n: number, v: number): void {
  for (let i = 0; i < n; i++) p.write(a + i * HPAGE, v);
}

/** Whether migratePages() moves a PMD-mapped THP in this build (status 0, still PMD-mapped). */
function migratesThp(): boolean {
  const k = createKernel({ strategy: "anon-exclusive", memory: "64M", build: "release" });
  const p = k.spawn();
  const r = aligned(p, HPAGE, MADV_HUGEPAGE);
  p.write(r.a, 1);
  if (!p.pmdMapped(r.a)) throw new Error("bench:thp: no THP to try migration on");
  return p.migratePages(r.a, HPAGE).status.every((s) => s === 0) && p.pmdMapped(r.a);
}
const thpMigration = migratesThp();

const cases: Case[] = [];
for (const oracle of [false, true]) {
  const k = createKernel({ strategy: "anon-exclusive", memory: "1600M", oracle, build: "release" });
  const p = k.spawn();
  const suffix = oracle ? "Oracle" : "";
  const on = oracle ? ", oracle on" : "";
  const count = (c: Counter) => k.counters()[c] ?? 0;
  const len = THPS * HPAGE;

  cases.push(timed(`thpFirstTouchUs${suffix}`, `first touch of a THP${on}`, THPS,
    () => ({ ...aligned(p, len, MADV_HUGEPAGE), before: count("thp_fault_alloc") }),
    ({ a }) => touchThps(p, a, THPS, 1),
    (s) => { expectGrown(k, "thp_fault_alloc", s.before, THPS, "first touch"); release(p, s, len); },
    "us",
  ));
  cases.push(timed(`thpSharedWriteUs${suffix}`, `first write to a shared THP${on}`, THPS,
    () => {
      const r = aligned(p, len, MADV_HUGEPAGE);
      touchThps(p, r.a, THPS, 1);
      return { ...r, child: p.fork(), before: count("thp_split_pmd") };
    },
    ({ a }) => touchThps(p, a, THPS, 2),
    (s) => { expectGrown(k, "thp_split_pmd", s.before, THPS, "shared write"); s.child.exit(); release(p, s, len); },
    "us",
  ));
  cases.push(timed(`collapseUsPer2MiB${suffix}`, `MADV_COLLAPSE of 2 MiB${on}`, THPS,
    () => {
      const r = aligned(p, len, MADV_NOHUGEPAGE);
      for (let i = 0; i < len / PAGE; i++) p.write(r.a + i * PAGE, i + 1);
      p.madvise(r.a, len, MADV_HUGEPAGE);
      return { ...r, before: count("thp_collapse_alloc") };
    },
    ({ a }) => p.madvise(a, len, MADV_COLLAPSE),
    (s) => { expectGrown(k, "thp_collapse_alloc", s.before, THPS, "MADV_COLLAPSE"); release(p, s, len); },
    "us",
  ));
  cases.push(timed(`migratePageNs${suffix}`, `migratePages() of a 4 KiB page${on}`, PAGES,
    () => {
      const r = aligned(p, PAGES * PAGE, MADV_NOHUGEPAGE);
      for (let i = 0; i < PAGES; i++) p.write(r.a + i * PAGE, i + 1);
      return { ...r, before: count("pgmigrateSuccess") };
    },
    ({ a }) => p.migratePages(a, PAGES * PAGE),
    (s) => { expectGrown(k, "pgmigrateSuccess", s.before, PAGES, "migration of base pages"); release(p, s, PAGES * PAGE); },
  ));
  if (thpMigration) {
    cases.push(timed(`migrateThpUs${suffix}`, `migratePages() of a THP${on}`, THPS,
      () => { const r = aligned(p, len, MADV_HUGEPAGE); touchThps(p, r.a, THPS, 1); return r; },
      ({ a }) => p.migratePages(a, len),
      (s) => {
        if (!p.pmdMapped(s.a)) throw new Error("bench:thp: a migrated THP is no longer PMD-mapped");
        release(p, s, len);
      },
      "us",
    ));
  }
  // last: the 1 GiB stays for the rest of the run
  const g = aligned(p, GiB, MADV_HUGEPAGE);
  touchThps(p, g.a, GiB / HPAGE, 1);
  if (!p.pmdMapped(g.a) || p.smaps().reduce((n, s) => n + s.anonHugePages, 0) < GiB) throw new Error("bench:thp: 1 GiB is not all THPs");
  let forked: Process | null = null;
  cases.push(timed(`forkThp1GiBMs${suffix}`, `fork of 1 GiB of THPs${on}`, 0,
    () => null,
    () => { forked = p.fork(); },
    () => {
      if (!forked!.pmdMapped(g.a)) throw new Error("bench:thp: fork did not share the THPs by PMD");
      forked!.exit();
    },
    "ms",
  ));
}

const results = runCases(cases);

// the development machine's kernel (6.18, THP "madvise", one NUMA node), measured by
// npm run bench:kernel -- thp; it cannot migrate on one node, so migration has no figure
const REFERENCE: Record<string, number> = { forkThp1GiBMs: 0.48, thpFirstTouchUs: 177, thpSharedWriteUs: 11.4, collapseUsPer2MiB: 480 };
const KERNEL = kernelFigures("thp", REFERENCE).figures;
addLinux(results, KERNEL);
const ROWS: Row[] = [
  { label: "fork of 1 GiB of THPs", key: "forkThp1GiBMs", unit: "ms", linux: KERNEL.forkThp1GiBMs, digits: 3 },
  { label: "first touch of a 2 MiB THP", key: "thpFirstTouchUs", unit: "µs", linux: KERNEL.thpFirstTouchUs, digits: 1 },
  { label: "first write to a shared THP (split + copy)", key: "thpSharedWriteUs", unit: "µs", linux: KERNEL.thpSharedWriteUs, digits: 1 },
  { label: "MADV_COLLAPSE of 2 MiB", key: "collapseUsPer2MiB", unit: "µs", linux: KERNEL.collapseUsPer2MiB, digits: 1 },
  { label: "migration of a 4 KiB page", key: "migratePageNs", unit: "ns", linux: KERNEL.migratePageNs },
];
if (thpMigration) ROWS.push({ label: "migration of a THP", key: "migrateThpUs", unit: "µs", linux: KERNEL.migrateThpUs, digits: 1 });
if (json) {
  console.log(JSON.stringify(results));
} else {
  printTable(results, ROWS);
  if (!thpMigration) console.log("| migration of a THP | not modelled yet | not modelled yet | — | — | — |");
}
