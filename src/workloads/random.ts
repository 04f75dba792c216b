/** Seeded draws for workload generators: uniform choices and a Zipf-skewed page sampler. */
import { Rng } from "../util/rng.js";

export { Rng };

/** An integer in [0, n). */
export function below(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

/**
 * A Zipf(s) sampler over ranks 0 … n-1 (rank 0 the hottest), by inversion of the cumulative
 * weights: O(n) to build, O(log n) per draw. Ranks map to pages through a seeded permutation so
 * the hot pages are spread over the heap, as a hash table's hot keys are.
 */
export class ZipfPages {
  private readonly cdf: Float64Array;
  private readonly perm: Uint32Array;

  constructor(
    private readonly rng: Rng,
    n: number,
    s: number,
  ) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) this.cdf[i] = sum += 1 / Math.pow(i + 1, s);
    for (let i = 0; i < n; i++) this.cdf[i]! /= sum;
    this.perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.perm[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = below(rng, i + 1);
      const t = this.perm[i]!;
      this.perm[i] = this.perm[j]!;
      this.perm[j] = t;
    }
  }

  next(): number {
    const u = this.rng.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return this.perm[lo]!;
  }

  /** `count` draws, in draw order (repeats kept: a hot page is written again). */
  sample(count: number): number[] {
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.next();
    return out;
  }
}
