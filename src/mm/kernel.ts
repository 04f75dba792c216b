/**
 * A simulated kernel: one machine (the Wasm core), one COW strategy, the oracle that judges it,
 * and the processes. `createKernel()` is the entry point of the library.
 * @packageDocumentation
 */
import { Core, type FailKind, type FailureInjection } from "../core/core.js";
import type { CoreExports } from "../core/abi.generated.js";
import type { CoreBuild } from "../core/wasm.js";
import { C } from "../core/abi.generated.js";
import { CowsimError, InvariantError } from "../errno.js";
import { makeStrategy, type StrategyId } from "../policy/index.js";
import type { CowStrategy } from "../policy/strategy.js";
import { Oracle, type Finding } from "../oracle/oracle.js";
import type { Journal } from "../oracle/journal.js";
import {
  checkInvariants, latentMissedCows, heldFrames, usedSwapSlots, type InvariantViolation, type LatentMissedCow,
  type HeldFrame, type UsedSwapSlot,
} from "../oracle/invariants.js";
import { AnonVmaRegistry } from "./rmap.js";
import { ShmemRegistry } from "./shmem.js";
import { Stats, Stat, type Counters } from "./stats.js";
import { TraceBus } from "../trace/events.js";
import { Process } from "./process.js";
import { WpHelperSet } from "./memory.js";
import { PinRegistry } from "./gup.js";
import { reclaim, swapCacheOrphan } from "./swap.js";
import { PAGE_SIZE } from "./uapi.js";
import { validateKernelOptions, formatOptionProblems } from "./options.js";
import { Rng } from "../util/rng.js";

/** Transient references the real kernel takes, each behind an option. @public */
export interface TransientOptions {
  /**
   * Per-CPU LRU folio batches (mm/swap.c): each new page waits in a batch holding a reference
   * until the batch fills or is drained. `true` uses the strategy's era (15 folios before 6.x,
   * 31 now); a number sets the size; 0 or false is off (the default).
   */
  readonly lruBatch?: boolean | number;
  /**
   * Isolation for migration or compaction: the probability (0…1) that the page of a
   * write-protect fault is found isolated, holding a reference, while the fault decides.
   */
  readonly isolation?: number;
}

/** Options of createKernel(). @public */
export interface KernelOptions {
  /** The COW strategy: a built-in id (default "anon-exclusive") or a strategy object. */
  readonly strategy?: StrategyId | CowStrategy;
  /** The strategy's knobs, by name (see STRATEGIES). */
  readonly knobs?: Readonly<Record<string, boolean>>;
  /** Simulated RAM: bytes, or a size such as "256M" (default "256M"). */
  readonly memory?: number | string;
  /** Swap space: bytes or a size (default: as much as memory). */
  readonly swap?: number | string;
  /** Bytes of real data kept per page besides its value (0…4096, default 0). */
  readonly dataBytes?: number;
  readonly transient?: TransientOptions;
  /** Seed of the pseudo-random choices (transient isolation …). Default 1. */
  readonly seed?: number;
  /** Run the oracle (default true). */
  readonly oracle?: boolean;
  /** Keep the journal that explains findings (default: with the oracle). */
  readonly explain?: boolean;
  /** Check every invariant after every step, throwing on the first violation (default false). */
  readonly checkInvariants?: boolean;
  /** Most processes alive at once (default 256). */
  readonly maxProcesses?: number;
  /** vm.max_map_count (default 65530). */
  readonly maxMapCount?: number;
  /** Page tables in the pool (default: scaled from memory). */
  readonly pageTables?: number;
  /** Which compilation of the core (default "release"). */
  readonly build?: CoreBuild;
}

/** A simulated kernel. @public */
export class Kernel {
  readonly core: Core;
  readonly x: CoreExports;
  readonly ctx: number;
  readonly strategy: CowStrategy;
  readonly oracle: Oracle | null;
  readonly journal: Journal | null;
  readonly stats = new Stats();
  /** The tracepoints: subscribe with `trace.on(name, fn)`. */
  readonly trace = new TraceBus();
  /** Every GUP reference held by a user. */
  readonly pins = new PinRegistry();
  /** Where the reclaim clock stands. @internal */
  reclaimCursor = 1;
  /** @internal */
  readonly wpHelpers: WpHelperSet = new WpHelperSet(this);
  readonly anonVmas = new AnonVmaRegistry();
  readonly shmem = new ShmemRegistry();
  readonly processes = new Map<number, Process>();
  readonly maxMapCount: number;
  readonly maxProcesses: number;
  readonly invariantsEachStep: boolean;
  private readonly rng: Rng;
  private readonly isolationRate: number;
  private readonly isolated = new Map<number, number>();
  private nextPid = 1;
  private inSyscall = 0;
  /** Index of vmstat in core.u32, to notice faults the core took on its fast path. @internal */
  readonly vmstatIndex: number;
  /** vmstat's failed page-table allocations and injected failures when the current access began. */
  private ptFailMark = 0;
  private injectedMark = 0;

  constructor(options: KernelOptions = {}) {
    const strategy = options.strategy ?? "anon-exclusive";
    try {
      this.strategy = typeof strategy === "string" ? makeStrategy(strategy, options.knobs) : strategy;
    } catch (e) {
      throw new CowsimError("EINVAL", (e as Error).message);
    }
    // every option is checked before anything is built, with the rules scenario files use
    const checked = validateKernelOptions(options);
    if (!checked.values) throw new CowsimError("EINVAL", formatOptionProblems(checked.problems));
    const v = checked.values;
    this.core = Core.create(v.core);
    this.x = this.core.x;
    this.ctx = this.core.ctx;
    this.vmstatIndex = this.core.layout.vmstatBase >>> 2;
    this.x.set_lru_batch_size(v.lruBatch === true ? this.strategy.lruBatchSize : v.lruBatch);
    this.x.set_gup_fast_unshare(this.strategy.tracksAnonExclusive ? 1 : 0);
    // the core's strategy checks judge the built-in rules; a custom strategy — perhaps broken on
    // purpose — is for the oracle to judge, not for the debug build to stop
    if (typeof strategy !== "string") this.x.set_anon_exclusive_checks(0);
    this.isolationRate = v.isolation;
    this.rng = new Rng(v.seed);
    this.oracle = v.oracle ? new Oracle(v.explain, this.core.layout.nframes) : null;
    this.journal = this.oracle?.journal ?? null;
    this.maxMapCount = v.maxMapCount;
    this.maxProcesses = v.maxProcesses;
    this.invariantsEachStep = v.checkInvariants;
  }

  /** A new process with an empty address space (what exec() leaves). */
  spawn(): Process {
    this.checkProcessLimit("spawn");
    const mm = this.x.mm_alloc(this.ctx);
    if (mm < 0) throw new CowsimError("ENOMEM", "spawn: no page table left for the new process's PGD");
    const p = new Process(this, this.allocPid(), mm, 0);
    this.processes.set(p.pid, p);
    this.journal?.begin(p.pid, "spawn()");
    this.journal?.add("mm_alloc", () => `pid ${p.pid} starts with an empty address space`);
    return p;
  }

  /**
   * copy_process(): fork fails with EAGAIN once kernel.threads-max tasks exist
   * (`nr_threads >= max_threads`), before any memory is touched. @internal
   */
  checkProcessLimit(call: string): void {
    if (this.processes.size >= this.maxProcesses) {
      throw new CowsimError("EAGAIN", `${call}: ${this.processes.size} processes exist, the most this kernel allows (maxProcesses, like kernel.threads-max)`);
    }
  }

  /** @internal */
  allocPid(): number {
    return this.nextPid++;
  }

  process(pid: number): Process {
    const p = this.processes.get(pid);
    if (!p) throw new CowsimError("ESRCH", `no process ${pid}`);
    return p;
  }

  /**
   * Runs one user-level call as a journal step: the call is recorded, then run; afterwards the
   * invariants are checked when the kernel was asked to check them after every step.
   * @internal
   */
  syscall<T>(pid: number, call: string | (() => string), fn: () => T): T {
    if (this.inSyscall > 0) return fn();
    this.journal?.begin(pid, call);
    this.inSyscall++;
    let result: T;
    try {
      result = fn();
    } finally {
      this.inSyscall--;
    }
    if (this.invariantsEachStep) this.assertInvariants(typeof call === "string" ? call : call());
    return result;
  }

  /**
   * Starts a load or store as a journal step (a cheap one: a code and two numbers, no text
   * until explained). Returns whether it started a step, so endAccess() must follow.
   * @internal
   */
  beginAccess(p: Process, code: number, addr: number, value: number): boolean {
    if (this.inSyscall > 0) return false;
    this.journal?.beginCode(p.pid, code, addr, value);
    return this.invariantsEachStep;
  }

  /** Ends a step begun by beginAccess(): checks invariants when asked to. @internal */
  endAccess(code: number, addr: number, value: number): void {
    this.assertInvariants(code === 1 ? `read(0x${addr.toString(16)})` : `write(0x${addr.toString(16)}, ${value})`);
  }

  /** Notes the allocation failures so far, so that allocFailure() can tell what failed next. @internal */
  markAllocFailures(): void {
    const vm = this.core.u32;
    const b = this.vmstatIndex;
    this.ptFailMark = vm[b + C.PGTABLE_ALLOC_FAIL]!;
    this.injectedMark = vm[b + C.FAIL_INJECTED_FRAME]! + vm[b + C.FAIL_INJECTED_PGTABLE]! + vm[b + C.FAIL_INJECTED_SWAP_SLOT]!;
  }

  /**
   * What made an allocation fail since markAllocFailures(): an injected failure (Linux's
   * should_fail_alloc_page() fails before the allocator would reclaim), a page table (reclaim
   * frees frames, never tables), or a frame. @internal
   */
  allocFailure(): "injected" | "page-table" | "frame" {
    const vm = this.core.u32;
    const b = this.vmstatIndex;
    const injected = vm[b + C.FAIL_INJECTED_FRAME]! + vm[b + C.FAIL_INJECTED_PGTABLE]! + vm[b + C.FAIL_INJECTED_SWAP_SLOT]!;
    if (injected !== this.injectedMark) return "injected";
    return vm[b + C.PGTABLE_ALLOC_FAIL] !== this.ptFailMark ? "page-table" : "frame";
  }

  /** Direct reclaim after a failed allocation, when reclaim can help; returns the frames freed. @internal */
  reclaimAfterFailure(): number {
    return this.allocFailure() === "frame" ? this.reclaim() : 0;
  }

  /** Every counter: faults by kind, reuses, copies, COW verdicts, core events. */
  counters(): Counters {
    return this.stats.snapshot(this.core, this.oracle);
  }

  /** The oracle's findings so far (missed, unnecessary and wrong COWs), each explained. */
  get findings(): readonly Finding[] {
    return this.oracle?.findings ?? [];
  }

  /** Checks every invariant now; returns the violations (none when all hold). */
  checkInvariants(): InvariantViolation[] {
    return checkInvariants(this);
  }

  /**
   * Pages whose contents already differ from what their process must see — missed COWs nobody
   * has read yet (empty without the oracle).
   */
  latentMissedCows(): LatentMissedCow[] {
    return latentMissedCows(this);
  }

  /** Throws an {@link InvariantError} when an invariant does not hold. */
  assertInvariants(after = "now"): void {
    const v = this.checkInvariants();
    if (v.length) throw new InvariantError(after, v);
  }

  /**
   * Every frame that is not free, with what holds it (mappings, the swap cache, LRU batches,
   * isolation, GUP users, shmem files): after every process exited, what is left and why.
   */
  heldFrames(): HeldFrame[] {
    return heldFrames(this);
  }

  /** Every swap slot in use, with its swap count and swap-cache frame. */
  usedSwapSlots(): UsedSwapSlot[] {
    return usedSwapSlots(this);
  }

  /**
   * Frees the swap-cache folios no swap entry needs any more and nothing maps — what reclaim
   * would free first. (A COW or unshare copy can leave one behind, as in Linux.) Returns how
   * many left the swap cache.
   */
  freeSwapCache(): number {
    const x = this.x;
    let n = 0;
    for (let pfn = 1; pfn < this.core.layout.nframes; pfn++) {
      if (!x.page_test_flag(pfn, C.PG_swapcache) || x.folio_is_mapped(pfn)) continue;
      if (x.folio_free_swap(pfn) === 1) n++;
    }
    return n;
  }

  /**
   * Fault injection (Linux's fail_page_alloc, failslab, fail-nth): make the nth allocation of
   * frames, page tables or swap slots from now fail — or each with a probability — taking the
   * path a real exhaustion takes, to prove error paths. See {@link FailureInjection}.
   */
  injectFailure(kind: FailKind, how: FailureInjection): void {
    this.core.injectFailure(kind, how);
  }

  /** Disarms fault injection for `kind`, or for every kind. */
  clearInjection(kind?: FailKind): void {
    this.core.clearInjection(kind);
  }

  /** lru_add_drain(): empties the per-CPU LRU batch, dropping its references. */
  drainLru(): number {
    return this.x.lru_add_drain(this.ctx);
  }

  /** Frames not free: mapped, cached, pinned, batched. */
  get usedFrames(): number {
    return this.core.layout.nframes - 1 - this.core.freePages();
  }

  // ---- transient references ------------------------------------------------------------------

  /**
   * isolate_lru_page(): a migration or compaction scan isolates the page mapped at `addr` of
   * `pid`, holding a reference until putback(). Returns the pfn.
   */
  isolate(pid: number, addr: number): number {
    const pfn = this.process(pid).pfnAt(addr);
    if (pfn === null || pfn === 0) throw new CowsimError("EFAULT", `pid ${pid} maps no page at 0x${addr.toString(16)}`);
    const folio = this.x.page_folio(pfn) >>> 0;
    this.takeIsolation(folio);
    return folio;
  }

  /** putback_lru_page(): releases an isolation reference. */
  putback(pfn: number): void {
    if (!this.isolated.has(pfn)) throw new CowsimError("EINVAL", `pfn ${pfn} is not isolated`);
    this.putbackIsolated(pfn);
  }

  private takeIsolation(folio: number): void {
    this.x.folio_ref_add(folio, 1);
    this.x.page_clear_flag(folio, C.PG_lru);
    this.x.page_set_flag(folio, C.PG_isolated);
    this.isolated.set(folio, (this.isolated.get(folio) ?? 0) + 1);
    this.stats.inc(Stat.isolations);
  }

  /** With transient.isolation, decides whether a fault finds its folio isolated. @internal */
  maybeIsolate(folio: number): boolean {
    if (this.isolationRate === 0 || this.rng.next() >= this.isolationRate) return false;
    this.takeIsolation(folio);
    this.journal?.add("isolate_lru_page", () => `a compaction scan holds a reference to pfn ${folio} during the fault`, [folio]);
    return true;
  }

  /** @internal */
  putbackIsolated(folio: number): void {
    const n = this.isolated.get(folio) ?? 0;
    if (n <= 1) this.isolated.delete(folio); else this.isolated.set(folio, n - 1);
    if (n <= 1) {
      this.x.page_clear_flag(folio, C.PG_isolated);
      this.x.page_set_flag(folio, C.PG_lru);
    }
    this.x.folio_put_refs(folio, 1);
  }

  /** Folios currently isolated. @internal */
  isolatedFolios(): number[] {
    return [...this.isolated.keys()];
  }

  /** References held outside the page tables by users of GUP (pins, pipe buffers), per folio. @internal */
  extraRefs(): Map<number, number> {
    return this.pins.heldRefs(this);
  }

  /** References the kernel knows to be transient (isolation), per folio. @internal */
  transientRefs(folio: number): number {
    return this.isolated.get(folio) ?? 0;
  }

  // ---- hooks later layers fill in --------------------------------------------------------------

  /** Snapshot references (pipe buffers …) that must keep seeing a folio's old contents. @internal */
  snapshotRefs(folio: number): number {
    let n = 0;
    for (const pin of this.pins.active.values()) {
      if (pin.contract !== "snapshot") continue;
      for (const pfn of pin.pfns) if (this.x.page_folio(pfn) === folio) n++;
    }
    return n;
  }

  /** folio_free_swap() @internal */
  folioFreeSwap(folio: number): boolean {
    return this.x.folio_free_swap(folio) === 1;
  }

  /** A swap slot whose last swap PTE went away while its folio sits in the swap cache. @internal */
  swapCacheOrphan(slot: number, pfn: number): void {
    swapCacheOrphan(this, slot, pfn);
  }

  /**
   * Reclaim under memory pressure, before a fault or fork gives up with ENOMEM: swaps out
   * anonymous pages to free frames. Returns the frames freed (0 without swap).
   */
  reclaim(want?: number): number {
    if (want !== undefined && (!Number.isSafeInteger(want) || want < 1)) {
      throw new CowsimError("EINVAL", `reclaim: the frames to free must be a positive integer, not ${String(want)}`);
    }
    return reclaim(this, want);
  }
}

/** Creates a simulated kernel. @public */
export function createKernel(options: KernelOptions = {}): Kernel {
  return new Kernel(options);
}
