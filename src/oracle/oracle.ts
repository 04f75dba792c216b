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
 */
import { ShadowSpace, SharedShadow } from "./shadow.js";
import { Journal, type ChainStep } from "./journal.js";

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

/** The facts a copy is judged on, read just before the copy. */
export interface CopyFacts {
  readonly pid: number;
  readonly address: number;
  readonly pfn: number;
  /** Mappings of the old folio, this one included. */
  readonly mapcount: number;
  /** Swap entries that refer to it (when it is in the swap cache). */
  readonly swapcount: number;
  readonly zeroPage: boolean;
  readonly ksm: boolean;
  /** Snapshot references that must keep seeing the old contents (pipe buffers …). */
  readonly snapshotRefs: number;
  readonly refcount: number;
  /** The rule that chose to copy. */
  readonly rule: string;
}

/** Where an address's expected value lives. */
export type ShadowKey = { readonly shared: SharedShadow; readonly index: number } | { readonly shared: null; readonly vpn: number };

export class Oracle {
  readonly journal: Journal | null;
  readonly findings: Finding[] = [];
  necessaryCow = 0;
  unnecessaryCow = 0;
  wrongCow = 0;
  missedCow = 0;
  private readonly spaces = new Map<number, ShadowSpace>();
  private readonly sharedObjects = new Map<number, SharedShadow>();

  constructor(explain: boolean, nframes: number) {
    this.journal = explain ? new Journal(nframes) : null;
  }

  space(pid: number): ShadowSpace {
    let s = this.spaces.get(pid);
    if (!s) {
      s = new ShadowSpace();
      this.spaces.set(pid, s);
    }
    return s;
  }

  sharedObject(id: number): SharedShadow {
    let s = this.sharedObjects.get(id);
    if (!s) {
      s = new SharedShadow();
      this.sharedObjects.set(id, s);
    }
    return s;
  }

  /** The value `pid` must read at page `vpn` (private) or from shared object `objId` at `index`. */
  expected(pid: number, vpn: number, objId: number, index: number): number {
    return objId > 0 ? this.sharedObject(objId).get(index) : this.space(pid).get(vpn);
  }

  onWrite(pid: number, vpn: number, objId: number, index: number, value: number): void {
    if (objId > 0) this.sharedObject(objId).set(index, value);
    else this.space(pid).set(vpn, value);
  }

  /**
   * Judges a read. Returns true when the value is the expected one; otherwise records a missed
   * COW whose chain ends with the read.
   */
  onRead(pid: number, address: number, vpn: number, objId: number, index: number, observed: number, pfn: number,
    writerPids: readonly number[]): boolean {
    const exp = this.expected(pid, vpn, objId, index);
    if (exp === observed) return true;
    this.missedCow++;
    const j = this.journal;
    const chain = j ? j.explain(pfn, [pid, ...writerPids], {
      step: j.step, pid, fn: "read",
      what: `pid ${pid} reads ${observed} from pfn ${pfn}, but must see ${exp}: it observes a write it must not`,
    }) : [];
    this.findings.push({
      kind: "missed-cow", step: j?.step ?? 0, pid, address, pfn, expected: exp, observed,
      summary: `missed COW: pid ${pid} read ${observed} at 0x${address.toString(16)}, expected ${exp}`,
      chain,
    });
    return false;
  }

  /**
   * Judges a copy made by a COW fault (or fork's early copy): necessary when another mapping,
   * a swap entry or a snapshot reference could observe the old page (or it is the zero page or
   * a KSM page); unnecessary otherwise. Returns the verdict.
   */
  onCopy(f: CopyFacts): "necessary" | "unnecessary" {
    const observers = (f.mapcount - 1) + f.swapcount + f.snapshotRefs;
    if (f.zeroPage || f.ksm || observers > 0) {
      this.necessaryCow++;
      return "necessary";
    }
    this.unnecessaryCow++;
    const j = this.journal;
    const chain = j ? j.explain(f.pfn, [f.pid], {
      step: j.step, pid: f.pid, fn: "wp_page_copy",
      what: `pfn ${f.pfn} copied though nobody else could observe it (mapcount ${f.mapcount}, swap count ` +
        `${f.swapcount}, snapshot references ${f.snapshotRefs}; refcount ${f.refcount}) — ${f.rule}`,
    }) : [];
    this.findings.push({
      kind: "unnecessary-cow", step: j?.step ?? 0, pid: f.pid, address: f.address, pfn: f.pfn,
      summary: `unnecessary COW: pid ${f.pid} copied pfn ${f.pfn} at 0x${f.address.toString(16)} with no other observer (refcount ${f.refcount})`,
      chain,
    });
    return "unnecessary";
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
  }

  dropSharedObject(id: number): void {
    this.sharedObjects.delete(id);
  }
}
