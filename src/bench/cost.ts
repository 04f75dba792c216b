/**
 * The cost model: what a run of a workload would cost on the host kernel, estimated from the
 * simulator's counts. Each kind of event (a first-touch fault, a COW copy, a PTE shared at fork,
 * a pinned page …) has a cost in seconds measured on the machine by micro-programs that the
 * native companion runs (calibrationPrograms() here, run by measureCostModel() in native.ts);
 * the estimate is Σ count × cost. Its error shows against the same workload measured on the
 * host (`--vs-kernel`): what the events leave out (TLB and cache effects, reclaim's scans,
 * scheduling between processes) is what the error is made of.
 *
 * Pure: no Node module, so a report can be estimated anywhere.
 */
import { pageCount, ProgramBuilder, type Program } from "../workloads/program.js";
import type { BenchMetrics, CostModel, KernelEstimate } from "./result.js";

/** The events the model prices, each with where its count comes from. */
export const COST_EVENTS: Readonly<Record<string, string>> = {
  access: "a load or store of a present page (metrics.accesses)",
  anonFault: "do_anonymous_page() of a fresh page, beyond the access (faults.anon)",
  zeroPageFault: "do_anonymous_page() mapping the zero page on a read, beyond the access (faults.zeroPage)",
  thpFault: "do_huge_pmd_anonymous_page(): a 2 MiB THP zeroed and mapped (faults.thp)",
  cowCopy: "wp_page_copy(): a write fault that copied, beyond the access (metrics.copies less forkCopies)",
  forkCopy: "copy_present_page(): fork's copy of a possibly pinned page for the child (metrics.forkCopies)",
  reuse: "wp_page_reuse(): a write fault that kept the page, beyond the access (metrics.reuses)",
  swapOut: "a page written to swap by reclaim (metrics.swapOuts)",
  swapIn: "do_swap_page(): a page read back from swap, beyond the access (metrics.swapIns)",
  uffdFault: "a userfault resolved by the handler thread, beyond the access (faults[\"uffd-wp\"], faults[\"uffd-missing\"])",
  fork: "fork() of a process, its pages aside (fork steps)",
  forkPte: "copy_page_range(): one PTE shared with the child (metrics.ptesSharedAtFork)",
  exit: "exit() of a process and its wait, its pages aside (exit steps)",
  zapPte: "zap_pte_range(): one present PTE zapped by munmap, exit or MADV_DONTNEED (metrics.ptesZapped)",
  mmap: "an mmap() call (mmap steps)",
  munmap: "a munmap() call, its pages aside (munmap steps)",
  mprotectPage: "mprotect() per page (mprotect steps' pages)",
  pin: "io_uring_register(IORING_REGISTER_BUFFERS) call with its ring, pages aside (pin steps)",
  pinPage: "one page pinned FOLL_LONGTERM (pin steps' pages)",
  unpin: "a pin released (unpin steps)",
  dmaPage: "one pinned page read by the device, IORING_OP_WRITE_FIXED (dma_read steps' pages)",
  vmsplicePage: "one page vmsplice()d into a pipe (vmsplice steps' pages)",
  pipeReadPage: "one spliced page read from the pipe (pipe_read steps' pages)",
  uffdMovePage: "UFFDIO_MOVE of one page (uffd_move steps' pages)",
  uffdWpPage: "UFFDIO_WRITEPROTECT on or off over one page (uffd_wp steps' pages)",
  switch: "a step run by another process than the step before: the turn passed between processes (program steps)",
};

/**
 * Fault kinds of metrics.faults (the fault tracepoints' kinds) priced as their own event; null:
 * counted elsewhere (wp and unshare faults as copies and reuses, swap faults as swapIns).
 */
const FAULT_EVENTS: Readonly<Record<string, string | null>> = {
  anon: "anonFault", zeroPage: "zeroPageFault", thp: "thpFault", "uffd-wp": "uffdFault", "uffd-missing": "uffdFault",
  wp: null, unshare: null, swap: null,
};

/**
 * The process that runs each step, as the native companion decides it: the step's own, or for a
 * step that names none the process of its pin, pipe or userfaultfd, and for reclaim the lowest
 * process alive.
 */
export function stepProcesses(program: Program): number[] {
  const owner = { pin: new Map<number, number>(), pipe: new Map<number, number>(), uffd: new Map<number, number>() };
  const alive = new Set<number>([0]);
  return program.steps.map((s) => {
    switch (s.op) {
      case "pin": owner.pin.set(s.pin, s.proc); return s.proc;
      case "vmsplice": owner.pipe.set(s.pipe, s.proc); return s.proc;
      case "uffd_open": owner.uffd.set(s.uffd, s.proc); return s.proc;
      case "unpin": case "dma_read": return owner.pin.get(s.pin) ?? -1;
      case "pipe_read": return owner.pipe.get(s.pipe) ?? -1;
      case "uffd_register": case "uffd_wp": case "uffd_move": return owner.uffd.get(s.uffd) ?? -1;
      case "reclaim": return alive.size ? Math.min(...alive) : -1;
      case "fork": if (alive.has(s.proc)) alive.add(s.child); return s.proc;
      case "exit": alive.delete(s.proc); return s.proc;
      default: return s.proc;
    }
  });
}

/** Counts of the step-level events of a program (each step's own, whatever the simulator did). */
export function programEvents(program: Program): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (e: string, n: number) => { if (n) out[e] = (out[e] ?? 0) + n; };
  const procs = stepProcesses(program);
  for (let i = 1; i < procs.length; i++) if (procs[i] !== procs[i - 1]) add("switch", 1);
  const pinPages = new Map<number, number>();
  for (const s of program.steps) {
    switch (s.op) {
      case "fork": add("fork", 1); break;
      case "exit": add("exit", 1); break;
      case "mmap": add("mmap", 1); break;
      case "munmap": add("munmap", 1); break;
      case "mprotect": add("mprotectPage", s.count); break;
      case "pin": add("pin", 1); add("pinPage", s.count); pinPages.set(s.pin, s.count); break;
      case "unpin": add("unpin", 1); break;
      case "dma_read": add("dmaPage", pinPages.get(s.pin) ?? 0); break;
      case "vmsplice": add("vmsplicePage", s.count); add("pipeReadPage", s.count); break;
      case "uffd_move": add("uffdMovePage", s.count); break;
      case "uffd_wp": add("uffdWpPage", s.count); break;
      default: break;
    }
  }
  return out;
}

/**
 * The events of one run, by kind: the simulator's counts (metrics) and, with the program, its
 * step-level events. Fault kinds the model does not know are kept under "fault:<kind>".
 */
export function eventCounts(metrics: BenchMetrics, program?: Program): Record<string, number> {
  const out: Record<string, number> = program ? programEvents(program) : {};
  const add = (e: string, n: number | undefined) => { if (n) out[e] = (out[e] ?? 0) + n; };
  add("access", metrics.accesses);
  add("cowCopy", metrics.copies - (metrics.forkCopies ?? 0));
  add("forkCopy", metrics.forkCopies);
  add("reuse", metrics.reuses);
  add("swapOut", metrics.swapOuts);
  add("swapIn", metrics.swapIns);
  add("forkPte", metrics.ptesSharedAtFork);
  add("zapPte", metrics.ptesZapped);
  for (const [kind, n] of Object.entries(metrics.faults)) {
    const e = FAULT_EVENTS[kind];
    if (e === null) continue;
    add(e ?? `fault:${kind}`, n);
  }
  return out;
}

/**
 * The model's estimate of a run's host-kernel seconds: Σ count × cost over the events it has a
 * cost for; the others are listed as unmodelled (the estimate is low by their cost).
 */
export function estimate(metrics: BenchMetrics, model: CostModel, program?: Program): KernelEstimate {
  const byEvent: Record<string, number> = {};
  const unmodelled: Record<string, number> = {};
  let seconds = 0;
  for (const [e, n] of Object.entries(eventCounts(metrics, program))) {
    const cost = model.costs[e];
    if (cost === undefined) {
      unmodelled[e] = n;
      continue;
    }
    byEvent[e] = n * cost;
    seconds += n * cost;
  }
  return { seconds, byEvent, ...(Object.keys(unmodelled).length ? { unmodelled } : {}) };
}

/** The estimate's error against the measured host seconds: (estimate − measured) / measured. */
export function estimateError(est: KernelEstimate, measuredSeconds: number): number {
  if (!(measuredSeconds > 0)) throw new RangeError(`estimateError: measured seconds must be above 0 (got ${measuredSeconds})`);
  return (est.seconds - measuredSeconds) / measuredSeconds;
}

// ---- measuring the costs: micro-programs for the native companion ----

/** One micro-program and how its steps' seconds give costs (given those measured before it). */
export interface Calibration {
  readonly name: string;
  readonly program: Program;
  /** does it need swap on the host (skipped without) */
  readonly needsSwap?: boolean;
  /** costs from each step's seconds and the run's (which holds the handoffs between steps too) */
  derive(stepSeconds: readonly number[], known: Readonly<Record<string, number>>, runSeconds: number): Record<string, number>;
}

/** A builder that remembers the index of each step it adds, by label. */
class Steps {
  readonly b: ProgramBuilder;
  private n = 0;
  readonly at: Record<string, number> = {};
  constructor(name: string, pages: number) {
    this.b = new ProgramBuilder(`calibrate-${name}`, 0, { pages });
  }
  /** records the index of the step the call adds */
  step<T>(label: string | null, add: (b: ProgramBuilder) => T): T {
    if (label) this.at[label] = this.n;
    this.n++;
    return add(this.b);
  }
}

const pos = (x: number): number => (Number.isFinite(x) && x > 0 ? x : 0);

/**
 * The micro-programs, each over `pages` pages (4096 by default: long enough that a step's
 * fixed cost is small against its pages, short enough to run in well under a second).
 */
export function calibrationPrograms(pages = 4096): Calibration[] {
  const N = Math.max(16, Math.floor(pages));
  const all = { first: 0, count: N };
  const out: Calibration[] = [];

  {
    const s = new Steps("touch", N);
    const a = s.step("mmap", (b) => b.mmap(0, N, { huge: false }));
    s.step("firstWrite", (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    s.step("write", (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 2 }));
    s.step("read", (b) => b.add({ op: "read", proc: 0, region: a, pages: all }));
    s.step("protect", (b) => b.add({ op: "mprotect", proc: 0, region: a, first: 0, count: N, write: false }));
    s.step("unprotect", (b) => b.add({ op: "mprotect", proc: 0, region: a, first: 0, count: N, write: true }));
    const z = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step("zeroRead", (b) => b.add({ op: "read", proc: 0, region: z, pages: all }));
    s.step("munmapFull", (b) => b.add({ op: "munmap", proc: 0, region: a }));
    s.step(null, (b) => b.add({ op: "munmap", proc: 0, region: z }));
    const e = s.step(null, (b) => b.mmap(0, 1, { huge: false }));
    s.step("munmapEmpty", (b) => b.add({ op: "munmap", proc: 0, region: e }));
    out.push({
      name: "touch", program: s.b.build(),
      derive(t) {
        const at = (l: string) => t[s.at[l]!]!;
        const access = pos((at("write") + at("read")) / (2 * N));
        return {
          access,
          anonFault: pos(at("firstWrite") / N - access),
          zeroPageFault: pos(at("zeroRead") / N - access),
          mprotectPage: pos((at("protect") + at("unprotect")) / (2 * N)),
          mmap: pos(at("mmap")),
          munmap: pos(at("munmapEmpty")),
          zapPte: pos((at("munmapFull") - at("munmapEmpty")) / N),
        };
      },
    });
  }

  {
    const s = new Steps("fork", N);
    const one = s.step(null, (b) => b.mmap(0, 1, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: one, pages: { first: 0, count: 1 }, value: 1 }));
    const c1 = s.step("forkSmall", (b) => b.fork(0));
    s.step("exitSmall", (b) => b.add({ op: "exit", proc: c1 }));
    const a = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    const c2 = s.step("forkFull", (b) => b.fork(0));
    s.step("cow", (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 2 }));
    s.step(null, (b) => b.add({ op: "exit", proc: c2 }));
    const c3 = s.step(null, (b) => b.fork(0));
    s.step(null, (b) => b.add({ op: "exit", proc: c3 }));
    s.step("reuse", (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 3 }));
    out.push({
      name: "fork", program: s.b.build(),
      derive(t, known) {
        const at = (l: string) => t[s.at[l]!]!;
        const access = known["access"] ?? 0;
        return {
          fork: pos(at("forkSmall")),
          exit: pos(at("exitSmall")),
          forkPte: pos((at("forkFull") - at("forkSmall")) / N),
          cowCopy: pos(at("cow") / N - access),
          reuse: pos(at("reuse") / N - access),
        };
      },
    });
  }

  {
    const s = new Steps("pin", N);
    const a = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    const p1 = s.step("pinOne", (b) => b.pin(0, a, 0, 1, "io_uring", true));
    s.step("unpinOne", (b) => b.add({ op: "unpin", pin: p1 }));
    const pn = s.step("pinAll", (b) => b.pin(0, a, 0, N, "io_uring", true));
    s.step(null, (b) => b.add({ op: "dma_read", pin: pn }));
    s.step("dma", (b) => b.add({ op: "dma_read", pin: pn }));
    // fork copies every pinned page for the child (page_needs_cow_for_dma())
    const c = s.step("forkPinned", (b) => b.fork(0));
    s.step(null, (b) => b.add({ op: "exit", proc: c }));
    s.step(null, (b) => b.add({ op: "unpin", pin: pn }));
    out.push({
      name: "pin", program: s.b.build(),
      derive(t, known) {
        const at = (l: string) => t[s.at[l]!]!;
        return {
          pin: pos(at("pinOne")),
          pinPage: pos((at("pinAll") - at("pinOne")) / (N - 1)),
          unpin: pos(at("unpinOne")),
          dmaPage: pos(at("dma") / N),
          forkCopy: pos((at("forkPinned") - (known["fork"] ?? 0)) / N - (known["forkPte"] ?? 0)),
        };
      },
    });
  }

  {
    const s = new Steps("vmsplice", N);
    const a = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    const splices: number[] = [];
    const reads: number[] = [];
    for (let first = 0; first + 16 <= N; first += 16) {
      s.step(`splice${first}`, (b) => b.vmsplice(0, a, first, 16));
      splices.push(s.at[`splice${first}`]!);
      s.step(`read${first}`, (b) => b.add({ op: "pipe_read", pipe: splices.length - 1 }));
      reads.push(s.at[`read${first}`]!);
    }
    const spliced = splices.length * 16;
    out.push({
      name: "vmsplice", program: s.b.build(),
      derive(t) {
        const sum = (ix: number[]) => ix.reduce((x, i) => x + t[i]!, 0);
        return { vmsplicePage: pos(sum(splices) / spliced), pipeReadPage: pos(sum(reads) / spliced) };
      },
    });
  }

  {
    const s = new Steps("uffd", N);
    const u = s.step(null, (b) => b.uffdOpen(0, ["MOVE", "WP"]));
    const a = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    const d = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "uffd_register", uffd: u, region: d, first: 0, count: N, modes: ["MISSING", "WP"] }));
    s.step("move", (b) => b.add({ op: "uffd_move", uffd: u, src: a, srcFirst: 0, dst: d, dstFirst: 0, count: N }));
    s.step("wpOn", (b) => b.add({ op: "uffd_wp", uffd: u, region: d, first: 0, count: N, on: true }));
    s.step("wpOff", (b) => b.add({ op: "uffd_wp", uffd: u, region: d, first: 0, count: N, on: false }));
    s.step(null, (b) => b.add({ op: "uffd_wp", uffd: u, region: d, first: 0, count: N, on: true }));
    s.step("wpFaults", (b) => b.add({ op: "write_wp", proc: 0, uffd: u, region: d, pages: all, value: 2 }));
    out.push({
      name: "uffd", program: s.b.build(),
      derive(t, known) {
        const at = (l: string) => t[s.at[l]!]!;
        return {
          uffdMovePage: pos(at("move") / N),
          uffdWpPage: pos((at("wpOn") + at("wpOff")) / (2 * N)),
          uffdFault: pos(at("wpFaults") / N - (known["access"] ?? 0)),
        };
      },
    });
  }

  {
    // the turn passed between two processes, each reading one page in its step
    const s = new Steps("switch", N);
    const a = s.step(null, (b) => b.mmap(0, 1, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: { first: 0, count: 1 }, value: 1 }));
    const c = s.step(null, (b) => b.fork(0));
    const turns = Math.max(16, Math.floor(N / 8));
    for (let i = 0; i < turns; i++) s.step(null, (b) => b.add({ op: "read", proc: i % 2 ? c : 0, region: a, pages: { first: 0, count: 1 } }));
    s.step(null, (b) => b.add({ op: "exit", proc: c }));
    const program = s.b.build();
    const switches = programEvents(program)["switch"]!;
    out.push({
      name: "switch", program,
      derive(t, _known, run) {
        // the run's seconds less its steps' are the handoffs
        const steps = t.reduce((x, y) => x + y, 0);
        return { switch: pos((run - steps) / switches) };
      },
    });
  }

  {
    const thps = Math.max(1, Math.floor(N / 512));
    const s = new Steps("thp", N);
    const h = s.step(null, (b) => b.mmap(0, thps * 512, { huge: true }));
    s.step("touch", (b) => b.add({ op: "write", proc: 0, region: h, pages: { first: 0, count: thps * 512 }, value: 1 }));
    out.push({
      name: "thp", program: s.b.build(),
      derive(t, known) {
        return { thpFault: pos((t[s.at["touch"]!]! - thps * 512 * (known["access"] ?? 0)) / thps) };
      },
    });
  }

  {
    const s = new Steps("swap", N);
    const a = s.step(null, (b) => b.mmap(0, N, { huge: false }));
    s.step(null, (b) => b.add({ op: "write", proc: 0, region: a, pages: all, value: 1 }));
    s.step("out", (b) => b.add({ op: "madvise", proc: 0, region: a, first: 0, count: N, advice: "pageout" }));
    s.step("in", (b) => b.add({ op: "read", proc: 0, region: a, pages: all }));
    out.push({
      name: "swap", program: s.b.build(), needsSwap: true,
      derive(t, known) {
        return { swapOut: pos(t[s.at["out"]!]! / N), swapIn: pos(t[s.at["in"]!]! / N - (known["access"] ?? 0)) };
      },
    });
  }
  return out;
}

/** The median of each cost over rounds. */
export function medianCosts(rounds: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  const keys = new Set(rounds.flatMap((r) => Object.keys(r)));
  for (const k of keys) {
    const v = rounds.map((r) => r[k]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    out[k] = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  }
  return out;
}

/** Pages a program's accesses touch, for a quick check that a calibration did its work. */
export function programAccesses(program: Program): number {
  let n = 0;
  for (const s of program.steps) if (s.op === "write" || s.op === "read" || s.op === "write_wp") n += pageCount(s.pages);
  return n;
}
