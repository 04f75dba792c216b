/**
 * What the schema cannot check: names. Processes, ranges and handles (pipes, buffers, requests,
 * regions, pins, isolated pages) must be defined by an earlier step before a step uses them;
 * addresses must name a range (and a page of it that exists, where the file says its length)
 * and stay exact below 2^53; expectations must name a run; knobs must exist. Also the parsing of
 * addresses and sizes the steps use when they run, and the kernel options a scenario's runs get
 * (whose rules are mm/options.ts's).
 */
import { STRATEGY_IDS, strategies, strategyInfo } from "../kernel.js";
import { parseSize } from "../util/size.js";
import { closest } from "../util/closest.js";
import { CowsimError } from "../errno.js";
import { PAGE_SIZE } from "../kernel.js";
import type { KernelOptions } from "../kernel.js";
import type { KernelSection, RunSpec, Scenario, Step } from "./types.js";

export interface NameProblem {
  readonly path: (string | number)[];
  readonly key?: string;
  readonly message: string;
}

/** The runs of a scenario: its `strategies`, or the three strategies with default knobs. */
export function runsOf(s: Scenario): RunSpec[] {
  return (s.strategies ?? STRATEGY_IDS).map((r) => (typeof r === "string" ? { name: r, strategy: r } : r));
}

/** Handles, by the field that refers to them and the op that makes them. */
const HANDLE_FIELDS: Readonly<Record<string, string>> = {
  pipe: "vmsplice", buffer: "io_uring_register", request: "o_direct_read|o_direct_write", region: "rdma_register",
  pin: "pin", isolated: "isolate", lock: "lock_folio", access: "read|write (with as)", migration: "migrate (phase: start)",
  device: "dmirror_open", gup: "gup_fast_begin", uffd: "userfaultfd", file: "memfd_create", split: "split_huge_page (phase: start)",
};
const HANDLE_OF_OP: Readonly<Record<string, string>> = {
  vmsplice: "pipe", io_uring_register: "buffer", o_direct_read: "request", o_direct_write: "request",
  rdma_register: "region", pin: "pin", isolate: "isolated", lock_folio: "lock", read: "access", write: "access",
  migrate: "migration", dmirror_open: "device", gup_fast_begin: "gup", userfaultfd: "uffd", uffd_read: "uffd", memfd_create: "file", split_huge_page: "split",
};
/** Ops whose `expect` is one value, and those whose `expect` is a list. */
const SCALAR_READS = new Set(["read", "io_uring_device_read", "rdma_remote_read", "pin_read", "resume", "device_read", "gup_fast_begin", "gup_fast_end",
  "uffdio_copy", "uffdio_zeropage", "uffdio_continue", "uffdio_poison", "uffdio_move", "pagemap_uffd_wp", "split_huge_page"]);
const LIST_READS = new Set(["pipe_read", "o_direct_complete", "migrate", "device_migrate", "device_exclusive"]);
/** Ops that act on a range of memory (addr + length or pages). */
const RANGE_OPS = new Set(["uffdio_register", "uffdio_unregister", "uffdio_writeprotect", "uffdio_wake", "munmap", "mprotect", "mremap", "madvise", "pageout", "vmsplice", "io_uring_register", "o_direct_read", "o_direct_write", "rdma_register"]);

const ADDRESS = /^(?:0x([0-9a-fA-F]+)|([A-Za-z_][A-Za-z0-9_-]*)(?:\[([0-9]+)\])?(?:([+-])(0x[0-9a-fA-F]+|[0-9]+[KMG]?))?)$/;

/** The range an address names, if it names one. */
export function rangeNameOf(addr: unknown): string | undefined {
  if (typeof addr !== "string") return undefined;
  return ADDRESS.exec(addr)?.[2];
}

/** The part of an address expression too large to be exact (a page, an offset, a hex address), if any. */
function inexactPartOf(addr: string): string | undefined {
  const m = ADDRESS.exec(addr);
  if (!m) return undefined; // the schema says what is wrong
  if (m[1] !== undefined && !Number.isSafeInteger(parseInt(m[1], 16))) return "the address";
  if (m[3] !== undefined && !Number.isSafeInteger(Number(m[3]) * PAGE_SIZE)) return `page ${m[3]}`;
  if (m[5] !== undefined) {
    const off = m[5].startsWith("0x") ? parseInt(m[5], 16) : Number(/^[0-9]+/.exec(m[5])![0]) * ({ K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[m[5].slice(-1)] ?? 1);
    if (!Number.isSafeInteger(off)) return `the offset ${m[5]}`;
  }
  return undefined;
}

/**
 * The options of the kernel a scenario's runs get: its `kernel:` block over the scenarios'
 * defaults (16M of memory, every invariant after every step, the oracle explaining). Sizes stay
 * as written; validateKernelOptions() reads them.
 */
export function kernelOptionsOf(k: KernelSection | undefined): KernelOptions {
  const kern = k ?? {};
  const given = <K extends keyof KernelSection>(key: K) => (kern[key] !== undefined ? { [key]: kern[key] } : {});
  return {
    memory: kern.memory ?? "16M",
    ...given("swap"), ...given("maxProcesses"), ...given("maxMapCount"), ...given("thp"),
    // the schema speaks for unknown keys in the file; only the known ones go to the kernel
    ...(kern.transient !== undefined && typeof kern.transient === "object" && kern.transient !== null && !Array.isArray(kern.transient)
      ? { transient: { ...given2(kern.transient, "lruBatch"), ...given2(kern.transient, "isolation") } }
      : given("transient")),
    dataBytes: kern.dataBytes ?? 0,
    seed: kern.seed ?? 1,
    checkInvariants: kern.checkInvariants ?? true,
    oracle: true,
    explain: true,
  };
}

const given2 = <T extends object, K extends keyof T>(o: T, key: K): Partial<T> => (o[key] !== undefined ? { [key]: o[key] } as Partial<T> : {});

/** Bytes from a size: a number, "8K", "3 pages". */
export function sizeOf(name: string, v: number | string): number {
  if (typeof v === "string") {
    const m = /^([0-9]+) pages?$/.exec(v);
    if (m) return Number(m[1]) * PAGE_SIZE;
  }
  return parseSize(name, v);
}

/** An address from its expression, given the ranges' current starts and lengths. */
export function addressOf(addr: number | string, ranges: ReadonlyMap<string, { addr: number; length: number }>): number {
  if (typeof addr === "number") return addr;
  const m = ADDRESS.exec(addr);
  if (!m) throw new Error(`"${addr}" is not an address`);
  if (m[1] !== undefined) return parseInt(m[1], 16);
  const r = ranges.get(m[2]!);
  if (!r) throw new Error(`no range "${m[2]}" is mapped`);
  let a = r.addr;
  if (m[3] !== undefined) {
    const page = Number(m[3]);
    if (page * PAGE_SIZE >= r.length) throw new Error(`${addr}: "${m[2]}" has ${r.length / PAGE_SIZE} pages, not ${page + 1}`);
    a += page * PAGE_SIZE;
  }
  if (m[4] !== undefined) {
    const off = m[5]!.startsWith("0x") ? parseInt(m[5]!, 16) : parseSize("offset", m[5]!);
    a += m[4] === "+" ? off : -off;
  }
  return a;
}

/**
 * The bytes a range gets from a step that maps or moves it, when the file says them; 0 when it
 * does not, or when the step may fail (then the range may not exist at all).
 */
function knownLength(step: Step, lengthField: string, pagesField: string): number {
  if (step.error !== undefined) return 0;
  const pages = step[pagesField];
  if (typeof pages === "number") return Number.isSafeInteger(pages * PAGE_SIZE) ? pages * PAGE_SIZE : 0;
  const length = step[lengthField];
  if (typeof length !== "number" && typeof length !== "string") return 0;
  try {
    return sizeOf(lengthField, length);
  } catch {
    return 0;
  }
}

/** Checks the names a scenario uses; returns every problem. */
export function resolveNames(s: Scenario): NameProblem[] {
  const out: NameProblem[] = [];
  const runs = runsOf(s);
  const runNames = new Set<string>();
  runs.forEach((r, i) => {
    if (runNames.has(r.name) || r.name === "all") out.push({ path: ["strategies", i], message: `run name "${r.name}" is ${r.name === "all" ? "reserved" : "used twice"}` });
    runNames.add(r.name);
    const info = strategyInfo(r.strategy);
    if (!info) {
      const known = strategies().map((x) => x.id);
      const hint = closest(r.strategy, known);
      out.push({
        path: typeof s.strategies?.[i] === "object" ? ["strategies", i, "strategy"] : ["strategies", i],
        message: `unknown strategy "${r.strategy}"${hint ? ` (did you mean ${hint}?)` : ""}; known: ${known.join(", ")}`,
      });
      return;
    }
    try {
      info.make(r.knobs);
    } catch (e) {
      out.push({ path: ["strategies", i, "knobs"], message: e instanceof CowsimError ? e.detail : (e as Error).message });
    }
  });
  const checkRunKeys = (obj: unknown, path: (string | number)[]) => {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return;
    for (const k of Object.keys(obj)) {
      if (k !== "all" && !runNames.has(k)) out.push({ path, key: k, message: `"${k}" names no run of this scenario; expected all or one of ${[...runNames].join(", ")}` });
    }
  };
  checkRunKeys(s.expect, ["expect"]);

  const processes = new Set(s.processes ?? ["main"]);
  const ranges = new Map<string, number>(); // name → length in bytes when known
  const handles = new Map<string, string>(); // name → field kind
  s.steps.forEach((step: Step, i) => {
    const at = ["steps", i];
    const usesProcess = (field: string) => {
      const name = step[field];
      if (typeof name === "string" && !processes.has(name)) {
        out.push({ path: [...at, field], message: `no process "${name}" yet; processes so far: ${[...processes].join(", ")}` });
      }
    };
    usesProcess("process");
    usesProcess("reader");
    const usesAddress = (field: string) => {
      const v = step[field];
      if (typeof v !== "string") return;
      const name = rangeNameOf(v);
      if (name !== undefined && !ranges.has(name)) {
        out.push({ path: [...at, field], message: `"${v}" names no range; ranges so far: ${[...ranges.keys()].join(", ") || "none"}` });
      }
      // a page past the end of a range is no address a run can reach (not even to fail with
      // EFAULT): the runner would stop there, so the file is told now
      const page = /\[([0-9]+)\]/.exec(v)?.[1];
      const length = name !== undefined ? ranges.get(name) : undefined;
      if (page !== undefined && length && Number(page) * PAGE_SIZE >= length) {
        const pages = Math.ceil(length / PAGE_SIZE);
        out.push({ path: [...at, field], message: `"${v}": "${name}" has ${pages > 1 ? `${pages} pages here (${name}[0] to ${name}[${pages - 1}])` : `1 page here (${name}[0])`}, not ${Number(page) + 1}` });
      }
      const inexact = inexactPartOf(v);
      if (inexact) out.push({ path: [...at, field], message: `"${v}": ${inexact} lies beyond 2^53 - 1 bytes, the largest address cowsim holds exactly` });
    };
    usesAddress("addr");
    usesAddress("newAddr");
    usesAddress("src");
    for (const f of ["length", "newLength", "offset"]) {
      const v = step[f];
      if (v !== undefined) {
        try { sizeOf(f, v as number | string); } catch (e) { out.push({ path: [...at, f], message: (e as Error).message }); }
      }
    }
    if (RANGE_OPS.has(step.op) || step.op === "mmap") {
      const bare = typeof step.addr === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(step.addr);
      if (step.length !== undefined && step.pages !== undefined) out.push({ path: at, key: "pages", message: `${step.op}: give length or pages, not both` });
      else if (step.length === undefined && step.pages === undefined && (step.op === "mmap" || !bare)) {
        out.push({ path: at, message: `${step.op} needs length or pages${step.op === "mmap" ? "" : " (only a bare range name stands for its whole range)"}` });
      }
    }
    if (step.op === "migrate") {
      const finish = step.phase === "finish";
      if (finish && (step.addr !== undefined || step.length !== undefined || step.pages !== undefined || step.as !== undefined || step.all !== undefined)) {
        out.push({ path: at, message: "migrate with phase: finish takes only `migration` (the range is the one its start named)" });
      }
      if (finish && step.migration === undefined) out.push({ path: at, message: "migrate with phase: finish needs `migration`: the name its phase: start step gave it" });
      if (!finish && step.addr === undefined) out.push({ path: at, message: "migrate needs addr (a range, or a page of one)" });
      if (!finish && step.migration !== undefined) out.push({ path: at, key: "migration", message: "only migrate with phase: finish names a `migration`" });
      if (step.phase === "start" && step.as === undefined) out.push({ path: at, message: "migrate with phase: start needs `as`, the name phase: finish will use" });
      if (step.phase !== "start" && step.as !== undefined) out.push({ path: at, key: "as", message: "only migrate with phase: start is named (`as`): the others end at once" });
      if (!finish && step.length !== undefined && step.pages !== undefined) out.push({ path: at, key: "pages", message: "migrate: give length or pages, not both" });
    }
    if (step.op === "split_huge_page") {
      const finish = step.phase === "finish";
      if (finish && (step.addr !== undefined || step.as !== undefined)) out.push({ path: at, message: "split_huge_page with phase: finish takes only `split` (the folio is the one its start named)" });
      if (finish && step.split === undefined) out.push({ path: at, message: "split_huge_page with phase: finish needs `split`: the name its phase: start step gave it" });
      if (!finish && step.addr === undefined) out.push({ path: at, message: "split_huge_page needs addr (a page of the folio)" });
      if (!finish && step.split !== undefined) out.push({ path: at, key: "split", message: "only split_huge_page with phase: finish names a `split`" });
      if (step.phase === "start" && step.as === undefined) out.push({ path: at, message: "split_huge_page with phase: start needs `as`, the name phase: finish will use" });
      if (step.phase !== "start" && step.as !== undefined) out.push({ path: at, key: "as", message: "only split_huge_page with phase: start is named (`as`): the others end at once" });
    }
    if (step.op === "mremap") {
      if ((step.newLength === undefined) === (step.newPages === undefined)) out.push({ path: at, message: "mremap needs newLength or newPages (one of them)" });
    }
    for (const [field, maker] of Object.entries(HANDLE_FIELDS)) {
      const name = step[field];
      if (typeof name !== "string") continue;
      if (handles.get(name) !== field) {
        const what = handles.has(name) ? `"${name}" is a ${handles.get(name)}, not a ${field}` : `no ${field} "${name}" yet`;
        out.push({ path: [...at, field], message: `${what}; a ${field} is made by ${maker.replace("|", " or ")}` });
      }
    }
    if (step.expect !== undefined) {
      if (step.op === "counters") checkRunKeys(step.expect, [...at, "expect"]);
      else {
        const v = step.expect;
        const perRun = typeof v === "object" && !Array.isArray(v);
        if (perRun) checkRunKeys(v, [...at, "expect"]);
        const each = perRun ? Object.values(v as object) : [v];
        for (const e of each) {
          if (SCALAR_READS.has(step.op) && Array.isArray(e)) out.push({ path: [...at, "expect"], message: `${step.op} returns one value, not a list` });
          if (LIST_READS.has(step.op) && !Array.isArray(e)) out.push({ path: [...at, "expect"], message: `${step.op} returns a list (one value per page), not one value` });
        }
      }
    }
    if (typeof step.error === "object" && step.error !== null) checkRunKeys(step.error, [...at, "error"]);
    if (step.op === "o_direct_complete" && step.values !== undefined && step.expect !== undefined) {
      out.push({ path: at, key: "expect", message: "o_direct_complete: values (a read) and expect (a write) exclude each other" });
    }
    // definitions
    if (step.op === "fork" || step.op === "spawn") {
      const name = step.as as string;
      if (processes.has(name)) out.push({ path: [...at, "as"], message: `process "${name}" exists already` });
      processes.add(name);
    } else if (step.op === "mmap") {
      ranges.set(step.as as string, knownLength(step, "length", "pages"));
    } else if (step.op === "mremap") {
      const name = (step.as as string | undefined) ?? rangeNameOf(step.addr);
      if (name !== undefined) ranges.set(name, knownLength(step, "newLength", "newPages"));
    } else if (HANDLE_OF_OP[step.op] && step.as !== undefined) {
      handles.set(step.as as string, HANDLE_OF_OP[step.op]!);
    } else if (step.op === "gup_fast_end" && handles.get(step.gup as string) === "gup") {
      // ended: what it took is a pin from here on, and it cannot end again
      handles.set(step.gup as string, "pin");
    }
  });
  return out;
}
