import { describe, expect, it } from "vitest";
import { ExploreError, parseLitmus } from "../../src/explore/index.js";

const wrap = (body: string, cond = "exists (0:r0=1)") => `C T\n\n{}\n\nP0(int *x, int *y)\n{\n\tint r0;\n${body}\n}\n\n${cond}\n`;

function error(text: string): ExploreError {
  try {
    parseLitmus(text, "t.litmus");
  } catch (e) {
    if (e instanceof ExploreError) return e;
    throw e;
  }
  throw new Error("parsed");
}

describe("parseLitmus", () => {
  it("reads threads, registers, initial values, step labels and the condition", () => {
    const p = parseLitmus("C X+y\n(* Result: Never *)\n{\nx=2; 0:r0=5;\n}\nP0(int *x, atomic_t *y)\n{\n\tint r0 = READ_ONCE(*x); // (B1) read\n\tatomic_inc(y);\n}\nlocations [y;]\nexists (0:r0=2 /\\ ~y=0)\n", "f");
    expect(p.name).toBe("X+y");
    expect(p.expected).toBe("Never");
    expect([...p.init]).toEqual([["x", 2], ["y", 0]]);
    expect(p.regInit.get("0:r0")).toBe(5);
    expect(p.threads[0]!.labels.get(8)).toBe("B1");
    expect(p.condition).toMatchObject({ quant: "exists", text: "(0:r0=2 /\\ ~y=0)" });
    expect(p.locations).toEqual([{ tid: null, name: "y", val: 0 }]);
  });

  it("reads READ_ONCE(*x) as code and (* … *) as a comment", () => {
    const p = parseLitmus(wrap("\tr0 = READ_ONCE(*x); (* a comment *)"), "f");
    expect(p.threads[0]!.body).toHaveLength(1);
  });

  it.each([
    ["\tspin_lock(x);", 8, "unsupported construct: spin_lock()"],
    ["\trcu_read_lock();", 8, "unsupported construct: rcu_read_lock()"],
    ["\t*x = 1;", 8, "unsupported construct: a plain C access (use READ_ONCE/WRITE_ONCE)"],
    ["\twhile (r0) r0 = 0;", 8, "unsupported construct: a 'while' loop (the search is over loop-free threads; unroll it)"],
    ["\tint *r1;", 8, "unsupported construct: a pointer register"],
    ["\tr0 = READ_ONCE(*x);\n\tr0 = frobnicate(x);", 9, "unsupported construct: frobnicate() is not a primitive the explorer knows"],
  ])("names the unsupported construct at its line: %s", (body, line, message) => {
    const e = error(wrap(body));
    expect(e.unsupported).toBe(true);
    expect(e.format()).toBe(`t.litmus:${line}: error: ${message}`);
  });

  it.each([
    [wrap("\tr0 = READ_ONCE(*x)"), "t.litmus:9: error: expected ';', found '}'"],
    [wrap("\tr1 = READ_ONCE(*x);"), "t.litmus:8: error: 'r1' is not a declared register"],
    [wrap("\tr0 = READ_ONCE(*z);"), "t.litmus:8: error: 'z' is not a parameter of this thread"],
    [wrap("\tr0 = 1;", ""), "t.litmus:12: error: missing final condition (exists, ~exists or forall)"],
    [wrap("\tr0 = 1;", "exists (1:r0=1)"), "t.litmus:12: error: the condition names thread 1, which the test does not have"],
    ["X86 SB\n{}\n", "t.litmus:1: error: unsupported construct: a 'X86' litmus test (only C litmus tests are read)"],
    ["C T\n{ x = 1 \nP0(int *x) {}\nexists (x=1)", "t.litmus:3: error: expected ';', found 'P0'"],
  ])("reports a malformed test with file:line", (text, message) => {
    expect(error(text).format()).toBe(message);
  });

  it("accepts the ~exists and forall quantifiers", () => {
    expect(parseLitmus(wrap("\tr0 = 1;", "~exists (0:r0=2)"), "f").condition.quant).toBe("~exists");
    expect(parseLitmus(wrap("\tr0 = 1;", "forall (0:r0=1 \\/ x=0)"), "f").condition.quant).toBe("forall");
  });
});
