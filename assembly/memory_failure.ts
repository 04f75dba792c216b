// The PTE side of mm/memory-failure.c: try_to_unmap_one() with TTU_HWPOISON, which replaces a
// mapping of a poisoned page by a hwpoison entry. Which folio to take, which mappings the rmap
// finds, and the folio's fate (page_action()) are decided in TypeScript
// (src/mm/memory_failure.ts); this is the mechanics of one PTE.

import { EINVAL, ENOENT } from "./layout";
import { pte_present, pte_pfn, pte_dirty, pte_special, swp_entry_to_pte, make_hwpoison_entry } from "./pte";
import { walk_ptep, entryLoad, entryStore, mm_valid, add_mm_counter } from "./pgtable";
import { pfn_valid, page_folio, folio_test_large, setPageFlag, testPageFlag, PG_dirty, PG_hwpoison } from "./page";
import { folio_remove_rmap_ptes, folio_put_refs, mm_counter_of } from "./rmap";

/**
 * try_to_unmap_one() with TTU_HWPOISON for the PTE at `va` of `mm`, which must map the
 * poisoned order-0 page `pfn` (PG_hwpoison set): the PTE is cleared (ptep_clear_flush(), its
 * dirty bit going to the folio), a hwpoison entry for `pfn` takes its place — with no
 * soft-dirty or uffd-wp bit, as Linux builds it — and the mapping's rss counter, map count and
 * reference go. PageAnonExclusive is left as it was: stale, the entry is only a placeholder
 * (seed 000 I.7c), and no pin stops this unmap (the exclusive-page branch that could refuse
 * comes after the hwpoison one in try_to_unmap_one()). Returns 0, -ENOENT (the PTE does not
 * map `pfn`) or -EINVAL (bad mm or pfn, a page not poisoned, or a large folio: the caller
 * splits those first).
 */
export function try_to_unmap_one_hwpoison(mm: u32, va: f64, pfn: u32): i32 {
  if (!mm_valid(mm) || !pfn_valid(pfn) || !testPageFlag(pfn, PG_hwpoison)) return -EINVAL;
  const folio = page_folio(pfn);
  if (folio_test_large(folio)) return -EINVAL;
  const slot = walk_ptep(mm, <u64>va);
  if (slot == 0) return -ENOENT;
  const pte = entryLoad(slot);
  if (!pte_present(pte) || pte_special(pte) || <u32>pte_pfn(pte) != pfn) return -ENOENT;
  const old = atomic.xchg<u64>(slot, 0);
  if (pte_dirty(old)) setPageFlag(folio, PG_dirty);
  entryStore(slot, swp_entry_to_pte(make_hwpoison_entry(<u64>pfn)));
  // dec_mm_counter(mm, mm_counter(folio)): the entry is counted in no rss counter
  add_mm_counter(mm, mm_counter_of(folio), -1);
  folio_remove_rmap_ptes(folio, pfn, 1);
  folio_put_refs(folio, 1);
  return 0;
}
