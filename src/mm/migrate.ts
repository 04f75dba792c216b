/**
 * Page migration (mm/migrate.c: move_pages(2)'s do_pages_move() and add_folio_for_migration(),
 * migrate_pages() with migrate_folio_unmap() and migrate_folio_move(), remove_migration_ptes(),
 * migration_entry_wait(); mm/rmap.c try_to_migrate()). Order-0 anonymous folios move to a new
 * frame: every mapping the rmap finds, in every process, becomes a migration entry; the
 * contents and the anon mapping move; the entries become mappings of the new frame again, with
 * PageAnonExclusive restored from writable and readable-exclusive entries. A folio with
 * references the migration does not own — a pin above all — stays where it was, its mappings
 * restored. Large folios move whole into a fresh folio of their order — a PMD-mapped THP under
 * one PMD migration entry per mapping (set_pmd_migration_entry(), remove_migration_pmd(), as
 * x86-64's thp_migration_supported() allows), a PTE-mapped one under one entry per PTE — and
 * when no folio of that order is free they are split and the pieces migrated
 * (try_split_folio() after -ENOMEM in migrate_pages_batch()).
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
import { hex, type Vma } from "./vma.js";
import { rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import { FaultBlocked } from "./wait.js";
import { PAGE_SIZE, TASK_SIZE } from "./uapi.js";
import { split_huge_pmd, try_to_migrate_flags } from "./huge_memory.js";
import { split_folio, folio_likely_mapped_shared } from "./large_folio.js";

/**
 * A page's status, as move_pages(2) reports it: 0 migrated, 1 queued (isolated and unmapped,
 * waiting for finish()), or a negative errno: -EFAULT (no VMA there, or the zero page),
 * -ENOENT (nothing mapped), -EACCES (mapped by other processes too, without `all`), -EBUSY (not
 * on the LRU: isolated already), -ENOMEM (no frame to migrate to), -EAGAIN (references the
 * migration does not own — a pin, a GUP reference, a lock — kept it where it was), -ENOSYS (a
 * shared-memory page: not modelled yet). Every page of a large folio reports its folio's status.
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
  /** @internal MR_COMPACTION: compaction's migration, which drains no LRU batch. */
  readonly compaction?: boolean;
}

/** One folio on its way: where it goes and which pages of the range it covers. */
interface PendingFolio {
  readonly src: number;
  readonly dst: number;
  readonly pages: readonly number[];
}

/** enum migrate_reason: move_pages(2) and migrate_pages(2), or compaction. */
type MigrateReason = "MR_SYSCALL" | "MR_COMPACTION";

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
    private readonly reason: MigrateReason = "MR_SYSCALL",
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
  /**
   * A folio of `nr` pages stayed where it was: its `pages` of the range report `status`, and
   * PGMIGRATE_FAIL counts all its pages, as migrate_pages_batch() does. @internal
   */
  fail(pages: readonly number[], status: MigrateStatus, nr: number, thp = false): void {
    for (const page of pages) this.status[page] = status;
    this._failed += nr;
    this.k.stats.inc(Stat.pgmigrateFail, nr);
    if (thp) this.k.stats.inc(Stat.thp_migration_fail);
  }
  private succeed(pages: readonly number[], nr: number, thp: boolean): void {
    for (const page of pages) this.status[page] = 0;
    this._succeeded += nr;
    this.k.stats.inc(Stat.pgmigrateSuccess, nr);
    if (thp) this.k.stats.inc(Stat.thp_migration_success);
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
      const thp = isThp(this.k, f.src);
      const nr = 2 ** this.k.ops.folioOrder(f.src);
      if (migrate_folio_move(this.k, f.src, f.dst)) this.succeed(f.pages, nr, thp);
      else this.fail(f.pages, E("EAGAIN"), nr, thp);
    }
    this.finished = true;
    const t = this.k.trace.points.mm_migrate_pages;
    if (t.listening) t.emit({ succeeded: this._succeeded, failed: this._failed, reason: this.reason });
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
  const m = new Migration(k, p.pid, start, new Array<number>(pages).fill(0), opts.compaction ? "MR_COMPACTION" : "MR_SYSCALL");
  // lru_cache_disable(): the per-CPU batches drain, so every folio is on the LRU to isolate;
  // compaction skips what is not (isolate_migratepages_block())
  if (!opts.compaction) k.drainLru();
  // the pages of each folio, in the order the range meets them (a large folio is isolated once)
  const queued = new Map<number, number[]>();
  for (let i = 0; i < pages; i++) {
    const addr = start + i * PAGE_SIZE;
    const mapped = k.ops.translateOne(p.mm, addr);
    const known = mapped !== null && mapped !== 0 ? queued.get(k.ops.pageFolio(mapped)) : undefined;
    if (known !== undefined) {
      known.push(i);
      m.status[i] = 1;
      continue;
    }
    const s = add_folio_for_migration(k, p, addr, opts.all ?? false);
    if (s < 0) m.status[i] = s;
    else {
      m.status[i] = 1;
      queued.set(s, [i]);
    }
  }
  // one pass: the kernel's NR_MAX_MIGRATE_PAGES_RETRY passes would fail alike, nothing else
  // running between them
  for (const [folio, folioPages] of queued) unmapOrSplit(k, m, p, start, folio, folioPages);
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
  if (!vma.isPrivateAnon || !ops.folioTestAnon(folio)) return E("ENOSYS");
  if (ops.pageTestFlag(folio, C.PG_reserved)) return E("EFAULT"); // is_huge_zero_folio()
  if (folio_likely_mapped_shared(k, folio) && !all) return E("EACCES"); // without MPOL_MF_MOVE_ALL
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
  const large = ops.folioTestLarge(src);
  const dst = large ? ops.migrateFolioAllocOrder(ops.folioOrder(src)) : ops.migrateFolioAlloc();
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
  const flags = try_to_migrate_flags(k);
  const t = k.trace.points.set_migration_pte;
  const nr = 2 ** ops.folioOrder(src);
  walk: for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(src), ops.folioIndex(src), nr)) {
    if (large && ops.hugePmdAt(hit.mm, hit.address) === 1 && ops.pmdFolio(hit.mm, hit.address) === src) {
      const r = ops.setPmdMigrationEntry(hit.mm, hit.address, src, flags);
      if (r === -C.EBUSY) break;
      if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: hit.address, pfn: src, entry: entryName(r) });
      continue;
    }
    // try_to_migrate_one() visits each PTE of the folio the VMA can hold
    for (let i = 0; i < nr; i++) {
      const addr = hit.address + i * PAGE_SIZE;
      if (addr < hit.vma.start || addr >= hit.vma.end) continue;
      const r = ops.tryToMigrateOne(hit.mm, addr, src + i, flags);
      if (r === -C.EBUSY) break walk; // the walk stops; the folio stays mapped
      if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: addr, pfn: src + i, entry: entryName(r) });
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

function entryName(r: number): "write" | "read-exclusive" | "read" {
  return r === C.MIGRATION_ENTRY_WRITE ? "write" : r === C.MIGRATION_ENTRY_READ_EXCLUSIVE ? "read-exclusive" : "read";
}

/** folio_test_pmd_mappable(): the THP_MIGRATION_* counters count PMD-sized folios only. */
function isThp(k: MmKernel, folio: number): boolean {
  return k.ops.folioTestLarge(folio) && k.ops.folioOrder(folio) >= 9;
}

/**
 * migrate_pages_batch()'s unmap pass for one isolated folio: migrate_folio_unmap(), and for a
 * large folio that finds no destination of its order (-ENOMEM) try_split_folio(), whose
 * order-0 pieces are isolated and migrated one by one in its place (THP_MIGRATION_SPLIT).
 */
function unmapOrSplit(k: MmKernel, m: Migration, p: MmProcess, start: number, folio: number, pages: readonly number[]): void {
  const ops = k.ops;
  const thp = isThp(k, folio);
  const large = ops.folioTestLarge(folio);
  const nr = 2 ** ops.folioOrder(folio);
  const r = migrate_folio_unmap(k, folio);
  if (r >= 0) {
    m.queue({ src: folio, dst: r, pages });
    return;
  }
  if (!large || r !== E("ENOMEM") || !try_split_folio(k, folio, 0)) {
    m.fail(pages, r, nr, thp);
    return;
  }
  if (thp) k.stats.inc(Stat.thp_migration_split);
  // every piece goes on the list (split_folio_to_list()), the range's and the others alike
  const rangePage = new Map<number, number>();
  for (const page of pages) {
    const pfn = ops.translateOne(p.mm, start + page * PAGE_SIZE);
    if (pfn !== null) rangePage.set(pfn, page);
  }
  for (let piece = folio; piece < folio + nr; piece++) {
    const page = rangePage.get(piece);
    const mine = page === undefined ? [] : [page];
    if (!k.isolateLru(piece)) { // a piece nothing mapped went back to the allocator
      if (page !== undefined) m.fail(mine, E("EBUSY"), 1);
      continue;
    }
    const d = migrate_folio_unmap(k, piece);
    if (d < 0) m.fail(mine, d, 1);
    else m.queue({ src: piece, dst: d, pages: mine });
  }
}

/**
 * try_split_folio() / split_huge_page() of an anonymous large folio with `callerRefs` references
 * of the caller's own: can_split_folio() first — the folio lock, a possible pin or any other
 * reference refuses with nothing changed; then unmap_folio()'s TTU_SPLIT_HUGE_PMD splits every
 * PMD that maps it, and split_folio() makes order-0 pages of it. Returns whether it split.
 */
export function try_split_folio(k: MmKernel, folio: number, callerRefs: number): boolean {
  const ops = k.ops;
  if (ops.pageTestFlag(folio, C.PG_locked) || ops.folioMaybeDmaPinned(folio)) return false;
  const swapRefs = ops.pageTestFlag(folio, C.PG_swapcache) ? 2 ** ops.folioOrder(folio) : 0;
  if (ops.folioRefCount(folio) !== ops.folioMapcount(folio) + swapRefs + callerRefs) return false;
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio))) {
    const owner = processOfMm(k, hit.mm);
    if (owner !== null && ops.hugePmdAt(hit.mm, hit.address) === 1 && ops.pmdFolio(hit.mm, hit.address) === folio) {
      split_huge_pmd(k, owner, hit.vma, hit.address, "split_huge_page()");
    }
  }
  // the caller's references are dropped around the split (nothing else runs meanwhile); the
  // caller takes what it needs again on the pieces
  if (callerRefs > 0) ops.folioPutRefs(folio, callerRefs);
  if (split_folio(k, folio).outcome === "split") return true;
  if (callerRefs > 0) ops.folioRefAdd(folio, callerRefs);
  return false;
}

function processOfMm(k: MmKernel, mm: number): MmProcess | null {
  for (const p of k.processes.values()) if (p.mm === mm) return p;
  return null;
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

/**
 * remove_migration_ptes(): every migration entry for `src` the rmap finds maps `dst` — a PMD
 * migration entry by a PMD (remove_migration_pmd()), each PTE entry by the page at its offset.
 */
export function remove_migration_ptes(k: MmKernel, src: number, dst: number): void {
  const ops = k.ops;
  const t = k.trace.points.remove_migration_pte;
  const nr = 2 ** ops.folioOrder(dst);
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(dst), ops.folioIndex(dst), nr)) {
    const prot = hit.vma.pageProt;
    if (nr > 1 && ops.hugePmdAt(hit.mm, hit.address) === 2) {
      const r = ops.removeMigrationPmd(hit.mm, hit.address, src, dst, prot);
      if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: hit.address, pfn: src, newPfn: dst, exclusive: r === 3 });
      continue;
    }
    for (let i = 0; i < nr; i++) {
      const addr = hit.address + i * PAGE_SIZE;
      if (addr < hit.vma.start || addr >= hit.vma.end) continue;
      const r = ops.removeMigrationPte(hit.mm, addr, src + i, dst + i, prot);
      if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: addr, pfn: src + i, newPfn: dst + i, exclusive: r === 3 });
    }
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
 * transient.migration: compaction (MR_COMPACTION, isolate_migratepages_block() and
 * migrate_pages()) now and then migrates the folio a write-protect fault at `addr` is about to
 * decide on, whatever other processes map it too. The fault then works on the new folio, as a
 * fault that raced with compaction and retried does. A folio compaction cannot isolate or move
 * stays where it is.
 */
export function compact_transiently(k: MmKernel, p: MmProcess, vma: Vma, addr: number): void {
  if (!vma.isPrivateAnon || !k.maybeMigrate()) return;
  migrate_pages(k, p, addr - (addr % PAGE_SIZE), PAGE_SIZE, { all: true, compaction: true });
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
