import {
  createKernel, type Kernel, type KernelOptions, type StrategyId, PROT_READ, PROT_WRITE, MAP_PRIVATE,
  MAP_ANONYMOUS, CowsimError,
} from "../../src/index.js";
import { expect } from "vitest";
import { BUILD, snapshot, stateDiff } from "../helpers.js";

export const RW = PROT_READ | PROT_WRITE;
export const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
export const PAGE = 4096;
export const STRATEGIES: readonly StrategyId[] = ["mapcount", "pagecount", "anon-exclusive"];

/** A small kernel on the debug core that checks every invariant after every step. */
export function kernel(strategy: StrategyId | KernelOptions["strategy"], options: Omit<KernelOptions, "strategy"> = {}): Kernel {
  return createKernel({ strategy, memory: "8M", build: BUILD, checkInvariants: true, ...options });
}

/** The whole simulated state: the core's memory and every process's VMAs and anon_vma links. */
export function kernelState(k: Kernel): { core: Uint8Array; vmas: string; anonVmas: number; files: number } {
  const vmas = [...k.processes.values()].map((p) => JSON.stringify({
    pid: p.pid,
    maps: p.maps(),
    chains: p.vmas.list.map((v) => v.chain.map((c) => c.anonVma.id)),
  })).join("\n");
  return { core: snapshot(k.core), vmas, anonVmas: k.anonVmas.size, files: k.shmem.files.size };
}

/** Asserts `fn` fails with `errno`; returns the error. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CowsimError) return e.errno;
    throw e;
  }
  throw new Error("expected an error, got none");
}

/** Runs `fn`, expects `errno`, and checks nothing changed. */
export function failsCleanly(k: Kernel, errno: string, fn: () => unknown): void {
  const before = kernelState(k);
  expect(errnoOf(fn)).toBe(errno);
  const after = kernelState(k);
  expect(stateDiff(before.core, after.core)).toBeNull();
  expect(after.vmas).toBe(before.vmas);
  expect(after.anonVmas).toBe(before.anonVmas);
  expect(after.files).toBe(before.files);
  expect(k.checkInvariants()).toEqual([]);
}
