/**
 * Sweep specs: a YAML or JSON file naming workloads (with parameter grids), sizes, strategies,
 * knob variants and seeds. Expanding one gives an ordered list of jobs, each with a stable id;
 * everything that runs a sweep — serially, over worker threads, or as shards under GNU parallel
 * or a Kubernetes Indexed Job — runs that list, so they all give the same rows in the same order.
 *
 * Order: workload, then its parameter points (the grid's last parameter varies fastest), size,
 * seed, variant, strategy. A shard K/N takes the jobs whose index i has i % N === K - 1: round
 * robin, so a workload much heavier than the rest spreads over every shard instead of landing
 * on one.
 *
 * Bad specs fail like scenario files: every problem at once, each as `file:line:col: error: …`.
 */
import { LineCounter, parseDocument } from "yaml";
import { Ajv2020 } from "ajv/dist/2020.js";
import { formatDiagnostic, Locator, type Diagnostic } from "../scenario/load.js";
import { STRATEGY_IDS, strategyInfo, type ThpEnabled } from "../kernel.js";
import { WORKLOADS, WORKLOAD_SIZES, workload as findWorkload, type WorkloadSize } from "../workloads/index.js";
import { closest } from "../util/closest.js";
import type { BenchJob } from "./run.js";

/** A knob variant: knobs and a THP mode on top of a strategy's defaults. */
export interface SweepVariant {
  readonly name: string;
  /** the strategies it applies to (default: every strategy of the sweep) */
  readonly strategies?: readonly string[];
  readonly knobs?: Readonly<Record<string, boolean>>;
  readonly thp?: ThpEnabled;
}

export interface SweepWorkload {
  readonly name: string;
  /** parameter grid: each parameter's values (a number is a one-value list) */
  readonly params?: Readonly<Record<string, number | readonly number[]>>;
}

export interface SweepSpec {
  readonly workloads: readonly (string | SweepWorkload)[];
  readonly sizes?: readonly WorkloadSize[];
  readonly strategies?: readonly string[];
  readonly variants?: readonly SweepVariant[];
  readonly seeds?: readonly number[];
  readonly oracle?: boolean;
}

/** A job of an expanded sweep: its place, its id, and what it runs. */
export interface SweepJob {
  readonly index: number;
  readonly id: string;
  readonly job: BenchJob;
}

const NAME = { type: "string", minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" } as const;
const NUMBERS = { anyOf: [{ type: "number" }, { type: "array", items: { type: "number" }, minItems: 1, maxItems: 1000 }] } as const;

/** The JSON Schema of sweep specs. @public */
export const SWEEP_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "cowsim bench sweep",
  type: "object",
  additionalProperties: false,
  required: ["workloads"],
  properties: {
    workloads: {
      type: "array", minItems: 1,
      items: {
        anyOf: [
          { type: "string" },
          {
            type: "object", additionalProperties: false, required: ["name"],
            properties: { name: { type: "string" }, params: { type: "object", additionalProperties: NUMBERS } },
          },
        ],
      },
    },
    sizes: { type: "array", minItems: 1, items: { enum: [...WORKLOAD_SIZES] } },
    strategies: { type: "array", minItems: 1, items: { type: "string" } },
    variants: {
      type: "array", minItems: 1,
      items: {
        type: "object", additionalProperties: false, required: ["name"],
        properties: {
          name: NAME,
          strategies: { type: "array", minItems: 1, items: { type: "string" } },
          knobs: { type: "object", additionalProperties: { type: "boolean" } },
          thp: { enum: ["always", "madvise", "never"] },
        },
      },
    },
    seeds: { type: "array", minItems: 1, maxItems: 10000, items: { type: "integer", minimum: 0, maximum: 2 ** 32 - 1 } },
    oracle: { type: "boolean" },
  },
} as const;

/** A sweep spec that cannot run: every problem found in it. */
export class SweepSpecError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
    this.name = "SweepSpecError";
  }
}

let validator: ReturnType<Ajv2020["compile"]> | undefined;
const validate = () => (validator ??= new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(SWEEP_SCHEMA));

type Path = (string | number)[];
const pathOf = (pointer: string): Path => (pointer === "" ? [] : pointer.slice(1).split("/").map((s) => (/^\d+$/.test(s) ? Number(s) : s)));

/** Parses and checks a spec's text; throws SweepSpecError with every problem. */
export function parseSweepSpec(file: string, text: string): SweepSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, logLevel: "error" });
  const diags: Diagnostic[] = [];
  for (const e of doc.errors.slice(0, 1)) {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    diags.push({ file, line: pos.line, col: pos.col, message: `syntax error: ${e.message.split("\n")[0]}` });
  }
  if (diags.length) throw new SweepSpecError(diags);
  const loc = new Locator(doc, lines, 0, text);
  const data = doc.toJS() as unknown;
  const at = (path: Path, message: string, key?: string) => diags.push({ file, ...loc.at(path, key), message });
  const check = validate();
  if (!check(data)) {
    const errors = check.errors ?? [];
    // a value that fits no branch of an anyOf is explained once, by the anyOf, not by each branch
    const anyOfAt = new Set(errors.filter((e) => e.keyword === "anyOf").map((e) => e.instancePath));
    for (const e of errors) {
      const path = pathOf(e.instancePath);
      const where = path.reduce<string>((w, x) => (typeof x === "number" ? `${w}[${x}]` : w ? `${w}.${x}` : x), "") || "the spec";
      if (e.keyword !== "anyOf" && anyOfAt.has(e.instancePath)) continue;
      if (e.keyword === "additionalProperties") {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        at(path, `unknown key "${extra}"${closest(extra, Object.keys(SWEEP_SCHEMA.properties)) ? ` (did you mean "${closest(extra, Object.keys(SWEEP_SCHEMA.properties))}"?)` : ""}`, extra);
      } else if (e.keyword === "anyOf" && path[0] === "workloads") {
        at(path, "a workload is a name, or { name, params: { parameter: value or [values] } }");
      } else if (e.keyword === "enum") {
        at(path, `${where} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")}`);
      } else if (e.keyword === "anyOf") {
        at(path, `${where} must be a number or a list of numbers`);
      } else {
        at(path, `${where} ${e.message ?? "is not valid"}`);
      }
    }
    if (diags.length === 0) at([], "the spec is not a sweep: it needs a list of workloads");
    throw new SweepSpecError(sortDiags(diags));
  }
  const spec = data as SweepSpec;
  checkNames(spec, at);
  if (diags.length) throw new SweepSpecError(sortDiags(diags));
  return spec;
}

const sortDiags = (d: Diagnostic[]) => d.sort((a, b) => a.line - b.line || a.col - b.col);

/** Names a schema cannot check: workloads, their parameters and ranges, strategies, knobs. */
function checkNames(spec: SweepSpec, at: (path: Path, message: string, key?: string) => void): void {
  const strategies = spec.strategies ?? STRATEGY_IDS;
  spec.strategies?.forEach((id, i) => {
    if (!strategyInfo(id)) at(["strategies", i], unknown("strategy", id, STRATEGY_IDS));
  });
  spec.workloads.forEach((entry, i) => {
    const name = typeof entry === "string" ? entry : entry.name;
    const w = findWorkload(name);
    const namePath: Path = typeof entry === "string" ? ["workloads", i] : ["workloads", i, "name"];
    if (!w) return at(namePath, unknown("workload", name, WORKLOADS.map((x) => x.name)));
    if (typeof entry === "string" || !entry.params) return;
    for (const [param, values] of Object.entries(entry.params)) {
      const p = w.params[param];
      if (!p) {
        at(["workloads", i, "params"], `workload ${w.name} has no parameter "${param}" (it has: ${Object.keys(w.params).join(", ")})`, param);
        continue;
      }
      const list = typeof values === "number" ? [values] : values;
      list.forEach((v, j) => {
        if (!Number.isInteger(v) || v < p.min || (p.max !== undefined && v > p.max)) {
          at(typeof values === "number" ? ["workloads", i, "params", param] : ["workloads", i, "params", param, j],
            `${w.name}: ${param} must be an integer from ${p.min} to ${p.max ?? "2^53 - 1"}, not ${v}`);
        }
      });
    }
  });
  const seen = new Set<string>();
  spec.variants?.forEach((v, i) => {
    if (seen.has(v.name)) at(["variants", i, "name"], `variant "${v.name}" is named twice`);
    seen.add(v.name);
    v.strategies?.forEach((id, j) => {
      if (!strategies.includes(id)) at(["variants", i, "strategies", j], `variant ${v.name}: strategy "${id}" is not one of the sweep's (${strategies.join(", ")})`);
    });
    for (const id of v.strategies ?? strategies) {
      const info = strategyInfo(id);
      if (!info) continue;
      for (const knob of Object.keys(v.knobs ?? {})) {
        if (!info.knobs.some((k) => k.name === knob)) {
          at(["variants", i, "knobs"], `variant ${v.name}: strategy ${id} has no knob "${knob}" (it has: ${info.knobs.map((k) => k.name).join(", ") || "none"}); name the strategies it is for`, knob);
        }
      }
    }
  });
}

function unknown(what: string, name: string, known: readonly string[]): string {
  const near = closest(name, known);
  return `unknown ${what} "${name}"${near ? ` (did you mean "${near}"?)` : ""} (known: ${known.join(", ")})`;
}

/** Every point of a parameter grid, the last parameter varying fastest. */
function gridPoints(params: Readonly<Record<string, number | readonly number[]>> | undefined): Record<string, number>[] {
  let points: Record<string, number>[] = [{}];
  for (const [name, values] of Object.entries(params ?? {})) {
    const list = typeof values === "number" ? [values] : values;
    points = points.flatMap((p) => list.map((v) => ({ ...p, [name]: v })));
  }
  return points;
}

/** A job's id: its index (so ids sort as the jobs do) and what it runs, readable in a job list. */
function jobId(index: number, job: BenchJob): string {
  const params = Object.entries(job.params ?? {}).map(([k, v]) => `,${k}=${v}`).join("");
  return `${String(index).padStart(6, "0")}:${job.workload}@${job.size}${params}:seed=${job.seed}:${job.strategy}${job.variant ? `+${job.variant}` : ""}`;
}

/** The jobs of a spec, in order. */
export function expandSweep(spec: SweepSpec): SweepJob[] {
  const out: SweepJob[] = [];
  const strategies = spec.strategies ?? STRATEGY_IDS;
  const variants: readonly (SweepVariant | null)[] = spec.variants ?? [null];
  for (const entry of spec.workloads) {
    const name = typeof entry === "string" ? entry : entry.name;
    for (const params of gridPoints(typeof entry === "string" ? undefined : entry.params)) {
      for (const size of spec.sizes ?? ["default"]) {
        for (const seed of spec.seeds ?? [1]) {
          for (const v of variants) {
            for (const strategy of strategies) {
              if (v?.strategies && !v.strategies.includes(strategy)) continue;
              const job: BenchJob = {
                workload: name, size, seed, strategy,
                ...(Object.keys(params).length ? { params } : {}),
                ...(v?.knobs ? { knobs: v.knobs } : {}),
                ...(v ? { variant: v.name } : {}),
                ...(v?.thp !== undefined ? { thp: v.thp } : {}),
                ...(spec.oracle === false ? { oracle: false } : {}),
              };
              out.push({ index: out.length, id: jobId(out.length, job), job });
            }
          }
        }
      }
    }
  }
  return out;
}

/** A shard "K/N" (1 ≤ K ≤ N), or null when the text is not one. */
export function parseShard(text: string): { k: number; n: number } | null {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) return null;
  const k = Number(m[1]);
  const n = Number(m[2]);
  return k >= 1 && n >= 1 && k <= n && n <= 100000 ? { k, n } : null;
}

/** The jobs of shard K of N: index i with i % N === K - 1. */
export function shardJobs(jobs: readonly SweepJob[], k: number, n: number): SweepJob[] {
  return jobs.filter((j) => j.index % n === k - 1);
}
