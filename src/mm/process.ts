/**
 * A simulated process of the kernel layer: an address space and the syscalls that shape it,
 * plus the CPU's loads and stores. Every public method is one step, validates its arguments,
 * and on failure throws a CowsimError with an errno name, leaving what the error contract says.
 * (The facade's Process adds the calls that make GUP users.)
 * @packageDocumentation
 */
import { newUserfaultfd, userfaultfd_unmap_prep, userfaultfd_unmap_complete, type UserfaultfdCtx } from "./userfaultfd.js";
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel, Releasable } from "./kernel.js";
import { Stat } from "./stats.js";
import { VmaList, VM_SHARED, hex } from "./vma.js";
import { access, accessList, accessRange, ACCESS_BLOCKED, takeBlockedQueue } from "./memory.js";
import { do_mmap, do_munmap, exit_mmap } from "./mmap.js";
import { type ShmemFile, MemfdDescriptor, memfd_create, memfd_close, shmem_setattr_size, shmem_fallocate } from "./shmem.js";
import { do_mprotect } from "./mprotect.js";
import { clear_soft_dirty, pagemap_entries } from "./task_mmu.js";
import { do_mremap } from "./mremap.js";
import { migrate_pages, type Migration, type MigrateOptions } from "./migrate.js";
import { split_huge_page, type HugePageSplit, type SplitHugePageOptions } from "./split_huge_page.js";
import { do_madvise } from "./madvise.js";
import { dup_mmap } from "./fork.js";
import { PAGE_SIZE } from "./uapi.js";
import { thp_vma_allowable_orders, THP_ORDERS_ALL_ANON, TVA_SMAPS, TVA_ENFORCE_SYSFS } from "./huge_memory.js";
import { FaultBlocked, wouldDeadlock, type WaitQueue } from "./wait.js";
import { pageOffset } from "./align.js";

/** The step codes of a load and a store (a step that is a code and two numbers, made on every access). */
export const CALL_READ = 1;
export const CALL_WRITE = 2;

/** One VMA of /proc/pid/smaps. @public */
export interface SmapsEntry extends MapsEntry {
  /** THPeligible: thp_vma_allowable_orders() allows some order here. */
  readonly thpEligible: boolean;
  /** AnonHugePages: bytes of anonymous THPs this VMA maps by PMD (the huge zero page is not anonymous). */
  readonly anonHugePages: number;
}

/** Where an access stands: done, waiting for a wait queue to be woken, or failed. @public */
export type AccessState = "done" | "blocked" | "failed";

/**
 * A load or store that may wait (Process.access()): a fault that must wait for something
 * another actor holds — a locked folio today; a page under migration or a userfaultfd handler
 * are the same — leaves it `blocked` on that wait queue, having changed nothing (the kernel's
 * VM_FAULT_RETRY: the fault gave up its locks and will be taken again). Once the queue is woken,
 * resume() takes the fault again — as the scheduler would run the woken task, but when the
 * caller says, so runs stay deterministic.
 * @public
 */
export class Access {
  private _state: AccessState = "blocked";
  private _value: number | undefined;
  private _error: CowsimError | undefined;
  private queue: WaitQueue | null = null;
  private seen = 0;

  /** @internal */
  constructor(
    private readonly process: MmProcess,
    /** A store (true) or a load. */
    readonly write: boolean,
    readonly address: number,
    /** What a store stores. */
    readonly stored: number,
  ) {}

  get pid(): number { return this.process.pid; }
  get state(): AccessState { return this._state; }
  /** What a load read, or a store stored, once done. */
  get value(): number | undefined { return this._value; }
  /** The error a resumed access failed with (the range was unmapped meanwhile, the process exited …). */
  get error(): CowsimError | undefined { return this._error; }
  /** The wait queue a blocked access waits on. */
  get waitingOn(): WaitQueue | null { return this.queue; }
  /** Whether the queue was woken since the access blocked: resume() will take the fault again. */
  get woken(): boolean { return this.queue !== null && this.queue.wakeups !== this.seen; }

  /**
   * Takes the fault again if the queue was woken (an access not yet woken stays blocked and
   * nothing happens, as a task that is not runnable does not run). Returns this access; a
   * failure is thrown and kept in `error`.
   */
  resume(): this {
    if (this._state !== "blocked") throw new CowsimError("EINVAL", `resume: the access of pid ${this.pid} at ${hex(this.address)} is ${this._state}, not blocked`);
    if (!this.woken) return this;
    const q = this.queue!;
    q.dequeue();
    this.queue = null;
    const k = this.process.kernel;
    if (k.trace.points.fault_resume.listening) k.trace.points.fault_resume.emit({ pid: this.pid, address: this.address, write: this.write, what: q.what });
    return this.run();
  }

  /** One attempt. @internal */
  run(): this {
    const p = this.process;
    const k = p.kernel;
    const code = this.write ? CALL_WRITE : CALL_READ;
    try {
      p.assertLive();
      const step = k.beginAccess(p.pid, code, this.address, this.stored);
      try {
        const v = access(k, p, this.address, this.write, this.stored);
        // a userfault returns its queue rather than throw (the common wait, kept cheap)
        if (v === ACCESS_BLOCKED) this.block(takeBlockedQueue());
        else {
          this._value = v;
          this._state = "done";
        }
      } catch (e) {
        if (!(e instanceof FaultBlocked)) throw e;
        this.block(e.queue);
      }
      if (step) k.endAccess(code, this.address, this.stored);
    } catch (e) {
      if (e instanceof CowsimError) {
        this._state = "failed";
        this._error = e;
      }
      throw e;
    }
    return this;
  }

  /** prepare_to_wait(): the access sleeps on `q` until it is woken. */
  private block(q: WaitQueue): void {
    const p = this.process;
    const k = p.kernel;
    this.queue = q;
    this.seen = q.enqueue();
    k.stats.inc(Stat.faultWaits);
    if (k.trace.points.fault_wait.listening) {
      k.trace.points.fault_wait.emit({ pid: p.pid, address: this.address, write: this.write, reason: q.reason, what: q.what });
    }
  }
}

/** One line of /proc/pid/maps. @public */
export interface MapsEntry {
  readonly start: number;
  readonly end: number;
  readonly perms: string;
  readonly flags: number;
  readonly pgoff: number;
  readonly anonVma: number | null;
  readonly shared: boolean;
}

/** A process of the kernel layer. */
export class MmProcess {
  readonly kernel: MmKernel;
  readonly pid: number;
  /** The core's mm_struct id. */
  readonly mm: number;
  readonly ppid: number;
  readonly vmas = new VmaList();
  /** GUP users this process created (closed when it exits, as its files would be). */
  readonly users = new Set<Releasable>();
  alive = true;

  /** @internal */
  constructor(kernel: MmKernel, pid: number, mm: number, ppid: number) {
    this.kernel = kernel;
    this.pid = pid;
    this.mm = mm;
    this.ppid = ppid;
  }

  protected live(): void {
    if (!this.alive) throw new CowsimError("ESRCH", `pid ${this.pid} has exited`);
  }

  /** live(), for an access resumed later. @internal */
  assertLive(): void {
    this.live();
  }

  /**
   * mmap(): anonymous memory, MAP_PRIVATE or MAP_SHARED, with an address hint, MAP_FIXED,
   * MAP_FIXED_NOREPLACE or MAP_POPULATE. Returns the address.
   */
  mmap(addr: number | null, length: number, prot: number, flags: number, file: ShmemFile | null = null, offset = 0): number {
    return this.kernel.syscall(this.pid, () => `mmap(${addr === null ? "NULL" : hex(addr)}, ${hex(length)}, ${prot}, 0x${flags.toString(16)}${file ? `, memfd ${file.id}, ${hex(offset)}` : ""})`,
      () => { this.live(); return do_mmap(this.kernel, this, addr, length, prot, flags, file, offset); });
  }

  /**
   * memfd_create(): a shmem file of size 0, open, owned by this process (closed when it exits,
   * as its descriptor would be). Pass it to mmap() (without MAP_ANONYMOUS), ftruncate(),
   * fallocate(), close().
   */
  memfdCreate(name: string, flags = 0): ShmemFile {
    return this.kernel.syscall(this.pid, () => `memfd_create(${JSON.stringify(name)}, 0x${(flags >>> 0).toString(16)})`, () => {
      this.live();
      const f = memfd_create(this.kernel, name, flags);
      this.users.add(new MemfdDescriptor(this.kernel, f));
      return f;
    });
  }

  /** ftruncate() of a memfd: its size becomes `length` bytes (shrinking unmaps and frees what lies beyond). */
  ftruncate(file: ShmemFile, length: number): void {
    this.kernel.syscall(this.pid, () => `ftruncate(memfd ${file.id}, ${length})`,
      () => { this.live(); shmem_setattr_size(this.kernel, file, length); });
  }

  /** fallocate() of a memfd: FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE frees [offset, offset + length). */
  fallocate(file: ShmemFile, mode: number, offset: number, length: number): void {
    this.kernel.syscall(this.pid, () => `fallocate(memfd ${file.id}, ${mode}, ${offset}, ${length})`,
      () => { this.live(); shmem_fallocate(this.kernel, file, mode, offset, length); });
  }

  /** close() of a memfd: mappings keep the file; the last reference gone, it is freed. */
  close(file: ShmemFile): void {
    this.kernel.syscall(this.pid, () => `close(memfd ${file.id})`, () => { this.live(); memfd_close(this.kernel, file); });
  }

  munmap(addr: number, length: number): void {
    this.kernel.syscall(this.pid, () => `munmap(${hex(addr)}, ${hex(length)})`,
      () => {
        this.live();
        // __vm_munmap(): userfaultfd_unmap_prep() before, userfaultfd_unmap_complete() after
        const uffds = Number.isFinite(addr) && Number.isFinite(length) ? userfaultfd_unmap_prep(this.vmas.overlapping(addr, addr + length)) : [];
        do_munmap(this.kernel, this, addr, length);
        userfaultfd_unmap_complete(uffds, addr, addr + Math.ceil(length / PAGE_SIZE) * PAGE_SIZE);
      });
  }

  mprotect(addr: number, length: number, prot: number): void {
    this.kernel.syscall(this.pid, () => `mprotect(${hex(addr)}, ${hex(length)}, ${prot})`,
      () => { this.live(); do_mprotect(this.kernel, this, addr, length, prot); });
  }

  /** mremap(): returns the (possibly new) address. */
  mremap(oldAddr: number, oldLength: number, newLength: number, flags = 0, newAddr?: number): number {
    return this.kernel.syscall(this.pid, () => `mremap(${hex(oldAddr)}, ${hex(oldLength)}, ${hex(newLength)}, ${flags}${newAddr !== undefined ? ", " + hex(newAddr) : ""})`,
      () => { this.live(); return do_mremap(this.kernel, this, oldAddr, oldLength, newLength, flags, newAddr); });
  }

  madvise(addr: number, length: number, advice: number): void {
    this.kernel.syscall(this.pid, () => `madvise(${hex(addr)}, ${hex(length)}, ${advice})`,
      () => { this.live(); do_madvise(this.kernel, this, addr, length, advice); });
  }

  /**
   * userfaultfd(2): a userfaultfd for this address space (UFFDIO_API it next). `flags`:
   * O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY.
   */
  userfaultfd(flags = 0): UserfaultfdCtx {
    return this.kernel.syscall(this.pid, `userfaultfd(${flags})`, () => { this.live(); return newUserfaultfd(this.kernel, this, flags); });
  }

  /** fork(): returns the child. */
  fork(): MmProcess {
    return this.kernel.syscall(this.pid, "fork()", () => { this.live(); return dup_mmap(this.kernel, this); });
  }

  /** exit(): the address space is torn down; its frames go back unless something else holds them. */
  exit(): void {
    this.kernel.syscall(this.pid, "exit()", () => {
      this.live();
      for (const u of [...this.users]) u.release();
      exit_mmap(this.kernel, this);
      this.alive = false;
      this.kernel.processes.delete(this.pid);
      this.kernel.stats.inc(Stat.exits);
      if (this.kernel.trace.points.exit_mmap.listening) this.kernel.trace.points.exit_mmap.emit({ pid: this.pid });
    });
  }

  /**
   * Reads the value of the page at `addr` (a page's contents are one 64-bit tag; see the README).
   * Faults as the CPU would; SIGSEGV becomes EFAULT.
   */
  read(addr: number): number {
    checkAddr(addr);
    this.live();
    const k = this.kernel;
    const step = k.beginAccess(this.pid, CALL_READ, addr, 0);
    const v = syncAccess(k, this, addr, false, 0);
    if (step) k.endAccess(CALL_READ, addr, 0);
    return v;
  }

  /** Writes `value` (an integer 0 ≤ value < 2^53) as the new contents of the page at `addr`. */
  write(addr: number, value: number): void {
    checkAddr(addr);
    if (!isPageValue(value)) {
      throw new CowsimError("EINVAL", `write: value ${value} is not an integer from 0 to 2^53 - 1`);
    }
    this.live();
    const k = this.kernel;
    const step = k.beginAccess(this.pid, CALL_WRITE, addr, value);
    syncAccess(k, this, addr, true, value);
    if (step) k.endAccess(CALL_WRITE, addr, value);
  }

  /**
   * Stores to `pages` pages from `addr`, `stride` pages apart (default 1): page i gets `value` +
   * i·`step` (default 0). The same as the loop of write() calls — every fault, counter, tracepoint
   * and error, at the page where the loop would meet it, with the pages before it written — in
   * fewer calls: the faults that need no kernel decision are taken in the core, a run at a time.
   */
  writeRange(addr: number, pages: number, value: number, step = 0, stride = 1): void {
    this.range("writeRange", addr, pages, stride, true, value, step);
  }

  /** Loads from `pages` pages from `addr`, `stride` pages apart: the loop of read() calls, batched as writeRange() is; the values are not kept. */
  touchRange(addr: number, pages: number, stride = 1): void {
    this.range("touchRange", addr, pages, stride, false, 0, 0);
  }

  /**
   * A load from (`write` false) or a store to each address of `addrs`, in order, a store of
   * `values[i]` (or 0): the loop of read() / write() calls, with runs of evenly spaced addresses
   * (and values) batched as writeRange() is.
   */
  accessList(addrs: readonly number[], write: boolean, values?: readonly number[]): void {
    if (values !== undefined && values.length !== addrs.length) {
      throw new CowsimError("EINVAL", `accessList: ${values.length} values for ${addrs.length} addresses`);
    }
    const k = this.kernel;
    // the entries a single access would take as they are; the first it would refuse is left to
    // it, after the ones before it, to fail as the loop would
    let ok = 0;
    if (!k.accessStepsObserved) {
      while (ok < addrs.length && isUserAddr(addrs[ok]!) && (!write || isPageValue(values?.[ok] ?? 0))) ok++;
    }
    if (ok > 0) {
      this.live();
      // each access its own step for a subscriber that takes them after the call (the journal)
      const stepCode = k.accessStepsDelivered ? (write ? CALL_WRITE : CALL_READ) : 0;
      accessList(k, this, addrs, values, 0, ok, write, (a, v, first) => {
        if (stepCode) k.beginAccess(this.pid, stepCode, a, v);
        syncAccess(k, this, a, write, v, first);
      }, stepCode);
    }
    for (let i = ok; i < addrs.length; i++) {
      if (write) this.write(addrs[i]!, values?.[i] ?? 0);
      else this.read(addrs[i]!);
    }
  }

  /** writeRange(), touchRange() and accessList()'s runs: checked as each single access would be, then batched. */
  private range(call: string, addr: number, pages: number, stride: number, write: boolean, value: number, step: number): void {
    if (!Number.isSafeInteger(pages) || pages < 0) throw new CowsimError("EINVAL", `${call}: ${pages} pages`);
    if (!Number.isSafeInteger(stride) || stride < 1 || stride >= 2 ** 20) throw new CowsimError("EINVAL", `${call}: stride ${stride} pages`);
    if (!Number.isSafeInteger(step) || step < 0 || step >= 2 ** 32) throw new CowsimError("EINVAL", `${call}: value step ${step}`);
    if (pages === 0) return;
    const k = this.kernel;
    // a step that each access reports as it happens (an immediate step subscriber, invariants
    // after each), a page not page-aligned, or a value out of range part way: the single
    // accesses, which fail where they would
    const last = addr + (pages - 1) * stride * PAGE_SIZE;
    const lastValue = value + (pages - 1) * step;
    if (k.accessStepsObserved || pageOffset(addr) !== 0 ||
        !Number.isSafeInteger(addr) || addr < 0 || last >= 2 ** 48 || (write && !(Number.isSafeInteger(lastValue) && value >= 0))) {
      for (let i = 0; i < pages; i++) {
        const a = addr + i * stride * PAGE_SIZE;
        if (write) this.write(a, value + i * step);
        else this.read(a);
      }
      return;
    }
    this.live();
    const stepCode = k.accessStepsDelivered ? (write ? CALL_WRITE : CALL_READ) : 0;
    accessRange(k, this, addr, pages, stride, write, value, step, (a, v, first, fast) => {
      if (stepCode) k.beginAccess(this.pid, stepCode, a, v);
      syncAccess(k, this, a, write, v, first, fast);
    }, stepCode);
  }

  /**
   * A load (`write` false) or a store of `value` that may wait: read() and write() fail with
   * EDEADLK where a fault would wait for something only another actor can give up (nothing else
   * runs while they do); this returns the {@link Access}, done or blocked, to resume() once the
   * holder has let go (Kernel.unlockFolio()).
   */
  access(write: boolean, addr: number, value = 0): Access {
    checkAddr(addr);
    if (write && (!Number.isSafeInteger(value) || value < 0)) {
      throw new CowsimError("EINVAL", `access: value ${value} is not an integer from 0 to 2^53 - 1`);
    }
    this.live();
    return new Access(this, write, addr, write ? value : 0).run();
  }

  /**
   * move_pages(2) of the pages of [addr, addr + length) to new frames (migrate_pages()): the
   * returned {@link Migration} has each page's status. With `phase: "start"` it stops with the
   * pages under migration entries, until its finish(). EINVAL for a misaligned or empty range.
   */
  migratePages(addr: number, length: number, opts: MigrateOptions = {}): Migration {
    return this.kernel.syscall(this.pid, () => `move_pages(${hex(addr)}, ${hex(length)}${opts.phase === "start" ? ", start" : ""})`,
      () => { this.live(); return migrate_pages(this.kernel, this, addr, length, opts); });
  }

  /**
   * split_huge_page() of the anonymous large folio mapped at `addr`, as a kernel caller holding
   * its lock and a reference makes it (the debugfs split_huge_pages interface for one page):
   * the returned {@link HugePageSplit} has its status. With `phase: "start"` it stops after
   * can_split_folio(), before unmap_folio(), until its finish(). EFAULT, EINVAL or EBUSY (the
   * folio is locked) change nothing.
   */
  splitHugePage(addr: number, opts: SplitHugePageOptions = {}): HugePageSplit {
    return this.kernel.syscall(this.pid, () => `split_huge_page(${hex(addr)}${opts.phase === "start" ? ", start" : ""})`,
      () => { this.live(); return split_huge_page(this.kernel, this, addr, opts); });
  }

  /** echo 4 > /proc/pid/clear_refs: start soft-dirty tracking over (write-protects every page). */
  clearSoftDirty(): void {
    this.kernel.syscall(this.pid, "clear_refs(4)", () => { this.live(); clear_soft_dirty(this.kernel, this); });
  }

  /** The VMAs, as /proc/pid/maps would list them. */
  maps(): MapsEntry[] {
    return this.vmas.list.map((v) => ({
      start: v.start, end: v.end, perms: v.describe().split(" ")[1]!, flags: v.flags, pgoff: v.pgoff,
      anonVma: v.anonVma?.id ?? null, shared: (v.flags & VM_SHARED) !== 0,
    }));
  }

  /** /proc/pid/smaps, per VMA: the maps line and whether THP may back it (THPeligible). */
  smaps(): SmapsEntry[] {
    const k = this.kernel;
    return this.vmas.list.map((v) => ({
      start: v.start, end: v.end, perms: v.describe().split(" ")[1]!, flags: v.flags, pgoff: v.pgoff,
      anonVma: v.anonVma?.id ?? null, shared: (v.flags & VM_SHARED) !== 0,
      thpEligible: thp_vma_allowable_orders(k.thp, v, v.flags, TVA_SMAPS | TVA_ENFORCE_SYSFS, THP_ORDERS_ALL_ANON) !== 0,
      anonHugePages: anonHugePages(k, this.mm, v.start, v.end),
    }));
  }

  /**
   * /proc/pid/pagemap: one u64 per page from `addr` (page-aligned), as Linux 6.12 formats them
   * with PFNs shown (PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_UFFD_WP, PM_SOFT_DIRTY
   * and the frame). A debugging view; no fault is taken.
   */
  pagemap(addr: number, pages: number): bigint[] {
    return pagemap_entries(this.kernel, this, addr, pages);
  }

  /**
   * Whether a PMD leaf (a PMD-mapped THP, or the huge zero page) maps the 2 MiB around `addr`
   * (pmd_trans_huge(); a debugging view, no fault is taken).
   */
  pmdMapped(addr: number): boolean {
    checkAddr(addr);
    return this.kernel.ops.hugePmdAt(this.mm, addr) === 1;
  }

  /** The frame mapped at `addr`, or null (a debugging view; no fault is taken). */
  pfnAt(addr: number): number | null {
    checkAddr(addr);
    return this.kernel.ops.translateOne(this.mm, addr);
  }

  /**
   * The folio behind `addr`: the one mapped there, or — where a swap entry is — the swap-cache
   * folio of its slot; null when there is none (nothing mapped, the zero page, a slot only on
   * the swap device). A debugging view; no fault is taken.
   */
  folioAt(addr: number): number | null {
    checkAddr(addr);
    const ops = this.kernel.ops;
    const pfn = ops.translateOne(this.mm, addr);
    if (pfn !== null) return pfn === 0 ? null : ops.pageFolio(pfn);
    const entry = ops.swapPteSlot(this.mm, addr);
    return entry === null ? null : ops.swapCachePfn(entry.slot);
  }

  /** Pages of the address space by state, from the page tables (like /proc/pid/smaps_rollup). */
  rss(): { anon: number; shmem: number; swap: number } {
    const ops = this.kernel.ops;
    return {
      anon: ops.getMmCounter(this.mm, C.MM_ANONPAGES),
      shmem: ops.getMmCounter(this.mm, C.MM_SHMEMPAGES),
      swap: ops.getMmCounter(this.mm, C.MM_SWAPENTS),
    };
  }
}

/** A user address, or EFAULT. @internal */
/** A user address: an integer in [0, 2^48). */
const isUserAddr = (addr: number) => Number.isSafeInteger(addr) && addr >= 0 && addr < 2 ** 48;
/** What a page can hold: an integer from 0 to 2^53 - 1. */
const isPageValue = (v: number) => Number.isSafeInteger(v) && v >= 0;

export function checkAddr(addr: number): void {
  if (!isUserAddr(addr)) {
    throw new CowsimError("EFAULT", `address ${addr} is not a user address`);
  }
}

export { PAGE_SIZE };

/** An access that cannot wait: a fault that would is EDEADLK, having changed nothing. */
function syncAccess(k: MmKernel, p: MmProcess, addr: number, write: boolean, value: number, first?: number, fast?: number): number {
  try {
    const v = access(k, p, addr, write, value, first, fast);
    if (v === ACCESS_BLOCKED) throw wouldDeadlock(takeBlockedQueue(), p.pid, addr);
    return v;
  } catch (e) {
    if (e instanceof FaultBlocked) throw wouldDeadlock(e.queue, p.pid, addr);
    throw e;
  }
}

/** smaps_pmd_entry()'s anonymous_thp: the pages of [start, end) PMD leaves map, of anon THPs. */
function anonHugePages(k: MmKernel, mm: number, start: number, end: number): number {
  let pages = 0;
  for (const r of k.core.pagemap(mm, start, end)) {
    if ((r.kind & (C.PAGEMAP_HUGE | 0xff)) !== (C.PAGEMAP_HUGE | C.PTE_KIND_PRESENT)) continue;
    if (k.ops.folioTestAnon(k.ops.pageFolio(r.pfn))) pages++;
  }
  return pages * PAGE_SIZE;
}
