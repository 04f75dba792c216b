// Random programs of one process tree over one private anonymous region, for the property tests
// that run the same program two ways (wp-core: the core's wp rule against the strategy's;
// deferred-trace: deferred subscribers against immediate ones). Each test draws its own mix of
// operations; this interprets them alike.
import fc from "fast-check";
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, type Kernel, type Process } from "../src/index.js";
import { readPages } from "./helpers.js";

export const PAGE = 4096;
export const BASE = 0x40000000;

/** One operation; `who` picks a process of the tree (modulo its size). */
export type ProgramOp =
  | { op: "write"; first: number; count: number; value: number; who: number }
  | { op: "read"; first: number; count: number; who: number }
  | { op: "list"; pages: number[]; write: boolean; who: number }
  | { op: "single"; first: number; write: boolean; value: number; who: number }
  | { op: "fork"; who: number } | { op: "exit"; who: number }
  | { op: "pin"; first: number; count: number; kind: "vmsplice" | "iouring" | "rdma" | "rdma-ro"; who: number }
  /** The last pin's holder reads (a pipe: by the second process), or writes then reads (io_uring, RDMA). */
  | { op: "device"; value: number }
  | { op: "unpin" }
  | { op: "madvise"; first: number; count: number; advice: number; who: number }
  | { op: "readonly"; first: number; count: number; writable: boolean; who: number }
  /** echo 4 > /proc/pid/clear_refs: soft-dirty tracking starts over. */
  | { op: "softdirty"; who: number };

type PinKind = Extract<ProgramOp, { op: "pin" }>["kind"];

/**
 * Each operation's arbitrary over a region of `pages` pages — runs of up to `maxCount` pages,
 * pins of up to `maxPin` of the `pinKinds`, madvise() with one of `advices` — for a property
 * test to weigh (fc.oneof()) as its subject needs.
 */
export function opArbs(pages: number, o: { readonly maxCount?: number; readonly maxPin?: number; readonly pinKinds: readonly PinKind[]; readonly advices: readonly number[] }) {
  const page = fc.integer({ min: 0, max: pages - 1 });
  const count = fc.integer({ min: 1, max: o.maxCount ?? 20 });
  const who = fc.nat(3);
  return {
    write: fc.record({ op: fc.constant("write" as const), first: page, count, value: fc.nat(1000), who }),
    read: fc.record({ op: fc.constant("read" as const), first: page, count, who }),
    list: fc.record({ op: fc.constant("list" as const), pages: fc.array(page, { minLength: 1, maxLength: 12 }), write: fc.boolean(), who }),
    single: fc.record({ op: fc.constant("single" as const), first: page, write: fc.boolean(), value: fc.nat(1000), who }),
    fork: fc.record({ op: fc.constant("fork" as const), who }),
    exit: fc.record({ op: fc.constant("exit" as const), who: fc.integer({ min: 1, max: 3 }) }),
    pin: fc.record({ op: fc.constant("pin" as const), first: page, count: fc.integer({ min: 1, max: o.maxPin ?? 4 }), kind: fc.constantFrom(...o.pinKinds), who }),
    device: fc.record({ op: fc.constant("device" as const), value: fc.nat(1000) }),
    unpin: fc.constant({ op: "unpin" as const }),
    madvise: fc.record({ op: fc.constant("madvise" as const), first: page, count, advice: fc.constantFrom(...o.advices), who }),
    readonly: fc.record({ op: fc.constant("readonly" as const), first: page, count, writable: fc.boolean(), who }),
    softdirty: fc.record({ op: fc.constant("softdirty" as const), who }),
  };
}

interface Holder { release(): void; device(value: number): void }

/**
 * Maps `pages` pages at BASE in a new process of `k` and runs `ops`: at most four processes, each
 * operation's outcome "ok" or its errno (and what reads and device reads returned). Returns the
 * outcomes, counters, every process's pagemap and contents.
 */
export function runProgram(k: Kernel, ops: readonly ProgramOp[], pages: number) {
  const root = k.spawn();
  root.mmap(BASE, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const procs: Process[] = [root];
  const pins: Holder[] = [];
  const outcomes: string[] = [];
  const at = (n: number) => procs[n % procs.length]!;
  const span = (first: number, n: number) => Math.min(n, pages - first);
  const addr = (page: number) => BASE + page * PAGE;
  for (const o of ops) {
    try {
      switch (o.op) {
        case "write": at(o.who).writeRange(addr(o.first), span(o.first, o.count), o.value, 1); break;
        case "read": at(o.who).touchRange(addr(o.first), span(o.first, o.count)); break;
        case "list": at(o.who).accessList(o.pages.map(addr), o.write, o.write ? o.pages.map((i) => 7000 + i) : undefined); break;
        case "single": if (o.write) at(o.who).write(addr(o.first), o.value); else outcomes.push(`read ${at(o.who).read(addr(o.first))}`); break;
        case "fork": if (procs.length < 4) procs.push(at(o.who).fork()); break;
        case "exit": if (procs.length > 1) procs.splice(1 + (o.who % (procs.length - 1)), 1)[0]!.exit(); break;
        case "pin": pins.push(pin(at(o.who), o.kind, addr(o.first), span(o.first, o.count) * PAGE, () => at(1), outcomes)); break;
        case "device": pins[pins.length - 1]?.device(o.value); break;
        case "unpin": pins.shift()?.release(); break;
        case "madvise": at(o.who).madvise(addr(o.first), span(o.first, o.count) * PAGE, o.advice); break;
        case "readonly": at(o.who).mprotect(addr(o.first), span(o.first, o.count) * PAGE, o.writable ? PROT_READ | PROT_WRITE : PROT_READ); break;
        case "softdirty": at(o.who).clearSoftDirty(); break;
      }
      outcomes.push("ok");
    } catch (e) {
      outcomes.push((e as { errno?: string }).errno ?? String(e));
    }
  }
  return {
    outcomes, counters: k.counters(), invariants: k.checkInvariants(),
    pagemaps: procs.map((p) => p.pagemap(BASE, pages).join()), contents: procs.map((p) => readPages(p, BASE, pages)),
  };
}

function pin(p: Process, kind: Extract<ProgramOp, { op: "pin" }>["kind"], a: number, len: number, reader: () => Process, outcomes: string[]): Holder {
  if (kind === "vmsplice") {
    const pipe = p.vmsplice(a, len);
    return { release: () => pipe.release(), device: () => outcomes.push(`pipe ${pipe.read(reader()).join()}`) };
  }
  if (kind === "iouring") {
    const b = p.ioUringRegisterBuffers(a, len);
    return { release: () => b.unregister(), device: (x) => { b.writeFixed(0, x); outcomes.push(`fixed ${b.readFixed(0)}`); } };
  }
  const mr = p.rdmaRegister(a, len, kind === "rdma");
  return {
    release: () => mr.deregister(),
    device: (x) => { if (kind === "rdma") mr.remoteWrite(0, x); outcomes.push(`mr ${mr.remoteRead(0)}`); },
  };
}
