/**
 * Random operation sequences over everything the library does — syscalls, accesses, GUP users,
 * swap, transient references, exhaustion and fault injection — for the property tests and
 * `cowsim fuzz`: a fast-check generator of abstract steps, and an interpreter that maps each
 * step onto the live processes and users of a kernel and writes down, as a scenario step, the
 * call it made.
 * @packageDocumentation
 */
import fc from "fast-check";
import { CowsimError } from "../errno.js";
import type { Kernel } from "../kernel.js";
import type { Process } from "../kernel.js";
import { GupUser, type Pipe, type FixedBuffers, type MemoryRegion, type DirectIo, type UserPages } from "../kernel.js";
import type { FailKind } from "../kernel.js";
import {
  PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE,
  MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK, MADV_PAGEOUT,
  MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_COLD, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, MADV_NAMES,
  FOLL_GET, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, FOLL_FORCE, MADV_HWPOISON,
} from "../kernel.js";

export const PAGE = 4096;
/** Where the interpreted address space lives: SLOTS pages from WINDOW. */
export const WINDOW = 0x7f00_0000_0000;
export const SLOTS = 48;
export const at = (slot: number) => WINDOW + (slot % SLOTS) * PAGE;

/** One abstract step; `who`, `user` and `slot` pick among what exists when it runs. @public */
export type Op =
  | { op: "mmap"; who: number; slot: number; pages: number; shared: boolean; prot: number; populate?: boolean }
  | { op: "munmap"; who: number; slot: number; pages: number }
  | { op: "mprotect"; who: number; slot: number; pages: number; prot: number }
  | { op: "mremap"; who: number; slot: number; pages: number; newPages: number; to: number | null; dontunmap?: boolean }
  | { op: "madvise"; who: number; slot: number; pages: number; advice: number }
  | { op: "fork"; who: number }
  | { op: "exit"; who: number }
  | { op: "read"; who: number; slot: number }
  | { op: "write"; who: number; slot: number }
  | { op: "clearSoftDirty"; who: number }
  | { op: "vmsplice"; who: number; slot: number; pages: number }
  | { op: "ioUring"; who: number; slot: number; pages: number }
  | { op: "rdma"; who: number; slot: number; pages: number; writable: boolean }
  | { op: "directIo"; who: number; slot: number; pages: number; read: boolean }
  | { op: "pin"; who: number; slot: number; pages: number; flags: number; fast?: boolean }
  | { op: "device"; user: number; page: number; write: boolean }
  | { op: "release"; user: number; reader: number }
  | { op: "migrate"; who: number; slot: number; pages: number; all: boolean }
  | { op: "isolate"; who: number; slot: number }
  | { op: "putback"; user: number }
  | { op: "reclaim"; pages: number }
  | { op: "drainLru" }
  | { op: "inject"; kind: FailKind; nth: number }
  | { op: "hwpoison"; who: number; slot: number; inject: boolean };

// most steps touch a few hot pages, so that writes meet pages another process or a pin shares
const slot = fc.oneof({ weight: 3, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(SLOTS - 1) });
const pages = fc.integer({ min: 1, max: 4 });
const who = fc.nat(7);
const prot = fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE);
const rec = <T extends Op["op"]>(op: T, fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc.record({ op: fc.constant(op), ...fields }) as unknown as fc.Arbitrary<Op>;

const BASE: fc.WeightedArbitrary<Op>[] = [
  { weight: 1, arbitrary: rec("mmap", { who, slot, pages, shared: fc.boolean(), prot }) },
  { weight: 1, arbitrary: rec("munmap", { who, slot, pages }) },
  { weight: 1, arbitrary: rec("mprotect", { who, slot, pages, prot }) },
  { weight: 1, arbitrary: rec("mremap", { who, slot, pages, newPages: pages, to: fc.option(slot, { nil: null }) }) },
  { weight: 1, arbitrary: rec("madvise", { who, slot, pages, advice: fc.constantFrom(MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK) }) },
  { weight: 3, arbitrary: rec("fork", { who }) },
  { weight: 1, arbitrary: rec("exit", { who }) },
  { weight: 4, arbitrary: rec("read", { who, slot }) },
  { weight: 10, arbitrary: rec("write", { who, slot }) },
];

const USERS: fc.WeightedArbitrary<Op>[] = [
  { weight: 2, arbitrary: rec("vmsplice", { who, slot, pages }) },
  { weight: 1, arbitrary: rec("ioUring", { who, slot, pages }) },
  { weight: 1, arbitrary: rec("rdma", { who, slot, pages, writable: fc.boolean() }) },
  { weight: 1, arbitrary: rec("directIo", { who, slot, pages, read: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: rec("pin", {
      who, slot, pages,
      flags: fc.constantFrom(FOLL_PIN, FOLL_PIN | FOLL_LONGTERM, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM, FOLL_GET),
    }),
  },
  { weight: 3, arbitrary: rec("device", { user: fc.nat(7), page: fc.nat(3), write: fc.boolean() }) },
  { weight: 2, arbitrary: rec("release", { user: fc.nat(7), reader: who }) },
  { weight: 1, arbitrary: rec("madvise", { who, slot, pages, advice: fc.constant(MADV_PAGEOUT) }) },
  { weight: 1, arbitrary: rec("migrate", { who, slot, pages, all: fc.boolean() }) },
];

/** What the fuzzer adds: every other op the library has, exhaustion and fault injection. */
const EVERYTHING: fc.WeightedArbitrary<Op>[] = [
  { weight: 1, arbitrary: rec("mmap", { who, slot, pages, shared: fc.boolean(), prot, populate: fc.constant(true) }) },
  { weight: 1, arbitrary: rec("mremap", { who, slot, pages, newPages: pages, to: fc.constant(null), dontunmap: fc.constant(true) }) },
  { weight: 1, arbitrary: rec("madvise", { who, slot, pages, advice: fc.constantFrom(MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_COLD) }) },
  { weight: 1, arbitrary: rec("clearSoftDirty", { who }) },
  {
    weight: 1,
    arbitrary: rec("pin", {
      who, slot, pages, fast: fc.boolean(),
      flags: fc.constantFrom(FOLL_PIN | FOLL_WRITE | FOLL_FORCE, FOLL_GET | FOLL_WRITE | FOLL_FORCE, FOLL_PIN | FOLL_FORCE),
    }),
  },
  { weight: 1, arbitrary: rec("isolate", { who, slot }) },
  { weight: 1, arbitrary: rec("putback", { user: fc.nat(7) }) },
  { weight: 1, arbitrary: rec("reclaim", { pages: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 1, arbitrary: rec("drainLru", {}) },
  { weight: 1, arbitrary: rec("inject", { kind: fc.constantFrom<FailKind>("frame", "pageTable", "swapSlot"), nth: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: rec("hwpoison", { who, slot, inject: fc.boolean() }) },
];

/** How much of the library a sequence draws on. @public */
export type OpSet = "syscalls" | "users" | "everything";

/** Sequences of steps: syscalls and accesses; with GUP users and pageout; or everything. @public */
export function opsArb(set: OpSet | boolean, maxLength = 80): fc.Arbitrary<Op[]> {
  const which = set === true ? "users" : set === false ? "syscalls" : set;
  const arbs = [...BASE, ...(which !== "syscalls" ? USERS : []), ...(which === "everything" ? EVERYTHING : [])];
  return fc.array(fc.oneof(...arbs), { minLength: 5, maxLength, size: "max" });
}

/** A scenario step, as a scenario file writes it. @public */
export type ScenarioStep = Record<string, unknown> & { op: string };

type User = GupUser | { kind: "isolated"; pfn: number; released: boolean };

const protName = (p: number) => (p === PROT_NONE ? "none" : (p & PROT_READ ? "r" : "") + (p & PROT_WRITE ? "w" : ""));
const FOLL_NAMES: [number, string][] = [
  [FOLL_GET, "FOLL_GET"], [FOLL_PIN, "FOLL_PIN"], [FOLL_WRITE, "FOLL_WRITE"], [FOLL_LONGTERM, "FOLL_LONGTERM"], [FOLL_FORCE, "FOLL_FORCE"],
];
const follNames = (flags: number) => FOLL_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n);

/**
 * The live state an interpretation walks — processes and users — and the transcript of the
 * calls it made, as scenario steps (see {@link ScenarioStep}), so that a failing sequence can
 * be written as a scenario file. @public
 */
export class World {
  readonly live: Process[];
  readonly users: User[] = [];
  counts: Record<string, number> = {};
  /** The calls made so far, one scenario step per op that ran (errno outcomes included). */
  readonly transcript: ScenarioStep[] = [];
  private readonly names = new Map<Process, string>();
  private readonly handleNames = new Map<User, string>();
  private nextProcess = 1;
  private nextHandle = 1;

  constructor(readonly k: Kernel) {
    const first = k.spawn();
    this.names.set(first, "main");
    first.mmap(WINDOW, SLOTS * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    this.transcript.push({ op: "mmap", as: "window", addr: WINDOW, pages: SLOTS, flags: ["MAP_PRIVATE", "MAP_FIXED"] });
    this.live = [first];
  }

  /**
   * This world going on with `k`, a kernel restored from a snapshot of this world's kernel: its
   * processes and GUP users are found again there (by pid, and by pin id).
   */
  continueOn(k: Kernel): World {
    const w = Object.create(World.prototype) as World;
    const proc = (p: Process) => k.process(p.pid);
    const user = (u: User): User => {
      if (!("pin" in u) || u.pin.released) return "pin" in u ? u : { ...u };
      for (const x of k.process(u.pin.pid).users) if (x instanceof GupUser && x.pin.id === u.pin.id) return x;
      throw new Error(`cowsim: the restored kernel lacks pin ${u.pin.id} of pid ${u.pin.pid}`);
    };
    const users = this.users.map(user);
    Object.assign(w, {
      k, live: this.live.map(proc), users, counts: { ...this.counts }, transcript: [...this.transcript],
      names: new Map([...this.names].filter(([p]) => p.alive).map(([p, n]) => [proc(p), n])),
      handleNames: new Map(this.users.map((u, i) => [users[i]!, this.handleNames.get(u)!])),
      nextProcess: this.nextProcess, nextHandle: this.nextHandle,
    });
    return w;
  }

  /** The scenario name of a process. */
  nameOf(p: Process): string {
    return this.names.get(p)!;
  }

  /** Applies one op; errno failures are legitimate outcomes, anything else is a bug. */
  apply(o: Op, value: number): void {
    const before = this.transcript.length;
    try {
      if (this.live.length === 0) {
        // a new process takes over once every one has exited
        const as = `p${this.nextProcess++}`;
        this.step({ op: "spawn", as });
        const q = this.k.spawn();
        this.named(q, as);
        this.live.push(q);
      }
      const p = this.live[("who" in o ? o.who : 0) % this.live.length]!;
      this.run(p, o, value);
      this.counts[o.op] = (this.counts[o.op] ?? 0) + 1;
      this.counts.ok = (this.counts.ok ?? 0) + 1;
    } catch (e) {
      if (!(e instanceof CowsimError)) throw e;
      this.counts.errno = (this.counts.errno ?? 0) + 1;
      const last = this.transcript[this.transcript.length - 1];
      if (last && this.transcript.length > before) last.error = e.errno;
    }
  }

  private named(p: Process, name = `p${this.nextProcess++}`): string {
    this.names.set(p, name);
    return name;
  }

  private released(u: User): boolean {
    return "pin" in u ? u.pin.released : u.released;
  }

  private user(i: number): User | undefined {
    const live = this.users.filter((u) => !this.released(u));
    return live.length ? live[i % live.length] : undefined;
  }

  /** Records the step, then makes the call: a failing call keeps its step, with its errno. */
  private step(s: ScenarioStep): void {
    this.transcript.push(s);
  }

  private run(p: Process, o: Op, value: number): void {
    const process = this.nameOf(p);
    switch (o.op) {
      case "mmap": {
        const flags = (o.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED | (o.populate ? MAP_POPULATE : 0);
        this.step({ op: "mmap", process, as: `m${this.transcript.length}`, addr: at(o.slot), pages: o.pages, prot: protName(o.prot),
          flags: [o.shared ? "MAP_SHARED" : "MAP_PRIVATE", "MAP_FIXED", ...(o.populate ? ["MAP_POPULATE"] : [])] });
        p.mmap(at(o.slot), o.pages * PAGE, o.prot, flags);
        return;
      }
      case "munmap":
        this.step({ op: "munmap", process, addr: at(o.slot), pages: o.pages });
        p.munmap(at(o.slot), o.pages * PAGE);
        return;
      case "mprotect":
        this.step({ op: "mprotect", process, addr: at(o.slot), pages: o.pages, prot: protName(o.prot) });
        p.mprotect(at(o.slot), o.pages * PAGE, o.prot);
        return;
      case "mremap": {
        if (o.dontunmap) {
          this.step({ op: "mremap", process, addr: at(o.slot), pages: o.pages, newPages: o.pages, flags: ["MREMAP_MAYMOVE", "MREMAP_DONTUNMAP"] });
          p.mremap(at(o.slot), o.pages * PAGE, o.pages * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        } else if (o.to === null) {
          this.step({ op: "mremap", process, addr: at(o.slot), pages: o.pages, newPages: o.newPages, flags: ["MREMAP_MAYMOVE"] });
          p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE);
        } else {
          this.step({ op: "mremap", process, addr: at(o.slot), pages: o.pages, newPages: o.newPages, flags: ["MREMAP_MAYMOVE", "MREMAP_FIXED"], newAddr: at(o.to) });
          p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, at(o.to));
        }
        return;
      }
      case "madvise":
        this.step(o.advice === MADV_PAGEOUT ? { op: "pageout", process, addr: at(o.slot), pages: o.pages }
          : { op: "madvise", process, addr: at(o.slot), pages: o.pages, advice: MADV_NAMES[o.advice]! });
        p.madvise(at(o.slot), o.pages * PAGE, o.advice);
        return;
      case "fork": {
        // the name is taken even when fork fails, so that no two steps make the same name
        const as = `p${this.nextProcess++}`;
        this.step({ op: "fork", process, as });
        const child = p.fork();
        this.named(child, as);
        this.live.push(child);
        return;
      }
      case "exit":
        this.step({ op: "exit", process });
        p.exit();
        this.live.splice(this.live.indexOf(p), 1);
        return;
      case "read":
        this.step({ op: "read", process, addr: at(o.slot) });
        p.read(at(o.slot));
        return;
      case "write":
        this.step({ op: "write", process, addr: at(o.slot), value });
        p.write(at(o.slot), value);
        return;
      case "clearSoftDirty":
        this.step({ op: "clear_soft_dirty", process });
        p.clearSoftDirty();
        return;
      case "vmsplice": return this.gup({ op: "vmsplice", process, addr: at(o.slot), pages: o.pages }, () => p.vmsplice(at(o.slot), o.pages * PAGE));
      case "ioUring": return this.gup({ op: "io_uring_register", process, addr: at(o.slot), pages: o.pages }, () => p.ioUringRegisterBuffers(at(o.slot), o.pages * PAGE));
      case "rdma": return this.gup({ op: "rdma_register", process, addr: at(o.slot), pages: o.pages, writable: o.writable }, () => p.rdmaRegister(at(o.slot), o.pages * PAGE, o.writable));
      case "directIo":
        return this.gup({ op: o.read ? "o_direct_read" : "o_direct_write", process, addr: at(o.slot), pages: o.pages },
          () => p.directIo(o.read ? "read" : "write", at(o.slot), o.pages * PAGE));
      case "pin":
        return this.gup({ op: "pin", process, addr: at(o.slot), pages: o.pages, flags: follNames(o.flags), ...(o.fast === false ? { fast: false } : {}) },
          () => p.pinUserPages(at(o.slot), o.pages, o.flags, o.fast ?? true));
      case "device": return this.device(o.user, o.page, o.write, value);
      case "release": return this.release(o.user, o.reader, value);
      case "migrate":
        this.step({ op: "migrate", process, addr: at(o.slot), pages: o.pages, ...(o.all ? { all: true } : {}) });
        p.migratePages(at(o.slot), o.pages * PAGE, { all: o.all });
        return;
      case "isolate": {
        const as = `h${this.nextHandle++}`;
        this.step({ op: "isolate", process, addr: at(o.slot), as });
        const u: User = { kind: "isolated", pfn: this.k.isolate(p.pid, at(o.slot)), released: false };
        this.handleNames.set(u, as);
        this.users.push(u);
        return;
      }
      case "putback": {
        const isolated = this.users.filter((x) => !("pin" in x) && !x.released);
        const u = isolated[o.user % Math.max(1, isolated.length)];
        if (!u || "pin" in u) return;
        this.step({ op: "putback", isolated: this.handleNames.get(u)! });
        this.k.putback(u.pfn);
        u.released = true;
        return;
      }
      case "reclaim":
        this.step({ op: "reclaim", pages: o.pages });
        this.k.reclaim(o.pages);
        return;
      case "drainLru":
        this.step({ op: "drain_lru" });
        this.k.drainLru();
        return;
      case "inject":
        this.step({ op: "fail_alloc", kind: o.kind, nth: o.nth });
        this.k.injectFailure(o.kind, { nth: o.nth });
        return;
      case "hwpoison": {
        // MADV_HWPOISON from the process, or a machine check on the frame behind the address
        if (o.inject) {
          this.step({ op: "madvise", process, addr: at(o.slot), pages: 1, advice: "MADV_HWPOISON" });
          p.madvise(at(o.slot), PAGE, MADV_HWPOISON);
          return;
        }
        this.step({ op: "hwpoison", process, addr: at(o.slot) });
        const r = this.k.memoryFailureAt(p.pid, at(o.slot));
        if (r.errno) throw new CowsimError(r.errno, `memory_failure(${r.pfn}): ${r.type}, ${r.result}`);
        return;
      }
    }
  }

  private gup(s: ScenarioStep, make: () => GupUser): void {
    const as = `h${this.nextHandle++}`;
    this.step({ ...s, as });
    const u = make();
    this.handleNames.set(u, as);
    this.users.push(u);
  }

  private device(i: number, page: number, write: boolean, value: number): void {
    const u = this.user(i);
    if (!u || !("pin" in u)) return;
    const name = this.handleNames.get(u)!;
    const n = page % u.pin.pfns.length;
    switch (u.pin.owner) {
      case "io_uring": {
        const b = u as FixedBuffers;
        this.step(write ? { op: "io_uring_device_write", buffer: name, page: n, value } : { op: "io_uring_device_read", buffer: name, page: n });
        if (write) b.writeFixed(n, value); else b.readFixed(n);
        return;
      }
      case "rdma": {
        const r = u as MemoryRegion;
        this.step(write ? { op: "rdma_remote_write", region: name, page: n, value } : { op: "rdma_remote_read", region: name, page: n });
        if (write) r.remoteWrite(n, value); else r.remoteRead(n);
        return;
      }
      case "pin": {
        const pin = u as UserPages;
        this.step(write ? { op: "pin_write", pin: name, page: n, value } : { op: "pin_read", pin: name, page: n });
        if (write) pin.write(n, value); else pin.read(n);
        return;
      }
      default:
        return; // pipes and O_DIRECT requests act when released
    }
  }

  private release(i: number, reader: number, value: number): void {
    const u = this.user(i);
    if (!u) return;
    if (!("pin" in u)) {
      this.step({ op: "putback", isolated: this.handleNames.get(u)! });
      this.k.putback(u.pfn);
      u.released = true;
      return;
    }
    const name = this.handleNames.get(u)!;
    switch (u.pin.owner) {
      case "pipe": {
        const r = this.live[reader % Math.max(1, this.live.length)];
        this.step({ op: "pipe_read", pipe: name, ...(r ? { reader: this.nameOf(r) } : {}) });
        (u as Pipe).read(r);
        return;
      }
      case "o_direct": {
        const io = u as DirectIo;
        const values = io.direction === "read" ? io.pin.pfns.map((_, j) => value * 8 + j) : [];
        this.step({ op: "o_direct_complete", request: name, ...(io.direction === "read" ? { values } : {}) });
        io.complete(values);
        return;
      }
      case "io_uring":
        this.step({ op: "io_uring_unregister", buffer: name });
        (u as FixedBuffers).unregister();
        return;
      case "rdma":
        this.step({ op: "rdma_deregister", region: name });
        (u as MemoryRegion).deregister();
        return;
      default:
        this.step({ op: "unpin", pin: name });
        u.release();
    }
  }

  /** Everything still alive goes; afterwards nothing may be left. */
  teardown(): void {
    this.k.clearInjection();
    for (const p of [...this.live]) p.exit();
    for (const u of this.users) {
      if (this.released(u)) continue;
      if ("pin" in u) u.release();
      else { this.k.putback(u.pfn); u.released = true; }
    }
    this.k.drainLru();
    this.k.freeSwapCache();
  }
}
