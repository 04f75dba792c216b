/**
 * The users of GUP: objects that hold references to a process's pages and read or write them
 * on their own schedule — a pipe after vmsplice(), io_uring fixed buffers, O_DIRECT I/O, an
 * RDMA memory region, and explicit pins. Each takes its references through get_user_pages()
 * with the flags the real kernel uses, states its contract (the `gup` tracepoint the oracle holds
 * it to), and releases its references exactly once.
 * @packageDocumentation
 */
import { C, GUP_FAST_REASONS } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "../mm/kernel.js";
import type { MmProcess } from "../mm/process.js";
import {
  get_user_pages, gup_fast_begin, gup_fast_end, type GupFastInFlight, type GupResult, type Pin, type PinContract,
  FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM,
} from "../mm/gup.js";
import { rmap_walk_anon } from "../mm/rmap.js";
import { hex } from "../mm/vma.js";
import { PAGE_SIZE } from "../mm/uapi.js";
import { pageOffset } from "../mm/align.js";

/**
 * What a user does when GUP takes fewer pages than it asked for (the pages before one it could
 * not take): keep them and work on fewer pages — a short vmsplice(), a short O_DIRECT request,
 * pin_user_pages()' count — or let them go and fail, with GUP's error (ib_umem_get(), which asks
 * again for the rest) or with EFAULT (io_pin_pages()).
 */
export type PartialGup = "keep" | "fail" | "efault";

/** What every user shares: its pin, its lifetime, its access to the pinned pages. */
export abstract class GupUser {
  protected readonly k: MmKernel;
  readonly pin: Pin;

  protected constructor(k: MmKernel, p: MmProcess, call: string, addr: number, length: number, flags: number,
    owner: string, contract: PinContract, partial: PartialGup, fast = true, already?: GupResult) {
    this.k = k;
    if (!Number.isSafeInteger(length) || length <= 0) throw new CowsimError("EINVAL", `${call}: length ${length}`);
    const offset = Number.isInteger(addr) ? pageOffset(addr) : addr % PAGE_SIZE;
    const pages = Math.ceil((offset + length) / PAGE_SIZE);
    const start = addr - offset;
    const { pfns, error } = already ?? get_user_pages(k, p, start, pages, flags, fast);
    if (error && partial !== "keep") {
      k.core.gupPut(pfns, flags);
      if (partial === "fail") throw error;
      throw new CowsimError("EFAULT", `${call}: only ${pfns.length} of ${pages} pages could be pinned (${error.message})`);
    }
    // a short result works on the pages it got
    const taken = pfns.length;
    this.pin = k.pins.add(owner, p.pid, flags, start, pfns, contract);
    if (k.trace.points.gup.listening) {
      // where the pages' values live for their owner: private pages by address, shmem pages
      // in their object
      let objId: number[] | null = null, index: number[] | null = null;
      const end = start + taken * PAGE_SIZE;
      for (let a = start; a < end;) {
        const vma = p.vmas.lookup(a)!;
        const upTo = Math.min(vma.end, end);
        if (vma.shmem) {
          objId ??= new Array<number>(taken).fill(0);
          index ??= new Array<number>(taken).fill(0);
          for (; a < upTo; a += PAGE_SIZE) { objId[(a - start) / PAGE_SIZE] = vma.shmem.id; index[(a - start) / PAGE_SIZE] = vma.index(a); }
        }
        a = upTo;
      }
      k.trace.points.gup.emit({ pid: p.pid, call, pin: this.pin, pages: { vpn0: start / PAGE_SIZE, objId, index } });
    }
    p.users.add(this);
  }

  get pages(): number {
    return this.pin.pfns.length;
  }

  protected page(i: number): number {
    if (this.pin.released) throw new CowsimError("EINVAL", `${this.pin.owner}: already released`);
    if (!Number.isInteger(i) || i < 0 || i >= this.pin.pfns.length) {
      throw new CowsimError("EINVAL", `${this.pin.owner}: page ${i} is outside its ${this.pin.pfns.length} pages`);
    }
    return this.pin.pfns[i]!;
  }

  /**
   * Where the owner still holds the pinned page: the addresses whose PTE maps it, or names its
   * swap slot while it sits in the swap cache. The page may have moved (mremap); the pin
   * follows the page, not the address. Empty when the owner no longer holds it.
   */
  protected holders(i: number): number[] {
    const k = this.k;
    const ops = k.ops;
    const p = k.processes.get(this.pin.pid);
    const pfn = this.pin.pfns[i]!;
    if (!p) return [];
    const at = this.pin.addresses[i]!;
    const mapped = (a: number) => ops.followPfn(p.mm, a);
    if (mapped(at) === pfn) return [at];
    const folio = ops.pageFolio(pfn);
    if (!ops.folioTestAnon(folio)) return [];
    const slot = ops.pageTestFlag(folio, C.PG_swapcache) ? ops.folioSwapSlot(folio) : -1;
    const index = (ops.folioIndex(folio) + (pfn - folio)) >>> 0;
    const out: number[] = [];
    for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), index)) {
      if (hit.mm !== p.mm) continue;
      if (mapped(hit.address) === pfn || (slot >= 0 && ops.swapPteSlot(p.mm, hit.address)?.slot === slot)) out.push(hit.address);
    }
    return out;
  }

  /** The device (or the pipe) reads page i through its reference. */
  protected deviceRead(i: number, reader: number): number {
    const pfn = this.page(i);
    const v = this.k.core.tag(pfn);
    if (this.k.trace.points.pin_read.listening) this.k.trace.points.pin_read.emit({ pid: this.pin.pid, pin: this.pin, i, value: v, pfn, reader });
    return v;
  }

  /** The device writes page i through its reference (DMA). */
  protected deviceWrite(i: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new CowsimError("EINVAL", `device write: value ${value}`);
    if (!(this.pin.flags & FOLL_WRITE)) throw new CowsimError("EACCES", `${this.pin.owner}: registered read-only`);
    const pfn = this.page(i);
    const watched = this.k.trace.points.pin_write.listening;
    const holders = watched ? this.holders(i) : [];
    this.k.core.setTag(pfn, value);
    if (watched) this.k.trace.points.pin_write.emit({ pid: this.pin.pid, pin: this.pin, i, value, pfn, holders });
  }

  /**
   * Runs a device access or a release as one step of the journal, made by `pid` (the owner by
   * default), so a finding there points at its own step and invariants are checked after it.
   */
  protected step<T>(call: () => string, fn: () => T, pid = this.pin.pid): T {
    return this.k.syscall(pid, call, fn);
  }

  /** unpin_user_pages() / put_page(): the references go, exactly once. */
  release(): void {
    this.step(() => `${this.pin.owner}: release`, () => this.doRelease());
  }

  private doRelease(): void {
    if (this.pin.released) throw new CowsimError("EINVAL", `${this.pin.owner}: its references were already released`);
    this.pin.released = true;
    this.k.pins.active.delete(this.pin.id);
    this.k.core.gupPut(this.pin.pfns, this.pin.flags);
    this.k.processes.get(this.pin.pid)?.users.delete(this);
    if (this.k.trace.points.unpin_user_pages.listening) this.k.trace.points.unpin_user_pages.emit({ pid: this.pin.pid, pin: this.pin });
  }
}

/**
 * A pipe holding pages given by vmsplice(): FOLL_GET references, read-only. Reading the pipe
 * reads the pages as they are then; it must show what the process saw when it spliced them
 * (or what it wrote there itself since) — never another process's later writes.
 */
export class Pipe extends GupUser {
  constructor(k: MmKernel, p: MmProcess, addr: number, length: number) {
    // iov_iter_get_pages2(): a short splice when not every page could be taken
    super(k, p, "vmsplice", addr, length, FOLL_GET, "pipe", "snapshot", "keep");
  }

  /** Reads every buffered page (consuming the pipe); `reader` is the reading process. */
  read(reader?: MmProcess): number[] {
    const pid = reader?.pid ?? this.pin.pid;
    return this.step(() => `read(pipe)`, () => {
      const out: number[] = [];
      for (let i = 0; i < this.pages; i++) out.push(this.deviceRead(i, pid));
      this.release();
      return out;
    }, pid);
  }
}

/**
 * io_uring fixed buffers (io_sqe_buffers_register()): FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM.
 * The device reads (IORING_OP_WRITE_FIXED) and writes (IORING_OP_READ_FIXED) the pages for as
 * long as they are registered, and must stay coherent with the process's mapping.
 */
export class FixedBuffers extends GupUser {
  constructor(k: MmKernel, p: MmProcess, addr: number, length: number) {
    // io_pin_pages(): a partial pin is undone and fails with EFAULT
    super(k, p, "io_uring_register", addr, length, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM, "io_uring", "coherent", "efault");
  }
  /** IORING_OP_WRITE_FIXED: the device reads page `i` of the buffer. */
  readFixed(i: number): number { return this.step(() => `IORING_OP_WRITE_FIXED(page ${i})`, () => this.deviceRead(i, -1)); }
  /** IORING_OP_READ_FIXED: the device writes `value` into page `i`. */
  writeFixed(i: number, value: number): void { this.step(() => `IORING_OP_READ_FIXED(page ${i}, ${value})`, () => this.deviceWrite(i, value)); }
  /** io_uring_unregister_buffers() */
  unregister(): void { this.release(); }
}

/**
 * An RDMA memory region (ib_umem_get()): FOLL_PIN | FOLL_LONGTERM, plus FOLL_WRITE when the
 * remote side may write. Remote reads and writes go straight to the pinned pages.
 */
export class MemoryRegion extends GupUser {
  constructor(k: MmKernel, p: MmProcess, addr: number, length: number, writable: boolean) {
    // ib_umem_get() asks again for the rest, which fails with the error: everything is released
    super(k, p, "ib_reg_mr", addr, length, FOLL_PIN | FOLL_LONGTERM | (writable ? FOLL_WRITE : 0), "rdma", "coherent", "fail");
  }
  remoteRead(i: number): number { return this.step(() => `RDMA READ(page ${i})`, () => this.deviceRead(i, -1)); }
  remoteWrite(i: number, value: number): void { this.step(() => `RDMA WRITE(page ${i}, ${value})`, () => this.deviceWrite(i, value)); }
  deregister(): void { this.release(); }
}

/**
 * One O_DIRECT request (iomap_dio_rw() → bio_iov_iter_get_pages()): short-term FOLL_PIN around
 * the I/O (FOLL_GET before 6.5) — with FOLL_WRITE for a read from the file (the device writes memory). Submitted
 * now, completed by complete(); between the two, the pages are the device's.
 */
export class DirectIo extends GupUser {
  readonly direction: "read" | "write";

  constructor(k: MmKernel, p: MmProcess, direction: "read" | "write", addr: number, length: number) {
    // until 6.5 bio_iov_iter_get_pages() took references (get_user_pages_fast()), not pins
    super(k, p, `o_direct_${direction}`, addr, length, (k.strategy.directIoPins ? FOLL_PIN : FOLL_GET) | (direction === "read" ? FOLL_WRITE : 0),
      "o_direct", direction === "read" ? "coherent" : "none", "keep");
    this.direction = direction;
  }

  /**
   * Completes the I/O: a read stores `values` (one per page) into memory, a write returns what
   * the device read. The pins go.
   */
  complete(values: readonly number[] = []): number[] {
    return this.step(() => `O_DIRECT ${this.direction} completes`, () => this.completeNow(values));
  }

  private completeNow(values: readonly number[]): number[] {
    const out: number[] = [];
    if (this.direction === "read") {
      if (values.length !== this.pages) throw new CowsimError("EINVAL", `O_DIRECT read of ${this.pages} pages needs ${this.pages} values`);
      values.forEach((v, i) => this.deviceWrite(i, v));
    } else {
      for (let i = 0; i < this.pages; i++) out.push(this.deviceRead(i, -1));
    }
    this.release();
    return out;
  }
}

/** Explicit references: get_user_pages() (FOLL_GET) or pin_user_pages() (FOLL_PIN), any flags. */
export class UserPages extends GupUser {
  constructor(k: MmKernel, p: MmProcess, addr: number, pages: number, flags: number, fast: boolean, taken?: GupResult) {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE) throw new CowsimError("EINVAL", `pin_user_pages: address ${addr} is not page-aligned`);
    if (!Number.isInteger(pages) || pages < 1) throw new CowsimError("EINVAL", `pin_user_pages: ${pages} pages`);
    super(k, p, flags & FOLL_PIN ? "pin_user_pages" : "get_user_pages", addr, pages * PAGE_SIZE, flags, "pin",
      (flags & FOLL_LONGTERM) ? "coherent" : "none", "keep", fast, taken);
  }
  get pfns(): readonly number[] { return this.pin.pfns; }
  read(i: number): number { return this.step(() => `pin read(page ${i})`, () => this.deviceRead(i, -1)); }
  write(i: number, value: number): void { this.step(() => `pin write(page ${i}, ${value})`, () => this.deviceWrite(i, value)); }
}

/**
 * pin_user_pages_fast() of one page with FOLL_FAST_ONLY, stopped between its grab and its
 * re-check (gup_fast_begin()), for races against the clearing side (seed 000 II, III). end()
 * runs the re-check: the page pinned as by pinUserPages(), or null when GUP-fast backed off
 * (`reason`), where pin_user_pages_fast() would go on to the slow path.
 */
export class GupFastRace {
  private readonly inFlight: GupFastInFlight;
  constructor(private readonly k: MmKernel, private readonly p: MmProcess, addr: number, flags: number) {
    this.inFlight = gup_fast_begin(k, p, addr, flags);
  }

  /** Why GUP-fast backed off (GUP_FAST_REASONS' short name: NOT_PRESENT, PTE_CHANGED …), or OK. */
  get reason(): string {
    const r = this.inFlight.reason;
    return GUP_FAST_REASONS.find((g) => g.value === r)?.short ?? String(r);
  }

  /** Whether end() already ran. */
  get ended(): boolean {
    return this.inFlight.ended;
  }

  /** B4 and B5 (see gup_fast_end()); EINVAL the second time. */
  end(): UserPages | null {
    const g = this.inFlight;
    return this.k.syscall(g.pid, () => `gup_fast end(${hex(g.addr)})`, () => {
      const pfn = gup_fast_end(this.k, g);
      if (pfn === null) return null;
      return new UserPages(this.k, this.p, g.addr, 1, g.flags, true, { pfns: [pfn], error: null });
    });
  }
}
