/**
 * A simulated process: an address space and the syscalls that shape it, plus the CPU's loads
 * and stores. Every public method is one step of the kernel's journal, validates its arguments,
 * and on failure throws a CowsimError with an errno name, having changed nothing.
 * @packageDocumentation
 */
import { C } from "../core/abi.generated.js";
import { CowsimError } from "../errno.js";
import type { Kernel } from "./kernel.js";
import { Stat } from "./stats.js";
import { VmaList, hex } from "./vma.js";
import { access } from "./memory.js";
import { do_mmap, do_munmap, exit_mmap } from "./mmap.js";
import { do_mprotect, clear_soft_dirty } from "./mprotect.js";
import { do_mremap } from "./mremap.js";
import { do_madvise } from "./madvise.js";
import { dup_mmap } from "./fork.js";
import { PAGE_SIZE } from "./uapi.js";
import { CALL_READ, CALL_WRITE } from "../oracle/journal.js";
import { GupUser, Pipe, FixedBuffers, MemoryRegion, DirectIo, UserPages } from "../users/users.js";

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

/** A process of a simulated kernel. @public */
export class Process {
  readonly kernel: Kernel;
  readonly pid: number;
  /** The core's mm_struct id. */
  readonly mm: number;
  readonly ppid: number;
  readonly vmas = new VmaList();
  /** GUP users this process created (closed when it exits, as its files would be). */
  readonly users = new Set<GupUser>();
  alive = true;

  /** @internal */
  constructor(kernel: Kernel, pid: number, mm: number, ppid: number) {
    this.kernel = kernel;
    this.pid = pid;
    this.mm = mm;
    this.ppid = ppid;
  }

  private live(): void {
    if (!this.alive) throw new CowsimError("ESRCH", `pid ${this.pid} has exited`);
  }

  /**
   * mmap(): anonymous memory, MAP_PRIVATE or MAP_SHARED, with an address hint, MAP_FIXED,
   * MAP_FIXED_NOREPLACE or MAP_POPULATE. Returns the address.
   */
  mmap(addr: number | null, length: number, prot: number, flags: number): number {
    return this.kernel.syscall(this.pid, () => `mmap(${addr === null ? "NULL" : hex(addr)}, ${hex(length)}, ${prot}, 0x${flags.toString(16)})`,
      () => { this.live(); return do_mmap(this.kernel, this, addr, length, prot, flags); });
  }

  munmap(addr: number, length: number): void {
    this.kernel.syscall(this.pid, () => `munmap(${hex(addr)}, ${hex(length)})`,
      () => { this.live(); do_munmap(this.kernel, this, addr, length); });
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

  /** fork(): returns the child. */
  fork(): Process {
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
      this.kernel.oracle?.onExit(this.pid);
      this.kernel.stats.inc(Stat.exits);
      this.kernel.journal?.add("exit_mmap", `pid ${this.pid} exits: every VMA unmapped`);
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
    const step = k.beginAccess(this, CALL_READ, addr, 0);
    const v = access(k, this, addr, false, 0);
    if (step) k.endAccess(CALL_READ, addr, 0);
    return v;
  }

  /** Writes `value` (an integer 0 ≤ value < 2^53) as the new contents of the page at `addr`. */
  write(addr: number, value: number): void {
    checkAddr(addr);
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new CowsimError("EINVAL", `write: value ${value} is not an integer from 0 to 2^53 - 1`);
    }
    this.live();
    const k = this.kernel;
    const step = k.beginAccess(this, CALL_WRITE, addr, value);
    access(k, this, addr, true, value);
    if (step) k.endAccess(CALL_WRITE, addr, value);
  }

  // ---- users of GUP ------------------------------------------------------------------------

  /** vmsplice() of [addr, addr + length) into a new pipe (FOLL_GET, read-only). */
  vmsplice(addr: number, length: number): Pipe {
    return this.kernel.syscall(this.pid, () => `vmsplice(${hex(addr)}, ${hex(length)})`,
      () => { this.live(); return new Pipe(this.kernel, this, addr, length); });
  }

  /** io_uring_register_buffers(): a fixed buffer (FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM). */
  ioUringRegisterBuffers(addr: number, length: number): FixedBuffers {
    return this.kernel.syscall(this.pid, () => `io_uring_register_buffers(${hex(addr)}, ${hex(length)})`,
      () => { this.live(); return new FixedBuffers(this.kernel, this, addr, length); });
  }

  /** ibv_reg_mr(): an RDMA memory region (FOLL_PIN | FOLL_LONGTERM, FOLL_WRITE if writable). */
  rdmaRegister(addr: number, length: number, writable: boolean): MemoryRegion {
    return this.kernel.syscall(this.pid, () => `ibv_reg_mr(${hex(addr)}, ${hex(length)}, ${writable ? "rw" : "ro"})`,
      () => { this.live(); return new MemoryRegion(this.kernel, this, addr, length, writable); });
  }

  /** Submits an O_DIRECT read (file → memory) or write (memory → file); complete() ends it. */
  directIo(direction: "read" | "write", addr: number, length: number): DirectIo {
    if (direction !== "read" && direction !== "write") throw new CowsimError("EINVAL", `O_DIRECT direction ${String(direction)}`);
    return this.kernel.syscall(this.pid, () => `o_direct_${direction}(${hex(addr)}, ${hex(length)})`,
      () => { this.live(); return new DirectIo(this.kernel, this, direction, addr, length); });
  }

  /**
   * get_user_pages() / pin_user_pages() with explicit FOLL_* flags; `fast` (the default) goes
   * through GUP-fast first as the *_fast() variants do.
   */
  pinUserPages(addr: number, pages: number, flags: number, fast = true): UserPages {
    return this.kernel.syscall(this.pid, () => `pin_user_pages${fast ? "_fast" : ""}(${hex(addr)}, ${pages}, 0x${(flags >>> 0).toString(16)})`,
      () => { this.live(); return new UserPages(this.kernel, this, addr, pages, flags, fast); });
  }

  /** echo 4 > /proc/pid/clear_refs: start soft-dirty tracking over (write-protects every page). */
  clearSoftDirty(): void {
    this.kernel.syscall(this.pid, "clear_refs(4)", () => { this.live(); clear_soft_dirty(this.kernel, this); });
  }

  /** The VMAs, as /proc/pid/maps would list them. */
  maps(): MapsEntry[] {
    return this.vmas.list.map((v) => ({
      start: v.start, end: v.end, perms: v.describe().split(" ")[1]!, flags: v.flags, pgoff: v.pgoff,
      anonVma: v.anonVma?.id ?? null, shared: v.shmem !== null,
    }));
  }

  /** The frame mapped at `addr`, or null (a debugging view; no fault is taken). */
  pfnAt(addr: number): number | null {
    checkAddr(addr);
    const t = this.kernel.x.translate_one(this.mm, addr) >>> 0;
    return t & C.TRANSLATE_FAULT ? null : t;
  }

  /** Pages of the address space by state, from the page tables (like /proc/pid/smaps_rollup). */
  rss(): { anon: number; shmem: number; swap: number } {
    const x = this.kernel.x;
    return {
      anon: x.get_mm_counter(this.mm, C.MM_ANONPAGES),
      shmem: x.get_mm_counter(this.mm, C.MM_SHMEMPAGES),
      swap: x.get_mm_counter(this.mm, C.MM_SWAPENTS),
    };
  }
}

function checkAddr(addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr >= 2 ** 48) {
    throw new CowsimError("EFAULT", `address ${addr} is not a user address`);
  }
}

export { PAGE_SIZE };
