/**
 * herd7's result block, so that people and tools that read herd7's output read the explorer's:
 *
 *   Test NAME Allowed
 *   States N
 *   <one line per final state>
 *   Ok | No
 *   Witnesses
 *   Positive: P Negative: Q
 *   Condition exists (…)
 *   Observation NAME Always|Sometimes|Never P Q
 *   Time NAME 0.01
 *
 * One block per model, each preceded by `Model NAME` (herd7 runs one model per invocation).
 * Positive/Negative count executions, as herd7's do. herd7's `Hash=` line (a digest of its own
 * normalised test) is left out. A witness execution follows each block where there is one.
 */
import type { Event, ExploreResult, ModelResult, Witness } from "./explore.js";
import { MODEL_TITLE } from "./models.js";
import type { Program } from "./ir.js";

/** How formatHerd() prints. */
export interface FormatOptions {
  /** Print the Time line (default true; tests leave it out for byte-stable output). */
  readonly time?: boolean;
  readonly witness?: boolean;
}

/** herd7's result block for each model of `r`, and a witness where the condition's state is reachable. */
export function formatHerd(r: ExploreResult, opts: FormatOptions = {}): string {
  return r.models.map((m) => formatModel(r, m, opts)).join("\n");
}

function formatModel(r: ExploreResult, m: ModelResult, opts: FormatOptions): string {
  const p = r.program;
  const q = p.condition.quant;
  const lines = [
    `Model ${MODEL_TITLE[m.model]}`,
    `Test ${p.name} ${q === "forall" ? "Required" : "Allowed"}`,
    `States ${m.states.length}`,
    ...m.states.map((s) => s.state),
    m.ok ? "Ok" : "No",
    "Witnesses",
    `Positive: ${m.positive} Negative: ${m.negative}`,
    `Condition ${q} ${p.condition.text}`,
    `Observation ${p.name} ${m.observation} ${m.positive} ${m.negative}`,
  ];
  if (opts.time ?? true) lines.push(`Time ${p.name} ${r.seconds.toFixed(2)}`);
  if ((opts.witness ?? true) && m.witness) lines.push(...formatWitness(p, m, m.witness));
  return lines.join("\n") + "\n";
}

/** Where an event came from: its step label, or its line. */
export function eventName(e: Event): string {
  if (e.tid < 0) return `init`;
  return e.label ?? `line ${e.line}`;
}

function access(e: Event): string {
  if (e.kind === "F") return `F ${e.fence}`;
  return `${e.kind} ${e.loc}=${e.val}`;
}

function source(p: Program, line: number): string {
  return (p.lines[line - 1] ?? "").replace(/\/\/.*$/, "").trim();
}

function formatWitness(p: Program, m: ModelResult, w: Witness): string[] {
  const what = p.condition.quant === "forall" ? "a final state that fails the condition" : "the condition's final state";
  const out = [`Witness ${MODEL_TITLE[m.model]}: ${what}, ${w.state} — one order the model allows:`];
  let n = 1;
  let lastLine = -1, lastTid = -2;
  for (const s of w.steps) {
    const e = s.event;
    // the halves of one RMW and the fences a fully ordered RMW implies print once, on one line
    const sameInsn = e.tid === lastTid && e.line === lastLine && e.line > 0;
    lastLine = e.line; lastTid = e.tid;
    const from = e.kind === "R" ? (s.from ? ` (from P${s.from.tid} ${eventName(s.from)})` : " (initial value)") : "";
    const ahead = s.ahead.length > 0 ? `  — before ${[...new Set(s.ahead.map(eventName))].join(", ")}` : "";
    const line = `${access(e)}${from}${ahead}`;
    if (sameInsn) { out[out.length - 1] += `; ${line}`; continue; }
    out.push(`  ${String(n++).padStart(2)}. P${e.tid} ${(e.label ?? "").padEnd(4)} ${source(p, e.line).padEnd(34)} ${line}`);
  }
  for (const [loc, ws] of w.co) {
    if (ws.length > 1) out.push(`  co ${loc}: ${ws.map((e) => (e.tid < 0 ? `init=${e.val}` : `P${e.tid} ${eventName(e)}=${e.val}`)).join(" -> ")}`);
  }
  return out;
}

/** The result as JSON (a plain object; `JSON.stringify` it). */
export function resultJson(r: ExploreResult): object {
  const p = r.program;
  return {
    test: p.name,
    file: p.file,
    condition: `${p.condition.quant} ${p.condition.text}`,
    ...(p.expected ? { expected: p.expected } : {}),
    candidates: r.candidates,
    models: Object.fromEntries(r.models.map((m) => [m.model, {
      title: MODEL_TITLE[m.model],
      states: m.states.map((s) => ({ state: s.state, executions: s.count, holds: s.holds })),
      ok: m.ok,
      positive: m.positive,
      negative: m.negative,
      observation: m.observation,
      witness: m.witness === null ? null : {
        state: m.witness.state,
        steps: m.witness.steps.map((s) => ({
          thread: s.tid, step: s.event.label ?? null, line: s.event.line, access: access(s.event),
          ...(s.event.kind === "R" ? { from: s.from ? { thread: s.from.tid, step: eventName(s.from) } : "init" } : {}),
          ...(s.ahead.length ? { before: s.ahead.map(eventName) } : {}),
        })),
      },
    }])),
  };
}
