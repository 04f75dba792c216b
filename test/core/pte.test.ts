// Round trip of every PTE/PMD kind and every bit helper, against the Wasm core itself.
import { describe, it, expect, beforeAll } from "vitest";
import { C, PTE_BITS, SWP_BITS, SWP_TYPES, PTE_KINDS, type Core } from "../../src/core/index.js";
import { makeCore } from "../helpers.js";

let core: Core;
const u64 = (v: bigint) => BigInt.asUintN(64, v);
beforeAll(() => { core = makeCore({ frames: 64 }); });

const bitOf = (b: number) => 1n << BigInt(b);
const kindName = (k: number) => PTE_KINDS.find((x) => x.value === k)?.short;

describe("present entries", () => {
  const prot = bitOf(C._PAGE_BIT_PRESENT) | bitOf(C._PAGE_BIT_USER);

  it("pfn_pte / pte_pfn round-trip the whole 40-bit PFN field", () => {
    for (const pfn of [0n, 1n, 0x12345n, (1n << 40n) - 1n]) {
      const pte = u64(core.x.pfn_pte(pfn, prot));
      expect(u64(core.x.pte_pfn(pte))).toBe(pfn);
      expect(core.x.pte_present(pte)).toBe(1);
      expect(kindName(core.x.pte_kind(pte, 1))).toBe("PRESENT");
    }
    // a PFN wider than the field is cut, never spills into the flags
    expect(u64(core.x.pfn_pte(1n << 40n, prot))).toBe(prot);
  });

  it("every bit helper sets or clears exactly its bit", () => {
    const base = u64(core.x.pfn_pte(0x42n, prot));
    const cases: [string, (p: bigint) => bigint, (p: bigint) => number, number, boolean][] = [
      ["mkwrite", core.x.pte_mkwrite, core.x.pte_write, C._PAGE_BIT_RW, true],
      ["mkyoung", core.x.pte_mkyoung, core.x.pte_young, C._PAGE_BIT_ACCESSED, true],
      ["mkspecial", core.x.pte_mkspecial, core.x.pte_special, C._PAGE_BIT_SPECIAL, true],
      ["mksoft_dirty", core.x.pte_mksoft_dirty, core.x.pte_soft_dirty, C._PAGE_BIT_SOFT_DIRTY, true],
    ];
    for (const [, mk, test, b] of cases) {
      const on = u64(mk(base));
      expect(on ^ base).toBe(bitOf(b));
      expect(test(on)).toBe(1);
      expect(test(base)).toBe(0);
    }
    const all = base | bitOf(C._PAGE_BIT_RW) | bitOf(C._PAGE_BIT_DIRTY) | bitOf(C._PAGE_BIT_ACCESSED) |
      bitOf(C._PAGE_BIT_UFFD_WP) | bitOf(C._PAGE_BIT_SOFT_DIRTY);
    expect(u64(core.x.pte_wrprotect(all)) ^ all).toBe(bitOf(C._PAGE_BIT_RW));
    expect(u64(core.x.pte_mkclean(all)) ^ all).toBe(bitOf(C._PAGE_BIT_DIRTY));
    expect(u64(core.x.pte_mkold(all)) ^ all).toBe(bitOf(C._PAGE_BIT_ACCESSED));
    expect(u64(core.x.pte_clear_uffd_wp(all)) ^ all).toBe(bitOf(C._PAGE_BIT_UFFD_WP));
    expect(u64(core.x.pte_clear_soft_dirty(all)) ^ all).toBe(bitOf(C._PAGE_BIT_SOFT_DIRTY));
  });

  it("pte_mkdirty also sets soft-dirty and pte_mkuffd_wp write-protects, as on x86", () => {
    const base = u64(core.x.pfn_pte(7n, prot | bitOf(C._PAGE_BIT_RW)));
    expect(u64(core.x.pte_mkdirty(base)) ^ base).toBe(bitOf(C._PAGE_BIT_DIRTY) | bitOf(C._PAGE_BIT_SOFT_DIRTY));
    const wp = u64(core.x.pte_mkuffd_wp(base));
    expect(core.x.pte_uffd_wp(wp)).toBe(1);
    expect(core.x.pte_write(wp)).toBe(0);
  });

  it("PROT_NONE is present to the kernel only", () => {
    const pte = u64(core.x.pfn_pte(9n, bitOf(C._PAGE_BIT_PROTNONE)));
    expect(core.x.pte_present(pte)).toBe(1);
    expect(core.x.pte_protnone(pte)).toBe(1);
    expect(core.x.pte_access_permitted(pte, 0)).toBe(0);
    expect(kindName(core.x.pte_kind(pte, 1))).toBe("PROTNONE");
  });

  it("pte_access_permitted needs present, user, and write for writes", () => {
    const ro = u64(core.x.pfn_pte(3n, prot));
    expect(core.x.pte_access_permitted(ro, 0)).toBe(1);
    expect(core.x.pte_access_permitted(ro, 1)).toBe(0);
    expect(core.x.pte_access_permitted(u64(core.x.pte_mkwrite(ro)), 1)).toBe(1);
    const kernelOnly = u64(core.x.pfn_pte(3n, bitOf(C._PAGE_BIT_PRESENT) | bitOf(C._PAGE_BIT_RW)));
    expect(core.x.pte_access_permitted(kernelOnly, 0)).toBe(0);
  });

  it("pte_modify keeps PFN, A/D, special, soft-dirty and uffd-wp and replaces the protection", () => {
    const keep = bitOf(C._PAGE_BIT_ACCESSED) | bitOf(C._PAGE_BIT_DIRTY) | bitOf(C._PAGE_BIT_SOFT_DIRTY) |
      bitOf(C._PAGE_BIT_UFFD_WP) | bitOf(C._PAGE_BIT_SPECIAL);
    const old = u64(core.x.pfn_pte(0x77n, prot | bitOf(C._PAGE_BIT_RW) | keep));
    const none = u64(core.x.pte_modify(old, bitOf(C._PAGE_BIT_PROTNONE)));
    expect(none).toBe(u64(core.x.pfn_pte(0x77n, bitOf(C._PAGE_BIT_PROTNONE) | keep)));
    const back = u64(core.x.pte_modify(none, prot));
    expect(back).toBe(u64(core.x.pfn_pte(0x77n, prot | keep)));
  });

  it("a PMD leaf keeps PS through pte_modify and is classified as a leaf", () => {
    const pmd = u64(core.x.pmd_mkhuge(core.x.pfn_pte(512n, prot)));
    expect(core.x.pmd_leaf(pmd)).toBe(1);
    expect(core.x.pmd_leaf(u64(core.x.pte_modify(pmd, prot | bitOf(C._PAGE_BIT_RW))))).toBe(1);
    expect(kindName(core.x.pte_kind(pmd, 0))).toBe("PRESENT");
    const table = u64(core.x.pfn_pte(5n, prot | bitOf(C._PAGE_BIT_RW) | bitOf(C._PAGE_BIT_ACCESSED)));
    expect(kindName(core.x.pte_kind(table, 0))).toBe("TABLE");
    expect(core.x.pmd_leaf(table)).toBe(0);
  });
});

describe("non-present entries", () => {
  it("swap entries round-trip type and offset, and keep their three software bits", () => {
    for (const [type, offset] of [[0, 1n], [5, 0x3ffffn], [C.MAX_SWAPFILES - 1, (1n << 50n) - 1n]] as const) {
      const e = u64(core.x.swp_entry(type, offset));
      expect(core.x.swp_type(e)).toBe(type);
      expect(u64(core.x.swp_offset(e))).toBe(offset);
      expect(core.x.pte_present(e)).toBe(0);
      expect(core.x.is_swap_pte(e)).toBe(1);
      expect(core.x.non_swap_entry(e)).toBe(0);
      expect(kindName(core.x.pte_kind(e, 1))).toBe("SWAP");
      const pte = u64(core.x.swp_entry_to_pte(e));
      const marked = u64(core.x.pte_swp_mksoft_dirty(core.x.pte_swp_mkuffd_wp(core.x.pte_swp_mkexclusive(pte))));
      expect(marked ^ pte).toBe(bitOf(C._PAGE_BIT_SWP_EXCLUSIVE) | bitOf(C._PAGE_BIT_SWP_UFFD_WP) | bitOf(C._PAGE_BIT_SWP_SOFT_DIRTY));
      expect(core.x.pte_swp_exclusive(marked)).toBe(1);
      expect(core.x.pte_swp_uffd_wp(marked)).toBe(1);
      expect(core.x.pte_swp_soft_dirty(marked)).toBe(1);
      // pte_to_swp_entry() drops the software bits, type and offset survive
      expect(u64(core.x.pte_to_swp_entry(marked))).toBe(e);
      expect(u64(core.x.pte_swp_clear_exclusive(marked)) ^ marked).toBe(bitOf(C._PAGE_BIT_SWP_EXCLUSIVE));
      expect(u64(core.x.pte_swp_clear_uffd_wp(marked)) ^ marked).toBe(bitOf(C._PAGE_BIT_SWP_UFFD_WP));
      expect(u64(core.x.pte_swp_clear_soft_dirty(marked)) ^ marked).toBe(bitOf(C._PAGE_BIT_SWP_SOFT_DIRTY));
      // no software bit reads as present or PROT_NONE
      expect(core.x.pte_present(marked)).toBe(0);
    }
  });

  it("migration entries: read, readable-exclusive and write", () => {
    const pfn = 0x1234n;
    const r = u64(core.x.make_readable_migration_entry(pfn));
    const rx = u64(core.x.make_readable_exclusive_migration_entry(pfn));
    const w = u64(core.x.make_writable_migration_entry(pfn));
    for (const e of [r, rx, w]) {
      expect(core.x.is_migration_entry(e)).toBe(1);
      expect(core.x.is_pfn_swap_entry(e)).toBe(1);
      expect(core.x.non_swap_entry(e)).toBe(1);
      expect(u64(core.x.swp_offset(e))).toBe(pfn);
      expect(kindName(core.x.pte_kind(e, 1))).toBe("MIGRATION");
    }
    expect([r, rx, w].map((e) => core.x.is_readable_migration_entry(e))).toEqual([1, 0, 0]);
    expect([r, rx, w].map((e) => core.x.is_readable_exclusive_migration_entry(e))).toEqual([0, 1, 0]);
    expect([r, rx, w].map((e) => core.x.is_writable_migration_entry(e))).toEqual([0, 0, 1]);
    expect([r, rx, w].map((e) => core.x.swp_type(e))).toEqual([C.SWP_MIGRATION_READ, C.SWP_MIGRATION_READ_EXCLUSIVE, C.SWP_MIGRATION_WRITE]);
  });

  it("device-private, device-exclusive and hwpoison entries", () => {
    const pfn = 99n;
    const dpr = u64(core.x.make_readable_device_private_entry(pfn));
    const dpw = u64(core.x.make_writable_device_private_entry(pfn));
    expect([dpr, dpw].map((e) => core.x.is_device_private_entry(e))).toEqual([1, 1]);
    expect([dpr, dpw].map((e) => core.x.is_writable_device_private_entry(e))).toEqual([0, 1]);
    expect(kindName(core.x.pte_kind(dpw, 1))).toBe("DEVICE_PRIVATE");
    const der = u64(core.x.make_readable_device_exclusive_entry(pfn));
    const dew = u64(core.x.make_writable_device_exclusive_entry(pfn));
    expect([der, dew].map((e) => core.x.is_device_exclusive_entry(e))).toEqual([1, 1]);
    expect([der, dew].map((e) => core.x.is_writable_device_exclusive_entry(e))).toEqual([0, 1]);
    expect(kindName(core.x.pte_kind(der, 1))).toBe("DEVICE_EXCLUSIVE");
    const hw = u64(core.x.make_hwpoison_entry(pfn));
    expect(core.x.is_hwpoison_entry(hw)).toBe(1);
    expect(u64(core.x.swp_offset(hw))).toBe(pfn);
    expect(kindName(core.x.pte_kind(hw, 1))).toBe("HWPOISON");
  });

  it("PTE markers: uffd-wp, poisoned, guard", () => {
    const wp = u64(core.x.make_pte_marker(C.PTE_MARKER_UFFD_WP));
    const poison = u64(core.x.make_pte_marker(C.PTE_MARKER_POISONED));
    const guard = u64(core.x.make_pte_marker(C.PTE_MARKER_GUARD));
    for (const m of [wp, poison, guard]) {
      expect(core.x.is_pte_marker(m)).toBe(1);
      expect(core.x.swp_type(m)).toBe(C.SWP_PTE_MARKER);
      expect(kindName(core.x.pte_kind(m, 1))).toBe("MARKER");
      expect(core.x.pte_present(m)).toBe(0);
      expect(m).not.toBe(0n);
    }
    expect([wp, poison, guard].map((m) => core.x.pte_marker_uffd_wp(m))).toEqual([1, 0, 0]);
    expect([wp, poison, guard].map((m) => core.x.is_poisoned_swp_entry(m))).toEqual([0, 1, 0]);
    expect([wp, poison, guard].map((m) => core.x.is_guard_swp_entry(m))).toEqual([0, 0, 1]);
    expect(core.x.pte_marker_get(u64(core.x.make_pte_marker(C.PTE_MARKER_UFFD_WP | C.PTE_MARKER_GUARD))))
      .toBe(C.PTE_MARKER_UFFD_WP | C.PTE_MARKER_GUARD);
  });

  it("the swap types are numbered as Linux 6.12 numbers them", () => {
    expect(C.MAX_SWAPFILES).toBe(32 - 4 - 3 - 1 - 1);
    const order = ["SWP_HWPOISON", "SWP_MIGRATION_READ", "SWP_MIGRATION_READ_EXCLUSIVE", "SWP_MIGRATION_WRITE",
      "SWP_DEVICE_WRITE", "SWP_DEVICE_READ", "SWP_DEVICE_EXCLUSIVE_WRITE", "SWP_DEVICE_EXCLUSIVE_READ", "SWP_PTE_MARKER"];
    expect(SWP_TYPES.filter((t) => t.name !== "MAX_SWAPFILES").map((t) => t.name)).toEqual(order);
    expect(SWP_TYPES.filter((t) => t.name !== "MAX_SWAPFILES").map((t) => t.value)).toEqual(order.map((_, i) => C.MAX_SWAPFILES + i));
  });
});

describe("the documented layout is the layout the code uses", () => {
  it("each present bit in the table is the bit its helper sets", () => {
    const helpers: Record<string, (p: bigint) => bigint> = {
      W: core.x.pte_mkwrite, A: core.x.pte_mkyoung, SP: core.x.pte_mkspecial, SD: core.x.pte_mksoft_dirty, PS: core.x.pmd_mkhuge,
    };
    const checked = PTE_BITS.filter((b) => helpers[b.short]);
    for (const b of checked) expect(u64(helpers[b.short]!(0n))).toBe(bitOf(b.value));
    expect(checked.map((b) => b.short)).toEqual(["W", "A", "PS", "SP", "SD"]);
    expect(PTE_BITS.map((b) => b.short)).toEqual(["P", "W", "U", "A", "D", "PS", "PN", "SP", "UW", "SD"]);
  });

  it("each swap software bit in the table is the bit its helper sets", () => {
    const helpers: Record<string, (p: bigint) => bigint> = {
      SD: core.x.pte_swp_mksoft_dirty, UW: core.x.pte_swp_mkuffd_wp, EX: core.x.pte_swp_mkexclusive,
    };
    for (const b of SWP_BITS) expect(u64(helpers[b.short]!(0n))).toBe(bitOf(b.value));
  });
});
