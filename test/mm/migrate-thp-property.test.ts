// Migration of large folios is invisible: over random writes, reads, forks, exits, mprotect,
// MADV_DONTNEED, pins and migrations (whole or in two phases, with accesses in between) of
// PMD-mapped THPs, split THPs and mTHPs under every strategy, every process reads what a plain
// model says it wrote, a frame a FOLL_PIN pin holds where its owner maps it never moves, every
// invariant holds after every step (the kernel checks them itself), and nothing leaks.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  MADV_HUGEPAGE, MADV_DONTNEED, MAP_FIXED, PROT_READ, PROT_WRITE, FOLL_PIN, FOLL_LONGTERM, FOLL_WRITE,
  CowsimError, type Kernel, type Process, type StrategyId, type UserPages, type ThpOptions,
} from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 25);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const BASE = 0x7f0000000000;
const PAGES = 2 * 512;

type Op =
  | { op: "write" | "read"; who: number; page: number; value: number }
  | { op: "fork" | "exit"; who: number }
  | { op: "dontneed" | "mprotect"; who: number; page: number; pages: number; ro: boolean }
  | { op: "pin"; who: number; page: number; write: boolean }
  | { op: "unpin"; which: number }
  | { op: "migrate"; who: number; page: number; pages: number; twoPhase: boolean; touch: number };

const who = fc.integer({ min: 0, max: 3 });
const page = fc.integer({ min: 0, max: PAGES - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("write" as const), who, page, value: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("read" as const), who, page, value: fc.constant(0) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("fork" as const, "exit" as const), who }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("dontneed" as const, "mprotect" as const), who, page, pages: fc.integer({ min: 1, max: 600 }), ro: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pin" as const), who, page, write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unpin" as const), which: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("migrate" as const), who, page, pages: fc.integer({ min: 1, max: 600 }), twoPhase: fc.boolean(), touch: page }) },
);

/** The frames FOLL_PIN pins hold where their owners map them. */
function pinnedMapped(k: Kernel, pins: readonly UserPages[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const up of pins) {
    const owner = k.processes.get(up.pin.pid);
    up.pin.pfns.forEach((pfn, i) => {
      const addr = up.pin.addresses[i]!;
      if (owner?.pfnAt(addr) === pfn) out.set(`${up.pin.pid}@${addr}`, pfn);
    });
  }
  return out;
}

function run(strategy: StrategyId, thp: ThpOptions | undefined, migration: number, ops: Op[]): Record<string, number> {
  const k: Kernel = kernel(strategy, { memory: "32M", maxProcesses: 8, transient: { migration }, ...(thp ? { thp } : {}) });
  const first = k.spawn();
  first.mmap(BASE, PAGES * PAGE, RW, PRIV | MAP_FIXED);
  first.madvise(BASE, PAGES * PAGE, MADV_HUGEPAGE);
  const procs: Process[] = [first];
  const model = new Map<Process, Map<number, number>>([[first, new Map()]]);
  const pins: UserPages[] = [];
  const pick = (i: number) => procs[i % procs.length]!;
  const expectModel = (p: Process, pg: number) => expect(p.read(BASE + pg * PAGE), `pid ${p.pid} page ${pg}`).toBe(model.get(p)!.get(pg) ?? 0);
  for (const o of ops) {
    try {
      switch (o.op) {
        case "write": {
          const p = pick(o.who);
          p.write(BASE + o.page * PAGE, o.value);
          model.get(p)!.set(o.page, o.value);
          break;
        }
        case "read": expectModel(pick(o.who), o.page); break;
        case "fork": {
          if (procs.length >= 6) break;
          const p = pick(o.who);
          const c = p.fork();
          procs.push(c);
          model.set(c, new Map(model.get(p)!));
          break;
        }
        case "exit": {
          if (procs.length < 2) break;
          const p = pick(o.who);
          for (let i = pins.length - 1; i >= 0; i--) if (pins[i]!.pin.pid === p.pid) pins.splice(i, 1)[0]!.release();
          p.exit();
          procs.splice(procs.indexOf(p), 1);
          model.delete(p);
          break;
        }
        case "dontneed": {
          const p = pick(o.who);
          const n = Math.min(o.pages, PAGES - o.page);
          p.madvise(BASE + o.page * PAGE, n * PAGE, MADV_DONTNEED);
          for (let i = o.page; i < o.page + n; i++) model.get(p)!.delete(i);
          break;
        }
        case "mprotect": pick(o.who).mprotect(BASE + o.page * PAGE, Math.min(o.pages, PAGES - o.page) * PAGE, o.ro ? PROT_READ : PROT_READ | PROT_WRITE); break;
        case "pin": pins.push(pick(o.who).pinUserPages(BASE + o.page * PAGE, 1, FOLL_PIN | FOLL_LONGTERM | (o.write ? FOLL_WRITE : 0))); break;
        case "unpin": if (pins.length) pins.splice(o.which % pins.length, 1)[0]!.release(); break;
        case "migrate": {
          const p = pick(o.who);
          const n = Math.min(o.pages, PAGES - o.page);
          const held = pinnedMapped(k, pins);
          const m = p.migratePages(BASE + o.page * PAGE, n * PAGE, { all: true, phase: o.twoPhase ? "start" : "all" });
          if (o.twoPhase) {
            // an access that meets an entry waits; one elsewhere goes on
            const r = p.access(false, BASE + o.touch * PAGE);
            m.finish();
            if (r.state === "blocked") r.resume();
          }
          expect(m.status.every((s) => s <= 0)).toBe(true);
          const after = pinnedMapped(k, pins);
          for (const [key, pfn] of held) expect(after.get(key), `pinned ${key} moved`).toBe(pfn);
          for (const q of procs) for (const pg of [o.page, o.touch, ...model.get(q)!.keys()].slice(0, 24)) expectModel(q, pg);
          break;
        }
      }
    } catch (e) {
      // a read-only page written (SIGSEGV) and the like: the error contract leaves the state as it was
      if (!(e instanceof CowsimError)) throw e;
    }
  }
  for (const p of procs) for (const [pg] of model.get(p)!) expectModel(p, pg);
  // compaction's migrations (transient.migration) are as invisible as any: 6.12 misses no COW
  // and leaves no pin behind
  if (strategy === "anon-exclusive") expect(k.findings.filter((f) => f.kind !== "unnecessary-cow").map((f) => f.summary)).toEqual([]);
  const counters = k.counters();
  for (const up of pins) up.release();
  for (const p of procs) p.exit();
  expect(k.checkInvariants()).toEqual([]);
  expect(k.heldFrames()).toEqual([]);
  return counters;
}

const SETUPS: readonly [string, ThpOptions | undefined, number][] = [
  ["PMD-mapped THPs", undefined, 0],
  ["mTHPs", { sizes: { "64K": "always", "2M": "never" } }, 0],
  ["PMD-mapped THPs, transient.migration 0.5", undefined, 0.5],
];

describe.each(SETUPS)("migration of large folios is invisible (%s)", (_name, thp, migration) => {
  for (const s of STRATEGIES) {
    it(`${s}: contents, pins and invariants survive every migration; nothing leaks`, () => {
      let moved = 0, large = 0;
      fc.assert(fc.property(fc.array(opArb, { minLength: 5, maxLength: 30 }), (ops) => {
        const c = run(s, thp, migration, ops);
        moved += c.pgmigrateSuccess!;
        large += c.thp_migration_success!;
      }), { numRuns: RUNS, seed: SEED });
      expect(moved).toBeGreaterThan(RUNS); // pages moved, not only failures
      if (!thp) expect(large).toBeGreaterThan(0); // whole THPs among them
    });
  }
});
