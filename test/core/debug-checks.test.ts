// The debug build's checks at the point of change (assembly/page_table_check.ts): each one
// fires on a state built to break it, through the raw core API, with a message that names the
// check, the pfn and the address; the release build has none of them.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { C, Core, CoreCheckError, DEBUG_CHECKS, type CoreBuild } from "../../src/core/index.js";
import { hostImports } from "../../src/core/wasm.js";
import { populate, pfnAt, pteAt, BASE, PROT_READ, P, U, W, A, D } from "../helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wat = (build: CoreBuild) => readFileSync(`${root}build/cowsim.${build}.wat`, "utf8");
const UFFD_WP = 2 ** C._PAGE_BIT_UFFD_WP;
const ADDR = "0x7f0000000000"; // BASE

const make = (build: CoreBuild) => Core.create({ build, frames: 2048, maxMms: 8, maxThreads: 2 });

/** One page, faulted in exclusive and writable at BASE. */
function onePage(core: Core): { mm: number; pfn: number } {
  const mm = core.mmAlloc();
  populate(core, mm, BASE, 1);
  return { mm, pfn: pfnAt(core, mm, BASE) };
}

/** Each case breaks one rule at one place of change; returns the message the check must give. */
const cases: { name: string; check: string; run: (core: Core) => string }[] = [
  {
    name: "wp_page_reuse() makes a page writable that is no longer PageAnonExclusive",
    check: "anon_exclusive",
    run(core) {
      const { mm, pfn } = onePage(core);
      core.x.ptep_set_wrprotect(mm, BASE);
      core.x.ClearPageAnonExclusive(pfn);
      core.x.wp_page_reuse(core.ctx, mm, BASE, 0, 0);
      return `page_table_check: writable anon PTE to pfn ${pfn} not PageAnonExclusive at ${ADDR}`;
    },
  },
  {
    name: "wp_page_reuse() after fork: a strategy reuses a page the child still maps",
    check: "anon_shared",
    run(core) {
      const { mm, pfn } = onePage(core);
      core.copyPageRange(core.mmAlloc(), mm, BASE, BASE + 4096, C.COPY_COW);
      core.x.wp_page_reuse(core.ctx, mm, BASE, C.REUSE_SET_EXCLUSIVE, 0);
      return `page_table_check: writable PTE to anon pfn ${pfn} mapped 2 times at ${ADDR}`;
    },
  },
  {
    name: "set_pte_at() of a writable uffd-wp entry",
    check: "uffd_wp_write",
    run(core) {
      const { mm, pfn } = onePage(core);
      core.x.ptep_set(core.ctx, mm, BASE, pteAt(core, mm, BASE) | BigInt(UFFD_WP));
      return `page_table_check: writable uffd-wp PTE to pfn ${pfn} at ${ADDR}`;
    },
  },
  {
    name: "set_pte_at() of a page whose references do not cover its mappings",
    check: "refcount",
    run(core) {
      const { mm, pfn } = onePage(core);
      core.x.folio_ref_sub_return(pfn, 1);
      core.x.ptep_set(core.ctx, mm, BASE, pteAt(core, mm, BASE));
      return `VM_BUG_ON_FOLIO: folio ${pfn} has refcount 0 below its mapcount 1, PTE at ${ADDR}`;
    },
  },
  {
    name: "set_pmd_at() of a writable PMD leaf of a THP another process maps",
    check: "anon_shared",
    run(core) {
      const mm = core.mmAlloc();
      const thp = core.allocPages(9);
      core.x.folio_add_new_anon_rmap(thp, 1, 0, C.RMAP_EXCLUSIVE);
      core.x.folio_ref_add(thp, 1);
      core.x.folio_try_dup_anon_rmap_pmd(thp, 0); // a second PMD mapping (fork)
      core.x.pmdp_set(core.ctx, mm, BASE, core.x.pmd_mkhuge(BigInt(thp) * 4096n + BigInt(P | U | W | A | D)));
      return `page_table_check: writable PMD to anon pfn ${thp} mapped 2 times at ${ADDR}`;
    },
  },
  {
    name: "do_swap_page()'s install maps a page writable that it does not map exclusive",
    check: "anon_exclusive",
    run(core) {
      const { mm, pfn } = onePage(core);
      const slot = core.x.add_to_swap(pfn);
      expect(core.x.try_to_unmap_one(mm, BASE, pfn, 0)).toBe(0); // exclusivity not kept
      core.x.folio_ref_add(pfn, 1); // the reference the mapping takes
      core.x.swap_free(slot);
      core.x.swapin_map(mm, BASE, pfn, slot, PROT_READ, C.SWAPIN_WRITABLE, 1, BASE / 4096);
      return `page_table_check: writable anon PTE to pfn ${pfn} not PageAnonExclusive at ${ADDR}`;
    },
  },
  {
    name: "change_protection() upgrades a shared anon page (a VM_SHARED VMA never maps one)",
    check: "anon_shared",
    run(core) {
      const { mm, pfn } = onePage(core);
      core.copyPageRange(core.mmAlloc(), mm, BASE, BASE + 4096, C.COPY_COW);
      core.changeProtection(mm, BASE, BASE + 4096, PROT_READ, C.MM_CP_TRY_CHANGE_WRITABLE | C.CP_VM_WRITE | C.CP_VM_SHARED);
      return `page_table_check: writable PTE to anon pfn ${pfn} mapped 2 times at ${ADDR}`;
    },
  },
];

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
}

describe("the debug build stops at a broken rule, naming the check, the pfn and the address", () => {
  for (const c of cases) {
    it(`${c.check}: ${c.name}`, () => {
      const core = make("debug");
      let message = "";
      const e = thrown(() => { message = c.run(core); });
      expect(e).toBeInstanceOf(CoreCheckError);
      const err = e as CoreCheckError;
      // the expected text comes from the case, which ran up to the call that failed
      expect(err.check).toBe(c.check);
      expect(err.address).toBe(BASE);
      expect(err.message).toMatch(/^cowsim debug check failed: /);
      expect(message).toBe(""); // the case did not get past the failing call
      expect(err.message).toBe(`cowsim debug check failed: ${c.run(make("release"))}`);
    });
  }

  it("every check has a case", () => {
    expect(new Set(cases.map((c) => c.check))).toEqual(new Set(DEBUG_CHECKS.map((d) => d.short)));
  });
});

describe("the release build has no checks", () => {
  it("runs every broken case to its end, silently", () => {
    for (const c of cases) {
      const core = make("release");
      expect(() => c.run(core)).not.toThrow();
    }
  });

  it("compiles none of the check code: no check function, no report import", () => {
    const release = wat("release");
    const debug = wat("debug");
    for (const name of ["$assembly/page_table_check/checkEntrySet", "$assembly/page_table_check/fail", '"cowsim_check_failed"']) {
      expect(release).not.toContain(name);
      expect(debug).toContain(name);
    }
    // one check per place of change: set_pte_at/set_pmd_at/ptep_cmpxchg, the anonymous, wp reuse,
    // wp copy and file faults, fork's copy (PMD, PTE, a large folio's batch, deferred share, and the copy
    // of a deferred page, by fork_copy_deferred_pte() or the walk itself), populate,
    // mprotect (PMD, PTE), try_to_unmap_one()'s two restores, do_swap_page()'s install, the
    // mTHP fault's set_ptes(), try_to_migrate_one()'s restore and remove_migration_pte()'s install,
    // the THP fault, reuse and split (huge_memory.ts) and collapse (khugepaged.ts),
    // migrate_vma_collect()'s restore of a pinned page and restore_exclusive_pte()'s install,
    // set_pmd_migration_entry()'s restore and remove_migration_pmd()'s install, mfill_atomic()'s install,
    // UFFDIO_MOVE's move_present_pte() and move_pages_huge_pmd() installs, do_cow_fault()'s install;
    // and fork's loop over one PTE table (copy_pte_table()), with its own install of the common
    // entry and pte_entry()'s two inlined into it once more for the rest; a write run's
    // first-touch faults (anonWriteRun()); and wp_page_copy()'s install inlined into both its
    // callers (the core's decided fault and the strategy's)
    expect(debug.match(/call \$assembly\/page_table_check\/checkEntrySet/g)).toHaveLength(38);
  });
});

describe("switches", () => {
  const byCheck = (check: string) => cases.filter((c) => c.check === check);

  it("the strategy's rules (anon_exclusive, anon_shared) go off with set_anon_exclusive_checks(0) or set_gup_fast_unshare(0)", () => {
    for (const off of [(core: Core) => core.x.set_anon_exclusive_checks(0), (core: Core) => core.x.set_gup_fast_unshare(0)]) {
      for (const c of [...byCheck("anon_exclusive"), ...byCheck("anon_shared")]) {
        const core = make("debug");
        off(core);
        expect(core.x.debug_check_enabled(C.CHECK_ANON_EXCLUSIVE)).toBe(0);
        expect(core.x.debug_check_enabled(C.CHECK_ANON_SHARED)).toBe(0);
        expect(() => c.run(core)).not.toThrow();
      }
      // the mechanism's rules stay on
      for (const c of [...byCheck("refcount"), ...byCheck("uffd_wp_write")]) {
        const core = make("debug");
        off(core);
        expect(thrown(() => c.run(core))).toBeInstanceOf(CoreCheckError);
      }
    }
    const core = make("debug");
    core.x.set_gup_fast_unshare(0);
    core.x.set_gup_fast_unshare(1);
    expect(core.x.debug_check_enabled(C.CHECK_ANON_SHARED)).toBe(1);
  });

  it("set_debug_check turns one check off and on; unknown checks are EINVAL", () => {
    const core = make("debug");
    for (const d of DEBUG_CHECKS) expect(core.x.debug_check_enabled(d.value)).toBe(1);
    expect(core.x.set_debug_check(C.CHECK_REFCOUNT, 0)).toBe(0);
    expect(core.x.debug_check_enabled(C.CHECK_REFCOUNT)).toBe(0);
    expect(core.x.debug_check_enabled(C.CHECK_UFFD_WP_WRITE)).toBe(1);
    expect(() => byCheck("refcount")[0]!.run(core)).not.toThrow();
    expect(core.x.set_debug_check(C.CHECK_REFCOUNT, 1)).toBe(0);
    expect(thrown(() => byCheck("refcount")[0]!.run(core))).toBeInstanceOf(CoreCheckError);
    expect(core.x.set_debug_check(0, 1)).toBe(-C.EINVAL);
    expect(core.x.set_debug_check(99, 1)).toBe(-C.EINVAL);
    expect(core.x.debug_check_enabled(99)).toBe(0);
  });
});

describe("a trap of the core reads as its message", () => {
  it("abort() decodes the module's message and file strings", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const put = (at: number, s: string) => {
      const v = new DataView(memory.buffer);
      v.setUint32(at - 4, s.length * 2, true);
      for (let i = 0; i < s.length; i++) v.setUint16(at + 2 * i, s.charCodeAt(i), true);
    };
    put(64, "dstTable != 0");
    put(256, "assembly/memory.ts");
    const abort = (hostImports(memory).env as { abort: (...a: number[]) => never }).abort;
    expect(() => abort(64, 256, 308, 5)).toThrow("cowsim core: assertion failed: dstTable != 0 at assembly/memory.ts:308:5");
    expect(() => abort(0, 0, 12, 3)).toThrow("cowsim core: assertion failed at the core:12:3");
  });
});
