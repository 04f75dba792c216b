// The batched accesses (writeRange, touchRange, accessList) and the populate path: for random
// sequences, the same counters, pagemap, contents, errors and oracle findings as the loop of
// single accesses.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MADV_DONTNEED, MADV_PAGEOUT,
  MADV_POPULATE_READ, MADV_POPULATE_WRITE, type StrategyId,
} from "../../src/index.js";
import { BUILD, readPages } from "../helpers.js";

const PAGE = 4096;
const BASE = 0x40000000;
const PAGES = 600; // crosses a PMD boundary (512 pages)
const SHARED = BASE + 0x10000000;
const SHARED_PAGES = 16;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 90);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);

type Op =
  | { op: "write"; first: number; count: number; stride: number; value: number }
  | { op: "read"; first: number; count: number; stride: number }
  | { op: "list"; pages: number[]; write: boolean; value: number }
  | { op: "fork" } | { op: "exit" }
  | { op: "madvise"; first: number; count: number; advice: number }
  | { op: "readonly"; first: number; count: number };

const page = fc.integer({ min: 0, max: PAGES - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("write" as const), first: page, count: fc.integer({ min: 1, max: 700 }), stride: fc.integer({ min: 1, max: 3 }), value: fc.nat(1000) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("read" as const), first: page, count: fc.integer({ min: 1, max: 700 }), stride: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("list" as const), pages: fc.array(fc.integer({ min: 0, max: PAGES + 20 }), { maxLength: 40 }), write: fc.boolean(), value: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.constant({ op: "fork" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "exit" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("madvise" as const), first: page, count: fc.integer({ min: 1, max: 300 }), advice: fc.constantFrom(MADV_DONTNEED, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("readonly" as const), first: page, count: fc.integer({ min: 1, max: 50 }) }) },
);

/** The region's address of a page of the op's space: pages past the private region land in the shared one, or in a hole. */
const addrOf = (n: number) => (n < PAGES ? BASE + n * PAGE : SHARED + (n - PAGES) * PAGE);

/** Runs the ops with the batched API or the loop of single accesses; returns everything observable. */
function run(strategy: StrategyId, ops: Op[], batched: boolean, oracle: boolean, lruBatch = 0) {
  const k = createKernel({ strategy, memory: "4M", swap: "2M", build: BUILD, oracle, transient: { lruBatch } });
  const p = k.spawn();
  p.mmap(BASE, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  p.mmap(SHARED, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  const children: ReturnType<typeof p.fork>[] = [];
  const outcomes: string[] = [];
  for (const o of ops) {
    try {
      switch (o.op) {
        case "write":
          if (batched) p.writeRange(addrOf(o.first), o.count, o.value, o.stride, o.stride);
          else for (let i = 0; i < o.count; i++) p.write(addrOf(o.first) + i * o.stride * PAGE, o.value + i * o.stride);
          break;
        case "read":
          if (batched) p.touchRange(addrOf(o.first), o.count, o.stride);
          else for (let i = 0; i < o.count; i++) p.read(addrOf(o.first) + i * o.stride * PAGE);
          break;
        case "list": {
          const addrs = o.pages.map(addrOf);
          if (batched) p.accessList(addrs, o.write, o.write ? o.pages.map((n) => o.value + n) : undefined);
          else for (const [i, a] of addrs.entries()) o.write ? p.write(a, o.value + o.pages[i]!) : p.read(a);
          break;
        }
        case "fork":
          children.push(p.fork());
          break;
        case "exit":
          children.shift()?.exit();
          break;
        case "madvise":
          p.madvise(BASE + o.first * PAGE, Math.min(o.count, PAGES - o.first) * PAGE, o.advice);
          break;
        case "readonly":
          p.mprotect(BASE + o.first * PAGE, Math.min(o.count, PAGES - o.first) * PAGE, PROT_READ);
          break;
      }
      outcomes.push("ok");
    } catch (e) {
      outcomes.push((e as { errno?: string }).errno ?? String(e));
    }
  }
  const counters = k.counters();
  const pagemap = p.pagemap(BASE, PAGES).join();
  const findings = k.findings.map((f) => JSON.stringify(f)).join("\n");
  // what only an rmap walk sees (a page's index, its anon_vma) is checked by the invariants
  const invariants = k.checkInvariants().map((v) => `${v.invariant}: ${v.detail}`);
  // the contents last: reading faults too
  const contents = readPages(p, BASE, PAGES);
  return { outcomes, counters, pagemap, findings, invariants, contents };
}

describe("the batched accesses", () => {
  for (const oracle of [false, true]) {
    it(`match the loop of single accesses, counter for counter${oracle ? ", oracle on" : ""}`, () => {
      // a per-CPU LRU batch (pagecount's transient references) or none: a new folio waits in
      // the batch, or goes straight onto the LRU
      fc.assert(fc.property(fc.constantFrom<StrategyId>("anon-exclusive", "mapcount", "pagecount"), fc.constantFrom(0, 4),
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (strategy, lruBatch, ops) => {
          const batched = run(strategy, ops, true, oracle, lruBatch);
          expect(batched.invariants).toEqual([]);
          expect(batched).toEqual(run(strategy, ops, false, oracle, lruBatch));
        }), { numRuns: oracle ? RUNS / 3 : RUNS, seed: SEED });
    });
  }

  it("takes a list longer than one core call (the scratch area's entries) as the loop of single writes", () => {
    const state = (batched: boolean) => {
      const k = createKernel({ strategy: "anon-exclusive", memory: "4M", build: BUILD, oracle: false });
      const p = k.spawn();
      p.mmap(BASE, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      p.writeRange(BASE, PAGES, 1, 1);
      const child = p.fork();
      // 9000 entries, pages visited in a scrambled order, some more than once
      const n = 9000;
      const addrs = Array.from({ length: n }, (_, i) => BASE + ((i * 7919) % PAGES) * PAGE);
      const values = addrs.map((_, i) => i + 5);
      if (batched) child.accessList(addrs, true, values);
      else addrs.forEach((a, i) => child.write(a, values[i]!));
      expect(k.ops.listCapacity()).toBeLessThan(n);
      return { counters: k.counters(), pagemap: child.pagemap(BASE, PAGES).join(), contents: Array.from({ length: PAGES }, (_, i) => child.read(BASE + i * PAGE)) };
    };
    expect(state(true)).toEqual(state(false));
  });

  it("writes value + i·step to page i of a strided run, and fails at the first page out of its VMA", () => {
    const k = createKernel({ strategy: "anon-exclusive", memory: "4M", build: BUILD });
    const p = k.spawn();
    const a = p.mmap(null, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.writeRange(a, 4, 10, 3, 2);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => p.read(a + i * PAGE))).toEqual([10, 0, 13, 0, 16, 0, 19]);
    expect(() => p.writeRange(a + 6 * PAGE, 3, 7)).toThrow(expect.objectContaining({ errno: "EFAULT" }));
    expect(p.read(a + 7 * PAGE)).toBe(7); // the pages before the fault were written
    expect(() => p.writeRange(a, 1, 1, 0, 0)).toThrow(expect.objectContaining({ errno: "EINVAL" }));
  });
});
