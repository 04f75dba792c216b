// Randomized range operations over a machine with every kind of entry near every level
// boundary, for the page walker's tests: one seed gives one machine and one sequence of calls,
// and a transcript of everything the calls returned and left behind — records, return values,
// resume addresses, RSS counters, vmstat, allocator counts and every byte of the simulated
// state. Only the core's raw exports are used, so the same case runs on any build of the core.
import { C, type Core } from "../../src/core/index.js";

/** mulberry32: small, fast and the same everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const PAGE = 4096;
export const PMD = 2 ** 21;
export const PUD = 2 ** 30;
export const PGD = 2 ** 39;
export const TASK_SIZE = 2 ** 47;
const BASE = 0x7f00_0000_0000;

/**
 * Where entries go and ranges start: just below and above a PMD, a PUD and a PGD boundary, the
 * last PMD below TASK_SIZE, and the first page of user space.
 */
export const HOT_SPOTS = [BASE + 5 * PMD, BASE + PUD, 0x7f80_0000_0000, TASK_SIZE - PMD, 0x1000];

/** The vmstat counters a transcript ends with (by name: counters added later change nothing). */
const VMSTAT_SEEN = [
  "PGALLOC", "PGFREE", "THP_ALLOC", "THP_FREE", "PGALLOC_FAIL", "PGTABLE_ALLOC", "PGTABLE_FREE", "PGTABLE_ALLOC_FAIL",
  "SWAP_SLOT_ALLOC", "SWAP_SLOT_FREE", "GUP_FAST_PINNED", "GUP_FAST_BACKOFF", "FORK_PTES_SHARED", "FORK_PTES_DEFERRED",
  "ZAP_PTES", "FAULT_ANON", "FAULT_ZERO_PAGE", "LRU_BATCH_DRAINED",
];

/** Where mremap moves to: a PGD entry nothing else uses, a fresh stretch for every move. */
const MOVE_AREA = 0x2000_0000_0000;

const bit = (b: number) => 2 ** b;
const P = bit(C._PAGE_BIT_PRESENT), W = bit(C._PAGE_BIT_RW), U = bit(C._PAGE_BIT_USER);
const A = bit(C._PAGE_BIT_ACCESSED), D = bit(C._PAGE_BIT_DIRTY), PN = bit(C._PAGE_BIT_PROTNONE);
const u64 = (v: bigint) => BigInt.asUintN(64, v);

export interface Case {
  /** Everything observed, in order. */
  transcript: number[];
  /** The transcript folded with the state bytes (FNV-1a, 32 bits). */
  digest: number;
}

/** The machine a case needs: a small scratch area, so records fill it and calls resume. */
export const CASE_OPTIONS = { frames: 16384, maxMms: 16, maxThreads: 2, scratchBytes: 4096 } as const;

class Fnv {
  h = 0x811c9dc5;
  word(x: number): void {
    let v = x >>> 0;
    for (let i = 0; i < 4; i++) {
      this.h = Math.imul(this.h ^ (v & 0xff), 0x01000193) >>> 0;
      v >>>= 8;
    }
  }
}

/** Builds the machine of `seed` on `core` and runs its calls. */
export function runCase(core: Core, seed: number, steps = 24): Case {
  const x = core.x;
  const ctx = core.ctx;
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const out: number[] = [];
  const log = (...v: number[]) => { for (const n of v) out.push(n); };
  // the checks of the debug build judge a strategy's decisions; random calls make none
  x.set_anon_exclusive_checks(0);
  x.set_debug_check(C.CHECK_REFCOUNT, 0);
  x.set_debug_check(C.CHECK_UFFD_WP_WRITE, 0);

  const mms = [x.mm_alloc(ctx), x.mm_alloc(ctx)];
  const parent = mms[0]!;
  // ---- the machine: entries of every kind around the hot spots ----------------------------
  const spots = HOT_SPOTS.filter(() => r() < 0.8);
  if (spots.length === 0) spots.push(HOT_SPOTS[0]!);
  const prot = P | U;
  for (const spot of spots) {
    const runs = 1 + int(4);
    for (let k = 0; k < runs; k++) {
      const at = Math.max(0, spot + (int(80) - 40) * PAGE);
      const n = 1 + int(r() < 0.2 ? 700 : 40);
      const end = Math.min(TASK_SIZE, at + n * PAGE);
      if (at >= end) continue;
      const kind = int(10);
      if (kind < 4) {
        x.do_anonymous_pages(ctx, parent, at, end, 1 + int(3), (at / PAGE) >>> 0, r() < 0.2 ? (P | U | PN) : prot,
          (r() < 0.8 ? C.ANON_WRITE : 0) | (r() < 0.7 ? C.ANON_VM_WRITE : 0) | (r() < 0.1 ? C.ANON_UFFD_WP : 0));
      } else {
        for (let a = at; a < end; a += PAGE) {
          if (x.ptep_get(parent, a) !== 0n || r() < 0.3) continue;
          const e = entry(kind, a);
          if (e !== null && x.ptep_set(ctx, parent, a, e) === 0) accountEntry(kind);
        }
      }
    }
    // a THP at a PMD-aligned slot near the spot, and now and then a PMD migration entry
    if (r() < 0.6) {
      const va = Math.floor(spot / PMD) * PMD + (int(3) - 1) * PMD;
      if (va >= 0 && va + PMD <= TASK_SIZE && x.pmdp_get(parent, va) === 0n) {
        const thp = x.alloc_pages(ctx, 9, 0) >>> 0;
        if (thp !== C.NO_PFN) {
          x.folio_add_new_anon_rmap(thp, 1, (va / PAGE) >>> 0, C.RMAP_EXCLUSIVE);
          const pmd = r() < 0.85
            ? u64(x.pmd_mkhuge(BigInt(thp) * 4096n + BigInt(P | U | A | D | (r() < 0.7 ? W : 0))))
            : u64(x.make_writable_migration_entry(BigInt(thp)));
          if (x.pmdp_set(ctx, parent, va, pmd) === 0) x.add_mm_counter(parent, C.MM_ANONPAGES, 512);
        }
      }
    }
  }
  // pins: some pages possibly pinned, so fork hands them back
  for (let i = 0; i < 4; i++) {
    const va = Math.max(0, pick(spots) + (int(80) - 40) * PAGE);
    const got = x.gup_fast(ctx, parent, va, 1 + int(3), C.FOLL_PIN | (r() < 0.5 ? C.FOLL_LONGTERM : 0));
    log(got, x.ctx_gup_reason(ctx));
  }

  function entry(kind: number, a: number): bigint | null {
    switch (kind) {
      case 4: { // swap entry, maybe exclusive, uffd-wp or soft-dirty
        const slot = x.get_swap_slot(r() < 0.3 ? (x.alloc_pages(ctx, 0, 0) >>> 0) : C.NO_PFN) >>> 0;
        if (slot === C.NO_PFN || x.swap_duplicate(slot) !== 0) return null;
        let e = u64(x.swp_entry(0, BigInt(slot)));
        if (r() < 0.5) e = u64(x.pte_swp_mkexclusive(e));
        if (r() < 0.2) e = u64(x.pte_swp_mkuffd_wp(e));
        if (r() < 0.2) e = u64(x.pte_swp_mksoft_dirty(e));
        return e;
      }
      case 5: { // migration entry of an anon page
        const pfn = x.alloc_pages(ctx, 0, 0) >>> 0;
        if (pfn === C.NO_PFN) return null;
        x.folio_add_new_anon_rmap(pfn, 1, (a / PAGE) >>> 0, C.RMAP_EXCLUSIVE);
        return u64(r() < 0.5 ? x.make_writable_migration_entry(BigInt(pfn)) : x.make_readable_migration_entry(BigInt(pfn)));
      }
      case 6: { // PTE markers
        const m = pick([C.PTE_MARKER_UFFD_WP, C.PTE_MARKER_GUARD, C.PTE_MARKER_POISONED, C.PTE_MARKER_UFFD_WP | C.PTE_MARKER_GUARD]);
        return u64(x.make_pte_marker(m));
      }
      case 7: { // a shmem page, mapped shared
        const pfn = x.alloc_pages(ctx, 0, 0) >>> 0;
        if (pfn === C.NO_PFN) return null;
        x.folio_set_mapping(pfn, 5, (a / PAGE) >>> 0);
        x.page_set_flag(pfn, C.PG_swapbacked);
        x.map_file_pte(ctx, parent, a, pfn, P | U | (r() < 0.5 ? W : 0), r() < 0.5 ? 1 : 0);
        return null;
      }
      case 8: { // device-private or device-exclusive entry of an anon page
        const pfn = x.alloc_pages(ctx, 0, 0) >>> 0;
        if (pfn === C.NO_PFN) return null;
        x.folio_add_new_anon_rmap(pfn, 1, (a / PAGE) >>> 0, C.RMAP_EXCLUSIVE);
        return u64(r() < 0.7 ? x.make_writable_device_private_entry(BigInt(pfn)) : x.make_writable_device_exclusive_entry(BigInt(pfn)));
      }
      default: { // hwpoison, or a present anon page with uffd-wp / soft-dirty bits
        const pfn = x.alloc_pages(ctx, 0, 0) >>> 0;
        if (pfn === C.NO_PFN) return null;
        if (r() < 0.3) return u64(x.make_hwpoison_entry(BigInt(pfn)));
        x.folio_add_new_anon_rmap(pfn, 2, (a / PAGE) >>> 0, C.RMAP_EXCLUSIVE);
        let e = BigInt(pfn) * 4096n + BigInt(P | U | A | (r() < 0.5 ? D : 0) | (r() < 0.5 ? W : 0));
        if (r() < 0.3) e = u64(x.pte_mkuffd_wp(e));
        if (r() < 0.3) e = u64(x.pte_mksoft_dirty(e));
        return e;
      }
    }
  }
  function accountEntry(kind: number): void {
    if (kind === 4) x.add_mm_counter(parent, C.MM_SWAPENTS, 1);
    if (kind === 5 || kind === 8 || kind === 9) x.add_mm_counter(parent, C.MM_ANONPAGES, 1);
  }

  // ---- the calls ----------------------------------------------------------------------------
  const randomRange = (): [number, number] => {
    const start = Math.max(0, pick(HOT_SPOTS) + (int(100) - 50) * PAGE - (r() < 0.3 ? int(3) * PMD : 0));
    const len = pick([1 + int(16), 1 + int(700), 512 * (1 + int(3)), 512 * 512 + int(600), 1 + int(8) * 262144]) * PAGE;
    return [start, Math.min(TASK_SIZE, start + len)];
  };
  const records = (n: number) => {
    const s = core.scratch >>> 2;
    for (let i = 0; i < n * 4; i++) out.push(core.u32[s + i]!);
  };
  /** Calls `op` from `start` until its range is done, as the binding does. */
  const ranged = (start: number, end: number, op: (from: number) => number) => {
    for (let from = start, calls = 0; calls < 10000; calls++) {
      const n = op(from);
      log(n);
      if (n < 0) return;
      records(n);
      const next = x.ctx_next(ctx);
      log(next);
      if (next >= end) return;
      from = next;
    }
  };
  let moveAt = MOVE_AREA;
  for (let step = 0; step < steps; step++) {
    const [start, end] = randomRange();
    const op = int(11);
    log(op, start, end);
    switch (op) {
      case 0: case 1: { // fork: the dry run, then the copy into a fresh child, then the strategy's answers
        const flags = pick([C.COPY_COW, C.COPY_COW | C.COPY_DEFER_PINNED_EXCLUSIVE, C.COPY_COW | C.COPY_DEFER_PINNED_ANY,
          C.COPY_SHARED, C.COPY_COW | C.COPY_DST_UFFD_WP | C.COPY_VM_WRITE]);
        log(x.copy_page_range_count(ctx, C.FRESH_MM, parent, start, end, flags), x.ctx_aux0(ctx));
        const child = x.mm_alloc(ctx);
        if (child < 0) break;
        mms.push(child);
        const deferred: number[] = [];
        ranged(start, end, (from) => {
          const n = x.copy_page_range(ctx, child, parent, from, end, flags, 0, 0);
          const s = core.scratch >>> 2;
          for (let i = 0; i < n; i++) {
            if (core.u32[s + i * 4] === C.REC_FORK_PINNED) deferred.push(from + core.u32[s + i * 4 + 1]! * PAGE);
          }
          return n;
        });
        for (const va of deferred) {
          const copy = r() < 0.5 ? x.alloc_pages(ctx, 0, 0) >>> 0 : C.NO_PFN;
          log(x.fork_copy_deferred_pte(ctx, child, parent, va, flags, copy, 7, (va / PAGE) >>> 0));
        }
        x.pt_unreserve(ctx);
        break;
      }
      case 2: { // zap, in the parent or a child
        const mm = pick(mms);
        const flags = int(8);
        ranged(start, end, (from) => x.zap_page_range(ctx, mm, from, end, flags));
        if (r() < 0.5) log(x.free_pgd_range(mm, start, end));
        break;
      }
      case 3: { // change_protection
        const newprot = pick([P | U, P | U | W, PN | U, P | U | W]);
        const cp = int(2) * C.MM_CP_TRY_CHANGE_WRITABLE | pick([0, C.MM_CP_UFFD_WP, C.MM_CP_UFFD_WP_RESOLVE, C.MM_CP_CLEAR_SOFT_DIRTY]) |
          (r() < 0.5 ? C.CP_VM_WRITE : 0) | (r() < 0.3 ? C.CP_VM_SHARED : 0) | (r() < 0.3 ? C.CP_SOFT_DIRTY_TRACKING : 0) |
          (r() < 0.3 ? C.CP_VMA_UFFD_WP : 0) | (r() < 0.4 ? C.CP_UFFD_USE_MARKERS : 0);
        log(x.change_protection(ctx, pick(mms), start, end, newprot, cp), x.ctx_nr_records(ctx));
        records(x.ctx_nr_records(ctx) >>> 0);
        break;
      }
      case 4: { // populate
        const flags = int(8);
        log(x.do_anonymous_pages(ctx, pick(mms), start, end, 3, (start / PAGE) >>> 0, pick([P | U, P | U | PN]), flags));
        break;
      }
      case 5: { // mremap's move into a fresh stretch, misaligned now and then
        const len = Math.min(end - start, 3 * PMD + 77 * PAGE);
        const to = moveAt + (r() < 0.5 ? int(512) * PAGE : 0);
        moveAt += 2 * PUD;
        log(x.move_page_tables(ctx, parent, start, to, len));
        records(x.ctx_nr_records(ctx) >>> 0);
        log(x.ctx_next(ctx));
        break;
      }
      case 6: case 7: { // pagemap of any mm
        const mm = pick(mms);
        ranged(start, end, (from) => x.pagemap_read(ctx, mm, from, end));
        break;
      }
      case 8: { // translation, batched and one at a time, and follow_pfn()
        const n = 1 + int(200);
        const f = core.scratch >>> 3;
        const addrs: number[] = [];
        for (let i = 0; i < n; i++) addrs.push(Math.min(TASK_SIZE - 1, start + int(Math.max(1, (end - start) / PAGE)) * PAGE + int(PAGE)));
        const mm = pick(mms);
        for (let i = 0; i < n; i++) core.f64[f + i] = addrs[i]!;
        log(x.translate_batch(ctx, mm, n));
        const o = (core.scratch + n * 8) >>> 2;
        for (let i = 0; i < n; i++) log(core.u32[o + i]!);
        for (const a of addrs.slice(0, 20)) log(x.translate_one(mm, a), x.follow_pfn(mm, a));
        break;
      }
      case 9: { // GUP-fast, and the pins dropped again
        const nr = 1 + int(Math.min(1000, Math.max(1, (end - start) / PAGE)));
        const flags = pick([C.FOLL_PIN, C.FOLL_GET, C.FOLL_PIN | C.FOLL_WRITE, C.FOLL_GET | C.FOLL_WRITE, C.FOLL_PIN | C.FOLL_LONGTERM]);
        const got = x.gup_fast(ctx, pick(mms), start, nr, flags);
        log(got, x.ctx_gup_reason(ctx));
        if (got > 0) {
          records(Math.ceil(got / 4));
          if (r() < 0.7) x.gup_put_scratch(ctx, got, flags);
        }
        break;
      }
      default: { // the dry run alone, into an existing child
        const dst = mms.length > 2 ? mms[2 + int(mms.length - 2)]! : C.FRESH_MM;
        log(x.copy_page_range_count(ctx, dst, parent, start, end, pick([C.COPY_COW, C.COPY_COW | C.COPY_DEFER_PINNED_ANY])), x.ctx_aux0(ctx));
      }
    }
  }

  // ---- what is left -------------------------------------------------------------------------
  for (const mm of mms) {
    log(x.mm_nr_ptes(mm), x.mm_count_tables(mm), x.mm_write_protect_seq(mm), x.mm_flags(mm));
    for (const m of [C.MM_FILEPAGES, C.MM_ANONPAGES, C.MM_SWAPENTS, C.MM_SHMEMPAGES]) log(x.get_mm_counter(mm, m));
  }
  log(x.layout_pt_available(), x.layout_free_pages(), x.layout_swap_available());
  const vm = core.vmstat();
  for (const k of VMSTAT_SEEN) log(vm[k]!);
  const h = new Fnv();
  for (const v of out) h.word(v);
  // every byte of the simulated state, structure by structure (where each starts is the
  // layout's business): the mm table, pageblocks, frames, page tables, swap map and contents
  const L = core.layout;
  const regions: [number, number][] = [
    [L.mmBase, L.maxMms * 64], [L.blockBase, L.frameBase - L.blockBase], [L.frameBase, L.nframes * L.pageStructBytes],
    [L.ptBase, L.ntables * PAGE], [L.swapBase, L.nslots * L.swapStride], [L.contentBase, L.nframes * L.contentStride],
  ];
  for (const [at, bytes] of regions) {
    const words = core.u32.subarray(at >>> 2, (at + bytes) >>> 2);
    for (let i = 0; i < words.length; i++) h.word(words[i]!);
  }
  return { transcript: out, digest: h.h };
}
