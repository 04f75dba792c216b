// The trace log: the tracepoints of one core call, recorded in order for TypeScript to deliver
// after the call returns — as the kernel's trace events go to a ring buffer first and reach
// their readers later (kernel/trace/ring_buffer.c). With FAST_LOG a run of accesses keeps its
// faults in the core while subscribers that only need to see each event, in order (the oracle,
// the journal), still see every one: each completed access, each do_anonymous_page(), and each
// write-protect fault the core decides, with the facts a strategy's rule and a copy's verdict
// are read from, as they were before the fault changed them.
//
// The log is the upper half of the context's scratch area (the lower half is the access list's
// input); an access that might not fit stops its run with ACCESS_LOG_FULL, having changed
// nothing, and the caller delivers the log and calls again.

import { ctxOf, hdr } from "./layout";

/** A completed load or store: pfn, the value read or stored. */
export const LOG_ACCESS: u32 = 1;
/** do_anonymous_page() mapped a fresh exclusive page (pfn). */
export const LOG_ANON: u32 = 2;
/** do_anonymous_page() mapped the shared zero page. */
export const LOG_ZERO_PAGE: u32 = 3;
/** do_wp_page() reused pfn (wp_page_reuse()). */
export const LOG_WP_REUSE: u32 = 4;
/** do_wp_page() copied pfn into newPfn (wp_page_copy()). */
export const LOG_WP_COPY: u32 = 5;
/** do_wp_page() replaced the zero page by newPfn. */
export const LOG_WP_ZERO: u32 = 6;

/**
 * One entry: kind, pfn, newPfn, folio_mapcount(), folio_ref_count() when the fault began and
 * after lru_add_drain() (the same when nothing was drained), the folio's flags, then the
 * address and the value (f64).
 */
export const LOG_ENTRY_BYTES: u32 = 48;
/** The most entries one access makes: a fault, and the access. */
export const LOG_PER_ACCESS: u32 = 2;

// @ts-ignore: decorator
@inline export function logBase(ctx: u32): u32 {
  return ctxOf(ctx).scratch + (hdr().scratchBytes >> 1);
}

/** Whether the log of `ctx` has room for one more access. */
// @ts-ignore: decorator
@inline export function log_has_room(ctx: u32): bool {
  return (ctxOf(ctx).logCount + LOG_PER_ACCESS) * LOG_ENTRY_BYTES <= (hdr().scratchBytes >> 1);
}

/** Appends an entry; the caller checked the room (log_has_room()) at the start of the access. */
export function trace_log(
  ctx: u32, kind: u32, pfn: u32, newPfn: u32, mapcount: i32, rc0: i32, rc1: i32, flags: u32, a: u64, value: u64,
): void {
  const C = ctxOf(ctx);
  const e = logBase(ctx) + C.logCount * LOG_ENTRY_BYTES;
  C.logCount++;
  store<u32>(e, kind);
  store<u32>(e, pfn, 4);
  store<u32>(e, newPfn, 8);
  store<i32>(e, mapcount, 12);
  store<i32>(e, rc0, 16);
  store<i32>(e, rc1, 20);
  store<u32>(e, flags, 24);
  store<f64>(e, <f64>a, 32);
  store<f64>(e, <f64>value, 40);
}

/** Where the log of `ctx` begins (the binding reads it there). */
export function trace_log_base(ctx: u32): u32 {
  return logBase(ctx);
}
