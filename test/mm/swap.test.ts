// Swap and GUP at the edges: bad input, a full swap device, memory pressure that swaps instead
// of failing — and nothing is ever lost.
import { describe, it, expect } from "vitest";
import { MADV_PAGEOUT, C, PROT_NONE, PROT_READ, MAP_SHARED, MAP_ANONYMOUS, type Kernel } from "../../src/index.js";
import { kernel, failsCleanly, errnoOf, RW, PRIV, PAGE } from "./helpers.js";


describe("bad GUP input", () => {
  it("a pin that cannot take its first page fails with EFAULT, changing nothing", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.mprotect(a + 2 * PAGE, PAGE, PROT_NONE);
    p.pinUserPages(a, 1, C.FOLL_PIN).release(); // MMF_HAS_PINNED, which any FOLL_PIN call sets first
    failsCleanly(k, "EFAULT", () => p.pinUserPages(a + 8 * PAGE, 1, C.FOLL_PIN));
    failsCleanly(k, "EFAULT", () => p.pinUserPages(a + 2 * PAGE, 2, C.FOLL_PIN)); // page 2 is PROT_NONE
    failsCleanly(k, "EFAULT", () => p.vmsplice(a + 2 * PAGE, PAGE));
  });

  it("a pin that stops part way is a short result, as pin_user_pages() returns one; io_uring undoes it (EFAULT)", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.mprotect(a + 2 * PAGE, PAGE, PROT_NONE);
    const pins = p.pinUserPages(a, 4, C.FOLL_PIN | C.FOLL_WRITE); // stops at the PROT_NONE page
    expect(pins.pages).toBe(2);
    expect(pins.pfns).toEqual([p.pfnAt(a), p.pfnAt(a + PAGE)]);
    pins.release();
    expect(p.vmsplice(a + PAGE, 3 * PAGE).pages).toBe(1);
    // io_pin_pages(): a partial pin is released and the registration fails with EFAULT; the
    // page GUP faulted in on the way stays, as in Linux
    expect(p.pfnAt(a + 3 * PAGE)).toBeNull();
    expect(errnoOf(() => p.ioUringRegisterBuffers(a + 3 * PAGE, 2 * PAGE))).toBe("EFAULT"); // runs off the end
    expect(p.pfnAt(a + 3 * PAGE)).not.toBeNull();
    expect(k.pins.active.size).toBe(1); // the pipe's
    expect(k.checkInvariants()).toEqual([]);
  });

  it("a failing FOLL_PIN call leaves MMF_HAS_PINNED set (mm_set_has_pinned_flag() runs first) and nothing else", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, PROT_READ, PRIV);
    expect(k.core.x.mm_flags(p.mm) & C.MMF_HAS_PINNED).toBe(0);
    expect(errnoOf(() => p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_WRITE))).toBe("EFAULT");
    expect(k.core.x.mm_flags(p.mm) & C.MMF_HAS_PINNED).not.toBe(0);
    failsCleanly(k, "EFAULT", () => p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_WRITE));
  });

  it("bad flags are EINVAL; a write pin of a read-only mapping is EFAULT", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    failsCleanly(k, "EINVAL", () => p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_GET));
    failsCleanly(k, "EINVAL", () => p.pinUserPages(a, 1, C.FOLL_GET | C.FOLL_LONGTERM));
    failsCleanly(k, "EINVAL", () => p.pinUserPages(a, 0, C.FOLL_PIN));
    failsCleanly(k, "EINVAL", () => p.pinUserPages(a + 1, 1, C.FOLL_PIN));
    failsCleanly(k, "EINVAL", () => p.pinUserPages(a, 1, C.FOLL_PIN | 1 << 12));
    p.mprotect(a, PAGE, 1);
    failsCleanly(k, "EFAULT", () => p.pinUserPages(a, 1, C.FOLL_GET | C.FOLL_WRITE));
  });

  it("releasing references twice is EINVAL; a device write through a read-only region is EACCES", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pin = p.pinUserPages(a, 1, C.FOLL_PIN);
    pin.release();
    failsCleanly(k, "EINVAL", () => pin.release());
    failsCleanly(k, "EINVAL", () => pin.read(0));
    const mr = p.rdmaRegister(a, PAGE, false);
    failsCleanly(k, "EACCES", () => mr.remoteWrite(0, 5));
    failsCleanly(k, "EINVAL", () => mr.remoteRead(1));
    expect(mr.remoteRead(0)).toBe(1);
  });

  it("every reference is accounted: the refcount includes each pin's bias, and exit releases them", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    p.pinUserPages(a, 1, C.FOLL_PIN | C.FOLL_LONGTERM);
    p.vmsplice(a, PAGE);
    expect(k.core.x.folio_ref_count(pfn)).toBe(1 + C.GUP_PIN_COUNTING_BIAS + 1);
    expect(k.pins.active.size).toBe(2);
    // a reference dropped behind the registry's back is caught
    k.core.x.folio_ref_sub_return(pfn, 1);
    expect(k.checkInvariants().map((v) => v.invariant)).toEqual(["refcount"]);
    k.core.x.folio_ref_add(pfn, 1);
    p.exit();
    k.drainLru();
    expect(k.pins.active.size).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    expect(k.core.freePages()).toBe(k.core.layout.nframes - 1);
  });
});

describe("swap", () => {
  it("MADV_PAGEOUT leaves pages another process maps alone; fork shares swap entries", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    p.madvise(a + PAGE, PAGE, MADV_PAGEOUT); // exclusive: swapped
    const c = p.fork();
    p.madvise(a, 2 * PAGE, MADV_PAGEOUT); // page 0 is shared with the child now: kept
    expect(p.pfnAt(a)).not.toBeNull();
    expect([p.rss().swap, c.rss().swap]).toEqual([1, 1]);
    const slot = k.core.x.swap_pte_slot(k.core.ctx, p.mm, a + PAGE);
    expect(k.core.x.swap_count(slot)).toBe(2);
    expect([c.read(a + PAGE), p.read(a + PAGE)]).toEqual([2, 2]);
    c.write(a + PAGE, 3);
    expect([c.read(a + PAGE), p.read(a + PAGE)]).toEqual([3, 2]);
    expect(k.counters().pageouts).toBe(1);
  });

  it("a full swap device keeps the page in memory; nothing is lost", () => {
    const k = kernel("anon-exclusive", { swap: "4K" }); // one usable slot
    const p = k.spawn();
    const a = p.mmap(null, 3 * PAGE, RW, PRIV);
    for (let i = 0; i < 3; i++) p.write(a + i * PAGE, 10 + i);
    p.madvise(a, 3 * PAGE, MADV_PAGEOUT);
    expect(p.rss()).toEqual({ anon: 2, shmem: 0, swap: 1 });
    expect([0, 1, 2].map((i) => p.read(a + i * PAGE))).toEqual([10, 11, 12]);
  });

  it("memory pressure swaps pages out instead of failing, and every value comes back", () => {
    const k = kernel("anon-exclusive", { memory: "256K", swap: "2M", checkInvariants: false });
    const p = k.spawn();
    const n = 200; // far more pages than frames (64)
    const a = p.mmap(null, n * PAGE, RW, PRIV);
    for (let i = 0; i < n; i++) p.write(a + i * PAGE, 1000 + i);
    expect(k.counters().pageouts).toBeGreaterThan(n - 64);
    for (let i = 0; i < n; i++) expect(p.read(a + i * PAGE)).toBe(1000 + i);
    expect(k.checkInvariants()).toEqual([]);
    expect(k.latentMissedCows()).toEqual([]);
    p.exit();
    k.drainLru();
    expect(k.checkInvariants()).toEqual([]);
    expect(k.core.swapSlotsAvailable()).toBe(k.core.layout.nslots - 1);
  });

  it("memory and swap both full: ENOMEM, and nothing already stored is lost", () => {
    const k = kernel("anon-exclusive", { memory: "256K", swap: "64K", checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, 200 * PAGE, RW, PRIV);
    let i = 0;
    for (; i < 200; i++) {
      try {
        p.write(a + i * PAGE, 1 + i);
      } catch (e) {
        expect(errnoOf(() => { throw e; })).toBe("ENOMEM");
        break;
      }
    }
    expect(i).toBeGreaterThan(60);
    expect(i).toBeLessThan(200);
    failsCleanly(k, "ENOMEM", () => p.write(a + i * PAGE, 5));
    // give some memory back; everything else stored is still there, in RAM or in swap
    p.munmap(a, 20 * PAGE);
    for (let j = 20; j < i; j++) expect(p.read(a + j * PAGE)).toBe(1 + j);
  });

  it("shared anonymous memory is swapped by MADV_PAGEOUT as shmem (can_do_file_pageout()): the entry stays in its page cache", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 4);
    p.madvise(s, PAGE, MADV_PAGEOUT);
    expect([p.rss(), p.pfnAt(s), k.counters().shmemSwapouts]).toEqual([{ anon: 0, shmem: 0, swap: 0 }, null, 1]);
    expect([p.read(s), k.counters().shmemSwapins]).toEqual([4, 1]);
  });
});
