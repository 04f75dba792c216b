// What the command loads: the scenario parser (YAML, the schema validator and the validators
// compiled at build time), the progress bars, the worker pool and the bench's sweep specs are
// loaded when a command needs them — `run`, `explain` and `check` of the built-in catalog,
// which the build loaded already, start with commander alone.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CVE, MAIN } from "./helpers.js";

// a module resolve hook that names, on stderr, each package and built file the command loads
const HOOK = "data:text/javascript," + encodeURIComponent(`
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = /node_modules\\\\/([^/]+)|(validators\\\\.gen)\\\\.js$/.exec(r.url);
  if (m) process.stderr.write("LOADED " + (m[1] ?? m[2]) + "\\\\n");
  return r;
}\`));
`);

function loaded(...args: string[]): { status: number | null; modules: string[] } {
  const r = spawnSync(process.execPath, ["--import", HOOK, MAIN, ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "" } });
  const modules = [...new Set(r.stderr.split("\n").filter((l) => l.startsWith("LOADED ")).map((l) => l.slice(7)))].sort();
  return { status: r.status, modules };
}

describe("the command loads what it needs", () => {
  it("runs, explains and checks the built-in catalog with commander alone", () => {
    expect(loaded("run", CVE)).toEqual({ status: 0, modules: ["commander"] });
    expect(loaded("explain", CVE)).toEqual({ status: 0, modules: ["commander"] });
    expect(loaded("check", "--tap")).toEqual({ status: 0, modules: ["commander"] });
  });

  it("parses a file of its own with YAML and the validators compiled at build time", () => {
    const dir = mkdtempSync(join(tmpdir(), "cowsim-lazy-"));
    try {
      const own = join(dir, "own.yaml");
      copyFileSync(CVE, own);
      expect(loaded("run", own)).toEqual({ status: 0, modules: ["ajv", "commander", "validators.gen", "yaml"] });
      // a catalog file and one of its own: the parser once
      expect(loaded("run", CVE, own).modules).toEqual(["ajv", "commander", "validators.gen", "yaml"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loads the bench's work when a bench command runs", () => {
    const list = loaded("bench", "list", "--json");
    expect(list.status).toBe(0);
    expect(list.modules).toContain("cli-progress");
    expect(list.modules).toContain("yaml");
  });
});
