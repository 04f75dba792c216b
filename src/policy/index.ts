/**
 * The strategy registry: every COW strategy by id — the three built-in ones and any a program
 * registers — with its knobs and the kernels it stands for. Whatever names a strategy by id (a
 * kernel's options, compareStrategies(), a scenario file, the CLI) looks it up here.
 * @packageDocumentation
 */
import { CowsimError } from "../errno.js";
import type { CowStrategy, KnobSpec, SwapinCoreRule, WpCoreRule } from "./strategy.js";
import { mapcountStrategy, MAPCOUNT_KNOBS } from "./mapcount.js";
import { pagecountStrategy, PAGECOUNT_KNOBS } from "./pagecount.js";
import { anonExclusiveStrategy, ANON_EXCLUSIVE_KNOBS } from "./anon-exclusive.js";
import { checkStrategy, type defineStrategy, knobProblems, strategyProblems, StrategyError, trusted } from "./define.js";
import { resolveKnobs } from "./strategy.js";

export type {
  CowStrategy, KnobSpec, WpFacts, HugeWpFacts, WpHelpers, WpDecision, GupFacts, SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./strategy.js";
export { defineStrategy, StrategyError, type StrategyMembers } from "./define.js";

/** The ids of the built-in strategies. @public */
export type StrategyId = "mapcount" | "pagecount" | "anon-exclusive";
/** The built-in strategies, oldest rule first. @public */
export const STRATEGY_IDS: readonly StrategyId[] = ["mapcount", "pagecount", "anon-exclusive"];

/** A registered strategy: what it is, its knobs, and how to make it with a setting of them. @public */
export interface StrategyInfo {
  readonly id: string;
  /** The kernels it stands for with its default knobs. */
  readonly kernels: string;
  /** Its rule in one line. */
  readonly summary: string;
  readonly knobs: readonly KnobSpec[];
  /** Makes the strategy; `knobs` may set any of its knobs (unknown names are an error). */
  readonly make: (knobs?: Readonly<Record<string, boolean>>) => CowStrategy;
}

/**
 * A strategy as a program registers it: its summary, its knob table, and `make`, which gets the
 * knobs resolved (every knob named, defaults filled in) and returns the strategy's members.
 * @public
 */
export interface StrategyDefinition {
  readonly id: string;
  readonly summary: string;
  readonly knobs?: readonly KnobSpec[];
  readonly make: (knobs: Readonly<Record<string, boolean>>) => CowStrategy | Parameters<typeof defineStrategy>[0];
}

/**
 * What the core may decide for a built-in strategy: its do_wp_page() and do_swap_page() rules
 * (WpCoreRule, SwapinCoreRule), and whether fork copies every page it defers (forkPinned()
 * answers copy whatever it is asked).
 */
interface CoreRules { readonly wp: WpCoreRule; readonly swapin: SwapinCoreRule; readonly forkCopiesDeferred: boolean }
/** The strategies the built-in makers made: their rules are the kernel's, and the core's own checks judge them. */
const MADE_BUILT_IN = new WeakMap<CowStrategy, CoreRules>();
/**
 * A built-in strategy is made once per set of knobs and shared, frozen, by every kernel that
 * asks for it: it keeps no state, and a catalog check makes a kernel (and so a strategy) per run.
 */
const builtin = (make: (knobs?: Readonly<Record<string, boolean>>) => CowStrategy,
  rules: (knobs: Readonly<Record<string, boolean>>) => CoreRules) => {
  const made = new Map<string, CowStrategy>();
  return (knobs?: Readonly<Record<string, boolean>>) => {
    const key = knobs === undefined ? "" : JSON.stringify(Object.entries(knobs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let s = made.get(key);
    if (s === undefined) {
      s = Object.freeze(trusted(make(knobs)));
      MADE_BUILT_IN.set(s, rules(s.knobs));
      made.set(key, s);
    }
    return s;
  };
};

/** swapinReuseSwapPage(): reuse_swap_page() on a write fault (Linux ≤ 5.17, and 5.9–5.17's page_count() rule without swapcacheReuse). */
const REUSE_SWAP_PAGE: SwapinCoreRule = { count: "mapcount", entryExclusive: false, readExclusive: false };

/** reuse_swap_page(): folio_mapcount() ≤ 1 (the swap count is 0 outside the swap cache). */
const MAPCOUNT_RULE: WpCoreRule = { exclusiveReuses: false, count: "mapcount", drainFirst: false, mapcountToo: false, moveAnon: true, setExclusive: false };
/** 09854ba94c6a and, with swapcacheReuse (53a05ad9f21d), the 5.18 form with lruDrainReuse (d4c470970d45). */
const pagecountWpRule = (k: Readonly<Record<string, boolean>>): WpCoreRule => k.swapcacheReuse
  ? { exclusiveReuses: false, count: "refcount", drainFirst: k.lruDrainReuse === true, mapcountToo: false, moveAnon: true, setExclusive: false }
  : { exclusiveReuses: false, count: "refcount", drainFirst: false, mapcountToo: true, moveAnon: false, setExclusive: false };
/** With swapcacheReuse, 5.18's page_count() == 1 on a write fault once the swap cache let go; else reuse_swap_page(). */
const pagecountRules = (k: Readonly<Record<string, boolean>>): CoreRules => ({
  wp: pagecountWpRule(k),
  swapin: k.swapcacheReuse ? { count: "refcount", entryExclusive: false, readExclusive: false } : REUSE_SWAP_PAGE,
  // 70e806e4e645's copy_present_page() of every possibly pinned page (forkCopyPinned)
  forkCopiesDeferred: true,
});
/** do_wp_page() of 6.12: PageAnonExclusive(), else wp_can_reuse_anon_folio(). */
const ANON_EXCLUSIVE_RULE: WpCoreRule = { exclusiveReuses: true, count: "refcount", drainFirst: true, mapcountToo: false, moveAnon: true, setExclusive: true, largeCopies: true };
/** do_swap_page() of 6.12: pte_swp_exclusive() (with swapExclusive), else folio_ref_count() == 1, a read fault too. */
const anonExclusiveRules = (k: Readonly<Record<string, boolean>>): CoreRules => ({
  wp: ANON_EXCLUSIVE_RULE,
  swapin: { count: "refcount", entryExclusive: k.swapExclusive === true, readExclusive: true },
  // copy_present_page() of every possibly pinned exclusive page (folio_try_dup_anon_rmap_pte() failed)
  forkCopiesDeferred: true,
});

const BUILT_IN: readonly StrategyInfo[] = [
  {
    id: "mapcount",
    kernels: "Linux ≤ 5.7",
    summary: "write fault reuses when mapcount + swapcount == 1; GUP takes a reference without unsharing; fork shares pinned pages",
    knobs: MAPCOUNT_KNOBS,
    make: builtin(mapcountStrategy, () => ({ wp: MAPCOUNT_RULE, swapin: REUSE_SWAP_PAGE, forkCopiesDeferred: false })),
  },
  {
    id: "pagecount",
    kernels: "Linux 5.9 – 5.18 (09854ba94c6a)",
    summary: "write fault reuses only when page_count == 1; GUP takes a reference without unsharing; fork copies pinned pages early",
    knobs: PAGECOUNT_KNOBS,
    make: builtin(pagecountStrategy, pagecountRules),
  },
  {
    id: "anon-exclusive",
    kernels: "Linux ≥ 5.19 (6c287605fd56 and its series); defaults = 6.12",
    summary: "write fault reuses PageAnonExclusive pages, else page_count == 1 under the page lock; R/O pins unshare first; fork copies pinned exclusive pages",
    knobs: ANON_EXCLUSIVE_KNOBS,
    make: builtin(anonExclusiveStrategy, anonExclusiveRules),
  },
];

const registry = new Map<string, StrategyInfo>(BUILT_IN.map((i) => [i.id, i]));

/** The built-in strategies (see {@link strategies} for the registered ones too). @public */
export const STRATEGIES: readonly StrategyInfo[] = BUILT_IN;

/** Every strategy a kernel can be made with now: the built-in ones, then the registered ones in order. @public */
export function strategies(): readonly StrategyInfo[] {
  return [...registry.values()];
}

/** The registered strategy `id`, or undefined. @public */
export function strategyInfo(id: string): StrategyInfo | undefined {
  return registry.get(id);
}

const isBuiltinId = (id: string): id is StrategyId => (STRATEGY_IDS as readonly string[]).includes(id);

/**
 * Registers a custom strategy so that it can be named by id wherever a built-in one can: a
 * kernel's `strategy` option, compareStrategies(), scenario files, the CLI's --strategy-module.
 * Takes a {@link StrategyDefinition}, or a strategy (its members) when it has no knobs. It is
 * made once with its default knobs and checked now: a {@link StrategyError} names every missing
 * or ill-typed member; an id already registered is EEXIST. Returns what was registered.
 * @public
 */
export function registerStrategy(def: StrategyDefinition | Parameters<typeof defineStrategy>[0]): StrategyInfo {
  const d = def as unknown as Record<string, unknown>;
  if (typeof d !== "object" || d === null) throw new StrategyError("registerStrategy()", [`a strategy definition is an object, not ${String(def)}`]);
  const asDefinition: StrategyDefinition = typeof d?.make === "function"
    ? (def as StrategyDefinition)
    : { id: (def as CowStrategy).id, summary: (def as CowStrategy).title, make: () => def as CowStrategy };
  const problems: string[] = [];
  if (typeof d.make === "function") {
    if (typeof asDefinition.id !== "string" || !/^[a-z][a-z0-9-]{0,39}$/.test(asDefinition.id)) problems.push(`id: must be an id (lowercase letters, digits and dashes), not ${JSON.stringify(asDefinition.id)}`);
    if (typeof asDefinition.summary !== "string" || !asDefinition.summary.trim()) problems.push("summary: must be a non-empty string");
    problems.push(...knobProblems(asDefinition.knobs));
  } else {
    problems.push(...strategyProblems(def));
  }
  const id = String(asDefinition.id);
  if (problems.length > 0) throw new StrategyError(`strategy "${id}" cannot be registered`, problems);
  if (registry.has(id)) {
    throw new CowsimError("EEXIST", `a strategy "${id}" is already registered${isBuiltinId(id) ? " (a built-in one)" : ""}`);
  }
  const specs = asDefinition.knobs ?? [];
  const make = (knobs?: Readonly<Record<string, boolean>>): CowStrategy => {
    const resolved = resolveKnobs(id, specs, knobs);
    const s = checkStrategy(asDefinition.make(resolved), resolved);
    if (s.id !== id) throw new StrategyError(`strategy "${id}"`, [`make() returned a strategy with id "${s.id}"`]);
    return s;
  };
  const first = make(); // checked now, not at the first fork
  const info: StrategyInfo = Object.freeze({ id, kernels: first.kernels, summary: asDefinition.summary, knobs: specs, make });
  registry.set(id, info);
  return info;
}

/** Unregisters a custom strategy (a built-in one stays); returns whether it was registered. @public */
export function unregisterStrategy(id: string): boolean {
  if (isBuiltinId(id)) throw new CowsimError("EPERM", `strategy "${id}" is built in and cannot be unregistered`);
  return registry.delete(id);
}

/** Builds a strategy by id with its knobs; throws for an unknown id or knob. @public */
export function makeStrategy(id: string, knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  const info = registry.get(id);
  if (!info) throw new CowsimError("EINVAL", `unknown strategy "${id}" (known: ${[...registry.keys()].join(", ")})`);
  return info.make(knobs);
}

/** Whether `s` is one of the built-in strategies (whose rules the core's own checks judge). */
export function isBuiltinStrategy(s: CowStrategy): boolean {
  return MADE_BUILT_IN.has(s);
}

/** The do_wp_page() rule the core may decide faults by for `s`: a built-in strategy's, else null (every fault asks wpReuse()). */
export function wpCoreRule(s: CowStrategy): WpCoreRule | null {
  return MADE_BUILT_IN.get(s)?.wp ?? null;
}

/** Whether fork's walk may copy the pages `s` defers itself: a built-in strategy whose forkPinned() always copies. */
export function forkCopiesInCore(s: CowStrategy): boolean {
  return MADE_BUILT_IN.get(s)?.forkCopiesDeferred ?? false;
}

/** The do_swap_page() rule the core may take swap-ins by for `s`: a built-in strategy's, else null (every swap-in asks swapin()). */
export function swapinCoreRule(s: CowStrategy): SwapinCoreRule | null {
  return MADE_BUILT_IN.get(s)?.swapin ?? null;
}
