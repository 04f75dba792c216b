/**
 * The journal: what happened, step by step, and to which frames — the material the oracle's
 * explanations are made of. Every public call is one numbered step; within it, the kernel
 * functions that ran and the rules that decided are entries. Each entry names the frames and the
 * processes it is about, so a finding can be explained as the chain of steps that touched its page.
 *
 * It stays on in long runs, so it is built like a trace buffer: steps and entries live in
 * fixed-size rings of typed arrays (an old finding's chain may start mid-way), an entry is a
 * handful of numbers stored and nothing linked — a chain is found by a scan of the ring when a
 * finding asks for it (rare; an entry is made per access and fault) —, the text of a step or an
 * entry is made only when explained, and each frame's birth and last store are kept per frame.
 */

import type { TraceBus, TraceEvents, TraceName } from "../trace/events.js";
import { C } from "../core/index.js";
import { SizedPool } from "../util/sized-pool.js";

/** One thing the kernel did. @public */
export interface JournalEntry {
  /** The user-level step (1-based: the n-th public call). */
  readonly step: number;
  /** The process the call was made by. */
  readonly pid: number;
  /** The call as the user made it, e.g. "write(0x7ffff7ff0000, 2)". */
  readonly call: string;
  /** The kernel function that acted, e.g. "do_wp_page". */
  readonly fn: string;
  /** What it did and why. */
  readonly what: string;
  /** The counter this decision added to, if any (e.g. "copies", "reuses"). */
  readonly counter?: string;
}

/** A numbered link of an explanation. @public */
export interface ChainStep extends JournalEntry {
  readonly n: number;
}

const hex = (a: number) => "0x" + a.toString(16);
/** Calls that are a code and two numbers (made on every access, so never a string). */
const CALLS: ((a: number, b: number) => string)[] = [
  () => "",
  (a) => `read(${hex(a)})`,
  (a, b) => `write(${hex(a)}, ${b})`,
];

/** Writes an entry's text from its three numbers. */
export type Format = (a: number, b: number, c: number, s: string) => string;

const STEPS = 1 << 16;
const ENTRIES = 1 << 16;
const NONE = -1;
/**
 * The rings start this small and double until full size: most runs are a few hundred steps, and
 * zeroing full-size rings for each would cost more than the run. Until a ring is full no index
 * has wrapped, so `n % STEPS` finds the same slot in the grown ring.
 */
const FIRST = 256;

/** Journals given back, by frame count (Journal.make()). */
const POOL = new SizedPool<Journal>(2);

// the kinds of HOT_KINDS (module constants: the engine folds them)
const K_ZERO_FAULT = 1;
const K_ANON_FAULT = 2;
const K_WP_WRITE_REUSE = 3;
const K_WP_WRITE_COPY = 4;
const K_WP_UNSHARE_REUSE = 5;
const K_WP_UNSHARE_COPY = 6;
const K_COPY = 7;
const K_ZERO_WRITE_COPY = 8;
const K_ZERO_UNSHARE_COPY = 9;

/** An array of `n` empty slots that exist (holes would let a store far past the end make it a dictionary). */
function slots<T>(n: number): (T | undefined)[] {
  const a: (T | undefined)[] = [];
  extend(a, n);
  return a;
}

function extend<T>(a: (T | undefined)[], n: number): void {
  for (let i = a.length; i < n; i++) a.push(undefined);
}

function grown<T extends Int32Array | Float64Array>(a: T, size: number): T {
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}

export class Journal {
  step = 0;
  // steps (ring)
  private stepPid = new Int32Array(FIRST);
  private stepCall = new Int32Array(FIRST);
  private stepA = new Float64Array(FIRST);
  private stepB = new Float64Array(FIRST);
  /** The text of each step begun by a syscall, made only when a chain shows it. */
  private readonly stepText: (string | (() => string) | undefined)[] = [];
  // entries (ring); an entry names up to two frames, and links to the previous entry of each
  private count = 0;
  private eStep = new Int32Array(FIRST);
  private ePid = new Int32Array(FIRST);
  private eFn = new Int32Array(FIRST);
  private eFrame0 = new Int32Array(FIRST);
  private eFrame1 = new Int32Array(FIRST);
  /** The other process a process-wide entry is about (fork's child), or NONE. */
  private eOther = new Int32Array(FIRST);
  /** The entry's kind among HOT_KINDS, or 0: its function, text and counter are in eFn, eWhat, eS, eCounter. */
  private eKind = new Int32Array(FIRST);
  // (sized with the rings, so that an entry at any slot stores into an element that exists)
  private readonly eWhat: (string | (() => string) | Format | undefined)[] = slots(FIRST);
  private eA = new Float64Array(FIRST);
  private eB = new Float64Array(FIRST);
  private eC = new Float64Array(FIRST);
  private readonly eS: (string | undefined)[] = slots(FIRST);
  private readonly eCounter: (string | undefined)[] = slots(FIRST);
  /** A hot entry's rule (do_wp_page's), by its index in `rules`. */
  private eRule = new Int32Array(FIRST);
  private readonly rules: string[] = [];
  private readonly ruleCodes = new Map<string, number>();
  private readonly fnNames: string[] = [];
  private readonly fnCodes = new Map<string, number>();
  // per frame
  private readonly frameBornAt: Float64Array;
  /** How many entries there were when the frame was last born: its history is the entries from there. */
  private readonly frameBornN: Float64Array;
  private readonly storePid: Int32Array;
  private readonly storeStep: Float64Array;
  private readonly storeValue: Float64Array;

  constructor(nframes: number) {
    this.frameBornAt = new Float64Array(nframes);
    this.frameBornN = new Float64Array(nframes);
    this.storePid = new Int32Array(nframes);
    this.storeStep = new Float64Array(nframes);
    this.storeValue = new Float64Array(nframes);
  }

  /**
   * A journal for a machine of `nframes` frames: one a released kernel gave back when there is
   * one (a catalog check makes a kernel per run, and its journal's arrays were most of what a
   * new kernel allocated), else a new one.
   */
  static make(nframes: number): Journal {
    const j = POOL.take(nframes);
    if (j === undefined) return new Journal(nframes);
    j.reset();
    return j;
  }

  /** Gives the journal back for {@link Journal.make}: nothing may use it afterwards. */
  giveBack(): void {
    POOL.give(this.frameBornAt.length, this);
  }

  /** As new: no step, no entry; the rings keep the size they grew to (nothing below `count` is read). */
  private reset(): void {
    this.step = 0;
    this.count = 0;
    this.stepText.length = 0;
    this.eWhat.fill(undefined);
    this.eS.fill(undefined);
    this.eCounter.fill(undefined);
    this.rules.length = 0;
    this.ruleCodes.clear();
    this.ruleA = "";
    this.ruleCodeA = 0;
    this.fnNames.length = 0;
    this.fnCodes.clear();
    this.fnA = this.fnB = "";
    this.codeA = this.codeB = 0;
    this.frameBornAt.fill(0);
    this.frameBornN.fill(0);
    this.storePid.fill(0);
    this.storeStep.fill(0);
    this.storeValue.fill(0);
    this.stepPid[0] = 0;
  }

  get pid(): number {
    return this.stepPid[this.step % STEPS]!;
  }

  /** The current step's call as text. */
  get call(): string {
    return this.callOf(this.step);
  }

  /** Starts a user-level step with a call written out in full (syscalls). */
  begin(pid: number, call: string | (() => string)): void {
    this.beginCode(pid, -1, 0, 0);
    this.stepText[this.step % STEPS] = call;
  }

  /** Starts a user-level step whose call is a code and two numbers (loads and stores). */
  beginCode(pid: number, code: number, a: number, b: number): void {
    const i = ++this.step % STEPS;
    if (i >= this.stepPid.length) this.growSteps();
    this.stepPid[i] = pid;
    this.stepCall[i] = code;
    this.stepA[i] = a;
    this.stepB[i] = b;
  }

  private growSteps(): void {
    const size = Math.min(this.stepPid.length * 2, STEPS);
    this.stepPid = grown(this.stepPid, size);
    this.stepCall = grown(this.stepCall, size);
    this.stepA = grown(this.stepA, size);
    this.stepB = grown(this.stepB, size);
  }

  private growEntries(): void {
    const size = Math.min(this.eStep.length * 2, ENTRIES);
    this.eStep = grown(this.eStep, size);
    this.ePid = grown(this.ePid, size);
    this.eFn = grown(this.eFn, size);
    this.eFrame0 = grown(this.eFrame0, size);
    this.eFrame1 = grown(this.eFrame1, size);
    this.eOther = grown(this.eOther, size);
    this.eA = grown(this.eA, size);
    this.eB = grown(this.eB, size);
    this.eC = grown(this.eC, size);
    this.eKind = grown(this.eKind, size);
    this.eRule = grown(this.eRule, size);
    extend(this.eWhat, size);
    extend(this.eS, size);
    extend(this.eCounter, size);
  }

  private callOf(step: number): string {
    if (step <= this.step - STEPS) return "(an older step)";
    const i = step % STEPS;
    const code = this.stepCall[i]!;
    if (code >= 0) return CALLS[code]!(this.stepA[i]!, this.stepB[i]!);
    let text = this.stepText[i]!;
    if (typeof text === "function") this.stepText[i] = text = text();
    return text;
  }

  private fnCode(fn: string): number {
    // a run of faults alternates between two or three functions: the last two, without the map
    if (fn === this.fnA) return this.codeA;
    if (fn === this.fnB) return this.codeB;
    let c = this.fnCodes.get(fn);
    if (c === undefined) {
      c = this.fnNames.push(fn) - 1;
      this.fnCodes.set(fn, c);
    }
    this.fnB = this.fnA;
    this.codeB = this.codeA;
    this.fnA = fn;
    this.codeA = c;
    return c;
  }
  private fnA = "";
  private codeA = 0;
  private fnB = "";
  private codeB = 0;

  private ruleCode(rule: string): number {
    // a run of faults is decided by one or two rules: the last one, without the map
    if (rule === this.ruleA) return this.ruleCodeA;
    let c = this.ruleCodes.get(rule);
    if (c === undefined) {
      c = this.rules.push(rule) - 1;
      this.ruleCodes.set(rule, c);
    }
    this.ruleA = rule;
    this.ruleCodeA = c;
    return c;
  }
  private ruleA = "";
  private ruleCodeA = 0;

  /**
   * Records what kernel function `fn` did in the current step (`what` may be a function that
   * writes the text when it is needed), about up to two frames, and about another process.
   */
  add(fn: string, what: string | (() => string), pfns: readonly number[] = [], pids: readonly number[] = [], counter?: string): void {
    this.record(fn, what, 0, 0, 0, pfns.length > 0 ? pfns[0]! : NONE, pfns.length > 1 ? pfns[1]! : NONE,
      pids.length > 0 ? pids[0]! : NONE, counter);
  }

  /**
   * The same for the entries made on hot paths: a module-level `format` and three numbers, so
   * recording allocates nothing.
   */
  addf(fn: string, format: Format, a: number, b: number, c: number, pfn0 = NONE, pfn1 = NONE, str = "", counter?: string): void {
    this.record(fn, format, a, b, c, pfn0, pfn1, NONE, counter);
    this.eS[(this.count - 1) % ENTRIES] = str;
  }

  private record(fn: string, what: string | (() => string) | Format, a: number, b: number, c: number,
    f0: number, f1: number, other: number, counter?: string): void {
    const i = this.writeEntry(0, a, b, c, f0, f1, other);
    this.eCounter[i] = counter;
    this.eFn[i] = this.fnCode(fn);
    this.eWhat[i] = what;
  }

  /**
   * The entries of every access and fault (the trace log's): a kind of HOT_KINDS and numbers,
   * so that recording stores into typed arrays only. `rule` is do_wp_page's.
   */
  private recordHot(kind: number, a: number, b: number, c: number, f0: number, f1: number, rule = 0): void {
    const i = this.writeEntry(kind, a, b, c, f0, f1, NONE);
    this.eRule[i] = rule;
  }

  /** The next entry's slot, its numbers written (a chain finds them by a scan: chainOf()). */
  private writeEntry(kind: number, a: number, b: number, c: number, f0: number, f1: number, other: number): number {
    const n = this.count++;
    const i = n % ENTRIES;
    if (i >= this.eStep.length) this.growEntries();
    const pid = this.pid;
    this.eKind[i] = kind;
    this.eStep[i] = this.step;
    this.ePid[i] = pid;
    this.eA[i] = a;
    this.eB[i] = b;
    this.eC[i] = c;
    this.eFrame0[i] = f0;
    this.eFrame1[i] = f1;
    this.eOther[i] = other;
    return i;
  }

  /** do_anonymous_page(): a fresh exclusive page at `address` (born), or the shared zero page mapped there. */
  anonymousPage(pid: number, address: number, pfn: number, zero: boolean): void {
    if (zero) {
      this.recordHot(K_ZERO_FAULT, pid, address, 0, NONE, NONE);
    } else {
      this.frameBorn(pfn);
      this.recordHot(K_ANON_FAULT, pid, address, pfn, pfn, NONE);
    }
  }

  /** do_wp_page(): the fault on `pfn` and the strategy's decision. */
  wpPage(pid: number, address: number, pfn: number, unshare: boolean, reuse: boolean, rule: string): void {
    const kind = unshare ? (reuse ? K_WP_UNSHARE_REUSE : K_WP_UNSHARE_COPY) : reuse ? K_WP_WRITE_REUSE : K_WP_WRITE_COPY;
    this.recordHot(kind, pid, address, pfn, pfn, NONE, this.ruleCode(rule));
  }

  /** wp_page_copy(): `pid` maps `newPfn` (born), a copy of `pfn`, at `address`. */
  pageCopied(pid: number, address: number, pfn: number, newPfn: number): void {
    this.frameBorn(newPfn);
    this.recordHot(K_COPY, pid, address, newPfn, newPfn, pfn);
  }

  /** wp_page_copy() of the shared zero page: a fresh `newPfn` (born) at `address`. */
  zeroPageCopied(pid: number, address: number, newPfn: number, unshare: boolean): void {
    this.frameBorn(newPfn);
    this.recordHot(unshare ? K_ZERO_UNSHARE_COPY : K_ZERO_WRITE_COPY, pid, address, newPfn, newPfn, NONE);
  }

  /** How many entries were ever recorded: a cursor for {@link entriesSince}. */
  get entryCount(): number {
    return this.count;
  }

  /**
   * The entries recorded since cursor `from` (those still in the ring), in order, written out:
   * the event stream a trace is made of.
   */
  entriesSince(from: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let n = Math.max(from, this.count - ENTRIES, 0); n < this.count; n++) out.push(this.link(n));
    return out;
  }

  /** A store into a frame (kept per frame, not as an entry). */
  store(pfn: number, pid: number, value: number): void {
    this.storePid[pfn] = pid;
    this.storeStep[pfn] = this.step;
    this.storeValue[pfn] = value;
  }

  /** Who stored last into `pfn` since it was allocated, if anyone. */
  lastWriter(pfn: number): number | undefined {
    return this.storeStep[pfn]! > this.frameBornAt[pfn]! ? this.storePid[pfn] : undefined;
  }

  /** A frame starts a new life (allocated): its history starts here. */
  frameBorn(pfn: number): void {
    this.frameBornAt[pfn] = this.step;
    this.frameBornN[pfn] = this.count;
    this.storeStep[pfn] = 0;
  }

  private link(n: number): JournalEntry {
    const i = n % ENTRIES;
    const step = this.eStep[i]!;
    const kind = this.eKind[i]!;
    if (kind !== 0) {
      const h = HOT_KINDS[kind]!;
      const text = h.format(this.eA[i]!, this.eB[i]!, this.eC[i]!, this.rules[this.eRule[i]!] ?? "");
      return { step, pid: this.ePid[i]!, call: this.callOf(step), fn: h.fn, what: text, counter: h.counter };
    }
    const what = this.eWhat[i]!;
    const text = typeof what === "string" ? what : what.length === 0 ? (what as () => string)()
      : (what as Format)(this.eA[i]!, this.eB[i]!, this.eC[i]!, this.eS[i] ?? "");
    const counter = this.eCounter[i];
    return { step, pid: this.ePid[i]!, call: this.callOf(step), fn: this.fnNames[this.eFn[i]!]!, what: text, ...(counter ? { counter } : {}) };
  }

  /**
   * The chain that explains what happened to `pfn` as seen by processes `pids`: the frame's
   * history since it was allocated, those processes' process-wide events (fork, exit, munmap …)
   * over the same span, and the last store into the frame, in order, numbered; then `last`.
   */
  explain(pfn: number, pids: readonly number[], last?: Omit<JournalEntry, "call">): ChainStep[] {
    return this.finish(pfn, this.chainOf(pfn, pids).map((n) => this.link(n)), last);
  }

  /**
   * The entries of a chain, in order: those about `pfn` since it was last born, and the
   * process-wide ones of `pids` (as the caller or the other process) over the same steps — found
   * by a scan of the ring, so that recording links nothing (an explanation is rare, a record is
   * made per access and fault).
   */
  private chainOf(pfn: number, pids: readonly number[]): number[] {
    const born = this.frameBornAt[pfn] ?? 0;
    const bornN = this.frameBornN[pfn] ?? 0;
    const out: number[] = [];
    for (let n = Math.max(0, this.count - ENTRIES); n < this.count; n++) {
      const i = n % ENTRIES;
      if (this.eStep[i]! < born) continue;
      const f0 = this.eFrame0[i]!;
      if (n >= bornN && (f0 === pfn || this.eFrame1[i] === pfn)) out.push(n);
      else if (f0 < 0) {
        // about no frame: the caller's and the other process's
        const pid = this.ePid[i]!;
        const other = this.eOther[i]!;
        if (pids.includes(pid) || (other >= 0 && pids.includes(other))) out.push(n);
      }
    }
    return out;
  }

  /** A chain's links with the last store into `pfn` in its place and `last` at the end, numbered. */
  private finish(pfn: number, links: Omit<ChainStep, "n">[], last?: Omit<JournalEntry, "call">): ChainStep[] {
    const writer = this.lastWriter(pfn);
    if (writer !== undefined) {
      const step = this.storeStep[pfn]!;
      const at = links.findIndex((l) => l.step > step);
      const link = { step, pid: writer, call: this.callOf(step), fn: "store", what: `pid ${writer} stores ${this.storeValue[pfn]} into pfn ${pfn}` };
      if (at < 0) links.push(link); else links.splice(at, 0, link);
    }
    if (last) links.push({ ...last, call: this.callOf(last.step) });
    return links.map((l, k) => ({ n: k + 1, ...l }));
  }

  /**
   * Writes out every text still made on demand (a snapshot keeps data, not functions); what
   * the entries say stays the same.
   */
  materialize(): void {
    for (let i = 0; i < this.eWhat.length; i++) {
      const what = this.eWhat[i];
      if (typeof what !== "function" || this.eKind[i] !== 0) continue;
      this.eWhat[i] = what.length === 0 ? (what as () => string)() : (what as Format)(this.eA[i]!, this.eB[i]!, this.eC[i]!, this.eS[i] ?? "");
    }
    for (let i = 0; i < this.stepText.length; i++) {
      const text = this.stepText[i];
      if (typeof text === "function") this.stepText[i] = text();
    }
  }

  /**
   * Subscribes to the kernel's tracepoints: each becomes an entry of the step it happens in.
   * Returns its listeners of the trace log's tracepoints (a reader of the log stands for them).
   */
  attach(bus: TraceBus): readonly unknown[] {
    // the tracepoints of every access and fault get handlers of their own, so that each call
    // inside is one the engine can inline (closures made in one loop share their call sites)
    // — and take them after the core call that made them (the trace log): an entry is made of
    // its event alone
    const E = ENTRIES_OF as Required<typeof ENTRIES_OF>;
    const later = { deferred: true } as const;
    const hot: unknown[] = [];
    const on = <K extends TraceName>(name: K, fn: (e: TraceEvents[K]) => void) => { bus.on(name, fn, later); hot.push(fn); };
    on("step", (e) => E.step(this, e));
    on("access", (e) => E.access(this, e));
    on("do_anonymous_page", (e) => E.do_anonymous_page(this, e));
    on("do_wp_page", (e) => E.do_wp_page(this, e));
    on("wp_page_copy", (e) => E.wp_page_copy(this, e));
    const HOT = new Set<string>(["step", "access", "do_anonymous_page", "do_wp_page", "wp_page_copy"]);
    for (const name of Object.keys(ENTRIES_OF) as TraceName[]) {
      if (HOT.has(name)) continue;
      const record = ENTRIES_OF[name] as (j: Journal, e: unknown) => void;
      bus.on(name, (e) => record(this, e));
    }
    return hot;
  }
}

const NO = NONE;
// the texts of the hot paths are module-level formats, so that recording allocates nothing
const ZERO_FAULT: Format = (pid, addr) => `pid ${pid} reads ${hex(addr)}: the shared zero page is mapped`;
const ANON_FAULT: Format = (pid, addr, pfn) => `pid ${pid} faults ${hex(addr)} in: fresh exclusive pfn ${pfn}`;
const WP_WRITE_FAULT: Format = (pid, addr, pfn, rule) => `pid ${pid} write fault at ${hex(addr)} on pfn ${pfn}: ${rule}`;
const WP_UNSHARE_FAULT: Format = (pid, addr, pfn, rule) => `pid ${pid} unshare fault at ${hex(addr)} on pfn ${pfn}: ${rule}`;
const WP_COPY_DONE: Format = (pid, addr, pfn) => `pid ${pid} now maps a copy, pfn ${pfn}, at ${hex(addr)}`;
// a wait and its resume are one each per userfault: no closure kept in the ring for them either
const READ_FAULT_WAITS: Format = (pid, addr, _, what) => `pid ${pid}'s read fault at ${hex(addr)} waits for ${what} (VM_FAULT_RETRY): nothing changed`;
const WRITE_FAULT_WAITS: Format = (pid, addr, _, what) => `pid ${pid}'s write fault at ${hex(addr)} waits for ${what} (VM_FAULT_RETRY): nothing changed`;
const FAULT_RESUMES: Format = (pid, addr, _, what) => `pid ${pid} resumes its fault at ${hex(addr)}: ${what} was given up`;
const ZERO_WRITE_COPY: Format = (pid, addr, newPfn) => `pid ${pid} writes the zero page at ${hex(addr)}: fresh pfn ${newPfn}`;
const ZERO_UNSHARE_COPY: Format = (pid, addr, newPfn) => `pid ${pid} unshares the zero page at ${hex(addr)}: fresh pfn ${newPfn}`;

/** The entries made on every access and fault: their function, text and counter, by kind (0: none of these). */
const HOT_KINDS: readonly ({ readonly fn: string; readonly format: Format; readonly counter: string } | null)[] = [
  null,
  { fn: "do_anonymous_page", format: ZERO_FAULT, counter: "zeroPageFaults" },
  { fn: "do_anonymous_page", format: ANON_FAULT, counter: "anonFaults" },
  { fn: "do_wp_page", format: WP_WRITE_FAULT, counter: "reuses" },
  { fn: "do_wp_page", format: WP_WRITE_FAULT, counter: "wpFaults" },
  { fn: "do_wp_page", format: WP_UNSHARE_FAULT, counter: "unshareReuses" },
  { fn: "do_wp_page", format: WP_UNSHARE_FAULT, counter: "wpFaults" },
  { fn: "wp_page_copy", format: WP_COPY_DONE, counter: "copies" },
  { fn: "wp_page_copy", format: ZERO_WRITE_COPY, counter: "zeroPageCopies" },
  { fn: "wp_page_copy", format: ZERO_UNSHARE_COPY, counter: "zeroPageCopies" },
];
const shown = (pfns: readonly number[]) => (pfns.length <= 8 ? pfns.join(", ") : `${pfns.slice(0, 8).join(", ")} …`);

/**
 * How each tracepoint is journalled: the entry's kernel function, its text (made when a chain
 * shows it), the frames and processes it is about, and the counter it added to.
 */
const ENTRIES_OF: { [K in TraceName]?: (j: Journal, e: TraceEvents[K]) => void } = {
  step: (j, e) => { if (e.call !== null) j.begin(e.pid, e.call); else j.beginCode(e.pid, e.code, e.addr, e.value); },
  access: (j, e) => { if (e.write) j.store(e.pfn, e.pid, e.value); },
  mm_alloc: (j, e) => j.add("mm_alloc", () => `pid ${e.pid} starts with an empty address space`),
  dup_mmap: (j, e) => {
    const { pid, child } = e;
    j.add("dup_mmap", () => `pid ${pid} forks pid ${child}: anonymous pages shared read-only (copy_page_range())`, [], [child], "forks");
  },
  exit_mmap: (j, e) => j.add("exit_mmap", `pid ${e.pid} exits: every VMA unmapped`, [], [], "exits"),
  do_mmap: (j, e) => { const { pid, start, end, shared } = e; j.add("do_mmap", () => `pid ${pid} maps ${hex(start)}-${hex(end)} ${shared ? "shared" : "private"}`); },
  do_vmi_munmap: (j, e) => { const { pid, start, end } = e; j.add("do_vmi_munmap", () => `pid ${pid} unmaps ${hex(start)}-${hex(end)}`); },
  mprotect_fixup: (j, e) => {
    const { pid, start, end, prot, upgraded } = e;
    j.add("mprotect_fixup", () => `pid ${pid} sets ${hex(start)}-${hex(end)} to prot ${prot}` +
      (upgraded ? " (exclusive anonymous pages mapped writable at once: 6.2's rule)" : ""));
  },
  clear_refs: (j, e) => {
    const { pid, skipped } = e;
    j.add("clear_refs", () => `pid ${pid} clears soft-dirty: every PTE write-protected, tracking on` +
      (skipped ? ` (${skipped} writable possibly pinned pages left alone: pte_is_pinned())` : ""));
  },
  mremap: (j, e) => {
    const { pid, addr, oldLen, newLen } = e;
    if (newLen < oldLen) j.add("mremap", () => `pid ${pid} shrinks ${hex(addr)} from ${hex(oldLen)} to ${hex(newLen)} bytes`);
    else j.add("vma_expand", () => `pid ${pid} grows ${hex(addr)} in place to ${hex(newLen)} bytes`);
  },
  move_vma: (j, e) => {
    const { pid, from, to, len, dontunmap } = e;
    j.add("move_vma", () => `pid ${pid} moves ${hex(from)}+${hex(len)} to ${hex(to)}` +
      (dontunmap ? ", the old range stays mapped and empty (MREMAP_DONTUNMAP)" : "") + ": pages keep their state");
  },
  uffd_move: (j, e) => {
    const { pid, src, dst, pages, thp } = e;
    j.add("move_pages", () => `pid ${pid} moves ${pages} pages from ${hex(src)} to ${hex(dst)} (UFFDIO_MOVE)` +
      (thp > 0 ? `, ${thp} of them as whole PMDs` : "") + ": the pages keep their frames, the source is left none");
  },
  madvise: (j, e) => { const { pid, start, end, advice } = e; j.add("madvise", () => `pid ${pid}: ${advice} over ${hex(start)}-${hex(end)}`); },
  do_anonymous_page: (j, e) => j.anonymousPage(e.pid, e.address, e.pfn, e.zero),
  shmem_fault: (j, e) => {
    const { pid, address, index, pfn } = e;
    j.add("shmem_fault", () => `pid ${pid} maps shmem page ${index} (pfn ${pfn}) at ${hex(address)}`, [pfn], [], "shmemFaults");
  },
  do_cow_fault: (j, e) => {
    const { pid, address, objId, index, pfn, newPfn, mapped } = e;
    j.frameBorn(newPfn);
    j.add(mapped ? "wp_page_copy" : "do_cow_fault", () => `pid ${pid} copies page ${index} of shmem file ${objId} (pfn ${pfn}) into its own pfn ${newPfn} at ${hex(address)}: the file keeps its page`, [pfn, newPfn], [], "fileCopies");
  },
  shmem_undo_range: (j, e) => {
    const { objId, start, end } = e;
    j.add("shmem_undo_range", () => `shmem file ${objId} drops its pages ${start}…${end === Number.MAX_SAFE_INTEGER ? "end" : end - 1}: they read zero`);
  },
  wp_page_shared: (j, e) => { const { pid, pfn } = e; j.add("wp_page_shared", () => `pid ${pid} may write shared pfn ${pfn}: made writable`, [pfn], [], "wpFaults"); },
  do_wp_page: (j, e) => j.wpPage(e.pid, e.address, e.pfn, e.unshare, e.reuse, e.rule),
  wp_page_copy: (j, e) => {
    if (e.zeroPage) j.zeroPageCopied(e.pid, e.address, e.newPfn, e.unshare);
    else j.pageCopied(e.pid, e.address, e.pfn, e.newPfn);
  },
  free_swap_cache: (j, e) => { const { pfn } = e; j.add("free_swap_cache", () => `pfn ${pfn}, copied away from and mapped by nobody, leaves the swap cache`, [pfn]); },
  isolate_lru_page: (j, e) => {
    const { pfn, transient } = e;
    j.add("isolate_lru_page", () => (transient ? `a compaction scan holds a reference to pfn ${pfn} during the fault` : `pfn ${pfn} isolated from the LRU`), [pfn], [], "isolations");
  },
  putback_lru_page: (j, e) => { const { pfn } = e; j.add("putback_lru_page", () => `pfn ${pfn} back on the LRU`, [pfn]); },
  do_swap_page: (j, e) => {
    const { pid, address, slot, pfn, fromCache, rule } = e;
    if (!fromCache) j.frameBorn(pfn);
    j.add("do_swap_page", () => `pid ${pid} swaps ${hex(address)} in from slot ${slot}${fromCache ? " (swap cache)" : ""} as pfn ${pfn}: ${rule}`, [pfn], [], "swapins");
  },
  copy_present_page: (j, e) => {
    const { child, address, pfn, newPfn, rule } = e;
    j.frameBorn(newPfn);
    j.add("copy_present_page", () => `fork copies possibly pinned pfn ${pfn} at ${hex(address)} for pid ${child} into pfn ${newPfn}: ${rule}`, [pfn, newPfn], [child], "forkCopies");
  },
  copy_present_pte: (j, e) => {
    const { child, address, pfn, rule } = e;
    j.add("copy_present_pte", () => `fork shares possibly pinned pfn ${pfn} at ${hex(address)} with pid ${child}: ${rule}`, [pfn], [child], "ptesSharedAtFork");
  },
  copy_nonpresent_pte: (j, e) => {
    const { child, address, slot } = e;
    j.add("copy_nonpresent_pte", () => `swap slot ${slot} at ${hex(address)} now also referenced by pid ${child}`, [], [child]);
  },
  try_to_unmap: (j, e) => {
    const { pfn, refused } = e;
    j.add("try_to_unmap", () => `reclaim cannot unmap pfn ${pfn}: ${refused ? "folio_try_share_anon_rmap_pte() failed, it may be pinned" : "still mapped"}`, [pfn]);
  },
  shrink_folio_list: (j, e) => {
    const { pfn, slot, freed } = e;
    j.add("shrink_folio_list", () => (freed ? `pfn ${pfn} written to swap slot ${slot} and freed`
      : `pfn ${pfn} unmapped into swap slot ${slot}, but still referenced: kept in the swap cache`), [pfn], [], freed ? "pageouts" : undefined);
  },
  try_to_free_pages: (j, e) => { const { freed } = e; j.add("try_to_free_pages", () => `memory pressure: reclaim freed ${freed} frames`); },
  gup: (j, e) => {
    const { pid, pin, call } = e;
    const pfns = pin.pfns.slice(0, 8); // the entry keeps a few pfns, not the pin's array: the journal outlives many pins
    const n = pin.pfns.length;
    j.add(call, () => `${pin.owner} of pid ${pid} takes ${n} ${pin.flags & C.FOLL_PIN ? "pins" : "references"} from ${hex(pin.addresses[0]!)}: pfns ${shown(pfns)}${n > 8 ? " …" : ""}`, pfns.slice(0, 2));
  },
  unpin_user_pages: (j, e) => { const { pid } = e; const owner = e.pin.owner; j.add("unpin_user_pages", () => `${owner} of pid ${pid} releases its references`); },
  pin_write: (j, e) => j.store(e.pfn, -1, e.value),
  folio_lock: (j, e) => { const { pfn } = e; j.add("folio_lock", () => `pfn ${pfn} locked by an actor outside the processes (I/O, migration)`, [pfn]); },
  folio_unlock: (j, e) => {
    const { pfn, waiters } = e;
    j.add("folio_unlock", () => `pfn ${pfn} unlocked${waiters ? `: ${waiters} waiting access${waiters > 1 ? "es" : ""} may be resumed` : ""}`, [pfn]);
  },
  set_migration_pte: (j, e) => {
    const { pid, address, pfn, entry } = e;
    j.add("try_to_migrate_one", () => `pid ${pid}'s PTE at ${hex(address)} becomes a ${entry} migration entry for pfn ${pfn}`, [pfn]);
  },
  remove_migration_pte: (j, e) => {
    const { pid, address, pfn, newPfn, exclusive } = e;
    j.add("remove_migration_pte", () => (newPfn === pfn ? `the migration of pfn ${pfn} failed: pid ${pid} maps it at ${hex(address)} again`
      : `pid ${pid} maps pfn ${newPfn} at ${hex(address)}, migrated from pfn ${pfn}`) + (exclusive ? " (RMAP_EXCLUSIVE)" : " (possibly shared)"), [pfn, newPfn]);
  },
  fault_wait: (j, e) => {
    const fn = e.reason === "migration" ? "migration_entry_wait" : e.reason === "userfaultfd" ? "handle_userfault" : "folio_lock_or_retry";
    j.addf(fn, e.write ? WRITE_FAULT_WAITS : READ_FAULT_WAITS, e.pid, e.address, 0, NO, NO, e.what, "faultWaits");
  },
  fault_resume: (j, e) => j.addf("fault_resume", FAULT_RESUMES, e.pid, e.address, 0, NO, NO, e.what),
  memory_failure_event: (j, e) => {
    const { pfn, type, result } = e;
    j.add("memory_failure", () => `pfn ${pfn} is hardware-poisoned: recovery action for ${type}: ${result}`, [pfn], [], "poisonedPages");
  },
};
