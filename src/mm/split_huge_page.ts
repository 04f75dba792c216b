/**
 * split_huge_page_to_list_to_order() (mm/huge_memory.c) of an anonymous large folio a process
 * maps, as its callers do it — the debugfs split_huge_pages interface for one page, memory
 * failure, migration's try_split_folio(): the folio locked and held (folio_trylock(),
 * folio_get()), the racy can_split_folio(), then unmap_folio(), whose try_to_migrate() with
 * TTU_SPLIT_HUGE_PMD splits every PMD mapping it with freeze = true
 * (split_huge_pmd_address() → __split_huge_pmd_locked(), seed 000 I.6c) and turns every PTE
 * mapping into a migration entry (try_to_migrate_one()); then folio_ref_freeze() of the
 * references left, the split itself, and remap_page() — the entries map the folio (or its
 * pieces) again.
 *
 * Two phases, like migration's, so that what lands in the window between can_split_folio() and
 * unmap_folio() — which neither the folio lock nor the anon_vma lock closes: GUP-fast takes
 * neither — can be written down: start() locks, holds and checks; finish() does the rest.
 */
import { C } from "../core/index.js";
import { CowsimError, ERRNO } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { hex } from "./vma.js";
import { rmap_walk_anon } from "./rmap.js";
import { split_huge_pmd, try_to_migrate_flags, PMD_SIZE } from "./huge_memory.js";
import { split_folio } from "./large_folio.js";
import { remove_migration_ptes } from "./migrate.js";
import { PAGE_SIZE } from "./uapi.js";
import { pmdOffset } from "./align.js";

/**
 * What split_huge_page() of a folio returned: 0 split, -EAGAIN (references beyond its mappings
 * and the swap cache: can_split_folio() or folio_ref_freeze() refused), or 1 while a split
 * begun with phase "start" waits for finish(). @public
 */
export type HugePageSplitStatus = number;

/** Options of Process.splitHugePage(). @public */
export interface SplitHugePageOptions {
  /**
   * "all" (default): the whole split. "start": stop once the folio is locked, held and
   * can_split_folio() passed; `finish()` does the rest.
   */
  readonly phase?: "all" | "start";
}

/** A split of one large folio, begun by Process.splitHugePage(). @public */
export class HugePageSplit {
  private _status: HugePageSplitStatus;

  /** @internal */
  constructor(
    private readonly k: MmKernel,
    /** The process whose page named the folio. */
    readonly pid: number,
    /** The folio's head pfn. */
    readonly folio: number,
    status: HugePageSplitStatus,
  ) {
    this._status = status;
  }

  /** See {@link HugePageSplitStatus}. */
  get status(): HugePageSplitStatus { return this._status; }
  /** "checked": locked and held, waiting for finish(); "done": over. */
  get state(): "checked" | "done" { return this._status === 1 ? "checked" : "done"; }

  /** The second phase: unmap_folio() onwards. Returns this split, done. EINVAL when it is done already. */
  finish(): this {
    if (this._status !== 1) throw new CowsimError("EINVAL", `the split of pfn ${this.folio} is finished already`);
    this._status = this.k.syscall(this.pid, () => `split_huge_page(${this.folio}): finish`, () => finish_split(this.k, this.folio));
    return this;
  }
}

/**
 * split_huge_page() of the anonymous large folio mapped at `addr` of `p`. EFAULT when nothing
 * is mapped there, EINVAL when it is no large anonymous folio (the huge zero page included),
 * EBUSY when another holds its lock (folio_trylock() fails): nothing changed. A folio
 * can_split_folio() refuses is a split that failed (status -EAGAIN, MTHP_STAT_SPLIT_FAILED).
 */
export function split_huge_page(k: MmKernel, p: MmProcess, addr: number, opts: SplitHugePageOptions = {}): HugePageSplit {
  const phase = opts.phase ?? "all";
  if (phase !== "all" && phase !== "start") throw new CowsimError("EINVAL", `split_huge_page: phase must be "all" or "start", not ${JSON.stringify(phase)}`);
  const ops = k.ops;
  const pfn = p.vmas.lookup(addr) === null ? null : ops.translateOne(p.mm, addr);
  if (pfn === null || pfn === 0) throw new CowsimError("EFAULT", `split_huge_page: pid ${p.pid} maps no page at ${hex(addr)}`);
  const folio = ops.pageFolio(pfn);
  if (!ops.folioTestLarge(folio) || !ops.folioTestAnon(folio)) {
    throw new CowsimError("EINVAL", `split_huge_page: pfn ${folio} at ${hex(addr)} is no large anonymous folio`);
  }
  // can_split_folio(folio, 1) once locked and held is can_split_folio(folio, 0) now: nothing
  // runs in between
  if (!ops.canSplitFolio(folio)) {
    if (ops.pageTestFlag(folio, C.PG_locked)) throw new CowsimError("EBUSY", `split_huge_page: pfn ${folio} is locked`);
    ops.countMthpStat(ops.folioOrder(folio), C.MTHP_STAT_SPLIT_FAILED);
    traceSplit(k, folio, "busy");
    return new HugePageSplit(k, p.pid, folio, -ERRNO.EAGAIN);
  }
  k.lockFolio(folio); // folio_trylock() and folio_get()
  const split = new HugePageSplit(k, p.pid, folio, 1);
  return phase === "all" ? split.finish() : split;
}

/**
 * unmap_folio(), folio_ref_freeze(), the split and remap_page() for a folio start() locked and
 * holds one reference to. The entries unmap_folio() installed map the folio again before the
 * split (rather than each piece after it, as Linux does): the same PTEs, the same
 * PageAnonExclusive, and nothing runs in between. The caller's lock and reference go before the
 * split, as try_split_folio() has it.
 */
function finish_split(k: MmKernel, folio: number): HugePageSplitStatus {
  const ops = k.ops;
  const order = ops.folioOrder(folio);
  const extra = ops.pageTestFlag(folio, C.PG_swapcache) ? 2 ** order : 0;
  unmap_folio(k, folio);
  // folio_ref_freeze(folio, 1 + extra_pins): nothing maps it any more, no one else holds it
  const frozen = ops.folioRefCount(folio) === 1 + extra;
  remove_migration_ptes(k, folio, folio);
  k.unlockFolio(folio);
  if (!frozen) {
    ops.countMthpStat(order, C.MTHP_STAT_SPLIT_FAILED);
    traceSplit(k, folio, "busy");
    return -ERRNO.EAGAIN;
  }
  return split_folio(k, folio).outcome === "split" ? 0 : -ERRNO.EAGAIN;
}

/**
 * unmap_folio(): try_to_migrate(folio, TTU_SPLIT_HUGE_PMD | …) over every mapping the rmap
 * finds. A PMD mapping is split with freeze = true first; where it did not freeze — 5.19+ could
 * not share a possibly pinned THP (rule (c)) — its PTEs map the folio, and try_to_migrate_one()
 * meets the pin again on the first of them: the walk stops there
 * (page_vma_mapped_walk_done()), the folio stays mapped.
 */
function unmap_folio(k: MmKernel, folio: number): void {
  const ops = k.ops;
  const nr = 2 ** ops.folioOrder(folio);
  const flags = try_to_migrate_flags(k);
  const t = k.trace.points.set_migration_pte;
  walk: for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio), nr)) {
    if (pmdOffset(hit.address) === 0 && ops.hugePmdAt(hit.mm, hit.address) === 1 && ops.pmdFolio(hit.mm, hit.address) === folio) {
      const owner = processOfMm(k, hit.mm);
      if (owner !== null && split_huge_pmd(k, owner, hit.vma, hit.address, "unmap_folio(): try_to_migrate(TTU_SPLIT_HUGE_PMD)", true)) continue;
    }
    for (let i = 0; i < nr; i++) {
      const addr = hit.address + i * PAGE_SIZE;
      if (addr < hit.vma.start || addr >= hit.vma.end) continue;
      const r = ops.tryToMigrateOne(hit.mm, addr, folio + i, flags);
      if (r === -C.EBUSY) break walk;
      if (r > 0 && t.listening) t.emit({ pid: pidOfMm(k, hit.mm), address: addr, pfn: folio + i, entry: r === C.MIGRATION_ENTRY_WRITE ? "write" : r === C.MIGRATION_ENTRY_READ_EXCLUSIVE ? "read-exclusive" : "read" });
    }
  }
}

function traceSplit(k: MmKernel, folio: number, outcome: "busy"): void {
  if (k.trace.points.split_huge_page.listening) k.trace.points.split_huge_page.emit({ pfn: folio, order: k.ops.folioOrder(folio), outcome, freed: 0 });
}

function processOfMm(k: MmKernel, mm: number): MmProcess | null {
  for (const p of k.processes.values()) if (p.mm === mm) return p;
  return null;
}

function pidOfMm(k: MmKernel, mm: number): number {
  return processOfMm(k, mm)?.pid ?? 0;
}
