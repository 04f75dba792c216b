/**
 * Virtual memory areas (mm/vma.c, mm/mmap.c): vm_flags, vm_page_prot, the sorted VMA list of an
 * address space, and the kernel's split and merge rules.
 */
import { C } from "../core/index.js";
import type { AnonVma, AnonVmaChain } from "./rmap.js";
import type { ShmemFile } from "./shmem.js";
import type { UserfaultfdCtx } from "./userfaultfd.js";
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
/**
 * VM_UFFD_MINOR: Linux keeps it in bit 41 (VM_UFFD_MINOR_BIT, a VM_HIGH_ARCH bit); here it takes
 * 0x800, the bit VM_DENYWRITE left free in 5.15, so vm_flags stay a 32-bit number.
 */
export const VM_UFFD_MINOR = 0x800;
export const VM_UFFD_WP = 0x1000;
/** __VM_UFFD_FLAGS: every userfaultfd registration mode. */
export const VM_UFFD_FLAGS = VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_WIPEONFORK = 0x2000000;
export const VM_SOFTDIRTY = 0x8000000;
/** MADV_HUGEPAGE marked this VMA. */
export const VM_HUGEPAGE = 0x20000000;
/** MADV_NOHUGEPAGE marked this VMA. */
export const VM_NOHUGEPAGE = 0x40000000;

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

/**
 * One VMA. Addresses are byte addresses (exact up to 2^53); pgoff counts pages.
 *
 * `start` and `end` may be changed in place (a split, a merge, mremap growing the VMA): while
 * the VMA is in an address space's VmaList, setting either updates the list's copy of the bounds
 * and the holes on the way to the root, as Linux's vma_set_range() + vma_iter_store() (before
 * 6.1, vma_gap_update()) do. The order of the VMAs must not change; while a merge is in progress
 * a VMA may overlap the neighbour it is absorbing.
 */
export class Vma {
  private _start: number;
  private _end: number;
  flags: number;
  /** vm_pgoff: for anonymous private memory, the page index of vm_start when it was created. */
  pgoff: number;
  /** vma->anon_vma: where new anonymous pages of this VMA go (null until the first write). */
  anonVma: AnonVma | null = null;
  /** vma->anon_vma_chain: one link per anon_vma whose pages this VMA may map. */
  chain: AnonVmaChain[] = [];
  /** The shmem file of a MAP_SHARED|MAP_ANONYMOUS mapping. */
  shmem: ShmemFile | null;
  /** vma->vm_userfaultfd_ctx.ctx: the userfaultfd this VMA is registered with (with VM_UFFD_* in flags), or null. */
  uffdCtx: UserfaultfdCtx | null = null;
  /** The leaf of the address space's tree that holds this VMA, or null. Only VmaList sets it. @internal */
  node: VmaLeaf | null = null;

  constructor(start: number, end: number, flags: number, pgoff: number, shmem: ShmemFile | null) {
    this._start = start;
    this._end = end;
    this.flags = flags;
    this.pgoff = pgoff;
    this.shmem = shmem;
  }

  /** vm_start */
  get start(): number {
    return this._start;
  }
  set start(a: number) {
    this._start = a;
    if (this.node !== null) this.node.owner!.resized(this);
  }

  /** vm_end */
  get end(): number {
    return this._end;
  }
  set end(a: number) {
    this._end = a;
    if (this.node !== null) this.node.owner!.resized(this);
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
 * Entries per node of the VMA tree. maple_range_64 has 16 slots in 256 bytes; here a node's
 * arrays are two pointers away, so wider nodes and fewer levels pay (measured: at 32k VMAs a
 * random find_vma() costs about the same as a binary search of a sorted array with 32, ~30 %
 * more with 16).
 */
const NODE_SLOTS = 32;
/** Fewer entries than this, and a node that is not the root borrows from or merges with a sibling. */
const MIN_SLOTS = NODE_SLOTS / 4;

/**
 * A leaf of the VMA tree (maple_range_64): up to NODE_SLOTS VMAs in address order, with copies of
 * their bounds in arrays of numbers (contiguous doubles, so a search touches no VMA), and links to
 * the neighbouring leaves. @internal
 */
export class VmaLeaf {
  readonly leaf = true;
  parent: VmaInner | null = null;
  /** The list this leaf belongs to; null once it is discarded. */
  owner: VmaList | null;
  prevLeaf: VmaLeaf | null = null;
  nextLeaf: VmaLeaf | null = null;
  vmas: Vma[] = [];
  starts: number[] = [];
  ends: number[] = [];
  /** vm_start of the first VMA, vm_end of the last, and the largest hole between two of them. */
  lo = 0;
  hi = 0;
  gap = 0;

  constructor(owner: VmaList) {
    this.owner = owner;
  }
}

/**
 * An inner node of the VMA tree (maple_arange_64): up to NODE_SLOTS children, and for each its
 * lowest vm_start, highest vm_end (the maple tree's pivot) and largest hole (the arange node's
 * gap[]) — so that a search reads only this node's arrays to pick a child. @internal
 */
export class VmaInner {
  readonly leaf = false;
  parent: VmaInner | null = null;
  kids: VmaNode[] = [];
  los: number[] = [];
  his: number[] = [];
  gaps: number[] = [];
  lo = 0;
  hi = 0;
  gap = 0;
}

/** @internal */
export type VmaNode = VmaLeaf | VmaInner;

/** The first index whose value is above `x` (a.length if none); `a` ascends. */
function firstAbove(a: readonly number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** A leaf's bounds and largest hole, from its arrays (it holds at least one VMA). */
function leafAggregate(l: VmaLeaf): void {
  const s = l.starts, e = l.ends, n = s.length;
  let gap = 0;
  for (let i = 1; i < n; i++) {
    const g = s[i]! - e[i - 1]!;
    if (g > gap) gap = g;
  }
  l.lo = s[0]!;
  l.hi = e[n - 1]!;
  l.gap = gap;
}

/** An inner node's bounds and largest hole, from its copies of its children's. */
function innerAggregate(p: VmaInner): void {
  const lo = p.los, hi = p.his, gaps = p.gaps, k = gaps.length;
  let gap = gaps[0]!;
  for (let i = 1; i < k; i++) {
    if (gaps[i]! > gap) gap = gaps[i]!;
    const g = lo[i]! - hi[i - 1]!;
    if (g > gap) gap = g;
  }
  if (gap < 0) gap = 0;
  p.lo = lo[0]!;
  p.hi = hi[k - 1]!;
  p.gap = gap;
}

/** Copies child `i`'s aggregates into its parent's arrays. */
function copyUp(p: VmaInner, i: number, c: VmaNode): void {
  p.los[i] = c.lo;
  p.his[i] = c.hi;
  p.gaps[i] = c.gap;
}

/** The highest `length` bytes of the hole [start, end) that lie in [low, high), or -1. */
function fitTop(start: number, end: number, length: number, low: number, high: number): number {
  const a = (end < high ? end : high) - length;
  return a >= start && a >= low ? a : -1;
}

/**
 * An address space's VMAs, sorted by address and never overlapping: a B-tree of VMAs shaped like
 * Linux's maple tree (mm->mm_mt since 6.1; lib/maple_tree.c): leaves of up to 32 VMAs with their
 * bounds, inner nodes with each child's highest end (the pivot) and largest hole (the gap[] of
 * maple_arange_64 nodes), so that find_vma() and unmapped_area_topdown() read a few contiguous
 * arrays per level. Lookup, insert, remove and the top-down gap search are O(log n); prev and
 * next search one leaf (Linux 3.9–6.0 had an rbtree augmented with rb_subtree_gap and a vm_next
 * list for the same costs).
 *
 * The maple tree stores the holes as NULL ranges between the VMAs; here a hole is what lies
 * between one VMA's end and the next one's start, and each node's gap is the largest hole among
 * its own VMAs or children. A VMA's bounds may change in place: its setters keep the copies and
 * gaps true (see Vma), so no caller needs to say which VMA changed.
 */
export class VmaList {
  private root: VmaNode | null = null;
  private size = 0;
  /** The last VMA lookup() found (mm->mmap_cache of Linux ≤ 3.14, the vmacache after it). */
  private cache: Vma | null = null;

  /** map_count */
  get count(): number {
    return this.size;
  }

  /** Levels of the tree (0 when empty, 1 for a lone leaf). @internal */
  get height(): number {
    let h = 0;
    for (let n = this.root; n !== null; n = n.leaf ? null : n.kids[0]!) h++;
    return h;
  }

  /**
   * The VMAs in address order, as a new array each time: O(n). Hot paths use findFrom(),
   * lookup(), overlapping(), prev() and next() instead.
   */
  get list(): Vma[] {
    const out: Vma[] = [];
    for (let l = this.firstLeaf(); l !== null; l = l.nextLeaf) for (const v of l.vmas) out.push(v);
    return out;
  }

  /** The VMAs in address order as they were when the loop began: its body may change the list. */
  [Symbol.iterator](): Iterator<Vma> {
    return this.list[Symbol.iterator]();
  }

  /** find_vma(): the first VMA that ends above `addr`, or null. O(log n). */
  findFrom(addr: number): Vma | null {
    const l = this.findLeaf(addr);
    if (l === null) return null;
    return l.vmas[firstAbove(l.ends, addr)] ?? null;
  }

  /** vma_lookup(): the VMA containing `addr`, or null. O(1) on a repeat, else O(log n). */
  lookup(addr: number): Vma | null {
    const c = this.cache;
    if (c !== null && c.start <= addr && addr < c.end) return c;
    const l = this.findLeaf(addr);
    if (l === null) return null;
    const j = firstAbove(l.ends, addr);
    if (j === l.ends.length || l.starts[j]! > addr) return null;
    return (this.cache = l.vmas[j]!);
  }

  /** The VMAs that intersect [start, end), in order. O(log n + the number found). */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    let l = this.findLeaf(start);
    if (l === null) return out;
    for (let j = firstAbove(l.ends, start); l !== null; l = l.nextLeaf, j = 0) {
      for (const s = l.starts; j < s.length; j++) {
        if (s[j]! >= end) return out;
        out.push(l.vmas[j]!);
      }
    }
    return out;
  }

  /** True when [start, end) is covered by VMAs without a hole. */
  covers(start: number, end: number): boolean {
    let at = start;
    if (at >= end) return true;
    let l = this.findLeaf(start);
    if (l === null) return false;
    for (let j = firstAbove(l.ends, start); l !== null; l = l.nextLeaf, j = 0) {
      for (; j < l.starts.length; j++) {
        if (l.starts[j]! > at) return false;
        at = l.ends[j]!;
        if (at >= end) return true;
      }
    }
    return false;
  }

  /** vma_prev(): the VMA below `v`, or null (also when `v` is not in this list). */
  prev(v: Vma): Vma | null {
    const l = this.leafOf(v);
    if (l === null) return null;
    const j = l.vmas.indexOf(v);
    if (j > 0) return l.vmas[j - 1]!;
    const p = l.prevLeaf;
    return p === null ? null : p.vmas[p.vmas.length - 1]!;
  }

  /** vma_next(): the VMA above `v`, or null (also when `v` is not in this list). */
  next(v: Vma): Vma | null {
    const l = this.leafOf(v);
    if (l === null) return null;
    const j = l.vmas.indexOf(v);
    if (j + 1 < l.vmas.length) return l.vmas[j + 1]!;
    return l.nextLeaf?.vmas[0] ?? null;
  }

  /**
   * vma_link() (vma_iter_store() into the maple tree): `v` joins the address space. It must not
   * be in any list and must not overlap a VMA of this one. O(log n).
   */
  insert(v: Vma): void {
    if (v.node !== null) throw new Error(`cowsim: inserting a VMA that is already in a list (${v.describe()})`);
    if (!(v.start < v.end)) throw new Error(`cowsim: inserting an empty VMA (${v.describe()})`);
    let n = this.root;
    if (n === null) {
      const l = new VmaLeaf(this);
      l.vmas.push(v);
      l.starts.push(v.start);
      l.ends.push(v.end);
      leafAggregate(l);
      v.node = l;
      this.root = l;
      this.size = 1;
      return;
    }
    // the first child with a VMA ending above v.start (or the last): v goes in front of that VMA
    while (!n.leaf) {
      const i = firstAbove(n.his, v.start);
      n = n.kids[i < n.kids.length ? i : n.kids.length - 1]!;
    }
    const l = n, j = firstAbove(l.ends, v.start);
    const below = j > 0 ? l.vmas[j - 1]! : l.prevLeaf?.vmas[l.prevLeaf.vmas.length - 1] ?? null;
    const above = j < l.vmas.length ? l.vmas[j]! : l.nextLeaf?.vmas[0] ?? null;
    if (below !== null && below.end > v.start) throw new Error(`cowsim: inserting ${v.describe()}, which overlaps ${below.describe()}`);
    if (above !== null && above.start < v.end) throw new Error(`cowsim: inserting ${v.describe()}, which overlaps ${above.describe()}`);
    l.vmas.splice(j, 0, v);
    l.starts.splice(j, 0, v.start);
    l.ends.splice(j, 0, v.end);
    v.node = l;
    this.size++;
    if (l.vmas.length > NODE_SLOTS) this.splitLeaf(l);
    else this.changed(l);
  }

  /** vma_iter_clear() / vma_mt_erase(): `v` leaves the address space. O(log n). */
  remove(v: Vma): void {
    const l = this.leafOf(v);
    if (l === null) throw new Error(`cowsim: removing a VMA that is not in the list (${v.describe()})`);
    const j = l.vmas.indexOf(v);
    l.vmas.splice(j, 1);
    l.starts.splice(j, 1);
    l.ends.splice(j, 1);
    v.node = null;
    this.size--;
    if (this.cache === v) this.cache = null;
    if (l.vmas.length === 0 && l === this.root) {
      this.root = null;
      l.owner = null;
    } else if (l.vmas.length < MIN_SLOTS && l !== this.root) {
      this.rebalanceLeaf(l);
    } else {
      this.changed(l);
    }
  }

  /**
   * `v`'s bounds changed in place: its leaf's copies and the gaps above it follow. The Vma setters
   * call this; nobody else needs to. O(log n). @internal
   */
  resized(v: Vma): void {
    const l = this.leafOf(v);
    if (l === null) return;
    const j = l.vmas.indexOf(v);
    l.starts[j] = v.start;
    l.ends[j] = v.end;
    this.changed(l);
  }

  /**
   * Called after VMAs' bounds change in place; kept for callers. The tree follows every change
   * by itself (see Vma); this only drops the lookup cache.
   */
  invalidate(v?: Vma): void {
    void v;
    this.cache = null;
  }

  /**
   * unmapped_area_topdown() (mm/mmap.c; the maple tree's mas_empty_area_rev()): the highest hole
   * of at least `length` bytes (> 0) that lies within [low, high) — below the lowest VMA, between
   * two, or above the highest — and the address a mapping of `length` bytes at its top gets:
   * min(holeEnd, high) − length. Null when no hole fits (the caller's ENOMEM). O(log n): a child
   * whose largest hole is too small, or that lies wholly outside [low, high), is not entered.
   */
  unmappedAreaTopdown(length: number, low: number, high: number): number | null {
    const root = this.root;
    if (root === null) {
      const a = fitTop(0, high, length, low, high);
      return a < 0 ? null : a;
    }
    // above the highest VMA, then between VMAs from the top, then below the lowest
    let a = fitTop(root.hi, high, length, low, high);
    if (a < 0) a = this.topdown(root, length, low, high);
    if (a < 0) a = fitTop(0, root.lo, length, low, high);
    return a < 0 ? null : a;
  }

  /**
   * mt_validate() / validate_mm() with CONFIG_DEBUG_VM_MAPLE_TREE: checks the whole structure —
   * the VMAs in order without overlaps, the copies of their bounds, every node's aggregates and
   * its parent's copies of them, node sizes, leaf depth, the leaf links, the count. Returns what
   * is wrong (nothing: an empty array). O(n); for tests.
   */
  validate(): string[] {
    const bad: string[] = [];
    const leaves: VmaLeaf[] = [];
    let leafDepth = -1;
    const walk = (n: VmaNode, parent: VmaInner | null, depth: number): void => {
      if (n.parent !== parent) bad.push(`node at depth ${depth}: wrong parent link`);
      const entries = n.leaf ? n.vmas.length : n.kids.length;
      if (entries > NODE_SLOTS || entries === 0 || (n !== this.root && entries < MIN_SLOTS)) {
        bad.push(`node at depth ${depth} holds ${entries} entries`);
      }
      if (entries === 0) return;
      const { lo, hi, gap } = n;
      if (n.leaf) {
        if (n.owner !== this) bad.push(`leaf at depth ${depth}: not owned by this list`);
        if (leafDepth < 0) leafDepth = depth;
        else if (depth !== leafDepth) bad.push(`leaves at depths ${leafDepth} and ${depth}`);
        if (n.starts.length !== entries || n.ends.length !== entries) bad.push(`leaf at depth ${depth}: arrays of different lengths`);
        n.vmas.forEach((v, j) => {
          if (v.node !== n) bad.push(`${v.describe()}: wrong leaf link`);
          if (n.starts[j] !== v.start || n.ends[j] !== v.end) bad.push(`${v.describe()}: the leaf says ${hex(n.starts[j]!)}-${hex(n.ends[j]!)}`);
        });
        leaves.push(n);
        leafAggregate(n);
      } else {
        if (n.los.length !== entries || n.his.length !== entries || n.gaps.length !== entries) {
          bad.push(`inner node at depth ${depth}: arrays of different lengths`);
        }
        n.kids.forEach((c, i) => {
          walk(c, n, depth + 1);
          if (n.los[i] !== c.lo || n.his[i] !== c.hi || n.gaps[i] !== c.gap) bad.push(`inner node at depth ${depth}: stale copy of child ${i}`);
        });
        innerAggregate(n);
      }
      if (n.lo !== lo || n.hi !== hi || n.gap !== gap) {
        bad.push(`node at depth ${depth}: bounds ${hex(lo)}-${hex(hi)} gap ${hex(gap)}, should be ${hex(n.lo)}-${hex(n.hi)} gap ${hex(n.gap)}`);
      }
    };
    if (this.root !== null) walk(this.root, null, 0);
    let count = 0;
    let prev: Vma | null = null;
    leaves.forEach((l, i) => {
      if (l.prevLeaf !== (leaves[i - 1] ?? null) || l.nextLeaf !== (leaves[i + 1] ?? null)) bad.push(`leaf ${i}: wrong neighbour links`);
      for (const v of l.vmas) {
        if (!(v.start < v.end)) bad.push(`${v.describe()}: empty`);
        if (prev !== null && prev.end > v.start) bad.push(`${prev.describe()} overlaps ${v.describe()}`);
        prev = v;
        count++;
      }
    });
    if (count !== this.size) bad.push(`count ${this.size}, the tree holds ${count}`);
    return bad;
  }

  private leafOf(v: Vma): VmaLeaf | null {
    const l = v.node;
    return l !== null && l.owner === this ? l : null;
  }

  /** The leaf holding the first VMA that ends above `addr` (mas_walk()), or null. */
  private findLeaf(addr: number): VmaLeaf | null {
    let n = this.root;
    if (n === null) return null;
    while (!n.leaf) {
      const i = firstAbove(n.his, addr);
      if (i === n.kids.length) return null;
      n = n.kids[i]!;
    }
    return n;
  }

  private firstLeaf(): VmaLeaf | null {
    let n = this.root;
    if (n === null) return null;
    while (!n.leaf) n = n.kids[0]!;
    return n;
  }

  /** The highest fitting hole between two VMAs of `n`'s subtree, or -1. */
  private topdown(n: VmaNode, length: number, low: number, high: number): number {
    if (n.gap < length || n.hi - length < low || n.lo + length > high) return -1;
    if (n.leaf) {
      const s = n.starts, e = n.ends;
      for (let i = s.length - 1; i > 0; i--) {
        if (s[i]! - length < low) return -1; // every hole further down ends lower still
        const a = fitTop(e[i - 1]!, s[i]!, length, low, high);
        if (a >= 0) return a;
      }
      return -1;
    }
    const lo = n.los, hi = n.his;
    for (let i = n.kids.length - 1; i >= 0; i--) {
      if (hi[i]! - length < low) return -1;
      if (n.gaps[i]! >= length && lo[i]! + length <= high) {
        const a = this.topdown(n.kids[i]!, length, low, high);
        if (a >= 0) return a;
      }
      if (i > 0) {
        const a = fitTop(hi[i - 1]!, lo[i]!, length, low, high);
        if (a >= 0) return a;
      }
    }
    return -1;
  }

  /** A leaf's entries changed (it holds at least one): its aggregates and those above follow. */
  private changed(l: VmaLeaf): void {
    leafAggregate(l);
    this.up(l);
  }

  /** Copies `c`'s aggregates up the tree, as far as they change anything. */
  private up(c: VmaNode): void {
    for (let p = c.parent; p !== null; c = p, p = p.parent) {
      const i = p.kids.indexOf(c);
      if (p.los[i] === c.lo && p.his[i] === c.hi && p.gaps[i] === c.gap) return;
      copyUp(p, i, c);
      innerAggregate(p);
    }
  }

  /** A full leaf splits in two (mas_split()); the upper half becomes its right sibling. */
  private splitLeaf(l: VmaLeaf): void {
    const r = new VmaLeaf(this);
    const mid = l.vmas.length >>> 1;
    r.vmas = l.vmas.splice(mid);
    r.starts = l.starts.splice(mid);
    r.ends = l.ends.splice(mid);
    for (const v of r.vmas) v.node = r;
    r.nextLeaf = l.nextLeaf;
    if (r.nextLeaf !== null) r.nextLeaf.prevLeaf = r;
    r.prevLeaf = l;
    l.nextLeaf = r;
    leafAggregate(l);
    leafAggregate(r);
    this.addSibling(l, r);
  }

  private splitInner(p: VmaInner): void {
    const q = new VmaInner();
    const mid = p.kids.length >>> 1;
    q.kids = p.kids.splice(mid);
    q.los = p.los.splice(mid);
    q.his = p.his.splice(mid);
    q.gaps = p.gaps.splice(mid);
    for (const c of q.kids) c.parent = q;
    innerAggregate(p);
    innerAggregate(q);
    this.addSibling(p, q);
  }

  /** `r` (just split off `c`, aggregates computed) joins `c`'s parent right after `c`. */
  private addSibling(c: VmaNode, r: VmaNode): void {
    const p = c.parent;
    if (p === null) {
      const root = new VmaInner();
      root.kids.push(c, r);
      root.los.push(c.lo, r.lo);
      root.his.push(c.hi, r.hi);
      root.gaps.push(c.gap, r.gap);
      c.parent = r.parent = root;
      innerAggregate(root);
      this.root = root;
      return;
    }
    const i = p.kids.indexOf(c);
    copyUp(p, i, c);
    p.kids.splice(i + 1, 0, r);
    p.los.splice(i + 1, 0, r.lo);
    p.his.splice(i + 1, 0, r.hi);
    p.gaps.splice(i + 1, 0, r.gap);
    r.parent = p;
    if (p.kids.length > NODE_SLOTS) this.splitInner(p);
    else {
      innerAggregate(p);
      this.up(p);
    }
  }

  /** A leaf below MIN_SLOTS (possibly empty) takes VMAs from a sibling, or merges with it. */
  private rebalanceLeaf(l: VmaLeaf): void {
    const p = l.parent!;
    const i = p.kids.indexOf(l);
    // the pair (a, b) of adjacent leaves, a below b
    const ai = i > 0 ? i - 1 : i;
    const a = p.kids[ai] as VmaLeaf, b = p.kids[ai + 1] as VmaLeaf;
    if (a.vmas.length + b.vmas.length <= NODE_SLOTS) {
      for (const v of b.vmas) v.node = a;
      a.vmas.push(...b.vmas);
      a.starts.push(...b.starts);
      a.ends.push(...b.ends);
      a.nextLeaf = b.nextLeaf;
      if (a.nextLeaf !== null) a.nextLeaf.prevLeaf = a;
      b.owner = null;
      b.parent = null;
      leafAggregate(a);
      copyUp(p, ai, a);
      this.removeChild(p, ai + 1);
      return;
    }
    const move = ((a.vmas.length + b.vmas.length) >>> 1) - a.vmas.length;
    if (move > 0) {
      const vs = b.vmas.splice(0, move);
      for (const v of vs) v.node = a;
      a.vmas.push(...vs);
      a.starts.push(...b.starts.splice(0, move));
      a.ends.push(...b.ends.splice(0, move));
    } else {
      const vs = a.vmas.splice(a.vmas.length + move);
      for (const v of vs) v.node = b;
      b.vmas.unshift(...vs);
      b.starts.unshift(...a.starts.splice(a.starts.length + move));
      b.ends.unshift(...a.ends.splice(a.ends.length + move));
    }
    leafAggregate(a);
    leafAggregate(b);
    copyUp(p, ai, a);
    copyUp(p, ai + 1, b);
    innerAggregate(p);
    this.up(p);
  }

  /** Child `i` of `p` is gone (merged into its left neighbour, whose copy is current). */
  private removeChild(p: VmaInner, i: number): void {
    p.kids.splice(i, 1);
    p.los.splice(i, 1);
    p.his.splice(i, 1);
    p.gaps.splice(i, 1);
    if (p === this.root) {
      if (p.kids.length === 1) {
        // the root's last child becomes the root: the tree is one level lower
        this.root = p.kids[0]!;
        this.root.parent = null;
      } else {
        innerAggregate(p);
      }
    } else if (p.kids.length < MIN_SLOTS) {
      this.rebalanceInner(p);
    } else {
      innerAggregate(p);
      this.up(p);
    }
  }

  private rebalanceInner(q: VmaInner): void {
    const p = q.parent!;
    const i = p.kids.indexOf(q);
    const ai = i > 0 ? i - 1 : i;
    const a = p.kids[ai] as VmaInner, b = p.kids[ai + 1] as VmaInner;
    if (a.kids.length + b.kids.length <= NODE_SLOTS) {
      for (const c of b.kids) c.parent = a;
      a.kids.push(...b.kids);
      a.los.push(...b.los);
      a.his.push(...b.his);
      a.gaps.push(...b.gaps);
      b.parent = null;
      innerAggregate(a);
      copyUp(p, ai, a);
      this.removeChild(p, ai + 1);
      return;
    }
    const move = ((a.kids.length + b.kids.length) >>> 1) - a.kids.length;
    if (move > 0) {
      const cs = b.kids.splice(0, move);
      for (const c of cs) c.parent = a;
      a.kids.push(...cs);
      a.los.push(...b.los.splice(0, move));
      a.his.push(...b.his.splice(0, move));
      a.gaps.push(...b.gaps.splice(0, move));
    } else {
      const cs = a.kids.splice(a.kids.length + move);
      for (const c of cs) c.parent = b;
      b.kids.unshift(...cs);
      b.los.unshift(...a.los.splice(a.los.length + move));
      b.his.unshift(...a.his.splice(a.his.length + move));
      b.gaps.unshift(...a.gaps.splice(a.gaps.length + move));
    }
    innerAggregate(a);
    innerAggregate(b);
    copyUp(p, ai, a);
    copyUp(p, ai + 1, b);
    innerAggregate(p);
    this.up(p);
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
  // is_mergeable_vma(): is_mergeable_vm_userfaultfd_ctx()
  if (a.uffdCtx !== b.uffdCtx) return false;
  if (a.pgoff + a.pages !== b.pgoff) return false;
  // is_mergeable_anon_vma(): same anon_vma, or one has none and the other's chain is singular
  if (a.anonVma !== b.anonVma) {
    if (a.anonVma !== null && b.anonVma !== null) return false;
    const withOne = a.anonVma !== null ? a : b;
    if (withOne.chain.length !== 1) return false;
  }
  return true;
}
