/**
 * The core's trace log, delivered (assembly/trace_log.ts). A call into the core made with
 * FAST_LOG recorded, in order, the accesses it completed, the do_anonymous_page() faults and
 * the write-protect faults it took; after the call the kernel emits their tracepoints from the
 * log — the same events, with the same contents and in the same order, as the accesses one by
 * one would have emitted, for subscribers that take events after the call (the oracle, the
 * journal: SubscribeOptions.deferred). A run of accesses then stays in the core while they watch.
 */
import { C } from "../core/index.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_SHARED } from "./vma.js";
import type { CopyFacts, TraceEvents, TraceLogReader } from "../trace/events.js";
import type { WpDecision, WpFacts, WpHelpers } from "../policy/strategy.js";

/** What a delivery emits. */
export const Deliver = {
  /** Every event of a single access (its step was begun before the call). */
  Access: 0,
  /** Every event, each access's group preceded by its step (a run: writeRange(), accessList()). */
  Steps: 1,
  /** The write-protect faults only: GUP's and populate's fault-ins are no accesses of the process. */
  FaultIn: 2,
} as const;
export type Deliver = (typeof Deliver)[keyof typeof Deliver];

/**
 * FAST_LOG when the core should log: someone subscribes to the tracepoints of accesses and
 * faults, or to the steps a run's accesses are. (Where a subscriber is immediate the run goes
 * page by page anyway, and a single access's events come after its call either way.)
 */
export function traceLogBits(k: MmKernel): number {
  const P = k.trace.points;
  return P.access.listening || P.do_anonymous_page.listening || P.do_wp_page.listening || P.wp_page_copy.listening ||
    P.step.listening ? C.FAST_LOG : 0;
}

/**
 * The reader a run of stores in `vma` may go to in one call (TraceLogReader.storeRun(), the
 * core logging only its write-protect faults: FAST_LOG_WP_ONLY), or null: the log's reader
 * takes store runs, nobody listens to steps or first-touch faults, and the memory is private
 * anonymous (a store there is a value for a page, nothing of a shared object).
 */
export function storeRunReader(k: MmKernel, vma: Vma): TraceLogReader | null {
  const r = k.trace.logReader;
  if (r === null || r.storeRuns !== true || vma.shmem !== null) return null;
  const P = k.trace.points;
  return P.step.listening || P.do_anonymous_page.listening ? null : r;
}

/** Whether a run may stay in the core: nobody must see its accesses and first-touch faults as they happen. */
export function runMayBatch(k: MmKernel): boolean {
  const P = k.trace.points;
  return !P.access.immediate && !P.do_anonymous_page.immediate;
}

// the core's constants as module constants: C is a large object, and the loop reads them per entry
const LOG_ACCESS = C.LOG_ACCESS;
const LOG_ANON = C.LOG_ANON;
const LOG_ZERO_PAGE = C.LOG_ZERO_PAGE;
const LOG_WP_REUSE = C.LOG_WP_REUSE;
const LOG_WP_COPY = C.LOG_WP_COPY;
const LOG_WP_ZERO = C.LOG_WP_ZERO;
const STEPS = Deliver.Steps;
const FAULT_IN = Deliver.FaultIn;
const WORDS = C.LOG_ENTRY_BYTES >>> 2;
const F64S = C.LOG_ENTRY_BYTES >>> 3;
const PG_ANON_EXCLUSIVE = 1 << C.PG_anon_exclusive;
const PG_LRU = 1 << C.PG_lru;
const PG_WRITEBACK = 1 << C.PG_writeback;
const PG_HEAD = 1 << C.PG_head;
const ZERO_PAGE_RULE = "do_wp_page(): write to the shared zero page";

// the events, reused (an event is valid during its delivery only)
const accessEvent: TraceEvents["access"] = { pid: 0, address: 0, write: false, value: 0, pfn: 0, objId: 0, index: 0, cow: false };
const anonEvent: TraceEvents["do_anonymous_page"] = { pid: 0, address: 0, pfn: 0, zero: false };
const wpEvent: TraceEvents["do_wp_page"] = { pid: 0, address: 0, pfn: 0, unshare: false, reuse: false, rule: "" };
const stepEvent: TraceEvents["step"] = { pid: 0, call: null, code: 0, addr: 0, value: 0 };

/**
 * A strategy's helpers answered from a log entry: the counts as the core read them at the fault
 * (the refcount before and after lru_add_drain()), the folio unlocked and outside the swap cache
 * (the only faults the core decides).
 */
class LoggedWpHelpers implements WpHelpers {
  rc0 = 0;
  rc1 = 0;
  map = 0;
  drained = false;
  refcount(): number { return this.drained ? this.rc1 : this.rc0; }
  mapcount(): number { return this.map; }
  swapcount(): number { return 0; }
  lruAddDrain(): void { this.drained = true; }
  freeSwap(): boolean { return false; }
  trylock(): boolean { return true; }
  unlock(): void {}
}
const logged = new LoggedWpHelpers();

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const facts: Mutable<WpFacts> = { pfn: 0, exclusive: false, ksm: false, large: false, lru: false, swapcache: false, writeback: false, unshare: false };
const copyFacts: Mutable<CopyFacts> = { mapcount: 0, swapcount: 0, snapshotRefs: 0, refcount: 0, ksm: false };
const copyEvent: TraceEvents["wp_page_copy"] = {
  pid: 0, address: 0, pfn: 0, newPfn: 0, zeroPage: false, unshare: false, rule: "", facts: copyFacts,
};

/**
 * A built-in strategy's decisions by the facts that decide them — the flags the rules read and
 * the counts — so that a run of faults alike asks wpReuse() once (its rule texts name the
 * counts, never the pfn). Per strategy object: a kernel's strategy is fixed.
 */
const decisions = new WeakMap<object, Map<number, WpDecision>>();
/** The last strategy asked, and its decisions: a run's faults are one kernel's. */
let lastStrategy: object | null = null;
let lastMemo: Map<number, WpDecision> | undefined;

/**
 * Emits the tracepoints of the entries the last core call logged, and empties the log. Call it
 * after every call made with FAST_LOG, before anything else happens: the entries describe the
 * accesses of `p` in `vma` (a call never leaves one VMA). `step` is the step code of a run's
 * accesses (CALL_READ / CALL_WRITE) under Deliver.Steps.
 */
export function deliverTraceLog(k: MmKernel, p: MmProcess, vma: Vma, how: Deliver, step = 0): void {
  const ops = k.ops;
  const n = ops.logCount();
  if (n === 0) return;
  ops.logReset();
  const w = ops.logWords;
  const f = ops.logF64;
  const P = k.trace.points;
  const pid = p.pid;
  // what is emitted, decided once for the call
  const steps = how === STEPS && P.step.listening;
  const accesses = how !== FAULT_IN && P.access.listening;
  const anons = how !== FAULT_IN && P.do_anonymous_page.listening;
  const shmem = vma.shmem;
  const objId = shmem ? shmem.id : 0;
  const cow = shmem !== null && !(vma.flags & VM_SHARED);
  const ae = accessEvent;
  ae.pid = pid;
  ae.objId = objId;
  ae.cow = cow;
  ae.index = 0;
  const ne = anonEvent;
  ne.pid = pid;
  const se = stepEvent;
  se.pid = pid;
  se.code = step;
  // a reader of the whole log (the oracle) takes the events through its methods instead
  const reader = k.trace.logReader;
  let groupStart = true;
  for (let i = 0; i < n; i++) {
    const o = i * WORDS;
    const kind = w[o]!;
    const address = f[i * F64S + 4]!;
    if (steps && groupStart) {
      // the step of the access this entry begins (beginAccess()'s event): its ACCESS entry
      // ends the group, with the value
      let j = i;
      while (j < n && w[j * WORDS] !== LOG_ACCESS) j++;
      // (a run's call ends each access it logged with its ACCESS entry: a page it stops at
      // logs nothing, and its step is the single access's)
      if (j < n) {
        const value = w[j * WORDS + 6]! & 1 ? f[j * F64S + 5]! : 0;
        if (reader !== null) reader.step(pid, step, address, value);
        else {
          se.addr = address;
          se.value = value;
          P.step.emit(se);
        }
      }
    }
    groupStart = kind === LOG_ACCESS;
    switch (kind) {
      case LOG_ACCESS: {
        if (!accesses) break;
        if (reader !== null) {
          reader.access(pid, address, (w[o + 6]! & 1) !== 0, f[i * F64S + 5]!, w[o + 1]! >>> 0, objId, shmem ? vma.index(address) : 0, cow);
          break;
        }
        ae.address = address;
        ae.write = (w[o + 6]! & 1) !== 0;
        ae.value = f[i * F64S + 5]!;
        ae.pfn = w[o + 1]! >>> 0;
        if (shmem) ae.index = vma.index(address);
        P.access.emit(ae);
        break;
      }
      case LOG_ANON:
      case LOG_ZERO_PAGE: {
        if (!anons) break;
        if (reader !== null) {
          reader.doAnonymousPage(pid, address, w[o + 1]! >>> 0, kind === LOG_ZERO_PAGE);
          break;
        }
        ne.address = address;
        ne.pfn = w[o + 1]! >>> 0;
        ne.zero = kind === LOG_ZERO_PAGE;
        P.do_anonymous_page.emit(ne);
        break;
      }
      case LOG_WP_REUSE:
      case LOG_WP_COPY:
        deliverWpFault(k, p, w, o, address, kind === LOG_WP_COPY, reader);
        break;
      case LOG_WP_ZERO:
        if (reader !== null && P.wp_page_copy.listening) {
          reader.wpPageCopyZero(pid, address, w[o + 2]! >>> 0, ZERO_PAGE_RULE);
        } else if (P.wp_page_copy.listening) {
          P.wp_page_copy.emit({ pid: p.pid, address, pfn: 0, newPfn: w[o + 2]! >>> 0, zeroPage: true, unshare: false,
            rule: ZERO_PAGE_RULE, facts: null });
        }
        break;
      default:
        throw new Error(`cowsim: trace log entry ${i} of ${n} has kind ${kind}`);
    }
  }
}

/**
 * do_wp_page()'s events for a fault the core decided: the rule is the strategy's own, asked
 * again with the facts as the core found them — and it must reach the core's outcome (the core
 * restates the built-in rules as data; a disagreement is a bug in one of them).
 */
function deliverWpFault(k: MmKernel, p: MmProcess, w: Int32Array, o: number, address: number, copied: boolean,
  reader: TraceLogReader | null): void {
  const P = k.trace.points;
  if (!P.do_wp_page.listening && !(copied && P.wp_page_copy.listening)) return;
  const pfn = w[o + 1]! >>> 0;
  const flags = w[o + 6]!;
  const map = w[o + 3]!;
  const rc0 = w[o + 4]!;
  const rc1 = w[o + 5]!;
  const d = decide(k, pfn, flags, map, rc0, rc1);
  if (d.reuse === copied) {
    throw new Error(`cowsim: the core ${copied ? "copied" : "reused"} pfn ${pfn} at 0x${address.toString(16)}, but ${k.strategy.id}'s wpReuse() says "${d.rule}"`);
  }
  if (P.do_wp_page.listening) {
    if (reader !== null) reader.doWpPage(p.pid, address, pfn, d.reuse, d.rule);
    else emitDoWpPage(k, p.pid, address, pfn, false, d);
  }
  if (copied && P.wp_page_copy.listening) {
    copyFacts.mapcount = map;
    // of a large folio, only this page's mappings and references can observe what is copied
    copyFacts.snapshotRefs = flags & PG_HEAD ? k.snapshotRefs(k.core.frames.folio(pfn), pfn) : k.snapshotRefs(pfn);
    copyFacts.refcount = rc1;
    if (reader !== null) {
      reader.wpPageCopy(p.pid, address, pfn, w[o + 2]! >>> 0, d.rule, copyFacts);
      return;
    }
    const e = copyEvent;
    e.pid = p.pid;
    e.address = address;
    e.pfn = pfn;
    e.newPfn = w[o + 2]! >>> 0;
    e.rule = d.rule;
    e.facts = copyFacts;
    P.wp_page_copy.emit(e);
  }
}

/** The do_wp_page tracepoint: the strategy's decision `d` of a fault at `address` (its event reused). */
export function emitDoWpPage(k: MmKernel, pid: number, address: number, pfn: number, unshare: boolean, d: WpDecision): void {
  const e = wpEvent;
  e.pid = pid;
  e.address = address;
  e.pfn = pfn;
  e.unshare = unshare;
  e.reuse = d.reuse;
  e.rule = d.rule;
  k.trace.points.do_wp_page.emit(e);
}

/** The strategy's decision for a logged fault, asked once per set of deciding facts. */
function decide(k: MmKernel, pfn: number, flags: number, map: number, rc0: number, rc1: number): WpDecision {
  // the folio's flags: a large one's is its head's (a PTE-mapped page the core copied by WPR_LARGE_COPIES)
  const bits = (flags & PG_ANON_EXCLUSIVE ? 1 : 0) | (flags & PG_LRU ? 2 : 0) | (flags & PG_WRITEBACK ? 4 : 0) | (flags & PG_HEAD ? 8 : 0);
  const small = (map | rc0 | rc1) >>> 0 < 256;
  const key = ((map * 256 + rc0) * 256 + rc1) * 16 + bits;
  let memo = k.strategy === lastStrategy ? lastMemo : decisions.get(k.strategy);
  const known = small ? memo?.get(key) : undefined;
  if (known !== undefined) return known;
  facts.pfn = pfn;
  facts.exclusive = (bits & 1) !== 0;
  facts.lru = (bits & 2) !== 0;
  facts.writeback = (bits & 4) !== 0;
  facts.large = (bits & 8) !== 0;
  logged.rc0 = rc0;
  logged.rc1 = rc1;
  logged.map = map;
  logged.drained = false;
  const d = k.strategy.wpReuse(facts, logged);
  if (small) {
    if (memo === undefined) decisions.set(k.strategy, (memo = new Map()));
    memo.set(key, d);
    lastStrategy = k.strategy;
    lastMemo = memo;
  }
  return d;
}
