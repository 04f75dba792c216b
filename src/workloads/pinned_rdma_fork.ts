/**
 * pinned-rdma-fork: an RDMA server (an MPI rank, a storage target) registers memory regions —
 * ibv_reg_mr(), a FOLL_LONGTERM | FOLL_WRITE pin — and then forks helper processes
 * (system(), a launcher). Linux before 5.9 shared the pinned pages with the child, and the
 * parent's next write copied its page away from the pin: the device then read and wrote a page
 * the process no longer mapped (wrong COW). 5.9's copy of maybe-pinned pages at fork
 * (70e806e4e645, page_needs_cow_for_dma()) and 5.19's PageAnonExclusive keep the parent on the
 * pinned page. Each worker writes a share of the non-pinned heap (ordinary COW) and exits; the
 * device reads the region after every round and checks it sees the parent's latest data.
 */
import { ProgramBuilder } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

export const pinnedRdmaFork: Workload = {
  name: "pinned-rdma-fork",
  title: "long-term pinned RDMA regions in a process that forks workers",
  standsFor: "an RDMA server that forks (ibv_reg_mr() + fork(), the case ibv_fork_init() and 70e806e4e645 address)",
  params: {
    heapPages: { description: "pages of ordinary heap", small: 32, default: 16384, large: 65536, min: 1 },
    mrPages: { description: "pages of each memory region", small: 8, default: 1024, large: 4096, min: 1 },
    regions: { description: "memory regions registered", small: 2, default: 4, large: 8, min: 1 },
    workers: { description: "workers forked, one after another", small: 3, default: 8, large: 16, min: 1 },
    workerWritePercent: { description: "heap pages each worker writes, in percent", small: 50, default: 10, large: 10, min: 0, max: 100 },
  },
  generate(params, seed) {
    const { heapPages, mrPages, regions, workers, workerWritePercent } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("pinned-rdma-fork", seed, params);
    const heap = b.mmap(0, heapPages!);
    b.add({ op: "write", proc: 0, region: heap, pages: { first: 0, count: heapPages! }, value: 1 });
    const mrs: { region: number; pin: number }[] = [];
    for (let r = 0; r < regions!; r++) {
      const region = b.mmap(0, mrPages!);
      b.add({ op: "write", proc: 0, region, pages: { first: 0, count: mrPages! }, value: 0x10 * (r + 1) });
      mrs.push({ region, pin: b.pin(0, region, 0, mrPages!, "rdma", true) });
    }
    const perWorker = Math.round((heapPages! * workerWritePercent!) / 100);
    for (let w = 0; w < workers!; w++) {
      const child = b.fork(0);
      const list = Array.from({ length: perWorker }, () => below(rng, heapPages!));
      if (list.length) b.add({ op: "write", proc: child, region: heap, pages: { list }, value: 0x1000 * (w + 1) });
      // the parent keeps using its registered buffers while the worker runs
      for (const mr of mrs) b.add({ op: "write", proc: 0, region: mr.region, pages: { first: 0, count: mrPages!, stride: 1 }, value: 0x100000 * (w + 1) });
      for (const mr of mrs) b.add({ op: "dma_read", pin: mr.pin });
      b.add({ op: "exit", proc: child });
    }
    for (const mr of mrs) b.add({ op: "unpin", pin: mr.pin });
    for (const mr of mrs) b.add({ op: "munmap", proc: 0, region: mr.region });
    b.add({ op: "munmap", proc: 0, region: heap });
    return b.build();
  },
};
