// counter(name): each counter of counters() read alone — the core's own decisions (FAST_WP,
// FAST_SWAP, fork's early copies) merged as counters() merges them, the oracle's verdicts, vmstat
// and the mTHP sums.
import { describe, it, expect } from "vitest";
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MADV_PAGEOUT } from "../../src/index.js";
import { BUILD } from "../helpers.js";

const BASE = 0x40000000;
const PAGE = 4096;

describe("counter()", () => {
  for (const oracle of [false, true]) {
    it(`reads each counter as counters() reports it (oracle ${oracle ? "on" : "off"})`, () => {
      const k = createKernel({ strategy: "anon-exclusive", memory: "4M", swap: "1M", build: BUILD, oracle,
        thp: { sizes: { "16K": "always", "2M": "never" } } });
      const p = k.spawn();
      p.mmap(BASE, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      p.writeRange(BASE, 64, 1, 1);
      const mr = p.rdmaRegister(BASE, 4 * PAGE, true);
      const c = p.fork();
      c.writeRange(BASE, 32, 2, 1);
      p.madvise(BASE + 32 * PAGE, 16 * PAGE, MADV_PAGEOUT);
      p.touchRange(BASE + 32 * PAGE, 16);
      p.writeRange(BASE + 40 * PAGE, 8, 3, 1);
      mr.deregister();
      const all = k.counters();
      // the run made the core decide, so the merged counters are tested
      expect(k.core.vmstat().WP_CORE_COPY! + k.core.vmstat().SWAPIN_CORE! + k.core.vmstat().FORK_CORE_COPY!).toBeGreaterThan(0);
      expect(all.copies).toBeGreaterThan(0);
      for (const [name, value] of Object.entries(all)) expect(k.counter(name), name).toBe(value);
      expect(k.counter("noSuchCounter")).toBeUndefined();
      expect(k.counter("toString")).toBeUndefined();
    });
  }
});
