// Custom strategies: checked member by member when made, their answers checked as the kernel
// gets them, and — registered — named wherever a built-in one is: kernels, compareStrategies(),
// scenario files, the CLI's --strategy-module.
import { describe, it, expect, afterEach } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createKernel, defineStrategy, registerStrategy, unregisterStrategy, makeStrategy, strategies, strategyInfo,
  compareStrategies, parseScenarios, runScenario, StrategyError, CowsimError, STRATEGY_IDS,
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, type StrategyMembers,
} from "../src/index.js";
import { BUILD } from "./helpers.js";
import { MAIN } from "./cli/helpers.js";

const base = () => makeStrategy("anon-exclusive");
const alwaysCopy = (): StrategyMembers => ({
  ...base(), id: "always-copy", title: "always copy", kernels: "no kernel", commits: [],
  wpReuse: () => ({ reuse: false, rule: "always-copy: never reuse" }),
});
const problemsOf = (fn: () => unknown): readonly string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof StrategyError) return e.problems;
    throw e;
  }
  throw new Error("no StrategyError");
};

afterEach(() => {
  for (const s of strategies()) if (!(STRATEGY_IDS as readonly string[]).includes(s.id)) unregisterStrategy(s.id);
});

describe("defineStrategy()", () => {
  it("names every missing or ill-typed member at once", () => {
    const { wpReuse: _w, swapin: _s, ...rest } = base();
    const broken = { ...rest, id: "Broken Rule", lruBatchSize: 64, forkDefers: "sometimes", unmap: { shareAnon: true }, gupMustUnshare: (a: unknown, b: unknown) => Boolean(a ?? b), tracksAnonExclusive: "yes", wpReus: () => null };
    expect(problemsOf(() => defineStrategy(broken as unknown as StrategyMembers))).toEqual([
      'id: must be an id: a lowercase letter, then up to 39 lowercase letters, digits or dashes, not "Broken Rule"',
      "lruBatchSize: must be an integer from 1 to 32 (PAGEVEC_SIZE of its era: 15, or 31 from 6.x), not 64",
      'tracksAnonExclusive: must be true or false, not "yes"',
      "wpReuse: missing (a function (facts, helpers) => WpDecision)",
      'forkDefers: must be "none", "pinned" or "pinned-exclusive", not "sometimes"',
      "gupMustUnshare: must be a function (facts) => boolean, not a function of 2 parameters",
      "swapin: missing (a function (facts, helpers) => SwapinDecision)",
      'unmap: must be { shareAnon: boolean, swpExclusive: boolean }, not {"shareAnon":true}',
      "wpReus: not a member of a strategy (a typo?)",
    ]);
    expect(() => defineStrategy(null as unknown as StrategyMembers)).toThrow("a strategy is an object, not null");
    const e = (() => { try { defineStrategy({} as StrategyMembers); } catch (x) { return x as CowsimError; } })()!;
    expect([e.errno, e.name]).toEqual(["EINVAL", "StrategyError"]);
  });

  it("a kernel made with a broken strategy object fails at once, not at its first fork", () => {
    const { forkPinned: _f, ...noForkPinned } = base();
    expect(() => createKernel({ strategy: noForkPinned as StrategyMembers as never, memory: "8M" }))
      .toThrow('EINVAL: strategy "anon-exclusive" is not a strategy:\n  forkPinned: missing (a function (exclusive) => { copy, rule })');
  });

  it("checks the answers as the kernel gets them, naming the member that gave a wrong one", () => {
    const k = createKernel({ memory: "8M", build: BUILD, strategy: { ...alwaysCopy(), wpReuse: () => ({ reuse: "no", rule: 1 }) } as never });
    const p = k.spawn();
    const a = p.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write(a, 1);
    p.fork();
    expect(() => p.write(a, 2)).toThrow('strategy "always-copy":\n  wpReuse() answered {"reuse":"no","rule":1}, not a WpDecision { reuse: boolean, rule: string, moveAnon?: boolean, setExclusive?: boolean }');
  });

  it("leaves the built-in strategies as they are (no wrapping), and a defined one is defined once", () => {
    const s = base();
    expect(defineStrategy(s)).toBe(s);
    const d = defineStrategy(alwaysCopy());
    expect(defineStrategy(d)).toBe(d);
    expect(Object.isFrozen(d)).toBe(true);
  });
});

describe("registerStrategy()", () => {
  it("registers a strategy with knobs, made by id like a built-in one", () => {
    const info = registerStrategy({
      id: "maybe-copy",
      summary: "reuses only when the knob says so",
      knobs: [{ name: "reuse", commit: "000000000000", kernel: "6.12", description: "reuse exclusive pages", default: false }],
      make: (knobs) => ({ ...alwaysCopy(), id: "maybe-copy", wpReuse: (f) => ({ reuse: knobs.reuse! && f.exclusive, rule: `maybe-copy: reuse=${knobs.reuse}` }) }),
    });
    expect([info.id, info.kernels, strategyInfo("maybe-copy")]).toEqual(["maybe-copy", "no kernel", info]);
    expect(makeStrategy("maybe-copy").knobs).toEqual({ reuse: false });
    expect(makeStrategy("maybe-copy", { reuse: true }).knobs).toEqual({ reuse: true });
    expect(() => makeStrategy("maybe-copy", { reuse: 1 as unknown as boolean })).toThrow("EINVAL: knob reuse of strategy maybe-copy must be true or false, not 1");
    expect(() => makeStrategy("maybe-copy", { reus: true })).toThrow('EINVAL: strategy maybe-copy has no knob "reus" (its knobs: reuse)');
    expect(() => registerStrategy(alwaysCopy())).not.toThrow();
    expect(() => registerStrategy(alwaysCopy())).toThrow('EEXIST: a strategy "always-copy" is already registered');
    expect(() => registerStrategy({ ...base() })).toThrow('EEXIST: a strategy "anon-exclusive" is already registered (a built-in one)');
    expect(() => unregisterStrategy("mapcount")).toThrow('EPERM: strategy "mapcount" is built in and cannot be unregistered');
    expect(strategies().map((s) => s.id)).toEqual([...STRATEGY_IDS, "maybe-copy", "always-copy"]);
    expect(unregisterStrategy("always-copy")).toBe(true);
    expect(unregisterStrategy("always-copy")).toBe(false);
  });

  it("checks a definition and what its make() returns now", () => {
    expect(problemsOf(() => registerStrategy({ id: "x", summary: "", knobs: [{ name: "a b", commit: "", kernel: "6.1", description: "d", default: 1 }] as never, make: () => alwaysCopy() }))).toEqual([
      "summary: must be a non-empty string",
      'knobs[0].name: must be a camelCase name, not "a b"',
      'knobs[0].commit: must be a non-empty string, not ""',
      "knobs[0].default: must be true or false, not 1",
    ]);
    expect(() => registerStrategy({ id: "other-id", summary: "s", make: () => alwaysCopy() })).toThrow('strategy "other-id":\n  make() returned a strategy with id "always-copy"');
    expect(strategyInfo("other-id")).toBeUndefined();
  });

  it("a registered strategy runs in compareStrategies() and in scenario files", () => {
    registerStrategy(alwaysCopy());
    const r = compareStrategies((k) => {
      const p = k.spawn();
      const a = p.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      p.write(a, 1);
      p.fork().exit();
      p.write(a, 2);
      return p.read(a);
    }, { strategies: ["anon-exclusive", "always-copy"], memory: "8M" });
    expect([r["anon-exclusive"].counters.reuses, r["always-copy"].counters.copies, r["always-copy"].counters.unnecessaryCow]).toEqual([1, 1, 1]);

    const text = [
      "name: always copy", "reference: [{ url: \"https://example.org\" }]", "strategies: [always-copy, { name: ac, strategy: anon-exclusiv }]",
      "steps:", "  - { op: spawn, as: p }", "  - { op: mmap, process: p, as: m, pages: 1 }",
    ].join("\n");
    expect(() => parseScenarios("t.yaml", text)).toThrow('unknown strategy "anon-exclusiv" (did you mean anon-exclusive?); known: mapcount, pagecount, anon-exclusive, always-copy');
    const ok = parseScenarios("t.yaml", text.replace("anon-exclusiv }", "anon-exclusive }") + "\n  - { op: write, process: p, addr: m, value: 1 }\nexpect: { always-copy: { counters: { copies: 0 } } }");
    const res = runScenario(ok[0]!);
    expect(res.runs.map((x) => [x.run, x.strategy, x.pass])).toEqual([["always-copy", "always-copy", true], ["ac", "anon-exclusive", true]]);
  });
});

describe("cowsim --strategy-module", () => {
  const dir = mkdtempSync(join(tmpdir(), "cowsim-strategy-"));
  const cowsim = (...args: string[]) => {
    try {
      return { status: 0, out: execFileSync("node", [MAIN, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }), err: "" };
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string };
      return { status: x.status, out: x.stdout, err: x.stderr };
    }
  };
  const scenario = join(dir, "s.yaml");
  writeFileSync(scenario, [
    "name: never reuse", "reference: [{ url: \"https://example.org\" }]", "strategies: [never-reuse]",
    "steps:", "  - { op: mmap, as: m, pages: 1 }", "  - { op: write, addr: m, value: 1 }", "  - { op: fork, as: c }",
    "  - { op: exit, process: c }", "  - { op: write, addr: m, value: 2 }",
    "expect: { all: { counters: { copies: 1, reuses: 0, unnecessaryCow: 1 } } }",
  ].join("\n"));

  it("registers what the module exports, so scenario files and --strategy name it", () => {
    const mod = join(dir, "never-reuse.mjs");
    // a plain object: the module needs nothing of cowsim
    writeFileSync(mod, `export default {
  id: "never-reuse", summary: "every write fault to a read-only page copies", knobs: [],
  make: () => ({
    id: "never-reuse", title: "never reuse", kernels: "no kernel", commits: [], lruBatchSize: 31, tracksAnonExclusive: false,
    wpReuse: () => ({ reuse: false, rule: "never-reuse" }), forkDefers: "none", forkPinned: () => ({ copy: false, rule: "share" }),
    gupMustUnshare: () => false, swapin: (f, h) => { h.swapFree(); return { exclusive: false, writable: false, rule: "read-only" }; },
    reclaimsPinned: true, unmap: { shareAnon: false, swpExclusive: false }, gupBreaksCow: false, mprotectWriteUpgrade: false,
    directIoPins: false, clearRefsSkipsPinned: false, freeSwapCacheAfterCow: false,
  }),
};\n`);
    const r = cowsim("--strategy-module", mod, "run", scenario);
    expect([r.status, r.err]).toEqual([0, ""]);
    expect(r.out).toMatch(/never-reuse +no kernel +PASS/);
    const f = cowsim("fuzz", "--strategy-module", mod, "--strategy", "never-reuse", "--sequences", "3", "--quiet", "--json");
    expect(f.err).toBe("");
    expect(JSON.parse(f.out)).toMatchObject({ strategy: "never-reuse", sequences: 3 });
  });

  it("a module that is missing, exports nothing, or exports a broken strategy: exit 2, every problem named", () => {
    expect(cowsim("--strategy-module", join(dir, "nope.mjs"), "run", scenario)).toMatchObject({
      status: 2, err: `cowsim: error: ${join(dir, "nope.mjs")}: cannot load the strategy module: no such file (ENOENT)\n`,
    });
    const empty = join(dir, "empty.mjs");
    writeFileSync(empty, "export const x = 1;\n");
    expect(cowsim("--strategy-module", empty, "run", scenario).err).toBe(
      `cowsim: error: ${empty}: the module exports no strategy (export default a strategy, a strategy definition, or an array of them)\n`);
    const broken = join(dir, "broken.mjs");
    writeFileSync(broken, `export const strategies = [{ id: "half", title: "half a strategy", kernels: "none", commits: [] }];\n`);
    const r = cowsim("--strategy-module", broken, "run", scenario);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(new RegExp(`^cowsim: error: ${broken.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: strategy "half" cannot be registered:\n    lruBatchSize: missing`));
    expect(r.err).toContain("    freeSwapCacheAfterCow: missing (true or false)\n");
    rmSync(dir, { recursive: true, force: true });
  });
});
