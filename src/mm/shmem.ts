/**
 * Shared memory files (mm/shmem.c, mm/memfd.c): the object behind MAP_SHARED|MAP_ANONYMOUS
 * (shmem_zero_setup()) and behind memfd_create(). Its pages live in the file's page cache,
 * which holds a reference to each; a page swapped out leaves a swap entry in its page-cache
 * slot (the xarray value entry), which holds the slot's swap count. Shared mappings map the
 * page-cache pages, writable when the VMA is; private mappings map them read-only and copy a
 * page into an anonymous one on the first write (do_cow_fault(), wp_page_copy() in memory.ts).
 *
 * The userfaultfd seams: {@link shmem_get_entry} says whether a fault at an index is a MINOR
 * one (something is in the page cache: a page or a swap entry) or a MISSING one (nothing);
 * {@link shmem_get_folio} is the fault's lookup, with the places handle_userfault() is called
 * from marked; {@link shmem_add_to_page_cache} inserts a page (UFFDIO_COPY's
 * shmem_mfill_atomic_pte()); `shmem_get_folio(…, "noalloc")` looks one up without allocating
 * (UFFDIO_CONTINUE's SGP_NOALLOC).
 */
import { C, type CoreOps } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import type { Vma } from "./vma.js";
import type { ReclaimOutcome } from "./swap.js";
import { Stat } from "./stats.js";
import { FaultBlocked } from "./wait.js";
import {
  PAGE_SIZE, MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC, MFD_NAME_MAX_LEN,
  FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_ZERO_RANGE,
  FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE,
} from "./uapi.js";

// vm_flags read here (vma.ts's values; vma.ts imports this module's types)
const VM_SHARED = 0x8;
const VM_UFFD_WP = 0x1000;

/** What a page-cache slot holds: a page, a swap entry, or nothing. @public */
export type ShmemEntry = { readonly kind: "page"; readonly pfn: number } | { readonly kind: "swap"; readonly slot: number } | null;

/** How shmem_get_folio() may get a page (enum sgp_type). @public */
export type ShmemSgp = "noalloc" | "read" | "write";

/**
 * A shmem file (struct shmem_inode_info with its address_space): shared anonymous memory's
 * object, or a memfd. @public
 */
export class ShmemFile {
  /** Page cache: page index → pfn. */
  readonly pages = new Map<number, number>();
  /** Page-cache slots holding a swap entry: page index → swap slot (shmem_inode_info->swapped is its size). */
  readonly swapped = new Map<number, number>();
  /**
   * References to the file: the VMAs mapping it and, for a memfd, its open file descriptor.
   * The last one gone, the file is truncated and freed.
   */
  mappings = 0;
  /** i_size in bytes. */
  size: number;
  /** The memfd's name ("memfd:<name>" in /proc), or null for shared anonymous memory. */
  name: string | null = null;
  /** A memfd's descriptor is still open (closed by close() or by its process exiting). */
  open = false;

  constructor(readonly id: number, sizePages: number) {
    this.size = sizePages * PAGE_SIZE;
  }

  /** Pages below i_size (a partly covered last page counts). */
  get sizePages(): number {
    return Math.ceil(this.size / PAGE_SIZE);
  }

  /**
   * shmem_get_folio(SGP_CACHE) without swap-in or userfaultfd: the page at `index`, allocated
   * zeroed and added to the page cache on first use. Throws ENOMEM (nothing changed) when no
   * frame is left, EFAULT (SIGBUS) beyond i_size. Kept for callers that hold only the core;
   * faults go through {@link shmem_get_folio}.
   */
  getPage(ops: CoreOps, index: number): number {
    const have = this.pages.get(index);
    if (have !== undefined) return have;
    if (index >= this.sizePages) throw new CowsimError("EFAULT", "SIGBUS: access beyond the end of the shmem object");
    return shmem_alloc_and_add_folio(ops, this, index);
  }

  /** The last reference is gone: truncate the file, dropping the page cache's references and swap entries. */
  release(ops: CoreOps): void {
    for (const pfn of this.pages.values()) ops.folioPutRefs(pfn, 1);
    this.pages.clear();
    for (const slot of this.swapped.values()) freeSwapEntry(ops, slot);
    this.swapped.clear();
  }

  /** fput() of a memfd's descriptor: close(2), or its process exiting. */
  release_fd(k: MmKernel): void {
    if (!this.open) return;
    this.open = false;
    k.shmem.put(k.ops, this);
  }
}

/** A memfd's open descriptor, owned by a process (Releasable: closed when the process exits). */
export class MemfdDescriptor {
  constructor(readonly kernel: MmKernel, readonly file: ShmemFile) {}
  release(): void {
    this.file.release_fd(this.kernel);
  }
}

export class ShmemRegistry {
  private nextId = 1;
  readonly files = new Set<ShmemFile>();
  private readonly byId = new Map<number, ShmemFile>();

  create(sizePages: number): ShmemFile {
    const f = new ShmemFile(this.nextId++, sizePages);
    this.files.add(f);
    this.byId.set(f.id, f);
    return f;
  }

  /** The file whose mapping id a page-cache folio carries (folio->mapping->host), if it is alive. */
  lookup(id: number): ShmemFile | undefined {
    return this.byId.get(id);
  }

  get(f: ShmemFile): void {
    f.mappings++;
  }

  put(ops: CoreOps, f: ShmemFile): void {
    if (--f.mappings === 0) {
      f.release(ops);
      this.files.delete(f);
      this.byId.delete(f.id);
    }
  }
}

/** free_swap_and_cache() of a page-cache swap entry: the slot loses the file's count. */
function freeSwapEntry(ops: CoreOps, slot: number): void {
  const cached = ops.swapCachePfn(slot);
  ops.swapFree(slot);
  // __try_to_reclaim_swap(): an unmapped, unlocked swap-cache folio nobody names leaves the cache
  if (cached !== null && !ops.folioIsMapped(cached) && !ops.pageTestFlag(cached, C.PG_locked)) ops.folioFreeSwap(cached);
}

/** shmem_alloc_and_add_folio(): a zeroed page for `index`; the allocation's reference becomes the page cache's. */
function shmem_alloc_and_add_folio(ops: CoreOps, file: ShmemFile, index: number): number {
  const pfn = ops.tryAllocPage(C.GFP_ZERO);
  if (pfn === null) throw new CowsimError("ENOMEM", "out of memory: no frame for a shmem page");
  ops.pageSetFlag(pfn, C.PG_swapbacked);
  ops.pageSetFlag(pfn, C.PG_uptodate);
  ops.folioSetMapping(pfn, file.id, index);
  ops.folioAddLru(pfn);
  file.pages.set(index, pfn);
  return pfn;
}

// ---- the userfaultfd seams -------------------------------------------------------------------

/**
 * filemap_get_entry(): what the page-cache slot at `index` holds, without allocating or
 * swapping in. For userfaultfd this is the fault's kind: not null — a page or a swap entry —
 * is a MINOR fault (shmem_get_folio_gfp() calls handle_userfault(VM_UFFD_MINOR) for either);
 * null is a MISSING one (handle_userfault(VM_UFFD_MISSING), before a page is allocated).
 * @public
 */
export function shmem_get_entry(file: ShmemFile, index: number): ShmemEntry {
  const pfn = file.pages.get(index);
  if (pfn !== undefined) return { kind: "page", pfn };
  const slot = file.swapped.get(index);
  return slot !== undefined ? { kind: "swap", slot } : null;
}

/**
 * shmem_add_to_page_cache() as shmem_mfill_atomic_pte() (UFFDIO_COPY, UFFDIO_ZEROPAGE on
 * shmem) uses it: the caller's page `pfn`, filled, becomes the page cache's page at `index`.
 * The page cache takes a reference of its own (the caller keeps and later drops the one it
 * allocated the frame with). EFAULT beyond i_size, EEXIST when the slot holds a page or a swap
 * entry (nothing changed either way). @public
 */
export function shmem_add_to_page_cache(ops: CoreOps, file: ShmemFile, index: number, pfn: number): void {
  if (index >= file.sizePages) throw new CowsimError("EFAULT", `shmem_mfill_atomic_pte: page ${index} is beyond the end of shmem file ${file.id}`);
  if (file.pages.has(index) || file.swapped.has(index)) throw new CowsimError("EEXIST", `shmem file ${file.id} already holds page ${index}`);
  ops.pageSetFlag(pfn, C.PG_swapbacked);
  ops.pageSetFlag(pfn, C.PG_uptodate);
  ops.folioSetMapping(pfn, file.id, index);
  ops.folioRefAdd(pfn, 1);
  file.pages.set(index, pfn);
}

/**
 * shmem_get_folio_gfp(): the page at `index` for a fault (`read`/`write`: SGP_CACHE and
 * SGP_WRITE — allocated zeroed when the slot is empty) or for UFFDIO_CONTINUE (`noalloc`:
 * SGP_NOALLOC — null when the slot is empty). A swap entry is swapped in first
 * (shmem_swapin_folio()). EFAULT (SIGBUS) beyond i_size; ENOMEM (nothing changed) without a
 * frame; FaultBlocked when the swap-cache folio is locked. The page cache holds the page; the
 * caller takes its own reference by mapping it.
 *
 * userfaultfd: with VM_UFFD_MINOR on `vma`, handle_userfault(VM_UFFD_MINOR) goes where the slot
 * is found not empty (before the swap-in); with VM_UFFD_MISSING, handle_userfault
 * (VM_UFFD_MISSING) goes where it is found empty (before the allocation). @public
 */
export function shmem_get_folio(k: MmKernel, file: ShmemFile, index: number, sgp: ShmemSgp, vma: Vma | null = null): number | null {
  void vma; // for handle_userfault(): userfaultfd_minor(vma) / userfaultfd_missing(vma)
  if (index >= file.sizePages) {
    throw new CowsimError("EFAULT", `SIGBUS: page ${index} is beyond the end of shmem file ${file.id} (${file.sizePages} pages)`);
  }
  const entry = shmem_get_entry(file, index);
  // [userfaultfd] entry !== null && userfaultfd_minor(vma): handle_userfault(vmf, VM_UFFD_MINOR)
  if (entry?.kind === "page") return entry.pfn;
  if (entry?.kind === "swap") return shmem_swapin_folio(k, file, index, entry.slot);
  // [userfaultfd] userfaultfd_missing(vma): handle_userfault(vmf, VM_UFFD_MISSING)
  if (sgp === "noalloc") return null;
  // shmem_alloc_folio(): direct reclaim when no frame is free, then once more
  if (k.core.freePages() === 0) k.reclaimAfterFailure();
  return shmem_alloc_and_add_folio(k.ops, file, index);
}

// ---- swap ----------------------------------------------------------------------------------

/**
 * shmem_swapin_folio(): the swap entry in the page-cache slot at `index` becomes its page again
 * — the swap-cache folio, or one read back from the slot — which shmem_add_to_page_cache()
 * puts in the slot; the folio leaves the swap cache dirty (delete_from_swap_cache(),
 * folio_mark_dirty()) and the slot is freed (swap_free()). Nothing changes on failure.
 */
function shmem_swapin_folio(k: MmKernel, file: ShmemFile, index: number, slot: number): number {
  const ops = k.ops;
  let pfn = ops.swapCachePfn(slot);
  if (pfn !== null) {
    if (ops.pageTestFlag(pfn, C.PG_hwpoison)) {
      throw new CowsimError("EHWPOISON", `SIGBUS: shmem file ${file.id}'s page ${index} is in a hardware-poisoned swap-cache page`);
    }
    // folio_lock(): I/O or migration holds it
    if (ops.pageTestFlag(pfn, C.PG_locked)) throw new FaultBlocked(k.waits.folio(pfn));
  } else {
    let r = ops.swapinRead(slot);
    if (r === -C.ENOMEM && k.reclaimAfterFailure() > 0) r = ops.swapinRead(slot);
    if (r === -C.ENOMEM) throw new CowsimError("ENOMEM", `out of memory: no frame to swap shmem file ${file.id}'s page ${index} back in`);
    if (r < 0) throw new Error(`cowsim: swapin_read(${slot}) failed with ${r}`);
    pfn = r;
  }
  ops.folioSetMapping(pfn, file.id, index);
  ops.folioRefAdd(pfn, 1);
  file.swapped.delete(index);
  file.pages.set(index, pfn);
  ops.deleteFromSwapCache(pfn);
  ops.pageSetFlag(pfn, C.PG_dirty);
  ops.swapFree(slot);
  k.stats.inc(Stat.shmemSwapins);
  return pfn;
}

/** A folio of a live shmem file's page cache: the file and the index, or null. */
export function shmemFolioOwner(k: MmKernel, folio: number): { file: ShmemFile; index: number } | null {
  const ops = k.ops;
  if (ops.folioTestAnon(folio) || !ops.pageTestFlag(folio, C.PG_swapbacked)) return null;
  const file = k.shmem.lookup(ops.folioMappingId(folio));
  if (!file) return null;
  const index = ops.folioIndex(folio);
  return file.pages.get(index) === folio ? { file, index } : null;
}

/**
 * shrink_folio_list() for a shmem folio: try_to_unmap() — every PTE mapping it becomes none,
 * or a uffd-wp marker where the PTE had uffd-wp in a VMA registered for it
 * (pte_install_uffd_wp_if_needed()) — then shmem_writepage(): a swap slot, the swap cache,
 * the swap entry in the page-cache slot (holding the slot's count: swap_shmem_alloc()), the
 * page cache's reference dropped (shmem_delete_from_page_cache()), written out, and freed when
 * nothing else holds it (__remove_mapping()). With no slot left the folio stays in the page
 * cache, unmapped (redirty). cowsim writes every shmem page out, dirty or not (Linux drops a
 * clean, never-written one from the page cache instead).
 */
export function shmem_writeout(k: MmKernel, folio: number): ReclaimOutcome {
  const ops = k.ops;
  const owner = shmemFolioOwner(k, folio);
  if (!owner || ops.folioTestLarge(folio) || ops.pageTestFlag(folio, C.PG_locked) ||
      ops.pageTestFlag(folio, C.PG_swapcache) || ops.pageTestFlag(folio, C.PG_hwpoison)) {
    return "busy";
  }
  const { file, index } = owner;
  // try_to_unmap(): rmap_walk_file() over i_mmap
  for (const m of mappingsOf(k, file, index, index + 1)) {
    const flags = C.ZAP_FILE_ONLY | (m.vma.flags & VM_UFFD_WP ? C.ZAP_KEEP_UFFD_WP : 0);
    k.core.zapPageRange(m.p.mm, m.start, m.end, flags);
  }
  if (ops.folioIsMapped(folio)) {
    if (k.trace.points.try_to_unmap.listening) k.trace.points.try_to_unmap.emit({ pfn: folio, refused: false });
    return "busy";
  }
  // shmem_writepage()
  if (!ops.addToSwap(folio)) return "swap-full";
  const slot = ops.folioSwapSlot(folio);
  if (!ops.swapDuplicate(slot)) throw new Error(`cowsim: swap slot ${slot} of a new swap-cache folio is not in use`);
  ops.folioSetMapping(folio, 0, index);
  file.pages.delete(index);
  file.swapped.set(index, slot);
  ops.folioPutRefs(folio, 1);
  ops.swapWritepage(folio);
  const freed = ops.removeMappingSwapcache(folio);
  k.stats.inc(Stat.shmemSwapouts);
  if (k.trace.points.shrink_folio_list.listening) k.trace.points.shrink_folio_list.emit({ pfn: folio, slot, freed });
  return freed ? "swapped" : "kept";
}

// ---- i_mmap, unmap_mapping_range(), truncation -----------------------------------------------

/** One VMA mapping part of a file, and the address range of the indexes asked for. */
interface FileMapping {
  readonly p: MmProcess;
  readonly vma: Vma;
  readonly start: number;
  readonly end: number;
}

/**
 * vma_interval_tree_foreach() over mapping->i_mmap: every VMA of every process that maps
 * indexes of [first, last) of `file`, with the addresses of those indexes.
 */
export function* mappingsOf(k: MmKernel, file: ShmemFile, first: number, last: number): Generator<FileMapping> {
  for (const p of k.processes.values()) {
    for (const vma of p.vmas) {
      if (vma.shmem !== file) continue;
      const lo = Math.max(first, vma.pgoff);
      const hi = Math.min(last, vma.pgoff + vma.pages);
      if (lo >= hi) continue;
      yield { p, vma, start: vma.start + (lo - vma.pgoff) * PAGE_SIZE, end: vma.start + (hi - vma.pgoff) * PAGE_SIZE };
    }
  }
}

/**
 * unmap_mapping_range() of the indexes [first, last) of `file` (unmap_mapping_pages()): the
 * PTEs of every mapping zapped — with `evenCows` (truncation) also the anonymous copies private
 * mappings made of those pages; without (a hole punch) only the page-cache pages. A VMA
 * registered for uffd-wp keeps uffd-wp markers where the entries had the bit
 * (zap_install_uffd_wp_if_needed(): details, so markers are not dropped).
 */
export function unmap_mapping_range(k: MmKernel, file: ShmemFile, first: number, last: number, evenCows: boolean): void {
  for (const m of [...mappingsOf(k, file, first, last)]) {
    const flags = (evenCows ? 0 : C.ZAP_FILE_ONLY) | (m.vma.flags & VM_UFFD_WP ? C.ZAP_KEEP_UFFD_WP : 0);
    for (const r of k.core.zapPageRange(m.p.mm, m.start, m.end, flags)) {
      if (r.kind === C.REC_SWAP_CACHE_ONLY) k.swapCacheOrphan(r.pfn, r.aux);
    }
    // what a private mapping copied is gone too: it reads the file again
    if (evenCows && !(m.vma.flags & VM_SHARED) && k.trace.points.zap_page_range.listening) {
      k.trace.points.zap_page_range.emit({ pid: m.p.pid, start: m.start, end: m.end, private: true });
    }
  }
}

/**
 * shmem_undo_range() for the whole pages [start, end): page-cache pages leave the file (its
 * reference dropped, folio->mapping cleared: truncate_inode_folio()) and swap entries are freed
 * (shmem_free_swap()). The caller unmapped them first. Returns the slots emptied.
 */
function shmem_undo_range(k: MmKernel, file: ShmemFile, start: number, end: number): number {
  const ops = k.ops;
  let n = 0;
  for (const [index, pfn] of [...file.pages]) {
    if (index < start || index >= end) continue;
    file.pages.delete(index);
    ops.folioSetMapping(pfn, 0, index);
    ops.folioPutRefs(pfn, 1);
    n++;
  }
  for (const [index, slot] of [...file.swapped]) {
    if (index < start || index >= end) continue;
    file.swapped.delete(index);
    freeSwapEntry(ops, slot);
    n++;
  }
  if (n > 0) k.stats.inc(Stat.shmemTruncated, n);
  if (k.trace.points.shmem_undo_range.listening) k.trace.points.shmem_undo_range.emit({ objId: file.id, start, end });
  return n;
}

// ---- the syscalls --------------------------------------------------------------------------

const MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;

/**
 * memfd_create(): a new shmem file of size 0 named "memfd:<name>", open (one reference for its
 * descriptor). MFD_CLOEXEC and MFD_ALLOW_SEALING are accepted (there is no exec, and no seal is
 * modelled); MFD_HUGETLB is refused (EINVAL: hugetlbfs is not modelled). EINVAL for unknown
 * flags, MFD_EXEC with MFD_NOEXEC_SEAL, or a name longer than MFD_NAME_MAX_LEN.
 */
export function memfd_create(k: MmKernel, name: string, flags: number): ShmemFile {
  if (typeof name !== "string") throw new CowsimError("EFAULT", "memfd_create: the name is not a string");
  if (!Number.isInteger(flags) || flags < 0 || (flags & ~MFD_ALL_FLAGS) !== 0) {
    throw new CowsimError("EINVAL", `memfd_create: flags 0x${(flags >>> 0).toString(16)} include unknown bits`);
  }
  if ((flags & MFD_EXEC) && (flags & MFD_NOEXEC_SEAL)) throw new CowsimError("EINVAL", "memfd_create: MFD_EXEC and MFD_NOEXEC_SEAL exclude each other");
  if (flags & MFD_HUGETLB) throw new CowsimError("EINVAL", "memfd_create: MFD_HUGETLB (hugetlbfs) is not modelled");
  if (name.length > MFD_NAME_MAX_LEN) throw new CowsimError("EINVAL", `memfd_create: the name is longer than ${MFD_NAME_MAX_LEN} bytes`);
  const f = k.shmem.create(0);
  f.name = name;
  f.open = true;
  k.shmem.get(f);
  return f;
}

/** A memfd descriptor a call may use: EBADF once closed. */
function checkOpen(file: ShmemFile, call: string): void {
  if (!(file instanceof ShmemFile) || !file.open) throw new CowsimError("EBADF", `${call}: the file is not open`);
}

/**
 * ftruncate() of a shmem file (shmem_setattr()): i_size becomes `length`. Shrinking unmaps the
 * pages wholly beyond it from every mapping, the private copies of them included
 * (unmap_mapping_range(…, even_cows = 1)), and truncates them from the page cache
 * (shmem_truncate_range()). A partly kept last page keeps its contents: a page's value is one
 * tag, zeroing its tail is not modelled. EINVAL for a negative length.
 */
export function shmem_setattr_size(k: MmKernel, file: ShmemFile, length: number): void {
  checkOpen(file, "ftruncate");
  if (!Number.isSafeInteger(length) || length < 0) throw new CowsimError("EINVAL", `ftruncate: length ${length}`);
  const oldsize = file.size;
  file.size = length;
  if (length <= oldsize) {
    const holebegin = Math.ceil(length / PAGE_SIZE);
    if (oldsize > holebegin * PAGE_SIZE) unmap_mapping_range(k, file, holebegin, Number.MAX_SAFE_INTEGER, true);
    shmem_undo_range(k, file, holebegin, Number.MAX_SAFE_INTEGER);
  }
}

/**
 * vfs_fallocate() + shmem_fallocate() with FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the
 * pages wholly inside [offset, offset + len) are unmapped from every mapping — not the copies
 * private mappings made of them (unmap_mapping_range(…, even_cows = 0)) — and removed from the
 * page cache, swap entries freed (shmem_truncate_range()). Partly covered pages keep their
 * contents (zeroing part of a page is not modelled). EINVAL for a negative offset or a length
 * ≤ 0; EOPNOTSUPP for a mode shmem does not support (PUNCH_HOLE without KEEP_SIZE, the
 * range modes) and for preallocation (mode 0 / KEEP_SIZE alone, not modelled); EFBIG past 2^53.
 */
export function shmem_fallocate(k: MmKernel, file: ShmemFile, mode: number, offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len <= 0) {
    throw new CowsimError("EINVAL", `fallocate: offset ${offset}, length ${len}`);
  }
  const MODE_MASK = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE;
  if (!Number.isInteger(mode) || mode < 0 || (mode & ~(MODE_MASK | FALLOC_FL_KEEP_SIZE)) !== 0) {
    throw new CowsimError("EOPNOTSUPP", `fallocate: mode 0x${(mode >>> 0).toString(16)}`);
  }
  const m = mode & MODE_MASK;
  if (m === FALLOC_FL_PUNCH_HOLE && !(mode & FALLOC_FL_KEEP_SIZE)) throw new CowsimError("EOPNOTSUPP", "fallocate: FALLOC_FL_PUNCH_HOLE needs FALLOC_FL_KEEP_SIZE");
  if ((m === FALLOC_FL_COLLAPSE_RANGE || m === FALLOC_FL_INSERT_RANGE) && (mode & FALLOC_FL_KEEP_SIZE)) throw new CowsimError("EOPNOTSUPP", "fallocate: a range mode with FALLOC_FL_KEEP_SIZE");
  if (m !== 0 && m !== FALLOC_FL_UNSHARE_RANGE && m !== FALLOC_FL_ZERO_RANGE && m !== FALLOC_FL_PUNCH_HOLE &&
      m !== FALLOC_FL_COLLAPSE_RANGE && m !== FALLOC_FL_INSERT_RANGE) {
    throw new CowsimError("EOPNOTSUPP", `fallocate: modes 0x${m.toString(16)} exclude each other`);
  }
  checkOpen(file, "fallocate");
  if (!Number.isSafeInteger(offset + len)) throw new CowsimError("EFBIG", "fallocate: offset + length is too large");
  // shmem_fallocate()
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) throw new CowsimError("EOPNOTSUPP", `fallocate: shmem supports only FALLOC_FL_PUNCH_HOLE and FALLOC_FL_KEEP_SIZE`);
  if (!(mode & FALLOC_FL_PUNCH_HOLE)) throw new CowsimError("EOPNOTSUPP", "fallocate: preallocation of shmem pages is not modelled");
  shmem_punch_hole(k, file, offset, len);
}

/** shmem_fallocate(FALLOC_FL_PUNCH_HOLE) once the arguments are checked (madvise_remove() comes here too). */
export function shmem_punch_hole(k: MmKernel, file: ShmemFile, offset: number, len: number): void {
  const first = Math.ceil(offset / PAGE_SIZE);
  const last = Math.floor((offset + len) / PAGE_SIZE);
  if (last > first) unmap_mapping_range(k, file, first, last, false);
  // "No need to unmap again: hole-punching leaves COWed pages"
  if (last > first) shmem_undo_range(k, file, first, last);
}

/**
 * madvise_remove(): MADV_REMOVE of [start, end) of `vma` punches a hole in the file behind it
 * (vfs_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) at the file offset of `start`).
 * EINVAL without a file (private anonymous memory), EACCES for a mapping that is not shared
 * and may-write (vma_is_shared_maywrite()). The caller checks every VMA before the first
 * punch, so a failure changes nothing.
 */
export function madvise_remove_check(vma: Vma): void {
  if (!vma.shmem) throw new CowsimError("EINVAL", `madvise(MADV_REMOVE): ${vma.describe()} maps no file`);
  if ((vma.flags & (VM_SHARED | 0x20)) !== (VM_SHARED | 0x20)) {
    throw new CowsimError("EACCES", `madvise(MADV_REMOVE): ${vma.describe()} is not a shared writable mapping`);
  }
}

/** madvise_remove() of [start, end) within `vma` (checked by madvise_remove_check()). */
export function madvise_remove(k: MmKernel, vma: Vma, start: number, end: number): void {
  const offset = (start - vma.start) + vma.pgoff * PAGE_SIZE;
  shmem_punch_hole(k, vma.shmem!, offset, end - start);
}

/** close() of a memfd: its descriptor's reference goes (mappings keep the file). EBADF when closed already. */
export function memfd_close(k: MmKernel, file: ShmemFile): void {
  checkOpen(file, "close");
  file.release_fd(k);
}
