/**
 * /proc/pid files of the memory map (fs/proc/task_mmu.c): clear_refs, and pagemap's entries as
 * users read them. The same kernel file as assembly/task_mmu.ts, whose pagemap_read() walks the
 * page tables for both.
 */
import { C } from "../core/index.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { VM_SOFTDIRTY } from "./vma.js";
import { PAGE_SIZE } from "./uapi.js";
import { CowsimError } from "../errno.js";

/**
 * clear_refs_write() with "4" (fs/proc/task_mmu.c clear_soft_dirty()): soft-dirty tracking
 * starts over — every VMA loses VM_SOFTDIRTY, every PTE its soft-dirty bit and its write
 * permission, so the next write to each page faults. Since 5.11 (9348b73c2e1b) a writable PTE
 * of a possibly pinned page in a COW mapping is left as it is (pte_is_pinned()): write-protecting
 * it would only make the next write fault copy the page away from its pin.
 */
export function clear_soft_dirty(k: MmKernel, p: MmProcess): void {
  const skipPinned = k.strategy.clearRefsSkipsPinned && (k.ops.mmFlags(p.mm) & C.MMF_HAS_PINNED) !== 0;
  let skipped = 0;
  for (const v of p.vmas) {
    v.flags &= ~VM_SOFTDIRTY;
    if (!skipPinned || !v.isCow) {
      k.core.changeProtection(p.mm, v.start, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
      continue;
    }
    // one call per run of pages between the pinned ones
    let from = v.start;
    for (const r of k.core.pagemap(p.mm, v.start, v.end)) {
      if (!isPinnedPte(k, r.kind, r.pfn, r.aux)) continue;
      if (r.address > from) k.core.changeProtection(p.mm, from, r.address, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
      from = r.address + PAGE_SIZE;
      skipped++;
    }
    if (from < v.end) k.core.changeProtection(p.mm, from, v.end, v.pageProt, C.MM_CP_CLEAR_SOFT_DIRTY | C.CP_KEEP_WRITABLE_ENTRIES);
  }
  if (k.trace.points.clear_refs.listening) k.trace.points.clear_refs.emit({ pid: p.pid, skipped });
}

const PTE_WRITE = 2 ** C._PAGE_BIT_RW;
const PTE_SPECIAL = 2 ** C._PAGE_BIT_SPECIAL;

/** pte_is_pinned(): a writable present PTE of a normal folio that folio_maybe_dma_pinned(). */
function isPinnedPte(k: MmKernel, kind: number, pfn: number, aux: number): boolean {
  if ((kind & 0xff) !== C.PTE_KIND_PRESENT || !(aux & PTE_WRITE) || aux & PTE_SPECIAL) return false;
  return k.ops.folioMaybeDmaPinned(k.ops.pageFolio(pfn));
}

/** /proc/pid/pagemap bits (fs/proc/task_mmu.c PM_*); bits 0–54 are the frame. @public */
export const PM_SOFT_DIRTY = 1n << 55n;
/** The page is mapped by this one PTE only (folio_precise_page_mapcount() == 1). @public */
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
/** uffd-wp write-protected (a PTE, a swap entry or a uffd-wp marker). @public */
export const PM_UFFD_WP = 1n << 57n;
/** A page-cache (shmem) page rather than an anonymous one. @public */
export const PM_FILE = 1n << 61n;
/** A swap-format entry: the frame is its type in bits 0–4 and its offset (a PFN, for PFN entries) above. @public */
export const PM_SWAP = 1n << 62n;
/** A present page: the frame is its PFN. @public */
export const PM_PRESENT = 1n << 63n;

const PTE_SOFT_DIRTY = 2 ** C._PAGE_BIT_SOFT_DIRTY;
const PTE_UFFD_WP = 2 ** C._PAGE_BIT_UFFD_WP;
const SWP_SOFT_DIRTY = 2 ** C._PAGE_BIT_SWP_SOFT_DIRTY;
const SWP_UFFD_WP = 2 ** C._PAGE_BIT_SWP_UFFD_WP;
const PFN_KINDS = new Set<number>([C.PTE_KIND_MIGRATION, C.PTE_KIND_DEVICE_PRIVATE, C.PTE_KIND_DEVICE_EXCLUSIVE, C.PTE_KIND_HWPOISON]);

/**
 * pagemap_read() as a user reads /proc/pid/pagemap: one u64 per page of [addr, addr + pages
 * pages), made by pte_to_pagemap_entry() of Linux 6.12 with the PFNs shown (the reader has
 * CAP_SYS_ADMIN): a present page is PM_PRESENT with its PFN, PM_MMAP_EXCLUSIVE when this is its
 * only mapping, PM_FILE for shmem; a swap-format entry is PM_SWAP with swp_type | offset << 5
 * (the PFN for migration, device and hwpoison entries, whose page decides PM_FILE); soft-dirty
 * and uffd-wp from the entry, and PM_SOFT_DIRTY for the whole of a VMA with VM_SOFTDIRTY
 * (pagemap_pte_hole() too). Outside any VMA: 0. `addr` must be page-aligned.
 */
export function pagemap_entries(k: MmKernel, p: MmProcess, addr: number, pages: number): bigint[] {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0) throw new CowsimError("EINVAL", `pagemap: offset for address ${addr} is not a page's`);
  if (!Number.isSafeInteger(pages) || pages < 0 || addr + pages * PAGE_SIZE > 2 ** 47) throw new CowsimError("EINVAL", `pagemap: ${pages} pages from 0x${addr.toString(16)}`);
  const out: bigint[] = new Array<bigint>(pages).fill(0n);
  const end = addr + pages * PAGE_SIZE;
  const ops = k.ops;
  for (const v of p.vmas.overlapping(addr, end)) {
    const from = Math.max(addr, v.start);
    const to = Math.min(end, v.end);
    const vmaFlags = v.flags & VM_SOFTDIRTY ? PM_SOFT_DIRTY : 0n;
    for (let a = from; a < to; a += PAGE_SIZE) out[(a - addr) / PAGE_SIZE] = vmaFlags;
    for (const r of k.core.pagemap(p.mm, from, to)) {
      const kind = r.kind & 0xff;
      let flags = vmaFlags;
      let frame = 0n;
      let page: number | null = null;
      if (kind === C.PTE_KIND_PRESENT || kind === C.PTE_KIND_PROTNONE) {
        flags |= PM_PRESENT;
        frame = BigInt(r.pfn);
        if (r.aux & PTE_SOFT_DIRTY) flags |= PM_SOFT_DIRTY;
        if (r.aux & PTE_UFFD_WP) flags |= PM_UFFD_WP;
        if (!(r.aux & PTE_SPECIAL)) page = r.pfn; // vm_normal_page(): not the zero page
      } else {
        flags |= PM_SWAP;
        if (r.aux & SWP_SOFT_DIRTY) flags |= PM_SOFT_DIRTY;
        if (r.aux & SWP_UFFD_WP) flags |= PM_UFFD_WP;
        const type = kind === C.PTE_KIND_SWAP ? 0 : kind === C.PTE_KIND_HWPOISON ? C.SWP_HWPOISON
          : kind === C.PTE_KIND_MARKER ? C.SWP_PTE_MARKER : Number(ops.ptepGet(p.mm, r.address) >> BigInt(C.SWP_TYPE_SHIFT));
        frame = BigInt(type) | (BigInt(r.pfn) << BigInt(C.MAX_SWAPFILES_SHIFT));
        if (PFN_KINDS.has(kind)) page = r.pfn;
        if (kind === C.PTE_KIND_MARKER && r.pfn & C.PTE_MARKER_UFFD_WP) flags |= PM_UFFD_WP;
      }
      if (page !== null) {
        const folio = ops.pageFolio(page);
        if (!ops.folioTestAnon(folio)) flags |= PM_FILE;
        if (flags & PM_PRESENT && k.core.frames.mapcount(page) + (ops.folioTestLarge(folio) ? ops.folioEntireMapcount(folio) : 0) === 1) flags |= PM_MMAP_EXCLUSIVE;
      }
      out[(r.address - addr) / PAGE_SIZE] = frame | flags;
    }
  }
  return out;
}
