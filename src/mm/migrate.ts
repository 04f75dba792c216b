/**
 * Page migration (mm/migrate.c: move_pages(2)'s do_pages_move() and add_folio_for_migration(),
 * migrate_pages() with migrate_folio_unmap() and migrate_folio_move(), remove_migration_ptes(),
 * migration_entry_wait(); mm/rmap.c try_to_migrate()). Order-0 anonymous folios move to a new
 * frame: every mapping the rmap finds, in every process, becomes a migration entry; the
 * contents and the anon mapping move; the entries become mappings of the new frame again, with
 * PageAnonExclusive restored from writable and readable-exclusive entries. A folio with
 * references the migration does not own — a pin above all — stays where it was, its mappings
 * restored. Large folios are not migrated yet: they report -ENOSYS, as a kernel without THP
 * migration support fails them.
 *
 * Two phases, so that what happens while the entries are installed can be written down: start
 * isolates, locks and unmaps (migrate_folio_unmap()); finish checks the references, copies and
 * restores (migrate_folio_move(), or migrate_folio_undo_src() on failure). Between them a fault
 * on a migration entry waits (migration_entry_wait()), GUP fails with EDEADLK as for any fault
 * that only another actor could end, and fork, mprotect, munmap and reclaim meet the entries as
 * Linux 6.12's do.
 */
import { C } from "../core/index.js";
import { CowsimError, ERRNO } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { hex } from "./vma.js";
import { rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import { FaultBlocked } from "./wait.js";
import { PAGE_SIZE, TASK_SIZE } from "./uapi.js";

/**
 * A page's status, as move_pages(2) reports it: 0 migrated, 1 queued (isolated and unmapped,
 * waiting for finish()), or a negative errno: -EFAULT (no VMA there, or the zero page),
 * -ENOENT (nothing mapped), -EACCES (mapped by other processes too, without `all`), -EBUSY (not
 * on the LRU: isolated already), -ENOMEM (no frame to migrate to), -EAGAIN (references the
 * migration does not own — a pin, a GUP reference, a lock — kept it where it was), -ENOSYS (a
 * large folio or a shared-memory page: not modelled yet).
 * @public
 */
export type MigrateStatus = number;

/** Options of Process.migratePages(). @public */
export interface MigrateOptions {
  /** MPOL_MF_MOVE_ALL: migrate pages other processes map too (default false: -EACCES). */
  readonly all?: boolean;
  /**
   * "all" (default): the whole migration, as one call of move_pages(2) makes it. "start": stop
   * once the entries are installed; `finish()` does the rest — what happens in between sees
   * the pages under migration.
   */
  readonly phase?: "all" | "start";
}

/** One folio on its way: where it goes and which pages of the range it covers. */
interface PendingFolio {
  readonly src: number;
  readonly dst: number;
  readonly page: number;
}

/** enum migrate_reason of move_pages(2) and migrate_pages(2). */
const REASON = "MR_SYSCALL";

const E = (name: keyof typeof ERRNO) => -ERRNO[name];

/**
 * A migration: its per-page status, and — begun with phase "start" — the folios waiting for
 * finish(). @public
 */
export class Migration {
  private readonly pending: PendingFolio[] = [];
  private _succeeded = 0;
  private _failed = 0;
  private finished = false;

  /** @internal */
  constructor(
    private readonly k: MmKernel,
    /** The process whose range it is. */
    readonly pid: number,
    /** The first page's address. */
    readonly start: number,
    /** Per page of the range, in order (see {@link MigrateStatus}). */
    readonly status: MigrateStatus[],
  ) {}

  /** "unmapped": folios wait under migration entries for finish(); "done": over. */
  get state(): "unmapped" | "done" {
    return this.finished ? "done" : "unmapped";
  }

  /** PGMIGRATE_SUCCESS of this migration: pages moved. */
  get succeeded(): number { return this._succeeded; }
  /** PGMIGRATE_FAIL of this migration: pages tried and left where they were. */
  get failed(): number { return this._failed; }

  /** @internal */
  queue(f: PendingFolio): void { this.pending.push(f); }
  /** @internal */
  fail(page: number, status: MigrateStatus): void {
    this.status[page] = status;
    this._failed++;
    this.k.stats.inc(Stat.pgmigrateFail);
  }

  /**
   * The second phase: each folio's references are checked, its contents and mapping move and
   * its entries map the new frame (or, on failure, the old one again); faults waiting on them
   * may be resumed. Returns this migration, done. EINVAL when it is done already.
   */
  finish(): this {
    if (this.finished) throw new CowsimError("EINVAL", `the migration of pid ${this.pid}'s ${hex(this.start)} is finished already`);
    this.k.syscall(this.pid, () => `migrate_pages(${hex(this.start)}): finish`, () => this.moveAll());
    return this;
  }

  /** migrate_pages_batch()'s move pass, then the end of migrate_pages(). @internal */
  moveAll(): void {
    for (const f of this.pending.splice(0)) {
      if (migrate_folio_move(this.k, f.src, f.dst)) {
        this.status[f.page] = 0;
        this._succeeded++;
        this.k.stats.inc(Stat.pgmigrateSuccess);
      } else {
        this.fail(f.page, E("EAGAIN"));
      }
    }
    this.finished = true;
    const t = this.k.trace.points.mm_migrate_pages;
    if (t.listening) t.emit({ succeeded: this._succeeded, failed: this._failed, reason: REASON });
  }
}

/**
 * move_pages(2) / migrate_pages() over [start, start + length) of `p`: each page's folio is
 * found (add_folio_for_migration()), isolated and migrated; the per-page status says what
 * became of it. With phase "start" the migration stops with the folios unmapped; the returned
 * Migration's finish() ends it. EINVAL for a misaligned or empty range (nothing changed).
 */
export function migrate_pages(k: MmKernel, p: MmProcess, start: number, length: number, opts: MigrateOptions = {}): Migration {
  if (start % PAGE_SIZE !== 0 || !Number.isSafeInteger(start) || start < 0) throw new CowsimError("EINVAL", `migrate_pages: ${hex(start)} is not page-aligned`);
  if (!Number.isSafeInteger(length) || length <= 0) throw new CowsimError("EINVAL", `migrate_pages: length ${length} is not a positive number of bytes`);
  if (start + length > TASK_SIZE) throw new CowsimError("EINVAL", `migrate_pages: [${hex(start)}, +${hex(length)}) reaches beyond TASK_SIZE`);
  const phase = opts.phase ?? "all";
  if (phase !== "all" && phase !== "start") throw new CowsimError("EINVAL", `migrate_pages: phase must be "all" or "start", not ${JSON.stringify(phase)}`);
  const pages = Math.ceil(length / PAGE_SIZE);
  const m = new Migration(k, p.pid, start, new Array<number>(pages).fill(0));
  // lru_cache_disable(): the per-CPU batches drain, so every folio is on the LRU to isolate
  k.drainLru();
  const queued: { folio: number; page: number }[] = [];
  for (let i = 0; i < pages; i++) {
    const s = add_folio_for_migration(k, p, start + i * PAGE_SIZE, opts.all ?? false);
    if (s < 0) m.status[i] = s;
    else {
      m.status[i] = 1;
      queued.push({ folio: s, page: i });
    }
  }
  // one pass: the kernel's NR_MAX_MIGRATE_PAGES_RETRY passes would fail alike, nothing else
  // running between them
  for (const q of queued) {
    const r = migrate_folio_unmap(k, q.folio);
    if (r < 0) m.fail(q.page, r);
    else m.queue({ src: q.folio, dst: r, page: q.page });
  }
  if (phase === "all") m.moveAll();
  return m;
}

/**
 * add_folio_for_migration(): the folio mapped at `addr`, isolated from the LRU for the
 * migration (folio_isolate_lru()); or the page's negative status.
 */
function add_folio_for_migration(k: MmKernel, p: MmProcess, addr: number, all: boolean): number {
  const ops = k.ops;
  const vma = p.vmas.lookup(addr);
  if (vma === null) return E("EFAULT");
  const pfn = ops.translateOne(p.mm, addr);
  if (pfn === null) return E("ENOENT"); // folio_walk_start() finds no present page
  if (pfn === 0) return E("EFAULT"); // is_zero_folio()
  const folio = ops.pageFolio(pfn);
  if (!vma.isPrivateAnon || !ops.folioTestAnon(folio) || ops.folioTestLarge(folio)) return E("ENOSYS");
  // folio_likely_mapped_shared() without MPOL_MF_MOVE_ALL
  if (ops.folioMapcount(folio) > 1 && !all) return E("EACCES");
  if (!k.isolateLru(folio)) return E("EBUSY");
  return folio;
}

/**
 * migrate_folio_unmap(): the destination folio is allocated, the source locked and every
 * mapping of it — in every process the rmap reaches — replaced by a migration entry
 * (try_to_migrate()). Returns the destination pfn with the source unmapped and locked, or a
 * negative status with everything as it was (the source back on the LRU): -ENOMEM, or -EAGAIN
 * when the lock is held elsewhere (folio_trylock(): nothing else runs that could let it go) or a
 * possibly pinned exclusive page refused to be shared (folio_try_share_anon_rmap_pte()).
 */
function migrate_folio_unmap(k: MmKernel, src: number): number {
  const ops = k.ops;
  const dst = ops.migrateFolioAlloc();
  if (dst === null) {
    k.putbackIsolated(src);
    return E("ENOMEM");
  }
  if (ops.pageTestFlag(src, C.PG_locked)) {
    ops.folioPutRefs(dst, 1);
    k.putbackIsolated(src);
    return E("EAGAIN");
  }
  ops.pageSetFlag(src, C.PG_locked);
  k.migrating.set(src, dst);
  const flags = (k.strategy.unmap.shareAnon ? C.MIGRATE_SHARE_ANON : 0) |
    ((k.strategy.migrationReadExclusive ?? k.strategy.tracksAnonExclusive) ? C.MIGRATE_READ_EXCLUSIVE : 0);
  const t = k.trace.points.set_migration_pte;
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(src), ops.folioIndex(src))) {
    const r = ops.tryToMigrateOne(hit.mm, hit.address, src, flags);
    if (r === -C.EBUSY) break; // the walk stops; the folio stays mapped
    if (r > 0 && t.listening) {
      const entry = r === C.MIGRATION_ENTRY_WRITE ? "write" : r === C.MIGRATION_ENTRY_READ_EXCLUSIVE ? "read-exclusive" : "read";
      t.emit({ pid: pidOfMm(k, hit.mm), address: hit.address, pfn: src, entry });
    }
  }
  if (ops.folioIsMapped(src)) {
    // migrate_folio_undo_src(): the entries installed so far map the source again
    remove_migration_ptes(k, src, src);
    unlockMigrated(k, src);
    ops.folioPutRefs(dst, 1);
    k.putbackIsolated(src);
    return E("EAGAIN");
  }
  return dst;
}

/**
 * migrate_folio_move(): __migrate_folio() moves contents, mapping and flags when the source
 * holds only the references the migration expects; the mappings are restored onto the
 * destination (remove_migration_ptes()), which joins the LRU, and the source's last reference
 * goes. On failure (migrate_folio_undo_src()) they are restored onto the source, which goes
 * back on the LRU, and the destination is freed. Returns whether it moved.
 */
function migrate_folio_move(k: MmKernel, src: number, dst: number): boolean {
  const ops = k.ops;
  const moved = ops.migrateFolioMove(src, dst) === 0;
  if (moved) {
    ops.folioAddLru(dst);
    remove_migration_ptes(k, src, dst);
    unlockMigrated(k, src);
    ops.folioPutRefs(dst, 1);
    k.dropIsolation(src);
  } else {
    remove_migration_ptes(k, src, src);
    unlockMigrated(k, src);
    ops.folioPutRefs(dst, 1);
    k.putbackIsolated(src);
  }
  return moved;
}

/** remove_migration_ptes(): every migration entry for `src` the rmap finds maps `dst`. */
function remove_migration_ptes(k: MmKernel, src: number, dst: number): void {
  const ops = k.ops;
  const t = k.trace.points.remove_migration_pte;
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(dst), ops.folioIndex(dst))) {
    const r = ops.removeMigrationPte(hit.mm, hit.address, src, dst, hit.vma.pageProt);
    if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: hit.address, pfn: src, newPfn: dst, exclusive: r === 3 });
  }
}

/** folio_unlock() of a migrated source: the faults waiting on its entries or its lock may retry. */
function unlockMigrated(k: MmKernel, src: number): void {
  k.ops.pageClearFlag(src, C.PG_locked);
  k.migrating.delete(src);
  k.waits.migration(src).wake();
  k.waits.folio(src).wake();
}

function pidOfMm(k: MmKernel, mm: number): number {
  for (const p of k.processes.values()) if (p.mm === mm) return p.pid;
  return 0;
}

/**
 * migration_entry_wait(): a fault met a migration entry. While the migration holds the folio
 * (between start and finish) the fault waits on it, changing nothing; an entry that is gone
 * already makes the access retry.
 */
export function migration_entry_wait(k: MmKernel, p: MmProcess, addr: number): void {
  const e = k.ops.migrationEntry(p.mm, addr);
  if (e === null) return;
  const folio = k.ops.pageFolio(e.pfn);
  if (!k.migrating.has(folio)) throw new Error(`cowsim: pid ${p.pid} has a migration entry at ${hex(addr)} for pfn ${e.pfn}, which is under no migration`);
  throw new FaultBlocked(k.waits.migration(folio));
}
