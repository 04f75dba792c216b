/**
 * The invariants of the design, checked on demand (and after every step when asked): they read
 * the page tables as the ground truth of who maps what, and compare every counter and flag the
 * kernel keeps against it.
 */
import { C } from "../core/abi.generated.js";
import type { Kernel } from "../mm/kernel.js";
import { rmap_walk_anon } from "../mm/rmap.js";
import { PAGE_SIZE } from "../mm/uapi.js";

/** One violated invariant. @public */
export interface InvariantViolation {
  readonly invariant:
    | "pte-valid" | "mapcount" | "anon-exclusive-writable" | "refcount" | "rmap" | "rss" | "page-tables"
    | "no-leak" | "pinned-exclusive" | "swap-count";
  readonly detail: string;
}

interface Mapping { pid: number; mm: number; address: number; writable: boolean; anon: boolean; shared: boolean }

const W = 2 ** C._PAGE_BIT_RW;
const SPECIAL = 2 ** C._PAGE_BIT_SPECIAL;

export function checkInvariants(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const x = k.x;
  const bad = (invariant: InvariantViolation["invariant"], detail: string) => {
    if (out.length < 50) out.push({ invariant, detail });
  };
  const byFrame = new Map<number, Mapping[]>();
  const hex = (a: number) => "0x" + a.toString(16);

  const swapRefs = new Map<number, number>();
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
        if (kind !== C.PTE_KIND_PRESENT && kind !== C.PTE_KIND_PROTNONE) continue;
        if (r.aux & SPECIAL) continue; // the zero page
        const pfn = r.pfn;
        if (pfn >= k.core.layout.nframes || x.page_test_flag(pfn, C.PG_buddy)) {
          bad("pte-valid", `pid ${p.pid} maps free or invalid pfn ${pfn} at ${hex(r.address)}`);
          continue;
        }
        const folio = x.page_folio(pfn) >>> 0;
        const isAnon = x.folio_test_anon(folio) === 1;
        if (isAnon) anon++; else shmem++;
        const m: Mapping = { pid: p.pid, mm: p.mm, address: r.address, writable: (r.aux & W) !== 0, anon: isAnon, shared: vma.shmem !== null };
        const list = byFrame.get(pfn);
        if (list) list.push(m); else byFrame.set(pfn, [m]);
        // writable anon PTE ⇒ exclusive
        if (k.strategy.tracksAnonExclusive && isAnon && m.writable && !x.PageAnonExclusive(pfn)) {
          bad("anon-exclusive-writable", `pid ${p.pid} maps pfn ${pfn} writable at ${hex(r.address)} but it is not PageAnonExclusive`);
        }
        // every mapping reachable by an rmap walk
        if (isAnon) {
          const id = x.folio_mapping_id(folio) >>> 0;
          const index = (x.folio_index(folio) + (pfn - folio)) >>> 0;
          const hits = rmap_walk_anon(k.anonVmas, id, index);
          if (!hits.some((h) => h.mm === p.mm && h.address === r.address)) {
            bad("rmap", `pid ${p.pid}'s mapping of pfn ${pfn} at ${hex(r.address)} is not found by an rmap walk of anon_vma ${id}, index ${index}`);
          }
        }
      }
    }
    const rss = p.rss();
    if (rss.anon !== anon || rss.shmem !== shmem || rss.swap !== swap) {
      bad("rss", `pid ${p.pid}: MM_ANONPAGES ${rss.anon}/${anon}, MM_SHMEMPAGES ${rss.shmem}/${shmem}, MM_SWAPENTS ${rss.swap}/${swap} (counter/page tables)`);
    }
    const tables = x.mm_count_tables(p.mm);
    if (tables !== x.mm_nr_ptes(p.mm)) bad("page-tables", `pid ${p.pid}: nr_ptes ${x.mm_nr_ptes(p.mm)}, but ${tables} tables below the PGD`);
  }

  // references the kernel holds besides mappings: LRU batch, isolation, shmem page cache
  const held = new Map<number, number>();
  const hold = (f: number, n = 1) => held.set(f, (held.get(f) ?? 0) + n);
  for (let i = 0, n = x.lru_batch_count(k.ctx); i < n; i++) hold(x.lru_batch_folio(k.ctx, i) >>> 0);
  for (const f of k.shmem.files) for (const pfn of f.pages.values()) hold(pfn);
  for (const pfn of k.isolatedFolios()) hold(pfn, k.transientRefs(pfn));
  for (const [pfn, n] of k.extraRefs()) hold(pfn, n);

  for (const [pfn, maps] of byFrame) {
    const folio = x.page_folio(pfn) >>> 0;
    if (folio === pfn && !x.folio_test_large(folio)) {
      const mc = x.folio_mapcount(folio);
      if (mc !== maps.length) bad("mapcount", `pfn ${pfn}: mapcount ${mc}, but ${maps.length} PTEs map it`);
    }
  }
  // every reference to an order-0 frame is accounted for: a leaked one shows as a surplus, a
  // doubly dropped one as a deficit
  for (let pfn = 1; pfn < k.core.layout.nframes; pfn++) {
    if (x.page_test_flag(pfn, C.PG_buddy) || x.page_test_flag(pfn, C.PG_reserved)) continue;
    if (x.page_folio(pfn) !== pfn || x.folio_test_large(pfn)) continue;
    const need = (byFrame.get(pfn)?.length ?? 0) + (held.get(pfn) ?? 0) + (x.page_test_flag(pfn, C.PG_swapcache) ? 1 : 0);
    const rc = x.folio_ref_count(pfn);
    if (rc !== need) bad("refcount", `pfn ${pfn}: refcount ${rc}, but ${need} (mappings + references the kernel and its users hold)`);
  }

  // swap counts: one per swap PTE that names the slot
  for (const [slot, n] of swapRefs) {
    const c = x.swap_count(slot);
    if (c !== n) bad("swap-count", `swap slot ${slot}: swap count ${c}, but ${n} swap PTEs name it`);
  }
  // a pinned page its process maps must be exclusive (Linux ≥ 5.19), and large folios count pins exactly
  const pinsOf = new Map<number, number>();
  for (const pin of k.pins.active.values()) {
    pin.pfns.forEach((pfn, i) => {
      const folio = x.page_folio(pfn) >>> 0;
      if (pin.isPin && x.folio_test_large(folio)) pinsOf.set(folio, (pinsOf.get(folio) ?? 0) + 1);
      if (!pin.isPin || !k.strategy.tracksAnonExclusive || !x.folio_test_anon(folio)) return;
      const owner = k.processes.get(pin.pid);
      if (owner && owner.pfnAt(pin.addresses[i]!) === pfn && !x.PageAnonExclusive(pfn)) {
        bad("pinned-exclusive", `pid ${pin.pid} maps pfn ${pfn} at ${hex(pin.addresses[i]!)} pinned by its ${pin.owner}, but the page is not PageAnonExclusive`);
      }
    });
  }
  for (const [folio, n] of pinsOf) {
    if (x.folio_pincount(folio) !== n) bad("refcount", `large folio ${folio}: _pincount ${x.folio_pincount(folio)}, but ${n} pins are held`);
  }

  if (k.processes.size === 0 && k.extraRefs().size === 0 && k.shmem.files.size === 0) {
    const lru = x.lru_batch_count(k.ctx);
    const used = k.usedFrames - lru;
    if (used !== 0) bad("no-leak", `no process is left, yet ${used} frames are not free`);
    const slots = k.core.layout.nslots > 0 ? k.core.layout.nslots - 1 : 0;
    if (k.core.swapSlotsAvailable() !== slots) {
      bad("no-leak", `no process is left, yet ${slots - k.core.swapSlotsAvailable()} swap slots are in use`);
    }
  }
  return out;
}

/** A page whose contents differ from what its process must see. @public */
export interface LatentMissedCow {
  readonly pid: number;
  readonly address: number;
  readonly pfn: number;
  readonly holds: number;
  readonly expected: number;
}

/**
 * Every mapped page whose contents differ from what its process must see: a missed COW that
 * has happened whether or not anyone has read the page yet. Not an invariant of the simulator
 * (a flawed strategy produces these), but a judgement of the strategy, like the findings.
 */
export function latentMissedCows(k: Kernel): LatentMissedCow[] {
  const out: LatentMissedCow[] = [];
  if (!k.oracle) return out;
  for (const p of k.processes.values()) {
    for (const vma of p.vmas) {
      for (const r of k.core.pagemap(p.mm, vma.start, vma.end)) {
        const kind = r.kind & 0xff;
        if (kind !== C.PTE_KIND_PRESENT && kind !== C.PTE_KIND_PROTNONE) continue;
        const vpn = r.address / PAGE_SIZE;
        const expected = vma.shmem ? k.oracle.expected(p.pid, vpn, vma.shmem.id, vma.index(r.address)) : k.oracle.expected(p.pid, vpn, 0, 0);
        const holds = k.core.tag(r.pfn);
        if (holds !== expected) out.push({ pid: p.pid, address: r.address, pfn: r.pfn, holds, expected });
      }
    }
  }
  return out;
}
