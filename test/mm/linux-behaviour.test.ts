// Kernel behaviour that independent reproducers found modelled wrongly: each case is what
// Linux does, with the commit or function that does it.
import { describe, it, expect } from "vitest";
import {
  PROT_NONE, PROT_READ, MAP_SHARED, MAP_ANONYMOUS, MAP_POPULATE, MADV_PAGEOUT, MREMAP_MAYMOVE,
  MREMAP_DONTUNMAP, MREMAP_FIXED, MAP_FIXED_NOREPLACE, CowsimError, C,
} from "../../src/index.js";
import { kernel, failsCleanly, errnoOf, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

describe("mremap(MREMAP_MAYMOVE | MREMAP_DONTUNMAP) without MREMAP_FIXED (mremap_to())", () => {
  it("moves the pages to a new range and leaves the old VMA mapped and empty", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    const pfns = [p.pfnAt(a), p.pfnAt(a + PAGE)];
    const to = p.mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    expect(to).not.toBe(a);
    expect([p.pfnAt(to), p.pfnAt(to + PAGE)]).toEqual(pfns);
    expect([p.read(to), p.read(to + PAGE)]).toEqual([1, 2]);
    // the old range: still a VMA, nothing mapped; it was moved whole, so it lost its anon_vma
    const old = p.maps().find((m) => m.start === a)!;
    expect(old).toMatchObject({ start: a, end: a + 2 * PAGE, perms: "rw-p", anonVma: null, pgoff: a / PAGE });
    expect(p.pfnAt(a)).toBeNull();
    expect(p.read(a)).toBe(0);
    p.write(a, 5);
    expect(p.pfnAt(a)).not.toBe(pfns[0]);
    expect([p.read(a), p.read(to)]).toEqual([5, 1]);
    expect(k.counters()).toMatchObject({ copies: 0, reuses: 0 });
  });

  it("uses the new address as a hint, and refuses a hint that overlaps the old range", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    const hint = a - 64 * PAGE;
    expect(p.mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, hint)).toBe(hint);
    failsCleanly(k, "EINVAL", () => p.mremap(hint, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, hint + PAGE));
    failsCleanly(k, "EINVAL", () => p.mremap(hint, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, hint + 7));
    failsCleanly(k, "EINVAL", () => p.mremap(hint, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
  });

  it("works on shared anonymous memory since 5.13 (a4609387859f): both ranges show the object", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 7);
    const to = p.mremap(s, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    expect(p.pfnAt(s)).toBeNull();
    expect([p.read(to), p.read(s)]).toEqual([7, 7]);
    p.write(s, 8);
    expect(p.read(to)).toBe(8);
  });

  it("a move to below mmap_min_addr is EPERM (get_unmapped_area() → security_mmap_addr())", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    failsCleanly(k, "EPERM", () => p.mremap(a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, PAGE));
  });
});

describe("clear_refs leaves pinned pages alone (9348b73c2e1b, 5.11)", () => {
  function pinnedThenClearRefs(strategy: "pagecount" | "anon-exclusive", knobs = {}) {
    const k = kernel(strategy, { knobs });
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    const buf = p.ioUringRegisterBuffers(a, PAGE);
    const pinned = p.pfnAt(a);
    p.clearSoftDirty();
    p.write(a, 3);
    p.write(a + PAGE, 4);
    buf.writeFixed(0, 5);
    return { k, p, a, pinned, read: p.read(a) };
  }

  it("6.12: the pinned page stays writable (no fault), the other is write-protected (one reuse)", () => {
    const { k, p, a, pinned, read } = pinnedThenClearRefs("anon-exclusive");
    expect(p.pfnAt(a)).toBe(pinned);
    expect(read).toBe(5);
    expect(k.counters()).toMatchObject({ wpFaults: 1, reuses: 1, copies: 0, wrongCow: 0 });
  });

  it("5.11–5.18: no write fault on the pinned page, so no copy away from its pin", () => {
    const { k, read } = pinnedThenClearRefs("pagecount");
    expect(read).toBe(5);
    expect(k.counters()).toMatchObject({ wpFaults: 1, copies: 0, wrongCow: 0 });
  });

  it("5.9–5.10: the write-protected pinned page is copied at the next write: a wrong COW", () => {
    const { k, p, a, pinned, read } = pinnedThenClearRefs("pagecount", { clearRefsSkipsPinned: false });
    expect(p.pfnAt(a)).not.toBe(pinned);
    expect(read).toBe(3); // the device wrote into the page the process no longer maps
    expect(k.counters()).toMatchObject({ wpFaults: 2, copies: 1, wrongCow: 1 });
    expect(k.findings.map((f) => f.kind)).toEqual(["wrong-cow"]);
  });
});

describe("MAP_POPULATE is best effort (mm_populate() ignores errors)", () => {
  it.each(STRATEGIES)("%s: PROT_NONE with MAP_POPULATE maps the range and faults nothing in", (strategy) => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, PROT_NONE, PRIV | MAP_POPULATE);
    expect(p.maps()).toEqual([expect.objectContaining({ start: a, end: a + 4 * PAGE, perms: "---p" })]);
    expect(p.pfnAt(a)).toBeNull();
    expect(k.counters()).toMatchObject({ anonFaults: 0, zeroPageFaults: 0 });
    p.mprotect(a, 4 * PAGE, PROT_READ);
    expect(p.read(a)).toBe(0);
  });
});

describe("free_swap_cache() after a COW copy (f4c4a3f48480, 5.14)", () => {
  /** A page swapped out and back in read-only, then written: page_count() COW copies it. */
  function copyAwayFromSwapCache(knobs = {}) {
    const k = kernel("pagecount", { knobs });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(p.read(a)).toBe(1); // swapped in read-only, still in the swap cache
    const old = p.pfnAt(a)!;
    p.write(a, 2); // page_count() is 2 (mapping + swap cache): copied
    expect(k.counters()).toMatchObject({ copies: 1, unnecessaryCow: 1 });
    return { k, p, old };
  }

  it("5.14+: the old page, mapped by nobody, leaves the swap cache and is freed", () => {
    const { k, p, old } = copyAwayFromSwapCache();
    expect(k.heldFrames().map((f) => f.pfn)).not.toContain(old);
    expect(k.usedSwapSlots()).toEqual([]);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("before 5.14: it stays in the swap cache, idle, until reclaim — which is no leak", () => {
    const { k, p, old } = copyAwayFromSwapCache({ freeSwapCacheAfterCow: false });
    p.exit(); // invariants are checked after the step: an idle swap-cache page is legitimate
    const [held, ...rest] = k.heldFrames();
    expect(rest).toEqual([]);
    expect(held).toEqual({ pfn: old, refcount: 1, holders: [{ kind: "swap-cache", slot: expect.any(Number), swapCount: 0 }] });
    expect(k.usedSwapSlots()).toEqual([{ slot: (held!.holders[0] as { slot: number }).slot, swapCount: 0, cachedPfn: old }]);
    expect(k.freeSwapCache()).toBe(1);
    expect(k.heldFrames()).toEqual([]);
    expect(k.usedSwapSlots()).toEqual([]);
  });
});

describe("fork at the process limit", () => {
  it("is EAGAIN (copy_process(): nr_threads >= max_threads), spawn too, nothing changed", () => {
    const k = kernel("anon-exclusive", { maxProcesses: 3 });
    const p = k.spawn();
    p.fork();
    k.spawn();
    failsCleanly(k, "EAGAIN", () => p.fork());
    failsCleanly(k, "EAGAIN", () => k.spawn());
  });
});

describe("an exhausted page-table pool", () => {
  /** A process that has used every page table of the pool, on a machine with swap. */
  function noTablesLeft() {
    const k = kernel("anon-exclusive", { memory: "8M", swap: "8M", pageTables: 8 });
    const p = k.spawn();
    const a = p.mmap(null, 64 * PAGE, RW, PRIV);
    for (let i = 0; i < 64; i++) p.write(a + i * PAGE, i + 1);
    // each mapping 1 GiB apart needs its own PUD-level tables
    const far: number[] = [];
    for (let i = 1; k.core.tablesAvailable() > 0; i++) {
      const b = p.mmap(a - i * 2 ** 30, PAGE, RW, PRIV | MAP_FIXED_NOREPLACE);
      p.write(b, 1000 + i);
      far.push(b);
    }
    return { k, p, a, far };
  }

  it("a fault gives ENOMEM at once, without reclaim (which frees frames, not tables), changing nothing", () => {
    const { k, p, a } = noTablesLeft();
    const b = p.mmap(a - 2 ** 39, PAGE, RW, PRIV | MAP_FIXED_NOREPLACE);
    failsCleanly(k, "ENOMEM", () => p.write(b, 1));
    failsCleanly(k, "ENOMEM", () => p.read(b));
    expect(k.counters().pageouts).toBe(0);
    // the write fault failed before vmf_anon_prepare(): the new VMA has no anon_vma
    expect(p.maps().find((m) => m.start === b)!.anonVma).toBeNull();
    let e: unknown;
    try { p.write(b, 1); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(CowsimError);
    expect((e as Error).message).toMatch(/^ENOMEM: out of memory: pid 1's fault at 0x[0-9a-f]+ found no page table \(the page-table pool is exhausted\)$/);
  });

  it("a fault that finds tables but no frame leaves the anon_vma vmf_anon_prepare() attached", () => {
    const k = kernel("anon-exclusive", { memory: "512K", swap: 0 });
    const p = k.spawn();
    const a = p.mmap(null, 256 * PAGE, RW, PRIV);
    for (let n = 0; k.core.freePages() > 0; n++) p.write(a + n * PAGE, 1);
    const b = p.mmap(a - 64 * PAGE, PAGE, RW, PRIV | MAP_FIXED_NOREPLACE); // not next to a: no anon_vma to share
    expect(p.maps().find((m) => m.start === b)!.anonVma).toBeNull();
    expect(errnoOf(() => p.write(b, 1))).toBe("ENOMEM");
    expect(p.maps().find((m) => m.start === b)!.anonVma).not.toBeNull();
    expect(p.pfnAt(b)).toBeNull();
  });
});

describe("GUP with FOLL_FORCE reaches PROT_NONE memory (check_vma_flags(), as ptrace does)", () => {
  it("FOLL_FORCE | FOLL_WRITE faults a PROT_NONE private page in, breaks COW, and pins it", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    p.write(a + 3 * PAGE, 1);
    const c = p.fork();
    p.mprotect(a + 2 * PAGE, 2 * PAGE, PROT_NONE);
    const pins = p.pinUserPages(a, 4, C.FOLL_PIN | C.FOLL_WRITE | C.FOLL_FORCE);
    expect(pins.pages).toBe(4);
    expect(k.counters().copies).toBe(1); // page 3 was shared with the child: COW broken for the write
    pins.write(2, 42);
    pins.write(3, 43);
    pins.release();
    p.mprotect(a + 2 * PAGE, 2 * PAGE, PROT_READ);
    expect([p.read(a + 2 * PAGE), p.read(a + 3 * PAGE), c.read(a + 3 * PAGE)]).toEqual([42, 43, 1]);
    expect(k.findings).toEqual([]);
  });

  it("FOLL_FORCE reads PROT_NONE memory; without it, EFAULT", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 9);
    p.mprotect(a, PAGE, PROT_NONE);
    const ref = p.pinUserPages(a, 1, C.FOLL_GET | C.FOLL_FORCE, false);
    expect(ref.read(0)).toBe(9);
    ref.release();
    failsCleanly(k, "EFAULT", () => p.pinUserPages(a, 1, C.FOLL_GET));
  });
});
