// The Wasm ABI of cowsim's core: every export, by name.
//
// Hot paths take and return u32 / i32 / f64 (addresses are f64 byte addresses, exact up to
// 2^53); results in bulk go through the per-thread scratch area. The few exports that take or
// return a 64-bit entry (the pte_* helpers, ptep_get/set …) are for tests, debugging and the
// slow path: in JavaScript they cost a BigInt.

import {
  layout_record, layout_ready, PAGEBLOCK_BYTES, hdr, HEADER_BYTES, VMSTAT_OFFSET, NR_VMSTAT, Header, Ctx, CTX_HEADER_BYTES,
  MM_STRUCT_BYTES, SWAP_SLOT_BYTES, PAGE_STRUCT_BYTES, EINVAL, FAULT_ATTR_OFFSET, FAULT_ATTR_BYTES,
  NR_FAIL_KINDS, FaultAttr, CTX_LRU_OFFSET, CTX_LRU_SLOTS, CTX_WALK_OFFSET, CTX_WALK_BYTES,
} from "./layout";
import { page_alloc_init, pageblockOk } from "./page_alloc";
import { pageStructOk, Page, pageAddr, pageFlags, setPageFlag, clearPageFlag, testPageFlag } from "./page";
import { MmStruct } from "./pgtable";
import { MTHP_STAT_OFFSET, MTHP_STAT_BYTES } from "./large_folio";
import { clear_page_contents } from "./content";

/**
 * Lays out a fresh shared memory and initialises every structure. Call once, from one
 * thread, before any other thread attaches. Returns 0 or -EINVAL.
 */
export function cowsim_init(
  nframes: u32, ntables: u32, nslots: u32, maxMms: u32, maxThreads: u32,
  dataBytes: u32, scratchBytes: u32,
): i32 {
  // the frame table memory_reset() left (its place is in the header it zeroed)
  const staleFrom = <usize>hdr().frameBase;
  const staleTo = staleFrom + <usize>hdr().nframes * PAGE_STRUCT_BYTES;
  if (!pageStructOk() || !pageblockOk() || offsetof<Page>() != PAGE_STRUCT_BYTES ||
      offsetof<MmStruct>() > MM_STRUCT_BYTES || offsetof<Header>() > MTHP_STAT_OFFSET ||
      MTHP_STAT_OFFSET + MTHP_STAT_BYTES > VMSTAT_OFFSET ||
      VMSTAT_OFFSET + NR_VMSTAT * 4 > FAULT_ATTR_OFFSET || offsetof<FaultAttr>() > FAULT_ATTR_BYTES ||
      FAULT_ATTR_OFFSET + NR_FAIL_KINDS * FAULT_ATTR_BYTES > HEADER_BYTES || offsetof<Ctx>() > CTX_LRU_OFFSET ||
      CTX_LRU_OFFSET + CTX_LRU_SLOTS * 4 > CTX_WALK_OFFSET || CTX_WALK_OFFSET + CTX_WALK_BYTES > CTX_HEADER_BYTES ||
      SWAP_SLOT_BYTES != 16) {
    clearStaleFrames(staleFrom, staleTo, false);
    return -EINVAL;
  }
  if (nframes < 1 || nframes > (1 << 28) || dataBytes > 4096 || maxThreads < 1 || maxMms < 1 ||
      ntables < 1 || scratchBytes < 64) {
    clearStaleFrames(staleFrom, staleTo, false);
    return -EINVAL;
  }
  const r = layout_record(nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes);
  if (r != 0) {
    clearStaleFrames(staleFrom, staleTo, false);
    return r;
  }
  // page_alloc_init() writes every struct page: a frame table memory_reset() left where this
  // layout puts its own needs no zeroing first
  const H = hdr();
  const frames = <usize>H.frameBase;
  clearStaleFrames(staleFrom, staleTo, frames == staleFrom && frames + <usize>nframes * PAGE_STRUCT_BYTES == staleTo);
  page_alloc_init();
  clear_page_contents(0);
  return 0;
}

// ---- struct page access for the TypeScript side and tests ----------------------------------
export function page_flags(pfn: u32): u32 { return pageFlags(pfn); }
export function page_set_flag(pfn: u32, bit: u32): void { setPageFlag(pfn, bit); }
export function page_clear_flag(pfn: u32, bit: u32): void { clearPageFlag(pfn, bit); }
export function page_test_flag(pfn: u32, bit: u32): bool { return testPageFlag(pfn, bit); }
/** Address of `_refcount` of frame `pfn`: lets the tests' racy control poke it with plain stores. */
export function page_refcount_addr(pfn: u32): u32 { return pageAddr(pfn) + offsetof<Page>("_refcount"); }
export function page_struct_bytes(): u32 { return offsetof<Page>(); }
/** Bytes per pageblock record (its free count first): lets a scan skip the wholly free blocks. */
export function pageblock_bytes(): u32 { return PAGEBLOCK_BYTES; }

export {
  layout_plan, layout_ready, ctx_attach, ctx_detach, ctx_smp, ctx_expect, ctx_next, ctx_nr_records, ctx_scratch,
  ctx_gup_reason, ctx_aux0, layout_base, layout_nframes, layout_ntables, layout_nslots, layout_max_mms,
  layout_max_threads, layout_data_bytes, layout_content_stride, layout_swap_stride,
  layout_scratch_bytes, layout_frame_base, layout_pt_base, layout_mm_base, layout_block_base,
  layout_swap_base, layout_content_base, layout_ctx_base, layout_total_bytes,
  layout_vmstat_base, layout_pt_available, layout_swap_available, layout_free_pages,
  NO_PFN, PAGE_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, CTX_AUX0_OFFSET, CTX_LOG_COUNT_OFFSET,
  EPERM, ENOENT, ESRCH, EIO, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EINVAL, ENOSPC,
  PGALLOC, PGFREE, THP_ALLOC, THP_FREE, PGALLOC_FAIL, PGTABLE_ALLOC, PGTABLE_FREE,
  PGTABLE_ALLOC_FAIL, SWAP_SLOT_ALLOC, SWAP_SLOT_FREE, GUP_FAST_PINNED, GUP_FAST_BACKOFF,
  FORK_PTES_SHARED, FORK_PTES_DEFERRED, ZAP_PTES, FAULT_ANON, FAULT_ZERO_PAGE, FAULT_WP_REUSE,
  FAULT_WP_COPY, FAULT_UNSHARE, FAULT_FILE, LRU_BATCH_DRAINED, FAIL_INJECTED_FRAME,
  FAIL_INJECTED_PGTABLE, FAIL_INJECTED_SWAP_SLOT, WP_CORE_REUSE, WP_CORE_COPY, WP_CORE_ZERO, SWAPIN_CORE, FORK_CORE_COPY, NR_VMSTAT,
  FAIL_FRAME, FAIL_PGTABLE, FAIL_SWAP_SLOT, NR_FAIL_KINDS, fail_inject, fail_clear, fail_armed,
  fail_attempts,
} from "./layout";

export {
  CHECK_ANON_EXCLUSIVE, CHECK_ANON_SHARED, CHECK_UFFD_WP_WRITE, CHECK_REFCOUNT, CHECK_LEVEL_PTE,
  CHECK_LEVEL_PMD, debug_check_enabled, set_debug_check, set_anon_exclusive_checks,
} from "./page_table_check";

export {
  _PAGE_BIT_PRESENT, _PAGE_BIT_RW, _PAGE_BIT_USER, _PAGE_BIT_ACCESSED, _PAGE_BIT_DIRTY,
  _PAGE_BIT_PSE, _PAGE_BIT_PROTNONE, _PAGE_BIT_SPECIAL, _PAGE_BIT_UFFD_WP, _PAGE_BIT_SOFT_DIRTY,
  PTE_PFN_SHIFT, PTE_PFN_BITS, _PAGE_BIT_SWP_SOFT_DIRTY, _PAGE_BIT_SWP_UFFD_WP,
  _PAGE_BIT_SWP_EXCLUSIVE, SWP_OFFSET_SHIFT, SWP_OFFSET_BITS, SWP_TYPE_SHIFT, MAX_SWAPFILES_SHIFT,
  MAX_SWAPFILES, SWP_HWPOISON, SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE,
  SWP_MIGRATION_WRITE, SWP_DEVICE_WRITE, SWP_DEVICE_READ, SWP_DEVICE_EXCLUSIVE_WRITE,
  SWP_DEVICE_EXCLUSIVE_READ, SWP_PTE_MARKER, PTE_MARKER_UFFD_WP, PTE_MARKER_POISONED,
  PTE_MARKER_GUARD, PTE_KIND_NONE, PTE_KIND_PRESENT, PTE_KIND_PROTNONE, PTE_KIND_SWAP,
  PTE_KIND_MIGRATION, PTE_KIND_DEVICE_PRIVATE, PTE_KIND_DEVICE_EXCLUSIVE, PTE_KIND_HWPOISON,
  PTE_KIND_MARKER, PTE_KIND_TABLE,
  pfn_pte, pte_pfn, pte_none, pte_present, pte_protnone, pte_write, pte_dirty, pte_young,
  pte_special, pte_uffd_wp, pte_soft_dirty, pmd_leaf, pte_access_permitted, pte_mkwrite,
  pte_wrprotect, pte_mkdirty, pte_mkclean, pte_mkyoung, pte_mkold, pte_mkspecial, pte_mkuffd_wp,
  pte_clear_uffd_wp, pte_mksoft_dirty, pte_clear_soft_dirty, pmd_mkhuge, pte_modify,
  is_swap_pte, swp_entry, swp_type, swp_offset, pte_to_swp_entry, swp_entry_to_pte,
  non_swap_entry, pte_swp_exclusive, pte_swp_mkexclusive, pte_swp_clear_exclusive,
  pte_swp_uffd_wp, pte_swp_mkuffd_wp, pte_swp_clear_uffd_wp, pte_swp_soft_dirty,
  pte_swp_mksoft_dirty, pte_swp_clear_soft_dirty, is_migration_entry,
  is_writable_migration_entry, is_readable_migration_entry,
  is_readable_exclusive_migration_entry, make_readable_migration_entry,
  make_readable_exclusive_migration_entry, make_writable_migration_entry,
  is_device_private_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, make_writable_device_private_entry,
  is_device_exclusive_entry, is_writable_device_exclusive_entry,
  make_readable_device_exclusive_entry, make_writable_device_exclusive_entry,
  is_hwpoison_entry, make_hwpoison_entry, is_pfn_swap_entry, is_pte_marker_entry, is_pte_marker,
  make_pte_marker, pte_marker_get, pte_marker_uffd_wp, is_poisoned_swp_entry,
  is_guard_swp_entry, pte_kind,
} from "./pte";

export {
  PG_locked, PG_referenced, PG_uptodate, PG_dirty, PG_lru, PG_head, PG_tail, PG_active,
  PG_reserved, PG_writeback, PG_swapbacked, PG_swapcache, PG_anon_exclusive, PG_hwpoison,
  PG_buddy, PG_isolated, PG_zone_device, PG_ORDER_SHIFT, GUP_PIN_COUNTING_BIAS, ENTIRELY_MAPPED,
  PAGE_FIELD_FLAGS, PAGE_FIELD_REFCOUNT, PAGE_FIELD_MAPCOUNT, PAGE_FIELD_MAPPING, PAGE_FIELD_INDEX, PAGE_FIELD_PRIVATE,
  page_folio, folio_test_large, folio_order, folio_nr_pages, folio_test_anon, folio_test_ksm,
  folio_ref_count, folio_ref_add, folio_ref_sub_return, folio_ref_try_add, folio_ref_freeze,
  folio_ref_unfreeze, folio_maybe_dma_pinned, page_mapcount_raw, folio_mapcount,
  folio_entire_mapcount, folio_nr_pages_mapped, folio_pincount, PageAnonExclusive,
  SetPageAnonExclusive, ClearPageAnonExclusive, pfn_valid,
} from "./page";

export {
  alloc_pages, free_pages, split_block_to_order0, pageblock_free, frames_reserve, frames_unreserve,
  GFP_ZERO, MAX_PAGE_ORDER, pageblock_bitmap_addr,
} from "./page_alloc";

export {
  page_tag_set, page_tag_lo, page_tag_hi, page_data_addr, page_copy, page_clear,
} from "./content";

export {
  RMAP_EXCLUSIVE, folio_set_anon, folio_move_anon_rmap, folio_set_mapping, folio_mapping_id,
  folio_mapping_raw, folio_index, folio_add_new_anon_rmap, folio_add_rmap_ptes,
  folio_add_rmap_pmd, folio_add_anon_rmap_ptes, folio_add_anon_rmap_pmd,
  folio_remove_rmap_ptes, folio_remove_rmap_pmd, folio_try_dup_anon_rmap_ptes,
  folio_try_dup_anon_rmap_pmd, folio_try_share_anon_rmap_pte, folio_put_refs, folio_is_mapped,
  mm_counter_of,
} from "./rmap";

export {
  MMF_HAS_PINNED, MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, TRANSLATE_FAULT,
  mm_alloc, mm_free, mm_valid, mm_flags, mm_set_flags, mm_write_protect_seq,
  mm_write_protect_seq_inc, mm_nr_ptes, add_mm_counter, get_mm_counter, mm_count_tables,
  mm_pgd_addr, pt_alloc_table, pt_free_table, pt_reserve, pt_reserve_upto, pt_unreserve, tables_missing_at, translate_one, follow_pfn,
  mm_deposited_tables, free_pgd_range, ptep_get, pmdp_get, ptep_set, pmdp_set, ptep_get_and_clear, ptep_cmpxchg,
  ptep_set_wrprotect, ptep_addr, translate_batch,
} from "./pgtable";

export {
  SWAP_HAS_CACHE, folio_swap_slot, get_swap_slot, swap_map_get, swap_slot_valid, swap_count, swap_cache_pfn,
  swap_duplicate, swap_free, swapcache_clear, swapcache_prepare, swap_write_contents,
  swap_read_contents, swap_tag_lo, swap_tag_hi,
} from "./swapfile";

// The range operations, one walk each of pagewalk.ts, by the kernel file they mirror (in the
// order the ABI has always listed them: the generated mirror lists exports in this order).
export {
  REC_FORK_PINNED, REC_FORK_PMD_PINNED, REC_SWAP, REC_MIGRATION, REC_DEVICE_PRIVATE,
  REC_DEVICE_EXCLUSIVE, REC_HWPOISON, REC_MARKER, REC_PMD_PARTIAL, REC_ZAP_PAGE,
  REC_SWAP_CACHE_ONLY, REC_ZAP_PMD, ZAPPED_ANON, ZAPPED_DIRTY, ZAPPED_YOUNG, ZAPPED_FREED,
  ZAPPED_SWAPCACHE, ZAPPED_EXCLUSIVE, COPY_COW, COPY_SHARED, COPY_DST_UFFD_WP,
  COPY_DEFER_PINNED_ANY, COPY_DEFER_PINNED_EXCLUSIVE, COPY_VM_WRITE, COPY_EARLY_IN_CORE, COPY_NO_SWAP_RECORDS, ZAP_RECORD,
  ZAP_KEEP_UFFD_WP, ZAP_DROP_MARKERS, ZAP_FILE_ONLY, ANON_WRITE, ANON_VM_WRITE, ANON_UFFD_WP,
} from "./memory";
export { PAGEMAP_HUGE } from "./task_mmu";
export {
  FRESH_MM, copy_page_range, copy_page_range_count, fork_copy_deferred_pte, zap_page_range,
  do_anonymous_pages,
} from "./memory";
export { move_page_tables } from "./mremap";
export { pagemap_read } from "./task_mmu";
export { check_range } from "./pagewalk";

export {
  VM_READ, VM_WRITE, VM_SHARED, VM_UFFD_MISSING, VM_UFFD_WP, ACCESS_OK, ACCESS_NEED_FAULT,
  ACCESS_WP_FAULT, ACCESS_PROTNONE, ACCESS_SWAP, ACCESS_MARKER, ACCESS_MIGRATION, ACCESS_OTHER,
  ACCESS_HUGE, ACCESS_HUGE_PMD_FAULT, ACCESS_HWPOISON, ACCESS_ENOMEM, ACCESS_FAULT_WRITE, FAST_ANON, FAST_VM_WRITE,
  FAST_NO_ZEROPAGE, FAST_MTHP, FAST_THP_PMD, WPF_PFN, WPF_FOLIO,
  WPF_PAGE_FLAGS, WPF_FOLIO_FLAGS, WPF_REFCOUNT, WPF_MAPCOUNT, WPF_SWAPCOUNT, WPF_PTE,
  WPF_MAPPING, WPF_KIND, WPF_WORDS, WP_ANON, WP_ZERO, WP_FILE, REUSE_SET_EXCLUSIVE,
  REUSE_MOVE_ANON, REUSE_UNSHARE, WPCOPY_UNSHARE, WPCOPY_VM_WRITE, handle_access, handle_access_range, populate_range, POPULATE_RUN, folio_add_lru,
  lru_add_drain, lru_batch_count, lru_batch_folio, set_lru_batch_size, wp_fault_info, wp_page_reuse,
  wp_page_copy, map_file_pte, do_cow_fault, FAST_WP, FAST_SWAP, FAST_VM_SOFTDIRTY, SWR_ON, SWR_REFCOUNT,
  SWR_ENTRY_EXCLUSIVE, SWR_READ_EXCLUSIVE, set_swap_rule, WPR_ON, WPR_EXCLUSIVE, WPR_REFCOUNT, WPR_DRAIN,
  WPR_MAPCOUNT_TOO, WPR_MOVE_ANON, WPR_SET_EXCLUSIVE, WPR_LARGE_COPIES, set_wp_rule, handle_access_list, LIST_OTHER_VMA,
  FAST_LOG, FAST_LOG_WP_ONLY, ACCESS_LOG_FULL,
} from "./fault";

export {
  LOG_ACCESS, LOG_ANON, LOG_ZERO_PAGE, LOG_WP_REUSE, LOG_WP_COPY, LOG_WP_ZERO, LOG_ENTRY_BYTES, trace_log_base,
} from "./trace_log";

export {
  HUGE_ALLOC, HUGE_VM_WRITE, HUGE_MAPPED, HUGE_NO_FOLIO, HUGE_PMD_BUSY, SPLIT_DONE, SPLIT_FROZEN, SPLIT_FREEZE,
  huge_zero_folio_alloc, do_huge_pmd_anonymous_page, huge_pmd_fault_info, huge_pmd_reuse,
  split_huge_pmd, huge_pmd_at,
} from "./huge_memory";
export {
  SCAN_FAIL, SCAN_SUCCEED, SCAN_PMD_NULL, SCAN_PMD_NONE, SCAN_PMD_MAPPED, SCAN_EXCEED_NONE_PTE,
  SCAN_EXCEED_SWAP_PTE, SCAN_EXCEED_SHARED_PTE, SCAN_PTE_NON_PRESENT, SCAN_PTE_UFFD_WP, SCAN_PAGE_RO,
  SCAN_LACK_REFERENCED_PAGE, SCAN_PAGE_NULL, SCAN_PAGE_COUNT, SCAN_PAGE_LRU, SCAN_PAGE_LOCK, SCAN_PAGE_ANON,
  SCAN_ALLOC_HUGE_PAGE_FAIL, SCAN_NEEDS_SWAPIN, COLLAPSE_KHUGEPAGED, COLLAPSE_VM_WRITE, collapse_huge_page,
} from "./khugepaged";

export {
  MM_CP_TRY_CHANGE_WRITABLE, MM_CP_UFFD_WP, MM_CP_UFFD_WP_RESOLVE, MM_CP_CLEAR_SOFT_DIRTY, CP_VM_WRITE, CP_VM_SHARED,
  CP_SOFT_DIRTY_TRACKING, CP_VMA_UFFD_WP, CP_UFFD_USE_MARKERS, CP_MIGRATION_READ_ONLY, CP_KEEP_WRITABLE_ENTRIES,
  change_protection,
} from "./mprotect";

export {
  FOLL_WRITE, FOLL_GET, FOLL_FORCE, FOLL_LONGTERM, FOLL_PIN, FOLL_FAST_ONLY, GUPF_OK,
  GUPF_NO_TABLE, GUPF_NOT_PRESENT, GUPF_NOT_PERMITTED, GUPF_SPECIAL, GUPF_GRAB_FAILED,
  GUPF_PTE_CHANGED, GUPF_MUST_UNSHARE, GUPF_NOT_ALLOWED, GUPF_SEQ_RETRY, try_grab_folio,
  gup_put_folio, gup_fast, gup_fast_pte_begin, gup_fast_pte_finish, gup_fast_pte_pfn,
  gup_put_scratch, set_gup_fast_unshare, BREAK_PTE_RECHECK, BREAK_UNMAP_CLEAR, BREAK_WRITE_PROTECT_SEQ,
  set_protocol_breaks, protocol_breaks,
} from "./gup";

export { gup_fast_sync } from "./pgtable";

export {
  PIN_FREE, PIN_LIVE, PIN_OFF_STATE, PIN_OFF_GEN, PIN_OFF_MM, PIN_OFF_FLAGS, PIN_OFF_NR, PIN_OFF_TAG,
  PIN_OFF_VA, PIN_OFF_PFNS, PIN_RECORD_PAGES, pin_record_addr, gup_pin_fast, ctx_pin_slot,
  gup_unpin_record, gup_unpin_all, ctx_id, PIN_CYCLE_CALLS, PIN_CYCLE_PINS, PIN_CYCLE_PAGES,
  PIN_CYCLE_UNPINS, PIN_CYCLE_LOST, PIN_CYCLE_NO_RECORD, PIN_CYCLE_REASONS, pin_cycle_init,
  pin_cycle_count, gup_pin_cycle, pin_cycle_drain,
} from "./pin_registry";
export { PIN_RECORDS, PIN_RECORD_BYTES } from "./layout";

export {
  TTU_SHARE_ANON, TTU_SWP_EXCLUSIVE, SWAPIN_WRITABLE, SWAPIN_EXCLUSIVE, SWAPIN_DIRTY, add_to_swap,
  shrink_folio_begin, shrink_folio_end, SHRINK_NOT_ANON, SHRINK_BUSY, SHRINK_PINNED, SHRINK_SWAP_FULL, SHRINK_LARGE,
  SHRINK_MAPPED,
  try_to_unmap_one, swap_writepage, delete_from_swap_cache, remove_mapping_swapcache,
  folio_free_swap, swapin_read, swapin_map, swap_pte_slot, SWPINFO_EXCLUSIVE, SWPINFO_SOFT_DIRTY, SWPINFO_UFFD_WP,
} from "./swap_state";

export { try_to_unmap_one_hwpoison } from "./memory_failure";
export {
  MIGRATE_SHARE_ANON, MIGRATE_READ_EXCLUSIVE, MIGRATION_ENTRY_READ, MIGRATION_ENTRY_READ_EXCLUSIVE,
  MIGRATION_ENTRY_WRITE, MIGINFO_WRITE, MIGINFO_READ_EXCLUSIVE, MIGINFO_SOFT_DIRTY, MIGINFO_UFFD_WP,
  MIGINFO_YOUNG, MIGINFO_DIRTY, try_to_migrate_one, migrate_folio_alloc, migrate_folio_move,
  migrate_folio_alloc_order, set_pmd_migration_entry, remove_migration_pmd,
  remove_migration_pte, migration_entry_get,
} from "./migrate";
// PTE-mapped large folios: the mTHP fault, deferred split, split_folio()
export {
  MTHP_STAT_ANON_FAULT_ALLOC, MTHP_STAT_ANON_FAULT_FALLBACK, MTHP_STAT_ANON_FAULT_FALLBACK_CHARGE,
  MTHP_STAT_SWPOUT, MTHP_STAT_SWPOUT_FALLBACK, MTHP_STAT_SPLIT, MTHP_STAT_SPLIT_FAILED,
  MTHP_STAT_SPLIT_DEFERRED, NR_MTHP_STATS, PG_partially_mapped, mthp_stat, mthp_stat_total, count_mthp_stat, do_anonymous_folio,
  folio_test_partially_mapped, deferred_split_folio, can_split_folio, split_folio, deferred_split_scan,
} from "./large_folio";
export {
  MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_ANON, MIGRATE_VMA_SHARE_ANON,
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_EXCLUSIVE, MIGRATE_PFN_DEVICE,
  RESTORE_VM_WRITE, INSERT_VM_WRITE, memremap_page, memunmap_page, zone_device_page_init, page_pgmap, migrate_vma_collect,
  migrate_vma_insert_page, try_to_migrate_one_device, remove_migration_pte_device, migrate_device_move, make_device_exclusive_one,
  restore_exclusive_pte, device_entry_get,
} from "./migrate_device";
export {
  MFILL_COPY, MFILL_ZEROPAGE, MFILL_POISON, MFILL_FILE, MFILL_WP, MFILL_VM_WRITE, MFILL_VM_SHARED, MFILL_FAULT,
  UFFD_WP_PRESENT, UFFD_WP_SWAP, UFFD_WP_MARKER, UFFD_ENTRY_WRITABLE, UFFD_ENTRY_NONE, UFFD_ENTRY_PMD,
  mfill_atomic_range, uffd_wp_at, pte_marker_clear, page_tag_set,
} from "./userfaultfd";
export {
  move_pages_ptes, move_pages_pte_spans, move_pages_huge_pmd, move_pages_huge_pmds, uffd_alloc_tables, uffd_pmd_state, MOVE_STOP_LARGE, MOVE_STOP_MIGRATION,
  MOVE_STOP_LOCKED, UFFD_PMD_NO_SLOT, UFFD_PMD_NONE, UFFD_PMD_TABLE, UFFD_PMD_LEAF, UFFD_PMD_SWAP,
} from "./userfaultfd_move";

/**
 * Makes a machine given back as new, before cowsim_init(): zeroes everything from `lowEnd`
 * (the caller has put the data segments below it back) that its last life may have written —
 * all of it but the page tables its pool never handed out (above the pool's bump index, which
 * is most of a small machine's memory: 4 tables are kept for each of 256 mm_structs). In Wasm:
 * a typed array's fill() on a shared buffer is many times slower than memory.fill.
 */
export function memory_reset(lowEnd: f64): void {
  const size = <usize>memory.size() << 16;
  const low = <usize>lowEnd;
  if (!layout_ready()) {
    memory.fill(low, 0, size - low);
    return;
  }
  const H = hdr();
  const used = <usize>H.ptBase + (<usize>H.ptBump << 12);
  const poolEnd = <usize>H.ptBase + (<usize>H.ntables << 12);
  // the frame table (below the page-table pool) is left to cowsim_init(), which zeroes it only
  // when its layout puts something else there: otherwise page_alloc_init() writes it whole
  // (its place stays in the header, which is otherwise zero: no layout is ready)
  const frames = H.frameBase;
  const nframes = H.nframes;
  const framesEnd = <usize>frames + <usize>nframes * PAGE_STRUCT_BYTES;
  memory.fill(low, 0, <usize>frames - low);
  memory.fill(framesEnd, 0, used - framesEnd);
  memory.fill(poolEnd, 0, size - poolEnd);
  H.frameBase = frames;
  H.nframes = nframes;
}

/** Zeroes the frame table [from, to) memory_reset() left, unless `overwritten` (it is written whole next). */
function clearStaleFrames(from: usize, to: usize, overwritten: bool): void {
  if (!overwritten && to > from) memory.fill(from, 0, to - from);
}
