// UFFDIO_MOVE over THP-backed memory: random writes and reads (which fault in THPs and the huge
// zero page), fork and exit, GUP pins, MADV_DONTNEED, swap-out and moves of whole PMDs and of
// pieces of them. Whenever MOVE moves a page, no other process maps its frame and no pin holds
// it (in the model's view and in the page tables); a page another process maps or a pin holds
// fails with EBUSY, and a move that moved nothing changed nothing. Every invariant, no missed
// or wrong COW, and the contents the model predicts, after every step.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, CowsimError, MAP_FIXED, MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT, FOLL_PIN, FOLL_LONGTERM, FOLL_WRITE,
  UffdRangeError, UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, UFFDIO_REGISTER_MODE_WP,
  type Kernel, type Process, type UserPages, type Userfaultfd,
} from "../../src/index.js";
import { C } from "../../src/core/index.js";
import { BUILD } from "../helpers.js";
import { RW, PRIV, PAGE } from "./helpers.js";
import { expectKernelSound } from "./uffd-world.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 25 : 15));
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const HPAGES = 512;
const PAGES = 2 * HPAGES;
/** The move's source and its registered destination: two THPs' worth each, PMD-aligned. */
const BASES = [0x7f0000000000, 0x7f0040000000] as const;
/** scan()'s value for a swap entry (or any other non-present entry). */
const SWAPPED = -2;

type Op =
  | { op: "write" | "read"; who: number; region: 0 | 1; page: number; value: number }
  | { op: "fork" | "exit"; who: number }
  | { op: "pin"; who: number; region: 0 | 1; page: number; n: number; write: boolean }
  | { op: "unpin"; which: number }
  | { op: "dontneed" | "pageout"; who: number; region: 0 | 1; page: number; n: number }
  | { op: "move"; src: number; dst: number; n: number; holes: boolean };

const who = fc.nat(2);
const region = fc.constantFrom<0 | 1>(0, 0, 1);
const page = fc.oneof(fc.nat(PAGES - 1), fc.constantFrom(0, 1, HPAGES - 1, HPAGES, HPAGES + 1));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("write" as const), who, region, page, value: fc.integer({ min: 1, max: 999 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("read" as const), who, region, page, value: fc.constant(0) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("fork" as const, "fork" as const, "exit" as const), who }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("pin" as const), who, region, page, n: fc.integer({ min: 1, max: 4 }), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unpin" as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("dontneed" as const, "pageout" as const), who, region, page, n: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(HPAGES)) }) },
  {
    weight: 5, arbitrary: fc.oneof(
      // whole PMDs (move_pages_huge_pmd()) …
      fc.record({ op: fc.constant("move" as const), src: fc.constantFrom(0, HPAGES), dst: fc.constantFrom(0, HPAGES), n: fc.constantFrom(HPAGES, PAGES), holes: fc.boolean() }),
      // … and pieces of them (split_huge_pmd(), split_folio(), move_pages_pte())
      fc.record({ op: fc.constant("move" as const), src: page, dst: page, n: fc.integer({ min: 1, max: 8 }), holes: fc.boolean() }),
    ),
  },
);

/** A page as the model sees it: what it holds and the model's frame identity (0: none or a zero page). */
interface Pte { kind: "none" | "zero" | "page"; val: number; frame: number }
interface Proc { p: Process; pages: Pte[] }

const none = (): Pte => ({ kind: "none", val: 0, frame: 0 });

class ThpMoveWorld {
  readonly procs: Proc[] = [];
  readonly pins: { owner: Proc; pin: UserPages; frames: number[] }[] = [];
  readonly ctx: Userfaultfd;
  readonly tally: Record<string, number>;
  private nextFrame = 1;
  private at = "";

  constructor(readonly k: Kernel, tally: Record<string, number>) {
    this.tally = tally;
    const p = k.spawn();
    for (const base of BASES) {
      p.mmap(base, PAGES * PAGE, RW, PRIV | MAP_FIXED);
      p.madvise(base, PAGES * PAGE, MADV_HUGEPAGE);
    }
    this.ctx = p.userfaultfd();
    this.ctx.api();
    // the destination must be registered with the userfaultfd; WP without protection never waits
    this.ctx.register(BASES[1], PAGES * PAGE, UFFDIO_REGISTER_MODE_WP);
    this.procs.push({ p, pages: Array.from({ length: 2 * PAGES }, none) });
  }

  private count(what: string, n = 1): void {
    this.tally[what] = (this.tally[what] ?? 0) + n;
  }

  private pick(w: number): Proc {
    return this.procs[w % this.procs.length]!;
  }

  private sharedWithProcess(frame: number, self: Proc): boolean {
    return frame !== 0 && this.procs.some((q) => q !== self && q.pages.some((a) => a.kind === "page" && a.frame === frame));
  }

  private observed(frame: number, self: Proc, index: number): boolean {
    if (frame === 0) return false;
    return this.procs.some((q) => q.pages.some((a, i) => a.kind === "page" && a.frame === frame && !(q === self && i === index))) ||
      this.pins.some((pin) => pin.frames.includes(frame));
  }

  /** The page tables of `p` over both regions, by model index: the PFN, -1 for none, SWAPPED. */
  private scan(p: Process): number[] {
    const out = new Array<number>(2 * PAGES).fill(-1);
    BASES.forEach((base, r) => {
      for (const rec of this.k.core.pagemap(p.mm, base, base + PAGES * PAGE)) {
        const kind = rec.kind & 0xff;
        const present = kind === C.PTE_KIND_PRESENT || kind === C.PTE_KIND_PROTNONE;
        out[r * PAGES + (rec.address - base) / PAGE] = present ? rec.pfn : SWAPPED;
      }
    });
    return out;
  }

  /** Pages a fault populated besides the one it was for (a THP, the huge zero page) hold zeros. */
  private learnFault(q: Proc, index: number, write: boolean): void {
    const pm = this.scan(q.p);
    const start = index - (index % HPAGES);
    for (let i = start; i < start + HPAGES; i++) {
      const a = q.pages[i]!;
      if (a.kind !== "none" || pm[i]! < 0) continue;
      if (write) Object.assign(a, { kind: "page", val: 0, frame: this.nextFrame++ });
      else Object.assign(a, { kind: "zero", val: 0, frame: 0 });
      if (i !== index) this.count(write ? "thp-fault-pages" : "huge-zero-pages");
    }
  }

  apply(o: Op, step: number): void {
    this.at = `step ${step}: ${JSON.stringify(o)}`;
    switch (o.op) {
      case "write": {
        const q = this.pick(o.who);
        const i = o.region * PAGES + o.page;
        const a = q.pages[i]!;
        q.p.write(BASES[o.region] + o.page * PAGE, o.value);
        if (a.kind === "none") this.learnFault(q, i, true);
        // do_wp_page() / do_huge_pmd_wp_page(): the page is copied where another process maps it
        if (a.kind !== "page" || this.sharedWithProcess(a.frame, q)) a.frame = this.nextFrame++;
        Object.assign(a, { kind: "page", val: o.value });
        break;
      }
      case "read": {
        const q = this.pick(o.who);
        const i = o.region * PAGES + o.page;
        expect(q.p.read(BASES[o.region] + o.page * PAGE), this.at).toBe(q.pages[i]!.val);
        if (q.pages[i]!.kind === "none") this.learnFault(q, i, false);
        break;
      }
      case "fork": {
        if (this.procs.length >= 3) break;
        const q = this.pick(o.who);
        let c: Process;
        try {
          c = q.p.fork() as Process;
        } catch (e) {
          // copies of pinned THPs may need more frames than the machine has: ENOMEM, nothing changed
          if (e instanceof CowsimError && e.errno === "ENOMEM") { this.count("fork-enomem"); break; }
          throw e;
        }
        const mine = this.scan(q.p);
        const theirs = this.scan(c);
        const pages = q.pages.map((a, i): Pte => {
          // vma_needs_copy(): no anon_vma, nothing copied (only zero pages could be there)
          if (q.p.vmas.lookup(BASES[i < PAGES ? 0 : 1])!.anonVma === null) return none();
          if (a.kind !== "page" || mine[i]! < 0) return { ...a };
          // copy_present_page(): a maybe-pinned folio is copied for the child — every page of
          // a large one (copy_huge_pmd() splits the PMD first), so the page tables tell which
          const copied = mine[i] !== theirs[i];
          if (this.pins.some((pin) => pin.frames.includes(a.frame))) expect(copied, `${this.at}: a pinned page shared by fork`).toBe(true);
          return copied ? { ...a, frame: this.nextFrame++ } : { ...a };
        });
        this.procs.push({ p: c, pages });
        this.count("fork");
        break;
      }
      case "exit": {
        if (this.procs.length < 2) break;
        const i = 1 + (o.who % (this.procs.length - 1));
        const c = this.procs[i]!;
        for (let j = this.pins.length - 1; j >= 0; j--) if (this.pins[j]!.owner === c) this.pins.splice(j, 1);
        c.p.exit();
        this.procs.splice(i, 1);
        break;
      }
      case "pin": {
        const q = this.pick(o.who);
        const n = Math.min(o.n, PAGES - o.page);
        const base = o.region * PAGES + o.page;
        if (q.pages.slice(base, base + n).some((a) => a.kind === "none")) break;
        const pin = q.p.pinUserPages(BASES[o.region] + o.page * PAGE, n, FOLL_PIN | FOLL_LONGTERM | (o.write ? FOLL_WRITE : 0));
        const frames: number[] = [];
        for (let i = base; i < base + n; i++) {
          const a = q.pages[i]!;
          // gup_must_unshare(): a shared page is unshared first; a write pin breaks COW of the zero page
          if (a.kind === "zero" && !o.write) continue;
          if (a.kind === "zero" || this.sharedWithProcess(a.frame, q)) a.frame = this.nextFrame++;
          a.kind = "page";
          frames.push(a.frame);
        }
        this.pins.push({ owner: q, pin, frames });
        this.count("pin");
        break;
      }
      case "unpin":
        if (this.pins.length) this.pins.splice(o.which % this.pins.length, 1)[0]!.pin.release();
        break;
      case "dontneed": case "pageout": {
        const q = this.pick(o.who);
        const n = Math.min(o.n, PAGES - o.page);
        q.p.madvise(BASES[o.region] + o.page * PAGE, n * PAGE, o.op === "dontneed" ? MADV_DONTNEED : MADV_PAGEOUT);
        if (o.op === "dontneed") for (let i = 0; i < n; i++) q.pages[o.region * PAGES + o.page + i] = none();
        break;
      }
      case "move": this.move(o); break;
    }
    this.check();
  }

  private move(o: Extract<Op, { op: "move" }>): void {
    const q = this.procs[0]!;
    const at = this.at;
    const n = Math.min(o.n, PAGES - o.src, PAGES - o.dst);
    const src = BASES[0] + o.src * PAGE;
    const dst = BASES[1] + o.dst * PAGE;
    const before = this.scan(q.p);
    // every frame another process maps, or a pin holds, in the page tables
    const elsewhere = new Set<number>();
    for (const other of this.procs.slice(1)) for (const pfn of this.scan(other.p)) if (pfn >= 0) elsewhere.add(pfn);
    for (const pin of this.pins) for (const pfn of pin.pin.pfns) elsewhere.add(pfn);
    let moved = 0;
    let errno: string | null = null;
    try {
      moved = this.ctx.move(dst, src, n * PAGE, o.holes ? UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0);
    } catch (e) {
      if (!(e instanceof CowsimError)) throw e;
      errno = e.errno;
      if (e instanceof UffdRangeError) moved = Math.max(0, e.result);
    }
    const pages = moved / PAGE;
    for (let i = 0; i < n; i++) {
      const s = q.pages[o.src + i]!;
      const d = q.pages[PAGES + o.dst + i]!;
      // the errnos the page may stop the move with (none: it must move)
      let must: string[] | null = null;
      // move_pages() looks at the source PMD before the destination PTE: a PMD without a page
      // table is a hole (ENOENT), a PMD-mapped THP not exclusive to us is EBUSY
      if (d.kind !== "none") must = ["EEXIST", ...(s.kind === "none" && !o.holes ? ["ENOENT"] : s.kind === "page" ? ["EBUSY"] : [])];
      else if (s.kind === "none") must = o.holes ? null : ["ENOENT"];
      else if (s.kind === "page" && this.observed(s.frame, q, o.src + i)) must = ["EBUSY"];
      if (i < pages) {
        expect(must, `${at}: page ${i} moved`).toBeNull();
        const pfn = before[o.src + i]!;
        if (pfn >= 0 && s.kind === "page") {
          expect(elsewhere.has(pfn), `${at}: pfn ${pfn} moved while another process or a pin has it`).toBe(false);
          // moved, not copied
          expect(q.p.pfnAt(dst + i * PAGE), at).toBe(pfn);
        }
        if (s.kind !== "none") {
          Object.assign(d, s);
          q.pages[o.src + i] = none();
          this.count(pfn === SWAPPED ? "move-swap" : s.kind === "zero" ? "move-zero" : "move-page");
        }
        continue;
      }
      // a folio another page of which is shared or pinned, a non-exclusive page: EBUSY too
      expect(must !== null || s.kind !== "none", `${at}: the move stopped at page ${i} (${errno}), which could move`).toBe(true);
      if (pages === 0) {
        expect(must ?? ["EBUSY"], at).toContain(errno);
        // nothing changed, but a PMD split on the way (the huge zero page's PTEs map the small one)
        const after = this.scan(q.p);
        const same = (pfns: number[]) => pfns.map((pfn, j) => (q.pages[j]!.kind === "zero" ? "zero" : pfn));
        expect(same(after), `${at}: a move that moved nothing changed nothing`).toEqual(same(before));
        this.count(`move-${must ? errno!.toLowerCase() : "ebusy-maybe"}`);
      } else {
        expect(errno, at).toBe("EAGAIN");
      }
      return;
    }
    expect(errno, at).toBeNull();
    if (n >= HPAGES && q.p.pmdMapped(dst)) this.count("move-pmd");
  }

  check(): void {
    const k = this.k;
    const at = this.at;
    expectKernelSound(k, at);
    for (const q of this.procs) {
      const pm = this.scan(q.p);
      q.pages.forEach((a, i) => {
        const pfn = pm[i]!;
        if ((pfn !== -1) !== (a.kind !== "none")) expect(pfn !== -1, `${at}: pid ${q.p.pid} page ${i} populated`).toBe(a.kind !== "none");
        if (pfn >= 0 && k.core.tag(pfn) !== a.val) expect(k.core.tag(pfn), `${at}: pid ${q.p.pid} page ${i} holds`).toBe(a.val);
      });
    }
  }

  finish(): void {
    for (const pin of this.pins.splice(0)) pin.pin.release();
    for (const q of this.procs.splice(0).reverse()) q.p.exit();
    this.ctx.close();
    expect(this.k.checkInvariants()).toEqual([]);
  }
}

describe("UFFDIO_MOVE over THPs (anon-exclusive, Linux 6.12)", () => {
  it("moves whole PMDs and pieces of them, never a frame another process or a pin can observe", () => {
    const tally: Record<string, number> = {};
    fc.assert(fc.property(fc.array(opArb, { minLength: 10, maxLength: 30 }), (ops) => {
      const k = createKernel({ strategy: "anon-exclusive", memory: "32M", swap: "8M", build: BUILD, maxProcesses: 8 });
      const w = new ThpMoveWorld(k, tally);
      ops.forEach((o, i) => w.apply(o, i + 1));
      w.finish();
    }), { numRuns: RUNS, seed: SEED });
    // the sequences reach whole-PMD moves, split THPs moved page by page, and moves refused
    // because another process or a pin could observe the page
    expect(tally["move-pmd"]).toBeGreaterThan(0);
    expect(tally["move-page"]).toBeGreaterThan(RUNS);
    expect(tally["move-ebusy"]).toBeGreaterThan(0);
  });
});
