// The oracle judges: a broken strategy's missed COW is found and explained, and every
// invariant fires on a state built to violate it.
import { describe, it, expect } from "vitest";
import { makeStrategy, type CowStrategy, C } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE } from "./helpers.js";

/** anon-exclusive, except that every write fault reuses the page: wrong on purpose. */
function reuseAlways(): CowStrategy {
  const base = makeStrategy("anon-exclusive");
  return {
    ...base,
    id: "reuse-always",
    title: "reuse every page (broken, for tests)",
    tracksAnonExclusive: false,
    wpReuse: () => ({ reuse: true, rule: "reuse-always: every page is reused (broken on purpose)" }),
  };
}

describe("a deliberately broken strategy", () => {
  it("makes the oracle report the missed COW and explain it step by step", () => {
    const k = kernel(reuseAlways(), { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    const c = p.fork();
    p.write(a, 2); // reuses the page the child still maps
    expect(c.read(a)).toBe(2); // the child observes the parent's write
    expect(k.counters().missedCow).toBe(1);
    const [f] = k.findings;
    expect(f).toMatchObject({ kind: "missed-cow", pid: c.pid, address: a, expected: 1, observed: 2 });
    const text = f!.chain.map((s) => `${s.n}. [step ${s.step}] pid ${s.pid} ${s.call}: ${s.fn} — ${s.what}`);
    expect(f!.chain.map((s) => s.fn)).toEqual(["do_anonymous_page", "dup_mmap", "do_wp_page", "store", "read"]);
    expect(text[0]).toMatch(/\[step 3\] pid 1 write\(0x[0-9a-f]+, 1\): do_anonymous_page — pid 1 faults 0x[0-9a-f]+ in: fresh exclusive pfn/);
    expect(text[1]).toMatch(/\[step 4\] pid 1 fork\(\): dup_mmap — pid 1 forks pid 2/);
    expect(text[2]).toMatch(/\[step 5\] pid 1 write\(0x[0-9a-f]+, 2\): do_wp_page — .*reuse-always: every page is reused/);
    expect(text[3]).toMatch(/\[step 5\] .*store — pid 1 stores 2 into pfn/);
    expect(text[4]).toMatch(/\[step 6\] pid 2 read\(0x[0-9a-f]+\): read — pid 2 reads 2 from pfn \d+, but must see 1/);
    expect(f!.chain.map((s) => s.n)).toEqual([1, 2, 3, 4, 5]);
    // the sweep of latent missed COWs sees the corrupted page too (in both processes)
    expect(k.latentMissedCows()).toEqual([{ pid: c.pid, address: a, pfn: p.pfnAt(a), holds: 2, expected: 1 }]);
  });
});

describe("every invariant fires on a state built to violate it", () => {
  function setup() {
    const k = kernel("anon-exclusive", { checkInvariants: false });
    const p = k.spawn();
    const a = p.mmap(null, 4 * PAGE, RW, PRIV);
    for (let i = 0; i < 4; i++) p.write(a + i * PAGE, i + 1);
    expect(k.checkInvariants()).toEqual([]);
    return { k, p, a, pfn: p.pfnAt(a)! };
  }
  const fired = (k: ReturnType<typeof setup>["k"]) => k.checkInvariants().map((v) => v.invariant);

  it("pte-valid: a PTE maps a free frame", () => {
    const { k, p, a } = setup();
    const free = k.core.allocPages(0);
    k.core.x.folio_put_refs(free, 1);
    k.core.x.ptep_set(k.core.ctx, p.mm, a + 3 * PAGE, BigInt(free) * 4096n + 0x67n);
    expect(fired(k)).toContain("pte-valid");
  });

  it("mapcount: the map count disagrees with the page tables", () => {
    const { k, pfn } = setup();
    k.core.x.folio_add_rmap_ptes(pfn, pfn, 1);
    expect(fired(k)).toEqual(["mapcount"]);
  });

  it("anon-exclusive-writable: a writable anonymous PTE on a page not marked exclusive", () => {
    const { k, pfn } = setup();
    k.core.x.ClearPageAnonExclusive(pfn);
    expect(fired(k)).toEqual(["anon-exclusive-writable"]);
  });

  it("refcount: fewer references than mappings", () => {
    const { k, pfn } = setup();
    k.core.x.folio_ref_sub_return(pfn, 1);
    expect(fired(k)).toEqual(["refcount"]);
  });

  it("refcount: a reference no one accounts for (a leaked GUP reference)", () => {
    const { k, p, a, pfn } = setup();
    const raw = k.core.gupFast(p.mm, a, 1, C.FOLL_GET); // behind the registry's back
    expect(raw.pfns).toEqual([pfn]);
    expect(k.checkInvariants().map((v) => v.detail)).toEqual([`pfn ${pfn}: refcount 2, but 1 (mappings + references the kernel and its users hold)`]);
    k.core.gupPut(raw.pfns, C.FOLL_GET);
    expect(fired(k)).toEqual([]);
  });

  it("rmap: a mapping the rmap walk cannot find", () => {
    const { k, pfn } = setup();
    k.core.x.folio_set_anon(pfn, k.core.x.folio_mapping_id(pfn), 12345);
    expect(fired(k)).toEqual(["rmap"]);
  });

  it("rss: a counter that disagrees with the page tables", () => {
    const { k, p } = setup();
    k.core.x.add_mm_counter(p.mm, C.MM_ANONPAGES, 1);
    expect(fired(k)).toEqual(["rss"]);
  });

  it("page-tables: nr_ptes that disagrees with the tables below the PGD", () => {
    const { k, p } = setup();
    const nrPtes = (k.core.layout.mmBase + p.mm * 64 + 12) >>> 2; // MmStruct.nr_ptes
    k.core.i32[nrPtes] = k.core.i32[nrPtes]! + 1;
    expect(fired(k)).toEqual(["page-tables"]);
  });

  it("a mapped page that holds what its process must not see is a latent missed COW, not an invariant", () => {
    const { k, p, a, pfn } = setup();
    k.core.setTag(pfn, 999);
    expect(fired(k)).toEqual([]);
    expect(k.latentMissedCows()).toEqual([{ pid: p.pid, address: a, pfn, holds: 999, expected: 1 }]);
  });

  it("no-leak: a frame still in use once every process has exited", () => {
    const { k, p } = setup();
    p.exit();
    k.drainLru();
    expect(fired(k)).toEqual([]);
    k.core.allocPages(0); // a reference nobody accounts for
    expect(fired(k)).toEqual(["no-leak"]);
  });

  it("no-leak: in any pageblock — the scan skips only the wholly free ones", () => {
    const { k, p } = setup();
    p.exit();
    k.drainLru();
    const blocks = Math.ceil(k.core.layout.nframes / C.HPAGE_PMD_NR);
    expect(blocks).toBeGreaterThan(2);
    const thp = k.core.allocPages(C.HPAGE_PMD_ORDER); // a whole block, from the top
    expect(Math.floor(thp / C.HPAGE_PMD_NR)).toBe(blocks - 1);
    expect(fired(k)).toEqual(["no-leak"]);
    expect(k.checkInvariants()[0]!.detail).toContain(`pfn ${thp} `);
  });

  it("with checkInvariants on, the first violating step throws", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(null, PAGE, RW, PRIV);
    p.write(a, 1);
    k.core.x.ClearPageAnonExclusive(p.pfnAt(a)!);
    expect(() => p.read(a)).toThrow(/invariant violated after read\(0x[0-9a-f]+\):\n  anon-exclusive-writable/);
  });
});
