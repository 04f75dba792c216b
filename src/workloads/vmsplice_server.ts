/**
 * vmsplice-server: a server that answers requests by vmsplice()ing small runs of its buffer
 * into pipes (zero-copy output: the pipe holds FOLL_GET references to the pages, not copies)
 * and keeps writing the buffer; now and then a forked helper splices too, drops its mapping of
 * the spliced pages (MADV_DONTNEED, as CVE-2020-29374's reproducer does) and reads its pipe after
 * the parent's next write. The helper's pipe must keep what the helper saw: the parent's write
 * must copy (under Linux ≤ 5.7's mapcount rule the parent, now the only mapper, reused the page,
 * and the helper read the parent's new data — a missed COW). The parent's own splices see its later
 * writes, as vmsplice's documentation warns (SPLICE_F_GIFT aside).
 */
import { ProgramBuilder } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

export const vmspliceServer: Workload = {
  name: "vmsplice-server",
  title: "many small vmsplice()s from a process that keeps writing, some from forked helpers",
  standsFor: "a zero-copy server splicing its buffers into pipes (vmsplice(), the CVE-2020-29374 pattern)",
  params: {
    bufferPages: { description: "pages of output buffer", small: 16, default: 4096, large: 16384, min: 4 },
    requests: { description: "requests answered", small: 12, default: 4000, large: 16000, min: 1 },
    maxSplice: { description: "largest splice, in pages", small: 4, default: 4, large: 8, min: 1, max: 16 },
    helperEvery: { description: "every n-th request is answered by a forked helper (0: never)", small: 4, default: 16, large: 16, min: 0 },
    pipeDepth: { description: "pipes in flight before the oldest is read", small: 3, default: 16, large: 64, min: 1 },
  },
  generate(params, seed) {
    const { bufferPages, requests, maxSplice, helperEvery, pipeDepth } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("vmsplice-server", seed, params);
    const buf = b.mmap(0, bufferPages!);
    b.add({ op: "write", proc: 0, region: buf, pages: { first: 0, count: bufferPages! }, value: 1 });
    const inFlight: number[] = [];
    for (let r = 0; r < requests!; r++) {
      const count = 1 + below(rng, maxSplice!);
      const first = below(rng, bufferPages! - count + 1);
      const helper = helperEvery! > 0 && r % helperEvery! === helperEvery! - 1;
      // the server fills the next response, often over what it just spliced
      const wfirst = below(rng, 2) ? first : below(rng, bufferPages! - count + 1);
      const write = { op: "write", proc: 0, region: buf, pages: { first: wfirst, count }, value: 0x1000 * (r + 2) } as const;
      if (helper) {
        const child = b.fork(0);
        const pipe = b.vmsplice(child, buf, first, count);
        b.add({ op: "madvise", proc: child, region: buf, first, count, advice: "dontneed" });
        b.add(write);
        b.add({ op: "pipe_read", pipe });
        b.add({ op: "exit", proc: child });
      } else {
        inFlight.push(b.vmsplice(0, buf, first, count));
        b.add(write);
      }
      while (inFlight.length > pipeDepth!) b.add({ op: "pipe_read", pipe: inFlight.shift()! });
    }
    for (const pipe of inFlight) b.add({ op: "pipe_read", pipe });
    b.add({ op: "munmap", proc: 0, region: buf });
    return b.build();
  },
};
