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

/** Translates one address of `mm`: the pfn, or TRANSLATE_FAULT (without the kind) when absent. */
export function tsTranslate(core: Core, pgdAddr: number, va: number): number {
  const i64 = core.i64;
  const ptBase = core.layout.ptBase;
  const idx = (shift: number) => Math.floor(va / 2 ** shift) % 512;
  let table = pgdAddr;
  for (const shift of [39, 30, 21]) {
    const e = Atomics.load(i64, (table >>> 3) + idx(shift));
    if ((e & PRESENT) === 0n) return C.TRANSLATE_FAULT;
    if (shift === 21 && (e & PSE) !== 0n) return Number((e & PFN_MASK) >> PFN_SHIFT) + idx(12);
    table = ptBase + Number((e & PFN_MASK) >> PFN_SHIFT) * 4096;
  }
  const pte = Atomics.load(i64, (table >>> 3) + idx(12));
  if ((pte & PRESENT) === 0n) return C.TRANSLATE_FAULT;
  return Number((pte & PFN_MASK) >> PFN_SHIFT);
}
