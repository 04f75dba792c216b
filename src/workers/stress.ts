/**
 * The GUP-fast stress loop: worker threads pin (FOLL_PIN | FOLL_LONGTERM, R/O) random pages of
 * one process while the main thread, round after round, swaps its pages out and back in, or
 * forks it (the child exits, the parent writes every page again, so they are exclusive
 * again), or mixes every operation that races GUP-fast in Linux: fork, swap-out, migration,
 * write-protection (clear_refs, mprotect) and munmap + mmap (page tables freed under the
 * walkers). The invariants are checked after every round with the workers parked; a worker
 * checks every pin it releases (see PoolSummary.lost). Bounded in rounds and in time.
 */
import { createKernel } from "../kernel.js";
import {
  MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE,
} from "../mm/uapi.js";
import type { InvariantViolation } from "../mm/invariants.js";
import { createGupWorkers, type PoolSummary } from "./pool.js";

/** What the main thread does each round. @public */
export type StressOp = "swap" | "fork" | "mixed";

/** A stress run. @public */
export interface StressOptions {
  /** Knobs of `anon-exclusive` (the protocol-breaking ones: `gupFastPteRecheck`, `unmapClearsPte`, `gupFastWriteProtectSeq`). */
  readonly knobs?: Readonly<Record<string, boolean>>;
  readonly op: StressOp;
  /** Pages of the process the pinners work on (default 2). */
  readonly pages?: number;
  /** Operations per round (default 20). */
  readonly opsPerRound?: number;
  /** Bounds: at most this many rounds and about this many milliseconds (the round running then ends). */
  readonly maxRounds: number;
  readonly maxMs: number;
  /** Stop at the first broken pin or violated invariant (default true). */
  readonly stopAtFirst?: boolean;
  /** Worker threads (default 1: with the main thread, the two cores of a small machine). */
  readonly workers?: number;
  readonly seed?: number;
  /** Where the pool's summary line goes (default: standard error, as for every pool; null: nowhere). */
  readonly log?: ((line: string) => void) | null;
}

/** What a stress run found. @public */
export interface StressResult {
  /** The round in which the first broken pin or violation showed (0-based), or null. */
  readonly found: number | null;
  readonly rounds: number;
  readonly ms: number;
  /** The first violations found after a round (empty: none). */
  readonly violations: readonly InvariantViolation[];
  /** Violations after the pool closed and every pin was released. */
  readonly afterClose: readonly InvariantViolation[];
  /** The oracle's wrong-COW findings: a copy that left a worker's pin on a page the process no longer maps. */
  readonly wrongCows: number;
  readonly summary: PoolSummary;
}

const PAGE = 4096;

/** Runs one stress loop (see the module comment). @public */
export async function runGupFastStress(o: StressOptions): Promise<StressResult> {
  const n = o.pages ?? 2;
  const perRound = o.opsPerRound ?? 20;
  const k = createKernel({ strategy: "anon-exclusive", knobs: o.knobs ?? {}, memory: "4M", swap: "4M", build: "release", oracle: true });
  const p = k.spawn();
  const RW = PROT_READ | PROT_WRITE;
  const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
  const a = p.mmap(null, n * PAGE, RW, PRIV);
  for (let i = 0; i < n; i++) p.write(a + i * PAGE, i + 1);
  const pool = createGupWorkers(k, { n: o.workers ?? 1, seed: o.seed ?? 1, ...(o.log !== undefined ? { log: o.log } : {}) });
  pool.startPinners({ pid: p.pid, addr: a, pages: n, batch: 1, hold: 1 });
  const rewrite = (v: number) => { for (let i = 0; i < n; i++) p.write(a + i * PAGE, v); };
  const ops: Record<StressOp, (r: number, j: number) => void> = {
    swap: () => {
      p.madvise(a, n * PAGE, MADV_PAGEOUT);
      for (let i = 0; i < n; i++) p.read(a + i * PAGE);
    },
    fork: (r) => {
      p.fork().exit();
      rewrite(r);
    },
    mixed: (r, j) => {
      switch (j % 6) {
        case 0: ops.swap(r, j); break;
        case 1: ops.fork(r, j); break;
        case 2: p.migratePages(a, n * PAGE, { all: true }); break;
        case 3: p.clearSoftDirty(); rewrite(r); break;
        case 4: p.mprotect(a, n * PAGE, PROT_READ); p.mprotect(a, n * PAGE, RW); rewrite(r); break;
        case 5: p.munmap(a, n * PAGE); p.mmap(a, n * PAGE, RW, PRIV | MAP_FIXED); rewrite(r); break;
      }
    },
  };
  const t0 = Date.now();
  let found: number | null = null;
  let violations: InvariantViolation[] = [];
  let rounds = 0;
  const op = ops[o.op];
  while (rounds < o.maxRounds && Date.now() - t0 < o.maxMs) {
    const r = rounds;
    const v = pool.round(() => { for (let j = 0; j < perRound; j++) op(r, j); });
    rounds++;
    if (found === null && (v.length > 0 || pool.summary().lost > 0 || k.findings.some((f) => f.kind === "wrong-cow"))) {
      found = r;
      violations = v;
      if (o.stopAtFirst ?? true) break;
    }
  }
  const ms = Date.now() - t0;
  const summary = await pool.close();
  if (found === null && summary.lost > 0) found = rounds - 1; // released at close
  const wrongCows = k.findings.filter((f) => f.kind === "wrong-cow").length;
  return { found, rounds, ms, violations, afterClose: k.checkInvariants(), wrongCows, summary };
}
