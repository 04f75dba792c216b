// Migration of large folios (mm/migrate.c migrate_pages_batch(), try_split_folio(); mm/huge_memory.c
// set_pmd_migration_entry(), remove_migration_pmd(), pmd_migration_entry_wait()): a PMD-mapped
// THP moves whole under PMD migration entries, a PTE-mapped large folio under PTE entries, a
// pinned one stays, one without a free folio of its order is split and its pieces moved; and
// memory_failure() of a THP splits it first (try_to_split_thp_page()).
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import { MADV_HUGEPAGE, MAP_FIXED, PROT_READ, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, type Kernel, type Process, type ThpOptions } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, errnoOf } from "./helpers.js";

const HP = 2 << 20;
const NR = 512;
const BASE = 0x7f0000000000; // 2 MiB aligned
const EAGAIN = -11;

/** A process whose first 2 MiB at BASE is one PMD-mapped THP, page i holding 100 + i. */
function thpProcess(k: Kernel): { p: Process; head: number } {
  const p = k.spawn();
  p.mmap(BASE, 2 * HP, RW, PRIV | MAP_FIXED);
  p.madvise(BASE, 2 * HP, MADV_HUGEPAGE);
  for (const i of [0, 1, 5, 511]) p.write(BASE + i * PAGE, 100 + i);
  expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
  return { p, head: p.folioAt(BASE)! };
}

const thpKernel = (strategy: (typeof STRATEGIES)[number]) => kernel(strategy, { memory: "32M" });

function expectContents(p: Process): void {
  for (const i of [0, 1, 5, 511]) expect(p.read(BASE + i * PAGE)).toBe(100 + i);
  expect(p.read(BASE + 7 * PAGE)).toBe(0);
}

describe.each(STRATEGIES)("migratePages of a PMD-mapped THP (%s)", (strategy) => {
  it("moves it whole into a fresh THP mapped by a PMD again: THP_MIGRATION_SUCCESS, 512 pages, the old one freed", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const used = k.usedFrames;
    const m = p.migratePages(BASE, HP);
    expect(m.status).toEqual(new Array(NR).fill(0));
    expect([m.succeeded, m.failed]).toEqual([NR, 0]);
    const moved = p.folioAt(BASE)!;
    expect(moved).not.toBe(head);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect(k.ops.folioOrder(moved)).toBe(9);
    expect(k.ops.folioEntireMapcount(moved)).toBe(1);
    expect(k.ops.pageTestFlag(head, C.PG_buddy)).toBe(true);
    expect(k.usedFrames).toBe(used);
    const c = k.counters();
    expect([c.thp_migration_success, c.thp_migration_fail, c.thp_migration_split, c.pgmigrateSuccess, c.thp_split_pmd]).toEqual([1, 0, 0, NR, 0]);
    expectContents(p);
    // the writable entry came back writable and exclusive: no fault, no copy
    p.write(BASE + 9 * PAGE, 9);
    expect([k.counters().wpFaults, k.counters().copies]).toEqual([0, 0]);
    expect(k.ops.PageAnonExclusive(moved)).toBe(true);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("a range of one page moves the whole THP: status [0], PGMIGRATE_SUCCESS counts the folio's 512 pages", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const m = p.migratePages(BASE + 5 * PAGE, PAGE);
    expect(m.status).toEqual([0]);
    expect([m.succeeded, m.failed]).toEqual([NR, 0]);
    expect(p.folioAt(BASE)).not.toBe(head);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect([k.counters().pgmigrateSuccess, k.counters().thp_migration_success]).toEqual([NR, 1]);
    expectContents(p);
  });

  it("one page of a THP with no free 2 MiB: split, and all 512 pieces migrate (split_folio_to_list())", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    k.injectFailure("frame", { nth: 1 });
    const m = p.migratePages(BASE + PAGE, PAGE);
    expect(m.status).toEqual([0]);
    expect(m.succeeded).toBe(NR);
    expect(k.counters().thp_migration_split).toBe(1);
    expect(p.pfnAt(BASE + 300 * PAGE)).not.toBe(head + 300);
    expectContents(p);
  });

  it("a pinned THP stays where it was: -EAGAIN for every page, THP_MIGRATION_FAIL, the pin coherent", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const pin = p.pinUserPages(BASE + PAGE, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const m = p.migratePages(BASE, HP);
    expect(m.status).toEqual(new Array(NR).fill(EAGAIN));
    expect([m.succeeded, m.failed]).toEqual([0, NR]);
    const c = k.counters();
    expect([c.thp_migration_fail, c.pgmigrateFail, c.thp_migration_success]).toEqual([1, NR, 0]);
    expect(p.folioAt(BASE)).toBe(head);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    pin.write(0, 77);
    expect(p.read(BASE + PAGE)).toBe(77);
    pin.release();
    expect(k.findings).toEqual([]);
  });

  it("fork of a PMD migration entry (copy_huge_pmd()): writable becomes readable in both, both map the new THP", () => {
    const k = thpKernel(strategy);
    const { p } = thpProcess(k);
    const m = p.migratePages(BASE, HP, { phase: "start" });
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(2);
    expect(k.ops.migrationEntry(p.mm, BASE + 3 * PAGE)?.type).toBe("write");
    const c = p.fork();
    expect(k.ops.migrationEntry(p.mm, BASE)?.type).toBe("read");
    expect(k.ops.migrationEntry(c.mm, BASE)?.type).toBe("read");
    expect(c.rss().anon).toBe(NR);
    m.finish();
    expect([m.succeeded, m.failed]).toEqual([NR, 0]);
    const moved = p.folioAt(BASE)!;
    expect(c.folioAt(BASE)).toBe(moved);
    expect(k.ops.folioEntireMapcount(moved)).toBe(2);
    expect(k.ops.PageAnonExclusive(moved)).toBe(false);
    c.write(BASE + 5 * PAGE, 55);
    expect([p.read(BASE + 5 * PAGE), c.read(BASE + 5 * PAGE)]).toEqual([105, 55]);
    expectContents(p);
    expect(k.findings).toEqual([]);
  });

  it("no free 2 MiB to migrate to: the THP is split (THP_MIGRATION_SPLIT) and its 512 pages migrated one by one", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    k.injectFailure("frame", { nth: 1 });
    const m = p.migratePages(BASE, HP);
    expect(m.status).toEqual(new Array(NR).fill(0));
    const c = k.counters();
    expect([c.thp_migration_split, c.thp_migration_success, c.thp_migration_fail, c.pgmigrateSuccess, c.thp_split_pmd]).toEqual([1, 0, 0, NR, 1]);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    for (const i of [0, 1, 5, 511]) {
      const pfn = p.pfnAt(BASE + i * PAGE)!;
      expect(pfn).not.toBe(head + i);
      expect(k.ops.folioTestLarge(pfn)).toBe(false);
    }
    expectContents(p);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("a PTE-mapped THP (split PMD) moves whole into a fresh order-9 folio mapped by PTEs", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    p.mprotect(BASE, PAGE, PROT_READ); // splits the PMD, not the folio
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    const m = p.migratePages(BASE, HP);
    expect(m.status).toEqual(new Array(NR).fill(0));
    const moved = p.folioAt(BASE + PAGE)!;
    expect(moved).not.toBe(head);
    expect(k.ops.folioOrder(moved)).toBe(9);
    expect(p.pfnAt(BASE + 5 * PAGE)).toBe(moved + 5);
    expect(k.ops.folioMapcount(moved)).toBe(NR);
    expect(k.counters().thp_migration_success).toBe(1);
    expectContents(p);
    expect(errnoOf(() => p.write(BASE, 1))).toBe("EFAULT"); // still read-only there
    p.write(BASE + PAGE, 1);
    expect(p.pfnAt(BASE + PAGE)).toBe(moved + 1);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });
});

describe("a PMD migration entry while the THP is under migration", () => {
  it("a fault on it waits (pmd_migration_entry_wait()), maps nothing in its place, and completes after finish()", () => {
    const k = thpKernel("anon-exclusive");
    const { p } = thpProcess(k);
    const used = k.usedFrames;
    const m = p.migratePages(BASE, HP, { phase: "start" });
    const r = p.access(true, BASE + 5 * PAGE, 500);
    expect(r.state).toBe("blocked");
    expect(r.waitingOn?.reason).toBe("migration");
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(2);
    expect(errnoOf(() => p.read(BASE))).toBe("EDEADLK");
    m.finish();
    expect(r.resume().state).toBe("done");
    expect(p.read(BASE + 5 * PAGE)).toBe(500);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect(k.usedFrames).toBe(used);
  });

  it("a read-only exclusive THP gets a readable-exclusive PMD entry and comes back exclusive (anon-exclusive)", () => {
    const k = thpKernel("anon-exclusive");
    const { p } = thpProcess(k);
    p.mprotect(BASE, HP, PROT_READ);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    const m = p.migratePages(BASE, HP, { phase: "start" });
    expect(k.ops.migrationEntry(p.mm, BASE)?.type).toBe("read-exclusive");
    m.finish();
    const moved = p.folioAt(BASE)!;
    expect(k.ops.PageAnonExclusive(moved)).toBe(true);
    p.mprotect(BASE, HP, RW);
    p.write(BASE + 5 * PAGE, 6); // reused: exclusive, no copy
    expect(k.counters().copies).toBe(0);
    expect(p.folioAt(BASE)).toBe(moved);
  });

  it("munmap of the entry drops the RSS; finish() then frees both folios", () => {
    const k = thpKernel("anon-exclusive");
    const { p } = thpProcess(k);
    const m = p.migratePages(BASE, HP, { phase: "start" });
    p.munmap(BASE, HP);
    expect(p.rss().anon).toBe(0);
    m.finish();
    expect(m.status).toEqual(new Array(NR).fill(0));
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });
});

describe.each(STRATEGIES)("migratePages of an mTHP (%s)", (strategy) => {
  const ONLY_64K: ThpOptions = { sizes: { "64K": "always", "2M": "never" } };
  it("a 64 KiB folio moves whole into a fresh 64 KiB folio; PGMIGRATE_SUCCESS counts its 16 pages, no THP counter", () => {
    const k = kernel(strategy, { thp: ONLY_64K });
    const p = k.spawn();
    const a = p.mmap(BASE, 64 << 10, RW, PRIV | MAP_FIXED);
    p.write(a, 1);
    p.write(a + 15 * PAGE, 16);
    const old = p.folioAt(a)!;
    expect(k.ops.folioOrder(old)).toBe(4);
    const m = p.migratePages(a, 64 << 10);
    expect(m.status).toEqual(new Array(16).fill(0));
    const moved = p.folioAt(a)!;
    expect(moved).not.toBe(old);
    expect(k.ops.folioOrder(moved)).toBe(4);
    expect([p.read(a), p.read(a + 15 * PAGE), p.read(a + PAGE)]).toEqual([1, 16, 0]);
    const c = k.counters();
    expect([c.pgmigrateSuccess, c.thp_migration_success]).toEqual([16, 0]);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });
});

describe.each(STRATEGIES)("memory_failure() of a THP (%s)", (strategy) => {
  it("try_to_split_thp_page() splits the PMD and the folio; only the poisoned page is lost", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const out = k.memoryFailure(head + 5);
    expect(out).toEqual({ pfn: head + 5, type: "dirty LRU page", result: "Recovered", errno: null, killed: [] });
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    expect(k.ops.folioTestLarge(head)).toBe(false);
    expect(errnoOf(() => p.read(BASE + 5 * PAGE))).toBe("EHWPOISON");
    for (const i of [0, 1, 511]) expect(p.read(BASE + i * PAGE)).toBe(100 + i);
    expect(k.counters().thp_split_pmd).toBe(1);
  });

  it("a THP shared with a child by fork is split in both", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const c = p.fork();
    expect(c.folioAt(BASE)).toBe(head); // copy_huge_pmd() shared it
    expect(k.memoryFailure(head + 1).result).toBe("Recovered");
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    expect(k.ops.hugePmdAt(c.mm, BASE)).toBe(0);
    expect(errnoOf(() => p.read(BASE + PAGE))).toBe("EHWPOISON");
    expect(errnoOf(() => c.read(BASE + PAGE))).toBe("EHWPOISON");
    expect([p.read(BASE), c.read(BASE)]).toEqual([100, 100]);
  });

  it("a pinned THP cannot be split: unsplit thp, EHWPOISON, still mapped by its PMD", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const pin = p.pinUserPages(BASE, 1, FOLL_PIN | FOLL_LONGTERM);
    const out = k.memoryFailure(head + 5);
    expect(out).toMatchObject({ type: "unsplit thp", result: "Failed", errno: "EHWPOISON" });
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect(p.folioAt(BASE)).toBe(head);
    pin.release();
  });
});

describe.each(STRATEGIES)("migrate_vma_collect() over a PMD-mapped THP (%s)", (strategy) => {
  it("splits the THP (split_folio()) and collects the pieces: the range goes to the device, the rest stays order-0", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const d = p.openDmirror(4);
    expect(d.migrateToDevice(BASE + 4 * PAGE, 2)).toEqual([0, 0]);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    expect(k.ops.folioTestLarge(head)).toBe(false);
    expect(p.pfnAt(BASE + 4 * PAGE)).toBeNull(); // a device-private entry now
    expect(d.read(BASE + 5 * PAGE)).toBe(105);
    expect(p.pfnAt(BASE + PAGE)).toBe(head + 1);
    expect(k.counters().deviceMigrated).toBe(2);
    expectContents(p); // the page faulted back by migrate_to_ram()
  });

  it("the huge zero PMD is split (split_huge_pmd()); its zero pages are holes the device fills", () => {
    const k = thpKernel(strategy);
    const p = k.spawn();
    p.mmap(BASE, HP, RW, PRIV | MAP_FIXED);
    p.madvise(BASE, HP, MADV_HUGEPAGE);
    expect(p.read(BASE)).toBe(0);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    const d = p.openDmirror(2);
    expect(d.migrateToDevice(BASE, 2)).toEqual([0, 0]);
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(0);
    expect(k.counters().thp_split_pmd).toBe(1);
    expect(p.read(BASE + 2 * PAGE)).toBe(0);
    expect(p.pfnAt(BASE + 2 * PAGE)).toBe(0); // still the small zero page
  });

  it("a pinned THP cannot be split: its pages are skipped, still mapped by the PMD", () => {
    const k = thpKernel(strategy);
    const { p, head } = thpProcess(k);
    const pin = p.pinUserPages(BASE, 1, FOLL_PIN | FOLL_LONGTERM);
    const d = p.openDmirror(2);
    const st = d.migrateToDevice(BASE + PAGE, 2);
    expect(st).toEqual([-2, -2]); // migrate_vma_collect_skip(): nothing collected there
    expect(k.ops.hugePmdAt(p.mm, BASE)).toBe(1);
    expect(p.folioAt(BASE)).toBe(head);
    expect(k.counters().deviceMigrated).toBe(0);
    pin.release();
  });
});

describe.each(STRATEGIES)("transient.migration: compaction migrates the folio of a write-protect fault (%s)", (strategy) => {
  it("with probability 1 every COW fault finds a freshly migrated page; contents, counts and findings as without", () => {
    const runOnce = (migration: number) => {
      const k = kernel(strategy, { transient: { migration } });
      const p = k.spawn();
      const a = p.mmap(null, 2 * PAGE, RW, PRIV);
      p.write(a, 1);
      p.write(a + PAGE, 2);
      const c = p.fork();
      c.write(a, 3);
      p.write(a + PAGE, 4);
      expect([p.read(a), p.read(a + PAGE), c.read(a), c.read(a + PAGE)]).toEqual([1, 4, 3, 2]);
      const n = k.counters();
      return { findings: k.findings.map((f) => f.kind), copies: n.copies, migrated: n.pgmigrateSuccess };
    };
    const plain = runOnce(0);
    const compacted = runOnce(1);
    expect(plain.migrated).toBe(0);
    expect(compacted.migrated).toBe(2); // one per write-protect fault, before it decides
    expect([compacted.findings, compacted.copies]).toEqual([plain.findings, plain.copies]);
  });

});

describe("transient.migration and a pin", () => {
  it("compaction refuses a pinned page (folio_try_share_anon_rmap_pte()): PGMIGRATE_FAIL, the fault reuses it, the pin stays coherent", () => {
    const k = kernel("anon-exclusive", { transient: { migration: 1 }, knobs: { mprotectWriteUpgrade: false } });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const pin = p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    p.mprotect(a, PAGE, PROT_READ);
    p.mprotect(a, PAGE, RW); // stays read-only: the write faults
    p.write(a, 2);
    const c = k.counters();
    expect([c.pgmigrateSuccess, c.pgmigrateFail, c.wpFaults, c.reuses, c.copies]).toEqual([0, 1, 1, 1, 0]);
    expect(p.pfnAt(a)).toBe(pfn);
    pin.write(0, 5);
    expect(p.read(a)).toBe(5);
    pin.release();
  });
});
