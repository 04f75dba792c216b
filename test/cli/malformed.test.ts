// The cowsim command on input it cannot use, as a spawned process: exit 2, each problem on
// stderr as `file:line:col: error: message` (or `cowsim: error: message` without a place), and
// never a stack trace. And a reader that goes away is no error to shout about.
import { cowsim, MAIN, CVE } from "./helpers.js";
import { describe, it, expect, beforeAll } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";


/** cowsim with its stdout's reader gone before it writes a byte. */
function cowsimIntoClosedPipe(...args: string[]): Promise<{ status: number | null; signal: string | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => { stderr += b.toString(); });
    child.on("close", (status, signal) => done({ status, signal, stderr }));
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cowsim-cli-bad-"));
});
const scenario = (name: string, text: string | Uint8Array) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const head = "name: t\nreference: [{ commit: 17839856fd58 }]\n";
const steps = "steps: [{ op: mmap, as: a, pages: 1 }]\n";
const STACK = /^\s+at .*[(:]\d+/m;

/** The run of a bad file: exit 2, nothing on stdout, exactly these lines on stderr. */
function refused(file: string, ...lines: string[]) {
  for (const command of ["run", "explain"]) {
    const r = cowsim(command, file);
    expect([r.status, r.stdout], command).toEqual([2, ""]);
    expect(r.stderr, command).not.toMatch(STACK);
    expect(r.stderr.split("\n"), command).toEqual([...lines, `${lines.length} problem${lines.length > 1 ? "s" : ""}; nothing was run`, ""]);
  }
}

describe("cowsim on aliases", () => {
  it("an alias bomb: exit 2 at the alias, no stack trace", () => {
    const f = scenario("bomb.yaml", head + [
      "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]",
      "y: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "z: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "w: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "v: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "steps: [*e]",
      "",
    ].join("\n"));
    refused(f, `${f}:7:8: error: alias *d repeats too much: the aliases of this document stand for more than 10000 values in all (the limit that keeps "billion laughs" documents out); repeat less, or write the repeated part out`);
  });

  it("200 repeats of one step run", () => {
    const f = scenario("repeats.yaml", head + ["steps:", "  - &s { op: mmap, as: a, pages: 1 }", ...Array.from({ length: 200 }, () => "  - *s")].join("\n") + "\n");
    const r = cowsim("run", f);
    expect([r.status, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/all 3 runs passed\n$/);
  });

  it("an undefined alias, and an alias inside its own anchor", () => {
    const undef = scenario("undef.yaml", `${head}steps: [*nope]\n`);
    refused(undef, `${undef}:3:9: error: alias *nope names no anchor: no &nope comes before it`);
    const self = scenario("self.yaml", `${head}steps: &s [*s]\n`);
    refused(self, `${self}:3:12: error: alias *s is inside the node &s anchors: that node would contain itself`);
  });
});

describe("cowsim on kernel options", () => {
  const kernel = (name: string, block: string) => scenario(name, `${head}kernel: ${block}\n${steps}`);
  it("each out-of-range option: exit 2 at its value, before anything runs", () => {
    const cases: [string, string][] = [
      ["{ memory: 0 }", "3:19: error: kernel.memory must be at least 64K (16 pages), not 0"],
      ["{ memory: 4K }", '3:19: error: kernel.memory must be at least 64K (16 pages), not "4K"'],
      ["{ memory: 1.5K }", '3:19: error: kernel.memory must be at least 64K (16 pages), not "1.5K"'],
      ["{ memory: 1T }", '3:19: error: kernel.memory must be at most 256G, not "1T"'],
      ["{ maxProcesses: 1e8 }", "3:25: error: kernel.maxProcesses must be a whole number from 1 to 1048576, not 100000000"],
      ["{ maxMapCount: -1 }", "3:24: error: kernel.maxMapCount must be a whole number from 0 to 2147483647 (the range of vm.max_map_count), not -1"],
      ["{ memory: 16G, dataBytes: 4096 }",
        "3:19: error: kernel.memory 16G does not fit in the simulator with dataBytes 4096: the machine would need 32.3 GiB, more than the 4 GiB a wasm32 memory can address; at most 2025M fits"],
    ];
    cases.forEach(([block, line], i) => {
      const f = kernel(`kernel-${i}.yaml`, block);
      const r = cowsim("run", f);
      expect([r.status, r.stdout, r.stderr], block).toEqual([2, "", `${f}:${line}\n1 problem; nothing was run\n`]);
    });
  });

  it("numbers beyond 2^53 in pages and addresses", () => {
    const f = scenario("huge.yaml", `${head}steps:\n  - { op: mmap, as: a, pages: 100000000000000000000000 }\n  - { op: read, addr: 100000000000000000000000 }\n`);
    refused(f,
      `${f}:4:31: error: steps[0].pages: expected a number <= 2199023255551 (pages of 4K in 2^53 - 1 bytes), found 100000000000000000000000`,
      `${f}:5:23: error: steps[1].addr: expected a number <= 9007199254740991 (2^53 - 1: larger numbers are not exact), found 100000000000000000000000`);
  });
});

describe("cowsim on files that are no scenario", () => {
  it("a directory, a missing file, an empty file, bytes that are not UTF-8, nesting too deep", () => {
    const d = join(dir, "some-dir");
    mkdirSync(d);
    refused(d, `${d}:1:1: error: cannot read the file: it is a directory; name the scenario files in it`);
    refused(join(dir, "missing.yaml"), `${join(dir, "missing.yaml")}:1:1: error: cannot read the file: no such file (ENOENT)`);
    const empty = scenario("empty.yaml", "");
    refused(empty, `${empty}:1:1: error: no scenario: the file is empty`);
    const latin1 = scenario("latin1.yaml", Buffer.concat([Buffer.from(head + "description: caf"), Buffer.from([0xe9]), Buffer.from("\n" + steps)]));
    refused(latin1, `${latin1}:3:17: error: the file is not UTF-8: byte 0xe9 cannot be read as text here; save the file as UTF-8`);
    const deep = scenario("deep.yaml", `${head}steps: ${"[".repeat(20000)}${"]".repeat(20000)}\n`);
    const r = cowsim("run", deep);
    expect([r.status, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toMatch(new RegExp(`^${deep.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:\\d+: error: lists and maps nest too deeply to read here; a scenario needs a handful of levels \\(at most 64\\)\\n1 problem; nothing was run\\n$`));
    const value = scenario("value.yaml", `${head}steps: [{ op: mmap, as: a, pages: 1 }, { op: write, addr: a, value: 1e400 }]\n`);
    refused(value, `${value}:3:69: error: steps[1].value: expected a page's value (what reads return), found 1e400`);
  });

  it("check --catalog: a bad file of the catalog, and a catalog that is a file", () => {
    const cat = join(dir, "bad-catalog");
    mkdirSync(cat);
    writeFileSync(join(cat, "a.yaml"), `${head}kernel: { memory: 4K }\n${steps}`);
    const r = cowsim("check", "--catalog", cat);
    expect([r.status, r.stdout, r.stderr]).toEqual([2, "", `${join(cat, "a.yaml")}:3:19: error: kernel.memory must be at least 64K (16 pages), not "4K"\n1 problem; nothing was run\n`]);
    const notDir = cowsim("check", "--catalog", CVE);
    expect([notDir.status, notDir.stdout, notDir.stderr]).toEqual([2, "", `cowsim: error: cannot read the catalog ${CVE} (ENOTDIR)\n`]);
  });

  it("--trace into a directory; an unknown option", () => {
    const t = cowsim("run", "--trace", dir, CVE);
    expect([t.status, t.stdout, t.stderr]).toEqual([2, "", `cowsim: error: cannot write the trace to ${dir} (EISDIR)\n`]);
    const o = cowsim("run", "--frobnicate", CVE);
    expect([o.status, o.stdout, o.stderr]).toEqual([2, "", "cowsim: error: unknown option '--frobnicate'\n(cowsim --help lists the commands)\n"]);
  });
});

describe("cowsim when its output cannot be written", () => {
  it("the reader went away: exit 141 (128 + SIGPIPE) as the coreutils', and not a word", async () => {
    for (const args of [["schema"], ["run", CVE], ["explain", CVE], ["check", "--tap"], ["--help"]]) {
      const r = await cowsimIntoClosedPipe(...args);
      expect([r.status, r.signal, r.stderr], args.join(" ")).toEqual([141, null, ""]);
    }
  });

  it.runIf(existsSync("/dev/full"))("a full device: exit 2 and why", () => {
    const r = spawnSync(`${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} schema > /dev/full`, { shell: true, encoding: "utf8" });
    expect([r.status, r.stderr]).toEqual([2, "cowsim: error: cannot write the output (ENOSPC)\n"]);
  });
});
