// Device-private and device-exclusive memory (mm/migrate_device.c, mm/rmap.c
// make_device_exclusive_range(), mm/memory.c do_swap_page()'s device branches, the dmirror test
// driver of lib/test_hmm.c): the entries each path installs, the counts they leave, pinned pages
// refused, fork / mprotect / munmap / GUP / reclaim meeting the entries, and no frame leaked.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import { PROT_READ, PROT_NONE, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, createKernel, type Kernel, type Process } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, failsCleanly } from "./helpers.js";

const EBUSY = -16, ENOENT = -2, ENOMEM = -12;

function written(k: Kernel, pages: number): { p: Process; a: number } {
  const p = k.spawn();
  const a = p.mmap(null, pages * PAGE, RW, PRIV);
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE, 10 + i);
  return { p, a };
}

const entry = (k: Kernel, p: Process, a: number) => k.ops.deviceEntry(p.mm, a);

describe.each(STRATEGIES)("migrate_vma to device memory and back (%s)", (strategy) => {
  it("moves written pages into device pages mapped by writable device-private entries, and frees the system pages", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 2);
    const sys = [p.pfnAt(a)!, p.pfnAt(a + PAGE)!];
    const d = p.openDmirror(3);
    const used = k.usedFrames;
    expect(d.migrateToDevice(a, 2)).toEqual([0, 0]);
    const e0 = entry(k, p, a)!, e1 = entry(k, p, a + PAGE)!;
    expect([e0.kind, e0.writable, e1.kind, e1.writable]).toEqual(["private", true, "private", true]);
    expect(d.usedPages).toEqual([e0.pfn, e1.pfn]);
    expect(d.freePages).toBe(1);
    for (const pfn of sys) expect(k.ops.pageTestFlag(pfn, C.PG_buddy)).toBe(true);
    expect(k.usedFrames).toBe(used - 2);
    // the device page is mapped once, referenced once, anonymous, and exclusive where the strategy tracks it
    expect([k.ops.folioMapcount(e0.pfn), k.ops.folioRefCount(e0.pfn), k.ops.folioTestAnon(e0.pfn)]).toEqual([1, 1, true]);
    // the core keeps PG_anon_exclusive under every strategy; only anon-exclusive decides by it
    expect(k.ops.PageAnonExclusive(e0.pfn)).toBe(true);
    expect(p.pfnAt(a)).toBeNull();
    expect(p.rss()).toEqual({ anon: 2, shmem: 0, swap: 0 });
    const kinds = k.core.pagemap(p.mm, a, a + 2 * PAGE).map((r) => [r.kind & 0xff, r.pfn]);
    expect(kinds).toEqual([[C.PTE_KIND_DEVICE_PRIVATE, e0.pfn], [C.PTE_KIND_DEVICE_PRIVATE, e1.pfn]]);
    expect(d.read(a + PAGE)).toBe(11);
    const c = k.counters();
    expect([c.deviceMigrated, c.deviceFaults, c.deviceMigratedToRam, c.copies, c.wpFaults]).toEqual([2, 0, 0, 0, 0]);
  });

  it("a CPU access faults the page back (migrate_to_ram()): a fresh system page, writable and exclusive, the device page free again", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    const dev = entry(k, p, a)!.pfn;
    expect(p.read(a)).toBe(10);
    const pfn = p.pfnAt(a)!;
    expect(k.ops.pageTestFlag(pfn, C.PG_zone_device)).toBe(false);
    expect(entry(k, p, a)).toBeNull();
    expect([k.ops.folioRefCount(dev), d.freePages]).toEqual([0, 1]);
    p.write(a, 20); // the writable migration entry came back writable: no write fault
    expect(p.pfnAt(a)).toBe(pfn);
    const c = k.counters();
    expect([c.deviceFaults, c.deviceMigratedToRam, c.wpFaults, c.copies]).toEqual([1, 1, 0, 0]);
    expect(k.ops.PageAnonExclusive(pfn)).toBe(true);
  });

  it("HMM_DMIRROR_MIGRATE_TO_SYS brings the device's pages back; system pages and holes are -ENOENT", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 2);
    const q = p.mmap(null, 2 * PAGE, RW, PRIV);
    const d = p.openDmirror(2);
    expect(d.migrateToDevice(a, 1)).toEqual([0]);
    expect(d.migrateToSystem(a, 2)).toEqual([0, ENOENT]);
    expect(d.migrateToSystem(q, 2)).toEqual([ENOENT, ENOENT]);
    expect([p.read(a), p.read(a + PAGE), d.freePages]).toEqual([10, 11, 2]);
    expect(k.counters().deviceMigratedToRam).toBe(1);
  });

  it("a hole and the zero page get zeroed device pages (migrate_vma_insert_page()): exclusive, writable, counted", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const q = p.mmap(null, 2 * PAGE, RW, PRIV);
    expect(p.read(q + PAGE)).toBe(0); // the zero page
    const d = p.openDmirror(2);
    expect(d.migrateToDevice(q, 2)).toEqual([0, 0]);
    const e = [entry(k, p, q)!, entry(k, p, q + PAGE)!];
    expect(e.map((x) => [x.kind, x.writable, k.ops.folioMapcount(x.pfn), k.ops.folioRefCount(x.pfn), k.ops.PageAnonExclusive(x.pfn)]))
      .toEqual([["private", true, 1, 1, true], ["private", true, 1, 1, true]]);
    expect(p.rss().anon).toBe(2);
    expect([d.read(q), d.read(q + PAGE)]).toEqual([0, 0]);
    p.write(q, 7); // back to a system page, writable: no write fault
    expect([p.read(q), p.read(q + PAGE)]).toEqual([7, 0]);
    const c = k.counters();
    expect([c.deviceMigrated, c.deviceFaults, c.wpFaults, c.copies]).toEqual([2, 2, 0, 0]);
  });

  it("a read-only exclusive page keeps PageAnonExclusive through a readable-exclusive migration entry (6c287605fd56)", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    p.mprotect(a, PAGE, PROT_READ);
    const d = p.openDmirror(1);
    expect(d.migrateToDevice(a, 1)).toEqual([0]);
    const dev = entry(k, p, a)!;
    const keeps = strategy === "anon-exclusive";
    expect([dev.writable, k.ops.PageAnonExclusive(dev.pfn)]).toEqual([false, keeps]);
    p.mprotect(a, PAGE, RW);
    p.write(a, 11); // back to RAM read-only; the write fault reuses the page it knows exclusive
    const c = k.counters();
    expect([c.deviceFaults, c.wpFaults, c.reuses, c.copies]).toEqual([1, 1, 1, 0]);
    expect(p.read(a)).toBe(11);
  });

  it("a page in the swap cache leaves it for device memory (folio_free_swap())", () => {
    const k = kernel(strategy, { swap: "1M" });
    const { p, a } = written(k, 1);
    k.drainLru();
    expect(k.reclaim()).toBe(1);
    expect(p.read(a)).toBe(10); // swapped in, still in the swap cache
    expect(k.ops.pageTestFlag(p.pfnAt(a)!, C.PG_swapcache)).toBe(true);
    const d = p.openDmirror(1);
    expect(d.migrateToDevice(a, 1)).toEqual([0]);
    expect(k.usedSwapSlots()).toEqual([]);
    expect(p.read(a)).toBe(10);
  });

  it("a device without free pages leaves the rest where it was (-ENOMEM)", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 3);
    const d = p.openDmirror(2);
    expect(d.migrateToDevice(a, 3)).toEqual([0, 0, ENOMEM]);
    expect(p.pfnAt(a + 2 * PAGE)).not.toBeNull();
    expect(p.read(a + 2 * PAGE)).toBe(12);
  });

  it("refuses a pinned page and leaves its mapping, exclusivity and references as they were", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const pin = p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const pfn = p.pfnAt(a)!;
    const before = [k.ops.folioRefCount(pfn), k.ops.folioMapcount(pfn), k.ops.PageAnonExclusive(pfn)];
    const d = p.openDmirror(1);
    expect(d.migrateToDevice(a, 1)).toEqual([EBUSY]);
    expect(p.pfnAt(a)).toBe(pfn);
    expect([k.ops.folioRefCount(pfn), k.ops.folioMapcount(pfn), k.ops.PageAnonExclusive(pfn)]).toEqual(before);
    expect(k.ops.pageTestFlag(pfn, C.PG_locked)).toBe(false);
    expect(d.freePages).toBe(1);
    pin.write(0, 5);
    expect(p.read(a)).toBe(5);
    expect(k.findings).toEqual([]);
  });

  it("fork: both device-private entries become readable and share the page (I.7b); a child's write brings it back and copies", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    const dev = entry(k, p, a)!.pfn;
    const c = p.fork();
    expect([entry(k, p, a)!.writable, entry(k, c, a)!.writable]).toEqual([false, false]);
    expect([k.ops.folioMapcount(dev), k.ops.folioRefCount(dev), k.ops.PageAnonExclusive(dev)]).toEqual([2, 2, false]);
    expect(c.rss().anon).toBe(1);
    c.write(a, 30);
    expect([p.read(a), c.read(a)]).toEqual([10, 30]);
    expect(d.freePages).toBe(1);
    const n = k.counters();
    expect([n.deviceFaults, n.deviceMigratedToRam, n.copies, n.necessaryCow]).toEqual([1, 1, 1, 1]);
  });

  it("mprotect makes a writable device-private entry readable, and PROT_WRITE does not make it writable again", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    p.mprotect(a, PAGE, PROT_READ);
    expect(entry(k, p, a)!.writable).toBe(false);
    p.mprotect(a, PAGE, RW);
    expect(entry(k, p, a)!.writable).toBe(false);
    expect(() => d.write(a, 1)).toThrow(/EPERM/);
    p.write(a, 11); // migrate_to_ram() maps it read-only (a readable migration entry); the write reuses
    expect(p.read(a)).toBe(11);
    expect(k.counters().copies).toBe(0);
  });

  it("munmap and exit free device pages to their device; after remove() nothing is held", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 2);
    const d = p.openDmirror(2);
    d.migrateToDevice(a, 2);
    p.munmap(a, PAGE);
    expect(d.freePages).toBe(1);
    expect(p.rss().anon).toBe(1);
    expect(() => d.remove()).toThrow(/EBUSY/);
    p.exit();
    expect(d.freePages).toBe(2);
    expect(k.heldFrames().map((f) => f.holders)).toEqual([[{ kind: "device", pgmap: d.pgmap.id, free: true }], [{ kind: "device", pgmap: d.pgmap.id, free: true }]]);
    d.remove();
    expect(k.heldFrames()).toEqual([]);
  });

  it("GUP of a device-private page faults it back to system memory first", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    const pin = p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const pfn = p.pfnAt(a)!;
    expect(pin.pin.pfns).toEqual([pfn]);
    expect(k.ops.pageTestFlag(pfn, C.PG_zone_device)).toBe(false);
    expect([k.counters().deviceFaults, d.freePages]).toEqual([1, 1]);
    expect(pin.read(0)).toBe(10);
  });

  it("reclaim passes device pages by: they are on no LRU", () => {
    const k = kernel(strategy, { swap: "1M" });
    const { p, a } = written(k, 2);
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    k.drainLru();
    k.reclaim();
    expect(entry(k, p, a)?.kind).toBe("private");
    expect(p.rss()).toEqual({ anon: 1, shmem: 0, swap: 1 });
    expect([p.read(a), p.read(a + PAGE)]).toEqual([10, 11]);
  });
});

describe.each(STRATEGIES)("device-exclusive entries (%s)", (strategy) => {
  it("make_device_exclusive_range(): the PTE becomes a writable device-exclusive entry keeping the reference, not the map count", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const pfn = p.pfnAt(a)!;
    const exclusive = k.ops.PageAnonExclusive(pfn);
    const d = p.openDmirror(1);
    expect(d.makeExclusive(a, 1)).toEqual([0]);
    expect(entry(k, p, a)).toEqual({ pfn, kind: "exclusive", writable: true });
    expect([k.ops.folioMapcount(pfn), k.ops.folioRefCount(pfn), k.ops.PageAnonExclusive(pfn)]).toEqual([0, 1, exclusive]);
    expect(p.rss().anon).toBe(1);
    expect(d.read(a)).toBe(10);
    d.write(a, 11); // the device's atomic access: the entry stays
    expect(entry(k, p, a)?.kind).toBe("exclusive");
    expect(p.read(a)).toBe(11); // remove_device_exclusive_entry()
    expect(p.pfnAt(a)).toBe(pfn);
    p.write(a, 12); // restored writable and dirty: no write fault
    const c = k.counters();
    expect([c.deviceExclusive, c.deviceExclusiveRestored, c.wpFaults, c.copies]).toEqual([1, 1, 0, 0]);
  });

  it("a page shared with a child is copied for the device first (GUP with FOLL_WRITE breaks COW)", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const c = p.fork();
    const d = p.openDmirror(1);
    expect(d.makeExclusive(a, 1)).toEqual([0]);
    expect(c.read(a)).toBe(10);
    expect(k.counters().copies).toBe(1);
    expect(entry(k, c, a)).toBeNull();
  });

  it("fork restores the entry, then copies a pinned page (shares it on ≤ 5.7) and shares an unpinned one", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 2);
    const pin = p.pinUserPages(a, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM);
    const d = p.openDmirror(1);
    expect(d.makeExclusive(a, 2)).toEqual([0, 0]);
    const c = p.fork();
    expect([entry(k, p, a), entry(k, p, a + PAGE)]).toEqual([null, null]);
    const copied = strategy !== "mapcount";
    expect(c.pfnAt(a) !== p.pfnAt(a)).toBe(copied);
    expect(c.pfnAt(a + PAGE)).toBe(p.pfnAt(a + PAGE));
    const n = k.counters();
    expect([n.deviceExclusiveRestored, n.forkCopies]).toEqual([2, copied ? 1 : 0]);
    pin.write(0, 40);
    expect(p.read(a)).toBe(40);
    expect(c.read(a)).toBe(copied ? 10 : 40);
  });

  it("munmap of a device-exclusive entry drops its reference and frees the page", () => {
    const k = kernel(strategy);
    const { p, a } = written(k, 1);
    const pfn = p.pfnAt(a)!;
    p.openDmirror(1).makeExclusive(a, 1);
    p.munmap(a, PAGE);
    expect(k.ops.pageTestFlag(pfn, C.PG_buddy)).toBe(true);
    expect(p.rss().anon).toBe(0);
  });
});

describe("the error contract of the device", () => {
  it("EINVAL for a misaligned range, one outside a VMA, or a shared mapping; nothing changed", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = written(k, 1);
    const s = p.mmap(null, PAGE, RW, 0x21);
    p.write(s, 3);
    const d = p.openDmirror(1);
    failsCleanly(k, "EINVAL", () => d.migrateToDevice(a + 1, 1));
    failsCleanly(k, "EINVAL", () => d.migrateToDevice(a, 2));
    failsCleanly(k, "EINVAL", () => d.migrateToDevice(s, 1));
    failsCleanly(k, "EINVAL", () => d.makeExclusive(a, 0));
    failsCleanly(k, "EINVAL", () => d.write(a, -1));
    p.mprotect(a, PAGE, PROT_READ);
    failsCleanly(k, "EFAULT", () => d.makeExclusive(a, 1)); // get_user_pages(FOLL_WRITE) of a read-only mapping
    failsCleanly(k, "EPERM", () => d.write(a, 1)); // hmm_vma_fault(): no VM_WRITE
    p.mprotect(a, PAGE, PROT_NONE);
    failsCleanly(k, "EFAULT", () => d.read(a)); // hmm_vma_walk_test(): no VM_READ
  });

  it("ENOMEM when fewer frames are free than device pages asked for; EBUSY removing a device in use; nothing changed", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = written(k, 1);
    failsCleanly(k, "ENOMEM", () => p.openDmirror(1 << 20));
    const d = p.openDmirror(1);
    d.migrateToDevice(a, 1);
    failsCleanly(k, "EBUSY", () => d.remove());
  });

  it("a snapshot keeps the device: the restored kernel faults the page back through the same driver", () => {
    const k = kernel("anon-exclusive");
    const { p, a } = written(k, 1);
    p.openDmirror(1).migrateToDevice(a, 1);
    const r = createKernel({ snapshot: k.snapshot() });
    expect(r.process(p.pid).read(a)).toBe(10);
    expect(r.counters().deviceFaults).toBe(1);
  });
});
