/**
 * Shadow memory: for every page of an address space, the value its owner must read back.
 *
 * Pages are grouped in chunks of 512 (one PTE table's worth). A fork shares the parent's
 * chunks with the child and copies a chunk only when one side writes to it — copy-on-write for
 * the oracle's own bookkeeping, so a 1 GiB fork costs 512 pointer copies, not 262144 values.
 */
const CHUNK = 512;

/**
 * The arrays of chunks nobody holds any more, for the next chunk: a 4 KiB Float64Array lives
 * outside the JavaScript heap, and allocating one (and collecting it later) costs several times
 * what filling it does — the first write to a fork-shared THP copied one every time. Bounded,
 * so a large address space given up does not stay allocated.
 */
const spare: Float64Array[] = [];
const SPARE_MAX = 256;

/** A chunk's array, zero-filled or a copy of `from`. */
function chunkArray(from?: Float64Array): Float64Array {
  const v = spare.pop();
  if (v === undefined) return from === undefined ? new Float64Array(CHUNK) : from.slice();
  if (from === undefined) v.fill(0); else v.set(from);
  return v;
}

/** One holder lets go of `c`; the last one's array is kept for reuse. */
function drop(c: Chunk): void {
  if (--c.refs === 0 && spare.length < SPARE_MAX) spare.push(c.v);
}

/** @internal */
export class Chunk {
  refs = 1;
  constructor(readonly v: Float64Array) {}
}

/** Expected page values of one address space, by virtual page number. 0 = zero-filled. */
export class ShadowSpace {
  private chunks = new Map<number, Chunk>();
  /**
   * The chunk written last, while it is this space's alone: a run of accesses stays in one
   * chunk for 512 pages, and the map lookup costs more than the store. Forgotten by everything
   * that changes which chunks the space holds or shares (fork, clear, move, release).
   */
  private ownKey = -1;
  private own: Chunk | null = null;

  get(vpn: number): number {
    const key = Math.floor(vpn / CHUNK);
    if (key === this.ownKey) return this.own!.v[vpn - key * CHUNK]!;
    const c = this.chunks.get(key);
    return c === undefined ? 0 : c.v[vpn - key * CHUNK]!;
  }

  set(vpn: number, value: number): void {
    const key = Math.floor(vpn / CHUNK);
    if (key === this.ownKey) {
      this.own!.v[vpn - key * CHUNK] = value;
      return;
    }
    // a zero into a chunk that was never written changes nothing: no chunk for it
    if (value === 0 && !this.chunks.has(key)) return;
    const c = this.writable(key);
    this.ownKey = key;
    this.own = c;
    c.v[vpn - key * CHUNK] = value;
  }

  /** set() of `n` pages in order, page i at vpn + i·stride storing value + i·step. */
  setRun(vpn: number, n: number, stride: number, value: number, step: number): void {
    for (let i = 0; i < n;) {
      const at = vpn + i * stride;
      const key = Math.floor(at / CHUNK);
      if (key !== this.ownKey) {
        // set() takes the chunk as its own (or leaves a zero out of a chunk never written)
        this.set(at, value + i * step);
        i++;
        continue;
      }
      // the run's pages in this chunk, straight into its array
      const base = key * CHUNK;
      const m = Math.min(n - i, Math.floor((base + CHUNK - 1 - at) / stride) + 1);
      const v = this.own!.v;
      for (let j = 0; j < m; j++) v[at - base + j * stride] = value + (i + j) * step;
      i += m;
    }
  }

  private forget(): void {
    this.ownKey = -1;
    this.own = null;
  }

  /** The chunk `key`, this space's own (unshared, made when missing): the one to write into. */
  private writable(key: number): Chunk {
    let c = this.chunks.get(key);
    if (c === undefined) {
      c = new Chunk(chunkArray());
      this.chunks.set(key, c);
    } else if (c.refs > 1) {
      c.refs--;
      c = new Chunk(chunkArray(c.v));
      this.chunks.set(key, c);
    }
    return c;
  }

  /** Zero [vpnStart, vpnEnd): what MADV_DONTNEED, munmap and WIPEONFORK leave. */
  clear(vpnStart: number, vpnEnd: number): void {
    this.forget();
    for (let v = vpnStart; v < vpnEnd;) {
      const key = Math.floor(v / CHUNK);
      const chunkEnd = (key + 1) * CHUNK;
      const upTo = Math.min(chunkEnd, vpnEnd);
      const c = this.chunks.get(key);
      if (c !== undefined) {
        if (v === key * CHUNK && upTo === chunkEnd) {
          drop(c);
          this.chunks.delete(key);
        } else {
          this.writable(key).v.fill(0, v - key * CHUNK, upTo - key * CHUNK);
        }
      }
      v = upTo;
    }
  }

  /** A child's shadow after fork: the same values over [vpnStart, vpnEnd), chunks shared. */
  copyRangeInto(child: ShadowSpace, vpnStart: number, vpnEnd: number): void {
    this.forget();
    child.forget();
    for (let v = vpnStart; v < vpnEnd;) {
      const key = Math.floor(v / CHUNK);
      const chunkEnd = (key + 1) * CHUNK;
      const upTo = Math.min(chunkEnd, vpnEnd);
      const c = this.chunks.get(key);
      if (c !== undefined) {
        if (v === key * CHUNK && upTo === chunkEnd && !child.chunks.has(key)) {
          c.refs++;
          child.chunks.set(key, c);
        } else {
          for (let x = v; x < upTo; x++) child.set(x, c.v[x % CHUNK]!);
        }
      }
      v = upTo;
    }
  }

  /** The values of [vpn0, vpn0 + n), a chunk at a time. */
  readRange(vpn0: number, n: number): number[] {
    const out = new Array<number>(n);
    const vpnEnd = vpn0 + n;
    for (let v = vpn0; v < vpnEnd;) {
      const key = Math.floor(v / CHUNK);
      const upTo = Math.min((key + 1) * CHUNK, vpnEnd);
      const c = this.chunks.get(key);
      for (let x = v; x < upTo; x++) out[x - vpn0] = c === undefined ? 0 : c.v[x - key * CHUNK]!;
      v = upTo;
    }
    return out;
  }

  /**
   * mremap, UFFDIO_MOVE: the values of [from, from + n) move to [to, to + n) (the source becomes
   * zero; where it reads zero the destination keeps its value). A chunk-aligned chunk onto
   * nothing changes its key (a THP's 512 values in one step); elsewhere the values are copied a
   * slice at a time, never through a per-page lookup.
   */
  move(fromVpn: number, toVpn: number, n: number): void {
    this.forget();
    if (fromVpn < toVpn + n && toVpn < fromVpn + n) {
      // overlapping (a move within one range): read everything before anything is cleared
      const values = this.readRange(fromVpn, n);
      this.clear(fromVpn, fromVpn + n);
      for (let i = 0; i < n; i++) if (values[i] !== 0) this.set(toVpn + i, values[i]!);
      return;
    }
    for (let done = 0; done < n;) {
      const from = fromVpn + done;
      const to = toVpn + done;
      const fromKey = Math.floor(from / CHUNK);
      const toKey = Math.floor(to / CHUNK);
      const fromOff = from - fromKey * CHUNK;
      const toOff = to - toKey * CHUNK;
      const len = Math.min(CHUNK - fromOff, CHUNK - toOff, n - done);
      const c = this.chunks.get(fromKey);
      if (c === undefined) {
        // nothing but zeros: the destination keeps what it has, as a page-by-page move would
      } else if (len === CHUNK && !this.chunks.has(toKey)) {
        // a whole chunk onto nothing: it changes its key, whoever else shares it
        this.chunks.delete(fromKey);
        this.chunks.set(toKey, c);
      } else {
        const src = c.v;
        let dst: Float64Array | null = null;
        for (let i = 0; i < len; i++) {
          const v = src[fromOff + i]!;
          if (v === 0) continue;
          dst ??= this.writable(toKey).v;
          dst[toOff + i] = v;
        }
        if (len === CHUNK) {
          drop(c);
          this.chunks.delete(fromKey);
        } else {
          this.writable(fromKey).v.fill(0, fromOff, fromOff + len);
        }
      }
      done += len;
    }
  }

  release(): void {
    this.forget();
    for (const c of this.chunks.values()) drop(c);
    this.chunks.clear();
  }
}

/** Expected values of a shared object (shmem file), by page index. */
export class SharedShadow {
  private readonly values = new Map<number, number>();
  get(index: number): number {
    return this.values.get(index) ?? 0;
  }
  set(index: number, value: number): void {
    if (value === 0) this.values.delete(index);
    else this.values.set(index, value);
  }
  /** A hole punched or the object truncated: [start, end) reads zero. */
  clear(start: number, end: number): void {
    for (const index of [...this.values.keys()]) if (index >= start && index < end) this.values.delete(index);
  }
}

/**
 * A private mapping of a shared object keeps, in its process's ShadowSpace, -(value + 1) for a
 * page the process wrote (its own copy, which fork hands down and a discard drops); any other
 * entry (0) means the page is still the object's and reads the object's value.
 */
export const cowOwn = (value: number): number => -(value + 1);
/** The private value of a ShadowSpace entry of a private file mapping, or null: it reads the object. */
export const cowValue = (entry: number): number | null => (entry < 0 ? -entry - 1 : null);
