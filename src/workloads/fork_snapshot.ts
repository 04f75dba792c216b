/**
 * fork-snapshot: Redis BGSAVE (rdbSaveBackground(): fork(), the child serialises the dataset
 * while the parent keeps serving writes). The heap is populated by writes; the child scans it
 * in chunks, and between chunks the parent writes a Zipf-skewed share of it — every first write
 * to a page the child still shares is a COW fault (wp_page_copy()). The child exits, and the
 * parent's next writes to pages it still maps R/O reuse them (wp_page_reuse()): no one else
 * maps them any more, so a copy there would be unnecessary.
 */
import { ProgramBuilder } from "./program.js";
import { Rng, ZipfPages } from "./random.js";
import type { Workload } from "./workload.js";

export const forkSnapshot: Workload = {
  name: "fork-snapshot",
  title: "fork() for a snapshot: the child scans, the parent writes a Zipf-skewed share",
  standsFor: "Redis BGSAVE / fork() for checkpointing (rdbSaveBackground())",
  params: {
    heapPages: { description: "pages of heap, populated by writes", small: 64, default: 65536, large: 262144, min: 1 },
    writePercent: { description: "parent writes during the scan, as a percentage of the heap", small: 25, default: 10, large: 10, min: 0, max: 1000 },
    zipf: { description: "Zipf exponent of the parent's writes, in hundredths (99 = s 0.99)", small: 99, default: 99, large: 99, min: 0 },
    chunks: { description: "chunks the child scans, with a burst of parent writes before each", small: 4, default: 8, large: 8, min: 1 },
    afterPercent: { description: "parent writes after the child exits, as a percentage of the heap", small: 25, default: 5, large: 5, min: 0, max: 1000 },
  },
  generate(params, seed) {
    const { heapPages, writePercent, zipf, chunks, afterPercent } = params as Record<string, number>;
    const rng = new Rng(seed);
    const hot = new ZipfPages(rng, heapPages!, zipf! / 100);
    const b = new ProgramBuilder("fork-snapshot", seed, params);
    const heap = b.mmap(0, heapPages!);
    b.add({ op: "write", proc: 0, region: heap, pages: { first: 0, count: heapPages! }, value: 1 });
    const child = b.fork(0);
    const burst = Math.round((heapPages! * writePercent!) / 100 / chunks!);
    const chunk = Math.ceil(heapPages! / chunks!);
    for (let c = 0; c < chunks!; c++) {
      if (burst > 0) b.add({ op: "write", proc: 0, region: heap, pages: { list: hot.sample(burst) }, value: 0x1000 * (c + 2) });
      const first = c * chunk;
      const count = Math.min(chunk, heapPages! - first);
      if (count > 0) b.add({ op: "read", proc: child, region: heap, pages: { first, count } });
    }
    b.add({ op: "exit", proc: child });
    const after = Math.round((heapPages! * afterPercent!) / 100);
    if (after > 0) b.add({ op: "write", proc: 0, region: heap, pages: { list: hot.sample(after) }, value: 0x100000 });
    b.add({ op: "munmap", proc: 0, region: heap });
    return b.build();
  },
};
