/**
 * The native companion (Node only: reached from the CLI and the benchmarks, never from the main
 * entry): bench/kernel/workload.c, built with the machine's C compiler once per process into a
 * cache directory, runs a workload program on the host kernel — the same steps the simulator
 * runs — and reports its times. `cowsim bench --vs-kernel` prints simulator / kernel ratios from
 * it, and the cost model (cost.ts) measures its per-event costs with it.
 *
 * The C source ships with the repository (bench/kernel/), not with the npm package: an
 * installation without it, or a machine without `cc`, gets a skip with the reason, never an error.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { arch, cpus as cpus_, release, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { programToText, type Program } from "../workloads/program.js";
import { calibrationPrograms, medianCosts } from "./cost.js";
import type { CostModel, KernelEstimate, KernelMeasurement } from "./result.js";

/** Where the C program is: beside the sources in a checkout (src/bench → bench/kernel, and dist/bench too). */
const NATIVE_SOURCE_URL = new URL("../../bench/kernel/workload.c", import.meta.url);
export const NATIVE_SOURCE = fileURLToPath(NATIVE_SOURCE_URL);
/** The headers workload.c includes from its own directory. */
const NATIVE_HEADERS = ["uffd_uapi.h"];

/** The companion's exit codes (workload.c): a parse error is a bug on this side, a runtime error the host's. */
const EXIT_PARSE = 2;
const EXIT_RUNTIME = 3;

export type NativeBuild =
  | { readonly ok: true; readonly binary: string; readonly compiler: string }
  | { readonly ok: false; readonly reason: string };

/** One op of a native run: how many steps, pages and seconds. */
export interface NativeOp {
  readonly count: number;
  readonly pages: number;
  readonly seconds: number;
}

/** What the companion printed for one program. */
export interface NativeRun {
  /** the host's kernel release */
  readonly kernel: string;
  readonly steps: number;
  readonly processes: number;
  /** CLOCK_MONOTONIC from the first step to the last (parsing and setup left out) */
  readonly seconds: number;
  readonly accesses: number;
  /** pinned pages the device read while the owner mapped other contents (0 on a correct kernel) */
  readonly incoherentPins: number;
  /** whether the host has swap (without it reclaim cannot swap anonymous pages out) */
  readonly swap: boolean;
  readonly ops: Readonly<Record<string, NativeOp>>;
  /** steps that failed, by "op:ERRNO" */
  readonly errors: Readonly<Record<string, number>>;
  /** what the host does not support, in words, with how many steps met it */
  readonly unsupported: Readonly<Record<string, number>>;
  /** each step's seconds (with `steps: true`) */
  readonly stepSeconds?: readonly number[];
  /** what the errors mean, in words (EPERM of userfaultfd, io_uring disabled …) */
  readonly notes: readonly string[];
}

/** A failure of the companion itself (not of a step): a parse error is a bug, a runtime error the host's. */
export class NativeError extends Error {
  constructor(message: string, readonly kind: "parse" | "runtime" | "crash") {
    super(message);
    this.name = "NativeError";
  }
}

let built: NativeBuild | undefined;

/** The first C compiler found: $CC, then cc, gcc, clang. */
function findCompiler(candidates: readonly string[] = [process.env["CC"], "cc", "gcc", "clang"].filter((c): c is string => !!c)): string | undefined {
  return candidates.find((c) => spawnSync(c, ["--version"], { stdio: "ignore" }).status === 0);
}

/**
 * Builds the companion with `cc -O2 -pthread` into `cacheDir` (by default a directory of the
 * system's temporary one, named by the source's hash, so a second process reuses the binary),
 * once per process. Without a compiler or the source it returns the reason, for a skip.
 */
export function buildNative(options: { cacheDir?: string; compilers?: readonly string[] } = {}): NativeBuild {
  const own = options.cacheDir !== undefined || options.compilers !== undefined;
  if (built && !own) return built;
  const result = build(options.cacheDir, options.compilers);
  if (!own) built = result;
  return result;
}

function build(cacheDir: string | undefined, compilers: readonly string[] | undefined): NativeBuild {
  const cc = findCompiler(compilers);
  if (!cc) return { ok: false, reason: "no C compiler (cc, gcc or clang; or $CC): --vs-kernel skipped" };
  if (!existsSync(NATIVE_SOURCE)) {
    return { ok: false, reason: "the native companion's source (bench/kernel/workload.c) is not in this installation; it comes with the repository: --vs-kernel skipped" };
  }
  const version = spawnSync(cc, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? cc;
  // the source and the headers beside it that it includes
  const hasher = createHash("sha256").update(readFileSync(NATIVE_SOURCE));
  for (const header of NATIVE_HEADERS) hasher.update(readFileSync(new URL(header, NATIVE_SOURCE_URL)));
  const hash = hasher.update(version).digest("hex").slice(0, 16);
  const dir = cacheDir ?? join(tmpdir(), `cowsim-native-${process.getuid?.() ?? "user"}`);
  const binary = join(dir, `workload-${hash}`);
  if (existsSync(binary)) return { ok: true, binary, compiler: version };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // built under a name of this process, then renamed: a concurrent build never sees half a binary
  const partial = `${binary}.${process.pid}.tmp`;
  const r = spawnSync(cc, ["-O2", "-pthread", "-o", partial, NATIVE_SOURCE], { encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(partial, { force: true });
    return { ok: false, reason: `${cc} could not build the native companion: ${(r.stderr || r.error?.message || "").trim().split("\n").slice(0, 6).join("\n")}` };
  }
  renameSync(partial, binary);
  return { ok: true, binary, compiler: version };
}

/** What a step error on the host means, when it is the host's setting rather than the program's. */
const EXPLAIN: Readonly<Record<string, string>> = {
  "uffd_open:EPERM": "userfaultfd is not allowed for this user (vm.unprivileged_userfaultfd is 0 and /dev/userfaultfd is not accessible): the userfaultfd steps failed on the host",
  "uffd_open:ENOSYS": "the host kernel has no userfaultfd (CONFIG_USERFAULTFD): the userfaultfd steps failed on the host",
  "pin:EPERM": "io_uring is disabled for this user (kernel.io_uring_disabled): the pins failed on the host",
  "pin:ENOSYS": "the host kernel has no io_uring (CONFIG_IO_URING, or kernel.io_uring_disabled=2): the pins failed on the host",
  "pin:ENOMEM": "io_uring could not pin the buffers within RLIMIT_MEMLOCK (ulimit -l): the pins failed on the host",
  "mmap:EEXIST": "a region's fixed address is taken on the host (MAP_FIXED_NOREPLACE): its steps failed",
};

/** The notes for a run's errors, in words. */
export function explainErrors(errors: Readonly<Record<string, number>>): string[] {
  return Object.keys(errors).filter((k) => EXPLAIN[k]).map((k) => `${EXPLAIN[k]!} (${k} ×${errors[k]!})`);
}

export interface RunOptions {
  /** each step's seconds too (the cost model's micro-programs) */
  readonly steps?: boolean;
  /** kill the run after this long (default 600 s) */
  readonly timeoutSeconds?: number;
  /** a build other than the cached one */
  readonly build?: NativeBuild;
}

/**
 * Runs a program (or its text) on the host kernel. Throws NativeError when the companion could
 * not run it (no build: check `buildNative()` first; a parse error; a runtime error of the host).
 */
export function runNative(program: Program | string, options: RunOptions = {}): NativeRun {
  const b = options.build ?? buildNative();
  if (!b.ok) throw new NativeError(b.reason, "runtime");
  const text = typeof program === "string" ? program : programToText(program);
  const timeout = options.timeoutSeconds ?? 600;
  const args = ["--timeout", String(timeout), ...(options.steps ? ["--steps"] : [])];
  const r = spawnSync(b.binary, args, {
    input: text, encoding: "utf8", maxBuffer: 256 << 20, timeout: (timeout + 30) * 1000, stdio: ["pipe", "pipe", "pipe"],
  });
  const stderr = (r.stderr ?? "").trim();
  if (r.error) throw new NativeError(`the native companion did not run: ${r.error.message}`, "crash");
  if (r.status === EXIT_PARSE) throw new NativeError(`the native companion rejected the program (a bug of programToText() or of the companion): ${stderr}`, "parse");
  const line = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  let out: Record<string, unknown>;
  try {
    out = JSON.parse(line) as Record<string, unknown>;
  } catch {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`;
    throw new NativeError(`the native companion ${how} without a result${stderr ? `: ${stderr}` : ""}`, "crash");
  }
  if (r.status === EXIT_RUNTIME || typeof out["error"] === "string") {
    throw new NativeError(`the native companion failed on the host: ${String(out["error"] ?? stderr)}`, "runtime");
  }
  if (r.status !== 0) throw new NativeError(`the native companion exited with ${r.status}${stderr ? `: ${stderr}` : ""}`, "crash");
  return parseRun(out);
}

/** The companion's JSON, checked field by field. */
function parseRun(o: Record<string, unknown>): NativeRun {
  const num = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new NativeError(`the native companion printed a bad ${what}: ${JSON.stringify(v)}`, "crash");
    return v;
  };
  const counts = (v: unknown, what: string): Record<string, number> => {
    if (!v || typeof v !== "object") throw new NativeError(`the native companion printed no ${what}`, "crash");
    return Object.fromEntries(Object.entries(v).map(([k, n]) => [k, num(n, `${what} ${k}`)]));
  };
  const opsIn = o["ops"];
  if (!opsIn || typeof opsIn !== "object") throw new NativeError("the native companion printed no ops", "crash");
  const ops: Record<string, NativeOp> = {};
  for (const [k, v] of Object.entries(opsIn as Record<string, Record<string, unknown>>)) {
    ops[k] = { count: num(v["count"], `${k}.count`), pages: num(v["pages"], `${k}.pages`), seconds: num(v["seconds"], `${k}.seconds`) };
  }
  const errors = counts(o["errors"], "errors");
  const stepSeconds = Array.isArray(o["stepSeconds"]) ? (o["stepSeconds"] as unknown[]).map((s, i) => num(s, `stepSeconds[${i}]`)) : undefined;
  return {
    kernel: String(o["kernel"] ?? ""),
    steps: num(o["steps"], "steps"),
    processes: num(o["processes"], "processes"),
    seconds: num(o["seconds"], "seconds"),
    accesses: num(o["accesses"], "accesses"),
    incoherentPins: num(o["incoherentPins"], "incoherentPins"),
    swap: o["swap"] === true,
    ops,
    errors,
    unsupported: counts(o["unsupported"], "unsupported"),
    ...(stepSeconds ? { stepSeconds } : {}),
    notes: explainErrors(errors),
  };
}

/**
 * The row's kernel measurement from a native run of the same program: the ratio of host to
 * simulated seconds, and the estimate's error against the host when an estimate is given.
 */
export function kernelMeasurement(run: NativeRun, simulatedSeconds: number, estimate?: KernelEstimate): KernelMeasurement {
  const notes = [...run.notes, ...Object.keys(run.unsupported)];
  return {
    seconds: run.seconds,
    ratio: simulatedSeconds > 0 ? run.seconds / simulatedSeconds : 0,
    ...(estimate && run.seconds > 0 ? { estimateError: (estimate.seconds - run.seconds) / run.seconds } : {}),
    ...(Object.keys(run.errors).length ? { failures: run.errors } : {}),
    ...(notes.length ? { notes } : {}),
  };
}

/** `--vs-kernel` for one row: the measurement, or the reason it was skipped (no cc, no source). */
export function measureOnKernel(program: Program, simulatedSeconds: number, estimate?: KernelEstimate):
  { readonly measurement: KernelMeasurement; readonly run: NativeRun } | { readonly skipped: string } {
  const b = buildNative();
  if (!b.ok) return { skipped: b.reason };
  const run = runNative(program, { build: b });
  return { measurement: kernelMeasurement(run, simulatedSeconds, estimate), run };
}

/** The host, as a cost model's key: CPU model and count, kernel release, architecture, memory. */
export function hostMachine(): string {
  const cpus = cpus_();
  return `${cpus[0]?.model.trim() ?? "unknown CPU"} ×${cpus.length}, Linux ${release()} ${arch()}, ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

const COST_MODEL_VERSION = 1;

/**
 * Measures the cost model on this host: every calibration program run `rounds` times by the
 * companion (the swap one only with swap), each cost the median of its rounds. Throws
 * NativeError when the companion cannot run (check buildNative() first).
 */
export function measureCostModel(options: { pages?: number; rounds?: number; build?: NativeBuild } = {}): CostModel {
  const pages = options.pages ?? 4096;
  const rounds = Math.max(1, options.rounds ?? 5);
  const costs: Record<string, number> = {};
  const notes = new Set<string>();
  let kernel = "";
  for (const c of calibrationPrograms(pages)) {
    const per: Record<string, number>[] = [];
    let skipped = false;
    for (let r = 0; r < rounds && !skipped; r++) {
      const run = runNative(c.program, { steps: true, ...(options.build ? { build: options.build } : {}) });
      kernel = run.kernel;
      if (c.needsSwap && !run.swap) {
        notes.add(`${c.name}: the host has no swap, swapOut and swapIn are not measured`);
        skipped = true;
        break;
      }
      const failed = Object.keys(run.errors);
      if (failed.length) {
        notes.add(`${c.name}: steps failed on the host (${failed.join(", ")}), its costs are not measured${run.notes.length ? `: ${run.notes.join("; ")}` : ""}`);
        skipped = true;
        break;
      }
      per.push(c.derive(run.stepSeconds ?? [], costs, run.seconds));
    }
    if (!skipped) Object.assign(costs, medianCosts(per));
  }
  return { machine: hostMachine(), costs, kernel, pages, rounds, notes: [...notes], version: COST_MODEL_VERSION };
}

/**
 * The cost model for this host from `file` when it was measured here (same machine, same
 * version), else measured now and written there, so a bench run measures it once. Without a
 * companion (no cc) it returns the reason instead.
 */
export function cachedCostModel(file: string, options: { pages?: number; rounds?: number } = {}): CostModel | { readonly skipped: string } {
  const machine = hostMachine();
  if (existsSync(file)) {
    try {
      const m = JSON.parse(readFileSync(file, "utf8")) as CostModel;
      if (m.machine === machine && m.version === COST_MODEL_VERSION && m.costs && typeof m.costs === "object") return m;
    } catch {
      // a torn or foreign file: measured again and replaced
    }
  }
  const b = buildNative();
  if (!b.ok) return { skipped: b.reason };
  const model = measureCostModel({ ...options, build: b });
  mkdirSync(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(model, null, 2) + "\n");
  renameSync(partial, file);
  return model;
}
