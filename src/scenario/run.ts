/**
 * Running a scenario: each run (a strategy with its knobs) on a fresh kernel, the steps in order,
 * every expectation checked — values, errors, counters, findings, invariants. A step that fails
 * unexpectedly ends its run (what follows would test nothing); an expected error does not.
 */
import {
  createKernel, uapi, validateKernelOptions, formatOptionProblems, FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE,
  type Kernel, type KernelOptions, type FailKind, type Process, type Counters, type Finding, type JournalEntry,
  type GupUser, type Access, type Pipe, type FixedBuffers, type MemoryRegion, type DirectIo, type UserPages, type Migration, type HugePageSplit, type Dmirror,
  type GupFastRace, type ShmemFile, type Userfaultfd, type UffdMsg, UffdRangeError,
  UFFD_API, O_NONBLOCK, O_CLOEXEC, UFFD_USER_MODE_ONLY, UFFDIO_WRITEPROTECT_MODE_WP, UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
  UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP, UFFDIO_REGISTER_MODE_MINOR, UFFD_PAGEFAULT_FLAG_WRITE,
  UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_MINOR, PM_UFFD_WP,
} from "../kernel.js";
const hex = (a: number) => "0x" + a.toString(16);
import { CowsimError, ERRNO, type ErrnoName } from "../errno.js";
import { addressOf, kernelOptionsOf, rangeNameOf, runsOf, sizeOf } from "./resolve.js";
import { STEP_SCHEMAS, UFFD_FEATURE_NAMES } from "./schema.js";
import type { ExpectedValue, LoadedScenario, Outcome, PerRun, Reference, RunSpec, Step } from "./types.js";

/** One failed expectation. @public */
export interface Failure {
  /** The step (0-based) it belongs to; absent for the scenario's final expectations. */
  readonly step?: number;
  readonly line: number;
  readonly message: string;
}

/** A link of a finding's explanation, tied back to the scenario's step and line. @public */
export interface ExplainedLink extends JournalEntry {
  readonly n: number;
  /** The scenario step that made the kernel do it (0-based), or null (set-up, an older step). */
  readonly scenarioStep: number | null;
  readonly line: number | null;
  /** The counter this decision added to, if any. */
  readonly counter?: string;
}

/** A finding of a run, tied back to the scenario. @public */
export interface ScenarioFinding {
  readonly kind: Finding["kind"];
  readonly scenarioStep: number | null;
  readonly line: number | null;
  readonly pid: number;
  readonly address: number;
  readonly summary: string;
  readonly chain: readonly ExplainedLink[];
}

/** What one step did in one run. @public */
export interface StepRecord {
  readonly index: number;
  readonly line: number;
  readonly op: string;
  /** The step as one line of text: "parent: write(buf, 2)". */
  readonly text: string;
  readonly pid: number | null;
  readonly value?: number | readonly number[];
  readonly error?: string;
  /** Kernel decisions during the step (when traced). */
  readonly entries?: readonly JournalEntry[];
  /** Counters after the step (when traced). */
  readonly counters?: Counters;
}

/** One run of a scenario. @public */
export interface RunResult {
  readonly run: string;
  readonly strategy: string;
  readonly kernels: string;
  readonly knobs: Readonly<Record<string, boolean>>;
  readonly pass: boolean;
  readonly failures: readonly Failure[];
  readonly counters: Counters;
  readonly findings: readonly ScenarioFinding[];
  readonly latentMissedCows: number;
  readonly steps: readonly StepRecord[];
  /** Simulated pid → the scenario's name for it. */
  readonly processNames: Readonly<Record<number, string>>;
}

/** A scenario's runs. @public */
export interface ScenarioResult {
  readonly file: string;
  readonly name: string;
  readonly line: number;
  readonly reference: readonly Reference[];
  readonly pass: boolean;
  readonly runs: readonly RunResult[];
}

/** How runScenario() runs. @public */
export interface RunOptions {
  /** Keep each step's kernel decisions and counters, for --trace. */
  readonly trace?: boolean;
  /** Which compilation of the core. */
  readonly build?: KernelOptions["build"];
}

const isKeyed = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A per-run value for one run: its own entry, else all's. */
export function pick<T>(v: PerRun<T> | undefined, run: string): T | undefined {
  if (!isKeyed(v)) return v as T | undefined;
  return (run in v ? v[run] : v.all) as T | undefined;
}

/** The expected outcome of a run: all's entries, the run's own winning (counters key by key). */
export function outcomeFor(expect: Readonly<Record<string, Outcome>> | undefined, run: string): Outcome {
  const all = expect?.all ?? {};
  const own = expect?.[run] ?? {};
  const counters = all.counters || own.counters ? { ...all.counters, ...own.counters } : undefined;
  return { ...all, ...own, ...(counters ? { counters } : {}) };
}

const MADV = Object.fromEntries(Object.entries(uapi.MADV_NAMES).map(([n, name]) => [name, Number(n)])) as Record<string, number>;
const FOLL: Record<string, number> = { FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE };
const MAP: Record<string, number> = {
  MAP_PRIVATE: uapi.MAP_PRIVATE, MAP_SHARED: uapi.MAP_SHARED, MAP_ANONYMOUS: uapi.MAP_ANONYMOUS, MAP_FIXED: uapi.MAP_FIXED,
  MAP_FIXED_NOREPLACE: uapi.MAP_FIXED_NOREPLACE, MAP_POPULATE: uapi.MAP_POPULATE, MAP_NORESERVE: uapi.MAP_NORESERVE,
};
const MFD: Record<string, number> = {
  MFD_CLOEXEC: uapi.MFD_CLOEXEC, MFD_ALLOW_SEALING: uapi.MFD_ALLOW_SEALING, MFD_HUGETLB: uapi.MFD_HUGETLB,
  MFD_NOEXEC_SEAL: uapi.MFD_NOEXEC_SEAL, MFD_EXEC: uapi.MFD_EXEC,
};
const FALLOC: Record<string, number> = {
  FALLOC_FL_KEEP_SIZE: uapi.FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE: uapi.FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_COLLAPSE_RANGE: uapi.FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_ZERO_RANGE: uapi.FALLOC_FL_ZERO_RANGE,
  FALLOC_FL_INSERT_RANGE: uapi.FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE: uapi.FALLOC_FL_UNSHARE_RANGE,
};
const MREMAP: Record<string, number> = { MREMAP_MAYMOVE: uapi.MREMAP_MAYMOVE, MREMAP_FIXED: uapi.MREMAP_FIXED, MREMAP_DONTUNMAP: uapi.MREMAP_DONTUNMAP };
const PROT: Record<string, number> = { PROT_NONE: 0, PROT_READ: uapi.PROT_READ, PROT_WRITE: uapi.PROT_WRITE, PROT_EXEC: uapi.PROT_EXEC };

function protOf(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((acc: number, n: string) => acc | PROT[n]!, 0);
  const s = (v as string | undefined) ?? "rw";
  if (s === "none") return uapi.PROT_NONE;
  return (s.includes("r") ? uapi.PROT_READ : 0) | (s.includes("w") ? uapi.PROT_WRITE : 0) | (s.includes("x") ? uapi.PROT_EXEC : 0);
}
const flagsOf = (v: unknown, table: Record<string, number>, dflt: readonly string[]) =>
  ((v as string[] | undefined) ?? dflt).reduce((acc, n) => acc | table[n]!, 0);

/** Ops made by a process (the others are a device's, or the machine's). */
const TAKES_PROCESS = new Set(STEP_SCHEMAS.map((o) => o as { properties: { op: { const: string }; process?: unknown } })
  .filter((o) => o.properties.process !== undefined).map((o) => o.properties.op.const));

/** Each step's text, made once for all the runs of its scenario. */
const textOf = new WeakMap<Step, { dflt: string; text: string }>();

/** The step as a line of text. */
export function stepText(step: Step, dfltProcess: string): string {
  const known = textOf.get(step);
  if (known !== undefined && known.dflt === dfltProcess) return known.text;
  const text = writeStep(step, dfltProcess);
  textOf.set(step, { dflt: dfltProcess, text });
  return text;
}

function writeStep(step: Step, dfltProcess: string): string {
  const fields = Object.entries(step)
    .filter(([k]) => !["op", "process", "expect", "error", "comment", "as"].includes(k))
    .map(([k, v]) => (k === "addr" || k === "file" || k === "pipe" || k === "buffer" || k === "region" || k === "request" || k === "pin" || k === "gup" || k === "isolated" ? String(v) : `${k}: ${Array.isArray(v) ? `[${v.join(", ")}]` : String(v)}`));
  const who = TAKES_PROCESS.has(step.op) ? `${step.process ?? dfltProcess}: ` : "";
  return `${who}${step.op}(${fields.join(", ")})${step.as !== undefined ? ` → ${String(step.as)}` : ""}`;
}

/** A migrate step's expected statuses as move_pages(2) reports them: errno names become -errno. */
const statusesOf = (v: readonly (number | string)[]): number[] => v.map((x) => (typeof x === "string" ? -ERRNO[x as ErrnoName] : x));

/** A scenario-level problem while running (a name not mapped, a page beyond a range). */
class StepProblem extends Error {}
/** A step's result is not what it expects (a message read, the ioctls reported). */
class StepMismatch extends StepProblem {}

const UFFD_REGISTER_MODES: Readonly<Record<string, number>> = {
  MISSING: UFFDIO_REGISTER_MODE_MISSING, WP: UFFDIO_REGISTER_MODE_WP, MINOR: UFFDIO_REGISTER_MODE_MINOR,
};
const UFFD_FAULT_FLAGS: Readonly<Record<string, number>> = {
  WRITE: UFFD_PAGEFAULT_FLAG_WRITE, WP: UFFD_PAGEFAULT_FLAG_WP, MINOR: UFFD_PAGEFAULT_FLAG_MINOR,
};
/** A feature mask from the schema's feature names (UFFD_FEATURE_NAMES is in bit order). */
const uffdFeatures = (names: unknown) => ((names as string[] | undefined) ?? []).reduce((acc, n) => acc | (1 << UFFD_FEATURE_NAMES.indexOf(n)), 0);
const describeMsg = (m: UffdMsg) => m.event === "pagefault"
  ? `a fault at ${hex(m.address)} with flags ${["WRITE", "WP", "MINOR"].filter((_, i) => m.flags & (1 << i)).join("|") || "0"}`
  : `a ${m.event} message`;

const sameValue = (a: unknown, b: ExpectedValue) =>
  Array.isArray(b) ? Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]) : a === b;
const showValue = (v: unknown) => (Array.isArray(v) ? `[${v.join(", ")}]` : String(v));

/** The counter each kind of finding adds to, named on the last step of its chain. */
const FINDING_COUNTER = { "missed-cow": "missedCow", "unnecessary-cow": "unnecessaryCow", "wrong-cow": "wrongCow" } as const;

class Runner {
  readonly k: Kernel;
  readonly procs = new Map<string, Process>();
  readonly names: Record<number, string> = {};
  readonly ranges = new Map<string, { addr: number; length: number }>();
  readonly handles = new Map<string, GupUser | Migration | Dmirror | GupFastRace | HugePageSplit | Userfaultfd | number>();
  /** memfds, by name. */
  readonly files = new Map<string, ShmemFile>();
  /** Accesses that may wait (read/write with `as`), by name. */
  readonly accesses = new Map<string, Access>();
  private lastAccess: Access | undefined;
  /** What the last gup_fast_begin or gup_fast_end step's GUP-fast ended with. */
  private lastGupReason: string | undefined;
  /** The result field of the last userfaultfd range ioctl that failed (UffdRangeError.result). */
  private lastUffdResult: number | undefined;
  readonly failures: Failure[] = [];
  readonly records: StepRecord[] = [];
  /** The last journal step of each scenario step, to tie findings back to steps. */
  readonly journalEnd: number[] = [];
  readonly dflt: string;

  constructor(readonly ls: LoadedScenario, readonly spec: RunSpec, readonly opts: RunOptions) {
    const s = ls.scenario;
    // the loader has checked these options (they are the same rules); a program that made its
    // LoadedScenario by hand is told here, before any run
    const { options, sizes } = checkedOptions(ls, opts);
    this.k = createKernel({
      ...options,
      // sizes in bytes: the scenario may write them as pages ("32 pages")
      ...sizes,
      strategy: spec.strategy,
      knobs: spec.knobs ?? {},
      ...(opts.build ? { build: opts.build } : {}),
    });
    for (const name of s.processes ?? ["main"]) this.addProcess(name, this.k.spawn());
    this.dflt = (s.processes ?? ["main"])[0]!;
  }

  private addProcess(name: string, p: Process): void {
    this.procs.set(name, p);
    this.names[p.pid] = name;
  }

  private proc(step: Step, field = "process"): Process {
    const name = (step[field] as string | undefined) ?? this.dflt;
    return this.procs.get(name)!;
  }

  private addr(v: unknown): number {
    try {
      return addressOf(v as number | string, this.ranges);
    } catch (e) {
      throw new StepProblem((e as Error).message);
    }
  }

  /** The bytes a step covers: length or pages, else the whole range its address names. */
  private length(step: Step): number {
    if (step.length !== undefined) return sizeOf("length", step.length as number | string);
    if (step.pages !== undefined) return (step.pages as number) * uapi.PAGE_SIZE;
    const r = this.ranges.get(rangeNameOf(step.addr)!);
    if (!r) throw new StepProblem(`no range "${String(step.addr)}"`);
    return r.length;
  }

  /** A range step's length, where a page of a range (`buf[3]`) with no length is that one page. */
  private onePageOr(step: Step): number {
    return typeof step.addr === "string" && /\[[0-9]+\]/.test(step.addr) && step.length === undefined && step.pages === undefined
      ? uapi.PAGE_SIZE : this.length(step);
  }

  private handle<T extends GupUser | Migration | Dmirror | GupFastRace | HugePageSplit | Userfaultfd | number>(step: Step, field: string): T {
    const h = this.handles.get(step[field] as string);
    // only a GUP-fast that backed off leaves a name the checks let through: a caller using
    // pages pin_user_pages_fast() did not return, which a run may expect (EINVAL)
    if (h === undefined) throw new CowsimError("EINVAL", `${field} "${String(step[field])}" holds nothing: its GUP-fast backed off`);
    return h as T;
  }

  /** Does one step; returns what it returned, if anything. */
  private exec(step: Step): number | readonly number[] | undefined {
    const k = this.k;
    switch (step.op) {
      case "spawn": this.addProcess(step.as as string, k.spawn()); return;
      case "mmap": {
        const length = this.length(step);
        const addr = step.addr !== undefined ? this.addr(step.addr) : null;
        const file = step.file !== undefined ? this.files.get(step.file as string)! : null;
        const flags = flagsOf(step.flags, MAP, ["MAP_PRIVATE"]) | (file ? 0 : uapi.MAP_ANONYMOUS);
        const offset = step.offset !== undefined ? sizeOf("offset", step.offset as number | string) : 0;
        const a = this.proc(step).mmap(addr, length, protOf(step.prot), flags, file, offset);
        this.ranges.set(step.as as string, { addr: a, length });
        return;
      }
      case "memfd_create":
        this.files.set(step.as as string, this.proc(step).memfdCreate((step.name as string | undefined) ?? (step.as as string), flagsOf(step.flags, MFD, [])));
        return;
      case "ftruncate": {
        const length = step.pages !== undefined ? (step.pages as number) * uapi.PAGE_SIZE : sizeOf("length", (step.length as number | string | undefined) ?? 0);
        this.proc(step).ftruncate(this.files.get(step.file as string)!, length);
        return;
      }
      case "fallocate": {
        const length = step.pages !== undefined ? (step.pages as number) * uapi.PAGE_SIZE : sizeOf("length", (step.length as number | string | undefined) ?? 0);
        const offset = step.offset !== undefined ? sizeOf("offset", step.offset as number | string) : 0;
        this.proc(step).fallocate(this.files.get(step.file as string)!, flagsOf(step.mode, FALLOC, ["FALLOC_FL_PUNCH_HOLE", "FALLOC_FL_KEEP_SIZE"]), offset, length);
        return;
      }
      case "close": this.proc(step).close(this.files.get(step.file as string)!); return;
      case "munmap": this.proc(step).munmap(this.addr(step.addr), this.length(step)); return;
      case "mprotect": this.proc(step).mprotect(this.addr(step.addr), this.length(step), protOf(step.prot)); return;
      case "mremap": {
        const newLength = step.newLength !== undefined ? sizeOf("newLength", step.newLength as number | string) : (step.newPages as number) * uapi.PAGE_SIZE;
        const flags = flagsOf(step.flags, MREMAP, []);
        const to = step.newAddr !== undefined ? this.addr(step.newAddr) : undefined;
        const a = this.proc(step).mremap(this.addr(step.addr), this.length(step), newLength, flags, to);
        const name = (step.as as string | undefined) ?? rangeNameOf(step.addr);
        if (name !== undefined) this.ranges.set(name, { addr: a, length: newLength });
        return;
      }
      case "madvise": this.proc(step).madvise(this.addr(step.addr), this.length(step), MADV[step.advice as string]!); return;
      case "pageout": this.proc(step).madvise(this.addr(step.addr), this.length(step), uapi.MADV_PAGEOUT); return;
      case "fork": this.addProcess(step.as as string, this.proc(step).fork()); return;
      case "exit": this.proc(step).exit(); return;
      case "read": case "write": {
        const write = step.op === "write";
        if (step.as === undefined) {
          if (write) this.proc(step).write(this.addr(step.addr), step.value as number);
          else return this.proc(step).read(this.addr(step.addr));
          return;
        }
        const a = this.proc(step).access(write, this.addr(step.addr), write ? (step.value as number) : 0);
        this.accesses.set(step.as as string, a);
        this.lastAccess = a;
        return a.state === "done" && !write ? a.value : undefined;
      }
      case "resume": {
        const a = this.accesses.get(step.access as string)!;
        this.lastAccess = a;
        a.resume();
        return a.state === "done" && !a.write ? a.value : undefined;
      }
      case "lock_folio": this.handles.set(step.as as string, k.lockFolioAt(this.proc(step).pid, this.addr(step.addr))); return;
      case "unlock_folio": k.unlockFolio(this.handle<number>(step, "lock")); return;
      case "hwpoison": {
        const r = k.memoryFailureAt(this.proc(step).pid, this.addr(step.addr));
        if (r.errno) throw new CowsimError(r.errno, `memory_failure(${r.pfn}): ${r.type}, ${r.result}`);
        return;
      }
      case "migrate": {
        if (step.phase === "finish") return [...this.handle<Migration>(step, "migration").finish().status];
        const length = this.onePageOr(step);
        const m = this.proc(step).migratePages(this.addr(step.addr), length, { phase: step.phase === "start" ? "start" : "all", all: (step.all as boolean | undefined) ?? false });
        if (step.as !== undefined) this.handles.set(step.as as string, m);
        return [...m.status];
      }
      case "dmirror_open": this.handles.set(step.as as string, this.proc(step).openDmirror((step.pages as number | undefined) ?? 16)); return;
      case "device_migrate": case "device_exclusive": {
        const d = this.handle<Dmirror>(step, "device");
        const pages = this.onePageOr(step) / uapi.PAGE_SIZE;
        const addr = this.addr(step.addr);
        if (step.op === "device_exclusive") return d.makeExclusive(addr, pages);
        return step.to === "system" ? d.migrateToSystem(addr, pages) : d.migrateToDevice(addr, pages);
      }
      case "device_read": return this.handle<Dmirror>(step, "device").read(this.addr(step.addr));
      case "device_write": this.handle<Dmirror>(step, "device").write(this.addr(step.addr), step.value as number); return;
      case "dmirror_remove": this.handle<Dmirror>(step, "device").remove(); return;
      case "clear_soft_dirty": this.proc(step).clearSoftDirty(); return;
      case "vmsplice": this.handles.set(step.as as string, this.proc(step).vmsplice(this.addr(step.addr), this.length(step))); return;
      case "pipe_read": return this.handle<Pipe>(step, "pipe").read(step.reader !== undefined ? this.proc(step, "reader") : undefined);
      case "io_uring_register": this.handles.set(step.as as string, this.proc(step).ioUringRegisterBuffers(this.addr(step.addr), this.length(step))); return;
      case "io_uring_device_read": return this.handle<FixedBuffers>(step, "buffer").readFixed((step.page as number | undefined) ?? 0);
      case "io_uring_device_write": this.handle<FixedBuffers>(step, "buffer").writeFixed((step.page as number | undefined) ?? 0, step.value as number); return;
      case "io_uring_unregister": this.handle<FixedBuffers>(step, "buffer").unregister(); return;
      case "o_direct_read": case "o_direct_write":
        this.handles.set(step.as as string, this.proc(step).directIo(step.op === "o_direct_read" ? "read" : "write", this.addr(step.addr), this.length(step)));
        return;
      case "o_direct_complete": {
        const io = this.handle<DirectIo>(step, "request");
        const out = io.complete((step.values as number[] | undefined) ?? []);
        return io.direction === "write" ? out : undefined;
      }
      case "rdma_register":
        this.handles.set(step.as as string, this.proc(step).rdmaRegister(this.addr(step.addr), this.length(step), (step.writable as boolean | undefined) ?? true));
        return;
      case "rdma_remote_read": return this.handle<MemoryRegion>(step, "region").remoteRead((step.page as number | undefined) ?? 0);
      case "rdma_remote_write": this.handle<MemoryRegion>(step, "region").remoteWrite((step.page as number | undefined) ?? 0, step.value as number); return;
      case "rdma_deregister": this.handle<MemoryRegion>(step, "region").deregister(); return;
      case "pin": {
        const pages = step.pages !== undefined ? (step.pages as number) : step.length !== undefined ? Math.ceil(sizeOf("length", step.length as number | string) / uapi.PAGE_SIZE) : 1;
        const flags = flagsOf(step.flags, FOLL, []);
        this.handles.set(step.as as string, this.proc(step).pinUserPages(this.addr(step.addr), pages, flags, (step.fast as boolean | undefined) ?? true));
        return;
      }
      case "gup_fast_begin": {
        const g = this.proc(step).gupFastBegin(this.addr(step.addr), flagsOf(step.flags, FOLL, []));
        this.handles.set(step.as as string, g);
        this.lastGupReason = g.reason;
        return g.reason === "OK" ? 1 : 0;
      }
      case "gup_fast_end": {
        const g = this.handle<GupFastRace>(step, "gup");
        const pinned = g.end();
        this.lastGupReason = g.reason;
        // a GUP-fast that backed off holds nothing: its name is gone
        if (pinned) this.handles.set(step.gup as string, pinned); else this.handles.delete(step.gup as string);
        return pinned ? 1 : 0;
      }
      case "userfaultfd": {
        const flags = ((step.flags as string[] | undefined) ?? []).reduce((acc, n) => acc | (n === "O_NONBLOCK" ? O_NONBLOCK : n === "O_CLOEXEC" ? O_CLOEXEC : UFFD_USER_MODE_ONLY), 0);
        const u = this.proc(step).userfaultfd(flags);
        this.handles.set(step.as as string, u);
        if (step.handshake !== false) u.api(uffdFeatures(step.features));
        return;
      }
      case "uffdio_api": this.handle<Userfaultfd>(step, "uffd").api(uffdFeatures(step.features), (step.api as number | undefined) ?? UFFD_API); return;
      case "uffdio_register": {
        const mode = ((step.mode as string[] | undefined) ?? []).reduce((acc, n) => acc | UFFD_REGISTER_MODES[n]!, 0);
        const r = this.handle<Userfaultfd>(step, "uffd").register(this.addr(step.addr), this.length(step), mode);
        const want = step.ioctls as string[] | undefined;
        if (want !== undefined && JSON.stringify([...want].sort()) !== JSON.stringify([...r.ioctls].sort())) {
          throw new StepMismatch(`expected the ioctls ${want.join(", ")}, got ${r.ioctls.join(", ")}`);
        }
        return;
      }
      case "uffdio_unregister": this.handle<Userfaultfd>(step, "uffd").unregister(this.addr(step.addr), this.length(step)); return;
      case "uffd_read": {
        const m = this.handle<Userfaultfd>(step, "uffd").read();
        if (step.event !== undefined && m.event !== step.event) throw new StepMismatch(`expected a ${String(step.event)} message, read ${describeMsg(m)}`);
        if (m.event === "pagefault") {
          if (step.address !== undefined && m.address !== this.addr(step.address)) throw new StepMismatch(`expected a fault at ${hex(this.addr(step.address))}, read ${describeMsg(m)}`);
          const flags = ((step.flags as string[] | undefined) ?? []).reduce((acc, n) => acc | UFFD_FAULT_FLAGS[n]!, 0);
          if ((step.flags !== undefined || step.event !== undefined) && m.flags !== flags) throw new StepMismatch(`expected flags [${((step.flags as string[] | undefined) ?? []).join(", ")}], read ${describeMsg(m)}`);
        }
        if (m.event === "fork" && step.as !== undefined) this.handles.set(step.as as string, m.ufd);
        return;
      }
      case "uffdio_copy": case "uffdio_zeropage": case "uffdio_continue": case "uffdio_poison": {
        const u = this.handle<Userfaultfd>(step, "uffd");
        const addr = this.addr(step.addr);
        const len = this.onePageOr(step);
        const mode = ((step.mode as string[] | undefined) ?? []).reduce((acc, n) => acc | (n === "DONTWAKE" ? 1 : 2), 0);
        try {
          return step.op === "uffdio_copy" ? u.copy(addr, len, { value: (step.value as number | undefined) ?? 0, mode })
            : step.op === "uffdio_zeropage" ? u.zeropage(addr, len, mode)
              : step.op === "uffdio_continue" ? u.continue(addr, len, mode) : u.poison(addr, len, mode);
        } catch (e) {
          if (e instanceof UffdRangeError) this.lastUffdResult = e.result;
          throw e;
        }
      }
      case "uffdio_move": {
        const mode = ((step.mode as string[] | undefined) ?? []).reduce((acc, n) => acc | (n === "DONTWAKE" ? 1 : 2), 0);
        try {
          return this.handle<Userfaultfd>(step, "uffd").move(this.addr(step.addr), this.addr(step.src), this.onePageOr(step), mode);
        } catch (e) {
          if (e instanceof UffdRangeError) this.lastUffdResult = e.result;
          throw e;
        }
      }
      case "uffdio_writeprotect": {
        const mode = ((step.mode as string[] | undefined) ?? []).reduce((acc, n) => acc | (n === "WP" ? UFFDIO_WRITEPROTECT_MODE_WP : UFFDIO_WRITEPROTECT_MODE_DONTWAKE), 0);
        this.handle<Userfaultfd>(step, "uffd").writeprotect(this.addr(step.addr), this.length(step), mode);
        return;
      }
      case "uffdio_wake": this.handle<Userfaultfd>(step, "uffd").wake(this.addr(step.addr), this.length(step)); return;
      case "pagemap_uffd_wp": return (this.proc(step).pagemap(this.addr(step.addr), 1)[0]! & PM_UFFD_WP) !== 0n ? 1 : 0;
      case "uffd_close": this.handle<Userfaultfd>(step, "uffd").close(); return;
      case "pin_read": return this.handle<UserPages>(step, "pin").read((step.page as number | undefined) ?? 0);
      case "pin_write": this.handle<UserPages>(step, "pin").write((step.page as number | undefined) ?? 0, step.value as number); return;
      case "unpin": this.handle<UserPages>(step, "pin").release(); return;
      case "isolate": this.handles.set(step.as as string, k.isolate(this.proc(step).pid, this.addr(step.addr))); return;
      case "putback": k.putback(this.handle<number>(step, "isolated")); return;
      case "reclaim": k.reclaim(step.pages as number | undefined); return;
      case "drain_lru": k.drainLru(); return;
      case "free_swap_cache": k.freeSwapCache(); return;
      case "fail_alloc":
        k.injectFailure(step.kind as FailKind, { nth: step.nth as number, ...(step.times !== undefined ? { times: step.times as number } : {}) });
        return;
      case "split_huge_page": {
        if (step.phase === "finish") return this.handle<HugePageSplit>(step, "split").finish().status;
        const sp = this.proc(step).splitHugePage(this.addr(step.addr), { phase: step.phase === "start" ? "start" : "all" });
        if (step.as !== undefined) this.handles.set(step.as as string, sp);
        return sp.status;
      }
      case "split_huge_pages": {
        const a = this.addr(step.addr);
        k.splitHugePages(this.proc(step).pid, a, a + this.length(step));
        return;
      }
      case "deferred_split_scan": k.deferredSplitScan(); return;
      case "khugepaged": k.khugepaged(); return;
      case "pmd_mapped": return this.proc(step).pmdMapped(this.addr(step.addr)) ? 1 : 0;
      case "check_invariants": k.assertInvariants("check_invariants"); return;
      case "counters": return;
      default: throw new StepProblem(`unknown op ${step.op}`);
    }
  }

  run(): RunResult {
    const { scenario: s, stepAt } = this.ls;
    const run = this.spec.name;
    const journal = this.k.journal!;
    let stopped = false;
    for (let i = 0; i < s.steps.length && !stopped; i++) {
      const step = s.steps[i]!;
      const line = stepAt[i]!.line;
      const where = `step ${i + 1} (line ${line}) ${step.op}`;
      const fail = (message: string) => this.failures.push({ step: i, line, message: `${where}: ${message}` });
      const wantError = pick(step.error, run) ?? null;
      const cursor = journal.entryCount;
      const pid = TAKES_PROCESS.has(step.op) ? this.proc(step).pid : null;
      let value: number | readonly number[] | undefined;
      let error: string | undefined;
      this.lastAccess = undefined;
      this.lastGupReason = undefined;
      this.lastUffdResult = undefined;
      try {
        value = this.exec(step);
        if (wantError) fail(`expected ${wantError}, but the step succeeded`);
      } catch (e) {
        if (e instanceof CowsimError) {
          error = e.errno;
          if (wantError !== e.errno) {
            fail(wantError ? `expected ${wantError}, got ${e.message}` : `unexpected ${e.message}`);
            stopped = true;
          }
        } else {
          error = e instanceof StepProblem ? "scenario" : "invariant";
          fail((e as Error).message);
          stopped = true;
        }
      }
      const wantRaw = step.op === "counters" ? undefined : pick(step.expect as PerRun<ExpectedValue> | undefined, run);
      const want = (step.op === "migrate" || step.op === "device_migrate" || step.op === "device_exclusive") && Array.isArray(wantRaw) ? statusesOf(wantRaw as readonly (number | string)[])
        : step.op === "split_huge_page" && typeof wantRaw === "string" ? statusesOf([wantRaw])[0] : wantRaw;
      // exec() may have set it (TypeScript cannot see that through the call)
      const last = this.lastAccess as Access | undefined;
      const blocked = last?.state === "blocked";
      if (want !== undefined && error === undefined && !blocked && !sameValue(value, want)) fail(`expected ${showValue(want)}, got ${showValue(value)}`);
      const wantResult = pick(step.result as PerRun<number | "untouched"> | undefined, run);
      if (wantResult !== undefined) {
        const got = this.lastUffdResult ?? (typeof value === "number" ? value : undefined);
        // a failure before the kernel's put_user() leaves the field as the caller set it
        const gotText = got === undefined && error !== undefined ? "untouched" : got;
        if (gotText !== wantResult) fail(`expected the result field ${wantResult}, got ${gotText}`);
      }
      const wantReason = pick(step.reason as PerRun<string> | undefined, run);
      if (wantReason !== undefined && error === undefined && this.lastGupReason !== wantReason) fail(`expected GUP-fast ${wantReason}, got ${this.lastGupReason}`);
      const wantBlocked = pick(step.blocked as PerRun<boolean> | undefined, run);
      if (error === undefined && last !== undefined) {
        const what = last.waitingOn?.what;
        if (wantBlocked === true && !blocked) fail("expected the access to stand blocked, but it is done");
        else if (wantBlocked !== true && blocked) fail(`the access waits for ${what}${wantBlocked === false ? ", but was expected done" : " (say blocked: true, and resume it once woken)"}`);
        else if (want !== undefined && blocked) fail(`expected ${showValue(want)}, but the access waits for ${what}`);
      }
      if (step.op === "counters" && error === undefined) {
        const wantCounters = { ...(step.expect as Record<string, Record<string, number>>).all, ...(step.expect as Record<string, Record<string, number>>)[run] };
        const now = this.k.counters();
        for (const [name, n] of Object.entries(wantCounters)) if (now[name] !== n) fail(`counter ${name}: expected ${n}, got ${now[name]}`);
      }
      this.journalEnd.push(journal.step);
      this.records.push({
        index: i, line, op: step.op, text: stepText(step, this.dflt), pid,
        ...(value !== undefined ? { value } : {}), ...(error !== undefined ? { error } : {}),
        ...(this.opts.trace ? { entries: journal.entriesSince(cursor), counters: this.k.counters() } : {}),
      });
    }
    const outcome = outcomeFor(this.ls.scenario.expect, run);
    const counters = this.k.counters();
    const findings = this.k.findings.map((f) => this.tie(f));
    const latent = this.k.latentMissedCows().length;
    const line = this.ls.at.line;
    if (!stopped) {
      for (const [name, n] of Object.entries(outcome.counters ?? {})) {
        if (counters[name] !== n) this.failures.push({ line, message: `counter ${name}: expected ${n}, got ${counters[name]}` });
      }
      if (outcome.findings) {
        const got = findings.map((f) => f.kind);
        if (got.join() !== outcome.findings.join()) {
          this.failures.push({ line, message: `findings: expected [${outcome.findings.join(", ")}], got [${got.join(", ")}]${findings.length ? ": " + findings.map((f) => f.summary).join("; ") : ""}` });
        }
      }
      if (outcome.latentMissedCows !== undefined && latent !== outcome.latentMissedCows) {
        this.failures.push({ line, message: `latent missed COWs: expected ${outcome.latentMissedCows}, got ${latent}` });
      }
      const v = this.k.checkInvariants();
      if (v.length) this.failures.push({ line, message: `invariants violated at the end: ${v.map((x) => `${x.invariant}: ${x.detail}`).join("; ")}` });
    }
    return {
      run, strategy: this.spec.strategy, kernels: this.k.strategy.kernels, knobs: this.spec.knobs ?? {},
      pass: this.failures.length === 0, failures: this.failures, counters, findings, latentMissedCows: latent,
      steps: this.records, processNames: { ...this.names },
    };
  }

  /** The scenario step a journal step belongs to. */
  private scenarioStep(journalStep: number): number | null {
    const first = this.journalEnd.findIndex((end) => end >= journalStep);
    return first < 0 ? null : first;
  }

  private tie(f: Finding): ScenarioFinding {
    const at = (j: number) => { const i = this.scenarioStep(j); return { scenarioStep: i, line: i === null ? null : this.ls.stepAt[i]!.line }; };
    const chain = f.chain.map((c) => {
      const counter = c.counter ?? (c === f.chain.at(-1) ? FINDING_COUNTER[f.kind] : undefined);
      return { ...c, ...at(c.step), ...(counter ? { counter } : {}) };
    });
    return { kind: f.kind, ...at(f.step), pid: f.pid, address: f.address, summary: f.summary, chain };
  }
}

/** A scenario's kernel options, and its sizes in bytes, checked once for all its runs. */
const checkedOf = new WeakMap<LoadedScenario, { build?: string; options: KernelOptions; sizes: { memory: number; swap: number } }>();
function checkedOptions(ls: LoadedScenario, opts: RunOptions): { options: KernelOptions; sizes: { memory: number; swap: number } } {
  const known = checkedOf.get(ls);
  if (known !== undefined && known.build === opts.build) return known;
  const options = kernelOptionsOf(ls.scenario.kernel);
  const checked = validateKernelOptions({ ...options, ...(opts.build ? { build: opts.build } : {}) });
  if (!checked.values) throw new CowsimError("EINVAL", formatOptionProblems(checked.problems));
  const made = { ...(opts.build !== undefined ? { build: opts.build } : {}), options, sizes: { memory: checked.values.memory, swap: checked.values.swap } };
  checkedOf.set(ls, made);
  return made;
}

/** Runs a loaded scenario under each of its runs. @public */
export function runScenario(ls: LoadedScenario, opts: RunOptions = {}): ScenarioResult {
  const runs = runsOf(ls.scenario).map((spec) => {
    let runner: Runner | undefined;
    try {
      runner = new Runner(ls, spec, opts);
      return runner.run();
    } catch (e) {
      // the kernel could not even be made (options out of range): the run fails at the top
      return {
        run: spec.name, strategy: spec.strategy, kernels: "", knobs: spec.knobs ?? {}, pass: false,
        failures: [{ line: ls.at.line, message: (e as Error).message }], counters: {} as Counters, findings: [],
        latentMissedCows: 0, steps: [], processNames: {},
      } satisfies RunResult;
    } finally {
      // the result is plain data: the machine goes to the next run
      runner?.k.release();
    }
  });
  return { file: ls.file, name: ls.scenario.name, line: ls.at.line, reference: ls.scenario.reference, pass: runs.every((r) => r.pass), runs };
}
