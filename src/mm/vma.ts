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
  /**
   * vm_rb, vm_prev and vm_next: this VMA's place in its address space's VmaList, or null when it
   * is in none. Only VmaList touches it. @internal
   */
  rb: VmaNode | null = null;

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
 * A VMA's node in its address space's tree: vm_rb with its colour, rb_subtree_gap and the
 * subtree's bounds it is computed from, and vm_prev / vm_next. Kept apart from Vma so that a VMA
 * prints as a VMA. @internal
 */
export class VmaNode {
  left: VmaNode | null = null;
  right: VmaNode | null = null;
  parent: VmaNode | null = null;
  red = true;
  /** vm_prev and vm_next: the neighbours in address order. */
  prev: VmaNode | null = null;
  next: VmaNode | null = null;
  /** vm_start of the lowest VMA in this subtree. */
  lo: number;
  /** vm_end of the highest VMA in this subtree. */
  hi: number;
  /** rb_subtree_gap: the largest hole between two VMAs of this subtree (0 when there is none). */
  gap = 0;
  /** The list this node is in; null once removed. */
  owner: VmaList | null;
  readonly vma: Vma;

  constructor(vma: Vma, owner: VmaList) {
    this.vma = vma;
    this.owner = owner;
    this.lo = vma.start;
    this.hi = vma.end;
  }
}

/**
 * Recomputes a node's augmented fields from its own VMA and its children's fields — the
 * augmented-rbtree "compute" callback (vma_compute_subtree_gap() of Linux 3.9–6.0).
 */
function augment(n: VmaNode): void {
  const v = n.vma, l = n.left, r = n.right;
  let gap = 0;
  if (l !== null) {
    n.lo = l.lo;
    if (l.gap > gap) gap = l.gap;
    if (v.start - l.hi > gap) gap = v.start - l.hi;
  } else {
    n.lo = v.start;
  }
  if (r !== null) {
    n.hi = r.hi;
    if (r.gap > gap) gap = r.gap;
    if (r.lo - v.end > gap) gap = r.lo - v.end;
  } else {
    n.hi = v.end;
  }
  n.gap = gap;
}

/** The highest `length` bytes of the hole [start, end) that lie in [low, high), or -1. */
function fitTop(start: number, end: number, length: number, low: number, high: number): number {
  const a = (end < high ? end : high) - length;
  return a >= start && a >= low ? a : -1;
}

/** Iterates in address order, one step ahead, so the loop body may remove the VMA it is given. */
class VmaIterator implements IterableIterator<Vma> {
  private n: VmaNode | null;
  constructor(first: VmaNode | null) {
    this.n = first;
  }
  next(): IteratorResult<Vma> {
    const n = this.n;
    if (n === null) return { done: true, value: undefined };
    this.n = n.next;
    return { done: false, value: n.vma };
  }
  [Symbol.iterator](): IterableIterator<Vma> {
    return this;
  }
}

/**
 * An address space's VMAs, sorted by address and never overlapping: the structure of Linux
 * 3.9–6.0 (mm->mm_rb, vma->vm_prev/vm_next, rb_subtree_gap; mm/mmap.c) — a red-black tree keyed
 * by vm_start, threaded by a list in address order, and augmented in every node with the
 * largest hole between the VMAs of its subtree. Linux 6.1+ keeps a maple tree instead, which
 * tracks the same gaps in its nodes; the costs are the same: lookup, insert, remove and the
 * top-down gap search are O(log n), prev, next and iteration O(1) a step.
 *
 * One difference from rb_subtree_gap: Linux stores in each VMA the hole *below* it (vm_start −
 * vm_prev->vm_end), so a changed vm_end means updating the next VMA's path too
 * (vma_gap_update(next)). Here each node derives the holes from its subtree's own bounds (the
 * lowest vm_start and highest vm_end in it), so a VMA whose bounds change touches only its own
 * path: callers that change `start` or `end` in place call `resized(vma)` afterwards (or
 * `invalidate()`, which does not know which VMA changed and makes the next gap search rebuild
 * every node, O(n)). Lookups read the VMAs' bounds directly and need neither.
 */
export class VmaList {
  private root: VmaNode | null = null;
  /** mm->mmap: the lowest VMA. */
  private head: VmaNode | null = null;
  private size = 0;
  /** The last VMA lookup() found (mm->mmap_cache of Linux ≤ 3.14, the vmacache after it). */
  private cache: Vma | null = null;
  /** Some VMA's bounds changed and nobody said which: every gap is rebuilt before the next search. */
  private stale = false;

  /** map_count */
  get count(): number {
    return this.size;
  }

  /**
   * The VMAs in address order, as a new array each time: O(n). Hot paths iterate, or use
   * findFrom(), overlapping(), prev() and next() instead.
   */
  get list(): Vma[] {
    const out = new Array<Vma>(this.size);
    let i = 0;
    for (let n = this.head; n !== null; n = n.next) out[i++] = n.vma;
    return out;
  }

  /** The VMAs in address order. The loop body may remove the VMA it is given, not others. */
  [Symbol.iterator](): IterableIterator<Vma> {
    return new VmaIterator(this.head);
  }

  /** find_vma(): the first VMA that ends above `addr`, or null. O(log n). */
  findFrom(addr: number): Vma | null {
    return this.findNode(addr)?.vma ?? null;
  }

  /** vma_lookup(): the VMA containing `addr`, or null. O(1) on a repeat, else O(log n). */
  lookup(addr: number): Vma | null {
    const c = this.cache;
    if (c !== null && c.start <= addr && addr < c.end) return c;
    const n = this.findNode(addr);
    if (n === null || n.vma.start > addr) return null;
    this.cache = n.vma;
    return n.vma;
  }

  /** The VMAs that intersect [start, end), in order. O(log n + the number found). */
  overlapping(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let n = this.findNode(start); n !== null && n.vma.start < end; n = n.next) out.push(n.vma);
    return out;
  }

  /** True when [start, end) is covered by VMAs without a hole. */
  covers(start: number, end: number): boolean {
    let at = start;
    for (let n = this.findNode(start); n !== null && at < end && n.vma.start < end; n = n.next) {
      if (n.vma.start > at) return false;
      at = n.vma.end;
    }
    return at >= end;
  }

  /** vma->vm_prev: the VMA below `v`, or null (also when `v` is not in this list). O(1). */
  prev(v: Vma): Vma | null {
    return this.nodeOf(v)?.prev?.vma ?? null;
  }

  /** vma->vm_next: the VMA above `v`, or null (also when `v` is not in this list). O(1). */
  next(v: Vma): Vma | null {
    return this.nodeOf(v)?.next?.vma ?? null;
  }

  /**
   * vma_link() (__vma_link_list() + __vma_link_rb() + rb_insert_augmented()): `v` joins the
   * address space. It must not be in any list and must not overlap a VMA of this one (Linux's
   * find_vma_links() refuses the same). O(log n).
   */
  insert(v: Vma): void {
    if (v.rb !== null) throw new Error(`cowsim: inserting a VMA that is already in a list (${v.describe()})`);
    if (!(v.start < v.end)) throw new Error(`cowsim: inserting an empty VMA (${v.describe()})`);
    let parent: VmaNode | null = null;
    let leftSide = false;
    for (let n = this.root; n !== null;) {
      parent = n;
      leftSide = v.start < n.vma.start;
      n = leftSide ? n.left : n.right;
    }
    const prev = parent === null ? null : leftSide ? parent.prev : parent;
    const next = parent === null ? null : leftSide ? parent : parent.next;
    if ((prev !== null && prev.vma.end > v.start) || (next !== null && next.vma.start < v.end)) {
      const other = prev !== null && prev.vma.end > v.start ? prev.vma : next!.vma;
      throw new Error(`cowsim: inserting ${v.describe()}, which overlaps ${other.describe()}`);
    }
    const z = new VmaNode(v, this);
    z.parent = parent;
    if (parent === null) this.root = z;
    else if (leftSide) parent.left = z;
    else parent.right = z;
    z.prev = prev;
    z.next = next;
    if (prev !== null) prev.next = z; else this.head = z;
    if (next !== null) next.prev = z;
    v.rb = z;
    this.size++;
    this.propagate(parent);
    this.insertFixup(z);
  }

  /**
   * vma_unlink() (__vma_unlink_list() + rb_erase_augmented()): `v` leaves the address space.
   * O(log n).
   */
  remove(v: Vma): void {
    const z = this.nodeOf(v);
    if (z === null) throw new Error(`cowsim: removing a VMA that is not in the list (${v.describe()})`);
    if (z.prev !== null) z.prev.next = z.next; else this.head = z.next;
    if (z.next !== null) z.next.prev = z.prev;
    // z.next stays as it was, so an iterator standing on z goes on where z was
    this.erase(z);
    z.owner = null;
    v.rb = null;
    this.size--;
    if (this.cache === v) this.cache = null;
  }

  /**
   * vma_gap_update(): `v`'s start or end changed in place (a split, a merge, mremap growing it).
   * Recomputes the gaps on its path: O(log n). Its order among the VMAs must not have changed;
   * while a merge is in progress it may overlap the neighbour it is absorbing.
   */
  resized(v: Vma): void {
    this.cache = null;
    const n = this.nodeOf(v);
    if (n !== null) this.propagate(n);
  }

  /**
   * Called after VMAs' bounds change in place. With the VMA, the same as resized(); without
   * one, the next gap search first recomputes every node (O(n)).
   */
  invalidate(v?: Vma): void {
    if (v !== undefined) this.resized(v);
    else {
      this.cache = null;
      this.stale = true;
    }
  }

  /**
   * unmapped_area_topdown() (mm/mmap.c): the highest hole of at least `length` bytes (> 0)
   * that lies within [low, high) — below the lowest VMA, between two, or above the highest —
   * and the address a mapping of `length` bytes at its top gets: min(holeEnd, high) − length.
   * Null when no hole fits (the caller's ENOMEM). O(log n): subtrees whose largest hole is too
   * small, or that lie wholly outside [low, high), are not entered.
   */
  unmappedAreaTopdown(length: number, low: number, high: number): number | null {
    if (this.stale) this.rebuild();
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
   * validate_mm() with CONFIG_DEBUG_VM_RB: checks the whole structure — order, no overlaps, the
   * list against the tree, the red-black rules, every node's gap and bounds, the count. Returns
   * what is wrong (nothing: an empty array). O(n); for tests.
   */
  validate(): string[] {
    const bad: string[] = [];
    const inOrder: VmaNode[] = [];
    let blackHeight = -1;
    const walk = (n: VmaNode | null, parent: VmaNode | null, blacks: number): void => {
      if (n === null) {
        if (blackHeight < 0) blackHeight = blacks;
        else if (blacks !== blackHeight) bad.push(`black height ${blacks} on one path, ${blackHeight} on another`);
        return;
      }
      if (n.parent !== parent) bad.push(`${n.vma.describe()}: wrong parent link`);
      if (n.owner !== this || n.vma.rb !== n) bad.push(`${n.vma.describe()}: node not owned by this list`);
      if (n.red && parent !== null && parent.red) bad.push(`${n.vma.describe()}: red child of a red node`);
      walk(n.left, n, blacks + (n.red ? 0 : 1));
      inOrder.push(n);
      walk(n.right, n, blacks + (n.red ? 0 : 1));
      if (!this.stale) {
        const { lo, hi, gap } = n;
        augment(n);
        if (n.lo !== lo || n.hi !== hi || n.gap !== gap) {
          bad.push(`${n.vma.describe()}: subtree bounds ${hex(lo)}-${hex(hi)} gap ${hex(gap)}, should be ${hex(n.lo)}-${hex(n.hi)} gap ${hex(n.gap)}`);
        }
      }
    };
    if (this.root !== null && this.root.red) bad.push("the root is red");
    walk(this.root, null, 0);
    if (inOrder.length !== this.size) bad.push(`count ${this.size}, tree holds ${inOrder.length}`);
    let listed = 0;
    let prev: VmaNode | null = null;
    for (let n = this.head; n !== null && listed <= inOrder.length; n = n.next, listed++) {
      if (n !== inOrder[listed]) bad.push(`list and tree disagree at position ${listed}`);
      if (n.prev !== prev) bad.push(`${n.vma.describe()}: wrong prev link`);
      if (!(n.vma.start < n.vma.end)) bad.push(`${n.vma.describe()}: empty`);
      if (prev !== null && prev.vma.end > n.vma.start) bad.push(`${prev.vma.describe()} overlaps ${n.vma.describe()}`);
      prev = n;
    }
    if (listed !== inOrder.length) bad.push(`the list holds ${listed} VMAs, the tree ${inOrder.length}`);
    return bad;
  }

  private nodeOf(v: Vma): VmaNode | null {
    const n = v.rb;
    return n !== null && n.owner === this ? n : null;
  }

  /** The first node whose VMA ends above `addr`. */
  private findNode(addr: number): VmaNode | null {
    let best: VmaNode | null = null;
    for (let n = this.root; n !== null;) {
      if (n.vma.end > addr) {
        best = n;
        n = n.left;
      } else {
        n = n.right;
      }
    }
    return best;
  }

  /** The highest fitting hole between two VMAs of `n`'s subtree, or -1. */
  private topdown(n: VmaNode, length: number, low: number, high: number): number {
    if (n.gap < length || n.hi - length < low || n.lo + length > high) return -1;
    const v = n.vma;
    let a: number;
    if (n.right !== null) {
      a = this.topdown(n.right, length, low, high);
      if (a >= 0) return a;
      a = fitTop(v.end, n.right.lo, length, low, high);
      if (a >= 0) return a;
    }
    if (n.left !== null) {
      a = fitTop(n.left.hi, v.start, length, low, high);
      if (a >= 0) return a;
      return this.topdown(n.left, length, low, high);
    }
    return -1;
  }

  /** Recomputes `n` and every node above it (the augmented rbtree's propagate callback). */
  private propagate(n: VmaNode | null): void {
    for (; n !== null; n = n.parent) augment(n);
  }

  /** Recomputes every node, children first (after invalidate() without a VMA). */
  private rebuild(): void {
    const post = (n: VmaNode | null): void => {
      if (n === null) return;
      post(n.left);
      post(n.right);
      augment(n);
    };
    post(this.root);
    this.stale = false;
  }

  private replaceChild(parent: VmaNode | null, old: VmaNode, nw: VmaNode | null): void {
    if (parent === null) this.root = nw;
    else if (parent.left === old) parent.left = nw;
    else parent.right = nw;
    if (nw !== null) nw.parent = parent;
  }

  /** x's right child takes its place; both are recomputed (the "rotate" callback). */
  private rotateLeft(x: VmaNode): void {
    const y = x.right!;
    x.right = y.left;
    if (y.left !== null) y.left.parent = x;
    this.replaceChild(x.parent, x, y);
    y.left = x;
    x.parent = y;
    augment(x);
    augment(y);
  }

  private rotateRight(x: VmaNode): void {
    const y = x.left!;
    x.left = y.right;
    if (y.right !== null) y.right.parent = x;
    this.replaceChild(x.parent, x, y);
    y.right = x;
    x.parent = y;
    augment(x);
    augment(y);
  }

  /** The red-black rules again after inserting the red leaf `z`. */
  private insertFixup(z: VmaNode): void {
    while (z.parent !== null && z.parent.red) {
      const p = z.parent;
      const g = p.parent!; // a red node is never the root
      if (p === g.left) {
        const u = g.right;
        if (u !== null && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.right) {
            z = p;
            this.rotateLeft(z);
          }
          z.parent!.red = false;
          g.red = true;
          this.rotateRight(g);
        }
      } else {
        const u = g.left;
        if (u !== null && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.left) {
            z = p;
            this.rotateRight(z);
          }
          z.parent!.red = false;
          g.red = true;
          this.rotateLeft(g);
        }
      }
    }
    this.root!.red = false;
  }

  /** Takes `z` out of the tree, recomputes the path it leaves, and restores the rules. */
  private erase(z: VmaNode): void {
    let removedBlack = !z.red;
    let x: VmaNode | null;
    let xParent: VmaNode | null;
    if (z.left === null || z.right === null) {
      x = z.left ?? z.right;
      xParent = z.parent;
      this.replaceChild(z.parent, z, x);
    } else {
      // the successor y (the lowest VMA above z) takes z's place
      let y = z.right;
      while (y.left !== null) y = y.left;
      removedBlack = !y.red;
      x = y.right;
      if (y.parent === z) {
        xParent = y;
      } else {
        xParent = y.parent!;
        this.replaceChild(xParent, y, x);
        y.right = z.right;
        y.right.parent = y;
      }
      this.replaceChild(z.parent, z, y);
      y.left = z.left;
      y.left.parent = y;
      y.red = z.red;
    }
    z.left = z.right = z.parent = null;
    // every node whose subtree lost z is on the path up from xParent
    this.propagate(xParent);
    if (removedBlack) this.eraseFixup(x, xParent);
  }

  /** The red-black rules again after a black node left from above `x` (which may be null). */
  private eraseFixup(x: VmaNode | null, parent: VmaNode | null): void {
    while (x !== this.root && (x === null || !x.red)) {
      const p = parent!;
      if (x === p.left) {
        let w = p.right!; // x's side lost a black node, so its sibling's side has one
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateLeft(p);
          w = p.right!;
        }
        if ((w.left === null || !w.left.red) && (w.right === null || !w.right.red)) {
          w.red = true;
          x = p;
          parent = p.parent;
        } else {
          if (w.right === null || !w.right.red) {
            w.left!.red = false;
            w.red = true;
            this.rotateRight(w);
            w = p.right!;
          }
          w.red = p.red;
          p.red = false;
          if (w.right !== null) w.right.red = false;
          this.rotateLeft(p);
          x = this.root;
          parent = null;
        }
      } else {
        let w = p.left!;
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateRight(p);
          w = p.left!;
        }
        if ((w.left === null || !w.left.red) && (w.right === null || !w.right.red)) {
          w.red = true;
          x = p;
          parent = p.parent;
        } else {
          if (w.left === null || !w.left.red) {
            w.right!.red = false;
            w.red = true;
            this.rotateLeft(w);
            w = p.left!;
          }
          w.red = p.red;
          p.red = false;
          if (w.left !== null) w.left.red = false;
          this.rotateRight(p);
          x = this.root;
          parent = null;
        }
      }
    }
    if (x !== null) x.red = false;
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
