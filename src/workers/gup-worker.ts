/**
 * A GUP-fast worker thread: attaches its own Wasm instance to the machine's shared memory
 * (Core.attach()) and takes pins there with the lockless walk — one-off pins the pool asks
 * for, or a pinner loop that runs until the pool stops it. Only GUP-fast runs here
 * (pin_user_pages_fast_only() semantics): the slow path, faults and every other kernel call
 * belong to the main thread. Every pin is a record of the registry in shared memory
 * (assembly/pin_registry.ts), so the main thread sees it without a message.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Core, C, PinCursor, type SharedCore } from "../core/index.js";
import {
  CTL_STATE, CTL_PARKED, STATE_PAUSE, STATE_STOP, STATS_BASE, STATS_WORDS, ST_CALLS, ST_PINS, ST_PAGES,
  ST_UNPINS, ST_LOST, ST_NO_RECORD, ST_REASONS, type PinnerLoop, type ToWorker, type FromWorker,
} from "./protocol.js";

const { shared, control, index, audit } = workerData as { shared: SharedCore; control: SharedArrayBuffer; index: number; audit: boolean };
const core = Core.attach(shared);
const pins = new PinCursor(core);
const ctl = new Int32Array(control);
const st = STATS_BASE + index * STATS_WORDS;
const tag = index + 1;

/** Pins up to `pages` pages from `va`, a record per C.PIN_RECORD_PAGES; stops at the first short one. */
function pin(mm: number, va: number, pages: number, flags: number): { slots: number[]; pages: number; reason: number } {
  const slots: number[] = [];
  let got = 0;
  let reason: number = C.GUPF_OK;
  while (got < pages) {
    const want = Math.min(C.PIN_RECORD_PAGES, pages - got);
    const n = pins.pin(mm, va + got * 4096, want, flags, tag);
    if (n < 0) {
      reason = -1;
      break;
    }
    if (n > 0) {
      slots.push(pins.slot());
      got += n;
    }
    if (n < want) {
      reason = pins.reason();
      break;
    }
  }
  return { slots, pages: got, reason };
}

/** Iterations per call into the core: a pause waits for at most this many. */
const ITERS = 64;

/** This worker's counters before the current loop began (its counts add to them). */
const base = new Int32Array(STATS_WORDS);

/** Copies the core's loop counters into this worker's words of the control block. */
function publish(): void {
  const c = pins.cycleCounts();
  ctl[st + ST_CALLS] = base[ST_CALLS]! + c.calls;
  ctl[st + ST_PINS] = base[ST_PINS]! + c.pins;
  ctl[st + ST_PAGES] = base[ST_PAGES]! + c.pages;
  ctl[st + ST_UNPINS] = base[ST_UNPINS]! + c.unpins;
  ctl[st + ST_LOST] = base[ST_LOST]! + c.lost;
  ctl[st + ST_NO_RECORD] = base[ST_NO_RECORD]! + c.noRecord;
  c.reasons.forEach((v, r) => { ctl[st + ST_REASONS + r] = base[ST_REASONS + r]! + v; });
}

/**
 * The pinner loop (gup_pin_cycle() in the core, ITERS iterations a call): until STATE_STOP,
 * parking at every STATE_PAUSE with its pins held and its counters published.
 */
function loop(l: PinnerLoop): void {
  for (let w = 0; w < STATS_WORDS; w++) base[w] = ctl[st + w]!;
  pins.cycleInit(l.seed);
  for (;;) {
    const state = Atomics.load(ctl, CTL_STATE);
    if (state === STATE_STOP) break;
    if (state === STATE_PAUSE) {
      publish();
      Atomics.add(ctl, CTL_PARKED, 1);
      Atomics.notify(ctl, CTL_PARKED);
      while (Atomics.load(ctl, CTL_STATE) === STATE_PAUSE) Atomics.wait(ctl, CTL_STATE, STATE_PAUSE, 100);
      Atomics.sub(ctl, CTL_PARKED, 1);
      Atomics.notify(ctl, CTL_PARKED);
      continue;
    }
    pins.cycle(l.mm, l.va, l.pages, l.batch, l.flags, tag, l.hold, ITERS, audit);
  }
  pins.cycleDrain(l.hold, audit);
  publish();
}

parentPort!.on("message", (m: ToWorker) => {
  let reply: FromWorker;
  try {
    switch (m.op) {
      case "pin":
        reply = { id: m.id, ...pin(m.mm, m.va, m.pages, m.flags) };
        break;
      case "unpin": {
        let lost = 0;
        for (const s of m.slots) lost += pins.unpin(s, audit);
        reply = { id: m.id, lost };
        break;
      }
      case "loop":
        loop(m.loop);
        reply = { id: m.id, lost: 0 };
        break;
      case "close":
        reply = { id: m.id, lost: pins.unpinAll() };
        core.detach();
        parentPort!.postMessage(reply);
        parentPort!.close();
        return;
    }
  } catch (e) {
    reply = { id: m.id, error: String((e as Error)?.stack ?? e) };
  }
  parentPort!.postMessage(reply);
});
