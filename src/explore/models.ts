/**
 * The three memory models, each written as its cat file writes it (herd7's axiomatic style),
 * over one candidate execution: the events, program order `po`, reads-from `rf`, coherence
 * order `co` and from-reads `fr = rf⁻¹;co`.
 *
 * - **sc**: `acyclic po | rf | co | fr` — one interleaving explains every execution.
 * - **tso**: herd7's x86tso.cat with the Linux primitives compiled as x86 compiles them: plain
 *   MOVs for READ_ONCE/WRITE_ONCE/acquire/release, MFENCE (or a LOCKed instruction) for
 *   smp_mb(), nothing for smp_rmb()/smp_wmb()/smp_mb__{before,after}_atomic() (x86 already
 *   orders what they order, and its atomics are LOCKed), every RMW a LOCKed instruction — a
 *   full fence, even a failed cmpxchg. Only a store followed by a load may be reordered.
 * - **relaxed**: the Linux-kernel memory model of tools/memory-model/linux-kernel.cat for the
 *   subset (no locks, RCU or plain accesses, so `Marked` is every event and `gp` is empty):
 *   coherence, RMW atomicity, happens-before (`hb`) and propagation (`pb`). Like the LKMM — and
 *   unlike ARMv8 — it is not multi-copy atomic: IRIW with smp_rmb() readers is allowed, only
 *   strong fences (smp_mb()) forbid it (IRIW+fencembonceonces). Per-location coherence and RMW
 *   atomicity hold in all three.
 *
 * Coherence and atomicity are common to all three and are checked per location while the
 * candidates are built (explore.ts); the functions here check the rest.
 */
import { EvSet, Rel } from "./relation.js";

/** The memory models: sequential consistency, x86-TSO, the Linux-kernel memory model. */
export type ModelName = "sc" | "tso" | "relaxed";
/** Every model, strongest first. */
export const MODELS: readonly ModelName[] = ["sc", "tso", "relaxed"];
/** The names herd7 users know the models by. */
export const MODEL_TITLE: Record<ModelName, string> = { sc: "SC", tso: "x86-TSO", relaxed: "LKMM" };

/** What does not change with rf and co: the events and their program-order relations. */
export interface StaticGraph {
  readonly n: number;
  readonly R: EvSet; readonly W: EvSet; readonly M: EvSet; readonly locked: EvSet;
  readonly po: Rel; readonly int: Rel; readonly ext: Rel; readonly rmw: Rel;
  readonly data: Rel; readonly ctrl: Rel;
  // LKMM
  readonly strong: Rel; readonly poRel: Rel; readonly wmb: Rel; readonly fence: Rel;
  // x86-TSO
  readonly tsoPpo: Rel;
}

export interface Candidate { readonly rf: Rel; readonly co: Rel; readonly fr: Rel }

export function scConsistent(g: StaticGraph, c: Candidate): boolean {
  return scOrder(g, c).acyclic();
}
export function scOrder(g: StaticGraph, c: Candidate): Rel {
  return g.po.or(c.rf, c.co, c.fr);
}

export function tsoConsistent(g: StaticGraph, c: Candidate): boolean {
  return tsoOrder(g, c).acyclic();
}
/** x86tso.cat's ghb: ppo | mfence | implied (all in tsoPpo) | rfe | fr | co. */
export function tsoOrder(g: StaticGraph, c: Candidate): Rel {
  return g.tsoPpo.or(c.rf.and(g.ext), c.fr, c.co);
}

export interface LkmmOrders { readonly hb: Rel; readonly pb: Rel }

/** linux-kernel.cat's happens-before and propagation relations for this candidate. */
export function lkmmOrders(g: StaticGraph, c: Candidate): LkmmOrders {
  const rfi = c.rf.and(g.int), rfe = c.rf.and(g.ext);
  // bell: dependencies carried through a store read back by the same thread
  const carry = g.data.seq(rfi).star();
  const data = carry.seq(g.data), ctrl = carry.seq(g.ctrl);
  const overwrite = c.co.or(c.fr);
  const toW = data.or(ctrl).restrict(null, g.W).or(overwrite.and(g.int));
  const toR = data.seq(rfi);
  const ppo = toR.or(toW, g.fence.and(g.int));
  const aCumul = rfe.opt().seq(g.strong.or(g.poRel));
  const rmwSeq = c.rf.seq(g.rmw).star();
  const cumulFence = aCumul.or(g.wmb).seq(rmwSeq);
  const prop = overwrite.and(g.ext).opt().seq(cumulFence.star()).seq(rfe.opt());
  const hb = ppo.or(rfe, prop.minus(Rel.id(g.n)).and(g.int));
  const pb = prop.seq(g.strong).seq(hb.star());
  return { hb, pb };
}

export function lkmmConsistent(g: StaticGraph, c: Candidate): boolean {
  const { hb, pb } = lkmmOrders(g, c);
  return hb.acyclic() && pb.acyclic();
}

export const CONSISTENT: Record<ModelName, (g: StaticGraph, c: Candidate) => boolean> = {
  sc: scConsistent, tso: tsoConsistent, relaxed: lkmmConsistent,
};

/** An order that explains the execution under the model, to print a witness: acyclic when consistent. */
export function explainingOrder(model: ModelName, g: StaticGraph, c: Candidate): Rel {
  if (model === "sc") return scOrder(g, c);
  if (model === "tso") return tsoOrder(g, c);
  // the LKMM orders less than the stores' visibility needs: show the stores and reads in an order
  // coherent with rf, co and fr too where one exists (there is none for a non-multicopy-atomic
  // execution such as IRIW's, then only co and fr, then only hb and pb)
  const { hb, pb } = lkmmOrders(g, c);
  const xb = hb.or(pb);
  for (const o of [xb.or(c.rf, c.co, c.fr), xb.or(c.co, c.fr)]) if (o.acyclic()) return o;
  return xb;
}
