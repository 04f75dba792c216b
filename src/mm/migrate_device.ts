/**
 * Device memory (mm/memremap.c memremap_pages(); mm/migrate_device.c migrate_vma_setup(),
 * migrate_vma_pages(), migrate_vma_finalize(); mm/rmap.c make_device_exclusive_range();
 * mm/memory.c do_swap_page()'s device branches, remove_device_exclusive_entry(),
 * try_restore_exclusive_pte()). A driver (src/users/dmirror.ts) owns a pgmap of ZONE_DEVICE
 * private pages and moves anonymous pages there and back; what the processes see must not
 * change. The per-entry work is the core's (assembly/migrate_device.ts); the steps between —
 * LRU isolation, the rmap walk over the other mappings, the reference checks, the restore —
 * are here, in the kernel's order.
 *
 * Device pages come from the buddy allocator when the pgmap is created and go back only when
 * it is removed: the machine has one frame table, and taking them out for the device's life is
 * what makes them frames nobody else is handed (in Linux they are not RAM at all:
 * request_free_mem_region()). Free ones have refcount 0, as ZONE_DEVICE pages do in 6.12.
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_WRITE, hex } from "./vma.js";
import { rmap_walk_anon, anon_vma_prepare } from "./rmap.js";
import { Stat } from "./stats.js";
import { FaultBlocked } from "./wait.js";
import { PAGE_SIZE } from "./uapi.js";
import { split_huge_pmd, PMD_SIZE } from "./huge_memory.js";
import { try_split_folio } from "./migrate.js";
import { pageOffset, pmdStart } from "./align.js";

/**
 * struct dev_pagemap_ops: what the owner of a pgmap does for the kernel. migrate_to_ram() is
 * called by a CPU fault on one of its device-private entries (do_swap_page()) with a reference
 * to the page held; it migrates at least that page back to system memory (or fails).
 * @public
 */
export interface DevPagemapOwner {
  migrateToRam(p: MmProcess, vma: Vma, addr: number, page: number): void;
}

/** struct dev_pagemap of type MEMORY_DEVICE_PRIVATE: its pages and its owner. @public */
export class DevPagemap {
  /** @internal */
  constructor(
    /** The pgmap's id, kept in each of its pages (page->pgmap). */
    readonly id: number,
    /** The driver (pgmap->ops and pgmap->owner in one). */
    readonly owner: DevPagemapOwner,
    /** Its ZONE_DEVICE pages, in the order memremap_pages() made them. */
    readonly pfns: number[],
  ) {}
}

/**
 * memremap_pages(): a MEMORY_DEVICE_PRIVATE pgmap of `nr` pages for `owner`. ENOMEM (nothing
 * changed) when the machine has fewer free frames; EINVAL for a count that is not positive.
 */
export function memremap_pages(k: MmKernel, owner: DevPagemapOwner, nr: number): DevPagemap {
  if (!Number.isSafeInteger(nr) || nr <= 0) throw new CowsimError("EINVAL", `memremap_pages: ${nr} pages`);
  const id = k.pgmaps.size === 0 ? 1 : Math.max(...k.pgmaps.keys()) + 1;
  const pfns: number[] = [];
  for (let i = 0; i < nr; i++) {
    const pfn = k.ops.memremapPage(id);
    if (pfn === null) {
      for (const f of pfns) k.ops.memunmapPage(f);
      throw new CowsimError("ENOMEM", `memremap_pages: ${nr} device pages asked for, only ${i} free frames`);
    }
    pfns.push(pfn);
  }
  const pgmap = new DevPagemap(id, owner, pfns);
  k.pgmaps.set(id, pgmap);
  return pgmap;
}

/**
 * memunmap_pages(): the pgmap's pages go back to the allocator. EBUSY (nothing changed) while
 * any of them is in use — a driver migrates its pages out first (dmirror_device_evict_chunk()).
 */
export function memunmap_pages(k: MmKernel, pgmap: DevPagemap): void {
  const busy = pgmap.pfns.filter((pfn) => k.ops.folioRefCount(pfn) !== 0);
  if (busy.length > 0) throw new CowsimError("EBUSY", `memunmap_pages: device pages ${busy.join(", ")} are in use`);
  for (const pfn of pgmap.pfns) k.ops.memunmapPage(pfn);
  k.pgmaps.delete(pgmap.id);
}

/** The pgmap of a ZONE_DEVICE page, or null for a system page. */
export function pgmapOf(k: MmKernel, pfn: number): DevPagemap | null {
  const id = k.ops.pagePgmap(pfn);
  return id === 0 ? null : k.pgmaps.get(id) ?? null;
}

/** One page of a migrate_vma: what collect found and what the driver gave it. @public */
export interface MigrateVmaPage {
  /** MIGRATE_PFN_* bits (0: not migrated). */
  src: number;
  /** The source page, 0 for a hole. */
  readonly srcPfn: number;
  /** The destination page the driver allocated and filled (locked, one reference), 0 for none. */
  dst: number;
  /** A page the request selects was there and was left where it was (locked, pinned, referenced). */
  refused: boolean;
}

/** struct migrate_vma between migrate_vma_setup() and migrate_vma_finalize(). @public */
export interface MigrateVma {
  readonly p: MmProcess;
  readonly vma: Vma;
  readonly start: number;
  readonly pages: MigrateVmaPage[];
  /** The page whose fault asked for the migration (migrate_to_ram()), else 0. */
  readonly faultPage: number;
  /** Pages collected and unmapped (cpages). */
  cpages: number;
}

/** migrate_vma_setup() selection. @public */
export type MigrateVmaSelect = "system" | "device-private";

function migrateFlags(k: MmKernel): number {
  return (k.strategy.unmap.shareAnon ? C.MIGRATE_SHARE_ANON : 0) |
    ((k.strategy.migrationReadExclusive ?? k.strategy.tracksAnonExclusive) ? C.MIGRATE_READ_EXCLUSIVE : 0);
}

/**
 * migrate_vma_collect_pmd()'s first step for each PMD leaf the range touches: the huge zero PMD
 * is split (split_huge_pmd()), a THP split into order-0 pages (split_folio() under the folio
 * lock, which splits its PMDs); the pieces are then collected as any page. A THP that cannot be
 * split (locked, pinned, referenced) stays, its pages skipped (migrate_vma_collect_skip()).
 */
function splitHugePmdsForCollect(k: MmKernel, p: MmProcess, vma: Vma, start: number, end: number): void {
  const ops = k.ops;
  for (let haddr = pmdStart(start); haddr < end; haddr += PMD_SIZE) {
    if (ops.hugePmdAt(p.mm, haddr) !== 1) continue;
    const folio = ops.pmdFolio(p.mm, haddr);
    if (ops.pageTestFlag(folio, C.PG_reserved)) split_huge_pmd(k, p, vma, haddr, "migrate_vma_collect_pmd()");
    else try_split_folio(k, folio, 0);
  }
}

/**
 * migrate_vma_setup() over [start, start + pages) of `p`: migrate_vma_collect() takes and
 * unmaps the selected pages of the VMA (system pages, or the device-private pages of `pgmap`),
 * then migrate_vma_unmap() (migrate_device_unmap()) isolates system pages from the LRU, unmaps
 * their other mappings through the rmap (try_to_migrate()) and gives back every page with
 * references it cannot account for — a pin above all (migrate_vma_check_page()) — restoring
 * its mappings. EINVAL (nothing changed) when the range is not page-aligned or not inside one
 * VMA, or the VMA is no private anonymous mapping.
 */
export function migrate_vma_setup(k: MmKernel, p: MmProcess, start: number, pages: number,
  select: MigrateVmaSelect, pgmap: DevPagemap | null, faultPage = 0): MigrateVma {
  if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE !== 0) throw new CowsimError("EINVAL", `migrate_vma_setup: ${hex(start)} is not page-aligned`);
  if (!Number.isSafeInteger(pages) || pages <= 0) throw new CowsimError("EINVAL", `migrate_vma_setup: ${pages} pages`);
  const end = start + pages * PAGE_SIZE;
  const vma = p.vmas.lookup(start);
  if (vma === null || end > vma.end) throw new CowsimError("EINVAL", `migrate_vma_setup: [${hex(start)}, ${hex(end)}) is not inside one VMA of pid ${p.pid}`);
  if (!vma.isPrivateAnon) throw new CowsimError("EINVAL", `migrate_vma_setup: ${vma.describe()} is not private anonymous memory`);
  const flags = (select === "system" ? C.MIGRATE_VMA_SELECT_SYSTEM : C.MIGRATE_VMA_SELECT_DEVICE_PRIVATE) |
    C.MIGRATE_VMA_ANON | (k.strategy.unmap.shareAnon ? C.MIGRATE_VMA_SHARE_ANON : 0);
  const m: MigrateVma = { p, vma, start, pages: [], faultPage, cpages: 0 };
  splitHugePmdsForCollect(k, p, vma, start, end);
  const t = k.trace.points.set_migration_pte;
  for (const r of k.core.migrateVmaCollect(p.mm, start, end, flags, pgmap?.id ?? 0)) {
    m.pages.push({ src: r.aux, srcPfn: r.pfn, dst: 0, refused: r.kind === 1 && !(r.aux & C.MIGRATE_PFN_VALID) });
    if (r.pfn !== 0 && t.listening) {
      const entry = r.aux & C.MIGRATE_PFN_WRITE ? "write" : r.aux & C.MIGRATE_PFN_EXCLUSIVE ? "read-exclusive" : "read";
      t.emit({ pid: p.pid, address: r.address, pfn: r.pfn, entry });
    }
  }
  migrate_device_unmap(k, m);
  return m;
}

/** migrate_device_unmap(): isolate, unmap the other mappings, check the references, restore what failed. */
function migrate_device_unmap(k: MmKernel, m: MigrateVma): void {
  const ops = k.ops;
  ops.lruAddDrain();
  let allowDrain = true;
  const restore: MigrateVmaPage[] = [];
  for (const pg of m.pages) {
    const folio = pg.srcPfn;
    if (folio === 0) {
      if (pg.src & C.MIGRATE_PFN_MIGRATE) m.cpages++;
      continue;
    }
    const device = ops.pageTestFlag(folio, C.PG_zone_device);
    if (!device) {
      if (!ops.pageTestFlag(folio, C.PG_lru) && allowDrain) {
        k.drainLru(); // lru_add_drain_all()
        allowDrain = false;
      }
      if (!k.isolateLru(folio)) {
        pg.src &= ~C.MIGRATE_PFN_MIGRATE;
        restore.push(pg);
        continue;
      }
      ops.folioPutRefs(folio, 1); // the collect's reference; the isolation holds one now
    }
    if (ops.folioIsMapped(folio)) try_to_migrate(k, folio, device);
    if (ops.folioIsMapped(folio) || !migrate_vma_check_page(k, folio, m.faultPage)) {
      if (!device) {
        ops.folioRefAdd(folio, 1);
        k.putbackIsolated(folio);
      }
      pg.src &= ~C.MIGRATE_PFN_MIGRATE;
      restore.push(pg);
      continue;
    }
    m.cpages++;
  }
  for (const pg of restore) {
    remove_migration_ptes(k, pg.srcPfn, pg.srcPfn);
    ops.pageClearFlag(pg.srcPfn, C.PG_locked);
    ops.folioPutRefs(pg.srcPfn, 1);
    k.waits.folio(pg.srcPfn).wake();
    (pg as { srcPfn: number }).srcPfn = 0;
    pg.src = 0;
    pg.refused = true;
  }
}

/** try_to_migrate(): every other mapping of `folio` the rmap finds becomes a migration entry. */
function try_to_migrate(k: MmKernel, folio: number, device: boolean): void {
  const ops = k.ops;
  const flags = device ? (k.strategy.unmap.shareAnon ? C.MIGRATE_VMA_SHARE_ANON : 0) : migrateFlags(k);
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio))) {
    const r = device ? ops.tryToMigrateOneDevice(hit.mm, hit.address, folio, flags) : ops.tryToMigrateOne(hit.mm, hit.address, folio, flags);
    if (r === -C.EBUSY) break; // a possibly pinned page: the walk stops, the folio stays mapped
  }
}

/**
 * migrate_vma_check_page(): false when the folio holds references beyond its mappings, the
 * caller's (isolation or collect), the fault's, ZONE_DEVICE's extra one and the swap cache's —
 * or is large.
 */
function migrate_vma_check_page(k: MmKernel, folio: number, faultPage: number): boolean {
  const ops = k.ops;
  if (ops.folioTestLarge(folio)) return false;
  let extra = 1 + (folio === faultPage ? 1 : 0);
  if (ops.pageTestFlag(folio, C.PG_zone_device)) extra++;
  // folio_mapping(): the swap cache's address space holds a reference too
  if (ops.pageTestFlag(folio, C.PG_swapcache)) extra++;
  return ops.folioRefCount(folio) - extra <= ops.folioMapcount(folio);
}

/**
 * migrate_vma_pages() (__migrate_device_pages()): for each page the driver gave a destination,
 * the anon mapping, index and flags move (folio_migrate_mapping(), folio_migrate_flags()); a
 * source in the swap cache leaves it first for device memory (folio_free_swap()), or stays.
 * A hole (or the zero page) the driver gave a device page is populated with it
 * (migrate_vma_insert_page()). What fails loses MIGRATE_PFN_MIGRATE.
 */
export function migrate_vma_pages(k: MmKernel, m: MigrateVma): void {
  const ops = k.ops;
  m.pages.forEach((pg, i) => {
    if (pg.dst === 0) {
      pg.src &= ~C.MIGRATE_PFN_MIGRATE;
      return;
    }
    if (pg.srcPfn === 0) {
      if (pg.src & C.MIGRATE_PFN_MIGRATE && !migrate_vma_insert_page(k, m, m.start + i * PAGE_SIZE, pg.dst)) pg.src &= ~C.MIGRATE_PFN_MIGRATE;
      return;
    }
    migrate_one(k, m, pg);
  });
}

/** migrate_vma_insert_page(): the VMA gets its anon_vma first (anon_vma_prepare()); false when the page could not go in. */
function migrate_vma_insert_page(k: MmKernel, m: MigrateVma, addr: number, page: number): boolean {
  if (!k.ops.pageTestFlag(page, C.PG_zone_device)) return false; // only device memory is inserted here
  const vma = m.vma;
  const anonVma = vma.anonVma ?? anon_vma_prepare(k.anonVmas, vma, m.p.vmas, m.p.mm);
  return k.ops.migrateVmaInsertPage(m.p.mm, addr, page, anonVma.id, vma.index(addr), vma.flags & VM_WRITE ? C.INSERT_VM_WRITE : 0) === 0;
}

/** __migrate_device_pages() for one collected page. */
function migrate_one(k: MmKernel, m: MigrateVma, pg: MigrateVmaPage): void {
  const ops = k.ops;
  {
    if (!(pg.src & C.MIGRATE_PFN_MIGRATE)) return;
    if (ops.pageTestFlag(pg.dst, C.PG_zone_device) && ops.pageTestFlag(pg.srcPfn, C.PG_swapcache) && !ops.folioFreeSwap(pg.srcPfn)) {
      pg.src &= ~C.MIGRATE_PFN_MIGRATE;
      return;
    }
    if (ops.migrateDeviceMove(pg.srcPfn, pg.dst, pg.srcPfn === m.faultPage ? 1 : 0) !== 0) pg.src &= ~C.MIGRATE_PFN_MIGRATE;
  }
}

/**
 * migrate_vma_finalize() (migrate_device_finalize()): the migration entries map the
 * destination where the page moved, the source again where it did not (remove_migration_ptes());
 * sources and destinations are unlocked and go back to the LRU, or to their device's free list
 * with their last reference. Returns the pages moved.
 */
export function migrate_vma_finalize(k: MmKernel, m: MigrateVma): number {
  const ops = k.ops;
  let moved = 0;
  for (const pg of m.pages) {
    const src = pg.srcPfn;
    let dst = pg.dst;
    if (src === 0) {
      // an inserted page keeps the reference of its entry
      if (dst !== 0) putDestination(k, dst);
      if (dst !== 0 && pg.src & C.MIGRATE_PFN_MIGRATE) moved++;
      continue;
    }
    const ok = (pg.src & C.MIGRATE_PFN_MIGRATE) !== 0 && dst !== 0;
    if (!ok) {
      if (dst !== 0) putDestination(k, dst);
      dst = src;
    }
    remove_migration_ptes(k, src, dst, m.p);
    ops.pageClearFlag(src, C.PG_locked);
    k.waits.folio(src).wake();
    if (ops.pageTestFlag(src, C.PG_zone_device)) ops.folioPutRefs(src, 1);
    else if (ok) k.dropIsolation(src);
    else k.putbackIsolated(src);
    if (dst !== src) {
      ops.pageClearFlag(dst, C.PG_locked);
      if (!ops.pageTestFlag(dst, C.PG_zone_device)) ops.folioAddLru(dst);
      ops.folioPutRefs(dst, 1);
      moved++;
    }
  }
  return moved;
}

/** A destination that was not used: unlocked and its only reference dropped (freed). */
function putDestination(k: MmKernel, dst: number): void {
  k.ops.pageClearFlag(dst, C.PG_locked);
  k.ops.folioPutRefs(dst, 1);
}

/** remove_migration_ptes(): every migration entry for `src` the rmap finds maps `dst` (or its device entry). */
function remove_migration_ptes(k: MmKernel, src: number, dst: number, p?: MmProcess): void {
  const ops = k.ops;
  const device = ops.pageTestFlag(dst, C.PG_zone_device);
  const t = k.trace.points.remove_migration_pte;
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(dst), ops.folioIndex(dst))) {
    const r = device ? ops.removeMigrationPteDevice(hit.mm, hit.address, src, dst)
      : ops.removeMigrationPte(hit.mm, hit.address, src, dst, hit.vma.pageProt);
    if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm, p), address: hit.address, pfn: src, newPfn: dst, exclusive: r === 3 });
  }
}

function pidOfMm(k: MmKernel, mm: number, hint?: MmProcess): number {
  if (hint?.mm === mm) return hint.pid;
  for (const q of k.processes.values()) if (q.mm === mm) return q.pid;
  return 0;
}

/**
 * do_swap_page() on a device entry: a device-private one calls its pgmap's migrate_to_ram()
 * with a reference to the page held (get_page()); a device-exclusive one is restored
 * (remove_device_exclusive_entry()). An entry that changed meanwhile makes the access retry.
 */
export function do_device_entry_fault(k: MmKernel, p: MmProcess, vma: Vma, addr: number): void {
  const ops = k.ops;
  const page = addr - pageOffset(addr);
  const e = ops.deviceEntry(p.mm, page);
  if (e === null) return;
  if (e.kind === "exclusive") return remove_device_exclusive_entry(k, p, vma, page, e.pfn);
  const pgmap = pgmapOf(k, e.pfn);
  if (pgmap === null) throw new Error(`cowsim: pid ${p.pid}'s device-private entry at ${hex(page)} names pfn ${e.pfn}, which belongs to no pgmap`);
  ops.folioRefAdd(e.pfn, 1);
  try {
    pgmap.owner.migrateToRam(p, vma, page, e.pfn);
  } finally {
    ops.folioPutRefs(e.pfn, 1);
  }
  k.stats.inc(Stat.deviceFaults);
}

/**
 * remove_device_exclusive_entry(): the page is locked (a fault on a page locked elsewhere
 * waits, folio_lock_or_retry()) and mapped again as it was (restore_exclusive_pte()).
 */
function remove_device_exclusive_entry(k: MmKernel, p: MmProcess, vma: Vma, addr: number, pfn: number): void {
  const ops = k.ops;
  if (ops.folioRefCount(pfn) === 0) return; // folio_try_get() failed: the entry is gone
  if (ops.pageTestFlag(pfn, C.PG_locked)) throw new FaultBlocked(k.waits.folio(pfn));
  if (ops.restoreExclusivePte(p.mm, addr, vma.pageProt, vma.flags & VM_WRITE ? C.RESTORE_VM_WRITE : 0) === null) return;
  k.stats.inc(Stat.deviceExclusiveRestored);
}

/**
 * try_restore_exclusive_pte() for fork's copy_nonpresent_pte(): the parent's device-exclusive
 * entry at `addr` maps its page again, which fork then copies as a present PTE. A page locked
 * elsewhere makes fork retry in Linux until the lock goes; nothing else runs here that could
 * unlock it, so that is EDEADLK.
 */
export function try_restore_exclusive_pte(k: MmKernel, parent: MmProcess, vma: Vma, addr: number, pfn: number): void {
  const ops = k.ops;
  if (ops.pageTestFlag(pfn, C.PG_locked)) {
    throw new CowsimError("EDEADLK", `fork: pid ${parent.pid}'s device-exclusive page at ${hex(addr)} is locked by another actor`);
  }
  if (ops.restoreExclusivePte(parent.mm, addr, vma.pageProt, vma.flags & VM_WRITE ? C.RESTORE_VM_WRITE : 0) === null) {
    throw new Error(`cowsim: fork found no device-exclusive entry at ${hex(addr)} in pid ${parent.pid}`);
  }
  k.stats.inc(Stat.deviceExclusiveRestored);
}
