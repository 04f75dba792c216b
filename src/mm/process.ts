/**
 * A simulated process of the kernel layer: an address space and the syscalls that shape it,
 * plus the CPU's loads and stores. Every public method is one step, validates its arguments,
 * and on failure throws a CowsimError with an errno name, leaving what the error contract says.
 * (The facade's Process adds the calls that make GUP users.)
 * @packageDocumentation
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel, Releasable } from "./kernel.js";
import { Stat } from "./stats.js";
import { VmaList, hex } from "./vma.js";
import { access } from "./memory.js";
import { do_mmap, do_munmap, exit_mmap } from "./mmap.js";
import { do_mprotect, clear_soft_dirty } from "./mprotect.js";
import { do_mremap } from "./mremap.js";
import { do_madvise } from "./madvise.js";
import { dup_mmap } from "./fork.js";
import { PAGE_SIZE } from "./uapi.js";

/** The step codes of a load and a store (a step that is a code and two numbers, made on every access). */
export const CALL_READ = 1;
export const CALL_WRITE = 2;

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
      if (this.kernel.trace.has("exit_mmap")) this.kernel.trace.emit("exit_mmap", { pid: this.pid });
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
    const step = k.beginAccess(this.pid, CALL_WRITE, addr, value);
    access(k, this, addr, true, value);
    if (step) k.endAccess(CALL_WRITE, addr, value);
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
    return this.kernel.ops.translateOne(this.mm, addr);
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
export function checkAddr(addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr >= 2 ** 48) {
    throw new CowsimError("EFAULT", `address ${addr} is not a user address`);
  }
}

export { PAGE_SIZE };
