// Random small litmus programs: each model allows at least what a stronger one does
// (SC ⊆ x86-TSO ⊆ LKMM), and the axiomatic search — one visit per execution graph — finds the
// same final states as the unreduced search over every interleaving of the SC and x86-TSO machines.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { explore, parseLitmus } from "../../src/explore/index.js";
import { interleavings } from "../../src/explore/operational.js";

const LOCS = ["x", "y"];
const loc = fc.constantFrom(...LOCS);
const val = fc.integer({ min: 1, max: 2 });
const reg = fc.integer({ min: 0, max: 2 }).map((i) => `r${i}`);
const insn: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(loc, val).map(([l, v]) => `WRITE_ONCE(*${l}, ${v});`),
  fc.tuple(loc, val).map(([l, v]) => `smp_store_release(${l}, ${v});`),
  fc.tuple(reg, loc).map(([r, l]) => `${r} = READ_ONCE(*${l});`),
  fc.tuple(reg, loc).map(([r, l]) => `${r} = smp_load_acquire(${l});`),
  fc.constantFrom("smp_mb();", "smp_rmb();", "smp_wmb();", "smp_mb__after_atomic();"),
  fc.tuple(reg, loc, val, fc.constantFrom("xchg", "xchg_relaxed")).map(([r, l, v, f]) => `${r} = ${f}(${l}, ${v});`),
  loc.map((l) => `atomic_inc(${l});`),
  fc.tuple(reg, loc, val).map(([r, l, v]) => `${r} = cmpxchg_relaxed(${l}, 0, ${v});`),
  fc.tuple(reg, loc, val).map(([r, l, v]) => `if (${r}) WRITE_ONCE(*${l}, ${v});`),
  fc.tuple(reg, reg, loc).map(([r, s, l]) => `WRITE_ONCE(*${l}, ${r} + ${s});`),
);
const program = fc.array(fc.array(insn, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }).map((threads) => [
  "C random", "{}",
  ...threads.map((body, i) => `P${i}(int *x, int *y)\n{\n\tint r0;\n\tint r1;\n\tint r2;\n${body.map((s) => `\t${s}`).join("\n")}\n}`),
  "exists (x=1)", "",
].join("\n"));

describe("random programs", () => {
  it("SC ⊆ x86-TSO ⊆ LKMM, and the reduced search finds what every interleaving finds", () => {
    fc.assert(fc.property(program, (text) => {
      const p = parseLitmus(text, "random");
      const r = explore(p, { observeAll: true, witness: false });
      const [sc, tso, lk] = r.models.map((m) => new Set(m.states.map((s) => s.state)));
      for (const s of sc!) expect(tso!.has(s), `SC state not under TSO: ${s}\n${text}`).toBe(true);
      for (const s of tso!) expect(lk!.has(s), `TSO state not under LKMM: ${s}\n${text}`).toBe(true);
      expect(sc!.size).toBeGreaterThan(0);
      expect([...interleavings(p, "sc").states].sort(), `SC\n${text}`).toEqual([...sc!].sort());
      expect([...interleavings(p, "tso").states].sort(), `TSO\n${text}`).toEqual([...tso!].sort());
    }), { numRuns: 300, seed: 1 });
  });
});
