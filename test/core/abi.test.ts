// The build itself: no managed runtime, a fence that compiles, generated mirrors up to date,
// and a narrow ABI (no 64-bit address crosses into JavaScript).
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wat = (build: string) => readFileSync(`${root}build/cowsim.${build}.wat`, "utf8");

describe("the release build", () => {
  it("pulls in no managed runtime: no allocator, no GC, no ~lib/rt", () => {
    const text = wat("release");
    expect(text).not.toMatch(/~lib\/rt/);
    expect(text).not.toMatch(/__alloc|__new|__collect|__pin/);
  });

  it("keeps no mutable state in module globals (they are per instance, per thread)", () => {
    for (const build of ["release", "debug"]) {
      expect(wat(build)).not.toMatch(/\(global \$\S+ \(mut /);
    }
  });

  it("compiles atomic.fence (assemblyscript 0.28.20 cannot: keep the pin until it can)", () => {
    // Binaryen's -O3 drops the fences of the release build: every shared access around them
    // is a sequentially consistent Wasm atomic already, so they order nothing more there.
    expect(wat("debug")).toMatch(/atomic\.fence/);
  });

  it("imports only the shared memory (release) and abort (debug)", () => {
    expect(wat("release").match(/\(import /g)).toHaveLength(1);
    expect(wat("release")).toMatch(/\(import "env" "memory" \(memory \$0 16 65536 shared\)\)/);
    expect(wat("debug")).toMatch(/\(import "env" "abort"/);
  });
});

describe("the ABI", () => {
  it("the TypeScript mirror and the README's PTE table are generated from the current core", () => {
    expect(() => execFileSync(process.execPath, [`${root}scripts/gen-abi.mjs`, "--check"], { stdio: "pipe" })).not.toThrow();
  });

  it("only entry values are 64-bit: addresses cross as f64, frames and counts as u32", () => {
    const dts = readFileSync(`${root}build/cowsim.release.d.ts`, "utf8");
    const wide = [...dts.matchAll(/export function (\w+)\(([^)]*)\)/g)]
      .flatMap(([, name, params]) => params!.split(",").filter((p) => p.includes("bigint")).map((p) => `${name}(${p.trim()})`));
    const entryParams = /^(pte|pmd|entry|old|nv|pfn|offset|prot|newprot): bigint$/;
    const offenders = wide.filter((w) => !entryParams.test(w.slice(w.indexOf("(") + 1, -1)));
    expect(offenders).toEqual([]);
    // and the few functions that take entries are the pte helpers and single-entry accessors
    expect(wide.length).toBeGreaterThan(40);
  });
});
