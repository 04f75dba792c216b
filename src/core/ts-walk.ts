/**
 * A page-table walk in plain TypeScript over the same shared memory: the benchmark baseline
 * the Wasm translation is measured against. It is correct under concurrent writers because it
 * reads each 64-bit entry with one Atomics.load on a BigInt64Array (two 32-bit halves would
 * tear), and that is exactly what makes it slow: every entry becomes a BigInt.
 */
import { C } from "./abi.generated.js";
import type { Core } from "./core.js";

const PRESENT = 1n << BigInt(C._PAGE_BIT_PRESENT);
const PSE = 1n << BigInt(C._PAGE_BIT_PSE);
const PFN_MASK = ((1n << BigInt(C.PTE_PFN_BITS)) - 1n) << BigInt(C.PTE_PFN_SHIFT);
const PFN_SHIFT = BigInt(C.PTE_PFN_SHIFT);
const FAULT = C.TRANSLATE_FAULT;

/** The table (byte address) a non-leaf entry points at. */
function tableOf(ptBase: number, e: bigint): number {
  return ptBase + Number((e & PFN_MASK) >> PFN_SHIFT) * 4096;
}

/** Translates one address of `mm`: the pfn, or TRANSLATE_FAULT (without the kind) when absent. */
export function tsTranslate(core: Core, pgdAddr: number, va: number): number {
  const i64 = core.i64;
  const ptBase = core.layout.ptBase;
  const vpn = Math.floor(va / 4096);
  const pteIdx = vpn % 512;
  let rest = (vpn - pteIdx) / 512;
  const pmdIdx = rest % 512;
  rest = (rest - pmdIdx) / 512;
  const pudIdx = rest % 512;
  const pgdIdx = ((rest - pudIdx) / 512) % 512;

  const pgd = Atomics.load(i64, (pgdAddr >>> 3) + pgdIdx);
  if ((pgd & PRESENT) === 0n) return FAULT;
  const pud = Atomics.load(i64, (tableOf(ptBase, pgd) >>> 3) + pudIdx);
  if ((pud & PRESENT) === 0n) return FAULT;
  const pmd = Atomics.load(i64, (tableOf(ptBase, pud) >>> 3) + pmdIdx);
  if ((pmd & PRESENT) === 0n) return FAULT;
  if ((pmd & PSE) !== 0n) return Number((pmd & PFN_MASK) >> PFN_SHIFT) + pteIdx;
  const pte = Atomics.load(i64, (tableOf(ptBase, pmd) >>> 3) + pteIdx);
  if ((pte & PRESENT) === 0n) return FAULT;
  return Number((pte & PFN_MASK) >> PFN_SHIFT);
}
