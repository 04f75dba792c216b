/**
 * The rules of createKernel()'s options, in one place: what each option may be, and what the
 * machine is made of once they hold. The kernel refuses options that break a rule (EINVAL, with
 * these messages), and the scenario loader reports them at the lines of a scenario's `kernel:`
 * block before anything runs — a machine that cannot be built is never found out half-way.
 *
 * Messages speak the user's vocabulary (bytes, sizes such as "16M", pages), never the core's
 * (frames, swap slots, Wasm pages), and each begins with the option's name, so that it reads
 * alone ("EINVAL: memory must be …") as well as under a prefix ("kernel.memory must be …").
 *
 * The strategy and its knobs are not judged here: makeStrategy() knows them.
 */
import { coreModule, planBytes, MAX_MEMORY_BYTES, type CoreBuild, type CoreWasm } from "../core/wasm.js";
import { parseSize } from "../util/size.js";
import { closest } from "../util/closest.js";
import { thpPolicyOf, type ThpPolicy } from "./huge_memory.js";
import { DEFAULT_MAX_MAP_COUNT, PAGE_SIZE } from "./uapi.js";

/** One option that breaks its rule. @public */
export interface OptionProblem {
  /** The option's key, dotted below `transient`: "memory", "transient.lruBatch". */
  readonly option: string;
  /** What is wrong, beginning with the option's name. */
  readonly message: string;
}

const K = 2 ** 10, M = 2 ** 20, G = 2 ** 30;

/**
 * The range of each numeric option, where it comes from:
 * - memory: Core.create() takes 16 to 2^26 frames (64K … 256G of simulated RAM);
 * - swap: fewer than 2^27 swap slots, one of which is the swap header (as in Linux), so whole
 *   gigabytes up to 511G;
 * - dataBytes: real bytes kept per page, at most the page itself;
 * - seed: the PRNG (mulberry32) keeps 32 bits — a larger seed would silently equal a smaller one;
 * - lruBatch: the per-CPU batch has 32 slots (CTX_LRU_SLOTS in assembly/layout.ts; Linux's
 *   folio_batch holds 31, 15 before 6.x);
 * - maxProcesses, pageTables: the core's mm table and page-table pool (2^20 entries each);
 * - maxMapCount: vm.max_map_count's sysctl range in Linux (proc_dointvec_minmax, 0 … INT_MAX).
 * Besides its own range, the whole machine must fit in the 4 GiB a wasm32 memory can address.
 * @public
 */
export const KERNEL_OPTION_LIMITS = {
  memory: { min: 16 * PAGE_SIZE, max: 2 ** 26 * PAGE_SIZE },
  swap: { min: 0, max: 511 * G },
  dataBytes: { min: 0, max: PAGE_SIZE },
  seed: { min: 0, max: 2 ** 32 - 1 },
  lruBatch: { min: 0, max: 32 },
  isolation: { min: 0, max: 1 },
  migration: { min: 0, max: 1 },
  maxProcesses: { min: 1, max: 2 ** 20 },
  maxMapCount: { min: 0, max: 2 ** 31 - 1 },
  pageTables: { min: 4, max: 2 ** 20 },
} as const;

/** What an option left out stands for. @public */
export const KERNEL_OPTION_DEFAULTS = {
  memory: 256 * M, dataBytes: 0, seed: 1, isolation: 0, migration: 0, maxProcesses: 256, maxMapCount: DEFAULT_MAX_MAP_COUNT,
  checkInvariants: false, oracle: true, explain: true, build: "release" as CoreBuild,
} as const;

/** Thread contexts a kernel's machine has: its own and a few workers'. */
const KERNEL_THREADS = 4;
/** Core.create()'s per-thread scratch area, which the plan counts. */
const SCRATCH_BYTES = 64 * K;

/** The machine Core.create() is asked for, every size explicit. @public */
export interface KernelCoreSizes {
  readonly frames: number;
  readonly swapSlots: number;
  readonly pageTables: number;
  readonly maxMms: number;
  readonly maxThreads: number;
  readonly dataBytes: number;
  readonly build: CoreBuild;
  /** The compiled core the embedder passed, if any. */
  readonly wasm?: CoreWasm;
}

/** The options once every rule holds: defaults filled in, sizes in bytes. @public */
export interface KernelOptionValues {
  /** Bytes of simulated RAM (the machine has them rounded up to whole pages). */
  readonly memory: number;
  /** Bytes of swap. */
  readonly swap: number;
  readonly dataBytes: number;
  readonly seed: number;
  /** The per-CPU LRU batch's size; `true`: the strategy's own (15 or 31). 0 is off. */
  readonly lruBatch: number | true;
  readonly isolation: number;
  readonly migration: number;
  readonly maxProcesses: number;
  readonly maxMapCount: number;
  readonly checkInvariants: boolean;
  readonly oracle: boolean;
  readonly explain: boolean;
  readonly build: CoreBuild;
  /** The THP policy, resolved. */
  readonly thp: ThpPolicy;
  /** What to pass to Core.create(). */
  readonly core: KernelCoreSizes;
}

/** The verdict on a set of options: every problem, and the values when there are none. @public */
export interface KernelOptionsCheck {
  readonly problems: readonly OptionProblem[];
  readonly values?: KernelOptionValues;
}

/** A size as a person writes it: the largest unit that divides it exactly ("64K", "511G"). */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [["T", 2 ** 40], ["G", G], ["M", M], ["K", K]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes} bytes`;
}

/** A size rounded down to a whole unit, for "at most …" (where rounding up would not fit). */
function sizeAtMost(bytes: number): string {
  for (const [unit, n] of [["G", G], ["M", M], ["K", K]] as const) {
    if (bytes >= 16 * n) return `${Math.floor(bytes / n)}${unit}`;
  }
  return formatSize(bytes);
}

/** The user's value as they wrote it: strings quoted, as JSON would. */
function given(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 40) + "…" : s;
  } catch {
    return String(v);
  }
}

/** Bytes from a size: a number, "256M", "1.5K", or "3 pages"; undefined when it is none. */
function bytesOf(v: unknown): number | undefined {
  if (typeof v === "string") {
    const m = /^\s*([0-9]+)\s*pages?\s*$/.exec(v);
    if (m) {
      const b = Number(m[1]) * PAGE_SIZE;
      return Number.isSafeInteger(b) ? b : undefined;
    }
  } else if (typeof v !== "number") return undefined;
  try {
    return parseSize("size", v);
  } catch {
    return undefined;
  }
}

/** Core.create()'s default pool: 4 page tables per 2 MiB of memory, 4 per mm, 64 spare. */
function defaultPageTables(frames: number, maxMms: number): number {
  return Math.min(KERNEL_OPTION_LIMITS.pageTables.max, Math.ceil(frames / 512) * 4 + 4 * maxMms + 64);
}

/** Every option createKernel() takes (`snapshot` is createKernel()'s own, checked there). */
const OPTION_NAMES = [
  "strategy", "knobs", "memory", "swap", "dataBytes", "seed", "transient", "maxProcesses", "maxMapCount", "pageTables",
  "oracle", "explain", "checkInvariants", "build", "wasm", "thp",
];

/**
 * Checks options of createKernel() (any object: a scenario's `kernel:` block converted, or a
 * program's options) against every rule. Returns every problem — not only the first — and, when
 * there is none, the values the kernel is built from.
 * @public
 */
export function validateKernelOptions(options: object): KernelOptionsCheck {
  const o = options as Readonly<Record<string, unknown>>;
  const problems: OptionProblem[] = [];
  const bad = (option: string, message: string) => { problems.push({ option, message: `${option} ${message}` }); };
  const L = KERNEL_OPTION_LIMITS;
  const D = KERNEL_OPTION_DEFAULTS;
  // a misspelt option would otherwise be its default, silently
  for (const key of Object.keys(o)) {
    if (OPTION_NAMES.includes(key) || o[key] === undefined) continue;
    const hint = closest(key, OPTION_NAMES);
    bad(key, `is no option of createKernel()${hint ? ` (did you mean ${hint}?)` : ""}; the options are ${OPTION_NAMES.join(", ")}`);
  }

  const size = (option: "memory" | "swap", v: unknown, dflt: number): number => {
    if (v === undefined) return dflt;
    const b = bytesOf(v);
    const { min, max } = L[option];
    if (b === undefined) bad(option, `must be bytes, a size such as "16M" or a number of pages such as "4 pages", not ${given(v)}`);
    else if (b < min) bad(option, `must be at least ${formatSize(min)}${option === "memory" ? ` (${min / PAGE_SIZE} pages)` : ""}, not ${given(v)}`);
    else if (b > max) bad(option, `must be at most ${formatSize(max)}, not ${given(v)}`);
    return b ?? dflt;
  };
  const whole = (option: string, v: unknown, dflt: number, { min, max }: { min: number; max: number }, what = "a whole number", why = ""): number => {
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      bad(option, `must be ${what} from ${min} to ${max}${why}, not ${given(v)}`);
      return dflt;
    }
    return v;
  };
  const flag = (option: string, v: unknown, dflt: boolean): boolean => {
    if (v === undefined) return dflt;
    if (typeof v !== "boolean") { bad(option, `must be true or false, not ${given(v)}`); return dflt; }
    return v;
  };

  const memory = size("memory", o.memory, D.memory);
  const swapGiven = o.swap !== undefined;
  const swap = size("swap", o.swap, memory);
  const dataBytes = whole("dataBytes", o.dataBytes, D.dataBytes, L.dataBytes, "a whole number of bytes");
  const seed = whole("seed", o.seed, D.seed, L.seed);
  let lruBatch: number | true = 0;
  let isolation: number = D.isolation;
  let migration: number = D.migration;
  const t = o.transient;
  if (t !== undefined && (t === null || typeof t !== "object" || Array.isArray(t))) {
    bad("transient", `must be { lruBatch, isolation, migration } (any may be left out), not ${given(t)}`);
  } else if (t !== undefined) {
    const tr = t as Readonly<Record<string, unknown>>;
    for (const key of Object.keys(tr)) {
      if (key !== "lruBatch" && key !== "isolation" && key !== "migration" && tr[key] !== undefined) bad(`transient.${key}`, "is no option of transient (lruBatch, isolation, migration)");
    }
    const lb = tr.lruBatch;
    if (lb === true) lruBatch = true;
    else if (lb !== undefined && lb !== false) {
      if (typeof lb !== "number" || !Number.isInteger(lb) || lb < L.lruBatch.min || lb > L.lruBatch.max) {
        bad("transient.lruBatch", `must be true (the strategy's batch size), false, or a batch size from ${L.lruBatch.min} to ${L.lruBatch.max} folios, not ${given(lb)}`);
      } else lruBatch = lb;
    }
    const iso = tr.isolation;
    if (iso !== undefined) {
      if (typeof iso !== "number" || !(iso >= L.isolation.min && iso <= L.isolation.max)) {
        bad("transient.isolation", `must be a probability from 0 to 1, not ${given(iso)}`);
      } else isolation = iso;
    }
    const mig = tr.migration;
    if (mig !== undefined) {
      if (typeof mig !== "number" || !(mig >= L.migration.min && mig <= L.migration.max)) {
        bad("transient.migration", `must be a probability from 0 to 1, not ${given(mig)}`);
      } else migration = mig;
    }
  }
  const maxProcesses = whole("maxProcesses", o.maxProcesses, D.maxProcesses, L.maxProcesses);
  const maxMapCount = whole("maxMapCount", o.maxMapCount, D.maxMapCount, L.maxMapCount, "a whole number", " (the range of vm.max_map_count)");
  const tablesGiven = o.pageTables !== undefined;
  const pageTables = whole("pageTables", o.pageTables, 0, L.pageTables, "a whole number of page tables");
  const checkInvariants = flag("checkInvariants", o.checkInvariants, D.checkInvariants);
  const oracle = flag("oracle", o.oracle, D.oracle);
  const explain = flag("explain", o.explain, D.explain);
  let build: CoreBuild = D.build;
  if (o.build !== undefined) {
    if (o.build !== "release" && o.build !== "debug") bad("build", `must be "release" or "debug", not ${given(o.build)}`);
    else build = o.build;
  }
  const thpCheck = thpPolicyOf(o.thp);
  for (const [option, message] of thpCheck.problems) bad(option, message);
  if (problems.length) return { problems };
  const thp = thpCheck.policy!;

  const sizes = (mem: number, sw: number, data: number, mms: number, tables: number): KernelCoreSizes => {
    const frames = Math.ceil(mem / PAGE_SIZE);
    return {
      frames,
      // one slot more than the pages of swap: slot 0 is the swap header, as in Linux
      swapSlots: Math.ceil((swapGiven ? sw : mem) / PAGE_SIZE) + 1,
      pageTables: tablesGiven ? tables : defaultPageTables(frames, mms),
      maxMms: mms, maxThreads: KERNEL_THREADS, dataBytes: data, build,
      ...(o.wasm !== undefined ? { wasm: o.wasm as CoreWasm } : {}),
    };
  };
  const core = sizes(memory, swap, dataBytes, maxProcesses, pageTables);
  const fit = machineFit(core, { memory, swap, dataBytes, maxProcesses, pageTables }, options, sizes);
  if (fit) return { problems: [fit] };
  return {
    problems: [],
    values: { memory, swap, dataBytes, seed, lruBatch, isolation, migration, maxProcesses, maxMapCount, checkInvariants, oracle, explain, build, thp, core },
  };
}

type Sized = { memory: number; swap: number; dataBytes: number; maxProcesses: number; pageTables: number };

/** Bytes of Wasm memory the machine needs (layout_plan() of the core), or undefined when the core is not built. */
function planOf(c: KernelCoreSizes): number | undefined {
  let module: WebAssembly.Module;
  try {
    module = coreModule(c.build, c.wasm);
  } catch {
    return undefined; // Core.create() will say that the core is not built
  }
  return planBytes(module, [c.frames, c.pageTables, c.swapSlots, c.maxMms, c.maxThreads, c.dataBytes, SCRATCH_BYTES]);
}

/**
 * The whole machine must fit in a wasm32 memory. When it does not, the problem is laid at the
 * first option the user gave whose lowering alone would make it fit, with the most that fits.
 */
function machineFit(
  core: KernelCoreSizes, v: Sized, options: object,
  sizes: (mem: number, sw: number, data: number, mms: number, tables: number) => KernelCoreSizes,
): OptionProblem | undefined {
  const need = planOf(core);
  if (need === undefined || need <= MAX_MEMORY_BYTES) return undefined;
  const fits = (c: KernelCoreSizes) => (planOf(c) ?? 0) <= MAX_MEMORY_BYTES;
  const o = options as Readonly<Record<string, unknown>>;
  const L = KERNEL_OPTION_LIMITS;
  /** The largest n in [lo, hi] with ok(n), when ok(lo) holds; ok must be monotone. */
  const largest = (lo: number, hi: number, ok: (n: number) => boolean): number | undefined => {
    if (!ok(lo)) return undefined;
    while (lo < hi) {
      const mid = Math.floor((lo + hi + 1) / 2);
      if (ok(mid)) lo = mid; else hi = mid - 1;
    }
    return lo;
  };
  type Lever = { option: keyof Sized; shown: string; most: () => string | undefined };
  const levers: Lever[] = [
    { option: "memory", shown: formatSize(v.memory), most: () => {
      const pages = largest(L.memory.min / PAGE_SIZE, core.frames, (n) => fits(sizes(n * PAGE_SIZE, v.swap, v.dataBytes, v.maxProcesses, v.pageTables)));
      return pages === undefined ? undefined : sizeAtMost(pages * PAGE_SIZE);
    } },
    { option: "swap", shown: formatSize(v.swap), most: () => {
      const pages = largest(0, core.swapSlots - 1, (n) => fits(sizes(v.memory, n * PAGE_SIZE, v.dataBytes, v.maxProcesses, v.pageTables)));
      return pages === undefined ? undefined : sizeAtMost(pages * PAGE_SIZE);
    } },
    { option: "dataBytes", shown: String(v.dataBytes), most: () => {
      const n = largest(0, v.dataBytes, (d) => fits(sizes(v.memory, v.swap, d, v.maxProcesses, v.pageTables)));
      return n === undefined ? undefined : `${n} bytes`;
    } },
    { option: "maxProcesses", shown: String(v.maxProcesses), most: () => {
      const n = largest(1, v.maxProcesses, (m) => fits(sizes(v.memory, v.swap, v.dataBytes, m, v.pageTables)));
      return n === undefined ? undefined : `${n} processes`;
    } },
    { option: "pageTables", shown: String(v.pageTables), most: () => {
      const n = largest(L.pageTables.min, v.pageTables, (t) => fits(sizes(v.memory, v.swap, v.dataBytes, v.maxProcesses, t)));
      return n === undefined ? undefined : `${n} page tables`;
    } },
  ];
  // only what the user set can be lowered; the defaults alone always fit
  const set = levers.filter((l) => o[l.option] !== undefined);
  const gib = (need / G).toFixed(1);
  const others = (l: Lever) => {
    const rest = set.filter((x) => x !== l).map((x) => `${x.option} ${x.shown}`);
    return rest.length ? ` with ${rest.join(", ")}` : "";
  };
  for (const l of set) {
    const most = l.most();
    if (most === undefined) continue;
    return {
      option: l.option,
      message: `${l.option} ${l.shown} does not fit in the simulator${others(l)}: the machine would need ${gib} GiB, more than the 4 GiB a wasm32 memory can address; at most ${most} fit${/s$/.test(most) ? "" : "s"}`,
    };
  }
  const first = set[0] ?? levers[0]!;
  return {
    option: first.option,
    message: `${first.option} ${first.shown} does not fit in the simulator${others(first)}: the machine would need ${gib} GiB, more than the 4 GiB a wasm32 memory can address`,
  };
}

/** Problems as one message, for an error: "memory must be …; maxMapCount must be …". @public */
export function formatOptionProblems(problems: readonly OptionProblem[]): string {
  return problems.map((p) => p.message).join("; ");
}
