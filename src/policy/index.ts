/**
 * The strategy registry: every COW strategy by id, with its knobs and the kernels it stands for.
 * @packageDocumentation
 */
import type { CowStrategy, KnobSpec } from "./strategy.js";
import { mapcountStrategy, MAPCOUNT_KNOBS } from "./mapcount.js";
import { pagecountStrategy, PAGECOUNT_KNOBS } from "./pagecount.js";
import { anonExclusiveStrategy, ANON_EXCLUSIVE_KNOBS } from "./anon-exclusive.js";

export type { CowStrategy, KnobSpec, WpFacts, WpHelpers, WpDecision, GupFacts } from "./strategy.js";

/** The ids of the built-in strategies. @public */
export type StrategyId = "mapcount" | "pagecount" | "anon-exclusive";
export const STRATEGY_IDS: readonly StrategyId[] = ["mapcount", "pagecount", "anon-exclusive"];

export interface StrategyInfo {
  readonly id: StrategyId;
  readonly kernels: string;
  readonly summary: string;
  readonly knobs: readonly KnobSpec[];
  readonly make: (knobs?: Readonly<Record<string, boolean>>) => CowStrategy;
}

export const STRATEGIES: readonly StrategyInfo[] = [
  {
    id: "mapcount",
    kernels: "Linux ≤ 5.7",
    summary: "write fault reuses when mapcount + swapcount == 1; GUP takes a reference without unsharing; fork shares pinned pages",
    knobs: MAPCOUNT_KNOBS,
    make: mapcountStrategy,
  },
  {
    id: "pagecount",
    kernels: "Linux 5.9 – 5.18 (09854ba94c6a)",
    summary: "write fault reuses only when page_count == 1; GUP takes a reference without unsharing; fork copies pinned pages early",
    knobs: PAGECOUNT_KNOBS,
    make: pagecountStrategy,
  },
  {
    id: "anon-exclusive",
    kernels: "Linux ≥ 5.19 (6c287605fd56 and its series); defaults = 6.12",
    summary: "write fault reuses PageAnonExclusive pages, else page_count == 1 under the page lock; R/O pins unshare first; fork copies pinned exclusive pages",
    knobs: ANON_EXCLUSIVE_KNOBS,
    make: anonExclusiveStrategy,
  },
];

/** Builds a strategy by id with its knobs; throws for an unknown id or knob. */
export function makeStrategy(id: string, knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  const info = STRATEGIES.find((s) => s.id === id);
  if (!info) throw new Error(`unknown strategy "${id}" (known: ${STRATEGY_IDS.join(", ")})`);
  return info.make(knobs);
}
