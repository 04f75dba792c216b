// Page contents: a 64-bit tag per frame, and optionally the first N bytes of real data.
//
// The tag stands for "what is in this page": the oracle compares tags, not bytes. Data bytes
// (0…4096, a creation option) let users read and write real bytes when they want them.
//
//   contentBase + pfn × stride:  tag (u64) │ data (N bytes, rounded up to 8)
//
// The same layout follows each swap slot (swapfile.ts), so swap-out and swap-in are copies.

import { hdr, ctx_up } from "./layout";

// @ts-ignore: decorator
@inline export function contentAddr(pfn: u32): u32 {
  const H = hdr();
  return H.contentBase + pfn * H.contentStride;
}

/**
 * A tag's store. Another thread may read a page's tag while this one writes it (a GUP user's
 * DMA on a worker): then it is one atomic store, an XCHG on x86. With one context attached
 * nobody else is in the core, and a plain store is a MOV, as the kernel's copy_page() is.
 */
// @ts-ignore: decorator
@inline export function tagStore(a: u32, value: u64): void {
  if (ctx_up()) store<u64>(a, value); else atomic.store<u64>(a, value);
}

/** clear_page(): tag 0 and zeroed data. */
export function clear_page_contents(pfn: u32): void {
  const a = contentAddr(pfn);
  tagStore(a, 0);
  const n = hdr().contentStride - 8;
  if (n) memory.fill(a + 8, 0, n);
}

/** copy_user_highpage(): the whole contents of `src` into `dst`. */
export function copy_page_contents(dst: u32, src: u32): void {
  const d = contentAddr(dst);
  const s = contentAddr(src);
  tagStore(d, atomic.load<u64>(s));
  const n = hdr().contentStride - 8;
  if (n) memory.copy(d + 8, s + 8, n);
}

/** Copies contents between any two areas laid out as tag + data (frames and swap slots). */
export function copy_contents_raw(dst: u32, src: u32): void {
  atomic.store<u64>(dst, atomic.load<u64>(src));
  const n = hdr().contentStride - 8;
  if (n) memory.copy(dst + 8, src + 8, n);
}

// The tag crosses into TypeScript as two u32 halves: no BigInt on any path.
export function page_tag_set(pfn: u32, lo: u32, hi: u32): void {
  atomic.store<u64>(contentAddr(pfn), (<u64>hi << 32) | <u64>lo);
}
export function page_tag_lo(pfn: u32): u32 {
  return <u32>atomic.load<u64>(contentAddr(pfn));
}
export function page_tag_hi(pfn: u32): u32 {
  return <u32>(atomic.load<u64>(contentAddr(pfn)) >> 32);
}
/** Address of the data bytes of `pfn` (valid for layout_data_bytes() bytes). */
export function page_data_addr(pfn: u32): u32 {
  return contentAddr(pfn) + 8;
}
export function page_copy(dst: u32, src: u32): void {
  copy_page_contents(dst, src);
}
export function page_clear(pfn: u32): void {
  clear_page_contents(pfn);
}
