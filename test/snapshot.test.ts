// Snapshot and restore: a run continued from a snapshot is the uninterrupted run, event for
// event — the same tracepoints, counters, findings, journal (the trace) and machine memory.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, registerStrategy, unregisterStrategy, makeStrategy, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS,
  MADV_PAGEOUT, type Kernel, type StrategyId,
} from "../src/index.js";
import { World, opsArb, type Op } from "../src/fuzz/ops.js";
import { BUILD } from "./helpers.js";

const OPTIONS = { memory: "8M", swap: "8M", build: BUILD, seed: 7, transient: { lruBatch: true, isolation: 0.05 } } as const;
const PAGE = 4096;

/** Every event, written out as it happens (a step's call text made at once). */
function record(k: Kernel, into: string[]): void {
  k.on("*", (name, e) => into.push(`${name} ${JSON.stringify(e, (_k, v: unknown) => (typeof v === "function" ? (v as () => string)() : v))}`));
}

/** What a run leaves: everything that must be the same whether or not it was interrupted. */
function outcome(k: Kernel) {
  const image = k.core.memoryImage();
  return {
    counters: k.counters(),
    findings: JSON.stringify(k.findings),
    journal: JSON.stringify(k.journal?.entriesSince(0) ?? []),
    latent: k.latentMissedCows(),
    processes: [...k.processes.values()].map((p) => ({ pid: p.pid, maps: p.maps() })),
    memory: image.chunks.map((c) => `${c.index}:${Buffer.from(c.bytes).toString("base64")}`).join(","),
  };
}

function run(strategy: StrategyId, ops: readonly Op[], cut: number | null, explain = true) {
  const events: string[] = [];
  let k = createKernel({ ...OPTIONS, strategy, explain });
  record(k, events);
  let w = new World(k);
  ops.forEach((o, i) => {
    if (i === cut) {
      const bytes = k.snapshot();
      k = createKernel({ snapshot: bytes });
      record(k, events);
      w = w.continueOn(k);
    }
    w.apply(o, i + 1);
  });
  expect(k.checkInvariants()).toEqual([]);
  return { events, transcript: JSON.stringify(w.transcript), ...outcome(k) };
}

describe("snapshot and restore", () => {
  it("a run continued from a snapshot is the run without one (random sequences, random cuts)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<StrategyId>("mapcount", "pagecount", "anon-exclusive"),
        opsArb("everything", 80),
        fc.nat(),
        fc.boolean(),
        (strategy, ops, at, explain) => {
          const cut = at % (ops.length + 1);
          const whole = run(strategy, ops, null, explain);
          const resumed = run(strategy, ops, cut, explain);
          expect(resumed.events.length).toBe(whole.events.length);
          expect(resumed).toEqual(whole);
        },
      ),
      { numRuns: 40, seed: 20261201 },
    );
  });

  it("restores the same bytes twice into two kernels that go their own ways", () => {
    const k = createKernel({ ...OPTIONS });
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write(a, 1);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const child = p.fork();
    const bytes = k.snapshot();
    const k1 = createKernel({ snapshot: bytes });
    const k2 = createKernel({ snapshot: bytes });
    const before = k1.counters();
    k1.process(p.pid).write(a, 2);
    expect(k1.process(p.pid).read(a)).toBe(2);
    expect(k1.process(child.pid).read(a)).toBe(1);
    expect(k2.process(p.pid).read(a)).toBe(1);
    expect(k.process(p.pid).read(a)).toBe(1);
    expect(k1.counters().copies).toBe(before.copies + 1);
    expect(k2.counters().copies).toBe(before.copies);
    expect(k2.counters().swapins).toBe(before.swapins + 1);
    expect(k.counters().swapins).toBe(before.swapins + 1);
    for (const x of [k, k1, k2]) expect(x.checkInvariants()).toEqual([]);
  });

  it("keeps a registered strategy by id and its knobs", () => {
    const base = makeStrategy("pagecount", { freeSwapCacheAfterCow: false });
    registerStrategy({ ...base, id: "snapshot-test-rule", title: "pagecount, renamed" });
    try {
      const k = createKernel({ ...OPTIONS, strategy: "snapshot-test-rule" });
      const k2 = createKernel({ snapshot: k.snapshot() });
      expect([k2.strategy.id, k2.strategy.title, k2.strategy.freeSwapCacheAfterCow]).toEqual(["snapshot-test-rule", "pagecount, renamed", false]);
      const k3 = createKernel({ snapshot: createKernel({ ...OPTIONS, strategy: "pagecount", knobs: { freeSwapCacheAfterCow: false } }).snapshot() });
      expect(k3.strategy.knobs).toEqual(makeStrategy("pagecount", { freeSwapCacheAfterCow: false }).knobs);
      expect(k3.strategy.knobs.freeSwapCacheAfterCow).toBe(false);
    } finally {
      unregisterStrategy("snapshot-test-rule");
    }
  });

  it("refuses what it cannot save, and bytes that are not a snapshot, with the errno and why", () => {
    const k = createKernel({ ...OPTIONS });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write(a, 1);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const c = p.fork();
    c.read(a);
    const pfn = c.pfnAt(a)!;
    k.lockFolio(pfn);
    const r = p.access(false, a);
    expect(() => k.snapshot()).toThrow("EBUSY: snapshot: 1 access waits to be resumed (a snapshot cannot hold the program's Access objects)");
    k.unlockFolio(pfn);
    r.resume();
    let inside: unknown;
    const grab = () => { try { k.snapshot(); } catch (e) { inside = e; } };
    k.on("do_mmap", grab);
    p.mmap(null, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    k.off("do_mmap", grab);
    expect(String(inside)).toContain("EBUSY: snapshot: a call is under way");

    const custom = createKernel({ ...OPTIONS, strategy: { ...makeStrategy("mapcount"), id: "not-registered" } });
    expect(() => custom.snapshot()).toThrow('EINVAL: snapshot: strategy "not-registered" is not registered');

    const bytes = k.snapshot();
    expect(() => createKernel({ snapshot: new Uint8Array(100) })).toThrow("EINVAL: snapshot: these bytes are not a cowsim snapshot");
    expect(() => createKernel({ snapshot: bytes.subarray(0, bytes.length - 1) })).toThrow(/^EINVAL: snapshot: it ends early/);
    expect(() => createKernel({ snapshot: bytes, memory: "16M" })).toThrow("EINVAL: a snapshot holds the kernel's options: memory cannot come with it (only wasm can)");
    // another core's ABI: the header's fingerprint, changed in place (same length)
    const text = new TextDecoder().decode(bytes.subarray(0, 200));
    const at = text.indexOf('"abi":"') + 7;
    const other = bytes.slice();
    other[at] = other[at] === 0x30 ? 0x31 : 0x30;
    expect(() => createKernel({ snapshot: other })).toThrow(/^EINVAL: snapshot: made by a core with another ABI/);
    // and the original still restores, and the kernel it came from goes on
    expect(createKernel({ snapshot: bytes }).process(p.pid).read(a)).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });
});
