/**
 * What a scenario file holds, once validated. The JSON Schema (schema.ts) is the contract; these
 * types follow it.
 */
import type { StrategyId, ThpOptions } from "../kernel.js";
import type { MatrixCell } from "./matrix.js";

/** `T` for every run, or `{ all: T, <run>: T }`. */
export type PerRun<T> = T | { readonly [run: string]: T };
export type Address = number | string;
export type Size = number | string;
export type ExpectedValue = number | readonly number[];

/** One step: its op and fields (see STEP_SCHEMAS). */
export interface Step {
  readonly op: string;
  readonly comment?: string;
  readonly error?: PerRun<string | null>;
  readonly expect?: PerRun<ExpectedValue> | Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly process?: string;
  readonly [field: string]: unknown;
}

/** What a run must end with: findings, counters, latent missed COWs, the invariants. @public */
export interface Outcome {
  readonly counters?: Readonly<Record<string, number>>;
  readonly findings?: readonly string[];
  readonly latentMissedCows?: number;
  readonly invariants?: true;
}

/** Where a scenario's behaviour comes from: a commit, a selftest case, an article, a CVE, a seed's rule. @public */
export type Reference =
  | { readonly commit: string; readonly subject?: string }
  | { readonly selftest: string; readonly case?: string }
  | { readonly url: string; readonly title?: string }
  | { readonly cve: string }
  /** A numbered rule of a seed commit message ("000", "I.6b"), with its words. */
  | { readonly seed: string; readonly rule: string; readonly quote: string };

/** One run of a scenario: a name, a strategy (built-in or registered) and its knobs. @public */
export interface RunSpec {
  readonly name: string;
  /** A built-in strategy (StrategyId) or a registered one. */
  readonly strategy: string;
  readonly knobs?: Readonly<Record<string, boolean>>;
}

export interface KernelSection {
  readonly memory?: Size;
  readonly swap?: Size;
  readonly dataBytes?: number;
  readonly seed?: number;
  readonly transient?: { readonly lruBatch?: boolean | number; readonly isolation?: number };
  readonly maxProcesses?: number;
  readonly maxMapCount?: number;
  readonly checkInvariants?: boolean;
  readonly thp?: ThpOptions;
}

/** A scenario as its file states it (see the JSON Schema, `cowsim schema`). @public */
export interface Scenario {
  readonly name: string;
  readonly description?: string;
  readonly reference: readonly Reference[];
  readonly strategies?: readonly (StrategyId | string | RunSpec)[];
  readonly kernel?: KernelSection;
  readonly processes?: readonly string[];
  readonly steps: readonly Step[];
  readonly expect?: Readonly<Record<string, Outcome>>;
}

/** A file position, 1-based. */
export interface Position {
  readonly line: number;
  readonly col: number;
}

/** A scenario as loaded from a file: where it and each of its steps stand. */
export interface LoadedScenario {
  readonly file: string;
  /** Which document of the file (0 for the first). */
  readonly index: number;
  readonly scenario: Scenario;
  readonly at: Position;
  readonly stepAt: readonly Position[];
  /** For a scenario a matrix description expands to: its case, setup and size. */
  readonly cell?: MatrixCell;
}
