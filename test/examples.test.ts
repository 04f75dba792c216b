// The programs of examples/ run as a user runs them — `node examples/x.js`, importing "cowsim"
// and "cowsim/node" (the package resolves its own name) from the built dist/ — and print
// exactly this. Every file in examples/ has its expected output here.
import { describe, it, expect } from "vitest";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));

const EXPECTED: Readonly<Record<string, string>> = {
  "fork-cow.js": `\
anon-exclusive (Linux ≥ 6.5)
parent reads 2, child reads 1
write faults 1, copies 1, reuses 0
findings: none
`,
  "scenario.js": `\
The parent exits, the child writes: nobody else maps the page, so it is reused
  PASS mapcount       Linux ≤ 5.7        copies 0, reuses 1, no findings
  PASS pagecount      Linux 5.14 – 5.17  copies 0, reuses 1, no findings
  PASS anon-exclusive Linux ≥ 6.5        copies 0, reuses 1, no findings
CVE-2020-29374: vmsplice() in the child, unmap, the parent writes
  PASS mapcount       Linux ≤ 5.7        copies 0, reuses 1, missed-cow
  PASS pagecount      Linux 5.14 – 5.17  copies 1, reuses 0, no findings
  PASS anon-exclusive Linux ≥ 6.5        copies 1, reuses 0, no findings
mapcount's finding: missed COW: the pipe of pid 2 shows 2 at 0x7ffff7ffe000, which another process wrote after the reference was taken
`,
  "device-memory.js": `\
migrate to device: [0,0], free device pages 2
the device reads 1 and 2
parent reads 1 and 2, child reads 3 and 2
moved to the device 2, faulted back 2, copies 1, free device pages 4
findings: none
`,
  "custom-strategy.js": `\
strategy        kernels              child reads  copies  reuses  unnecessary  missed
mapcount        Linux ≤ 5.7                    2       1       1            0       0
pagecount       Linux 5.14 – 5.17              2       1       1            0       0
anon-exclusive  Linux ≥ 6.5                    2       1       1            0       0
always-copy     no kernel                      2       2       0            1       0
`,
};

describe("examples/", () => {
  it("has an expected output for every program, and a program for every expected output", () => {
    expect(readdirSync(new URL("../examples/", import.meta.url)).filter((f) => f.endsWith(".js")).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [file, output] of Object.entries(EXPECTED)) {
    it(`node examples/${file}`, () => {
      const r = spawnSync(process.execPath, [`examples/${file}`], { cwd: root, encoding: "utf8" });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
      expect(r.stdout).toBe(output);
    });
  }
});
