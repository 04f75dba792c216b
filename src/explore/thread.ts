/**
 * Runs one thread of a program into the events it performs, for given values of its loads.
 * The events carry what the models need: the access's annotation, the registers' data
 * dependencies on earlier loads, and the control dependencies (every event after an `if`
 * whose condition used a load depends on that load, as in herd7's `ctrl`).
 */
import { ExploreError, type Expr, type FenceKind, type MemOp, type Program, type Stmt, type Thread } from "./ir.js";

export interface ThreadEvent {
  readonly kind: "R" | "W" | "F";
  readonly loc: string;
  readonly val: number;
  /** once | acquire (R) | release (W); fences carry `fence`. */
  readonly ord: "once" | "acquire" | "release";
  readonly fence?: FenceKind;
  /** Part of an atomic RMW instruction (both halves); `rmwRead` on the W half names its R. */
  readonly rmw: boolean;
  readonly rmwRead?: number;
  /** The R half of a non-value-returning RMW (atomic_add()): the LKMM's Noreturn. */
  readonly noreturn: boolean;
  /** An x86 locked instruction (every RMW, a failed cmpxchg too): a full fence under TSO. */
  readonly locked: boolean;
  /** Indices (in this thread's events) of the loads this event's value depends on. */
  readonly data: readonly number[];
  readonly ctrl: readonly number[];
  readonly line: number;
  readonly label?: string;
}

export interface ThreadTrace {
  readonly events: readonly ThreadEvent[];
  readonly regs: ReadonlyMap<string, number>;
}

interface Val { readonly v: number; readonly deps: readonly number[] }

const union = (a: readonly number[], b: readonly number[]): number[] => (b.length === 0 ? [...a] : [...new Set([...a, ...b])].sort((x, y) => x - y));

/**
 * Runs `t` once; `pick(loc)` gives the value each load (in order) returns. Pure: the same picks
 * give the same trace.
 */
export function runThread(prog: Program, t: Thread, pick: (loc: string, index: number) => number): ThreadTrace {
  const events: ThreadEvent[] = [];
  const regs = new Map<string, Val>();
  for (const r of t.regs) regs.set(r, { v: prog.regInit.get(`${t.id}:${r}`) ?? 0, deps: [] });
  let ctrl: number[] = [];

  const push = (e: Omit<ThreadEvent, "ctrl" | "label">): number => {
    const label = t.labels.get(e.line);
    events.push(label === undefined ? { ...e, ctrl } : { ...e, ctrl, label });
    return events.length - 1;
  };
  const fence = (kind: FenceKind, line: number): void => {
    push({ kind: "F", loc: "", val: 0, ord: "once", fence: kind, rmw: false, noreturn: false, locked: false, data: [], line });
  };

  const mem = (op: MemOp): Val => {
    switch (op.k) {
      case "fence":
        fence(op.kind, op.line);
        return { v: 0, deps: [] };
      case "load": {
        const v = pick(op.loc, events.length);
        const i = push({ kind: "R", loc: op.loc, val: v, ord: op.ord, rmw: false, noreturn: false, locked: false, data: [], line: op.line });
        return { v, deps: [i] };
      }
      case "store": {
        const val = expr(op.val);
        push({ kind: "W", loc: op.loc, val: val.v, ord: op.ord, rmw: false, noreturn: false, locked: false, data: val.deps, line: op.line });
        return { v: 0, deps: [] };
      }
      case "rmw": {
        const arg = expr(op.arg);
        const expect = op.expect === undefined ? undefined : expr(op.expect);
        const old = pick(op.loc, events.length);
        const writes = op.kind !== "cmpxchg" || old === expect!.v;
        const nv = op.kind === "add" ? (old + arg.v) | 0 : arg.v;
        // linux-kernel.def: a fully ordered RMW is a fence on either side; a failed cmpxchg
        // orders nothing (it is a plain once read). It keeps a compiler barrier() in the
        // fences' places, which orders no marked access, so that the events before the load
        // do not depend on the value it returns (the interleaving search steps by position).
        const full = op.ord === "mb";
        const side: FenceKind = writes ? "mb" : "barrier";
        if (full) fence(side, op.line);
        const rOrd = writes && op.ord === "acquire" ? "acquire" : "once";
        const r = push({
          kind: "R", loc: op.loc, val: old, ord: rOrd, rmw: writes, noreturn: op.ret === "none", locked: true,
          data: expect?.deps ?? [], line: op.line,
        });
        if (writes) {
          push({
            kind: "W", loc: op.loc, val: nv, ord: op.ord === "release" ? "release" : "once", rmw: true, rmwRead: r,
            noreturn: false, locked: true, data: arg.deps, line: op.line,
          });
        }
        if (full) fence(side, op.line);
        return { v: op.ret === "new" ? nv : old, deps: [r] };
      }
    }
  };

  const expr = (e: Expr): Val => {
    switch (e.k) {
      case "num": return { v: e.v, deps: [] };
      case "reg": return regs.get(e.name)!;
      case "mem": return mem(e.op);
      case "un": {
        const a = expr(e.e);
        return { v: e.op === "!" ? (a.v === 0 ? 1 : 0) : e.op === "-" ? -a.v | 0 : ~a.v, deps: a.deps };
      }
      case "bin": {
        const a = expr(e.a);
        if (e.op === "&&" && a.v === 0) return { v: 0, deps: a.deps };
        if (e.op === "||" && a.v !== 0) return { v: 1, deps: a.deps };
        const b = expr(e.b);
        return { v: binop(e.op, a.v, b.v), deps: union(a.deps, b.deps) };
      }
    }
  };

  const run = (body: readonly Stmt[]): void => {
    for (const s of body) {
      if (s.k === "assign") regs.set(s.reg, expr(s.e));
      else if (s.k === "expr") expr(s.e);
      else {
        const c = expr(s.cond);
        // the branch depends on the loads behind its condition; so does everything after it
        ctrl = union(ctrl, c.deps);
        run(c.v !== 0 ? s.then : s.else);
      }
    }
  };
  run(t.body);
  return { events, regs: new Map([...regs].map(([k, v]) => [k, v.v])) };
}

function binop(op: string, a: number, b: number): number {
  switch (op) {
    case "+": return (a + b) | 0;
    case "-": return (a - b) | 0;
    case "*": return Math.imul(a, b);
    case "&": return a & b;
    case "|": return a | b;
    case "^": return a ^ b;
    case "==": return a === b ? 1 : 0;
    case "!=": return a !== b ? 1 : 0;
    case "<": return a < b ? 1 : 0;
    case ">": return a > b ? 1 : 0;
    case "<=": return a <= b ? 1 : 0;
    case ">=": return a >= b ? 1 : 0;
    case "&&": return a !== 0 && b !== 0 ? 1 : 0;
    case "||": return a !== 0 || b !== 0 ? 1 : 0;
    default: throw new Error(`unknown operator ${op}`);
  }
}

/**
 * The values a load may return: per location, each value with the stores that can produce it
 * (thread, event index; the initial value has none). A load of thread t at index i may return
 * the initial value or a value some store of another thread, or an earlier one of t, produces —
 * never only its own later store (coherence forbids reading it), which keeps a counter's own
 * increments from feeding themselves round after round.
 */
export type Domains = ReadonlyMap<string, ReadonlyMap<number, readonly (readonly [number, number])[]>>;

function allowed(prog: Program, dom: Domains, loc: string, tid: number, index: number): number[] {
  const init = prog.init.get(loc)!;
  const out: number[] = [];
  for (const [v, producers] of dom.get(loc)!) {
    if (v === init || producers.some(([t, i]) => t !== tid || i < index)) out.push(v);
  }
  return out;
}

/**
 * Every trace of `t` when each load may return any value its location's domain allows it: the
 * loads' values are chosen by an odometer over the domains, replaying the thread for each choice.
 */
export function threadTraces(prog: Program, t: Thread, domain: Domains): ThreadTrace[] {
  const out: ThreadTrace[] = [];
  const choice: number[] = [];
  for (;;) {
    const sizes: number[] = [];
    let k = 0;
    const trace = runThread(prog, t, (loc, index) => {
      const d = allowed(prog, domain, loc, t.id, index);
      if (k >= choice.length) choice.push(0);
      sizes.push(d.length);
      return d[choice[k++]!]!;
    });
    choice.length = k;
    out.push(trace);
    let i = k - 1;
    while (i >= 0 && choice[i]! + 1 >= sizes[i]!) i--;
    if (i < 0) return out;
    choice[i]!++;
    choice.length = i + 1;
  }
}

/**
 * The values each location can hold: a fixpoint from the initial values through every
 * thread's stores. A chain of stores is at most as long as there are stores, so that many
 * rounds suffice; values no execution can produce only give traces that no rf matches.
 */
export function valueDomains(prog: Program): Domains {
  const dom = new Map<string, Map<number, [number, number][]>>();
  for (const [l, v] of prog.init) dom.set(l, new Map([[v, []]]));
  // an execution has at most as many stores as its threads' longest traces together: no chain of
  // values derived store from store is longer, so that many rounds reach every real value
  let rounds = 1;
  for (let round = 0; round < rounds; round++) {
    let changed = false;
    const cur: Domains = new Map([...dom].map(([l, m]) => [l, new Map([...m].map(([v, ps]) => [v, [...ps]]))]));
    let stores = 0;
    for (const t of prog.threads) {
      let most = 0;
      for (const tr of threadTraces(prog, t, cur)) {
        let n = 0;
        tr.events.forEach((e, index) => {
          if (e.kind !== "W") return;
          n++;
          const m = dom.get(e.loc)!;
          const ps = m.get(e.val);
          if (ps === undefined) { m.set(e.val, [[t.id, index]]); changed = true; }
          else if (!ps.some(([a, b]) => a === t.id && b === index)) { ps.push([t.id, index]); changed = true; }
        });
        most = Math.max(most, n);
      }
      stores += most;
      if ([...dom.values()].some((m) => m.size > 64)) {
        throw new ExploreError(prog.file, t.body[0]?.line ?? 1, "the values a location can hold do not stay few (at most 64): the test is too large to explore");
      }
    }
    if (!changed) break;
    rounds = Math.max(rounds, stores + 1);
  }
  return dom;
}
