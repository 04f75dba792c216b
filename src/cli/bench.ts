/**
 * `cowsim bench`: workloads × strategies (× knob variants × parameters × seeds), measured from
 * the kernel's tracepoints and counters — a table on a terminal, JSON, Markdown; sweeps over
 * worker threads; job lists for GNU parallel or a Kubernetes Indexed Job (`bench plan`), each
 * job a shard (`--shard K/N --out DIR`), and the merge of the shards (`bench merge`) into the
 * report one run gives. cowsim schedules nothing beyond one machine itself.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import cliProgress from "cli-progress";
import { stringify } from "yaml";
import { CowsimError } from "../errno.js";
import { STRATEGY_IDS, strategyInfo } from "../kernel.js";
import { WORKLOADS, WORKLOAD_SIZES, workload as findWorkload, type WorkloadSize } from "../workloads/index.js";
import { expandSweep, parseShard, parseSweepSpec, shardJobs, SweepSpecError, type SweepJob, type SweepSpec } from "../bench/spec.js";
import { runJobs, defaultThreads } from "../bench/sweep.js";
import { markdownReport, mergeShards, terminalTable, type ShardReport } from "../bench/report.js";
import type { BenchReport, BenchRow, CostModel } from "../bench/result.js";
import { cachedCostModel, hostMachine, measureOnKernel, NativeError } from "../bench/native.js";
import { estimate } from "../bench/cost.js";
import { renderHtml } from "../bench/html.js";
import { jobProgram } from "../bench/run.js";
import { formatDiagnostic } from "../scenario/diagnostic.js";
import { closest } from "../util/closest.js";

export interface BenchIo {
  out: (text: string) => void;
  fail: (message: string) => never;
  /** writes a line to stderr (diagnostics, before fail) */
  err: (text: string) => void;
  paint: (style: "bold" | "dim" | "red", text: string) => string;
  /** the stream progress bars go to (stderr); they show only when it is a terminal */
  progress: NodeJS.WriteStream;
}

export interface RunOptions {
  size: string;
  strategies?: string;
  seed: string;
  json?: boolean;
  md?: boolean;
  html?: string;
  vsKernel?: boolean;
  sweep?: string;
  shard?: string;
  out?: string;
  threads?: string;
  oracle: boolean;
  quiet?: boolean;
}

/** The machine a report was made on, in one line (shards of one sweep on one machine say the same). */
export function reportMachine(): string {
  return `${hostMachine()}, Node ${process.version}`;
}

/** A progress bar on `stream` when it is a terminal and not --quiet; null otherwise. */
export function progressBar(stream: NodeJS.WriteStream, quiet: boolean | undefined, total: number): cliProgress.SingleBar | null {
  if (quiet || stream.isTTY !== true || total < 2) return null;
  const bar = new cliProgress.SingleBar({
    format: "bench |{bar}| {value}/{total} runs  {job}", hideCursor: true, clearOnComplete: true, stream,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0, { job: "" });
  return bar;
}

const integer = (text: string, what: string, io: BenchIo, min = 0, max = 2 ** 32 - 1): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) io.fail(`${what} must be an integer from ${min} to ${max}, not ${text}`);
  return n;
};

/** A spec file read and checked, or every problem printed and EXIT_USAGE. */
function loadSpec(file: string, io: BenchIo): SweepSpec {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    io.fail(`cannot read the sweep spec ${file} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
  }
  try {
    return parseSweepSpec(file, text);
  } catch (e) {
    if (!(e instanceof SweepSpecError)) throw e;
    for (const d of e.diagnostics) io.err(formatDiagnostic(d, (label) => io.paint("red", label)));
    io.fail(`${e.diagnostics.length} problem${e.diagnostics.length > 1 ? "s" : ""} in ${file}; nothing was run`);
  }
}

/** The sweep the command line describes: workloads (default all), one size, strategies, one seed. */
function commandLineSpec(names: readonly string[], o: RunOptions, io: BenchIo): SweepSpec {
  for (const name of names) {
    if (!findWorkload(name)) {
      const near = closest(name, WORKLOADS.map((w) => w.name));
      io.fail(`unknown workload "${name}"${near ? ` (did you mean "${near}"?)` : ""}; \`cowsim bench list\` lists them`);
    }
  }
  if (!(WORKLOAD_SIZES as readonly string[]).includes(o.size)) io.fail(`--size must be one of ${WORKLOAD_SIZES.join(", ")}, not ${o.size}`);
  const strategies = o.strategies === undefined ? [...STRATEGY_IDS] : o.strategies.split(",").map((s) => s.trim()).filter(Boolean);
  if (strategies.length === 0) io.fail("--strategies needs at least one strategy");
  for (const id of strategies) if (!strategyInfo(id)) io.fail(`unknown strategy "${id}" (known: ${STRATEGY_IDS.join(", ")})`);
  return {
    workloads: names.length ? names : WORKLOADS.map((w) => w.name),
    sizes: [o.size as WorkloadSize],
    strategies,
    seeds: [integer(o.seed, "--seed", io)],
    ...(o.oracle === false ? { oracle: false } : {}),
  };
}

/**
 * The command a report names: what it runs, not how (no --shard, --out, output or progress
 * options), so that every shard of a sweep and the unsharded run name the same.
 */
function canonicalCommand(names: readonly string[], o: RunOptions): string {
  const oracle = o.oracle === false ? " --no-oracle" : "";
  if (o.sweep !== undefined) return `cowsim bench --sweep ${o.sweep}${oracle}`;
  return `cowsim bench${names.length ? " " + names.join(" ") : ""} --size ${o.size}${o.strategies ? ` --strategies ${o.strategies}` : ""} --seed ${o.seed}${oracle}`;
}

/** Prints a report as asked: JSON, Markdown, or the table. */
function print(report: BenchReport, o: { json?: boolean; md?: boolean; quiet?: boolean; html?: string }, io: BenchIo): void {
  if (o.html !== undefined) writeHtml(o.html, report, io);
  if (o.json) io.out(JSON.stringify(report, null, 2));
  else if (o.md) io.out(markdownReport(report));
  else if (!o.quiet) io.out(terminalTable(report, io.paint));
}

/** Where --vs-kernel keeps the cost model it measures once per machine. */
function costModelFile(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "cowsim", "cost-model.json");
}

/**
 * --vs-kernel: each row's program run again on the host kernel by the native companion, after
 * the simulated runs and one at a time (a host measurement beside a busy worker pool would
 * measure the pool), with the cost model's estimate beside it.
 */
function compareWithKernel(rows: readonly BenchRow[], jobs: readonly SweepJob[], io: BenchIo): { rows: BenchRow[]; costModel?: CostModel } {
  let model: CostModel | { readonly skipped: string };
  try {
    model = cachedCostModel(costModelFile());
  } catch (e) {
    if (e instanceof NativeError) io.fail(`--vs-kernel: measuring the cost model failed: ${e.message}`);
    throw e;
  }
  if ("skipped" in model) {
    io.err(`cowsim: --vs-kernel skipped: ${model.skipped}`);
    return { rows: [...rows] };
  }
  const out = rows.map((row, i) => {
    const program = jobProgram(jobs[i]!.job);
    const est = estimate(row.metrics, model, program);
    let m;
    try {
      m = measureOnKernel(program, row.seconds, est);
    } catch (e) {
      if (e instanceof NativeError) io.fail(`--vs-kernel: ${row.workload} on the host kernel: ${e.message}`);
      throw e;
    }
    return "skipped" in m ? { ...row, estimate: est } : { ...row, estimate: est, kernel: m.measurement };
  });
  return { rows: out, costModel: model };
}

/** --html FILE: the self-contained report. */
function writeHtml(file: string, report: BenchReport, io: BenchIo): void {
  try {
    writeFileSync(file, renderHtml(report));
  } catch (e) {
    io.fail(`cannot write the HTML report ${file} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
  }
}

export async function benchRun(names: string[], o: RunOptions, io: BenchIo): Promise<number> {
  if (o.sweep !== undefined && names.length) io.fail("name workloads in the sweep spec, or on the command line without --sweep, not both");
  const spec = o.sweep !== undefined ? loadSpec(o.sweep, io) : commandLineSpec(names, o, io);
  if (o.sweep !== undefined && o.oracle === false) (spec as { oracle?: boolean }).oracle = false;
  const all = expandSweep(spec);
  let jobs: SweepJob[] = all;
  let shard: { k: number; n: number } | null = null;
  if (o.shard !== undefined) {
    shard = parseShard(o.shard);
    if (!shard) io.fail(`--shard takes K/N with 1 ≤ K ≤ N, not ${o.shard}`);
    if (o.out === undefined) io.fail("--shard needs --out DIR: where the shard file goes");
    jobs = shardJobs(all, shard.k, shard.n);
  } else if (o.out !== undefined) io.fail("--out is where --shard writes its shard file; without --shard, use --json > FILE");
  // a sweep spreads over the machine; a plain run stays in this thread unless told (it is short)
  const threads = o.threads !== undefined ? integer(o.threads, "--threads", io, 1, 1024) : o.sweep !== undefined ? defaultThreads() : 1;

  const bar = progressBar(io.progress, o.quiet, jobs.length);
  let rows;
  try {
    rows = await runJobs(jobs.map((j) => j.job), {
      threads,
      onProgress: (done, _total, job) => bar?.update(done, { job: `${job.workload} ${job.strategy}` }),
    });
  } catch (e) {
    bar?.stop();
    if (e instanceof CowsimError) io.fail(e.message);
    throw e;
  }
  bar?.stop();
  const compared = o.vsKernel ? compareWithKernel(rows, jobs, io) : { rows };
  const report: BenchReport = {
    version: 1,
    machine: reportMachine(),
    command: canonicalCommand(names, o),
    rows: compared.rows,
    jobs: jobs.map((j) => j.id),
    ...(compared.costModel ? { costModel: compared.costModel } : {}),
  };
  if (shard) {
    const file = join(o.out!, `shard-${shard.k}-of-${shard.n}.json`);
    const shardReport: ShardReport = { ...report, jobs: jobs.map((j) => j.id), shard: { k: shard.k, n: shard.n, total: all.length } };
    try {
      mkdirSync(o.out!, { recursive: true });
      writeFileSync(file, JSON.stringify(shardReport) + "\n");
    } catch (e) {
      io.fail(`cannot write the shard file ${file} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
    }
  }
  print(report, o, io);
  return 0;
}

export function benchList(o: { json?: boolean }, io: BenchIo): number {
  if (o.json) {
    io.out(JSON.stringify(WORKLOADS.map((w) => ({ name: w.name, title: w.title, standsFor: w.standsFor, params: w.params })), null, 2));
    return 0;
  }
  const lines: string[] = [];
  for (const w of WORKLOADS) {
    lines.push(io.paint("bold", w.name) + ` — ${w.title}`, io.paint("dim", `  stands for: ${w.standsFor}`));
    for (const [name, p] of Object.entries(w.params)) {
      lines.push(`  ${name.padEnd(20)} small ${String(p.small).padStart(6)}  default ${String(p.default).padStart(7)}  large ${String(p.large).padStart(7)}  ${io.paint("dim", p.description)}`);
    }
    lines.push("");
  }
  io.out(lines.join("\n").trimEnd());
  return 0;
}

/** A word for a shell: as it is when safe, single-quoted otherwise. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface PlanOptions {
  shards: string;
  format: string;
  out: string;
  command: string;
  image: string;
  name: string;
  claim: string;
}

/** `bench plan`: the job list of a sweep cut into N shards, for GNU parallel or a Kubernetes Indexed Job. */
export function benchPlan(specFile: string, o: PlanOptions, io: BenchIo): number {
  const spec = loadSpec(specFile, io);
  const total = expandSweep(spec).length;
  const n = integer(o.shards, "--shards", io, 1, 100000);
  if (o.format !== "parallel" && o.format !== "k8s") io.fail(`--format must be parallel or k8s, not ${o.format}`);
  if (n > total) io.err(`cowsim: warning: ${n} shards for ${total} jobs: ${n - total} shards will be empty`);
  if (o.format === "parallel") {
    // one command a line: `parallel < FILE` (or `parallel --jobs 4 :::: FILE`) runs them; parallel
    // already runs a job per core, so each shard keeps to one thread
    const lines: string[] = [];
    for (let k = 1; k <= n; k++) {
      // the command is a prefix as written (it may be `node path/to/main.js`); the rest are words
      lines.push([o.command, ...["bench", "--sweep", specFile, "--shard", `${k}/${n}`, "--out", o.out, "--threads", "1", "--quiet"].map(shellWord)].join(" "));
    }
    io.out(lines.join("\n"));
    return 0;
  }
  io.out(k8sManifest(specFile, readFileSync(specFile, "utf8"), n, o));
  return 0;
}

/**
 * A ConfigMap holding the spec and an Indexed Job of N completions: pod i runs shard i + 1
 * (JOB_COMPLETION_INDEX counts from 0) and writes it to a volume all pods share, from which
 * `cowsim bench merge` reads them.
 */
export function k8sManifest(specFile: string, specText: string, n: number, o: Pick<PlanOptions, "out" | "command" | "image" | "name" | "claim">): string {
  const specName = "sweep" + (/\.json$/i.test(specFile) ? ".json" : ".yaml");
  const configMap = {
    apiVersion: "v1", kind: "ConfigMap",
    metadata: { name: `${o.name}-spec` },
    data: { [specName]: specText },
  };
  const shardCommand = `${o.command} bench --sweep /spec/${specName} --shard $((JOB_COMPLETION_INDEX + 1))/${n} --out ${shellWord(`/results/${o.out}`)} --quiet`;
  const job = {
    apiVersion: "batch/v1", kind: "Job",
    metadata: { name: o.name },
    spec: {
      completionMode: "Indexed",
      completions: n,
      parallelism: n,
      backoffLimit: n,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "cowsim-bench",
            image: o.image,
            command: ["sh", "-c", shardCommand],
            volumeMounts: [{ name: "spec", mountPath: "/spec", readOnly: true }, { name: "results", mountPath: "/results" }],
          }],
          volumes: [
            { name: "spec", configMap: { name: `${o.name}-spec` } },
            { name: "results", persistentVolumeClaim: { claimName: o.claim } },
          ],
        },
      },
    },
  };
  return `# ${n} shards of ${specFile}: kubectl apply -f this; then cowsim bench merge on the results volume's ${o.out}/\n` +
    stringify(configMap) + "---\n" + stringify(job);
}

/** Shard files: the *.json files of each directory (or the files named). */
function shardFiles(paths: readonly string[], io: BenchIo): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      io.fail(`cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? "EIO"})`);
    }
    if (!isDir) files.push(p);
    else files.push(...readdirSync(p).filter((f) => f.endsWith(".json")).sort().map((f) => join(p, f)));
  }
  return files;
}

export function benchMerge(dirs: string[], o: { json?: boolean; md?: boolean; html?: string; quiet?: boolean }, io: BenchIo): number {
  const files = shardFiles(dirs, io);
  if (files.length === 0) io.fail(`no shard files (*.json) in ${dirs.join(", ")}`);
  const shards = files.map((file) => {
    let report: ShardReport;
    try {
      report = JSON.parse(readFileSync(file, "utf8")) as ShardReport;
    } catch (e) {
      io.fail(`${file}: not a shard file (${e instanceof SyntaxError ? "not JSON" : (e as NodeJS.ErrnoException).code ?? "EIO"})`);
    }
    if (report?.version !== 1 || !report.shard || !Array.isArray(report.rows) || !Array.isArray(report.jobs)) {
      io.fail(`${file}: not a shard file of cowsim bench (written by \`cowsim bench --shard K/N --out DIR\`)`);
    }
    return { file, report };
  });
  let merged: BenchReport;
  try {
    merged = mergeShards(shards);
  } catch (e) {
    io.fail(`cannot merge: ${(e as Error).message}`);
  }
  print(merged, o, io);
  return 0;
}
