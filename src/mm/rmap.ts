/**
 * Anonymous reverse mapping (mm/rmap.c): anon_vma and anon_vma_chain, built as
 * anon_vma_prepare(), anon_vma_clone() and anon_vma_fork() build them, and the rmap walk that
 * finds every PTE mapping an anonymous folio. The counters side (map counts,
 * PageAnonExclusive) lives in the core (assembly/rmap.ts).
 */
import type { Vma, VmaList } from "./vma.js";
import { PAGE_SIZE } from "./uapi.js";

/**
 * struct anon_vma. A folio's `mapping` names one of these by id; its `vmas` are the chains
 * linking every VMA that may map that folio (the kernel's interval tree, here a set).
 */
export class AnonVma {
  readonly id: number;
  readonly root: AnonVma;
  readonly parent: AnonVma;
  /** anon_vma_chains linking VMAs to this anon_vma (the kernel's rb_root). */
  readonly vmas = new Set<AnonVmaChain>();
  /** num_children: anon_vmas whose parent this is. */
  numChildren = 0;
  /** num_active_vmas: VMAs whose vma->anon_vma is this one. */
  numActiveVmas = 0;

  constructor(id: number, parent: AnonVma | null) {
    this.id = id;
    this.parent = parent ?? this;
    this.root = parent ? parent.root : this;
  }
}

/** struct anon_vma_chain: one VMA linked into one anon_vma. */
export class AnonVmaChain {
  constructor(readonly vma: Vma, readonly anonVma: AnonVma, readonly mm: number) {}
}

/** The anon_vmas of one kernel, by id (ids are never reused, so a stale one finds nothing). */
export class AnonVmaRegistry {
  private nextId = 1;
  private readonly byId = new Map<number, AnonVma>();

  alloc(parent: AnonVma | null): AnonVma {
    // the core stores id << 2 in a u32 mapping word
    if (this.nextId >= 2 ** 30) throw new Error("cowsim: anon_vma ids exhausted");
    const av = new AnonVma(this.nextId++, parent);
    this.byId.set(av.id, av);
    return av;
  }

  get(id: number): AnonVma | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Frees anon_vmas nothing links to any more (put_anon_vma() once the last chain goes). */
  release(av: AnonVma): void {
    let cur: AnonVma = av;
    for (;;) {
      const isRoot = cur.parent === cur;
      const children = cur.numChildren - (isRoot ? 1 : 0);
      if (cur.vmas.size !== 0 || children !== 0 || cur.numActiveVmas !== 0 || !this.byId.has(cur.id)) return;
      this.byId.delete(cur.id);
      if (isRoot) return;
      cur.parent.numChildren--;
      cur = cur.parent;
    }
  }
}

function link(vma: Vma, av: AnonVma, mm: number): void {
  const avc = new AnonVmaChain(vma, av, mm);
  vma.chain.push(avc);
  av.vmas.add(avc);
}

/**
 * __anon_vma_prepare(): give `vma` an anon_vma before its first anonymous page — a neighbour's
 * if find_mergeable_anon_vma() allows (so the two VMAs can still merge), else a new one.
 */
export function anon_vma_prepare(reg: AnonVmaRegistry, vma: Vma, vmas: VmaList, mm: number): AnonVma {
  if (vma.anonVma) return vma.anonVma;
  let av = findMergeableAnonVma(vma, vmas);
  if (!av) {
    av = reg.alloc(null);
    av.numChildren++; // the self-parent link of a new root: a root is never reused
  }
  vma.anonVma = av;
  av.numActiveVmas++;
  link(vma, av, mm);
  return av;
}

/**
 * find_mergeable_anon_vma() / reusable_anon_vma(): an adjacent VMA that could merge with this
 * one but for its anon_vma, and whose chain is singular (no fork in its history), lends it.
 */
function findMergeableAnonVma(vma: Vma, vmas: VmaList): AnonVma | null {
  for (const n of [vmas.next(vma), vmas.prev(vma)]) {
    if (!n || !n.anonVma || n.chain.length !== 1) continue;
    const adjacent = n.end === vma.start || n.start === vma.end;
    const compatible = n.flags === vma.flags && n.shmem === vma.shmem &&
      (n.end === vma.start ? n.pgoff + n.pages === vma.pgoff : vma.pgoff + vma.pages === n.pgoff);
    if (adjacent && compatible) return n.anonVma;
  }
  return null;
}

/**
 * anon_vma_clone(): link `dst` into every anon_vma `src` is linked into (VMA split, mremap,
 * fork). Returns an anon_vma `dst` may reuse as its own (fork's reuse of an anon_vma with no
 * active VMAs and fewer than two children), or null.
 */
export function anon_vma_clone(dst: Vma, src: Vma, dstMm: number): AnonVma | null {
  let reuse: AnonVma | null = null;
  for (let i = src.chain.length - 1; i >= 0; i--) {
    const av = src.chain[i]!.anonVma;
    link(dst, av, dstMm);
    if (!reuse && av !== src.anonVma && av.numChildren < 2 && av.numActiveVmas === 0) reuse = av;
  }
  return reuse;
}

/**
 * anon_vma_fork(): the child's VMA joins all of the parent's anon_vmas (so pages shared by
 * fork stay reachable), and gets an anon_vma of its own for its future pages, a child of the
 * parent's.
 */
export function anon_vma_fork(reg: AnonVmaRegistry, child: Vma, parent: Vma, childMm: number): void {
  child.chain = [];
  child.anonVma = null;
  if (!parent.anonVma) return;
  const reuse = anon_vma_clone(child, parent, childMm);
  if (reuse) {
    child.anonVma = reuse;
    reuse.numActiveVmas++;
    return;
  }
  const av = reg.alloc(parent.anonVma);
  av.numActiveVmas++;
  av.parent.numChildren++;
  child.anonVma = av;
  link(child, av, childMm);
}

/** Linking for a VMA split or copied within one mm: same anon_vma, chains duplicated. */
export function anon_vma_dup_for_split(dst: Vma, src: Vma, mm: number): void {
  dst.chain = [];
  dst.anonVma = src.anonVma;
  if (src.anonVma) src.anonVma.numActiveVmas++;
  anon_vma_clone(dst, src, mm);
}

/** unlink_anon_vmas(): the VMA goes away; anon_vmas nothing links to any more go too. */
export function unlink_anon_vmas(reg: AnonVmaRegistry, vma: Vma): void {
  if (vma.anonVma) vma.anonVma.numActiveVmas--;
  const touched = vma.chain.map((avc) => {
    avc.anonVma.vmas.delete(avc);
    return avc.anonVma;
  });
  vma.chain = [];
  vma.anonVma = null;
  for (const av of touched) reg.release(av);
}

/** One place an rmap walk found a folio may be mapped. */
export interface RmapHit {
  readonly mm: number;
  readonly vma: Vma;
  readonly address: number;
}

/**
 * rmap_walk_anon(): the (mm, VMA, address) triples where the anonymous page with `mapping id`
 * and `index` may be mapped — vma_address() of every VMA linked to its anon_vma; with `nr`, of
 * every VMA holding any of the folio's `nr` pages (the address may then lie below the VMA).
 * The caller checks each PTE (page_vma_mapped_walk()).
 */
export function rmap_walk_anon(reg: AnonVmaRegistry, anonVmaId: number, index: number, nr = 1): RmapHit[] {
  const av = reg.get(anonVmaId);
  if (!av) return [];
  const hits: RmapHit[] = [];
  for (const avc of av.vmas) {
    const v = avc.vma;
    // modulo 2^32, as page->index is kept
    const delta = ((index - v.pgoff) >>> 0);
    if (delta < v.pages) {
      hits.push({ mm: avc.mm, vma: v, address: v.start + delta * PAGE_SIZE });
      continue;
    }
    // a large folio of `nr` pages that begins before the VMA (pgoff_start..pgoff_end of the
    // kernel's walk): the address of its first page lies below the VMA's start
    const before = ((v.pgoff - index) >>> 0);
    if (before < nr) hits.push({ mm: avc.mm, vma: v, address: v.start - before * PAGE_SIZE });
  }
  return hits;
}
