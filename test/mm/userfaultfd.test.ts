// userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c): the handshake, registration, faults that
// wait for a handler, the ioctls that resolve them, uffd-wp, and the non-cooperative events.
import { describe, it, expect } from "vitest";
import {
  MAP_SHARED, MAP_ANONYMOUS, MADV_DONTNEED, MADV_PAGEOUT, PM_UFFD_WP, UffdRangeError, type Kernel, type Process, type Userfaultfd,
  UFFD_API, UFFD_API_FEATURES, UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_EVENT_UNMAP, UFFD_FEATURE_SIGBUS,
  UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EXACT_ADDRESS, UFFD_FEATURE_THREAD_ID, UFFD_FEATURE_WP_ASYNC,
  UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP, UFFDIO_REGISTER_MODE_MINOR, UFFDIO_COPY_MODE_WP,
  UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_WRITEPROTECT_MODE_WP, UFFDIO_WRITEPROTECT_MODE_DONTWAKE, UFFD_PAGEFAULT_FLAG_WRITE,
  UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_MINOR, MREMAP_MAYMOVE, UFFD_FEATURE_WP_UNPOPULATED,
  UFFD_FEATURE_MINOR_SHMEM, UFFD_FEATURE_WP_HUGETLBFS_SHMEM, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_KEEP_SIZE,
} from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES, errnoOf } from "./helpers.js";

const MISSING = UFFDIO_REGISTER_MODE_MISSING;
const WP = UFFDIO_REGISTER_MODE_WP;

function setup(k: Kernel, pages = 4, features = 0, mode = MISSING): { p: Process; a: number; uffd: Userfaultfd } {
  const p = k.spawn();
  const a = p.mmap(null, pages * PAGE, RW, PRIV);
  const uffd = p.userfaultfd();
  uffd.api(features);
  uffd.register(a, pages * PAGE, mode);
  return { p, a, uffd };
}

describe("UFFDIO_API and UFFDIO_REGISTER", () => {
  it("the handshake: once, with known features only; nothing before it", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    const uffd = p.userfaultfd();
    expect(errnoOf(() => uffd.register(a, PAGE, MISSING))).toBe("EINVAL");
    expect(errnoOf(() => uffd.read())).toBe("EINVAL");
    expect(errnoOf(() => uffd.api(0, 0xab))).toBe("EINVAL");
    expect(errnoOf(() => uffd.api(1 << 20))).toBe("EINVAL");
    expect(uffd.api(0)).toEqual({ api: UFFD_API, features: UFFD_API_FEATURES, ioctls: ["UFFDIO_REGISTER", "UFFDIO_UNREGISTER", "UFFDIO_API"] });
    expect(errnoOf(() => uffd.api(0))).toBe("EINVAL");
    expect(errnoOf(() => p.userfaultfd(0x10))).toBe("EINVAL");
  });

  it("register: the ioctls per mode, and every misuse with the kernel's errno", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    const uffd = p.userfaultfd();
    uffd.api();
    expect(uffd.register(a, PAGE, MISSING).ioctls).toEqual(["UFFDIO_WAKE", "UFFDIO_COPY", "UFFDIO_ZEROPAGE", "UFFDIO_MOVE", "UFFDIO_POISON"]);
    expect(uffd.register(a + PAGE, PAGE, MISSING | WP).ioctls).toContain("UFFDIO_WRITEPROTECT");
    expect(uffd.register(s, PAGE, UFFDIO_REGISTER_MODE_MINOR).ioctls).toContain("UFFDIO_CONTINUE");
    expect(errnoOf(() => uffd.register(a, PAGE, 0))).toBe("EINVAL");
    expect(errnoOf(() => uffd.register(a, PAGE, 8))).toBe("EINVAL");
    expect(errnoOf(() => uffd.register(a + 1, PAGE, MISSING))).toBe("EINVAL");
    expect(errnoOf(() => uffd.register(a, PAGE + 1, MISSING))).toBe("EINVAL");
    expect(errnoOf(() => uffd.register(0x1000, PAGE, MISSING))).toBe("EINVAL"); // no VMA there
    // MINOR is for shmem only
    expect(errnoOf(() => uffd.register(a + 2 * PAGE, PAGE, UFFDIO_REGISTER_MODE_MINOR))).toBe("EINVAL");
    const other = p.userfaultfd();
    other.api();
    expect(errnoOf(() => other.register(a, PAGE, MISSING))).toBe("EBUSY");
    // the VMA was cut where the registrations differ
    expect(p.maps().filter((m) => m.start >= a && m.end <= a + 4 * PAGE).length).toBe(3);
    uffd.unregister(a, 4 * PAGE);
    expect(p.maps().filter((m) => m.start >= a && m.end <= a + 4 * PAGE).length).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe.each(STRATEGIES)("missing faults (%s)", (strategy) => {
  it("a fault waits for the handler; UFFDIO_COPY fills the page and wakes it", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k);
    const before = k.counters();
    const r = p.access(false, a + PAGE + 123);
    expect(r.state).toBe("blocked");
    expect(r.waitingOn?.reason).toBe("userfaultfd");
    expect(p.pfnAt(a + PAGE)).toBeNull();
    expect(k.counters()).toMatchObject({ userfaults: before.userfaults + 1, faultWaits: before.faultWaits + 1 });
    expect(uffd.read()).toEqual({ event: "pagefault", address: a + PAGE, flags: 0 });
    expect(errnoOf(() => uffd.read())).toBe("EAGAIN");
    // a synchronous access cannot wait: nothing else would resolve it
    expect(errnoOf(() => p.write(a + PAGE, 5))).toBe("EDEADLK");
    expect(uffd.read()).toEqual({ event: "pagefault", address: a + PAGE, flags: UFFD_PAGEFAULT_FLAG_WRITE });

    expect(uffd.copy(a + PAGE, PAGE, { value: 77 })).toBe(PAGE);
    expect(r.woken).toBe(true);
    r.resume();
    expect(r.state).toBe("done");
    expect(r.value).toBe(77);
    expect(uffd.waitingFaults).toBe(0);
    // the new page is exclusive and writable: a write needs no fault
    p.write(a + PAGE, 78);
    expect(p.read(a + PAGE)).toBe(78);
    expect(k.counters()).toMatchObject({ uffdFilled: 1, copies: before.copies, wpFaults: before.wpFaults });
    expect(k.findings).toEqual([]);
  });

  it("a handler resolves faults within the access; ZEROPAGE maps the zero page", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 4, UFFD_FEATURE_THREAD_ID);
    const seen: unknown[] = [];
    uffd.onMessage = (u) => {
      const m = u.read();
      seen.push(m);
      if (m.event === "pagefault") {
        if (m.flags & UFFD_PAGEFAULT_FLAG_WRITE) u.copy(m.address, PAGE, { value: 5 });
        else u.zeropage(m.address, PAGE);
      }
    };
    expect(p.read(a)).toBe(0);
    expect(p.pfnAt(a)).toBe(0); // the zero page
    p.write(a + 2 * PAGE, 9); // the handler's page holds 5, then the write stores 9
    expect(p.read(a + 2 * PAGE)).toBe(9);
    expect(seen).toEqual([
      { event: "pagefault", address: a, flags: 0, ptid: p.pid },
      { event: "pagefault", address: a + 2 * PAGE, flags: UFFD_PAGEFAULT_FLAG_WRITE, ptid: p.pid },
    ]);
    // the zero page is replaced on write by the usual COW fault, no userfault
    const n = k.counters().userfaults;
    p.write(a, 1);
    expect(k.counters().userfaults).toBe(n);
    expect(k.findings).toEqual([]);
  });

  it("partial progress: EEXIST at the first mapped page, the result field holds the bytes done, only those are woken", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k);
    const r0 = p.access(false, a);
    const r3 = p.access(false, a + 3 * PAGE);
    expect(uffd.zeropage(a + 2 * PAGE, PAGE)).toBe(PAGE);
    let err: unknown;
    try { uffd.copy(a, 4 * PAGE, { value: 3 }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(UffdRangeError);
    expect((err as UffdRangeError).errno).toBe("EAGAIN");
    expect((err as UffdRangeError).result).toBe(2 * PAGE);
    expect(r0.woken).toBe(true);
    expect(r3.woken).toBe(false);
    try { uffd.copy(a + 2 * PAGE, PAGE, { value: 3 }); } catch (e) { err = e; }
    expect((err as UffdRangeError).errno).toBe("EEXIST");
    expect((err as UffdRangeError).result).toBe(-17);
    // DONTWAKE fills without waking; UFFDIO_WAKE wakes
    uffd.copy(a + 3 * PAGE, PAGE, { value: 4, mode: UFFDIO_COPY_MODE_DONTWAKE });
    expect(r3.woken).toBe(false);
    uffd.wake(a + 3 * PAGE, PAGE);
    expect(r3.resume().value).toBe(4);
    expect(r0.resume().value).toBe(3);
    // outside any registered VMA: ENOENT
    const plain = p.mmap(null, PAGE, RW, PRIV);
    expect(errnoOf(() => uffd.copy(plain, PAGE, { value: 1 }))).toBe("ENOENT");
    expect(errnoOf(() => uffd.copy(a, PAGE, { value: 1, mode: UFFDIO_COPY_MODE_WP }))).toBe("EINVAL"); // not registered for WP
    expect(k.checkInvariants()).toEqual([]);
  });

  it("UFFD_FEATURE_SIGBUS: the fault is SIGBUS, no message; EXACT_ADDRESS keeps the offset", () => {
    const k = kernel(strategy);
    const s = setup(k, 1, UFFD_FEATURE_SIGBUS);
    expect(errnoOf(() => s.p.read(s.a + 8))).toBe("EFAULT");
    expect(s.uffd.messages).toEqual([]);
    const e = setup(k, 1, UFFD_FEATURE_EXACT_ADDRESS);
    e.p.access(true, e.a + 8, 1);
    expect(e.uffd.read()).toEqual({ event: "pagefault", address: e.a + 8, flags: UFFD_PAGEFAULT_FLAG_WRITE });
  });

  it("UFFDIO_POISON: any later access is SIGBUS", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k);
    expect(uffd.poison(a, PAGE)).toBe(PAGE);
    expect(errnoOf(() => p.read(a))).toBe("EHWPOISON");
    expect(errnoOf(() => uffd.poison(a, PAGE))).toBe("EEXIST");
  });

  it("close(): registrations go, waiting faults retry as plain faults", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k);
    const r = p.access(true, a, 6);
    expect(errnoOf(() => k.snapshot())).toBe("EBUSY");
    uffd.close();
    expect(r.woken).toBe(true);
    r.resume();
    expect(r.state).toBe("done");
    expect(p.read(a)).toBe(6);
    expect(errnoOf(() => uffd.copy(a, PAGE, { value: 1 }))).toBe("EBADF");
    expect(k.snapshot()).toBeInstanceOf(Uint8Array);
  });
});

describe.each(STRATEGIES)("uffd-wp (%s)", (strategy) => {
  it("a write to a write-protected page waits with UFFD_PAGEFAULT_FLAG_WP; un-protecting wakes it", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 2, 0, WP);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    uffd.writeprotect(a, 2 * PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    expect(p.pagemap(a, 2).map((e) => (e & PM_UFFD_WP) !== 0n)).toEqual([true, true]);
    expect(p.read(a)).toBe(1); // reads are fine
    const w = p.access(true, a, 10);
    expect(w.state).toBe("blocked");
    expect(uffd.read()).toEqual({ event: "pagefault", address: a, flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
    // mprotect keeps the protection: the page stays read-only
    p.mprotect(a, 2 * PAGE, 3);
    expect(p.access(true, a + PAGE, 20).state).toBe("blocked");
    expect(errnoOf(() => uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP | UFFDIO_WRITEPROTECT_MODE_DONTWAKE))).toBe("EINVAL");
    const copies = k.counters().copies;
    uffd.writeprotect(a, PAGE, 0);
    expect(w.woken).toBe(true);
    w.resume();
    expect(w.state).toBe("done");
    expect(p.read(a)).toBe(10);
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(0n);
    expect(k.counters().copies).toBe(copies); // the page was exclusive: reused
    expect(k.findings).toEqual([]);
  });

  it("ENOENT outside a WP registration; WP_ASYNC clears the bit itself", () => {
    const k = kernel(strategy);
    const m = setup(k, 1, 0, MISSING);
    expect(errnoOf(() => m.uffd.writeprotect(m.a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP))).toBe("ENOENT");
    const { p, a, uffd } = setup(k, 1, UFFD_FEATURE_WP_ASYNC, WP);
    p.write(a, 1);
    uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    p.write(a, 2);
    expect(p.read(a)).toBe(2);
    expect(uffd.messages).toEqual([]);
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(0n);
  });

  it("swap-out keeps uffd-wp in the swap entry; the swapped-in page is still protected", () => {
    const k = kernel(strategy, { swap: "4M" });
    const { p, a, uffd } = setup(k, 1, 0, WP);
    p.write(a, 1);
    uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    expect(p.pfnAt(a)).toBeNull();
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(PM_UFFD_WP);
    expect(p.access(true, a, 3).state).toBe("blocked");
    expect(uffd.read()).toMatchObject({ event: "pagefault", flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
    expect(p.read(a)).toBe(1);
  });

  it("WP_UNPOPULATED: none PTEs get uffd-wp markers; a read maps the zero page protected, a write then waits", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 2, UFFD_FEATURE_WP_UNPOPULATED, WP);
    uffd.writeprotect(a, 2 * PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    expect(p.pagemap(a, 2).map((e) => (e & PM_UFFD_WP) !== 0n)).toEqual([true, true]);
    expect(p.read(a)).toBe(0);
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(PM_UFFD_WP);
    const w = p.access(true, a + PAGE, 4);
    expect(w.state).toBe("blocked");
    expect(p.pfnAt(a + PAGE)).not.toBeNull(); // do_anonymous_page() installed the page, protected
    expect(uffd.read()).toMatchObject({ address: a + PAGE, flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
    uffd.writeprotect(a + PAGE, PAGE, 0);
    expect(w.resume().state).toBe("done");
    expect(p.read(a + PAGE)).toBe(4);
    expect(k.checkInvariants()).toEqual([]);
  });

  it("UFFDIO_COPY_MODE_WP maps the page protected", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 1, 0, MISSING | WP);
    uffd.copy(a, PAGE, { value: 8, mode: UFFDIO_COPY_MODE_WP });
    expect(p.read(a)).toBe(8);
    expect(p.access(true, a, 9).state).toBe("blocked");
    expect(uffd.read()).toMatchObject({ flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
  });
});

describe.each(STRATEGIES)("fork and the other events (%s)", (strategy) => {
  it("fork without EVENT_FORK: the child's memory is plain, its uffd-wp bits dropped", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 1, 0, WP);
    p.write(a, 1);
    uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    const c = p.fork();
    expect(c.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(0n);
    c.write(a, 2); // a plain COW fault
    expect(c.read(a)).toBe(2);
    expect(p.read(a)).toBe(1);
    expect(uffd.messages).toEqual([]);
  });

  it("fork with EVENT_FORK: the parent's userfaultfd reads the child's, which keeps the registration and the bits", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 1, UFFD_FEATURE_EVENT_FORK, WP);
    p.write(a, 1);
    uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    const c = p.fork();
    expect(errnoOf(() => uffd.copy(a, PAGE, { value: 1 }))).toBe("EAGAIN"); // mmap_changing until read
    const m = uffd.read();
    expect(m.event).toBe("fork");
    const cu = (m as { ufd: Userfaultfd }).ufd;
    expect(cu.process).toBe(c);
    expect(c.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(PM_UFFD_WP);
    expect(c.access(true, a, 2).state).toBe("blocked");
    expect(cu.read()).toMatchObject({ event: "pagefault", address: a });
    expect(uffd.messages).toEqual([]);
  });

  it("MADV_DONTNEED, munmap and mremap tell REMOVE, UNMAP and REMAP", () => {
    const k = kernel(strategy);
    const { p, a, uffd } = setup(k, 4, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP);
    p.madvise(a, PAGE, MADV_DONTNEED);
    p.munmap(a + 3 * PAGE, PAGE);
    const to = p.mremap(a, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE); // a + 2 pages is mapped: it moves
    expect(uffd.read()).toEqual({ event: "remove", start: a, end: a + PAGE });
    expect(uffd.read()).toEqual({ event: "unmap", start: a + 3 * PAGE, end: a + 4 * PAGE });
    expect(uffd.mmapChanging).toBe(true);
    const remap = uffd.read();
    expect(to).not.toBe(a);
    expect(remap).toEqual({ event: "remap", from: a, to, len: 2 * PAGE });
    expect(uffd.mmapChanging).toBe(false);
    // the moved VMA is still registered: a fault there waits
    expect(p.access(false, to).state).toBe("blocked");
  });
});

describe.each(STRATEGIES)("userfaultfd on shmem (%s)", (strategy) => {
  const SHARED = MAP_SHARED;
  const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

  function memfd(k: Kernel, pages: number): { p: Process; f: ReturnType<Process["memfdCreate"]>; a: number; alias: number } {
    const p = k.spawn();
    const f = p.memfdCreate("uffd");
    p.ftruncate(f, pages * PAGE);
    const a = p.mmap(null, pages * PAGE, RW, SHARED, f);
    const alias = p.mmap(null, pages * PAGE, RW, SHARED, f);
    return { p, f, a, alias };
  }

  it("minor faults: a page in the page cache, not mapped here, waits; UFFDIO_CONTINUE maps it", () => {
    const k = kernel(strategy);
    const { p, a, alias } = memfd(k, 2);
    p.write(a, 11);
    const uffd = p.userfaultfd();
    uffd.api(UFFD_FEATURE_MINOR_SHMEM);
    uffd.register(alias, 2 * PAGE, UFFDIO_REGISTER_MODE_MINOR);
    const r = p.access(false, alias);
    expect(r.state).toBe("blocked");
    expect(uffd.read()).toEqual({ event: "pagefault", address: alias, flags: UFFD_PAGEFAULT_FLAG_MINOR });
    p.write(a, 12); // the handler changes the contents through the other mapping
    expect(uffd.continue(alias, PAGE)).toBe(PAGE);
    expect(r.resume().value).toBe(12);
    expect(p.pfnAt(alias)).toBe(p.pfnAt(a));
    expect(errnoOf(() => uffd.continue(alias, PAGE))).toBe("EEXIST");
    // page 1 is in no page cache: not a minor fault, and CONTINUE has nothing to map
    expect(errnoOf(() => uffd.continue(alias + PAGE, PAGE))).toBe("EFAULT");
    expect(p.read(alias + PAGE)).toBe(0);
    expect(k.findings).toEqual([]);
  });

  it("missing faults on shared memory: UFFDIO_COPY fills the page cache, every mapping sees it", () => {
    const k = kernel(strategy);
    const { p, a, alias } = memfd(k, 2);
    const uffd = p.userfaultfd();
    uffd.api();
    uffd.register(a, 2 * PAGE, UFFDIO_REGISTER_MODE_MISSING);
    const r = p.access(false, a + PAGE);
    expect(r.state).toBe("blocked");
    expect(uffd.read()).toEqual({ event: "pagefault", address: a + PAGE, flags: 0 });
    uffd.copy(a + PAGE, PAGE, { value: 21 });
    expect(r.resume().value).toBe(21);
    expect(p.read(alias + PAGE)).toBe(21);
    expect(errnoOf(() => uffd.copy(a + PAGE, PAGE, { value: 1 }))).toBe("EEXIST");
    expect(k.checkInvariants()).toEqual([]);
    expect(k.findings).toEqual([]);
  });

  it("seed 002: a hole punch, MADV_DONTNEED and swap-out leave uffd-wp markers; the page comes back protected", () => {
    const k = kernel(strategy, { swap: "4M" });
    const { p, f, a } = memfd(k, 3);
    const uffd = p.userfaultfd();
    uffd.api(UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
    uffd.register(a, 3 * PAGE, UFFDIO_REGISTER_MODE_WP);
    for (let i = 0; i < 3; i++) p.write(a + i * PAGE, i + 1);
    uffd.writeprotect(a, 3 * PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    p.fallocate(f, PUNCH, 0, PAGE);
    p.madvise(a + PAGE, PAGE, MADV_DONTNEED);
    p.madvise(a + 2 * PAGE, PAGE, MADV_PAGEOUT);
    expect(p.pfnAt(a + 2 * PAGE)).toBeNull();
    // each PTE is a marker now, and pagemap still says uffd-wp
    expect(p.pagemap(a, 3).map((e) => (e & PM_UFFD_WP) !== 0n)).toEqual([true, true, true]);
    // the marker is handled after pte_none and before do_swap_page: the page is installed
    // read-only with uffd-wp, and the write then faults into the handler
    expect(p.read(a)).toBe(0); // punched: a fresh zero page
    expect(p.read(a + PAGE)).toBe(2);
    expect(p.read(a + 2 * PAGE)).toBe(3); // swapped in
    for (let i = 0; i < 3; i++) {
      const w = p.access(true, a + i * PAGE, 9);
      expect(w.state).toBe("blocked");
      expect(uffd.read()).toEqual({ event: "pagefault", address: a + i * PAGE, flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
      uffd.writeprotect(a + i * PAGE, PAGE, 0);
      expect(w.resume().state).toBe("done");
    }
    expect(k.checkInvariants()).toEqual([]);
  });

  it("unregistering drops the markers: the fault is a plain shmem fault", () => {
    const k = kernel(strategy);
    const { p, a } = memfd(k, 1);
    const uffd = p.userfaultfd();
    uffd.api();
    uffd.register(a, PAGE, UFFDIO_REGISTER_MODE_WP);
    uffd.writeprotect(a, PAGE, UFFDIO_WRITEPROTECT_MODE_WP); // a none PTE of shmem takes a marker
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(PM_UFFD_WP);
    uffd.unregister(a, PAGE);
    expect(p.pagemap(a, 1)[0]! & PM_UFFD_WP).toBe(0n);
    p.write(a, 4);
    expect(p.read(a)).toBe(4);
  });
});
