/**
 * The oracle: what every process must observe, kept independently of the COW strategy, and the
 * judgement of every copy and every read against it.
 *
 * - Shadow memory: each process's own writes, what fork handed down, zero where nothing was
 *   written or the memory was discarded; for shared mappings, the shared object's value.
 * - Copies: a copy is necessary when someone else could observe the old page — another
 *   mapping, a swap entry, a snapshot reference (a pipe) — and unnecessary otherwise.
 * - Reads: a value other than the expected one is a missed COW: the process observes data it
 *   must not.
 * Findings carry their explanation: the numbered steps and kernel decisions that led to them.
 * It learns everything from the kernel's tracepoints (attach()), and reports each finding on
 * the `finding` tracepoint too.
 */
import { ShadowSpace, SharedShadow, cowOwn, cowValue } from "./shadow.js";
import { Journal, type ChainStep } from "./journal.js";
import type { CopyFacts, PinView, PinnedPages, TraceBus, TraceEvents, TraceLogReader, WpPageCopyEvent } from "../trace/events.js";

/** The three failure classes (seed 004). @public */
export type FindingKind = "missed-cow" | "unnecessary-cow" | "wrong-cow";

/** A judged event, with its causal chain. @public */
export interface Finding {
  readonly kind: FindingKind;
  readonly step: number;
  readonly pid: number;
  readonly address: number;
  readonly pfn: number;
  readonly summary: string;
  readonly expected?: number;
  readonly observed?: number;
  readonly chain: readonly ChainStep[];
}

interface ContractState extends PinnedPages {
  readonly pin: PinView;
  readonly n: number;
  /** Snapshot: the value each page showed when the reference was taken … */
  readonly first: readonly number[];
  /** … and, by page, any value its process wrote there since (few pages have any). */
  readonly since: Map<number, Set<number>>;
}

// (plain arrays, not typed ones: a typed array of a pin's size lives off the V8 heap, and
// allocating one per vmsplice() cost more than the whole GUP)

export class Oracle implements TraceLogReader {
  readonly journal: Journal | null;
  readonly findings: Finding[] = [];
  necessaryCow = 0;
  unnecessaryCow = 0;
  wrongCow = 0;
  missedCow = 0;
  private readonly spaces = new Map<number, ShadowSpace>();
  private readonly sharedObjects = new Map<number, SharedShadow>();
  private readonly contracts = new Map<number, ContractState>();
  private snapshots = 0;
  /** pfn → how many pages of coherent contracts hold it: a copy of any other pfn breaks none. */
  private readonly coherentPfns: Uint32Array;

  private bus: TraceBus | null = null;

  constructor(explain: boolean, nframes: number) {
    this.journal = explain ? Journal.make(nframes) : null;
    this.coherentPfns = new Uint32Array(nframes);
  }

  /**
   * Subscribes to the kernel's tracepoints (and the journal after it, so that an explanation
   * made at an event ends just before the event's own entries).
   */
  attach(bus: TraceBus): void {
    this.bus = bus;
    // the events of accesses and faults may come after the core call that made them (the
    // trace log): what they are judged on is in the event and in the oracle's own state
    const later = { deferred: true } as const;
    const onAccess = (e: TraceEvents["access"]) => this.onAccess(e.pid, e.address, e.write, e.value, e.pfn, e.objId, e.index, e.cow === true);
    bus.on("access", onAccess, later);
    bus.on("dup_mmap", (e) => this.onFork(e.pid, e.child, e.ranges));
    bus.on("exit_mmap", (e) => this.onExit(e.pid));
    bus.on("zap_page_range", (e) => { if (e.private) this.onDiscard(e.pid, e.start / 4096, e.end / 4096); });
    bus.on("move_vma", (e) => { if (e.private) this.onMove(e.pid, e.from / 4096, e.to / 4096, e.len / 4096); });
    bus.on("uffd_move", (e) => this.onMove(e.pid, e.src / 4096, e.dst / 4096, e.pages));
    const onWpPageCopy = (e: WpPageCopyEvent) => { if (e.zeroPage) this.onZeroPageCopy(e.pid, e.address, e.rule); else this.onCopy(e); };
    bus.on("wp_page_copy", onWpPageCopy, later);
    bus.on("gup", (e) => this.addContract(e.pin, e.pages));
    bus.on("unpin_user_pages", (e) => this.dropContract(e.pin));
    bus.on("pin_read", (e) => this.onPinRead(e.pin, e.i, e.value, e.pfn, e.reader));
    bus.on("pin_write", (e) => this.onPinWrite(e.pin, e.i, e.value, e.holders, e.pfn));
    bus.on("mfill_atomic", (e) => this.onMfill(e));
    bus.on("shmem_undo_range", (e) => this.sharedObject(e.objId).clear(e.start, e.end));
    bus.on("remove_migration_pte", (e) => { if (e.newPfn !== e.pfn) this.onMigrate(e.pid, e.address, e.pfn, e.newPfn); });
    const journalled = this.journal?.attach(bus) ?? [];
    // the trace log comes to the methods below (the oracle's work, then the journal's, as the
    // listeners above and the journal's would do it event by event) while nobody else reads it
    bus.readLog(this, [onAccess, onWpPageCopy, ...journalled]);
  }

  // ---- the trace log (TraceLogReader) ----------------------------------------------------------

  step(pid: number, code: number, addr: number, value: number): void {
    this.journal?.beginCode(pid, code, addr, value);
  }

  access(pid: number, address: number, write: boolean, value: number, pfn: number, objId: number, index: number, cow: boolean): void {
    this.onAccess(pid, address, write, value, pfn, objId, index, cow);
    if (write) this.journal?.store(pfn, pid, value);
  }

  /** Without the journal a store is only its value: a run of them comes in one call. */
  get storeRuns(): boolean {
    return this.journal === null;
  }

  storeRun(pid: number, address: number, n: number, stride: number, value: number, step: number): void {
    const vpn = Math.floor(address / 4096);
    // with a snapshot reference about, each store may be one it must allow
    if (this.snapshots > 0) for (let i = 0; i < n; i++) this.onWrite(pid, vpn + i * stride, 0, 0, value + i * step);
    else this.space(pid).setRun(vpn, n, stride, value, step);
  }

  doAnonymousPage(pid: number, address: number, pfn: number, zero: boolean): void {
    this.journal?.anonymousPage(pid, address, pfn, zero);
  }

  doWpPage(pid: number, address: number, pfn: number, reuse: boolean, rule: string): void {
    this.journal?.wpPage(pid, address, pfn, false, reuse, rule);
  }

  wpPageCopy(pid: number, address: number, pfn: number, newPfn: number, rule: string, facts: CopyFacts): void {
    this.judgeCopy(pid, address, pfn, rule, facts);
    this.journal?.pageCopied(pid, address, pfn, newPfn);
  }

  wpPageCopyZero(pid: number, address: number, newPfn: number, rule: string): void {
    this.onZeroPageCopy(pid, address, rule);
    this.journal?.zeroPageCopied(pid, address, newPfn, false);
  }

  /** A load or store completed: a write sets what must be read back, a read is judged. */
  private onAccess(pid: number, address: number, write: boolean, value: number, pfn: number, objId: number, index: number, cow: boolean): void {
    const vpn = Math.floor(address / 4096);
    if (write) {
      this.onWrite(pid, vpn, objId, index, value, cow);
      return;
    }
    if (this.expected(pid, vpn, objId, index, cow) === value) return;
    // a wrong value: find out who put it there, for the explanation
    const writer = this.journal?.lastWriter(pfn);
    this.onRead(pid, address, vpn, objId, index, value, pfn, writer !== undefined && writer !== pid ? [writer] : [], cow);
  }

  private report(f: Finding): void {
    this.findings.push(f);
    if (this.bus?.has("finding")) this.bus.emit("finding", { kind: f.kind, pid: f.pid, address: f.address, pfn: f.pfn, summary: f.summary });
  }

  space(pid: number): ShadowSpace {
    // a run's accesses are one process's: the last space asked for, without the map
    if (pid === this.lastPid) return this.lastSpace!;
    let s = this.spaces.get(pid);
    if (!s) {
      s = new ShadowSpace();
      this.spaces.set(pid, s);
    }
    this.lastPid = pid;
    this.lastSpace = s;
    return s;
  }
  private lastPid = -1;
  private lastSpace: ShadowSpace | null = null;

  sharedObject(id: number): SharedShadow {
    let s = this.sharedObjects.get(id);
    if (!s) {
      s = new SharedShadow();
      this.sharedObjects.set(id, s);
    }
    return s;
  }

  /**
   * The value `pid` must read at page `vpn` (private) or from shared object `objId` at `index`;
   * with `cow` (a private mapping of the object), its own copy once it wrote one, else the object's.
   */
  expected(pid: number, vpn: number, objId: number, index: number, cow = false): number {
    if (objId > 0 && cow) return cowValue(this.space(pid).get(vpn)) ?? this.sharedObject(objId).get(index);
    return objId > 0 ? this.sharedObject(objId).get(index) : this.space(pid).get(vpn);
  }

  onWrite(pid: number, vpn: number, objId: number, index: number, value: number, cow = false): void {
    if (objId > 0 && cow) {
      // the process's own copy now: the object's later values no longer show here
      this.space(pid).set(vpn, cowOwn(value));
      objId = 0;
    } else if (objId > 0) this.sharedObject(objId).set(index, value);
    else this.space(pid).set(vpn, value);
    // a snapshot reference may show what its own process writes there later — and, for a
    // shared mapping, what anyone writes to the shared object
    if (this.snapshots > 0) {
      for (const c of this.contracts.values()) {
        if (c.pin.contract !== "snapshot") continue;
        if (objId > 0) {
          if (c.objId) for (let i = 0; i < c.n; i++) if (c.objId[i] === objId && c.index![i] === index) allow(c, i, value);
        } else if (c.pin.pid === pid) {
          const i = vpn - c.vpn0;
          if (i >= 0 && i < c.n && !c.objId?.[i]) allow(c, i, value);
        }
      }
    }
  }

  // ---- pin contracts ---------------------------------------------------------------------------

  /** A holder of GUP references starts its contract; `pages` say where its pages' values live. */
  addContract(pin: PinView, pages: PinnedPages): void {
    const n = pin.pfns.length;
    let first: number[] = [];
    if (pin.contract === "snapshot") {
      first = this.space(pin.pid).readRange(pages.vpn0, n);
      if (pages.objId) {
        for (let i = 0; i < n; i++) if (pages.objId[i]! > 0) first[i] = this.sharedObject(pages.objId[i]!).get(pages.index![i]!);
      }
      this.snapshots++;
    } else if (pin.contract === "coherent") {
      for (const pfn of pin.pfns) this.coherentPfns[pfn] = this.coherentPfns[pfn]! + 1;
    }
    this.contracts.set(pin.id, { vpn0: pages.vpn0, objId: pages.objId, index: pages.index, pin, n, first, since: new Map() });
  }

  dropContract(pin: PinView): void {
    const c = this.contracts.get(pin.id);
    if (!c) return;
    this.contracts.delete(pin.id);
    if (pin.contract === "snapshot") this.snapshots--;
    if (pin.contract === "coherent") {
      for (const pfn of pin.pfns) {
        this.coherentPfns[pfn] = this.coherentPfns[pfn]! - 1;
      }
    }
  }

  /**
   * The holder reads page `i` through its reference and sees `observed`. A snapshot (a pipe)
   * must show what its process saw when it took the reference, or wrote there since: anything
   * else is a missed COW. A coherent holder reads the process's page as long as the process
   * holds it; a copy that moved the process away was judged when it happened (onCopy).
   */
  onPinRead(pin: PinView, i: number, observed: number, pfn: number, reader: number): void {
    const c = this.contracts.get(pin.id);
    if (!c) return;
    const addr = pin.addresses[i]!;
    if (pin.contract === "snapshot") {
      if (c.first[i] === observed || c.since.get(i)?.has(observed)) return;
      this.missedCow++;
      const j = this.journal;
      const expected = c.first[i]!;
      const allowed = [expected, ...(c.since.get(i) ?? [])];
      const writer = j?.lastWriter(pfn);
      const chain = j ? j.explain(pfn, [pin.pid, reader, ...(writer !== undefined && writer >= 0 ? [writer] : [])], {
        step: j.step, pid: reader, fn: `${pin.owner}_read`,
        what: `the ${pin.owner} of pid ${pin.pid} (from 0x${addr.toString(16)}) shows ${observed} from pfn ${pfn}, but may only show ${allowed.join(" or ")}: a later write by another process leaked through`,
      }) : [];
      this.report({
        kind: "missed-cow", step: j?.step ?? 0, pid: reader, address: addr, pfn, expected, observed,
        summary: `missed COW: the ${pin.owner} of pid ${pin.pid} shows ${observed} at 0x${addr.toString(16)}, which another process wrote after the reference was taken`,
        chain,
      });
    }
  }

  /**
   * The holder writes `value` into page `i` (DMA) of frame `pfn`. A shmem page belongs to its
   * object, so every mapper of the object must see the value, mapped by the pin's owner or not.
   * A private page must read back the value wherever the owner still holds it (`holders`; where
   * it does not, a COW moved it away — a wrong COW judged at the copy — or it unmapped the
   * range). And the owner's own snapshot references to the same frame (its pipes) may show it:
   * the device wrote for that process, nobody else's data leaks.
   */
  onPinWrite(pin: PinView, i: number, value: number, holders: readonly number[], pfn: number): void {
    const c = this.contracts.get(pin.id);
    if (!c) return;
    const objId = c.objId?.[i] ?? 0;
    if (objId > 0) {
      this.onWrite(pin.pid, 0, objId, c.index![i]!, value);
    } else {
      for (const a of holders) this.onWrite(pin.pid, a / 4096, 0, 0, value);
    }
    if (this.snapshots === 0) return;
    for (const s of this.contracts.values()) {
      if (s.pin.contract !== "snapshot" || s.pin.pid !== pin.pid) continue;
      for (let j = 0; j < s.n; j++) if (s.pin.pfns[j] === pfn) allow(s, j, value);
    }
  }

  /**
   * A copy took the page of coherent pins away from their process: one wrong COW per copy,
   * however many pins it leaves behind. (A pin of the zero page can be left behind again: once
   * the process discards its copy, it maps the zero page, and the pin, again.)
   */
  private pinsBroken(broken: readonly [ContractState, number][], pfn: number, what: string): void {
    this.wrongCow++;
    const j = this.journal;
    const [c, i] = broken[0]!;
    const pin = c.pin;
    const more = broken.length > 1 ? ` (and ${broken.length - 1} more pin${broken.length > 2 ? "s" : ""} of the same page)` : "";
    const chain = j ? j.explain(pfn, [pin.pid], { step: j.step, pid: pin.pid, fn: `${pin.owner}_access`, what }) : [];
    this.report({
      kind: "wrong-cow", step: j?.step ?? 0, pid: pin.pid, address: pin.addresses[i]!, pfn,
      summary: `wrong COW: the ${pin.owner} pin of pid ${pin.pid} at 0x${pin.addresses[i]!.toString(16)} no longer sees the process's page${more}`,
      chain,
    });
  }

  /**
   * The coherent contracts' pages that a copy of `pfn` at `address` by `pid` leaves behind: pins
   * of that page by its process — for the zero page, which many addresses share, the pins taken
   * at this address.
   */
  private brokenByCopy(pid: number, pfn: number, address: number): readonly [ContractState, number][] {
    if (this.coherentPfns[pfn] === 0) return NONE_BROKEN;
    const out: [ContractState, number][] = [];
    for (const c of this.contracts.values()) {
      if (c.pin.contract !== "coherent" || c.pin.pid !== pid) continue;
      for (let i = 0; i < c.pin.pfns.length; i++) {
        if (c.pin.pfns[i] === pfn && (pfn !== 0 || c.pin.addresses[i] === address)) out.push([c, i]);
      }
    }
    return out;
  }

  /**
   * do_wp_page() replaced the shared zero page at `address` of `pid` by a fresh page. A coherent
   * pin of the zero page there — a R/O long-term pin taken without unsharing, as before 6.2
   * (84209e87c696) — keeps the zero page and no longer sees the process's memory: a wrong COW.
   * (Zero-page copies are not counted as necessary or unnecessary: nothing is copied.)
   */
  onZeroPageCopy(pid: number, address: number, rule: string): void {
    const broken = this.brokenByCopy(pid, 0, address);
    if (broken.length === 0) return;
    const owner = broken[0]![0].pin.owner;
    this.pinsBroken(broken, 0, `pid ${pid} writes the zero page at 0x${address.toString(16)}, which its ${owner} pin holds (${rule}); the pin keeps the zero page, the process gets a fresh one`);
  }

  /**
   * remove_migration_pte() mapped `newPfn` where `pid` mapped `pfn`. Migration must be
   * invisible: contents move with the page (reads judge that), and a page a coherent pin holds
   * must never move — the device would keep the old frame while the process uses the new one,
   * a wrong COW by another name.
   */
  onMigrate(pid: number, address: number, pfn: number, newPfn: number): void {
    const broken = this.brokenByCopy(pid, pfn, address);
    if (broken.length === 0) return;
    const owner = broken[0]![0].pin.owner;
    this.pinsBroken(broken, pfn, `pid ${pid}'s pfn ${pfn} at 0x${address.toString(16)} migrated to pfn ${newPfn} under its ${owner} pin; the device keeps the old frame`);
  }

  /**
   * Judges a read. Returns true when the value is the expected one; otherwise records a missed
   * COW whose chain ends with the read.
   */
  onRead(pid: number, address: number, vpn: number, objId: number, index: number, observed: number, pfn: number,
    writerPids: readonly number[], cow = false): boolean {
    const exp = this.expected(pid, vpn, objId, index, cow);
    if (exp === observed) return true;
    this.missedCow++;
    const j = this.journal;
    const chain = j ? j.explain(pfn, [pid, ...writerPids], {
      step: j.step, pid, fn: "read",
      what: `pid ${pid} reads ${observed} from pfn ${pfn}, but must see ${exp}: it observes a write it must not`,
    }) : [];
    this.report({
      kind: "missed-cow", step: j?.step ?? 0, pid, address, pfn, expected: exp, observed,
      summary: `missed COW: pid ${pid} read ${observed} at 0x${address.toString(16)}, expected ${exp}`,
      chain,
    });
    return false;
  }

  /**
   * Judges a copy made by a COW fault: necessary when another mapping, a swap entry or a
   * snapshot reference could observe the old page (or it is a KSM page); unnecessary
   * otherwise — from the facts read just before the copy. Returns the verdict.
   */
  onCopy(e: WpPageCopyEvent): "necessary" | "unnecessary" | "wrong" {
    return this.judgeCopy(e.pid, e.address, e.pfn, e.rule, e.facts!);
  }

  private judgeCopy(pid: number, address: number, pfn: number, rule: string, f: CopyFacts): "necessary" | "unnecessary" | "wrong" {
    const broken = this.brokenByCopy(pid, pfn, address);
    if (broken.length) {
      const owner = broken[0]![0].pin.owner;
      this.pinsBroken(broken, pfn, `pid ${pid} copies pinned pfn ${pfn} at 0x${address.toString(16)} away from its ${owner} pin (${rule}); the device keeps the old page`);
      return "wrong";
    }
    const observers = (f.mapcount - 1) + f.swapcount + f.snapshotRefs;
    if (f.ksm || observers > 0) {
      this.necessaryCow++;
      return "necessary";
    }
    this.unnecessaryCow++;
    const j = this.journal;
    const chain = j ? j.explain(pfn, [pid], {
      step: j.step, pid, fn: "wp_page_copy",
      what: `pfn ${pfn} copied though nobody else could observe it (mapcount ${f.mapcount}, swap count ` +
        `${f.swapcount}, snapshot references ${f.snapshotRefs}; refcount ${f.refcount}) — ${rule}`,
    }) : [];
    this.report({
      kind: "unnecessary-cow", step: j?.step ?? 0, pid, address, pfn,
      summary: `unnecessary COW: pid ${pid} copied pfn ${pfn} at 0x${address.toString(16)} with no other observer (refcount ${f.refcount})`,
      chain,
    });
    return "unnecessary";
  }

  /**
   * A userfaultfd ioctl filled pages: UFFDIO_COPY wrote its value for the process (or, into a
   * shared mapping, into the shmem object); the zero page and poison read as zero (a poisoned
   * page is never read back); UFFDIO_CONTINUE maps what the page cache holds, which is known.
   */
  private onMfill(e: TraceEvents["mfill_atomic"]): void {
    const vpn = e.start / 4096;
    if (e.mode === "continue") return;
    if (e.mode !== "copy") {
      if (e.objId === 0) this.onDiscard(e.pid, vpn, vpn + e.pages);
      return;
    }
    for (let i = 0; i < e.pages; i++) this.onWrite(e.pid, vpn + i, e.objId, e.index + i, e.value ?? 0);
  }

  /** Zero-filled memory: MADV_DONTNEED of private memory, munmap, WIPEONFORK in the child. */
  onDiscard(pid: number, vpnStart: number, vpnEnd: number): void {
    this.space(pid).clear(vpnStart, vpnEnd);
  }

  /** fork(): the child must see what the parent sees over the copied private ranges. */
  onFork(parent: number, child: number, ranges: readonly { vpnStart: number; vpnEnd: number }[]): void {
    const src = this.space(parent);
    const dst = this.space(child);
    for (const r of ranges) src.copyRangeInto(dst, r.vpnStart, r.vpnEnd);
  }

  onMove(pid: number, fromVpn: number, toVpn: number, pages: number): void {
    this.space(pid).move(fromVpn, toVpn, pages);
  }

  onExit(pid: number): void {
    this.spaces.get(pid)?.release();
    this.spaces.delete(pid);
    if (pid === this.lastPid) {
      this.lastPid = -1;
      this.lastSpace = null;
    }
  }

  dropSharedObject(id: number): void {
    this.sharedObjects.delete(id);
  }
}

/** What brokenByCopy() finds of a page no coherent contract holds (most copies): nothing, not allocated anew. */
const NONE_BROKEN: readonly [ContractState, number][] = [];

/** A snapshot holder may also show `value` at page `i`: its own process wrote it there. */
function allow(c: ContractState, i: number, value: number): void {
  if (c.first[i] === value) return;
  let set = c.since.get(i);
  if (!set) c.since.set(i, (set = new Set()));
  set.add(value);
}
