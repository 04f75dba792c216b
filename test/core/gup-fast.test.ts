// GUP-fast backs off in each of its cases, driven step by step against the clearing side (A1–A4).
import { describe, it, expect } from "vitest";
import { C, type Core } from "../../src/core/index.js";
import { makeCore, populate, pfnAt, pteAt, BASE, PROT_READ } from "../helpers.js";

const PIN = C.FOLL_PIN;
const RO_LONGTERM_PIN = C.FOLL_PIN | C.FOLL_LONGTERM;

function setup(pages = 1): { core: Core; mm: number; pfn: number } {
  const core = makeCore();
  const mm = core.mmAlloc();
  populate(core, mm, BASE, pages);
  return { core, mm, pfn: pfnAt(core, mm, BASE) };
}

describe("GUP-fast takes pages", () => {
  it("pins a run of exclusive pages, counting the bias and setting MMF_HAS_PINNED", () => {
    const { core, mm } = setup(8);
    expect(core.x.mm_flags(mm) & C.MMF_HAS_PINNED).toBe(0);
    const got = core.gupFast(mm, BASE, 8, PIN | C.FOLL_WRITE);
    expect(got.reason).toBe(C.GUPF_OK);
    expect(got.pfns).toHaveLength(8);
    for (const pfn of got.pfns) expect(core.x.folio_ref_count(pfn)).toBe(1 + C.GUP_PIN_COUNTING_BIAS);
    expect(core.x.mm_flags(mm) & C.MMF_HAS_PINNED).toBe(C.MMF_HAS_PINNED);
    core.gupPut(got.pfns, PIN);
    for (const pfn of got.pfns) expect(core.x.folio_ref_count(pfn)).toBe(1);
    expect(core.vmstat().GUP_FAST_PINNED).toBe(8);
  });

  it("stops at the first page it cannot take and reports why", () => {
    const { core, mm } = setup(3);
    core.zapPageRange(mm, BASE + 2 * 4096, BASE + 3 * 4096);
    const got = core.gupFast(mm, BASE, 3, C.FOLL_GET);
    expect(got.pfns).toHaveLength(2);
    expect(got.reason).toBe(C.GUPF_NOT_PRESENT);
    const none = core.gupFast(mm, BASE + 2 ** 30, 1, C.FOLL_GET);
    expect(none).toEqual({ pfns: [], reason: C.GUPF_NO_TABLE });
  });

  it("refuses the zero page (special) and PROT_NONE, which only the slow path handles", () => {
    const core = makeCore();
    const mm = core.mmAlloc();
    core.x.do_anonymous_pages(core.ctx, mm, BASE, BASE + 4096, 1, 0, PROT_READ, 0);
    expect(core.gupFast(mm, BASE, 1, PIN).reason).toBe(C.GUPF_SPECIAL);
    populate(core, mm, BASE + 4096, 1);
    core.changeProtection(mm, BASE + 4096, BASE + 8192, 1 << C._PAGE_BIT_PROTNONE, 0);
    expect(core.gupFast(mm, BASE + 4096, 1, PIN).reason).toBe(C.GUPF_NOT_PRESENT);
  });

  it("rejects bad arguments with EINVAL", () => {
    const { core, mm } = setup();
    expect(() => core.gupFast(mm, BASE + 1, 1, PIN)).toThrow(/EINVAL/);
    expect(() => core.gupFast(mm, BASE, 1, PIN | C.FOLL_GET)).toThrow(/EINVAL/);
    expect(() => core.gupFast(mm, BASE, 0, PIN)).toThrow(/EINVAL/);
    expect(() => core.gupFast(99, BASE, 1, PIN)).toThrow(/EINVAL/);
  });
});

describe("GUP-fast backs off (seed 001: B1–B5)", () => {
  it("B2: FOLL_WRITE on a read-only PTE", () => {
    const { core, mm, pfn } = setup();
    core.x.ptep_set_wrprotect(mm, BASE);
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN | C.FOLL_WRITE)).toBe(C.GUPF_NOT_PERMITTED);
    expect(core.x.folio_ref_count(pfn)).toBe(1); // nothing grabbed
  });

  it("B4: the PTE changed between the read and the re-check (A1 cleared it meanwhile)", () => {
    const { core, mm, pfn } = setup();
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK); // B1–B3
    expect(core.x.folio_ref_count(pfn)).toBe(1 + C.GUP_PIN_COUNTING_BIAS); // grabbed
    const old = core.x.ptep_get_and_clear(mm, BASE); // A1, e.g. try_to_unmap()
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_PTE_CHANGED); // B4
    expect(core.x.folio_ref_count(pfn)).toBe(1); // grab undone
    // the clearing side now sees no pin (A2) and may mark the page shared (A3)
    expect(core.x.folio_try_share_anon_rmap_pte(pfn, pfn)).toBe(0);
    core.x.ptep_set(core.ctx, mm, BASE, BigInt.asUintN(64, core.x.pte_wrprotect(old))); // A4
    expect(core.x.PageAnonExclusive(pfn)).toBe(0);
  });

  it("B4 also catches a change of the PMD (the page table itself replaced)", () => {
    const { core, mm } = setup();
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, C.FOLL_GET)).toBe(C.GUPF_OK);
    const pmd = BigInt.asUintN(64, core.x.pmdp_get(mm, BASE));
    core.x.pmdp_set(core.ctx, mm, BASE, BigInt.asUintN(64, core.x.pte_mkold(pmd)));
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_PTE_CHANGED);
  });

  it("B5: a R/O pin of a page that is no longer PageAnonExclusive, the PTE unchanged (KSM's case)", () => {
    const { core, mm, pfn } = setup();
    core.x.ptep_set_wrprotect(mm, BASE); // exclusive page mapped R/O: no PTE change follows
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK); // B1 B3
    // the clearing side: A1 clear, A2 check pins — it sees ours and must back off
    const old = core.x.ptep_get_and_clear(mm, BASE);
    expect(core.x.folio_try_share_anon_rmap_pte(pfn, pfn)).toBe(-C.EBUSY);
    core.x.ptep_set(core.ctx, mm, BASE, old); // A4 restores the same PTE
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_OK); // the pin stands: page still exclusive
    expect(core.x.PageAnonExclusive(pfn)).toBe(1);
    core.gupPut([pfn], PIN);

    // the other order: the clearing side completes A1–A4 before GUP-fast's B3
    const ksmSide = () => {
      const e = core.x.ptep_get_and_clear(mm, BASE); // A1
      expect(core.x.folio_try_share_anon_rmap_pte(pfn, pfn)).toBe(0); // A2 A3
      core.x.ptep_set(core.ctx, mm, BASE, e); // A4: same value, so B4 cannot notice
    };
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK);
    core.gupPut([pfn], PIN); // (restart with the interleaving we want)
    ksmSide();
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_OK);
    expect(core.x.gup_fast_pte_finish(core.ctx)).toBe(C.GUPF_MUST_UNSHARE); // B5
    expect(core.x.folio_ref_count(pfn)).toBe(1);
  });

  it("B5 does not apply to FOLL_GET, nor to a writable PTE", () => {
    const { core, mm, pfn } = setup();
    core.x.ClearPageAnonExclusive(pfn);
    core.x.ptep_set_wrprotect(mm, BASE);
    expect(core.gupFast(mm, BASE, 1, C.FOLL_GET).reason).toBe(C.GUPF_OK);
    expect(core.gupFast(mm, BASE, 1, RO_LONGTERM_PIN).reason).toBe(C.GUPF_MUST_UNSHARE);
  });

  it("FOLL_PIN backs off entirely while fork write-protects (write_protect_seq odd or changed)", () => {
    const { core, mm, pfn } = setup(4);
    core.x.mm_write_protect_seq_inc(mm); // fork in progress
    expect(core.gupFast(mm, BASE, 4, PIN)).toEqual({ pfns: [], reason: C.GUPF_SEQ_RETRY });
    core.x.mm_write_protect_seq_inc(mm);
    expect(core.gupFast(mm, BASE, 4, C.FOLL_GET).reason).toBe(C.GUPF_OK); // FOLL_GET ignores it
    expect(core.x.folio_ref_count(pfn)).toBe(2);
  });

  it("a folio being freed (count frozen at zero) cannot be grabbed (B3)", () => {
    const { core, mm, pfn } = setup();
    expect(core.x.folio_ref_freeze(pfn, 1)).toBe(1);
    expect(core.x.gup_fast_pte_begin(core.ctx, mm, BASE, PIN)).toBe(C.GUPF_GRAB_FAILED);
    core.x.folio_ref_unfreeze(pfn, 1);
  });

  it("a PMD-mapped THP: one grab for all pages wanted from it, and B5 on its head", () => {
    const core = makeCore({ frames: 2048 });
    const mm = core.mmAlloc();
    const thp = core.allocPages(9);
    core.x.folio_add_new_anon_rmap(thp, 1, 0, 0); // not exclusive
    const pmd = BigInt.asUintN(64, core.x.pmd_mkhuge(BigInt(thp) * 4096n + BigInt(PROT_READ | (1 << C._PAGE_BIT_ACCESSED))));
    core.x.pmdp_set(core.ctx, mm, BASE, pmd);
    expect(core.gupFast(mm, BASE + 510 * 4096, 2, C.FOLL_GET).pfns).toEqual([thp + 510, thp + 511]);
    expect(core.x.folio_ref_count(thp)).toBe(3);
    expect(core.gupFast(mm, BASE, 1, PIN).reason).toBe(C.GUPF_MUST_UNSHARE);
    core.x.SetPageAnonExclusive(thp);
    expect(core.gupFast(mm, BASE, 4, PIN).reason).toBe(C.GUPF_OK);
    expect(core.x.folio_pincount(thp)).toBe(4);
    void pteAt;
  });
});

describe("Core.gupFastPteBegin() / gupFastPteFinish(): the halves with what B1 read kept outside the context", () => {
  it("B4 still compares against its own page when another GUP-fast ran between the halves", () => {
    const { core, mm, pfn } = setup(2);
    const b = core.gupFastPteBegin(mm, BASE, PIN);
    if (!("pfn" in b)) throw new Error(`begin backed off: ${b.reason}`);
    expect(b.pfn).toBe(pfn);
    const other = core.gupFast(mm, BASE + 4096, 1, PIN); // overwrites the core's one begun page
    expect(other.reason).toBe(C.GUPF_OK);
    core.x.ptep_set_wrprotect(mm, BASE);
    expect(core.gupFastPteFinish(b)).toBe(C.GUPF_PTE_CHANGED);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
    core.gupPut(other.pfns, PIN);
  });

  it("passes B4 and B5 holding exactly one grab; a fork meanwhile (write_protect_seq) undoes a FOLL_PIN", () => {
    const { core, mm, pfn } = setup();
    const b = core.gupFastPteBegin(mm, BASE, PIN);
    if (!("pfn" in b)) throw new Error(`begin backed off: ${b.reason}`);
    expect(core.gupFastPteFinish(b)).toBe(C.GUPF_OK);
    expect(core.x.folio_ref_count(pfn)).toBe(1 + C.GUP_PIN_COUNTING_BIAS);
    core.gupPut([pfn], PIN);
    const again = core.gupFastPteBegin(mm, BASE, PIN);
    if (!("pfn" in again)) throw new Error(`begin backed off: ${again.reason}`);
    core.x.mm_write_protect_seq_inc(mm);
    core.x.mm_write_protect_seq_inc(mm);
    expect(core.gupFastPteFinish(again)).toBe(C.GUPF_SEQ_RETRY);
    expect(core.x.folio_ref_count(pfn)).toBe(1);
    expect(core.gupFastPteBegin(mm, BASE + 2 ** 30, PIN)).toEqual({ reason: C.GUPF_NO_TABLE });
  });
});
