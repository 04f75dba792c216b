/**
 * The kernel layer's machine-wide state: the Wasm core, the COW strategy, the processes, the
 * anon_vma and shmem registries, the GUP references held, the counters — and the tracepoints
 * every decision is emitted on. It knows no observer: the oracle, the journal and the judges
 * subscribe to its events from the facade (src/kernel.ts), which is the public way in.
 * @packageDocumentation
 */
import { Core, C, setProtocolBreaks, type CoreOps, type CoreRecord, type FailKind, type FailureInjection } from "../core/index.js";
import type { CoreBuild, CoreWasm } from "../core/wasm.js";
import { CowsimError, InvariantError } from "../errno.js";
import { defineStrategy, forkCopiesInCore, isBuiltinStrategy, makeStrategy, swapinCoreRule, wpCoreRule, type StrategyId } from "../policy/index.js";
import type { CowStrategy } from "../policy/strategy.js";
import { TraceBus, type PinView } from "../trace/events.js";
import type { KernelView, ProcessView } from "../trace/view.js";
import {
  checkInvariants, heldFrames, usedSwapSlots, type InvariantViolation, type HeldFrame, type UsedSwapSlot,
} from "./invariants.js";
import { AnonVmaRegistry } from "./rmap.js";
import { ShmemRegistry } from "./shmem.js";
import { Stats, Stat, type Counters } from "./stats.js";
import { MmProcess } from "./process.js";
import { WpHelperSet, swapRuleBits, wpRuleBits } from "./memory.js";
import { WaitQueues } from "./wait.js";
import type { UserfaultfdCtx } from "./userfaultfd.js";
import { PinRegistry } from "./gup.js";
import { reclaim, swapCacheOrphan } from "./swap.js";
import { memory_failure, type MemoryFailureOutcome } from "./memory_failure.js";
import type { DevPagemap } from "./migrate_device.js";
import { validateKernelOptions, formatOptionProblems } from "./options.js";
import type { ThpOptions, ThpPolicy, ThpSize } from "./huge_memory.js";
import { mthp_stats, split_huge_pages_pid, deferred_split_scan, type MthpStats, type SplitHugePagesResult } from "./large_folio.js";
import { Rng } from "../util/rng.js";
import { khugepaged_scan } from "./khugepaged.js";

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
  /**
   * Migration as compaction does it (MR_COMPACTION): the probability (0…1) that the folio a
   * write-protect fault is about to decide on is migrated first. Migration must be invisible:
   * the contents, the pins and — with readable-exclusive entries — PageAnonExclusive survive.
   */
  readonly migration?: number;
}

/** Options of createKernel(). @public */
export interface KernelOptions {
  /** The COW strategy: a built-in or registered id (default "anon-exclusive") or a strategy object. */
  readonly strategy?: StrategyId | string | CowStrategy;
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
  /**
   * The transparent-hugepage policy of /sys/kernel/mm/transparent_hugepage (default Linux
   * 6.12's: enabled "always", 2M "inherit", every mTHP size "never", the huge zero page used).
   * It decides which folio orders a VMA is eligible for (`Process.smaps()`'s `thpEligible`).
   */
  readonly thp?: ThpOptions;
  /**
   * The compiled core, when the embedding program has it: a WebAssembly.Module, its bytes or a
   * URL. Default: what loadCore() loaded, or (in Node) the package's own file.
   */
  readonly wasm?: CoreWasm;
}

/** Something a process holds that goes when it exits (its GUP users, as its files would). */
export interface Releasable {
  release(): void;
}

/** The kernel layer of one simulated machine. */
export class MmKernel implements KernelView {
  readonly core: Core;
  /** The core's typed operations: how the kernel layer, and judges reading the machine, reach the core. */
  readonly ops: CoreOps;
  readonly strategy: CowStrategy;
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
  /** What faults wait on. */
  readonly waits = new WaitQueues();
  /** Open userfaultfds (userfaultfd(2) and the children fork gave them). */
  readonly userfaultfds = new Set<UserfaultfdCtx>();
  private lastUserfaultfd = 0;
  /** The id of the next userfaultfd. @internal */
  nextUserfaultfdId(): number {
    return ++this.lastUserfaultfd;
  }
  /** Folios locked by lockFolio(): an outside actor's lock and reference. */
  private readonly lockedByOthers = new Set<number>();
  /** Frames memory_failure() took, with the references it keeps on them: lost to the allocator. @internal */
  readonly hwpoisoned = new Map<number, number>();
  /** MEMORY_DEVICE_PRIVATE pgmaps by id (page->pgmap), made by memremap_pages(). @internal */
  readonly pgmaps = new Map<number, DevPagemap>();
  readonly processes = new Map<number, MmProcess>();
  readonly maxMapCount: number;
  readonly maxProcesses: number;
  /** The THP policy (/sys/kernel/mm/transparent_hugepage), resolved into its order masks. */
  readonly thp: ThpPolicy;
  /** huge_zero_folio: allocated on its first use, kept for good (0: not yet). @internal */
  hugeZeroFolio = 0;
  private readonly stepInvariants: boolean;
  /**
   * Whether invariants are checked after every step: when asked, except while GUP-fast worker
   * threads run (their pins change counts under any check); their pool checks after every round.
   */
  get invariantsEachStep(): boolean {
    return this.stepInvariants && !this.pins.pinnersRunning;
  }
  /** Whether the options asked for the oracle (the facade makes it). */
  readonly wantsOracle: boolean;
  readonly wantsJournal: boolean;
  private readonly rng: Rng;
  private readonly isolationRate: number;
  private readonly migrationRate: number;
  private readonly isolated = new Map<number, number>();
  private nextPid = 1;
  private inSyscall = 0;
  /** Why the kernel cannot be saved now, or null: a call under way, accesses that wait. @internal */
  snapshotProblem(): string | null {
    if (this.inSyscall > 0) return "a call is under way (snapshot() from a tracepoint's subscriber)";
    if (this.pins.sharedRecords) return "GUP-fast worker threads are attached (close() their pool first: a snapshot cannot hold threads)";
    if (this.migrating.size > 0) return `${this.migrating.size} folio${this.migrating.size > 1 ? "s are" : " is"} under migration (finish() the migration first)`;
    if (this.userfaultfds.size > 0) return `${this.userfaultfds.size} userfaultfd${this.userfaultfds.size > 1 ? "s are" : " is"} open (close() them first: a snapshot cannot hold their handlers)`;
    const waiting = this.waits.waiting();
    if (waiting > 0) return `${waiting} access${waiting > 1 ? "es wait" : " waits"} to be resumed (a snapshot cannot hold the program's Access objects)`;
    return null;
  }

  /** Index of vmstat in core.u32, to notice faults the core took on its fast path. @internal */
  readonly vmstatIndex: number;
  /** vmstat's failed page-table allocations and injected failures when the current access began. */
  private ptFailMark = 0;
  private injectedMark = 0;
  /** The step event, reused (events are valid during the call only). */
  private readonly stepEvent = { pid: 0, call: null as string | (() => string) | null, code: 0, addr: 0, value: 0 };

  constructor(options: KernelOptions = {}) {
    const strategy = options.strategy ?? "anon-exclusive";
    if (typeof strategy !== "string" && options.knobs !== undefined && Object.keys(options.knobs).length > 0) {
      throw new CowsimError("EINVAL", "knobs go with a strategy named by id; a strategy object has its knobs already");
    }
    try {
      this.strategy = typeof strategy === "string" ? makeStrategy(strategy, options.knobs) : defineStrategy(strategy);
    } catch (e) {
      if (e instanceof CowsimError) throw e;
      throw new CowsimError("EINVAL", (e as Error).message);
    }
    // every option is checked before anything is built, with the rules scenario files use
    const checked = validateKernelOptions(options);
    if (!checked.values) throw new CowsimError("EINVAL", formatOptionProblems(checked.problems));
    const v = checked.values;
    this.core = Core.create(v.core);
    this.ops = this.core.ops;
    this.vmstatIndex = this.core.layout.vmstatBase >>> 2;
    this.ops.setLruBatchSize(v.lruBatch === true ? this.strategy.lruBatchSize : v.lruBatch);
    this.ops.setGupFastUnshare(this.strategy.tracksAnonExclusive);
    const rule = wpCoreRule(this.strategy);
    this.ops.setWpRule(rule === null ? 0 : wpRuleBits(rule));
    const swapRule = swapinCoreRule(this.strategy);
    this.ops.setSwapRule(swapRule === null ? 0 : swapRuleBits(swapRule));
    // the core's strategy checks judge the built-in rules; a custom strategy — perhaps broken on
    // purpose — is for the oracle to judge, not for the debug build to stop
    if (!isBuiltinStrategy(this.strategy)) this.ops.setAnonExclusiveChecks(false);
    const proto = this.strategy.gupFastProtocol;
    if (proto) {
      const breaks = (proto.pteRecheck ? 0 : C.BREAK_PTE_RECHECK) | (proto.unmapClear ? 0 : C.BREAK_UNMAP_CLEAR) |
        (proto.writeProtectSeq ? 0 : C.BREAK_WRITE_PROTECT_SEQ);
      // a protocol broken on purpose breaks the debug build's promises too: the oracle judges
      if (breaks) {
        setProtocolBreaks(this.core, breaks);
        this.ops.setAnonExclusiveChecks(false);
      }
    }
    this.isolationRate = v.isolation;
    this.migrationRate = v.migration;
    this.rng = new Rng(v.seed);
    this.wantsOracle = v.oracle;
    this.wantsJournal = v.oracle && v.explain;
    this.maxMapCount = v.maxMapCount;
    this.thp = v.thp;
    this.maxProcesses = v.maxProcesses;
    this.stepInvariants = v.checkInvariants;
  }

  /** Makes the object of a new process; the facade's processes have the GUP users' calls too. */
  protected createProcess(pid: number, mm: number, ppid: number): MmProcess {
    return new MmProcess(this, pid, mm, ppid);
  }

  /** A new process with an empty address space (what exec() leaves). */
  spawn(): MmProcess {
    this.checkProcessLimit("spawn");
    const mm = this.ops.tryMmAlloc();
    if (mm === null) throw new CowsimError("ENOMEM", "spawn: no page table left for the new process's PGD");
    const p = this.createProcess(this.allocPid(), mm, 0);
    this.processes.set(p.pid, p);
    this.beginStep(p.pid, "spawn()");
    if (this.trace.points.mm_alloc.listening) this.trace.points.mm_alloc.emit({ pid: p.pid });
    return p;
  }

  /** fork's child: a process object for `mm`, not yet in the process table. @internal */
  newChild(mm: number, ppid: number): MmProcess {
    return this.createProcess(this.allocPid(), mm, ppid);
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

  private allocPid(): number {
    return this.nextPid++;
  }

  process(pid: number): MmProcess {
    const p = this.processes.get(pid);
    if (!p) throw new CowsimError("ESRCH", `no process ${pid}`);
    return p;
  }

  private beginStep(pid: number, call: string | (() => string)): void {
    if (!this.trace.points.step.listening) return;
    const e = this.stepEvent;
    e.pid = pid;
    e.call = call;
    e.code = 0;
    e.addr = 0;
    e.value = 0;
    this.trace.points.step.emit(e);
  }

  /**
   * Runs one user-level call as a step: the step is emitted, the call runs; afterwards the
   * invariants are checked when the kernel was asked to check them after every step.
   * @internal
   */
  syscall<T>(pid: number, call: string | (() => string), fn: () => T): T {
    if (this.inSyscall > 0) return fn();
    this.beginStep(pid, call);
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
   * Starts a load or store as a step (a cheap one: a code and two numbers, no text until
   * explained). Returns whether endAccess() must follow.
   * @internal
   */
  beginAccess(pid: number, code: number, addr: number, value: number): boolean {
    if (this.inSyscall > 0) return false;
    if (this.trace.points.step.listening) {
      const e = this.stepEvent;
      e.pid = pid;
      e.call = null;
      e.code = code;
      e.addr = addr;
      e.value = value;
      this.trace.points.step.emit(e);
    }
    return this.invariantsEachStep;
  }

  /**
   * Whether each access is a step someone observes as it happens (an immediate step subscriber,
   * invariants after each): no batching then. @internal
   */
  get accessStepsObserved(): boolean {
    return this.inSyscall === 0 && (this.trace.points.step.immediate || this.invariantsEachStep);
  }

  /** Whether each access of a run is a step of its own for someone (delivered after the run's calls, in order). @internal */
  get accessStepsDelivered(): boolean {
    return this.inSyscall === 0 && this.trace.points.step.listening;
  }

  /** Ends a step begun by beginAccess(): checks invariants when asked to. @internal */
  endAccess(code: number, addr: number, value: number): void {
    this.assertInvariants(code === 1 ? `read(0x${addr.toString(16)})` : `write(0x${addr.toString(16)}, ${value})`);
  }

  /** Every counter of the kernel layer: faults by kind, reuses, copies, core events. */
  counters(): Counters {
    return this.stats.snapshot(this.core, null);
  }

  /**
   * One counter of {@link counters}, by name, without making the whole record (a few µs each):
   * for a program that samples one as it runs. Undefined for a name counters() does not have.
   */
  counter(name: string): number | undefined {
    return this.stats.value(this.core, null, name);
  }

  /**
   * Gives the simulated machine back for the next kernel of the same size (Core.release()): for
   * a runner that makes kernels by the thousand. Nothing may use the kernel afterwards.
   * @internal
   */
  release(): void {
    this.core.release();
  }

  /** Checks every invariant now; returns the violations (none when all hold). */
  checkInvariants(): InvariantViolation[] {
    return checkInvariants(this);
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
    const ops = this.ops;
    let n = 0;
    for (let pfn = 1; pfn < this.core.layout.nframes; pfn++) {
      if (!ops.pageTestFlag(pfn, C.PG_swapcache) || ops.folioIsMapped(pfn)) continue;
      if (ops.folioFreeSwap(pfn)) n++;
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

  /**
   * One pass of khugepaged (mm/khugepaged.c) over every process: aligned 2 MiB ranges of
   * THP-eligible VMAs are collapsed into PMD-mapped THPs within khugepaged's limits. Returns
   * the THPs made.
   */
  khugepaged(): number {
    return khugepaged_scan(this);
  }

  /** lru_add_drain(): empties the per-CPU LRU batch, dropping its references. */
  drainLru(): number {
    return this.ops.lruAddDrain();
  }

  /** Frames not free: mapped, cached, pinned, batched. */
  get usedFrames(): number {
    return this.core.layout.nframes - 1 - this.core.freePages();
  }

  // ---- allocation failures -------------------------------------------------------------------

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

  // ---- folio locks held by other actors --------------------------------------------------------

  /**
   * memory_failure(): the hardware reports frame `pfn` poisoned, as a machine check found
   * asynchronously (no MF_ACTION_REQUIRED: no process is sent SIGBUS now; each gets it when it
   * touches the page). PG_hwpoison is set and counted whatever the outcome; an anonymous page
   * is unmapped, every mapping becoming a hwpoison entry, and its frame is never freed. EINVAL
   * (nothing changed) for a frame outside the machine, a free frame or a shmem page.
   */
  memoryFailure(pfn: number): MemoryFailureOutcome {
    return this.syscall(0, () => `memory_failure(${pfn})`, () => memory_failure(this, pfn, 0, null));
  }

  /**
   * memoryFailure() of the frame behind `addr` of `pid`: mapped there, or in the swap cache for
   * the swap entry there. EFAULT (nothing changed) when there is none.
   */
  memoryFailureAt(pid: number, addr: number): MemoryFailureOutcome {
    const p = this.process(pid);
    const pfn = p.pfnAt(addr) ?? p.folioAt(addr);
    if (pfn === null) throw new CowsimError("EFAULT", `pid ${pid} has no frame behind 0x${addr.toString(16)} (neither mapped nor in the swap cache)`);
    return this.memoryFailure(pfn);
  }

  /**
   * folio_get() and folio_lock() of frame `pfn`'s folio by an actor outside the simulated
   * processes — I/O, migration, a device — which, as every lock holder in the kernel does, keeps
   * a reference while it holds the lock: a fault that needs the lock (do_swap_page()'s
   * folio_lock_or_retry()) waits until unlockFolio(); reclaim and do_wp_page()'s trylock pass it by.
   */
  lockFolio(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn <= 0 || pfn >= this.core.layout.nframes || this.ops.pageTestFlag(pfn, C.PG_buddy)) {
      throw new CowsimError("EINVAL", `lockFolio: pfn ${pfn} is not an allocated frame`);
    }
    const folio = this.ops.pageFolio(pfn);
    if (this.ops.pageTestFlag(folio, C.PG_locked)) throw new CowsimError("EBUSY", `lockFolio: pfn ${folio} is locked already`);
    this.ops.folioRefAdd(folio, 1);
    this.ops.pageSetFlag(folio, C.PG_locked);
    this.lockedByOthers.add(folio);
    if (this.trace.points.folio_lock.listening) this.trace.points.folio_lock.emit({ pfn: folio });
  }

  /**
   * folio_unlock() and folio_put(): the lock goes, the faults waiting for it may retry
   * (folio_wake_bit()), and the holder's reference goes (the folio is freed if it was the last).
   */
  unlockFolio(pfn: number): void {
    const folio = Number.isInteger(pfn) && pfn > 0 && pfn < this.core.layout.nframes ? this.ops.pageFolio(pfn) : -1;
    if (!this.lockedByOthers.has(folio)) throw new CowsimError("EINVAL", `unlockFolio: pfn ${pfn} is not locked (by lockFolio())`);
    this.lockedByOthers.delete(folio);
    this.ops.pageClearFlag(folio, C.PG_locked);
    const waiters = this.waits.folio(folio).wake();
    if (this.trace.points.folio_unlock.listening) this.trace.points.folio_unlock.emit({ pfn: folio, waiters });
    this.ops.folioPutRefs(folio, 1);
  }

  /** Folios lockFolio() locked, each holding one reference. @internal */
  lockedFolios(): Iterable<number> {
    return this.lockedByOthers;
  }

  /** Whether frame `pfn`'s folio is locked (folio_test_locked()). */
  folioLocked(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn > 0 && pfn < this.core.layout.nframes && this.ops.pageTestFlag(this.ops.pageFolio(pfn), C.PG_locked);
  }

  // ---- transient references ------------------------------------------------------------------

  /**
   * isolate_lru_page(): a migration or compaction scan isolates the page mapped at `addr` of
   * `pid`, holding a reference until putback(). Returns the pfn.
   */
  isolate(pid: number, addr: number): number {
    const pfn = this.process(pid).pfnAt(addr);
    if (pfn === null || pfn === 0) throw new CowsimError("EFAULT", `pid ${pid} maps no page at 0x${addr.toString(16)}`);
    const folio = this.ops.pageFolio(pfn);
    this.takeIsolation(folio);
    if (this.trace.points.isolate_lru_page.listening) this.trace.points.isolate_lru_page.emit({ pfn: folio, transient: false });
    return folio;
  }

  /**
   * lockFolio() of the folio behind `addr` of `pid` — mapped there, or in the swap cache for the
   * swap entry there (a swap-in or a migration in flight holds such a lock). Returns the pfn.
   */
  lockFolioAt(pid: number, addr: number): number {
    const folio = this.process(pid).folioAt(addr);
    if (folio === null) throw new CowsimError("EFAULT", `pid ${pid} has no folio at 0x${addr.toString(16)} (neither mapped nor in the swap cache)`);
    this.lockFolio(folio);
    return folio;
  }

  /** putback_lru_page(): releases an isolation reference. */
  putback(pfn: number): void {
    if (!this.isolated.has(pfn)) throw new CowsimError("EINVAL", `pfn ${pfn} is not isolated`);
    this.putbackIsolated(pfn);
    if (this.trace.points.putback_lru_page.listening) this.trace.points.putback_lru_page.emit({ pfn });
  }

  private takeIsolation(folio: number): void {
    this.ops.folioRefAdd(folio, 1);
    this.ops.pageClearFlag(folio, C.PG_lru);
    this.ops.pageSetFlag(folio, C.PG_isolated);
    this.isolated.set(folio, (this.isolated.get(folio) ?? 0) + 1);
    this.stats.inc(Stat.isolations);
  }

  /**
   * Whether the core may decide write-protect faults itself (FAST_WP): nobody must see each
   * decision as it happens — no immediate do_wp_page / wp_page_copy subscriber (a trace, the
   * reference judge; the oracle and the journal take them from the trace log), no transient
   * isolation or migration drawn at a fault. @internal
   */
  wpInCore(): boolean {
    const pts = this.trace.points;
    return this.isolationRate === 0 && this.migrationRate === 0 && !pts.do_wp_page.immediate && !pts.wp_page_copy.immediate;
  }

  /**
   * Whether the core may take swap-ins itself (FAST_SWAP): nobody subscribes to do_swap_page,
   * at once or from the trace log (the core logs no swap-in). @internal
   */
  swapinInCore(): boolean {
    return !this.trace.points.do_swap_page.listening;
  }

  /**
   * Whether fork's walk may copy the possibly pinned pages the strategy defers itself
   * (COPY_EARLY_IN_CORE): a built-in strategy whose forkPinned() always copies, and nobody who
   * subscribes to copy_present_page. @internal
   */
  forkCopyInCore(): boolean {
    return forkCopiesInCore(this.strategy) && !this.trace.points.copy_present_page.listening;
  }

  /** With transient.migration, decides whether compaction migrates the folio a fault is at first. @internal */
  maybeMigrate(): boolean {
    return this.migrationRate !== 0 && this.rng.next() < this.migrationRate;
  }

  /** With transient.isolation, decides whether a fault finds its folio isolated. @internal */
  maybeIsolate(folio: number): boolean {
    if (this.isolationRate === 0 || this.rng.next() >= this.isolationRate) return false;
    this.takeIsolation(folio);
    if (this.trace.points.isolate_lru_page.listening) this.trace.points.isolate_lru_page.emit({ pfn: folio, transient: true });
    return true;
  }

  /** @internal */
  putbackIsolated(folio: number): void {
    const n = this.isolated.get(folio) ?? 0;
    if (n <= 1) this.isolated.delete(folio); else this.isolated.set(folio, n - 1);
    if (n <= 1) {
      this.ops.pageClearFlag(folio, C.PG_isolated);
      this.ops.pageSetFlag(folio, C.PG_lru);
    }
    this.ops.folioPutRefs(folio, 1);
  }

  /**
   * folio_isolate_lru() for migrate_pages(): a folio on the LRU leaves it, the migration holding
   * a reference; false (nothing changed) when it is not on the LRU (isolated already, waiting in
   * a batch). @internal
   */
  isolateLru(folio: number): boolean {
    if (!this.ops.pageTestFlag(folio, C.PG_lru)) return false;
    this.ops.folioRefAdd(folio, 1);
    this.ops.pageClearFlag(folio, C.PG_lru);
    this.ops.pageSetFlag(folio, C.PG_isolated);
    this.isolated.set(folio, (this.isolated.get(folio) ?? 0) + 1);
    return true;
  }

  /** The isolation reference of a migrated folio goes, without putback (the last one frees it). @internal */
  dropIsolation(folio: number): void {
    const n = this.isolated.get(folio) ?? 0;
    if (n <= 1) this.isolated.delete(folio); else this.isolated.set(folio, n - 1);
    if (n <= 1) this.ops.pageClearFlag(folio, C.PG_isolated);
    this.ops.folioPutRefs(folio, 1);
  }

  /** Folios under a migration begun and not finished: source pfn → destination pfn. @internal */
  readonly migrating = new Map<number, number>();

  /** Folios currently isolated. @internal */
  isolatedFolios(): number[] {
    return [...this.isolated.keys()];
  }

  /** References the kernel knows to be transient (isolation), per folio. @internal */
  transientRefs(folio: number): number {
    return this.isolated.get(folio) ?? 0;
  }

  /**
   * Snapshot references (pipe buffers …) that must keep seeing a folio's old contents — of one
   * `page` of it, when given (a large folio's pages are copied one at a time). @internal
   */
  snapshotRefs(folio: number, page?: number): number {
    if (this.pins.active.size === 0) return 0;
    let n = 0;
    for (const pin of this.pins.active.values()) {
      if (pin.contract !== "snapshot") continue;
      for (const pfn of pin.pfns) if (page !== undefined ? pfn === page : this.ops.pageFolio(pfn) === folio) n++;
    }
    return n;
  }

  /** folio_free_swap() @internal */
  folioFreeSwap(folio: number): boolean {
    return this.ops.folioFreeSwap(folio);
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

  // ---- large folios ----------------------------------------------------------------------------

  /** /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats, every size. */
  mthpStats(): Record<ThpSize, MthpStats> {
    return mthp_stats(this);
  }

  /**
   * The debugfs split_huge_pages interface ("<pid>,<start>,<end>"): split_folio() of every
   * anonymous large folio the process maps by PTEs in [start, end).
   */
  splitHugePages(pid: number, start: number, end: number): SplitHugePagesResult {
    return split_huge_pages_pid(this, this.process(pid), start, end);
  }

  /** One pass of the deferred split shrinker (deferred_split_scan()); the frames it freed. */
  deferredSplitScan(): number {
    return deferred_split_scan(this);
  }

  // ---- the view subscribers read (KernelView) ------------------------------------------------

  pagemap(mm: number, start: number, end: number): CoreRecord[] {
    return this.core.pagemap(mm, start, end);
  }

  processViews(): Iterable<ProcessView> {
    return this.processes.values();
  }

  pinViews(): Iterable<PinView> {
    return this.pins.sharedRecords ? this.pins.all(this) : this.pins.active.values();
  }
}

export type { StrategyId };
