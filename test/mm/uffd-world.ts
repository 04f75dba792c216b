// A model of userfaultfd over a few processes, for the property tests: what every page of every
// process holds (shmem pages through the page cache of their object), which of its PTEs carry uffd-wp (a bit or a marker), how each range is
// registered, which anonymous pages share a frame with another process or a pin (the model's
// frame identities), and whether a page is PageAnonExclusive. Each step drives the kernel and
// the model side by side; a blocked access is served by a handler that reads the message the
// model predicts and resolves it the way the step says.
import { expect } from "vitest";
import {
  CowsimError, MAP_ANONYMOUS, MAP_FIXED, MAP_SHARED, MADV_DONTNEED, MADV_PAGEOUT, MADV_REMOVE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
  FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, PM_PRESENT, PM_SWAP, PM_UFFD_WP, PROT_READ, UffdRangeError,
  UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_WP_UNPOPULATED, UFFD_PAGEFAULT_FLAG_MINOR, UFFD_PAGEFAULT_FLAG_WP,
  UFFD_PAGEFAULT_FLAG_WRITE, UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_COPY_MODE_WP, UFFDIO_CONTINUE_MODE_WP,
  UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, UFFDIO_REGISTER_MODE_MINOR, UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP,
  UFFDIO_WRITEPROTECT_MODE_DONTWAKE, UFFDIO_WRITEPROTECT_MODE_WP,
  type Kernel, type Process, type ShmemFile, type UserPages, type Userfaultfd,
} from "../../src/index.js";
import { RW, PRIV, PAGE } from "./helpers.js";

export const MISSING = UFFDIO_REGISTER_MODE_MISSING;
export const WP = UFFDIO_REGISTER_MODE_WP;
export const MINOR = UFFDIO_REGISTER_MODE_MINOR;

/**
 * The regions every process has: two private anonymous ones (A, B), a MAP_SHARED memfd (S) and
 * MAP_SHARED anonymous memory (M, shmem too).
 */
export const REGIONS = [
  { name: "A", base: 0x7f0000000000, pages: 6, anon: true },
  { name: "B", base: 0x7f0000100000, pages: 4, anon: true },
  { name: "S", base: 0x7f0000200000, pages: 4, anon: false },
  { name: "M", base: 0x7f0000300000, pages: 4, anon: false },
] as const;
export type Region = 0 | 1 | 2 | 3;
const ANON_PAGES = REGIONS[0].pages + REGIONS[1].pages;
const FILE_PAGES = REGIONS[2].pages;
const SHM_PAGES = REGIONS[2].pages + REGIONS[3].pages;
const MAX_PROCS = 3;
/** A pagemap swap entry's type and offset. */
const SWAP_ENTRY = (1n << 55n) - 1n;

/** How a blocked access is resolved, one choice per block (the last one repeats). */
export type Resolve = "copy" | "copy-wp" | "copy-dontwake" | "zeropage" | "continue" | "continue-wp" | "wp-off" | "wp-off-dontwake" | "wake";

export type UffdOp =
  | { op: "access"; who: number; region: Region; page: number; write: boolean; value: number; res: Resolve[] }
  | { op: "register"; who: number; region: Region; page: number; n: number; mode: number }
  | { op: "unregister" | "dontneed" | "pageout"; who: number; region: Region; page: number; n: number }
  | { op: "wp"; who: number; region: Region; page: number; n: number; on: boolean }
  | { op: "punch"; page: number; n: number }
  | { op: "remove"; who: number; region: Region; page: number; n: number }
  | { op: "mprotect"; who: number; region: Region; page: number; n: number; ro: boolean }
  | { op: "fork"; who: number; peek: boolean }
  | { op: "exit"; who: number }
  | { op: "move"; who: number; src: Region; srcPage: number; dst: Region; dstPage: number; n: number; holes: boolean }
  | { op: "pin"; who: number; region: Region; page: number; n: number; write: boolean }
  | { op: "unpin"; which: number };

/** A private anonymous PTE as the model sees it (swapped or present is the same to it). */
interface AnonPte {
  kind: "none" | "zero" | "page";
  /** uffd-wp: the PTE's (or swap entry's) bit, or a marker in a none PTE. */
  wp: boolean;
  val: number;
  /** The model's frame identity (0 for none and the zero page). */
  frame: number;
  /** PageAnonExclusive (SWP_EXCLUSIVE when swapped); null: the kernel may have set it again (swap-in). */
  pae: boolean | null;
}

interface ShmPte {
  mapped: boolean;
  wp: boolean;
}

interface Proc {
  p: Process;
  ctx: Userfaultfd | null;
  anon: AnonPte[];
  shm: ShmPte[];
  /** Registration mode by page of every region (0: none). */
  mode: number[];
  ro: boolean[];
}

interface PinRec {
  owner: Proc;
  pin: UserPages;
  frames: number[];
}

/** What the steps reached, summed over the runs. */
export type Tally = Record<string, number>;

const gIndex = (r: Region, page: number) => (r === 0 ? page : r === 1 ? REGIONS[0].pages + page : ANON_PAGES + sIndex(r, page));
/** A shmem page's index in the model's page caches and shmem PTEs: S's pages, then M's. */
const sIndex = (r: Region, page: number) => (r === 2 ? page : FILE_PAGES + page);
const regionOfShm = (i: number): [Region, number] => (i < FILE_PAGES ? [2, i] : [3, i - FILE_PAGES]);
const addrOf = (r: Region, page: number) => REGIONS[r].base + page * PAGE;
const clampN = (r: Region, page: number, n: number) => Math.max(0, Math.min(n, REGIONS[r].pages - page));

function errnoOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof CowsimError) return e.errno;
    throw e;
  }
}

/** The checks of every step of a uffd property: invariants, no missed or wrong COW, none latent. */
export function expectKernelSound(k: Kernel, at: string): void {
  expect(k.checkInvariants(), at).toEqual([]);
  expect(k.findings.filter((f) => f.kind !== "unnecessary-cow").map((f) => f.summary), at).toEqual([]);
  expect(k.latentMissedCows(), at).toEqual([]);
}

export class UffdWorld {
  readonly procs: Proc[] = [];
  readonly pins: PinRec[] = [];
  /** The page caches of the memfd and of M's object: each index's value, or null (a hole). Swapped pages are still there. */
  readonly cache: (number | null)[] = new Array<number | null>(SHM_PAGES).fill(null);
  readonly file: ShmemFile;
  private nextFrame = 1;
  private at = "";

  constructor(readonly k: Kernel, readonly features: number, readonly tally: Tally) {
    const p = k.spawn();
    for (const r of REGIONS) if (r.anon) p.mmap(r.base, r.pages * PAGE, RW, PRIV | MAP_FIXED);
    this.file = p.memfdCreate("uffd-world");
    p.ftruncate(this.file, FILE_PAGES * PAGE);
    p.mmap(REGIONS[2].base, FILE_PAGES * PAGE, RW, MAP_SHARED | MAP_FIXED, this.file, 0);
    p.mmap(REGIONS[3].base, REGIONS[3].pages * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const ctx = p.userfaultfd();
    ctx.api(features);
    this.procs.push({
      p, ctx,
      anon: Array.from({ length: ANON_PAGES }, () => ({ kind: "none" as const, wp: false, val: 0, frame: 0, pae: null })),
      shm: Array.from({ length: SHM_PAGES }, () => ({ mapped: false, wp: false })),
      mode: new Array<number>(ANON_PAGES + SHM_PAGES).fill(0),
      ro: new Array<boolean>(ANON_PAGES).fill(false),
    });
  }

  private count(what: string, n = 1): void {
    this.tally[what] = (this.tally[what] ?? 0) + n;
  }

  private pick(who: number): Proc {
    return this.procs[who % this.procs.length]!;
  }

  /** Another process maps the frame, or a pin holds it: what UFFDIO_MOVE must never move. */
  private isObserved(frame: number, self: Proc, selfIndex: number): boolean {
    if (frame === 0) return false;
    const mapped = this.procs.some((q) => q.anon.some((a, i) => a.kind === "page" && a.frame === frame && !(q === self && i === selfIndex)));
    return mapped || this.pins.some((pin) => pin.frames.includes(frame));
  }

  /** Some other process maps the frame (a write must copy). */
  private sharedWithProcess(frame: number, self: Proc): boolean {
    return frame !== 0 && this.procs.some((q) => q !== self && q.anon.some((a) => a.kind === "page" && a.frame === frame));
  }

  apply(op: UffdOp, step: number): void {
    this.at = `step ${step}: ${JSON.stringify(op)}`;
    // the generator's pages are taken modulo the region's size
    const o: UffdOp = { ...op };
    if ("region" in o) o.page %= REGIONS[o.region].pages;
    if (o.op === "move") { o.srcPage %= REGIONS[o.src].pages; o.dstPage %= REGIONS[o.dst].pages; }
    switch (o.op) {
      case "access": this.access(this.pick(o.who), o.region, o.page, o.write, o.value, o.res); break;
      case "register": this.register(this.pick(o.who), o.region, o.page, o.n, o.mode); break;
      case "unregister": this.unregister(this.pick(o.who), o.region, o.page, o.n); break;
      case "wp": this.writeprotect(this.pick(o.who), o.region, o.page, o.n, o.on, false); break;
      case "dontneed": this.dontneed(this.pick(o.who), o.region, o.page, o.n); break;
      case "pageout": this.pageout(this.pick(o.who), o.region, o.page, o.n); break;
      case "punch": this.punch(o.page, o.n, null); break;
      case "remove": this.punch(o.page, o.n, this.pick(o.who), REGIONS[o.region].anon ? 2 : o.region); break;
      case "mprotect": this.mprotect(this.pick(o.who), o.region, o.page, o.n, o.ro); break;
      case "fork": this.fork(this.pick(o.who), o.peek); break;
      case "exit": this.exit(o.who); break;
      case "move": this.move(this.pick(o.who), o); break;
      case "pin": this.pin(this.pick(o.who), o.region, o.page, o.n, o.write); break;
      case "unpin": this.unpin(o.which); break;
    }
    this.check();
  }

  // ---- accesses and the handler ---------------------------------------------------------------

  /**
   * What the access does next in the model: done (the model updated), SIGSEGV, or a block with
   * the flags its message must carry (the model updated with what the fault did before it).
   */
  private predict(q: Proc, r: Region, page: number, write: boolean, value: number):
    { done: true; value: number } | { segv: true } | { block: number; reason: "missing" | "minor" | "wp" } {
    const g = gIndex(r, page);
    const mode = q.mode[g]!;
    const wflag = write ? UFFD_PAGEFAULT_FLAG_WRITE : 0;
    if (REGIONS[r].anon) {
      const a = q.anon[g]!;
      if (write && q.ro[g]) return { segv: true };
      if (a.kind === "none") {
        // do_anonymous_page(): a missing fault, marker or not
        if (mode & MISSING) return { block: wflag, reason: "missing" };
        if (!write) {
          Object.assign(a, { kind: "zero", val: 0, frame: 0 });
          return { done: true, value: 0 };
        }
        if (a.wp) {
          // a marker: the new page is mapped protected (setpte: pte_mkuffd_wp()), the write then waits
          Object.assign(a, { kind: "page", val: 0, frame: this.nextFrame++, pae: true });
          return { block: wflag | UFFD_PAGEFAULT_FLAG_WP, reason: "wp" };
        }
        Object.assign(a, { kind: "page", val: value, frame: this.nextFrame++, pae: true });
        return { done: true, value };
      }
      if (!write) return { done: true, value: a.val };
      if (a.wp && mode & WP) return { block: wflag | UFFD_PAGEFAULT_FLAG_WP, reason: "wp" };
      // do_wp_page(): a copy where another process maps the frame, else reuse
      if (a.kind === "zero" || this.sharedWithProcess(a.frame, q)) a.frame = this.nextFrame++;
      Object.assign(a, { kind: "page", val: value, pae: true });
      return { done: true, value };
    }
    const i = sIndex(r, page);
    const pte = q.shm[i]!;
    if (!pte.mapped) {
      if (this.cache[i] === null) {
        // shmem_get_folio_gfp(): no page in the page cache
        if (mode & MISSING) return { block: wflag, reason: "missing" };
        this.cache[i] = 0;
      } else if (mode & MINOR) {
        return { block: wflag | UFFD_PAGEFAULT_FLAG_MINOR, reason: "minor" };
      }
      // finish_fault(): a marker's uffd-wp goes into the new PTE
      pte.mapped = true;
    }
    if (!write) return { done: true, value: this.cache[i]! };
    if (pte.wp && mode & WP) return { block: wflag | UFFD_PAGEFAULT_FLAG_WP, reason: "wp" };
    this.cache[i] = value;
    return { done: true, value };
  }

  private access(q: Proc, r: Region, page: number, write: boolean, value: number, res: readonly Resolve[]): void {
    const addr = addrOf(r, page);
    const at = this.at;
    let pred = this.predict(q, r, page, write, value);
    if ("segv" in pred) {
      expect(errnoOf(() => q.p.access(write, addr, value)), at).toBe("EFAULT");
      this.count("segv");
      return;
    }
    const acc = q.p.access(write, addr, value);
    let round = 0;
    while ("block" in pred) {
      expect(acc.state, `${at}: the access must wait (${pred.reason})`).toBe("blocked");
      expect(q.ctx!.read(), at).toEqual({ event: "pagefault", address: addr, flags: pred.block });
      this.count(`block-${pred.reason}`);
      if (pred.reason === "wp" && write) this.count("wp-write-blocked");
      const how = res[Math.min(round++, res.length - 1)] ?? "wake";
      const woken = this.resolve(q, r, page, pred.reason, how, round > 6);
      if (!woken) q.ctx!.wake(addr, PAGE);
      acc.resume();
      pred = this.predict(q, r, page, write, value);
    }
    expect(acc.state, `${at}: the access must complete`).toBe("done");
    if ("segv" in pred) throw new Error(`${at}: a resolved fault became SIGSEGV`);
    expect(acc.value, at).toBe(pred.value);
  }

  /**
   * The handler: resolves the fault as `how` says where it fits the fault, else with the
   * resolution that does (a bare wake once, then a real one). Returns whether it woke the fault.
   */
  private resolve(q: Proc, r: Region, page: number, reason: "missing" | "minor" | "wp", how: Resolve, force: boolean): boolean {
    const ctx = q.ctx!;
    const addr = addrOf(r, page);
    const g = gIndex(r, page);
    const at = this.at;
    if (how === "wake" && !force) {
      // a spurious wake: the fault is taken again and asks again
      ctx.wake(addr, PAGE);
      this.count("resolve-wake");
      return true;
    }
    if (reason === "wp") {
      const dontwake = how === "wp-off-dontwake";
      this.writeprotect(q, r, page, 1, false, dontwake);
      this.count("resolve-wp-off");
      return !dontwake;
    }
    if (reason === "minor") {
      const wp = how === "continue-wp" && (q.mode[g]! & WP) !== 0;
      expect(ctx.continue(addr, PAGE, wp ? UFFDIO_CONTINUE_MODE_WP : 0), at).toBe(PAGE);
      Object.assign(q.shm[sIndex(r, page)]!, { mapped: true, wp });
      this.count("resolve-continue");
      return true;
    }
    // a missing fault
    if (how === "zeropage") {
      const marker = REGIONS[r].anon && q.anon[g]!.wp;
      if (marker) {
        // mfill_atomic_pte_zeropage() wants pte_none(): a uffd-wp marker is not
        expect(errnoOf(() => ctx.zeropage(addr, PAGE)), at).toBe("EEXIST");
        this.count("zeropage-eexist");
      } else {
        expect(ctx.zeropage(addr, PAGE), at).toBe(PAGE);
        if (REGIONS[r].anon) Object.assign(q.anon[g]!, { kind: "zero", wp: false, val: 0, frame: 0 });
        else { this.cache[sIndex(r, page)] = 0; Object.assign(q.shm[sIndex(r, page)]!, { mapped: true, wp: false }); }
        this.count("resolve-zeropage");
        return true;
      }
    }
    const wp = how === "copy-wp" && (q.mode[g]! & WP) !== 0;
    const dontwake = how === "copy-dontwake";
    const value = 500 + page + 10 * r;
    expect(ctx.copy(addr, PAGE, { value, mode: (wp ? UFFDIO_COPY_MODE_WP : 0) | (dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0) }), at).toBe(PAGE);
    // mfill_atomic_install_pte(): a marker is overwritten; uffd-wp only with MODE_WP
    if (REGIONS[r].anon) Object.assign(q.anon[g]!, { kind: "page", wp, val: value, frame: this.nextFrame++, pae: true });
    else { this.cache[sIndex(r, page)] = value; Object.assign(q.shm[sIndex(r, page)]!, { mapped: true, wp }); }
    this.count("resolve-copy");
    return !dontwake;
  }

  // ---- registration and write-protection -------------------------------------------------------

  /** UFFDIO_UNREGISTER then UFFDIO_REGISTER: a range's modes are replaced with no stale uffd-wp state. */
  private register(q: Proc, r: Region, page: number, n: number, mode: number): void {
    n = clampN(r, page, n);
    if (!q.ctx || n === 0) return;
    this.unregister(q, r, page, n);
    const err = errnoOf(() => q.ctx!.register(addrOf(r, page), n * PAGE, mode));
    // vma_can_userfault(): MINOR only on shmem
    const want = mode & MINOR && REGIONS[r].anon ? "EINVAL" : null;
    expect(err, this.at).toBe(want);
    if (err) return;
    for (let i = page; i < page + n; i++) q.mode[gIndex(r, i)] = mode;
    this.count("register");
  }

  private unregister(q: Proc, r: Region, page: number, n: number): void {
    n = clampN(r, page, n);
    if (!q.ctx || n === 0) return;
    q.ctx.unregister(addrOf(r, page), n * PAGE);
    // userfaultfd_clear_vma(): uffd-wp bits and markers go with the registration
    for (let i = page; i < page + n; i++) {
      q.mode[gIndex(r, i)] = 0;
      this.pte(q, r, i).wp = false;
    }
  }

  private pte(q: Proc, r: Region, page: number): { wp: boolean } {
    return REGIONS[r].anon ? q.anon[gIndex(r, page)]! : q.shm[sIndex(r, page)]!;
  }

  /** UFFDIO_WRITEPROTECT: mwriteprotect_range() applies VMA by VMA up to the first one not registered for WP (ENOENT). */
  private writeprotect(q: Proc, r: Region, page: number, n: number, on: boolean, dontwake: boolean): void {
    n = clampN(r, page, n);
    if (!q.ctx || n === 0) return;
    const mode = (on ? UFFDIO_WRITEPROTECT_MODE_WP : 0) | (dontwake ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
    const err = errnoOf(() => q.ctx!.writeprotect(addrOf(r, page), n * PAGE, mode));
    let end = page;
    while (end < page + n && q.mode[gIndex(r, end)]! & WP) end++;
    expect(err, this.at).toBe(end < page + n ? "ENOENT" : null);
    for (let i = page; i < end; i++) {
      if (!on) { this.pte(q, r, i).wp = false; continue; }
      // change_pte_range(): present and swap entries take the bit; none PTEs a marker only
      // where userfaultfd_wp_use_markers(): always on shmem, on anonymous memory with WP_UNPOPULATED
      if (REGIONS[r].anon) {
        const a = q.anon[gIndex(r, i)]!;
        if (a.kind !== "none" || this.features & UFFD_FEATURE_WP_UNPOPULATED) a.wp = true;
      } else {
        q.shm[sIndex(r, i)]!.wp = true;
      }
    }
    if (on) this.count("wp-on");
  }

  // ---- zap, punch, swap ------------------------------------------------------------------------

  /**
   * userfaultfd_remove(): MADV_DONTNEED and MADV_REMOVE tell each VMA's userfaultfd with
   * EVENT_REMOVE of the part of the range in that VMA, and mfill and move ioctls fail with
   * EAGAIN until the events are read. Runs `fn` and reads them.
   */
  private removing(q: Proc, r: Region, page: number, n: number, fn: () => void): void {
    const start = addrOf(r, page);
    const end = start + n * PAGE;
    const want = q.p.vmas.overlapping(start, end)
      .filter((v) => v.uffdCtx !== null && (v.uffdCtx.features & UFFD_FEATURE_EVENT_REMOVE) !== 0)
      .map((v) => ({ event: "remove", start: Math.max(start, v.start), end: Math.min(end, v.end) }));
    fn();
    if (want.length === 0) return;
    const ctx = q.ctx!;
    expect(errnoOf(() => ctx.move(addrOf(0, 0), addrOf(1, 0), PAGE)), this.at).toBe("EAGAIN");
    expect(errnoOf(() => ctx.zeropage(start, PAGE)), this.at).toBe("EAGAIN");
    for (const m of want) expect(ctx.read(), this.at).toEqual(m);
    this.count("remove-event", want.length);
  }

  private dontneed(q: Proc, r: Region, page: number, n: number): void {
    n = clampN(r, page, n);
    if (n === 0) return;
    this.removing(q, r, page, n, () => q.p.madvise(addrOf(r, page), n * PAGE, MADV_DONTNEED));
    for (let i = page; i < page + n; i++) {
      if (REGIONS[r].anon) {
        // zap_install_uffd_wp_if_needed(): a zap of anonymous memory drops everything, markers too
        Object.assign(q.anon[gIndex(r, i)]!, { kind: "none", wp: false, val: 0, frame: 0, pae: null });
      } else {
        // … of shmem leaves a marker where the PTE was protected
        q.shm[sIndex(r, i)]!.mapped = false;
      }
    }
    this.count("dontneed");
  }

  /**
   * fallocate(PUNCH_HOLE) of the memfd, or (with `q`) MADV_REMOVE of region `r` in q (the memfd's
   * mapping or M): the page cache drops the pages.
   */
  private punch(page: number, n: number, q: Proc | null, r: Region = 2): void {
    n = clampN(r, page, n);
    if (n === 0) return;
    if (q) this.removing(q, r, page, n, () => q.p.madvise(addrOf(r, page), n * PAGE, MADV_REMOVE));
    else this.procs[0]!.p.fallocate(this.file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, page * PAGE, n * PAGE);
    for (let i = sIndex(r, page); i < sIndex(r, page) + n; i++) {
      this.cache[i] = null;
      // unmap_mapping_range(): every mapping's PTE goes, a protected one leaves a marker
      for (const o of this.procs) o.shm[i]!.mapped = false;
    }
    this.count(q ? "madv-remove" : "punch");
  }

  private pageout(q: Proc, r: Region, page: number, n: number): void {
    n = clampN(r, page, n);
    if (n === 0) return;
    q.p.madvise(addrOf(r, page), n * PAGE, MADV_PAGEOUT);
    const pm = q.p.pagemap(addrOf(r, page), n);
    for (let i = page; i < page + n; i++) {
      if (REGIONS[r].anon) {
        // the swap entry keeps uffd-wp and SWP_EXCLUSIVE; a later swap-in may make a shared page exclusive again
        const a = q.anon[gIndex(r, i)]!;
        if (a.kind === "page" && a.pae === false) a.pae = null;
        continue;
      }
      const si = sIndex(r, i);
      const pte = q.shm[si]!;
      if (!pte.mapped) continue;
      if ((pm[i - page]! & PM_PRESENT) === 0n) {
        // madvise_cold_or_pageout_pte_range() skips a folio another PTE maps too
        const mappers = this.procs.filter((o) => o.shm[si]!.mapped).length;
        expect(mappers, `${this.at}: a shmem page mapped ${mappers} times was swapped out`).toBe(1);
        this.count("shmem-swapped");
        // try_to_unmap_one(): pte_install_uffd_wp_if_needed() keeps uffd-wp as a marker
        pte.mapped = false;
      }
    }
  }

  private mprotect(q: Proc, r: Region, page: number, n: number, ro: boolean): void {
    n = clampN(r, page, n);
    if (!REGIONS[r].anon || n === 0) return;
    q.p.mprotect(addrOf(r, page), n * PAGE, ro ? PROT_READ : RW);
    for (let i = page; i < page + n; i++) q.ro[gIndex(r, i)] = ro;
  }

  // ---- fork and exit ---------------------------------------------------------------------------

  private fork(q: Proc, peek: boolean): void {
    if (this.procs.length >= MAX_PROCS) return;
    const at = this.at;
    const eventFork = q.ctx !== null && (this.features & UFFD_FEATURE_EVENT_FORK) !== 0 && q.mode.some((m) => m !== 0);
    const c = q.p.fork();
    let ctx: Userfaultfd | null = null;
    if (eventFork) {
      if (peek) {
        // mmap_changing until the event is read
        expect(errnoOf(() => q.ctx!.copy(addrOf(0, 0), PAGE, { value: 1 })), at).toBe("EAGAIN");
        expect(errnoOf(() => q.ctx!.move(addrOf(0, 0), addrOf(1, 0), PAGE)), at).toBe("EAGAIN");
        expect(errnoOf(() => q.ctx!.writeprotect(addrOf(0, 0), PAGE, 0)), at).toBe("EAGAIN");
        this.count("fork-peek");
      }
      const m = q.ctx!.read();
      expect(m.event, at).toBe("fork");
      if (m.event === "fork") ctx = m.ufd;
      this.count("fork-event");
    }
    // dup_userfaultfd(): the child keeps the registrations only with EVENT_FORK; without, its
    // VMAs are plain, and copy_pte_range() drops uffd-wp bits and markers (!userfaultfd_wp(dst_vma))
    const mode = q.mode.map((m) => (ctx ? m : 0));
    const anon = q.anon.map((a, i): AnonPte => {
      const wp = a.wp && (mode[i]! & WP) !== 0;
      // vma_needs_copy(): a VMA without an anon_vma (only zero pages or markers in it) is not
      // copied unless the child's VMA has uffd-wp
      const r: Region = i < REGIONS[0].pages ? 0 : 1;
      const vma = q.p.vmas.lookup(addrOf(r, i - (r === 0 ? 0 : REGIONS[0].pages)))!;
      if (vma.anonVma === null && !(mode[i]! & WP)) return { kind: "none", wp: false, val: 0, frame: 0, pae: null };
      if (a.kind !== "page") return { ...a, wp };
      if (this.pins.some((pin) => pin.frames.includes(a.frame))) {
        // copy_present_page(): a maybe-pinned page is copied for the child at once
        return { ...a, wp, frame: this.nextFrame++, pae: true };
      }
      a.pae = false;
      return { ...a, wp, pae: false };
    });
    // vma_needs_copy(): a shared mapping's PTEs are copied only when the child's VMA has uffd-wp
    const shm = q.shm.map((s, i): ShmPte => ((mode[gIndex(...regionOfShm(i))]! & WP) ? { ...s } : { mapped: false, wp: false }));
    this.procs.push({ p: c as Process, ctx, anon, shm, mode, ro: [...q.ro] });
    this.count(eventFork ? "fork-with-event" : "fork");
  }

  private exit(who: number): void {
    if (this.procs.length < 2) return;
    const i = 1 + (who % (this.procs.length - 1));
    const c = this.procs[i]!;
    for (let j = this.pins.length - 1; j >= 0; j--) if (this.pins[j]!.owner === c) this.pins.splice(j, 1);
    c.p.exit();
    c.ctx?.close();
    this.procs.splice(i, 1);
    this.count("exit");
  }

  // ---- UFFDIO_MOVE -----------------------------------------------------------------------------

  private move(q: Proc, o: Extract<UffdOp, { op: "move" }>): void {
    const ctx = q.ctx;
    const n = Math.min(clampN(o.src, o.srcPage, o.n), clampN(o.dst, o.dstPage, o.n));
    if (!ctx || n === 0) return;
    const at = this.at;
    const src = addrOf(o.src, o.srcPage);
    const dst = addrOf(o.dst, o.dstPage);
    const len = n * PAGE;
    // move_pages()'s checks of the VMAs: private anonymous, each range inside one VMA, the same
    // access and protection, writable, the destination registered with this userfaultfd
    const sv = q.p.vmas.lookup(src)!;
    const dv = q.p.vmas.lookup(dst)!;
    const anon = REGIONS[o.src].anon && REGIONS[o.dst].anon;
    const sg = gIndex(o.src, o.srcPage);
    const dg = gIndex(o.dst, o.dstPage);
    const valid = anon && src + len <= sv.end && dst + len <= dv.end && q.ro[sg] === q.ro[dg] && !q.ro[sg] && q.mode[dg] !== 0;
    const before = [q.p.pagemap(src, n), q.p.pagemap(dst, n)];
    // the kernel's frames and swap entries by address, moved along as the pages move (an
    // overlapping move is sequential: a page moved may move again)
    const pfnAt = new Map<number, number | null>();
    const swapAt = new Map<number, bigint | null>();
    for (let i = 0; i < n; i++) {
      for (const [base, e] of [[src, before[0]![i]!], [dst, before[1]![i]!]] as const) {
        pfnAt.set(base + i * PAGE, q.p.pfnAt(base + i * PAGE));
        swapAt.set(base + i * PAGE, e & PM_SWAP ? e & SWAP_ENTRY : null);
      }
    }
    let moved = 0;
    let errno: string | null = null;
    try {
      moved = ctx.move(dst, src, len, o.holes ? UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0);
    } catch (e) {
      if (!(e instanceof UffdRangeError)) {
        if (e instanceof CowsimError) errno = e.errno;
        else throw e;
      } else {
        errno = e.errno;
        moved = Math.max(0, e.result);
      }
    }
    if (!valid) {
      expect(errno, at).toBe("EINVAL");
      expect([q.p.pagemap(src, n), q.p.pagemap(dst, n)], at).toEqual(before);
      this.count("move-einval");
      return;
    }
    // move_pages_pte(), page by page: the destination must be none (a marker is not), then the source
    const pages = moved / PAGE;
    for (let i = 0; i < n; i++) {
      const s = q.anon[sg + i]!;
      const d = q.anon[dg + i]!;
      let must: string | null = null;
      let maybe = false;
      if (d.kind !== "none" || d.wp) must = "EEXIST";
      else if (s.kind === "none") must = s.wp ? "EFAULT" : o.holes ? null : "ENOENT";
      else if (s.kind === "page") {
        // move_present_pte() / move_swap_pte(): only a page nobody else can observe, exclusive to us
        if (this.isObserved(s.frame, q, sg + i)) must = "EBUSY";
        else if (s.pae === false) must = "EBUSY";
        else if (s.pae === null) maybe = true;
      }
      if (i < pages) {
        expect(must, `${at}: page ${i} moved`).toBeNull();
        const from = src + i * PAGE;
        const to = dst + i * PAGE;
        const entry = swapAt.get(from)!;
        const swapped = entry !== null;
        if (s.kind === "page") {
          // the kernel's view too: no other process maps the frame or holds the swap entry, no pin holds it
          const pfn = pfnAt.get(from)!;
          for (const other of this.procs) {
            if (other === q) continue;
            for (const [ri, reg] of REGIONS.entries()) {
              if (!reg.anon) continue;
              const pm = other.p.pagemap(reg.base, reg.pages);
              for (let j = 0; j < reg.pages; j++) {
                if (pfn !== null) expect(other.p.pfnAt(addrOf(ri as Region, j)), `${at}: pfn ${pfn} moved while pid ${other.p.pid} maps it`).not.toBe(pfn);
                if (entry !== null && pm[j]! & PM_SWAP) expect(pm[j]! & SWAP_ENTRY, `${at}: a swap entry moved while pid ${other.p.pid} has it`).not.toBe(entry);
              }
            }
          }
          if (pfn !== null) for (const pin of this.pins) expect(pin.pin.pfns, `${at}: pfn ${pfn} moved while pinned`).not.toContain(pfn);
          // move_present_pte() builds a new PTE (no uffd-wp); move_swap_pte() moves the entry with its bit
          Object.assign(d, { kind: "page", val: s.val, frame: s.frame, pae: true, wp: swapped ? s.wp : false });
          this.count(swapped ? "move-swap" : "move-page");
        } else if (s.kind === "zero") {
          Object.assign(d, { kind: "zero", val: 0, frame: 0, wp: false });
          this.count("move-zero");
        } else {
          this.count("move-hole");
        }
        if (s.kind !== "none") {
          Object.assign(s, { kind: "none", wp: false, val: 0, frame: 0, pae: null });
          pfnAt.set(to, pfnAt.get(from)!);
          swapAt.set(to, entry);
          pfnAt.set(from, null);
          swapAt.set(from, null);
        }
        continue;
      }
      // the page the move stopped at
      expect(must !== null || maybe, `${at}: the move stopped at page ${i} (${errno}), which could move`).toBe(true);
      if (pages === 0) {
        if (must !== null) expect(errno, at).toBe(must);
        else expect(errno, at).toBe("EBUSY");
        if (s.kind === "page" && s.pae === null && errno === "EBUSY" && must === null) s.pae = false;
        // nothing moved: nothing changed
        expect([q.p.pagemap(src, n), q.p.pagemap(dst, n)], at).toEqual(before);
      } else {
        expect(errno, at).toBe("EAGAIN");
        this.movedWithoutCopy(q, pfnAt, swapAt);
      }
      if (must === "EBUSY") this.count(this.isObserved(s.frame, q, sg + i) ? "move-ebusy-observed" : "move-ebusy-not-exclusive");
      else if (must) this.count(`move-${must.toLowerCase()}`);
      return;
    }
    expect(errno, at).toBeNull();
    expect(moved, at).toBe(len);
    this.movedWithoutCopy(q, pfnAt, swapAt);
  }

  /** The frames and swap entries moved are those the destination has now: nothing was copied. */
  private movedWithoutCopy(q: Proc, pfnAt: ReadonlyMap<number, number | null>, swapAt: ReadonlyMap<number, bigint | null>): void {
    for (const [addr, pfn] of pfnAt) expect(q.p.pfnAt(addr), `${this.at}: the frame at 0x${addr.toString(16)}`).toBe(pfn);
    for (const [addr, entry] of swapAt) {
      const e = q.p.pagemap(addr, 1)[0]!;
      expect(e & PM_SWAP ? e & SWAP_ENTRY : null, `${this.at}: the swap entry at 0x${addr.toString(16)}`).toBe(entry);
    }
  }

  // ---- GUP pins ---------------------------------------------------------------------------------

  private pin(q: Proc, r: Region, page: number, n: number, write: boolean): void {
    n = clampN(r, page, n);
    if (!REGIONS[r].anon || n === 0) return;
    const g = gIndex(r, page);
    for (let i = g; i < g + n; i++) {
      const a = q.anon[i]!;
      // only pages a pin can take without a userfault (a missing page, a protected write would wait)
      if (a.kind === "none") return;
      if (write && (q.ro[i] || (a.wp && q.mode[i]! & WP))) return;
    }
    const pin = q.p.pinUserPages(addrOf(r, page), n, FOLL_PIN | FOLL_LONGTERM | (write ? FOLL_WRITE : 0));
    const frames: number[] = [];
    for (let i = g; i < g + n; i++) {
      const a = q.anon[i]!;
      // gup_must_unshare(): a shared anonymous page is unshared (copied or reused) first; a write
      // pin breaks COW, of the zero page too
      if (a.kind === "zero" && !write) continue;
      if (a.kind === "zero" || this.sharedWithProcess(a.frame, q)) a.frame = this.nextFrame++;
      Object.assign(a, { kind: "page", pae: true });
      frames.push(a.frame);
    }
    expect(pin.pfns, this.at).toEqual(Array.from({ length: n }, (_, i) => q.p.pfnAt(addrOf(r, page + i))));
    this.pins.push({ owner: q, pin, frames });
    this.count("pin");
  }

  private unpin(which: number): void {
    if (this.pins.length === 0) return;
    this.pins.splice(which % this.pins.length, 1)[0]!.pin.release();
  }

  // ---- the checks after every step -------------------------------------------------------------

  check(): void {
    const k = this.k;
    const at = this.at;
    expectKernelSound(k, at);
    for (const q of this.procs) {
      expect(q.ctx?.messages ?? [], `${at}: messages nobody read`).toEqual([]);
      for (const [ri, reg] of REGIONS.entries()) {
        const r = ri as Region;
        const pm = q.p.pagemap(reg.base, reg.pages);
        for (let i = 0; i < reg.pages; i++) {
          const e = pm[i]!;
          const where = `${at}: pid ${q.p.pid} ${reg.name}[${i}]`;
          const pte = this.pte(q, r, i);
          expect((e & PM_UFFD_WP) !== 0n, `${where} uffd-wp`).toBe(pte.wp);
          const pfn = q.p.pfnAt(addrOf(r, i));
          if (reg.anon) {
            const a = q.anon[gIndex(r, i)]!;
            const populated = (e & (PM_PRESENT | PM_SWAP)) !== 0n;
            if (a.kind === "none" && !a.wp) expect(populated, `${where} populated`).toBe(false);
            if (a.kind !== "none") expect(populated, `${where} populated`).toBe(true);
            if (pfn !== null) expect(k.core.tag(pfn), `${where} holds`).toBe(a.val);
          } else {
            expect((e & PM_PRESENT) !== 0n, `${where} mapped`).toBe(q.shm[sIndex(r, i)]!.mapped);
            if (pfn !== null) expect(k.core.tag(pfn), `${where} holds`).toBe(this.cache[sIndex(r, i)]);
          }
        }
      }
    }
  }

  /** Every process reads every page (faults served as a handler would); then all goes away. */
  finish(): void {
    this.at = "finish";
    for (const q of this.procs) {
      for (const [ri, reg] of REGIONS.entries()) {
        for (let i = 0; i < reg.pages; i++) this.access(q, ri as Region, i, false, 0, ["zeropage", "copy", "continue", "wp-off"]);
      }
    }
    this.check();
    for (const pin of this.pins.splice(0)) pin.pin.release();
    for (const q of this.procs.splice(0).reverse()) {
      q.p.exit();
      q.ctx?.close();
    }
    expect(this.k.checkInvariants()).toEqual([]);
    expect(this.k.heldFrames()).toEqual([]);
  }
}
