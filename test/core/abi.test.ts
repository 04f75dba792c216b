// The build itself: no managed runtime, a fence that compiles, generated mirrors up to date and
// only checked by the build, and a narrow ABI (no 64-bit address crosses into JavaScript).
import { describe, it, expect } from "vitest";
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync, cpSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wat = (build: string) => readFileSync(`${root}build/cowsim.${build}.wat`, "utf8");
const genAbi = (dir: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(dir, "scripts/gen-abi.mjs"), ...args], { encoding: "utf8" });

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

  it("imports only the shared memory (release); the debug build adds abort and the checks' report", () => {
    const imports = (build: string) => [...wat(build).matchAll(/\(import "(\w+)" "(\w+)"/g)].map(([, m, n]) => `${m}.${n}`).sort();
    expect(imports("release")).toEqual(["env.memory"]);
    expect(wat("release")).toMatch(/\(import "env" "memory" \(memory \$0 16 65536 shared\)\)/);
    expect(imports("debug")).toEqual(["env.abort", "env.cowsim_check_failed", "env.memory"]);
  });
});

describe("the ABI", () => {
  it("the TypeScript mirror and the README's PTE table are generated from the current core", () => {
    // the build only checks them (it never rewrites them), so a changed constant fails here
    const r = genAbi(root, "--check");
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
  });

  it("the build, and so pretest, prestart and prebench, only checks the generated files; npm run gen writes them", () => {
    const scripts = (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts["build:check"]).toBe("node scripts/gen-abi.mjs --check");
    expect(scripts.build).toBe("npm run build:wasm && npm run build:check && npm run build:ts");
    expect(scripts.gen).toBe("npm run build:wasm && node scripts/gen-abi.mjs");
    // every script but gen that runs the generator runs it with --check
    const writers = Object.entries(scripts).filter(([, s]) => /gen-abi\.mjs(?! --check)/.test(s)).map(([n]) => n);
    expect(writers).toEqual(["gen"]);
    for (const pre of ["pretest", "prestart", "prebench:core", "prebench:loader", "prebench:mm", "prebench:gup"]) {
      expect(scripts[pre]).toMatch(/^npm run build --silent( && npm run typecheck --silent)?$/);
    }
  });

  it("--check fails on a stale file, naming it, the first line that differs and the command; gen rewrites it", () => {
    const dir = mkdtempSync(join(tmpdir(), "cowsim-gen-"));
    try {
      for (const p of ["scripts/gen-abi.mjs", "assembly", "build/cowsim.release.wasm", "build/cowsim.release.d.ts",
        "src/core/abi.generated.ts", "README.md"]) {
        mkdirSync(join(dir, p, ".."), { recursive: true });
        cpSync(join(root, p), join(dir, p), { recursive: true });
      }
      const abi = join(dir, "src/core/abi.generated.ts");
      const good = readFileSync(abi, "utf8");
      const lines = good.split("\n");
      const at = lines.indexOf("  GUP_PIN_COUNTING_BIAS: 1024,");
      expect(at).toBeGreaterThan(0);
      lines[at] = "  GUP_PIN_COUNTING_BIAS: 512,";
      writeFileSync(abi, lines.join("\n"));
      const readme = join(dir, "README.md");
      const goodReadme = readFileSync(readme, "utf8");
      writeFileSync(readme, goodReadme.replace("| `W` | writable (x86 _PAGE_RW) |", "| `W` | writeable |"));

      const r = genAbi(dir, "--check");
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`src/core/abi.generated.ts:${at + 1}: the file has "  GUP_PIN_COUNTING_BIAS: 512,"`);
      expect(r.stderr).toContain(`the core makes "  GUP_PIN_COUNTING_BIAS: 1024,"`);
      expect(r.stderr).toMatch(/README\.md:\d+: the file has "\| 1 \| `W` \| writeable \|"/);
      expect(r.stderr).toContain("Regenerate them with `npm run gen`");
      expect(readFileSync(abi, "utf8")).not.toBe(good); // --check writes nothing

      const w = genAbi(dir);
      expect({ status: w.status, stdout: w.stdout }).toEqual({
        status: 0, stdout: "gen-abi: wrote src/core/abi.generated.ts\ngen-abi: wrote README.md\n",
      });
      expect(readFileSync(abi, "utf8")).toBe(good);
      expect(readFileSync(readme, "utf8")).toBe(goodReadme);
      expect(genAbi(dir, "--check").status).toBe(0);
      expect(genAbi(dir).stdout).toBe(""); // nothing differs, nothing written
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("only entry values are 64-bit: addresses cross as f64, frames and counts as u32", () => {
    const dts = readFileSync(`${root}build/cowsim.release.d.ts`, "utf8");
    const fns = [...dts.matchAll(/\* (assembly\/[\w/]+)\n(?:\s+\*.*\n)*?\s+\*\/\n\s+export function (\w+)\(([^)]*)\): (\w+);/g)]
      .map(([, from, name, params, result]) => ({ from: from!.slice(0, from!.lastIndexOf("/")), name: name!, params: params!, result: result! }));
    expect(fns.length).toBe((dts.match(/export function /g) ?? []).length);
    const wide = fns.filter((f) => f.params.includes("bigint") || f.result === "bigint");
    // every 64-bit parameter is an entry (or a field of one), never an address or a count
    const entryParams = /^(pte|pmd|entry|old|nv|pfn|offset|prot|newprot): bigint$/;
    const offenders = wide.flatMap((f) => f.params.split(",").map((p) => p.trim())
      .filter((p) => p.includes("bigint") && !entryParams.test(p)).map((p) => `${f.name}(${p})`));
    expect(offenders).toEqual([]);
    // and the functions that take or return entries are exactly the PTE helpers of assembly/pte.ts
    // and the single-entry accessors of assembly/pgtable.ts
    const pteHelpers = fns.filter((f) => f.from === "assembly/pte").map((f) => f.name);
    expect(pteHelpers.length).toBe(68);
    expect(wide.map((f) => f.name).sort()).toEqual(
      [...pteHelpers, "ptep_get", "pmdp_get", "ptep_set", "pmdp_set", "ptep_get_and_clear", "ptep_cmpxchg"].sort());
  });
});
