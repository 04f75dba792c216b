// Several worker threads on one shared memory: no update is lost by the atomic paths, and the
// controls with plain loads and stores show that these tests can fail.
import { describe, it, expect } from "vitest";
import { C, type Core, type SharedCore } from "../../src/core/index.js";
import { makeCore, useWorkerPool, populate, pfnAt, BASE } from "../helpers.js";

const WORKERS = 2;
const workerUrl = new URL("../workers/core-worker.mjs", import.meta.url);
let nextId = 0;

const pool = useWorkerPool(workerUrl, WORKERS);

/** Runs one task on each worker, all released at the same moment. */
async function runTasks<T>(core: Core, jobs: { task: string; args: object }[]): Promise<T[]> {
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const shared: SharedCore = core.shared();
  const done = jobs.map(({ task, args }, i) => new Promise<T>((resolve, reject) => {
    const w = pool[i]!;
    const id = nextId++;
    const onMessage = (m: { id: number; result?: T; error?: string }) => {
      if (m.id !== id) return;
      w.off("message", onMessage);
      if (m.error) reject(new Error(m.error)); else resolve(m.result as T);
    };
    w.on("message", onMessage);
    w.postMessage({ id, shared, task, args, gate });
  }));
  while (Atomics.load(g, 1) < jobs.length) await new Promise((r) => setTimeout(r, 1));
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0);
  return Promise.all(done);
}

/** The same task on every worker. */
function runAll<T>(core: Core, task: string, args: (i: number) => object): Promise<T[]> {
  return runTasks<T>(core, pool.map((_, i) => ({ task, args: args(i) })));
}

describe("concurrent updates over one shared memory", () => {
  it("atomic reference counts lose no update; plain increments do", async () => {
    const core = makeCore({ build: "release" });
    const pfn = core.allocPages(0);
    const n = 1_000_000;
    await runAll(core, "refAdd", () => ({ pfn, n }));
    expect(core.x.folio_ref_count(pfn)).toBe(1 + WORKERS * n);

    // the control: the same increments without atomics lose some, so the check above can fail
    let lost = 0;
    for (let attempt = 0; attempt < 5 && lost === 0; attempt++) {
      const q = core.allocPages(0);
      await runAll(core, "refAddRacy", () => ({ pfn: q, n }));
      lost = 1 + WORKERS * n - core.x.folio_ref_count(q);
    }
    expect(lost).toBeGreaterThan(0);
  });

  it("pins of a large folio are counted exactly in _pincount and _refcount", async () => {
    const core = makeCore({ build: "release" });
    const thp = core.allocPages(9);
    const n = 300_000;
    await runAll(core, "pin", () => ({ pfn: thp, n }));
    expect(core.x.folio_pincount(thp)).toBe(WORKERS * n);
    expect(core.x.folio_ref_count(thp)).toBe(1 + WORKERS * n);
    // order 0: the bias accumulates exactly as well
    const pfn = core.allocPages(0);
    await runAll(core, "pin", () => ({ pfn, n: 1000 }));
    expect(core.x.folio_ref_count(pfn)).toBe(1 + WORKERS * 1000 * C.GUP_PIN_COUNTING_BIAS);
  });

  it("PTE compare-exchange loops lose no update; read-then-store does", async () => {
    const core = makeCore({ build: "release" });
    const mm = core.mmAlloc();
    core.x.ptep_set(core.ctx, mm, BASE, 0n);
    core.x.ptep_set(core.ctx, mm, BASE + 4096, 0n);
    const n = 100_000;
    await runAll(core, "pteCas", () => ({ mm, va: BASE, n }));
    expect(core.x.ptep_get(mm, BASE)).toBe(BigInt(WORKERS * n) << 12n);
    let lost = 0n;
    for (let attempt = 0; attempt < 5 && lost === 0n; attempt++) {
      core.x.ptep_set(core.ctx, mm, BASE + 4096, 0n);
      await runAll(core, "pteRacy", () => ({ mm, va: BASE + 4096, n }));
      lost = (BigInt(WORKERS * n) << 12n) - core.x.ptep_get(mm, BASE + 4096);
    }
    expect(lost).toBeGreaterThan(0n);
  });

  it("a large folio's per-page map counts lose no update between a 512-page batch and single pages (the map-count bit lock); plain increments do", async () => {
    const core = makeCore({ build: "release", frames: 4096 });
    const batches = 2000, singles = 400_000;
    const run = (thp: number, racy: boolean) => runTasks(core, [
      { task: racy ? "mapBatchesRacy" : "mapBatches", args: { folio: thp, page: thp, nr: 512, n: batches } },
      { task: racy ? "mapBatchesRacy" : "mapBatches", args: { folio: thp, page: thp + 7, nr: 1, n: singles } },
    ]);
    const thp = core.allocPages(9);
    await run(thp, false);
    for (const i of [0, 6, 8, 511]) expect(core.x.page_mapcount_raw(thp + i)).toBe(batches - 1);
    expect(core.x.page_mapcount_raw(thp + 7)).toBe(batches + singles - 1);
    expect(core.x.folio_mapcount(thp)).toBe(512 * batches + singles);
    let lost = 0;
    for (let attempt = 0; attempt < 5 && lost === 0; attempt++) {
      const q = core.allocPages(9);
      await run(q, true);
      lost = batches + singles - 1 - core.x.page_mapcount_raw(q + 7);
    }
    expect(lost).toBeGreaterThan(0);
  });

  it("the frame allocator never hands one frame to two threads", async () => {
    const core = makeCore({ build: "release", frames: 8192 });
    await runAll(core, "churn", () => ({ n: 20_000 }));
    expect(core.freePages()).toBe(8191);
    const lists = await runAll<number[]>(core, "alloc", () => ({ n: 4000 }));
    const all = lists.flat();
    expect(all).toHaveLength(8000);
    expect(new Set(all).size).toBe(8000);
    expect(core.freePages()).toBe(191);
    for (const pfn of all) expect(core.x.folio_ref_count(pfn)).toBe(1);
  });

  it("GUP-fast racing the A1–A4 clearing side never pins a page that is not exclusive", async () => {
    const core = makeCore({ build: "release" });
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1);
    const pfn = pfnAt(core, mm, BASE);
    const stop = new SharedArrayBuffer(4);
    const [g, s] = await runTasks<Record<string, number>>(core, [
      { task: "gupLoop", args: { mm, va: BASE, n: 300_000, stop } },
      { task: "shareLoop", args: { mm, va: BASE, pfn, n: 300_000, stop } },
    ]) as [{ pinned: number; backoffs: number; violations: number }, { shared: number; busy: number }];
    expect(g.violations).toBe(0);
    expect(g.pinned).toBeGreaterThan(0);
    expect(s.shared).toBeGreaterThan(0);
    expect(core.x.folio_ref_count(pfn)).toBe(1); // every pin released
  });
});

