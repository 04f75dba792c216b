// Every error path proven, not sampled: each syscall and GUP user runs under fault injection
// (fail the nth frame, page-table or swap-slot allocation) for n = 1, 2, 3 … until it succeeds,
// and after each failure the state is exactly what the README's error contract says:
//   - calls that change mappings, fork, spawn, swap-in: nothing changed, byte for byte;
//   - a fault: the page table as before, no frame taken — the anon_vma and the page table a
//     first fault prepared stay, as Linux leaves them;
//   - GUP (pins, vmsplice, io_uring, RDMA, O_DIRECT) and MADV_POPULATE_*: the state of the same
//     call over the pages before the one that failed, its references released.
import { describe, it, expect } from "vitest";
import {
  CowsimError, MAP_SHARED, MAP_ANONYMOUS, MAP_POPULATE, MAP_FIXED, MADV_PAGEOUT, MADV_POPULATE_WRITE, MADV_POPULATE_READ,
  MADV_DONTNEED, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, PROT_READ, C, type Kernel, type Process, type FailKind,
} from "../../src/index.js";
import { kernel, kernelState, RW, PRIV, PAGE } from "./helpers.js";
import { stateDiff } from "../helpers.js";

interface World { k: Kernel; p: Process; c: Process; a: number; s: number; sw: number }

/** A kernel with something of everything: private pages shared by fork, a copy, shmem, swap. */
function world(): World {
  const k = kernel("anon-exclusive", { memory: "1M", swap: "1M", checkInvariants: false });
  const p = k.spawn();
  const a = p.mmap(null, 16 * PAGE, RW, PRIV);
  for (let i = 0; i < 8; i++) p.write(a + i * PAGE, i + 1);
  const s = p.mmap(null, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.write(s, 50);
  const sw = p.mmap(a - 64 * PAGE, 2 * PAGE, RW, PRIV | MAP_FIXED);
  p.write(sw, 60);
  p.write(sw + PAGE, 61);
  p.madvise(sw, 2 * PAGE, MADV_PAGEOUT);
  const c = p.fork();
  c.write(a, 100);
  return { k, p, c, a, s, sw };
}

/** What a process and the frames show: VMAs, every page-table entry, every frame's counts. */
function observable(k: Kernel): string {
  const procs = [...k.processes.values()].map((p) => ({
    pid: p.pid, maps: p.maps(), ptes: [...p.vmas].flatMap((v) => k.core.pagemap(p.mm, v.start, v.end)),
  }));
  return JSON.stringify({ procs, frames: k.heldFrames(), slots: k.usedSwapSlots(), free: k.core.freePages() });
}

type Contract = "unchanged" | "fault" | "prefix";
interface Case {
  readonly name: string;
  readonly contract: Contract;
  /** Steps before the call, not under injection. */
  readonly prepare?: (w: World) => void;
  /** The call; `pages` limits a GUP or populate call to its first pages (for the prefix twin). */
  readonly call: (w: World, pages?: number) => unknown;
  /**
   * fault: what the fault path may have completed before the allocation that failed, as a
   * step on a twin (a read of the address: the swap-in or the zero page a write fault maps
   * before it copies). prefix: where page n starts.
   */
  readonly partial?: (w: World, page: number) => void;
  /** The errnos it may fail with (default ENOMEM). */
  readonly errnos?: readonly string[];
  /** How many pages the call covers (prefix contract). */
  readonly pages?: number;
}

const FAR = (w: World, i: number) => w.a - 2 ** (31 + i);
/** Releases a GUP user; returns how many pages it got (a short vmsplice, O_DIRECT or pin_user_pages()). */
const release = (u: unknown) => {
  const user = u as { pages: number; release(): void };
  user.release();
  return user.pages;
};
/** A GUP-like call over 10 pages from a[2]: the pages before the failing one done, the failing one partly. */
const gup = (name: string, call: Case["call"], errnos = ["ENOMEM"], by: "p" | "c" = "p"): Case => ({
  name, contract: "prefix", call, pages: 10, errnos, partial: (w, n) => { w[by].read(w.a + (2 + n) * PAGE); },
});

const CASES: readonly Case[] = [
  { name: "mmap", contract: "unchanged", call: (w) => w.p.mmap(null, 4 * PAGE, RW, PRIV) },
  { name: "mmap MAP_SHARED", contract: "unchanged", call: (w) => w.p.mmap(null, 4 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS) },
  { name: "munmap of the middle", contract: "unchanged", call: (w) => w.p.munmap(w.a + 2 * PAGE, 2 * PAGE) },
  { name: "mprotect of the middle", contract: "unchanged", call: (w) => w.p.mprotect(w.a + 2 * PAGE, 2 * PAGE, PROT_READ) },
  { name: "mremap MREMAP_FIXED", contract: "unchanged", call: (w) => w.p.mremap(w.a, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, w.a - 2 ** 30) },
  { name: "mremap MREMAP_DONTUNMAP", contract: "unchanged", call: (w) => w.p.mremap(w.a, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP) },
  { name: "mremap growing, moved", contract: "unchanged", call: (w) => w.p.mremap(w.s, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE) },
  { name: "MADV_DONTNEED", contract: "unchanged", call: (w) => w.p.madvise(w.a, 4 * PAGE, MADV_DONTNEED) },
  { name: "MADV_PAGEOUT (pages it cannot swap stay)", contract: "unchanged", errnos: [], call: (w) => w.c.madvise(w.a, 4 * PAGE, MADV_PAGEOUT) },
  { name: "MAP_POPULATE (best effort: never fails)", contract: "unchanged", errnos: [], call: (w) => w.p.mmap(null, 6 * PAGE, RW, PRIV | MAP_POPULATE) },
  { name: "fork", contract: "unchanged", call: (w) => w.p.fork() },
  { name: "spawn", contract: "unchanged", call: (w) => w.k.spawn() },
  { name: "a write fault on a fresh page", contract: "fault", call: (w) => w.p.write(w.a + 12 * PAGE, 7) },
  { name: "a COW fault", contract: "fault", call: (w) => w.p.write(w.a + PAGE, 7) },
  { name: "a write to the zero page", contract: "fault", prepare: (w) => { w.p.read(w.a + 13 * PAGE); }, call: (w) => w.p.write(w.a + 13 * PAGE, 7) },
  { name: "a first write in a new mapping", contract: "fault", prepare: (w) => { w.p.mmap(FAR(w, 0), PAGE, RW, PRIV | MAP_FIXED); }, call: (w) => w.p.write(FAR(w, 0), 7) },
  { name: "a read fault needing new page tables", contract: "fault", prepare: (w) => { w.p.mmap(FAR(w, 1), PAGE, RW, PRIV | MAP_FIXED); }, call: (w) => w.p.read(FAR(w, 1)) },
  { name: "a shmem fault", contract: "fault", call: (w) => w.c.write(w.s + PAGE, 9) },
  { name: "a swap-in", contract: "fault", call: (w) => w.p.read(w.sw) },
  { name: "a swap-in by a write (then a COW)", contract: "fault", call: (w) => w.c.write(w.sw + PAGE, 9), partial: (w) => { w.c.read(w.sw + PAGE); } },
  gup("pin_user_pages(FOLL_PIN | FOLL_WRITE)", (w, n = 10) => release(w.p.pinUserPages(w.a + 2 * PAGE, n, C.FOLL_PIN | C.FOLL_WRITE))),
  gup("pin_user_pages(FOLL_PIN | FOLL_LONGTERM), R/O", (w, n = 10) => release(w.c.pinUserPages(w.a + 2 * PAGE, n, C.FOLL_PIN | C.FOLL_LONGTERM)), ["ENOMEM"], "c"),
  gup("get_user_pages(FOLL_GET), slow path", (w, n = 10) => release(w.p.pinUserPages(w.a + 2 * PAGE, n, C.FOLL_GET, false))),
  gup("vmsplice", (w, n = 10) => release(w.c.vmsplice(w.a + 2 * PAGE, n * PAGE)), ["ENOMEM"], "c"),
  gup("io_uring registration", (w, n = 10) => release(w.p.ioUringRegisterBuffers(w.a + 2 * PAGE, n * PAGE)), ["ENOMEM", "EFAULT"]),
  gup("RDMA registration", (w, n = 10) => release(w.c.rdmaRegister(w.a + 2 * PAGE, n * PAGE, true)), ["ENOMEM"], "c"),
  gup("O_DIRECT read", (w, n = 10) => release(w.p.directIo("read", w.a + 2 * PAGE, n * PAGE))),
  gup("MADV_POPULATE_WRITE", (w, n = 10) => w.c.madvise(w.a + 2 * PAGE, n * PAGE, MADV_POPULATE_WRITE), ["ENOMEM"], "c"),
  gup("MADV_POPULATE_READ", (w, n = 10) => w.p.madvise(w.a + 2 * PAGE, n * PAGE, MADV_POPULATE_READ)),
];

const KINDS: readonly FailKind[] = ["frame", "pageTable", "swapSlot"];

/** A transient failure (that attempt only), or exhaustion (every attempt from the nth on). */
const MODES = [["once", 1], ["from then on", Infinity]] as const;

describe.each(CASES)("under fault injection: $name", (c) => {
  it.each(KINDS.flatMap((kind) => MODES.map(([mode, times]) => [kind, mode, times] as const)))("a failing %s allocation (%s) leaves what the contract says", (kind, mode, times) => {
    let failures = 0;
    for (let nth = 1; ; nth++) {
      expect(nth, "the call never succeeded").toBeLessThan(100);
      const w = world();
      c.prepare?.(w);
      const before = kernelState(w.k);
      const injected = w.k.core.injectedFailures()[kind];
      w.k.injectFailure(kind, { nth, times });
      let error: unknown = null;
      let got: unknown;
      try {
        got = c.call(w);
      } catch (e) {
        error = e;
      }
      // a GUP user that kept fewer pages than it asked for took the partial result GUP gives
      const short = c.contract === "prefix" && typeof got === "number" && got < c.pages!;
      const fired = w.k.core.injectedFailures()[kind] > injected;
      w.k.clearInjection();
      expect(w.k.checkInvariants(), `nth ${nth}`).toEqual([]);
      if (error === null && !short) break; // it got through: every earlier n was checked
      if (error !== null && !(error instanceof CowsimError)) throw error;
      const what = error instanceof CowsimError ? error.message : `only ${String(got)} of ${c.pages} pages`;
      expect(fired, `nth ${nth}: ${what}, but no injected failure happened`).toBe(true);
      if (error instanceof CowsimError) expect(c.errnos ?? ["ENOMEM"], `nth ${nth}: ${what}`).toContain(error.errno);
      failures++;
      const after = kernelState(w.k);
      if (c.contract === "unchanged") {
        expect(stateDiff(before.core, after.core), `nth ${nth}: ${what}`).toBeNull();
        expect(after.vmas).toBe(before.vmas);
        continue;
      }
      // the states a twin reaches by the steps the contract allows; the anon_vma a first fault
      // attached (vmf_anon_prepare()) is the one leftover no public call makes alone
      const twin = (steps: (t: World) => void) => {
        const t = world();
        c.prepare?.(t);
        steps(t);
        return observable(t.k);
      };
      const candidates = c.contract === "fault"
        ? [twin(() => {}), ...(c.partial ? [twin((t) => c.partial!(t, 0))] : [])]
        : Array.from({ length: c.pages! }, (_, n) => [
          twin((t) => { if (n > 0) c.call(t, n); }),
          twin((t) => { if (n > 0) c.call(t, n); c.partial!(t, n); }),
        ]).flat();
      const strip = (x: string) => (c.contract === "fault" ? x.replace(/"anonVma":\d+/g, '"anonVma":null') : x);
      expect(candidates.map(strip), `nth ${nth}: ${what}: no state the contract allows is this one`).toContain(strip(observable(w.k)));
    }
    TALLY[`${c.name} / ${kind} ${mode}`] = failures;
  });
});

const TALLY: Record<string, number> = {};
/**
 * How many injected failures each call met before it succeeded — the allocations it makes, one
 * error path each (all other pairs: none). A change to how a call allocates shows here.
 */
const REACHED: Record<string, number> = {
    "mremap MREMAP_FIXED / pageTable once": 1,
    "mremap MREMAP_FIXED / pageTable from then on": 1,
    "fork / pageTable once": 1,
    "fork / pageTable from then on": 1,
    "spawn / pageTable once": 1,
    "spawn / pageTable from then on": 1,
    "a write fault on a fresh page / frame once": 1,
    "a write fault on a fresh page / frame from then on": 1,
    "a COW fault / frame once": 1,
    "a COW fault / frame from then on": 1,
    "a write to the zero page / frame once": 1,
    "a write to the zero page / frame from then on": 1,
    "a first write in a new mapping / frame once": 1,
    "a first write in a new mapping / frame from then on": 1,
    "a first write in a new mapping / pageTable once": 1,
    "a first write in a new mapping / pageTable from then on": 1,
    "a read fault needing new page tables / pageTable once": 1,
    "a read fault needing new page tables / pageTable from then on": 1,
    "a shmem fault / frame once": 1,
    "a shmem fault / frame from then on": 1,
    "a swap-in / frame once": 1,
    "a swap-in / frame from then on": 1,
    "a swap-in by a write (then a COW) / frame once": 2,
    "a swap-in by a write (then a COW) / frame from then on": 2,
    "pin_user_pages(FOLL_PIN | FOLL_WRITE) / frame once": 10,
    "pin_user_pages(FOLL_PIN | FOLL_WRITE) / frame from then on": 10,
    "pin_user_pages(FOLL_PIN | FOLL_LONGTERM), R/O / frame once": 10,
    "pin_user_pages(FOLL_PIN | FOLL_LONGTERM), R/O / frame from then on": 10,
    "io_uring registration / frame once": 10,
    "io_uring registration / frame from then on": 10,
    "RDMA registration / frame once": 10,
    "RDMA registration / frame from then on": 10,
    "O_DIRECT read / frame once": 10,
    "O_DIRECT read / frame from then on": 10,
    "MADV_POPULATE_WRITE / frame once": 6,
    "MADV_POPULATE_WRITE / frame from then on": 7,
};
describe("the error paths fault injection reached", () => {
  it("each call failed once per allocation it makes, and no other call failed", () => {
    expect(Object.fromEntries(Object.entries(TALLY).filter(([, n]) => n > 0))).toEqual(REACHED);
    expect(Object.keys(TALLY)).toHaveLength(CASES.length * KINDS.length * MODES.length);
  });
});
