// The reference judge: its verdicts come from the page tables and the GUP users, not from the
// counts the oracle reads — so when those counts are wrong, the two judges disagree.
import { describe, it, expect } from "vitest";
import { ReferenceJudge, MAP_SHARED, MAP_ANONYMOUS } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE } from "../mm/helpers.js";

describe("the reference judge", () => {
  it("judges a copy necessary while another process maps the page, and names the observer", () => {
    const k = kernel("anon-exclusive");
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const old = p.pfnAt(a)!;
    const c = p.fork();
    c.write(a, 2);
    expect(judge.verdicts).toEqual([{ pid: c.pid, address: a, pfn: old, verdict: "necessary", observers: [`pid ${p.pid} maps it at 0x${a.toString(16)}`] }]);
    expect([judge.necessary, judge.unnecessary, judge.wrong]).toEqual([1, 0, 0]);
  });

  it("counts a pipe holding the page as an observer", () => {
    const k = kernel("pagecount");
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const pipe = p.vmsplice(a, PAGE);
    p.mprotect(a, PAGE, 1 /* PROT_READ */);
    p.mprotect(a, PAGE, RW);
    p.write(a, 2); // page_count() 2 (the pipe): copied
    expect(judge.verdicts.map((v) => [v.verdict, v.observers])).toEqual([["necessary", [`the pipe of pid ${p.pid} holds it`]]]);
    expect(pipe.read()).toEqual([1]);
  });

  it("counts another process's swap entry whose slot caches the page as an observer", () => {
    const k = kernel("pagecount", { swap: "8M" });
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.madvise(a, PAGE, 21 /* MADV_PAGEOUT */);
    const c = p.fork(); // both map the swap entry
    expect(p.read(a)).toBe(1); // swapped in: in the swap cache, the child's entry still names the slot
    p.write(a, 2);
    expect(judge.verdicts.map((v) => [v.verdict, v.observers.map((o) => o.replace(/0x[0-9a-f]+/, "ADDR").replace(/slot \d+/, "slot S"))]))
      .toEqual([["necessary", [`pid ${c.pid}'s swap entry at ADDR names slot S, which it caches`]]]);
    expect(c.read(a)).toBe(1);
  });

  it("judges a copy nobody else can see unnecessary (page_count() COW and the swap cache)", () => {
    const k = kernel("pagecount", { swap: "8M" });
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.madvise(a, PAGE, 21 /* MADV_PAGEOUT */);
    expect(p.read(a)).toBe(1);
    p.write(a, 2);
    expect(judge.verdicts.map((v) => v.verdict)).toEqual(["unnecessary"]);
    expect(k.counters().unnecessaryCow).toBe(1);
  });

  it("judges a copy away from the copier's long-term pin wrong, the zero page included", () => {
    const k = kernel("mapcount");
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, 2 * PAGE, RW, PRIV);
    p.write(a, 1);
    const mr = p.rdmaRegister(a, 2 * PAGE, false); // page 1 is the zero page
    const c = p.fork();
    p.write(a, 2); // mapcount 2: copied away from the adapter
    p.write(a + PAGE, 3); // a fresh page replaces the pinned zero page
    expect(judge.verdicts.map((v) => [v.pid, v.address, v.verdict])).toEqual([[p.pid, a, "wrong"], [p.pid, a + PAGE, "wrong"]]);
    expect(k.counters().wrongCow).toBe(2);
    void c; void mr;
  });

  it("disagrees with the oracle when the core's map count lies", () => {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const judge = new ReferenceJudge(k);
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const c = p.fork();
    const pfn = p.pfnAt(a)!;
    k.core.x.folio_remove_rmap_ptes(pfn, pfn, 1); // mapcount 1, though two PTEs map the page
    c.write(a, 2);
    expect(k.counters()).toMatchObject({ necessaryCow: 0, unnecessaryCow: 1 });
    expect([judge.necessary, judge.unnecessary]).toEqual([1, 0]);
  });

  it("does not judge shared mappings (nothing is copied) and stops when detached", () => {
    const k = kernel("anon-exclusive");
    const before = k.trace.listenerCount("wp_page_copy");
    const judge = new ReferenceJudge(k);
    expect(k.trace.listenerCount("wp_page_copy")).toBe(before + 1);
    const p = k.spawn();
    const s = p.mmap(null, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(s, 1);
    p.fork().write(s, 2);
    expect(judge.verdicts).toEqual([]);
    judge.detach();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    p.fork().write(a, 2);
    expect(judge.verdicts).toEqual([]);
    expect(k.trace.listenerCount("wp_page_copy")).toBe(before);
  });
});
