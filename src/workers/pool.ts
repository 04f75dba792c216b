/**
 * Real threads over one machine: a pool of worker threads, each with its own Wasm instance
 * attached to the kernel's shared memory, running GUP-fast (pin_user_pages_fast_only() /
 * get_user_pages_fast_only() + unpin) while the main thread forks, swaps out, migrates,
 * write-protects and unmaps. Pins live in the shared pin registry, so the kernel layer, its
 * invariants and the oracle see them.
 *
 * Plain worker_threads, no pool library: the workers are long-lived, each owns a thread context
 * of the machine, and their hot loop is steered through shared memory (Atomics), not through
 * tasks — a task queue (piscina, tinypool) would add a dependency and a message per task for
 * nothing the pool needs.
 *
 * Node only. A browser page could do the same with Web Workers, but a SharedArrayBuffer-backed
 * memory needs the page cross-origin isolated (COOP: same-origin, COEP: require-corp).
 */
import { Worker } from "node:worker_threads";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { C, GUP_FAST_REASONS } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "../mm/kernel.js";
import type { InvariantViolation } from "../mm/invariants.js";
import {
  CTL_STATE, CTL_PARKED, STATE_IDLE, STATE_RUN, STATE_PAUSE, STATE_STOP, STATS_BASE, STATS_WORDS,
  ST_CALLS, ST_PINS, ST_PAGES, ST_UNPINS, ST_LOST, ST_NO_RECORD, ST_REASONS, NR_REASONS, controlBytes,
  type FromWorker, type ToWorker,
} from "./protocol.js";
import { builtEntry } from "../util/built.js";

/** How to make a pool. @public */
export interface GupWorkersOptions {
  /** Worker threads (default 2); each takes one of the machine's `maxThreads` contexts. */
  readonly n?: number;
  /** Seed of the pinners' random windows (default 1); printed with every summary. */
  readonly seed?: number;
  /** Where the summary line goes at close() (default: standard error; null: nowhere). */
  readonly log?: ((line: string) => void) | null;
  /**
   * Whether each unpin first checks its pages were not shared or unmapped behind the pin
   * (PoolSummary.lost; default true). Off only to measure GUP-fast alone.
   */
  readonly audit?: boolean;
}

/** What the pinner loops do (see {@link GupWorkerPool.startPinners}). @public */
export interface PinnerOptions {
  readonly pid: number;
  /** The range: its first page-aligned address and its length in pages. */
  readonly addr: number;
  readonly pages: number;
  /** Pages per GUP-fast call (1 … C.PIN_RECORD_PAGES, default 1). */
  readonly batch?: number;
  /** Pins each worker holds at once (1 … C.PIN_RECORDS, default 4): the oldest goes first. */
  readonly hold?: number;
  /** FOLL_WRITE (default false). */
  readonly write?: boolean;
  /** FOLL_LONGTERM (default true). */
  readonly longterm?: boolean;
  /** FOLL_GET references instead of FOLL_PIN pins (get_user_pages_fast()). */
  readonly get?: boolean;
  /** Give each worker its own slice of the range (default false: all share it). */
  readonly split?: boolean;
}

/** A pin one worker holds for the caller (see {@link GupWorkerPool.pinFast}). @public */
export interface WorkerPinHandle {
  readonly worker: number;
  /** Pages taken, from the first; fewer than asked when GUP-fast stopped short. */
  readonly pages: number;
  /** Why it stopped short (a GUPF_* name, or "NO_RECORD"), or "OK". */
  readonly reason: string;
  /** Its records in the worker's context. @internal */
  readonly slots: readonly number[];
}

/** What the workers did, and the seed they did it with. @public */
export interface PoolSummary {
  readonly seed: number;
  readonly workers: number;
  /** Rounds run through {@link GupWorkerPool.round}. */
  readonly rounds: number;
  /** GUP-fast calls, records taken (pins), pages taken, records released. */
  readonly calls: number;
  readonly pins: number;
  readonly pages: number;
  readonly unpins: number;
  /** Calls that stopped short, by GUPF_* reason name (only the reasons that occurred). */
  readonly retries: Readonly<Record<string, number>>;
  /** Calls refused for want of a free record. */
  readonly noRecord: number;
  /**
   * FOLL_PIN pages whose pin was broken while held, found at unpin: the page lost
   * PageAnonExclusive or was unmapped behind the pin. 0 with the protocol intact (under
   * `anon-exclusive`; the older strategies do not keep that promise).
   */
  readonly lost: number;
}

const REASON_NAMES = GUP_FAST_REASONS.map((r) => r.short);
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Where the compiled worker entry is: beside this module once built, or in dist/ from the sources. */
function workerUrl(): URL {
  const url = builtEntry(new URL("./gup-worker.js", import.meta.url), new URL("../../dist/workers/gup-worker.js", import.meta.url));
  if (!existsSync(fileURLToPath(url))) throw new CowsimError("ENOENT", "the GUP-fast worker is not built (npm run build)");
  return url;
}

/**
 * A pool of GUP-fast worker threads over a kernel's machine. Made by {@link createGupWorkers}.
 * Deterministic it is not: threads interleave as the machine schedules them; the seed fixes
 * only which windows each pinner picks. @public
 */
export class GupWorkerPool {
  readonly n: number;
  readonly seed: number;
  private readonly workers: Worker[] = [];
  private readonly ctl: Int32Array;
  private readonly pending = new Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private rr = 0;
  private looping: Promise<unknown>[] = [];
  private rounds = 0;
  private closed = false;
  private readonly log: ((line: string) => void) | null;

  /** @internal */
  constructor(readonly kernel: MmKernel, options: GupWorkersOptions) {
    const n = options.n ?? 2;
    const free = kernel.core.layout.maxThreads - 1;
    if (!Number.isInteger(n) || n < 1 || n > free) {
      throw new CowsimError("EINVAL", `n must be an integer from 1 to ${free} (the machine's maxThreads less the main thread's), not ${String(n)}`);
    }
    const seed = options.seed ?? 1;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new CowsimError("EINVAL", `seed must be an integer from 0 to 2^32 - 1, not ${String(seed)}`);
    this.n = n;
    this.seed = seed;
    this.log = options.log === undefined ? (line) => process.stderr.write(line + "\n") : options.log;
    this.ctl = new Int32Array(new SharedArrayBuffer(controlBytes(n)));
    kernel.pins.sharedRecords = true;
    // the workers count as attached from now on, before each attaches itself: the core's
    // one-context paths (plain updates, ctx_up()) end here, not when the first worker starts
    kernel.core.expectThreads(n);
    const url = workerUrl();
    for (let index = 0; index < n; index++) {
      const w = new Worker(url, { workerData: { shared: kernel.core.shared(), control: this.ctl.buffer, index, audit: options.audit ?? true } });
      w.on("message", (m: FromWorker) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if ("error" in m) p.reject(new Error(`cowsim: GUP-fast worker ${index}: ${m.error}`));
        else p.resolve(m);
      });
      w.on("error", (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  private send(worker: number, m: DistributiveOmit<ToWorker, "id">): Promise<FromWorker> {
    if (this.closed) return Promise.reject(new CowsimError("EINVAL", "the GUP-fast pool is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[worker]!.postMessage({ ...m, id });
    });
  }

  private mmOf(pid: number): number {
    const p = this.kernel.processes.get(pid);
    if (!p) throw new CowsimError("ESRCH", `no process ${pid}`);
    return p.mm;
  }

  private static flags(o: { write?: boolean; longterm?: boolean; get?: boolean }): number {
    let f = o.get ? C.FOLL_GET : C.FOLL_PIN;
    if (o.write) f |= C.FOLL_WRITE;
    if (!o.get && (o.longterm ?? true)) f |= C.FOLL_LONGTERM;
    return f;
  }

  private checkRange(addr: number, pages: number): void {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % 4096) throw new CowsimError("EINVAL", `addr ${addr} is not a page-aligned address`);
    if (!Number.isInteger(pages) || pages < 1) throw new CowsimError("EINVAL", `${pages} pages`);
  }

  /**
   * pin_user_pages_fast_only() of `pages` pages from `addr` of process `pid`, taken by one
   * worker (round robin): it stops at the first page GUP-fast cannot take, as GUP-fast does
   * (the slow path is the main thread's: `process.pin…`). The pin stays until {@link unpin}.
   * Not while the pinner loops run.
   */
  async pinFast(pid: number, addr: number, pages: number, o: { write?: boolean; longterm?: boolean; get?: boolean } = {}): Promise<WorkerPinHandle> {
    this.checkRange(addr, pages);
    if (this.looping.length) throw new CowsimError("EBUSY", "the pinner loops are running: stopPinners() first");
    const mm = this.mmOf(pid);
    const worker = this.rr++ % this.n;
    const m = await this.send(worker, { op: "pin", mm, va: addr, pages, flags: GupWorkerPool.flags(o) }) as { slots: number[]; pages: number; reason: number };
    return { worker, pages: m.pages, slots: m.slots, reason: m.reason < 0 ? "NO_RECORD" : REASON_NAMES[m.reason]! };
  }

  /** unpin_user_pages() of a handle's pages. Returns how many had been unmapped behind the pin. */
  async unpin(h: WorkerPinHandle): Promise<number> {
    if (this.looping.length) throw new CowsimError("EBUSY", "the pinner loops are running: stopPinners() first");
    const m = await this.send(h.worker, { op: "unpin", slots: h.slots }) as { lost: number };
    return m.lost;
  }

  /**
   * Starts a pinner loop in every worker: GUP-fast over random windows of `batch` pages of the
   * range, holding up to `hold` pins, the oldest released first — paused at once, so the caller
   * decides when it runs ({@link resume}, {@link round}). The process must outlive the loops
   * (GUP-fast runs as the process: it cannot exit meanwhile).
   */
  startPinners(o: PinnerOptions): void {
    if (this.looping.length) throw new CowsimError("EBUSY", "the pinner loops are running already");
    this.checkRange(o.addr, o.pages);
    const batch = o.batch ?? 1;
    const hold = o.hold ?? 4;
    if (!Number.isInteger(batch) || batch < 1 || batch > C.PIN_RECORD_PAGES) throw new CowsimError("EINVAL", `batch must be from 1 to ${C.PIN_RECORD_PAGES}`);
    if (!Number.isInteger(hold) || hold < 1 || hold > C.PIN_RECORDS) throw new CowsimError("EINVAL", `hold must be from 1 to ${C.PIN_RECORDS}`);
    const mm = this.mmOf(o.pid);
    const slice = o.split ? Math.floor(o.pages / this.n) : o.pages;
    if (slice < batch) throw new CowsimError("EINVAL", `${o.pages} pages${o.split ? ` split ${this.n} ways` : ""} are fewer than a batch of ${batch}`);
    Atomics.store(this.ctl, CTL_STATE, STATE_PAUSE);
    const flags = GupWorkerPool.flags(o);
    this.looping = this.workers.map((_, i) => this.send(i, {
      op: "loop",
      loop: {
        mm, va: o.addr + (o.split ? i * slice * 4096 : 0), pages: slice, batch, hold, flags,
        // xorshift32 streams, one per worker, from the pool's seed
        seed: (Math.imul(this.seed ^ 0x9e3779b9, i + 1) >>> 0) || 1,
      },
    }));
    this.waitParked();
  }

  /** Blocks until every worker is parked (its pins held, no GUP-fast in flight). */
  private waitParked(): void {
    for (;;) {
      const parked = Atomics.load(this.ctl, CTL_PARKED);
      if (parked >= this.n) return;
      Atomics.wait(this.ctl, CTL_PARKED, parked, 50);
    }
  }

  /**
   * Lets the pinner loops run, and returns once every worker is running again (a thread woken
   * takes tens of microseconds: work started before would race with no one).
   */
  resume(): void {
    if (!this.looping.length) throw new CowsimError("EINVAL", "no pinner loops: startPinners() first");
    this.kernel.pins.pinnersRunning = true;
    Atomics.store(this.ctl, CTL_STATE, STATE_RUN);
    Atomics.notify(this.ctl, CTL_STATE);
    for (;;) {
      const parked = Atomics.load(this.ctl, CTL_PARKED);
      if (parked === 0) return;
      Atomics.wait(this.ctl, CTL_PARKED, parked, 50);
    }
  }

  /** Parks the pinner loops, holding their pins; returns once every one is parked. */
  pause(): void {
    if (!this.looping.length) throw new CowsimError("EINVAL", "no pinner loops: startPinners() first");
    Atomics.store(this.ctl, CTL_STATE, STATE_PAUSE);
    this.waitParked();
    this.kernel.pins.pinnersRunning = false;
  }

  /**
   * One round: the pinners run while `work` does, then park; the invariants are checked with
   * their pins held, and the violations returned (none: all held). Counted in the summary.
   */
  round(work: () => void): InvariantViolation[] {
    this.resume();
    try {
      work();
    } finally {
      this.pause();
      this.rounds++;
    }
    return this.kernel.checkInvariants();
  }

  /** Stops the pinner loops; each worker releases what it held. */
  async stopPinners(): Promise<PoolSummary> {
    if (!this.looping.length) return this.summary();
    Atomics.store(this.ctl, CTL_STATE, STATE_STOP);
    Atomics.notify(this.ctl, CTL_STATE);
    const loops = this.looping;
    this.looping = [];
    this.kernel.pins.pinnersRunning = false;
    await Promise.all(loops);
    Atomics.store(this.ctl, CTL_STATE, STATE_IDLE);
    Atomics.store(this.ctl, CTL_PARKED, 0);
    return this.summary();
  }

  /** What the workers did so far (exact while they are parked or stopped). */
  summary(): PoolSummary {
    let calls = 0, pins = 0, pages = 0, unpins = 0, lost = 0, noRecord = 0;
    const reasons = new Array<number>(NR_REASONS).fill(0);
    for (let i = 0; i < this.n; i++) {
      const s = STATS_BASE + i * STATS_WORDS;
      const c = this.ctl;
      calls += c[s + ST_CALLS]!;
      pins += c[s + ST_PINS]!;
      pages += c[s + ST_PAGES]!;
      unpins += c[s + ST_UNPINS]!;
      lost += c[s + ST_LOST]!;
      noRecord += c[s + ST_NO_RECORD]!;
      for (let r = 0; r < NR_REASONS; r++) reasons[r]! += c[s + ST_REASONS + r]!;
    }
    const retries: Record<string, number> = {};
    reasons.forEach((v, r) => { if (v) retries[REASON_NAMES[r]!] = v; });
    return { seed: this.seed, workers: this.n, rounds: this.rounds, calls, pins, pages, unpins, retries, noRecord, lost };
  }

  /** The summary as one line: what every run with real threads prints. */
  report(): string {
    const s = this.summary();
    const r = Object.entries(s.retries).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    return `cowsim gup-fast workers: seed ${s.seed}, ${s.workers} workers, ${s.rounds} rounds, ${s.calls} calls, ` +
      `${s.pins} pins (${s.pages} pages), ${s.unpins} unpins, retries: ${r}; no record ${s.noRecord}; broken pins ${s.lost}`;
  }

  /**
   * Stops the loops, releases every pin the workers hold, ends the threads and prints the
   * summary line (see `log`). The pool cannot be used afterwards.
   */
  async close(): Promise<PoolSummary> {
    if (this.closed) return this.summary();
    await this.stopPinners();
    const lost = await Promise.all(this.workers.map((_, i) => this.send(i, { op: "close" }) as Promise<{ lost: number }>));
    for (let i = 0; i < this.n; i++) this.ctl[STATS_BASE + i * STATS_WORDS + ST_LOST]! += lost[i]!.lost;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.kernel.core.expectThreads(-this.n);
    this.kernel.pins.sharedRecords = false;
    this.log?.(this.report());
    return this.summary();
  }
}

/**
 * Starts `n` GUP-fast worker threads over `kernel`'s machine (see {@link GupWorkerPool}).
 * Real concurrency only here: everything else in cowsim is deterministic. @public
 */
export function createGupWorkers(kernel: MmKernel, options: GupWorkersOptions = {}): GupWorkerPool {
  return new GupWorkerPool(kernel, options);
}
