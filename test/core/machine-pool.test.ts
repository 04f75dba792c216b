// Core.release(): a machine given back is made new for the next Core.create() of its size —
// byte for byte the machine a fresh memory and instance would be — and one that other threads
// attached to is not given back.
import { describe, it, expect } from "vitest";
import { Core } from "../../src/core/index.js";
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "../../src/index.js";
import { BUILD, populate, BASE } from "./../helpers.js";

const SIZE = { frames: 1024, maxMms: 8, maxThreads: 2, build: BUILD } as const;

describe("machines given back", () => {
  it("are made new: the same bytes as a fresh machine", () => {
    const fresh = Core.create(SIZE);
    const image = Buffer.from(fresh.u8.slice());
    const used = Core.create(SIZE);
    const mm = used.x.mm_alloc(used.ctx) >>> 0;
    populate(used, mm, BASE, 64);
    const same = (u8: Uint8Array) => Buffer.compare(Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength), image) === 0;
    expect(same(used.u8)).toBe(false);
    used.release();
    const again = Core.create(SIZE);
    expect(again.memory).toBe(used.memory);
    expect(same(again.u8)).toBe(true);
    fresh.release();
  });

  it("are made new for another layout of the same memory: the frame table moved or shorter", () => {
    // memory_reset() leaves the old frame table for cowsim_init(), which writes its own over it
    // whole — and must zero what of the old one it does not cover
    for (const other of [{ ...SIZE, maxMms: 4 }, { ...SIZE, frames: 1016 }]) {
      const fresh = Core.create(other);
      const image = Buffer.from(fresh.u8.slice());
      const used = Core.create(SIZE);
      const mm = used.x.mm_alloc(used.ctx) >>> 0;
      populate(used, mm, BASE, 64);
      used.release();
      const again = Core.create(other);
      expect(again.memory).toBe(used.memory);
      expect(again.layout.frameBase === used.layout.frameBase && again.layout.nframes === used.layout.nframes).toBe(false);
      expect(Buffer.compare(Buffer.from(again.u8.buffer, again.u8.byteOffset, again.u8.byteLength), image)).toBe(0);
      again.release();
      fresh.release();
    }
  });

  it("serve only their own memory size and build", () => {
    const a = Core.create(SIZE);
    a.release();
    expect(Core.create({ ...SIZE, build: BUILD === "debug" ? "release" : "debug" }).memory).not.toBe(a.memory);
    const b = Core.create({ ...SIZE, frames: 16384 });
    expect(b.memory).not.toBe(a.memory);
    expect(Core.create(SIZE).memory).toBe(a.memory);
  });

  it("are not given back while another thread is attached", () => {
    const a = Core.create(SIZE);
    const other = Core.attach(a.shared());
    a.release();
    expect(Core.create(SIZE).memory).not.toBe(a.memory);
    other.detach();
  });

  it("run a kernel as a fresh one does", () => {
    const work = () => {
      const k = createKernel({ memory: "4M", build: BUILD });
      const p = k.spawn();
      const a = p.mmap(null, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      p.writeRange(a, 64, 1, 1);
      p.fork().writeRange(a, 32, 9, 0);
      const out = { counters: k.counters(), pagemap: p.pagemap(a, 64).join(), findings: k.findings };
      return { k, out };
    };
    const first = work();
    first.k.release();
    const second = work();
    expect(second.k.core.memory).toBe(first.k.core.memory);
    expect(second.out).toEqual(first.out);
  });
});
