/**
 * Custom strategies: a program's own COW rule, checked member by member when it is made, so a
 * strategy that lacks a member or answers in the wrong shape fails at once with every problem
 * named — not later, with a TypeError in the middle of a fork.
 */
import { CowsimError } from "../errno.js";
import type { CowStrategy, KnobSpec } from "./strategy.js";

/** How many folios a per-CPU LRU batch can hold (CTX_LRU_SLOTS of the core). */
export const LRU_BATCH_SLOTS = 32;

/** A strategy that is not what it claims: every problem, each naming the member. @public */
export class StrategyError extends CowsimError {
  /** One line per problem, e.g. `wpReuse: missing (a function (facts, helpers) => WpDecision)`. */
  readonly problems: readonly string[];

  constructor(what: string, problems: readonly string[]) {
    super("EINVAL", `${what}:\n  ${problems.join("\n  ")}`);
    this.name = "StrategyError";
    this.problems = problems;
  }
}

/**
 * What a program writes to define a strategy: every member of {@link CowStrategy}; `knobs`
 * (the resolved knob values) may be left out when it has none.
 * @public
 */
export type StrategyMembers = Omit<CowStrategy, "knobs"> & { readonly knobs?: Readonly<Record<string, boolean>> };

type Check = (v: unknown) => boolean;
const isBool: Check = (v) => typeof v === "boolean";
const isText: Check = (v) => typeof v === "string" && v.trim().length > 0;
const ID_RE = /^[a-z][a-z0-9-]{0,39}$/;
const isId: Check = (v) => typeof v === "string" && ID_RE.test(v);
const isFn = (arity: number): Check => (v) => typeof v === "function" && v.length <= arity;
const isRecordOf = (each: Check): Check => (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every(each);

/** Every member, what it must be, and how to say so. */
const MEMBERS: readonly (readonly [keyof StrategyMembers, Check, string, boolean?])[] = [
  ["id", isId, "an id: a lowercase letter, then up to 39 lowercase letters, digits or dashes"],
  ["title", isText, "a non-empty string"],
  ["kernels", isText, "a non-empty string naming the kernels it stands for, e.g. \"Linux ≤ 5.7\""],
  ["commits", (v) => Array.isArray(v) && v.every((c) => typeof c === "string"), "an array of commit ids (strings)"],
  ["knobs", isRecordOf(isBool), "an object of knob names to true or false", true],
  ["lruBatchSize", (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= LRU_BATCH_SLOTS, `an integer from 1 to ${LRU_BATCH_SLOTS} (PAGEVEC_SIZE of its era: 15, or 31 from 6.x)`],
  ["tracksAnonExclusive", isBool, "true or false"],
  ["wpReuse", isFn(2), "a function (facts, helpers) => WpDecision"],
  ["thpWpReuse", isFn(2), "a function (facts, helpers) => WpDecision", true],
  ["forkDefers", (v) => v === "none" || v === "pinned" || v === "pinned-exclusive", "\"none\", \"pinned\" or \"pinned-exclusive\""],
  ["forkPinned", isFn(1), "a function (exclusive) => { copy, rule }"],
  ["gupMustUnshare", isFn(1), "a function (facts) => boolean"],
  ["swapin", isFn(2), "a function (facts, helpers) => SwapinDecision"],
  ["reclaimsPinned", isBool, "true or false"],
  ["unmap", (v) => typeof v === "object" && v !== null && isBool((v as Record<string, unknown>).shareAnon) && isBool((v as Record<string, unknown>).swpExclusive), "{ shareAnon: boolean, swpExclusive: boolean }"],
  ["migrationReadExclusive", isBool, "true or false", true],
  ["gupFastBarriers", isBool, "true or false", true],
  ["gupFastProtocol", (v) => typeof v === "object" && v !== null && ["pteRecheck", "unmapClear", "writeProtectSeq"].every((f) => isBool((v as Record<string, unknown>)[f])), "{ pteRecheck: boolean, unmapClear: boolean, writeProtectSeq: boolean }", true],
  ["gupBreaksCow", isBool, "true or false"],
  ["mprotectWriteUpgrade", isBool, "true or false"],
  ["directIoPins", isBool, "true or false"],
  ["clearRefsSkipsPinned", isBool, "true or false"],
  ["freeSwapCacheAfterCow", isBool, "true or false"],
];
const KNOWN = new Set<string>(MEMBERS.map(([name]) => name));

const show = (v: unknown): string => {
  if (typeof v === "function") return `a function of ${v.length} parameters`;
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/** The problems of a would-be strategy, one per member (an empty list: it is one). */
export function strategyProblems(s: unknown): string[] {
  if (typeof s !== "object" || s === null) return [`a strategy is an object, not ${show(s)}`];
  const o = s as Record<string, unknown>;
  const problems: string[] = [];
  for (const [name, ok, want, optional] of MEMBERS) {
    const v = o[name];
    if (v === undefined) {
      if (!optional) problems.push(`${name}: missing (${want})`);
    } else if (!ok(v)) {
      problems.push(`${name}: must be ${want}, not ${show(v)}`);
    }
  }
  for (const name of Object.keys(o)) if (!KNOWN.has(name)) problems.push(`${name}: not a member of a strategy (a typo?)`);
  return problems;
}

/** Strategies this module made or checked: trusted, not wrapped again. */
const DEFINED = new WeakSet<CowStrategy>();

const answerError = (id: string, member: string, got: unknown, want: string) =>
  new StrategyError(`strategy "${id}"`, [`${member}() answered ${show(got)}, not ${want}`]);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const optBool = (v: unknown) => v === undefined || typeof v === "boolean";

/**
 * Makes a strategy from its members, after checking each: throws a {@link StrategyError} naming
 * every missing or ill-typed one. The strategy's answers are checked too, as the kernel gets
 * them, so an ill-shaped decision is reported by the member that made it.
 * @public
 */
export function defineStrategy(members: StrategyMembers): CowStrategy {
  return checkStrategy(members);
}

/** defineStrategy(), with the knobs a registered strategy was made with in place of its own. */
export function checkStrategy(members: unknown, knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  if (DEFINED.has(members as CowStrategy)) {
    if (knobs === undefined) return members as CowStrategy;
    return trusted(Object.freeze({ ...(members as CowStrategy), knobs: Object.freeze({ ...knobs }) }));
  }
  const problems = strategyProblems(members);
  const id = isObj(members) && typeof members.id === "string" ? members.id : "?";
  if (problems.length > 0) throw new StrategyError(`strategy "${id}" is not a strategy`, problems);
  const m = members as StrategyMembers;
  // member by member, not a spread: a class instance's accessors and methods count too
  const plain = Object.fromEntries(MEMBERS.map(([name]) => [name, m[name]])) as unknown as CowStrategy;
  const s = Object.freeze<CowStrategy>({
    ...plain,
    knobs: Object.freeze({ ...(knobs ?? m.knobs ?? {}) }),
    commits: Object.freeze([...m.commits]),
    unmap: Object.freeze({ shareAnon: m.unmap.shareAnon, swpExclusive: m.unmap.swpExclusive }),
    wpReuse(f, h) {
      const d = m.wpReuse(f, h);
      if (!isObj(d) || typeof d.reuse !== "boolean" || typeof d.rule !== "string" || !optBool(d.moveAnon) || !optBool(d.setExclusive)) {
        throw answerError(id, "wpReuse", d, "a WpDecision { reuse: boolean, rule: string, moveAnon?: boolean, setExclusive?: boolean }");
      }
      return d;
    },
    thpWpReuse: m.thpWpReuse === undefined ? undefined : (f, h) => {
      const d = m.thpWpReuse!(f, h);
      if (!isObj(d) || typeof d.reuse !== "boolean" || typeof d.rule !== "string" || !optBool(d.moveAnon) || !optBool(d.setExclusive)) {
        throw answerError(id, "thpWpReuse", d, "a WpDecision { reuse: boolean, rule: string, moveAnon?: boolean, setExclusive?: boolean }");
      }
      return d;
    },
    forkPinned(exclusive) {
      const d = m.forkPinned(exclusive);
      if (!isObj(d) || typeof d.copy !== "boolean" || typeof d.rule !== "string") throw answerError(id, "forkPinned", d, "{ copy: boolean, rule: string }");
      return d;
    },
    gupMustUnshare(f) {
      const d = m.gupMustUnshare(f);
      if (typeof d !== "boolean") throw answerError(id, "gupMustUnshare", d, "true or false");
      return d;
    },
    swapin(f, h) {
      const d = m.swapin(f, h);
      if (!isObj(d) || typeof d.exclusive !== "boolean" || typeof d.writable !== "boolean" || typeof d.rule !== "string") {
        throw answerError(id, "swapin", d, "a SwapinDecision { exclusive: boolean, writable: boolean, rule: string }");
      }
      return d;
    },
  });
  DEFINED.add(s);
  return s;
}

/** Marks a built-in strategy as checked (its answers are the kernel's own; no wrapping). */
export function trusted(s: CowStrategy): CowStrategy {
  DEFINED.add(s);
  return s;
}

/** The problems of a knob table. */
export function knobProblems(knobs: unknown): string[] {
  if (knobs === undefined) return [];
  if (!Array.isArray(knobs)) return [`knobs: must be an array of knob specs, not ${show(knobs)}`];
  const problems: string[] = [];
  const seen = new Set<string>();
  knobs.forEach((k: unknown, i) => {
    const at = `knobs[${i}]`;
    if (!isObj(k)) {
      problems.push(`${at}: must be { name, commit, kernel, description, default }, not ${show(k)}`);
      return;
    }
    if (typeof k.name !== "string" || !/^[A-Za-z][A-Za-z0-9]*$/.test(k.name)) problems.push(`${at}.name: must be a camelCase name, not ${show(k.name)}`);
    else if (seen.has(k.name)) problems.push(`${at}.name: "${k.name}" is named twice`);
    else seen.add(k.name);
    for (const f of ["commit", "kernel", "description"] as const) if (!isText(k[f])) problems.push(`${at}.${f}: must be a non-empty string, not ${show(k[f])}`);
    if (typeof k.default !== "boolean") problems.push(`${at}.default: must be true or false, not ${show(k.default)}`);
  });
  return problems;
}

export type { KnobSpec };
