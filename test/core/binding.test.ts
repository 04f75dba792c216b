// The TypeScript binding: option validation, sizing limits, thread contexts, self-description.
import { describe, it, expect } from "vitest";
import { Core, describeCore } from "../../src/core/index.js";
import { CowsimError } from "../../src/errno.js";
import { makeCore, BUILD } from "../helpers.js";

describe("Core.create", () => {
  it("rejects bad sizes with EINVAL, naming the option", () => {
    for (const [opts, re] of [
      [{ frames: 0 }, /frames must be an integer/],
      [{ frames: 1.5 }, /frames/],
      [{ dataBytes: 4097 }, /dataBytes must be an integer from 0 to 4096/],
      [{ maxThreads: 0 }, /maxThreads/],
      [{ build: "fast" }, /build must be/],
    ] as const) {
      try {
        Core.create({ build: BUILD, ...(opts as object) });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(CowsimError);
        expect((e as CowsimError).errno).toBe("EINVAL");
        expect((e as Error).message).toMatch(re);
      }
    }
  });

  it("refuses a machine that does not fit in 4 GiB of wasm32 memory, with ENOMEM", () => {
    expect(() => Core.create({ build: BUILD, frames: 1 << 26, dataBytes: 4096 })).toThrow(/ENOMEM.*4 GiB/);
  });

  it("sizes the memory from the options: 24 B of struct page per frame, tag and data per frame", () => {
    const a = makeCore({ frames: 4096 });
    const b = makeCore({ frames: 8192 });
    // the frame table is exactly 24 B per frame; the page-table pool starts at the next 4 KiB
    const pageAligned = (x: number) => Math.ceil(x / 4096) * 4096;
    for (const [core, frames] of [[a, 4096], [b, 8192]] as const) {
      expect(core.layout.ptBase).toBe(pageAligned(core.layout.frameBase + 24 * frames));
      expect(core.layout.frameBase - core.layout.blockBase).toBe(Math.ceil(72 * frames / 512 / 64) * 64);
    }
    expect(a.layout.pageStructBytes).toBe(24);
    const c = makeCore({ frames: 4096, dataBytes: 61 });
    expect(c.layout.contentStride).toBe(8 + 64);
    expect(c.data(1)).toHaveLength(61);
  });

  it("hands out one context per thread and refuses more than maxThreads (EBUSY)", () => {
    const core = makeCore({ maxThreads: 2 });
    const second = Core.attach(core.shared());
    expect(second.ctx).not.toBe(core.ctx);
    expect(() => Core.attach(core.shared())).toThrow(/EBUSY/);
    second.detach();
    const third = Core.attach(core.shared());
    expect(third.ctx).toBe(second.ctx);
    // both threads see the same machine
    const pfn = core.allocPages(0);
    third.setTag(pfn, 12345);
    expect(core.tag(pfn)).toBe(12345);
  });

  it("tags round-trip 53 bits through the two u32 halves", () => {
    const core = makeCore();
    const pfn = core.allocPages(0);
    for (const t of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      core.setTag(pfn, t);
      expect(core.tag(pfn)).toBe(t);
    }
  });
});

describe("describeCore", () => {
  it("prints the memory map, the per-page cost and the PTE table of the running module", () => {
    const text = describeCore(makeCore({ frames: 4096 }));
    expect(text).toMatch(/4096 frames of 4 KiB = 16\.0 MiB/);
    expect(text).toMatch(/24 B struct page \+ 8 B PTE = 32 B of metadata/);
    expect(text).toMatch(/bit  1 +W +writable/);
    expect(text).toMatch(/26 +SWP_MIGRATION_WRITE/);
    expect(text).toMatch(/GUP_PIN_COUNTING_BIAS = 1024/);
  });
});
