// shmem files (mm/shmem.c, mm/memfd.c, mm/memory.c's file faults): memfd_create(), ftruncate(),
// mappings of a memfd at an offset, private COW of page-cache pages (do_read_fault(),
// do_cow_fault(), wp_page_copy()), hole punching (shmem_fallocate(), MADV_REMOVE) without the
// COWed pages, uffd-wp markers left by the zaps, and shmem swap-out / swap-in.
import { describe, it, expect } from "vitest";
import {
  C, PM_FILE, PM_PRESENT, PM_UFFD_WP, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MADV_REMOVE, MADV_PAGEOUT, MADV_DONTNEED,
  MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_EXEC, MFD_NOEXEC_SEAL, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE, shmem_get_entry, shmem_get_folio, shmem_add_to_page_cache, createKernel, type Kernel,
  type Process, type ShmemFile,
} from "../../src/index.js";
import { kernel, errnoOf, failsCleanly, STRATEGIES, RW, PRIV, PAGE } from "./helpers.js";

const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const VM_UFFD_WP = 0x1000;

/** A process with a 4-page memfd mapped shared (`sh`) and, from page 2, 2 pages private (`pr`). */
function setup(k: Kernel): { p: Process; f: ShmemFile; sh: number; pr: number } {
  const p = k.spawn();
  const f = p.memfdCreate("buf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  p.ftruncate(f, 4 * PAGE);
  const sh = p.mmap(null, 4 * PAGE, RW, MAP_SHARED, f);
  const pr = p.mmap(null, 2 * PAGE, RW, MAP_PRIVATE, f, 2 * PAGE);
  return { p, f, sh, pr };
}

const pagemapAt = (p: Process, a: number) => p.pagemap(a, 1)[0]!;

describe("memfd_create() and ftruncate()", () => {
  it("refuses unknown flags, MFD_HUGETLB, MFD_EXEC with MFD_NOEXEC_SEAL and long names, changing nothing", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    failsCleanly(k, "EINVAL", () => p.memfdCreate("x", 0x100));
    failsCleanly(k, "EINVAL", () => p.memfdCreate("x", MFD_HUGETLB));
    failsCleanly(k, "EINVAL", () => p.memfdCreate("x", MFD_EXEC | MFD_NOEXEC_SEAL));
    failsCleanly(k, "EINVAL", () => p.memfdCreate("n".repeat(250)));
    const f = p.memfdCreate("n".repeat(249));
    expect([f.size, f.open, f.mappings, k.shmem.files.size]).toEqual([0, true, 1, 1]);
  });

  it("a page at or beyond i_size is SIGBUS (EFAULT); ftruncate makes it reachable", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const f = p.memfdCreate("f");
    const a = p.mmap(null, 2 * PAGE, RW, MAP_SHARED, f);
    failsCleanly(k, "EFAULT", () => p.read(a));
    p.ftruncate(f, PAGE + 1); // a partial second page counts
    p.write(a + PAGE, 3);
    expect([p.read(a + PAGE), f.pages.size]).toEqual([3, 1]);
    failsCleanly(k, "EINVAL", () => p.ftruncate(f, -1));
  });

  it("mmap of a file needs an open memfd and a page-aligned offset; MAP_ANONYMOUS ignores the file", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const f = p.memfdCreate("f");
    failsCleanly(k, "EINVAL", () => p.mmap(null, PAGE, RW, MAP_SHARED, f, 100));
    failsCleanly(k, "EBADF", () => p.mmap(null, PAGE, RW, MAP_SHARED));
    const anon = p.mmap(null, PAGE, RW, PRIV, f);
    expect(p.vmas.lookup(anon)!.shmem).toBeNull();
    p.close(f);
    failsCleanly(k, "EBADF", () => p.mmap(null, PAGE, RW, MAP_SHARED, f));
    failsCleanly(k, "EBADF", () => p.close(f));
    expect(k.shmem.files.size).toBe(0);
  });

  it("shrinking unmaps the pages beyond the end, private copies too (even_cows), and frees them", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh, pr } = setup(k);
    p.write(sh + 3 * PAGE, 5);
    p.write(pr + PAGE, 6); // a private copy of page 3
    const before = k.counters();
    p.ftruncate(f, 3 * PAGE);
    expect([f.pages.has(3), p.pfnAt(sh + 3 * PAGE), p.pfnAt(pr + PAGE), p.rss().anon]).toEqual([false, null, null, 0]);
    expect(k.counters().shmemTruncated - before.shmemTruncated).toBe(1);
    expect(errnoOf(() => p.read(pr + PAGE))).toBe("EFAULT");
    expect(k.latentMissedCows()).toEqual([]);
  });
});

describe.each(STRATEGIES)("private mappings of a memfd (%s)", (strategy) => {
  it("a read fault maps the page-cache page read-only; a write copies it into an anonymous page (wp_page_copy())", () => {
    const k = kernel(strategy);
    const { p, f, sh, pr } = setup(k);
    p.write(sh + 2 * PAGE, 7);
    expect(p.read(pr)).toBe(7);
    const cached = f.pages.get(2)!;
    expect(p.pfnAt(pr)).toBe(cached);
    const e = pagemapAt(p, pr);
    expect([(e & PM_FILE) !== 0n, (e & PM_PRESENT) !== 0n]).toEqual([true, true]);
    // the page cache, the shared PTE and the private PTE
    expect([k.ops.folioRefCount(cached), k.ops.folioMapcount(cached), p.rss()]).toEqual([3, 2, { anon: 0, shmem: 2, swap: 0 }]);
    const before = k.counters();
    p.write(pr, 9);
    const copy = p.pfnAt(pr)!;
    expect(copy).not.toBe(cached);
    expect([k.ops.folioTestAnon(copy), k.ops.PageAnonExclusive(copy) || strategy !== "anon-exclusive"]).toEqual([true, true]);
    expect([k.ops.folioRefCount(cached), k.ops.folioMapcount(cached), p.rss()]).toEqual([2, 1, { anon: 1, shmem: 1, swap: 0 }]);
    const after = k.counters();
    expect([after.fileCopies - before.fileCopies, after.copies - before.copies, after.wpFaults - before.wpFaults]).toEqual([1, 0, 1]);
    expect([p.read(sh + 2 * PAGE), p.read(pr)]).toEqual([7, 9]);
    p.write(sh + 2 * PAGE, 8); // the file's later values no longer show through the copy
    expect(p.read(pr)).toBe(9);
    expect(k.findings).toEqual([]);
  });

  it("a write fault on a none PTE is do_cow_fault(): the page cache gets its page, the process a copy", () => {
    const k = kernel(strategy);
    const { p, f, pr } = setup(k);
    const before = k.counters();
    p.write(pr + PAGE, 4);
    const cached = f.pages.get(3)!;
    expect(cached).toBeDefined();
    expect([k.ops.folioRefCount(cached), k.ops.folioMapcount(cached), k.core.tag(cached)]).toEqual([1, 0, 0]);
    expect(k.ops.folioTestAnon(p.pfnAt(pr + PAGE)!)).toBe(true);
    expect(k.counters().fileCopies - before.fileCopies).toBe(1);
    expect(p.rss()).toEqual({ anon: 1, shmem: 0, swap: 0 });
  });

  it("fork hands the copies and the file pages down; MADV_DONTNEED drops the copy and the file shows again", () => {
    const k = kernel(strategy);
    const { p, sh, pr } = setup(k);
    p.write(sh + 2 * PAGE, 1);
    p.write(sh + 3 * PAGE, 2);
    p.write(pr, 10);
    expect(p.read(pr + PAGE)).toBe(2);
    const c = p.fork();
    expect([c.read(pr), c.read(pr + PAGE)]).toEqual([10, 2]);
    const copies = k.counters().copies;
    c.write(pr, 11);
    expect([p.read(pr), c.read(pr), k.counters().copies - copies]).toEqual([10, 11, 1]);
    p.madvise(pr, PAGE, MADV_DONTNEED);
    expect(p.read(pr)).toBe(1);
    expect([k.findings, k.latentMissedCows()]).toEqual([[], []]);
  });
});

describe("hole punching: fallocate(FALLOC_FL_PUNCH_HOLE) and MADV_REMOVE", () => {
  it("unmaps and frees the file pages, keeps the private copies (even_cows = 0)", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh, pr } = setup(k);
    for (let i = 0; i < 4; i++) p.write(sh + i * PAGE, 20 + i);
    p.write(pr, 30); // the private copy of page 2
    expect(p.read(pr + PAGE)).toBe(23);
    const copy = p.pfnAt(pr)!;
    const page3 = f.pages.get(3)!;
    const before = k.counters();
    p.fallocate(f, PUNCH, 2 * PAGE + 100, 2 * PAGE); // pages 2 (partly: kept) and 3 (whole)
    expect([f.pages.has(2), f.pages.has(3), p.pfnAt(pr), p.pfnAt(pr + PAGE), p.pfnAt(sh + 3 * PAGE)]).toEqual([true, false, copy, null, null]);
    expect(k.ops.pageTestFlag(page3, C.PG_buddy)).toBe(true);
    expect(k.counters().shmemTruncated - before.shmemTruncated).toBe(1);
    p.fallocate(f, PUNCH, 2 * PAGE, 2 * PAGE);
    expect([p.read(sh + 2 * PAGE), p.read(sh + 3 * PAGE), p.read(pr), p.read(pr + PAGE), p.read(sh + PAGE)]).toEqual([0, 0, 30, 0, 21]);
    expect([k.findings, k.latentMissedCows()]).toEqual([[], []]);
  });

  it("fails as vfs_fallocate() and shmem_fallocate() do, changing nothing", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh } = setup(k);
    p.write(sh, 1);
    failsCleanly(k, "EINVAL", () => p.fallocate(f, PUNCH, -1, PAGE));
    failsCleanly(k, "EINVAL", () => p.fallocate(f, PUNCH, 0, 0));
    failsCleanly(k, "EOPNOTSUPP", () => p.fallocate(f, FALLOC_FL_PUNCH_HOLE, 0, PAGE));
    failsCleanly(k, "EOPNOTSUPP", () => p.fallocate(f, FALLOC_FL_ZERO_RANGE, 0, PAGE));
    failsCleanly(k, "EOPNOTSUPP", () => p.fallocate(f, 0x80, 0, PAGE));
    failsCleanly(k, "EOPNOTSUPP", () => p.fallocate(f, 0, 0, PAGE)); // preallocation: not modelled
    p.close(f);
    failsCleanly(k, "EBADF", () => p.fallocate(f, PUNCH, 0, PAGE));
    expect(p.read(sh)).toBe(1); // the mapping keeps the file
  });

  it("MADV_REMOVE punches the hole under a shared mapping; EACCES for a private one, EINVAL without a file", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh, pr } = setup(k);
    p.write(sh + 3 * PAGE, 5);
    expect(p.read(pr + PAGE)).toBe(5);
    failsCleanly(k, "EACCES", () => p.madvise(pr, 2 * PAGE, MADV_REMOVE));
    const anon = p.mmap(null, PAGE, RW, PRIV);
    failsCleanly(k, "EINVAL", () => p.madvise(anon, PAGE, MADV_REMOVE));
    p.madvise(sh + 3 * PAGE, PAGE, MADV_REMOVE);
    expect([f.pages.has(3), p.pfnAt(pr + PAGE), p.read(pr + PAGE)]).toEqual([false, null, 0]);
    // shared anonymous memory is a shmem file too
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 9);
    p.madvise(s, PAGE, MADV_REMOVE);
    expect(p.read(s)).toBe(0);
    expect(k.findings).toEqual([]);
  });

  it("a VMA registered for uffd-wp keeps a uffd-wp marker where the punched PTE had uffd-wp", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh } = setup(k);
    p.write(sh, 1);
    p.write(sh + PAGE, 2);
    const vma = p.vmas.lookup(sh)!;
    vma.flags |= VM_UFFD_WP; // what UFFDIO_REGISTER(MODE_WP) sets
    k.core.changeProtection(p.mm, sh, sh + PAGE, vma.pageProt, C.MM_CP_UFFD_WP); // UFFDIO_WRITEPROTECT of page 0
    p.fallocate(f, PUNCH, 0, 2 * PAGE);
    const [m0, m1] = p.pagemap(sh, 2);
    expect([(m0! & PM_UFFD_WP) !== 0n, (m0! & PM_PRESENT) !== 0n, (m1! & (PM_UFFD_WP | PM_PRESENT)) !== 0n]).toEqual([true, false, false]);
    expect(k.core.pagemap(p.mm, sh, sh + 2 * PAGE).map((r) => r.kind & 0xff)).toEqual([C.PTE_KIND_MARKER]);
  });
});

describe.each(STRATEGIES)("shmem swap-out and swap-in (%s)", (strategy) => {
  it("MADV_PAGEOUT unmaps the page and leaves its swap entry in the page cache; a private mapping's fault swaps it in", () => {
    const k = kernel(strategy);
    const { p, f, sh, pr } = setup(k);
    p.write(sh + 2 * PAGE, 42);
    p.write(sh + 3 * PAGE, 43);
    expect(p.read(pr + PAGE)).toBe(43);
    const before = k.counters();
    p.madvise(sh + 2 * PAGE, 2 * PAGE, MADV_PAGEOUT);
    // page 3 is mapped twice: "do not interfere with other mappings of this folio"
    expect([f.pages.has(3), f.swapped.has(3)]).toEqual([true, false]);
    const slot = f.swapped.get(2)!;
    expect([f.pages.has(2), p.pfnAt(sh + 2 * PAGE), k.ops.swapCount(slot), k.ops.swapCachePfn(slot)]).toEqual([false, null, 1, null]);
    expect(p.rss()).toEqual({ anon: 0, shmem: 2, swap: 0 }); // page 3, twice; a shmem swap entry is no MM_SWAPENTS
    expect(shmem_get_entry(f, 2)).toEqual({ kind: "swap", slot });
    expect(k.counters().shmemSwapouts - before.shmemSwapouts).toBe(1);
    // shmem_swapin_folio(): the private mapping's read fault brings it back into the page cache
    expect(p.read(pr)).toBe(42);
    const pfn = f.pages.get(2)!;
    expect([f.swapped.size, k.ops.swapMapGet(slot), p.pfnAt(pr), k.ops.pageTestFlag(pfn, C.PG_dirty), k.ops.pageTestFlag(pfn, C.PG_swapcache)]).toEqual([0, 0, pfn, true, false]);
    expect([p.read(sh + 2 * PAGE), k.counters().shmemSwapins - before.shmemSwapins]).toEqual([42, 1]);
    expect([k.findings, k.checkInvariants()]).toEqual([[], []]);
  });

  it("a uffd-wp PTE of a registered VMA becomes a uffd-wp marker (pte_install_uffd_wp_if_needed())", () => {
    const k = kernel(strategy);
    const { p, f, sh } = setup(k);
    p.write(sh, 3);
    const vma = p.vmas.lookup(sh)!;
    vma.flags |= VM_UFFD_WP;
    k.core.changeProtection(p.mm, sh, sh + PAGE, vma.pageProt, C.MM_CP_UFFD_WP);
    p.madvise(sh, PAGE, MADV_PAGEOUT);
    expect([f.swapped.has(0), (pagemapAt(p, sh) & PM_UFFD_WP) !== 0n, (pagemapAt(p, sh) & PM_PRESENT) !== 0n]).toEqual([true, true, false]);
  });

  it("punching a swapped page frees its slot; the file's last reference frees the rest", () => {
    const k = kernel(strategy);
    const { p, f, sh } = setup(k);
    p.write(sh, 1);
    p.write(sh + PAGE, 2);
    p.madvise(sh, 2 * PAGE, MADV_PAGEOUT);
    const [s0, s1] = [f.swapped.get(0)!, f.swapped.get(1)!];
    p.fallocate(f, PUNCH, 0, PAGE);
    expect([k.ops.swapMapGet(s0), k.ops.swapCount(s1), p.read(sh)]).toEqual([0, 1, 0]);
    p.exit();
    expect([k.ops.swapMapGet(s1), k.shmem.files.size]).toEqual([0, 0]);
    expect(k.checkInvariants()).toEqual([]);
  });

  it("reclaim under memory pressure takes shmem pages too, and the fault reads them back", () => {
    const k = createKernel({ strategy, memory: "1M", swap: "1M", checkInvariants: true });
    const p = k.spawn();
    const f = p.memfdCreate("big");
    const n = 300; // more pages than the machine has frames for, with what it needs itself
    p.ftruncate(f, n * PAGE);
    const a = p.mmap(null, n * PAGE, RW, MAP_SHARED, f);
    for (let i = 0; i < n; i++) p.write(a + i * PAGE, i + 1);
    expect(k.counters().shmemSwapouts).toBeGreaterThan(0);
    for (let i = 0; i < n; i++) expect(p.read(a + i * PAGE)).toBe(i + 1);
    expect([k.findings, k.checkInvariants()]).toEqual([[], []]);
  });
});

describe("the userfaultfd seams", () => {
  it("shmem_get_entry() tells a MINOR fault (page or swap entry) from a MISSING one; noalloc allocates nothing", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh } = setup(k);
    expect(shmem_get_entry(f, 1)).toBeNull();
    expect(shmem_get_folio(k, f, 1, "noalloc")).toBeNull();
    expect(f.pages.size).toBe(0);
    p.write(sh + PAGE, 5);
    expect(shmem_get_entry(f, 1)).toEqual({ kind: "page", pfn: f.pages.get(1) });
    expect(shmem_get_folio(k, f, 1, "noalloc")).toBe(f.pages.get(1));
    expect(errnoOf(() => shmem_get_folio(k, f, 4, "noalloc"))).toBe("EFAULT");
  });

  it("shmem_add_to_page_cache() inserts a caller's page (UFFDIO_COPY), which a fault then maps", () => {
    const k = kernel("anon-exclusive");
    const { p, f, sh } = setup(k);
    const pfn = k.ops.tryAllocPage(C.GFP_ZERO)!;
    expect(errnoOf(() => shmem_add_to_page_cache(k.ops, f, 4, pfn))).toBe("EFAULT");
    shmem_add_to_page_cache(k.ops, f, 0, pfn);
    k.ops.folioAddLru(pfn);
    k.ops.folioPutRefs(pfn, 1); // the caller's allocation reference (the LRU batch holds its own)
    expect(errnoOf(() => shmem_add_to_page_cache(k.ops, f, 0, pfn))).toBe("EEXIST");
    p.write(sh, 6);
    expect([p.pfnAt(sh), k.checkInvariants()]).toEqual([pfn, []]);
  });

  it("a kernel with a memfd snapshots and restores", () => {
    const k = kernel("anon-exclusive");
    const { p, sh, pr } = setup(k);
    p.write(sh + 2 * PAGE, 3);
    p.write(pr + PAGE, 4);
    const r = createKernel({ snapshot: k.snapshot() });
    const q = r.process(p.pid);
    expect([q.read(pr), q.read(pr + PAGE), q.read(sh + 3 * PAGE)]).toEqual([3, 4, 0]);
  });
});
