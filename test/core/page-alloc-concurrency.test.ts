// The buddy allocator under several worker threads on one shared memory: folios of mixed orders
// 0…9 allocated and freed at once by each. No frame is held by two threads at the same time
// (each stamps the frames it holds in a shared owner table by compare-exchange), every folio is
// naturally aligned, everything freed comes back — the bitmaps as fresh, every whole block
// takeable at order 9 — and the vmstat counters add up to exactly what the threads did.
import { describe, it, expect } from "vitest";
import type { Core } from "../../src/core/index.js";
import { makeCore, useWorkerPool } from "../helpers.js";
import { allocatorState, BLOCK } from "./alloc-state.js";

const WORKERS = 3;
const workerUrl = new URL("../workers/alloc-worker.mjs", import.meta.url);

interface WorkerReport {
  allocs: number[];
  fails: number[];
  misaligned: number;
  doubles: number;
  heldAtEnd: number;
}

const pool = useWorkerPool(workerUrl, WORKERS);

/** Runs mixedOrders on every worker, all released at the same moment. */
async function churn(core: Core, n: number, owner: SharedArrayBuffer): Promise<WorkerReport[]> {
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const shared = core.shared();
  const done = pool.map((w, i) => new Promise<WorkerReport>((resolve, reject) => {
    const id = i + 1;
    const onMessage = (m: { id: number; result?: WorkerReport; error?: string }) => {
      if (m.id !== id) return;
      w.off("message", onMessage);
      if (m.error) reject(new Error(m.error)); else resolve(m.result!);
    };
    w.on("message", onMessage);
    w.postMessage({ id, shared, gate, args: { id, seed: 0x9e3779b9 * id, n, owner } });
  }));
  while (Atomics.load(g, 1) < WORKERS) await new Promise((r) => setTimeout(r, 1));
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  return Promise.all(done);
}

describe("the buddy allocator under concurrent threads", () => {
  it("mixed orders 0…9 from several threads: no frame held twice, all aligned, all back, counters exact", async () => {
    const nframes = 8192; // 16 blocks
    const core = makeCore({ build: "release", frames: nframes });
    const fresh = allocatorState(core);
    const before = core.vmstat();
    const owner = new SharedArrayBuffer(4 * nframes);
    const reports = await churn(core, 40_000, owner);

    for (const r of reports) {
      expect(r.doubles).toBe(0);
      expect(r.misaligned).toBe(0);
      expect(r.heldAtEnd).toBeGreaterThan(0); // they held folios while the others ran
    }
    expect(new Int32Array(owner).every((v) => v === 0)).toBe(true);
    expect(core.freePages()).toBe(nframes - 1);
    expect(allocatorState(core)).toEqual(fresh);

    const sum = (f: (r: WorkerReport) => number) => reports.reduce((a, r) => a + f(r), 0);
    const small = sum((r) => r.allocs.slice(0, 9).reduce((a, c, order) => a + c * 2 ** order, 0));
    const thps = sum((r) => r.allocs[9]!);
    const fails = sum((r) => r.fails.reduce((a, c) => a + c, 0));
    const vm = core.vmstat();
    const delta = (c: string) => (vm[c] ?? 0) - (before[c] ?? 0);
    expect(delta("PGALLOC")).toBe(small);
    expect(delta("PGFREE")).toBe(small);
    expect(delta("THP_ALLOC")).toBe(thps);
    expect(delta("THP_FREE")).toBe(thps);
    expect(delta("PGALLOC_FAIL")).toBe(fails);
    // every order was taken, and the machine was full enough for some to fail
    for (let order = 0; order <= 9; order++) expect(sum((r) => r.allocs[order]!), `order ${order}`).toBeGreaterThan(0);
    expect(fails).toBeGreaterThan(0);

    // and every whole block but the zero page's is a THP again
    const blocks = new Set<number>();
    for (let b = 1; b < nframes / BLOCK; b++) blocks.add(core.ops.tryAllocPages(9)!);
    expect(blocks.size).toBe(nframes / BLOCK - 1);
    expect(core.ops.tryAllocPages(9)).toBeNull();
  });
});
