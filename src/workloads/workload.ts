/**
 * The workload registry's shape: a named, documented generator of programs, with a parameter
 * set per size. A workload stands for a real program and says which; its parameters are plain
 * numbers so a sweep can vary them.
 */
import type { KernelOptions } from "../kernel.js";
import type { Program } from "./program.js";

export type WorkloadSize = "small" | "default" | "large";
export const WORKLOAD_SIZES: readonly WorkloadSize[] = ["small", "default", "large"];

export type WorkloadParams = Readonly<Record<string, number>>;

export interface ParamSpec {
  readonly description: string;
  /** the value at each size */
  readonly small: number;
  readonly default: number;
  readonly large: number;
  /** the least value that makes sense (a sweep outside it is an EINVAL) */
  readonly min: number;
  readonly max?: number;
}

export interface Workload {
  readonly name: string;
  /** one line */
  readonly title: string;
  /** the real program it stands for, and what of it is modelled */
  readonly standsFor: string;
  readonly params: Readonly<Record<string, ParamSpec>>;
  /** kernel options the workload needs beyond the bench's defaults (THP, swap size …) */
  kernelOptions?(params: WorkloadParams): Partial<KernelOptions>;
  /** the program for these parameters and seed: deterministic */
  generate(params: WorkloadParams, seed: number): Program;
}

/** The parameters of a workload at a size, with overrides (checked against the specs). */
export function workloadParams(w: Workload, size: WorkloadSize, overrides: Readonly<Record<string, number>> = {}): WorkloadParams {
  const out: Record<string, number> = {};
  for (const [name, spec] of Object.entries(w.params)) out[name] = spec[size];
  for (const [name, value] of Object.entries(overrides)) {
    const spec = w.params[name];
    if (!spec) throw new RangeError(`workload ${w.name} has no parameter "${name}" (it has: ${Object.keys(w.params).join(", ")})`);
    if (!Number.isFinite(value) || value < spec.min || (spec.max !== undefined && value > spec.max)) {
      throw new RangeError(`workload ${w.name}: ${name}=${value} is outside ${spec.min}…${spec.max ?? "∞"}`);
    }
    out[name] = value;
  }
  return out;
}
