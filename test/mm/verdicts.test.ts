// The oracle's verdicts on states where it used to be wrong: correct kernel behaviour judged a
// missed COW, a stale pin nobody flagged, a verdict counted for a copy that never happened, and
// legitimate leftovers reported as leaks.
import { describe, it, expect } from "vitest";
import { MAP_SHARED, MAP_ANONYMOUS, MADV_PAGEOUT, C, InvariantError } from "../../src/index.js";
import { kernel, errnoOf, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

describe("a device write through a live pin whose owner unmapped the page", () => {
  it.each(STRATEGIES)("%s: the owner's own pipe shows what its io_uring buffer wrote: no finding", (strategy) => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const buf = p.ioUringRegisterBuffers(a, PAGE);
    const pipe = p.vmsplice(a, PAGE);
    p.munmap(a, PAGE);
    buf.writeFixed(0, 2);
    expect(pipe.read()).toEqual([2]);
    expect(k.findings).toEqual([]);
    expect(k.counters().missedCow).toBe(0);
  });

  it.each(STRATEGIES)("%s: a shmem page written through a child's pin after it unmapped: the parent sees it, no finding", (strategy) => {
    const k = kernel(strategy);
    const p = k.spawn();
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 1);
    const c = p.fork();
    const pin = c.pinUserPages(s, 1, C.FOLL_PIN | C.FOLL_WRITE | C.FOLL_LONGTERM);
    c.munmap(s, PAGE);
    pin.write(0, 9);
    expect(p.read(s)).toBe(9);
    expect(k.findings).toEqual([]);
  });

  it("another process's pin writing into a page a pipe holds is still a missed COW", () => {
    // mapcount (≤ 5.7): the child pins the page the parent spliced, the device writes for the child
    const k = kernel("mapcount");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const c = p.fork();
    const pipe = c.vmsplice(a, PAGE);
    c.munmap(a, PAGE);
    const pin = p.pinUserPages(a, 1, C.FOLL_GET | C.FOLL_WRITE); // no COW break: mapcount 1, reused
    pin.write(0, 2);
    expect(pipe.read(c)).toEqual([2]);
    expect(k.findings.map((f) => f.kind)).toEqual(["missed-cow"]);
  });
});

describe("a R/O long-term pin of the shared zero page", () => {
  function pinZeroThenWrite(strategy: "mapcount" | "pagecount" | "anon-exclusive", knobs = {}) {
    const k = kernel(strategy, { knobs });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    expect(p.read(a)).toBe(0); // the zero page is mapped
    const mr = p.rdmaRegister(a, PAGE, false); // FOLL_PIN | FOLL_LONGTERM, read-only
    p.write(a, 5);
    return { k, seen: mr.remoteRead(0) };
  }

  it("6.2+ (84209e87c696): the pin unshares first, so it sees the process's writes", () => {
    const { k, seen } = pinZeroThenWrite("anon-exclusive");
    expect(seen).toBe(5);
    expect(k.counters().wrongCow).toBe(0);
    expect(k.findings).toEqual([]);
  });

  it.each([
    ["anon-exclusive before 6.2", "anon-exclusive", { roLongtermPinAnyCow: false }],
    ["pagecount", "pagecount", {}],
    ["mapcount", "mapcount", {}],
  ] as const)("%s: the pin keeps the zero page while the process writes a fresh one: a wrong COW", (_name, strategy, knobs) => {
    const { k, seen } = pinZeroThenWrite(strategy, knobs);
    expect(seen).toBe(0);
    expect(k.counters()).toMatchObject({ wrongCow: 1, zeroPageCopies: 1 });
    expect(k.findings).toEqual([expect.objectContaining({ kind: "wrong-cow", pfn: 0 })]);
    expect(k.findings[0]!.summary).toMatch(/wrong COW: the rdma pin of pid 1 at 0x[0-9a-f]+ no longer sees the process's page/);
  });
});

describe("verdicts count copies that happened", () => {
  it("a COW fault that fails with ENOMEM adds no verdict", () => {
    const k = kernel("anon-exclusive", { memory: "512K", swap: 0 });
    const p = k.spawn();
    const a = p.mmap(null, 256 * PAGE, RW, PRIV);
    let n = 0;
    for (; k.core.freePages() > 0; n++) p.write(a + n * PAGE, n + 1);
    const c = p.fork();
    expect(errnoOf(() => c.write(a, 5))).toBe("ENOMEM");
    expect(k.counters()).toMatchObject({ copies: 0, necessaryCow: 0, unnecessaryCow: 0 });
    c.munmap(a + (n - 1) * PAGE, PAGE);
    p.munmap(a + (n - 1) * PAGE, PAGE);
    c.write(a, 5);
    expect(k.counters()).toMatchObject({ copies: 1, necessaryCow: 1 });
  });
});

describe("the no-leak invariant", () => {
  it("a page still isolated after its process exited is held by the isolation, not leaked", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = k.isolate(p.pid, a);
    p.exit(); // checks every invariant after the step
    expect(k.checkInvariants()).toEqual([]);
    expect(k.heldFrames()).toEqual([{ pfn, refcount: 1, holders: [{ kind: "isolated", refs: 1 }] }]);
    k.putback(pfn);
    expect(k.heldFrames()).toEqual([]);
  });

  it("names what holds each frame: mappings, the swap cache, pins, shmem", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    p.write(s, 3);
    const pin = p.pinUserPages(a, 1, C.FOLL_PIN);
    p.madvise(a + PAGE, PAGE, MADV_PAGEOUT);
    expect(p.read(a + PAGE)).toBe(2);
    k.drainLru();
    const held = new Map(k.heldFrames().map((f) => [f.pfn, f.holders]));
    expect(held.get(p.pfnAt(a)!)).toEqual([{ kind: "gup", owner: "pin", pid: 1, refs: C.GUP_PIN_COUNTING_BIAS }, { kind: "mapping", pid: 1, address: a }]);
    expect(held.get(p.pfnAt(s)!)).toEqual([{ kind: "shmem", file: expect.any(Number), index: 0 }, { kind: "mapping", pid: 1, address: s }]);
    // swapped in by a read fault: it stays in the swap cache (should_try_to_free_swap() wants a write)
    expect(held.get(p.pfnAt(a + PAGE)!)).toEqual([{ kind: "mapping", pid: 1, address: a + PAGE }, { kind: "swap-cache", slot: expect.any(Number), swapCount: 0 }]);
    pin.release();
  });

  it("a frame nothing holds is a leak, named with its refcount; the step that leaves one throws InvariantError", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const leaked = k.core.allocPages(0);
    expect(k.checkInvariants()).toEqual([{
      invariant: "no-leak",
      detail: `pfn ${leaked} is not free, yet nothing holds it (refcount 1: not mapped, not in the swap cache, no LRU batch, isolation, GUP user or shmem file refers to it)`,
    }]);
    let e: unknown;
    try { p.exit(); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(InvariantError);
    expect((e as InvariantError).violations.map((v) => v.invariant)).toEqual(["no-leak"]);
    expect((e as InvariantError).after).toBe("exit()");
  });
});
