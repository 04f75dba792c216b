/**
 * The journal: what happened, step by step, and to which frames — the material the oracle's
 * explanations are made of. Every public call is one numbered step; within it, the kernel
 * functions that ran and the rules that decided are entries. Entries are indexed by frame and by
 * process, so a finding can be explained as the chain of steps that touched its page.
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
  /** Frames it concerned. */
  readonly pfns: readonly number[];
  /** Processes it concerned besides `pid`. */
  readonly pids: readonly number[];
}

/** A numbered link of an explanation. @public */
export interface ChainStep {
  readonly n: number;
  readonly step: number;
  readonly pid: number;
  readonly call: string;
  readonly fn: string;
  readonly what: string;
}

export class Journal {
  readonly entries: JournalEntry[] = [];
  private readonly byFrame = new Map<number, number[]>();
  private readonly byPid = new Map<number, number[]>();
  /** Where each frame's current life began (its allocation entry). */
  private readonly born = new Map<number, number>();
  step = 0;
  pid = 0;
  call = "";

  /** Starts a user-level step. */
  begin(pid: number, call: string): void {
    this.step++;
    this.pid = pid;
    this.call = call;
  }

  add(fn: string, what: string, pfns: readonly number[] = [], pids: readonly number[] = []): void {
    const i = this.entries.length;
    this.entries.push({ step: this.step, pid: this.pid, call: this.call, fn, what, pfns, pids });
    for (const p of pfns) push(this.byFrame, p, i);
    push(this.byPid, this.pid, i);
    for (const p of pids) push(this.byPid, p, i);
  }

  /** A frame starts a new life (allocated): its history starts here. */
  frameBorn(pfn: number): void {
    this.born.set(pfn, this.entries.length);
    this.byFrame.set(pfn, []);
  }

  /**
   * The chain of entries that explains what happened to `pfn` as seen by processes `pids`:
   * the frame's history since it was allocated, and those processes' process-wide events
   * (fork, exit, munmap …) over the same span, in order, numbered.
   */
  explain(pfn: number, pids: readonly number[], last?: Omit<ChainStep, "n">): ChainStep[] {
    const from = this.born.get(pfn) ?? 0;
    const idx = new Set<number>();
    for (const i of this.byFrame.get(pfn) ?? []) idx.add(i);
    for (const p of pids) {
      for (const i of this.byPid.get(p) ?? []) {
        if (i >= from && this.entries[i]!.pfns.length === 0) idx.add(i);
      }
    }
    const chain = [...idx].filter((i) => i >= from).sort((a, b) => a - b).map((i, k) => {
      const e = this.entries[i]!;
      return { n: k + 1, step: e.step, pid: e.pid, call: e.call, fn: e.fn, what: e.what };
    });
    if (last) chain.push({ n: chain.length + 1, ...last });
    return chain;
  }
}

function push(m: Map<number, number[]>, k: number, v: number): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
