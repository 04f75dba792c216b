/**
 * iouring-pressure: a server with io_uring fixed buffers (io_uring_register(IORING_REGISTER_BUFFERS):
 * io_sqe_buffers_register() pins them FOLL_WRITE | FOLL_LONGTERM) in a machine short of memory:
 * a bulk heap larger than what is left is written, and reclaim (shrink_folio_list()) swaps out
 * what it can. A pinned page must stay: try_to_unmap_one() refuses to unmap a maybe-pinned
 * exclusive page (folio_try_share_anon_rmap_pte() fails, 5.19 and later), and
 * folio_maybe_dma_pinned() keeps shrink_folio_list() away (5.9's page_maybe_dma_pinned() test).
 * A kernel without those tests (≤ 5.8) unmaps a pinned buffer page and writes it to swap, but
 * cannot free it — the pin's reference stops __remove_mapping() — so the next access maps the
 * same page back from the swap cache: coherent, at the price of an unmap and a swap fault per
 * buffer page and round. Between rounds the process writes its buffers, the device reads them,
 * and a share of the bulk heap comes back from swap, read-only: the next round's write to such a
 * page is where the rules differ (5.9–5.17's page_count() counts the swap cache's reference and
 * copies, an unnecessary COW; 53a05ad9f21d reuses it again; swap entries that remember
 * exclusivity, 1493a1913e34, map it writable at once).
 */
import { ProgramBuilder } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

export const iouringPressure: Workload = {
  name: "iouring-pressure",
  title: "io_uring fixed buffers under memory pressure: reclaim and swap around long-term pins",
  standsFor: "an io_uring server with registered buffers (IORING_REGISTER_BUFFERS) on a host that swaps",
  params: {
    bufferPages: { description: "pages of fixed buffers", small: 8, default: 2048, large: 8192, min: 1 },
    bulkPages: { description: "pages of bulk heap written each round", small: 48, default: 16384, large: 65536, min: 1 },
    rounds: { description: "rounds of write, reclaim, device read and swap-in", small: 3, default: 4, large: 8, min: 1 },
    reclaimPercent: { description: "pages reclaim is asked for each round, in percent of the bulk heap", small: 50, default: 50, large: 50, min: 0, max: 100 },
    swapInPercent: { description: "bulk pages read back each round, in percent", small: 25, default: 10, large: 10, min: 0, max: 100 },
  },
  kernelOptions(params) {
    // swap for everything reclaim is asked for, and twice the frames the heap needs
    const pages = params.bufferPages! + params.bulkPages!;
    return { swap: pages * 4096, memory: Math.max(2 * pages * 4096, 2 << 20) };
  },
  generate(params, seed) {
    const { bufferPages, bulkPages, rounds, reclaimPercent, swapInPercent } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("iouring-pressure", seed, params);
    const buffers = b.mmap(0, bufferPages!);
    b.add({ op: "write", proc: 0, region: buffers, pages: { first: 0, count: bufferPages! }, value: 1 });
    const pin = b.pin(0, buffers, 0, bufferPages!, "io_uring", true);
    const bulk = b.mmap(0, bulkPages!);
    const reclaim = Math.round((bulkPages! * reclaimPercent!) / 100);
    const back = Math.round((bulkPages! * swapInPercent!) / 100);
    for (let r = 0; r < rounds!; r++) {
      b.add({ op: "write", proc: 0, region: bulk, pages: { first: 0, count: bulkPages! }, value: 0x1000 * (r + 1) });
      if (reclaim > 0) b.add({ op: "reclaim", pages: reclaim + bufferPages! });
      b.add({ op: "write", proc: 0, region: buffers, pages: { first: 0, count: bufferPages! }, value: 0x100000 * (r + 1) });
      b.add({ op: "dma_read", pin });
      if (back > 0) b.add({ op: "read", proc: 0, region: bulk, pages: { list: Array.from({ length: back }, () => below(rng, bulkPages!)) } });
    }
    b.add({ op: "unpin", pin });
    b.add({ op: "munmap", proc: 0, region: bulk });
    b.add({ op: "munmap", proc: 0, region: buffers });
    return b.build();
  },
};
