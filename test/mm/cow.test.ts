// Copy-on-write after fork, under each strategy, with exact numbers of copies and reuses.
import { describe, it, expect } from "vitest";
import { PROT_READ, MADV_WIPEONFORK, MADV_DONTFORK, MADV_KEEPONFORK, MREMAP_MAYMOVE, MREMAP_FIXED } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

describe.each(STRATEGIES)("%s", (strategy) => {
  it("basic COW after fork: each side keeps its own data; one copy per first write, reuse after", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, 100 + i);
    const c = p.fork();
    p.write(a, 1);
    c.write(a + PAGE, 2);
    expect([p.read(a), p.read(a + PAGE), c.read(a), c.read(a + PAGE)]).toEqual([1, 101, 100, 2]);
    expect(k.counters().copies).toBe(2);
    expect(k.counters().reuses).toBe(0);
    // the other side is now the only mapper of each old page: it reuses it
    p.write(a + PAGE, 3);
    c.write(a, 4);
    expect(k.counters().copies).toBe(2);
    expect(k.counters().reuses).toBe(2);
    expect([p.read(a), p.read(a + PAGE), c.read(a), c.read(a + PAGE)]).toEqual([1, 3, 4, 2]);
    // untouched pages are still shared
    expect(p.pfnAt(a + 2 * PAGE)).toBe(c.pfnAt(a + 2 * PAGE));
    expect(k.counters().necessaryCow).toBe(2);
    expect(k.findings).toEqual([]);
  });

  it("after the child exits, the parent reuses every page: no copy", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, i + 1);
    p.fork().exit();
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, 10 + i);
    expect(k.counters().copies).toBe(0);
    expect(k.counters().reuses).toBe(4);
    expect(k.counters().wpFaults).toBe(4);
  });

  it("a read maps the shared zero page; a write after it gets a fresh page", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    expect(p.read(a)).toBe(0);
    expect(p.pfnAt(a)).toBe(0);
    expect(k.counters().zeroPageFaults).toBe(1);
    expect(k.counters().anonFaults).toBe(0);
    p.write(a, 7);
    expect(p.read(a)).toBe(7);
    expect(p.pfnAt(a)).not.toBe(0);
    expect(k.counters().zeroPageCopies).toBe(1);
    expect(k.counters().copies).toBe(0);
    // a first write with nothing mapped is a plain anonymous fault
    p.write(a + PAGE, 8);
    expect(k.counters().anonFaults).toBe(1);
    // the zero page is shared by fork without references and copied on write
    const c = p.fork();
    expect(c.read(a)).toBe(7);
  });

  it("WIPEONFORK: the child starts with zeroes; DONTFORK: the child has no mapping", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    const b = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 5);
    p.write(b, 6);
    p.madvise(a, 2 * PAGE, MADV_WIPEONFORK);
    p.madvise(b, 2 * PAGE, MADV_DONTFORK);
    const c = p.fork();
    expect(c.read(a)).toBe(0);
    expect(() => c.read(b)).toThrow(/EFAULT: SIGSEGV/);
    expect(p.read(a)).toBe(5);
    expect(p.read(b)).toBe(6);
    // the parent's wiped page was never shared: writing it needs no fault at all
    const before = k.counters().wpFaults;
    p.write(a, 50);
    expect(k.counters().wpFaults).toBe(before);
    // KEEPONFORK restores sharing for the next fork
    p.madvise(a, 2 * PAGE, MADV_KEEPONFORK);
    expect(p.fork().read(a)).toBe(50);
    expect(c.maps().map((m) => m.start)).toEqual([a]);
  });

  it("mremap moves pages with their state: exclusive pages stay writable, shared ones still copy", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, 20 + i);
    const pfns = [0, 1, 2, 3].map((i) => p.pfnAt(a + i * PAGE));
    const to = a - 64 * PAGE;
    expect(p.mremap(a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to)).toBe(to);
    expect([0, 1, 2, 3].map((i) => p.pfnAt(to + i * PAGE))).toEqual(pfns);
    expect(() => p.read(a)).toThrow(/SIGSEGV/);
    const faults = k.counters().wpFaults;
    for (let i = 0; i < 4; i++) p.write(to + i * PAGE, 30 + i); // still writable: no fault
    expect(k.counters().wpFaults).toBe(faults);
    // after a fork, a moved range still shares its pages with the child
    const c = p.fork();
    const grown = p.mremap(to, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    p.write(grown, 99);
    expect(c.read(to)).toBe(30);
    expect(p.read(grown + PAGE)).toBe(31);
    expect(p.read(grown + 6 * PAGE)).toBe(0);
    expect(k.counters().copies).toBe(1);
  });

  it("mprotect R/O then R/W: exclusive pages vs shared pages", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    p.mprotect(a, 2 * PAGE, PROT_READ);
    expect(() => p.write(a, 3)).toThrow(/SIGSEGV/);
    p.mprotect(a, 2 * PAGE, RW);
    const f0 = k.counters().wpFaults;
    p.write(a, 3);
    // 6.2's rule maps the exclusive page writable at once; before, the write faults and reuses
    const upgrade = strategy === "anon-exclusive";
    expect(k.counters().wpFaults - f0).toBe(upgrade ? 0 : 1);
    expect(k.counters().reuses).toBe(upgrade ? 0 : 1);
    // shared with a child: never upgraded, the write copies
    const c = p.fork();
    p.mprotect(a, 2 * PAGE, PROT_READ);
    p.mprotect(a, 2 * PAGE, RW);
    p.write(a + PAGE, 4);
    expect(k.counters().copies).toBe(1);
    expect(c.read(a + PAGE)).toBe(2);
  });
});

describe("knobs", () => {
  it("anon-exclusive without the 6.2 and 6.5 knobs is Linux 6.1: after mprotect the write faults and reuses", () => {
    const k = kernel("anon-exclusive", { knobs: { mprotectWriteUpgrade: false, roLongtermPinAnyCow: false, directIoPins: false } });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.mprotect(a, PAGE, PROT_READ);
    p.mprotect(a, PAGE, RW);
    p.write(a, 2);
    expect(k.counters().reuses).toBe(1);
    expect(k.strategy.kernels).toBe("Linux 6.1");
  });

  it("names the releases a set of knobs stands for, and a mix no release had", () => {
    const label = (strategy: "mapcount" | "pagecount" | "anon-exclusive", knobs = {}) => kernel(strategy, { knobs }).strategy.kernels;
    expect(label("mapcount")).toBe("Linux ≤ 5.7");
    expect(label("mapcount", { gupBreaksCow: true })).toBe("Linux 5.8");
    expect(label("pagecount")).toBe("Linux 5.14 – 5.17");
    expect(label("pagecount", { freeSwapCacheAfterCow: false })).toBe("Linux 5.11 – 5.13");
    expect(label("pagecount", { swapcacheReuse: true, lruDrainReuse: true, thpPagecountReuse: true })).toBe("Linux 5.18");
    expect(label("pagecount", { clearRefsSkipsPinned: false, pinnedNotSwapped: false, freeSwapCacheAfterCow: false })).toBe("Linux 5.9 – 5.10");
    expect(label("anon-exclusive")).toBe("Linux ≥ 6.5");
    expect(label("anon-exclusive", { mprotectWriteUpgrade: false })).toBe("no released kernel (roLongtermPinAnyCow=true, mprotectWriteUpgrade=false, directIoPins=true)");
  });

  it("an unknown knob or strategy is EINVAL", () => {
    expect(() => kernel("anon-exclusive", { knobs: { nope: true } })).toThrow(/EINVAL: strategy anon-exclusive has no knob "nope"/);
    expect(() => kernel("linux-2.4" as never)).toThrow(/EINVAL: unknown strategy/);
  });
});
