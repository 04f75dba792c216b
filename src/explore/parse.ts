/**
 * A reader for Linux C litmus tests (tools/memory-model/litmus-tests/*.litmus), for the subset the
 * explorer supports: `int` locations and registers, READ_ONCE / WRITE_ONCE, smp_load_acquire /
 * smp_store_release, the smp_* fences, xchg / cmpxchg and the atomic_* operations of
 * linux-kernel.def, `if`/`else` and integer expressions. Anything else — spin_lock(), RCU,
 * pointers, plain C accesses, loops — is an `unsupported construct` error naming the line, so a
 * reader knows the verdict was not silently computed on something else.
 */
import {
  ExploreError, type Atom, type BinOp, type Condition, type Expr, type FenceKind, type MemOp,
  type Ordering, type Program, type Prop, type Stmt, type Thread,
} from "./ir.js";

interface Tok { readonly t: "id" | "num" | "op" | "eof"; readonly v: string; readonly line: number }

const OPS = ["/\\", "\\/", "==", "!=", "<=", ">=", "&&", "||", "->", "<<", ">>", "++", "--",
  "+=", "-=", "(", ")", "{", "}", "[", "]", ";", ",", ":", "*", "&", "=", "+", "-", "!", "~", "<", ">", "|", "^", "/", "%", "?", ".", "\""];

/** Splits the text after the `C name` line into tokens; collects `//` comments by line for step labels. */
function tokenize(file: string, text: string, firstLine: number): { toks: Tok[]; comments: Map<number, string> } {
  const toks: Tok[] = [];
  const comments = new Map<number, string>();
  let i = 0;
  let line = firstLine;
  const err = (m: string): never => { throw new ExploreError(file, line, m); };
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") { line++; i++; continue; }
    if (c === " " || c === "\t" || c === "\r") { i++; continue; }
    // `(*` opens a comment only before a blank: READ_ONCE(*x) is code
    if (text.startsWith("(*", i) && /[\s*]/.test(text[i + 2] ?? " ")) {
      const end = text.indexOf("*)", i + 2);
      if (end < 0) err("unterminated (* comment");
      for (let j = i; j < end; j++) if (text[j] === "\n") line++;
      i = end + 2;
      continue;
    }
    if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) err("unterminated /* comment");
      for (let j = i; j < end; j++) if (text[j] === "\n") line++;
      i = end + 2;
      continue;
    }
    if (text.startsWith("//", i)) {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      comments.set(line, text.slice(i + 2, stop).trim());
      i = stop;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      toks.push({ t: "id", v: text.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[0-9a-fA-Fx]/.test(text[j]!)) j++;
      const v = text.slice(i, j);
      if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v)) err(`bad number '${v}'`);
      toks.push({ t: "num", v, line });
      i = j;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (op === undefined) err(`unexpected character '${c}'`);
    toks.push({ t: "op", v: op!, line });
    i += op!.length;
  }
  toks.push({ t: "eof", v: "", line });
  return { toks, comments };
}

/** RMW operations of linux-kernel.def: name → what it does, returns, and how it is ordered. */
interface RmwSpec { readonly kind: "xchg" | "add" | "cmpxchg"; readonly ret: "old" | "new" | "none"; readonly sign: 1 | -1; readonly fixed?: number; readonly args: "xv" | "vx" | "x" | "xvw" }
const RMW = new Map<string, RmwSpec & { ord: Ordering }>();
for (const [suffix, ord] of [["", "mb"], ["_relaxed", "once"], ["_acquire", "acquire"], ["_release", "release"]] as const) {
  for (const p of ["", "atomic_"]) {
    RMW.set(`${p}xchg${suffix}`, { kind: "xchg", ret: "old", sign: 1, args: "xv", ord });
    RMW.set(`${p}cmpxchg${suffix}`, { kind: "cmpxchg", ret: "old", sign: 1, args: "xvw", ord });
  }
  for (const [op, sign] of [["add", 1], ["sub", -1]] as const) {
    RMW.set(`atomic_${op}_return${suffix}`, { kind: "add", ret: "new", sign, args: "vx", ord });
    RMW.set(`atomic_fetch_${op}${suffix}`, { kind: "add", ret: "old", sign, args: "vx", ord });
  }
  for (const [op, sign] of [["inc", 1], ["dec", -1]] as const) {
    RMW.set(`atomic_${op}_return${suffix}`, { kind: "add", ret: "new", sign, fixed: 1, args: "x", ord });
    RMW.set(`atomic_fetch_${op}${suffix}`, { kind: "add", ret: "old", sign, fixed: 1, args: "x", ord });
  }
}
RMW.set("atomic_add", { kind: "add", ret: "none", sign: 1, args: "vx", ord: "once" });
RMW.set("atomic_sub", { kind: "add", ret: "none", sign: -1, args: "vx", ord: "once" });
RMW.set("atomic_inc", { kind: "add", ret: "none", sign: 1, fixed: 1, args: "x", ord: "once" });
RMW.set("atomic_dec", { kind: "add", ret: "none", sign: -1, fixed: 1, args: "x", ord: "once" });

const FENCES: Record<string, FenceKind> = {
  smp_mb: "mb", smp_rmb: "rmb", smp_wmb: "wmb", smp_mb__before_atomic: "before-atomic",
  smp_mb__after_atomic: "after-atomic", barrier: "barrier",
};
const LOADS: Record<string, "once" | "acquire"> = {
  READ_ONCE: "once", atomic_read: "once", smp_load_acquire: "acquire", atomic_read_acquire: "acquire", rcu_dereference: "once",
};
const STORES: Record<string, "once" | "release"> = {
  WRITE_ONCE: "once", atomic_set: "once", smp_store_release: "release", atomic_set_release: "release",
};
/** Kernel primitives that are real litmus constructs but outside the subset. */
const UNSUPPORTED = /^(spin_|raw_spin_|rcu_|srcu_|synchronize_|call_rcu|smp_mb__after_spinlock|smp_mb__after_unlock_lock|smp_mb__after_srcu|smp_cond_load|atomic_.*_and_test|atomic_add_negative|atomic_.*_unless|atomic_long_|atomic64_|READ_ONCE_|xchg64|test_and_|set_bit|clear_bit|mutex_)/;

class Parser {
  private p = 0;
  private regs = new Set<string>();
  private regList: string[] = [];
  private params = new Set<string>();
  constructor(private readonly file: string, private readonly toks: Tok[], readonly locs: Set<string>) {}

  get tok(): Tok { return this.toks[this.p]!; }
  peek(n = 1): Tok { return this.toks[Math.min(this.p + n, this.toks.length - 1)]!; }
  next(): Tok { const t = this.tok; if (t.t !== "eof") this.p++; return t; }
  is(v: string): boolean { return this.tok.v === v && this.tok.t !== "eof"; }
  eat(v: string): boolean { if (this.is(v)) { this.p++; return true; } return false; }
  err(m: string, line = this.tok.line): never { throw new ExploreError(this.file, line, m); }
  unsupported(what: string, line = this.tok.line): never {
    throw new ExploreError(this.file, line, `unsupported construct: ${what}`, true);
  }
  expect(v: string): Tok {
    if (!this.is(v)) this.err(`expected '${v}', found ${this.tok.t === "eof" ? "the end of the file" : `'${this.tok.v}'`}`);
    return this.next();
  }
  ident(what: string): Tok {
    if (this.tok.t !== "id") this.err(`expected ${what}, found ${this.tok.t === "eof" ? "the end of the file" : `'${this.tok.v}'`}`);
    return this.next();
  }
  int(): number {
    const neg = this.eat("-");
    const t = this.tok;
    if (t.t !== "num") this.err(`expected a number, found '${t.v}'`);
    this.next();
    return (neg ? -1 : 1) * Number(t.v);
  }

  /** The `{ … }` initial state: `x=1;`, `int x = 1;`, `0:r1=2;`. */
  init(mem: Map<string, number>, regInit: Map<string, number>): void {
    this.expect("{");
    while (!this.eat("}")) {
      if (this.tok.t === "eof") this.err("unterminated initial state");
      if (this.eat(";")) continue;
      const line = this.tok.line;
      if (this.tok.t === "num" && this.peek().v === ":") {
        const tid = this.int();
        this.expect(":");
        const reg = this.ident("a register").v;
        this.expect("=");
        regInit.set(`${tid}:${reg}`, this.initValue(line));
      } else {
        while (["int", "atomic_t", "unsigned", "long"].includes(this.tok.v)) this.next();
        if (this.is("*")) this.unsupported("a pointer in the initial state", line);
        const name = this.ident("a location").v;
        if (this.eat("=")) mem.set(name, this.initValue(line));
        else mem.set(name, 0);
        this.locs.add(name);
      }
      if (!this.is("}")) this.expect(";");
    }
  }
  private initValue(line: number): number {
    if (this.tok.t === "id") {
      if (this.tok.v === "ATOMIC_INIT") { this.next(); this.expect("("); const v = this.int(); this.expect(")"); return v; }
      this.unsupported(`a pointer value ('${this.tok.v}') in the initial state`, line);
    }
    return this.int();
  }

  thread(id: number, comments: ReadonlyMap<number, string>): Thread {
    const head = this.ident("a thread (P0, P1, …)");
    if (head.v !== `P${id}`) this.err(`expected thread P${id}, found '${head.v}'`, head.line);
    this.regs = new Set();
    this.regList = [];
    this.params = new Set();
    this.expect("(");
    while (!this.eat(")")) {
      // a type (int, atomic_t, spinlock_t, …), stars, then the name
      let stars = 0;
      let name = this.ident("a parameter").v;
      while (this.tok.t === "id" || this.is("*")) {
        if (this.eat("*")) { stars++; continue; }
        name = this.next().v;
      }
      if (stars > 1) this.unsupported(`a pointer to a pointer ('${name}')`);
      this.params.add(name);
      this.locs.add(name);
      if (!this.is(")")) this.expect(",");
    }
    const first = this.tok.line;
    const body = this.block();
    const labels = new Map<number, string>();
    for (const [line, text] of comments) {
      const m = /^\(([A-Z][0-9]+[a-z]?)\)/.exec(text);
      if (line >= first && line <= this.toks[this.p - 1]!.line && m) labels.set(line, m[1]!);
    }
    return { id, regs: this.regList, body, labels };
  }

  block(): Stmt[] {
    this.expect("{");
    const out: Stmt[] = [];
    while (!this.eat("}")) {
      if (this.tok.t === "eof") this.err("unterminated block: expected '}'");
      out.push(...this.stmt());
    }
    return out;
  }

  /** A statement; a declaration may give several (`int r0 = …;`). */
  stmt(): Stmt[] {
    const t = this.tok;
    if (this.eat(";")) return [];
    if (t.v === "{") return this.block();
    if (t.v === "int" || t.v === "unsigned" || t.v === "long") {
      while (["int", "unsigned", "long"].includes(this.tok.v)) this.next();
      const out: Stmt[] = [];
      for (;;) {
        if (this.is("*")) this.unsupported("a pointer register");
        const name = this.ident("a register name");
        if (this.params.has(name.v)) this.err(`'${name.v}' is already a location`, name.line);
        if (!this.regs.has(name.v)) { this.regs.add(name.v); this.regList.push(name.v); }
        if (this.eat("=")) out.push({ k: "assign", reg: name.v, e: this.expr(), line: name.line });
        if (this.eat(",")) continue;
        this.expect(";");
        return out;
      }
    }
    if (t.v === "if") {
      this.next();
      this.expect("(");
      const cond = this.expr();
      this.expect(")");
      const then = this.stmt();
      const els = this.eat("else") ? this.stmt() : [];
      return [{ k: "if", cond, then, else: els, line: t.line }];
    }
    if (t.v === "while" || t.v === "for" || t.v === "do") this.unsupported(`a '${t.v}' loop (the search is over loop-free threads; unroll it)`);
    if (t.v === "goto" || t.v === "return" || t.v === "switch") this.unsupported(`'${t.v}'`);
    if (t.t === "op" && t.v === "*") this.unsupported("a plain C access (use READ_ONCE/WRITE_ONCE)");
    if (t.t === "id" && this.peek().v === "=" ) {
      if (!this.regs.has(t.v)) {
        if (this.params.has(t.v) || this.locs.has(t.v)) this.unsupported(`a plain C access to '${t.v}' (use WRITE_ONCE)`);
        this.err(`'${t.v}' is not a declared register`);
      }
      this.next();
      this.next();
      const e = this.expr();
      this.expect(";");
      return [{ k: "assign", reg: t.v, e, line: t.line }];
    }
    const e = this.expr();
    this.expect(";");
    return [{ k: "expr", e, line: t.line }];
  }

  // precedence climbing, C's levels
  expr(): Expr { return this.binary(0); }
  private static LEVELS: readonly (readonly BinOp[])[] = [["||"], ["&&"], ["|"], ["^"], ["&"], ["==", "!="], ["<", ">", "<=", ">="], ["+", "-"], ["*"]];
  private binary(level: number): Expr {
    if (level >= Parser.LEVELS.length) return this.unary();
    let a = this.binary(level + 1);
    for (;;) {
      const op = Parser.LEVELS[level]!.find((o) => this.is(o) && this.tok.t === "op");
      if (op === undefined) return a;
      this.next();
      const b = this.binary(level + 1);
      a = { k: "bin", op, a, b };
    }
  }
  private unary(): Expr {
    const t = this.tok;
    if (t.t === "op" && (t.v === "!" || t.v === "-" || t.v === "~")) { this.next(); return { k: "un", op: t.v, e: this.unary() }; }
    if (t.t === "op" && t.v === "*") this.unsupported("a plain C access (use READ_ONCE)");
    if (t.t === "op" && t.v === "&") this.unsupported("taking an address");
    if (this.eat("(")) { const e = this.expr(); this.expect(")"); return e; }
    if (t.t === "num") { this.next(); return { k: "num", v: Number(t.v) }; }
    if (t.t === "id") {
      this.next();
      if (this.is("(")) return { k: "mem", op: this.call(t) };
      if (this.regs.has(t.v)) return { k: "reg", name: t.v, line: t.line };
      if (this.params.has(t.v) || this.locs.has(t.v)) this.unsupported(`'${t.v}' used as a value (a pointer or a plain access)`, t.line);
      this.err(`'${t.v}' is not a declared register`, t.line);
    }
    this.err(t.t === "eof" ? "unexpected end of the file" : `unexpected '${t.v}'`);
  }

  /** A location argument: `*x`, `x` or `&x` for a parameter x. */
  private loc(): string {
    this.eat("*") || this.eat("&");
    const t = this.ident("a location");
    if (!this.params.has(t.v)) {
      if (this.regs.has(t.v)) this.unsupported(`a register ('${t.v}') used as an address`, t.line);
      this.err(`'${t.v}' is not a parameter of this thread`, t.line);
    }
    return t.v;
  }

  private call(name: Tok): MemOp {
    const line = name.line;
    const f = name.v;
    this.expect("(");
    const done = <T>(v: T): T => { this.expect(")"); return v; };
    if (f in FENCES) return done({ k: "fence", kind: FENCES[f]!, line });
    if (f in LOADS) return done({ k: "load", loc: this.loc(), ord: LOADS[f]!, line });
    if (f in STORES) {
      const loc = this.loc();
      this.expect(",");
      return done({ k: "store", loc, val: this.expr(), ord: STORES[f]!, line });
    }
    if (f === "smp_store_mb") this.unsupported("smp_store_mb() (write WRITE_ONCE(); smp_mb();)", line);
    const spec = RMW.get(f);
    if (spec !== undefined) {
      let loc: string;
      let arg: Expr;
      let expect: Expr | undefined;
      const signed = (e: Expr): Expr => (spec.sign < 0 ? { k: "un", op: "-", e } : e);
      if (spec.args === "x") { loc = this.loc(); arg = signed({ k: "num", v: spec.fixed ?? 1 }); }
      else if (spec.args === "vx") { arg = signed(this.expr()); this.expect(","); loc = this.loc(); }
      else if (spec.args === "xv") { loc = this.loc(); this.expect(","); arg = this.expr(); }
      else { loc = this.loc(); this.expect(","); expect = this.expr(); this.expect(","); arg = this.expr(); }
      const op: MemOp = expect === undefined
        ? { k: "rmw", kind: spec.kind, loc, arg, ord: spec.ord, ret: spec.ret, line }
        : { k: "rmw", kind: spec.kind, loc, arg, expect, ord: spec.ord, ret: spec.ret, line };
      return done(op);
    }
    if (UNSUPPORTED.test(f)) this.unsupported(`${f}()`, line);
    this.unsupported(`${f}() is not a primitive the explorer knows`, line);
  }

  /** `exists (…)`, `~exists (…)`, `forall (…)`, after an optional `locations [...]`. */
  tail(): { cond: Condition; locations: Atom[] } {
    const locations: Atom[] = [];
    if (this.is("locations")) {
      this.next();
      this.expect("[");
      while (!this.eat("]")) {
        if (this.eat(";")) continue;
        locations.push(this.location());
      }
    }
    if (this.is("filter")) this.unsupported("'filter'");
    let quant: Condition["quant"];
    const at = this.tok;
    if (this.eat("~")) { if (!this.eat("exists")) this.err("expected 'exists' after '~'"); quant = "~exists"; }
    else if (this.eat("exists")) quant = "exists";
    else if (this.eat("forall")) quant = "forall";
    else this.err(at.t === "eof" ? "missing final condition (exists, ~exists or forall)" : `expected a final condition (exists, ~exists or forall), found '${at.v}'`);
    const start = this.p;
    const prop = this.prop();
    const text = this.toks.slice(start, this.p).map((t) => t.v).join(" ")
      .replace(/\( /g, "(").replace(/ \)/g, ")").replace(/~ /g, "~").replace(/ : /g, ":").replace(/ = /g, "=");
    if (this.tok.t !== "eof") this.err(`unexpected '${this.tok.v}' after the final condition`);
    return { cond: { quant, prop, text }, locations };
  }
  private location(): Atom {
    if (this.tok.t === "num") {
      const tid = this.int();
      this.expect(":");
      return { tid, name: this.ident("a register").v, val: 0 };
    }
    const name = this.ident("a location").v;
    return { tid: null, name, val: 0 };
  }
  private prop(): Prop {
    let a = this.conj();
    while (this.eat("\\/")) a = { k: "or", a, b: this.conj() };
    return a;
  }
  private conj(): Prop {
    let a = this.pnot();
    while (this.eat("/\\")) a = { k: "and", a, b: this.pnot() };
    return a;
  }
  private pnot(): Prop {
    if (this.eat("~")) return { k: "not", p: this.pnot() };
    if (this.eat("(")) { const p = this.prop(); this.expect(")"); return p; }
    if (this.eat("true")) return { k: "true" };
    if (this.eat("false")) return { k: "false" };
    const at = this.location();
    const line = this.tok.line;
    this.expect("=");
    if (this.tok.t === "id") this.unsupported(`a pointer value ('${this.tok.v}') in the condition`, line);
    return { k: "atom", atom: { ...at, val: this.int() } };
  }
}

/** Parses a C litmus test. `file` names it in messages. Throws ExploreError. */
export function parseLitmus(text: string, file = "<litmus>"): Program {
  const lines = text.split("\n");
  let first = 0;
  while (first < lines.length && lines[first]!.trim() === "") first++;
  const head = /^\s*(\S+)\s+(\S+)/.exec(lines[first] ?? "");
  if (!head) throw new ExploreError(file, first + 1, "expected the litmus header 'C NAME'");
  if (head[1] !== "C") {
    throw new ExploreError(file, first + 1, `unsupported construct: a '${head[1]}' litmus test (only C litmus tests are read)`, true);
  }
  const name = head[2]!;
  const rest = lines.slice(first + 1).join("\n");
  const expectedM = /Result:\s*(Always|Sometimes|Never)/.exec(rest);
  // herd7 allows a quoted doc string after the header
  const body = rest.replace(/^\s*"[^"]*"/, (m) => m.replace(/[^\n]/g, " "));
  const { toks, comments } = tokenize(file, body, first + 2);
  const locs = new Set<string>();
  const ps = new Parser(file, toks, locs);
  const init = new Map<string, number>();
  const regInit = new Map<string, number>();
  ps.init(init, regInit);
  const threads: Thread[] = [];
  while (ps.tok.t === "id" && /^P[0-9]+$/.test(ps.tok.v)) threads.push(ps.thread(threads.length, comments));
  if (threads.length === 0) ps.err("expected a thread P0(…) { … }");
  const { cond, locations } = ps.tail();
  for (const l of locs) if (!init.has(l)) init.set(l, 0);
  for (const a of [...atoms(cond.prop), ...locations]) {
    if (a.tid === null && !init.has(a.name)) throw new ExploreError(file, ps.tok.line, `the condition names '${a.name}', which is no location of the test`);
    if (a.tid !== null) {
      const t = threads[a.tid];
      if (t === undefined) throw new ExploreError(file, ps.tok.line, `the condition names thread ${a.tid}, which the test does not have`);
      if (!t.regs.includes(a.name)) throw new ExploreError(file, ps.tok.line, `the condition names ${a.tid}:${a.name}, which P${a.tid} does not declare`);
    }
  }
  const prog: Program = { name, file, init, regInit, threads, condition: cond, locations, lines };
  return expectedM ? { ...prog, expected: expectedM[1] as "Always" | "Sometimes" | "Never" } : prog;
}

/** The atoms a proposition mentions, in order. */
export function atoms(p: Prop): Atom[] {
  switch (p.k) {
    case "atom": return [p.atom];
    case "not": return atoms(p.p);
    case "and": case "or": return [...atoms(p.a), ...atoms(p.b)];
    default: return [];
  }
}
