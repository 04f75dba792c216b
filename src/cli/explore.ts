/**
 * `cowsim explore FILE…`: Linux C litmus tests explored under SC, x86-TSO and the LKMM, printed
 * as herd7 prints its results (or as JSON). A directory means every `.litmus` file in it; the
 * names `seed001` and `classic` mean the tests the package ships (litmus/seed001, litmus/classic).
 * With --check, exit 1 when an LKMM verdict differs from the test's `Result:` comment.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { explore, ExploreError, formatHerd, MODELS, parseLitmus, resultJson, type ExploreResult, type ModelName } from "../explore/index.js";

export interface ExploreCommandOptions {
  readonly model: string;
  readonly json?: boolean;
  readonly check?: boolean;
  readonly time?: boolean;
}

/** The package's litmus directory (beside dist/ and src/). */
export const LITMUS_DIR = fileURLToPath(new URL("../../litmus/", import.meta.url));

function expand(arg: string, fail: (m: string) => never): string[] {
  let path = arg;
  if (!existsSync(path) && /^[a-z0-9]+$/.test(arg) && existsSync(join(LITMUS_DIR, arg))) path = join(LITMUS_DIR, arg);
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    fail(`cannot read ${arg} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
  }
  if (!st.isDirectory()) return [path];
  return readdirSync(path).filter((f) => f.endsWith(".litmus")).sort().map((f) => join(path, f));
}

/** Runs the command; returns the exit status (0, or 1 when --check found a verdict that differs). */
export function exploreCommand(args: readonly string[], o: ExploreCommandOptions, io: {
  out: (text: string) => void;
  fail: (message: string) => never;
  /** A problem at a place: prints it and exits 2. */
  failAt: (formatted: string) => never;
}): number {
  const models: readonly ModelName[] = o.model === "all" ? MODELS : [o.model as ModelName];
  if (o.model !== "all" && !MODELS.includes(o.model as ModelName)) io.fail(`--model must be sc, tso, relaxed or all, not ${o.model}`);
  const files = args.flatMap((a) => expand(a, io.fail));
  if (files.length === 0) io.fail("no .litmus files to explore");
  const results: ExploreResult[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      io.fail(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
    }
    try {
      results.push(explore(parseLitmus(text, file), { models }));
    } catch (e) {
      if (e instanceof ExploreError) io.failAt(e.format());
      throw e;
    }
  }
  let status = 0;
  const differ: string[] = [];
  for (const r of results) {
    const lk = r.models.find((m) => m.model === "relaxed");
    if (o.check && r.program.expected && lk && lk.observation !== r.program.expected) {
      differ.push(`${r.program.file}: LKMM ${lk.observation}, the test's Result: ${r.program.expected}`);
      status = 1;
    }
  }
  if (o.json) io.out(JSON.stringify({ tests: results.map(resultJson) }, null, 2));
  else io.out(results.map((r) => formatHerd(r, { time: o.time ?? true })).join("\n"));
  for (const d of differ) process.stderr.write(`cowsim: verdict differs: ${d}\n`);
  return status;
}
