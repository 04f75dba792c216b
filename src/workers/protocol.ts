/**
 * What the GUP-fast worker pool and its workers share besides the machine's memory: a small
 * control block (Int32Array over a SharedArrayBuffer) that starts, pauses and stops the pinner
 * loops without a message, and per-worker counters the main thread reads at any pause.
 */
import { C } from "../core/index.js";

/** The pinners' state word: what every worker does next. */
export const CTL_STATE = 0;
/** Workers parked at a pause. */
export const CTL_PARKED = 1;
export const STATE_IDLE = 0;
export const STATE_RUN = 1;
export const STATE_PAUSE = 2;
export const STATE_STOP = 3;

/** Per-worker counters, from STATS_BASE, STATS_WORDS words each. */
export const STATS_BASE = 16;
export const STATS_WORDS = 32;
export const ST_CALLS = 0;
export const ST_PINS = 1;
export const ST_PAGES = 2;
export const ST_UNPINS = 3;
export const ST_LOST = 4;
export const ST_NO_RECORD = 5;
/** Then one word per GUPF_* reason a call stopped short for. */
export const ST_REASONS = 6;
export const NR_REASONS = C.GUPF_SEQ_RETRY + 1;

export function controlBytes(workers: number): number {
  return (STATS_BASE + workers * STATS_WORDS) * 4;
}

/** What a pinner loop does: GUP-fast over random windows of one range, holding a few pins. */
export interface PinnerLoop {
  readonly mm: number;
  /** The range's first address and length in pages. */
  readonly va: number;
  readonly pages: number;
  /** Pages per call (≤ C.PIN_RECORD_PAGES). */
  readonly batch: number;
  /** Records held at once: the oldest is unpinned before a new one is taken. */
  readonly hold: number;
  /** FOLL_* flags. */
  readonly flags: number;
  /** The worker's random stream (xorshift32), from the pool's seed. */
  readonly seed: number;
}

/** Messages the pool sends. */
export type ToWorker =
  | { readonly op: "pin"; readonly id: number; readonly mm: number; readonly va: number; readonly pages: number; readonly flags: number }
  | { readonly op: "unpin"; readonly id: number; readonly slots: readonly number[] }
  | { readonly op: "loop"; readonly id: number; readonly loop: PinnerLoop }
  | { readonly op: "close"; readonly id: number };

/** What workers answer. */
export type FromWorker =
  | { readonly id: number; readonly slots: number[]; readonly pages: number; readonly reason: number }
  | { readonly id: number; readonly lost: number }
  | { readonly id: number; readonly error: string };
