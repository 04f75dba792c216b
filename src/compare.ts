/**
 * Running the same steps under every strategy, side by side.
 */
import { createKernel, type Kernel, type KernelOptions } from "./kernel.js";
import { STRATEGY_IDS, type StrategyId, type Counters, type Finding } from "./kernel.js";

/** One strategy's outcome. @public */
export interface StrategyResult<T> {
  /** The strategy's id. */
  readonly strategy: string;
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
 * knobs under `knobs[strategy]`), and returns the results side by side. `strategies` names
 * built-in or registered ones (registerStrategy()); the default is the three built-in ones.
 * @public
 */
export function compareStrategies<T, const S extends string = StrategyId>(
  steps: (kernel: Kernel) => T,
  options: Omit<KernelOptions, "strategy" | "knobs"> & {
    readonly strategies?: readonly S[];
    readonly knobs?: Partial<Record<S, Readonly<Record<string, boolean>>>>;
  } = {},
): Record<S, StrategyResult<T>> {
  const out = {} as Record<S, StrategyResult<T>>;
  const { strategies, knobs, ...kernelOptions } = options;
  for (const id of strategies ?? (STRATEGY_IDS as readonly string[] as readonly S[])) {
    const k = createKernel({ ...kernelOptions, strategy: id, knobs: knobs?.[id] ?? {} });
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
