/**
 * uffd-gc: a compacting garbage collector that moves live pages with UFFDIO_MOVE (the Android
 * ART concurrent-compaction GC, for which UFFDIO_MOVE was merged in 6.8: move_pages() takes
 * exclusive anonymous pages from the from-space and puts them into the to-space's empty PTEs,
 * no copy), with a snapshot beside it as CRIU's or a concurrent marker's uffd-wp does: the
 * to-space is write-protected (UFFDIO_WRITEPROTECT, MM_CP_UFFD_WP), the mutator's first write
 * to each page raises a WP event, the snapshotter saves the page and lifts the protection.
 */
import { ProgramBuilder } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

export const uffdGc: Workload = {
  name: "uffd-gc",
  title: "a compacting GC moving live pages with UFFDIO_MOVE, a uffd-wp snapshot beside it",
  standsFor: "ART's userfaultfd GC (UFFDIO_MOVE, 6.8) with a uffd-wp snapshot (CRIU / a concurrent marker)",
  params: {
    heapPages: { description: "pages of from-space, populated by writes", small: 32, default: 16384, large: 65536, min: 1 },
    livePercent: { description: "pages still live at the collection, moved to the to-space", small: 50, default: 40, large: 40, min: 0, max: 100 },
    cycles: { description: "collections, each moving the live pages into a fresh to-space", small: 2, default: 3, large: 4, min: 1 },
    mutatorWritePercent: { description: "live pages the mutator writes under the snapshot, in percent", small: 50, default: 20, large: 20, min: 0, max: 100 },
  },
  generate(params, seed) {
    const { heapPages, livePercent, cycles, mutatorWritePercent } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("uffd-gc", seed, params);
    const uffd = b.uffdOpen(0, ["MOVE", "WP"]);
    let from = b.mmap(0, heapPages!);
    b.add({ op: "write", proc: 0, region: from, pages: { first: 0, count: heapPages! }, value: 1 });
    // pages populated in the from-space: all of it at first, the compacted live prefix after a cycle
    let populated = heapPages!;
    for (let c = 0; c < cycles!; c++) {
      const to = b.mmap(0, heapPages!);
      b.add({ op: "uffd_register", uffd, region: to, first: 0, count: heapPages!, modes: ["MISSING", "WP"] });
      // the live set, in address order: runs of consecutive live pages move in one ioctl
      let dst = 0;
      let run = -1;
      let runLen = 0;
      const flush = () => {
        if (runLen > 0) b.add({ op: "uffd_move", uffd, src: from, srcFirst: run, dst: to, dstFirst: dst - runLen, count: runLen });
        runLen = 0;
      };
      for (let p = 0; p < populated; p++) {
        if (below(rng, 100) >= livePercent!) {
          flush();
          continue;
        }
        if (runLen === 0) run = p;
        runLen++;
        dst++;
      }
      flush();
      b.add({ op: "munmap", proc: 0, region: from });
      const live = dst;
      if (live > 0) {
        b.add({ op: "uffd_wp", uffd, region: to, first: 0, count: live, on: true });
        const writes = Math.round((live * mutatorWritePercent!) / 100);
        const list = Array.from({ length: writes }, () => below(rng, live));
        if (list.length) b.add({ op: "write_wp", proc: 0, uffd, region: to, pages: { list }, value: 0x1000 * (c + 2) });
        b.add({ op: "uffd_wp", uffd, region: to, first: 0, count: live, on: false });
      }
      from = to;
      populated = dst;
    }
    b.add({ op: "munmap", proc: 0, region: from });
    return b.build();
  },
};
