// Random operations over mTHP-backed memory — writes, reads, fork, exit, partial MADV_DONTNEED,
// MADV_PAGEOUT, splits, the deferred split shrinker, pins — with every invariant (large-folio
// accounting included) checked after every step, and every read checked against a model of
// what each process must see; the oracle and the reference judge must agree on every copy.
import { describe, it } from "vitest";
import fc from "fast-check";
import { createKernel, ReferenceJudge, MAP_FIXED, MADV_DONTNEED, MADV_PAGEOUT, FOLL_PIN, FOLL_LONGTERM, type StrategyId, type Kernel } from "../../src/index.js";
import { BUILD } from "../helpers.js";
import { RW, PRIV, PAGE } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? 60);
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const BASE = 0x7f0000000000;
const PAGES = 64; // 256 KiB: four 64 KiB folios, or more smaller ones

type Op =
  | { op: "write"; proc: number; page: number; value: number }
  | { op: "read"; proc: number; page: number }
  | { op: "fork"; proc: number }
  | { op: "exit"; proc: number }
  | { op: "dontneed"; proc: number; page: number; n: number }
  | { op: "pageout"; proc: number; page: number; n: number }
  | { op: "split"; proc: number; page: number; n: number }
  | { op: "scan" }
  | { op: "pin"; proc: number; page: number }
  | { op: "unpin" };

const proc = fc.nat(5);
const page = fc.nat(PAGES - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("write" as const), proc, page, value: fc.integer({ min: 1, max: 1e6 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("read" as const), proc, page }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("fork" as const), proc }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), proc }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("dontneed" as const), proc, page, n: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("pageout" as const), proc, page, n: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("split" as const), proc, page, n: fc.integer({ min: 1, max: 32 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: "scan" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("pin" as const), proc, page }) },
  { weight: 1, arbitrary: fc.constant({ op: "unpin" as const }) },
);

function run(strategy: StrategyId, ops: Op[], lruBatch = false): void {
  const k: Kernel = createKernel({
    strategy, memory: "2M", swap: "2M", build: BUILD, maxProcesses: 8, transient: { lruBatch },
    thp: { sizes: { "16K": "always", "32K": "always", "64K": "always", "2M": "never" } },
  });
  const judge = new ReferenceJudge(k);
  const first = k.spawn();
  first.mmap(BASE, PAGES * PAGE, RW, PRIV | MAP_FIXED);
  const procs = [{ p: first, model: new Array<number>(PAGES).fill(0) }];
  const pins: { release(): void }[] = [];
  const at = (i: number) => procs[i % procs.length]!;
  const range = (pg: number, n: number) => [BASE + pg * PAGE, Math.min(n, PAGES - pg) * PAGE] as const;
  ops.forEach((o, step) => {
    switch (o.op) {
      case "write": { const t = at(o.proc); t.p.write(BASE + o.page * PAGE, o.value); t.model[o.page] = o.value; break; }
      case "read": {
        const t = at(o.proc);
        const v = t.p.read(BASE + o.page * PAGE);
        if (v !== t.model[o.page]) throw new Error(`step ${step + 1} ${JSON.stringify(o)}: read ${v}, must be ${t.model[o.page]}`);
        break;
      }
      case "fork": {
        if (procs.length >= 6) break;
        const t = at(o.proc);
        procs.push({ p: t.p.fork(), model: [...t.model] });
        break;
      }
      case "exit": {
        if (procs.length < 2) break;
        const i = o.proc % procs.length;
        // pins of an exiting process go with it
        procs[i]!.p.exit();
        procs.splice(i, 1);
        break;
      }
      case "dontneed": {
        const t = at(o.proc);
        const [a, len] = range(o.page, o.n);
        t.p.madvise(a, len, MADV_DONTNEED);
        for (let i = 0; i < len / PAGE; i++) t.model[o.page + i] = 0;
        break;
      }
      case "pageout": { const [a, len] = range(o.page, o.n); at(o.proc).p.madvise(a, len, MADV_PAGEOUT); break; }
      case "split": { const [a, len] = range(o.page, o.n); k.splitHugePages(at(o.proc).p.pid, a, a + len); break; }
      case "scan": k.deferredSplitScan(); break;
      case "pin": {
        const t = at(o.proc);
        if (pins.length >= 4) break;
        try {
          pins.push(t.p.pinUserPages(BASE + o.page * PAGE, 1, FOLL_PIN | FOLL_LONGTERM));
        } catch {
          // ENOMEM of an unshare fault with memory full: a pin may fail
        }
        break;
      }
      case "unpin": { const pin = pins.shift(); try { pin?.release(); } catch { /* its process exited */ } break; }
    }
    const v = k.checkInvariants();
    if (v.length) throw new Error(`step ${step + 1} ${JSON.stringify(o)}: ${v.map((x) => `${x.invariant}: ${x.detail}`).join("; ")}`);
    const c = k.counters();
    const oracle = [c.necessaryCow, c.unnecessaryCow, c.wrongCow].join("/");
    const reference = [judge.necessary, judge.unnecessary, judge.wrong].join("/");
    if (oracle !== reference) throw new Error(`step ${step + 1} ${JSON.stringify(o)}: the judges disagree on a copy: oracle ${oracle}, reference ${reference}`);
    const bad = k.findings.filter((f) => f.kind === "missed-cow" || (strategy === "anon-exclusive" && f.kind === "wrong-cow"));
    if (bad.length) throw new Error(`step ${step + 1} ${JSON.stringify(o)}: ${bad[0]!.summary}`);
  });
  for (const t of procs) for (let i = 0; i < PAGES; i++) {
    if (t.p.read(BASE + i * PAGE) !== t.model[i]) throw new Error(`at the end pid ${t.p.pid} page ${i}: ${t.p.read(BASE + i * PAGE)}, must be ${t.model[i]}`);
  }
  for (const pin of pins) { try { pin.release(); } catch { /* gone with its process */ } }
  for (const t of procs) t.p.exit();
  k.drainLru();
  const v = k.checkInvariants();
  if (v.length) throw new Error(`after teardown: ${v.map((x) => `${x.invariant}: ${x.detail}`).join("; ")}`);
  if (k.core.freePages() !== k.core.layout.nframes - 1) throw new Error(`frames left after teardown: ${k.core.layout.nframes - 1 - k.core.freePages()}`);
}

describe.each(["anon-exclusive", "pagecount"] as const)("random operations over mTHP under %s", (strategy) => {
  it("keep every invariant and every process's contents; every frame comes back", () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => run(strategy, ops)), { numRuns: RUNS, seed: SEED });
  });
});

describe("random operations over mTHP with per-CPU LRU batches", () => {
  it("a folio waiting in a batch holds a reference: splits fail then, and nothing else changes", () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => run("anon-exclusive", ops, true)), { numRuns: RUNS, seed: SEED + 1 });
  });
});
