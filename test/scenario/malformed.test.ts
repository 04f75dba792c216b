// Input that used to crash the loader or slip past it: aliases, nesting, numbers beyond 2^53,
// bytes that are not UTF-8, YAML 1.1 types, paths that are no scenario file. Each is refused
// before anything runs, with its place and a message that says what to do.
import { describe, it, expect, beforeAll } from "vitest";
import { mkdtempSync, writeFileSync, mkdirSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseScenarios, ScenarioError, loadScenarioFile } from "../../src/node.js";
import { MAX_ALIAS_VALUES, MAX_DEPTH } from "../../src/scenario/load.js";

/** The diagnostics of a text, as "line:col: message". */
function problems(text: string): string[] {
  try {
    parseScenarios("t.yaml", text);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("the scenario loaded");
}
/** The diagnostics of a file, as "line:col: message". */
function fileProblems(file: string): string[] {
  try {
    loadScenarioFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("the scenario loaded");
}

const head = "name: t\nreference: [{ commit: 17839856fd58 }]\n";

describe("aliases", () => {
  it("are refused past the stated limit, at the alias that crosses it (an alias bomb)", () => {
    expect(MAX_ALIAS_VALUES).toBe(10_000);
    const bomb = [
      "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]",
      "y: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "z: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "w: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "v: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "steps: [*e]",
      "",
    ].join("\n");
    // a (10 values) is repeated 9 times (90), b 9 times (819 more), c 9 times (7380 more):
    // 8289; the first *d adds 7381
    expect(problems(head + bomb)).toEqual([
      '7:8: alias *d repeats too much: the aliases of this document stand for more than 10000 values in all (the limit that keeps "billion laughs" documents out); repeat less, or write the repeated part out',
    ]);
  });

  it("work up to the limit: 200 repeats of one step, merge keys", () => {
    const steps = ["steps:", "  - &s { op: mmap, as: a, pages: 1 }", ...Array.from({ length: 200 }, () => "  - *s")].join("\n") + "\n";
    const [l] = parseScenarios("t.yaml", head + steps);
    expect(l!.scenario.steps.length).toBe(201);
    expect(l!.scenario.steps[200]).toEqual({ op: "mmap", as: "a", pages: 1 });
    expect(l!.stepAt[200]).toEqual({ line: 204, col: 5 });
    const merged = parseScenarios("t.yaml", `${head}steps:\n  - { op: mmap, as: a, pages: 1 }\n  - &w { op: write, addr: a, value: 1 }\n  - { <<: *w, value: 2 }\n`);
    expect(merged[0]!.scenario.steps[2]).toEqual({ op: "write", addr: "a", value: 2 });
  });

  it("at the limit loads; one value more does not", () => {
    // a step of 7 values (the map, 3 keys, 3 values) repeated n times stands for 7n values
    const doc = (n: number) => ["steps:", "  - &s { op: mmap, as: a, pages: 1 }", ...Array.from({ length: n }, () => "  - *s")].join("\n") + "\n";
    expect(parseScenarios("t.yaml", head + doc(Math.floor(MAX_ALIAS_VALUES / 7)))[0]!.scenario.steps.length).toBe(1429);
    const over = Math.floor(MAX_ALIAS_VALUES / 7) + 1;
    expect(problems(head + doc(over))).toEqual([
      expect.stringMatching(new RegExp(`^${over + 4}:5: alias \\*s repeats too much: `)),
    ]);
  });

  it("that name no anchor, or an anchor that comes later", () => {
    expect(problems(`${head}steps: [*nope]\n`)).toEqual(["3:9: alias *nope names no anchor: no &nope comes before it"]);
    expect(problems(`${head}steps: [*s, &s { op: mmap, as: a, pages: 1 }]\n`)).toEqual([
      "3:9: alias *s comes before its anchor &s: an anchor must come first",
    ]);
  });

  it("inside the node they repeat (a value that would contain itself)", () => {
    expect(problems(`${head}steps: &s [*s]\n`)).toEqual(["3:12: alias *s is inside the node &s anchors: that node would contain itself"]);
    expect(problems(`${head}steps:\n  - &m { op: mmap, as: a, pages: 1, comment: *m }\n`)).toEqual([
      "4:46: alias *m is inside the node &m anchors: that node would contain itself",
    ]);
  });

  it("as keys: a key is a name", () => {
    expect(problems(`${head}x: &k [1]\n? *k\n: 1\nsteps: [{ op: mmap, as: a, pages: 1 }]\n`)).toEqual([
      "4:3: a key must be a name or a number, not a list, a map or an alias",
    ]);
    expect(problems(`${head}? [a, b]\n: 1\nsteps: [{ op: mmap, as: a, pages: 1 }]\n`)).toEqual([
      "3:3: a key must be a name or a number, not a list, a map or an alias",
    ]);
  });
});

describe("nesting", () => {
  it("deeper than the limit, at the first value too deep", () => {
    expect(MAX_DEPTH).toBe(64);
    // the top-level map is level 1, steps' list (column 8) level 2: the list at column 71 is level 65
    const text = `${head}steps: ${"[".repeat(70)}${"]".repeat(70)}\n`;
    expect(problems(text)).toEqual([`3:${7 + 64}: lists and maps nest more than 64 levels deep here; a scenario needs a handful`]);
  });

  it("so deep the parser gives up: the same words, no stack overflow", () => {
    const text = `${head}steps: ${"[".repeat(20000)}${"]".repeat(20000)}\n`;
    expect(problems(text)).toEqual([expect.stringMatching(/^3:\d+: lists and maps nest too deeply to read here; a scenario needs a handful of levels \(at most 64\)$/)]);
    const block = `${head}steps:\n${Array.from({ length: 3000 }, (_, i) => `${"  ".repeat(i + 1)}- `).join("\n")}\n`;
    expect(problems(block)).toEqual([expect.stringMatching(/^\d+:\d+: lists and maps nest too deeply to read here/)]);
  });
});

describe("numbers", () => {
  it("beyond 2^53 in pages, addresses, lengths and values are refused as written", () => {
    const text = [
      "steps:",
      "  - { op: mmap, as: a, pages: 100000000000000000000000 }",
      "  - { op: read, addr: 100000000000000000000000 }",
      "  - { op: munmap, addr: a, length: 9007199254740993 }",
      "  - { op: write, addr: a, value: 123456789012345678901234567890 }",
      "  - { op: write, addr: a, value: 1e400 }",
      '  - { op: read, addr: "a+99999999999999999999K" }',
      '  - { op: read, addr: "a[99999999999999999999]" }',
      '  - { op: read, addr: "0xffffffffffffffffff" }',
      "",
    ].join("\n");
    expect(problems(head + text)).toEqual([
      "4:31: steps[0].pages: expected a number <= 2199023255551 (pages of 4K in 2^53 - 1 bytes), found 100000000000000000000000",
      "5:23: steps[1].addr: expected a number <= 9007199254740991 (2^53 - 1: larger numbers are not exact), found 100000000000000000000000",
      "6:36: steps[2].length: expected a number <= 9007199254740991 (2^53 - 1: larger numbers are not exact), found 9007199254740993",
      "7:34: steps[3].value: expected a number <= 9007199254740991 (2^53 - 1: larger numbers are not exact), found 123456789012345678901234567890",
      "8:34: steps[4].value: expected a page's value (what reads return), found 1e400",
      '9:23: "a+99999999999999999999K": the offset 99999999999999999999K lies beyond 2^53 - 1 bytes, the largest address cowsim holds exactly',
      '10:23: "a[99999999999999999999]": page 99999999999999999999 lies beyond 2^53 - 1 bytes, the largest address cowsim holds exactly',
      '11:23: "0xffffffffffffffffff": the address lies beyond 2^53 - 1 bytes, the largest address cowsim holds exactly',
    ]);
  });

  it("a long value found is shown cut, not whole", () => {
    const [p] = problems(`${head}description: [${Array.from({ length: 100 }, (_, i) => i).join(", ")}]\nsteps: [{ op: mmap, as: a, pages: 1 }]\n`);
    expect(p).toMatch(/^3:14: description: must be string, found \[0,1,2,.{60,}…$/);
    expect(p!.length).toBeLessThan(120);
  });
});

describe("pages past the end of a range", () => {
  it("are refused where the file says the range's length (mmap, mremap)", () => {
    const text = [
      "steps:",
      "  - { op: mmap, as: buf, pages: 2 }",
      '  - { op: read, addr: "buf[1]" }',
      '  - { op: read, addr: "buf[2]" }',
      "  - { op: mremap, addr: buf, newLength: 12K, flags: [MREMAP_MAYMOVE] }",
      '  - { op: write, addr: "buf[2]+8", value: 1 }',
      '  - { op: pin, addr: "buf[3]", flags: [FOLL_PIN], as: p }',
      "  - { op: mmap, as: one, length: 100 }",
      '  - { op: read, addr: "one[1]" }',
      "",
    ].join("\n");
    expect(problems(head + text)).toEqual([
      '6:23: "buf[2]": "buf" has 2 pages here (buf[0] to buf[1]), not 3',
      '9:22: "buf[3]": "buf" has 3 pages here (buf[0] to buf[2]), not 4',
      '11:23: "one[1]": "one" has 1 page here (one[0]), not 2',
    ]);
  });

  it("are the run's business where a step that makes the range may fail", () => {
    const text = `steps:\n  - { op: mmap, as: buf, pages: 1, error: { all: null, mapcount: ENOMEM } }\n  - { op: read, addr: "buf[1]" }\n`;
    expect(parseScenarios("t.yaml", head + text).length).toBe(1);
  });
});

describe("types YAML has and scenarios do not", () => {
  it("YAML 1.1's timestamps, binary and sets, and unknown tags", () => {
    const text = "%YAML 1.1\n---\nname: t\nreference: [{ commit: 17839856fd58 }]\ndescription: 2001-12-14\ncomment: !!binary aGVsbG8=\nprocesses: !!set { a }\nsteps: [{ op: mmap, as: a, pages: 1 }]\n";
    expect(problems(text)).toEqual([
      '5:14: this value has no meaning in a scenario: use a string, a number, true, false or null (quote dates: "2001-12-14")',
      "6:19: a !!binary value has no meaning in a scenario: use a string, a number, true, false or null",
      "7:18: a !!set has no meaning in a scenario: use a plain list or map",
    ]);
    expect(problems(`${head}description: !foo x\nsteps: [{ op: mmap, as: a, pages: 1 }]\n`)).toEqual(["3:14: syntax error: Unresolved tag: !foo"]);
  });

  it("a __proto__ key is an unknown key like any other", () => {
    expect(problems(`${head}steps: [{ op: mmap, as: a, pages: 1, __proto__: { x: 1 } }]\n`)).toEqual([
      expect.stringMatching(/^3:38: unknown key "__proto__" in steps\[0\]/),
    ]);
  });
});

describe("files that are no scenario", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cowsim-malformed-"));
  });
  const file = (name: string, bytes: string | Uint8Array) => {
    const f = join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };

  it("a directory", () => {
    const d = join(dir, "a-dir.yaml");
    mkdirSync(d);
    expect(fileProblems(d)).toEqual(["1:1: cannot read the file: it is a directory; name the scenario files in it"]);
  });

  it("a file that does not exist, or under a path that is not a directory", () => {
    expect(fileProblems(join(dir, "missing.yaml"))).toEqual(["1:1: cannot read the file: no such file (ENOENT)"]);
    const f = file("plain.yaml", head);
    expect(fileProblems(join(f, "x.yaml"))).toEqual(["1:1: cannot read the file: a part of the path is not a directory (ENOTDIR)"]);
  });

  it("bytes that are not UTF-8, at the first of them", () => {
    const bytes = Buffer.concat([Buffer.from(head + "description: caf"), Buffer.from([0xe9]), Buffer.from("\nsteps: []\n")]);
    expect(fileProblems(file("latin1.yaml", bytes))).toEqual(["3:17: the file is not UTF-8: byte 0xe9 cannot be read as text here; save the file as UTF-8"]);
    // an overlong encoding of "/" and a lone surrogate are not UTF-8 either
    expect(fileProblems(file("overlong.yaml", Buffer.from([0x61, 0xc0, 0xaf])))).toEqual(["1:2: the file is not UTF-8: byte 0xc0 cannot be read as text here; save the file as UTF-8"]);
    expect(fileProblems(file("surrogate.yaml", Buffer.from([0xc3, 0xa9, 0xed, 0xa0, 0x80])))).toEqual(["1:2: the file is not UTF-8: byte 0xed cannot be read as text here; save the file as UTF-8"]);
    expect(fileProblems(file("utf16.yaml", Buffer.from("\ufeffname: t\n", "utf16le")))).toEqual(["1:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"]);
  });

  it("UTF-8 with a byte-order mark and in every plane loads", () => {
    const f = file("bom.yaml", "\ufeff" + head.replace("name: t", "name: 'é ✓ 𝄞'") + "steps: [{ op: mmap, as: a, pages: 1 }]\n");
    expect(loadScenarioFile(f)[0]!.scenario.name).toBe("é ✓ 𝄞");
  });

  it("empty, or only comments; an empty document after the last --- is no scenario and no error", () => {
    expect(fileProblems(file("empty.yaml", ""))).toEqual(["1:1: no scenario: the file is empty"]);
    expect(fileProblems(file("comments.yaml", "# nothing yet\n---\n# still nothing\n"))).toEqual(["1:1: no scenario: the file is empty"]);
    expect(loadScenarioFile(file("trailing.yaml", `${head}steps: [{ op: mmap, as: a, pages: 1 }]\n---\n`)).length).toBe(1);
  });

  it("a document that is not a map", () => {
    expect(problems("- a\n")).toEqual(['1:1: a scenario is a map with name, reference and steps (see cowsim schema), not ["a"]']);
    expect(problems(`${head}steps: [{ op: mmap, as: a, pages: 1 }]\n--- 42\n`)).toEqual(["4:5: a scenario is a map with name, reference and steps (see cowsim schema), not 42"]);
    expect(problems("~\n")).toEqual(["1:1: a scenario is a map with name, reference and steps (see cowsim schema), not null"]);
  });

  it("too large to be a scenario, refused before it is read", () => {
    const f = join(dir, "huge.yaml");
    writeFileSync(f, "");
    truncateSync(f, 65 * 2 ** 20); // sparse: nothing is written
    expect(fileProblems(f)).toEqual(["1:1: the file is too large for a scenario: 65 MiB, at most 64 MiB"]);
  });
});
