/**
 * The HMM test driver (lib/test_hmm.c): a simulated device that mirrors one process's address
 * space, owns device-private memory (a MEMORY_DEVICE_PRIVATE pgmap), migrates anonymous pages
 * there and back, takes pages for exclusive (atomic) access, and reads and writes the process's
 * memory as the device would — through its own device pages, or through hmm_range_fault().
 * What the process observes must be the same as if the device had never touched its memory,
 * but for the device's own writes.
 * @packageDocumentation
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "../mm/kernel.js";
import type { MmProcess } from "../mm/process.js";
import { hex, VM_READ, VM_WRITE, type Vma } from "../mm/vma.js";
import { faultIn } from "../mm/memory.js";
import {
  type DevPagemap, type DevPagemapOwner, type MigrateVma, memremap_pages, memunmap_pages, pgmapOf,
  migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize,
} from "../mm/migrate_device.js";
import { make_device_exclusive_range } from "../mm/device_exclusive.js";
import { Stat } from "../mm/stats.js";
import { PAGE_SIZE } from "../mm/uapi.js";

/**
 * What became of one page of a migration or an exclusive request: 0 done, or a negative errno —
 * -EBUSY (left where it was: pinned, locked, referenced beyond its mappings), -ENOENT (nothing
 * the request selects is there: a swap entry, a page on the other side already, or — for a
 * migration to system memory — a hole), -ENOMEM (no free page on the other side). A hole or the
 * zero page migrated to the device gets a zeroed device page. @public
 */
export type DeviceStatus = number;

/** HMM_DMIRROR_* ioctls work on at most this many pages per migrate_vma (the driver's 64-entry arrays). */
const BATCH = 64;

/**
 * A dmirror device file opened by a process (dmirror_fops_open() binds it to the mm), with its
 * device-private memory (dmirror_allocate_chunk(), here one chunk of a fixed size). @public
 */
export class Dmirror implements DevPagemapOwner {
  /** The device's pgmap. */
  readonly pgmap: DevPagemap;
  /** Addresses whose pages this device holds exclusively (dmirror_atomic_map()). @internal */
  readonly atomic = new Set<number>();
  private removed = false;

  /** @internal */
  constructor(private readonly k: MmKernel, readonly process: MmProcess, devicePages: number) {
    this.pgmap = memremap_pages(k, this, devicePages);
  }

  /** Device pages not in use (the driver's free list). */
  get freePages(): number {
    return this.pgmap.pfns.filter((pfn) => this.k.ops.folioRefCount(pfn) === 0).length;
  }

  /** The device pages in use, in pgmap order. */
  get usedPages(): number[] {
    return this.pgmap.pfns.filter((pfn) => this.k.ops.folioRefCount(pfn) !== 0);
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device()): the range's system pages move to
   * device-private pages, in batches of 64 (migrate_vma_setup() with MIGRATE_VMA_SELECT_SYSTEM,
   * dmirror_migrate_alloc_and_copy(), migrate_vma_pages(), migrate_vma_finalize()). Each moved
   * page is mapped by a device-private entry — writable if its PTE was — and keeps
   * PageAnonExclusive; a possibly pinned page stays. Per page, its DeviceStatus. EINVAL (nothing
   * changed) for a range outside one private anonymous VMA.
   */
  migrateToDevice(addr: number, pages: number): DeviceStatus[] {
    return this.call(`HMM_DMIRROR_MIGRATE_TO_DEV(${hex(addr)}, ${pages})`, () => this.migrate(addr, pages, "system", (m) => this.allocAndCopyToDevice(m)));
  }

  /**
   * HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system()): the range's device-private pages
   * of this device move back to fresh system pages. Per page, its DeviceStatus.
   */
  migrateToSystem(addr: number, pages: number): DeviceStatus[] {
    return this.call(`HMM_DMIRROR_MIGRATE_TO_SYS(${hex(addr)}, ${pages})`, () => this.migrate(addr, pages, "device-private", (m) => this.allocAndCopyToRam(m)));
  }

  /**
   * HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive()): make_device_exclusive_range() over the range;
   * the device may then access the pages atomically while the CPU's next touch takes them back.
   * Per page, 0 or -EBUSY.
   */
  makeExclusive(addr: number, pages: number): DeviceStatus[] {
    return this.call(`HMM_DMIRROR_EXCLUSIVE(${hex(addr)}, ${pages})`, () => {
      this.checkRange(addr, pages);
      return make_device_exclusive_range(this.k, this.process, addr, pages).map((pfn, i) => {
        if (pfn === null) return -C.EBUSY;
        this.atomic.add(addr + i * PAGE_SIZE);
        return 0;
      });
    });
  }

  /**
   * HMM_DMIRROR_READ of one page (dmirror_read()): the device reads the process's page at `addr`
   * — its own device page, a page it holds exclusively, or what hmm_range_fault() faults in.
   */
  read(addr: number): number {
    return this.call(`HMM_DMIRROR_READ(${hex(addr)})`, () => this.access(addr, false, 0));
  }

  /**
   * HMM_DMIRROR_WRITE of one page (dmirror_write()): the device writes `value` to the process's
   * page at `addr`, breaking COW first as hmm_range_fault() with HMM_PFN_REQ_WRITE does. EPERM
   * for its own device page mapped read-only (dmirror_do_write(): no write permission in the
   * mirror), as the test driver answers, or for a VMA without VM_WRITE (hmm_vma_fault()); EFAULT
   * for one without VM_READ (hmm_vma_walk_test()).
   */
  write(addr: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new CowsimError("EINVAL", `HMM_DMIRROR_WRITE: value ${value}`);
    this.call(`HMM_DMIRROR_WRITE(${hex(addr)})`, () => this.access(addr, true, value));
  }

  /**
   * Closes the device (dmirror_device_remove() after every mirror is gone): its pages go back to
   * the allocator. EBUSY (nothing changed) while any of its pages is still in use.
   */
  remove(): void {
    if (this.removed) throw new CowsimError("EBADF", "dmirror_device_remove: the device was removed already");
    // the device outlives the process that opened it
    this.k.syscall(0, "dmirror_device_remove", () => {
      memunmap_pages(this.k, this.pgmap);
      this.removed = true;
    });
  }

  /**
   * dev_pagemap_ops.migrate_to_ram (dmirror_devmem_fault()), called by a CPU fault on one of
   * this device's entries with a reference to `page` held: that page, and only it, moves back
   * to system memory for every process that maps it.
   */
  migrateToRam(p: MmProcess, vma: Vma, addr: number, page: number): void {
    void vma;
    const m = migrate_vma_setup(this.k, p, addr, 1, "device-private", this.pgmap, page);
    this.allocAndCopyToRam(m);
    migrate_vma_pages(this.k, m);
    this.countMoved(migrate_vma_finalize(this.k, m), Stat.deviceMigratedToRam);
  }

  private call<T>(what: string, fn: () => T): T {
    if (this.removed) throw new CowsimError("EBADF", `${what}: the device was removed`);
    if (!this.k.processes.has(this.process.pid)) throw new CowsimError("ESRCH", `${what}: pid ${this.process.pid} has exited`);
    return this.k.syscall(this.process.pid, what, fn);
  }

  private checkRange(addr: number, pages: number): void {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0) throw new CowsimError("EINVAL", `${hex(addr)} is not page-aligned`);
    if (!Number.isSafeInteger(pages) || pages <= 0) throw new CowsimError("EINVAL", `${pages} pages`);
    const vma = this.process.vmas.lookup(addr);
    if (vma === null || addr + pages * PAGE_SIZE > vma.end) throw new CowsimError("EINVAL", `[${hex(addr)}, ${hex(addr + pages * PAGE_SIZE)}) is not inside one VMA of pid ${this.process.pid}`);
    if (!vma.isPrivateAnon) throw new CowsimError("EINVAL", `${vma.describe()} is not private anonymous memory`);
  }

  private migrate(addr: number, pages: number, select: "system" | "device-private", allocAndCopy: (m: MigrateVma) => void): DeviceStatus[] {
    this.checkRange(addr, pages);
    const out: DeviceStatus[] = [];
    for (let done = 0; done < pages; done += BATCH) {
      const n = Math.min(BATCH, pages - done);
      const m = migrate_vma_setup(this.k, this.process, addr + done * PAGE_SIZE, n, select, this.pgmap);
      allocAndCopy(m);
      // what the driver was asked to move (collected pages; holes too, for device memory) and got a page for
      const asked = m.pages.map((pg) => (pg.src & C.MIGRATE_PFN_MIGRATE) !== 0 && (pg.srcPfn !== 0 || select === "system"));
      const given = m.pages.map((pg) => pg.dst !== 0);
      migrate_vma_pages(this.k, m);
      const status = m.pages.map((pg, i): DeviceStatus =>
        pg.refused ? -C.EBUSY : !asked[i] ? -C.ENOENT : !given[i] ? -C.ENOMEM : pg.src & C.MIGRATE_PFN_MIGRATE ? 0 : -C.EBUSY);
      this.countMoved(migrate_vma_finalize(this.k, m), select === "system" ? Stat.deviceMigrated : Stat.deviceMigratedToRam);
      out.push(...status);
    }
    return out;
  }

  private countMoved(n: number, stat: number): void {
    for (let i = 0; i < n; i++) this.k.stats.inc(stat);
  }

  /** dmirror_migrate_alloc_and_copy(): a free device page per collected page or hole, its contents copied (or cleared). */
  private allocAndCopyToDevice(m: MigrateVma): void {
    const ops = this.k.ops;
    for (const pg of m.pages) {
      if (!(pg.src & C.MIGRATE_PFN_MIGRATE)) continue;
      const dpage = this.pgmap.pfns.find((pfn) => ops.folioRefCount(pfn) === 0);
      if (dpage === undefined) continue; // dmirror_devmem_alloc_page() found none: the page stays
      ops.zoneDevicePageInit(dpage);
      this.k.core.setTag(dpage, pg.srcPfn === 0 ? 0 : this.k.core.tag(pg.srcPfn));
      pg.dst = dpage;
    }
  }

  /** dmirror_devmem_fault_alloc_and_copy(): a fresh system page per collected device page, contents copied. */
  private allocAndCopyToRam(m: MigrateVma): void {
    const ops = this.k.ops;
    for (const pg of m.pages) {
      if (pg.srcPfn === 0 || !(pg.src & C.MIGRATE_PFN_MIGRATE)) continue;
      let dpage = ops.migrateFolioAlloc();
      if (dpage === null && this.k.reclaimAfterFailure() > 0) dpage = ops.migrateFolioAlloc();
      if (dpage === null) continue; // alloc_page_vma() failed: the page stays on the device
      ops.pageSetFlag(dpage, C.PG_locked);
      this.k.core.setTag(dpage, this.k.core.tag(pg.srcPfn));
      pg.dst = dpage;
      this.atomic.delete(m.start + m.pages.indexOf(pg) * PAGE_SIZE);
    }
  }

  /**
   * dmirror_do_read() / dmirror_do_write() after dmirror_fault(): the device's own page, a page
   * it holds exclusively, or the page hmm_range_fault() finds — faulting it in as
   * handle_mm_fault() does when it is missing or, for a write, not writable.
   */
  private access(addr: number, write: boolean, value: number): number {
    const p = this.process;
    const ops = this.k.ops;
    const page = addr - (addr % PAGE_SIZE);
    const vma = p.vmas.lookup(page);
    if (vma === null) throw new CowsimError("EFAULT", `HMM_DMIRROR: no VMA at ${hex(addr)} in pid ${p.pid}`);
    // the mirror is invalidated by any change of the mapping (the MMU notifier), so its access
    // goes through hmm_range_fault()'s checks: hmm_vma_walk_test() and hmm_vma_fault()
    if (!(vma.flags & VM_READ)) throw new CowsimError("EFAULT", `HMM_DMIRROR: ${vma.describe()} is not readable`);
    if (write && !(vma.flags & VM_WRITE)) throw new CowsimError("EPERM", `HMM_DMIRROR_WRITE: ${vma.describe()} is not writable`);
    let pfn: number | null = null;
    const e = ops.deviceEntry(p.mm, page);
    if (e !== null && e.kind === "private" && pgmapOf(this.k, e.pfn) === this.pgmap) {
      if (write && !e.writable) throw new CowsimError("EPERM", `HMM_DMIRROR_WRITE: device page ${e.pfn} at ${hex(page)} is mapped read-only`);
      pfn = e.pfn;
    } else if (e !== null && e.kind === "exclusive" && this.atomic.has(page)) {
      if (write && !e.writable) throw new CowsimError("EPERM", `HMM_DMIRROR_WRITE: exclusive page ${e.pfn} at ${hex(page)} is read-only`);
      pfn = e.pfn;
    } else {
      // hmm_range_fault(): HMM_PFN_REQ_FAULT, with HMM_PFN_REQ_WRITE for a write
      if (e?.kind === "exclusive") this.atomic.delete(page);
      faultIn(this.k, p, page, write);
      pfn = ops.translateOne(p.mm, page);
      if (pfn === null) throw new Error(`cowsim: hmm_range_fault left nothing mapped at ${hex(page)} of pid ${p.pid}`);
    }
    const t = this.k.trace.points.access;
    if (write) this.k.core.setTag(pfn, value);
    const v = write ? value : this.k.core.tag(pfn);
    // the device's load or store is one of the process's memory, as the oracle must see it
    if (t.listening) t.emit({ pid: p.pid, address: page, write, value: v, pfn, objId: vma.shmem ? vma.shmem.id : 0, index: vma.shmem ? vma.index(page) : 0 });
    return v;
  }
}
