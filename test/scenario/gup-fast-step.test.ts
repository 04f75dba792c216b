// The stepwise GUP-fast of scenarios (gup_fast_begin / gup_fast_end): its names checked before
// anything runs, its outcomes per interleaving, and a begun GUP-fast accounted while it holds a
// page; and the seed-rule references.
import { describe, it, expect } from "vitest";
import { parseScenarios, runScenario, ScenarioError, type ScenarioResult } from "../../src/index.js";
import { BUILD } from "../helpers.js";

const head = "name: t\nreference: [{ commit: 088b8aa537c2 }]\nkernel: { memory: 4M }\n";
const AE = "strategies: [anon-exclusive, { name: ae-6.0, strategy: anon-exclusive, knobs: { gupFastBarriers: false, roLongtermPinAnyCow: false, mprotectWriteUpgrade: false, directIoPins: false } }]\n";

function problems(text: string): string[] {
  try {
    parseScenarios("t.yaml", text);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
  }
  throw new Error("the scenario loaded");
}
const run = (text: string): ScenarioResult => runScenario(parseScenarios("t.yaml", text)[0]!, { build: BUILD });
const failures = (r: ScenarioResult) => Object.fromEntries(r.runs.map((x) => [x.run, x.failures.map((f) => f.message)]));

describe("gup_fast_begin and gup_fast_end are checked before anything runs", () => {
  it("an unknown GUP-fast, ending one twice, and using one as a pin before it ended", () => {
    const text = `${head}steps:
  - { op: mmap, as: buf, pages: 1 }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN], as: g }
  - { op: gup_fast_end, gup: nog }
  - { op: pin_read, pin: g }
  - { op: gup_fast_end, gup: g }
  - { op: gup_fast_end, gup: g }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN] }
  - { op: gup_fast_end, gup: g, reason: LOST }
`;
    expect(problems(text)).toEqual([
      '7:30: no gup "nog" yet; a gup is made by gup_fast_begin',
      '8:26: "g" is a gup, not a pin; a pin is made by pin',
      '10:30: "g" is a pin, not a gup; a gup is made by gup_fast_begin',
      '11:5: steps[6] lacks "as"',
      '12:30: "g" is a pin, not a gup; a gup is made by gup_fast_begin',
      expect.stringMatching(/^12:41: steps\[7\]\.reason: expected why GUP-fast backed off .*found "LOST"$/),
    ]);
  });

  it("refuses a seed reference without its quote, or with a rule the seed cannot have", () => {
    const steps = "steps: [{ op: mmap, as: buf, pages: 1 }]\n";
    expect(problems(`name: t\nreference: [{ seed: "000", rule: "I.6b" }]\n${steps}`)).toHaveLength(1);
    expect(problems(`name: t\nreference: [{ seed: "000", rule: "6b", quote: "simply forward PG_anon_exclusive to all sub-pages" }]\n${steps}`)).toHaveLength(1);
    expect(() => parseScenarios("t.yaml", `name: t\nreference: [{ seed: "000", rule: "I.6b", quote: "simply forward PG_anon_exclusive to all sub-pages" }]\n${steps}`)).not.toThrow();
  });
});

describe("GUP-fast between its halves", () => {
  it("B4 backs off when the PTE changed (mprotect() between the halves); without the barriers the re-check already passed; the grab is undone", () => {
    const r = run(`${head}${AE}steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: write, addr: buf, value: 1 }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN, FOLL_WRITE], as: g, expect: 1, reason: OK }
  - { op: check_invariants }
  - { op: mprotect, addr: buf, pages: 1, prot: r }
  - { op: gup_fast_end, gup: g, expect: { anon-exclusive: 0, ae-6.0: 1 }, reason: { anon-exclusive: PTE_CHANGED, ae-6.0: OK } }
  - { op: check_invariants }
expect:
  all: { findings: [], invariants: true }
`);
    expect(failures(r)).toEqual({ "anon-exclusive": [], "ae-6.0": [] });
  });

  it("backs off at once from a hole (B1) and from a R/O PTE for FOLL_WRITE (B2): nothing to end but the name", () => {
    const r = run(`${head}steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN], as: g, expect: 0, reason: NO_TABLE }
  - { op: write, addr: "buf[1]", value: 1 }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN], as: h, expect: 0, reason: NOT_PRESENT }
  - { op: mprotect, addr: "buf[1]", pages: 1, prot: r }
  - { op: gup_fast_begin, addr: "buf[1]", flags: [FOLL_GET, FOLL_WRITE], as: w, expect: 0, reason: NOT_PERMITTED }
  - { op: gup_fast_end, gup: w, expect: 0, reason: NOT_PERMITTED }
  - { op: pin_read, pin: w }
expect:
  all: { findings: [] }
`);
    const msgs = failures(r);
    for (const run of ["mapcount", "pagecount", "anon-exclusive"]) {
      expect(msgs[run]).toEqual(['step 8 (line 12) pin_read: unexpected EINVAL: pin "w" holds nothing: its GUP-fast backed off']);
    }
  });

  it("a fork between the halves: a FOLL_PIN retries (write_protect_seq), a FOLL_GET finds its PTE write-protected (B4)", () => {
    const r = run(`${head}strategies: [anon-exclusive]
steps:
  - { op: mmap, as: buf, pages: 2 }
  - { op: write, addr: buf, value: 1 }
  - { op: write, addr: "buf[1]", value: 2 }
  - { op: gup_fast_begin, addr: buf, flags: [FOLL_PIN], as: p, expect: 1 }
  - { op: gup_fast_begin, addr: "buf[1]", flags: [FOLL_GET], as: g, expect: 1 }
  - { op: fork, as: child }
  - { op: gup_fast_end, gup: p, expect: 0, reason: SEQ_RETRY }
  - { op: gup_fast_end, gup: g, expect: 0, reason: PTE_CHANGED }
expect:
  all: { findings: [], counters: { forkCopies: 1 } }
`);
    expect(failures(r)).toEqual({ "anon-exclusive": [] });
  });

  it("ending twice through the API is EINVAL; ending after the process exited is ESRCH, the grab given back", async () => {
    const { createKernel, FOLL_PIN, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } = await import("../../src/index.js");
    const k = createKernel({ build: BUILD, memory: 4 << 20 });
    const p = k.spawn();
    const a = p.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write(a, 1);
    const g = p.gupFastBegin(a, FOLL_PIN);
    expect(g.reason).toBe("OK");
    const pin = g.end()!;
    expect(pin.pfns).toHaveLength(1);
    expect(g.ended).toBe(true);
    expect(() => g.end()).toThrow(/EINVAL.*already ended/);
    pin.release();
    k.assertInvariants("end");
    const q = k.spawn();
    const b = q.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    q.write(b, 2);
    const h = q.gupFastBegin(b, FOLL_PIN);
    q.exit();
    expect(() => h.end()).toThrow(/ESRCH.*exited before it ended/);
    k.assertInvariants("after exit");
  });
});
