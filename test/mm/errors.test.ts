// Every failing call throws a CowsimError with its errno name and leaves the whole simulated
// state — core memory, VMAs, anon_vma links — exactly as it was.
import { describe, it, expect } from "vitest";
import {
  PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
  MADV_DONTNEED, MADV_WIPEONFORK, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, C, type Kernel, type Process,
} from "../../src/index.js";
import { kernel, failsCleanly, errnoOf, RW, PRIV, PAGE } from "./helpers.js";

/** A kernel with a few mappings, a fork and some pages, to fail calls against. */
function busy(options = {}): { k: Kernel; p: Process; c: Process; a: number; s: number } {
  const k = kernel("anon-exclusive", { checkInvariants: false, ...options });
  const p = k.spawn();
  const a = p.mmap(null, 8 * PAGE, RW, PRIV);
  const s = p.mmap(null, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
  for (let i = 0; i < 8; i++) p.write(a + i * PAGE, i + 1);
  p.write(s, 77);
  const c = p.fork();
  c.write(a, 100);
  return { k, p, c, a, s };
}


describe("mmap", () => {
  it.each([
    ["EINVAL", "length 0", (p: Process) => p.mmap(null, 0, RW, PRIV)],
    ["EINVAL", "bad prot bits", (p: Process) => p.mmap(null, PAGE, 0x10, PRIV)],
    ["EINVAL", "both MAP_SHARED and MAP_PRIVATE", (p: Process) => p.mmap(null, PAGE, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS)],
    ["EINVAL", "flags cowsim does not model", (p: Process) => p.mmap(null, PAGE, RW, PRIV | 0x40000)],
    ["EINVAL", "unaligned MAP_FIXED", (p: Process) => p.mmap(0x10001000 + 5, PAGE, RW, PRIV | MAP_FIXED)],
    ["EBADF", "a file mapping", (p: Process) => p.mmap(null, PAGE, RW, MAP_PRIVATE)],
    ["ENOMEM", "longer than user space", (p: Process) => p.mmap(null, 2 ** 48, RW, PRIV)],
  ])("%s: %s", (errno, _what, fn) => {
    const { k, p } = busy();
    failsCleanly(k, errno, () => fn(p));
  });

  it("EEXIST: MAP_FIXED_NOREPLACE over a mapping", () => {
    const { k, p, a } = busy();
    failsCleanly(k, "EEXIST", () => p.mmap(a + PAGE, PAGE, RW, PRIV | MAP_FIXED_NOREPLACE));
  });

  it("ENOMEM: vm.max_map_count reached (a MAP_FIXED that would split counts too)", () => {
    const { k, p, a } = busy({ maxMapCount: 2 });
    failsCleanly(k, "ENOMEM", () => p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS));
    failsCleanly(k, "ENOMEM", () => p.mmap(a + PAGE, PAGE, PROT_READ, PRIV | MAP_FIXED));
  });
});

describe("munmap, mprotect, mremap, madvise", () => {
  it("munmap: EINVAL for an unaligned address or length 0", () => {
    const { k, p, a } = busy();
    failsCleanly(k, "EINVAL", () => p.munmap(a + 1, PAGE));
    failsCleanly(k, "EINVAL", () => p.munmap(a, 0));
  });

  it("mprotect: EINVAL for bad prot, ENOMEM for a hole (nothing changed, unlike Linux)", () => {
    const { k, p, a } = busy();
    failsCleanly(k, "EINVAL", () => p.mprotect(a, PAGE, 0x8));
    failsCleanly(k, "ENOMEM", () => p.mprotect(a, 64 * PAGE, PROT_READ));
    failsCleanly(k, "ENOMEM", () => p.mprotect(a - 3 * PAGE, 2 * PAGE, PROT_READ));
  });

  it("mremap: EINVAL for bad flags, EFAULT for an unmapped range, ENOMEM when it cannot grow", () => {
    const { k, p, a, s } = busy();
    failsCleanly(k, "EINVAL", () => p.mremap(a, PAGE, 2 * PAGE, 8));
    failsCleanly(k, "EINVAL", () => p.mremap(a, PAGE, 2 * PAGE, MREMAP_FIXED, a + 100 * PAGE));
    failsCleanly(k, "EINVAL", () => p.mremap(a, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
    failsCleanly(k, "EINVAL", () => p.mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + PAGE));
    failsCleanly(k, "EFAULT", () => p.mremap(a + 64 * PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
    failsCleanly(k, "EFAULT", () => p.mremap(a, 16 * PAGE, 32 * PAGE, MREMAP_MAYMOVE));
    // the shared mapping sits right above the private one: growing in place is impossible
    expect(s).toBe(a - 2 * PAGE);
    failsCleanly(k, "ENOMEM", () => p.mremap(s, 2 * PAGE, 4 * PAGE, 0));
  });

  it("madvise: EINVAL for bad advice or WIPEONFORK on shared memory, ENOMEM for a hole", () => {
    const { k, p, a, s } = busy();
    failsCleanly(k, "EINVAL", () => p.madvise(a, PAGE, 999));
    failsCleanly(k, "EINVAL", () => p.madvise(a + 3, PAGE, MADV_DONTNEED));
    failsCleanly(k, "EINVAL", () => p.madvise(s, PAGE, MADV_WIPEONFORK));
    failsCleanly(k, "ENOMEM", () => p.madvise(a, 64 * PAGE, MADV_DONTNEED));
  });
});

describe("memory access and processes", () => {
  it("EFAULT (SIGSEGV) outside any VMA or against protection; EINVAL for a bad value", () => {
    const { k, p, a } = busy();
    failsCleanly(k, "EFAULT", () => p.read(a + 64 * PAGE));
    failsCleanly(k, "EFAULT", () => p.write(0x1000, 1));
    p.mprotect(a, PAGE, PROT_READ);
    failsCleanly(k, "EFAULT", () => p.write(a, 1));
    p.mprotect(a, PAGE, 0);
    failsCleanly(k, "EFAULT", () => p.read(a));
    failsCleanly(k, "EINVAL", () => p.write(a + PAGE, -1));
    failsCleanly(k, "EINVAL", () => p.write(a + PAGE, 2 ** 53));
  });

  it("ESRCH: calls on a process that has exited", () => {
    const { k, c, a } = busy();
    c.exit();
    failsCleanly(k, "ESRCH", () => c.read(a));
    failsCleanly(k, "ESRCH", () => c.fork());
  });
});

describe("ENOMEM when frames run out", () => {
  /** A machine without swap whose every frame is in use, with one process that has room to fault. */
  function full() {
    const k = kernel("anon-exclusive", { checkInvariants: false, memory: "512K", swap: 0 });
    const p = k.spawn();
    const a = p.mmap(null, 200 * PAGE, RW, PRIV);
    let n = 0;
    for (; k.core.freePages() > 0; n++) p.write(a + n * PAGE, n + 1);
    return { k, p, a, n };
  }

  it("a first-touch write fault fails, changing nothing", () => {
    const { k, p, a, n } = full();
    failsCleanly(k, "ENOMEM", () => p.write(a + n * PAGE, 1));
    expect(p.read(a + n * PAGE)).toBe(0); // reads still work: the zero page needs no frame
  });

  it("a COW fault fails, changing nothing; freeing memory lets it through", () => {
    const { k, p, a, n } = full();
    const c = p.fork();
    failsCleanly(k, "ENOMEM", () => c.write(a, 5));
    p.munmap(a + (n - 1) * PAGE, PAGE);
    c.munmap(a + (n - 1) * PAGE, PAGE); // now nobody maps that frame
    c.write(a, 5);
    expect([c.read(a), p.read(a)]).toEqual([5, 1]);
  });

  it("fork fails when early copies of pinned pages need frames, changing nothing", () => {
    const { k, p, a } = full();
    const pins = p.pinUserPages(a, 2, C.FOLL_PIN); // two exclusive pages, through GUP-fast
    expect(k.counters().gupFastPages).toBe(2);
    failsCleanly(k, "ENOMEM", () => p.fork());
    pins.release();
    expect(p.fork().read(a)).toBe(1);
  });

  it("fork and spawn fail with EAGAIN at maxProcesses, as copy_process() does at threads-max", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false, maxProcesses: 2 });
    const p = k.spawn();
    p.fork();
    failsCleanly(k, "EAGAIN", () => p.fork());
    failsCleanly(k, "EAGAIN", () => k.spawn());
  });

  it("MAP_POPULATE out of memory still maps, unpopulated, as Linux does", () => {
    const { k, p } = full();
    const b = p.mmap(null, 4 * PAGE, RW, PRIV | 0x8000);
    expect(p.pfnAt(b)).toBeNull();
    expect(k.checkInvariants()).toEqual([]);
    void PROT_WRITE;
  });
});

describe("bad kernel options and arguments are refused up front, in the user's units", () => {
  it.each([
    [{ memory: 0 }, /^EINVAL: memory must be/],
    [{ memory: 4096 }, /^EINVAL: memory must be .*64K/],
    [{ memory: "1.5K" }, /^EINVAL: memory/],
    [{ memory: "1T" }, /^EINVAL: memory/],
    [{ maxProcesses: 1e8 }, /^EINVAL: maxProcesses must be/],
    [{ maxMapCount: -1 }, /^EINVAL: maxMapCount must be/],
    [{ memory: "16G", dataBytes: 4096 }, /^EINVAL: memory 16G does not fit in the simulator with dataBytes 4096/],
  ])("createKernel(%j)", (options, message) => {
    expect(() => kernel("anon-exclusive", options as never)).toThrow(message);
    expect(errnoOf(() => kernel("anon-exclusive", options as never))).toBe("EINVAL");
  });

  it.each([NaN, -5, 0, 1.5, Infinity])("reclaim(%s) is EINVAL, changing nothing", (want) => {
    const { k } = busy({ swap: "8M" });
    failsCleanly(k, "EINVAL", () => k.reclaim(want));
  });
});
