// split_huge_page() in two phases (mm/huge_memory.c split_huge_page_to_list_to_order(),
// unmap_folio(), remap_page(); mm/rmap.c try_to_migrate_one() with TTU_SPLIT_HUGE_PMD): the
// freezing PMD split of seed 000 I.6c, with and without a pin landing between can_split_folio()
// and unmap_folio(), in the kernels with and without PageAnonExclusive.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import { MADV_HUGEPAGE, MAP_FIXED, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, type Kernel, type Process } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, errnoOf, failsCleanly } from "./helpers.js";

const HP = 2 << 20;
const NR = 512;
const BASE = 0x7f0000000000; // 2 MiB aligned
const EAGAIN = -11;

/** A process whose 2 MiB at BASE is one PMD-mapped THP, page i holding 100 + i for a few i. */
function thpProcess(k: Kernel): { p: Process; head: number } {
  const p = k.spawn();
  p.mmap(BASE, HP, RW, PRIV | MAP_FIXED);
  p.madvise(BASE, HP, MADV_HUGEPAGE);
  for (const i of [0, 3, 511]) p.write(BASE + i * PAGE, 100 + i);
  expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
  return { p, head: p.folioAt(BASE)! };
}

/** Every PMD split's `frozen`, and how many migration entries went in and came out. */
function watch(k: Kernel): { frozen: boolean[]; installed: () => number; restored: boolean[] } {
  const frozen: boolean[] = [];
  const restored: boolean[] = [];
  let installed = 0;
  k.on("split_huge_pmd", (e) => frozen.push(e.frozen));
  k.on("set_migration_pte", () => installed++);
  k.on("remove_migration_pte", (e) => restored.push(e.exclusive));
  return { frozen, installed: () => installed, restored };
}

const exclusiveCount = (k: Kernel, head: number) => {
  let n = 0;
  for (let i = 0; i < NR; i++) if (k.ops.PageAnonExclusive(head + i)) n++;
  return n;
};

describe("split_huge_page() with a pin landing after can_split_folio() (seed 000 I.6c)", () => {
  it("5.19+: the freezing PMD split cannot share the pinned THP, splits without migration entries, every subpage stays exclusive: -EAGAIN", () => {
    const k = kernel("anon-exclusive", { memory: "32M" });
    const { p, head } = thpProcess(k);
    const w = watch(k);
    const split = p.splitHugePage(BASE, { phase: "start" });
    expect([split.state, split.status, split.folio]).toEqual(["checked", 1, head]);
    expect(k.ops.pageTestFlag(head, C.PG_locked)).toBe(true);
    const dma = p.pinUserPages(BASE + 3 * PAGE, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    expect(split.finish().status).toBe(EAGAIN);
    expect(split.state).toBe("done");
    expect(w.frozen).toEqual([false]);
    expect([w.installed(), w.restored.length]).toEqual([0, 0]);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    expect(k.ops.folioOrder(head)).toBe(9); // still one folio, now PTE-mapped
    expect(exclusiveCount(k, head)).toBe(NR);
    expect([k.ops.folioMapcount(head), k.ops.folioPincount(head), k.ops.folioRefCount(head)]).toEqual([NR, 1, NR + 1]);
    expect(k.ops.pageTestFlag(head, C.PG_locked)).toBe(false);
    for (let i = 0; i < NR; i++) expect(k.ops.translateOne(p.mm, BASE + i * PAGE)).toBe(head + i);
    const c = k.counters();
    expect([c.thp_split_pmd, c.mthpSplit, c.mthpSplitFailed]).toEqual([1, 0, 1]);
    p.write(BASE + 3 * PAGE, 7);
    expect(dma.read(0)).toBe(7);
    expect([k.counters().wpFaults, k.counters().copies]).toEqual([0, 0]);
    dma.release();
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it.each(["mapcount", "pagecount"] as const)("before 5.19 (%s) the freeze always freezes: 512 migration entries, restored onto the same pages when folio_ref_freeze() fails", (strategy) => {
    const k = kernel(strategy, { memory: "32M" });
    const { p, head } = thpProcess(k);
    const w = watch(k);
    const split = p.splitHugePage(BASE, { phase: "start" });
    const dma = p.pinUserPages(BASE + 3 * PAGE, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    expect(split.finish().status).toBe(EAGAIN);
    expect(w.frozen).toEqual([true]);
    expect(w.restored.length).toBe(NR);
    expect([k.ops.hugePmdAt(p.mm, BASE), k.ops.folioOrder(head), k.ops.folioMapcount(head), k.ops.folioRefCount(head)]).toEqual([0, 9, NR, NR + 1]);
    for (let i = 0; i < NR; i++) expect(k.ops.translateOne(p.mm, BASE + i * PAGE)).toBe(head + i);
    expect(p.read(BASE + 3 * PAGE)).toBe(103);
    p.write(BASE + 3 * PAGE, 7); // the writable entries came back writable
    expect(dma.read(0)).toBe(7);
    expect(k.counters().wpFaults).toBe(0);
    dma.release();
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });
});

describe.each(STRATEGIES)("split_huge_page() (%s)", (strategy) => {
  it("with nothing in the way: frozen, split into 512 order-0 pages mapped by the same PTEs, contents kept", () => {
    const k = kernel(strategy, { memory: "32M" });
    const { p, head } = thpProcess(k);
    const w = watch(k);
    expect(p.splitHugePage(BASE).status).toBe(0);
    expect(w.frozen).toEqual([true]);
    expect(w.restored.length).toBe(NR);
    expect([k.ops.hugePmdAt(p.mm, BASE), k.ops.folioOrder(head), k.ops.folioTestLarge(head + 7)]).toEqual([0, 0, false]);
    for (let i = 0; i < NR; i++) expect(k.ops.translateOne(p.mm, BASE + i * PAGE)).toBe(head + i);
    for (const i of [0, 3, 511]) expect(p.read(BASE + i * PAGE)).toBe(100 + i);
    expect([k.counters().mthpSplit, k.counters().mthpSplitFailed]).toEqual([1, 0]);
    // writable entries restore exclusivity (remove_migration_pte() with RMAP_EXCLUSIVE)
    expect(w.restored.every((e) => e)).toBe(true);
    p.write(BASE + 9 * PAGE, 9);
    expect([k.counters().wpFaults, k.counters().copies]).toEqual([0, 0]);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("a pin before it starts: can_split_folio() refuses, nothing split: -EAGAIN, MTHP_STAT_SPLIT_FAILED", () => {
    const k = kernel(strategy, { memory: "32M" });
    const { p } = thpProcess(k);
    const dma = p.pinUserPages(BASE, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const split = p.splitHugePage(BASE, { phase: "start" });
    expect([split.state, split.status]).toEqual(["done", EAGAIN]);
    expect(errnoOf(() => split.finish())).toBe("EINVAL");
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect([k.counters().thp_split_pmd, k.counters().mthpSplitFailed]).toEqual([0, 1]);
    dma.release();
  });

  it("EFAULT with nothing mapped, EINVAL for an order-0 page, EBUSY for a locked folio: nothing changed", () => {
    const k = kernel(strategy, { memory: "32M" });
    const { p } = thpProcess(k);
    const small = p.mmap(null, PAGE, RW, PRIV);
    failsCleanly(k, "EFAULT", () => p.splitHugePage(small));
    p.write(small, 1);
    failsCleanly(k, "EINVAL", () => p.splitHugePage(small));
    const lock = k.lockFolioAt(p.pid, BASE);
    failsCleanly(k, "EBUSY", () => p.splitHugePage(BASE + 3 * PAGE));
    k.unlockFolio(lock);
    failsCleanly(k, "EINVAL", () => p.splitHugePage(BASE, { phase: "finish" as "start" }));
  });
});
