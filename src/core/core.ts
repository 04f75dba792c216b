/**
 * The TypeScript binding of the Wasm core: sizes and creates the shared memory, attaches one
 * instance per thread, and exposes a typed ABI. Hot paths pass u32 / f64 only; 64-bit entries
 * stay inside Wasm. Errors from the core become {@link CowsimError}s with errno names.
 */
import { C, type CoreExports } from "./abi.generated.js";
import {
  coreModule, createMemory, instantiate, planBytes, wasmPages, machine, giveBack, MAX_MEMORY_BYTES, type CoreBuild, type CoreWasm,
} from "./wasm.js";
import { CowsimError, check } from "../errno.js";
import { FrameTable } from "./frames.js";
import { CoreOps } from "./ops.js";
import { VMSTAT_ITEMS, FAIL_KINDS } from "./abi.generated.js";

const VMSTAT_INDEX = new Map<string, number>(VMSTAT_ITEMS.map((v) => [v.name, v.value]));

/** Sizes of one simulated machine. @public */
export interface CoreOptions {
  /** 4 KiB frames of simulated RAM (default 65536 = 256 MiB). */
  frames?: number;
  /** 4 KiB page tables in the pool (default: enough to map every frame 4 times over, plus 4 per mm). */
  pageTables?: number;
  /** Swap slots of the swap device (default: as many as frames). */
  swapSlots?: number;
  /** mm_struct slots: the most address spaces alive at once (default 256). */
  maxMms?: number;
  /** Threads that may attach at once (default 8). */
  maxThreads?: number;
  /** Bytes of real data kept per page besides its 64-bit tag, 0…4096 (default 0). */
  dataBytes?: number;
  /** Per-thread scratch area for batched results, in bytes (default 64 KiB). */
  scratchBytes?: number;
  /** Which compilation of the core (default `release`). */
  build?: CoreBuild;
  /** The compiled core, when the embedder has it (a Module, its bytes or a URL); default: loadCore()'s, or the package's file. */
  wasm?: CoreWasm;
}

/** What a worker needs to attach to the same machine (post it via workerData). @public */
export interface SharedCore {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly build: CoreBuild;
}

/** Where everything is, read once from the header. @public */
export interface CoreLayout {
  readonly base: number;
  readonly nframes: number;
  readonly ntables: number;
  readonly nslots: number;
  readonly maxMms: number;
  readonly maxThreads: number;
  readonly dataBytes: number;
  readonly contentStride: number;
  readonly swapStride: number;
  readonly scratchBytes: number;
  readonly frameBase: number;
  readonly ptBase: number;
  readonly mmBase: number;
  readonly blockBase: number;
  readonly swapBase: number;
  readonly contentBase: number;
  readonly ctxBase: number;
  readonly vmstatBase: number;
  readonly totalBytes: number;
  readonly pageStructBytes: number;
  /** Bytes per pageblock record (assembly/page_alloc.ts): its count of free frames first. */
  readonly pageblockBytes: number;
}

/** One record handed back by a range operation (see assembly/memory.ts). @public */
export interface CoreRecord {
  /** REC_* kind. */
  readonly kind: number;
  /** Byte address of the entry. */
  readonly address: number;
  /** Frame, or swap slot for swap records. */
  readonly pfn: number;
  /** Kind-specific: low 32 bits of the old entry, ZAPPED_* bits, marker bits, a pfn. */
  readonly aux: number;
}

/** Bytes per page (4 KiB base pages). @public */
export const PAGE_SIZE = 4096;
const WASM_PAGE = 65536;

let fingerprint: string | undefined;
/**
 * A fingerprint of the core's ABI (its constants and struct sizes, FNV-1a): state saved from one
 * core means nothing to another.
 */
export function abiFingerprint(): string {
  if (fingerprint === undefined) {
    let h = 0x811c9dc5;
    const text = JSON.stringify(C);
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    fingerprint = h.toString(16).padStart(8, "0");
  }
  return fingerprint;
}

/** A machine's memory, as a snapshot keeps it. @public */
export interface MemoryImage {
  /** Its size in 64 KiB pages. */
  readonly pages: number;
  /** The thread context the kernel ran on. */
  readonly ctx: number;
  /** The pages that are not all zero. */
  readonly chunks: readonly { readonly index: number; readonly bytes: Uint8Array }[];
}

/**
 * What can be made to fail on purpose (the core's FAIL_* kinds): `frame` — frame allocation
 * from the free pool (alloc_pages(), frames_reserve(), so every fault, fork copy, swap-in …);
 * `pageTable` — page-table allocation (pt_alloc_table(), pt_reserve(), a new mm's PGD);
 * `swapSlot` — swap-slot allocation (add_to_swap()). @public
 */
export type FailKind = "frame" | "pageTable" | "swapSlot";

/**
 * How to fail allocations of one kind on purpose, as Linux's fault injection does
 * (lib/fault-inject.c: `fail_page_alloc`, `failslab`, a task's `fail-nth`). Give `nth` or
 * `probability`, not both. An injected failure takes exactly the path of a real exhaustion —
 * the same error code, the same vmstat failure counter (PGALLOC_FAIL, PGTABLE_ALLOC_FAIL) — so
 * callers cannot tell the two apart. Only attempts that take from the machine-wide pool count:
 * an allocation served from a reservation (a context's frames_reserve() / pt_reserve()) is
 * certain, and a request for zero units is no attempt. @public
 */
export interface FailureInjection {
  /**
   * Fail the nth attempt from now (1: the next one), and with `times` > 1 that many attempts
   * from there on (every one with `times: Infinity`). A test proves every error path of an
   * operation by arming nth = 1, 2, 3 … until the operation succeeds.
   */
  readonly nth?: number;
  /**
   * Fail each attempt with this probability (0…1), drawn from a generator whose state lives in
   * the shared memory: the same seed gives the same failures, run after run.
   */
  readonly probability?: number;
  /** Seed of the `probability` generator: an integer from 0 to 2^53 - 1 (default 1). */
  readonly seed?: number;
  /**
   * How many failures to inject before the kind disarms itself: a positive integer or
   * `Infinity`. Default 1 with `nth` (that attempt only), `Infinity` with `probability`.
   */
  readonly times?: number;
}

function intOption(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min || x > max) {
    throw new CowsimError("EINVAL", `${name} must be an integer from ${min} to ${max}, not ${String(v)}`);
  }
  return x;
}

/**
 * One thread's binding to a machine: its Wasm instance over the shared memory, its context, the
 * views over the memory, and the range operations. `Core.create()` makes a machine,
 * `Core.attach()` joins one another thread made, `Core.restore()` makes one from a snapshot.
 * @public
 */
export class Core {
  /** Raw exports of this thread's instance. */
  readonly x: CoreExports;
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  readonly build: CoreBuild;
  readonly layout: CoreLayout;
  /** This thread's context (per-thread scratch and allocator cursor). */
  readonly ctx: number;
  /** Views over the whole shared memory (it never grows after creation). */
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  /** Byte address of this thread's scratch area. */
  readonly scratch: number;
  /** Every struct page, readable without a call per field. */
  readonly frames: FrameTable;
  /** The core's operations, typed, for the kernel layer. */
  readonly ops: CoreOps;

  private constructor(shared: SharedCore, instance?: CoreExports, ctx?: number) {
    this.module = shared.module;
    this.memory = shared.memory;
    this.build = shared.build;
    // the thread that creates the machine keeps the instance that initialised it
    this.x = instance ?? instantiate(shared.module, shared.memory);
    if (!this.x.layout_ready()) throw new Error("cowsim: attaching to a memory that was never initialised");
    const buf = shared.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u32 = new Uint32Array(buf);
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
    this.i64 = new BigInt64Array(buf);
    this.layout = readLayout(this.x);
    // a restored machine goes on with the context its snapshot was taken on (its LRU batches,
    // reservations and scratch live there)
    this.ctx = ctx ?? this.x.ctx_attach() >>> 0;
    if (this.ctx === 0) {
      throw new CowsimError("EBUSY", `all ${this.layout.maxThreads} thread contexts are attached (maxThreads)`);
    }
    this.scratch = this.x.ctx_scratch(this.ctx) >>> 0;
    this.frames = new FrameTable(this);
    this.ops = new CoreOps(this.x, this.ctx, this.u32, this.scratch, this.layout.scratchBytes);
  }

  /** Creates a machine: sizes and initialises a fresh shared memory, and attaches this thread. */
  static create(options: CoreOptions = {}): Core {
    const build = options.build ?? "release";
    if (build !== "release" && build !== "debug") {
      throw new CowsimError("EINVAL", `build must be "release" or "debug", not ${String(build)}`);
    }
    const frames = intOption("frames", options.frames, 65536, 16, 1 << 26);
    const maxMms = intOption("maxMms", options.maxMms, 256, 1, 1 << 20);
    const pageTables = intOption("pageTables", options.pageTables,
      Math.min(1 << 20, Math.ceil(frames / 512) * 4 + 4 * maxMms + 64), 4, 1 << 20);
    const swapSlots = intOption("swapSlots", options.swapSlots, frames, 0, 1 << 27);
    const maxThreads = intOption("maxThreads", options.maxThreads, 8, 1, 256);
    const dataBytes = intOption("dataBytes", options.dataBytes, 0, 0, 4096);
    const scratchBytes = intOption("scratchBytes", options.scratchBytes, 64 * 1024, 4096, 16 << 20);
    const module = coreModule(build, options.wasm);
    const args = [frames, pageTables, swapSlots, maxMms, maxThreads, dataBytes, scratchBytes] as const;
    const bytes = planBytes(module, args);
    if (bytes > MAX_MEMORY_BYTES) {
      throw new CowsimError("ENOMEM",
        `these sizes need ${(bytes / 2 ** 30).toFixed(2)} GiB of simulator memory, more than the 4 GiB a wasm32 memory can address`);
    }
    const { memory, exports: init } = machine(module, wasmPages(bytes));
    check(init.cowsim_init(...args), "cowsim_init");
    return new Core({ module, memory, build }, init);
  }

  /**
   * Gives the machine back: the next create() of the same size and build takes its memory and
   * instance, made as new, rather than instantiating the module again. Nothing may use this
   * Core afterwards; a machine other threads attached to is not given back.
   * @internal
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.x.ctx_smp()) return;
    giveBack(this.module, { memory: this.memory, exports: this.x });
  }
  private released = false;

  /**
   * Counts `n` threads as attached before they attach (negative: stops counting them): a pool
   * of workers is counted when it is made, so the core's one-context paths end at once.
   */
  expectThreads(n: number): void {
    this.x.ctx_expect(n);
  }

  /**
   * The machine's memory as a snapshot keeps it: its size in 64 KiB pages and those of its
   * pages that are not all zero (most of a machine is free frames and empty tables).
   */
  memoryImage(): MemoryImage {
    const pages = this.memory.buffer.byteLength / WASM_PAGE;
    const chunks: MemoryImage["chunks"][number][] = [];
    const words = new Uint32Array(this.memory.buffer);
    const per = WASM_PAGE / 4;
    for (let i = 0; i < pages; i++) {
      let used = false;
      for (let w = i * per, end = w + per; w < end; w++) if (words[w] !== 0) { used = true; break; }
      if (used) chunks.push({ index: i, bytes: this.u8.slice(i * WASM_PAGE, (i + 1) * WASM_PAGE) });
    }
    return { pages, ctx: this.ctx, chunks };
  }

  /**
   * A machine made again from a {@link memoryImage}, on the same context; `wasm` is the
   * compiled core when the embedder has it (as for {@link create}).
   */
  static restore(image: MemoryImage, build: CoreBuild, wasm?: CoreWasm): Core {
    if (build !== "release" && build !== "debug") throw new CowsimError("EINVAL", `build must be "release" or "debug", not ${String(build)}`);
    if (!Number.isInteger(image.pages) || image.pages < 1 || image.pages > MAX_MEMORY_BYTES / WASM_PAGE) {
      throw new CowsimError("EINVAL", `a machine of ${image.pages} memory pages cannot be`);
    }
    const module = coreModule(build, wasm);
    const memory = createMemory(image.pages);
    // instantiated first: its data segments (constants) land before the image covers them
    const instance = instantiate(module, memory);
    const u8 = new Uint8Array(memory.buffer);
    for (const c of image.chunks) {
      if (!Number.isInteger(c.index) || c.index < 0 || c.index >= image.pages || c.bytes.byteLength !== WASM_PAGE) {
        throw new CowsimError("EINVAL", `memory page ${c.index} of the image is out of place`);
      }
      u8.set(c.bytes, c.index * WASM_PAGE);
    }
    return new Core({ module, memory, build }, instance, image.ctx);
  }

  /** Attaches the calling thread to a machine another thread created. */
  static attach(shared: SharedCore): Core {
    return new Core(shared);
  }

  /** What to post to a worker so it can {@link Core.attach}. */
  shared(): SharedCore {
    return { module: this.module, memory: this.memory, build: this.build };
  }

  /** Releases this thread's context. The instance must not be used afterwards. */
  detach(): void {
    this.x.ctx_detach(this.ctx);
  }

  // ---- counters ------------------------------------------------------------------------------

  /** The machine-wide vmstat counters, by name. */
  vmstat(): Record<string, number> {
    const out: Record<string, number> = {};
    const base = this.layout.vmstatBase >>> 2;
    for (const v of VMSTAT_ITEMS) out[v.name] = this.u32[base + v.value]!;
    return out;
  }

  /** One vmstat item by name (VMSTAT_ITEMS), 0 for a name the core does not count. */
  vmstatItem(name: string): number {
    const item = VMSTAT_INDEX.get(name);
    return item === undefined ? 0 : this.u32[(this.layout.vmstatBase >>> 2) + item]!;
  }

  /** A hugepages-<size>kB/stats counter (MTHP_STAT_*) summed over every size. */
  mthpStatTotal(item: number): number {
    return this.x.mthp_stat_total(item) >>> 0;
  }

  freePages(): number {
    return this.x.layout_free_pages();
  }

  // ---- fault injection -----------------------------------------------------------------------

  /**
   * Arms fault injection for `kind` (see {@link FailureInjection}), replacing what was armed for
   * it. Off by default; off, it costs the allocation paths one load and one compare. The state
   * lives in the shared memory: every thread attached to the machine sees it.
   * @throws CowsimError EINVAL for a bad kind or option.
   */
  injectFailure(kind: FailKind, how: FailureInjection): void {
    const k = failKind(kind);
    const { nth, probability, seed = 1 } = how;
    if ((nth === undefined) === (probability === undefined)) {
      throw new CowsimError("EINVAL", "injectFailure needs either nth or probability, not both nor neither");
    }
    if (nth !== undefined && (!Number.isInteger(nth) || nth < 1 || nth > 0xffffffff)) {
      throw new CowsimError("EINVAL", `nth must be an integer from 1 to 2^32 - 1, not ${String(nth)}`);
    }
    if (probability !== undefined && !(probability >= 0 && probability <= 1)) {
      throw new CowsimError("EINVAL", `probability must be from 0 to 1, not ${String(probability)}`);
    }
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new CowsimError("EINVAL", `seed must be an integer from 0 to 2^53 - 1, not ${String(seed)}`);
    }
    const times = how.times ?? (nth !== undefined ? 1 : Infinity);
    if (times !== Infinity && (!Number.isInteger(times) || times < 1 || times > 0x7fffffff)) {
      throw new CowsimError("EINVAL", `times must be a positive integer or Infinity, not ${String(how.times)}`);
    }
    check(this.x.fail_inject(k, nth ?? 0, probability ?? 0, times === Infinity ? -1 : times,
      seed % 2 ** 32, Math.floor(seed / 2 ** 32)), "fail_inject");
  }

  /** Disarms fault injection for `kind`, or for every kind. The counts stay. */
  clearInjection(kind?: FailKind): void {
    this.x.fail_clear(kind === undefined ? C.NR_FAIL_KINDS : failKind(kind));
  }

  /**
   * Failures injected so far, per kind, since the machine was created (vmstat
   * FAIL_INJECTED_*): an operation's error path ran because of the injection when its count
   * went up.
   */
  injectedFailures(): Record<FailKind, number> {
    const vm = this.vmstat();
    return { frame: vm.FAIL_INJECTED_FRAME!, pageTable: vm.FAIL_INJECTED_PGTABLE!, swapSlot: vm.FAIL_INJECTED_SWAP_SLOT! };
  }

  /**
   * Whether `kind` is still armed (it disarms itself once its `times` failures are injected),
   * and the attempts it has seen since it was armed.
   */
  injectionStatus(kind: FailKind): { armed: boolean; attempts: number } {
    const k = failKind(kind);
    return { armed: this.x.fail_armed(k) === 1, attempts: this.x.fail_attempts(k) >>> 0 };
  }
  tablesAvailable(): number {
    return this.x.layout_pt_available();
  }
  swapSlotsAvailable(): number {
    return this.x.layout_swap_available();
  }

  // ---- frames --------------------------------------------------------------------------------

  /**
   * alloc_pages(): a folio of `order` (0 … C.MAX_PAGE_ORDER = 9: a frame, the 2-page folio,
   * mTHP 16 KiB … 1 MiB, the 2 MiB THP), naturally aligned, its head holding one reference;
   * order ≥ 1 is a compound folio. Throws ENOMEM (nothing changed) when no free aligned block
   * of that order is left, EINVAL for another order. Freed by its last reference
   * (`x.folio_put_refs()`), or `x.free_pages(pfn, order)` once nothing holds it.
   */
  allocPages(order = 0, zero = true): number {
    if (!Number.isInteger(order) || order < 0 || order > C.MAX_PAGE_ORDER) {
      throw new CowsimError("EINVAL", `order must be an integer from 0 to ${C.MAX_PAGE_ORDER}, not ${order}`);
    }
    const pfn = this.x.alloc_pages(this.ctx, order, zero ? C.GFP_ZERO : 0) >>> 0;
    if (pfn === C.NO_PFN) {
      const kib = 4 << order;
      throw new CowsimError("ENOMEM", `no free ${order === 0 ? "frame" : `${kib >= 1024 ? `${kib / 1024} MiB` : `${kib} KiB`} folio`} left`);
    }
    return pfn;
  }

  tag(pfn: number): number {
    return (this.x.page_tag_hi(pfn) >>> 0) * 2 ** 32 + (this.x.page_tag_lo(pfn) >>> 0);
  }
  setTag(pfn: number, tag: number): void {
    this.x.page_tag_set(pfn, tag >>> 0, Math.floor(tag / 2 ** 32) >>> 0);
  }
  /** The data bytes of a frame, as a live view (empty when dataBytes is 0). */
  data(pfn: number): Uint8Array {
    const a = this.x.page_data_addr(pfn) >>> 0;
    return this.u8.subarray(a, a + this.layout.dataBytes);
  }

  // ---- address spaces ------------------------------------------------------------------------

  mmAlloc(): number {
    return check(this.x.mm_alloc(this.ctx), "mm_alloc: no free mm slot or page table");
  }
  mmFree(mm: number): void {
    check(this.x.mm_free(this.ctx, mm), `mm_free(${mm})`);
  }

  // ---- range operations ----------------------------------------------------------------------

  private readRecords(base: number, into: CoreRecord[], n: number): void {
    const s = this.scratch >>> 2;
    for (let i = 0; i < n; i++) {
      const r = s + i * 4;
      into.push({
        kind: this.u32[r]!,
        address: base + this.u32[r + 1]! * PAGE_SIZE,
        pfn: this.u32[r + 2]!,
        aux: this.u32[r + 3]!,
      });
    }
  }

  /** Runs a range operation to the end of its range, gathering its records. */
  private ranged(start: number, end: number, what: string, op: (from: number) => number): CoreRecord[] {
    const out: CoreRecord[] = [];
    let from = start;
    for (;;) {
      const n = check(op(from), what);
      this.readRecords(from, out, n);
      const next = this.x.ctx_next(this.ctx);
      if (next >= end) return out;
      from = next;
    }
  }

  /**
   * copy_page_range() of [start, end) from `src` into `dst` (COPY_* flags). The page tables it
   * reserves are returned afterwards unless `keepReservation` (a caller that reserved for a
   * whole fork returns them itself). With COPY_EARLY_IN_CORE, pages copied early join anon_vma
   * `anonVma` at `index` (the page index of `start`) onwards.
   */
  copyPageRange(dst: number, src: number, start: number, end: number, flags: number, keepReservation = false,
    anonVma = 0, index = 0): CoreRecord[] {
    try {
      return this.ranged(start, end, "copy_page_range",
        (from) => this.x.copy_page_range(this.ctx, dst, src, from, end, flags, anonVma, (index + (from - start) / PAGE_SIZE) >>> 0));
    } finally {
      if (!keepReservation) this.x.pt_unreserve(this.ctx);
    }
  }

  /**
   * migrate_vma_collect() of [start, end) (MIGRATE_VMA_* flags): one record per page, `aux`
   * its MIGRATE_PFN_* bits (0: left alone), `pfn` the collected page (0 for a hole), `kind` 1
   * where a page the request selects was found (and refused, without MIGRATE_PFN_VALID).
   */
  migrateVmaCollect(mm: number, start: number, end: number, flags: number, pgmap: number): CoreRecord[] {
    return this.ranged(start, end, "migrate_vma_collect",
      (from) => this.x.migrate_vma_collect(this.ctx, mm, from, end, flags, pgmap));
  }

  /** zap_page_range() of [start, end) (ZAP_* flags). */
  zapPageRange(mm: number, start: number, end: number, flags = 0): CoreRecord[] {
    return this.ranged(start, end, "zap_page_range",
      (from) => this.x.zap_page_range(this.ctx, mm, from, end, flags));
  }

  /** change_protection(); returns the number of entries changed and any PMD_PARTIAL records. */
  changeProtection(mm: number, start: number, end: number, newprot: number, cp: number): { pages: number; records: CoreRecord[] } {
    const pages = check(this.x.change_protection(this.ctx, mm, start, end, newprot, cp), "change_protection");
    const records: CoreRecord[] = [];
    this.readRecords(start, records, this.x.ctx_nr_records(this.ctx) >>> 0);
    return { pages, records };
  }

  /**
   * pagemap_read(): one record per non-none entry of [start, end) — kind (PTE_KIND_*, with
   * PAGEMAP_HUGE for PMD leaves) in `kind`, pfn / swap slot / marker bits in `pfn`, the entry's
   * low 32 bits in `aux`.
   */
  pagemap(mm: number, start: number, end: number): CoreRecord[] {
    return this.ranged(start, end, "pagemap_read", (from) => this.x.pagemap_read(this.ctx, mm, from, end));
  }

  /** free_pgd_range(): frees the empty tables wholly inside [floor, ceiling). */
  freePgdRange(mm: number, floor: number, ceiling: number): number {
    return this.x.free_pgd_range(mm, floor, ceiling);
  }

  // ---- translation and GUP-fast --------------------------------------------------------------

  /** Largest batch translateInto() takes in one call. */
  get translateBatchMax(): number {
    return Math.floor(this.layout.scratchBytes / 12);
  }

  /**
   * Translates addresses in batches of translateBatchMax: writes, per address, the pfn or
   * TRANSLATE_FAULT | PTE kind into `out`.
   */
  translateInto(mm: number, addrs: ArrayLike<number>, out: Uint32Array): void {
    const max = this.translateBatchMax;
    const f = this.scratch >>> 3;
    for (let at = 0; at < addrs.length; at += max) {
      const n = Math.min(max, addrs.length - at);
      for (let i = 0; i < n; i++) this.f64[f + i] = addrs[at + i]!;
      check(this.x.translate_batch(this.ctx, mm, n), "translate_batch");
      const o = (this.scratch + n * 8) >>> 2;
      out.set(this.u32.subarray(o, o + n), at);
    }
  }

  translate(mm: number, addrs: ArrayLike<number>): Uint32Array {
    const out = new Uint32Array(addrs.length);
    this.translateInto(mm, addrs, out);
    return out;
  }

  /**
   * GUP-fast over `nr` pages from `va`. Returns the pfns taken and, if it stopped early, why
   * (GUPF_*). Throws EINVAL for bad arguments.
   */
  gupFast(mm: number, va: number, nr: number, flags: number): { pfns: number[]; reason: number } {
    const got = check(this.x.gup_fast(this.ctx, mm, va, nr, flags), "gup_fast");
    const s = this.scratch >>> 2;
    const u32 = this.u32;
    const pfns = new Array<number>(got);
    for (let i = 0; i < got; i++) pfns[i] = u32[s + i]!;
    return { pfns, reason: this.x.ctx_gup_reason(this.ctx) >>> 0 };
  }

  /**
   * gup_fast_pte_range() for the one page at `va`, its first half: B1 (read the PTE), B2
   * (pte_access_permitted()), B3 (grab the folio). Returns the page grabbed and the PMD and PTE
   * B1 read, for gupFastPteFinish(); or the GUPF_* reason it backed off, holding nothing.
   */
  gupFastPteBegin(mm: number, va: number, flags: number): GupFastBegun | { reason: number } {
    const reason = this.x.gup_fast_pte_begin(this.ctx, mm, va, flags) >>> 0;
    if (reason !== C.GUPF_OK) return { reason };
    return {
      mm, va, flags, pfn: this.x.gup_fast_pte_pfn(this.ctx) >>> 0, pmd: this.x.pmdp_get(mm, va), pte: this.x.ptep_get(mm, va),
      seq: this.x.mm_write_protect_seq(mm) >>> 0,
    };
  }

  /**
   * The second half, B4 (the PMD and PTE re-read: back off if either changed), B5 (a R/O pin
   * of a page no longer PageAnonExclusive backs off) and, for FOLL_PIN, gup_fast_fallback()'s
   * read_seqcount_retry() of write_protect_seq (a fork of the mm meanwhile undoes it). Returns GUPF_OK with the page still
   * grabbed, or the reason with the grab undone. The core keeps one begun page in its context,
   * which any GUP-fast between the halves overwrites; so B4 compares here, against what B1 read,
   * and once it passes the core's own halves run again to judge B5 and drop their extra grab.
   */
  gupFastPteFinish(b: GupFastBegun): number {
    const x = this.x;
    if (x.pmdp_get(b.mm, b.va) !== b.pmd || x.ptep_get(b.mm, b.va) !== b.pte) {
      this.gupPut([b.pfn], b.flags);
      return C.GUPF_PTE_CHANGED;
    }
    let reason = x.gup_fast_pte_begin(this.ctx, b.mm, b.va, b.flags) >>> 0;
    if (reason === C.GUPF_OK) {
      reason = x.gup_fast_pte_finish(this.ctx) >>> 0;
      if (reason === C.GUPF_OK) this.gupPut([b.pfn], b.flags);
    }
    if (reason === C.GUPF_OK && (b.flags & C.FOLL_PIN) && (x.mm_write_protect_seq(b.mm) >>> 0) !== b.seq) reason = C.GUPF_SEQ_RETRY;
    if (reason !== C.GUPF_OK) this.gupPut([b.pfn], b.flags);
    return reason;
  }

  /** unpin_user_pages() / put_page() on pfns (with the flags they were taken with). */
  gupPut(pfns: readonly number[], flags: number): void {
    const s = this.scratch >>> 2;
    const max = this.layout.scratchBytes >>> 2;
    for (let at = 0; at < pfns.length; at += max) {
      const n = Math.min(max, pfns.length - at);
      for (let i = 0; i < n; i++) this.u32[s + i] = pfns[at + i]!;
      check(this.x.gup_put_scratch(this.ctx, n, flags), "gup_put");
    }
  }
}

/** A page GUP-fast grabbed in its first half (B1–B3), with the PMD and PTE it read. @public */
export interface GupFastBegun {
  readonly mm: number;
  readonly va: number;
  readonly flags: number;
  readonly pfn: number;
  readonly pmd: bigint;
  readonly pte: bigint;
  /** The mm's write_protect_seq when it began (FOLL_PIN retries if a fork moved it). */
  readonly seq: number;
}

function failKind(kind: FailKind): number {
  const k = FAIL_KINDS.find((f) => f.short === kind);
  if (!k) throw new CowsimError("EINVAL", `kind must be one of ${FAIL_KINDS.map((f) => f.short).join(", ")}, not ${String(kind)}`);
  return k.value;
}

function readLayout(x: CoreExports): CoreLayout {
  const u = (v: number) => v >>> 0;
  return {
    base: u(x.layout_base()),
    nframes: u(x.layout_nframes()),
    ntables: u(x.layout_ntables()),
    nslots: u(x.layout_nslots()),
    maxMms: u(x.layout_max_mms()),
    maxThreads: u(x.layout_max_threads()),
    dataBytes: u(x.layout_data_bytes()),
    contentStride: u(x.layout_content_stride()),
    swapStride: u(x.layout_swap_stride()),
    scratchBytes: u(x.layout_scratch_bytes()),
    frameBase: u(x.layout_frame_base()),
    ptBase: u(x.layout_pt_base()),
    mmBase: u(x.layout_mm_base()),
    blockBase: u(x.layout_block_base()),
    swapBase: u(x.layout_swap_base()),
    contentBase: u(x.layout_content_base()),
    ctxBase: u(x.layout_ctx_base()),
    vmstatBase: u(x.layout_vmstat_base()),
    totalBytes: x.layout_total_bytes(),
    pageStructBytes: u(x.page_struct_bytes()),
    pageblockBytes: u(x.pageblock_bytes()),
  };
}
