/**
 * Scenario matrices: one description of test cases × setups × sizes (tools/testing/selftests/mm/
 * cow.c's run_with_thp() over its anon_test_cases[]) that the loader expands into ordinary
 * scenarios named `<matrix>[<case>/<setup>/<size>]`. A case and a setup are step templates; the
 * expected outcome of each (case, setup, size, run) comes from the case's rules — the first rule
 * whose conditions hold — so that what the kernels do is stated once per reason, not once per
 * cell. A rule may record that the model differs from the kernel (`model`): the run then
 * expects the model's outcome, and the difference is shown, not hidden.
 */
import { counters, findingKinds, reference } from "./schema.js";
import { runsOf } from "./resolve.js";
import { parseSize } from "../util/size.js";
import { PAGE_SIZE } from "../kernel.js";
import type { Outcome, Scenario, Step } from "./types.js";

type Path = (string | number)[];

/** The place of one expanded scenario in its matrix. @public */
export interface MatrixCell {
  readonly matrix: string;
  readonly case: string;
  readonly setup: string;
  readonly size: string;
  /** Runs whose expectation is the model's, not the kernel's: why they differ. */
  readonly known: Readonly<Record<string, string>>;
}

/** The name of an expanded scenario: `cow-thp[basic-fork/pmd-swapout/2M]`. @public */
export const cellName = (c: Pick<MatrixCell, "matrix" | "case" | "setup" | "size">): string => `${c.matrix}[${c.case}/${c.setup}/${c.size}]`;

/** One rule of a case's expectations; every condition given must hold. */
export interface MatrixRule {
  readonly strategies?: readonly string[];
  readonly setups?: readonly string[];
  readonly sizes?: readonly string[];
  readonly facts?: Readonly<Record<string, boolean>>;
  readonly findings: readonly string[];
  readonly counters?: Readonly<Record<string, number>>;
  readonly why?: string;
  readonly model?: { readonly findings: readonly string[]; readonly why: string };
}

export interface MatrixSetup {
  readonly name: string;
  readonly sizes?: readonly string[];
  readonly facts?: Readonly<Record<string, boolean>>;
  /** Pages of the range the case tests, from the start of `mem` (default: the whole THP). */
  readonly tested?: number | string;
  readonly steps: readonly Step[];
}

export interface MatrixCase {
  readonly name: string;
  readonly reference?: readonly Scenario["reference"][number][];
  readonly steps: readonly Step[];
  readonly expect: readonly MatrixRule[];
}

/** A matrix description as its file states it. @public */
export interface MatrixDescription {
  readonly matrix: string;
  readonly name: string;
  readonly description?: string;
  readonly reference: Scenario["reference"];
  readonly kernel?: Scenario["kernel"];
  readonly processes?: readonly string[];
  readonly sizes: readonly string[];
  /** The sizes `cowsim check` expands unless asked for all. */
  readonly checkSizes?: readonly string[];
  readonly setups: Readonly<Record<string, MatrixSetup>>;
  readonly cases: Readonly<Record<string, MatrixCase>>;
  /** Cases of the original the model cannot run, and why. */
  readonly cannot?: Readonly<Record<string, string>>;
}

const id = { type: "string", pattern: "^[a-z0-9][a-z0-9-]*$", description: "a name of lowercase letters, digits and dashes" };
const names = { type: "array", items: { type: "string" }, minItems: 1 };
const stepTemplate = { type: "object", required: ["op"], properties: { op: { type: "string" } } };
const rule = {
  type: "object", additionalProperties: false, required: ["findings"],
  properties: {
    strategies: names, setups: names, sizes: names,
    facts: { type: "object", additionalProperties: { type: "boolean" } },
    findings: { type: "array", items: findingKinds, description: "the kernel's findings" },
    counters,
    why: { type: "string" },
    model: {
      type: "object", additionalProperties: false, required: ["findings", "why"],
      properties: { findings: { type: "array", items: findingKinds }, why: { type: "string", minLength: 1 } },
      description: "where the model differs from the kernel: its findings, and why",
    },
  },
};

/** The JSON Schema of a matrix description (a document with a `matrix` key). @public */
export const MATRIX_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://github.com/cowsim/cowsim/matrix.schema.json",
  title: "cowsim scenario matrix",
  type: "object",
  required: ["matrix", "name", "reference", "sizes", "setups", "cases"],
  additionalProperties: false,
  properties: {
    matrix: id,
    name: { type: "string", minLength: 1, description: "the scenarios' name; {case}, {setup} and {size} are filled in" },
    description: { type: "string" },
    reference: { type: "array", items: reference, minItems: 1 },
    kernel: { type: "object", description: "the kernel section of every scenario (a template)" },
    processes: { type: "array", items: { type: "string" }, minItems: 1 },
    sizes: { type: "array", items: { type: "string", pattern: "^[0-9]+[KM]$" }, minItems: 1, uniqueItems: true },
    checkSizes: { type: "array", items: { type: "string" }, minItems: 1, uniqueItems: true, description: "the sizes cowsim check runs without --all-sizes" },
    setups: {
      type: "object", propertyNames: id, minProperties: 1,
      additionalProperties: {
        type: "object", additionalProperties: false, required: ["name", "steps"],
        properties: {
          name: { type: "string", minLength: 1 },
          sizes: { type: "array", items: { type: "string" }, minItems: 1 },
          facts: { type: "object", additionalProperties: { type: "boolean" } },
          tested: { oneOf: [{ type: "integer", minimum: 1 }, { type: "string" }], description: "pages the case tests, e.g. \"{half}\"" },
          steps: { type: "array", items: stepTemplate, minItems: 1 },
        },
      },
    },
    cases: {
      type: "object", propertyNames: id, minProperties: 1,
      additionalProperties: {
        type: "object", additionalProperties: false, required: ["name", "steps", "expect"],
        properties: {
          name: { type: "string", minLength: 1 },
          reference: { type: "array", items: reference },
          steps: { type: "array", items: stepTemplate, minItems: 1 },
          expect: { type: "array", items: rule, minItems: 1, description: "rules, the first that holds wins" },
        },
      },
    },
    cannot: { type: "object", additionalProperties: { type: "string", minLength: 1 }, description: "cases the model cannot run, and why" },
  },
} as const;

/** Is this document a matrix description rather than a scenario? */
export const isMatrix = (data: unknown): boolean => typeof data === "object" && data !== null && !Array.isArray(data) && "matrix" in data;

/** A problem of a description, at a path of it. */
export interface MatrixProblem {
  readonly path: Path;
  readonly message: string;
}

/** One scenario of the matrix, with the places of the description it comes from. */
export interface Expansion {
  readonly scenario: Scenario;
  readonly cell: MatrixCell;
  /** Where each of the scenario's steps stands in the description. */
  readonly stepPaths: readonly Path[];
  readonly casePath: Path;
}

/** Fills `{var}` in every string and key; a string that is only `{var}` of a number becomes it. */
function fill(v: unknown, vars: Readonly<Record<string, string | number>>, path: Path, problems: MatrixProblem[]): unknown {
  const text = (s: string, at: Path): string | number => {
    const whole = /^\{([a-z]+)\}$/.exec(s);
    if (whole && typeof vars[whole[1]!] === "number") return vars[whole[1]!]!;
    return s.replace(/\{([a-z]+)\}/g, (m, name: string) => {
      if (vars[name] !== undefined) return String(vars[name]);
      problems.push({ path: at, message: `unknown template variable ${m}; the variables are ${Object.keys(vars).map((k) => `{${k}}`).join(", ")}` });
      return m;
    });
  };
  if (typeof v === "string") return text(v, path);
  if (Array.isArray(v)) return v.map((x, i) => fill(x, vars, [...path, i], problems));
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [String(text(k, path)), fill(x, vars, [...path, k], problems)]));
  }
  return v;
}

const holds = (r: MatrixRule, run: string, setup: string, size: string, facts: Readonly<Record<string, boolean>>): boolean =>
  (!r.strategies || r.strategies.includes(run)) && (!r.setups || r.setups.includes(setup)) && (!r.sizes || r.sizes.includes(size)) &&
  Object.entries(r.facts ?? {}).every(([f, want]) => (facts[f] ?? false) === want);

/**
 * The scenarios of a (schema-valid) description: every case × every setup × each size the
 * setup runs at (its `sizes`, else the matrix's), in the description's order. `only` limits the
 * sizes expanded: to a list, or to the description's `checkSizes` (what cowsim check runs by default). Problems are the description's: an unknown template
 * variable, a size or setup a rule or setup names that does not exist, a run no rule covers.
 */
export function expandMatrix(m: MatrixDescription, only?: "check" | readonly string[]): { expansions: Expansion[]; problems: MatrixProblem[] } {
  const problems: MatrixProblem[] = [];
  const expansions: Expansion[] = [];
  (m.checkSizes ?? []).forEach((z, i) => { if (!m.sizes.includes(z)) problems.push({ path: ["checkSizes", i], message: `size "${z}" is not one of the matrix's sizes (${m.sizes.join(", ")})` }); });
  const sizes = only === "check" ? m.checkSizes : only;
  const setupIds = Object.keys(m.setups);
  for (const [sid, s] of Object.entries(m.setups)) {
    (s.sizes ?? []).forEach((z, i) => { if (!m.sizes.includes(z)) problems.push({ path: ["setups", sid, "sizes", i], message: `size "${z}" is not one of the matrix's sizes (${m.sizes.join(", ")})` }); });
  }
  for (const [cid, c] of Object.entries(m.cases)) {
    c.expect.forEach((r, i) => {
      (r.setups ?? []).forEach((x, j) => { if (!setupIds.includes(x)) problems.push({ path: ["cases", cid, "expect", i, "setups", j], message: `no setup "${x}"; the setups are ${setupIds.join(", ")}` }); });
      (r.sizes ?? []).forEach((x, j) => { if (!m.sizes.includes(x)) problems.push({ path: ["cases", cid, "expect", i, "sizes", j], message: `no size "${x}"; the sizes are ${m.sizes.join(", ")}` }); });
    });
  }
  const base: Omit<Scenario, "name" | "steps"> = { reference: m.reference };
  const runs = runsOf({ ...base, name: m.name, steps: [] } as Scenario).map((r) => r.name);
  for (const [cid, c] of Object.entries(m.cases)) {
    for (const [sid, s] of Object.entries(m.setups)) {
      for (const size of s.sizes ?? m.sizes) {
        if (sizes && !sizes.includes(size)) continue;
        let bytes: number;
        try {
          bytes = parseSize("size", size);
        } catch {
          continue; // the schema's pattern has said so
        }
        const pages = bytes / PAGE_SIZE;
        const vars: Record<string, string | number> = { size, bytes, halfbytes: bytes / 2, pages, half: pages / 2, last: pages - 1, case: c.name, setup: s.name };
        const tested = fill(s.tested ?? pages, vars, ["setups", sid, "tested"], problems);
        vars.tested = typeof tested === "number" ? tested : pages;
        const steps = [
          ...(fill(s.steps, vars, ["setups", sid, "steps"], problems) as Step[]),
          ...(fill(c.steps, vars, ["cases", cid, "steps"], problems) as Step[]),
        ];
        const stepPaths: Path[] = [...s.steps.map((_, i) => ["setups", sid, "steps", i]), ...c.steps.map((_, i) => ["cases", cid, "steps", i])];
        const expect: Record<string, Outcome> = {};
        const known: Record<string, string> = {};
        for (const run of runs) {
          const r = c.expect.find((x) => holds(x, run, sid, size, s.facts ?? {}));
          if (!r) {
            problems.push({ path: ["cases", cid, "expect"], message: `no rule gives run "${run}" of setup "${sid}" at ${size} an outcome; end the rules with one without conditions` });
            continue;
          }
          expect[run] = { findings: r.model?.findings ?? r.findings, invariants: true, ...(r.counters ? { counters: r.counters } : {}) };
          if (r.model) known[run] = `${r.model.why} (the kernel: ${r.findings.length ? r.findings.join(", ") : "no finding"})`;
        }
        const scenario: Scenario = {
          name: String(fill(m.name, vars, ["name"], problems)),
          ...(m.description !== undefined ? { description: m.description } : {}),
          reference: [...(c.reference ?? []), ...m.reference],
          ...(m.kernel ? { kernel: fill(m.kernel, vars, ["kernel"], problems) as Scenario["kernel"] } : {}),
          ...(m.processes ? { processes: m.processes } : {}),
          steps,
          expect,
        };
        expansions.push({ scenario, cell: { matrix: m.matrix, case: cid, setup: sid, size, known }, stepPaths, casePath: ["cases", cid] });
      }
    }
  }
  // a template problem repeats in every cell: say it once
  const seen = new Set<string>();
  return { expansions, problems: problems.filter((p) => { const k = JSON.stringify(p); return seen.has(k) ? false : (seen.add(k), true); }) };
}
