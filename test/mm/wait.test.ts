// Faults that can wait: a fault that needs a folio lock another actor holds ends blocked
// (folio_lock_or_retry(): VM_FAULT_RETRY, nothing changed), is woken by folio_unlock() and
// resumed by the caller; an access that cannot wait fails with EDEADLK and changes nothing.
import { describe, it, expect } from "vitest";
import { MADV_PAGEOUT, type Kernel, type Process, type TraceName } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, errnoOf, failsCleanly } from "./helpers.js";

/** Parent and child share a swapped page; the child swapped it in: the folio is in the swap cache. */
function sharedSwapCache(k: Kernel): { parent: Process; child: Process; a: number; pfn: number } {
  const parent = k.spawn();
  const a = parent.mmap(null, PAGE, RW, PRIV);
  parent.write(a, 7);
  parent.madvise(a, PAGE, MADV_PAGEOUT);
  const child = parent.fork();
  expect(child.read(a)).toBe(7);
  const pfn = child.pfnAt(a)!;
  expect(parent.pfnAt(a)).toBeNull(); // the parent still holds a swap entry
  expect(parent.folioAt(a)).toBe(pfn); // … whose slot the swap-cache folio holds
  return { parent, child, a, pfn };
}

describe.each(STRATEGIES)("faults that wait (%s)", (strategy) => {
  it("a swap-in blocked on the folio lock changes nothing, stays blocked until woken, then completes", () => {
    const k = kernel(strategy);
    const { parent, child, a, pfn } = sharedSwapCache(k);
    expect(k.lockFolioAt(child.pid, a)).toBe(pfn);
    const before = k.counters();
    const maps = parent.maps();

    const r = parent.access(false, a);
    expect(r.state).toBe("blocked");
    expect(r.value).toBeUndefined();
    expect(r.waitingOn?.reason).toBe("folio-lock");
    expect(r.waitingOn?.what).toBe(`the lock of pfn ${pfn}`);
    expect(r.waitingOn?.waiters).toBe(1);
    expect(r.woken).toBe(false);
    expect(parent.pfnAt(a)).toBeNull();
    expect(parent.maps()).toEqual(maps);
    expect(k.counters()).toEqual({ ...before, faultWaits: before.faultWaits + 1 });
    expect(k.checkInvariants()).toEqual([]);

    expect(r.resume()).toBe(r); // not woken: nothing happens
    expect(r.state).toBe("blocked");
    expect(k.counters().swapins).toBe(before.swapins);

    k.unlockFolio(pfn);
    expect(r.woken).toBe(true);
    r.resume();
    expect(r.state).toBe("done");
    expect(r.value).toBe(7);
    expect(r.waitingOn).toBeNull();
    expect(parent.pfnAt(a)).toBe(pfn); // the swap-cache folio, now mapped by both
    expect(k.counters().swapins).toBe(before.swapins + 1);
    expect(() => r.resume()).toThrow(/EINVAL: resume: the access of pid 1 at 0x[0-9a-f]+ is done, not blocked/);
  });

  it("a blocked write, resumed, swaps in and copies: the child keeps the old value", () => {
    const k = kernel(strategy);
    const { parent, child, a, pfn } = sharedSwapCache(k);
    k.lockFolio(pfn);
    const w = parent.access(true, a, 9);
    expect(w.state).toBe("blocked");
    expect(k.counters().copies).toBe(0);
    k.unlockFolio(pfn);
    w.resume();
    expect([w.state, w.value]).toEqual(["done", 9]);
    expect([parent.read(a), child.read(a)]).toEqual([9, 7]);
    expect(k.counters()).toMatchObject({ copies: 1, missedCow: 0, faultWaits: 1 });
    expect(k.findings).toEqual([]);
  });

  it("read() and write() cannot wait: EDEADLK, and nothing changed", () => {
    const k = kernel(strategy);
    const { parent, a, pfn } = sharedSwapCache(k);
    k.lockFolio(pfn);
    failsCleanly(k, "EDEADLK", () => parent.read(a));
    failsCleanly(k, "EDEADLK", () => parent.write(a, 1));
    expect(() => parent.read(a)).toThrow(`EDEADLK: pid ${parent.pid}'s fault at 0x${a.toString(16)} waits for the lock of pfn ${pfn}`);
  });

  it("GUP waits in the kernel; with nothing else to run, its fault is EDEADLK and it takes nothing", () => {
    const k = kernel(strategy);
    const { parent, a, pfn } = sharedSwapCache(k);
    k.lockFolio(pfn);
    failsCleanly(k, "EDEADLK", () => parent.vmsplice(a, PAGE));
    k.unlockFolio(pfn);
    expect(parent.vmsplice(a, PAGE).read()).toEqual([7]);
  });

  it("an access resumed after its process exited fails with ESRCH; after munmap, EFAULT", () => {
    const k = kernel(strategy);
    const { parent, child, a, pfn } = sharedSwapCache(k);
    k.lockFolio(pfn);
    const r = parent.access(false, a);
    const grand = parent.fork(); // the grandchild inherits the swap entry
    const g = grand.access(false, a);
    expect(r.waitingOn).toBe(g.waitingOn);
    expect(r.waitingOn?.waiters).toBe(2);
    parent.munmap(a, PAGE);
    grand.exit();
    k.unlockFolio(pfn);
    expect(errnoOf(() => r.resume())).toBe("EFAULT");
    expect([r.state, r.error?.errno]).toEqual(["failed", "EFAULT"]);
    expect(errnoOf(() => g.resume())).toBe("ESRCH");
    expect(g.state).toBe("failed");
    expect(child.read(a)).toBe(7);
    expect(k.checkInvariants()).toEqual([]);
  });

  it("reclaim skips a locked folio (shrink_folio_list(): folio_trylock() failed)", () => {
    const k = kernel(strategy);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 3);
    const pfn = p.pfnAt(a)!;
    k.lockFolio(pfn);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(p.pfnAt(a)).toBe(pfn);
    expect(k.counters().pageouts).toBe(0);
    k.unlockFolio(pfn);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(p.pfnAt(a)).toBeNull();
    expect(k.counters().pageouts).toBe(1);
  });

  it("the tracepoints tell the wait: folio_lock, fault_wait, folio_unlock, fault_resume", () => {
    const k = kernel(strategy);
    const { parent, a, pfn } = sharedSwapCache(k);
    const seen: string[] = [];
    const names: TraceName[] = ["folio_lock", "fault_wait", "folio_unlock", "fault_resume", "do_swap_page"];
    for (const n of names) k.on(n, (e) => seen.push(`${n} ${JSON.stringify(e)}`));
    k.lockFolio(pfn);
    const r = parent.access(false, a);
    k.unlockFolio(pfn);
    r.resume();
    expect(seen).toEqual([
      `folio_lock {"pfn":${pfn}}`,
      `fault_wait {"pid":${parent.pid},"address":${a},"write":false,"reason":"folio-lock","what":"the lock of pfn ${pfn}"}`,
      `folio_unlock {"pfn":${pfn},"waiters":1}`,
      `fault_resume {"pid":${parent.pid},"address":${a},"write":false,"what":"the lock of pfn ${pfn}"}`,
      expect.stringMatching(new RegExp(`^do_swap_page \\{"pid":${parent.pid},"address":${a},"slot":\\d+,"pfn":${pfn},"fromCache":true,`)),
    ]);
  });
});

describe("folio locks held by other actors", () => {
  it("lockFolio() and unlockFolio() refuse what is not theirs", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    expect(() => k.lockFolio(0)).toThrow("EINVAL: lockFolio: pfn 0 is not an allocated frame");
    expect(() => k.lockFolio(1.5)).toThrow(/^EINVAL/);
    k.lockFolio(pfn);
    expect(k.folioLocked(pfn)).toBe(true);
    expect(() => k.lockFolio(pfn)).toThrow(`EBUSY: lockFolio: pfn ${pfn} is locked already`);
    k.unlockFolio(pfn);
    expect(k.folioLocked(pfn)).toBe(false);
    expect(() => k.unlockFolio(pfn)).toThrow(`EINVAL: unlockFolio: pfn ${pfn} is not locked (by lockFolio())`);
    expect(() => k.lockFolioAt(p.pid, a + PAGE)).toThrow(/^EFAULT: pid 1 has no folio at 0x[0-9a-f]+ \(neither mapped nor in the swap cache\)$/);
  });

  it("a write fault copies a page an outside actor holds locked (its reference counts; under 5.19+ folio_trylock() would fail too) — an unnecessary COW", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.fork().exit(); // the page is no longer exclusive, but nobody else maps it
    const pfn = p.pfnAt(a)!;
    k.lockFolio(pfn);
    const before = k.counters().pagesFreed;
    p.write(a, 2);
    expect(p.pfnAt(a)).not.toBe(pfn);
    expect(k.counters()).toMatchObject({ copies: 1, reuses: 0, unnecessaryCow: 1 });
    expect(k.heldFrames().find((f) => f.pfn === pfn)?.holders).toEqual([{ kind: "locked" }]);
    k.unlockFolio(pfn); // the last reference: the old page is freed now
    expect(k.counters().pagesFreed).toBe(before! + 1);
    expect(k.heldFrames().some((f) => f.pfn === pfn)).toBe(false);
  });
});
