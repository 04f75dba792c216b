// The THP policy (/sys/kernel/mm/transparent_hugepage and MADV_[NO]HUGEPAGE) and the orders it
// allows a VMA — thp_vma_allowable_orders() of Linux 6.12, shown as smaps' THPeligible.
import { describe, it, expect } from "vitest";
import {
  MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, validateKernelOptions, type ThpOptions,
} from "../../src/index.js";
import { thp_vma_allowable_orders, thpPolicyOf, TVA_ENFORCE_SYSFS, TVA_IN_PF, TVA_SMAPS, THP_ORDERS_ALL_ANON } from "../../src/mm/huge_memory.js";
import { kernel, RW, PRIV, PAGE } from "./helpers.js";

const M = 1 << 20;
const BASE = 0x7f0000000000; // 2 MiB aligned

function eligible(thp: ThpOptions | undefined, length: number, advice: number[] = [], offset = 0, touch = true): boolean {
  const k = kernel("anon-exclusive", thp ? { thp } : {});
  const p = k.spawn();
  const a = p.mmap(BASE + offset, length, RW, PRIV | MAP_FIXED);
  for (const adv of advice) p.madvise(a, length, adv);
  if (touch) p.write(a, 1);
  return p.smaps().find((v) => v.start === a)!.thpEligible;
}

describe("THP policy", () => {
  it("Linux 6.12's defaults: enabled always, 2M inherit, mTHP never — a VMA that holds an aligned 2 MiB is eligible", () => {
    expect(eligible(undefined, 4 * M)).toBe(true);
    expect(eligible(undefined, 2 * M)).toBe(true);
    expect(eligible(undefined, 2 * M, [], PAGE)).toBe(false); // no aligned 2 MiB inside
    expect(eligible(undefined, 1 * M)).toBe(false);
  });

  it("each size follows its own setting: always works whatever the global setting, inherit follows it", () => {
    expect(eligible({ sizes: { "64K": "always" } }, 1 * M)).toBe(true);
    expect(eligible({ enabled: "never", sizes: { "64K": "always" } }, 1 * M)).toBe(true);
    expect(eligible({ enabled: "never" }, 4 * M)).toBe(false);
    expect(eligible({ sizes: { "2M": "never" } }, 4 * M)).toBe(false);
    expect(eligible({ sizes: { "2M": "never", "16K": "inherit" } }, 1 * M)).toBe(true);
  });

  it("madvise: only VM_HUGEPAGE VMAs; MADV_NOHUGEPAGE disables THP whatever the setting", () => {
    expect(eligible({ enabled: "madvise" }, 4 * M)).toBe(false);
    expect(eligible({ enabled: "madvise" }, 4 * M, [MADV_HUGEPAGE])).toBe(true);
    expect(eligible({ sizes: { "2M": "madvise" } }, 4 * M)).toBe(false);
    expect(eligible({ sizes: { "2M": "madvise" } }, 4 * M, [MADV_HUGEPAGE])).toBe(true);
    expect(eligible(undefined, 4 * M, [MADV_NOHUGEPAGE])).toBe(false);
    expect(eligible({ sizes: { "2M": "always" } }, 4 * M, [MADV_NOHUGEPAGE])).toBe(false);
    expect(eligible(undefined, 4 * M, [MADV_NOHUGEPAGE, MADV_HUGEPAGE])).toBe(true);
  });

  it("MADV_HUGEPAGE / MADV_NOHUGEPAGE split the VMA at the range's ends and merge it back (hugepage_madvise())", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(BASE, 8 * M, RW, PRIV | MAP_FIXED);
    p.madvise(a + 2 * M, 2 * M, MADV_NOHUGEPAGE);
    expect(p.smaps().map((v) => [(v.start - a) / M, (v.end - a) / M, v.thpEligible])).toEqual([[0, 2, true], [2, 4, false], [4, 8, true]]);
    p.madvise(a, 8 * M, MADV_HUGEPAGE);
    expect(p.maps().map((v) => [(v.start - a) / M, (v.end - a) / M, (v.flags & 0x20000000) !== 0])).toEqual([[0, 8, true]]);
  });

  it("shared anonymous memory is shmem, whose own THP policy is not modelled: never eligible", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    const a = p.mmap(BASE, 4 * M, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    expect(p.smaps()[0]!.thpEligible).toBe(false);
    void a;
  });

  it("a VMA without its anon_vma yet: eligible for a fault and smaps, not for khugepaged", () => {
    const k = kernel("anon-exclusive");
    const p = k.spawn();
    p.mmap(BASE, 4 * M, RW, PRIV | MAP_FIXED);
    const vma = p.vmas.lookup(BASE)!;
    expect(vma.anonVma).toBeNull();
    const all = THP_ORDERS_ALL_ANON;
    expect(thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_SMAPS | TVA_ENFORCE_SYSFS, all)).toBe(1 << 9);
    expect(thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, all)).toBe(1 << 9);
    expect(thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_ENFORCE_SYSFS, all)).toBe(0);
    p.write(BASE, 1);
    expect(thp_vma_allowable_orders(k.thp, vma, vma.flags, TVA_ENFORCE_SYSFS, all)).toBe(1 << 9);
  });

  it("outside a fault, the largest order with a whole aligned folio at the VMA's end, and every order below it", () => {
    const policy = thpPolicyOf({ sizes: { "16K": "always", "64K": "always", "1M": "always", "2M": "always" } }).policy!;
    const k = kernel("anon-exclusive", { thp: { sizes: { "16K": "always", "64K": "always", "1M": "always", "2M": "always" } } });
    const p = k.spawn();
    p.mmap(BASE + M, 2 * M, RW, PRIV | MAP_FIXED); // [1M, 3M): no aligned 2M, an aligned 1M at its end
    p.write(BASE + M, 1);
    const vma = p.vmas.lookup(BASE + M)!;
    expect(thp_vma_allowable_orders(policy, vma, vma.flags, TVA_ENFORCE_SYSFS, THP_ORDERS_ALL_ANON)).toBe((1 << 8) | (1 << 4) | (1 << 2));
    // a fault checks its own address, so every enabled order passes here
    expect(thp_vma_allowable_orders(policy, vma, vma.flags, TVA_IN_PF | TVA_ENFORCE_SYSFS, THP_ORDERS_ALL_ANON)).toBe((1 << 9) | (1 << 8) | (1 << 4) | (1 << 2));
  });

  it("bad settings are EINVAL, each named", () => {
    expect(validateKernelOptions({ thp: { enabled: "sometimes", sizes: { "8K": "always", "2M": "yes" }, useZeroPage: 1, defrag: "always" } }).problems.map((p) => p.message)).toEqual([
      "thp.defrag is no option of thp (enabled, sizes, useZeroPage)",
      'thp.enabled must be "always", "madvise" or "never", not "sometimes"',
      "thp.sizes.8K is no THP size of x86-64 (16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M)",
      'thp.sizes.2M must be "always", "inherit", "madvise" or "never", not "yes"',
      "thp.useZeroPage must be true or false, not 1",
    ]);
    expect(validateKernelOptions({ thp: "always" }).problems.map((p) => p.message)).toEqual(['thp must be { enabled, sizes, useZeroPage } (each may be left out), not "always"']);
  });
});
