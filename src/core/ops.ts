/**
 * The core's operations as the kernel layer calls them: one typed method per Wasm export it
 * needs, named after the kernel function, with the core's u32 results made unsigned, its
 * "nothing" values made null, its booleans made booleans and its scratch records decoded. This
 * is the one place the raw exports are called from (besides the rest of src/core), so batching,
 * tracing and thread safety have one place to live.
 */
import { C, type CoreExports } from "./abi.generated.js";

/** What wp_fault_info() read of a present entry at a write-protect fault. @public */
export interface WpFaultInfo {
  /** WP_ANON, WP_ZERO or WP_FILE. */
  readonly kind: "anon" | "zero" | "file";
  /** Low 32 bits of the PTE. */
  readonly pte: number;
  readonly pfn: number;
  readonly folio: number;
  readonly pageFlags: number;
  readonly folioFlags: number;
  readonly refcount: number;
  readonly mapcount: number;
  /** The swap count of the folio's slot, when it is in the swap cache. */
  readonly swapcount: number;
  /** folio->mapping: an anon_vma id << 2 | PAGE_MAPPING_ANON (KSM: both low bits). */
  readonly mapping: number;
}

/** A swap entry found at an address, with its software bits. @public */
export interface SwapEntryInfo {
  readonly slot: number;
  readonly exclusive: boolean;
  readonly softDirty: boolean;
  readonly uffdWp: boolean;
}

/** A migration entry found at an address (migration_entry_get()). @public */
export interface MigrationEntryInfo {
  /** The folio under migration. */
  readonly pfn: number;
  /** SWP_MIGRATION_READ, SWP_MIGRATION_READ_EXCLUSIVE or SWP_MIGRATION_WRITE. */
  readonly type: "read" | "read-exclusive" | "write";
  readonly softDirty: boolean;
  readonly uffdWp: boolean;
  /** SWP_MIG_YOUNG: the PTE it replaced was young. */
  readonly young: boolean;
  /** SWP_MIG_DIRTY: the PTE it replaced was dirty. */
  readonly dirty: boolean;
}

const WP_KINDS: Record<number, WpFaultInfo["kind"]> = { [C.WP_ANON]: "anon", [C.WP_ZERO]: "zero", [C.WP_FILE]: "file" };

/** The typed operations over one thread's instance. @public */
export class CoreOps {
  constructor(
    /** @internal */
    private readonly x: CoreExports,
    /** @internal */
    private readonly ctx: number,
    private readonly u32: Uint32Array,
    private readonly scratch: number,
    private readonly scratchBytes: number,
  ) {
    this.aux0Index = (ctx + C.CTX_AUX0_OFFSET) >>> 2;
    this.logCountIndex = (ctx + C.CTX_LOG_COUNT_OFFSET) >>> 2;
    const base = x.trace_log_base(ctx) >>> 0;
    const entries = Math.floor(scratchBytes / 2 / C.LOG_ENTRY_BYTES);
    this.logWords = new Int32Array(u32.buffer, base, entries * (C.LOG_ENTRY_BYTES >>> 2));
    this.logF64 = new Float64Array(u32.buffer, base, entries * (C.LOG_ENTRY_BYTES >>> 3));
  }

  /** The u32 index of this context's aux0 word. */
  private readonly aux0Index: number;
  private readonly logCountIndex: number;
  /**
   * The context's trace log (assembly/trace_log.ts) as words and as f64s: entry i begins at
   * word i·12 (kind, pfn, newPfn, mapcount, refcount at the fault's start and after its drain,
   * folio flags) and f64 i·6 (+4 the address, +5 the value).
   */
  readonly logWords: Int32Array;
  readonly logF64: Float64Array;

  /** How many entries the trace log holds. */
  logCount(): number { return this.u32[this.logCountIndex]!; }
  /** Empties the trace log (its entries were delivered). */
  logReset(): void { this.u32[this.logCountIndex] = 0; }

  // ---- struct page / folio --------------------------------------------------------------------

  /** page_folio(): the head of the folio `pfn` belongs to. */
  pageFolio(pfn: number): number { return this.x.page_folio(pfn) >>> 0; }
  folioTestAnon(folio: number): boolean { return this.x.folio_test_anon(folio) === 1; }
  folioTestLarge(folio: number): boolean { return this.x.folio_test_large(folio) === 1; }
  folioTestKsm(folio: number): boolean { return this.x.folio_test_ksm(folio) === 1; }
  /** folio_mapped() */
  folioIsMapped(folio: number): boolean { return this.x.folio_is_mapped(folio) !== 0; }
  folioMapcount(folio: number): number { return this.x.folio_mapcount(folio); }
  folioRefCount(folio: number): number { return this.x.folio_ref_count(folio); }
  folioRefAdd(folio: number, nr: number): void { this.x.folio_ref_add(folio, nr); }
  /** folio_put_refs(): drops references, freeing the folio at zero. */
  folioPutRefs(folio: number, nr: number): void { this.x.folio_put_refs(folio, nr); }
  folioMaybeDmaPinned(folio: number): boolean { return this.x.folio_maybe_dma_pinned(folio) === 1; }
  /** The anon_vma (or shmem file) id in folio->mapping. */
  folioMappingId(folio: number): number { return this.x.folio_mapping_id(folio) >>> 0; }
  /** folio->index (page offset, modulo 2^32). */
  folioIndex(folio: number): number { return this.x.folio_index(folio) >>> 0; }
  folioPincount(folio: number): number { return this.x.folio_pincount(folio); }
  /** page_mapcount(): the mappings of one page — its PTEs, and its large folio's PMDs. */
  pageMapcount(pfn: number): number {
    const folio = this.pageFolio(pfn);
    return this.x.page_mapcount_raw(pfn) + 1 + (folio !== pfn || this.folioTestLarge(folio) ? this.x.folio_entire_mapcount(folio) : 0);
  }
  /** folio_entire_mapcount(): PMD mappings of a large folio. */
  folioEntireMapcount(folio: number): number { return this.x.folio_entire_mapcount(folio); }
  /** _nr_pages_mapped: PTE-mapped pages, plus ENTIRELY_MAPPED while a PMD maps the folio. */
  folioNrPagesMapped(folio: number): number { return this.x.folio_nr_pages_mapped(folio); }
  /** folio->swap's slot (a swap-cache folio). */
  folioSwapSlot(folio: number): number { return this.x.folio_swap_slot(folio) >>> 0; }
  /** folio_set_mapping(): a page-cache (shmem) folio of file `id` at `index`. */
  folioSetMapping(folio: number, id: number, index: number): void { this.x.folio_set_mapping(folio, id, index); }
  /** folio_add_lru(): onto this CPU's LRU batch. */
  folioAddLru(folio: number): void { this.x.folio_add_lru(this.ctx, folio); }
  pageTestFlag(pfn: number, bit: number): boolean { return this.x.page_test_flag(pfn, bit) === 1; }
  pageSetFlag(pfn: number, bit: number): void { this.x.page_set_flag(pfn, bit); }
  pageClearFlag(pfn: number, bit: number): void { this.x.page_clear_flag(pfn, bit); }
  PageAnonExclusive(pfn: number): boolean { return this.x.PageAnonExclusive(pfn) === 1; }
  /** alloc_pages() of order 0 with the GFP_* flags; null when no frame is left (or a reservation is short). */
  tryAllocPage(gfp = 0): number | null {
    const pfn = this.x.alloc_pages(this.ctx, 0, gfp) >>> 0;
    return pfn === C.NO_PFN ? null : pfn;
  }
  /**
   * alloc_pages() of `order` (0 … C.MAX_PAGE_ORDER; the caller checks it): a naturally aligned
   * folio of 2^order frames, compound for order ≥ 1, its head holding one reference; null
   * (nothing changed) when no free aligned block of that order is left. Its last
   * folio_put_refs() frees it whole.
   */
  tryAllocPages(order: number, gfp = 0): number | null {
    const pfn = this.x.alloc_pages(this.ctx, order, gfp) >>> 0;
    return pfn === C.NO_PFN ? null : pfn;
  }

  // ---- reservations and LRU batches -----------------------------------------------------------

  /** Reserves `n` page tables for this thread's next allocations; false (nothing taken) if short. */
  ptReserve(n: number): boolean { return this.x.pt_reserve(this.ctx, n) === 1; }
  ptUnreserve(): void { this.x.pt_unreserve(this.ctx); }
  framesReserve(n: number): boolean { return this.x.frames_reserve(this.ctx, n) === 1; }
  framesUnreserve(): void { this.x.frames_unreserve(this.ctx); }
  /** lru_add_drain(): empties this CPU's LRU batch; returns how many folios it moved. */
  lruAddDrain(): number { return this.x.lru_add_drain(this.ctx) >>> 0; }
  /** The folios waiting in this CPU's LRU batch, each holding a reference. */
  lruBatchFolios(): number[] {
    const out: number[] = [];
    for (let i = 0, n = this.x.lru_batch_count(this.ctx); i < n; i++) out.push(this.x.lru_batch_folio(this.ctx, i) >>> 0);
    return out;
  }
  setLruBatchSize(n: number): void { this.x.set_lru_batch_size(n); }
  /** The do_wp_page() rule the core decides write-protect faults by under FAST_WP (WPR_* bits; 0: none). */
  setWpRule(bits: number): void { this.x.set_wp_rule(bits); }
  /** The do_swap_page() rule the core takes swap-ins by under FAST_SWAP (SWR_* bits; 0: none). */
  setSwapRule(bits: number): void { this.x.set_swap_rule(bits); }
  /** GUP-fast backs off R/O pins of pages not PageAnonExclusive (5.19+), and the debug checks follow. */
  setGupFastUnshare(on: boolean): void { this.x.set_gup_fast_unshare(on ? 1 : 0); }
  /** The debug build's strategy checks (writable ⇒ PageAnonExclusive, never mapped writable twice). */
  setAnonExclusiveChecks(on: boolean): void { this.x.set_anon_exclusive_checks(on ? 1 : 0); }

  // ---- address spaces -------------------------------------------------------------------------

  /** mm_alloc(): an mm slot and its PGD; null when none is left. */
  tryMmAlloc(): number | null {
    const mm = this.x.mm_alloc(this.ctx);
    return mm < 0 ? null : mm;
  }
  mmFlags(mm: number): number { return this.x.mm_flags(mm) >>> 0; }
  mmSetFlags(mm: number, flags: number): void { this.x.mm_set_flags(mm, flags); }
  /** The page tables below the PGD, counted by a walk. */
  mmCountTables(mm: number): number { return this.x.mm_count_tables(mm); }
  /** mm->nr_ptes as kept. */
  mmNrPtes(mm: number): number { return this.x.mm_nr_ptes(mm); }
  /** get_mm_counter() of MM_ANONPAGES, MM_SHMEMPAGES, MM_SWAPENTS … */
  getMmCounter(mm: number, member: number): number { return this.x.get_mm_counter(mm, member); }
  /** How many page tables a fault at `addr` still needs (down to `level`: 3 = a PTE table). */
  tablesMissingAt(mm: number, addr: number, level = 3): number { return this.x.tables_missing_at(mm, addr, level) >>> 0; }
  /** The frame mapped at `addr` (0: the zero page), or null when nothing present is. */
  translateOne(mm: number, addr: number): number | null {
    const t = this.x.translate_one(mm, addr) >>> 0;
    return t & C.TRANSLATE_FAULT ? null : t;
  }
  /** follow_pfn(): the pfn a present entry at `addr` maps, or NO_PFN. */
  followPfn(mm: number, addr: number): number { return this.x.follow_pfn(mm, addr) >>> 0; }

  // ---- faults ---------------------------------------------------------------------------------

  /**
   * handle_access(): one access by the simulated CPU — a read returns the page's tag (≥ 0), a
   * write stores `hi:lo` and returns 0 — or a negative ACCESS_* code for the fault it needs.
   */
  handleAccess(mm: number, addr: number, write: number, lo: number, hi: number, fast: number, anonVma: number,
    index: number, prot: number): number {
    return this.x.handle_access(this.ctx, mm, addr, write, lo, hi, fast, anonVma, index, prot);
  }
  /**
   * handle_access_range(): handleAccess() for `n` pages `stride` pages apart in one call (page i
   * stores value + i·step); returns done·16 + the negated ACCESS_* code of the page it stopped at.
   */
  handleAccessRange(mm: number, addr: number, n: number, stride: number, write: number, lo: number, hi: number, step: number,
    fast: number, anonVma: number, index: number, prot: number): number {
    return this.x.handle_access_range(this.ctx, mm, addr, n, stride, write, lo, hi, step, fast, anonVma, index, prot);
  }
  /**
   * handle_access_list(): handleAccess() for addrs[from …] (and, for a write, values[from …]),
   * at most listCapacity() of them, in one call, while they fall in the VMA [start, end); returns
   * done·16 + the code of the entry it stopped at (LIST_OTHER_VMA or the negated ACCESS_* code).
   */
  handleAccessList(mm: number, addrs: readonly number[], values: readonly number[] | undefined, from: number, n: number,
    write: boolean, fast: number, anonVma: number, start: number, end: number, index0: number, prot: number): number {
    const f = (this.listF64 ??= new Float64Array(this.u32.buffer, this.scratch, this.listCapacity() * 2));
    for (let i = 0; i < n; i++) {
      f[2 * i] = addrs[from + i]!;
      if (write) f[2 * i + 1] = values?.[from + i] ?? 0;
    }
    return this.x.handle_access_list(this.ctx, mm, n, write ? 1 : 0, fast, anonVma, start, end, index0, prot);
  }
  /** How many entries handleAccessList() takes in one call: two f64 words each, in the scratch area's lower half (the trace log has the upper). */
  listCapacity(): number { return this.scratchBytes >>> 5; }
  private listF64: Float64Array | undefined;
  /** populate_range(): populate_vma_page_range()'s faults for `n` pages of one VMA and PMD; returns as handleAccessRange() does. */
  populateRange(mm: number, addr: number, n: number, write: boolean, runs: boolean, fast: number, anonVma: number, index: number, prot: number): number {
    return this.x.populate_range(this.ctx, mm, addr, n, write ? 1 : 0, runs ? 1 : 0, fast, anonVma, index, prot);
  }
  /**
   * wp_fault_info(): what a write-protect fault at `addr` finds, or the ACCESS_* code of a
   * non-present entry. The record is reused: it is valid until the next call (a fault's path
   * reads it at once).
   */
  wpFaultInfo(mm: number, addr: number): WpFaultInfo | number {
    return this.readWpInfo(this.x.wp_fault_info(this.ctx, mm, addr));
  }
  /**
   * huge_pmd_fault_info(): what do_huge_pmd_wp_page() finds at the PMD leaf mapping `addr`
   * (pfn and folio are the head), or ACCESS_NEED_FAULT. Reuses wpFaultInfo()'s record.
   */
  hugePmdFaultInfo(mm: number, addr: number): WpFaultInfo | number {
    return this.readWpInfo(this.x.huge_pmd_fault_info(this.ctx, mm, addr));
  }
  private readWpInfo(kind: number): WpFaultInfo | number {
    if (kind < 0) return kind;
    const s = this.scratch >>> 2;
    const u = this.u32;
    const r = this.wpf;
    r.kind = WP_KINDS[kind]!;
    r.pte = u[s + C.WPF_PTE]!;
    r.pfn = u[s + C.WPF_PFN]!;
    r.folio = u[s + C.WPF_FOLIO]!;
    r.pageFlags = u[s + C.WPF_PAGE_FLAGS]!;
    r.folioFlags = u[s + C.WPF_FOLIO_FLAGS]!;
    r.refcount = u[s + C.WPF_REFCOUNT]! | 0;
    r.mapcount = u[s + C.WPF_MAPCOUNT]! | 0;
    r.swapcount = u[s + C.WPF_SWAPCOUNT]!;
    r.mapping = u[s + C.WPF_MAPPING]!;
    return r;
  }
  private readonly wpf: { -readonly [K in keyof WpFaultInfo]: WpFaultInfo[K] } = {
    kind: "anon", pte: 0, pfn: 0, folio: 0, pageFlags: 0, folioFlags: 0, refcount: 0, mapcount: 0, swapcount: 0, mapping: 0,
  };
  /** huge_zero_folio_alloc(): the huge zero folio, or null (no free aligned 2 MiB). */
  hugeZeroFolioAlloc(): number | null {
    const pfn = this.x.huge_zero_folio_alloc(this.ctx) >>> 0;
    return pfn === C.NO_PFN ? null : pfn;
  }
  /** do_huge_pmd_anonymous_page() (HUGE_* flags): a HUGE_* code or ACCESS_ENOMEM. */
  doHugePmdAnonymousPage(mm: number, addr: number, anonVma: number, index: number, prot: number, flags: number,
    zeroFolio: number): number {
    return this.x.do_huge_pmd_anonymous_page(this.ctx, mm, addr, anonVma, index, prot, flags, zeroFolio);
  }
  /** do_huge_pmd_wp_page()'s reuse with REUSE_* flags: 0 or ACCESS_NEED_FAULT. */
  hugePmdReuse(mm: number, addr: number, flags: number, anonVma: number): number {
    return this.x.huge_pmd_reuse(this.ctx, mm, addr, flags, anonVma);
  }
  /**
   * __split_huge_pmd(): SPLIT_DONE, SPLIT_FROZEN, -EINVAL (nothing huge there) or ACCESS_ENOMEM.
   * `flags`: 0, or SPLIT_FREEZE with try_to_migrate()'s MIGRATE_* flags.
   */
  splitHugePmd(mm: number, addr: number, prot: number, flags: number): number {
    return this.x.split_huge_pmd(this.ctx, mm, addr, prot, flags);
  }
  /** The head of the THP a PMD leaf over `addr` maps (follow_pfn() of the aligned start), or NO_PFN. */
  pmdFolio(mm: number, addr: number): number { return this.x.follow_pfn(mm, addr - (addr % 2 ** 21)) >>> 0; }
  /** hpage_collapse_scan_pmd() + collapse_huge_page() (COLLAPSE_* flags): a SCAN_* result. */
  collapseHugePage(mm: number, addr: number, anonVma: number, index: number, prot: number, flags: number,
    maxNone: number, maxSwap: number, maxShared: number): number {
    return this.x.collapse_huge_page(this.ctx, mm, addr, anonVma, index, prot, flags, maxNone, maxSwap, maxShared);
  }
  /** What maps the 2 MiB around `addr`: 0 nothing huge, 1 a PMD leaf, 2 a PMD migration entry. */
  hugePmdAt(mm: number, addr: number): number { return this.x.huge_pmd_at(mm, addr); }
  /** wp_page_reuse() with REUSE_* flags. */
  wpPageReuse(mm: number, addr: number, flags: number, anonVma: number): number {
    return this.x.wp_page_reuse(this.ctx, mm, addr, flags, anonVma);
  }
  /** wp_page_copy(): the new pfn, or a negative ACCESS_* code (ENOMEM: nothing changed). */
  wpPageCopy(mm: number, addr: number, anonVma: number, index: number, flags: number): number {
    return this.x.wp_page_copy(this.ctx, mm, addr, anonVma, index, flags);
  }
  /** Maps page-cache page `pfn` at `addr` (do_read_fault() / do_shared_fault()). */
  mapFilePte(mm: number, addr: number, pfn: number, prot: number, write: boolean): number {
    return this.x.map_file_pte(this.ctx, mm, addr, pfn, prot, write ? 1 : 0);
  }
  /**
   * mfill_atomic() of `pages` pages from `addr` (UFFDIO_COPY / ZEROPAGE / POISON / CONTINUE, see
   * assembly/userfaultfd.ts): the pages filled, and the errno name's number of the page that
   * stopped the range (0 when none did).
   */
  mfillAtomicRange(mm: number, addr: number, pages: number, kind: number, anonVma: number, index: number, prot: number,
    lo: number, hi: number, flags: number): { done: number; errno: number } {
    const done = this.x.mfill_atomic_range(this.ctx, mm, addr, pages, kind, anonVma, index, prot, lo, hi, flags) >>> 0;
    return { done, errno: this.u32[this.aux0Index]! };
  }
  /** Stores page value `value` (a non-negative integer) into frame `pfn`'s contents. */
  setPageTag(pfn: number, value: number): void { this.x.page_tag_set(pfn, value >>> 0, Math.floor(value / 2 ** 32) >>> 0); }
  /** The uffd-wp state and kind of the entry at `addr` (C.UFFD_WP_* | C.UFFD_ENTRY_*). */
  uffdWpAt(mm: number, addr: number): number { return this.x.uffd_wp_at(mm, addr) >>> 0; }
  /** pte_marker_clear(): drops a PTE marker at `addr`; whether there was one. */
  pteMarkerClear(mm: number, addr: number): boolean { return this.x.pte_marker_clear(mm, addr) !== 0; }
  /** do_cow_fault(): page-cache page `pfn` copied into a new anonymous page mapped at `addr`; the new pfn or a negative ACCESS_* / errno code. */
  doCowFault(mm: number, addr: number, pfn: number, anonVma: number, index: number, prot: number, flags: number): number {
    return this.x.do_cow_fault(this.ctx, mm, addr, pfn, anonVma, index, prot, flags);
  }
  /** do_anonymous_page() for every none entry of [start, end), all or nothing: the pages mapped, or -ENOMEM. */
  doAnonymousPages(mm: number, start: number, end: number, anonVma: number, index: number, prot: number, flags: number): number {
    return this.x.do_anonymous_pages(this.ctx, mm, start, end, anonVma, index, prot, flags);
  }

  // ---- fork and mremap ------------------------------------------------------------------------

  /** copy_page_range_count(): what copying [start, end) would take — early-copy frames and page tables. */
  copyPageRangeCount(dst: number, src: number, start: number, end: number, flags: number): { frames: number; tables: number } {
    const n = this.x.copy_page_range_count(this.ctx, dst, src, start, end, flags);
    if (n < 0) throw new Error(`cowsim: copy_page_range_count failed with ${n}`);
    return { frames: n, tables: this.x.ctx_aux0(this.ctx) >>> 0 };
  }
  /** fork's answer for one REC_FORK_PINNED entry: share it (newPfn NO_PFN) or copy it into newPfn. */
  forkCopyDeferredPte(dst: number, src: number, addr: number, flags: number, newPfn: number, anonVma: number, index: number): number {
    return this.x.fork_copy_deferred_pte(this.ctx, dst, src, addr, flags, newPfn, anonVma, index);
  }
  /** move_page_tables(): 0, the number of PMD_PARTIAL records, or -ENOMEM. */
  movePageTables(mm: number, from: number, to: number, len: number): number {
    return this.x.move_page_tables(this.ctx, mm, from, to, len);
  }

  // ---- UFFDIO_MOVE ----------------------------------------------------------------------------

  /**
   * move_pages_pte() over `nr` pages under one source and one destination PMD (both PTE
   * tables): the pages done; moveStop() says why it stopped.
   */
  movePagesPtes(mm: number, dst: number, src: number, nr: number, mode: number, anonVma: number, dstIndex: number,
    prot: number): number {
    const done = this.x.move_pages_ptes(this.ctx, mm, dst, src, nr, mode, anonVma, dstIndex, prot);
    if (done < 0) throw new Error(`cowsim: move_pages_ptes failed with ${done}`);
    return done;
  }
  /**
   * move_pages_pte() over up to `nr` pages from `src`, span after span, for as long as both PMDs
   * of a span already point at PTE tables: the pages done; moveStop() says why it stopped (0 with
   * fewer than `nr` done: a PMD the caller's loop must take on).
   */
  movePagesPteSpans(mm: number, dst: number, src: number, nr: number, mode: number, anonVma: number, dstIndex: number,
    prot: number): number {
    return this.x.move_pages_pte_spans(this.ctx, mm, dst, src, nr, mode, anonVma, dstIndex, prot) >>> 0;
  }
  /** Why the last movePagesPtes() or movePagesPteSpans() stopped: 0 (done), an errno, or C.MOVE_STOP_*. */
  moveStop(): number { return this.u32[this.aux0Index]!; }
  /** move_pages_huge_pmd(): 0, -errno, or a C.MOVE_STOP_* code. */
  movePagesHugePmd(mm: number, dst: number, src: number, anonVma: number, dstIndex: number, prot: number): number {
    return this.x.move_pages_huge_pmd(this.ctx, mm, dst, src, anonVma, dstIndex, prot);
  }
  /** move_pages_huge_pmds(): up to `nr` whole PMD leaves onto none PMDs, in one call, until one is not that simple; the THPs moved. */
  movePagesHugePmds(mm: number, dst: number, src: number, nr: number, anonVma: number, dstIndex: number, prot: number): number {
    return this.x.move_pages_huge_pmds(this.ctx, mm, dst, src, nr, anonVma, dstIndex, prot) >>> 0;
  }
  /** mm_alloc_pmd() (level 2) or pte_alloc() (level 3) at `addr`: 0 or -ENOMEM. */
  uffdAllocTables(mm: number, addr: number, level: 2 | 3): number {
    return this.x.uffd_alloc_tables(this.ctx, mm, addr, level);
  }
  /** What is at PMD level over `addr`: C.UFFD_PMD_*. */
  uffdPmdState(mm: number, addr: number): number { return this.x.uffd_pmd_state(mm, addr); }

  // ---- GUP ------------------------------------------------------------------------------------

  /** try_grab_folio(): a reference or pin on `folio`, unless it is being freed. */
  tryGrabFolio(folio: number, refs: number, flags: number): boolean { return this.x.try_grab_folio(folio, refs, flags) === 1; }

  // ---- swap -----------------------------------------------------------------------------------

  /** The swap-cache folio of `slot`, or null. */
  swapCachePfn(slot: number): number | null {
    const pfn = this.x.swap_cache_pfn(slot) >>> 0;
    return pfn === C.NO_PFN ? null : pfn;
  }
  swapCount(slot: number): number { return this.x.swap_count(slot) >>> 0; }
  /** swap_map[]: the count and SWAP_HAS_CACHE (0: free). */
  swapMapGet(slot: number): number { return this.x.swap_map_get(slot) >>> 0; }
  swapFree(slot: number): void { this.x.swap_free(slot); }
  /** swap_duplicate() (swap_shmem_alloc() for a shmem page-cache entry): one more reference to `slot`; false when it is not in use. */
  swapDuplicate(slot: number): boolean { return this.x.swap_duplicate(slot) === 0; }
  /** folio_free_swap(): leaves the swap cache when no swap entry needs it. */
  folioFreeSwap(folio: number): boolean { return this.x.folio_free_swap(folio) === 1; }
  deleteFromSwapCache(folio: number): void { this.x.delete_from_swap_cache(folio); }
  /** add_to_swap(): a slot for the folio, which joins the swap cache; false when swap is full. */
  addToSwap(folio: number): boolean { return this.x.add_to_swap(folio) >= 0; }
  /** shrink_folio_list()'s tests and add_to_swap(): the slot to unmap to, or a SHRINK_* code (assembly/swap_state.ts). */
  shrinkFolioBegin(folio: number, reclaimsPinned: boolean): number { return this.x.shrink_folio_begin(folio, reclaimsPinned ? 1 : 0); }
  /** shrink_folio_list() after the rmap walk: 1 freed, 0 kept in the swap cache, or SHRINK_MAPPED / SHRINK_PINNED. */
  shrinkFolioEnd(folio: number, reclaimsPinned: boolean): number { return this.x.shrink_folio_end(folio, reclaimsPinned ? 1 : 0); }
  /** try_to_unmap_one() with TTU_* flags: 0, or -EBUSY when the folio may be pinned. */
  tryToUnmapOne(mm: number, addr: number, folio: number, flags: number): number {
    return this.x.try_to_unmap_one(mm, addr, folio, flags);
  }
  /**
   * The whole entry at `addr` (a PMD leaf's for a huge mapping), as a BigInt: only for the cold
   * paths that must show all 64 bits, as /proc/pid/pagemap does a swap entry's type.
   */
  ptepGet(mm: number, addr: number): bigint { return this.x.ptep_get(mm, addr); }
  /** try_to_unmap_one() with TTU_HWPOISON: 0, -ENOENT (the PTE does not map `pfn`), -EINVAL. */
  tryToUnmapOneHwpoison(mm: number, addr: number, pfn: number): number {
    return this.x.try_to_unmap_one_hwpoison(mm, addr, pfn);
  }
  swapWritepage(folio: number): void { this.x.swap_writepage(folio); }
  /** __remove_mapping() for the swap cache: frees the folio if nothing else holds it. */
  removeMappingSwapcache(folio: number): boolean { return this.x.remove_mapping_swapcache(folio) === 1; }
  /** The swap entry at `addr`, or null when the entry is not one. */
  swapPteSlot(mm: number, addr: number): SwapEntryInfo | null {
    const slot = this.x.swap_pte_slot(this.ctx, mm, addr);
    if (slot < 0) return null;
    const info = this.x.ctx_aux0(this.ctx) >>> 0;
    return {
      slot, exclusive: (info & C.SWPINFO_EXCLUSIVE) !== 0, softDirty: (info & C.SWPINFO_SOFT_DIRTY) !== 0,
      uffdWp: (info & C.SWPINFO_UFFD_WP) !== 0,
    };
  }
  /**
   * try_to_migrate_one() with MIGRATE_* flags: the migration entry installed
   * (MIGRATION_ENTRY_*), or -EBUSY (possibly pinned, the PTE restored) / -ENOENT.
   */
  tryToMigrateOne(mm: number, addr: number, folio: number, flags: number): number {
    return this.x.try_to_migrate_one(mm, addr, folio, flags);
  }
  /** alloc_migration_target(): an order-0 destination folio, or null when no frame is free. */
  migrateFolioAlloc(): number | null {
    const r = this.x.migrate_folio_alloc(this.ctx);
    return r < 0 ? null : r;
  }
  /** alloc_migration_target() of a large folio: a destination of `order`, or null when none is free. */
  migrateFolioAllocOrder(order: number): number | null {
    const r = this.x.migrate_folio_alloc_order(this.ctx, order);
    return r < 0 ? null : r;
  }
  /**
   * set_pmd_migration_entry() with MIGRATE_* flags for the THP `folio` mapped by the PMD at
   * `addr`: MIGRATION_ENTRY_*, or -EBUSY (possibly pinned, PMD restored), -ENOENT, -EINVAL.
   */
  setPmdMigrationEntry(mm: number, addr: number, folio: number, flags: number): number {
    return this.x.set_pmd_migration_entry(mm, addr, folio, flags);
  }
  /** remove_migration_pmd(): maps THP `dst` in place of `src`'s PMD migration entry; 0, 1 or 3 (exclusive). */
  removeMigrationPmd(mm: number, addr: number, src: number, dst: number, prot: number): number {
    return this.x.remove_migration_pmd(mm, addr, src, dst, prot);
  }
  /** __migrate_folio(): 0, or -EAGAIN when `src` has references the migration does not own. */
  migrateFolioMove(src: number, dst: number): number { return this.x.migrate_folio_move(src, dst); }
  /**
   * remove_migration_pte(): maps `dst` in place of `src`'s migration entry at `addr`; 0 when
   * there is none, 1 when restored, 3 when restored PageAnonExclusive.
   */
  removeMigrationPte(mm: number, addr: number, src: number, dst: number, prot: number): number {
    return this.x.remove_migration_pte(mm, addr, src, dst, prot);
  }
  /** The migration entry at `addr`, or null when the entry is not one. */
  migrationEntry(mm: number, addr: number): MigrationEntryInfo | null {
    const pfn = this.x.migration_entry_get(this.ctx, mm, addr);
    if (pfn < 0) return null;
    const info = this.x.ctx_aux0(this.ctx) >>> 0;
    return {
      pfn: pfn >>> 0,
      type: info & C.MIGINFO_WRITE ? "write" : info & C.MIGINFO_READ_EXCLUSIVE ? "read-exclusive" : "read",
      softDirty: (info & C.MIGINFO_SOFT_DIRTY) !== 0, uffdWp: (info & C.MIGINFO_UFFD_WP) !== 0,
      young: (info & C.MIGINFO_YOUNG) !== 0, dirty: (info & C.MIGINFO_DIRTY) !== 0,
    };
  }
  /** swap_read_folio(): the slot's contents into a new swap-cache frame; its pfn, or -ENOMEM. */
  swapinRead(slot: number): number { return this.x.swapin_read(this.ctx, slot); }
  /** Maps swapped-in `pfn` at `addr` in place of the swap entry (SWAPIN_* flags). */
  swapinMap(mm: number, addr: number, pfn: number, slot: number, prot: number, flags: number, anonVma: number, index: number): number {
    return this.x.swapin_map(mm, addr, pfn, slot, prot, flags, anonVma, index);
  }
  // ---- PTE-mapped large folios ------------------------------------------------------------------

  /**
   * do_anonymous_page() with alloc_anon_folio()'s order among `orders` (a bitmask): the order
   * mapped, -1 when the entry is no longer none (retry), or ACCESS_ENOMEM; `fellBack` is the
   * bitmask of orders whose allocation failed on the way.
   */
  doAnonymousFolio(mm: number, addr: number, orders: number, anonVma: number, index: number, prot: number, fast: number): { order: number; fellBack: number } {
    const order = this.x.do_anonymous_folio(this.ctx, mm, addr, orders, anonVma, index, prot, fast);
    return { order, fellBack: this.x.ctx_aux0(this.ctx) >>> 0 };
  }
  /** split_folio(): the pieces freed, or -EINVAL / -EBUSY (PMD-mapped) / -EAGAIN (extra references), nothing changed. */
  splitFolio(folio: number): number { return this.x.split_folio(folio); }
  /** can_split_folio(): no references beyond the mappings and the swap cache. */
  canSplitFolio(folio: number): boolean { return this.x.can_split_folio(folio) === 1; }
  /** On the deferred split queue (PG_partially_mapped). */
  folioTestPartiallyMapped(folio: number): boolean { return this.x.folio_test_partially_mapped(folio) === 1; }
  /** deferred_split_scan(): one shrinker pass; the frames freed. */
  deferredSplitScan(): number { return this.x.deferred_split_scan(); }
  /** The per-size counter `item` (MTHP_STAT_*) of folio order `order`. */
  mthpStat(order: number, item: number): number { return this.x.mthp_stat(order, item) >>> 0; }
  /** count_mthp_stat() for what the kernel layer decides (reclaim's swpout, swpout_fallback). */
  countMthpStat(order: number, item: number): void { this.x.count_mthp_stat(order, item); }
  folioOrder(folio: number): number { return this.x.folio_order(folio) >>> 0; }

  // ---- device memory (assembly/migrate_device.ts) ----------------------------------------------

  /** memremap_pages() of one page for pgmap `pgmap`: a free ZONE_DEVICE pfn, or null when no frame is free. */
  memremapPage(pgmap: number): number | null {
    const r = this.x.memremap_page(this.ctx, pgmap);
    return r < 0 ? null : r;
  }
  /** memunmap_pages() of one free device page: true when it went back to the allocator. */
  memunmapPage(pfn: number): boolean { return this.x.memunmap_page(pfn) === 0; }
  /** zone_device_page_init() + lock_page(): false when the device page is in use. */
  zoneDevicePageInit(pfn: number): boolean { return this.x.zone_device_page_init(pfn) === 0; }
  /** page->pgmap of a ZONE_DEVICE page, 0 for any other frame. */
  pagePgmap(pfn: number): number { return this.x.page_pgmap(pfn) >>> 0; }
  /** migrate_vma_insert_page() (INSERT_* flags): 0, -ENOMEM or -EBUSY. */
  migrateVmaInsertPage(mm: number, addr: number, page: number, anonVma: number, index: number, flags: number): number {
    return this.x.migrate_vma_insert_page(this.ctx, mm, addr, page, anonVma, index, flags);
  }
  /** try_to_migrate_one() of a device-private entry: 1, or -ENOENT. */
  tryToMigrateOneDevice(mm: number, addr: number, pfn: number, flags: number): number {
    return this.x.try_to_migrate_one_device(mm, addr, pfn, flags);
  }
  /** remove_migration_pte() onto device page `dst`: 0 (no entry of `src`), 1, or 3 (exclusive). */
  removeMigrationPteDevice(mm: number, addr: number, src: number, dst: number): number {
    return this.x.remove_migration_pte_device(mm, addr, src, dst);
  }
  /** folio_migrate_mapping() + folio_migrate_flags() of migrate_vma_pages(): 0, -EAGAIN or -EINVAL. */
  migrateDeviceMove(src: number, dst: number, extra: number): number { return this.x.migrate_device_move(src, dst, extra); }
  /** page_make_device_exclusive_one(): 1 (was writable), 0 (read-only), or -ENOENT. */
  makeDeviceExclusiveOne(mm: number, addr: number, pfn: number): number {
    return this.x.make_device_exclusive_one(mm, addr, pfn);
  }
  /** restore_exclusive_pte() (RESTORE_* flags): the pfn, or null when the entry is no device-exclusive one. */
  restoreExclusivePte(mm: number, addr: number, prot: number, flags: number): number | null {
    const r = this.x.restore_exclusive_pte(mm, addr, prot, flags);
    return r < 0 ? null : r;
  }
  /** The device entry at `addr`: its pfn, kind and writability, or null. */
  deviceEntry(mm: number, addr: number): DeviceEntryInfo | null {
    const pfn = this.x.device_entry_get(this.ctx, mm, addr);
    if (pfn < 0) return null;
    const info = this.x.ctx_aux0(this.ctx) >>> 0;
    return { pfn: pfn >>> 0, kind: info & 1 ? "private" : "exclusive", writable: (info & 4) !== 0 };
  }
}

/** A device-private or device-exclusive entry, as deviceEntry() reads it. */
export interface DeviceEntryInfo {
  readonly pfn: number;
  readonly kind: "private" | "exclusive";
  readonly writable: boolean;
}
