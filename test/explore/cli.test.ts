import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cowsim } from "../cli/helpers.js";
import { LITMUS } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cowsim-explore-"));
const write = (name: string, text: string) => { const f = join(tmp, name); writeFileSync(f, text); return f; };

describe("cowsim explore", () => {
  it("prints herd7's blocks for each model, exit 0", () => {
    const r = cowsim("explore", join(LITMUS, "classic/SB+poonceonces.litmus"), "--no-time");
    expect(r.status).toBe(0);
    expect(r.stdout.match(/^Observation .*$/gm)).toEqual([
      "Observation SB+poonceonces Never 0 3", "Observation SB+poonceonces Sometimes 1 3", "Observation SB+poonceonces Sometimes 1 3",
    ]);
    expect(r.stdout).not.toMatch(/^Time /m);
  });

  it("runs the shipped seed 001 variants by name, one model, as JSON", () => {
    const r = cowsim("explore", "seed001", "--model", "relaxed", "--json");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { tests: { test: string; models: Record<string, { observation: string }> }[] };
    expect(j.tests).toHaveLength(13);
    expect(Object.keys(j.tests[0]!.models)).toEqual(["relaxed"]);
    expect(j.tests.find((t) => t.test === "seed001-readonly-fixed")!.models.relaxed!.observation).toBe("Never");
    expect(j.tests.find((t) => t.test === "seed001-readonly-mbpair")!.models.relaxed!.observation).toBe("Sometimes");
  });

  it("--check: exit 1 when an LKMM verdict differs from the Result: comment", () => {
    const f = write("wrong.litmus", "C wrong\n(* Result: Never *)\n{}\nP0(int *x)\n{\n\tWRITE_ONCE(*x, 1);\n}\nexists (x=1)\n");
    const r = cowsim("explore", f, "--check", "--model", "relaxed");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("verdict differs");
    expect(cowsim("explore", "classic", "--check").status).toBe(0);
  });

  it("an unsupported construct: file:line, exit 2, no stack trace", () => {
    const f = write("lock.litmus", "C lock\n{}\nP0(int *x, spinlock_t *l)\n{\n\tspin_lock(l);\n}\nexists (x=1)\n");
    const r = cowsim("explore", f);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`${f}:5: error: unsupported construct: spin_lock()\n`);
    expect(r.stdout).toBe("");
  });

  it("a missing file or a bad --model: exit 2 with the reason", () => {
    const missing = cowsim("explore", join(tmp, "none.litmus"));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*none\.litmus \(ENOENT\)/);
    const bad = cowsim("explore", "classic", "--model", "arm");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--model must be sc, tso, relaxed or all, not arm");
  });
});
