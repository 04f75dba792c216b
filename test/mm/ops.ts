// Random syscall, access and GUP-user sequences for the property tests: a generator and an
// interpreter that maps each abstract step onto the live processes and users of a kernel.
import fc from "fast-check";
import {
  CowsimError, type Kernel, type Process, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_SHARED,
  MAP_ANONYMOUS, MAP_FIXED, MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK,
  MADV_PAGEOUT, MREMAP_MAYMOVE, MREMAP_FIXED, C,
} from "../../src/index.js";

export const PAGE = 4096;
export const WINDOW = 0x7f00_0000_0000;
export const SLOTS = 48;
export const at = (slot: number) => WINDOW + (slot % SLOTS) * PAGE;

export type Op =
  | { op: "mmap"; slot: number; pages: number; shared: boolean; prot: number }
  | { op: "munmap"; slot: number; pages: number }
  | { op: "mprotect"; slot: number; pages: number; prot: number }
  | { op: "mremap"; slot: number; pages: number; newPages: number; to: number | null }
  | { op: "madvise"; slot: number; pages: number; advice: number }
  | { op: "fork"; who: number }
  | { op: "exit"; who: number }
  | { op: "read"; who: number; slot: number }
  | { op: "write"; who: number; slot: number }
  | { op: "vmsplice"; who: number; slot: number; pages: number }
  | { op: "ioUring"; who: number; slot: number; pages: number }
  | { op: "rdma"; who: number; slot: number; pages: number; writable: boolean }
  | { op: "directIo"; who: number; slot: number; pages: number; read: boolean }
  | { op: "pin"; who: number; slot: number; pages: number; flags: number }
  | { op: "device"; user: number; page: number; write: boolean }
  | { op: "release"; user: number; reader: number };

// most steps touch a few hot pages, so that writes meet pages another process or a pin shares
const slot = fc.oneof({ weight: 3, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(SLOTS - 1) });
const pages = fc.integer({ min: 1, max: 4 });
const who = fc.nat(7);
const prot = fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE);

const base: fc.WeightedArbitrary<Op>[] = [
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mmap" as const), slot, pages, shared: fc.boolean(), prot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("munmap" as const), slot, pages }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mprotect" as const), slot, pages, prot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mremap" as const), slot, pages, newPages: pages, to: fc.option(slot, { nil: null }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("madvise" as const), slot, pages,
      advice: fc.constantFrom(MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("fork" as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), who }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("read" as const), who, slot }) },
  { weight: 10, arbitrary: fc.record({ op: fc.constant("write" as const), who, slot }) },
];

const users: fc.WeightedArbitrary<Op>[] = [
  { weight: 2, arbitrary: fc.record({ op: fc.constant("vmsplice" as const), who, slot, pages }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("ioUring" as const), who, slot, pages }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("rdma" as const), who, slot, pages, writable: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("directIo" as const), who, slot, pages, read: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("pin" as const), who, slot, pages,
      flags: fc.constantFrom(C.FOLL_PIN, C.FOLL_PIN | C.FOLL_LONGTERM, C.FOLL_PIN | C.FOLL_WRITE | C.FOLL_LONGTERM, C.FOLL_GET),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("device" as const), user: fc.nat(7), page: fc.nat(3), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("release" as const), user: fc.nat(7), reader: who }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("madvise" as const), slot, pages, advice: fc.constant(MADV_PAGEOUT) }),
  },
];

/** Sequences of syscalls and accesses; with `withUsers`, GUP users and pageout too. */
export function opsArb(withUsers: boolean, maxLength = 80): fc.Arbitrary<Op[]> {
  return fc.array(fc.oneof(...base, ...(withUsers ? users : [])), { minLength: 5, maxLength, size: "max" });
}

type User = { pin: { released: boolean; pfns: readonly number[] }; release(): void } & Record<string, unknown>;

/** The live state an interpretation walks: processes and users. */
export class World {
  readonly live: Process[];
  readonly users: User[] = [];
  counts: Record<string, number> = {};

  constructor(readonly k: Kernel) {
    const first = k.spawn();
    first.mmap(WINDOW, SLOTS * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    this.live = [first];
  }

  /** Applies one op; errno failures are legitimate outcomes, anything else is a bug. */
  apply(o: Op, value: number): void {
    const k = this.k;
    if (this.live.length === 0) this.live.push(k.spawn());
    const p = this.live[("who" in o ? o.who : 0) % this.live.length]!;
    try {
      this.run(p, o, value);
      this.counts[o.op] = (this.counts[o.op] ?? 0) + 1;
      this.counts.ok = (this.counts.ok ?? 0) + 1;
    } catch (e) {
      if (!(e instanceof CowsimError)) throw e;
      this.counts.errno = (this.counts.errno ?? 0) + 1;
    }
  }

  private user(i: number): User | undefined {
    const live = this.users.filter((u) => !u.pin.released);
    return live.length ? live[i % live.length] : undefined;
  }

  private run(p: Process, o: Op, value: number): void {
    switch (o.op) {
      case "mmap":
        p.mmap(at(o.slot), o.pages * PAGE, o.prot, (o.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED);
        return;
      case "munmap": p.munmap(at(o.slot), o.pages * PAGE); return;
      case "mprotect": p.mprotect(at(o.slot), o.pages * PAGE, o.prot); return;
      case "mremap":
        if (o.to === null) p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE);
        else p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, at(o.to));
        return;
      case "madvise": p.madvise(at(o.slot), o.pages * PAGE, o.advice); return;
      case "fork": this.live.push(p.fork()); return;
      case "exit": p.exit(); this.live.splice(this.live.indexOf(p), 1); return;
      case "read": p.read(at(o.slot)); return;
      case "write": p.write(at(o.slot), value); return;
      case "vmsplice": this.users.push(p.vmsplice(at(o.slot), o.pages * PAGE) as unknown as User); return;
      case "ioUring": this.users.push(p.ioUringRegisterBuffers(at(o.slot), o.pages * PAGE) as unknown as User); return;
      case "rdma": this.users.push(p.rdmaRegister(at(o.slot), o.pages * PAGE, o.writable) as unknown as User); return;
      case "directIo": this.users.push(p.directIo(o.read ? "read" : "write", at(o.slot), o.pages * PAGE) as unknown as User); return;
      case "pin": this.users.push(p.pinUserPages(at(o.slot), o.pages, o.flags) as unknown as User); return;
      case "device": {
        const u = this.user(o.user) as any;
        if (!u) return;
        const i = o.page % u.pin.pfns.length;
        if ("writeFixed" in u) { if (o.write) u.writeFixed(i, value); else u.readFixed(i); }
        else if ("remoteWrite" in u) { if (o.write) u.remoteWrite(i, value); else u.remoteRead(i); }
        else if ("write" in u && "read" in u && u.pin.owner === "pin") { if (o.write) u.write(i, value); else u.read(i); }
        return;
      }
      case "release": {
        const u = this.user(o.user) as any;
        if (!u) return;
        if (u.pin.owner === "pipe") u.read(this.live[o.reader % this.live.length]);
        else if (u.pin.owner === "o_direct") u.complete(u.direction === "read" ? u.pin.pfns.map((_: number, j: number) => value * 8 + j) : []);
        else u.release();
        return;
      }
    }
  }

  /** Everything still alive goes; afterwards nothing may be left. */
  teardown(): void {
    for (const p of [...this.live]) p.exit();
    for (const u of this.users) if (!u.pin.released) u.release();
    this.k.drainLru();
    this.k.freeSwapCache();
  }
}
