/**
 * Loading scenario files: YAML (one scenario per document, several documents per stream) or
 * JSON, which YAML parses too, so both get positions. Every error found — the file's bytes,
 * syntax, aliases and nesting, schema, names, kernel options — is reported at once, each with its
 * file, line and column, before anything runs. Whatever the input, the loader throws nothing but
 * a ScenarioError: a file is data, and no data may crash it.
 */
import { LineCounter, parseAllDocuments, isAlias, isMap, isSeq, isPair, isScalar, type Document, type Node } from "yaml";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import { SCENARIO_SCHEMA, MAX_PAGES } from "./schema.js";
import { kernelOptionsOf, resolveNames, type NameProblem } from "./resolve.js";
import { validateKernelOptions } from "../kernel.js";
import { closest } from "../util/closest.js";
import { MATRIX_SCHEMA, cellName, expandMatrix, isMatrix, type MatrixDescription } from "./matrix.js";
import { formatDiagnostic, MAX_FILE_BYTES, ScenarioError, tooLarge, type Diagnostic } from "./diagnostic.js";
import { AJV_OPTIONS, schemaKey } from "./schema-key.js";
export { formatDiagnostic, MAX_FILE_BYTES, ScenarioError, tooLarge, type Diagnostic };

export { closest };
import type { KernelSection, LoadedScenario, Position, Scenario } from "./types.js";


/**
 * What aliases may repeat: at most this many values (scalars, lists, maps), counted each time an
 * alias repeats them. Far more than a scenario needs (200 repeats of a step are ~1,400), far less
 * than a "billion laughs" document, whose few lines stand for millions.
 * @public
 */
export const MAX_ALIAS_VALUES = 10_000;
/** How deep lists and maps may nest; a scenario needs 7. @public */
export const MAX_DEPTH = 64;

let ajv: Ajv2020 | undefined;
let validator: ReturnType<Ajv2020["compile"]> | undefined;
let matrixValidator: ReturnType<Ajv2020["compile"]> | undefined;
const compiler = () => (ajv ??= new Ajv2020(AJV_OPTIONS));


/** Validators compiled ahead of time, as ajv's standalone code. @internal */
export interface CompiledValidators {
  readonly key: string;
  readonly scenario: ReturnType<Ajv2020["compile"]>;
  readonly matrix: ReturnType<Ajv2020["compile"]>;
}

/**
 * Uses validators compiled ahead of time when they are of today's schemas (the same code ajv
 * would compile: compiling the scenario schema takes about a second, most of a one-file run).
 * Returns whether they were taken.
 * @internal
 */
export function useCompiledValidators(v: CompiledValidators): boolean {
  if (v.key !== schemaKey()) return false;
  validator = v.scenario;
  matrixValidator = v.matrix;
  return true;
}
function validate(): ReturnType<Ajv2020["compile"]> {
  validator ??= compiler().compile(SCENARIO_SCHEMA);
  return validator;
}
function validateMatrix(): ReturnType<Ajv2020["compile"]> {
  matrixValidator ??= compiler().compile(MATRIX_SCHEMA);
  return matrixValidator;
}

type Path = (string | number)[];

/** Finds where a path of the document stands: the node, or the key when `key` is asked (the bench's sweep specs use it too). */
export class Locator {
  constructor(private readonly doc: Document, private readonly lines: LineCounter, private readonly fallback: number, private readonly text: string) {}

  /** The text of the scalar at a path, as written ("1e400", not Infinity). */
  source(path: Path): string | undefined {
    let node: unknown = this.doc.contents;
    for (const part of path) {
      if (isMap(node)) node = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part))?.value;
      else if (isSeq(node)) node = node.items[Number(part)];
      else return undefined;
    }
    return isScalar(node) && node.range ? this.text.slice(node.range[0], node.range[1]) : undefined;
  }

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
/** A value found in the file, short: numbers as written there, long values cut. */
function show(v: unknown, source?: string): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number" && source !== undefined) return source;
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  s ??= String(v);
  return s.length > 80 ? s.slice(0, 77) + "…" : s;
}
/** Why a limit is what it is, for "expected a number <= …". */
const LIMIT_WHY: Readonly<Record<number, string>> = {
  [Number.MAX_SAFE_INTEGER]: " (2^53 - 1: larger numbers are not exact)",
  [MAX_PAGES]: " (pages of 4K in 2^53 - 1 bytes)",
};

function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const p of path) v = v == null ? undefined : (v as Record<string | number, unknown>)[p];
  return v;
}


/**
 * Ajv's errors as a person reads them: one per place, the most specific first, "expected … found
 * …". A oneOf that failed reports its branches' errors, so only the deepest errors of a place
 * are kept.
 */
function schemaMessages(errors: readonly ErrorObject[], data: unknown, source: (p: Path) => string | undefined): { path: Path; key?: string; message: string }[] {
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
    const shown = show(found, source(path));
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
            message = `${showPath(path)}: expected one of ${allowed.length > 12 ? allowed.slice(0, 12).join(", ") + ", …" : allowed.join(", ")}, found ${shown}${hint ? ` (did you mean "${hint}"?)` : ""}`;
          }
          break;
        case "minimum":
        case "maximum":
          message = `${showPath(path)}: expected a number ${String(e.params.comparison)} ${String(e.params.limit)}${LIMIT_WHY[e.params.limit as number] ?? ""}, found ${shown}`;
          break;
        case "type":
          if (path.length === 0) {
            message = `a scenario is a map with name, reference and steps (see cowsim schema), not ${shown}`;
            break;
          }
        // falls through
        default: {
          const expected = (e.parentSchema as { description?: string }).description;
          message = e.propertyName !== undefined
            ? `name "${e.propertyName}" in ${showPath(path)} ${e.message ?? "is invalid"}`
            : `${showPath(path)}: ${expected && (e.keyword === "oneOf" || e.keyword === "pattern" || e.keyword === "type") ? `expected ${expected}` : (e.message ?? "is invalid")}, found ${shown}`;
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
const RANGE_KEYWORDS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);
function bestBranches(errors: readonly ErrorObject[]): ErrorObject[] {
  let kept = [...errors];
  for (const one of errors.filter((e) => e.keyword === "oneOf")) {
    const prefix = one.schemaPath + "/";
    const under = (e: ErrorObject) => e.instancePath === one.instancePath || e.instancePath.startsWith(one.instancePath + "/");
    const branchOf = (e: ErrorObject) => (e.schemaPath.startsWith(prefix) && under(e) ? Number(e.schemaPath.slice(prefix.length).split("/")[0]) : -1);
    const inBranches = kept.filter((e) => branchOf(e) >= 0);
    if (!inBranches.length) continue;
    const branches = new Set(inBranches.map(branchOf));
    // a branch whose only complaint at the oneOf's place is a range (a number too large) has the
    // right shape: the file meant it
    const fitting = [...branches].filter((b) => !inBranches.some((e) => branchOf(e) === b && e.instancePath === one.instancePath && !RANGE_KEYWORDS.has(e.keyword)));
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

/** The kernel options' problems, at the lines of the `kernel:` block. */
function kernelProblemsOf(data: unknown): NameProblem[] {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return [];
  const d = data as Record<string, unknown>;
  const k = d.kernel;
  if (typeof k !== "object" || k === null || Array.isArray(k)) return []; // the schema says so
  const { problems } = validateKernelOptions(kernelOptionsOf(k as KernelSection));
  const out: NameProblem[] = problems.map((p) => ({ path: ["kernel", ...p.option.split(".")], message: `kernel.${p.message}` }));
  const max = (k as KernelSection).maxProcesses;
  const processes = Array.isArray(d.processes) ? d.processes.length : 1;
  if (!problems.length && typeof max === "number" && processes > max) {
    out.push({ path: ["kernel", "maxProcesses"], message: `kernel.maxProcesses ${max} is fewer than the ${processes} processes the scenario starts with` });
  }
  return out;
}

/**
 * What the schema cannot see, because it sees the document only once aliases are resolved:
 * aliases that name no anchor, aliases inside the node they repeat (a value that would contain
 * itself), aliases that repeat too much (MAX_ALIAS_VALUES), nesting deeper than MAX_DEPTH, keys
 * that are lists or maps, and values of types no scenario has (YAML 1.1's !!binary, !!set,
 * timestamps). Found on the syntax tree, so every problem has its place; the document is then
 * not converted at all.
 */
function structureProblems(doc: Document): { offset: number; message: string }[] {
  const out: { offset: number; message: string }[] = [];
  const at = (n: unknown, message: string) => out.push({ offset: (n as Node).range?.[0] ?? 0, message });
  const anchors = new Map<string, unknown>();
  const everAnchored = new Set<string>();
  const unresolved: { node: unknown; name: string }[] = [];
  const values = new Map<unknown, number>(); // node → how many values it stands for, aliases expanded
  const open = new Set<unknown>(); // nodes being walked: an alias to one of them is a cycle
  let repeated = 0;
  let tooMany = false, tooDeep = false;
  const walk = (n: unknown, depth: number): number => {
    if (n === null || n === undefined) return 0;
    if (isAlias(n)) {
      const target = anchors.get(n.source);
      if (target === undefined) { unresolved.push({ node: n, name: n.source }); return 0; }
      if (open.has(target)) { at(n, `alias *${n.source} is inside the node &${n.source} anchors: that node would contain itself`); return 0; }
      const size = values.get(target) ?? 0;
      repeated += size;
      if (repeated > MAX_ALIAS_VALUES && !tooMany) {
        tooMany = true;
        at(n, `alias *${n.source} repeats too much: the aliases of this document stand for more than ${MAX_ALIAS_VALUES} values in all (the limit that keeps "billion laughs" documents out); repeat less, or write the repeated part out`);
      }
      return size;
    }
    if (isPair(n)) {
      if (n.key !== null && !isScalar(n.key)) at(n.key, "a key must be a name or a number, not a list, a map or an alias");
      return walk(n.key, depth) + walk(n.value, depth);
    }
    if (depth > MAX_DEPTH) {
      if (!tooDeep) { tooDeep = true; at(n, `lists and maps nest more than ${MAX_DEPTH} levels deep here; a scenario needs a handful`); }
      return 0;
    }
    const node = n as Node & { anchor?: string; tag?: string };
    if (node.anchor) { anchors.set(node.anchor, n); everAnchored.add(node.anchor); }
    let size = 1;
    if (isScalar(n)) {
      const v = n.value;
      // (a merge key's `<<` is the parser's symbol)
      if (v !== null && !["string", "number", "boolean", "symbol"].includes(typeof v)) {
        at(n, `${node.tag ? `a ${node.tag.replace(/^tag:yaml\.org,2002:/, "!!")} value` : "this value"} has no meaning in a scenario: use a string, a number, true, false or null${v instanceof Date ? ' (quote dates: "2001-12-14")' : ""}`);
      }
    } else if (isMap(n) || isSeq(n)) {
      if (node.tag && !/:(map|seq)$/.test(node.tag)) at(n, `a ${node.tag.replace(/^tag:yaml\.org,2002:/, "!!")} has no meaning in a scenario: use a plain list or map`);
      open.add(n);
      for (const item of n.items) size += walk(item, depth + 1);
      open.delete(n);
    }
    values.set(n, size);
    return size;
  };
  walk(doc.contents, 1);
  for (const { node, name } of unresolved) {
    at(node, everAnchored.has(name)
      ? `alias *${name} comes before its anchor &${name}: an anchor must come first`
      : `alias *${name} names no anchor: no &${name} comes before it`);
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** Parses and checks a file's text; throws ScenarioError with every problem. */
export function parseScenarios(file: string, text: string, opts: LoadOptions = {}): LoadedScenario[] {
  const lines = new LineCounter();
  // merge keys (<<: *step) are the ordinary use of aliases in step lists; logLevel "error" keeps
  // the parser from printing warnings of its own: they are diagnostics here
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true, logLevel: "error" });
  const diags: Diagnostic[] = [];
  const loaded: LoadedScenario[] = [];
  // a document with nothing in it (the space after a last `---`) is no scenario, and no error
  const empty = (d: Document) => d.contents === null || (isScalar(d.contents) && d.contents.value === null && d.contents.range?.[0] === d.contents.range?.[1]);
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs) || list.length === 0 || list.every((d) => d.errors.length === 0 && empty(d))) {
    throw new ScenarioError([{ file, line: 1, col: 1, message: "no scenario: the file is empty" }]);
  }
  list.forEach((doc, index) => {
    // after the first syntax error the parser's further errors are its own confusion: one is shown
    const problems = [...doc.errors.slice(0, 1), ...doc.warnings];
    for (const e of problems) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      const flowHint = /flow-seq-start/.test(e.message) ? " (inside { } or [ ], quote values with [ ] or , such as \"buf[2]\")" : "";
      const message = e.code === "RESOURCE_EXHAUSTION"
        ? `lists and maps nest too deeply to read here; a scenario needs a handful of levels (at most ${MAX_DEPTH})`
        : `${e.code === "DUPLICATE_KEY" ? "duplicate key" : "syntax error"}: ${e.message.split("\n")[0]}${flowHint}`;
      diags.push({ file, line: pos.line, col: pos.col, message });
    }
    if (doc.errors.length) return;
    if (empty(doc)) return;
    const structure = structureProblems(doc);
    for (const p of structure) diags.push({ file, ...lines.linePos(p.offset), message: p.message });
    if (structure.length) return;
    const loc = new Locator(doc, lines, doc.range[0], text);
    // aliases were bounded above (MAX_ALIAS_VALUES), with positions; the parser's own count is off
    const data = doc.toJS({ maxAliasCount: -1 }) as unknown;
    if (isMatrix(data)) {
      const r = loadMatrix(file, index, data, loc, opts);
      diags.push(...r.diags);
      loaded.push(...r.loaded);
      return;
    }
    const check = validate();
    const valid = check(data);
    const found: { pos: Position; message: string }[] = [];
    const kernel = kernelProblemsOf(data);
    if (!valid) {
      // the kernel options' values are judged by their own rules (mm/options.ts), in one voice;
      // the schema still speaks for unknown keys, and for everything when the rules found nothing
      const own = (e: ErrorObject) => e.instancePath.startsWith("/kernel/") && e.keyword !== "additionalProperties";
      const errors = kernel.length ? (check.errors ?? []).filter((e) => !own(e)) : (check.errors ?? []);
      for (const m of schemaMessages(errors, data, (p) => loc.source(p))) found.push({ pos: m.key !== undefined ? loc.at(m.path, m.key) : loc.at(m.path), message: m.message });
    }
    // names are checked even when the schema is not satisfied, so that every problem shows at once
    // (a place the schema has already explained is not explained twice)
    const explained = new Set(found.map((f) => `${f.pos.line}:${f.pos.col}`));
    for (const p of [...kernel, ...namesOf(data)]) {
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

/** How to load: which sizes of a matrix to expand (default: all it lists; "check": its checkSizes). @public */
export interface LoadOptions {
  readonly sizes?: "check" | readonly string[];
}

/**
 * A matrix description (matrix.ts): checked against its own schema, expanded, and every
 * scenario it expands to checked as a scenario file is, each problem at the line of the
 * description (the template step, the case's rules) it comes from, said once.
 */
function loadMatrix(file: string, index: number, data: unknown, loc: Locator, opts: LoadOptions): { loaded: LoadedScenario[]; diags: Diagnostic[] } {
  const diags: Diagnostic[] = [];
  const seen = new Set<string>();
  // a template's problem repeats in every cell it is expanded into: said once, for the first
  const say = (pos: Position, message: string, cell?: string) => {
    const k = `${pos.line}:${pos.col}:${message}`;
    if (!seen.has(k)) { seen.add(k); diags.push({ file, ...pos, message: cell ? `${message} (in ${cell})` : message }); }
  };
  const check = validateMatrix();
  if (!check(data)) {
    for (const m of schemaMessages(check.errors ?? [], data, (p) => loc.source(p))) say(m.key !== undefined ? loc.at(m.path, m.key) : loc.at(m.path), m.message);
    return { loaded: [], diags };
  }
  const { expansions, problems } = expandMatrix(data as MatrixDescription, opts.sizes);
  for (const p of problems) say(loc.at(p.path), p.message);
  const loaded: LoadedScenario[] = [];
  const scenarioCheck = validate();
  for (const x of expansions) {
    // a place of the expanded scenario is a place of the description
    const back = (p: Path): Path => p[0] === "steps" && typeof p[1] === "number" ? [...x.stepPaths[p[1]]!, ...p.slice(2)]
      : p[0] === "expect" ? [...x.casePath, "expect"] : p[0] === "kernel" ? p : [];
    const found: { path: Path; key?: string; message: string }[] = [];
    if (!scenarioCheck(x.scenario)) found.push(...schemaMessages(scenarioCheck.errors ?? [], x.scenario, () => undefined));
    found.push(...kernelProblemsOf(x.scenario), ...namesOf(x.scenario));
    for (const f of found) {
      const path = back(f.path);
      // "steps[4]" of one cell is "steps[5]" of another: name the template step instead
      const message = f.message.replace(/^steps\[(\d+)\]/, (m, i: string) => { const t = x.stepPaths[Number(i)]; return t ? showPath(t) : m; });
      say(f.key !== undefined ? loc.at(path, f.key) : loc.at(path), message, cellName(x.cell));
    }
    if (found.length) continue;
    loaded.push({ file, index, scenario: x.scenario, at: loc.at(x.casePath), stepAt: x.stepPaths.map((p) => loc.at(p)), cell: x.cell });
  }
  return { loaded: diags.length ? [] : loaded, diags };
}

/** The offset of the first byte that is not well-formed UTF-8 (RFC 3629), or -1. */
function firstBadUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    // the lead byte says how many continuation bytes follow and what the first may be
    // (no overlong forms, no surrogates, nothing beyond U+10FFFF)
    const [n, lo, hi] = c < 0x80 ? [0, 0, 0] : c >= 0xc2 && c <= 0xdf ? [1, 0x80, 0xbf]
      : c === 0xe0 ? [2, 0xa0, 0xbf] : c === 0xed ? [2, 0x80, 0x9f] : c >= 0xe1 && c <= 0xef ? [2, 0x80, 0xbf]
      : c === 0xf0 ? [3, 0x90, 0xbf] : c === 0xf4 ? [3, 0x80, 0x8f] : c >= 0xf1 && c <= 0xf3 ? [3, 0x80, 0xbf] : [-1, 0, 0];
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return -1;
}

/** The file's text, or the place where it stops being UTF-8. */
function decode(file: string, bytes: Uint8Array): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new ScenarioError([{ file, line: 1, col: 1, message: "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8" }]);
  }
  const bad = firstBadUtf8(bytes);
  const text = new TextDecoder("utf-8").decode(bytes.subarray(0, bad < 0 ? bytes.length : bad));
  if (bad >= 0) {
    const lineStart = text.lastIndexOf("\n") + 1;
    const line = (text.match(/\n/g)?.length ?? 0) + 1;
    const col = [...text.slice(lineStart)].length + 1;
    throw new ScenarioError([{ file, line, col, message: `the file is not UTF-8: byte 0x${bytes[bad]!.toString(16).padStart(2, "0")} cannot be read as text here; save the file as UTF-8` }]);
  }
  return text;
}


/**
 * Parses and checks a file's bytes, as they were read (from a disk, a fetch, a browser's File):
 * they must be UTF-8 and at most {@link MAX_FILE_BYTES}. Throws ScenarioError with every problem,
 * the place where the bytes stop being UTF-8 among them. Reading files from a disk is the Node
 * entry's (`loadScenarioFile` in `cowsim/node`).
 * @public
 */
export function parseScenarioBytes(file: string, bytes: Uint8Array, opts: LoadOptions = {}): LoadedScenario[] {
  if (bytes.length > MAX_FILE_BYTES) throw tooLarge(file, bytes.length);
  return parseScenarios(file, decode(file, bytes), opts);
}

