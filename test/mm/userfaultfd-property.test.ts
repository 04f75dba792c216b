// uffd-wp holds: over random sequences of write-protect on/off, reads, writes, MADV_DONTNEED,
// swap-out, mprotect and fork (with and without UFFD_FEATURE_EVENT_FORK) under every strategy,
// the uffd-wp bits /proc/pid/pagemap reports are exactly those a model of the kernel's rules
// predicts, no write to a protected page completes without a uffd-wp message, and every
// invariant holds after every step.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, MADV_DONTNEED, MADV_PAGEOUT, PM_UFFD_WP, PROT_READ, type StrategyId,
  UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_WP_UNPOPULATED, UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP,
  UFFD_PAGEFAULT_FLAG_WRITE, UFFD_PAGEFAULT_FLAG_WP, UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_MINOR_SHMEM, UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFD_FEATURE_MOVE,
} from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { STRATEGIES, RW, PRIV, PAGE } from "./helpers.js";
import { UffdWorld, MISSING, WP, MINOR, type Region, type Resolve, type Tally, type UffdOp } from "./uffd-world.js";
import { kernel } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 60);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const PAGES = 4;

type Op =
  | { op: "wp"; page: number; n: number; on: boolean }
  | { op: "write"; page: number; value: number }
  | { op: "read"; page: number }
  | { op: "dontneed"; page: number; n: number }
  | { op: "pageout"; page: number; n: number }
  | { op: "mprotect" }
  | { op: "fork" };

const page = fc.nat(PAGES - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant("wp" as const), page, n: fc.integer({ min: 1, max: 4 }), on: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("write" as const), page, value: fc.integer({ min: 1, max: 1000 }) }), weight: 4 },
  fc.record({ op: fc.constant("read" as const), page }),
  fc.record({ op: fc.constant("dontneed" as const), page, n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant("pageout" as const), page, n: fc.integer({ min: 1, max: 3 }) }),
  fc.constant({ op: "mprotect" as const }),
  fc.constant({ op: "fork" as const }),
);

function run(strategy: StrategyId, features: number, ops: readonly Op[]): number {
  const k = createKernel({ strategy, memory: "2M", swap: "2M", build: BUILD, checkInvariants: true });
  const p = k.spawn();
  const a = p.mmap(null, PAGES * PAGE, RW, PRIV);
  const uffd = p.userfaultfd();
  uffd.api(features);
  uffd.register(a, PAGES * PAGE, UFFDIO_REGISTER_MODE_WP);
  // the model: what each page holds, whether it is populated (present or swapped), whether protected
  const value = new Array<number>(PAGES).fill(0);
  const populated = new Set<number>();
  const protectedPages = new Set<number>();
  const unpopulatedToo = (features & UFFD_FEATURE_WP_UNPOPULATED) !== 0;
  let waited = 0;
  const bits = (q = p) => q.pagemap(a, PAGES).map((e) => (e & PM_UFFD_WP) !== 0n);
  const expected = () => Array.from({ length: PAGES }, (_, i) => protectedPages.has(i));
  const span = (o: { page: number; n: number }) => Math.min(o.n, PAGES - o.page);

  ops.forEach((o, step) => {
    const at = `step ${step + 1}: ${JSON.stringify(o)}`;
    switch (o.op) {
      case "wp":
        uffd.writeprotect(a + o.page * PAGE, span(o) * PAGE, o.on ? UFFDIO_WRITEPROTECT_MODE_WP : 0);
        for (let i = o.page; i < o.page + span(o); i++) {
          // change_pte_range(): present and swap entries take the bit; none PTEs only with markers
          if (o.on && (populated.has(i) || unpopulatedToo)) protectedPages.add(i);
          if (!o.on) protectedPages.delete(i);
        }
        break;
      case "write": {
        const addr = a + o.page * PAGE;
        const w = p.access(true, addr, o.value);
        if (protectedPages.has(o.page)) {
          expect(w.state, at).toBe("blocked");
          const m = uffd.read();
          expect(m, at).toEqual({ event: "pagefault", address: addr, flags: UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP });
          uffd.writeprotect(addr, PAGE, 0);
          protectedPages.delete(o.page);
          w.resume();
          waited++;
        }
        expect(w.state, at).toBe("done");
        value[o.page] = o.value;
        populated.add(o.page);
        break;
      }
      case "read":
        expect(p.read(a + o.page * PAGE), at).toBe(value[o.page]);
        populated.add(o.page);
        break;
      case "dontneed":
        // zap of anonymous memory drops everything: bits, markers, pages
        p.madvise(a + o.page * PAGE, span(o) * PAGE, MADV_DONTNEED);
        for (let i = o.page; i < o.page + span(o); i++) {
          protectedPages.delete(i);
          populated.delete(i);
          value[i] = 0;
        }
        break;
      case "pageout":
        // the swap entry keeps the bit (_PAGE_SWP_UFFD_WP)
        p.madvise(a + o.page * PAGE, span(o) * PAGE, MADV_PAGEOUT);
        break;
      case "mprotect":
        // change_protection() keeps uffd-wp; the write upgrade must skip protected pages
        p.mprotect(a, PAGES * PAGE, PROT_READ);
        p.mprotect(a, PAGES * PAGE, RW);
        break;
      case "fork": {
        const c = p.fork();
        if (features & UFFD_FEATURE_EVENT_FORK) {
          const m = uffd.read();
          expect(m.event, at).toBe("fork");
          // copy_pte_range() with the destination still registered keeps bits and markers
          expect(bits(c), at).toEqual(expected());
          if (m.event === "fork") m.ufd.close();
        } else {
          expect(bits(c), at).toEqual(new Array<boolean>(PAGES).fill(false));
        }
        for (let i = 0; i < PAGES; i++) if (populated.has(i)) expect(c.read(a + i * PAGE), at).toBe(value[i]);
        c.exit();
        break;
      }
    }
    expect(bits(), at).toEqual(expected());
  });
  for (let i = 0; i < PAGES; i++) expect(p.read(a + i * PAGE)).toBe(value[i]);
  if (strategy === "anon-exclusive") expect(k.findings).toEqual([]);
  uffd.close();
  p.exit();
  expect(k.heldFrames()).toEqual([]);
  return waited;
}

describe.each(STRATEGIES)("uffd-wp over random sequences (%s)", (strategy) => {
  it("pagemap's uffd-wp bits follow the kernel's rules; no protected write completes without a message", () => {
    let waited = 0;
    fc.assert(fc.property(
      fc.constantFrom(0, UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_WP_UNPOPULATED, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_WP_UNPOPULATED),
      fc.array(opArb, { minLength: 10, maxLength: 40, size: "max" }),
      (features, ops) => { waited += run(strategy, features, ops); },
    ), { numRuns: RUNS, seed: SEED });
    // the sequences did reach protected writes
    expect(waited).toBeGreaterThan(RUNS / 2);
  });
});

// The whole userfaultfd model (uffd-world.ts): registrations (MISSING, WP, MINOR on shmem),
// UFFDIO_WRITEPROTECT over random ranges, accesses served by a handler (COPY, ZEROPAGE,
// CONTINUE, WRITEPROTECT off, WAKE), MADV_DONTNEED, hole punches and MADV_REMOVE, swap-out of
// anonymous memory and shmem, fork with and without EVENT_FORK, exit, mprotect, UFFDIO_MOVE and
// GUP pins, over three processes. After every step: every invariant, no missed or wrong COW,
// the uffd-wp bits and contents the model predicts; every write to a protected page waited
// for a uffd-wp message; every MOVE that moved a page moved one nobody else could observe, and
// every MOVE of an observed page failed with EBUSY, changing nothing.
const WORLD_RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 60 : 40));
const region = fc.constantFrom<Region>(0, 1, 2, 3);
const anonRegion = fc.constantFrom<Region>(0, 1);
const wpage = fc.nat(5);
const wn = fc.integer({ min: 1, max: 3 });
const who = fc.nat(2);
const resolve = fc.constantFrom<Resolve>("copy", "copy-wp", "copy-dontwake", "zeropage", "continue", "continue-wp", "wp-off", "wp-off-dontwake", "wake");
const registerMode = fc.constantFrom(MISSING, WP, WP, MISSING | WP, MINOR, MINOR | WP, MISSING | MINOR);
const worldOp: fc.Arbitrary<UffdOp> = fc.oneof(
  { weight: 14, arbitrary: fc.record({ op: fc.constant("access" as const), who, region: fc.constantFrom<Region>(0, 0, 1, 2, 3), page: wpage, write: fc.constantFrom(true, true, false), value: fc.integer({ min: 1, max: 999 }), res: fc.array(resolve, { minLength: 1, maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("register" as const), who, region, page: wpage, n: fc.integer({ min: 1, max: 6 }), mode: registerMode }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("unregister" as const, "dontneed" as const, "pageout" as const), who, region, page: wpage, n: wn }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("wp" as const), who, region, page: wpage, n: fc.integer({ min: 1, max: 6 }), on: fc.constantFrom(true, true, false) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dontneed" as const), who, region, page: wpage, n: wn }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pageout" as const), who, region, page: wpage, n: wn }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("punch" as const), page: fc.nat(3), n: wn }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), who, region: fc.constantFrom<Region>(2, 3), page: fc.nat(3), n: wn }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mprotect" as const), who, region: anonRegion, page: wpage, n: wn, ro: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fork" as const), who, peek: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), who }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("move" as const), who, src: fc.constantFrom<Region>(0, 1, 1, 1, 2, 3), srcPage: wpage, dst: fc.constantFrom<Region>(0, 0, 0, 0, 1, 2, 3), dstPage: wpage, n: wn, holes: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pin" as const), who, region: anonRegion, page: wpage, n: wn, write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unpin" as const), which: fc.nat() }) },
);

/** Each region's first registration (0: none). */
const shmemMode = fc.constantFrom(0, MISSING, WP, MINOR, MINOR | WP, MISSING | WP);
const firstModes = fc.tuple(fc.constantFrom(WP, WP, MISSING | WP, MISSING), fc.constantFrom(0, 0, WP), shmemMode, shmemMode);

function runWorld(features: number, modes: readonly number[], filled: readonly boolean[], ops: readonly UffdOp[], tally: Tally): void {
  const k = createKernel({ strategy: "anon-exclusive", memory: "4M", swap: "2M", build: BUILD });
  const w = new UffdWorld(k, features, tally);
  modes.forEach((mode, r) => { if (mode) w.apply({ op: "register", who: 0, region: r as Region, page: 0, n: 6, mode }, 0); });
  // pages written before the steps: something to protect, zap, swap, share and move
  filled.forEach((yes, i) => {
    const region: Region = i < 6 ? 0 : i < 10 ? 1 : i < 14 ? 2 : 3;
    const page = i < 6 ? i : i < 10 ? i - 6 : i < 14 ? i - 10 : i - 14;
    if (yes) w.apply({ op: "access", who: 0, region, page, write: true, value: 100 + i, res: ["copy"] }, 0);
  });
  ops.forEach((o, i) => w.apply(o, i + 1));
  w.finish();
}

describe("the userfaultfd model over random sequences (anon-exclusive, Linux 6.12)", () => {
  it("no protected write without a uffd-wp message; MOVE never moves an observed page; invariants, COW and contents hold", () => {
    const tally: Tally = {};
    fc.assert(fc.property(
      fc.tuple(fc.constantFrom(0, UFFD_FEATURE_EVENT_FORK), fc.constantFrom(0, UFFD_FEATURE_WP_UNPOPULATED), fc.constantFrom(0, 0, UFFD_FEATURE_EVENT_REMOVE))
        .map(([a, b, c]) => a | b | c),
      firstModes,
      fc.array(fc.boolean(), { minLength: 18, maxLength: 18 }),
      fc.array(worldOp, { minLength: 10, maxLength: 50, size: "max" }),
      (features, modes, filled, ops) => runWorld(features | UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_MOVE, modes, filled, ops, tally),
    ), { numRuns: WORLD_RUNS, seed: SEED });
    // the sequences reach what the properties are about
    for (const what of ["wp-write-blocked", "block-missing", "block-minor", "move-page", "move-ebusy-observed", "fork-with-event", "fork-peek", "remove-event", "shmem-swapped", "pin"]) {
      expect(tally[what], what).toBeGreaterThan(0);
    }
  });
});

describe("what the model's sequences found", () => {
  it("registered again without WP, a page keeps its stale uffd-wp bit; the write needs no handler and leaves the bit (wp_page_reuse())", () => {
    // userfaultfd_register_range() replaces the modes and leaves the bits; do_wp_page() asks no
    // handler (!userfaultfd_wp()), and wp_page_reuse()'s ptep_set_access_flags() keeps the bit
    // on the now writable PTE — page_table_check_pte_flags() only sees set_ptes()
    const k = kernel("anon-exclusive", { swap: "2M" });
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    const uffd = p.userfaultfd();
    uffd.api();
    uffd.register(a, 2 * PAGE, UFFDIO_REGISTER_MODE_WP);
    p.write(a, 1);
    p.write(a + PAGE, 2);
    uffd.writeprotect(a, 2 * PAGE, UFFDIO_WRITEPROTECT_MODE_WP);
    p.madvise(a + PAGE, PAGE, MADV_PAGEOUT);
    uffd.register(a, 2 * PAGE, MISSING);
    const wp = () => p.pagemap(a, 2).map((e) => (e & PM_UFFD_WP) !== 0n);
    expect(wp()).toEqual([true, true]);
    expect(p.access(true, a, 5).state).toBe("done");
    // the swap entry's bit comes back with the page (do_swap_page()), and stays the same way
    expect(p.read(a + PAGE)).toBe(2);
    expect(p.access(true, a + PAGE, 6).state).toBe("done");
    expect(uffd.messages).toEqual([]);
    expect(wp()).toEqual([true, true]);
    expect([p.read(a), p.read(a + PAGE)]).toEqual([5, 6]);
    // UFFDIO_UNREGISTER clears uffd-wp only in a VMA with VM_UFFD_WP (userfaultfd_clear_vma())
    uffd.unregister(a, 2 * PAGE);
    expect(wp()).toEqual([true, true]);
    expect(k.checkInvariants()).toEqual([]);
    expect(k.findings).toEqual([]);
  });
});
