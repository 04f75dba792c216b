/**
 * UFFDIO_MOVE (Linux 6.8, adcaa5c6a2c8 and its series): move_pages() of mm/userfaultfd.c and the
 * ioctl's checks of fs/userfaultfd.c (userfaultfd_move()). Pages of a private anonymous VMA move,
 * without a copy, to a range of a VMA registered with the userfaultfd, in the same mm: the PTE
 * (or the PMD leaf) moves, and the folio's `mapping` and `index` are rewritten to the
 * destination's anon_vma and linear_page_index() — which is why only a folio mapped by this one
 * PTE (PageAnonExclusive, not maybe pinned, not large) may move.
 *
 * Linux 6.12 as Debian ships it, with the stable fixes it carries: d7a08838ab74 (the folio is
 * changed only after the pin check), 75cb1cca2c88 (dirty only if the source was dirty, soft-dirty
 * always), c50f8e6053b0 and 0ea148a79919 (a swap entry's swap-cache folio follows the entry;
 * the race it closes has no room here), and the PMD migration entry check before pmd_folio() in
 * move_pages(). The PTE loop runs in the core (assembly/userfaultfd_move.ts).
 *
 * Unlike cowsim's other calls, a failing move does not always leave the state as it was: Linux
 * moves page by page and reports the bytes moved before an error, splits THPs and folios on its
 * way, and allocates the page tables it walks into; so does this. The errno of a call that moved
 * nothing is exact; a short move is reported as the kernel reports it (userfaultfd_move()).
 * @packageDocumentation
 */
import { CowsimError, ERRNO, errnoName, type ErrnoName } from "../errno.js";
import { C } from "../core/index.js";
import type { MmKernel } from "./kernel.js";
import type { UserfaultfdCtx } from "./userfaultfd.js";
import { Vma, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, hex } from "./vma.js";
import { anon_vma_prepare } from "./rmap.js";
import { split_huge_pmd, PMD_SIZE } from "./huge_memory.js";
import { split_folio } from "./large_folio.js";
import { PAGE_SIZE, TASK_SIZE } from "./uapi.js";
import { UFFDIO_MOVE_MODE_DONTWAKE, UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES } from "./uapi_userfaultfd.js";
import { pageOffset, pmdOffset, pmdStart } from "./align.js";

/** VM_LOCKED (mlock()): cowsim does not model mlock, but a VMA may carry the bit; Linux's value. */
export const VM_LOCKED = 0x2000;

/** VM_ACCESS_FLAGS */
const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

/**
 * The result of a userfaultfd ioctl that works on a range (UFFDIO_MOVE, COPY, ZEROPAGE,
 * CONTINUE, POISON): the errno the ioctl fails with, and what the kernel wrote into the
 * argument's result field (uffdio_move.move, uffdio_copy.copy …) — the bytes done before the
 * error (the ioctl then fails with EAGAIN), or -errno when nothing was done. @public
 */
export class UffdRangeError extends CowsimError {
  constructor(errno: ErrnoName, message: string, readonly result: number) {
    super(errno, message);
    this.name = "UffdRangeError";
  }
}

/** move_pages()'s outcome: the bytes moved, and the error that ended it early (null: none). */
export interface MovePagesOutcome {
  readonly moved: number;
  readonly error: CowsimError | null;
}

/**
 * move_pages(): moves [src, src + len) to [dst, dst + len) in `ctx`'s mm. Returns the bytes
 * moved (> 0; holes count with UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES), fewer than `len` when an error
 * ended it after some moved — or throws a {@link UffdRangeError} (result -errno) when nothing
 * moved. The caller must have done userfaultfd_move()'s checks (or be a test).
 */
export function move_pages(k: MmKernel, ctx: UserfaultfdCtx, dst: number, src: number, len: number, mode: number): number {
  const { moved, error } = movePagesOutcome(k, ctx, dst, src, len, mode);
  if (moved > 0) return moved;
  throw new UffdRangeError(error!.errno, error!.detail, -error!.code);
}

/** move_pages() with the error that ended it kept, whatever was moved before it. */
export function movePagesOutcome(k: MmKernel, ctx: UserfaultfdCtx, dst: number, src: number, len: number,
  mode: number): MovePagesOutcome {
  const p = ctx.process;
  // sanitize the command parameters (WARN_ON_ONCE: userfaultfd_move() checked them)
  if (!Number.isInteger(src + dst + len) || pageOffset(src) || pageOffset(dst) || pageOffset(len) || len <= 0) return fail("EINVAL", "unaligned range or length");

  // uffd_move_lock() → find_vmas_mm_locked(): the destination first (find_vma_and_prepare_anon())
  const dstVma = p.vmas.lookup(dst);
  if (!dstVma) return fail("ENOENT", `no VMA at the destination ${hex(dst)}`);
  if (dstVma.isCow) anon_vma_prepare(k.anonVmas, dstVma, p.vmas, p.mm);
  const srcVma = src >= dstVma.start && src < dstVma.end ? dstVma : p.vmas.lookup(src);
  if (!srcVma) return fail("ENOENT", `no VMA at the source ${hex(src)}`);

  // re-checked under map_changing_lock
  if (ctx.mmapChanging) return fail("EAGAIN", "a non-cooperative event is pending (mmap_changing)");
  if (srcVma.flags & VM_SHARED) return fail("EINVAL", `the source ${srcVma.describe()} is shared`);
  if (src + len > srcVma.end) return fail("EINVAL", `the source range ends past ${srcVma.describe()}`);
  if (dstVma.flags & VM_SHARED) return fail("EINVAL", `the destination ${dstVma.describe()} is shared`);
  if (dst + len > dstVma.end) return fail("EINVAL", `the destination range ends past ${dstVma.describe()}`);
  const bad = validate_move_areas(ctx, srcVma, dstVma);
  if (bad) return fail("EINVAL", bad);

  return moveLoop(k, ctx, srcVma, dstVma, dst, src, len, mode);
}

/** What a move has done so far, and the error that ended it. */
class MoveRun {
  moved = 0;
  thp = 0;
  error: CowsimError | null = null;
  /** Each run of pages moved, kept only for an overlapping move's trace (told page by page). */
  readonly steps: [number, number, number][] | null;

  constructor(readonly mm: number, public srcAddr: number, public dstAddr: number, traced: boolean) {
    this.steps = traced ? [] : null;
  }

  step(bytes: number, pmds: number): void {
    this.thp += pmds;
    this.steps?.push([this.srcAddr, this.dstAddr, bytes / PAGE_SIZE]);
    this.srcAddr += bytes;
    this.dstAddr += bytes;
    this.moved += bytes;
  }

  stop(errno: ErrnoName, why: string): void {
    this.error = new CowsimError(errno, `UFFDIO_MOVE: ${why} at ${hex(this.srcAddr)}`);
  }
}

/** move_pages()'s loop, once the VMAs are found and checked. */
function moveLoop(k: MmKernel, ctx: UserfaultfdCtx, srcVma: Vma, dstVma: Vma, dst: number, src: number, len: number,
  mode: number): MovePagesOutcome {
  const p = ctx.process;
  const ops = k.ops;
  const mm = p.mm;
  const anonVma = dstVma.anonVma!.id;
  const prot = dstVma.pageProt;
  const end = src + len;
  const overlap = src < dst + len && dst < end;
  const traced = k.trace.points.uffd_move.listening;
  const run = new MoveRun(mm, src, dst, traced && overlap);

  while (run.srcAddr < end) {
    // the PMDs that already point at PTE tables on both sides, in one call: most of a move
    const fast = ops.movePagesPteSpans(mm, run.dstAddr, run.srcAddr, (end - run.srcAddr) / PAGE_SIZE, mode, anonVma,
      dstVma.index(run.dstAddr), prot);
    if (fast > 0) run.step(fast * PAGE_SIZE, 0);
    const fastStop = ops.moveStop();
    if (fastStop !== 0) {
      if (ptesStopped(k, run, fastStop)) continue;
      break;
    }
    if (run.srcAddr >= end) break;

    const srcAddr = run.srcAddr;
    const dstAddr = run.dstAddr;
    // mm_find_pmd(): no PMD when a level above it is missing
    let srcPmd = ops.uffdPmdState(mm, srcAddr);
    if (srcPmd === C.UFFD_PMD_NO_SLOT) {
      if (!(mode & UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES)) { run.stop("ENOENT", "a hole in the source"); break; }
      if (ops.uffdAllocTables(mm, srcAddr, 2) < 0) { run.stop("ENOMEM", "no page table for the source"); break; }
      srcPmd = C.UFFD_PMD_NONE;
    }
    if (ops.uffdAllocTables(mm, dstAddr, 2) < 0) { run.stop("ENOMEM", "no page table for the destination"); break; }
    const dstPmd = ops.uffdPmdState(mm, dstAddr);
    // a THP at the destination is never overwritten
    if (dstPmd === C.UFFD_PMD_LEAF) { run.stop("EEXIST", `a THP at the destination ${hex(dstAddr)}`); break; }

    if (srcPmd === C.UFFD_PMD_LEAF || srcPmd === C.UFFD_PMD_SWAP) {
      // pmd_trans_huge_lock() holds for PMD leaves and PMD swap (migration) entries
      if (move_splits_huge_pmd(dstAddr, srcAddr, end) || dstPmd !== C.UFFD_PMD_NONE) {
        if (srcPmd === C.UFFD_PMD_LEAF) {
          const folio = ops.pmdFolio(mm, srcAddr);
          if (folio !== k.hugeZeroFolio && !ops.PageAnonExclusive(folio)) { run.stop("EBUSY", "a THP not exclusive to this process"); break; }
        }
        // the folio will be split by move_pages_pte()
        split_huge_pmd(k, p, srcVma, srcAddr, "move_pages()");
        continue;
      }
      const r = ops.movePagesHugePmd(mm, dstAddr, srcAddr, anonVma, dstVma.index(dstAddr), prot);
      if (r === 0) {
        run.step(PMD_SIZE, 1);
        // the THPs after it, in one call for as long as each is as simple (a leaf onto a none PMD)
        const more = Math.floor((end - run.srcAddr) / PMD_SIZE);
        const n = more > 0 ? ops.movePagesHugePmds(mm, run.dstAddr, run.srcAddr, more, anonVma, dstVma.index(run.dstAddr), prot) : 0;
        if (n > 0) run.step(n * PMD_SIZE, n);
        continue;
      }
      stopFor(r, run, "move_pages_huge_pmd()");
      break;
    }

    if (srcPmd === C.UFFD_PMD_NONE) {
      if (!(mode & UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES)) { run.stop("ENOENT", "a hole in the source"); break; }
      if (ops.uffdAllocTables(mm, srcAddr, 3) < 0) { run.stop("ENOMEM", "no PTE table for the source"); break; }
    }
    if (ops.uffdAllocTables(mm, dstAddr, 3) < 0) { run.stop("ENOMEM", "no PTE table for the destination"); break; }
    if (ops.uffdPmdState(mm, dstAddr) !== C.UFFD_PMD_TABLE) {
      // a PMD migration entry at the destination: pte_offset_map_nolock() finds no table and the
      // kernel retries (-EAGAIN) until the migration ends, which it cannot inside one call here
      run.stop("EAGAIN", `a PMD migration entry at the destination ${hex(dstAddr)}`);
      break;
    }
    // move_pages_pte() page by page, as far as both PMDs and the range reach, in one call
    const nr = Math.min(end - srcAddr, pmdEnd(srcAddr) - srcAddr, pmdEnd(dstAddr) - dstAddr) / PAGE_SIZE;
    const done = ops.movePagesPtes(mm, dstAddr, srcAddr, nr, mode, anonVma, dstVma.index(dstAddr), prot);
    if (done > 0) run.step(done * PAGE_SIZE, 0);
    const why = ops.moveStop();
    if (why !== 0 && !ptesStopped(k, run, why)) break;
  }

  const moved = run.moved;
  if (moved > 0 && traced) {
    // an overlapping move is sequential: tell it page by page; otherwise as one
    if (run.steps) {
      for (const [s, d, n] of run.steps) {
        for (let i = 0; i < n; i++) k.trace.points.uffd_move.emit({ pid: p.pid, src: s + i * PAGE_SIZE, dst: d + i * PAGE_SIZE, pages: 1, thp: 0 });
      }
    } else {
      k.trace.points.uffd_move.emit({ pid: p.pid, src, dst, pages: moved / PAGE_SIZE, thp: run.thp });
    }
  }
  return { moved, error: run.error };
}

/**
 * What the loop does when move_pages_pte() stopped at run.srcAddr with `why` (non-zero): split a
 * large folio and go on (true), or end the move with its error (false).
 */
function ptesStopped(k: MmKernel, run: MoveRun, why: number): boolean {
  if (why === C.MOVE_STOP_LARGE) {
    // split_folio() can block; the pieces are looked up again (goto retry)
    const ops = k.ops;
    const folio = ops.pageFolio(ops.followPfn(run.mm, run.srcAddr)!);
    const split = split_folio(k, folio).outcome;
    if (split === "split") return true;
    // do not retry: extra references may be held forever
    run.stop(split === "not-large" ? "EINVAL" : "EBUSY", "a large folio that cannot be split");
    return false;
  }
  stopFor(why < 0x1000 ? -why : why, run, "move_pages_pte()");
  return false;
}

/** A move that moved nothing. */
const fail = (errno: ErrnoName, why: string): MovePagesOutcome => ({ moved: 0, error: new CowsimError(errno, `UFFDIO_MOVE: ${why}`) });

/** The kernel's result for a code of the core: an errno, or what a wait it cannot do becomes. */
function stopFor(code: number, run: MoveRun, where: string): void {
  if (code === C.MOVE_STOP_MIGRATION) {
    // migration_entry_wait() then -EAGAIN and a retry: the migration that left the entry is the
    // caller's own step, still in flight, so the wait would never end here
    run.stop("EAGAIN", `${where}: a page under migration`);
  } else if (code === C.MOVE_STOP_LOCKED) {
    // folio_lock(): the kernel sleeps until the holder unlocks; nothing unlocks during a step
    run.stop("EAGAIN", `${where}: a locked folio`);
  } else {
    const errno = errnoName(code);
    const why: Partial<Record<ErrnoName, string>> = {
      EEXIST: "the destination is not none", ENOENT: "a hole in the source",
      EBUSY: "a page not exclusive to this process, or maybe pinned", EFAULT: "a non-swap entry in the source",
    };
    run.stop(errno, `${where}: ${why[errno] ?? errno}`);
  }
}

/** The end of the PMD over `addr`. */
const pmdEnd = (addr: number) => pmdStart(addr) + PMD_SIZE;

/** move_splits_huge_pmd(): a PMD moves whole only when both ends are aligned and the range covers it. */
function move_splits_huge_pmd(dstAddr: number, srcAddr: number, srcEnd: number): boolean {
  return pmdOffset(srcAddr) !== 0 || pmdOffset(dstAddr) !== 0 || srcEnd - srcAddr < PMD_SIZE;
}

/**
 * validate_move_areas(): the same access flags and protection, both mlocked or neither, writable,
 * the destination registered with this userfaultfd, both anonymous. (vma_move_compatible()'s
 * VM_PFNMAP, VM_IO, VM_HUGETLB, VM_MIXEDMAP and VM_SHADOW_STACK do not exist in cowsim.) Returns
 * why not, or null.
 */
function validate_move_areas(ctx: UserfaultfdCtx, srcVma: Vma, dstVma: Vma): string | null {
  if ((srcVma.flags & VM_ACCESS_FLAGS) !== (dstVma.flags & VM_ACCESS_FLAGS) || srcVma.pageProt !== dstVma.pageProt) {
    return "the source and destination VMAs differ in access or protection";
  }
  if ((srcVma.flags & VM_LOCKED) !== (dstVma.flags & VM_LOCKED)) return "one VMA is mlocked and the other not";
  if (!(srcVma.flags & VM_WRITE)) return "the VMAs are not writable";
  if (dstVma.uffdCtx === null || dstVma.uffdCtx !== ctx) return `the destination ${dstVma.describe()} is not registered with this userfaultfd`;
  if (srcVma.shmem !== null || dstVma.shmem !== null) return "a VMA is not anonymous";
  return null;
}

/** struct uffdio_move, less its output field. @public */
export interface UffdioMove {
  readonly dst: number;
  readonly src: number;
  readonly len: number;
  readonly mode: number;
}

/**
 * userfaultfd_move() (fs/userfaultfd.c), the UFFDIO_MOVE ioctl: checks the request, runs
 * move_pages() and wakes the faults waiting on the moved range (`wake(start, len)`, the
 * context's wake_userfault()) unless UFFDIO_MOVE_MODE_DONTWAKE. Returns the bytes moved (= len).
 * Fails with a {@link UffdRangeError} where the kernel writes uffdio_move.move: EAGAIN while
 * mmap_changing (move = -EAGAIN), the errno of a move that moved nothing (move = -errno), or
 * EAGAIN after a short move (move = the bytes moved, woken first). Other checks throw a plain
 * CowsimError, as the kernel leaves `move` alone for them: EINVAL for a cross-mm call (`caller`,
 * the calling process, when given, is not the context's), a bad range or unknown mode bits;
 * ESRCH when the context's mm is gone. (The feature bit UFFD_FEATURE_MOVE is not checked here;
 * it only tells userspace that the ioctl exists — and neither is the context's UFFDIO_API
 * handshake, which the ioctl dispatcher checks for every command.)
 */
export function userfaultfd_move(k: MmKernel, ctx: UserfaultfdCtx, req: UffdioMove & { readonly caller?: unknown },
  wake?: (start: number, len: number) => void): number {
  const { dst, src, len, mode } = req;
  if (ctx.mmapChanging) {
    throw new UffdRangeError("EAGAIN", "UFFDIO_MOVE: a non-cooperative event is pending (mmap_changing)", -ERRNO.EAGAIN);
  }
  // do not allow cross-mm moves
  if (req.caller !== undefined && req.caller !== ctx.process) throw new CowsimError("EINVAL", "UFFDIO_MOVE: the userfaultfd belongs to another mm");
  validate_range(dst, len, "destination");
  validate_range(src, len, "source");
  if (!Number.isInteger(mode) || mode < 0 || (mode & ~(UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES | UFFDIO_MOVE_MODE_DONTWAKE)) !== 0) {
    throw new CowsimError("EINVAL", `UFFDIO_MOVE: unknown mode bits 0x${(mode >>> 0).toString(16)}`);
  }
  // mmget_not_zero()
  if (!ctx.process.alive) throw new CowsimError("ESRCH", `UFFDIO_MOVE: pid ${ctx.process.pid} has exited`);
  const { moved, error } = movePagesOutcome(k, ctx, dst, src, len, mode);
  if (moved === 0) throw new UffdRangeError(error!.errno, error!.detail, -error!.code);
  if (!(mode & UFFDIO_MOVE_MODE_DONTWAKE)) wake?.(dst, moved);
  if (moved !== len) {
    throw new UffdRangeError("EAGAIN", `UFFDIO_MOVE: moved ${moved} of ${len} bytes; then ${error!.message}`, moved);
  }
  return moved;
}

/** validate_range(): page-aligned start and length, not empty, inside user space. */
function validate_range(start: number, len: number, what: string): void {
  const bad = !Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0 || pageOffset(start) !== 0 ||
    pageOffset(len) !== 0 || len <= 0 || start >= TASK_SIZE || len > TASK_SIZE - start;
  if (bad) throw new CowsimError("EINVAL", `UFFDIO_MOVE: bad ${what} range ${hex(start)}+${hex(len)}`);
}
