// Transient references: with them on, page_count() COW (5.9–5.18) copies pages nobody else
// could observe; PageAnonExclusive COW (5.19+) does not, for the references it can drain.
import { describe, it, expect } from "vitest";
import { compareStrategies, PROT_READ } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE } from "./helpers.js";
import { BUILD } from "../helpers.js";

/** Four pages written, fork, the child exits, the parent writes them again. */
function forkExitRewrite(k: ReturnType<typeof kernel>): number[] {
  const p = k.spawn();
  const a = p.mmap(null, 4 * PAGE, RW, PRIV);
  for (let i = 0; i < 4; i++) p.write(a + i * PAGE, i + 1);
  p.fork().exit();
  for (let i = 0; i < 4; i++) p.write(a + i * PAGE, 10 + i);
  return [0, 1, 2, 3].map((i) => p.read(a + i * PAGE));
}

describe("per-CPU LRU batches", () => {
  it("give exactly four unnecessary COWs under pagecount and none under mapcount or anon-exclusive", () => {
    const r = compareStrategies(forkExitRewrite, { build: BUILD, memory: "8M", transient: { lruBatch: true }, checkInvariants: true });
    expect(r.mapcount.error).toBeUndefined();
    expect(r.pagecount.value).toEqual([10, 11, 12, 13]);
    // the batch holds a reference to each new page: page_count() == 2, so 5.9–5.18 copy
    expect(r.pagecount.counters.copies).toBe(4);
    expect(r.pagecount.counters.unnecessaryCow).toBe(4);
    expect(r.pagecount.findings.map((f) => f.kind)).toEqual(Array(4).fill("unnecessary-cow"));
    // ≤ 5.7 counts mappings, not references
    expect(r.mapcount.counters.copies).toBe(0);
    expect(r.mapcount.counters.reuses).toBe(4);
    // 5.19+: not exclusive after the fork, but wp_can_reuse_anon_folio() drains the batch first
    expect(r["anon-exclusive"].counters.copies).toBe(0);
    expect(r["anon-exclusive"].counters.reuses).toBe(4);
    expect(r["anon-exclusive"].counters.unnecessaryCow).toBe(0);
    expect(r["anon-exclusive"].counters.lruBatchDrained).toBeGreaterThan(0);
  });

  it("without them, no strategy copies", () => {
    const r = compareStrategies(forkExitRewrite, { build: BUILD, memory: "8M" });
    for (const s of Object.values(r)) expect(s.counters.copies).toBe(0);
  });

  it("the batch drains itself when full (15 folios before 6.x, 31 after), dropping its references", () => {
    const k = kernel("pagecount", { transient: { lruBatch: true } });
    const p = k.spawn();
    const a = p.mmap(null, 16 * PAGE, RW, PRIV);
    for (let i = 0; i < 15; i++) p.write(a + i * PAGE, 1);
    expect(k.core.x.lru_batch_count(k.core.ctx)).toBe(0); // the 15th filled and drained it
    p.write(a + 15 * PAGE, 1);
    expect(k.core.x.lru_batch_count(k.core.ctx)).toBe(1);
    expect(k.core.x.folio_ref_count(p.pfnAt(a + 15 * PAGE)!)).toBe(2);
    expect(k.core.x.folio_ref_count(p.pfnAt(a)!)).toBe(1);
  });
});

describe("isolation for migration / compaction", () => {
  it("a page isolated during the fault is copied by pagecount and, when not exclusive, by anon-exclusive too", () => {
    const run = (strategy: "mapcount" | "pagecount" | "anon-exclusive") => {
      const k = kernel(strategy);
      const p = k.spawn();
      const a = p.mmap(null, PAGE, RW, PRIV);
      p.write(a, 1);
      p.fork().exit();
      const pfn = k.isolate(p.pid, a);
      p.write(a, 2);
      k.putback(pfn);
      return k.counters();
    };
    expect(run("mapcount").unnecessaryCow).toBe(0);
    expect(run("pagecount").unnecessaryCow).toBe(1);
    // Linux 6.x cannot drain an isolation reference: a page that lost exclusivity is copied
    expect(run("anon-exclusive").unnecessaryCow).toBe(1);
    // but a PageAnonExclusive page is reused whatever references it has
    const k = kernel("anon-exclusive", { knobs: { mprotectWriteUpgrade: false } });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.mprotect(a, PAGE, PROT_READ); // still exclusive, now mapped R/O (no 6.2 upgrade)
    p.mprotect(a, PAGE, RW);
    const pfn = k.isolate(p.pid, a);
    p.write(a, 2);
    k.putback(pfn);
    expect(k.counters().reuses).toBe(1);
    expect(k.counters().copies).toBe(0);
  });

  it("random isolation is deterministic for a seed", () => {
    const run = (seed: number) => compareStrategies(forkExitRewrite, {
      build: BUILD, memory: "8M", strategies: ["pagecount"], transient: { isolation: 0.5 }, seed,
    }).pagecount.counters;
    expect(run(7)).toEqual(run(7));
    expect(run(7).isolations).toBe(run(7).unnecessaryCow);
    const counts = [1, 2, 3, 4, 5, 6].map((s) => run(s).isolations);
    expect(new Set(counts).size).toBeGreaterThan(1);
  });
});
