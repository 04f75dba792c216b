/**
 * The exhaustive search. The explorer enumerates candidate executions — for each combination of
 * per-thread traces (thread.ts), every reads-from choice (each load from a store of the same
 * value, or the initial value) and every coherence order of each location's stores — and keeps
 * those a model allows (models.ts). This is herd7's method, and the reduction is in the method:
 * an execution graph stands for every interleaving that orders the conflicting accesses the same
 * way (one Mazurkiewicz trace), so each class is visited once — the ideal that dynamic
 * partial-order reduction (sleep sets, DPOR) approaches from the interleaving side. The
 * interleaving search that visits every schedule is operational.ts; tests check that both find
 * the same outcomes under SC and TSO.
 *
 * Why axiomatic and not an operational machine for all three: the LKMM is defined axiomatically
 * (linux-kernel.cat), and no small operational machine is known to give exactly its verdicts
 * (it is neither multi-copy atomic nor a store-buffer model); writing its cat relations down is
 * the way to get the LKMM's own answers.
 *
 * Coherence (`acyclic po-loc | com`) and RMW atomicity (`empty rmw & (fre;coe)`) hold in every
 * model, so they prune each location's rf/co choices before locations are combined.
 */
import { atoms } from "./parse.js";
import type { Atom, Program, Prop } from "./ir.js";
import { EvSet, Rel } from "./relation.js";
import { CONSISTENT, explainingOrder, MODELS, type Candidate, type ModelName, type StaticGraph } from "./models.js";
import { threadTraces, valueDomains, type ThreadEvent, type ThreadTrace } from "./thread.js";

/** One event of an execution, with its place. */
export interface Event extends ThreadEvent {
  /** -1 for an initial write. */
  readonly tid: number;
  readonly index: number;
}

export interface WitnessStep {
  readonly tid: number;
  readonly event: Event;
  /** For a load: the store it read from (null: the initial value). */
  readonly from: Event | null;
  /** Program-order predecessors of the same thread that come later in this order (reordered). */
  readonly ahead: readonly Event[];
}

/** One execution that gives the condition's state (or, for forall, fails it), as an order of its accesses. */
export interface Witness {
  /** The observed final state of this execution. */
  readonly state: string;
  /** One order of the events that the model allows and that gives the state. */
  readonly steps: readonly WitnessStep[];
  /** Coherence order per location: the stores in the order memory takes them. */
  readonly co: ReadonlyMap<string, readonly Event[]>;
}

export interface StateCount { readonly state: string; readonly count: number; readonly holds: boolean }

/** What one model allows: the final states, herd7's counts and verdict, a witness. */
export interface ModelResult {
  readonly model: ModelName;
  /** Final states over the observed locations, sorted as herd7 prints them. */
  readonly states: readonly StateCount[];
  /** Executions where the condition's proposition holds / does not. */
  readonly positive: number;
  readonly negative: number;
  /** herd7's Ok / No: the quantified condition is validated. */
  readonly ok: boolean;
  readonly observation: "Always" | "Sometimes" | "Never";
  /** An execution where the proposition holds (exists, ~exists) or fails (forall). */
  readonly witness: Witness | null;
}

/** The result of explore(): one ModelResult per model asked for. */
export interface ExploreResult {
  readonly program: Program;
  readonly observed: readonly Atom[];
  readonly models: readonly ModelResult[];
  /** Candidate executions examined (after per-location coherence and atomicity): the states of the search. */
  readonly candidates: number;
  readonly seconds: number;
}

/** What explore() looks at. */
export interface ExploreOptions {
  readonly models?: readonly ModelName[];
  /** Keep a witness (default true). */
  readonly witness?: boolean;
  /** States over every register and location, not only the condition's (for comparing searches). */
  readonly observeAll?: boolean;
}

/** The locations a result block shows: the condition's and `locations [...]`, registers first. */
export function observedAtoms(p: Program, all = false): Atom[] {
  const seen = new Map<string, Atom>();
  const every: Atom[] = all ? [...p.threads.flatMap((t) => t.regs.map((name) => ({ tid: t.id, name, val: 0 }))), ...[...p.init.keys()].map((name) => ({ tid: null, name, val: 0 }))] : [];
  for (const a of [...atoms(p.condition.prop), ...p.locations, ...every]) seen.set(atomKey(a), { ...a, val: 0 });
  return [...seen.values()].sort((a, b) => {
    if ((a.tid === null) !== (b.tid === null)) return a.tid === null ? 1 : -1;
    if (a.tid !== b.tid) return a.tid! - b.tid!;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}
export const atomKey = (a: Atom): string => (a.tid === null ? a.name : `${a.tid}:${a.name}`);

export interface Final { readonly regs: readonly ReadonlyMap<string, number>[]; readonly mem: ReadonlyMap<string, number> }

function evalProp(p: Prop, f: Final): boolean {
  switch (p.k) {
    case "true": return true;
    case "false": return false;
    case "not": return !evalProp(p.p, f);
    case "and": return evalProp(p.a, f) && evalProp(p.b, f);
    case "or": return evalProp(p.a, f) || evalProp(p.b, f);
    case "atom": return valueOf(p.atom, f) === p.atom.val;
  }
}
export const valueOf = (a: Atom, f: Final): number => (a.tid === null ? f.mem.get(a.name)! : f.regs[a.tid]!.get(a.name)!);

/** Builds the static relations of one combination of thread traces. */
function buildStatic(events: readonly Event[]): StaticGraph {
  const n = events.length;
  const set = (pred: (e: Event) => boolean) => EvSet.of(n, (i) => pred(events[i]!));
  const R = set((e) => e.kind === "R"), W = set((e) => e.kind === "W"), M = set((e) => e.kind !== "F");
  const locked = set((e) => e.locked), rmwSet = set((e) => e.rmw);
  const acquire = set((e) => e.ord === "acquire"), release = set((e) => e.ord === "release");
  const r4rmb = set((e) => e.kind === "R" && !e.noreturn);
  const po = new Rel(n), int = new Rel(n), ext = new Rel(n), rmw = new Rel(n), data = new Rel(n), ctrl = new Rel(n);
  const base = new Map<number, number>(); // tid → global index of its first event
  for (let i = 0; i < n; i++) { const t = events[i]!.tid; if (t >= 0 && !base.has(t)) base.set(t, i); }
  for (let a = 0; a < n; a++) {
    const ea = events[a]!;
    for (let b = 0; b < n; b++) {
      const eb = events[b]!;
      const same = ea.tid >= 0 && ea.tid === eb.tid;
      if (same) int.add(a, b); else if (a !== b) ext.add(a, b);
      if (same && ea.index < eb.index) po.add(a, b);
    }
    if (ea.tid < 0) continue;
    const b0 = base.get(ea.tid)!;
    if (ea.rmwRead !== undefined) rmw.add(b0 + ea.rmwRead, a);
    for (const d of ea.data) data.add(b0 + d, a);
    for (const d of ea.ctrl) ctrl.add(b0 + d, a);
  }
  const fencerel = (kind: string): Rel => {
    const F = set((e) => e.kind === "F" && e.fence === kind);
    return po.restrict(null, F).seq(po);
  };
  const poOpt = po.opt();
  const mb = fencerel("mb").restrict(M, M)
    .or(fencerel("before-atomic").restrict(M, rmwSet).seq(poOpt).restrict(null, M))
    .or(poOpt.restrict(M, rmwSet).seq(fencerel("after-atomic")).restrict(null, M));
  const poRel = po.restrict(M, release), acqPo = po.restrict(acquire, M);
  const wmb = fencerel("wmb").restrict(W, W);
  const rmb = fencerel("rmb").restrict(r4rmb, r4rmb);
  const fence = mb.or(poRel, acqPo, wmb, rmb);
  const poM = po.restrict(M, M);
  const tsoPpo = poM.restrict(W, W).or(poM.restrict(R, null), fencerel("mb").restrict(M, M), poM.restrict(null, locked), poM.restrict(locked, null));
  return { n, R, W, M, locked, po, int, ext, rmw, data, ctrl, strong: mb, poRel, wmb, fence, tsoPpo };
}

/** One location's rf and co choice that is coherent and atomic. */
interface LocChoice { readonly rf: readonly (readonly [number, number])[]; readonly co: readonly number[] }

/**
 * The coherence orders worth trying: coherence (`po-loc` in `co`) keeps each thread's stores to a
 * location in program order, so only the interleavings of the threads' sequences can be
 * coherent — n!/(k1!…km!) orders instead of n!.
 */
function coOrders(events: readonly Event[], writes: readonly number[]): number[][] {
  const byThread = new Map<number, number[]>();
  for (const w of writes) byThread.set(events[w]!.tid, [...(byThread.get(events[w]!.tid) ?? []), w]);
  const seqs = [...byThread.values()].map((ws) => ws.sort((a, b) => events[a]!.index - events[b]!.index));
  const out: number[][] = [];
  const at = seqs.map(() => 0);
  const cur: number[] = [];
  const rec = (): void => {
    if (cur.length === writes.length) { out.push([...cur]); return; }
    seqs.forEach((seq, i) => {
      if (at[i]! >= seq.length) return;
      cur.push(seq[at[i]!]!);
      at[i]!++;
      rec();
      at[i]!--;
      cur.pop();
    });
  };
  rec();
  return out;
}

/** Every coherent, atomic rf/co choice for the accesses of one location. */
function locationChoices(events: readonly Event[], init: number, accesses: readonly number[]): LocChoice[] {
  const writes = accesses.filter((i) => events[i]!.kind === "W");
  const reads = accesses.filter((i) => events[i]!.kind === "R");
  const sources = reads.map((r) => [init, ...writes].filter((w) => events[w]!.val === events[r]!.val));
  if (sources.some((s) => s.length === 0)) return [];
  const out: LocChoice[] = [];
  const local = [init, ...accesses];
  const pos = new Map(local.map((g, i) => [g, i]));
  for (const perm of coOrders(events, writes)) {
    const co = [init, ...perm];
    const coIdx = new Map(co.map((w, i) => [w, i]));
    const pick = new Array<number>(reads.length).fill(0);
    for (;;) {
      const rf = reads.map((r, i) => [sources[i]![pick[i]!]!, r] as const);
      if (coherent(events, local, pos, co, coIdx, rf)) out.push({ rf, co });
      let i = reads.length - 1;
      while (i >= 0 && pick[i]! + 1 >= sources[i]!.length) { pick[i] = 0; i--; }
      if (i < 0) break;
      pick[i]!++;
    }
  }
  return out;
}

function coherent(
  events: readonly Event[], local: readonly number[], pos: ReadonlyMap<number, number>, co: readonly number[],
  coIdx: ReadonlyMap<number, number>, rf: readonly (readonly [number, number])[],
): boolean {
  const n = local.length;
  const g = new Rel(n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      const ea = events[local[a]!]!, eb = events[local[b]!]!;
      if (ea.tid >= 0 && ea.tid === eb.tid && ea.index < eb.index) g.add(a, b);
    }
  }
  for (let i = 1; i < co.length; i++) g.add(pos.get(co[i - 1]!)!, pos.get(co[i]!)!);
  for (const [w, r] of rf) {
    g.add(pos.get(w)!, pos.get(r)!);
    for (let j = coIdx.get(w)! + 1; j < co.length; j++) g.add(pos.get(r)!, pos.get(co[j]!)!);
    // atomicity: an RMW's store follows the store its load read from, with no other thread's store between
    const re = events[r]!;
    if (re.rmw) {
      const wIdx = co.findIndex((x) => events[x]!.rmwRead === re.index && events[x]!.tid === re.tid);
      const from = coIdx.get(w)!;
      if (wIdx <= from) return false;
      for (let j = from + 1; j < wIdx; j++) if (events[co[j]!]!.tid !== re.tid) return false;
    }
  }
  return g.acyclic();
}

/** Explores `prog` under the given models (all three by default). */
export function explore(prog: Program, opts: ExploreOptions = {}): ExploreResult {
  const t0 = performance.now();
  const models = opts.models ?? MODELS;
  const wantWitness = opts.witness ?? true;
  const domain = valueDomains(prog);
  const perThread = prog.threads.map((t) => threadTraces(prog, t, domain));
  const locs = [...prog.init.keys()];
  const observed = observedAtoms(prog, opts.observeAll);
  const acc = models.map(() => ({ states: new Map<string, { count: number; holds: boolean }>(), pos: 0, neg: 0, witness: null as Witness | null }));
  let candidates = 0;

  const combo: ThreadTrace[] = [];
  const visit = (): void => {
    const events: Event[] = locs.map((l, i) => ({
      kind: "W", loc: l, val: prog.init.get(l)!, ord: "once", rmw: false, noreturn: false, locked: false,
      data: [], ctrl: [], line: 0, tid: -1, index: i,
    }));
    combo.forEach((tr, tid) => tr.events.forEach((e, index) => events.push({ ...e, tid, index })));
    const perLoc: LocChoice[][] = [];
    for (let li = 0; li < locs.length; li++) {
      const acc = events.map((e, i) => [e, i] as const).filter(([e, i]) => e.loc === locs[li] && e.kind !== "F" && i >= locs.length).map(([, i]) => i);
      const ch = locationChoices(events, li, acc);
      if (ch.length === 0) return;
      perLoc.push(ch);
    }
    const g = buildStatic(events);
    const pick = new Array<number>(locs.length).fill(0);
    for (;;) {
      const rf = new Rel(g.n), co = new Rel(g.n), fr = new Rel(g.n);
      const mem = new Map<string, number>();
      perLoc.forEach((chs, li) => {
        const ch = chs[pick[li]!]!;
        for (let i = 0; i < ch.co.length; i++) for (let j = i + 1; j < ch.co.length; j++) co.add(ch.co[i]!, ch.co[j]!);
        for (const [w, r] of ch.rf) {
          rf.add(w, r);
          for (let j = ch.co.indexOf(w) + 1; j < ch.co.length; j++) fr.add(r, ch.co[j]!);
        }
        mem.set(locs[li]!, events[ch.co[ch.co.length - 1]!]!.val);
      });
      const c: Candidate = { rf, co, fr };
      candidates++;
      const final: Final = { regs: combo.map((t) => t.regs), mem };
      const holds = evalProp(prog.condition.prop, final);
      const state = observed.map((a) => `${atomKey(a)}=${valueOf(a, final)};`).join(" ");
      models.forEach((m, mi) => {
        if (!CONSISTENT[m](g, c)) return;
        const a = acc[mi]!;
        const s = a.states.get(state);
        if (s) s.count++; else a.states.set(state, { count: 1, holds });
        if (holds) a.pos++; else a.neg++;
        const interesting = prog.condition.quant === "forall" ? !holds : holds;
        if (wantWitness && interesting && a.witness === null) a.witness = witness(m, g, c, events, perLoc, pick, state);
      });
      let i = locs.length - 1;
      while (i >= 0 && pick[i]! + 1 >= perLoc[i]!.length) { pick[i] = 0; i--; }
      if (i < 0) break;
      pick[i]!++;
    }
  };
  // most combinations of traces have a load of a value no store of the combination writes (the
  // domains over-approximate): a cheap test on (location, value) keys skips them
  const key = (loc: string, v: number) => `${loc}=${v}`;
  const need = perThread.map((trs) => trs.map((tr) => tr.events.filter((e) => e.kind === "R" && e.val !== prog.init.get(e.loc)).map((e) => key(e.loc, e.val))));
  const have = perThread.map((trs) => trs.map((tr) => new Set(tr.events.filter((e) => e.kind === "W").map((e) => key(e.loc, e.val)))));
  // forward checking: once threads 0..t have their traces, each value they load must come from
  // one of those traces or from some trace of a thread still to choose
  const anyHave = have.map((hs) => new Set(hs.flatMap((h) => [...h])));
  const chosen: number[] = [];
  const supported = (upto: number): boolean => {
    for (let t = 0; t <= upto; t++) {
      for (const k of need[t]![chosen[t]!]!) {
        let ok = false;
        for (let u = 0; u <= upto && !ok; u++) ok = have[u]![chosen[u]!]!.has(k);
        for (let u = upto + 1; u < perThread.length && !ok; u++) ok = anyHave[u]!.has(k);
        if (!ok) return false;
      }
    }
    return true;
  };
  const rec = (tid: number): void => {
    if (tid === perThread.length) { visit(); return; }
    perThread[tid]!.forEach((tr, i) => {
      combo[tid] = tr;
      chosen[tid] = i;
      if (supported(tid)) rec(tid + 1);
    });
  };
  rec(0);

  const results: ModelResult[] = models.map((model, mi) => {
    const a = acc[mi]!;
    const states = [...a.states].map(([state, v]) => ({ state, ...v })).sort((x, y) => compareStates(x.state, y.state));
    const q = prog.condition.quant;
    const ok = q === "exists" ? a.pos > 0 : q === "~exists" ? a.pos === 0 : a.neg === 0;
    const observation = a.pos === 0 ? "Never" : a.neg === 0 ? "Always" : "Sometimes";
    return { model, states, positive: a.pos, negative: a.neg, ok, observation, witness: a.witness };
  });
  return { program: prog, observed, models: results, candidates, seconds: (performance.now() - t0) / 1000 };
}

/** herd7 sorts states by their values, location by location. */
function compareStates(a: string, b: string): number {
  const va = a.split(";").map((s) => Number(s.split("=")[1] ?? 0));
  const vb = b.split(";").map((s) => Number(s.split("=")[1] ?? 0));
  for (let i = 0; i < Math.min(va.length, vb.length); i++) if (va[i] !== vb[i]) return va[i]! - vb[i]!;
  return 0;
}

function witness(
  model: ModelName, g: StaticGraph, c: Candidate, events: readonly Event[], perLoc: readonly LocChoice[][],
  pick: readonly number[], state: string,
): Witness {
  // fences are no events a reader follows; an RMW prints as one step, where its store lands
  const base = new Map<number, number>();
  events.forEach((e, i) => { if (e.tid >= 0 && !base.has(e.tid)) base.set(e.tid, i); });
  const order = explainingOrder(model, g, c).linearize()
    .filter((i) => events[i]!.tid >= 0 && events[i]!.kind !== "F" && !(events[i]!.kind === "R" && events[i]!.rmw))
    .flatMap((i) => { const e = events[i]!; return e.rmwRead === undefined ? [i] : [base.get(e.tid)! + e.rmwRead, i]; });
  const from = new Map<number, number>();
  const co = new Map<string, Event[]>();
  perLoc.forEach((chs, li) => {
    const ch = chs[pick[li]!]!;
    for (const [w, r] of ch.rf) from.set(r, w);
    co.set(events[ch.co[0]!]!.loc, ch.co.map((i) => events[i]!));
  });
  const placed = new Set<number>();
  const steps = order.map((i) => {
    const e = events[i]!;
    placed.add(i);
    const ahead = events.filter((p, j) => p.tid === e.tid && p.index < e.index && !placed.has(j) && p.kind !== "F");
    const src = from.get(i);
    return { tid: e.tid, event: e, from: src === undefined || events[src]!.tid < 0 ? null : events[src]!, ahead };
  });
  return { state, steps, co };
}
