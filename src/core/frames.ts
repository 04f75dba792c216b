/**
 * The frame table (struct page of every frame) read from TypeScript without a call per field:
 * what the invariants and the judges sweep after every step. Reads are plain 32-bit loads of
 * the shared memory — exact for a single thread, and never torn (no 64-bit field is read).
 * Writes go through the core's exports, never through this view.
 */
import { C } from "./abi.generated.js";
import type { Core } from "./core.js";

const TAIL = 1 << C.PG_tail;
const HEAD = 1 << C.PG_head;

/** A read-only view of every struct page. @public */
export class FrameTable {
  readonly nframes: number;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly base: number;
  private readonly stride: number;
  private readonly blockBase: number;
  private readonly blockStride: number;

  constructor(core: Core) {
    this.u32 = core.u32;
    this.i32 = core.i32;
    this.base = core.layout.frameBase >>> 2;
    this.stride = core.layout.pageStructBytes >>> 2;
    this.nframes = core.layout.nframes;
    this.blockBase = core.layout.blockBase >>> 2;
    this.blockStride = core.layout.pageblockBytes >>> 2;
  }

  /**
   * Whether pageblock `b` (frames 512·b … 512·b + 511) is wholly free: its free count is 512
   * (assembly/page_alloc.ts), so no frame of it is handed out — between calls into the core, with
   * no other thread inside it, where a reservation is never half made. The zero page's block and
   * a partial last block never are.
   */
  blockFree(b: number): boolean {
    return this.i32[this.blockBase + b * this.blockStride]! === C.HPAGE_PMD_NR;
  }

  /** page->flags: PG_* bits, and the folio order above PG_ORDER_SHIFT. */
  flags(pfn: number): number {
    return this.u32[this.base + pfn * this.stride + (C.PAGE_FIELD_FLAGS >>> 2)]!;
  }

  test(pfn: number, bit: number): boolean {
    return (this.flags(pfn) & (1 << bit)) !== 0;
  }

  /** page_folio(): the head of the folio `pfn` belongs to. */
  folio(pfn: number): number {
    const f = this.flags(pfn);
    if (!(f & TAIL)) return pfn;
    // a folio is naturally aligned: clear the low `order` bits (pfn < 2^28, orders ≤ 9; a float
    // remainder of a power here was most of the invariants' time)
    return pfn & ~((1 << ((f >>> C.PG_ORDER_SHIFT) & 0x1f)) - 1);
  }

  /** folio_test_large() of a head. */
  large(folio: number): boolean {
    return (this.flags(folio) & HEAD) !== 0;
  }

  /** folio_test_anon() of a head: page->mapping has PAGE_MAPPING_ANON (anonymous and KSM folios). */
  anon(folio: number): boolean {
    return (this.u32[this.base + folio * this.stride + (C.PAGE_FIELD_MAPPING >>> 2)]! & 1) !== 0;
  }

  /** folio_mapping_id() of a head: the anon_vma id (or shmem file) page->mapping names. */
  mappingId(folio: number): number {
    return this.u32[this.base + folio * this.stride + (C.PAGE_FIELD_MAPPING >>> 2)]! >>> 2;
  }

  /** folio->index of a head. */
  index(folio: number): number {
    return this.u32[this.base + folio * this.stride + (C.PAGE_FIELD_INDEX >>> 2)]!;
  }

  /** folio_ref_count() of a head. */
  refcount(folio: number): number {
    return this.i32[this.base + folio * this.stride + (C.PAGE_FIELD_REFCOUNT >>> 2)]!;
  }

  /** folio_mapcount() of an order-0 folio (page->_mapcount + 1). */
  mapcount(pfn: number): number {
    return this.i32[this.base + pfn * this.stride + (C.PAGE_FIELD_MAPCOUNT >>> 2)]! + 1;
  }

  /** page->private: the swap entry of a swap-cache folio (type << 27 | slot). */
  private_(pfn: number): number {
    return this.u32[this.base + pfn * this.stride + (C.PAGE_FIELD_PRIVATE >>> 2)]!;
  }

  /** folio->swap's slot while PG_swapcache is set. */
  swapSlot(folio: number): number {
    return this.private_(folio) & (2 ** 27 - 1);
  }
}
