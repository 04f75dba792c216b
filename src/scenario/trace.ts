/**
 * The event stream of scenario runs in the Chrome trace-event format (the JSON Object Format),
 * which Perfetto and chrome://tracing open. Time is logical — one microsecond per kernel
 * decision — so the same scenario gives the same trace, bit for bit. Each run is a trace
 * process, each simulated process a thread; a step is a slice, the kernel functions it ran are
 * slices inside it, findings are instant events, and the COW counters are a counter track.
 */
import type { ScenarioResult } from "./run.js";

/** One trace event (the fields the format defines that cowsim uses). @public */
export interface TraceEvent {
  readonly name: string;
  readonly ph: "X" | "i" | "C" | "M";
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly cat?: string;
  readonly s?: "t" | "p" | "g";
  readonly args?: Readonly<Record<string, unknown>>;
}

/** A trace file's contents. @public */
export interface ChromeTrace {
  readonly traceEvents: readonly TraceEvent[];
  readonly displayTimeUnit: "ns" | "ms";
  readonly otherData: Readonly<Record<string, string>>;
}

const COUNTERS = ["copies", "reuses", "missedCow", "unnecessaryCow", "wrongCow"] as const;

/** The trace of scenario results run with `trace: true`. @public */
export function chromeTrace(results: readonly ScenarioResult[]): ChromeTrace {
  const ev: TraceEvent[] = [];
  let tracePid = 0;
  for (const r of results) {
    for (const run of r.runs) {
      const pid = ++tracePid;
      ev.push({ name: "process_name", ph: "M", pid, tid: 0, args: { name: `${r.name} [${run.run}]` } });
      ev.push({ name: "process_sort_index", ph: "M", pid, tid: 0, args: { sort_index: pid } });
      ev.push({ name: "thread_name", ph: "M", pid, tid: 0, args: { name: "kernel and devices" } });
      for (const [simPid, name] of Object.entries(run.processNames)) {
        ev.push({ name: "thread_name", ph: "M", pid, tid: Number(simPid), args: { name: `${name} (pid ${simPid})` } });
      }
      let ts = 0;
      for (const step of run.steps) {
        const entries = step.entries ?? [];
        const tid = entries[0]?.pid ?? step.pid ?? 0;
        const dur = Math.max(1, entries.length);
        ev.push({
          name: step.text, cat: "step", ph: "X", pid, tid, ts, dur,
          args: { step: step.index + 1, line: step.line, ...(step.value !== undefined ? { value: step.value } : {}), ...(step.error !== undefined ? { error: step.error } : {}) },
        });
        entries.forEach((e, j) => ev.push({ name: e.fn, cat: "kernel", ph: "X", pid, tid, ts: ts + j, dur: 1, args: { what: e.what } }));
        for (const f of run.findings) {
          if (f.scenarioStep === step.index) {
            ev.push({ name: f.kind, cat: "finding", ph: "i", s: "p", pid, tid, ts: ts + dur - 1, args: { summary: f.summary, pid: f.pid, address: "0x" + f.address.toString(16) } });
          }
        }
        if (step.counters) {
          ev.push({ name: "COW", cat: "counters", ph: "C", pid, tid: 0, ts: ts + dur, args: Object.fromEntries(COUNTERS.map((c) => [c, step.counters![c] ?? 0])) });
        }
        ts += dur + 1;
      }
    }
  }
  return { traceEvents: ev, displayTimeUnit: "ns", otherData: { producer: "cowsim", time: "logical: 1 µs per kernel decision" } };
}
