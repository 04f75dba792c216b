/**
 * The built-in workloads of `cowsim bench`, each a generator of programs (program.ts) standing
 * for a real program.
 * @packageDocumentation
 */
import { forkSnapshot } from "./fork_snapshot.js";
import { iouringPressure } from "./iouring_pressure.js";
import { pinnedRdmaFork } from "./pinned_rdma_fork.js";
import { randomMix } from "./random_mix.js";
import { thpHeavy } from "./thp_heavy.js";
import { uffdGc } from "./uffd_gc.js";
import { vmspliceServer } from "./vmsplice_server.js";
import type { Workload } from "./workload.js";

export const WORKLOADS: readonly Workload[] = [forkSnapshot, pinnedRdmaFork, iouringPressure, vmspliceServer, thpHeavy, uffdGc, randomMix];

export function workload(name: string): Workload | undefined {
  return WORKLOADS.find((w) => w.name === name);
}

export * from "./program.js";
export * from "./workload.js";
