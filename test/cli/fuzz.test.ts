// cowsim fuzz end to end: a bounded search prints its failures and a summary line, writes each
// failure as a scenario file, and `cowsim run` replays every one of them with its finding.
import { cowsim } from "./helpers.js";
import { describe, it, expect } from "vitest";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";


describe("cowsim fuzz", () => {
  it("finds, shrinks and writes failures that cowsim run replays", () => {
    const out = mkdtempSync(join(tmpdir(), "cowsim-fuzz-"));
    const r = cowsim("fuzz", "--strategy", "mapcount", "--ops", "users", "--sequences", "15", "--seed", "11", "--out", out, "--quiet");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split("\n");
    const summary = lines.at(-1)!;
    expect(summary).toMatch(/^fuzz mapcount \(seed 11\): \d+ steps in \d+\.\d s \(\d+ steps\/s\), 15 sequences; (\d+) failures?: [\w@:, -]+$/);
    const n = Number(/; (\d+) failure/.exec(summary)![1]);
    expect(n).toBeGreaterThan(0);
    expect(lines).toHaveLength(n + 1);
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(n);
    for (const line of lines.slice(0, n)) expect(line).toMatch(/^[\w-]+@\w+: .* — \d+ steps \(shrunk from \d+, at \d+\.\d s\) → .*\.yaml$/);
    const replay = cowsim("run", ...files.map((f) => join(out, f)));
    expect(replay.stderr).toBe("");
    expect(replay.status).toBe(0);
    expect(replay.stdout).toMatch(new RegExp(`all ${n} runs passed`));
  });

  it("exits 0 with no failure to report", () => {
    const r = cowsim("fuzz", "--ops", "syscalls", "--sequences", "5", "--quiet");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^fuzz anon-exclusive \(seed 1\): \d+ steps in \d+\.\d s \(\d+ steps\/s\), 5 sequences; 0 failures\n$/);
  });

  it.each([
    [["--strategy", "linux-2.4"], /unknown strategy "linux-2.4"/],
    [["--seconds", "-1"], /--seconds must be a positive number of seconds, not -1/],
    [["--seed", "x"], /--seed must be an integer/],
    [["--ops", "all"], /--ops must be syscalls, users or everything, not all/],
    [["--knob", "nope"], /--knob takes name=true or name=false, not nope/],
    [["--strategy", "mapcount", "--knob", "nope=true"], /strategy mapcount has no knob "nope"/],
  ])("%j is a usage error (exit 2)", (args, message) => {
    const r = cowsim("fuzz", ...args, "--sequences", "1", "--quiet");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^cowsim: error: /);
  });
});
