/**
 * The pin registry in shared memory (assembly/pin_registry.ts), from TypeScript: GUP-fast into
 * a record of this thread's context, unpinning a record, and reading every thread's live
 * records — what the kernel layer and the oracle see of pins that worker threads hold.
 */
import { C } from "./abi.generated.js";
import { CowsimError } from "../errno.js";
import type { Core } from "./core.js";

/** One live pin record of any thread. @public */
export interface PinRecord {
  /** The index of the context (thread) that holds it. */
  readonly thread: number;
  /** Its record in that context. */
  readonly slot: number;
  /** The holder's tag (a worker's id). */
  readonly tag: number;
  readonly mm: number;
  /** FOLL_* flags it was taken with. */
  readonly flags: number;
  /** The user address of its first page; the others follow page by page. */
  readonly va: number;
  readonly pfns: readonly number[];
}

/** What one gup_pin_fast() took. @public */
export interface PinFastResult {
  /** Pages taken (from the first, in order); 0: none, and no record. */
  readonly pages: number;
  /** The record holding them (this thread's), or -1. */
  readonly slot: number;
  /** GUPF_* reason it stopped short (GUPF_OK when it took all). */
  readonly reason: number;
}

/**
 * pin_user_pages_fast_only() (FOLL_PIN) or get_user_pages_fast_only() (FOLL_GET) of up to
 * C.PIN_RECORD_PAGES pages into a record of this thread. Throws EINVAL for bad arguments,
 * ENOSPC when all of this thread's records are held.
 */
export function pinFast(core: Core, mm: number, va: number, nr: number, flags: number, tag = 0): PinFastResult {
  const x = core.x;
  const got = x.gup_pin_fast(core.ctx, mm, va, nr, flags, tag >>> 0);
  if (got === -C.ENOSPC) throw new CowsimError("ENOSPC", `all ${C.PIN_RECORDS} pin records of this thread are held`);
  if (got < 0) throw new CowsimError("EINVAL", `gup_pin_fast(mm ${mm}, 0x${va.toString(16)}, ${nr}, 0x${flags.toString(16)})`);
  return { pages: got, slot: got > 0 ? x.ctx_pin_slot(core.ctx) >>> 0 : -1, reason: x.ctx_gup_reason(core.ctx) >>> 0 };
}

/**
 * Unpins record `slot` of this thread. Returns how many of its pinned pages were broken while
 * held — shared, or unmapped behind the pin (0 unless the protocol is broken; not counted
 * without `audit`). Throws EINVAL when it is not live.
 */
export function unpinRecord(core: Core, slot: number, audit = true): number {
  const r = core.x.gup_unpin_record(core.ctx, slot, audit ? 1 : 0);
  if (r < 0) throw new CowsimError("EINVAL", `pin record ${slot} of this thread is not held`);
  return r;
}

/**
 * Every live record of every thread. Each is read under its seqcount (retried while its owner
 * changes it), so a record is whole even while workers run; the set is exact only while they
 * are paused.
 */
export function livePinRecords(core: Core): PinRecord[] {
  const out: PinRecord[] = [];
  const { u32, f64 } = core;
  for (let t = 0; t < core.layout.maxThreads; t++) {
    for (let slot = 0; slot < C.PIN_RECORDS; slot++) {
      const r = core.x.pin_record_addr(t, slot) >>> 0;
      const w = r >>> 2;
      for (let tries = 0; tries < 100; tries++) {
        const gen = Atomics.load(u32, w + C.PIN_OFF_GEN / 4);
        if (gen & 1) continue;
        if (Atomics.load(u32, w + C.PIN_OFF_STATE / 4) !== C.PIN_LIVE) break;
        const nr = u32[w + C.PIN_OFF_NR / 4]!;
        const rec: PinRecord = {
          thread: t, slot, tag: u32[w + C.PIN_OFF_TAG / 4]!, mm: u32[w + C.PIN_OFF_MM / 4]!,
          flags: u32[w + C.PIN_OFF_FLAGS / 4]!, va: f64[(r + C.PIN_OFF_VA) >>> 3]!,
          pfns: Array.from(u32.subarray(w + C.PIN_OFF_PFNS / 4, w + C.PIN_OFF_PFNS / 4 + nr)),
        };
        if (Atomics.load(u32, w + C.PIN_OFF_GEN / 4) === gen) {
          out.push(rec);
          break;
        }
      }
    }
  }
  return out;
}

/** The protocol steps left out on purpose (C.BREAK_* bits), machine-wide. @public */
export function setProtocolBreaks(core: Core, bits: number): void {
  if (core.x.set_protocol_breaks(bits >>> 0) !== 0) throw new CowsimError("EINVAL", `protocol breaks 0x${bits.toString(16)}`);
}

/**
 * The pin registry for a thread's hot loop: the same calls as {@link pinFast} and
 * {@link unpinRecord} without an object per call — the record and the reason of the last pin
 * are read afterwards. @public
 */
export class PinCursor {
  constructor(private readonly core: Core) {}

  /** gup_pin_fast(): pages taken (0: none, see reason()), -1 when no record is free. Throws EINVAL for bad arguments. */
  pin(mm: number, va: number, nr: number, flags: number, tag: number): number {
    const n = this.core.x.gup_pin_fast(this.core.ctx, mm, va, nr, flags, tag);
    if (n >= 0) return n;
    if (n === -C.ENOSPC) return -1;
    throw new CowsimError("EINVAL", `gup_pin_fast(mm ${mm}, 0x${va.toString(16)}, ${nr}, 0x${flags.toString(16)})`);
  }
  /** The record the last pin() filled. */
  slot(): number {
    return this.core.x.ctx_pin_slot(this.core.ctx) >>> 0;
  }
  /** Why the last pin() stopped short (GUPF_*). */
  reason(): number {
    return this.core.x.ctx_gup_reason(this.core.ctx) >>> 0;
  }
  /** gup_unpin_record(): the broken pages found with `audit` (see {@link unpinRecord}). */
  unpin(slot: number, audit: boolean): number {
    return unpinRecord(this.core, slot, audit);
  }
  /** Unpins every record this thread holds; the broken pages found. */
  unpinAll(): number {
    return this.core.x.gup_unpin_all(this.core.ctx);
  }

  // a pinner's loop inside the core (assembly/pin_registry.ts's gup_pin_cycle()): its state and
  // counters live in this thread's scratch area, so one call runs many iterations

  /** Starts the loop's state: nothing held, every counter 0, the random stream from `seed`. */
  cycleInit(seed: number): void {
    this.core.x.pin_cycle_init(this.core.ctx, seed >>> 0);
  }
  /**
   * `iters` iterations: release the oldest record once `hold` are held, then GUP-fast `batch`
   * pages at a random window of the `pages` pages from `va`. Throws EINVAL for bad arguments.
   */
  cycle(mm: number, va: number, pages: number, batch: number, flags: number, tag: number, hold: number, iters: number, audit: boolean): void {
    if (this.core.x.gup_pin_cycle(this.core.ctx, mm, va, pages, batch, flags, tag, hold, iters, audit ? 1 : 0) < 0) {
      throw new CowsimError("EINVAL", `gup_pin_cycle(mm ${mm}, 0x${va.toString(16)}, ${pages} pages, batch ${batch}, hold ${hold})`);
    }
  }
  /** Releases what the loop holds. */
  cycleDrain(hold: number, audit: boolean): void {
    this.core.x.pin_cycle_drain(this.core.ctx, hold, audit ? 1 : 0);
  }
  /**
   * The loop's counters so far: calls, pins (records), pages, unpins, broken pages, calls
   * without a free record, and calls that stopped short by GUPF_* reason.
   */
  cycleCounts(): { calls: number; pins: number; pages: number; unpins: number; lost: number; noRecord: number; reasons: number[] } {
    const x = this.core.x, c = this.core.ctx;
    const w = (i: number) => x.pin_cycle_count(c, i) >>> 0;
    const reasons: number[] = [];
    for (let r = 0; r <= C.GUPF_SEQ_RETRY; r++) reasons.push(w(C.PIN_CYCLE_REASONS + r));
    return {
      calls: w(C.PIN_CYCLE_CALLS), pins: w(C.PIN_CYCLE_PINS), pages: w(C.PIN_CYCLE_PAGES), unpins: w(C.PIN_CYCLE_UNPINS),
      lost: w(C.PIN_CYCLE_LOST), noRecord: w(C.PIN_CYCLE_NO_RECORD), reasons,
    };
  }
}
