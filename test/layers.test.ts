// The layers of DESIGN.md hold: dependency-cruiser's rules (.dependency-cruiser.cjs) pass on
// src/, and each kind of back-edge, added to a copy of src/, fails them with its rule's name.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const depcruise = join(root, "node_modules", ".bin", "depcruise");

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
  /** For no-circular: the modules of the cycle, from `to` back round to `from`. */
  readonly cycle?: readonly { readonly name: string }[];
}

function cruise(cwd: string): Violation[] {
  let out: string;
  try {
    out = execFileSync(depcruise, ["src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"], {
      cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20,
    });
  } catch (e) {
    // it exits non-zero on a violation; the report is still on stdout
    out = (e as { stdout: string }).stdout;
  }
  return (JSON.parse(out) as { summary: { violations: Violation[] } }).summary.violations;
}

describe("the layers", () => {
  it("src/ keeps every rule", () => {
    expect(cruise(root).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  });

  it("no raw Wasm export is called outside src/core", () => {
    const calls: string[] = [];
    const walk = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) {
          if (relative(root, p) !== join("src", "core")) walk(p);
        } else if (p.endsWith(".ts")) {
          readFileSync(p, "utf8").split("\n").forEach((line, i) => {
            // the raw exports object is `x` (Core.x); its calls are `.x.name(` or `x.name(`
            if (/(^|[^\w$])(\w+\.)?x\.[a-z_A-Z]\w*\(/.test(line)) calls.push(`${relative(root, p)}:${i + 1}: ${line.trim()}`);
          });
        }
      }
    };
    walk(join(root, "src"));
    expect(calls).toEqual([]);
  });
});

describe("a back-edge fails the rules", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "cowsim-layers-"));
    cpSync(join(root, "src"), join(tmp, "src"), { recursive: true });
    for (const f of [".dependency-cruiser.cjs", "tsconfig.json", "package.json"]) cpSync(join(root, f), join(tmp, f));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  // [rule, file added, its text, the edge it makes]; all added at once, cruised once
  const cases: [string, string, string, string][] = [
    ["mm-emits-never-calls-observers", "src/mm/back-edge-oracle.ts", `import { Oracle } from "../oracle/oracle.js";\nexport const o = Oracle;\n`, "src/mm/back-edge-oracle.ts → src/oracle/oracle.ts"],
    ["oracle-subscribes", "src/oracle/back-edge.ts", `import type { MmKernel } from "../mm/kernel.js";\nexport type K = MmKernel;\n`, "src/oracle/back-edge.ts → src/mm/kernel.ts"],
    ["only-core-touches-wasm", "src/users/back-edge.ts", `import { C } from "../core/abi.generated.js";\nexport const pin = C.FOLL_PIN;\n`, "src/users/back-edge.ts → src/core/abi.generated.ts"],
    ["core-is-the-bottom", "src/core/back-edge.ts", `import { Stat } from "../mm/stats.js";\nexport const s = Stat;\n`, "src/core/back-edge.ts → src/mm/stats.ts"],
    ["policy-is-pure", "src/policy/back-edge.ts", `import { C } from "../core/index.js";\nexport const c = C;\n`, "src/policy/back-edge.ts → src/core/index.ts"],
    ["above-the-facade", "src/scenario/back-edge.ts", `import { MmKernel } from "../mm/kernel.js";\nexport const k = MmKernel;\n`, "src/scenario/back-edge.ts → src/mm/kernel.ts"],
    ["entries-are-entries", "src/mm/back-edge-entry.ts", `import { createKernel } from "../index.js";\nexport const c = createKernel;\n`, "src/mm/back-edge-entry.ts → src/index.ts"],
  ];

  it("each rule names its back-edge, and a cycle of code that runs is one", () => {
    for (const [, file, text] of cases) writeFileSync(join(tmp, file), text);
    // a cycle: vma.ts (below the faults) importing the faults of memory.ts
    const vma = join(tmp, "src/mm/vma.ts");
    const before = readFileSync(vma, "utf8");
    writeFileSync(vma, `import { faultIn } from "./memory.js";\nexport const backEdge = faultIn;\n${before}`);
    try {
      const found = cruise(tmp);
      const edges = found.filter((v) => v.rule.name !== "no-circular").map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
      expect(edges.sort()).toEqual(cases.map(([rule, , , edge]) => `${rule}: ${edge}`).sort());
      const cycles = found.filter((v) => v.rule.name === "no-circular");
      expect(cycles.length).toBeGreaterThan(0);
      // each cycle runs through the back-edge, however many modules lie on its way round
      for (const c of cycles) expect([c.from, ...(c.cycle ?? []).map((m) => m.name)]).toContain("src/mm/vma.ts");
    } finally {
      for (const [, file] of cases) rmSync(join(tmp, file));
      writeFileSync(vma, before);
    }
  });

  it("naming another module's types is no cycle (only code that runs is)", () => {
    const vma = join(tmp, "src/mm/vma.ts");
    const before = readFileSync(vma, "utf8");
    writeFileSync(vma, `import type { MmKernel } from "./kernel.js";\nexport type Owner = MmKernel;\n${before}`);
    try {
      expect(cruise(tmp).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
    } finally {
      writeFileSync(vma, before);
    }
  });
});
