// memory_failure() and MADV_HWPOISON (mm/memory-failure.c, mm/madvise.c): hwpoison entries in
// place of every mapping, SIGBUS on access, fork copying the entries with PageAnonExclusive
// left stale (seed 000 I.7c), zap dropping them, the frame lost for good.
import { describe, it, expect } from "vitest";
import {
  C, PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_SOFT_DIRTY, MADV_HWPOISON, MADV_PAGEOUT, PROT_READ, MAP_SHARED, MAP_ANONYMOUS, MREMAP_MAYMOVE, MREMAP_FIXED, CowsimError, type Kernel, type Process, type TraceEvents,
} from "../../src/index.js";
import { kernel, failsCleanly, errnoOf, STRATEGIES, RW, PRIV, PAGE } from "./helpers.js";

/** The entry at `addr` as pagemap shows it: [kind, pfn], or null. */
function entryAt(p: Process, addr: number): [number, number] | null {
  const r = p.kernel.core.pagemap(p.mm, addr, addr + PAGE)[0];
  return r ? [r.kind & 0xff, r.pfn] : null;
}

function events(k: Kernel): TraceEvents["memory_failure_event"][] {
  const out: TraceEvents["memory_failure_event"][] = [];
  k.on("memory_failure_event", (e) => out.push({ ...e, killed: [...e.killed] }));
  return out;
}

function sigbus(fn: () => unknown): CowsimError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CowsimError) return e;
    throw e;
  }
  throw new Error("expected SIGBUS, got none");
}

describe.each(STRATEGIES)("memory_failure() under %s", (strategy) => {
  it("MADV_HWPOISON of a dirty exclusive page: a hwpoison entry, SIGBUS on access, the frame lost", () => {
    const k = kernel(strategy);
    const ev = events(k);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 7);
    p.write(a + PAGE, 8);
    const pfn = p.pfnAt(a)!;
    const free = k.core.freePages();
    p.madvise(a, PAGE, MADV_HWPOISON);

    expect(entryAt(p, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect(ev).toEqual([{ pfn, type: "dirty LRU page", result: "Recovered", killed: [p.pid] }]);
    expect(k.counters().poisonedPages).toBe(1);
    expect(p.rss().anon).toBe(1);
    const t = k.core.frames;
    expect([t.refcount(pfn), t.mapcount(pfn), t.test(pfn, C.PG_hwpoison), t.test(pfn, C.PG_lru)]).toEqual([1, 0, true, false]);
    const read = sigbus(() => p.read(a));
    expect([read.errno, read.code]).toEqual(["EHWPOISON", 133]);
    expect(read.message).toMatch(/^EHWPOISON: SIGBUS \(BUS_MCEERR_AR\): pid \d+ read from 0x[0-9a-f]+, whose page is hardware-poisoned$/);
    expect(sigbus(() => p.write(a, 9)).message).toMatch(/wrote to/);
    expect(p.read(a + PAGE)).toBe(8); // the neighbour is untouched
    // munmap drops the entry (zap_nonpresent_ptes()); memory_failure()'s reference keeps the frame
    p.munmap(a, 2 * PAGE);
    expect(k.core.freePages()).toBe(free + 1); // the neighbour only
    expect(k.heldFrames().find((f) => f.pfn === pfn)).toEqual({ pfn, refcount: 1, holders: [{ kind: "hwpoison" }] });
    p.exit();
    expect(k.heldFrames()).toEqual([{ pfn, refcount: 1, holders: [{ kind: "hwpoison" }] }]);
    expect(k.checkInvariants()).toEqual([]);
    expect(k.findings).toEqual([]);
  });

  it("fork copies the hwpoison entry as is, PageAnonExclusive left stale (seed 000 I.7c)", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const exclusiveBefore = k.ops.PageAnonExclusive(pfn);
    p.madvise(a, PAGE, MADV_HWPOISON);
    const c = p.fork();
    expect(entryAt(c, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect(entryAt(p, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    // the entry is a placeholder: nothing shares the page, so the bit is not cleared
    expect(k.ops.PageAnonExclusive(pfn)).toBe(exclusiveBefore);
    expect([k.core.frames.refcount(pfn), k.core.frames.mapcount(pfn)]).toEqual([1, 0]);
    expect(c.rss()).toEqual(p.rss());
    expect(errnoOf(() => c.read(a))).toBe("EHWPOISON");
    // mprotect keeps the entry; MADV_DONTNEED in the child drops only the child's
    p.mprotect(a, PAGE, PROT_READ);
    expect(entryAt(p, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    c.madvise(a, PAGE, 4 /* MADV_DONTNEED */);
    expect(entryAt(c, a)).toBeNull();
    expect(c.read(a)).toBe(0); // a fresh zero page: the child's address is usable again
    expect(errnoOf(() => p.read(a))).toBe("EHWPOISON");
    expect(k.counters().poisonedPages).toBe(1);
    expect(k.findings).toEqual([]);
  });

  it("a page fork shares: the hardware's memory_failure() replaces both mappings and kills nobody yet", () => {
    const k = kernel(strategy);
    const ev = events(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 5);
    const c = p.fork();
    const pfn = p.pfnAt(a)!;
    expect(c.pfnAt(a)).toBe(pfn);
    expect(k.memoryFailure(pfn)).toEqual({ pfn, type: "dirty LRU page", result: "Recovered", errno: null, killed: [] });
    expect(ev.map((e) => e.killed)).toEqual([[]]);
    expect(entryAt(p, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect(entryAt(c, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect([p.rss().anon, c.rss().anon]).toEqual([0, 0]);
    expect(errnoOf(() => c.write(a, 6))).toBe("EHWPOISON");
    expect(errnoOf(() => p.read(a))).toBe("EHWPOISON");
    // again: already poisoned, not counted twice
    expect(k.memoryFailure(pfn)).toEqual({ pfn, type: "already poisoned page", result: "Failed", errno: "EHWPOISON", killed: [] });
    expect(k.counters().poisonedPages).toBe(1);
    // and MADV_HWPOISON of the entry fails in GUP, as the fault does
    expect(errnoOf(() => p.madvise(a, PAGE, MADV_HWPOISON))).toBe("EHWPOISON");
    expect(k.findings).toEqual([]);
  });

  it("a pinned page is unmapped all the same; the pin keeps a page nobody maps, and unpinning frees nothing", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 3);
    const pfn = p.pfnAt(a)!;
    const pin = p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_WRITE | C.FOLL_LONGTERM);
    expect(k.memoryFailure(pfn).result).toBe("Recovered");
    expect(entryAt(p, a)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect(k.core.frames.refcount(pfn)).toBe(C.GUP_PIN_COUNTING_BIAS + 1);
    expect(k.checkInvariants()).toEqual([]);
    const free = k.core.freePages();
    pin.release();
    expect([k.core.frames.refcount(pfn), k.core.freePages()]).toEqual([1, free]);
    expect(k.findings).toEqual([]);
  });

  it("reclaim passes a poisoned page by", () => {
    const k = kernel(strategy, { swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 3);
    const pfn = p.pfnAt(a)!;
    k.memoryFailure(pfn);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(k.reclaim(8)).toBe(0);
    expect(k.counters().pageouts).toBe(0);
    expect(k.usedSwapSlots()).toEqual([]);
  });
});

describe("memory_failure() of the pages it cannot recover", () => {
  it("an untouched page: MADV_HWPOISON faults in the zero page, a reserved kernel page (EBUSY)", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    const e = sigbus(() => p.madvise(a, PAGE, MADV_HWPOISON));
    expect([e.errno, e.detail]).toEqual(["EBUSY", `madvise(MADV_HWPOISON): pid ${p.pid}'s page at 0x${a.toString(16)} (pfn 0): reserved kernel page, Ignored`]);
    expect(k.core.frames.test(0, C.PG_hwpoison)).toBe(true);
    expect(k.counters().poisonedPages).toBe(1);
    expect(p.read(a)).toBe(0); // still mapped: nothing was unmapped
  });

  it("a swap-cache page: unmapped into swap entries; clean, it leaves the swap cache and the slot still has the data", () => {
    const k = kernel("anon-exclusive", { swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 11);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const c = p.fork(); // the swap entry is shared: a read swap-in keeps the folio in the swap cache
    expect(p.read(a)).toBe(11);
    const pfn = p.pfnAt(a)!;
    expect(k.core.frames.test(pfn, C.PG_swapcache)).toBe(true);
    expect(k.memoryFailure(pfn)).toEqual({ pfn, type: "clean swapcache page", result: "Recovered", errno: null, killed: [] });
    expect(entryAt(p, a)![0]).toBe(C.PTE_KIND_SWAP);
    expect(k.core.frames.test(pfn, C.PG_swapcache)).toBe(false);
    expect(p.read(a)).toBe(11); // read back from swap, into a new frame
    expect(c.read(a)).toBe(11);
    expect(p.pfnAt(a)).not.toBe(pfn);
    expect(k.heldFrames().find((f) => f.pfn === pfn)).toEqual({ pfn, refcount: 1, holders: [{ kind: "hwpoison" }] });
    expect(k.findings).toEqual([]);
  });

  it("a dirty swap-cache page stays in the swap cache, and the next swap-in is SIGBUS", () => {
    const k = kernel("anon-exclusive", { swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 11);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const c = p.fork();
    expect(p.read(a)).toBe(11);
    const pfn = p.pfnAt(a)!;
    k.ops.pageSetFlag(pfn, C.PG_dirty); // as a write through another path would leave it
    expect(k.memoryFailure(pfn)).toEqual({ pfn, type: "dirty swapcache page", result: "Delayed", errno: null, killed: [] });
    expect(k.core.frames.test(pfn, C.PG_swapcache)).toBe(true);
    expect(errnoOf(() => p.read(a))).toBe("EHWPOISON");
    expect(errnoOf(() => c.read(a))).toBe("EHWPOISON");
    expect(k.findings).toEqual([]);
  });

  it("a page memory_failure() cannot take or unmap stays mapped, poisoned and counted: isolated (EBUSY), a pinned swap-cache page (EBUSY)", () => {
    const k = kernel("anon-exclusive", { swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const h = k.isolate(p.pid, a); // off the LRU: get_hwpoison_page() cannot handle it
    expect(k.memoryFailure(pfn)).toEqual({ pfn, type: "get hwpoison page", result: "Ignored", errno: "EBUSY", killed: [] });
    expect([p.read(a), k.core.frames.test(pfn, C.PG_hwpoison)]).toEqual([1, true]);
    k.putback(h);
    // in the swap cache and pinned: reclaim's unmap is refused (folio_try_share_anon_rmap_pte())
    const b = a + PAGE;
    p.write(b, 2);
    const q = p.pfnAt(b)!;
    expect(k.ops.addToSwap(q)).toBe(true);
    const pin = p.pinUserPages(b, 1, C.FOLL_PIN | C.FOLL_WRITE | C.FOLL_LONGTERM);
    expect(k.memoryFailure(q)).toEqual({ pfn: q, type: "unmapping failed page", result: "Failed", errno: "EBUSY", killed: [] });
    expect(p.pfnAt(b)).toBe(q);
    expect(k.counters().poisonedPages).toBe(2);
    expect(k.checkInvariants()).toEqual([]);
    pin.release();
  });

  it("a hwpoison entry for a frame that is not PG_hwpoison breaks an invariant (pte-valid)", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    const pfn = p.pfnAt(a + PAGE)!;
    k.memoryFailureAt(p.pid, a);
    expect(k.checkInvariants()).toEqual([]);
    const entry = k.core.x.ptep_get(p.mm, a) & ~((1n << 59n) - 1n) | (BigInt(pfn) << 9n);
    k.core.x.ptep_set(k.core.ctx, p.mm, a, entry);
    expect(k.checkInvariants().filter((v) => v.invariant === "pte-valid")).toEqual([
      { invariant: "pte-valid", detail: `pid ${p.pid} has a hwpoison entry at 0x${a.toString(16)} for pfn ${pfn}, which is not PG_hwpoison` },
    ]);
  });

  it("bad input changes nothing: no such frame (EINVAL), a free frame (EINVAL), a hole (EFAULT)", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    failsCleanly(k, "EINVAL", () => k.memoryFailure(-1));
    failsCleanly(k, "EINVAL", () => k.memoryFailure(k.core.layout.nframes));
    failsCleanly(k, "EINVAL", () => k.memoryFailure(1.5));
    let freePfn = 1;
    while (!k.core.frames.test(freePfn, C.PG_buddy)) freePfn++;
    failsCleanly(k, "EINVAL", () => k.memoryFailure(freePfn));
    failsCleanly(k, "EFAULT", () => p.madvise(a + 16 * PAGE, PAGE, MADV_HWPOISON));
    failsCleanly(k, "EINVAL", () => p.madvise(a + 1, PAGE, MADV_HWPOISON));
    // a shmem page: truncate_error_folio() is not modelled, so it is refused, GUP's reference given back
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 2);
    failsCleanly(k, "EINVAL", () => p.madvise(s, PAGE, MADV_HWPOISON));
    failsCleanly(k, "EINVAL", () => k.memoryFailure(p.pfnAt(s)!));
    failsCleanly(k, "EFAULT", () => k.memoryFailureAt(p.pid, a + 16 * PAGE));
    expect(k.counters().poisonedPages).toBe(0);
  });

  it("GUP of a hwpoison entry fails with EHWPOISON; mremap moves the entry with the range", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    k.memoryFailureAt(p.pid, a);
    expect(errnoOf(() => p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_WRITE))).toBe("EHWPOISON");
    expect(errnoOf(() => p.vmsplice(a, PAGE))).toBe("EHWPOISON");
    const b = p.mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 64 * PAGE);
    expect(entryAt(p, b)).toEqual([C.PTE_KIND_HWPOISON, pfn]);
    expect(errnoOf(() => p.read(b))).toBe("EHWPOISON");
    expect(k.pins.active.size).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe("/proc/pid/pagemap (pte_to_pagemap_entry() of 6.12)", () => {
  it("a hwpoison entry is PM_SWAP with type SWP_HWPOISON and the PFN; beside it present, shared, swapped, zero and shmem pages", () => {
    const k = kernel("anon-exclusive", { swap: "1M" });
    const p = k.spawn();
    const a = p.mmap(null, 6 * PAGE, RW, PRIV);
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, i + 1);
    expect(p.read(a + 4 * PAGE)).toBe(0); // the zero page
    p.write(s, 9);
    const c = p.fork();
    p.write(a + 3 * PAGE, 7); // a copy: exclusive again
    const shared = p.pfnAt(a)!;
    const poisoned = p.pfnAt(a + PAGE)!;
    p.madvise(a + 2 * PAGE, PAGE, MADV_PAGEOUT); // shared with the child: MADV_PAGEOUT leaves it
    c.munmap(a + 2 * PAGE, PAGE);
    p.madvise(a + 2 * PAGE, PAGE, MADV_PAGEOUT);
    const slot = k.usedSwapSlots()[0]!.slot;
    k.memoryFailure(poisoned);
    p.clearSoftDirty(); // the soft-dirty bits out of the way: no VM_SOFTDIRTY, no PTE bit
    const swp = (type: number, offset: number) => PM_SWAP | BigInt(type) | (BigInt(offset) << 5n);
    expect(p.pagemap(a, 6)).toEqual([
      PM_PRESENT | BigInt(shared), // shared with the child: not exclusive
      swp(C.SWP_HWPOISON, poisoned),
      swp(0, slot),
      PM_PRESENT | PM_MMAP_EXCLUSIVE | BigInt(p.pfnAt(a + 3 * PAGE)!),
      PM_PRESENT, // the zero page: pfn 0, no struct page to judge (vm_normal_page())
      0n, // none
    ]);
    expect(c.pagemap(a + PAGE, 1)).toEqual([PM_SOFT_DIRTY | swp(C.SWP_HWPOISON, poisoned)]); // fork copied it
    // fork does not copy a shared mapping's PTEs (vma_needs_copy()): only the parent maps the shmem page
    expect(p.pagemap(s, 1)).toEqual([PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | BigInt(p.pfnAt(s)!)]);
    expect(c.read(s)).toBe(9);
    expect(p.pagemap(s, 1)).toEqual([PM_PRESENT | PM_FILE | BigInt(p.pfnAt(s)!)]);
    expect(p.vmas.lookup(a + 6 * PAGE)).toBeNull();
    expect(p.pagemap(a + 6 * PAGE, 1)).toEqual([0n]); // no VMA
    expect(errnoOf(() => p.pagemap(a + 1, 1))).toBe("EINVAL");
    p.write(a + 3 * PAGE, 8);
    expect(p.pagemap(a + 3 * PAGE, 1)[0]! & PM_SOFT_DIRTY).toBe(PM_SOFT_DIRTY);
  });
});

describe("a poisoned PTE marker (PTE_MARKER_POISONED, a swap-in error)", () => {
  it("is SIGBUS as handle_pte_marker() answers VM_FAULT_HWPOISON, for the process and for the child fork copies it to", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    // what a failed swap-in leaves in place of the entry (swapin_error): nothing else makes one here
    p.madvise(a, PAGE, 4 /* MADV_DONTNEED */);
    k.core.x.ptep_set(k.core.ctx, p.mm, a, k.core.x.make_pte_marker(C.PTE_MARKER_POISONED));
    expect(errnoOf(() => p.read(a))).toBe("EHWPOISON");
    const c = p.fork();
    expect(entryAt(c, a)).toEqual([C.PTE_KIND_MARKER, C.PTE_MARKER_POISONED]);
    expect(errnoOf(() => c.write(a, 2))).toBe("EHWPOISON");
    expect(k.counters().poisonedPages).toBe(0); // no page was poisoned: the data was lost on the way in
  });
});
