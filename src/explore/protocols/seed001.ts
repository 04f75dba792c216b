/**
 * The protocol of "mm: fix PageAnonExclusive clearing racing with concurrent RCU GUP-fast"
 * (Linux 6.0, 088b8aa537c2), as one description of its steps and barriers from which the
 * litmus programs are generated (litmus/seed001/*.litmus, by scripts/gen-seed001-litmus.ts) and
 * against which the Wasm core's annotations are checked (test/explore/seed001.test.ts): each
 * step and barrier names the function of assembly/ that performs it.
 *
 * The clearing side (P0) is __folio_try_share_anon_rmap() with its caller (KSM's
 * write_protect_page(), try_to_unmap_one(), try_to_migrate_one()):
 *   (A1) clear the PTE; (A2) check the folio is not pinned; (A3) clear PageAnonExclusive;
 *   (A4) restore the PTE — never writable — or install what replaces it.
 * The pinning side (P1) is GUP-fast's gup_fast_pte_range():
 *   (B1) read the PTE; (B2) with FOLL_WRITE, back off unless it is writable; (B3) pin the page;
 *   (B4) re-read the PTE and back off if it changed; (B5) if the PTE is not writable, back off
 *   unless the page is PageAnonExclusive.
 * The bad outcome — the one the barriers exist to forbid — is both succeeding: P0 marks the page
 * possibly shared while P1 holds a pin on it (`exists (0:shared=1 /\ 1:pinned=1)`).
 *
 * Values: the PTE is 0 (cleared), 1 (present, writable), 2 (present, read-only) or 3 (a swap
 * or migration entry: not present); the
 * refcount starts at 1 (the mapping) and a pin adds GUP_PIN_COUNTING_BIAS (1024), so
 * folio_maybe_dma_pinned() is `refcount >= 1024`; PageAnonExclusive is 1 until A3.
 */

export type StepId = "A1" | "A2" | "A3" | "A4" | "B1" | "B2" | "B3" | "B4" | "B5";
export type BarrierId = "A1-A2" | "A3-A4" | "B3-B4" | "B4-B5";

/** Where the Wasm core performs a step or a barrier: a function of an assembly/ file and a text in its body. */
export interface WasmAnchor { readonly file: string; readonly fn: string; readonly marker: string }

/** One step of the protocol, A1–A4 or B1–B5. */
export interface Step {
  readonly id: StepId;
  /** The kernel function that performs it. */
  readonly kernel: string;
  /** The primitive as linux-kernel.def spells it, and why this one. */
  readonly access: string;
  readonly wasm: readonly WasmAnchor[];
}

/** One barrier of the fix, with the one it pairs with. */
export interface Barrier {
  readonly id: BarrierId;
  readonly fence: "smp_mb()" | "smp_mb__after_atomic()" | "smp_rmb()";
  /** What the kernel calls it besides (the seed: "conceptually a smp_wmb()"). */
  readonly aka?: string;
  readonly kernel: string;
  readonly pairsWith: BarrierId;
  /** What it forbids, in the seed's words. */
  readonly buys: string;
  /** The function whose body has the fence (`atomic.fence()`) between `after` and `before`. */
  readonly wasm: { readonly file: string; readonly fn: string; readonly after: string | null; readonly before: string | null };
}

/** The steps, clearing side first, each with where the Wasm core performs it. */
export const STEPS: readonly Step[] = [
  { id: "A1", kernel: "ptep_clear_flush() / ptep_get_and_clear()", access: "xchg_relaxed(): an exchange that orders nothing by itself (the seed: \"there might not be a memory barrier after clearing/invalidating the PTE\")",
    wasm: [{ file: "assembly/swap_state.ts", fn: "try_to_unmap_one", marker: "// (A1)" }, { file: "assembly/migrate.ts", fn: "try_to_migrate_one", marker: "// (A1)" }] },
  { id: "A2", kernel: "folio_maybe_dma_pinned() in __folio_try_share_anon_rmap()", access: "atomic_read() of the refcount",
    wasm: [{ file: "assembly/rmap.ts", fn: "folio_try_share_anon_rmap_pte", marker: "folio_maybe_dma_pinned(" }] },
  { id: "A3", kernel: "ClearPageAnonExclusive()", access: "atomic_dec(): ClearPageAnonExclusive() is clear_bit(), an atomic that returns nothing and orders nothing",
    wasm: [{ file: "assembly/rmap.ts", fn: "folio_try_share_anon_rmap_pte", marker: "ClearPageAnonExclusive(" }] },
  { id: "A4", kernel: "set_pte_at(): a PTE that is not writable, or the old one back (-EBUSY)", access: "WRITE_ONCE()",
    wasm: [{ file: "assembly/swap_state.ts", fn: "try_to_unmap_one", marker: "// (A4)" }, { file: "assembly/migrate.ts", fn: "try_to_migrate_one", marker: "// (A4)" }] },
  { id: "B1", kernel: "ptep_get() in gup_fast_pte_range()", access: "READ_ONCE()",
    wasm: [{ file: "assembly/gup.ts", fn: "ptePinGrab", marker: "// (B1)" }] },
  { id: "B2", kernel: "pte_access_permitted() with FOLL_WRITE", access: "a test of B1's value",
    wasm: [{ file: "assembly/gup.ts", fn: "ptePinGrab", marker: "// (B2)" }] },
  { id: "B3", kernel: "try_grab_folio_fast(): folio_ref_add() of the pin", access: "atomic_add(): folio_ref_add() returns nothing and orders nothing",
    wasm: [{ file: "assembly/gup.ts", fn: "ptePinGrab", marker: "// (B3)" }] },
  { id: "B4", kernel: "the PTE re-read of gup_fast_pte_range()", access: "READ_ONCE()",
    wasm: [{ file: "assembly/gup.ts", fn: "ptePinFinish", marker: "// (B4)" }] },
  { id: "B5", kernel: "gup_must_unshare(): PageAnonExclusive()", access: "READ_ONCE() (test_bit())",
    wasm: [{ file: "assembly/gup.ts", fn: "ptePinFinish", marker: "// (B5)" }, { file: "assembly/gup.ts", fn: "mustUnshare", marker: "PageAnonExclusive(" }] },
];

/** The four barriers of the fix. */
export const BARRIERS: readonly Barrier[] = [
  { id: "A1-A2", fence: "smp_mb()", kernel: "__folio_try_share_anon_rmap()", pairsWith: "B3-B4",
    buys: "the PTE is cleared before the pin is checked: with B3-B4, GUP-fast sees the PTE change or the clearer sees the pin (store buffering)",
    wasm: { file: "assembly/rmap.ts", fn: "folio_try_share_anon_rmap_pte", after: null, before: "folio_maybe_dma_pinned(" } },
  { id: "A3-A4", fence: "smp_mb__after_atomic()", aka: "smp_wmb()", kernel: "__folio_try_share_anon_rmap() (conceptually smp_wmb())", pairsWith: "B4-B5",
    buys: "PageAnonExclusive is clear before the PTE is restored: with B4-B5, a GUP-fast that sees the restored PTE sees the flag clear (message passing)",
    wasm: { file: "assembly/rmap.ts", fn: "folio_try_share_anon_rmap_pte", after: "ClearPageAnonExclusive(", before: null } },
  { id: "B3-B4", fence: "smp_mb__after_atomic()", kernel: "try_grab_folio_fast()", pairsWith: "A1-A2",
    buys: "the pin is visible before the PTE is re-read",
    wasm: { file: "assembly/gup.ts", fn: "grabFolio", after: "folio_ref_try_add(", before: "return true" } },
  { id: "B4-B5", fence: "smp_rmb()", kernel: "gup_must_unshare()", pairsWith: "A3-A4",
    buys: "the PTE is re-read before PageAnonExclusive is read",
    wasm: { file: "assembly/gup.ts", fn: "mustUnshare", after: "folio_test_anon(", before: "return !PageAnonExclusive(" } },
];

export type PteCase = "writable" | "readonly";

/** One generated litmus test: a PTE case, a set of barriers, FOLL_WRITE or not, and its expected verdicts. */
export interface Variant {
  readonly name: string;
  readonly pte: PteCase;
  /**
   * What A4 installs when P0 succeeds: `entry` — a swap or migration entry, not present
   * (try_to_unmap_one(), try_to_migrate_one()); `ro` — the same page read-only (KSM's
   * write_protect_page(): no PTE change at all when the PTE was read-only already).
   */
  readonly a4: "entry" | "ro";
  readonly barriers: readonly BarrierId[];
  readonly follWrite: boolean;
  readonly title: string;
  /** The verdict on the bad outcome, per model: what the tests assert and the README's table says. */
  readonly expected: { readonly sc: Verdict; readonly tso: Verdict; readonly relaxed: Verdict };
}
export type Verdict = "Never" | "Sometimes";

const ALL: readonly BarrierId[] = ["A1-A2", "B3-B4", "A3-A4", "B4-B5"];
const MB_PAIR: readonly BarrierId[] = ["A1-A2", "B3-B4"];
const never = { sc: "Never", tso: "Never", relaxed: "Never" } as const;
const relaxedOnly = { sc: "Never", tso: "Never", relaxed: "Sometimes" } as const;

/**
 * The variants: the six of the barrier levels × the PTE cases first (the bench runs those), then
 * the partial fixes that show which barrier buys what, then FOLL_WRITE.
 */
export const VARIANTS: readonly Variant[] = [
  { name: "seed001-writable-nobarriers", pte: "writable", a4: "entry", barriers: [], follWrite: false, title: "writable PTE (swap, migration), no barriers", expected: relaxedOnly },
  { name: "seed001-writable-mbpair", pte: "writable", a4: "entry", barriers: MB_PAIR, follWrite: false, title: "writable PTE (swap, migration), the smp_mb() pair", expected: never },
  { name: "seed001-writable-fixed", pte: "writable", a4: "entry", barriers: ALL, follWrite: false, title: "writable PTE (swap, migration), the full fix", expected: never },
  { name: "seed001-readonly-nobarriers", pte: "readonly", a4: "ro", barriers: [], follWrite: false, title: "R/O PTE (KSM), no barriers", expected: relaxedOnly },
  { name: "seed001-readonly-mbpair", pte: "readonly", a4: "ro", barriers: MB_PAIR, follWrite: false, title: "R/O PTE (KSM), the smp_mb() pair", expected: relaxedOnly },
  { name: "seed001-readonly-fixed", pte: "readonly", a4: "ro", barriers: ALL, follWrite: false, title: "R/O PTE (KSM), the full fix", expected: never },
  { name: "seed001-writable-ksm-mbpair", pte: "writable", a4: "ro", barriers: MB_PAIR, follWrite: false, title: "writable PTE made R/O by KSM, the smp_mb() pair", expected: relaxedOnly },
  { name: "seed001-writable-ksm-fixed", pte: "writable", a4: "ro", barriers: ALL, follWrite: false, title: "writable PTE made R/O by KSM, the full fix", expected: never },
  { name: "seed001-readonly-wmbrmb", pte: "readonly", a4: "ro", barriers: ["A3-A4", "B4-B5"], follWrite: false, title: "R/O PTE, only the smp_wmb()/smp_rmb() pair", expected: relaxedOnly },
  { name: "seed001-readonly-nowmb", pte: "readonly", a4: "ro", barriers: ["A1-A2", "B3-B4", "B4-B5"], follWrite: false, title: "R/O PTE, the full fix without A3-A4", expected: relaxedOnly },
  { name: "seed001-readonly-normb", pte: "readonly", a4: "ro", barriers: ["A1-A2", "B3-B4", "A3-A4"], follWrite: false, title: "R/O PTE, the full fix without B4-B5", expected: relaxedOnly },
  { name: "seed001-writable-follwrite-nobarriers", pte: "writable", a4: "entry", barriers: [], follWrite: true, title: "writable PTE, FOLL_WRITE, no barriers", expected: relaxedOnly },
  { name: "seed001-readonly-follwrite-nobarriers", pte: "readonly", a4: "ro", barriers: [], follWrite: true, title: "R/O PTE, FOLL_WRITE, no barriers", expected: never },
];

const PTE_VALUE: Record<PteCase, number> = { writable: 1, readonly: 2 };
const step = (id: StepId): Step => STEPS.find((s) => s.id === id)!;
const barrier = (id: BarrierId): Barrier => BARRIERS.find((b) => b.id === id)!;

/** The C litmus test of one variant. */
export function seed001Litmus(v: Variant): string {
  const has = (b: BarrierId) => v.barriers.includes(b);
  const fence = (b: BarrierId, indent: string): string[] =>
    has(b) ? [`${indent}${barrier(b).fence}; // ${b}: ${barrier(b).kernel}, paired with ${barrier(b).pairsWith}`] : [];
  const at = (id: StepId, code: string, indent: string, note = step(id).kernel): string => `${indent}${code.padEnd(30)} // (${id}) ${note}`;
  const pte = PTE_VALUE[v.pte];
  const t = "\t";
  const pin: string[] = [
    at("B3", "atomic_add(1024, refcount);", t + t),
    ...fence("B3-B4", t + t),
    at("B4", "pte2 = READ_ONCE(*pte);", t + t),
    `${t}${t}if (pte2 == pte1) {`,
    `${t}${t}${t}if (pte1 == 2) {`,
    ...fence("B4-B5", t + t + t + t),
    at("B5", "ex = READ_ONCE(*excl);", t + t + t + t),
    `${t}${t}${t}${t}if (ex != 0)`,
    `${t}${t}${t}${t}${t}pinned = 1;`,
    `${t}${t}${t}} else {`,
    `${t}${t}${t}${t}pinned = 1;`,
    `${t}${t}${t}}`,
    `${t}${t}}`,
  ];
  const expectedLkmm = v.expected.relaxed;
  return [
    `C ${v.name}`,
    "",
    "(*",
    ` * Result: ${expectedLkmm}`,
    " *",
    ` * Seed 001 (088b8aa537c2), ${v.title}: can GUP-fast (P1) pin a page while`,
    " * __folio_try_share_anon_rmap() (P0) marks it possibly shared? PTE: 0 cleared, 1 writable,",
    " * 2 read-only, 3 a swap or migration entry; refcount >= 1024 means pinned",
    " * (GUP_PIN_COUNTING_BIAS).",
    ` * Barriers: ${v.barriers.length ? v.barriers.join(", ") : "none"}${v.follWrite ? "; FOLL_WRITE" : ""}.`,
    ` * Expected: SC ${v.expected.sc}, x86-TSO ${v.expected.tso}, LKMM ${v.expected.relaxed}.`,
    " * Generated from src/explore/protocols/seed001.ts: edit that, not this file.",
    " *)",
    "",
    "{",
    `pte=${pte};`,
    "refcount=1;",
    "excl=1;",
    "}",
    "",
    "P0(int *pte, int *refcount, int *excl)",
    "{",
    `${t}int old;`,
    `${t}int ref;`,
    `${t}int shared;`,
    "",
    at("A1", "old = xchg_relaxed(pte, 0);", t),
    ...fence("A1-A2", t),
    at("A2", "ref = atomic_read(refcount);", t),
    `${t}if (ref < 1024) {`,
    at("A3", "atomic_dec(excl);", t + t),
    ...fence("A3-A4", t + t),
    `${t}${t}shared = 1;`,
    v.a4 === "ro"
      ? at("A4", "WRITE_ONCE(*pte, 2);", t + t, "set_pte_at(): KSM's R/O PTE of the same page")
      : at("A4", "WRITE_ONCE(*pte, 3);", t + t, "set_pte_at(): the swap or migration entry"),
    `${t}} else {`,
    at("A4", "WRITE_ONCE(*pte, old);", t + t, "-EBUSY: the old PTE back"),
    `${t}}`,
    "}",
    "",
    "P1(int *pte, int *refcount, int *excl)",
    "{",
    `${t}int pte1;`,
    `${t}int pte2;`,
    `${t}int ex;`,
    `${t}int pinned;`,
    "",
    at("B1", "pte1 = READ_ONCE(*pte);", t),
    ...(v.follWrite
      ? [`${t}${"if (pte1 == 1) {".padEnd(30)} // (B2) ${step("B2").kernel}`, ...pin, `${t}}`]
      : [`${t}${"if (pte1 == 1 || pte1 == 2) {".padEnd(30)} // present`, ...pin, `${t}}`]),
    "}",
    "",
    "exists (0:shared=1 /\\ 1:pinned=1)",
    "",
  ].join("\n");
}
