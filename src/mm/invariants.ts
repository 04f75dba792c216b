/**
 * The invariants of the design (mm/debug_vm_pgtable.c and page_table_check in spirit), checked
 * on demand and after every step when asked: they read the page tables as the ground truth of
 * who maps what, and compare every counter and flag the kernel keeps against it.
 */
import { C } from "../core/index.js";
import type { MmKernel } from "./kernel.js";
import type { Vma } from "./vma.js";
import { hex } from "./vma.js";

/** One violated invariant. @public */
export interface InvariantViolation {
  readonly invariant:
    | "pte-valid" | "mapcount" | "anon-exclusive-writable" | "refcount" | "rmap" | "rss" | "page-tables"
    | "no-leak" | "pinned-exclusive" | "pinned-unmapped" | "swap-count";
  readonly detail: string;
}

/** Who holds a reference to a frame (or, for the swap cache, keeps it). @public */
export type FrameHolder =
  | { readonly kind: "mapping"; readonly pid: number; readonly address: number }
  | { readonly kind: "lru-batch" }
  | { readonly kind: "isolated"; readonly refs: number }
  | { readonly kind: "locked" }
  | { readonly kind: "migration"; readonly src: number }
  | { readonly kind: "gup"; readonly owner: string; readonly pid: number; readonly refs: number }
  | { readonly kind: "shmem"; readonly file: number; readonly index: number }
  | { readonly kind: "swap-cache"; readonly slot: number; readonly swapCount: number }
  /** memory_failure()'s reference to a poisoned frame: never dropped, the frame is lost. */
  | { readonly kind: "hwpoison" }
  /** A ZONE_DEVICE page of pgmap `pgmap`: the device owns the frame (free: on its free list). */
  | { readonly kind: "device"; readonly pgmap: number; readonly free: boolean }
  /** A device-exclusive entry keeps the reference of the mapping it replaced. */
  | { readonly kind: "device-exclusive"; readonly pid: number; readonly address: number };

/** A frame that is not free, with everything that holds it. @public */
export interface HeldFrame {
  readonly pfn: number;
  readonly refcount: number;
  readonly holders: readonly FrameHolder[];
}

/** A swap slot in use: its swap count (swap entries naming it) and its swap-cache frame. @public */
export interface UsedSwapSlot {
  readonly slot: number;
  readonly swapCount: number;
  readonly cachedPfn: number | null;
}

const W = 2 ** C._PAGE_BIT_RW;
const SPECIAL = 2 ** C._PAGE_BIT_SPECIAL;
const SWAP_HAS_CACHE = 2 ** 30;
const SWAP_COUNT_MASK = SWAP_HAS_CACHE - 1;

/** Says who a holder is, for messages. */
export function describeHolder(h: FrameHolder): string {
  switch (h.kind) {
    case "mapping": return `mapped by pid ${h.pid} at 0x${h.address.toString(16)}`;
    case "lru-batch": return "waiting in a per-CPU LRU batch";
    case "locked": return "locked by an actor outside the processes (lockFolio())";
    case "migration": return `the destination of pfn ${h.src}'s migration, not yet finished`;
    case "isolated": return `isolated for migration or compaction (${h.refs} reference${h.refs > 1 ? "s" : ""})`;
    case "gup": return `referenced by the ${h.owner} of pid ${h.pid} (${h.refs === C.GUP_PIN_COUNTING_BIAS ? "a pin" : `${h.refs} reference${h.refs > 1 ? "s" : ""}`})`;
    case "shmem": return `in the page cache of shmem file ${h.file}, page ${h.index}`;
    case "hwpoison": return "kept by memory_failure(): hardware-poisoned, never freed";
    case "device": return `device-private memory of pgmap ${h.pgmap}${h.free ? ", free on the device's list" : ""}`;
    case "device-exclusive": return `held by pid ${h.pid}'s device-exclusive entry at 0x${h.address.toString(16)}`;
    case "swap-cache": return h.swapCount > 0
      ? `in the swap cache for slot ${h.slot}, which ${h.swapCount} swap entr${h.swapCount > 1 ? "ies name" : "y names"}`
      : `in the swap cache for slot ${h.slot}, idle (no swap entry names it; reclaim frees it)`;
  }
}

/** Adds a holder to a frame's list. */
function addHolder(held: Map<number, FrameHolder[]>, pfn: number, h: FrameHolder): void {
  const l = held.get(pfn);
  if (l) l.push(h); else held.set(pfn, [h]);
}

/**
 * The references the kernel and its users hold besides page-table mappings, per frame; the
 * device-exclusive entries' come from the caller's walk of the page tables, which finds them.
 */
function heldOutsidePageTables(k: MmKernel, deviceExclusive: ReadonlyMap<number, readonly FrameHolder[]>): Map<number, FrameHolder[]> {
  const ops = k.ops;
  const held = new Map<number, FrameHolder[]>();
  const add = (pfn: number, h: FrameHolder) => addHolder(held, pfn, h);
  for (const folio of ops.lruBatchFolios()) add(folio, { kind: "lru-batch" });
  for (const f of k.shmem.files) for (const [index, pfn] of f.pages) add(pfn, { kind: "shmem", file: f.id, index });
  for (const pfn of k.isolatedFolios()) add(pfn, { kind: "isolated", refs: k.transientRefs(pfn) });
  for (const pfn of k.lockedFolios()) add(pfn, { kind: "locked" });
  for (const [pfn, refs] of k.hwpoisoned) for (let i = 0; i < refs; i++) add(pfn, { kind: "hwpoison" });
  for (const [src, dst] of k.migrating) add(dst, { kind: "migration", src });
  for (const pgmap of k.pgmaps.values()) {
    for (const pfn of pgmap.pfns) add(pfn, { kind: "device", pgmap: pgmap.id, free: ops.folioRefCount(pfn) === 0 });
  }
  for (const [pfn, hs] of deviceExclusive) for (const h of hs) add(pfn, h);
  for (const pin of k.pins.all(k)) {
    for (const pfn of pin.pfns) {
      const folio = ops.pageFolio(pfn);
      const refs = !pin.isPin ? 1 : folio === 0 ? 0 : ops.folioTestLarge(folio) ? 1 : C.GUP_PIN_COUNTING_BIAS;
      if (refs) add(folio, { kind: "gup", owner: pin.owner, pid: pin.pid, refs });
    }
  }
  for (const g of k.pins.inFlight) {
    const folio = ops.pageFolio(g.begun!.pfn);
    const refs = !(g.flags & C.FOLL_PIN) ? 1 : ops.folioTestLarge(folio) ? 1 : C.GUP_PIN_COUNTING_BIAS;
    add(folio, { kind: "gup", owner: "gup_fast", pid: g.pid, refs });
  }
  return held;
}

/** Whether the owner's entry at `addr` is a swap entry cached by `pfn`, or a migration entry for it. */
function unmappedBehindPin(k: MmKernel, mm: number, addr: number, pfn: number): boolean {
  const m = k.ops.migrationEntry(mm, addr);
  if (m !== null) return m.pfn === pfn;
  const s = k.ops.swapPteSlot(mm, addr);
  return s !== null && k.ops.swapCachePfn(s.slot) === pfn;
}

/** A holder's share of the frame's reference count. */
function refsOf(h: FrameHolder): number {
  switch (h.kind) {
    case "isolated": case "gup": return h.refs;
    case "device": return 0;
    default: return 1;
  }
}

const NOT_ALLOCATED = (1 << C.PG_buddy) | (1 << C.PG_reserved) | (1 << C.PG_tail);

/**
 * Frames that are not free: order-0 frames and heads of large folios, skipping the zero page.
 * A wholly free pageblock is skipped whole: a scenario's kernel uses a few of its blocks, and this
 * ran after every step.
 */
function allocatedFolios(k: MmKernel, fn: (pfn: number) => void): void {
  const t = k.core.frames;
  const n = t.nframes;
  for (let block = 0; block * C.HPAGE_PMD_NR < n; block++) {
    if (t.blockFree(block)) continue;
    const end = Math.min(n, (block + 1) * C.HPAGE_PMD_NR);
    for (let pfn = Math.max(1, block * C.HPAGE_PMD_NR); pfn < end; pfn++) if (!(t.flags(pfn) & NOT_ALLOCATED)) fn(pfn);
  }
}

/**
 * Every frame that is not free, with what holds it: the page tables' mappings, the swap cache,
 * LRU batches, isolation, GUP users and the shmem page cache. What is left after every process
 * exited, and why.
 */
export function heldFrames(k: MmKernel): HeldFrame[] {
  const ops = k.ops;
  const deviceExclusive = new Map<number, FrameHolder[]>();
  const mappings: [number, FrameHolder][] = [];
  for (const p of k.processes.values()) {
    for (const vma of p.vmas) {
      for (const r of k.core.pagemap(p.mm, vma.start, vma.end)) {
        const kind = r.kind & 0xff;
        if (kind === C.PTE_KIND_DEVICE_EXCLUSIVE) addHolder(deviceExclusive, r.pfn, { kind: "device-exclusive", pid: p.pid, address: r.address });
        if (kind !== C.PTE_KIND_DEVICE_PRIVATE && ((kind !== C.PTE_KIND_PRESENT && kind !== C.PTE_KIND_PROTNONE) || r.aux & SPECIAL)) continue;
        const folio = ops.pageFolio(r.pfn);
        if (folio === k.hugeZeroFolio) continue;
        mappings.push([folio, { kind: "mapping", pid: p.pid, address: r.address }]);
      }
    }
  }
  // the mappings after everything else that holds a frame
  const held = heldOutsidePageTables(k, deviceExclusive);
  for (const [folio, h] of mappings) addHolder(held, folio, h);
  const out: HeldFrame[] = [];
  const t = k.core.frames;
  allocatedFolios(k, (pfn) => {
    const holders = [...(held.get(pfn) ?? [])];
    if (t.test(pfn, C.PG_swapcache)) {
      const slot = t.swapSlot(pfn);
      holders.push({ kind: "swap-cache", slot, swapCount: ops.swapCount(slot) });
    }
    out.push({ pfn, refcount: t.refcount(pfn), holders });
  });
  return out;
}

/**
 * A large folio's counters against its mappings (Linux 6.12's accounting): each page's
 * _mapcount its PTE mappings; _entire_mapcount the PMD mappings; _large_mapcount all of them;
 * _nr_pages_mapped the pages some PTE maps, plus ENTIRELY_MAPPED while a PMD maps it; and the
 * references: one per mapping, one per page in the swap cache, and the holders'.
 */
function checkLargeFolio(k: MmKernel, folio: number, ptesOf: Map<number, number>, pmds: number,
  holders: FrameHolder[] | undefined, bad: (invariant: InvariantViolation["invariant"], detail: string) => void): void {
  const ops = k.ops;
  const t = k.core.frames;
  const nr = 2 ** ops.folioOrder(folio);
  let ptes = 0, pagesMapped = 0;
  for (let i = 0; i < nr; i++) {
    const n = ptesOf.get(folio + i) ?? 0;
    ptes += n;
    if (n > 0) pagesMapped++;
    if (t.mapcount(folio + i) !== n) bad("mapcount", `large folio ${folio}: page ${i} has _mapcount + 1 = ${t.mapcount(folio + i)}, but ${n} PTEs map it`);
  }
  if (ops.folioEntireMapcount(folio) !== pmds) bad("mapcount", `large folio ${folio}: _entire_mapcount + 1 = ${ops.folioEntireMapcount(folio)}, but ${pmds} PMDs map it`);
  if (ops.folioMapcount(folio) !== ptes + pmds) bad("mapcount", `large folio ${folio}: _large_mapcount + 1 = ${ops.folioMapcount(folio)}, but ${ptes} PTEs and ${pmds} PMDs map it`);
  const nrMapped = pagesMapped + (pmds > 0 ? C.ENTIRELY_MAPPED : 0);
  if (ops.folioNrPagesMapped(folio) !== nrMapped) bad("mapcount", `large folio ${folio}: _nr_pages_mapped ${ops.folioNrPagesMapped(folio)}, but ${nrMapped} expected`);
  let need = ptes + pmds + (t.test(folio, C.PG_swapcache) ? nr : 0);
  if (holders) for (const h of holders) need += refsOf(h);
  if (t.refcount(folio) !== need) bad("refcount", `large folio ${folio}: refcount ${t.refcount(folio)}, but ${need} (mappings + references the kernel and its users hold)`);
}

/** Every swap slot in use. */
export function usedSwapSlots(k: MmKernel): UsedSwapSlot[] {
  const ops = k.ops;
  const out: UsedSwapSlot[] = [];
  const { swapBase, swapStride, nslots } = k.core.layout;
  // slot 0 is never handed out: every other slot free, nothing to read
  if (k.core.swapSlotsAvailable() === nslots - 1) return out;
  // read the swap map straight from memory (swap_map_get()'s load): a call into the core per
  // slot made this scan of every slot, after every step, most of a check's time
  const u32 = k.core.u32;
  const stride = swapStride >>> 2;
  // plain loads: the invariants are checked between steps, with no other thread inside the core
  for (let slot = 1, w = (swapBase >>> 2) + stride; slot < nslots; slot++, w += stride) {
    const map = u32[w]!;
    if (map === 0) continue;
    out.push({ slot, swapCount: map & SWAP_COUNT_MASK, cachedPfn: map & SWAP_HAS_CACHE ? ops.swapCachePfn(slot) : null });
  }
  return out;
}

export function checkInvariants(k: MmKernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const ops = k.ops;
  const bad = (invariant: InvariantViolation["invariant"], detail: string) => {
    if (out.length < 50) out.push({ invariant, detail });
  };
  // the device-exclusive entries' holders, found by the same walk
  const deviceExclusive = new Map<number, FrameHolder[]>();
  const hex = (a: number) => "0x" + a.toString(16);
  // the struct pages read from memory, not a call each: this ran for every mapping after every step
  const t = k.core.frames;
  const nframes = k.core.layout.nframes;
  // the PTE and PMD mappings of each page, counted (a PMD mapping once per page it maps), and
  // the pages mapped at all
  const mappedBy = new Int32Array(nframes);
  const mappedPfns: number[] = [];
  // the last VMA and anon_vma asked whether an rmap walk finds the VMA's pages, and the answer
  let linkedVma: Vma | null = null, linkedId = -1, linked = false;

  const swapRefs = new Map<number, number>();
  // the PTE mappings of each page of a large folio, and the PMD mappings of each large folio
  const ptesOf = new Map<number, number>();
  const pmdsOf = new Map<number, number>();
  for (const p of k.processes.values()) {
    let anon = 0, shmem = 0, swap = 0;
    for (const vma of p.vmas) {
      for (const r of k.core.pagemap(p.mm, vma.start, vma.end)) {
        const kind = r.kind & 0xff;
        if (kind === C.PTE_KIND_SWAP) {
          swap++;
          swapRefs.set(r.pfn, (swapRefs.get(r.pfn) ?? 0) + 1);
          continue;
        }
        if (kind === C.PTE_KIND_HWPOISON && !(r.pfn < nframes && t.test(r.pfn, C.PG_hwpoison))) {
          bad("pte-valid", `pid ${p.pid} has a hwpoison entry at ${hex(r.address)} for pfn ${r.pfn}, which is not PG_hwpoison`);
        }
        if (kind === C.PTE_KIND_MIGRATION) {
          // counted as the page it stands for (copy_nonpresent_pte(), zap_nonpresent_ptes())
          const folio = ops.pageFolio(r.pfn);
          if (ops.folioTestAnon(folio)) anon++; else shmem++;
          if (!k.migrating.has(folio)) bad("pte-valid", `pid ${p.pid} has a migration entry for pfn ${r.pfn} at ${hex(r.address)}, which is under no migration`);
          continue;
        }
        if (kind === C.PTE_KIND_DEVICE_EXCLUSIVE) {
          // counted as the page it replaced, which it keeps a reference to but no map count of
          anon++;
          addHolder(deviceExclusive, r.pfn, { kind: "device-exclusive", pid: p.pid, address: r.address });
          if (ops.folioIsMapped(ops.pageFolio(r.pfn))) bad("mapcount", `pid ${p.pid} has a device-exclusive entry at ${hex(r.address)} for pfn ${r.pfn}, which is still mapped`);
          continue;
        }
        const device = kind === C.PTE_KIND_DEVICE_PRIVATE;
        if (device && !(r.pfn < nframes && t.test(r.pfn, C.PG_zone_device))) {
          bad("pte-valid", `pid ${p.pid} has a device-private entry at ${hex(r.address)} for pfn ${r.pfn}, which is no ZONE_DEVICE page`);
          continue;
        }
        if (!device && kind !== C.PTE_KIND_PRESENT && kind !== C.PTE_KIND_PROTNONE) continue;
        if (!device && r.aux & SPECIAL) continue; // the zero page
        const pfn = r.pfn;
        if (!device && pfn < nframes && t.test(pfn, C.PG_zone_device)) {
          bad("pte-valid", `pid ${p.pid} maps device-private pfn ${pfn} with a present PTE at ${hex(r.address)}`);
          continue;
        }
        if (pfn >= nframes || t.test(pfn, C.PG_buddy)) {
          bad("pte-valid", `pid ${p.pid} maps free or invalid pfn ${pfn} at ${hex(r.address)}`);
          continue;
        }
        const folio = t.folio(pfn);
        // the huge zero page is mapped by PMDs but, like the small one, outside rmap and RSS
        if (k.hugeZeroFolio !== 0 && folio === k.hugeZeroFolio) continue;
        if (r.kind & C.PAGEMAP_HUGE) {
          // a PMD mapping shows as a record per page: counted once, at its first page
          if (pfn === folio) pmdsOf.set(folio, (pmdsOf.get(folio) ?? 0) + 1);
        } else if (folio !== pfn || t.large(folio)) {
          ptesOf.set(pfn, (ptesOf.get(pfn) ?? 0) + 1);
        }
        const isAnon = t.anon(folio);
        const huge = (r.kind & C.PAGEMAP_HUGE) !== 0;
        if (isAnon) anon++; else shmem++;
        if (mappedBy[pfn]! === 0) mappedPfns.push(pfn);
        mappedBy[pfn]!++;
        // writable anon PTE ⇒ exclusive
        // (a PMD-mapped THP's PageAnonExclusive is its head's)
        if (k.strategy.tracksAnonExclusive && isAnon && !t.test(huge ? folio : pfn, C.PG_anon_exclusive)
          && (device ? ops.deviceEntry(p.mm, r.address)!.writable : (r.aux & W) !== 0)) {
          bad("anon-exclusive-writable", `pid ${p.pid} maps pfn ${pfn} writable at ${hex(r.address)} but it is not PageAnonExclusive`);
        }
        // every mapping reachable by an rmap walk: rmap_walk_anon() of the folio's anon_vma
        // finds this PTE exactly when this VMA is linked into that anon_vma and its linear
        // index of the address is the page's index (checked per VMA, not by walking every
        // VMA of the anon_vma, which is quadratic in the processes that share it)
        if (isAnon) {
          const id = t.mappingId(folio);
          const index = (t.index(folio) + (pfn - folio)) >>> 0;
          // a VMA's pages are mostly of one anon_vma: its answer is kept for the next page
          if (id !== linkedId || vma !== linkedVma) {
            linkedVma = vma;
            linkedId = id;
            linked = vma.chain.some((avc) => avc.anonVma.id === id && avc.anonVma.vmas.has(avc) && k.anonVmas.get(id) === avc.anonVma);
          }
          if (!linked || vma.index(r.address) !== index) {
            bad("rmap", `pid ${p.pid}'s mapping of pfn ${pfn} at ${hex(r.address)} is not found by an rmap walk of anon_vma ${id}, index ${index}`);
          }
        }
      }
    }
    const rss = p.rss();
    if (rss.anon !== anon || rss.shmem !== shmem || rss.swap !== swap) {
      bad("rss", `pid ${p.pid}: MM_ANONPAGES ${rss.anon}/${anon}, MM_SHMEMPAGES ${rss.shmem}/${shmem}, MM_SWAPENTS ${rss.swap}/${swap} (counter/page tables)`);
    }
    const tables = ops.mmCountTables(p.mm);
    if (tables !== ops.mmNrPtes(p.mm)) bad("page-tables", `pid ${p.pid}: nr_ptes ${ops.mmNrPtes(p.mm)}, but ${tables} tables below the PGD`);
  }

  for (const pfn of mappedPfns) {
    const maps = mappedBy[pfn]!;
    const folio = t.folio(pfn);
    if (folio === pfn && !t.large(folio)) {
      const mc = t.mapcount(folio);
      if (mc !== maps) bad("mapcount", `pfn ${pfn}: mapcount ${mc}, but ${maps} PTEs map it`);
    }
  }
  // every reference to an order-0 frame is accounted for: a leaked one shows as a surplus, a
  // doubly dropped one as a deficit; a frame that is not free must have someone holding it
  const held = heldOutsidePageTables(k, deviceExclusive);
  allocatedFolios(k, (pfn) => {
    const holders = held.get(pfn);
    const cached = t.test(pfn, C.PG_swapcache);
    let mapped = mappedBy[pfn]!;
    if (t.large(pfn)) for (let i = 2 ** ops.folioOrder(pfn) - 1; i > 0; i--) mapped += mappedBy[pfn + i]!;
    if (mapped === 0 && holders === undefined && !cached) {
      bad("no-leak", `pfn ${pfn} is not free, yet nothing holds it (refcount ${t.refcount(pfn)}: not mapped, not in the swap cache, ` +
        `no LRU batch, isolation, GUP user or shmem file refers to it)`);
      return;
    }
    if (t.large(pfn)) {
      checkLargeFolio(k, pfn, ptesOf, pmdsOf.get(pfn) ?? 0, holders, bad);
      return;
    }
    let need = mapped + (cached ? 1 : 0);
    if (holders) for (const h of holders) need += refsOf(h);
    const rc = t.refcount(pfn);
    if (rc !== need) bad("refcount", `pfn ${pfn}: refcount ${rc}, but ${need} (mappings + references the kernel and its users hold)`);
  });

  // a shmem page-cache slot holding a swap entry names its swap slot as a swap PTE does
  for (const f of k.shmem.files) for (const slot of f.swapped.values()) swapRefs.set(slot, (swapRefs.get(slot) ?? 0) + 1);
  // swap slots: the count is the swap entries naming the slot; a slot in use is named by an
  // entry or kept by the swap cache
  for (const u of usedSwapSlots(k)) {
    const n = swapRefs.get(u.slot) ?? 0;
    swapRefs.delete(u.slot);
    if (u.swapCount !== n) bad("swap-count", `swap slot ${u.slot}: swap count ${u.swapCount}, but ${n} swap PTEs name it`);
    if (u.cachedPfn === null) {
      if (u.swapCount === 0) bad("no-leak", `swap slot ${u.slot} is in use, yet no swap entry names it and no frame caches it`);
    } else if (!ops.pageTestFlag(u.cachedPfn, C.PG_swapcache) || ops.folioSwapSlot(u.cachedPfn) !== u.slot) {
      bad("swap-count", `swap slot ${u.slot} says pfn ${u.cachedPfn} caches it, but that frame is not in the swap cache for it`);
    }
  }
  for (const [slot, n] of swapRefs) bad("swap-count", `swap slot ${slot} is free, but ${n} swap PTEs name it`);

  // a pinned page its process maps must be exclusive (Linux ≥ 5.19), and large folios count pins exactly
  const pinsOf = new Map<number, number>();
  const keepsPins = k.strategy.tracksAnonExclusive && (k.strategy.gupFastBarriers ?? true) && k.strategy.unmap.shareAnon;
  for (const pin of k.pins.all(k)) {
    pin.pfns.forEach((pfn, i) => {
      const folio = ops.pageFolio(pfn);
      if (pin.isPin && ops.folioTestLarge(folio)) pinsOf.set(folio, (pinsOf.get(folio) ?? 0) + 1);
      // without 088b8aa537c2's barriers a racing GUP-fast may pin a page just as it loses
      // PageAnonExclusive (seed 000 II, III): those kernels do not keep the promise
      if (!pin.isPin || !k.strategy.tracksAnonExclusive || !(k.strategy.gupFastBarriers ?? true) || !ops.folioTestAnon(folio)) return;
      const owner = k.processes.get(pin.pid);
      // try_to_unmap_one() and try_to_migrate_one() refuse a possibly pinned exclusive page
      // (A2): a pinned page its owner's swap or migration entry names was unmapped behind the pin
      if (owner && keepsPins && unmappedBehindPin(k, owner.mm, pin.addresses[i]!, pfn)) {
        bad("pinned-unmapped", `pid ${pin.pid}'s ${ops.migrationEntry(owner.mm, pin.addresses[i]!) ? "migration" : "swap"} entry at ${hex(pin.addresses[i]!)} names pfn ${pfn}, which its ${pin.owner} pins: the page was unmapped behind the pin`);
      }
      const pmdMapped = owner !== undefined && ops.hugePmdAt(owner.mm, pin.addresses[i]!) === 1;
      if (owner && owner.pfnAt(pin.addresses[i]!) === pfn && !ops.PageAnonExclusive(pmdMapped ? folio : pfn)) {
        bad("pinned-exclusive", `pid ${pin.pid} maps pfn ${pfn} at ${hex(pin.addresses[i]!)} pinned by its ${pin.owner}, but the page is not PageAnonExclusive`);
      }
    });
  }
  for (const g of k.pins.inFlight) {
    const folio = ops.pageFolio(g.begun!.pfn);
    if ((g.flags & C.FOLL_PIN) && ops.folioTestLarge(folio)) pinsOf.set(folio, (pinsOf.get(folio) ?? 0) + 1);
  }
  for (const [folio, n] of pinsOf) {
    if (ops.folioPincount(folio) !== n) bad("refcount", `large folio ${folio}: _pincount ${ops.folioPincount(folio)}, but ${n} pins are held`);
  }
  return out;
}
