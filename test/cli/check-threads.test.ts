// `cowsim check --threads N`: the scenarios run across worker threads, and what is printed —
// the matrix, the FAIL lines, the summary, TAP, JSON — and the exit status are a serial run's.
import { cowsim, ROOT } from "./helpers.js";
import { describe, it, expect, beforeAll } from "vitest";
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let cat: string;
beforeAll(() => {
  cat = mkdtempSync(join(tmpdir(), "cowsim-threads-"));
  // a slice of the catalog (swapped, THP and pinned scenarios among them) and one that fails
  const files = readdirSync(join(ROOT, "scenarios")).filter((f) => f.endsWith(".yaml")).sort();
  for (const f of files.filter((_f, i) => i % 20 === 0)) copyFileSync(join(ROOT, "scenarios", f), join(cat, f));
  writeFileSync(join(cat, "zz-fails.yaml"), "name: fails\nreference: [{ cve: CVE-2020-29374 }]\nsteps:\n" +
    "  - { op: mmap, as: a, pages: 1 }\n  - { op: read, addr: a, expect: { mapcount: 1, all: 0 } }\n");
});

describe("check --threads", () => {
  it("prints what a serial check prints, byte for byte, with the same exit status", () => {
    for (const format of [[], ["--tap"], ["--json"]]) {
      const serial = cowsim("check", "--catalog", cat, "--threads", "1", ...format);
      const parallel = cowsim("check", "--catalog", cat, "--threads", "2", ...format);
      expect(serial.status).toBe(1);
      expect(serial.stdout).toContain(format[0] === "--json" ? "\"pass\": false" : "fails");
      expect([parallel.status, parallel.stdout, parallel.stderr]).toEqual([serial.status, serial.stdout, serial.stderr]);
    }
  });

  it("refuses a thread count that is no positive integer", () => {
    const r = cowsim("check", "--catalog", cat, "--threads", "0");
    expect([r.status, r.stdout, r.stderr]).toEqual([2, "", "cowsim: error: --threads must be an integer from 1 to 9999, not 0\n"]);
  });
});
