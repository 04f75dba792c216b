/**
 * The fuzzer behind `cowsim fuzz`: random operation sequences (src/fuzz/ops.ts) run on a fresh
 * kernel each, with every invariant, the oracle and the reference judge after every step.
 * A failure — a finding, a latent missed COW, a broken invariant, the two judges disagreeing, a
 * crash, something left after every process exited — is told apart from others by its
 * signature, shrunk by fast-check to the fewest steps that still fail with that signature,
 * and kept with the transcript that writes it as a scenario file. Known signatures stop
 * counting as failures, so the search goes on for new ones until the time is up.
 * @packageDocumentation
 */
import fc from "fast-check";
import { createKernel, type Kernel, type KernelOptions } from "../kernel.js";
import { CowsimError } from "../errno.js";
import { ReferenceJudge } from "../kernel.js";
import type { CowStrategy, StrategyId } from "../kernel.js";
import { opsArb, World, type Op, type OpSet, type ScenarioStep } from "./ops.js";

/** What a failure is. @public */
export type FuzzFailureKind = "finding" | "latent-missed-cow" | "invariant" | "judges" | "crash" | "teardown";

/** One failure, shrunk. @public */
export interface FuzzFailure {
  /** Tells failures apart: the kind, what it was, and the step it showed at (e.g. "missed-cow@pipe_read"). */
  readonly signature: string;
  readonly kind: FuzzFailureKind;
  readonly message: string;
  /** The shrunk sequence, up to the failing step. */
  readonly ops: readonly Op[];
  /** The calls it made, as scenario steps (the failing one last). */
  readonly steps: readonly ScenarioStep[];
  /** The oracle's findings by kind, in order, when the failing step ended. */
  readonly findings: readonly string[];
  readonly latentMissedCows: number;
  /** The fast-check seed of the search that found it. */
  readonly seed: number;
  /** Steps in the sequence first found, before shrinking. */
  readonly foundSteps: number;
  /** Seconds from the start of the search to this failure, shrunk. */
  readonly foundAfter: number;
}

/** The kernel a sequence runs on: small, so that exhaustion is reachable. @public */
export const FUZZ_KERNEL: Readonly<KernelOptions> = { memory: "2M", swap: "2M", maxProcesses: 16, build: "debug" };

/** Options of {@link fuzz}. @public */
export interface FuzzOptions {
  readonly strategy?: StrategyId | CowStrategy;
  readonly knobs?: Readonly<Record<string, boolean>>;
  /** How long to search, in seconds (default 60). */
  readonly seconds?: number;
  /** Or how many sequences to try (whichever ends first). */
  readonly sequences?: number;
  /** Seed of the search (default 1): the same seed and budget find the same failures. */
  readonly seed?: number;
  /** Which ops (default "everything"). */
  readonly ops?: OpSet;
  /** Longest sequence (default 80 steps). */
  readonly maxSteps?: number;
  /** Kernel options besides the strategy (default {@link FUZZ_KERNEL}). */
  readonly kernel?: Readonly<Omit<KernelOptions, "strategy" | "knobs">>;
  /** Sequences to try before the random ones (a corpus, or a reproducer to shrink). */
  readonly examples?: readonly (readonly Op[])[];
  /** Stop once a failure with this signature is found (e.g. "missed-cow@pipe_read"). */
  readonly stopOn?: string;
  /** Called about four times a second, and once at the end. */
  readonly onProgress?: (p: FuzzProgress) => void;
}

/** Where a search stands. @public */
export interface FuzzProgress {
  readonly elapsed: number;
  readonly seconds: number;
  readonly sequences: number;
  readonly steps: number;
  readonly failures: number;
}

/** What a search did and found. @public */
export interface FuzzReport {
  readonly strategy: string;
  readonly seed: number;
  readonly elapsed: number;
  readonly sequences: number;
  readonly steps: number;
  readonly stepsPerSecond: number;
  readonly failures: readonly FuzzFailure[];
}

/** The result of one sequence: how far it ran, and how it failed, if it did. */
interface Outcome {
  readonly steps: number;
  readonly failure: Omit<FuzzFailure, "ops" | "seed" | "foundSteps" | "foundAfter"> & { readonly step: number } | null;
}

const digits = (s: string) => s.replace(/0x[0-9a-f]+/g, "ADDR").replace(/\d+/g, "N");

/**
 * Runs one sequence on a fresh kernel and judges it after every step. A finding or a latent
 * missed COW whose signature is `known` is passed over and the sequence goes on (later steps
 * may fail in a new way); a broken invariant, a crash or the judges disagreeing end it.
 */
export function runSequence(ops: readonly Op[], strategy: StrategyId | CowStrategy, knobs: Readonly<Record<string, boolean>> | undefined,
  kernel: Readonly<Omit<KernelOptions, "strategy" | "knobs">> = FUZZ_KERNEL, known: ReadonlySet<string> = new Set()): Outcome {
  // no journal: findings need no explanation here, and its rings cost more than a whole sequence
  const k = createKernel({ ...FUZZ_KERNEL, ...kernel, strategy, ...(knobs ? { knobs } : {}), checkInvariants: false, explain: false });
  const judge = new ReferenceJudge(k);
  const w = new World(k);
  let seenFindings = 0;
  const seenLatent = new Set<string>();
  const fail = (step: number, kind: FuzzFailureKind, what: string, message: string): Outcome => ({
    steps: step,
    failure: {
      signature: `${what}@${(w.transcript.at(-1)?.op ?? "start")}`, kind, message, step, steps: [...w.transcript],
      findings: k.findings.map((f) => f.kind), latentMissedCows: k.latentMissedCows().length,
    },
  });
  for (let i = 0; i < ops.length; i++) {
    const step = i + 1;
    try {
      w.apply(ops[i]!, step);
    } catch (e) {
      const err = e as Error;
      return fail(step, "crash", `crash:${err.name}:${digits(err.message.split("\n")[0]!).slice(0, 80)}`, err.stack ?? String(e));
    }
    const v = k.checkInvariants();
    if (v.length) return fail(step, "invariant", `invariant:${v[0]!.invariant}`, v.map((x) => `${x.invariant}: ${x.detail}`).join("\n"));
    const disagree = judgesDisagree(k, judge);
    if (disagree) return fail(step, "judges", "judges", disagree);
    const op = w.transcript.at(-1)?.op ?? "start";
    for (; seenFindings < k.findings.length; seenFindings++) {
      const f = k.findings[seenFindings]!;
      if (!known.has(`${f.kind}@${op}`)) return fail(step, "finding", f.kind, f.summary);
    }
    for (const l of k.latentMissedCows()) {
      const key = `${l.pid}:${l.address}:${l.holds}`;
      if (seenLatent.has(key)) continue;
      seenLatent.add(key);
      if (!known.has(`latent-missed-cow@${op}`)) {
        return fail(step, "latent-missed-cow", "latent-missed-cow", `pid ${l.pid} maps pfn ${l.pfn} at 0x${l.address.toString(16)} holding ${l.holds}, but must see ${l.expected}`);
      }
    }
  }
  try {
    w.teardown();
  } catch (e) {
    if (!(e instanceof CowsimError)) return fail(ops.length, "crash", `crash:teardown:${digits((e as Error).message).slice(0, 80)}`, String(e));
  }
  const v = k.checkInvariants();
  if (v.length) return fail(ops.length, "teardown", `teardown:${v[0]!.invariant}`, v.map((x) => `${x.invariant}: ${x.detail}`).join("\n"));
  // an idle swap-cache folio is reclaim's to free; a poisoned frame is lost for good, as in Linux
  const held = k.heldFrames().filter((f) => !f.holders.every((h) => (h.kind === "swap-cache" && h.swapCount === 0) || h.kind === "hwpoison"));
  if (held.length) return fail(ops.length, "teardown", "teardown:frames-left", `${held.length} frames held after every process exited, e.g. pfn ${held[0]!.pfn}`);
  return { steps: ops.length, failure: null };
}

/** Drops one step at a time, as long as the sequence still fails (and time is left). */
function dropSteps(ops: readonly Op[], stillFails: (ops: readonly Op[]) => boolean, deadline: number): Op[] {
  let cur = [...ops];
  for (let changed = true; changed && Date.now() < deadline;) {
    changed = false;
    for (let i = cur.length - 1; i >= 0 && Date.now() < deadline; i--) {
      const shorter = [...cur.slice(0, i), ...cur.slice(i + 1)];
      if (stillFails(shorter)) { cur = shorter; changed = true; }
    }
  }
  return cur;
}

function judgesDisagree(k: Kernel, judge: ReferenceJudge): string | null {
  const c = k.counters();
  const oracle = [c.necessaryCow, c.unnecessaryCow, c.wrongCow];
  const reference = [judge.necessary, judge.unnecessary, judge.wrong];
  if (oracle.join() === reference.join()) return null;
  return `the oracle and the reference judge disagree on a copy: necessary/unnecessary/wrong ${oracle.join("/")} vs ${reference.join("/")}` +
    ` (the reference's last verdict: ${JSON.stringify(judge.verdicts.at(-1))})`;
}

/**
 * Searches for failures until the time or the sequences run out; returns every distinct
 * failure, shrunk. Deterministic for a given seed and sequence budget (a time budget cuts the
 * search where the machine's speed puts it).
 */
export function fuzz(options: FuzzOptions = {}): FuzzReport {
  const strategy = options.strategy ?? "anon-exclusive";
  const seconds = options.seconds ?? 60;
  const seed = options.seed ?? 1;
  const arb = opsArb(options.ops ?? "everything", options.maxSteps ?? 80);
  // a bad strategy, knob or kernel option fails here, with its CowsimError, not in the search
  createKernel({ ...FUZZ_KERNEL, ...options.kernel, strategy, ...(options.knobs ? { knobs: options.knobs } : {}), oracle: false });
  const start = Date.now();
  const deadline = start + seconds * 1000;
  const failures: FuzzFailure[] = [];
  const known = new Set<string>();
  let sequences = 0;
  let steps = 0;
  let lastReport = 0;
  const progress = (force = false) => {
    const now = Date.now();
    if (!options.onProgress || (!force && now - lastReport < 250)) return;
    lastReport = now;
    options.onProgress({ elapsed: (now - start) / 1000, seconds, sequences, steps, failures: failures.length });
  };
  const budgetLeft = () => Date.now() < deadline && (options.sequences === undefined || sequences < options.sequences);

  for (let round = 0; budgetLeft(); round++) {
    let target: string | null = null;
    let found: Outcome["failure"] = null;
    let foundSteps = 0;
    const property = fc.property(arb, (ops) => {
      if (target === null && !budgetLeft()) return true;
      if (target === null) sequences++;
      const out = runSequence(ops, strategy, options.knobs, options.kernel, known);
      steps += out.steps;
      progress();
      const sig = out.failure?.signature;
      if (!sig || known.has(sig)) return true;
      if (target === null) {
        target = sig;
        foundSteps = ops.length;
      }
      if (sig !== target) return true;
      found = out.failure;
      return false;
    });
    const details = fc.check(property, {
      seed: seed + round,
      numRuns: options.sequences !== undefined ? Math.max(1, options.sequences - sequences) : 1_000_000,
      interruptAfterTimeLimit: Math.max(1, deadline - Date.now()),
      ...(round === 0 && options.examples ? { examples: options.examples.map((ops) => [[...ops]] as [Op[]]) } : {}),
    });
    if (!details.failed || !details.counterexample || found === null) break;
    // fast-check shrinks values and drops runs of steps; dropping single steps until none can go
    // finishes the job. Then the last run gives the transcript, cut at the step that failed.
    const sig = (target as string | null)!;
    const stillFails = (ops: readonly Op[]) => runSequence(ops, strategy, options.knobs, options.kernel, known).failure?.signature === sig;
    const ops = dropSteps(details.counterexample[0].slice(0, (found as NonNullable<Outcome["failure"]>).step), stillFails, deadline);
    const again = runSequence(ops, strategy, options.knobs, options.kernel, known).failure;
    const f = again && again.signature === sig ? again : found as NonNullable<Outcome["failure"]>;
    known.add(f.signature);
    failures.push({ ...f, ops: ops.slice(0, f.step), seed: seed + round, foundSteps, foundAfter: (Date.now() - start) / 1000 });
    if (options.stopOn !== undefined && f.signature === options.stopOn) break;
  }
  progress(true);
  const elapsed = (Date.now() - start) / 1000;
  return {
    strategy: typeof strategy === "string" ? strategy : strategy.id, seed, elapsed, sequences, steps,
    stepsPerSecond: elapsed > 0 ? steps / elapsed : 0, failures,
  };
}
