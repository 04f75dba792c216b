// Migration is invisible: over random sequences of syscalls, accesses, GUP users and migrations
// under every strategy, a migration — successful or failed, one phase or two — never changes
// what any process would read, never moves a page a FOLL_PIN pin holds, and leaves every
// invariant (no leaked frame among them) holding.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { createKernel, type Kernel, type StrategyId } from "../../src/index.js";
import { opsArb, World, at, SLOTS, PAGE, type Op } from "../../src/fuzz/ops.js";
import { BUILD } from "../helpers.js";
import { STRATEGIES } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 60);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);

/** What every live process maps: (pid, address) → [pfn, contents] of each present page. */
function mapped(k: Kernel): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const p of k.processes.values()) {
    for (let s = 0; s < SLOTS; s++) {
      const pfn = p.pfnAt(at(s));
      if (pfn === null) continue;
      out.set(`${p.pid}@${at(s)}`, [pfn, k.core.x.page_tag_hi(pfn) * 2 ** 32 + (k.core.x.page_tag_lo(pfn) >>> 0)]);
    }
  }
  return out;
}

/** The frames FOLL_PIN pins hold where their owner maps them. */
function pinnedMapped(k: Kernel): Map<string, number> {
  const out = new Map<string, number>();
  for (const pin of k.pins.active.values()) {
    if (!pin.isPin) continue;
    const owner = k.processes.get(pin.pid);
    pin.pfns.forEach((pfn, i) => {
      if (owner?.pfnAt(pin.addresses[i]!) === pfn) out.set(`${pin.pid}@${pin.addresses[i]}`, pfn);
    });
  }
  return out;
}

function check(strategy: StrategyId, ops: Op[], migrations: readonly { who: number; slot: number; pages: number; twoPhase: boolean }[]): number {
  const k = createKernel({ strategy, memory: "2M", swap: "2M", build: BUILD, maxProcesses: 16, checkInvariants: true });
  const w = new World(k);
  let moved = 0;
  ops.forEach((o, i) => {
    w.apply(o, i + 1);
    const m = migrations[i % migrations.length]!;
    const p = w.live[m.who % w.live.length];
    if (!p) return;
    const before = mapped(k);
    const pins = pinnedMapped(k);
    const mig = p.migratePages(at(m.slot), m.pages * PAGE, { all: true, phase: m.twoPhase ? "start" : "all" });
    if (m.twoPhase) mig.finish();
    moved += mig.succeeded;
    const after = mapped(k);
    // the same pages are mapped, with the same contents; only unpinned frames may change
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [key, [pfn, value]] of before) {
      const [newPfn, newValue] = after.get(key)!;
      expect(newValue, `${key} after migrating pfn ${pfn} to ${newPfn}`).toBe(value);
    }
    for (const [key, pfn] of pins) expect(after.get(key)?.[0], `pinned ${key}`).toBe(pfn);
    expect(mig.status.every((s) => s <= 0)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });
  expect(k.findings.filter((f) => f.kind === "wrong-cow" && /migrated/.test(f.summary))).toEqual([]);
  w.teardown();
  expect(k.checkInvariants()).toEqual([]);
  expect(k.heldFrames()).toEqual([]);
  return moved;
}

describe.each(STRATEGIES)("migration is invisible (%s)", (strategy) => {
  it("contents and pins survive every migration; nothing leaks", () => {
    let moved = 0;
    fc.assert(fc.property(
      opsArb("users", 30),
      fc.array(fc.record({ who: fc.nat(7), slot: fc.nat(7), pages: fc.integer({ min: 1, max: 4 }), twoPhase: fc.boolean() }), { minLength: 1, maxLength: 8 }),
      (ops, migrations) => { moved += check(strategy, ops, migrations); },
    ), { numRuns: RUNS, seed: SEED });
    expect(moved).toBeGreaterThan(RUNS); // the property saw pages move, not only failures
  });
});
