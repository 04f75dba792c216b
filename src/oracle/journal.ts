/**
 * The journal: what happened, step by step, and to which frames — the material the oracle's
 * explanations are made of. Every public call is one numbered step; within it, the kernel
 * functions that ran and the rules that decided are entries. Entries are linked by frame and by
 * process, so a finding can be explained as the chain of steps that touched its page.
 *
 * It stays on in long runs, so it is built like a trace buffer: steps and entries live in
 * fixed-size rings of typed arrays (an old finding's chain may start mid-way), per-frame and
 * per-process histories are linked lists through the entries, the text of a step or an entry is
 * made only when explained, and the last store into each frame is kept per frame.
 */

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
export const CALL_READ = 1;
export const CALL_WRITE = 2;

/** Writes an entry's text from its three numbers. */
export type Format = (a: number, b: number, c: number, s: string) => string;

const STEPS = 1 << 16;
const ENTRIES = 1 << 16;
const NONE = -1;

export class Journal {
  step = 0;
  // steps (ring)
  private readonly stepPid = new Int32Array(STEPS);
  private readonly stepCall = new Int32Array(STEPS);
  private readonly stepA = new Float64Array(STEPS);
  private readonly stepB = new Float64Array(STEPS);
  /** The text of each step begun by a syscall, made only when a chain shows it. */
  private readonly stepText: (string | (() => string) | undefined)[] = new Array(STEPS);
  // entries (ring); an entry names up to two frames, and links to the previous entry of each
  private count = 0;
  private readonly eStep = new Int32Array(ENTRIES);
  private readonly ePid = new Int32Array(ENTRIES);
  private readonly eFn = new Int32Array(ENTRIES);
  private readonly eFrame0 = new Int32Array(ENTRIES);
  private readonly eFrame1 = new Int32Array(ENTRIES);
  private readonly ePrev0 = new Int32Array(ENTRIES);
  private readonly ePrev1 = new Int32Array(ENTRIES);
  private readonly ePrevPid = new Int32Array(ENTRIES);
  private readonly eOther = new Int32Array(ENTRIES);
  private readonly ePrevOther = new Int32Array(ENTRIES);
  private readonly eWhat: (string | (() => string) | Format)[] = new Array(ENTRIES);
  private readonly eA = new Float64Array(ENTRIES);
  private readonly eB = new Float64Array(ENTRIES);
  private readonly eC = new Float64Array(ENTRIES);
  private readonly eS: string[] = new Array(ENTRIES);
  private readonly fnNames: string[] = [];
  private readonly fnCodes = new Map<string, number>();
  // per frame
  private readonly frameHead: Int32Array;
  private readonly frameBornAt: Float64Array;
  private readonly storePid: Int32Array;
  private readonly storeStep: Float64Array;
  private readonly storeValue: Float64Array;
  // per process: the last process-wide entry (no frame)
  private readonly pidHead = new Map<number, number>();

  constructor(nframes: number) {
    this.frameHead = new Int32Array(nframes).fill(NONE);
    this.frameBornAt = new Float64Array(nframes);
    this.storePid = new Int32Array(nframes);
    this.storeStep = new Float64Array(nframes);
    this.storeValue = new Float64Array(nframes);
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
    this.stepPid[i] = pid;
    this.stepCall[i] = code;
    this.stepA[i] = a;
    this.stepB[i] = b;
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
    let c = this.fnCodes.get(fn);
    if (c === undefined) {
      c = this.fnNames.push(fn) - 1;
      this.fnCodes.set(fn, c);
    }
    return c;
  }

  /**
   * Records what kernel function `fn` did in the current step (`what` may be a function that
   * writes the text when it is needed), about up to two frames, and about another process.
   */
  add(fn: string, what: string | (() => string), pfns: readonly number[] = [], pids: readonly number[] = []): void {
    this.record(fn, what, 0, 0, 0, pfns.length > 0 ? pfns[0]! : NONE, pfns.length > 1 ? pfns[1]! : NONE,
      pids.length > 0 ? pids[0]! : NONE);
  }

  /**
   * The same for the entries made on hot paths: a module-level `format` and three numbers, so
   * recording allocates nothing.
   */
  addf(fn: string, format: Format, a: number, b: number, c: number, pfn0 = NONE, pfn1 = NONE, str = ""): void {
    this.record(fn, format, a, b, c, pfn0, pfn1, NONE);
    this.eS[(this.count - 1) % ENTRIES] = str;
  }

  private record(fn: string, what: string | (() => string) | Format, a: number, b: number, c: number,
    f0: number, f1: number, other: number): void {
    const n = this.count++;
    const i = n % ENTRIES;
    const pid = this.pid;
    this.eStep[i] = this.step;
    this.ePid[i] = pid;
    this.eFn[i] = this.fnCode(fn);
    this.eWhat[i] = what;
    this.eA[i] = a;
    this.eB[i] = b;
    this.eC[i] = c;
    this.eFrame0[i] = f0;
    this.eFrame1[i] = f1;
    this.ePrev0[i] = f0 >= 0 ? this.frameHead[f0]! : NONE;
    if (f0 >= 0) this.frameHead[f0] = n;
    this.ePrev1[i] = f1 >= 0 ? this.frameHead[f1]! : NONE;
    if (f1 >= 0) this.frameHead[f1] = n;
    // process-wide entries (about no frame) are linked per process, the caller and one other
    if (f0 < 0) {
      this.ePrevPid[i] = this.pidHead.get(pid) ?? NONE;
      this.pidHead.set(pid, n);
      this.eOther[i] = other;
      this.ePrevOther[i] = other >= 0 ? (this.pidHead.get(other) ?? NONE) : NONE;
      if (other >= 0) this.pidHead.set(other, n);
    }
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
    this.frameHead[pfn] = NONE;
    this.storeStep[pfn] = 0;
  }

  private live(n: number): boolean {
    return n >= 0 && n >= this.count - ENTRIES;
  }

  private link(n: number): JournalEntry {
    const i = n % ENTRIES;
    const what = this.eWhat[i]!;
    const step = this.eStep[i]!;
    const text = typeof what === "string" ? what : what.length === 0 ? (what as () => string)()
      : (what as Format)(this.eA[i]!, this.eB[i]!, this.eC[i]!, this.eS[i] ?? "");
    return { step, pid: this.ePid[i]!, call: this.callOf(step), fn: this.fnNames[this.eFn[i]!]!, what: text };
  }

  /**
   * The chain that explains what happened to `pfn` as seen by processes `pids`: the frame's
   * history since it was allocated, those processes' process-wide events (fork, exit, munmap …)
   * over the same span, and the last store into the frame, in order, numbered; then `last`.
   */
  explain(pfn: number, pids: readonly number[], last?: Omit<JournalEntry, "call">): ChainStep[] {
    const born = this.frameBornAt[pfn] ?? 0;
    const picked = new Set<number>();
    for (let n = this.frameHead[pfn] ?? NONE; this.live(n);) {
      const i = n % ENTRIES;
      if (this.eStep[i]! < born) break;
      picked.add(n);
      n = this.eFrame0[i] === pfn ? this.ePrev0[i]! : this.ePrev1[i]!;
    }
    for (const pid of pids) {
      for (let n = this.pidHead.get(pid) ?? NONE; this.live(n);) {
        const i = n % ENTRIES;
        if (this.eStep[i]! < born) break;
        picked.add(n);
        n = this.ePid[i] === pid ? this.ePrevPid[i]! : this.ePrevOther[i]!;
      }
    }
    const links = [...picked].sort((a, b) => a - b).map((n) => this.link(n));
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
}
