/**
 * get_user_pages() / pin_user_pages() (mm/gup.c): GUP-fast first (the core's lockless walk),
 * then the slow path — follow_page_pte(), and faultin_page() to break COW for writes or to
 * unshare for R/O pins where the strategy does — with the kernel's flags: FOLL_GET, FOLL_PIN,
 * FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE. Every reference taken is recorded in the kernel's pin
 * registry, so the invariants can account for it and a release happens exactly once.
 */
import { C, livePinRecords, type GupFastBegun, type PinRecord } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import type { PinContract, PinView } from "../trace/events.js";
import { type Vma, VM_READ, VM_WRITE, VM_MAYREAD, VM_MAYWRITE, VM_SHARED, hex } from "./vma.js";
import { faultIn, do_wp_page } from "./memory.js";
import { do_huge_pmd_wp_page, PMD_SIZE } from "./huge_memory.js";
import { Stat } from "./stats.js";
import { PAGE_SIZE } from "./uapi.js";
import { pmdOffset } from "./align.js";

/** FOLL_WRITE: the pages will be written (a COW page is broken first). */
export const FOLL_WRITE = C.FOLL_WRITE;
/** FOLL_GET: take plain references (get_user_pages()). */
export const FOLL_GET = C.FOLL_GET;
/** FOLL_FORCE: reach what the process may not (ptrace): PROT_NONE, read-only private mappings. */
export const FOLL_FORCE = C.FOLL_FORCE;
/** FOLL_LONGTERM: the pin may last indefinitely (RDMA, io_uring fixed buffers). */
export const FOLL_LONGTERM = C.FOLL_LONGTERM;
/** FOLL_PIN: take pins (pin_user_pages()), which folio_maybe_dma_pinned() sees. */
export const FOLL_PIN = C.FOLL_PIN;
const FOLL_ALLOWED = FOLL_WRITE | FOLL_GET | FOLL_FORCE | FOLL_LONGTERM | FOLL_PIN;

export type { PinContract };

/** A set of GUP references held by one user. @public */
export class Pin implements PinView {
  released = false;
  constructor(
    readonly id: number,
    /** Who holds it: "pipe", "io_uring", "o_direct", "rdma", "pin". */
    readonly owner: string,
    readonly pid: number,
    readonly flags: number,
    /** The user address of the first page; the others follow it page by page. */
    readonly start: number,
    /** The page each reference holds. */
    readonly pfns: readonly number[],
    readonly contract: PinContract,
  ) {}

  private addressList: number[] | null = null;

  /** The user address of each page when it was taken (the pages may have moved since). */
  get addresses(): readonly number[] {
    return this.addressList ??= this.pfns.map((_, i) => this.start + i * PAGE_SIZE);
  }

  get isPin(): boolean {
    return (this.flags & FOLL_PIN) !== 0;
  }

  /** What a copy of the pin shows (the view, not the cache behind `addresses`). */
  toJSON(): PinView & { released: boolean } {
    return { id: this.id, owner: this.owner, pid: this.pid, flags: this.flags, contract: this.contract, addresses: this.addresses, pfns: this.pfns, released: this.released };
  }
}

/**
 * A pin a worker thread holds (a record of the pin registry in shared memory, taken by
 * gup_pin_fast()), as the oracle and the invariants see it. @public
 */
export class WorkerPin implements PinView {
  readonly owner = "gup-fast worker";
  private addressList: number[] | null = null;
  constructor(
    readonly record: PinRecord,
    readonly pid: number,
  ) {}
  /** Ids above every main-thread pin's: one per record slot of each thread. */
  get id(): number {
    return WORKER_PIN_ID_BASE + this.record.thread * C.PIN_RECORDS + this.record.slot;
  }
  get flags(): number { return this.record.flags; }
  get pfns(): readonly number[] { return this.record.pfns; }
  get isPin(): boolean { return (this.record.flags & FOLL_PIN) !== 0; }
  /** A FOLL_PIN must stay coherent with its owner's mapping; a FOLL_GET reference promises nothing. */
  get contract(): PinContract { return this.isPin ? "coherent" : "none"; }
  get addresses(): readonly number[] {
    return this.addressList ??= this.record.pfns.map((_, i) => this.record.va + i * PAGE_SIZE);
  }
}
const WORKER_PIN_ID_BASE = 2 ** 40;

/** All references held, for the invariants and the oracle. */
export class PinRegistry {
  private nextId = 1;
  readonly active = new Map<number, Pin>();
  /**
   * Whether worker threads may hold pins in the shared registry (a GUP-fast worker pool was
   * attached): then every view of the pins reads it too.
   */
  sharedRecords = false;
  /** Whether worker threads are pinning right now (between a pool's resume and pause). */
  pinnersRunning = false;
  /** GUP-fast grabs between their halves (gup_fast_begin() with the barriers): held, not yet a pin. */
  readonly inFlight = new Set<GupFastInFlight>();

  add(owner: string, pid: number, flags: number, start: number, pfns: number[], contract: PinContract): Pin {
    const pin = new Pin(this.nextId++, owner, pid, flags, start, pfns, contract);
    this.active.set(pin.id, pin);
    return pin;
  }

  /** References per folio that the holders account for (the invariants' "held" count). */
  heldRefs(k: MmKernel): Map<number, number> {
    const m = new Map<number, number>();
    const count = (pfn: number, isPin: boolean) => {
      const folio = k.ops.pageFolio(pfn);
      let refs = 1;
      if (isPin) {
        if (folio === 0) refs = 0; // pins of the zero page are not counted
        else if (!k.ops.folioTestLarge(folio)) refs = C.GUP_PIN_COUNTING_BIAS;
      }
      if (refs) m.set(folio, (m.get(folio) ?? 0) + refs);
    };
    for (const pin of this.active.values()) for (const pfn of pin.pfns) count(pfn, pin.isPin);
    for (const pin of this.workerPins(k)) for (const pfn of pin.pfns) count(pfn, pin.isPin);
    for (const g of this.inFlight) count(g.begun!.pfn, (g.flags & FOLL_PIN) !== 0);
    return m;
  }

  /**
   * The pins worker threads hold, from the shared registry (none unless a pool was attached).
   * Exact while the workers are paused; while they run, each record read is whole.
   */
  workerPins(k: MmKernel): WorkerPin[] {
    if (!this.sharedRecords) return [];
    const pidOf = new Map<number, number>();
    for (const p of k.processes.values()) pidOf.set(p.mm, p.pid);
    return livePinRecords(k.core).map((r) => new WorkerPin(r, pidOf.get(r.mm) ?? 0));
  }

  /** Every holder: the main thread's pins, then the workers'. */
  *all(k: MmKernel): Iterable<PinView & { readonly isPin: boolean }> {
    yield* this.active.values();
    yield* this.workerPins(k);
  }
}

/** check_vma_flags(): may GUP with `flags` touch this VMA? */
function vmaAllows(vma: Vma, flags: number): boolean {
  const f = vma.flags;
  if (flags & FOLL_WRITE) {
    if (f & VM_WRITE) return true;
    // FOLL_FORCE writes through a read-only private mapping (ptrace), never a shared one
    return (flags & FOLL_FORCE) !== 0 && !(f & VM_SHARED) && (f & VM_MAYWRITE) !== 0;
  }
  if (f & VM_READ) return true;
  // FOLL_FORCE reads what the process may not (ptrace): a PROT_NONE or execute-only mapping
  return (flags & FOLL_FORCE) !== 0 && (f & VM_MAYREAD) !== 0;
}

/** What GUP took: the pages, in order from the start, and why it stopped short, if it did. */
export interface GupResult {
  readonly pfns: number[];
  /** The error of the first page it could not take (EFAULT, ENOMEM), or null when it took all. */
  readonly error: CowsimError | null;
}

/** The arguments every GUP entry point refuses with EINVAL (is_valid_gup_args()). */
function checkGupArgs(start: number, nr: number, flags: number): void {
  if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE) {
    throw new CowsimError("EINVAL", `GUP: start ${start} is not a page-aligned address`);
  }
  if (!Number.isInteger(nr) || nr < 1) throw new CowsimError("EINVAL", `GUP: ${nr} pages`);
  if (!Number.isInteger(flags) || (flags & ~FOLL_ALLOWED) !== 0) {
    throw new CowsimError("EINVAL", `GUP: flags 0x${(flags >>> 0).toString(16)} include bits GUP does not take from users`);
  }
  if (((flags & FOLL_GET) !== 0) === ((flags & FOLL_PIN) !== 0)) {
    throw new CowsimError("EINVAL", "GUP: exactly one of FOLL_GET and FOLL_PIN");
  }
  if ((flags & FOLL_LONGTERM) && !(flags & FOLL_PIN)) {
    throw new CowsimError("EINVAL", "GUP: FOLL_LONGTERM goes with FOLL_PIN (pin_user_pages())");
  }
}

/**
 * __get_user_pages() through gup_fast_fallback(): `nr` pages from `start`, with `flags`. Page
 * by page in address order, as Linux goes: each VMA is checked when GUP reaches it
 * (check_vma_flags()), and a page that cannot be taken — a VMA it may not touch, a fault that
 * runs out of memory — ends the walk there. Like pin_user_pages(), that is a partial result:
 * the pages before it are taken (and stay faulted in); with none taken, the error is thrown.
 */
export function get_user_pages(k: MmKernel, p: MmProcess, start: number, nr: number, flags: number, fast = true): GupResult {
  checkGupArgs(start, nr, flags);

  let pfns: number[] = [];
  // GUP-fast first (it stops at the first entry it cannot take: a hole, PROT_NONE, a R/O entry
  // for FOLL_WRITE); 5.8's forced COW break goes through the slow path in COW mappings
  const fastOk = fast && !(k.strategy.gupBreaksCow && !(flags & FOLL_WRITE));
  if (fastOk) {
    pfns = k.core.gupFast(p.mm, start, Math.min(nr, k.core.layout.scratchBytes >>> 2), flags).pfns;
    k.stats.inc(Stat.gupFastPages, pfns.length);
  }
  if (flags & FOLL_PIN) k.ops.mmSetFlags(p.mm, C.MMF_HAS_PINNED);
  let error: CowsimError | null = null;
  let checked: Vma | null = null;
  for (let i = pfns.length; i < nr; i++) {
    const a = start + i * PAGE_SIZE;
    try {
      if (checked === null || a >= checked.end) {
        // check_vma_flags(), when the walk reaches a VMA
        const vma = p.vmas.lookup(a);
        if (!vma || !vmaAllows(vma, flags)) {
          throw new CowsimError("EFAULT", `GUP: pid ${p.pid} may not ${flags & FOLL_WRITE ? "write" : "read"} ${hex(a)}${vma ? ` (${vma.describe()})` : " (not mapped)"}`);
        }
        checked = vma;
      }
      pfns.push(slowPage(k, p, a, flags));
      k.stats.inc(Stat.gupSlowPages);
    } catch (e) {
      if (!(e instanceof CowsimError)) {
        k.core.gupPut(pfns, flags);
        throw e;
      }
      error = e;
      break;
    }
  }
  if (error && pfns.length === 0) throw error;
  return { pfns, error };
}

/**
 * One page of the slow path: follow_page_pte() until it can take the page, faulting it in
 * (faultin_page()) as often as needed.
 */
function slowPage(k: MmKernel, p: MmProcess, addr: number, flags: number): number {
  const ops = k.ops;
  const vma = p.vmas.lookup(addr)!;
  const write = (flags & FOLL_WRITE) !== 0;
  const pin = (flags & FOLL_PIN) !== 0;
  let cowBroken = false;
  for (let tries = 0; tries < 8; tries++) {
    const info = ops.wpFaultInfo(p.mm, addr);
    if (info === C.ACCESS_HUGE) {
      const pfn = follow_huge_pmd(k, p, vma, addr, flags, cowBroken);
      if (pfn !== null) return pfn;
      cowBroken ||= !write && k.strategy.gupBreaksCow;
      continue;
    }
    if (typeof info === "number") {
      // not present (none, swap …): fault it in as the access would
      faultIn(k, p, addr, write && (vma.flags & VM_WRITE) !== 0);
      if (write && !(vma.flags & VM_WRITE)) { do_wp_page(k, p, vma, addr, true); cowBroken = true; }
      continue;
    }
    const { pfn, kind } = info;
    const pteWrite = (info.pte & (1 << C._PAGE_BIT_RW)) !== 0;
    if (write && !pteWrite) {
      // can_follow_write_pte(): a FOLL_FORCE write follows a R/O PTE once COW is broken
      const exclusive = kind === "anon" && ops.PageAnonExclusive(pfn);
      if (!((flags & FOLL_FORCE) && !(vma.flags & VM_WRITE) && (cowBroken || (k.strategy.tracksAnonExclusive && exclusive)))) {
        if (vma.flags & VM_WRITE) faultIn(k, p, addr, true);
        else { do_wp_page(k, p, vma, addr, true); cowBroken = true; }
        continue;
      }
    }
    if (kind === "anon" && !pteWrite && !cowBroken && k.strategy.gupBreaksCow && vma.isCow) {
      // Linux 5.8: GUP of a COW page breaks COW, as a write fault would
      if (vma.flags & VM_WRITE) faultIn(k, p, addr, true); else do_wp_page(k, p, vma, addr, true);
      cowBroken = true;
      continue;
    }
    if (pin && !write && !pteWrite) {
      const mustUnshare = k.strategy.gupMustUnshare({
        anon: kind === "anon", exclusive: kind === "anon" && ops.PageAnonExclusive(pfn),
        ksm: kind === "anon" && ops.folioTestKsm(ops.pageFolio(pfn)), write, pin,
        longterm: (flags & FOLL_LONGTERM) !== 0, cowMapping: vma.isCow,
      });
      if (mustUnshare) {
        // FAULT_FLAG_UNSHARE: make the page exclusive (copying it if it may be shared)
        do_wp_page(k, p, vma, addr, true);
        continue;
      }
    }
    if (!ops.tryGrabFolio(ops.pageFolio(pfn), 1, flags)) continue;
    return pfn;
  }
  throw new Error(`cowsim: GUP of ${hex(addr)} in pid ${p.pid} did not settle`);
}

const PMD_RW = 2 ** C._PAGE_BIT_RW;

/**
 * follow_huge_pmd(): a PMD leaf maps `addr`. The page is taken — try_grab_folio() of its THP
 * for one page: one reference, and for FOLL_PIN one count in _pincount — unless a fault must
 * come first: a write to a read-only PMD (do_huge_pmd_wp_page(), which may split it), a R/O
 * pin the strategy wants unshared (gup_must_unshare() → FAULT_FLAG_UNSHARE), or 5.8's COW
 * break. Returns the pfn, or null when it faulted and the caller looks again.
 */
function follow_huge_pmd(k: MmKernel, p: MmProcess, vma: Vma, addr: number, flags: number, cowBroken: boolean): number | null {
  const ops = k.ops;
  const info = ops.hugePmdFaultInfo(p.mm, addr);
  if (typeof info === "number") return null;
  const write = (flags & FOLL_WRITE) !== 0;
  const pmdWrite = (info.pte & PMD_RW) !== 0;
  const anon = info.kind === "anon";
  const exclusive = anon && ops.PageAnonExclusive(info.folio);
  if (write && !pmdWrite) {
    // can_follow_write_pmd(): FOLL_FORCE through a R/O private mapping once the THP is exclusive
    if (!((flags & FOLL_FORCE) && !(vma.flags & VM_WRITE) && k.strategy.tracksAnonExclusive && exclusive)) {
      if (vma.flags & VM_WRITE) faultIn(k, p, addr, true);
      else do_huge_pmd_wp_page(k, p, vma, addr, true);
      return null;
    }
  }
  if (anon && !pmdWrite && !cowBroken && !write && k.strategy.gupBreaksCow && vma.isCow) {
    if (vma.flags & VM_WRITE) faultIn(k, p, addr, true); else do_huge_pmd_wp_page(k, p, vma, addr, true);
    return null;
  }
  if ((flags & FOLL_PIN) && !write && !pmdWrite && k.strategy.gupMustUnshare({
    anon, exclusive, ksm: false, write, pin: true, longterm: (flags & FOLL_LONGTERM) !== 0, cowMapping: vma.isCow,
  })) {
    do_huge_pmd_wp_page(k, p, vma, addr, true);
    return null;
  }
  if (!ops.tryGrabFolio(info.folio, 1, flags)) return null;
  return info.folio + Math.floor(pmdOffset(addr) / PAGE_SIZE);
}

/**
 * One page of GUP-fast (gup_fast_pte_range()) stopped between its halves, so that a scenario
 * can put the clearing side of seed 000 II and III (try_to_migrate_one(), try_to_unmap_one(),
 * fork) between its grab (B3) and its re-check (B4, B5).
 */
export class GupFastInFlight {
  /** Why it backed off (GUPF_*), or GUPF_OK while it holds the page or has taken it. */
  reason: number;
  ended = false;
  constructor(
    readonly pid: number,
    readonly addr: number,
    readonly flags: number,
    /** What the first half grabbed (null when it backed off). */
    readonly begun: GupFastBegun | null,
    reason: number,
    /**
     * Without 088b8aa537c2's barriers the re-check already ran, reading the PTE before the grab
     * was visible; the grab is still to land (end()) and nothing else can see it meanwhile.
     */
    readonly grabPending: boolean,
  ) {
    this.reason = reason;
  }
}

/**
 * gup_fast_pte_range()'s first half for the page at `addr`: B1 reads the PTE, B2 checks it
 * permits the access, B3 grabs the folio. With the strategy's GUP-fast barriers (088b8aa537c2:
 * smp_mb__after_atomic() after the grab, and the clearing side's barrier before
 * folio_maybe_dma_pinned()) the grab is visible to everyone from here on. Without them a weakly
 * ordered CPU may let the re-read of B4 pass the grab, and the clearing side's pin check pass its
 * PTE clear: the store-buffering outcome both sides miss each other in. That outcome is the one
 * modelled: B4 and B5 run now, and the grab becomes visible only at gup_fast_end().
 * mm_set_has_pinned_flag() comes first, as in gup_fast_fallback().
 */
export function gup_fast_begin(k: MmKernel, p: MmProcess, addr: number, flags: number): GupFastInFlight {
  checkGupArgs(addr, 1, flags);
  if (flags & FOLL_PIN) k.ops.mmSetFlags(p.mm, C.MMF_HAS_PINNED);
  const got = k.core.gupFastPteBegin(p.mm, addr, flags);
  if (!("pfn" in got)) return new GupFastInFlight(p.pid, addr, flags, null, got.reason, false);
  if (k.strategy.gupFastBarriers ?? true) {
    const g = new GupFastInFlight(p.pid, addr, flags, got, C.GUPF_OK, false);
    k.pins.inFlight.add(g);
    return g;
  }
  const reason = k.core.gupFastPteFinish(got);
  if (reason !== C.GUPF_OK) return new GupFastInFlight(p.pid, addr, flags, null, reason, false);
  k.core.gupPut([got.pfn], flags);
  return new GupFastInFlight(p.pid, addr, flags, got, C.GUPF_OK, true);
}

/**
 * gup_fast_pte_range()'s second half: B4 re-reads the PMD and the PTE and backs off if either
 * changed, B5 backs off from a R/O pin of a page no longer PageAnonExclusive. Without the
 * barriers (see gup_fast_begin()) only the grab lands now, unchecked — try_grab_folio_fast()
 * still refuses a folio being freed. Returns the page taken, or null with `reason` set. EINVAL
 * when it already ended; ESRCH, the grab given back, when its process exited meanwhile.
 */
export function gup_fast_end(k: MmKernel, g: GupFastInFlight): number | null {
  if (g.ended) throw new CowsimError("EINVAL", `GUP-fast of ${hex(g.addr)} in pid ${g.pid}: already ended`);
  g.ended = true;
  const b = g.begun;
  if (b === null) return null;
  k.pins.inFlight.delete(g);
  if (!k.processes.has(g.pid)) {
    // GUP-fast runs as the process itself (current->mm), which cannot exit halfway through it:
    // a caller that let it has only the grab to give back
    if (!g.grabPending) k.core.gupPut([b.pfn], g.flags);
    throw new CowsimError("ESRCH", `GUP-fast of ${hex(g.addr)}: pid ${g.pid} exited before it ended`);
  }
  if (g.grabPending) {
    if (!k.ops.tryGrabFolio(k.ops.pageFolio(b.pfn), 1, g.flags)) g.reason = C.GUPF_GRAB_FAILED;
  } else {
    g.reason = k.core.gupFastPteFinish(b);
  }
  if (g.reason !== C.GUPF_OK) return null;
  k.stats.inc(Stat.gupFastPages);
  return b.pfn;
}
