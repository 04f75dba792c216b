import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { describe, expect, it } from "vitest";
import { explore, formatHerd, parseLitmus, resultJson } from "../../src/explore/index.js";
import { expectedVerdicts, litmusFiles } from "./helpers.js";

const run = (file: string) => explore(parseLitmus(readFileSync(file, "utf8"), basename(file)));

describe("the classic litmus tests (litmus/classic)", () => {
  const files = litmusFiles("classic");
  it("ships SB, MP, LB, IRIW and 2+2W with and without fences", () => {
    const names = files.map((f) => basename(f, ".litmus"));
    for (const shape of ["SB+", "MP+", "LB+", "IRIW+", "2+2W+"]) {
      expect(names.filter((n) => n.startsWith(shape) && n.includes("poonceonces")).length).toBeGreaterThan(0);
      expect(names.filter((n) => n.startsWith(shape) && n.includes("fence")).length).toBeGreaterThan(0);
    }
    expect(files).toHaveLength(16);
  });

  it.each(files.map((f) => [basename(f), f]))("%s: each model's verdict is the documented one", (_name, file) => {
    const r = run(file);
    const want = expectedVerdicts(file);
    expect(Object.fromEntries(r.models.map((m) => [m.model, m.observation]))).toEqual(want);
    // the LKMM verdict is also the file's Result: comment, as in the kernel's tests
    expect(r.program.expected).toBe(want.relaxed);
  });

  it("finds SC ⊆ TSO ⊆ LKMM on every classic test", () => {
    for (const f of files) {
      const [sc, tso, lk] = run(f).models.map((m) => new Set(m.states.map((s) => s.state)));
      for (const s of sc!) expect(tso!.has(s)).toBe(true);
      for (const s of tso!) expect(lk!.has(s)).toBe(true);
    }
  });
});

describe("herd7's result block", () => {
  const sb = litmusFiles("classic").find((f) => f.endsWith("/SB+poonceonces.litmus"))!;

  it("prints States, Ok/No, Witnesses, Condition and Observation as herd7 does", () => {
    const text = formatHerd(explore(parseLitmus(readFileSync(sb, "utf8"), "SB")), { time: false, witness: false });
    expect(text).toBe([
      "Model SC", "Test SB+poonceonces Allowed", "States 3", "0:r0=0; 1:r0=1;", "0:r0=1; 1:r0=0;", "0:r0=1; 1:r0=1;",
      "No", "Witnesses", "Positive: 0 Negative: 3", "Condition exists (0:r0=0 /\\ 1:r0=0)", "Observation SB+poonceonces Never 0 3", "",
      "Model x86-TSO", "Test SB+poonceonces Allowed", "States 4", "0:r0=0; 1:r0=0;", "0:r0=0; 1:r0=1;", "0:r0=1; 1:r0=0;", "0:r0=1; 1:r0=1;",
      "Ok", "Witnesses", "Positive: 1 Negative: 3", "Condition exists (0:r0=0 /\\ 1:r0=0)", "Observation SB+poonceonces Sometimes 1 3", "",
      "Model LKMM", "Test SB+poonceonces Allowed", "States 4", "0:r0=0; 1:r0=0;", "0:r0=0; 1:r0=1;", "0:r0=1; 1:r0=0;", "0:r0=1; 1:r0=1;",
      "Ok", "Witnesses", "Positive: 1 Negative: 3", "Condition exists (0:r0=0 /\\ 1:r0=0)", "Observation SB+poonceonces Sometimes 1 3", "",
    ].join("\n"));
  });

  it("prints a witness: an order the model allows, with the reordered accesses named", () => {
    // P0's load runs ahead of its store, which waits in the store buffer until the end
    const text = formatHerd(explore(parseLitmus(readFileSync(sb, "utf8"), "SB"), { models: ["tso"] }), { time: false });
    const w = text.slice(text.indexOf("Witness x86-TSO"));
    expect(w.split("\n").slice(0, 5).map((l) => l.replace(/\s+/g, " ").trim())).toEqual([
      "Witness x86-TSO: the condition's final state, 0:r0=0; 1:r0=0; — one order the model allows:",
      "1. P0 r0 = READ_ONCE(*y); R y=0 (initial value) — before line 16",
      "2. P1 WRITE_ONCE(*y, 1); W y=1",
      "3. P1 r0 = READ_ONCE(*x); R x=0 (initial value)",
      "4. P0 WRITE_ONCE(*x, 1); W x=1",
    ]);
  });

  it("gives the same result as JSON", () => {
    const j = resultJson(explore(parseLitmus(readFileSync(sb, "utf8"), "SB"))) as {
      test: string; models: Record<string, { observation: string; positive: number; negative: number; states: unknown[]; witness: { steps: unknown[] } | null }>;
    };
    expect(j.test).toBe("SB+poonceonces");
    expect(j.models.sc).toMatchObject({ observation: "Never", positive: 0, negative: 3, witness: null });
    expect(j.models.tso).toMatchObject({ observation: "Sometimes", positive: 1, negative: 3 });
    expect(j.models.tso!.states).toHaveLength(4);
    expect(j.models.relaxed!.witness!.steps).toHaveLength(4);
  });

  it("counts executions for ~exists and forall as herd7 does, and validates them", () => {
    const sbText = readFileSync(sb, "utf8");
    const never = explore(parseLitmus(sbText.replace("exists", "~exists"), "SB"));
    expect(never.models.map((m) => m.ok)).toEqual([true, false, false]);
    const all = explore(parseLitmus(sbText.replace(/exists \(.*\)/, "forall (0:r0=1 \\/ 1:r0=1)"), "SB"));
    expect(all.models.map((m) => [m.ok, m.observation])).toEqual([[true, "Always"], [false, "Sometimes"], [false, "Sometimes"]]);
    expect(formatHerd(all, { time: false })).toContain("Test SB+poonceonces Required");
  });
});

describe("the explorer as library code", () => {
  it("imports no Node module, so it runs in a browser (files are read by the CLI)", async () => {
    const { readdirSync, readFileSync: read } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = join(import.meta.dirname, "../../src/explore");
    const files = [...readdirSync(dir).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f)), join(dir, "protocols/seed001.ts")];
    for (const f of files) expect(read(f, "utf8"), f).not.toMatch(/from "node:|require\(/);
  });
});
