// The buddy allocator (assembly/page_alloc.ts) against a model that only knows which frames
// are taken: random sequences of alloc_pages(order) and frees at every order 0…9. Each folio is
// naturally aligned and overlaps nothing held; ENOMEM comes exactly when the model has no free
// aligned run of 2^order frames inside the machine; PGALLOC / PGFREE / THP_ALLOC / THP_FREE /
// PGALLOC_FAIL move by exactly what each call did; and once everything is freed, every whole
// pageblock but the zero page's can be taken at order 9 again.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { C, type Core } from "../../src/core/index.js";
import { makeCore } from "../helpers.js";
import { allocatorState, BLOCK } from "./alloc-state.js";

const BUDDY = 2 ** C.PG_buddy;
const COUNTERS = ["PGALLOC", "PGFREE", "THP_ALLOC", "THP_FREE", "PGALLOC_FAIL"] as const;
type Vm = Record<(typeof COUNTERS)[number], number>;

/** What the model holds: which frames are taken (pfn 0, the zero page, from the start), and the folios handed out. */
class Model {
  readonly taken: Uint8Array;
  readonly held: { pfn: number; order: number }[] = [];
  free: number;
  readonly vm: Vm = { PGALLOC: 0, PGFREE: 0, THP_ALLOC: 0, THP_FREE: 0, PGALLOC_FAIL: 0 };

  constructor(readonly nframes: number) {
    this.taken = new Uint8Array(nframes);
    this.taken[0] = 1;
    this.free = nframes - 1;
  }

  /** Whether some naturally aligned run of 2^order frames inside the machine is all free. */
  hasRun(order: number): boolean {
    const nr = 2 ** order;
    for (let start = 0; start + nr <= this.nframes; start += nr) {
      let ok = true;
      for (let i = start; i < start + nr; i++) if (this.taken[i]) { ok = false; break; }
      if (ok) return true;
    }
    return false;
  }

  mark(pfn: number, order: number, v: 0 | 1): void {
    this.taken.fill(v, pfn, pfn + 2 ** order);
    this.free += v ? -(2 ** order) : 2 ** order;
  }
}

function vmOf(core: Core): Vm {
  const v = core.vmstat();
  return Object.fromEntries(COUNTERS.map((c) => [c, v[c] ?? 0])) as Vm;
}

/** The allocator agrees with the model: counters, the free count, each block's free count. */
function agree(m: Model, core: Core, base: Vm): void {
  const vm = vmOf(core);
  for (const c of COUNTERS) expect(vm[c] - base[c], c).toBe(m.vm[c]);
  expect(core.freePages()).toBe(m.free);
  allocatorState(core).blocks.forEach((b, i) => {
    const end = Math.min(m.nframes, (i + 1) * BLOCK);
    let free = 0;
    for (let pfn = i * BLOCK; pfn < end; pfn++) if (!m.taken[pfn]) free++;
    expect(b.free, `block ${i}`).toBe(free);
  });
}

class AllocCommand implements fc.Command<Model, Core> {
  constructor(readonly order: number) {}
  check(): boolean { return true; }
  run(m: Model, core: Core): void {
    const nr = 2 ** this.order;
    const expectRun = m.hasRun(this.order);
    const pfn = core.ops.tryAllocPages(this.order);
    if (pfn === null) {
      expect(expectRun, `ENOMEM at order ${this.order} with an aligned free run`).toBe(false);
      m.vm.PGALLOC_FAIL++;
      return;
    }
    expect(expectRun, `order ${this.order} served with no aligned free run`).toBe(true);
    expect(pfn % nr).toBe(0);
    expect(pfn + nr).toBeLessThanOrEqual(m.nframes);
    for (let i = pfn; i < pfn + nr; i++) expect(m.taken[i], `pfn ${i} handed out twice`).toBe(0);
    expect(core.x.folio_order(pfn)).toBe(this.order);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
    m.mark(pfn, this.order, 1);
    m.held.push({ pfn, order: this.order });
    if (this.order === 9) m.vm.THP_ALLOC++; else m.vm.PGALLOC += nr;
  }
  toString(): string { return `alloc(${this.order})`; }
}

class FreeCommand implements fc.Command<Model, Core> {
  constructor(readonly pick: number) {}
  check(m: Readonly<Model>): boolean { return m.held.length > 0; }
  run(m: Model, core: Core): void {
    const [{ pfn, order }] = m.held.splice(this.pick % m.held.length, 1) as [{ pfn: number; order: number }];
    expect(core.x.folio_put_refs(pfn, 1)).toBe(1);
    for (let i = pfn; i < pfn + 2 ** order; i++) expect(core.frames.flags(i)).toBe(BUDDY);
    m.mark(pfn, order, 0);
    if (order === 9) m.vm.THP_FREE++; else m.vm.PGFREE += 2 ** order;
  }
  toString(): string { return `free(#${this.pick})`; }
}

// small orders more often, so that blocks fragment and large orders meet ENOMEM for want of an
// aligned run, not only for want of frames
const order = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }) },
  { weight: 2, arbitrary: fc.integer({ min: 3, max: 6 }) },
  { weight: 2, arbitrary: fc.integer({ min: 7, max: 9 }) },
);
// two allocations to a free, so that the machine fills up and the runs meet ENOMEM
const alloc = order.map((o) => new AllocCommand(o) as fc.Command<Model, Core>);
const commands = [alloc, alloc, fc.nat().map((i) => new FreeCommand(i) as fc.Command<Model, Core>)];

describe("alloc_pages() / free_pages() against a model of taken frames", () => {
  it("random sequences at orders 0…9: alignment, no overlap, ENOMEM exactly without an aligned run, exact counters, whole blocks again at the end", () => {
    let enomem = 0;
    let served = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(1024, 2048, 2048 + 96), // the last block may be partial
        fc.commands(commands, { maxCommands: 200, size: "max" }),
        (nframes, seq) => {
          const core = makeCore({ frames: nframes });
          const m = new Model(nframes);
          const base = vmOf(core);
          fc.modelRun(() => ({ model: m, real: core }), seq);
          agree(m, core, base);
          enomem += m.vm.PGALLOC_FAIL;
          served += m.held.length;
          // everything back: the bitmaps as fresh, and every whole block but block 0 at order 9
          for (const { pfn } of m.held.splice(0)) core.x.folio_put_refs(pfn, 1);
          expect(core.freePages()).toBe(nframes - 1);
          const whole = Math.floor(nframes / BLOCK) - 1;
          const thps = new Set<number>();
          for (let i = 0; i < whole; i++) thps.add(core.ops.tryAllocPages(9)!);
          expect([...thps].sort((a, b) => a - b)).toEqual(Array.from({ length: whole }, (_, i) => (i + 1) * BLOCK));
          expect(core.ops.tryAllocPages(9)).toBeNull();
        },
      ),
      { numRuns: 40 },
    );
    // the runs met both outcomes: the ENOMEM check had something to check
    expect(enomem).toBeGreaterThan(0);
    expect(served).toBeGreaterThan(0);
  });
});
