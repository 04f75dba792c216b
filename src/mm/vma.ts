/**
 * Virtual memory areas (mm/vma.c, mm/mmap.c): vm_flags, vm_page_prot, the sorted VMA list of an
 * address space, and the kernel's split and merge rules.
 */
import { C } from "../core/abi.generated.js";
import type { AnonVma, AnonVmaChain } from "./rmap.js";
import type { ShmemFile } from "./shmem.js";
import { PROT_READ, PROT_WRITE, PROT_EXEC, PAGE_SIZE } from "./uapi.js";

// vm_flags (include/linux/mm.h)
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_UFFD_MISSING = 0x200;
export const VM_UFFD_WP = 0x1000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_WIPEONFORK = 0x2000000;
export const VM_SOFTDIRTY = 0x8000000;

/** Flags that do not stop two VMAs from merging (VM_IGNORE_MERGE: VM_SOFTDIRTY). */
const VM_IGNORE_MERGE = VM_SOFTDIRTY;

const bit = (b: number) => 2 ** b;
const _P = bit(C._PAGE_BIT_PRESENT);
const _RW = bit(C._PAGE_BIT_RW);
const _U = bit(C._PAGE_BIT_USER);
const _PROTNONE = bit(C._PAGE_BIT_PROTNONE);

/**
 * vm_get_page_prot(): x86's protection_map. A private writable mapping gets PAGE_COPY (no
 * write bit): writes fault, and the fault decides between reuse and copy. PROT_NONE is
 * PAGE_NONE, present to the kernel only.
 */
export function vm_get_page_prot(vmFlags: number): number {
  const rwx = vmFlags & (VM_READ | VM_WRITE | VM_EXEC);
  if (rwx === 0) return _PROTNONE;
  if ((vmFlags & VM_SHARED) && (vmFlags & VM_WRITE)) return _P | _U | _RW;
  return _P | _U;
}

/** calc_vm_prot_bits(): PROT_* to VM_*. */
export function calc_vm_prot_bits(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

/** One VMA. Addresses are byte addresses (exact up to 2^53); pgoff counts pages. */
export class Vma {
  start: number;
  end: number;
  flags: number;
  /** vm_pgoff: for anonymous private memory, the page index of vm_start when it was created. */
  pgoff: number;
  /** vma->anon_vma: where new anonymous pages of this VMA go (null until the first write). */
  anonVma: AnonVma | null = null;
  /** vma->anon_vma_chain: one link per anon_vma whose pages this VMA may map. */
  chain: AnonVmaChain[] = [];
  /** The shmem file of a MAP_SHARED|MAP_ANONYMOUS mapping. */
  shmem: ShmemFile | null;

  constructor(start: number, end: number, flags: number, pgoff: number, shmem: ShmemFile | null) {
    this.start = start;
    this.end = end;
    this.flags = flags;
    this.pgoff = pgoff;
    this.shmem = shmem;
  }

  get pages(): number {
    return (this.end - this.start) / PAGE_SIZE;
  }

  /** linear_page_index(): the page index of `addr` (kept modulo 2^32, as the core keeps it). */
  index(addr: number): number {
    return (this.pgoff + (addr - this.start) / PAGE_SIZE) >>> 0;
  }

  /** vma_is_anonymous() and private: the memory that copy-on-write is about. */
  get isPrivateAnon(): boolean {
    return this.shmem === null && !(this.flags & VM_SHARED);
  }

  /** is_cow_mapping() */
  get isCow(): boolean {
    return (this.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  }

  get pageProt(): number {
    return vm_get_page_prot(this.flags);
  }

  /** The handle_access() fast-path bits for this VMA (see assembly/fault.ts). */
  fastBits(): number {
    if (!this.isPrivateAnon || (this.flags & VM_UFFD_MISSING)) return 0;
    return C.FAST_ANON | (this.flags & VM_WRITE ? C.FAST_VM_WRITE : 0);
  }

  describe(): string {
    const f = this.flags;
    const perms = (f & VM_READ ? "r" : "-") + (f & VM_WRITE ? "w" : "-") + (f & VM_EXEC ? "x" : "-") + (f & VM_SHARED ? "s" : "p");
    return `${hex(this.start)}-${hex(this.end)} ${perms}`;
  }
}

export function hex(a: number): string {
  // a caller's bad argument is named as it came, not turned into a TypeError here
  return typeof a === "number" && Number.isFinite(a) ? "0x" + a.toString(16) : String(a);
}

/**
 * An address space's VMAs, sorted by address and never overlapping. The kernel keeps a maple
 * tree; processes here have tens of VMAs, so a sorted array with binary search does.
 */
export class VmaList {
  readonly list: Vma[] = [];
  private cache: Vma | null = null;

  get count(): number {
    return this.list.length;
  }

  [Symbol.iterator](): Iterator<Vma> {
    return this.list[Symbol.iterator]();
  }

  /** find_vma(): the first VMA that ends above `addr`, or null. */
  findFrom(addr: number): Vma | null {
    const l = this.list;
    let lo = 0, hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (l[mid]!.end <= addr) lo = mid + 1; else hi = mid;
    }
    return l[lo] ?? null;
  }

  /** vma_lookup(): the VMA containing `addr`, or null. */
  lookup(addr: number): Vma | null {
    const c = this.cache;
    if (c !== null && c.start <= addr && addr < c.end) return c;
    const v = this.findFrom(addr);
    if (v === null || v.start > addr) return null;
    this.cache = v;
    return v;
  }

  /** The VMAs that intersect [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = this.indexFrom(start); i < this.list.length; i++) {
      const v = this.list[i]!;
      if (v.start >= end) break;
      out.push(v);
    }
    return out;
  }

  /** True when [start, end) is covered by VMAs without a hole. */
  covers(start: number, end: number): boolean {
    let at = start;
    for (const v of this.overlapping(start, end)) {
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  prev(v: Vma): Vma | null {
    const i = this.list.indexOf(v);
    return i > 0 ? this.list[i - 1]! : null;
  }

  next(v: Vma): Vma | null {
    const i = this.list.indexOf(v);
    return i >= 0 && i + 1 < this.list.length ? this.list[i + 1]! : null;
  }

  insert(v: Vma): void {
    const i = this.indexFrom(v.start);
    this.list.splice(i, 0, v);
  }

  remove(v: Vma): void {
    const i = this.list.indexOf(v);
    if (i < 0) throw new Error(`cowsim: removing a VMA that is not in the list (${v.describe()})`);
    this.list.splice(i, 1);
    if (this.cache === v) this.cache = null;
  }

  /** Called after a VMA's bounds change in place. */
  invalidate(): void {
    this.cache = null;
  }

  private indexFrom(addr: number): number {
    const l = this.list;
    let lo = 0, hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (l[mid]!.end <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
}

/**
 * is_mergeable_vma() + is_mergeable_anon_vma() + the pgoff rule of can_vma_merge_after(): may
 * `a` (below) and `b` (above, adjacent) become one VMA?
 */
export function canMerge(a: Vma, b: Vma): boolean {
  if (a.end !== b.start) return false;
  if (((a.flags ^ b.flags) & ~VM_IGNORE_MERGE) !== 0) return false;
  if (a.shmem !== b.shmem) return false;
  if (a.pgoff + a.pages !== b.pgoff) return false;
  // is_mergeable_anon_vma(): same anon_vma, or one has none and the other's chain is singular
  if (a.anonVma !== b.anonVma) {
    if (a.anonVma !== null && b.anonVma !== null) return false;
    const withOne = a.anonVma !== null ? a : b;
    if (withOne.chain.length !== 1) return false;
  }
  return true;
}
