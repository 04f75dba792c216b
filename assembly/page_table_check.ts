// Debug-build checks at the point of change (mm/page_table_check.c, include/linux/mmdebug.h).
//
// Every path that installs a present entry, or makes one writable, calls
// page_table_check_pte_set() / page_table_check_pmd_set() with the entry it is about to store,
// after the rmap and the references already account for it (the kernel's order too:
// folio_add_*_rmap_*() and the reference come before set_pte_at()). The checks are
//
//   - anon_exclusive: a writable entry maps an anonymous page only when that page is
//     PageAnonExclusive — the rule of Linux ≥ 5.19;
//   - anon_shared (page_table_check_set()): an anonymous page mapped more than once is never
//     mapped writable (Linux counts mappings per page in page_ext; the page's map count is that
//     count here);
//   - uffd_wp_write (page_table_check_pte_flags()): a uffd-wp entry is never writable;
//   - refcount (VM_BUG_ON_FOLIO-style): the folio's references cover its mappings.
//
// The first two judge the COW strategy's decisions, so they are on only while the strategy
// says it keeps them: set_gup_fast_unshare() (the strategy tracks PageAnonExclusive) or
// set_anon_exclusive_checks() turn both on or off, set_debug_check() any one. A strategy
// broken on purpose, for the oracle to judge, must run with them off. The other two always
// hold. All four are on in a fresh machine (Linux 6.12).
//
// They are compiled in for the debug target only (COWSIM_DEBUG, asconfig.json's `use`): in the
// release build `if (COWSIM_DEBUG)` is constant false, the checks are never compiled, and the
// module does not import the report hook (a test greps the release .wat). A failed check calls
// env.cowsim_check_failed, which throws a JavaScript error naming the check, the pfn and the
// address; nothing after the check runs, so the machine is left mid-operation: discard it.

import { layoutBase, Header, EINVAL } from "./layout";
import { pte_present, pte_write, pte_special, pte_uffd_wp, pte_pfn } from "./pte";
import {
  pfn_valid, page_folio, folio_test_anon, folio_test_large, folio_ref_count, folio_mapcount,
  page_mapcount_raw, folio_entire_mapcount, PageAnonExclusive,
} from "./page";

/** @check anon_exclusive page_table_check: writable anon {entry} to pfn {pfn} not PageAnonExclusive at {addr} */
export const CHECK_ANON_EXCLUSIVE: u32 = 1;
/** @check anon_shared page_table_check: writable {entry} to anon pfn {pfn} mapped {a} times at {addr} */
export const CHECK_ANON_SHARED: u32 = 2;
/** @check uffd_wp_write page_table_check: writable uffd-wp {entry} to pfn {pfn} at {addr} */
export const CHECK_UFFD_WP_WRITE: u32 = 3;
/** @check refcount VM_BUG_ON_FOLIO: folio {pfn} has refcount {a} below its mapcount {b}, {entry} at {addr} */
export const CHECK_REFCOUNT: u32 = 4;

/** The `level` argument of the report: which kind of entry was being installed. */
export const CHECK_LEVEL_PTE: u32 = 0;
export const CHECK_LEVEL_PMD: u32 = 1;

/**
 * The host's report of a failed check (src/core/wasm.ts): throws. Imported by the debug build
 * only, because only the debug build compiles a call to it.
 */
// @ts-ignore: decorator
@external("env", "cowsim_check_failed")
declare function cowsim_check_failed(check: u32, level: u32, pfn: u32, va: f64, a: i32, b: i32): void;

function fail(check: u32, level: u32, pfn: u32, va: u64, a: i32, b: i32): void {
  cowsim_check_failed(check, level, pfn, <f64>va, a, b);
  unreachable(); // a host that returns must not let the operation go on
}

/** page_table_check_pte_set(): checks the present entry `pte` about to be stored for `va`. */
// @ts-ignore: decorator
@inline export function page_table_check_pte_set(va: u64, pte: u64): void {
  // @ts-ignore: COWSIM_DEBUG is a compile-time constant from asconfig.json
  if (COWSIM_DEBUG) checkEntrySet(va, pte, CHECK_LEVEL_PTE);
}

/** page_table_check_pmd_set(): the same for a PMD leaf. */
// @ts-ignore: decorator
@inline export function page_table_check_pmd_set(va: u64, pmd: u64): void {
  // @ts-ignore: COWSIM_DEBUG is a compile-time constant from asconfig.json
  if (COWSIM_DEBUG) checkEntrySet(va, pmd, CHECK_LEVEL_PMD);
}

const POLICY_CHECKS: u32 = (1 << CHECK_ANON_EXCLUSIVE) | (1 << CHECK_ANON_SHARED);
const ALL_CHECKS: u32 = POLICY_CHECKS | (1 << CHECK_UFFD_WP_WRITE) | (1 << CHECK_REFCOUNT);

/** Whether check `check` (CHECK_*) runs in the debug build. */
export function debug_check_enabled(check: u32): bool {
  return check < 32 && ((1 << check) & ALL_CHECKS) != 0 && (atomic.load<u32>(checksOffAddr()) & (1 << check)) == 0;
}

/** Turns one check (CHECK_*) on or off; -EINVAL for an unknown one. No effect on release. */
export function set_debug_check(check: u32, on: u32): i32 {
  if (check >= 32 || ((1 << check) & ALL_CHECKS) == 0) return -EINVAL;
  if (on) atomic.and<u32>(checksOffAddr(), ~(1 << check));
  else atomic.or<u32>(checksOffAddr(), 1 << check);
  return 0;
}

/**
 * Turns the checks of a strategy that tracks PageAnonExclusive on or off: anon_exclusive and
 * anon_shared (default on, as Linux 6.12; set_gup_fast_unshare() sets them from the same
 * strategy property). No effect on release.
 */
export function set_anon_exclusive_checks(on: u32): void {
  if (on) atomic.and<u32>(checksOffAddr(), ~POLICY_CHECKS);
  else atomic.or<u32>(checksOffAddr(), POLICY_CHECKS);
}

// @ts-ignore: decorator
@inline function checksOffAddr(): u32 {
  return layoutBase() + offsetof<Header>("debugChecksOff");
}

// @ts-ignore: decorator
@inline function checkOn(check: u32): bool {
  return (atomic.load<u32>(checksOffAddr()) & (1 << check)) == 0;
}

function checkEntrySet(va: u64, e: u64, level: u32): void {
  if (!pte_present(e)) return;
  const pfn = <u32>pte_pfn(e);
  if (pte_uffd_wp(e) && pte_write(e) && checkOn(CHECK_UFFD_WP_WRITE)) fail(CHECK_UFFD_WP_WRITE, level, pfn, va, 0, 0);
  if (pte_special(e) || !pfn_valid(pfn)) return;
  const folio = page_folio(pfn);
  const refs = folio_ref_count(folio);
  const maps = folio_mapcount(folio);
  if (refs < maps && checkOn(CHECK_REFCOUNT)) fail(CHECK_REFCOUNT, level, folio, va, refs, maps);
  if (!pte_write(e) || !folio_test_anon(folio)) return;
  // how many entries map this page (for a PMD leaf: any page of the folio)
  let mapped: i32;
  if (level == CHECK_LEVEL_PMD) mapped = maps;
  else if (!folio_test_large(folio)) mapped = page_mapcount_raw(pfn) + 1;
  else mapped = page_mapcount_raw(pfn) + 1 + folio_entire_mapcount(folio);
  if (mapped > 1 && checkOn(CHECK_ANON_SHARED)) fail(CHECK_ANON_SHARED, level, pfn, va, mapped, 0);
  if (!PageAnonExclusive(level == CHECK_LEVEL_PMD ? folio : pfn) && checkOn(CHECK_ANON_EXCLUSIVE)) {
    fail(CHECK_ANON_EXCLUSIVE, level, pfn, va, 0, 0);
  }
}
