/**
 * The unreduced search: every interleaving of an operational machine, one step at a time —
 * SC (one memory, every access in program order) and x86-TSO (a FIFO store buffer per CPU,
 * loads forwarded from it, MFENCE and LOCKed instructions waiting until it is empty, flushes
 * at any time). It visits every schedule, so it is the reference the axiomatic search
 * (explore.ts), which visits each execution graph once, is tested against: both must find the
 * same final states. Visited machine states are cached (a state reached twice is explored
 * once), which prunes nothing a schedule could reach.
 *
 * A thread is replayed from its start with the values its loads returned so far: programs are
 * tiny, and replay keeps the thread interpreter (thread.ts) the one definition of what a thread does.
 */
import type { Program } from "./ir.js";
import { atomKey, observedAtoms, valueOf, type Final } from "./explore.js";
import { runThread, type ThreadEvent } from "./thread.js";

/** The final states every interleaving reaches, and how many machine states the search visited. */
export interface InterleavingResult {
  /** Final states over every register and location, as explore() prints them with observeAll. */
  readonly states: ReadonlySet<string>;
  /** Machine states visited. */
  readonly visited: number;
}

interface Cpu { readonly fed: readonly number[]; readonly pos: number; readonly buf: readonly (readonly [string, number])[] }

/** Every interleaving of `prog` on the SC or the x86-TSO machine (the unreduced search). */
export function interleavings(prog: Program, model: "sc" | "tso"): InterleavingResult {
  const observed = observedAtoms(prog, true);
  const threads = prog.threads;
  const replay = (tid: number, fed: readonly number[]) => {
    let k = 0;
    return runThread(prog, threads[tid]!, () => fed[k++] ?? 0);
  };
  const states = new Set<string>();
  const seen = new Set<string>();
  const stack: { cpus: Cpu[]; mem: Map<string, number> }[] = [{ cpus: threads.map(() => ({ fed: [], pos: 0, buf: [] })), mem: new Map(prog.init) }];
  while (stack.length > 0) {
    const { cpus, mem } = stack.pop()!;
    const key = JSON.stringify([cpus, [...mem]]);
    if (seen.has(key)) continue;
    seen.add(key);
    let moved = false;
    const push = (tid: number, cpu: Cpu, m: Map<string, number>) => {
      moved = true;
      stack.push({ cpus: cpus.map((c, i) => (i === tid ? cpu : c)), mem: m });
    };
    cpus.forEach((cpu, tid) => {
      // a flush of the oldest buffered store
      if (cpu.buf.length > 0) {
        const [loc, v] = cpu.buf[0]!;
        push(tid, { ...cpu, buf: cpu.buf.slice(1) }, new Map(mem).set(loc, v));
      }
      const trace = replay(tid, cpu.fed);
      const e: ThreadEvent | undefined = trace.events[cpu.pos];
      if (e === undefined) return;
      const drained = model === "sc" || cpu.buf.length === 0;
      if (e.kind === "F") {
        if (e.fence === "mb" && !drained) return;
        push(tid, { ...cpu, pos: cpu.pos + 1 }, mem);
        return;
      }
      if (e.kind === "W") {
        if (model === "sc") push(tid, { ...cpu, pos: cpu.pos + 1 }, new Map(mem).set(e.loc, e.val));
        else push(tid, { ...cpu, pos: cpu.pos + 1, buf: [...cpu.buf, [e.loc, e.val]] }, mem);
        return;
      }
      if (e.locked && !drained) return;
      const fwd = cpu.buf.filter(([l]) => l === e.loc);
      const v = fwd.length > 0 ? fwd[fwd.length - 1]![1] : mem.get(e.loc)!;
      const fed = [...cpu.fed, v];
      // whether an RMW stores (a cmpxchg may fail) and what, depends on the value read
      const now = replay(tid, fed).events;
      if (!now[cpu.pos]!.rmw) { push(tid, { ...cpu, fed, pos: cpu.pos + 1 }, mem); return; }
      // an RMW: its store lands in the same step
      const w = now[cpu.pos + 1]!;
      push(tid, { ...cpu, fed, pos: cpu.pos + 2 }, new Map(mem).set(w.loc, w.val));
    });
    if (!moved) {
      const final: Final = { regs: cpus.map((c, tid) => replay(tid, c.fed).regs), mem };
      states.add(observed.map((a) => `${atomKey(a)}=${valueOf(a, final)};`).join(" "));
    }
  }
  return { states, visited: seen.size };
}
