// The event stream: every decision of the kernel layer as a typed tracepoint, for on()/off(),
// "*", and the async iterator an embedder loops over.
import { describe, it, expect } from "vitest";
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_PAGEOUT, type KernelEvent, type TraceEvents,
} from "../src/index.js";
import { TRACE_NAMES, TraceBus } from "../src/trace/events.js";
import { BUILD } from "./helpers.js";

const PAGE = 4096;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const kernel = (strategy: "mapcount" | "pagecount" | "anon-exclusive" = "anon-exclusive") =>
  createKernel({ strategy, memory: "8M", build: BUILD, transient: { lruBatch: false } });

describe("tracepoints", () => {
  it("the trace log goes to its reader only while the reader's listeners are all its tracepoints have", () => {
    const k = createKernel({ strategy: "anon-exclusive", memory: "8M", build: BUILD, oracle: true });
    // the oracle stands for its own and its journal's listeners
    expect(k.trace.logReader).toBe(k.oracle);
    const other = () => {};
    for (const name of ["step", "access", "do_anonymous_page", "do_wp_page", "wp_page_copy"] as const) {
      k.on(name, other, { deferred: true });
      expect(k.trace.logReader).toBe(null);
      k.off(name, other);
      expect(k.trace.logReader).toBe(k.oracle);
    }
    // a listener of another tracepoint reads no log
    k.on("dup_mmap", other);
    expect(k.trace.logReader).toBe(k.oracle);
    k.on("*", other);
    expect(k.trace.logReader).toBe(null);
    k.off("*", other);
    expect(k.trace.logReader).toBe(k.oracle);
    k.trace.readLog(null);
    expect(k.trace.logReader).toBe(null);
    // without the oracle, nobody reads the log
    expect(createKernel({ strategy: "anon-exclusive", memory: "8M", build: BUILD, oracle: false }).trace.logReader).toBe(null);
  });

  it("TRACE_NAMES names each tracepoint once", () => {
    const twice = TRACE_NAMES.filter((n, i) => TRACE_NAMES.indexOf(n) !== i);
    expect(twice).toEqual([]);
  });

  it("'*' sees every decision of a fork and a COW, in order, named after the kernel's functions", () => {
    const k = kernel();
    const names: string[] = [];
    k.on("*", (name) => names.push(name));
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const c = p.fork();
    c.write(a, 2);
    expect(names).toEqual([
      "step", "mm_alloc", "step", "do_mmap", "step", "do_anonymous_page", "access",
      "step", "dup_mmap", "step", "do_wp_page", "wp_page_copy", "access",
    ]);
    expect(c.pid).toBe(2);
  });

  it("do_wp_page carries the strategy's verdict and rule; wp_page_copy the facts the oracle judged", () => {
    const k = kernel("pagecount");
    const verdicts: TraceEvents["do_wp_page"][] = [];
    const copies: TraceEvents["wp_page_copy"][] = [];
    k.on("do_wp_page", (e) => verdicts.push({ ...e }));
    k.on("wp_page_copy", (e) => copies.push({ ...e, facts: e.facts && { ...e.facts } }));
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pfn = p.pfnAt(a)!;
    const c = p.fork();
    p.write(a, 3);
    c.write(a, 4); // the last mapping: reused
    expect(verdicts.map((v) => [v.pid, v.pfn, v.reuse, v.unshare])).toEqual([[p.pid, pfn, false, false], [c.pid, pfn, true, false]]);
    expect(verdicts[0]!.rule).toMatch(/page_count/);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ pid: p.pid, address: a, pfn, zeroPage: false, unshare: false, facts: { mapcount: 2, swapcount: 0, snapshotRefs: 0, refcount: 2, ksm: false } });
    expect(copies[0]!.newPfn).toBe(p.pfnAt(a));
    expect(k.counters()).toMatchObject({ copies: copies.length, reuses: verdicts.filter((v) => v.reuse).length });
  });

  it("off() stops one subscriber; one that unsubscribes while an event is delivered does not cost the others theirs", () => {
    const k = kernel();
    const base = k.trace.listenerCount("do_mmap"); // the journal's
    const seen: string[] = [];
    const once = () => { seen.push("once"); k.off("do_mmap", once); };
    const always = () => seen.push("always");
    k.on("do_mmap", once);
    k.on("do_mmap", always);
    const p = k.spawn();
    p.mmap(null, PAGE, RW, PRIV);
    p.mmap(null, PAGE, RW, PRIV);
    k.off("do_mmap", always);
    p.mmap(null, PAGE, RW, PRIV);
    expect(seen).toEqual(["once", "always", "always"]);
    expect(k.trace.listenerCount("do_mmap")).toBe(base);
  });

  it("swap-out and swap-in, reclaim and the fork of a swap entry are tracepoints too", () => {
    const k = kernel("anon-exclusive");
    const names: string[] = [];
    const names2 = ["shrink_folio_list", "copy_nonpresent_pte", "do_swap_page", "madvise"] as const;
    for (const n of names2) k.on(n, () => names.push(n));
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.madvise(a, PAGE, MADV_PAGEOUT);
    const c = p.fork();
    expect(c.read(a)).toBe(1);
    expect(names).toEqual(["shrink_folio_list", "madvise", "copy_nonpresent_pte", "do_swap_page"]);
  });
});

describe("deferred subscribers", () => {
  it("listen without being immediate; an immediate one, or '*', makes the point immediate", () => {
    const bus = new TraceBus();
    const pt = bus.points.access;
    const later = () => {};
    const now = () => {};
    bus.on("access", later, { deferred: true });
    expect([pt.listening, pt.immediate]).toEqual([true, false]);
    bus.on("access", now);
    expect([pt.listening, pt.immediate]).toEqual([true, true]);
    bus.off("access", now);
    expect([pt.listening, pt.immediate]).toEqual([true, false]);
    const star = () => {};
    bus.on("*", star);
    expect(pt.immediate).toBe(true);
    bus.off("*", star);
    bus.off("access", later);
    expect([pt.listening, pt.immediate]).toEqual([false, false]);
    // the same function subscribed both ways: the immediate copy goes first
    bus.on("access", later);
    bus.on("access", later, { deferred: true });
    bus.off("access", later);
    expect([pt.fns.length, pt.deferred.length, pt.immediate]).toEqual([1, 1, false]);
  });

  it("get the events of a batched run after its core calls, in order, while the run stays in the core", () => {
    const k = kernel();
    const p = k.spawn();
    const a = p.mmap(null, 64 * PAGE, RW, PRIV);
    const seen: string[] = [];
    k.on("do_anonymous_page", (e) => seen.push(`anon ${(e.address - a) / PAGE}`), { deferred: true });
    k.on("access", (e) => seen.push(`access ${(e.address - a) / PAGE}=${e.value}`), { deferred: true });
    p.writeRange(a, 3, 7, 1);
    expect(seen).toEqual(["anon 0", "access 0=7", "anon 1", "access 1=8", "anon 2", "access 2=9"]);
    const c = p.fork();
    const copies: number[] = [];
    k.on("wp_page_copy", (e) => copies.push((e.address - a) / PAGE), { deferred: true });
    c.writeRange(a, 3, 1, 0);
    expect(copies).toEqual([0, 1, 2]);
    expect(k.core.vmstat().WP_CORE_COPY).toBe(3);
  });
});

describe("events(): the async iterator", () => {
  it("yields copies of the events asked for, in order, and unsubscribes when the loop ends", async () => {
    const k = kernel();
    const before = k.trace.listenerCount("*");
    const it = k.events("do_anonymous_page", "wp_page_copy");
    expect(k.trace.listenerCount("*")).toBe(before + 1);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    p.write(a + PAGE, 1);
    p.fork().write(a, 5);
    const got: KernelEvent[] = [];
    for await (const e of it) {
      got.push(e);
      if (got.length === 3) break;
    }
    expect(got.map((e) => e.name)).toEqual(["do_anonymous_page", "do_anonymous_page", "wp_page_copy"]);
    expect(got[0]!.event).toEqual({ pid: p.pid, address: a, pfn: expect.any(Number), zero: false });
    expect(k.trace.listenerCount("*")).toBe(before);
  });

  it("waits for events that have not happened yet", async () => {
    const k = kernel();
    const it = k.events("dup_mmap");
    const next = it.next();
    const p = k.spawn();
    setTimeout(() => p.fork(), 0);
    const r = await next;
    expect(r.done).toBe(false);
    expect(r.value).toMatchObject({ name: "dup_mmap", event: { pid: p.pid, child: p.pid + 1 } });
    await it.return!();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });
});
