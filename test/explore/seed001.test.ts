import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { explore, parseLitmus } from "../../src/explore/index.js";
import { BARRIERS, seed001Litmus, STEPS, VARIANTS } from "../../src/explore/protocols/seed001.js";
import { LITMUS, ROOT } from "./helpers.js";

const file = (name: string) => join(LITMUS, "seed001", `${name}.litmus`);

describe("seed 001's protocol (litmus/seed001)", () => {
  it("ships every variant as generated from the one description", () => {
    for (const v of VARIANTS) expect(readFileSync(file(v.name), "utf8"), `${v.name}: run npm run gen:litmus`).toBe(seed001Litmus(v));
    expect(VARIANTS).toHaveLength(13);
  });

  it.each(VARIANTS.map((v) => [v.name, v]))("%s: the verdict under SC, x86-TSO and the LKMM", (_n, v) => {
    const r = explore(parseLitmus(readFileSync(file(v.name), "utf8"), v.name));
    expect(Object.fromEntries(r.models.map((m) => [m.model, m.observation]))).toEqual(v.expected);
  });

  it("shows the race of the smp_mb() pair's absence: GUP-fast re-reads the old PTE before the clear, the clearer misses the pin", () => {
    const r = explore(parseLitmus(readFileSync(file("seed001-writable-nobarriers"), "utf8"), "w"), { models: ["relaxed"] });
    const w = r.models[0]!.witness!;
    const step = (label: string) => w.steps.find((s) => s.event.label === label && s.event.kind === "R")!;
    expect(step("B4").event.val).toBe(1); // the old, writable PTE: no change seen
    expect(step("B4").from).toBeNull();
    expect(step("A2").event.val).toBe(1); // refcount without the pin
  });

  it("shows the race the smp_wmb()/smp_rmb() pair closes: the restored PTE seen, the flag's clearing not", () => {
    const r = explore(parseLitmus(readFileSync(file("seed001-readonly-mbpair"), "utf8"), "r"), { models: ["relaxed"] });
    const w = r.models[0]!.witness!;
    const b4 = w.steps.find((s) => s.event.label === "B4")!;
    const b5 = w.steps.find((s) => s.event.label === "B5")!;
    expect(b4.from?.label).toBe("A4");
    expect(b5).toMatchObject({ from: null, event: { val: 1 } });
  });
});

/**
 * What is explored is what runs: the Wasm core cannot import the description, so this test reads
 * the functions of assembly/ that each step and barrier names and checks that the step's marker
 * is there, the steps of one function come in the protocol's order, and each barrier's fence
 * (atomic.fence()) sits between the accesses it orders.
 */
describe("the Wasm core follows the description", () => {
  const body = (fileName: string, fn: string): string => {
    const src = readFileSync(join(ROOT, fileName), "utf8");
    const m = new RegExp(`function ${fn}\\(`).exec(src);
    expect(m, `${fileName}: function ${fn}`).not.toBeNull();
    const start = src.indexOf("{", m!.index);
    let depth = 0;
    for (let i = start; i < src.length; i++) {
      if (src[i] === "{") depth++;
      else if (src[i] === "}" && --depth === 0) return src.slice(start, i + 1);
    }
    throw new Error(`${fileName}: unterminated ${fn}`);
  };

  it("has every step where the description says, in the protocol's order", () => {
    const byFn = new Map<string, { id: string; at: number }[]>();
    for (const s of STEPS) {
      for (const a of s.wasm) {
        const at = body(a.file, a.fn).indexOf(a.marker);
        expect(at, `${s.id}: '${a.marker}' in ${a.file} ${a.fn}()`).toBeGreaterThanOrEqual(0);
        const k = `${a.file}:${a.fn}`;
        byFn.set(k, [...(byFn.get(k) ?? []), { id: s.id, at }]);
      }
    }
    for (const [k, steps] of byFn) {
      const inSource = [...steps].sort((a, b) => a.at - b.at).map((s) => s.id);
      expect(inSource, k).toEqual(steps.map((s) => s.id));
    }
  });

  it("has every barrier of the fix as a fence between the accesses it orders, with its kernel name", () => {
    for (const b of BARRIERS) {
      const text = body(b.wasm.file, b.wasm.fn);
      const from = b.wasm.after === null ? 0 : text.indexOf(b.wasm.after);
      const to = b.wasm.before === null ? text.length : text.indexOf(b.wasm.before, from);
      expect(from, `${b.id}: after '${b.wasm.after}'`).toBeGreaterThanOrEqual(0);
      expect(to, `${b.id}: before '${b.wasm.before}'`).toBeGreaterThan(from);
      const between = text.slice(from, to);
      expect(between, `${b.id}: atomic.fence() in ${b.wasm.fn}()`).toContain("atomic.fence()");
      // the comment says what Linux has there, or what it pairs with
      const names = [b.fence, ...(b.aka ? [b.aka] : [])].map((n) => n.replace(/[()]/g, "\\$&"));
      expect(between, `${b.id}: the comment names ${b.fence}`).toMatch(new RegExp([...names, "[Pp]aired with", "pairs with"].join("|")));
    }
  });
});
