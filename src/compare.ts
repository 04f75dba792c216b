/**
 * Running the same steps under every strategy, side by side.
 */
import { createKernel, type Kernel, type KernelOptions } from "./mm/kernel.js";
import { STRATEGY_IDS, type StrategyId } from "./policy/index.js";
import type { Counters } from "./mm/stats.js";
import type { Finding } from "./oracle/oracle.js";

/** One strategy's outcome. @public */
export interface StrategyResult<T> {
  readonly strategy: StrategyId;
  readonly kernels: string;
  /** What the steps returned, or undefined when they threw. */
  readonly value: T | undefined;
  /** The error the steps threw, if any. */
  readonly error: Error | undefined;
  readonly counters: Counters;
  readonly findings: readonly Finding[];
}

/**
 * Runs `steps` once per strategy, each on a fresh kernel built from `options` (per-strategy
 * knobs under `knobs[strategy]`), and returns the results side by side.
 * @public
 */
export function compareStrategies<T>(
  steps: (kernel: Kernel) => T,
  options: Omit<KernelOptions, "strategy" | "knobs"> & {
    readonly strategies?: readonly StrategyId[];
    readonly knobs?: Partial<Record<StrategyId, Readonly<Record<string, boolean>>>>;
  } = {},
): Record<StrategyId, StrategyResult<T>> {
  const out = {} as Record<StrategyId, StrategyResult<T>>;
  for (const id of options.strategies ?? STRATEGY_IDS) {
    const k = createKernel({ ...options, strategy: id, knobs: options.knobs?.[id] ?? {} });
    let value: T | undefined;
    let error: Error | undefined;
    try {
      value = steps(k);
    } catch (e) {
      error = e as Error;
    }
    out[id] = { strategy: id, kernels: k.strategy.kernels, value, error, counters: k.counters(), findings: k.findings };
  }
  return out;
}
