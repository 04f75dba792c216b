/**
 * Binary relations over the events of one candidate execution, as bit matrices (one row of
 * 32-bit words per event): the `;`, `|`, `&`, `\`, `*`, `+` of herd7's cat language, on which
 * the three models (models.ts) are written down as the cat files write them.
 */
export class Rel {
  readonly w: number;
  readonly bits: Uint32Array;
  constructor(readonly n: number, bits?: Uint32Array) {
    this.w = (n + 31) >>> 5;
    this.bits = bits ?? new Uint32Array(n * this.w);
  }
  static id(n: number, set?: EvSet): Rel {
    const r = new Rel(n);
    for (let i = 0; i < n; i++) if (set === undefined || set.has(i)) r.add(i, i);
    return r;
  }
  add(a: number, b: number): void { this.bits[a * this.w + (b >>> 5)]! |= 1 << (b & 31); }
  has(a: number, b: number): boolean { return (this.bits[a * this.w + (b >>> 5)]! & (1 << (b & 31))) !== 0; }
  private map2(o: Rel, f: (x: number, y: number) => number): Rel {
    const out = new Rel(this.n);
    for (let i = 0; i < this.bits.length; i++) out.bits[i] = f(this.bits[i]!, o.bits[i]!);
    return out;
  }
  or(...os: Rel[]): Rel { let r: Rel = this; for (const o of os) r = r.map2(o, (x, y) => x | y); return r; }
  and(o: Rel): Rel { return this.map2(o, (x, y) => x & y); }
  minus(o: Rel): Rel { return this.map2(o, (x, y) => x & ~y); }
  /** this ; o */
  seq(o: Rel): Rel {
    const out = new Rel(this.n);
    const w = this.w;
    for (let a = 0; a < this.n; a++) {
      for (let wi = 0; wi < w; wi++) {
        let word = this.bits[a * w + wi]!;
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          word &= word - 1;
          const k = (wi << 5) + bit;
          for (let j = 0; j < w; j++) out.bits[a * w + j]! |= o.bits[k * w + j]!;
        }
      }
    }
    return out;
  }
  /** [dom] ; this ; [rng] */
  restrict(dom: EvSet | null, rng: EvSet | null): Rel {
    const out = new Rel(this.n);
    for (let a = 0; a < this.n; a++) {
      if (dom !== null && !dom.has(a)) continue;
      for (let j = 0; j < this.w; j++) out.bits[a * this.w + j] = this.bits[a * this.w + j]! & (rng === null ? ~0 : rng.bits[j]!);
    }
    return out;
  }
  /** this+ (Warshall on rows) */
  plus(): Rel {
    const out = new Rel(this.n, this.bits.slice());
    const w = this.w;
    for (let k = 0; k < this.n; k++) {
      const kw = k >>> 5, kb = 1 << (k & 31);
      for (let a = 0; a < this.n; a++) {
        if ((out.bits[a * w + kw]! & kb) === 0) continue;
        for (let j = 0; j < w; j++) out.bits[a * w + j]! |= out.bits[k * w + j]!;
      }
    }
    return out;
  }
  star(): Rel { return this.plus().or(Rel.id(this.n)); }
  opt(): Rel { return this.or(Rel.id(this.n)); }
  inverse(): Rel {
    const out = new Rel(this.n);
    for (let a = 0; a < this.n; a++) for (let b = 0; b < this.n; b++) if (this.has(a, b)) out.add(b, a);
    return out;
  }
  isEmpty(): boolean { return this.bits.every((x) => x === 0); }
  /** acyclic: no event reaches itself (a depth-first search, cheaper than the closure). */
  acyclic(): boolean { return this.findCycle() === null; }
  /** One cycle, as the events along it, or null. */
  findCycle(): number[] | null {
    const state = new Uint8Array(this.n); // 0 new, 1 on stack, 2 done
    const stack: number[] = [];
    const visit = (a: number): number[] | null => {
      state[a] = 1;
      stack.push(a);
      for (let b = 0; b < this.n; b++) {
        if (!this.has(a, b)) continue;
        if (state[b] === 1) return stack.slice(stack.indexOf(b));
        if (state[b] === 0) { const c = visit(b); if (c) return c; }
      }
      stack.pop();
      state[a] = 2;
      return null;
    };
    for (let a = 0; a < this.n; a++) if (state[a] === 0) { const c = visit(a); if (c) return c; }
    return null;
  }
  irreflexive(): boolean { for (let a = 0; a < this.n; a++) if (this.has(a, a)) return false; return true; }
  /** A topological order (smallest index first among the ready ones), for an acyclic relation. */
  linearize(): number[] {
    const indeg = new Array<number>(this.n).fill(0);
    for (let a = 0; a < this.n; a++) for (let b = 0; b < this.n; b++) if (a !== b && this.has(a, b)) indeg[b]!++;
    const out: number[] = [];
    const done = new Uint8Array(this.n);
    while (out.length < this.n) {
      let pick = -1;
      for (let a = 0; a < this.n; a++) if (!done[a] && indeg[a] === 0) { pick = a; break; }
      if (pick < 0) for (let a = 0; a < this.n; a++) if (!done[a]) { pick = a; break; } // a cycle: take any
      done[pick] = 1;
      out.push(pick);
      for (let b = 0; b < this.n; b++) if (b !== pick && this.has(pick, b)) indeg[b]!--;
    }
    return out;
  }
}

/** A set of events, as one bit row. */
export class EvSet {
  readonly bits: Uint32Array;
  constructor(readonly n: number) { this.bits = new Uint32Array((n + 31) >>> 5); }
  static of(n: number, pred: (i: number) => boolean): EvSet {
    const s = new EvSet(n);
    for (let i = 0; i < n; i++) if (pred(i)) s.bits[i >>> 5]! |= 1 << (i & 31);
    return s;
  }
  has(i: number): boolean { return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0; }
}
