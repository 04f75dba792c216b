// Page migration of order-0 anonymous pages (mm/migrate.c, mm/rmap.c try_to_migrate_one(),
// remove_migration_pte()): the per-page status, PageAnonExclusive carried by the entries, a
// pinned page left where it was, the entries met by faults, fork, mprotect, munmap and reclaim
// while a migration is under way, and no frame leaked.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import { PROT_READ, MADV_PAGEOUT, MAP_SHARED, MAP_ANONYMOUS, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_GET, type Kernel, type Process } from "../../src/index.js";
import { makeStrategy, defineStrategy, MREMAP_MAYMOVE, MREMAP_FIXED, type StrategyError } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, errnoOf, failsCleanly } from "./helpers.js";

const EAGAIN = -11, EACCES = -13, EFAULT = -14, ENOENT = -2, EBUSY = -16, ENOMEM = -12, ENOSYS = -38;

function oneWrittenPage(k: Kernel, value = 7): { p: Process; a: number; pfn: number } {
  const p = k.spawn();
  const a = p.mmap(null, PAGE, RW, PRIV);
  p.write(a, value);
  return { p, a, pfn: p.pfnAt(a)! };
}

describe.each(STRATEGIES)("migratePages (%s)", (strategy) => {
  it("moves a written page to a new frame, keeps its contents, counts PGMIGRATE_SUCCESS and leaks nothing", () => {
    const k = kernel(strategy);
    const { p, a, pfn } = oneWrittenPage(k, 42);
    const used = k.usedFrames;
    const m = p.migratePages(a, PAGE);
    expect(m.state).toBe("done");
    expect(m.status).toEqual([0]);
    expect([m.succeeded, m.failed]).toEqual([1, 0]);
    const moved = p.pfnAt(a)!;
    expect(moved).not.toBe(pfn);
    expect(k.ops.pageTestFlag(pfn, C.PG_buddy)).toBe(true); // the old frame went back
    expect(k.usedFrames).toBe(used);
    expect(p.read(a)).toBe(42);
    const c = k.counters();
    expect([c.pgmigrateSuccess, c.pgmigrateFail, c.copies]).toEqual([1, 0, 0]);
    // a writable entry: the page comes back writable and exclusive, the next write faults nothing
    p.write(a, 43);
    expect(p.pfnAt(a)).toBe(moved);
    expect(k.counters().wpFaults).toBe(0);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("reports each page's status: none mapped (-ENOENT), the zero page and no VMA (-EFAULT)", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    p.write(a, 1);
    expect(p.read(a + PAGE)).toBe(0); // the zero page
    p.munmap(a + 3 * PAGE, PAGE);
    const m = p.migratePages(a, 4 * PAGE);
    expect(m.status).toEqual([0, EFAULT, ENOENT, EFAULT]);
    expect([m.succeeded, m.failed]).toEqual([1, 0]);
    expect(k.counters().pgmigrateFail).toBe(0);
  });

  it("a page other processes map is -EACCES without MPOL_MF_MOVE_ALL, and moves for all of them with it", () => {
    const k = kernel(strategy);
    const { p, a, pfn } = oneWrittenPage(k, 5);
    const c = p.fork();
    expect(c.pfnAt(a)).toBe(pfn);
    expect(p.migratePages(a, PAGE).status).toEqual([EACCES]);
    expect(p.pfnAt(a)).toBe(pfn);
    const m = p.migratePages(a, PAGE, { all: true });
    expect(m.status).toEqual([0]);
    const moved = p.pfnAt(a)!;
    expect(moved).not.toBe(pfn);
    expect(c.pfnAt(a)).toBe(moved); // the rmap walk reached the child too
    expect(k.ops.folioMapcount(moved)).toBe(2);
    expect([p.read(a), c.read(a)]).toEqual([5, 5]);
    c.write(a, 6); // still COW-shared: the child copies
    expect([p.read(a), c.read(a)]).toEqual([5, 6]);
  });

  it("a pinned page is not migrated: -EAGAIN, PGMIGRATE_FAIL, the mapping and the pin as they were", () => {
    const k = kernel(strategy);
    const { p, a, pfn } = oneWrittenPage(k, 9);
    const pin = p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const exclusive = k.ops.PageAnonExclusive(pfn);
    const m = p.migratePages(a, PAGE);
    expect(m.status).toEqual([EAGAIN]);
    expect([m.succeeded, m.failed]).toEqual([0, 1]);
    expect(k.counters().pgmigrateFail).toBe(1);
    expect(p.pfnAt(a)).toBe(pfn);
    expect(k.ops.PageAnonExclusive(pfn)).toBe(exclusive);
    pin.write(0, 10);
    expect(p.read(a)).toBe(10);
    expect(k.findings).toEqual([]);
  });

  it("a page someone holds a reference to (a GUP reference, an isolation) stays: the refcount check fails", () => {
    const k = kernel(strategy);
    const { p, a, pfn } = oneWrittenPage(k, 3);
    const ref = p.pinUserPages(a, 1, FOLL_GET);
    expect(p.migratePages(a, PAGE).status).toEqual([EAGAIN]);
    expect(p.pfnAt(a)).toBe(pfn);
    ref.release();
    const iso = k.isolate(p.pid, a);
    expect(p.migratePages(a, PAGE).status).toEqual([EBUSY]); // not on the LRU
    k.putback(iso);
    expect(p.migratePages(a, PAGE).status).toEqual([0]);
  });

  it("no frame to migrate to: -ENOMEM, nothing changed", () => {
    const k = kernel(strategy);
    const { p, a, pfn } = oneWrittenPage(k, 3);
    k.injectFailure("frame", { nth: 1 });
    expect(p.migratePages(a, PAGE).status).toEqual([ENOMEM]);
    expect(p.pfnAt(a)).toBe(pfn);
    expect(k.counters().pgmigrateFail).toBe(1);
  });

  it("a shared-memory page is -ENOSYS (not modelled yet) and stays", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(a, 4);
    const pfn = p.pfnAt(a);
    expect(p.migratePages(a, PAGE).status).toEqual([ENOSYS]);
    expect(p.pfnAt(a)).toBe(pfn);
    expect(k.counters().pgmigrateFail).toBe(0); // never isolated: add_folio_for_migration() refused it
  });

  it("the process exits while its page is under migration: finish() frees both frames", () => {
    const k = kernel(strategy);
    const { p, a } = oneWrittenPage(k);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(k.heldFrames().map((f) => f.holders.map((h) => h.kind))).toEqual([["isolated"], ["migration"]]);
    p.exit();
    m.finish();
    expect(m.status).toEqual([0]);
    expect(k.heldFrames()).toEqual([]);
    expect(errnoOf(() => p.migratePages(a, PAGE))).toBe("ESRCH");
  });

  it("bad ranges are EINVAL and change nothing", () => {
    const k = kernel(strategy);
    const { p, a } = oneWrittenPage(k);
    failsCleanly(k, "EINVAL", () => p.migratePages(a + 1, PAGE));
    failsCleanly(k, "EINVAL", () => p.migratePages(a, 0));
    failsCleanly(k, "EINVAL", () => p.migratePages(a, 2 ** 50));
    failsCleanly(k, "EINVAL", () => p.migratePages(a, PAGE, { phase: "hold" as "start" }));
  });
});

describe("migration entries keep PageAnonExclusive (6c287605fd56)", () => {
  function roExclusive(k: Kernel): { p: Process; a: number } {
    const { p, a } = oneWrittenPage(k, 11);
    p.mprotect(a, PAGE, PROT_READ);
    return { p, a };
  }

  it("anon-exclusive: a R/O exclusive page gets a readable-exclusive entry and comes back exclusive", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = roExclusive(k);
    const entries: string[] = [];
    const restored: boolean[] = [];
    k.on("set_migration_pte", (e) => entries.push(e.entry));
    k.on("remove_migration_pte", (e) => restored.push(e.exclusive));
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(m.status).toEqual([1]);
    expect(k.ops.migrationEntry(p.mm, a)).toMatchObject({ type: "read-exclusive", young: true, dirty: true });
    m.finish();
    expect(m.status).toEqual([0]);
    expect(entries).toEqual(["read-exclusive"]);
    expect(restored).toEqual([true]);
    expect(k.ops.PageAnonExclusive(p.pfnAt(a)!)).toBe(true);
  });

  it("anon-exclusive without readable-exclusive entries: the page comes back possibly shared", () => {
    const k = kernel("anon-exclusive", { knobs: { migrationReadExclusive: false } });
    const { p, a } = roExclusive(k);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read");
    m.finish();
    expect(k.ops.PageAnonExclusive(p.pfnAt(a)!)).toBe(false);
  });
});

describe("the strategies' migration entries", () => {
  it("the knob stands for 6c287605fd56 in 5.19; the older strategies have read/write entries only", () => {
    expect(makeStrategy("anon-exclusive").migrationReadExclusive).toBe(true);
    expect(makeStrategy("anon-exclusive", { migrationReadExclusive: false }).kernels).toMatch(/^no released kernel/);
    expect(makeStrategy("mapcount").migrationReadExclusive).toBeUndefined();
    expect(makeStrategy("pagecount").tracksAnonExclusive).toBe(false);
  });

  it("a custom strategy may leave the member out (then: tracksAnonExclusive), but not give a non-boolean", () => {
    const { migrationReadExclusive: _, ...rest } = makeStrategy("anon-exclusive");
    void _;
    const k = kernel(defineStrategy({ ...rest, id: "no-member" }));
    const { p, a } = oneWrittenPage(k);
    p.mprotect(a, PAGE, PROT_READ);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read-exclusive");
    m.finish();
    let problems: readonly string[] = [];
    try {
      defineStrategy({ ...rest, id: "bad", migrationReadExclusive: "yes" as unknown as boolean });
    } catch (e) {
      problems = (e as StrategyError).problems;
    }
    expect(problems).toEqual(['migrationReadExclusive: must be true or false, not "yes"']);
  });
});

describe("while a page is under migration (two phases)", () => {
  it("a fault on the entry waits (migration_entry_wait()) and completes after finish(); read() is EDEADLK", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 21);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    const before = k.counters();
    failsCleanly(k, "EDEADLK", () => p.read(a));
    const r = p.access(true, a, 22);
    expect(r.state).toBe("blocked");
    expect(r.waitingOn?.reason).toBe("migration");
    expect(r.resume().state).toBe("blocked"); // not woken yet
    expect(k.counters().faultWaits).toBe(before.faultWaits + 1);
    m.finish();
    expect(r.woken).toBe(true);
    expect(r.resume().state).toBe("done");
    expect(p.read(a)).toBe(22);
    expect(k.counters().wpFaults).toBe(0); // a writable entry came back writable
  });

  it("GUP on an entry fails with EDEADLK (GUP-fast finds no present PTE, the slow path's fault would wait)", () => {
    const k = kernel("anon-exclusive");
    const { p, a, pfn } = oneWrittenPage(k);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(errnoOf(() => p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE))).toBe("EDEADLK");
    expect(k.ops.migrationEntry(p.mm, a)).toMatchObject({ pfn, type: "write" });
    expect(k.pins.active.size).toBe(0);
    m.finish();
    expect(p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE).pfns).toEqual([p.pfnAt(a)]);
  });

  it.each(STRATEGIES)("%s: fork copies writable entries as readable in parent and child (seed I.7d); both map the new page R/O", (strategy) => {
    const k = kernel(strategy);
    const { p, a } = oneWrittenPage(k, 31);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("write");
    const c = p.fork();
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read");
    expect(k.ops.migrationEntry(c.mm, a)?.type).toBe("read");
    expect(c.rss().anon).toBe(1);
    m.finish();
    expect(m.status).toEqual([0]);
    const moved = p.pfnAt(a)!;
    expect(c.pfnAt(a)).toBe(moved);
    expect(k.ops.folioMapcount(moved)).toBe(2);
    expect(k.ops.PageAnonExclusive(moved)).toBe(false);
    c.write(a, 32);
    expect([p.read(a), c.read(a)]).toEqual([31, 32]);
    expect(k.findings).toEqual([]);
  });

  it("fork of a readable-exclusive entry makes it readable too (seed I.7d)", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 31);
    p.mprotect(a, PAGE, PROT_READ);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read-exclusive");
    const c = p.fork();
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read");
    expect(k.ops.migrationEntry(c.mm, a)?.type).toBe("read");
    m.finish();
    expect(k.ops.PageAnonExclusive(p.pfnAt(a)!)).toBe(false);
  });

  it("mprotect makes a writable entry readable-exclusive (seed I.8): the page comes back R/O and exclusive", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 41);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    p.mprotect(a, PAGE, PROT_READ);
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read-exclusive");
    p.mprotect(a, PAGE, RW);
    expect(k.ops.migrationEntry(p.mm, a)?.type).toBe("read-exclusive"); // never made writable again
    m.finish();
    const moved = p.pfnAt(a)!;
    expect(k.ops.PageAnonExclusive(moved)).toBe(true);
    p.write(a, 42); // reused: exclusive
    expect(p.pfnAt(a)).toBe(moved);
    expect(k.counters().copies).toBe(0);
  });

  it("munmap of the entry drops it: finish() moves a page nobody maps, and both frames go", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    expect(p.rss().anon).toBe(1);
    p.munmap(a, PAGE);
    expect(p.rss().anon).toBe(0);
    m.finish();
    expect(m.status).toEqual([0]);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("mremap moves the entry; finish() finds it at the new address through the rmap", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 12);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    const b = p.mremap(a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 16 * PAGE);
    expect(b).toBe(a + 16 * PAGE);
    expect(k.ops.migrationEntry(p.mm, b)?.type).toBe("write");
    m.finish();
    expect(m.status).toEqual([0]);
    expect(p.read(b)).toBe(12);
  });

  it("a swap-cache folio moves with its slot: the process still holding the swap entry swaps the new frame in", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 13);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const c = p.fork();
    expect(c.read(a)).toBe(13); // the child swaps it in: in the swap cache, mapped by the child
    const old = c.pfnAt(a)!;
    expect(c.migratePages(a, PAGE).status).toEqual([0]);
    const moved = c.pfnAt(a)!;
    expect(moved).not.toBe(old);
    expect(p.folioAt(a)).toBe(moved); // the parent's swap entry now finds the new frame
    expect(p.read(a)).toBe(13);
    expect(p.pfnAt(a)).toBe(moved);
    expect(k.counters().swapins).toBe(2); // the child's read from the slot, the parent's from the swap cache
  });

  it("MADV_PAGEOUT and reclaim pass the page by; a snapshot is refused; finish() twice is EINVAL", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = oneWrittenPage(k, 8);
    const m = p.migratePages(a, PAGE, { phase: "start" });
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(k.reclaim()).toBe(0);
    expect(k.ops.migrationEntry(p.mm, a)).not.toBeNull();
    expect(errnoOf(() => k.snapshot())).toBe("EBUSY");
    m.finish();
    expect(errnoOf(() => m.finish())).toBe("EINVAL");
    expect(p.read(a)).toBe(8);
  });

  it("a failed migration (a reference taken meanwhile is impossible, so: a lock) restores the entries", () => {
    const k = kernel("anon-exclusive");
    const { p, a, pfn } = oneWrittenPage(k, 8);
    k.lockFolio(pfn);
    expect(p.migratePages(a, PAGE).status).toEqual([EAGAIN]);
    k.unlockFolio(pfn);
    expect(p.pfnAt(a)).toBe(pfn);
    expect(k.ops.PageAnonExclusive(pfn)).toBe(true);
  });
});

describe("the oracle sees migration as invisible", () => {
  it("a migration that moved a page under a coherent pin would be a wrong COW", () => {
    const k = kernel("anon-exclusive");
    const { p, a, pfn } = oneWrittenPage(k);
    p.rdmaRegister(a, PAGE, true);
    // what remove_migration_pte() would report had the pinned page moved (it cannot: see above)
    k.trace.points.remove_migration_pte.emit({ pid: p.pid, address: a, pfn, newPfn: pfn + 1, exclusive: true });
    expect(k.findings.map((f) => [f.kind, f.pfn])).toEqual([["wrong-cow", pfn]]);
    expect(k.counters().wrongCow).toBe(1);
  });

  it("a failed migration restores the old frame: no finding", () => {
    const k = kernel("anon-exclusive");
    const { p, a, pfn } = oneWrittenPage(k);
    p.rdmaRegister(a, PAGE, true);
    k.trace.points.remove_migration_pte.emit({ pid: p.pid, address: a, pfn, newPfn: pfn, exclusive: true });
    expect(k.findings).toEqual([]);
  });
});
