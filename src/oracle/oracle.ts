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

/** The oracle's view of one holder of GUP references (see src/mm/gup.ts Pin). */
export interface PinView {
  readonly id: number;
  readonly owner: string;
  readonly pid: number;
  readonly contract: "coherent" | "snapshot" | "none";
  readonly addresses: readonly number[];
  readonly pfns: readonly number[];
}

/** Where a pinned page's value lives for its owner. */
export interface PinnedPage {
  readonly vpn: number;
  /** A shmem object's id, or 0 for private memory. */
  readonly objId: number;
  readonly index: number;
}

interface ContractState {
  readonly pin: PinView;
  readonly pages: readonly PinnedPage[];
  /** Snapshot: the values the holder may show for each page. */
  readonly allowed: Set<number>[];
  /** Per page: a wrong COW has been reported already. */
  readonly broken: boolean[];
}

export class Oracle {
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
    // a snapshot reference may show what its own process writes there later — and, for a
    // shared mapping, what anyone writes to the shared object
    if (this.snapshots > 0) {
      for (const c of this.contracts.values()) {
        if (c.pin.contract !== "snapshot") continue;
        c.pages.forEach((pg, i) => {
          const shared = objId > 0 && pg.objId === objId && pg.index === index;
          if (shared || (objId === 0 && pg.objId === 0 && c.pin.pid === pid && pg.vpn === vpn)) c.allowed[i]!.add(value);
        });
      }
    }
  }

  // ---- pin contracts ---------------------------------------------------------------------------

  /** A holder of GUP references starts its contract; `pages` say where its pages' values live. */
  addContract(pin: PinView, pages: readonly PinnedPage[]): void {
    const allowed = pages.map((pg) => new Set([this.expected(pin.pid, pg.vpn, pg.objId, pg.index)]));
    this.contracts.set(pin.id, { pin, pages, allowed, broken: pages.map(() => false) });
    if (pin.contract === "snapshot") this.snapshots++;
  }

  dropContract(pin: PinView): void {
    const c = this.contracts.get(pin.id);
    if (!c) return;
    this.contracts.delete(pin.id);
    if (pin.contract === "snapshot") this.snapshots--;
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
      if (c.allowed[i]!.has(observed)) return;
      this.missedCow++;
      const j = this.journal;
      const expected = [...c.allowed[i]!][0]!;
      const writer = j?.lastWriter(pfn);
      const chain = j ? j.explain(pfn, [pin.pid, reader, ...(writer !== undefined && writer >= 0 ? [writer] : [])], {
        step: j.step, pid: reader, fn: `${pin.owner}_read`,
        what: `the ${pin.owner} of pid ${pin.pid} (from 0x${addr.toString(16)}) shows ${observed} from pfn ${pfn}, but may only show ${[...c.allowed[i]!].join(" or ")}: a later write by another process leaked through`,
      }) : [];
      this.findings.push({
        kind: "missed-cow", step: j?.step ?? 0, pid: reader, address: addr, pfn, expected, observed,
        summary: `missed COW: the ${pin.owner} of pid ${pin.pid} shows ${observed} at 0x${addr.toString(16)}, which another process wrote after the reference was taken`,
        chain,
      });
    }
  }

  /**
   * The holder writes `value` into page `i` (DMA): wherever the process still holds the page,
   * it must see the value. (Where it does not, a COW moved it away — a wrong COW judged at the
   * copy — or it unmapped the range, which ends the contract for that page.)
   */
  onPinWrite(pin: PinView, i: number, value: number, holders: readonly number[]): void {
    const c = this.contracts.get(pin.id);
    if (!c) return;
    const pg = c.pages[i]!;
    for (const a of holders) this.onWrite(pin.pid, a / 4096, pg.objId, pg.index, value);
  }

  /** A copy took a coherent pin's page away from its process (reported once per page). */
  private pinBroken(c: ContractState, i: number, pfn: number, what: string): void {
    if (c.broken[i]) return;
    c.broken[i] = true;
    this.wrongCow++;
    const j = this.journal;
    const pin = c.pin;
    const chain = j ? j.explain(pfn, [pin.pid], { step: j.step, pid: pin.pid, fn: `${pin.owner}_access`, what }) : [];
    this.findings.push({
      kind: "wrong-cow", step: j?.step ?? 0, pid: pin.pid, address: pin.addresses[i]!, pfn,
      summary: `wrong COW: the ${pin.owner} pin of pid ${pin.pid} at 0x${pin.addresses[i]!.toString(16)} no longer sees the process's page`,
      chain,
    });
  }

  /** The coherent contract, if any, that a copy of pinned `pfn` by its owner `pid` breaks. */
  private brokenByCopy(pid: number, pfn: number): [ContractState, number] | null {
    for (const c of this.contracts.values()) {
      if (c.pin.contract !== "coherent" || c.pin.pid !== pid) continue;
      for (let i = 0; i < c.pin.pfns.length; i++) {
        if (c.pin.pfns[i] === pfn && !c.broken[i]) return [c, i];
      }
    }
    return null;
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
  onCopy(f: CopyFacts): "necessary" | "unnecessary" | "wrong" {
    const broken = this.contracts.size > 0 ? this.brokenByCopy(f.pid, f.pfn) : null;
    if (broken) {
      const [c, i] = broken;
      this.pinBroken(c, i, f.pfn, `pid ${f.pid} copies pinned pfn ${f.pfn} at 0x${f.address.toString(16)} away from its ${c.pin.owner} pin (${f.rule}); the device keeps the old page`);
      return "wrong";
    }
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
