// UFFDIO_MOVE (mm/userfaultfd.c move_pages(), move_pages_pte(), move_present_pte(),
// move_swap_pte(), move_zeropage_pte(); mm/huge_memory.c move_pages_huge_pmd(); fs/userfaultfd.c
// userfaultfd_move()), driven directly with a context whose destination VMA is registered.
import { describe, it, expect } from "vitest";
import { C } from "../../src/core/index.js";
import {
  MAP_FIXED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, UFFD_FEATURE_MOVE, UFFDIO_REGISTER_MODE_MISSING, PROT_READ, FOLL_PIN, FOLL_GET, MAP_SHARED, MAP_ANONYMOUS, type Kernel,
  type Process,
} from "../../src/index.js";
import {
  UserfaultfdCtx, UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, UFFDIO_MOVE_MODE_DONTWAKE,
} from "../../src/mm/userfaultfd.js";
import { move_pages, movePagesOutcome, userfaultfd_move, UffdRangeError, VM_LOCKED } from "../../src/mm/userfaultfd_move.js";
import { VM_UFFD_MISSING, VM_UFFD_WP } from "../../src/mm/vma.js";
import { kernel, RW, PRIV, PAGE } from "./helpers.js";
import { Rng } from "../../src/util/rng.js";

const HP = 2 << 20;
const SRC = 0x7f0000000000; // 2 MiB aligned
const DST = 0x7f0040000000;
const ALLOW = UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES;

interface Setup { k: Kernel; p: Process; ctx: UserfaultfdCtx }

/** A process with a source VMA and a registered destination VMA of `pages` pages each. */
function setup(pages = 8, opts: { memory?: string; thp?: boolean } = {}): Setup {
  const k = kernel("anon-exclusive", { memory: opts.memory ?? "32M" });
  const p = k.spawn();
  p.mmap(SRC, pages * PAGE, RW, PRIV | MAP_FIXED);
  p.mmap(DST, pages * PAGE, RW, PRIV | MAP_FIXED);
  if (opts.thp) {
    p.madvise(SRC, pages * PAGE, MADV_HUGEPAGE);
  }
  const ctx = new UserfaultfdCtx(p, 1);
  register(p, ctx, DST);
  return { k, p, ctx };
}

/**
 * Registers the VMA at `addr` with `ctx` for uffd-wp: a registration UFFDIO_MOVE accepts, in
 * which the tests' own writes do not wait for a handler (a MISSING range would).
 */
function register(p: Process, ctx: UserfaultfdCtx, addr: number): void {
  const v = p.vmas.lookup(addr)!;
  v.uffdCtx = ctx;
  v.flags |= VM_UFFD_WP;
}

/** What UFFDIO_MOVE failed with: [errno, uffdio_move.move]. */
function rangeError(fn: () => unknown): [string, number] {
  try {
    fn();
  } catch (e) {
    if (e instanceof UffdRangeError) return [e.errno, e.result];
    throw e;
  }
  throw new Error("expected a UffdRangeError");
}

function ok(k: Kernel): void {
  expect(k.checkInvariants()).toEqual([]);
  expect(k.findings).toEqual([]);
}

describe("move_pages(): present pages", () => {
  it("moves exclusive pages: same frames, map and reference counts, PageAnonExclusive; mapping and index are the destination's", () => {
    const { k, p, ctx } = setup(4);
    for (let i = 0; i < 4; i++) p.write(SRC + i * PAGE, 10 + i);
    const pfns = [0, 1, 2, 3].map((i) => p.pfnAt(SRC + i * PAGE)!);
    const refs = pfns.map((f) => k.ops.folioRefCount(f));
    const dv = p.vmas.lookup(DST)!;
    const sv = p.vmas.lookup(SRC)!;
    expect(dv.anonVma).toBeNull();
    const rss = p.rss();
    expect(move_pages(k, ctx, DST, SRC, 4 * PAGE, 0)).toBe(4 * PAGE);
    // anon_vma_prepare() gave the destination its own anon_vma first
    expect(dv.anonVma).not.toBeNull();
    expect(dv.anonVma).not.toBe(sv.anonVma);
    for (let i = 0; i < 4; i++) {
      const f = p.pfnAt(DST + i * PAGE)!;
      expect(f).toBe(pfns[i]);
      expect(p.pfnAt(SRC + i * PAGE)).toBeNull();
      expect(k.ops.folioMapcount(f)).toBe(1);
      expect(k.ops.folioRefCount(f)).toBe(refs[i]);
      expect(k.ops.PageAnonExclusive(f)).toBe(true);
      expect(k.ops.folioMappingId(f)).toBe(dv.anonVma!.id);
      expect(k.ops.folioIndex(f)).toBe(dv.index(DST + i * PAGE));
      expect(k.ops.folioIndex(f)).not.toBe(sv.index(SRC + i * PAGE));
    }
    expect(p.rss()).toEqual(rss);
    // the oracle knows: the destination holds what the source held, the source is none
    for (let i = 0; i < 4; i++) expect(p.read(DST + i * PAGE)).toBe(10 + i);
    expect(p.read(SRC)).toBe(0);
    // writable, exclusive: no write fault, no copy
    const c = k.counters();
    p.write(DST, 99);
    expect([k.counters().wpFaults, k.counters().copies]).toEqual([c.wpFaults, c.copies]);
    ok(k);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("the destination PTE: writable, soft-dirty, dirty only if the source was, no uffd-wp", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    p.write(SRC + PAGE, 2);
    // make page 1 clean (the fault left it dirty)
    const sa = SRC + PAGE;
    const clean = k.core.x.ptep_get(p.mm, sa) & ~BigInt(1 << C._PAGE_BIT_DIRTY) & ~BigInt(1 << C._PAGE_BIT_SOFT_DIRTY);
    // uffd-wp-protected, so read-only (pte_mkuffd_wp())
    k.core.x.ptep_set(k.core.ctx, p.mm, sa, (clean & ~BigInt(1 << C._PAGE_BIT_RW)) | BigInt(1 << C._PAGE_BIT_UFFD_WP));
    move_pages(k, ctx, DST, SRC, 2 * PAGE, 0);
    const bit = (e: bigint, b: number) => (e >> BigInt(b)) & 1n;
    const e0 = k.core.x.ptep_get(p.mm, DST);
    const e1 = k.core.x.ptep_get(p.mm, DST + PAGE);
    expect([bit(e0, C._PAGE_BIT_RW), bit(e0, C._PAGE_BIT_DIRTY), bit(e0, C._PAGE_BIT_SOFT_DIRTY)]).toEqual([1n, 1n, 1n]);
    expect([bit(e1, C._PAGE_BIT_RW), bit(e1, C._PAGE_BIT_DIRTY), bit(e1, C._PAGE_BIT_SOFT_DIRTY), bit(e1, C._PAGE_BIT_UFFD_WP)])
      .toEqual([1n, 0n, 1n, 0n]);
    ok(k);
  });

  it("moves within one VMA, and into a VMA that is also the source", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    p.mmap(SRC, 8 * PAGE, RW, PRIV | MAP_FIXED);
    const ctx = new UserfaultfdCtx(p, 1);
    register(p, ctx, SRC);
    p.write(SRC, 5);
    expect(move_pages(k, ctx, SRC + 4 * PAGE, SRC, PAGE, 0)).toBe(PAGE);
    expect([p.read(SRC + 4 * PAGE), p.read(SRC)]).toEqual([5, 0]);
    const f = p.pfnAt(SRC + 4 * PAGE)!;
    expect(k.ops.folioIndex(f)).toBe(p.vmas.lookup(SRC)!.index(SRC + 4 * PAGE));
    ok(k);
  });

  it("overlapping ranges move page by page in address order, as Linux's loop does (6.12 has no overlap check)", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    p.mmap(SRC, 8 * PAGE, RW, PRIV | MAP_FIXED);
    const ctx = new UserfaultfdCtx(p, 1);
    register(p, ctx, SRC);
    p.write(SRC, 7);
    // page 0 → 1, then the same page 1 → 2 (a hole at 1 first needs ALLOW_SRC_HOLES not: it is filled)
    expect(move_pages(k, ctx, SRC + PAGE, SRC, 2 * PAGE, 0)).toBe(2 * PAGE);
    expect([p.read(SRC), p.read(SRC + PAGE), p.read(SRC + 2 * PAGE)]).toEqual([0, 0, 7]);
    ok(k);
  });

  it("the zero page moves as the destination's zero PTE (move_zeropage_pte())", () => {
    const { k, p, ctx } = setup(2);
    expect(p.read(SRC)).toBe(0); // maps the zero page
    expect(p.pfnAt(SRC)).toBe(0);
    const used = k.usedFrames;
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(p.pfnAt(DST)).toBe(0);
    const e = k.core.x.ptep_get(p.mm, DST);
    expect((e >> BigInt(C._PAGE_BIT_SPECIAL)) & 1n).toBe(1n);
    expect((e >> BigInt(C._PAGE_BIT_RW)) & 1n).toBe(0n);
    expect(k.core.x.ptep_get(p.mm, SRC)).toBe(0n);
    expect(k.usedFrames).toBe(used);
    ok(k);
  });
});

describe("move_pages(): errors", () => {
  it("EEXIST: the destination is not none (a page, a PTE marker); ENOENT: a source hole; ALLOW_SRC_HOLES moves holes", () => {
    const { k, p, ctx } = setup(4);
    p.write(SRC, 1);
    p.write(DST, 2);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EEXIST", -17]);
    // a PTE marker (uffd-wp) is not none
    k.core.x.ptep_set(k.core.ctx, p.mm, DST + PAGE, BigInt(C.SWP_PTE_MARKER) << BigInt(C.SWP_TYPE_SHIFT) | BigInt(C.PTE_MARKER_UFFD_WP) << BigInt(C.SWP_OFFSET_SHIFT));
    expect(rangeError(() => move_pages(k, ctx, DST + PAGE, SRC, PAGE, 0))).toEqual(["EEXIST", -17]);
    // page 1 of the source is a hole: no PTE table at all for another range, none PTE here
    expect(rangeError(() => move_pages(k, ctx, DST + 2 * PAGE, SRC + PAGE, PAGE, 0))).toEqual(["ENOENT", -2]);
    expect(move_pages(k, ctx, DST + 2 * PAGE, SRC + PAGE, PAGE, ALLOW)).toBe(PAGE);
    expect(p.pfnAt(SRC)).not.toBeNull();
    k.core.x.ptep_set(k.core.ctx, p.mm, DST + PAGE, 0n);
    ok(k);
  });

  it("ENOENT without a source PMD (mm_find_pmd()), and ALLOW_SRC_HOLES allocates the tables and moves the hole", () => {
    const { k, p, ctx } = setup(4);
    const tables = k.core.x.mm_nr_ptes(p.mm);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, 4 * PAGE, 0))).toEqual(["ENOENT", -2]);
    expect(move_pages(k, ctx, DST, SRC, 4 * PAGE, ALLOW)).toBe(4 * PAGE);
    expect(k.core.x.mm_nr_ptes(p.mm)).toBeGreaterThan(tables);
    ok(k);
  });

  it("partial progress: the bytes moved before the error; the ioctl says EAGAIN with move = bytes, woken over them", () => {
    const { k, p, ctx } = setup(4);
    p.write(SRC, 1);
    p.write(SRC + PAGE, 2);
    p.write(SRC + 3 * PAGE, 4);
    expect(move_pages(k, ctx, DST, SRC, 4 * PAGE, 0)).toBe(2 * PAGE); // page 2 is a hole
    expect([p.read(DST), p.read(DST + PAGE), p.read(SRC + 3 * PAGE)]).toEqual([1, 2, 4]);
    const woken: [number, number][] = [];
    expect(rangeError(() => userfaultfd_move(k, ctx, { dst: DST + 2 * PAGE, src: SRC + 2 * PAGE, len: 2 * PAGE, mode: 0 },
      (s, l) => woken.push([s, l])))).toEqual(["ENOENT", -2]);
    expect(woken).toEqual([]);
    // from page 3: moves page 3 (4), then the destination's page 0 … is past the range: ok
    p.write(SRC + 2 * PAGE, 3);
    p.write(DST + 3 * PAGE, 9); // page 3's destination is taken: EEXIST after page 2
    expect(rangeError(() => userfaultfd_move(k, ctx, { dst: DST + 2 * PAGE, src: SRC + 2 * PAGE, len: 2 * PAGE, mode: 0 },
      (s, l) => woken.push([s, l])))).toEqual(["EAGAIN", PAGE]);
    expect(woken).toEqual([[DST + 2 * PAGE, PAGE]]);
    expect([p.read(DST + 2 * PAGE), p.read(SRC + 3 * PAGE), p.read(DST + 3 * PAGE)]).toEqual([3, 4, 9]);
    ok(k);
  });

  it("EBUSY: a page shared after fork — and still after the child exits; a write reuses it and it moves", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    const c = p.fork();
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    c.exit();
    const f = p.pfnAt(SRC)!;
    expect(k.ops.folioMapcount(f)).toBe(1);
    // the last sharer's exit does not make it exclusive again; only a reuse does
    expect(k.ops.PageAnonExclusive(f)).toBe(false);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    p.write(SRC, 2); // do_wp_page() reuses it: exclusive again
    expect(p.pfnAt(SRC)).toBe(f);
    expect(k.ops.PageAnonExclusive(f)).toBe(true);
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(p.read(DST)).toBe(2);
    ok(k);
  });

  it("EBUSY: a pinned page (folio_maybe_dma_pinned()) stays where it is, unchanged", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    const pin = p.pinUserPages(SRC, 1, FOLL_PIN);
    const f = p.pfnAt(SRC)!;
    const before = [k.ops.folioMappingId(f), k.ops.folioIndex(f), k.ops.folioRefCount(f)];
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    expect([k.ops.folioMappingId(f), k.ops.folioIndex(f), k.ops.folioRefCount(f)]).toEqual(before);
    expect(p.pfnAt(SRC)).toBe(f);
    pin.release();
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    ok(k);
  });

  it("EINVAL from validate_move_areas(): unregistered or other-context destination, protection, mlock, read-only; shared", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    const other = new UserfaultfdCtx(p, 2);
    const dv = p.vmas.lookup(DST)!;
    dv.uffdCtx = other;
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EINVAL", -22]);
    dv.uffdCtx = null;
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EINVAL", -22]);
    dv.uffdCtx = ctx;
    dv.flags |= VM_LOCKED;
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EINVAL", -22]);
    dv.flags &= ~VM_LOCKED;
    p.mprotect(DST, 2 * PAGE, PROT_READ);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EINVAL", -22]);
    p.mprotect(SRC, 2 * PAGE, PROT_READ);
    // both read-only: the same access, but not writable
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EINVAL", -22]);
    p.mprotect(SRC, 2 * PAGE, RW);
    p.mprotect(DST, 2 * PAGE, RW);
    // a shared source
    const sh = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(sh, 3);
    expect(rangeError(() => move_pages(k, ctx, DST, sh, PAGE, 0))).toEqual(["EINVAL", -22]);
    // the range runs past either VMA
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, 3 * PAGE, 0))).toEqual(["EINVAL", -22]);
    // no VMA at all
    expect(rangeError(() => move_pages(k, ctx, DST, SRC + 64 * PAGE, PAGE, 0))).toEqual(["ENOENT", -2]);
    expect(rangeError(() => move_pages(k, ctx, DST + 64 * PAGE, SRC, PAGE, 0))).toEqual(["ENOENT", -2]);
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    ok(k);
  });

  it("EAGAIN while mmap_changing, in move_pages() and in the ioctl (move = -EAGAIN)", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    ctx.features = 2 ** 31; // UFFDIO_API done
    ctx.queueEvent({ event: "remove", start: SRC + PAGE, end: SRC + 2 * PAGE }); // an event not yet read
    expect(ctx.mmapChanging).toBe(true);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EAGAIN", -11]);
    expect(rangeError(() => userfaultfd_move(k, ctx, { dst: DST, src: SRC, len: PAGE, mode: 0 }))).toEqual(["EAGAIN", -11]);
    expect(ctx.read()).toEqual({ event: "remove", start: SRC + PAGE, end: SRC + 2 * PAGE });
    expect(ctx.mmapChanging).toBe(false);
    expect(p.pfnAt(DST)).toBeNull();
    ok(k);
  });

  it("EFAULT: a non-swap entry in the source (a PTE marker); EAGAIN: a locked folio (the kernel would sleep)", () => {
    const { k, p, ctx } = setup(2);
    k.core.x.ptep_set(k.core.ctx, p.mm, SRC + PAGE, BigInt(C.SWP_PTE_MARKER) << BigInt(C.SWP_TYPE_SHIFT) | BigInt(C.PTE_MARKER_POISONED) << BigInt(C.SWP_OFFSET_SHIFT));
    expect(rangeError(() => move_pages(k, ctx, DST, SRC + PAGE, PAGE, 0))).toEqual(["EFAULT", -14]);
    k.core.x.ptep_set(k.core.ctx, p.mm, SRC + PAGE, 0n);
    p.write(SRC, 1);
    const f = p.pfnAt(SRC)!;
    k.lockFolio(f);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EAGAIN", -11]);
    k.unlockFolio(f);
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    ok(k);
  });
});

describe("userfaultfd_move(): the ioctl's checks", () => {
  it("EINVAL for bad ranges, unknown mode bits and a cross-mm caller; ESRCH when the mm is gone; DONTWAKE", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    const err = (req: { dst: number; src: number; len: number; mode: number; caller?: unknown }) => {
      try {
        userfaultfd_move(k, ctx, req);
      } catch (e) {
        expect(e).not.toBeInstanceOf(UffdRangeError); // the kernel leaves uffdio_move.move alone
        return (e as { errno: string }).errno;
      }
      return null;
    };
    expect(err({ dst: DST + 1, src: SRC, len: PAGE, mode: 0 })).toBe("EINVAL");
    expect(err({ dst: DST, src: SRC, len: PAGE + 1, mode: 0 })).toBe("EINVAL");
    expect(err({ dst: DST, src: SRC, len: 0, mode: 0 })).toBe("EINVAL");
    expect(err({ dst: 2 ** 47, src: SRC, len: PAGE, mode: 0 })).toBe("EINVAL");
    expect(err({ dst: DST, src: SRC, len: PAGE, mode: 4 })).toBe("EINVAL");
    expect(err({ dst: DST, src: SRC, len: PAGE, mode: 0, caller: k.spawn() })).toBe("EINVAL");
    const woken: number[] = [];
    expect(userfaultfd_move(k, ctx, { dst: DST, src: SRC, len: PAGE, mode: UFFDIO_MOVE_MODE_DONTWAKE }, (s) => woken.push(s))).toBe(PAGE);
    expect(woken).toEqual([]);
    p.write(SRC + PAGE, 2);
    expect(userfaultfd_move(k, ctx, { dst: DST + PAGE, src: SRC + PAGE, len: PAGE, mode: 0, caller: p }, (s) => woken.push(s))).toBe(PAGE);
    expect(woken).toEqual([DST + PAGE]);
    ok(k);
    p.exit();
    expect(err({ dst: DST, src: SRC, len: PAGE, mode: 0 })).toBe("ESRCH");
  });
});

describe("move_pages(): swap entries", () => {
  it("an exclusive swap entry moves (soft-dirty added); the swap-cache folio's mapping and index follow; swap-in reads it back", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    p.write(SRC + PAGE, 2);
    // page 1 is held by a GUP reference (not a pin): unmapped into the swap cache, kept there
    const ref = p.pinUserPages(SRC + PAGE, 1, FOLL_GET);
    p.madvise(SRC, 2 * PAGE, MADV_PAGEOUT);
    const e0 = k.ops.swapPteSlot(p.mm, SRC)!;
    const e1 = k.ops.swapPteSlot(p.mm, SRC + PAGE)!;
    expect([e0.exclusive, e1.exclusive]).toEqual([true, true]);
    expect(k.ops.swapCachePfn(e0.slot)).toBeNull();
    const cached = k.ops.swapCachePfn(e1.slot)!;
    expect(cached).not.toBeNull();
    const dv = p.vmas.lookup(DST)!;
    expect(move_pages(k, ctx, DST, SRC, 2 * PAGE, 0)).toBe(2 * PAGE);
    const d0 = k.ops.swapPteSlot(p.mm, DST)!;
    const d1 = k.ops.swapPteSlot(p.mm, DST + PAGE)!;
    expect([d0.slot, d0.exclusive, d0.softDirty, d1.slot]).toEqual([e0.slot, true, true, e1.slot]);
    expect(k.ops.swapPteSlot(p.mm, SRC)).toBeNull();
    expect(k.ops.swapCount(e0.slot)).toBe(1);
    expect(k.ops.folioMappingId(cached)).toBe(dv.anonVma!.id);
    expect(k.ops.folioIndex(cached)).toBe(dv.index(DST + PAGE));
    ok(k);
    expect([p.read(DST), p.read(DST + PAGE)]).toEqual([1, 2]);
    expect(p.pfnAt(DST + PAGE)).toBe(cached);
    ref.release();
    ok(k);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("EBUSY: a swap entry shared after fork (not SWP_EXCLUSIVE)", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    p.madvise(SRC, PAGE, MADV_PAGEOUT);
    const c = p.fork();
    expect(k.ops.swapPteSlot(p.mm, SRC)!.exclusive).toBe(false);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    c.exit();
    ok(k);
  });
});

describe("move_pages(): THP", () => {
  it("a missing fault leaves the destination PMD none under THP (the THP moves whole), a PTE table otherwise (it splits)", () => {
    for (const thpDst of [true, false]) {
      const k = kernel("anon-exclusive", { memory: "32M" });
      const p = k.spawn();
      p.mmap(SRC, HP, RW, PRIV | MAP_FIXED);
      p.mmap(DST, HP, RW, PRIV | MAP_FIXED);
      p.madvise(DST, HP, thpDst ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
      p.write(SRC, 7);
      const uffd = p.userfaultfd();
      uffd.api(UFFD_FEATURE_MOVE);
      uffd.register(DST, HP, UFFDIO_REGISTER_MODE_MISSING);
      const splits = k.counters().thp_split_pmd;
      const r = p.access(false, DST);
      expect(r.state).toBe("blocked");
      // do_huge_pmd_anonymous_page() asks with the PMD none; do_anonymous_page() after pte_alloc()
      expect(k.ops.uffdPmdState(p.mm, DST)).toBe(thpDst ? C.UFFD_PMD_NONE : C.UFFD_PMD_TABLE);
      expect(uffd.move(DST, SRC, HP, ALLOW)).toBe(HP);
      expect(r.resume().value).toBe(7);
      expect(k.ops.hugePmdAt(p.mm, DST)).toBe(thpDst ? 1 : 0);
      expect(k.counters().thp_split_pmd).toBe(splits + (thpDst ? 0 : 1));
      ok(k);
    }
  });

  it("an aligned PMD over a none destination PMD moves whole: same folio, one PMD mapping, new mapping and index", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    for (const i of [0, 1, 511]) p.write(SRC + i * PAGE, 100 + i);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(1);
    const head = p.folioAt(SRC)!;
    const refs = k.ops.folioRefCount(head);
    const splits = k.counters().thp_split_pmd;
    const events: unknown[] = [];
    k.on("uffd_move", (e) => events.push(e));
    expect(move_pages(k, ctx, DST, SRC, HP, 0)).toBe(HP);
    expect(events).toEqual([{ pid: p.pid, src: SRC, dst: DST, pages: 512, thp: 1 }]);
    expect(k.ops.hugePmdAt(p.mm, DST)).toBe(1);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(0);
    expect(p.folioAt(DST)).toBe(head);
    expect(k.ops.folioEntireMapcount(head)).toBe(1);
    expect(k.ops.folioRefCount(head)).toBe(refs);
    expect(k.ops.PageAnonExclusive(head)).toBe(true);
    const dv = p.vmas.lookup(DST)!;
    expect(k.ops.folioMappingId(head)).toBe(dv.anonVma!.id);
    expect(k.ops.folioIndex(head)).toBe(dv.index(DST));
    expect(k.counters().thp_split_pmd).toBe(splits);
    for (const i of [0, 1, 511]) expect(p.read(DST + i * PAGE)).toBe(100 + i);
    ok(k);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });

  it("a partial or misaligned range splits the PMD (split_huge_pmd()) and then the folio (split_folio()), moving PTEs", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    for (const i of [0, 1, 2, 511]) p.write(SRC + i * PAGE, 100 + i);
    const head = p.folioAt(SRC)!;
    const splits = k.counters().thp_split_pmd;
    expect(move_pages(k, ctx, DST + PAGE, SRC + PAGE, 2 * PAGE, 0)).toBe(2 * PAGE);
    expect(k.counters().thp_split_pmd).toBe(splits + 1);
    expect(k.ops.folioOrder(head)).toBe(0); // split into order-0 folios
    expect([p.read(DST + PAGE), p.read(DST + 2 * PAGE), p.read(SRC + PAGE), p.read(SRC), p.read(SRC + 511 * PAGE)])
      .toEqual([101, 102, 0, 100, 611]);
    const f = p.pfnAt(DST + PAGE)!;
    expect(f).toBe(head + 1);
    expect(k.ops.folioIndex(f)).toBe(p.vmas.lookup(DST)!.index(DST + PAGE));
    expect(k.ops.folioMapcount(f)).toBe(1);
    ok(k);
  });

  it("EBUSY for a THP shared after fork, before any split; EBUSY for a PTE-mapped large folio that cannot be split (pinned)", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    p.write(SRC, 1);
    const c = p.fork();
    const splits = k.counters().thp_split_pmd;
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, HP, 0))).toEqual(["EBUSY", -16]);
    expect(k.counters().thp_split_pmd).toBe(splits);
    c.exit();
    p.write(SRC, 2); // reuse: the THP is exclusive again
    const pin = p.pinUserPages(SRC + 5 * PAGE, 1, FOLL_PIN);
    // the PMD splits, the pinned folio does not: EBUSY (split_folio()'s -EAGAIN is not retried)
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EBUSY", -16]);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(0);
    expect(k.ops.folioOrder(p.folioAt(SRC)!)).toBe(9);
    pin.release();
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(p.read(DST)).toBe(2);
    ok(k);
  });

  it("a run of THPs moves whole, each in turn, and stops at the first that cannot (a pinned one): EBUSY after the bytes before it", () => {
    const { k, p, ctx } = setup(4 * 512, { thp: true });
    for (let t = 0; t < 4; t++) p.write(SRC + t * HP, 10 + t);
    const heads = [0, 1, 2, 3].map((t) => p.folioAt(SRC + t * HP)!);
    const pin = p.pinUserPages(SRC + 2 * HP, 1, FOLL_PIN);
    const splits = k.counters().thp_split_pmd;
    const events: unknown[] = [];
    k.on("uffd_move", (e) => events.push(e));
    const { moved, error } = movePagesOutcome(k, ctx, DST, SRC, 4 * HP, 0);
    expect([moved, error?.errno]).toEqual([2 * HP, "EBUSY"]);
    expect(events).toEqual([{ pid: p.pid, src: SRC, dst: DST, pages: 1024, thp: 2 }]);
    const dv = p.vmas.lookup(DST)!;
    for (const t of [0, 1]) {
      expect([k.ops.hugePmdAt(p.mm, DST + t * HP), k.ops.hugePmdAt(p.mm, SRC + t * HP)]).toEqual([1, 0]);
      expect([p.folioAt(DST + t * HP), k.ops.folioIndex(heads[t]!)]).toEqual([heads[t], dv.index(DST + t * HP)]);
      expect(p.read(DST + t * HP)).toBe(10 + t);
    }
    // the pinned THP and the one after it stay whole where they were
    expect([2, 3].map((t) => k.ops.hugePmdAt(p.mm, SRC + t * HP))).toEqual([1, 1]);
    expect([2, 3].map((t) => k.ops.hugePmdAt(p.mm, DST + t * HP))).toEqual([0, 0]);
    expect(k.counters().thp_split_pmd).toBe(splits);
    pin.release();
    expect(move_pages(k, ctx, DST + 2 * HP, SRC + 2 * HP, 2 * HP, 0)).toBe(2 * HP);
    expect([p.read(DST + 2 * HP), p.read(DST + 3 * HP)]).toEqual([12, 13]);
    ok(k);
  });

  it("EBUSY: a pinned PMD-mapped THP does not move whole", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    p.write(SRC, 1);
    const pin = p.pinUserPages(SRC, 1, FOLL_PIN);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, HP, 0))).toEqual(["EBUSY", -16]);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(1);
    pin.release();
    ok(k);
  });

  it("EEXIST: a THP at the destination PMD", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    p.madvise(DST, 1024 * PAGE, MADV_HUGEPAGE);
    p.write(SRC, 1);
    // a THP fault in a VMA registered for missing faults is the handler's: fault it in unregistered
    const dv = p.vmas.lookup(DST)!;
    dv.flags &= ~VM_UFFD_MISSING;
    p.write(DST + 7 * PAGE, 2);
    dv.flags |= VM_UFFD_MISSING;
    expect(k.ops.hugePmdAt(p.mm, DST)).toBe(1);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, HP, 0))).toEqual(["EEXIST", -17]);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(1);
    ok(k);
  });

  it("the huge zero page PMD moves whole, read-only, no folio touched", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    expect(p.read(SRC)).toBe(0);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(1);
    const zero = p.folioAt(SRC)!;
    expect(zero).toBe(k.hugeZeroFolio);
    expect(move_pages(k, ctx, DST, SRC, HP, 0)).toBe(HP);
    expect(p.folioAt(DST)).toBe(zero);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(0);
    const e = k.core.x.pmdp_get(p.mm, DST);
    expect((e >> BigInt(C._PAGE_BIT_RW)) & 1n).toBe(0n);
    expect(p.read(DST + 3 * PAGE)).toBe(0);
    ok(k);
  });
});

describe("move_pages(): more of the kernel's cases", () => {
  it("a swap entry keeps its uffd-wp bit (move_swap_pte() moves the entry as it is), unlike a present PTE", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    p.madvise(SRC, PAGE, MADV_PAGEOUT);
    const e = k.core.x.ptep_get(p.mm, SRC);
    k.core.x.ptep_set(k.core.ctx, p.mm, SRC, e | BigInt(1 << C._PAGE_BIT_SWP_UFFD_WP));
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(k.ops.swapPteSlot(p.mm, DST)!.uffdWp).toBe(true);
    ok(k);
  });

  it("EAGAIN: a migration entry in the source (the kernel waits in migration_entry_wait() and retries)", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    const f = p.pfnAt(SRC)!;
    // migration holds its own reference (isolation) while the entry is in place
    k.ops.folioRefAdd(f, 1);
    expect(k.ops.tryToMigrateOne(p.mm, SRC, f, 0)).toBe(C.MIGRATION_ENTRY_WRITE);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EAGAIN", -11]);
    expect(k.ops.removeMigrationPte(p.mm, SRC, f, f, p.vmas.lookup(SRC)!.pageProt)).toBe(3);
    k.ops.folioPutRefs(f, 1);
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(p.read(DST)).toBe(1);
    ok(k);
  });

  it("a PMD migration entry: EAGAIN from move_pages_huge_pmd() (the swap PMD the seed's review asked about), and when split", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    p.write(SRC, 1);
    const head = p.folioAt(SRC)!;
    const prot = p.vmas.lookup(SRC)!.pageProt;
    k.ops.folioRefAdd(head, 1); // the migration's own reference
    expect(k.ops.setPmdMigrationEntry(p.mm, SRC, head, 0)).toBe(C.MIGRATION_ENTRY_WRITE);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(2);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, HP, 0))).toEqual(["EAGAIN", -11]);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(2);
    expect(k.ops.removeMigrationPmd(p.mm, SRC, head, head, prot)).toBe(3);
    k.ops.folioPutRefs(head, 1);
    ok(k);
    // a partial range splits it into PTE migration entries first
    k.ops.folioRefAdd(head, 1);
    expect(k.ops.setPmdMigrationEntry(p.mm, SRC, head, 0)).toBe(C.MIGRATION_ENTRY_WRITE);
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["EAGAIN", -11]);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(0);
    for (let i = 0; i < 512; i++) expect(k.ops.removeMigrationPte(p.mm, SRC + i * PAGE, head + i, head + i, prot)).toBe(3);
    k.ops.folioPutRefs(head, 1);
    ok(k);
    expect(move_pages(k, ctx, DST, SRC, PAGE, 0)).toBe(PAGE);
    expect(p.read(DST)).toBe(1);
    ok(k);
  });

  it("ENOMEM: no page table for the destination (nothing moved)", () => {
    const { k, p, ctx } = setup(2);
    p.write(SRC, 1);
    k.injectFailure("pageTable", { nth: 1 });
    expect(rangeError(() => move_pages(k, ctx, DST, SRC, PAGE, 0))).toEqual(["ENOMEM", -12]);
    k.clearInjection();
    expect(p.pfnAt(SRC)).not.toBeNull();
    ok(k);
  });

  it("the huge zero PMD, moved in part: split into zero PTEs, the zero page moves", () => {
    const { k, p, ctx } = setup(1024, { thp: true });
    expect(p.read(SRC)).toBe(0);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(1);
    expect(move_pages(k, ctx, DST, SRC + 3 * PAGE, PAGE, 0)).toBe(PAGE);
    expect(k.ops.hugePmdAt(p.mm, SRC)).toBe(0);
    expect(p.pfnAt(DST)).toBe(0);
    expect(k.core.x.ptep_get(p.mm, SRC + 3 * PAGE)).toBe(0n);
    expect(p.pfnAt(SRC + 4 * PAGE)).toBe(0);
    ok(k);
  });

  it("an overlapping move is told to the oracle page by page; a plain one as one event", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    p.mmap(SRC, 8 * PAGE, RW, PRIV | MAP_FIXED);
    const ctx = new UserfaultfdCtx(p, 1);
    register(p, ctx, SRC);
    const events: unknown[] = [];
    k.on("uffd_move", (e) => events.push(e));
    p.write(SRC, 7);
    p.write(SRC + 5 * PAGE, 8);
    move_pages(k, ctx, SRC + PAGE, SRC, 2 * PAGE, 0);
    move_pages(k, ctx, SRC + 6 * PAGE, SRC + 5 * PAGE, PAGE, 0);
    expect(events).toEqual([
      { pid: p.pid, src: SRC, dst: SRC + PAGE, pages: 1, thp: 0 },
      { pid: p.pid, src: SRC + PAGE, dst: SRC + 2 * PAGE, pages: 1, thp: 0 },
      { pid: p.pid, src: SRC + 5 * PAGE, dst: SRC + 6 * PAGE, pages: 1, thp: 0 },
    ]);
    expect([p.read(SRC + 2 * PAGE), p.read(SRC + 6 * PAGE), p.read(SRC + 5 * PAGE)]).toEqual([7, 8, 0]);
    ok(k);
  });
});

describe("move_pages(): random sequences", () => {
  it("writes, forks, exits, pageouts, pins and moves (some overlapping, some with holes): contents as a model says, the oracle silent, the invariants kept", () => {
    let totalMoved = 0;
    const errors = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rng = new Rng(seed);
      const int = (n: number) => Math.floor(rng.next() * n);
      const k = kernel("anon-exclusive");
      const p = k.spawn();
      const N = 32;
      p.mmap(SRC, N * PAGE, RW, PRIV | MAP_FIXED);
      const ctx = new UserfaultfdCtx(p, 1);
      register(p, ctx, SRC);
      const model = new Array<number>(N).fill(0);
      let child: Process | null = null;
      let pins: { release(): void }[] = [];
      for (let step = 0; step < 60; step++) {
        const op = int(10);
        if (op < 3) {
          const i = int(N);
          model[i] = step + 1;
          p.write(SRC + i * PAGE, step + 1);
        } else if (op === 3) {
          if (child) { child.exit(); child = null; } else child = p.fork();
        } else if (op === 4) {
          p.madvise(SRC + int(N) * PAGE, PAGE, MADV_PAGEOUT);
        } else if (op === 5) {
          if (pins.length) { for (const x of pins) x.release(); pins = []; } else pins.push(p.pinUserPages(SRC + int(N) * PAGE, 1, FOLL_PIN));
        } else {
          const n = 1 + int(4);
          const s = int(N - n + 1);
          const d = int(N - n + 1);
          const mode = int(2) ? ALLOW : 0;
          let moved = 0;
          try {
            moved = move_pages(k, ctx, SRC + d * PAGE, SRC + s * PAGE, n * PAGE, mode);
          } catch (e) {
            if (!(e instanceof UffdRangeError)) throw e;
            expect(["EEXIST", "ENOENT", "EBUSY"]).toContain(e.errno);
            expect(e.result).toBe(-e.code);
            errors.add(e.errno);
          }
          totalMoved += moved / PAGE;
          // page by page, in address order, as the kernel's loop goes
          for (let i = 0; i < moved / PAGE; i++) {
            model[d + i] = model[s + i]!;
            if (s + i !== d + i) model[s + i] = 0;
          }
        }
        expect(k.checkInvariants()).toEqual([]);
      }
      for (let i = 0; i < N; i++) expect(p.read(SRC + i * PAGE)).toBe(model[i]);
      expect(k.findings).toEqual([]);
      for (const x of pins) x.release();
      child?.exit();
      p.exit();
      expect(k.heldFrames()).toEqual([]);
    }
    // the sequences do reach moves and each kind of refusal
    expect(totalMoved).toBeGreaterThan(50);
    expect([...errors].sort()).toEqual(["EBUSY", "EEXIST", "ENOENT"]);
  });
});

describe("move_pages(): mTHP", () => {
  it("a PTE-mapped 64K folio is split (split_folio(), MTHP_STAT_SPLIT) and its page moved; the other pieces stay, each its own folio", () => {
    const k = kernel("anon-exclusive", { memory: "32M", thp: { sizes: { "64K": "always" } } });
    const p = k.spawn();
    p.mmap(SRC, 16 * PAGE, RW, PRIV | MAP_FIXED);
    p.mmap(DST, 16 * PAGE, RW, PRIV | MAP_FIXED);
    const ctx = new UserfaultfdCtx(p, 1);
    register(p, ctx, DST);
    for (let i = 0; i < 16; i++) p.write(SRC + i * PAGE, 50 + i);
    const head = p.folioAt(SRC)!;
    expect(k.ops.folioOrder(head)).toBe(4);
    const splits = k.mthpStats()["64K"].split;
    expect(move_pages(k, ctx, DST + 2 * PAGE, SRC + 2 * PAGE, PAGE, 0)).toBe(PAGE);
    expect(k.mthpStats()["64K"].split).toBe(splits + 1);
    const f = p.pfnAt(DST + 2 * PAGE)!;
    expect(f).toBe(head + 2);
    expect([k.ops.folioOrder(f), k.ops.folioMapcount(f), k.ops.folioRefCount(f)]).toEqual([0, 1, 1]);
    expect(k.ops.PageAnonExclusive(f)).toBe(true);
    expect(k.ops.folioIndex(f)).toBe(p.vmas.lookup(DST)!.index(DST + 2 * PAGE));
    expect(k.ops.folioIndex(head + 3)).toBe(p.vmas.lookup(SRC)!.index(SRC + 3 * PAGE));
    expect([k.ops.folioOrder(head), k.ops.folioMapcount(head)]).toEqual([0, 1]);
    for (let i = 0; i < 16; i++) expect(p.read(SRC + i * PAGE)).toBe(i === 2 ? 0 : 50 + i);
    expect(p.read(DST + 2 * PAGE)).toBe(52);
    ok(k);
    p.exit();
    expect(k.heldFrames()).toEqual([]);
  });
});
