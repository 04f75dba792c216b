// VmaList, the B-tree of an address space's VMAs with the largest hole in every node: hand-written
// cases with exact results, and random sequences of insert, remove, in-place resize, split, merge
// and queries checked against a sorted array scanned linearly.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { Vma, VmaList, VM_READ, VM_WRITE } from "../../src/mm/vma.js";

const PAGE = 4096;
const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 300 : 200));
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261123);

const vma = (start: number, end: number) => new Vma(start, end, VM_READ | VM_WRITE, start / PAGE, null);

/** A list of VMAs given as [start, end) pairs in pages. */
function listOf(...ranges: [number, number][]): { l: VmaList; v: Vma[] } {
  const l = new VmaList();
  const v = ranges.map(([s, e]) => vma(s * PAGE, e * PAGE));
  for (const x of v) l.insert(x);
  expect(l.validate()).toEqual([]);
  return { l, v };
}

/** The gap search with lengths and limits in pages; the page it returns, or null. */
function topdown(l: VmaList, pages: number, low: number, high: number): number | null {
  const a = l.unmappedAreaTopdown(pages * PAGE, low * PAGE, high * PAGE);
  return a === null ? null : a / PAGE;
}

describe("VmaList: unmappedAreaTopdown()", () => {
  it("an empty address space: the top of [low, high), or nothing if it is too small", () => {
    const { l } = listOf();
    expect(topdown(l, 1, 0, 100)).toBe(99);
    expect(topdown(l, 100, 0, 100)).toBe(0);
    expect(topdown(l, 101, 0, 100)).toBe(null);
    expect(topdown(l, 5, 10, 15)).toBe(10);
    expect(topdown(l, 6, 10, 15)).toBe(null);
  });

  it("the hole above the highest VMA, up to high", () => {
    const { l } = listOf([10, 20], [30, 40]);
    expect(topdown(l, 1, 0, 100)).toBe(99);
    expect(topdown(l, 60, 0, 100)).toBe(40); // exact fit at the very top
    expect(topdown(l, 61, 0, 100)).toBe(null); // 61 > every hole: [0,10) 10, [20,30) 10, [40,100) 60
    // high inside the highest VMA: the top hole is out of reach, the next one down serves
    expect(topdown(l, 5, 0, 35)).toBe(25);
  });

  it("the hole below the lowest VMA, down to 0 or low", () => {
    const { l } = listOf([10, 20], [21, 40]);
    expect(topdown(l, 10, 0, 40)).toBe(0); // [0,10) exactly
    expect(topdown(l, 11, 0, 40)).toBe(null);
    expect(topdown(l, 8, 2, 40)).toBe(2); // [2,10) exactly
    expect(topdown(l, 9, 2, 40)).toBe(null);
    expect(topdown(l, 1, 0, 40)).toBe(20); // the one-page hole between them is higher
    expect(topdown(l, 2, 0, 40)).toBe(8);
  });

  it("the highest hole that fits, not the largest", () => {
    const { l } = listOf([0, 1], [3, 4], [10, 11], [12, 20]);
    expect(topdown(l, 1, 0, 20)).toBe(11); // [11,12)
    expect(topdown(l, 2, 0, 20)).toBe(8); // [4,10): the top of it
    expect(topdown(l, 6, 0, 20)).toBe(4); // [4,10) exactly
    expect(topdown(l, 7, 0, 20)).toBe(null);
    expect(topdown(l, 2, 0, 4)).toBe(1); // [1,3) exactly, below high
    expect(topdown(l, 3, 0, 4)).toBe(null);
  });

  it("holes cut by low and high", () => {
    const { l } = listOf([0, 1], [10, 11]);
    expect(topdown(l, 3, 0, 6)).toBe(3); // [1,10) cut at 6
    expect(topdown(l, 5, 0, 6)).toBe(1);
    expect(topdown(l, 6, 0, 6)).toBe(null);
    expect(topdown(l, 2, 8, 11)).toBe(8); // [1,10) cut at 8
    expect(topdown(l, 3, 8, 11)).toBe(null);
    expect(topdown(l, 1, 10, 11)).toBe(null); // [low, high) is one VMA
    expect(topdown(l, 4, 5, 100)).toBe(96);
    expect(topdown(l, 89, 5, 100)).toBe(11);
    expect(topdown(l, 90, 5, 100)).toBe(null);
  });

  it("adjacent VMAs leave no hole; addresses near the top of a 48-bit space are exact", () => {
    const top = 2 ** 47 / PAGE; // TASK_SIZE's neighbourhood, in pages
    const { l } = listOf([top - 10, top - 8], [top - 8, top - 5], [top - 4, top - 1]);
    expect(topdown(l, 1, 0, top)).toBe(top - 1);
    expect(topdown(l, 1, 0, top - 1)).toBe(top - 5);
    expect(topdown(l, 2, 0, top - 1)).toBe(top - 12);
    expect(topdown(l, 2, top - 11, top - 1)).toBe(null);
    expect(l.unmappedAreaTopdown(PAGE, 0, 2 ** 48)).toBe(2 ** 48 - PAGE);
  });

  it("many VMAs, one hole of each size, found exactly", () => {
    const l = new VmaList();
    // VMAs one page long at page 1000·i: 999-page holes between them, 1000 pages below the first
    const vs: Vma[] = [];
    for (let i = 1; i <= 2000; i++) {
      const v = vma(i * 1000 * PAGE, (i * 1000 + 1) * PAGE);
      vs.push(v);
      l.insert(v);
    }
    expect(l.validate()).toEqual([]);
    // a 5999-page hole between VMA 700 and VMA 706
    for (let i = 701; i <= 705; i++) l.remove(vs[i - 1]!);
    expect(l.validate()).toEqual([]);
    expect(topdown(l, 999, 0, 2_001_000)).toBe(2_000_001); // above the highest, exactly
    expect(topdown(l, 999, 0, 2_000_000)).toBe(1_999_001); // the hole below VMA 2000, exactly
    expect(topdown(l, 1000, 0, 2_000_000)).toBe(706_000 - 1000); // only the big hole fits
    expect(topdown(l, 5999, 0, 2_000_000)).toBe(700_001); // [700001, 706000) exactly
    expect(topdown(l, 6000, 0, 2_000_000)).toBe(null);
  });
});

describe("VmaList: structure", () => {
  it("lookup, findFrom, overlapping, covers, prev and next", () => {
    const { l, v } = listOf([10, 20], [20, 30], [40, 50]);
    const [a, b, c] = v as [Vma, Vma, Vma];
    expect(l.count).toBe(3);
    expect(l.list).toEqual([a, b, c]);
    expect([...l]).toEqual([a, b, c]);
    expect(l.lookup(9 * PAGE + 4095)).toBe(null);
    expect(l.lookup(10 * PAGE)).toBe(a);
    expect(l.lookup(20 * PAGE - 1)).toBe(a);
    expect(l.lookup(20 * PAGE)).toBe(b);
    expect(l.lookup(35 * PAGE)).toBe(null);
    expect(l.findFrom(35 * PAGE)).toBe(c);
    expect(l.findFrom(50 * PAGE)).toBe(null);
    expect(l.overlapping(15 * PAGE, 41 * PAGE)).toEqual([a, b, c]);
    expect(l.overlapping(30 * PAGE, 40 * PAGE)).toEqual([]);
    expect(l.covers(10 * PAGE, 30 * PAGE)).toBe(true);
    expect(l.covers(10 * PAGE, 31 * PAGE)).toBe(false);
    expect(l.covers(12 * PAGE, 12 * PAGE)).toBe(true);
    expect(l.prev(a)).toBe(null);
    expect(l.prev(c)).toBe(b);
    expect(l.next(b)).toBe(c);
    expect(l.next(c)).toBe(null);
  });

  it("refuses overlapping, empty and twice-inserted VMAs, and removing a stranger", () => {
    const { l, v } = listOf([10, 20], [30, 40]);
    expect(() => l.insert(vma(19 * PAGE, 21 * PAGE))).toThrow(/overlaps 0xa000-0x14000/);
    expect(() => l.insert(vma(25 * PAGE, 31 * PAGE))).toThrow(/overlaps 0x1e000-0x28000/);
    expect(() => l.insert(vma(5 * PAGE, 50 * PAGE))).toThrow(/overlaps/);
    expect(() => l.insert(vma(25 * PAGE, 25 * PAGE))).toThrow(/empty/);
    expect(() => l.insert(v[0]!)).toThrow(/already in a list/);
    expect(() => listOf().l.remove(v[0]!)).toThrow(/not in the list/);
    expect(l.count).toBe(2);
    expect(l.validate()).toEqual([]);
  });

  it("a removed VMA has no neighbours, and can join another list", () => {
    const { l, v } = listOf([1, 2], [3, 4], [5, 6]);
    l.remove(v[1]!);
    expect(l.prev(v[1]!)).toBe(null);
    expect(l.next(v[1]!)).toBe(null);
    expect(l.next(v[0]!)).toBe(v[2]);
    const other = new VmaList();
    other.insert(v[1]!);
    expect(l.prev(v[1]!)).toBe(null); // in the other list, a stranger to this one
    expect(other.lookup(3 * PAGE)).toBe(v[1]);
    expect(l.lookup(3 * PAGE)).toBe(null);
  });

  it("the loop body may remove the VMA it is given", () => {
    const { l, v } = listOf([1, 2], [3, 4], [5, 6], [7, 8]);
    const seen: Vma[] = [];
    for (const x of l) {
      seen.push(x);
      if (x !== v[3]) l.remove(x);
    }
    expect(seen).toEqual(v);
    expect(l.list).toEqual([v[3]]);
    expect(l.validate()).toEqual([]);
  });

  it("split, merge and growth in place keep lookups and gaps right, with or without a call", () => {
    const { l, v } = listOf([10, 20], [30, 40]);
    const [a, b] = v as [Vma, Vma];
    // __split_vma(): a shrinks, its upper part joins
    a.end = 15 * PAGE;
    expect(l.lookup(17 * PAGE)).toBe(null);
    expect(topdown(l, 15, 0, 30)).toBe(15); // [15,30) exactly
    const upper = vma(15 * PAGE, 20 * PAGE);
    l.insert(upper);
    expect(l.validate()).toEqual([]);
    // vma_merge(): a grows over its neighbour, which goes
    a.end = upper.end;
    l.remove(upper);
    expect(l.validate()).toEqual([]);
    expect(l.lookup(17 * PAGE)).toBe(a);
    expect(topdown(l, 10, 0, 40)).toBe(20);
    // mremap() growing b downwards; the calls callers make are harmless
    b.start = 22 * PAGE;
    l.invalidate();
    expect(l.lookup(23 * PAGE)).toBe(b);
    expect(topdown(l, 3, 0, 40)).toBe(7); // [20,22) is too small: the top of [0,10)
    expect(topdown(l, 2, 0, 40)).toBe(20);
    b.end = 50 * PAGE;
    l.resized(b);
    expect(l.lookup(45 * PAGE)).toBe(b);
    expect(topdown(l, 1, 0, 50)).toBe(21);
    expect(l.validate()).toEqual([]);
  });

  it("stays balanced: 65530 VMAs in ascending order, then every other one removed", () => {
    const l = new VmaList();
    const vs: Vma[] = [];
    for (let i = 0; i < 65530; i++) {
      const v = vma(2 * i * PAGE, (2 * i + 1) * PAGE);
      vs.push(v);
      l.insert(v);
    }
    expect(l.validate()).toEqual([]);
    for (let i = 0; i < vs.length; i += 2) l.remove(vs[i]!);
    expect(l.validate()).toEqual([]);
    expect(l.count).toBe(65530 / 2);
    // VMAs [2i, 2i+1) for odd i remain: 3-page holes between them, the highest ends at 131059
    expect(topdown(l, 3, 0, 131062)).toBe(131059);
    expect(topdown(l, 3, 0, 131061)).toBe(131055);
    expect(topdown(l, 4, 0, 131061)).toBe(null);
    expect(topdown(l, 2, 0, 3)).toBe(0);
  });

  it("stays a B-tree while thousands of VMAs come and go in random order", () => {
    const l = new VmaList();
    const live: Vma[] = [];
    let x = 12345;
    const rand = (n: number) => (x = (x * 48271) % 2147483647) % n;
    const phases: [number, number][] = [[20000, 0], [0, 15000], [12000, 6000], [0, 10000], [3000, 4000], [0, 4000]];
    for (const [inserts, removes] of phases) {
      for (let i = 0; i < inserts; i++) {
        const s = rand(200000) * 2 * PAGE;
        if (l.overlapping(s, s + PAGE).length) continue;
        const v = vma(s, s + PAGE);
        l.insert(v);
        live.push(v);
      }
      for (let i = 0; i < removes && live.length; i++) {
        // from the bottom, the top, or anywhere: siblings on either side lend and merge
        const j = i % 3 === 0 ? 0 : i % 3 === 1 ? live.length - 1 : rand(live.length);
        if (j === 0) live.sort((a, b) => a.start - b.start);
        l.remove(live[j]!);
        live.splice(j, 1);
      }
      expect(l.validate()).toEqual([]);
      expect(l.count).toBe(live.length);
    }
    expect(l.count).toBe(0);
    expect(l.height).toBe(0);
  });
});

// ---- the reference model and random sequences ---------------------------------------------

/** The trivially correct VmaList: the VMAs in a sorted array, every question a linear scan. */
class Reference {
  vmas: Vma[] = [];
  gone: Vma[] = [];

  free(start: number, end: number): boolean {
    return this.vmas.every((v) => v.end <= start || v.start >= end);
  }
  insert(v: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < v.start) i++;
    this.vmas.splice(i, 0, v);
  }
  remove(v: Vma): void {
    this.vmas.splice(this.vmas.indexOf(v), 1);
    this.gone.push(v);
  }
  findFrom(addr: number): Vma | null {
    return this.vmas.find((v) => v.end > addr) ?? null;
  }
  lookup(addr: number): Vma | null {
    return this.vmas.find((v) => v.start <= addr && addr < v.end) ?? null;
  }
  overlapping(start: number, end: number): Vma[] {
    return this.vmas.filter((v) => v.start < end && v.end > start);
  }
  covers(start: number, end: number): boolean {
    for (let a = start; a < end; a += PAGE) if (!this.lookup(a)) return false;
    return true;
  }
  prev(v: Vma): Vma | null {
    const i = this.vmas.indexOf(v);
    return i > 0 ? this.vmas[i - 1]! : null;
  }
  next(v: Vma): Vma | null {
    const i = this.vmas.indexOf(v);
    return i >= 0 && i + 1 < this.vmas.length ? this.vmas[i + 1]! : null;
  }
  /** Every hole from the top, each cut to [low, high); the top of the first that fits. */
  topdown(length: number, low: number, high: number): number | null {
    const holes: [number, number][] = [];
    let at = 0;
    for (const v of this.vmas) {
      holes.push([at, v.start]);
      at = v.end;
    }
    holes.push([at, Infinity]);
    for (const [s, e] of holes.reverse()) {
      const from = Math.max(s, low), to = Math.min(e, high);
      if (to - from >= length) return to - length;
    }
    return null;
  }
}

/** A random sequence's world: addresses are pages 0…universe above `base`. */
interface World { ref: Reference; list: VmaList; base: number; universe: number }
type Cmd = fc.Command<World, World>;

const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

/** After every command: the structure is sound and holds exactly the reference's VMAs. */
function agree(w: World): void {
  expect(w.list.validate()).toEqual([]);
  expect(w.list.count).toBe(w.ref.vmas.length);
  expect(w.list.list).toEqual(w.ref.vmas);
  expect([...w.list]).toEqual(w.ref.vmas);
}

function command(name: string, params: object, run: (w: World) => void): Cmd {
  return {
    check: () => true,
    run: (w: World) => {
      run(w);
      agree(w);
    },
    toString: () => `${name}(${JSON.stringify(params)})`,
  };
}

/**
 * How a caller follows an in-place change of a VMA's bounds: not at all (the setters suffice),
 * resized(), invalidate() with the VMA or without one.
 */
function report(w: World, v: Vma, how: number): void {
  if (how === 1) w.list.resized(v);
  else if (how === 2) w.list.invalidate(v);
  else if (how === 3) w.list.invalidate();
}

/** Inserts where the reference says the range is free; elsewhere insert() must refuse. */
function tryInsert(w: World, s: number, e: number): void {
  const v = vma(s, e);
  if (w.ref.free(s, e)) {
    w.list.insert(v);
    w.ref.insert(v);
  } else {
    expect(() => w.list.insert(v)).toThrow(/overlaps/);
  }
}

const how = fc.nat(3);
const cmds: fc.Arbitrary<Cmd>[] = [
  fc.record({ at: fc.nat(), pages: fc.integer({ min: 1, max: 8 }) }).map((p) => command("insert", p, (w) => {
    const s = w.base + (p.at % w.universe) * PAGE;
    tryInsert(w, s, s + p.pages * PAGE);
  })),
  // many VMAs of 1–3 pages at pseudo-random places: trees of several levels
  fc.record({ count: fc.integer({ min: 1, max: 300 }), seed: fc.nat() }).map((p) => command("fill", p, (w) => {
    for (let i = 0, x = p.seed + 1; i < p.count; i++) {
      x = (x * 48271) % 2147483647;
      const s = w.base + (x % w.universe) * PAGE;
      const e = s + (1 + (x >>> 8) % 3) * PAGE;
      if (w.ref.free(s, e)) tryInsert(w, s, e);
    }
  })),
  fc.record({ i: fc.nat() }).map((p) => command("remove", p, (w) => {
    const v = pick(w.ref.vmas, p.i);
    if (!v) return;
    w.list.remove(v);
    w.ref.remove(v);
  })),
  // a run of neighbours, or every k-th VMA: leaves and inner nodes merge and borrow
  fc.record({ i: fc.nat(), count: fc.integer({ min: 1, max: 200 }), stride: fc.integer({ min: 1, max: 4 }) })
    .map((p) => command("drain", p, (w) => {
      const victims = w.ref.vmas.filter((_, j) => j >= p.i % Math.max(1, w.ref.vmas.length) && j % p.stride === 0).slice(0, p.count);
      for (const v of victims) {
        w.list.remove(v);
        w.ref.remove(v);
      }
    })),
  // the end moves, up to the next VMA or down to one page
  fc.record({ i: fc.nat(), to: fc.nat(), how }).map((p) => command("resizeEnd", p, (w) => {
    const v = pick(w.ref.vmas, p.i);
    if (!v) return;
    const limit = w.ref.next(v)?.start ?? w.base + (w.universe + 8) * PAGE;
    v.end = v.start + (1 + (p.to % ((limit - v.start) / PAGE))) * PAGE;
    report(w, v, p.how);
  })),
  // the start moves, down to the previous VMA or up to one page below the end
  fc.record({ i: fc.nat(), to: fc.nat(), how }).map((p) => command("resizeStart", p, (w) => {
    const v = pick(w.ref.vmas, p.i);
    if (!v) return;
    const limit = w.ref.prev(v)?.end ?? w.base;
    v.start = limit + (p.to % ((v.end - limit) / PAGE)) * PAGE;
    report(w, v, p.how);
  })),
  // __split_vma(): shrink, insert the upper part
  fc.record({ i: fc.nat(), at: fc.nat(), how }).map((p) => command("split", p, (w) => {
    const v = pick(w.ref.vmas, p.i);
    if (!v || v.pages < 2) return;
    const addr = v.start + (1 + (p.at % (v.pages - 1))) * PAGE;
    const upper = vma(addr, v.end);
    v.end = addr;
    report(w, v, p.how);
    w.list.insert(upper);
    w.ref.insert(upper);
  })),
  // vma_merge(): grow over the next VMA (and any hole before it), which goes — the two overlap
  // until it does
  fc.record({ i: fc.nat(), early: fc.boolean(), how }).map((p) => command("merge", p, (w) => {
    const a = pick(w.ref.vmas, p.i);
    const b = a && w.ref.next(a);
    if (!a || !b) return;
    a.end = b.end;
    if (p.early) report(w, a, p.how);
    w.list.remove(b);
    w.ref.remove(b);
    if (!p.early) report(w, a, p.how);
  })),
  fc.record({ addr: fc.integer({ min: -1, max: 2 ** 30 }) }).map((p) => command("lookup", p, (w) => {
    const a = w.base + (p.addr < 0 ? -1 : p.addr % ((w.universe + 9) * PAGE));
    expect(w.list.lookup(a)).toBe(w.ref.lookup(a));
    expect(w.list.findFrom(a)).toBe(w.ref.findFrom(a));
  })),
  fc.record({ at: fc.nat(), pages: fc.integer({ min: 0, max: 24 }) }).map((p) => command("range", p, (w) => {
    const s = w.base + (p.at % (w.universe + 4)) * PAGE, e = s + p.pages * PAGE;
    expect(w.list.overlapping(s, e)).toEqual(w.ref.overlapping(s, e));
    expect(w.list.covers(s, e)).toBe(w.ref.covers(s, e));
  })),
  fc.record({ i: fc.nat(), gone: fc.boolean() }).map((p) => command("neighbours", p, (w) => {
    const v = pick(p.gone ? w.ref.gone : w.ref.vmas, p.i);
    if (!v) return;
    expect(w.list.prev(v)).toBe(w.ref.prev(v));
    expect(w.list.next(v)).toBe(w.ref.next(v));
  })),
  fc.record({ length: fc.integer({ min: 1, max: 40 }), low: fc.nat(), span: fc.nat(), odd: fc.boolean() })
    .map((p) => command("unmappedAreaTopdown", p, (w) => {
      // lengths and limits in pages, or (odd) in bytes not multiples of a page
      const unit = p.odd ? 1000 : PAGE;
      const length = p.length * unit;
      const low = w.base + (p.low % (w.universe + 10)) * unit;
      const high = low + (p.span % (w.universe + 20)) * unit;
      expect(w.list.unmappedAreaTopdown(length, low, high)).toBe(w.ref.topdown(length, low, high));
    })),
];

describe("VmaList against a sorted array (fast-check model run)", () => {
  const worlds: [string, number, number, number][] = [
    // a few VMAs near address 0 and near the top of a 47-bit space; then thousands
    ["small, low addresses", 0, 96, RUNS],
    ["small, top of the address space", 2 ** 47 - 128 * PAGE, 96, RUNS],
    ["thousands of VMAs", 2 ** 40, 6000, Math.ceil(RUNS / 5)],
  ];
  for (const [name, base, universe, numRuns] of worlds) {
    it(`random insert, remove, resize, split, merge and queries: ${name}`, () => {
      let height = 0, most = 0;
      fc.assert(
        fc.property(fc.commands(cmds, { maxCommands: 120, size: "max" }), (seq) => {
          const w: World = { ref: new Reference(), list: new VmaList(), base, universe };
          fc.modelRun(() => ({ model: w, real: w }), seq);
          height = Math.max(height, w.list.height);
          most = Math.max(most, w.list.count);
        }),
        { numRuns, seed: SEED },
      );
      // the sequences reached trees of several levels (splits and merges of inner nodes)
      if (universe > 1000) expect(height).toBeGreaterThanOrEqual(3);
      expect(most).toBeGreaterThan(universe > 1000 ? 500 : 8);
    });
  }
});
