// What the frame allocator keeps, read from the shared memory for the allocator's tests: each
// pageblock's free count and bitmap, and the machine-wide free count. Plain reads: call it only
// while no other thread runs.
import type { Core } from "../../src/core/index.js";

export const BLOCK = 512;

export interface BlockState {
  /** Units left in the block (pageblock_free()). */
  readonly free: number;
  /** The 512 bits, one per frame, as 16 u32 words (word 2w is the low half of u64 word w). */
  readonly bits: Uint32Array;
}

export interface AllocatorState {
  readonly nrFree: number;
  readonly blocks: readonly BlockState[];
}

export function allocatorState(core: Core): AllocatorState {
  const nblocks = Math.ceil(core.layout.nframes / BLOCK);
  const blocks: BlockState[] = [];
  for (let b = 0; b < nblocks; b++) {
    const at = (core.x.pageblock_bitmap_addr(b) >>> 0) >>> 2;
    blocks.push({ free: core.x.pageblock_free(b), bits: core.u32.slice(at, at + 16) });
  }
  return { nrFree: core.freePages(), blocks };
}

/** Whether frame `i` of a block's bitmap is set. */
export function bitSet(bits: Uint32Array, i: number): boolean {
  return ((bits[i >>> 5]! >>> (i & 31)) & 1) === 1;
}

/** The bitmap words the allocator should hold for a block in which `taken(i)` frames are set. */
export function bitsOf(taken: (i: number) => boolean): Uint32Array {
  const out = new Uint32Array(16);
  for (let i = 0; i < BLOCK; i++) if (taken(i)) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** The frames of the machine's last block, which may be partial. */
export function framesInBlock(core: Core, b: number): number {
  return Math.min(BLOCK, core.layout.nframes - b * BLOCK);
}
