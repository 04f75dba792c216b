/**
 * The reference judge: a second, independent judge of every copy, written from the semantics
 * and not from the counters the oracle reads. After wp_page_copy() it asks who can still
 * observe the old page — another process's page-table entry mapping it, a swap entry of any
 * process whose slot it caches (that process will swap the old contents back in), a snapshot
 * reference (a pipe) holding it — by walking every page table and every GUP user, never from
 * the core's map count, swap count or reference count. And it asks whether the copy left a
 * coherent pin of the copying process on the old page (a wrong COW).
 *
 * It is slow on purpose (a walk of every address space per copy) and meant for tests and the
 * fuzzer, beside the oracle: every disagreement between the two is a bug in one of them, or in
 * the counts the oracle trusts.
 * @packageDocumentation
 */
import { C } from "../core/index.js";
import type { TraceBus, WpPageCopyEvent } from "../trace/events.js";
import type { KernelView } from "../trace/view.js";

/** What the judge needs of a kernel: its state to read, and its tracepoints. @public */
export interface JudgedKernel extends KernelView {
  readonly trace: TraceBus;
}

/** The reference judge's verdict on one copy. @public */
export interface ReferenceVerdict {
  readonly pid: number;
  readonly address: number;
  readonly pfn: number;
  readonly verdict: "necessary" | "unnecessary" | "wrong";
  /** Who could still observe the old page, e.g. "pid 2 maps it at 0x7f…". */
  readonly observers: readonly string[];
}

const SPECIAL = 2 ** C._PAGE_BIT_SPECIAL;

/** Judges every copy of a kernel, from the page tables and the GUP users. @public */
export class ReferenceJudge {
  necessary = 0;
  unnecessary = 0;
  wrong = 0;
  readonly verdicts: ReferenceVerdict[] = [];
  private readonly listener = (e: WpPageCopyEvent) => this.judge(e);

  constructor(private readonly k: JudgedKernel) {
    k.trace.on("wp_page_copy", this.listener);
  }

  /** Stops judging. */
  detach(): void {
    this.k.trace.off("wp_page_copy", this.listener);
  }

  private judge(e: WpPageCopyEvent): void {
    if (this.leavesCoherentPin(e)) {
      this.wrong++;
      this.verdicts.push({ pid: e.pid, address: e.address, pfn: e.pfn, verdict: "wrong", observers: [`a coherent pin of pid ${e.pid} holds it`] });
      return;
    }
    // a fresh page for the zero page copies nothing: nothing to judge
    if (e.zeroPage) return;
    const observers = this.observers(e.pfn);
    const ksm = this.k.ops.folioTestKsm(this.k.ops.pageFolio(e.pfn));
    const verdict = observers.length > 0 || ksm ? "necessary" : "unnecessary";
    if (verdict === "necessary") this.necessary++; else this.unnecessary++;
    this.verdicts.push({ pid: e.pid, address: e.address, pfn: e.pfn, verdict, observers });
  }

  /**
   * A long-term pin (or any coherent holder) of the copying process that holds the old page for
   * this address now holds a page the process no longer maps. For the zero page, which many
   * addresses share, the pin must be the one taken at this address.
   */
  private leavesCoherentPin(e: WpPageCopyEvent): boolean {
    for (const pin of this.k.pinViews()) {
      if (pin.contract !== "coherent" || pin.pid !== e.pid) continue;
      for (let i = 0; i < pin.pfns.length; i++) {
        if (pin.pfns[i] === e.pfn && (!e.zeroPage || pin.addresses[i] === e.address)) return true;
      }
    }
    return false;
  }

  /** Everyone who can still observe frame `pfn`: PTEs, swap entries it caches, snapshot references. */
  private observers(pfn: number): string[] {
    const k = this.k;
    const out: string[] = [];
    for (const p of k.processViews()) {
      for (const vma of p.vmas) {
        for (const r of k.pagemap(p.mm, vma.start, vma.end)) {
          const kind = r.kind & 0xff;
          if ((kind === C.PTE_KIND_PRESENT || kind === C.PTE_KIND_PROTNONE) && !(r.aux & SPECIAL) && r.pfn === pfn) {
            out.push(`pid ${p.pid} maps it at 0x${r.address.toString(16)}`);
          } else if (kind === C.PTE_KIND_SWAP && k.ops.swapCachePfn(r.pfn) === pfn) {
            out.push(`pid ${p.pid}'s swap entry at 0x${r.address.toString(16)} names slot ${r.pfn}, which it caches`);
          }
        }
      }
    }
    for (const pin of k.pinViews()) {
      if (pin.contract !== "snapshot") continue;
      if (pin.pfns.includes(pfn)) out.push(`the ${pin.owner} of pid ${pin.pid} holds it`);
    }
    return out;
  }
}
