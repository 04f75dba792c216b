// The oracle's shadow memory against a plain map of page values: runs of stores (a batched
// write's, across chunks, strided, zeros among them), moves (mremap, UFFDIO_MOVE) that take
// whole chunks, slices of chunks or overlap, clears, and fork's shared chunks.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { ShadowSpace } from "../../src/oracle/shadow.js";

const SPAN = 4 * 512; // four chunks of pages

type Op =
  | { op: "set"; vpn: number; value: number }
  | { op: "run"; vpn: number; n: number; stride: number; value: number; step: number }
  | { op: "clear"; from: number; n: number }
  | { op: "move"; from: number; to: number; n: number }
  | { op: "fork" };

const vpn = fc.integer({ min: 0, max: SPAN - 1 });
// lengths around a chunk, so aligned whole-chunk moves come up often
const len = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(511, 512, 513, 1024), fc.integer({ min: 1, max: SPAN }));
const aligned = fc.integer({ min: 0, max: 3 }).map((c) => c * 512);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), vpn, value: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("run" as const), vpn, n: len, stride: fc.integer({ min: 1, max: 3 }), value: fc.integer({ min: 0, max: 9 }), step: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), from: vpn, n: len }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("move" as const), from: vpn, to: vpn, n: len }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("move" as const), from: aligned, to: aligned, n: fc.constantFrom(512, 1024) }) },
  { weight: 1, arbitrary: fc.constant({ op: "fork" as const }) },
);

/** The model of one space: values by vpn, missing = 0; a zero moves nothing (the destination keeps its value). */
function modelMove(m: Map<number, number>, from: number, to: number, n: number): void {
  const values = Array.from({ length: n }, (_, i) => m.get(from + i) ?? 0);
  for (let i = 0; i < n; i++) m.delete(from + i);
  values.forEach((v, i) => { if (v !== 0) m.set(to + i, v); });
}

describe("ShadowSpace", () => {
  it("stores runs, moves, clears and shares chunks as a map of values would, on both sides of a fork", () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const spaces: ShadowSpace[] = [new ShadowSpace()];
      const models: Map<number, number>[] = [new Map()];
      ops.forEach((o, i) => {
        // every op goes to the newest space; a fork leaves the older ones to be checked unchanged
        const s = spaces.at(-1)!;
        const m = models.at(-1)!;
        if (o.op === "set") { s.set(o.vpn, o.value); if (o.value === 0) m.delete(o.vpn); else m.set(o.vpn, o.value); }
        if (o.op === "run") {
          const n = Math.min(o.n, Math.floor((SPAN - 1 - o.vpn) / o.stride) + 1);
          s.setRun(o.vpn, n, o.stride, o.value, o.step);
          for (let k = 0; k < n; k++) {
            const v = o.value + k * o.step;
            if (v === 0) m.delete(o.vpn + k * o.stride); else m.set(o.vpn + k * o.stride, v);
          }
        }
        if (o.op === "clear") { const n = Math.min(o.n, SPAN - o.from); s.clear(o.from, o.from + n); for (let v = o.from; v < o.from + n; v++) m.delete(v); }
        if (o.op === "move") {
          const n = Math.min(o.n, SPAN - o.from, SPAN - o.to);
          s.move(o.from, o.to, n);
          modelMove(m, o.from, o.to, n);
        }
        if (o.op === "fork" && i % 2 === 0) {
          const c = new ShadowSpace();
          s.copyRangeInto(c, 0, SPAN);
          spaces.push(c);
          models.push(new Map(m));
        }
      });
      spaces.forEach((s, j) => expect(s.readRange(0, SPAN)).toEqual(Array.from({ length: SPAN }, (_, v) => models[j]!.get(v) ?? 0)));
    }), { seed: 20261202, numRuns: 300 });
  });

  it("moves a chunk-aligned THP's 512 values whole and leaves the source zero", () => {
    const s = new ShadowSpace();
    for (let i = 0; i < 512; i++) s.set(512 + i, i + 1);
    s.move(512, 1536, 512);
    expect(s.readRange(512, 512).every((v) => v === 0)).toBe(true);
    expect(s.readRange(1536, 512)).toEqual(Array.from({ length: 512 }, (_, i) => i + 1));
  });
});
