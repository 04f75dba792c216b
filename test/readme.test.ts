// The README stays true: what it lists is what the package has.
import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { STRATEGIES, COUNTER_DESCRIPTIONS } from "../src/index.js";
import { STEP_SCHEMAS } from "../src/scenario/schema.js";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };

describe("README", () => {
  it("lists every knob of every strategy with its commit, kernel and default", () => {
    const ids = STRATEGIES.map((s) => s.id);
    const rows = readme.split("\n").filter((l) => ids.some((id) => l.startsWith(`| ${id} | \``)));
    for (const s of STRATEGIES) {
      for (const knob of s.knobs) {
        const row = rows.find((l) => l.startsWith(`| ${s.id} | \`${knob.name}\``));
        expect(row, `${s.id}.${knob.name}`).toBeDefined();
        const cells = row!.split("|").map((c) => c.trim());
        expect(cells.slice(3, 6), `${s.id}.${knob.name}`).toEqual([knob.commit, knob.kernel, knob.default ? "on" : "off"]);
      }
    }
    expect(rows.length).toBe(STRATEGIES.reduce((n, s) => n + s.knobs.length, 0));
  });

  it("names every counter", () => {
    for (const name of Object.keys(COUNTER_DESCRIPTIONS)) expect(readme, name).toContain(`\`${name}\``);
  });

  it("documents every scenario op and every command", () => {
    const ops = STEP_SCHEMAS.map((s) => (s as { properties: { op: { const: string } } }).properties.op.const);
    expect(ops.length).toBeGreaterThanOrEqual(30);
    const table = readme.slice(readme.indexOf("| op | fields"));
    for (const op of ops) expect(table, op).toMatch(new RegExp(`^\\|[^\\n]*\`${op}\``, "m"));
    for (const c of ["run", "explain", "check", "fuzz", "bench", "schema", "core"]) expect(readme, c).toContain(`| \`cowsim ${c}`);
  });

  it("shows every benchmark script", () => {
    const benches = Object.keys(pkg.scripts).filter((s) => s.startsWith("bench:"));
    expect(benches.length).toBeGreaterThanOrEqual(5);
    for (const b of benches) expect(readme, b).toContain(`npm run ${b}`);
  });
});
