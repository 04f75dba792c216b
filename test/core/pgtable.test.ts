// Page tables: walks with and without allocation, pool exhaustion, freeing, mm slots, translation.
import { describe, it, expect } from "vitest";
import { C, tsTranslate } from "../../src/core/index.js";
import { CowsimError } from "../../src/errno.js";
import { makeCore, snapshot, stateDiff, populate, pteAt, BASE, GB, P, U, W, A, D } from "../helpers.js";

const pte = (pfn: number, flags: number) => BigInt(pfn) * 4096n + BigInt(flags);

describe("walks", () => {
  it("a first entry allocates PUD, PMD and PTE tables; neighbours share them", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    expect(core.x.tables_missing_at(mm, BASE, 3)).toBe(3);
    expect(core.x.ptep_set(core.ctx, mm, BASE, pte(5, P | U | A))).toBe(0);
    expect(core.x.mm_nr_ptes(mm)).toBe(3);
    expect(pteAt(core, mm, BASE)).toBe(pte(5, P | U | A));
    expect(core.x.tables_missing_at(mm, BASE + 4096, 3)).toBe(0);
    core.x.ptep_set(core.ctx, mm, BASE + 4096, pte(6, P | U));
    expect(core.x.mm_nr_ptes(mm)).toBe(3);
    // 2 MiB away: a new PTE table only; 1 GiB away: PMD + PTE; 512 GiB away: PUD + PMD + PTE
    expect(core.x.tables_missing_at(mm, BASE + 2 * 2 ** 20, 3)).toBe(1);
    expect(core.x.tables_missing_at(mm, BASE + GB, 3)).toBe(2);
    expect(core.x.tables_missing_at(mm, BASE + 512 * GB, 3)).toBe(3);
    expect(core.x.mm_count_tables(mm)).toBe(3);
    // walking without allocation finds nothing elsewhere
    expect(core.x.ptep_addr(mm, BASE + GB)).toBe(0);
    expect(core.x.ptep_get(mm, BASE + GB)).toBe(0n);
  });

  it("a PMD leaf is found at PMD level; PTE walks stop there", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    const huge = BigInt.asUintN(64, core.x.pmd_mkhuge(pte(512, P | U | A)));
    expect(core.x.pmdp_set(core.ctx, mm, BASE, huge)).toBe(0);
    expect(BigInt.asUintN(64, core.x.pmdp_get(mm, BASE + 12345))).toBe(huge);
    expect(core.x.ptep_addr(mm, BASE)).toBe(0);
    expect(core.x.ptep_set(core.ctx, mm, BASE + 4096, pte(3, P))).toBe(-C.EEXIST);
    // translation resolves the subpage
    expect(core.translate(mm, [BASE, BASE + 7 * 4096 + 5])).toEqual(Uint32Array.from([512, 519]));
  });

  it("ENOMEM when the pool runs out leaves every table as it was", () => {
    const core = makeCore({ pageTables: 5 }); // PGD + PUD + PMD + PTE + one more
    const mm = core.mmAlloc();
    expect(core.x.ptep_set(core.ctx, mm, BASE, pte(5, P | U))).toBe(0);
    expect(core.tablesAvailable()).toBe(1);
    // needs two (PMD + PTE): fails without installing the one it could have had
    const before = snapshot(core);
    expect(core.x.ptep_set(core.ctx, mm, BASE + GB, pte(6, P | U))).toBe(-C.ENOMEM);
    expect(stateDiff(before, snapshot(core))).toBeNull();
    expect(core.tablesAvailable()).toBe(1);
    // one table is enough 2 MiB away
    expect(core.x.ptep_set(core.ctx, mm, BASE + 2 ** 21, pte(7, P | U))).toBe(0);
    expect(core.tablesAvailable()).toBe(0);
    expect(core.vmstat().PGTABLE_ALLOC_FAIL).toBe(1);
  });

  it("free_pgd_range frees empty tables wholly inside [floor, ceiling) only", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1);
    populate(core, mm, BASE + 2 ** 21, 1);
    expect(core.x.mm_nr_ptes(mm)).toBe(4); // PUD, PMD, 2 PTE tables
    // a table that still maps something stays, even inside the range
    expect(core.freePgdRange(mm, BASE, BASE + 4 * 2 ** 21)).toBe(0);
    core.zapPageRange(mm, BASE + 2 ** 21, BASE + 2 ** 21 + 4096);
    // the range must cover the table's whole 2 MiB
    expect(core.freePgdRange(mm, BASE + 2 ** 21 + 4096, BASE + 4 * 2 ** 21)).toBe(0);
    expect(core.freePgdRange(mm, BASE + 2 ** 21, BASE + 4 * 2 ** 21)).toBe(1);
    expect(core.x.mm_nr_ptes(mm)).toBe(3);
    core.zapPageRange(mm, BASE, BASE + 4096);
    expect(core.freePgdRange(mm, 0, 2 ** 47)).toBe(3);
    expect(core.x.mm_nr_ptes(mm)).toBe(0);
    expect(core.x.mm_count_tables(mm)).toBe(0);
    core.mmFree(mm);
  });
});

describe("mm slots", () => {
  it("mm_free refuses while tables or pages remain, then returns slot and PGD", () => {
    const core = makeCore({ maxMms: 2 });
    const tables = core.tablesAvailable();
    const a = core.mmAlloc();
    const b = core.mmAlloc();
    expect(() => core.mmAlloc()).toThrow(CowsimError);
    populate(core, a, BASE, 3);
    expect(() => core.mmFree(a)).toThrow(/EBUSY/);
    core.zapPageRange(a, BASE, BASE + 3 * 4096);
    core.freePgdRange(a, 0, 2 ** 47);
    core.mmFree(a);
    core.mmFree(b);
    expect(core.tablesAvailable()).toBe(tables);
    expect(() => core.mmFree(b)).toThrow(/EINVAL/);
    expect(core.mmAlloc()).toBe(b); // the slot freed last is reused first
  });
});

describe("translation", () => {
  it("Wasm batch translation and the TypeScript walk agree on every address", () => {
    const core = makeCore({ frames: 8192, scratchBytes: 4096 }); // small scratch: several batches
    const mm = core.mmAlloc();
    populate(core, mm, BASE, 1000);
    populate(core, mm, BASE + 3 * GB, 10);
    const addrs: number[] = [];
    for (let i = 0; i < 1200; i++) addrs.push(BASE + i * 4096 + (i % 7));
    for (let i = 0; i < 20; i++) addrs.push(BASE + 3 * GB + i * 4096);
    addrs.push(0, 2 ** 47 - 4096);
    const wasm = core.translate(mm, addrs);
    const pgd = core.x.mm_pgd_addr(mm) >>> 0;
    let present = 0;
    addrs.forEach((a, i) => {
      const ts = tsTranslate(core, pgd, a);
      const w = wasm[i]!;
      if (w & C.TRANSLATE_FAULT) expect(ts).toBe(C.TRANSLATE_FAULT);
      else { expect(ts).toBe(w); present++; }
    });
    expect(present).toBe(1010);
    expect(wasm[1000]! & ~C.TRANSLATE_FAULT).toBe(C.PTE_KIND_NONE);
  });

  it("reports the kind of a non-present entry", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    core.x.ptep_set(core.ctx, mm, BASE, BigInt.asUintN(64, core.x.make_pte_marker(C.PTE_MARKER_GUARD)));
    core.x.ptep_set(core.ctx, mm, BASE + 4096, BigInt.asUintN(64, core.x.make_readable_migration_entry(9n)));
    core.x.ptep_set(core.ctx, mm, BASE + 8192, pte(9, PROTNONE_ONLY));
    const t = core.translate(mm, [BASE, BASE + 4096, BASE + 8192]);
    expect(Array.from(t)).toEqual([C.PTE_KIND_MARKER, C.PTE_KIND_MIGRATION, C.PTE_KIND_PROTNONE].map((k) => (C.TRANSLATE_FAULT | k) >>> 0));
  });
});
const PROTNONE_ONLY = 1 << C._PAGE_BIT_PROTNONE;
void W; void D;
