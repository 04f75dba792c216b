/**
 * Loading scenario files: YAML (one scenario per document, several documents per stream) or
 * JSON, which YAML parses too, so both get positions. Every error found — syntax, schema, names —
 * is reported at once, each with its file, line and column, before anything runs.
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseAllDocuments, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import { SCENARIO_SCHEMA } from "./schema.js";
import { resolveNames, type NameProblem } from "./resolve.js";
import type { LoadedScenario, Position, Scenario } from "./types.js";

/** One problem in a scenario file. @public */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** A scenario file that cannot run: every problem found in it. @public */
export class ScenarioError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
    this.name = "ScenarioError";
    this.diagnostics = diagnostics;
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

let validator: ReturnType<Ajv2020["compile"]> | undefined;
function validate(): ReturnType<Ajv2020["compile"]> {
  validator ??= new Ajv2020({ allErrors: true, verbose: true, discriminator: true, strict: true, allowUnionTypes: true }).compile(SCENARIO_SCHEMA);
  return validator;
}

type Path = (string | number)[];

/** Finds where a path of the document stands: the node, or the key when `key` is asked. */
class Locator {
  constructor(private readonly doc: Document, private readonly lines: LineCounter, private readonly fallback: number) {}

  at(path: Path, key?: string): Position {
    let node: unknown = this.doc.contents;
    let offset = this.fallback;
    const visit = (n: unknown) => { const r = (n as Node | null)?.range; if (r) offset = r[0]; };
    const pairOf = (map: unknown, name: string | number) => isMap(map)
      ? map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(name)) : undefined;
    visit(node);
    for (const part of path) {
      if (isMap(node)) {
        const pair = pairOf(node, part);
        if (!pair) break;
        node = pair.value;
        visit(pair.value ?? pair.key);
      } else if (isSeq(node)) {
        node = node.items[Number(part)];
        if (!node) break;
        visit(node);
      } else break;
    }
    if (key !== undefined) { const pair = pairOf(node, key); if (pair) visit(pair.key); }
    return this.lines.linePos(offset);
  }
}

const pathOf = (pointer: string): Path =>
  pointer === "" ? [] : pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~")).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
const showPath = (p: Path) => p.reduce<string>((s, x) => (typeof x === "number" ? `${s}[${x}]` : s ? `${s}.${x}` : x), "") || "the scenario";
const show = (v: unknown) => (v === undefined ? "nothing" : JSON.stringify(v));

function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const p of path) v = v == null ? undefined : (v as Record<string | number, unknown>)[p];
  return v;
}

/** The closest of `names` to `word`, for "did you mean". */
function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const n of names) {
    const d = distance(word.toLowerCase(), n.toLowerCase());
    if (d < bestD) { best = n; bestD = d; }
  }
  return best;
}
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * Ajv's errors as a person reads them: one per place, the most specific first, "expected … found
 * …". A oneOf that failed reports its branches' errors, so only the deepest errors of a place
 * are kept.
 */
function schemaMessages(errors: readonly ErrorObject[], data: unknown): { path: Path; key?: string; message: string }[] {
  const out: { path: Path; key?: string; message: string }[] = [];
  const seen = new Set<string>();
  const byPlace = new Map<string, ErrorObject[]>();
  for (const e of bestBranches(errors)) {
    const k = e.instancePath;
    byPlace.set(k, [...(byPlace.get(k) ?? []), e]);
  }
  // a failed oneOf whose branches erred deeper down is explained by those errors
  const summary = (e: ErrorObject) => e.keyword === "oneOf" || e.keyword === "anyOf";
  const deeper = (p: string) => [...byPlace.keys()].some((q) => q !== p && q.startsWith(p + "/"));
  for (const [place, all] of byPlace) {
    const errs = deeper(place) ? all.filter((e) => !summary(e)) : all;
    const path = pathOf(place);
    const found = valueAt(data, path);
    for (const e of errs) {
      let message: string | undefined;
      let key: string | undefined;
      switch (e.keyword) {
        case "additionalProperties": {
          key = String(e.params.additionalProperty);
          const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
          const hint = closest(key, allowed);
          message = `unknown key "${key}" in ${showPath(path)}${hint ? ` (did you mean "${hint}"?)` : ""}; expected one of ${allowed.join(", ")}`;
          break;
        }
        case "required":
          message = `${showPath(path)} lacks "${String(e.params.missingProperty)}"`;
          break;
        case "discriminator": {
          const ops = (e.parentSchema as { oneOf: { properties: { op: { const: string } } }[] }).oneOf.map((b) => b.properties.op.const);
          const hint = typeof found === "object" && found ? closest(String((found as { op?: unknown }).op), ops) : undefined;
          key = "op";
          message = `${showPath(path)}: unknown op ${show((found as { op?: unknown })?.op)}${hint ? ` (did you mean "${hint}"?)` : ""}; expected one of ${ops.join(", ")}`;
          break;
        }
        case "propertyNames":
          continue; // reported with the name's own error below
        case "enum":
          if (path.length && e.propertyName !== undefined) {
            key = e.propertyName;
            const hint = closest(e.propertyName, e.params.allowedValues as string[]);
            message = `unknown name "${e.propertyName}" in ${showPath(path)}${hint ? ` (did you mean "${hint}"?)` : ""}`;
          } else {
            const allowed = (e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
            const hint = typeof found === "string" ? closest(found, (e.params.allowedValues as unknown[]).map(String)) : undefined;
            message = `${showPath(path)}: expected one of ${allowed.length > 12 ? allowed.slice(0, 12).join(", ") + ", …" : allowed.join(", ")}, found ${show(found)}${hint ? ` (did you mean "${hint}"?)` : ""}`;
          }
          break;
        case "minimum":
        case "maximum":
          message = `${showPath(path)}: expected a number ${String(e.params.comparison)} ${String(e.params.limit)}, found ${show(found)}`;
          break;
        default: {
          const expected = (e.parentSchema as { description?: string }).description;
          message = e.propertyName !== undefined
            ? `name "${e.propertyName}" in ${showPath(path)} ${e.message ?? "is invalid"}`
            : `${showPath(path)}: ${expected && (e.keyword === "oneOf" || e.keyword === "pattern" || e.keyword === "type") ? `expected ${expected}` : (e.message ?? "is invalid")}, found ${show(found)}`;
          if (e.propertyName !== undefined) key = e.propertyName;
        }
      }
      const text = message!;
      if (seen.has(place + "\0" + text)) continue;
      seen.add(place + "\0" + text);
      out.push({ path, ...(key !== undefined ? { key } : {}), message: text });
    }
  }
  return out;
}

/**
 * Of a failed oneOf, the branch the data meant: one with no error at the oneOf's own place (its
 * shape fits; something inside is wrong). Then only that branch's errors are kept. When no branch
 * fits, the oneOf's summary ("expected …") stands alone.
 */
function bestBranches(errors: readonly ErrorObject[]): ErrorObject[] {
  let kept = [...errors];
  for (const one of errors.filter((e) => e.keyword === "oneOf")) {
    const prefix = one.schemaPath + "/";
    const under = (e: ErrorObject) => e.instancePath === one.instancePath || e.instancePath.startsWith(one.instancePath + "/");
    const branchOf = (e: ErrorObject) => (e.schemaPath.startsWith(prefix) && under(e) ? Number(e.schemaPath.slice(prefix.length).split("/")[0]) : -1);
    const inBranches = kept.filter((e) => branchOf(e) >= 0);
    if (!inBranches.length) continue;
    const branches = new Set(inBranches.map(branchOf));
    const fitting = [...branches].filter((b) => !inBranches.some((e) => branchOf(e) === b && e.instancePath === one.instancePath));
    if (fitting.length === 1) kept = kept.filter((e) => e !== one && (branchOf(e) < 0 || branchOf(e) === fitting[0]));
    else kept = kept.filter((e) => branchOf(e) < 0);
  }
  return kept;
}

/** The name problems of data that may not satisfy the schema: what can be checked is. */
function namesOf(data: unknown): NameProblem[] {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return [];
  const d = data as Record<string, unknown>;
  const steps = Array.isArray(d.steps) ? d.steps.filter((x) => typeof x === "object" && x !== null && !Array.isArray(x)) : [];
  if (steps.length !== (Array.isArray(d.steps) ? d.steps.length : 0)) return []; // positions would shift
  try {
    return resolveNames({ ...d, steps } as unknown as Scenario);
  } catch {
    return []; // too malformed to say more than the schema did
  }
}

/** Parses and checks a file's text; throws ScenarioError with every problem. */
export function parseScenarios(file: string, text: string): LoadedScenario[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const diags: Diagnostic[] = [];
  const loaded: LoadedScenario[] = [];
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs) || list.length === 0 || list.every((d) => d.contents === null)) {
    throw new ScenarioError([{ file, line: 1, col: 1, message: "no scenario: the file is empty" }]);
  }
  list.forEach((doc, index) => {
    // after the first syntax error the parser's further errors are its own confusion: one is shown
    const problems = [...doc.errors.slice(0, 1), ...doc.warnings];
    for (const e of problems) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      const flowHint = /flow-seq-start/.test(e.message) ? " (inside { } or [ ], quote values with [ ] or , such as \"buf[2]\")" : "";
      diags.push({ file, line: pos.line, col: pos.col, message: `${e.code === "DUPLICATE_KEY" ? "duplicate key" : "syntax error"}: ${e.message.split("\n")[0]}${flowHint}` });
    }
    if (doc.errors.length) return;
    if (doc.contents === null) return;
    const loc = new Locator(doc, lines, doc.range[0]);
    const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
    const check = validate();
    const valid = check(data);
    const found: { pos: Position; message: string }[] = [];
    if (!valid) {
      for (const m of schemaMessages(check.errors ?? [], data)) found.push({ pos: m.key !== undefined ? loc.at(m.path, m.key) : loc.at(m.path), message: m.message });
    }
    // names are checked even when the schema is not satisfied, so that every problem shows at once
    // (a place the schema has already explained is not explained twice)
    const explained = new Set(found.map((f) => `${f.pos.line}:${f.pos.col}`));
    for (const p of namesOf(data)) {
      const pos = loc.at(p.path, p.key);
      if (!explained.has(`${pos.line}:${pos.col}`)) found.push({ pos, message: p.message });
    }
    for (const f of found) diags.push({ file, ...f.pos, message: f.message });
    if (found.length) return;
    const scenario = data as Scenario;
    const stepAt = scenario.steps.map((_, i) => loc.at(["steps", i]));
    loaded.push({ file, index, scenario, at: loc.at([]), stepAt });
  });
  if (diags.length) throw new ScenarioError(diags.sort((a, b) => a.line - b.line || a.col - b.col));
  return loaded;
}

/** Reads, parses and checks a scenario file. */
export function loadScenarioFile(file: string): LoadedScenario[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "EIO";
    throw new ScenarioError([{ file, line: 1, col: 1, message: `${code}: cannot read the file` }]);
  }
  return parseScenarios(file, text);
}
