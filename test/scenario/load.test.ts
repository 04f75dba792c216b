// Scenario files that cannot run: every problem reported at once, each with file, line, column,
// what was expected and what was found — before anything runs.
import { describe, it, expect } from "vitest";
import { parseScenarios, ScenarioError, formatDiagnostic, loadScenarioFile } from "../../src/node.js";

/** The diagnostics of a text, as "line:col: message". */
function problems(text: string, file = "t.yaml"): string[] {
  try {
    parseScenarios(file, text);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("the scenario loaded");
}

const head = "name: t\nreference: [{ commit: 17839856fd58 }]\n";

describe("a well-formed scenario", () => {
  it("loads with the position of the scenario and of every step; YAML streams hold several", () => {
    const text = `${head}steps:\n  - { op: mmap, as: buf, pages: 2 }\n  - op: write\n    addr: buf[1]+8\n    value: 3\n---\n${head}steps:\n  - { op: mmap, as: b, length: 8K }\n`;
    const l = parseScenarios("s.yaml", text);
    expect(l.map((x) => [x.index, x.at.line, x.stepAt.map((p) => `${p.line}:${p.col}`)])).toEqual([
      [0, 1, ["4:5", "5:5"]],
      [1, 9, ["12:5"]],
    ]);
    expect(l[0]!.scenario.steps[1]).toEqual({ op: "write", addr: "buf[1]+8", value: 3 });
  });

  it("JSON is YAML too, with positions", () => {
    const json = JSON.stringify({ name: "j", reference: [{ cve: "CVE-2020-29374" }], steps: [{ op: "mmap", as: "a", pages: 1 }, { op: "rea", addr: "a" }] }, null, 2);
    expect(problems(json, "s.json")).toEqual([expect.stringMatching(/^1[0-9]:\d+: steps\[1\]: unknown op "rea" \(did you mean "read"\?\)/)]);
  });
});

describe("malformed scenarios fail before anything runs", () => {
  it("syntax: one error at its place, with a hint for brackets inside flow maps", () => {
    expect(problems(`${head}steps:\n  - { op: write, addr: buf[2], value: 1 }\n`)).toEqual([
      '4:27: syntax error: Unexpected flow-seq-start at node end (inside { } or [ ], quote values with [ ] or , such as "buf[2]")',
    ]);
  });

  it("a duplicate key is an error, not the last one winning", () => {
    expect(problems(`${head}steps:\n  - op: mmap\n    as: a\n    as: b\n    pages: 1\n`)).toEqual([
      "6:5: duplicate key: Map keys must be unique",
    ]);
  });

  it("an empty file, and a file that cannot be read", () => {
    expect(problems("")).toEqual(["1:1: no scenario: the file is empty"]);
    expect(() => loadScenarioFile("/nonexistent/x.yaml")).toThrow(/^\/nonexistent\/x\.yaml:1:1: error: cannot read the file: no such file \(ENOENT\)$/);
  });

  it("diagnostics print as compilers print them: file:line:col: error: message", () => {
    const d = { file: "s.yaml", line: 4, col: 27, message: "syntax error: x" };
    expect(formatDiagnostic(d)).toBe("s.yaml:4:27: error: syntax error: x");
    expect(formatDiagnostic(d, (t) => `<${t}>`)).toBe("s.yaml:4:27: <error:> syntax error: x");
    expect(new ScenarioError([d, { ...d, line: 5 }]).message).toBe("s.yaml:4:27: error: syntax error: x\ns.yaml:5:27: error: syntax error: x");
  });

  it("every schema error at once, in file order, with expected and found", () => {
    const text = [
      "name: t",
      "reference: [{ commit: 1783 }]",
      "strategy: [mapcount]",
      "steps:",
      "  - { op: mmap, as: buf, pages: 1, prot: rwz }",
      "  - { op: wrtie, addr: buf, value: 1 }",
      "  - { op: write, addr: buf, value: -1 }",
      "  - { op: read, addr: buf, lenght: 3 }",
      "  - { op: mprotect, addr: buf }",
      "  - { op: pin, addr: buf, as: p, flags: [FOLL_PINN] }",
      "expect:",
      "  all: { findings: [missed], counters: { copys: 1 } }",
      "",
    ].join("\n");
    expect(problems(text)).toEqual([
      '2:23: reference[0].commit: expected a commit id: 12 to 40 lowercase hex digits, found 1783',
      '3:1: unknown key "strategy" in the scenario; expected one of name, description, reference, strategies, kernel, processes, steps, expect',
      '5:42: steps[0].prot: expected `none`, letters of `rwx` (`rw`, `r`) or a list of PROT_* names, found "rwz"',
      expect.stringMatching(/^6:7: steps\[1\]: unknown op "wrtie" \(did you mean "write"\?\); expected one of spawn, mmap, /),
      "7:36: steps[2].value: expected a number >= 0, found -1",
      '8:28: unknown key "lenght" in steps[3]; expected one of op, comment, error, process, addr, expect, as, blocked',
      '9:5: steps[4] lacks "prot"',
      '10:42: steps[5].flags[0]: expected one of "FOLL_GET", "FOLL_PIN", "FOLL_WRITE", "FOLL_LONGTERM", "FOLL_FORCE", found "FOLL_PINN" (did you mean "FOLL_PIN"?)',
      '12:21: expect.all.findings[0]: expected one of "missed-cow", "unnecessary-cow", "wrong-cow", found "missed"',
      '12:42: unknown name "copys" in expect.all.counters (did you mean "copies"?)',
    ]);
  });

  it("of alternatives, the one the file meant is explained; when none fits, what would", () => {
    const text = [
      "name: t",
      'reference: [{ commit: 1783 }, { cve: CVE-2020-29374, url: x }]',
      "steps:",
      "  - { op: mmap, as: buf, pages: 1, prot: [PROT_READ, READ] }",
      "  - { op: read, addr: buf, expect: { all: x }, error: { mapcount: ENOMEN } }",
      "  - { op: mmap, as: b2, length: 3 pagez }",
      "",
    ].join("\n");
    expect(problems(text)).toEqual([
      "2:23: reference[0].commit: expected a commit id: 12 to 40 lowercase hex digits, found 1783",
      '2:31: reference[1]: expected a reference: { commit: <12-40 hex digits>, subject }, { selftest, case }, { url, title }, { cve } or { seed, rule, quote }, found {"cve":"CVE-2020-29374","url":"x"}',
      '4:54: steps[0].prot[1]: expected one of "PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC", found "READ"',
      '5:43: steps[1].expect.all: expected a value (an integer ≥ 0) or a list of values, found "x"',
      '5:67: steps[1].error.mapcount: expected an errno name (ENOMEM, EFAULT …) or null, found "ENOMEN"',
      '6:33: steps[2].length: expected bytes: a number, a size (`8K`, `2M`) or pages (`3 pages`), found "3 pagez"',
    ]);
  });

  it("the top level: a missing field, a wrong type", () => {
    expect(problems("name: 3\nsteps: []\n")).toEqual([
      '1:1: the scenario lacks "reference"',
      "1:7: name: must be string, found 3",
      "2:8: steps: must NOT have fewer than 1 items, found []",
    ]);
  });

  it("names: processes, ranges, handles, runs and knobs, each where it is used", () => {
    const text = [
      "name: t",
      "reference: [{ url: https://example.org/x }]",
      "processes: [parent]",
      "strategies: [mapcount, { name: m58, strategy: mapcount, knobs: { gupBreaksCoW: true } }]",
      "steps:",
      "  - { op: mmap, as: buf, pages: 1 }",
      "  - { op: write, process: child, addr: buf, value: 1 }",
      '  - { op: write, addr: "bf[2]", value: 1 }',
      "  - { op: pipe_read, pipe: nopipe, expect: 3 }",
      "  - { op: mprotect, addr: buf+4K, prot: r }",
      "  - { op: pin, addr: buf, flags: [FOLL_PIN], as: p }",
      "  - { op: io_uring_unregister, buffer: p }",
      "  - { op: fork, as: parent }",
      "  - { op: read, addr: buf, expect: { mapcont: 1 } }",
      "expect:",
      "  pagecount: { findings: [] }",
      "",
    ].join("\n");
    expect(problems(text)).toEqual([
      expect.stringMatching(/^4:\d+: .*gupBreaksCoW/),
      '7:27: no process "child" yet; processes so far: parent',
      '8:24: "bf[2]" names no range; ranges so far: buf',
      '9:28: no pipe "nopipe" yet; a pipe is made by vmsplice',
      "9:44: pipe_read returns a list (one value per page), not one value",
      "10:5: mprotect needs length or pages (only a bare range name stands for its whole range)",
      '12:40: "p" is a pin, not a buffer; a buffer is made by io_uring_register',
      '13:21: process "parent" exists already',
      '14:38: "mapcont" names no run of this scenario; expected all or one of mapcount, m58',
      '16:3: "pagecount" names no run of this scenario; expected all or one of mapcount, m58',
    ]);
  });
});

describe("the migrate step", () => {
  it("checks its phases: start is named, finish names a migration begun so and nothing else", () => {
    const text = `${head}steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: migrate, addr: buf, phase: start }
  - { op: migrate, addr: buf, phase: start, as: m }
  - { op: migrate, phase: finish, migration: m, addr: buf }
  - { op: migrate, phase: finish, migration: nom }
  - { op: migrate, phase: finish }
  - { op: migrate, addr: buf, as: x }
  - { op: migrate, addr: buf, expect: [0, EPERM] }
`;
    expect(problems(text)).toEqual([
      "5:5: migrate with phase: start needs `as`, the name phase: finish will use",
      "7:5: migrate with phase: finish takes only `migration` (the range is the one its start named)",
      '8:46: no migration "nom" yet; a migration is made by migrate (phase: start)',
      "9:5: migrate with phase: finish needs `migration`: the name its phase: start step gave it",
      "10:31: only migrate with phase: start is named (`as`): the others end at once",
      '11:43: steps[7].expect[1]: expected one of 0, 1, "EFAULT", "ENOENT", "EACCES", "EBUSY", "ENOMEM", "EAGAIN", "ENOSYS", found "EPERM"',
    ]);
  });

  it("a well-formed two-phase migration loads", () => {
    const text = `${head}steps:\n  - { op: mmap, as: buf, pages: 1 }\n  - { op: migrate, addr: buf, phase: start, as: m, expect: [1] }\n  - { op: migrate, phase: finish, migration: m, expect: [EAGAIN] }\n`;
    expect(parseScenarios("t.yaml", text)[0]!.scenario.steps).toHaveLength(3);
  });
});
