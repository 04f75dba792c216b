// Random device migrations, device-exclusive requests, device accesses, forks, CPU accesses,
// mprotect and pins: after every step the invariants hold, the oracle finds nothing, and every
// read — the CPU's and the device's — returns what a plain model of each process's memory says.
// Device memory must be invisible to the processes.
import { describe, it } from "vitest";
import fc from "fast-check";
import { CowsimError, PROT_READ, FOLL_PIN, FOLL_WRITE, FOLL_LONGTERM, type Dmirror, type Kernel, type Process, type StrategyId, type UserPages } from "../../src/index.js";
import { kernel, RW, PRIV, PAGE, STRATEGIES } from "./helpers.js";

const RUNS = Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 150 : 100));
const SEED = Number(process.env.COWSIM_PROPERTY_SEED ?? 20261202);
const PAGES = 4;

type Op =
  | { op: "write" | "deviceWrite"; p: number; page: number; value: number }
  | { op: "read" | "deviceRead"; p: number; page: number }
  | { op: "toDevice" | "toSystem" | "exclusive"; p: number; page: number; n: number }
  | { op: "fork" | "exit" | "readOnly" | "readWrite" | "pin" | "unpin"; p: number; page: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom("write" as const, "deviceWrite" as const), p: fc.nat(3), page: fc.nat(PAGES - 1), value: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ op: fc.constantFrom("read" as const, "deviceRead" as const), p: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ op: fc.constantFrom("toDevice" as const, "toSystem" as const, "exclusive" as const), p: fc.nat(3), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: PAGES }) }),
  fc.record({ op: fc.constantFrom("fork" as const, "exit" as const, "readOnly" as const, "readWrite" as const, "pin" as const, "unpin" as const), p: fc.nat(3), page: fc.nat(PAGES - 1) }),
);

interface Proc { p: Process; mem: number[]; device: Dmirror | null; readOnly: boolean }

class DeviceWorld {
  readonly procs: Proc[] = [];
  readonly devices: Dmirror[] = [];
  readonly pins: UserPages[] = [];
  readonly a: number;

  constructor(readonly k: Kernel, readonly pinsAllowed: boolean) {
    const p = k.spawn();
    this.a = p.mmap(null, PAGES * PAGE, RW, PRIV);
    this.procs.push({ p, mem: new Array<number>(PAGES).fill(0), device: null, readOnly: false });
  }

  private device(w: Proc): Dmirror {
    if (w.device === null) {
      w.device = w.p.openDmirror(3);
      this.devices.push(w.device);
    }
    return w.device;
  }

  apply(o: Op): void {
    const w = this.procs[o.p % this.procs.length]!;
    const addr = this.a + o.page * PAGE;
    const n = "n" in o ? Math.min(o.n, PAGES - o.page) : 1;
    const expectRead = (got: number, who: string) => {
      if (got !== w.mem[o.page]) throw new Error(`${who} of pid ${w.p.pid} page ${o.page}: got ${got}, the model says ${w.mem[o.page]}`);
    };
    switch (o.op) {
      case "write":
        if (w.readOnly) { expectErrno(() => w.p.write(addr, o.value), "EFAULT"); return; }
        w.p.write(addr, o.value);
        w.mem[o.page] = o.value;
        return;
      case "deviceWrite":
        try {
          this.device(w).write(addr, o.value);
          w.mem[o.page] = o.value;
        } catch (e) {
          if (!(e instanceof CowsimError && e.errno === "EPERM")) throw e;
        }
        return;
      case "read": return expectRead(w.p.read(addr), "read");
      case "deviceRead": return expectRead(this.device(w).read(addr), "device read");
      case "toDevice": this.device(w).migrateToDevice(addr, n); return;
      case "toSystem": this.device(w).migrateToSystem(addr, n); return;
      case "exclusive":
        if (w.readOnly) return; // GUP with FOLL_WRITE of a read-only mapping is EFAULT
        this.device(w).makeExclusive(addr, n);
        return;
      case "fork":
        if (this.procs.length >= 4) return;
        this.procs.push({ p: w.p.fork(), mem: [...w.mem], device: null, readOnly: w.readOnly });
        return;
      case "exit":
        if (w === this.procs[0]) return;
        for (const pin of this.pins.filter((x) => x.pin.pid === w.p.pid)) this.unpin(pin);
        w.p.exit();
        this.procs.splice(this.procs.indexOf(w), 1);
        return;
      case "readOnly": w.p.mprotect(this.a, PAGES * PAGE, PROT_READ); w.readOnly = true; return;
      case "readWrite": w.p.mprotect(this.a, PAGES * PAGE, RW); w.readOnly = false; return;
      case "pin":
        if (!this.pinsAllowed || w.readOnly || this.pins.length >= 2) return;
        this.pins.push(w.p.pinUserPages(addr, 1, FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM));
        return;
      case "unpin": {
        const pin = this.pins.find((x) => x.pin.pid === w.p.pid);
        if (pin) this.unpin(pin);
        return;
      }
    }
  }

  private unpin(pin: UserPages): void {
    pin.release();
    this.pins.splice(this.pins.indexOf(pin), 1);
  }

  /** Every process exits, every device goes: nothing may be left. */
  end(): void {
    for (const pin of [...this.pins]) this.unpin(pin);
    for (const w of this.procs) w.p.exit();
    for (const d of this.devices) d.remove();
    const held = this.k.heldFrames();
    if (held.length) throw new Error(`frames left after every process exited and every device went: ${JSON.stringify(held)}`);
  }
}

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof CowsimError && e.errno === errno) return;
    throw e;
  }
  throw new Error(`expected ${errno}`);
}

function run(strategy: StrategyId, ops: Op[]): void {
  const k = kernel(strategy, { memory: "2M" });
  // the pre-5.19 strategies lose a pin's page at fork (the wrong COWs of their era): pins only
  // under the rule that keeps them
  const w = new DeviceWorld(k, strategy === "anon-exclusive");
  ops.forEach((o, i) => {
    try {
      w.apply(o);
    } catch (e) {
      throw new Error(`step ${i + 1} ${JSON.stringify(o)}: ${(e as Error).message}`);
    }
    if (k.findings.length) throw new Error(`step ${i + 1} ${JSON.stringify(o)}: ${k.findings[0]!.summary}`);
  });
  w.end();
}

describe.each(STRATEGIES)("device memory keeps contents and invariants (%s)", (strategy) => {
  it("random migrations, exclusive requests, device and CPU accesses, forks, mprotect and pins", () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => { run(strategy, ops); }),
      { numRuns: RUNS, seed: SEED });
  });
});
