/**
 * The explorer's program form: threads of statements over shared locations, as a Linux C
 * litmus test writes them (tools/memory-model/litmus-tests). The parser (parse.ts) builds it;
 * the thread interpreter (thread.ts) runs it into events; the models judge the events.
 *
 * Values are integers. Locations are named ints (`int *x` parameters); pointers, plain C
 * accesses, locks and RCU are outside the subset, and the parser says so at the line.
 */

/** Memory-access annotation, the LKMM's (linux-kernel.bell): `once`, `acquire`, `release`. */
export type Ordering = "once" | "acquire" | "release" | "mb";

/** The fences of linux-kernel.def that the subset knows. */
export type FenceKind = "mb" | "rmb" | "wmb" | "before-atomic" | "after-atomic" | "barrier";

export type BinOp = "+" | "-" | "*" | "&" | "|" | "^" | "==" | "!=" | "<" | ">" | "<=" | ">=" | "&&" | "||";

export type Expr =
  | { readonly k: "num"; readonly v: number }
  | { readonly k: "reg"; readonly name: string; readonly line: number }
  | { readonly k: "un"; readonly op: "!" | "-" | "~"; readonly e: Expr }
  | { readonly k: "bin"; readonly op: BinOp; readonly a: Expr; readonly b: Expr }
  | { readonly k: "mem"; readonly op: MemOp };

/**
 * One memory operation. `load`/`store` are READ_ONCE/WRITE_ONCE and friends; `rmw` is every
 * atomic read-modify-write: `xchg` stores `arg`; `add` adds it (sub/inc/dec are adds);
 * `cmpxchg` stores `arg` if the old value equals `expect`. `ret` says what an RMW returns
 * (`old` for xchg/fetch_*, `new` for *_return, `none` for the non-returning atomic_add()).
 */
export type MemOp =
  | { readonly k: "load"; readonly loc: string; readonly ord: "once" | "acquire"; readonly line: number }
  | { readonly k: "store"; readonly loc: string; readonly val: Expr; readonly ord: "once" | "release"; readonly line: number }
  | {
      readonly k: "rmw"; readonly kind: "xchg" | "add" | "cmpxchg"; readonly loc: string; readonly arg: Expr;
      readonly expect?: Expr; readonly ord: Ordering; readonly ret: "old" | "new" | "none"; readonly line: number;
    }
  | { readonly k: "fence"; readonly kind: FenceKind; readonly line: number };

export type Stmt =
  | { readonly k: "assign"; readonly reg: string; readonly e: Expr; readonly line: number }
  | { readonly k: "expr"; readonly e: Expr; readonly line: number }
  | { readonly k: "if"; readonly cond: Expr; readonly then: readonly Stmt[]; readonly else: readonly Stmt[]; readonly line: number };

export interface Thread {
  readonly id: number;
  /** Registers declared (`int r0;`), in order: each starts at 0 unless the init section says otherwise. */
  readonly regs: readonly string[];
  readonly body: readonly Stmt[];
  /** Step labels by source line: a `// (B3) …` comment at the end of a line names its step. */
  readonly labels: ReadonlyMap<number, string>;
}

/** A final-state atom: `0:r0=1` (thread 0's register) or `x=1` (memory). */
export interface Atom { readonly tid: number | null; readonly name: string; readonly val: number }

export type Prop =
  | { readonly k: "atom"; readonly atom: Atom }
  | { readonly k: "not"; readonly p: Prop }
  | { readonly k: "and" | "or"; readonly a: Prop; readonly b: Prop }
  | { readonly k: "true" | "false" };

/** The final condition of a litmus test. */
export interface Condition {
  /** `exists P`, `~exists P` (written `~exists`) or `forall P`. */
  readonly quant: "exists" | "~exists" | "forall";
  readonly prop: Prop;
  /** The condition as written (after `exists`), for the result block. */
  readonly text: string;
}

/** A parsed litmus test: initial state, threads, final condition. */
export interface Program {
  readonly name: string;
  /** Where the program came from, for messages. */
  readonly file: string;
  /** Shared locations and their initial values (0 unless given). */
  readonly init: ReadonlyMap<string, number>;
  /** Registers given an initial value (`0:r1=2;`), by "tid:name". */
  readonly regInit: ReadonlyMap<string, number>;
  readonly threads: readonly Thread[];
  readonly condition: Condition;
  /** Extra locations to show in the states (`locations [x; 0:r1;]`). */
  readonly locations: readonly Atom[];
  /** The source text by line (index 0 is line 1), for witnesses. */
  readonly lines: readonly string[];
  /** The `Result:` comment of the kernel's litmus tests, when present. */
  readonly expected?: "Always" | "Sometimes" | "Never";
}

/** A construct the explorer cannot read or does not support, with its place. */
export class ExploreError extends Error {
  constructor(readonly file: string, readonly line: number, message: string, readonly unsupported = false) {
    super(message);
    this.name = "ExploreError";
  }
  /** `file:line: error: message`, as compilers print. */
  format(): string {
    return `${this.file}:${this.line}: error: ${this.message}`;
  }
}
