/**
 * The kernel facade: the one public way into a simulated kernel. It is the kernel layer
 * (src/mm) with what sits on it — the GUP users a process makes, the oracle and the journal
 * subscribed to the kernel's tracepoints — and the embedding API: events, the latent missed
 * COWs the oracle and the page tables show together.
 * @packageDocumentation
 */
import { C, Core, describeCore, abiFingerprint } from "./core/index.js";
import { MmKernel, type KernelOptions } from "./mm/kernel.js";
import { MmProcess } from "./mm/process.js";
import type { Counters } from "./mm/stats.js";
import { hex, VM_SHARED } from "./mm/vma.js";
import { Pipe, FixedBuffers, MemoryRegion, DirectIo, UserPages, GupFastRace } from "./users/users.js";
import { Dmirror } from "./users/dmirror.js";
import { Oracle, type Finding } from "./oracle/oracle.js";
import type { Journal } from "./oracle/journal.js";
import { CowsimError } from "./errno.js";
import { TraceBus, type AnyListener, type SubscribeOptions, type TraceEvents, type TraceName } from "./trace/events.js";
import { decodeGraph, encodeGraph, GraphError, SKIP, type EncodedGraph } from "./snapshot/codec.js";
import { readSnapshot, writeSnapshot, SnapshotFormatError, SNAPSHOT_VERSION, type SnapshotParts } from "./snapshot/format.js";
import { STATE_CLASSES } from "./snapshot/classes.js";
import { makeStrategy, strategyInfo } from "./policy/index.js";
import { PAGE_SIZE } from "./mm/uapi.js";

/** A page whose contents differ from what its process must see. @public */
export interface LatentMissedCow {
  readonly pid: number;
  readonly address: number;
  readonly pfn: number;
  readonly holds: number;
  readonly expected: number;
}

/** One event of {@link Kernel.events}: a tracepoint's name and a copy of its event. @public */
export type KernelEvent = { [K in TraceName]: { readonly name: K; readonly event: TraceEvents[K] } }[TraceName];

/** A process of a simulated kernel: its syscalls, its loads and stores, and the GUP users it makes. @public */
export class Process extends MmProcess {
  override fork(): Process {
    return super.fork() as Process;
  }

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
   * open("/dev/hmm_dmirror0") (lib/test_hmm.c): a simulated device mirroring this process, with
   * `devicePages` pages of device-private memory taken from the machine's free frames for the
   * device's life. ENOMEM (nothing changed) when fewer are free.
   */
  openDmirror(devicePages = 16): Dmirror {
    return this.kernel.syscall(this.pid, () => `open(/dev/hmm_dmirror0, ${devicePages} device pages)`,
      () => { this.live(); return new Dmirror(this.kernel, this, devicePages); });
  }

  /**
   * get_user_pages() / pin_user_pages() with explicit FOLL_* flags; `fast` (the default) goes
   * through GUP-fast first as the *_fast() variants do.
   */
  pinUserPages(addr: number, pages: number, flags: number, fast = true): UserPages {
    return this.kernel.syscall(this.pid, () => `pin_user_pages${fast ? "_fast" : ""}(${hex(addr)}, ${pages}, 0x${(flags >>> 0).toString(16)})`,
      () => { this.live(); return new UserPages(this.kernel, this, addr, pages, flags, fast); });
  }

  /**
   * GUP-fast of the page at `addr` (FOLL_FAST_ONLY), its first half: the PTE read and the page
   * grabbed (B1–B3). end() on the result runs the re-check (B4, B5) and returns the page pinned,
   * or null when GUP-fast backed off. Whatever runs between the two is what GUP-fast races with.
   */
  gupFastBegin(addr: number, flags: number): GupFastRace {
    return this.kernel.syscall(this.pid, () => `gup_fast begin(${hex(addr)}, 0x${(flags >>> 0).toString(16)})`,
      () => { this.live(); return new GupFastRace(this.kernel, this, addr, flags); });
  }
}

/** A simulated kernel, with the oracle that judges it. @public */
export class Kernel extends MmKernel {
  /** The oracle (null with `oracle: false`). */
  readonly oracle: Oracle | null;
  /** The journal behind the oracle's explanations (null without `explain`). */
  readonly journal: Journal | null;

  constructor(options: KernelOptions = {}) {
    super(options);
    this.oracle = this.wantsOracle ? new Oracle(this.wantsJournal, this.core.layout.nframes) : null;
    this.journal = this.oracle?.journal ?? null;
    this.oracle?.attach(this.trace);
  }

  /** Gives the machine and the journal back for the next kernel; nothing may use this one afterwards. @internal */
  override release(): void {
    super.release();
    this.journal?.giveBack();
  }

  protected override createProcess(pid: number, mm: number, ppid: number): Process {
    return new Process(this, pid, mm, ppid);
  }

  override spawn(): Process {
    return super.spawn() as Process;
  }

  override process(pid: number): Process {
    return super.process(pid) as Process;
  }

  /** Every counter: faults by kind, reuses, copies, the oracle's verdicts, core events. */
  override counters(): Counters {
    return this.stats.snapshot(this.core, this.oracle);
  }

  /** One counter of {@link counters}, by name, without making the whole record. Undefined for an unknown name. */
  override counter(name: string): number | undefined {
    return this.stats.value(this.core, this.oracle, name);
  }

  /** The oracle's findings so far (missed, unnecessary and wrong COWs), each explained. */
  get findings(): readonly Finding[] {
    return this.oracle?.findings ?? [];
  }

  /**
   * Pages whose contents already differ from what their process must see — missed COWs nobody
   * has read yet (empty without the oracle). Not an invariant of the simulator (a flawed
   * strategy makes these) but a judgement of the strategy, like the findings.
   */
  latentMissedCows(): LatentMissedCow[] {
    const out: LatentMissedCow[] = [];
    const oracle = this.oracle;
    if (!oracle) return out;
    for (const p of this.processes.values()) {
      for (const vma of p.vmas) {
        for (const r of this.core.pagemap(p.mm, vma.start, vma.end)) {
          const kind = r.kind & 0xff;
          if (kind !== C.PTE_KIND_PRESENT && kind !== C.PTE_KIND_PROTNONE) continue;
          const vpn = r.address / PAGE_SIZE;
          const expected = vma.shmem
            ? oracle.expected(p.pid, vpn, vma.shmem.id, vma.index(r.address), (vma.flags & VM_SHARED) === 0)
            : oracle.expected(p.pid, vpn, 0, 0);
          const holds = this.core.tag(r.pfn);
          if (holds !== expected) out.push({ pid: p.pid, address: r.address, pfn: r.pfn, holds, expected });
        }
      }
    }
    return out;
  }

  /**
   * The whole simulated state as bytes — the machine's memory and the kernel's, the oracle's
   * and the journal's TypeScript state — that `createKernel({ snapshot })` makes a kernel of
   * again; it goes on exactly as this one would, event for event. Not saved: the subscribers
   * (subscribe again), GUP users' and processes' objects (find them again by pid: `process()`,
   * `Process.users`). EBUSY while accesses wait or from inside a call; the strategy must be a
   * registered one (a built-in one, or registerStrategy()).
   */
  snapshot(): Uint8Array {
    return snapshotKernel(this);
  }

  /**
   * Subscribes to a tracepoint (or to every one with "*"). The event object is valid during the
   * call only: copy what you keep. With `{ deferred: true }` the events of accesses and faults may
   * come after the core call that made them, in order — the subscriber promises to read nothing
   * but the event (see {@link SubscribeOptions}) — and batched accesses stay batched.
   */
  on<K extends TraceName>(name: K, fn: (event: TraceEvents[K]) => void, options?: SubscribeOptions): void;
  on(name: "*", fn: AnyListener): void;
  on(name: TraceName | "*", fn: ((event: never) => void) | AnyListener, options?: SubscribeOptions): void {
    this.trace.on(name as TraceName, fn as (e: unknown) => void, options);
  }

  off<K extends TraceName>(name: K, fn: (event: TraceEvents[K]) => void): void;
  off(name: "*", fn: AnyListener): void;
  off(name: TraceName | "*", fn: ((event: never) => void) | AnyListener): void {
    this.trace.off(name as TraceName, fn as (e: unknown) => void);
  }

  /**
   * The events from now on, as an async iterator (each a copy); `names` limits them. End the
   * loop (break, return) to unsubscribe.
   */
  events(...names: TraceName[]): AsyncIterableIterator<KernelEvent> {
    const queue: KernelEvent[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const want = names.length ? new Set<string>(names) : null;
    const listener: AnyListener = (name, event) => {
      if (want && !want.has(name)) return;
      queue.push({ name, event: { ...event } } as KernelEvent);
      wake?.();
    };
    this.trace.on("*", listener);
    const stop = () => { done = true; this.trace.off("*", listener); wake?.(); };
    const it: AsyncIterableIterator<KernelEvent> = {
      [Symbol.asyncIterator]: () => it,
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => { wake = r; });
        wake = null;
        if (queue.length) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: async () => { stop(); return { value: undefined, done: true }; },
    };
    return it;
  }
}

/**
 * Creates a simulated kernel — or, with `snapshot`, makes again the one a snapshot saved
 * (the snapshot holds its every option; only `wasm` may come with it).
 * @public
 */
export function createKernel(options: KernelOptions & { readonly snapshot?: Uint8Array } = {}): Kernel {
  if (options.snapshot !== undefined) {
    const others = Object.keys(options).filter((k) => k !== "snapshot" && k !== "wasm" && (options as Record<string, unknown>)[k] !== undefined);
    if (others.length) throw new CowsimError("EINVAL", `a snapshot holds the kernel's options: ${others.join(", ")} cannot come with it (only wasm can)`);
    return restoreKernel(options.snapshot, options.wasm);
  }
  return new Kernel(options);
}

const CLASSES: ReadonlyMap<string, abstract new (...args: never[]) => unknown> = new Map([
  ...STATE_CLASSES, ["Kernel", Kernel], ["Process", Process],
]);

/** The kernel's fields that are made again on restore, not saved: the machine and the subscribers. */
const REMADE = new Set(["core", "ops", "trace", "strategy"]);

function snapshotKernel(k: Kernel): Uint8Array {
  const problem = k.snapshotProblem();
  if (problem) throw new CowsimError("EBUSY", `snapshot: ${problem}`);
  const { id, knobs } = k.strategy;
  const registered = strategyInfo(id);
  if (!registered) {
    throw new CowsimError("EINVAL", `snapshot: strategy "${id}" is not registered, so a restore could not name it (registerStrategy() it)`);
  }
  k.journal?.materialize();
  let graph: EncodedGraph;
  try {
    graph = encodeGraph(k, {
      classes: CLASSES,
      replace: (holder, key, value) => {
        if (holder === k && REMADE.has(key)) return SKIP;
        if (holder instanceof Oracle && key === "bus") return SKIP;
        // the reused step event keeps the last call's text maker: a scratch value, not state
        if (key === "call" && typeof value === "function") return null;
        return value;
      },
    });
  } catch (e) {
    if (e instanceof GraphError) throw new Error(`cowsim: snapshot: ${e.message}`);
    throw e;
  }
  return writeSnapshot({
    header: { version: SNAPSHOT_VERSION, abi: abiFingerprint(), build: k.core.build, strategy: { id, knobs: { ...knobs } } },
    graph,
    memory: k.core.memoryImage(),
  });
}

function restoreKernel(bytes: Uint8Array, wasm: KernelOptions["wasm"]): Kernel {
  let parts: SnapshotParts;
  try {
    parts = readSnapshot(bytes);
  } catch (e) {
    if (e instanceof SnapshotFormatError) throw new CowsimError("EINVAL", `snapshot: ${e.message}`);
    throw e;
  }
  const h = parts.header;
  if (h.abi !== abiFingerprint()) {
    throw new CowsimError("EINVAL", `snapshot: made by a core with another ABI (${h.abi}; this one is ${abiFingerprint()})`);
  }
  const strategy = makeStrategy(h.strategy.id, h.strategy.knobs);
  const core = Core.restore(parts.memory, h.build, wasm);
  let k: Kernel;
  try {
    k = decodeGraph(parts.graph, CLASSES) as Kernel;
  } catch (e) {
    throw new CowsimError("EINVAL", `snapshot: its state is damaged (${(e as Error).message})`);
  }
  if (!(k instanceof Kernel)) throw new CowsimError("EINVAL", "snapshot: it holds no kernel");
  const remade: Record<string, unknown> = { core, ops: core.ops, trace: new TraceBus(), strategy };
  Object.assign(k, remade);
  k.oracle?.attach(k.trace);
  return k;
}

export type { KernelOptions };

// What the layers above the facade — scenarios, the fuzzer, the command — and embedders use of
// the layers below it, by name.
export * as uapi from "./mm/uapi.js";
export {
  PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS,
  MAP_NORESERVE, MAP_POPULATE, MAP_FIXED_NOREPLACE, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
  MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK,
  MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_COLLAPSE, MREMAP_MAYMOVE, MREMAP_FIXED,
  MREMAP_DONTUNMAP, PAGE_SIZE, TASK_SIZE, MADV_NAMES, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_HWPOISON,
  MADV_REMOVE, MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC, FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE,
} from "./mm/uapi.js";
export { COUNTER_DESCRIPTIONS } from "./mm/stats.js";
export type { Counters } from "./mm/stats.js";
export {
  validateKernelOptions, formatOptionProblems, formatSize, KERNEL_OPTION_LIMITS, KERNEL_OPTION_DEFAULTS,
} from "./mm/options.js";
export type { OptionProblem, KernelOptionValues, KernelOptionsCheck, KernelCoreSizes } from "./mm/options.js";
export type { TransientOptions } from "./mm/kernel.js";
export type { MapsEntry, SmapsEntry } from "./mm/process.js";
export {
  ShmemFile, shmem_get_entry, shmem_get_folio, shmem_add_to_page_cache, type ShmemEntry, type ShmemSgp,
} from "./mm/shmem.js";
export type { ThpOptions, ThpEnabled, ThpSizeEnabled, ThpSize } from "./mm/huge_memory.js";
export type { MthpStats, SplitHugePagesResult, SplitOutcome } from "./mm/large_folio.js";
export { THP_SIZE_ORDERS } from "./mm/huge_memory.js";
export { FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE, Pin } from "./mm/gup.js";
export type { PinContract } from "./mm/gup.js";
/** GUP-fast's outcomes by name, as GupFastRace.reason gives them. */
export { GUP_FAST_REASONS } from "./core/index.js";
export type { InvariantViolation, HeldFrame, FrameHolder, UsedSwapSlot } from "./mm/invariants.js";
export { describeHolder } from "./mm/invariants.js";
export type { MemoryFailureOutcome, MfResult } from "./mm/memory_failure.js";
export { PM_PRESENT, PM_SWAP, PM_FILE, PM_MMAP_EXCLUSIVE, PM_UFFD_WP, PM_SOFT_DIRTY } from "./mm/task_mmu.js";
export { WaitQueue } from "./mm/wait.js";
export { Access } from "./mm/process.js";
export type { AccessState } from "./mm/process.js";
export type { WaitReason } from "./mm/wait.js";
export { Migration } from "./mm/migrate.js";
export { UserfaultfdCtx as Userfaultfd, UffdRangeError } from "./mm/userfaultfd.js";
export type { UffdMsg, UffdHandler, UffdioCopyOptions } from "./mm/userfaultfd.js";
// the uapi header's constants: defined once (src/mm/uapi_userfaultfd.ts), named in the package's barrel
export * from "./mm/uapi_userfaultfd.js";
export type { MigrateOptions, MigrateStatus } from "./mm/migrate.js";
export { HugePageSplit } from "./mm/split_huge_page.js";
export type { HugePageSplitStatus, SplitHugePageOptions } from "./mm/split_huge_page.js";
export { GupUser, Pipe, FixedBuffers, MemoryRegion, DirectIo, UserPages, GupFastRace } from "./users/users.js";
export { Dmirror, type DeviceStatus } from "./users/dmirror.js";
export type { PartialGup } from "./users/users.js";
export type { Finding, FindingKind } from "./oracle/oracle.js";
export type { ChainStep, JournalEntry } from "./oracle/journal.js";
export { ReferenceJudge } from "./oracle/reference.js";
export type { ReferenceVerdict, JudgedKernel } from "./oracle/reference.js";
export {
  STRATEGIES, STRATEGY_IDS, makeStrategy, defineStrategy, registerStrategy, unregisterStrategy, strategies,
  strategyInfo, StrategyError,
} from "./policy/index.js";
export type {
  StrategyId, StrategyInfo, StrategyDefinition, StrategyMembers, CowStrategy, KnobSpec, WpFacts, HugeWpFacts, WpHelpers,
  WpDecision, GupFacts, SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./policy/index.js";
export type { FailKind, FailureInjection, CoreBuild, CoreWasm } from "./core/index.js";
export type { TraceEvents, TraceName, AnyListener } from "./trace/events.js";

/** The Wasm core's self-description for a default machine: its memory map, sizes and PTE layout. @public */
export function describeMachine(): string {
  return describeCore(Core.create());
}
