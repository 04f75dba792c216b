#!/usr/bin/env node
/**
 * The `cowsim` command: run scenario files under the COW strategies, explain findings, check the
 * built-in catalog, print the scenario schema. Exit status: 0 when every expectation held, 1 when
 * one failed, 2 when the input could not be used (a malformed scenario, a bad option, an
 * unreadable file, output that cannot be written), 141 when the reader of the output went away
 * (`cowsim check | head`), 70 for a bug in cowsim itself.
 *
 * Problems print as compilers print them: `file:line:col: error: message` when they have a
 * place, `cowsim: error: message` when they have none. Never a stack trace.
 */
import { writeFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { CATALOG_DIR, loadScenarioFilesLazily, scenarioFiles, type ParseBytes } from "../scenario/files.js";
import { formatDiagnostic, ScenarioError } from "../scenario/diagnostic.js";
import type { CompiledValidators, LoadOptions } from "../scenario/load.js";
import { cellName } from "../scenario/matrix.js";
import { runScenario, type ScenarioResult } from "../scenario/run.js";
import { chromeTrace } from "../scenario/trace.js";
import { SCENARIO_SCHEMA } from "../scenario/schema.js";
import type { LoadedScenario } from "../scenario/types.js";
import { checkMatrix, comparison, explainReport, label, painter, runReport, tap } from "./report.js";
import type { FuzzCommandOptions } from "./fuzz.js";
import { describeMachine } from "../kernel.js";
import { loadStrategyModule } from "./strategy-module.js";
import { addBenchCommand } from "./bench-command.js";
import type { ExploreCommandOptions } from "./explore.js";
import { defaultScenarioThreads, runScenarios } from "../scenario/parallel.js";
import { runsOf } from "../scenario/resolve.js";
import { PACKAGE_VERSION } from "../util/version.js";

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
/** sysexits.h's EX_SOFTWARE: an internal error. */
const EXIT_SOFTWARE = 70;
/**
 * The reader went away: what a shell reports for the coreutils, which SIGPIPE kills (`yes | head`
 * gives 141 under `set -o pipefail`). Node ignores SIGPIPE and sees EPIPE instead, so cowsim
 * exits with the same status, quietly.
 */
const EXIT_PIPE = 128 + 13;

for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(EXIT_PIPE);
    // any other failed write (a full disk): say so if stderr still works, and fail
    if (stream === process.stdout) process.stderr.write(`cowsim: error: cannot write the output (${e.code ?? e.message})\n`);
    process.exit(EXIT_USAGE);
  });
}

const out = (text: string): void => { process.stdout.write(text.endsWith("\n") ? text : text + "\n"); };
const paint = painter(process.stdout);
const paintErr = painter(process.stderr);
/** A problem without a place, as `gcc: error: …` prints one. */
function fail(message: string): never {
  process.stderr.write(`cowsim: ${paintErr("red", "error:")} ${message}\n`);
  process.exit(EXIT_USAGE);
}
const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? "EIO";

/**
 * The scenario parser, loaded when a file is not one the build loaded (it brings YAML and the
 * schema validator), with the validators the build compiled (scripts/gen-validators.mjs) when it
 * has them — else ajv compiles the schemas on first use.
 */
async function scenarioParser(): Promise<ParseBytes> {
  const load = await import("../scenario/load.js");
  const gen = new URL("../scenario/validators.gen.js", import.meta.url).href;
  const compiled = await import(gen).then((m: CompiledValidators) => m, () => undefined);
  if (compiled) load.useCompiledValidators(compiled);
  return load.parseScenarioBytes;
}

/** Loads files, or reports every problem on stderr and exits before anything runs. */
async function load(files: readonly string[], opts: LoadOptions = {}): Promise<LoadedScenario[]> {
  try {
    return await loadScenarioFilesLazily(files, opts, scenarioParser);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    for (const d of e.diagnostics) process.stderr.write(formatDiagnostic(d, (label) => paintErr("red", label)) + "\n");
    const n = e.diagnostics.length;
    process.stderr.write(`${n} problem${n > 1 ? "s" : ""}; nothing was run\n`);
    process.exit(EXIT_USAGE);
  }
}

function runAll(loaded: readonly LoadedScenario[], trace: boolean): ScenarioResult[] {
  return loaded.map((ls) => runScenario(ls, { trace }));
}

function writeTrace(file: string | undefined, results: readonly ScenarioResult[]): void {
  if (file === undefined) return;
  try {
    writeFileSync(file, JSON.stringify(chromeTrace(results)) + "\n");
  } catch (e) {
    fail(`cannot write the trace to ${file} (${code(e)})`);
  }
}

/** Labels of loaded scenarios for the matrix: file names, numbered within a stream. */
function labels(loaded: readonly LoadedScenario[], results: readonly ScenarioResult[]): string[] {
  const perFile = new Map<string, number>();
  for (const l of loaded) perFile.set(l.file, (perFile.get(l.file) ?? 0) + 1);
  return results.map((r, i) => { const c = loaded[i]!.cell; return c ? cellName(c) : label(r, perFile.get(loaded[i]!.file)!, loaded[i]!.index); });
}

const exitFor = (results: readonly ScenarioResult[]) => (results.every((r) => r.pass) ? 0 : EXIT_FAILED);


const program = new Command()
  .name("cowsim")
  .version(PACKAGE_VERSION, "-V, --version", "print the version of cowsim")
  .description("A Linux-faithful simulator of anonymous memory and copy-on-write: run scenarios under the COW strategies\n(mapcount ≈ Linux ≤ 5.7, pagecount ≈ 5.9–5.18, anon-exclusive ≈ 5.19+) and see what the oracle finds.")
  .showHelpAfterError("(cowsim --help lists the commands)")
  // "cowsim: error: unknown option …", as problems without a place print; inherited by commands
  .configureOutput({ outputError: (str, write) => write(`cowsim: ${str.replace(/^error:/, paintErr("red", "error:"))}`) })
  .option("--strategy-module <file>", "register the strategies an ES module exports (default or `strategies`: a strategy, a definition, or an array); repeatable",
    (v: string, all: string[]) => [...all, v], [] as string[])
  .hook("preAction", async (cmd) => {
    for (const file of (cmd.opts() as { strategyModule: string[] }).strategyModule) {
      try {
        await loadStrategyModule(file);
      } catch (e) {
        fail((e as Error).message);
      }
    }
  })
  .exitOverride();

program.command("run")
  .description("run scenario files under the strategies each names (default: all three); exit 1 when an expectation fails")
  .argument("<file...>", "scenario files (YAML or JSON)")
  .option("--json", "print the results as JSON")
  .option("--trace <file>", "write the event stream in the Chrome trace-event format (Perfetto, chrome://tracing)")
  .action(async (files: string[], o: { json?: boolean; trace?: string }) => {
    const results = runAll(await load(files), o.trace !== undefined);
    writeTrace(o.trace, results);
    if (o.json) out(JSON.stringify({ scenarios: results.map(stripTrace) }, null, 2));
    else out(runReport(results, paint));
    process.exitCode = exitFor(results);
  });

program.command("explain")
  .description("run a scenario and show each finding as its causal chain: the steps and the kernel decisions that led to it")
  .argument("<file>", "a scenario file")
  .option("--json", "print the findings with their chains as JSON")
  .action(async (file: string, o: { json?: boolean }) => {
    const results = runAll(await load([file]), false);
    if (o.json) out(JSON.stringify(results.map((r) => ({ name: r.name, runs: r.runs.map((x) => ({ run: x.run, kernels: x.kernels, findings: x.findings })) })), null, 2));
    else out(explainReport(results, paint));
    process.exitCode = exitFor(results);
  });

program.command("check")
  .description("run the built-in catalog: a scenario × strategy matrix of PASS/FAIL against the kernels' outcomes, then the strategies side by side")
  .option("--tap", "print TAP (version 13, as the kernel selftests do)")
  .option("--json", "print the results as JSON")
  .option("--trace <file>", "write the event stream in the Chrome trace-event format")
  .option("--catalog <dir>", "another directory of scenarios", CATALOG_DIR)
  .option("--all-sizes", "expand a matrix (cow-thp) at every THP size it lists, not only its checkSizes (PMD, 64K, 16K)")
  .option("--sizes <list>", "expand a matrix at these sizes only, e.g. 2M,16K")
  .option("--threads <n>", "worker threads to run the scenarios on (default: the machine's parallelism for 2000 runs or more, else 1); the output is the same")
  .action(async (o: { tap?: boolean; json?: boolean; trace?: string; catalog: string; allSizes?: boolean; sizes?: string; threads?: string }) => {
    if (o.threads !== undefined && !/^[1-9][0-9]{0,3}$/.test(o.threads)) fail(`--threads must be an integer from 1 to 9999, not ${o.threads}`);
    let files: string[];
    try {
      files = scenarioFiles(o.catalog);
    } catch (e) {
      fail(`cannot read the catalog ${o.catalog} (${code(e)})`);
    }
    const loaded = await load(files, { sizes: o.sizes !== undefined ? o.sizes.split(",").map((size) => size.trim()) : o.allSizes ? undefined : "check" });
    const runs = loaded.reduce((n, ls) => n + runsOf(ls.scenario).length, 0);
    const threads = o.threads !== undefined ? Number(o.threads) : defaultScenarioThreads(runs);
    const results = await runScenarios(loaded, { trace: o.trace !== undefined }, threads);
    writeTrace(o.trace, results);
    const names = labels(loaded, results);
    if (o.json) out(JSON.stringify({ scenarios: results.map(stripTrace) }, null, 2));
    else if (o.tap) out(tap(results, names) + "\n" + comparison(results, (_s, t) => t).replace(/^/gm, "# "));
    else {
      const runs = results.flatMap((r) => r.runs);
      const failed = runs.filter((r) => !r.pass);
      out(checkMatrix(results, names, paint, loaded.map((l) => l.cell)));
      for (const r of results) for (const x of r.runs) for (const f of x.failures) out(paint("red", `FAIL ${r.file} [${x.run}]: ${f.message}`));
      out(`\n${results.length} scenarios, ${runs.length} runs: ${runs.length - failed.length} as the kernels behave, ${failed.length} not`);
      out(paint("dim", "(PASS: the strategy did what its kernels do, their bugs included — see `cowsim explain` for each finding)\n"));
      out(comparison(results, paint));
    }
    process.exitCode = exitFor(results);
  });

program.command("fuzz")
  .description("random operation sequences with every invariant and both judges after every step; each distinct failure shrunk and, with --out, written as a scenario file; exit 1 when one is found")
  .option("--strategy <id>", "the strategy to fuzz", "anon-exclusive")
  .option("--knob <name=bool>", "a knob of the strategy (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
  .option("--seconds <n>", "how long to search", "60")
  .option("--sequences <n>", "stop after this many sequences (with the seed: a reproducible search)")
  .option("--seed <n>", "seed of the search", "1")
  .option("--ops <set>", "syscalls, users (GUP users and pageout too) or everything (exhaustion and fault injection too)", "everything")
  .option("--out <dir>", "write each failure as a scenario file there")
  .option("--stop-on <signature>", "stop at the first failure with this signature (e.g. missed-cow@pipe_read)")
  .option("--json", "print the report as JSON")
  .option("--quiet", "no progress bar")
  .action(async (o: FuzzCommandOptions) => {
    // loaded only here: `run` and `check` need none of the fuzzer
    const { fuzzCommand } = await import("./fuzz.js");
    process.exitCode = fuzzCommand(o, { out, fail, tty: process.stderr.isTTY === true });
  });

addBenchCommand(program, {
  out, fail, paint,
  err: (text) => { process.stderr.write(text.endsWith("\n") ? text : text + "\n"); },
  progress: process.stderr,
}, (status) => { process.exitCode = status; });

program.command("explore")
  .description("explore Linux C litmus tests (a file, a directory, or the shipped seed001 / classic) under SC, x86-TSO and the LKMM; herd7's result blocks")
  .argument("<file...>", ".litmus files or directories")
  .option("--model <m>", "sc, tso, relaxed or all", "all")
  .option("--json", "print the results as JSON")
  .option("--check", "exit 1 when an LKMM verdict differs from the test's Result: comment")
  .option("--no-time", "leave out herd7's Time lines (byte-stable output)")
  .action(async (files: string[], o: ExploreCommandOptions) => {
    const { exploreCommand } = await import("./explore.js");
    process.exitCode = exploreCommand(files, o, { out, fail, failAt: (m) => { process.stderr.write(m + "\n"); process.exit(EXIT_USAGE); } });
  });

program.command("core")
  .description("print the Wasm core's self-description: its memory map, sizes and PTE layout (a default machine, 256 MiB)")
  .action(() => out(describeMachine()));

program.command("schema")
  .description("print the JSON Schema of scenario files (for editors)")
  .action(() => out(JSON.stringify(SCENARIO_SCHEMA, null, 2)));

/** Results for --json: the per-step kernel decisions and counters go to the trace, not here. */
function stripTrace(r: ScenarioResult): ScenarioResult {
  return { ...r, runs: r.runs.map((x) => ({ ...x, steps: x.steps.map(({ entries: _e, counters: _c, ...s }) => s) })) };
}

try {
  await program.parseAsync();
} catch (e) {
  // not process.exit(): a help text whose reader went away must still end as EPIPE says
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
  else {
    // every kind of bad input has its message above; what reaches here is cowsim's own fault
    process.stderr.write(`cowsim: internal error: ${e instanceof Error ? e.message : String(e)}\n` +
      "(a bug in cowsim, not in the input: please report it with the command and the files it read)\n");
    process.exit(EXIT_SOFTWARE);
  }
}
