/**
 * random-mix: a seeded random sequence of every step the other workloads use — writes, reads,
 * forks and exits, pins and their DMA, vmsplice and pipe reads, MADV_DONTNEED / PAGEOUT,
 * mprotect, reclaim — over a few small regions, so that hot pages meet every sharer and every
 * pin. It is for robustness figures: the same mix under each strategy, counted by the oracle.
 * Unlike the fuzzer's generator (src/fuzz), which also injects failures and exhausts resources,
 * every step here is one the host kernel runs too, so the native companion can time it.
 */
import { ProgramBuilder, type Step } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

export const randomMix: Workload = {
  name: "random-mix",
  title: "a seeded random mix of every workload step over a few hot regions",
  standsFor: "no one program: the property tests' kind of random operation mix, for robustness figures",
  params: {
    steps: { description: "random steps", small: 60, default: 20000, large: 100000, min: 1 },
    regionPages: { description: "pages of each of the four regions", small: 8, default: 256, large: 1024, min: 1 },
    maxProcesses: { description: "processes alive at most", small: 4, default: 8, large: 16, min: 1 },
  },
  generate(params, seed) {
    const { steps, regionPages, maxProcesses } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("random-mix", seed, params);
    const regions = [0, 1, 2, 3].map(() => b.mmap(0, regionPages!));
    for (const region of regions) b.add({ op: "write", proc: 0, region, pages: { first: 0, count: regionPages! }, value: 1 });
    const live = [0];
    const pins: number[] = [];
    // a pipe goes when the process that spliced into it exits: each is read before that
    const pipes: { pipe: number; proc: number }[] = [];
    const run = () => {
      const count = 1 + below(rng, Math.min(4, regionPages!));
      return { region: regions[below(rng, regions.length)]!, first: below(rng, regionPages! - count + 1), count };
    };
    for (let i = 0; i < steps!; i++) {
      const proc = live[below(rng, live.length)]!;
      const r = run();
      const roll = below(rng, 100);
      let step: Step | null = null;
      if (roll < 40) step = { op: "write", proc, region: r.region, pages: { first: r.first, count: r.count }, value: 0x1000 + i };
      else if (roll < 60) step = { op: "read", proc, region: r.region, pages: { first: r.first, count: r.count } };
      else if (roll < 65 && live.length < maxProcesses!) live.push(b.fork(proc));
      else if (roll < 70 && proc !== 0) {
        for (let j = pipes.length - 1; j >= 0; j--) if (pipes[j]!.proc === proc) b.add({ op: "pipe_read", pipe: pipes.splice(j, 1)[0]!.pipe });
        step = { op: "exit", proc };
        live.splice(live.indexOf(proc), 1);
      } else if (roll < 75 && pins.length < 4) pins.push(b.pin(0, r.region, r.first, r.count, "io_uring", true));
      else if (roll < 78 && pins.length) step = { op: "dma_read", pin: pins[below(rng, pins.length)]! };
      else if (roll < 81 && pins.length) step = { op: "unpin", pin: pins.splice(below(rng, pins.length), 1)[0]! };
      else if (roll < 86 && pipes.length < 8) pipes.push({ pipe: b.vmsplice(proc, r.region, r.first, r.count), proc });
      else if (roll < 90 && pipes.length) step = { op: "pipe_read", pipe: pipes.shift()!.pipe };
      else if (roll < 93) step = { op: "madvise", proc, region: r.region, first: r.first, count: r.count, advice: below(rng, 2) ? "dontneed" : "pageout" };
      else if (roll < 97) {
        // write-protect and open again, as a GC's barrier does (6.2's mprotect write-upgrade of exclusive pages)
        b.add({ op: "mprotect", proc, region: r.region, first: r.first, count: r.count, write: false });
        step = { op: "mprotect", proc, region: r.region, first: r.first, count: r.count, write: true };
      }
      else step = { op: "reclaim", pages: 1 + below(rng, 16) };
      if (step) b.add(step);
    }
    // a pin belongs to the process that took it: only the first, which never exits, takes them
    for (const pin of pins) b.add({ op: "unpin", pin });
    for (const { pipe } of pipes) b.add({ op: "pipe_read", pipe });
    for (const proc of live) if (proc !== 0) b.add({ op: "exit", proc });
    return b.build();
  },
};
