// Random operations on THP-backed memory: faults that map PMDs, forks that share them, writes
// that split them, partial munmap / MADV_DONTNEED / mprotect / mremap, pins and unpins,
// MADV_COLLAPSE and khugepaged passes. After
// every step every invariant holds (the kernel checks them itself), including the map counts of
// PMD-mapped and split large folios; under anon-exclusive nobody ever reads what they must not
// and no copy leaves a pin behind; the oracle and the reference judge agree on every copy; and
// once every process exits every frame is free again.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  MADV_HUGEPAGE, MADV_DONTNEED, MADV_COLLAPSE, MAP_FIXED, PROT_READ, PROT_WRITE, FOLL_PIN, FOLL_LONGTERM, FOLL_WRITE, MREMAP_MAYMOVE,
  MREMAP_FIXED, CowsimError, ReferenceJudge, type Kernel, type Process, type StrategyId, type UserPages,
} from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 60 : 40));
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const HP = 2 << 20;
const BASE = 0x7f0000000000;
const PAGES = 2 * 512; // two THPs' worth

type Op =
  | { op: "write" | "read"; who: number; page: number; value: number }
  | { op: "fork" | "exit"; who: number }
  | { op: "munmap" | "dontneed" | "mprotect"; who: number; page: number; pages: number; ro: boolean }
  | { op: "mremap"; who: number; page: number; pages: number }
  | { op: "pin"; who: number; page: number; pages: number; write: boolean }
  | { op: "unpin"; which: number }
  | { op: "collapse"; who: number; page: number }
  | { op: "khugepaged" };

const who = fc.integer({ min: 0, max: 3 });
const page = fc.integer({ min: 0, max: PAGES - 1 });
const pages = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 600 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("write" as const), who, page, value: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("read" as const), who, page, value: fc.constant(0) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("fork" as const, "exit" as const), who }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("munmap" as const, "dontneed" as const, "mprotect" as const), who, page, pages, ro: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mremap" as const), who, page, pages }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pin" as const), who, page, pages: fc.integer({ min: 1, max: 8 }), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unpin" as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("collapse" as const), who, page }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("khugepaged" as const) }) },
);

/** Runs `ops` on a fresh kernel; returns the kernel's counters at the end. */
function run(strategy: StrategyId, ops: Op[]): Record<string, number> {
  const k: Kernel = kernel(strategy, { memory: "32M", maxProcesses: 8 });
  const judge = new ReferenceJudge(k);
  const first = k.spawn();
  first.mmap(BASE, PAGES * PAGE, RW, PRIV | MAP_FIXED);
  first.madvise(BASE, PAGES * PAGE, MADV_HUGEPAGE);
  const procs: Process[] = [first];
  const pins: UserPages[] = [];
  const pick = (i: number) => procs[i % procs.length]!;
  for (const o of ops) {
    try {
      switch (o.op) {
        case "write": pick(o.who).write(BASE + o.page * PAGE, o.value); break;
        case "read": pick(o.who).read(BASE + o.page * PAGE); break;
        case "fork": if (procs.length < 6) procs.push(pick(o.who).fork()); break;
        case "exit": {
          if (procs.length < 2) break;
          const p = pick(o.who);
          for (let i = pins.length - 1; i >= 0; i--) if (pins[i]!.pin.pid === p.pid) pins.splice(i, 1);
          p.exit();
          procs.splice(procs.indexOf(p), 1);
          break;
        }
        case "munmap": pick(o.who).munmap(BASE + o.page * PAGE, o.pages * PAGE); break;
        case "dontneed": pick(o.who).madvise(BASE + o.page * PAGE, Math.min(o.pages, PAGES - o.page) * PAGE, MADV_DONTNEED); break;
        case "mprotect": pick(o.who).mprotect(BASE + o.page * PAGE, Math.min(o.pages, PAGES - o.page) * PAGE, o.ro ? PROT_READ : PROT_READ | PROT_WRITE); break;
        case "mremap": {
          // move part of the range away and back, so the name keeps meaning the same range
          const n = Math.min(o.pages, PAGES - o.page);
          const p = pick(o.who);
          const away = BASE + 8 * HP + (o.page % 3) * PAGE;
          p.mremap(BASE + o.page * PAGE, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, away);
          p.mremap(away, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + o.page * PAGE);
          break;
        }
        case "pin": {
          const n = Math.min(o.pages, PAGES - o.page);
          pins.push(pick(o.who).pinUserPages(BASE + o.page * PAGE, n, FOLL_PIN | FOLL_LONGTERM | (o.write ? FOLL_WRITE : 0)));
          break;
        }
        case "unpin": if (pins.length) pins.splice(o.which % pins.length, 1)[0]!.release(); break;
        case "collapse": pick(o.who).madvise(BASE + Math.floor(o.page / 512) * HP, HP, MADV_COLLAPSE); break;
        case "khugepaged": k.khugepaged(); break;
      }
    } catch (e) {
      // a hole (EFAULT, ENOMEM for mprotect of a gap), a read-only page written (SIGSEGV): the
      // error contract leaves the state as it was, and the invariants are checked anyway
      if (!(e instanceof CowsimError)) throw e;
    }
  }
  const counters = k.counters();
  // the oracle and the reference judge (which reads the page tables) agree on every copy
  expect([counters.necessaryCow, counters.unnecessaryCow, counters.wrongCow]).toEqual([judge.necessary, judge.unnecessary, judge.wrong]);
  if (strategy === "anon-exclusive") {
    expect(k.findings.filter((f) => f.kind !== "unnecessary-cow").map((f) => f.summary)).toEqual([]);
    expect(k.latentMissedCows()).toEqual([]);
  }
  for (const pin of pins) pin.release();
  for (const p of procs) p.exit();
  expect(k.checkInvariants()).toEqual([]);
  // every frame but the zero pages is free again
  expect(k.core.freePages()).toBe(k.core.layout.nframes - 1 - (k.hugeZeroFolio ? 512 : 0));
  return counters;
}

describe("random operations on PMD-mapped THPs", () => {
  for (const s of STRATEGIES) {
    it(`${s}: every invariant after every step, every frame back at the end`, () => {
      const seen: Record<string, number> = {};
      fc.assert(fc.property(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => {
        for (const [name, n] of Object.entries(run(s, ops))) if (name.startsWith("thp")) seen[name] = (seen[name] ?? 0) + n;
      }), { numRuns: RUNS, seed: SEED });
      // the sequences reach the THP paths: faults, splits and the huge zero page
      for (const c of ["thp_fault_alloc", "thp_split_pmd"]) expect(seen[c], c).toBeGreaterThan(RUNS / 2);
      expect(seen.thp_collapse_alloc).toBeGreaterThan(0);
      expect(seen.thp_zero_page_alloc).toBeGreaterThan(RUNS / 4); // once per machine at most
    });
  }
});
