// Running scenarios: expectations per run, exact failure messages, errors that are expected,
// symbolic addresses, knob runs, and findings tied back to their steps and lines.
import { describe, it, expect } from "vitest";
import { parseScenarios, runScenario, type ScenarioResult } from "../../src/index.js";
import { BUILD } from "../helpers.js";

const run = (text: string): ScenarioResult => runScenario(parseScenarios("t.yaml", text)[0]!, { build: BUILD });
const failures = (r: ScenarioResult) => Object.fromEntries(r.runs.map((x) => [x.run, x.failures.map((f) => f.message)]));
const head = "name: t\nreference: [{ commit: 17839856fd58 }]\nkernel: { memory: 4M }\n";
/** CVE-2020-29374's steps up to the pipe read (lines 5–12 after head and one more line). */
const CVE_STEPS = `processes: [parent]
steps:
  - { op: mmap, as: buf, pages: 1 }
  - { op: write, addr: buf, value: 1 }
  - { op: fork, as: child }
  - { op: vmsplice, process: child, addr: buf, as: pipe }
  - { op: munmap, process: child, addr: buf }
  - { op: write, addr: buf, value: 2 }
`;

describe("expectations", () => {
  it("pass when every value, counter and finding is the kernel's", () => {
    const r = run(`${head}processes: [parent]
steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: write, addr: "buf[1]+8", value: 7 }
  - { op: fork, as: child }
  - { op: write, process: child, addr: buf+4096, value: 8 }
  - { op: read, addr: "buf[1]", expect: 7 }
  - { op: read, process: child, addr: "buf[1]", expect: 8 }
  - { op: counters, expect: { all: { copies: 1, forks: 1 } } }
expect:
  all: { findings: [], counters: { anonFaults: 1, copies: 1, reuses: 0 }, latentMissedCows: 0 }
`);
    expect(failures(r)).toEqual({ mapcount: [], pagecount: [], "anon-exclusive": [] });
    expect(r.pass).toBe(true);
    expect(r.runs[0]!.steps.map((s) => s.text)).toEqual([
      "parent: mmap(pages: 2) → buf", "parent: write(buf[1]+8, value: 7)", "parent: fork() → child",
      "child: write(buf+4096, value: 8)", "parent: read(buf[1])", "child: read(buf[1])", "counters()",
    ]);
  });

  it("fail with the step, its line, what was expected and what came", () => {
    const r = run(`${head}steps:
  - { op: mmap, as: buf, pages: 1 }
  - { op: write, addr: buf, value: 1 }
  - { op: read, addr: buf, expect: { all: 1, pagecount: 2 } }
  - { op: munmap, addr: buf+1, length: 4096, error: { mapcount: EINVAL } }
  - { op: counters, expect: { anon-exclusive: { copies: 3 } } }
expect:
  all: { findings: [missed-cow], counters: { anonFaults: 1 } }
  mapcount: { counters: { anonFaults: 2 } }
`);
    expect(failures(r)).toEqual({
      mapcount: ["counter anonFaults: expected 2, got 1", "findings: expected [missed-cow], got []"],
      pagecount: [
        "step 3 (line 7) read: expected 2, got 1",
        "step 4 (line 8) munmap: unexpected EINVAL: munmap: address 0x7ffff7ffe001 is not page-aligned",
      ],
      "anon-exclusive": ["step 4 (line 8) munmap: unexpected EINVAL: munmap: address 0x7ffff7ffe001 is not page-aligned"],
    });
    // an unexpected error ends the run: the counters step after it never ran
    expect(r.runs[2]!.steps.map((s) => s.op)).toEqual(["mmap", "write", "read", "munmap"]);
    expect(r.runs[0]!.steps.map((s) => s.error ?? "-")).toEqual(["-", "-", "-", "EINVAL", "-"]);
  });

  it("an expected error that does not come is a failure; the run goes on", () => {
    const r = run(`${head}strategies: [anon-exclusive]
steps:
  - { op: mmap, as: buf, pages: 1, error: ENOMEM }
  - { op: read, addr: buf, expect: 0 }
`);
    expect(failures(r)).toEqual({ "anon-exclusive": ["step 1 (line 6) mmap: expected ENOMEM, but the step succeeded"] });
  });

  it("runs with knobs are named, and expectations follow their names", () => {
    const r = run(`${head}strategies: [mapcount, { name: mapcount-5.8, strategy: mapcount, knobs: { gupBreaksCow: true } }]
${CVE_STEPS}  - { op: pipe_read, pipe: pipe, reader: child, expect: { mapcount: [2], mapcount-5.8: [1] } }
expect:
  mapcount: { findings: [missed-cow] }
  mapcount-5.8: { findings: [] }
`);
    expect(failures(r)).toEqual({ mapcount: [], "mapcount-5.8": [] });
    expect(r.runs.map((x) => [x.run, x.strategy, x.knobs])).toEqual([["mapcount", "mapcount", {}], ["mapcount-5.8", "mapcount", { gupBreaksCow: true }]]);
  });

  it("a finding points at its step and line, and its chain at theirs, with the counters decisions added to", () => {
    const r = run(`${head}strategies: [mapcount]
${CVE_STEPS}  - { op: pipe_read, pipe: pipe, reader: child, expect: [2] }
`);
    const f = r.runs[0]!.findings[0]!;
    expect([f.kind, f.scenarioStep, f.line]).toEqual(["missed-cow", 6, 13]);
    expect(f.chain.map((c) => [c.line, c.fn, c.counter ?? null])).toEqual([
      [8, "do_anonymous_page", "anonFaults"], [9, "dup_mmap", "forks"], [10, "vmsplice", null], [11, "do_vmi_munmap", null],
      [12, "do_wp_page", "reuses"], [12, "store", null], [13, "pipe_read", "missedCow"],
    ]);
  });

  it("mremap moves a named range: later steps address it where it went", () => {
    const r = run(`${head}strategies: [anon-exclusive]
steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: mmap, as: guard, pages: 1, addr: buf+8K, flags: [MAP_PRIVATE, MAP_FIXED] }
  - { op: write, addr: "buf[1]", value: 5 }
  - { op: mremap, addr: buf, newPages: 4, flags: [MREMAP_MAYMOVE] }
  - { op: read, addr: "buf[1]", expect: 5 }
  - { op: write, addr: "buf[3]", value: 6 }
  - { op: read, addr: "buf[3]", expect: 6 }
`);
    expect(failures(r)).toEqual({ "anon-exclusive": [] });
    expect(r.runs[0]!.counters.copies).toBe(0);
  });

  it("a YAML stream holds several scenarios, each run on its own kernel", () => {
    const l = parseScenarios("s.yaml", `${head}strategies: [pagecount]\nsteps: [{ op: mmap, as: a, pages: 1 }, { op: write, addr: a, value: 1 }]\n---\n${head}strategies: [pagecount]\nsteps: [{ op: mmap, as: a, pages: 1 }, { op: read, addr: a, expect: 0 }]\n`);
    const rs = l.map((x) => runScenario(x, { build: BUILD }));
    expect(rs.map((x) => [x.line, x.pass, x.runs[0]!.counters.anonFaults, x.runs[0]!.counters.zeroPageFaults])).toEqual([[1, true, 1, 0], [7, true, 0, 1]]);
  });
});

describe("the result field of a userfaultfd range ioctl", () => {
  const steps = `strategies: [anon-exclusive]
steps:
  - { op: mmap, as: src, pages: 2 }
  - { op: mmap, as: dst, pages: 2 }
  - { op: userfaultfd, as: u, features: [MOVE] }
  - { op: uffdio_register, uffd: u, addr: dst, pages: 2, mode: [MISSING] }
`;
  it("`untouched`: the ioctl failed before its put_user() (validate_range()); a written -errno or byte count is not untouched", () => {
    const r = run(`${head}${steps}  - { op: uffdio_move, uffd: u, addr: "dst+1", src: src, pages: 1, error: EINVAL, result: untouched }
  - { op: uffdio_move, uffd: u, addr: dst, src: src, pages: 1, error: ENOENT, result: -2 }
  - { op: uffdio_move, uffd: u, addr: dst, src: src, pages: 1, error: ENOENT, result: untouched }
  - { op: uffdio_move, uffd: u, addr: dst, src: src, pages: 1, mode: [ALLOW_SRC_HOLES], result: untouched }
`);
    expect(failures(r)).toEqual({
      "anon-exclusive": [
        "step 7 (line 12) uffdio_move: expected the result field untouched, got -2",
        "step 8 (line 13) uffdio_move: expected the result field untouched, got 4096",
      ],
    });
  });

  it("anything else than an integer or `untouched` is refused where it stands", () => {
    expect(() => parseScenarios("t.yaml", `${head}${steps}  - { op: uffdio_move, uffd: u, addr: dst, src: src, pages: 1, result: nope }\n`))
      .toThrow(/t\.yaml:10:.*steps\[4\]\.result: expected what the ioctl leaves in its result field .* or `untouched`.*found "nope"/s);
  });
});
