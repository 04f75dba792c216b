/**
 * `cowsim bench` and its subcommands, as the command line knows them: their options here, their
 * work in bench.ts, loaded when one runs (it brings the sweep specs' YAML and schema validator,
 * the progress bars and the worker pool, which `run` and `check` never need).
 */
import { Option, type Command } from "commander";
import { STRATEGY_IDS } from "../kernel.js";
import { WORKLOAD_SIZES } from "../workloads/index.js";
import type { BenchIo, PlanOptions, RunOptions } from "./bench.js";

const work = () => import("./bench.js");

/** Adds `bench` and its subcommands to the program. */
export function addBenchCommand(program: Command, io: BenchIo, setExit: (code: number) => void): void {
  const bench = program.command("bench")
    .description("run workloads under the COW strategies and compare copies, reuses, unnecessary/missed/wrong COWs, faults, frames, swap, GUP and speed")
    .argument("[workload...]", "workloads to run (default: all; `cowsim bench list` names them)")
    .addOption(new Option("--size <size>", "the workloads' parameter set").choices([...WORKLOAD_SIZES]).default("default"))
    .option("--strategies <list>", `comma-separated strategies (default: ${STRATEGY_IDS.join(",")})`)
    .option("--seed <n>", "seed of the workloads' random choices", "1")
    .option("--json", "print the report as JSON")
    .option("--md", "print the report as Markdown")
    .option("--html <file>", "write the HTML report with charts")
    .option("--vs-kernel", "also run each program on the host kernel (the native companion) and compare")
    .option("--sweep <spec>", "run the sweep a YAML/JSON spec describes: workloads × parameter grids × sizes × seeds × variants × strategies, over worker threads")
    .option("--shard <K/N>", "run only shard K of N of the job list (jobs i with i % N = K - 1) and write it to --out")
    .option("--out <dir>", "where --shard writes its shard file")
    .option("--threads <n>", "worker threads (default: the machine's parallelism for a sweep, 1 otherwise)")
    .option("--no-oracle", "run without the oracle: no verdicts, faster")
    .option("--quiet", "no progress bar, and no table (for scripts: --json or a shard file still come out)")
    .addHelpText("after", "\nSubcommands:\n  bench list                          the workloads, what each stands for, their parameters\n" +
      "  bench plan SPEC --shards N          a GNU parallel job list (--format parallel) or a Kubernetes Indexed Job (--format k8s)\n" +
      "  bench merge DIR…                    the shard files of a plan merged into the report one run gives\n")
    .action(async (names: string[], o: RunOptions) => setExit(await (await work()).benchRun(names, o, io)));

  // `bench merge DIR --json`: commander gives an option that `bench` has too to `bench`, wherever
  // it stands, so a subcommand takes those from there
  const fromParent = (names: readonly string[]) => Object.fromEntries(names.flatMap((n) => {
    const v = bench.getOptionValue(n) as unknown;
    return v === undefined ? [] : [[n, v]];
  }));

  bench.command("list")
    .description("list the workloads: what each stands for, its parameters at each size")
    .option("--json", "as JSON")
    .action(async (o: { json?: boolean }) => setExit((await work()).benchList({ ...o, ...fromParent(["json"]) }, io)));

  bench.command("plan")
    .description("cut a sweep into N shards: a GNU parallel job list or a Kubernetes Indexed Job manifest, each job `cowsim bench --shard K/N`")
    .argument("<spec>", "the sweep spec (YAML or JSON)")
    .requiredOption("--shards <n>", "how many shards")
    .addOption(new Option("--format <format>", "parallel: one command a line; k8s: a ConfigMap and an Indexed Job").choices(["parallel", "k8s"]).default("parallel"))
    .option("--out <dir>", "where the shards write their files", "bench-shards")
    .option("--command <cmd>", "how a job starts cowsim, as a shell prefix (e.g. \"npx cowsim\")", "cowsim")
    .option("--image <image>", "k8s: the container image (cowsim on its PATH)", "cowsim:latest")
    .option("--name <name>", "k8s: the Job's name", "cowsim-bench")
    .option("--claim <pvc>", "k8s: the PersistentVolumeClaim the shards write to", "cowsim-bench-results")
    .action(async (spec: string, o: PlanOptions) => setExit((await work()).benchPlan(spec, { ...o, ...fromParent(["out"]) }, io)));

  bench.command("merge")
    .description("merge shard files (the *.json of each directory) into the report one unsharded run gives")
    .argument("<dir...>", "directories of shard files, or shard files")
    .option("--json", "print the report as JSON")
    .option("--md", "print the report as Markdown")
    .option("--html <file>", "write the HTML report with charts")
    .option("--quiet", "print nothing (with --html: only the file)")
    .action(async (dirs: string[], o: { json?: boolean; md?: boolean; html?: string; quiet?: boolean }) =>
      setExit((await work()).benchMerge(dirs, { ...o, ...fromParent(["json", "md", "html", "quiet"]) }, io)));
}
