// Scenario matrices (src/scenario/matrix.ts): a description of cases × setups × sizes expands
// into ordinary scenarios with the rules' outcomes; its problems are reported at its lines.
import { describe, it, expect } from "vitest";
import { parseScenarios, ScenarioError, runScenario } from "../../src/node.js";
import { cellName } from "../../src/scenario/matrix.js";
import { BUILD } from "../helpers.js";

/** A small matrix: two setups (one at 2M only), two cases, sizes 2M and 16K. */
const DESCRIPTION = `matrix: tiny
name: "{case} on {setup} ({size})"
reference: [{ selftest: tools/testing/selftests/mm/cow.c }]
kernel: { memory: 8M, thp: { sizes: { "{size}": always } } }
sizes: [2M, 16K]
checkSizes: [16K]
setups:
  pmd:
    name: PMD-mapped THP
    sizes: [2M]
    facts: { pmd: true }
    steps:
      - { op: mmap, as: mem, addr: "0x7f0000000000", length: "{bytes}", flags: [MAP_PRIVATE, MAP_FIXED] }
      - { op: madvise, addr: mem, advice: MADV_HUGEPAGE }
      - { op: write, addr: mem, value: 1 }
  single-pte:
    name: single PTE
    tested: 1
    steps:
      - { op: mmap, as: mem, addr: "0x7f0000000000", length: "{bytes}", flags: [MAP_PRIVATE, MAP_FIXED] }
      - { op: madvise, addr: mem, advice: MADV_HUGEPAGE }
      - { op: write, addr: mem, value: 1 }
      - { op: madvise, addr: "mem[1]", pages: "{last}", advice: MADV_DONTNEED }
cases:
  basic:
    name: basic COW
    steps:
      - { op: fork, as: child }
      - { op: write, addr: mem, value: 255 }
      - { op: read, process: child, addr: mem, expect: 1 }
    expect:
      - { findings: [] }
  vmsplice:
    name: vmsplice in child
    steps:
      - { op: fork, as: child }
      - { op: vmsplice, process: child, addr: mem, pages: "{tested}", as: pipe }
      - { op: munmap, process: child, addr: mem, pages: "{tested}" }
      - { op: write, addr: mem, value: 255 }
      - { op: pipe_read, pipe: pipe, reader: child }
    expect:
      - { strategies: [mapcount], findings: [missed-cow] }
      - { strategies: [pagecount], facts: { pmd: true }, findings: [missed-cow] }
      - { strategies: [anon-exclusive], setups: [single-pte], findings: [missed-cow], model: { findings: [], why: "a test of the marking" } }
      - { findings: [] }
`;

function problems(text: string): string[] {
  try {
    parseScenarios("m.yaml", text);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("no problem reported");
}

describe("a matrix description", () => {
  it("expands to every case × setup × size the setup runs at, in order, named <matrix>[<case>/<setup>/<size>]", () => {
    const l = parseScenarios("m.yaml", DESCRIPTION);
    expect(l.map((x) => cellName(x.cell!))).toEqual([
      "tiny[basic/pmd/2M]", "tiny[basic/single-pte/2M]", "tiny[basic/single-pte/16K]",
      "tiny[vmsplice/pmd/2M]", "tiny[vmsplice/single-pte/2M]", "tiny[vmsplice/single-pte/16K]",
    ]);
    expect(l.map((x) => x.scenario.name)[5]).toBe("vmsplice in child on single PTE (16K)");
  });

  it("fills the templates: numbers stay numbers, keys are filled too; each step stands at its template's line", () => {
    const l = parseScenarios("m.yaml", DESCRIPTION);
    const x = l.find((s) => cellName(s.cell!) === "tiny[vmsplice/single-pte/16K]")!;
    expect(x.scenario.kernel).toEqual({ memory: "8M", thp: { sizes: { "16K": always() } } });
    expect(x.scenario.steps[0]).toMatchObject({ op: "mmap", length: 16384 });
    expect(x.scenario.steps[3]).toMatchObject({ op: "madvise", addr: "mem[1]", pages: 3 });
    expect(x.scenario.steps[5]).toMatchObject({ op: "vmsplice", pages: 1 });
    expect(x.stepAt.map((p) => p.line)).toEqual([20, 21, 22, 23, 36, 37, 38, 39, 40]);
    expect(l.find((s) => cellName(s.cell!) === "tiny[vmsplice/pmd/2M]")!.scenario.steps[5]).toMatchObject({ pages: 512 });
  });

  it("gives each run the first rule that holds; a `model` rule expects the model's findings and is marked", () => {
    const l = parseScenarios("m.yaml", DESCRIPTION);
    const at = (n: string) => l.find((s) => cellName(s.cell!) === n)!;
    expect(at("tiny[vmsplice/pmd/2M]").scenario.expect).toEqual({
      mapcount: { findings: ["missed-cow"], invariants: true },
      pagecount: { findings: ["missed-cow"], invariants: true },
      "anon-exclusive": { findings: [], invariants: true },
    });
    expect(at("tiny[vmsplice/single-pte/16K]").scenario.expect!["pagecount"]).toEqual({ findings: [], invariants: true });
    expect(at("tiny[vmsplice/single-pte/16K]").cell!.known).toEqual({ "anon-exclusive": "a test of the marking (the kernel: missed-cow)" });
    expect(at("tiny[vmsplice/pmd/2M]").cell!.known).toEqual({});
  });

  it("the expanded scenarios run as the rules say", () => {
    for (const x of parseScenarios("m.yaml", DESCRIPTION)) {
      const r = runScenario(x, { build: BUILD });
      expect(Object.fromEntries(r.runs.map((y) => [y.run, y.failures.map((f) => f.message)])), cellName(x.cell!))
        .toEqual({ mapcount: [], pagecount: [], "anon-exclusive": [] });
    }
  });

  it("sizes: only those asked for, or the description's checkSizes", () => {
    expect(parseScenarios("m.yaml", DESCRIPTION, { sizes: "check" }).map((x) => cellName(x.cell!))).toEqual(["tiny[basic/single-pte/16K]", "tiny[vmsplice/single-pte/16K]"]);
    expect(parseScenarios("m.yaml", DESCRIPTION, { sizes: ["2M"] })).toHaveLength(4);
  });
});

describe("a matrix description's problems, at its lines", () => {
  it("the matrix schema: a missing key, an unknown key", () => {
    expect(problems(DESCRIPTION.replace("sizes: [2M, 16K]\n", "sizez: [2M, 16K]\n"))).toEqual([
      "m.yaml:1:1: the scenario lacks \"sizes\"",
      expect.stringMatching(/^m\.yaml:5:1: unknown key "sizez" in the scenario \(did you mean "sizes"\?\)/),
    ]);
  });

  it("an unknown template variable, once, at the template", () => {
    expect(problems(DESCRIPTION.replace('pages: "{last}"', 'pages: "{lats}"'))).toEqual([
      "m.yaml:23:47: unknown template variable {lats}; the variables are {size}, {bytes}, {halfbytes}, {pages}, {half}, {last}, {case}, {setup}, {tested}",
      "m.yaml:23:47: setups.single-pte.steps[3].pages: must be integer, found \"{lats}\" (in tiny[basic/single-pte/2M])",
    ]);
  });

  it("a step the scenario schema refuses, at the case's template step, once for all its cells", () => {
    expect(problems(DESCRIPTION.replace("{ op: write, addr: mem, value: 255 }\n      - { op: read", "{ op: wrte, addr: mem, value: 255 }\n      - { op: read"))).toEqual([
      expect.stringMatching(/^m\.yaml:29:11: cases\.basic\.steps\[1\]: unknown op "wrte" \(did you mean "write"\?\).* \(in tiny\[basic\/pmd\/2M\]\)$/),
    ]);
  });

  it("a name a step uses before any step defines it", () => {
    expect(problems(DESCRIPTION.replace("{ op: pipe_read, pipe: pipe,", "{ op: pipe_read, pipe: pip,"))).toEqual([
      "m.yaml:40:32: no pipe \"pip\" yet; a pipe is made by vmsplice (in tiny[vmsplice/pmd/2M])",
    ]);
  });

  it("a run no rule covers; a rule naming a setup or size the matrix lacks", () => {
    expect(problems(DESCRIPTION.replace("      - { findings: [] }\n  vmsplice:", "      - { strategies: [mapcount], findings: [] }\n  vmsplice:"))).toEqual([
      "m.yaml:32:7: no rule gives run \"pagecount\" of setup \"pmd\" at 2M an outcome; end the rules with one without conditions",
      "m.yaml:32:7: no rule gives run \"anon-exclusive\" of setup \"pmd\" at 2M an outcome; end the rules with one without conditions",
      "m.yaml:32:7: no rule gives run \"pagecount\" of setup \"single-pte\" at 2M an outcome; end the rules with one without conditions",
      "m.yaml:32:7: no rule gives run \"anon-exclusive\" of setup \"single-pte\" at 2M an outcome; end the rules with one without conditions",
      "m.yaml:32:7: no rule gives run \"pagecount\" of setup \"single-pte\" at 16K an outcome; end the rules with one without conditions",
      "m.yaml:32:7: no rule gives run \"anon-exclusive\" of setup \"single-pte\" at 16K an outcome; end the rules with one without conditions",
    ]);
    expect(problems(DESCRIPTION.replace("setups: [single-pte], findings", "setups: [single], findings").replace("checkSizes: [16K]", "checkSizes: [8K]"))).toEqual([
      "m.yaml:6:14: size \"8K\" is not one of the matrix's sizes (2M, 16K)",
      "m.yaml:44:50: no setup \"single\"; the setups are pmd, single-pte",
    ]);
  });
});

function always(): string {
  return "always";
}
